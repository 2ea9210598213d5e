import { availableParallelism } from 'node:os';
import { hashId, type Id } from '../core/ids.js';
import { WorkerPool } from '../core/worker-pool.js';
import { encodeIndex } from '../format/index.js';
import type { PackBlob } from '../format/pack.js';
import type { SealKey } from '../native/api.js';
import { BufferPool } from '../native/buffer-pool.js';
import { kernelConcurrency, native } from '../native/index.js';
import type { BlobType } from './master-index.js';
import { PackWriter, type WrittenPack } from './pack-writer.js';
import type { Repository } from './repository.js';
import { sealBlob, type SealResult } from './seal-blob.js';
import type { SealRequest, SealWorkerData } from './seal-worker.js';

/** Compression modes of data blobs (restic's names: 0.14 has auto, off and max; 0.16 adds fastest and better). */
export type Compression = 'auto' | 'off' | 'fastest' | 'better' | 'max';
export const COMPRESSION_MODES: readonly Compression[] = ['auto', 'off', 'fastest', 'better', 'max'];

/**
 * zstd level per mode. "auto" is level 2: on 1.5 GB of real files (node_modules, /usr/share/doc,
 * shared libraries) restic 0.14's auto stored 340 MB; zstd level 2 stores 343 MB in 8.7 s,
 * level 3 331 MB in 9.7 s, level 1 357 MB in 8.0 s (whole cairn backups, two cores): level 2
 * matches restic's size at the lower cost.
 */
const ZSTD_LEVEL: Record<Exclude<Compression, 'off'>, number> = { fastest: 1, auto: 2, better: 7, max: 19 };

export interface BlobWriterOptions {
  /** Target pack size: restic 0.14's default is 16 MiB; a pack is finished once it reaches it. */
  packSize?: number;
  compression?: Compression;
  /** Worker threads for compression + encryption on the worker path (default: one per core). */
  workers?: number;
  /** Packs being stored at once (see PackWriter; in-memory packs cost about (this + 2) × packSize). */
  uploadConcurrency?: number;
  /** An index file is written at least this often while blobs accumulate (restic: 10 min). */
  indexIntervalMs?: number;
  /** ... or when this many blobs are waiting (restic: 50k v1 / 150k v2). */
  indexMaxBlobs?: number;
  /**
   * Where blobs are compressed and encrypted: 'kernel' = the addon's seal kernel on libuv's
   * thread pool, 'workers' = worker threads running the same kernel (TypeScript fallback or
   * addon) synchronously; 'auto' (default) = 'kernel' when the addon provides it.
   */
  sealer?: 'auto' | 'kernel' | 'workers';
}

export interface SaveResult {
  id: Id;
  /** True when the blob was already in the repository (or pending) and nothing was stored. */
  known: boolean;
  /** Bytes added to the repository for this blob (stored length), 0 when known. */
  added: number;
}

/** Blobs up to this size are sealed on the calling thread even on the kernel path (a thread-pool round trip costs more). */
const INLINE_KERNEL_LIMIT = 1024;
/** On the worker path, blobs up to this size are sealed on the main thread: a worker round trip (clone + message) costs more. */
const INLINE_WORKER_LIMIT = 16 * 1024;

/*
 * Why the seal kernel (libuv thread pool) and not worker threads, measured on this project's
 * 2-core test VM (node native/bench-seal.mjs, 268 MB: 1 MiB blobs, half random, half log text,
 * plus small blobs; zstd -3 with the sample test, SHA-256 included; three runs each, machine
 * otherwise loaded, so CPU seconds are the robust figure):
 *
 *                                          MB per CPU-second   MB per wall-second   peak RSS above start
 *   worker_threads, previous TS path              158–204             178–253             +141–160 MiB
 *   addon seal() on the libuv thread pool         237–264             287–341              +43–44 MiB
 *
 * The worker path pays for two extra V8 isolates (≈ 50 MiB each), a copy of every chunk to make
 * it transferable, the main-thread SHA-256 and message passing; the kernel reads the caller's
 * buffer in place, hashes, compresses, encrypts and authenticates in one pass on a pool thread and
 * writes into a recycled destination. The worker path stays as the fallback when the addon (or
 * its zstd) is missing, running the TypeScript kernel (src/native/fallback/seal.ts).
 */

