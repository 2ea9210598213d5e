#!/usr/bin/env node
// cairn vs restic, side by side, on one seeded dataset.
//
//   node bench/run.mjs [--runs 3] [--scale 1] [--data DIR] [--work DIR] [--out DIR]
//                      [--variants] [--no-verify] [--timeout SEC] [--profile | --profile-only]
//
// Plain Node ESM, no dependencies. See bench/README.md for what is measured and the caveats.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BENCH_DIR, ROOT, MiB, FIXED_MTIME, prng, keystream, p2, writeLogs, logText, writeKeystreamFile, fixMtimes, treeDigest, hashFile, scanTree,
  progress, fmtMiB, f1, f2, textTable, mdTable, median, childEnv, sync, removeAndSettle, diskFree, CommandFailed, measure, measureLine,
  reportFailure, stderrGist, failureRecord, parseBackupSummary, warmCache, checkPrerequisites, resolveCairn, machineBase, writeJsonResults,
  rerenderReport, EXT4_RECENT_DELETE_S,
} from './lib.mjs';
import { writeRatioChart } from './chart.mjs';

// ---------------------------------------------------------------------------------------------
// options

function usage(code) {
  const text = `usage: node bench/run.mjs [options]

  --runs N         timed runs per tool, interleaved; the median is reported (default 3, >= 3 for the targets)
  --scale S        shrink or grow the dataset proportionally, e.g. 0.25 for a quick run (default 1)
  --seed S         dataset seed (default 1)
  --change P       per cent of the dataset changed before the "changed incremental" backup (default 1)
  --data DIR       dataset cache (default bench/out/data); regenerated only if missing or different
  --work DIR       scratch space for repositories and restores (default bench/out/work)
  --out DIR        results directory (default bench/out)
  --variants       also run cairn with --chunker rabin
  --keep-going     when a command fails, report it, skip the rest of that tool's run and go on
                   with the other runs (the script still exits 1 at the end); default: stop at once
  --wait-quiet SEC before each timed command, wait up to SEC seconds for the machine to be idle
                   (< 10 % CPU used over one second); 0 disables (default 30)
  --settle SEC     after deleting repositories and restores before a timed command (leftovers of
                   an earlier invocation; rounds when the disk cannot hold all of them): sync, then
                   wait SEC seconds (ext4 "recently deleted" inodes, see bench/README.md; default 370)
  --report FILE    only recompute medians, ratios and targets from a results JSON, print them and
                   write the Markdown and SVG next to it (FILE with .md / .svg); runs nothing
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
    runs: 3, scale: 1, seed: 1, change: 1,
    data: path.join(BENCH_DIR, 'out', 'data'),
    work: path.join(BENCH_DIR, 'out', 'work'),
    out: path.join(BENCH_DIR, 'out'),
    variants: false, verify: true, timeout: 3600, profile: false, profileOnly: false, keepGoing: false, waitQuiet: 30, settle: EXT4_RECENT_DELETE_S,
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
    const nonNeg = () => {
      const v = Number(val());
      if (!(v >= 0)) { console.error(`bench: ${flag} needs a number ≥ 0`); usage(2); }
      return v;
    };
    switch (flag) {
      case '--runs': o.runs = Math.floor(num()); break;
      case '--scale': o.scale = num(); break;
      case '--seed': o.seed = Math.floor(num()); break;
      case '--change': o.change = num(); if (o.change > 50) { console.error('bench: --change is a percentage ≤ 50'); usage(2); } break;
      case '--data': o.data = path.resolve(val()); break;
      case '--work': o.work = path.resolve(val()); break;
      case '--out': o.out = path.resolve(val()); break;
      case '--variants': o.variants = true; break;
      case '--no-verify': o.verify = false; break;
      case '--keep-going': o.keepGoing = true; break;
      case '--report': o.report = path.resolve(val()); break;
      case '--wait-quiet': o.waitQuiet = nonNeg(); break;
      case '--settle': o.settle = nonNeg(); break;
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

const LOG_NAMES = ['nginx-access', 'app-json', 'kubelet', 'java-app'];

/** Generates the dataset; writes manifest.json (summary) and files.json (every file's size and sha256). */
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
    const sha256 = writeKeystreamFile(path.join(tree, rel), keystream(`${spec.seed}:incompressible`), spec.incompressible.bytes);
    files.push({ rel, size: spec.incompressible.bytes, sha256 });
  }
  progress(`  dataset: incompressible file done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  // 2. compressible text logs, several files, four realistic styles
  fs.mkdirSync(path.join(tree, 'logs'), { recursive: true });
  for (let i = 0; i < spec.logs.files; i++) {
    const rel = `logs/${LOG_NAMES[i % 4]}-${p2(i)}.log`;
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
      const buf = text ? logText(r, size, Date.UTC(2025, 0, 1) + i * 1000) : ks(size);
      fs.mkdirSync(path.join(tree, sub), { recursive: true });
      fs.writeFileSync(path.join(tree, rel), buf);
      files.push({ rel, size, sha256: createHash('sha256').update(buf).digest('hex') });
    }
  }
  progress(`  dataset: small files done (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

  // fixed mtimes for files and directories (deepest first), so snapshots of the dataset are comparable
  const dirs = fixMtimes(tree, files);
  const manifest = {
    spec,
    generatedAt: new Date().toISOString(),
    files: files.length,
    dirs,
    bytes: files.reduce((a, f) => a + f.size, 0),
    digest: treeDigest(files),
  };
  fs.writeFileSync(path.join(dir, 'files.json'), JSON.stringify(files) + '\n');
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

/** The dataset's manifest and its per-file list (regenerated when missing or different). */
function ensureDataset(o) {
  // a run that was interrupted while the dataset was changed left an undo journal: apply it first
  if (fs.existsSync(path.join(o.data, 'undo', 'journal.json'))) {
    progress(`dataset: an interrupted run left ${path.join(o.data, 'undo')}; undoing its change first`);
    undoChange(o.data, null);
  }
  const spec = datasetSpec(o);
  const mfile = path.join(o.data, 'manifest.json');
  let m;
  try { m = JSON.parse(fs.readFileSync(mfile, 'utf8')); } catch { m = undefined; }
  const big = path.join(o.data, 'tree', 'incompressible', 'blob-000.bin');
  const ok = m && JSON.stringify(m.spec) === JSON.stringify(spec) && fs.existsSync(big) && fs.statSync(big).size === spec.incompressible.bytes;
  if (!ok) {
    progress(`dataset: generating in ${o.data} (scale ${o.scale}, seed ${o.seed}) ...`);
    m = generateDataset(o.data, spec);
  } else progress(`dataset: using cached ${o.data} (${m.files} files, ${fmtMiB(m.bytes)} MiB)`);
  const listFile = path.join(o.data, 'files.json');
  let list;
  try { list = JSON.parse(fs.readFileSync(listFile, 'utf8')); } catch { list = undefined; }
  if (!list || treeDigest(list) !== m.digest) {
    // a dataset generated by an older version of this script has no per-file list: hash it once
    progress('dataset: hashing every file once to record the per-file list (files.json)');
    const got = scanTree(path.join(o.data, 'tree'), { list: true });
    if (got.digest !== m.digest) throw new Error(`dataset in ${o.data} does not match its manifest (modified?); delete the directory to regenerate it`);
    list = got.list;
    fs.writeFileSync(listFile, JSON.stringify(list) + '\n');
  }
  return { manifest: m, list };
}

// ---------------------------------------------------------------------------------------------
// the "changed incremental": a deterministic change of about P % of the dataset, and its undo

const CHANGED_MTIME = new Date('2025-01-02T00:00:00Z');

/**
 * Which files change and how (deterministic for a dataset and P):
 * - every (100/P)-th small file (sorted by path) is rewritten with new content of the same size
 *   (new log text for .txt, new random bytes for .bin),
 * - a P % region in the middle of the incompressible file is overwritten with new random bytes,
 * - every log file grows by P % of new lines (logs are appended to, not rewritten).
 * Changed files get a new mtime, so both tools see them as changed.
 */
function changePlan(spec, list, pct) {
  const frac = pct / 100;
  const small = list.filter((f) => f.rel.startsWith('small/'));
  const nSmall = Math.max(1, Math.round(small.length * frac));
  const stride = small.length / nSmall;
  const smallPicked = Array.from({ length: nSmall }, (_, k) => small[Math.floor(k * stride + stride / 2)]);
  const bigFile = list.find((f) => f.rel.startsWith('incompressible/'));
  const logs = list.filter((f) => f.rel.startsWith('logs/'));
  const bigLen = Math.max(1, Math.round(bigFile.size * frac));
  return {
    pct,
    small: smallPicked.map((f) => ({ rel: f.rel, size: f.size, text: f.rel.endsWith('.txt') })),
    big: { rel: bigFile.rel, offset: Math.floor((bigFile.size - bigLen) * 0.4), length: bigLen },
    logs: logs.map((f) => ({ rel: f.rel, size: f.size, append: Math.max(1, Math.round(f.size * frac)), style: Math.max(0, LOG_NAMES.findIndex((n) => path.basename(f.rel).startsWith(n))) })),
    seed: spec.seed,
  };
}

function writeAt(file, buf, offset) {
  const fd = fs.openSync(file, 'r+');
  try { fs.writeSync(fd, buf, 0, buf.length, offset); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}

function readAt(file, offset, length) {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, offset);
    if (n !== length) throw new Error(`short read of ${file}`);
    return buf;
  } finally { fs.closeSync(fd); }
}

/**
 * Applies the plan to the dataset in place. First saves what it overwrites (and the sizes it
 * grows) to DATA/undo/ and fsyncs the journal, so undoChange() — or the next invocation after a
 * crash — restores the identical dataset. Returns the changed tree's manifest.
 */
function applyChange(dataDir, plan, list) {
  const tree = path.join(dataDir, 'tree');
  const undo = path.join(dataDir, 'undo');
  fs.rmSync(undo, { recursive: true, force: true });
  fs.mkdirSync(undo, { recursive: true });
  const entries = [];
  let n = 0;
  const save = (rel, offset, length) => {
    const file = `${n++}.bin`;
    fs.writeFileSync(path.join(undo, file), readAt(path.join(tree, rel), offset, length));
    entries.push({ rel, kind: 'overwrite', offset, length, file });
  };
  for (const f of plan.small) save(f.rel, 0, f.size);
  save(plan.big.rel, plan.big.offset, plan.big.length);
  for (const l of plan.logs) entries.push({ rel: l.rel, kind: 'truncate', size: l.size });
  const jfile = path.join(undo, 'journal.json');
  fs.writeFileSync(jfile, JSON.stringify({ entries }, null, 1) + '\n');
  for (const f of [...fs.readdirSync(undo).map((x) => path.join(undo, x)), undo]) {
    const fd = fs.openSync(f, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }

  const changed = new Map();
  for (const f of plan.small) {
    const seed = `${plan.seed}:change:${f.rel}`;
    const buf = f.text ? logText(prng(seed), f.size, Date.UTC(2025, 0, 2)) : keystream(seed)(f.size);
    fs.writeFileSync(path.join(tree, f.rel), buf);
    changed.set(f.rel, { rel: f.rel, size: f.size, sha256: createHash('sha256').update(buf).digest('hex') });
  }
  writeAt(path.join(tree, plan.big.rel), keystream(`${plan.seed}:change:big`)(plan.big.length), plan.big.offset);
  for (const l of plan.logs) {
    const fd = fs.openSync(path.join(tree, l.rel), 'a');
    writeLogs(fd, prng(`${plan.seed}:change:${l.rel}`), l.style, l.append, Date.UTC(2025, 0, 9));
    fs.closeSync(fd);
  }
  for (const rel of [plan.big.rel, ...plan.logs.map((l) => l.rel)]) changed.set(rel, { rel, ...hashFile(path.join(tree, rel)) });
  for (const rel of changed.keys()) fs.utimesSync(path.join(tree, rel), CHANGED_MTIME, CHANGED_MTIME);
  const files = list.map((f) => changed.get(f.rel) ?? f);
  const bytesChanged = plan.small.reduce((a, f) => a + f.size, 0) + plan.big.length + plan.logs.reduce((a, l) => a + (changed.get(l.rel).size - l.size), 0);
  return { files: files.length, bytes: files.reduce((a, f) => a + f.size, 0), digest: treeDigest(files), filesChanged: changed.size, bytesChanged };
}

/** Restores the dataset from DATA/undo/ and checks every touched file against the original list (when given). */
function undoChange(dataDir, list) {
  const tree = path.join(dataDir, 'tree');
  const undo = path.join(dataDir, 'undo');
  const jfile = path.join(undo, 'journal.json');
  if (!fs.existsSync(jfile)) return;
  const { entries } = JSON.parse(fs.readFileSync(jfile, 'utf8'));
  for (const e of entries) {
    const file = path.join(tree, e.rel);
    if (e.kind === 'overwrite') writeAt(file, fs.readFileSync(path.join(undo, e.file)), e.offset);
    else if (e.kind === 'truncate') fs.truncateSync(file, e.size);
    fs.utimesSync(file, FIXED_MTIME, FIXED_MTIME);
  }
  if (list) {
    const byRel = new Map(list.map((f) => [f.rel, f]));
    for (const rel of new Set(entries.map((e) => e.rel))) {
      const want = byRel.get(rel);
      const got = hashFile(path.join(tree, rel));
      if (!want || got.sha256 !== want.sha256 || got.size !== want.size) throw new Error(`undoing the change did not restore ${rel}; delete ${dataDir} to regenerate the dataset`);
    }
  }
  fs.rmSync(undo, { recursive: true, force: true });
  sync();
}

// ---------------------------------------------------------------------------------------------
// tools and one run

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
  { key: 'changed', title: '1% changed incremental backup' },
  { key: 'restore', title: 'restore latest' },
  { key: 'check', title: 'check --read-data' },
];

function opTitle(op, changePct) {
  return op.key === 'changed' ? `${changePct ?? 1}% changed incremental backup` : op.title;
}

/**
 * One run of one tool in a fresh directory: init, initial backup, unchanged incremental, (change
 * the dataset) changed incremental, restore latest, check --read-data; the dataset change is
 * undone before returning, whatever happens. The directory is kept (the caller deletes the whole
 * round's directories at once, then waits; see removeAndSettle).
 */
async function runTool(o, tool, run, ds, samples, failures) {
  const dir = path.join(o.work, `${tool.name}-run${run}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const repo = path.join(dir, 'repo');
  const target = path.join(dir, 'restore');
  const env = childEnv({ RESTIC_CACHE_DIR: path.join(dir, 'restic-cache') }); // restic's default cache, kept inside the work dir
  const logDir = path.join(o.work, 'logs');
  const { manifest, dataTree } = ds;
  const step = async (op, args) => {
    const label = `${tool.name}-run${run}-${op}`;
    // inputs in the page cache right before the timed command: the dataset for backups, the
    // repository (and restic's cache) for restore and check
    const warm = op === 'init' ? [] : op === 'restore' || op === 'check' ? [repo, env.RESTIC_CACHE_DIR] : [dataTree];
    const r = await measure(label, [...tool.bin, '-r', repo, ...args], { env, logDir, timeoutS: o.timeout, quietS: o.waitQuiet, warm });
    const sample = { tool: tool.name, run, op, wallS: r.wallS, timeWallS: r.timeWallS, maxRssKiB: r.maxRssKiB, userS: r.userS, sysS: r.sysS, otherCpuS: r.otherCpuS, busyBefore: r.busyBefore, contended: r.contended };
    if (op === 'backup' || op === 'incremental' || op === 'changed') sample.summary = parseBackupSummary(r.stdout + '\n' + r.stderrText);
    samples.push(sample);
    progress(measureLine(label, r));
    return sample;
  };
  const warnings = [];
  let verify = null;
  let op = 'init';
  try {
    await step('init', tool.init);
    op = 'backup';
    const b1 = await step('backup', ['backup', dataTree]);
    if (b1.summary.filesNew !== manifest.files) warnings.push(`initial backup reported ${b1.summary.filesNew} new files, dataset has ${manifest.files}`);
    op = 'incremental';
    const b2 = await step('incremental', ['backup', dataTree]);
    if (b2.summary.filesUnmodified !== manifest.files) warnings.push(`incremental backup reported ${b2.summary.filesUnmodified} unmodified files of ${manifest.files} (parent snapshot not used?)`);
    op = 'changed';
    const changed = applyChange(o.data, ds.plan, ds.list); // untimed
    if (ds.changed && ds.changed.digest !== changed.digest) throw new Error('the dataset change is not deterministic (digest differs between runs)');
    ds.changed = changed;
    const b3 = await step('changed', ['backup', dataTree]);
    const s = b3.summary;
    if (s.filesChanged !== changed.filesChanged || s.filesUnmodified !== manifest.files - changed.filesChanged || s.filesNew !== 0) {
      warnings.push(`changed incremental reported ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified files; expected 0, ${changed.filesChanged}, ${manifest.files - changed.filesChanged}`);
    }
    op = 'restore';
    fs.mkdirSync(target);
    await step('restore', ['restore', 'latest', '--target', target]);
    if (o.verify) {
      // untimed: the restore of the changed snapshot must equal the changed dataset
      const got = scanTree(path.join(target, dataTree));
      verify = { ok: got.digest === changed.digest, files: got.files, bytes: got.bytes };
      if (!verify.ok) warnings.push(`restore differs from the (changed) dataset: ${got.files} files / ${got.bytes} bytes restored, expected ${changed.files} / ${changed.bytes}`);
    }
    op = 'check';
    await step('check', ['check', '--read-data']);
  } catch (e) {
    if (!(e instanceof CommandFailed)) throw e;
    const f = failureRecord(e, { tool: tool.name, run, op });
    failures.push(f);
    reportFailure(f, o.timeout);
    if (!o.keepGoing) throw e;
    progress(`  --keep-going: skipping the rest of ${tool.name} run ${run}`);
    return { tool: tool.name, run, warnings, verify, failed: f.label, dir };
  } finally {
    undoChange(o.data, ds.list); // the next tool and run start from the identical dataset
  }
  for (const w of warnings) progress(`  WARNING ${tool.name} run ${run}: ${w}`);
  return { tool: tool.name, run, warnings, verify, dir };
}

