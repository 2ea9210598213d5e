/**
 * cairn check finds each kind of damage, names the pack / blob / snapshot / path, and exits 13;
 * an orphaned pack is only a hint (exit 0). restic's own check agrees that the damage is real,
 * and files that do not use damaged data still restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { cairn, mustOk, requireRestic, restic, tempDir } from '../support/env.js';
import { makeRichTree, snapshotFacts } from '../support/tree.js';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repository/repository.js';
import { listSnapshots } from '../../src/repository/snapshots.js';
import { decodeTree } from '../../src/format/tree.js';
import { decodeIndex, encodeIndex } from '../../src/format/index.js';
import { PackWriter } from '../../src/repository/pack-writer.js';
import type { BlobLocation } from '../../src/repository/master-index.js';

const PW = 'check-damage';

interface Fixture {
  dir: string;
  repo: string;
  src: string;
  env: Record<string, string>;
  snapshots: string[];
  /** Locations of the first content blob of some files, and of some trees. */
  fileBlob: (rel: string) => Promise<{ id: string; loc: BlobLocation; all: BlobLocation[] }>;
  treeBlob: (rel: string) => Promise<{ id: string; loc: BlobLocation; all: BlobLocation[] }>;
}

async function locate(repoDir: string, rel: string, kind: 'file' | 'tree'): Promise<{ id: string; loc: BlobLocation; all: BlobLocation[] }> {
  const repo = await Repository.open(new LocalBackend(repoDir), PW);
  await repo.loadIndex();
  const snaps = await listSnapshots(repo);
  let tree = snaps[snaps.length - 1]!.snapshot.tree;
  const parts = ['src', ...rel.split('/').filter(Boolean)];
  for (const [i, name] of parts.entries()) {
    const node = decodeTree(await repo.loadBlob('tree', tree)).find((n) => n.name.toString() === name)!;
    assert.ok(node, `${name} in snapshot`);
    if (i === parts.length - 1) {
      if (kind === 'tree') return { id: node.subtree!, loc: repo.index.lookup('tree', node.subtree!)[0]!, all: repo.index.lookup('tree', node.subtree!) };
      return { id: node.content![0]!, loc: repo.index.lookup('data', node.content![0]!)[0]!, all: node.content!.flatMap((c) => repo.index.lookup('data', c)) };
    }
    tree = node.subtree!;
  }
  throw new Error('unreachable');
}

function packPath(repo: string, id: string): string {
  return path.join(repo, 'data', id.slice(0, 2), id);
}

function writable(p: string): void {
  fs.chmodSync(p, 0o600);
}

async function withCopy(base: Fixture, name: string, fn: (f: Fixture) => Promise<void>): Promise<void> {
  const dir = path.join(base.dir, name);
  fs.cpSync(base.repo, dir, { recursive: true });
  const f: Fixture = {
    ...base,
    repo: dir,
    env: { ...base.env, RESTIC_REPOSITORY: dir },
    fileBlob: (rel) => locate(dir, rel, 'file'),
    treeBlob: (rel) => locate(dir, rel, 'tree'),
  };
  await fn(f);
}

async function checkJson(f: Fixture, args: string[] = []) {
  const r = await cairn(['check', '--json', ...args], { env: f.env });
  const lines = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const summary = lines.find((l) => l.message_type === 'summary');
  return { code: r.code, lines, summary, errors: lines.filter((l) => l.message_type === 'error'), hints: lines.filter((l) => l.message_type === 'hint'), affected: lines.filter((l) => l.message_type === 'affected'), stderr: r.stderr };
}

async function resticFails(f: Fixture, args: string[] = []): Promise<void> {
  const r = await restic(['check', '--no-lock', ...args], { env: f.env });
  assert.notEqual(r.code, 0, `restic check should fail too:\n${r.stdout}\n${r.stderr}`);
}

/** Restores one file (through `snapshot:dir` when given, which only reads the trees on the way) and compares it with the source. */
async function restoresIdentically(f: Fixture, rel: string, viaDir?: string): Promise<void> {
  const target = path.join(f.dir, `restore-${randomBytes(4).toString('hex')}`);
  if (viaDir) {
    mustOk(await cairn(['restore', `latest:src/${viaDir}`, '--target', target], { env: f.env }), `restore ${viaDir}`);
    const facts = snapshotFacts(target);
    assert.equal(facts.get(path.relative(viaDir, rel))?.hash, snapshotFacts(f.src).get(rel)?.hash, `${rel} restored identically`);
    return;
  }
  mustOk(await cairn(['restore', 'latest', '--target', target, '--include', `/src/${rel}`], { env: f.env }), `restore ${rel}`);
  assert.equal(snapshotFacts(path.join(target, 'src')).get(rel)?.hash, snapshotFacts(f.src).get(rel)?.hash, `${rel} restored identically`);
}

/** A file whose data lies in a different pack than `packId`. */
async function fileElsewhere(f: Fixture, packId: string): Promise<string> {
  for (const rel of ['small.txt', 'bin/random.bin', 'text/other.log', 'text/log.txt', 'bin/zeros.bin', 'bin/exact-min.bin']) {
    if ((await f.fileBlob(rel)).all.every((l) => l.packId !== packId)) return rel;
  }
  throw new Error('every file shares one pack');
}

