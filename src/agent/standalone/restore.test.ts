/** Restore opt-in: the helper's token from the pod spec, source matching, and the agent's in-place trigger. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as k8s from '@kubernetes/client-node';
import { decidePvr } from '../pvr.js';
import type { PodVolumeBackup, PodVolumeRestore } from '../velero.js';
import { expandContainerVars, matchSource, parseNamespaceMapping, restoreWaitOf } from './restore.js';

function pod(o: { name?: string; init?: Partial<k8s.V1Container>; annotations?: Record<string, string>; volumes?: k8s.V1Volume[]; phase?: string; initRunning?: boolean }): k8s.V1Pod {
  return {
    metadata: { name: o.name ?? 'p', namespace: 'b', uid: 'pod-uid-1', annotations: o.annotations },
    spec: {
      nodeName: 'node-1',
      initContainers: o.init ? [{ name: 'restore-wait', image: 'x', ...o.init }] : undefined,
      containers: [{ name: 'app', image: 'x' }],
      volumes: o.volumes ?? [],
    },
    status: {
      phase: o.phase ?? 'Running',
      initContainerStatuses: o.init ? [{ name: 'restore-wait', ready: false, restartCount: 0, image: 'x', imageID: '', state: o.initRunning ? { running: {} } : { waiting: {} } }] : undefined,
    },
  };
}

test('the restore token: the helper argument after the command, $(VAR) from literal env or downward API fields', () => {
  const env = [
    { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
    { name: 'TOKEN', value: 'restore-42' },
    { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
  ];
  assert.equal(restoreWaitOf(pod({ init: { command: ['/velero-restore-helper'], args: ['$(POD_UID)'], env } }))?.token, 'pod-uid-1');
  assert.equal(restoreWaitOf(pod({ init: { command: ['/usr/bin/tini', '--', 'cairn', 'restore-helper'], args: ['--interval', '2s', '$(TOKEN)'], env } }))?.token, 'restore-42');
  assert.equal(restoreWaitOf(pod({ init: { args: ['literal-token'] } }))?.token, 'literal-token');
  assert.match(restoreWaitOf(pod({ init: { args: ['$(NODE)'], env } }))!.problem!, /cannot resolve/);
  assert.match(restoreWaitOf(pod({ init: { args: ['has space'] } }))!.problem!, /not a valid label value/);
  assert.match(restoreWaitOf(pod({ init: { command: ['cairn', 'restore-helper'] } }))!.problem!, /names no restore token/);
  assert.equal(restoreWaitOf(pod({})), undefined);
  assert.equal(expandContainerVars('a$$b$(TOKEN)', { name: 'c', env }, pod({})), 'a$brestore-42');
});

test('source matching: explicit annotation, same pod name, same claim name', () => {
  const pvb = (podName: string, volume: string, claim?: string): PodVolumeBackup => ({
    metadata: { name: `${podName}-${volume}`, annotations: claim ? { 'velero.io/pvc-name': claim } : {} },
    spec: { pod: { namespace: 'a', name: podName }, volume },
  });
  const list = [pvb('db-0', 'data', 'data-db-0'), pvb('web-abc', 'cache'), pvb('old-pod', 'files', 'files')];
  const idx = {
    byPodVolume: new Map(list.map((p) => [`a/${p.spec.pod!.name}/${p.spec.volume}`, p])),
    byClaim: new Map(list.filter((p) => p.metadata.annotations!['velero.io/pvc-name']).map((p) => [`a/${p.metadata.annotations!['velero.io/pvc-name']}`, p])),
  };
  const m = (p: k8s.V1Pod, v: string) => {
    const r = matchSource(p, v, 'a', idx);
    return typeof r === 'string' ? r : r.metadata.name ?? '';
  };
  assert.equal(m(pod({ name: 'db-0' }), 'data'), 'db-0-data');
  assert.equal(m(pod({ name: 'web-xyz', annotations: { 'restore.cairn.io/source-pod': 'web-abc' } }), 'cache'), 'web-abc-cache');
  assert.equal(m(pod({ name: 'new-pod', volumes: [{ name: 'f', persistentVolumeClaim: { claimName: 'files' } }] }), 'f'), 'old-pod-files');
  assert.match(m(pod({ name: 'web-xyz' }), 'cache'), /annotate the pod with restore.cairn.io\/source-pod/);
  assert.match(m(pod({ name: 'x', annotations: { 'restore.cairn.io/source-pod': 'nope' } }), 'cache'), /no volume cache of pod a\/nope/);
});

test('namespace mapping', () => {
  assert.deepEqual([...parseNamespaceMapping(['a:b,c:d', 'e:e2'])], [['a', 'b'], ['c', 'd'], ['e', 'e2']]);
  assert.throws(() => parseNamespaceMapping(['a']), /source:target/);
  assert.throws(() => parseNamespaceMapping(['a:b', 'a:c']), /twice/);
});

test("the agent's PVR trigger: restore-wait running, or for in-place restores the pod running (no init container)", () => {
  const pvr = (labels: Record<string, string> = {}): PodVolumeRestore => ({ metadata: { uid: 'r', labels }, spec: { pod: { namespace: 'b', name: 'p', uid: 'pod-uid-1' }, volume: 'v', uploaderType: 'restic' } });
  const inPlace = { 'cairn.io/restore-mode': 'in-place' };
  assert.equal(decidePvr(pvr(), pod({}), 'node-1'), 'wait', 'a normal PVR waits for the helper');
  assert.equal(decidePvr(pvr(), pod({ init: { args: ['t'] }, initRunning: true }), 'node-1'), 'process');
  assert.equal(decidePvr(pvr(inPlace), pod({}), 'node-1'), 'process');
  assert.equal(decidePvr(pvr(inPlace), pod({ phase: 'Pending' }), 'node-1'), 'wait');
  assert.equal(decidePvr(pvr(inPlace), pod({}), 'node-2'), 'ignore');
});
