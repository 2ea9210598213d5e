#!/usr/bin/env node
// cairn vs restic, side by side, on one seeded dataset.
//
//   node bench/run.mjs [--runs 3] [--scale 1] [--data DIR] [--work DIR] [--out DIR]
//                      [--variants] [--no-verify] [--timeout SEC] [--profile | --profile-only]
//
// Plain Node ESM, no dependencies. See bench/README.md for what is measured and the caveats.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(BENCH_DIR, '..');
const MiB = 1024 * 1024;
const TIME_BIN = '/usr/bin/time';
const PASSWORD = 'cairn-bench-password';

// ---------------------------------------------------------------------------------------------
// options

function usage(code) {
  const text = `usage: node bench/run.mjs [options]

  --runs N         timed runs per tool, interleaved; the median is reported (default 3, >= 3 for the targets)
  --scale S        shrink or grow the dataset proportionally, e.g. 0.25 for a quick run (default 1)
  --seed S         dataset seed (default 1)
  --data DIR       dataset cache (default bench/out/data); regenerated only if missing or different
  --work DIR       scratch space for repositories and restores (default bench/out/work)
  --out DIR        results directory (default bench/out)
  --variants       also run cairn with --chunker rabin
  --keep-going     when a command fails, report it, skip the rest of that tool's run and go on
                   with the other runs (the script still exits 1 at the end); default: stop at once
  --wait-quiet SEC before each timed command, wait up to SEC seconds for the machine to be idle
                   (< 10 % CPU used over one second); 0 disables (default 30)
  --report FILE    only recompute medians, ratios and targets from a results JSON, print them and
                   write the Markdown next to it (FILE with .md); runs nothing
  --no-verify      skip the (untimed) check that each restore matches the dataset byte for byte
  --timeout SEC    kill and fail a command that runs longer than this (default 3600)
  --profile        after the benchmark, CPU-profile one cairn initial backup (bench/out/prof)
  --profile-only   only do the profiling run
  --restic PATH    restic binary (default: restic from PATH)
  --cairn PATH     cairn CLI script to run as is (default: a frozen copy of this checkout's dist/cli.js)
  --no-freeze      run dist/cli.js of this checkout directly instead of a frozen copy
`;
  (code ? process.stderr : process.stdout).write(text);
  process.exit(code);
}

function parseArgs(argv) {
  const o = {
    runs: 3, scale: 1, seed: 1,
    data: path.join(BENCH_DIR, 'out', 'data'),
    work: path.join(BENCH_DIR, 'out', 'work'),
    out: path.join(BENCH_DIR, 'out'),
    variants: false, verify: true, timeout: 3600, profile: false, profileOnly: false, keepGoing: false, waitQuiet: 30,
    restic: 'restic', cairn: null, freeze: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) { console.error(`bench: ${flag} needs a value`); usage(2); }
      return v;
    };
    const num = () => {
      const v = Number(val());
      if (!Number.isFinite(v) || v <= 0) { console.error(`bench: ${flag} needs a positive number`); usage(2); }
      return v;
    };
    switch (flag) {
      case '--runs': o.runs = Math.floor(num()); break;
      case '--scale': o.scale = num(); break;
      case '--seed': o.seed = Math.floor(num()); break;
      case '--data': o.data = path.resolve(val()); break;
      case '--work': o.work = path.resolve(val()); break;
      case '--out': o.out = path.resolve(val()); break;
      case '--variants': o.variants = true; break;
      case '--no-verify': o.verify = false; break;
      case '--keep-going': o.keepGoing = true; break;
      case '--report': o.report = path.resolve(val()); break;
      case '--wait-quiet': o.waitQuiet = Number(val()); if (!(o.waitQuiet >= 0)) usage(2); break;
      case '--timeout': o.timeout = num(); break;
      case '--profile': o.profile = true; break;
      case '--profile-only': o.profile = true; o.profileOnly = true; break;
      case '--restic': o.restic = val(); break;
      case '--cairn': o.cairn = path.resolve(val()); o.freeze = false; break;
      case '--no-freeze': o.freeze = false; break;
      case '-h': case '--help': usage(0); break;
      default: console.error(`bench: unknown option ${a}`); usage(2);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// seeded dataset

/** sfc32: small, fast, good enough for picking log words and sizes; fully determined by the seed. */
function prng(seedText) {
  const h = createHash('sha256').update(seedText).digest();
  let a = h.readUInt32LE(0), b = h.readUInt32LE(4), c = h.readUInt32LE(8), d = h.readUInt32LE(12);
  const next = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 16; i++) next();
  const r = {
    u32: next,
    float: () => next() / 4294967296,
    int: (lo, hi) => lo + Math.floor((next() / 4294967296) * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor((next() / 4294967296) * arr.length)],
    hex: (n) => { let s = ''; while (s.length < n) s += next().toString(16).padStart(8, '0'); return s.slice(0, n); },
    chance: (p) => next() / 4294967296 < p,
  };
  return r;
}

