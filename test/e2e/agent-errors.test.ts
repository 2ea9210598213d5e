/** `cairn agent` end to end: every bad input ends Failed with a specific message, nothing else is touched. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startCluster, emptyDirVolume, pvcVolume, pvc, pv, writeFiles, bsl, type Cluster, type Obj } from '../support/agent.js';

test('bad inputs end Failed with a specific message; other nodes\' and kopia items are handled by the settings', async (t) => {
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepo('app');
  await c.http.create(bsl('readonly', { accessMode: 'ReadOnly' }));
  await c.http.create(bsl('needs-secret', { credential: { name: 'no-such-secret', key: 'cloud' } }));
  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();

  await c.http.create(pv('pv-blk', 'block', { namespace: 'app', name: 'blk' }));
  await c.http.create(pvc('blk', 'app', 'pv-blk', 'Block'));
  const pod = await c.createPod({ name: 'web', volumes: [emptyDirVolume('data'), emptyDirVolume('dup'), emptyDirVolume('absent'), pvcVolume('raw', 'blk')] });
  const uid = pod.metadata.uid as string;
  const data = c.kubelet.emptyDir(uid, 'data');
  writeFiles(data, { 'f.txt': 'content' });
  c.kubelet.emptyDir(uid, 'dup');
  c.kubelet.volume(uid, 'kubernetes.io~nfs', 'dup');
  const podRef = { namespace: 'app', name: 'web', uid };
  const b = await c.createBackup('b1');
  const repo = c.repo('app');
  const cases: Array<[string, Obj, RegExp]> = [
    ['missing pod', { pod: { namespace: 'app', name: 'ghost', uid: 'ghost-uid' }, volume: 'data', repoIdentifier: repo }, /error getting pod app\/ghost: pod not found/],
    ['volume not in pod', { pod: podRef, volume: 'nope', repoIdentifier: repo }, /volume nope not found in pod app\/web/],
    ['volume dir missing', { pod: podRef, volume: 'absent', repoIdentifier: repo }, /expected one matching path: .*got 0/],
    ['several matches', { pod: podRef, volume: 'dup', repoIdentifier: repo }, /expected one matching path: .*got 2/],
    ['block volume', { pod: podRef, volume: 'raw', repoIdentifier: repo }, /block mode not supported by the restic uploader/],
    ['malformed repoIdentifier', { pod: podRef, volume: 'data', repoIdentifier: 's3:' }, /malformed repoIdentifier/],
    ['unsupported backend', { pod: podRef, volume: 'data', repoIdentifier: 'b2:bucket:path' }, /unsupported repository backend "b2"/],
    ['unknown BSL', { pod: podRef, volume: 'data', repoIdentifier: repo, bsl: 'nowhere' }, /backup storage location nowhere not found/],
    ['read-only BSL', { pod: podRef, volume: 'data', repoIdentifier: repo, bsl: 'readonly' }, /backup storage location readonly is read-only/],
    ['missing credential secret', { pod: podRef, volume: 'data', repoIdentifier: repo, bsl: 'needs-secret' }, /secret no-such-secret .* not found/],
    ['repository missing (unreachable)', { pod: podRef, volume: 'data', repoIdentifier: path.join(c.tmp, 'no-repo-here') }, /error opening repository .*no repository at/],
    ['kopia uploader', { pod: podRef, volume: 'data', repoIdentifier: '', uploaderType: 'kopia' }, /kopia pod volume backups are not supported/],
  ];
  const created: Array<[string, Obj, RegExp]> = [];
  for (const [what, o, re] of cases) created.push([what, await c.createPvb({ backup: b, ...o } as Parameters<Cluster['createPvb']>[0]), re]);
  const foreign = await c.createPvb({ backup: b, pod: podRef, volume: 'data', repoIdentifier: repo, node: 'node-2' });
  for (const [what, o, re] of created) {
    const done = await c.waitPhase('PodVolumeBackup', o.metadata.name, ['Completed', 'Failed'], 30_000);
    assert.equal(done.status.phase, 'Failed', `${what}: ${done.status.message}`);
    assert.match(done.status.message, re, what);
    assert.ok(done.status.completionTimestamp, `${what}: completionTimestamp`);
  }
  assert.equal((await c.get('PodVolumeBackup', foreign.metadata.name)).status?.phase ?? '', '', 'another node\'s PVB is left alone');
  assert.deepEqual(fs.readdirSync(data), ['f.txt'], 'the volume is untouched');

  // wrong password: its own check, since the password is per installation
  await c.http.mergePatch('v1', 'Secret', 'velero', 'velero-repo-credentials', { data: { 'repository-password': Buffer.from('wrong').toString('base64') } });
  const wrong = await c.createPvb({ backup: b, pod: podRef, volume: 'data', repoIdentifier: repo });
  const wrongDone = await c.waitPhase('PodVolumeBackup', wrong.metadata.name, ['Completed', 'Failed']);
  assert.equal(wrongDone.status.phase, 'Failed');
  assert.match(wrongDone.status.message, /error opening repository .*(wrong password|no key)/i);
  // missing password secret
  await c.http.delete('v1', 'Secret', 'velero', 'velero-repo-credentials');
  const nopw = await c.createPvb({ backup: b, pod: podRef, volume: 'data', repoIdentifier: repo });
  const nopwDone = await c.waitPhase('PodVolumeBackup', nopw.metadata.name, ['Completed', 'Failed']);
  assert.match(nopwDone.status.message, /repository password secret not found/);
  // events on the PVB and on the pod
  const events = await c.events();
  assert.ok(events.some((e) => e.involvedObject?.kind === 'PodVolumeBackup' && e.reason === 'BackupFailed'));
  assert.ok(events.some((e) => e.involvedObject?.kind === 'Pod' && e.involvedObject?.name === 'web' && e.reason === 'VolumeBackupFailed'));
  // no secret in the logs
  const text = agent.logs.map((l) => JSON.stringify(l)).join('\n');
  assert.ok(!text.includes('test-password'), 'password never logged');
});

test('--kopia-items=ignore leaves kopia items alone; host pods dir that does not match keeps the agent unready', async (t) => {
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepo('app');
  const pod = await c.createPod({ name: 'web', volumes: [emptyDirVolume('data')] });
  const agent = c.startAgent(['--kopia-items', 'ignore'], { hostPodsDir: path.join(c.tmp, 'wrong-host-pods') });
  t.after(() => agent.stop());
  fs.mkdirSync(path.join(c.tmp, 'wrong-host-pods'));
  const notReady = await agent.waitForLog((l) => l.msg === 'host pods directory check failed; not taking work');
  assert.match(notReady.reason, /does not correspond to the kubelet pods directory.*app\/web/);
  const b = await c.createBackup('b1');
  const item = await c.createPvb({ backup: b, pod: { namespace: 'app', name: 'web', uid: pod.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app') });
  const kopia = await c.createPvb({ backup: b, pod: { namespace: 'app', name: 'web', uid: pod.metadata.uid }, volume: 'data', repoIdentifier: '', uploaderType: 'kopia' });
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal((await c.get('PodVolumeBackup', item.metadata.name)).status?.phase ?? '', '', 'no work while not ready');
  // the directory appears (e.g. the mount was fixed): the agent becomes ready and processes it
  fs.mkdirSync(path.join(c.tmp, 'wrong-host-pods', pod.metadata.uid, 'volumes', 'kubernetes.io~empty-dir', 'data'), { recursive: true });
  writeFiles(path.join(c.tmp, 'wrong-host-pods', pod.metadata.uid, 'volumes', 'kubernetes.io~empty-dir', 'data'), { 'a': 'b' });
  const done = await c.waitPhase('PodVolumeBackup', item.metadata.name, ['Completed', 'Failed'], 30_000);
  assert.equal(done.status.phase, 'Completed', done.status.message);
  assert.equal((await c.get('PodVolumeBackup', kopia.metadata.name)).status?.phase ?? '', '', 'kopia item ignored');
});

test('watches that fail (500) or expire (410) are restarted: the agent keeps processing', async (t) => {
  const c = await startCluster({ velero: '1.16' });
  t.after(() => c.close());
  await c.initRepo('app');
  const agent = c.startAgent();
  t.after(() => agent.stop());
  await agent.ready();
  const pod = await c.createPod({ name: 'web', volumes: [emptyDirVolume('data')] });
  writeFiles(c.kubelet.emptyDir(pod.metadata.uid, 'data'), { 'a.txt': 'a' });
  const b = await c.createBackup('b1');
  // every re-watch of the PVBs fails twice with 500 (client-node stops its informer on that)
  const fault = c.server.failNextWatches(2, 500, { path: /podvolumebackups/ });
  c.server.closeAllWatches();
  await agent.waitForLog((l) => l.msg === 'watch failed, restarting' && l.informer === 'podvolumebackups', 15_000);
  const first = await c.createPvb({ backup: b, pod: { namespace: 'app', name: 'web', uid: pod.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app') });
  assert.equal((await c.waitPhase('PodVolumeBackup', first.metadata.name, ['Completed', 'Failed'], 30_000)).status.phase, 'Completed');
  assert.equal(fault.hits, 2);
  // compaction: the next watch from an old resourceVersion gets 410 and relists
  c.server.compact();
  c.server.closeAllWatches();
  const second = await c.createPvb({ backup: b, pod: { namespace: 'app', name: 'web', uid: pod.metadata.uid }, volume: 'data', repoIdentifier: c.repo('app') });
  assert.equal((await c.waitPhase('PodVolumeBackup', second.metadata.name, ['Completed', 'Failed'], 30_000)).status.phase, 'Completed');
});
