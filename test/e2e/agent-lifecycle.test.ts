/** `cairn agent` end to end: crash and restart, cancellation, SIGTERM, concurrency. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seeded, randomData } from '../support/tree.js';
import { startCluster, emptyDirVolume, writeFiles, waitFor, type Cluster, type Obj } from '../support/agent.js';

/** A pod with one emptyDir holding `mib` MiB of incompressible data, and its PVB. */
async function bigVolumePvb(c: Cluster, podName: string, backup: { name: string; uid: string }, mib: number, seed = 1): Promise<Obj> {
  const pod = await c.createPod({ name: podName, volumes: [emptyDirVolume('data')] });
  const dir = c.kubelet.emptyDir(pod.metadata.uid, 'data');
  const rand = seeded(seed);
  for (let i = 0; i < mib / 8; i++) writeFiles(dir, { [`f${i}.bin`]: randomData(rand, 8 << 20) });
  return c.createPvb({ backup, pod: { namespace: 'app', name: podName, uid: pod.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app') });
}

test('agent killed mid-backup: the restarted agent marks the item Failed, it never stays InProgress', async (t) => {
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepo('app');
  let agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();
  const backup = await c.createBackup('b1');
  const item = await bigVolumePvb(c, 'p1', backup, 256);
  await c.waitPhase('PodVolumeBackup', item.metadata.name, ['InProgress', 'Completed', 'Failed']);
  await agent.stop('SIGKILL');
  assert.equal((await c.get('PodVolumeBackup', item.metadata.name)).status.phase, 'InProgress');
  agent = c.startAgent();
  await agent.ready();
  const failed = await c.waitPhase('PodVolumeBackup', item.metadata.name, ['Completed', 'Failed']);
  assert.equal(failed.status.phase, 'Failed');
  assert.match(failed.status.message, /found a podvolumebackup with status "InProgress" during the server starting, mark it as "Failed"/);
  assert.ok(failed.status.completionTimestamp);
});

test('agent stops work when the owning Backup is deleted, and on spec.cancel with 1.17 CRDs (Canceled)', async (t) => {
  const c = await startCluster({ velero: '1.17' });
  t.after(() => c.close());
  await c.initRepo('app');
  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();

  // the Backup is deleted but its PVB stays (orphaned): the agent stops and fails it
  const b1 = await c.createBackup('b1');
  const first = await bigVolumePvb(c, 'p1', b1, 256, 1);
  await c.waitPhase('PodVolumeBackup', first.metadata.name, ['InProgress', 'Completed', 'Failed']);
  await c.http.delete('velero.io/v1', 'Backup', 'velero', 'b1', { propagationPolicy: 'Orphan' });
  const afterDelete = await c.waitPhase('PodVolumeBackup', first.metadata.name, ['Completed', 'Failed', 'Canceled']);
  assert.equal(afterDelete.status.phase, 'Failed');
  assert.match(afterDelete.status.message, /backup b1 (no longer exists|is being deleted)/);

  // the Backup is deleted with its dependents (garbage collection removes the PVB): work stops
  const b3 = await c.createBackup('b3');
  const third = await bigVolumePvb(c, 'p3', b3, 256, 3);
  await c.waitPhase('PodVolumeBackup', third.metadata.name, ['InProgress', 'Completed', 'Failed']);
  await c.http.delete('velero.io/v1', 'Backup', 'velero', 'b3', { propagationPolicy: 'Background' });
  await waitFor(async () => !(await c.http.tryGet('velero.io/v1', 'PodVolumeBackup', 'velero', third.metadata.name)), 20_000, 'PVB garbage-collected');
  await agent.waitForLog((l) => l.msg === 'pod volume backup failed' && l.pvb === third.metadata.name, 20_000);
  assert.ok(!agent.logs.some((l) => l.msg === 'pod volume backup finished' && l.pvb === third.metadata.name), 'no terminal write on a deleted object');

  // the owner reaches a terminal phase (e.g. the server gave up): the agent stops too
  const b4 = await c.createBackup('b4');
  const fourth = await bigVolumePvb(c, 'p4', b4, 256, 4);
  await c.waitPhase('PodVolumeBackup', fourth.metadata.name, ['InProgress', 'Completed', 'Failed']);
  await c.http.mergePatch('velero.io/v1', 'Backup', 'velero', 'b4', { status: { phase: 'PartiallyFailed' } });
  const afterFinish = await c.waitPhase('PodVolumeBackup', fourth.metadata.name, ['Completed', 'Failed', 'Canceled']);
  assert.equal(afterFinish.status.phase, 'Failed');
  assert.match(afterFinish.status.message, /backup b4 has already finished \(phase PartiallyFailed\)/);

  const b2 = await c.createBackup('b2');
  const second = await bigVolumePvb(c, 'p2', b2, 256, 2);
  await c.waitPhase('PodVolumeBackup', second.metadata.name, ['InProgress', 'Completed', 'Failed']);
  await c.http.mergePatch('velero.io/v1', 'PodVolumeBackup', 'velero', second.metadata.name, { spec: { cancel: true } });
  const canceled = await c.waitPhase('PodVolumeBackup', second.metadata.name, ['Completed', 'Failed', 'Canceled']);
  assert.equal(canceled.status.phase, 'Canceled');
  assert.match(canceled.status.message, /canceled/);
  assert.ok(canceled.status.completionTimestamp);
});

test('agent on 1.16 CRDs: SIGTERM fails running work (Failed, never Canceled) and exits 0 within the grace period', async (t) => {
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepo('app');
  const agent = c.startAgent(['--shutdown-grace', '10s']);
  t.after(() => agent.stop());
  await agent.ready();
  const b1 = await c.createBackup('b1');
  const item = await bigVolumePvb(c, 'p1', b1, 256);
  await c.waitPhase('PodVolumeBackup', item.metadata.name, ['InProgress', 'Completed', 'Failed']);
  const started = Date.now();
  const exit = await agent.stop('SIGTERM');
  assert.equal(exit.code, 0, `exit status (stderr: ${agent.stderr})`);
  assert.ok(Date.now() - started < 10_000, 'stopped within the grace period');
  const failed = await c.get('PodVolumeBackup', item.metadata.name);
  assert.equal(failed.status.phase, 'Failed');
  assert.match(failed.status.message, /node agent was stopped while the pod volume backup was running/);
});

test('agent honours the concurrency limit (FIFO) and the node-agent ConfigMap', async (t) => {
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepo('app');
  await c.http.create({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'node-agent-config', namespace: 'velero' },
    data: { 'config.json': JSON.stringify({ loadConcurrency: { globalConfig: 1, perNodeConfig: [{ nodeSelector: { matchLabels: { 'kubernetes.io/hostname': 'node-1' } }, number: 2 }] } }) },
  });
  const agent = c.startAgent(['--concurrency', '5', '--per-repository-concurrency', '5', '--node-agent-configmap', 'node-agent-config']);
  t.after(() => agent.stop());
  await agent.ready();
  const b = await c.createBackup('b1');
  const items: Obj[] = [];
  for (let i = 0; i < 4; i++) items.push(await bigVolumePvb(c, `p${i}`, b, 48, i + 1));
  let maxRunning = 0;
  const done = waitFor(async () => {
    const all = await Promise.all(items.map((o) => c.get('PodVolumeBackup', o.metadata.name)));
    maxRunning = Math.max(maxRunning, all.filter((o) => o.status?.phase === 'InProgress').length);
    return all.every((o) => ['Completed', 'Failed'].includes(o.status?.phase)) && all;
  }, 120_000, 'all PVBs finished', 50);
  const all = await done;
  for (const o of all) assert.equal(o.status.phase, 'Completed', o.status.message);
  assert.ok(maxRunning <= 2, `at most 2 at once (saw ${maxRunning})`);
  const conc = agent.logs.find((l) => l.msg === 'concurrency');
  assert.equal(conc?.global, 2, 'the per-node entry of the ConfigMap applies');
  // FIFO: the queue hands items out in creation order (claims of items started at once may return in either order)
  const starts = agent.logs.filter((l) => l.msg === 'pod volume backup dequeued').map((l) => l.pvb);
  assert.deepEqual(starts, items.map((o) => o.metadata.name));
});
