import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { cairn, cairnCli, mustOk, requireRestic, restic, tempDir } from '../support/env.js';
import { makeRichTree, seeded } from '../support/tree.js';

/** Starts a backup and SIGKILLs it after `ms` milliseconds (or lets it finish). */
function killedBackup(src: string, env: Record<string, string>, ms: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cairnCli, 'backup', src, '--pack-size', '4'], { env: { ...process.env, ...env }, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

test('backups killed at 20 seeded moments leave a repository restic check accepts; the next backup completes', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const repo = path.join(d.dir, 'repo');
    const src = path.join(d.dir, 'src');
    makeRichTree(src, 7, { bigFiles: true });
    const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'crash' };
    mustOk(await cairn(['init'], { env }), 'init');
    // measure one full backup to spread the kill points over its duration
    const t0 = Date.now();
    mustOk(await cairn(['backup', src, '--pack-size', '4', '--force'], { env }), 'first backup');
    const full = Math.max(400, Date.now() - t0);
    const rand = seeded(20261122);
    let killed = 0;
    for (let i = 0; i < 20; i++) {
      // every other run changes data so the killed backup has new packs to write
      if (i % 2 === 0) makeRichTree(path.join(src, `round-${i}`), 1000 + i);
      const at = Math.floor(rand() * full * 1.2);
      const code = await killedBackup(src, env, at);
      if (code === null) killed++;
      const check = await restic(['check', '--no-lock'], { env });
      assert.equal(check.code, 0, `restic check after kill at ${at} ms (run ${i}):\n${check.stdout}\n${check.stderr}`);
    }
    assert.ok(killed >= 10, `only ${killed} of 20 backups were actually interrupted`);
    mustOk(await cairn(['backup', src], { env }), 'backup after crashes');
    const check = mustOk(await restic(['check', '--read-data', '--no-lock'], { env }), 'final check');
    assert.match(check.stdout, /no errors were found/);
  } finally {
    d.cleanup();
  }
});
