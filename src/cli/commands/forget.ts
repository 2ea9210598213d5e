import type { Command } from 'commander';
import { CairnError } from '../../core/errors.js';
import {
  describePolicy,
  encodeForgetJson,
  forgetSnapshots,
  openRepository,
  parsePolicyDuration,
  parseTagList,
  type ExpirePolicy,
  type ForgetGroup,
  type ForgetSnapshot,
  type KeepReason,
} from '../../engine/index.js';
import { err, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';
import { addPruneOptions, printPruneResult, pruneOptionsFrom, type PruneFlags } from './prune.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function int(v: string): number {
  if (!/^[+-]?[0-9]+$/.test(v.trim())) throw new CairnError('INVALID_ARGUMENT', `invalid number ${JSON.stringify(v)}`);
  return Number(v);
}

interface ForgetFlags extends PruneFlags {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  keepTag: string[];
  host: string[];
  tag: string[];
  path: string[];
  compact?: boolean;
  groupBy: string;
  dryRun?: boolean;
  prune?: boolean;
}

function policyFrom(o: ForgetFlags): ExpirePolicy {
  const d = (s: string | undefined) => (s === undefined ? undefined : parsePolicyDuration(s));
  const n = (s: string | undefined) => (s === undefined ? undefined : int(s));
  return {
    last: n(o.keepLast),
    hourly: n(o.keepHourly),
    daily: n(o.keepDaily),
    weekly: n(o.keepWeekly),
    monthly: n(o.keepMonthly),
    yearly: n(o.keepYearly),
    within: d(o.keepWithin),
    withinHourly: d(o.keepWithinHourly),
    withinDaily: d(o.keepWithinDaily),
    withinWeekly: d(o.keepWithinWeekly),
    withinMonthly: d(o.keepWithinMonthly),
    withinYearly: d(o.keepWithinYearly),
    tags: o.keepTag.map(parseTagList),
  };
}

