import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { get_chunks } from 'fastcdc-wasm';
import { isCairnError } from '../core/errors.js';
import { createChunker, DEFAULT_FASTCDC } from './chunker.js';
import { fastcdcBoundaries, fastcdcBoundariesWasm, fastcdcImplementation, FastCdcSplitter } from './fastcdc.js';
import { native } from '../native/index.js';
import { splitBuffer, splitChunks } from './stream.js';
import { collect, dataWithZeroRuns, fromParts, prng, splitAt } from './testkit.test.js';

const MiB = 1024 * 1024;
const SMALL = { algorithm: 'fastcdc' as const, minSize: 64, avgSize: 256, maxSize: 1024 };

test('fastcdc-wasm get_chunks: boundaries include 0 and the end; our binding returns the same', () => {
  assert.deepEqual(Array.from(get_chunks(new Uint8Array(0), 64, 256, 1024)), [0]);
  assert.deepEqual(Array.from(fastcdcBoundaries(new Uint8Array(0), 64, 256, 1024)), [0]);
  assert.deepEqual(Array.from(get_chunks(prng(1, 50), 64, 256, 1024)), [0, 50]);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.integer({ min: 1, max: 200000 }),
      fc.constantFrom([64, 256, 1024], [512, 2048, 8192], [4096, 4096, 4096], [1000, 300, 5000]),
      (seed, length, [min, avg, max]) => {
        const data = prng(seed, length);
        const ours = fastcdcBoundaries(data, min, avg, max);
        const theirs = get_chunks(Buffer.from(data), min, avg, max);
        assert.deepEqual(Array.from(ours), Array.from(theirs));
        assert.equal(ours[0], 0);
        assert.equal(ours[ours.length - 1], length);
        for (let i = 1; i < ours.length; i++) {
          assert.ok(ours[i] > ours[i - 1]);
          assert.ok(ours[i] - ours[i - 1] <= max);
        }
      },
    ),
    { seed: 11, numRuns: 100 },
  );
});

test('the addon kernel cuts exactly where fastcdc-wasm cuts (seeded inputs, edge parameters)', { skip: native.kind !== 'native' && 'addon not loaded' }, () => {
  assert.equal(fastcdcImplementation(), 'addon', 'the gear table is found in the wasm module and the kernel used');
  const kernel = native.fastcdcBoundaries!;
  // min ≥ avg/2 (the centre lies before min: one mask only), min small against avg (both masks),
  // averages around a rounding point of log2 (2^15.5 ≈ 46341), max below min, the limits
  const params: Array<[number, number, number]> = [
    [64, 256, 1024], [512 * 1024, MiB, 8 * MiB], [64, 4096, 65536], [1000, 300, 5000], [4096, 4096, 4096],
    [256, 46340, 200000], [256, 46341, 200000], [8192, 3000, 1024], [64, 256, 64 * MiB],
  ];
  for (const [min, avg, max] of params) {
    for (let seed = 1; seed <= 6; seed++) {
      const length = [0, 1, min, min + 1, 100000, 3 * MiB + 17][seed - 1]!;
      const data = seed % 2 === 0 ? prng(seed * 7919 + min, length) : dataWithZeroRuns(seed, length, 4096);
      const wasm = Array.from(fastcdcBoundariesWasm(data, min, avg, max));
      assert.deepEqual(Array.from(fastcdcBoundaries(data, min, avg, max)), wasm, `min ${min} avg ${avg} max ${max} length ${length}`);
    }
  }
  // out too small: −1 (fastcdcBoundaries then asks wasm); parameters outside fastcdc's limits: RangeError
  assert.equal(kernel(prng(5, 10000), 64, 256, 1024, new Uint32Array(256).fill(1), new Uint32Array(4)), -1);
  assert.throws(() => kernel(prng(5, 100), 63, 256, 1024, new Uint32Array(256), new Uint32Array(8)), RangeError);
  // through fastcdcBoundaries: the same CairnError as the wasm path gives
  assert.throws(() => fastcdcBoundaries(prng(1, 5000), 63, 256, 1024), (e: unknown) => isCairnError(e, 'INTERNAL'));
  assert.throws(() => kernel(prng(5, 100), 64, 256, 1024, new Uint32Array(255), new Uint32Array(8)), RangeError);
  assert.throws(() => kernel(prng(5, 100), 64, 256, 1024, new Uint8Array(1024) as unknown as Uint32Array, new Uint32Array(8)), TypeError);
});

