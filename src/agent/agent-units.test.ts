import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { isCairnError } from '../core/errors.js';
import { concurrencyFor, parseNodeAgentConfig, selectorMatches } from './config.js';
import { Scheduler, type Job } from './scheduler.js';
import { detectCapabilities, phasesOf } from './capabilities.js';
import { parseRepoIdentifier, backendOptions, repositoryPassword, type AccessSources } from './repo-access.js';
import { redactRepo } from './log.js';
import { resolveVolumeDir, type VolumeLookup } from './hostpath.js';
import { phaseGuardedPatch, progressField } from './status.js';
import { decidePvb } from './pvb.js';
import { decidePvr, writeRestoreMarker } from './pvr.js';
import { ownerProblemOf } from './owners.js';
import { kubeTime, type PodVolumeBackup, type PodVolumeRestore } from './velero.js';

test('loadConcurrency: smallest matching per-node number wins, else global, else fallback', () => {
  const lc = parseNodeAgentConfig({ 'node-agent-config.json': JSON.stringify({ loadConcurrency: { globalConfig: 4, perNodeConfig: [
    { nodeSelector: { matchLabels: { pool: 'big' } }, number: 8 },
    { nodeSelector: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }, number: 3 },
  ] } }) })!;
  assert.equal(concurrencyFor(lc, { pool: 'big', zone: 'a' }, 1), 3);
  assert.equal(concurrencyFor(lc, { pool: 'big' }, 1), 8);
  assert.equal(concurrencyFor(lc, { zone: 'c' }, 1), 4);
  assert.equal(concurrencyFor({}, {}, 2), 2);
  assert.equal(parseNodeAgentConfig({}), undefined);
  assert.throws(() => parseNodeAgentConfig({ a: '{', b: '{}' }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.throws(() => parseNodeAgentConfig({ a: '{' }), (e) => isCairnError(e, 'INVALID_ARGUMENT'));
  assert.ok(selectorMatches({ matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] }, {}));
  assert.ok(!selectorMatches({ matchExpressions: [{ key: 'x', operator: 'NotIn', values: ['1'] }] }, { x: '1' }));
});

test('scheduler: FIFO by creation time, global and per-repository limits, no head-of-line blocking', async () => {
  const s = new Scheduler(2, 1, (_j, e) => { throw e; });
  const started: string[] = [];
  const release = new Map<string, () => void>();
  const job = (name: string, created: number, repo: string): Job => ({
    key: name, name, createdMs: created, repoKey: repo,
    run: () => new Promise<void>((r) => { started.push(name); release.set(name, r); }),
  });
  s.enqueue(job('c', 3, 'r2'));
  s.enqueue(job('a', 1, 'r1'));
  s.enqueue(job('b', 2, 'r1'));
  s.enqueue(job('d', 4, 'r3'));
  assert.deepEqual(started, []);
  s.resume();
  assert.deepEqual(started, ['a', 'c']); // b waits for r1, c (r2) is not blocked behind it
  assert.equal(s.enqueue(job('a', 1, 'r1')), false, 'a running job is not queued twice');
  release.get('a')!();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, ['a', 'c', 'b']);
  s.remove('d');
  release.get('c')!();
  release.get('b')!();
  await s.idle();
  assert.deepEqual(started, ['a', 'c', 'b']);
});

test('scheduler: items created within the same second run in the order the agent saw them, not by name', async () => {
  const s = new Scheduler(1, 5, (_j, e) => { throw e; });
  const started: string[] = [];
  const release: Array<() => void> = [];
  const job = (name: string): Job => ({
    key: name, name, createdMs: 5000, repoKey: 'r',
    run: () => new Promise<void>((r) => { started.push(name); release.push(r); }),
  });
  // random-looking generated names, seen (created) in this order
  for (const n of ['b1-zz9', 'b1-aa1', 'b1-mm5']) s.enqueue(job(n));
  s.resume();
  for (let i = 0; i < 3; i++) {
    release.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  await s.idle();
  assert.deepEqual(started, ['b1-zz9', 'b1-aa1', 'b1-mm5']);
});

const crd = (phases: string[], extra: Record<string, unknown> = {}) => ({
  spec: { versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { properties: { status: { properties: { phase: { enum: phases }, ...extra } } } } } }] },
});

