import type { Command } from 'commander';
import { openRepository, restore } from '../../engine/index.js';
import { CairnError } from '../../core/errors.js';
import { EXIT, err, formatBytes, formatDuration, out, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('restore')
    .description('extract the data from a snapshot')
    .argument('<snapshot>', 'snapshot ID, prefix or "latest", optionally with ":subfolder"')
    .requiredOption('-t, --target <dir>', 'directory to extract data to')
    .option('-i, --include <pattern>', 'include a pattern (repeatable)', collect, [])
    .option('-e, --exclude <pattern>', 'exclude a pattern (repeatable)', collect, [])
    .option('--verify', 'verify restored files content')
    .option('--sparse', 'restore files as sparse (zero runs become holes)')
    .option('-n, --dry-run', 'only show what would be restored')
    .option('-H, --host <host>', 'only consider snapshots for this host (with "latest")', collect, [])
    .option('--path <path>', 'only consider snapshots including this path (with "latest")', collect, [])
    .option('--tag <tags>', 'only consider snapshots with these tags (with "latest")', collect, [])
    .action(async (snapshot: string, o: { target: string; include: string[]; exclude: string[]; verify?: boolean; sparse?: boolean; dryRun?: boolean; host: string[]; path: string[]; tag: string[] }) => {
      const gopts = g();
      if (!o.target) throw new CairnError('INVALID_ARGUMENT', 'please specify a target directory with --target');
      const repo = await openRepository(repoAccess(gopts));
      const r = await withInterrupt((signal) => restore(repo, {
        snapshot,
        target: o.target,
        includes: o.include,
        excludes: o.exclude,
        verify: o.verify,
        sparse: o.sparse,
        dryRun: o.dryRun,
        filter: { hosts: o.host, paths: o.path, tags: o.tag.map((t) => t.split(',')) },
        noLock: gopts.noLock,
        signal,
        reporter: {
          itemError: (p, e) => (gopts.json ? err(JSON.stringify({ message_type: 'error', error: { message: e.message }, item: p })) : err(`error restoring ${p}: ${e.message}`)),
        },
      }));
      if (gopts.json) {
        out(JSON.stringify({ message_type: 'summary', snapshot_id: r.snapshotId, files_restored: r.files, dirs_restored: r.dirs, other_restored: r.others, bytes_restored: r.bytes, errors: r.errors, verified: r.verified, warnings: r.warnings.length ? r.warnings : undefined, dry_run: o.dryRun || undefined, seconds_elapsed: r.durationMs / 1000 }));
      } else if (!gopts.quiet) {
        out(`${o.dryRun ? 'would restore' : 'restored'} snapshot ${r.snapshotId.slice(0, 8)} to ${o.target}: ${r.files} files, ${r.dirs} dirs, ${r.others} other, ${formatBytes(r.bytes)} in ${formatDuration(r.durationMs)}`);
        for (const w of r.warnings.slice(0, 10)) err(`warning: ${w}`);
        if (r.verified) out(`verified ${r.verified.files} files, ${r.verified.errors} errors`);
      }
      if (r.errors > 0 || (r.verified && r.verified.errors > 0)) {
        if (!gopts.json) err(`There were ${r.errors + (r.verified?.errors ?? 0)} errors`);
        process.exitCode = EXIT.FATAL;
      }
    });
}