test('get_chunks writes its input back into the caller array; our binding only reads it', () => {
  let writes = 0;
  class WatchedBytes extends Uint8Array {
    override set(array: ArrayLike<number>, offset?: number): void {
      writes++;
      super.set(array, offset);
    }
  }
  const data = new WatchedBytes(prng(3, 100000));
  const before = Buffer.from(data);
  get_chunks(data, 64, 256, 1024);
  assert.equal(writes, 1, 'fastcdc-wasm copies the whole input back (the &mut [u8] glue)');
  assert.ok(Buffer.from(data).equals(before), 'fastcdc itself does not modify its input');
  writes = 0;
  fastcdcBoundaries(data, 64, 256, 1024);
  fastcdcBoundariesWasm(data, 64, 256, 1024);
  assert.equal(writes, 0);
  assert.ok(Buffer.from(data).equals(before));
});

test('a wasm trap is reported and the next call gets a fresh instance', () => {
  assert.throws(() => fastcdcBoundariesWasm(prng(1, 5000), 63, 256, 1024), (e: unknown) => isCairnError(e, 'INTERNAL'));
  const data = prng(2, 300000);
  assert.deepEqual(Array.from(fastcdcBoundariesWasm(data, 64, 256, 1024)), Array.from(get_chunks(Buffer.from(data), 64, 256, 1024)));
});

test('createChunker validates fastcdc parameters against fastcdc-rs limits', () => {
  const bad = [
    { minSize: 63 },
    { avgSize: 255 },
    { maxSize: 1023, minSize: 64, avgSize: 256 },
    { minSize: 64 * MiB + 1, avgSize: 128 * MiB, maxSize: 512 * MiB },
    { maxSize: 1024 * MiB + 1 },
    { minSize: 2 * MiB, avgSize: 1 * MiB },
    { avgSize: 9 * MiB },
    { minSize: -1 },
  ];
  for (const b of bad) {
    assert.throws(
      () => createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC, ...b }),
      (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'),
      JSON.stringify(b),
    );
  }
  assert.throws(() => createChunker({ algorithm: 'nope' as 'rabin', ...DEFAULT_FASTCDC }), (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT'));
  const c = createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC });
  assert.deepEqual({ ...c.params }, { algorithm: 'fastcdc', ...DEFAULT_FASTCDC });
});

test('one-shot fastcdc chunking equals a single get_chunks over the whole file', () => {
  for (const [params, length] of [
    [SMALL, 300000],
    [{ algorithm: 'fastcdc' as const, ...DEFAULT_FASTCDC }, 20 * MiB + 7],
  ] as const) {
    const data = prng(5, length);
    const b = get_chunks(Buffer.from(data), params.minSize, params.avgSize, params.maxSize);
    const expected: number[] = [];
    for (let i = 1; i < b.length; i++) expected.push(b[i] - b[i - 1]);
    assert.deepEqual(splitBuffer(data, createChunker(params)), expected);
  }
  // Longer than the splitter's wasm window (32 MiB for these sizes): windows must not change cuts.
  const big = prng(6, 70 * MiB + 3);
  const b = get_chunks(Buffer.from(big), DEFAULT_FASTCDC.minSize, DEFAULT_FASTCDC.avgSize, DEFAULT_FASTCDC.maxSize);
  const expected: number[] = [];
  for (let i = 1; i < b.length; i++) expected.push(b[i] - b[i - 1]);
  assert.deepEqual(splitBuffer(big, createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC })), expected);
});

