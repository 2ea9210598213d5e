import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the directory holding package.json). */
export const repoRoot: string = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(d, 'package.json'))) {
    const up = path.dirname(d);
    if (up === d) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    d = up;
  }
  return d;
})();

export const fixturesDir = process.env.CAIRN_FIXTURES ?? path.resolve(repoRoot, '../shared/fixtures');
export const cairnCli = path.join(repoRoot, 'dist', 'cli.js');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  input?: string;
  timeoutMs?: number;
}

function run(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: { ...process.env, ...o.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(o.input ?? '');
  });
}

export function cairn(args: string[], o: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, [cairnCli, ...args], o);
}

export function restic(args: string[], o: RunOptions = {}): Promise<RunResult> {
  return run('restic', ['--no-cache', ...args], o);
}

export const hasRestic = spawnSync('restic', ['version']).status === 0;

/** In CI a missing dependency fails the test instead of skipping it. */
export function requireRestic(t: { skip(msg?: string): void }): boolean {
  if (hasRestic) return true;
  if (process.env.CI) throw new Error('restic is not installed (CI must install it)');
  t.skip('restic not installed');
  return false;
}

export function tempDir(prefix = 'cairn-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function mustOk(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed with exit code ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}
