/**
 * `cairn k8s ls` / `describe`: the backups and restores the cluster holds, reconstructed from their
 * PodVolumeBackups/PodVolumeRestores (cairn's and Velero's alike), with what `velero backup
 * describe --details` shows for pod volumes: per volume its phase, snapshot, size, duration and
 * error.
 */
import { CairnError } from '../../core/errors.js';
import { phaseOf, timeMs, type PodVolumeBackup, type PodVolumeRestore } from '../velero.js';
import { overallPhase, volumeResultOf, type VolumeResult } from './backup.js';
import {
  CAIRN_BACKUP_FULL_NAME,
  CAIRN_BACKUP_UID,
  CAIRN_RESTORE_FULL_NAME,
  CAIRN_SCHEDULE,
  CAIRN_SOURCE_PVB,
  VELERO_BACKUP_NAME,
  VELERO_BACKUP_UID,
  VELERO_RESTORE_NAME,
  VELERO_RESTORE_UID,
  CAIRN_RESTORE_MODE,
  RESTORE_MODE_IN_PLACE,
} from './labels.js';
import type { ClusterContext } from './repos.js';
import { CAIRN_RESTORE_UID } from './restore.js';

export interface BackupSummary {
  name: string;
  uid: string;
  /** `cairn` when cairn created it, `velero` when Velero's server did. */
  createdBy: 'cairn' | 'velero';
  schedule?: string;
  phase: string;
  storageLocations: string[];
  namespaces: string[];
  volumes: { total: number; completed: number; failed: number; inProgress: number };
  totalBytes: number;
  addedBytes: number;
  created?: string;
  started?: string;
  completed?: string;
  durationMs?: number;
  errors: string[];
}

export interface RestoreVolumeRow {
  namespace: string;
  pod: string;
  volume: string;
  sourceNamespace: string;
  snapshotID: string;
  pvr: string;
  phase: string;
  totalBytes?: number;
  durationMs?: number;
  startedAt?: string;
  message?: string;
}

export interface RestoreSummary {
  name: string;
  uid: string;
  createdBy: 'cairn' | 'velero';
  backup?: string;
  inPlace: boolean;
  phase: string;
  namespaces: string[];
  volumes: { total: number; completed: number; failed: number; inProgress: number };
  totalBytes: number;
  created?: string;
  started?: string;
  completed?: string;
  durationMs?: number;
  errors: string[];
}

const TERMINAL = new Set(['Completed', 'Failed', 'Canceled']);

function counts(phases: string[]) {
  return {
    total: phases.length,
    completed: phases.filter((p) => p === 'Completed').length,
    failed: phases.filter((p) => p === 'Failed' || p === 'Canceled').length,
    inProgress: phases.filter((p) => !TERMINAL.has(p)).length,
  };
}

function iso(ms: number | undefined): string | undefined {
  return ms ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
}

function span(items: Array<{ created?: string | Date; start?: string; end?: string; terminal: boolean }>) {
  const created = Math.min(...items.map((i) => timeMs(i.created)).filter(Boolean));
  const starts = items.map((i) => timeMs(i.start)).filter(Boolean);
  const ends = items.map((i) => timeMs(i.end)).filter(Boolean);
  const started = starts.length ? Math.min(...starts) : undefined;
  const allDone = items.every((i) => i.terminal);
  const completed = allDone && ends.length ? Math.max(...ends) : undefined;
  return { created: Number.isFinite(created) ? iso(created) : undefined, started: iso(started), completed: iso(completed), durationMs: started && completed ? completed - started : undefined };
}

function backupKey(p: PodVolumeBackup): string {
  return p.metadata.labels?.[VELERO_BACKUP_UID] ?? `name:${p.metadata.labels?.[VELERO_BACKUP_NAME] ?? ''}`;
}

function backupName(p: PodVolumeBackup): string {
  return p.metadata.annotations?.[CAIRN_BACKUP_FULL_NAME] ?? p.spec.tags?.backup ?? p.metadata.labels?.[VELERO_BACKUP_NAME] ?? '';
}

