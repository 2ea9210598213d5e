/**
 * Checks for the SDK-based object stores (Azure Blob on Azurite, GCS on our test server) beyond
 * the shared backend contract: restic's key layout, create-only writes and their idempotent
 * retries, large-file paths (blocks / chunked resumable sessions), pagination, and behaviour
 * under injected faults (5xx bursts, 429 + Retry-After, resets, truncated bodies, stalls) with
 * the retry wrapper — a backup must complete and nothing corrupt may be accepted.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Backend, FileHandle, FileType } from '../../src/backend/backend.js';
import { BackendError } from '../../src/backend/errors.js';
import { RetryBackend } from '../../src/backend/retry.js';
import { CairnError } from '../../src/core/errors.js';
import { FaultProxy, type FaultRule } from '../support/fault-proxy.js';

export interface OpenTuning {
  /** Key prefix inside the container/bucket ("" = root). */
  prefix?: string;
  /** A fresh, not yet existing container/bucket. */
  fresh?: boolean;
  /** Small thresholds so that a few MiB take the block/chunked path. */
  smallParts?: boolean;
  listPageSize?: number;
  stallTimeoutMs?: number;
  /** Send all requests through this proxy. */
  proxy?: FaultProxy;
}

export interface ObjectStoreHarness {
  /** "azure" or "gcs" */
  name: string;
  /** host/port of the real server, for putting a fault proxy in front of it. */
  target(): { host: string; port: number };
  open(t?: OpenTuning): Promise<{ backend: Backend; container: string }>;
  /** All object keys in a container/bucket (sorted). */
  keys(container: string): Promise<string[]>;
  /** Writes an object directly (bypassing the backend). */
  putRaw(container: string, key: string, data: Buffer): Promise<void>;
  /** Fault-proxy path patterns of this API. */
  paths: { upload: RegExp; download: RegExp; any: RegExp };
  /** Upload methods of the API (PUT for Azure; POST and PUT for GCS). */
  uploadMethods: string[];
}

const id = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const h = (type: FileType, data: Uint8Array): FileHandle => ({ type, name: type === 'config' ? 'config' : id(data) });

async function listAll(b: Backend, type: FileType): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for await (const f of b.list(type)) {
    assert.ok(!m.has(f.name), `duplicate ${f.name} in listing`);
    m.set(f.name, f.size);
  }
  return m;
}

async function rejectsCode(p: Promise<unknown>, code: string, retryable?: boolean): Promise<CairnError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CairnError, `expected a CairnError, got ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}, got ${e.code}: ${e.message}`);
    if (retryable !== undefined) assert.equal(e.retryable, retryable, `retryable should be ${retryable}: ${e.message}`);
    return e;
  }
  assert.fail(`expected ${code}, the call succeeded`);
}

function retrying(b: Backend): RetryBackend {
  return new RetryBackend(b, { initialDelayMs: 20, maxDelayMs: 500, maxAttempts: 12 });
}

