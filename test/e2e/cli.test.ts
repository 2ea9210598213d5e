import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { cairn, mustOk, tempDir } from '../support/env.js';
import { diffFacts, makeRichTree, snapshotFacts } from '../support/tree.js';

function lastJson(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

async function setup(version: 1 | 2 = 2) {
  const d = tempDir();
  const repo = path.join(d.dir, 'repo');
  const src = path.join(d.dir, 'data', 'src');
  makeRichTree(src, 42);
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'cli-test' };
  mustOk(await cairn(['init', '--repository-version', String(version)], { env }), 'init');
  return { d, repo, src, env };
}

test('backup: parent detection skips unchanged files; changes, tags, host, excludes are recorded', async () => {
  const { d, src, env } = await setup();
  // relative target: the root chain then holds only src (ancestors like /tmp change all the time)
  const cwd = path.dirname(src);
  try {
    const first = lastJson(mustOk(await cairn(['backup', 'src', '--json', '--tag', 'a,b', '--tag', 'c', '-e', '*.log', '--host', 'node-1'], { env, cwd }), 'backup').stdout);
    assert.equal(first.files_unmodified, 0);
    assert.ok((first.files_new as number) > 5);
    const second = lastJson(mustOk(await cairn(['backup', 'src', '--json', '-e', '*.log', '--host', 'node-1'], { env, cwd }), 'backup 2').stdout);
    assert.equal(second.files_new, 0);
    assert.equal(second.files_changed, 0);
    assert.equal(second.files_unmodified, first.files_new);
    assert.equal(second.data_added, 0);
    fs.appendFileSync(path.join(src, 'small.txt'), 'more\n');
    const third = lastJson(mustOk(await cairn(['backup', 'src', '--json', '-e', '*.log', '--host', 'node-1'], { env, cwd }), 'backup 3').stdout);
    assert.equal(third.files_changed, 2, 'small.txt and its hard link changed');
    const snaps = JSON.parse(mustOk(await cairn(['snapshots', '--json'], { env }), 'snapshots').stdout);
    assert.equal(snaps.length, 3);
    assert.deepEqual(snaps[0].tags, ['a', 'b', 'c']);
    assert.deepEqual(snaps[0].excludes, ['*.log']);
    assert.equal(snaps[0].hostname, 'node-1');
    assert.equal(snaps[1].parent, snaps[0].id);
    const ls = mustOk(await cairn(['ls', 'latest'], { env }), 'ls').stdout;
    assert.ok(!ls.includes('other.log'), 'excluded file not in snapshot');
    // a different host does not pick the parent
    const other = lastJson(mustOk(await cairn(['backup', 'src', '--json', '--host', 'node-2'], { env, cwd }), 'backup other host').stdout);
    assert.equal(other.files_unmodified, 0);
  } finally {
    d.cleanup();
  }
});

test('backup: unchanged directories keep the parent snapshot\'s trees, identical to what a backup without parent writes', async () => {
  const { d, src, env } = await setup();
  const cwd = path.dirname(src);
  const backup = async (...extra: string[]) => lastJson(mustOk(await cairn(['backup', 'src', '--json', ...extra], { env, cwd }), 'backup').stdout);
  const latestTree = async () => {
    const snaps = JSON.parse(mustOk(await cairn(['snapshots', '--json'], { env }), 'snapshots').stdout) as Array<{ tree: string }>;
    return snaps[snaps.length - 1]!.tree;
  };
  try {
    await backup();
    const t1 = await latestTree();
    const second = await backup();
    assert.equal(second.tree_blobs, 0);
    assert.equal(second.dirs_changed, 0);
    assert.equal(await latestTree(), t1);
    // a file below a directory changes, and another directory's own times
    fs.appendFileSync(path.join(src, 'text', 'log.txt'), 'one more line\n');
    fs.utimesSync(path.join(src, 'empty-dir'), new Date(1_000_000_000_000), new Date(1_000_000_000_000));
    const third = await backup();
    assert.ok((third.tree_blobs as number) >= 2, `text and src at least: ${String(third.tree_blobs)}`);
    const t3 = await latestTree();
    assert.notEqual(t3, t1);
    // without a parent every tree is encoded afresh: the same bytes, the same IDs
    await backup('--force');
    assert.equal(await latestTree(), t3);
  } finally {
    d.cleanup();
  }
});

test('backup --dry-run writes nothing; --exclude-file and --one-file-system are accepted', async () => {
  const { d, repo, src, env } = await setup();
  try {
    const before = fs.readdirSync(path.join(repo, 'snapshots')).length;
    const r = lastJson(mustOk(await cairn(['backup', src, '--dry-run', '--json'], { env }), 'dry run').stdout);
    assert.equal(r.dry_run, true);
    assert.equal(fs.readdirSync(path.join(repo, 'snapshots')).length, before);
    assert.equal(fs.readdirSync(path.join(repo, 'index')).length, 0);
    const ex = path.join(d.dir, 'excludes');
    fs.writeFileSync(ex, '# comment\n\n*.bin\n');
    mustOk(await cairn(['backup', src, '--exclude-file', ex, '-x'], { env }), 'backup');
    const ls = mustOk(await cairn(['ls', 'latest'], { env }), 'ls').stdout;
    assert.ok(!ls.includes('random.bin'));
    assert.ok(ls.includes('small.txt'));
  } finally {
    d.cleanup();
  }
});

