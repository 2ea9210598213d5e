#!/usr/bin/env node
// Throughput of the native kernels, addon vs TypeScript fallback, on 64 MiB of pseudo-random data
// (and, for the blob kernels, 64 MiB of log-like text), one blob of 1 MiB at a time on this thread.
// Not a test. Needs the compiled loader (npm run build → dist/, or npx tsc -p tsconfig.json → build/).
//   node native/bench.mjs [MiB]
// Prints MB/s per CPU second (robust on a busy machine) and per wall second, best of 5 runs.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const candidates = [join(root, 'dist', 'native', 'index.js'), join(root, 'build', 'src', 'native', 'index.js')];
const loaderPath = candidates.find((p) => existsSync(p));
if (!loaderPath) {
  console.error('compile first: npm run build (or npx tsc -p tsconfig.json)');
  process.exit(1);
}
const { loadAddon, loadFallback, addonLoadError } = await import(pathToFileURL(loaderPath).href);

const MiB = 1 << 20;
const size = Number(process.argv[2] ?? 64) * MiB;
const data = Buffer.allocUnsafe(size);
// xorshift32: fast, deterministic filler.
let x = 2463534242;
for (let i = 0; i < size; i += 4) {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  data.writeUInt32LE(x >>> 0, i);
}
const key = Buffer.alloc(32, 0x5a);
const POLY = 0x2497575ac89183n;

function measure(fn, runs = 5) {
  let bestCpu = Infinity;
  let bestWall = Infinity;
  let result;
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    result = fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e6);
    bestWall = Math.min(bestWall, wall);
  }
  return { cpu: size / 1e6 / Math.max(bestCpu, 1e-6), wall: size / 1e6 / bestWall, result };
}

/** All chunks of data with findCut plus forced cuts; returns the number of chunks. */
function chunkAll(kernel, min, max) {
  let n = 0;
  for (let s = 0; s < size; n++) {
    let len = kernel.findCut(data, s, s, size, min, max);
    if (len < 0) len = Math.min(max, size - s);
    s += len;
  }
  return n;
}

const impls = [['fallback', loadFallback()]];
const addon = loadAddon();
if (addon) impls.push(['native', addon]);
else console.log(`(addon not loaded${addonLoadError() ? `: ${addonLoadError().message}` : ': not built'})`);

// Log-like text for the compression rows.
const text = Buffer.allocUnsafe(size);
{
  const words = ['GET', 'POST', '/api/v1/items', '/healthz', '200', '404', 'user=alice', 'latency_ms=', 'INFO', 'WARN', 'kube-system'];
  let off = 0;
  for (let i = 0; off < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const r = x >>> 0;
    off += text.write(`2023-11-14T22:13:${String(i % 60).padStart(2, '0')}Z ${words[r % 11]} ${words[(r >>> 8) % 11]} ${r % 99991} ${words[(r >>> 16) % 11]}\n`, off);
  }
}
const BLOB = 1 << 20;
const blobKey = [Buffer.alloc(32, 1), Buffer.alloc(16, 2), Buffer.alloc(16, 3)];

/** Runs fn on every 1 MiB blob of buf (synchronously, on this thread). */
function perBlob(buf, fn) {
  let n = 0;
  for (let off = 0; off < buf.length; off += BLOB) n += fn(buf.subarray(off, off + BLOB));
  return n;
}

const rows = [];
for (const [name, api] of impls) {
  const sk = api.sealKey(...blobKey);
  const seal = (buf, o) => perBlob(buf, (b) => api.sealSync(sk, b, { level: 3, ...o }).sealed.length);
  const s1 = measure(() => seal(data, { compress: false }));
  rows.push([`seal: AES-256-CTR + MAC ${name}`, s1, `${s1.result} B`]);
  const s2 = measure(() => seal(data, { compress: false, hash: true }));
  rows.push([`seal: + SHA-256 ${name}`, s2, '']);
  const s3 = measure(() => seal(data, { compress: true, hash: true }));
  rows.push([`seal: random, compress (sample says no) ${name}`, s3, `${s3.result} B`]);
  const s4 = measure(() => seal(text, { compress: true, hash: true }));
  rows.push([`seal: text, zstd -3 + SHA ${name}`, s4, `${s4.result} B`]);
  const sealedRandom = [];
  perBlob(data, (b) => sealedRandom.push(api.sealSync(sk, b, { compress: false, level: 3 })) && 0);
  const sealedText = [];
  perBlob(text, (b) => sealedText.push(api.sealSync(sk, b, { compress: true, level: 3 })) && 0);
  const open = (list) => () => list.reduce((n, s) => n + api.openSync(sk, s.sealed, { uncompressedLength: s.uncompressedLength, maxSize: 1 << 26 }).length, 0);
  const o1 = measure(open(sealedRandom));
  rows.push([`open: MAC + AES ${name}`, o1, '']);
  const o2 = measure(open(sealedText));
  rows.push([`open: text, + zstd -d ${name}`, o2, '']);
  const h = measure(() => perBlob(data, (b) => (api.sealSync(sk, b.subarray(0, 0), { compress: false, level: 3, hash: true }), 0)));
  rows.push([`(per-call overhead, empty blobs) ${name}`, h, '']);
  const k = api.rabin(POLY);
  const p = measure(() => api.poly1305(key, data).toString('hex'));
  rows.push([`poly1305 ${name}`, p, p.result.slice(0, 8)]);
  const r1 = measure(() => chunkAll(k, 64, 1 << 30));
  rows.push([`rabin scan (every byte hashed) ${name}`, r1, `${r1.result} cuts`]);
  const r2 = measure(() => chunkAll(k, 524288, 8388608));
  rows.push([`rabin chunking (restic 512K/8M) ${name}`, r2, `${r2.result} chunks`]);
}
// FastCDC: the addon's kernel (through the chunker module, which finds its gear table) against
// fastcdc-wasm, the fallback, over the whole buffer at cairn's default 512K/1M/8M.
{
  const chunkerPath = join(dirname(loaderPath), '..', 'chunker', 'fastcdc.js');
  const { fastcdcBoundaries, fastcdcBoundariesWasm, fastcdcImplementation } = await import(pathToFileURL(chunkerPath).href);
  const cdc = [['wasm', fastcdcBoundariesWasm]];
  if (fastcdcImplementation() === 'addon') cdc.push(['native', fastcdcBoundaries]);
  for (const [name, f] of cdc) {
    const m = measure(() => f(data, 524288, 1048576, 8388608).length - 1);
    rows.push([`fastcdc chunking (512K/1M/8M) ${name}`, m, `${m.result} chunks`]);
  }
}
console.log(`${size / MiB} MiB, node ${process.version}, ${process.arch}`);
for (const [label, m, note] of rows) {
  console.log(`${label.padEnd(42)} ${m.cpu.toFixed(0).padStart(7)} MB/s cpu ${m.wall.toFixed(0).padStart(7)} MB/s wall   ${note}`);
}
