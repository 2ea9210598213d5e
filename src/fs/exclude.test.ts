import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { isCairnError } from '../core/errors.js';
import {
  cleanPath,
  compileExcludes,
  expandEnv,
  globMatch,
  isValidGlob,
  parseExcludeText,
  readExcludeFile,
} from './exclude.js';

/** [pattern(s), path, excluded?] — one row per rule (see exclude.ts header). */
const table: [string | string[], string | Buffer, boolean][] = [
  // plain names match a component at any depth
  ['*.tmp', '/a/b/x.tmp', true],
  ['*.tmp', '/x.tmp', true],
  ['*.tmp', '/a/b/x.tmpl', false],
  ['*.tmp', '/a/x.tmp/inner', true], // a matching directory matches its contents too
  ['cache', '/home/u/cache', true],
  ['cache', '/home/u/cache/objects/1', true],
  ['cache', '/home/u/caches', false],
  ['Cache', '/home/u/cache', false], // case sensitive
  // multi-component relative patterns match consecutive components anywhere
  ['foo/bar', '/x/foo/bar', true],
  ['foo/bar', '/foo/bar', true],
  ['foo/bar', '/x/foo/bar/baz', true],
  ['foo/bar', '/x/foo/y/bar', false],
  ['foo/bar', '/x/foo', false],
  ['b*/*.log', '/var/build/out.log', true],
  ['b*/*.log', '/var/cache/out.log', false],
  // anchored patterns
  ['/var/log', '/var/log', true],
  ['/var/log', '/var/log/syslog', true],
  ['/var/log', '/srv/var/log', false],
  ['/var/*', '/var', false],
  ['/var/*', '/var/tmp', true],
  ['/*/log', '/var/log', true],
  ['/*.tmp', '/a/x.tmp', false],
  ['/', '/anything/at/all', true],
  // trailing slash, duplicate slashes, "." and ".." are cleaned away
  ['/var/log/', '/var/log', true],
  ['cache/', '/a/cache', true],
  ['/var//log', '/var/log', true],
  ['/var/./log', '/var/log', true],
  ['/var/x/../log', '/var/log', true],
  ['/var/x/../log', '/var/x/log', false],
  ['/../etc', '/etc/passwd', true],
  // ** matches zero or more components
  ['**', '/a', true],
  ['**', '/', true], // restic: "/" splits into ["/", ""], and ** matches the empty component
  ['**/*.o', '/src/lib/a.o', true],
  ['src/**/*.o', '/p/src/a.o', true],
  ['src/**/*.o', '/p/src/x/y/z/a.o', true],
  ['src/**/*.o', '/p/lib/a.o', false],
  ['/src/**/gen', '/src/a/b/gen/file', true],
  ['/src/**/gen', '/x/src/gen', false],
  ['a/**/b/**/c', '/a/x/b/y/z/c', true],
  ['a/**/b/**/c', '/a/c', false],
  ['/data/**', '/data', true],
  ['/data/**', '/database', false],
  // glob syntax of Go's filepath.Match
  ['file?.txt', '/d/file1.txt', true],
  ['file?.txt', '/d/file10.txt', false],
  ['file?.txt', '/d/file.txt', false],
  ['[abc].txt', '/d/b.txt', true],
  ['[abc].txt', '/d/d.txt', false],
  ['[^abc].txt', '/d/d.txt', true],
  ['[^abc].txt', '/d/a.txt', false],
  ['[a-c]x', '/d/bx', true],
  ['[a-c]x', '/d/dx', false],
  ['[*]', '/d/*', true],
  ['[*]', '/d/a', false],
  ['\\*', '/d/*', true],
  ['\\*', '/d/abc', false],
  ['a\\?c', '/d/a?c', true],
  ['a\\?c', '/d/abc', false],
  ['*a*b', '/d/xaybzb', true],
  ['*a*b', '/d/xaybzc', false],
  ['a*', '/d/a', true],
  ['*.é', '/d/x.é', true],
  ['x?', '/d/xé', true], // ? is one character, not one byte
  ['x??', '/d/xé', false],
  ['[é]', '/d/é', true],
  // names that are not UTF-8: literal bytes, and an invalid byte is one character for ?/[...]
  ['*.bin', Buffer.from([0x2f, 0x64, 0x2f, 0xff, 0xfe, 0x2e, 0x62, 0x69, 0x6e]), true],
  ['a?b', Buffer.from([0x2f, 0x61, 0xff, 0x62]), true],
  ['a??b', Buffer.from([0x2f, 0x61, 0xff, 0x62]), false],
  ['a\uFFFDb', Buffer.from([0x2f, 0x61, 0xff, 0x62]), false], // literal comparison is byte-wise
  ['a[\uFFFD]b', Buffer.from([0x2f, 0x61, 0xff, 0x62]), true], // classes compare characters
  // relative paths (not produced by the archiver, but defined)
  ['baz/*.go', 'bar/baz/t.go', true],
  ['/bar/baz', 'bar/baz', false],
  // lists: any pattern excludes; "!" patterns re-include what earlier ones excluded
  [['*.log', '*.tmp'], '/a/x.tmp', true],
  [['*.log', '!keep.log'], '/a/keep.log', false],
  [['*.log', '!keep.log'], '/a/other.log', true],
  [['!keep.log', '*.log'], '/a/keep.log', true], // order matters
  [['/data', '!/data/important'], '/data/important/x', false],
  [['/data', '!/data/important'], '/data/other', true],
  [['', '*.x'], '/a.x', true], // empty patterns are ignored
  [[], '/a', false],
];

