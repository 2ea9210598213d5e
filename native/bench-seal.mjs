#!/usr/bin/env node
// Sealing blobs (zstd + AES-256-CTR + Poly1305-AES [+ SHA-256]) three ways, one way per process
// (so that peak RSS belongs to that way alone). Not a test.
//
//   node native/bench-seal.mjs addon    [MiB] [--root DIR]   # seal() of the addon, libuv thread pool
//   node native/bench-seal.mjs workers  [MiB] [--root DIR]   # worker_threads pool running seal-worker.js
//   node native/bench-seal.mjs inline   [MiB] [--root DIR]   # sealSync on the main thread (baseline)
//   node native/bench-seal.mjs all      [MiB]                # each of them in a child process, a table
//
// --root points at a checkout whose compiled dist/ is used (default: this one), so that an older
// build's worker path can be measured against the current addon. The workload is 1 MiB blobs,
// half of them incompressible random bytes and half log-like text, plus one 8 KiB text blob per
// sixteen MiB. Prints input MB per wall second and per CPU second (all threads of the process,
// from process.cpuUsage()), and the process's peak RSS (ru_maxrss) above the RSS after setup.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const rootAt = args.indexOf('--root');
const root = rootAt >= 0 ? resolve(args.splice(rootAt, 2)[1]) : join(here, '..');
const mode = args[0] ?? 'all';
const MiB = 1 << 20;
const total = Number(args[1] ?? 256) * MiB;

if (mode === 'all') {
  const rows = [];
  for (const m of ['inline', 'workers', 'addon']) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), m, String(total / MiB), '--root', root], { encoding: 'utf8' });
    if (r.status !== 0) {
      console.error(r.stderr);
      process.exit(1);
    }
    rows.push(r.stdout.trim());
  }
  console.log(rows.join('\n'));
  process.exit(0);
}

const dist = join(root, 'dist');
if (!existsSync(join(dist, 'native', 'index.js'))) {
  console.error(`compile first: ${dist} has no native/index.js`);
  process.exit(1);
}

// Data: 1 MiB random and 1 MiB text blocks in a 32 MiB pool; blobs are 1 MiB views at varying offsets.
function xorshift(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}
const rnd = xorshift(12345);
const pool = Buffer.allocUnsafe(32 * MiB);
for (let i = 0; i < 16 * MiB; i += 4) pool.writeUInt32LE(rnd(), i);
{
  const words = ['GET', 'POST', '/api/v1/items', '/healthz', '200', '404', 'user=alice', 'user=bob', 'latency_ms=', 'INFO', 'WARN', 'ERROR', 'kube-system', 'restarted container'];
  let off = 16 * MiB;
  let t = 1700000000;
  while (off < 32 * MiB) {
    const line = `2023-11-14T22:13:${String(t % 60).padStart(2, '0')}Z ${words[rnd() % words.length]} ${words[rnd() % words.length]} ${words[rnd() % words.length]} ${rnd() % 100000} ${words[rnd() % words.length]}${rnd() % 1000}\n`;
    off += pool.write(line, off);
    t += rnd() % 3;
  }
}
const blobs = [];
for (let done = 0, i = 0; done < total; i++) {
  const text = i % 2 === 1;
  const base = (text ? 16 * MiB : 0) + ((i * 7919 * 4096) % (15 * MiB));
  blobs.push(pool.subarray(base, base + MiB));
  done += MiB;
  if (i % 16 === 15) blobs.push(pool.subarray(16 * MiB + i * 64, 16 * MiB + i * 64 + 8192));
}
const inputBytes = blobs.reduce((s, b) => s + b.length, 0);

const { native, kernelConcurrency } = await import(pathToFileURL(join(dist, 'native', 'index.js')).href);
const key = { encrypt: Buffer.alloc(32, 1), macK: Buffer.alloc(16, 2), macR: Buffer.alloc(16, 3) };
globalThis.gc?.();
const rssBase = process.memoryUsage().rss;

const t0 = process.hrtime.bigint();
const c0 = process.cpuUsage();
let sealedBytes = 0;
let extra = '';

if (mode === 'addon') {
  if (native.blobKernels !== 'native') {
    console.error(`the addon's blob kernels are not available: ${native.blobKernelsInfo}`);
    process.exit(1);
  }
  const k = native.sealKey(key.encrypt, key.macK, key.macR);
  // A window of in-flight blobs as the blob writer keeps; the loader's limiter admits kernelConcurrency() at once.
  const window = 2 * kernelConcurrency();
  let next = 0;
  const worker = async () => {
    while (next < blobs.length) {
      const b = blobs[next++];
      const r = await native.seal(k, b, { compress: true, level: 3, hash: true });
      sealedBytes += r.sealed.length;
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  extra = `${kernelConcurrency()} pool jobs`;
} else if (mode === 'workers') {
  const { WorkerPool } = await import(pathToFileURL(join(dist, 'core', 'worker-pool.js')).href);
  const n = availableParallelism();
  const wp = new WorkerPool(new URL(pathToFileURL(join(dist, 'repository', 'seal-worker.js')).href), { ...key, level: 3 }, n);
  const { createHash } = await import('node:crypto');
  let next = 0;
  const worker = async () => {
    while (next < blobs.length) {
      const b = blobs[next++];
      // What the archiver + blob writer did: hash on the main thread, copy, transfer to a worker.
      createHash('sha256').update(b).digest('hex');
      const owned = new Uint8Array(b);
      const r = await wp.run({ data: owned, compress: true }, [owned.buffer]);
      sealedBytes += r.sealed.length;
    }
  };
  await Promise.all(Array.from({ length: 2 * n }, worker));
  await wp.close();
  extra = `${n} workers`;
} else if (mode === 'inline') {
  const k = native.sealKey(key.encrypt, key.macK, key.macR);
  for (const b of blobs) sealedBytes += native.sealSync(k, b, { compress: true, level: 3, hash: true }).sealed.length;
  extra = `main thread, ${native.blobKernels}`;
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}

const wall = Number(process.hrtime.bigint() - t0) / 1e9;
const c = process.cpuUsage(c0);
const cpu = (c.user + c.system) / 1e6;
const peak = process.resourceUsage().maxRSS * 1024;
const mb = inputBytes / 1e6;
console.log(
  `${mode.padEnd(8)} ${(mb / wall).toFixed(0).padStart(6)} MB/s wall ${(mb / cpu).toFixed(0).padStart(6)} MB/s cpu  ` +
    `cpu ${cpu.toFixed(2)} s (user ${(c.user / 1e6).toFixed(2)}, sys ${(c.system / 1e6).toFixed(2)})  ` +
    `peak RSS +${((peak - rssBase) / MiB).toFixed(0)} MiB (total ${(peak / MiB).toFixed(0)})  ratio ${(sealedBytes / inputBytes).toFixed(3)}  [${extra}]`,
);
