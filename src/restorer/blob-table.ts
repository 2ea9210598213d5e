/**
 * The data blobs of a restore plan, in columns: each blob once (32-byte binary ID, pack number,
 * offset, length, uncompressed length), the places it must be written to ("refs": file entry and
 * file offset, chained per blob in the order they were added), and per pack its blobs sorted by
 * offset. About 70 bytes per blob plus 20 per ref, against the ~600 of a PlannedBlob object with a
 * hex ID, a target array and Map entries.
 *
 * Blob numbers are dense (0..count-1, in order of first use); pack numbers likewise, so that packs
 * are read in the order the tree walk first needed them.
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { Column } from './columns.js';

/** Where a blob is stored (as the repository's index says). */
export interface BlobLoc {
  packId: Id;
  offset: number;
  length: number;
  uncompressedLength?: number;
}

/** An ID is held as eight 32-bit words (big-endian: the bytes in order). */
const ID_WORDS = 8;
/** IDs per chunk of the ID store: 256 KiB chunks, never copied when the table grows. */
const IDS_PER_CHUNK = 1 << 13;

/** Value of a lower-case hex digit by character code, -1 for anything else. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) HEX['0123456789abcdef'.charCodeAt(i)] = i;
/** Bytes the encryption adds to a blob (IV + MAC): plaintext length of an uncompressed blob. */
const SEAL_OVERHEAD = 32;

export class BlobTable {
  /** Blobs in the table. */
  count = 0;
  private readonly idChunks: Uint32Array[] = [];
  private readonly pack = new Column(Uint32Array);
  private readonly offset = new Column(Float64Array);
  private readonly length = new Column(Uint32Array);
  private readonly ulen = new Column(Uint32Array);
  /** First and last ref of each blob (-1: none). */
  private readonly first = new Column(Int32Array);
  private readonly last = new Column(Int32Array);

  /** Blobs the columns have room for. */
  private blobRoom = 0;

  /** Refs in the table. */
  refCount = 0;
  /** Refs the columns have room for. */
  private refRoom = 0;
  private readonly refEntry = new Column(Uint32Array);
  private readonly refBlob = new Column(Uint32Array);
  private readonly refOffset = new Column(Float64Array);
  private readonly refNext = new Column(Int32Array);

  private readonly packIds: Id[] = [];
  /** Pack ID → number, while planning. */
  private packNumbers: Map<Id, number> | undefined = new Map();
  /** Per pack p, its blobs are packOrder[packStart[p] .. packStart[p + 1]) (after finish()). */
  private packStart = new Uint32Array(1);
  private packOrder = new Uint32Array(0);

  /** Open-addressing hash table of blob numbers by ID (-1: empty), while planning. */
  private table: Int32Array | undefined = new Int32Array(1024).fill(-1);
  /** The ID last given to find() or add(), in binary. */
  private readonly probe = new Uint32Array(ID_WORDS);
  private readonly hexOut = Buffer.alloc(ID_WORDS * 4);
  /** The last ID find() did not find, and the empty slot where it goes (until the table changes). */
  private missId: Id | undefined;
  private missSlot = -1;

  /** The number of the blob with this ID, or -1 when it is not in the table (or `id` is no ID). */
  find(id: Id): number {
    const t = this.planning();
    this.missId = undefined;
    if (!this.parse(id)) return -1;
    const slot = this.slot(t, this.probe);
    const b = t[slot]!;
    if (b === -1) {
      // add() of this very ID usually follows: it need not parse and probe again
      this.missId = id;
      this.missSlot = slot;
    }
    return b;
  }

