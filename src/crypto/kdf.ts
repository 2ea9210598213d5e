import { createHash, scrypt as scryptCb, randomBytes } from 'node:crypto';
import { CairnError } from '../core/errors.js';
import { keyFromKdf, type CryptoKey } from './key.js';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

/**
 * Parameters for new keys. restic fixes N = 2^15 and r = 8 by its 60 MiB memory budget and
 * calibrates p to ~0.5 s; we keep N and r (the memory-hardness) and use p = 1, which is ~0.1 s
 * here: every CLI invocation and every agent job opens a key, and p adds only CPU time.
 */
export const DEFAULT_SCRYPT: ScryptParams = { N: 32768, r: 8, p: 1 };

export function validateScryptParams(p: ScryptParams): void {
  const ok =
    Number.isInteger(p.N) && Number.isInteger(p.r) && Number.isInteger(p.p) &&
    p.N > 1 && (p.N & (p.N - 1)) === 0 && p.r >= 1 && p.p >= 1 && p.r * p.p < 2 ** 30 &&
    p.N <= 2 ** 31 / (128 * p.r);
  if (!ok) throw new CairnError('CORRUPT', `invalid scrypt parameters N=${p.N} r=${p.r} p=${p.p}`);
}

/** Derives a user key: scrypt(password, salt, N, r, p, 64) split 32 | 16 | 16. */
export function deriveKey(password: string, salt: Uint8Array, params: ScryptParams): Promise<CryptoKey> {
  validateScryptParams(params);
  const k = inputsKey(salt, params);
  if (remembered === undefined) return derive(password, salt, params, k);
  const id = createHash('sha256').update(k).update('\0').update(password, 'utf8').digest('base64');
  let key = remembered.get(id);
  if (key === undefined) {
    key = derive(password, salt, params, k);
    remembered.set(id, key);
    key.catch(() => remembered?.delete(id)); // a failure is not remembered
    if (remembered.size > REMEMBERED_MAX) remembered.delete(remembered.keys().next().value!);
  }
  return key;
}

function derive(password: string, salt: Uint8Array, params: ScryptParams, k: string): Promise<CryptoKey> {
  const e = early.get(k);
  if (e !== undefined && e.password === password) {
    early.delete(k);
    return e.dk.then(keyFromKdf, () => scrypt(password, salt, params).then(keyFromKdf));
  }
  return scrypt(password, salt, params).then(keyFromKdf);
}

/**
 * Keys already derived, by salt, parameters and password (hashed), when rememberDerivedKeys was
 * called: a node agent opens the same repositories for every pod volume it backs up or restores,
 * and each open spent ~0.1 s of scrypt (32 MiB) on the same derivation. The derived key is what
 * the password opens anyway, held as long as the process runs.
 */
let remembered: Map<string, Promise<CryptoKey>> | undefined;
/** Oldest entries go first beyond this (keys of repositories, key files and passwords seen). */
const REMEMBERED_MAX = 64;

/** From now on deriveKey derives each key once per process (long-running processes: the agent). */
export function rememberDerivedKeys(): void {
  remembered ??= new Map();
}

/** How many derived keys are remembered (tests, diagnostics). */
export function rememberedKeyCount(): number {
  return remembered?.size ?? 0;
}

/**
 * Derivations started ahead of need (see startDerivation), by salt and parameters; each is handed
 * out once, to the first deriveKey call with the same password.
 */
const early = new Map<string, { password: string; dk: Promise<Buffer> }>();

/** Salt and parameters as one map key (the password is compared or hashed separately). */
function inputsKey(salt: Uint8Array, params: ScryptParams): string {
  return `${params.N}:${params.r}:${params.p}:${Buffer.from(salt.buffer, salt.byteOffset, salt.byteLength).toString('base64')}`;
}

/**
 * Starts deriving a key that deriveKey will probably be asked for soon (the CLI starts the
 * repository's key before it has loaded the code that opens the repository: see
 * cli/early-key.ts). A derivation nobody asks for only costs its CPU time.
 */
export function startDerivation(password: string, salt: Uint8Array, params: ScryptParams): void {
  validateScryptParams(params);
  const dk = scrypt(password, salt, params);
  dk.catch(() => undefined); // deriveKey derives again if this failed
  early.set(inputsKey(salt, params), { password, dk });
}

/** How many early derivations wait for their deriveKey call (tests, diagnostics). */
export function earlyDerivationsPending(): number {
  return early.size;
}

function scrypt(password: string, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
  // Node refuses scrypt unless maxmem >= 128·r·(N + p + 2); give it that plus slack.
  const maxmem = 128 * params.r * (params.N + params.p + 2) + (1 << 20);
  return new Promise((resolve, reject) => {
    scryptCb(Buffer.from(password, 'utf8'), salt, 64, { N: params.N, r: params.r, p: params.p, maxmem }, (err, dk) => {
      if (err) reject(new CairnError('INTERNAL', `scrypt failed: ${err.message}`, { cause: err }));
      else resolve(dk);
    });
  });
}

export function newSalt(): Buffer {
  return randomBytes(64);
}
