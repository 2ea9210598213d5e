import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import { decodeIndex, encodeIndex, type IndexFile } from './index.js';
import { packSizeFromBlobs } from './pack.js';
import * as fx from './testing/fixtures.js';

for (const name of fx.FIXTURE_NAMES) {
  test(`${name}: index decodes, matches the pack headers and re-encodes byte-identically`, () => {
    const f = fx.openFixture(name);
    const ids = fx.listIds(f, 'index');
    assert.equal(ids.length, 1);
    const json = fx.readUnpackedJson(f, 'index', ids[0]);
    assert.equal(json[json.length - 1], 0x0a);
    const idx = decodeIndex(json, f.version);
    assert.equal(idx.supersedes, undefined);
    assert.equal(idx.oldFormat, undefined);
    assert.equal(idx.packs.length, 2);
    assert.deepEqual(encodeIndex(idx), json);
    let blobs = 0;
    for (const p of idx.packs) {
      // index entries equal the pack header (what restic's check --read-data compares)
      const header = fx.readPackHeader(f, p.id);
      const sorted = [...p.blobs].sort((a, b) => a.offset - b.offset);
      assert.deepEqual(sorted, header.map(({ type, id, length, uncompressedLength, offset }) =>
        uncompressedLength === undefined ? { id, type, offset, length } : { id, type, offset, length, uncompressedLength }));
      assert.equal(packSizeFromBlobs(p.blobs), fx.readRepoFile(f, `data/${p.id.slice(0, 2)}/${p.id}`).length);
      blobs += p.blobs.length;
      for (const b of p.blobs) assert.equal(b.uncompressedLength !== undefined, f.version === 2);
    }
    assert.equal(blobs, 22);
  });
}

const ID = (c: string) => c.repeat(64);

test('encodeIndex: format, supersedes, uncompressed_length', () => {
  const idx: IndexFile = {
    supersedes: [ID('1'), ID('2')],
    packs: [
      {
        id: ID('a'),
        blobs: [
          { id: ID('b'), type: 'data', offset: 0, length: 1134797, uncompressedLength: 1134728 },
          { id: ID('c'), type: 'tree', offset: 1134797, length: 51 },
        ],
      },
    ],
  };
  const want =
    `{"supersedes":["${ID('1')}","${ID('2')}"],"packs":[{"id":"${ID('a')}","blobs":[` +
    `{"id":"${ID('b')}","type":"data","offset":0,"length":1134797,"uncompressed_length":1134728},` +
    `{"id":"${ID('c')}","type":"tree","offset":1134797,"length":51}]}]}\n`;
  assert.equal(encodeIndex(idx).toString(), want);
  assert.deepEqual(decodeIndex(want), idx);
  assert.equal(encodeIndex({ supersedes: [], packs: [] }).toString(), '{"packs":[]}\n');
  assert.throws(() => encodeIndex({ packs: [{ id: ID('a'), blobs: [{ id: ID('b'), type: 'x' as 'data', offset: 0, length: 1 }] }] }),
    (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => encodeIndex({ packs: [{ id: 'A'.repeat(64), blobs: [] }] }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('decodeIndex: old array format, version 1 rules, errors', () => {
  const old = `[{"id":"${ID('a')}","blobs":[{"id":"${ID('b')}","type":"data","offset":0,"length":40}]}]`;
  assert.deepEqual(decodeIndex(old), { packs: [{ id: ID('a'), blobs: [{ id: ID('b'), type: 'data', offset: 0, length: 40 }] }], oldFormat: true });
  const compressed = `{"packs":[{"id":"${ID('a')}","blobs":[{"id":"${ID('b')}","type":"data","offset":0,"length":40,"uncompressed_length":9}]}]}`;
  assert.equal(decodeIndex(compressed, 2).packs[0].blobs[0].uncompressedLength, 9);
  assert.throws(() => decodeIndex(compressed, 1), (e) => isCairnError(e, 'CORRUPT'));
  // uncompressed_length 0 means "not compressed" (Go zero value), fine in v1
  const zero = compressed.replace('"uncompressed_length":9', '"uncompressed_length":0');
  assert.equal(decodeIndex(zero, 1).packs[0].blobs[0].uncompressedLength, undefined);
  // upper-case IDs are normalised (Go's hex decoder accepts them)
  assert.equal(decodeIndex(old.replace(ID('a'), ID('A'))).packs[0].id, ID('a'));
  const bad = [
    'nope', '1', 'null', '{"packs":{}}', `{"packs":[{"id":"xyz","blobs":[]}]}`,
    old.replace('"data"', '"blob"'), old.replace('"offset":0', '"offset":-1'), old.replace('"length":40', '"length":"40"'),
    old.replace('"length":40', '"length":1.5'), `{"supersedes":"x","packs":[]}`, `{"supersedes":["x"],"packs":[]}`,
    `{"packs":[{"id":"${ID('a')}","blobs":[null]}]}`,
  ];
  for (const s of bad) assert.throws(() => decodeIndex(s), (e) => isCairnError(e, 'CORRUPT'), s);
});

test('property: decodeIndex(encodeIndex(idx)) == idx', () => {
  const id = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
  const blob = fc
    .record({
      id,
      type: fc.constantFrom('data' as const, 'tree' as const),
      offset: fc.nat({ max: 2 ** 32 }),
      length: fc.nat({ max: 2 ** 32 }),
      ul: fc.option(fc.integer({ min: 1, max: 2 ** 32 }), { nil: undefined }),
    })
    .map(({ ul, ...b }) => (ul === undefined ? b : { ...b, uncompressedLength: ul }));
  const idxArb = fc
    .record({
      supersedes: fc.array(id, { maxLength: 2 }),
      packs: fc.array(fc.record({ id, blobs: fc.array(blob, { maxLength: 5 }) }).map((p) => ({ id: p.id, blobs: p.blobs })), { maxLength: 4 }),
    })
    .map((r) => (r.supersedes.length ? { supersedes: r.supersedes, packs: r.packs } : { packs: r.packs }));
  fc.assert(
    fc.property(idxArb, (idx) => {
      assert.deepEqual(decodeIndex(encodeIndex(idx)), idx);
    }),
    { seed: 42, numRuns: 500 },
  );
});

test('speed: decode and encode a 150k-blob index', (t) => {
  const packs = [];
  let n = 0;
  while (n < 150_000) {
    const blobs = [];
    let off = 0;
    for (let i = 0; i < 200 && n < 150_000; i++, n++) {
      const length = 300_000 + i;
      blobs.push({ id: randomBytes(32).toString('hex'), type: 'data' as const, offset: off, length, uncompressedLength: length * 2 });
      off += length;
    }
    packs.push({ id: randomBytes(32).toString('hex'), blobs });
  }
  const idx: IndexFile = { packs };
  let t0 = performance.now();
  const json = encodeIndex(idx);
  const enc = performance.now() - t0;
  t0 = performance.now();
  const back = decodeIndex(json, 2);
  const dec = performance.now() - t0;
  assert.equal(back.packs.reduce((s, p) => s + p.blobs.length, 0), 150_000);
  t.diagnostic(`150k-blob index (${(json.length / 1e6).toFixed(1)} MB JSON): decode ${dec.toFixed(0)} ms, encode ${enc.toFixed(0)} ms`);
  assert.ok(dec < 3000 && enc < 3000); // generous: loaded CI machines; typical is ~10x lower
});
