/**
 * The compact restore plan: its storage (chunked columns, the name store, the blob table), what
 * an entry keeps of its tree node (compared with what the restore computed from the whole node
 * before), its size per file, and planRestore's walk (order, filters, hard links, shared blobs).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { isCairnError } from '../core/errors.js';
import { chmodBitsFromGo } from '../format/mode.js';
import { parseTime } from '../format/time.js';
import type { TreeNode } from '../format/tree.js';
import { BlobTable } from './blob-table.js';
import { ByteStore, Column } from './columns.js';
import { Kind, RestorePlan, relString } from './plan.js';
import { dirsDeepestFirst, planRestore, type BlobLoc, type RestorerRepo } from './restorer.js';

const T = '2024-01-02T03:04:05.123456789Z';

function id(n: number | string, salt = ''): string {
  return createHash('sha256').update(`${salt}${n}`).digest('hex');
}

function node(name: string | Buffer, extra: Partial<TreeNode> = {}): TreeNode {
  return { name: typeof name === 'string' ? Buffer.from(name) : name, type: 'file', mode: 0o644, mtime: T, atime: T, ctime: T, uid: 1000, gid: 1000, content: [], ...extra };
}

function dirNode(name: string, subtree: string, extra: Partial<TreeNode> = {}): TreeNode {
  return node(name, { type: 'dir', mode: 0o755 | 0x80000000, content: null, subtree, ...extra });
}

describe('plan storage', () => {
  it('Column: values across chunks and the growth of the first chunk', () => {
    type Numbers = Uint8Array | Uint32Array | Int32Array | Float64Array;
    const kinds: Array<new (n: number) => Numbers> = [Uint8Array, Uint32Array, Int32Array, Float64Array];
    for (const make of kinds) {
      const c = new Column<Numbers>(make);
      const n = 70_000;
      const value = (i: number) => (make === Float64Array ? i * 1.5 - 7 : make === Int32Array ? i - 35_000 : make === Uint8Array ? i & 0xff : i * 3);
      for (let i = 0; i < n; i++) {
        c.reserve(i + 1);
        c.set(i, value(i));
      }
      for (let i = 0; i < n; i++) assert.equal(c.get(i), value(i), `${make.name}[${i}]`);
      // room for n (a few chunks), not a power of two beyond it
      assert.ok(c.byteLength <= (n + 8192) * new make(0).BYTES_PER_ELEMENT, `${make.name}: ${c.byteLength} bytes`);
      const small = new Column<Numbers>(make);
      small.reserve(3);
      assert.ok(small.byteLength <= 64 * new make(0).BYTES_PER_ELEMENT);
    }
  });

  it('ByteStore: strings across chunk ends, an oversized one, views of what was added', () => {
    const s = new ByteStore();
    const added: Array<{ pos: number; data: Buffer }> = [];
    for (let i = 0; i < 40_000; i++) {
      const data = Buffer.from(`name-${i}-${'x'.repeat(i % 97)}`);
      added.push({ pos: s.add(data), data });
      if (i === 20_000) {
        const big = Buffer.alloc((1 << 20) + 5, 0x61);
        added.push({ pos: s.add(big), data: big });
      }
    }
    added.push({ pos: s.add(Buffer.alloc(0)), data: Buffer.alloc(0) });
    for (const a of added) assert.ok(s.view(a.pos, a.data.length).equals(a.data));
  });

  it('BlobTable: dedup by ID, refs in order, packs in order of first use with blobs by offset', () => {
    const t = new BlobTable();
    const n = 50_000;
    const loc = (i: number): BlobLoc => ({ packId: id(i % 7, 'pack'), offset: (n - i) * 100, length: 90, ...(i % 3 === 0 ? { uncompressedLength: 500 + i } : {}) });
    for (let i = 0; i < n; i++) {
      assert.equal(t.find(id(i)), -1);
      assert.equal(t.add(id(i), loc(i)), i);
      t.addRef(i, i, 0);
    }
    for (let i = 0; i < n; i += 997) assert.equal(t.find(id(i)), i);
    // another ref of blob 5: after its first one
    const r = t.addRef(5, 42, 4096);
    assert.throws(() => t.add(id(5), loc(5)), /already/);
    for (const bad of ['', 'xyz', id(1).toUpperCase(), id(1).slice(1), `${id(1).slice(0, 63)}g`]) assert.equal(t.find(bad), -1, bad);
    assert.throws(() => t.add('not an id', loc(0)), /not a blob ID/);
    // a miss remembered by find() is not used for another ID's add()
    assert.equal(t.find(id('m1')), -1);
    assert.equal(t.find(id(3)), 3);
    const m1 = t.add(id('m1'), loc(1));
    assert.equal(t.id(m1), id('m1'));
    assert.equal(t.find(id('m1')), m1);
    t.finish();

    assert.equal(t.firstRef(5), 5);
    assert.equal(t.nextRef(5), r);
    assert.equal(t.refEntryOf(r), 42);
    assert.equal(t.refOffsetOf(r), 4096);
    assert.equal(t.nextRef(r), -1);
    assert.equal(t.firstRef(m1), -1);
    assert.equal(t.id(12_345), id(12_345));
    assert.deepEqual(t.loc(3), loc(3));
    assert.deepEqual(t.loc(4), loc(4));
    assert.equal(t.plainLength(3), 503);
    assert.equal(t.plainLength(4), 90 - 32);
    assert.equal(t.packCount, 7);
    let total = 0;
    for (let p = 0; p < t.packCount; p++) {
      assert.equal(t.packId(p), id(p, 'pack'));
      const blobs = [...t.blobsOf(p)];
      total += blobs.length;
      for (const b of blobs) assert.equal(t.packOf(b), p);
      for (let k = 1; k < blobs.length; k++) assert.ok(t.offsetOf(blobs[k - 1]!) < t.offsetOf(blobs[k]!) || blobs[k - 1]! < blobs[k]!);
    }
    assert.equal(total, n + 1);
    assert.throws(() => t.add(id('late'), loc(0)), /finished/);
  });

  it('blobsOf needs a finished table', () => {
    const t = new BlobTable();
    t.add(id(1), { packId: id(1, 'p'), offset: 0, length: 40 });
    assert.throws(() => t.blobsOf(0), /not finished/);
  });
});

describe('plan entries', () => {
  it('paths: dir nodes, names (any bytes), depth', () => {
    const plan = new RestorePlan();
    const a = plan.addDirNode(-1, Buffer.from('a'));
    const b = plan.addDirNode(a, Buffer.from([0xff, 0x62])); // not UTF-8
    const ea = plan.addEntry(a, dirNode('a', id(1)));
    const eb = plan.addEntry(b, dirNode('\xffb', id(2)));
    const f = plan.addEntry(b, node('f'));
    const top = plan.addEntry(-1, node('top'));
    plan.finish();
    const E = plan.entries;
    assert.deepEqual(E.rel(ea), [Buffer.from('a')]);
    assert.deepEqual(E.rel(eb), [Buffer.from('a'), Buffer.from([0xff, 0x62])]);
    assert.deepEqual(E.rel(f), [Buffer.from('a'), Buffer.from([0xff, 0x62]), Buffer.from('f')]);
    assert.deepEqual(E.parentRel(f), [Buffer.from('a'), Buffer.from([0xff, 0x62])]);
    assert.deepEqual(E.rel(top), [Buffer.from('top')]);
    assert.deepEqual(E.parentRel(top), []);
    assert.deepEqual([E.depth(ea), E.depth(eb), E.depth(f), E.depth(top)], [1, 2, 3, 1]);
    assert.equal(E.relString(f), relString(E.rel(f)));
    assert.equal(E.relString(f), 'a/\ufffdb/f');
    // the arrays handed out are the caller's
    E.rel(f).pop();
    assert.equal(E.rel(f).length, 3);
    assert.deepEqual([E.kind(ea), E.kind(f)], [Kind.dir, Kind.file]);
  });

  it('metadata: what the restore computed from the whole tree node before', () => {
    const nodes: TreeNode[] = [
      node('plain'),
      node('setuid', { mode: 0o755 | 0x00800000, uid: 4294967294, gid: 0 }),
      node('old', { atime: '0001-01-01T00:00:00Z', mtime: '1969-12-31T23:59:59.999999999Z' }),
      node('zone', { atime: '2023-06-15T12:34:56.1-05:30', mtime: '9999-12-31T23:59:59.999999999+14:00' }),
      node('xattrs', { extendedAttributes: [{ name: 'user.a', value: Buffer.from('1') }, { name: 'user.nil', value: null }, { name: 'user.b', value: Buffer.alloc(0) }] }),
      node('nil-xattrs', { extendedAttributes: [{ name: 'user.nil', value: null }] }),
      node('link', { type: 'symlink', mode: 0o777 | 0x08000000, linktarget: '../ziel/ü' }),
      node('dev', { type: 'dev', mode: 0o660 | 0x04000000, device: 0x10305n }),
      node('chr', { type: 'chardev', mode: 0o620 | 0x04000000 | 0x00200000, device: (1n << 40n) + 7n }),
      node('fifo', { type: 'fifo', mode: 0o640 | 0x02000000 }),
      node('sock', { type: 'socket', mode: 0o755 | 0x01000000 }),
      node('sized', { size: 2 ** 40 + 1 }),
    ];
    const plan = new RestorePlan();
    const idx = nodes.map((n) => plan.addEntry(-1, n));
    plan.finish();
    const E = plan.entries;
    const FS: Record<string, string> = { file: 'file', symlink: 'symlink', dev: 'blockdev', chardev: 'chardev', fifo: 'fifo', socket: 'socket' };
    nodes.forEach((n, k) => {
      const i = idx[k]!;
      const want: Record<string, unknown> = {
        type: FS[n.type],
        mode: chmodBitsFromGo(n.mode),
        uid: n.uid,
        gid: n.gid,
        atimeNs: parseTime(n.atime).ns,
        mtimeNs: parseTime(n.mtime).ns,
      };
      const xattrs = n.extendedAttributes?.filter((x) => x.value !== null).map((x) => ({ name: x.name, value: x.value! }));
      if (xattrs?.length) want.xattrs = xattrs;
      assert.deepEqual({ ...E.meta(i) }, want, n.name.toString());
      assert.equal(E.mode(i), n.mode);
      assert.equal(E.size(i), n.size ?? 0);
      assert.deepEqual(E.owner(i), { uid: n.uid, gid: n.gid });
      assert.equal(E.linkTo(i), -1);
    });
    assert.deepEqual(E.linkTarget(idx[6]!), Buffer.from('../ziel/ü', 'utf8'));
    assert.equal(E.device(idx[7]!), 0x10305n);
    assert.equal(E.device(idx[8]!), (1n << 40n) + 7n);
    assert.deepEqual(
      idx.map((i) => E.kind(i)),
      [Kind.file, Kind.file, Kind.file, Kind.file, Kind.file, Kind.file, Kind.symlink, Kind.dev, Kind.chardev, Kind.fifo, Kind.socket, Kind.file],
    );
  });

  it('an unknown type and an unparsable time are kept for the restore to report, not planning errors', () => {
    const plan = new RestorePlan();
    const odd = plan.addEntry(-1, node('odd', { type: 'whiteout' }));
    const proto = plan.addEntry(-1, node('proto', { type: 'constructor' }));
    const bad = plan.addEntry(-1, node('bad', { mtime: '2023-02-29T00:00:00Z' }));
    plan.finish();
    assert.equal(plan.entries.kind(odd), Kind.unknown);
    assert.equal(plan.entries.typeName(odd), 'whiteout');
    assert.equal(plan.entries.kind(proto), Kind.unknown);
    assert.equal(plan.entries.typeName(proto), 'constructor');
    assert.throws(() => plan.entries.meta(bad), (e) => isCairnError(e, 'CORRUPT') && /day out of range/.test((e as Error).message));
  });

  it('equal lists of extended attributes are stored once, as copies', () => {
    const plan = new RestorePlan();
    const label = () => [{ name: 'security.selinux', value: Buffer.from('system_u:object_r:var_t:s0\0') }];
    const first = label();
    const a = plan.addEntry(-1, node('a', { extendedAttributes: first }));
    const b = plan.addEntry(-1, node('b', { extendedAttributes: label() }));
    const c = plan.addEntry(-1, node('c', { extendedAttributes: [{ name: 'security.selinux', value: Buffer.from('other') }] }));
    first[0]!.value.fill(0); // the tree's buffers are not the plan's
    plan.finish();
    const E = plan.entries;
    assert.equal(E.meta(a).xattrs, E.meta(b).xattrs);
    assert.deepEqual(E.meta(a).xattrs, label());
    assert.deepEqual(E.meta(c).xattrs, [{ name: 'security.selinux', value: Buffer.from('other') }]);
  });

  it('content: refs per file in order, shared blobs, hard links with their own content IDs', () => {
    const plan = new RestorePlan();
    const pack = id(0, 'pack');
    const f1 = plan.addEntry(-1, node('f1'));
    const b1 = plan.blobs.add(id(1), { packId: pack, offset: 0, length: 132 });
    const b2 = plan.blobs.add(id(2), { packId: pack, offset: 132, length: 1032 });
    let off = plan.addContent(f1, b1, 0);
    off += plan.addContent(f1, b2, off);
    assert.equal(off, 100 + 1000);
    const f2 = plan.addEntry(-1, node('f2'));
    plan.addContent(f2, plan.blobs.find(id(2)), 0);
    const l = plan.addEntry(-1, node('l'));
    plan.setLink(l, f1, [id(1), id(2)]);
    // a link whose node lists other content (the file changed during the backup) keeps its list
    const l2 = plan.addEntry(-1, node('l2'));
    plan.setLink(l2, f1, [id(9)]);
    // refs of one file must be added one after the other
    assert.throws(() => plan.addContent(f1, b1, 1100), /not contiguous/);
    plan.finish();
    const E = plan.entries;
    assert.deepEqual(plan.contentIds(f1), [id(1), id(2)]);
    assert.deepEqual(plan.contentIds(f2), [id(2)]);
    assert.deepEqual(plan.contentIds(l), [id(1), id(2)]);
    assert.equal(E.linkContent(l), undefined);
    assert.deepEqual(plan.contentIds(l2), [id(9)]);
    assert.equal(E.linkTo(l2), f1);
    assert.deepEqual([E.refCountOf(f1), E.refCountOf(f2), E.refCountOf(l)], [2, 1, 0]);
    assert.equal(E.linkTo(l), f1);
    const B = plan.blobs;
    const refsOf = (b: number) => {
      const out: Array<[number, number]> = [];
      for (let r = B.firstRef(b); r >= 0; r = B.nextRef(r)) out.push([B.refEntryOf(r), B.refOffsetOf(r)]);
      return out;
    };
    assert.deepEqual(refsOf(b2), [
      [f1, 100],
      [f2, 0],
    ]);
  });

  it('holds well under 200 bytes per file of one blob (the objects it replaced took over 1 KiB)', () => {
    const plan = new RestorePlan();
    const n = 100_000;
    let dir = -1;
    for (let i = 0; i < n; i++) {
      if (i % 500 === 0) {
        dir = plan.addDirNode(-1, Buffer.from(`d${i / 500}`));
        plan.addEntry(dir, dirNode(`d${i / 500}`, id(i, 'tree')));
      }
      const e = plan.addEntry(dir, node(`f${String(i).padStart(7, '0')}.txt`, { size: 1000 }));
      const b = plan.blobs.add(id(i), { packId: id(Math.floor(i / 5000), 'pack'), offset: (i % 5000) * 1032, length: 1032 });
      plan.addContent(e, b, 0);
    }
    plan.finish();
    const perFile = plan.bytesHeld / n;
    assert.ok(perFile < 200, `${perFile.toFixed(0)} bytes per file`);
  });
});

/** A repository of in-memory trees; data blobs are "stored" in packs by their ID's first digit. */
function treeRepo(trees: Map<string, TreeNode[]>, sizes: Map<string, number>): RestorerRepo {
  return {
    loadTree: async (t) => {
      const nodes = trees.get(t);
      if (!nodes) throw new Error(`no tree ${t}`);
      return nodes;
    },
    lookupData: (blob) => {
      const size = sizes.get(blob);
      if (size === undefined) return [];
      return [{ packId: id(blob[0]!, 'pack'), offset: parseInt(blob.slice(0, 6), 16) * 10, length: size + 32 }];
    },
    readPack: async () => Buffer.alloc(0),
    openBlob: () => Buffer.alloc(0),
  };
}

