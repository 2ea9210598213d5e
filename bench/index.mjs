#!/usr/bin/env node
// In-memory index benchmark: how long cairn takes to load the index of a repository with N
// blobs, and how many bytes per blob the loaded index keeps in memory.
//
//   node bench/index.mjs [--blobs 1M,10M] [--runs 3] [--no-restic] [--keep]
//
// For each N: a real repository (cairn init, format v2) gets synthetic, encrypted index files
// (restic's JSON, zstd-compressed, written with cairn's own Repository.saveUnpacked) describing N
// blobs in packs that do not exist. Then, each in a fresh `node --expose-gc` process:
//   master   Repository.loadIndex() — the code path of backup, restore, ls, stats (MasterIndex)
//   compact  CompactIndex.load()    — the code path of check, prune, copy (CompactIndex)
// memory = heapUsed + external (which includes arrayBuffers) after GC, minus the same before
// loading, divided by N. And end to end, both tools: `backup --dry-run` of one tiny file into
// that repository (loads the whole index, writes nothing; restic with --no-cache), wall time and
// peak RSS, with an empty repository as the zero point. See bench/README.md.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  BENCH_DIR, ROOT, MiB, GiB, PASSWORD, keystream, prng, progress, f1, f2, textTable, mdTable, median, leastSquares, childEnv,
  removeAndSettle, diskFree, CommandFailed, measure, measureLine, reportFailure, failureRecord, checkPrerequisites, resolveCairn,
  machineBase, writeJsonResults, parseSizeArg, fmtSize, stderrGist,
  rerenderReport,
} from './lib.mjs';
import { writeIndexChart } from './chart.mjs';

const TARGET_BYTES_PER_BLOB = 48;

function usage(code) {
  const text = `usage: node bench/index.mjs [options]

  --blobs LIST          numbers of blobs (default 1M,10M; k = 1000, M = 1000000)
  --runs N              measurements per point and kind; the median is reported (default 3)
  --blobs-per-pack N    blobs per pack (default 16; restic packs of 16 MiB hold a dozen 1 MiB chunks,
                        or thousands of small-file blobs)
  --blobs-per-index N   blobs per index file (default 50000, restic's limit for a full index)
  --tree-share F        share of packs that are tree packs (default 0.05)
  --kinds LIST          in-process measurements: master, compact (default master,compact)
  --no-restic           skip the end-to-end backup --dry-run comparison with restic
  --seed S              seed of the synthetic IDs and sizes (default 1)
  --data DIR            generated repositories (default bench/out/index-data)
  --out DIR             results directory (default bench/out): index-latest.{json,md,svg}
  --keep                keep the generated repositories (reused by the next invocation)
  --wait-quiet SEC      before each timed command, wait up to SEC seconds for an idle second (default 30)
  --timeout SEC         kill and fail a command that runs longer than this (default 3600)
  --report FILE         only recompute the summary from a results JSON and write .md/.svg next to it
  --restic PATH         restic binary (default: restic from PATH)
  --cairn PATH          cairn CLI script (its dist/ is imported; default: a frozen copy of this checkout's dist)
  --no-freeze           use this checkout's dist/ directly instead of a frozen copy
`;
  (code ? process.stderr : process.stdout).write(text);
  process.exit(code);
}

function parseArgs(argv) {
  const o = {
    blobs: [1e6, 1e7], runs: 3, perPack: 16, perIndex: 50000, treeShare: 0.05, kinds: ['master', 'compact'], restic: 'restic', compareRestic: true,
    seed: 1, data: path.join(BENCH_DIR, 'out', 'index-data'), out: path.join(BENCH_DIR, 'out'), keep: false, waitQuiet: 30, timeout: 3600,
    cairn: null, freeze: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const val = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) { console.error(`index: ${flag} needs a value`); usage(2); }
      return v;
    };
    const num = (min) => {
      const v = Number(val());
      if (!(v >= min) || !Number.isFinite(v)) { console.error(`index: ${flag} needs a number ≥ ${min}`); usage(2); }
      return v;
    };
    switch (flag) {
      case '--blobs': o.blobs = val().split(',').filter(Boolean).map((s) => parseSizeArg(s, { binary: false })); break;
      case '--runs': o.runs = Math.floor(num(1)); break;
      case '--blobs-per-pack': o.perPack = Math.floor(num(1)); break;
      case '--blobs-per-index': o.perIndex = Math.floor(num(1)); break;
      case '--tree-share': o.treeShare = num(0); break;
      case '--kinds': o.kinds = val().split(',').filter(Boolean); if (o.kinds.some((k) => k !== 'master' && k !== 'compact')) usage(2); break;
      case '--no-restic': o.compareRestic = false; break;
      case '--seed': o.seed = Math.floor(num(1)); break;
      case '--data': o.data = path.resolve(val()); break;
      case '--out': o.out = path.resolve(val()); break;
      case '--keep': o.keep = true; break;
      case '--wait-quiet': o.waitQuiet = num(0); break;
      case '--timeout': o.timeout = num(1); break;
      case '--report': o.report = path.resolve(val()); break;
      case '--restic': o.restic = val(); break;
      case '--cairn': o.cairn = path.resolve(val()); o.freeze = false; break;
      case '--no-freeze': o.freeze = false; break;
      case '-h': case '--help': usage(0); break;
      // internal: one measurement in this (fresh) process
      case '--child': o.child = val(); break;
      case '--repo': o.repo = path.resolve(val()); break;
      case '--dist': o.dist = path.resolve(val()); break;
      case '--expect': o.expect = Number(val()); break;
      default: console.error(`index: unknown option ${a}`); usage(2);
    }
  }
  return o;
}

