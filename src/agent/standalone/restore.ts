/**
 * `cairn k8s restore`: PodVolumeRestores for the backed-up volumes of pods that opted in, without a
 * velero.io Restore object.
 *
 * Opting in (the default mode): the pod carries the restore helper init container
 * (`restore-wait`, Velero's name; `restic-wait` is accepted too) with every volume to restore
 * mounted into it, and the helper waits for `<volume>/.velero/<token>`, where `<token>` is the
 * helper's argument (typically `$(POD_UID)` from the downward API). cairn reads the token from the
 * pod spec and puts it in the PVR's `velero.io/restore-uid` label, which is what the agent names the
 * marker after when a PVR has no Restore owner. Until the agent has restored every volume, the
 * application containers do not start.
 *
 * `--in-place`: running pods receive the data without any init container (label
 * `cairn.io/restore-mode=in-place` on the PVR: the agent starts as soon as the pod runs on its node
 * and writes no marker). Files of the snapshot overwrite the volume's; other files stay.
 *
 * Which backed-up volume a pod volume receives, in order: the pod annotation
 * `restore.cairn.io/source-pod` (source pod name in the source namespace, same volume name); the
 * same pod name and volume name (StatefulSets, re-created pods); for claims, the backed-up volume of
 * the claim with the same name (Deployments with PVCs).
 */
import { randomUUID } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Clock } from '../../core/clock.js';
import { CairnError } from '../../core/errors.js';
import { WAIT_CONTAINERS, kubeTime, phaseOf, timeMs, type PodVolumeBackup, type PodVolumeRestore } from '../velero.js';
import {
  ANNOTATION_RESTORE_SOURCE_POD,
  CAIRN_COMPONENT,
  CAIRN_MANAGED_BY,
  CAIRN_RESTORE_FULL_NAME,
  CAIRN_RESTORE_MODE,
  CAIRN_RESTORE_NAME,
  CAIRN_SOURCE_POD,
  CAIRN_SOURCE_PVB,
  RESTORE_MODE_IN_PLACE,
  VELERO_BACKUP_NAME,
  VELERO_BACKUP_UID,
  VELERO_POD_UID,
  VELERO_PVC_NAME,
  VELERO_RESTORE_NAME,
  VELERO_RESTORE_UID,
  isDnsName,
  isLabelValue,
  shortenLabel,
} from './labels.js';
import { clusterCapabilities, type ClusterContext } from './repos.js';
import { claimNameOf } from './selection.js';

export const PVR_PLURAL = 'podvolumerestores';
/** Groups the PVRs of one cairn restore (the per-pod marker tokens differ). */
export const CAIRN_RESTORE_UID = 'cairn.io/restore-uid';
const TERMINAL = new Set(['Completed', 'Failed', 'Canceled']);

export interface K8sRestoreOptions {
  fromBackup: string;
  /** source namespace → target namespace */
  namespaceMapping: Map<string, string>;
  /** Only restore into pods matching this label selector. */
  selector?: string;
  name?: string;
  inPlace: boolean;
  wait: boolean;
  timeoutMs: number;
  pollMs?: number;
  signal?: AbortSignal;
  clock: Clock;
  onEvent?: (e: RestoreEvent) => void;
}

export type RestoreEvent =
  | { type: 'created'; pvr: string; namespace: string; pod: string; volume: string; snapshotID: string }
  | { type: 'phase'; pvr: string; namespace: string; pod: string; volume: string; phase: string; message?: string };

export interface RestoreVolumeResult {
  namespace: string;
  pod: string;
  volume: string;
  sourceNamespace: string;
  sourcePod: string;
  snapshotID: string;
  pvr: string;
  phase: string;
  totalBytes?: number;
  durationMs?: number;
  message?: string;
}

export interface RestoreProblem {
  namespace: string;
  pod: string;
  volume?: string;
  reason: string;
}

export interface RestoreResult {
  name: string;
  uid: string;
  backup: string;
  inPlace: boolean;
  phase: 'Completed' | 'PartiallyFailed' | 'Failed' | 'InProgress' | 'Empty';
  startedAt: string;
  completedAt?: string;
  timedOut?: boolean;
  volumes: RestoreVolumeResult[];
  problems: RestoreProblem[];
}

/** Parses `a:b,c:d` (repeatable) into a map. */
export function parseNamespaceMapping(values: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const v of values.flatMap((x) => x.split(','))) {
    if (!v.trim()) continue;
    const [from, to, ...rest] = v.split(':');
    if (!from || !to || rest.length) throw new CairnError('INVALID_ARGUMENT', `--namespace-mapping ${JSON.stringify(v)}: expected source:target`);
    if (m.has(from)) throw new CairnError('INVALID_ARGUMENT', `--namespace-mapping names ${from} twice`);
    m.set(from, to);
  }
  return m;
}

