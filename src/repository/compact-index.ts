/**
 * The union of all index files in typed arrays, for maintenance (check, prune, stats, diff,
 * copy) where the whole index of a large repository must be held at once.
 *
 * A "handle" is one (type, blob ID) pair; an "entry" is one location of a handle (a handle may be
 * stored in several packs). Both are dense numbers, so callers keep per-handle and per-entry
 * state in typed arrays of handleCount / entryCount elements.
 *
 * Layout (42–43 bytes per blob plus ≈ 35–37 bytes per pack):
 *
 * Loading only appends: each entry goes, as 12 words (ID w0…w7 big-endian, pack << 1 | type,
 * offset, length, uncompressed length), to the staging area of one of 256 shards chosen by the
 * first ID byte. The first query (or the end of load()) freezes the index once: shard by shard,
 * the staged entries are sorted by (ID, type, load order), exact duplicates (same handle,
 * pack, offset and length) are dropped, as restic does when it merges index files, and the first
 * location of each handle becomes a *row*. A shard's staging is released as soon as its rows are
 * built, so freezing needs little more memory than the staging itself. Per row:
 *   k0    u16   bits 0–14 of w0 << 1 | type (bits 24–31 select the shard, 15–23 the bucket:
 *                 not stored; rows are ordered by w0, type, w1…w7, so k0 ascends in a bucket)
 *   k     7×u32 w1…w7
 *   ptLo  u16   bits 0–15 of the pack number
 *   ptHi  u8    bits 16–23 (none up to 2^16 packs, u16 beyond 2^24)
 *   off   u32   offset in the pack
 *   lu    u32   length (24 bits) | bits 16–23 of the uncompressed length
 *   ul    u16   bits 0–15 of the uncompressed length
 * plus a directory of 512 buckets per shard. A blob of 16 MiB or more (data chunks are at most
 * 8 MiB) stores 0xFFFFFF as its length and its real sizes in a side map.
 *
 * Rows are numbered across shards in that order, and row r is both handle r and entry r.
 * Further locations of a handle (the same blob in several packs, after concurrent backups or an
 * interrupted prune), and everything added after freezing (prune's new packs), are *overflow*
 * entries numbered from the last row on, chained per handle in load order. A (type, ID) first
 * seen after freezing becomes a *late* handle numbered after the rows: numbers handed out never
 * change.
 *
 * Packs: IDs as eight words each with an open-addressing table (2.5 or 5 bytes), type bits (1 byte).
 * Which index file first listed a pack follows from the runs of pack numbers created per file.
 */
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { decodeIndexCompact, type IndexBatch } from '../format/index-scan.js';
import { COMPRESSED_ENTRY_SIZE, PACK_OVERHEAD, PLAIN_ENTRY_SIZE } from '../format/pack.js';
import { grown, lowerBound, tailMatches, type BlobLocation, type BlobType } from './master-index.js';
import type { Repository } from './repository.js';

export const DATA = 0;
export const TREE = 1;

export function typeCode(t: BlobType): number {
  return t === 'tree' ? TREE : DATA;
}

export function typeName(code: number): BlobType {
  return code === TREE ? 'tree' : 'data';
}

/** A problem met while loading the index (an unreadable file, the old format). */
export interface IndexLoadIssue {
  indexId: Id;
  kind: 'unreadable' | 'old-format';
  message: string;
}

export interface CompactIndexLoadOptions {
  signal?: AbortSignal;
  /** Index files decoded at once; each needs its decrypted JSON plus its typed arrays in memory. */
  concurrency?: number;
  /** Unreadable index files are reported here and skipped; without it the first one throws. */
  onIssue?: (issue: IndexLoadIssue) => void;
}

/** Stored bytes of index files decoded at the same time (one larger file is always admitted alone). */
const INDEX_LOAD_BUDGET = 8 * 1024 * 1024;

/**
 * The top SHARD_BITS bits of an ID select its shard (at most 8: staging picks the shard from the
 * first byte), the next BUCKET_BITS its bucket in the shard's directory; k0 holds the K0_BITS
 * below them and the type. Fewer, larger shards would save a little memory on small indexes but
 * freeze slower (a shard's staging should stay near the CPU caches while it is sorted).
 */
const SHARD_BITS = 8;
const BUCKET_BITS = 9;
const K0_BITS = 32 - SHARD_BITS - BUCKET_BITS;
const SHARDS = 1 << SHARD_BITS;
const BUCKETS = 1 << BUCKET_BITS;
const K0_MASK = (1 << K0_BITS) - 1;
/** Words per staged entry: w0…w7, pack << 1 | type, offset, length, uncompressed length. */
const SW = 12;
/** Words per overflow entry: handle, next overflow entry (NO_NEXT: none), pack << 1 | type, offset, length, uncompressed length. */
const OW = 6;
/** Words per late handle: w0…w7, type, first overflow entry. */
const LW = 10;
const NO_NEXT = 0xffffffff;
const LEN_ESCAPE = 0xffffff;
/** Rows per element of the row → shard table. */
const BLOCK_BITS = 8;
/** Pack tables are grown beyond this load factor and trimmed to it when freezing. */
const PACK_LOAD = 0.8;
/** Pack numbers must fit pack << 1 | type in 32 bits. */
const MAX_PACKS = 2 ** 31;

