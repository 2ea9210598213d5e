/** sameNode: equal exactly when encodeTree writes the two nodes identically. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeTree, type TreeNode } from '../format/tree.js';
import { sameNode } from './node.js';

const ID = 'ab'.repeat(32);

function file(): TreeNode {
  return {
    name: Buffer.from('a.txt'),
    type: 'file',
    mode: 0o644,
    mtime: '2026-11-22T10:00:00.123456789+01:00',
    atime: '2026-11-22T10:00:00.123456789+01:00',
    ctime: '2026-11-22T10:00:01+01:00',
    uid: 1000,
    gid: 1000,
    user: 'u',
    group: 'g',
    inode: 42n,
    deviceId: 7n,
    size: 12,
    links: 1,
    content: [ID],
    extendedAttributes: [{ name: 'user.x', value: Buffer.from('1') }],
  };
}

describe('sameNode', () => {
  it('holds for equal nodes, and for absent against zero or empty where the encoder writes neither', () => {
    assert.ok(sameNode(file(), file()));
    const a = { ...file(), user: undefined, inode: undefined, extendedAttributes: undefined };
    const b = { ...file(), user: '', inode: 0n, extendedAttributes: [] };
    assert.ok(sameNode(a, b));
    assert.equal(encodeTree([a]).toString(), encodeTree([b]).toString());
    assert.ok(sameNode({ ...file(), size: 12 }, { ...file(), size: 12n as unknown as number }));
    // a mode with ModeDir built by JS bit operations is a negative int32: the same uint32
    const dir = { ...file(), type: 'dir', mode: (1 << 31) | 0o755, content: null, size: undefined };
    assert.ok(dir.mode < 0);
    assert.ok(sameNode(dir, { ...dir, mode: dir.mode >>> 0 }));
    assert.equal(encodeTree([dir]).toString(), encodeTree([{ ...dir, mode: dir.mode >>> 0 }]).toString());
  });

  it('fails for every field the encoder writes', () => {
    const changes: Array<Partial<TreeNode>> = [
      { name: Buffer.from('b.txt') },
      { type: 'symlink' },
      { mode: 0o600 },
      { mtime: '2026-11-22T10:00:00.123456788+01:00' },
      { atime: '2026-11-22T09:00:00.123456789Z' },
      { ctime: '2026-11-22T10:00:02+01:00' },
      { uid: 1 },
      { gid: 1 },
      { user: 'v' },
      { group: 'h' },
      { inode: 43n },
      { deviceId: 8n },
      { size: 13 },
      { links: 2 },
      { linktarget: 'x' },
      { device: 5n },
      { content: [ID, ID] },
      { content: ['cd'.repeat(32)] },
      { content: null },
      { subtree: ID },
      { error: 'oops' },
      { extendedAttributes: [{ name: 'user.x', value: Buffer.from('2') }] },
      { extendedAttributes: [{ name: 'user.y', value: Buffer.from('1') }] },
      { extendedAttributes: [{ name: 'user.x', value: null }] },
    ];
    for (const c of changes) {
      const other = { ...file(), ...c };
      assert.ok(!sameNode(file(), other), JSON.stringify(Object.keys(c)));
      assert.ok(!sameNode(other, file()), JSON.stringify(Object.keys(c)));
      assert.notEqual(encodeTree([file()]).toString(), encodeTree([other]).toString(), 'the encoder tells them apart too');
    }
  });
});
