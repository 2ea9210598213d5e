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
import type { PlannedBlob, RestorePlan } from './plan.js';
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

/** A plan of `files` files of `perFile` blobs each, the blobs spread round-robin over `packs` packs. */
function makePlan(files: number, perFile: number, packs: number): { plan: RestorePlan; plain: Map<string, Buffer>; contents: Buffer[] } {
  const plan: RestorePlan = { entries: [], packs: new Map(), totalFiles: files, totalBytes: 0 };
  const plain = new Map<string, Buffer>();
  const contents: Buffer[] = [];
  const packOffsets = new Array<number>(packs).fill(0);
  let k = 0;
  for (let f = 0; f < files; f++) {
    const parts: Buffer[] = [];
    const entry = { rel: [Buffer.from('d'), Buffer.from(`f${f}`)], node: fileNode(`f${f}`, 0), remaining: 0 };
    const idx = plan.entries.push(entry) - 1;
    let off = 0;
    for (let j = 0; j < perFile; j++, k++) {
      const data = blobOf(k, 100 + ((k * 37) % 900));
      const id = createHash('sha256').update(data).digest('hex');
      plain.set(id, data);
      const p = k % packs;
      const packId = `${p}`.padStart(64, '0');
      const pb: PlannedBlob = { id, offset: packOffsets[p]!, length: data.length + 32, plainLength: data.length, targets: [{ entry: idx, fileOffset: off }] };
      packOffsets[p]! += pb.length;
      let list = plan.packs.get(packId);
      if (!list) plan.packs.set(packId, (list = []));
      list.push(pb);
      entry.remaining++;
      off += data.length;
      parts.push(data);
    }
    entry.node.size = off;
    plan.totalBytes += off;
    contents.push(Buffer.concat(parts));
  }
  plan.entries.unshift({ rel: [Buffer.from('d')], node: { ...fileNode('d', 0), type: 'dir', mode: 0o755 | 0x80000000, content: null }, remaining: 0 });
  // entries moved by one: fix the targets
  for (const list of plan.packs.values()) for (const pb of list) for (const t of pb.targets) t.entry++;
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

  it('a damaged blob fails only the files that need it', async () => {
    const { plan, plain, contents } = makePlan(10, 3, 4);
    const bad = plan.packs.get('2'.padStart(64, '0'))![0]!;
    const failedEntry = bad.targets[0]!.entry;
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
    const { plan, plain, contents } = makePlan(3, 2, 2);
    plan.entries.push({ rel: [Buffer.from('d'), Buffer.from('link')], node: fileNode('link', contents[1]!.length), remaining: 0, linkTo: 2 });
    const target = path.join(root, 'c');
    const s = await executeRestore(fakeRepo(plain), plan, { target });
    assert.equal(s.errors, 0);
    const a = fs.statSync(path.join(target, 'd', 'f1'));
    const b = fs.statSync(path.join(target, 'd', 'link'));
    assert.equal(a.ino, b.ino);
    assert.ok(fs.readFileSync(path.join(target, 'd', 'link')).equals(contents[1]!));
  });
});
