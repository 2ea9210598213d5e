/**
 * Tree blobs: the node model and its canonical JSON (spec §7).
 *
 * A tree's ID is SHA-256 of its JSON bytes, so encodeTree must reproduce restic's output byte
 * for byte (key order, Go omitempty rules, Go string escaping, Go-quoted names, sort order).
 * decodeTree keeps everything needed to re-encode a restic tree exactly (times verbatim, uint64
 * values as bigint, names as raw bytes, `\ufffd` escapes as INVALID_UTF8_MARK).
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { goQuote, goUnquote } from './goquote.js';
import { isLowerHexId } from './fields.js';
import { goJsonQuote, parseJson, type JsonValue } from './json.js';

export type NodeType = 'file' | 'dir' | 'symlink' | 'dev' | 'chardev' | 'fifo' | 'socket';

export interface ExtendedAttribute {
  name: string;
  /** Raw attribute bytes; null = Go nil slice (JSON `null`). */
  value: Buffer | null;
}

export interface TreeNode {
  /** Raw name bytes (may be invalid UTF-8). */
  name: Buffer;
  /** Unknown types are preserved as strings (check reports them). */
  type: NodeType | string;
  /** Go os.FileMode, uint32. */
  mode: number;
  /** RFC3339Nano strings, kept verbatim. */
  mtime: string;
  atime: string;
  ctime: string;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  inode?: bigint;
  deviceId?: bigint;
  /** Files only; absent/0 => omitted. */
  size?: number;
  links?: number;
  linktarget?: string;
  extendedAttributes?: ExtendedAttribute[];
  device?: bigint;
  /** Data blob IDs (hex); [] for empty files; null for non-files. */
  content: string[] | null;
  /** Dir only. */
  subtree?: string;
  error?: string;
}

/** ID of `{"nodes":[]}\n`, the empty directory, identical in every repository. */
export const EMPTY_TREE_ID = 'ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8';

/** What Go writes for a zero time.Time (a node whose time field was missing). */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

const ID_RE_ANY_CASE = /^[0-9a-fA-F]{64}$/;
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const U64_MAX = (1n << 64n) - 1n;

/** Orders names like Go compares strings: unsigned bytes (not UTF-16 code units). */
export function compareNames(a: TreeNode, b: TreeNode): number {
  return Buffer.compare(a.name, b.name);
}

// ------------------------------------------------------------------------------------------
// Encoding
// ------------------------------------------------------------------------------------------

function bad(msg: string): never {
  throw new CairnError('INVALID_ARGUMENT', msg);
}

function u32(v: unknown, what: string, name: Buffer): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    bad(`tree node ${JSON.stringify(name.toString())}: ${what} must be a uint32, got ${String(v)}`);
  }
  return v;
}

/** Accepts a FileMode built with JS bitwise ops (signed int32 when ModeDir is set): same bits. */
function goMode(m: number): number {
  return Number.isInteger(m) && m < 0 && m >= -0x80000000 ? m >>> 0 : m;
}

function u64(v: unknown, what: string, name: Buffer): string {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) bad(`tree node ${JSON.stringify(name.toString())}: ${what} out of uint64 range`);
    return v.toString();
  }
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  return bad(`tree node ${JSON.stringify(name.toString())}: ${what} must be a non-negative integer`);
}

function idStr(id: unknown, what: string, name: Buffer): string {
  if (typeof id !== 'string' || !isLowerHexId(id)) {
    bad(`tree node ${JSON.stringify(name.toString())}: ${what} is not a lower-case hex ID: ${String(id)}`);
  }
  return '"' + id + '"';
}

