import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { encodeIndex, type IndexFile } from '../format/index.js';
import { decodeIndexCompact } from '../format/index-scan.js';
import { isCairnError } from '../core/errors.js';
import { CompactIndex } from './compact-index.js';

const rid = () => randomBytes(32).toString('hex');

function sample(packs: number, perPack: number, compressed: boolean): IndexFile {
  return {
    supersedes: [rid()],
    packs: Array.from({ length: packs }, () => {
      let offset = 0;
      return {
        id: rid(),
        blobs: Array.from({ length: perPack }, (_, i) => {
          const length = 100 + i;
          const b = { id: rid(), type: i % 3 === 0 ? ('tree' as const) : ('data' as const), offset, length, uncompressedLength: compressed && i % 2 ? 500 : undefined };
          offset += length;
          return b;
        }),
      };
    }),
  };
}

function flatten(idx: IndexFile) {
  return idx.packs.flatMap((p) => p.blobs.map((b) => [p.id, b.id, b.type, b.offset, b.length, b.uncompressedLength ?? 0].join(':')));
}

function flattenBatch(json: Buffer) {
  const b = decodeIndexCompact(json, 2);
  const out: string[] = [];
  for (let p = 0; p < b.packIds.length; p++) {
    for (let i = b.packStart[p]!; i < b.packStart[p + 1]!; i++) {
      out.push([b.packIds[p], b.ids.toString('hex', i * 32, i * 32 + 32), b.types[i] ? 'tree' : 'data', b.offsets[i], b.lengths[i], b.ulens[i]].join(':'));
    }
  }
  return { out, batch: b };
}

test('compact index decoding: canonical fast path and generic fallback agree', () => {
  const idx = sample(7, 50, true);
  const json = encodeIndex(idx);
  const fast = flattenBatch(json);
  assert.deepEqual(fast.out, flatten(idx));
  assert.deepEqual(fast.batch.supersedes, idx.supersedes);
  // the same document pretty-printed (not canonical) takes the general decoder
  const pretty = Buffer.from(JSON.stringify(JSON.parse(json.toString()), null, 2));
  assert.deepEqual(flattenBatch(pretty).out, flatten(idx));
  // the ancient array format
  const old = Buffer.from(JSON.stringify(JSON.parse(json.toString()).packs));
  const oldBatch = decodeIndexCompact(old, 2);
  assert.equal(oldBatch.oldFormat, true);
  assert.equal(oldBatch.count, 350);
  // empty index
  assert.equal(decodeIndexCompact(Buffer.from('{"packs":[]}\n'), 2).count, 0);
  // v1 rejects compressed entries on both paths
  assert.throws(() => decodeIndexCompact(json, 1), (e) => isCairnError(e, 'CORRUPT'));
  assert.throws(() => decodeIndexCompact(pretty, 1), (e) => isCairnError(e, 'CORRUPT'));
  // garbage
  assert.throws(() => decodeIndexCompact(Buffer.from('{"packs":[{"id":"zz"'), 2), (e) => isCairnError(e, 'CORRUPT'));
});

test('compact index: lookups, several locations per blob, exact duplicates dropped, sizes per pack', () => {
  const idx = sample(20, 200, true);
  const ci = new CompactIndex();
  ci.addBatch(decodeIndexCompact(encodeIndex(idx), 2), rid());
  // the first pack again in a second index file: duplicates are dropped, the pack is flagged
  const again = { packs: [idx.packs[0]!] };
  ci.addBatch(decodeIndexCompact(encodeIndex(again), 2), rid());
  assert.equal(ci.entryCount, 4000);
  assert.equal(ci.handleCount, 4000);
  assert.equal(ci.packsInSeveralIndexes().length, 1);
  for (const p of idx.packs) {
    for (const b of p.blobs) {
      const h = ci.find(b.type, b.id);
      assert.ok(h >= 0);
      assert.equal(ci.handleId(h), b.id);
      assert.equal(ci.find(b.type === 'data' ? 'tree' : 'data', b.id), -1);
      const loc = ci.location(ci.firstEntry(h));
      assert.deepEqual(loc, { packId: p.id, type: b.type, offset: b.offset, length: b.length, ...(b.uncompressedLength ? { uncompressedLength: b.uncompressedLength } : {}) });
    }
  }
  // the same blob stored in another pack: a second location
  const b0 = idx.packs[3]!.blobs[1]!;
  ci.addPack(rid(), [{ ...b0, offset: 0 }]);
  assert.equal(ci.entriesOf(ci.find(b0.type, b0.id)).length, 2);
  const sizes = ci.packSizes();
  const p0 = ci.packNumber(idx.packs[0]!.id)!;
  const expected = idx.packs[0]!.blobs.reduce((s, b) => s + b.length + (b.uncompressedLength ? 41 : 37), 36);
  assert.equal(sizes[p0], expected);
  assert.equal(ci.isMixedPack(p0), true);
  const { start, order } = ci.byPack();
  assert.equal(start[p0 + 1]! - start[p0]!, 200);
  assert.ok([...order.subarray(start[p0]!, start[p0 + 1]!)].every((e) => ci.entryPack(e) === p0));
  assert.equal(ci.find('data', 'not an id'), -1);
});

test('IndexJsonWriter writes the same bytes as encodeIndex', async () => {
  const { IndexJsonWriter } = await import('../format/index-scan.js');
  const idx = sample(5, 30, true);
  for (const sup of [[], idx.supersedes!]) {
    const w = new IndexJsonWriter(sup);
    for (const p of idx.packs) {
      w.beginPack(p.id);
      for (const b of p.blobs) w.blob(Buffer.from(b.id, 'hex'), 0, b.type === 'tree' ? 1 : 0, b.offset, b.length, b.uncompressedLength ?? 0);
    }
    assert.deepEqual(w.finish(), encodeIndex({ supersedes: sup, packs: idx.packs }));
  }
  assert.deepEqual(new IndexJsonWriter([]).finish(), encodeIndex({ packs: [] }));
});
