/**
 * restic's snapshot retention policy (spec §12; restic 0.14 internal/restic/snapshot_policy.go,
 * snapshot_group.go, duration.go), reimplemented so that cairn makes the same keep/remove
 * decisions, with the same reasons, on the same snapshots.
 *
 * Pure: no I/O. Snapshots are visited newest first (stable sort by time); a snapshot is kept when
 * any rule keeps it; every rule sees every snapshot (one snapshot can consume several counters).
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { goJsonQuote } from '../format/json.js';
import { GO_ZERO_TIME, addDate, addHours, isoWeek, parseGoTime, systemLocalOffset, wallClock, type GoTime, type LocalOffsetFn } from './gotime.js';

// ---------------------------------------------------------------------------------------------
// durations (`1y5m7d2h`)

export interface PolicyDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

export const ZERO_DURATION: PolicyDuration = { years: 0, months: 0, days: 0, hours: 0 };

/** restic's ParseDuration: number+unit pairs (y, m, d, h), numbers may be negative; a repeated unit overrides. */
export function parseDuration(input: string): PolicyDuration {
  const d = { ...ZERO_DURATION };
  let s = input.trim();
  while (s !== '') {
    let neg = false;
    if (s[0] === '-') {
      neg = true;
      s = s.slice(1);
    }
    const m = /^[0-9]+/.exec(s);
    if (!m) throw new CairnError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(input)}: no number found`);
    let n = Number(m[0]);
    if (!Number.isSafeInteger(n)) throw new CairnError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(input)}: number too large`);
    if (neg) n = -n;
    s = s.slice(m[0].length);
    if (s === '') throw new CairnError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(input)}: no unit found after number ${n}`);
    switch (s[0]) {
      case 'y':
        d.years = n;
        break;
      case 'm':
        d.months = n;
        break;
      case 'd':
        d.days = n;
        break;
      case 'h':
        d.hours = n;
        break;
      default:
        throw new CairnError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(input)}: invalid unit ${JSON.stringify(s[0])} found after number ${n}`);
    }
    s = s.slice(1);
  }
  return d;
}

export function isZeroDuration(d: PolicyDuration | undefined): boolean {
  return !d || (d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0);
}

/** restic's Duration.String(): `1y2m3d4h`, zero parts left out. */
export function formatPolicyDuration(d: PolicyDuration): string {
  let s = '';
  if (d.years) s += `${d.years}y`;
  if (d.months) s += `${d.months}m`;
  if (d.days) s += `${d.days}d`;
  if (d.hours) s += `${d.hours}h`;
  return s;
}

// ---------------------------------------------------------------------------------------------
// tag lists and filters

/** restic's TagList from `a,b`: split on commas, whitespace trimmed (`''` gives [""]). */
export function parseTagList(s: string): string[] {
  return s.split(',').map((t) => t.trim());
}

export interface SnapshotLike {
  id: Id;
  /** RFC 3339 time text as stored. */
  time: string;
  hostname?: string;
  paths: string[];
  tags?: string[];
}

/** restic's Snapshot.HasTags: all tags of the list; an empty tag matches a snapshot without tags. */
export function hasTags(sn: { tags?: string[] }, list: readonly string[]): boolean {
  const tags = sn.tags ?? [];
  for (const t of list) {
    if (t === '' && tags.length === 0) return true;
    if (!tags.includes(t)) return false;
  }
  return true;
}

/** restic's HasTagList: no lists, or at least one list fully matched. */
export function hasTagList(sn: { tags?: string[] }, lists: readonly (readonly string[])[]): boolean {
  if (lists.length === 0) return true;
  return lists.some((l) => hasTags(sn, l));
}

export function hasPaths(sn: { paths: string[] }, paths: readonly string[]): boolean {
  return paths.every((p) => sn.paths.includes(p));
}

export function hasHostname(sn: { hostname?: string }, hosts: readonly string[]): boolean {
  return hosts.length === 0 || hosts.includes(sn.hostname ?? '');
}

