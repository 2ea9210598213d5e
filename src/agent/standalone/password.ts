/**
 * Repository passwords. Velero uses one password for every repository of an installation, read
 * from `velero-repo-credentials` (≤1.9 `velero-restic-credentials`), key `repository-password`,
 * which its server creates with the well-known value `static-passw0rd`. cairn can instead give a
 * repository its own random password, kept in a Secret it creates in the Velero namespace,
 * `cairn-repo-<hash of the identifier>` (same key). Whoever opens a repository (the agent, the
 * `cairn k8s` commands) tries that Secret first and falls back to the installation's.
 *
 * Migrating an existing repository (`cairn k8s repo-password`): open it with the installation
 * password, add a key for a new random password (restic `key add`), store the Secret, check that
 * the new password opens the repository, and only on request remove the old key (a running Velero
 * server still needs it to maintain the repository).
 */
import { randomBytes } from 'node:crypto';
import { CairnError } from '../../core/errors.js';
import { PASSWORD_KEY, repositoryPassword, type AccessSources } from '../repo-access.js';
import { CAIRN_COMPONENT, CAIRN_MANAGED_BY, CAIRN_REPOSITORY, CAIRN_REPOSITORY_HASH, repositoryHash, repositoryPasswordSecretName } from './labels.js';

/** Velero's server creates the installation secret with this value when it is missing. */
export const VELERO_DEFAULT_PASSWORD = 'static-passw0rd';

/** 32 random bytes, base64url: 256 bits, printable, no shell-hostile characters. */
export function randomPassword(): string {
  return randomBytes(32).toString('base64url');
}

export interface ResolvedPassword {
  password: string;
  /** `repository`: the repository's own secret; `installation`: Velero's shared one. */
  source: 'repository' | 'installation';
  secret: string;
}

/** The secret names to try for a repository, in order: its own, then the installation's. */
export function passwordSecretsFor(identifier: string, installation: readonly string[]): string[] {
  return [repositoryPasswordSecretName(identifier), ...installation];
}

/** Reads the password of a repository: its own secret if it has one, else the installation's. */
export async function resolvePassword(src: Pick<AccessSources, 'getSecret'>, identifier: string, installation: readonly string[]): Promise<ResolvedPassword> {
  const own = repositoryPasswordSecretName(identifier);
  const data = await src.getSecret(own);
  if (data) {
    const v = data[PASSWORD_KEY];
    if (v === undefined) throw new CairnError('NOT_FOUND', `secret ${own} has no key ${PASSWORD_KEY}`);
    return { password: v.toString('utf8'), source: 'repository', secret: own };
  }
  for (const name of installation) {
    if (await src.getSecret(name)) return { password: await repositoryPassword(src as AccessSources, [name]), source: 'installation', secret: name };
  }
  throw new CairnError('NOT_FOUND', `repository password secret not found (looked for ${[own, ...installation].join(', ')}, key ${PASSWORD_KEY})`);
}

/** Labels and annotations of a per-repository password secret. */
export function passwordSecretMeta(identifier: string, display: string): { labels: Record<string, string>; annotations: Record<string, string> } {
  return {
    labels: { [CAIRN_COMPONENT]: CAIRN_MANAGED_BY, [CAIRN_REPOSITORY_HASH]: repositoryHash(identifier) },
    annotations: { [CAIRN_REPOSITORY]: display },
  };
}

export interface PasswordMigration {
  repository: string;
  secret: string;
  /** The repository already had its own password (nothing was added). */
  already: boolean;
  newKeyId?: string;
  removedKeyId?: string;
}
