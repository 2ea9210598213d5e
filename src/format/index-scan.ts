/**
 * Compact decoding of index files (spec §6) for tools that hold the whole index in memory
 * (check, prune, stats): the entries of one file land in typed arrays instead of one JS object
 * per blob.
 *
 * restic and cairn write index JSON in one canonical shape (Go's json.Encoder: compact, keys in
 * struct order `id,type,offset,length[,uncompressed_length]`). That shape is scanned byte by byte
 * without building strings; anything else (whitespace, other key orders, the ancient array
 * format, nulls) falls back to the general decoder (decodeIndex), so every index restic accepts
 * is accepted here too.
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { decodeIndex } from './index.js';

export interface IndexBatch {
  supersedes: Id[];
  oldFormat: boolean;
  packIds: Id[];
  /** Blobs of pack p are [packStart[p], packStart[p+1]). Length packIds.length + 1. */
  packStart: Uint32Array;
  count: number;
  /** count × 32 bytes of blob IDs. */
  ids: Buffer;
  /** 0 = data, 1 = tree. */
  types: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  /** 0 = not compressed. */
  ulens: Uint32Array;
}

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[0x61 + i] = 10 + i;
  HEX[0x41 + i] = 10 + i;
}

/** Decodes 64 hex characters at buf[at] into dst[dstOff..+32]; false if a character is not hex. */
export function hexIdInto(buf: Uint8Array, at: number, dst: Uint8Array, dstOff: number): boolean {
  for (let i = 0; i < 32; i++) {
    const hi = HEX[buf[at + 2 * i]!]!;
    const lo = HEX[buf[at + 2 * i + 1]!]!;
    if ((hi | lo) < 0) return false;
    dst[dstOff + i] = (hi << 4) | lo;
  }
  return true;
}

class Growable {
  ids: Buffer;
  types: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  ulens: Uint32Array;
  count = 0;

  constructor(cap: number) {
    this.ids = Buffer.allocUnsafe(cap * 32);
    this.types = new Uint8Array(cap);
    this.offsets = new Uint32Array(cap);
    this.lengths = new Uint32Array(cap);
    this.ulens = new Uint32Array(cap);
  }

  reserve(): void {
    if (this.count < this.types.length) return;
    const cap = this.types.length * 2;
    const ids = Buffer.allocUnsafe(cap * 32);
    this.ids.copy(ids, 0, 0, this.count * 32);
    this.ids = ids;
    const grow = <T extends Uint8Array | Uint32Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.types = grow(this.types, (n) => new Uint8Array(n));
    this.offsets = grow(this.offsets, (n) => new Uint32Array(n));
    this.lengths = grow(this.lengths, (n) => new Uint32Array(n));
    this.ulens = grow(this.ulens, (n) => new Uint32Array(n));
  }
}

/** Sentinel thrown inside the scanner when the input is not in the canonical shape. */
const NOT_CANONICAL = Symbol('not canonical');

function fail(): never {
  throw NOT_CANONICAL;
}

/**
 * Decodes index JSON (after §4 decoding) into typed arrays. Accepts everything decodeIndex
 * accepts; throws CORRUPT for the same inputs (plus offsets/lengths that do not fit 32 bits,
 * which no valid pack has).
 */
export function decodeIndexCompact(json: Uint8Array, repoVersion?: 1 | 2): IndexBatch {
  try {
    return scanCanonical(json, repoVersion);
  } catch (e) {
    if (e !== NOT_CANONICAL) throw e;
  }
  return fromGeneric(json, repoVersion);
}

