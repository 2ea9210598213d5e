/** The engine's public facade: the CLI and the agent import only this module (and core/). */
export { openRepository, initRepository, listKeys, addKey, removeKey, changePassword, unlockRepository, describeLocks, Repository, type RepoAccess, type KeyInfo } from './repo.js';
export { backup, type BackupOptions, type BackupResult } from './backup.js';
export { COMPRESSION_MODES, type Compression } from '../repository/blob-writer.js';
export { restore, resolveTree, type RestoreOptions, type RestoreResult } from './restore.js';
export { snapshotSize, type SnapshotSize } from './stats.js';
export { listSnapshotsFiltered, listTree, catObject, type LsEntry } from './inspect.js';
export { ACCEPTED_FORMS, openBackend, parseRepository, parseExtendedOptions, displayRepository, EXTENDED_OPTIONS, type BackendConfig, type BackendOptions } from '../backend/open.js';
export { openRepoBackend } from './repo.js';
export { rememberDerivedKeys } from '../crypto/kdf.js';
export type { S3Config } from '../backend/s3/config.js';
export type { RestConfig } from '../backend/rest/rest.js';
export { runRestoreHelper, scanRestoreMarkers, validateRestoreUid, DEFAULT_RESTORES_DIR, MARKER_DIR, type RestoreHelperEvent, type RestoreHelperOptions, type RestoreHelperResult, type RestoreScan } from './restore-helper.js';
export * from './maintenance.js';
export { applyPolicy as applyRetentionPolicy, type SnapshotLike as RetentionItem, type PolicyResult as RetentionResult } from '../maintenance/forget-policy.js';