test('capabilities from CRDs', () => {
  const four = ['New', 'InProgress', 'Completed', 'Failed'];
  const eight = ['New', 'Accepted', 'Prepared', 'InProgress', 'Canceling', 'Canceled', 'Completed', 'Failed'];
  const old = detectCapabilities(crd(four), crd(four), undefined, {});
  assert.equal(old.repoPlural, 'resticrepositories');
  assert.deepEqual(old.passwordSecrets, ['velero-restic-credentials', 'velero-repo-credentials']);
  assert.ok(!old.pvbPhases.has('Canceled'));
  assert.equal(old.incrementalBytes, false);
  const v118 = detectCapabilities(crd(eight, { incrementalBytes: { type: 'integer' } }), crd(eight), {}, undefined);
  assert.equal(v118.repoPlural, 'backuprepositories');
  assert.ok(v118.pvbPhases.has('Canceled'));
  assert.ok(v118.incrementalBytes);
  assert.deepEqual([...phasesOf(undefined)], four);
});

test('repoIdentifier parsing and redaction', () => {
  assert.equal(parseRepoIdentifier('s3:s3-eu-west-1.amazonaws.com/backups/cl1/restic/shop').scheme, 's3');
  assert.equal(parseRepoIdentifier('s3:http://minio.velero.svc:9000/velero/restic/app').scheme, 's3');
  assert.equal(parseRepoIdentifier('azure:velero:/cl1/restic/shop').scheme, 'azure');
  assert.equal(parseRepoIdentifier('gs:velero:/restic/shop').scheme, 'gs');
  assert.equal(parseRepoIdentifier('/var/repo/ns').scheme, 'local');
  assert.equal(parseRepoIdentifier('rest:https://u:p@h:8000/r').display, 'rest:https://***@h:8000/r');
  for (const bad of ['', 's3:', 's3:host', 'azure:', 'gs:bucket', 'relative/path', 'local:rel']) {
    assert.throws(() => parseRepoIdentifier(bad), (e) => isCairnError(e, 'INVALID_ARGUMENT'), bad);
  }
  assert.throws(() => parseRepoIdentifier('b2:bucket:path'), (e) => isCairnError(e, 'UNSUPPORTED'));
  assert.equal(redactRepo('s3:https://key:secret@minio/b'), 's3:https://***@minio/b');
});

