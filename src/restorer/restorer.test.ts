/**
 * executeRestore's content phase against a fake repository: blobs of many files spread over
 * interleaved packs, opened and written out of order, with few open files allowed; damaged blobs
 * fail only their files; hard links are made once their target is complete.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CairnError } from '../core/errors.js';
import type { TreeNode } from '../format/tree.js';
import { Kind, RestorePlan } from './plan.js';
import { executeRestore, type BlobLoc, type RestorerRepo } from './restorer.js';

let root = '';
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-restorer-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const T = '2024-01-02T03:04:05.123456789Z';

function fileNode(name: string, size: number, extra: Partial<TreeNode> = {}): TreeNode {
  return { name: Buffer.from(name), type: 'file', mode: 0o640, mtime: T, atime: T, ctime: T, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, size, content: [], ...extra };
}

function blobOf(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

/** A plan of `files` files of `perFile` blobs each, the blobs spread round-robin over `packs` packs (`gap` bytes apart). */
function makePlan(files: number, perFile: number, packs: number, finish = true, gap = 0): { plan: RestorePlan; plain: Map<string, Buffer>; contents: Buffer[] } {
  const plan = new RestorePlan();
  plan.totalFiles = files;
  const plain = new Map<string, Buffer>();
  const contents: Buffer[] = [];
  const packOffsets = new Array<number>(packs).fill(0);
  const d = plan.addDirNode(-1, Buffer.from('d'));
  plan.addEntry(d, { ...fileNode('d', 0), type: 'dir', mode: 0o755 | 0x80000000, content: null });
  let k = 0;
  for (let f = 0; f < files; f++) {
    const parts: Buffer[] = [];
    for (let j = 0; j < perFile; j++) parts.push(blobOf(k + j, 100 + (((k + j) * 37) % 900)));
    const size = parts.reduce((a, p) => a + p.length, 0);
    const idx = plan.addEntry(d, fileNode(`f${f}`, size));
    let off = 0;
    for (const data of parts) {
      const id = createHash('sha256').update(data).digest('hex');
      plain.set(id, data);
      const p = k % packs;
      const packId = `${p}`.padStart(64, '0');
      const b = plan.blobs.add(id, { packId, offset: packOffsets[p]!, length: data.length + 32 });
      packOffsets[p]! += data.length + 32 + gap;
      off += plan.addContent(idx, b, off);
      k++;
    }
    plan.totalBytes += off;
    contents.push(Buffer.concat(parts));
  }
  if (finish) plan.finish();
  return { plan, plain, contents };
}

