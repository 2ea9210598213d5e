/**
 * prune beside restic: snapshots written by restic and cairn in one repository, forget + prune by
 * either tool; afterwards `restic check --read-data` passes and every remaining snapshot restores
 * identically. Locks: prune never starts while another process holds a lock (and names it),
 * cairn's backup respects restic's exclusive lock, --retry-lock waits, stale locks are told apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, mustOk, requireRestic, restic, tempDir, type RunResult } from '../support/env.js';
import { makeRichTree, snapshotFacts } from '../support/tree.js';
import { assertRestores, lastJson, mutate, snapshotIds, MAINTENANCE_PW as PW, type Facts } from '../support/maintenance.js';

/** Starts a process whose stdin we control; resolves when it exits. */
function startHeld(cmd: string, args: string[], env: Record<string, string>, cwd?: string): { child: ChildProcess; done: Promise<RunResult> } {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<RunResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? 128, stdout, stderr })));
  return { child, done };
}

async function waitForLock(repo: string): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const locks = fs.existsSync(path.join(repo, 'locks')) ? fs.readdirSync(path.join(repo, 'locks')).filter((f) => /^[0-9a-f]{64}$/.test(f)) : [];
    if (locks.length > 0) return locks[0]!;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('no lock appeared');
}

test('restic and cairn backups, forget --prune by cairn and by restic: restic check --read-data passes, every snapshot restores', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const repo = path.join(d.dir, 'repo');
    const src = path.join(d.dir, 'data', 'src');
    const cwd = path.dirname(src);
    makeRichTree(src, 11);
    const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PW };
    mustOk(await restic(['init', '--repository-version', '2'], { env }), 'restic init');
    const facts = new Map<string, Facts>();
    const backup = async (tool: 'restic' | 'cairn', round: number) => {
      if (round > 0) mutate(src, round);
      const r = tool === 'restic'
        ? mustOk(await restic(['backup', 'src', '--host', 'h', '--json'], { env, cwd }), `restic backup ${round}`)
        : mustOk(await cairn(['backup', 'src', '--host', 'h', '--json', '--pack-size', '4'], { env, cwd }), `cairn backup ${round}`);
      const id = String(lastJson(r).snapshot_id);
      const full = (await snapshotIds(env)).find((s) => s.id.startsWith(id))!.id;
      facts.set(full, snapshotFacts(src));
      return full;
    };
    const s = [await backup('restic', 0), await backup('cairn', 1), await backup('restic', 2), await backup('cairn', 3), await backup('cairn', 4)];

    // cairn forgets the first three and prunes, repacking everything partly used
    const f = mustOk(await cairn(['forget', '--keep-last', '2', '--prune', '--max-unused', '0', '--json'], { env }), 'cairn forget --prune');
    const pruneResult = JSON.parse(f.stdout.trim().split('\n').pop()!);
    assert.equal(pruneResult.message_type, 'prune');
    assert.ok(pruneResult.repacked_packs.length + pruneResult.removed_packs.length > 0, 'prune removed or repacked packs');
    let left = (await snapshotIds(env)).map((x) => x.id);
    assert.deepEqual(left.sort(), [s[3]!, s[4]!].sort());
    const check = mustOk(await restic(['check', '--read-data'], { env }), 'restic check after cairn prune');
    assert.match(check.stdout, /no errors were found/);
    assert.doesNotMatch(check.stdout + check.stderr, /not referenced in any index|contained in several indexes/, 'no orphans or duplicate index coverage left');
    for (const id of left) await assertRestores(d.dir, env, id, facts.get(id)!, true);

    // cairn backs up again, restic prunes what cairn wrote
    const s5 = await backup('cairn', 5);
    const s6 = await backup('restic', 6);
    mustOk(await restic(['forget', '--keep-last', '2', '--prune', '--max-unused', '0'], { env }), 'restic forget --prune');
    left = (await snapshotIds(env)).map((x) => x.id);
    assert.deepEqual(left.sort(), [s5, s6].sort());
    const ours = await cairn(['check', '--read-data', '--json'], { env });
    assert.equal(ours.code, 0, ours.stdout + ours.stderr);
    for (const id of left) await assertRestores(d.dir, env, id, facts.get(id)!);

    // a prune with nothing to do changes nothing
    const before = fs.readdirSync(path.join(repo, 'index')).sort();
    const idle = lastJson(mustOk(await cairn(['prune', '--json'], { env }), 'idle prune'));
    assert.deepEqual(idle.new_indexes, []);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'index')).sort(), before);

    // --repack-uncompressed rewrites every uncompressed blob compressed (restic stores text compressed anyway)
    mustOk(await cairn(['prune', '--repack-uncompressed'], { env }), 'prune --repack-uncompressed');
    mustOk(await restic(['check', '--read-data'], { env }), 'restic check after --repack-uncompressed');
    for (const id of left) await assertRestores(d.dir, env, id, facts.get(id)!);
    // dry runs change nothing
    const snapshotsBefore = fs.readdirSync(path.join(repo, 'snapshots')).sort();
    const dry = lastJson(mustOk(await cairn(['forget', '--keep-last', '1', '--prune', '--dry-run', '--json'], { env }), 'dry run'));
    assert.equal(dry.dry_run, true);
    assert.deepEqual(fs.readdirSync(path.join(repo, 'snapshots')).sort(), snapshotsBefore);
  } finally {
    d.cleanup();
  }
});

