#!/usr/bin/env node
// Scaling: how cairn's and restic's initial backup and restore grow with the data size and with
// the number of files, and whether peak memory grows with them.
//
//   node bench/scaling.mjs [--runs 3] [--sizes 128M,512M,1G,2G,4G] [--counts 1k,10k,100k,1M]
//                          [--shapes one,many] [--keep] ...
//
// For every point: generate a seeded dataset (cached under bench/out/scaling-data while the point
// runs), then interleaved runs (restic run 1, cairn run 1, restic run 2, ...) of init + initial
// backup + restore latest in fresh repositories, median of --runs. Fits a least-squares line per
// series: seconds per GiB / per 100k files, MiB of peak RSS per GiB / per 100k files, and the
// cairn/restic ratio of the slopes. See bench/README.md.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BENCH_DIR, ROOT, KiB, MiB, GiB, prng, keystream, logText, writeKeystreamFile, fixMtimes, treeDigest, scanTree,
  progress, fmtMiB, f2, textTable, mdTable, median, leastSquares, childEnv, removeAndSettle, diskFree, CommandFailed, measure,
  measureLine, reportFailure, stderrGist, failureRecord, parseBackupSummary, warmCache, checkPrerequisites, resolveCairn,
  machineBase, writeJsonResults, parseSizeArg, fmtSize,
  rerenderReport,
} from './lib.mjs';
import { writeScalingChart } from './chart.mjs';

const DEFAULT_SIZES = '128M,512M,1G,2G,4G';
const DEFAULT_COUNTS = '1k,10k,100k,1M';

function usage(code) {
  const text = `usage: node bench/scaling.mjs [options]

  --runs N          timed runs per tool and point, interleaved; the median is used (default 3)
  --sizes LIST      data sizes for the size series (default ${DEFAULT_SIZES}; "none" skips the series)
  --shapes LIST     shapes of the size series: one (a single incompressible file), many (incompressible
                    files of 64 KiB–2 MiB) (default one,many)
  --counts LIST     file counts for the count series, small files of 0.5–4 KiB, 60 % text
                    (default ${DEFAULT_COUNTS}; k = 1000, M = 1000000; "none" skips the series)
  --seed S          dataset seed (default 1)
  --data DIR        dataset cache (default bench/out/scaling-data)
  --work DIR        repositories and restores (default bench/out/scaling-work)
  --out DIR         results directory (default bench/out): scaling-latest.{json,md,svg}
  --keep            keep the generated datasets (reused by the next invocation); default: each
                    point's dataset is deleted when the point is done
  --settle SEC      after deleting repositories, restores or datasets: sync, then wait SEC seconds
                    (ext4 "recently deleted" inodes; default 8)
  --wait-quiet SEC  before each timed command, wait up to SEC seconds for an idle second (default 30)
  --no-verify       skip the untimed byte-for-byte check of each restore
  --keep-going      a failed command is reported and that tool's run skipped; default: stop
  --timeout SEC     kill and fail a command that runs longer than this (default 3600)
  --plan            only print the points and the disk space each needs, then exit
  --report FILE     only recompute fits, print them and write the Markdown and SVG next to FILE
  --restic PATH     restic binary (default: restic from PATH)
  --cairn PATH      cairn CLI script to run as is (default: a frozen copy of this checkout's dist/cli.js)
  --no-freeze       run dist/cli.js of this checkout directly instead of a frozen copy
`;
  (code ? process.stderr : process.stdout).write(text);
  process.exit(code);
}

function parseList(v, binary) {
  if (v === '' || v === 'none') return [];
  return v.split(',').filter(Boolean).map((s) => {
    const n = parseSizeArg(s, { binary });
    if (!(n > 0)) throw new Error(`bad value ${s}`);
    return n;
  });
}

