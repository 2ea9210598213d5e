/**
 * `cairn k8s repo-password`: moves an existing repository from the installation's shared password
 * to its own random one, the restic way (`key add`): the repository's data is not touched, only a
 * key file is added (and, on request, the old one removed).
 */
import { CairnError, errorMessage } from '../../core/errors.js';
import type { Clock } from '../../core/clock.js';
import { addKey, openRepository, removeKey, type Repository } from '../../engine/index.js';
import { repositoryPasswordSecretName } from './labels.js';
import { backendOptions, PASSWORD_KEY, repoAccessFor } from '../repo-access.js';
import { leaseIdentity } from './lease.js';
import { repositoryLease } from './maintenance.js';
import { passwordSecretMeta, randomPassword, resolvePassword, type PasswordMigration } from './password.js';
import { accessSourcesFor, clusterCapabilities, openTarget, repoTarget, resolveBsl, type ClusterContext } from './repos.js';

export interface PasswordMigrationOptions {
  namespace: string;
  storageLocation?: string;
  /** Remove the key of the installation password once the new one is stored and verified. */
  removeOldKey: boolean;
  clock: Clock;
  leaseWaitMs?: number;
}

export async function migrateRepositoryPassword(cc: ClusterContext, o: PasswordMigrationOptions): Promise<PasswordMigration> {
  const caps = await clusterCapabilities(cc.kube);
  const bsl = await resolveBsl(cc, o.storageLocation);
  const target = await repoTarget(cc, bsl, o.namespace);
  const src = accessSourcesFor(cc);
  const lease = repositoryLease(
    cc.kube,
    { identifier: target.identifier, storageLocation: bsl.metadata.name!, volumeNamespace: o.namespace },
    { namespace: cc.veleroNamespace, identity: leaseIdentity('cairn-k8s-repo-password'), durationMs: 60_000, clock: o.clock, log: cc.log },
  );
  // Key changes are exclusive work: hold the repository's lease like maintenance does.
  const held = await lease.acquire(o.leaseWaitMs ?? 5 * 60_000);
  if (!held) throw new CairnError('REPO_LOCKED', `the repository's lease ${lease.opts.name} is held by ${(await lease.read())?.spec?.holderIdentity ?? 'another process'}; try again later`);
  try {
    const current = await resolvePassword(src, target.identifier, caps.passwordSecrets);
    const opened = await openTarget(cc, target, { caps });
    const result: PasswordMigration = { repository: target.parsed.display, secret: current.secret, already: current.source === 'repository' };
    try {
      if (current.source === 'repository') {
        if (o.removeOldKey) result.removedKeyId = await removeInstallationKey(cc, target, caps.passwordSecrets, opened.repo);
        return result;
      }
      const oldKeyId = opened.repo.keyId;
      const password = randomPassword();
      // The key first: a secret whose password opens nothing would lock every reader out.
      const newKeyId = await addKey(opened.repo, password);
      result.newKeyId = newKeyId;
      const meta = passwordSecretMeta(target.identifier, target.parsed.display);
      const secret = repositoryPasswordSecretName(target.identifier);
      if (!(await cc.kube.createSecret(cc.veleroNamespace, secret, { [PASSWORD_KEY]: password }, meta))) {
        throw new CairnError('INVALID_ARGUMENT', `secret ${secret} appeared meanwhile; key ${newKeyId.slice(0, 8)} was added but is not stored anywhere — remove it with "cairn key remove"`);
      }
      result.secret = secret;
      // Verify through the secret, exactly as the agent will read it.
      const check = await resolvePassword(src, target.identifier, caps.passwordSecrets);
      const settings = await backendOptions(target.parsed, bsl, src);
      const reopened = await openRepository(repoAccessFor(target.parsed, check.password, settings, cc.log, newKeyId));
      try {
        if (reopened.keyId !== newKeyId) throw new CairnError('INTERNAL', `the new password opened key ${reopened.keyId.slice(0, 8)}, not ${newKeyId.slice(0, 8)}`);
        if (o.removeOldKey) {
          await removeKey(reopened, oldKeyId);
          result.removedKeyId = oldKeyId;
        }
      } finally {
        await reopened.backend.close().catch(() => undefined);
      }
      return result;
    } finally {
      await opened.repo.backend.close().catch(() => undefined);
    }
  } finally {
    await held.release();
  }
}

/** For a repository that already has its own password: removes the key the installation password opens, if any. */
async function removeInstallationKey(cc: ClusterContext, target: Awaited<ReturnType<typeof repoTarget>>, installation: readonly string[], repo: Repository): Promise<string | undefined> {
  const src = accessSourcesFor(cc);
  let installationPassword: string | undefined;
  for (const name of installation) {
    const v = (await src.getSecret(name))?.[PASSWORD_KEY];
    if (v !== undefined) {
      installationPassword = v.toString('utf8');
      break;
    }
  }
  if (installationPassword === undefined) return undefined;
  let oldKeyId: string;
  try {
    const old = await openRepository(repoAccessFor(target.parsed, installationPassword, await backendOptions(target.parsed, target.bsl, src), cc.log));
    oldKeyId = old.keyId;
    await old.backend.close().catch(() => undefined);
  } catch (e) {
    cc.log.debug('the installation password opens no key of this repository', { error: errorMessage(e) });
    return undefined;
  }
  if (oldKeyId === repo.keyId) return undefined;
  await removeKey(repo, oldKeyId);
  return oldKeyId;
}
