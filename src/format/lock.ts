/**
 * Lock files (spec §9): compact JSON `time,exclusive,hostname,username,pid[,uid][,gid]`,
 * uid/gid omitted when 0 (Go omitempty), no trailing newline.
 */
import { CairnError } from '../core/errors.js';
import { asBool, asInt, asString, checkTime, expectObject, fieldsOf } from './fields.js';
import { goJsonQuote, parseJson } from './json.js';
import { parseTime } from './time.js';

export interface Lock {
  /** RFC 3339 time the lock was (re)written. */
  time: string;
  exclusive: boolean;
  hostname: string;
  username: string;
  pid: number;
  uid?: number;
  gid?: number;
}

const WHAT = 'lock';
const KNOWN: ReadonlySet<string> = new Set(['time', 'exclusive', 'hostname', 'username', 'pid', 'uid', 'gid']);
const INT_KEYS: ReadonlySet<string> = new Set(['pid', 'uid', 'gid']);
const INT64_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export function encodeLock(l: Lock): Buffer {
  const inval = (msg: string): never => {
    throw new CairnError('INVALID_ARGUMENT', `lock: ${msg}`);
  };
  checkTime(l.time, 'lock time');
  if (!Number.isSafeInteger(l.pid)) inval('pid must be an integer');
  for (const k of ['uid', 'gid'] as const) {
    const v = l[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff)) inval(`${k} must be a uint32`);
  }
  let s =
    '{"time":' + goJsonQuote(l.time) +
    ',"exclusive":' + (l.exclusive ? 'true' : 'false') +
    ',"hostname":' + goJsonQuote(l.hostname) +
    ',"username":' + goJsonQuote(l.username) +
    ',"pid":' + l.pid;
  if (l.uid) s += ',"uid":' + l.uid;
  if (l.gid) s += ',"gid":' + l.gid;
  return Buffer.from(s + '}', 'utf8');
}

/** Parses a lock; CORRUPT when malformed (restic ignores locks it cannot load). */
export function decodeLock(buf: Uint8Array | string): Lock {
  const o = expectObject(parseJson(buf, { bigintKeys: INT_KEYS, what: WHAT }), WHAT);
  const l: Lock = { time: '0001-01-01T00:00:00Z', exclusive: false, hostname: '', username: '', pid: 0 };
  for (const { field, value } of fieldsOf(o, KNOWN)) {
    switch (field) {
      case 'time':
        if (value !== null) l.time = asString(value, WHAT, 'time');
        break;
      case 'exclusive':
        l.exclusive = asBool(value, WHAT, 'exclusive');
        break;
      case 'hostname':
        l.hostname = asString(value, WHAT, 'hostname');
        break;
      case 'username':
        l.username = asString(value, WHAT, 'username');
        break;
      case 'pid':
        l.pid = asInt(value, WHAT, 'pid', -INT64_SAFE, INT64_SAFE);
        break;
      case 'uid':
      case 'gid': {
        const n = asInt(value, WHAT, field, 0n, 0xffffffffn);
        if (n) l[field] = n;
        else delete l[field];
        break;
      }
      default:
        break;
    }
  }
  parseTime(l.time);
  return l;
}
