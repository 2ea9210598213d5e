/**
 * Names cairn uses when it runs without a Velero server: the labels and annotations it puts on the
 * PodVolumeBackups/PodVolumeRestores it creates (next to Velero's own, which the agent and Velero
 * tooling read), and the pod annotations users already know from Velero.
 */
import { createHash } from 'node:crypto';

// --- Velero's pod annotations (contract §9.1) ---
export const ANNOTATION_BACKUP_VOLUMES = 'backup.velero.io/backup-volumes';
export const ANNOTATION_BACKUP_VOLUMES_EXCLUDES = 'backup.velero.io/backup-volumes-excludes';

// --- Velero's labels/annotations on PVBs and PVRs (contract §2.1, §3.1) ---
export const VELERO_BACKUP_NAME = 'velero.io/backup-name';
export const VELERO_BACKUP_UID = 'velero.io/backup-uid';
export const VELERO_PVC_UID = 'velero.io/pvc-uid';
export const VELERO_PVC_NAME = 'velero.io/pvc-name';
export const VELERO_RESTORE_NAME = 'velero.io/restore-name';
export const VELERO_RESTORE_UID = 'velero.io/restore-uid';
export const VELERO_POD_UID = 'velero.io/pod-uid';

// --- cairn's own ---
/** On PVBs/PVRs cairn created: the cairn backup/restore they belong to (label-shortened). */
export const CAIRN_BACKUP_NAME = 'cairn.io/backup-name';
export const CAIRN_BACKUP_UID = 'cairn.io/backup-uid';
export const CAIRN_RESTORE_NAME = 'cairn.io/restore-name';
/** The retention series a backup belongs to (`--schedule`); also a snapshot tag `cairn-schedule=<name>`. */
export const CAIRN_SCHEDULE = 'cairn.io/schedule';
export const SNAPSHOT_TAG_SCHEDULE = 'cairn-schedule';
/** Full (unshortened) names, as annotations. */
export const CAIRN_BACKUP_FULL_NAME = 'cairn.io/backup-full-name';
export const CAIRN_RESTORE_FULL_NAME = 'cairn.io/restore-full-name';
/** Annotations on a PVR: the PVB whose snapshot it restores, and that PVB's pod. */
export const CAIRN_SOURCE_PVB = 'cairn.io/source-pvb';
export const CAIRN_SOURCE_POD = 'cairn.io/source-pod';
/** Annotation on PVBs: how the volume was selected (opt-in annotation or opt-out default). */
export const CAIRN_SELECTED_BY = 'cairn.io/selected-by';
/**
 * Label on a PVR: `in-place` restores into the running pod's volume without waiting for a restore
 * helper init container and without writing the `.velero` marker (nobody waits for it).
 */
export { LABEL_RESTORE_MODE as CAIRN_RESTORE_MODE, RESTORE_MODE_IN_PLACE } from '../velero.js';
/** Pod annotation naming the source pod (in the source namespace) whose volumes a pod receives. */
export const ANNOTATION_RESTORE_SOURCE_POD = 'restore.cairn.io/source-pod';

/** Labels on the per-repository objects cairn owns (Lease, password Secret). */
export const CAIRN_REPOSITORY_HASH = 'cairn.io/repository-hash';
export const CAIRN_COMPONENT = 'app.kubernetes.io/managed-by';
export const CAIRN_MANAGED_BY = 'cairn';
/** Annotations on them: the repository (credentials removed), its BSL and volume namespace. */
export const CAIRN_REPOSITORY = 'cairn.io/repository';
export const CAIRN_STORAGE_LOCATION = 'cairn.io/storage-location';
export const CAIRN_VOLUME_NAMESPACE = 'cairn.io/volume-namespace';

/** Kubernetes' limit for label values (and DNS-1035 labels). */
const LABEL_MAX = 63;

/**
 * Velero's label shortening (contract §2.1): values longer than 63 characters become the first 57
 * characters followed by the first 6 hex digits of the SHA-256 of the whole value.
 */
export function shortenLabel(value: string): string {
  if (value.length <= LABEL_MAX) return value;
  const sha = createHash('sha256').update(value, 'utf8').digest('hex');
  return value.slice(0, LABEL_MAX - 6) + sha.slice(0, 6);
}

/** A stable short hash of a repository identifier, used to name the objects cairn keeps per repository. */
export function repositoryHash(identifier: string): string {
  return createHash('sha256').update(identifier, 'utf8').digest('hex').slice(0, 20);
}

/** The Lease that serialises exclusive work (forget, prune, check) on one repository. */
export function repositoryLeaseName(identifier: string): string {
  return `cairn-repo-${repositoryHash(identifier)}`;
}

/** The Secret holding a per-repository password (opt-in, see password.ts). */
export function repositoryPasswordSecretName(identifier: string): string {
  return `cairn-repo-${repositoryHash(identifier)}`;
}

/** A valid label value (also accepted as a Kubernetes object name part): [A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?, ≤ 63. */
export function isLabelValue(v: string): boolean {
  return v.length <= LABEL_MAX && (v === '' || /^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$/.test(v));
}

/** A DNS-1123 subdomain (names of backups, restores and schedules must be usable as labels and name prefixes). */
export function isDnsName(v: string, max = 63): boolean {
  return v.length > 0 && v.length <= max && /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v);
}
