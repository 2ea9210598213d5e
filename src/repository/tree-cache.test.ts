import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MasterIndex } from './master-index.js';
import { TreePackCache } from './tree-cache.js';

const P1 = '1'.repeat(64);
const P2 = '2'.repeat(64);
const P3 = '3'.repeat(64);
const id = (n: number) => n.toString(16).padStart(64, '0');

function pack(bytes: number, fill: number): Buffer {
  return Buffer.alloc(bytes, fill);
}

describe('TreePackCache', () => {
  it('fetches the tree range of a pack once and serves every tree blob of it from memory', async () => {
    const idx = new MasterIndex();
    idx.addPack(P1, [
      { id: id(1), type: 'tree', offset: 0, length: 100 },
      { id: id(2), type: 'tree', offset: 100, length: 50 },
      { id: id(3), type: 'tree', offset: 150, length: 70 },
    ]);
    assert.deepEqual(idx.packExtent(P1, 'tree'), { start: 0, end: 220, blobs: 3 });
    assert.equal(idx.packExtent(P1, 'data'), undefined);
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    const reads: Array<[string, number, number]> = [];
    const cache = new TreePackCache(idx, async (p, off, len) => {
      reads.push([p, off, len]);
      await new Promise((r) => setTimeout(r, 5));
      return data.subarray(off, off + len);
    });
    const locs = [1, 2, 3].map((n) => idx.lookup('tree', id(n))[0]!);
    const got = await Promise.all([...locs, ...locs].map((l) => cache.get(l)));
    assert.deepEqual(reads, [[P1, 0, 220]], 'one read for all of them, also when asked concurrently');
    assert.deepEqual(got[1], data.subarray(100, 150));
    assert.deepEqual(got[5], data.subarray(150, 220));
  });

  it('does not cache single-blob or oversized packs, evicts beyond its budget and recovers from failed reads', async () => {
    const idx = new MasterIndex();
    idx.addPack(P1, [{ id: id(1), type: 'tree', offset: 0, length: 10 }]);
    idx.addPack(P2, [
      { id: id(2), type: 'tree', offset: 0, length: 600 },
      { id: id(3), type: 'tree', offset: 600, length: 600 },
    ]);
    idx.addPack(P3, [
      { id: id(4), type: 'tree', offset: 0, length: 300 },
      { id: id(5), type: 'tree', offset: 300, length: 300 },
    ]);
    let reads = 0;
    let fail = true;
    const cache = new TreePackCache(
      idx,
      async (_p, off, len) => {
        reads++;
        if (fail) {
          fail = false;
          throw new Error('network');
        }
        return pack(len, off);
      },
      1000,
      1000,
    );
    assert.equal(await cache.get(idx.lookup('tree', id(1))[0]!), undefined, 'a single blob is read on its own');
    assert.equal(await cache.get(idx.lookup('tree', id(2))[0]!), undefined, 'larger than maxPackBytes');
    assert.equal(await cache.get(idx.lookup('tree', id(4))[0]!), undefined, 'the failed read is not cached');
    assert.equal((await cache.get(idx.lookup('tree', id(4))[0]!))?.length, 300);
    assert.equal((await cache.get(idx.lookup('tree', id(5))[0]!))?.length, 300);
    assert.equal(reads, 2);
    cache.drop(P3);
    assert.equal((await cache.get(idx.lookup('tree', id(5))[0]!))?.length, 300);
    assert.equal(reads, 3);
  });
});