test('streamed fastcdc lengths equal one-shot lengths for any read sizes', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.integer({ min: 0, max: 200000 }),
      fc.constantFrom([64, 256, 1024], [100, 1000, 3000], [1024, 1024, 1024], [64, 4096, 5000]),
      fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 8 }),
      async (seed, length, [minSize, avgSize, maxSize], sizes) => {
        const chunker = createChunker({ algorithm: 'fastcdc', minSize, avgSize, maxSize });
        const data = seed % 2 ? prng(seed, length) : dataWithZeroRuns(seed, length, 1500);
        const oneShot = splitBuffer(data, chunker);
        const chunks = await collect(splitChunks(fromParts(splitAt(data, sizes)), chunker.newFile()));
        assert.deepEqual(
          chunks.map((c) => c.length),
          oneShot,
        );
        assert.ok(Buffer.concat(chunks).equals(data));
        chunks.forEach((c, i) => {
          assert.ok(c.length <= maxSize);
          if (i < chunks.length - 1) assert.ok(c.length >= minSize);
        });
      },
    ),
    { seed: 99, numRuns: 200 },
  );
});

test('the fastcdc splitter only depends on the bytes from start (caller may move them)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0x7fffffff }), fc.array(fc.integer({ min: 0, max: 3000 }), { minLength: 1, maxLength: 10 }), (seed, steps) => {
      const data = prng(seed, 100000);
      const chunker = createChunker(SMALL);
      const oneShot = splitBuffer(data, chunker);
      const splitter = chunker.newFile();
      const got: number[] = [];
      let pos = 0;
      let avail = 0;
      for (let i = 0; pos < data.length; i++) {
        avail = Math.min(data.length, Math.max(avail, pos) + steps[i % steps.length]);
        const pad = (i * 37) % 101;
        const moved = Buffer.concat([prng(i, pad), data.subarray(pos, avail), prng(i + 1, 13)]);
        const n = splitter.next(moved, pad, pad + avail - pos, avail === data.length);
        if (n > 0) {
          got.push(n);
          pos += n;
        }
      }
      assert.deepEqual(got, oneShot);
    }),
    { seed: 5, numRuns: 100 },
  );
});

test('cached boundaries: one wasm call serves many next() calls on a large region', () => {
  const data = prng(8, 30 * MiB);
  const splitter = new FastCdcSplitter(DEFAULT_FASTCDC.minSize, DEFAULT_FASTCDC.avgSize, DEFAULT_FASTCDC.maxSize);
  // Less than maxSize and not eof: no wasm call, no decision.
  assert.equal(splitter.next(data, 0, 8 * MiB - 1, false), 0);
  const lengths: number[] = [];
  let pos = 0;
  for (;;) {
    const n = splitter.next(data, pos, data.length, true);
    if (n === 0) break;
    lengths.push(n);
    pos += n;
  }
  assert.equal(pos, data.length);
  assert.deepEqual(lengths, splitBuffer(data, createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC })));
});

function chunkIds(data: Uint8Array, lengths: number[]): string[] {
  let pos = 0;
  return lengths.map((n) => {
    const id = createHash('sha256').update(data.subarray(pos, pos + n)).digest('hex');
    pos += n;
    return id;
  });
}

test('content-defined: an insertion near the start changes only the first chunks', () => {
  const chunker = createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC });
  const original = prng(12, 48 * MiB);
  const before = chunkIds(original, splitBuffer(original, chunker));
  assert.ok(before.length > 20);
  for (const [at, insert] of [
    [1000, 100],
    [700000, 1],
    [3 * MiB, 4096],
  ]) {
    const edited = Buffer.concat([original.subarray(0, at), prng(at, insert), original.subarray(at)]);
    const after = chunkIds(edited, splitBuffer(edited, chunker));
    const old = new Set(before);
    const changed = after.filter((id) => !old.has(id)).length;
    assert.ok(changed >= 1 && changed <= 2, `insert ${insert} at ${at}: ${changed} new chunks`);
    // Everything after the edit lines up again.
    const tail = Math.min(before.length, after.length) - 3;
    assert.deepEqual(after.slice(-tail), before.slice(-tail));
  }
});
