/** readChunks: the same chunks as splitting the whole file in memory, with buffers recycled. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createChunker, DEFAULT_FASTCDC, RESTIC_RABIN } from '../chunker/chunker.js';
import { splitBuffer } from '../chunker/stream.js';
import { BufferPool } from '../native/buffer-pool.js';
import { readChunks } from './chunk-reader.js';

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-chunk-reader-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function data(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const KiB = 1024;
const MiB = 1024 * KiB;

const chunkers = [
  ['fastcdc', createChunker({ algorithm: 'fastcdc', ...DEFAULT_FASTCDC })],
  ['rabin', createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, polynomial: 0x3da3358b4dc173n })],
  ['small fastcdc', createChunker({ algorithm: 'fastcdc', minSize: 4 * KiB, avgSize: 16 * KiB, maxSize: 64 * KiB })],
] as const;

describe('readChunks', () => {
  for (const [name, chunker] of chunkers) {
    for (const [size, readSize] of [
      [0, undefined],
      [1, undefined],
      [100 * KiB, undefined],
      [3 * MiB + 17, 256 * KiB],
      [21 * MiB + 5, undefined],
      [9 * MiB, 64 * KiB],
    ] as const) {
      it(`${name}: ${size} bytes (reads of ${readSize ?? 'default'}) give the in-memory chunks`, async () => {
        const content = data(size, size + 1);
        const f = path.join(dir, `${name}-${size}`);
        fs.writeFileSync(f, content);
        const want = splitBuffer(content, chunker);
        const pool = new BufferPool(64 * MiB);
        const h = await open(f, 'r');
        const got: number[] = [];
        const held: Array<{ data: Buffer; release(): void }> = [];
        let pos = 0;
        try {
          for await (const c of readChunks(h, chunker.newFile(), { pool, maxSize: chunker.params.maxSize, size, readSize })) {
            assert.ok(c.data.equals(content.subarray(pos, pos + c.data.length)), `chunk at ${pos}`);
            pos += c.data.length;
            got.push(c.data.length);
            held.push(c);
            // keep a few chunks alive across buffer switches, release the rest at once
            if (held.length > 3) held.shift()!.release();
          }
        } finally {
          await h.close();
        }
        assert.deepEqual(got, want);
        // chunks still held are intact after the reader moved on
        let at = size - held.reduce((s, c) => s + c.data.length, 0);
        for (const c of held) {
          assert.ok(c.data.equals(content.subarray(at, at + c.data.length)));
          at += c.data.length;
          c.release();
          c.release(); // a second release is ignored
        }
        assert.ok(pool.idleSize > 0 || size === 0, 'buffers came back to the pool');
      });
    }
  }

  it('a file that grew after fstat is read to its new end', async () => {
    const chunker = chunkers[2][1];
    const f = path.join(dir, 'grow');
    const content = data(300 * KiB, 9);
    fs.writeFileSync(f, content);
    const pool = new BufferPool(8 * MiB);
    const h = await open(f, 'r');
    let n = 0;
    try {
      // tell it the file is smaller than it is
      for await (const c of readChunks(h, chunker.newFile(), { pool, maxSize: chunker.params.maxSize, size: 1000 })) {
        n += c.data.length;
        c.release();
      }
    } finally {
      await h.close();
    }
    assert.equal(n, content.length);
  });

  it('stopping early releases the reader buffer; cancellation is a CANCELLED error', async () => {
    const chunker = chunkers[2][1];
    const f = path.join(dir, 'early');
    fs.writeFileSync(f, data(2 * MiB, 3));
    const pool = new BufferPool(64 * MiB);
    const h = await open(f, 'r');
    try {
      for await (const c of readChunks(h, chunker.newFile(), { pool, maxSize: chunker.params.maxSize, size: 2 * MiB })) {
        c.release();
        break;
      }
      assert.ok(pool.idleSize > 0);
      const ac = new AbortController();
      ac.abort();
      await assert.rejects(async () => {
        for await (const c of readChunks(h, chunker.newFile(), { pool, maxSize: chunker.params.maxSize, size: 2 * MiB, signal: ac.signal })) c.release();
      }, (e: { code?: string }) => e.code === 'CANCELLED');
    } finally {
      await h.close();
    }
  });
});
