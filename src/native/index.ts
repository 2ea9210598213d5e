/**
 * Chooses the implementation of the native contract (./api.ts): the N-API addon built from
 * native/ when it is present, else the pure TypeScript fallback (identical results, slower).
 * CAIRN_NATIVE=0 forces the fallback. Never prints.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeApi } from './api.js';
import { poly1305 } from './fallback/poly1305.js';
import { rabin } from './fallback/rabin.js';
import * as fsFallback from './fallback/fs.js';

function findRepoRoot(): string | undefined {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(d, 'package.json'))) return d;
    const up = path.dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

export function loadFallback(): NativeApi {
  return {
    kind: 'fallback',
    poly1305,
    rabin,
    lgetxattrs: fsFallback.lgetxattrs,
    lsetxattr: fsFallback.lsetxattr,
    mknod: fsFallback.mknod,
    mkfifo: fsFallback.mkfifo,
    utimens: fsFallback.utimens,
  };
}

let addon: NativeApi | null | undefined;

/** The addon, or undefined when it was not built. */
export function loadAddon(): NativeApi | undefined {
  if (addon !== undefined) return addon ?? undefined;
  addon = null;
  const root = findRepoRoot();
  const file = root && path.join(root, 'native', 'build', 'Release', 'cairn_native.node');
  if (file && existsSync(file)) {
    try {
      const m = createRequire(import.meta.url)(file) as Omit<NativeApi, 'kind'>;
      addon = { ...m, kind: 'native' } as NativeApi;
    } catch {
      addon = null;
    }
  }
  return addon ?? undefined;
}

export const native: NativeApi = (process.env.CAIRN_NATIVE === '0' ? undefined : loadAddon()) ?? loadFallback();