function fromGeneric(json: Uint8Array, repoVersion?: 1 | 2): IndexBatch {
  const idx = decodeIndex(json, repoVersion);
  let total = 0;
  for (const p of idx.packs) total += p.blobs.length;
  const g = new Growable(Math.max(1, total));
  const packStart = new Uint32Array(idx.packs.length + 1);
  idx.packs.forEach((p, pi) => {
    packStart[pi] = g.count;
    for (const b of p.blobs) {
      if (b.offset > 0xffffffff || b.length > 0xffffffff || (b.uncompressedLength ?? 0) > 0xffffffff) {
        throw new CairnError('CORRUPT', `invalid index: blob ${b.id} of pack ${p.id} has an offset or length beyond 4 GiB`);
      }
      const i = g.count++;
      g.ids.write(b.id, i * 32, 32, 'hex');
      g.types[i] = b.type === 'tree' ? 1 : 0;
      g.offsets[i] = b.offset;
      g.lengths[i] = b.length;
      g.ulens[i] = b.uncompressedLength ?? 0;
    }
  });
  packStart[idx.packs.length] = g.count;
  return {
    supersedes: idx.supersedes ?? [],
    oldFormat: idx.oldFormat === true,
    packIds: idx.packs.map((p) => p.id),
    packStart,
    count: g.count,
    ids: g.ids,
    types: g.types,
    offsets: g.offsets,
    lengths: g.lengths,
    ulens: g.ulens,
  };
}

const enc = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const K_SUPERSEDES = enc('{"supersedes":[');
const K_PACKS_FIRST = enc('{"packs":[');
const K_PACKS_AFTER = enc(',"packs":[');
const K_PACK_ID = enc('{"id":"');
const K_BLOBS = enc(',"blobs":[');
const K_BLOB_ID = enc('{"id":"');
const K_TYPE = enc('","type":"');
const K_DATA = enc('data","offset":');
const K_TREE = enc('tree","offset":');
const K_LENGTH = enc(',"length":');
const K_ULEN = enc(',"uncompressed_length":');

function scanCanonical(buf: Uint8Array, repoVersion?: 1 | 2): IndexBatch {
  let pos = 0;
  const n = buf.length;
  const expect = (k: Uint8Array): void => {
    if (pos + k.length > n) fail();
    for (let i = 0; i < k.length; i++) if (buf[pos + i] !== k[i]) fail();
    pos += k.length;
  };
  const tryExpect = (k: Uint8Array): boolean => {
    if (pos + k.length > n) return false;
    for (let i = 0; i < k.length; i++) if (buf[pos + i] !== k[i]) return false;
    pos += k.length;
    return true;
  };
  const hexString = (): Id => {
    // 64 hex characters then a quote
    if (pos + 65 > n || buf[pos + 64] !== 0x22) fail();
    for (let i = 0; i < 64; i++) if (HEX[buf[pos + i]!]! < 0) fail();
    const s = Buffer.from(buf.buffer, buf.byteOffset + pos, 64).toString('latin1').toLowerCase();
    pos += 65;
    return s;
  };
  const uint = (): number => {
    let v = 0;
    const start = pos;
    while (pos < n) {
      const c = buf[pos]!;
      if (c < 0x30 || c > 0x39) break;
      v = v * 10 + (c - 0x30);
      pos++;
    }
    if (pos === start || pos - start > 10 || (buf[start] === 0x30 && pos - start > 1)) fail();
    if (v > 0xffffffff) fail();
    return v;
  };

  const supersedes: Id[] = [];
  if (tryExpect(K_SUPERSEDES)) {
    if (buf[pos] !== 0x5d) {
      for (;;) {
        if (buf[pos] !== 0x22) fail();
        pos++;
        supersedes.push(hexString());
        if (buf[pos] === 0x2c) pos++;
        else break;
      }
    }
    expect(enc(']'));
    expect(K_PACKS_AFTER);
  } else {
    expect(K_PACKS_FIRST);
  }
  const packIds: Id[] = [];
  const starts: number[] = [];
  // restic's index files hold up to 150k blobs; start with a size estimate from the byte length
  const g = new Growable(Math.max(16, Math.ceil(n / 110)));
  if (buf[pos] !== 0x5d) {
    for (;;) {
      expect(K_PACK_ID);
      const packId = hexString();
      expect(K_BLOBS);
      packIds.push(packId);
      starts.push(g.count);
      if (buf[pos] !== 0x5d) {
        for (;;) {
          expect(K_BLOB_ID);
          if (pos + 65 > n || buf[pos + 64] !== 0x22) fail();
          g.reserve();
          const i = g.count;
          if (!hexIdInto(buf, pos, g.ids, i * 32)) fail();
          pos += 64;
          expect(K_TYPE);
          if (tryExpect(K_DATA)) g.types[i] = 0;
          else if (tryExpect(K_TREE)) g.types[i] = 1;
          else fail();
          g.offsets[i] = uint();
          expect(K_LENGTH);
          g.lengths[i] = uint();
          let ul = 0;
          if (tryExpect(K_ULEN)) {
            ul = uint();
            if (ul !== 0 && repoVersion === 1) {
              throw new CairnError('CORRUPT', 'invalid index: uncompressed_length is not supported by repository version 1');
            }
          }
          g.ulens[i] = ul;
          if (buf[pos] !== 0x7d) fail();
          pos++;
          g.count++;
          if (buf[pos] === 0x2c) pos++;
          else break;
        }
      }
      expect(enc(']}'));
      if (buf[pos] === 0x2c) pos++;
      else break;
    }
  }
  expect(enc(']}'));
  // json.Encoder's trailing newline; tolerate its absence and trailing whitespace
  while (pos < n && (buf[pos] === 0x0a || buf[pos] === 0x0d || buf[pos] === 0x20 || buf[pos] === 0x09)) pos++;
  if (pos !== n) fail();
  const packStart = new Uint32Array(packIds.length + 1);
  for (let i = 0; i < starts.length; i++) packStart[i] = starts[i]!;
  packStart[packIds.length] = g.count;
  return {
    supersedes,
    oldFormat: false,
    packIds,
    packStart,
    count: g.count,
    ids: g.ids,
    types: g.types,
    offsets: g.offsets,
    lengths: g.lengths,
    ulens: g.ulens,
  };
}

