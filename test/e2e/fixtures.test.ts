import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { cairn, fixturesDir, mustOk, tempDir } from '../support/env.js';
import { diffFacts, snapshotFacts } from '../support/tree.js';

const SNAPSHOTS = { v1: '27a35f42d14d4571781742014a97ed463e1ca4b05e5a8316313c833b3f4d0857', v2: '6a0dc4485911bc8d1f843f76ec83a9cac9ad284a1a09a27cf25ddcff785b2e76' };
const ROOT_TREE = '7799dc17944926087766f1a7caa404807d0d33808ff961d45b8c868cdb2669be';

for (const v of ['v1', 'v2'] as const) {
  test(`restic 0.14 ${v} fixture: list, ls, cat and byte-identical restore`, async () => {
    const t = tempDir();
    try {
      const repo = path.join(t.dir, 'repo');
      cpSync(path.join(fixturesDir, `restic-0.14-${v}`), repo, { recursive: true });
      const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'fixture-password' };

      const snaps = JSON.parse(mustOk(await cairn(['snapshots', '--json'], { env }), 'snapshots').stdout);
      assert.equal(snaps.length, 1);
      assert.equal(snaps[0].id, SNAPSHOTS[v]);
      assert.equal(snaps[0].tree, ROOT_TREE);
      assert.deepEqual(snaps[0].paths, ['/restic-fixture/src']);
      assert.deepEqual(snaps[0].tags, ['fixture', 'restic-0.14']);

      const ls = mustOk(await cairn(['ls', 'latest'], { env }), 'ls').stdout.split('\n').filter(Boolean);
      assert.ok(ls.includes('/src/big/random-hex.txt'));
      assert.ok(ls.includes('/src/links/dangling'));
      assert.ok(!ls.some((l) => l.includes('excluded.tmp')));

      const cfg = JSON.parse(mustOk(await cairn(['cat', 'config'], { env }), 'cat config').stdout);
      assert.equal(cfg.chunker_polynomial, '2497575ac89183');
      assert.equal(cfg.version, v === 'v1' ? 1 : 2);

      const target = path.join(t.dir, 'restore');
      mustOk(await cairn(['restore', SNAPSHOTS[v].slice(0, 8), '--target', target, '--verify'], { env }), 'restore');

      const expected = path.join(t.dir, 'expected');
      mkdirSync(expected);
      execFileSync('tar', ['--xattrs', '--xattrs-include=user.*', '-xpf', path.join(fixturesDir, 'restic-0.14-v2-source.tar'), '-C', expected]);
      execFileSync('rm', [path.join(expected, 'src/excluded.tmp')]);
      const diffs = diffFacts(snapshotFacts(path.join(expected, 'src')), snapshotFacts(path.join(target, 'src')));
      assert.deepEqual(diffs, []);
    } finally {
      t.cleanup();
    }
  });
}

test('wrong password and missing repository give distinct exit codes and one clear line', async () => {
  const t = tempDir();
  try {
    const repo = path.join(t.dir, 'repo');
    cpSync(path.join(fixturesDir, 'restic-0.14-v2'), repo, { recursive: true });
    const wrong = await cairn(['snapshots'], { env: { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: 'nope' } });
    assert.equal(wrong.code, 12);
    assert.match(wrong.stderr, /wrong password/);
    assert.equal(wrong.stderr.trim().split('\n').length, 1);
    const missing = await cairn(['snapshots'], { env: { RESTIC_REPOSITORY: path.join(t.dir, 'nothing'), RESTIC_PASSWORD: 'x' } });
    assert.equal(missing.code, 10);
    assert.match(missing.stderr, /no repository at/);
    const nopw = await cairn(['snapshots', '-r', repo], { env: { RESTIC_PASSWORD: undefined, RESTIC_PASSWORD_FILE: undefined } });
    assert.equal(nopw.code, 2);
    assert.match(nopw.stderr, /no repository password given/);
  } finally {
    t.cleanup();
  }
});
