/**
 * stats, diff, copy and migrate against restic 0.14 on the same repositories.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, mustOk, requireRestic, restic, tempDir } from '../support/env.js';
import { makeRichTree, snapshotFacts } from '../support/tree.js';
import { assertRestores, lastJson, mutate, snapshotIds, type Facts } from '../support/maintenance.js';

const PW = 'maintenance-tools';

async function twoToolRepo(dir: string) {
  const repo = path.join(dir, 'repo');
  const src = path.join(dir, 'data', 'src');
  const cwd = path.dirname(src);
  makeRichTree(src, 31);
  const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PW };
  mustOk(await restic(['init'], { env }), 'restic init');
  const facts = new Map<string, Facts>();
  const ids: string[] = [];
  for (let round = 0; round < 4; round++) {
    if (round > 0) mutate(src, round);
    if (round === 2) {
      fs.rmSync(path.join(src, 'modes'), { recursive: true });
      fs.symlinkSync('text', path.join(src, 'modes')); // a directory that became a symlink
      fs.chmodSync(path.join(src, 'small.txt'), 0o600); // metadata only
    }
    const r = round % 2 === 0
      ? mustOk(await restic(['backup', 'src', '--json', '--host', round === 3 ? 'other' : 'h', '--tag', `r${round}`], { env, cwd }), 'restic backup')
      : mustOk(await cairn(['backup', 'src', '--json', '--host', round === 3 ? 'other' : 'h', '--tag', `r${round}`], { env, cwd }), 'cairn backup');
    const id = String(lastJson(r).snapshot_id);
    const full = (await snapshotIds(env)).find((s) => s.id.startsWith(id))!.id;
    ids.push(full);
    facts.set(full, snapshotFacts(src));
  }
  return { repo, src, env, ids, facts };
}

test('stats: the same numbers as restic in all four modes, for all, latest, IDs and filters', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const { env, ids } = await twoToolRepo(d.dir);
    const selections = [[], ['latest'], [ids[1]!.slice(0, 8)], [ids[0]!, ids[2]!], ['--host', 'h'], ['--tag', 'r1,x', '--tag', 'r3']];
    for (const mode of ['restore-size', 'files-by-contents', 'blobs-per-file', 'raw-data']) {
      for (const sel of selections) {
        const args = ['stats', '--json', '--no-lock', '--mode', mode, ...sel];
        const ours = JSON.parse(mustOk(await cairn(args, { env }), `cairn ${args.join(' ')}`).stdout);
        const theirs = JSON.parse(mustOk(await restic(args, { env }), `restic ${args.join(' ')}`).stdout.trim().split('\n').pop()!);
        assert.deepEqual(ours, theirs, `stats ${mode} ${sel.join(' ')}`);
      }
    }
    const text = mustOk(await cairn(['stats', '--mode', 'raw-data'], { env }), 'stats text').stdout;
    assert.match(text, /Stats in raw-data mode:\nSnapshots processed:\s+4\n\s+Total Blob Count:\s+\d+\n\s+Total Size:\s+\S+/);
    assert.equal((await cairn(['stats', '--mode', 'nonsense'], { env })).code, 2);
  } finally {
    d.cleanup();
  }
});

test('diff: the same changes, in the same order, and the same statistics as restic', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const { env, ids } = await twoToolRepo(d.dir);
    const pairs: Array<[string, string]> = [[ids[0]!, ids[1]!], [ids[1]!, ids[2]!], [ids[0]!, ids[3]!], [ids[3]!, ids[0]!], [ids[2]!, ids[2]!]];
    let changes = 0;
    for (const [a, b] of pairs) {
      for (const extra of [[], ['--metadata']]) {
        const args = ['diff', '--json', '--no-lock', ...extra, a.slice(0, 10), b.slice(0, 10)];
        const parse = (s: string) => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
        const ours = parse(mustOk(await cairn(args, { env }), `cairn ${args.join(' ')}`).stdout);
        const theirs = parse(mustOk(await restic(args, { env }), `restic ${args.join(' ')}`).stdout);
        assert.deepEqual(ours, theirs, `diff ${extra.join(' ')} ${a.slice(0, 8)} ${b.slice(0, 8)}`);
        changes += ours.length - 1;
      }
    }
    assert.ok(changes > 20, `${changes} changes compared`);
    // text format: markers in a 5-wide column, then the summary
    const text = mustOk(await cairn(['diff', ids[1]!.slice(0, 8), ids[2]!.slice(0, 8)], { env }), 'diff text').stdout;
    assert.match(text, new RegExp(`^comparing snapshot ${ids[1]!.slice(0, 8)} to ${ids[2]!.slice(0, 8)}:`));
    assert.match(text, /^T    \/src\/modes$/m);
    assert.match(text, /^\+    \/src\/rounds\/r2\.bin$/m);
    assert.match(text, /^M    \/src\/text\/log\.txt$/m);
    assert.match(text, /\nFiles: +\d+ new, +\d+ removed, +\d+ changed\nDirs: +\d+ new, +\d+ removed\nOthers: +\d+ new, +\d+ removed\nData Blobs: +\d+ new, +\d+ removed\nTree Blobs: +\d+ new, +\d+ removed\n {2}Added: +\S+ \S+\n {2}Removed: +\S+ \S+\n$/);
    const meta = mustOk(await cairn(['diff', '--metadata', ids[1]!.slice(0, 8), ids[2]!.slice(0, 8)], { env }), 'diff --metadata').stdout;
    assert.match(meta, /^U    \/src\/small\.txt$/m);
  } finally {
    d.cleanup();
  }
});

test('copy: missing blobs and snapshots copied (original set, parent cleared), copies skipped, restic agrees; different chunkers refused', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const { repo, env, ids, facts } = await twoToolRepo(d.dir);
    const dst = path.join(d.dir, 'dst');
    const pwFile = path.join(d.dir, 'src-password');
    fs.writeFileSync(pwFile, PW + '\n');
    const denv = { RESTIC_REPOSITORY: dst, RESTIC_PASSWORD: 'other-password' };
    mustOk(await cairn(['init', '--copy-chunker-params', '--from-repo', repo, '--from-password-file', pwFile], { env: denv }), 'init dst');
    // copy two snapshots first, then everything: the first two are recognised as copies
    const first = mustOk(await cairn(['copy', '--from-repo', repo, '--from-password-file', pwFile, '--json', ids[0]!.slice(0, 8), ids[1]!.slice(0, 8)], { env: denv }), 'copy 2');
    assert.deepEqual(lastJson(first), { message_type: 'summary', copied: 2, skipped: 0 });
    const all = mustOk(await cairn(['copy', '--from-repo', repo, '--from-password-file', pwFile, '--json'], { env: denv }), 'copy all');
    assert.deepEqual(lastJson(all), { message_type: 'summary', copied: 2, skipped: 2 });
    const again = mustOk(await cairn(['copy', '--json'], { env: { ...denv, RESTIC_FROM_REPOSITORY: repo, RESTIC_FROM_PASSWORD: PW } }), 'copy again');
    assert.deepEqual(lastJson(again), { message_type: 'summary', copied: 0, skipped: 4 });
    // restic sees cairn's copies as copies too
    const rc = mustOk(await restic(['copy', '--from-repo', repo, '--from-password-file', pwFile], { env: denv }), 'restic copy');
    assert.equal((rc.stdout.match(/skipping source snapshot/g) ?? []).length, 4, rc.stdout);
    const copied = JSON.parse(mustOk(await restic(['snapshots', '--json'], { env: denv }), 'snapshots').stdout) as Array<Record<string, unknown>>;
    assert.equal(copied.length, 4);
    for (const sn of copied) {
      assert.ok(ids.includes(String(sn.original)), 'original names the source snapshot');
      assert.equal(sn.parent, undefined);
    }
    mustOk(await restic(['check', '--read-data'], { env: denv }), 'restic check dst');
    for (const sn of copied) await assertRestores(d.dir, denv, String(sn.id), facts.get(String(sn.original))!, true);

    // a repository with another polynomial (or chunker) is refused, naming the difference
    const other = path.join(d.dir, 'other');
    const oenv = { RESTIC_REPOSITORY: other, RESTIC_PASSWORD: 'x' };
    mustOk(await cairn(['init', '--chunker', 'rabin'], { env: oenv }), 'init other');
    const refused = await cairn(['copy', '--from-repo', repo, '--from-password-file', pwFile], { env: oenv });
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /refusing to copy: the chunker polynomials differ \(source [0-9a-f]+, destination [0-9a-f]+\)/);
    const fast = path.join(d.dir, 'fastcdc');
    mustOk(await cairn(['init'], { env: { ...oenv, RESTIC_REPOSITORY: fast } }), 'init fastcdc');
    const refused2 = await cairn(['copy', '--from-repo', repo, '--from-password-file', pwFile], { env: { ...oenv, RESTIC_REPOSITORY: fast } });
    assert.equal(refused2.code, 2);
    assert.match(refused2.stderr, /the source repository uses the Rabin chunker, the destination the FastCDC \(min \d+, avg \d+, max \d+\) chunker/);
    assert.deepEqual(fs.readdirSync(path.join(other, 'snapshots')), []);
  } finally {
    d.cleanup();
  }
});

test('migrate upgrade_repo_v2: checks, then rewrites the config as version 2; restic agrees; damaged repositories are refused', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const repo = path.join(d.dir, 'repo');
    const src = path.join(d.dir, 'data', 'src');
    makeRichTree(src, 41);
    const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PW };
    mustOk(await cairn(['init', '--repository-version', '1', '--chunker', 'rabin'], { env }), 'init v1');
    mustOk(await cairn(['backup', 'src'], { env, cwd: path.dirname(src) }), 'backup');
    const config1 = JSON.parse(mustOk(await restic(['cat', 'config'], { env }), 'cat config').stdout);
    assert.equal(config1.version, 1);
    assert.match(mustOk(await cairn(['migrate'], { env }), 'list').stdout, /available migrations:\n {2}upgrade_repo_v2\tupgrade a repository to version 2/);

    // a damaged copy is refused and keeps version 1
    const broken = path.join(d.dir, 'broken');
    fs.cpSync(repo, broken, { recursive: true });
    const packDir = path.join(broken, 'data');
    const somePack = fs.readdirSync(packDir).flatMap((s) => fs.readdirSync(path.join(packDir, s)).map((f) => path.join(packDir, s, f)))[0]!;
    fs.rmSync(somePack);
    const refused = await cairn(['migrate', 'upgrade_repo_v2'], { env: { ...env, RESTIC_REPOSITORY: broken } });
    assert.equal(refused.code, 13);
    assert.match(refused.stderr, /repository contains errors/);
    assert.equal(JSON.parse(mustOk(await restic(['cat', 'config'], { env: { ...env, RESTIC_REPOSITORY: broken } }), 'cat').stdout).version, 1);

    const r = mustOk(await cairn(['migrate', 'upgrade_repo_v2'], { env }), 'migrate');
    assert.match(r.stdout, /checking repository integrity\.\.\.[\s\S]*applying migration upgrade_repo_v2\.\.\.\nmigration upgrade_repo_v2: success/);
    const config2 = JSON.parse(mustOk(await restic(['cat', 'config'], { env }), 'cat config').stdout);
    assert.deepEqual(config2, { ...config1, version: 2 });
    mustOk(await restic(['check', '--read-data'], { env }), 'restic check after migrate');
    // version 2 features work now: compressed blobs from a new backup, readable by restic
    fs.writeFileSync(path.join(src, 'compressible.txt'), 'abc'.repeat(200_000));
    mustOk(await cairn(['backup', 'src'], { env, cwd: path.dirname(src) }), 'backup v2');
    mustOk(await restic(['check', '--read-data'], { env }), 'restic check v2 data');
    for (const s of await snapshotIds(env)) mustOk(await restic(['restore', s.id, '--target', path.join(d.dir, `r-${s.id.slice(0, 8)}`)], { env }), 'restore');
    // applying it again does nothing (exit 1, like restic's "check failed" warning)
    const twice = await cairn(['migrate', 'upgrade_repo_v2'], { env });
    assert.equal(twice.code, 1);
    assert.match(twice.stdout, /migration upgrade_repo_v2 cannot be applied: check failed/);
    assert.match(mustOk(await cairn(['migrate'], { env }), 'list').stdout, /no migrations found/);
  } finally {
    d.cleanup();
  }
});
