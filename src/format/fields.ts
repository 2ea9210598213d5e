/**
 * Small helpers shared by the JSON document codecs (snapshot, config, key, lock): typed field
 * access with Go decoder semantics and CORRUPT errors that name the document.
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import type { JsonValue } from './json.js';
import { parseTime } from './time.js';

export type JsonObject = { [k: string]: JsonValue };

const ID_RE_ANY_CASE = /^[0-9a-fA-F]{64}$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function corruptDoc(what: string, msg: string): never {
  throw new CairnError('CORRUPT', `invalid ${what}: ${msg}`);
}

export function expectObject(v: JsonValue, what: string): JsonObject {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) corruptDoc(what, 'not a JSON object');
  return v;
}

/**
 * Maps the keys of a JSON object to the known field names the way Go's decoder matches struct
 * fields: exact match first, else case-insensitive. Returns [field, value] pairs in document
 * order (so a later duplicate wins, as in Go); unknown keys come back with field undefined.
 */
export function fieldsOf(
  o: JsonObject,
  known: ReadonlySet<string>,
): { field: string | undefined; key: string; value: JsonValue }[] {
  const out: { field: string | undefined; key: string; value: JsonValue }[] = [];
  for (const key of Object.keys(o)) {
    let field: string | undefined;
    if (known.has(key)) field = key;
    else {
      const lower = key.toLowerCase();
      for (const k of known) {
        if (k.toLowerCase() === lower) {
          field = k;
          break;
        }
      }
    }
    out.push({ field, key, value: o[key] });
  }
  return out;
}

export function asString(v: JsonValue, what: string, key: string): string {
  if (v === null) return '';
  if (typeof v !== 'string') corruptDoc(what, `${key} is not a string`);
  return v;
}

export function asBool(v: JsonValue, what: string, key: string): boolean {
  if (v === null) return false;
  if (typeof v !== 'boolean') corruptDoc(what, `${key} is not a boolean`);
  return v;
}

/** Integer field parsed under bigintKeys (bigint = integer literal), checked against a range. */
export function asInt(v: JsonValue, what: string, key: string, min: bigint, max: bigint): number {
  if (v === null) return 0;
  // keys spelled differently from bigintKeys (Go's case-insensitive match) arrive as numbers
  const b = typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
  if (typeof b !== 'bigint' || b < min || b > max) corruptDoc(what, `${key} is not an integer in range: ${String(v)}`);
  return Number(b);
}

export function asId(v: JsonValue, what: string, key: string): Id {
  if (typeof v !== 'string') corruptDoc(what, `${key} is not an ID`);
  if (isLowerHexId(v)) return v;
  if (ID_RE_ANY_CASE.test(v)) return v.toLowerCase(); // Go's hex decoder accepts upper case
  return corruptDoc(what, `${key} is not an ID: ${JSON.stringify(v)}`);
}

export function asStringList(v: JsonValue, what: string, key: string): string[] {
  if (v === null) return [];
  if (!Array.isArray(v)) corruptDoc(what, `${key} is not a list`);
  return v.map((x) => asString(x, what, key));
}

/** Strict standard base64 with padding (Go's base64.StdEncoding, used for []byte). */
export function asBase64(v: JsonValue, what: string, key: string): Buffer {
  if (v === null) return Buffer.alloc(0);
  if (typeof v !== 'string' || !BASE64_RE.test(v)) corruptDoc(what, `${key} is not standard base64`);
  return Buffer.from(v, 'base64');
}

/** 1 for the characters of a lower-case hex ID. A table loop is several times faster than a regex. */
const LOWER_HEX = new Uint8Array(128);
for (const c of '0123456789abcdef') LOWER_HEX[c.charCodeAt(0)] = 1;

/** True for 64 lower-case hex characters (the canonical form of an ID). Hot: index and tree decoding. */
export function isLowerHexId(s: unknown): boolean {
  if (typeof s !== 'string' || s.length !== 64) return false;
  for (let i = 0; i < 64; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || LOWER_HEX[c] === 0) return false;
  }
  return true;
}

export function checkId(id: unknown, what: string): Id {
  if (typeof id !== 'string' || !isLowerHexId(id)) throw new CairnError('INVALID_ARGUMENT', `${what} is not a lower-case hex ID: ${String(id)}`);
  return id;
}

export function checkUint(v: unknown, what: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw new CairnError('INVALID_ARGUMENT', `${what} must be an integer in 0..${max}, got ${String(v)}`);
  }
  return v;
}

/** obj[key] = value, also for the key `__proto__` (which must not reach the prototype). */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** For encoders: the caller's time string must be valid RFC 3339 (INVALID_ARGUMENT otherwise). */
export function checkTime(t: unknown, what: string): string {
  if (typeof t !== 'string') throw new CairnError('INVALID_ARGUMENT', `${what} must be a time string`);
  try {
    parseTime(t);
  } catch {
    throw new CairnError('INVALID_ARGUMENT', `${what} is not an RFC 3339 time: ${JSON.stringify(t)}`);
  }
  return t;
}
