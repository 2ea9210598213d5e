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
  assert.deepEqual(calls.map((b) => b.length), [4, 4, 2], 'at most maxBatch per call');
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
