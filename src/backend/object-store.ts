/**
 * Helpers for the SDK-based object stores (Azure Blob, GCS): a stall watchdog for SDK calls that
 * have no idle timeout of their own, header lookups on the SDKs' error shapes, and the dotenv
 * reader for Velero's credentials files. Nothing here imports an SDK.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FileSource } from './backend.js';
import { CairnError, errorMessage } from '../core/errors.js';
import { systemClock } from '../core/clock.js';
import { BackendError } from './errors.js';

/** A Buffer over the same memory as `data` (no copy). */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

/** One read of a file source: the MD5 of all of it and of each `blockSize` block (Azure checks every block). */
export async function digestSource(src: FileSource, blockSize = 0): Promise<{ md5: Buffer; blocks: Buffer[] }> {
  const whole = createHash('md5');
  const blocks: Buffer[] = [];
  let block = blockSize > 0 ? createHash('md5') : undefined;
  let inBlock = 0;
  for await (const chunk of src.stream()) {
    const c = chunk as Buffer;
    whole.update(c);
    for (let off = 0; block && off < c.length; ) {
      const n = Math.min(blockSize - inBlock, c.length - off);
      block.update(c.subarray(off, off + n));
      off += n;
      inBlock += n;
      if (inBlock === blockSize) {
        blocks.push(block.digest());
        block = createHash('md5');
        inBlock = 0;
      }
    }
  }
  if (block && inBlock > 0) blocks.push(block.digest());
  return { md5: whole.digest(), blocks };
}

/** The whole content of a file source (for the rare checks that compare bytes; small files). */
export async function readSource(src: FileSource): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of src.stream()) parts.push(c as Buffer);
  return Buffer.concat(parts, src.size);
}

/** What a save reports when reading its spooled file failed (the spool's own errors are CairnErrors already). */
export function sourceReadError(e: unknown, what: string): unknown {
  return e instanceof CairnError ? e : new CairnError('IO', `cannot save ${what}: reading its temporary file failed: ${errorMessage(e)}`, { cause: e });
}

/**
 * Streams of a file source handed to an SDK (which may open one per attempt), remembering the
 * first read error: SDKs report a failed body vaguely, or wait for the rest of it until a timeout,
 * so `onError` should also abort the request.
 */
export class SourceStreams {
  error: unknown;
  constructor(
    private readonly src: FileSource,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {}

  open(start?: number, end?: number): Readable {
    const r = this.src.stream(start, end);
    r.once('error', (e) => {
      this.error ??= e;
      this.onError(e);
    });
    return r;
  }
}

/**
 * Aborts an operation that makes no progress for `ms` milliseconds. Callers `kick()` it whenever
 * bytes move; `fired` tells a stall apart from the caller's own abort.
 */
export class StallWatchdog {
  readonly controller = new AbortController();
  fired = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly onOuterAbort?: () => void;

  constructor(
    private readonly ms: number,
    private readonly outer?: AbortSignal,
  ) {
    if (outer) {
      if (outer.aborted) this.controller.abort(outer.reason);
      this.onOuterAbort = () => this.controller.abort(outer.reason);
      outer.addEventListener('abort', this.onOuterAbort, { once: true });
    }
    this.kick();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  kick(): void {
    if (this.fired || this.ms <= 0 || this.controller.signal.aborted) return;
    if (this.timer) this.timer.refresh();
    else {
      // Not unref'd: an operation in flight must keep the process alive. When an SDK waits on a
      // stream whose socket is already gone, this timer is the only thing left, and without it
      // Node would exit (code 13, a top-level await that never settled) instead of retrying.
      this.timer = setTimeout(() => {
        this.fired = true;
        this.controller.abort(new BackendError(`no progress for ${this.ms} ms`, { retryable: true }));
      }, this.ms);
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.outer && this.onOuterAbort) this.outer.removeEventListener('abort', this.onOuterAbort);
  }
}

/**
 * A response header from whatever an SDK error carries: a Headers-like object with get()
 * (Azure's HttpHeaders, fetch), or a plain record (node:http, teeny-request, gaxios 6).
 */
export function headerOf(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as { get?: (n: string) => unknown } & Record<string, unknown>;
  if (typeof h.get === 'function') {
    const v = h.get(name);
    return typeof v === 'string' ? v : undefined;
  }
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(h)) {
    if (k.toLowerCase() !== lower) continue;
    if (typeof v === 'string') return v;
    if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  }
  return undefined;
}

/**
 * Reads a dotenv-style credentials file (KEY=value lines, `#` comments, optional quotes), the
 * format of Velero's Azure credentials and of the `cloud` secret key.
 */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.length >= 2 && ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'")))) {
      v = v.slice(1, -1);
    } else {
      const hash = v.search(/\s#/);
      if (hash >= 0) v = v.slice(0, hash).trimEnd();
    }
    out[m[1]!] = v;
  }
  return out;
}

/**
 * Fetches one page of a listing, repeating it a few times on retryable failures. A listing of a
 * big repository has many pages; restarting all of it for one bad page (what the retry wrapper
 * would do) can keep it from ever completing under a steady error rate. The page token makes a
 * page safe to ask for again. `fn` must throw mapped CairnErrors.
 */
export async function fetchPage<T>(fn: () => Promise<T>, signal?: AbortSignal, tries = 4, baseDelayMs = 200): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof CairnError) || !e.retryable || attempt >= tries || signal?.aborted) throw e;
      const wait = Math.max(e instanceof BackendError ? (e.retryAfterMs ?? 0) : 0, baseDelayMs * 2 ** (attempt - 1));
      await systemClock.sleep(wait, signal);
    }
  }
}
