#!/usr/bin/env node
/**
 * Lightweight entry point for the restore-wait init container (the image's /velero-restore-helper):
 * the same `restore-helper` command as `cairn restore-helper`, without loading the rest of the CLI.
 * cli.ts imports every command and, through them, every storage SDK — well over the 128 MiB
 * memory limit Velero gives this init container by default.
 *
 *   restore-helper-main.js <restore-uid> [--restores-dir /restores] [--interval 1s] [--json] [-q] [-v]
 */
import { Command, CommanderError } from 'commander';
import { errorMessage, isCairnError } from './core/errors.js';
import type { GlobalOptions } from './cli/context.js';
import * as restoreHelper from './cli/commands/restore-helper.js';

const program = new Command();
program
  .name('velero-restore-helper')
  .option('--json', 'print JSON lines instead of text')
  .option('-q, --quiet', 'print only errors')
  .option('-v, --verbose', 'more output (repeatable)', (_v: string, prev: number) => prev + 1, 0)
  .exitOverride();
restoreHelper.register(program, () => program.opts() as GlobalOptions);

try {
  // Velero passes the Restore UID as the only argument; global flags may come before or after it.
  await program.parseAsync(['restore-helper', ...process.argv.slice(2)], { from: 'user' });
} catch (e) {
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`Fatal: ${errorMessage(e)}\n`);
    process.exitCode = isCairnError(e, 'INVALID_ARGUMENT') ? 2 : 1;
  }
}
