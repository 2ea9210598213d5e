/**
 * The three patch formats the apiserver applies itself:
 *  - JSON merge patch (RFC 7386), as evanphx/json-patch's MergePatch does it;
 *  - JSON patch (RFC 6902) with the semantics of gopkg.in/evanphx/json-patch.v4, which the
 *    apiserver uses (including its quirks: `replace` of a missing object member adds it, a `test`
 *    of a missing member against null passes, negative array indices count from the end);
 *  - strategic merge patch for built-in kinds, driven by a small per-kind table of list merge keys.
 *
 * Failures throw PatchError; the server maps them onto the status codes kube-apiserver uses.
 */
import { clone, deepEqual, isPlainObject } from './util.js';

export class PatchError extends Error {
  /** 'decode': the patch itself is malformed (400); 'apply': it does not apply to the object (422). */
  constructor(
    readonly kind: 'decode' | 'apply',
    message: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// RFC 7386

function pruneNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (x === null ? null : pruneNulls(x)));
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = pruneNulls(x);
    return out;
  }
  return v;
}

function mergeDocs(doc: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) {
      delete doc[k];
      continue;
    }
    const cur = doc[k];
    if (isPlainObject(cur) && isPlainObject(v)) mergeDocs(cur, v);
    else doc[k] = pruneNulls(clone(v));
  }
}

/** Applies a JSON merge patch to a copy of `doc`. */
export function applyMergePatch(doc: Record<string, unknown>, patch: unknown): Record<string, unknown> {
  if (!isPlainObject(patch)) throw new PatchError('decode', 'Invalid JSON Patch');
  const out = clone(doc);
  mergeDocs(out, patch);
  return out;
}

// ---------------------------------------------------------------------------------------------
// RFC 6902

type Container = Record<string, unknown> | unknown[];

function decodeKey(k: string): string {
  return k.replace(/~1/g, '/').replace(/~0/g, '~');
}

const ERR_MISSING = 'missing value';
const ERR_INDEX = 'invalid index referenced';
const ERR_TEST = 'test failed';

function atoi(key: string): number {
  if (!/^[+-]?[0-9]+$/.test(key)) throw new PatchError('apply', `strconv.Atoi: parsing ${JSON.stringify(key)}: invalid syntax`);
  return Number(key);
}

function arrIndex(arr: unknown[], key: string, size: number): number {
  let idx = atoi(key);
  if (idx < 0) {
    if (idx < -size) throw new PatchError('apply', `Unable to access invalid index: ${idx}: ${ERR_INDEX}`);
    idx += size;
  }
  return idx;
}

/** Container get: objects never fail (a missing member reads as undefined), arrays check bounds. */
function cGet(c: Container, key: string): unknown {
  if (Array.isArray(c)) {
    const idx = arrIndex(c, key, c.length);
    if (idx >= c.length) throw new PatchError('apply', `Unable to access invalid index: ${idx}: ${ERR_INDEX}`);
    return c[idx];
  }
  return Object.prototype.hasOwnProperty.call(c, key) ? c[key] : undefined;
}

function cAdd(c: Container, key: string, val: unknown): void {
  if (Array.isArray(c)) {
    if (key === '-') {
      c.push(val);
      return;
    }
    let idx: number;
    try {
      idx = atoi(key);
    } catch (e) {
      throw new PatchError('apply', `value was not a proper array index: '${key}': ${(e as Error).message}`);
    }
    const size = c.length + 1;
    if (idx >= size) throw new PatchError('apply', `Unable to access invalid index: ${idx}: ${ERR_INDEX}`);
    if (idx < 0) {
      if (idx < -size) throw new PatchError('apply', `Unable to access invalid index: ${idx}: ${ERR_INDEX}`);
      idx += size;
    }
    c.splice(idx, 0, val);
    return;
  }
  c[key] = val;
}

function cSet(c: Container, key: string, val: unknown): void {
  if (Array.isArray(c)) {
    const idx = arrIndex(c, key, c.length);
    c[idx] = val;
    return;
  }
  c[key] = val;
}

