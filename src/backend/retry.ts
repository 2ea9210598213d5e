import { CairnError, errorMessage, isCairnError } from '../core/errors.js';
import { systemClock, type Clock } from '../core/clock.js';
import { nullLogger, type Logger } from '../core/logger.js';
import type { Backend, FileHandle, FileInfo, FileSource, FileType } from './backend.js';
import { BackendError, describeHandle, isRetryable } from './errors.js';

export interface RetryOptions {
  /** Attempts per operation, the first included (default 10). */
  maxAttempts?: number;
  /** Delay before the second attempt; doubles each time (default 500 ms, like restic). */
  initialDelayMs?: number;
  /** Cap of one backoff delay (default 30 s). A longer Retry-After is still honoured. */
  maxDelayMs?: number;
  /** Give up when the next attempt would start later than this after the first (default 10 min). */
  maxElapsedMs?: number;
  logger?: Logger;
  clock?: Clock;
  /** Source of jitter in [0, 1); tests pass a seeded one. */
  random?: () => number;
}

const DEFAULTS = { maxAttempts: 10, initialDelayMs: 500, maxDelayMs: 30_000, maxElapsedMs: 10 * 60_000 };

/**
 * Retries failed backend operations with exponential backoff and jitter: throttling (429/503,
 * honouring Retry-After), other transient 5xx, timeouts and connection resets. Errors that cannot
 * get better (NOT_FOUND, permission, corrupt data) pass through at once. A load that returns fewer
 * bytes than asked for is treated as a failed attempt, so a truncated body is never handed on.
 *
 * Every failed attempt that will be retried is logged once; the final failure is thrown (not
 * logged) with the attempt count and the last cause.
 */
export class RetryBackend implements Backend {
  readonly location: string;
  private readonly o: typeof DEFAULTS;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;

  /** Present when the inner backend has it: every attempt streams the file again from its start. */
  readonly saveFile?: (h: FileHandle, src: FileSource) => Promise<void>;

  get connections(): number | undefined {
    return this.inner.connections;
  }

  constructor(readonly inner: Backend, opts: RetryOptions = {}) {
    this.location = inner.location;
    const saveFile = inner.saveFile?.bind(inner);
    if (saveFile) this.saveFile = (h, src) => this.run('save', describeHandle(h), () => saveFile(h, src));
    this.o = {
      maxAttempts: Math.max(1, opts.maxAttempts ?? DEFAULTS.maxAttempts),
      initialDelayMs: opts.initialDelayMs ?? DEFAULTS.initialDelayMs,
      maxDelayMs: opts.maxDelayMs ?? DEFAULTS.maxDelayMs,
      maxElapsedMs: opts.maxElapsedMs ?? DEFAULTS.maxElapsedMs,
    };
    this.logger = opts.logger ?? nullLogger;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
  }

  /** Backoff before attempt `n + 1` (n ≥ 1): "equal jitter", half fixed and half random. */
  private backoff(n: number): number {
    const exp = Math.min(this.o.maxDelayMs, this.o.initialDelayMs * 2 ** (n - 1));
    return Math.round(exp / 2 + this.random() * (exp / 2));
  }

  private async run<T>(op: string, what: string, fn: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const start = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        const r = await fn(attempt);
        if (attempt > 1) this.logger.info('backend operation succeeded after retries', { op, object: what, attempts: attempt });
        return r;
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (!isRetryable(e)) throw e;
        const elapsed = this.clock.now() - start;
        const retryAfter = e instanceof BackendError ? e.retryAfterMs : undefined;
        const delay = Math.max(this.backoff(attempt), retryAfter ?? 0);
        if (attempt >= this.o.maxAttempts || elapsed + delay > this.o.maxElapsedMs) {
          const why = attempt >= this.o.maxAttempts ? `${attempt} attempts` : `${attempt} attempts in ${Math.round(elapsed / 1000)} s (next retry would exceed the ${Math.round(this.o.maxElapsedMs / 1000)} s limit)`;
          throw new CairnError('BACKEND', `${op} ${what} at ${this.location} failed after ${why}: ${errorMessage(e)}`, { object: what, cause: e, retryable: false });
        }
        this.logger.warn('backend operation failed, retrying', { op, object: what, attempt, delayMs: delay, error: errorMessage(e) });
        await this.clock.sleep(delay, signal);
      }
    }
  }

  create(): Promise<void> {
    return this.run('create', 'repository', () => this.inner.create());
  }

  save(h: FileHandle, data: Uint8Array): Promise<void> {
    return this.run('save', describeHandle(h), () => this.inner.save(h, data));
  }

  load(h: FileHandle, offset = 0, length?: number, into?: Buffer): Promise<Buffer> {
    return this.run('load', describeHandle(h), async () => {
      const buf = await this.inner.load(h, offset, length, into);
      if (length !== undefined && buf.length !== length) {
        // Never hand on a short (or long) body: the caller would see a corrupt blob.
        throw new BackendError(`${describeHandle(h)}: got ${buf.length} bytes, expected ${length} at offset ${offset}`, { object: describeHandle(h), retryable: true });
      }
      return buf;
    });
  }

  stat(h: FileHandle): Promise<FileInfo> {
    return this.run('stat', describeHandle(h), () => this.inner.stat(h));
  }

  remove(h: FileHandle): Promise<void> {
    return this.run('remove', describeHandle(h), async (attempt) => {
      try {
        await this.inner.remove(h);
      } catch (e) {
        // An earlier attempt may have deleted it before its response was lost.
        if (attempt > 1 && isCairnError(e, 'NOT_FOUND')) return;
        throw e;
      }
    });
  }

  /**
   * Lists with retries: a listing that fails part way is started again and names already
   * delivered are skipped, so the consumer sees each file once.
   */
  async *list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    const seen = new Set<string>();
    const start = this.clock.now();
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      try {
        for await (const f of this.inner.list(type, signal)) {
          if (seen.has(f.name)) continue;
          seen.add(f.name);
          yield f;
        }
        return;
      } catch (e) {
        if (signal?.aborted) throw signal.reason;
        if (!isRetryable(e)) throw e;
        const elapsed = this.clock.now() - start;
        const retryAfter = e instanceof BackendError ? e.retryAfterMs : undefined;
        const delay = Math.max(this.backoff(attempt), retryAfter ?? 0);
        if (attempt >= this.o.maxAttempts || elapsed + delay > this.o.maxElapsedMs) {
          throw new CairnError('BACKEND', `list ${type} at ${this.location} failed after ${attempt} attempts: ${errorMessage(e)}`, { object: type, cause: e });
        }
        this.logger.warn('backend operation failed, retrying', { op: 'list', object: type, attempt, delayMs: delay, error: errorMessage(e) });
        await this.clock.sleep(delay, signal);
      }
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
