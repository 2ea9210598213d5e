import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import { CairnError, errorMessage } from '../../core/errors.js';
import { copyRepository, openRepository, parseTagList } from '../../engine/index.js';
import { err, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

interface CopyFlags {
  fromRepo?: string;
  fromRepositoryFile?: string;
  fromPasswordFile?: string;
  fromPasswordCommand?: string;
  fromKeyHint?: string;
  host: string[];
  tag: string[];
  path: string[];
}

/** The source password like restic's secondary repository: flags, then RESTIC_FROM_* variables. */
function sourcePassword(o: CopyFlags): string {
  const cmd = o.fromPasswordCommand ?? process.env.RESTIC_FROM_PASSWORD_COMMAND;
  if (cmd) {
    try {
      return execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', stdio: ['inherit', 'pipe', 'inherit'] }).replace(/\r?\n$/, '');
    } catch (e) {
      throw new CairnError('INVALID_ARGUMENT', `--from-password-command failed: ${errorMessage(e).split('\n')[0]}`);
    }
  }
  const file = o.fromPasswordFile ?? process.env.RESTIC_FROM_PASSWORD_FILE;
  if (file) {
    try {
      return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new CairnError('INVALID_ARGUMENT', `cannot read password file ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
    }
  }
  if (process.env.RESTIC_FROM_PASSWORD !== undefined) return process.env.RESTIC_FROM_PASSWORD;
  throw new CairnError('INVALID_ARGUMENT', 'no password for the source repository: use --from-password-file, --from-password-command, RESTIC_FROM_PASSWORD or RESTIC_FROM_PASSWORD_FILE');
}

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('copy')
    .description('copy snapshots from another repository (--from-repo) into this one (-r); both must use the same chunker parameters')
    .argument('[ids...]', 'source snapshots (ID prefixes or "latest"); default: all matching the filters')
    .option('--from-repo <repository>', 'source repository to copy snapshots from (default: $RESTIC_FROM_REPOSITORY)')
    .option('--from-repository-file <file>', 'file with the source repository location (default: $RESTIC_FROM_REPOSITORY_FILE)')
    .option('--from-password-file <file>', 'file with the source repository password (default: $RESTIC_FROM_PASSWORD_FILE)')
    .option('--from-password-command <command>', 'shell command printing the source repository password (default: $RESTIC_FROM_PASSWORD_COMMAND)')
    .option('--from-key-hint <id>', 'key ID to try first in the source repository (default: $RESTIC_FROM_KEY_HINT)')
    .option('-H, --host <host>', 'only consider snapshots for this host when no snapshot ID is given (repeatable)', collect, [])
    .option('--tag <taglist>', 'only consider snapshots which include this taglist when no snapshot ID is given (repeatable)', collect, [])
    .option('--path <path>', 'only consider snapshots which include this (absolute) path when no snapshot ID is given (repeatable)', collect, [])
    .action(async (ids: string[], o: CopyFlags) => {
      const gopts = g();
      let fromRepo = o.fromRepo ?? process.env.RESTIC_FROM_REPOSITORY;
      const repoFile = o.fromRepositoryFile ?? process.env.RESTIC_FROM_REPOSITORY_FILE;
      if (!fromRepo && repoFile) {
        try {
          fromRepo = readFileSync(repoFile, 'utf8').trim();
        } catch (e) {
          throw new CairnError('INVALID_ARGUMENT', `cannot read repository file ${repoFile}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
        }
      }
      if (!fromRepo) throw new CairnError('INVALID_ARGUMENT', 'please specify a source repository with --from-repo or RESTIC_FROM_REPOSITORY');
      const dstAccess = repoAccess(gopts);
      const srcAccess = { ...dstAccess, backend: undefined, repo: fromRepo, password: sourcePassword(o), keyHint: o.fromKeyHint ?? process.env.RESTIC_FROM_KEY_HINT };
      const src = await openRepository(srcAccess);
      try {
        const dst = await openRepository(dstAccess);
        try {
          const verbose = !gopts.quiet && !gopts.json;
          const r = await withInterrupt((signal) =>
            copyRepository(src, dst, {
              ids,
              hosts: o.host,
              tags: o.tag.map(parseTagList),
              paths: o.path,
              noLockSource: gopts.noLock,
              retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
              signal,
              onMessage: (m) => verbose && out(m),
            }),
          );
          for (const w of r.warnings) err(w);
          if (gopts.json) {
            for (const s of r.snapshots) out(JSON.stringify({ message_type: 'snapshot', source: s.source, destination: s.destination, skipped: s.skipped, blobs_copied: s.blobsCopied, bytes_copied: s.bytesCopied }));
            out(JSON.stringify({ message_type: 'summary', copied: r.snapshots.filter((s) => !s.skipped).length, skipped: r.snapshots.filter((s) => s.skipped).length }));
          } else if (!gopts.quiet) {
            out(`copied ${r.snapshots.filter((s) => !s.skipped).length} snapshots, skipped ${r.snapshots.filter((s) => s.skipped).length} already copied`);
          }
        } finally {
          await dst.backend.close().catch(() => undefined);
        }
      } finally {
        await src.backend.close().catch(() => undefined);
      }
    });
}
