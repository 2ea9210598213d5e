import type { Command } from 'commander';
import { openRepository, unlockRepository } from '../../engine/index.js';
import { out, repoAccess, type GlobalOptions } from '../context.js';

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('unlock')
    .description('remove stale locks (or all with --remove-all)')
    .option('--remove-all', 'remove all locks, even non-stale ones')
    .action(async (o: { removeAll?: boolean }) => {
      const gopts = g();
      const removed = await unlockRepository(await openRepository(repoAccess(gopts)), !!o.removeAll);
      if (gopts.json) out(JSON.stringify({ message_type: 'unlocked', removed }));
      else if (!gopts.quiet) out(removed.length ? `removed ${removed.length} lock(s)` : 'no stale locks found');
    });
}
