/** Volume selection as Velero's server does it (contract §9), plus PVC de-duplication. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as k8s from '@kubernetes/client-node';
import { annotationList, candidateVolumes, planBackup, claimsOf, type ClaimInfo } from './selection.js';

function pod(name: string, volumes: k8s.V1Volume[], o: { annotations?: Record<string, string>; mounts?: string[]; devices?: string[]; phase?: string; node?: string; ns?: string; sidecarMounts?: string[]; initMounts?: string[] } = {}): k8s.V1Pod {
  const mounts = o.mounts ?? volumes.map((v) => v.name);
  return {
    metadata: { name, namespace: o.ns ?? 'app', uid: `uid-${name}`, annotations: o.annotations },
    spec: {
      nodeName: o.node === undefined ? 'node-1' : o.node || undefined,
      containers: [
        {
          name: 'app',
          image: 'x',
          volumeMounts: mounts.map((m) => ({ name: m, mountPath: `/m/${m}` })),
          volumeDevices: (o.devices ?? []).map((d) => ({ name: d, devicePath: `/dev/${d}` })),
        },
      ],
      initContainers: [
        ...(o.sidecarMounts ? [{ name: 'sidecar', image: 'x', restartPolicy: 'Always', volumeMounts: o.sidecarMounts.map((m) => ({ name: m, mountPath: `/s/${m}` })) }] : []),
        ...(o.initMounts ? [{ name: 'init', image: 'x', volumeMounts: o.initMounts.map((m) => ({ name: m, mountPath: `/i/${m}` })) }] : []),
      ],
      volumes,
    },
    status: { phase: o.phase ?? 'Running' },
  };
}

const empty = (name: string): k8s.V1Volume => ({ name, emptyDir: {} });
const claim = (name: string, claimName: string): k8s.V1Volume => ({ name, persistentVolumeClaim: { claimName } });
const claims = (entries: Record<string, Partial<ClaimInfo>>) =>
  new Map(Object.entries(entries).map(([k, v]) => [k, { uid: `pvc-${k.split('/')[1]}`, volumeName: `pv-${k.split('/')[1]}`, ...v } as ClaimInfo]));

test('annotations are split on commas without trimming (Velero parity)', () => {
  const p = pod('a', [empty('x')], { annotations: { 'backup.velero.io/backup-volumes': 'x, y,,z' } });
  assert.deepEqual(annotationList(p, 'backup.velero.io/backup-volumes'), ['x', ' y', 'z']);
  const plan = planBackup([p], new Map(), { defaultVolumesToFsBackup: false });
  assert.deepEqual(plan.volumes.map((v) => v.volume), ['x']);
  assert.deepEqual(plan.skipped.map((s) => [s.volume, s.reason]), [
    [' y', 'no volume with this name in the pod'],
    ['z', 'no volume with this name in the pod'],
  ]);
});

test('opt-in: only the annotated volumes; pods without the annotation contribute nothing', () => {
  const pods = [
    pod('web', [empty('cache'), empty('tmp'), claim('data', 'data-web')], { annotations: { 'backup.velero.io/backup-volumes': 'cache,data' } }),
    pod('other', [empty('scratch')]),
  ];
  const plan = planBackup(pods, claims({ 'app/data-web': {} }), { defaultVolumesToFsBackup: false });
  assert.deepEqual(
    plan.volumes.map((v) => [v.pod.name, v.volume, v.pvc?.name, v.selectedBy]),
    [
      ['web', 'cache', undefined, 'annotation'],
      ['web', 'data', 'data-web', 'annotation'],
    ],
  );
  assert.equal(plan.volumes[1]!.pvc!.uid, 'pvc-data-web');
  assert.deepEqual(plan.skipped, []);
});

test('opt-out: every volume except excludes and the kinds Velero never backs up', () => {
  const vols: k8s.V1Volume[] = [
    empty('cache'),
    empty('logs'),
    { name: 'cfg', configMap: { name: 'c' } },
    { name: 'sec', secret: { secretName: 's' } },
    { name: 'proj', projected: { sources: [] } },
    { name: 'dapi', downwardAPI: { items: [] } },
    { name: 'default-token-abcde', emptyDir: {} },
    { name: 'host', hostPath: { path: '/var/log' } },
    claim('data', 'data-0'),
  ];
  const p = pod('db-0', vols, { annotations: { 'backup.velero.io/backup-volumes-excludes': 'logs', 'backup.velero.io/backup-volumes': 'cfg' } });
  const c = candidateVolumes(p, { defaultVolumesToFsBackup: true });
  assert.deepEqual(c.names, ['cache', 'host', 'data']);
  const plan = planBackup([p], claims({ 'app/data-0': {} }), { defaultVolumesToFsBackup: true });
  assert.deepEqual(plan.volumes.map((v) => [v.volume, v.selectedBy]), [
    ['cache', 'default'],
    ['data', 'default'],
  ]);
  const reasons = Object.fromEntries(plan.skipped.map((s) => [s.volume, s.reason]));
  assert.match(reasons.logs!, /excluded by backup\.velero\.io\/backup-volumes-excludes/);
  assert.match(reasons.cfg!, /configMap/);
  assert.match(reasons.sec!, /secret/);
  assert.match(reasons.proj!, /projected/);
  assert.match(reasons.dapi!, /downwardAPI/);
  assert.match(reasons['default-token-abcde']!, /service account token/);
  assert.match(reasons.host!, /hostPath volume \(\/var\/log\)/);
});

test('hostPath volumes only under an allow-listed prefix', () => {
  const p = pod('n', [{ name: 'data', hostPath: { path: '/srv/data/app' } }, { name: 'etc', hostPath: { path: '/srv/database' } }], { annotations: { 'backup.velero.io/backup-volumes': 'data,etc' } });
  assert.equal(planBackup([p], new Map(), { defaultVolumesToFsBackup: false }).volumes.length, 0);
  const plan = planBackup([p], new Map(), { defaultVolumesToFsBackup: false, allowHostPaths: ['/srv/data/'] });
  assert.deepEqual(plan.volumes.map((v) => [v.volume, v.hostPath]), [['data', '/srv/data/app']]);
  assert.match(plan.skipped[0]!.reason, /not allow-listed/);
});

test('a PVC shared by several pods is backed up once, from the first pod in name order', () => {
  const ann = { 'backup.velero.io/backup-volumes': 'shared' };
  const pods = [pod('zeta', [claim('shared', 'common')], { annotations: ann }), pod('alpha', [claim('shared', 'common')], { annotations: ann }), pod('beta', [claim('shared', 'common')], { annotations: ann, ns: 'other' })];
  const plan = planBackup(pods, claims({ 'app/common': {}, 'other/common': {} }), { defaultVolumesToFsBackup: false });
  assert.deepEqual(plan.volumes.map((v) => `${v.pod.namespace}/${v.pod.name}`), ['app/alpha', 'other/beta']);
  assert.deepEqual(plan.skipped.map((s) => [s.pod, s.reason]), [['zeta', 'claim common is already backed up from pod alpha']]);
});

test('skips: pods not running or unscheduled, unmounted volumes, block devices, missing/unbound/hostPath/block claims', () => {
  const all = 'a,b,c,d,e,f,g';
  const p = pod(
    'p',
    [empty('a'), empty('b'), claim('c', 'missing'), claim('d', 'unbound'), claim('e', 'hostpv'), claim('f', 'blockpvc'), { name: 'g', ephemeral: { volumeClaimTemplate: { spec: {} } } }],
    { annotations: { 'backup.velero.io/backup-volumes': all }, mounts: ['a', 'c', 'd', 'e', 'f', 'g'], devices: ['a'] },
  );
  const c = claims({ 'app/unbound': { volumeName: '' }, 'app/hostpv': { hostPathPv: true }, 'app/blockpvc': { block: true }, 'app/p-g': {} });
  const plan = planBackup([p], c, { defaultVolumesToFsBackup: false });
  assert.deepEqual(plan.volumes.map((v) => [v.volume, v.pvc?.name]), [['g', 'p-g']], 'a generic ephemeral volume is backed by the claim <pod>-<volume>');
  const reasons = Object.fromEntries(plan.skipped.map((s) => [s.volume, s.reason]));
  assert.match(reasons.a!, /raw block device/);
  assert.match(reasons.b!, /not mounted by any container/);
  assert.match(reasons.c!, /claim missing not found/);
  assert.match(reasons.d!, /not bound/);
  assert.match(reasons.e!, /hostPath volume/);
  assert.match(reasons.f!, /block mode/);

  const pending = pod('q', [empty('a')], { annotations: { 'backup.velero.io/backup-volumes': 'a' }, phase: 'Pending' });
  const unscheduled = pod('r', [empty('a')], { annotations: { 'backup.velero.io/backup-volumes': 'a' }, node: '' });
  const plan2 = planBackup([pending, unscheduled], new Map(), { defaultVolumesToFsBackup: false });
  assert.deepEqual(plan2.volumes, []);
  assert.deepEqual(plan2.skipped.map((s) => s.reason), ['the pod is not running (phase Pending)', 'the pod is not scheduled to a node']);
});

test('volumes mounted by native sidecars count as mounted; plain init containers do not (Velero looks at containers)', () => {
  const ann = { 'backup.velero.io/backup-volumes': 's,i' };
  const p = pod('p', [empty('s'), empty('i')], { annotations: ann, mounts: [], sidecarMounts: ['s'], initMounts: ['i'] });
  const plan = planBackup([p], new Map(), { defaultVolumesToFsBackup: false });
  assert.deepEqual(plan.volumes.map((v) => v.volume), ['s']);
  assert.match(plan.skipped[0]!.reason, /not mounted/);
});

test('claimsOf lists the claims to fetch, including generic ephemeral ones', () => {
  const p = pod('w', [claim('a', 'c1'), { name: 'e', ephemeral: {} }, empty('x')]);
  assert.deepEqual(claimsOf([p]).sort(), ['app/c1', 'app/w-e']);
});
