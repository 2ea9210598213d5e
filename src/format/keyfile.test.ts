import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { isCairnError } from '../core/errors.js';
import { checkScryptParams, decodeKeyFile, decodeMasterKey, encodeKeyFile, encodeMasterKey, type KeyFile } from './keyfile.js';
import * as fx from './testing/fixtures.js';

for (const name of fx.FIXTURE_NAMES) {
  test(`${name}: key file decodes and re-encodes to the same bytes (= its ID)`, () => {
    const f = fx.openFixture(name);
    const [id] = fx.listIds(f, 'keys');
    const raw = fx.readRepoFile(f, `keys/${id}`);
    const k = decodeKeyFile(raw);
    assert.equal(k.kdf, 'scrypt');
    assert.equal(k.N, 32768);
    assert.equal(k.r, 8);
    assert.equal(k.p, name.endsWith('v1') ? 5 : 6);
    assert.equal(k.username, 'root');
    assert.equal(k.hostname, 'vm');
    assert.equal(k.salt.length, 64);
    assert.equal(k.data.length, 160);
    const again = encodeKeyFile(k);
    assert.deepEqual(again, raw);
    assert.equal(createHash('sha256').update(again).digest('hex'), id);
  });

  test(`${name}: master key JSON from the README round-trips`, () => {
    const f = fx.openFixture(name);
    const readme = fx.readRepoFile(f, 'README.md').toString();
    const json = /\{"mac":\{"k":"[^"]+","r":"[^"]+"\},"encrypt":"[^"]+"\}/.exec(readme)?.[0] ?? '';
    const m = decodeMasterKey(json);
    assert.deepEqual(m, f.key);
    assert.equal(encodeMasterKey(m).toString(), json);
  });
}

const good = (): KeyFile => ({
  created: '2026-11-22T00:59:23.341982676Z',
  username: 'root',
  hostname: 'vm',
  kdf: 'scrypt',
  N: 32768,
  r: 8,
  p: 4,
  salt: Buffer.alloc(64, 7),
  data: Buffer.alloc(160, 9),
});

test('encodeKeyFile: field order and spelling', () => {
  const s = encodeKeyFile(good()).toString();
  assert.equal(
    s,
    '{"created":"2026-11-22T00:59:23.341982676Z","username":"root","hostname":"vm","kdf":"scrypt","N":32768,"r":8,"p":4,' +
      `"salt":"${Buffer.alloc(64, 7).toString('base64')}","data":"${Buffer.alloc(160, 9).toString('base64')}"}`,
  );
  assert.deepEqual(decodeKeyFile(s), good());
  for (const bad of [{ kdf: 'argon2' as 'scrypt' }, { N: 1000 }, { r: 0 }, { p: 0 }, { salt: Buffer.alloc(32) }, { data: Buffer.alloc(10) }, { created: 'now' }]) {
    assert.throws(() => encodeKeyFile({ ...good(), ...bad }), (e) => isCairnError(e));
  }
});

test('decodeKeyFile: validation', () => {
  const base = JSON.parse(encodeKeyFile(good()).toString()) as Record<string, unknown>;
  const variant = (o: Record<string, unknown>) => JSON.stringify({ ...base, ...o });
  assert.throws(() => decodeKeyFile(variant({ kdf: 'pbkdf2' })), (e) => isCairnError(e, 'UNSUPPORTED'));
  const bad = [
    variant({ N: 3 }), variant({ N: 0 }), variant({ N: 2 ** 31 }), variant({ N: 1.5 }), variant({ r: 0 }), variant({ p: -1 }),
    variant({ N: 2 ** 20, r: 32 }), variant({ r: 2 ** 15, p: 2 ** 15 }), variant({ salt: Buffer.alloc(63).toString('base64') }),
    variant({ salt: 'not base64!' }), variant({ salt: 'AAA' }), variant({ data: 'AAAA' }), variant({ created: 'yesterday' }),
    variant({ N: '32768' }), 'nope', '[]',
  ];
  for (const s of bad) assert.throws(() => decodeKeyFile(s), (e) => isCairnError(e, 'CORRUPT'), s.slice(0, 120));
  assert.equal(checkScryptParams(32768, 8, 6), undefined);
  assert.equal(checkScryptParams(2, 1, 1), undefined);
});

test('master key validation', () => {
  const m = { encrypt: Buffer.alloc(32, 1), macK: Buffer.alloc(16, 2), macR: Buffer.alloc(16, 3) };
  assert.deepEqual(decodeMasterKey(encodeMasterKey(m)), m);
  const json = encodeMasterKey(m).toString();
  const zeroR = json.replace(Buffer.alloc(16, 3).toString('base64'), Buffer.alloc(16).toString('base64'));
  const short = json.replace(Buffer.alloc(32, 1).toString('base64'), Buffer.alloc(16, 1).toString('base64'));
  for (const s of [zeroR, short, '{"encrypt":"AAAA"}', '{"mac":1}', 'x']) {
    assert.throws(() => decodeMasterKey(s), (e) => isCairnError(e, 'CORRUPT'), s);
  }
  assert.throws(() => encodeMasterKey({ ...m, macK: Buffer.alloc(16) }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});
