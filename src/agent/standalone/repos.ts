/**
 * Repository access for cairn's standalone commands and the maintenance controller: from a
 * BackupStorageLocation and a volume namespace to the identifier Velero would use, the backend
 * settings of the BSL, the password (the repository's own secret, else the installation's), and
 * an open (or newly initialised) repository.
 */
import { CairnError, errorMessage, isCairnError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { initRepository, openRepository, type Repository } from '../../engine/index.js';
import { detectCapabilities, type Capabilities } from '../capabilities.js';
import { apiErrorMessage } from '../kube.js';
import { backendOptions, namespaceAccessSources, parseRepoIdentifier, repoAccessFor, PASSWORD_KEY, type AccessSources, type ParsedRepo } from '../repo-access.js';
import type { BackupStorageLocation } from '../velero.js';
import { repositoryIdentifier, type IdentifierDeps } from './identifier.js';
import type { StandaloneKube } from './kube.js';
import { passwordSecretMeta, randomPassword, resolvePassword, VELERO_DEFAULT_PASSWORD, type ResolvedPassword } from './password.js';
import { repositoryPasswordSecretName } from './labels.js';

export interface ClusterContext {
  kube: StandaloneKube;
  /** Where PVBs, PVRs, BSLs, secrets and leases live. */
  veleroNamespace: string;
  log: Logger;
  /** Directory for materialised per-BSL credential files (mode 0600). */
  credentialsDir: string;
  identifierDeps?: IdentifierDeps;
}

/** What the installed CRDs say (phases, repository CR kind, password secret names). */
export async function clusterCapabilities(kube: StandaloneKube): Promise<Capabilities> {
  const [pvb, pvr, br, rr] = await Promise.all(['podvolumebackups', 'podvolumerestores', 'backuprepositories', 'resticrepositories'].map((n) => kube.getCrd(`${n}.velero.io`)));
  if (!pvb) throw new CairnError('NOT_FOUND', 'CRD podvolumebackups.velero.io is not installed (apply deploy/crds)');
  if (!pvr) throw new CairnError('NOT_FOUND', 'CRD podvolumerestores.velero.io is not installed (apply deploy/crds)');
  return detectCapabilities(pvb, pvr, br, rr);
}

/** The named BSL, or the default one (`spec.default: true`, else the one called "default"). */
export async function resolveBsl(cc: ClusterContext, name?: string): Promise<BackupStorageLocation> {
  if (name) {
    const bsl = await cc.kube.getVelero<BackupStorageLocation>(cc.veleroNamespace, 'backupstoragelocations', name);
    if (!bsl) throw new CairnError('NOT_FOUND', `backup storage location ${name} not found in namespace ${cc.veleroNamespace}`);
    return bsl;
  }
  const all = await cc.kube.listBsls(cc.veleroNamespace);
  const defaults = all.filter((b) => (b.spec as { default?: boolean }).default === true);
  if (defaults.length === 1) return defaults[0]!;
  if (defaults.length > 1) throw new CairnError('INVALID_ARGUMENT', `several default backup storage locations (${defaults.map((b) => b.metadata.name).join(', ')}): choose one with --storage-location`);
  const named = all.find((b) => b.metadata.name === 'default');
  if (named) return named;
  throw new CairnError('NOT_FOUND', `no backup storage location in namespace ${cc.veleroNamespace} is marked default and none is called "default": use --storage-location`);
}

export function accessSourcesFor(cc: ClusterContext): AccessSources {
  return namespaceAccessSources((ns, name) => cc.kube.getSecretData(ns, name), cc.veleroNamespace, cc.credentialsDir);
}

export interface RepoTarget {
  bsl: BackupStorageLocation;
  identifier: string;
  parsed: ParsedRepo;
  volumeNamespace?: string;
}

export async function repoTarget(cc: ClusterContext, bsl: BackupStorageLocation, volumeNamespace: string): Promise<RepoTarget> {
  const identifier = await repositoryIdentifier(bsl, volumeNamespace, cc.identifierDeps);
  return { bsl, identifier, parsed: parseRepoIdentifier(identifier), volumeNamespace };
}

export interface OpenedRepository {
  repo: Repository;
  target: RepoTarget;
  password: ResolvedPassword;
  /** True when this call initialised the repository. */
  created: boolean;
}

export interface OpenOptions {
  caps: Capabilities;
  /** Initialise the repository when the location holds none (as Velero's server does). */
  create?: boolean;
  /**
   * For a repository this call initialises: give it its own random password (Secret
   * cairn-repo-<hash>) instead of the installation's.
   */
  randomPassword?: boolean;
  log?: Logger;
}

/** Opens the repository of a target, initialising it when asked and missing. */
export async function openTarget(cc: ClusterContext, target: RepoTarget, o: OpenOptions): Promise<OpenedRepository> {
  const log = o.log ?? cc.log;
  const src = accessSourcesFor(cc);
  let settings;
  try {
    settings = await backendOptions(target.parsed, target.bsl, src);
  } catch (e) {
    if (isCairnError(e)) throw e;
    throw new CairnError('BACKEND', `error reading the credentials of backup storage location ${target.bsl.metadata.name}: ${apiErrorMessage(e)}`, { cause: e });
  }
  let password: ResolvedPassword | undefined;
  try {
    password = await resolvePassword(src, target.identifier, o.caps.passwordSecrets);
  } catch (e) {
    if (!isCairnError(e, 'NOT_FOUND') || !o.create) throw e;
  }
  if (password) {
    try {
      const repo = await openRepository(repoAccessFor(target.parsed, password.password, settings, log));
      return { repo, target, password, created: false };
    } catch (e) {
      if (!o.create || !isCairnError(e, 'REPO_NOT_FOUND')) throw new CairnError(isCairnError(e) ? e.code : 'BACKEND', `error opening repository ${target.parsed.display}: ${errorMessage(e)}`, { cause: e });
    }
  }
  // No repository at the location: initialise it as Velero's server would (format 2, restic's chunker).
  if (o.randomPassword && password?.source !== 'repository') {
    const secret = repositoryPasswordSecretName(target.identifier);
    const created = await cc.kube.createSecret(cc.veleroNamespace, secret, { [PASSWORD_KEY]: randomPassword() }, passwordSecretMeta(target.identifier, target.parsed.display));
    if (created) log.info('created a per-repository password secret', { secret, repository: target.parsed.display });
    password = await resolvePassword(src, target.identifier, o.caps.passwordSecrets);
  } else if (!password) {
    // What Velero's server does at startup when the installation secret is missing.
    const name = o.caps.passwordSecrets[0]!;
    await cc.kube.createSecret(cc.veleroNamespace, name, { [PASSWORD_KEY]: VELERO_DEFAULT_PASSWORD });
    log.warn(`created the installation password secret ${name} with Velero's well-known default; prefer per-repository random passwords (--random-password)`, { secret: name });
    password = await resolvePassword(src, target.identifier, o.caps.passwordSecrets);
  }
  const access = repoAccessFor(target.parsed, password.password, settings, log);
  let created = false;
  try {
    const r = await initRepository({ ...access, version: 2, chunker: 'rabin' });
    created = true;
    log.info('initialised repository', { repository: target.parsed.display, id: r.id });
  } catch (e) {
    if (!isCairnError(e, 'REPO_EXISTS')) throw new CairnError(isCairnError(e) ? e.code : 'BACKEND', `error initialising repository ${target.parsed.display}: ${errorMessage(e)}`, { cause: e });
  }
  const repo = await openRepository(access);
  return { repo, target, password, created };
}
