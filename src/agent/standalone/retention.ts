/**
 * Retention for cairn's backup series. A series is the set of backups made with the same
 * `--schedule` name; its snapshots carry the tag `cairn-schedule=<name>` next to Velero's
 * `backup=`/`backup-uid=` tags. Retention works on whole backups, as Velero's TTL does: within one
 * repository the snapshots of a series are grouped by `backup-uid`, restic's policy rules (keep
 * last/hourly/daily/weekly/monthly/yearly/within) are applied to those backups (each at the time
 * of its first snapshot), and every snapshot of an expired backup is forgotten. Snapshots Velero's
 * server made (no schedule tag) are never touched: their lifetime is the Velero Backup's.
 *
 * The policy of a series is recorded on the repository's Lease (`retention.cairn.io/<schedule>`)
 * so that the agents' periodic maintenance keeps applying it between backups.
 */
import { CairnError } from '../../core/errors.js';
import type { Id } from '../../core/ids.js';
import { applyRetentionPolicy, formatPolicyDuration, isEmptyPolicy, parsePolicyDuration, type ExpirePolicy, type listSnapshotsFiltered } from '../../engine/index.js';
import { SNAPSHOT_TAG_SCHEDULE } from './labels.js';

export const RETENTION_ANNOTATION_PREFIX = 'retention.cairn.io/';

const COUNTS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const WITHINS = [
  ['within', 'within'],
  ['within-hourly', 'withinHourly'],
  ['within-daily', 'withinDaily'],
  ['within-weekly', 'withinWeekly'],
  ['within-monthly', 'withinMonthly'],
  ['within-yearly', 'withinYearly'],
] as const;

/** `last=3,daily=7,within=30d`: the form stored on the lease and accepted back. */
export function encodePolicy(p: ExpirePolicy): string {
  const parts: string[] = [];
  for (const k of COUNTS) if ((p[k] ?? 0) > 0) parts.push(`${k}=${p[k]}`);
  for (const [name, k] of WITHINS) {
    const d = p[k];
    if (d && formatPolicyDuration(d)) parts.push(`${name}=${formatPolicyDuration(d)}`);
  }
  return parts.join(',');
}

export function decodePolicy(s: string): ExpirePolicy {
  const p: ExpirePolicy = {};
  for (const part of s.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    if ((COUNTS as readonly string[]).includes(k)) {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new CairnError('INVALID_ARGUMENT', `retention ${JSON.stringify(part)}: ${k} needs a non-negative integer`);
      p[k as (typeof COUNTS)[number]] = n;
      continue;
    }
    const w = WITHINS.find(([name]) => name === k);
    if (w) {
      p[w[1]] = parsePolicyDuration(v);
      continue;
    }
    throw new CairnError('INVALID_ARGUMENT', `retention ${JSON.stringify(part)}: unknown rule ${JSON.stringify(k)} (last, hourly, daily, weekly, monthly, yearly, within, within-daily, ...)`);
  }
  return p;
}

/** The retention policies recorded on a lease, by schedule. Unreadable entries are reported, not thrown. */
export function policiesFromAnnotations(ann: Record<string, string>): { policies: Map<string, ExpirePolicy>; errors: string[] } {
  const policies = new Map<string, ExpirePolicy>();
  const errors: string[] = [];
  for (const [k, v] of Object.entries(ann)) {
    if (!k.startsWith(RETENTION_ANNOTATION_PREFIX)) continue;
    const schedule = k.slice(RETENTION_ANNOTATION_PREFIX.length);
    try {
      const p = decodePolicy(v);
      if (!isEmptyPolicy(p)) policies.set(schedule, p);
    } catch (e) {
      errors.push(`${k}: ${(e as Error).message}`);
    }
  }
  return { policies, errors };
}

/** A snapshot as the engine lists it. */
export type ListedSnapshot = Awaited<ReturnType<typeof listSnapshotsFiltered>>[number];

export interface SeriesBackup {
  uid: string;
  name: string;
  /** Time of its first snapshot (RFC 3339 as stored). */
  time: string;
  snapshots: Id[];
}

function tagValue(tags: readonly string[] | undefined, key: string): string | undefined {
  const prefix = `${key}=`;
  return tags?.find((t) => t.startsWith(prefix))?.slice(prefix.length);
}

/** The backups of one series found in a repository's snapshots. */
export function seriesBackups(snapshots: ReadonlyArray<ListedSnapshot>, schedule: string): SeriesBackup[] {
  const byUid = new Map<string, SeriesBackup>();
  for (const { id, snapshot } of snapshots) {
    if (tagValue(snapshot.tags, SNAPSHOT_TAG_SCHEDULE) !== schedule) continue;
    const uid = tagValue(snapshot.tags, 'backup-uid');
    if (!uid) continue;
    let b = byUid.get(uid);
    if (!b) {
      b = { uid, name: tagValue(snapshot.tags, 'backup') ?? '', time: snapshot.time, snapshots: [] };
      byUid.set(uid, b);
    }
    b.snapshots.push(id);
    if (Date.parse(snapshot.time) < Date.parse(b.time)) b.time = snapshot.time;
  }
  return [...byUid.values()];
}

export interface RetentionDecision {
  keep: SeriesBackup[];
  remove: SeriesBackup[];
}

/** Applies restic's policy rules to the backups of a series (newest first). */
export function decideRetention(backups: readonly SeriesBackup[], policy: ExpirePolicy, nowMs: number): RetentionDecision {
  if (isEmptyPolicy(policy)) return { keep: [...backups], remove: [] };
  const items = backups.map((b) => ({ id: b.uid, time: b.time, paths: [] as string[], tags: [] as string[], backup: b }));
  const r = applyRetentionPolicy(items, policy, { nowNs: BigInt(nowMs) * 1_000_000n + 999_999n });
  return { keep: r.keep.map((x) => x.backup), remove: r.remove.map((x) => x.backup) };
}
