/**
 * forget (spec §12): select snapshots, group them, apply the policy per group and delete the
 * snapshot files of the removed ones (exclusive lock); optionally prune afterwards.
 */
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { mapLimit } from '../core/semaphore.js';
import { encodeSnapshot, type Snapshot } from '../format/snapshot.js';
import { goJsonQuote } from '../format/json.js';
import { formatTime, parseTime } from '../format/time.js';
import { RepoLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots } from '../repository/snapshots.js';
import {
  applyPolicy,
  groupSnapshots,
  isEmptyPolicy,
  matchesSelection,
  parseGroupBy,
  type ExpirePolicy,
  type GroupKey,
  type KeepReason,
  type PolicyClock,
  type SnapshotLike,
  type SnapshotSelection,
} from './forget-policy.js';
import { prune, type PruneOptions, type PruneResult } from './prune.js';

/** A snapshot as forget sees it: paths and tags are the snapshot's own arrays (grouping sorts them). */
export interface ForgetSnapshot extends SnapshotLike {
  snapshot: Snapshot;
}

export interface ForgetGroup {
  key: GroupKey;
  keep: ForgetSnapshot[];
  remove: ForgetSnapshot[];
  reasons: KeepReason<ForgetSnapshot>[];
}

export interface ForgetOptions extends SnapshotSelection {
  policy: ExpirePolicy;
  /** Default "host,paths". */
  groupBy?: string;
  /** Explicit snapshot IDs (prefixes or "latest"): removed without a policy. */
  ids?: string[];
  dryRun?: boolean;
  /** Only with dryRun (as in restic). */
  noLock?: boolean;
  retryLockMs?: number;
  /** Run prune afterwards when snapshots were removed (with dryRun: a prune dry run). */
  prune?: Omit<PruneOptions, 'dryRun' | 'lockHeld' | 'ignoreSnapshots' | 'retryLockMs'>;
  clock?: PolicyClock;
  signal?: AbortSignal;
}

export interface ForgetResult {
  /** Policy groups (empty for explicit IDs or an empty policy). */
  groups: ForgetGroup[];
  policyEmpty: boolean;
  /** Snapshots removed (or that would be with dryRun). */
  removed: Id[];
  dryRun: boolean;
  /** Explicit IDs that matched nothing (ignored, as restic does). */
  warnings: string[];
  prune?: PruneResult;
}

function toForgetSnapshot(id: Id, sn: Snapshot): ForgetSnapshot {
  return { id, snapshot: sn, time: sn.time, hostname: sn.hostname, paths: sn.paths, tags: sn.tags };
}