export function summariseBackup(items: readonly PodVolumeBackup[]): BackupSummary {
  const first = items[0]!;
  const phases = items.map((p) => phaseOf(p) || 'New');
  const s = span(items.map((p) => ({ created: p.metadata.creationTimestamp, start: p.status?.startTimestamp, end: p.status?.completionTimestamp, terminal: TERMINAL.has(phaseOf(p)) })));
  const phase = overallPhase(phases.map((phase) => ({ phase })));
  return {
    name: backupName(first),
    uid: first.metadata.labels?.[VELERO_BACKUP_UID] ?? '',
    createdBy: first.metadata.labels?.[CAIRN_BACKUP_UID] ? 'cairn' : 'velero',
    schedule: first.metadata.labels?.[CAIRN_SCHEDULE],
    phase,
    storageLocations: [...new Set(items.map((p) => p.spec.backupStorageLocation ?? ''))].sort(),
    namespaces: [...new Set(items.map((p) => p.spec.pod?.namespace ?? ''))].sort(),
    volumes: counts(phases),
    totalBytes: items.reduce((n, p) => n + (p.status?.progress?.totalBytes ?? 0), 0),
    addedBytes: items.reduce((n, p) => n + (p.status?.incrementalBytes ?? 0), 0),
    ...s,
    errors: items.filter((p) => phaseOf(p) === 'Failed' || phaseOf(p) === 'Canceled').map((p) => `${p.spec.pod?.namespace}/${p.spec.pod?.name} ${p.spec.volume}: ${p.status?.message ?? ''}`),
  };
}

function restoreKey(p: PodVolumeRestore): string {
  return p.metadata.labels?.[CAIRN_RESTORE_UID] ?? p.metadata.labels?.[VELERO_RESTORE_UID] ?? `name:${p.metadata.labels?.[VELERO_RESTORE_NAME] ?? ''}`;
}

function restoreRow(p: PodVolumeRestore): RestoreVolumeRow {
  const st = p.status ?? {};
  const start = timeMs(st.startTimestamp);
  const end = timeMs(st.completionTimestamp);
  return {
    namespace: p.spec.pod?.namespace ?? '',
    pod: p.spec.pod?.name ?? '',
    volume: p.spec.volume ?? '',
    sourceNamespace: p.spec.sourceNamespace ?? '',
    snapshotID: p.spec.snapshotID ?? '',
    pvr: p.metadata.name ?? '',
    phase: phaseOf(p) || 'New',
    totalBytes: st.progress?.totalBytes,
    durationMs: start && end ? end - start : undefined,
    startedAt: st.startTimestamp,
    message: st.message || undefined,
  };
}

export function summariseRestore(items: readonly PodVolumeRestore[], backupOfPvb: (pvb: string) => string | undefined = () => undefined): RestoreSummary {
  const first = items[0]!;
  const phases = items.map((p) => phaseOf(p) || 'New');
  const s = span(items.map((p) => ({ created: p.metadata.creationTimestamp, start: p.status?.startTimestamp, end: p.status?.completionTimestamp, terminal: TERMINAL.has(phaseOf(p)) })));
  const cairn = !!first.metadata.labels?.[CAIRN_RESTORE_UID];
  const src = first.metadata.annotations?.[CAIRN_SOURCE_PVB];
  return {
    name: first.metadata.annotations?.[CAIRN_RESTORE_FULL_NAME] ?? first.metadata.labels?.[VELERO_RESTORE_NAME] ?? '',
    uid: first.metadata.labels?.[CAIRN_RESTORE_UID] ?? first.metadata.labels?.[VELERO_RESTORE_UID] ?? '',
    createdBy: cairn ? 'cairn' : 'velero',
    backup: src ? backupOfPvb(src) : undefined,
    inPlace: first.metadata.labels?.[CAIRN_RESTORE_MODE] === RESTORE_MODE_IN_PLACE,
    phase: overallPhase(phases.map((phase) => ({ phase }))),
    namespaces: [...new Set(items.map((p) => p.spec.pod?.namespace ?? ''))].sort(),
    volumes: counts(phases),
    totalBytes: items.reduce((n, p) => n + (p.status?.progress?.totalBytes ?? 0), 0),
    ...s,
    errors: items.filter((p) => phaseOf(p) === 'Failed' || phaseOf(p) === 'Canceled').map((p) => `${p.spec.pod?.namespace}/${p.spec.pod?.name} ${p.spec.volume}: ${p.status?.message ?? ''}`),
  };
}

function groupBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const i of items) {
    const k = key(i);
    const l = m.get(k);
    if (l) l.push(i);
    else m.set(k, [i]);
  }
  return m;
}

const byTime = <T extends { created?: string; name: string }>(a: T, b: T) => (a.created ?? '').localeCompare(b.created ?? '') || a.name.localeCompare(b.name);

export async function listBackups(cc: ClusterContext): Promise<BackupSummary[]> {
  const pvbs = await cc.kube.listVelero<PodVolumeBackup>(cc.veleroNamespace, 'podvolumebackups');
  return [...groupBy(pvbs, backupKey).values()].map((g) => summariseBackup(g)).sort(byTime);
}

export async function listRestores(cc: ClusterContext): Promise<RestoreSummary[]> {
  const [pvrs, pvbs] = await Promise.all([
    cc.kube.listVelero<PodVolumeRestore>(cc.veleroNamespace, 'podvolumerestores'),
    cc.kube.listVelero<PodVolumeBackup>(cc.veleroNamespace, 'podvolumebackups'),
  ]);
  const pvbBackup = new Map(pvbs.map((p) => [p.metadata.name ?? '', backupName(p)]));
  return [...groupBy(pvrs, restoreKey).values()].map((g) => summariseRestore(g, (n) => pvbBackup.get(n))).sort(byTime);
}

export interface BackupDetails extends BackupSummary {
  volumeDetails: Array<VolumeResult & { repository: string; storageLocation: string }>;
}

export async function describeBackup(cc: ClusterContext, name: string): Promise<BackupDetails> {
  const pvbs = await cc.kube.listVelero<PodVolumeBackup>(cc.veleroNamespace, 'podvolumebackups');
  const groups = [...groupBy(pvbs.filter((p) => backupName(p) === name || p.metadata.labels?.[VELERO_BACKUP_NAME] === name), backupKey).values()];
  if (groups.length === 0) throw new CairnError('NOT_FOUND', `no pod volume backups of a backup named ${name} in namespace ${cc.veleroNamespace}`);
  if (groups.length > 1) throw new CairnError('INVALID_ARGUMENT', `${groups.length} different backups are named ${name}`);
  const items = groups[0]!.sort((a, b) => `${a.spec.pod?.namespace}/${a.spec.pod?.name}/${a.spec.volume}`.localeCompare(`${b.spec.pod?.namespace}/${b.spec.pod?.name}/${b.spec.volume}`));
  return {
    ...summariseBackup(items),
    volumeDetails: items.map((p) => ({ ...volumeResultOf(p), repository: p.spec.repoIdentifier ?? '', storageLocation: p.spec.backupStorageLocation ?? '' })),
  };
}

export interface RestoreDetails extends RestoreSummary {
  volumeDetails: RestoreVolumeRow[];
}

export async function describeRestore(cc: ClusterContext, name: string): Promise<RestoreDetails> {
  const [pvrs, pvbs] = await Promise.all([
    cc.kube.listVelero<PodVolumeRestore>(cc.veleroNamespace, 'podvolumerestores'),
    cc.kube.listVelero<PodVolumeBackup>(cc.veleroNamespace, 'podvolumebackups'),
  ]);
  const mine = pvrs.filter((p) => (p.metadata.annotations?.[CAIRN_RESTORE_FULL_NAME] ?? p.metadata.labels?.[VELERO_RESTORE_NAME]) === name || p.metadata.labels?.[VELERO_RESTORE_NAME] === name);
  const groups = [...groupBy(mine, restoreKey).values()];
  if (groups.length === 0) throw new CairnError('NOT_FOUND', `no pod volume restores of a restore named ${name} in namespace ${cc.veleroNamespace}`);
  if (groups.length > 1) throw new CairnError('INVALID_ARGUMENT', `${groups.length} different restores are named ${name}`);
  const pvbBackup = new Map(pvbs.map((p) => [p.metadata.name ?? '', backupName(p)]));
  const items = groups[0]!.sort((a, b) => `${a.spec.pod?.namespace}/${a.spec.pod?.name}/${a.spec.volume}`.localeCompare(`${b.spec.pod?.namespace}/${b.spec.pod?.name}/${b.spec.volume}`));
  return { ...summariseRestore(items, (n) => pvbBackup.get(n)), volumeDetails: items.map(restoreRow) };
}
