import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { encodeTree, decodeTree, type TreeNode } from './tree.js';
import { scanTreeRefs, scanTreeRefsFast } from './tree-refs.js';
import { isCairnError } from '../core/errors.js';

const id = (s: string) => createHash('sha256').update(s).digest('hex');
const T = '2024-01-02T03:04:05.123456789+01:00';

function node(name: string, type: string, extra: Partial<TreeNode> = {}): TreeNode {
  return { name: Buffer.from(name), type, mode: 0o644, mtime: T, atime: T, ctime: T, uid: 1, gid: 2, content: null, ...extra };
}

function refs(fn: typeof scanTreeRefs, buf: Buffer) {
  const out: string[] = [];
  fn(buf, { content: (x) => out.push(`c:${x}`), subtree: (x) => out.push(`s:${x}`) });
  return out.sort();
}

function viaDecode(buf: Buffer) {
  const out: string[] = [];
  for (const n of decodeTree(buf)) {
    if (n.type === 'file') for (const c of n.content ?? []) out.push(`c:${c}`);
    else if (n.type === 'dir' && n.subtree) out.push(`s:${n.subtree}`);
  }
  return out.sort();
}

test('tree references: the fast scanner, JSON.parse and decodeTree agree', () => {
  const nodes: TreeNode[] = [
    node('a "content":["' + id('x') + '"] \\ tricky', 'file', { content: [id('1'), id('2'), id('1')], size: 3 }),
    node('dir', 'dir', { subtree: id('sub'), mode: 0x800001ed }),
    node('empty', 'file', { content: [] }),
    node('link', 'symlink', { linktarget: '"subtree":"' + id('no') + '"' }),
    node('x', 'file', { content: [id('3')], extendedAttributes: [{ name: 'user.a', value: Buffer.from('[{}]"') }, { name: 'user.b', value: null }] }),
    node('dev', 'chardev', { device: 259n }),
    node('ends with \\', 'file', { content: [id('9')] }),
    node('q\\"\\\\"', 'dir', { subtree: id('q') }),
  ];
  const canonical = encodeTree(nodes);
  const expected = viaDecode(canonical);
  assert.equal(expected.length, 7);
  assert.deepEqual(refs(scanTreeRefsFast, canonical), expected);
  assert.deepEqual(refs(scanTreeRefs, canonical), expected);
  // other shapes: whitespace, key order, upper-case keys and IDs (Go accepts them), null content
  const doc = JSON.parse(canonical.toString());
  const pretty = Buffer.from(JSON.stringify(doc, null, 2));
  assert.deepEqual(refs(scanTreeRefsFast, pretty), expected);
  const upper = Buffer.from(JSON.stringify({ Nodes: doc.nodes.map((n: Record<string, unknown>) => ({ ...n, Content: n.content, content: undefined, subtree: typeof n.subtree === 'string' ? (n.subtree as string).toUpperCase() : n.subtree })) }));
  assert.deepEqual(refs(scanTreeRefsFast, upper), viaDecode(upper));
  assert.deepEqual(refs(scanTreeRefsFast, Buffer.from('{"nodes":null}\n')), []);
  assert.deepEqual(refs(scanTreeRefsFast, Buffer.from('{"nodes":[]}\n')), []);
  // damage is an error on both paths
  for (const bad of ['{"nodes":[{"type":"file","content":["xyz"]}]}', '{"nodes":[{"type":"dir","subtree":42}]}', '{"nodes":{}}', 'not json']) {
    assert.throws(() => scanTreeRefsFast(Buffer.from(bad), { content() {}, subtree() {} }), (e) => isCairnError(e, 'CORRUPT'), bad);
  }
});
