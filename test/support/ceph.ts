/**
 * A throw-away Ceph RGW (S3) for tests: started from test/support/ceph-s3.sh in a temp folder on
 * free loopback ports, stopped (SIGKILL after 1 s) by stop(), by the process exiting, and by the
 * test's after() hook. Buckets are made with curl's SigV4 (no SDK outside src/backend/s3).
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { repoRoot } from './env.js';

export const CEPH_SCRIPT = path.join(repoRoot, 'test', 'support', 'ceph-s3.sh');
export const CEPH_ACCESS_KEY = 'testaccess';
export const CEPH_SECRET_KEY = 'testsecret';

export interface CephS3 {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  port: number;
  dir: string;
  accessKey: string;
  secretKey: string;
  /** Environment for restic and the cairn CLI (AWS keys). */
  env: Record<string, string>;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export const hasCeph = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'curl'].every(onPath);

/** In CI a missing Ceph fails the test instead of skipping it. */
export function requireCeph(t: { skip(msg?: string): void }): boolean {
  if (hasCeph) return true;
  if (process.env.CI) throw new Error('Ceph RGW is not installed (CI must install radosgw ceph-mon ceph-osd)');
  t.skip('Ceph RGW not installed (apt-get install radosgw ceph-mon ceph-osd)');
  return false;
}

/** A currently free loopback port (the OS picks it; tiny race until the daemon binds it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

const running = new Set<string>();
let exitHook = false;

function stopSync(dir: string): void {
  spawnSync('bash', [CEPH_SCRIPT, 'stop', dir], { timeout: 10_000 });
  rmSync(dir, { recursive: true, force: true });
}

export async function startCeph(): Promise<CephS3> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-ceph-'));
  if (!exitHook) {
    exitHook = true;
    // a crashed or interrupted test run must not leave daemons behind
    const stopAll = () => {
      for (const d of running) stopSync(d);
      running.clear();
    };
    process.on('exit', stopAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      // stop the daemons, then die of the same signal as we would have
      process.once(sig, () => {
        stopAll();
        process.kill(process.pid, sig);
      });
    }
  }
  running.add(dir);
  let lastOut = '';
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const monPort = await freePort();
    const r = await run('bash', [CEPH_SCRIPT, 'start', dir, String(port), String(monPort)], 90_000);
    if (r.code === 0) {
      const endpoint = `http://127.0.0.1:${port}`;
      const c: CephS3 = {
        endpoint,
        port,
        dir,
        accessKey: CEPH_ACCESS_KEY,
        secretKey: CEPH_SECRET_KEY,
        env: { AWS_ACCESS_KEY_ID: CEPH_ACCESS_KEY, AWS_SECRET_ACCESS_KEY: CEPH_SECRET_KEY },
        createBucket: (name) => createBucket(endpoint, name),
        stop: async () => {
          if (!running.delete(dir)) return;
          await run('bash', [CEPH_SCRIPT, 'stop', dir], 15_000);
          rmSync(dir, { recursive: true, force: true });
        },
      };
      return c;
    }
    lastOut = r.out;
    await run('bash', [CEPH_SCRIPT, 'stop', dir], 15_000); // a port taken in between: try other ports
  }
  running.delete(dir);
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`Ceph RGW did not start:\n${lastOut}`);
}

/** Signed S3 request with curl (SigV4, unsigned payload), as the start script does. */
export async function s3curl(endpoint: string, method: string, pathAndQuery: string, extra: string[] = []): Promise<{ code: number; out: string }> {
  return run('curl', ['-s', '-S', '-f', '--aws-sigv4', 'aws:amz:us-east-1:s3', '-u', `${CEPH_ACCESS_KEY}:${CEPH_SECRET_KEY}`, '-H', 'x-amz-content-sha256:UNSIGNED-PAYLOAD', '-X', method, ...extra, `${endpoint}${pathAndQuery}`], 30_000);
}

async function createBucket(endpoint: string, name: string): Promise<void> {
  const r = await s3curl(endpoint, 'PUT', `/${name}`);
  if (r.code !== 0) throw new Error(`creating bucket ${name} failed: ${r.out}`);
}
