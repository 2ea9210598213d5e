import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CairnError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { recordingLogger } from '../../test/support/logger.js';
import type { Backend, FileHandle, FileInfo, FileType } from './backend.js';
import { BackendError, parseRetryAfter } from './errors.js';
import { RetryBackend } from './retry.js';
import { LimitedBackend, RateLimiter } from './limit.js';

/** Virtual time: sleeping advances the clock at once, and every sleep is recorded. */
function fakeClock(): Clock & { sleeps: number[] } {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    nowNs: () => BigInt(t) * 1_000_000n,
    setTimeout: () => ({ cancel() {} }),
    async sleep(ms) {
      sleeps.push(ms);
      t += ms;
    },
  };
}

/** A backend whose operations fail according to a script of errors, then succeed. */
class Flaky implements Backend {
  readonly location = 'flaky';
  calls = 0;
  constructor(
    private readonly failures: unknown[],
    private readonly loadResult: (off: number, len?: number) => Buffer = (_o, len) => Buffer.alloc(len ?? 10, 7),
  ) {}
  private next(): void {
    this.calls++;
    const f = this.failures.shift();
    if (f !== undefined) throw f;
  }
  async create() {
    this.next();
  }
  async save() {
    this.next();
  }
  async load(_h: FileHandle, off = 0, len?: number) {
    this.next();
    return this.loadResult(off, len);
  }
  async stat(h: FileHandle): Promise<FileInfo> {
    this.next();
    return { name: h.name, size: 1 };
  }
  async *list(_t: FileType): AsyncIterable<FileInfo> {
    for (let i = 0; i < 5; i++) {
      if (i === 3) this.next();
      yield { name: String(i).repeat(64), size: i };
    }
  }
  async remove() {
    this.next();
  }
  async close() {}
}

const H: FileHandle = { type: 'pack', name: 'a'.repeat(64) };
const transient = (status = 503, retryAfterMs?: number) => new BackendError(`HTTP ${status}`, { status, retryable: true, retryAfterMs });

