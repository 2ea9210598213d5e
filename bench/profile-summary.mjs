#!/usr/bin/env node
// Top self-time functions of V8 .cpuprofile files (node --cpu-prof).
//
//   node bench/profile-summary.mjs DIR|FILE... [--top 15]
//
// Each file is one thread (the main thread and every worker write their own). Prints the top
// functions per file, then all files merged. Self time = the sampling intervals in which the
// function was on top of the stack.
import * as fs from 'node:fs';
import * as path from 'node:path';

const args = process.argv.slice(2);
let top = 15;
const inputs = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '-h' || args[i] === '--help') {
    console.log('usage: node bench/profile-summary.mjs DIR|FILE... [--top 15]');
    process.exit(0);
  } else inputs.push(args[i]);
}
if (!inputs.length || !(top > 0)) {
  console.error('usage: node bench/profile-summary.mjs DIR|FILE... [--top 15]');
  process.exit(2);
}

const files = [];
for (const p of inputs) {
  if (fs.statSync(p).isDirectory()) {
    for (const f of fs.readdirSync(p).sort()) if (f.endsWith('.cpuprofile')) files.push(path.join(p, f));
  } else files.push(p);
}
if (!files.length) {
  console.error(`no .cpuprofile files in ${inputs.join(', ')}`);
  process.exit(1);
}

const ROOT = process.cwd();
const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function location(cf) {
  if (!cf.url) return '(native)';
  let u = cf.url.replace(/^file:\/\//, '');
  if (u.startsWith(ROOT + '/')) u = u.slice(ROOT.length + 1);
  u = u.replace(/^.*\/cairn-build\//, ''); // the frozen copy that bench/run.mjs runs
  return `${u}:${cf.lineNumber + 1}`;
}

/** Map "name  location" -> self microseconds, for one profile. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const { samples = [], timeDeltas = [] } = profile;
  // timeDeltas[i] is the gap before sample i; the interval after sample i is the time it stood for
  for (let i = 0; i < samples.length; i++) {
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    if (!(dt > 0)) continue;
    const n = byId.get(samples[i]);
    if (!n) continue;
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const key = SPECIAL.has(name) ? name : `${name}  ${location(cf)}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  return self;
}

function print(title, self) {
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const idle = self.get('(idle)') ?? 0;
  const busy = total - idle;
  console.log(`\n${title}`);
  console.log(`  sampled ${(total / 1e6).toFixed(2)} s, of which idle ${(idle / 1e6).toFixed(2)} s, busy ${(busy / 1e6).toFixed(2)} s`);
  console.log(`  ${'self ms'.padStart(9)} ${'% busy'.padStart(7)}  function  location`);
  const rows = [...self.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top);
  for (const [k, us] of rows) console.log(`  ${(us / 1000).toFixed(0).padStart(9)} ${(busy ? (100 * us) / busy : 0).toFixed(1).padStart(6)}%  ${k}`);
}

const merged = new Map();
for (const f of files) {
  const profile = JSON.parse(fs.readFileSync(f, 'utf8'));
  const self = selfTimes(profile);
  for (const [k, v] of self) merged.set(k, (merged.get(k) ?? 0) + v);
  print(`${path.basename(f)}  (top ${top} self time, idle excluded)`, self);
}
if (files.length > 1) print(`ALL ${files.length} threads merged  (top ${top} self time, idle excluded)`, merged);
