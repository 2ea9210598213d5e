import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deriveKey, earlyDerivationsPending, startDerivation } from './kdf.js';

const FAST = { N: 1024, r: 8, p: 1 };

test('an early derivation is handed to the first deriveKey with the same password, salt and parameters, once', async () => {
  const salt = randomBytes(64);
  const fresh = await deriveKey('pw', salt, FAST);
  startDerivation('pw', salt, FAST);
  assert.equal(earlyDerivationsPending(), 1);
  // another salt, other parameters or another password do not take it
  assert.notDeepEqual(await deriveKey('pw', randomBytes(64), FAST), fresh);
  assert.notDeepEqual(await deriveKey('pw', salt, { ...FAST, N: 2048 }), fresh);
  assert.notDeepEqual(await deriveKey('other', salt, FAST), fresh);
  assert.equal(earlyDerivationsPending(), 1);
  assert.deepEqual(await deriveKey('pw', salt, FAST), fresh);
  assert.equal(earlyDerivationsPending(), 0);
  assert.deepEqual(await deriveKey('pw', salt, FAST), fresh); // derived again, same key
});

test('startDerivation refuses invalid parameters as deriveKey does', () => {
  assert.throws(() => startDerivation('pw', randomBytes(64), { N: 1000, r: 8, p: 1 }), /invalid scrypt parameters/);
  assert.equal(earlyDerivationsPending(), 0);
});
