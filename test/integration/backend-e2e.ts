/**
 * End-to-end checks every remote backend runs with the real CLI and the real restic: cairn
 * init/backup/restore, restic check --read-data / restic restore on what cairn wrote (and the
 * reverse), backups and restores through a fault-injecting proxy, and a permanently failing
 * backend. A server module supplies how to start its server and how to name repositories.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, mustOk, requireRestic, restic, tempDir, type RunResult } from '../support/env.js';
import { diffFacts, makeRichTree, snapshotFacts } from '../support/tree.js';
import { FaultProxy, type FaultRule } from '../support/fault-proxy.js';

export interface E2EServer {
  /** Identifier of a repository `name` on the server, or reached through the proxy at `via` (http://127.0.0.1:PORT). */
  repo(name: string, via?: string): string;
  /** Where the proxy forwards to. */
  target: { host: string; port: number };
  /** Credentials etc. for cairn and restic. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export interface E2ESetup {
  name: string;
  /** Why the suite cannot run here (never in CI, where a missing server fails). */
  skip: string | false;
  start(): Promise<E2EServer>;
  /** The method of a file upload on the wire (PUT for S3, POST for REST). */
  writeMethod: string;
}

const PW = { RESTIC_PASSWORD: 'backend-e2e-password' };
/** Fast retries for tests: the same code paths as production, shorter waits. */
const FAST_RETRY = ['-o', 'retry.initial-delay=20ms', '-o', 'retry.max-attempts=12'];

function counts(p: FaultProxy): string {
  return JSON.stringify(p.injected);
}

