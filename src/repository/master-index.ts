import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import type { IndexBatch } from '../format/index-scan.js';

export type BlobType = 'data' | 'tree';

export interface BlobLocation {
  packId: Id;
  type: BlobType;
  offset: number;
  /** Stored length (ciphertext container, possibly compressed). */
  length: number;
  /** Plaintext length when the blob is compressed; undefined otherwise. */
  uncompressedLength?: number;
}

export interface IndexedBlob extends BlobLocation {
  id: Id;
}

/*
 * Layout (≈ 44 bytes per blob plus ≈ 38 bytes per pack; measured by native/bench-index.mjs):
 *
 * Blob IDs are SHA-256 digests, so their first bytes are uniformly distributed and serve as the
 * hash without hashing. An ID is held as eight 32-bit words w0…w7 (big-endian, so numeric order
 * is byte order).
 *
 * Most entries live in the *main* part: 256 shards chosen by the top 8 bits of w0, each a set of
 * typed arrays sorted by (ID, type, pack, offset), with a directory of 256 buckets on the next 8
 * bits of w0. The 16 bits that select shard and bucket are therefore not stored; per entry:
 *   k0   u16   the low 16 bits of w0
 *   k    7×u32 w1…w7
 *   pt   u32   pack number << 1 | type (0 data, 1 tree)
 *   off  u32   offset in the pack
 *   lu   u32   length (24 bits) | bits 16–23 of the uncompressed length (top 8 bits)
 *   ul   u16   bits 0–15 of the uncompressed length
 * A blob whose length or uncompressed length needs more than 24 bits (≥ 16 MiB; data chunks are
 * at most 8 MiB) stores 0xFFFFFF as its length and its real sizes in a small side map.
 *
 * New entries go to the *recent* part first: a dense array of 12 words per entry with an
 * open-addressing table on w0 (built only once something queries: loading index files just
 * appends). When it holds twice as many entries as the main part (at least 65536) it is sorted (radix
 * sort on w0) and merged into the main part shard by shard (one shard is rewritten at a time, so
 * the transient extra memory is one shard's, ≈ 1/256 of the index). A query merges first when
 * the recent part holds more than 1/32 of the main part and more than QUERY_MERGE_MIN entries, so
 * that after loading large index files everything is in the compact form.
 *
 * Pack IDs are eight words each with their own open-addressing table (≈ 38 bytes per pack).
 */

const SHARD_BITS = 8;
const SHARDS = 1 << SHARD_BITS;
const BUCKETS = 256;
const LEN_ESCAPE = 0xffffff;
/** Words per entry of the recent part: w0…w7, pt, off, len, ulen. */
const RW = 12;
/**
 * A query merges the recent part only when it holds more entries than this (and more than 1/32
 * of the main part). Up to here the recent part's hash table answers as fast as the main part
 * (~56 instead of ~30 bytes per entry, at most ~3.5 MiB more): with 4096, a backup of 20,000 small
 * files merged five times as its new blobs came in (256 shards rewritten each time, ~35 ms of
 * the JavaScript thread), and the restore of a repository of 22,000 blobs merged its whole index
 * at the first lookup (~15–30 ms).
 */
const QUERY_MERGE_MIN = 65536;

/** Byte value of two lower-case hex digits, indexed by (first char code & 127) << 7 | (second & 127); −1 if not hex. */
const HEX2 = new Int16Array(1 << 14).fill(-1);
{
  const digits = '0123456789abcdef';
  for (let a = 0; a < 16; a++) {
    for (let b = 0; b < 16; b++) HEX2[(digits.charCodeAt(a) << 7) | digits.charCodeAt(b)] = (a << 4) | b;
  }
}

/** Parses a 64-digit lower-case hex ID into w[at…at+7]; false when it is not one. */
function parseId(id: string, w: Uint32Array, at = 0): boolean {
  if (typeof id !== 'string' || id.length !== 64) return false;
  let bad = 0;
  for (let k = 0; k < 8; k++) {
    let v = 0;
    for (let j = k * 8; j < k * 8 + 8; j += 2) {
      const a = id.charCodeAt(j);
      const b = id.charCodeAt(j + 1);
      // char codes ≥ 128 are never hex: fold them into the invalid slot 0 (not a hex pair)
      const x = HEX2[(a | b) < 128 ? (a << 7) | b : 0]!;
      bad |= x;
      v = (v << 8) | (x & 0xff);
    }
    w[at + k] = v >>> 0;
  }
  return bad >= 0;
}

const hexScratch = Buffer.alloc(32);