function cRemove(c: Container, key: string): void {
  if (Array.isArray(c)) {
    let idx = atoi(key);
    if (idx >= c.length) throw new PatchError('apply', `Unable to access invalid index: ${idx}: ${ERR_INDEX}`);
    if (idx < 0) {
      if (idx < -c.length) throw new PatchError('apply', `Unable to access invalid index: ${idx}: ${ERR_INDEX}`);
      idx += c.length;
    }
    c.splice(idx, 1);
    return;
  }
  if (!Object.prototype.hasOwnProperty.call(c, key))
    throw new PatchError('apply', `Unable to remove nonexistent key: ${key}: ${ERR_MISSING}`);
  delete c[key];
}

/** findObject: walks to the parent container of `path`; null when any step is missing. */
function findParent(doc: Container, path: string): { c: Container; key: string } | null {
  const split = path.split('/');
  if (split.length < 2) return null;
  let cur: Container = doc;
  for (const raw of split.slice(1, -1)) {
    let next: unknown;
    try {
      next = cGet(cur, decodeKey(raw));
    } catch {
      return null;
    }
    if (next === undefined || next === null) return null;
    if (Array.isArray(next) || isPlainObject(next)) cur = next as Container;
    else return null;
  }
  return { c: cur, key: decodeKey(split[split.length - 1]) };
}

interface Op {
  op?: unknown;
  path?: unknown;
  from?: unknown;
  value?: unknown;
}

function opPath(o: Op, field: 'path' | 'from', what: string): string {
  const p = o[field];
  if (p === undefined || p === null) throw new PatchError('apply', `${what}: operation missing ${field} field: ${ERR_MISSING}`);
  if (typeof p !== 'string') throw new PatchError('apply', `${what}: json: cannot unmarshal into Go value of type string`);
  return p;
}

/** jsonpatch.DecodePatch: the body must be an array of objects. */
export function decodeJsonPatch(body: unknown): Op[] {
  if (!Array.isArray(body)) {
    const t = body === null ? 'null' : Array.isArray(body) ? 'array' : typeof body === 'object' ? 'object' : typeof body;
    throw new PatchError('decode', `json: cannot unmarshal ${t} into Go value of type jsonpatch.Patch`);
  }
  for (const o of body)
    if (!isPlainObject(o) && o !== null)
      throw new PatchError('decode', `json: cannot unmarshal ${typeof o} into Go value of type jsonpatch.Operation`);
  return body.map((o) => (o ?? {}) as Op);
}

function valueOf(o: Op): unknown {
  return Object.prototype.hasOwnProperty.call(o, 'value') ? clone(o.value) : null;
}

