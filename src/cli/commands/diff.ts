import type { Command } from 'commander';
import { diffSnapshots, openRepository, type DiffStat } from '../../engine/index.js';
import { err, formatBytes, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

function statJson(s: DiffStat) {
  return { files: s.files, dirs: s.dirs, others: s.others, data_blobs: s.dataBlobs, tree_blobs: s.treeBlobs, bytes: s.bytes };
}

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('diff')
    .description('show differences between two snapshots (+ added, - removed, M modified, T type changed, U metadata changed)')
    .argument('<snapshot1>', 'first snapshot (ID prefix or "latest")')
    .argument('<snapshot2>', 'second snapshot (ID prefix or "latest")')
    .option('--metadata', 'print changes in metadata')
    .action(async (s1: string, s2: string, o: { metadata?: boolean }) => {
      const gopts = g();
      const repo = await openRepository(repoAccess(gopts));
      try {
        const r = await withInterrupt((signal) =>
          diffSnapshots(repo, s1, s2, {
            metadata: o.metadata,
            noLock: gopts.noLock,
            retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
            signal,
            onStart: (a, b) => {
              if (!gopts.json && !gopts.quiet) out(`comparing snapshot ${a.slice(0, 8)} to ${b.slice(0, 8)}:\n`);
            },
            onChange: (c) => {
              if (gopts.quiet) return;
              if (gopts.json) out(JSON.stringify({ message_type: 'change', path: c.path, modifier: c.modifier }));
              else out(`${c.modifier.padEnd(5)}${c.path}`);
            },
          }),
        );
        for (const w of r.warnings) err(`error: ${w}`);
        if (gopts.json) {
          out(JSON.stringify({ message_type: 'statistics', source_snapshot: r.sourceSnapshot, target_snapshot: r.targetSnapshot, changed_files: r.changedFiles, added: statJson(r.added), removed: statJson(r.removed) }));
          return;
        }
        const n = (v: number) => String(v).padStart(5);
        out('');
        out(`Files:       ${n(r.added.files)} new, ${n(r.removed.files)} removed, ${n(r.changedFiles)} changed`);
        out(`Dirs:        ${n(r.added.dirs)} new, ${n(r.removed.dirs)} removed`);
        out(`Others:      ${n(r.added.others)} new, ${n(r.removed.others)} removed`);
        out(`Data Blobs:  ${n(r.added.dataBlobs)} new, ${n(r.removed.dataBlobs)} removed`);
        out(`Tree Blobs:  ${n(r.added.treeBlobs)} new, ${n(r.removed.treeBlobs)} removed`);
        out(`  Added:   ${formatBytes(r.added.bytes)}`);
        out(`  Removed: ${formatBytes(r.removed.bytes)}`);
      } finally {
        await repo.backend.close().catch(() => undefined);
      }
    });
}