/** The hex ID of eight words given as a getter (word j). */
function hexOfWords(get: (j: number) => number): string {
  for (let j = 0; j < 8; j++) hexScratch.writeUInt32BE(get(j), j * 4);
  return hexScratch.toString('hex');
}

/**
 * First position in the ascending run k0[a, z) whose key is ≥ key (z when none): the binary
 * search into a bucket of a sorted index shard (MasterIndex, CompactIndex).
 */
export function lowerBound(k0: Uint16Array, a: number, z: number, key: number): number {
  while (a < z) {
    const m = (a + z) >>> 1;
    if (k0[m]! < key) a = m + 1;
    else z = m;
  }
  return a;
}

/** Whether row i of a shard's ID tails (seven words per row in k) holds words 1–7 of the ID w. */
export function tailMatches(k: Uint32Array, i: number, w: Uint32Array): boolean {
  const kb = i * 7;
  return k[kb] === w[1] && k[kb + 1] === w[2] && k[kb + 2] === w[3] && k[kb + 3] === w[4] && k[kb + 4] === w[5] && k[kb + 5] === w[6] && k[kb + 6] === w[7];
}

/** A typed array of the same kind with room for `cap` elements, holding a's first `n` (also used by compact-index.ts). */
export function grown<T extends Uint32Array | Uint16Array | Int32Array | Uint8Array>(a: T, n: number, cap: number): T {
  const b = new (a.constructor as new (n: number) => T)(cap);
  b.set(a.subarray(0, n));
  return b;
}

/** One shard of the main part (see the layout comment). */
class Shard {
  n = 0;
  k0 = new Uint16Array(0);
  k = new Uint32Array(0);
  pt = new Uint32Array(0);
  off = new Uint32Array(0);
  lu = new Uint32Array(0);
  ul = new Uint16Array(0);
  /** dir[b] = index of the first entry whose bucket (bits 16–23 of w0) is ≥ b; dir[256] = n. */
  dir = new Uint32Array(BUCKETS + 1);
}

export interface MasterIndexOptions {
  /** Recent entries that trigger a merge at least (tests use small values). */
  minMerge?: number;
}

/**
 * The in-memory union of all index files: (type, blob ID) → locations, in compact typed arrays
 * (see the layout comment above). Exact duplicate entries are dropped, as restic does when merging.
 */
export class MasterIndex {
  private readonly shards: Shard[] = Array.from({ length: SHARDS }, () => new Shard());
  private mainCount = 0;
  // recent part
  private rw = new Uint32Array(RW * 1024);
  private rn = 0;
  private rtab = new Int32Array(2048).fill(-1);
  private rmask = 2047;
  // packs
  private pw = new Uint32Array(8 * 256);
  private pn = 0;
  private ptab = new Int32Array(512).fill(-1);
  private pmask = 511;
  private ptype = new Uint8Array(256);
  /**
   * Pack IDs as text, made on first use: every location a lookup returns names its pack, and
   * building the text each time was 14 ms of a restore's plan of the benchmark tree (22k blobs in
   * 42 packs). Pack numbers are never reused, so an entry never goes stale.
   */
  private readonly packText: (Id | undefined)[] = [];
  /** Per pack: [data start, data end, data count, tree start, tree end, tree count], built on first packExtent(). */
  private extents: Uint32Array | undefined;
  /** Sizes of blobs that do not fit the 24-bit fields, by `${pt}:${offset}`. */
  private readonly big = new Map<string, { length: number; ulen: number }>();
  private readonly minMerge: number;
  private readonly q = new Uint32Array(8);

  constructor(opts: MasterIndexOptions = {}) {
    this.minMerge = Math.max(1, opts.minMerge ?? 65536);
  }

  // ---- packs ---------------------------------------------------------------------------------

  private findPack(w: Uint32Array): number {
    const pw = this.pw;
    for (let i = w[0]! & this.pmask; ; i = (i + 1) & this.pmask) {
      const p = this.ptab[i]!;
      if (p < 0) return -1;
      const b = p * 8;
      if (pw[b] === w[0] && pw[b + 1] === w[1] && pw[b + 2] === w[2] && pw[b + 3] === w[3] &&
          pw[b + 4] === w[4] && pw[b + 5] === w[5] && pw[b + 6] === w[6] && pw[b + 7] === w[7]) {
        return p;
      }
    }
  }

  private placePack(p: number): void {
    for (let i = this.pw[p * 8]! & this.pmask; ; i = (i + 1) & this.pmask) {
      if (this.ptab[i]! < 0) {
        this.ptab[i] = p;
        return;
      }
    }
  }

