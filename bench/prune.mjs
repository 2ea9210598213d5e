#!/usr/bin/env node
// prune: cairn vs restic on identical repositories.
//
//   node bench/prune.mjs [--snapshots 20] [--scale 1] [--small-files N] [--runs 3] [--work DIR] [--keep-work] [--read-data] [--wait-quiet 60]
//
// 1. A seeded dataset (incompressible files, compressible logs, small files) is backed up
//    --snapshots times by restic 0.14, changing ~10% of it before each backup (rewrites, appends,
//    new and deleted files), so old packs end up partly used.
// 2. `restic forget --keep-last N/2` forgets half of the snapshots.
// 3. Per run, the repository (and restic's cache, warm from the backups) is copied twice; `restic
//    prune` runs on one copy, `cairn prune` on the other, both with default options, both timed
//    with GNU time (`%e` wall seconds, `%M` peak RSS in KiB). Runs alternate; medians reported.
// 4. Untimed checks: `restic check` (with --read-data: `restic check --read-data`) must pass on
//    cairn's result; both results must keep the same snapshots.
//
// Plain Node ESM, no dependencies. Needs restic and /usr/bin/time. Build first: npm run build.
import { spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
const PASSWORD = 'cairn-prune-bench';
const TIME = '/usr/bin/time';

function parseArgs(argv) {
  const o = { snapshots: 20, scale: 1, smallFiles: undefined, waitQuiet: 60, runs: 3, work: path.join(ROOT, 'bench', 'out', 'prune-work'), keepWork: false, readData: false, seed: 7 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i];
    switch (a) {
      case '--snapshots': o.snapshots = Math.max(2, Number(val())); break;
      case '--scale': o.scale = Number(val()); break;
      case '--small-files': o.smallFiles = Number(val()); break;
      case '--wait-quiet': o.waitQuiet = Number(val()); break;
      case '--runs': o.runs = Math.max(1, Number(val())); break;
      case '--seed': o.seed = Number(val()); break;
      case '--work': o.work = path.resolve(val()); break;
      case '--keep-work': o.keepWork = true; break;
      case '--read-data': o.readData = true; break;
      case '-h': case '--help':
        console.log('usage: node bench/prune.mjs [--snapshots 20] [--scale 1] [--small-files N] [--runs 3] [--seed 7] [--work DIR] [--keep-work] [--read-data] [--wait-quiet SEC]');
        process.exit(0);
        break;
      default: console.error(`unknown option ${a}`); process.exit(2);
    }
  }
  return o;
}

function need() {
  if (spawnSync('restic', ['version']).status !== 0) { console.error('bench: restic not found on PATH (apt-get install restic)'); process.exit(1); }
  if (!fs.existsSync(TIME)) { console.error('bench: GNU time not found at /usr/bin/time (apt-get install time)'); process.exit(1); }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli.js'))) { console.error('bench: dist/cli.js missing, run npm run build'); process.exit(1); }
}

/** xorshift PRNG so the dataset and its changes are reproducible. */
function prng(seed) {
  let x = seed >>> 0 || 1;
  const next = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 4294967296; };
  return { float: next, int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), chance: (p) => next() < p };
}

function keystream(seedText) {
  const key = createHash('sha256').update(seedText).digest();
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => c.update(Buffer.alloc(n));
}