describe('RetryBackend', () => {
  it('retries transient failures with growing, jittered delays and logs each once', async () => {
    const clock = fakeClock();
    const logger = recordingLogger();
    const inner = new Flaky([transient(), transient(500), Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })]);
    const b = new RetryBackend(inner, { clock, logger, random: () => 0.5, initialDelayMs: 100 });
    await b.save(H, Buffer.from('x'));
    assert.equal(inner.calls, 4);
    assert.deepEqual(clock.sleeps, [75, 150, 300]);
    assert.equal(logger.lines.filter((l) => l.level === 'warn').length, 3);
    assert.ok(logger.lines.some((l) => l.msg.includes('succeeded after retries')));
  });

  it('honours Retry-After when it is longer than the backoff', async () => {
    const clock = fakeClock();
    const inner = new Flaky([transient(429, 7000)]);
    await new RetryBackend(inner, { clock, random: () => 0 }).stat(H);
    assert.deepEqual(clock.sleeps, [7000]);
    assert.equal(parseRetryAfter('3', 0), 3000);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
  });

  it('does not retry NOT_FOUND, permission errors or corrupt data', async () => {
    for (const e of [new CairnError('NOT_FOUND', 'gone'), new CairnError('PERMISSION', 'no'), new CairnError('CORRUPT', 'bad'), new BackendError('HTTP 400', { status: 400 })]) {
      const inner = new Flaky([e]);
      await assert.rejects(new RetryBackend(inner, { clock: fakeClock() }).load(H), (x: unknown) => x === e);
      assert.equal(inner.calls, 1);
    }
  });

  it('gives up after maxAttempts with a clear error naming the object and the cause', async () => {
    const inner = new Flaky(Array.from({ length: 10 }, () => transient()));
    await assert.rejects(new RetryBackend(inner, { clock: fakeClock(), maxAttempts: 4 }).save(H, Buffer.from('x')), (e: unknown) => {
      assert.ok(e instanceof CairnError);
      assert.equal(e.code, 'BACKEND');
      assert.equal(e.retryable, false);
      assert.match(e.message, /save pack a{64} at flaky failed after 4 attempts: HTTP 503/);
      return true;
    });
    assert.equal(inner.calls, 4);
  });

  it('gives up when the time budget would be exceeded', async () => {
    const clock = fakeClock();
    const inner = new Flaky(Array.from({ length: 100 }, () => transient()));
    await assert.rejects(new RetryBackend(inner, { clock, maxAttempts: 100, maxElapsedMs: 5000, initialDelayMs: 1000, random: () => 1 }).stat(H), /limit/);
    assert.ok(clock.sleeps.reduce((a, b) => a + b, 0) <= 5000);
  });

  it('treats a short body as a failed attempt and never returns it', async () => {
    let n = 0;
    const inner = new Flaky([], (_o, len) => Buffer.alloc(n++ < 2 ? (len ?? 0) - 1 : (len ?? 0), 1));
    const b = new RetryBackend(inner, { clock: fakeClock() });
    const got = await b.load(H, 0, 100);
    assert.equal(got.length, 100);
    assert.equal(inner.calls, 3);
    const always = new Flaky([], () => Buffer.alloc(3));
    await assert.rejects(new RetryBackend(always, { clock: fakeClock(), maxAttempts: 3 }).load(H, 0, 100), /got 3 bytes, expected 100/);
  });

  it('restarts a failed listing without repeating names already delivered', async () => {
    const inner = new Flaky([transient()]);
    const names: string[] = [];
    for await (const f of new RetryBackend(inner, { clock: fakeClock() }).list('pack')) names.push(f.name[0]!);
    assert.deepEqual(names, ['0', '1', '2', '3', '4']);
  });

  it('a retried remove that finds the file gone has succeeded', async () => {
    const inner = new Flaky([transient(), new CairnError('NOT_FOUND', 'gone')]);
    await new RetryBackend(inner, { clock: fakeClock() }).remove(H);
    const first = new Flaky([new CairnError('NOT_FOUND', 'gone')]);
    await assert.rejects(new RetryBackend(first, { clock: fakeClock() }).remove(H), (e: unknown) => e instanceof CairnError && e.code === 'NOT_FOUND');
  });
});

describe('LimitedBackend', () => {
  it('bounds the requests in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    const slow: Backend = {
      location: 'slow',
      create: async () => {},
      save: async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
      },
      load: async () => Buffer.alloc(0),
      stat: async (h) => ({ name: h.name, size: 0 }),
      list: async function* () {},
      remove: async () => {},
      close: async () => {},
    };
    const b = new LimitedBackend(slow, { connections: 3 });
    await Promise.all(Array.from({ length: 20 }, () => b.save(H, Buffer.alloc(1))));
    assert.equal(peak, 3);
  });

  it('paces uploads and downloads at the configured KiB/s', async () => {
    const clock = fakeClock();
    const lim = new RateLimiter(100, clock); // 100 KiB/s
    // the first second is burst; 1000 KiB more must take about 9 s more
    for (let i = 0; i < 10; i++) await lim.take(100 * 1024);
    const waited = clock.sleeps.reduce((a, b) => a + b, 0);
    assert.ok(waited >= 8900 && waited <= 9100, `waited ${waited} ms`);
    const inner = new Flaky([]);
    const clock2 = fakeClock();
    const b = new LimitedBackend(inner, { uploadKiBs: 1024, downloadKiBs: 512, clock: clock2 });
    await b.save(H, Buffer.alloc(3 << 20));
    await b.load(H, 0, 2 << 20);
    const total = clock2.sleeps.reduce((a, b) => a + b, 0);
    assert.ok(total >= 4500 && total <= 5100, `3 MiB at 1 MiB/s + 2 MiB at 0.5 MiB/s minus bursts, waited ${total} ms`);
  });
});
