import { Command, CommanderError } from 'commander';
import { errorMessage, isCairnError } from '../core/errors.js';
import { EXIT, err, exitCodeFor, type GlobalOptions } from './context.js';
import { registerBackendOptions } from './backend-options.js';
import * as init from './commands/init.js';
import * as backup from './commands/backup.js';
import * as restore from './commands/restore.js';
import * as snapshots from './commands/snapshots.js';
import * as ls from './commands/ls.js';
import * as cat from './commands/cat.js';
import * as key from './commands/key.js';
import * as unlock from './commands/unlock.js';
import * as restoreHelper from './commands/restore-helper.js';
import * as agent from './commands/agent.js';
import * as check from './commands/check.js';
import * as forget from './commands/forget.js';
import * as prune from './commands/prune.js';
import * as stats from './commands/stats.js';
import * as diff from './commands/diff.js';
import * as copy from './commands/copy.js';
import * as migrate from './commands/migrate.js';
import * as k8s from './commands/k8s.js';

const program = new Command();
program
  .name('cairn')
  .description('Backups in the restic repository format: fast, verifiable, readable by restic.')
  .version('0.1.0')
  .option('-r, --repo <repository>', 'repository (default: $RESTIC_REPOSITORY)')
  .option('-p, --password-file <file>', 'file with the repository password (default: $RESTIC_PASSWORD_FILE)')
  .option('--password-command <command>', 'shell command printing the password (default: $RESTIC_PASSWORD_COMMAND)')
  .option('--key-hint <id>', 'try this key ID first (default: $RESTIC_KEY_HINT)')
  .option('--json', 'print JSON instead of text')
  .option('-q, --quiet', 'print only errors')
  .option('-v, --verbose', 'more output (repeatable)', (_v: string, prev: number) => prev + 1, 0)
  .option('--no-lock', 'do not lock the repository (read-only commands)')
  .option('--retry-lock <duration>', 'retry to lock the repository for this long (e.g. 5m)')
  .showHelpAfterError()
  .exitOverride();
registerBackendOptions(program);

const globals = (): GlobalOptions => {
  const o = program.opts();
  return { ...o, noLock: o.lock === false } as GlobalOptions;
};

for (const m of [init, backup, restore, snapshots, ls, cat, key, unlock, restoreHelper, agent]) m.register(program, globals);
for (const m of [check, forget, prune, stats, diff, copy, migrate]) m.register(program, globals);
k8s.register(program, globals);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  } else {
    const json = program.opts().json;
    const msg = errorMessage(e);
    if (json) err(JSON.stringify({ message_type: 'exit_error', code: exitCodeFor(e), message: msg }));
    else err(`Fatal: ${msg}`);
    if (!isCairnError(e) && process.env.CAIRN_DEBUG) err((e as Error).stack ?? '');
    process.exitCode = exitCodeFor(e);
  }
}
