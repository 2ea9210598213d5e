/**
 * Loader for the native layer: the N-API addon `cairn_native` when it was built
 * (<repoRoot>/native/build/Release/cairn_native.node), else the pure TypeScript fallback.
 * CAIRN_NATIVE=0 forces the fallback. Never prints: whoever cares asks `native.kind`.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeApi, RabinKernel, XattrEntry } from './api.js';
import * as fallbackFs from './fallback/fs.js';
import { poly1305 as fallbackPoly1305 } from './fallback/poly1305.js';
import { rabin as fallbackRabin } from './fallback/rabin.js';

export type { NativeApi, RabinKernel, XattrEntry } from './api.js';

const ADDON_RELATIVE = path.join('native', 'build', 'Release', 'cairn_native.node');

/** What the addon module exports (the same functions as NativeApi, without `kind`). */
type AddonExports = Omit<NativeApi, 'kind'>;
const ADDON_FUNCTIONS = ['poly1305', 'rabin', 'lgetxattrs', 'lsetxattr', 'mknod', 'mkfifo', 'utimens'] as const;

function readPackageName(file: string): string | undefined {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (pkg !== null && typeof pkg === 'object' && 'name' in pkg && typeof pkg.name === 'string') return pkg.name;
  } catch {
    // unreadable or not JSON: not ours
  }
  return undefined;
}

/**
 * The repository (or installed package) root: walking up from this module (dist/native/,
 * build/src/native/, ...), the directory whose package.json is cairn's; else the first directory
 * with any package.json; undefined if there is none.
 */
export function findRepoRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  let first: string | undefined;
  for (let dir = from; ; ) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      if (readPackageName(pkg) === 'cairn') return dir;
      first ??= dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return first;
    dir = parent;
  }
}

/** Where the addon is expected (it may not exist). */
export function addonPath(): string | undefined {
  const root = findRepoRoot();
  return root === undefined ? undefined : path.join(root, ADDON_RELATIVE);
}

let addonError: unknown;

/** Why the addon could not be loaded by the last loadAddon() call (undefined if it loaded or was absent). */
export function addonLoadError(): unknown {
  return addonError;
}

/** The N-API implementation, or undefined when it is not built or cannot be loaded here. */
export function loadAddon(): NativeApi | undefined {
  addonError = undefined;
  const file = addonPath();
  if (file === undefined || !fs.existsSync(file)) return undefined;
  let mod: Partial<AddonExports>;
  try {
    mod = createRequire(import.meta.url)(file) as Partial<AddonExports>;
  } catch (e) {
    // Built for another Node ABI or platform, or a broken build: use the fallback.
    addonError = e;
    return undefined;
  }
  for (const name of ADDON_FUNCTIONS) {
    if (typeof mod[name] !== 'function') {
      addonError = new Error(`${file} does not export ${name}()`);
      return undefined;
    }
  }
  const m = mod as AddonExports;
  return Object.freeze({
    kind: 'native' as const,
    poly1305: m.poly1305,
    rabin: m.rabin,
    lgetxattrs: m.lgetxattrs,
    lsetxattr: m.lsetxattr,
    mknod: m.mknod,
    mkfifo: m.mkfifo,
    utimens: m.utimens,
  });
}

/** The pure TypeScript implementation (always available). */
export function loadFallback(): NativeApi {
  return Object.freeze({
    kind: 'fallback' as const,
    poly1305: fallbackPoly1305,
    rabin: fallbackRabin,
    lgetxattrs: fallbackFs.lgetxattrs,
    lsetxattr: fallbackFs.lsetxattr,
    mknod: fallbackFs.mknod,
    mkfifo: fallbackFs.mkfifo,
    utimens: fallbackFs.utimens,
  });
}

function load(): NativeApi {
  if (process.env.CAIRN_NATIVE === '0') return loadFallback();
  return loadAddon() ?? loadFallback();
}

/** The implementation cairn uses: the addon if available (and not disabled), else the fallback. */
export const native: NativeApi = load();
