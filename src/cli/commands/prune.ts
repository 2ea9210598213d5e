import type { Command } from 'commander';
import { CairnError } from '../../core/errors.js';
import { openRepository, parseMaxUnused, parseSize, pruneRepository, type PruneOptions, type PruneResult, type PruneStats } from '../../engine/index.js';
import { formatBytes, out, parseDuration, repoAccess, withInterrupt, type GlobalOptions } from '../context.js';

export interface PruneFlags {
  maxUnused: string;
  maxRepackSize?: string;
  repackCacheableOnly?: boolean;
  repackSmall?: boolean;
  repackUncompressed?: boolean;
  packSize?: string;
}

/** The prune options shared by `prune` and `forget --prune` (restic's addPruneOptions). */
export function addPruneOptions(c: Command): Command {
  return c
    .option('--max-unused <limit>', "tolerate this much unused data: a size with k/K, m/M, g/G, t/T, a percentage, or 'unlimited'", '5%')
    .option('--max-repack-size <size>', 'maximum size to repack (k/K, m/M, g/G, t/T)')
    .option('--repack-cacheable-only', 'only repack packs which are cacheable (tree packs)')
    .option('--repack-small', 'repack pack files below 80% of the target pack size')
    .option('--repack-uncompressed', 'repack all uncompressed data (repository version 2)')
    .option('--pack-size <MiB>', 'target size of new packs in MiB (4 to 128, default 16); also sets what counts as a small pack');
}

/** Validates the prune flags (before anything is opened) and turns them into engine options. */
export function pruneOptionsFrom(f: PruneFlags): Pick<PruneOptions, 'maxUnused' | 'maxRepackBytes' | 'repackCacheableOnly' | 'repackSmall' | 'repackUncompressed' | 'packSize' | 'onStep'> {
  const packSize = f.packSize !== undefined ? Number(f.packSize) : undefined;
  if (packSize !== undefined && !(Number.isInteger(packSize) && packSize >= 4 && packSize <= 128)) throw new CairnError('INVALID_ARGUMENT', '--pack-size must be between 4 and 128 MiB');
  const o: ReturnType<typeof pruneOptionsFrom> = {
    packSize: packSize ? packSize * 1024 * 1024 : undefined,
    maxUnused: parseMaxUnused(f.maxUnused),
    maxRepackBytes: f.maxRepackSize !== undefined ? parseSize(f.maxRepackSize) : undefined,
    repackCacheableOnly: f.repackCacheableOnly,
    repackSmall: f.repackSmall,
    repackUncompressed: f.repackUncompressed,
  };
  // Test-only fault injection: the process kills itself at the N-th change to the repository,
  // which simulates a crash at exactly that point (test/e2e/prune-crash.test.ts).
  const killAt = Number(process.env.CAIRN_TEST_PRUNE_KILL_AT_STEP ?? 0);
  if (killAt > 0) {
    o.onStep = (_step, n) => {
      if (n === killAt) process.kill(process.pid, 'SIGKILL');
    };
  }
  return o;
}

function pct(part: number, total: number): string {
  return total === 0 ? '0.00%' : `${((100 * part) / total).toFixed(2)}%`;
}

