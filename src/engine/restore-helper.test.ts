import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Clock } from '../core/clock.js';
import { isCairnError } from '../core/errors.js';
import { runRestoreHelper, scanRestoreMarkers, validateRestoreUid, type RestoreHelperEvent } from './restore-helper.js';

const UID = '6d1a2c1e-6f4b-4c33-9a3a-2d1f0e1c9b77';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cairn-restore-helper-'));
  try {
    await fn(dir);
  } finally {
    await chmod(dir, 0o755).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

async function mark(dir: string, volume: string, uid = UID): Promise<void> {
  await mkdir(path.join(dir, volume, '.velero'), { recursive: true });
  await writeFile(path.join(dir, volume, '.velero', uid), '');
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** A clock whose sleep() runs a hook (the "agent" writing markers) instead of waiting. */
function steppingClock(onSleep: (n: number) => Promise<void> | void): Clock & { sleeps: number } {
  let now = 0;
  const c = {
    sleeps: 0,
    now: () => now,
    nowNs: () => BigInt(now) * 1_000_000n,
    setTimeout: () => ({ cancel() {} }),
    async sleep(ms: number, signal?: AbortSignal) {
      if (signal?.aborted) throw signal.reason;
      now += ms;
      c.sleeps++;
      await onSleep(c.sleeps);
    },
  };
  return c;
}

test('validateRestoreUid accepts UIDs and rejects path-like values', () => {
  validateRestoreUid(UID);
  for (const bad of ['', '.', '..', 'a/b', '../x', 'a\0b']) {
    assert.throws(() => validateRestoreUid(bad), (e) => isCairnError(e, 'INVALID_ARGUMENT'), bad);
  }
});

test('scan: pending volumes, markers of other restores, non-directories and a missing directory', async () => {
  await withDir(async (dir) => {
    const missing = await scanRestoreMarkers(path.join(dir, 'nope'), UID);
    assert.equal(missing.done, false);
    assert.match(missing.error ?? '', /no such file or directory/);

    await mkdir(path.join(dir, 'data'));
    await mark(dir, 'logs');
    await mark(dir, 'cache', 'some-other-restore');
    await writeFile(path.join(dir, 'stray-file'), 'x');
    await symlink(path.join(dir, 'logs'), path.join(dir, 'link-to-logs'));
    const s = await scanRestoreMarkers(dir, UID);
    assert.deepEqual(s.volumes, ['cache', 'data', 'logs']);
    assert.deepEqual(s.pending, ['cache', 'data']);
    assert.deepEqual(s.skipped, ['link-to-logs', 'stray-file']);
    assert.deepEqual(s.volumeErrors, {});
    assert.equal(s.done, false);

    await mark(dir, 'cache');
    await mark(dir, 'data');
    assert.equal((await scanRestoreMarkers(dir, UID)).done, true);
  });
});

test('scan: an empty restores directory is done at once (nothing to wait for)', async () => {
  await withDir(async (dir) => {
    const s = await scanRestoreMarkers(dir, UID);
    assert.equal(s.done, true);
    assert.deepEqual(s.volumes, []);
  });
});

test('scan: a marker path blocked by a file counts as pending, not as an error', async () => {
  await withDir(async (dir) => {
    await mkdir(path.join(dir, 'v'));
    await writeFile(path.join(dir, 'v', '.velero'), 'not a directory');
    const s = await scanRestoreMarkers(dir, UID);
    assert.deepEqual(s.pending, ['v']);
    assert.deepEqual(s.volumeErrors, {});
  });
});

test('run: waits until every volume has the marker, then removes every .velero directory', async () => {
  await withDir(async (dir) => {
    for (const v of ['a', 'b', 'c']) await mkdir(path.join(dir, v));
    // an old marker from an earlier restore inside a restored snapshot goes away too
    await mark(dir, 'c', 'earlier-restore');
    const events: RestoreHelperEvent[] = [];
    const clock = steppingClock(async (n) => {
      if (n === 1) await mark(dir, 'b');
      if (n === 3) await mark(dir, 'a');
      if (n === 5) await mark(dir, 'c');
    });
    const r = await runRestoreHelper({ restoreUid: UID, restoresDir: dir, intervalMs: 1000, clock, report: (e) => events.push(e) });
    assert.deepEqual(r, { volumes: ['a', 'b', 'c'], removeFailures: [] });
    assert.equal(clock.sleeps, 5);
    for (const v of ['a', 'b', 'c']) {
      assert.equal(await exists(path.join(dir, v, '.velero')), false, `${v}/.velero removed`);
      assert.equal(await exists(path.join(dir, v)), true, `${v} kept`);
    }
    // one "waiting" report per change of the pending set, not one per poll
    const waits = events.filter((e) => e.type === 'waiting').map((e) => (e.type === 'waiting' ? e.scan.pending : []));
    assert.deepEqual(waits, [['a', 'b', 'c'], ['a', 'c'], ['c']]);
    assert.deepEqual(
      events.filter((e) => e.type === 'removed').map((e) => (e.type === 'removed' ? e.volume : '')),
      ['a', 'b', 'c'],
    );
  });
});

test('run: repeats the waiting report every reminder interval while nothing changes', async () => {
  await withDir(async (dir) => {
    await mkdir(path.join(dir, 'v'));
    let waiting = 0;
    const clock = steppingClock(async (n) => {
      if (n === 10) await mark(dir, 'v');
    });
    await runRestoreHelper({ restoreUid: UID, restoresDir: dir, intervalMs: 1000, reminderMs: 3000, clock, report: (e) => void (e.type === 'waiting' && waiting++) });
    // polls at t=0..9 s: reports at 0, 3, 6, 9
    assert.equal(waiting, 4);
  });
});

test('run: keeps waiting while the restores directory is missing (Velero does too)', async () => {
  await withDir(async (dir) => {
    const restores = path.join(dir, 'restores');
    const errors: string[] = [];
    const clock = steppingClock(async (n) => {
      if (n === 2) await mkdir(path.join(restores, 'v'), { recursive: true });
      if (n === 3) await mark(restores, 'v');
    });
    const r = await runRestoreHelper({ restoreUid: UID, restoresDir: restores, clock, report: (e) => void (e.type === 'waiting' && e.scan.error && errors.push(e.scan.error)) });
    assert.deepEqual(r.volumes, ['v']);
    assert.equal(errors.length, 1);
  });
});

test('run: a marker directory that cannot be removed is reported and ignored', { skip: process.getuid?.() === 0 ? 'root ignores directory permissions' : false }, async () => {
  await withDir(async (dir) => {
    await mark(dir, 'ro');
    await mark(dir, 'rw');
    await chmod(path.join(dir, 'ro'), 0o555); // the helper may not write the volume root
    try {
      const events: RestoreHelperEvent[] = [];
      const r = await runRestoreHelper({ restoreUid: UID, restoresDir: dir, report: (e) => events.push(e) });
      assert.deepEqual(r.removeFailures, ['ro']);
      assert.ok(events.some((e) => e.type === 'remove-failed' && e.volume === 'ro' && /permission denied/.test(e.error)));
      assert.equal(await exists(path.join(dir, 'rw', '.velero')), false);
    } finally {
      await chmod(path.join(dir, 'ro'), 0o755);
    }
  });
});

test('run: a removal failure is reported and the other volumes are still cleaned', async () => {
  await withDir(async (dir) => {
    for (const v of ['a', 'b', 'c']) await mark(dir, v);
    const events: RestoreHelperEvent[] = [];
    const r = await runRestoreHelper({
      restoreUid: UID,
      restoresDir: dir,
      report: (e) => events.push(e),
      removeDir: async (p) => {
        if (p === path.join(dir, 'b', '.velero')) throw Object.assign(new Error('EROFS: read-only file system'), { code: 'EROFS' });
        await rm(p, { recursive: true, force: true });
      },
    });
    assert.deepEqual(r.removeFailures, ['b']);
    assert.ok(events.some((e) => e.type === 'remove-failed' && e.volume === 'b' && /read-only/.test(e.error)));
    assert.equal(await exists(path.join(dir, 'a', '.velero')), false);
    assert.equal(await exists(path.join(dir, 'b', '.velero', UID)), true);
    assert.equal(await exists(path.join(dir, 'c', '.velero')), false);
  });
});

test('run: the signal stops the wait with CANCELLED and leaves the markers alone', async () => {
  await withDir(async (dir) => {
    await mark(dir, 'done');
    await mkdir(path.join(dir, 'pending'));
    const ac = new AbortController();
    const started = Date.now();
    const p = runRestoreHelper({ restoreUid: UID, restoresDir: dir, intervalMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('received SIGTERM')), 50);
    await assert.rejects(p, (e) => isCairnError(e, 'CANCELLED') && /SIGTERM/.test(e.message));
    assert.ok(Date.now() - started < 5_000, 'abort interrupts the sleep');
    assert.equal(await exists(path.join(dir, 'done', '.velero', UID)), true);
  });
});

test('run: rejects a non-positive interval', async () => {
  await assert.rejects(runRestoreHelper({ restoreUid: UID, restoresDir: '/nonexistent', intervalMs: 0 }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
});