  /** The pack number of packId, adding the pack when new. */
  private internPack(packId: Id): { n: number; isNew: boolean } {
    const w = this.q;
    if (!parseId(packId, w)) throw new CairnError('INVALID_ARGUMENT', `index: invalid pack ID ${JSON.stringify(packId)}`);
    const found = this.findPack(w);
    if (found >= 0) return { n: found, isNew: false };
    const n = this.pn++;
    if (8 * this.pn > this.pw.length) {
      this.pw = grown(this.pw, 8 * n, this.pw.length * 2);
      this.ptype = grown(this.ptype, n, this.ptype.length * 2);
      if (this.extents) this.extents = grown(this.extents, 6 * n, this.ptype.length * 6);
    }
    this.pw.set(w, 8 * n);
    if (this.extents) this.extents.fill(0xffffffff, 6 * n, 6 * n + 6).fill(0, 6 * n + 1, 6 * n + 3).fill(0, 6 * n + 4, 6 * n + 6);
    if (this.pn * 4 > this.ptab.length * 3) this.rehashPacks(this.ptab.length * 2);
    else this.placePack(n);
    return { n, isNew: true };
  }

  private rehashPacks(size: number): void {
    this.ptab = new Int32Array(size).fill(-1);
    this.pmask = size - 1;
    for (let p = 0; p < this.pn; p++) this.placePack(p);
  }

  /** Drops the growth slack of the pack arrays (after a merge: loading is usually over then). */
  private trimPacks(): void {
    const n = this.pn;
    if (this.ptype.length > n + (n >>> 4) + 64) {
      const cap = n + 64;
      this.pw = grown(this.pw, 8 * n, 8 * cap);
      this.ptype = grown(this.ptype, n, cap);
      if (this.extents) this.extents = grown(this.extents, 6 * n, 6 * cap);
    }
    let size = 512;
    while (n * 4 > size * 3) size *= 2;
    if (size < this.ptab.length) this.rehashPacks(size);
  }

  private packIdOf(p: number): Id {
    const text = this.packText;
    const known = text[p];
    if (known !== undefined) return known;
    while (text.length <= p) text.push(undefined); // dense, never a sparse (dictionary) array
    const pw = this.pw;
    return (text[p] = hexOfWords((j) => pw[p * 8 + j]!));
  }

  // ---- adding --------------------------------------------------------------------------------

  /** Adds the blobs of one pack. Exact duplicate entries are dropped, as restic does when merging. */
  addPack(packId: Id, blobs: ReadonlyArray<{ id: Id; type: BlobType; offset: number; length: number; uncompressedLength?: number }>): void {
    const { n: pack, isNew } = this.internPack(packId);
    // A new pack cannot hold an exact duplicate of anything indexed, nor of itself when its
    // offsets increase (as in every index restic or cairn writes); otherwise check each blob.
    let check = !isNew;
    for (let i = 1; !check && i < blobs.length; i++) if (blobs[i]!.offset <= blobs[i - 1]!.offset) check = true;
    const w = this.q;
    for (const b of blobs) {
      if (!parseId(b.id, w)) throw new CairnError('INVALID_ARGUMENT', `index: invalid blob ID ${JSON.stringify(b.id)} in pack ${packId}`);
      this.addBlob(w, pack, b.type === 'tree' ? 1 : 0, b.offset, b.length, b.uncompressedLength ?? 0, check, packId);
    }
    if (this.rn >= Math.max(this.minMerge, 2 * this.mainCount)) this.merge();
  }

  /**
   * Adds the packs of one index file decoded by decodeIndexCompact: the same entries as addPack
   * for each of its packs, from binary IDs, without a JavaScript object per blob (loading the
   * index of a repository of many small files then leaves no heap garbage behind).
   */
  addBatch(b: IndexBatch): void {
    const w = this.q;
    for (let p = 0; p < b.packIds.length; p++) {
      const packId = b.packIds[p]!;
      const { n: pack, isNew } = this.internPack(packId);
      const from = b.packStart[p]!;
      const to = b.packStart[p + 1]!;
      let check = !isNew;
      for (let i = from + 1; !check && i < to; i++) if (b.offsets[i]! <= b.offsets[i - 1]!) check = true;
      for (let i = from; i < to; i++) {
        for (let k = 0; k < 8; k++) w[k] = b.ids.readUInt32BE(i * 32 + 4 * k);
        this.addBlob(w, pack, b.types[i]!, b.offsets[i]!, b.lengths[i]!, b.ulens[i]!, check, packId);
      }
      if (this.rn >= Math.max(this.minMerge, 2 * this.mainCount)) this.merge();
    }
  }