export interface SnapshotSelection {
  hosts?: string[];
  tags?: string[][];
  paths?: string[];
}

export function matchesSelection(sn: SnapshotLike, f: SnapshotSelection): boolean {
  return hasHostname(sn, f.hosts ?? []) && hasTagList(sn, f.tags ?? []) && hasPaths(sn, f.paths ?? []);
}

// ---------------------------------------------------------------------------------------------
// grouping

export interface GroupBy {
  host: boolean;
  paths: boolean;
  tags: boolean;
}

/** `--group-by host,paths,tags` (singular forms too; '' disables grouping). */
export function parseGroupBy(s: string): GroupBy {
  const g: GroupBy = { host: false, paths: false, tags: false };
  for (const opt of s.split(',')) {
    switch (opt) {
      case 'host':
      case 'hosts':
        g.host = true;
        break;
      case 'path':
      case 'paths':
        g.paths = true;
        break;
      case 'tag':
      case 'tags':
        g.tags = true;
        break;
      case '':
        break;
      default:
        throw new CairnError('INVALID_ARGUMENT', `unknown grouping option: '${opt}'`);
    }
  }
  return g;
}

export interface GroupKey {
  hostname: string;
  /** null when not grouping by paths (restic's JSON shows null). */
  paths: string[] | null;
  tags: string[] | null;
}

export interface SnapshotGroup<T> {
  key: GroupKey;
  /** restic's map key: the Go JSON of the key. */
  keyJson: string;
  snapshots: T[];
}

function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Go's sort.Strings order (byte-wise). */
export function sortGoStrings(list: string[]): string[] {
  return list.sort(byteCompare);
}

function jsonList(l: string[] | null): string {
  return l === null ? 'null' : '[' + l.map(goJsonQuote).join(',') + ']';
}

/**
 * restic's GroupSnapshots. Like restic, a snapshot's paths are sorted (always) and its tags are
 * sorted when grouping by tags — visible in JSON output — so the snapshots are modified in place.
 * Groups come out sorted by key (restic's come out in Go map order).
 */
export function groupSnapshots<T extends SnapshotLike>(list: T[], by: GroupBy): SnapshotGroup<T>[] {
  const groups = new Map<string, SnapshotGroup<T>>();
  for (const sn of list) {
    sortGoStrings(sn.paths);
    let tags: string[] | null = null;
    if (by.tags) {
      if (sn.tags) sortGoStrings(sn.tags);
      tags = sn.tags && sn.tags.length ? sn.tags : null;
    }
    const key: GroupKey = { hostname: by.host ? (sn.hostname ?? '') : '', paths: by.paths ? [...sn.paths] : null, tags: tags ? [...tags] : null };
    const keyJson = '{"hostname":' + goJsonQuote(key.hostname) + ',"paths":' + jsonList(key.paths) + ',"tags":' + jsonList(key.tags) + '}';
    let g = groups.get(keyJson);
    if (!g) groups.set(keyJson, (g = { key, keyJson, snapshots: [] }));
    g.snapshots.push(sn);
  }
  return [...groups.values()].sort((a, b) => byteCompare(a.keyJson, b.keyJson));
}

// ---------------------------------------------------------------------------------------------
// the policy

export interface ExpirePolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: PolicyDuration;
  withinHourly?: PolicyDuration;
  withinDaily?: PolicyDuration;
  withinWeekly?: PolicyDuration;
  withinMonthly?: PolicyDuration;
  withinYearly?: PolicyDuration;
  /** --keep-tag lists. */
  tags?: string[][];
}

export function isEmptyPolicy(p: ExpirePolicy): boolean {
  if (p.tags && p.tags.length > 0) return false;
  const counts = [p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly];
  if (counts.some((c) => (c ?? 0) !== 0)) return false;
  return [p.within, p.withinHourly, p.withinDaily, p.withinWeekly, p.withinMonthly, p.withinYearly].every(isZeroDuration);
}

