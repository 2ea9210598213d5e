import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isCairnError } from '../core/errors.js';
import { joinPath } from './path.js';
import { crossesFs, readDirSorted } from './walk.js';
import { BAD_NAME, withTempDir } from './testkit.test.js';

test('readDirSorted returns raw names in byte order', async () => {
  await withTempDir('walk', async (dir) => {
    const names = [
      Buffer.from('a'),
      Buffer.from('B'),
      Buffer.from('x😀.txt'), // U+1F600: f0 9f 98 80
      Buffer.from('x！.txt'), // U+FF01: ef bc 81 — before the emoji in byte order, after it in UTF-16 order
      BAD_NAME,
      Buffer.from([0x80]),
      Buffer.from('Z'),
    ];
    for (const n of names) await writeFile(joinPath(dir, n), '');
    const got = await readDirSorted(Buffer.from(dir));
    const want = [...names].sort(Buffer.compare);
    assert.deepEqual(got, want);
    assert.deepEqual(got.map((x) => x.toString('latin1')).slice(0, 3), ['B', 'Z', 'a']);
    const iFull = got.findIndex((x) => x.equals(Buffer.from('x！.txt')));
    const iEmoji = got.findIndex((x) => x.equals(Buffer.from('x😀.txt')));
    assert.ok(iFull < iEmoji);
    // string form of the directory works too
    assert.deepEqual(await readDirSorted(dir), want);
  });
});

test('readDirSorted on a missing directory gives NOT_FOUND', async () => {
  await withTempDir('walk', async (dir) => {
    await assert.rejects(readDirSorted(path.join(dir, 'nope')), (e: unknown) => isCairnError(e, 'NOT_FOUND'));
  });
});

test('crossesFs compares device numbers', () => {
  assert.equal(crossesFs(2049n, 2049n), false);
  assert.equal(crossesFs(2049n, 45n), true);
});