const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * Writes index JSON in restic's canonical shape (the same bytes encodeIndex produces for the same
 * packs) straight from raw IDs and numbers, without one object per blob.
 */
export class IndexJsonWriter {
  private out = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  private packs = 0;
  private blobsInPack = 0;
  blobs = 0;

  constructor(supersedes: readonly Id[] = []) {
    this.text('{');
    if (supersedes.length > 0) this.text('"supersedes":[' + supersedes.map((s) => '"' + s + '"').join(',') + '],');
    this.text('"packs":[');
  }

  private room(n: number): void {
    if (this.pos + n <= this.out.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.pos + n));
    this.out.copy(next, 0, 0, this.pos);
    this.out = next;
  }

  private text(s: string): void {
    this.room(s.length);
    this.pos += this.out.write(s, this.pos, 'latin1');
  }

  private hex(bytes: Uint8Array, at: number): void {
    this.room(64);
    const o = this.out;
    let p = this.pos;
    for (let i = 0; i < 32; i++) {
      const b = bytes[at + i]!;
      o[p++] = HEX_DIGITS[b >> 4]!;
      o[p++] = HEX_DIGITS[b & 15]!;
    }
    this.pos = p;
  }

  beginPack(packId: Id): void {
    if (this.packs > 0) this.text(']},');
    this.text('{"id":"' + packId + '","blobs":[');
    this.packs++;
    this.blobsInPack = 0;
  }

  /** One blob of the current pack: 32 ID bytes at idBytes[at], type 0 data / 1 tree, ulen 0 = uncompressed. */
  blob(idBytes: Uint8Array, at: number, type: number, offset: number, length: number, ulen: number): void {
    this.text(this.blobsInPack === 0 ? '{"id":"' : ',{"id":"');
    this.hex(idBytes, at);
    this.text((type === 1 ? '","type":"tree","offset":' : '","type":"data","offset":') + offset + ',"length":' + length + (ulen ? ',"uncompressed_length":' + ulen + '}' : '}'));
    this.blobsInPack++;
    this.blobs++;
  }

  finish(): Buffer {
    if (this.packs > 0) this.text(']}');
    this.text(']}\n');
    return this.out.subarray(0, this.pos);
  }
}
