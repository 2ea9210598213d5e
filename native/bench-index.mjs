#!/usr/bin/env node
// Memory per blob and load time of the master index. Not a test.
//
//   node --expose-gc native/bench-index.mjs [millions of blobs] [blobs per pack] [--module PATH]
//
// Adds synthetic packs (random IDs, realistic offsets/lengths, 3/4 of the blobs compressed, one in
// ten a tree) through addPack(), as loading index files does, timing only the addPack calls, then
// one query (which compacts what is still pending). Reports heap + external + array-buffer bytes
// per blob after a full GC, before and after, and the query speed. --module loads another
// master-index.js (e.g. an older build) for comparison.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const at = args.indexOf('--module');
const modPath = at >= 0 ? resolve(args.splice(at, 2)[1]) : join(here, '..', 'dist', 'repository', 'master-index.js');
const blobs = Math.round(Number(args[0] ?? 1) * 1e6);
const perPack = Number(args[1] ?? 16);
if (typeof globalThis.gc !== 'function') {
  console.error('run with --expose-gc');
  process.exit(2);
}
const { MasterIndex } = await import(pathToFileURL(modPath).href);

let x = 0x9e3779b9;
function rnd() {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}
// Flat strings, as JSON.parse produces them (a concatenated string would be flattened on first use).
const idBuf = Buffer.alloc(32);
function hexId() {
  for (let i = 0; i < 8; i++) idBuf.writeUInt32BE(rnd(), i * 4);
  return idBuf.toString('hex');
}

function mem() {
  globalThis.gc();
  globalThis.gc();
  const m = process.memoryUsage();
  return { total: m.heapUsed + m.external, rss: m.rss };
}

// Every 16th blob is remembered for the queries, in a buffer allocated before the measurement.
const SAMPLE_MAX = 100000;
const sampleIds = Buffer.alloc(SAMPLE_MAX * 32);
const sampleTypes = new Uint8Array(SAMPLE_MAX);
let samples = 0;
const before = mem();
const idx = new MasterIndex();
let addNs = 0n;
let addCpu = 0;
let left = blobs;
// Packs are generated in batches, then added: only the addPack calls are timed.
while (left > 0) {
  const batch = [];
  for (let k = 0; k < 4096 && left > 0; k++) {
    const n = Math.min(left, Math.max(1, Math.round(perPack * (0.5 + (rnd() % 1000) / 1000))));
    left -= n;
    const list = [];
    let off = 0;
    for (let i = 0; i < n; i++) {
      const length = 200 + (rnd() % (2 << 20));
      const b = { id: hexId(), type: rnd() % 10 === 0 ? 'tree' : 'data', offset: off, length };
      if (rnd() % 4 !== 0) b.uncompressedLength = length + (rnd() % (1 << 20));
      off += length;
      list.push(b);
      if (samples < SAMPLE_MAX && rnd() % 16 === 0) {
        sampleIds.write(b.id, samples * 32, 'hex');
        sampleTypes[samples++] = b.type === 'tree' ? 1 : 0;
      }
    }
    batch.push([hexId(), list]);
  }
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (const [packId, list] of batch) idx.addPack(packId, list);
  const c = process.cpuUsage(c0);
  addCpu += c.user + c.system;
  addNs += process.hrtime.bigint() - t0;
}
const t1 = process.hrtime.bigint();
const c1 = process.cpuUsage();
idx.has('data', hexId()); // compacts what is pending
const firstQueryMs = Number(process.hrtime.bigint() - t1) / 1e6;
const fc = process.cpuUsage(c1);
const firstQueryCpuMs = (fc.user + fc.system) / 1e3;
const after = mem();

const sample = Array.from({ length: samples }, (_, i) => ({ id: sampleIds.toString('hex', i * 32, i * 32 + 32), type: sampleTypes[i] ? 'tree' : 'data' }));
const t2 = process.hrtime.bigint();
let hits = 0;
for (const b of sample) if (idx.has(b.type, b.id)) hits++;
for (let i = 0; i < sample.length; i++) if (idx.has('data', hexId())) hits = -1e9;
const queryNs = Number(process.hrtime.bigint() - t2) / (2 * sample.length);
if (hits !== sample.length) throw new Error(`lookup mismatch: ${hits} of ${sample.length}`);

const perBlob = (after.total - before.total) / idx.size;
console.log(
  `${(idx.size / 1e6).toFixed(1)}M blobs in ${idx.packCount()} packs (${(idx.size / idx.packCount()).toFixed(1)}/pack): ` +
    `${perBlob.toFixed(1)} bytes/blob (heap+external), RSS +${((after.rss - before.rss) / 2 ** 20).toFixed(0)} MiB; ` +
    `addPack total ${(Number(addNs) / 1e9).toFixed(2)} s wall, ${(addCpu / 1e6).toFixed(2)} s CPU (${((addCpu * 1000) / idx.size).toFixed(0)} ns/blob), ` +
    `first query (final compaction) ${firstQueryMs.toFixed(0)} ms wall, ${firstQueryCpuMs.toFixed(0)} ms CPU; has() ${queryNs.toFixed(0)} ns [${modPath}]`,
);
