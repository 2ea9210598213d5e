/**
 * Exclusive work on one repository, run while holding its Lease: forget by the retention policies
 * of cairn's backup series (and delete the PodVolumeBackups of the backups that went), prune, and
 * check with a read-data subset. The agents' maintenance controller and `cairn k8s maintain` both
 * call this; the repository's restic lock (exclusive for forget/prune/check, refreshed every five
 * minutes while it is held) is taken inside, so backups running meanwhile keep their own
 * non-exclusive locks and prune waits for them (`retryLockMs`) instead of removing their data.
 */
import { errorMessage, isCairnError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { checkRepository, forgetSnapshots, listSnapshotsFiltered, pruneRepository, type Repository } from '../../engine/index.js';
import { redactRepo } from '../log.js';
import type { PodVolumeBackup } from '../velero.js';
import {
  CAIRN_BACKUP_UID,
  CAIRN_COMPONENT,
  CAIRN_MANAGED_BY,
  CAIRN_REPOSITORY,
  CAIRN_REPOSITORY_HASH,
  CAIRN_STORAGE_LOCATION,
  CAIRN_VOLUME_NAMESPACE,
  repositoryHash,
  repositoryLeaseName,
} from './labels.js';
import { RepositoryLease, type HeldLease, type LeaseStore } from './lease.js';
import { decideRetention, policiesFromAnnotations, seriesBackups, type SeriesBackup } from './retention.js';
import type { Clock } from '../../core/clock.js';
import type { ExpirePolicy } from '../../engine/index.js';

export const ANN_LAST_PRUNE = 'maintenance.cairn.io/last-prune';
export const ANN_LAST_CHECK = 'maintenance.cairn.io/last-check';
export const ANN_LAST_FORGET = 'maintenance.cairn.io/last-forget';
export const ANN_LAST_RESULT = 'maintenance.cairn.io/last-result';
export const ANN_LAST_ERROR = 'maintenance.cairn.io/last-error';

export interface RepositoryRef {
  identifier: string;
  storageLocation: string;
  volumeNamespace?: string;
  /** BackupRepository/ResticRepository spec.maintenanceFrequency, when a CR exists. */
  frequencyMs?: number;
  /** The CR's status.lastMaintenanceTime (Velero's server maintained it then). */
  lastMaintenanceMs?: number;
}

export interface MaintenanceSettings {
  /** Prune (after forget) this often unless the repository CR says otherwise; 0 disables. */
  pruneIntervalMs: number;
  /** Check this often; 0 disables. */
  checkIntervalMs: number;
  /** restic's --read-data-subset for the check ("5%", "1/10", "500M"); empty: structure only. */
  readDataSubset?: string;
  /** prune's --max-unused. */
  maxUnused?: string;
  /** How long prune/check wait for running backups' locks. */
  retryLockMs: number;
}

/** The Lease that guards a repository, named after a hash of its identifier. */
export function repositoryLease(kube: LeaseStore, ref: RepositoryRef, o: { namespace: string; identity: string; durationMs: number; clock: Clock; log: Logger }): RepositoryLease {
  const annotations: Record<string, string> = { [CAIRN_REPOSITORY]: ref.identifier, [CAIRN_STORAGE_LOCATION]: ref.storageLocation };
  if (ref.volumeNamespace) annotations[CAIRN_VOLUME_NAMESPACE] = ref.volumeNamespace;
  return new RepositoryLease(kube, {
    namespace: o.namespace,
    name: repositoryLeaseName(ref.identifier),
    identity: o.identity,
    durationMs: o.durationMs,
    clock: o.clock,
    log: o.log,
    labels: { [CAIRN_COMPONENT]: CAIRN_MANAGED_BY, [CAIRN_REPOSITORY_HASH]: repositoryHash(ref.identifier) },
    annotations,
  });
}

function annotationTime(ann: Record<string, string> | undefined, key: string): number | undefined {
  const v = ann?.[key];
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

export interface DueWork {
  /** forget by the recorded policies, then prune */
  prune: boolean;
  check: boolean;
}

/** What is due on a repository, from the lease's record (and the CR's, when Velero maintained it). */
export function dueWork(ann: Record<string, string> | undefined, ref: RepositoryRef, s: MaintenanceSettings, nowMs: number): DueWork {
  const pruneEvery = ref.frequencyMs && ref.frequencyMs > 0 ? ref.frequencyMs : s.pruneIntervalMs;
  const lastPrune = Math.max(annotationTime(ann, ANN_LAST_PRUNE) ?? 0, ref.lastMaintenanceMs ?? 0);
  const lastCheck = annotationTime(ann, ANN_LAST_CHECK) ?? 0;
  return {
    prune: pruneEvery > 0 && nowMs - lastPrune >= pruneEvery,
    check: s.checkIntervalMs > 0 && nowMs - lastCheck >= s.checkIntervalMs,
  };
}

/** Go's time.Duration text ("168h0m0s", "1h30m", "90s", "500ms") in milliseconds. */
export function parseGoDuration(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * mult[m[2]!]!;
    pos = re.lastIndex;
  }
  return pos === s.length && pos > 0 ? total : undefined;
}

export interface ForgetOutcome {
  schedule: string;
  kept: number;
  removed: SeriesBackup[];
}

/** Deletes the PVBs of forgotten backups in this repository (they cannot be restored any more). */
export type PvbPruner = (identifier: string, backupUids: string[]) => Promise<number>;

/**
 * Applies retention policies to a repository: one exclusive lock for all series; optionally
 * prunes in the same lock when something was forgotten.
 */
export async function forgetSeries(
  repo: Repository,
  policies: ReadonlyMap<string, ExpirePolicy>,
  o: { nowMs: number; retryLockMs: number; signal?: AbortSignal; prune?: { maxUnused?: string }; log: Logger },
): Promise<{ outcomes: ForgetOutcome[]; removedSnapshots: number; pruned: boolean }> {
  const snapshots = await listSnapshotsFiltered(repo);
  const outcomes: ForgetOutcome[] = [];
  const ids: string[] = [];
  for (const [schedule, policy] of policies) {
    const d = decideRetention(seriesBackups(snapshots, schedule), policy, o.nowMs);
    outcomes.push({ schedule, kept: d.keep.length, removed: d.remove });
    for (const b of d.remove) ids.push(...b.snapshots);
  }
  if (ids.length === 0) return { outcomes, removedSnapshots: 0, pruned: false };
  const r = await forgetSnapshots(repo, { policy: {}, ids, retryLockMs: o.retryLockMs, signal: o.signal, prune: o.prune ? { maxUnused: o.prune.maxUnused, signal: o.signal } : undefined });
  for (const w of r.warnings) o.log.warn('forget', { warning: w });
  return { outcomes, removedSnapshots: r.removed.length, pruned: !!r.prune };
}

export interface MaintenanceResult {
  forgotten: ForgetOutcome[];
  removedSnapshots: number;
  deletedPvbs: number;
  pruned: boolean;
  checked?: { errors: number; damaged: boolean; packsRead: number };
  error?: string;
  annotations: Record<string, string | undefined>;
}

/**
 * Runs the due work on an open repository while `held` is the repository's lease. Records the
 * outcome in the lease's annotations (returned; the caller writes them with the release).
 */
export async function runMaintenance(
  repo: Repository,
  ref: RepositoryRef,
  /** The held lease's record and a signal that aborts when the lease is lost. */
  held: Pick<HeldLease, 'annotations' | 'signal'>,
  due: DueWork,
  s: MaintenanceSettings,
  o: { clock: Clock; log: Logger; deletePvbs?: PvbPruner },
): Promise<MaintenanceResult> {
  const log = o.log.child({ repository: redactRepo(ref.identifier) });
  const signal = held.signal;
  const result: MaintenanceResult = { forgotten: [], removedSnapshots: 0, deletedPvbs: 0, pruned: false, annotations: {} };
  const stamp = () => new Date(o.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  try {
    if (due.prune) {
      const { policies, errors } = policiesFromAnnotations(held.annotations);
      for (const e of errors) log.warn('ignoring an unreadable retention policy', { error: e });
      if (policies.size) {
        log.info('applying retention policies', { schedules: [...policies.keys()] });
        const f = await forgetSeries(repo, policies, { nowMs: o.clock.now(), retryLockMs: s.retryLockMs, signal, prune: { maxUnused: s.maxUnused }, log });
        result.forgotten = f.outcomes;
        result.removedSnapshots = f.removedSnapshots;
        result.pruned = f.pruned;
        result.annotations[ANN_LAST_FORGET] = stamp();
        const uids = f.outcomes.flatMap((x) => x.removed.map((b) => b.uid));
        if (uids.length && o.deletePvbs) result.deletedPvbs = await o.deletePvbs(ref.identifier, uids);
        for (const x of f.outcomes) log.info('retention applied', { schedule: x.schedule, kept: x.kept, removed: x.removed.map((b) => b.name) });
      }
      if (!result.pruned) {
        signal.throwIfAborted();
        log.info('prune started');
        const p = await pruneRepository(repo, { maxUnused: s.maxUnused, retryLockMs: s.retryLockMs, signal, onMessage: (m) => log.debug('prune', { step: m }) });
        result.pruned = true;
        log.info('prune finished', { removedPacks: p.removedPacks.length, repackedPacks: p.repackedPacks.length, unreferencedPacks: p.unreferencedPacks.length, durationMs: p.durationMs });
      } else {
        log.info('prune finished', { afterForget: true });
      }
      result.annotations[ANN_LAST_PRUNE] = stamp();
    }
    if (due.check) {
      signal.throwIfAborted();
      log.info('check started', { readDataSubset: s.readDataSubset || undefined });
      const c = await checkRepository(repo, { readDataSubset: s.readDataSubset || undefined, retryLockMs: s.retryLockMs, signal, onProblem: (p) => log.error('check found a problem', { problem: p.message }) });
      result.checked = { errors: c.errors, damaged: c.damaged, packsRead: c.packsRead };
      result.annotations[ANN_LAST_CHECK] = stamp();
      if (c.damaged) throw Object.assign(new Error(`check found ${c.errors} error(s)`), { code: 'CORRUPT' });
      log.info('check finished', { errors: c.errors, packsRead: c.packsRead });
    }
    result.annotations[ANN_LAST_RESULT] = `${stamp()} ok${result.pruned ? ', pruned' : ''}${result.removedSnapshots ? `, forgot ${result.removedSnapshots} snapshot(s)` : ''}${result.checked ? ', checked' : ''}`;
    result.annotations[ANN_LAST_ERROR] = undefined;
  } catch (e) {
    const msg = errorMessage(e);
    result.error = msg;
    result.annotations[ANN_LAST_ERROR] = `${stamp()} ${msg}`.slice(0, 1000);
    if (isCairnError(e, 'REPO_LOCKED')) log.warn('maintenance postponed: the repository stayed locked', { error: msg });
    else log.error('maintenance failed', { error: msg });
  }
  return result;
}

/** Deletes the PVBs (in the Velero namespace) of the given cairn backups whose repository is `identifier`. */
export async function deleteBackupPvbs(
  kube: { listVelero<T>(ns: string, plural: string, sel?: string): Promise<T[]>; deleteVelero(ns: string, plural: string, name: string): Promise<boolean> },
  namespace: string,
  identifier: string,
  backupUids: string[],
): Promise<number> {
  let n = 0;
  for (const uid of new Set(backupUids)) {
    const pvbs = await kube.listVelero<PodVolumeBackup>(namespace, 'podvolumebackups', `${CAIRN_BACKUP_UID}=${uid}`);
    for (const p of pvbs) {
      if ((p.spec?.repoIdentifier ?? '') !== identifier) continue;
      if (await kube.deleteVelero(namespace, 'podvolumebackups', p.metadata.name!)) n++;
    }
  }
  return n;
}