// ---------------------------------------------------------------------------------------------
// statistics and reports

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

function comparisons(med, variant, failures, changePct) {
  const rows = [];
  for (const op of OPS) {
    const r = med.restic?.[op.key], c = med[variant]?.[op.key];
    const failed = (t) => failures.filter((f) => f.tool === t && f.op === op.key).length;
    if (!r && !c && !failed('restic') && !failed(variant)) continue;
    const ok = r && c && !failed('restic') && !failed(variant);
    rows.push({
      op: op.key, title: opTitle(op, changePct),
      resticS: r?.wallS ?? null, cairnS: c?.wallS ?? null, ratio: ok ? c.wallS / r.wallS : null,
      resticRssMiB: r?.maxRssMiB ?? null, cairnRssMiB: c?.maxRssMiB ?? null, rssRatio: ok ? c.maxRssMiB / r.maxRssMiB : null,
      resticCpuS: r?.cpuS ?? null, cairnCpuS: c?.cpuS ?? null, cpuRatio: ok ? c.cpuS / r.cpuS : null,
      resticN: r?.n ?? 0, cairnN: c?.n ?? 0, resticFailed: failed('restic'), cairnFailed: failed(variant),
    });
  }
  return rows;
}

/** The target sets of the project's issues, as ratios cairn/restic from the same invocation. */
const TARGETS = [
  { issue: 2, op: 'backup', title: 'initial backup time', limit: 0.5 },
  { issue: 2, op: 'restore', title: 'restore time', limit: 0.5 },
  { issue: 2, op: 'incremental', title: 'unchanged incremental time', limit: 1.0 },
  { issue: 2, rss: ['backup', 'incremental', 'restore'], title: 'peak RSS', limit: 2.0 },
  { issue: 3, op: 'backup', title: 'initial backup time', limit: 0.33 },
  { issue: 3, op: 'incremental', title: 'unchanged incremental time', limit: 0.5 },
  { issue: 3, op: 'restore', title: 'restore time', limit: 0.4 },
  { issue: 3, op: 'check', title: 'check --read-data time', limit: 0.5 },
  { issue: 3, rss: ['backup', 'incremental', 'changed', 'restore', 'check'], title: 'peak RSS', limit: 1.0 },
  { issue: 3, op: 'changed', title: 'changed incremental time', limit: null }, // reported, no target
];

