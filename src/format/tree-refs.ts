/**
 * The references of a tree blob — content blobs of file nodes, subtrees of dir nodes — without
 * decoding the nodes (spec §7). For walks that only follow references (prune's used set,
 * stats raw-data): several times faster than decodeTree, which builds every field of every node.
 * Accepts what decodeTree accepts (Go's case-insensitive keys, upper-case hex IDs).
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { isLowerHexId } from './fields.js';

const ID_ANY_CASE = /^[0-9a-fA-F]{64}$/;

function corrupt(msg: string): never {
  throw new CairnError('CORRUPT', `invalid tree: ${msg}`);
}

function id(v: unknown, what: string): Id {
  if (typeof v === 'string') {
    if (isLowerHexId(v)) return v;
    if (ID_ANY_CASE.test(v)) return v.toLowerCase();
  }
  return corrupt(`${what} is not an ID: ${JSON.stringify(v)}`);
}

/** Value of `key` in o, matching keys case-insensitively when there is no exact match (Go's rule). */
function field(o: Record<string, unknown>, key: string): unknown {
  if (Object.prototype.hasOwnProperty.call(o, key)) return o[key];
  for (const k in o) if (k.toLowerCase() === key) return o[k];
  return undefined;
}

export interface TreeRefSink {
  /** A data blob of a file node's content (in order; repeated IDs are reported each time). */
  content(id: Id): void;
  /** The subtree of a dir node. */
  subtree(id: Id): void;
}

