/**
 * The Dockerfile cannot be built here (no container engine), so this checks what can go wrong
 * without one: every path it COPYs exists (build outputs after `npm run build`), `.dockerignore`
 * does not hide a COPY source from the build context (while it does keep host build outputs out),
 * and the entry points and compatibility shims point at files the image will contain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from './support/env.js';

interface Instruction {
  stage: number;
  op: string;
  args: string;
}

/** Dockerfile instructions with line continuations joined and comments dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = -1;
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!pending && /^\s*#/.test(line)) continue;
    if (pending && /^\s*#/.test(line)) continue; // comment lines inside a continuation are skipped by Docker too
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (!full) continue;
    const m = /^(\w+)\s+([\s\S]*)$/.exec(full);
    assert.ok(m, `cannot parse Dockerfile line: ${full}`);
    const op = m[1]!.toUpperCase();
    if (op === 'FROM') stage++;
    out.push({ stage, op, args: m[2]! });
  }
  return out;
}

interface Copy {
  stage: number;
  from?: string;
  chmod?: string;
  sources: string[];
  dest: string;
}

function copies(ins: Instruction[]): Copy[] {
  return ins
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/).filter(Boolean);
      const c: Copy = { stage: i.stage, sources: [], dest: '' };
      const rest: string[] = [];
      for (const w of words) {
        const flag = /^--(\w+)=(.*)$/.exec(w);
        if (flag && rest.length === 0) {
          if (flag[1] === 'from') c.from = flag[2];
          else if (flag[1] === 'chmod') c.chmod = flag[2];
          continue;
        }
        rest.push(w);
      }
      assert.ok(rest.length >= 2, `COPY needs a source and a destination: ${i.args}`);
      c.dest = rest.pop()!;
      c.sources = rest;
      return c;
    });
}

/** .dockerignore semantics: globs relative to the context; a match on a directory excludes its contents; `!` re-includes. */
function dockerIgnore(text: string): (p: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pat = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ''));
      let re = '';
      for (let i = 0; i < pat.length; i++) {
        const ch = pat[i]!;
        if (ch === '*' && pat[i + 1] === '*') {
          re += '.*';
          i++;
        } else if (ch === '*') re += '[^/]*';
        else if (ch === '?') re += '[^/]';
        else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
      }
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (p: string) => {
    const parts = path.posix.normalize(p).split('/');
    let excluded = false;
    for (const r of rules) {
      // a pattern matches the path itself or any of its parent directories
      for (let n = 1; n <= parts.length; n++) {
        if (r.re.test(parts.slice(0, n).join('/'))) {
          excluded = !r.negate;
          break;
        }
      }
    }
    return excluded;
  };
}

const dockerfile = fs.readFileSync(path.join(repoRoot, 'Dockerfile'), 'utf8');
const ins = parseDockerfile(dockerfile);
const cps = copies(ins);
const ignored = dockerIgnore(fs.readFileSync(path.join(repoRoot, '.dockerignore'), 'utf8'));

/** Where the build stage's WORKDIR (/src) content comes from: the repository itself (context copies and build outputs). */
function buildStagePathToRepo(p: string): string {
  assert.ok(p.startsWith('/src/'), `build-stage path outside /src: ${p}`);
  return path.join(repoRoot, p.slice('/src/'.length));
}

test('Dockerfile structure: two stages, native addon built and checked in the build stage, tini entrypoint, non-root user', () => {
  const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args);
  assert.equal(froms.length, 2);
  assert.match(froms[0]!, /^node:20\S* AS build$/);
  assert.match(froms[1]!, /^node:20\S*-slim$/);
  const runs = ins.filter((i) => i.op === 'RUN');
  assert.ok(runs.some((r) => r.stage === 0 && /npm ci\b/.test(r.args)), 'npm ci (runs the addon build) in the build stage');
  assert.ok(runs.some((r) => r.stage === 0 && /native\.kind/.test(r.args)), 'the build stage fails when the addon did not build');
  assert.ok(!runs.some((r) => r.stage === 1 && /npm (ci|install)|node-gyp/.test(r.args)), 'no compiler work in the runtime stage');
  assert.ok(runs.some((r) => r.stage === 1 && /apt-get install[^&]*\btini\b/.test(r.args)), 'tini installed in the runtime');
  const entry = ins.find((i) => i.op === 'ENTRYPOINT')!;
  assert.deepEqual(JSON.parse(entry.args), ['/usr/bin/tini', '--', 'cairn']);
  const user = ins.filter((i) => i.op === 'USER').at(-1)!;
  assert.doesNotMatch(user.args, /^(0|root)\b/);
});

