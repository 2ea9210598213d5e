/**
 * restic-compatible `--exclude` / `--iexclude` / `--exclude-file` patterns (restic 0.14,
 * internal/filter and cmd/restic/exclude.go semantics; implemented independently here).
 *
 * Rules, as restic applies them to the cleaned absolute path of every entry it visits:
 *  - Empty patterns are ignored. A leading `!` negates a pattern: patterns are evaluated in order,
 *    a match of a normal pattern excludes, a later match of a negated one re-includes.
 *  - The pattern (after `!`) is cleaned like Go's filepath.Clean (duplicate and trailing slashes,
 *    `.` and resolvable `..` removed) and split at `/` into components.
 *  - Each component is a Go filepath.Match glob (`*`, `?`, `[...]`, `[^...]`, ranges, `\`
 *    escapes), matched against one path component; the component `**` matches any number (zero
 *    or more) of path components.
 *  - A pattern starting with `/` is anchored at the root; it matches the path when it matches the
 *    leading components (so it also matches everything below a matching directory).
 *  - Any other pattern matches when it matches some run of consecutive path components (so
 *    `*.tmp` matches `/a/b/x.tmp` and `foo/bar` matches `/x/foo/bar` and `/x/foo/bar/baz`).
 *  - Malformed patterns are rejected up front (restic: "invalid pattern(s) provided").
 * Paths are bytes: components are compared byte-wise; `?`, `[...]` decode one UTF-8 character,
 * an invalid byte counting as one character U+FFFD (Go semantics).
 */
import { promises as fsp } from 'node:fs';
import { CairnError, fsError } from '../core/errors.js';
import { toPathBuffer, utf8SeqLen } from './path.js';

const STAR = 0x2a; // *
const QUESTION = 0x3f; // ?
const LBRACKET = 0x5b; // [
const RBRACKET = 0x5d; // ]
const BACKSLASH = 0x5c; // \
const CARET = 0x5e; // ^
const DASH = 0x2d; // -
const SLASH = 0x2f;
const REPLACEMENT = 0xfffd;

type Part =
  | { kind: 'root' } // the leading "/" of an anchored pattern
  | { kind: 'any' } // "**"
  | { kind: 'literal'; bytes: Buffer }
  | { kind: 'glob'; bytes: Buffer };

interface CompiledPattern {
  original: string;
  negated: boolean;
  parts: Part[];
}

/** Go filepath.Clean for slash-separated paths (lexical only). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p[0] === '/';
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      // ".." at the root of a rooted path stays at the root
      continue;
    }
    out.push(c);
  }
  const body = out.join('/');
  if (rooted) return '/' + body;
  return body === '' ? '.' : body;
}

function decodeRune(b: Uint8Array, i: number): [cp: number, width: number] {
  const len = utf8SeqLen(b, i);
  if (len === 0) return [REPLACEMENT, 1];
  if (len === 1) return [b[i], 1];
  return [Buffer.from(b.buffer, b.byteOffset + i, len).toString('utf8').codePointAt(0) ?? REPLACEMENT, len];
}

/**
 * Reads one class character (possibly escaped) at pat[i] inside a `[...]`. Returns the character
 * and the index after it, or undefined when the class is malformed there.
 */
function classChar(pat: Buffer, i: number, end: number): [cp: number, next: number] | undefined {
  if (i >= end) return undefined;
  if (pat[i] === DASH || pat[i] === RBRACKET) return undefined;
  if (pat[i] === BACKSLASH) {
    i++;
    if (i >= end) return undefined;
  }
  const [cp, w] = decodeRune(pat, i);
  const next = i + w;
  if (next >= end) return undefined; // a class must be closed by "]"
  return [cp, next];
}

/**
 * Parses the class starting at pat[i] (just after "[") and tests `cp` against it (cp < 0: parse
 * only). Returns [matched, index after "]"], or undefined when malformed.
 */
