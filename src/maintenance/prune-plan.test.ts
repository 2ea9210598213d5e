import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { CompactIndex } from '../repository/compact-index.js';
import { packSizeFromBlobs } from '../format/pack.js';
import { maxUnusedBytes, parseMaxUnused, parseSize, planPrune, PackAction, type PackFile, type PruneLimits } from './prune-plan.js';

const MiB = 1024 * 1024;

function id(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

interface PackSpec {
  name: string;
  type?: 'data' | 'tree';
  /** [blob name, stored length, used?] */
  blobs: Array<[string, number, boolean]>;
  compressed?: boolean;
  /** Not in the repository listing. */
  missing?: boolean;
  /** Not in the index (only a file). */
  unindexed?: boolean;
  /** File size differs from the index by this much. */
  sizeDelta?: number;
}

function build(specs: PackSpec[]) {
  const index = new CompactIndex();
  const files: PackFile[] = [];
  const usedNames = new Set<string>();
  for (const p of specs) {
    let offset = 0;
    const blobs = p.blobs.map(([name, length, used]) => {
      if (used) usedNames.add(`${p.type ?? 'data'}:${name}`);
      const b = { id: id(name), type: p.type ?? 'data', offset, length, uncompressedLength: p.compressed ? length * 2 : undefined };
      offset += length;
      return b;
    });
    if (!p.unindexed) index.addPack(id(p.name), blobs);
    if (!p.missing) files.push({ id: id(p.name), size: packSizeFromBlobs(blobs) + (p.sizeDelta ?? 0) });
  }
  const used = new Uint8Array(index.handleCount);
  for (const u of usedNames) {
    const [type, name] = u.split(':') as ['data' | 'tree', string];
    used[index.find(type, id(name!))] = 1;
  }
  return { index, files, used };
}

const limits = (o: Partial<PruneLimits> = {}): PruneLimits => ({ maxUnused: { kind: 'percent', value: 5 }, maxRepackBytes: Infinity, packSize: 16 * MiB, ...o });

function actionOf(index: CompactIndex, plan: ReturnType<typeof planPrune>, name: string): PackAction | 'unknown' {
  const n = index.packNumber(id(name));
  return n === undefined ? 'unknown' : (plan.action[n] as PackAction);
}

test('sizes and --max-unused parse like restic', () => {
  assert.equal(parseSize('1024'), 1024);
  assert.equal(parseSize('5k'), 5120);
  assert.equal(parseSize('2M'), 2 * MiB);
  assert.equal(parseSize('1g'), 1024 * MiB);
  assert.equal(parseSize('1T'), 1024 * 1024 * MiB);
  assert.throws(() => parseSize('1.5G'));
  assert.throws(() => parseSize('10 MB'));
  assert.deepEqual(parseMaxUnused('unlimited'), { kind: 'unlimited' });
  assert.deepEqual(parseMaxUnused('5%'), { kind: 'percent', value: 5 });
  assert.deepEqual(parseMaxUnused('0.5%'), { kind: 'percent', value: 0.5 });
  assert.deepEqual(parseMaxUnused('200m'), { kind: 'bytes', value: 200 * MiB });
  assert.throws(() => parseMaxUnused('100%'), /below 100%/);
  assert.throws(() => parseMaxUnused('-1%'), /must be positive/);
  assert.throws(() => parseMaxUnused(''), /invalid value/);
  assert.equal(maxUnusedBytes({ kind: 'percent', value: 5 }, 95 * MiB), Math.floor((5 / 95) * 95 * MiB));
  assert.equal(maxUnusedBytes({ kind: 'unlimited' }, 1), Infinity);
});

test('fully used packs stay, unused ones go, unindexed files are deleted first', () => {
  const { index, files, used } = build([
    { name: 'full', blobs: [['a', 3 * MiB, true], ['b', 2 * MiB, true]] },
    { name: 'empty', blobs: [['c', 3 * MiB, false], ['d', 1 * MiB, false]] },
    { name: 'stray', unindexed: true, blobs: [['e', 100, false]] },
  ]);
  const plan = planPrune(index, used, files, limits(), 2);
  assert.equal(actionOf(index, plan, 'full'), PackAction.Keep);
  assert.equal(actionOf(index, plan, 'empty'), PackAction.Remove);
  assert.deepEqual(plan.removeFirst.map((p) => p.id), [id('stray')]);
  assert.equal(plan.repackCount, 0);
  assert.equal(plan.keepCount, 0);
  assert.equal(plan.stats.blobs.used, 2);
  assert.equal(plan.stats.blobs.unused, 2);
  assert.equal(plan.stats.blobs.remove, 2);
  assert.equal(plan.stats.packs.unref, 1);
  assert.equal(plan.stats.size.unref, files.find((f) => f.id === id('stray'))!.size);
});

test('partly used data packs are repacked until the unused space is within --max-unused', () => {
  // 90 MiB used; three packs with 6, 4 and 2 MiB unused (12 MiB): at 5% (≈4.7 MiB) the two
  // packs with the highest unused ratio are repacked, the third stays
  const { index, files, used } = build([
    { name: 'used', blobs: [['u1', 8 * MiB, true], ['u2', 8 * MiB, true], ['u3', 8 * MiB, true], ['u4', 8 * MiB, true], ['u5', 8 * MiB, true], ['u6', 8 * MiB, true], ['u7', 8 * MiB, true]] },
    { name: 'p6', blobs: [['a', 10 * MiB, true], ['x', 6 * MiB, false]] },
    { name: 'p4', blobs: [['b', 12 * MiB, true], ['y', 4 * MiB, false]] },
    { name: 'p2', blobs: [['c', 12 * MiB, true], ['z', 2 * MiB, false]] },
  ]);
  const plan = planPrune(index, used, files, limits(), 2);
  assert.equal(actionOf(index, plan, 'p6'), PackAction.Repack);
  assert.equal(actionOf(index, plan, 'p4'), PackAction.Repack);
  assert.equal(actionOf(index, plan, 'p2'), PackAction.Keep);
  assert.equal(actionOf(index, plan, 'used'), PackAction.Keep);
  // blobs copied: the used ones of the repacked packs
  assert.equal(plan.keepCount, 2);
  assert.equal(plan.keep[index.find('data', id('a'))], 1);
  assert.equal(plan.keep[index.find('data', id('b'))], 1);
  assert.equal(plan.keep[index.find('data', id('x'))], 0);
  assert.equal(plan.stats.blobs.repackrm, 2);
  // unlimited: nothing is repacked; 0%: everything partly used is
  assert.equal(planPrune(index, used, files, limits({ maxUnused: { kind: 'unlimited' } }), 2).repackCount, 0);
  assert.equal(planPrune(index, used, files, limits({ maxUnused: { kind: 'percent', value: 0 } }), 2).repackCount, 3);
  // --max-repack-size stops before a pack would exceed it
  const capped = planPrune(index, used, files, limits({ maxUnused: { kind: 'percent', value: 0 }, maxRepackBytes: 20 * MiB }), 2);
  assert.equal(capped.repackCount, 1);
});

test('tree packs with unused blobs are always repacked; --repack-cacheable-only leaves data packs', () => {
  const { index, files, used } = build([
    { name: 'trees', type: 'tree', compressed: true, blobs: [['t1', 1000, true], ['t2', 1000, false]] },
    { name: 'data', blobs: [['d1', 10 * MiB, true], ['d2', 6 * MiB, false]] },
  ]);
  const unlimited = planPrune(index, used, files, limits({ maxUnused: { kind: 'unlimited' } }), 2);
  assert.equal(actionOf(index, unlimited, 'trees'), PackAction.Repack);
  assert.equal(actionOf(index, unlimited, 'data'), PackAction.Keep);
  const cacheable = planPrune(index, used, files, limits({ maxUnused: { kind: 'percent', value: 0 }, repackCacheableOnly: true }), 2);
  assert.equal(actionOf(index, cacheable, 'data'), PackAction.Keep);
  assert.equal(actionOf(index, cacheable, 'trees'), PackAction.Repack);
});

test('v2: uncompressed tree packs must be compressed; --repack-uncompressed does the same for data', () => {
  const { index, files, used } = build([
    { name: 'trees', type: 'tree', blobs: [['t1', 2 * MiB, true]] },
    { name: 'data', blobs: [['d1', 10 * MiB, true]] },
  ]);
  const plan = planPrune(index, used, files, limits(), 2);
  assert.equal(actionOf(index, plan, 'trees'), PackAction.Repack);
  assert.equal(plan.mustCompress[index.packNumber(id('trees'))!], 1);
  assert.equal(actionOf(index, plan, 'data'), PackAction.Keep);
  const all = planPrune(index, used, files, limits({ repackUncompressed: true }), 2);
  assert.equal(actionOf(index, all, 'data'), PackAction.Repack);
  // v1 has no compression: nothing to do
  assert.equal(planPrune(index, used, files, limits({ repackUncompressed: true }), 1).repackCount, 0);
});

test('small packs are repacked only when there are at least 10 of them (or with --repack-small)', () => {
  const nine = build(Array.from({ length: 9 }, (_, i) => ({ name: `s${i}`, blobs: [[`b${i}`, 100 * 1024, true]] as Array<[string, number, boolean]> })));
  assert.equal(planPrune(nine.index, nine.used, nine.files, limits(), 2).repackCount, 0);
  const ten = build(Array.from({ length: 10 }, (_, i) => ({ name: `s${i}`, blobs: [[`b${i}`, 100 * 1024, true]] as Array<[string, number, boolean]> })));
  const plan = planPrune(ten.index, ten.used, ten.files, limits(), 2);
  assert.equal(plan.repackCount, 10);
  assert.equal(plan.keepCount, 10);
  // 4 MiB packs are "small" only with --repack-small (below 80% of 16 MiB)
  const mid = build(Array.from({ length: 10 }, (_, i) => ({ name: `m${i}`, blobs: [[`c${i}`, 4 * MiB, true]] as Array<[string, number, boolean]> })));
  assert.equal(planPrune(mid.index, mid.used, mid.files, limits(), 2).repackCount, 0);
  assert.equal(planPrune(mid.index, mid.used, mid.files, limits({ repackSmall: true }), 2).repackCount, 10);
});

test('duplicates: one copy counts as used, preferably in a pack that has other used blobs', () => {
  const { index, files, used } = build([
    { name: 'lonely', blobs: [['dup', 1 * MiB, true], ['junk', 5 * MiB, false]] },
    { name: 'busy', blobs: [['other', 10 * MiB, true], ['dup', 1 * MiB, true]] },
  ]);
  const plan = planPrune(index, used, files, limits({ maxUnused: { kind: 'percent', value: 0 } }), 2);
  assert.equal(plan.stats.blobs.duplicate, 1);
  // "lonely" has no other used blob, so its copy of dup is unused: the pack goes entirely
  assert.equal(actionOf(index, plan, 'lonely'), PackAction.Remove);
  assert.equal(actionOf(index, plan, 'busy'), PackAction.Keep);
  assert.equal(plan.keepCount, 0);
});

test('a used blob whose other copy survives is not copied again', () => {
  const { index, files, used } = build([
    { name: 'partly', blobs: [['shared', 1 * MiB, true], ['own', 1 * MiB, true], ['junk', 14 * MiB, false]] },
    { name: 'kept', blobs: [['shared', 1 * MiB, true], ['big', 15 * MiB, true]] },
  ]);
  const plan = planPrune(index, used, files, limits(), 2);
  assert.equal(actionOf(index, plan, 'partly'), PackAction.Repack);
  assert.equal(actionOf(index, plan, 'kept'), PackAction.Keep);
  assert.equal(plan.keep[index.find('data', id('shared'))], 0);
  assert.equal(plan.keep[index.find('data', id('own'))], 1);
});

test('missing packs: ignored when nothing in them is needed, an error otherwise; wrong sizes are errors', () => {
  const ok = build([
    { name: 'gone', missing: true, blobs: [['x', 100, false]] },
    { name: 'here', blobs: [['y', 5 * MiB, true]] },
  ]);
  const plan = planPrune(ok.index, ok.used, ok.files, limits(), 2);
  assert.equal(actionOf(ok.index, plan, 'gone'), PackAction.Ignore);
  assert.equal(plan.ignoreCount, 1);
  const bad = build([{ name: 'gone', missing: true, blobs: [['x', 100, true]] }]);
  assert.throws(() => planPrune(bad.index, bad.used, bad.files, limits(), 2), new RegExp(`packs from index missing in repo.*${id('gone')}`));
  const wrong = build([{ name: 'short', sizeDelta: -10, blobs: [['x', 1000, true]] }]);
  assert.throws(() => planPrune(wrong.index, wrong.used, wrong.files, limits(), 2), new RegExp(`pack ${id('short')}: calculated size \\d+ does not match real size`));
  // an unused pack with a wrong size is simply removed
  const unusedWrong = build([{ name: 'short', sizeDelta: -10, blobs: [['x', 1000, false]] }]);
  assert.equal(actionOf(unusedWrong.index, planPrune(unusedWrong.index, unusedWrong.used, unusedWrong.files, limits(), 2), 'short'), PackAction.Remove);
});

test('repack order: tree packs first, then small packs, then by unused ratio', () => {
  // with max-repack-size only the first candidates are taken, which shows the order
  const { index, files, used } = build([
    { name: 'data-half', blobs: [['a', 8 * MiB, true], ['b', 8 * MiB, false]] },
    { name: 'data-quarter', blobs: [['c', 12 * MiB, true], ['d', 4 * MiB, false]] },
    { name: 'tree', type: 'tree', compressed: true, blobs: [['t', 8 * MiB, true], ['u', 8 * MiB, false]] },
  ]);
  const plan = planPrune(index, used, files, limits({ maxUnused: { kind: 'percent', value: 0 }, maxRepackBytes: 33 * MiB }), 2);
  assert.equal(actionOf(index, plan, 'tree'), PackAction.Repack);
  assert.equal(actionOf(index, plan, 'data-half'), PackAction.Repack);
  assert.equal(actionOf(index, plan, 'data-quarter'), PackAction.Keep);
});
