/**
 * Go strconv.Quote / strconv.Unquote for tree node names (spec §7.5).
 *
 * restic stores a node's name as strconv.Quote(name) without the surrounding quotes, and only
 * then JSON-encodes it. Names are raw bytes (Linux file names need not be UTF-8), so quoting
 * works on bytes: invalid UTF-8 bytes become `\xNN`, which is what lets such names survive.
 */
import { CairnError } from '../core/errors.js';
import { utf8SeqLen } from './json.js';
import { isGoPrint } from './unicode13.js';

const HEX = '0123456789abcdef';
const HEXB = Buffer.from(HEX, 'latin1');

/** Single-letter escapes Go uses for these control characters (\a \b \t \n \v \f \r). */
const CTRL_LETTER: Record<number, number> = { 7: 0x61, 8: 0x62, 9: 0x74, 10: 0x6e, 11: 0x76, 12: 0x66, 13: 0x72 };

/**
 * strconv.Quote(string(name)) without the surrounding double quotes, as a JS string (always
 * well-formed Unicode). Exact inverse: {@link goUnquote}.
 */
export function goQuote(name: Uint8Array): string {
  const n = name.length;
  // Fast path: printable ASCII without `"` and `\` is copied unchanged (the common case).
  let i = 0;
  for (; i < n; i++) {
    const c = name[i];
    if (c < 0x20 || c >= 0x7f || c === 0x22 || c === 0x5c) break;
  }
  const src = Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  if (i === n) return src.toString('latin1');

  // Worst case growth: 1 byte → `\xNN` (4 bytes); 2..4-byte runes → at most 10 bytes.
  const out = Buffer.allocUnsafe(n * 4);
  src.copy(out, 0, 0, i);
  let o = i;
  while (i < n) {
    const c = name[i];
    if (c < 0x80) {
      if (c === 0x22 || c === 0x5c) {
        out[o++] = 0x5c;
        out[o++] = c;
      } else if (c >= 0x20 && c < 0x7f) {
        out[o++] = c;
      } else {
        const letter = CTRL_LETTER[c];
        out[o++] = 0x5c;
        if (letter !== undefined) {
          out[o++] = letter;
        } else {
          out[o++] = 0x78; // x
          out[o++] = HEXB[c >> 4];
          out[o++] = HEXB[c & 15];
        }
      }
      i++;
      continue;
    }
    const w = utf8SeqLen(name, i);
    if (w === 0) {
      // invalid UTF-8: Go emits the byte as \xNN
      out[o++] = 0x5c;
      out[o++] = 0x78;
      out[o++] = HEXB[c >> 4];
      out[o++] = HEXB[c & 15];
      i++;
      continue;
    }
    let cp: number;
    if (w === 2) cp = ((c & 0x1f) << 6) | (name[i + 1] & 0x3f);
    else if (w === 3) cp = ((c & 0x0f) << 12) | ((name[i + 1] & 0x3f) << 6) | (name[i + 2] & 0x3f);
    else cp = ((c & 0x07) << 18) | ((name[i + 1] & 0x3f) << 12) | ((name[i + 2] & 0x3f) << 6) | (name[i + 3] & 0x3f);
    if (isGoPrint(cp)) {
      for (let k = 0; k < w; k++) out[o++] = name[i + k];
    } else if (cp < 0x10000) {
      out[o++] = 0x5c;
      out[o++] = 0x75; // u
      for (let sh = 12; sh >= 0; sh -= 4) out[o++] = HEXB[(cp >> sh) & 15];
    } else {
      out[o++] = 0x5c;
      out[o++] = 0x55; // U
      for (let sh = 28; sh >= 0; sh -= 4) out[o++] = HEXB[(cp >>> sh) & 15];
    }
    i += w;
  }
  return out.toString('utf8', 0, o);
}