/** Incompressible bytes: AES-256-CTR keystream under a key derived from the seed (deterministic, fast). */
function keystream(seedText) {
  const key = createHash('sha256').update(`keystream:${seedText}`).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

const SERVICES = ['orders', 'payments', 'inventory', 'auth', 'search', 'gateway', 'billing', 'shipping', 'notifications', 'catalog'];
const PATHS = ['/api/v1/users', '/api/v1/orders', '/api/v2/cart', '/healthz', '/metrics', '/api/v1/products', '/static/app.js', '/login', '/api/v1/invoices', '/api/v2/search'];
const METHODS = ['GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH'];
const STATUSES = [200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 404, 500, 502, 503];
const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15',
  'curl/8.4.0', 'kube-probe/1.28', 'Go-http-client/1.1', 'python-requests/2.31.0', 'Prometheus/2.48.0',
];
const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];
const MESSAGES = [
  'request completed', 'cache miss, loading from database', 'order created', 'payment authorized',
  'retrying upstream call after timeout', 'user session refreshed', 'inventory reserved', 'connection pool exhausted, waiting',
  'invoice rendered', 'rate limit exceeded for client', 'scheduled job finished', 'config reloaded',
  'slow query detected', 'message published to queue', 'token validation failed', 'shipment label generated',
];
const KUBE = [
  'operationExecutor.MountVolume started for volume', 'MountVolume.SetUp succeeded for volume',
  'Successfully pulled image', 'Container started', 'Liveness probe failed: HTTP probe failed with statuscode: 503',
  'SyncLoop (PLEG): event for pod', 'Killing container with a grace period', 'Volume detached for volume',
];
const JAVA_CLASSES = ['c.e.orders.OrderService', 'c.e.payments.PaymentGateway', 'o.h.engine.jdbc.spi.SqlExceptionHelper', 'c.e.auth.TokenFilter', 'o.s.web.servlet.DispatcherServlet'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const p2 = (n) => String(n).padStart(2, '0');
const p3 = (n) => String(n).padStart(3, '0');
const ip = (r) => `10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`;

/** One realistic log line in one of four styles (nginx access, JSON app log, kubelet syslog, Java). */
function logLine(r, style, t) {
  const d = new Date(t);
  const Y = d.getUTCFullYear(), M = d.getUTCMonth(), D = d.getUTCDate();
  const h = p2(d.getUTCHours()), m = p2(d.getUTCMinutes()), s = p2(d.getUTCSeconds()), ms = p3(d.getUTCMilliseconds());
  switch (style) {
    case 0: {
      const status = r.pick(STATUSES);
      const q = r.chance(0.4) ? `?page=${r.int(1, 50)}&limit=${r.pick([10, 20, 50, 100])}` : '';
      return `${ip(r)} - - [${p2(D)}/${MONTHS[M]}/${Y}:${h}:${m}:${s} +0000] "${r.pick(METHODS)} ${r.pick(PATHS)}/${r.int(1, 99999)}${q} HTTP/1.1" ${status} ${r.int(0, 65536)} "-" "${r.pick(AGENTS)}" rt=${(r.float() * 2).toFixed(3)} uct="0.000" urt="${(r.float() * 2).toFixed(3)}"\n`;
    }
    case 1: {
      const lvl = r.pick(LEVELS).toLowerCase();
      const extra = r.chance(0.3) ? `,"order_id":${r.int(100000, 999999)},"amount_cents":${r.int(100, 500000)}` : '';
      return `{"ts":"${d.toISOString()}","level":"${lvl}","service":"${r.pick(SERVICES)}","trace_id":"${r.hex(32)}","span_id":"${r.hex(16)}","msg":"${r.pick(MESSAGES)}","latency_ms":${r.int(0, 3000)},"client_ip":"${ip(r)}"${extra}}\n`;
    }
    case 2: {
      const pid = r.int(300, 9000);
      return `${MONTHS[M]} ${String(D).padStart(2, ' ')} ${h}:${m}:${s} node-${r.int(1, 12)} kubelet[${pid}]: I${p2(M + 1)}${p2(D)} ${h}:${m}:${s}.${ms}${p3(r.int(0, 999))} ${pid} reconciler.go:${r.int(100, 400)}] ${r.pick(KUBE)} "pvc-${r.hex(8)}-${r.hex(4)}-${r.hex(4)}-${r.hex(4)}-${r.hex(12)}" pod="${r.pick(SERVICES)}-${r.hex(10)}-${r.hex(5)}"\n`;
    }
    default: {
      const lvl = r.pick(LEVELS);
      let line = `${Y}-${p2(M + 1)}-${p2(D)} ${h}:${m}:${s},${ms} ${lvl.padEnd(5)} [http-nio-8080-exec-${r.int(1, 200)}] ${r.pick(JAVA_CLASSES)} - ${r.pick(MESSAGES)} (id=${r.int(1, 9999999)}, attempt ${r.int(1, 5)}/5)\n`;
      if (lvl === 'ERROR' && r.chance(0.5)) {
        line += `java.lang.IllegalStateException: ${r.pick(MESSAGES)}\n`;
        for (let k = r.int(3, 12); k > 0; k--) line += `\tat ${r.pick(JAVA_CLASSES)}.${r.pick(['handle', 'process', 'invoke', 'doFilter', 'execute'])}(${r.pick(['Service', 'Filter', 'Handler'])}.java:${r.int(20, 900)})\n`;
      }
      return line;
    }
  }
}

/** Writes `bytes` (at least) of log lines to fd; returns the buffers' sha256 and the exact size written. */
function writeLogs(fd, r, style, bytes, startMs) {
  const hash = createHash('sha256');
  let written = 0, t = startMs, parts = [], partLen = 0;
  const flush = () => {
    const buf = Buffer.from(parts.join(''), 'utf8');
    fs.writeSync(fd, buf);
    hash.update(buf);
    written += buf.length;
    parts = []; partLen = 0;
  };
  while (written + partLen < bytes) {
    t += r.int(0, 40);
    const line = logLine(r, style, t);
    parts.push(line);
    partLen += line.length; // ASCII only, so characters == bytes
    if (partLen >= 4 * MiB) flush();
  }
  if (parts.length) flush();
  return { sha256: hash.digest('hex'), size: written };
}

function datasetSpec(o) {
  const s = o.scale;
  return {
    generator: 'cairn-bench-dataset/1',
    seed: o.seed,
    scale: s,
    incompressible: { files: 1, bytes: Math.round(512 * MiB * s) },
    logs: { files: 8, bytesEach: Math.round((256 * MiB * s) / 8) },
    small: { files: Math.max(1, Math.round(20000 * s)), minBytes: 512, maxBytes: 16 * 1024, textShare: 0.6 },
  };
}

const FIXED_MTIME = new Date('2025-01-01T00:00:00Z');

function generateDataset(dir, spec) {
  const tree = path.join(dir, 'tree');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(tree, { recursive: true });
  const files = []; // { rel, size, sha256 }
  const t0 = Date.now();

  // 1. one large incompressible file
  {
    const rel = 'incompressible/blob-000.bin';
    fs.mkdirSync(path.join(tree, path.dirname(rel)), { recursive: true });
    const fd = fs.openSync(path.join(tree, rel), 'w');
    const ks = keystream(`${spec.seed}:incompressible`);
    const hash = createHash('sha256');
    for (let left = spec.incompressible.bytes; left > 0;) {
      const n = Math.min(left, 8 * MiB);
      const buf = ks(n);
      fs.writeSync(fd, buf);
      hash.update(buf);
      left -= n;
    }
    fs.closeSync(fd);
    files.push({ rel, size: spec.incompressible.bytes, sha256: hash.digest('hex') });
  }
  progress(`  dataset: incompressible file done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  // 2. compressible text logs, several files, four realistic styles
  fs.mkdirSync(path.join(tree, 'logs'), { recursive: true });
  for (let i = 0; i < spec.logs.files; i++) {
    const names = ['nginx-access', 'app-json', 'kubelet', 'java-app'];
    const rel = `logs/${names[i % 4]}-${p2(i)}.log`;
    const r = prng(`${spec.seed}:logs:${i}`);
    const fd = fs.openSync(path.join(tree, rel), 'w');
    const res = writeLogs(fd, r, i % 4, spec.logs.bytesEach, Date.UTC(2025, 0, 1) + i * 86400000);
    fs.closeSync(fd);
    files.push({ rel, ...res });
  }
  progress(`  dataset: logs done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  // 3. many small files in nested directories: small/NN/NN/NN/file-NNNNN.{txt,bin}
  {
    const r = prng(`${spec.seed}:small`);
    const ks = keystream(`${spec.seed}:small`);
    for (let i = 0; i < spec.small.files; i++) {
      const size = r.int(spec.small.minBytes, spec.small.maxBytes);
      const text = r.float() < spec.small.textShare;
      const sub = `small/${p2(i % 20)}/${p2(Math.floor(i / 20) % 10)}/${p2(Math.floor(i / 200) % 5)}`;
      const rel = `${sub}/file-${String(i).padStart(5, '0')}.${text ? 'txt' : 'bin'}`;
      let buf;
      if (text) {
        let s = '';
        const style = r.int(0, 3);
        let t = Date.UTC(2025, 0, 1) + i * 1000;
        while (s.length < size) { t += r.int(0, 40); s += logLine(r, style, t); }
        buf = Buffer.from(s.slice(0, size), 'utf8');
      } else {
        buf = ks(size);
      }
      fs.mkdirSync(path.join(tree, sub), { recursive: true });
      fs.writeFileSync(path.join(tree, rel), buf);
      files.push({ rel, size, sha256: createHash('sha256').update(buf).digest('hex') });
    }
  }
  progress(`  dataset: small files done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  // fixed mtimes for files and directories (deepest first), so snapshots of the dataset are comparable
  const dirs = new Set();
  for (const f of files) {
    fs.utimesSync(path.join(tree, f.rel), FIXED_MTIME, FIXED_MTIME);
    for (let d = path.dirname(f.rel); d !== '.'; d = path.dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) fs.utimesSync(path.join(tree, d), FIXED_MTIME, FIXED_MTIME);

  const manifest = {
    spec,
    generatedAt: new Date().toISOString(),
    files: files.length,
    dirs: dirs.size,
    bytes: files.reduce((a, f) => a + f.size, 0),
    digest: treeDigest(files),
  };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/** One digest for a whole tree: sorted "relpath NUL size NUL sha256" lines. */
function treeDigest(files) {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))) h.update(`${f.rel}\0${f.size}\0${f.sha256}\n`);
  return h.digest('hex');
}

/** Walks a restored tree and returns the same kind of manifest (files, bytes, digest). */
function scanTree(root) {
  const files = [];
  const buf = Buffer.allocUnsafe(4 * MiB);
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) {
        const fd = fs.openSync(path.join(root, r), 'r');
        const h = createHash('sha256');
        let size = 0;
        for (;;) {
          const n = fs.readSync(fd, buf, 0, buf.length, null);
          if (n === 0) break;
          h.update(buf.subarray(0, n));
          size += n;
        }
        fs.closeSync(fd);
        files.push({ rel: r, size, sha256: h.digest('hex') });
      } else files.push({ rel: r, size: -1, sha256: `non-regular:${e.isSymbolicLink() ? 'symlink' : 'other'}` });
    }
  };
  walk('');
  return { files: files.length, bytes: files.reduce((a, f) => a + Math.max(0, f.size), 0), digest: treeDigest(files) };
}

function ensureDataset(o) {
  const spec = datasetSpec(o);
  const mfile = path.join(o.data, 'manifest.json');
  let m;
  try { m = JSON.parse(fs.readFileSync(mfile, 'utf8')); } catch { m = undefined; }
  const big = path.join(o.data, 'tree', 'incompressible', 'blob-000.bin');
  const ok = m && JSON.stringify(m.spec) === JSON.stringify(spec) && fs.existsSync(big) && fs.statSync(big).size === spec.incompressible.bytes;
  if (ok) {
    progress(`dataset: using cached ${o.data} (${m.files} files, ${fmtMiB(m.bytes)} MiB)`);
    return m;
  }
  progress(`dataset: generating in ${o.data} (scale ${o.scale}, seed ${o.seed}) ...`);
  return generateDataset(o.data, spec);
}

// ---------------------------------------------------------------------------------------------
// running commands

let currentChild = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (currentChild) try { process.kill(-currentChild.pid, 'SIGKILL'); } catch { /* gone */ }
    console.error(`\nbench: ${sig === 'SIGINT' ? 'interrupted' : 'terminated'}`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

function progress(msg) {
  process.stdout.write(msg + '\n');
}

const fmtMiB = (b) => (b / MiB).toFixed(1);

function childEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('RESTIC_') || k.startsWith('CAIRN_')) continue; // defaults only
    env[k] = v;
  }
  return { ...env, RESTIC_PASSWORD: PASSWORD, ...extra };
}

function sync() {
  spawnSync('sync', [], { stdio: 'ignore' });
}

/** Busy CPU seconds of the whole machine so far (all cores), from /proc/stat; null if unavailable. */
const CLK_TCK = Number(sh('getconf', ['CLK_TCK'])) || 100;
function machineBusyS() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0);
    return busy / CLK_TCK;
  } catch {
    return null;
  }
}

class CommandFailed extends Error {
  constructor(info) {
    super(`${info.label} failed`);
    this.info = info;
  }
}

/**
 * Runs argv under GNU time, measuring wall time with hrtime and peak RSS / CPU with time's
 * %M (ru_maxrss of the process = its VmHWM at exit, whole process incl. worker threads).
 */
/** Waits (at most maxS seconds) until the machine is idle over a one-second window; returns the last busy share. */
async function waitQuiet(maxS) {
  if (!(maxS > 0)) return null;
  const cores = os.cpus().length;
  const deadline = Date.now() + maxS * 1000;
  let share = null;
  for (;;) {
    const b0 = machineBusyS();
    if (b0 == null) return null;
    await new Promise((r) => setTimeout(r, 1000));
    share = (machineBusyS() - b0) / cores;
    if (share < 0.1 || Date.now() >= deadline) return +share.toFixed(3);
  }
}

async function measure(label, argv, { env, logDir, timeoutS, quietS = 0 }) {
  fs.mkdirSync(logDir, { recursive: true });
  const base = path.join(logDir, label.replace(/[^A-Za-z0-9_.-]+/g, '_'));
  const outFile = `${base}.stdout`, errFile = `${base}.stderr`, timeFile = `${base}.time`;
  const outFd = fs.openSync(outFile, 'w'), errFd = fs.openSync(errFile, 'w');
  sync(); // start every timed command with no dirty pages from the one before
  const busyBefore = await waitQuiet(quietS);
  const busy0 = machineBusyS();
  const t0 = process.hrtime.bigint();
  const child = spawn(TIME_BIN, ['-f', '%e %M %U %S', '-o', timeFile, ...argv], { stdio: ['ignore', outFd, errFd], env, detached: true });
  currentChild = child;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
  }, timeoutS * 1000);
  const code = await new Promise((resolve) => {
    child.on('error', (e) => resolve({ spawnError: e }));
    child.on('close', (c, sig) => resolve(c ?? sig));
  });
  const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
  const busy1 = machineBusyS();
  clearTimeout(timer);
  currentChild = null;
  fs.closeSync(outFd);
  fs.closeSync(errFd);
  const stdout = fs.readFileSync(outFile, 'utf8');
  const stderr = fs.readFileSync(errFile, 'utf8');
  let timeLine = '';
  try { timeLine = fs.readFileSync(timeFile, 'utf8').trim().split('\n').filter(Boolean).pop() ?? ''; } catch { /* killed */ }
  const [eS, maxRssKiB, userS, sysS] = timeLine.split(/\s+/).map(Number);
  // CPU time the rest of the machine used meanwhile (other processes, kernel threads such as writeback)
  const otherCpuS = busy0 != null && busy1 != null && Number.isFinite(userS) ? Math.max(0, +(busy1 - busy0 - userS - sysS).toFixed(2)) : null;
  const info = { label, argv, exit: code, wallS, timeWallS: eS, maxRssKiB, userS, sysS, otherCpuS, busyBefore, timedOut, stdoutFile: outFile, stderrFile: errFile };
  if (code !== 0 || timedOut || !Number.isFinite(maxRssKiB)) {
    info.stdoutTail = stdout.slice(-4000);
    info.stderr = stderr.slice(-8000);
    info.stderrHead = stderr.length > 8000 ? stderr.slice(0, 2000) : '';
    throw new CommandFailed(info);
  }
  info.stdout = stdout;
  info.stderrText = stderr;
  return info;
}

/** The "Files: ... Added to the repository" summary that restic and cairn print in text mode. */
function parseBackupSummary(text) {
  const f = /Files:\s+(\d+) new,\s+(\d+) changed,\s+(\d+) unmodified/.exec(text);
  const d = /Dirs:\s+(\d+) new,\s+(\d+) changed,\s+(\d+) unmodified/.exec(text);
  const added = /Added to the repo(?:sitory)?:\s+(.+)/.exec(text);
  const parent = /using parent snapshot ([0-9a-f]+)/.exec(text);
  const snap = /snapshot ([0-9a-f]+) saved/.exec(text);
  return {
    filesNew: f ? +f[1] : null, filesChanged: f ? +f[2] : null, filesUnmodified: f ? +f[3] : null,
    dirsNew: d ? +d[1] : null, dirsChanged: d ? +d[2] : null, dirsUnmodified: d ? +d[3] : null,
    added: added ? added[1].trim() : null,
    parent: parent ? parent[1] : null,
    snapshot: snap ? snap[1] : null,
  };
}

// ---------------------------------------------------------------------------------------------
// the cairn build under test

/**
 * Copies dist/, package.json and the native addon of this checkout to OUT/cairn-build, with
 * node_modules linked, so a rebuild of the checkout during a long benchmark cannot change the
 * code under test half way. Returns the CLI path.
 */
function freezeBuild(o) {
  const src = path.join(ROOT, 'dist');
  if (!fs.existsSync(path.join(src, 'cli.js'))) {
    console.error(`bench: ${path.join(src, 'cli.js')} not found; run npm run build first (npm run bench does)`);
    process.exit(1);
  }
  const dst = path.join(o.out, 'cairn-build');
  fs.rmSync(dst, { recursive: true, force: true });
  fs.mkdirSync(dst, { recursive: true });
  fs.cpSync(src, path.join(dst, 'dist'), { recursive: true, filter: (f) => !f.endsWith('.map') });
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(dst, 'package.json'));
  const addon = path.join(ROOT, 'native', 'build', 'Release', 'cairn_native.node');
  if (fs.existsSync(addon)) {
    fs.mkdirSync(path.join(dst, 'native', 'build', 'Release'), { recursive: true });
    fs.copyFileSync(addon, path.join(dst, 'native', 'build', 'Release', 'cairn_native.node'));
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dst, 'node_modules'));
  return path.join(dst, 'dist', 'cli.js');
}

/** sha256 over the files of the build under test (its dist/ and native addon), to tell builds apart. */
function buildDigest(cli) {
  const root = path.dirname(path.dirname(cli));
  const h = createHash('sha256');
  const add = (rel) => {
    const p = path.join(root, rel);
    if (!fs.existsSync(p)) return;
    if (fs.statSync(p).isDirectory()) {
      for (const e of fs.readdirSync(p).sort()) if (!e.endsWith('.map')) add(rel ? `${rel}/${e}` : e);
    } else h.update(`${rel}\0`).update(fs.readFileSync(p));
  };
  add('dist');
  add('native/build/Release/cairn_native.node');
  return h.digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------
// tools

function tools(o) {
  const node = process.execPath;
  const list = [
    { name: 'restic', bin: [o.restic], init: ['init', '--repository-version', '2'] },
    { name: 'cairn', bin: [node, o.cairn], init: ['init', '--repository-version', '2'] },
  ];
  if (o.variants) list.push({ name: 'cairn-rabin', bin: [node, o.cairn], init: ['init', '--repository-version', '2', '--chunker', 'rabin'] });
  return list;
}

const OPS = [
  { key: 'init', title: 'init' },
  { key: 'backup', title: 'initial backup' },
  { key: 'incremental', title: 'unchanged incremental backup' },
  { key: 'restore', title: 'restore latest' },
];

async function runTool(o, tool, run, dataTree, manifest, samples, failures) {
  const dir = path.join(o.work, `${tool.name}-run${run}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const repo = path.join(dir, 'repo');
  const target = path.join(dir, 'restore');
  const env = childEnv({ RESTIC_CACHE_DIR: path.join(dir, 'restic-cache') }); // restic's default cache, kept inside the work dir
  const logDir = path.join(o.work, 'logs');
  const step = async (op, args) => {
    const label = `${tool.name}-run${run}-${op}`;
    const r = await measure(label, [...tool.bin, '-r', repo, ...args], { env, logDir, timeoutS: o.timeout, quietS: o.waitQuiet });
    const sample = { tool: tool.name, run, op, wallS: r.wallS, timeWallS: r.timeWallS, maxRssKiB: r.maxRssKiB, userS: r.userS, sysS: r.sysS, otherCpuS: r.otherCpuS, busyBefore: r.busyBefore };
    // more than 10 % of the machine's CPU went to something else while this command ran
    sample.contended = r.otherCpuS != null && r.otherCpuS > 0.1 * r.wallS * os.cpus().length;
    if (op === 'backup' || op === 'incremental') sample.summary = parseBackupSummary(r.stdout + '\n' + r.stderrText);
    samples.push(sample);
    progress(`  ${label.padEnd(34)} ${r.wallS.toFixed(2).padStart(8)} s  ${fmtMiB(r.maxRssKiB * 1024).padStart(7)} MiB  (user ${r.userS.toFixed(1)} s, sys ${r.sysS.toFixed(1)} s, others ${r.otherCpuS ?? '?'} s)${sample.contended ? '  CONTENDED' : ''}`);
    return sample;
  };
  const warnings = [];
  let verify = null;
  try {
    await step('init', tool.init);
    const b1 = await step('backup', ['backup', dataTree]);
    if (b1.summary.filesNew !== manifest.files) warnings.push(`initial backup reported ${b1.summary.filesNew} new files, dataset has ${manifest.files}`);
    const b2 = await step('incremental', ['backup', dataTree]);
    if (b2.summary.filesUnmodified !== manifest.files) warnings.push(`incremental backup reported ${b2.summary.filesUnmodified} unmodified files of ${manifest.files} (parent snapshot not used?)`);
    fs.mkdirSync(target);
    await step('restore', ['restore', 'latest', '--target', target]);
  } catch (e) {
    if (!(e instanceof CommandFailed)) throw e;
    const i = e.info;
    const f = { tool: tool.name, run, op: i.label.split('-').pop(), label: i.label, argv: i.argv, exit: i.exit, timedOut: i.timedOut, wallS: i.wallS, maxRssKiB: i.maxRssKiB, stderrHead: i.stderrHead, stderrTail: i.stderr, stdoutTail: i.stdoutTail, stderrFile: i.stderrFile, stdoutFile: i.stdoutFile };
    failures.push(f);
    reportFailure(f, o);
    if (!o.keepGoing) throw e;
    progress(`  --keep-going: skipping the rest of ${tool.name} run ${run}`);
    fs.rmSync(dir, { recursive: true, force: true });
    return { tool: tool.name, run, warnings, verify, failed: f.label };
  }
  if (o.verify) {
    const got = scanTree(path.join(target, dataTree));
    verify = { ok: got.digest === manifest.digest, files: got.files, bytes: got.bytes };
    if (!verify.ok) warnings.push(`restore differs from the dataset: ${got.files} files / ${got.bytes} bytes restored, expected ${manifest.files} / ${manifest.bytes}`);
  }
  for (const w of warnings) progress(`  WARNING ${tool.name} run ${run}: ${w}`);
  fs.rmSync(dir, { recursive: true, force: true });
  sync();
  return { tool: tool.name, run, warnings, verify };
}

function reportFailure(f, o) {
  const lines = (f.stderrTail || '').split('\n');
  console.error(`\nbench: FAILED: ${f.label} ${f.timedOut ? `timed out after ${o.timeout} s` : `exited with ${f.exit}`} after ${f.wallS.toFixed(1)} s` +
    (Number.isFinite(f.maxRssKiB) ? `, peak RSS ${fmtMiB(f.maxRssKiB * 1024)} MiB` : ''));
  console.error(`command: ${f.argv.join(' ')}`);
  if (f.stderrHead) console.error(`--- stderr, first 2000 characters ---\n${f.stderrHead}\n[...]`);
  console.error(`--- stderr, last ${lines.length} lines of at most 8000 characters (all of it: ${f.stderrFile}) ---\n${f.stderrTail || '(empty)'}`);
  console.error(`--- stdout tail (${f.stdoutFile}) ---\n${f.stdoutTail || '(empty)'}`);
}

// ---------------------------------------------------------------------------------------------
// statistics and reports

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function computeMedians(samples, toolNames) {
  const med = {};
  for (const t of toolNames) {
    med[t] = {};
    for (const op of OPS) {
      const ss = samples.filter((s) => s.tool === t && s.op === op.key);
      if (!ss.length) continue;
      med[t][op.key] = {
        n: ss.length,
        wallS: median(ss.map((s) => s.wallS)),
        maxRssMiB: median(ss.map((s) => s.maxRssKiB / 1024)),
        userS: median(ss.map((s) => s.userS)),
        sysS: median(ss.map((s) => s.sysS)),
        cpuS: median(ss.map((s) => s.userS + s.sysS)),
        minWallS: Math.min(...ss.map((s) => s.wallS)),
        maxWallS: Math.max(...ss.map((s) => s.wallS)),
      };
    }
  }
  return med;
}

function comparisons(med, variant, failures) {
  const rows = [];
  for (const op of OPS) {
    const r = med.restic?.[op.key], c = med[variant]?.[op.key];
    const failed = (t) => failures.filter((f) => f.tool === t && f.op === op.key).length;
    if (!r && !c && !failed('restic') && !failed(variant)) continue;
    const ok = r && c && !failed('restic') && !failed(variant);
    rows.push({
      op: op.key, title: op.title,
      resticS: r?.wallS ?? null, cairnS: c?.wallS ?? null, ratio: ok ? c.wallS / r.wallS : null,
      resticRssMiB: r?.maxRssMiB ?? null, cairnRssMiB: c?.maxRssMiB ?? null, rssRatio: ok ? c.maxRssMiB / r.maxRssMiB : null,
      resticCpuS: r?.cpuS ?? null, cairnCpuS: c?.cpuS ?? null, cpuRatio: ok ? c.cpuS / r.cpuS : null,
      resticN: r?.n ?? 0, cairnN: c?.n ?? 0, resticFailed: failed('restic'), cairnFailed: failed(variant),
    });
  }
  return rows;
}

function evaluateTargets(rows, runs) {
  const by = Object.fromEntries(rows.map((r) => [r.op, r]));
  const t = [];
  const failedNote = (ops) => {
    const f = ops.filter((k) => by[k]?.cairnFailed || by[k]?.resticFailed);
    return f.length ? `failed: ${f.join(', ')}` : undefined;
  };
  const add = (name, value, limit, ops) => {
    const failed = failedNote(ops);
    t.push({ name, value, limit, pass: value != null && value <= limit && !failed, ...(failed ? { failed } : {}) });
  };
  add('initial backup time ≤ 0.5× restic', by.backup?.ratio ?? null, 0.5, ['backup']);
  add('restore time ≤ 0.5× restic', by.restore?.ratio ?? null, 0.5, ['restore']);
  add('unchanged incremental time ≤ 1.0× restic', by.incremental?.ratio ?? null, 1.0, ['incremental']);
  const rss = ['backup', 'incremental', 'restore'].map((k) => by[k]?.rssRatio).filter((x) => x != null);
  add('peak RSS ≤ 2× restic (worst of backup, incremental, restore)', rss.length ? Math.max(...rss) : null, 2.0, ['backup', 'incremental', 'restore']);
  if (runs < 3) for (const x of t) x.note = `only ${runs} run(s): not a valid median of ≥ 3`;
  return t;
}

const f2 = (x) => (x == null ? 'n/a' : x.toFixed(2));
const f1 = (x) => (x == null ? 'n/a' : x.toFixed(1));

function tableRows(rows) {
  const cell = (v, fmt, failed, n) => (failed ? `FAILED ${failed}×${n ? ` (ok ${n}: ${fmt(v)})` : ''}` : fmt(v));
  const ratio = (v) => (v == null ? 'n/a' : `${f2(v)}×`);
  return rows.map((r) => [r.title, cell(r.resticS, f2, r.resticFailed, r.resticN), cell(r.cairnS, f2, r.cairnFailed, r.cairnN), ratio(r.ratio),
    cell(r.resticRssMiB, f1, r.resticFailed, r.resticN), cell(r.cairnRssMiB, f1, r.cairnFailed, r.cairnN), ratio(r.rssRatio)]);
}

function cpuRows(rows) {
  const cell = (v, failed) => (failed ? 'FAILED' : f2(v));
  return rows.map((r) => [r.title, cell(r.resticCpuS, r.resticFailed), cell(r.cairnCpuS, r.cairnFailed), r.cpuRatio == null ? 'n/a' : `${f2(r.cpuRatio)}×`]);
}

function cpuHeader(variant) {
  return ['operation', 'restic CPU s', `${variant} CPU s`, `CPU ratio ${variant}/restic`];
}

function header(variant) {
  return ['operation', 'restic median s', `${variant} median s`, `ratio ${variant}/restic`, 'restic peak RSS MiB', `${variant} peak RSS MiB`, 'RSS ratio'];
}

function textTable(head, body) {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('-|-'), ...body.map(line)].join('\n');
}

function mdTable(head, body) {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function targetText(t) {
  const notes = [t.failed, t.note].filter(Boolean);
  return `${t.name}: ${t.value == null ? 'n/a' : t.value.toFixed(2) + '×'}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

function targetLines(targets) {
  return targets.map((t) => `${t.pass ? 'PASS' : 'FAIL'}  ${targetText(t)}`);
}

// ---------------------------------------------------------------------------------------------
// machine info

function sh(cmd, args) {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; }
}

function machineInfo(o, manifest) {
  const cpus = os.cpus();
  let nativeKind = null;
  try {
    const src = `import(${JSON.stringify(path.join(path.dirname(o.cairn), 'native', 'index.js'))}).then((m) => process.stdout.write(m.native.kind))`;
    nativeKind = execFileSync(process.execPath, ['-e', src], { encoding: 'utf8', env: childEnv({}), stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch { /* older layout */ }
  const gitHead = sh('git', ['-C', ROOT, 'rev-parse', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    cpuModel: cpus[0]?.model ?? null,
    cores: cpus.length,
    memoryGiB: +(os.totalmem() / 1024 ** 3).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    nodeVersion: process.version,
    resticVersion: sh(o.restic, ['version']),
    cairn: { cli: o.cairn, frozenFrom: o.freeze ? path.join(ROOT, 'dist') : null, buildDigest: buildDigest(o.cairn), gitHead, gitDirty: dirty ? dirty.split('\n').length + ' modified tracked files' : false, native: nativeKind },
    filesystem: sh('df', ['-PT', o.work])?.split('\n')[1]?.split(/\s+/).slice(0, 2).join(' ') ?? null,
    dataset: {
      dir: path.join(o.data, 'tree'), scale: o.scale, seed: o.seed, files: manifest.files, dirs: manifest.dirs,
      bytes: manifest.bytes, MiB: +(manifest.bytes / MiB).toFixed(1), digest: manifest.digest, spec: manifest.spec,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// profiling run

async function profileRun(o, dataTree) {
  const profDir = path.join(o.out, 'prof');
  fs.rmSync(profDir, { recursive: true, force: true });
  fs.mkdirSync(profDir, { recursive: true });
  const dir = path.join(o.work, 'profile');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const repo = path.join(dir, 'repo');
  const env = childEnv({});
  const logDir = path.join(o.work, 'logs');
  progress(`\nprofile: cairn init + initial backup under node --cpu-prof (profiles in ${profDir})`);
  await measure('profile-init', [process.execPath, o.cairn, '-r', repo, 'init', '--repository-version', '2'], { env, logDir, timeoutS: o.timeout });
  const r = await measure('profile-backup', [process.execPath, '--cpu-prof', `--cpu-prof-dir=${profDir}`, o.cairn, '-r', repo, 'backup', dataTree], { env, logDir, timeoutS: o.timeout });
  progress(`  profiled backup: ${r.wallS.toFixed(2)} s, ${fmtMiB(r.maxRssKiB * 1024)} MiB peak RSS (profiling overhead included)`);
  fs.rmSync(dir, { recursive: true, force: true });
  const summary = spawnSync(process.execPath, [path.join(BENCH_DIR, 'profile-summary.mjs'), profDir, '--top', '15'], { encoding: 'utf8' });
  process.stdout.write(summary.stdout);
  if (summary.status !== 0) {
    process.stderr.write(summary.stderr);
    throw new Error('profile-summary.mjs failed');
  }
  fs.writeFileSync(path.join(o.out, 'profile-summary.txt'), summary.stdout);
}

// ---------------------------------------------------------------------------------------------
// main

function writeResults(o, results) {
  fs.mkdirSync(o.out, { recursive: true });
  const stamp = results.machine.date.replace(/[:]/g, '-').replace(/\..*$/, '');
  const json = JSON.stringify(results, null, 2) + '\n';
  const file = path.join(o.out, `results-${stamp}.json`);
  fs.writeFileSync(file, json);
  fs.writeFileSync(path.join(o.out, 'latest.json'), json);
  return file;
}

/** First and last line of a failed command's stderr, for one-line reports. */
function stderrGist(f) {
  const lines = `${f.stderrHead || ''}\n${f.stderrTail || ''}`.trim().split('\n').filter(Boolean);
  if (!lines.length) return '(no stderr)';
  const first = lines[0].slice(0, 300), last = lines[lines.length - 1].slice(0, 300);
  return first === last ? first : `${first} … ${last}`;
}

function markdown(results) {
  const m = results.machine;
  const lines = [];
  lines.push(`### cairn vs ${m.resticVersion?.split(' ').slice(0, 2).join(' ') ?? 'restic'}`);
  lines.push('');
  lines.push(`Dataset: ${m.dataset.files} files, ${m.dataset.MiB} MiB (one ${fmtMiB(m.dataset.spec.incompressible.bytes)} MiB incompressible file, ` +
    `${m.dataset.spec.logs.files} text logs of ${fmtMiB(m.dataset.spec.logs.bytesEach)} MiB, ${m.dataset.spec.small.files} small files of 0.5–16 KiB; scale ${m.dataset.scale}, seed ${m.dataset.seed}). ` +
    `Median of ${results.config.runs} interleaved runs, warm page cache, local repository format v2 on the same disk. ` +
    `${m.cpuModel}, ${m.cores} cores, Node ${m.nodeVersion}, cairn ${m.cairn.gitHead?.slice(0, 8) ?? '?'}${m.cairn.gitDirty ? ' (dirty)' : ''} with ${m.cairn.native ?? '?'} kernels, ${m.date.slice(0, 10)}.`);
  for (const v of Object.keys(results.comparisons)) {
    lines.push('');
    if (v !== 'cairn') lines.push(`Variant \`${v}\`:`, '');
    lines.push(mdTable(header(v), tableRows(results.comparisons[v])));
  }
  lines.push('', 'CPU time (user + sys, median seconds):', '');
  for (const v of Object.keys(results.comparisons)) lines.push(mdTable(cpuHeader(v), cpuRows(results.comparisons[v])), '');
  lines.push('Targets:');
  lines.push('');
  for (const t of results.targets) lines.push(`- ${t.pass ? '✅' : '❌'} ${targetText(t)}`);
  const contended = results.samples.filter((x) => x.contended);
  if (contended.length) lines.push('', `Note: ${contended.length} of ${results.samples.length} timed commands ran while other processes used > 10 % of the machine's CPU; see latest.json (otherCpuS).`);
  const warnings = [
    ...results.failures.map((f) => `${f.tool} run ${f.run}: \`${f.op}\` ${f.timedOut ? 'timed out' : `exited with ${f.exit}`}: ${stderrGist(f)}`),
    ...results.checks.flatMap((c) => c.warnings.map((w) => `${c.tool} run ${c.run}: ${w}`)),
  ];
  if (warnings.length) {
    lines.push('', 'Warnings:', '');
    for (const w of warnings) lines.push(`- ${w}`);
  }
  return lines.join('\n') + '\n';
}

/** Prints the tables, targets, contention note, failures and warnings; returns the failures and warnings. */
function printReport(results) {
  progress(`\nResults: median of ${results.config.runs} runs, dataset ${results.machine.dataset.files} files / ${results.machine.dataset.MiB} MiB, warm page cache (one untimed read before run 1; the page cache is not dropped)`);
  for (const v of Object.keys(results.comparisons)) {
    progress('');
    progress(textTable(header(v), tableRows(results.comparisons[v])));
  }
  progress('\nCPU time (user + sys, median; less sensitive to other load on the machine than wall time):');
  for (const v of Object.keys(results.comparisons)) {
    progress('');
    progress(textTable(cpuHeader(v), cpuRows(results.comparisons[v])));
  }
  progress('\nTargets:');
  for (const l of targetLines(results.targets)) progress('  ' + l);
  const contended = results.samples.filter((x) => x.contended);
  if (contended.length) {
    progress(`\nNote: ${contended.length} of ${results.samples.length} timed commands shared the CPU with other work (other processes used > 10 % of the machine meanwhile):`);
    progress('  ' + contended.map((x) => `${x.tool}-run${x.run}-${x.op} (${x.otherCpuS} s)`).join(', '));
    progress('  their times are inflated; rerun on a quiet machine for numbers to publish');
  }
  const warnings = [
    ...results.failures.map((f) => `${f.tool} run ${f.run}: ${f.op} ${f.timedOut ? 'timed out' : `exited with ${f.exit}`}: ${stderrGist(f)} (full output: ${f.stderrFile})`),
    ...results.checks.flatMap((c) => c.warnings.map((w) => `${c.tool} run ${c.run}: ${w}`)),
  ];
  if (warnings.length) {
    progress('\nFailures and warnings:');
    for (const w of warnings) progress('  ' + w);
  }
  return warnings;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.report) {
    const results = JSON.parse(fs.readFileSync(o.report, 'utf8'));
    results.failures ??= [];
    const names = Object.keys(results.config.commands);
    results.medians = computeMedians(results.samples, names);
    results.comparisons = Object.fromEntries(names.filter((n) => n !== 'restic').map((n) => [n, comparisons(results.medians, n, results.failures)]));
    results.targets = evaluateTargets(results.comparisons.cairn ?? [], results.config.runs);
    const warnings = printReport(results);
    const md = o.report.replace(/\.json$/, '') + '.md';
    fs.writeFileSync(md, markdown(results));
    progress(`\nwrote ${md}`);
    if (warnings.length) process.exitCode = 1;
    return;
  }
  if (!fs.existsSync(TIME_BIN)) {
    console.error(`bench: ${TIME_BIN} not found. It measures peak RSS; install it with: apt-get install -y time`);
    process.exit(1);
  }
  if (!sh(o.restic, ['version'])) {
    console.error(`bench: cannot run restic (${o.restic} version); install it (apt-get install -y restic) or pass --restic PATH`);
    process.exit(1);
  }
  if (o.freeze) o.cairn = freezeBuild(o);
  else o.cairn ??= path.join(ROOT, 'dist', 'cli.js');
  if (!fs.existsSync(o.cairn)) {
    console.error(`bench: ${o.cairn} not found; run npm run build first (npm run bench does)`);
    process.exit(1);
  }
  if (o.runs < 3) progress(`note: --runs ${o.runs} is below 3; the medians are not valid for the targets`);
  fs.mkdirSync(o.work, { recursive: true });
  fs.mkdirSync(o.out, { recursive: true });

  const manifest = ensureDataset(o);
  const dataTree = path.join(o.data, 'tree');
  const machine = machineInfo(o, manifest);
  progress(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.nodeVersion}, ${machine.resticVersion}`);
  progress(`cairn: ${o.cairn} (build ${machine.cairn.buildDigest}) from git ${machine.cairn.gitHead?.slice(0, 8)}${machine.cairn.gitDirty ? ` + ${machine.cairn.gitDirty}` : ''}, kernels: ${machine.cairn.native}`);

  // page cache: dropping it needs privileges we cannot count on, so warm it instead, equally for all tools
  progress('warm-up: reading the whole dataset once (untimed, cat > /dev/null) so every tool starts from a warm page cache');
  const warm = spawnSync('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 cat > /dev/null', 'sh', dataTree], { stdio: 'inherit' });
  if (warm.status !== 0) throw new Error('warm-up read failed');

  if (o.profileOnly) {
    await profileRun(o, dataTree);
    return;
  }

  fs.rmSync(path.join(o.work, 'logs'), { recursive: true, force: true });
  const list = tools(o);
  const samples = [];
  const checks = [];
  const failures = [];
  const results = {
    schema: 'cairn-bench/1',
    machine,
    config: { runs: o.runs, scale: o.scale, seed: o.seed, variants: o.variants, verify: o.verify, order: 'interleaved: run r of every tool, then run r+1', cache: 'warm (one untimed cat of the dataset before run 1)', password: 'same for all tools', repositoryVersion: 2, commands: Object.fromEntries(list.map((t) => [t.name, { bin: t.bin, init: t.init }])) },
    samples, checks, failures, medians: null, comparisons: null, targets: null,
  };
  const finish = () => {
    const names = list.map((t) => t.name);
    results.medians = computeMedians(samples, names);
    results.comparisons = Object.fromEntries(names.filter((n) => n !== 'restic').map((n) => [n, comparisons(results.medians, n, failures)]));
    results.targets = evaluateTargets(results.comparisons.cairn ?? [], o.runs);
  };

  try {
    for (let run = 1; run <= o.runs; run++) {
      progress(`\nrun ${run}/${o.runs}`);
      for (const tool of list) checks.push(await runTool(o, tool, run, dataTree, manifest, samples, failures));
    }
  } catch (e) {
    if (!(e instanceof CommandFailed)) throw e;
    finish();
    const file = writeResults(o, results);
    console.error(`partial results: ${file} (use --keep-going to measure the rest anyway)`);
    process.exit(1);
  }

  finish();
  const file = writeResults(o, results);
  const md = markdown(results);
  fs.writeFileSync(path.join(o.out, 'latest.md'), md);

  const warnings = printReport(results);
  progress(`\nwrote ${file}, ${path.join(o.out, 'latest.json')}, ${path.join(o.out, 'latest.md')}`);

  if (o.profile) await profileRun(o, dataTree);
  if (warnings.length) process.exitCode = 1; // a failed command, a wrong restore or a missed parent is a failure, not a footnote
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exit(1);
});