export async function forget(repo: Repository, opts: ForgetOptions): Promise<ForgetResult> {
  if (opts.noLock && !opts.dryRun) throw new CairnError('INVALID_ARGUMENT', '--no-lock is only applicable in combination with --dry-run for forget command');
  const groupBy = parseGroupBy(opts.groupBy ?? 'host,paths');
  const lock = opts.noLock && opts.dryRun ? undefined : await RepoLock.acquire(repo, { exclusive: true, retryLockMs: opts.retryLockMs, signal: opts.signal });
  try {
    const warnings: string[] = [];
    const all = await listSnapshots(repo, (id, e) => warnings.push(`could not load snapshot ${id.slice(0, 8)}: ${errorMessage(e)}`));
    const result: ForgetResult = { groups: [], policyEmpty: isEmptyPolicy(opts.policy), removed: [], dryRun: opts.dryRun === true, warnings };
    const removeSet = new Set<Id>();
    if (opts.ids && opts.ids.length > 0) {
      for (const ref of opts.ids) {
        let hit: Id | undefined;
        if (ref === 'latest') {
          const matching = all.filter((s) => matchesSelection(toForgetSnapshot(s.id, s.snapshot), opts));
          hit = matching[matching.length - 1]?.id;
          if (!hit) warnings.push(`Ignoring "latest", no snapshot matched the given filter`);
        } else {
          const hits = all.filter((s) => s.id.startsWith(ref));
          if (hits.length === 1) hit = hits[0]!.id;
          else warnings.push(hits.length ? `Ignoring "${ref}": prefix is ambiguous` : `Ignoring "${ref}": no matching ID found`);
        }
        if (hit) removeSet.add(hit);
      }
    } else if (!result.policyEmpty) {
      const selected = all.filter((s) => matchesSelection(toForgetSnapshot(s.id, s.snapshot), opts)).map((s) => toForgetSnapshot(s.id, { ...s.snapshot, paths: [...s.snapshot.paths], tags: s.snapshot.tags ? [...s.snapshot.tags] : undefined }));
      // keep the shared arrays in sync: grouping sorts paths/tags, and the snapshot shows them so
      for (const f of selected) {
        f.paths = f.snapshot.paths;
        f.tags = f.snapshot.tags;
      }
      for (const g of groupSnapshots(selected, groupBy)) {
        const r = applyPolicy(g.snapshots, opts.policy, opts.clock);
        result.groups.push({ key: g.key, keep: r.keep, remove: r.remove, reasons: r.reasons });
        for (const s of r.remove) removeSet.add(s.id);
      }
    }
    result.removed = [...removeSet];
    if (!opts.dryRun && removeSet.size > 0) {
      await mapLimit(result.removed, 8, async (id) => {
        try {
          await repo.removeFile('snapshot', id);
        } catch (e) {
          if (!(e instanceof CairnError && e.code === 'NOT_FOUND')) throw e;
        }
      });
    }
    if (opts.prune && removeSet.size > 0) {
      result.prune = await prune(repo, { ...opts.prune, dryRun: opts.dryRun, lockHeld: true, ignoreSnapshots: removeSet, signal: opts.signal });
    }
    return result;
  } finally {
    await lock?.release();
  }
}

// ---------------------------------------------------------------------------------------------
// restic's JSON output of `forget --json` (cmd_forget.go ForgetGroup, KeepReason, cmd Snapshot)

/** A snapshot as restic's json.Marshal writes it (time re-rendered the way Go prints it). */
function snapshotBodyJson(sn: Snapshot): string {
  const t = parseTime(sn.time);
  const copy: Snapshot = { ...sn, time: formatTime(t.ns, t.offsetMinutes) };
  delete copy.extra; // restic 0.14 drops fields it does not know
  return encodeSnapshot(copy).toString('utf8');
}

function listJson(l: string[] | null | undefined): string {
  return l ? '[' + l.map(goJsonQuote).join(',') + ']' : 'null';
}

/** `forget --json` output: one line, restic's shape (groups with keep, remove and reasons). */
export function encodeForgetJson(groups: ForgetGroup[]): string {
  const snapList = (l: ForgetSnapshot[]) =>
    l.length === 0 ? 'null' : '[' + l.map((s) => snapshotBodyJson(s.snapshot).slice(0, -1) + ',"id":"' + s.id + '","short_id":"' + s.id.slice(0, 8) + '"}').join(',') + ']';
  const reasons = (l: KeepReason<ForgetSnapshot>[]) =>
    l.length === 0
      ? 'null'
      : '[' +
        l
          .map((r) => {
            const c = Object.entries(r.counters)
              .map(([k, v]) => `"${k}":${v}`)
              .join(',');
            return '{"snapshot":' + snapshotBodyJson(r.snapshot.snapshot) + ',"matches":' + listJson(r.matches) + ',"counters":{' + c + '}}';
          })
          .join(',') +
        ']';
  return (
    '[' +
    groups
      .map((g) => '{"tags":' + listJson(g.key.tags) + ',"host":' + goJsonQuote(g.key.hostname) + ',"paths":' + listJson(g.key.paths) + ',"keep":' + snapList(g.keep) + ',"remove":' + snapList(g.remove) + ',"reasons":' + reasons(g.reasons) + '}')
      .join(',') +
    ']'
  );
}
