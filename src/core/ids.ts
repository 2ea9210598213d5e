import { createHash, randomBytes } from 'node:crypto';

/** An ID is a SHA-256 digest written as 64 lower-case hex characters (restic's form). */
export type Id = string;

export const ID_LEN = 32;
const ID_RE = /^[0-9a-f]{64}$/;

export function isId(s: string): boolean {
  return ID_RE.test(s);
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hashId(data: Uint8Array): Id {
  return createHash('sha256').update(data).digest('hex');
}

export function idToBytes(id: Id): Buffer {
  return Buffer.from(id, 'hex');
}

export function bytesToId(b: Uint8Array): Id {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

export function shortId(id: Id): string {
  return id.slice(0, 8);
}

export function randomId(): Id {
  return randomBytes(32).toString('hex');
}

export const ZERO_ID: Id = '0'.repeat(64);