function evaluateTargets(rows, runs) {
  const by = Object.fromEntries(rows.map((r) => [r.op, r]));
  const out = [];
  for (const t of TARGETS) {
    const ops = t.rss ?? [t.op];
    const f = ops.filter((k) => by[k]?.cairnFailed || by[k]?.resticFailed);
    const failed = f.length ? `failed: ${f.join(', ')}` : undefined;
    let value, name;
    let missing;
    if (t.rss) {
      const v = ops.map((k) => by[k]?.rssRatio).filter((x) => x != null);
      value = v.length ? Math.max(...v) : null;
      name = `${t.title} ≤ ${t.limit.toFixed(1)}× restic (worst of ${ops.join(', ')})`;
      const absent = ops.filter((k) => by[k]?.rssRatio == null && !(by[k]?.cairnFailed || by[k]?.resticFailed));
      if (v.length && absent.length) missing = `not measured: ${absent.join(', ')}`;
    } else {
      value = by[t.op]?.ratio ?? null;
      name = t.limit == null ? `${t.title} (no target)` : `${t.title} ≤ ${Number.isInteger(t.limit) ? t.limit.toFixed(1) : t.limit}× restic`;
    }
    const x = { issue: t.issue, name, ops, value, limit: t.limit, pass: t.limit == null ? null : value != null && value <= t.limit && !failed && !missing, ...(failed ? { failed } : {}) };
    const notes = [missing, runs < 3 ? `only ${runs} run(s): not a valid median of ≥ 3` : null].filter(Boolean);
    if (notes.length) x.note = notes.join('; ');
    out.push(x);
  }
  return out;
}

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