  /** Adds one blob location (ID in w) unless `check` finds it indexed already. */
  private addBlob(w: Uint32Array, pack: number, type: number, offset: number, length: number, ulen: number, check: boolean, packId: Id): void {
    // x >>> 0 === x: a non-negative integer below 2^32
    if (offset >>> 0 !== offset || length >>> 0 !== length || ulen >>> 0 !== ulen) {
      throw new CairnError('INVALID_ARGUMENT', `index: blob ${hexOfWords((j) => w[j]!)} in pack ${packId} has an invalid offset or length`);
    }
    if (check && this.hasExact(w, type, pack, offset, length)) return;
    this.addRecent(w, (pack << 1) | type, offset, length, ulen);
    this.ptype[pack] = type;
    if (this.extents) this.extend(pack, type, offset, length);
  }

  private addRecent(w: Uint32Array, pt: number, off: number, len: number, ulen: number): void {
    if ((this.rn + 1) * RW > this.rw.length) this.rw = grown(this.rw, this.rn * RW, this.rw.length * 2);
    const e = this.rn++;
    const rw = this.rw;
    const b = e * RW;
    rw[b] = w[0]!;
    rw[b + 1] = w[1]!;
    rw[b + 2] = w[2]!;
    rw[b + 3] = w[3]!;
    rw[b + 4] = w[4]!;
    rw[b + 5] = w[5]!;
    rw[b + 6] = w[6]!;
    rw[b + 7] = w[7]!;
    rw[b + 8] = pt >>> 0;
    rw[b + 9] = off;
    rw[b + 10] = len;
    rw[b + 11] = ulen;
    // The table is kept current only once something has looked things up (bulk loads skip it).
    if (this.tableLive) {
      if (this.rn * 2 > this.rtab.length) this.rehash();
      else this.placeRecent(e);
    }
  }

  /** Whether the recent part's table covers all its entries (false while loading in bulk). */
  private tableLive = false;

  /** Makes the recent part's table cover every recent entry. */
  private hashRecent(): void {
    if (this.tableLive) return;
    this.rehash();
    this.tableLive = true;
  }

  private rehash(): void {
    let cap = 2048;
    while (cap < this.rn * 2) cap *= 2;
    this.rtab = new Int32Array(cap).fill(-1);
    this.rmask = cap - 1;
    for (let x = 0; x < this.rn; x++) this.placeRecent(x);
  }

  private placeRecent(e: number): void {
    for (let i = this.rw[e * RW]! & this.rmask; ; i = (i + 1) & this.rmask) {
      if (this.rtab[i]! < 0) {
        this.rtab[i] = e;
        return;
      }
    }
  }

  private hasExact(w: Uint32Array, type: number, pack: number, off: number, len: number): boolean {
    this.hashRecent();
    let found = false;
    this.visit(w, type, (pt, o, l) => {
      if (pt >>> 1 === pack && o === off && l === len) found = true;
    }, false);
    return found;
  }

  // ---- queries -------------------------------------------------------------------------------

  /** Before a query: merges the recent part when it has grown large relative to the main part, else hashes it. */
  private settle(): void {
    if (this.rn > QUERY_MERGE_MIN && this.rn > this.mainCount >>> 5) this.merge();
    else this.hashRecent();
  }

  /**
   * Calls fn(pt, offset, length, ulen) for every location of (type, ID w), main part first (in
   * (pack, offset) order), then recent ones. Stops early when fn returns true.
   */
  private visit(w: Uint32Array, type: number, fn: (pt: number, off: number, len: number, ulen: number) => boolean | void, settle = true): void {
    if (settle) this.settle();
    const sh = this.shards[w[0]! >>> 24]!;
    if (sh.n > 0) {
      const bucket = (w[0]! >>> 16) & 0xff;
      const lo16 = w[0]! & 0xffff;
      const end = sh.dir[bucket + 1]!;
      for (let i = lowerBound(sh.k0, sh.dir[bucket]!, end, lo16); i < end && sh.k0[i] === lo16; i++) {
        if (!tailMatches(sh.k, i, w)) continue;
        const pt = sh.pt[i]!;
        if ((pt & 1) !== type) continue;
        const lu = sh.lu[i]!;
        let len = lu & LEN_ESCAPE;
        let ulen = ((lu >>> 24) << 16) | sh.ul[i]!;
        if (len === LEN_ESCAPE) {
          const big = this.big.get(`${pt}:${sh.off[i]}`)!;
          len = big.length;
          ulen = big.ulen;
        }
        if (fn(pt, sh.off[i]!, len, ulen) === true) return;
      }
    }
    const rw = this.rw;
    for (let i = w[0]! & this.rmask; ; i = (i + 1) & this.rmask) {
      const e = this.rtab[i]!;
      if (e < 0) return;
      const b = e * RW;
      if (rw[b] === w[0] && rw[b + 1] === w[1] && rw[b + 2] === w[2] && rw[b + 3] === w[3] && rw[b + 4] === w[4] &&
          rw[b + 5] === w[5] && rw[b + 6] === w[6] && rw[b + 7] === w[7] && (rw[b + 8]! & 1) === type) {
        if (fn(rw[b + 8]!, rw[b + 9]!, rw[b + 10]!, rw[b + 11]!) === true) return;
      }
    }
  }

