import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import { goQuote, goUnquote } from './goquote.js';
import { goJsonQuote } from './json.js';
import { isGoPrint } from './unicode13.js';

const b = (s: string) => Buffer.from(s, 'utf8');

test('goQuote: spec §7.5 examples (name as stored inside the JSON document)', () => {
  const stored = (raw: Buffer) => goJsonQuote(goQuote(raw));
  assert.equal(stored(b('hello.txt')), '"hello.txt"');
  assert.equal(
    stored(b('weird "q" <&> back\\slash\ttab é ☃ \u00a0nbsp.txt')),
    '"weird \\\\\\"q\\\\\\" \\u003c\\u0026\\u003e back\\\\\\\\slash\\\\ttab é ☃ \\\\u00a0nbsp.txt"',
  );
  assert.equal(stored(Buffer.from([...b('bad'), 0xff, ...b('utf8')])), '"bad\\\\xffutf8"');
  assert.equal(stored(b('ctrl\u0001\u007fchar')), '"ctrl\\\\x01\\\\x7fchar"');
  assert.equal(stored(b('nl\nname')), '"nl\\\\nname"');
  for (const s of ['emoji😀', 'cjk中文', 'combining e\u0301']) assert.equal(stored(b(s)), '"' + s + '"');
});

test('goQuote: escapes like strconv.Quote', () => {
  assert.equal(goQuote(b('\u0007\b\f\n\r\t\u000b')), '\\a\\b\\f\\n\\r\\t\\v');
  assert.equal(goQuote(b('\u0000\u001b')), '\\x00\\x1b');
  assert.equal(goQuote(b('"\\\'')), '\\"\\\\\'');
  assert.equal(goQuote(b('\u0085\u00a0\u00ad\u200b\u2028\ufeff')), '\\u0085\\u00a0\\u00ad\\u200b\\u2028\\ufeff');
  assert.equal(goQuote(b('\u{e0001}\u{10ffff}')), '\\U000e0001\\U0010ffff');
  assert.equal(goQuote(b(' ~!')), ' ~!');
  assert.equal(goQuote(b('\u3000')), '\\u3000'); // ideographic space is Zs: not printable for Go
  assert.equal(goQuote(b('\ufffd')), '\ufffd'); // a real U+FFFD is printable
  // invalid UTF-8, byte by byte
  assert.equal(goQuote(Buffer.from([0xe2, 0x82])), '\\xe2\\x82');
  assert.equal(goQuote(Buffer.from([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80');
  assert.equal(goQuote(Buffer.from([0xc0, 0xaf])), '\\xc0\\xaf');
  assert.equal(goQuote(Buffer.from([0xf4, 0x90, 0x80, 0x80])), '\\xf4\\x90\\x80\\x80');
});

test('goQuote follows Go 1.19 (Unicode 13), not Node ICU', () => {
  // U+061D (Unicode 14) and U+1FAE0 (Unicode 14 emoji) are unassigned for Go 1.19
  assert.equal(goQuote(b('\u061d')), '\\u061d');
  assert.equal(goQuote(b('\u{1fae0}')), '\\U0001fae0');
  assert.equal(isGoPrint(0x1f600), true);
  assert.equal(isGoPrint(0x20), true);
  assert.equal(isGoPrint(0xa0), false);
  assert.equal(isGoPrint(0x378), false); // unassigned
  assert.equal(isGoPrint(0xe000), false); // private use (Co)
  assert.equal(isGoPrint(0x110000), false);
  // everything Go 1.19 finds printable is also printable for the newer ICU regex
  const re = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;
  for (let cp = 0x21; cp < 0x30000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (isGoPrint(cp)) assert.ok(re.test(String.fromCodePoint(cp)), cp.toString(16));
  }
});

test('goUnquote: inverse, and Go syntax errors', () => {
  assert.deepEqual(goUnquote('hello'), b('hello'));
  assert.deepEqual(goUnquote('\\a\\b\\f\\n\\r\\t\\v\\\\\\"'), b('\u0007\b\f\n\r\t\u000b\\"'));
  assert.deepEqual(goUnquote('\\xff\\xFE\\101\\377'), Buffer.from([0xff, 0xfe, 0x41, 0xff]));
  assert.deepEqual(goUnquote('\\u00e9\\U0001F600'), b('é😀'));
  assert.deepEqual(goUnquote('é☃😀'), b('é☃😀'));
  assert.deepEqual(goUnquote(''), Buffer.alloc(0));
  assert.deepEqual(goUnquote('a\udcfdb'), b('a\ufffdb')); // the JSON layer's invalid-UTF-8 mark
  const bad = ['"', 'a"b', 'a\nb', '\\', '\\q', "\\'", '\\x4', '\\xg0', '\\u12', '\\ud800', '\\U00110000', '\\400', '\\12', '\\19'];
  for (const s of bad) assert.throws(() => goUnquote(s), (e) => isCairnError(e, 'CORRUPT'), JSON.stringify(s));
});

test('property: goUnquote(goQuote(b)) == b for random bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (arr) => {
      const raw = Buffer.from(arr);
      const q = goQuote(raw);
      assert.deepEqual(goUnquote(q), raw);
      assert.ok(!q.includes('\n'));
    }),
    { seed: 42, numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 32 }), (s) => {
      const raw = b(s);
      assert.deepEqual(goUnquote(goQuote(raw)), raw);
    }),
    { seed: 42, numRuns: 5000 },
  );
});
