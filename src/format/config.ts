/**
 * The repository `config` document (spec §3). Never compressed, even in v2.
 *
 * cairn records a non-restic chunker choice under the extra key `cairn_chunker`, after the
 * three standard keys. restic's decoder ignores unknown keys, so restic can still open the
 * repository (it will chunk with Rabin itself; only cross-tool dedup suffers). Absent means
 * restic's Rabin chunker with `chunker_polynomial`.
 */
import { CairnError } from '../core/errors.js';
import { asInt, asString, corruptDoc, expectObject, fieldsOf } from './fields.js';
import { goJsonQuote, parseJson, type JsonValue } from './json.js';

export interface FastCdcParams {
  algorithm: 'fastcdc';
  min: number;
  avg: number;
  max: number;
}

export interface RepoConfig {
  version: 1 | 2;
  /** 64 hex chars (restic stores it as an opaque string; we require hex). */
  id: string;
  /** Rabin polynomial (degree ≤ 63). */
  chunkerPolynomial: bigint;
  chunker?: FastCdcParams;
}

const WHAT = 'config';
const KNOWN: ReadonlySet<string> = new Set(['version', 'id', 'chunker_polynomial', 'cairn_chunker']);
const INT_KEYS: ReadonlySet<string> = new Set(['version', 'min', 'avg', 'max']);
const REPO_ID_RE = /^[0-9a-fA-F]{64}$/;
const POLY_RE = /^[0-9a-fA-F]{1,16}$/;
const U64_MAX = (1n << 64n) - 1n;
/** Upper bound for chunk sizes: pack offsets and lengths are 32-bit. */
const MAX_CHUNK = 0xffffffff;

function checkChunker(c: FastCdcParams, fail: (msg: string) => never): void {
  if (c.algorithm !== 'fastcdc') fail(`unsupported chunker algorithm ${JSON.stringify(c.algorithm)}`);
  for (const k of ['min', 'avg', 'max'] as const) {
    const v = c[k];
    if (!Number.isInteger(v) || v < 1 || v > MAX_CHUNK) fail(`chunker ${k} must be a positive integer`);
  }
  if (!(c.min <= c.avg && c.avg <= c.max)) fail('chunker sizes must satisfy min <= avg <= max');
}

/** Compact JSON, no trailing newline, as restic writes it (plus `cairn_chunker` if set). */
export function encodeConfig(cfg: RepoConfig): Buffer {
  const inval = (msg: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `config: ${msg}`);
  };
  if (cfg.version !== 1 && cfg.version !== 2) inval(`unsupported repository version ${String(cfg.version)}`);
  if (typeof cfg.id !== 'string' || !REPO_ID_RE.test(cfg.id)) inval('id must be 64 hex characters');
  if (typeof cfg.chunkerPolynomial !== 'bigint' || cfg.chunkerPolynomial <= 0n || cfg.chunkerPolynomial > U64_MAX) {
    inval('chunker polynomial must be a positive uint64 bigint');
  }
  let s =
    '{"version":' + cfg.version + ',"id":' + goJsonQuote(cfg.id) + ',"chunker_polynomial":"' + cfg.chunkerPolynomial.toString(16) + '"';
  if (cfg.chunker) {
    const c = cfg.chunker;
    checkChunker(c, inval);
    s += ',"cairn_chunker":{"algorithm":"fastcdc","min":' + c.min + ',"avg":' + c.avg + ',"max":' + c.max + '}';
  }
  return Buffer.from(s + '}', 'utf8');
}

function decodeChunker(v: JsonValue): FastCdcParams {
  const o = expectObject(v, 'cairn_chunker');
  let algorithm = '';
  let min = 0;
  let avg = 0;
  let max = 0;
  for (const { field, value } of fieldsOf(o, new Set(['algorithm', 'min', 'avg', 'max']))) {
    if (field === 'algorithm') algorithm = asString(value, WHAT, 'cairn_chunker.algorithm');
    else if (field === 'min') min = asInt(value, WHAT, 'cairn_chunker.min', 0n, BigInt(MAX_CHUNK));
    else if (field === 'avg') avg = asInt(value, WHAT, 'cairn_chunker.avg', 0n, BigInt(MAX_CHUNK));
    else if (field === 'max') max = asInt(value, WHAT, 'cairn_chunker.max', 0n, BigInt(MAX_CHUNK));
  }
  if (algorithm !== 'fastcdc') {
    // a chunker we do not know would make us write blobs nobody can dedup against: refuse
    throw new CairnError('UNSUPPORTED', `config: unsupported chunker algorithm ${JSON.stringify(algorithm)}`);
  }
  const c: FastCdcParams = { algorithm: 'fastcdc', min, avg, max };
  checkChunker(c, (msg) => corruptDoc(WHAT, msg));
  return c;
}

/**
 * Parses the decrypted config. Throws UNSUPPORTED for versions other than 1 and 2 (restic:
 * "unsupported repository version"), CORRUPT for malformed content.
 */
export function decodeConfig(buf: Uint8Array | string): RepoConfig {
  const o = expectObject(parseJson(buf, { bigintKeys: INT_KEYS, what: WHAT }), WHAT);
  let version: bigint | undefined;
  let id = '';
  let poly: bigint | undefined;
  let chunker: FastCdcParams | undefined;
  for (const { field, value } of fieldsOf(o, KNOWN)) {
    switch (field) {
      case 'version':
        if (value === null) version = 0n;
        else if (typeof value === 'bigint' || (typeof value === 'number' && Number.isSafeInteger(value))) version = BigInt(value);
        else corruptDoc(WHAT, 'version is not an integer');
        break;
      case 'id':
        id = asString(value, WHAT, 'id');
        break;
      case 'chunker_polynomial': {
        const s = asString(value, WHAT, 'chunker_polynomial');
        // Go: strconv.ParseUint(s, 16, 64) — no 0x prefix, either case
        if (!POLY_RE.test(s)) corruptDoc(WHAT, `invalid chunker polynomial ${JSON.stringify(s)}`);
        poly = BigInt('0x' + s);
        break;
      }
      case 'cairn_chunker':
        chunker = value === null ? undefined : decodeChunker(value);
        break;
      default:
        break; // unknown keys are ignored, as in restic
    }
  }
  if (version !== 1n && version !== 2n) {
    throw new CairnError('UNSUPPORTED', `unsupported repository version ${String(version ?? 0n)}`);
  }
  if (!REPO_ID_RE.test(id)) corruptDoc(WHAT, `id is not 64 hex characters: ${JSON.stringify(id)}`);
  if (poly === undefined || poly === 0n) corruptDoc(WHAT, 'missing chunker polynomial');
  const cfg: RepoConfig = { version: Number(version) as 1 | 2, id, chunkerPolynomial: poly };
  if (chunker) cfg.chunker = chunker;
  return cfg;
}
