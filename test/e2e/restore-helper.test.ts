import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { cairn, cairnCli, repoRoot, tempDir } from '../support/env.js';

const UID = '0c5bb1a6-93f4-4d0e-8f0c-3b7b5f2f6d11';

interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function start(script: string, args: string[]): Running {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void exit.then(() => clearTimeout(killer));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function writeMarker(restores: string, volume: string, uid = UID): void {
  fs.mkdirSync(path.join(restores, volume, '.velero'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(restores, volume, '.velero', uid), '', { mode: 0o644 });
}

test('restore-helper process: waits for every volume, removes the markers, exits 0', async () => {
  const d = tempDir();
  try {
    const restores = path.join(d.dir, 'restores');
    for (const v of ['data', 'logs']) fs.mkdirSync(path.join(restores, v), { recursive: true });
    fs.writeFileSync(path.join(restores, 'data', 'keep.txt'), 'restored content');
    const p = start(cairnCli, ['restore-helper', UID, '--restores-dir', restores, '--interval', '50ms']);
    await until('the waiting line', () => p.stdout().includes('waiting for 2 of 2 volume(s): data, logs'));
    writeMarker(restores, 'logs');
    await until('logs to be seen', () => p.stdout().includes('waiting for 1 of 2 volume(s): data'));
    assert.equal(p.child.exitCode, null, 'still waiting for data');
    writeMarker(restores, 'data');
    const { code } = await p.exit;
    assert.equal(code, 0, p.stderr());
    assert.match(p.stdout(), /all 2 volume\(s\) restored/);
    for (const v of ['data', 'logs']) assert.equal(fs.existsSync(path.join(restores, v, '.velero')), false, `${v}/.velero removed`);
    assert.equal(fs.readFileSync(path.join(restores, 'data', 'keep.txt'), 'utf8'), 'restored content');
  } finally {
    d.cleanup();
  }
});

test('restore-helper process: SIGTERM ends the wait promptly with 143 and leaves markers in place', async () => {
  const d = tempDir();
  try {
    const restores = path.join(d.dir, 'restores');
    fs.mkdirSync(path.join(restores, 'pending'), { recursive: true });
    writeMarker(restores, 'ready');
    const p = start(cairnCli, ['restore-helper', UID, '--restores-dir', restores, '--interval', '1h']);
    await until('the waiting line', () => p.stdout().includes('waiting for 1 of 2 volume(s): pending'));
    const sent = Date.now();
    p.child.kill('SIGTERM');
    const { code } = await p.exit;
    assert.ok(Date.now() - sent < 10_000, 'exits without waiting for the poll interval');
    assert.equal(code, 143);
    assert.match(p.stderr(), /stopped by SIGTERM/);
    assert.doesNotMatch(p.stderr(), /Fatal/);
    assert.equal(fs.existsSync(path.join(restores, 'ready', '.velero', UID)), true);
  } finally {
    d.cleanup();
  }
});

test('restore-helper process: --json lines, and an empty restores directory exits at once', async () => {
  const d = tempDir();
  try {
    const r = await cairn(['--json', 'restore-helper', UID, '--restores-dir', d.dir]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]!.message_type, 'start');
    assert.deepEqual(lines.at(-1), { message_type: 'summary', volumes: [], remove_failures: [] });
  } finally {
    d.cleanup();
  }
});

test('restore-helper process: usage errors (missing UID, bad UID, bad interval) exit 2', async () => {
  assert.equal((await cairn(['restore-helper'])).code, 2);
  const bad = await cairn(['restore-helper', '../etc']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid restore UID/);
  assert.equal((await cairn(['restore-helper', UID, '--interval', 'soon'])).code, 2);
});

test('velero compatibility entry: /velero-style arguments it does not serve exit 2 with an explanation', async () => {
  const script = path.join(repoRoot, 'dist', 'velero-compat.js');
  const p = start(script, ['backup', 'create', 'nightly']);
  const { code } = await p.exit;
  assert.equal(code, 2);
  assert.match(p.stderr(), /node-agent server/);
  const v = start(script, ['version']);
  assert.equal((await v.exit).code, 0);
  assert.match(v.stdout(), /^\d+\.\d+\.\d+/);
});

test("image entry for /velero-restore-helper: Velero's argument form, and it fits Velero's 128 MiB init container limit", async () => {
  const d = tempDir();
  try {
    const entry = path.join(repoRoot, 'dist', 'restore-helper-main.js');
    const restores = path.join(d.dir, 'restores');
    fs.mkdirSync(path.join(restores, 'data'), { recursive: true });
    const p = start(entry, [UID, '--restores-dir', restores, '--interval', '50ms']);
    await until('the waiting line', () => p.stdout().includes('waiting for 1 of 1 volume(s): data'));
    writeMarker(restores, 'data');
    assert.equal((await p.exit).code, 0, p.stderr());
    assert.equal(fs.existsSync(path.join(restores, 'data', '.velero')), false);

    assert.equal((await start(entry, []).exit).code, 2, 'the UID is required');

    // Memory: run the entry in-process (empty restores dir: it returns at once) and read the RSS.
    const empty = path.join(d.dir, 'empty');
    fs.mkdirSync(empty);
    const probe = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `process.argv = [process.argv[0], 'helper', ${JSON.stringify(UID)}, '--restores-dir', ${JSON.stringify(empty)}, '-q'];
         await import(${JSON.stringify(pathToFileURL(entry).href)});
         console.log('RSS=' + process.memoryUsage().rss);`,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(probe.status, 0, probe.stderr);
    const rss = Number(/RSS=(\d+)/.exec(probe.stdout)?.[1]);
    assert.ok(rss > 0 && rss < 96 * 1024 * 1024, `restore helper RSS ${(rss / 1048576).toFixed(1)} MiB; Velero limits the init container to 128 MiB`);
  } finally {
    d.cleanup();
  }
});
