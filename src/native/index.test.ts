/** The loader: which implementation `native` is, CAIRN_NATIVE=0, repo root lookup, silence. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { addonPath, apiFromAddon, findRepoRoot, kernelConcurrency, loadAddon, loadFallback, native } from './index.js';

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

  it('kernelConcurrency() is the kernel thread count: CAIRN_KERNEL_THREADS, else one per CPU', () => {
    const saved = process.env.CAIRN_KERNEL_THREADS;
    try {
      delete process.env.CAIRN_KERNEL_THREADS;
      assert.equal(kernelConcurrency(), os.availableParallelism());
      process.env.CAIRN_KERNEL_THREADS = '3';
      assert.equal(kernelConcurrency(), 3);
      for (const bad of ['lots', '3x', '0', '257']) {
        process.env.CAIRN_KERNEL_THREADS = bad;
        assert.equal(kernelConcurrency(), os.availableParallelism(), bad);
      }
    } finally {
      if (saved === undefined) delete process.env.CAIRN_KERNEL_THREADS;
      else process.env.CAIRN_KERNEL_THREADS = saved;
    }
  });

  it('kernel jobs keep the process alive until they settle, and an idle process exits', { skip: native.blobKernels !== 'native' && 'no addon kernels' }, () => {
    // Many jobs queued in one go, on one kernel thread and on several: every promise settles with
    // the right result, the last one printed just before the process ends on its own (nothing
    // else keeps the event loop alive), and afterwards the idle kernel threads do not hold it open.
    const script = `
      const { createHash } = await import('node:crypto');
      const { native } = await import(${JSON.stringify(indexUrl)});
      const bufs = Array.from({ length: 200 }, (_, i) => Buffer.alloc(1000 + i * 997, i));
      const ids = await Promise.all(bufs.map((b) => native.sha256(b)));
      const ok = ids.every((id, i) => id === createHash('sha256').update(bufs[i]).digest('hex'));
      native.sha256(Buffer.alloc(1 << 20, 7)).then((id) => process.stdout.write((ok ? 'ok ' : 'WRONG ') + id.slice(0, 8)));
    `;
    for (const threads of ['1', '4']) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, CAIRN_KERNEL_THREADS: threads },
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'ok 51b12eb8', `with ${threads} kernel thread(s)`);
    }
  });

  it('the threads running our jobs switch to SCHED_BATCH, the JavaScript thread does not (CAIRN_THREAD_SCHED=normal: none)', {
    skip: (native.blobKernels !== 'native' || process.platform !== 'linux') && 'no addon kernels, or not Linux',
  }, () => {
    // After a kernel job and an I/O job, list the policy of every thread of the process
    // (/proc/self/task/TID/stat, field 41: 0 SCHED_OTHER, 3 SCHED_BATCH).
    const script = `
      const fs = await import('node:fs');
      const { native } = await import(${JSON.stringify(indexUrl)});
      await native.sha256(Buffer.alloc(4096, 1));
      await native.readFile(${JSON.stringify(fileURLToPath(import.meta.url))}, Buffer.alloc(1 << 20));
      const policy = (tid) => { const st = fs.readFileSync('/proc/self/task/' + tid + '/stat', 'utf8'); return Number(st.slice(st.lastIndexOf(') ') + 2).split(' ')[38]); };
      const others = fs.readdirSync('/proc/self/task').filter((t) => t !== String(process.pid)).map(policy);
      process.stdout.write(JSON.stringify({ main: policy(process.pid), batch: others.filter((p) => p === 3).length }));
    `;
    const run = (env: Record<string, string>) => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { main: number; batch: number };
    };
    const dflt = run({ CAIRN_KERNEL_THREADS: '2' });
    assert.equal(dflt.main, 0);
    // the kernel thread that ran the job and the pool thread that read the file (the other kernel
    // thread may not have started yet)
    assert.ok(dflt.batch >= 2, `a kernel thread and a pool thread at least: ${dflt.batch}`);
    assert.deepEqual(run({ CAIRN_KERNEL_THREADS: '2', CAIRN_THREAD_SCHED: 'normal' }), { main: 0, batch: 0 });
  });
});
