/**
 * `cairn k8s backup`: cairn decides what to back up and creates the PodVolumeBackups itself, the
 * way Velero's server would (contract §2.1, §5, §9) but without any velero.io Backup object: a
 * running Velero server has nothing to act on. The backup's identity lives in labels/annotations
 * of its PVBs (`cairn.io/backup-name`, `cairn.io/backup-uid`, plus Velero's `velero.io/backup-name`
 * and `velero.io/backup-uid` with a cairn-generated UID) and in the snapshots' tags
 * (`backup=`, `backup-uid=`, and `cairn-schedule=` for series with retention). The PVBs have no
 * owner reference, so the agent's owner checks do not apply to them; they are processed like any
 * restic PVB of their node.
 */
import { randomUUID } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Clock } from '../../core/clock.js';
import { CairnError, errorMessage } from '../../core/errors.js';
import type { ExpirePolicy } from '../../engine/index.js';
import { isEmptyPolicy } from '../../engine/index.js';
import { apiErrorMessage, isNotFound } from '../kube.js';
import { kubeTime, phaseOf, timeMs, type PodVolumeBackup } from '../velero.js';
import {
  CAIRN_BACKUP_FULL_NAME,
  CAIRN_BACKUP_NAME,
  CAIRN_BACKUP_UID,
  CAIRN_COMPONENT,
  CAIRN_MANAGED_BY,
  CAIRN_SCHEDULE,
  CAIRN_SELECTED_BY,
  SNAPSHOT_TAG_SCHEDULE,
  VELERO_BACKUP_NAME,
  VELERO_BACKUP_UID,
  VELERO_PVC_NAME,
  VELERO_PVC_UID,
  isDnsName,
  shortenLabel,
} from './labels.js';
import { deleteBackupPvbs, forgetSeries, repositoryLease, type ForgetOutcome } from './maintenance.js';
import { leaseIdentity } from './lease.js';
import { clusterCapabilities, openTarget, repoTarget, resolveBsl, type ClusterContext, type RepoTarget } from './repos.js';
import { encodePolicy, RETENTION_ANNOTATION_PREFIX } from './retention.js';
import { claimsOf, planBackup, type ClaimInfo, type PlannedVolume, type SkippedVolume } from './selection.js';

export const PVB_PLURAL = 'podvolumebackups';
const TERMINAL = new Set(['Completed', 'Failed', 'Canceled']);

export interface K8sBackupOptions {
  namespaces: string[];
  selector?: string;
  name?: string;
  schedule?: string;
  storageLocation?: string;
  defaultVolumesToFsBackup: boolean;
  allowHostPaths?: string[];
  randomPassword?: boolean;
  wait: boolean;
  timeoutMs: number;
  retention?: ExpirePolicy;
  /** Prune right after the retention forget (default: leave it to the agents' maintenance). */
  prune?: boolean;
  /** How long to wait for a repository's Lease before leaving the forget to maintenance. */
  leaseWaitMs?: number;
  leaseDurationMs?: number;
  retryLockMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
  clock: Clock;
  onEvent?: (e: BackupEvent) => void;
}

export type BackupEvent =
  | { type: 'planned'; volumes: number; skipped: number }
  | { type: 'repository'; namespace: string; repository: string; created: boolean; passwordSource: string }
  | { type: 'created'; pvb: string; namespace: string; pod: string; volume: string }
  | { type: 'phase'; pvb: string; namespace: string; pod: string; volume: string; phase: string; message?: string }
  | { type: 'retention'; namespace: string; repository: string; outcomes: ForgetOutcome[]; deferred?: string };

export interface VolumeResult {
  namespace: string;
  pod: string;
  volume: string;
  pvc?: string;
  node: string;
  pvb: string;
  selectedBy: string;
  phase: string;
  snapshotID?: string;
  totalBytes?: number;
  addedBytes?: number;
  startedAt?: string;
  completedAt?: string;
  durationMs?: number;
  message?: string;
}

