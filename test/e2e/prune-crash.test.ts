/**
 * A prune that dies at any point leaves a repository restic accepts (`check --read-data`) in which
 * every snapshot still restores identically; the next prune finishes the job.
 *
 * Crash points: (a) a test-only hook makes `cairn prune` SIGKILL itself at the N-th change to the
 * repository (deleted unreferenced pack, stored new pack, stored index, deleted old index, deleted
 * pack) for seeded random N; (b) plain SIGKILLs after seeded random delays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, cairnCli, mustOk, requireRestic, restic, tempDir } from '../support/env.js';
import { seeded } from '../support/tree.js';
import { assertRestores, buildPruneFixture, lastJson, snapshotIds, type Facts } from '../support/maintenance.js';

const PRUNE_ARGS = ['prune', '--max-unused', '0', '--pack-size', '4', '--json'];

async function verify(dir: string, repo: string, env: Record<string, string>, facts: Map<string, Facts>, what: string): Promise<void> {
  const check = await restic(['check', '--read-data', '--no-lock'], { env: { ...env, RESTIC_REPOSITORY: repo } });
  assert.equal(check.code, 0, `restic check after ${what}:\n${check.stdout}\n${check.stderr}`);
  assert.match(check.stdout, /no errors were found/);
  const ids = (await snapshotIds({ ...env, RESTIC_REPOSITORY: repo })).map((s) => s.id);
  assert.equal(ids.length, 3, `snapshots left after ${what}`);
  for (const id of ids) await assertRestores(dir, { ...env, RESTIC_REPOSITORY: repo }, id, facts.get(id)!);
}

function killAfter(env: Record<string, string>, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cairnCli, ...PRUNE_ARGS], { env: { ...process.env, ...env }, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

test('prune killed at seeded points: restic check --read-data passes and every snapshot restores', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const { repo, env, facts } = await buildPruneFixture(d.dir);
    // forget half of the snapshots: prune then deletes, repacks and rewrites the index
    mustOk(await cairn(['forget', '--keep-last', '3'], { env }), 'forget');
    for (const id of [...facts.keys()]) if (!(await snapshotIds(env)).some((s) => s.id === id)) facts.delete(id);
    assert.equal(facts.size, 3);

    // an uninterrupted prune on a copy tells how many crash points there are and how long it takes
    const probe = path.join(d.dir, 'probe');
    fs.cpSync(repo, probe, { recursive: true });
    const t0 = Date.now();
    const full = lastJson(mustOk(await cairn(PRUNE_ARGS, { env: { ...env, RESTIC_REPOSITORY: probe } }), 'full prune'));
    const fullMs = Date.now() - t0;
    const count = (k: string) => (full[k] as unknown[]).length;
    const steps = count('unreferenced_packs') + count('new_packs') + count('new_indexes') + count('removed_indexes') + count('removed_packs') + count('repacked_packs');
    assert.ok(count('unreferenced_packs') >= 1 && count('new_packs') >= 2 && count('repacked_packs') >= 2, JSON.stringify(full));
    assert.ok(steps >= 12, `only ${steps} crash points`);
    t.diagnostic(`${steps} crash points; an uninterrupted prune took ${fullMs} ms`);
    await verify(d.dir, probe, env, facts, 'an uninterrupted prune');
    fs.rmSync(probe, { recursive: true, force: true });

    // (a) kill at seeded steps, always including the first and the last
    const rand = seeded(4242);
    const points = new Set<number>([1, steps]);
    while (points.size < Math.min(12, steps)) points.add(1 + Math.floor(rand() * steps));
    let killed = 0;
    for (const n of [...points].sort((a, b) => a - b)) {
      const copy = path.join(d.dir, `crash-${n}`);
      fs.cpSync(repo, copy, { recursive: true });
      const cenv = { ...env, RESTIC_REPOSITORY: copy };
      const r = await cairn(PRUNE_ARGS, { env: { ...cenv, CAIRN_TEST_PRUNE_KILL_AT_STEP: String(n) } });
      assert.notEqual(r.code, 0, `prune should have died at step ${n}`);
      killed++;
      await verify(d.dir, copy, env, facts, `a crash at step ${n} of ${steps}`);
      // the next prune completes and leaves a clean repository
      mustOk(await cairn(['unlock'], { env: cenv }), 'unlock');
      mustOk(await cairn(PRUNE_ARGS, { env: cenv }), `prune after crash at step ${n}`);
      await verify(d.dir, copy, env, facts, `the prune after a crash at step ${n}`);
      const clean = await cairn(['check', '--json'], { env: cenv });
      assert.equal(clean.code, 0);
      assert.ok(!clean.stdout.includes('pack-orphaned'), `orphans left after the follow-up prune (crash at ${n})`);
      fs.rmSync(copy, { recursive: true, force: true });
    }
    assert.ok(killed >= 10);

    // (b) plain SIGKILL after seeded delays over the duration of a full prune
    for (let i = 0; i < 4; i++) {
      const copy = path.join(d.dir, `timed-${i}`);
      fs.cpSync(repo, copy, { recursive: true });
      const ms = Math.floor(rand() * fullMs);
      await killAfter({ ...env, RESTIC_REPOSITORY: copy }, ms);
      await verify(d.dir, copy, env, facts, `SIGKILL after ${ms} ms`);
      fs.rmSync(copy, { recursive: true, force: true });
    }
  } finally {
    d.cleanup();
  }
});
