import type { Command } from 'commander';
import { migrateRepository, openRepository, MIGRATIONS } from '../../engine/index.js';
import { err, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('migrate')
    .description(`apply migrations (without names: list the applicable ones); known: ${MIGRATIONS.map((m) => m.name).join(', ')}`)
    .argument('[names...]', 'migrations to apply, e.g. upgrade_repo_v2')
    .option('-f, --force', 'apply a migration even when its check says it does not apply')
    .action(async (names: string[], o: { force?: boolean }) => {
      const gopts = g();
      const repo = await openRepository(repoAccess(gopts));
      try {
        const verbose = !gopts.quiet && !gopts.json;
        const r = await withInterrupt((signal) =>
          migrateRepository(repo, names, {
            force: o.force,
            retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
            signal,
            onMessage: (m) => verbose && out(m),
            onProblem: (p) => {
              if (p.severity === 'error') err(`error: ${p.message}`);
              else if (verbose) out(p.message);
            },
          }),
        );
        if (gopts.json) {
          out(JSON.stringify({ message_type: 'migrate', available: r.available.map((m) => m.name), applied: r.applied, skipped: r.skipped }));
        } else if (names.length === 0 && !gopts.quiet) {
          out('available migrations:');
          if (r.available.length === 0) out('no migrations found');
          for (const m of r.available) out(`  ${m.name}\t${m.description}`);
        }
        if (r.skipped.length > 0) process.exitCode = 1;
      } finally {
        await repo.backend.close().catch(() => undefined);
      }
    });
}