/**
 * Saves blobs into packs: dedup against the index and in-flight blobs, compress + encrypt off the
 * main thread (seal kernel or worker threads), hand the sealed blobs to a PackWriter (one open
 * pack per type, stored as they fill), and write index files for stored packs. Packs are always
 * durable before an index names them.
 */
export class BlobWriter {
  private readonly packSize: number;
  private readonly compress: boolean;
  private readonly level: number;
  private readonly workers: number;
  private readonly indexIntervalMs: number;
  private readonly indexMaxBlobs: number;
  private readonly packs: PackWriter;
  /**
   * Blobs on their way into a pack, by type: keyed by the ID string itself (V8 keeps a string's
   * hash once computed), not by `type + id` — a new string per lookup to flatten and hash, three
   * per blob (~25 ms of the JavaScript thread for 20,000 small files).
   */
  private readonly pending: Record<BlobType, Set<string>> = { data: new Set(), tree: new Set() };
  /** 'kernel': native.seal on the thread pool; 'workers': the worker pool. */
  readonly sealPath: 'kernel' | 'workers';
  private readonly key: SealKey;
  private pool: WorkerPool<SealRequest, SealResult> | undefined;
  /**
   * Destinations for sealed blobs on the kernel path: each is copied into its pack at once and
   * given back. 8 MiB of idle ones cover the archiver's 8 chunks in flight (~1 MiB each); 32 MiB
   * kept ~17 MiB more of peak RSS in a backup of the benchmark (207 → 190 MiB), no faster.
   */
  private readonly outPool = new BufferPool(8 * 1024 * 1024);
  private unindexed: Array<{ id: Id; blobs: PackBlob[] }> = [];
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
    this.level = ZSTD_LEVEL[compression === 'off' ? 'auto' : compression]; // trees are compressed even with off
    this.workers = Math.max(1, opts.workers ?? availableParallelism());
    this.packs = new PackWriter(repo, { packSize: this.packSize, uploadConcurrency: opts.uploadConcurrency, onPackStored: (p) => this.packStored(p) });
    this.indexIntervalMs = opts.indexIntervalMs ?? 5 * 60 * 1000;
    this.indexMaxBlobs = opts.indexMaxBlobs ?? (repo.version === 1 ? 50_000 : 150_000);
    const sealer = opts.sealer ?? 'auto';
    this.sealPath = sealer === 'workers' || (sealer === 'auto' && native.blobKernels !== 'native') ? 'workers' : 'kernel';
    const k = repo.masterKey;
    this.key = native.sealKey(k.encrypt, k.macK, k.macR);
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

  /** How many blobs a producer should keep in flight to keep the sealing threads busy. */
  get parallelism(): number {
    return this.sealPath === 'kernel' ? kernelConcurrency() : this.workers;
  }

  /**
   * How blobs of this type are sealed on the kernel path, so that a producer can seal data while
   * it already has it on a pool thread (see native.readFile) and pass the result to save();
   * undefined on the worker path.
   */
  sealParams(type: BlobType): { key: SealKey; compress: boolean; level: number } | undefined {
    if (this.sealPath !== 'kernel') return undefined;
    return { key: this.key, compress: this.repo.version === 2 && (this.compress || type === 'tree'), level: this.level };
  }

  /** True when the blob is in the repository or on its way into it. */
  isKnown(type: BlobType, id: Id): boolean {
    return this.repo.index.has(type, id) || this.pending[type].has(id);
  }