function parseArgs(argv) {
  const o = {
    runs: 3, seed: 1, sizes: parseList(DEFAULT_SIZES, true), counts: parseList(DEFAULT_COUNTS, false), shapes: ['one', 'many'],
    data: path.join(BENCH_DIR, 'out', 'scaling-data'), work: path.join(BENCH_DIR, 'out', 'scaling-work'), out: path.join(BENCH_DIR, 'out'),
    keep: false, settle: 8, waitQuiet: 30, verify: true, keepGoing: false, timeout: 3600, restic: 'restic', cairn: null, freeze: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) { console.error(`scaling: ${flag} needs a value`); usage(2); }
      return v;
    };
    const num = (min = 0) => {
      const v = Number(val());
      if (!(v >= min) || !Number.isFinite(v)) { console.error(`scaling: ${flag} needs a number ≥ ${min}`); usage(2); }
      return v;
    };
    try {
      switch (flag) {
        case '--runs': o.runs = Math.floor(num(1)); break;
        case '--sizes': o.sizes = parseList(val(), true); break;
        case '--counts': o.counts = parseList(val(), false); break;
        case '--shapes': o.shapes = val().split(',').filter(Boolean); if (o.shapes.some((s) => s !== 'one' && s !== 'many')) throw new Error('shapes are one, many'); break;
        case '--seed': o.seed = Math.floor(num(1)); break;
        case '--data': o.data = path.resolve(val()); break;
        case '--work': o.work = path.resolve(val()); break;
        case '--out': o.out = path.resolve(val()); break;
        case '--keep': o.keep = true; break;
        case '--plan': o.plan = true; break;
        case '--settle': o.settle = num(0); break;
        case '--wait-quiet': o.waitQuiet = num(0); break;
        case '--no-verify': o.verify = false; break;
        case '--keep-going': o.keepGoing = true; break;
        case '--timeout': o.timeout = num(1); break;
        case '--report': o.report = path.resolve(val()); break;
        case '--restic': o.restic = val(); break;
        case '--cairn': o.cairn = path.resolve(val()); o.freeze = false; break;
        case '--no-freeze': o.freeze = false; break;
        case '-h': case '--help': usage(0); break;
        default: console.error(`scaling: unknown option ${a}`); usage(2);
      }
    } catch (e) {
      console.error(`scaling: ${flag}: ${e.message}`);
      usage(2);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// points and their datasets

const SMALL_MIN = 512, SMALL_MAX = 4 * KiB, MANY_MIN = 64 * KiB, MANY_MAX = 2 * MiB;

function points(o) {
  const list = [];
  for (const shape of o.shapes) {
    for (const bytes of o.sizes) list.push({ id: `size-${shape}-${fmtSize(bytes)}`, series: `size-${shape}`, shape, bytes });
  }
  for (const files of o.counts) list.push({ id: `count-${fmtSize(files, { binary: false })}`, series: 'count', files });
  return list;
}

function pointSpec(o, p) {
  if (p.series === 'count') return { generator: 'cairn-bench-scaling/1', seed: o.seed, kind: 'count', files: p.files, minBytes: SMALL_MIN, maxBytes: SMALL_MAX, textShare: 0.6, perDir: 500 };
  if (p.shape === 'one') return { generator: 'cairn-bench-scaling/1', seed: o.seed, kind: 'one', bytes: p.bytes };
  return { generator: 'cairn-bench-scaling/1', seed: o.seed, kind: 'many', bytes: p.bytes, minBytes: MANY_MIN, maxBytes: MANY_MAX, perDir: 100 };
}

/** Expected files and bytes of a point (exact for 'one', averages otherwise). */
function pointEstimate(spec) {
  if (spec.kind === 'one') return { files: 1, bytes: spec.bytes, dirs: 1 };
  if (spec.kind === 'many') {
    const files = Math.ceil(spec.bytes / ((spec.minBytes + spec.maxBytes) / 2));
    return { files, bytes: spec.bytes, dirs: Math.ceil(files / spec.perDir) + 1 };
  }
  return { files: spec.files, bytes: spec.files * ((spec.minBytes + spec.maxBytes) / 2), dirs: Math.ceil(spec.files / spec.perDir) + Math.ceil(spec.files / (spec.perDir * 100)) + 1 };
}

/** Bytes a tree of that shape takes on disk (4 KiB blocks, one block per directory), with 5 % slack. */
function onDisk(est, blockSize) {
  const avg = est.bytes / est.files;
  // small files take whole blocks; larger ones waste half a block on average
  const files = avg < 2 * blockSize ? est.files * Math.ceil(avg / blockSize) * blockSize : est.bytes + est.files * (blockSize / 2);
  return Math.ceil((files + est.dirs * blockSize) * 1.05);
}

/** Disk bytes one point needs: its dataset (unless cached) and, per tool run, a repository, a restore and restic's cache. */
function pointNeed(spec, blockSize, cached) {
  const est = pointEstimate(spec);
  const tree = onDisk(est, blockSize);
  const repo = est.bytes * 1.05 + est.files * 256 + 64 * MiB;
  const cache = est.files * 256 + 16 * MiB;
  return { dataset: cached ? 0 : tree, perTool: repo + tree + cache, inodesDataset: est.files + est.dirs, inodesPerTool: est.files + est.dirs + 10000, est };
}

function relOf(spec, i, ext) {
  const p3 = (n) => String(n).padStart(3, '0');
  if (spec.kind === 'many') return `many/${p3(Math.floor(i / spec.perDir))}/file-${String(i).padStart(6, '0')}.bin`;
  return `small/${p3(Math.floor(i / (spec.perDir * 100)))}/${p3(Math.floor(i / spec.perDir) % 100)}/f${String(i).padStart(7, '0')}.${ext}`;
}

function generatePoint(dir, spec) {
  const tree = path.join(dir, 'tree');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(tree, { recursive: true });
  const files = [];
  const t0 = Date.now();
  const seed = `${spec.seed}:scaling:${spec.kind}:${spec.bytes ?? spec.files}`;
  if (spec.kind === 'one') {
    fs.mkdirSync(path.join(tree, 'one'));
    const rel = 'one/blob.bin';
    files.push({ rel, size: spec.bytes, sha256: writeKeystreamFile(path.join(tree, rel), keystream(seed), spec.bytes) });
  } else if (spec.kind === 'many') {
    const r = prng(seed);
    const ks = keystream(seed);
    let left = spec.bytes;
    for (let i = 0; left > 0; i++) {
      let size = r.int(spec.minBytes, spec.maxBytes);
      if (left - size < spec.minBytes) size = left; // the last file takes the rest
      const rel = relOf(spec, i);
      fs.mkdirSync(path.dirname(path.join(tree, rel)), { recursive: true });
      files.push({ rel, size, sha256: writeKeystreamFile(path.join(tree, rel), ks, size) });
      left -= size;
    }
  } else {
    const r = prng(seed);
    const ks = keystream(seed);
    let lastDir = '';
    for (let i = 0; i < spec.files; i++) {
      const size = r.int(spec.minBytes, spec.maxBytes);
      const text = r.float() < spec.textShare;
      const rel = relOf(spec, i, text ? 'txt' : 'bin');
      const d = path.dirname(rel);
      if (d !== lastDir) { fs.mkdirSync(path.join(tree, d), { recursive: true }); lastDir = d; }
      const buf = text ? logText(r, size, Date.UTC(2025, 0, 1) + i * 10) : ks(size);
      fs.writeFileSync(path.join(tree, rel), buf);
      files.push({ rel, size, sha256: createHash('sha256').update(buf).digest('hex') });
      if ((i + 1) % 200000 === 0) progress(`    ${i + 1} files (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    }
  }
  const dirs = fixMtimes(tree, files);
  const manifest = { spec, generatedAt: new Date().toISOString(), files: files.length, dirs, bytes: files.reduce((a, f) => a + f.size, 0), digest: treeDigest(files), generateS: +((Date.now() - t0) / 1000).toFixed(1) };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}

function cachedManifest(dir, spec) {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    if (JSON.stringify(m.spec) === JSON.stringify(spec) && fs.existsSync(path.join(dir, 'tree'))) return m;
  } catch { /* none */ }
  return null;
}

// ---------------------------------------------------------------------------------------------
// statistics

const OPS = ['backup', 'restore'];
const TOOLS = ['restic', 'cairn'];

function pointMedians(samples, pointId) {
  const med = {};
  for (const t of TOOLS) {
    med[t] = {};
    for (const op of OPS) {
      const ss = samples.filter((s) => s.point === pointId && s.tool === t && s.op === op);
      if (!ss.length) continue;
      med[t][op] = {
        n: ss.length,
        wallS: median(ss.map((s) => s.wallS)),
        maxRssMiB: median(ss.map((s) => s.maxRssKiB / 1024)),
        cpuS: median(ss.map((s) => s.userS + s.sysS)),
      };
    }
  }
  return med;
}

/** x of a point in its series' unit: GiB for the size series, 100k files for the count series. */
const xOf = (p) => (p.series === 'count' ? p.files / 1e5 : p.bytes / GiB);
const UNIT = (series) => (series === 'count' ? '100k files' : 'GiB');

function computeFits(pts) {
  const fits = {};
  for (const series of [...new Set(pts.map((p) => p.series))]) {
    const sp = pts.filter((p) => p.series === series && p.medians);
    const f = { unit: UNIT(series), points: sp.length, ratio: {} };
    for (const t of TOOLS) {
      f[t] = {};
      for (const op of OPS) f[t][op] = leastSquares(sp.map((p) => [xOf(p), p.medians[t]?.[op]?.wallS]));
      f[t].rss = leastSquares(sp.map((p) => [xOf(p), Math.max(p.medians[t]?.backup?.maxRssMiB ?? NaN, p.medians[t]?.restore?.maxRssMiB ?? NaN)]));
      f[t].rssBackup = leastSquares(sp.map((p) => [xOf(p), p.medians[t]?.backup?.maxRssMiB]));
      f[t].rssRestore = leastSquares(sp.map((p) => [xOf(p), p.medians[t]?.restore?.maxRssMiB]));
    }
    for (const k of ['backup', 'restore', 'rss']) {
      const c = f.cairn[k]?.slope, r = f.restic[k]?.slope;
      f.ratio[k] = Number.isFinite(c) && Number.isFinite(r) && r > 0 && c >= 0 ? c / r : null; // a negative slope is noise (too few or too close points)
    }
    fits[series] = f;
  }
  return fits;
}

function finish(results) {
  for (const p of results.points) p.medians = pointMedians(results.samples, p.id);
  results.fits = computeFits(results.points);
}

const ratio = (c, r) => (Number.isFinite(c) && Number.isFinite(r) && r > 0 ? `${f2(c / r)}×` : 'n/a');

function pointRows(results) {
  return results.points.filter((p) => p.medians).map((p) => {
    const m = p.medians;
    const rss = (t) => Math.max(m[t]?.backup?.maxRssMiB ?? NaN, m[t]?.restore?.maxRssMiB ?? NaN);
    return [
      p.id, String(p.manifest?.files ?? p.files ?? ''), fmtMiB(p.manifest?.bytes ?? p.bytes ?? 0),
      f2(m.restic?.backup?.wallS), f2(m.cairn?.backup?.wallS), ratio(m.cairn?.backup?.wallS, m.restic?.backup?.wallS),
      f2(m.restic?.restore?.wallS), f2(m.cairn?.restore?.wallS), ratio(m.cairn?.restore?.wallS, m.restic?.restore?.wallS),
      rss('restic').toFixed(1), rss('cairn').toFixed(1), ratio(rss('cairn'), rss('restic')),
    ];
  });
}
const POINT_HEAD = ['point', 'files', 'MiB', 'restic backup s', 'cairn backup s', 'ratio', 'restic restore s', 'cairn restore s', 'ratio', 'restic peak RSS MiB', 'cairn peak RSS MiB', 'RSS ratio'];

const slopeCell = (fit) => (fit ? `${fit.slope.toFixed(Math.abs(fit.slope) < 1 ? 3 : 2)} (r² ${fit.r2.toFixed(2)})` : 'n/a');

function fitRows(results) {
  const rows = [];
  for (const [series, f] of Object.entries(results.fits)) {
    for (const [k, what] of [['backup', `backup s per ${f.unit}`], ['restore', `restore s per ${f.unit}`], ['rss', `peak RSS MiB per ${f.unit}`]]) {
      rows.push([series, what, slopeCell(f.restic[k]), slopeCell(f.cairn[k]), f.ratio[k] == null ? 'n/a' : `${f2(f.ratio[k])}×`,
        f.restic[k] ? f.restic[k].intercept.toFixed(k === 'rss' ? 1 : 2) : 'n/a', f.cairn[k] ? f.cairn[k].intercept.toFixed(k === 'rss' ? 1 : 2) : 'n/a']);
    }
  }
  return rows;
}
const FIT_HEAD = ['series', 'slope', 'restic', 'cairn', 'ratio cairn/restic', 'restic intercept', 'cairn intercept'];

function printReport(results) {
  progress(`\nScaling results: median of ${results.config.runs} run(s) per point (wall time; peak RSS = max of backup and restore)`);
  progress('');
  progress(textTable(POINT_HEAD, pointRows(results)));
  progress('\nLeast-squares fits (slope per unit; intercept = fixed cost at zero size):');
  progress('');
  progress(textTable(FIT_HEAD, fitRows(results)));
  const contended = results.samples.filter((s) => s.contended);
  if (contended.length) progress(`\nNote: ${contended.length} of ${results.samples.length} timed commands shared the CPU with other work; see the JSON (otherCpuS).`);
  const warnings = [
    ...results.failures.map((f) => `${f.point} ${f.tool} run ${f.run}: ${f.op} ${f.timedOut ? 'timed out' : `exited with ${f.exit}`}: ${stderrGist(f)}`),
    ...results.checks.flatMap((c) => c.warnings.map((w) => `${c.point} ${c.tool} run ${c.run}: ${w}`)),
  ];
  if (warnings.length) {
    progress('\nFailures and warnings:');
    for (const w of warnings) progress('  ' + w);
  }
  return warnings;
}

function markdown(results) {
  const m = results.machine;
  const lines = [];
  lines.push(`### Scaling: cairn vs ${m.resticVersion?.split(' ').slice(0, 2).join(' ') ?? 'restic'}`, '');
  lines.push(`Initial backup and restore latest into a fresh local repository (format v2), median of ${results.config.runs} interleaved run(s) per point, warm page cache. ` +
    'Size series: one incompressible file (`one`) or incompressible files of 64 KiB–2 MiB (`many`); count series: small files of 0.5–4 KiB (60 % log text). ' +
    `Peak RSS is the larger of backup and restore. ${m.cpuModel}, ${m.cores} cores, Node ${m.nodeVersion}, cairn ${m.cairn.gitHead?.slice(0, 8) ?? '?'}${m.cairn.gitDirty ? ' (dirty)' : ''}, ${m.date.slice(0, 10)}.`, '');
  lines.push(mdTable(POINT_HEAD, pointRows(results)), '');
  lines.push('Least-squares fits (slope per GiB or per 100k files, with r²; the intercept is the fixed cost):', '');
  lines.push(mdTable(FIT_HEAD, fitRows(results)), '');
  const contended = results.samples.filter((s) => s.contended);
  if (contended.length) lines.push(`Note: ${contended.length} of ${results.samples.length} timed commands ran while other processes used > 10 % of the machine's CPU.`, '');
  return lines.join('\n').trimEnd() + '\n';
}

// ---------------------------------------------------------------------------------------------
// main

async function runPoint(o, p, ds, results, cairn) {
  const tools = [
    { name: 'restic', bin: [o.restic] },
    { name: 'cairn', bin: [process.execPath, cairn] },
  ];
  const logDir = path.join(o.work, 'logs');
  for (let run = 1; run <= o.runs; run++) {
    const dirs = [];
    for (const tool of tools) {
      const dir = path.join(o.work, p.id, `${tool.name}-run${run}`);
      dirs.push(dir);
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
      const repo = path.join(dir, 'repo');
      const target = path.join(dir, 'restore');
      const env = childEnv({ RESTIC_CACHE_DIR: path.join(dir, 'restic-cache') });
      const warnings = [];
      let op = 'init';
      const step = async (key, args) => {
        op = key;
        const label = `${p.id}-${tool.name}-run${run}-${key}`;
        const warm = key === 'init' ? [] : key === 'backup' ? [ds.tree] : [repo, env.RESTIC_CACHE_DIR];
        const r = await measure(label, [...tool.bin, '-r', repo, ...args], { env, logDir, timeoutS: o.timeout, quietS: key === 'init' ? 0 : o.waitQuiet, warm });
        const s = { point: p.id, tool: tool.name, run, op: key, wallS: r.wallS, maxRssKiB: r.maxRssKiB, userS: r.userS, sysS: r.sysS, otherCpuS: r.otherCpuS, contended: r.contended };
        if (key === 'backup') s.summary = parseBackupSummary(r.stdout + '\n' + r.stderrText);
        if (key !== 'init') results.samples.push(s);
        progress(measureLine(label, r, 40));
        return s;
      };
      let verify = null;
      try {
        await step('init', ['init', '--repository-version', '2']);
        const b = await step('backup', ['backup', ds.tree]);
        if (b.summary.filesNew !== ds.manifest.files) warnings.push(`backup reported ${b.summary.filesNew} new files, dataset has ${ds.manifest.files}`);
        fs.mkdirSync(target);
        await step('restore', ['restore', 'latest', '--target', target]);
        if (o.verify) {
          const got = scanTree(path.join(target, ds.tree));
          verify = { ok: got.digest === ds.manifest.digest, files: got.files, bytes: got.bytes };
          if (!verify.ok) warnings.push(`restore differs from the dataset: ${got.files} files / ${got.bytes} bytes, expected ${ds.manifest.files} / ${ds.manifest.bytes}`);
        }
      } catch (e) {
        if (!(e instanceof CommandFailed)) throw e;
        const f = failureRecord(e, { point: p.id, tool: tool.name, run, op });
        results.failures.push(f);
        reportFailure(f, o.timeout);
        if (!o.keepGoing) throw e;
      }
      for (const w of warnings) progress(`  WARNING ${p.id} ${tool.name} run ${run}: ${w}`);
      results.checks.push({ point: p.id, tool: tool.name, run, warnings, verify });
      if (ds.perTool) await removeAndSettle([dir], o.settle, `of ${p.id} ${tool.name} run ${run} (disk space)`);
    }
    // both tools of this run are done: delete their repositories and restores, then let ext4 settle
    await removeAndSettle(dirs, o.settle, `of ${p.id} run ${run}`);
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.report) {
    rerenderReport(o.report, { prepare: finish, print: printReport, markdown, chart: writeScalingChart });
    return;
  }
  const pts = points(o);
  if (!pts.length) {
    console.error('scaling: no points (--sizes none and --counts none)');
    process.exit(2);
  }
  checkPrerequisites({ restic: o.restic });

  // disk space: refuse before generating anything when the largest point cannot fit even with one
  // tool's repository and restore at a time (with --keep: plus every dataset)
  const free = diskFree(o.work);
  const needs = pts.map((p) => pointNeed(pointSpec(o, p), free.blockSize, !!cachedManifest(path.join(o.data, p.id), pointSpec(o, p))));
  const kept = o.keep ? needs.reduce((a, n) => a + n.dataset, 0) : 0;
  const keptInodes = o.keep ? needs.reduce((a, n) => a + n.inodesDataset, 0) : 0;
  const need = (o.keep ? kept + Math.max(...needs.map((n) => n.perTool)) : Math.max(...needs.map((n) => n.dataset + n.perTool))) + GiB;
  const needInodes = (o.keep ? keptInodes : Math.max(...needs.map((n) => n.inodesDataset))) + Math.max(...needs.map((n) => n.inodesPerTool));
  progress(`scaling: ${pts.length} points (${pts.map((p) => p.id).join(', ')}), ${o.runs} run(s) each`);
  progress(`disk: need at least ${(need / GiB).toFixed(1)} GiB and ${needInodes} inodes at the peak${o.keep ? ' (--keep: all datasets kept)' : ''}; ${(free.bytes / GiB).toFixed(1)} GiB and ${free.inodes} inodes free on ${o.work}`);
  if (o.plan) {
    for (let i = 0; i < pts.length; i++) {
      const n = needs[i];
      progress(`  ${pts[i].id.padEnd(16)} ≈ ${String(n.est.files).padStart(8)} files, ${(n.est.bytes / GiB).toFixed(2)} GiB; dataset ${(n.dataset / GiB).toFixed(1)} GiB on disk${n.dataset ? '' : ' (cached)'}, ` +
        `each tool's repository + restore + cache ${(n.perTool / GiB).toFixed(1)} GiB; ${n.dataset + 2 * n.perTool + GiB <= free.bytes ? 'both tools kept until the run ends' : n.dataset + n.perTool + GiB <= free.bytes ? 'each tool cleaned up after its run (disk)' : 'DOES NOT FIT'}`);
    }
    return;
  }
  if (need > free.bytes || needInodes > free.inodes) {
    console.error(`scaling: not enough disk space: the largest point needs at least ${(need / GiB).toFixed(1)} GiB / ${needInodes} inodes (its dataset, one tool's repository, restore and cache${o.keep ? ', and every kept dataset' : ''}), ` +
      `only ${(free.bytes / GiB).toFixed(1)} GiB / ${free.inodes} inodes are free. Leave out the largest points (--sizes, --counts), drop --keep, or free space.`);
    process.exit(1);
  }

  fs.mkdirSync(o.out, { recursive: true });
  fs.mkdirSync(o.work, { recursive: true });
  fs.mkdirSync(o.data, { recursive: true });
  const cairn = resolveCairn(o, o.out);
  const machine = machineBase({ restic: o.restic, cairn, workDir: o.work });
  machine.cairn.frozenFrom = o.freeze ? path.join(ROOT, 'dist') : null;
  progress(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.nodeVersion}, ${machine.resticVersion}`);
  progress(`cairn: ${cairn} (build ${machine.cairn.buildDigest}) from git ${machine.cairn.gitHead?.slice(0, 8)}${machine.cairn.gitDirty ? ` + ${machine.cairn.gitDirty}` : ''}`);
  fs.rmSync(path.join(o.work, 'logs'), { recursive: true, force: true });
  await removeAndSettle(fs.readdirSync(o.work).map((e) => path.join(o.work, e)), o.settle, 'left by an earlier invocation');

  const results = {
    schema: 'cairn-bench-scaling/1',
    machine,
    config: {
      runs: o.runs, seed: o.seed, sizes: o.sizes, counts: o.counts, shapes: o.shapes, verify: o.verify, settleS: o.settle, keep: o.keep,
      order: 'per point: restic run 1, cairn run 1, restic run 2, ...; each run: init (not reported), initial backup, restore latest in a fresh repository',
      cleanup: 'both tools\' repositories and restores of a run are deleted after that run, then sync and settleS seconds; a point\'s dataset after the point (unless keep)',
      units: { size: 'GiB', count: '100k files', rss: 'MiB' },
    },
    points: pts.map((p) => ({ ...p })), samples: [], checks: [], failures: [], fits: null,
  };
  const save = () => {
    finish(results);
    return writeJsonResults(o.out, 'scaling', results);
  };

  try {
    for (const p of results.points) {
      const spec = pointSpec(o, p);
      const dir = path.join(o.data, p.id);
      let manifest = cachedManifest(dir, spec);
      const n = pointNeed(spec, free.blockSize, !!manifest);
      const now = diskFree(o.work);
      if (n.dataset + n.perTool + GiB > now.bytes || n.inodesDataset + n.inodesPerTool > now.inodes) {
        throw new Error(`not enough disk space for ${p.id}: needs at least ${((n.dataset + n.perTool + GiB) / GiB).toFixed(1)} GiB, ${(now.bytes / GiB).toFixed(1)} GiB free`);
      }
      // Both tools' repositories and restores are kept until the run is over when they fit; else
      // each tool's are deleted right after its run (then sync and --settle seconds, too).
      const perTool = n.dataset + 2 * n.perTool + GiB > now.bytes || n.inodesDataset + 2 * n.inodesPerTool > now.inodes;
      progress(`\npoint ${p.id}${perTool ? ` (disk: ${(now.bytes / GiB).toFixed(1)} GiB free, so each tool's repository and restore are deleted right after its run, then sync + ${o.settle} s)` : ''}`);
      p.cleanup = perTool ? 'after each tool' : 'after each run';
      if (!manifest) {
        progress(`  generating ${dir} ...`);
        manifest = generatePoint(dir, spec);
        progress(`  generated ${manifest.files} files, ${fmtMiB(manifest.bytes)} MiB in ${manifest.generateS} s`);
      } else progress(`  using cached ${dir} (${manifest.files} files, ${fmtMiB(manifest.bytes)} MiB)`);
      p.manifest = { files: manifest.files, dirs: manifest.dirs, bytes: manifest.bytes, digest: manifest.digest };
      p.files = manifest.files;
      p.bytes = manifest.bytes;
      const tree = path.join(dir, 'tree');
      warmCache(tree);
      await runPoint(o, p, { tree, manifest, perTool }, results, cairn);
      fs.rmSync(path.join(o.work, p.id), { recursive: true, force: true }); // empty by now
      save();
      if (!o.keep) await removeAndSettle([dir], o.settle, `(dataset of ${p.id})`);
    }
  } catch (e) {
    const { file } = save();
    if (e instanceof CommandFailed) {
      console.error(`partial results: ${file} (use --keep-going to measure the rest anyway)`);
      process.exit(1);
    }
    console.error(`partial results: ${file}`);
    throw e;
  }
  const { file, latest } = save();
  const md = path.join(o.out, 'scaling-latest.md');
  fs.writeFileSync(md, markdown(results));
  const svg = writeScalingChart(results, path.join(o.out, 'scaling-latest.svg'));
  const warnings = printReport(results);
  progress(`\nwrote ${file}, ${latest}, ${md}, ${svg}`);
  if (!o.keep) try { fs.rmdirSync(o.data); } catch { /* kept datasets of an earlier --keep run */ }
  if (warnings.length) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`scaling: ${e.stack ?? e}`);
  process.exit(1);
});
