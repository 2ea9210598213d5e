/**
 * Repository CRs (ResticRepository ≤1.9, BackupRepository ≥1.10). The Velero server normally
 * initialises repositories with its own restic binary; servers without one (or a failed init)
 * leave the CR not Ready. When a restic-type CR that is not Ready names a location holding no
 * repository, the agent initialises it there (format v2, restic's Rabin chunker, so restic and
 * Velero's server can use it unchanged). The agent never writes the CR: the server's next check
 * finds the repository and marks it Ready.
 */
import { errorMessage, isCairnError } from '../core/errors.js';
import { initRepository, openRepository } from '../engine/index.js';
import type { AgentContext } from './context.js';
import { redactRepo } from './log.js';
import { accessSources, loadBsl } from './open-repo.js';
import { backendOptions, parseRepoIdentifier, repoAccessFor } from './repo-access.js';
import { resolvePassword } from './standalone/password.js';
import type { RepositoryCR } from './velero.js';

/** Whether the CR asks for a restic repository that is not known to be Ready. */
export function wantsInit(cr: RepositoryCR): boolean {
  const type = cr.spec?.repositoryType ?? '';
  if (type !== '' && type !== 'restic') return false;
  if (!cr.spec?.resticIdentifier) return false;
  return cr.status?.phase !== 'Ready';
}

export class RepositoryController {
  /** Identifiers checked recently (the server re-reconciles often; do not re-open each time). */
  private readonly checked = new Map<string, number>();
  private readonly inflight = new Set<string>();

  constructor(private readonly ctx: AgentContext, private readonly recheckMs = 60_000) {}

  handle(cr: RepositoryCR): void {
    if (!this.ctx.cfg.initRepositories || !wantsInit(cr)) return;
    const id = cr.spec.resticIdentifier!;
    const last = this.checked.get(id);
    if (this.inflight.has(id) || (last !== undefined && this.ctx.clock.now() - last < this.recheckMs)) return;
    this.inflight.add(id);
    void this.ensure(cr).finally(() => {
      this.inflight.delete(id);
      this.checked.set(id, this.ctx.clock.now());
    });
  }

  private async ensure(cr: RepositoryCR): Promise<void> {
    const ctx = this.ctx;
    const log = ctx.log.child({ repositoryCR: cr.metadata.name, repository: redactRepo(cr.spec.resticIdentifier) });
    try {
      const parsed = parseRepoIdentifier(cr.spec.resticIdentifier);
      const bsl = await loadBsl(ctx, cr.spec.backupStorageLocation);
      const src = accessSources(ctx);
      const settings = await backendOptions(parsed, bsl, src);
      const password = (await resolvePassword(src, parsed.identifier, ctx.caps.passwordSecrets)).password;
      const access = repoAccessFor(parsed, password, settings, log);
      try {
        const existing = await openRepository(access);
        await existing.backend.close().catch(() => undefined);
        return; // exists (and the password opens it)
      } catch (e) {
        if (!isCairnError(e, 'REPO_NOT_FOUND')) {
          log.debug('repository exists but cannot be opened; leaving it to the server', { error: errorMessage(e) });
          return;
        }
      }
      const r = await initRepository({ ...access, version: 2, chunker: 'rabin' });
      log.info('initialised repository', { id: r.id, version: r.version });
    } catch (e) {
      if (isCairnError(e, 'REPO_EXISTS')) return; // another node was faster
      log.warn('could not initialise repository', { error: errorMessage(e) });
    }
  }
}