  /** Adds a blob not in the table yet (see find()); returns its number. */
  add(id: Id, loc: BlobLoc): number {
    const t = this.planning();
    let slot: number;
    if (id === this.missId) {
      slot = this.missSlot;
    } else {
      if (!this.parse(id)) throw new CairnError('INTERNAL', `not a blob ID: ${JSON.stringify(id)}`);
      slot = this.slot(t, this.probe);
      if (t[slot] !== -1) throw new CairnError('INTERNAL', `blob ${id} is in the plan already`);
    }
    this.missId = undefined;
    const b = this.count++;
    if (this.count > this.blobRoom) {
      for (const c of [this.pack, this.offset, this.length, this.ulen, this.first, this.last]) c.reserve(this.count);
      this.blobRoom = this.pack.capacity;
    }
    const c = Math.floor(b / IDS_PER_CHUNK);
    if (c === this.idChunks.length) this.idChunks.push(new Uint32Array(IDS_PER_CHUNK * ID_WORDS));
    this.idChunks[c]!.set(this.probe, (b - c * IDS_PER_CHUNK) * ID_WORDS);
    let pn = this.packNumbers!.get(loc.packId);
    if (pn === undefined) {
      pn = this.packIds.push(loc.packId) - 1;
      this.packNumbers!.set(loc.packId, pn);
    }
    this.pack.set(b, pn);
    this.offset.set(b, loc.offset);
    this.length.set(b, loc.length);
    this.ulen.set(b, loc.uncompressedLength ?? 0);
    this.first.set(b, -1);
    this.last.set(b, -1);
    t[slot] = b;
    if (this.count * 2 > t.length) this.rehash(t.length * 2);
    return b;
  }

  /** Records that blob b is to be written into `entry` at `fileOffset`; returns the ref's number. */
  addRef(b: number, entry: number, fileOffset: number): number {
    const r = this.refCount++;
    if (this.refCount > this.refRoom) {
      for (const c of [this.refEntry, this.refBlob, this.refOffset, this.refNext]) c.reserve(this.refCount);
      this.refRoom = this.refEntry.capacity;
    }
    this.refEntry.set(r, entry);
    this.refBlob.set(r, b);
    this.refOffset.set(r, fileOffset);
    this.refNext.set(r, -1);
    const last = this.last.get(b);
    if (last === -1) this.first.set(b, r);
    else this.refNext.set(last, r);
    this.last.set(b, r);
    return r;
  }

  /**
   * Ends planning: groups blobs by pack, sorted by offset, and drops what only planning needed
   * (the ID hash table, the pack ID map).
   */
  finish(): void {
    this.planning();
    const packs = this.packIds.length;
    const start = new Uint32Array(packs + 1);
    for (let b = 0; b < this.count; b++) start[this.pack.get(b) + 1]!++;
    for (let p = 0; p < packs; p++) start[p + 1]! += start[p]!;
    const fill = start.slice(0, packs);
    const order = new Uint32Array(this.count);
    for (let b = 0; b < this.count; b++) order[fill[this.pack.get(b)]!++] = b;
    const off = this.offset;
    for (let p = 0; p < packs; p++) order.subarray(start[p]!, start[p + 1]!).sort((a, b) => off.get(a) - off.get(b) || a - b);
    this.packStart = start;
    this.packOrder = order;
    this.table = undefined;
    this.packNumbers = undefined;
  }

  // --- blobs

  /** Blob b's ID (hex). */
  id(b: number): Id {
    const c = Math.floor(b / IDS_PER_CHUNK);
    const words = this.idChunks[c]!;
    const at = (b - c * IDS_PER_CHUNK) * ID_WORDS;
    for (let k = 0; k < ID_WORDS; k++) this.hexOut.writeUInt32BE(words[at + k]!, k * 4);
    return this.hexOut.toString('hex');
  }

  packOf(b: number): number {
    return this.pack.get(b);
  }

  offsetOf(b: number): number {
    return this.offset.get(b);
  }

  lengthOf(b: number): number {
    return this.length.get(b);
  }

  /** Blob b's location, as the repository's openBlob wants it. */
  loc(b: number): BlobLoc {
    const loc: BlobLoc = { packId: this.packIds[this.pack.get(b)]!, offset: this.offset.get(b), length: this.length.get(b) };
    if (this.ulen.get(b) > 0) loc.uncompressedLength = this.ulen.get(b);
    return loc;
  }