  /**
   * The first location of (type, ID w): a main entry (returns 1; hitShard/hitIndex set), a recent
   * one (returns 2; hitIndex = its number) or none (0). The fast path of has() and blobSize().
   */
  private first(w: Uint32Array, type: number): number {
    this.settle();
    const w0 = w[0]!;
    const sh = this.shards[w0 >>> 24]!;
    if (sh.n > 0) {
      const bucket = (w0 >>> 16) & 0xff;
      const lo16 = w0 & 0xffff;
      const k0 = sh.k0;
      const end = sh.dir[bucket + 1]!;
      for (let i = lowerBound(k0, sh.dir[bucket]!, end, lo16); i < end && k0[i] === lo16; i++) {
        if (tailMatches(sh.k, i, w) && (sh.pt[i]! & 1) === type) {
          this.hitShard = sh;
          this.hitIndex = i;
          return 1;
        }
      }
    }
    const rw = this.rw;
    const rtab = this.rtab;
    const mask = this.rmask;
    for (let i = w0 & mask; ; i = (i + 1) & mask) {
      const e = rtab[i]!;
      if (e < 0) return 0;
      const b = e * RW;
      if (rw[b] === w0 && rw[b + 1] === w[1] && rw[b + 2] === w[2] && rw[b + 3] === w[3] && rw[b + 4] === w[4] &&
          rw[b + 5] === w[5] && rw[b + 6] === w[6] && rw[b + 7] === w[7] && (rw[b + 8]! & 1) === type) {
        this.hitIndex = e;
        return 2;
      }
    }
  }

  private hitShard: Shard | undefined;
  private hitIndex = 0;

  has(type: BlobType, id: Id): boolean {
    const w = this.q;
    return parseId(id, w) && this.first(w, type === 'tree' ? 1 : 0) !== 0;
  }

  lookup(type: BlobType, id: Id): BlobLocation[] {
    const w = this.q;
    if (!parseId(id, w)) return [];
    const out: BlobLocation[] = [];
    this.visit(w, type === 'tree' ? 1 : 0, (pt, offset, length, ulen) => {
      const loc: BlobLocation = { packId: this.packIdOf(pt >>> 1), type, offset, length };
      if (ulen) loc.uncompressedLength = ulen;
      out.push(loc);
    });
    return out;
  }

  /** Plaintext size of a blob, or undefined when unknown. */
  blobSize(type: BlobType, id: Id): number | undefined {
    const w = this.q;
    if (!parseId(id, w)) return undefined;
    const where = this.first(w, type === 'tree' ? 1 : 0);
    if (where === 0) return undefined;
    if (where === 2) {
      const b = this.hitIndex * RW;
      return this.rw[b + 11]! || this.rw[b + 10]! - 32;
    }
    const sh = this.hitShard!;
    const i = this.hitIndex;
    const lu = sh.lu[i]!;
    if ((lu & LEN_ESCAPE) === LEN_ESCAPE) {
      const big = this.big.get(`${sh.pt[i]}:${sh.off[i]}`)!;
      return big.ulen || big.length - 32;
    }
    return (((lu >>> 24) << 16) | sh.ul[i]!) || (lu & LEN_ESCAPE) - 32;
  }

  get size(): number {
    return this.mainCount + this.rn;
  }

  packCount(): number {
    return this.pn;
  }

  hasPack(packId: Id): boolean {
    const w = this.q;
    return parseId(packId, w) && this.findPack(w) >= 0;
  }

  /**
   * The byte range [start, end) covered by the indexed blobs of one type in a pack, and how many
   * there are; undefined for a pack without such blobs. (A per-pack table is built by one pass
   * over the index on the first call and kept up to date afterwards.)
   */
  packExtent(packId: Id, type: BlobType): { start: number; end: number; blobs: number } | undefined {
    const w = this.q;
    if (!parseId(packId, w)) return undefined;
    const p = this.findPack(w);
    if (p < 0) return undefined;
    if (!this.extents) this.buildExtents();
    const x = this.extents!;
    const b = 6 * p + (type === 'tree' ? 3 : 0);
    return x[b + 2]! > 0 ? { start: x[b]!, end: x[b + 1]!, blobs: x[b + 2]! } : undefined;
  }

