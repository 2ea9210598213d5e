/**
 * Repository maintenance in the cluster without Velero: retention applied by `cairn k8s backup`
 * (whole backups of a series, their PVBs deleted), then two agents with --maintenance compete for
 * the repository's Lease while a backup is running: exactly one holds the Lease, prune and check
 * run once, the running backup completes undamaged, and `restic check --read-data` agrees.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mustOk, requireRestic, restic } from '../support/env.js';
import { diffFacts, randomData, seeded, snapshotFacts } from '../support/tree.js';
import { writeFiles, type Obj } from '../support/agent.js';
import { parseJson, startStandalone, waitFor } from '../support/k8s.js';

test('maintenance: retention by series, then two agents, one Lease holder, prune once, a concurrent backup stays intact', async (t) => {
  if (!requireRestic(t)) return;
  const s = await startStandalone({ velero: '1.16' });
  t.after(() => s.close());
  let a1 = s.agent('node-1');
  let a2 = s.agent('node-2');
  await Promise.all([a1.ready(), a2.ready()]);

  await s.claim('app', 'data');
  const db = await s.pod({ name: 'db-0', namespace: 'app', node: 'node-1', annotations: { 'backup.velero.io/backup-volumes': 'data' }, volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }] });
  const big = await s.pod({ name: 'ingest-0', namespace: 'app', node: 'node-2', volumes: [{ name: 'spool', emptyDir: {} }] });

  // three backups of the series "nightly" keeping the last one: each rewrite leaves garbage behind
  const names: string[] = [];
  for (let i = 1; i <= 3; i++) {
    writeFiles(db.dirs.data!, { 'table.dat': randomData(seeded(100 + i), 3_000_000) });
    const r = await s.k8s(['backup', '--namespace', 'app', '--selector', '', '--schedule', 'nightly', '--name', `nightly-${i}`, '--keep-last', '1', '--wait', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = parseJson(r, `backup ${i}`);
    assert.equal(out.phase, 'Completed');
    names.push(out.name);
    if (i > 1) {
      assert.deepEqual(out.retention[0].schedules[0].removed.map((b: Obj) => b.name), [`nightly-${i - 1}`]);
      assert.equal(out.retention[0].deletedPvbs, 1);
    }
  }
  const snaps = JSON.parse(mustOk(await restic(['snapshots', '--json', '-r', s.repo('app')], { env: s.c.resticEnv }), 'restic snapshots').stdout) as Obj[];
  assert.deepEqual(snaps.map((x) => (x.tags as string[]).find((tag) => tag.startsWith('backup='))), ['backup=nightly-3']);
  assert.ok((snaps[0].tags as string[]).includes('cairn-schedule=nightly'));
  const ls = parseJson(await s.k8s(['ls', 'backups', '--json']), 'ls');
  assert.deepEqual((ls.backups as Obj[]).map((b) => b.name), ['nightly-3'], 'PVBs of forgotten backups are gone');
  const leaseName = (await s.leases())[0]!.metadata.name as string;
  const recorded = (await s.leases())[0]!;
  assert.equal(recorded.metadata.annotations['retention.cairn.io/nightly'], 'last=1');
  assert.equal(recorded.spec.holderIdentity, '', 'released after the forget');
  const packsBefore = fs.readdirSync(path.join(s.repo('app'), 'data')).flatMap((d) => fs.readdirSync(path.join(s.repo('app'), 'data', d))).length;

  // the agents restart with maintenance on; a big backup starts at the same time
  await Promise.all([a1.stop(), a2.stop()]);
  const maint = ['--maintenance', '--maintenance-poll', '500ms', '--maintenance-lease-duration', '4s', '--maintenance-interval', '1h', '--check-interval', '1h', '--check-read-data-subset', '50%'];
  writeFiles(big.dirs.spool!, { 'a.bin': randomData(seeded(7), 48_000_000), 'b.bin': randomData(seeded(8), 16_000_000) });
  const concurrent = s.k8s(['backup', '--namespace', 'app', '--selector', '', '--name', 'ingest', '--default-volumes-to-fs-backup', '--wait', '--json']);
  a1 = s.agent('node-1', maint);
  a2 = s.agent('node-2', maint);
  const holders = new Set<string>();
  let sampling = true;
  t.after(() => void (sampling = false)); // a failed assertion must not leave the sampler polling forever
  const sampler = (async () => {
    while (sampling) {
      const l = (await s.leases().catch(() => [])).find((x) => x.metadata.name === leaseName);
      if (l?.spec?.holderIdentity) holders.add(l.spec.holderIdentity);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const agents = [a1, a2];
  await waitFor(() => agents.some((a) => a.logs.some((l) => l.msg === 'maintenance finished')), 120_000, 'maintenance finished');
  const r = await concurrent;
  assert.equal(r.code, 0, r.stderr);
  const ingest = parseJson(r, 'concurrent backup');
  assert.equal(ingest.phase, 'Completed', JSON.stringify(ingest.volumes));
  // a few more poll rounds: nobody repeats the work
  await new Promise((res) => setTimeout(res, 3000));
  sampling = false;
  await sampler;

  const count = (msg: string) => agents.reduce((n, a) => n + a.logs.filter((l) => l.msg === msg && l.repository === s.repo('app')).length, 0);
  assert.equal(count('maintenance lease acquired'), 1, 'one agent held the lease');
  assert.equal(count('prune finished'), 1, 'prune ran once');
  assert.equal(count('check finished'), 1, 'check ran once');
  assert.equal(holders.size, 1, `lease holders seen: ${[...holders].join(', ')}`);
  const holder = [...holders][0]!;
  const winner = agents.find((a) => a.logs.some((l) => l.msg === 'maintenance lease acquired'))!;
  assert.ok(holder.startsWith('cairn-agent@'));
  assert.ok(agents.every((a) => a.logs.some((l) => l.msg === 'repository maintenance enabled')), 'both agents competed');
  const pruned = winner.logs.find((l) => l.msg === 'prune finished')!;
  const acquired = winner.logs.find((l) => l.msg === 'maintenance lease acquired')!;
  const finished = winner.logs.find((l) => l.msg === 'maintenance finished')!;
  const spoolVol = (ingest.volumes as Obj[]).find((v) => v.volume === 'spool')!;
  t.diagnostic(`maintenance ${JSON.stringify(acquired.time)} → ${JSON.stringify(finished.time)}; concurrent backup ${spoolVol.startedAt} → ${spoolVol.completedAt}`);
  assert.ok(pruned.removedPacks > 0 || pruned.repackedPacks > 0, `prune removed the forgotten data (${JSON.stringify(pruned)})`);

  const lease = (await s.leases()).find((x) => x.metadata.name === leaseName)!;
  assert.equal(lease.spec.holderIdentity, '', 'released');
  assert.ok(lease.metadata.annotations['maintenance.cairn.io/last-prune']);
  assert.ok(lease.metadata.annotations['maintenance.cairn.io/last-check']);
  assert.match(lease.metadata.annotations['maintenance.cairn.io/last-result'], /ok, pruned, checked/);
  assert.equal(lease.metadata.annotations['maintenance.cairn.io/last-error'], undefined);
  const packsAfter = fs.readdirSync(path.join(s.repo('app'), 'data')).flatMap((d) => fs.readdirSync(path.join(s.repo('app'), 'data', d))).length;
  assert.ok(packsAfter > 0 && packsBefore > 0);

  // the repository is intact, and so is the backup that ran during maintenance
  mustOk(await restic(['check', '--read-data', '-r', s.repo('app')], { env: s.c.resticEnv }), 'restic check --read-data');
  const spool = (ingest.volumes as Obj[]).find((v) => v.volume === 'spool')!;
  const target = path.join(s.c.tmp, 'ingest-restore');
  mustOk(await restic(['restore', spool.snapshotID, '--target', target, '-r', s.repo('app')], { env: s.c.resticEnv }), 'restic restore');
  assert.deepEqual(diffFacts(snapshotFacts(big.dirs.spool!), snapshotFacts(target)), []);
  const nightly = JSON.parse(mustOk(await restic(['snapshots', '--json', '--tag', 'backup=nightly-3', '-r', s.repo('app')], { env: s.c.resticEnv }), 'snapshots').stdout) as Obj[];
  assert.equal(nightly.length, 1, 'the kept backup survived prune');

  // `cairn k8s maintain` does the same on demand, under the same lease
  const m = await s.k8s(['maintain', '--namespace', 'app', '--check', '--read-data-subset', '1/2', '--json']);
  assert.equal(m.code, 0, m.stderr);
  const mo = parseJson(m, 'maintain');
  assert.equal(mo[0].result.pruned, true);
  assert.equal(mo[0].result.checked.errors, 0);
});
