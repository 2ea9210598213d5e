/**
 * Writes packs from blobs that are already sealed (encrypted, possibly compressed) with this
 * repository's master key — what prune needs to repack without recompressing. One open pack per
 * blob type (spec §5.5: one type per pack); a pack is finished once it reaches the target size and
 * uploaded in the background (bounded). Packs are only reported once durably stored, so a caller
 * can reference them from an index afterwards (spec §11).
 */
import { createHash } from 'node:crypto';
import type { Id } from '../core/ids.js';
import { Semaphore } from '../core/semaphore.js';
import { native } from '../native/index.js';
import { encodePackHeader, type PackBlob } from '../format/pack.js';
import type { BlobType } from './master-index.js';
import type { Repository } from './repository.js';

export interface WrittenPack {
  id: Id;
  blobs: PackBlob[];
  size: number;
}

export interface PackWriterOptions {
  /** Target pack size (restic's default 16 MiB). */
  packSize?: number;
  /** Packs uploaded at once; memory ≈ (uploads + 2) × packSize. */
  uploadConcurrency?: number;
  /** Called after each pack is durably stored (progress, fault injection in tests). */
  onPackStored?: (p: WrittenPack) => void | Promise<void>;
}

interface OpenPack {
  /** Pack bytes so far (blobs back to back); grows by doubling, the header is appended at the end. */
  buf: Buffer;
  blobs: PackBlob[];
  size: number;
}

/** First buffer of an open pack; packs of small (tree) blobs stay small. */
const INITIAL_PACK_BUFFER = 1 << 20;

/**
 * Makes room for `extra` more bytes. Past the first MiB the buffer jumps to the largest size a pack
 * can reach (target + one maximal blob): pages never written are not resident, and no further
 * copies are needed.
 */
function ensure(p: OpenPack, extra: number, packSize: number): void {
  if (p.size + extra <= p.buf.length) return;
  let cap = p.buf.length === 0 ? INITIAL_PACK_BUFFER : Math.max(p.buf.length * 2, packSize + 9 * 1024 * 1024);
  while (cap < p.size + extra) cap *= 2;
  const next = Buffer.allocUnsafe(cap);
  p.buf.copy(next, 0, 0, p.size);
  p.buf = next;
}

export class PackWriter {
  private readonly packSize: number;
  private readonly uploads: Semaphore;
  private readonly inflight = new Set<Promise<void>>();
  private readonly open: Record<BlobType, OpenPack | undefined> = { data: undefined, tree: undefined };
  private failure: unknown;
  private hasFailed = false;
  /** Buffers of stored packs, reused for the next ones (a pack buffer is tens of MiB). */
  private readonly spare: Buffer[] = [];
  readonly written: WrittenPack[] = [];

  constructor(private readonly repo: Repository, private readonly opts: PackWriterOptions = {}) {
    this.packSize = opts.packSize ?? 16 * 1024 * 1024;
    this.uploads = new Semaphore(Math.max(1, opts.uploadConcurrency ?? 2));
  }

  private check(): void {
    if (this.hasFailed) throw this.failure;
  }

  /**
   * Appends a sealed blob (IV + payload + MAC) to the open pack of its type. The bytes are copied,
   * so `sealed` may be a view into a larger buffer the caller reuses or drops.
   */
  async add(type: BlobType, id: Id, sealed: Uint8Array, uncompressedLength = 0): Promise<void> {
    this.check();
    let p = this.open[type];
    if (!p) p = this.open[type] = { buf: this.spare.pop() ?? Buffer.alloc(0), blobs: [], size: 0 };
    const b: PackBlob = { type, id, length: sealed.length, offset: p.size };
    if (uncompressedLength) b.uncompressedLength = uncompressedLength;
    ensure(p, sealed.length, this.packSize);
    p.buf.set(sealed, p.size);
    p.blobs.push(b);
    p.size += sealed.length;
    if (p.size >= this.packSize) {
      this.open[type] = undefined;
      await this.startUpload(p);
    }
  }

  /** Bytes waiting in open packs. */
  get pendingBytes(): number {
    return (this.open.data?.size ?? 0) + (this.open.tree?.size ?? 0);
  }

  private async startUpload(p: OpenPack): Promise<void> {
    await this.uploads.acquire();
    const task = this.upload(p)
      .catch((e) => {
        if (!this.hasFailed) {
          this.hasFailed = true;
          this.failure = e;
        }
      })
      .finally(() => {
        this.uploads.release();
        this.inflight.delete(task);
      });
    this.inflight.add(task);
  }

  private async upload(p: OpenPack): Promise<void> {
    const sealedHeader = this.repo.sealer.seal(encodePackHeader(p.blobs));
    ensure(p, sealedHeader.length + 4, this.packSize);
    p.buf.set(sealedHeader, p.size);
    p.buf.writeUInt32LE(sealedHeader.length, p.size + sealedHeader.length);
    const buf = p.buf;
    const data = buf.subarray(0, p.size + sealedHeader.length + 4);
    p.buf = Buffer.alloc(0);
    // the addon hashes on the thread pool, in parallel with the blobs still being verified
    const id = native.blobKernels === 'native' ? await native.sha256(data) : createHash('sha256').update(data).digest('hex');
    await this.repo.backend.save({ type: 'pack', name: id }, data);
    if (this.spare.length < 1) this.spare.push(buf);
    const w: WrittenPack = { id, blobs: p.blobs, size: data.length };
    this.written.push(w);
    await this.opts.onPackStored?.(w);
  }

  /** Finishes the open packs and waits until every pack is stored. */
  async flush(): Promise<WrittenPack[]> {
    for (const type of ['data', 'tree'] as const) {
      const p = this.open[type];
      if (p && p.blobs.length > 0) {
        this.open[type] = undefined;
        await this.startUpload(p);
      }
    }
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
    this.check();
    return this.written;
  }

  /** Waits for uploads in flight without finishing open packs (after an error). */
  async abort(): Promise<void> {
    this.open.data = undefined;
    this.open.tree = undefined;
    await Promise.allSettled([...this.inflight]);
  }
}
