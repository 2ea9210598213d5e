/**
 * coordination.k8s.io/v1 Leases on the API test server, through @kubernetes/client-node: the
 * optimistic concurrency candidates rely on (create races, stale updates), MicroTime decoding and
 * normalisation, and spec validation — what a real kube-apiserver does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CoordinationV1Api, KubeConfig, PatchStrategy, V1MicroTime, setHeaderOptions, type V1Lease } from '@kubernetes/client-node';
import { KubeApiServer, type KObj } from './server.js';
import { parseMicroTime } from './builtins.js';

async function env() {
  const server = await KubeApiServer.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'kube-lease-'));
  const kc = new KubeConfig();
  kc.loadFromFile(server.writeKubeconfig(dir));
  server.createObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'velero' } });
  return {
    server,
    api: kc.makeApiClient(CoordinationV1Api),
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function apiError(fn: () => Promise<unknown>): Promise<{ code: number; status: KObj }> {
  try {
    await fn();
  } catch (e) {
    const err = e as { code?: number; body?: unknown };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, status: typeof err.body === 'string' && err.body ? JSON.parse(err.body) : (err.body as KObj) };
  }
  throw new Error('expected the request to fail');
}

const lease = (name: string, holder: string, t: number): V1Lease => ({
  apiVersion: 'coordination.k8s.io/v1',
  kind: 'Lease',
  metadata: { name, namespace: 'velero' },
  spec: { holderIdentity: holder, leaseDurationSeconds: 15, acquireTime: new V1MicroTime(t), renewTime: new V1MicroTime(t), leaseTransitions: 0 },
});

test('MicroTime parsing follows RFC3339Micro: exactly six fractional digits, stored in UTC', () => {
  assert.deepEqual(parseMicroTime('2026-03-01T10:00:00.123456Z'), { utc: '2026-03-01T10:00:00.123456Z' });
  assert.deepEqual(parseMicroTime('2026-03-01T12:30:00.000001+02:30'), { utc: '2026-03-01T10:00:00.000001Z' });
  assert.match((parseMicroTime('2026-03-01T10:00:00.123Z') as { error: string }).error, /cannot parse "\.123Z" as "\.000000"/);
  assert.match((parseMicroTime('2026-03-01T10:00:00Z') as { error: string }).error, /cannot parse "Z" as "\.000000"/);
  assert.match((parseMicroTime('2026-13-01T10:00:00.000000Z') as { error: string }).error, /month out of range/);
});

test('leases: create/get/list, discovery, 409 on a second create and on a stale update', async () => {
  const e = await env();
  try {
    const now = Date.now();
    const created = await e.api.createNamespacedLease({ namespace: 'velero', body: lease('repo-a', 'agent-1', now) });
    assert.ok(created.metadata?.resourceVersion);
    assert.equal(created.spec?.holderIdentity, 'agent-1');
    assert.match(String(created.spec?.renewTime), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const again = await apiError(() => e.api.createNamespacedLease({ namespace: 'velero', body: lease('repo-a', 'agent-2', now) }));
    assert.equal(again.code, 409);
    assert.equal(again.status.reason, 'AlreadyExists');

    // two candidates read the same version; only the first update wins
    const seen = await e.api.readNamespacedLease({ namespace: 'velero', name: 'repo-a' });
    const first = await e.api.replaceNamespacedLease({ namespace: 'velero', name: 'repo-a', body: { ...seen, spec: { ...seen.spec, holderIdentity: 'agent-2', renewTime: new V1MicroTime(now + 1) } } });
    assert.equal(first.spec?.holderIdentity, 'agent-2');
    const second = await apiError(() => e.api.replaceNamespacedLease({ namespace: 'velero', name: 'repo-a', body: { ...seen, spec: { ...seen.spec, holderIdentity: 'agent-3' } } }));
    assert.equal(second.code, 409);
    assert.equal(second.status.reason, 'Conflict');
    assert.equal((await e.api.readNamespacedLease({ namespace: 'velero', name: 'repo-a' })).spec?.holderIdentity, 'agent-2');

    // a JSON merge patch carrying a stale resourceVersion is a precondition too
    const stale = await apiError(() =>
      e.api.patchNamespacedLease({ namespace: 'velero', name: 'repo-a', body: { metadata: { resourceVersion: seen.metadata!.resourceVersion }, spec: { holderIdentity: 'agent-4' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)),
    );
    assert.equal(stale.code, 409);

    const list = await e.api.listNamespacedLease({ namespace: 'velero' });
    assert.deepEqual(list.items.map((l) => l.metadata?.name), ['repo-a']);
    const res = await fetch(`${e.server.url}/apis/coordination.k8s.io/v1`, { headers: { Authorization: `Bearer ${e.server.token}` } });
    const disc = (await res.json()) as KObj;
    assert.ok(disc.resources.some((r: KObj) => r.name === 'leases' && r.namespaced === true && r.kind === 'Lease'));
  } finally {
    await e.close();
  }
});

test('leases: millisecond times (Date#toISOString) are rejected like a real server; bad durations are invalid', async () => {
  const e = await env();
  try {
    const body = { ...lease('x', 'a', Date.now()) } as KObj;
    body.spec.renewTime = new Date().toISOString();
    const r = await apiError(() => e.api.createNamespacedLease({ namespace: 'velero', body: body as V1Lease }));
    assert.equal(r.code, 400);
    assert.match(r.status.message, /Lease in version "v1" cannot be handled as a Lease: parsing time .* cannot parse ".*" as "\.000000"/);

    const zero = lease('y', 'a', Date.now());
    zero.spec!.leaseDurationSeconds = 0;
    const z = await apiError(() => e.api.createNamespacedLease({ namespace: 'velero', body: zero }));
    assert.equal(z.code, 422);
    assert.match(z.status.message, /spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0/);

    const frac = lease('w', 'a', Date.now()) as KObj;
    frac.spec.leaseDurationSeconds = 1.5;
    assert.equal((await apiError(() => e.api.createNamespacedLease({ namespace: 'velero', body: frac as V1Lease }))).code, 400);

    // offsets are normalised to UTC; an empty holder is kept (a released lease)
    const off = lease('v', '', Date.now()) as KObj;
    off.spec.renewTime = '2026-03-01T12:30:00.000001+02:30';
    const c = await e.api.createNamespacedLease({ namespace: 'velero', body: off as V1Lease });
    assert.equal(String(c.spec?.renewTime), '2026-03-01T10:00:00.000001Z');
    assert.equal(c.spec?.holderIdentity, '');
  } finally {
    await e.close();
  }
});
