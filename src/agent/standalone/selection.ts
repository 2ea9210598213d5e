/**
 * Which pod volumes a cairn backup takes (contract §9), decided the way Velero's server decides:
 * opt-in through `backup.velero.io/backup-volumes`, or with `defaultVolumesToFsBackup` every volume
 * except the excluded ones and the kinds Velero never backs up; hostPath volumes, volumes no
 * container mounts, raw block devices and pods that are not running are skipped; a PVC shared by
 * several pods is backed up once (the first pod in namespace/name order wins). Pure: the caller
 * fetches pods and claims.
 */
import type * as k8s from '@kubernetes/client-node';
import { ANNOTATION_BACKUP_VOLUMES, ANNOTATION_BACKUP_VOLUMES_EXCLUDES } from './labels.js';

export interface SelectionOptions {
  /** Opt-out mode (Velero's `defaultVolumesToFsBackup`). */
  defaultVolumesToFsBackup: boolean;
  /**
   * hostPath prefixes that may be backed up (the agent must allow them too and see the host's
   * file system, see `cairn agent --allow-host-path`). Empty: hostPath volumes are never taken.
   */
  allowHostPaths?: readonly string[];
}

/** What the planner knows about a claim (fetched by the caller). */
export interface ClaimInfo {
  uid: string;
  /** Bound PV name, if bound. */
  volumeName?: string;
  /** The bound PV is a hostPath PV (outside the kubelet pods directory). */
  hostPathPv?: boolean;
  /** Claim or PV in block mode. */
  block?: boolean;
}

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
  node: string;
}

export interface PlannedVolume {
  pod: PodRef;
  volume: string;
  /** For PVC and generic ephemeral volumes. */
  pvc?: { name: string; uid: string };
  /** hostPath volumes taken because of the allow-list: the path on the node. */
  hostPath?: string;
  selectedBy: 'annotation' | 'default';
}

export interface SkippedVolume {
  namespace: string;
  pod: string;
  volume: string;
  reason: string;
}

export interface BackupPlan {
  volumes: PlannedVolume[];
  skipped: SkippedVolume[];
}

/** Kinds whose contents come from the API (backed up as resources) and are never taken in opt-out mode. */
function apiDerivedKind(v: k8s.V1Volume): string | undefined {
  if (v.secret) return 'secret';
  if (v.configMap) return 'configMap';
  if (v.projected) return 'projected';
  if (v.downwardAPI) return 'downwardAPI';
  return undefined;
}

/** Velero splits the annotations on commas without trimming (`a, b` names "a" and " b"). */
export function annotationList(pod: k8s.V1Pod, key: string): string[] {
  const v = pod.metadata?.annotations?.[key];
  if (!v) return [];
  return v.split(',').filter((s) => s !== '');
}

/** The volume names a pod asks for, before the per-volume checks. */
export function candidateVolumes(pod: k8s.V1Pod, opts: SelectionOptions): { names: string[]; skipped: Array<{ volume: string; reason: string }> } {
  if (!opts.defaultVolumesToFsBackup) return { names: annotationList(pod, ANNOTATION_BACKUP_VOLUMES), skipped: [] };
  const excludes = new Set(annotationList(pod, ANNOTATION_BACKUP_VOLUMES_EXCLUDES));
  const names: string[] = [];
  const skipped: Array<{ volume: string; reason: string }> = [];
  for (const v of pod.spec?.volumes ?? []) {
    const kind = apiDerivedKind(v);
    if (kind) {
      skipped.push({ volume: v.name, reason: `${kind} volume (its contents come from the API)` });
    } else if (excludes.has(v.name)) {
      skipped.push({ volume: v.name, reason: `excluded by ${ANNOTATION_BACKUP_VOLUMES_EXCLUDES}` });
    } else if (v.name.startsWith('default-token')) {
      skipped.push({ volume: v.name, reason: 'service account token volume' });
    } else {
      names.push(v.name);
    }
  }
  return { names, skipped };
}

/** Containers that run alongside the application: regular ones and native sidecars (init containers with restartPolicy Always). */
function runningContainers(pod: k8s.V1Pod): k8s.V1Container[] {
  const sidecars = (pod.spec?.initContainers ?? []).filter((c) => (c as { restartPolicy?: string }).restartPolicy === 'Always');
  return [...(pod.spec?.containers ?? []), ...sidecars];
}

function isUnder(p: string, prefix: string): boolean {
  const norm = (s: string) => (s.length > 1 ? s.replace(/\/+$/, '') : s);
  const a = norm(p);
  const b = norm(prefix);
  return b === '/' || a === b || a.startsWith(b + '/');
}