test('every COPY source of the build context exists and is not excluded by .dockerignore', () => {
  const contextCopies = cps.filter((c) => c.from === undefined);
  assert.ok(contextCopies.length >= 5);
  for (const c of contextCopies) {
    for (const s of c.sources) {
      const p = path.join(repoRoot, s);
      assert.ok(fs.existsSync(p), `COPY ${s}: missing in the repository`);
      assert.equal(ignored(s), false, `COPY ${s}: excluded by .dockerignore`);
      if (fs.statSync(p).isDirectory()) {
        // the files that matter inside must survive .dockerignore too
        const inner = fs.readdirSync(p, { recursive: true }) as string[];
        const kept = inner.filter((f) => !ignored(path.posix.join(s, f.split(path.sep).join('/'))));
        assert.ok(kept.length > 0, `COPY ${s}: everything inside is excluded`);
      }
    }
  }
  // what the build stage needs to compile is among them
  const sources = new Set(contextCopies.flatMap((c) => c.sources));
  for (const needed of ['package.json', 'package-lock.json', 'native', 'tsconfig.base.json', 'tsconfig.build.json', 'src']) assert.ok(sources.has(needed), `build context copy of ${needed}`);
});

test('.dockerignore keeps host build outputs and dependencies out of the context', () => {
  for (const p of ['node_modules/commander/package.json', 'dist/cli.js', 'build/test/x.js', 'native/build/Release/cairn_native.node', '.git/HEAD']) {
    assert.equal(ignored(p), true, `${p} should be excluded (the image builds its own, for its own libc)`);
  }
  for (const p of ['src/cli.ts', 'native/binding.gyp', 'native/src/addon.c', 'scripts/image/velero']) assert.equal(ignored(p), false, p);
});

test('every COPY --from=build source exists after `npm run build` (the build stage produces the same paths)', () => {
  const fromBuild = cps.filter((c) => c.from === 'build');
  assert.ok(fromBuild.length >= 4);
  for (const c of fromBuild) {
    for (const s of c.sources) {
      const local = buildStagePathToRepo(s);
      assert.ok(fs.existsSync(local), `COPY --from=build ${s}: ${path.relative(repoRoot, local)} does not exist (run npm run build / npm ci)`);
    }
  }
  // what the runtime needs from dist/
  for (const f of ['dist/cli.js', 'dist/velero-compat.js', 'dist/restore-helper-main.js', 'dist/native/index.js']) assert.ok(fs.existsSync(path.join(repoRoot, f)), f);
  assert.match(fs.readFileSync(path.join(repoRoot, 'dist/cli.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/, 'cli.js is run through a symlink on PATH');
});

test('the Velero compatibility shims exist, are executable shell scripts, and call files the image contains', () => {
  const shimCopies = cps.filter((c) => c.from === undefined && c.sources.some((s) => s.startsWith('scripts/image/')));
  const dests = shimCopies.map((c) => c.dest).sort();
  assert.deepEqual(dests, ['/velero', '/velero-restore-helper']);
  for (const c of shimCopies) {
    assert.equal(c.chmod, '0755', `${c.dest} must be executable in the image`);
    const file = path.join(repoRoot, c.sources[0]!);
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^#!\/bin\/sh\n/);
    assert.ok((fs.statSync(file).mode & 0o111) !== 0, `${c.sources[0]} is executable in the repository too`);
    assert.match(text, /exec \/usr\/bin\/tini -s -- node /, `${c.dest}: exec through tini (PID 1 of an init container)`);
    for (const m of text.matchAll(/\/opt\/cairn\/(dist\/[\w./-]+\.js)/g)) {
      assert.ok(fs.existsSync(path.join(repoRoot, m[1]!)), `${c.dest} calls ${m[0]}, which the image will not have`);
    }
    assert.match(text, /"\$@"/, `${c.dest} passes its arguments on`);
  }
  assert.match(fs.readFileSync(path.join(repoRoot, 'scripts/image/velero-restore-helper'), 'utf8'), /restore-helper-main\.js "\$@"/);
  assert.match(fs.readFileSync(path.join(repoRoot, 'scripts/image/velero'), 'utf8'), /velero-compat\.js "\$@"/);
  assert.ok(ins.some((i) => i.op === 'RUN' && i.stage === 1 && /ln -s \/velero-restore-helper \/velero-restic-restore-helper/.test(i.args)), 'the ≤1.9 helper name');
});

test('the DaemonSet runs the image the way the Dockerfile sets it up', () => {
  const ds = fs.readFileSync(path.join(repoRoot, 'deploy', 'daemonset.yaml'), 'utf8');
  assert.match(ds, /command: \[\/usr\/bin\/tini, --, cairn\]/);
  assert.ok(ins.some((i) => i.op === 'RUN' && i.stage === 1 && /ln -s \/opt\/cairn\/dist\/cli\.js \/usr\/local\/bin\/cairn/.test(i.args)), '`cairn` is on PATH');
});