describe('planRestore', () => {
  // /            (root)
  //   a/         x (2 blobs), y (shares x's second blob), sub/ (z), ln -> x (hard link)
  //   b/         w, s (symlink)
  //   e          (empty file)
  const blob = (n: number) => id(n, 'blob');
  const sizes = new Map([1, 2, 3, 4].map((n) => [blob(n), 100 * n] as [string, number]));
  const hard = { links: 2, inode: 77n, deviceId: 5n };
  const trees = new Map<string, TreeNode[]>([
    ['root', [dirNode('a', 'ta'), dirNode('b', 'tb'), node('e')]],
    ['ta', [dirNode('sub', 'tsub'), node('x', { content: [blob(1), blob(2)], size: 300, ...hard }), node('y', { content: [blob(2)], size: 200 }), node('ln', { content: [blob(1), blob(2)], size: 300, ...hard })]],
    ['tsub', [node('z', { content: [blob(3)], size: 300 })]],
    ['tb', [node('w', { content: [blob(4)], size: 400 }), node('s', { type: 'symlink', linktarget: 'w', content: null })]],
  ]);
  const repo = treeRepo(trees, sizes);
  const paths = (plan: RestorePlan) => Array.from({ length: plan.entries.count }, (_, i) => plan.entries.relString(i));

  it('every entry in tree order, blobs once per pack sorted by offset, hard links to their first name', async () => {
    const plan = await planRestore(repo, 'root', {});
    const E = plan.entries;
    assert.deepEqual(paths(plan), ['a', 'a/sub', 'a/sub/z', 'a/x', 'a/y', 'a/ln', 'b', 'b/w', 'b/s', 'e']);
    assert.equal(plan.totalFiles, 5); // z, x, y, w, e (ln is a link)
    assert.equal(plan.totalBytes, 300 + 300 + 200 + 400);
    const at = (p: string) => paths(plan).indexOf(p);
    assert.equal(E.linkTo(at('a/ln')), at('a/x'));
    assert.deepEqual(plan.contentIds(at('a/ln')), [blob(1), blob(2)]);
    assert.deepEqual(plan.contentIds(at('a/y')), [blob(2)]);
    assert.equal(E.kind(at('b/s')), Kind.symlink);
    assert.equal(plan.blobs.count, 4);
    for (let p = 0; p < plan.blobs.packCount; p++) {
      const bs = [...plan.blobs.blobsOf(p)].map((b) => plan.blobs.offsetOf(b));
      assert.deepEqual(bs, [...bs].sort((x, y) => x - y));
    }
    assert.deepEqual(
      [...dirsDeepestFirst(plan)].map((i) => E.relString(i)),
      ['a/sub', 'a', 'b'],
    );
  });

  it('filters: excluded subtrees are not walked; a directory walked through comes after what it holds', async () => {
    const seen: string[] = [];
    const plan = await planRestore(repo, 'root', {
      filter: (p, n) => {
        seen.push(p);
        if (p === '/b') return 'exclude';
        if (p.startsWith('/a/sub')) return 'include';
        return n.type === 'dir' ? 'descend' : 'exclude';
      },
    });
    assert.deepEqual(paths(plan), ['a/sub', 'a/sub/z', 'a']);
    assert.ok(!seen.includes('/b/w'));
    assert.equal(plan.totalFiles, 1);
    assert.equal(plan.blobs.count, 1);
  });

  it('a blob missing from the index fails planning with the file path', async () => {
    const broken = treeRepo(new Map([['root', [node('lost', { content: [id('nowhere')], size: 5 })]]]), sizes);
    await assert.rejects(planRestore(broken, 'root', {}), (e) => isCairnError(e, 'CORRUPT') && /of \/lost is not in the index/.test((e as Error).message));
  });
});