/** The claim behind a volume: a PVC, or the `<pod>-<volume>` claim of a generic ephemeral volume. */
export function claimNameOf(pod: k8s.V1Pod, v: k8s.V1Volume): string | undefined {
  if (v.persistentVolumeClaim) return v.persistentVolumeClaim.claimName;
  if (v.ephemeral) return `${pod.metadata?.name ?? ''}-${v.name}`;
  return undefined;
}

/**
 * Plans the PodVolumeBackups of a backup. `claims` maps `<namespace>/<claim>` to what the caller
 * found (absent: the claim does not exist).
 */
export function planBackup(pods: readonly k8s.V1Pod[], claims: ReadonlyMap<string, ClaimInfo>, opts: SelectionOptions): BackupPlan {
  const plan: BackupPlan = { volumes: [], skipped: [] };
  const taken = new Map<string, string>(); // ns/claim → pod that backs it up
  const sorted = [...pods].sort((a, b) => key(a).localeCompare(key(b)));
  for (const pod of sorted) {
    const ns = pod.metadata?.namespace ?? '';
    const podName = pod.metadata?.name ?? '';
    const skip = (volume: string, reason: string) => plan.skipped.push({ namespace: ns, pod: podName, volume, reason });
    const { names, skipped } = candidateVolumes(pod, opts);
    for (const s of skipped) skip(s.volume, s.reason);
    if (names.length === 0) continue;
    const phase = pod.status?.phase ?? 'Unknown';
    if (pod.metadata?.deletionTimestamp) {
      for (const n of names) skip(n, 'the pod is being deleted');
      continue;
    }
    if (phase !== 'Running') {
      for (const n of names) skip(n, `the pod is not running (phase ${phase})`);
      continue;
    }
    const node = pod.spec?.nodeName;
    if (!node) {
      for (const n of names) skip(n, 'the pod is not scheduled to a node');
      continue;
    }
    const ref: PodRef = { namespace: ns, name: podName, uid: pod.metadata?.uid ?? '', node };
    const mounted = new Set<string>();
    const devices = new Set<string>();
    for (const c of runningContainers(pod)) {
      for (const m of c.volumeMounts ?? []) mounted.add(m.name);
      for (const d of c.volumeDevices ?? []) devices.add(d.name);
    }
    const seen = new Set<string>();
    for (const name of names) {
      if (seen.has(name)) continue;
      seen.add(name);
      const v = pod.spec?.volumes?.find((x) => x.name === name);
      if (!v) {
        skip(name, 'no volume with this name in the pod');
        continue;
      }
      let hostPath: string | undefined;
      if (v.hostPath) {
        const allowed = (opts.allowHostPaths ?? []).some((p) => isUnder(v.hostPath!.path, p));
        if (!allowed) {
          skip(name, `hostPath volume (${v.hostPath.path}) outside the kubelet pods directory${opts.allowHostPaths?.length ? ' and not allow-listed' : ''}`);
          continue;
        }
        hostPath = v.hostPath.path;
      }
      if (devices.has(name)) {
        skip(name, 'attached as a raw block device (block mode is not supported)');
        continue;
      }
      if (!mounted.has(name)) {
        skip(name, 'not mounted by any container');
        continue;
      }
      const selectedBy = opts.defaultVolumesToFsBackup ? 'default' : 'annotation';
      const claimName = claimNameOf(pod, v);
      if (claimName !== undefined) {
        const c = claims.get(`${ns}/${claimName}`);
        if (!c) {
          skip(name, `persistent volume claim ${claimName} not found`);
          continue;
        }
        if (!c.volumeName) {
          skip(name, `persistent volume claim ${claimName} is not bound`);
          continue;
        }
        if (c.hostPathPv) {
          skip(name, `persistent volume ${c.volumeName} of claim ${claimName} is a hostPath volume`);
          continue;
        }
        if (c.block) {
          skip(name, `persistent volume claim ${claimName} is in block mode (not supported)`);
          continue;
        }
        const owner = taken.get(`${ns}/${claimName}`);
        if (owner) {
          skip(name, `claim ${claimName} is already backed up from pod ${owner}`);
          continue;
        }
        taken.set(`${ns}/${claimName}`, podName);
        plan.volumes.push({ pod: ref, volume: name, pvc: { name: claimName, uid: c.uid }, selectedBy });
        continue;
      }
      plan.volumes.push({ pod: ref, volume: name, selectedBy, ...(hostPath ? { hostPath } : {}) });
    }
  }
  return plan;
}

function key(p: k8s.V1Pod): string {
  return `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;
}

/** The claims a set of pods refers to (for the caller to fetch), as `<namespace>/<claim>`. */
export function claimsOf(pods: readonly k8s.V1Pod[]): string[] {
  const out = new Set<string>();
  for (const p of pods) for (const v of p.spec?.volumes ?? []) {
    const c = claimNameOf(p, v);
    if (c) out.add(`${p.metadata?.namespace ?? ''}/${c}`);
  }
  return [...out];
}
