import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from './buffer-pool.js';

const KiB = 1024;

test('buffer pool: sizes round up to quarter steps between powers of two, at least minSize', () => {
  const pool = new BufferPool(1 << 30, 64 * KiB);
  assert.equal(pool.classOf(1), 64 * KiB);
  assert.equal(pool.classOf(64 * KiB + 1), 80 * KiB);
  assert.equal(pool.classOf(1024 * KiB), 1024 * KiB);
  assert.equal(pool.classOf(1024 * KiB + 1), 1280 * KiB);
  assert.equal(pool.take(100 * KiB).length, 112 * KiB);
});

test('buffer pool: a given-back buffer serves the next take of its class', () => {
  const pool = new BufferPool(1 << 30);
  const a = pool.take(300 * KiB);
  pool.give(a);
  assert.equal(pool.idleSize, a.length);
  assert.equal(pool.take(290 * KiB), a);
  assert.equal(pool.idleSize, 0);
});

test('buffer pool: a larger idle buffer (up to twice the class) is used before allocating, the smallest first', () => {
  const pool = new BufferPool(1 << 30);
  const big = pool.take(600 * KiB); // class 640 KiB
  const mid = pool.take(400 * KiB); // class 448 KiB
  const huge = pool.take(2048 * KiB);
  pool.give(big);
  pool.give(mid);
  pool.give(huge);
  assert.equal(pool.take(320 * KiB), mid, 'the smallest that fits');
  assert.equal(pool.take(320 * KiB), big, 'next smallest within twice the class');
  const fresh = pool.take(320 * KiB);
  assert.notEqual(fresh, huge, 'more than twice the class is not handed out');
  assert.equal(fresh.length, 320 * KiB);
  assert.equal(pool.idleSize, huge.length);
});

test('buffer pool: idle bytes are capped; views and foreign buffers are not kept', () => {
  const pool = new BufferPool(200 * KiB);
  const a = pool.take(128 * KiB);
  const b = pool.take(128 * KiB);
  pool.give(a);
  pool.give(b); // over the cap: one of the two is kept
  assert.equal(pool.idleSize, 128 * KiB);
  pool.give(Buffer.alloc(128 * KiB).subarray(1)); // not a whole buffer of a class size
  pool.give(Buffer.alloc(100 * KiB)); // not a class size
  assert.equal(pool.idleSize, 128 * KiB);
  pool.clear();
  assert.equal(pool.idleSize, 0);
});

test('buffer pool: new buffers come from the given allocator', () => {
  const made: number[] = [];
  const pool = new BufferPool(1 << 20, 4 * KiB, (n) => {
    made.push(n);
    return Buffer.alloc(n);
  });
  assert.equal(pool.take(5 * KiB).length, 5 * KiB);
  assert.deepEqual(made, [5 * KiB]);
});

test('buffer pool: a full pool makes room by dropping idle buffers of the class used least recently', () => {
  const pool = new BufferPool(4096 * KiB);
  // a few large blobs fill the pool ...
  const large = [pool.take(2048 * KiB), pool.take(2048 * KiB)];
  for (const b of large) pool.give(b);
  assert.equal(pool.idleSize, 4096 * KiB);
  // ... then many small ones come and go: they are kept (the large ones make room), not dropped
  const small = [pool.take(10 * KiB), pool.take(10 * KiB)];
  for (const b of small) pool.give(b);
  assert.equal(pool.idleSize, 2048 * KiB + 128 * KiB, 'one large buffer went, both small ones stayed');
  assert.equal(pool.take(10 * KiB), small[1]);
  assert.equal(pool.take(10 * KiB), small[0]);
  // the class in use stays while an older one is dropped
  pool.give(small[0]!);
  const again = pool.take(2048 * KiB);
  assert.ok(again === large[0] || again === large[1], 'the remaining large buffer is still served');
  // a buffer larger than the whole pool is never kept
  const tiny = new BufferPool(100 * KiB);
  tiny.give(tiny.take(200 * KiB));
  assert.equal(tiny.idleSize, 0);
});
