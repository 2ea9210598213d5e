import type { Command } from 'commander';
import { CairnError } from '../../core/errors.js';
import { openRepository, parseTagList, repositoryStats, STATS_MODES, type StatsMode } from '../../engine/index.js';
import { err, formatBytes, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('stats')
    .description('scan the repository and show basic statistics')
    .argument('[ids...]', 'snapshots to scan (ID prefixes or "latest"); default: all matching the filters')
    .option('--mode <mode>', 'counting mode: restore-size (default), files-by-contents, blobs-per-file or raw-data', 'restore-size')
    .option('-H, --host <host>', 'only consider snapshots with this host (repeatable)', collect, [])
    .option('--tag <taglist>', 'only consider snapshots which include this taglist (repeatable)', collect, [])
    .option('--path <path>', 'only consider snapshots which include this (absolute) path (repeatable)', collect, [])
    .action(async (ids: string[], o: { mode: string; host: string[]; tag: string[]; path: string[] }) => {
      const gopts = g();
      if (!STATS_MODES.includes(o.mode as StatsMode)) {
        throw new CairnError('INVALID_ARGUMENT', `unknown counting mode: ${o.mode} (use restore-size, files-by-contents, blobs-per-file or raw-data)`);
      }
      const repo = await openRepository(repoAccess(gopts));
      try {
        if (!gopts.json && !gopts.quiet) out('scanning...');
        const r = await withInterrupt((signal) =>
          repositoryStats(repo, {
            mode: o.mode as StatsMode,
            ids,
            hosts: o.host,
            tags: o.tag.map(parseTagList),
            paths: o.path,
            noLock: gopts.noLock,
            retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
            signal,
          }),
        );
        for (const w of r.warnings) err(w);
        if (gopts.json) {
          const j: Record<string, number> = { total_size: r.totalSize, total_file_count: r.totalFileCount };
          if (r.totalBlobCount) j.total_blob_count = r.totalBlobCount;
          j.snapshots_count = r.snapshotsCount;
          out(JSON.stringify(j));
          return;
        }
        out(`Stats in ${r.mode} mode:`);
        out(`Snapshots processed:   ${r.snapshotsCount}`);
        if (r.totalBlobCount > 0) out(`   Total Blob Count:   ${r.totalBlobCount}`);
        if (r.totalFileCount > 0) out(`   Total File Count:   ${r.totalFileCount}`);
        out(`         Total Size:   ${formatBytes(r.totalSize)}`);
      } finally {
        await repo.backend.close().catch(() => undefined);
      }
    });
}
