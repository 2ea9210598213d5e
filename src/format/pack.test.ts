import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import {
  COMPRESSED_ENTRY_SIZE,
  MAX_HEADER_SIZE,
  MIN_PACK_SIZE,
  PLAIN_ENTRY_SIZE,
  decodePackHeader,
  encodePackHeader,
  headerEntrySize,
  packSizeFromBlobs,
  parseTrailer,
  plainHeaderSize,
  type PackBlob,
} from './pack.js';
import * as fx from './testing/fixtures.js';

const README_PACKS: Record<string, { id: string; size: number; trailer: number; blobs: number }[]> = {
  'restic-0.14-v1': [
    { id: '4488a25e2ca289f66edc4c3441152b851f9a858074028f281a34bd0cc6f7b23c', size: 2401070, trailer: 476, blobs: 12 },
    { id: '045ece795438ce7f5a83a456f219b5b14c3978358217cea98171da598be081fe', size: 8503, trailer: 402, blobs: 10 },
  ],
  'restic-0.14-v2': [
    { id: 'b33b92d76d4115263fbe16b94a1d6d15b2c9a8557327a6406161d548cbb61a40', size: 1429069, trailer: 524, blobs: 12 },
    { id: '9586be0a5089b1bfad2002471685073a2a68f9c67b128b2b7a3a9e83493016e0', size: 3901, trailer: 442, blobs: 10 },
  ],
};

for (const name of fx.FIXTURE_NAMES) {
  test(`${name}: pack headers decode, re-encode identically and satisfy the size formula`, () => {
    const f = fx.openFixture(name);
    for (const want of README_PACKS[name]) {
      const pack = readFileSync(fx.packPath(f, want.id));
      assert.equal(pack.length, want.size);
      const hlen = parseTrailer(pack.subarray(pack.length - 4), pack.length);
      assert.equal(hlen, want.trailer);
      const plain = fx.decrypt(pack.subarray(pack.length - 4 - hlen, pack.length - 4), f.key.encrypt);
      const blobs = decodePackHeader(plain, f.version);
      assert.equal(blobs.length, want.blobs);
      assert.equal(plainHeaderSize(blobs), plain.length);
      assert.equal(packSizeFromBlobs(blobs), pack.length);
      assert.deepEqual(encodePackHeader(blobs), plain);
      let off = 0;
      for (const b of blobs) {
        assert.equal(b.offset, off);
        off += b.length;
        assert.equal(b.uncompressedLength !== undefined, f.version === 2);
        assert.equal(headerEntrySize(b), f.version === 2 ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE);
      }
      // compressed types are refused in a v1 repository
      if (f.version === 2) assert.throws(() => decodePackHeader(plain, 1), (e) => isCairnError(e, 'CORRUPT'));
    }
  });
}

const ID = (c: string) => c.repeat(64);

test('encodePackHeader: entry layouts 0..3', () => {
  const h = encodePackHeader([
    { type: 'data', id: ID('1'), length: 0x01020304 },
    { type: 'tree', id: ID('2'), length: 5 },
    { type: 'data', id: ID('3'), length: 6, uncompressedLength: 0x0a0b0c0d },
    { type: 'tree', id: ID('4'), length: 7, uncompressedLength: 8 },
  ]);
  assert.equal(h.length, 37 + 37 + 41 + 41);
  assert.equal(h.subarray(0, 5).toString('hex'), '0004030201');
  assert.equal(h.subarray(5, 37).toString('hex'), ID('1'));
  assert.equal(h[37], 1);
  assert.equal(h.subarray(74, 83).toString('hex'), '02060000000d0c0b0a');
  assert.equal(h[115], 3);
  assert.deepEqual(decodePackHeader(h).map((b) => b.offset), [0, 0x01020304, 0x01020309, 0x0102030f]);
  for (const bad of [
    { type: 'blob' as 'data', id: ID('1'), length: 1 },
    { type: 'data' as const, id: 'xy', length: 1 },
    { type: 'data' as const, id: ID('A'), length: 1 },
    { type: 'data' as const, id: ID('1'), length: 2 ** 32 },
    { type: 'data' as const, id: ID('1'), length: 1, uncompressedLength: -1 },
  ]) {
    assert.throws(() => encodePackHeader([bad]), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  }
});

test('decodePackHeader: corruption', () => {
  const h = encodePackHeader([{ type: 'data', id: ID('1'), length: 10 }]);
  assert.throws(() => decodePackHeader(h.subarray(0, 36)), (e) => isCairnError(e, 'CORRUPT'));
  const unknown = Buffer.from(h);
  unknown[0] = 4;
  assert.throws(() => decodePackHeader(unknown), (e) => isCairnError(e, 'CORRUPT'));
  const zeroUl = encodePackHeader([{ type: 'tree', id: ID('1'), length: 10, uncompressedLength: 3 }]);
  zeroUl.writeUInt32LE(0, 5);
  assert.throws(() => decodePackHeader(zeroUl), (e) => isCairnError(e, 'CORRUPT'));
  assert.deepEqual(decodePackHeader(Buffer.alloc(0)), []);
});

test('parseTrailer: §5.3 checks', () => {
  const le = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  assert.equal(parseTrailer(le(69), 1000), 69);
  assert.equal(parseTrailer(le(MAX_HEADER_SIZE), MAX_HEADER_SIZE + 4), MAX_HEADER_SIZE);
  assert.equal(MIN_PACK_SIZE, 73);
  const bad: [number, number | undefined][] = [
    [0, 1000], [31, 1000], [997, 1000], [MAX_HEADER_SIZE + 1, undefined], [69, 72], [0xffffffff, undefined],
  ];
  for (const [h, size] of bad) assert.throws(() => parseTrailer(le(h), size), (e) => isCairnError(e, 'CORRUPT'), `${h}/${size}`);
  assert.equal(parseTrailer(le(996), 1000), 996);
  assert.throws(() => parseTrailer(Buffer.alloc(3)), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('property: decodePackHeader(encodePackHeader(blobs)) == blobs with cumulative offsets', () => {
  const blob = fc
    .record({
      type: fc.constantFrom('data' as const, 'tree' as const),
      id: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex')),
      length: fc.nat({ max: 2 ** 24 }),
      ul: fc.option(fc.integer({ min: 1, max: 0xffffffff }), { nil: undefined }),
    })
    .map(({ ul, ...b }) => (ul === undefined ? b : { ...b, uncompressedLength: ul }));
  fc.assert(
    fc.property(fc.array(blob, { maxLength: 20 }), (blobs) => {
      let off = 0;
      const want: PackBlob[] = blobs.map((b) => {
        const r = { ...b, offset: off };
        off += b.length;
        return r;
      });
      const h = encodePackHeader(blobs);
      assert.equal(h.length, plainHeaderSize(blobs));
      assert.deepEqual(decodePackHeader(h), want.map((w) => ({ type: w.type, id: w.id, length: w.length, offset: w.offset, ...(w.uncompressedLength ? { uncompressedLength: w.uncompressedLength } : {}) })));
    }),
    { seed: 42, numRuns: 500 },
  );
});