function matchClass(pat: Buffer, i: number, end: number, cp: number): [boolean, number] | undefined {
  let negated = false;
  if (i < end && pat[i] === CARET) {
    negated = true;
    i++;
  }
  let hit = false;
  let ranges = 0;
  for (;;) {
    if (i < end && pat[i] === RBRACKET && ranges > 0) {
      i++;
      break;
    }
    const lo = classChar(pat, i, end);
    if (!lo) return undefined;
    let hi = lo;
    if (pat[lo[1]] === DASH) {
      const h = classChar(pat, lo[1] + 1, end);
      if (!h) return undefined;
      hi = h;
    }
    if (lo[0] <= cp && cp <= hi[0]) hit = true;
    i = hi[1];
    ranges++;
  }
  return [hit !== negated, i];
}

/** End of the chunk starting at `i`: the next `*` that is not inside a class or escaped. */
function chunkEnd(pat: Buffer, i: number): number {
  let inClass = false;
  for (; i < pat.length; i++) {
    const c = pat[i];
    if (c === BACKSLASH) {
      if (i + 1 < pat.length) i++;
    } else if (c === LBRACKET) {
      inClass = true;
    } else if (c === RBRACKET) {
      inClass = false;
    } else if (c === STAR && !inClass) {
      break;
    }
  }
  return i;
}

/**
 * Matches the star-free chunk pat[ps..pe) against a prefix of name[n..]. Returns the index in name
 * after the matched prefix, or -1. The pattern is known to be well formed.
 */
function matchChunk(pat: Buffer, ps: number, pe: number, name: Buffer, n: number): number {
  let i = ps;
  while (i < pe) {
    if (n >= name.length) return -1;
    const c = pat[i];
    if (c === LBRACKET) {
      const [cp, w] = decodeRune(name, n);
      const r = matchClass(pat, i + 1, pe, cp);
      if (!r || !r[0]) return -1;
      i = r[1];
      n += w;
    } else if (c === QUESTION) {
      if (name[n] === SLASH) return -1;
      n += decodeRune(name, n)[1];
      i++;
    } else {
      if (c === BACKSLASH) i++;
      if (pat[i] !== name[n]) return -1;
      i++;
      n++;
    }
  }
  return n;
}

/** Go filepath.Match (`*`, `?` never match `/`), for a well-formed pattern. */
export function globMatch(pattern: Buffer | string, name: Buffer | string): boolean {
  const pat = toPathBuffer(pattern);
  const nm = toPathBuffer(name);
  let p = 0;
  let n = 0;
  next: while (p < pat.length) {
    let star = false;
    while (p < pat.length && pat[p] === STAR) {
      star = true;
      p++;
    }
    const e = chunkEnd(pat, p);
    const last = e >= pat.length;
    if (star && e === p) return !nm.subarray(n).includes(SLASH); // a trailing star eats the rest
    // Without a star in front the chunk must match right here; with one, at the earliest position
    // that works (the last chunk must end exactly at the end of the name).
    const here = matchChunk(pat, p, e, nm, n);
    if (here >= 0 && (!last || here === nm.length)) {
      n = here;
      p = e;
      continue;
    }
    if (star) {
      // the star takes nm[n..k); it never takes a separator
      for (let k = n + 1; k <= nm.length && nm[k - 1] !== SLASH; k++) {
        const m = matchChunk(pat, p, e, nm, k);
        if (m < 0 || (last && m !== nm.length)) continue;
        n = m;
        p = e;
        continue next;
      }
    }
    return false;
  }
  return n === nm.length;
}

/** True when `pattern` is a syntactically valid Go filepath.Match pattern. */
export function isValidGlob(pattern: Buffer | string): boolean {
  const pat = toPathBuffer(pattern);
  let i = 0;
  while (i < pat.length) {
    const c = pat[i];
    if (c === BACKSLASH) {
      if (i + 1 >= pat.length) return false;
      i += 2;
    } else if (c === LBRACKET) {
      // a class may not contain an unescaped "*" that ends the chunk: validate within the chunk
      const r = matchClass(pat, i + 1, chunkEnd(pat, i), -1);
      if (!r) return false;
      i = r[1];
    } else {
      i++;
    }
  }
  return true;
}

const SPECIAL = /[\\[\]*?]/;

function compilePattern(original: string): CompiledPattern {
  let text = original;
  let negated = false;
  if (text[0] === '!') {
    negated = true;
    text = text.slice(1);
  }
  const cleaned = cleanPath(text);
  const comps = cleaned.split('/');
  const parts: Part[] = comps.map((c, idx): Part => {
    if (idx === 0 && c === '' && cleaned[0] === '/') return { kind: 'root' };
    // "**", and the empty remainder of the pattern "/" (restic treats both alike)
    if (c === '**' || c === '') return { kind: 'any' };
    const bytes = Buffer.from(c, 'utf8');
    return SPECIAL.test(c) ? { kind: 'glob', bytes } : { kind: 'literal', bytes };
  });
  return { original, negated, parts };
}

