/**
 * Writes packs from blobs that are already sealed (encrypted, possibly compressed) with this
 * repository's master key: backup's BlobWriter after sealing, prune when it repacks without
 * recompressing. One open pack per blob type (spec §5.5: one type per pack); a pack is finished
 * once it reaches the target size and stored in the background (bounded). Packs are only reported
 * once durably stored, so a caller can reference them from an index afterwards (spec §11).
 *
 * A pack's bytes go to a PackSink: on local disks straight into the pack's file as they come, on
 * object stores into a local temporary file uploaded when the pack is complete (see pack-sink.ts).
 */
import type { Id } from '../core/ids.js';
import { Semaphore } from '../core/semaphore.js';
import { encodePackHeader, type PackBlob } from '../format/pack.js';
import type { BlobType } from './master-index.js';
import { openPackSink, PackMemory, type PackSink } from './pack-sink.js';
import type { Repository } from './repository.js';

export interface WrittenPack {
  id: Id;
  blobs: PackBlob[];
  size: number;
}

export interface PackWriterOptions {
  /** Target pack size (restic's default 16 MiB). */
  packSize?: number;
  /** Packs being finished (stored) at once; only in-memory packs (no spool) cost ≈ (this + 2) × packSize. */
  uploadConcurrency?: number;
  /** Called after each pack is durably stored (index bookkeeping, progress, fault injection in tests). */
  onPackStored?: (p: WrittenPack) => void | Promise<void>;
}

interface OpenPack {
  sink: PackSink;
  blobs: PackBlob[];
}

export class PackWriter {
  private readonly packSize: number;
  private readonly uploads: Semaphore;
  private readonly memory: PackMemory;
  private readonly inflight = new Set<Promise<void>>();
  private readonly open: Record<BlobType, OpenPack | undefined> = { data: undefined, tree: undefined };
  private readonly opening: Record<BlobType, Promise<void> | undefined> = { data: undefined, tree: undefined };
  /** Full packs waiting for a slot, and callers of waitForRoom() waiting for that to drain. */
  private queued = 0;
  private roomWaiters: Array<() => void> = [];
  private failure: unknown;
  private hasFailed = false;
  readonly written: WrittenPack[] = [];

  constructor(private readonly repo: Repository, private readonly opts: PackWriterOptions = {}) {
    this.packSize = opts.packSize ?? 16 * 1024 * 1024;
    // Not more for spooled packs although they hold no memory while finished: each finish blocks
    // a libuv pool thread in fsync, and the pool (4 threads here) also runs the seal kernels.
    this.uploads = new Semaphore(Math.max(1, opts.uploadConcurrency ?? 2));
    this.memory = new PackMemory(this.packSize);
  }

  private check(): void {
    if (this.hasFailed) throw this.failure;
  }

  private fail(e: unknown): void {
    if (!this.hasFailed) {
      this.hasFailed = true;
      this.failure = e;
    }
  }

  get failed(): boolean {
    return this.hasFailed;
  }

  /** Starts a new pack of this type (once, however many callers are waiting for it). */
  private openPack(type: BlobType): Promise<void> {
    return (this.opening[type] ??= openPackSink(this.repo.backend, this.memory)
      .then((sink) => {
        this.open[type] = { sink, blobs: [] };
      })
      .finally(() => {
        this.opening[type] = undefined;
      }));
  }

  /**
   * Appends a sealed blob (IV + payload + MAC) to the open pack of its type. The bytes are copied,
   * so `sealed` may be a view into a larger buffer the caller reuses or drops. Resolves once the
   * writer can take more (a full pack has a slot to be stored in, spooled bytes are written).
   */
  async add(type: BlobType, id: Id, sealed: Uint8Array, uncompressedLength = 0): Promise<void> {
    const { room } = await this.append(type, id, sealed, uncompressedLength);
    await room;
  }

  /**
   * add() in two steps: resolves as soon as the bytes are copied (the caller may reuse `sealed`
   * then), with `room`, which settles when the writer can take more.
   */
  async append(type: BlobType, id: Id, sealed: Uint8Array, uncompressedLength = 0): Promise<{ room: Promise<void> }> {
    this.check();
    while (this.open[type] === undefined) await this.openPack(type);
    // from here to the append nothing awaits: no other append() can slip in between
    const p = this.open[type];
    const b: PackBlob = { type, id, length: sealed.length, offset: p.sink.size };
    if (uncompressedLength) b.uncompressedLength = uncompressedLength;
    p.sink.append(sealed);
    p.blobs.push(b);
    if (p.sink.size < this.packSize) return { room: p.sink.ready() };
    this.open[type] = undefined;
    return { room: this.startUpload(p) };
  }

  /** Bytes waiting in open packs. */
  get pendingBytes(): number {
    return (this.open.data?.sink.size ?? 0) + (this.open.tree?.sink.size ?? 0);
  }

  /** Settles when no full pack waits for a slot (producers wait here before making more blobs). */
  async waitForRoom(): Promise<void> {
    while (this.queued > 0) await new Promise<void>((r) => this.roomWaiters.push(r));
  }

  private async startUpload(p: OpenPack): Promise<void> {
    this.queued++;
    try {
      await this.uploads.acquire();
    } finally {
      if (--this.queued === 0) for (const w of this.roomWaiters.splice(0)) w();
    }
    const task = this.upload(p)
      .catch(async (e) => {
        this.fail(e);
        await p.sink.discard().catch(() => undefined);
      })
      .finally(() => {
        this.uploads.release();
        this.inflight.delete(task);
      });
    this.inflight.add(task);
  }

  private async upload(p: OpenPack): Promise<void> {
    const sealedHeader = this.repo.sealer.seal(encodePackHeader(p.blobs));
    const trailer = Buffer.allocUnsafe(sealedHeader.length + 4);
    trailer.set(sealedHeader, 0);
    trailer.writeUInt32LE(sealedHeader.length, sealedHeader.length);
    const size = p.sink.size + trailer.length;
    const id = await p.sink.finish(trailer);
    const w: WrittenPack = { id, blobs: p.blobs, size };
    this.written.push(w);
    await this.opts.onPackStored?.(w);
  }

  /** Finishes the open packs and waits until every pack is stored. */
  async flush(): Promise<WrittenPack[]> {
    while (this.opening.data || this.opening.tree) await Promise.allSettled([this.opening.data, this.opening.tree]);
    for (const type of ['data', 'tree'] as const) {
      const p = this.open[type];
      if (p === undefined) continue;
      this.open[type] = undefined;
      if (p.blobs.length > 0) await this.startUpload(p);
      else await p.sink.discard();
    }
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    this.check();
    return this.written;
  }

  /** Drops the open packs and waits for the stores in flight (after an error). */
  async abort(): Promise<void> {
    while (this.opening.data || this.opening.tree) await Promise.allSettled([this.opening.data, this.opening.tree]);
    for (const type of ['data', 'tree'] as const) {
      const p = this.open[type];
      this.open[type] = undefined;
      await p?.sink.discard().catch(() => undefined);
    }
    await Promise.allSettled([...this.inflight]);
  }
}