export function printPruneStats(s: PruneStats, verbose: number): void {
  const totalBlobs = s.blobs.used + s.blobs.unused + s.blobs.duplicate;
  const totalSize = s.size.used + s.size.duplicate + s.size.unused + s.size.unref;
  const unusedSize = s.size.duplicate + s.size.unused;
  const pad = (n: number) => String(n).padStart(10);
  out('');
  out(`used:         ${pad(s.blobs.used)} blobs / ${formatBytes(s.size.used)}`);
  if (s.blobs.duplicate > 0) out(`duplicates:   ${pad(s.blobs.duplicate)} blobs / ${formatBytes(s.size.duplicate)}`);
  out(`unused:       ${pad(s.blobs.unused)} blobs / ${formatBytes(s.size.unused)}`);
  if (s.size.unref > 0) out(`unreferenced:                    ${formatBytes(s.size.unref)}`);
  out(`total:        ${pad(totalBlobs)} blobs / ${formatBytes(totalSize)}`);
  out(`unused size: ${pct(unusedSize, totalSize)} of total size`);
  out('');
  out(`to repack:    ${pad(s.blobs.repack)} blobs / ${formatBytes(s.size.repack)}`);
  out(`this removes: ${pad(s.blobs.repackrm)} blobs / ${formatBytes(s.size.repackrm)}`);
  out(`to delete:    ${pad(s.blobs.remove)} blobs / ${formatBytes(s.size.remove + s.size.unref)}`);
  const totalPrune = s.size.remove + s.size.repackrm + s.size.unref;
  out(`total prune:  ${pad(s.blobs.remove + s.blobs.repackrm)} blobs / ${formatBytes(totalPrune)}`);
  out(`remaining:    ${pad(totalBlobs - (s.blobs.remove + s.blobs.repackrm))} blobs / ${formatBytes(totalSize - totalPrune)}`);
  const unusedAfter = unusedSize - s.size.remove - s.size.repackrm;
  out(`unused size after prune: ${formatBytes(unusedAfter)} (${pct(unusedAfter, totalSize - totalPrune)} of remaining size)`);
  out('');
  if (verbose > 0) {
    out(`totally used packs: ${pad(s.packs.used)}`);
    out(`partly used packs:  ${pad(s.packs.partlyUsed)}`);
    out(`unused packs:       ${pad(s.packs.unused)}`);
    out('');
  }
  out(`to keep:      ${pad(s.packs.keep)} packs`);
  out(`to repack:    ${pad(s.packs.repack)} packs`);
  out(`to delete:    ${pad(s.packs.remove)} packs`);
  if (s.packs.unref > 0) out(`to delete:    ${pad(s.packs.unref)} unreferenced packs`);
}

export function pruneJson(r: PruneResult) {
  const s = r.stats;
  return {
    message_type: 'prune',
    dry_run: r.dryRun,
    blobs: s.blobs,
    size: s.size,
    packs: s.packs,
    unreferenced_packs: r.unreferencedPacks,
    repacked_packs: r.repackedPacks,
    removed_packs: r.removedPacks,
    forgotten_packs: r.forgottenPacks,
    new_packs: r.newPacks,
    new_indexes: r.newIndexes,
    removed_indexes: r.removedIndexes,
    blobs_repacked: r.blobsRepacked,
    seconds_elapsed: r.durationMs / 1000,
  };
}

export function printPruneResult(r: PruneResult, gopts: GlobalOptions): void {
  if (gopts.json) {
    out(JSON.stringify(pruneJson(r)));
    return;
  }
  if (gopts.quiet) return;
  printPruneStats(r.stats, gopts.verbose ?? 0);
  if (r.dryRun) {
    if ((gopts.verbose ?? 0) > 0) {
      if (r.unreferencedPacks.length) out(`would have removed the following unreferenced packs:\n${r.unreferencedPacks.join('\n')}\n`);
      out(`would have repacked and removed the following packs:\n${r.repackedPacks.join('\n')}\n`);
      out(`would have removed the following no longer used packs:\n${r.removedPacks.join('\n')}\n`);
    }
    out('dry run: nothing was changed');
  } else {
    out(`repacked ${r.blobsRepacked} blobs into ${r.newPacks.length} new packs, removed ${r.removedPacks.length + r.repackedPacks.length + r.unreferencedPacks.length} packs, wrote ${r.newIndexes.length} index files`);
  }
}

export function register(program: Command, g: () => GlobalOptions): void {
  addPruneOptions(
    program
      .command('prune')
      .description('remove unneeded data from the repository (exclusive lock)')
      .option('-n, --dry-run', 'do not modify the repository, just print what would be done'),
  ).action(async (o: PruneFlags & { dryRun?: boolean }) => {
    const gopts = g();
    const po = pruneOptionsFrom(o);
    if (gopts.noLock && !o.dryRun) throw new CairnError('INVALID_ARGUMENT', '--no-lock is only applicable in combination with --dry-run for the prune command');
    const repo = await openRepository(repoAccess(gopts));
    try {
      const verbose = !gopts.quiet && !gopts.json;
      const r = await withInterrupt((signal) =>
        pruneRepository(repo, {
          ...po,
          dryRun: o.dryRun,
          lockHeld: gopts.noLock && o.dryRun,
          retryLockMs: gopts.retryLock ? parseDuration(gopts.retryLock) : undefined,
          signal,
          onMessage: (m) => {
            if (verbose) out(m);
          },
        }),
      );
      printPruneResult(r, gopts);
    } finally {
      await repo.backend.close().catch(() => undefined);
    }
  });
}
