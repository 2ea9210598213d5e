/** cairn without a Velero server: the surface of the `cairn k8s` commands (loaded only by their actions). */
export { loadKubeConfig } from '../kube.js';
export { StandaloneKube } from './kube.js';
export { runK8sBackup, defaultBackupName, type BackupResult, type BackupEvent, type K8sBackupOptions, type VolumeResult } from './backup.js';
export { runK8sRestore, parseNamespaceMapping, type RestoreResult, type RestoreEvent, type K8sRestoreOptions } from './restore.js';
export { listBackups, listRestores, describeBackup, describeRestore, type BackupSummary, type RestoreSummary, type BackupDetails, type RestoreDetails } from './inventory.js';
export { migrateRepositoryPassword, type PasswordMigrationOptions } from './repo-password.js';
export { maintainOnce, type MaintainOnceOptions, type MaintainOnceResult } from './maintain-once.js';
export type { ClusterContext } from './repos.js';
