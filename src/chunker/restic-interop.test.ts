/**
 * Golden data from the real thing: restic 0.14 backs up a few files into a fresh repository (with
 * its own random polynomial); our Rabin chunker must produce exactly the data blob IDs restic
 * recorded for each file, in order. Skipped only when restic is absent outside CI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createChunker, RESTIC_RABIN } from './chunker.js';
import { parsePolynomial } from './polynomial.js';
import { splitChunks } from './stream.js';
import { dataWithZeroRuns, fromParts, prng, splitAt } from './testkit.test.js';

const MiB = 1024 * 1024;

function resticAvailable(): boolean {
  try {
    execFileSync('restic', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface TreeNode {
  name: string;
  type: string;
  content?: string[] | null;
  subtree?: string;
}

test('data blob IDs match restic 0.14 backups of the same files', { timeout: 300_000 }, async (t) => {
  if (!resticAvailable()) {
    if (process.env.CI) assert.fail('restic is not installed but CI is set (the CI installs Debian restic 0.14)');
    t.skip('restic not installed');
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'cairn-chunker-restic-'));
  try {
    const repo = join(work, 'repo');
    const src = join(work, 'src');
    mkdirSync(src);
    const periodic = Buffer.allocUnsafe(17 * MiB + 3);
    for (let i = 0; i < periodic.length; i++) periodic[i] = (i * 13) % 64;
    const files: Record<string, Buffer> = {
      'random-7m.bin': prng(1001, 7 * MiB + 17),
      'random-3m.bin': prng(1002, 3 * MiB),
      'runs-5m.bin': dataWithZeroRuns(1003, 5 * MiB, 300000),
      'periodic-17m.bin': periodic,
      'zeros-2m.bin': Buffer.alloc(2 * MiB + 1),
      'small.txt': Buffer.from('hello restic\n'),
      'exactly-min.bin': prng(1004, RESTIC_RABIN.minSize),
    };
    for (const [name, data] of Object.entries(files)) writeFileSync(join(src, name), data);

    const env = { ...process.env, RESTIC_PASSWORD: 'chunker-test', RESTIC_REPOSITORY: repo };
    const restic = (...args: string[]): string =>
      execFileSync('restic', ['--no-cache', '-q', ...args], { env, cwd: work, maxBuffer: 64 * MiB }).toString('utf8');

    restic('init');
    restic('backup', 'src', '--host', 'cairn-test');

    const config = JSON.parse(restic('cat', 'config')) as { chunker_polynomial: string };
    const polynomial = parsePolynomial(config.chunker_polynomial);
    const snapshots = JSON.parse(restic('snapshots', '--json')) as Array<{ id: string; tree: string }>;
    assert.equal(snapshots.length, 1);
    const tree = (id: string): TreeNode[] => (JSON.parse(restic('cat', 'blob', id)) as { nodes: TreeNode[] }).nodes;
    const root = tree(snapshots[0].tree);
    assert.equal(root.length, 1);
    const nodes = tree(root[0].subtree as string);
    assert.deepEqual(nodes.map((n) => n.name).sort(), Object.keys(files).sort());

    const chunker = createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, polynomial });
    const allOurs = new Set<string>();
    for (const node of nodes) {
      const data = files[node.name];
      const ours: string[] = [];
      for await (const chunk of splitChunks(fromParts(splitAt(data, [1 * MiB + 3])), chunker.newFile())) {
        ours.push(createHash('sha256').update(chunk).digest('hex'));
      }
      assert.deepEqual(ours, node.content ?? [], `${node.name} (polynomial ${config.chunker_polynomial})`);
      ours.forEach((id) => allOurs.add(id));
    }
    // And restic's list of data blobs in the repository is exactly that set.
    const listed = restic('list', 'blobs')
      .split('\n')
      .filter((l) => l.startsWith('data '))
      .map((l) => l.slice(5).trim());
    assert.deepEqual(new Set(listed), allOurs);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
