import { CairnError } from '../core/errors.js';
import { BackendError } from './errors.js';

/** A response body: a Node stream (or anything async-iterable that can be destroyed). */
export type BodyStream = AsyncIterable<Uint8Array> & { destroy?(err?: Error): void };

/**
 * Reads a response body into one buffer of exactly `expected` bytes (one allocation, no chunk
 * list), or — when the length is unknown — grows it up to `maxUnknown`. A body that ends early, a
 * stall longer than `idleMs` and a socket error are retryable BackendErrors; a body that never
 * arrives whole is never returned. With `into` (large enough for `expected`), the body is read into
 * it and a view of it is returned.
 */
export async function readBody(body: BodyStream, expected: number | undefined, what: string, idleMs: number, maxUnknown = 1 << 30, into?: Buffer): Promise<Buffer> {
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const arm = () => {
    if (idleMs <= 0) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      const e = new Error(`no data for ${idleMs} ms`);
      e.name = 'TimeoutError';
      body.destroy?.(e);
    }, idleMs);
    // Not unref'd: a body still being awaited must keep the process alive, otherwise a stalled
    // socket can leave Node with nothing referenced and it exits (code 13) instead of retrying.
  };
  // a caller's (recycled) buffer when the length is known and it fits: no fresh memory per body
  let buf = expected !== undefined && into !== undefined && into.length >= expected ? into.subarray(0, expected) : Buffer.allocUnsafe(expected ?? 64 * 1024);
  let got = 0;
  try {
    arm();
    for await (const chunk of body) {
      arm();
      if (expected !== undefined) {
        if (got + chunk.length > expected) {
          throw new BackendError(`${what}: server sent more than the announced ${expected} bytes`, { object: what, retryable: true });
        }
      } else if (got + chunk.length > buf.length) {
        if (got + chunk.length > maxUnknown) throw new CairnError('BACKEND', `${what}: response larger than ${maxUnknown} bytes`, { object: what });
        const bigger = Buffer.allocUnsafe(Math.min(maxUnknown, Math.max(buf.length * 2, got + chunk.length)));
        buf.copy(bigger, 0, 0, got);
        buf = bigger;
      }
      buf.set(chunk, got);
      got += chunk.length;
    }
  } catch (e) {
    body.destroy?.();
    if (e instanceof CairnError) throw e;
    if (timedOut) throw new BackendError(`${what}: response stalled (no data for ${idleMs} ms after ${got} bytes)`, { object: what, retryable: true, cause: e });
    throw new BackendError(`${what}: connection failed after ${got} bytes of the body: ${(e as Error).message}`, {
      object: what,
      cause: e,
      // whatever broke the stream half way (reset, abort, decoder error) is worth another try
      retryable: true,
    });
  } finally {
    clearTimeout(timer);
  }
  if (expected !== undefined && got !== expected) {
    throw new BackendError(`${what}: truncated body (${got} of ${expected} bytes)`, { object: what, retryable: true });
  }
  return expected !== undefined ? buf : buf.subarray(0, got);
}
