import { CairnError, errnoCode, type ErrorDetails } from '../core/errors.js';

/**
 * A failed backend request. `retryable` says whether the same request may succeed later;
 * `retryAfterMs` carries a server's Retry-After, which the retry wrapper honours.
 */
export class BackendError extends CairnError {
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(message: string, details: ErrorDetails & { status?: number; retryAfterMs?: number } = {}) {
    super('BACKEND', message, details);
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** HTTP statuses worth retrying: timeouts, throttling and server-side hiccups (not 501/505). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504 || status === 509 || status === 598 || status === 599;
}

/** Socket-level errors that a later attempt can get past (resets, refused while restarting, DNS hiccups). */
const RETRYABLE_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export function isRetryableNetworkError(e: unknown): boolean {
  const code = errnoCode(e);
  if (code && RETRYABLE_ERRNO.has(code)) return true;
  if (e instanceof Error) {
    if (e.name === 'TimeoutError' || e.name === 'RequestTimeout') return true;
    // Node's http client reports a body cut short as a plain "aborted" error
    if (/^(aborted|socket hang up|other side closed|terminated)$/i.test(e.message)) return true;
    const c = (e as { cause?: unknown }).cause;
    if (c && c !== e) return isRetryableNetworkError(c);
  }
  return false;
}

/** True when an error (of any layer) says that retrying may help. */
export function isRetryable(e: unknown): boolean {
  if (e instanceof CairnError) return e.retryable;
  return isRetryableNetworkError(e);
}

/**
 * Parses Retry-After: either delta-seconds or an HTTP date. Returns milliseconds from `now`, or
 * undefined when absent or unparsable.
 */
export function parseRetryAfter(v: string | string[] | undefined | null, now: number): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  const d = Date.parse(t);
  if (Number.isNaN(d)) return undefined;
  return Math.max(0, d - now);
}

/** "pack 0123abcd…" — the object a backend error concerns, in the words restic uses. */
export function describeHandle(h: { type: string; name: string }): string {
  return h.type === 'config' ? 'config' : `${h.type} ${h.name}`;
}

/** Removes "user:password@" from URLs inside a string, so credentials never reach a message or log. */
export function stripCredentials(s: string): string {
  return s.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1');
}