export function scanTreeRefs(buf: Uint8Array, sink: TreeRefSink): void {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8'));
  } catch (e) {
    corrupt((e as Error).message);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) corrupt('not a JSON object');
  const nodes = field(doc as Record<string, unknown>, 'nodes');
  if (nodes === null || nodes === undefined) return;
  if (!Array.isArray(nodes)) corrupt('nodes is not a list');
  for (const n of nodes) {
    if (n === null || typeof n !== 'object' || Array.isArray(n)) corrupt('node is not an object');
    const o = n as Record<string, unknown>;
    const type = field(o, 'type');
    if (type === 'file') {
      const c = field(o, 'content');
      if (c === null || c === undefined) continue;
      if (!Array.isArray(c)) corrupt('content is not a list');
      for (const x of c) sink.content(id(x, 'content ID'));
    } else if (type === 'dir') {
      const s = field(o, 'subtree');
      if (s !== null && s !== undefined) sink.subtree(id(s, 'subtree'));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fast path: a byte scanner for tree JSON that allocates nothing but the IDs it reports. Trees
// written by restic and cairn are plain UTF-8 JSON with exact lower-case keys; anything this
// scanner does not expect (escaped keys, unusual whitespace handling is fine) makes it give up,
// and the caller falls back to JSON.parse.

const NOT_SIMPLE = Symbol('not simple');

function giveUp(): never {
  throw NOT_SIMPLE;
}

const Q = 0x22; // "
const BS = 0x5c; // \

class Scanner {
  pos = 0;
  readonly buf: Buffer;
  constructor(readonly b: Uint8Array) {
    this.buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  }

  ws(): void {
    const b = this.b;
    let p = this.pos;
    while (p < b.length) {
      const c = b[p]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      p++;
    }
    this.pos = p;
  }

  expect(c: number): void {
    this.ws();
    if (this.b[this.pos] !== c) giveUp();
    this.pos++;
  }

  /** Skips a string starting at the opening quote; returns [start, end) of its raw content. */
  string(): [number, number] {
    const b = this.b;
    if (b[this.pos] !== Q) giveUp();
    const start = ++this.pos;
    let p = start;
    for (;;) {
      const q = this.buf.indexOf(Q, p);
      if (q < 0) giveUp();
      // a quote preceded by an odd number of backslashes is escaped
      let n = 0;
      while (q - 1 - n >= start && b[q - 1 - n] === BS) n++;
      if (n % 2 === 0) {
        p = q;
        break;
      }
      p = q + 1;
    }
    this.pos = p + 1;
    return [start, p];
  }

  /** Skips any JSON value. */
  skip(): void {
    this.ws();
    const b = this.b;
    const c = b[this.pos];
    if (c === Q) {
      this.string();
      return;
    }
    if (c === 0x7b || c === 0x5b) {
      // object or array: track nesting, stepping over strings
      let depth = 0;
      let p = this.pos;
      for (;;) {
        if (p >= b.length) giveUp();
        const x = b[p]!;
        if (x === Q) {
          this.pos = p;
          this.string();
          p = this.pos;
          continue;
        }
        if (x === 0x7b || x === 0x5b) depth++;
        else if (x === 0x7d || x === 0x5d) {
          depth--;
          if (depth === 0) {
            this.pos = p + 1;
            return;
          }
        }
        p++;
      }
    }
    // number, true, false, null
    let p = this.pos;
    while (p < b.length) {
      const x = b[p]!;
      if (x === 0x2c || x === 0x7d || x === 0x5d || x === 0x20 || x === 0x0a || x === 0x0d || x === 0x09) break;
      p++;
    }
    if (p === this.pos) giveUp();
    this.pos = p;
  }

  /** True when the raw bytes [s, e) equal the ASCII text. */
  is(s: number, e: number, text: string): boolean {
    if (e - s !== text.length) return false;
    for (let i = 0; i < text.length; i++) if (this.b[s + i] !== text.charCodeAt(i)) return false;
    return true;
  }

  /** A 64-character ID string at pos (any-case hex, as decodeTree accepts). */
  id(what: string): Id {
    this.ws();
    const [s, e] = this.string();
    if (e - s !== 64) corrupt(`${what} is not an ID`);
    const t = Buffer.from(this.b.buffer, this.b.byteOffset + s, 64).toString('latin1');
    if (isLowerHexId(t)) return t;
    if (ID_ANY_CASE.test(t)) return t.toLowerCase();
    return corrupt(`${what} is not an ID: ${JSON.stringify(t)}`);
  }

  /** Keys of an object, calling onKey with the key's raw range; onKey consumes the value. */
  object(onKey: (s: number, e: number) => void): void {
    this.expect(0x7b);
    this.ws();
    if (this.b[this.pos] === 0x7d) {
      this.pos++;
      return;
    }
    for (;;) {
      this.ws();
      const [s, e] = this.string();
      for (let i = s; i < e; i++) if (this.b[i] === BS) giveUp(); // escaped keys: let JSON.parse decide
      this.expect(0x3a);
      onKey(s, e);
      this.ws();
      const c = this.b[this.pos++];
      if (c === 0x7d) return;
      if (c !== 0x2c) giveUp();
    }
  }

  isNull(): boolean {
    this.ws();
    const b = this.b;
    if (b[this.pos] === 0x6e && b[this.pos + 1] === 0x75 && b[this.pos + 2] === 0x6c && b[this.pos + 3] === 0x6c) {
      this.pos += 4;
      return true;
    }
    return false;
  }
}

/**
 * Like scanTreeRefs, usually several times faster: a byte scanner for the common case, JSON.parse
 * for anything unusual. References are reported only after the whole tree scanned cleanly, so a
 * fallback never reports a reference twice.
 */
export function scanTreeRefsFast(buf: Uint8Array, sink: TreeRefSink): void {
  const contents: Id[] = [];
  const subtrees: Id[] = [];
  try {
    const sc = new Scanner(buf);
    sc.object((s, e) => {
      if (!sc.is(s, e, 'nodes')) {
        if (sc.b.subarray(s, e).some((c) => c >= 0x41 && c <= 0x5a)) giveUp(); // case variants of "nodes"
        sc.skip();
        return;
      }
      if (sc.isNull()) return;
      sc.expect(0x5b);
      sc.ws();
      if (sc.b[sc.pos] === 0x5d) {
        sc.pos++;
        return;
      }
      for (;;) {
        let type = '';
        let content: Id[] | null = null;
        let subtree: Id | null = null;
        sc.object((ks, ke) => {
          if (sc.is(ks, ke, 'type')) {
            sc.ws();
            if (sc.b[sc.pos] !== Q) giveUp();
            const [ts, te] = sc.string();
            type = sc.is(ts, te, 'file') ? 'file' : sc.is(ts, te, 'dir') ? 'dir' : 'other';
          } else if (sc.is(ks, ke, 'content')) {
            if (sc.isNull()) return;
            content = [];
            sc.expect(0x5b);
            sc.ws();
            if (sc.b[sc.pos] === 0x5d) {
              sc.pos++;
              return;
            }
            for (;;) {
              content.push(sc.id('content ID'));
              sc.ws();
              const c = sc.b[sc.pos++];
              if (c === 0x5d) break;
              if (c !== 0x2c) giveUp();
            }
          } else if (sc.is(ks, ke, 'subtree')) {
            if (!sc.isNull()) subtree = sc.id('subtree');
          } else {
            for (let i = ks; i < ke; i++) if (sc.b[i]! >= 0x41 && sc.b[i]! <= 0x5a) giveUp(); // Go's case-insensitive keys
            sc.skip();
          }
        });
        if (type === 'file' && content) contents.push(...(content as Id[]));
        else if (type === 'dir' && subtree) subtrees.push(subtree);
        sc.ws();
        const c = sc.b[sc.pos++];
        if (c === 0x5d) break;
        if (c !== 0x2c) giveUp();
      }
    });
    sc.ws();
    if (sc.pos !== buf.length) giveUp();
  } catch (e) {
    if (e !== NOT_SIMPLE) throw e;
    scanTreeRefs(buf, sink);
    return;
  }
  for (const id of contents) sink.content(id);
  for (const id of subtrees) sink.subtree(id);
}
