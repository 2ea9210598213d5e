/**
 * Finds a pod volume's directory as the agent sees it: the single match of
 * `<host pods>/<pod uid>/volumes/<plugin>/<dir>`, where `<dir>` is the volume name, or the PV name
 * for claims, plus `/mount` for CSI volumes (contract §10).
 */
import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { CairnError, errnoCode } from '../core/errors.js';
import { ANNOTATION_MIRROR } from './velero.js';

export interface VolumeLookup {
  getPvc(namespace: string, name: string): Promise<k8s.V1PersistentVolumeClaim | undefined>;
  getPv(name: string): Promise<k8s.V1PersistentVolume | undefined>;
  csiDriverExists(name: string): Promise<boolean>;
}

export interface ResolvedVolume {
  /** Absolute path inside the agent, e.g. /host_pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount. */
  path: string;
  /** The `<dir>` part that was searched for. */
  dir: string;
  pvcName?: string;
  pvName?: string;
  kind: 'pvc' | 'ephemeral' | 'csi-inline' | 'inline';
}

const BLOCK_MESSAGE = 'block mode not supported by the restic uploader';

/** Annotations under which CSI migration records the driver that now serves an in-tree PV. */
const CSI_MIGRATION_ANNOTATIONS = ['pv.kubernetes.io/provisioned-by', 'pv.kubernetes.io/migrated-to'];

export function podDirName(pod: k8s.V1Pod): string {
  return pod.metadata?.annotations?.[ANNOTATION_MIRROR] || pod.metadata?.uid || '';
}

function usesAsDevice(pod: k8s.V1Pod, volume: string): boolean {
  const all = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? []), ...(pod.spec?.ephemeralContainers ?? [])];
  return all.some((c) => (c as { volumeDevices?: Array<{ name: string }> }).volumeDevices?.some((d) => d.name === volume));
}

/**
 * hostPath volumes the agent may process: those under an allowed node path, reached through the
 * directory where the node's file system (or those paths) is mounted into the agent.
 */
export interface HostPathAccess {
  /** Where node paths are visible inside the agent: node `/srv/x` is `<hostRoot>/srv/x`. */
  hostRoot: string;
  /** Node path prefixes that may be backed up and restored. */
  allow: readonly string[];
}

function underPrefix(p: string, prefix: string): boolean {
  const a = path.posix.normalize(p).replace(/\/+$/, '') || '/';
  const b = path.posix.normalize(prefix).replace(/\/+$/, '') || '/';
  return b === '/' || a === b || a.startsWith(b + '/');
}

async function resolveHostPath(hostPath: string, volumeName: string, access: HostPathAccess | undefined): Promise<ResolvedVolume> {
  if (!access || !access.allow.some((prefix) => underPrefix(hostPath, prefix))) {
    throw new CairnError('UNSUPPORTED', `volume ${volumeName} is a hostPath volume (${hostPath}), which lives outside the kubelet pods directory and is not allowed (cairn agent --allow-host-path)`);
  }
  if (!path.posix.isAbsolute(hostPath) || hostPath.split('/').includes('..')) throw new CairnError('UNSAFE_PATH', `hostPath ${JSON.stringify(hostPath)} of volume ${volumeName} is not a clean absolute path`);
  const p = path.join(access.hostRoot, hostPath);
  const st = await stat(p).catch(() => undefined);
  if (!st) throw new CairnError('NOT_FOUND', `hostPath ${hostPath} of volume ${volumeName} is not visible at ${p} (mount it into the agent under ${access.hostRoot})`);
  if (!st.isDirectory()) throw new CairnError('UNSUPPORTED', `hostPath ${hostPath} of volume ${volumeName} is not a directory`);
  return { path: p, dir: hostPath, kind: 'inline' };
}

