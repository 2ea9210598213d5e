/**
 * The union of all index files in typed arrays, for maintenance (check, prune, stats, diff,
 * copy) where the whole index of a large repository must be held at once.
 *
 * A "handle" is one (type, blob ID) pair; an "entry" is one location of a handle (a handle may be
 * stored in several packs). Per handle: 32 ID bytes + type + first entry; per entry: handle,
 * next entry of the same handle, pack number, offset, length, uncompressed length — about 70 bytes
 * per blob including the hash table, against ~250 bytes for a Map of objects keyed by hex strings.
 * Exact duplicate entries (same handle, pack, offset, length) are dropped, as restic does when it
 * merges index files.
 */
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { decodeIndexCompact, type IndexBatch } from '../format/index-scan.js';
import { COMPRESSED_ENTRY_SIZE, PACK_OVERHEAD, PLAIN_ENTRY_SIZE } from '../format/pack.js';
import type { BlobLocation, BlobType } from './master-index.js';
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

function growU32(a: Uint32Array, cap: number): Uint32Array {
  const b = new Uint32Array(cap);
  b.set(a);
  return b;
}

function growI32(a: Int32Array, cap: number): Int32Array {
  const b = new Int32Array(cap);
  b.set(a);
  return b;
}

export class CompactIndex {
  // packs
  private readonly packIdList: Id[] = [];
  private readonly packNumbers = new Map<Id, number>();
  /** Bit 0: has data blobs, bit 1: has tree blobs. */
  private packTypeBits = new Uint8Array(64);
  /** Index files listing each pack (first one); packs listed by several files are in packIndexesMulti. */
  private readonly packFirstIndex: number[] = [];
  private readonly packIndexesMulti = new Map<number, Set<number>>();
  // handles
  private hIds = Buffer.alloc(64 * 32);
  private hTypes = new Uint8Array(64);
  private hFirst: Int32Array = new Int32Array(64);
  private hCount = 0;
  private table = new Int32Array(256).fill(-1);
  private tableMask = 255;
  // entries
  private eHandle: Uint32Array = new Uint32Array(64);
  private eNext: Int32Array = new Int32Array(64);
  private ePack: Uint32Array = new Uint32Array(64);
  private eOffset: Uint32Array = new Uint32Array(64);
  private eLength: Uint32Array = new Uint32Array(64);
  private eUlen: Uint32Array = new Uint32Array(64);
  private eCount = 0;
  /** IDs of the index files loaded, in load order. */
  readonly indexIds: Id[] = [];
  private readonly scratch = Buffer.alloc(32);

