/**
 * JSON the way Go 1.19's encoding/json writes it, and a lossless parser.
 *
 * Why our own encoder: restic's tree IDs are SHA-256 of the exact JSON bytes, and Go escapes
 * differently from JSON.stringify (HTML-safe `< > &`, U+2028/2029, lower-case `\u00XX`, no
 * `\b`/`\f`, invalid UTF-8 as the literal escape `\ufffd`). See spec §7.6.
 *
 * Why our own parser: tree nodes carry uint64 values (inode, device_id, ...) that JSON.parse
 * silently rounds above 2^53, which would break re-serialization (tree IDs) and hard-link
 * detection.
 *
 * Invalid UTF-8 convention: JS strings cannot hold invalid UTF-8, so this module uses lone
 * UTF-16 surrogates as the in-memory stand-in for "an invalid byte was here".
 *   - The encoder writes every lone surrogate as the escape `\ufffd` — exactly what Go writes
 *     for each invalid byte, so a string from {@link goStringFromBytes} encodes like Go would
 *     encode the raw bytes.
 *   - The parser turns the escape `\ufffd` (which Go only emits for invalid bytes; it writes a
 *     real U+FFFD raw) into {@link INVALID_UTF8_MARK}, so decode → encode reproduces restic's
 *     bytes exactly. `Buffer.from(s)` turns the mark into EF BF BD (U+FFFD), which is what Go's
 *     decoder yields, so writing such a string to disk behaves like restic.
 */
import { isUtf8 } from 'node:buffer';
import { CairnError } from '../core/errors.js';

/** Lone surrogate produced by the parser for a `\ufffd` escape (see the module comment). */
export const INVALID_UTF8_MARK = '\udcfd';

const HEX = '0123456789abcdef';

// Characters that force the slow path: controls, `"`, `\`, HTML-unsafe `< > &`, U+2028/2029
// and surrogates (pairs are fine, lone ones are not; the slow path tells them apart).
const NEEDS_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff]/;

/** `\u00XX` escapes for the ASCII range, precomputed; null = copy the character as is. */
const ASCII_ESCAPES: (string | null)[] = (() => {
  const t: (string | null)[] = new Array(128).fill(null);
  for (let c = 0; c < 0x20; c++) t[c] = '\\u00' + HEX[c >> 4] + HEX[c & 15];
  t[0x0a] = '\\n';
  t[0x0d] = '\\r';
  t[0x09] = '\\t';
  t[0x22] = '\\"';
  t[0x5c] = '\\\\';
  t[0x3c] = '\\u003c';
  t[0x3e] = '\\u003e';
  t[0x26] = '\\u0026';
  return t;
})();

/**
 * Go-JSON-encodes a string, including the surrounding quotes. Lone surrogates stand for
 * invalid UTF-8 bytes and become `\ufffd` (one per surrogate, as Go does per invalid byte).
 */
export function goJsonQuote(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return '"' + s + '"';
  let out = '"';
  let start = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let rep: string | null = null;
    if (c < 0x80) {
      rep = ASCII_ESCAPES[c];
    } else if (c === 0x2028) {
      rep = '\\u2028';
    } else if (c === 0x2029) {
      rep = '\\u2029';
    } else if (c >= 0xd800 && c <= 0xdfff) {
      if (c <= 0xdbff && i + 1 < n) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          i++; // a valid pair is copied verbatim
          continue;
        }
      }
      rep = '\\ufffd';
    }
    if (rep !== null) {
      if (start < i) out += s.slice(start, i);
      out += rep;
      start = i + 1;
    }
  }
  if (start < n) out += s.slice(start);
  return out + '"';
}

/**
 * Decodes bytes as Go does when it ranges over a string: valid UTF-8 sequences become
 * characters, each byte that does not start a valid sequence becomes one lone surrogate
 * U+DC00+byte ("surrogateescape"), so the result Go-JSON-encodes exactly like Go encodes the
 * raw bytes. WHATWG decoding (Buffer#toString) differs: it may merge a truncated sequence into
 * a single U+FFFD.
 */
