import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { openRepository, backup, COMPRESSION_MODES, type BackupResult, type Compression } from '../../engine/index.js';
import { CairnError } from '../../core/errors.js';
import type { BackupProgress, Reporter } from '../../core/reporter.js';
import { EXIT, err, formatBytes, formatDuration, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

interface BackupFlags {
  tag: string[];
  host?: string;
  parent?: string;
  exclude: string[];
  excludeFile: string[];
  oneFileSystem?: boolean;
  ignoreInode?: boolean;
  ignoreCtime?: boolean;
  force?: boolean;
  dryRun?: boolean;
  withAtime?: boolean;
  time?: string;
  compression?: string;
  packSize?: string;
  filesFrom: string[];
}

/** Parses --time "YYYY-MM-DD HH:MM:SS" in local time, as restic does. */
function parseBackupTime(s: string): bigint {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/.exec(s);
  if (!m) throw new CairnError('INVALID_ARGUMENT', `invalid --time ${JSON.stringify(s)} (format: "2006-01-02 15:04:05")`);
  const d = new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return BigInt(d.getTime()) * 1_000_000n;
}

export function register(program: Command, g: () => GlobalOptions): void {
  program
    .command('backup')
    .description('create a new snapshot of files and directories')
    .argument('[paths...]', 'files and directories to back up')
    .option('--tag <tags>', 'add tags to the snapshot (comma separated, repeatable)', collect, [])
    .option('-H, --host <host>', 'hostname recorded in the snapshot (default: this machine)')
    .option('--parent <snapshot>', 'use this parent snapshot (default: latest with the same host and paths)')
    .option('-e, --exclude <pattern>', 'exclude a pattern (repeatable)', collect, [])
    .option('--exclude-file <file>', 'read exclude patterns from a file (repeatable)', collect, [])
    .option('--files-from <file>', 'read the paths to back up from a file (repeatable)', collect, [])
    .option('-x, --one-file-system', 'exclude other file systems')
    .option('--ignore-inode', 'ignore inode number changes when checking for modified files')
    .option('--ignore-ctime', 'ignore ctime changes when checking for modified files')
    .option('-f, --force', 'read all files, even unchanged ones')
    .option('-n, --dry-run', 'do not write anything, only show what would be done')
    .option('--with-atime', 'store the atime of files and directories')
    .option('--time <time>', 'snapshot time instead of now ("2006-01-02 15:04:05", local time)')
    .option('--compression <mode>', `compression of data blobs: ${COMPRESSION_MODES.join(', ')} (default: $RESTIC_COMPRESSION or auto)`)
    .option('--pack-size <MiB>', 'target pack size in MiB (default 16)')
    .action(async (paths: string[], o: BackupFlags) => {
      const gopts = g();
      const all = [...paths];
      for (const f of o.filesFrom) {
        all.push(...readFileSync(f, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
      }
      if (all.length === 0) throw new CairnError('INVALID_ARGUMENT', 'nothing to back up, please specify source files/dirs');
      const excludes = [...o.exclude];
      const { readExcludeFile } = await import('../../fs/exclude.js');
      for (const f of o.excludeFile) excludes.push(...(await readExcludeFile(f)));
      const compression = o.compression ?? process.env.RESTIC_COMPRESSION ?? 'auto';
      if (!(COMPRESSION_MODES as readonly string[]).includes(compression)) {
        throw new CairnError('INVALID_ARGUMENT', `invalid compression mode ${JSON.stringify(compression)} (${COMPRESSION_MODES.join(', ')})`);
      }
      const packSize = o.packSize ? Number(o.packSize) : undefined;
      if (packSize !== undefined && !(packSize >= 4 && packSize <= 128)) throw new CairnError('INVALID_ARGUMENT', '--pack-size must be between 4 and 128 MiB');
      const repo = await openRepository(repoAccess(gopts));
      const tty = process.stderr.isTTY && !gopts.json && !gopts.quiet;
      let lastLine = 0;
      const reporter: Reporter = {
        // no progress consumer when nobody looks: that also spares the scanner's second walk
        progress: !tty && !gopts.json ? undefined : (p) => {
          if (gopts.json) out(JSON.stringify(statusJson(p)));
          else if (tty) {
            const line = progressLine(p);
            process.stderr.write('\r' + line.padEnd(lastLine));
            lastLine = line.length;
          }
        },
        itemError: (path, e) => {
          if (tty && lastLine) process.stderr.write('\r' + ' '.repeat(lastLine) + '\r');
          if (gopts.json) err(JSON.stringify({ message_type: 'error', error: { message: e.message }, during: 'archival', item: path }));
          else err(`error: ${e.message}`);
        },
        item: gopts.verbose && gopts.verbose > 1 && !gopts.json ? (action, path) => out(`${action.padEnd(10)} ${path}`) : undefined,
      };
      let r: BackupResult;
      try {
        r = await withInterrupt((signal) => backup(repo, {
          paths: all,
          tags: o.tag.flatMap((t) => t.split(',')).filter(Boolean),
          host: o.host,
          parent: o.parent,
          force: o.force,
          excludes,
          oneFileSystem: o.oneFileSystem,
          ignoreInode: o.ignoreInode,
          ignoreCtime: o.ignoreCtime,
          withAtime: o.withAtime,
          dryRun: o.dryRun,
          timeNs: o.time ? parseBackupTime(o.time) : undefined,
          compression: compression as Compression,
          packSize: packSize ? packSize * 1024 * 1024 : undefined,
          retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
          noLock: gopts.noLock,
          reporter,
          signal,
        }));
      } finally {
        if (tty && lastLine) process.stderr.write('\r' + ' '.repeat(lastLine) + '\r');
      }
      const s = r.summary;
      if (gopts.json) {
        out(JSON.stringify({
          message_type: 'summary',
          files_new: s.filesNew, files_changed: s.filesChanged, files_unmodified: s.filesUnmodified,
          dirs_new: s.dirsNew, dirs_changed: s.dirsChanged, dirs_unmodified: s.dirsUnmodified,
          data_blobs: s.dataBlobs, tree_blobs: s.treeBlobs, data_added: s.dataAdded,
          total_files_processed: s.totalFilesProcessed, total_bytes_processed: s.totalBytesProcessed,
          total_duration: r.durationMs / 1000, snapshot_id: r.snapshotId, dry_run: r.dryRun || undefined, errors: s.errors || undefined,
        }));
      } else if (!gopts.quiet) {
        if (r.parent) out(`using parent snapshot ${r.parent.slice(0, 8)}`);
        out('');
        out(`Files:       ${s.filesNew} new, ${s.filesChanged} changed, ${s.filesUnmodified} unmodified`);
        out(`Dirs:        ${s.dirsNew} new, ${s.dirsChanged} changed, ${s.dirsUnmodified} unmodified`);
        out(`${r.dryRun ? 'Would add' : 'Added'} to the repository: ${formatBytes(s.dataAdded)}`);
        out('');
        out(`processed ${s.totalFilesProcessed} files, ${formatBytes(s.totalBytesProcessed)} in ${formatDuration(r.durationMs)}`);
        if (r.snapshotId) out(`snapshot ${r.snapshotId.slice(0, 8)} saved`);
      }
      if (s.errors > 0) {
        if (!gopts.json) err(`Warning: at least one source file could not be read (${s.errors} errors)`);
        process.exitCode = EXIT.PARTIAL;
      }
    });
}

function statusJson(p: BackupProgress) {
  return {
    message_type: 'status',
    seconds_elapsed: Math.floor(p.elapsedMs / 1000),
    percent_done: p.totalBytes ? Math.min(1, p.bytesDone / p.totalBytes) : 0,
    total_files: p.totalFiles,
    files_done: p.filesDone,
    total_bytes: p.totalBytes,
    bytes_done: p.bytesDone,
    error_count: p.errors || undefined,
    current_files: p.currentFiles.length ? p.currentFiles : undefined,
  };
}

function progressLine(p: BackupProgress): string {
  const rate = p.elapsedMs > 0 ? (p.bytesDone / p.elapsedMs) * 1000 : 0;
  const pct = p.totalBytes ? (100 * p.bytesDone) / p.totalBytes : 0;
  const eta = rate > 0 && p.scanFinished ? ` ETA ${formatDuration(((p.totalBytes - p.bytesDone) / rate) * 1000)}` : '';
  return `[${formatDuration(p.elapsedMs)}] ${pct.toFixed(1)}%  ${p.filesDone} files ${formatBytes(p.bytesDone)}, total ${p.totalFiles} files ${formatBytes(p.totalBytes)}, ${formatBytes(rate)}/s${eta}`;
}