export function backendE2E(setup: E2ESetup): void {
  describe(`end to end: ${setup.name}`, { skip: setup.skip }, () => {
    let server: E2EServer | undefined;
    let work: ReturnType<typeof tempDir> | undefined;
    let src = '';
    let n = 0;
    const fresh = (via?: string) => server!.repo(`e2e-${process.pid}-${n++}`, via);
    const env = (repo: string, extra: Record<string, string> = {}) => ({ ...PW, ...server!.env, RESTIC_REPOSITORY: repo, ...extra });

    before(async () => {
      server = await setup.start();
      work = tempDir('cairn-backend-e2e-');
      src = path.join(work.dir, 'data', 'src');
      makeRichTree(src, 77, { bigFiles: true });
    });
    after(async () => {
      await server?.stop();
      work?.cleanup();
    });

    const restoreAndCompare = async (repo: string, tool: 'cairn' | 'restic', extraArgs: string[] = [], extraEnv: Record<string, string> = {}): Promise<RunResult> => {
      const target = fs.mkdtempSync(path.join(work!.dir, `restore-${tool}-`));
      const args = ['restore', 'latest', '--target', target, ...extraArgs];
      const r = tool === 'cairn' ? await cairn([...args, '--verify'], { env: env(repo, extraEnv) }) : await restic(args, { env: env(repo, extraEnv) });
      mustOk(r, `${tool} restore`);
      assert.deepEqual(diffFacts(snapshotFacts(src), snapshotFacts(path.join(target, src))), [], `${tool} restored the same tree`);
      fs.rmSync(target, { recursive: true, force: true });
      return r;
    };

    it('cairn init/backup/restore; restic check --read-data and restic restore read the repository', async (t) => {
      if (!requireRestic(t)) return;
      const repo = fresh();
      mustOk(await cairn(['init'], { env: env(repo) }), 'cairn init');
      const b = mustOk(await cairn(['backup', src, '--pack-size', '4', '--json'], { env: env(repo) }), 'cairn backup');
      const summary = JSON.parse(b.stdout.trim().split('\n').pop()!);
      assert.equal(summary.message_type, 'summary');
      await restoreAndCompare(repo, 'cairn');
      const check = mustOk(await restic(['check', '--read-data'], { env: env(repo) }), 'restic check');
      assert.match(check.stdout, /no errors were found/);
      await restoreAndCompare(repo, 'restic');
      // a second backup finds its parent through the backend and adds (almost) nothing
      const b2 = JSON.parse(mustOk(await cairn(['backup', src, '--json'], { env: env(repo) }), 'second backup').stdout.trim().split('\n').pop()!);
      assert.equal(b2.files_new, 0);
      assert.ok(b2.data_added < 100_000, `second backup added ${b2.data_added} bytes`);
      const snaps = JSON.parse(mustOk(await restic(['snapshots', '--json'], { env: env(repo) }), 'restic snapshots').stdout);
      assert.equal(snaps.length, 2);
      // init on an existing repository is refused
      const again = await cairn(['init'], { env: env(repo) });
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /already exists/);
    });

    it('restic writes, cairn reads and adds a snapshot, restic checks', async (t) => {
      if (!requireRestic(t)) return;
      const repo = fresh();
      mustOk(await restic(['init', '--repository-version', '2'], { env: env(repo) }), 'restic init');
      mustOk(await restic(['backup', src], { env: env(repo) }), 'restic backup');
      await restoreAndCompare(repo, 'cairn');
      mustOk(await cairn(['backup', src, '--force'], { env: env(repo) }), 'cairn backup');
      mustOk(await restic(['check', '--read-data'], { env: env(repo) }), 'restic check');
    });

    it('backup and restore complete through 5xx bursts, 429 + Retry-After, resets, truncated bodies and latency; restic check passes', async (t) => {
      if (!requireRestic(t)) return;
      const proxy = await FaultProxy.start({ target: server!.target, seed: 42 });
      try {
        const repoDirect = fresh();
        const name = repoDirect;
        const repo = server!.repo(name.slice(name.lastIndexOf('e2e-')), proxy.url);
        const W = setup.writeMethod;
        const rules: FaultRule[] = [
          // one of each for certain (the counts below must not depend on luck) ...
          { fault: { kind: 'latency', ms: 150 }, times: 1, after: 1 },
          { fault: { kind: 'status', status: 429, retryAfter: 1 }, times: 2, after: 5 },
          { fault: { kind: 'status', status: 503, retryAfter: 1 }, method: W, path: /\/data\//, times: 1, after: 2 },
          // the server stores the file but the answer is lost: the retry meets the stored file
          { fault: { kind: 'reset-after-forward' }, method: W, path: /\/data\//, times: 2 },
          { fault: { kind: 'reset-after-forward' }, method: W, path: /\/(index|snapshots|keys)\//, times: 2 },
          // a 5xx burst: several consecutive failures of the same upload
          { fault: { kind: 'status', status: 500 }, method: W, path: /\/data\//, after: 3, times: 3 },
          { fault: { kind: 'reset' }, method: 'GET', times: 1, after: 8 },
          { fault: { kind: 'truncate', fraction: 0.6 }, method: 'GET', times: 1, after: 4 },
          // downloads cut short: reset mid-body, and a server that lies about the length of a range
          { fault: { kind: 'reset-mid-body', fraction: 0.3 }, method: 'GET', path: /\/data\//, ranged: true, times: 1 },
          { fault: { kind: 'truncate', fraction: 0.9, lie: true }, method: 'GET', path: /\/data\//, ranged: true, times: 1, after: 1 },
          { fault: { kind: 'stall', ms: 1500, fraction: 0.5 }, method: 'GET', path: /\/data\//, ranged: true, times: 1, after: 2 },
          // ... and more at random (seeded)
          { fault: { kind: 'status', status: 500 }, method: W, probability: 0.2 },
          { fault: { kind: 'reset-after-forward' }, method: W, probability: 0.1 },
          { fault: { kind: 'status', status: 502 }, method: 'GET', probability: 0.1 },
          { fault: { kind: 'status', status: 503 }, method: 'HEAD', probability: 0.2 },
          { fault: { kind: 'reset' }, probability: 0.04 },
          { fault: { kind: 'reset-mid-body', fraction: 0.3 }, method: 'GET', probability: 0.1 },
          { fault: { kind: 'truncate', fraction: 0.6 }, method: 'GET', probability: 0.1 },
          { fault: { kind: 'truncate', fraction: 0.9, lie: true }, method: 'GET', ranged: true, probability: 0.15 },
          { fault: { kind: 'latency', ms: 150 }, probability: 0.1 },
        ];
        proxy.setRules(rules, 42);
        const opts = [...FAST_RETRY, '-o', setup.name.startsWith('s3') ? 's3.idle-timeout=1s' : 'rest.idle-timeout=1s'];
        const t0 = Date.now();
        const times: string[] = [];
        const lap = (what: string) => times.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)}s`);
        mustOk(await cairn([...opts, 'init'], { env: env(repo) }), 'cairn init through faults');
        lap('init');
        const b = mustOk(await cairn([...opts, 'backup', src, '--pack-size', '4'], { env: env(repo) }), 'cairn backup through faults');
        lap('backup');
        assert.match(b.stderr, /retrying/, 'retries are reported');
        const afterBackup = { ...proxy.injected };
        await restoreAndCompare(repo, 'cairn', opts);
        lap('restore');
        const check = mustOk(await restic(['check', '--read-data'], { env: env(repoDirect) }), 'restic check (direct)');
        lap('restic check');
        t.diagnostic(times.join(', '));
        if (process.env.FAULT_PROXY_DEBUG) for (const l of proxy.log) t.diagnostic(`${((l.at - t0) / 1000).toFixed(2)}s #${l.n} ${l.kind} ${l.method} ${l.path}`);
        assert.match(check.stdout, /no errors were found/);
        const faults = proxy.injected;
        t.diagnostic(`faults during backup ${JSON.stringify(afterBackup)}, in total ${counts(proxy)} over ${proxy.requests} requests`);
        for (const kind of ['status', 'reset', 'reset-after-forward', 'reset-mid-body', 'truncate', 'stall', 'latency']) {
          assert.ok((faults[kind] ?? 0) > 0, `no ${kind} fault was injected: ${counts(proxy)}`);
        }
        const lied = proxy.log.filter((l) => l.kind === 'truncate').length;
        assert.ok(lied >= 2, 'truncations happened');
      } finally {
        await proxy.close();
      }
    });

    it('a permanently failing backend ends with a clear error and leaves a repository restic accepts', async (t) => {
      if (!requireRestic(t)) return;
      const proxy = await FaultProxy.start({ target: server!.target, seed: 7 });
      try {
        const repoDirect = fresh();
        const repo = server!.repo(repoDirect.slice(repoDirect.lastIndexOf('e2e-')), proxy.url);
        mustOk(await cairn(['init'], { env: env(repo) }), 'cairn init');
        mustOk(await cairn(['backup', path.join(src, 'text')], { env: env(repo) }), 'first backup');
        // from now on every pack upload fails after the first two
        proxy.setRules([{ fault: { kind: 'status', status: 503 }, method: setup.writeMethod, path: /\/data\//, after: 2 }]);
        const started = Date.now();
        const r = await cairn(['-o', 'retry.initial-delay=20ms', '-o', 'retry.max-attempts=3', 'backup', src, '--pack-size', '4'], { env: env(repo) });
        const took = Date.now() - started;
        assert.notEqual(r.code, 0, 'the backup must fail');
        assert.match(r.stderr, /Fatal: .*save pack [0-9a-f]{64} at .* failed after 3 attempts: .*503/);
        assert.ok(!/testsecret|backup-e2e-password/.test(r.stderr), 'no secrets in the message');
        assert.ok(took < 60_000, `gave up in ${took} ms`);
        const check = mustOk(await restic(['check', '--read-data'], { env: env(repoDirect) }), 'restic check after the failure');
        assert.match(check.stdout, /no errors were found/);
        const snaps = JSON.parse(mustOk(await restic(['snapshots', '--json'], { env: env(repoDirect) }), 'restic snapshots').stdout);
        assert.equal(snaps.length, 1, 'the failed backup left no snapshot');
        const locks = mustOk(await restic(['list', 'locks', '--no-lock'], { env: env(repoDirect) }), 'restic list locks');
        assert.equal(locks.stdout.trim(), '', 'the failed backup released its lock');
      } finally {
        await proxy.close();
      }
    });
  });
}