export function objectStoreChecks(hs: ObjectStoreHarness): void {
  describe(`${hs.name}: object-store specifics`, () => {
    it("stores files in restic's layout below the prefix", async () => {
      const { backend, container } = await hs.open({ prefix: 'velero/restic/ns1' });
      const files: Array<[FileType, Buffer]> = [
        ['config', randomBytes(200)],
        ['key', randomBytes(300)],
        ['snapshot', randomBytes(400)],
        ['index', randomBytes(500)],
        ['lock', randomBytes(100)],
        ['pack', randomBytes(5000)],
      ];
      await backend.create();
      for (const [t, d] of files) await backend.save(h(t, d), d);
      const want = files
        .map(([t, d]) => {
          const n = id(d);
          const rel = { config: 'config', key: `keys/${n}`, snapshot: `snapshots/${n}`, index: `index/${n}`, lock: `locks/${n}`, pack: `data/${n.slice(0, 2)}/${n}` }[t];
          return `velero/restic/ns1/${rel}`;
        })
        .sort();
      assert.deepEqual(await hs.keys(container), want);
      assert.match(backend.location, /:\/velero\/restic\/ns1$/);
    });

    it('round trip: save, stat, load (whole, ranges), list, remove; NOT_FOUND everywhere', async () => {
      const { backend, container } = await hs.open({ prefix: 'rt' });
      await backend.create();
      const data = randomBytes(70_000);
      const ph = h('pack', data);
      await backend.save(ph, data);
      assert.deepEqual(await backend.stat(ph), { name: ph.name, size: data.length });
      assert.ok((await backend.load(ph)).equals(data));
      assert.ok((await backend.load(ph, 100, 1000)).equals(data.subarray(100, 1100)));
      assert.ok((await backend.load(ph, 69_000)).equals(data.subarray(69_000)));
      assert.ok((await backend.load(ph, data.length - 1, 1)).equals(data.subarray(data.length - 1)));
      assert.equal((await backend.load(ph, 10, 0)).length, 0);
      await rejectsCode(backend.load(ph, 69_990, 100), 'CORRUPT', false);
      // names that are not IDs are skipped, as restic does
      await hs.putRaw(container, 'rt/data/00/not-an-id', Buffer.from('x'));
      await hs.putRaw(container, 'rt/keys/README', Buffer.from('x'));
      assert.deepEqual([...(await listAll(backend, 'pack')).entries()], [[ph.name, data.length]]);
      assert.equal((await listAll(backend, 'key')).size, 0);
      assert.equal((await listAll(backend, 'config')).size, 0);
      const cfg = randomBytes(100);
      await backend.save({ type: 'config', name: 'config' }, cfg);
      assert.deepEqual([...(await listAll(backend, 'config')).entries()], [['config', 100]]);
      await backend.remove(ph);
      await rejectsCode(backend.load(ph), 'NOT_FOUND', false);
      await rejectsCode(backend.load(ph, 0, 10), 'NOT_FOUND', false);
      await rejectsCode(backend.stat(ph), 'NOT_FOUND', false);
      await rejectsCode(backend.remove(ph), 'NOT_FOUND', false);
      await rejectsCode(backend.load({ type: 'pack', name: 'zz' }), 'INVALID_ARGUMENT');
    });

    it('create(): makes a missing container/bucket, refuses an existing repository', async () => {
      const { backend } = await hs.open({ fresh: true, prefix: 'repo' });
      // before create: nothing there, listing is empty, loads are NOT_FOUND
      assert.equal((await listAll(backend, 'snapshot')).size, 0);
      await rejectsCode(backend.load({ type: 'config', name: 'config' }), 'NOT_FOUND');
      await backend.create();
      await backend.create(); // no config yet: fine
      await backend.save({ type: 'config', name: 'config' }, randomBytes(50));
      await rejectsCode(backend.create(), 'REPO_EXISTS');
    });

    it('create-only writes: the same bytes again succeed (a retried save), different bytes never overwrite', async () => {
      const { backend } = await hs.open({ prefix: 'co' });
      await backend.create();
      const data = randomBytes(1000);
      const ph = h('snapshot', data);
      await backend.save(ph, data);
      await backend.save(ph, data);
      const other = randomBytes(1000);
      const e = await rejectsCode(backend.save(ph, other), 'BACKEND', false);
      assert.match(e.message, /different content/);
      assert.ok((await backend.load(ph)).equals(data));
      const cfg = randomBytes(64);
      await backend.save({ type: 'config', name: 'config' }, cfg);
      await backend.save({ type: 'config', name: 'config' }, cfg);
      await rejectsCode(backend.save({ type: 'config', name: 'config' }, randomBytes(64)), 'REPO_EXISTS');
    });

    it('large files take the block/chunked path and read back exactly, across part boundaries', async () => {
      const { backend } = await hs.open({ prefix: 'big', smallParts: true });
      await backend.create();
      const data = randomBytes(3 * 1024 * 1024 + 12_345);
      const ph = h('pack', data);
      await backend.save(ph, data);
      assert.equal((await backend.stat(ph)).size, data.length);
      assert.equal(id(await backend.load(ph)), ph.name);
      const at = 1024 * 1024 - 10;
      assert.ok((await backend.load(ph, at, 300_000)).equals(data.subarray(at, at + 300_000)));
      await backend.save(ph, data); // idempotent on the large path too
      // a sub-array of a bigger buffer (how the blob writer hands packs over) is stored as itself
      const big = randomBytes(2 * 1024 * 1024);
      const view = new Uint8Array(big.buffer, big.byteOffset + 777, 1_500_000);
      await backend.save(h('pack', view), view);
      assert.ok((await backend.load(h('pack', view))).equals(Buffer.from(view)));
    });

    it('lists across many pages without duplicates', async () => {
      const { backend } = await hs.open({ prefix: 'pages', listPageSize: 7 });
      await backend.create();
      const names = new Set<string>();
      const all = Array.from({ length: 45 }, (_, i) => randomBytes(10 + i));
      await Promise.all(all.map((d) => backend.save(h('pack', d), d)));
      for (const d of all) names.add(id(d));
      const got = await listAll(backend, 'pack');
      assert.deepEqual([...got.keys()].sort(), [...names].sort());
      for (const d of all) assert.equal(got.get(id(d)), d.length);
    });

    it('parallel saves and loads', async () => {
      const { backend } = await hs.open({ prefix: 'par' });
      await backend.create();
      const all = Array.from({ length: 64 }, () => randomBytes(20_000));
      await Promise.all(all.map((d) => backend.save(h('pack', d), d)));
      const back = await Promise.all(all.map((d) => backend.load(h('pack', d))));
      back.forEach((b, i) => assert.ok(b.equals(all[i]!)));
    });

    describe('faults (through the fault proxy)', () => {
      const withProxy = async (rules: FaultRule[], t: OpenTuning = {}) => {
        const proxy = await FaultProxy.start({ target: hs.target(), rules, seed: 7 });
        const opened = await hs.open({ ...t, proxy });
        return { proxy, ...opened };
      };

      it('5xx bursts on every kind of request: everything still arrives intact', async () => {
        const { proxy, backend } = await withProxy([
          { path: hs.paths.any, fault: { kind: 'status', status: 503 }, probability: 0.25 },
          { path: hs.paths.any, fault: { kind: 'status', status: 500 }, probability: 0.1 },
        ]);
        try {
          const b = retrying(backend);
          await b.create();
          const all = Array.from({ length: 30 }, () => randomBytes(5000));
          await Promise.all(all.map((d) => b.save(h('index', d), d)));
          const listed = new Set<string>();
          for await (const f of b.list('index')) listed.add(f.name);
          assert.equal(listed.size, 30);
          for (const d of all) assert.ok((await b.load(h('index', d))).equals(d));
          assert.ok((proxy.injected.status ?? 0) >= 10, `faults injected: ${JSON.stringify(proxy.injected)}`);
        } finally {
          await proxy.close();
        }
      });

      it('429 with Retry-After: the error carries the delay, the retry wrapper honours it', async () => {
        const { proxy, backend } = await withProxy([]);
        try {
          await backend.create();
          const data = randomBytes(100);
          proxy.setRules([{ path: hs.paths.any, fault: { kind: 'status', status: 429, retryAfter: 1 }, times: 1 }]);
          const e = await rejectsCode(backend.save(h('lock', data), data), 'BACKEND', true);
          assert.ok(e instanceof BackendError);
          assert.equal(e.retryAfterMs, 1000);
          proxy.setRules([{ path: hs.paths.any, fault: { kind: 'status', status: 429, retryAfter: 1 }, times: 1 }]);
          const t0 = Date.now();
          await retrying(backend).save(h('lock', data), data);
          assert.ok(Date.now() - t0 >= 950, 'waited for Retry-After');
          assert.ok((await backend.load(h('lock', data))).equals(data));
        } finally {
          await proxy.close();
        }
      });

      it('lost answers and resets on uploads: the retried create-only save succeeds, content intact', async () => {
        const { proxy, backend } = await withProxy([]);
        try {
          await backend.create();
          const rules: FaultRule[] = [];
          for (const m of hs.uploadMethods) {
            rules.push({ method: m, path: hs.paths.upload, fault: { kind: 'reset-after-forward' }, probability: 0.3 });
            rules.push({ method: m, path: hs.paths.upload, fault: { kind: 'reset' }, probability: 0.2 });
            // an answer cut short: the object is there, its description is not readable
            rules.push({ method: m, path: hs.paths.upload, fault: { kind: 'truncate', fraction: 0.3, lie: true }, probability: 0.2 });
          }
          proxy.setRules(rules);
          const b = retrying(backend);
          const all = Array.from({ length: 20 }, () => randomBytes(3000));
          for (const d of all) await b.save(h('pack', d), d);
          proxy.setRules([]);
          for (const d of all) assert.ok((await backend.load(h('pack', d))).equals(d));
          assert.ok((proxy.injected['reset-after-forward'] ?? 0) > 0 && (proxy.injected.truncate ?? 0) > 0, JSON.stringify(proxy.injected));
        } finally {
          await proxy.close();
        }
      });

      it('truncated, cut and stalled downloads are never returned as data', async () => {
        const { proxy, backend } = await withProxy([], { stallTimeoutMs: 400 });
        try {
          await backend.create();
          const data = randomBytes(200_000);
          const ph = h('pack', data);
          await backend.save(ph, data);
          const faults = [
            { kind: 'truncate' as const, fraction: 0.5 },
            { kind: 'truncate' as const, fraction: 0.5, lie: true },
            { kind: 'reset-mid-body' as const, fraction: 0.3 },
            { kind: 'stall' as const, ms: 3000, fraction: 0.4 },
          ];
          for (const fault of faults) {
            for (const [off, len] of [
              [0, undefined],
              [1000, 150_000],
            ] as Array<[number, number | undefined]>) {
              proxy.setRules([{ method: 'GET', path: hs.paths.download, fault, times: 1 }]);
              // raw backend: an error (retryable) or the exact bytes (an SDK resumed the body) — never wrong bytes
              try {
                const got = await backend.load(ph, off, len);
                assert.ok(got.equals(data.subarray(off, len === undefined ? undefined : off + len)), `${fault.kind}: wrong bytes returned`);
              } catch (e) {
                assert.ok(e instanceof CairnError && e.retryable, `${fault.kind} (${off},${len}): expected a retryable error, got ${String(e)}`);
              }
              proxy.setRules([{ method: 'GET', path: hs.paths.download, fault, times: 2 }]);
              const got = await retrying(backend).load(ph, off, len);
              assert.ok(got.equals(data.subarray(off, len === undefined ? undefined : off + len)), `${fault.kind}: retried load`);
            }
          }
          assert.ok((proxy.injected.truncate ?? 0) >= 4, JSON.stringify(proxy.injected));
        } finally {
          await proxy.close();
        }
      });

      it('listings and metadata cut short are never taken as answers', async () => {
        // A body cut short after a FIN can leave an SDK waiting for the rest: the stall timeout ends it.
        const { proxy, backend } = await withProxy([], { listPageSize: 7, stallTimeoutMs: 1500 });
        try {
          await backend.create();
          const all = Array.from({ length: 30 }, (_, i) => randomBytes(100 + i));
          await Promise.all(all.map((d) => backend.save(h('snapshot', d), d)));
          const want = all.map(id).sort();
          for (const lie of [true, false]) {
            proxy.setRules([{ method: 'GET', path: hs.paths.any, fault: { kind: 'truncate', fraction: 0.6, lie }, probability: 0.4 }]);
            const got: string[] = [];
            for await (const f of retrying(backend).list('snapshot')) got.push(f.name);
            assert.deepEqual(got.sort(), want, `listing with truncated pages (lie=${lie})`);
            for (const d of all.slice(0, 8)) assert.equal((await retrying(backend).stat(h('snapshot', d))).size, d.length);
          }
          // the raw backend: a complete listing or a retryable error, nothing in between
          proxy.setRules([{ method: 'GET', path: hs.paths.any, fault: { kind: 'truncate', fraction: 0.5, lie: true }, probability: 0.5 }]);
          for (let i = 0; i < 5; i++) {
            const got: string[] = [];
            try {
              for await (const f of backend.list('snapshot')) got.push(f.name);
              assert.deepEqual(got.sort(), want);
            } catch (e) {
              assert.ok(e instanceof CairnError && e.retryable, `expected a retryable error, got ${String(e)}`);
            }
          }
          assert.ok((proxy.injected.truncate ?? 0) > 3, JSON.stringify(proxy.injected));
        } finally {
          await proxy.close();
        }
      });

      it('large uploads survive faults on their parts', async () => {
        const { proxy, backend } = await withProxy([], { smallParts: true });
        try {
          await backend.create();
          const rules: FaultRule[] = hs.uploadMethods.map((m) => ({ method: m, path: hs.paths.upload, fault: { kind: 'status' as const, status: 503 }, probability: 0.3 }));
          rules.push({ method: 'PUT', path: hs.paths.upload, fault: { kind: 'reset' }, probability: 0.1 });
          rules.push({ method: 'PUT', path: hs.paths.upload, fault: { kind: 'reset-after-forward' }, probability: 0.15 });
          proxy.setRules(rules);
          const b = retrying(backend);
          for (let i = 0; i < 3; i++) {
            const data = randomBytes(2 * 1024 * 1024 + 999 + i);
            await b.save(h('pack', data), data);
            assert.equal(id(await backend.load(h('pack', data))), id(data));
          }
          // the last part's answer lost: the object exists, the retry must recognise it
          proxy.setRules([{ method: 'PUT', path: hs.paths.upload, fault: { kind: 'reset-after-forward' }, after: hs.name === 'gcs' ? 8 : 9, times: 1 }]);
          const last = randomBytes(2 * 1024 * 1024 + 10);
          await b.save(h('pack', last), last);
          proxy.setRules([]);
          assert.equal(id(await backend.load(h('pack', last))), id(last));
          assert.ok((proxy.injected['reset-after-forward'] ?? 0) > 0, JSON.stringify(proxy.injected));
        } finally {
          await proxy.close();
        }
      });
    });
  });
}