/** restic's ExpirePolicy.String(), e.g. "keep 2 latest snapshots, 7 daily snapshots". */
export function describePolicy(p: ExpirePolicy): string {
  const keeps: string[] = [];
  const add = (n: number | undefined, what: string) => {
    if ((n ?? 0) > 0) keeps.push(`${n} ${what}`);
  };
  add(p.last, 'latest');
  add(p.hourly, 'hourly');
  add(p.daily, 'daily');
  add(p.weekly, 'weekly');
  add(p.monthly, 'monthly');
  add(p.yearly, 'yearly');
  const keepw: string[] = [];
  const addw = (d: PolicyDuration | undefined, what: string) => {
    if (!isZeroDuration(d)) keepw.push(`${what} snapshots within ${formatPolicyDuration(d!)}`);
  };
  addw(p.withinHourly, 'hourly');
  addw(p.withinDaily, 'daily');
  addw(p.withinWeekly, 'weekly');
  addw(p.withinMonthly, 'monthly');
  addw(p.withinYearly, 'yearly');
  let s = keeps.length ? `${keeps.join(', ')} snapshots` : '';
  if (keepw.length) s += (s ? ', ' : '') + keepw.join(', ');
  if (p.tags?.length) s += (s ? ' and ' : '') + `all snapshots with tags [${p.tags.map(tagListString).join(' ')}]`;
  if (!isZeroDuration(p.within)) s += (s ? ' and ' : '') + `all snapshots within ${formatPolicyDuration(p.within!)} of the newest`;
  return 'keep ' + s;
}

/** Go's fmt of a restic TagList: `[a, b]`. */
export function tagListString(l: readonly string[]): string {
  return '[' + l.join(', ') + ']';
}

export interface KeepCounters {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
}

export interface KeepReason<T> {
  snapshot: T;
  /** e.g. "daily snapshot", "within 1y", "has tags [a]", "weekly within 2m". */
  matches: string[];
  /** Counts left after this snapshot (zero counts omitted, like restic's JSON). */
  counters: KeepCounters;
}

export interface PolicyResult<T> {
  keep: T[];
  remove: T[];
  reasons: KeepReason<T>[];
}

export interface PolicyClock {
  /** "now" in ns since the epoch: snapshots after it are not used as the newest one. */
  nowNs?: bigint;
  /** The local zone (TZ) restic would run in; default: this process's. */
  localOffset?: LocalOffsetFn;
}

type Bucket = (t: GoTime, nr: number) => number;

const ymdh: Bucket = (t) => {
  const w = wallClock(t);
  return w.year * 1_000_000 + w.month * 10_000 + w.day * 100 + w.hour;
};
const ymd: Bucket = (t) => {
  const w = wallClock(t);
  return w.year * 10_000 + w.month * 100 + w.day;
};
const yw: Bucket = (t) => {
  const [y, wk] = isoWeek(t);
  return y * 100 + wk;
};
const ym: Bucket = (t) => {
  const w = wallClock(t);
  return w.year * 100 + w.month;
};
const yOnly: Bucket = (t) => wallClock(t).year;
const always: Bucket = (_t, nr) => nr;

/**
 * restic's ApplyPolicy for one group. The list is sorted newest first (stable; the caller's order
 * decides among equal times) and returned as keep/remove in that order, with a reason per kept
 * snapshot.
 */
