import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LocalBackend } from '../backend/local.js';
import { Repository } from './repository.js';
import { BlobWriter } from './blob-writer.js';
import { RepoLock, listLocks } from './lock.js';
import { encodeLock } from '../format/lock.js';
import { hashId } from '../core/ids.js';
import { isCairnError } from '../core/errors.js';

const FAST_KDF = { N: 1024, r: 8, p: 1 };

async function withRepo(version: 1 | 2, fn: (repo: Repository, dir: string) => Promise<void>) {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-repo-'));
  try {
    const repo = await Repository.init(new LocalBackend(dir), 'pw', { version, scrypt: FAST_KDF });
    await fn(repo, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const version of [1, 2] as const) {
  test(`v${version}: blobs written through packs and index are readable after reopening`, async () => {
    await withRepo(version, async (repo, dir) => {
      const w = new BlobWriter(repo, { packSize: 4 << 20, workers: 2 });
      const blobs = [randomBytes(100), Buffer.alloc(3 << 20, 7), randomBytes(2 << 20), Buffer.from('tree-ish')];
      const ids: string[] = [];
      for (const [i, b] of blobs.entries()) ids.push((await w.save(i === 3 ? 'tree' : 'data', b)).id);
      assert.equal((await w.save('data', blobs[0]!)).known, true, 'duplicate detected');
      await w.flush();
      await w.close();
      const again = await Repository.open(new LocalBackend(dir), 'pw');
      await again.loadIndex();
      for (const [i, b] of blobs.entries()) {
        const got = await again.loadBlob(i === 3 ? 'tree' : 'data', ids[i]!);
        assert.ok(got.equals(b));
        assert.equal(ids[i], hashId(b));
      }
      if (version === 2) {
        const loc = again.index.lookup('data', ids[1]!)[0]!;
        assert.ok(loc.uncompressedLength === 3 << 20 && loc.length < 100_000, 'zero blob stored compressed');
        const rnd = again.index.lookup('data', ids[2]!)[0]!;
        assert.equal(rnd.uncompressedLength, undefined, 'incompressible blob stored raw');
      }
      // every pack's header agrees with the index
      for (const p of again.index.packs()) {
        const h = await again.loadPackHeader(p.packId);
        assert.deepEqual(h.blobs.map((b) => b.id).sort(), [...p.blobIds].sort());
      }
    });
  });
}

test('wrong password is reported as WRONG_PASSWORD', async () => {
  await withRepo(2, async (_repo, dir) => {
    await assert.rejects(Repository.open(new LocalBackend(dir), 'nope'), (e) => isCairnError(e, 'WRONG_PASSWORD'));
  });
});

test('locks: shared locks coexist, exclusive conflicts name the holder, release removes the file', async () => {
  await withRepo(2, async (repo, dir) => {
    const a = await RepoLock.acquire(repo, { exclusive: false });
    const b = await RepoLock.acquire(repo, { exclusive: false });
    await assert.rejects(RepoLock.acquire(repo, { exclusive: true }), (e) => isCairnError(e, 'REPO_LOCKED') && /non-exclusive lock [0-9a-f]{8} held by/.test(e.message));
    await a.release();
    await b.release();
    assert.equal((await listLocks(repo)).length, 0);
    const x = await RepoLock.acquire(repo, { exclusive: true });
    await assert.rejects(RepoLock.acquire(repo, { exclusive: false }), (e) => isCairnError(e, 'REPO_LOCKED') && /exclusive lock/.test(e.message));
    const before = x.id;
    await x.refresh();
    assert.notEqual(x.id, before);
    assert.equal(readdirSync(path.join(dir, 'locks')).length, 1);
    await x.release();
    assert.equal(readdirSync(path.join(dir, 'locks')).length, 0);
  });
});

test('locks: an exclusive lock re-checks after its wait and sees a shared lock written meanwhile', async () => {
  await withRepo(2, async (repo, dir) => {
    const x = RepoLock.acquire(repo, { exclusive: true });
    // a shared locker that passed its first check before x wrote its lock writes its file now
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(readdirSync(path.join(dir, 'locks')).length, 1, 'the exclusive lock is written before its wait');
    const shared = await repo.saveUnpacked('lock', encodeLock({ time: '2026-01-01T00:00:00Z', exclusive: false, hostname: 'other', username: 'u', pid: 1 }));
    await assert.rejects(x, (e) => isCairnError(e, 'REPO_LOCKED') && e.message.includes(shared.slice(0, 8)));
    assert.deepEqual(readdirSync(path.join(dir, 'locks')), [shared], 'the exclusive lock file is removed again');
  });
});

test('locks: a shared lock written during an exclusive lock\'s wait sees it and backs off', async () => {
  await withRepo(2, async (repo) => {
    const x = RepoLock.acquire(repo, { exclusive: true });
    await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(RepoLock.acquire(repo, { exclusive: false }), (e) => isCairnError(e, 'REPO_LOCKED') && /exclusive lock/.test(e.message));
    await (await x).release();
  });
});

test('locks: reads overlapped with the confirmation run before acquire resolves, run again when a race is retried, and their failure removes the lock', async () => {
  await withRepo(2, async (repo, dir) => {
    const order: string[] = [];
    const lock = await RepoLock.acquire(repo, { exclusive: true, whileConfirming: async () => void order.push('reads') });
    order.push('acquired');
    assert.deepEqual(order, ['reads', 'acquired']);
    await lock.release();

    // a shared lock appears during the wait (a race) and goes away again: the retry reads again
    let reads = 0;
    const x = RepoLock.acquire(repo, { exclusive: true, retryLockMs: 30_000, whileConfirming: async () => void reads++ });
    await new Promise((r) => setTimeout(r, 50));
    const other = await repo.saveUnpacked('lock', encodeLock({ time: '2026-01-01T00:00:00Z', exclusive: false, hostname: 'other', username: 'u', pid: 1 }));
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(reads, 1);
    await repo.removeFile('lock', other);
    const got = await x;
    assert.equal(reads, 2, 'the attempt that got the lock read again');
    await got.release();

    // shared locks read after their re-check; failing reads: their error, and no lock is left
    const shared = await RepoLock.acquire(repo, { exclusive: false, whileConfirming: async () => void order.push('shared reads') });
    assert.equal(order.at(-1), 'shared reads');
    await shared.release();
    await assert.rejects(RepoLock.acquire(repo, { exclusive: false, whileConfirming: async () => Promise.reject(new Error('index unreadable')) }), /index unreadable/);
    await assert.rejects(RepoLock.acquire(repo, { exclusive: true, whileConfirming: async () => Promise.reject(new Error('index unreadable')) }), /index unreadable/);
    assert.equal(readdirSync(path.join(dir, 'locks')).length, 0);
  });
});
