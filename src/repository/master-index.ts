import type { Id } from '../core/ids.js';

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

interface Entry {
  pack: number; // index into packIds
  offset: number;
  length: number;
  uncompressedLength: number; // 0 = not compressed
}

/**
 * The in-memory union of all index files: (type, blob ID) → locations. Pack IDs are interned so
 * each entry holds a small integer instead of a 64-character string.
 */
export class MasterIndex {
  private readonly packIds: Id[] = [];
  private readonly packNumbers = new Map<Id, number>();
  private readonly packBlobs: Array<{ type: BlobType; ids: Id[] }> = [];
  private readonly maps: Record<BlobType, Map<Id, Entry | Entry[]>> = { data: new Map(), tree: new Map() };
  private blobCount = 0;

  private internPack(packId: Id): number {
    let n = this.packNumbers.get(packId);
    if (n === undefined) {
      n = this.packIds.length;
      this.packIds.push(packId);
      this.packNumbers.set(packId, n);
      this.packBlobs.push({ type: 'data', ids: [] });
    }
    return n;
  }

  /** Adds the blobs of one pack. Exact duplicate entries are dropped, as restic does when merging. */
  addPack(packId: Id, blobs: Array<{ id: Id; type: BlobType; offset: number; length: number; uncompressedLength?: number }>): void {
    const pn = this.internPack(packId);
    const pb = this.packBlobs[pn]!;
    for (const b of blobs) {
      const e: Entry = { pack: pn, offset: b.offset, length: b.length, uncompressedLength: b.uncompressedLength ?? 0 };
      const map = this.maps[b.type];
      const cur = map.get(b.id);
      if (cur === undefined) {
        map.set(b.id, e);
      } else {
        const list = Array.isArray(cur) ? cur : [cur];
        if (list.some((x) => x.pack === pn && x.offset === e.offset && x.length === e.length)) continue;
        list.push(e);
        map.set(b.id, list);
      }
      pb.type = b.type;
      pb.ids.push(b.id);
      this.blobCount++;
    }
  }

  has(type: BlobType, id: Id): boolean {
    return this.maps[type].has(id);
  }

  lookup(type: BlobType, id: Id): BlobLocation[] {
    const cur = this.maps[type].get(id);
    if (cur === undefined) return [];
    const list = Array.isArray(cur) ? cur : [cur];
    return list.map((e) => this.toLocation(type, e));
  }

  private toLocation(type: BlobType, e: Entry): BlobLocation {
    const loc: BlobLocation = { packId: this.packIds[e.pack]!, type, offset: e.offset, length: e.length };
    if (e.uncompressedLength) loc.uncompressedLength = e.uncompressedLength;
    return loc;
  }

  /** Plaintext size of a blob, or undefined when unknown. */
  blobSize(type: BlobType, id: Id): number | undefined {
    const cur = this.maps[type].get(id);
    if (cur === undefined) return undefined;
    const e = Array.isArray(cur) ? cur[0]! : cur;
    return e.uncompressedLength || e.length - 32;
  }

  get size(): number {
    return this.blobCount;
  }

  packCount(): number {
    return this.packIds.length;
  }

  hasPack(packId: Id): boolean {
    return this.packNumbers.has(packId);
  }

  /** Every indexed blob with its location, grouped by pack. */
  *entries(): IterableIterator<IndexedBlob> {
    for (const type of ['data', 'tree'] as const) {
      for (const [id, cur] of this.maps[type]) {
        const list = Array.isArray(cur) ? cur : [cur];
        for (const e of list) yield { id, ...this.toLocation(type, e) };
      }
    }
  }

  /** Blob IDs of each pack in insertion order. */
  *packs(): IterableIterator<{ packId: Id; type: BlobType; blobIds: Id[] }> {
    for (let i = 0; i < this.packIds.length; i++) {
      yield { packId: this.packIds[i]!, type: this.packBlobs[i]!.type, blobIds: this.packBlobs[i]!.ids };
    }
  }
}