export function goStringFromBytes(b: Uint8Array): string {
  if (isUtf8(b)) return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  const parts: string[] = [];
  let start = 0;
  let i = 0;
  const n = b.length;
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  while (i < n) {
    const w = utf8SeqLen(b, i);
    if (w > 0) {
      i += w;
      continue;
    }
    if (start < i) parts.push(buf.toString('utf8', start, i));
    parts.push(String.fromCharCode(0xdc00 | b[i]));
    i++;
    start = i;
  }
  if (start < n) parts.push(buf.toString('utf8', start, n));
  return parts.join('');
}

/**
 * Length of the valid UTF-8 sequence starting at b[i], or 0 if b[i] does not start one
 * (Go's utf8.DecodeRune returning RuneError with width 1).
 */
export function utf8SeqLen(b: Uint8Array, i: number): number {
  const c = b[i];
  const n = b.length;
  if (c < 0x80) return 1;
  if (c < 0xc2) return 0;
  if (c < 0xe0) return i + 1 < n && (b[i + 1] & 0xc0) === 0x80 ? 2 : 0;
  if (c < 0xf0) {
    if (i + 2 >= n) return 0;
    const c1 = b[i + 1];
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    if (c1 < lo || c1 > hi || (b[i + 2] & 0xc0) !== 0x80) return 0;
    return 3;
  }
  if (c < 0xf5) {
    if (i + 3 >= n) return 0;
    const c1 = b[i + 1];
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    if (c1 < lo || c1 > hi || (b[i + 2] & 0xc0) !== 0x80 || (b[i + 3] & 0xc0) !== 0x80) return 0;
    return 4;
  }
  return 0;
}

/** Go-JSON-encodes raw bytes as a string (Go `string` semantics: invalid bytes → `\ufffd`). */
export function goJsonQuoteBytes(b: Uint8Array): string {
  return goJsonQuote(goStringFromBytes(b));
}

/**
 * Encodes a plain JS value like Go's json.Marshal would encode the equivalent Go value:
 * objects keep insertion order (Go structs keep field order), strings are HTML-escaped,
 * bigints are written exactly, numbers use the shortest round-trip form (JS and Go agree on
 * it, including the switch to exponent notation below 1e-6 and from 1e21). Used to write back
 * unknown keys that we preserved from newer restic versions.
 */
export function encodeGoJsonValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string':
      return goJsonQuote(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return v.toString();
    case 'number':
      if (!Number.isFinite(v)) throw new CairnError('INVALID_ARGUMENT', `cannot encode ${v} as JSON`);
      return Object.is(v, -0) ? '-0' : String(v);
    case 'object': {
      if (Array.isArray(v)) return '[' + v.map(encodeGoJsonValue).join(',') + ']';
      if (v instanceof Uint8Array) {
        // Go encodes []byte as standard base64
        return '"' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') + '"';
      }
      const parts: string[] = [];
      for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
        if (val === undefined) continue;
        parts.push(goJsonQuote(k) + ':' + encodeGoJsonValue(val));
      }
      return '{' + parts.join(',') + '}';
    }
    default:
      throw new CairnError('INVALID_ARGUMENT', `cannot encode a ${typeof v} as JSON`);
  }
}

// ------------------------------------------------------------------------------------------
// Lossless parser
// ------------------------------------------------------------------------------------------

export interface ParseJsonOptions {
  /**
   * Keys whose integer values are always returned as bigint (at any depth). Lets callers
   * demand exact uint64 handling and tell integer literals (bigint) from non-integer ones
   * (number), as Go's decoder does when it stores into an integer field.
   */
  bigintKeys?: ReadonlySet<string>;
  /** Name of the object for error messages ("tree", "snapshot", ...). */
  what?: string;
}

