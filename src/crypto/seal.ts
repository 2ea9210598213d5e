import { createCipheriv, randomFillSync, timingSafeEqual, type Cipher } from 'node:crypto';
import { CairnError } from '../core/errors.js';
import { native } from '../native/index.js';
import { clampR, validateKey, type CryptoKey } from './key.js';

/** IV (16) + MAC (16): the overhead of restic's ciphertext container. */
export const CRYPTO_OVERHEAD = 32;
const IV_LEN = 16;
const MAC_LEN = 16;

/**
 * Prepared per-key state. The AES-128-ECB cipher that computes Poly1305-AES's s = AES(k, nonce)
 * is created once per key: ECB without padding is stateless between blocks, so one cipher object
 * can encrypt every nonce (creating a cipher per object costs more than the MAC of a small blob).
 */
export class Sealer {
  readonly key: CryptoKey;
  private readonly r: Buffer;
  private readonly ecb: Cipher;
  private readonly polyKey = Buffer.alloc(32);

  constructor(key: CryptoKey) {
    validateKey(key);
    this.key = key;
    this.r = clampR(key.macR);
    this.ecb = createCipheriv('aes-128-ecb', key.macK, null);
    this.ecb.setAutoPadding(false);
  }

  /** Poly1305-AES tag of msg with the given nonce: key = clamp(r) || AES-128(k, nonce). */
  mac(nonce: Uint8Array, msg: Uint8Array): Buffer {
    const s = this.ecb.update(nonce);
    this.r.copy(this.polyKey, 0);
    s.copy(this.polyKey, 16);
    return native.poly1305(this.polyKey, msg);
  }

  /** Encrypts plaintext into IV || AES-256-CTR(plaintext) || MAC. */
  seal(plaintext: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(plaintext.length + CRYPTO_OVERHEAD);
    this.sealInto(plaintext, out, 0);
    return out;
  }

  /** Like seal(), writing into out at offset (out must have room for plaintext.length + 32 bytes). */
  sealInto(plaintext: Uint8Array, out: Buffer, offset: number): number {
    const iv = out.subarray(offset, offset + IV_LEN);
    do randomFillSync(iv);
    while (iv.every((b) => b === 0)); // restic refuses an all-zero nonce
    const cipher = createCipheriv('aes-256-ctr', this.key.encrypt, iv);
    const ctStart = offset + IV_LEN;
    // update() may return the data in a different buffer; copy into place.
    const ct = cipher.update(plaintext);
    ct.copy(out, ctStart);
    const fin = cipher.final();
    if (fin.length) fin.copy(out, ctStart + ct.length);
    const ctEnd = ctStart + plaintext.length;
    const tag = this.mac(iv, out.subarray(ctStart, ctEnd));
    tag.copy(out, ctEnd);
    return plaintext.length + CRYPTO_OVERHEAD;
  }

  /** Verifies the MAC, then decrypts. Throws CORRUPT on a MAC failure (wrong key or damaged data). */
  open(sealed: Uint8Array, what?: string): Buffer {
    if (sealed.length < CRYPTO_OVERHEAD) {
      throw new CairnError('CORRUPT', `${what ?? 'ciphertext'}: too short to be encrypted data`, { object: what });
    }
    const iv = sealed.subarray(0, IV_LEN);
    const ct = sealed.subarray(IV_LEN, sealed.length - MAC_LEN);
    const tag = sealed.subarray(sealed.length - MAC_LEN);
    const expected = this.mac(iv, ct);
    if (!timingSafeEqual(expected, tag)) {
      throw new CairnError('CORRUPT', `${what ?? 'ciphertext'}: ciphertext verification failed`, { object: what });
    }
    const decipher = createCipheriv('aes-256-ctr', this.key.encrypt, iv);
    const a = decipher.update(ct);
    const b = decipher.final();
    return b.length ? Buffer.concat([a, b]) : a;
  }

  /** True when the MAC of sealed verifies under this key (used to try key files). */
  verifies(sealed: Uint8Array): boolean {
    if (sealed.length < CRYPTO_OVERHEAD) return false;
    const iv = sealed.subarray(0, IV_LEN);
    const expected = this.mac(iv, sealed.subarray(IV_LEN, sealed.length - MAC_LEN));
    return timingSafeEqual(expected, sealed.subarray(sealed.length - MAC_LEN));
  }
}
