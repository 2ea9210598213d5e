/**
 * Helpers shared by the object-store backends (Azure Blob, GCS): restic's key layout inside a
 * bucket, classification of transport failures, and a stall watchdog. Nothing here imports an SDK.
 */
import { createHash } from 'node:crypto';
import { CairnError } from '../core/errors.js';
import { isId } from '../core/ids.js';
import type { FileHandle, FileType } from './backend.js';

const DIRS: Record<Exclude<FileType, 'config'>, string> = {
  key: 'keys',
  snapshot: 'snapshots',
  index: 'index',
  lock: 'locks',
  pack: 'data',
};

/**
 * Normalises the path part of `azure:container:/path` or `gs:bucket:/path` to a key prefix:
 * no leading or trailing slash, no empty or dot segments ("" for the bucket root), as restic's
 * `path.Clean` + trim does.
 */
export function normalizePrefix(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw new CairnError('INVALID_ARGUMENT', `repository path ${JSON.stringify(p)} must not contain ".."`);
  return parts.join('/');
}

function join(prefix: string, rest: string): string {
  return prefix ? `${prefix}/${rest}` : rest;
}

/** The object key of a file: restic's default layout (config, keys/, …, data/XX/ID). */
export function objectKey(prefix: string, h: FileHandle): string {
  if (h.type === 'config') return join(prefix, 'config');
  if (!isId(h.name)) throw new CairnError('INVALID_ARGUMENT', `invalid file name ${JSON.stringify(h.name)}`);
  if (h.type === 'pack') return join(prefix, `data/${h.name.slice(0, 2)}/${h.name}`);
  return join(prefix, `${DIRS[h.type]}/${h.name}`);
}

/** The key prefix under which all files of a type live (with a trailing slash). */
export function listPrefix(prefix: string, type: Exclude<FileType, 'config'>): string {
  return join(prefix, `${DIRS[type]}/`);
}

/** The file name (last path segment) of a listed key, or undefined when it is not an ID. */
export function listedName(key: string): string | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  return isId(name) ? name : undefined;
}

/** A Buffer over the same memory as `data` (no copy). */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

/** Node/undici/SDK codes of transport failures where repeating the request can help. */
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
  'REQUEST_SEND_ERROR',
  'PARSE_ERROR',
]);

/** True when the error (or one of its causes) is a transport failure worth retrying. */
export function isNetworkError(e: unknown): boolean {
  for (let cur = e, depth = 0; cur && typeof cur === 'object' && depth < 5; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code.toUpperCase())) return true;
    const msg = (cur as { message?: unknown }).message;
    if (typeof msg === 'string' && /socket hang up|ECONNRESET|EPIPE|premature close|aborted|other side closed|unexpected end|terminated/i.test(msg)) {
      return true;
    }
  }
  return false;
}

/** HTTP statuses where the same request may succeed later (throttling, server trouble, timeouts). */
export function isRetryableStatus(status: number | undefined): boolean {
  return status === 408 || status === 429 || (status !== undefined && status >= 500 && status <= 599);
}

/**
 * Aborts an operation that makes no progress for `ms` milliseconds. Callers `kick()` it whenever
 * bytes move; `fired` tells a stall apart from a caller's own abort.
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
    if (this.fired || this.ms <= 0) return;
    if (this.timer) this.timer.refresh();
    else {
      this.timer = setTimeout(() => {
        this.fired = true;
        this.controller.abort(new CairnError('BACKEND', `no progress for ${this.ms} ms`, { retryable: true }));
      }, this.ms);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.outer && this.onOuterAbort) this.outer.removeEventListener('abort', this.onOuterAbort);
  }
}

/**
 * Copies a byte stream into one buffer. With `expected` known the buffer is allocated once and
 * a body that is shorter or longer is reported (a truncated body is a retryable transport
 * failure, never data).
 */
export async function readBody(
  body: AsyncIterable<Buffer | Uint8Array | string>,
  expected: number | undefined,
  onData?: () => void,
): Promise<Buffer> {
  if (expected !== undefined) {
    const out = Buffer.allocUnsafe(expected);
    let got = 0;
    for await (const chunk of body) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (got + b.length > expected) {
        throw new CairnError('BACKEND', `response body longer than announced (${got + b.length} > ${expected} bytes)`, { retryable: true });
      }
      out.set(b, got);
      got += b.length;
      onData?.();
    }
    if (got !== expected) {
      throw new CairnError('BACKEND', `response body truncated (${got} of ${expected} bytes)`, { retryable: true });
    }
    return out;
  }
  const parts: Buffer[] = [];
  for await (const chunk of body) {
    parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    onData?.();
  }
  return Buffer.concat(parts);
}

/**
 * Reads a dotenv-style credentials file (KEY=value lines, `#` comments, optional quotes), the
 * format Velero uses for Azure and the `cloud` secret key.
 */
export function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"') && v.length >= 2) || (v.startsWith("'") && v.endsWith("'") && v.length >= 2)) {
      v = v.slice(1, -1);
    } else {
      const hash = v.search(/\s#/);
      if (hash >= 0) v = v.slice(0, hash).trimEnd();
    }
    out[m[1]] = v;
  }
  return out;
}
