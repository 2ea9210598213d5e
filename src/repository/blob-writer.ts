import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { hashId, type Id } from '../core/ids.js';
import { Semaphore } from '../core/semaphore.js';
import { WorkerPool } from '../core/worker-pool.js';
import { encodePackHeader } from '../format/pack.js';
import { encodeIndex } from '../format/index.js';
import type { BlobType } from './master-index.js';
import type { Repository } from './repository.js';
import { sealBlob, type SealResult } from './seal-blob.js';
import type { SealRequest, SealWorkerData } from './seal-worker.js';

export type Compression = 'auto' | 'off' | 'max';

export interface BlobWriterOptions {
  /** Target pack size: restic 0.14's default is 16 MiB; a pack is finished once it reaches it. */
  packSize?: number;
  compression?: Compression;
  /** Worker threads for compression + encryption (default: one per core). */
  workers?: number;
  /** Packs being uploaded at once; bounds memory to about (uploads + 2) × packSize. */
  uploadConcurrency?: number;
  /** An index file is written at least this often while blobs accumulate (restic: 10 min). */
  indexIntervalMs?: number;
  /** ... or when this many blobs are waiting (restic: 50k v1 / 150k v2). */
  indexMaxBlobs?: number;
}

export interface SaveResult {
  id: Id;
  /** True when the blob was already in the repository (or pending) and nothing was stored. */
  known: boolean;
  /** Bytes added to the repository for this blob (stored length), 0 when known. */
  added: number;
}

interface OpenPack {
  parts: Uint8Array[];
  blobs: Array<{ id: Id; type: BlobType; length: number; uncompressedLength?: number; offset: number }>;
  size: number;
}

/** Blobs smaller than this are sealed on the main thread: a worker round trip costs more. */
const INLINE_SEAL_LIMIT = 16 * 1024;

/**
 * Saves blobs into packs: dedup against the index and in-flight blobs, compress + encrypt in
 * worker threads, fill one open pack per blob type, upload packs as they fill (bounded), and write
 * index files for uploaded packs. Packs are always durable before an index names them.
 */
export class BlobWriter {
  private readonly packSize: number;
  private readonly compress: boolean;
  private readonly level: number;
  private readonly workers: number;
  private readonly indexIntervalMs: number;
  private readonly indexMaxBlobs: number;
  private readonly uploads: Semaphore;
  private readonly inflightUploads = new Set<Promise<void>>();
  private readonly pending = new Set<string>();
  private readonly open: Record<BlobType, OpenPack | undefined> = { data: undefined, tree: undefined };
  private pool: WorkerPool<SealRequest, SealResult> | undefined;
  private unindexed: Array<{ id: Id; blobs: OpenPack['blobs'] }> = [];
  private unindexedBlobs = 0;
  private unindexedSince = 0;
  private failure: unknown;
  private indexWrite: Promise<void> = Promise.resolve();
  readonly writtenIndexes: Id[] = [];
  readonly stats = { newBlobs: 0, knownBlobs: 0, addedBytes: 0, plainBytesAdded: 0, packsWritten: 0 };

