/**
 * Pack file structure (spec §5): plain header entries, trailer and size relations. The header
 * is encrypted by the caller; this module only deals with plaintext.
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { isLowerHexId } from './fields.js';

export interface PackBlob {
  type: 'data' | 'tree';
  id: Id;
  /** Stored length: ciphertext container (IV + payload + MAC). */
  length: number;
  /** Set (non-zero) only for zstd-compressed blobs (v2). */
  uncompressedLength?: number;
  /** Position of the blob's container in the pack (implicit: sum of preceding lengths). */
  offset: number;
}

/** Entry sizes: type(1) + LE32 length + ID(32), plus LE32 uncompressed length if compressed. */
export const PLAIN_ENTRY_SIZE = 37;
export const COMPRESSED_ENTRY_SIZE = 41;
/** IV + MAC around the encrypted header. */
export const CRYPTO_OVERHEAD = 32;
/** Bytes of the trailing LE32 header-length field. */
export const TRAILER_SIZE = 4;
/** Fixed per-pack overhead besides the entries: encrypted header's IV+MAC and the trailer. */
export const PACK_OVERHEAD = CRYPTO_OVERHEAD + TRAILER_SIZE;
/** restic's maximum (encrypted) header size: 16 MiB. Larger trailers are corruption. */
export const MAX_HEADER_SIZE = 16 * 1024 * 1024;
/** Smallest valid pack: one plain entry + header crypto overhead + trailer. */
export const MIN_PACK_SIZE = PLAIN_ENTRY_SIZE + PACK_OVERHEAD;

const TYPE_TREE = 1;
const TYPE_COMPRESSED = 2;

/** Header entry size of one blob (37, or 41 when compressed). */
export function headerEntrySize(blob: { length: number; uncompressedLength?: number }): number {
  return blob.uncompressedLength ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE;
}

/** Plain header length for these blobs. */
export function plainHeaderSize(blobs: readonly { length: number; uncompressedLength?: number }[]): number {
  let n = 0;
  for (const b of blobs) n += headerEntrySize(b);
  return n;
}

/**
 * Expected pack file size from its blobs (spec §5.4, what restic's check computes from the
 * index): Σ stored lengths + Σ entry sizes + 32 + 4.
 */
export function packSizeFromBlobs(blobs: readonly { length: number; uncompressedLength?: number }[]): number {
  let n = PACK_OVERHEAD;
  for (const b of blobs) n += b.length + headerEntrySize(b);
  return n;
}

function inval(msg: string): never {
  throw new CairnError('INVALID_ARGUMENT', `pack header: ${msg}`);
}

/**
 * Plain header bytes for the blobs in pack order (types 0..3). `offset` is ignored: offsets are
 * implicit, so callers must pass blobs in the order they were written.
 */
export function encodePackHeader(entries: readonly Omit<PackBlob, 'offset'>[]): Buffer {
  const out = Buffer.allocUnsafe(plainHeaderSize(entries));
  let o = 0;
  for (const e of entries) {
    if (e.type !== 'data' && e.type !== 'tree') inval(`unknown blob type ${JSON.stringify(e.type)}`);
    if (!isLowerHexId(e.id)) inval(`blob ID is not lower-case hex: ${String(e.id)}`);
    if (!Number.isInteger(e.length) || e.length < 0 || e.length > 0xffffffff) inval('length must be a uint32');
    const compressed = !!e.uncompressedLength;
    out[o++] = (e.type === 'tree' ? TYPE_TREE : 0) | (compressed ? TYPE_COMPRESSED : 0);
    out.writeUInt32LE(e.length, o);
    o += 4;
    if (compressed) {
      const ul = e.uncompressedLength as number;
      if (!Number.isInteger(ul) || ul < 0 || ul > 0xffffffff) inval('uncompressed length must be a uint32');
      out.writeUInt32LE(ul, o);
      o += 4;
    }
    o += out.write(e.id, o, 'hex');
  }
  return out;
}

/**
 * Parses a decrypted pack header. Offsets are assigned cumulatively from 0. Throws CORRUPT for
 * truncated entries, unknown types, zero uncompressed lengths, and compressed entries in a v1
 * repository.
 */
export function decodePackHeader(plain: Uint8Array, repoVersion: 1 | 2 = 2): PackBlob[] {
  const buf = Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
  const out: PackBlob[] = [];
  let pos = 0;
  let offset = 0;
  while (pos < buf.length) {
    const t = buf[pos];
    if (t > 3) throw new CairnError('CORRUPT', `pack header: invalid blob type ${t} at header offset ${pos}`);
    const compressed = (t & TYPE_COMPRESSED) !== 0;
    if (compressed && repoVersion < 2) {
      throw new CairnError('CORRUPT', 'pack header: compressed blob in a version 1 repository');
    }
    const size = compressed ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE;
    if (pos + size > buf.length) throw new CairnError('CORRUPT', `pack header: truncated entry at header offset ${pos}`);
    const length = buf.readUInt32LE(pos + 1);
    const blob: PackBlob = {
      type: t & TYPE_TREE ? 'tree' : 'data',
      id: '',
      length,
      offset,
    };
    if (compressed) {
      const ul = buf.readUInt32LE(pos + 5);
      if (ul === 0) throw new CairnError('CORRUPT', `pack header: compressed blob with uncompressed length 0`);
      blob.uncompressedLength = ul;
    }
    blob.id = buf.toString('hex', pos + size - 32, pos + size);
    out.push(blob);
    offset += length;
    pos += size;
  }
  return out;
}

/**
 * Reads the trailer (last 4 bytes of a pack): the encrypted header length. With `packSize`,
 * also applies the size checks of §5.3 (size ≥ 73, hlen ≤ size − 4); always hlen ≥ 32 and
 * hlen ≤ 16 MiB. Throws CORRUPT when a check fails.
 */
export function parseTrailer(last4: Uint8Array, packSize?: number): number {
  if (last4.length !== TRAILER_SIZE) throw new CairnError('INVALID_ARGUMENT', 'trailer must be exactly 4 bytes');
  if (packSize !== undefined && packSize < MIN_PACK_SIZE) {
    throw new CairnError('CORRUPT', `pack is too small (${packSize} bytes)`);
  }
  const hlen = Buffer.from(last4.buffer, last4.byteOffset, 4).readUInt32LE(0);
  if (hlen === 0 || hlen < CRYPTO_OVERHEAD) throw new CairnError('CORRUPT', `pack header length ${hlen} is too small`);
  if (hlen > MAX_HEADER_SIZE) throw new CairnError('CORRUPT', `pack header length ${hlen} exceeds the 16 MiB maximum`);
  if (packSize !== undefined && hlen > packSize - TRAILER_SIZE) {
    throw new CairnError('CORRUPT', `pack header length ${hlen} exceeds the pack size ${packSize}`);
  }
  return hlen;
}
