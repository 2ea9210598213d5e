/**
 * The Kubernetes API test server, driven by the real @kubernetes/client-node 1.4.0: informers
 * (list + watch, 410 relist, stop on 500 and restart), typed and custom-object clients, patches,
 * optimistic concurrency, structural schemas of the Velero CRDs, selectors, finalizers, events.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  ListWatch,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type KubernetesListObject,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { KubeApiServer, type KObj, type KubeApiServerOptions } from './server.js';
import { installVeleroCrds, podVolumePhases } from './velero-crds.js';

const NS = 'velero';
const PVB = { group: 'velero.io', version: 'v1', namespace: NS, plural: 'podvolumebackups' };
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `fn`, expecting a client ApiException; returns its code and parsed Status body. */
async function apiError(fn: () => Promise<unknown>): Promise<{ code: number; status: KObj }> {
  try {
    await fn();
  } catch (e) {
    const err = e as { code?: number; body?: unknown };
    if (typeof err.code !== 'number') throw e;
    const body = typeof err.body === 'string' && err.body ? JSON.parse(err.body) : (err.body as KObj);
    return { code: err.code, status: body };
  }
  throw new Error('expected the request to fail');
}

interface Env {
  server: KubeApiServer;
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  dir: string;
  close(): Promise<void>;
}