export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [k: string]: JsonValue };

/** Go's decoder refuses nesting deeper than 10000; we stop earlier to stay off the JS stack limit. */
const MAX_DEPTH = 1000;

/**
 * Parses JSON text without losing integer precision: integers that are not safe JS integers
 * become bigint (as do all integers under `bigintKeys`), other numbers are JS numbers.
 * Malformed input throws CairnError CORRUPT. Duplicate keys: the last one wins (as in Go).
 */
export function parseJson(input: string | Uint8Array, options: ParseJsonOptions = {}): JsonValue {
  const text =
    typeof input === 'string' ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  const p = new Parser(text, options.bigintKeys, options.what ?? 'JSON');
  p.skipWs();
  const v = p.value(null, 0);
  p.skipWs();
  if (p.pos !== text.length) p.fail('unexpected data after the top-level value');
  return v;
}

class Parser {
  pos = 0;
  constructor(
    readonly s: string,
    readonly bigintKeys: ReadonlySet<string> | undefined,
    readonly what: string,
  ) {}

  fail(msg: string): never {
    throw new CairnError('CORRUPT', `invalid ${this.what}: ${msg} at offset ${this.pos}`);
  }

  skipWs(): void {
    const s = this.s;
    let i = this.pos;
    for (;;) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.pos = i;
  }