/** The JSON object of one node, keys in restic's order with Go's omitempty rules (§7.2, §7.6). */
function encodeNode(n: TreeNode): string {
  const name = n.name;
  let s = '{"name":' + goJsonQuote(goQuote(name)) + ',"type":' + goJsonQuote(String(n.type));
  if (n.mode) s += ',"mode":' + u32(goMode(n.mode), 'mode', name);
  s += ',"mtime":' + goJsonQuote(n.mtime) + ',"atime":' + goJsonQuote(n.atime) + ',"ctime":' + goJsonQuote(n.ctime);
  s += ',"uid":' + u32(n.uid, 'uid', name) + ',"gid":' + u32(n.gid, 'gid', name);
  if (n.user) s += ',"user":' + goJsonQuote(n.user);
  if (n.group) s += ',"group":' + goJsonQuote(n.group);
  if (n.inode) s += ',"inode":' + u64(n.inode, 'inode', name);
  if (n.deviceId) s += ',"device_id":' + u64(n.deviceId, 'device_id', name);
  if (n.size) s += ',"size":' + u64(n.size, 'size', name);
  if (n.links) s += ',"links":' + u64(n.links, 'links', name);
  if (n.linktarget) s += ',"linktarget":' + goJsonQuote(n.linktarget);
  const xa = n.extendedAttributes;
  if (xa && xa.length > 0) {
    const parts: string[] = new Array(xa.length);
    for (let i = 0; i < xa.length; i++) {
      const a = xa[i];
      const v = a.value;
      const val = v === null ? 'null' : '"' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') + '"';
      parts[i] = '{"name":' + goJsonQuote(a.name) + ',"value":' + val + '}';
    }
    s += ',"extended_attributes":[' + parts.join(',') + ']';
  }
  if (n.device) s += ',"device":' + u64(n.device, 'device', name);
  const c = n.content;
  if (c === null || c === undefined) {
    s += ',"content":null';
  } else {
    s += ',"content":[';
    for (let i = 0; i < c.length; i++) s += (i === 0 ? '' : ',') + idStr(c[i], 'content ID', name);
    s += ']';
  }
  if (n.subtree !== undefined) s += ',"subtree":' + idStr(n.subtree, 'subtree', name);
  if (n.error) s += ',"error":' + goJsonQuote(n.error);
  return s + '}';
}

/**
 * Serializes a directory exactly as restic 0.14 does: nodes sorted by raw name bytes,
 * `{"nodes":[...]}` plus a trailing newline. The input array is not modified. Throws
 * INVALID_ARGUMENT for empty or duplicate names and malformed field values.
 */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  for (const n of nodes) {
    if (!(n.name instanceof Uint8Array)) bad('tree node name must be a Buffer of raw name bytes');
  }
  let sorted: readonly TreeNode[] = nodes;
  for (let i = 1; i < nodes.length; i++) {
    if (Buffer.compare(nodes[i - 1].name, nodes[i].name) >= 0) {
      sorted = [...nodes].sort(compareNames);
      break;
    }
  }
  // Each node becomes a small string that is written straight into a reused scratch buffer;
  // measured ~2x faster than joining the strings and converting the result in one go.
  let out = scratch;
  let o = out.write('{"nodes":[', 0, 'latin1');
  for (let i = 0; i < sorted.length; i++) {
    const n = sorted[i];
    if (!n.name || n.name.length === 0) bad('tree node with an empty name');
    if (i > 0 && Buffer.compare(n.name, sorted[i - 1].name) === 0) {
      bad(`duplicate name in tree: ${JSON.stringify(n.name.toString())}`);
    }
    const js = encodeNode(n);
    const need = o + js.length * 3 + 4; // UTF-8 needs at most 3 bytes per UTF-16 unit
    if (need > out.length) {
      const bigger = Buffer.allocUnsafe(Math.max(need, out.length * 2));
      out.copy(bigger, 0, 0, o);
      out = bigger;
    }
    if (i > 0) out[o++] = 0x2c; // ,
    o += out.write(js, o, 'utf8');
  }
  o += out.write(']}\n', o, 'latin1');
  const result = Buffer.from(out.subarray(0, o)); // exact-size copy; the scratch stays ours
  if (out.length <= MAX_SCRATCH) scratch = out;
  return result;
}

/** Reused output buffer for encodeTree (Node is single-threaded; no reentrancy). */
let scratch = Buffer.allocUnsafe(64 * 1024);
/** Larger scratch buffers are dropped after use so one huge directory does not pin memory. */
const MAX_SCRATCH = 4 * 1024 * 1024;

// ------------------------------------------------------------------------------------------
// Decoding
// ------------------------------------------------------------------------------------------

/** Integer fields: bigint in the lossless parser, so uint64 values survive and `1.5` is detected. */
const INT_KEYS: ReadonlySet<string> = new Set(['mode', 'uid', 'gid', 'inode', 'device_id', 'size', 'links', 'device']);

const KNOWN_KEYS: ReadonlySet<string> = new Set([
  'name', 'type', 'mode', 'mtime', 'atime', 'ctime', 'uid', 'gid', 'user', 'group', 'inode', 'device_id',
  'size', 'links', 'linktarget', 'extended_attributes', 'device', 'content', 'subtree', 'error',
]);

function corrupt(msg: string): never {
  throw new CairnError('CORRUPT', `invalid tree: ${msg}`);
}

/**
 * Thrown (as a value, never escaping this module) when JSON.parse may have rounded an integer:
 * decodeTree then re-parses the blob with the lossless parser.
 */
