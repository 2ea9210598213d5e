/**
 * The Velero objects the agent reads and writes, as plain JSON shapes (custom objects arrive as raw
 * JSON from the API), plus the label/annotation names it must match exactly. Only the fields the
 * agent uses are declared; everything else is carried along untouched.
 */

export const VELERO_GROUP = 'velero.io';
export const VELERO_VERSION = 'v1';

export const LABEL_BACKUP_NAME = 'velero.io/backup-name';
export const LABEL_BACKUP_UID = 'velero.io/backup-uid';
export const LABEL_RESTORE_UID = 'velero.io/restore-uid';
export const LABEL_POD_UID = 'velero.io/pod-uid';
export const LABEL_PVC_UID = 'velero.io/pvc-uid';
export const LABEL_VOLUME_NAMESPACE = 'velero.io/volume-namespace';
export const LABEL_STORAGE_LOCATION = 'velero.io/storage-location';
export const LABEL_REPOSITORY_TYPE = 'velero.io/repository-type';
/** cairn's PVR label for restores into a running pod (no restore helper, no marker). */
export const LABEL_RESTORE_MODE = 'cairn.io/restore-mode';
export const RESTORE_MODE_IN_PLACE = 'in-place';
/** Mirror (static) pods: kubelet names their directory after this annotation, not the API UID. */
export const ANNOTATION_MIRROR = 'kubernetes.io/config.mirror';

/** Restore helper init containers: ≥1.10 and ≤1.9 names (both accepted). */
export const WAIT_CONTAINERS = ['restore-wait', 'restic-wait'];

/** Snapshot hostname Velero fixes so incremental chains survive agent pod renames. */
export const SNAPSHOT_HOST = 'velero';

export const EMPTY_VOLUME_MESSAGE = 'volume was empty so no snapshot was taken';

export type Phase = '' | 'New' | 'Accepted' | 'Prepared' | 'InProgress' | 'Canceling' | 'Canceled' | 'Completed' | 'Failed';

/** The four phases every Velero version's CRD accepts (1.6–1.16 know only these). */
export const BASE_PHASES: readonly Phase[] = ['New', 'InProgress', 'Completed', 'Failed'];

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  generateName?: string;
  finalizers?: string[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface ObjectReference {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
}

export interface Progress {
  totalBytes?: number;
  bytesDone?: number;
}

export interface PodVolumeStatus {
  phase?: Phase;
  message?: string;
  path?: string;
  snapshotID?: string;
  startTimestamp?: string;
  completionTimestamp?: string;
  progress?: Progress;
  incrementalBytes?: number;
}

export interface PodVolumeBackup {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    node?: string;
    pod?: ObjectReference;
    volume?: string;
    backupStorageLocation?: string;
    repoIdentifier?: string;
    uploaderType?: string;
    tags?: Record<string, string>;
    uploaderSettings?: Record<string, string> | null;
    cancel?: boolean;
  };
  status?: PodVolumeStatus;
}

export interface PodVolumeRestore {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    pod?: ObjectReference;
    volume?: string;
    backupStorageLocation?: string;
    repoIdentifier?: string;
    snapshotID?: string;
    uploaderType?: string;
    sourceNamespace?: string;
    uploaderSettings?: Record<string, string> | null;
    cancel?: boolean;
    snapshotSize?: number;
  };
  status?: PodVolumeStatus;
}

export interface SecretKeySelector {
  name: string;
  key: string;
  optional?: boolean;
}

export interface BackupStorageLocation {
  metadata: ObjectMeta;
  spec: {
    provider?: string;
    objectStorage?: { bucket?: string; prefix?: string; caCert?: string; caCertRef?: SecretKeySelector };
    credential?: SecretKeySelector;
    config?: Record<string, string>;
    accessMode?: string;
  };
  status?: { phase?: string };
}

/** ResticRepository (≤1.9) and BackupRepository (≥1.10) share the fields the agent reads. */
export interface RepositoryCR {
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    volumeNamespace?: string;
    backupStorageLocation?: string;
    repositoryType?: string;
    resticIdentifier?: string;
  };
  status?: { phase?: string; message?: string };
}

/** Backup / Restore: only the phase matters (to stop work whose owner has finished). */
export interface OwnerObject {
  metadata: ObjectMeta;
  status?: { phase?: string };
}

/** Owner phases after which no pod volume result is awaited any more. */
export const TERMINAL_OWNER_PHASES = new Set(['Completed', 'PartiallyFailed', 'Failed', 'FailedValidation', 'Deleting']);

export function phaseOf(o: { status?: PodVolumeStatus }): Phase {
  return o.status?.phase ?? '';
}

export function isNew(o: { status?: PodVolumeStatus }): boolean {
  const p = phaseOf(o);
  return p === '' || p === 'New';
}

/** Uploader type as the agent sees it: absent or empty means restic (objects from ≤1.9). */
export function uploaderOf(o: { spec: { uploaderType?: string } }): string {
  return o.spec.uploaderType || 'restic';
}

/** The controlling owner of a given kind (1.17+ stock code takes the first owner; accept that too). */
export function controllerOwner(meta: ObjectMeta, kind: string): OwnerReference | undefined {
  const refs = meta.ownerReferences ?? [];
  return refs.find((r) => r.kind === kind && r.controller) ?? refs.find((r) => r.kind === kind);
}

export function timeMs(t: string | Date | undefined): number {
  if (t === undefined) return 0;
  const v = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isFinite(v) ? v : 0;
}

/** RFC 3339 in whole seconds, the form Kubernetes metav1.Time serialises to. */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function objectKey(o: { metadata: ObjectMeta }): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name ?? ''}`;
}
