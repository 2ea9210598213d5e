/**
 * Plaintext encoding of "unpacked" files — index, snapshot, lock (spec §4). Not for `config`,
 * which is always raw JSON.
 *
 * v1: the plaintext is the JSON itself. v2: a leading byte says what follows: `{`/`[` raw JSON,
 * 0x02 one zstd frame of the JSON; an empty plaintext is taken as is.
 */
import { CairnError } from '../core/errors.js';
import { zstdCompress, zstdDecompress } from './zstd.js';

/** Version byte for "zstd-compressed JSON follows". */
export const UNPACKED_ZSTD = 0x02;

/**
 * v1: raw JSON only. v2: `0x02 || zstd(json)` when `compress` (what restic 0.14 always writes),
 * else raw JSON (restic reads both).
 */
export function encodeUnpacked(json: Buffer, repoVersion: 1 | 2, compress: boolean): Buffer {
  if (repoVersion !== 1 && repoVersion !== 2) {
    throw new CairnError('INVALID_ARGUMENT', `unsupported repository version ${String(repoVersion)}`);
  }
  if (repoVersion === 1 || !compress) {
    // a raw v2 plaintext must start with `{` or `[` to be recognised as JSON
    if (repoVersion === 2 && json.length > 0 && json[0] !== 0x7b && json[0] !== 0x5b) {
      throw new CairnError('INVALID_ARGUMENT', 'raw JSON for a v2 unpacked file must start with { or [');
    }
    return json;
  }
  const z = zstdCompress(json);
  const out = Buffer.allocUnsafe(1 + z.length);
  out[0] = UNPACKED_ZSTD;
  z.copy(out, 1);
  return out;
}

/**
 * Returns the JSON bytes of a decrypted unpacked file. `maxSize` bounds the decompressed size
 * (see zstdDecompress). Throws CORRUPT for an unknown encoding byte or a broken frame.
 */
export function decodeUnpacked(plain: Uint8Array, repoVersion: 1 | 2, maxSize?: number): Buffer {
  const buf = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
  if (repoVersion === 1 || buf.length === 0) return buf;
  const first = buf[0];
  if (first === 0x7b || first === 0x5b) return buf;
  if (first === UNPACKED_ZSTD) return zstdDecompress(buf.subarray(1), maxSize);
  throw new CairnError('CORRUPT', `not supported encoding format: 0x${first.toString(16).padStart(2, '0')}`);
}
