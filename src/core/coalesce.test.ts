import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Coalescer } from './coalesce.js';

test('Coalescer: requests of one turn share batch calls, split into lanes, in order', async () => {
  const calls: number[][] = [];
  const c = new Coalescer<number, number>(async (batch) => {
    calls.push(batch);
    return batch.map((x) => (x === 13 ? new Error('unlucky') : x * 2));
  }, { maxBatch: 4, lanes: 2 });
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => c.submit(i + 7)));
  // two lanes: 4 + 4 at once, the last two spread over both lanes once they are free
  assert.deepEqual(calls.map((b) => b.length), [4, 4, 1, 1], 'at most maxBatch per call');
  assert.deepEqual(calls.flat(), [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  for (const [i, r] of results.entries()) {
    if (i + 7 === 13) assert.equal(r.status === 'rejected' && (r.reason as Error).message, 'unlucky');
    else assert.deepEqual(r, { status: 'fulfilled', value: (i + 7) * 2 });
  }
  calls.length = 0;
  await Promise.all([c.submit(1), c.submit(2), c.submit(3)]);
  assert.deepEqual(calls, [[1, 2], [3]], 'a small flush still uses the lanes');
  calls.length = 0;
  await c.submit(1);
  await c.submit(2);
  assert.deepEqual(calls, [[1], [2]], 'later turns get calls of their own');
});

test('Coalescer: a failed batch call rejects its requests only', async () => {
  let n = 0;
  const c = new Coalescer<number, number>(async (batch) => {
    if (n++ === 0) throw new Error('pool gone');
    return batch;
  }, { maxBatch: 2, lanes: 1 });
  const r = await Promise.allSettled([c.submit(1), c.submit(2), c.submit(3)]);
  assert.deepEqual(r.map((x) => x.status), ['rejected', 'rejected', 'fulfilled']);
});

/** Lets the event loop run n turns (setImmediate callbacks queued before run first). */
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

test('Coalescer: while every lane is busy, requests of later turns wait and go out together', async () => {
  const calls: number[][] = [];
  const gates: Array<() => void> = [];
  const c = new Coalescer<number, number>(async (batch) => {
    calls.push(batch);
    await new Promise<void>((r) => gates.push(r));
    return batch;
  }, { maxBatch: 3, lanes: 1 });
  const all: Promise<number>[] = [c.submit(1)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, [[1]], 'an idle lane takes a lone request at the end of its turn');
  // four more turns while the lane is busy
  for (let t = 2; t <= 5; t++) {
    all.push(c.submit(t));
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(calls.length, 1, 'nothing more goes out while the only lane is busy');
  gates.shift()!();
  await all[0];
  await turns(2);
  assert.deepEqual(calls, [[1], [2, 3, 4]], 'the waiting requests share the next call, up to maxBatch');
  gates.shift()!();
  await turns(3);
  assert.deepEqual(calls, [[1], [2, 3, 4], [5]]);
  gates.shift()!();
  assert.deepEqual(await Promise.all(all), [1, 2, 3, 4, 5]);
});
