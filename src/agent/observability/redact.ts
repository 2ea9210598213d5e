/**
 * Secret scrubbing for log records (and anything else that leaves the process as text, such as a
 * CR status message). Two independent rules:
 *
 *  1. by key: a field whose name says it holds a secret (password, repository-password, token,
 *     secretAccessKey, credentials, ...) is replaced whole, at any depth, whatever its type;
 *  2. by value: inside every string, URL userinfo (`s3:https://user:pass@host/...`), bearer/basic
 *     authorization values and `key=value` secrets of connection strings are masked.
 *
 * Keys that merely *point at* a secret (passwordFile, secretName, credentialsFile, caCertRef) are
 * kept: they are what an operator needs to debug a mis-configured install.
 */

export const REDACTED = '[REDACTED]';

/** Normalised key names (lower case, no separators) that hold a secret in full. */
const SECRET_KEYS = new Set(['authorization', 'proxyauthorization', 'cookie', 'setcookie', 'credentials', 'credential', 'connectionstring', 'sas']);

/** A key is secret when its normalised form ends with one of these (repositoryPassword, clientSecret, AWS_SESSION_TOKEN...). */
const SECRET_SUFFIXES = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'token',
  'secretkey',
  'secretaccesskey',
  'accesskey',
  'accountkey',
  'privatekey',
  'apikey',
  'sastoken',
  'masterkey',
];

function normaliseKey(k: string): string {
  return k.toLowerCase().replace(/[-_.\s]/g, '');
}

export function isSecretKey(key: string): boolean {
  const k = normaliseKey(key);
  if (SECRET_KEYS.has(k)) return true;
  return SECRET_SUFFIXES.some((s) => k.endsWith(s));
}

/** `scheme://userinfo@` — userinfo runs up to the last `@` before the path, query or fragment. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s@]*(?:@[^/?#\s@]*)*@/gi;
/** HTTP authorization values. */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g;
/** `name=value` pairs of connection strings and env dumps whose name says secret. */
const SECRET_ASSIGNMENT = /\b(AccountKey|SharedAccessSignature|SharedAccessKey|password|passwd|pwd|secret|token|AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|AZURE_ACCOUNT_KEY|AZURE_CLIENT_SECRET|RESTIC_PASSWORD)=([^;&\s"']+)/gi;

/** Masks secrets inside free text. */
export function redactText(s: string): string {
  if (s.length < 6) return s;
  return s
    .replace(URL_USERINFO, `$1${REDACTED}@`)
    .replace(AUTH_SCHEME, `$1 ${REDACTED}`)
    .replace(SECRET_ASSIGNMENT, (_m, name: string) => `${name}=${REDACTED}`);
}

const MAX_DEPTH = 10;

/**
 * A deep copy of `value` with secrets masked. Errors become plain objects (type, message, stack,
 * code, cause) so their text is scrubbed too; cycles become "[Circular]"; binary data is summarised.
 */
export function redact(value: unknown): unknown {
  return walk(value, 0, new WeakSet());
}

/** Same as redact() for a record (what loggers deal in). */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return walk(fields, 0, new WeakSet()) as Record<string, unknown>;
}

function walk(v: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof v === 'string') return redactText(v);
  if (v === null || typeof v !== 'object') return v;
  if (seen.has(v)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Object]';
  if (v instanceof Date) return v;
  if (Buffer.isBuffer(v) || ArrayBuffer.isView(v)) return `[${(v as ArrayBufferView).byteLength} bytes]`;
  seen.add(v);
  try {
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1, seen));
    if (v instanceof Error) return walkError(v, depth, seen);
    if (v instanceof Map) return walkEntries([...v.entries()].map(([k, x]) => [String(k), x]), depth, seen, false);
    if (v instanceof Set) return [...v].map((x) => walk(x, depth + 1, seen));
    const obj = v as Record<string, unknown>;
    // A Kubernetes Secret: every value under data/stringData is secret, whatever its key.
    const isSecretObject = obj.kind === 'Secret' && (typeof obj.apiVersion === 'string' || 'data' in obj || 'stringData' in obj);
    return walkEntries(Object.entries(obj), depth, seen, isSecretObject);
  } finally {
    seen.delete(v);
  }
}

function walkEntries(entries: Array<[string, unknown]>, depth: number, seen: WeakSet<object>, isSecretObject: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, x] of entries) {
    if (x === undefined) continue;
    if ((isSecretKey(k) && x !== null && x !== '') || (isSecretObject && (k === 'data' || k === 'stringData'))) out[k] = REDACTED;
    else out[k] = walk(x, depth + 1, seen);
  }
  return out;
}

function walkError(e: Error, depth: number, seen: WeakSet<object>): Record<string, unknown> {
  const out: Record<string, unknown> = { type: e.name, message: redactText(e.message) };
  if (e.stack) out.stack = redactText(e.stack);
  // own enumerable extras (code, object, retryable, errno, syscall, path, ...)
  Object.assign(out, walkEntries(Object.entries(e).filter(([k]) => k !== 'message' && k !== 'stack'), depth, seen, false));
  if (e.cause !== undefined) out.cause = walk(e.cause, depth + 1, seen);
  return out;
}