test('backend options from a BSL: caCertRef over caCert, per-BSL credential file, password secret order', async () => {
  const secrets: Record<string, Record<string, Buffer>> = {
    ca: { 'ca.pem': Buffer.from('PEM-REF') },
    creds: { cloud: Buffer.from('[default]\naws_access_key_id=x\n') },
    'velero-repo-credentials': { 'repository-password': Buffer.from('pw') },
  };
  const written: string[] = [];
  const src: AccessSources = {
    getSecret: async (n) => secrets[n],
    materialize: async (s, k) => { written.push(`${s}-${k}`); return `/tmp/x/${s}-${k}`; },
    env: { AWS_SHARED_CREDENTIALS_FILE: '/credentials/cloud' },
  };
  const repo = parseRepoIdentifier('s3:http://minio:9000/b/restic/ns');
  const o = await backendOptions(repo, { metadata: { name: 'default' }, spec: { provider: 'aws', objectStorage: { caCert: Buffer.from('PEM').toString('base64'), caCertRef: { name: 'ca', key: 'ca.pem' } }, credential: { name: 'creds', key: 'cloud' }, config: { region: 'eu', insecureSkipTLSVerify: 'true', s3ForcePathStyle: 'true', profile: 'p' } } }, src);
  assert.deepEqual(o.caCerts?.map(String), ['PEM-REF']);
  assert.equal(o.insecureSkipTLSVerify, true);
  assert.deepEqual(o.s3, { credentialsFile: '/tmp/x/creds-cloud', profile: 'p', region: 'eu', bucketLookup: 'path' });
  const o2 = await backendOptions(repo, { metadata: { name: 'd' }, spec: { provider: 'aws', objectStorage: { caCert: Buffer.from('PEM').toString('base64') } } }, src);
  assert.deepEqual(o2.caCerts?.map(String), ['PEM']);
  assert.equal(o2.s3?.credentialsFile, '/credentials/cloud');
  assert.equal(o2.spoolDir, undefined, 'without a scratch volume packs spool to the default temporary folder');
  const o3 = await backendOptions(repo, { metadata: { name: 'd' }, spec: { provider: 'aws' } }, { ...src, env: { ...src.env, VELERO_SCRATCH_DIR: '/scratch' } });
  assert.equal(o3.spoolDir, '/scratch', "packs bound for an object store spool to the DaemonSet's scratch volume");
  await assert.rejects(backendOptions(repo, { metadata: { name: 'd' }, spec: { credential: { name: 'missing', key: 'cloud' } } }, src), (e) => isCairnError(e, 'NOT_FOUND'));
  assert.equal(await repositoryPassword(src, ['velero-restic-credentials', 'velero-repo-credentials']), 'pw');
  await assert.rejects(repositoryPassword(src, ['nope']), (e) => isCairnError(e, 'NOT_FOUND') && /nope/.test(e.message));
});

function pod(volumes: k8s.V1Volume[], extra: Partial<k8s.V1PodSpec> = {}, annotations?: Record<string, string>): k8s.V1Pod {
  return { metadata: { name: 'p', namespace: 'ns', uid: 'uid-1', annotations }, spec: { nodeName: 'n1', containers: [{ name: 'c' }], volumes, ...extra } };
}

