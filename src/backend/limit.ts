import { CairnError } from '../core/errors.js';
import { systemClock, type Clock } from '../core/clock.js';
import { Semaphore } from '../core/semaphore.js';
import type { Backend, FileHandle, FileInfo, FileSource, FileType } from './backend.js';

export interface LimitOptions {
  /** Requests in flight at once (restic's `<backend>.connections`, default 5). */
  connections?: number;
  /** Upload rate in KiB/s (restic's --limit-upload); 0 or undefined = unlimited. */
  uploadKiBs?: number;
  /** Download rate in KiB/s (restic's --limit-download); 0 or undefined = unlimited. */
  downloadKiBs?: number;
  clock?: Clock;
}

/**
 * A rate limiter on a virtual timeline: each transfer books `bytes / rate` seconds after the
 * previous booking, with up to one second of unused time as burst. Waiters are served in booking
 * order, so concurrent transfers share the rate fairly and the long-run average never exceeds it.
 */
export class RateLimiter {
  private nextFree = 0;
  private readonly bytesPerMs: number;
  private readonly burstMs = 1000;

  constructor(kibPerSecond: number, private readonly clock: Clock = systemClock) {
    if (!(kibPerSecond > 0)) throw new CairnError('INVALID_ARGUMENT', `rate limit must be positive, got ${kibPerSecond}`);
    this.bytesPerMs = (kibPerSecond * 1024) / 1000;
  }

  /** Waits until `bytes` may pass. Large transfers are booked in slices so others can interleave. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const SLICE = 256 * 1024;
    for (let left = bytes; left > 0; left -= SLICE) {
      const n = Math.min(SLICE, left);
      const now = this.clock.now();
      const begin = Math.max(this.nextFree, now - this.burstMs);
      this.nextFree = begin + n / this.bytesPerMs;
      const wait = this.nextFree - now;
      if (wait > 1) await this.clock.sleep(wait, signal);
    }
  }
}

/**
 * Bounds what one backend does at once: at most `connections` requests in flight, and upload /
 * download bandwidth like restic's --limit-upload/--limit-download. Saves are paced before they
 * are sent, ranged loads before they start and whole-file loads once their size is known: the
 * long-run rate is what is limited (the transfer itself runs at line speed in between).
 *
 * list() is not counted against the connection limit: a consumer that loads files while it
 * iterates a listing would otherwise deadlock with one connection.
 */
export class LimitedBackend implements Backend {
  readonly location: string;
  readonly connections: number;
  private readonly sem: Semaphore;
  private readonly up?: RateLimiter;
  private readonly down?: RateLimiter;
  /** Present when the inner backend has it; paced and counted like save(). */
  readonly saveFile?: (h: FileHandle, src: FileSource) => Promise<void>;

  constructor(readonly inner: Backend, opts: LimitOptions = {}) {
    this.location = inner.location;
    const saveFile = inner.saveFile?.bind(inner);
    if (saveFile) {
      this.saveFile = async (h, src) => {
        await this.up?.take(src.size);
        await this.sem.run(() => saveFile(h, src));
      };
    }
    const connections = opts.connections ?? 5;
    if (!Number.isInteger(connections) || connections < 1) throw new CairnError('INVALID_ARGUMENT', `connections must be a positive integer, got ${connections}`);
    this.sem = new Semaphore(connections);
    this.connections = connections;
    if (opts.uploadKiBs) this.up = new RateLimiter(opts.uploadKiBs, opts.clock);
    if (opts.downloadKiBs) this.down = new RateLimiter(opts.downloadKiBs, opts.clock);
  }

  create(): Promise<void> {
    return this.sem.run(() => this.inner.create());
  }

  async save(h: FileHandle, data: Uint8Array): Promise<void> {
    await this.up?.take(data.length);
    await this.sem.run(() => this.inner.save(h, data));
  }

  async load(h: FileHandle, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    // A ranged read knows its size up front and is paced before it starts; a whole-file read
    // (config, keys, index, snapshots: small) is paced once its size is known.
    if (length !== undefined) await this.down?.take(length);
    const buf = await this.sem.run(() => this.inner.load(h, offset, length, into));
    if (length === undefined) await this.down?.take(buf.length);
    return buf;
  }

  stat(h: FileHandle): Promise<FileInfo> {
    return this.sem.run(() => this.inner.stat(h));
  }

  list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    return this.inner.list(type, signal);
  }

  remove(h: FileHandle): Promise<void> {
    return this.sem.run(() => this.inner.remove(h));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