  private buildExtents(): void {
    const x = new Uint32Array(this.ptype.length * 6);
    for (let p = 0; p < this.pn; p++) {
      x[6 * p] = 0xffffffff;
      x[6 * p + 3] = 0xffffffff;
    }
    this.extents = x;
    this.forEachEntry((pt, off, len) => this.extend(pt >>> 1, pt & 1, off, len));
  }

  private extend(pack: number, type: number, off: number, len: number): void {
    const x = this.extents!;
    const b = 6 * pack + 3 * type;
    if (off < x[b]!) x[b] = off;
    if (off + len > x[b + 1]!) x[b + 1] = Math.min(off + len, 0xffffffff);
    x[b + 2]!++;
  }

  /** Calls fn(pt, offset, length) for every entry (main part shard by shard, then recent). */
  private forEachEntry(fn: (pt: number, off: number, len: number) => void): void {
    for (let s = 0; s < SHARDS; s++) {
      const sh = this.shards[s]!;
      for (let i = 0; i < sh.n; i++) {
        const pt = sh.pt[i]!;
        let len = sh.lu[i]! & LEN_ESCAPE;
        if (len === LEN_ESCAPE) len = this.big.get(`${pt}:${sh.off[i]}`)!.length;
        fn(pt, sh.off[i]!, len);
      }
    }
    const rw = this.rw;
    for (let e = 0; e < this.rn; e++) fn(rw[e * RW + 8]!, rw[e * RW + 9]!, rw[e * RW + 10]!);
  }

  /** The entry with global number g (main entries shard by shard, then recent ones). */
  private entryAt(g: number, base: Uint32Array): { id: Id; type: BlobType; offset: number; length: number; ulen: number } {
    if (g >= this.mainCount) {
      const b = (g - this.mainCount) * RW;
      const rw = this.rw;
      return {
        id: hexOfWords((j) => rw[b + j]!),
        type: rw[b + 8]! & 1 ? 'tree' : 'data',
        offset: rw[b + 9]!,
        length: rw[b + 10]!,
        ulen: rw[b + 11]!,
      };
    }
    // shard: the last s with base[s] <= g
    let a = 0;
    let z = SHARDS;
    while (z - a > 1) {
      const m = (a + z) >>> 1;
      if (base[m]! <= g) a = m;
      else z = m;
    }
    const sh = this.shards[a]!;
    const i = g - base[a]!;
    let lo = 0;
    let hi = BUCKETS;
    while (hi - lo > 1) {
      const m = (lo + hi) >>> 1;
      if (sh.dir[m]! <= i) lo = m;
      else hi = m;
    }
    const w0 = ((a << 24) | (lo << 16) | sh.k0[i]!) >>> 0;
    const pt = sh.pt[i]!;
    const lu = sh.lu[i]!;
    let length = lu & LEN_ESCAPE;
    let ulen = ((lu >>> 24) << 16) | sh.ul[i]!;
    if (length === LEN_ESCAPE) {
      const big = this.big.get(`${pt}:${sh.off[i]}`)!;
      length = big.length;
      ulen = big.ulen;
    }
    return { id: hexOfWords((j) => (j === 0 ? w0 : sh.k[i * 7 + j - 1]!)), type: pt & 1 ? 'tree' : 'data', offset: sh.off[i]!, length, ulen };
  }

  /** Every indexed blob with its location, grouped by pack (packs in the order they were added, blobs by offset). */
  *entries(): IterableIterator<IndexedBlob> {
    this.settle();
    for (const group of this.byPack()) {
      for (const e of group.entries) {
        const loc: IndexedBlob = { id: e.id, packId: group.packId, type: e.type, offset: e.offset, length: e.length };
        if (e.ulen) loc.uncompressedLength = e.ulen;
        yield loc;
      }
    }
  }

  /** Blob IDs of each pack (packs in the order they were added, blobs by offset), and the type of the pack's last added blob. */
  *packs(): IterableIterator<{ packId: Id; type: BlobType; blobIds: Id[] }> {
    this.settle();
    for (const group of this.byPack()) {
      yield { packId: group.packId, type: this.ptype[group.pack] === 1 ? 'tree' : 'data', blobIds: group.entries.map((e) => e.id) };
    }
  }

