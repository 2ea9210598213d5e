/**
 * forget decides exactly like restic: hundreds of generated snapshots (random times across years,
 * several hosts, path sets and tags, times written with different zone offsets, a few in the
 * future), many policies, restic and cairn run under several TZ values; the `--json` outputs
 * (groups, keep/remove lists, reasons, counters) must be identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cairn, mustOk, requireRestic, restic, tempDir } from '../support/env.js';
import { seeded } from '../support/tree.js';
import { LocalBackend } from '../../src/backend/local.js';
import { Repository } from '../../src/repository/repository.js';
import { saveSnapshot } from '../../src/repository/snapshots.js';
import { formatTime } from '../../src/format/time.js';
import type { Snapshot } from '../../src/format/snapshot.js';

const PW = 'forget-equivalence';
const OFFSETS = [0, 540, -300, -240, 60, 120, 330, 630, 660, -210, 600, 0];
const HOSTS = ['h1', 'h2', 'h3'];
const PATHS = [['/a'], ['/a', '/b'], ['/b', '/a'], ['/c']];
const TAGS = ['daily', 'weekly', 'x'];
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Australia/Lord_Howe', 'Asia/Tokyo'];

const POLICIES: string[][] = [
  ['--keep-last', '5'],
  ['--keep-hourly', '10', '--keep-daily', '7', '--keep-weekly', '5', '--keep-monthly', '12', '--keep-yearly', '3'],
  ['--keep-within', '1y2m3d4h'],
  ['--keep-within', '6m', '--keep-daily', '30'],
  ['--keep-within-hourly', '2d', '--keep-within-daily', '10d', '--keep-within-weekly', '2m', '--keep-within-monthly', '1y', '--keep-within-yearly', '5y'],
  ['--keep-tag', 'daily', '--keep-tag', 'x,weekly', '--keep-last', '2'],
  ['--group-by', 'host,tags', '--keep-daily', '3', '--keep-weekly', '2', '--tag', 'daily', '--tag', 'x'],
  ['--group-by', '', '--keep-monthly', '6', '--keep-yearly', '10', '--host', 'h1', '--host', 'h2'],
  ['--group-by', 'paths', '--path', '/a', '--keep-weekly', '4', '--keep-within-monthly', '3y'],
  ['--keep-daily=-1', '--keep-hourly', '3', '--keep-tag', ''],
  ['--keep-within-hourly', '1m1d', '--keep-within-weekly', '1m'],
  ['--keep-within', '1m'],
];
/** Policies run under every zone (the others under three zones each, rotating). */
const ALL_ZONES = new Set([POLICIES.length - 1, POLICIES.length - 2, 3]);