test('restore: subfolder, include/exclude, sparse and dry-run', async () => {
  const { d, src, env } = await setup(1);
  try {
    mustOk(await cairn(['backup', 'src'], { env, cwd: path.dirname(src) }), 'backup');
    const t1 = path.join(d.dir, 't1');
    mustOk(await cairn(['restore', 'latest:src/text', '--target', t1], { env }), 'restore subfolder');
    assert.deepEqual(fs.readdirSync(t1).sort(), ['hardlink-to-small', 'link-to-small', 'log.txt', 'other.log']);
    const t2 = path.join(d.dir, 't2');
    mustOk(await cairn(['restore', 'latest', '--target', t2, '--include', '/src/bin', '--exclude', 'zeros.bin'], { env }), 'restore include');
    assert.deepEqual(fs.readdirSync(path.join(t2, 'src')), ['bin']);
    assert.deepEqual(fs.readdirSync(path.join(t2, 'src/bin')).sort(), ['exact-min.bin', 'random.bin']);
    const t3 = path.join(d.dir, 't3');
    mustOk(await cairn(['restore', 'latest', '--target', t3, '--sparse', '--verify'], { env }), 'restore sparse');
    const st = fs.statSync(path.join(t3, 'src/sparse.img'));
    assert.equal(st.size, 8 * 1024 * 1024);
    assert.ok(st.blocks * 512 < 1024 * 1024, `sparse file uses ${st.blocks * 512} bytes on disk`);
    assert.deepEqual(diffFacts(snapshotFacts(src), snapshotFacts(path.join(t3, 'src'))), []);
    const t4 = path.join(d.dir, 't4');
    const dry = JSON.parse(mustOk(await cairn(['restore', 'latest', '--target', t4, '--dry-run', '--json'], { env }), 'dry').stdout);
    assert.ok(dry.files_restored > 5);
    assert.equal(fs.existsSync(t4), false);
  } finally {
    d.cleanup();
  }
});

test('restore as a non-root user: content and modes restored, ownership skipped and reported', async (t) => {
  if (process.getuid?.() !== 0 || spawnSync('setpriv', ['--version']).status !== 0) {
    t.skip('needs root to switch to an unprivileged user with setpriv');
    return;
  }
  const { d, src, env } = await setup();
  try {
    mustOk(await cairn(['backup', 'src'], { env, cwd: path.dirname(src) }), 'backup');
    fs.chmodSync(d.dir, 0o755);
    fs.chmodSync(path.join(d.dir, 'repo'), 0o755);
    spawnSync('chmod', ['-R', 'a+rX', path.join(d.dir, 'repo')]);
    const target = path.join(d.dir, 'nonroot');
    fs.mkdirSync(target);
    fs.chownSync(target, 65534, 65534);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, path.resolve('dist/cli.js'), '--no-lock', 'restore', 'latest', '--target', target, '--json'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    // device nodes cannot be created without privileges: that one entry fails, everything else works
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(summary.files_restored > 5);
    assert.match(r.stderr + JSON.stringify(summary.warnings ?? []), /owner|chown|ownership/i);
    const facts = snapshotFacts(path.join(target, 'src'), { xattrs: false });
    assert.equal(facts.get('small.txt')?.hash, snapshotFacts(src).get('small.txt')?.hash);
    assert.equal(facts.get('modes/readonly')!.mode & 0o7777, 0o400);
  } finally {
    d.cleanup();
  }
});

test('locked repository and corrupted pack: one clear line, distinct exit codes', async () => {
  const { d, repo, src, env } = await setup();
  try {
    mustOk(await cairn(['backup', src], { env }), 'backup');
    // an exclusive lock held by someone else blocks a backup: exit 11, the holder is named
    const { RepoLock } = await import('../../src/repository/lock.js');
    const { Repository } = await import('../../src/repository/repository.js');
    const { LocalBackend } = await import('../../src/backend/local.js');
    const r = await Repository.open(new LocalBackend(repo), 'cli-test');
    const lock = await RepoLock.acquire(r, { exclusive: true });
    const locked = await cairn(['backup', src], { env });
    assert.equal(locked.code, 11);
    assert.match(locked.stderr, /repository is already locked: exclusive lock [0-9a-f]{8} held by/);
    await lock.release();
    mustOk(await cairn(['unlock'], { env }), 'unlock');
    // flip one byte in every data pack: restore reports the damaged files and exits non-zero
    const dataDir = path.join(repo, 'data');
    for (const sub of fs.readdirSync(dataDir)) {
      for (const f of fs.readdirSync(path.join(dataDir, sub))) {
        const p = path.join(dataDir, sub, f);
        fs.chmodSync(p, 0o600);
        const b = fs.readFileSync(p);
        b[100] ^= 0xff;
        fs.writeFileSync(p, b);
      }
    }
    const bad = await cairn(['restore', 'latest', '--target', path.join(d.dir, 'bad')], { env });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /ciphertext verification failed|does not match/);
  } finally {
    d.cleanup();
  }
});

