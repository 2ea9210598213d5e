/**
 * Starts Azurite's blob service (the devDependency, node_modules/.bin/azurite-blob) on a free
 * loopback port for a test, and stops it by PID. Flags per shared/spec/test-servers.md §2:
 * --skipApiVersionCheck (SDK 12.32 sends a newer API version than 3.35 knows) and
 * --disableTelemetry (it would phone home). Data lives in memory only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { repoRoot } from './env.js';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export const azuriteBin = path.join(repoRoot, 'node_modules', '.bin', 'azurite-blob');
export const hasAzurite = existsSync(azuriteBin);

export interface Azurite {
  /** Blob service URL with the account path, e.g. http://127.0.0.1:41234/devstoreaccount1 */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly connectionString: string;
  stop(): Promise<void>;
}

/** In CI a missing Azurite fails the test instead of skipping it. */
export function requireAzurite(t: { skip(msg?: string): void }): boolean {
  if (hasAzurite) return true;
  if (process.env.CI) throw new Error(`azurite is not installed (${azuriteBin} missing; run npm ci)`);
  t.skip('azurite not installed');
  return false;
}

export function connectionStringFor(url: string): string {
  return `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${url};`;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const running = new Set<ChildProcess>();
// Never leave a server behind, even when a test run dies: kill what is still up on exit.
process.once('exit', () => {
  for (const c of running) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

export async function startAzurite(timeoutMs = 30_000): Promise<Azurite> {
  if (!hasAzurite) throw new Error(`azurite-blob not found at ${azuriteBin}`);
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    // Azurite may write bookkeeping files into its working folder (--location cannot be combined
    // with --inMemoryPersistence); give it a throw-away one.
    const work = mkdtempSync(path.join(tmpdir(), 'cairn-azurite-'));
    const child = spawn(
      process.execPath,
      [
        azuriteBin,
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--inMemoryPersistence',
        '--silent',
        '--disableTelemetry',
        '--skipApiVersionCheck',
      ],
      { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    let exited = false;
    const exitPromise = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), running.delete(child), resolve())));
    const url = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
    const stop = async (): Promise<void> => {
      if (!exited && child.pid) {
        child.kill('SIGTERM');
        const t = setTimeout(() => {
          if (!exited) child.kill('SIGKILL');
        }, 3000);
        await exitPromise;
        clearTimeout(t);
      }
      rmSync(work, { recursive: true, force: true });
    };
    const deadline = Date.now() + timeoutMs;
    let ready = false;
    while (!exited && Date.now() < deadline) {
      try {
        // Any HTTP answer (403 without auth) means the server is listening.
        const r = await fetch(`${url}?comp=list`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        ready = true;
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (ready) {
      return { url, port, pid: child.pid!, connectionString: connectionStringFor(url), stop };
    }
    await stop();
    lastError = exited ? `azurite exited: ${output.trim()}` : `azurite not ready after ${timeoutMs} ms: ${output.trim()}`;
    if (!/EADDRINUSE/.test(output)) break;
  }
  throw new Error(lastError);
}