function syntax(s: string, why: string): never {
  throw new CairnError('CORRUPT', `invalid quoted name ${JSON.stringify(s)}: ${why}`);
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * strconv.Unquote(`"` + s + `"`) returning the raw bytes. Throws CORRUPT where Go returns
 * ErrSyntax (restic then fails to load the tree). Lone surrogates (our stand-in for invalid
 * UTF-8 that went through JSON) become U+FFFD, as Go's JSON decoder would have produced.
 */
export function goUnquote(s: string): Buffer {
  const n = s.length;
  // Fast path: nothing to unescape.
  if (s.indexOf('\\') < 0) {
    if (s.indexOf('"') >= 0 || s.indexOf('\n') >= 0) syntax(s, 'unescaped quote or newline');
    return Buffer.from(s, 'utf8');
  }
  // Unescaping never grows the UTF-8 length; a UTF-16 unit needs at most 3 bytes.
  const out = Buffer.allocUnsafe(n * 3);
  let o = 0;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c !== 0x5c) {
      if (c === 0x22 || c === 0x0a) syntax(s, 'unescaped quote or newline');
      if (c < 0x80) {
        out[o++] = c;
        i++;
        continue;
      }
      // copy a run of non-ASCII characters through the UTF-8 encoder
      let j = i + 1;
      while (j < n && s.charCodeAt(j) >= 0x80) j++;
      o += out.write(s.slice(i, j), o, 'utf8');
      i = j;
      continue;
    }
    if (i + 1 >= n) syntax(s, 'trailing backslash');
    const e = s.charCodeAt(i + 1);
    switch (e) {
      case 0x61: out[o++] = 7; i += 2; break; // \a
      case 0x62: out[o++] = 8; i += 2; break; // \b
      case 0x66: out[o++] = 12; i += 2; break; // \f
      case 0x6e: out[o++] = 10; i += 2; break; // \n
      case 0x72: out[o++] = 13; i += 2; break; // \r
      case 0x74: out[o++] = 9; i += 2; break; // \t
      case 0x76: out[o++] = 11; i += 2; break; // \v
      case 0x5c: out[o++] = 0x5c; i += 2; break;
      case 0x22: out[o++] = 0x22; i += 2; break;
      case 0x78: { // \xNN: one raw byte
        const h = i + 2 < n ? hexVal(s.charCodeAt(i + 2)) : -1;
        const l = i + 3 < n ? hexVal(s.charCodeAt(i + 3)) : -1;
        if (h < 0 || l < 0) syntax(s, 'bad \\x escape');
        out[o++] = (h << 4) | l;
        i += 4;
        break;
      }
      case 0x75: // \uNNNN
      case 0x55: { // \UNNNNNNNN
        const len = e === 0x75 ? 4 : 8;
        if (i + 2 + len > n) syntax(s, 'short unicode escape');
        let v = 0;
        for (let k = 0; k < len; k++) {
          const d = hexVal(s.charCodeAt(i + 2 + k));
          if (d < 0) syntax(s, 'bad unicode escape');
          v = v * 16 + d;
        }
        // Go accepts only valid runes here (no surrogates, nothing above U+10FFFF)
        if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) syntax(s, 'escape is not a valid rune');
        o += out.write(String.fromCodePoint(v), o, 'utf8');
        i += 2 + len;
        break;
      }
      default: {
        if (e >= 0x30 && e <= 0x37) { // \NNN octal: one raw byte
          if (i + 4 > n) syntax(s, 'short octal escape');
          let v = 0;
          for (let k = 1; k <= 3; k++) {
            const d = s.charCodeAt(i + k) - 0x30;
            if (d < 0 || d > 7) syntax(s, 'bad octal escape');
            v = v * 8 + d;
          }
          if (v > 255) syntax(s, 'octal escape out of range');
          out[o++] = v;
          i += 4;
          break;
        }
        syntax(s, 'unknown escape');
      }
    }
  }
  return Buffer.from(out.subarray(0, o));
}