/** Applies a decoded JSON patch to a copy of `doc`. */
export function applyJsonPatch(doc: Record<string, unknown>, ops: Op[]): Record<string, unknown> {
  let root: Container = clone(doc);
  for (const o of ops) {
    const kind = typeof o.op === 'string' ? o.op : 'unknown';
    switch (kind) {
      case 'add': {
        const path = opPath(o, 'path', 'add operation failed to decode path');
        const f = findParent(root, path);
        if (!f) throw new PatchError('apply', `add operation does not apply: doc is missing path: "${path}": ${ERR_MISSING}`);
        try {
          cAdd(f.c, f.key, valueOf(o));
        } catch (e) {
          throw new PatchError('apply', `error in add for path: '${path}': ${(e as Error).message}`);
        }
        break;
      }
      case 'remove': {
        const path = opPath(o, 'path', 'remove operation failed to decode path');
        const f = findParent(root, path);
        if (!f) throw new PatchError('apply', `remove operation does not apply: doc is missing path: "${path}": ${ERR_MISSING}`);
        try {
          cRemove(f.c, f.key);
        } catch (e) {
          throw new PatchError('apply', `error in remove for path: '${path}': ${(e as Error).message}`);
        }
        break;
      }
      case 'replace': {
        const path = opPath(o, 'path', 'replace operation failed to decode path');
        if (path === '') {
          const v = valueOf(o);
          if (!isPlainObject(v) && !Array.isArray(v))
            throw new PatchError('apply', 'replace operation value must be object or array');
          root = v as Container;
          break;
        }
        const f = findParent(root, path);
        if (!f) throw new PatchError('apply', `replace operation does not apply: doc is missing path: ${path}: ${ERR_MISSING}`);
        try {
          cGet(f.c, f.key);
        } catch {
          throw new PatchError('apply', `replace operation does not apply: doc is missing key: ${path}: ${ERR_MISSING}`);
        }
        cSet(f.c, f.key, valueOf(o));
        break;
      }
      case 'move': {
        const from = opPath(o, 'from', 'move operation failed to decode from');
        const ff = findParent(root, from);
        if (!ff) throw new PatchError('apply', `move operation does not apply: doc is missing from path: ${from}: ${ERR_MISSING}`);
        let val: unknown;
        try {
          val = cGet(ff.c, ff.key);
          cRemove(ff.c, ff.key);
        } catch (e) {
          throw new PatchError('apply', `error in move for path: '${ff.key}': ${(e as Error).message}`);
        }
        const path = opPath(o, 'path', 'move operation failed to decode path');
        const f = findParent(root, path);
        if (!f)
          throw new PatchError('apply', `move operation does not apply: doc is missing destination path: ${path}: ${ERR_MISSING}`);
        try {
          cAdd(f.c, f.key, val === undefined ? null : val);
        } catch (e) {
          throw new PatchError('apply', `error in move for path: '${path}': ${(e as Error).message}`);
        }
        break;
      }
      case 'copy': {
        const from = opPath(o, 'from', 'copy operation failed to decode from');
        const ff = findParent(root, from);
        if (!ff) throw new PatchError('apply', `copy operation does not apply: doc is missing from path: ${from}: ${ERR_MISSING}`);
        let val: unknown;
        try {
          val = cGet(ff.c, ff.key);
        } catch (e) {
          throw new PatchError('apply', `error in copy for from: '${from}': ${(e as Error).message}`);
        }
        const path = opPath(o, 'path', 'copy operation failed to decode path');
        const f = findParent(root, path);
        if (!f)
          throw new PatchError('apply', `copy operation does not apply: doc is missing destination path: ${path}: ${ERR_MISSING}`);
        try {
          cAdd(f.c, f.key, val === undefined ? null : clone(val));
        } catch (e) {
          throw new PatchError('apply', `error while adding value during copy: ${(e as Error).message}`);
        }
        break;
      }
      case 'test': {
        const path = opPath(o, 'path', 'test operation failed to decode path');
        const expected = Object.prototype.hasOwnProperty.call(o, 'value') ? o.value : undefined;
        if (path === '') {
          if (!deepEqual(root, expected)) throw new PatchError('apply', `testing value ${path} failed: ${ERR_TEST}`);
          break;
        }
        const f = findParent(root, path);
        if (!f) throw new PatchError('apply', `test operation does not apply: is missing path: ${path}: ${ERR_MISSING}`);
        let actual: unknown;
        try {
          actual = cGet(f.c, f.key);
        } catch (e) {
          throw new PatchError('apply', `error in test for path: '${path}': ${(e as Error).message}`);
        }
        // evanphx treats a missing member and a JSON null alike, for both sides of the comparison.
        const a = actual === undefined ? null : actual;
        const b = expected === undefined ? null : expected;
        if (a === null || b === null) {
          if (a === null && b === null) break;
          throw new PatchError('apply', `testing value ${path} failed: ${ERR_TEST}`);
        }
        if (!deepEqual(a, b)) throw new PatchError('apply', `testing value ${path} failed: ${ERR_TEST}`);
        break;
      }
      default:
        throw new PatchError('apply', `Unexpected kind: ${kind}`);
    }
  }
  if (!isPlainObject(root)) throw new PatchError('apply', 'the patched document is not an object');
  return root;
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch (built-in kinds only)

export interface SmpField {
  /** List of objects merged by this key (patchStrategy:"merge", patchMergeKey). */
  mergeKey?: string;
  /** List of scalars merged as a set (patchStrategy:"merge" on e.g. finalizers). */
  primitiveMerge?: boolean;
  /** Children of an object, or of the elements of a merge-key list. */
  fields?: SmpSchema;
}
export type SmpSchema = Record<string, SmpField>;

const DIRECTIVE = '$patch';
const RETAIN_KEYS = '$retainKeys';
const DELETE_FROM_PRIMITIVE = '$deleteFromPrimitiveList/';
const SET_ELEMENT_ORDER = '$setElementOrder/';

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((x) => !(isPlainObject(x) && x[DIRECTIVE] !== undefined && Object.keys(x).length === 1)).map(stripDirectives);
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === DIRECTIVE || k === RETAIN_KEYS || k.startsWith(DELETE_FROM_PRIMITIVE) || k.startsWith(SET_ELEMENT_ORDER)) continue;
      if (x === null) continue;
      out[k] = stripDirectives(x);
    }
    return out;
  }
  return v;
}

