// Helpers shared by the benchmark scripts (run.mjs, scaling.mjs, index.mjs, chart.mjs):
// seeded data, tree digests, running a command under GNU time, idle waiting, statistics,
// tables, the frozen cairn build and machine information. Plain Node ESM, no dependencies.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(BENCH_DIR, '..');
export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const TIME_BIN = '/usr/bin/time';
export const PASSWORD = 'cairn-bench-password';
/** Every generated file and directory gets this mtime. */
export const FIXED_MTIME = new Date('2025-01-01T00:00:00Z');

// ---------------------------------------------------------------------------------------------
// seeded data

/** sfc32: small, fast, good enough for picking log words and sizes; fully determined by the seed. */
export function prng(seedText) {
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
  return {
    u32: next,
    float: () => next() / 4294967296,
    int: (lo, hi) => lo + Math.floor((next() / 4294967296) * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor((next() / 4294967296) * arr.length)],
    hex: (n) => { let s = ''; while (s.length < n) s += next().toString(16).padStart(8, '0'); return s.slice(0, n); },
    chance: (p) => next() / 4294967296 < p,
  };
}

/** Incompressible bytes: AES-256-CTR keystream under a key derived from the seed (deterministic, fast). */
export function keystream(seedText) {
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

export const p2 = (n) => String(n).padStart(2, '0');
const p3 = (n) => String(n).padStart(3, '0');
const ip = (r) => `10.${r.int(0, 255)}.${r.int(0, 255)}.${r.int(1, 254)}`;

/** One realistic log line in one of four styles (nginx access, JSON app log, kubelet syslog, Java). */
export function logLine(r, style, t) {
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
export function writeLogs(fd, r, style, bytes, startMs) {
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

/** Exactly `size` bytes of log text in one of the four styles (for small text files). */
export function logText(r, size, startMs) {
  let s = '';
  const style = r.int(0, 3);
  let t = startMs;
  while (s.length < size) { t += r.int(0, 40); s += logLine(r, style, t); }
  return Buffer.from(s.slice(0, size), 'utf8');
}

/** Writes `bytes` of incompressible keystream to a new file; returns its sha256. */
export function writeKeystreamFile(file, ks, bytes) {
  const fd = fs.openSync(file, 'w');
  const hash = createHash('sha256');
  for (let left = bytes; left > 0;) {
    const n = Math.min(left, 8 * MiB);
    const buf = ks(n);
    fs.writeSync(fd, buf);
    hash.update(buf);
    left -= n;
  }
  fs.closeSync(fd);
  return hash.digest('hex');
}

/** Sets FIXED_MTIME on every file of the list and on every directory above them (deepest first). */
export function fixMtimes(tree, files) {
  const dirs = new Set();
  for (const f of files) {
    fs.utimesSync(path.join(tree, f.rel), FIXED_MTIME, FIXED_MTIME);
    for (let d = path.dirname(f.rel); d !== '.'; d = path.dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) fs.utimesSync(path.join(tree, d), FIXED_MTIME, FIXED_MTIME);
  return dirs.size;
}

// ---------------------------------------------------------------------------------------------
// tree digests

const byRel = (a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0);

/** One digest for a whole tree: sorted "relpath NUL size NUL sha256" lines. */
export function treeDigest(files) {
  const h = createHash('sha256');
  for (const f of [...files].sort(byRel)) h.update(`${f.rel}\0${f.size}\0${f.sha256}\n`);
  return h.digest('hex');
}

const hashBuf = Buffer.allocUnsafe(4 * MiB);

/** sha256 and size of one file. */
export function hashFile(file) {
  const fd = fs.openSync(file, 'r');
  const h = createHash('sha256');
  let size = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, hashBuf, 0, hashBuf.length, null);
      if (n === 0) break;
      h.update(hashBuf.subarray(0, n));
      size += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { size, sha256: h.digest('hex') };
}

/** Walks a tree and returns its manifest (files, bytes, digest; with list: every file's entry). */
export function scanTree(root, { list = false } = {}) {
  const files = [];
  const walk = (rel) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (e.isFile()) files.push({ rel: r, ...hashFile(path.join(root, r)) });
      else files.push({ rel: r, size: -1, sha256: `non-regular:${e.isSymbolicLink() ? 'symlink' : 'other'}` });
    }
  };
  walk('');
  const out = { files: files.length, bytes: files.reduce((a, f) => a + Math.max(0, f.size), 0), digest: treeDigest(files) };
  if (list) out.list = files.sort(byRel);
  return out;
}

// ---------------------------------------------------------------------------------------------
// output helpers

export function progress(msg) {
  process.stdout.write(msg + '\n');
}

export const fmtMiB = (b) => (b / MiB).toFixed(1);
export const f2 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(2));
export const f1 = (x) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(1));
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** "128M", "1G", "1.5g", "100k", "1M" (counts with --counts: k = 1000); returns a number. */
export function parseSizeArg(s, { binary = true } = {}) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)?\s*$/i.exec(s);
  if (!m) throw new Error(`not a size: ${JSON.stringify(s)}`);
  const base = binary ? 1024 : 1000;
  const exp = { '': 0, k: 1, m: 2, g: 3, t: 4 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * base ** exp);
}

