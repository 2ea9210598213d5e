import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { cairn, mustOk, requireRestic, restic, tempDir } from '../support/env.js';
import { diffFacts, makeRichTree, snapshotFacts } from '../support/tree.js';

const PW = { RESTIC_PASSWORD: 'interop-password' };

for (const version of [1, 2] as const) {
  for (const chunker of ['rabin', 'fastcdc'] as const) {
    test(`cairn backup (v${version}, ${chunker}) → restic check --read-data + restic restore identical`, async (t) => {
      if (!requireRestic(t)) return;
      const d = tempDir();
      try {
        const repo = path.join(d.dir, 'repo');
        const src = path.join(d.dir, 'src');
        makeRichTree(src, version * 10 + (chunker === 'rabin' ? 1 : 2));
        const env = { ...PW, RESTIC_REPOSITORY: repo };
        mustOk(await cairn(['init', '--repository-version', String(version), '--chunker', chunker], { env }), 'cairn init');
        mustOk(await cairn(['backup', src, '--tag', 'interop'], { env }), 'cairn backup');
        const check = mustOk(await restic(['check', '--read-data'], { env }), 'restic check');
        assert.match(check.stdout, /no errors were found/);
        const target = path.join(d.dir, 'restic-restore');
        mustOk(await restic(['restore', 'latest', '--target', target], { env }), 'restic restore');
        assert.deepEqual(diffFacts(snapshotFacts(src), snapshotFacts(path.join(target, src))), []);
        // and cairn reads back its own snapshot identically
        const target2 = path.join(d.dir, 'cairn-restore');
        mustOk(await cairn(['restore', 'latest', '--target', target2, '--verify'], { env }), 'cairn restore');
        assert.deepEqual(diffFacts(snapshotFacts(src), snapshotFacts(path.join(target2, src))), []);
      } finally {
        d.cleanup();
      }
    });
  }

  test(`restic backup (v${version}) → cairn restore identical; second cairn backup dedups`, async (t) => {
    if (!requireRestic(t)) return;
    const d = tempDir();
    try {
      const repo = path.join(d.dir, 'repo');
      // src lives one level down so that creating the restore target does not change the
      // metadata of its parent directory (which is part of the snapshot's root chain)
      const src = path.join(d.dir, 'data', 'src');
      makeRichTree(src, 100 + version);
      const env = { ...PW, RESTIC_REPOSITORY: repo };
      mustOk(await restic(['init', '--repository-version', String(version)], { env }), 'restic init');
      // relative target (like Velero's `restic backup .`): the root chain holds only src itself
      mustOk(await restic(['backup', 'src', '--host', 'h1'], { env, cwd: path.dirname(src) }), 'restic backup');
      const target = path.join(d.dir, 'restore');
      mustOk(await cairn(['restore', 'latest', '--target', target, '--verify'], { env }), 'cairn restore');
      assert.deepEqual(diffFacts(snapshotFacts(src), snapshotFacts(path.join(target, 'src'))), []);

      // Same data, same host and paths: identical tree IDs and (almost) nothing new stored.
      const r = JSON.parse(mustOk(await cairn(['backup', 'src', '--host', 'h1', '--json', '--force'], { env, cwd: path.dirname(src) }), 'cairn backup').stdout.trim().split('\n').pop()!);
      assert.ok(r.data_added < 0.01 * r.total_bytes_processed, `cairn added ${r.data_added} of ${r.total_bytes_processed} bytes`);
      const snaps = JSON.parse(mustOk(await restic(['snapshots', '--json'], { env }), 'restic snapshots').stdout);
      assert.equal(snaps.length, 2);
      assert.equal(snaps[0].tree, snaps[1].tree, 'cairn and restic produce the same root tree ID');
      mustOk(await restic(['check', '--read-data'], { env }), 'restic check');
    } finally {
      d.cleanup();
    }
  });
}