test('host path resolution: emptyDir, CSI PVC (/mount), migrated PV, local PV, ephemeral, block, zero/several matches', async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'cairn-hostpath-'));
  try {
    const mk = (p: string) => mkdirSync(path.join(root, p), { recursive: true });
    mk('uid-1/volumes/kubernetes.io~empty-dir/data');
    mk('uid-1/volumes/kubernetes.io~csi/pv-csi/mount');
    mk('uid-1/volumes/kubernetes.io~csi/pv-mig/mount');
    mk('uid-1/volumes/kubernetes.io~local-volume/pv-local');
    mk('uid-1/volumes/kubernetes.io~csi/pv-eph/mount');
    mk('uid-1/volumes/kubernetes.io~empty-dir/dup');
    mk('uid-1/volumes/kubernetes.io~nfs/dup');
    const pvcs: Record<string, k8s.V1PersistentVolumeClaim> = {
      csi: { spec: { volumeName: 'pv-csi' } }, mig: { spec: { volumeName: 'pv-mig' } }, local: { spec: { volumeName: 'pv-local' } },
      'p-eph': { spec: { volumeName: 'pv-eph' } }, blk: { spec: { volumeName: 'pv-blk', volumeMode: 'Block' } }, unbound: { spec: {} },
    };
    const pvs: Record<string, k8s.V1PersistentVolume> = {
      'pv-csi': { metadata: { name: 'pv-csi' }, spec: { csi: { driver: 'd', volumeHandle: 'h' } } },
      'pv-mig': { metadata: { name: 'pv-mig', annotations: { 'pv.kubernetes.io/provisioned-by': 'ebs.csi.aws.com' } }, spec: { awsElasticBlockStore: { volumeID: 'v' } } },
      'pv-local': { metadata: { name: 'pv-local' }, spec: { local: { path: '/mnt' } } },
      'pv-eph': { metadata: { name: 'pv-eph' }, spec: { csi: { driver: 'd', volumeHandle: 'h' } } },
      'pv-blk': { metadata: { name: 'pv-blk' }, spec: { volumeMode: 'Block' } },
    };
    const lookup: VolumeLookup = {
      getPvc: async (_ns, n) => pvcs[n],
      getPv: async (n) => pvs[n],
      csiDriverExists: async (n) => n === 'ebs.csi.aws.com',
    };
    const vols: k8s.V1Volume[] = [
      { name: 'data', emptyDir: {} },
      { name: 'c', persistentVolumeClaim: { claimName: 'csi' } },
      { name: 'm', persistentVolumeClaim: { claimName: 'mig' } },
      { name: 'l', persistentVolumeClaim: { claimName: 'local' } },
      { name: 'eph', ephemeral: { volumeClaimTemplate: { spec: {} } } },
      { name: 'b', persistentVolumeClaim: { claimName: 'blk' } },
      { name: 'u', persistentVolumeClaim: { claimName: 'unbound' } },
      { name: 'gone', persistentVolumeClaim: { claimName: 'none' } },
      { name: 'dup', emptyDir: {} },
      { name: 'missing', emptyDir: {} },
      { name: 'h', hostPath: { path: '/x' } },
    ];
    const p = pod(vols);
    const r = (v: string) => resolveVolumeDir(p, v, lookup, root);
    assert.equal((await r('data')).path, path.join(root, 'uid-1/volumes/kubernetes.io~empty-dir/data'));
    assert.equal((await r('c')).path, path.join(root, 'uid-1/volumes/kubernetes.io~csi/pv-csi/mount'));
    assert.equal((await r('m')).path, path.join(root, 'uid-1/volumes/kubernetes.io~csi/pv-mig/mount'));
    assert.equal((await r('l')).path, path.join(root, 'uid-1/volumes/kubernetes.io~local-volume/pv-local'));
    assert.equal((await r('eph')).path, path.join(root, 'uid-1/volumes/kubernetes.io~csi/pv-eph/mount'));
    await assert.rejects(r('b'), (e) => isCairnError(e, 'UNSUPPORTED') && /block mode/.test(e.message));
    await assert.rejects(r('u'), /not bound/);
    await assert.rejects(r('gone'), /persistent volume claim ns\/none .*not found/);
    await assert.rejects(r('dup'), /expected one matching path: .*got 2/);
    await assert.rejects(r('missing'), /got 0/);
    await assert.rejects(r('h'), /hostPath/);
    await assert.rejects(r('nope'), /volume nope not found in pod ns\/p/);
    await assert.rejects(resolveVolumeDir(pod([{ name: 'data', emptyDir: {} }], { containers: [{ name: 'c', volumeDevices: [{ name: 'data', devicePath: '/dev/x' }] }] }), 'data', lookup, root), /block/);
    const other = { ...p, metadata: { ...p.metadata, uid: 'uid-2' } };
    await assert.rejects(resolveVolumeDir(other, 'data', lookup, root), /pod directory .* does not exist/);
    const mirror = pod([{ name: 'data', emptyDir: {} }], {}, { 'kubernetes.io/config.mirror': 'uid-1' });
    mirror.metadata!.uid = 'api-uid';
    assert.ok((await resolveVolumeDir(mirror, 'data', lookup, root)).path.includes('uid-1'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('status patches: phase test first, zero progress omitted, kube time in seconds', () => {
  assert.deepEqual(phaseGuardedPatch('InProgress', { phase: 'Completed', snapshotID: '' , message: undefined }), [
    { op: 'test', path: '/status/phase', value: 'InProgress' },
    { op: 'add', path: '/status/phase', value: 'Completed' },
    { op: 'add', path: '/status/snapshotID', value: '' },
  ]);
  assert.deepEqual(progressField({ totalBytes: 0, bytesDone: 0 }), {});
  assert.equal(kubeTime(Date.UTC(2026, 0, 2, 3, 4, 5, 678)), '2026-01-02T03:04:05Z');
});

const pvb = (spec: Partial<PodVolumeBackup['spec']>, phase?: string): PodVolumeBackup => ({ metadata: { name: 'x', uid: 'u' }, spec: { node: 'n1', ...spec }, status: phase ? { phase: phase as 'New' } : undefined });

test('which PVBs and PVRs the agent acts on', () => {
  assert.equal(decidePvb(pvb({}), 'n1'), 'process');
  assert.equal(decidePvb(pvb({ uploaderType: 'restic' }, 'New'), 'n1'), 'process');
  assert.equal(decidePvb(pvb({ uploaderType: 'kopia' }), 'n1'), 'kopia');
  assert.equal(decidePvb(pvb({}), 'n2'), 'ignore');
  assert.equal(decidePvb(pvb({}, 'InProgress'), 'n1'), 'ignore');
  assert.equal(decidePvb(pvb({}, 'Completed'), 'n1'), 'ignore');
  assert.equal(decidePvb(pvb({ cancel: true }), 'n1'), 'ignore');
  const pvr: PodVolumeRestore = { metadata: { name: 'r', uid: 'ru' }, spec: { pod: { namespace: 'ns', name: 'p', uid: 'uid-1' }, uploaderType: 'restic' } };
  const withWait = (running: boolean, first = true): k8s.V1Pod => ({
    metadata: { name: 'p', namespace: 'ns', uid: 'uid-1' },
    spec: { nodeName: 'n1', containers: [{ name: 'c' }], initContainers: first ? [{ name: 'restore-wait' }] : [{ name: 'x' }, { name: 'restic-wait' }] },
    status: { initContainerStatuses: [{ name: first ? 'restore-wait' : 'restic-wait', ready: false, restartCount: 0, image: '', imageID: '', state: running ? { running: {} } : { waiting: {} } }] },
  });
  assert.equal(decidePvr(pvr, withWait(true), 'n1'), 'process');
  assert.equal(decidePvr(pvr, withWait(true, false), 'n1'), 'process');
  assert.equal(decidePvr(pvr, withWait(false), 'n1'), 'wait');
  assert.equal(decidePvr(pvr, withWait(true), 'n2'), 'ignore');
  assert.equal(decidePvr(pvr, undefined, 'n1'), 'ignore');
  assert.equal(decidePvr({ ...pvr, spec: { ...pvr.spec, uploaderType: 'kopia' } }, withWait(true), 'n1'), 'kopia');
  assert.equal(decidePvr({ ...pvr, status: { phase: 'Completed' } }, withWait(true), 'n1'), 'ignore');
});

test('owner problems', () => {
  const ref = { name: 'b1', uid: 'u1' };
  assert.match(ownerProblemOf('Backup', ref, undefined)!, /backup b1 no longer exists/);
  assert.match(ownerProblemOf('Backup', ref, { metadata: { uid: 'u2' } })!, /was deleted/);
  assert.match(ownerProblemOf('Restore', ref, { metadata: { uid: 'u1' }, status: { phase: 'Failed' } })!, /already finished/);
  assert.equal(ownerProblemOf('Backup', ref, { metadata: { uid: 'u1' }, status: { phase: 'InProgress' } }), undefined);
});

test('restore marker replaces .velero and is world-readable', async () => {
  const d = mkdtempSync(path.join(tmpdir(), 'cairn-marker-'));
  try {
    mkdirSync(path.join(d, '.velero'));
    writeFileSync(path.join(d, '.velero', 'old-restore'), '');
    const old = process.umask(0o077);
    try {
      await writeRestoreMarker(d, 'c0ffee-1234');
    } finally {
      process.umask(old);
    }
    assert.deepEqual(readdirSync(path.join(d, '.velero')), ['c0ffee-1234']);
    assert.equal(statSync(path.join(d, '.velero')).mode & 0o777, 0o755);
    assert.equal(statSync(path.join(d, '.velero', 'c0ffee-1234')).mode & 0o777, 0o644);
    await assert.rejects(writeRestoreMarker(d, '../x'), /not a valid marker/);
    assert.ok(!existsSync(path.join(d, 'x')));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