/** restic's local-time rendering "2006-01-02 15:04:05". */
function localTime(t: string): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function printTable(list: ForgetSnapshot[], reasons: KeepReason<ForgetSnapshot>[] | undefined, compact: boolean): void {
  const why = new Map(reasons?.map((r) => [r.snapshot.id, r.matches]) ?? []);
  const header = ['ID', 'Time', 'Host', 'Tags'];
  if (reasons) header.push('Reasons');
  if (!compact) header.push('Paths');
  const rows: string[][] = [];
  for (const s of list) {
    const cells = [s.id.slice(0, 8), localTime(s.time), s.hostname ?? '', compact ? (s.tags ?? []).join(',') : (s.tags ?? []).join('\n')];
    if (reasons) cells.push((why.get(s.id) ?? []).join('\n'));
    if (!compact) cells.push(s.paths.join('\n'));
    const lines = cells.map((c) => c.split('\n'));
    const h = Math.max(...lines.map((l) => l.length));
    for (let i = 0; i < h; i++) rows.push(lines.map((l) => l[i] ?? ''));
  }
  const widths = header.map((hd, i) => Math.max(hd.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const line = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  out(fmt(header));
  out(line);
  for (const r of rows) out(fmt(r));
  out(line);
  out(`${list.length} snapshots`);
}

function groupHeader(gr: ForgetGroup): string {
  const parts: string[] = [];
  if (gr.key.hostname) parts.push(`host [${gr.key.hostname}]`);
  if (gr.key.tags) parts.push(`tags [${gr.key.tags.join(', ')}]`);
  if (gr.key.paths) parts.push(`paths [${gr.key.paths.join(', ')}]`);
  return parts.length ? `snapshots for (${parts.join(', ')}):` : 'snapshots:';
}

export function register(program: Command, g: () => GlobalOptions): void {
  addPruneOptions(
    program
      .command('forget')
      .description('remove snapshots according to a policy (exclusive lock); --prune also removes the data')
      .argument('[ids...]', 'snapshots to remove (ID prefixes or "latest"); no policy is applied to them')
      .option('-l, --keep-last <n>', 'keep the last n snapshots')
      .option('-H, --keep-hourly <n>', 'keep the last n hourly snapshots')
      .option('-d, --keep-daily <n>', 'keep the last n daily snapshots')
      .option('-w, --keep-weekly <n>', 'keep the last n weekly snapshots')
      .option('-m, --keep-monthly <n>', 'keep the last n monthly snapshots')
      .option('-y, --keep-yearly <n>', 'keep the last n yearly snapshots')
      .option('--keep-within <duration>', 'keep snapshots newer than duration (e.g. 1y5m7d2h) relative to the latest snapshot')
      .option('--keep-within-hourly <duration>', 'keep hourly snapshots newer than duration relative to the latest snapshot')
      .option('--keep-within-daily <duration>', 'keep daily snapshots newer than duration relative to the latest snapshot')
      .option('--keep-within-weekly <duration>', 'keep weekly snapshots newer than duration relative to the latest snapshot')
      .option('--keep-within-monthly <duration>', 'keep monthly snapshots newer than duration relative to the latest snapshot')
      .option('--keep-within-yearly <duration>', 'keep yearly snapshots newer than duration relative to the latest snapshot')
      .option('--keep-tag <taglist>', 'keep snapshots with this taglist (repeatable)', collect, [])
      .option('--host <host>', 'only consider snapshots with this host (repeatable)', collect, [])
      .option('--tag <taglist>', 'only consider snapshots with all tags of this list (repeatable: any list)', collect, [])
      .option('--path <path>', 'only consider snapshots which include this (absolute) path (repeatable)', collect, [])
      .option('-c, --compact', 'use compact output format')
      .option('-g, --group-by <group>', "group snapshots by host, paths and/or tags, separated by comma (disable grouping with '')", 'host,paths')
      .option('-n, --dry-run', 'do not delete anything, just print what would be done')
      .option('--prune', "automatically run 'prune' if snapshots have been removed"),
  ).action(async (ids: string[], o: ForgetFlags) => {
    const gopts = g();
    const policy = policyFrom(o);
    const pruneOpts = pruneOptionsFrom(o);
    const repo = await openRepository(repoAccess(gopts));
    try {
      const verbose = !gopts.quiet && !gopts.json;
      const r = await withInterrupt((signal) =>
        forgetSnapshots(repo, {
          policy,
          groupBy: o.groupBy,
          hosts: o.host,
          tags: o.tag.map(parseTagList),
          paths: o.path,
          ids,
          dryRun: o.dryRun,
          noLock: gopts.noLock,
          retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
          prune: o.prune ? { ...pruneOpts, onMessage: (m) => verbose && out(m) } : undefined,
          signal,
        }),
      );
      for (const w of r.warnings) err(w);
      if (gopts.json) {
        if (r.groups.length > 0) out(encodeForgetJson(r.groups));
      } else if (!gopts.quiet) {
        if (ids.length === 0) {
          if (r.policyEmpty) out('no policy was specified, no snapshots will be removed');
          else out(`Applying Policy: ${describePolicy(policy)}`);
        }
        for (const gr of r.groups) {
          out(groupHeader(gr));
          if (gr.keep.length) {
            out(`keep ${gr.keep.length} snapshots:`);
            printTable(gr.keep, gr.reasons, !!o.compact);
            out('');
          }
          if (gr.remove.length) {
            out(`remove ${gr.remove.length} snapshots:`);
            printTable(gr.remove, undefined, !!o.compact);
            out('');
          }
        }
        if (r.removed.length > 0) {
          if (r.dryRun) out(`Would have removed the following snapshots:\n${r.removed.join('\n')}\n`);
          else out(`removed ${r.removed.length} snapshots`);
        }
      }
      if (r.prune) {
        if (verbose) out(`${r.removed.length} snapshots have been removed, running prune`);
        printPruneResult(r.prune, gopts);
      }
    } finally {
      await repo.backend.close().catch(() => undefined);
    }
  });
}
