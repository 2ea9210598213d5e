/**
 * `cairn k8s restore` end to end without Velero: the volumes of a cairn backup restored into new
 * pods of another namespace that opted in with the restore-wait init container (data and the
 * `.velero/<token>` marker the helper waits for), and `--in-place` into a running pod (no init
 * container, no marker).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diffFacts, makeRichTree, randomData, seeded, snapshotFacts } from '../support/tree.js';
import { writeFiles, type Obj } from '../support/agent.js';
import { parseJson, startStandalone, waitFor } from '../support/k8s.js';

function withoutMarker(dir: string) {
  const f = snapshotFacts(dir);
  for (const k of [...f.keys()]) if (k === '.velero' || k.startsWith('.velero/')) f.delete(k);
  return f;
}

test('cairn k8s restore: into new pods with the restore-wait init container (namespace mapping), then in place', async (t) => {
  const s = await startStandalone({ velero: '1.17' });
  t.after(() => s.close());
  const a1 = s.agent('node-1');
  const a2 = s.agent('node-2');
  await Promise.all([a1.ready(), a2.ready()]);

  // the source: a StatefulSet-like pod with a claim and a Deployment-like pod with an emptyDir
  await s.claim('app', 'data-db-0');
  const db = await s.pod({ name: 'db-0', namespace: 'app', node: 'node-1', annotations: { 'backup.velero.io/backup-volumes': 'data,cache' }, volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }, { name: 'cache', emptyDir: {} }] });
  const worker = await s.pod({ name: 'worker-7d9f-abcde', namespace: 'app', node: 'node-2', annotations: { 'backup.velero.io/backup-volumes': 'spool,empty' }, volumes: [{ name: 'spool', emptyDir: {} }, { name: 'empty', emptyDir: {} }] });
  makeRichTree(db.dirs.data!, 3);
  writeFiles(db.dirs.cache!, { 'hot.bin': randomData(seeded(9), 300_000) });
  writeFiles(worker.dirs.spool!, { 'q/0001.msg': 'first\n', 'q/0002.msg': 'second\n' });
  const b = await s.k8s(['backup', '--namespace', 'app', '--name', 'src', '--wait', '--json']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(parseJson(b, 'backup').phase, 'Completed');

  // the targets in namespace app-copy: the same StatefulSet pod name, and a new Deployment pod
  // that names its source; both carry the restore helper, which mounts the volumes to fill
  await s.namespace('app-copy');
  await s.claim('app-copy', 'data-db-0');
  const tdb = await s.pod({ name: 'db-0', namespace: 'app-copy', node: 'node-2', restoreWait: { volumes: ['data', 'cache'] }, volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }, { name: 'cache', emptyDir: {} }] });
  const tworker = await s.pod({
    name: 'worker-55c6-zzzzz',
    namespace: 'app-copy',
    node: 'node-1',
    annotations: { 'restore.cairn.io/source-pod': 'worker-7d9f-abcde' },
    // a literal token also works; the helper's argument is what names the marker
    restoreWait: { volumes: ['spool'], args: ['--interval', '1s', 'restore-spool-1'], env: [] },
    volumes: [{ name: 'spool', emptyDir: {} }, { name: 'empty', emptyDir: {} }],
  });
  // a pod of the target namespace that did not opt in is left alone
  const bystander = await s.pod({ name: 'db-1', namespace: 'app-copy', node: 'node-1', volumes: [{ name: 'cache', emptyDir: {} }] });

  const r = await s.k8s(['restore', '--from-backup', 'src', '--namespace-mapping', 'app:app-copy', '--name', 'copy-1', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const created = parseJson(r, 'restore');
  assert.deepEqual((created.volumes as Obj[]).map((v) => `${v.pod}/${v.volume}<-${v.sourceNamespace}/${v.sourcePod}`).sort(), ['db-0/cache<-app/db-0', 'db-0/data<-app/db-0', 'worker-55c6-zzzzz/spool<-app/worker-7d9f-abcde']);
  assert.deepEqual(created.problems, []);
  const pvrs = await s.pvrs('cairn.io/restore-name=copy-1');
  assert.equal(pvrs.length, 3);
  for (const p of pvrs) {
    assert.equal(p.metadata.ownerReferences, undefined);
    assert.equal(p.spec.sourceNamespace, 'app');
    assert.equal(p.spec.repoIdentifier, s.repo('app'), 'the repository of the source namespace');
    assert.equal(p.metadata.labels['velero.io/pod-uid'], p.spec.pod.uid);
    const token = p.spec.pod.name === 'db-0' ? tdb.pod.metadata.uid : 'restore-spool-1';
    assert.equal(p.metadata.labels['velero.io/restore-uid'], token);
  }

  // nothing happens until the helper runs
  await new Promise((res) => setTimeout(res, 2500));
  assert.ok((await s.pvrs('cairn.io/restore-name=copy-1')).every((p) => (p.status?.phase ?? '') === ''));
  await s.restoreWaitRunning('app-copy', 'db-0');
  await s.restoreWaitRunning('app-copy', 'worker-55c6-zzzzz');
  await waitFor(async () => (await s.pvrs('cairn.io/restore-name=copy-1')).every((p) => ['Completed', 'Failed'].includes(p.status?.phase)), 60_000, 'restores done');
  for (const p of await s.pvrs('cairn.io/restore-name=copy-1')) assert.equal(p.status.phase, 'Completed', p.status.message);

  // data and markers, in the target pods' volume directories
  assert.deepEqual(diffFacts(withoutMarker(db.dirs.data!), withoutMarker(tdb.dirs.data!)), []);
  assert.deepEqual(diffFacts(withoutMarker(db.dirs.cache!), withoutMarker(tdb.dirs.cache!)), []);
  assert.deepEqual(diffFacts(withoutMarker(worker.dirs.spool!), withoutMarker(tworker.dirs.spool!)), []);
  assert.deepEqual(fs.readdirSync(path.join(tdb.dirs.data!, '.velero')), [tdb.pod.metadata.uid]);
  assert.deepEqual(fs.readdirSync(path.join(tdb.dirs.cache!, '.velero')), [tdb.pod.metadata.uid]);
  assert.deepEqual(fs.readdirSync(path.join(tworker.dirs.spool!, '.velero')), ['restore-spool-1']);
  assert.deepEqual(fs.readdirSync(tworker.dirs.empty!), [], 'a volume the helper does not mount is not restored');
  assert.deepEqual(fs.readdirSync(bystander.dirs.cache!), []);

  // describe / ls show the restore
  const d = parseJson(await s.k8s(['describe', 'restore', 'copy-1', '--json']), 'describe restore');
  assert.equal(d.phase, 'Completed');
  assert.equal(d.backup, 'src');
  assert.equal(d.volumeDetails.length, 3);
  const ls = await s.k8s(['ls', 'restores']);
  assert.match(ls.stdout, /copy-1\s+cairn\s+src\s+Completed\s+3\/3/);

  // mounting a volume the backup has nothing for is reported, not left waiting silently
  await s.namespace('app-copy2');
  await s.pod({ name: 'worker-x', namespace: 'app-copy2', node: 'node-2', annotations: { 'restore.cairn.io/source-pod': 'worker-7d9f-abcde' }, restoreWait: { volumes: ['spool', 'empty'] }, volumes: [{ name: 'spool', emptyDir: {} }, { name: 'empty', emptyDir: {} }] });
  const p2 = await s.k8s(['restore', '--from-backup', 'src', '--namespace-mapping', 'app:app-copy2', '--json']);
  const out2 = parseJson(p2, 'restore with a problem');
  assert.deepEqual((out2.volumes as Obj[]).map((v) => v.volume), ['spool']);
  assert.equal(out2.problems.length, 1);
  assert.match(out2.problems[0].reason, /backed-up volume was empty/);

  // --- in place: the running source pod gets its data back, without init container or marker ---
  fs.writeFileSync(path.join(worker.dirs.spool!, 'q', '0001.msg'), 'overwritten by the app\n');
  fs.rmSync(path.join(worker.dirs.spool!, 'q', '0002.msg'));
  const ip = await s.k8s(['restore', '--from-backup', 'src', '--in-place', '--selector', '', '--name', 'undo-1', '--wait', '--json', '--timeout', '1m']);
  assert.equal(ip.code, 0, ip.stdout + ip.stderr);
  const ipOut = parseJson(ip, 'in-place restore');
  assert.equal(ipOut.phase, 'Completed');
  assert.deepEqual((ipOut.volumes as Obj[]).map((v) => `${v.namespace}/${v.pod}/${v.volume}`).sort(), ['app/db-0/cache', 'app/db-0/data', 'app/worker-7d9f-abcde/spool']);
  assert.equal(fs.readFileSync(path.join(worker.dirs.spool!, 'q', '0001.msg'), 'utf8'), 'first\n');
  assert.equal(fs.readFileSync(path.join(worker.dirs.spool!, 'q', '0002.msg'), 'utf8'), 'second\n');
  assert.ok(!fs.existsSync(path.join(worker.dirs.spool!, '.velero')), 'no marker for in-place restores');
  const inPlacePvrs = await s.pvrs('cairn.io/restore-name=undo-1');
  assert.ok(inPlacePvrs.every((p) => p.metadata.labels['cairn.io/restore-mode'] === 'in-place'));
});