const importDist = (dist, rel) => import(pathToFileURL(path.join(dist, rel)).href);

// ---------------------------------------------------------------------------------------------
// the child: one measurement in a fresh process

function mem() {
  for (let i = 0; i < 4; i++) globalThis.gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss };
}

async function child(o) {
  if (typeof globalThis.gc !== 'function') throw new Error('run the child with node --expose-gc');
  const { Repository } = await importDist(o.dist, 'repository/repository.js');
  const { LocalBackend } = await importDist(o.dist, 'backend/local.js');
  const { CompactIndex } = await importDist(o.dist, 'repository/compact-index.js');
  const repo = await Repository.open(new LocalBackend(o.repo), PASSWORD);
  // a first, tiny query so that every lazily built structure of an empty index exists before the baseline
  repo.index.has('data', '0'.repeat(64));
  const m0 = mem();
  const t0 = process.hrtime.bigint();
  let count, keep, settleS = 0;
  if (o.child === 'master') {
    await repo.loadIndex();
    const t1 = process.hrtime.bigint();
    // the first lookup after a bulk load moves the recent entries into the compact form
    repo.index.has('data', 'f'.repeat(64));
    settleS = Number(process.hrtime.bigint() - t1) / 1e9;
    count = repo.index.size;
    keep = repo.index;
  } else {
    keep = await CompactIndex.load(repo);
    count = keep.entryCount;
  }
  const loadS = Number(process.hrtime.bigint() - t0) / 1e9 - settleS;
  const m1 = mem();
  const delta = { heapUsed: m1.heapUsed - m0.heapUsed, external: m1.external - m0.external, arrayBuffers: m1.arrayBuffers - m0.arrayBuffers };
  const bytes = delta.heapUsed + delta.external; // external includes arrayBuffers (Node's definition)
  const out = { kind: o.child, blobs: count, expected: o.expect, loadS, settleS, bytes, bytesPerBlob: bytes / count, delta, before: m0, after: m1 };
  if (!keep) throw new Error('index vanished');
  process.stdout.write(JSON.stringify(out) + '\n');
}

// ---------------------------------------------------------------------------------------------
// synthetic repositories

function repoSpec(o, blobs) {
  return { generator: 'cairn-bench-index/1', seed: o.seed, blobs, perPack: o.perPack, perIndex: o.perIndex, treeShare: o.treeShare };
}

/**
 * A cairn repository (format v2) whose index files describe `blobs` blobs in packs that are never
 * written: IDs from a seeded keystream, data blobs of 1 KiB–4 MiB (half of them compressed), tree
 * blobs of 0.3–20 KiB (compressed), packs of one type each, as restic writes them.
 */