/** Kubernetes' $(VAR) expansion of container command/args, for the variables a restore token can come from. */
export function expandContainerVars(s: string, container: k8s.V1Container, pod: k8s.V1Pod): string | undefined {
  let unresolved = false;
  const out = s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) => {
    if (m === '$$') return '$';
    const env = container.env?.find((e) => e.name === name);
    if (!env) {
      unresolved = true;
      return m;
    }
    if (env.value !== undefined) return env.value;
    const field = env.valueFrom?.fieldRef?.fieldPath;
    const v =
      field === 'metadata.uid' ? pod.metadata?.uid : field === 'metadata.name' ? pod.metadata?.name : field === 'metadata.namespace' ? pod.metadata?.namespace : undefined;
    if (v === undefined) unresolved = true;
    return v ?? m;
  });
  return unresolved ? undefined : out;
}

const HELPER_OPTIONS_WITH_VALUE = new Set(['--restores-dir', '--interval']);

/** The restore helper's container and the marker token it waits for. */
export function restoreWaitOf(pod: k8s.V1Pod): { container: k8s.V1Container; token?: string; problem?: string } | undefined {
  const container = pod.spec?.initContainers?.find((c) => WAIT_CONTAINERS.includes(c.name));
  if (!container) return undefined;
  const words = [...(container.command ?? []), ...(container.args ?? [])];
  const at = words.findIndex((w) => /(^|\/)(velero-restic-restore-helper|velero-restore-helper|restore-helper)$/.test(w));
  const rest = at >= 0 ? words.slice(at + 1) : container.args ?? [];
  let raw: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    if (HELPER_OPTIONS_WITH_VALUE.has(w)) {
      i++;
      continue;
    }
    if (w.startsWith('-')) continue;
    raw = w;
    break;
  }
  if (raw === undefined) return { container, problem: `init container ${container.name} names no restore token (its argument)` };
  const token = expandContainerVars(raw, container, pod);
  if (token === undefined) return { container, problem: `cannot resolve the argument ${JSON.stringify(raw)} of init container ${container.name} (use a literal, or $(VAR) with a literal env value or a metadata.uid/name/namespace fieldRef)` };
  if (!token || !isLabelValue(token)) return { container, problem: `restore token ${JSON.stringify(token)} of init container ${container.name} is not a valid label value (63 characters: letters, digits, '-', '_', '.'); the pod UID is a good token` };
  return { container, token };
}

interface SourceIndex {
  byPodVolume: Map<string, PodVolumeBackup>;
  byClaim: Map<string, PodVolumeBackup>;
}

function indexSources(pvbs: readonly PodVolumeBackup[]): SourceIndex {
  const byPodVolume = new Map<string, PodVolumeBackup>();
  const byClaim = new Map<string, PodVolumeBackup>();
  for (const p of pvbs) {
    const ns = p.spec.pod?.namespace ?? '';
    byPodVolume.set(`${ns}/${p.spec.pod?.name}/${p.spec.volume}`, p);
    const claim = p.metadata.annotations?.[VELERO_PVC_NAME];
    if (claim) byClaim.set(`${ns}/${claim}`, p);
  }
  return { byPodVolume, byClaim };
}

/** The backed-up volume a target pod volume receives (see the module comment), or why there is none. */
export function matchSource(pod: k8s.V1Pod, volume: string, sourceNs: string, idx: SourceIndex): PodVolumeBackup | string {
  const explicit = pod.metadata?.annotations?.[ANNOTATION_RESTORE_SOURCE_POD];
  if (explicit) return idx.byPodVolume.get(`${sourceNs}/${explicit}/${volume}`) ?? `the backup has no volume ${volume} of pod ${sourceNs}/${explicit} (from ${ANNOTATION_RESTORE_SOURCE_POD})`;
  const same = idx.byPodVolume.get(`${sourceNs}/${pod.metadata?.name}/${volume}`);
  if (same) return same;
  const v = pod.spec?.volumes?.find((x) => x.name === volume);
  const claim = v ? claimNameOf(pod, v) : undefined;
  if (claim) {
    const byClaim = idx.byClaim.get(`${sourceNs}/${claim}`);
    if (byClaim) return byClaim;
  }
  return `the backup has no volume of pod ${sourceNs}/${pod.metadata?.name} named ${volume}${claim ? ` nor of claim ${claim}` : ''}; annotate the pod with ${ANNOTATION_RESTORE_SOURCE_POD}: <source pod>`;
}