async function makeSnapshots(repoDir: string, n: number, seed: number): Promise<void> {
  const repo = await Repository.open(new LocalBackend(repoDir), PW);
  const rand = seeded(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const start = Date.parse('2019-01-01T00:00:00Z');
  const end = Date.parse('2025-12-31T00:00:00Z');
  const tree = 'ac08ce34ba4f8123618661bef2425f7028ffb9ac740578a3ee88684d2523fee8';
  const times: bigint[] = [];
  for (let i = 0; i < n; i++) {
    let ms: number;
    const r = rand();
    if (r < 0.6) ms = start + rand() * (end - start);
    else if (r < 0.97) {
      // bursts: close to an earlier snapshot, so hour/day/week buckets hold several snapshots
      const base = times.length ? Number(times[Math.floor(rand() * times.length)]! / 1_000_000n) : start;
      ms = base + (rand() - 0.5) * pick([2 * 3600e3, 36 * 3600e3, 10 * 86400e3]);
    } else ms = Date.parse('2031-06-01T00:00:00Z') + rand() * 86400e3 * 300; // in the future
    times.push(BigInt(Math.floor(ms)) * 1_000_000n + BigInt(Math.floor(rand() * 1e6)));
  }
  // Snapshots on daylight-saving edges: Go attaches the local zone to a time whose offset matches
  // it, and AddDate (keep-within) then follows the zone's rules: 12:00+02:00 minus one month is
  // 12:00+01:00 in Europe/Berlin but 12:00+02:00 elsewhere, so 11:30+01:00 is kept or not
  // depending on TZ. The same in America/New_York the other way round.
  const edges: Array<[string, string]> = [
    ['dst-berlin', '2024-04-10T12:00:00+02:00'],
    ['dst-berlin', '2024-03-10T11:30:00+01:00'],
    ['dst-berlin', '2024-03-10T12:15:00+02:00'],
    ['dst-ny', '2024-11-20T12:00:00-05:00'],
    ['dst-ny', '2024-10-20T12:30:00-04:00'],
    ['dst-ny', '2024-10-20T11:45:00-05:00'],
  ];
  for (const [host, time] of edges) await saveSnapshot(repo, { time, tree, paths: ['/dst'], hostname: host, username: 'gen' });
  for (const [i, ns] of times.entries()) {
    const off = OFFSETS[i % OFFSETS.length]!;
    let time = formatTime(ns, off);
    if (i % OFFSETS.length === OFFSETS.length - 1) time = time.replace(/Z$/, '+00:00'); // Go prints it as Z
    const tags = TAGS.filter(() => rand() < 0.35);
    if (rand() < 0.5) tags.reverse();
    const sn: Snapshot = { time, tree, paths: [...pick(PATHS)], hostname: pick(HOSTS), username: 'gen' };
    if (tags.length) sn.tags = tags;
    await saveSnapshot(repo, sn);
  }
}

type Group = { tags: string[] | null; host: string; paths: string[] | null; keep: unknown; remove: unknown; reasons: unknown };

function byKey(json: string): Map<string, Group> {
  const groups = (json.trim() === '' ? [] : JSON.parse(json)) as Group[];
  return new Map(groups.map((g) => [JSON.stringify([g.host, g.paths, g.tags]), g]));
}

test('forget --dry-run --json: identical decisions to restic for many policies, zones and offsets', async (t) => {
  if (!requireRestic(t)) return;
  const d = tempDir();
  try {
    const repo = path.join(d.dir, 'repo');
    const env = { RESTIC_REPOSITORY: repo, RESTIC_PASSWORD: PW };
    mustOk(await cairn(['init', '--chunker', 'rabin'], { env }), 'init');
    await makeSnapshots(repo, 420, 20261122);
    assert.equal(fs.readdirSync(path.join(repo, 'snapshots')).length, 426);
    let compared = 0;
    let kept = 0;
    let removed = 0;
    for (const [pi, policy] of POLICIES.entries()) {
      for (const [zi, tz] of ZONES.entries()) {
        // every policy under three zones, rotating, so each zone meets most policies
        if (!ALL_ZONES.has(pi) && (pi + zi) % 5 > 2) continue;
        const args = ['forget', '--dry-run', '--json', '--no-lock', ...policy];
        const [ours, theirs] = await Promise.all([cairn(args, { env: { ...env, TZ: tz } }), restic(args, { env: { ...env, TZ: tz } })]);
        mustOk(ours, `cairn ${args.join(' ')} (TZ=${tz})`);
        mustOk(theirs, `restic ${args.join(' ')} (TZ=${tz})`);
        const a = byKey(ours.stdout);
        const b = byKey(theirs.stdout);
        assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `groups differ for ${policy.join(' ')} TZ=${tz}`);
        for (const [k, ga] of a) {
          assert.deepEqual(ga, b.get(k), `group ${k} differs for ${policy.join(' ')} TZ=${tz}`);
          kept += (ga.keep as unknown[] | null)?.length ?? 0;
          removed += (ga.remove as unknown[] | null)?.length ?? 0;
        }
        compared++;
      }
    }
    assert.ok(compared >= 25, `compared ${compared} runs`);
    assert.ok(kept > 200 && removed > 1000, `policies keep ${kept} and remove ${removed} snapshots in total`);

    // and a real forget removes exactly the snapshots restic removes
    const copy = path.join(d.dir, 'copy');
    fs.cpSync(repo, copy, { recursive: true });
    const policy = ['--keep-daily', '10', '--keep-weekly', '8', '--keep-monthly', '24', '--keep-within', '2m', '--keep-tag', 'x,weekly'];
    mustOk(await cairn(['forget', ...policy], { env: { ...env, TZ: 'Europe/Berlin' } }), 'cairn forget');
    mustOk(await restic(['forget', ...policy], { env: { ...env, RESTIC_REPOSITORY: copy, TZ: 'Europe/Berlin' } }), 'restic forget');
    const left = (dir: string) => fs.readdirSync(path.join(dir, 'snapshots')).sort();
    assert.deepEqual(left(repo), left(copy));
    assert.ok(left(repo).length < 426 && left(repo).length > 20);
  } finally {
    d.cleanup();
  }
});