function orderBy(list: unknown[], order: unknown[], mergeKey?: string): unknown[] {
  const keyOf = (x: unknown): unknown => (mergeKey && isPlainObject(x) ? x[mergeKey] : x);
  const wanted = order.map((o) => (mergeKey && isPlainObject(o) ? o[mergeKey] : o));
  const head: unknown[] = [];
  const rest = [...list];
  for (const w of wanted) {
    const i = rest.findIndex((x) => deepEqual(keyOf(x), w));
    if (i >= 0) head.push(rest.splice(i, 1)[0]);
  }
  return [...head, ...rest];
}

function mergeList(orig: unknown[], patch: unknown[], f: SmpField): unknown[] {
  if (f.primitiveMerge) {
    const out = [...orig];
    for (const p of patch) if (!out.some((x) => deepEqual(x, p))) out.push(clone(p));
    return out;
  }
  if (!f.mergeKey) return stripDirectives(patch) as unknown[];
  const key = f.mergeKey;
  if (patch.some((p) => isPlainObject(p) && p[DIRECTIVE] === 'replace')) return stripDirectives(patch) as unknown[];
  const out = orig.map((x) => clone(x));
  for (const p of patch) {
    if (!isPlainObject(p)) {
      out.push(clone(p));
      continue;
    }
    const kv = p[key];
    const idx = out.findIndex((x) => isPlainObject(x) && deepEqual(x[key], kv));
    if (p[DIRECTIVE] === 'delete') {
      if (idx >= 0) {
        for (let i = out.length - 1; i >= 0; i--) {
          const x = out[i];
          if (isPlainObject(x) && deepEqual(x[key], kv)) out.splice(i, 1);
        }
      }
      continue;
    }
    if (idx >= 0) out[idx] = mergeMap(out[idx] as Record<string, unknown>, p, f.fields ?? {});
    else out.push(stripDirectives(p));
  }
  return out;
}

/** Returns the merged map; `undefined` when the patch deletes it. */
function mergeMap(orig: Record<string, unknown>, patch: Record<string, unknown>, schema: SmpSchema): Record<string, unknown> {
  const directive = patch[DIRECTIVE];
  if (directive === 'replace') return stripDirectives(patch) as Record<string, unknown>;
  if (directive !== undefined && directive !== 'merge' && directive !== 'delete')
    throw new PatchError('decode', `Unknown patch type: ${String(directive)}`);
  const out = clone(orig);
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith(DELETE_FROM_PRIMITIVE)) {
      const field = k.slice(DELETE_FROM_PRIMITIVE.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => deepEqual(d, x)));
    }
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k === DIRECTIVE || k === RETAIN_KEYS || k.startsWith(DELETE_FROM_PRIMITIVE) || k.startsWith(SET_ELEMENT_ORDER)) continue;
    if (v === null) {
      delete out[k];
      continue;
    }
    const f = schema[k] ?? {};
    const cur = out[k];
    if (isPlainObject(v) && v[DIRECTIVE] === 'delete') {
      delete out[k];
      continue;
    }
    if (isPlainObject(cur) && isPlainObject(v)) out[k] = mergeMap(cur, v, f.fields ?? {});
    else if (Array.isArray(cur) && Array.isArray(v)) out[k] = mergeList(cur, v, f);
    else out[k] = stripDirectives(v);
  }
  for (const [k, v] of Object.entries(patch)) {
    if (!k.startsWith(SET_ELEMENT_ORDER) || !Array.isArray(v)) continue;
    const field = k.slice(SET_ELEMENT_ORDER.length);
    const cur = out[field];
    if (Array.isArray(cur)) out[field] = orderBy(cur, v, schema[field]?.mergeKey);
  }
  const retain = patch[RETAIN_KEYS];
  if (Array.isArray(retain)) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  return out;
}

export function applyStrategicMergePatch(
  doc: Record<string, unknown>,
  patch: unknown,
  schema: SmpSchema,
): Record<string, unknown> {
  if (!isPlainObject(patch)) throw new PatchError('decode', 'Invalid JSON Patch');
  if (patch[DIRECTIVE] === 'delete') throw new PatchError('apply', 'the patch deletes the whole object');
  return mergeMap(doc, patch, schema);
}
