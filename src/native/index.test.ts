/** The loader: which implementation `native` is, CAIRN_NATIVE=0, repo root lookup, silence. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { addonPath, apiFromAddon, findRepoRoot, kernelConcurrency, loadAddon, loadFallback, native, Slots } from './index.js';

const indexUrl = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'index.js')).href;

/** Imports the loader in a fresh process with env and returns { stdout, stderr }. */
function runLoader(env: Record<string, string | undefined>): { stdout: string; stderr: string } {
  const script = `const m = await import(${JSON.stringify(indexUrl)}); process.stdout.write(m.native.kind);`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: childEnv, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr };
}

describe('native loader', () => {
  it('finds the repository root (the directory with cairn’s package.json)', () => {
    const root = findRepoRoot();
    assert.ok(root !== undefined);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string };
    assert.equal(pkg.name, 'cairn');
    assert.equal(addonPath(), path.join(root, 'native', 'build', 'Release', 'cairn_native.node'));
  });

  it('walks past a foreign package.json to cairn’s, and returns undefined with none', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-loader-'));
    try {
      fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'cairn' }));
      const nested = path.join(tmp, 'dist', 'native');
      fs.mkdirSync(nested, { recursive: true });
      fs.writeFileSync(path.join(tmp, 'dist', 'package.json'), JSON.stringify({ type: 'module' }));
      assert.equal(findRepoRoot(nested), tmp);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('uses the addon when it is built, else the fallback', () => {
    const addon = loadAddon();
    if (addon !== undefined && process.env.CAIRN_NATIVE !== '0') assert.equal(native.kind, 'native');
    else assert.equal(native.kind, 'fallback');
    if (addonPath() !== undefined && fs.existsSync(addonPath()!)) assert.ok(addon !== undefined, 'built addon must load');
    assert.equal(loadFallback().kind, 'fallback');
  });

  it('CAIRN_NATIVE=0 forces the fallback; nothing is printed either way', () => {
    const forced = runLoader({ CAIRN_NATIVE: '0' });
    assert.equal(forced.stdout, 'fallback');
    assert.equal(forced.stderr, '');
    const normal = runLoader({ CAIRN_NATIVE: undefined });
    assert.equal(normal.stdout, loadAddon() !== undefined ? 'native' : 'fallback');
    assert.equal(normal.stderr, '');
  });

  it('exposes every NativeApi member as a function in both', () => {
    const names = ['poly1305', 'rabin', 'lgetxattrs', 'lsetxattr', 'mknod', 'mkfifo', 'utimens', 'sealKey', 'seal', 'sealSync', 'open', 'openSync', 'sha256', 'readFile'] as const;
    for (const api of [loadFallback(), loadAddon()]) {
      if (api === undefined) continue;
      for (const name of names) assert.equal(typeof api[name], 'function', `${api.kind}.${name}`);
      assert.ok(api.blobKernels === 'native' || api.blobKernels === 'fallback');
      assert.equal(typeof api.blobKernelsInfo, 'string');
      assert.ok(Object.isFrozen(api));
    }
    assert.equal(loadFallback().blobKernels, 'fallback');
  });

  it('an addon built without zstd keeps its other functions and reports why the blob kernels are the fallback', (t) => {
    const file = addonPath();
    if (file === undefined || !fs.existsSync(file)) {
      t.skip('addon not built');
      return;
    }
    const real = createRequire(import.meta.url)(file) as Record<string, unknown>;
    const reason = 'the addon was built without the blob kernels: (test)';
    const partial: Record<string, unknown> = { blobKernelsMissing: reason };
    for (const k of ['poly1305', 'rabin', 'lgetxattrs', 'lsetxattr', 'mknod', 'mkfifo', 'utimens']) partial[k] = real[k];
    const api = apiFromAddon(partial, file)!;
    assert.equal(api.kind, 'native');
    assert.equal(api.blobKernels, 'fallback');
    assert.match(api.blobKernelsInfo, /built without the blob kernels/);
    assert.equal(api.poly1305, real.poly1305);
    const key = api.sealKey(Buffer.alloc(32, 1), Buffer.alloc(16, 2), Buffer.alloc(16, 3));
    const s = api.sealSync(key, Buffer.from('x'), { compress: false, level: 3 });
    assert.equal(api.openSync(key, s.sealed, { uncompressedLength: 0, maxSize: 10 }).toString(), 'x');
    if (real.sealKey !== undefined) assert.equal(loadAddon()!.blobKernels, 'native');
  });

  it('kernel jobs are admitted by a FIFO limiter of kernelConcurrency() slots', async () => {
    assert.ok(kernelConcurrency() >= 1);
    const slots = new Slots(2);
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const job = (i: number) => async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      order.push(i);
      if (i === 3) throw new Error('job 3 fails');
      return i;
    };
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => slots.run(job(i))));
    assert.equal(most, 2);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    assert.deepEqual(slots.pending, { active: 0, waiting: 0 });
    assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
    // a job that throws synchronously rejects and frees its slot
    await assert.rejects(slots.run(() => { throw new Error('sync'); }), /sync/);
    assert.deepEqual(slots.pending, { active: 0, waiting: 0 });
  });
});
