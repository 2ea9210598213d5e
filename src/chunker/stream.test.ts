import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCairnError } from '../core/errors.js';
import { createChunker, DEFAULT_FASTCDC, RESTIC_RABIN } from './chunker.js';
import { splitBuffer, splitChunks } from './stream.js';
import { collect, dataWithZeroRuns, fromParts, prng, splitAt } from './testkit.test.js';
import type { Chunker } from './types.js';

const MiB = 1024 * 1024;
const POLY = 0x2497575ac89183n;

const chunkers: Array<[string, Chunker]> = [
  ['rabin', createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, minSize: 2048, maxSize: 65536, polynomial: POLY })],
  ['fastcdc', createChunker({ algorithm: 'fastcdc', minSize: 2048, avgSize: 8192, maxSize: 65536 })],
];

test('a single source buffer is chunked without copying', async () => {
  for (const [name, chunker] of chunkers) {
    const data = dataWithZeroRuns(1, 1 * MiB, 20000);
    const chunks = await collect(splitChunks(fromParts([data]), chunker.newFile()));
    assert.ok(chunks.length > 5, name);
    for (const c of chunks) assert.equal(c.buffer, data.buffer, name);
    assert.ok(Buffer.concat(chunks).equals(data), name);
  }
});

test('chunks stay valid while later chunks are produced (no in-place compaction)', async () => {
  for (const [name, chunker] of chunkers) {
    const data = dataWithZeroRuns(2, 3 * MiB, 20000);
    // 1000-byte reads: nearly every chunk is assembled in the carry.
    const chunks = await collect(splitChunks(fromParts(splitAt(data, [1000])), chunker.newFile()));
    assert.deepEqual(
      chunks.map((c) => c.length),
      splitBuffer(data, chunker),
      name,
    );
    assert.ok(Buffer.concat(chunks).equals(data), name);
  }
});

test('sourceReusesBuffers copies chunks that would alias a recycled read buffer', async () => {
  const data = dataWithZeroRuns(3, 2 * MiB, 20000);
  async function* recycling(): AsyncGenerator<Uint8Array> {
    const buf = Buffer.allocUnsafe(300000);
    for (let pos = 0; pos < data.length; pos += buf.length) {
      const n = data.copy(buf, 0, pos, Math.min(data.length, pos + buf.length));
      yield buf.subarray(0, n);
    }
  }
  for (const [name, chunker] of chunkers) {
    const safe = await collect(splitChunks(recycling(), chunker.newFile(), { sourceReusesBuffers: true }));
    assert.ok(Buffer.concat(safe).equals(data), name);
    // Without the flag, views are overwritten by later reads: the documented hazard the flag exists for.
    const unsafe = await collect(splitChunks(recycling(), chunker.newFile()));
    assert.ok(!Buffer.concat(unsafe).equals(data), name);
  }
});

test('empty sources and empty reads', async () => {
  for (const [name, chunker] of chunkers) {
    assert.deepEqual(await collect(splitChunks(fromParts([]), chunker.newFile())), [], name);
    assert.deepEqual(await collect(splitChunks(fromParts([new Uint8Array(0), new Uint8Array(0)]), chunker.newFile())), [], name);
    const data = prng(4, 100000);
    const parts = splitAt(data, [7000, 0, 13000]).flatMap((p) => [new Uint8Array(0), p]);
    const chunks = await collect(splitChunks(fromParts(parts), chunker.newFile()));
    assert.ok(Buffer.concat(chunks).equals(data), name);
    assert.deepEqual(
      chunks.map((c) => c.length),
      splitBuffer(data, chunker),
      name,
    );
  }
});

test('closing the generator early closes the source', async () => {
  let closed = false;
  async function* source(): AsyncGenerator<Uint8Array> {
    try {
      for (let i = 0; ; i++) yield prng(i, 50000);
    } finally {
      closed = true;
    }
  }
  for await (const c of splitChunks(source(), chunkers[0][1].newFile())) {
    assert.ok(c.length > 0);
    break;
  }
  assert.equal(closed, true);
});

test('an abort signal stops chunking with CANCELLED', async () => {
  const ac = new AbortController();
  const data = prng(5, 1 * MiB);
  let count = 0;
  await assert.rejects(
    (async () => {
      for await (const _c of splitChunks(fromParts(splitAt(data, [4096])), chunkers[1][1].newFile(), { signal: ac.signal })) {
        if (++count === 3) ac.abort();
      }
    })(),
    (e: unknown) => isCairnError(e, 'CANCELLED'),
  );
  assert.equal(count, 3);
});

test('a source error propagates', async () => {
  async function* failing(): AsyncGenerator<Uint8Array> {
    yield prng(1, 10000);
    throw new Error('read failed');
  }
  await assert.rejects(collect(splitChunks(failing(), chunkers[0][1].newFile())), /read failed/);
});

test('restic-size chunkers stream 40 MiB in 1 MiB reads with the carry bounded', async () => {
  const data = prng(6, 40 * MiB + 5);
  for (const chunker of [
    createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, polynomial: POLY }),
    createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC }),
  ]) {
    const chunks = await collect(splitChunks(fromParts(splitAt(data, [MiB])), chunker.newFile()));
    assert.deepEqual(
      chunks.map((c) => c.length),
      splitBuffer(data, chunker),
      chunker.params.algorithm,
    );
    assert.ok(Buffer.concat(chunks).equals(data));
    // Views share either a source buffer (1 MiB) or a carry (2 × maxSize); nothing larger.
    for (const c of chunks) assert.ok(c.buffer.byteLength <= 2 * chunker.params.maxSize, `${c.buffer.byteLength}`);
  }
});
