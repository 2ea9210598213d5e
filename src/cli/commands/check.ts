import type { Command } from 'commander';
import { checkRepository, openRepository, parseReadDataSubset, type AffectedItem, type CheckProblem } from '../../engine/index.js';
import { EXIT, err, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

function problemJson(p: CheckProblem) {
  return {
    message_type: p.severity,
    kind: p.kind,
    message: p.message,
    index: p.index,
    pack: p.pack,
    blob: p.blob,
    blob_type: p.blobType,
    tree: p.tree,
    snapshot: p.snapshot,
    path: p.path,
  };
}

function affectedLine(a: AffectedItem): string {
  return `  damaged: snapshot ${a.snapshot.slice(0, 8)} ${a.path} (${a.blobType} blob ${a.blob} in pack ${a.packs.join(', ')})`;
}

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('check')
    .description('check the repository for errors (exit code 13 when it is damaged)')
    .option('--read-data', 'read all data blobs')
    .option('--read-data-subset <subset>', "read a subset of data packs: 'n/t' for a specific part, 'x%' or a size (k/K, m/M, g/G, t/T) for a random subset")
    .option('--with-cache', 'accepted for restic compatibility (cairn keeps no cache)')
    .action(async (o: { readData?: boolean; readDataSubset?: string }) => {
      const gopts = g();
      if (o.readDataSubset !== undefined) parseReadDataSubset(o.readDataSubset); // usage errors before opening anything
      const repo = await openRepository(repoAccess(gopts));
      const verbose = !gopts.quiet && !gopts.json;
      let affectedShown = false;
      try {
        if (verbose && !gopts.noLock) out('create exclusive lock for repository');
        const r = await withInterrupt((signal) =>
          checkRepository(repo, {
            readData: o.readData,
            readDataSubset: o.readDataSubset,
            noLock: gopts.noLock,
            retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
            signal,
            onMessage: (m) => {
              if (verbose && m !== 'repository contains errors' && m !== 'no errors were found') out(m);
            },
            onProblem: (p) => {
              if (gopts.json) out(JSON.stringify(problemJson(p)));
              else if (p.severity === 'error') err(`error: ${p.message}`);
              else if (!gopts.quiet) out(p.message);
            },
            onAffected: (a) => {
              if (gopts.json) out(JSON.stringify({ message_type: 'affected', snapshot: a.snapshot, path: a.path, blob: a.blob, blob_type: a.blobType, packs: a.packs }));
              else {
                if (!affectedShown) err('files and directories that use damaged or missing data:');
                affectedShown = true;
                err(affectedLine(a));
              }
            },
          }),
        );
        if (gopts.json) {
          out(JSON.stringify({ message_type: 'summary', num_errors: r.errors, num_hints: r.hints, damaged: r.damaged, snapshots: r.snapshots, packs: r.packs, packs_read: r.packsRead, affected: r.affected.length }));
        } else if (r.damaged) {
          err(`Fatal: repository contains errors (${r.errors} error${r.errors === 1 ? '' : 's'})`);
        } else if (!gopts.quiet) {
          out('no errors were found');
        }
        if (r.damaged) process.exitCode = EXIT.CORRUPT;
      } finally {
        await repo.backend.close().catch(() => undefined);
      }
    });
}
