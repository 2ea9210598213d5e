/**
 * Byte paths. File names on Linux are byte strings that need not be valid UTF-8, so fs/ keeps
 * paths as Buffers end to end; these helpers join, split and display them without ever decoding
 * the bytes.
 */
import { isUtf8 } from 'node:buffer';

const SLASH = 0x2f;
const SLASH_BUF = Buffer.from('/');

/** A path given as a string (taken as UTF-8) or as raw bytes, as a Buffer (no copy for Buffers). */
export function toPathBuffer(p: Buffer | string): Buffer {
  return typeof p === 'string' ? Buffer.from(p, 'utf8') : p;
}

/**
 * `base` and the first `count` of `names` joined with slashes, for names that are known to be
 * plain components (non-empty, without `/`; RestoreTarget.join checks that): what joinPath gives
 * for them, built in one buffer — the restorer joins two paths per file, and joinPath's general
 * handling cost ~2 µs each.
 */
export function joinComponents(base: Buffer, names: readonly Buffer[], count = names.length): Buffer {
  const sep = base.length > 0 && base[base.length - 1] !== SLASH ? 1 : 0;
  let len = base.length;
  for (let k = 0; k < count; k++) len += names[k]!.length + (k === 0 ? sep : 1);
  if (count === 0) return base;
  const out = Buffer.allocUnsafe(len);
  out.set(base, 0);
  let at = base.length;
  for (let k = 0; k < count; k++) {
    if (k > 0 || sep === 1) out[at++] = SLASH;
    const name = names[k]!;
    // names are short: a loop beats TypedArray#set's checks (half of this function's time)
    if (name.length > 64) {
      out.set(name, at);
      at += name.length;
    } else {
      for (let i = 0; i < name.length; i++) out[at++] = name[i]!;
    }
  }
  return out;
}

/**
 * Joins path pieces with single slashes: `joinPath('/a/', 'b', Buffer.from('c'))` is `/a/b/c`.
 * Pieces are not inspected otherwise (no `.`/`..` processing); an empty piece adds nothing.
 */
export function joinPath(base: Buffer | string, ...names: (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [];
  let prev = toPathBuffer(base);
  parts.push(prev);
  for (const n of names) {
    let nb = toPathBuffer(n);
    if (nb.length === 0) continue;
    const prevEndsWithSlash = prev.length > 0 && prev[prev.length - 1] === SLASH;
    const startsWithSlash = nb[0] === SLASH;
    if (prevEndsWithSlash && startsWithSlash) {
      let i = 0;
      while (i < nb.length && nb[i] === SLASH) i++;
      nb = nb.subarray(i);
      if (nb.length === 0) continue;
    } else if (!prevEndsWithSlash && !startsWithSlash && prev.length > 0) {
      parts.push(SLASH_BUF);
    }
    parts.push(nb);
    prev = nb;
  }
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** Splits a path into its non-empty components (`/a//b/` → [a, b]); views into `p`, no copies. */
export function splitPath(p: Buffer | string): Buffer[] {
  const b = toPathBuffer(p);
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= b.length; i++) {
    if (i === b.length || b[i] === SLASH) {
      if (i > start) out.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  return out;
}

/** Last component of a path (trailing slashes ignored); `/` and `` give an empty Buffer. */
export function baseName(p: Buffer | string): Buffer {
  const b = toPathBuffer(p);
  let end = b.length;
  while (end > 0 && b[end - 1] === SLASH) end--;
  let start = end;
  while (start > 0 && b[start - 1] !== SLASH) start--;
  return b.subarray(start, end);
}

/** Everything before the last component: `/a/b` → `/a`, `/a` → `/`, `a` → `.`. */
export function dirName(p: Buffer | string): Buffer {
  const b = toPathBuffer(p);
  let end = b.length;
  while (end > 0 && b[end - 1] === SLASH) end--;
  while (end > 0 && b[end - 1] !== SLASH) end--;
  // end is now just after the separator preceding the last component (or 0)
  while (end > 1 && b[end - 1] === SLASH) end--;
  if (end === 0) return Buffer.from(b.length > 0 && b[0] === SLASH ? '/' : '.');
  return b.subarray(0, end);
}

export function isAbsolutePath(p: Buffer | string): boolean {
  const b = toPathBuffer(p);
  return b.length > 0 && b[0] === SLASH;
}

/** True when the bytes decode as UTF-8 without loss (so the string form round-trips). */
export function isUtf8Path(p: Buffer): boolean {
  return isUtf8(p);
}

/**
 * Human-readable form of a byte path for messages and logs: valid UTF-8 is shown as is, each byte
 * of an invalid sequence as `\xNN` (the way restic/Go would quote it).
 */
export function displayPath(p: Buffer | string): string {
  if (typeof p === 'string') return p;
  if (isUtf8(p)) return p.toString('utf8');
  let out = '';
  let i = 0;
  while (i < p.length) {
    const len = utf8SeqLen(p, i);
    if (len > 0) {
      out += p.toString('utf8', i, i + len);
      i += len;
    } else {
      out += '\\x' + p[i].toString(16).padStart(2, '0');
      i += 1;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at p[i], or 0 when the byte there starts none. */
export function utf8SeqLen(p: Uint8Array, i: number): number {
  const b0 = p[i];
  if (b0 < 0x80) return 1;
  let need: number;
  let min: number;
  let cp: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    need = 1;
    min = 0x80;
    cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    need = 2;
    min = 0x800;
    cp = b0 & 0x0f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    need = 3;
    min = 0x10000;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + need >= p.length) return 0; // continuation bytes missing
  for (let k = 1; k <= need; k++) {
    const c = p[i + k];
    if ((c & 0xc0) !== 0x80) return 0;
    cp = (cp << 6) | (c & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return need + 1;
}
