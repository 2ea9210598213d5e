import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCairnError } from '../core/errors.js';
import * as fx from './testing/fixtures.js';
import { UNPACKED_ZSTD, decodeUnpacked, encodeUnpacked } from './unpacked.js';

const JSON_DOC = Buffer.from('{"a":1}');

test('v2 fixture: index and snapshot plaintexts are 0x02 + zstd; v1 raw JSON', () => {
  for (const name of fx.FIXTURE_NAMES) {
    const f = fx.openFixture(name);
    for (const sub of ['index', 'snapshots'] as const) {
      for (const id of fx.listIds(f, sub)) {
        const plain = fx.decrypt(fx.readRepoFile(f, `${sub}/${id}`), f.key.encrypt);
        assert.equal(plain[0], f.version === 2 ? UNPACKED_ZSTD : 0x7b);
        const json = decodeUnpacked(plain, f.version);
        assert.equal(json[0], 0x7b);
      }
    }
  }
});

test('encode/decode rules (§4)', () => {
  assert.equal(encodeUnpacked(JSON_DOC, 1, true), JSON_DOC); // v1: never compressed
  assert.equal(encodeUnpacked(JSON_DOC, 2, false), JSON_DOC);
  const z = encodeUnpacked(JSON_DOC, 2, true);
  assert.equal(z[0], 0x02);
  assert.equal(z.readUInt32LE(1), 0xfd2fb528);
  assert.deepEqual(decodeUnpacked(z, 2), JSON_DOC);
  assert.deepEqual(decodeUnpacked(JSON_DOC, 2), JSON_DOC);
  assert.deepEqual(decodeUnpacked(Buffer.from('[1]'), 2), Buffer.from('[1]'));
  assert.deepEqual(decodeUnpacked(Buffer.alloc(0), 2), Buffer.alloc(0));
  // v1 takes the bytes as JSON whatever they are (the JSON decoder rejects garbage)
  assert.deepEqual(decodeUnpacked(z, 1), z);
  for (const first of [0x00, 0x01, 0x03, 0x20, 0x22]) {
    assert.throws(() => decodeUnpacked(Buffer.from([first, 1, 2]), 2), (e) => isCairnError(e, 'CORRUPT') && /not supported encoding format/.test((e as Error).message));
  }
  assert.throws(() => decodeUnpacked(Buffer.from([0x02, 1, 2, 3]), 2), (e) => isCairnError(e, 'CORRUPT'));
  // size bound passes through to zstd
  const big = encodeUnpacked(Buffer.from('{"x":"' + 'a'.repeat(100_000) + '"}'), 2, true);
  assert.throws(() => decodeUnpacked(big, 2, 1000), (e) => isCairnError(e, 'CORRUPT'));
  assert.throws(() => encodeUnpacked(Buffer.from([0x02]), 2, false), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});
