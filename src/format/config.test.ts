import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCairnError } from '../core/errors.js';
import { decodeConfig, encodeConfig, type RepoConfig } from './config.js';
import * as fx from './testing/fixtures.js';

const FIXTURE_CONFIG: Record<string, string> = {
  'restic-0.14-v1': '{"version":1,"id":"55aeb8acee5f33a371d16f92d5919b4398c968a3e7c5d2bc30fc14688b2c88ce","chunker_polynomial":"2497575ac89183"}',
  'restic-0.14-v2': '{"version":2,"id":"1b5d16b7bff753fd318ee4c1a0cffb1688e4e6b7bbc0eaf66f0f2ee7d5e3bb78","chunker_polynomial":"2497575ac89183"}',
};

for (const name of fx.FIXTURE_NAMES) {
  test(`${name}: config decodes and re-encodes byte-identically`, () => {
    const f = fx.openFixture(name);
    const plain = fx.readConfigPlain(f);
    assert.equal(plain.toString(), FIXTURE_CONFIG[name]);
    const cfg = decodeConfig(plain);
    assert.equal(cfg.version, f.version);
    assert.equal(cfg.chunkerPolynomial, 0x2497575ac89183n);
    assert.equal(cfg.chunker, undefined);
    assert.deepEqual(encodeConfig(cfg), plain);
  });
}

const ID = 'ab'.repeat(32);

test('cairn_chunker is written after the standard keys and read back', () => {
  const cfg: RepoConfig = { version: 2, id: ID, chunkerPolynomial: 0x36eefcf51308e3n, chunker: { algorithm: 'fastcdc', min: 524288, avg: 1048576, max: 8388608 } };
  const json = encodeConfig(cfg).toString();
  assert.equal(
    json,
    `{"version":2,"id":"${ID}","chunker_polynomial":"36eefcf51308e3","cairn_chunker":{"algorithm":"fastcdc","min":524288,"avg":1048576,"max":8388608}}`,
  );
  assert.deepEqual(decodeConfig(json), cfg);
  assert.throws(() => decodeConfig(json.replace('fastcdc', 'gear')), (e) => isCairnError(e, 'UNSUPPORTED'));
  assert.throws(() => decodeConfig(json.replace('"min":524288', '"min":2000000')), (e) => isCairnError(e, 'CORRUPT'));
  assert.throws(() => encodeConfig({ ...cfg, chunker: { algorithm: 'fastcdc', min: 0, avg: 1, max: 2 } }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('decodeConfig: polynomial parsing and validation', () => {
  const mk = (rest: string) => `{"version":2,"id":"${ID}",${rest}}`;
  assert.equal(decodeConfig(mk('"chunker_polynomial":"2497575AC89183"')).chunkerPolynomial, 0x2497575ac89183n);
  assert.equal(decodeConfig(mk('"chunker_polynomial":"002497575ac89183"')).chunkerPolynomial, 0x2497575ac89183n);
  // written without leading zeros, lower case
  assert.match(encodeConfig({ version: 1, id: ID, chunkerPolynomial: 0xabcn }).toString(), /"chunker_polynomial":"abc"}$/);
  // unknown keys ignored (restic's decoder does the same)
  assert.equal(decodeConfig(mk('"chunker_polynomial":"1","future":[1]')).chunkerPolynomial, 1n);
  const bad = [
    mk('"chunker_polynomial":"0x2497"'), mk('"chunker_polynomial":"xyz"'), mk('"chunker_polynomial":""'),
    mk('"chunker_polynomial":"12345678901234567"'), mk('"chunker_polynomial":12'), mk('"x":1'),
    `{"version":2,"id":"short","chunker_polynomial":"1"}`, 'not json', '[]',
  ];
  for (const s of bad) assert.throws(() => decodeConfig(s), (e) => isCairnError(e, 'CORRUPT'), s);
});

test('unsupported repository versions', () => {
  for (const v of ['0', '3', '-1', 'null']) {
    assert.throws(
      () => decodeConfig(`{"version":${v},"id":"${ID}","chunker_polynomial":"1"}`),
      (e) => isCairnError(e, 'UNSUPPORTED') && /unsupported repository version/.test((e as Error).message),
      v,
    );
  }
  assert.throws(() => decodeConfig(`{"id":"${ID}","chunker_polynomial":"1"}`), (e) => isCairnError(e, 'UNSUPPORTED'));
  assert.throws(() => encodeConfig({ version: 3 as 2, id: ID, chunkerPolynomial: 1n }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => encodeConfig({ version: 2, id: 'x', chunkerPolynomial: 1n }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => encodeConfig({ version: 2, id: ID, chunkerPolynomial: 1n << 64n }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});