test('exclude table', () => {
  for (const [pats, p, want] of table) {
    const list = Array.isArray(pats) ? pats : [pats];
    const fn = compileExcludes(list);
    const shown = typeof p === 'string' ? p : `bytes(${p.toString('hex')})`;
    assert.equal(fn(p), want, `patterns ${JSON.stringify(list)} on ${shown}: expected ${want}`);
    if (typeof p === 'string') assert.equal(fn(Buffer.from(p)), want, `Buffer form of ${shown}`);
  }
});

test('case-insensitive excludes (--iexclude)', () => {
  const fn = compileExcludes(['*.JPG', '/Photos/Raw'], { caseInsensitive: true });
  assert.equal(fn('/a/IMG.jpg'), true);
  assert.equal(fn('/a/img.Jpg'), true);
  assert.equal(fn('/photos/raw/x'), true);
  assert.equal(fn('/PHOTOS/RAW'), true);
  assert.equal(fn('/photos/cooked'), false);
  assert.equal(compileExcludes(['ÄRGER'], { caseInsensitive: true })('/x/ärger'), true);
  assert.equal(compileExcludes(['ÄRGER'])('/x/ärger'), false);
});

test('malformed patterns are rejected with INVALID_ARGUMENT', () => {
  for (const bad of ['[', 'a[', '[]', '[]a]', '[^]', '[a-]', '[-a]', 'x\\', '[a', 'dir/[z-', '!*[']) {
    assert.throws(
      () => compileExcludes(['ok', bad]),
      (e: unknown) => isCairnError(e, 'INVALID_ARGUMENT') && (e as Error).message.includes(bad),
      `pattern ${bad} should be invalid`,
    );
  }
  for (const good of ['[\\]]', '[\\-a]', ']', 'a]b', '[!]', '**', 'x\\\\', '[a*]']) {
    assert.doesNotThrow(() => compileExcludes([good]), `pattern ${good} should be valid`);
  }
});