test('check names the damaged pack, blob, snapshot and path, and exits 13; orphans are hints', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const repo = path.join(d.dir, 'repo');
    const src = path.join(d.dir, 'data', 'src');
    makeRichTree(src, 3, { bigFiles: true });
    const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PW };
    mustOk(await cairn(['init', '--chunker', 'rabin'], { env }), 'init');
    mustOk(await cairn(['backup', 'src', '--pack-size', '4'], { env, cwd: path.dirname(src) }), 'backup 1');
    fs.writeFileSync(path.join(src, 'second.txt'), 'a second snapshot\n');
    mustOk(await cairn(['backup', 'src', '--pack-size', '4'], { env, cwd: path.dirname(src) }), 'backup 2');
    const base: Fixture = { dir: d.dir, repo, src, env, snapshots: [], fileBlob: (rel) => locate(repo, rel, 'file'), treeBlob: (rel) => locate(repo, rel, 'tree') };

    // intact: exit 0, no errors, also with --read-data
    const ok = await checkJson(base, ['--read-data']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.summary!.num_errors, 0);
    assert.equal(ok.summary!.damaged, false);

    await t.test('flipped byte inside a data blob (--read-data)', async () => {
      await withCopy(base, 'flip', async (f) => {
        const { id, loc } = await f.fileBlob('text/other.log');
        const p = packPath(f.repo, loc.packId);
        writable(p);
        const b = fs.readFileSync(p);
        b[loc.offset + 100] ^= 0x01;
        fs.writeFileSync(p, b);
        const plain = await checkJson(f);
        assert.equal(plain.code, 0, 'the structure is intact; only reading the data finds this');
        const r = await checkJson(f, ['--read-data']);
        assert.equal(r.code, 13);
        assert.ok(r.errors.some((e) => e.kind === 'pack-hash' && e.pack === loc.packId));
        assert.ok(r.errors.some((e) => e.kind === 'blob-damaged' && e.pack === loc.packId && e.blob === id && /ciphertext verification failed/.test(String(e.message))));
        assert.ok(r.affected.some((a) => a.path === '/src/text/other.log' && a.blob === id));
        assert.equal(new Set(r.affected.map((a) => a.snapshot)).size, 2, 'both snapshots use the file');
        await resticFails(f, ['--read-data']);
        await restoresIdentically(f, 'small.txt');
        await restoresIdentically(f, 'bin/random.bin');
      });
    });

    await t.test('flipped byte in the blob of a one-blob file: restore names it, skips that file, restores the rest', async () => {
      await withCopy(base, 'flip-small', async (f) => {
        const { id, loc, all } = await f.fileBlob('small.txt');
        assert.equal(all.length, 1, 'small.txt is one blob');
        const p = packPath(f.repo, loc.packId);
        writable(p);
        const b = fs.readFileSync(p);
        b[loc.offset + 20] ^= 0x01;
        fs.writeFileSync(p, b);
        const target = path.join(f.dir, 'restore-all');
        const r = await cairn(['restore', 'latest', '--target', target], { env: f.env });
        assert.notEqual(r.code, 0, 'a file could not be restored');
        assert.match(r.stderr, new RegExp(`small\\.txt.*data blob ${id} in pack ${loc.packId}: ciphertext verification failed`), r.stderr);
        assert.equal(fs.existsSync(path.join(target, 'src', 'small.txt')), false, 'nothing written for the damaged file');
        const facts = snapshotFacts(path.join(target, 'src'));
        for (const rel of ['bin/random.bin', 'second.txt']) assert.equal(facts.get(rel)?.hash, snapshotFacts(f.src).get(rel)?.hash, `${rel} restored identically`);
      });
    });

    await t.test('truncated pack', async () => {
      await withCopy(base, 'truncate', async (f) => {
        const { loc } = await f.fileBlob('bin/random.bin');
        const p = packPath(f.repo, loc.packId);
        const size = fs.statSync(p).size;
        writable(p);
        fs.truncateSync(p, size - 1000);
        const r = await checkJson(f);
        assert.equal(r.code, 13);
        const e = r.errors.find((x) => x.kind === 'pack-size');
        assert.ok(e && e.pack === loc.packId && new RegExp(`got ${size - 1000}, expected ${size}`).test(String(e.message)), JSON.stringify(r.errors));
        await resticFails(f);
        await restoresIdentically(f, await fileElsewhere(f, loc.packId));
      });
    });

    await t.test('missing pack', async () => {
      await withCopy(base, 'missing', async (f) => {
        const { id, loc } = await f.fileBlob('text/log.txt');
        fs.rmSync(packPath(f.repo, loc.packId));
        const r = await checkJson(f);
        assert.equal(r.code, 13);
        assert.ok(r.errors.some((e) => e.kind === 'pack-missing' && e.pack === loc.packId && /does not exist/.test(String(e.message))));
        assert.ok(r.affected.some((a) => a.path === '/src/text/log.txt' && a.blob === id && (a.packs as string[]).includes(loc.packId)));
        await resticFails(f);
        await restoresIdentically(f, await fileElsewhere(f, loc.packId));
      });
    });

    await t.test('missing index entry', async () => {
      await withCopy(base, 'unindexed-blob', async (f) => {
        const { id, loc } = await f.fileBlob('bin/exact-min.bin');
        const repoObj = await Repository.open(new LocalBackend(f.repo), PW);
        let changed = false;
        for (const ix of await repoObj.listIds('index')) {
          const idx = decodeIndex(await repoObj.loadUnpacked('index', ix), repoObj.version);
          const pack = idx.packs.find((p) => p.id === loc.packId);
          if (!pack) continue;
          pack.blobs = pack.blobs.filter((b) => b.id !== id);
          await repoObj.saveUnpacked('index', encodeIndex(idx));
          await repoObj.removeFile('index', ix);
          changed = true;
        }
        assert.ok(changed);
        const r = await checkJson(f);
        assert.equal(r.code, 13);
        assert.ok(r.errors.some((e) => e.kind === 'pack-size' && e.pack === loc.packId));
        const missing = r.errors.find((e) => e.kind === 'blob-missing');
        assert.ok(missing && missing.blob === id && missing.path === '/src/bin/exact-min.bin' && typeof missing.snapshot === 'string', JSON.stringify(r.errors));
        await resticFails(f);
        await restoresIdentically(f, 'small.txt');
      });
    });

    await t.test('corrupted tree blob', async () => {
      await withCopy(base, 'tree', async (f) => {
        const { id, loc } = await f.treeBlob('modes');
        const p = packPath(f.repo, loc.packId);
        writable(p);
        const b = fs.readFileSync(p);
        b[loc.offset + loc.length - 20] ^= 0xff;
        fs.writeFileSync(p, b);
        const r = await checkJson(f);
        assert.equal(r.code, 13);
        const e = r.errors.find((x) => x.kind === 'tree-unreadable');
        assert.ok(e && e.tree === id && e.path === '/src/modes' && e.pack === loc.packId && typeof e.snapshot === 'string', JSON.stringify(r.errors));
        await resticFails(f);
        // the rest of the snapshot stays readable: restore a directory beside the broken one
        await restoresIdentically(f, 'text/log.txt', 'text');
      });
    });

    await t.test('wrong MAC in a pack header (--read-data)', async () => {
      await withCopy(base, 'header', async (f) => {
        const { loc } = await f.fileBlob('text/other.log');
        const p = packPath(f.repo, loc.packId);
        writable(p);
        const b = fs.readFileSync(p);
        b[b.length - 4 - 3] ^= 0x10; // inside the header's MAC (the 16 bytes before the length)
        fs.writeFileSync(p, b);
        const r = await checkJson(f, ['--read-data']);
        assert.equal(r.code, 13);
        assert.ok(r.errors.some((e) => e.kind === 'pack-header' && e.pack === loc.packId && /ciphertext verification failed/.test(String(e.message))), JSON.stringify(r.errors));
        assert.equal(r.affected.length, 0, 'every blob is still readable');
        await resticFails(f, ['--read-data']);
        await restoresIdentically(f, 'text/other.log');
      });
    });

    await t.test('orphaned pack: a hint, exit 0', async () => {
      await withCopy(base, 'orphan', async (f) => {
        const repoObj = await Repository.open(new LocalBackend(f.repo), PW);
        const w = new PackWriter(repoObj);
        await w.add('data', randomBytes(32).toString('hex'), repoObj.sealer.seal(randomBytes(1000)));
        const [orphan] = await w.flush();
        const r = await checkJson(f, ['--read-data']);
        assert.equal(r.code, 0, JSON.stringify(r.errors));
        assert.ok(r.hints.some((h) => h.kind === 'pack-orphaned' && h.pack === orphan!.id));
        assert.equal(r.summary!.damaged, false);
        const text = await cairn(['check'], { env: f.env });
        assert.equal(text.code, 0);
        assert.match(text.stdout, new RegExp(`pack ${orphan!.id}: not referenced in any index`));
        assert.match(text.stdout, /no errors were found/);
      });
    });

    await t.test('--read-data-subset selects packs like restic and validates its argument', async () => {
      const r = await checkJson(base, ['--read-data-subset', '1/1']);
      assert.equal(r.code, 0);
      assert.ok((r.summary!.packs_read as number) > 0);
      const pct = await checkJson(base, ['--read-data-subset', '1%']);
      assert.equal(pct.summary!.packs_read, 1, 'at least one pack');
      const size = await checkJson(base, ['--read-data-subset', '1G']);
      assert.equal(size.summary!.packs_read, size.summary!.packs);
      for (const bad of ['0/2', '3/2', '1/300', '0%', '101%', 'x']) {
        const b = await cairn(['check', '--read-data-subset', bad], { env });
        assert.equal(b.code, 2, `--read-data-subset ${bad}`);
      }
      assert.equal((await cairn(['check', '--read-data', '--read-data-subset', '1/2'], { env })).code, 2);
    });
  } finally {
    d.cleanup();
  }
});
