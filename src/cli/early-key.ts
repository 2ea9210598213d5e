/**
 * Starts deriving the repository's key before the rest of the CLI is loaded.
 *
 * Why: opening a repository waits ~0.1 s for scrypt on the thread pool, and loading the CLI's
 * modules takes ~0.1 s of compiling while the pool is idle; begun here, the two overlap, and every
 * command that opens a repository starts ~0.1 s sooner. crypto/kdf.ts hands the result to the
 * first deriveKey call with the same password, salt and parameters; anything else is derived as
 * before, so a wrong guess here only costs the CPU time of the derivation.
 *
 * Only the common case is guessed: a command that opens a repository, a local repository from
 * -r/--repo or RESTIC_REPOSITORY, the password from a password file or RESTIC_PASSWORD (never a
 * password command), and the key file findKey tries first (the hinted one, else the first listed).
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDerivation } from '../crypto/kdf.js';
import { decodeKeyFile } from '../format/keyfile.js';
import { passwordWithoutCommand } from './password.js';

/** Commands that open an existing repository with its password. */
const OPENING_COMMANDS = new Set(['backup', 'restore', 'snapshots', 'ls', 'cat', 'check', 'forget', 'prune', 'stats', 'diff', 'copy', 'key', 'unlock', 'migrate']);

/** Starts the derivation when the arguments make the key predictable; never throws, never prints. */
export function deriveKeyEarly(args: string[], env: NodeJS.ProcessEnv = process.env): void {
  try {
    const flags = scanFlags(args);
    if (!flags.opens) return;
    const root = localRepository(flags.repo ?? env.RESTIC_REPOSITORY);
    if (root === undefined) return;
    const password = passwordWithoutCommand(flags, env);
    if (password === undefined) return;
    const names = readdirSync(path.join(root, 'keys'));
    const hint = flags.keyHint ?? env.RESTIC_KEY_HINT;
    const name = (hint ? names.find((n) => n.startsWith(hint)) : undefined) ?? names[0];
    if (name === undefined) return;
    const file = decodeKeyFile(readFileSync(path.join(root, 'keys', name)));
    startDerivation(password, file.salt, { N: file.N, r: file.r, p: file.p });
  } catch {
    // a guess, nothing more: the command opens the repository the ordinary way
  }
}

interface ScannedFlags {
  opens: boolean;
  repo?: string;
  passwordFile?: string;
  passwordCommand?: string;
  keyHint?: string;
}

/** The global flags that matter here, found by name; the real parsing comes later (commander). */
function scanFlags(args: string[]): ScannedFlags {
  const f: ScannedFlags = { opens: false };
  const valued: Record<string, 'repo' | 'passwordFile' | 'passwordCommand' | 'keyHint'> = {
    '-r': 'repo',
    '--repo': 'repo',
    '-p': 'passwordFile',
    '--password-file': 'passwordFile',
    '--password-command': 'passwordCommand',
    '--key-hint': 'keyHint',
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') break;
    const eq = a.indexOf('=');
    const name = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const field = valued[name];
    if (field !== undefined) {
      const value = name === a ? args[++i] : a.slice(eq + 1);
      if (value !== undefined) f[field] = value;
    } else if (OPENING_COMMANDS.has(a)) {
      f.opens = true;
    }
  }
  return f;
}

/** The directory of a local repository identifier (a path or local:PATH); undefined for others. */
function localRepository(repo: string | undefined): string | undefined {
  if (!repo) return undefined;
  if (repo.startsWith('local:')) return repo.length > 'local:'.length ? path.resolve(repo.slice('local:'.length)) : undefined;
  return /^[a-z][a-z0-9]*:/.test(repo) ? undefined : path.resolve(repo);
}