  constructor(private readonly repo: Repository, opts: BlobWriterOptions = {}) {
    this.packSize = opts.packSize ?? 16 * 1024 * 1024;
    const compression = opts.compression ?? 'auto';
    this.compress = repo.version === 2 && compression !== 'off';
    // zstd level 3 is what restic's "auto" (klauspost "default") roughly corresponds to.
    this.level = compression === 'max' ? 19 : 3;
    this.workers = Math.max(1, opts.workers ?? availableParallelism());
    this.uploads = new Semaphore(Math.max(1, opts.uploadConcurrency ?? 2));
    this.indexIntervalMs = opts.indexIntervalMs ?? 5 * 60 * 1000;
    this.indexMaxBlobs = opts.indexMaxBlobs ?? (repo.version === 1 ? 50_000 : 150_000);
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private getPool(): WorkerPool<SealRequest, SealResult> {
    if (!this.pool) {
      const k = this.repo.masterKey;
      const wd: SealWorkerData = { encrypt: k.encrypt, macK: k.macK, macR: k.macR, level: this.level };
      this.pool = new WorkerPool(new URL('./seal-worker.js', import.meta.url), wd, this.workers);
    }
    return this.pool;
  }

  /** True when the blob is in the repository or on its way into it. */
  isKnown(type: BlobType, id: Id): boolean {
    return this.repo.index.has(type, id) || this.pending.has(type + id);
  }

  /**
   * Saves a blob unless it is known. `id` may be passed when the caller already hashed the data.
   * With `transfer`, the caller gives up `data` (its ArrayBuffer may be moved to a worker thread
   * and detached); otherwise it is copied.
   */
  async save(type: BlobType, data: Uint8Array, id?: Id, opts: { transfer?: boolean } = {}): Promise<SaveResult> {
    this.check();
    const blobId = id ?? hashId(data);
    const key = type + blobId;
    if (this.repo.index.has(type, blobId) || this.pending.has(key)) {
      this.stats.knownBlobs++;
      return { id: blobId, known: true, added: 0 };
    }
    this.pending.add(key);
    let sealed: SealResult;
    try {
      // Tree blobs are always compressed in v2 (restic compresses them even with --compression off).
      const compress = this.repo.version === 2 && (this.compress || type === 'tree');
      if (data.length <= INLINE_SEAL_LIMIT) sealed = sealBlob(this.repo.sealer, data, compress, this.level);
      else {
        // Hand the worker a buffer it can own: transferring avoids the structured-clone copy and
        // frees the caller's (possibly larger, shared) read buffer as soon as possible.
        const owned = opts.transfer && ownsWholeBuffer(data) ? data : new Uint8Array(data);
        sealed = await this.getPool().run({ data: owned, compress }, [owned.buffer as ArrayBuffer]);
      }
    } catch (e) {
      this.pending.delete(key);
      throw e;
    }
    this.check();
    await this.addToPack(type, blobId, sealed);
    this.stats.newBlobs++;
    this.stats.addedBytes += sealed.sealed.length;
    this.stats.plainBytesAdded += data.length;
    return { id: blobId, known: false, added: sealed.sealed.length };
  }

  private async addToPack(type: BlobType, id: Id, s: SealResult): Promise<void> {
    let p = this.open[type];
    if (!p) p = this.open[type] = { parts: [], blobs: [], size: 0 };
    const b: OpenPack['blobs'][number] = { id, type, length: s.sealed.length, offset: p.size };
    if (s.uncompressedLength) b.uncompressedLength = s.uncompressedLength;
    p.parts.push(s.sealed);
    p.blobs.push(b);
    p.size += s.sealed.length;
    if (p.size >= this.packSize) {
      this.open[type] = undefined;
      await this.startUpload(p);
    }
  }

  private async startUpload(p: OpenPack): Promise<void> {
    await this.uploads.acquire();
    const task = this.uploadPack(p)
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => {
        this.uploads.release();
        this.inflightUploads.delete(task);
      });
    this.inflightUploads.add(task);
  }

  private async uploadPack(p: OpenPack): Promise<void> {
    const header = encodePackHeader(p.blobs);
    const sealedHeader = this.repo.sealer.seal(header);
    const trailer = Buffer.alloc(4);
    trailer.writeUInt32LE(sealedHeader.length, 0);
    const data = Buffer.concat([...p.parts, sealedHeader, trailer]);
    p.parts = [];
    const packId = createHash('sha256').update(data).digest('hex');
    await this.repo.backend.save({ type: 'pack', name: packId }, data);
    this.stats.packsWritten++;
    this.repo.index.addPack(packId, p.blobs);
    for (const b of p.blobs) this.pending.delete(b.type + b.id);
    if (this.unindexed.length === 0) this.unindexedSince = this.repo.clock.now();
    this.unindexed.push({ id: packId, blobs: p.blobs });
    this.unindexedBlobs += p.blobs.length;
    if (this.unindexedBlobs >= this.indexMaxBlobs || this.repo.clock.now() - this.unindexedSince >= this.indexIntervalMs) {
      this.queueIndexWrite();
    }
  }

  private queueIndexWrite(): void {
    if (this.unindexed.length === 0) return;
    const packs = this.unindexed;
    this.unindexed = [];
    this.unindexedBlobs = 0;
    this.indexWrite = this.indexWrite.then(async () => {
      const json = encodeIndex({ packs: packs.map((p) => ({ id: p.id, blobs: p.blobs })) });
      const id = await this.repo.saveUnpacked('index', json);
      this.writtenIndexes.push(id);
    });
    this.indexWrite.catch((e) => {
      this.failure ??= e;
    });
  }

  /** Finishes open packs, waits for all uploads and writes the index for everything stored. */
  async flush(): Promise<void> {
    for (const type of ['data', 'tree'] as const) {
      const p = this.open[type];
      if (p && p.blobs.length > 0) {
        this.open[type] = undefined;
        await this.startUpload(p);
      }
    }
    while (this.inflightUploads.size > 0) await Promise.all([...this.inflightUploads]);
    this.check();
    this.queueIndexWrite();
    await this.indexWrite;
    this.check();
  }

  /** Releases the worker threads. Unflushed blobs are dropped (their packs, if any, stay unreferenced). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inflightUploads]);
    await this.pool?.close();
    this.pool = undefined;
  }

  get failed(): boolean {
    return this.failure !== undefined;
  }
}

/** True when the view covers a whole, non-shared ArrayBuffer (safe to transfer to a worker). */
function ownsWholeBuffer(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer && b.byteLength > 4096;
}
