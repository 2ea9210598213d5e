/**
 * Engine facade for maintenance: check, forget, prune, stats, diff, copy, migrate. Each takes an
 * open repository and options and reports through callbacks; nothing here prints.
 */
import type { Repository } from '../repository/repository.js';
import { check, parseReadDataSubset, type CheckOptions, type CheckResult } from '../maintenance/check.js';
import { forget, type ForgetOptions, type ForgetResult } from '../maintenance/forget.js';
export { encodeForgetJson } from '../maintenance/forget.js';
import { prune, type PruneOptions, type PruneResult } from '../maintenance/prune.js';
import { stats, type StatsOptions, type StatsResult } from '../maintenance/stats.js';
import { diff, type DiffOptions, type DiffResult } from '../maintenance/diff.js';
import { copySnapshots, type CopyOptions, type CopyResult } from '../maintenance/copy.js';
import { migrate, type MigrateOptions, type MigrateResult } from '../maintenance/migrate.js';

export type { CheckOptions, CheckResult, CheckProblem, AffectedItem, ReadDataSubset } from '../maintenance/check.js';
export type { ForgetOptions, ForgetResult, ForgetGroup, ForgetSnapshot } from '../maintenance/forget.js';
export type { PruneOptions, PruneResult, PruneStep } from '../maintenance/prune.js';
export type { PruneStats, MaxUnused } from '../maintenance/prune-plan.js';
export type { StatsOptions, StatsResult, StatsMode } from '../maintenance/stats.js';
export type { DiffOptions, DiffResult, DiffChange, DiffStat } from '../maintenance/diff.js';
export type { CopyOptions, CopyResult, CopiedSnapshot } from '../maintenance/copy.js';
export type { MigrateOptions, MigrateResult, Migration } from '../maintenance/migrate.js';
export type { ExpirePolicy, PolicyDuration, KeepReason, GroupKey } from '../maintenance/forget-policy.js';
export { parseDuration as parsePolicyDuration, parseTagList, describePolicy, isEmptyPolicy, formatPolicyDuration } from '../maintenance/forget-policy.js';
export { parseSize, parseMaxUnused } from '../maintenance/prune-plan.js';
export { STATS_MODES } from '../maintenance/stats.js';
export { MIGRATIONS } from '../maintenance/migrate.js';
export { parseReadDataSubset };

export function checkRepository(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  return check(repo, opts);
}

export function forgetSnapshots(repo: Repository, opts: ForgetOptions): Promise<ForgetResult> {
  return forget(repo, opts);
}

export function pruneRepository(repo: Repository, opts: PruneOptions = {}): Promise<PruneResult> {
  return prune(repo, opts);
}

export function repositoryStats(repo: Repository, opts: StatsOptions = {}): Promise<StatsResult> {
  return stats(repo, opts);
}

export function diffSnapshots(repo: Repository, snapshot1: string, snapshot2: string, opts: DiffOptions = {}): Promise<DiffResult> {
  return diff(repo, snapshot1, snapshot2, opts);
}

export function copyRepository(source: Repository, destination: Repository, opts: CopyOptions = {}): Promise<CopyResult> {
  return copySnapshots(source, destination, opts);
}

export function migrateRepository(repo: Repository, names: string[], opts: MigrateOptions = {}): Promise<MigrateResult> {
  return migrate(repo, names, opts);
}
