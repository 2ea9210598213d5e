/** `cairn agent` end to end, restores: trigger on the running restore-wait container, data, marker. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { restic, requireRestic, mustOk } from '../support/env.js';
import { makeRichTree, snapshotFacts, diffFacts } from '../support/tree.js';
import { startCluster, emptyDirVolume, pvcVolume, pvc, pv, writeFiles, waitFor } from '../support/agent.js';

test('agent restores a restic snapshot into the restored pod volume once restore-wait runs, then writes the marker', async (t) => {
  if (!requireRestic(t)) return;
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepoWithRestic('app');
  // a snapshot made by restic the way Velero's restic path makes it: `.` from the volume dir
  const src = path.join(c.tmp, 'source-volume');
  makeRichTree(src, 5);
  fs.mkdirSync(path.join(src, '.velero'));
  fs.writeFileSync(path.join(src, '.velero', 'old-restore-uid'), '');
  const out = mustOk(await restic(['backup', '--json', '--host', 'velero', '--tag', 'volume=data', '-r', c.repo('app'), '.'], { env: c.resticEnv, cwd: src }), 'restic backup').stdout;
  const snapshotID = (JSON.parse(out.trim().split('\n').pop()!) as { snapshot_id: string }).snapshot_id.slice(0, 8);

  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();

  await c.http.create(pv('pv-r', 'csi', { namespace: 'app', name: 'restored' }));
  await c.http.create(pvc('restored', 'app', 'pv-r'));
  const pod = await c.createPod({ name: 'web', volumes: [pvcVolume('data', 'restored'), emptyDirVolume('scratch')], restoreWait: 'waiting' });
  const uid = pod.metadata.uid as string;
  const target = c.kubelet.csi(uid, 'pv-r');
  const scratch = c.kubelet.emptyDir(uid, 'scratch');
  const restore = await c.createRestore('r1', 'nightly');
  const pvrData = await c.createPvr({ restore, pod: { namespace: 'app', name: 'web', uid }, volume: 'data', repoIdentifier: c.repo('app'), snapshotID });
  const pvrScratch = await c.createPvr({ restore, pod: { namespace: 'app', name: 'web', uid }, volume: 'scratch', repoIdentifier: c.repo('app'), snapshotID, uploaderSettings: { WriteSparseFiles: 'true' } });

  // the init container is not running yet: nothing happens
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal((await c.get('PodVolumeRestore', pvrData.metadata.name)).status?.phase ?? '', '');
  assert.deepEqual(fs.readdirSync(target), []);

  await c.setRestoreWaitRunning('app', 'web');
  const done = await c.waitPhase('PodVolumeRestore', pvrData.metadata.name, ['Completed', 'Failed'], 60_000);
  assert.equal(done.status.phase, 'Completed', done.status.message);
  assert.ok(done.status.startTimestamp && done.status.completionTimestamp);
  assert.equal(done.status.progress.totalBytes, done.status.progress.bytesDone);
  assert.ok(done.status.progress.totalBytes > 1_000_000);
  const sparseDone = await c.waitPhase('PodVolumeRestore', pvrScratch.metadata.name, ['Completed', 'Failed'], 60_000);
  assert.equal(sparseDone.status.phase, 'Completed', sparseDone.status.message);

  // the marker: .velero holds exactly the Restore UID, world-readable
  for (const dir of [target, scratch]) {
    assert.deepEqual(fs.readdirSync(path.join(dir, '.velero')), [restore.uid]);
    assert.equal(fs.statSync(path.join(dir, '.velero')).mode & 0o777, 0o755);
    assert.equal(fs.statSync(path.join(dir, '.velero', restore.uid)).mode & 0o777, 0o644);
  }
  // data identical apart from .velero
  const a = snapshotFacts(src);
  const b = snapshotFacts(target);
  for (const m of [a, b]) for (const k of [...m.keys()]) if (k === '.velero' || k.startsWith('.velero/')) m.delete(k);
  assert.deepEqual(diffFacts(a, b), []);
  // sparse restore allocated fewer blocks for the 8 MiB sparse file
  const st = fs.statSync(path.join(scratch, 'sparse.img'));
  assert.equal(st.size, 8 * 1024 * 1024);
  assert.ok(st.blocks * 512 < 1024 * 1024, `sparse file allocated ${st.blocks * 512} bytes`);
});

test('agent: a failed restore is Failed without a marker; PVRs of pods on other nodes are not touched', async (t) => {
  const c = await startCluster({ velero: '1.10' });
  t.after(() => c.close());
  await c.initRepo('app');
  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();
  const pod = await c.createPod({ name: 'web', volumes: [emptyDirVolume('data')], restoreWait: 'running' });
  const uid = pod.metadata.uid as string;
  const dir = c.kubelet.emptyDir(uid, 'data');
  writeFiles(dir, { 'keep.txt': 'x' });
  const other = await c.createPod({ name: 'elsewhere', node: 'node-2', volumes: [emptyDirVolume('data')], restoreWait: 'running' });
  const restore = await c.createRestore('r2', 'b');
  const bad = await c.createPvr({ restore, pod: { namespace: 'app', name: 'web', uid }, volume: 'data', repoIdentifier: c.repo('app'), snapshotID: 'deadbeef' });
  const foreign = await c.createPvr({ restore, pod: { namespace: 'app', name: 'elsewhere', uid: other.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app'), snapshotID: 'deadbeef' });
  const done = await c.waitPhase('PodVolumeRestore', bad.metadata.name, ['Completed', 'Failed']);
  assert.equal(done.status.phase, 'Failed');
  assert.match(done.status.message, /no snapshot matching ID deadbeef/);
  assert.ok(!fs.existsSync(path.join(dir, '.velero')), 'no marker for a failed restore');
  await waitFor(async () => (await c.events()).some((e) => e.involvedObject?.name === bad.metadata.name && e.type === 'Warning'), 10_000, 'warning event on the PVR');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await c.get('PodVolumeRestore', foreign.metadata.name)).status?.phase ?? '', '');
});
