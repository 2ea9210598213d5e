/**
 * Where the bytes of one pack go while it fills, and how it is stored once complete under the
 * SHA-256 of its bytes (spec §5). Two kinds:
 *
 * - spooled (backends with createSpool): bytes are staged in 1 MiB buffers and written to a
 *   spool file as they come, the pack ID is hashed along the way, and finishing writes the last
 *   bytes and commits the file. On a local disk the spool file is the pack's own file (commit
 *   fsyncs and renames it); on an object store opened by openBackend it is a local temporary file
 *   that commit uploads, streamed from disk (backend/spool.ts). A pack costs a few MiB of memory,
 *   not its size — restic spools packs to temporary files for the same reason.
 * - in memory (backends without createSpool: an object store used without openBackend's
 *   wrappers, or a local disk behind the limit wrapper): bytes are collected in one buffer and
 *   saved in one request.
 */
import { createHash } from 'node:crypto';
import type { Backend, SpoolFile } from '../backend/backend.js';
import type { Id } from '../core/ids.js';
import { BufferPool } from '../native/buffer-pool.js';
import { native, type Sha256Stream } from '../native/index.js';

export interface PackSink {
  /** Bytes appended so far. */
  readonly size: number;
  /** Copies bytes to the end of the pack; the caller may reuse `data` at once. */
  append(data: Uint8Array): void;
  /** Settles once the bytes appended so far are out of memory far enough for more to follow. */
  ready(): Promise<void>;
  /** Appends the last bytes (sealed header + length), stores the pack and returns its ID. */
  finish(trailer: Uint8Array): Promise<Id>;
  /** Drops an unfinished pack; nothing is left under a valid name. */
  discard(): Promise<void>;
}

/** Opens a sink for a new pack on this backend: spooled where the backend can, else in memory. */
export async function openPackSink(backend: Backend, memory: PackMemory): Promise<PackSink> {
  if (backend.createSpool) return new SpooledPackSink(await backend.createSpool('pack'), memory.staging);
  return new MemoryPackSink(backend, memory);
}

/** Buffers shared by the sinks of one writer (recycled, see BufferPool for why). */
export class PackMemory {
  /**
   * Staging buffers of spooled sinks, aligned for direct I/O when the addon can allocate them so
   * (a local backend then writes them without the page cache; see LocalBackend.createSpool).
   */
  readonly staging = new BufferPool(8 * STAGE, STAGE, native.alignedBuffer ?? Buffer.allocUnsafeSlow);
  /** Whole-pack buffers of in-memory sinks; one idle buffer covers the next open pack. */
  readonly packs: Buffer[] = [];
  constructor(readonly packSize: number) {}
}

/** Size of one staged write: large enough that writes are few, small enough to be cheap to hold. */
const STAGE = 1 << 20;
/** Staged bytes in flight to disk beyond which an appender should wait (ready()). */
const MAX_UNWRITTEN = 4 * STAGE;

/** Spooled sinks: one for local disks and object stores alike, only the SpoolFile behind it differs. */
class SpooledPackSink implements PackSink {
  size = 0;
  // The pack ID is hashed stage by stage on the thread pool (native), in append order: ~0.5 ms of
  // CPU per MiB that the JavaScript thread — the backup's busiest — no longer spends.
  private readonly hash: Sha256Stream = native.sha256Stream();
  /** The chain of hash updates (each waits for the previous one). */
  private hashing: Promise<void> = Promise.resolve();
  private stage: Buffer | undefined;
  private fill = 0;
  /** File position of the next staged write. */
  private flushed = 0;
  private unwritten = 0;
  private readonly writes = new Set<Promise<void>>();
  private waiters: Array<() => void> = [];
  private failure: unknown;

  constructor(
    private readonly file: SpoolFile,
    private readonly pool: BufferPool,
  ) {}

  append(data: Uint8Array): void {
    this.size += data.length;
    for (let off = 0; off < data.length; ) {
      this.stage ??= this.pool.take(STAGE);
      const n = Math.min(STAGE - this.fill, data.length - off);
      this.stage.set(data.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === STAGE) this.writeStage();
    }
  }

  /** Hands the staged bytes to the file (in the background) and starts a fresh stage. */
  private writeStage(): void {
    const buf = this.stage;
    if (buf === undefined || this.fill === 0) return;
    const bytes = buf.subarray(0, this.fill);
    // Hashing in append order is what lets finish() name the pack without reading it back.
    const hashed = (this.hashing = this.hashing.then(() => this.hash.update(bytes)));
    const position = this.flushed;
    this.flushed += bytes.length;
    this.unwritten += bytes.length;
    this.stage = undefined;
    this.fill = 0;
    // the stage goes back to the pool once it is both written and hashed
    const w = Promise.all([this.file.write(bytes, position), hashed])
      .then(() => undefined)
      .catch((e) => {
        this.failure ??= e;
      })
      .finally(() => {
        this.writes.delete(w);
        this.unwritten -= bytes.length;
        this.pool.give(buf);
        if (this.unwritten <= MAX_UNWRITTEN) for (const r of this.waiters.splice(0)) r();
      });
    this.writes.add(w);
  }

  ready(): Promise<void> {
    if (this.unwritten <= MAX_UNWRITTEN) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  async finish(trailer: Uint8Array): Promise<Id> {
    this.append(trailer);
    this.writeStage();
    while (this.writes.size > 0) await Promise.all([...this.writes]);
    if (this.failure !== undefined) {
      await this.file.discard();
      throw this.failure;
    }
    const id = this.hash.digest();
    await this.file.commit(id);
    return id;
  }

  async discard(): Promise<void> {
    await Promise.allSettled([...this.writes]);
    await this.file.discard();
  }
}

class MemoryPackSink implements PackSink {
  size = 0;
  private buf: Buffer;

  constructor(
    private readonly backend: Backend,
    private readonly memory: PackMemory,
  ) {
    // The buffer is sized for the largest pack (target + one maximal blob + header) at once:
    // pages never written are not resident, and it never needs to grow by copying.
    this.buf = memory.packs.pop() ?? Buffer.allocUnsafeSlow(memory.packSize + PACK_SLACK);
  }

  append(data: Uint8Array): void {
    if (this.size + data.length > this.buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.size + data.length));
      this.buf.copy(bigger, 0, 0, this.size);
      this.buf = bigger;
    }
    this.buf.set(data, this.size);
    this.size += data.length;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  async finish(trailer: Uint8Array): Promise<Id> {
    this.append(trailer);
    const data = this.buf.subarray(0, this.size);
    // hashed on a pool thread when the addon is there
    const id = native.blobKernels === 'native' ? await native.sha256(data) : createHash('sha256').update(data).digest('hex');
    await this.backend.save({ type: 'pack', name: id }, data);
    this.release();
    return id;
  }

  async discard(): Promise<void> {
    this.release();
  }

  /** Saved (or dropped): the buffer can take the next pack. A fresh 24 MiB buffer per pack would count as external memory and bring on full garbage collections. */
  private release(): void {
    if (this.buf.length === this.memory.packSize + PACK_SLACK && this.memory.packs.length < 1) this.memory.packs.push(this.buf);
    this.buf = EMPTY;
  }
}

/** Room beyond the target size in an in-memory pack: the largest chunk (8 MiB) plus overhead. */
const PACK_SLACK = 8 * 1024 * 1024 + 64 * 1024;
const EMPTY = Buffer.alloc(0);
