/** The loader: which implementation `native` is, CAIRN_NATIVE=0, repo root lookup, silence. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { addonPath, findRepoRoot, loadAddon, loadFallback, native } from './index.js';

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
    for (const api of [loadFallback(), loadAddon()]) {
      if (api === undefined) continue;
      for (const name of ['poly1305', 'rabin', 'lgetxattrs', 'lsetxattr', 'mknod', 'mkfifo', 'utimens'] as const) {
        assert.equal(typeof api[name], 'function', `${api.kind}.${name}`);
      }
      assert.ok(Object.isFrozen(api));
    }
  });
});
