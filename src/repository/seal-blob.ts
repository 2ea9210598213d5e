import type { Sealer } from '../crypto/seal.js';
import { zstdCompressBound, zstdCompressInto } from '../format/zstd.js';

export interface SealResult {
  sealed: Uint8Array;
  /** Plaintext length when the stored payload is compressed, else 0. */
  uncompressedLength: number;
}

/** Reused per thread: one blob is sealed at a time on each thread, and blobs are ≤ 8 MiB. */
let scratch: Buffer | undefined;
const SAMPLE = 16 * 1024;

function scratchFor(n: number): Buffer {
  const need = zstdCompressBound(n);
  if (!scratch || scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, 1 << 20));
  return scratch;
}

/**
 * Cheap test whether compressing is worth it: compress a 16 KiB sample from the middle at level 1.
 * Incompressible data (media, encrypted or already compressed files) then costs no zstd time;
 * restic compresses everything, but storing such blobs raw is equally valid (spec §5.5).
 */
function worthCompressing(data: Uint8Array): boolean {
  if (data.length < 4 * SAMPLE) return true;
  const start = (data.length >> 1) - (SAMPLE >> 1);
  const sample = data.subarray(start, start + SAMPLE);
  const n = zstdCompressInto(sample, scratchFor(SAMPLE), 1);
  return n < SAMPLE * 0.97;
}

/**
 * Compresses (when asked and when that makes the blob smaller) and encrypts one blob. The output
 * is a fresh ArrayBuffer so a worker can transfer it without a copy.
 */
export function sealBlob(s: Sealer, data: Uint8Array, compress: boolean, level: number): SealResult {
  let payload: Uint8Array = data;
  let uncompressedLength = 0;
  if (compress && data.length > 0 && worthCompressing(data)) {
    const dst = scratchFor(data.length);
    const n = zstdCompressInto(data, dst, level);
    if (n < data.length) {
      payload = dst.subarray(0, n);
      uncompressedLength = data.length;
    }
  }
  const out = new Uint8Array(new ArrayBuffer(payload.length + 32));
  s.sealInto(payload, Buffer.from(out.buffer, 0, out.length), 0);
  return { sealed: out, uncompressedLength };
}
