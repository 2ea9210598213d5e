/**
 * Key files (`keys/<id>`, spec §2.4) and the master key JSON inside them (§2.5).
 *
 * A key file is plain JSON (not encrypted); its name is SHA-256 of exactly these bytes, so the
 * field order and spelling (`N` upper case, `r`, `p` lower case) must match restic.
 */
import { CairnError } from '../core/errors.js';
import { asBase64, asInt, asString, checkTime, corruptDoc, expectObject, fieldsOf } from './fields.js';
import { goJsonQuote, parseJson } from './json.js';
import { parseTime } from './time.js';

export interface KeyFile {
  /** RFC 3339 creation time, informational. */
  created: string;
  username: string;
  hostname: string;
  /** Always 'scrypt' (restic: "only supported KDF is scrypt()"). */
  kdf: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** 64 random bytes. */
  salt: Buffer;
  /** IV || ciphertext || MAC of the master key JSON (160 bytes for restic-made keys). */
  data: Buffer;
}

export interface MasterKey {
  /** AES-256 key. */
  encrypt: Buffer;
  /** Poly1305-AES: AES-128 key k. */
  macK: Buffer;
  /** Poly1305-AES: r (clamped by the crypto layer). */
  macR: Buffer;
}

export const SALT_LEN = 64;
/** IV (16) + MAC (16): the smallest possible ciphertext container. */
const CONTAINER_OVERHEAD = 32;

/**
 * scrypt parameter checks (those of golang.org/x/crypto/scrypt plus restic's): N a power of two
 * > 1, r and p ≥ 1, r·p < 2^30, and the memory 128·r·N at most 2 GiB — anything larger is not a
 * key restic could have written and would let a planted key file exhaust our memory.
 */
export function checkScryptParams(N: number, r: number, p: number): string | undefined {
  if (!Number.isSafeInteger(N) || N <= 1 || (N & (N - 1)) !== 0 || N > 2 ** 30) return 'N must be a power of two > 1';
  if (!Number.isSafeInteger(r) || r < 1) return 'r must be >= 1';
  if (!Number.isSafeInteger(p) || p < 1) return 'p must be >= 1';
  if (r * p >= 2 ** 30) return 'r*p must be < 2^30';
  if (128 * r * N > 2 ** 31) return 'parameters need more than 2 GiB of memory';
  return undefined;
}

/** Compact JSON, fields `created,username,hostname,kdf,N,r,p,salt,data`, no newline. */
export function encodeKeyFile(k: KeyFile): Buffer {
  const inval = (msg: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `key file: ${msg}`);
  };
  if (k.kdf !== 'scrypt') inval('kdf must be scrypt');
  const why = checkScryptParams(k.N, k.r, k.p);
  if (why) inval(why);
  if (k.salt.length !== SALT_LEN) inval(`salt must be ${SALT_LEN} bytes`);
  if (k.data.length < CONTAINER_OVERHEAD) inval('data is too short');
  checkTime(k.created, 'key file created');
  const s =
    '{"created":' + goJsonQuote(k.created) +
    ',"username":' + goJsonQuote(k.username) +
    ',"hostname":' + goJsonQuote(k.hostname) +
    ',"kdf":"scrypt","N":' + k.N + ',"r":' + k.r + ',"p":' + k.p +
    ',"salt":"' + k.salt.toString('base64') + '","data":"' + k.data.toString('base64') + '"}';
  return Buffer.from(s, 'utf8');
}

const KEY_FIELDS: ReadonlySet<string> = new Set(['created', 'username', 'hostname', 'kdf', 'N', 'r', 'p', 'salt', 'data']);
const KEY_INT_KEYS: ReadonlySet<string> = new Set(['N', 'r', 'p', 'n', 'R', 'P']);

/**
 * Parses and validates a key file. Throws UNSUPPORTED for a KDF other than scrypt, CORRUPT for
 * anything malformed (bad JSON, salt not 64 bytes, unusable scrypt parameters, ...).
 */