function resultOf(p: PodVolumeRestore): RestoreVolumeResult {
  const st = p.status ?? {};
  const start = timeMs(st.startTimestamp);
  const end = timeMs(st.completionTimestamp);
  return {
    namespace: p.spec.pod?.namespace ?? '',
    pod: p.spec.pod?.name ?? '',
    volume: p.spec.volume ?? '',
    sourceNamespace: p.spec.sourceNamespace ?? '',
    sourcePod: p.metadata.annotations?.[CAIRN_SOURCE_POD] ?? '',
    snapshotID: p.spec.snapshotID ?? '',
    pvr: p.metadata.name ?? '',
    phase: phaseOf(p) || 'New',
    totalBytes: st.progress?.totalBytes,
    durationMs: start && end ? end - start : undefined,
    message: st.message || undefined,
  };
}

/** The PVBs of a backup (by name; cairn's or Velero's), checking that the name is unambiguous. */
export async function backupPvbs(cc: ClusterContext, name: string): Promise<PodVolumeBackup[]> {
  const all = await cc.kube.listVelero<PodVolumeBackup>(cc.veleroNamespace, 'podvolumebackups', `${VELERO_BACKUP_NAME}=${shortenLabel(name)}`);
  const uids = new Set(all.map((p) => p.metadata.labels?.[VELERO_BACKUP_UID] ?? ''));
  if (uids.size > 1) throw new CairnError('INVALID_ARGUMENT', `${uids.size} different backups are named ${name} (backup UIDs ${[...uids].join(', ')})`);
  return all;
}