function targetText(t) {
  const notes = [t.failed, t.note].filter(Boolean);
  return `${t.name}: ${t.value == null ? 'n/a' : t.value.toFixed(2) + '×'}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

const mark = (t, md) => (t.pass == null ? (md ? 'ℹ️' : 'INFO') : t.pass ? (md ? '✅' : 'PASS') : (md ? '❌' : 'FAIL'));

/** Target lines grouped by issue (older results without an issue field count as issue 2). */
function targetGroups(targets) {
  const groups = new Map();
  for (const t of targets) {
    const k = t.issue ?? 2;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(t);
  }
  return [...groups.entries()].sort((a, b) => a[0] - b[0]);
}

const ISSUE_TITLE = { 2: 'issue 2', 3: 'issue 3' };

// ---------------------------------------------------------------------------------------------
// profiling run

async function profileRun(o, dataTree) {
  const profDir = path.join(o.out, 'prof');
  fs.rmSync(profDir, { recursive: true, force: true });
  fs.mkdirSync(profDir, { recursive: true });
  const dir = path.join(o.work, 'profile');
  await removeAndSettle([dir], o.settle, 'of an earlier profile');
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

function markdown(results) {
  const m = results.machine;
  const lines = [];
  const pct = results.config.changePct ?? 1;
  lines.push(`### cairn vs ${m.resticVersion?.split(' ').slice(0, 2).join(' ') ?? 'restic'}`);
  lines.push('');
  lines.push(`Dataset: ${m.dataset.files} files, ${m.dataset.MiB} MiB (one ${fmtMiB(m.dataset.spec.incompressible.bytes)} MiB incompressible file, ` +
    `${m.dataset.spec.logs.files} text logs of ${fmtMiB(m.dataset.spec.logs.bytesEach)} MiB, ${m.dataset.spec.small.files} small files of 0.5–16 KiB; scale ${m.dataset.scale}, seed ${m.dataset.seed}). ` +
    (m.dataset.changed ? `The changed incremental runs after rewriting ${pct} % of the small files, overwriting ${pct} % of the big file and appending ${pct} % to each log (${m.dataset.changed.filesChanged} files, ${fmtMiB(m.dataset.changed.bytesChanged)} MiB); restore and check then work on that snapshot. ` : '') +
    `Median of ${results.config.runs} interleaved runs, warm page cache, local repository format v2 on the same disk. ` +
    `${m.cpuModel}, ${m.cores} cores, Node ${m.nodeVersion}, cairn ${m.cairn.gitHead?.slice(0, 8) ?? '?'}${m.cairn.gitDirty ? ' (dirty)' : ''} with ${m.cairn.native ?? '?'} kernels, ${m.date.slice(0, 10)}.`);
  for (const v of Object.keys(results.comparisons)) {
    lines.push('');
    if (v !== 'cairn') lines.push(`Variant \`${v}\`:`, '');
    lines.push(mdTable(header(v), tableRows(results.comparisons[v])));
  }
  lines.push('', 'CPU time (user + sys, median seconds):', '');
  for (const v of Object.keys(results.comparisons)) lines.push(mdTable(cpuHeader(v), cpuRows(results.comparisons[v])), '');
  for (const [issue, ts] of targetGroups(results.targets)) {
    lines.push(`Targets (${ISSUE_TITLE[issue] ?? `issue ${issue}`}, cairn/restic in the same run):`, '');
    for (const t of ts) lines.push(`- ${mark(t, true)} ${targetText(t)}`);
    lines.push('');
  }
  const contended = results.samples.filter((x) => x.contended);
  if (contended.length) lines.push(`Note: ${contended.length} of ${results.samples.length} timed commands ran while other processes used > 10 % of the machine's CPU; see latest.json (otherCpuS).`, '');
  const warnings = [
    ...results.failures.map((f) => `${f.tool} run ${f.run}: \`${f.op}\` ${f.timedOut ? 'timed out' : `exited with ${f.exit}`}: ${stderrGist(f)}`),
    ...results.checks.flatMap((c) => c.warnings.map((w) => `${c.tool} run ${c.run}: ${w}`)),
  ];
  if (warnings.length) {
    lines.push('Warnings:', '');
    for (const w of warnings) lines.push(`- ${w}`);
  }
  return lines.join('\n').trimEnd() + '\n';
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
  for (const [issue, ts] of targetGroups(results.targets)) {
    progress(`\nTargets, ${ISSUE_TITLE[issue] ?? `issue ${issue}`} (cairn/restic in this run):`);
    for (const t of ts) progress(`  ${mark(t, false).padEnd(4)}  ${targetText(t)}`);
  }
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

function finishResults(results, names) {
  results.medians = computeMedians(results.samples, names);
  results.comparisons = Object.fromEntries(names.filter((n) => n !== 'restic').map((n) => [n, comparisons(results.medians, n, results.failures, results.config.changePct)]));
  results.targets = evaluateTargets(results.comparisons.cairn ?? [], results.config.runs);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.report) {
    const prepare = (results) => {
      results.failures ??= [];
      finishResults(results, Object.keys(results.config.commands));
    };
    rerenderReport(o.report, { prepare, print: printReport, markdown, chart: writeRatioChart });
    return;
  }
  checkPrerequisites({ restic: o.restic });
  o.cairn = resolveCairn(o, o.out);
  if (o.runs < 3) progress(`note: --runs ${o.runs} is below 3; the medians are not valid for the targets`);
  fs.mkdirSync(o.work, { recursive: true });
  fs.mkdirSync(o.out, { recursive: true });

  const { manifest, list } = ensureDataset(o);
  const dataTree = path.join(o.data, 'tree');
  // Every run's repository, restore and cache are kept until the whole benchmark is over when the
  // disk can hold them: a deletion less than ~6 minutes before a timed restore would charge it for
  // ext4 freeing the inodes (see EXT4_RECENT_DELETE_S). Otherwise at least a round's, deleted
  // after the round, followed by a --settle pause.
  let keepAll;
  {
    const perTool = manifest.bytes * 2.1 + manifest.files * 6 * 1024 + 64 * MiB;
    const need = tools(o).length * perTool + 1024 * MiB;
    const free = diskFree(o.work);
    keepAll = o.runs * (need - 1024 * MiB) + 1024 * MiB <= free.bytes;
    if (!keepAll) progress(`note: the disk cannot hold every run's repositories and restores; each round's are deleted after it, with a ${o.settle} s pause`);
    if (need > free.bytes) {
      console.error(`bench: not enough disk space in ${o.work}: one round keeps every tool's repository and restore, about ${(need / 1024 / MiB).toFixed(1)} GiB, ` +
        `and ${(free.bytes / 1024 / MiB).toFixed(1)} GiB are free; free space or use a smaller --scale`);
      process.exit(1);
    }
  }
  const ds = { manifest, list, dataTree, plan: changePlan(manifest.spec, list, o.change), changed: null };
  const machine = {
    ...machineBase({ restic: o.restic, cairn: o.cairn, workDir: o.work }),
    dataset: {
      dir: dataTree, scale: o.scale, seed: o.seed, files: manifest.files, dirs: manifest.dirs,
      bytes: manifest.bytes, MiB: +(manifest.bytes / MiB).toFixed(1), digest: manifest.digest, spec: manifest.spec,
    },
  };
  machine.cairn.frozenFrom = o.freeze ? path.join(ROOT, 'dist') : null;
  progress(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.nodeVersion}, ${machine.resticVersion}`);
  progress(`cairn: ${o.cairn} (build ${machine.cairn.buildDigest}) from git ${machine.cairn.gitHead?.slice(0, 8)}${machine.cairn.gitDirty ? ` + ${machine.cairn.gitDirty}` : ''}, kernels: ${machine.cairn.native}`);

  // page cache: dropping it needs privileges we cannot count on, so warm it instead, equally for all
  // tools; measure() reads each command's inputs again right before it starts (see its comment)
  progress('warm-up: reading the whole dataset once (untimed, cat > /dev/null); every timed command re-reads its inputs first');
  warmCache(dataTree);

  // leftovers of an earlier invocation: delete them now, not right before a timed restore
  const leftovers = fs.readdirSync(o.work).filter((e) => /-run\d+$/.test(e) || e === 'profile').map((e) => path.join(o.work, e));
  await removeAndSettle(leftovers, o.settle, 'left by an earlier invocation');

  if (o.profileOnly) {
    await profileRun(o, dataTree);
    return;
  }

  fs.rmSync(path.join(o.work, 'logs'), { recursive: true, force: true });
  const list2 = tools(o);
  const names = list2.map((t) => t.name);
  const samples = [];
  const checks = [];
  const failures = [];
  const results = {
    schema: 'cairn-bench/2',
    machine,
    config: {
      runs: o.runs, scale: o.scale, seed: o.seed, changePct: o.change, variants: o.variants, verify: o.verify, settleS: o.settle,
      order: 'interleaved: run r of every tool, then run r+1; each tool run: init, backup, unchanged incremental, changed incremental, restore latest, check --read-data',
      cleanup: 'every run\'s repositories and restores are kept until all runs are over when the disk holds them (else a round\'s, then deleted, synced, and settleS seconds waited); leftovers of an earlier invocation are deleted first, then settleS seconds',
      cache: 'warm (one untimed cat of the dataset before run 1)', password: 'same for all tools', repositoryVersion: 2,
      commands: Object.fromEntries(list2.map((t) => [t.name, { bin: t.bin, init: t.init }])),
    },
    samples, checks, failures, medians: null, comparisons: null, targets: null,
  };
  const finish = () => {
    if (ds.changed) machine.dataset.changed = { pct: o.change, filesChanged: ds.changed.filesChanged, bytesChanged: ds.changed.bytesChanged, digest: ds.changed.digest };
    finishResults(results, names);
  };

  try {
    const kept = [];
    for (let run = 1; run <= o.runs; run++) {
      progress(`\nrun ${run}/${o.runs}`);
      const dirs = [];
      for (const tool of list2) {
        const c = await runTool(o, tool, run, ds, samples, failures);
        dirs.push(c.dir);
        delete c.dir;
        checks.push(c);
      }
      if (keepAll) kept.push(...dirs);
      // every tool of this round is done: delete its repositories and restores, then let ext4 settle
      else await removeAndSettle(dirs, run < o.runs || o.profile ? o.settle : 0, `of run ${run}`);
    }
    await removeAndSettle(kept, 0, 'of every run');
  } catch (e) {
    if (!(e instanceof CommandFailed)) throw e;
    finish();
    const { file } = writeJsonResults(o.out, '', results);
    console.error(`partial results: ${file} (use --keep-going to measure the rest anyway)`);
    process.exit(1);
  }

  finish();
  const { file, latest } = writeJsonResults(o.out, '', results);
  fs.writeFileSync(path.join(o.out, 'latest.md'), markdown(results));
  const svg = path.join(o.out, 'latest.svg');
  writeRatioChart(results, svg);

  const warnings = printReport(results);
  progress(`\nwrote ${file}, ${latest}, ${path.join(o.out, 'latest.md')}, ${svg}`);

  if (o.profile) await profileRun(o, dataTree);
  if (warnings.length) process.exitCode = 1; // a failed command, a wrong restore or a missed parent is a failure, not a footnote
}

main().catch((e) => {
  console.error(`bench: ${e.stack ?? e}`);
  process.exit(1);
});
