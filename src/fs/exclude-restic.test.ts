/**
 * Cross-checks compileExcludes / readExcludeFile against the real restic binary (when one is on
 * PATH): `restic backup --dry-run -vv` lists what it would save; we predict the same set by
 * walking the tree and applying our predicate to every path on the way down, as restic does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstat, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { compileExcludes, readExcludeFile } from './exclude.js';
import { joinPath } from './path.js';
import { readDirSorted } from './walk.js';
import { withTempDir } from './testkit.test.js';

function findRestic(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir || '.', 'restic');
    try {
      execFileSync(p, ['version'], { stdio: 'ignore' });
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

const NEW_PREFIX = Buffer.from('new       ');
const SAVED = Buffer.from(', saved in');

/** Paths (files and directories, as latin1 strings of their bytes) restic would save below root. */
function resticSelection(restic: string, env: NodeJS.ProcessEnv, root: string, args: string[]): Set<string> {
  const out = execFileSync(restic, ['backup', '--dry-run', '-vv', '--no-cache', ...args, root], {
    env,
    maxBuffer: 64 << 20,
  });
  const sel = new Set<string>();
  let start = 0;
  while (start < out.length) {
    let end = out.indexOf(0x0a, start);
    if (end < 0) end = out.length;
    const line = out.subarray(start, end);
    start = end + 1;
    if (!line.subarray(0, NEW_PREFIX.length).equals(NEW_PREFIX)) continue;
    const cut = line.indexOf(SAVED);
    let p = line.subarray(NEW_PREFIX.length, cut);
    if (p[p.length - 1] === 0x2f) p = p.subarray(0, p.length - 1);
    if (p.length > root.length && p.subarray(0, root.length + 1).equals(Buffer.from(root + '/'))) sel.add(p.toString('latin1'));
  }
  return sel;
}

async function ourSelection(root: string, excluded: (p: Buffer) => boolean): Promise<Set<string>> {
  const sel = new Set<string>();
  const visit = async (dir: Buffer): Promise<void> => {
    for (const name of await readDirSorted(dir)) {
      const p = joinPath(dir, name);
      if (excluded(p)) continue;
      sel.add(p.toString('latin1'));
      if ((await lstat(p)).isDirectory()) await visit(p);
    }
  };
  if (!excluded(Buffer.from(root))) await visit(Buffer.from(root)); // restic checks the target too
  return sel;
}

test('exclude patterns select exactly what restic 0.14 selects', async (t) => {
  const restic = findRestic();
  if (restic === undefined) {
    t.skip('no restic binary on PATH');
    return;
  }
  await withTempDir('exclude-restic', async (dir) => {
    const root = path.join(dir, 'data');
    const files = [
      'a/b/x.tmp',
      'a/b/y.txt',
      'a/keep.log',
      'a/other.log',
      'foo/bar/z',
      'foo/baz/bar',
      'x/foo/bar/deep/f',
      'x.tmp/inner',
      'src/lib/gen/a.o',
      'src/a.o',
      'Upper/CASE.JPG',
      'ab',
      'ac',
      'b?c',
      'star*name',
      'é/ü.txt',
      'sp ace/t',
    ];
    for (const f of files) {
      await mkdir(path.dirname(path.join(root, f)), { recursive: true });
      await writeFile(path.join(root, f), 'x');
    }
    const bad = joinPath(root, Buffer.from([0x6e, 0xff, 0x2e, 0x74, 0x6d, 0x70])); // "n\xff.tmp"
    await writeFile(bad, 'x');
    await writeFile(joinPath(root, Buffer.from([0x71, 0xfe])), 'x'); // "q\xfe"

    const env = { ...process.env, RESTIC_PASSWORD: 'x', RESTIC_REPOSITORY: path.join(dir, 'repo'), CAIRN_XDIR: 'foo' };
    execFileSync(restic, ['init', '-q'], { env, stdio: 'ignore' });

    const sets: string[][] = [
      ['*.tmp'],
      ['foo/bar'],
      ['bar'],
      [`${root}/a`],
      [`${root}/a/`, '!keep.log'],
      ['*.log', '!keep.log'],
      ['!keep.log', '*.log'],
      ['**/gen'],
      ['src/**/*.o'],
      [`${root}/src/**`],
      ['[a-b]?'],
      ['b\\?c', 'star\\*name'],
      ['?/ü.txt'],
      ['n?.tmp'],
      ['q?'],
      [`${root}/*`, `!${root}/a`, '!*.txt'],
      ['sp ace'],
      [`${root}/../data/x.tmp`],
    ];
    for (const pats of sets) {
      const args = pats.flatMap((p) => ['--exclude', p]);
      const want = resticSelection(restic, env, root, args);
      const got = await ourSelection(root, compileExcludes(pats));
      assert.deepEqual([...got].sort(), [...want].sort(), `patterns ${JSON.stringify(pats)}`);
    }

    // case-insensitive
    for (const pats of [['*.jpg'], ['upper'], ['É']]) {
      const want = resticSelection(restic, env, root, pats.flatMap((p) => ['--iexclude', p]));
      const got = await ourSelection(root, compileExcludes(pats, { caseInsensitive: true }));
      assert.deepEqual([...got].sort(), [...want].sort(), `iexclude ${JSON.stringify(pats)}`);
    }

    // exclude file with comments and environment variables
    const ef = path.join(dir, 'excludes');
    await writeFile(ef, `# comment\n\n  $CAIRN_XDIR/bar  \r\n\${CAIRN_XDIR}/baz\n*.lo$$g\n*.log\n`);
    const want = resticSelection(restic, env, root, ['--exclude-file', ef]);
    const pats = await readExcludeFile(ef, env);
    assert.deepEqual(pats, ['foo/bar', 'foo/baz', '*.lo$g', '*.log']);
    const got = await ourSelection(root, compileExcludes(pats));
    assert.deepEqual([...got].sort(), [...want].sort(), 'exclude file');
  });
});
