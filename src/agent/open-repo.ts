/** Opens the repository a PVB/PVR names: identifier + BSL + credentials + password. */
import { CairnError, errorMessage, isCairnError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { openRepository, type Repository } from '../engine/index.js';
import type { AgentContext } from './context.js';
import { apiErrorMessage } from './kube.js';
import { backendOptions, namespaceAccessSources, parseRepoIdentifier, repoAccessFor, type AccessSources, type ParsedRepo } from './repo-access.js';
import { resolvePassword } from './standalone/password.js';
import type { BackupStorageLocation } from './velero.js';

export function accessSources(ctx: AgentContext): AccessSources {
  return namespaceAccessSources((ns, name) => ctx.kube.getSecretData(ns, name), ctx.cfg.namespace, ctx.cfg.credentialsDir);
}

export async function loadBsl(ctx: AgentContext, name: string | undefined): Promise<BackupStorageLocation> {
  if (!name) throw new CairnError('INVALID_ARGUMENT', 'no backupStorageLocation in the spec');
  const cached = ctx.bsls.get(name, ctx.cfg.namespace);
  if (cached) return cached;
  let bsl: BackupStorageLocation | undefined;
  try {
    bsl = await ctx.kube.getVelero<BackupStorageLocation>(ctx.cfg.namespace, 'backupstoragelocations', name);
  } catch (e) {
    throw new CairnError('BACKEND', `error getting backup storage location ${name}: ${apiErrorMessage(e)}`, { retryable: true });
  }
  if (!bsl) throw new CairnError('NOT_FOUND', `backup storage location ${name} not found in namespace ${ctx.cfg.namespace}`);
  return bsl;
}

export interface OpenedRepo {
  repo: Repository;
  parsed: ParsedRepo;
}

export async function openItemRepository(
  ctx: AgentContext,
  spec: { repoIdentifier?: string; backupStorageLocation?: string },
  log: Logger,
  purpose: 'backup' | 'restore',
): Promise<OpenedRepo> {
  const parsed = parseRepoIdentifier(spec.repoIdentifier);
  const bsl = await loadBsl(ctx, spec.backupStorageLocation);
  if (purpose === 'backup' && bsl.spec.accessMode === 'ReadOnly') {
    throw new CairnError('INVALID_ARGUMENT', `backup storage location ${bsl.metadata.name} is read-only`);
  }
  const src = accessSources(ctx);
  let settings;
  let password: string;
  try {
    settings = await backendOptions(parsed, bsl, src);
    // the repository's own secret (cairn's per-repository passwords) before the installation's
    password = (await resolvePassword(src, parsed.identifier, ctx.caps.passwordSecrets)).password;
  } catch (e) {
    if (isCairnError(e)) throw e;
    throw new CairnError('BACKEND', `error reading credentials: ${apiErrorMessage(e)}`, { retryable: true, cause: e });
  }
  const access = repoAccessFor(parsed, password, settings, log, ctx.keyHints.get(parsed.identifier));
  try {
    const repo = await openRepository(access);
    ctx.keyHints.set(parsed.identifier, repo.keyId);
    return { repo, parsed };
  } catch (e) {
    const msg = errorMessage(e);
    const code = isCairnError(e) ? e.code : 'BACKEND';
    throw new CairnError(code, `error opening repository ${parsed.display}: ${msg}`, { cause: e });
  }
}