async function env(velero?: string, opts: KubeApiServerOptions = {}): Promise<Env> {
  const server = await KubeApiServer.start(opts);
  const dir = mkdtempSync(path.join(tmpdir(), 'kube-test-'));
  const kc = new KubeConfig();
  kc.loadFromFile(server.writeKubeconfig(dir));
  server.createObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  if (velero) installVeleroCrds(server, velero);
  return {
    server,
    kc,
    dir,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function pvb(name: string, extra: KObj = {}): KObj {
  return {
    apiVersion: 'velero.io/v1',
    kind: 'PodVolumeBackup',
    metadata: { name, namespace: NS, labels: { 'velero.io/backup-name': 'b1' } },
    spec: {
      node: 'node-a',
      pod: { kind: 'Pod', namespace: 'app', name: 'p1', uid: '1111' },
      volume: 'data',
      backupStorageLocation: 'default',
      repoIdentifier: 's3:http://minio/velero/restic/app',
      uploaderType: 'restic',
      tags: { ns: 'app' },
    },
    ...extra,
  };
}

function pod(name: string, node?: string, labels: Record<string, string> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: { ...(node ? { nodeName: node } : {}), containers: [{ name: 'c', image: 'busybox:1.36' }] },
  };
}

// ---------------------------------------------------------------------------------------------

describe('client-node against the API test server', () => {
  test('kubeconfig, discovery and bearer tokens', async () => {
    const e = await env(undefined, { requireToken: true, token: 's3cr3t' });
    try {
      const nss = await e.core.listNamespace();
      const names = nss.items.map((n) => n.metadata?.name);
      for (const n of ['default', 'kube-system', NS]) assert.ok(names.includes(n), n);
      assert.equal(nss.items.find((n) => n.metadata?.name === NS)?.status?.phase, 'Active');
      assert.equal(e.server.requests.at(-1)?.token, 's3cr3t');

      const bad = new KubeConfig();
      bad.loadFromFile(e.server.writeKubeconfig(e.dir, { token: 'wrong', fileName: 'bad' }));
      const r = await apiError(() => bad.makeApiClient(CoreV1Api).listNamespace());
      assert.equal(r.code, 401);

      const h = { Authorization: 'Bearer s3cr3t' };
      const api = (await (await fetch(`${e.server.url}/api`, { headers: h })).json()) as KObj;
      assert.deepEqual(api.versions, ['v1']);
      const v1 = (await (await fetch(`${e.server.url}/api/v1`, { headers: h })).json()) as KObj;
      const podsRes = v1.resources.find((x: KObj) => x.name === 'pods');
      assert.equal(podsRes.namespaced, true);
      assert.ok(v1.resources.some((x: KObj) => x.name === 'pods/status'));
      installVeleroCrds(e.server, '1.10');
      const groups = (await (await fetch(`${e.server.url}/apis`, { headers: h })).json()) as KObj;
      assert.ok(groups.groups.some((g: KObj) => g.name === 'velero.io' && g.preferredVersion.version === 'v1'));
      const velero = (await (await fetch(`${e.server.url}/apis/velero.io/v1`, { headers: h })).json()) as KObj;
      const pvbRes = velero.resources.find((x: KObj) => x.name === 'podvolumebackups');
      assert.equal(pvbRes.kind, 'PodVolumeBackup');
      assert.ok(!velero.resources.some((x: KObj) => x.name === 'podvolumebackups/status'), 'no status subresource');
    } finally {
      await e.close();
    }
  });

  test('pod informer filtered by spec.nodeName sees add, update and delete of its node only', async () => {
    const e = await env();
    try {
      await e.core.createNamespace({ body: { metadata: { name: 'app' } } });
      await e.core.createNamespacedPod({ namespace: 'app', body: pod('a1', 'node-a') });
      await e.core.createNamespacedPod({ namespace: 'app', body: pod('b1', 'node-b') });
      const selector = 'spec.nodeName=node-a';
      const inf = new ListWatch<V1Pod>(
        '/api/v1/pods',
        new Watch(e.kc),
        () => e.core.listPodForAllNamespaces({ fieldSelector: selector }),
        false,
        undefined,
        selector,
      );
      const seen: string[] = [];
      inf.on('add', (p) => seen.push(`add ${p.metadata?.name}`));
      inf.on('update', (p) => seen.push(`update ${p.metadata?.name} ${p.metadata?.labels?.x ?? ''}${p.metadata?.deletionTimestamp ? ' terminating' : ''}`));
      inf.on('delete', (p) => seen.push(`delete ${p.metadata?.name}`));
      await inf.start();
      assert.deepEqual(seen, ['add a1']);
      const watchReq = e.server.requests.find((r) => r.watch);
      assert.equal(watchReq?.query.fieldSelector, selector);

      await e.core.createNamespacedPod({ namespace: 'app', body: pod('a2', 'node-a') });
      await e.core.createNamespacedPod({ namespace: 'app', body: pod('b2', 'node-b') });
      await waitFor('a2', () => seen.includes('add a2'));
      await e.core.patchNamespacedPod({ namespace: 'app', name: 'a2', body: { metadata: { labels: { x: 'y' } } } }, MERGE);
      await waitFor('update a2', () => seen.includes('update a2 y'));

      // A pod scheduled later enters the selection: the binding makes it appear as ADDED.
      await e.core.createNamespacedPod({ namespace: 'app', body: pod('late') });
      await e.core.createNamespacedPodBinding({
        namespace: 'app',
        name: 'late',
        body: { metadata: { name: 'late' }, target: { apiVersion: 'v1', kind: 'Node', name: 'node-a' } },
      });
      await waitFor('late pod', () => seen.includes('add late'));
      const again = await apiError(() =>
        e.core.createNamespacedPodBinding({ namespace: 'app', name: 'late', body: { metadata: { name: 'late' }, target: { name: 'node-b' } } }),
      );
      assert.equal(again.code, 409);

      // Graceful deletion: first a deletionTimestamp, then (the "kubelet" confirms) the delete.
      await e.core.deleteNamespacedPod({ namespace: 'app', name: 'a1' });
      await waitFor('a1 deleted', () => seen.includes('delete a1'));
      assert.ok(seen.includes('update a1  terminating'), seen.join(', '));
      assert.ok(!seen.some((s) => s.includes('b1') || s.includes('b2')), 'no events for node-b pods');
      assert.deepEqual(
        inf.list('app').map((p) => p.metadata?.name).sort(),
        ['a2', 'late'],
      );
      await inf.stop();
    } finally {
      await e.close();
    }
  });

  test('CRD informer sees PodVolumeBackup add, status update and delete', async () => {
    const e = await env('1.16');
    try {
      const inf = makeInformer<KubernetesObject & KObj>(
        e.kc,
        `/apis/velero.io/v1/namespaces/${NS}/podvolumebackups`,
        () => e.custom.listNamespacedCustomObject(PVB) as Promise<KubernetesListObject<KubernetesObject & KObj>>,
        'velero.io/backup-name=b1',
      );
      const seen: string[] = [];
      inf.on('add', (o) => seen.push(`add ${o.metadata?.name} ${o.status?.phase ?? ''}`));
      inf.on('update', (o) => seen.push(`update ${o.metadata?.name} ${o.status?.phase ?? ''}`));
      inf.on('delete', (o) => seen.push(`delete ${o.metadata?.name}`));
      await inf.start();
      await e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('pvb-1') });
      await e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('other', { metadata: { name: 'other', namespace: NS, labels: { 'velero.io/backup-name': 'b2' } } }) });
      await waitFor('add', () => seen.includes('add pvb-1 '));
      await e.custom.patchNamespacedCustomObject({ ...PVB, name: 'pvb-1', body: { status: { phase: 'InProgress' } } }, MERGE);
      await waitFor('update', () => seen.includes('update pvb-1 InProgress'));
      await e.custom.deleteNamespacedCustomObject({ ...PVB, name: 'pvb-1' });
      await waitFor('delete', () => seen.includes('delete pvb-1'));
      assert.ok(!seen.some((s) => s.includes('other')), 'label selector keeps b2 out');
      await inf.stop();
    } finally {
      await e.close();
    }
  });

  test('an expired watch (in-stream 410) makes the informer relist, then watch from the list RV', async () => {
    const e = await env();
    try {
      const cm = (name: string) => ({ metadata: { name }, data: { k: name } });
      await e.core.createNamespacedConfigMap({ namespace: NS, body: cm('c1') });
      const inf = makeInformer(e.kc, `/api/v1/namespaces/${NS}/configmaps`, () => e.core.listNamespacedConfigMap({ namespace: NS }));
      const added: string[] = [];
      inf.on('add', (o) => added.push(o.metadata?.name ?? ''));
      await inf.start();
      assert.deepEqual(added, ['c1']);
      const staleRv = (inf as unknown as ListWatch<KubernetesObject>).latestResourceVersion();

      // Hold the re-watch while the history moves on and is compacted past the informer's RV.
      e.server.inject({ watch: true, times: 1, delayMs: 200 });
      e.server.clearRequests();
      e.server.closeAllWatches();
      e.server.createObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c2', namespace: NS } });
      const compactedAt = e.server.compact();
      assert.ok(Number(staleRv) < compactedAt);

      await waitFor('c2 via relist', () => added.includes('c2'));
      await e.core.createNamespacedConfigMap({ namespace: NS, body: cm('c3') });
      await waitFor('c3 via the new watch', () => added.includes('c3'));
      const seq = e.server.requests.map((r) => (r.watch ? `watch@${r.query.resourceVersion}${r.reason ? ':' + r.reason : ''}` : `${r.method} list`));
      assert.equal(seq[0], `watch@${staleRv}:Expired`);
      assert.equal(seq[1], 'GET list');
      assert.match(seq[2], /^watch@\d+$/);
      assert.ok(Number(seq[2].slice(6)) >= compactedAt, 'the watch after the relist starts at the list RV');
      assert.equal(e.server.requests.filter((r) => !r.watch).length, 2, 'one relist (plus the create), no list/watch loop');
      await inf.stop();

      // An HTTP 410 on the watch request has the same effect.
      const inf2 = makeInformer(e.kc, `/api/v1/namespaces/${NS}/configmaps`, () => e.core.listNamespacedConfigMap({ namespace: NS }));
      let lists = 0;
      inf2.on('connect', () => lists++);
      await inf2.start();
      e.server.failNextWatches(1, 410);
      e.server.closeAllWatches();
      await waitFor('relist after HTTP 410', () => e.server.watchCount === 1 && lists >= 3);
      await inf2.stop();
    } finally {
      await e.close();
    }
  });

  test('the informer stops on a 500 watch answer and resumes after start()', async () => {
    const e = await env();
    try {
      const inf = makeInformer(e.kc, `/api/v1/namespaces/${NS}/secrets`, () => e.core.listNamespacedSecret({ namespace: NS }));
      const added: string[] = [];
      const errors: unknown[] = [];
      inf.on('add', (o) => added.push(o.metadata?.name ?? ''));
      inf.on('error', (err) => errors.push(err));
      await inf.start();
      e.server.failNextWatches(1, 500);
      e.server.closeAllWatches();
      await waitFor('informer error', () => errors.length === 1);
      assert.equal((errors[0] as { statusCode?: number }).statusCode, 500);
      await e.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 's1' }, stringData: { password: 'x' } } });
      await sleep(150);
      assert.equal(added.length, 0, 'a stopped informer sees nothing');
      assert.equal(e.server.watchCount, 0);
      await inf.start();
      await waitFor('s1 after restart', () => added.includes('s1'));
      await inf.stop();
      const s = await e.core.readNamespacedSecret({ namespace: NS, name: 's1' });
      assert.equal(Buffer.from(s.data?.password ?? '', 'base64').toString(), 'x', 'stringData is stored as data');
      assert.equal(s.type, 'Opaque');
    } finally {
      await e.close();
    }
  });

  test('optimistic concurrency: stale PUT 409, CR PUT without resourceVersion 422, /status 404 without the subresource', async () => {
    const e = await env('1.16');
    try {
      const created = (await e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('p') })) as KObj;
      const rv1 = created.metadata.resourceVersion;
      assert.equal(created.metadata.generation, 1);
      const moved = (await e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { status: { phase: 'InProgress' } } }, MERGE)) as KObj;
      assert.ok(Number(moved.metadata.resourceVersion) > Number(rv1));
      // Without a status subresource, a status change is a change of the main resource.
      assert.equal(moved.metadata.generation, 2);

      const stale = { ...created, status: { phase: 'Completed' } };
      const c = await apiError(() => e.custom.replaceNamespacedCustomObject({ ...PVB, name: 'p', body: stale }));
      assert.equal(c.code, 409);
      assert.equal(c.status.reason, 'Conflict');
      assert.equal(c.status.message, 'Operation cannot be fulfilled on podvolumebackups.velero.io "p": the object has been modified; please apply your changes to the latest version and try again');

      const noRv = { ...moved, metadata: { ...moved.metadata, resourceVersion: undefined } };
      const u = await apiError(() => e.custom.replaceNamespacedCustomObject({ ...PVB, name: 'p', body: noRv }));
      assert.equal(u.code, 422);
      assert.match(u.status.message, /metadata.resourceVersion: Invalid value: 0x0: must be specified for an update/);

      const ok = (await e.custom.replaceNamespacedCustomObject({ ...PVB, name: 'p', body: { ...moved, status: { phase: 'Completed' } } })) as KObj;
      assert.equal(ok.status.phase, 'Completed');

      const st = await apiError(() => e.custom.replaceNamespacedCustomObjectStatus({ ...PVB, name: 'p', body: ok }));
      assert.equal(st.code, 404);
      assert.equal(st.status.message, 'the server could not find the requested resource');
      const sp = await apiError(() => e.custom.patchNamespacedCustomObjectStatus({ ...PVB, name: 'p', body: { status: { phase: 'Failed' } } }, MERGE));
      assert.equal(sp.code, 404);

      // Built-in kinds allow unconditional updates; a stale resourceVersion still conflicts.
      const cm = await e.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'cm' }, data: { a: '1' } } });
      await e.core.replaceNamespacedConfigMap({ namespace: NS, name: 'cm', body: { metadata: { name: 'cm' }, data: { a: '2' } } });
      const cc = await apiError(() => e.core.replaceNamespacedConfigMap({ namespace: NS, name: 'cm', body: { ...cm, data: { a: '3' } } }));
      assert.equal(cc.code, 409);
      const dup = await apiError(() => e.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'cm' } } }));
      assert.equal(dup.code, 409);
      assert.equal(dup.status.reason, 'AlreadyExists');
    } finally {
      await e.close();
    }
  });

  test('merge patch and JSON patch with a test op on a CR without status subresource', async () => {
    const e = await env('1.16');
    try {
      await e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('p', { status: { phase: 'New', message: 'hello' } }) });
      const merged = (await e.custom.patchNamespacedCustomObject(
        { ...PVB, name: 'p', body: { status: { phase: 'InProgress', startTimestamp: '2026-11-22T10:00:00Z', message: null } } },
        MERGE,
      )) as KObj;
      assert.equal(merged.status.phase, 'InProgress');
      assert.equal(merged.status.message, undefined, 'null deletes');
      assert.equal(e.server.requests.at(-1)?.contentType, 'application/merge-patch+json');

      // Without a header option the generated client sends application/json-patch+json.
      const claimed = (await e.custom.patchNamespacedCustomObject({
        ...PVB,
        name: 'p',
        body: [
          { op: 'test', path: '/status/phase', value: 'InProgress' },
          { op: 'replace', path: '/status/phase', value: 'Completed' },
          { op: 'add', path: '/status/snapshotID', value: 'abcd1234' },
        ],
      })) as KObj;
      assert.equal(e.server.requests.at(-1)?.contentType, 'application/json-patch+json');
      assert.equal(claimed.status.phase, 'Completed');
      assert.equal(claimed.status.snapshotID, 'abcd1234');

      const lost = await apiError(() =>
        e.custom.patchNamespacedCustomObject({
          ...PVB,
          name: 'p',
          body: [
            { op: 'test', path: '/status/phase', value: 'New' },
            { op: 'replace', path: '/status/phase', value: 'InProgress' },
          ],
        }),
      );
      assert.equal(lost.code, 422);
      assert.equal(lost.status.reason, 'Invalid');
      assert.equal(lost.status.message, 'the server rejected our request due to an error in our request');
      assert.match(e.server.requests.at(-1)?.note ?? '', /testing value \/status\/phase failed/);
      const after = (await e.custom.getNamespacedCustomObject({ ...PVB, name: 'p' })) as KObj;
      assert.equal(after.status.phase, 'Completed', 'a failed test op changes nothing');

      // A merge patch carrying a stale resourceVersion is a precondition.
      const stale = await apiError(() =>
        e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { metadata: { resourceVersion: '2' }, status: { message: 'x' } } }, MERGE),
      );
      assert.equal(stale.code, 409);

      const smp = await apiError(() =>
        e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { status: { message: 'x' } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch)),
      );
      assert.equal(smp.code, 415);
      assert.equal(smp.status.reason, 'UnsupportedMediaType');
      const apply = await apiError(() =>
        e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { status: { message: 'x' } } }, setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply)),
      );
      assert.equal(apply.code, 415);

      // Built-ins take strategic merge patches: containers merge by name.
      await e.core.createNamespacedPod({ namespace: NS, body: { metadata: { name: 'w' }, spec: { containers: [{ name: 'a', image: 'x:1' }, { name: 'b', image: 'y:1' }] } } });
      const patched = await e.core.patchNamespacedPod(
        { namespace: NS, name: 'w', body: { metadata: { finalizers: ['example.com/f'] }, spec: { containers: [{ name: 'b', image: 'y:2' }] } } },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      );
      assert.deepEqual(patched.spec?.containers.map((c) => `${c.name}=${c.image}`), ['a=x:1', 'b=y:2']);
      assert.deepEqual(patched.metadata?.finalizers, ['example.com/f']);
    } finally {
      await e.close();
    }
  });

  test('phase enum: 422 outside the installed CRD enum; the agent can read the enum from the CRD', async () => {
    for (const [version, canceled] of [
      ['1.10', false],
      ['1.17', true],
    ] as const) {
      const e = await env(version);
      try {
        const ext = e.kc.makeApiClient(ApiextensionsV1Api);
        const crd = await ext.readCustomResourceDefinition({ name: 'podvolumebackups.velero.io' });
        const v1 = crd.spec.versions.find((v) => v.name === 'v1');
        const phaseEnum = (v1?.schema?.openAPIV3Schema?.properties?.status?.properties?.phase?._enum ?? []) as string[];
        assert.deepEqual(phaseEnum, podVolumePhases(version));
        assert.ok(crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True'));
        assert.equal(v1?.subresources?.status, undefined);

        await e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('p') });
        const write = () => e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { status: { phase: 'Canceled' } } }, MERGE);
        if (canceled) {
          const r = (await write()) as KObj;
          assert.equal(r.status.phase, 'Canceled');
        } else {
          const r = await apiError(write);
          assert.equal(r.code, 422);
          assert.equal(r.status.reason, 'Invalid');
          assert.equal(
            r.status.message,
            'PodVolumeBackup.velero.io "p" is invalid: status.phase: Unsupported value: "Canceled": supported values: "New", "InProgress", "Completed", "Failed"',
          );
          assert.deepEqual(r.status.details.causes, [
            {
              reason: 'FieldValueNotSupported',
              message: 'Unsupported value: "Canceled": supported values: "New", "InProgress", "Completed", "Failed"',
              field: 'status.phase',
            },
          ]);
        }
        const typeErr = await apiError(() =>
          e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { status: { progress: { totalBytes: 'lots' } } } }, MERGE),
        );
        assert.equal(typeErr.code, 422);
        assert.match(typeErr.status.message, /status.progress.totalBytes: Invalid value: "string": status.progress.totalBytes in body must be of type integer: "string"/);
        const missing = await apiError(() => e.custom.createNamespacedCustomObject({ ...PVB, body: { ...pvb('q'), spec: { node: 'n' } } }));
        assert.equal(missing.code, 422);
        assert.match(missing.status.message, /spec.volume: Required value/);
      } finally {
        await e.close();
      }
    }
  });

  test('fields unknown to the installed CRD are pruned (warning by default, 400 when strict)', async () => {
    const e = await env('1.16');
    try {
      const body = pvb('p', { status: { phase: 'Completed', incrementalBytes: 42, progress: { totalBytes: 10, bytesDone: 10 } } });
      body.spec.cancel = true;
      body.metadata.bogus = 'x';
      const res = await fetch(`${e.server.url}/apis/velero.io/v1/namespaces/${NS}/podvolumebackups`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 201);
      const warnings = res.headers.get('warning') ?? '';
      assert.match(warnings, /unknown field \\"spec.cancel\\"/);
      const stored = (await e.custom.getNamespacedCustomObject({ ...PVB, name: 'p' })) as KObj;
      assert.equal(stored.spec.cancel, undefined);
      assert.equal(stored.status.incrementalBytes, undefined);
      assert.equal(stored.metadata.bogus, undefined);
      assert.deepEqual(stored.status.progress, { totalBytes: 10, bytesDone: 10 });
      assert.equal(stored.status.phase, 'Completed', 'status is kept on create without a status subresource');

      const strict = await apiError(() =>
        e.custom.createNamespacedCustomObject({ ...PVB, body: { ...pvb('q'), status: { incrementalBytes: 1 } }, fieldValidation: 'Strict' }),
      );
      assert.equal(strict.code, 400);
      assert.equal(strict.status.message, 'strict decoding error: unknown field "status.incrementalBytes"');

      // The same write against 1.18 CRDs keeps the field.
      const e18 = await env('1.18');
      try {
        await e18.custom.createNamespacedCustomObject({ ...PVB, body: { ...pvb('q'), status: { incrementalBytes: 1 } } });
        const q = (await e18.custom.getNamespacedCustomObject({ ...PVB, name: 'q' })) as KObj;
        assert.equal(q.status.incrementalBytes, 1);
      } finally {
        await e18.close();
      }
    } finally {
      await e.close();
    }
  });

  test('label and field selectors on lists and watches', async () => {
    const e = await env();
    try {
      const mk = (name: string, labels: Record<string, string>) => e.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name, labels } } });
      await mk('a', { app: 'a', tier: 'x' });
      await mk('b', { app: 'b' });
      await mk('c', { other: '1' });
      const names = async (labelSelector?: string, fieldSelector?: string) =>
        (await e.core.listNamespacedConfigMap({ namespace: NS, labelSelector, fieldSelector })).items.map((i) => i.metadata?.name).join(',');
      assert.equal(await names('app=a'), 'a');
      assert.equal(await names('app==a'), 'a');
      assert.equal(await names('app!=a'), 'b,c');
      assert.equal(await names('app in (a, b)'), 'a,b');
      assert.equal(await names('app notin (a)'), 'b,c');
      assert.equal(await names('app'), 'a,b');
      assert.equal(await names('!app'), 'c');
      assert.equal(await names('app=a,tier=x'), 'a');
      assert.equal(await names('app=a,tier=y'), '');
      assert.equal(await names(undefined, 'metadata.name=b'), 'b');
      assert.equal(await names(undefined, 'metadata.name!=b'), 'a,c');
      assert.equal((await apiError(() => names('app in (a'))).code, 400);
      const unsupported = await apiError(() => names(undefined, 'data.k=1'));
      assert.equal(unsupported.code, 400);
      assert.equal(unsupported.status.message, 'field label not supported: data.k');

      // status.phase on pods; CRs accept only metadata.name / metadata.namespace.
      await e.core.createNamespacedPod({ namespace: NS, body: pod('p1', 'node-a') });
      await e.core.patchNamespacedPodStatus({ namespace: NS, name: 'p1', body: { status: { phase: 'Running' } } }, MERGE);
      await e.core.createNamespacedPod({ namespace: NS, body: pod('p2', 'node-a') });
      const running = await e.core.listNamespacedPod({ namespace: NS, fieldSelector: 'status.phase=Running,spec.nodeName=node-a' });
      assert.deepEqual(running.items.map((p) => p.metadata?.name), ['p1']);
      installVeleroCrds(e.server, '1.16');
      const cr = await apiError(() => e.custom.listNamespacedCustomObject({ ...PVB, fieldSelector: 'spec.node=node-a' }));
      assert.equal(cr.code, 400);
      assert.equal(cr.status.message, '"spec.node" is not a known field selector: only "metadata.name", "metadata.namespace"');

      // A watch with a label selector reports an object leaving the selection as DELETED.
      const events: string[] = [];
      const w = await new Watch(e.kc).watch(
        `/api/v1/namespaces/${NS}/configmaps`,
        { labelSelector: 'app=a', resourceVersion: String(e.server.resourceVersion) },
        (type, obj) => events.push(`${type} ${obj.metadata.name} ${obj.metadata.labels?.app ?? '-'}`),
        () => {},
      );
      await e.core.patchNamespacedConfigMap({ namespace: NS, name: 'b', body: { metadata: { labels: { app: 'a' } } } }, MERGE);
      await e.core.patchNamespacedConfigMap({ namespace: NS, name: 'a', body: { metadata: { labels: { app: 'z' } } } }, MERGE);
      await e.core.patchNamespacedConfigMap({ namespace: NS, name: 'c', body: { data: { x: '1' } } }, MERGE);
      await waitFor('events', () => events.length >= 2);
      await sleep(50);
      assert.deepEqual(events, ['ADDED b a', 'DELETED a a']);
      w.abort();
    } finally {
      await e.close();
    }
  });

  test('finalizers hold a deleted object until the last one is removed', async () => {
    const e = await env('1.17');
    try {
      const fin = 'velero.io/pod-volume-finalizer';
      await e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('p', { metadata: { name: 'p', namespace: NS, finalizers: [fin] } }) });
      const events: string[] = [];
      const w = await new Watch(e.kc).watch(
        `/apis/velero.io/v1/namespaces/${NS}/podvolumebackups`,
        { resourceVersion: String(e.server.resourceVersion) },
        (type, obj) => events.push(`${type} ${obj.metadata.deletionTimestamp ? 'deleting' : ''}`),
        () => {},
      );
      const del = (await e.custom.deleteNamespacedCustomObject({ ...PVB, name: 'p' })) as KObj;
      assert.ok(del.metadata.deletionTimestamp, 'DELETE answers with the object, now being deleted');
      const still = (await e.custom.getNamespacedCustomObject({ ...PVB, name: 'p' })) as KObj;
      assert.deepEqual(still.metadata.finalizers, [fin]);

      const add = await apiError(() =>
        e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { metadata: { finalizers: [fin, 'example.com/more'] } } }, MERGE),
      );
      assert.equal(add.code, 422);
      assert.match(add.status.message, /no new finalizers can be added if the object is being deleted/);

      // Status writes still work while deleting (the agent may be finishing).
      await e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { status: { phase: 'Canceled' } } }, MERGE);
      await e.custom.patchNamespacedCustomObject({ ...PVB, name: 'p', body: { metadata: { finalizers: null } } }, MERGE);
      const gone = await apiError(() => e.custom.getNamespacedCustomObject({ ...PVB, name: 'p' }));
      assert.equal(gone.code, 404);
      assert.equal(gone.status.message, 'podvolumebackups.velero.io "p" not found');
      await waitFor('DELETED', () => events.includes('DELETED deleting'));
      assert.deepEqual(events, ['MODIFIED deleting', 'MODIFIED deleting', 'DELETED deleting']);
      w.abort();

      const bad = await apiError(() =>
        e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('q', { metadata: { name: 'q', namespace: NS, finalizers: ['unqualified'] } }) }),
      );
      assert.equal(bad.code, 422);
    } finally {
      await e.close();
    }
  });

  test('events: core/v1 and events.k8s.io/v1 share one storage', async () => {
    const e = await env('1.16');
    try {
      const pv = (await e.custom.createNamespacedCustomObject({ ...PVB, body: pvb('p') })) as KObj;
      const ref = { apiVersion: 'velero.io/v1', kind: 'PodVolumeBackup', namespace: NS, name: 'p', uid: pv.metadata.uid };
      const ev = await e.core.createNamespacedEvent({
        namespace: NS,
        body: {
          metadata: { generateName: 'p.' },
          involvedObject: ref,
          reason: 'BackupStarted',
          message: 'backup of volume data started',
          type: 'Normal',
          source: { component: 'cairn-node-agent', host: 'node-a' },
          firstTimestamp: new Date(),
          lastTimestamp: new Date(),
          count: 1,
        },
      });
      assert.match(ev.metadata?.name ?? '', /^p\.[a-z0-9]{5}$/);
      const byObject = await e.core.listNamespacedEvent({ namespace: NS, fieldSelector: `involvedObject.name=p,involvedObject.kind=PodVolumeBackup` });
      assert.equal(byObject.items.length, 1);
      assert.equal(byObject.items[0].source?.component, 'cairn-node-agent');

      const events = e.kc.makeApiClient(EventsV1Api);
      const v1 = await events.listNamespacedEvent({ namespace: NS, fieldSelector: 'regarding.name=p' });
      assert.equal(v1.items.length, 1);
      assert.equal(v1.items[0].note, 'backup of volume data started');
      assert.equal(v1.items[0].regarding?.uid, pv.metadata.uid);

      const wrongNs = await apiError(() =>
        e.core.createNamespacedEvent({ namespace: NS, body: { metadata: { name: 'x' }, involvedObject: { ...ref, namespace: 'elsewhere' }, reason: 'R' } }),
      );
      assert.equal(wrongNs.code, 422);
      assert.match(wrongNs.status.message, /involvedObject.namespace: Invalid value: "elsewhere": does not match event.namespace/);

      const strict = await apiError(() =>
        events.createNamespacedEvent({ namespace: NS, body: { metadata: { name: 'y' }, regarding: ref, reason: 'R', type: 'Normal' } as never }),
      );
      assert.equal(strict.code, 422);
      assert.match(strict.status.message, /eventTime: Required value/);
      const created = await events.createNamespacedEvent({
        namespace: NS,
        body: {
          metadata: { name: 'z' },
          eventTime: new Date() as never,
          reportingController: 'cairn.io/node-agent',
          reportingInstance: 'node-a',
          action: 'Backup',
          reason: 'BackupCompleted',
          note: 'done',
          type: 'Normal',
          regarding: ref,
        },
      });
      assert.equal(created.note, 'done');
      const core = await e.core.readNamespacedEvent({ namespace: NS, name: 'z' });
      assert.equal(core.message, 'done');
      assert.equal(core.reportingComponent, 'cairn.io/node-agent');
    } finally {
      await e.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('API server semantics beyond the client tests', () => {
  let e: Env;
  before(async () => {
    e = await env('1.16');
  });
  after(async () => {
    await e.close();
  });

  const raw = async (method: string, p: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(e.server.url + p, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': contentType },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };

  test('one global resourceVersion; generateName; server-set metadata', async () => {
    const before = e.server.resourceVersion;
    const a = await e.core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { generateName: 'gen-' } } });
    const b = (await e.custom.createNamespacedCustomObject({ ...PVB, body: { ...pvb(''), metadata: { generateName: 'b1-', namespace: NS } } })) as KObj;
    assert.equal(Number(a.metadata?.resourceVersion), before + 1);
    assert.equal(Number(b.metadata.resourceVersion), before + 2);
    assert.match(a.metadata?.name ?? '', /^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    assert.match(b.metadata.uid, /^[0-9a-f-]{36}$/);
    assert.match(b.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const list = await e.core.listNamespacedConfigMap({ namespace: NS });
    assert.equal(list.metadata?.resourceVersion, String(e.server.resourceVersion));
    const missing = await raw('POST', '/api/v1/namespaces/nowhere/configmaps', { metadata: { name: 'x' } });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.message, 'namespaces "nowhere" not found');
    const noName = await raw('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: {} });
    assert.equal(noName.status, 422);
    assert.match(noName.body.message, /metadata.name: Required value: name or generateName is required/);
    const longLabel = await raw('POST', `/api/v1/namespaces/${NS}/configmaps`, { metadata: { name: 'l', labels: { k: 'x'.repeat(64) } } });
    assert.equal(longLabel.status, 422);
    assert.match(longLabel.body.message, /must be no more than 63 characters/);
  });

  test('status subresource: main writes ignore status, /status writes only status', async () => {
    await e.core.createNamespacedPod({ namespace: NS, body: { ...pod('s1', 'node-a'), status: { phase: 'Running' } } });
    const created = await e.core.readNamespacedPod({ namespace: NS, name: 's1' });
    assert.equal(created.status?.phase, 'Pending', 'create resets pod status');
    const st = await e.core.patchNamespacedPodStatus(
      { namespace: NS, name: 's1', body: { metadata: { labels: { via: 'status' } }, spec: { nodeName: 'elsewhere' }, status: { phase: 'Running' } } },
      MERGE,
    );
    assert.equal(st.status?.phase, 'Running');
    assert.equal(st.spec?.nodeName, 'node-a');
    const main = await e.core.patchNamespacedPod({ namespace: NS, name: 's1', body: { status: { phase: 'Failed' } } }, MERGE);
    assert.equal(main.status?.phase, 'Running');
    const immut = await apiError(() => e.core.patchNamespacedPod({ namespace: NS, name: 's1', body: { spec: { nodeName: 'node-b' } } }, MERGE));
    assert.equal(immut.code, 422);
    assert.match(immut.status.message, /pod updates may not change fields/);

    // A CRD with a status subresource: generation only follows spec.
    await e.server.createObject({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        names: { kind: 'Widget', plural: 'widgets' },
        scope: 'Namespaced',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            subresources: { status: {} },
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: { type: 'object', properties: { size: { type: 'integer', default: 1 } } },
                  status: { type: 'object', properties: { ready: { type: 'boolean' } } },
                },
              },
            },
          },
        ],
      },
    });
    const W = { group: 'example.com', version: 'v1', namespace: NS, plural: 'widgets' };
    const w = (await e.custom.createNamespacedCustomObject({ ...W, body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: {}, status: { ready: true } } })) as KObj;
    assert.equal(w.status, undefined, 'status dropped on create');
    assert.equal(w.spec.size, 1, 'defaulted');
    const s = (await e.custom.patchNamespacedCustomObjectStatus({ ...W, name: 'w', body: { spec: { size: 5 }, status: { ready: true } } }, MERGE)) as KObj;
    assert.deepEqual([s.spec.size, s.status.ready, s.metadata.generation], [1, true, 1]);
    const m = (await e.custom.patchNamespacedCustomObject({ ...W, name: 'w', body: { spec: { size: 2 }, status: { ready: false } } }, MERGE)) as KObj;
    assert.deepEqual([m.spec.size, m.status.ready, m.metadata.generation], [2, true, 2]);
    const noop = (await e.custom.patchNamespacedCustomObject({ ...W, name: 'w', body: { spec: { size: 2 } } }, MERGE)) as KObj;
    assert.equal(noop.metadata.resourceVersion, m.metadata.resourceVersion, 'a no-op patch writes nothing');
  });

  test('paginated lists are consistent; resourceVersionMatch=Exact reads the past', async () => {
    for (let i = 0; i < 5; i++) await e.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: `page-${i}` } } });
    const first = await e.core.listNamespacedSecret({ namespace: 'default', limit: 2 });
    assert.equal(first.items.length, 2);
    assert.equal(first.metadata?.remainingItemCount, 3);
    await e.core.deleteNamespacedSecret({ namespace: 'default', name: 'page-4' });
    const second = await e.core.listNamespacedSecret({ namespace: 'default', limit: 10, _continue: first.metadata?._continue });
    assert.deepEqual(second.items.map((s) => s.metadata?.name), ['page-2', 'page-3', 'page-4'], 'the snapshot of the first page');
    const past = await raw('GET', `/api/v1/namespaces/default/secrets?resourceVersion=${first.metadata?.resourceVersion}&resourceVersionMatch=Exact`);
    assert.equal(past.body.items.length, 5);
    const now = await e.core.listNamespacedSecret({ namespace: 'default' });
    assert.equal(now.items.length, 4);
    e.server.compact();
    const old = await raw('GET', `/api/v1/namespaces/default/secrets?resourceVersion=${first.metadata?.resourceVersion}&resourceVersionMatch=Exact`);
    assert.equal(old.status, 410);
    assert.equal(old.body.reason, 'Expired');
    const bad = await raw('GET', `/api/v1/namespaces/default/secrets?resourceVersionMatch=Exact`);
    assert.equal(bad.status, 422);
  });

  test('watch stream: synthetic ADDED without RV, bookmarks on request, timeoutSeconds', async () => {
    await e.core.createNamespacedConfigMap({ namespace: 'kube-public', body: { metadata: { name: 'w1' } } });
    const res = await fetch(`${e.server.url}/api/v1/namespaces/kube-public/configmaps?watch=true&allowWatchBookmarks=true&timeoutSeconds=1`);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    const read = async (until: (s: string) => boolean) => {
      while (!until(text)) {
        const { value, done } = await reader.read();
        if (done) return;
        text += Buffer.from(value).toString();
      }
    };
    await read((s) => s.includes('"ADDED"'));
    e.server.sendBookmarks();
    await read((s) => s.includes('"BOOKMARK"'));
    await read(() => false); // the server ends the stream after timeoutSeconds
    const lines = text.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.type), ['ADDED', 'BOOKMARK']);
    assert.equal(lines[0].object.kind, 'ConfigMap');
    assert.equal(lines[1].object.metadata.resourceVersion, String(e.server.resourceVersion));
  });

  test('namespace deletion empties the namespace, then removes it', async () => {
    await e.core.createNamespace({ body: { metadata: { name: 'doomed' } } });
    await e.core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'c' } } });
    await e.core.createNamespacedPod({ namespace: 'doomed', body: pod('p', 'node-a') });
    const ns = await e.core.deleteNamespace({ name: 'doomed' });
    assert.equal((ns as KObj).status?.phase, 'Terminating');
    const refused = await apiError(() => e.core.createNamespacedConfigMap({ namespace: 'doomed', body: { metadata: { name: 'd' } } }));
    assert.equal(refused.code, 403);
    await waitFor('namespace gone', () => !e.server.getObject('v1', 'Namespace', undefined, 'doomed'));
    assert.equal(e.server.getObject('v1', 'Pod', 'doomed', 'p'), undefined);
    const immortal = await apiError(() => e.core.deleteNamespace({ name: 'default' }));
    assert.equal(immortal.code, 403);
  });

  test('garbage collection removes dependents of a deleted owner', async () => {
    const b = e.server.createObject({ apiVersion: 'velero.io/v1', kind: 'Backup', metadata: { name: 'bk', namespace: NS }, spec: {} });
    const owned = pvb('owned', {
      metadata: { name: 'owned', namespace: NS, ownerReferences: [{ apiVersion: 'velero.io/v1', kind: 'Backup', name: 'bk', uid: b.metadata.uid, controller: true }] },
    });
    await e.custom.createNamespacedCustomObject({ ...PVB, body: owned });
    await e.custom.deleteNamespacedCustomObject({ ...PVB, plural: 'backups', name: 'bk' });
    await waitFor('dependent collected', () => !e.server.getObject('velero.io/v1', 'PodVolumeBackup', NS, 'owned'));
  });
});