function fakeRepo(plain: Map<string, Buffer>, opts: { fail?: Set<string>; onOpen?: () => void } = {}): RestorerRepo {
  return {
    loadTree: async () => [],
    lookupData: () => [],
    readPack: async (_packId, _offset, length) => Buffer.alloc(length),
    openBlob: async (id: string, _loc: BlobLoc, _sealed: Uint8Array, out?: Buffer) => {
      opts.onOpen?.();
      await new Promise((r) => setImmediate(r));
      if (opts.fail?.has(id)) throw new CairnError('CORRUPT', `blob ${id}: ciphertext verification failed`);
      const p = plain.get(id)!;
      if (out) {
        p.copy(out);
        return out.subarray(0, p.length);
      }
      return p;
    },
  };
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

describe('executeRestore: content', () => {
  it('writes every file from interleaved packs with at most a few files open', async () => {
    const { plan, plain, contents } = makePlan(60, 5, 7);
    const target = path.join(root, 'a');
    const base = openFds();
    let most = 0;
    const repo = fakeRepo(plain, { onOpen: () => (most = Math.max(most, openFds() - base)) });
    const s = await executeRestore(repo, plan, { target, maxOpenFiles: 3, packConcurrency: 3, blobConcurrency: 4 });
    assert.equal(s.errors, 0, JSON.stringify(s));
    assert.equal(s.files, 60);
    for (let f = 0; f < 60; f++) {
      const p = path.join(target, 'd', `f${f}`);
      assert.ok(fs.readFileSync(p).equals(contents[f]!), `f${f}`);
      assert.equal(fs.statSync(p).mode & 0o777, 0o640);
      assert.equal(fs.statSync(p).mtime.toISOString(), '2024-01-02T03:04:05.123Z');
    }
    // idle handles ≤ 3, plus those of writes in flight (≤ blobConcurrency), plus the pack readers
    assert.ok(most <= 3 + 4 + 3, `open files seen: ${most}`);
  });

  it('readAhead: a pack reader reads its next range while the current one is restored; a failed read fails only its files', async () => {
    // blobs 2 MiB apart: every blob is a range of its own
    const { plan, plain, contents } = makePlan(12, 2, 1, true, 2 << 20);
    for (const readAhead of [false, true]) {
      let reading = 0;
      let most = 0;
      let reads = 0;
      const errors: string[] = [];
      const repo: RestorerRepo = {
        ...fakeRepo(plain),
        readPack: async (_packId, _offset, length) => {
          const n = ++reads;
          most = Math.max(most, ++reading);
          await new Promise((r) => setTimeout(r, 2));
          reading--;
          if (n === 5) throw new CairnError('BACKEND', 'read failed');
          return Buffer.alloc(length);
        },
      };
      const target = path.join(root, `ahead-${readAhead}`);
      const s = await executeRestore(repo, plan, { target, packConcurrency: 1, readAhead, reporter: { itemError: (p: string) => errors.push(p) } });
      assert.equal(most, readAhead ? 2 : 1, `reads in flight with readAhead ${readAhead}`);
      assert.equal(reads, 24);
      assert.equal(s.errors, 1);
      assert.equal(errors.length, 1);
      for (let f = 0; f < 12; f++) {
        if (errors[0] === `d/f${f}`) continue;
        assert.ok(fs.readFileSync(path.join(target, 'd', `f${f}`)).equals(contents[f]!), `f${f}`);
      }
    }
  });

  it('a damaged blob fails only the files that need it', async () => {
    const { plan, plain, contents } = makePlan(10, 3, 4);
    const p2 = [...Array(plan.blobs.packCount).keys()].find((p) => plan.blobs.packId(p) === '2'.padStart(64, '0'))!;
    const bad = { id: plan.blobs.id(plan.blobs.blobsOf(p2)[0]!) };
    const failedEntry = plan.blobs.refEntryOf(plan.blobs.firstRef(plan.blobs.blobsOf(p2)[0]!));
    const target = path.join(root, 'b');
    const errors: string[] = [];
    const s = await executeRestore(fakeRepo(plain, { fail: new Set([bad.id]) }), plan, {
      target,
      maxOpenFiles: 2,
      reporter: { itemError: (p: string) => errors.push(p) },
    });
    assert.equal(s.errors, 1);
    assert.deepEqual(errors, [`d/f${failedEntry - 1}`]);
    for (let f = 0; f < 10; f++) {
      if (f === failedEntry - 1) continue;
      assert.ok(fs.readFileSync(path.join(target, 'd', `f${f}`)).equals(contents[f]!), `f${f}`);
    }
  });

  it('hard links are created after their target is complete', async () => {
    const { plan, plain, contents } = makePlan(3, 2, 2, false);
    const link = plan.addEntry(0, fileNode('link', contents[1]!.length));
    plan.setLink(link, 2, plan.contentIds(2));
    plan.finish();
    const target = path.join(root, 'c');
    const s = await executeRestore(fakeRepo(plain), plan, { target });
    assert.equal(s.errors, 0);
    const a = fs.statSync(path.join(target, 'd', 'f1'));
    const b = fs.statSync(path.join(target, 'd', 'link'));
    assert.equal(a.ino, b.ino);
    assert.ok(fs.readFileSync(path.join(target, 'd', 'link')).equals(contents[1]!));
  });
});

describe('executeRestore: files of one blob are written whole, with their metadata, in one job', () => {
  /** Files of the given blob counts (0 = empty); blob `shared` is the content of two files. */
  function mixedPlan(counts: number[], zeros = false): { plan: RestorePlan; plain: Map<string, Buffer>; contents: Buffer[] } {
    const plan = new RestorePlan();
    plan.totalFiles = counts.length;
    const plain = new Map<string, Buffer>();
    const contents: Buffer[] = [];
    const packId = '7'.padStart(64, '0');
    const m = plan.addDirNode(-1, Buffer.from('m'));
    plan.addEntry(m, { ...fileNode('m', 0), type: 'dir', mode: 0o750 | 0x80000000, content: null });
    let packOff = 0;
    let k = 1000;
    counts.forEach((n, f) => {
      const parts: Buffer[] = [];
      for (let j = 0; j < n; j++) {
        // files 0 and 1 share their (only) blob
        const seed = f <= 1 && n === 1 ? 1 : k++;
        const data = zeros ? Buffer.alloc(64 * 1024) : blobOf(seed, 3000 + seed);
        if (zeros) data.fill(seed & 0xff, 10, 20);
        parts.push(data);
      }
      const size = parts.reduce((a, p) => a + p.length, 0);
      const idx = plan.addEntry(m, fileNode(`f${f}`, size, { mode: 0o755 | 0x00800000 /* Go's ModeSetuid */ }));
      let off = 0;
      for (const data of parts) {
        const id = createHash('sha256').update(data).digest('hex');
        plain.set(id, data);
        let b = plan.blobs.find(id);
        if (b < 0) {
          b = plan.blobs.add(id, { packId, offset: packOff, length: data.length + 32 });
          packOff += data.length + 32;
        }
        off += plan.addContent(idx, b, off);
      }
      plan.totalBytes += off;
      contents.push(Buffer.concat(parts));
    });
    plan.finish();
    return { plan, plain, contents };
  }

  it('single-blob, shared-blob, empty and multi-blob files: contents, mode (setuid), nanosecond times', async () => {
    const { plan, plain, contents } = mixedPlan([1, 1, 1, 0, 3, 1, 0, 2]);
    const target = path.join(root, 'mixed');
    // the target already holds things at some names: a file, a symlink pointing out, a directory
    fs.mkdirSync(path.join(target, 'm', 'f5'), { recursive: true });
    const outside = path.join(root, 'mixed-outside');
    fs.writeFileSync(outside, 'keep');
    fs.writeFileSync(path.join(target, 'm', 'f0'), 'old content, longer than the new one? no: shorter');
    fs.symlinkSync(outside, path.join(target, 'm', 'f2'));
    const s = await executeRestore(fakeRepo(plain), plan, { target, maxOpenFiles: 2 });
    assert.equal(s.errors, 0, JSON.stringify(s));
    assert.equal(s.files, 8);
    assert.equal(s.bytes, plan.totalBytes);
    assert.deepEqual(s.warnings, []);
    for (let f = 0; f < contents.length; f++) {
      const p = path.join(target, 'm', `f${f}`);
      const st = fs.lstatSync(p, { bigint: true });
      assert.ok(st.isFile(), `f${f} is a file`);
      assert.ok(fs.readFileSync(p).equals(contents[f]!), `f${f} content`);
      assert.equal(Number(st.mode) & 0o7777, 0o4755, `f${f} mode`);
      assert.equal(st.mtimeNs, 1704164645123456789n, `f${f} mtime`);
      assert.equal(st.atimeNs, 1704164645123456789n, `f${f} atime`);
    }
    assert.equal(fs.readFileSync(outside, 'utf8'), 'keep');
    assert.equal(fs.statSync(path.join(target, 'm')).mode & 0o7777, 0o750);
  });

  it('--sparse: single-blob files keep holes', async () => {
    const { plan, plain, contents } = mixedPlan([1, 1, 2], true);
    const target = path.join(root, 'sparse');
    const s = await executeRestore(fakeRepo(plain), plan, { target, sparse: true });
    assert.equal(s.errors, 0, JSON.stringify(s));
    for (let f = 0; f < contents.length; f++) {
      const p = path.join(target, 'm', `f${f}`);
      assert.ok(fs.readFileSync(p).equals(contents[f]!), `f${f} content`);
      assert.ok(fs.statSync(p).blocks * 512 <= 8192 * (f === 2 ? 2 : 1), `f${f} allocated ${fs.statSync(p).blocks * 512}`);
    }
  });

  it('without overwrite an existing file is an error of that file only', async () => {
    const { plan, plain, contents } = mixedPlan([1, 1, 1]);
    const target = path.join(root, 'no-overwrite');
    fs.mkdirSync(path.join(target, 'm'), { recursive: true });
    fs.writeFileSync(path.join(target, 'm', 'f2'), 'mine');
    const errors: string[] = [];
    const s = await executeRestore(fakeRepo(plain), plan, { target, overwrite: false, reporter: { itemError: (p: string) => errors.push(p) } });
    assert.equal(s.errors, 1);
    assert.deepEqual(errors, ['m/f2']);
    assert.equal(fs.readFileSync(path.join(target, 'm', 'f2'), 'utf8'), 'mine');
    assert.ok(fs.readFileSync(path.join(target, 'm', 'f0')).equals(contents[0]!));
  });
});

describe('executeRestore: entries the snapshot describes badly fail alone, reported by path', () => {
  it('an unknown node type, an unparsable time (empty and one-blob file); the rest is restored', async () => {
    const { plan, plain, contents } = makePlan(2, 1, 1, false);
    const weird = plan.addEntry(0, { ...fileNode('weird', 0), type: 'whiteout', content: null });
    plan.addEntry(0, fileNode('bad-empty', 0, { mtime: '2023-02-30T00:00:00Z' }));
    const data = blobOf(99, 500);
    const id = createHash('sha256').update(data).digest('hex');
    plain.set(id, data);
    const bad = plan.addEntry(0, fileNode('bad-one', data.length, { atime: 'yesterday' }));
    plan.addContent(bad, plan.blobs.add(id, { packId: '9'.padStart(64, '0'), offset: 0, length: data.length + 32 }), 0);
    plan.finish();
    const target = path.join(root, 'bad-nodes');
    const errors: Array<[string, string]> = [];
    const s = await executeRestore(fakeRepo(plain), plan, { target, reporter: { itemError: (p: string, e: Error) => errors.push([p, e.message]) } });
    assert.equal(s.errors, 3);
    // reported as they happen: the set-up (weird, bad-empty) and the content (bad-one) run side by side
    const byPath = new Map(errors);
    assert.deepEqual([...byPath.keys()].sort(), ['d/bad-empty', 'd/bad-one', 'd/weird']);
    assert.match(byPath.get('d/weird')!, /unknown node type "whiteout"/);
    assert.match(byPath.get('d/bad-empty')!, /invalid time "2023-02-30T00:00:00Z": day out of range/);
    assert.match(byPath.get('d/bad-one')!, /invalid time "yesterday"/);
    assert.equal(plan.entries.kind(weird), Kind.unknown);
    for (let f = 0; f < 2; f++) assert.ok(fs.readFileSync(path.join(target, 'd', `f${f}`)).equals(contents[f]!));
    assert.ok(!fs.existsSync(path.join(target, 'd', 'weird')));
  });
});

describe('executeRestore: set-up of directories, empty files and symlinks (several at once)', () => {
  /** A tree of `fanout`^depth directories, each holding an empty file and a symlink to it. */
  function nestedPlan(depth: number, fanout: number): { plan: RestorePlan; dirs: string[] } {
    const plan = new RestorePlan();
    const dirs: string[] = [];
    const addDir = (parent: number, name: string, rel: string, level: number) => {
      const own = plan.addDirNode(parent, Buffer.from(name));
      plan.addEntry(own, { ...fileNode(name, 0), type: 'dir', mode: 0o755 | 0x80000000, content: null });
      dirs.push(rel);
      plan.addEntry(own, fileNode('empty', 0));
      plan.addEntry(own, { ...fileNode('link', 0), type: 'symlink', mode: 0o777 | 0x8000000, content: null, linktarget: 'empty' });
      if (level < depth) for (let k = 0; k < fanout; k++) addDir(own, `d${k}`, `${rel}/d${k}`, level + 1);
    };
    addDir(-1, 'top', 'top', 1);
    plan.finish();
    return { plan, dirs };
  }

  it('every directory is made before what is inside it', async () => {
    const { plan, dirs } = nestedPlan(4, 4); // 85 directories
    const target = path.join(root, 'nested');
    const errors: string[] = [];
    const summary = await executeRestore(fakeRepo(new Map()), plan, { target, reporter: { itemError: (p: string) => void errors.push(p) } });
    assert.deepEqual(errors, []);
    for (const d of dirs) {
      assert.ok(fs.lstatSync(path.join(target, d)).isDirectory(), d);
      assert.equal(fs.readFileSync(path.join(target, d, 'empty')).length, 0, d);
      assert.equal(fs.readlinkSync(path.join(target, d, 'link')), 'empty', d);
    }
    assert.deepEqual({ dirs: summary.dirs, files: summary.files, others: summary.others }, { dirs: 85, files: 85, others: 85 });
  });

  /**
   * `fanout`^depth directories, each holding one file of one blob (all in one pack, so their
   * content is ready long before the set-up reaches the deep directories). With `dirsLast` each
   * directory entry comes after its contents, as the planner orders directories only walked
   * through on the way to included entries: such files make their directory themselves.
   */
  function nestedContentPlan(depth: number, fanout: number, dirsLast: boolean) {
    const plan = new RestorePlan();
    const plain = new Map<string, Buffer>();
    const files: Array<{ rel: string; data: Buffer }> = [];
    let offset = 0;
    const addDir = (parent: number, name: string, rel: string, level: number) => {
      const own = plan.addDirNode(parent, Buffer.from(name));
      const dirNode = { ...fileNode(name, 0), type: 'dir', mode: 0o755 | 0x80000000, content: null };
      if (!dirsLast) plan.addEntry(own, dirNode);
      const data = blobOf(files.length, 200 + files.length);
      const id = createHash('sha256').update(data).digest('hex');
      plain.set(id, data);
      const f = plan.addEntry(own, fileNode('data', data.length));
      plan.addContent(f, plan.blobs.add(id, { packId: '7'.padStart(64, '0'), offset, length: data.length + 32 }), 0);
      offset += data.length + 32;
      files.push({ rel: `${rel}/data`, data });
      if (level < depth) for (let k = 0; k < fanout; k++) addDir(own, `d${k}`, `${rel}/d${k}`, level + 1);
      if (dirsLast) plan.addEntry(own, dirNode);
    };
    addDir(-1, 'top', 'top', 1);
    plan.totalFiles = files.length;
    plan.finish();
    return { plan, plain, files };
  }

  for (const dirsLast of [false, true]) {
    it(`content that is ready before its directory waits for it (${dirsLast ? 'directories after their contents' : 'directories first, files in the way replaced'})`, async () => {
      const { plan, plain, files } = nestedContentPlan(5, 3, dirsLast); // 121 directories, 121 files
      const target = path.join(root, `early-content-${dirsLast}`);
      if (!dirsLast) {
        // Files where the deepest directories go: the set-up replaces them (overwrite is the
        // default); a content write that went ahead of it would refuse to pass through them.
        for (const f of files.filter((x) => x.rel.split('/').length === 6)) {
          fs.mkdirSync(path.join(target, path.dirname(path.dirname(f.rel))), { recursive: true });
          fs.writeFileSync(path.join(target, path.dirname(f.rel)), 'in the way');
        }
      }
      const errors: string[] = [];
      const summary = await executeRestore(fakeRepo(plain), plan, { target, reporter: { itemError: (p: string, e: Error) => void errors.push(`${p}: ${e.message}`) } });
      assert.deepEqual(errors, []);
      for (const f of files) assert.ok(fs.readFileSync(path.join(target, f.rel)).equals(f.data), f.rel);
      assert.deepEqual({ dirs: summary.dirs, files: summary.files }, { dirs: 121, files: 121 });
    });
  }

  it('a file where a directory goes (no overwrite): the restore stops with UNSAFE_PATH at what would be below it', async () => {
    const { plan } = nestedPlan(4, 3);
    const target = path.join(root, 'blocked');
    fs.mkdirSync(path.join(target, 'top', 'd1'), { recursive: true });
    fs.writeFileSync(path.join(target, 'top', 'd1', 'd2'), 'in the way');
    await assert.rejects(executeRestore(fakeRepo(new Map()), plan, { target, overwrite: false }), (e: unknown) => {
      assert.ok(e instanceof CairnError && e.code === 'UNSAFE_PATH', String(e));
      assert.match(e.message, /top\/d1\/d2.*a parent component is a file/);
      return true;
    });
    assert.equal(fs.readFileSync(path.join(target, 'top', 'd1', 'd2'), 'utf8'), 'in the way', 'kept (no overwrite)');
  });
});
