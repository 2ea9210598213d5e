/**
 * `cairn agent` end to end, backups: the agent runs as a separate process against the Kubernetes
 * API test server and a fake kubelet pods directory; restic itself reads what it wrote.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { restic, requireRestic, mustOk } from '../support/env.js';
import { makeRichTree, snapshotFacts, diffFacts, seeded, randomData } from '../support/tree.js';
import { startCluster, emptyDirVolume, pvcVolume, pvc, pv, csiDriver, writeFiles, waitFor, type Obj } from '../support/agent.js';

const ROOT_ONLY = (process.getuid?.() ?? 0) !== 0;

test('agent backs up an emptyDir, a CSI PVC, a migrated PV and a local PV like Velero; restic restores them identically', { skip: ROOT_ONLY && 'needs root (ownership)' }, async (t) => {
  if (!requireRestic(t)) return;
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepoWithRestic('app');
  await c.http.create(csiDriver('ebs.csi.aws.com'));
  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();

  // claims and volumes
  for (const [claim, pvName, kind] of [['data-csi', 'pv-csi', 'csi'], ['data-local', 'pv-local', 'local'], ['data-mig', 'pv-mig', 'migrated']] as const) {
    await c.http.create(pv(pvName, kind, { namespace: 'app', name: claim }));
    await c.http.create(pvc(claim, 'app', pvName));
  }
  const pod = await c.createPod({
    name: 'web',
    volumes: [emptyDirVolume('cache'), pvcVolume('csi', 'data-csi'), pvcVolume('local', 'data-local'), pvcVolume('mig', 'data-mig')],
  });
  const uid = pod.metadata.uid as string;
  const dirs = {
    cache: c.kubelet.emptyDir(uid, 'cache'),
    csi: c.kubelet.csi(uid, 'pv-csi'),
    local: c.kubelet.localPv(uid, 'pv-local'),
    mig: c.kubelet.csi(uid, 'pv-mig'),
  };
  makeRichTree(dirs.cache, 1);
  writeFiles(dirs.csi, { 'db/table.dat': randomData(seeded(2), 3_000_000), 'db/wal/000001': 'wal' });
  writeFiles(dirs.local, { 'notes.txt': 'local pv\n' });
  writeFiles(dirs.mig, { 'x.bin': randomData(seeded(3), 100_000) });
  const pvcs = Object.fromEntries(await Promise.all(['data-csi', 'data-local', 'data-mig'].map(async (n) => [n, (await c.http.get('v1', 'PersistentVolumeClaim', 'app', n)).metadata.uid]))) as Record<string, string>;

  const backup = await c.createBackup('nightly');
  const pvbs: Record<string, Obj> = {};
  for (const [vol, claim] of [['cache', undefined], ['csi', 'data-csi'], ['local', 'data-local'], ['mig', 'data-mig']] as const) {
    pvbs[vol] = await c.createPvb({ backup, pod: { namespace: 'app', name: 'web', uid }, volume: vol, repoIdentifier: c.repo('app'), pvcUid: claim ? pvcs[claim] : undefined, pvcName: claim });
  }
  const done: Record<string, Obj> = {};
  for (const [vol, o] of Object.entries(pvbs)) done[vol] = await c.waitPhase('PodVolumeBackup', o.metadata.name, ['Completed', 'Failed'], 60_000);

  const snaps = JSON.parse(mustOk(await restic(['snapshots', '--json', '-r', c.repo('app')], { env: c.resticEnv }), 'restic snapshots').stdout) as Obj[];
  for (const [vol, o] of Object.entries(done)) {
    assert.equal(o.status.phase, 'Completed', `${vol}: ${o.status.message}`);
    assert.match(o.status.snapshotID, /^[0-9a-f]{8}$/);
    assert.equal(o.status.path, dirs[vol as keyof typeof dirs]);
    assert.ok(o.status.startTimestamp && o.status.completionTimestamp);
    assert.ok(o.status.progress.totalBytes > 0 && o.status.progress.bytesDone === o.status.progress.totalBytes);
    const snap = snaps.find((s) => s.short_id === o.status.snapshotID);
    assert.ok(snap, `snapshot ${o.status.snapshotID} listed by restic`);
    assert.equal(snap.hostname, 'velero');
    assert.deepEqual(snap.paths, [o.status.path]);
    const tags = new Set(snap.tags as string[]);
    for (const tag of [`backup=nightly`, `backup-uid=${backup.uid}`, `pod=web`, `pod-uid=${uid}`, `ns=app`, `volume=${vol}`]) assert.ok(tags.has(tag), `${vol}: tag ${tag}`);
    // the snapshot root is the volume's content (restic's `.` with cwd), restored identically
    const target = path.join(c.tmp, `restore-${vol}`);
    mustOk(await restic(['restore', o.status.snapshotID, '--target', target, '-r', c.repo('app')], { env: c.resticEnv }), 'restic restore');
    assert.deepEqual(diffFacts(snapshotFacts(dirs[vol as keyof typeof dirs]), snapshotFacts(target)), [], `${vol} restored identically`);
  }
  mustOk(await restic(['check', '--read-data', '-r', c.repo('app')], { env: c.resticEnv }), 'restic check');
  // no write after the terminal one: the objects did not change any more
  await new Promise((r) => setTimeout(r, 1500));
  for (const o of Object.values(done)) {
    const again = await c.http.get('velero.io/v1', 'PodVolumeBackup', 'velero', o.metadata.name);
    assert.equal(again.metadata.resourceVersion, o.metadata.resourceVersion);
  }
});

test('agent: second backup of a PVC uses the previous PVB snapshot as parent (unchanged files are not re-read); empty volume', async (t) => {
  const c = await startCluster({ velero: '1.18' });
  t.after(() => c.close());
  await c.initRepo('app');
  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();
  await c.http.create(pv('pv-1', 'csi', { namespace: 'app', name: 'claim' }));
  const claim = await c.http.create(pvc('claim', 'app', 'pv-1'));
  const pvcUid = claim.metadata.uid as string;

  // first pod
  const pod1 = await c.createPod({ name: 'db-0', volumes: [pvcVolume('data', 'claim'), emptyDirVolume('empty')] });
  const dir1 = c.kubelet.csi(pod1.metadata.uid, 'pv-1');
  writeFiles(dir1, { 'a.bin': randomData(seeded(7), 4_000_000), 'b.bin': randomData(seeded(8), 4_000_000) });
  c.kubelet.emptyDir(pod1.metadata.uid, 'empty');
  const b1 = await c.createBackup('b1');
  const first = await c.waitPhase('PodVolumeBackup', (await c.createPvb({ backup: b1, pod: { namespace: 'app', name: 'db-0', uid: pod1.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app'), pvcUid })).metadata.name, ['Completed', 'Failed']);
  assert.equal(first.status.phase, 'Completed', first.status.message);
  assert.ok(first.status.incrementalBytes >= 8_000_000, `first backup adds the data (${first.status.incrementalBytes})`);
  const empty = await c.waitPhase('PodVolumeBackup', (await c.createPvb({ backup: b1, pod: { namespace: 'app', name: 'db-0', uid: pod1.metadata.uid }, volume: 'empty', repoIdentifier: c.repo('app') })).metadata.name, ['Completed', 'Failed']);
  assert.equal(empty.status.phase, 'Completed');
  assert.equal(empty.status.snapshotID ?? '', '');
  assert.equal(empty.status.message, 'volume was empty so no snapshot was taken');

  // the pod is recreated (new UID, so a new path): restic's own host+path lookup would miss
  await c.deletePod('app', 'db-0');
  const pod2 = await c.createPod({ name: 'db-0', volumes: [pvcVolume('data', 'claim')] });
  // kubelet mounts the same file system again: same inodes and ctimes, under the new pod's path
  const dir2 = path.join(c.kubelet.podDir(pod2.metadata.uid), 'volumes', 'kubernetes.io~csi', 'pv-1', 'mount');
  fs.mkdirSync(path.dirname(dir2), { recursive: true });
  fs.renameSync(dir1, dir2);
  writeFiles(dir2, { 'c.txt': 'new file\n' });
  const b2 = await c.createBackup('b2');
  const second = await c.waitPhase('PodVolumeBackup', (await c.createPvb({ backup: b2, pod: { namespace: 'app', name: 'db-0', uid: pod2.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app'), pvcUid })).metadata.name, ['Completed', 'Failed']);
  assert.equal(second.status.phase, 'Completed', second.status.message);
  assert.ok(second.status.incrementalBytes < 100_000, `only the new file is added (${second.status.incrementalBytes})`);
  const parentLog = agent.logs.find((l) => l.msg === 'backing up volume' && l.pvb === second.metadata.name);
  assert.equal(parentLog?.parent, first.status.snapshotID, 'parent is the first backup of the same PVC');
  const summary = agent.logs.find((l) => l.msg === 'backup summary' && l.pvb === second.metadata.name);
  assert.equal(summary?.filesUnmodified, 2, 'the two unchanged files were not read again');
  assert.equal(summary?.filesNew, 1);
  const snap = JSON.parse(mustOk(await c.cairn(['snapshots', '--json', '-r', c.repo('app')]), 'cairn snapshots').stdout) as Obj[];
  const s2 = snap.find((s) => s.short_id === second.status.snapshotID);
  assert.ok(s2?.parent?.startsWith(first.status.snapshotID));
});

test('Velero 1.9 install: ResticRepository CR gets its missing repository initialised; PVB without uploaderType is backed up', async (t) => {
  if (!requireRestic(t)) return;
  const c = await startCluster({ velero: '1.9' });
  t.after(() => c.close());
  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();
  assert.ok(agent.logs.some((l) => l.msg === 'detected Velero installation' && l.repository === 'resticrepositories'));
  // the server created the CR (with the identifier) but could not init the repository itself
  await c.http.create({
    apiVersion: 'velero.io/v1',
    kind: 'ResticRepository',
    metadata: { generateName: 'app-default-', namespace: 'velero', labels: { 'velero.io/volume-namespace': 'app', 'velero.io/storage-location': 'default' } },
    spec: { volumeNamespace: 'app', backupStorageLocation: 'default', resticIdentifier: c.repo('app'), maintenanceFrequency: '168h0m0s' },
  });
  await waitFor(() => fs.existsSync(path.join(c.repo('app'), 'config')), 30_000, 'repository initialised');
  const cfg = JSON.parse(mustOk(await restic(['cat', 'config', '-r', c.repo('app')], { env: c.resticEnv }), 'restic cat config').stdout) as Obj;
  assert.equal(cfg.version, 2);
  assert.equal(cfg.cairn_chunker, undefined, 'restic\'s own chunker, so Velero\'s restic sees a plain repository');

  const pod = await c.createPod({ name: 'old', volumes: [emptyDirVolume('data')] });
  writeFiles(c.kubelet.emptyDir(pod.metadata.uid, 'data'), { 'hello.txt': 'from 1.9\n' });
  const b = await c.createBackup('legacy');
  const item = await c.createPvb({ backup: b, pod: { namespace: 'app', name: 'old', uid: pod.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app') });
  assert.equal(item.spec.uploaderType, undefined);
  const done = await c.waitPhase('PodVolumeBackup', item.metadata.name, ['Completed', 'Failed']);
  assert.equal(done.status.phase, 'Completed', done.status.message);
  const ls = mustOk(await restic(['ls', done.status.snapshotID, '-r', c.repo('app')], { env: c.resticEnv }), 'restic ls').stdout;
  assert.match(ls, /\/hello\.txt/);
});