/** Splits a path like restic does: absolute paths get a first component "/". */
function pathComponents(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === SLASH) {
      out.push(p.subarray(start, i));
      start = i + 1;
    }
  }
  if (out[0].length === 0) out[0] = ROOT_COMPONENT;
  return out;
}
const ROOT_COMPONENT = Buffer.from('/');

function partMatches(part: Part, comp: Buffer): boolean {
  switch (part.kind) {
    case 'root':
      return comp === ROOT_COMPONENT || comp.equals(ROOT_COMPONENT);
    case 'literal':
      return part.bytes.equals(comp);
    case 'glob':
      return globMatch(part.bytes, comp);
    case 'any':
      return true;
  }
}

/** Does parts[pi..] match a run of components starting at comps[ci] (anything may follow)? */
function matchRun(parts: Part[], pi: number, comps: Buffer[], ci: number): boolean {
  for (; pi < parts.length; pi++) {
    const part = parts[pi];
    if (part.kind === 'any') {
      if (pi === parts.length - 1) return true;
      for (let k = ci; k <= comps.length; k++) {
        if (matchRun(parts, pi + 1, comps, k)) return true;
      }
      return false;
    }
    if (ci >= comps.length || !partMatches(part, comps[ci])) return false;
    ci++;
  }
  return true;
}

function patternMatches(pat: CompiledPattern, comps: Buffer[]): boolean {
  const parts = pat.parts;
  if (parts[0].kind === 'root') return matchRun(parts, 0, comps, 0);
  // Unanchored: the pattern may start at any component except the root marker. A pattern made
  // only of "**" needs at least one component to match.
  const first = comps[0] === ROOT_COMPONENT ? 1 : 0;
  if (parts.every((x) => x.kind === 'any')) return comps.length > first;
  for (let start = first; start < comps.length; start++) {
    if (matchRun(parts, 0, comps, start)) return true;
  }
  return false;
}

export interface ExcludeOptions {
  /** `--iexclude`: compare case-insensitively (patterns and paths lower-cased like Go's strings.ToLower). */
  caseInsensitive?: boolean;
}

