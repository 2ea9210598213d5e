/** The engine's public facade: the CLI and the agent import only this module (and core/). */
export { openRepository, initRepository, listKeys, addKey, removeKey, changePassword, unlockRepository, describeLocks, Repository, type RepoAccess, type KeyInfo } from './repo.js';
export { backup, type BackupOptions, type BackupResult } from './backup.js';
export { restore, resolveTree, type RestoreOptions, type RestoreResult } from './restore.js';
export { listSnapshotsFiltered, listTree, catObject, type LsEntry } from './inspect.js';
export { ACCEPTED_FORMS } from '../backend/open.js';
