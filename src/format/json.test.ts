import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import {
  INVALID_UTF8_MARK,
  encodeGoJsonValue,
  goJsonQuote,
  goJsonQuoteBytes,
  goStringFromBytes,
  parseJson,
} from './json.js';

test('goJsonQuote: Go 1.19 escaping rules (spec §7.6)', () => {
  assert.equal(goJsonQuote('hello'), '"hello"');
  assert.equal(goJsonQuote(''), '""');
  assert.equal(goJsonQuote('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(goJsonQuote('\n\r\t'), '"\\n\\r\\t"');
  // no \b / \f, lower-case hex, other controls as \u00XX
  assert.equal(goJsonQuote('\b\f\u0000\u001f\u000b'), '"\\u0008\\u000c\\u0000\\u001f\\u000b"');
  assert.equal(goJsonQuote('<a href="x">&amp;</a>'), '"\\u003ca href=\\"x\\"\\u003e\\u0026amp;\\u003c/a\\u003e"');
  assert.equal(goJsonQuote('\u2028\u2029'), '"\\u2028\\u2029"');
  // DEL and non-ASCII are raw
  assert.equal(goJsonQuote('\u007fé☃😀\u00a0\ufffd'), '"\u007fé☃😀\u00a0\ufffd"');
  assert.equal(goJsonQuote('/'), '"/"');
});

test('goJsonQuote: lone surrogates stand for invalid bytes and become \\ufffd', () => {
  assert.equal(goJsonQuote('a\ud800b'), '"a\\ufffdb"');
  assert.equal(goJsonQuote('a\udc80'), '"a\\ufffd"');
  assert.equal(goJsonQuote('\udc80\ud83d'), '"\\ufffd\\ufffd"');
  assert.equal(goJsonQuote('x\ud83d\ude00y'), '"x😀y"');
  assert.equal(goJsonQuote(INVALID_UTF8_MARK), '"\\ufffd"');
});

test('goStringFromBytes / goJsonQuoteBytes: one \\ufffd per invalid byte, like Go', () => {
  const cases: [number[], string][] = [
    [[0x61, 0x62], '"ab"'],
    [[0xff], '"\\ufffd"'],
    // truncated 3-byte sequence: Go yields two errors (WHATWG decoding would give one U+FFFD)
    [[0xe2, 0x82], '"\\ufffd\\ufffd"'],
    [[0xe2, 0x82, 0xac], '"€"'],
    [[0xc0, 0x80], '"\\ufffd\\ufffd"'], // overlong
    [[0xed, 0xa0, 0x80], '"\\ufffd\\ufffd\\ufffd"'], // encoded surrogate
    [[0xf4, 0x90, 0x80, 0x80], '"\\ufffd\\ufffd\\ufffd\\ufffd"'], // > U+10FFFF
    [[0xf0, 0x9f, 0x98, 0x80], '"😀"'],
    [[0x3c, 0x80, 0x3e], '"\\u003c\\ufffd\\u003e"'],
    [[0xef, 0xbf, 0xbd], '"\ufffd"'], // a real U+FFFD stays raw
  ];
  for (const [bytes, want] of cases) assert.equal(goJsonQuoteBytes(Buffer.from(bytes)), want, Buffer.from(bytes).toString('hex'));
  assert.equal(goStringFromBytes(Buffer.from([0x61, 0xfe])), 'a\udcfe');
  // valid input takes the fast path and equals Buffer#toString
  assert.equal(goStringFromBytes(Buffer.from('héllo')), 'héllo');
});

test('goJsonQuote output is valid JSON that JSON.parse maps back (well-formed strings)', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 }), (a, b) => {
      for (const s of [a, b]) {
        const q = goJsonQuote(s);
        assert.equal(JSON.parse(q), s);
        assert.equal(parseJson(q), s);
        assert.ok(!/[<>&\u2028\u2029]/.test(q));
      }
    }),
    { seed: 42, numRuns: 2000 },
  );
});

