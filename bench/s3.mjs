#!/usr/bin/env node
// cairn vs restic on S3 (a throw-away Ceph RGW on loopback), same dataset, same run.
//
//   npm run build && node bench/s3.mjs [--runs 3] [--scale 0.5] [--seed 1] [--work DIR] [--keep-data] [--wait-quiet 30]
//
// Per tool and run, in a fresh Ceph cluster (memstore, so every run starts from the same empty
// state): init (untimed), initial backup (timed), restore latest (timed), restore verified byte
// for byte against the dataset (untimed). Runs are interleaved (restic 1, cairn 1, restic 2, …)
// and the median is reported with the cairn/restic ratio; the target is ≤ 0.5 both ways.
// restic runs as shipped: S3 backend defaults, its local cache on (in the work folder).
// Needs: restic, radosgw + ceph-mon + ceph-osd, curl; plain Node, no dependencies.
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH, '..');
const CEPH = path.join(ROOT, 'test', 'support', 'ceph-s3.sh');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const MiB = 1 << 20;

function args(argv) {
  const o = { runs: 3, scale: 0.5, seed: 1, work: path.join(BENCH, 'out', 's3-work'), out: path.join(BENCH, 'out'), keepData: false, waitQuiet: 30 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--runs') o.runs = Number(v());
    else if (a === '--scale') o.scale = Number(v());
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--work') o.work = path.resolve(v());
    else if (a === '--keep-data') o.keepData = true;
    else if (a === '--wait-quiet') o.waitQuiet = Number(v());
    else if (a === '--help' || a === '-h') {
      console.log('usage: node bench/s3.mjs [--runs N] [--scale S] [--seed N] [--work DIR] [--keep-data] [--wait-quiet SEC]');
      process.exit(0);
    } else {
      console.error(`unknown option ${a}`);
      process.exit(2);
    }
  }
  if (!(o.runs >= 1) || !(o.scale > 0)) {
    console.error('--runs must be ≥ 1 and --scale > 0');
    process.exit(2);
  }
  return o;
}

function need(cmd) {
  if (spawnSync('sh', ['-c', `command -v ${cmd}`]).status !== 0) {
    console.error(`bench/s3: ${cmd} is not installed (apt-get install -y --no-install-recommends restic radosgw ceph-mon ceph-osd curl)`);
    process.exit(2);
  }
}

// ---------------------------------------------------------------------------------------------
// dataset: one big incompressible file, compressible logs, many small files (seeded)

