import type { Id } from '../core/ids.js';
import type { BlobLocation, MasterIndex } from './master-index.js';

/**
 * Keeps recently used tree packs in memory, so walking a snapshot costs one request per tree pack
 * instead of one per directory. On a remote backend every request is a round trip; restic avoids
 * them with its on-disk cache of tree packs, cairn with this bounded in-memory one.
 *
 * A pack is fetched once as the byte range covering all its indexed tree blobs; blobs are then
 * cut out of it. Concurrent requests for the same pack share one fetch. Least recently used packs
 * are dropped beyond `maxBytes`; a pack whose tree range exceeds `maxPackBytes` is not cached.
 */
export class TreePackCache {
  private readonly packs = new Map<Id, Promise<{ start: number; data: Buffer } | undefined>>();
  private readonly sizes = new Map<Id, number>();
  private bytes = 0;

  constructor(
    private readonly index: MasterIndex,
    private readonly read: (packId: Id, offset: number, length: number) => Promise<Buffer>,
    private readonly maxBytes = 64 << 20,
    private readonly maxPackBytes = 32 << 20,
  ) {}

  /** The stored bytes of a tree blob from a cached pack range, or undefined when it cannot be served from the cache. */
  async get(loc: BlobLocation): Promise<Buffer | undefined> {
    let entry = this.packs.get(loc.packId);
    if (entry) {
      // most recently used goes last
      this.packs.delete(loc.packId);
      this.packs.set(loc.packId, entry);
    } else {
      const ext = this.index.packExtent(loc.packId, 'tree');
      if (!ext || ext.end - ext.start > this.maxPackBytes || ext.blobs < 2) return undefined;
      entry = this.read(loc.packId, ext.start, ext.end - ext.start).then(
        (data) => {
          this.sizes.set(loc.packId, data.length);
          this.bytes += data.length;
          this.evict(loc.packId);
          return { start: ext.start, data };
        },
        () => {
          this.packs.delete(loc.packId);
          return undefined;
        },
      );
      this.packs.set(loc.packId, entry);
    }
    const got = await entry;
    if (!got) return undefined;
    const from = loc.offset - got.start;
    if (from < 0 || from + loc.length > got.data.length) return undefined; // blob added to the index after the fetch
    return got.data.subarray(from, from + loc.length);
  }

  /** Forgets a pack (e.g. when a blob cut from it did not verify). */
  drop(packId: Id): void {
    if (!this.packs.delete(packId)) return;
    this.bytes -= this.sizes.get(packId) ?? 0;
    this.sizes.delete(packId);
  }

  private evict(keep: Id): void {
    for (const id of this.packs.keys()) {
      if (this.bytes <= this.maxBytes) return;
      if (id !== keep && this.sizes.has(id)) this.drop(id);
    }
  }
}
