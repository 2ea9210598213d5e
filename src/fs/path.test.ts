import { test } from 'node:test';
import assert from 'node:assert/strict';
import { baseName, dirName, displayPath, isAbsolutePath, joinComponents, joinPath, splitPath, utf8SeqLen } from './path.js';

const b = (s: string) => Buffer.from(s);

test('joinPath joins byte paths with single slashes', () => {
  assert.deepEqual(joinPath('/a', 'b', b('c')), b('/a/b/c'));
  assert.deepEqual(joinPath('/a/', '/b'), b('/a/b'));
  assert.deepEqual(joinPath('/', 'x'), b('/x'));
  assert.deepEqual(joinPath('/a', ''), b('/a'));
  assert.deepEqual(joinPath('rel', 'x'), b('rel/x'));
  const bad = Buffer.from([0xff, 0x00 + 0x41]);
  assert.deepEqual(joinPath('/d', bad), Buffer.concat([b('/d/'), bad]));
});

test('splitPath, baseName, dirName', () => {
  assert.deepEqual(splitPath('/a//b/').map(String), ['a', 'b']);
  assert.deepEqual(splitPath('').length, 0);
  assert.deepEqual(baseName('/a/b'), b('b'));
  assert.deepEqual(baseName('/a/b/'), b('b'));
  assert.deepEqual(baseName('/'), b(''));
  assert.deepEqual(dirName('/a/b'), b('/a'));
  assert.deepEqual(dirName('/a'), b('/'));
  assert.deepEqual(dirName('a'), b('.'));
  assert.deepEqual(dirName('/a//b'), b('/a'));
  assert.deepEqual(dirName('a/b/'), b('a'));
  assert.equal(isAbsolutePath('/x'), true);
  assert.equal(isAbsolutePath(b('x')), false);
});

test('displayPath escapes invalid UTF-8 bytes only', () => {
  assert.equal(displayPath(b('/ok/é☃')), '/ok/é☃');
  assert.equal(displayPath(Buffer.from([0x2f, 0x61, 0xff, 0xc3, 0xa9, 0xc3])), '/a\\xffé\\xc3');
  // surrogate code points and overlong forms are invalid
  assert.equal(displayPath(Buffer.from([0xed, 0xa0, 0x80])), '\\xed\\xa0\\x80');
  assert.equal(displayPath(Buffer.from([0xc0, 0xaf])), '\\xc0\\xaf');
  assert.equal(utf8SeqLen(Buffer.from('😀'), 0), 4);
  assert.equal(utf8SeqLen(Buffer.from([0xf4, 0x90, 0x80, 0x80]), 0), 0); // > U+10FFFF
});

test('joinComponents gives what joinPath gives for plain components (any count, roots with and without a slash)', () => {
  const names = [b('a'), b('bb'), Buffer.from([0xff, 0x80]), b('d e'), b('.hidden')];
  for (const root of [b('/'), b('/t'), b('/t/'), b('/x/y')]) {
    for (let count = 0; count <= names.length; count++) {
      assert.deepEqual(joinComponents(root, names, count), joinPath(root, ...names.slice(0, count)), `${root} ${count}`);
    }
    assert.deepEqual(joinComponents(root, names), joinPath(root, ...names));
  }
  const root = b('/t');
  assert.equal(joinComponents(root, []), root, 'no components: the root itself');
});