describe('protocol edge cases', () => {
  let s: KubeApiServer;
  before(async () => {
    s = await KubeApiServer.start({ tooLargeResourceVersionWaitMs: 100 });
    installVeleroCrds(s, '1.9');
  });
  after(async () => {
    await s.close();
  });
  const raw = async (method: string, p: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(s.url + p, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': contentType },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as KObj) : ({} as KObj) };
  };
  const cmPath = '/api/v1/namespaces/default/configmaps';

  test('JSON patch follows evanphx/json-patch v4, as the apiserver does', async () => {
    await raw('POST', cmPath, { metadata: { name: 'j' }, data: { a: '1' } });
    const jp = (ops: unknown) => raw('PATCH', `${cmPath}/j`, ops, 'application/json-patch+json');
    assert.equal((await jp([{ op: 'replace', path: '/data/b', value: '2' }])).body.data.b, '2', 'replace of a missing member adds it');
    assert.equal((await jp([{ op: 'test', path: '/data/missing', value: null }])).status, 200, 'missing tests equal to null');
    assert.equal((await jp([{ op: 'remove', path: '/data/missing' }])).status, 422);
    assert.equal((await jp([{ op: 'test', path: '/nope/deeper', value: 'x' }])).status, 422);
    assert.equal((await jp([{ op: 'frobnicate', path: '/data/a' }])).status, 422);
    const notArray = await jp({ op: 'remove', path: '/data/a' });
    assert.equal(notArray.status, 400);
    const rename = await jp([{ op: 'replace', path: '/metadata/name', value: 'other' }]);
    assert.equal(rename.status, 400);
    assert.equal(rename.body.message, 'the name of the object (other) does not match the name on the URL (j)');
    assert.equal((await raw('PATCH', `${cmPath}/j`, { data: {} }, 'application/json')).status, 415);
    assert.equal((await raw('POST', cmPath, { metadata: { name: 'y' } }, 'text/plain')).status, 415);
  });

  test('dryRun, deletecollection, methods, preconditions, future resourceVersions', async () => {
    const dry = await raw('POST', `${cmPath}?dryRun=All`, { metadata: { name: 'dry' } });
    assert.equal(dry.status, 201);
    assert.equal((await raw('GET', `${cmPath}/dry`)).status, 404);
    await raw('POST', cmPath, { metadata: { name: 'k1', labels: { sweep: 'yes' } } });
    await raw('POST', cmPath, { metadata: { name: 'k2', labels: { sweep: 'yes' } } });
    const swept = await raw('DELETE', `${cmPath}?labelSelector=sweep%3Dyes`);
    assert.deepEqual(swept.body.items.map((i: KObj) => i.metadata.name), ['k1', 'k2']);
    assert.equal((await raw('POST', '/api/v1/pods', { metadata: { name: 'x' } })).status, 405);

    const c = await raw('POST', cmPath, { metadata: { name: 'pre' } });
    const pre = await raw('DELETE', `${cmPath}/pre`, { preconditions: { uid: 'not-the-uid' } });
    assert.equal(pre.status, 409);
    assert.match(pre.body.message, /Precondition failed: UID in precondition: not-the-uid, UID in object meta: /);
    const ok = await raw('DELETE', `${cmPath}/pre`, { preconditions: { uid: c.body.metadata.uid } });
    assert.deepEqual([ok.status, ok.body.kind, ok.body.status, ok.body.details.name], [200, 'Status', 'Success', 'pre']);

    const future = await raw('GET', `${cmPath}?resourceVersion=${s.resourceVersion + 100}`);
    assert.equal(future.status, 504);
    assert.equal(future.body.reason, 'Timeout');
  });

  test('deleting a CRD ends its watches and removes its objects once their finalizers are gone', async () => {
    const base = '/apis/velero.io/v1/namespaces/default/resticrepositories';
    const repo = {
      apiVersion: 'velero.io/v1',
      kind: 'ResticRepository',
      metadata: { name: 'default-default-abcde', finalizers: ['example.com/hold'] },
      spec: { volumeNamespace: 'default', backupStorageLocation: 'default', resticIdentifier: 's3:x', maintenanceFrequency: '168h0m0s' },
    };
    assert.equal((await raw('POST', base, repo)).status, 201);
    const res = await fetch(`${s.url}${base}?watch=true&resourceVersion=${s.resourceVersion}`);
    const done = res.text();
    await waitFor('watch open', () => s.watchCount === 1);
    const del = await raw('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/resticrepositories.velero.io');
    assert.ok(del.body.metadata.deletionTimestamp);
    await waitFor('terminating', () => s.getObject('velero.io/v1', 'ResticRepository', 'default', repo.metadata.name)?.metadata.deletionTimestamp);
    const refused = await raw('POST', base, { ...repo, metadata: { name: 'another' } });
    assert.equal(refused.status, 405);
    assert.equal(refused.body.message, 'create not allowed while custom resource definition is terminating');
    await raw('PATCH', `${base}/${repo.metadata.name}`, { metadata: { finalizers: null } }, 'application/merge-patch+json');
    await waitFor('CRD gone', () => (s.getObject('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, 'resticrepositories.velero.io') ? false : true));
    const lines = (await done).trim().split('\n').map((l) => JSON.parse(l).type);
    assert.deepEqual(lines, ['MODIFIED', 'DELETED']);
    assert.equal((await raw('GET', base)).status, 404);
  });
});