/** Go strings.ToLower on bytes: simple per-character lower-casing; invalid UTF-8 becomes U+FFFD. */
export function goLower(b: Buffer): Buffer {
  let ascii = true;
  for (let i = 0; i < b.length; i++) {
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return Buffer.from(b.toString('latin1').toLowerCase(), 'latin1');
  let out = '';
  let i = 0;
  while (i < b.length) {
    const [cp, w] = decodeRune(b, i);
    i += w;
    out += String.fromCodePoint(lowerRune(cp));
  }
  return Buffer.from(out, 'utf8');
}

function lowerRune(cp: number): number {
  if (cp < 0x80) return cp >= 0x41 && cp <= 0x5a ? cp + 0x20 : cp;
  if (cp === 0x130) return 0x69; // Go's simple mapping; JS gives "i̇" (two characters)
  const s = String.fromCodePoint(cp).toLowerCase();
  const l = s.codePointAt(0) ?? cp;
  return s.length === String.fromCodePoint(l).length ? l : cp;
}

/**
 * Compiles exclude patterns into a predicate over absolute, cleaned paths (string or bytes); true
 * means "exclude". Throws CairnError('INVALID_ARGUMENT') listing malformed patterns.
 */
export function compileExcludes(patterns: string[], opts: ExcludeOptions = {}): (absPath: Buffer | string) => boolean {
  const ci = opts.caseInsensitive === true;
  const compiled: CompiledPattern[] = [];
  const invalid: string[] = [];
  for (const raw of patterns) {
    if (raw === '') continue;
    const text = ci ? goLower(Buffer.from(raw, 'utf8')).toString('utf8') : raw;
    const pat = compilePattern(text);
    if (pat.parts.some((x) => x.kind === 'glob' && !isValidGlob(x.bytes))) {
      invalid.push(raw);
      continue;
    }
    compiled.push(pat);
  }
  if (invalid.length > 0) {
    throw new CairnError('INVALID_ARGUMENT', `invalid exclude pattern(s): ${invalid.join(', ')}`, {
      object: invalid.join('\n'),
    });
  }
  if (compiled.length === 0) return () => false;
  const anyNegated = compiled.some((p) => p.negated);
  return (absPath: Buffer | string): boolean => {
    let b = toPathBuffer(absPath);
    if (b.length === 0) return false; // restic: "string is empty" → not excluded
    if (ci) b = goLower(b);
    const comps = pathComponents(b);
    let excluded = false;
    for (const pat of compiled) {
      if (pat.negated) {
        if (excluded && patternMatches(pat, comps)) excluded = false;
      } else if (!excluded && patternMatches(pat, comps)) {
        excluded = true;
        if (!anyNegated) break;
      }
    }
    return excluded;
  };
}

// ---------------------------------------------------------------------------------------------
// Exclude files

/**
 * Go os.Expand with restic's mapping: `$NAME`, `${NAME}` and the one-character special names
 * (`$1`, `$*`, ...) are replaced by the environment value ("" when unset); `$$` gives `$`; a `$`
 * followed by nothing usable stays; malformed `${...` is dropped.
 */
export function expandEnv(s: string, env: NodeJS.ProcessEnv = process.env): string {
  const lookup = (name: string): string => (name === '$' ? '$' : env[name] ?? '');
  const isSpecial = (ch: string): boolean => '*#$@!?-'.includes(ch) || (ch >= '0' && ch <= '9');
  const isNameChar = (ch: string): boolean => ch === '_' || /[0-9A-Za-z]/.test(ch);
  let out = '';
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch !== '$' || i + 1 >= s.length) {
      out += ch;
      i++;
      continue;
    }
    const rest = s.slice(i + 1);
    if (rest[0] === '{') {
      if (rest.length > 2 && isSpecial(rest[1]) && rest[2] === '}') {
        out += lookup(rest[1]);
        i += 4;
        continue;
      }
      const close = rest.indexOf('}', 1);
      if (close === 1) {
        i += 3; // "${}" is dropped
      } else if (close < 0) {
        i += 2; // "${" without "}" is dropped
      } else {
        out += lookup(rest.slice(1, close));
        i += close + 2;
      }
      continue;
    }
    if (isSpecial(rest[0])) {
      out += lookup(rest[0]);
      i += 2;
      continue;
    }
    let k = 0;
    while (k < rest.length && isNameChar(rest[k])) k++;
    if (k === 0) {
      out += '$'; // not followed by a name: keep the dollar
      i++;
    } else {
      out += lookup(rest.slice(0, k));
      i += 1 + k;
    }
  }
  return out;
}

/** Go strings.TrimSpace (Unicode White_Space, which differs from JS trim on U+0085 and U+FEFF). */
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const TRIM_RE = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');

/** Decodes an exclude file like restic: UTF-8 BOM stripped, UTF-16 (with BOM) converted. */
function decodeText(data: Buffer): string {
  if (data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) {
    return data.subarray(3).toString('utf8');
  }
  if (data.length >= 2 && data[0] === 0xff && data[1] === 0xfe) {
    return data.subarray(2, 2 + ((data.length - 2) & ~1)).toString('utf16le');
  }
  if (data.length >= 2 && data[0] === 0xfe && data[1] === 0xff) {
    const body = Buffer.from(data.subarray(2, 2 + ((data.length - 2) & ~1)));
    body.swap16();
    return body.toString('utf16le');
  }
  return data.toString('utf8');
}

/** Parses exclude-file text: per line trimmed; blank lines and `#` comments skipped; env expanded. */
export function parseExcludeText(text: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  for (let line of text.split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    line = line.replace(TRIM_RE, '');
    if (line === '' || line.startsWith('#')) continue;
    out.push(expandEnv(line, env));
  }
  return out;
}

/** Reads an `--exclude-file`: returns its patterns (see parseExcludeText). */
export async function readExcludeFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  let data: Buffer;
  try {
    data = await fsp.readFile(path);
  } catch (e) {
    throw fsError(e, path, 'reading exclude file');
  }
  return parseExcludeText(decodeText(data), env);
}
