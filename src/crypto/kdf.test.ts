import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { deriveKey, earlyDerivationsPending, rememberDerivedKeys, rememberedKeyCount, startDerivation } from './kdf.js';

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

// last: remembering is for the rest of the process
test('with rememberDerivedKeys, each key is derived once per password, salt and parameters', async () => {
  assert.equal(rememberedKeyCount(), 0);
  rememberDerivedKeys();
  const salt = randomBytes(64);
  const first = deriveKey('pw', salt, FAST);
  const again = deriveKey('pw', salt, FAST);
  assert.equal(again, first, 'the same derivation is handed out');
  const other = await deriveKey('other', salt, FAST);
  assert.notDeepEqual(other, await first);
  assert.notDeepEqual(await deriveKey('pw', randomBytes(64), FAST), await first);
  assert.equal(rememberedKeyCount(), 3);
  // an early derivation is still taken over, once, by the first call for its inputs
  const salt2 = randomBytes(64);
  startDerivation('pw', salt2, FAST);
  const k2 = await deriveKey('pw', salt2, FAST);
  assert.equal(earlyDerivationsPending(), 0);
  assert.equal(await deriveKey('pw', salt2, FAST), k2);
  // refused parameters are not remembered
  assert.throws(() => deriveKey('pw', salt, { N: 1000, r: 8, p: 1 }), /invalid scrypt parameters/);
  assert.equal(rememberedKeyCount(), 4);
});