export async function resolveVolumeDir(pod: k8s.V1Pod, volumeName: string, lookup: VolumeLookup, hostPodsDir: string, hostPaths?: HostPathAccess): Promise<ResolvedVolume> {
  const ns = pod.metadata?.namespace ?? '';
  const podName = pod.metadata?.name ?? '';
  const vol = pod.spec?.volumes?.find((v) => v.name === volumeName);
  if (!vol) throw new CairnError('NOT_FOUND', `volume ${volumeName} not found in pod ${ns}/${podName}`, { object: `${ns}/${podName}` });
  if (vol.hostPath) return resolveHostPath(vol.hostPath.path, volumeName, hostPaths);
  if (usesAsDevice(pod, volumeName)) throw new CairnError('UNSUPPORTED', `volume ${volumeName} is attached as a raw block device: ${BLOCK_MESSAGE}`);

  let dir: string;
  let kind: ResolvedVolume['kind'];
  let pvcName: string | undefined;
  let pvName: string | undefined;
  if (vol.persistentVolumeClaim || vol.ephemeral) {
    // A generic ephemeral volume is backed by a PVC named <pod>-<volume> (Velero does not handle these).
    pvcName = vol.persistentVolumeClaim ? vol.persistentVolumeClaim.claimName : `${podName}-${volumeName}`;
    kind = vol.persistentVolumeClaim ? 'pvc' : 'ephemeral';
    const pvc = await lookup.getPvc(ns, pvcName);
    if (!pvc) throw new CairnError('NOT_FOUND', `persistent volume claim ${ns}/${pvcName} of volume ${volumeName} not found`);
    pvName = pvc.spec?.volumeName;
    if (!pvName) throw new CairnError('NOT_FOUND', `persistent volume claim ${ns}/${pvcName} is not bound to a persistent volume`);
    const pv = await lookup.getPv(pvName);
    if (!pv) throw new CairnError('NOT_FOUND', `persistent volume ${pvName} of claim ${ns}/${pvcName} not found`);
    if (pv.spec?.volumeMode === 'Block' || pvc.spec?.volumeMode === 'Block') {
      throw new CairnError('UNSUPPORTED', `volume ${volumeName} (persistent volume ${pvName}) is in block mode: ${BLOCK_MESSAGE}`);
    }
    if (pv.spec?.hostPath) throw new CairnError('UNSUPPORTED', `persistent volume ${pvName} is a hostPath volume, which lives outside the kubelet pods directory and cannot be processed`);
    dir = pvName;
    let csi = !!pv.spec?.csi;
    if (!csi) {
      for (const a of CSI_MIGRATION_ANNOTATIONS) {
        const driver = pv.metadata?.annotations?.[a];
        if (driver && (await lookup.csiDriverExists(driver))) {
          csi = true;
          break;
        }
      }
    }
    if (csi) dir += '/mount';
  } else {
    dir = volumeName;
    kind = vol.csi ? 'csi-inline' : 'inline';
    if (vol.csi) dir += '/mount';
  }

  const podDir = path.join(hostPodsDir, podDirName(pod));
  const volumesDir = path.join(podDir, 'volumes');
  let plugins: string[];
  try {
    plugins = await readdir(volumesDir);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') {
      const podMissing = await stat(podDir).then(() => false, () => true);
      throw new CairnError(
        'NOT_FOUND',
        podMissing
          ? `pod directory ${podDir} does not exist: is ${hostPodsDir} the kubelet pods directory of this node, mounted with HostToContainer propagation?`
          : `expected one matching path: ${volumesDir}/*/${dir}, got 0`,
      );
    }
    throw e;
  }
  const matches: string[] = [];
  for (const plugin of plugins.sort()) {
    const candidate = path.join(volumesDir, plugin, dir);
    const st = await stat(candidate).catch(() => undefined);
    if (st) matches.push(candidate);
  }
  if (matches.length !== 1) {
    throw new CairnError('NOT_FOUND', `expected one matching path: ${volumesDir}/*/${dir}, got ${matches.length}`);
  }
  const st = await stat(matches[0]!);
  if (!st.isDirectory()) throw new CairnError('UNSUPPORTED', `${matches[0]} is not a directory: ${BLOCK_MESSAGE}`);
  return { path: matches[0]!, dir, pvcName, pvName, kind };
}

/** The agent's hostPath settings, when any path is allowed. */
export function hostPathAccess(cfg: { hostRootDir?: string; allowHostPaths?: readonly string[] }): HostPathAccess | undefined {
  if (!cfg.allowHostPaths?.length) return undefined;
  return { hostRoot: cfg.hostRootDir ?? '/host', allow: cfg.allowHostPaths };
}
