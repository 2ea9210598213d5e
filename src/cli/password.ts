import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { CairnError, errorMessage } from '../core/errors.js';

/** Where a password may come from (the global flags; the RESTIC_* variables fill in). */
export interface PasswordSources {
  passwordFile?: string;
  passwordCommand?: string;
}

/** Resolves the password like restic: --password-command, --password-file, then the RESTIC_* variables. */
export function resolvePassword(g: PasswordSources, what = 'repository password'): string {
  const cmd = g.passwordCommand ?? process.env.RESTIC_PASSWORD_COMMAND;
  if (cmd) {
    try {
      const out = execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', stdio: ['inherit', 'pipe', 'inherit'] });
      return stripNewline(out);
    } catch (e) {
      throw new CairnError('INVALID_ARGUMENT', `password command failed: ${errorMessage(e).split('\n')[0]}`);
    }
  }
  const file = g.passwordFile ?? process.env.RESTIC_PASSWORD_FILE;
  if (file) {
    try {
      return readPasswordFile(file);
    } catch (e) {
      throw new CairnError('INVALID_ARGUMENT', `cannot read password file ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
    }
  }
  if (process.env.RESTIC_PASSWORD !== undefined) return process.env.RESTIC_PASSWORD;
  throw new CairnError('INVALID_ARGUMENT', `no ${what} given: use --password-file, --password-command, RESTIC_PASSWORD or RESTIC_PASSWORD_FILE`);
}

/**
 * The password resolvePassword would return, when that needs no command to run (a password
 * command is not run twice, nor ahead of time); undefined otherwise, and when none is given or the
 * file cannot be read. Never throws.
 */
export function passwordWithoutCommand(g: PasswordSources, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (g.passwordCommand ?? env.RESTIC_PASSWORD_COMMAND) return undefined;
  const file = g.passwordFile ?? env.RESTIC_PASSWORD_FILE;
  if (!file) return env.RESTIC_PASSWORD;
  try {
    return readPasswordFile(file);
  } catch {
    return undefined;
  }
}

function readPasswordFile(file: string): string {
  return stripNewline(readFileSync(file, 'utf8'));
}

function stripNewline(s: string): string {
  return s.replace(/\r?\n$/, '');
}
