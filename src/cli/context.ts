import { CairnError, isCairnError } from '../core/errors.js';
import type { RepoAccess } from '../engine/index.js';
import { backendOptionsFrom, type BackendFlags } from './backend-options.js';
import { resolvePassword } from './password.js';

export { resolvePassword };

export interface GlobalOptions extends BackendFlags {
  repo?: string;
  passwordFile?: string;
  passwordCommand?: string;
  keyHint?: string;
  json?: boolean;
  quiet?: boolean;
  verbose?: number;
  noLock?: boolean;
  retryLock?: string;
}

/** Exit codes: restic's 0/1/3 plus distinct codes for the failures users script against. */
export const EXIT = {
  OK: 0,
  FATAL: 1,
  USAGE: 2,
  PARTIAL: 3, // backup finished but some files could not be read
  REPO_NOT_FOUND: 10,
  LOCKED: 11,
  WRONG_PASSWORD: 12,
  CORRUPT: 13,
  INTERRUPTED: 130,
} as const;

export function exitCodeFor(e: unknown): number {
  if (!isCairnError(e)) return EXIT.FATAL;
  switch (e.code) {
    case 'REPO_NOT_FOUND':
      return EXIT.REPO_NOT_FOUND;
    case 'REPO_LOCKED':
      return EXIT.LOCKED;
    case 'WRONG_PASSWORD':
      return EXIT.WRONG_PASSWORD;
    case 'CORRUPT':
      return EXIT.CORRUPT;
    case 'INVALID_ARGUMENT':
      return EXIT.USAGE;
    case 'CANCELLED':
      return EXIT.INTERRUPTED;
    default:
      return EXIT.FATAL;
  }
}

export function repoAccess(g: GlobalOptions): RepoAccess {
  const repo = g.repo ?? process.env.RESTIC_REPOSITORY;
  if (!repo) throw new CairnError('INVALID_ARGUMENT', 'no repository given: use -r/--repo or RESTIC_REPOSITORY');
  return { repo, password: resolvePassword(g), keyHint: g.keyHint ?? process.env.RESTIC_KEY_HINT, options: backendOptionsFrom(g) };
}

/** Parses restic-style durations: "1h30m", "90s", "2m" → milliseconds. */
export function parseDuration(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    const v = Number(m[1]);
    total += m[2] === 'h' ? v * 3600_000 : m[2] === 'm' ? v * 60_000 : m[2] === 's' ? v * 1000 : v;
    consumed += m[0].length;
  }
  if (consumed !== s.length || consumed === 0) throw new CairnError('INVALID_ARGUMENT', `invalid duration ${JSON.stringify(s)} (examples: 30s, 5m, 1h30m)`);
  return total;
}

export function out(line: string): void {
  process.stdout.write(line + '\n');
}

export function err(line: string): void {
  process.stderr.write(line + '\n');
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(3)} ${units[u]}`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/**
 * Runs work with an AbortSignal that fires on SIGINT/SIGTERM, so engines stop cleanly and release
 * their repository locks (restic 0.14 refuses exclusive operations while a lock file is left).
 * A second signal kills the process the default way.
 */
export async function withInterrupt<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    controller.abort(new CairnError('CANCELLED', `interrupted by ${sig}`));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