  /**
   * Saves a blob unless it is known. `id` may be passed when the caller already hashed the data.
   * The caller must not modify `data` until the returned promise settles. With `transfer`, the
   * caller gives up `data` altogether (on the worker path its ArrayBuffer may then be moved to a
   * worker thread and detached instead of copied). `sealed` is `data` already sealed with
   * sealParams(type) (and `id` must then be given): it is used instead of sealing again.
   */
  async save(type: BlobType, data: Uint8Array, id?: Id, opts: { transfer?: boolean; sealed?: SealResult } = {}): Promise<SaveResult> {
    this.check();
    const blobId = id ?? hashId(data);
    const pending = this.pending[type];
    if (this.repo.index.has(type, blobId) || pending.has(blobId)) {
      this.stats.knownBlobs++;
      return { id: blobId, known: true, added: 0 };
    }
    pending.add(blobId);
    // Back-pressure: while a full pack waits for a slot to be stored, start no new sealing
    // (otherwise every blob in flight could fill and park another pack).
    await this.packs.waitForRoom();
    // Tree blobs are always compressed in v2 (restic compresses them even with --compression off).
    const compress = this.repo.version === 2 && (this.compress || type === 'tree');
    let sealed: SealResult;
    let out: Buffer | undefined;
    try {
      if (opts.sealed !== undefined && id !== undefined) {
        sealed = opts.sealed;
      } else if (this.sealPath === 'kernel') {
        const o = { compress, level: this.level };
        if (data.length <= INLINE_KERNEL_LIMIT) {
          sealed = native.sealSync(this.key, data, o);
        } else {
          out = this.outPool.take(data.length + 32);
          sealed = await native.seal(this.key, data, { ...o, out });
        }
      } else {
        sealed = await this.sealOnWorkers(data, compress, opts.transfer === true);
      }
      this.check();
    } catch (e) {
      if (out) this.outPool.give(out);
      pending.delete(blobId);
      throw e;
    }
    const n = sealed.sealed.length;
    try {
      const { room } = await this.packs.append(type, blobId, sealed.sealed, sealed.uncompressedLength);
      // the sealed bytes are in the pack now: the destination can serve the next blob
      if (out) this.outPool.give(out);
      out = undefined;
      await room;
    } catch (e) {
      if (out) this.outPool.give(out);
      this.failure ??= e;
      throw e;
    }
    this.stats.newBlobs++;
    this.stats.addedBytes += n;
    this.stats.plainBytesAdded += data.length;
    return { id: blobId, known: false, added: n };
  }

  private sealOnWorkers(data: Uint8Array, compress: boolean, transfer: boolean): SealResult | Promise<SealResult> {
    if (data.length <= INLINE_WORKER_LIMIT) return sealBlob(this.key, data, compress, this.level);
    // Hand the worker a buffer it can own: transferring avoids the structured-clone copy and
    // frees the caller's (possibly larger, shared) read buffer as soon as possible.
    const owned = transfer && ownsWholeBuffer(data) ? data : new Uint8Array(data);
    return this.getPool().run({ data: owned, compress }, [owned.buffer as ArrayBuffer]);
  }

  /** A pack is durable: its blobs are in the index (in memory now, in an index file soon). */
  private packStored(p: WrittenPack): void {
    this.stats.packsWritten++;
    this.repo.index.addPack(p.id, p.blobs);
    for (const b of p.blobs) this.pending[b.type].delete(b.id);
    if (this.unindexed.length === 0) this.unindexedSince = this.repo.clock.now();
    this.unindexed.push({ id: p.id, blobs: p.blobs });
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

  /** Finishes open packs, waits until they are stored and writes the index for everything stored. */
  async flush(): Promise<void> {
    this.check();
    await this.packs.flush();
    this.check();
    this.queueIndexWrite();
    await this.indexWrite;
    this.check();
  }

  /** Releases the worker threads. Unflushed blobs are dropped (their packs, if any, stay unreferenced). */
  async close(): Promise<void> {
    await this.packs.abort();
    await this.pool?.close();
    this.pool = undefined;
  }

  get failed(): boolean {
    return this.failure !== undefined || this.packs.failed;
  }
}

/** True when the view covers a whole, non-shared ArrayBuffer (safe to transfer to a worker). */
function ownsWholeBuffer(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength && b.buffer instanceof ArrayBuffer && b.byteLength > 4096;
}