const EMPTY_U32 = new Uint32Array(0);
const EMPTY_U16 = new Uint16Array(0);
const EMPTY_U8 = new Uint8Array(0);

/** The big-endian 32-bit word at b[at…at+3]. */
function wordAt(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** One shard: its staged entries until the index is frozen, then its rows (see the layout comment). */
class Shard {
  constructor(readonly num: number) {}
  /** Staged entries, SW words each. */
  st = EMPTY_U32;
  sn = 0;
  /** Number of the shard's first row. */
  base = 0;
  n = 0;
  k0 = EMPTY_U16;
  k = EMPTY_U32;
  ptLo = EMPTY_U16;
  /** Empty when every pack number fits ptLo. */
  ptHi: Uint8Array | Uint16Array = EMPTY_U8;
  off = EMPTY_U32;
  lu = EMPTY_U32;
  ul = EMPTY_U16;
  /** dir[b] = first row whose bucket is ≥ b; dir[BUCKETS] = n. */
  dir: Uint16Array | Uint32Array = EMPTY_U16;
}

export class CompactIndex {
  // packs
  /** Pack IDs, eight big-endian words each. */
  private pw = new Uint32Array(8 * 16);
  private pn = 0;
  /** Open addressing on the pack ID's first word: pack number, or ptabEmpty (see rehashPacks). */
  private ptab: Uint16Array | Uint32Array = new Uint16Array(32).fill(0xffff);
  private ptabEmpty = 0xffff;
  /** Bit 0: has data blobs, bit 1: has tree blobs. */
  private packTypeBits = new Uint8Array(16);
  /** Pack numbers created while adding one index file (or by addPack: -1) form runs: run k starts at runStart[k]. */
  private readonly runStart: number[] = [];
  private readonly runIndex: number[] = [];
  /** First index file of a pack created by addPack and listed by an index file later. */
  private readonly firstIndexLater = new Map<number, number>();
  private readonly packIndexesMulti = new Map<number, Set<number>>();
  // rows
  private readonly shards: Shard[] = Array.from({ length: SHARDS }, (_, s) => new Shard(s));
  private lastShard = this.shards[0]!;
  private frozen = false;
  private rows = 0;
  /** Per block of 2^BLOCK_BITS rows: the shard of its first row. */
  private rowShard = EMPTY_U8;
  /** Sizes of rows whose length or uncompressed length does not fit 24 bits, by row. */
  private readonly big = new Map<number, { length: number; ulen: number }>();
  // overflow entries and late handles
  private ow = EMPTY_U32;
  private on = 0;
  /** Row → its first overflow entry. */
  private readonly overflowHead = new Map<number, number>();
  private lw = EMPTY_U32;
  private ln = 0;
  /** Late handles by type digit + hex ID. */
  private readonly lateByKey = new Map<string, number>();
  /** Entries expected in all while loading (load() extrapolates from the files read so far; 0: unknown). */
  private expected = 0;
  /** IDs of the index files loaded, in load order. */
  readonly indexIds: Id[] = [];
  private readonly q = new Uint32Array(8);
  private readonly bytes = Buffer.alloc(32);
  private readonly idOut = Buffer.alloc(32);

  /** Loads every index file of the repository. */
  static async load(repo: Repository, opts: CompactIndexLoadOptions = {}): Promise<CompactIndex> {
    const idx = new CompactIndex();
    const files: Array<{ name: Id; size: number }> = [];
    for await (const f of repo.backend.list('index', opts.signal)) files.push(f);
    const totalBytes = files.reduce((a, f) => a + f.size, 0);
    let bytesAdded = 0;
    let entriesAdded = 0;
    // Decoding a file needs about 4× its stored size at once (ciphertext, plaintext, JSON,
    // typed arrays): load several small files at a time, but large ones alone.
    const limit = Math.max(1, opts.concurrency ?? 4);
    let inflight = 0;
    let inflightBytes = 0;
    const waiters: Array<() => void> = [];
    const admit = async (size: number) => {
      while (inflight > 0 && (inflight >= limit || inflightBytes + size > INDEX_LOAD_BUDGET)) await new Promise<void>((r) => waiters.push(r));
      inflight++;
      inflightBytes += size;
    };
    const release = (size: number) => {
      inflight--;
      inflightBytes -= size;
      waiters.splice(0).forEach((w) => w());
    };
    let failure: unknown;
    const tasks: Promise<void>[] = [];
    for (const f of files) {
      await admit(f.size);
      if (failure !== undefined) {
        release(f.size);
        break;
      }
      tasks.push(
        (async () => {
          try {
            opts.signal?.throwIfAborted();
            let batch: IndexBatch;
            try {
              batch = decodeIndexCompact(await repo.loadUnpacked('index', f.name), repo.version);
            } catch (e) {
              if (!opts.onIssue || isCancel(e)) throw e;
              opts.onIssue({ indexId: f.name, kind: 'unreadable', message: `index ${f.name}: ${errorMessage(e)}` });
              return;
            }
            if (batch.oldFormat) opts.onIssue?.({ indexId: f.name, kind: 'old-format', message: `index ${f.name} has old format` });
            // index files hold similar numbers of entries per stored byte: extrapolate the total
            bytesAdded += f.size;
            entriesAdded += batch.count;
            if (bytesAdded > 0) idx.expected = Math.ceil((entriesAdded * totalBytes) / bytesAdded);
            idx.addBatch(batch, f.name);
          } catch (e) {
            failure ??= e;
          } finally {
            release(f.size);
          }
        })(),
      );
    }
    await Promise.all(tasks);
    if (failure !== undefined) throw failure;
    idx.settle();
    return idx;
  }

  /** Adds the packs of one decoded index file. */
  addBatch(b: IndexBatch, indexId?: Id): void {
    let indexNo = -1;
    if (indexId !== undefined) {
      indexNo = this.indexIds.length;
      this.indexIds.push(indexId);
    }
    for (let p = 0; p < b.packIds.length; p++) {
      const pn = this.internPack(b.packIds[p]!, indexNo);
      for (let i = b.packStart[p]!; i < b.packStart[p + 1]!; i++) {
        this.addEntry(b.ids, i * 32, b.types[i]!, pn, b.offsets[i]!, b.lengths[i]!, b.ulens[i]!);
      }
    }
  }

  /** Adds the blobs of one pack (e.g. a pack written by prune). */
  addPack(packId: Id, blobs: ReadonlyArray<{ id: Id; type: BlobType; offset: number; length: number; uncompressedLength?: number }>): void {
    const pn = this.internPack(packId, -1);
    for (const blob of blobs) {
      if (!hexStringInto(blob.id, this.bytes)) throw new CairnError('INVALID_ARGUMENT', `invalid blob ID ${blob.id}`);
      const ulen = blob.uncompressedLength ?? 0;
      // x >>> 0 === x: a non-negative integer below 2^32
      if (blob.offset >>> 0 !== blob.offset || blob.length >>> 0 !== blob.length || ulen >>> 0 !== ulen) {
        throw new CairnError('INVALID_ARGUMENT', `blob ${blob.id} in pack ${packId} has an invalid offset or length`);
      }
      this.addEntry(this.bytes, 0, typeCode(blob.type), pn, blob.offset, blob.length, ulen);
    }
  }

  // ---- packs ---------------------------------------------------------------------------------

  private findPack(w: Uint32Array): number {
    const pw = this.pw;
    const cap = this.ptab.length;
    for (let i = (w[0]! >>> 1) % cap; ; i = i + 1 === cap ? 0 : i + 1) {
      const p = this.ptab[i]!;
      if (p === this.ptabEmpty) return -1;
      const b = p * 8;
      if (pw[b] === w[0] && pw[b + 1] === w[1] && pw[b + 2] === w[2] && pw[b + 3] === w[3] &&
          pw[b + 4] === w[4] && pw[b + 5] === w[5] && pw[b + 6] === w[6] && pw[b + 7] === w[7]) {
        return p;
      }
    }
  }

  private placePack(p: number): void {
    const cap = this.ptab.length;
    for (let i = (this.pw[p * 8]! >>> 1) % cap; ; i = i + 1 === cap ? 0 : i + 1) {
      if (this.ptab[i] === this.ptabEmpty) {
        this.ptab[i] = p;
        return;
      }
    }
  }

  private rehashPacks(cap: number): void {
    // 16-bit entries while every pack the table takes before it grows has a number below the empty mark
    this.ptabEmpty = cap * PACK_LOAD < 0xffff ? 0xffff : 0xffffffff;
    this.ptab = this.ptabEmpty === 0xffff ? new Uint16Array(cap).fill(0xffff) : new Uint32Array(cap).fill(0xffffffff);
    for (let p = 0; p < this.pn; p++) this.placePack(p);
  }

  private internPack(packId: Id, indexNo: number): number {
    const w = this.q;
    if (!this.parseWords(packId)) throw new CairnError('INVALID_ARGUMENT', `invalid pack ID ${JSON.stringify(packId)}`);
    let pn = this.findPack(w);
    if (pn < 0) {
      if (this.pn >= MAX_PACKS) throw new CairnError('INVALID_ARGUMENT', 'too many packs');
      pn = this.pn++;
      if (this.pn > this.packTypeBits.length) {
        const cap = this.packTypeBits.length * 2;
        this.pw = grown(this.pw, pn * 8, cap * 8);
        this.packTypeBits = grown(this.packTypeBits, pn, cap);
      }
      this.pw.set(w, pn * 8);
      if (this.pn > this.ptab.length * PACK_LOAD) this.rehashPacks(this.ptab.length * 2);
      else this.placePack(pn);
      if (this.runIndex[this.runIndex.length - 1] !== indexNo) {
        this.runStart.push(pn);
        this.runIndex.push(indexNo);
      }
    } else if (indexNo >= 0) {
      const first = this.firstIndexOf(pn);
      if (first < 0) this.firstIndexLater.set(pn, indexNo);
      else if (first !== indexNo) {
        let set = this.packIndexesMulti.get(pn);
        if (!set) this.packIndexesMulti.set(pn, (set = new Set([first])));
        set.add(indexNo);
      }
    }
    return pn;
  }

  /** The index file that first listed pack pn (-1: none). */
  private firstIndexOf(pn: number): number {
    const later = this.firstIndexLater.get(pn);
    if (later !== undefined) return later;
    let a = 0;
    let z = this.runStart.length;
    while (z - a > 1) {
      const m = (a + z) >>> 1;
      if (this.runStart[m]! <= pn) a = m;
      else z = m;
    }
    return this.runIndex[a]!;
  }

  /** Drops the growth slack of the pack arrays (loading is over when the index is frozen). */
  private trimPacks(): void {
    const n = this.pn;
    const cap = n + 64;
    if (this.packTypeBits.length > cap) {
      this.pw = grown(this.pw, n * 8, cap * 8);
      this.packTypeBits = grown(this.packTypeBits, n, cap);
    }
    const tab = Math.max(32, Math.ceil((n + 64) / PACK_LOAD));
    if (tab < this.ptab.length) this.rehashPacks(tab);
  }

  // ---- adding --------------------------------------------------------------------------------

  /**
   * The next capacity of a shard's full staging area of n entries. Shards fill evenly, so plain
   * doubling would copy all of them at about the same time and leave half of the staging as
   * garbage at once: with an estimate of the total, grow once to the expected size instead.
   */
  private stagingCapacity(n: number): number {
    const want = Math.ceil((this.expected / SHARDS) * 1.05) + 16;
    if (want > n) return want;
    return Math.max(16, Math.ceil(n * (this.expected > 0 ? 1.25 : 2)));
  }

  private addEntry(ids: Uint8Array, at: number, type: number, pack: number, offset: number, length: number, ulen: number): void {
    this.packTypeBits[pack] |= type === TREE ? 2 : 1;
    const pt = (pack * 2 + type) >>> 0;
    if (this.frozen) {
      this.addOverflow(ids, at, type, pt, offset, length, ulen);
      return;
    }
    const sh = this.shards[ids[at]! >>> (8 - SHARD_BITS)]!;
    if ((sh.sn + 1) * SW > sh.st.length) sh.st = grown(sh.st, sh.sn * SW, this.stagingCapacity(sh.sn) * SW);
    const st = sh.st;
    const b = sh.sn++ * SW;
    for (let j = 0; j < 8; j++) st[b + j] = wordAt(ids, at + 4 * j);
    st[b + 8] = pt;
    st[b + 9] = offset;
    st[b + 10] = length;
    st[b + 11] = ulen;
  }

  /** After freezing: a further location of a known handle, or the first of a late handle. */
  private addOverflow(ids: Uint8Array, at: number, type: number, pt: number, offset: number, length: number, ulen: number): void {
    const w = this.q;
    for (let j = 0; j < 8; j++) w[j] = wordAt(ids, at + 4 * j);
    let h = this.findWords(w, type);
    if (h < 0) {
      h = this.rows + this.ln++;
      if (this.ln * LW > this.lw.length) this.lw = grown(this.lw, (this.ln - 1) * LW, Math.max(16, this.ln * 2) * LW);
      const b = (this.ln - 1) * LW;
      this.lw.set(w, b);
      this.lw[b + 8] = type;
      this.lw[b + 9] = NO_NEXT;
      this.lateByKey.set(type + this.hexOfWords(w), h);
    } else {
      for (let e = this.firstEntry(h); e >= 0; e = this.nextEntry(e)) {
        if (this.entryPack(e) === pt >>> 1 && this.entryOffset(e) === offset && this.entryLength(e) === length) return; // exact duplicate
      }
    }
    this.appendOverflow(h, this.lastOverflowOf(h), pt, offset, length, ulen);
  }

  /** The last overflow entry (index into ow) of handle h, or -1. */
  private lastOverflowOf(h: number): number {
    let o = h < this.rows ? (this.overflowHead.get(h) ?? -1) : this.lw[(h - this.rows) * LW + 9]!;
    if (o < 0 || o === NO_NEXT) return -1;
    while (this.ow[o * OW + 1] !== NO_NEXT) o = this.ow[o * OW + 1]!;
    return o;
  }

  /**
   * Appends an overflow entry of handle h after overflow entry `prev` (-1: as its first). `row`:
   * whether h is a row (this.rows is only known once freezing is over).
   */
  private appendOverflow(h: number, prev: number, pt: number, offset: number, length: number, ulen: number, row = h < this.rows): void {
    const o = this.on++;
    if (this.on * OW > this.ow.length) this.ow = grown(this.ow, o * OW, Math.max(16, this.on * 2) * OW);
    const b = o * OW;
    this.ow[b] = h;
    this.ow[b + 1] = NO_NEXT;
    this.ow[b + 2] = pt;
    this.ow[b + 3] = offset;
    this.ow[b + 4] = length;
    this.ow[b + 5] = ulen;
    if (prev >= 0) this.ow[prev * OW + 1] = o;
    else if (row) this.overflowHead.set(h, o);
    else this.lw[(h - this.rows) * LW + 9] = o;
  }

  // ---- freezing ------------------------------------------------------------------------------

  /** Freezes the staged entries into rows on the first query (see the layout comment). */
  private settle(): void {
    if (!this.frozen) this.freeze();
  }

  private freeze(): void {
    this.frozen = true;
    // bytes per row for the pack number above its low 16 bits (all rows' packs exist by now)
    const hiBytes = this.pn <= 1 << 16 ? 0 : this.pn <= 1 << 24 ? 1 : 2;
    let base = 0;
    for (const sh of this.shards) {
      sh.base = base;
      if (sh.sn > 0) this.freezeShard(sh, hiBytes);
      base += sh.n;
    }
    this.rows = base;
    const table = new Uint8Array((base >>> BLOCK_BITS) + 1);
    let s = 0;
    for (let blk = 0; blk < table.length; blk++) {
      const r = blk << BLOCK_BITS;
      while (s < SHARDS - 1 && this.shards[s]!.base + this.shards[s]!.n <= r) s++;
      table[blk] = s;
    }
    this.rowShard = table;
    this.trimPacks();
  }

  /** Sorts one shard's staged entries and turns them into its rows; overflow entries go to ow. */
  private freezeShard(sh: Shard, hiBytes: number): void {
    const n = sh.sn;
    const st = sh.st;
    sh.st = EMPTY_U32;
    const order = sortStaged(st, n);
    // groups of one handle: the first is its row, later ones overflow unless exact duplicates
    let m = 0;
    for (let g = 0; g < n; ) {
      let end = g + 1;
      while (end < n && compareStaged(st, order[g]!, order[end]!) === 0) end++;
      const first = order[g]!;
      const h = sh.base + m;
      order[m++] = first;
      let prev = -1;
      for (let j = g + 1; j < end; j++) {
        const x = order[j]! * SW;
        let dup = false;
        for (let i = g; i < j && !dup; i++) {
          const y = order[i]! * SW;
          dup = st[x + 8] === st[y + 8] && st[x + 9] === st[y + 9] && st[x + 10] === st[y + 10];
        }
        if (dup) continue;
        this.appendOverflow(h, prev, st[x + 8]!, st[x + 9]!, st[x + 10]!, st[x + 11]!, true);
        prev = this.on - 1;
      }
      g = end;
    }
    // one buffer for all the shard's arrays (each buffer of its own costs heap too); 4-byte elements first keep them aligned
    const dirWide = m > 0xffff;
    const buf = new ArrayBuffer(m * (42 + hiBytes) + (BUCKETS + 1) * (dirWide ? 4 : 2));
    let at = 0;
    const take = <T>(make: new (b: ArrayBuffer, at: number, n: number) => T, size: number, n: number): T => {
      const a = new make(buf, at, n);
      at += size * n;
      return a;
    };
    const k = take(Uint32Array, 4, m * 7);
    const off = take(Uint32Array, 4, m);
    const lu = take(Uint32Array, 4, m);
    const dir = dirWide ? take(Uint32Array, 4, BUCKETS + 1) : take(Uint16Array, 2, BUCKETS + 1);
    const k0 = take(Uint16Array, 2, m);
    const ptLo = take(Uint16Array, 2, m);
    const ul = take(Uint16Array, 2, m);
    const ptHi = hiBytes === 2 ? take(Uint16Array, 2, m) : hiBytes === 1 ? take(Uint8Array, 1, m) : EMPTY_U8;
    for (let i = 0; i < m; i++) {
      const b = order[i]! * SW;
      const w0 = st[b]!;
      const pt = st[b + 8]!;
      k0[i] = ((w0 & K0_MASK) << 1) | (pt & 1);
      dir[((w0 >>> K0_BITS) & (BUCKETS - 1)) + 1]!++;
      for (let j = 0; j < 7; j++) k[i * 7 + j] = st[b + 1 + j]!;
      ptLo[i] = (pt >>> 1) & 0xffff;
      if (hiBytes > 0) ptHi[i] = pt >>> 17;
      off[i] = st[b + 9]!;
      const len = st[b + 10]!;
      const ulen = st[b + 11]!;
      if (len >= LEN_ESCAPE || ulen >= LEN_ESCAPE) {
        this.big.set(sh.base + i, { length: len, ulen });
        lu[i] = LEN_ESCAPE;
      } else {
        lu[i] = (len | ((ulen >>> 16) << 24)) >>> 0;
        ul[i] = ulen & 0xffff;
      }
    }
    for (let b = 0; b < BUCKETS; b++) dir[b + 1]! += dir[b]!;
    sh.sn = 0;
    sh.n = m;
    sh.k0 = k0;
    sh.k = k;
    sh.ptLo = ptLo;
    sh.ptHi = ptHi;
    sh.off = off;
    sh.lu = lu;
    sh.ul = ul;
    sh.dir = dir;
  }

  // ---- lookups -------------------------------------------------------------------------------

  /** Parses a hex ID (either case) into this.q; false when it is not one. */
  private parseWords(id: string): boolean {
    if (typeof id !== 'string' || id.length !== 64) return false;
    let bad = 0;
    for (let j = 0; j < 8; j++) {
      let v = 0;
      for (let c = j * 8; c < j * 8 + 8; c++) {
        const code = id.charCodeAt(c);
        const d = code < 128 ? HEX[code]! : -1;
        bad |= d;
        v = (v << 4) | (d & 15);
      }
      this.q[j] = v >>> 0;
    }
    return bad >= 0;
  }

  private hexOfWords(w: ArrayLike<number>, at = 0): Id {
    for (let j = 0; j < 8; j++) this.bytes.writeUInt32BE(w[at + j]!, 4 * j);
    return this.bytes.toString('hex');
  }

  /** Handle of (type, ID words w), or -1. */
  private findWords(w: Uint32Array, type: number): number {
    const w0 = w[0]!;
    const sh = this.shards[w0 >>> (32 - SHARD_BITS)]!;
    if (sh.n > 0) {
      const bucket = (w0 >>> K0_BITS) & (BUCKETS - 1);
      const key = ((w0 & K0_MASK) << 1) | type;
      const k0 = sh.k0;
      const end = sh.dir[bucket + 1]!;
      for (let i = lowerBound(k0, sh.dir[bucket]!, end, key); i < end && k0[i] === key; i++) {
        if (tailMatches(sh.k, i, w)) return sh.base + i;
      }
    }
    if (this.ln === 0) return -1;
    return this.lateByKey.get(type + this.hexOfWords(w)) ?? -1;
  }

  /** The shard holding row r (r < rows); scans in entry order hit the one found last. */
  private shardOf(r: number): Shard {
    let sh = this.lastShard;
    if (r - sh.base < sh.n && r >= sh.base) return sh;
    let s = this.rowShard[r >>> BLOCK_BITS]!;
    sh = this.shards[s]!;
    while (r >= sh.base + sh.n) sh = this.shards[++s]!;
    this.lastShard = sh;
    return sh;
  }

  /** The bucket of row i of a shard (the bits of w0 between the shard's and k0's). */
  private static bucketOf(sh: Shard, i: number): number {
    let a = 0;
    let z = BUCKETS;
    while (z - a > 1) {
      const m = (a + z) >>> 1;
      if (sh.dir[m]! <= i) a = m;
      else z = m;
    }
    return a;
  }

  /** The ID words of handle h into this.q. */
  private idWords(h: number): Uint32Array {
    const w = this.q;
    if (h < this.rows) {
      const sh = this.shardOf(h);
      const i = h - sh.base;
      w[0] = ((sh.num << (32 - SHARD_BITS)) | (CompactIndex.bucketOf(sh, i) << K0_BITS) | (sh.k0[i]! >>> 1)) >>> 0;
      for (let j = 0; j < 7; j++) w[j + 1] = sh.k[i * 7 + j]!;
    } else {
      w.set(this.lw.subarray((h - this.rows) * LW, (h - this.rows) * LW + 8));
    }
    return w;
  }

  /** The pack number of row i of a shard. */
  private static rowPack(sh: Shard, i: number): number {
    return sh.ptHi.length === 0 ? sh.ptLo[i]! : sh.ptHi[i]! * 0x10000 + sh.ptLo[i]!;
  }

  private rowLength(sh: Shard, i: number): number {
    const len = sh.lu[i]! & LEN_ESCAPE;
    return len === LEN_ESCAPE ? this.big.get(sh.base + i)!.length : len;
  }

  private rowUlen(sh: Shard, i: number): number {
    const lu = sh.lu[i]!;
    if ((lu & LEN_ESCAPE) === LEN_ESCAPE) return this.big.get(sh.base + i)!.ulen;
    return ((lu >>> 24) << 16) | sh.ul[i]!;
  }

  // ---------------------------------------------------------------------------------------
  // queries

  get handleCount(): number {
    this.settle();
    return this.rows + this.ln;
  }

  get entryCount(): number {
    this.settle();
    return this.rows + this.on;
  }

  get packCount(): number {
    return this.pn;
  }

  /** Handle of (type, hex ID), or -1 when not indexed. */
  find(type: BlobType | number, id: Id): number {
    this.settle();
    const t = typeof type === 'number' ? type : typeCode(type);
    if (!this.parseWords(id)) return -1;
    return this.findWords(this.q, t);
  }

  /** Handle of (type, raw 32-byte ID at bytes[at]), or -1. */
  findBytes(type: number, bytes: Uint8Array, at = 0): number {
    this.settle();
    for (let j = 0; j < 8; j++) this.q[j] = wordAt(bytes, at + 4 * j);
    return this.findWords(this.q, type);
  }

  has(type: BlobType, id: Id): boolean {
    return this.find(type, id) >= 0;
  }

  handleId(h: number): Id {
    this.settle();
    return this.hexOfWords(this.idWords(h));
  }

  handleType(h: number): number {
    this.settle();
    if (h < this.rows) {
      const sh = this.shardOf(h);
      return sh.k0[h - sh.base]! & 1;
    }
    return this.lw[(h - this.rows) * LW + 8]!;
  }

  firstEntry(h: number): number {
    this.settle();
    if (h < this.rows) return h;
    const o = this.lw[(h - this.rows) * LW + 9]!;
    return o === NO_NEXT ? -1 : this.rows + o;
  }

  nextEntry(e: number): number {
    this.settle();
    let o: number | undefined;
    if (e < this.rows) o = this.on === 0 ? undefined : this.overflowHead.get(e);
    else o = this.ow[(e - this.rows) * OW + 1]!;
    return o === undefined || o === NO_NEXT ? -1 : this.rows + o;
  }

  /** The entries of a handle (its locations), first loaded first. */
  entriesOf(h: number): number[] {
    const out: number[] = [];
    for (let e = this.firstEntry(h); e >= 0; e = this.nextEntry(e)) out.push(e);
    return out;
  }

  entryHandle(e: number): number {
    this.settle();
    return e < this.rows ? e : this.ow[(e - this.rows) * OW]!;
  }

  entryPack(e: number): number {
    this.settle();
    if (e < this.rows) {
      const sh = this.shardOf(e);
      return CompactIndex.rowPack(sh, e - sh.base);
    }
    return this.ow[(e - this.rows) * OW + 2]! >>> 1;
  }

  entryOffset(e: number): number {
    this.settle();
    if (e < this.rows) {
      const sh = this.shardOf(e);
      return sh.off[e - sh.base]!;
    }
    return this.ow[(e - this.rows) * OW + 3]!;
  }

  entryLength(e: number): number {
    this.settle();
    if (e < this.rows) {
      const sh = this.shardOf(e);
      return this.rowLength(sh, e - sh.base);
    }
    return this.ow[(e - this.rows) * OW + 4]!;
  }

  entryUlen(e: number): number {
    this.settle();
    if (e < this.rows) {
      const sh = this.shardOf(e);
      return this.rowUlen(sh, e - sh.base);
    }
    return this.ow[(e - this.rows) * OW + 5]!;
  }

  /** Header entry size of an entry (37, or 41 when compressed). */
  entryHeaderSize(e: number): number {
    return this.entryUlen(e) ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE;
  }

  location(e: number): BlobLocation {
    const type = typeName(this.handleType(this.entryHandle(e)));
    const loc: BlobLocation = { packId: this.packId(this.entryPack(e)), type, offset: this.entryOffset(e), length: this.entryLength(e) };
    const ulen = this.entryUlen(e);
    if (ulen) loc.uncompressedLength = ulen;
    return loc;
  }

  /** Plaintext size of a handle (from its first location). */
  plainSize(h: number): number {
    const e = this.firstEntry(h);
    return this.entryUlen(e) || this.entryLength(e) - 32;
  }

  /** Plaintext size of (type, id), or undefined when not indexed. */
  blobSize(type: BlobType, id: Id): number | undefined {
    const h = this.find(type, id);
    return h < 0 ? undefined : this.plainSize(h);
  }

  packId(pn: number): Id {
    return this.hexOfWords(this.pw, pn * 8);
  }

  packNumber(packId: Id): number | undefined {
    if (!this.parseWords(packId)) return undefined;
    const p = this.findPack(this.q);
    return p < 0 ? undefined : p;
  }

  /** True when the pack holds both data and tree blobs. */
  isMixedPack(pn: number): boolean {
    return this.packTypeBits[pn] === 3;
  }

  /** 0 data, 1 tree, 2 mixed, 255 no blobs. */
  packType(pn: number): number {
    const b = this.packTypeBits[pn];
    return b === 1 ? DATA : b === 2 ? TREE : b === 3 ? 2 : 255;
  }

  /** Index files (IDs) listing each pack that is listed by more than one. */
  packsInSeveralIndexes(): Array<{ pack: number; indexes: Id[] }> {
    const out: Array<{ pack: number; indexes: Id[] }> = [];
    for (const [pn, set] of this.packIndexesMulti) out.push({ pack: pn, indexes: [...set].map((i) => this.indexIds[i]!) });
    return out;
  }

  /**
   * Entries grouped by pack: the entries of pack p are order[start[p] .. start[p+1]), by offset
   * (equal offsets by entry number). Computed on demand (4 bytes per entry while it is alive, 8
   * while it is built).
   */
  byPack(): { start: Uint32Array; order: Uint32Array } {
    this.settle();
    const np = this.pn;
    const ow = this.ow;
    const start = new Uint32Array(np + 1);
    for (const sh of this.shards) for (let i = 0; i < sh.n; i++) start[CompactIndex.rowPack(sh, i) + 1]!++;
    for (let o = 0; o < this.on; o++) start[(ow[o * OW + 2]! >>> 1) + 1]!++;
    for (let p = 0; p < np; p++) start[p + 1]! += start[p]!;
    const fill = start.slice(0, np);
    const order = new Uint32Array(this.rows + this.on);
    const offs = new Uint32Array(order.length);
    for (const sh of this.shards) {
      for (let i = 0; i < sh.n; i++) {
        const at = fill[CompactIndex.rowPack(sh, i)]!++;
        order[at] = sh.base + i;
        offs[at] = sh.off[i]!;
      }
    }
    for (let o = 0; o < this.on; o++) {
      const at = fill[ow[o * OW + 2]! >>> 1]!++;
      order[at] = this.rows + o;
      offs[at] = ow[o * OW + 3]!;
    }
    for (let p = 0; p < np; p++) sortByOffset(order, offs, start[p]!, start[p + 1]!);
    return { start, order };
  }

  /** Expected pack file sizes from the index (spec §5.4): Σ (length + entry size) + 36. */
  packSizes(): Float64Array {
    this.settle();
    const sizes = new Float64Array(this.pn);
    for (const sh of this.shards) {
      const { ptLo, ptHi, lu, ul, n } = sh;
      for (let i = 0; i < n; i++) {
        const pack = ptHi.length === 0 ? ptLo[i]! : ptHi[i]! * 0x10000 + ptLo[i]!;
        const x = lu[i]!;
        if ((x & LEN_ESCAPE) === LEN_ESCAPE) {
          const big = this.big.get(sh.base + i)!;
          sizes[pack] += big.length + (big.ulen ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE);
        } else sizes[pack] += (x & LEN_ESCAPE) + ((x >>> 24) | ul[i]! ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE);
      }
    }
    const ow = this.ow;
    for (let o = 0; o < this.on; o++) sizes[ow[o * OW + 2]! >>> 1] += ow[o * OW + 4]! + (ow[o * OW + 5] ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE);
    for (let p = 0; p < sizes.length; p++) if (sizes[p]! > 0) sizes[p] += PACK_OVERHEAD;
    return sizes;
  }

  /** Raw ID bytes of a handle (a buffer that the next call overwrites). */
  handleIdBytes(h: number): Buffer {
    this.settle();
    const w = this.idWords(h);
    for (let j = 0; j < 8; j++) this.idOut.writeUInt32BE(w[j]!, 4 * j);
    return this.idOut;
  }
}

/** Orders staged entries x and y (numbers) by (w0, type, w1…w7): the order of rows, in which k0 ascends. */
function compareStaged(st: Uint32Array, x: number, y: number): number {
  const a = x * SW;
  const b = y * SW;
  if (st[a] !== st[b]) return st[a]! < st[b]! ? -1 : 1;
  const t = (st[a + 8]! & 1) - (st[b + 8]! & 1);
  if (t !== 0) return t;
  for (let j = 1; j < 8; j++) {
    if (st[a + j] !== st[b + j]) return st[a + j]! < st[b + j]! ? -1 : 1;
  }
  return 0;
}

/**
 * The numbers of a shard's n staged entries in row order (compareStaged), equal ones in staging (load)
 * order: a counting sort on the ID bits below the shard bits (uniform in SHA-256 digests), about
 * one entry per bucket, then an insertion sort that only has to fix order within buckets.
 */
function sortStaged(st: Uint32Array, n: number): Uint32Array {
  let bits = 1;
  while (bits < 20 && 1 << bits < n) bits++;
  const shift = 32 - SHARD_BITS - bits;
  const mask = (1 << bits) - 1;
  const at = new Uint32Array(mask + 2);
  for (let i = 0; i < n; i++) at[((st[i * SW]! >>> shift) & mask) + 1]!++;
  for (let d = 0; d <= mask; d++) at[d + 1]! += at[d]!;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[at[(st[i * SW]! >>> shift) & mask]!++] = i;
  for (let i = 1; i < n; i++) {
    const x = order[i]!;
    let j = i - 1;
    if (compareStaged(st, order[j]!, x) <= 0) continue;
    do {
      order[j + 1] = order[j]!;
      j--;
    } while (j >= 0 && compareStaged(st, order[j]!, x) > 0);
    order[j + 1] = x;
  }
  return order;
}

/** Sorts order[a..z) by offs (kept alongside); equal offsets keep their order. */
function sortByOffset(order: Uint32Array, offs: Uint32Array, a: number, z: number): void {
  if (z - a <= 32 || z - a >= 2 ** 21) {
    // small runs (the common pack of a dozen blobs); the Float64 keys below cannot hold ≥ 2^21 positions
    for (let i = a + 1; i < z; i++) {
      const e = order[i]!;
      const off = offs[i]!;
      let j = i - 1;
      while (j >= a && offs[j]! > off) {
        order[j + 1] = order[j]!;
        offs[j + 1] = offs[j]!;
        j--;
      }
      order[j + 1] = e;
      offs[j + 1] = off;
    }
    return;
  }
  // offset · 2^21 + position: exact in a double, and a native numeric sort
  const keys = new Float64Array(z - a);
  for (let i = a; i < z; i++) keys[i - a] = offs[i]! * 2 ** 21 + (i - a);
  keys.sort();
  const was = order.slice(a, z);
  for (let i = 0; i < keys.length; i++) {
    const pos = keys[i]! % 2 ** 21;
    order[a + i] = was[pos]!;
    offs[a + i] = Math.floor(keys[i]! / 2 ** 21);
  }
}

/** Value of a hex digit by character code (either case), -1 for anything else. */
const HEX = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) {
  HEX['0123456789abcdef'.charCodeAt(d)] = d;
  HEX['0123456789ABCDEF'.charCodeAt(d)] = d;
}

/** Decodes a 64-character hex string into dst[0..32) without allocating; false if it is not one. */
export function hexStringInto(s: string, dst: Uint8Array): boolean {
  if (typeof s !== 'string' || s.length !== 64) return false;
  let bad = 0;
  for (let i = 0; i < 32; i++) {
    const a = s.charCodeAt(2 * i);
    const b = s.charCodeAt(2 * i + 1);
    if ((a | b) > 127) return false;
    const hi = HEX[a]!;
    const lo = HEX[b]!;
    bad |= hi | lo;
    dst[i] = (hi << 4) | lo;
  }
  return bad >= 0;
}

function isCancel(e: unknown): boolean {
  return (e as { name?: string } | null)?.name === 'AbortError' || (e instanceof CairnError && e.code === 'CANCELLED');
}