  value(key: string | null, depth: number): JsonValue {
    const c = this.s.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(key, depth + 1);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number(key);
        return this.fail(Number.isNaN(c) ? 'unexpected end of input' : 'unexpected character');
    }
  }

  literal<T>(word: string, v: T): T {
    if (!this.s.startsWith(word, this.pos)) this.fail('invalid literal');
    this.pos += word.length;
    return v;
  }

  object(depth: number): { [k: string]: JsonValue } {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const s = this.s;
    const obj: { [k: string]: JsonValue } = {};
    this.pos++; // {
    this.skipWs();
    if (s.charCodeAt(this.pos) === 0x7d) {
      this.pos++;
      return obj;
    }
    for (;;) {
      if (s.charCodeAt(this.pos) !== 0x22) this.fail('expected a string key');
      const k = this.string();
      this.skipWs();
      if (s.charCodeAt(this.pos) !== 0x3a) this.fail("expected ':'");
      this.pos++;
      this.skipWs();
      const v = this.value(k, depth);
      if (k === '__proto__') {
        // never let input touch the prototype chain
        Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
      } else {
        obj[k] = v;
      }
      this.skipWs();
      const c = s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWs();
      } else if (c === 0x7d) {
        this.pos++;
        return obj;
      } else {
        this.fail("expected ',' or '}'");
      }
    }
  }

  array(key: string | null, depth: number): JsonValue[] {
    if (depth > MAX_DEPTH) this.fail('nesting too deep');
    const s = this.s;
    const arr: JsonValue[] = [];
    this.pos++; // [
    this.skipWs();
    if (s.charCodeAt(this.pos) === 0x5d) {
      this.pos++;
      return arr;
    }
    for (;;) {
      // array elements inherit the key, so `"ids":[1,2]` under bigintKeys gives bigints
      arr.push(this.value(key, depth));
      this.skipWs();
      const c = s.charCodeAt(this.pos);
      if (c === 0x2c) {
        this.pos++;
        this.skipWs();
      } else if (c === 0x5d) {
        this.pos++;
        return arr;
      } else {
        this.fail("expected ',' or ']'");
      }
    }
  }

  string(): string {
    const s = this.s;
    const n = s.length;
    let i = this.pos + 1;
    let start = i;
    let out = '';
    for (;;) {
      if (i >= n) {
        this.pos = i;
        this.fail('unterminated string');
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.pos = i + 1;
        return out === '' ? s.slice(start, i) : out + s.slice(start, i);
      }
      if (c === 0x5c) {
        out += s.slice(start, i);
        i = this.escape(i);
        out += this.esc;
        start = i;
        continue;
      }
      if (c < 0x20) {
        this.pos = i;
        this.fail('control character in string');
      }
      i++;
    }
  }

  /** Result of the last escape() call. */
  private esc = '';

  /** Decodes the escape at s[i] (a backslash) into this.esc; returns the index after it. */
  escape(i: number): number {
    const s = this.s;
    const c = s.charCodeAt(i + 1);
    switch (c) {
      case 0x22:
        this.esc = '"';
        return i + 2;
      case 0x5c:
        this.esc = '\\';
        return i + 2;
      case 0x2f:
        this.esc = '/';
        return i + 2;
      case 0x62:
        this.esc = '\b';
        return i + 2;
      case 0x66:
        this.esc = '\f';
        return i + 2;
      case 0x6e:
        this.esc = '\n';
        return i + 2;
      case 0x72:
        this.esc = '\r';
        return i + 2;
      case 0x74:
        this.esc = '\t';
        return i + 2;
      case 0x75: {
        const u = this.hex4(i + 2);
        if (u === 0xfffd) {
          this.esc = INVALID_UTF8_MARK;
          return i + 6;
        }
        if (u >= 0xd800 && u <= 0xdbff) {
          // a surrogate pair is two escapes; a lone surrogate escape decodes to U+FFFD in Go
          if (s.charCodeAt(i + 6) === 0x5c && s.charCodeAt(i + 7) === 0x75) {
            const lo = this.hex4(i + 8);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              this.esc = String.fromCharCode(u, lo);
              return i + 12;
            }
          }
          this.esc = '\ufffd';
          return i + 6;
        }
        if (u >= 0xdc00 && u <= 0xdfff) {
          this.esc = '\ufffd';
          return i + 6;
        }
        this.esc = String.fromCharCode(u);
        return i + 6;
      }
      default:
        this.pos = i;
        return this.fail('invalid escape in string');
    }
  }

  hex4(i: number): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.s.charCodeAt(i + k);
      let d: number;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
      else {
        this.pos = i + k;
        return this.fail('invalid \\u escape');
      }
      v = (v << 4) | d;
    }
    return v;
  }

  number(key: string | null): number | bigint {
    const s = this.s;
    const start = this.pos;
    let i = start;
    if (s.charCodeAt(i) === 0x2d) i++;
    let c = s.charCodeAt(i);
    if (c === 0x30) {
      i++;
    } else if (c >= 0x31 && c <= 0x39) {
      do i++;
      while ((c = s.charCodeAt(i)) >= 0x30 && c <= 0x39);
    } else {
      this.pos = i;
      this.fail('invalid number');
    }
    let integer = true;
    c = s.charCodeAt(i);
    if (c === 0x2e) {
      integer = false;
      i++;
      c = s.charCodeAt(i);
      if (!(c >= 0x30 && c <= 0x39)) {
        this.pos = i;
        this.fail('invalid number');
      }
      while ((c = s.charCodeAt(i)) >= 0x30 && c <= 0x39) i++;
    }
    if (c === 0x65 || c === 0x45) {
      integer = false;
      i++;
      c = s.charCodeAt(i);
      if (c === 0x2b || c === 0x2d) i++;
      c = s.charCodeAt(i);
      if (!(c >= 0x30 && c <= 0x39)) {
        this.pos = i;
        this.fail('invalid number');
      }
      while ((c = s.charCodeAt(i)) >= 0x30 && c <= 0x39) i++;
    }
    this.pos = i;
    const lit = s.slice(start, i);
    if (!integer) return Number(lit);
    if (key !== null && this.bigintKeys !== undefined && this.bigintKeys.has(key)) return BigInt(lit);
    // up to 15 digits is always a safe integer; longer ones are checked exactly
    if (i - start <= 15) return Number(lit);
    const big = BigInt(lit);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }
}
