import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFile, lstat, rename, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isCairnError } from '../core/errors.js';
import { native } from '../native/index.js';
import { joinPath } from './path.js';
import { FileReplacedError, openForRead, readBlocks } from './read.js';
import { BAD_NAME, withTempDir } from './testkit.test.js';

async function readAll(p: Buffer | string, blockSize: number): Promise<Buffer[]> {
  const { handle } = await openForRead(p);
  try {
    const out: Buffer[] = [];
    for await (const b of readBlocks(handle, blockSize)) out.push(b);
    return out;
  } finally {
    await handle.close();
  }
}

test('readBlocks yields the whole file in blocks of blockSize', async () => {
  await withTempDir('read', async (dir) => {
    const bs = 4096;
    for (const size of [0, 1, bs - 1, bs, bs + 1, 3 * bs + 5, 10 * bs]) {
      const data = randomBytes(size);
      const f = path.join(dir, `f${size}`);
      await writeFile(f, data);
      const blocks = await readAll(f, bs);
      assert.deepEqual(Buffer.concat(blocks), data, `content of ${size}-byte file`);
      assert.equal(blocks.length, Math.ceil(size / bs), `block count for ${size}`);
      for (let i = 0; i < blocks.length - 1; i++) assert.equal(blocks[i].length, bs);
    }
  });
});

test('blocks are fresh allocations the consumer may keep', async () => {
  await withTempDir('read', async (dir) => {
    const data = randomBytes(5 * 1000);
    const f = path.join(dir, 'f');
    await writeFile(f, data);
    const { handle } = await openForRead(f);
    try {
      const kept: Buffer[] = [];
      const copies: Buffer[] = [];
      for await (const b of readBlocks(handle, 1000)) {
        kept.push(b);
        copies.push(Buffer.from(b));
      }
      assert.deepEqual(kept, copies, 'earlier blocks were not overwritten by later reads');
      for (let i = 0; i < kept.length; i++) {
        for (let j = i + 1; j < kept.length; j++) {
          const [x, y] = [kept[i], kept[j]];
          const disjoint = x.buffer !== y.buffer || x.byteOffset + x.length <= y.byteOffset || y.byteOffset + y.length <= x.byteOffset;
          assert.ok(disjoint, `blocks ${i} and ${j} overlap in memory`);
        }
      }
    } finally {
      await handle.close();
    }
  });
});

test('a file that grows while being read is read to its new end; one that shrinks stops early', async () => {
  await withTempDir('read', async (dir) => {
    const f = path.join(dir, 'grow');
    const a = randomBytes(3000);
    const extra = randomBytes(100_000);
    await writeFile(f, a);
    const { handle } = await openForRead(f);
    try {
      const it = readBlocks(handle, 1024);
      const got: Buffer[] = [];
      const first = await it.next();
      assert.ok(!first.done);
      got.push(first.value);
      await appendFile(f, extra);
      for await (const b of it) got.push(b);
      assert.deepEqual(Buffer.concat(got), Buffer.concat([a, extra]));
      for (const b of got) assert.ok(b.length > 0 && b.length <= 1024);
    } finally {
      await handle.close();
    }

    const s = path.join(dir, 'shrink');
    await writeFile(s, randomBytes(10_000));
    const o = await openForRead(s);
    try {
      const it = readBlocks(o.handle, 4096);
      const first = await it.next();
      assert.ok(!first.done);
      await truncate(s, 5000);
      const rest: Buffer[] = [];
      for await (const b of it) rest.push(b);
      // with one block of read-ahead the second block may have been read before the truncation
      const total = first.value.length + rest.reduce((n, b) => n + b.length, 0);
      assert.ok(total === 5000 || total === 8192, `read ${total} bytes`);
    } finally {
      await o.handle.close();
    }
  });
});

test('openForRead refuses symlinks, FIFOs and replaced files, and returns the fstat', async () => {
  await withTempDir('read', async (dir) => {
    const f = path.join(dir, 'f');
    await writeFile(f, 'data');
    const st = await lstat(f, { bigint: true });
    const o = await openForRead(f, { dev: st.dev, inode: st.ino });
    assert.equal(o.stat.ino, st.ino);
    assert.equal(o.stat.size, 4n);
    await o.handle.close();

    // replaced by another file after the lstat
    const g = path.join(dir, 'g');
    await writeFile(g, 'other');
    await rename(g, f);
    await assert.rejects(openForRead(f, { dev: st.dev, inode: st.ino }), (e: unknown) => e instanceof FileReplacedError && isCairnError(e, 'IO'));

    // a symlink is never followed
    const l = path.join(dir, 'l');
    await symlink(f, l);
    await assert.rejects(openForRead(l), FileReplacedError);

    // a FIFO does not block the open
    const p = path.join(dir, 'p');
    native.mkfifo(p, 0o600);
    await assert.rejects(openForRead(p), FileReplacedError);

    await assert.rejects(openForRead(path.join(dir, 'missing')), (e: unknown) => isCairnError(e, 'NOT_FOUND'));
  });
});

test('reads files whose names are not UTF-8', async () => {
  await withTempDir('read', async (dir) => {
    const p = joinPath(dir, BAD_NAME);
    await writeFile(p, 'bytes');
    assert.equal(Buffer.concat(await readAll(p, 4096)).toString(), 'bytes');
  });
});

test('readBlocks stops with CANCELLED when the signal is aborted', async () => {
  await withTempDir('read', async (dir) => {
    const f = path.join(dir, 'f');
    await writeFile(f, randomBytes(100_000));
    const { handle } = await openForRead(f);
    const ac = new AbortController();
    try {
      let n = 0;
      await assert.rejects(
        (async () => {
          for await (const _b of readBlocks(handle, 1000, ac.signal)) {
            if (++n === 3) ac.abort();
          }
        })(),
        (e: unknown) => isCairnError(e, 'CANCELLED'),
      );
      assert.equal(n, 3);
    } finally {
      await handle.close();
    }
  });
});