const LOSSY = Symbol('lossy integer');

/** uint32 fields. JSON.parse gives numbers, the lossless parser bigints; accept both. */
function decU32(v: JsonValue, key: string): number {
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
  } else if (typeof v === 'bigint') {
    if (v >= 0n && v <= 0xffffffffn) return Number(v);
  }
  return corrupt(`${key} is not a uint32: ${String(v)}`);
}

/** uint64 fields kept as number (size, links): must be a safe integer. */
function decSafe(v: JsonValue, key: string): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    if (Number.isInteger(v) && v > 0) throw LOSSY;
  } else if (typeof v === 'bigint') {
    if (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  }
  return corrupt(`${key} is not an unsigned integer below 2^53: ${String(v)}`);
}

/** uint64 fields kept as bigint (inode, device_id, device). */
function decU64(v: JsonValue, key: string): bigint {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    if (Number.isInteger(v) && v > 0) throw LOSSY;
  } else if (typeof v === 'bigint') {
    if (v >= 0n && v <= U64_MAX) return v;
  }
  return corrupt(`${key} is not a uint64: ${String(v)}`);
}

function decString(v: JsonValue, key: string): string {
  if (typeof v !== 'string') corrupt(`${key} is not a string`);
  return v;
}

/** Last times that passed the check: nodes of one directory mostly share mtime/ctime text. */
let okTime1 = '';
let okTime2 = '';

function decTime(v: JsonValue, key: string): string {
  if (v === okTime1 || v === okTime2) return v as string;
  if (typeof v !== 'string' || !TIME_SHAPE.test(v)) corrupt(`${key} is not an RFC 3339 time: ${String(v)}`);
  okTime2 = okTime1;
  okTime1 = v;
  return v;
}

/** Cheap shape check for times (full validation would cost more than parsing the tree). */
const TIME_SHAPE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/;

function decId(v: JsonValue, key: string): Id {
  if (typeof v !== 'string') corrupt(`${key} is not an ID`);
  if (isLowerHexId(v)) return v;
  // Go's hex decoder also takes upper case; we normalise to restic's lower-case form
  if (ID_RE_ANY_CASE.test(v)) return v.toLowerCase();
  return corrupt(`${key} is not an ID: ${JSON.stringify(v)}`);
}

function decodeNode(o: JsonValue): TreeNode {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) corrupt('node is not an object');
  const node: TreeNode = {
    name: EMPTY_NAME,
    type: '',
    mode: 0,
    mtime: GO_ZERO_TIME,
    atime: GO_ZERO_TIME,
    ctime: GO_ZERO_TIME,
    uid: 0,
    gid: 0,
    content: null,
  };
  for (const rawKey in o) {
    const v = o[rawKey];
    if (v === null && rawKey !== 'content' && rawKey !== 'subtree') continue; // Go: null leaves the zero value
    // Go matches JSON keys to struct fields case-insensitively if there is no exact match.
    const key = KNOWN_KEYS.has(rawKey) ? rawKey : rawKey.toLowerCase();
    switch (key) {
      case 'name':
        node.name = goUnquote(decString(v, 'name'));
        break;
      case 'type':
        node.type = decString(v, 'type');
        break;
      case 'mode':
        node.mode = decU32(v, 'mode');
        break;
      case 'mtime':
        node.mtime = decTime(v, 'mtime');
        break;
      case 'atime':
        node.atime = decTime(v, 'atime');
        break;
      case 'ctime':
        node.ctime = decTime(v, 'ctime');
        break;
      case 'uid':
        node.uid = decU32(v, 'uid');
        break;
      case 'gid':
        node.gid = decU32(v, 'gid');
        break;
      case 'user':
        setOpt(node, 'user', decString(v, 'user'));
        break;
      case 'group':
        setOpt(node, 'group', decString(v, 'group'));
        break;
      case 'inode':
        setOpt(node, 'inode', decU64(v, 'inode'));
        break;
      case 'device_id':
        setOpt(node, 'deviceId', decU64(v, 'device_id'));
        break;
      case 'size':
        setOpt(node, 'size', decSafe(v, 'size'));
        break;
      case 'links':
        setOpt(node, 'links', decSafe(v, 'links'));
        break;
      case 'linktarget':
        setOpt(node, 'linktarget', decString(v, 'linktarget'));
        break;
      case 'extended_attributes':
        setOpt(node, 'extendedAttributes', decXattrs(v));
        break;
      case 'device':
        setOpt(node, 'device', decU64(v, 'device'));
        break;
      case 'content':
        if (v === null) {
          node.content = null;
        } else {
          if (!Array.isArray(v)) corrupt('content is not a list');
          const ids: string[] = new Array(v.length);
          for (let i = 0; i < v.length; i++) ids[i] = decId(v[i], 'content ID');
          node.content = ids;
        }
        break;
      case 'subtree':
        if (v === null) delete node.subtree;
        else node.subtree = decId(v, 'subtree');
        break;
      case 'error':
        setOpt(node, 'error', decString(v, 'error'));
        break;
      default:
        break; // unknown keys (e.g. linktarget_raw of newer restic) are ignored, as restic does
    }
  }
  return node;
}