export function decodeKeyFile(buf: Uint8Array | string): KeyFile {
  const what = 'key file';
  const o = expectObject(parseJson(buf, { bigintKeys: KEY_INT_KEYS, what }), what);
  const k: KeyFile = {
    created: '0001-01-01T00:00:00Z',
    username: '',
    hostname: '',
    kdf: 'scrypt',
    N: 0,
    r: 0,
    p: 0,
    salt: Buffer.alloc(0),
    data: Buffer.alloc(0),
  };
  let kdf = '';
  const maxInt = BigInt(Number.MAX_SAFE_INTEGER);
  for (const { field, value } of fieldsOf(o, KEY_FIELDS)) {
    switch (field) {
      case 'created':
        if (value !== null) k.created = asString(value, what, 'created');
        break;
      case 'username':
        k.username = asString(value, what, 'username');
        break;
      case 'hostname':
        k.hostname = asString(value, what, 'hostname');
        break;
      case 'kdf':
        kdf = asString(value, what, 'kdf');
        break;
      case 'N':
        k.N = asInt(value, what, 'N', -maxInt, maxInt);
        break;
      case 'r':
        k.r = asInt(value, what, 'r', -maxInt, maxInt);
        break;
      case 'p':
        k.p = asInt(value, what, 'p', -maxInt, maxInt);
        break;
      case 'salt':
        k.salt = asBase64(value, what, 'salt');
        break;
      case 'data':
        k.data = asBase64(value, what, 'data');
        break;
      default:
        break;
    }
  }
  if (kdf !== 'scrypt') throw new CairnError('UNSUPPORTED', 'only supported KDF is scrypt()');
  parseTime(k.created);
  const why = checkScryptParams(k.N, k.r, k.p);
  if (why) corruptDoc(what, `scrypt parameters N=${k.N} r=${k.r} p=${k.p}: ${why}`);
  if (k.salt.length !== SALT_LEN) corruptDoc(what, `salt is ${k.salt.length} bytes, want ${SALT_LEN}`);
  if (k.data.length < CONTAINER_OVERHEAD) corruptDoc(what, 'data is too short');
  return k;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function checkMasterKey(m: MasterKey, fail: (msg: string) => never): void {
  if (m.encrypt.length !== 32) fail('encryption key must be 32 bytes');
  if (m.macK.length !== 16 || m.macR.length !== 16) fail('MAC keys must be 16 bytes each');
  // restic refuses all-zero key parts ("key is invalid")
  if (isZero(m.encrypt) || isZero(m.macK) || isZero(m.macR)) fail('key is invalid (zero key material)');
}

/** `{"mac":{"k":…,"r":…},"encrypt":…}` — the plaintext sealed into a key file's `data`. */
export function encodeMasterKey(m: MasterKey): Buffer {
  checkMasterKey(m, (msg) => {
    throw new CairnError('INVALID_ARGUMENT', `master key: ${msg}`);
  });
  return Buffer.from(
    '{"mac":{"k":"' + m.macK.toString('base64') + '","r":"' + m.macR.toString('base64') + '"},"encrypt":"' +
      m.encrypt.toString('base64') + '"}',
    'utf8',
  );
}

/** Parses the master key JSON; CORRUPT if malformed, wrong lengths or zero key parts. */
export function decodeMasterKey(buf: Uint8Array | string): MasterKey {
  const what = 'master key';
  const o = expectObject(parseJson(buf, { what }), what);
  const m: MasterKey = { encrypt: Buffer.alloc(0), macK: Buffer.alloc(0), macR: Buffer.alloc(0) };
  for (const { field, value } of fieldsOf(o, new Set(['mac', 'encrypt']))) {
    if (field === 'encrypt') {
      m.encrypt = asBase64(value, what, 'encrypt');
    } else if (field === 'mac' && value !== null) {
      for (const f of fieldsOf(expectObject(value, what), new Set(['k', 'r']))) {
        if (f.field === 'k') m.macK = asBase64(f.value, what, 'mac.k');
        else if (f.field === 'r') m.macR = asBase64(f.value, what, 'mac.r');
      }
    }
  }
  checkMasterKey(m, (msg) => corruptDoc(what, msg));
  return m;
}