test('encodeGoJsonValue: insertion order, bigint, Go number format', () => {
  assert.equal(
    encodeGoJsonValue({ b: 1, a: [true, null, 'x<'], n: 18446744073709551615n, f: 1.5, e: 1e21, s: 1e-7, u: undefined }),
    '{"b":1,"a":[true,null,"x\\u003c"],"n":18446744073709551615,"f":1.5,"e":1e+21,"s":1e-7}',
  );
  assert.equal(encodeGoJsonValue(Buffer.from([0, 1, 255])), '"AAH/"');
  assert.throws(() => encodeGoJsonValue(NaN), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});

test('parseJson: lossless integers', () => {
  assert.deepEqual(parseJson('{"a":18446744073709551615,"b":9007199254740991,"c":9007199254740992,"d":-5,"e":1.25,"f":1e3}'), {
    a: 18446744073709551615n,
    b: 9007199254740991,
    c: 9007199254740992n,
    d: -5,
    e: 1.25,
    f: 1000,
  });
  // designated keys always give bigint for integer literals (also inside arrays), not for floats
  assert.deepEqual(parseJson('{"inode":5,"x":{"inode":[1,2]},"size":1.0}', { bigintKeys: new Set(['inode', 'size']) }), {
    inode: 5n,
    x: { inode: [1n, 2n] },
    size: 1,
  });
  assert.equal(parseJson('0'), 0);
  assert.equal(parseJson(' -0.5e-2 '), -0.005);
  assert.equal(parseJson('123456789012345678'), 123456789012345678n);
});

test('parseJson: strings, escapes and the invalid-UTF-8 mark', () => {
  assert.equal(parseJson('"a\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9"'), 'a"\\/\b\f\n\r\tAé');
  assert.equal(parseJson('"\\ud83d\\ude00"'), '😀');
  assert.equal(parseJson('"\\ufffd"'), INVALID_UTF8_MARK);
  assert.equal(parseJson('"\ufffd"'), '\ufffd'); // raw U+FFFD is a real character
  assert.equal(parseJson('"\\ud800x"'), '\ufffdx'); // lone surrogate escape → U+FFFD (Go)
  assert.equal(parseJson('"\\udc00"'), '\ufffd');
  assert.equal(parseJson(Buffer.from('"é☃"')), 'é☃');
  // round trip of Go's escape for invalid bytes
  assert.equal(goJsonQuote(parseJson('"x\\ufffdy"') as string), '"x\\ufffdy"');
});

test('parseJson: structure, duplicates, __proto__', () => {
  assert.deepEqual(parseJson(' { "a" : [ 1 , { } , [ ] ] , "a" : true } '), { a: true });
  const o = parseJson('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.deepEqual(Object.keys(o), ['__proto__']);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('parseJson: malformed input is CORRUPT', () => {
  const bad = [
    '', '{', '[1,]', '{"a":1,}', '{"a" 1}', '01', '1.', '.5', '-', '1e', 'tru', 'nul', '"abc', '"a\nb"',
    '"\\x41"', '"\\u12g4"', '{} x', '[1 2]', "{'a':1}", 'NaN', '+1',
  ];
  for (const s of bad) assert.throws(() => parseJson(s), (e) => isCairnError(e, 'CORRUPT'), JSON.stringify(s));
  assert.throws(() => parseJson('['.repeat(5000) + ']'.repeat(5000)), (e) => isCairnError(e, 'CORRUPT'));
});

test('parseJson agrees with JSON.parse on arbitrary JSON (safe numbers)', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (v) => {
      const text = JSON.stringify(v);
      const want = JSON.parse(text);
      const got = parseJson(text, { what: 'test' });
      const norm = (x: unknown): unknown =>
        typeof x === 'bigint' ? Number(x) : Array.isArray(x) ? x.map(norm) : x && typeof x === 'object'
          ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, norm(y)]))
          : x;
      assert.deepEqual(norm(got), want);
    }),
    { seed: 42, numRuns: 1000 },
  );
});