export interface RepositoryUse {
  namespace: string;
  repository: string;
  identifier: string;
  created: boolean;
  passwordSource: 'repository' | 'installation';
}

export interface BackupResult {
  name: string;
  uid: string;
  schedule?: string;
  storageLocation: string;
  phase: 'Completed' | 'PartiallyFailed' | 'Failed' | 'InProgress' | 'Empty';
  startedAt: string;
  completedAt?: string;
  timedOut?: boolean;
  volumes: VolumeResult[];
  skipped: SkippedVolume[];
  repositories: RepositoryUse[];
  retention?: Array<{ namespace: string; schedules: ForgetOutcome[]; deferred?: string; deletedPvbs: number }>;
}

export function defaultBackupName(prefix: string, nowMs: number): string {
  const d = new Date(nowMs);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${prefix}-${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** The PVB cairn creates for a planned volume (Velero's labels, annotation, tags and spec). */
export function pvbFor(v: PlannedVolume, b: { name: string; uid: string; schedule?: string; bsl: string; identifier: string; veleroNamespace: string }): PodVolumeBackup {
  const short = shortenLabel(b.name);
  const labels: Record<string, string> = {
    [VELERO_BACKUP_NAME]: short,
    [VELERO_BACKUP_UID]: b.uid,
    [CAIRN_BACKUP_NAME]: short,
    [CAIRN_BACKUP_UID]: b.uid,
    [CAIRN_COMPONENT]: CAIRN_MANAGED_BY,
  };
  if (b.schedule) labels[CAIRN_SCHEDULE] = b.schedule;
  const annotations: Record<string, string> = { [CAIRN_BACKUP_FULL_NAME]: b.name, [CAIRN_SELECTED_BY]: v.selectedBy };
  const tags: Record<string, string> = {
    backup: b.name,
    'backup-uid': b.uid,
    pod: v.pod.name,
    'pod-uid': v.pod.uid,
    ns: v.pod.namespace,
    volume: v.volume,
  };
  if (v.pvc) {
    labels[VELERO_PVC_UID] = v.pvc.uid;
    annotations[VELERO_PVC_NAME] = v.pvc.name;
    tags['pvc-uid'] = v.pvc.uid;
  }
  if (b.schedule) tags[SNAPSHOT_TAG_SCHEDULE] = b.schedule;
  return {
    apiVersion: 'velero.io/v1',
    kind: 'PodVolumeBackup',
    metadata: { generateName: `${b.name.slice(0, 57)}-`, namespace: b.veleroNamespace, labels, annotations },
    spec: {
      node: v.pod.node,
      pod: { kind: 'Pod', namespace: v.pod.namespace, name: v.pod.name, uid: v.pod.uid },
      volume: v.volume,
      backupStorageLocation: b.bsl,
      repoIdentifier: b.identifier,
      uploaderType: 'restic',
      tags,
    },
  };
}

/** Claim facts the planner needs: UID, bound PV, hostPath PV, block mode. */
async function claimInfos(cc: ClusterContext, pods: readonly k8s.V1Pod[]): Promise<Map<string, ClaimInfo>> {
  const wanted = new Set(claimsOf(pods));
  const out = new Map<string, ClaimInfo>();
  const namespaces = new Set([...wanted].map((k) => k.slice(0, k.indexOf('/'))));
  for (const ns of namespaces) {
    for (const pvc of await cc.kube.listPvcs(ns)) {
      const key = `${ns}/${pvc.metadata?.name}`;
      if (!wanted.has(key)) continue;
      const info: ClaimInfo = { uid: pvc.metadata?.uid ?? '', volumeName: pvc.spec?.volumeName || undefined, block: pvc.spec?.volumeMode === 'Block' };
      if (info.volumeName) {
        const pv = await cc.kube.getPv(info.volumeName);
        if (pv?.spec?.hostPath) info.hostPathPv = true;
        if (pv?.spec?.volumeMode === 'Block') info.block = true;
      }
      out.set(key, info);
    }
  }
  return out;
}

export function volumeResultOf(p: PodVolumeBackup, selectedBy = ''): VolumeResult {
  const st = p.status ?? {};
  const start = timeMs(st.startTimestamp);
  const end = timeMs(st.completionTimestamp);
  return {
    namespace: p.spec.pod?.namespace ?? '',
    pod: p.spec.pod?.name ?? '',
    volume: p.spec.volume ?? '',
    pvc: p.metadata.annotations?.[VELERO_PVC_NAME],
    node: p.spec.node ?? '',
    pvb: p.metadata.name ?? '',
    selectedBy: selectedBy || p.metadata.annotations?.[CAIRN_SELECTED_BY] || '',
    phase: phaseOf(p) || 'New',
    snapshotID: st.snapshotID || undefined,
    totalBytes: st.progress?.totalBytes,
    addedBytes: st.incrementalBytes,
    startedAt: st.startTimestamp,
    completedAt: st.completionTimestamp,
    durationMs: start && end ? end - start : undefined,
    message: st.message || undefined,
  };
}

/** Overall phase, Velero's vocabulary: Completed, PartiallyFailed (some volumes failed), Failed (all did). */
export function overallPhase(volumes: readonly { phase: string }[], timedOut = false): BackupResult['phase'] {
  if (volumes.length === 0) return 'Empty';
  const done = volumes.filter((v) => TERMINAL.has(v.phase));
  if (done.length < volumes.length && !timedOut) return 'InProgress';
  const ok = volumes.filter((v) => v.phase === 'Completed').length;
  if (ok === volumes.length) return 'Completed';
  if (ok === 0 && done.length === volumes.length) return 'Failed';
  return 'PartiallyFailed';
}

export async function runK8sBackup(cc: ClusterContext, o: K8sBackupOptions): Promise<BackupResult> {
  const now = o.clock.now();
  if (o.namespaces.length === 0) throw new CairnError('INVALID_ARGUMENT', 'no namespace: use --namespace');
  if (o.schedule !== undefined && !isDnsName(o.schedule, 50)) throw new CairnError('INVALID_ARGUMENT', `--schedule ${JSON.stringify(o.schedule)} must be a DNS-1123 name of at most 50 characters`);
  if (o.retention && !isEmptyPolicy(o.retention) && !o.schedule) throw new CairnError('INVALID_ARGUMENT', 'retention flags (--keep-*) need --schedule: retention applies to the backups of one series');
  if (o.retention && !isEmptyPolicy(o.retention) && !o.wait) throw new CairnError('INVALID_ARGUMENT', 'retention flags (--keep-*) need --wait: the policy is applied once the backup is complete');
  const name = o.name ?? defaultBackupName(o.schedule ?? 'cairn', now);
  if (!isDnsName(name, 253)) throw new CairnError('INVALID_ARGUMENT', `backup name ${JSON.stringify(name)} must be a DNS-1123 subdomain (lower case letters, digits, '-' and '.')`);
  const caps = await clusterCapabilities(cc.kube);

  // A name is used once: neither an earlier cairn backup nor a Velero Backup may carry it.
  const existing = await cc.kube.listVelero<PodVolumeBackup>(cc.veleroNamespace, PVB_PLURAL, `${VELERO_BACKUP_NAME}=${shortenLabel(name)}`);
  if (existing.length) throw new CairnError('INVALID_ARGUMENT', `backup ${name} exists already (${existing.length} pod volume backups carry its name); choose another --name`);
  let clash: unknown;
  try {
    clash = await cc.kube.getVelero(cc.veleroNamespace, 'backups', name);
  } catch (e) {
    // no Backup CRD, or no permission: nothing to clash with that we could see
    if (!isNotFound(e)) cc.log.debug('could not look for a Velero Backup of the same name', { error: apiErrorMessage(e) });
  }
  if (clash) throw new CairnError('INVALID_ARGUMENT', `a Velero Backup named ${name} exists in ${cc.veleroNamespace}; choose another --name`);

  const bsl = await resolveBsl(cc, o.storageLocation);
  if (bsl.spec.accessMode === 'ReadOnly') throw new CairnError('INVALID_ARGUMENT', `backup storage location ${bsl.metadata.name} is read-only`);

  const pods: k8s.V1Pod[] = [];
  for (const ns of o.namespaces) {
    if (!(await cc.kube.namespaceExists(ns))) throw new CairnError('NOT_FOUND', `namespace ${ns} not found`);
    pods.push(...(await cc.kube.listPods(ns, o.selector)));
  }
  const plan = planBackup(pods, await claimInfos(cc, pods), { defaultVolumesToFsBackup: o.defaultVolumesToFsBackup, allowHostPaths: o.allowHostPaths });
  o.onEvent?.({ type: 'planned', volumes: plan.volumes.length, skipped: plan.skipped.length });
  const uid = randomUUID();
  const result: BackupResult = {
    name,
    uid,
    schedule: o.schedule,
    storageLocation: bsl.metadata.name!,
    phase: 'InProgress',
    startedAt: kubeTime(now),
    volumes: [],
    skipped: plan.skipped,
    repositories: [],
  };

  // One repository per volume namespace; initialise it when missing, as Velero's server does.
  const targets = new Map<string, RepoTarget>();
  for (const ns of new Set(plan.volumes.map((v) => v.pod.namespace))) {
    const target = await repoTarget(cc, bsl, ns);
    const opened = await openTarget(cc, target, { caps, create: true, randomPassword: o.randomPassword });
    await opened.repo.backend.close().catch(() => undefined);
    targets.set(ns, target);
    const use: RepositoryUse = { namespace: ns, repository: target.parsed.display, identifier: target.identifier, created: opened.created, passwordSource: opened.password.source };
    result.repositories.push(use);
    o.onEvent?.({ type: 'repository', namespace: ns, repository: use.repository, created: use.created, passwordSource: use.passwordSource });
  }

  const created: Array<{ name: string; selectedBy: string }> = [];
  for (const v of plan.volumes) {
    const t = targets.get(v.pod.namespace)!;
    const body = pvbFor(v, { name, uid, schedule: o.schedule, bsl: bsl.metadata.name!, identifier: t.identifier, veleroNamespace: cc.veleroNamespace });
    const pvb = await cc.kube.createVelero(cc.veleroNamespace, PVB_PLURAL, body);
    created.push({ name: pvb.metadata.name!, selectedBy: v.selectedBy });
    result.volumes.push(volumeResultOf(pvb, v.selectedBy));
    o.onEvent?.({ type: 'created', pvb: pvb.metadata.name!, namespace: v.pod.namespace, pod: v.pod.name, volume: v.volume });
  }
  if (created.length === 0) {
    result.phase = 'Empty';
    return result;
  }
  if (!o.wait) return result;

  // Wait for every PVB to reach a terminal phase.
  const deadline = now + o.timeoutMs;
  const seen = new Map<string, string>();
  const poll = o.pollMs ?? 1000;
  for (;;) {
    o.signal?.throwIfAborted();
    const items = await cc.kube.listVelero<PodVolumeBackup>(cc.veleroNamespace, PVB_PLURAL, `${CAIRN_BACKUP_UID}=${uid}`);
    const byName = new Map(items.map((p) => [p.metadata.name!, p]));
    result.volumes = created.map((c) => {
      const p = byName.get(c.name);
      if (!p) return { ...result.volumes.find((r) => r.pvb === c.name)!, phase: 'Failed', message: 'the pod volume backup was deleted' };
      return volumeResultOf(p, c.selectedBy);
    });
    for (const v of result.volumes) {
      if (seen.get(v.pvb) !== v.phase) {
        seen.set(v.pvb, v.phase);
        o.onEvent?.({ type: 'phase', pvb: v.pvb, namespace: v.namespace, pod: v.pod, volume: v.volume, phase: v.phase, message: v.message });
      }
    }
    if (result.volumes.every((v) => TERMINAL.has(v.phase))) break;
    if (o.clock.now() >= deadline) {
      result.timedOut = true;
      break;
    }
    await o.clock.sleep(poll, o.signal);
  }
  result.phase = overallPhase(result.volumes, result.timedOut);
  result.completedAt = kubeTime(o.clock.now());

  if (o.schedule && o.retention && !isEmptyPolicy(o.retention)) {
    result.retention = [];
    for (const [ns, t] of targets) result.retention.push(await applyRetention(cc, caps, t, ns, o));
  }
  return result;
}

/**
 * Records the series' policy on the repository's lease and applies it now, holding the lease.
 * When the lease is busy (another node maintains the repository), the forget is left to the
 * agents' maintenance, which reads the recorded policy.
 */
async function applyRetention(
  cc: ClusterContext,
  caps: Awaited<ReturnType<typeof clusterCapabilities>>,
  t: RepoTarget,
  ns: string,
  o: K8sBackupOptions,
): Promise<{ namespace: string; schedules: ForgetOutcome[]; deferred?: string; deletedPvbs: number }> {
  const policy = encodePolicy(o.retention!);
  const lease = repositoryLease(
    cc.kube,
    { identifier: t.identifier, storageLocation: t.bsl.metadata.name!, volumeNamespace: ns },
    { namespace: cc.veleroNamespace, identity: leaseIdentity('cairn-k8s-backup'), durationMs: o.leaseDurationMs ?? 60_000, clock: o.clock, log: cc.log },
  );
  const held = await lease.acquire(o.leaseWaitMs ?? 5 * 60_000, o.signal);
  if (!held) {
    const deferred = `the repository's lease is held by ${(await lease.read())?.spec?.holderIdentity ?? 'another process'}; the agents' maintenance applies the policy later`;
    // Record the policy without the lease: only annotations change, the holder's guarded writes re-read and keep them.
    await recordPolicyUnheld(cc, lease, o.schedule!, policy).catch((e) => cc.log.warn('could not record the retention policy', { error: errorMessage(e) }));
    o.onEvent?.({ type: 'retention', namespace: ns, repository: t.parsed.display, outcomes: [], deferred });
    return { namespace: ns, schedules: [], deferred, deletedPvbs: 0 };
  }
  try {
    await held.annotate({ [RETENTION_ANNOTATION_PREFIX + o.schedule!]: policy });
    const opened = await openTarget(cc, t, { caps });
    try {
      const f = await forgetSeries(opened.repo, new Map([[o.schedule!, o.retention!]]), {
        nowMs: o.clock.now(),
        retryLockMs: o.retryLockMs ?? 10 * 60_000,
        signal: AbortSignal.any([held.signal, ...(o.signal ? [o.signal] : [])]),
        prune: o.prune ? {} : undefined,
        log: cc.log,
      });
      const uids = f.outcomes.flatMap((x) => x.removed.map((b) => b.uid));
      const deletedPvbs = uids.length ? await deleteBackupPvbs(cc.kube, cc.veleroNamespace, t.identifier, uids) : 0;
      o.onEvent?.({ type: 'retention', namespace: ns, repository: t.parsed.display, outcomes: f.outcomes });
      return { namespace: ns, schedules: f.outcomes, deletedPvbs };
    } finally {
      await opened.repo.backend.close().catch(() => undefined);
    }
  } finally {
    await held.release();
  }
}

async function recordPolicyUnheld(cc: ClusterContext, lease: ReturnType<typeof repositoryLease>, schedule: string, policy: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const l = await lease.read();
    if (!l) return;
    const body = { ...l, metadata: { ...l.metadata, annotations: { ...(l.metadata?.annotations ?? {}), [RETENTION_ANNOTATION_PREFIX + schedule]: policy } } };
    if (await cc.kube.replaceLease(cc.veleroNamespace, body)) return;
  }
}