async function generateRepo(o, dir, spec, cli, dist) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const repoDir = path.join(dir, 'repo');
  const init = spawnSync(process.execPath, [cli, '-r', repoDir, 'init', '--repository-version', '2'], { env: childEnv({}), encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`cairn init failed: ${init.stderr}`);
  const { Repository } = await importDist(dist, 'repository/repository.js');
  const { LocalBackend } = await importDist(dist, 'backend/local.js');
  const { encodeIndex } = await importDist(dist, 'format/index.js');
  const repo = await Repository.open(new LocalBackend(repoDir), PASSWORD);
  const ids = keystream(`${spec.seed}:index:${spec.blobs}`);
  const r = prng(`${spec.seed}:index:${spec.blobs}`);
  const t0 = Date.now();
  let left = spec.blobs, files = 0, stored = 0;
  while (left > 0) {
    const inFile = Math.min(left, spec.perIndex);
    const packs = [];
    for (let done = 0; done < inFile;) {
      const n = Math.min(spec.perPack, inFile - done);
      const tree = r.float() < spec.treeShare;
      const raw = ids(32 * (n + 1));
      const blobs = [];
      let offset = 0;
      for (let i = 0; i < n; i++) {
        const b = { id: raw.toString('hex', 32 * (i + 1), 32 * (i + 2)), type: tree ? 'tree' : 'data', offset, length: 0 };
        if (tree) {
          b.uncompressedLength = r.int(300, 20000);
          b.length = 32 + Math.ceil(b.uncompressedLength / r.int(3, 8));
        } else if (r.chance(0.5)) {
          b.uncompressedLength = r.int(1024, 4 * MiB);
          b.length = 32 + Math.ceil(b.uncompressedLength / (1 + r.float() * 3));
        } else b.length = 32 + r.int(1024, 4 * MiB);
        offset += b.length;
        blobs.push(b);
      }
      packs.push({ id: raw.toString('hex', 0, 32), blobs });
      done += n;
    }
    const json = encodeIndex({ packs });
    await repo.saveUnpacked('index', json);
    stored += json.length;
    files++;
    left -= inFile;
    if (files % 50 === 0) progress(`    ${spec.blobs - left} blobs in ${files} index files (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const m = { spec, files, jsonBytes: stored, storedBytes: dirBytes(path.join(repoDir, 'index')), generateS: +((Date.now() - t0) / 1000).toFixed(1) };
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2) + '\n');
  return m;
}

function dirBytes(d) {
  return fs.readdirSync(d).reduce((a, f) => a + fs.statSync(path.join(d, f)).size, 0);
}

/** An empty repository (the zero point of the end-to-end comparison) and one tiny file to back up. */
function ensureEmpty(o, cli) {
  const dir = path.join(o.data, 'empty');
  const repoDir = path.join(dir, 'repo');
  if (!fs.existsSync(path.join(repoDir, 'config'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const init = spawnSync(process.execPath, [cli, '-r', repoDir, 'init', '--repository-version', '2'], { env: childEnv({}), encoding: 'utf8' });
    if (init.status !== 0) throw new Error(`cairn init failed: ${init.stderr}`);
  }
  const tiny = path.join(o.data, 'tiny');
  fs.mkdirSync(tiny, { recursive: true });
  fs.writeFileSync(path.join(tiny, 'hello.txt'), 'one small file for a dry-run backup\n');
  return { repoDir, tiny };
}

function cachedRepo(dir, spec) {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    if (JSON.stringify(m.spec) === JSON.stringify(spec) && fs.existsSync(path.join(dir, 'repo', 'config'))) return m;
  } catch { /* none */ }
  return null;
}

// ---------------------------------------------------------------------------------------------
// summary

function summarize(results) {
  const pts = [];
  for (const kind of [...new Set(results.samples.map((s) => s.kind))]) {
    for (const blobs of [...new Set(results.samples.filter((s) => s.kind === kind).map((s) => s.expected))].sort((a, b) => a - b)) {
      const ss = results.samples.filter((s) => s.kind === kind && s.expected === blobs);
      pts.push({
        kind, blobs, n: ss.length,
        bytesPerBlob: median(ss.map((s) => s.bytesPerBlob)),
        loadS: median(ss.map((s) => s.loadS)),
        settleS: median(ss.map((s) => s.settleS)),
        peakRssMiB: median(ss.map((s) => s.maxRssKiB / 1024)),
        heapMiB: median(ss.map((s) => s.delta.heapUsed / MiB)),
        externalMiB: median(ss.map((s) => s.delta.external / MiB)),
      });
    }
  }
  results.points = pts;
  results.targets = [...new Set(pts.map((p) => p.kind))].map((kind) => {
    const worst = Math.max(...pts.filter((p) => p.kind === kind).map((p) => p.bytesPerBlob));
    return { kind, name: `${kind} index ≤ ${TARGET_BYTES_PER_BLOB} bytes per blob (worst point)`, value: worst, limit: TARGET_BYTES_PER_BLOB, pass: worst <= TARGET_BYTES_PER_BLOB };
  });
  const e2e = [];
  for (const tool of ['restic', 'cairn']) {
    for (const blobs of [...new Set(results.e2e.filter((s) => s.tool === tool).map((s) => s.blobs))].sort((a, b) => a - b)) {
      const ss = results.e2e.filter((s) => s.tool === tool && s.blobs === blobs);
      e2e.push({ tool, blobs, n: ss.length, wallS: median(ss.map((s) => s.wallS)), peakRssMiB: median(ss.map((s) => s.maxRssKiB / 1024)), cpuS: median(ss.map((s) => s.userS + s.sysS)) });
    }
  }
  results.e2eMedians = e2e;
  results.e2eFits = {};
  for (const tool of ['restic', 'cairn']) {
    const pts2 = e2e.filter((p) => p.tool === tool);
    const rss = leastSquares(pts2.map((p) => [p.blobs / 1e6, p.peakRssMiB]));
    const time = leastSquares(pts2.map((p) => [p.blobs / 1e6, p.wallS]));
    if (rss || time) results.e2eFits[tool] = { rssMiBPerMillion: rss, wallSPerMillion: time, rssBytesPerBlob: rss ? (rss.slope * MiB) / 1e6 : null };
  }
}

const KIND_TITLE = { master: 'master (backup/restore: MasterIndex)', compact: 'compact (check/prune: CompactIndex)' };

function tables(results) {
  const head = ['index', 'blobs', 'bytes/blob', 'heap MiB', 'external MiB', 'load s', 'first-query merge s', 'peak RSS MiB'];
  const rows = results.points.map((p) => [KIND_TITLE[p.kind] ?? p.kind, fmtSize(p.blobs, { binary: false }), f1(p.bytesPerBlob), f1(p.heapMiB), f1(p.externalMiB), f2(p.loadS), f2(p.settleS), f1(p.peakRssMiB)]);
  const eHead = ['backup --dry-run, one tiny file', 'blobs', 'restic s', 'cairn s', 'ratio', 'restic peak RSS MiB', 'cairn peak RSS MiB', 'RSS ratio'];
  const eRows = [];
  for (const blobs of [...new Set(results.e2eMedians.map((p) => p.blobs))].sort((a, b) => a - b)) {
    const r = results.e2eMedians.find((p) => p.tool === 'restic' && p.blobs === blobs);
    const c = results.e2eMedians.find((p) => p.tool === 'cairn' && p.blobs === blobs);
    const ratio = (x, y) => (x != null && y ? `${f2(x / y)}×` : 'n/a');
    eRows.push([blobs ? 'index of N blobs' : 'empty repository', fmtSize(blobs, { binary: false }), f2(r?.wallS), f2(c?.wallS), ratio(c?.wallS, r?.wallS), f1(r?.peakRssMiB), f1(c?.peakRssMiB), ratio(c?.peakRssMiB, r?.peakRssMiB)]);
  }
  const fRows = Object.entries(results.e2eFits).map(([tool, f]) => [tool, f.rssMiBPerMillion ? f1(f.rssMiBPerMillion.slope) : 'n/a', f.rssBytesPerBlob != null ? f1(f.rssBytesPerBlob) : 'n/a', f.wallSPerMillion ? f2(f.wallSPerMillion.slope) : 'n/a']);
  const fHead = ['tool', 'peak RSS MiB per million blobs', '= bytes per blob', 'seconds per million blobs'];
  return { head, rows, eHead, eRows, fHead, fRows };
}

function printReport(results) {
  const t = tables(results);
  progress(`\nIn-process index load (median of ${results.config.runs}; memory = heapUsed + external after GC, minus before):`);
  progress('');
  progress(textTable(t.head, t.rows));
  progress('\nTargets:');
  for (const x of results.targets) progress(`  ${x.pass ? 'PASS' : 'FAIL'}  ${x.name}: ${f1(x.value)} B/blob`);
  if (t.eRows.length) {
    progress(`\nEnd to end, both tools: backup --dry-run of one tiny file (loads the whole index; restic --no-cache), median of ${results.config.runs}:`);
    progress('');
    progress(textTable(t.eHead, t.eRows));
    if (t.fRows.length) {
      progress('');
      progress(textTable(t.fHead, t.fRows));
    }
  }
  const warnings = [...results.failures.map((f) => `${f.label}: ${f.timedOut ? 'timed out' : `exited with ${f.exit}`}: ${stderrGist(f)}`), ...results.warnings];
  if (warnings.length) {
    progress('\nFailures and warnings:');
    for (const w of warnings) progress('  ' + w);
  }
  return warnings;
}

function markdown(results) {
  const m = results.machine;
  const t = tables(results);
  const lines = [`### In-memory index: cairn${results.config.compareRestic ? ` vs ${m.resticVersion?.split(' ').slice(0, 2).join(' ') ?? 'restic'}` : ''}`, ''];
  lines.push(`Synthetic index files (${results.config.perPack} blobs per pack, ${results.config.perIndex} per index file, ${results.config.treeShare * 100} % tree packs) in a real, encrypted repository; ` +
    `each measurement in a fresh \`node --expose-gc\` process, median of ${results.config.runs}. ${m.cpuModel}, ${m.cores} cores, Node ${m.nodeVersion}, cairn ${m.cairn.gitHead?.slice(0, 8) ?? '?'}${m.cairn.gitDirty ? ' (dirty)' : ''}, ${m.date.slice(0, 10)}.`, '');
  lines.push(mdTable(t.head, t.rows), '');
  for (const x of results.targets) lines.push(`- ${x.pass ? '✅' : '❌'} ${x.name}: ${f1(x.value)} B/blob`);
  if (t.eRows.length) {
    lines.push('', 'End to end: `backup --dry-run` of one tiny file (loads the whole index, writes nothing; restic with `--no-cache`):', '');
    lines.push(mdTable(t.eHead, t.eRows));
    if (t.fRows.length) lines.push('', mdTable(t.fHead, t.fRows));
  }
  return lines.join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.child) return child(o);
  if (o.report) {
    rerenderReport(o.report, { prepare: summarize, print: printReport, markdown, chart: writeIndexChart });
    return;
  }
  checkPrerequisites({ restic: o.restic, needRestic: o.compareRestic });
  fs.mkdirSync(o.data, { recursive: true });
  fs.mkdirSync(o.out, { recursive: true });
  const cli = resolveCairn(o, o.out);
  const dist = path.dirname(cli);
  const machine = machineBase({ restic: o.compareRestic ? o.restic : null, cairn: cli, workDir: o.data });
  machine.cairn.frozenFrom = o.freeze ? path.join(ROOT, 'dist') : null;
  progress(`machine: ${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.nodeVersion}${o.compareRestic ? `, ${machine.resticVersion}` : ''}`);
  progress(`cairn: ${dist} (build ${machine.cairn.buildDigest}) from git ${machine.cairn.gitHead?.slice(0, 8)}${machine.cairn.gitDirty ? ` + ${machine.cairn.gitDirty}` : ''}`);

  // disk: the stored index is about 80 bytes per blob (compressed JSON); refuse early if it cannot fit
  const needBytes = o.blobs.reduce((a, n) => a + (o.keep ? n : 0), 0) * 100 + Math.max(...o.blobs) * 100 + GiB;
  const free = diskFree(o.data);
  if (needBytes > free.bytes) {
    console.error(`index: not enough disk space: about ${(needBytes / GiB).toFixed(1)} GiB needed for the generated index files, ${(free.bytes / GiB).toFixed(1)} GiB free`);
    process.exit(1);
  }

  const logDir = path.join(o.out, 'index-logs');
  fs.rmSync(logDir, { recursive: true, force: true });
  const results = {
    schema: 'cairn-bench-index/1',
    machine,
    config: {
      runs: o.runs, blobs: o.blobs, perPack: o.perPack, perIndex: o.perIndex, treeShare: o.treeShare, kinds: o.kinds, compareRestic: o.compareRestic, seed: o.seed,
      targetBytesPerBlob: TARGET_BYTES_PER_BLOB,
      memory: 'process.memoryUsage(): (heapUsed + external) after loading minus before, both after 4× global.gc(); external includes arrayBuffers',
      e2e: 'backup --dry-run of one 36-byte file, restic with --no-cache; an empty repository is the zero point',
    },
    repos: [], samples: [], e2e: [], failures: [], warnings: [],
  };
  const empty = o.compareRestic ? ensureEmpty(o, cli) : null;
  const e2eStep = async (tool, blobs, repoDir, run) => {
    const label = `e2e-${tool}-${fmtSize(blobs, { binary: false })}-run${run}`;
    const argv = tool === 'restic'
      ? [o.restic, '--no-cache', '-r', repoDir, 'backup', '--dry-run', empty.tiny]
      : [process.execPath, cli, '-r', repoDir, 'backup', '--dry-run', empty.tiny];
    try {
      const r = await measure(label, argv, { env: childEnv({}), logDir, timeoutS: o.timeout, quietS: o.waitQuiet });
      results.e2e.push({ tool, blobs, run, wallS: r.wallS, maxRssKiB: r.maxRssKiB, userS: r.userS, sysS: r.sysS, otherCpuS: r.otherCpuS, contended: r.contended });
      progress(measureLine(label, r, 36));
    } catch (e) {
      if (!(e instanceof CommandFailed)) throw e;
      const f = failureRecord(e, { tool, blobs, run });
      results.failures.push(f);
      reportFailure(f, o.timeout);
    }
  };

  if (empty) {
    progress('\nzero point: empty repository');
    for (let run = 1; run <= o.runs; run++) for (const tool of ['restic', 'cairn']) await e2eStep(tool, 0, empty.repoDir, run);
  }

  for (const blobs of o.blobs) {
    const spec = repoSpec(o, blobs);
    const dir = path.join(o.data, `blobs-${fmtSize(blobs, { binary: false })}`);
    let m = cachedRepo(dir, spec);
    progress(`\n${fmtSize(blobs, { binary: false })} blobs`);
    if (!m) {
      progress(`  generating ${dir} (encrypted index files written by cairn's Repository.saveUnpacked) ...`);
      m = await generateRepo(o, dir, spec, cli, dist);
      progress(`  ${m.files} index files, ${(m.jsonBytes / MiB).toFixed(1)} MiB of JSON, ${(m.storedBytes / MiB).toFixed(1)} MiB stored, in ${m.generateS} s`);
    } else progress(`  using cached ${dir} (${m.files} index files, ${(m.storedBytes / MiB).toFixed(1)} MiB stored)`);
    results.repos.push({ blobs, dir, files: m.files, jsonBytes: m.jsonBytes, storedBytes: m.storedBytes });
    const repoDir = path.join(dir, 'repo');
    for (let run = 1; run <= o.runs; run++) {
      for (const kind of o.kinds) {
        const label = `${kind}-${fmtSize(blobs, { binary: false })}-run${run}`;
        try {
          const r = await measure(label, [process.execPath, '--expose-gc', path.join(BENCH_DIR, 'index.mjs'), '--child', kind, '--repo', repoDir, '--dist', dist, '--expect', String(blobs)], { env: childEnv({}), logDir, timeoutS: o.timeout, quietS: o.waitQuiet, warm: [path.join(repoDir, 'index')] });
          const x = JSON.parse(r.stdout.trim().split('\n').pop());
          if (x.blobs !== blobs) results.warnings.push(`${label}: the loaded index holds ${x.blobs} entries, expected ${blobs}`);
          results.samples.push({ ...x, expected: blobs, run, wallS: r.wallS, maxRssKiB: r.maxRssKiB, userS: r.userS, sysS: r.sysS, contended: r.contended });
          progress(`  ${label.padEnd(28)} load ${x.loadS.toFixed(2).padStart(6)} s${kind === 'master' ? ` + merge ${x.settleS.toFixed(2)} s` : ''}  ${x.bytesPerBlob.toFixed(1).padStart(6)} B/blob  (heap ${(x.delta.heapUsed / MiB).toFixed(1)} MiB, external ${(x.delta.external / MiB).toFixed(1)} MiB; peak RSS ${(r.maxRssKiB / 1024).toFixed(1)} MiB)${r.contended ? '  CONTENDED' : ''}`);
        } catch (e) {
          if (!(e instanceof CommandFailed)) throw e;
          const f = failureRecord(e, { kind, blobs, run });
          results.failures.push(f);
          reportFailure(f, o.timeout);
        }
      }
      if (o.compareRestic) for (const tool of ['restic', 'cairn']) await e2eStep(tool, blobs, repoDir, run);
    }
    if (!o.keep) await removeAndSettle([dir], 0);
  }
  if (!o.keep) fs.rmSync(o.data, { recursive: true, force: true });

  summarize(results);
  const { file, latest } = writeJsonResults(o.out, 'index', results);
  const md = path.join(o.out, 'index-latest.md');
  fs.writeFileSync(md, markdown(results));
  const svg = writeIndexChart(results, path.join(o.out, 'index-latest.svg'));
  const warnings = printReport(results);
  progress(`\nwrote ${file}, ${latest}, ${md}, ${svg}`);
  if (warnings.length) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`index: ${e.stack ?? e}`);
  process.exit(1);
});
