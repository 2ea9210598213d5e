/**
 * Snapshot JSON (spec §8): compact Go json.Marshal output, fixed key order, omitempty rules.
 *
 * Keys we do not know (newer restic adds `program_version`, `summary`) are kept in `extra` in
 * document order and written back after the known keys — where newer restic puts them — so
 * rewriting a snapshot (tag changes) does not drop them.
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import {
  asId,
  asInt,
  asString,
  asStringList,
  checkId,
  checkTime,
  checkUint,
  corruptDoc,
  expectObject,
  fieldsOf,
  setOwn,
} from './fields.js';
import { encodeGoJsonValue, goJsonQuote, parseJson, type JsonValue } from './json.js';
import { parseTime } from './time.js';

export interface Snapshot {
  /** RFC 3339 (Go) time string, kept verbatim. */
  time: string;
  parent?: Id;
  tree: Id;
  paths: string[];
  hostname?: string;
  username?: string;
  /** Omitted when 0 (root). */
  uid?: number;
  gid?: number;
  excludes?: string[];
  tags?: string[];
  original?: Id;
  /** Unknown keys from newer writers, in document order; re-emitted after the known keys. */
  extra?: Record<string, JsonValue>;
}

const WHAT = 'snapshot';
const KNOWN: ReadonlySet<string> = new Set([
  'time', 'parent', 'tree', 'paths', 'hostname', 'username', 'uid', 'gid', 'excludes', 'tags', 'original',
]);
const INT_KEYS: ReadonlySet<string> = new Set(['uid', 'gid']);

function quoteList(list: readonly string[]): string {
  return '[' + list.map(goJsonQuote).join(',') + ']';
}

/** Serializes like restic's json.Marshal of a Snapshot (no trailing newline). */
export function encodeSnapshot(sn: Snapshot): Buffer {
  let s = '{"time":' + goJsonQuote(checkTime(sn.time, 'snapshot time'));
  if (sn.parent !== undefined) s += ',"parent":"' + checkId(sn.parent, 'snapshot parent') + '"';
  s += ',"tree":"' + checkId(sn.tree, 'snapshot tree') + '"';
  s += ',"paths":' + quoteList(sn.paths ?? []);
  if (sn.hostname) s += ',"hostname":' + goJsonQuote(sn.hostname);
  if (sn.username) s += ',"username":' + goJsonQuote(sn.username);
  if (sn.uid) s += ',"uid":' + checkUint(sn.uid, 'snapshot uid', 0xffffffff);
  if (sn.gid) s += ',"gid":' + checkUint(sn.gid, 'snapshot gid', 0xffffffff);
  if (sn.excludes && sn.excludes.length > 0) s += ',"excludes":' + quoteList(sn.excludes);
  if (sn.tags && sn.tags.length > 0) s += ',"tags":' + quoteList(sn.tags);
  if (sn.original !== undefined) s += ',"original":"' + checkId(sn.original, 'snapshot original') + '"';
  if (sn.extra) {
    for (const [k, v] of Object.entries(sn.extra)) {
      if (v === undefined) continue;
      if (KNOWN.has(k.toLowerCase())) {
        throw new CairnError('INVALID_ARGUMENT', `snapshot extra key ${JSON.stringify(k)} collides with a known key`);
      }
      s += ',' + goJsonQuote(k) + ':' + encodeGoJsonValue(v);
    }
  }
  return Buffer.from(s + '}', 'utf8');
}

/** Parses snapshot JSON; throws CORRUPT for malformed documents or a missing tree. */
export function decodeSnapshot(buf: Uint8Array | string): Snapshot {
  const o = expectObject(parseJson(buf, { bigintKeys: INT_KEYS, what: WHAT }), WHAT);
  let time = '0001-01-01T00:00:00Z'; // Go's zero time, what a missing key decodes to
  let tree: Id | undefined;
  let paths: string[] = [];
  const sn: Partial<Snapshot> = {};
  const extra: Record<string, JsonValue> = {};
  let hasExtra = false;
  for (const { field, key, value } of fieldsOf(o, KNOWN)) {
    switch (field) {
      case 'time':
        if (value === null) break;
        time = asString(value, WHAT, 'time');
        parseTime(time); // validates; Go refuses to load a snapshot with a malformed time
        break;
      case 'parent':
        if (value === null) delete sn.parent;
        else sn.parent = asId(value, WHAT, 'parent');
        break;
      case 'tree':
        tree = value === null ? undefined : asId(value, WHAT, 'tree');
        break;
      case 'paths':
        paths = asStringList(value, WHAT, 'paths');
        break;
      case 'hostname':
      case 'username': {
        const s = asString(value, WHAT, field);
        if (s) sn[field] = s;
        else delete sn[field];
        break;
      }
      case 'uid':
      case 'gid': {
        const n = asInt(value, WHAT, field, 0n, 0xffffffffn);
        if (n) sn[field] = n;
        else delete sn[field];
        break;
      }
      case 'excludes':
      case 'tags': {
        const l = asStringList(value, WHAT, field);
        if (l.length > 0) sn[field] = l;
        else delete sn[field];
        break;
      }
      case 'original':
        if (value === null) delete sn.original;
        else sn.original = asId(value, WHAT, 'original');
        break;
      default:
        setOwn(extra, key, value);
        hasExtra = true;
    }
  }
  if (tree === undefined) corruptDoc(WHAT, 'no tree');
  const out: Snapshot = { time, tree, paths };
  // fixed property order keeps objects predictable for callers and tests
  if (sn.parent !== undefined) out.parent = sn.parent;
  if (sn.hostname !== undefined) out.hostname = sn.hostname;
  if (sn.username !== undefined) out.username = sn.username;
  if (sn.uid !== undefined) out.uid = sn.uid;
  if (sn.gid !== undefined) out.gid = sn.gid;
  if (sn.excludes !== undefined) out.excludes = sn.excludes;
  if (sn.tags !== undefined) out.tags = sn.tags;
  if (sn.original !== undefined) out.original = sn.original;
  if (hasExtra) out.extra = extra;
  return out;
}