const WORDS = ['GET', 'POST', '/api/v1/orders', '/healthz', 'status=200', 'status=404', 'latency_ms=', 'user=', 'pod=', 'node-', 'volume', 'mounted', 'error', 'retry', 'INFO', 'WARN', 'DEBUG'];
function text(r, n) {
  const parts = [];
  let len = 0;
  while (len < n) {
    const line = `2026-11-22T${String(r.int(0, 23)).padStart(2, '0')}:${String(r.int(0, 59)).padStart(2, '0')}:00Z ${WORDS[r.int(0, WORDS.length - 1)]} ${WORDS[r.int(0, WORDS.length - 1)]}${r.int(0, 99999)} ${WORDS[r.int(0, WORDS.length - 1)]}\n`;
    parts.push(line);
    len += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/** Dataset: incompressible files (1–24 MiB), logs (2–12 MiB), many small files. ≈ 300 MiB at scale 1. */
function makeDataset(dir, o) {
  const r = prng(o.seed);
  const ks = keystream(`prune-bench:${o.seed}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const files = [];
  const put = (rel, data) => {
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), data);
    files.push(rel);
  };
  const big = Math.max(1, Math.round(12 * o.scale));
  for (let i = 0; i < big; i++) put(`bin/b${i}.bin`, ks(r.int(1, 24) * MiB));
  const logs = Math.max(1, Math.round(10 * o.scale));
  for (let i = 0; i < logs; i++) put(`logs/l${i}.log`, text(r, r.int(2, 12) * MiB));
  const small = o.smallFiles ?? Math.max(10, Math.round(3000 * o.scale));
  for (let i = 0; i < small; i++) put(`small/d${i % 50}/f${i}`, r.chance(0.5) ? text(r, r.int(200, 30000)) : ks(r.int(200, 30000)));
  return { files, r, ks };
}

/** ~10% change per round: rewrite some files, append to logs, add and delete some. */
function mutate(dir, ds, round) {
  const { r, ks } = ds;
  for (const rel of ds.files) {
    const p = path.join(dir, rel);
    if (!fs.existsSync(p)) continue;
    if (rel.startsWith('bin/') && r.chance(0.08)) fs.writeFileSync(p, ks(fs.statSync(p).size));
    else if (rel.startsWith('logs/') && r.chance(0.3)) fs.appendFileSync(p, text(r, r.int(100, 800) * 1024));
    else if (rel.startsWith('small/') && r.chance(0.05)) fs.rmSync(p);
  }
  const added = Math.max(1, Math.round(ds.files.length * 0.02));
  for (let i = 0; i < added; i++) {
    const rel = `new/r${round}/f${i}`;
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), r.chance(0.5) ? text(r, r.int(1000, 200000)) : ks(r.int(1000, 400000)));
    ds.files.push(rel);
  }
  if (round > 3) fs.rmSync(path.join(dir, `new/r${round - 3}`), { recursive: true, force: true });
}

function run(cmd, args, env, opts = {}) {
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 256 * MiB, cwd: opts.cwd });
  if (r.status !== 0 && !opts.allowFail) {
    console.error(`bench: ${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    process.exit(1);
  }
  return r;
}

/** Runs a command under GNU time; returns wall seconds and peak RSS (KiB). */
function timed(cmd, args, env) {
  const r = run(TIME, ['-f', '%e %M', cmd, ...args], env);
  const last = r.stderr.trim().split('\n').pop();
  const [secs, kib] = last.split(' ').map(Number);
  return { secs, kib, stdout: r.stdout };
}

/** Fraction of CPU time busy over the last `ms` (all cores, from /proc/stat). */
function busyFraction(ms) {
  const read = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] || 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  spawnSync('sleep', [String(ms / 1000)]);
  const b = read();
  return b.total === a.total ? 0 : 1 - (b.idle - a.idle) / (b.total - a.total);
}

/** Waits (up to seconds) for a second in which the machine is mostly idle; other work on a shared machine skews timings. */
function waitQuiet(seconds) {
  const until = Date.now() + seconds * 1000;
  let last = 1;
  while (Date.now() < until) {
    last = busyFraction(1000);
    if (last < 0.15) return { quiet: true, busy: last };
  }
  return { quiet: false, busy: last };
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

function snapshotIds(env) {
  return JSON.parse(run('restic', ['snapshots', '--json', '--no-lock'], env).stdout).map((s) => s.id).sort();
}

function dirSize(p) {
  let n = 0;
  for (const e of fs.readdirSync(p, { withFileTypes: true })) n += e.isDirectory() ? dirSize(path.join(p, e.name)) : fs.statSync(path.join(p, e.name)).size;
  return n;
}

function main() {
  const o = parseArgs(process.argv.slice(2));
  need();
  fs.rmSync(o.work, { recursive: true, force: true });
  fs.mkdirSync(o.work, { recursive: true });
  const data = path.join(o.work, 'data');
  const base = path.join(o.work, 'base');
  const cache = path.join(o.work, 'base-cache');
  const env = { RESTIC_PASSWORD: PASSWORD, RESTIC_REPOSITORY: base, RESTIC_CACHE_DIR: cache };

  console.log(`prune bench: ${o.snapshots} snapshots, scale ${o.scale}, ${o.runs} runs, work ${o.work}`);
  const t0 = Date.now();
  const ds = makeDataset(data, o);
  run('restic', ['init', '--repository-version', '2'], env);
  for (let i = 0; i < o.snapshots; i++) {
    if (i > 0) mutate(data, ds, i);
    run('restic', ['backup', '.', '--host', 'bench', '-q'], env, { cwd: data });
  }
  run('restic', ['forget', '--keep-last', String(Math.ceil(o.snapshots / 2)), '-q'], env);
  const kept = snapshotIds(env);
  console.log(`setup: dataset ${(dirSize(data) / MiB).toFixed(0)} MiB, repository ${(dirSize(base) / MiB).toFixed(0)} MiB, ${kept.length} snapshots kept (${((Date.now() - t0) / 1000).toFixed(0)} s)`);

  const results = { restic: [], cairn: [] };
  let contended = 0;
  for (let run_ = 0; run_ < o.runs; run_++) {
    for (const tool of run_ % 2 === 0 ? ['restic', 'cairn'] : ['cairn', 'restic']) {
      const repo = path.join(o.work, `${tool}-repo`);
      const tcache = path.join(o.work, `${tool}-cache`);
      fs.rmSync(repo, { recursive: true, force: true });
      fs.rmSync(tcache, { recursive: true, force: true });
      fs.cpSync(base, repo, { recursive: true });
      fs.cpSync(cache, tcache, { recursive: true });
      const tenv = { ...env, RESTIC_REPOSITORY: repo, RESTIC_CACHE_DIR: tcache };
      const before = dirSize(repo);
      const q = o.waitQuiet > 0 ? waitQuiet(o.waitQuiet) : { quiet: true, busy: 0 };
      if (!q.quiet) contended++;
      const m = tool === 'restic'
        ? timed('restic', ['prune'], tenv)
        : timed(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'prune'], tenv);
      const after = dirSize(repo);
      results[tool].push({ ...m, before, after });
      console.log(`run ${run_ + 1} ${tool.padEnd(6)} ${m.secs.toFixed(2)} s, peak RSS ${(m.kib / 1024).toFixed(1)} MiB, repository ${(before / MiB).toFixed(1)} → ${(after / MiB).toFixed(1)} MiB${q.quiet ? '' : `  (machine busy before start: ${(q.busy * 100).toFixed(0)} %)`}`);
      if (tool === 'cairn') {
        // untimed: restic accepts the result and the same snapshots are there
        const c = run('restic', ['--no-cache', 'check', '--no-lock', ...(o.readData ? ['--read-data'] : [])], tenv, { allowFail: true });
        if (c.status !== 0) { console.error(`bench: restic check failed after cairn prune:\n${c.stdout}\n${c.stderr}`); process.exit(1); }
        const ids = snapshotIds(tenv);
        if (JSON.stringify(ids) !== JSON.stringify(kept)) { console.error('bench: snapshots differ after cairn prune'); process.exit(1); }
      }
    }
  }
  const r = { secs: median(results.restic.map((x) => x.secs)), kib: median(results.restic.map((x) => x.kib)), after: median(results.restic.map((x) => x.after)) };
  const c = { secs: median(results.cairn.map((x) => x.secs)), kib: median(results.cairn.map((x) => x.kib)), after: median(results.cairn.map((x) => x.after)) };
  console.log('');
  console.log(`median of ${o.runs}     wall s   peak RSS MiB   repository after MiB`);
  console.log(`restic           ${r.secs.toFixed(2).padStart(6)}   ${(r.kib / 1024).toFixed(1).padStart(12)}   ${(r.after / MiB).toFixed(1).padStart(20)}`);
  console.log(`cairn            ${c.secs.toFixed(2).padStart(6)}   ${(c.kib / 1024).toFixed(1).padStart(12)}   ${(c.after / MiB).toFixed(1).padStart(20)}`);
  const tr = c.secs / r.secs;
  const mr = c.kib / r.kib;
  console.log(`ratio cairn/restic: time ${tr.toFixed(2)} (target ≤ 0.50), memory ${mr.toFixed(2)} (target ≤ 1.00)`);
  if (contended) console.log(`note: ${contended} of ${o.runs * 2} timed runs started without a quiet second (other work on the machine); ratios are noisy`);
  const out = { when: new Date().toISOString(), options: o, restic: results.restic, cairn: results.cairn, ratio: { time: tr, memory: mr }, contended };
  fs.writeFileSync(path.join(ROOT, 'bench', 'out', 'prune-latest.json'), JSON.stringify(out, null, 2));
  if (!o.keepWork) fs.rmSync(o.work, { recursive: true, force: true });
}

main();
