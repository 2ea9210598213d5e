/**
 * `rclone serve restic` (restic's REST protocol, v1 + v2) on a free loopback port, serving a temp
 * folder. Stopped by stop() and, as a safety net, when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort } from './ceph.js';

export const hasRclone = spawnSync('rclone', ['version']).status === 0;

/** In CI a missing rclone fails the test instead of skipping it. */
export function requireRclone(t: { skip(msg?: string): void }): boolean {
  if (hasRclone) return true;
  if (process.env.CI) throw new Error('rclone is not installed (CI must install it)');
  t.skip('rclone not installed (apt-get install rclone)');
  return false;
}

export interface RcloneRest {
  /** http://127.0.0.1:PORT (no trailing slash); repositories are paths below it. */
  url: string;
  port: number;
  /** The served folder. */
  dir: string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let exitHook = false;

function probe(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
  });
}

export async function startRclone(opts: { user?: string; pass?: string; appendOnly?: boolean } = {}): Promise<RcloneRest> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-rclone-'));
  if (!exitHook) {
    exitHook = true;
    const killAll = () => {
      for (const c of children) c.kill('SIGKILL');
    };
    process.on('exit', killAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        killAll();
        process.kill(process.pid, sig);
      });
    }
  }
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const args = ['serve', 'restic', '--addr', `127.0.0.1:${port}`];
    if (opts.user) args.push('--user', opts.user, '--pass', opts.pass ?? '');
    if (opts.appendOnly) args.push('--append-only');
    args.push(dir);
    const child = spawn('rclone', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    let exited = false;
    child.on('exit', () => {
      exited = true;
      children.delete(child);
    });
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 100 && !exited; i++) {
      if (await probe(url + '/')) {
        return {
          url,
          port,
          dir,
          stop: async () => {
            if (!exited) {
              const gone = new Promise((r) => child.once('exit', r));
              child.kill('SIGTERM');
              const t = setTimeout(() => child.kill('SIGKILL'), 2000);
              await gone;
              clearTimeout(t);
            }
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    if (attempt === 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`rclone serve restic did not start: ${stderr}`);
    }
  }
  throw new Error('unreachable');
}
