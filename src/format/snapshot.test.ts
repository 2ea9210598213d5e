import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from './snapshot.js';
import * as fx from './testing/fixtures.js';

const FIXTURE_JSON =
  '{"time":"2024-01-02T03:04:05Z","tree":"7799dc17944926087766f1a7caa404807d0d33808ff961d45b8c868cdb2669be","paths":["/restic-fixture/src"],"hostname":"fixture-host","username":"root","excludes":["*.tmp"],"tags":["fixture","restic-0.14"]}';

for (const name of fx.FIXTURE_NAMES) {
  test(`${name}: snapshot JSON round-trips byte-identically`, () => {
    const f = fx.openFixture(name);
    const ids = fx.listIds(f, 'snapshots');
    assert.equal(ids.length, 1);
    const json = fx.readUnpackedJson(f, 'snapshots', ids[0]);
    assert.equal(json.toString(), FIXTURE_JSON);
    const sn = decodeSnapshot(json);
    assert.deepEqual(sn, {
      time: '2024-01-02T03:04:05Z',
      tree: '7799dc17944926087766f1a7caa404807d0d33808ff961d45b8c868cdb2669be',
      paths: ['/restic-fixture/src'],
      hostname: 'fixture-host',
      username: 'root',
      excludes: ['*.tmp'],
      tags: ['fixture', 'restic-0.14'],
    });
    assert.deepEqual(encodeSnapshot(sn), json);
  });
}

const ID = (c: string) => c.repeat(64);

test('encodeSnapshot: key order and omission rules (§8)', () => {
  const full: Snapshot = {
    time: '2024-01-01T01:00:00+09:00',
    parent: ID('a'),
    tree: ID('b'),
    paths: ['/a<b>', '/c&d'],
    hostname: 'h',
    username: 'u',
    uid: 1000,
    gid: 100,
    excludes: ['*.o'],
    tags: ['t'],
    original: ID('c'),
  };
  assert.equal(
    encodeSnapshot(full).toString(),
    `{"time":"2024-01-01T01:00:00+09:00","parent":"${ID('a')}","tree":"${ID('b')}","paths":["/a\\u003cb\\u003e","/c\\u0026d"],` +
      `"hostname":"h","username":"u","uid":1000,"gid":100,"excludes":["*.o"],"tags":["t"],"original":"${ID('c')}"}`,
  );
  assert.deepEqual(decodeSnapshot(encodeSnapshot(full)), full);
  const minimal: Snapshot = { time: '2024-01-01T00:00:00Z', tree: ID('b'), paths: [], uid: 0, gid: 0, tags: [], excludes: [], hostname: '' };
  assert.equal(encodeSnapshot(minimal).toString(), `{"time":"2024-01-01T00:00:00Z","tree":"${ID('b')}","paths":[]}`);
});

test('unknown keys of newer restic are preserved after the known keys', () => {
  const json =
    `{"time":"2024-01-02T03:04:05.5Z","tree":"${ID('b')}","paths":["/x"],"hostname":"h","program_version":"restic 0.16.0",` +
    `"summary":{"backup_start":"2024-01-02T03:04:05Z","files_new":18446744073709551615,"total_duration":1.25,"tags":null}}`;
  const sn = decodeSnapshot(Buffer.from(json));
  assert.deepEqual(Object.keys(sn.extra ?? {}), ['program_version', 'summary']);
  assert.equal(sn.extra?.program_version, 'restic 0.16.0');
  assert.equal(encodeSnapshot(sn).toString(), json);
  // a tag change keeps the extra keys and sets original
  const retagged = encodeSnapshot({ ...sn, tags: ['new'], original: ID('d') }).toString();
  assert.ok(retagged.endsWith(`"tags":["new"],"original":"${ID('d')}","program_version":"restic 0.16.0","summary":{"backup_start":"2024-01-02T03:04:05Z","files_new":18446744073709551615,"total_duration":1.25,"tags":null}}`));
  assert.throws(() => encodeSnapshot({ ...sn, extra: { Tree: 1 } }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('decodeSnapshot: tolerant and strict where Go is', () => {
  // case-insensitive keys (Go), upper-case IDs normalised, nulls ignored
  const sn = decodeSnapshot(`{"Time":"2024-01-02T03:04:05Z","TREE":"${ID('B')}","paths":null,"tags":null,"uid":0}`);
  assert.deepEqual(sn, { time: '2024-01-02T03:04:05Z', tree: ID('b'), paths: [] });
  const bad = [
    '[]', '{"time":"2024-01-02T03:04:05Z","paths":[]}', `{"time":"x","tree":"${ID('b')}"}`,
    `{"time":"2024-01-02T03:04:05Z","tree":"${ID('b')}","uid":-1}`, `{"time":"2024-01-02T03:04:05Z","tree":"${ID('b')}","uid":4294967296}`,
    `{"time":"2024-01-02T03:04:05Z","tree":"${ID('b')}","paths":"x"}`, `{"time":"2024-01-02T03:04:05Z","tree":"${ID('b')}","tags":[1]}`,
    `{"time":"2024-01-02T03:04:05Z","tree":"abc"}`, '{',
  ];
  for (const s of bad) assert.throws(() => decodeSnapshot(s), (e) => isCairnError(e, 'CORRUPT'), s);
  assert.throws(() => encodeSnapshot({ time: 'x', tree: 'nope', paths: [] }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('property: decode(encode(sn)) == sn', () => {
  const id = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
  const str = fc.string({ unit: 'grapheme', maxLength: 10 });
  const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const snArb = fc
    .record({
      time: fc.constantFrom('2024-01-02T03:04:05Z', '2026-11-22T00:59:23.341982676+02:00'),
      parent: opt(id),
      tree: id,
      paths: fc.array(str, { maxLength: 3 }),
      hostname: opt(str.filter((s) => s !== '')),
      username: opt(str.filter((s) => s !== '')),
      uid: opt(fc.integer({ min: 1, max: 0xffffffff })),
      gid: opt(fc.integer({ min: 1, max: 0xffffffff })),
      excludes: opt(fc.array(str, { minLength: 1, maxLength: 3 })),
      tags: opt(fc.array(str, { minLength: 1, maxLength: 3 })),
      original: opt(id),
    })
    .map((r) => {
      const o: Record<string, unknown> = {};
      for (const k of ['time', 'parent', 'tree', 'paths', 'hostname', 'username', 'uid', 'gid', 'excludes', 'tags', 'original'] as const) {
        if (r[k] !== undefined) o[k] = r[k];
      }
      return o as unknown as Snapshot;
    });
  fc.assert(
    fc.property(snArb, (sn) => {
      const buf = encodeSnapshot(sn);
      assert.deepEqual(decodeSnapshot(buf), sn);
      assert.deepEqual(encodeSnapshot(decodeSnapshot(buf)), buf);
    }),
    { seed: 42, numRuns: 1000 },
  );
});
