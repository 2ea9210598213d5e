import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Sealer } from './seal.js';
import { newRandomKey } from './key.js';
import { deriveKey } from './kdf.js';
import { isCairnError } from '../core/errors.js';

function fixtures(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!readdirSync(d).includes('package.json')) d = path.dirname(d);
  return process.env.CAIRN_FIXTURES ?? path.resolve(d, '../shared/fixtures');
}

test('seal/open round trip for many sizes; tampering is detected', () => {
  const s = new Sealer(newRandomKey());
  for (const n of [0, 1, 15, 16, 17, 1000, 65536, 1 << 20]) {
    const p = Buffer.alloc(n, n & 0xff);
    const c = s.seal(p);
    assert.equal(c.length, n + 32);
    assert.deepEqual(s.open(c), p);
    const bad = Buffer.from(c);
    bad[Math.floor(bad.length / 2)]! ^= 1;
    assert.throws(() => s.open(bad), (e) => isCairnError(e, 'CORRUPT') && /ciphertext verification failed/.test(e.message));
  }
});

test('a different key cannot open the data', () => {
  const a = new Sealer(newRandomKey());
  const b = new Sealer(newRandomKey());
  assert.equal(b.verifies(a.seal(Buffer.from('secret'))), false);
});

test('the fixture key file opens with the fixture password (scrypt split 32/16/16)', async () => {
  const dir = path.join(fixtures(), 'restic-0.14-v2', 'keys');
  const kf = JSON.parse(readFileSync(path.join(dir, readdirSync(dir)[0]!), 'utf8'));
  const user = await deriveKey('fixture-password', Buffer.from(kf.salt, 'base64'), { N: kf.N, r: kf.r, p: kf.p });
  const master = JSON.parse(new Sealer(user).open(Buffer.from(kf.data, 'base64')).toString());
  assert.equal(master.encrypt, 'rNP2hH7hGkfYT0lVwiXzTOy+VSxEXuHyMD2YsbAY+zQ=');
  const wrong = await deriveKey('not-the-password', Buffer.from(kf.salt, 'base64'), { N: kf.N, r: kf.r, p: kf.p });
  assert.equal(new Sealer(wrong).verifies(Buffer.from(kf.data, 'base64')), false);
});