export function applyPolicy<T extends SnapshotLike>(list: readonly T[], p: ExpirePolicy, clock: PolicyClock = {}): PolicyResult<T> {
  const localOffset = clock.localOffset ?? systemLocalOffset;
  const nowNs = clock.nowNs ?? BigInt(Date.now()) * 1_000_000n;
  const items = list.map((sn, i) => ({ sn, t: parseGoTime(sn.time, localOffset), i }));
  items.sort((a, b) => (a.t.ns > b.t.ns ? -1 : a.t.ns < b.t.ns ? 1 : a.i - b.i));
  const sorted = items.map((x) => x.sn);
  if (isEmptyPolicy(p)) {
    return { keep: sorted, remove: [], reasons: sorted.map((sn) => ({ snapshot: sn, matches: ['policy is empty'], counters: {} })) };
  }
  if (items.length === 0) return { keep: [], remove: [], reasons: [] };

  const buckets: Array<{ count: number; bucket: Bucket; last: number; reason: string }> = [
    { count: p.last ?? 0, bucket: always, last: -1, reason: 'last snapshot' },
    { count: p.hourly ?? 0, bucket: ymdh, last: -1, reason: 'hourly snapshot' },
    { count: p.daily ?? 0, bucket: ymd, last: -1, reason: 'daily snapshot' },
    { count: p.weekly ?? 0, bucket: yw, last: -1, reason: 'weekly snapshot' },
    { count: p.monthly ?? 0, bucket: ym, last: -1, reason: 'monthly snapshot' },
    { count: p.yearly ?? 0, bucket: yOnly, last: -1, reason: 'yearly snapshot' },
  ];
  const within: Array<{ d: PolicyDuration | undefined; bucket: Bucket; last: number; reason: string }> = [
    { d: p.withinHourly, bucket: ymdh, last: -1, reason: 'hourly within' },
    { d: p.withinDaily, bucket: ymd, last: -1, reason: 'daily within' },
    { d: p.withinWeekly, bucket: yw, last: -1, reason: 'weekly within' },
    { d: p.withinMonthly, bucket: ym, last: -1, reason: 'monthly within' },
    { d: p.withinYearly, bucket: yOnly, last: -1, reason: 'yearly within' },
  ];

  // newest snapshot that is not in the future (Go's zero time when there is none)
  let latest: GoTime = GO_ZERO_TIME;
  for (const { t } of items) if (t.ns > latest.ns && t.ns < nowNs) latest = t;
  const threshold = (d: PolicyDuration): bigint => addHours(addDate(latest, -d.years, -d.months, -d.days, localOffset), -d.hours).ns;
  const withinLimit = isZeroDuration(p.within) ? undefined : threshold(p.within!);
  const withinLimits = within.map((b) => (isZeroDuration(b.d) ? undefined : threshold(b.d!)));

  const keep: T[] = [];
  const remove: T[] = [];
  const reasons: KeepReason<T>[] = [];
  items.forEach(({ sn, t }, nr) => {
    let keepIt = false;
    const matches: string[] = [];
    for (const l of p.tags ?? []) {
      if (hasTags(sn, l)) {
        keepIt = true;
        matches.push(`has tags ${tagListString(l)}`);
      }
    }
    if (withinLimit !== undefined && t.ns > withinLimit) {
      keepIt = true;
      matches.push(`within ${formatPolicyDuration(p.within!)}`);
    }
    for (const b of buckets) {
      if (b.count > 0) {
        const v = b.bucket(t, nr);
        if (v !== b.last) {
          keepIt = true;
          b.last = v;
          b.count--;
          matches.push(b.reason);
        }
      }
    }
    within.forEach((b, i) => {
      const limit = withinLimits[i];
      if (limit !== undefined && t.ns > limit) {
        const v = b.bucket(t, nr);
        if (v !== b.last) {
          keepIt = true;
          b.last = v;
          matches.push(`${b.reason} ${formatPolicyDuration(b.d!)}`);
        }
      }
    });
    if (keepIt) {
      keep.push(sn);
      const counters: KeepCounters = {};
      const names = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
      buckets.forEach((b, i) => {
        if (b.count !== 0) counters[names[i]!] = b.count;
      });
      reasons.push({ snapshot: sn, matches, counters });
    } else {
      remove.push(sn);
    }
  });
  return { keep, remove, reasons };
}
