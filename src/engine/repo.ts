import { CairnError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { openBackend, type BackendConfig, type BackendOptions } from '../backend/open.js';
import { Repository, findKey, addKeyFile } from '../repository/repository.js';
import { RepoLock, listLocks, unlock as removeLocks, describeLock } from '../repository/lock.js';
import { DEFAULT_FASTCDC } from '../chunker/chunker.js';
import { formatPolynomial } from '../chunker/polynomial.js';
import { decodeKeyFile } from '../format/keyfile.js';
import { DEFAULT_SCRYPT } from '../crypto/kdf.js';
import type { Id } from '../core/ids.js';

export { Repository };

export interface RepoAccess {
  repo: string;
  password: string;
  logger?: Logger;
  keyHint?: string;
  /** Backend settings: -o options, bandwidth limits, TLS, credentials and BSL overrides. */
  options?: BackendOptions;
  /** An explicit backend configuration; when set it is used instead of parsing `repo`. */
  backend?: BackendConfig;
}

/** Opens the backend of a repository access (identifier or explicit configuration, plus options). */
export function openRepoBackend(a: RepoAccess) {
  return openBackend(a.backend ?? a.repo, { ...a.options, logger: a.options?.logger ?? a.logger });
}

export async function openRepository(a: RepoAccess): Promise<Repository> {
  const backend = await openRepoBackend(a);
  try {
    return await Repository.open(backend, a.password, { logger: a.logger, keyHint: a.keyHint });
  } catch (e) {
    await backend.close().catch(() => undefined); // free sockets of a repository that did not open
    throw e;
  }
}

export interface InitRepoOptions extends RepoAccess {
  version?: 1 | 2;
  chunker?: 'rabin' | 'fastcdc';
  /** Copy the chunker polynomial (and algorithm) of another repository, for dedup across them. */
  copyChunkerFrom?: RepoAccess;
}

export async function initRepository(o: InitRepoOptions): Promise<{ id: string; version: 1 | 2; location: string; chunker: string; polynomial: string }> {
  let polynomial: bigint | undefined;
  let chunker = o.chunker === 'rabin' ? undefined : { algorithm: 'fastcdc' as const, min: DEFAULT_FASTCDC.minSize, avg: DEFAULT_FASTCDC.avgSize, max: DEFAULT_FASTCDC.maxSize };
  if (o.copyChunkerFrom) {
    const other = await openRepository(o.copyChunkerFrom);
    polynomial = other.config.chunkerPolynomial;
    chunker = other.config.chunker;
    await other.backend.close();
  }
  const backend = await openRepoBackend(o);
  try {
    const repo = await Repository.init(backend, o.password, { version: o.version ?? 2, chunker, polynomial }, { logger: o.logger });
    return {
      id: repo.config.id,
      version: repo.config.version,
      location: backend.location,
      chunker: repo.config.chunker ? 'fastcdc' : 'rabin',
      polynomial: formatPolynomial(repo.config.chunkerPolynomial),
    };
  } finally {
    await backend.close();
  }
}

export interface KeyInfo {
  id: Id;
  current: boolean;
  userName: string;
  hostName: string;
  created: string;
}

export async function listKeys(repo: Repository): Promise<KeyInfo[]> {
  const out: KeyInfo[] = [];
  for (const id of await repo.listIds('key')) {
    try {
      const k = decodeKeyFile(await repo.backend.load({ type: 'key', name: id }));
      out.push({ id, current: id === repo.keyId, userName: k.username, hostName: k.hostname, created: k.created });
    } catch (e) {
      out.push({ id, current: id === repo.keyId, userName: '?', hostName: '?', created: `unreadable: ${(e as Error).message}` });
    }
  }
  return out;
}

export async function addKey(repo: Repository, newPassword: string): Promise<Id> {
  const lock = await RepoLock.acquire(repo, { exclusive: false });
  try {
    return await addKeyFile(repo.backend, repo.masterKey, newPassword, DEFAULT_SCRYPT, repo.clock);
  } finally {
    await lock.release();
  }
}

export async function removeKey(repo: Repository, idPrefix: string): Promise<Id> {
  const lock = await RepoLock.acquire(repo, { exclusive: true });
  try {
    const ids = (await repo.listIds('key')).filter((id) => id.startsWith(idPrefix));
    if (ids.length !== 1) throw new CairnError(ids.length ? 'INVALID_ARGUMENT' : 'NOT_FOUND', ids.length ? `key ID ${idPrefix} is ambiguous` : `no key with ID ${idPrefix}`);
    if (ids[0] === repo.keyId) throw new CairnError('INVALID_ARGUMENT', 'refusing to remove the key currently used to access the repository');
    await repo.removeFile('key', ids[0]!);
    return ids[0]!;
  } finally {
    await lock.release();
  }
}

/** Adds a key for the new password, then removes the current one (restic's key passwd). */
export async function changePassword(repo: Repository, newPassword: string): Promise<Id> {
  const lock = await RepoLock.acquire(repo, { exclusive: true });
  try {
    const id = await addKeyFile(repo.backend, repo.masterKey, newPassword, DEFAULT_SCRYPT, repo.clock);
    // make sure the new key really opens the repository before dropping the old one
    await findKey(repo.backend, newPassword, id);
    await repo.removeFile('key', repo.keyId);
    return id;
  } finally {
    await lock.release();
  }
}

export async function unlockRepository(repo: Repository, removeAll: boolean): Promise<Id[]> {
  return removeLocks(repo, removeAll);
}

export async function describeLocks(repo: Repository): Promise<string[]> {
  const now = repo.clock.now();
  return (await listLocks(repo)).map((l) => describeLock(l, now));
}