export async function runK8sRestore(cc: ClusterContext, o: K8sRestoreOptions): Promise<RestoreResult> {
  const now = o.clock.now();
  const name = o.name ?? `${o.fromBackup.slice(0, 40)}-restore-${randomUUID().slice(0, 8)}`;
  if (!isDnsName(name, 253)) throw new CairnError('INVALID_ARGUMENT', `restore name ${JSON.stringify(name)} must be a DNS-1123 subdomain`);
  await clusterCapabilities(cc.kube);
  const existing = await cc.kube.listVelero<PodVolumeRestore>(cc.veleroNamespace, PVR_PLURAL, `${VELERO_RESTORE_NAME}=${shortenLabel(name)}`);
  if (existing.length) throw new CairnError('INVALID_ARGUMENT', `restore ${name} exists already; choose another --name`);

  const pvbs = await backupPvbs(cc, o.fromBackup);
  if (pvbs.length === 0) throw new CairnError('NOT_FOUND', `no pod volume backups of backup ${o.fromBackup} in namespace ${cc.veleroNamespace}`);
  const usable = pvbs.filter((p) => phaseOf(p) === 'Completed');
  const idx = indexSources(usable);
  const sourceNamespaces = [...new Set(pvbs.map((p) => p.spec.pod?.namespace ?? ''))].sort();
  for (const from of o.namespaceMapping.keys()) if (!sourceNamespaces.includes(from)) throw new CairnError('INVALID_ARGUMENT', `--namespace-mapping ${from}: backup ${o.fromBackup} has no volumes of namespace ${from}`);

  const uid = randomUUID();
  const result: RestoreResult = { name, uid, backup: o.fromBackup, inPlace: o.inPlace, phase: 'InProgress', startedAt: kubeTime(now), volumes: [], problems: [] };
  const created: string[] = [];
  for (const sourceNs of sourceNamespaces) {
    const targetNs = o.namespaceMapping.get(sourceNs) ?? sourceNs;
    if (!(await cc.kube.namespaceExists(targetNs))) {
      result.problems.push({ namespace: targetNs, pod: '', reason: `target namespace ${targetNs} does not exist` });
      continue;
    }
    const pods = (await cc.kube.listPods(targetNs, o.selector)).sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
    for (const pod of pods) {
      const podName = pod.metadata?.name ?? '';
      if (pod.metadata?.deletionTimestamp) continue;
      let volumes: string[];
      let token: string;
      if (o.inPlace) {
        if (pod.status?.phase !== 'Running') continue;
        // every volume with data in the backup (an empty backed-up volume has nothing to put back)
        volumes = (pod.spec?.volumes ?? []).map((v) => v.name).filter((v) => {
          const m = matchSource(pod, v, sourceNs, idx);
          return typeof m !== 'string' && !!m.status?.snapshotID;
        });
        token = uid;
      } else {
        const wait = restoreWaitOf(pod);
        if (!wait) continue;
        if (wait.problem) {
          result.problems.push({ namespace: targetNs, pod: podName, reason: wait.problem });
          continue;
        }
        volumes = [...new Set((wait.container.volumeMounts ?? []).map((m) => m.name))];
        if (volumes.length === 0) {
          result.problems.push({ namespace: targetNs, pod: podName, reason: `init container ${wait.container.name} mounts no volume: mount each volume to restore at /restores/<volume>` });
          continue;
        }
        token = wait.token!;
      }
      for (const volume of volumes) {
        const src = matchSource(pod, volume, sourceNs, idx);
        if (typeof src === 'string') {
          // a Completed PVB of an empty volume, or a Failed one, explains more than "no volume"
          const other = pvbs.find((p) => p.spec.pod?.namespace === sourceNs && p.spec.volume === volume && (p.spec.pod?.name === podName || p.spec.pod?.name === pod.metadata?.annotations?.[ANNOTATION_RESTORE_SOURCE_POD]));
          const reason = other ? (phaseOf(other) === 'Completed' ? 'the backed-up volume was empty: nothing to restore (do not mount it into the restore helper)' : `its pod volume backup ${other.metadata.name} is ${phaseOf(other) || 'New'}`) : src;
          result.problems.push({ namespace: targetNs, pod: podName, volume, reason });
          continue;
        }
        if (!src.status?.snapshotID) {
          result.problems.push({ namespace: targetNs, pod: podName, volume, reason: 'the backed-up volume was empty: nothing to restore (do not mount it into the restore helper)' });
          continue;
        }
        const labels: Record<string, string> = {
          [VELERO_RESTORE_NAME]: shortenLabel(name),
          [VELERO_RESTORE_UID]: token,
          [VELERO_POD_UID]: pod.metadata?.uid ?? '',
          [CAIRN_RESTORE_NAME]: shortenLabel(name),
          [CAIRN_RESTORE_UID]: uid,
          [CAIRN_COMPONENT]: CAIRN_MANAGED_BY,
        };
        if (o.inPlace) labels[CAIRN_RESTORE_MODE] = RESTORE_MODE_IN_PLACE;
        const body: PodVolumeRestore = {
          apiVersion: 'velero.io/v1',
          kind: 'PodVolumeRestore',
          metadata: {
            generateName: `${name.slice(0, 57)}-`,
            namespace: cc.veleroNamespace,
            labels,
            annotations: { [CAIRN_RESTORE_FULL_NAME]: name, [CAIRN_SOURCE_PVB]: src.metadata.name ?? '', [CAIRN_SOURCE_POD]: src.spec.pod?.name ?? '' },
          },
          spec: {
            pod: { kind: 'Pod', namespace: targetNs, name: podName, uid: pod.metadata?.uid },
            volume,
            backupStorageLocation: src.spec.backupStorageLocation,
            repoIdentifier: src.spec.repoIdentifier,
            snapshotID: src.status.snapshotID,
            uploaderType: 'restic',
            sourceNamespace: sourceNs,
            ...(src.status.progress?.totalBytes ? { snapshotSize: src.status.progress.totalBytes } : {}),
          },
        };
        const pvr = await cc.kube.createVelero(cc.veleroNamespace, PVR_PLURAL, body);
        created.push(pvr.metadata.name!);
        result.volumes.push(resultOf(pvr));
        o.onEvent?.({ type: 'created', pvr: pvr.metadata.name!, namespace: targetNs, pod: podName, volume, snapshotID: src.status.snapshotID });
      }
    }
  }
  if (created.length === 0) {
    result.phase = result.problems.length ? 'Failed' : 'Empty';
    return result;
  }
  if (!o.wait) return result;
  const deadline = now + o.timeoutMs;
  const seen = new Map<string, string>();
  for (;;) {
    o.signal?.throwIfAborted();
    const items = await cc.kube.listVelero<PodVolumeRestore>(cc.veleroNamespace, PVR_PLURAL, `${CAIRN_RESTORE_UID}=${uid}`);
    const byName = new Map(items.map((p) => [p.metadata.name!, p]));
    result.volumes = created.map((n) => {
      const p = byName.get(n);
      return p ? resultOf(p) : { ...result.volumes.find((v) => v.pvr === n)!, phase: 'Failed', message: 'the pod volume restore was deleted' };
    });
    for (const v of result.volumes) {
      if (seen.get(v.pvr) !== v.phase) {
        seen.set(v.pvr, v.phase);
        o.onEvent?.({ type: 'phase', pvr: v.pvr, namespace: v.namespace, pod: v.pod, volume: v.volume, phase: v.phase, message: v.message });
      }
    }
    if (result.volumes.every((v) => TERMINAL.has(v.phase))) break;
    if (o.clock.now() >= deadline) {
      result.timedOut = true;
      break;
    }
    await o.clock.sleep(o.pollMs ?? 1000, o.signal);
  }
  const ok = result.volumes.filter((v) => v.phase === 'Completed').length;
  result.phase = ok === result.volumes.length && result.problems.length === 0 ? 'Completed' : ok === 0 ? 'Failed' : 'PartiallyFailed';
  result.completedAt = kubeTime(o.clock.now());
  return result;
}