const EMPTY_NAME = Buffer.alloc(0);

/** Sets an optional field only when it has a non-zero value, so decode(encode(x)) stays tidy. */
type OptionalKey = 'user' | 'group' | 'inode' | 'deviceId' | 'size' | 'links' | 'linktarget' | 'extendedAttributes' | 'device' | 'error';

function setOpt<K extends OptionalKey>(node: TreeNode, key: K, v: TreeNode[K]): void {
  if (v === '' || v === 0 || v === 0n || (Array.isArray(v) && v.length === 0)) delete node[key];
  else node[key] = v;
}

function decXattrs(v: JsonValue): ExtendedAttribute[] {
  if (!Array.isArray(v)) corrupt('extended_attributes is not a list');
  const out: ExtendedAttribute[] = [];
  for (const a of v) {
    if (a === null || typeof a !== 'object' || Array.isArray(a)) corrupt('extended attribute is not an object');
    let name = '';
    let value: Buffer | null = null;
    for (const rawKey in a) {
      const key = rawKey === 'name' || rawKey === 'value' ? rawKey : rawKey.toLowerCase();
      const x = a[rawKey];
      if (key === 'name') {
        if (x !== null) name = decString(x, 'extended attribute name');
      } else if (key === 'value') {
        if (x === null) {
          value = null;
        } else {
          // Go's []byte decoding is strict standard base64 with padding
          if (typeof x !== 'string' || !BASE64_RE.test(x)) corrupt('extended attribute value is not base64');
          value = Buffer.from(x, 'base64');
        }
      }
    }
    out.push({ name, value });
  }
  return out;
}

/**
 * Escapes whose meaning JSON.parse does not preserve for us: `\ufffd` (Go's marker for an
 * invalid byte, kept as INVALID_UTF8_MARK) and surrogate escapes (Go decodes lone ones to
 * U+FFFD). Trees containing them take the lossless parser.
 */
const SPECIAL_ESCAPE = /\\u(?:[dD][89a-fA-F]|[fF][fF][fF][dD])/;

function decodeDoc(doc: JsonValue): TreeNode[] {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) corrupt('not a JSON object');
  let nodes: JsonValue = null;
  for (const k in doc) if (k === 'nodes' || k.toLowerCase() === 'nodes') nodes = doc[k];
  if (nodes === null) return [];
  if (!Array.isArray(nodes)) corrupt('nodes is not a list');
  const out: TreeNode[] = new Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) out[i] = decodeNode(nodes[i]);
  return out;
}

/**
 * Parses a tree blob. Tolerant like restic: unknown keys are ignored, order and uniqueness of
 * names are not enforced (check reports those). Names are Go-unquoted to raw bytes. Throws
 * CORRUPT for malformed JSON or values of the wrong type.
 *
 * Speed: the native JSON.parse is about twice as fast as our lossless parser, and restic's
 * trees almost never hold integers ≥ 2^53 or special escapes. So we try JSON.parse first and
 * fall back to the lossless parser when an integer field might have been rounded (or the text
 * has escapes JSON.parse would blur). One leniency results: integer fields written as `1.0` or
 * `1e3` are accepted (Go rejects them; no JSON encoder restic uses writes them).
 */
export function decodeTree(buf: Uint8Array): TreeNode[] {
  const text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8');
  if (text.indexOf('\\u') < 0 || !SPECIAL_ESCAPE.test(text)) {
    let doc: JsonValue | undefined;
    try {
      doc = JSON.parse(text) as JsonValue;
    } catch {
      doc = undefined; // let the lossless parser produce a precise CORRUPT error
    }
    if (doc !== undefined) {
      try {
        return decodeDoc(doc);
      } catch (e) {
        if (e !== LOSSY) throw e;
      }
    }
  }
  try {
    return decodeDoc(parseJson(text, { bigintKeys: INT_KEYS, what: 'tree' }));
  } catch (e) {
    if (e === LOSSY) corrupt('integer out of range');
    throw e;
  }
}
