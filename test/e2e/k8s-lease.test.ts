/**
 * The per-repository Lease (src/agent/standalone/lease.ts) against the API test server: exactly
 * one of several candidates wins, a held lease is renewed and not taken over, a dead holder's lease
 * is taken over only after a whole lease duration, annotation edits by others do not make the
 * holder lose it, losing it aborts the holder's work, and release frees it at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { systemClock } from '../../src/core/clock.js';
import { nullLogger } from '../../src/core/logger.js';
import { StandaloneKube } from '../../src/agent/standalone/kube.js';
import { RepositoryLease } from '../../src/agent/standalone/lease.js';
import { KubeApiServer } from '../support/kube/server.js';

async function env() {
  const server = await KubeApiServer.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-lease-'));
  const kc = new KubeConfig();
  kc.loadFromFile(server.writeKubeconfig(dir));
  server.createObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'velero' } });
  const kube = new StandaloneKube(kc);
  const candidate = (identity: string, durationMs = 1500) =>
    new RepositoryLease(kube, { namespace: 'velero', name: 'cairn-repo-test', identity, durationMs, clock: systemClock, log: nullLogger, labels: { a: 'b' }, annotations: { 'cairn.io/repository': '/repo' } });
  return {
    server,
    kube,
    candidate,
    close: async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('exactly one of many simultaneous candidates gets the lease; the others do not, even after its duration while it renews', async () => {
  const e = await env();
  try {
    const cs = Array.from({ length: 6 }, (_, i) => e.candidate(`c${i}`));
    const held = await Promise.all(cs.map((c) => c.tryAcquire()));
    const winners = held.filter(Boolean);
    assert.equal(winners.length, 1);
    const winner = winners[0]!;
    const l = await e.kube.getLease('velero', 'cairn-repo-test');
    assert.equal(l?.spec?.holderIdentity, winner.lease.spec?.holderIdentity);
    assert.equal(l?.metadata?.annotations?.['cairn.io/repository'], '/repo');
    // renewals keep it: nobody else gets it over three durations
    for (let i = 0; i < 9; i++) {
      await sleep(500);
      for (const c of cs) if (c.identity !== l?.spec?.holderIdentity) assert.equal(await c.tryAcquire(), undefined);
    }
    assert.equal(winner.lost, false);
    const renewed = await e.kube.getLease('velero', 'cairn-repo-test');
    assert.notEqual(String(renewed?.spec?.renewTime), String(l?.spec?.renewTime));
    // release: the next candidate gets it at once, as a transition
    await winner.release({ 'maintenance.cairn.io/last-prune': '2026-01-01T00:00:00Z' });
    const after = await e.kube.getLease('velero', 'cairn-repo-test');
    assert.equal(after?.spec?.holderIdentity, '');
    assert.equal(after?.metadata?.annotations?.['maintenance.cairn.io/last-prune'], '2026-01-01T00:00:00Z');
    const next = cs.find((c) => c.identity !== l?.spec?.holderIdentity)!;
    const h2 = await next.tryAcquire();
    assert.ok(h2);
    assert.equal(h2.annotations['maintenance.cairn.io/last-prune'], '2026-01-01T00:00:00Z');
    await h2.release();
  } finally {
    await e.close();
  }
});

test("a dead holder's lease is taken over only after a whole duration seen unchanged; annotation edits by others are harmless", async () => {
  const e = await env();
  try {
    const dead = e.candidate('dead', 2000);
    const h = await dead.tryAcquire();
    assert.ok(h);
    // the holder "dies": its renewals stop (release without writing is what a crash looks like)
    (h as unknown as { timer?: { cancel(): void } }).timer?.cancel();
    (h as unknown as { released: boolean }).released = true;
    const other = e.candidate('other', 2000);
    const t0 = Date.now();
    assert.equal(await other.tryAcquire(), undefined, 'first sight: held');
    let got;
    while (!(got = await other.tryAcquire())) await sleep(100);
    const waited = Date.now() - t0;
    assert.ok(waited >= 1900, `took over after ${waited} ms`);
    const l = await e.kube.getLease('velero', 'cairn-repo-test');
    assert.equal(l?.spec?.holderIdentity, 'other');
    assert.equal(l?.spec?.leaseTransitions, 1);

    // someone records a retention policy on the lease (an annotation-only write): the holder keeps it
    const cur = (await e.kube.getLease('velero', 'cairn-repo-test'))!;
    await e.kube.replaceLease('velero', { ...cur, metadata: { ...cur.metadata, annotations: { ...cur.metadata!.annotations, 'retention.cairn.io/nightly': 'last=3' } } });
    await sleep(1500);
    assert.equal(got.lost, false);
    await got.annotate({ 'maintenance.cairn.io/last-check': 'x' });
    const ann = (await e.kube.getLease('velero', 'cairn-repo-test'))!.metadata!.annotations!;
    assert.equal(ann['retention.cairn.io/nightly'], 'last=3');
    assert.equal(ann['maintenance.cairn.io/last-check'], 'x');
    await got.release();
  } finally {
    await e.close();
  }
});

test('a holder whose lease is taken (or whose renewals fail) loses it: its signal aborts', async () => {
  const e = await env();
  try {
    const a = e.candidate('a', 1500);
    const h = await a.tryAcquire();
    assert.ok(h);
    // an administrator hands the lease to someone else
    const cur = (await e.kube.getLease('velero', 'cairn-repo-test'))!;
    await e.kube.replaceLease('velero', { ...cur, spec: { ...cur.spec, holderIdentity: 'admin' } });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('not lost')), 3000);
      h.signal.addEventListener('abort', () => (clearTimeout(t), resolve()));
    });
    assert.match(String((h.signal.reason as Error).message), /lost the lease cairn-repo-test: another holder: admin/);
    await h.release();
    assert.equal((await e.kube.getLease('velero', 'cairn-repo-test'))?.spec?.holderIdentity, 'admin', 'a lost lease is not released by its former holder');

    // renewals failing for two thirds of the duration
    await e.kube.replaceLease('velero', { ...(await e.kube.getLease('velero', 'cairn-repo-test'))!, spec: { holderIdentity: '' } } as never);
    const b = e.candidate('b', 1500);
    const hb = await b.tryAcquire();
    assert.ok(hb);
    const fault = e.server.inject({ method: 'PUT', path: /leases/, status: 500, message: 'etcd unavailable' });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('not lost')), 4000);
      hb.signal.addEventListener('abort', () => (clearTimeout(t), resolve()));
    });
    fault.remove();
    assert.match(String((hb.signal.reason as Error).message), /no renewal for/);
  } finally {
    await e.close();
  }
});
