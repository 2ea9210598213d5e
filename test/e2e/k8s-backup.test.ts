/**
 * `cairn k8s backup` end to end without Velero: annotated pods on two nodes, two agent processes,
 * one backup → every selected volume is backed up exactly once (a PVC shared by two pods once),
 * exclusions and never-backed-up kinds are honoured, PVBs carry Velero's labels and tags plus
 * cairn's identity and no owner, snapshots are what Velero's restic path writes; `ls`/`describe`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { mustOk, requireRestic, restic } from '../support/env.js';
import { diffFacts, makeRichTree, randomData, seeded, snapshotFacts } from '../support/tree.js';
import { writeFiles, type Obj } from '../support/agent.js';
import { parseJson, startStandalone } from '../support/k8s.js';

test('cairn k8s backup: opt-in and opt-out selection across two nodes, one PVB per volume and per shared PVC, summary, ls and describe', async (t) => {
  if (!requireRestic(t)) return;
  const s = await startStandalone({ velero: '1.16' });
  t.after(() => s.close());
  const a1 = s.agent('node-1');
  const a2 = s.agent('node-2');
  await Promise.all([a1.ready(), a2.ready()]);

  // --- namespace app: opt-in through backup.velero.io/backup-volumes ---
  const pvcWeb0 = await s.claim('app', 'data-web-0');
  const pvcWeb1 = await s.claim('app', 'data-web-1');
  const pvcShared = await s.claim('app', 'shared');
  const optIn = { 'backup.velero.io/backup-volumes': 'cache,data' };
  const web0 = await s.pod({
    name: 'web-0',
    namespace: 'app',
    node: 'node-1',
    annotations: optIn,
    volumes: [{ name: 'cache', emptyDir: {} }, { name: 'data', persistentVolumeClaim: { claimName: 'data-web-0' } }, { name: 'tmp', emptyDir: {} }, { name: 'cfg', configMap: { name: 'web' } }],
  });
  const web1 = await s.pod({
    name: 'web-1',
    namespace: 'app',
    node: 'node-2',
    annotations: optIn,
    volumes: [{ name: 'cache', emptyDir: {} }, { name: 'data', persistentVolumeClaim: { claimName: 'data-web-1' } }],
  });
  // two pods on two nodes share one claim: backed up once, from the first pod by name
  const sharedA = await s.pod({ name: 'files-a', namespace: 'app', node: 'node-2', annotations: { 'backup.velero.io/backup-volumes': 'files' }, volumes: [{ name: 'files', persistentVolumeClaim: { claimName: 'shared' } }] });
  const sharedB = await s.pod({ name: 'files-b', namespace: 'app', node: 'node-1', annotations: { 'backup.velero.io/backup-volumes': 'files' }, volumes: [{ name: 'files', persistentVolumeClaim: { claimName: 'shared' } }] });
  await s.pod({ name: 'idle', namespace: 'app', node: 'node-2', volumes: [{ name: 'scratch', emptyDir: {} }] });
  await s.pod({ name: 'starting', namespace: 'app', node: 'node-1', phase: 'Pending', annotations: { 'backup.velero.io/backup-volumes': 'x' }, volumes: [{ name: 'x', emptyDir: {} }] });

  makeRichTree(web0.dirs.cache!, 11);
  writeFiles(web0.dirs.data!, { 'db/table.dat': randomData(seeded(1), 2_000_000), 'db/wal/01': 'wal one\n' });
  writeFiles(web0.dirs.tmp!, { 'never.txt': 'not selected\n' });
  writeFiles(web1.dirs.cache!, { 'c.txt': 'cache of web-1\n' });
  writeFiles(web1.dirs.data!, { 'rows.bin': randomData(seeded(2), 500_000) });
  writeFiles(sharedA.dirs.files!, { 'shared.txt': 'one file system, two pods\n' });
  // kubelet mounts the same claim under each pod: same content
  writeFiles(sharedB.dirs.files!, { 'shared.txt': 'one file system, two pods\n' });

  const r = await s.k8s(['backup', '--namespace', 'app', '--name', 'app-1', '--wait', '--json', '--timeout', '2m']);
  const out = parseJson(r, 'backup');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(out.phase, 'Completed');
  assert.equal(out.name, 'app-1');
  const got = (out.volumes as Obj[]).map((v) => `${v.pod}/${v.volume}@${v.node}`).sort();
  assert.deepEqual(got, ['files-a/files@node-2', 'web-0/cache@node-1', 'web-0/data@node-1', 'web-1/cache@node-2', 'web-1/data@node-2']);
  for (const v of out.volumes as Obj[]) {
    assert.equal(v.phase, 'Completed', `${v.pod}/${v.volume}: ${v.message}`);
    assert.match(v.snapshotID, /^[0-9a-f]{8}$/);
    assert.ok(v.totalBytes > 0);
    assert.equal(v.selectedBy, 'annotation');
  }
  const skipped = Object.fromEntries((out.skipped as Obj[]).map((x) => [`${x.pod}/${x.volume}`, x.reason]));
  assert.match(skipped['files-b/files'], /already backed up from pod files-a/);
  assert.match(skipped['starting/x'], /not running \(phase Pending\)/);
  assert.equal(Object.keys(skipped).length, 2, JSON.stringify(skipped));
  assert.deepEqual((out.repositories as Obj[]).map((x) => [x.namespace, x.created, x.passwordSource]), [['app', true, 'installation']]);

  // the PVBs: one per volume, Velero's labels/annotation/tags, cairn's identity, no owner
  const pvbs = await s.pvbs(`cairn.io/backup-name=app-1`);
  assert.equal(pvbs.length, 5);
  for (const p of pvbs) {
    assert.equal(p.metadata.ownerReferences, undefined);
    assert.equal(p.metadata.labels['velero.io/backup-name'], 'app-1');
    assert.equal(p.metadata.labels['velero.io/backup-uid'], out.uid);
    assert.equal(p.metadata.labels['cairn.io/backup-uid'], out.uid);
    assert.equal(p.spec.repoIdentifier, s.repo('app'));
    assert.equal(p.spec.backupStorageLocation, 'default');
    assert.equal(p.spec.uploaderType, 'restic');
    assert.deepEqual(Object.keys(p.spec.tags).sort(), p.metadata.labels['velero.io/pvc-uid'] ? ['backup', 'backup-uid', 'ns', 'pod', 'pod-uid', 'pvc-uid', 'volume'] : ['backup', 'backup-uid', 'ns', 'pod', 'pod-uid', 'volume']);
  }
  const byVol = Object.fromEntries(pvbs.map((p) => [`${p.spec.pod.name}/${p.spec.volume}`, p]));
  assert.equal(byVol['web-0/data'].metadata.labels['velero.io/pvc-uid'], pvcWeb0);
  assert.equal(byVol['web-0/data'].metadata.annotations['velero.io/pvc-name'], 'data-web-0');
  assert.equal(byVol['web-1/data'].metadata.labels['velero.io/pvc-uid'], pvcWeb1);
  assert.equal(byVol['files-a/files'].metadata.labels['velero.io/pvc-uid'], pvcShared);
  assert.equal(byVol['web-0/cache'].metadata.labels['velero.io/pvc-uid'], undefined);

  // restic sees Velero-style snapshots: host velero, the volume dir as the path, key=value tags, the data
  const snaps = JSON.parse(mustOk(await restic(['snapshots', '--json', '-r', s.repo('app')], { env: s.c.resticEnv }), 'restic snapshots').stdout) as Obj[];
  assert.equal(snaps.length, 5, 'each selected volume backed up exactly once');
  const dirs: Record<string, string> = { 'web-0/cache': web0.dirs.cache!, 'web-0/data': web0.dirs.data!, 'web-1/cache': web1.dirs.cache!, 'web-1/data': web1.dirs.data!, 'files-a/files': sharedA.dirs.files! };
  for (const [key, p] of Object.entries(byVol)) {
    const snap = snaps.find((x) => x.short_id === p.status.snapshotID)!;
    assert.ok(snap, key);
    assert.equal(snap.hostname, 'velero');
    assert.deepEqual(snap.paths, [dirs[key]]);
    assert.ok((snap.tags as string[]).includes(`backup=app-1`) && (snap.tags as string[]).includes(`backup-uid=${out.uid}`));
    const target = path.join(s.c.tmp, 'check', key.replace('/', '-'));
    mustOk(await restic(['restore', p.status.snapshotID, '--target', target, '-r', s.repo('app')], { env: s.c.resticEnv }), 'restic restore');
    assert.deepEqual(diffFacts(snapshotFacts(dirs[key]!), snapshotFacts(target)), [], `${key} restored identically`);
  }

  // --- namespace ops: opt-out with exclusions, in text mode ---
  await s.namespace('ops');
  const ops = await s.pod({
    name: 'tools',
    namespace: 'ops',
    node: 'node-2',
    annotations: { 'backup.velero.io/backup-volumes-excludes': 'junk' },
    volumes: [
      { name: 'work', emptyDir: {} },
      { name: 'junk', emptyDir: {} },
      { name: 'settings', configMap: { name: 'settings' } },
      { name: 'creds', secret: { secretName: 'creds' } },
      { name: 'token', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } },
      { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } },
      { name: 'default-token-x2x9z', secret: { secretName: 'default-token-x2x9z' } },
      { name: 'logs', hostPath: { path: '/var/log' } },
      { name: 'unmounted', emptyDir: {} },
    ],
    mounts: ['work', 'junk', 'settings', 'creds', 'token', 'info', 'default-token-x2x9z', 'logs'],
  });
  writeFiles(ops.dirs.work!, { 'report.csv': 'a,b\n1,2\n' });
  writeFiles(ops.dirs.junk!, { 'ignore.me': 'x' });
  const text = await s.k8s(['backup', '--namespace', 'ops', '--default-volumes-to-fs-backup', '--name', 'ops-1', '--wait']);
  assert.equal(text.code, 0, text.stdout + text.stderr);
  assert.match(text.stdout, /NAMESPACE\s+POD\s+VOLUME\s+PVC\s+NODE\s+PHASE\s+SNAPSHOT/);
  assert.match(text.stdout, /ops\s+tools\s+work\s+node-2\s+Completed\s+[0-9a-f]{8}/);
  assert.match(text.stdout, /Skipped volumes:/);
  for (const [vol, why] of [
    ['junk', 'excluded by backup.velero.io/backup-volumes-excludes'],
    ['settings', 'configMap volume'],
    ['creds', 'secret volume'],
    ['token', 'projected volume'],
    ['info', 'downwardAPI volume'],
    ['default-token-x2x9z', 'secret volume'],
    ['logs', 'hostPath volume'],
    ['unmounted', 'not mounted by any container'],
  ]) {
    assert.match(text.stdout, new RegExp(`ops\\s+tools\\s+${vol}\\s+${why.replace(/[.()]/g, '\\$&')}`), `${vol} skipped: ${why}`);
  }
  assert.match(text.stdout, /Backup ops-1: Completed; 1 of 1 volume\(s\) completed/);
  const opsPvbs = await s.pvbs('cairn.io/backup-name=ops-1');
  assert.deepEqual(opsPvbs.map((p) => p.spec.volume), ['work']);
  assert.equal(opsPvbs[0]!.metadata.annotations['cairn.io/selected-by'], 'default');
  assert.equal(opsPvbs[0]!.spec.repoIdentifier, s.repo('ops'));

  // --- a name is used once; no volumes is not an error ---
  const dup = await s.k8s(['backup', '--namespace', 'app', '--name', 'app-1']);
  assert.equal(dup.code, 2);
  assert.match(dup.stderr, /backup app-1 exists already/);
  await s.namespace('quiet');
  const none = await s.k8s(['backup', '--namespace', 'quiet', '--wait', '--json']);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(parseJson(none, 'empty backup').phase, 'Empty');

  // --- ls and describe ---
  const ls = parseJson(await s.k8s(['ls', '--json']), 'ls');
  const names = (ls.backups as Obj[]).map((b) => [b.name, b.createdBy, b.phase, b.volumes.total, b.volumes.completed]);
  assert.deepEqual(names, [['app-1', 'cairn', 'Completed', 5, 5], ['ops-1', 'cairn', 'Completed', 1, 1]]);
  const app1 = (ls.backups as Obj[])[0]!;
  assert.ok(app1.totalBytes >= 2_500_000);
  assert.ok(app1.durationMs >= 0 && app1.started && app1.completed);
  const lsText = await s.k8s(['ls', 'backups']);
  assert.match(lsText.stdout, /^NAME\s+CREATED BY\s+SCHEDULE\s+PHASE\s+VOLUMES/m);
  assert.match(lsText.stdout, /app-1\s+cairn\s+Completed\s+5\/5/);
  const desc = await s.k8s(['describe', 'backup', 'app-1']);
  assert.equal(desc.code, 0, desc.stderr);
  assert.match(desc.stdout, /Phase:\s+Completed/);
  assert.match(desc.stdout, /Pod Volume Backups - restic:\n  Completed:\n/);
  assert.match(desc.stdout, /app\/web-0: data \(pvc data-web-0\) — snapshot [0-9a-f]{8}, .*node node-1/);
  const descJson = parseJson(await s.k8s(['describe', 'backup', 'app-1', '--json']), 'describe');
  assert.equal(descJson.volumeDetails.length, 5);
  assert.equal(descJson.volumeDetails.find((v: Obj) => v.pod === 'web-0' && v.volume === 'data').repository, s.repo('app'));
  assert.equal((await s.k8s(['describe', 'backup', 'nope'])).code, 1);

  // the agents processed ownerless PVBs on their own nodes only
  assert.ok(a1.logs.some((l) => l.msg === 'pod volume backup finished' && l.pod === 'app/web-0'));
  assert.ok(!a1.logs.some((l) => l.msg === 'pod volume backup started' && l.pod === 'app/web-1'));
  assert.ok(a2.logs.some((l) => l.msg === 'pod volume backup finished' && l.pod === 'app/files-a'));
  mustOk(await restic(['check', '--read-data', '-r', s.repo('app')], { env: s.c.resticEnv }), 'restic check');
});

test('cairn k8s backup: a failed volume makes the backup PartiallyFailed (exit 3) and describe shows the error', async (t) => {
  const s = await startStandalone({ velero: '1.18' });
  t.after(() => s.close());
  const a1 = s.agent('node-1');
  await a1.ready();
  const ok = await s.pod({ name: 'good', namespace: 'app', node: 'node-1', annotations: { 'backup.velero.io/backup-volumes': 'v' }, volumes: [{ name: 'v', emptyDir: {} }] });
  writeFiles(ok.dirs.v!, { 'f.txt': 'fine\n' });
  const bad = await s.pod({ name: 'bad', namespace: 'app', node: 'node-1', annotations: { 'backup.velero.io/backup-volumes': 'v' }, volumes: [{ name: 'v', emptyDir: {} }] });
  // kubelet has not mounted this volume: the agent finds no directory
  const fs = await import('node:fs');
  fs.rmSync(bad.dirs.v!, { recursive: true });
  const r = await s.k8s(['backup', '--namespace', 'app', '--name', 'partial', '--wait', '--json', '--timeout', '1m']);
  assert.equal(r.code, 3, r.stderr);
  const out = parseJson(r, 'backup');
  assert.equal(out.phase, 'PartiallyFailed');
  const failed = (out.volumes as Obj[]).find((v) => v.pod === 'bad')!;
  assert.equal(failed.phase, 'Failed');
  assert.match(failed.message, /expected one matching path/);
  assert.ok((out.volumes as Obj[]).find((v) => v.pod === 'good')!.addedBytes > 0, 'incrementalBytes (1.18) in the summary');
  const desc = await s.k8s(['describe', 'backup', 'partial']);
  assert.match(desc.stdout, /Phase:\s+PartiallyFailed/);
  assert.match(desc.stdout, /  Failed:\n    app\/bad: v — (.*, )?node node-1\n      unable to locate volume v/);
  assert.match(desc.stdout, /Errors:\n  app\/bad v: unable to locate volume/);
});

test('cairn k8s backup: hostPath volumes only when allow-listed on both sides (the CLI selects, the agent reads the node path under --host-root)', async (t) => {
  const s = await startStandalone({ velero: '1.16' });
  t.after(() => s.close());
  const hostRoot = path.join(s.c.tmp, 'node-1-root');
  const a1 = s.agent('node-1', ['--allow-host-path', '/srv/data', '--host-root', hostRoot]);
  await a1.ready();
  const nodeDir = path.join(hostRoot, 'srv', 'data', 'app');
  writeFiles(nodeDir, { 'state.json': '{"ok":true}\n', 'blobs/1': 'one' });
  await s.pod({
    name: 'hp',
    namespace: 'app',
    node: 'node-1',
    annotations: { 'backup.velero.io/backup-volumes': 'state,etc' },
    volumes: [{ name: 'state', hostPath: { path: '/srv/data/app', type: 'Directory' } }, { name: 'etc', hostPath: { path: '/etc' } }],
  });
  const denied = parseJson(await s.k8s(['backup', '--namespace', 'app', '--name', 'hp-0', '--wait', '--json']), 'without allow-list');
  assert.equal(denied.phase, 'Empty');
  assert.deepEqual((denied.skipped as Obj[]).map((x) => x.volume).sort(), ['etc', 'state']);
  const r = await s.k8s(['backup', '--namespace', 'app', '--name', 'hp-1', '--allow-host-path', '/srv/data', '--wait', '--json']);
  const out = parseJson(r, 'with allow-list');
  assert.equal(out.phase, 'Completed', JSON.stringify(out.volumes));
  assert.deepEqual((out.volumes as Obj[]).map((v) => v.volume), ['state']);
  assert.match((out.skipped as Obj[])[0].reason, /hostPath volume \(\/etc\) .* not allow-listed/);
  const pvb = (await s.pvbs('cairn.io/backup-name=hp-1'))[0]!;
  assert.equal(pvb.status.path, nodeDir);
  const ls = await s.c.cairn(['ls', pvb.status.snapshotID, '-r', s.repo('app')]);
  assert.match(ls.stdout, /\/state\.json/);
  assert.match(ls.stdout, /\/blobs\/1/);
});
