import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CairnError, isCairnError } from '../core/errors.js';
import type { Backend, FileHandle, FileSource } from './backend.js';
import { BackendError } from './errors.js';
import { RetryBackend } from './retry.js';
import { SPOOL_PREFIX, SpoolingBackend, withTempSpool } from './spool.js';

const MiB = 1 << 20;

async function readAll(src: FileSource, start?: number, end?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of src.stream(start, end)) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A backend that keeps what saveFile() read from each source, with a hook to fail attempts. */
function fakeStore(onSave?: (h: FileHandle, src: FileSource, attempt: number) => Promise<void>) {
  const stored = new Map<string, Buffer>();
  const sources: FileSource[] = [];
  let attempt = 0;
  const backend: Backend & { saveFile(h: FileHandle, src: FileSource): Promise<void> } = {
    location: 'fake:',
    create: async () => undefined,
    save: async (h, d) => void stored.set(h.name, Buffer.from(d)),
    saveFile: async (h, src) => {
      sources.push(src);
      await onSave?.(h, src, ++attempt);
      stored.set(h.name, await readAll(src));
    },
    load: async (h) => stored.get(h.name) ?? Promise.reject(new CairnError('NOT_FOUND', h.name)),
    stat: async (h) => ({ name: h.name, size: stored.get(h.name)?.length ?? 0 }),
    list: async function* () {},
    remove: async (h) => void stored.delete(h.name),
    close: async () => undefined,
  };
  return { backend, stored, sources };
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cairn-spool-test-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const sha = (d: Uint8Array) => createHash('sha256').update(d).digest('hex');

test(
  'temporary spool: no name in the folder while written, writes in flight land at their positions, commit hands over the exact bytes, ranges read right',
  withDir(async (dir) => {
    const { backend, stored, sources } = fakeStore();
    const sp = new SpoolingBackend(backend, { dir });
    const f = await sp.createSpool('pack');
    assert.deepEqual(readdirSync(dir), [], 'unlinked right after it was created: a crash leaves nothing');
    const data = randomBytes(5 * MiB + 12_345);
    // out of order and all at once
    const pieces = [3, 0, 5, 1, 4, 2].map((i) => f.write(data.subarray(i * MiB, Math.min(data.length, (i + 1) * MiB)), i * MiB));
    await Promise.all(pieces);
    await f.commit(sha(data));
    assert.ok(stored.get(sha(data))?.equals(data), 'stored bytes differ');
    assert.equal(sources[0]!.size, data.length);
    assert.deepEqual(readdirSync(dir), []);
    // after the commit the file is gone: its source no longer reads
    await assert.rejects(readAll(sources[0]!), (e: unknown) => isCairnError(e));
  }),
);

test(
  'temporary spool: a file source reads any range, several streams at once',
  withDir(async (dir) => {
    const data = randomBytes(3 * MiB + 7);
    let checked = false;
    const { backend } = fakeStore(async (_h, src) => {
      const ranges: Array<[number, number]> = [
        [0, data.length],
        [0, 1],
        [MiB - 3, 2 * MiB + 5],
        [data.length - 1, data.length],
        [17, 17],
      ];
      const got = await Promise.all(ranges.map(([a, b]) => readAll(src, a, b)));
      ranges.forEach(([a, b], i) => assert.ok(got[i]!.equals(data.subarray(a, b)), `range ${a}-${b}`));
      assert.throws(() => src.stream(0, data.length + 1), /invalid range/);
      checked = true;
    });
    const f = await new SpoolingBackend(backend, { dir }).createSpool('pack');
    await f.write(data, 0);
    await f.commit(sha(data));
    assert.ok(checked);
  }),
);

test(
  'temporary spool: a failed upload fails the commit with its error and closes the file; discard closes it too',
  withDir(async (dir) => {
    const { backend, sources } = fakeStore(async () => {
      throw new CairnError('PERMISSION', 'access denied');
    });
    const sp = new SpoolingBackend(backend, { dir });
    const f = await sp.createSpool('pack');
    await f.write(randomBytes(1000), 0);
    await assert.rejects(f.commit('0'.repeat(64)), /access denied/);
    await assert.rejects(readAll(sources[0]!), (e: unknown) => isCairnError(e), 'the descriptor is closed');
    const g = await sp.createSpool('pack');
    await g.write(randomBytes(1000), 0);
    await g.discard();
    await g.discard(); // twice is harmless
    assert.deepEqual(readdirSync(dir), []);
  }),
);

test(
  'temporary spool: a retry after a failure half way through the upload reads the whole file again',
  withDir(async (dir) => {
    const data = randomBytes(4 * MiB + 1);
    const readPerAttempt: number[] = [];
    const { backend, stored } = fakeStore(async (_h, src, attempt) => {
      if (attempt > 1) return;
      let n = 0;
      for await (const c of src.stream()) {
        n += (c as Buffer).length;
        if (n >= data.length / 2) break;
      }
      readPerAttempt.push(n);
      throw new BackendError('connection reset', { retryable: true });
    });
    const retrying = new RetryBackend(backend, { maxAttempts: 3, initialDelayMs: 1 });
    const f = await new SpoolingBackend(retrying as typeof backend, { dir }).createSpool('pack');
    await f.write(data, 0);
    await f.commit(sha(data));
    assert.ok(readPerAttempt[0]! < data.length, 'the first attempt stopped half way');
    assert.ok(stored.get(sha(data))?.equals(data), 'the second attempt stored every byte');
  }),
);

test(
  'temporary spool: a folder that cannot hold files is a clear error naming it',
  withDir(async (dir) => {
    const { backend } = fakeStore();
    const missing = path.join(dir, 'nope');
    await assert.rejects(new SpoolingBackend(backend, { dir: missing }).createSpool('pack'), (e: unknown) => {
      assert.ok(isCairnError(e, 'INVALID_ARGUMENT'), String(e));
      assert.ok(e.message.includes(missing) && /does not exist/.test(e.message), e.message);
      return true;
    });
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(new SpoolingBackend(backend, { dir: file }).createSpool('pack'), (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT') && e.message.includes(file));
  }),
);

test('withTempSpool: only backends that save from files get a temporary spool', () => {
  const { backend } = fakeStore();
  assert.ok(withTempSpool(backend) instanceof SpoolingBackend);
  const { saveFile: _s, ...plain } = backend;
  assert.equal(withTempSpool(plain), plain);
  assert.match(SPOOL_PREFIX, /[^0-9a-f]/, 'a temporary name can never look like an ID (64 hex digits)');
});