  /**
   * Groups all entries by pack: one counting pass over the index into a table of 4-byte entry
   * numbers; a pack's entries are materialized only when it is reached.
   */
  private *byPack(): IterableIterator<{ pack: number; packId: Id; entries: Array<{ id: Id; type: BlobType; offset: number; length: number; ulen: number }> }> {
    const count = new Uint32Array(this.pn + 1);
    this.forEachEntry((pt) => {
      count[(pt >>> 1) + 1]!++;
    });
    for (let p = 0; p < this.pn; p++) count[p + 1]! += count[p]!;
    const at = count.slice(0, this.pn);
    const refs = new Uint32Array(this.size);
    let g = 0;
    this.forEachEntry((pt) => {
      refs[at[pt >>> 1]!++] = g++;
    });
    const base = new Uint32Array(SHARDS + 1);
    for (let s = 0; s < SHARDS; s++) base[s + 1] = base[s]! + this.shards[s]!.n;
    // Snapshot of the state the references point into: the generator may be resumed after more adds.
    const main = this.mainCount;
    for (let p = 0; p < this.pn && p < count.length - 1; p++) {
      if (this.mainCount !== main) throw new CairnError('INTERNAL', 'master index changed while iterating its packs');
      const list = [];
      for (let i = count[p]!; i < count[p + 1]!; i++) list.push(this.entryAt(refs[i]!, base));
      list.sort((a, b) => a.offset - b.offset);
      yield { pack: p, packId: this.packIdOf(p), entries: list };
    }
  }

  // ---- merging -------------------------------------------------------------------------------

  /** Moves every recent entry into the main part (see the layout comment). */
  merge(): void {
    const n = this.rn;
    if (n === 0) return;
    const rw = this.rw;
    const order = sortRecent(rw, n);
    // order is sorted by full key; split by shard and merge each.
    let i = 0;
    while (i < n) {
      const s = rw[order[i]! * RW]! >>> 24;
      let j = i + 1;
      while (j < n && rw[order[j]! * RW]! >>> 24 === s) j++;
      this.mergeShard(this.shards[s]!, order, i, j);
      i = j;
    }
    this.mainCount += n;
    this.trimPacks();
    this.rn = 0;
    this.tableLive = false;
    this.rw = new Uint32Array(RW * 1024);
    this.rtab = new Int32Array(2048).fill(-1);
    this.rmask = 2047;
  }

  private mergeShard(sh: Shard, order: Uint32Array, from: number, to: number): void {
    const rw = this.rw;
    const add = to - from;
    const total = sh.n + add;
    const k0 = new Uint16Array(total);
    const k = new Uint32Array(total * 7);
    const pt = new Uint32Array(total);
    const off = new Uint32Array(total);
    const lu = new Uint32Array(total);
    const ul = new Uint16Array(total);
    const perBucket = new Uint32Array(BUCKETS + 1);
    let src = 0; // next main entry to copy
    let dst = 0;
    const copyMain = (upTo: number) => {
      const m = upTo - src;
      if (m <= 0) return;
      if (m > 8) {
        k0.set(sh.k0.subarray(src, upTo), dst);
        k.set(sh.k.subarray(src * 7, upTo * 7), dst * 7);
        pt.set(sh.pt.subarray(src, upTo), dst);
        off.set(sh.off.subarray(src, upTo), dst);
        lu.set(sh.lu.subarray(src, upTo), dst);
        ul.set(sh.ul.subarray(src, upTo), dst);
      } else {
        for (let x = 0; x < m; x++) {
          const a = src + x;
          const d = dst + x;
          k0[d] = sh.k0[a]!;
          for (let y = 0; y < 7; y++) k[d * 7 + y] = sh.k[a * 7 + y]!;
          pt[d] = sh.pt[a]!;
          off[d] = sh.off[a]!;
          lu[d] = sh.lu[a]!;
          ul[d] = sh.ul[a]!;
        }
      }
      dst += m;
      src = upTo;
    };
    for (let x = from; x < to; x++) {
      const b = order[x]! * RW;
      const bucket = (rw[b]! >>> 16) & 0xff;
      perBucket[bucket + 1]!++;
      // Insertion point: the first main entry of the bucket that sorts after this one.
      let a = Math.max(src, sh.dir[bucket]!);
      let z = sh.dir[bucket + 1]!;
      // Dense merges insert right at the copy position: check it before searching.
      if (a < z && compareMain(sh, a, rw, b) >= 0) z = a;
      while (a < z) {
        const m = (a + z) >>> 1;
        if (compareMain(sh, m, rw, b) < 0) a = m + 1;
        else z = m;
      }
      copyMain(a);
      k0[dst] = rw[b]! & 0xffff;
      for (let y = 0; y < 7; y++) k[dst * 7 + y] = rw[b + 1 + y]!;
      const p = rw[b + 8]!;
      const len = rw[b + 10]!;
      const ulen = rw[b + 11]!;
      pt[dst] = p;
      off[dst] = rw[b + 9]!;
      if (len >= LEN_ESCAPE || ulen >= LEN_ESCAPE) {
        this.big.set(`${p}:${rw[b + 9]}`, { length: len, ulen });
        lu[dst] = LEN_ESCAPE;
        ul[dst] = 0;
      } else {
        lu[dst] = (len | ((ulen >>> 16) << 24)) >>> 0;
        ul[dst] = ulen & 0xffff;
      }
      dst++;
    }
    copyMain(sh.n);
    // New directory: old positions shifted by the recent entries of lower buckets.
    const dir = new Uint32Array(BUCKETS + 1);
    let shift = 0;
    for (let bkt = 0; bkt <= BUCKETS; bkt++) {
      shift += perBucket[bkt]!;
      dir[bkt] = sh.dir[bkt]! + shift;
    }
    dir[BUCKETS] = total;
    sh.k0 = k0;
    sh.k = k;
    sh.pt = pt;
    sh.off = off;
    sh.lu = lu;
    sh.ul = ul;
    sh.dir = dir;
    sh.n = total;
  }
}