/** 134217728 → "128M", 1073741824 → "1G" (binary), 100000 → "100k" (decimal counts). */
export function fmtSize(n, { binary = true } = {}) {
  const base = binary ? 1024 : 1000;
  const units = binary ? ['', 'K', 'M', 'G', 'T'] : ['', 'k', 'M', 'G', 'T'];
  let u = 0, v = n;
  while (v >= base && u < units.length - 1 && Number.isInteger(v / base)) { v /= base; u++; }
  if (!Number.isInteger(v) && u === 0) return String(n);
  return `${+v.toFixed(2)}${units[u]}`;
}

export function textTable(head, body) {
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join(' | ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('-|-'), ...body.map(line)].join('\n');
}

export function mdTable(head, body) {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// statistics

export function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Least-squares line y = slope·x + intercept through the points; r2 = coefficient of determination. */
export function leastSquares(points) {
  const p = points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const n = p.length;
  if (n < 2) return null;
  const mx = p.reduce((a, [x]) => a + x, 0) / n;
  const my = p.reduce((a, [, y]) => a + y, 0) / n;
  let sxx = 0, sxy = 0, syy = 0;
  for (const [x, y] of p) {
    sxx += (x - mx) ** 2;
    sxy += (x - mx) * (y - my);
    syy += (y - my) ** 2;
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { slope, intercept, r2, n };
}

// ---------------------------------------------------------------------------------------------
// processes, the machine, disks

export function sh(cmd, args) {
  try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; }
}

/** Environment for the tools: the caller's, minus RESTIC_* and CAIRN_* (defaults only), plus the password. */
export function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('RESTIC_') || k.startsWith('CAIRN_')) continue;
    env[k] = v;
  }
  return { ...env, RESTIC_PASSWORD: PASSWORD, ...extra };
}

export function sync() {
  spawnSync('sync', [], { stdio: 'ignore' });
}

/**
 * ext4 without a journal (this project's VM) does not reuse an inode freed less than 60 s ago, and
 * less than 360 s ago while that inode's table block is dirty — which it is again as soon as a new
 * file is created next to it (fs/ext4/ialloc.c, recently_deleted()). Until then every file
 * creation scans past the recently freed inodes: creating 40k files right after deleting 40k took
 * 4–5 s of system time instead of 0.4 s. So a timed restore must not follow a big deletion by less
 * than about six minutes; this is the pause that guarantees it.
 */
export const EXT4_RECENT_DELETE_S = 370;

/**
 * Deletes directories, then syncs and waits `settleS` seconds (see EXT4_RECENT_DELETE_S for why a
 * deletion right before a timed command would charge that command for it).
 */
export async function removeAndSettle(dirs, settleS, why = '') {
  const list = dirs.filter((d) => d && fs.existsSync(d));
  if (!list.length) return false;
  for (const d of list) fs.rmSync(d, { recursive: true, force: true });
  sync();
  if (settleS > 0) {
    progress(`  (deleted ${list.length} director${list.length === 1 ? 'y' : 'ies'}${why ? ` ${why}` : ''}; sync + ${settleS} s pause so the next timed command does not pay for ext4 freeing the inodes)`);
    await sleep(settleS * 1000);
  }
  return true;
}

/** Free bytes and inodes of the file system holding dir (the nearest existing parent). */
export function diskFree(dir) {
  let d = path.resolve(dir);
  while (!fs.existsSync(d)) d = path.dirname(d);
  const s = fs.statfsSync(d);
  return { bytes: s.bavail * s.bsize, inodes: s.ffree, blockSize: s.bsize };
}

/** Busy CPU seconds of the whole machine so far (all cores), from /proc/stat; null if unavailable. */
const CLK_TCK = Number(sh('getconf', ['CLK_TCK'])) || 100;
export function machineBusyS() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] || 0);
    return busy / CLK_TCK;
  } catch {
    return null;
  }
}

/** Waits (at most maxS seconds) until the machine is idle over a one-second window; returns the last busy share. */
export async function waitQuiet(maxS) {
  if (!(maxS > 0)) return null;
  const cores = os.cpus().length;
  const deadline = Date.now() + maxS * 1000;
  let share = null;
  for (;;) {
    const b0 = machineBusyS();
    if (b0 == null) return null;
    await sleep(1000);
    share = (machineBusyS() - b0) / cores;
    if (share < 0.1 || Date.now() >= deadline) return +share.toFixed(3);
  }
}