  /** Plaintext length: the uncompressed length of a compressed blob, else the stored one minus the seal. */
  plainLength(b: number): number {
    return this.ulen.get(b) || this.length.get(b) - SEAL_OVERHEAD;
  }

  // --- refs

  /** Blob b's first ref, -1 when none. */
  firstRef(b: number): number {
    return this.first.get(b);
  }

  /** The ref after r of the same blob, -1 after the last. */
  nextRef(r: number): number {
    return this.refNext.get(r);
  }

  refEntryOf(r: number): number {
    return this.refEntry.get(r);
  }

  refBlobOf(r: number): number {
    return this.refBlob.get(r);
  }

  refOffsetOf(r: number): number {
    return this.refOffset.get(r);
  }

  // --- packs

  get packCount(): number {
    return this.packIds.length;
  }

  packId(p: number): Id {
    return this.packIds[p]!;
  }

  /** Pack p's blobs sorted by offset (after finish()). */
  blobsOf(p: number): Uint32Array {
    if (this.table !== undefined) throw new CairnError('INTERNAL', 'blob table not finished');
    return this.packOrder.subarray(this.packStart[p]!, this.packStart[p + 1]!);
  }

  /** Bytes held by the columns (capacity, not only the used part), for tests and diagnostics. */
  get bytesHeld(): number {
    let n = 0;
    for (const c of this.idChunks) n += c.byteLength;
    for (const a of [this.pack, this.offset, this.length, this.ulen, this.first, this.last, this.refEntry, this.refBlob, this.refOffset, this.refNext, this.packStart, this.packOrder]) {
      n += a.byteLength;
    }
    return n + (this.table?.byteLength ?? 0);
  }

  /** Puts the binary form of `id` (64 lower-case hex digits) into the probe; false when it is no ID. */
  private parse(id: Id): boolean {
    if (id.length !== ID_WORDS * 8) return false;
    let bad = 0;
    for (let k = 0; k < ID_WORDS; k++) {
      let v = 0;
      for (let j = k * 8; j < k * 8 + 8; j++) {
        const c = id.charCodeAt(j);
        const x = c < 128 ? HEX[c]! : -1;
        bad |= x;
        v = (v << 4) | (x & 15);
      }
      this.probe[k] = v;
    }
    return bad >= 0;
  }

  private planning(): Int32Array {
    if (this.table === undefined) throw new CairnError('INTERNAL', 'blob table already finished');
    return this.table;
  }

  /** The slot of the ID in w in t: where it is, or the empty slot where it would go. */
  private slot(t: Int32Array, w: Uint32Array): number {
    const mask = t.length - 1;
    // IDs are SHA-256 digests: any of their bits are as good a hash as any
    let s = w[0]! & mask;
    for (;;) {
      const b = t[s]!;
      if (b === -1) return s;
      const c = Math.floor(b / IDS_PER_CHUNK);
      const words = this.idChunks[c]!;
      const at = (b - c * IDS_PER_CHUNK) * ID_WORDS;
      let k = 0;
      while (k < ID_WORDS && words[at + k] === w[k]) k++;
      if (k === ID_WORDS) return s;
      s = (s + 1) & mask;
    }
  }

  private rehash(size: number): void {
    const t = new Int32Array(size).fill(-1);
    const w = new Uint32Array(ID_WORDS);
    for (let b = 0; b < this.count; b++) {
      const c = Math.floor(b / IDS_PER_CHUNK);
      const at = (b - c * IDS_PER_CHUNK) * ID_WORDS;
      const words = this.idChunks[c]!;
      for (let k = 0; k < ID_WORDS; k++) w[k] = words[at + k]!;
      t[this.slot(t, w)] = b;
    }
    this.table = t;
  }
}
