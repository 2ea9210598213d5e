import { randomBytes } from 'node:crypto';
import { CairnError } from '../core/errors.js';

/**
 * A restic crypto key: AES-256 for encryption and Poly1305-AES (k = AES-128 key, r = polynomial key)
 * for authentication. Used both for the master key and for user keys derived with scrypt.
 */
export interface CryptoKey {
  encrypt: Buffer; // 32 bytes
  macK: Buffer; // 16 bytes
  macR: Buffer; // 16 bytes, clamped on use
}

const R_MASK = Buffer.from('ffffff0ffcffff0ffcffff0ffcffff0f', 'hex');

/** Clamps a Poly1305 r value (restic clamps both the user key's and the master key's r). */
export function clampR(r: Uint8Array): Buffer {
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) out[i] = r[i]! & R_MASK[i]!;
  return out;
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

/** Rejects keys restic would refuse ("key is invalid"): wrong sizes or all-zero parts. */
export function validateKey(key: CryptoKey): void {
  if (key.encrypt.length !== 32 || key.macK.length !== 16 || key.macR.length !== 16) {
    throw new CairnError('CORRUPT', 'key is invalid: wrong key sizes');
  }
  if (isZero(key.encrypt) || isZero(key.macK) || isZero(key.macR)) {
    throw new CairnError('CORRUPT', 'key is invalid: zero key material');
  }
}

export function newRandomKey(): CryptoKey {
  return { encrypt: randomBytes(32), macK: randomBytes(16), macR: clampR(randomBytes(16)) };
}

/** Splits a 64-byte scrypt output into a key: 32 bytes AES | 16 bytes k | 16 bytes r. */
export function keyFromKdf(dk: Buffer): CryptoKey {
  if (dk.length !== 64) throw new CairnError('INTERNAL', 'kdf output must be 64 bytes');
  return {
    encrypt: Buffer.from(dk.subarray(0, 32)),
    macK: Buffer.from(dk.subarray(32, 48)),
    macR: clampR(dk.subarray(48, 64)),
  };
}