test('restore of more files than the file-descriptor limit (handles are bounded)', async (t) => {
  if (spawnSync('prlimit', ['--version']).status !== 0) {
    if (process.env.CI) throw new Error('prlimit (util-linux) is missing');
    t.skip('prlimit not installed');
    return;
  }
  const d = tempDir();
  try {
    const src = path.join(d.dir, 'many');
    fs.mkdirSync(src);
    for (let i = 0; i < 2500; i++) fs.writeFileSync(path.join(src, `f${i}`), `file ${i}\n`);
    const env = { RESTIC_REPOSITORY: path.join(d.dir, 'repo'), RESTIC_PASSWORD: 'fd' };
    mustOk(await cairn(['init'], { env }), 'init');
    mustOk(await cairn(['backup', 'many'], { env, cwd: d.dir }), 'backup');
    const target = path.join(d.dir, 'restore');
    const r = spawnSync('prlimit', ['--nofile=1024:1024', process.execPath, path.resolve('dist/cli.js'), 'restore', 'latest', '--target', target], { env: { ...process.env, ...env }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(path.join(target, 'many')).length, 2500);
  } finally {
    d.cleanup();
  }
});

test('backup --compression: off, fastest, auto, better, max (and RESTIC_COMPRESSION); unknown modes are refused', async () => {
  const d = tempDir();
  try {
    const src = path.join(d.dir, 'src');
    fs.mkdirSync(src);
    // compressible text: numbered lines with a few words from a small vocabulary
    const words = ['pod', 'volume', 'backup', 'restore', 'node', 'agent', 'snapshot', 'pack'];
    const lines: string[] = [];
    for (let i = 0; i < 60_000; i++) lines.push(`${i} ${words[i % 8]} ${words[(i * 7) % 8]} ${(i * 2654435761) % 1000003}`);
    fs.writeFileSync(path.join(src, 'log.txt'), lines.join('\n'));
    const raw = fs.statSync(path.join(src, 'log.txt')).size;
    const packBytes = (repo: string) => {
      let n = 0;
      for (const sub of fs.readdirSync(path.join(repo, 'data'))) for (const f of fs.readdirSync(path.join(repo, 'data', sub))) n += fs.statSync(path.join(repo, 'data', sub, f)).size;
      return n;
    };
    const sizes: Record<string, number> = {};
    for (const [mode, how] of [['off', 'flag'], ['fastest', 'flag'], ['auto', 'default'], ['better', 'env'], ['max', 'flag']] as const) {
      const env: Record<string, string> = { RESTIC_REPOSITORY: path.join(d.dir, `repo-${mode}`), RESTIC_PASSWORD: 'pw' };
      mustOk(await cairn(['init'], { env }), `init ${mode}`);
      const args = how === 'flag' ? ['backup', '--compression', mode, src] : ['backup', src];
      if (how === 'env') env.RESTIC_COMPRESSION = mode;
      mustOk(await cairn(args, { env }), `backup ${mode}`);
      sizes[mode] = packBytes(env.RESTIC_REPOSITORY!);
      const back = path.join(d.dir, `restored-${mode}`);
      mustOk(await cairn(['restore', 'latest', '--target', back], { env }), `restore ${mode}`);
      assert.ok(fs.readFileSync(path.join(back, src, 'log.txt')).equals(fs.readFileSync(path.join(src, 'log.txt'))), mode);
    }
    assert.ok(sizes.off! > raw, `off stores the data as is (${sizes.off} > ${raw})`);
    for (const mode of ['fastest', 'auto', 'better', 'max']) assert.ok(sizes[mode]! < raw / 2, `${mode}: ${sizes[mode]} of ${raw}`);
    // levels differ (1, 2, 7, 19); only max is sure to beat auto on any input
    assert.ok(sizes.max! <= sizes.auto!, JSON.stringify(sizes));
    assert.equal(new Set(Object.values(sizes)).size, 5, `five different levels: ${JSON.stringify(sizes)}`);
    const bad = await cairn(['backup', '--compression', 'ultra', src], { env: { RESTIC_REPOSITORY: path.join(d.dir, 'repo-auto'), RESTIC_PASSWORD: 'pw' } });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /invalid compression mode "ultra" \(auto, off, fastest, better, max\)/);
  } finally {
    d.cleanup();
  }
});