/** Orders main entry m against recent entry at rw[b…] by (ID, type, pack, offset); bucket equal. */
function compareMain(sh: Shard, m: number, rw: Uint32Array, b: number): number {
  const a0 = sh.k0[m]!;
  const b0 = rw[b]! & 0xffff;
  if (a0 !== b0) return a0 < b0 ? -1 : 1;
  const kb = m * 7;
  for (let y = 0; y < 7; y++) {
    const x = sh.k[kb + y]!;
    const z = rw[b + 1 + y]!;
    if (x !== z) return x < z ? -1 : 1;
  }
  const pa = sh.pt[m]!;
  const pb = rw[b + 8]!;
  if ((pa & 1) !== (pb & 1)) return (pa & 1) - (pb & 1);
  if (pa !== pb) return pa < pb ? -1 : 1;
  const oa = sh.off[m]!;
  const ob = rw[b + 9]!;
  return oa === ob ? 0 : oa < ob ? -1 : 1;
}

/** Orders recent entries x and y by (ID, type, pack, offset). */
function compareRecent(rw: Uint32Array, x: number, y: number): number {
  const a = x * RW;
  const b = y * RW;
  for (let j = 0; j < 8; j++) {
    if (rw[a + j] !== rw[b + j]) return rw[a + j]! < rw[b + j]! ? -1 : 1;
  }
  const pa = rw[a + 8]!;
  const pb = rw[b + 8]!;
  if ((pa & 1) !== (pb & 1)) return (pa & 1) - (pb & 1);
  if (pa !== pb) return pa < pb ? -1 : 1;
  return rw[a + 9]! - rw[b + 9]!;
}

/** The recent entries' numbers sorted by full key: LSD radix sort on w0 (2 × 16 bits), then ties. */
function sortRecent(rw: Uint32Array, n: number): Uint32Array {
  // Keys and entry numbers side by side, so each pass reads them sequentially.
  let ka = new Uint32Array(n);
  let ia = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    ka[i] = rw[i * RW]!;
    ia[i] = i;
  }
  let kb = new Uint32Array(n);
  let ib = new Uint32Array(n);
  const count = new Uint32Array(65537);
  for (const shift of [0, 16]) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[((ka[i]! >>> shift) & 0xffff) + 1]!++;
    for (let d = 0; d < 65536; d++) count[d + 1]! += count[d]!;
    for (let i = 0; i < n; i++) {
      const k = ka[i]!;
      const at = count[(k >>> shift) & 0xffff]!++;
      kb[at] = k;
      ib[at] = ia[i]!;
    }
    [ka, kb] = [kb, ka];
    [ia, ib] = [ib, ia];
  }
  // Runs with equal w0 (rare with uniform IDs, common only for duplicates): insertion sort.
  for (let i = 1; i < n; i++) {
    if (ka[i] !== ka[i - 1]) continue;
    const e = ia[i]!;
    let j = i - 1;
    while (j >= 0 && ka[j] === ka[i] && compareRecent(rw, ia[j]!, e) > 0) {
      ia[j + 1] = ia[j]!;
      j--;
    }
    ia[j + 1] = e;
  }
  return ia;
}
