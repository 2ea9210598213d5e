/**
 * Shared helpers for the native-layer tests (no tests in here): the implementations under test,
 * a seeded PRNG, independent BigInt references for Poly1305 and the Rabin fingerprint, and the
 * fixtures lookup, scratch directories.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NativeApi } from './api.js';
import { addonLoadError, addonPath, loadAddon, loadFallback } from './index.js';

export interface Impl {
  name: 'fallback' | 'native';
  api: NativeApi;
}

/**
 * Both implementations when the addon is built, else only the fallback. CAIRN_REQUIRE_NATIVE=1
 * (set it in CI) turns a missing addon into an error instead of a skipped half.
 */
export function implementations(): { impls: Impl[]; missing?: string } {
  const fallback: Impl = { name: 'fallback', api: loadFallback() };
  const addon = loadAddon();
  if (addon !== undefined) return { impls: [fallback, { name: 'native', api: addon }] };
  const why = addonLoadError();
  const missing = `native addon not available at ${addonPath() ?? '(no repository root)'}${
    why instanceof Error ? `: ${why.message}` : ' (not built: run `npm run install`)'
  }`;
  if (process.env.CAIRN_REQUIRE_NATIVE === '1') throw new Error(missing);
  return { impls: [fallback], missing };
}

/** xoshiro128** on 32-bit integers: deterministic pseudo-random uint32 values from a seed. */
export function prng(seed: number): () => number {
  let a = seed | 0 || 1;
  let b = (seed * 2654435761) | 0 || 2;
  let c = 0x9e3779b9 | 0;
  let d = 0x7f4a7c15 | 0;
  return () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9);
    const t = b << 9;
    c ^= a;
    d ^= b;
    b ^= c;
    a ^= d;
    c ^= t;
    d = rotl(d, 11);
    return r >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export function randomBytes(rand: () => number, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let i = 0;
  for (; i + 4 <= n; i += 4) out.writeUInt32LE(rand(), i);
  for (; i < n; i++) out[i] = rand() & 0xff;
  return out;
}

function leInt(b: Uint8Array): bigint {
  let x = 0n;
  for (let i = b.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]);
  return x;
}

/** Poly1305 straight from RFC 8439 §2.5 with BigInt: the independent oracle. */
export function poly1305Reference(key: Uint8Array, msg: Uint8Array): Buffer {
  const r = leInt(key.subarray(0, 16)) & 0x0ffffffc0ffffffc0ffffffc0fffffffn;
  const s = leInt(key.subarray(16, 32));
  const p = (1n << 130n) - 5n;
  let acc = 0n;
  for (let i = 0; i < msg.length; i += 16) {
    const c = msg.subarray(i, Math.min(i + 16, msg.length));
    acc = ((acc + leInt(c) + (1n << BigInt(8 * c.length))) * r) % p;
  }
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 16; i++) {
    out[i] = Number(tag & 0xffn);
    tag >>= 8n;
  }
  return out;
}

/** fp(window) = (Σ w[j]·x^(8·(63−j))) mod P by plain polynomial division (spec §10.2), no tables. */
export function windowFingerprint(window: Uint8Array, polynomial: bigint): bigint {
  const dp = polynomial.toString(2).length - 1;
  let h = 0n;
  for (const b of window) {
    h = (h << 8n) | BigInt(b);
    for (let d = h.toString(2).length - 1; h !== 0n && d >= dp; d = h.toString(2).length - 1) {
      h ^= polynomial << BigInt(d - dp);
    }
  }
  return h;
}

/** Is n (relative to chunkStart) a content-defined cut by the closed-form definition? */
export function isCutReference(buf: Uint8Array, chunkStart: number, n: number, polynomial: bigint): boolean {
  const end = chunkStart + n;
  return (windowFingerprint(buf.subarray(end - 64, end), polynomial) & 0xfffffn) === 0n;
}

/** The shared fixtures directory: CAIRN_FIXTURES, shared/fixtures next to the repo. */
export function fixturesDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env.CAIRN_FIXTURES,
    resolve(here, '../../../../shared/fixtures'), // build/src/native → <repo>/../shared
    resolve(here, '../../../shared/fixtures'),
  ];
  for (const c of candidates) if (c && existsSync(join(c, 'restic-0.14-v2-source.tar'))) return c;
  return undefined;
}

/** One file out of the fixtures' source tar, extracted with tar(1) into a temp dir. */
export function readFixtureSourceFile(member: string): Buffer | undefined {
  const dir = fixturesDir();
  if (dir === undefined) return undefined;
  const tmp = mkdtempSync(join(os.tmpdir(), 'cairn-native-fixture-'));
  try {
    execFileSync('tar', ['-xf', join(dir, 'restic-0.14-v2-source.tar'), '-C', tmp, member], { stdio: 'ignore' });
    return readFileSync(join(tmp, member));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * A temporary directory for the calling test file (made before its tests, removed after them);
 * returns a function that makes a fresh empty subdirectory of it for each test.
 */
export function scratchDirs(prefix: string): () => string {
  let root = '';
  let seq = 0;
  before(() => {
    root = mkdtempSync(join(os.tmpdir(), prefix));
  });
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });
  return () => {
    const d = join(root, `t${seq++}`);
    mkdirSync(d);
    return d;
  };
}