test('locks: prune refuses while a backup runs (and names its lock), --retry-lock waits; backup respects restic exclusive locks; stale locks', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const repo = path.join(d.dir, 'repo');
    const src = path.join(d.dir, 'data', 'src');
    makeRichTree(src, 12);
    const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PW };
    mustOk(await cairn(['init', '--chunker', 'rabin'], { env }), 'init');
    mustOk(await cairn(['backup', src], { env }), 'backup');

    // restic backup --stdin holds its (non-exclusive) lock until stdin closes
    const held = startHeld('restic', ['--no-cache', 'backup', '--stdin', '--stdin-filename', 'stream.txt'], env);
    held.child.stdin!.write('some data\n');
    const lockId = await waitForLock(repo);
    const refused = await cairn(['prune'], { env });
    assert.equal(refused.code, 11, refused.stderr);
    assert.match(refused.stderr, new RegExp(`repository is already locked: non-exclusive lock ${lockId.slice(0, 8)} held by \\S+@\\S+ \\(pid ${held.child.pid}\\)`));
    for (const cmd of [['forget', '--keep-last', '1'], ['check'], ['migrate', 'upgrade_repo_v2']]) {
      const r = await cairn(cmd, { env });
      assert.equal(r.code, 11, `${cmd[0]} must not start beside a backup: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(lockId.slice(0, 8)));
    }
    // with --retry-lock the prune waits until the backup is done, then runs
    const waiting = cairn(['--retry-lock', '1m', 'prune', '--json'], { env });
    await new Promise((r) => setTimeout(r, 1500));
    held.child.stdin!.end('more data\n');
    mustOk(await held.done, 'restic backup --stdin');
    const pr = await waiting;
    assert.equal(pr.code, 0, pr.stderr);
    mustOk(await restic(['check', '--read-data'], { env }), 'restic check');

    // restic's exclusive lock (key passwd waits for the new password on stdin) blocks cairn's backup
    const excl = startHeld('restic', ['--no-cache', 'key', 'passwd'], env);
    const exclId = await waitForLock(repo);
    const blocked = await cairn(['backup', src], { env });
    assert.equal(blocked.code, 11);
    assert.match(blocked.stderr, new RegExp(`exclusive lock ${exclId.slice(0, 8)} held by`));
    excl.child.stdin!.end(`${PW}\n${PW}\n`);
    mustOk(await excl.done, 'restic key passwd');

    // a prune killed while holding its lock leaves a stale lock: restic refuses to back up,
    // cairn's error says the lock is stale, `cairn unlock` removes it (its process is gone)
    const killed = await cairn(['prune', '--max-unused', '0'], { env: { ...env, CAIRN_TEST_PRUNE_KILL_AT_STEP: '1' } });
    if (killed.code === 0) {
      // nothing to change in the repository: write a lock of a dead process ourselves
      const { Repository } = await import('../../src/repository/repository.js');
      const { LocalBackend } = await import('../../src/backend/local.js');
      const { encodeLock } = await import('../../src/format/lock.js');
      const { hostname } = await import('node:os');
      const r = await Repository.open(new LocalBackend(repo), PW);
      await r.saveUnpacked('lock', encodeLock({ time: new Date().toISOString(), exclusive: true, hostname: hostname(), username: 'root', pid: 999_999 }));
    }
    const stale = await cairn(['backup', src], { env });
    assert.equal(stale.code, 11);
    assert.match(stale.stderr, /stale — remove stale locks with "cairn unlock"/);
    const resticBlocked = await restic(['backup', src], { env });
    assert.notEqual(resticBlocked.code, 0);
    mustOk(await cairn(['unlock'], { env }), 'unlock');
    assert.deepEqual(fs.readdirSync(path.join(repo, 'locks')), []);
    mustOk(await restic(['backup', src], { env }), 'restic backup after unlock');
    mustOk(await cairn(['check'], { env }), 'check');
  } finally {
    d.cleanup();
  }
});