  /** Loads every index file of the repository. */
  static async load(repo: Repository, opts: CompactIndexLoadOptions = {}): Promise<CompactIndex> {
    const idx = new CompactIndex();
    const files: Array<{ name: Id; size: number }> = [];
    for await (const f of repo.backend.list('index', opts.signal)) files.push(f);
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
      if (!hexStringInto(blob.id, this.scratch)) throw new CairnError('INVALID_ARGUMENT', `invalid blob ID ${blob.id}`);
      this.addEntry(this.scratch, 0, typeCode(blob.type), pn, blob.offset, blob.length, blob.uncompressedLength ?? 0);
    }
  }

  private internPack(packId: Id, indexNo: number): number {
    let pn = this.packNumbers.get(packId);
    if (pn === undefined) {
      pn = this.packIdList.length;
      this.packIdList.push(packId);
      this.packNumbers.set(packId, pn);
      this.packFirstIndex.push(indexNo);
      if (pn >= this.packTypeBits.length) {
        const b = new Uint8Array(this.packTypeBits.length * 2);
        b.set(this.packTypeBits);
        this.packTypeBits = b;
      }
    } else if (indexNo >= 0) {
      const first = this.packFirstIndex[pn]!;
      if (first < 0) this.packFirstIndex[pn] = indexNo;
      else if (first !== indexNo) {
        let set = this.packIndexesMulti.get(pn);
        if (!set) this.packIndexesMulti.set(pn, (set = new Set([first])));
        set.add(indexNo);
      }
    }
    return pn;
  }

  private slot(ids: Uint8Array, at: number, type: number): number {
    // IDs are SHA-256 digests: any 4 of their bytes are uniformly distributed
    const h = ((ids[at]! | (ids[at + 1]! << 8) | (ids[at + 2]! << 16) | (ids[at + 3]! << 24)) ^ (type * 0x9e3779b1)) >>> 0;
    return h & this.tableMask;
  }

  private sameId(h: number, ids: Uint8Array, at: number): boolean {
    const base = h * 32;
    const hi = this.hIds;
    for (let i = 0; i < 32; i++) if (hi[base + i] !== ids[at + i]) return false;
    return true;
  }

  private findIn(ids: Uint8Array, at: number, type: number): number {
    let s = this.slot(ids, at, type);
    for (;;) {
      const h = this.table[s]!;
      if (h < 0) return -1;
      if (this.hTypes[h] === type && this.sameId(h, ids, at)) return h;
      s = (s + 1) & this.tableMask;
    }
  }

  private rehash(): void {
    const size = this.table.length * 2;
    this.table = new Int32Array(size).fill(-1);
    this.tableMask = size - 1;
    for (let h = 0; h < this.hCount; h++) {
      let s = this.slot(this.hIds, h * 32, this.hTypes[h]!);
      while (this.table[s]! >= 0) s = (s + 1) & this.tableMask;
      this.table[s] = h;
    }
  }

  private newHandle(ids: Uint8Array, at: number, type: number): number {
    if (this.hCount === this.hTypes.length) {
      const cap = this.hTypes.length * 2;
      const nid = Buffer.alloc(cap * 32);
      this.hIds.copy(nid, 0, 0, this.hCount * 32);
      this.hIds = nid;
      const nt = new Uint8Array(cap);
      nt.set(this.hTypes);
      this.hTypes = nt;
      this.hFirst = growI32(this.hFirst, cap);
    }
    const h = this.hCount++;
    for (let i = 0; i < 32; i++) this.hIds[h * 32 + i] = ids[at + i]!;
    this.hTypes[h] = type;
    this.hFirst[h] = -1;
    if (this.hCount * 2 > this.table.length) this.rehash();
    else {
      let s = this.slot(ids, at, type);
      while (this.table[s]! >= 0) s = (s + 1) & this.tableMask;
      this.table[s] = h;
    }
    return h;
  }

  private addEntry(ids: Uint8Array, at: number, type: number, pack: number, offset: number, length: number, ulen: number): void {
    let h = this.findIn(ids, at, type);
    if (h < 0) h = this.newHandle(ids, at, type);
    else {
      for (let e = this.hFirst[h]!; e >= 0; e = this.eNext[e]!) {
        if (this.ePack[e] === pack && this.eOffset[e] === offset && this.eLength[e] === length) return; // exact duplicate
      }
    }
    if (this.eCount === this.eHandle.length) {
      const cap = this.eHandle.length * 2;
      this.eHandle = growU32(this.eHandle, cap);
      this.eNext = growI32(this.eNext, cap);
      this.ePack = growU32(this.ePack, cap);
      this.eOffset = growU32(this.eOffset, cap);
      this.eLength = growU32(this.eLength, cap);
      this.eUlen = growU32(this.eUlen, cap);
    }
    const e = this.eCount++;
    this.eHandle[e] = h;
    this.ePack[e] = pack;
    this.eOffset[e] = offset;
    this.eLength[e] = length;
    this.eUlen[e] = ulen;
    // append at the end of the handle's chain so entries keep their load order
    this.eNext[e] = -1;
    const first = this.hFirst[h]!;
    if (first < 0) this.hFirst[h] = e;
    else {
      let last = first;
      while (this.eNext[last]! >= 0) last = this.eNext[last]!;
      this.eNext[last] = e;
    }
    this.packTypeBits[pack] |= type === TREE ? 2 : 1;
  }

  // ---------------------------------------------------------------------------------------
  // queries

  get handleCount(): number {
    return this.hCount;
  }

  get entryCount(): number {
    return this.eCount;
  }

  get packCount(): number {
    return this.packIdList.length;
  }

  /** Handle of (type, hex ID), or -1 when not indexed. */
  find(type: BlobType | number, id: Id): number {
    const t = typeof type === 'number' ? type : typeCode(type);
    if (!hexStringInto(id, this.scratch)) return -1;
    return this.findIn(this.scratch, 0, t);
  }

  /** Handle of (type, raw 32-byte ID at bytes[at]), or -1. */
  findBytes(type: number, bytes: Uint8Array, at = 0): number {
    return this.findIn(bytes, at, type);
  }

  has(type: BlobType, id: Id): boolean {
    return this.find(type, id) >= 0;
  }

  handleId(h: number): Id {
    return this.hIds.toString('hex', h * 32, h * 32 + 32);
  }

  handleType(h: number): number {
    return this.hTypes[h]!;
  }

  firstEntry(h: number): number {
    return this.hFirst[h]!;
  }

  nextEntry(e: number): number {
    return this.eNext[e]!;
  }

  /** Number of locations of a handle. */
  entriesOf(h: number): number[] {
    const out: number[] = [];
    for (let e = this.hFirst[h]!; e >= 0; e = this.eNext[e]!) out.push(e);
    return out;
  }

  entryHandle(e: number): number {
    return this.eHandle[e]!;
  }

  entryPack(e: number): number {
    return this.ePack[e]!;
  }

  entryOffset(e: number): number {
    return this.eOffset[e]!;
  }

  entryLength(e: number): number {
    return this.eLength[e]!;
  }

  entryUlen(e: number): number {
    return this.eUlen[e]!;
  }

  /** Header entry size of an entry (37, or 41 when compressed). */
  entryHeaderSize(e: number): number {
    return this.eUlen[e] ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE;
  }

  location(e: number): BlobLocation {
    const loc: BlobLocation = {
      packId: this.packIdList[this.ePack[e]!]!,
      type: typeName(this.hTypes[this.eHandle[e]!]!),
      offset: this.eOffset[e]!,
      length: this.eLength[e]!,
    };
    if (this.eUlen[e]) loc.uncompressedLength = this.eUlen[e];
    return loc;
  }

  /** Plaintext size of a handle (from its first location). */
  plainSize(h: number): number {
    const e = this.hFirst[h]!;
    return this.eUlen[e] || this.eLength[e]! - 32;
  }

  /** Plaintext size of (type, id), or undefined when not indexed. */
  blobSize(type: BlobType, id: Id): number | undefined {
    const h = this.find(type, id);
    return h < 0 ? undefined : this.plainSize(h);
  }

  packId(pn: number): Id {
    return this.packIdList[pn]!;
  }

  packNumber(packId: Id): number | undefined {
    return this.packNumbers.get(packId);
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
   * Entries grouped by pack: the entries of pack p are order[start[p] .. start[p+1]), in load
   * order. Computed on demand (8 bytes per entry while it is alive).
   */
  byPack(): { start: Uint32Array; order: Uint32Array } {
    const np = this.packIdList.length;
    const start = new Uint32Array(np + 1);
    for (let e = 0; e < this.eCount; e++) start[this.ePack[e]! + 1]++;
    for (let p = 0; p < np; p++) start[p + 1] += start[p]!;
    const fill = start.slice(0, np);
    const order = new Uint32Array(this.eCount);
    for (let e = 0; e < this.eCount; e++) order[fill[this.ePack[e]!]++] = e;
    return { start, order };
  }

  /** Expected pack file sizes from the index (spec §5.4): Σ (length + entry size) + 36. */
  packSizes(): Float64Array {
    const sizes = new Float64Array(this.packIdList.length);
    for (let e = 0; e < this.eCount; e++) sizes[this.ePack[e]!] += this.eLength[e]! + (this.eUlen[e] ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE);
    for (let p = 0; p < sizes.length; p++) if (sizes[p]! > 0) sizes[p] += PACK_OVERHEAD;
    return sizes;
  }

  /** Raw ID bytes of a handle (a view; do not keep it across additions). */
  handleIdBytes(h: number): Buffer {
    return this.hIds.subarray(h * 32, h * 32 + 32);
  }
}

/** Decodes a 64-character hex string into dst[0..32) without allocating; false if it is not one. */
export function hexStringInto(s: string, dst: Uint8Array): boolean {
  if (s.length !== 64) return false;
  for (let i = 0; i < 32; i++) {
    const hi = hexVal(s.charCodeAt(2 * i));
    const lo = hexVal(s.charCodeAt(2 * i + 1));
    if ((hi | lo) < 0) return false;
    dst[i] = (hi << 4) | lo;
  }
  return true;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function isCancel(e: unknown): boolean {
  return (e as { name?: string } | null)?.name === 'AbortError' || (e instanceof CairnError && e.code === 'CANCELLED');
}