let currentChild = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (currentChild) try { process.kill(-currentChild.pid, 'SIGKILL'); } catch { /* gone */ }
    console.error(`\nbench: ${sig === 'SIGINT' ? 'interrupted' : 'terminated'}`);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

export class CommandFailed extends Error {
  constructor(info) {
    super(`${info.label} failed`);
    this.info = info;
  }
}

/**
 * Runs argv under GNU time, measuring wall time with hrtime and peak RSS / CPU with time's
 * %M (ru_maxrss of the process = its VmHWM at exit, whole process incl. worker threads).
 * Syncs first (no dirty pages from the previous command), then waits up to quietS seconds for
 * an idle second, then reads the `warm` paths once (untimed) so the command starts with its
 * inputs in the page cache. That last step matters on VMs that page out cold page cache on their
 * own (this project's machines run DAMON with a "page out what was idle for 30 s" scheme: a
 * dataset read 60 s earlier was back on disk, and a backup paid 10–40 s of reads that belonged to
 * neither tool). Throws CommandFailed on a non-zero exit or timeout.
 */
export async function measure(label, argv, { env, logDir, timeoutS = 3600, quietS = 0, cwd, warm = [] }) {
  fs.mkdirSync(logDir, { recursive: true });
  const base = path.join(logDir, label.replace(/[^A-Za-z0-9_.-]+/g, '_'));
  const outFile = `${base}.stdout`, errFile = `${base}.stderr`, timeFile = `${base}.time`;
  const outFd = fs.openSync(outFile, 'w'), errFd = fs.openSync(errFile, 'w');
  sync(); // start every timed command with no dirty pages from the one before
  const busyBefore = await waitQuiet(quietS);
  for (const w of warm) if (fs.existsSync(w)) warmCache(w);
  const busy0 = machineBusyS();
  const t0 = process.hrtime.bigint();
  const child = spawn(TIME_BIN, ['-f', '%e %M %U %S', '-o', timeFile, ...argv], { stdio: ['ignore', outFd, errFd], env, cwd, detached: true });
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
  // more than 10 % of the machine's CPU went to something else while this command ran
  info.contended = otherCpuS != null && otherCpuS > 0.1 * wallS * os.cpus().length;
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

/** One progress line for a measured command. */
export function measureLine(label, r, width = 34) {
  return `  ${label.padEnd(width)} ${r.wallS.toFixed(2).padStart(8)} s  ${fmtMiB(r.maxRssKiB * 1024).padStart(7)} MiB  (user ${r.userS.toFixed(1)} s, sys ${r.sysS.toFixed(1)} s, others ${r.otherCpuS ?? '?'} s)${r.contended ? '  CONTENDED' : ''}`;
}

/** Prints a failed command's exit, stderr head and tail, stdout tail. */
export function reportFailure(f, timeoutS) {
  const lines = (f.stderrTail || '').split('\n');
  console.error(`\nbench: FAILED: ${f.label} ${f.timedOut ? `timed out after ${timeoutS} s` : `exited with ${f.exit}`} after ${f.wallS.toFixed(1)} s` +
    (Number.isFinite(f.maxRssKiB) ? `, peak RSS ${fmtMiB(f.maxRssKiB * 1024)} MiB` : ''));
  console.error(`command: ${f.argv.join(' ')}`);
  if (f.stderrHead) console.error(`--- stderr, first 2000 characters ---\n${f.stderrHead}\n[...]`);
  console.error(`--- stderr, last ${lines.length} lines of at most 8000 characters (all of it: ${f.stderrFile}) ---\n${f.stderrTail || '(empty)'}`);
  console.error(`--- stdout tail (${f.stdoutFile}) ---\n${f.stdoutTail || '(empty)'}`);
}

/** First and last line of a failed command's stderr, for one-line reports. */
export function stderrGist(f) {
  const lines = `${f.stderrHead || ''}\n${f.stderrTail || ''}`.trim().split('\n').filter(Boolean);
  if (!lines.length) return '(no stderr)';
  const first = lines[0].slice(0, 300), last = lines[lines.length - 1].slice(0, 300);
  return first === last ? first : `${first} … ${last}`;
}

/** A CommandFailed's info as a failure record. */
export function failureRecord(e, extra) {
  const i = e.info;
  return { ...extra, label: i.label, argv: i.argv, exit: i.exit, timedOut: i.timedOut, wallS: i.wallS, maxRssKiB: i.maxRssKiB, stderrHead: i.stderrHead, stderrTail: i.stderr, stdoutTail: i.stdoutTail, stderrFile: i.stderrFile, stdoutFile: i.stdoutFile };
}

/** The "Files: ... Added to the repository" summary that restic and cairn print in text mode. */
export function parseBackupSummary(text) {
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

/** Reads every file under dir once (untimed), so every tool starts from the same warm page cache. */
export function warmCache(dir) {
  const warm = spawnSync('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 -r cat > /dev/null', 'sh', dir], { stdio: 'inherit' });
  if (warm.status !== 0) throw new Error(`warm-up read of ${dir} failed`);
}

/** Stops with a clear message when GNU time or restic is missing. */
export function checkPrerequisites({ restic = 'restic', needRestic = true } = {}) {
  if (!fs.existsSync(TIME_BIN)) {
    console.error(`bench: ${TIME_BIN} not found. It measures peak RSS; install it with: apt-get install -y time`);
    process.exit(1);
  }
  if (needRestic && !sh(restic, ['version'])) {
    console.error(`bench: cannot run restic (${restic} version); install it (apt-get install -y restic) or pass --restic PATH`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------------------------
// the cairn build under test

/**
 * Copies dist/, package.json and the native addon of this checkout to OUT/cairn-build, with
 * node_modules linked, so a rebuild of the checkout during a long benchmark cannot change the
 * code under test half way. Returns the CLI path.
 */
export function freezeBuild(outDir, name = 'cairn-build') {
  const src = path.join(ROOT, 'dist');
  if (!fs.existsSync(path.join(src, 'cli.js'))) {
    console.error(`bench: ${path.join(src, 'cli.js')} not found; run npm run build first (npm run bench does)`);
    process.exit(1);
  }
  const dst = path.join(outDir, name);
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
export function buildDigest(cli) {
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

/** Resolves the cairn CLI to run: a frozen copy (default), --cairn PATH, or this checkout's dist. */
export function resolveCairn(o, outDir) {
  let cli;
  if (o.cairn) cli = o.cairn;
  else if (o.freeze) cli = freezeBuild(outDir);
  else cli = path.join(ROOT, 'dist', 'cli.js');
  if (!fs.existsSync(cli)) {
    console.error(`bench: ${cli} not found; run npm run build first (npm run bench does)`);
    process.exit(1);
  }
  return cli;
}

/** CPU, memory, kernel, versions, cairn build and file system of this machine. */
export function machineBase({ restic = 'restic', cairn, workDir }) {
  const cpus = os.cpus();
  let nativeKind = null;
  if (cairn) {
    try {
      const src = `import(${JSON.stringify(path.join(path.dirname(cairn), 'native', 'index.js'))}).then((m) => process.stdout.write(m.native.kind))`;
      nativeKind = execFileSync(process.execPath, ['-e', src], { encoding: 'utf8', env: childEnv({}), stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
    } catch { /* older layout */ }
  }
  const gitHead = sh('git', ['-C', ROOT, 'rev-parse', 'HEAD']);
  const dirty = sh('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']);
  return {
    date: new Date().toISOString(),
    cpuModel: cpus[0]?.model ?? null,
    cores: cpus.length,
    memoryGiB: +(os.totalmem() / 1024 ** 3).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    nodeVersion: process.version,
    resticVersion: restic ? sh(restic, ['version']) : null,
    cairn: cairn ? { cli: cairn, buildDigest: buildDigest(cairn), gitHead, gitDirty: dirty ? dirty.split('\n').length + ' modified tracked files' : false, native: nativeKind } : { gitHead },
    filesystem: workDir ? sh('df', ['-PT', workDir])?.split('\n')[1]?.split(/\s+/).slice(0, 2).join(' ') ?? null : null,
  };
}

/** Writes JSON as OUT/<prefix>-<date>.json and OUT/<prefix>-latest.json (or latest.json when prefix is empty). */
export function writeJsonResults(outDir, prefix, results) {
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = results.machine.date.replace(/[:]/g, '-').replace(/\..*$/, '');
  const json = JSON.stringify(results, null, 2) + '\n';
  const file = path.join(outDir, `${prefix || 'results'}-${stamp}.json`);
  const latest = path.join(outDir, prefix ? `${prefix}-latest.json` : 'latest.json');
  fs.writeFileSync(file, json);
  fs.writeFileSync(latest, json);
  return { file, latest };
}

/**
 * --report FILE: re-reads a saved results JSON, completes it (`prepare`), prints its tables and
 * writes FILE's .md and .svg next to it. The exit code is 1 when the report has warnings.
 */
export function rerenderReport(file, { prepare, print, markdown, chart }) {
  const results = JSON.parse(fs.readFileSync(file, 'utf8'));
  prepare(results);
  const warnings = print(results);
  const base = file.replace(/\.json$/, '');
  fs.writeFileSync(`${base}.md`, markdown(results));
  chart(results, `${base}.svg`);
  progress(`\nwrote ${base}.md, ${base}.svg`);
  if (warnings.length) process.exitCode = 1;
}