test('globMatch follows Go filepath.Match', () => {
  const cases: [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['*', 'abc', true],
    ['*c', 'abc', true],
    ['a*', 'a', true],
    ['a*', 'ab/c', false], // never crosses a separator
    ['a*b*c*d*e*/f', 'axbxcxdxe/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[b-d]', 'abc', true],
    ['ab[e-g]', 'abc', false],
    ['ab[^c]', 'abc', false],
    ['ab[^b-d]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'ab', false],
    ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true],
    ['a???b', 'a☺b', false],
    ['a[^a][^a][^a]b', 'a☺b', false],
    ['[a-ζ]*', 'α', true],
    ['*[a-ζ]', 'A', false],
    ['a?b', 'a/b', false],
    ['a*b', 'a/b', false],
    ['[\\]a]', ']', true],
    ['[\\-]', '-', true],
    ['[x\\-]', 'x', true],
    ['[x\\-]', '-', true],
    ['[x\\-]', 'z', false],
    ['*x', 'xxx', true],
    ['', '', true],
    ['', 'a', false],
  ];
  for (const [p, s, want] of cases) {
    assert.equal(isValidGlob(p), true, `valid: ${p}`);
    assert.equal(globMatch(p, s), want, `globMatch(${p}, ${s})`);
  }
});

test('cleanPath matches Go filepath.Clean', () => {
  const cases: [string, string][] = [
    ['', '.'],
    ['/', '/'],
    ['a/b/', 'a/b'],
    ['//a//b//', '/a/b'],
    ['./a', 'a'],
    ['a/./b', 'a/b'],
    ['a/../b', 'b'],
    ['a/b/../../..', '..'],
    ['../a', '../a'],
    ['/../a', '/a'],
    ['/a/b/../c/./d/', '/a/c/d'],
    ['..', '..'],
    ['a/..', '.'],
  ];
  for (const [inp, want] of cases) assert.equal(cleanPath(inp), want, `Clean(${inp})`);
});

test('expandEnv follows os.Expand with restic mapping', () => {
  const env = { HOME: '/home/u', X_1: 'v', EMPTY: '' };
  const cases: [string, string][] = [
    ['$HOME/.cache', '/home/u/.cache'],
    ['${HOME}/.cache', '/home/u/.cache'],
    ['${HOME}x', '/home/ux'],
    ['$HOMEx', ''],
    ['$X_1-y', 'v-y'],
    ['$UNSET/a', '/a'],
    ['a$$b', 'a$b'],
    ['${$}', '$'],
    ['cost$', 'cost$'], // a trailing dollar stays
    ['a$-b', 'ab'], // special one-character names expand (to "" here)
    ['a$/b', 'a$/b'], // dollar without a name stays
    ['a${}b', 'ab'], // bad syntax is eaten
    ['a${HOME', 'aHOME'], // "${" without "}" is eaten
    ['$EMPTY|', '|'],
  ];
  for (const [inp, want] of cases) assert.equal(expandEnv(inp, env), want, `expand(${inp})`);
});

test('exclude files: comments, blanks, trimming, CRLF, BOM, env', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cairn-exclude-'));
  try {
    const env = { CAIRN_T: '/tmp/t' };
    const text = '# comment\n\n   *.tmp  \r\n\t$CAIRN_T/cache\n  # indented comment\n\u00a0/x\u0085\nlast';
    assert.deepEqual(parseExcludeText(text, env), ['*.tmp', '/tmp/t/cache', '/x', 'last']);

    const f1 = path.join(dir, 'utf8-bom');
    await writeFile(f1, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('a\n#b\nc\n')]));
    assert.deepEqual(await readExcludeFile(f1, env), ['a', 'c']);

    const f2 = path.join(dir, 'utf16le');
    await writeFile(f2, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('x\r\n${CAIRN_T}\r\n', 'utf16le')]));
    assert.deepEqual(await readExcludeFile(f2, env), ['x', '/tmp/t']);

    const f3 = path.join(dir, 'utf16be');
    const be = Buffer.from('é\n', 'utf16le');
    be.swap16();
    await writeFile(f3, Buffer.concat([Buffer.from([0xfe, 0xff]), be]));
    assert.deepEqual(await readExcludeFile(f3, env), ['é']);

    await assert.rejects(readExcludeFile(path.join(dir, 'missing')), (e: unknown) => isCairnError(e, 'NOT_FOUND'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
