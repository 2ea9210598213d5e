/**
 * migrate (restic 0.14 cmd/restic/cmd_migrate.go, internal/migrations): the one migration restic
 * 0.14 knows, upgrade_repo_v2 — check the repository, then rewrite `config` with version 2 and
 * everything else unchanged. Existing v1 data stays valid in a v2 repository (uncompressed
 * blobs, raw JSON index/snapshot files). Runs under an exclusive lock.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CairnError, errorMessage } from '../core/errors.js';
import { encodeConfig } from '../format/config.js';
import { RepoLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { check, type CheckOptions, type CheckResult } from './check.js';

export interface Migration {
  name: string;
  description: string;
}

export const MIGRATIONS: readonly Migration[] = [{ name: 'upgrade_repo_v2', description: 'upgrade a repository to version 2' }];

export interface MigrateOptions {
  /** Apply even when the migration's own check says it does not apply. */
  force?: boolean;
  retryLockMs?: number;
  signal?: AbortSignal;
  onMessage?: (msg: string) => void;
  /** Problems found by the integrity check that runs first. */
  onProblem?: CheckOptions['onProblem'];
}

export interface MigrateResult {
  /** Migrations that can be applied (when no name was given). */
  available: Migration[];
  applied: string[];
  /** Migrations skipped because they do not apply (without force). */
  skipped: string[];
  check?: CheckResult;
}

function applies(repo: Repository, name: string): boolean {
  if (name === 'upgrade_repo_v2') return repo.config.version === 1;
  return false;
}

/** Lists applicable migrations (no names) or applies the named ones. */
export async function migrate(repo: Repository, names: string[], opts: MigrateOptions = {}): Promise<MigrateResult> {
  for (const n of names) {
    if (!MIGRATIONS.some((m) => m.name === n)) throw new CairnError('INVALID_ARGUMENT', `unknown migration ${JSON.stringify(n)} (available: ${MIGRATIONS.map((m) => m.name).join(', ')})`);
  }
  const msg = opts.onMessage ?? (() => undefined);
  const lock = await RepoLock.acquire(repo, { exclusive: true, retryLockMs: opts.retryLockMs, signal: opts.signal });
  try {
    const result: MigrateResult = { available: MIGRATIONS.filter((m) => applies(repo, m.name)), applied: [], skipped: [] };
    for (const name of names) {
      if (!applies(repo, name)) {
        if (!opts.force) {
          msg(`migration ${name} cannot be applied: check failed (the repository already has version ${repo.config.version})`);
          result.skipped.push(name);
          continue;
        }
        msg(`check for migration ${name} failed, continuing anyway`);
      }
      msg('checking repository integrity...');
      const r = await check(repo, { lockHeld: true, signal: opts.signal, onProblem: opts.onProblem });
      result.check = r;
      if (r.damaged) {
        throw new CairnError('CORRUPT', `repository contains errors (${r.errors}); migration ${name} not applied — run "cairn check" for details`);
      }
      msg(`applying migration ${name}...`);
      await upgradeRepoV2(repo);
      result.applied.push(name);
      msg(`migration ${name}: success`);
    }
    return result;
  } finally {
    await lock.release();
  }
}

/**
 * Rewrites the config with version 2. The old config bytes are saved to a temporary file first and
 * put back if writing the new one fails (restic does the same).
 */
async function upgradeRepoV2(repo: Repository): Promise<void> {
  const h = { type: 'config' as const, name: 'config' };
  const raw = await repo.backend.load(h);
  const dir = mkdtempSync(path.join(tmpdir(), 'cairn-migrate-upgrade-repo-v2-'));
  const backup = path.join(dir, 'config');
  writeFileSync(backup, raw, { mode: 0o600 });
  const next = repo.sealer.seal(encodeConfig({ ...repo.config, version: 2 }));
  try {
    try {
      await repo.backend.save(h, next);
    } catch {
      // backends without atomic replace: remove, then write
      await repo.backend.remove(h);
      await repo.backend.save(h, next);
    }
  } catch (e) {
    let restored = true;
    try {
      await repo.backend.remove(h).catch(() => undefined);
      await repo.backend.save(h, raw);
    } catch {
      restored = false;
    }
    throw new CairnError(
      'BACKEND',
      `error uploading config (${errorMessage(e)}), ${restored ? 're-uploaded old config was successful' : 're-uploading old config failed as well'}, there is a backup of the config file in ${backup}`,
      { cause: e },
    );
  }
  (repo.config as { version: 1 | 2 }).version = 2;
  rmSync(dir, { recursive: true, force: true });
}