function keystream(seed, label) {
  const key = createHash('sha256').update(`${seed}:${label}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
}

function rng(seed) {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const WORDS = ['GET', 'POST', '/api/v1/orders', '/healthz', 'status=200', 'status=404', 'latency_ms=', 'user=', 'INFO', 'WARN', 'ERROR', 'kubelet', 'pod', 'volume', 'mounted', 'request', 'completed'];

function logText(r, bytes) {
  const parts = [];
  let n = 0;
  let i = 0;
  while (n < bytes) {
    const line = `2026-11-22T10:${String(i % 60).padStart(2, '0')}:${String((i * 7) % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z ${WORDS[Math.floor(r() * WORDS.length)]} ${WORDS[Math.floor(r() * WORDS.length)]}${Math.floor(r() * 100000)} ${WORDS[Math.floor(r() * WORDS.length)]} id=${Math.floor(r() * 1e9).toString(16)}\n`;
    parts.push(line);
    n += line.length;
    i++;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

function generate(dir, o) {
  const spec = { seed: o.seed, scale: o.scale, big: Math.round(512 * MiB * o.scale), logs: Math.round(32 * MiB * o.scale), logFiles: 8, small: Math.round(20000 * o.scale) };
  const manifest = path.join(dir, '..', 'manifest.json');
  if (fs.existsSync(manifest) && JSON.stringify(JSON.parse(fs.readFileSync(manifest, 'utf8')).spec) === JSON.stringify(spec)) return JSON.parse(fs.readFileSync(manifest, 'utf8'));
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  process.stderr.write(`generating dataset (scale ${o.scale}) in ${dir} … `);
  const ks = keystream(o.seed, 'big');
  const fd = fs.openSync(path.join(dir, 'disk.img'), 'w');
  const zero = Buffer.alloc(4 * MiB);
  for (let left = spec.big; left > 0; left -= zero.length) fs.writeSync(fd, ks.update(zero.subarray(0, Math.min(zero.length, left))));
  fs.closeSync(fd);
  const r = rng(o.seed);
  fs.mkdirSync(path.join(dir, 'logs'));
  for (let i = 0; i < spec.logFiles; i++) fs.writeFileSync(path.join(dir, 'logs', `app-${i}.log`), logText(r, spec.logs));
  for (let i = 0; i < spec.small; i++) {
    const d = path.join(dir, 'small', `d${i % 20}`, `e${Math.floor(i / 20) % 50}`);
    if (i < 1000) fs.mkdirSync(d, { recursive: true });
    const size = 512 + Math.floor(r() * 16 * 1024);
    const data = r() < 0.6 ? logText(r, size) : keystream(o.seed, `small${i}`).update(Buffer.alloc(size));
    fs.writeFileSync(path.join(d, `f${i}.dat`), data);
  }
  const files = digestTree(dir);
  const total = Object.values(files).reduce((a, f) => a + f.size, 0);
  const m = { spec, files: Object.keys(files).length, bytes: total, digest: createHash('sha256').update(JSON.stringify(files)).digest('hex') };
  fs.writeFileSync(manifest, JSON.stringify(m));
  process.stderr.write(`${m.files} files, ${(total / MiB).toFixed(0)} MiB\n`);
  return m;
}

function digestTree(root) {
  const out = {};
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      const rp = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, rp);
      else if (e.isFile()) {
        const data = fs.readFileSync(p);
        out[rp] = { size: data.length, sha: createHash('sha256').update(data).digest('hex') };
      }
    }
  };
  walk(root, '');
  return out;
}

// ---------------------------------------------------------------------------------------------
// servers and commands

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd, argv, env = {}, { quiet = true } = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (!quiet) process.stderr.write(err);
      resolve({ code, s, out, err });
    });
  });
}

async function startCeph(dir) {
  const port = await freePort();
  const mon = await freePort();
  const r = await run('bash', [CEPH, 'start', dir, String(port), String(mon)]);
  if (r.code !== 0) throw new Error(`Ceph did not start:\n${r.out}${r.err}`);
  const c = await run('curl', ['-sf', '--aws-sigv4', 'aws:amz:us-east-1:s3', '-u', 'testaccess:testsecret', '-H', 'x-amz-content-sha256:UNSIGNED-PAYLOAD', '-X', 'PUT', `http://127.0.0.1:${port}/bench`]);
  if (c.code !== 0) throw new Error(`creating the bucket failed: ${c.err}`);
  return { port, stop: () => run('bash', [CEPH, 'stop', dir]) };
}

/** Busy fraction of all CPUs over `ms`, from /proc/stat. */
async function busyFraction(ms) {
  const read = () => {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const b = read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/** The machine is shared: wait (up to maxS) for a one-second window with < 15 % CPU use. */
async function waitQuiet(maxS) {
  const until = Date.now() + maxS * 1000;
  let last = 1;
  while (Date.now() < until) {
    last = await busyFraction(1000);
    if (last < 0.15) return { quiet: true, busy: last };
  }
  return { quiet: false, busy: last };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main() {
  const o = args(process.argv.slice(2));
  for (const c of ['restic', 'radosgw', 'ceph-mon', 'ceph-osd', 'curl']) need(c);
  if (!fs.existsSync(CLI)) {
    console.error('bench/s3: dist/cli.js missing, run `npm run build` first');
    process.exit(2);
  }
  fs.mkdirSync(o.work, { recursive: true });
  const data = path.join(o.work, 'data', 'src');
  const manifest = generate(data, o);
  const expected = JSON.parse(fs.readFileSync(path.join(o.work, 'data', 'manifest.json'), 'utf8')).digest;
  // page cache warmed for both tools alike, right before each backup: this project's VMs page out
  // cache that was idle for 30 s (see measure() in lib.mjs), and the waits for quiet are that long
  const warm = () => spawnSync('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 -r cat > /dev/null', 'sh', data]);
  const samples = { restic: { backup: [], restore: [] }, cairn: { backup: [], restore: [] } };
  const env = { AWS_ACCESS_KEY_ID: 'testaccess', AWS_SECRET_ACCESS_KEY: 'testsecret', RESTIC_PASSWORD: 'bench-password' };
  const failures = [];
  let contended = 0;
  for (let runNo = 1; runNo <= o.runs; runNo++) {
    for (const tool of ['restic', 'cairn']) {
      const dir = path.join(o.work, `ceph-${tool}-${runNo}`);
      const ceph = await startCeph(dir);
      try {
        const repo = `s3:http://127.0.0.1:${ceph.port}/bench/${tool}`;
        const cache = path.join(o.work, `cache-${tool}-${runNo}`);
        fs.rmSync(cache, { recursive: true, force: true });
        const cmd = tool === 'restic' ? ['restic', ['--cache-dir', cache, '-r', repo]] : [process.execPath, [CLI, '-r', repo]];
        const exec = (a) => run(cmd[0], [...cmd[1], ...a], env);
        const init = await exec(['init', '--repository-version', '2']);
        if (init.code !== 0) throw new Error(`${tool} init failed: ${init.err}`);
        spawnSync('sync');
        const q1 = await waitQuiet(o.waitQuiet);
        warm();
        const b = await exec(['backup', data]);
        if (b.code !== 0) throw new Error(`${tool} backup failed: ${b.err}`);
        const target = path.join(o.work, `restore-${tool}-${runNo}`);
        fs.rmSync(target, { recursive: true, force: true });
        spawnSync('sync');
        const q2 = await waitQuiet(o.waitQuiet);
        const r = await exec(['restore', 'latest', '--target', target]);
        if (r.code !== 0) throw new Error(`${tool} restore failed: ${r.err}`);
        const got = createHash('sha256').update(JSON.stringify(digestTree(path.join(target, data)))).digest('hex');
        if (got !== expected) failures.push(`${tool} run ${runNo}: restored data differs from the dataset`);
        fs.rmSync(target, { recursive: true, force: true });
        fs.rmSync(cache, { recursive: true, force: true });
        samples[tool].backup.push(b.s);
        samples[tool].restore.push(r.s);
        if (!q1.quiet || !q2.quiet) contended++;
        process.stderr.write(`run ${runNo} ${tool.padEnd(6)} backup ${b.s.toFixed(2)} s  restore ${r.s.toFixed(2)} s${q1.quiet && q2.quiet ? '' : `  (machine busy before start: ${(Math.max(q1.busy, q2.busy) * 100).toFixed(0)} %)`}\n`);
      } finally {
        await ceph.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const med = (t, op) => median(samples[t][op]);
  const rows = ['backup', 'restore'].map((op) => ({ op, restic: med('restic', op), cairn: med('cairn', op), ratio: med('cairn', op) / med('restic', op) }));
  const mibs = manifest.bytes / MiB;
  console.log(`\nS3 (Ceph RGW 16.2, memstore, loopback) — dataset ${manifest.files} files, ${mibs.toFixed(0)} MiB; median of ${o.runs} run(s); ${os.cpus().length} CPUs`);
  console.log('operation   restic s   cairn s   cairn/restic   target ≤ 0.5');
  for (const r of rows) console.log(`${r.op.padEnd(10)} ${r.restic.toFixed(2).padStart(9)} ${r.cairn.toFixed(2).padStart(9)} ${r.ratio.toFixed(2).padStart(14)}   ${r.ratio <= 0.5 ? 'PASS' : 'FAIL'}`);
  for (const f of failures) console.log(`VERIFY FAILED: ${f}`);
  if (contended) console.log(`note: ${contended} of ${o.runs * 2} tool runs started without a quiet window (other work on the machine); ratios are noisy`);
  fs.mkdirSync(o.out, { recursive: true });
  const result = { date: new Date().toISOString(), dataset: manifest, runs: o.runs, samples, rows, failures, contended, node: process.version, restic: spawnSync('restic', ['version']).stdout.toString().trim(), cpus: os.cpus().length };
  fs.writeFileSync(path.join(o.out, 's3-latest.json'), JSON.stringify(result, null, 2));
  if (!o.keepData) fs.rmSync(path.join(o.work), { recursive: true, force: true });
  process.exitCode = failures.length ? 1 : 0;
}

await main();
