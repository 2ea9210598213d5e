/**
 * prune (spec §13): plan, then execute in crash-safe order —
 *   1. delete pack files no index lists,
 *   2. copy the still needed blobs of repacked packs into new packs and wait until they are stored,
 *   3. write new index files (every surviving pack plus the new ones, `supersedes` = all old ones),
 *   4. delete the old index files,
 *   5. delete removed and repacked packs.
 * A crash at any point leaves a repository restic accepts: at worst orphaned packs (not in any
 * index) or packs listed by two index files.
 */
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { mapLimit } from '../core/semaphore.js';
import { BufferPool } from '../native/buffer-pool.js';
import { IndexJsonWriter } from '../format/index-scan.js';
import { zstdCompress } from '../format/zstd.js';
import { CompactIndex, typeName } from '../repository/compact-index.js';
import { RepoLock } from '../repository/lock.js';
import { PackWriter } from '../repository/pack-writer.js';
import { BlobVerifier } from '../repository/verify-blob.js';
import type { Repository } from '../repository/repository.js';
import { parseMaxUnused, planPrune, PackAction, type MaxUnused, type PrunePlan, type PruneStats } from './prune-plan.js';
import { findUsedBlobs } from './used.js';

export interface PruneOptions {
  /** "5%" (default), a size ("200M") or "unlimited". */
  maxUnused?: string | MaxUnused;
  /** Bytes; default unlimited. */
  maxRepackBytes?: number;
  repackCacheableOnly?: boolean;
  repackSmall?: boolean;
  repackUncompressed?: boolean;
  /** Target pack size for new packs and the "small pack" limits (default 16 MiB). */
  packSize?: number;
  dryRun?: boolean;
  /** Snapshots to treat as already deleted (forget --prune --dry-run). */
  ignoreSnapshots?: ReadonlySet<Id>;
  retryLockMs?: number;
  /** The caller already holds an exclusive lock (forget --prune). */
  lockHeld?: boolean;
  signal?: AbortSignal;
  /** Progress messages ("loading indexes", "repacking packs"). */
  onMessage?: (msg: string) => void;
  /**
   * Called at every point where the repository changes (a file deleted, a pack or index stored).
   * Tests use it to simulate crashes; it may throw or never return.
   */
  onStep?: (step: PruneStep, count: number) => void | Promise<void>;
}

export type PruneStep = 'unreferenced-pack-deleted' | 'pack-stored' | 'index-stored' | 'old-index-deleted' | 'pack-deleted';

export interface PruneResult {
  dryRun: boolean;
  stats: PruneStats;
  /** Unindexed pack files deleted first. */
  unreferencedPacks: Id[];
  repackedPacks: Id[];
  removedPacks: Id[];
  /** Indexed packs that did not exist and held nothing needed (dropped from the index). */
  forgottenPacks: Id[];
  newPacks: Id[];
  newIndexes: Id[];
  removedIndexes: Id[];
  /** Blobs copied into new packs. */
  blobsRepacked: number;
  durationMs: number;
}

/** Bytes of one read while repacking, and the largest unneeded stretch read through rather than skipped. */
const READ_RUN = 4 * 1024 * 1024;
const MAX_READ_GAP = 256 * 1024;

/**
 * Blobs per new index file. restic 0.14 uses 50k (v1) / 150k (v2); any split is valid, and 50k
 * keeps the JSON being encoded, compressed and encrypted at once to a few MiB.
 */
const INDEX_MAX_BLOBS = 50_000;

export async function prune(repo: Repository, opts: PruneOptions = {}): Promise<PruneResult> {
  // bad options fail before anything is locked or read
  if (typeof opts.maxUnused === 'string') parseMaxUnused(opts.maxUnused);
  if (opts.repackUncompressed && repo.version < 2) {
    throw new CairnError('INVALID_ARGUMENT', 'compression requires at least repository format version 2 (--repack-uncompressed)');
  }
  // the index is read while the lock is confirmed (its 200 ms re-check)
  let index: CompactIndex | undefined;
  const loadIndex = async (): Promise<void> => {
    opts.onMessage?.('loading indexes...');
    index = await CompactIndex.load(repo, { signal: opts.signal });
  };
  const lock = opts.lockHeld ? undefined : await RepoLock.acquire(repo, { exclusive: true, retryLockMs: opts.retryLockMs, signal: opts.signal, whileConfirming: loadIndex });
  try {
    if (index === undefined) await loadIndex();
    return await pruneLocked(repo, opts, index!);
  } finally {
    await lock?.release();
  }
}

async function pruneLocked(repo: Repository, opts: PruneOptions, index: CompactIndex): Promise<PruneResult> {
  const started = repo.clock.now();
  const msg = opts.onMessage ?? (() => undefined);
  const maxUnused = typeof opts.maxUnused === 'string' ? parseMaxUnused(opts.maxUnused) : (opts.maxUnused ?? { kind: 'percent', value: 5 });
  const packSize = opts.packSize ?? 16 * 1024 * 1024;

  msg('loading all snapshots...');
  const { used, missing, snapshots } = await findUsedBlobs(repo, index, { ignore: opts.ignoreSnapshots, signal: opts.signal });
  msg(`found data that is still in use for ${snapshots.length} snapshots`);
  if (missing.length > 0) {
    throw new CairnError(
      'CORRUPT',
      `index is not complete: ${missing.length} blob(s) referenced by snapshots are not in the index (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}); prune will not start to prevent data loss — run "cairn check"`,
      { object: `blob ${missing[0]!.split(' ')[1]}` },
    );
  }

  msg('searching used packs...');
  const packFiles: Array<{ id: Id; size: number }> = [];
  for await (const f of repo.backend.list('pack', opts.signal)) packFiles.push({ id: f.name, size: f.size });
  const plan = planPrune(
    index,
    used,
    packFiles,
    {
      maxUnused,
      maxRepackBytes: opts.maxRepackBytes ?? Infinity,
      repackCacheableOnly: opts.repackCacheableOnly,
      repackSmall: opts.repackSmall,
      repackUncompressed: opts.repackUncompressed,
      packSize,
    },
    repo.version,
  );
  const result: PruneResult = {
    dryRun: opts.dryRun === true,
    stats: plan.stats,
    unreferencedPacks: plan.removeFirst.map((p) => p.id),
    repackedPacks: [],
    removedPacks: [],
    forgottenPacks: [],
    newPacks: [],
    newIndexes: [],
    removedIndexes: [],
    blobsRepacked: 0,
    durationMs: 0,
  };
  for (let p = 0; p < index.packCount; p++) {
    const a = plan.action[p];
    if (a === PackAction.Repack) result.repackedPacks.push(index.packId(p));
    else if (a === PackAction.Remove) result.removedPacks.push(index.packId(p));
    else if (a === PackAction.Ignore) result.forgottenPacks.push(index.packId(p));
  }
  if (opts.dryRun) {
    result.durationMs = repo.clock.now() - started;
    return result;
  }

  let steps = 0;
  const step = async (s: PruneStep) => {
    await opts.onStep?.(s, ++steps);
  };

  // 1. packs no index lists can only be garbage while we hold the exclusive lock
  if (plan.removeFirst.length > 0) {
    msg('deleting unreferenced packs');
    for (const p of plan.removeFirst) {
      await removeIfExists(repo, 'pack', p.id);
      await step('unreferenced-pack-deleted');
    }
  }

  // 2. repack
  if (plan.repackCount > 0) {
    msg(`repacking ${plan.repackCount} packs`);
    const writer = new PackWriter(repo, { packSize, uploadConcurrency: 1, onPackStored: () => step('pack-stored') });
    try {
      result.blobsRepacked = await repack(repo, index, plan, writer, opts.signal);
      const written = await writer.flush();
      for (const w of written) {
        index.addPack(w.id, w.blobs);
        result.newPacks.push(w.id);
      }
    } catch (e) {
      await writer.abort();
      throw e;
    }
    let left = 0;
    for (let h = 0; h < plan.keep.length; h++) left += plan.keep[h]!;
    if (left > 0) throw new CairnError('INTERNAL', `internal error: ${left} blob(s) were not repacked; nothing was deleted`);
  }

  // 3 + 4. new index files without the removed, repacked and missing packs; then drop the old ones
  const dropsSomething = plan.repackCount > 0 || plan.removeCount > 0 || plan.ignoreCount > 0;
  if (dropsSomething) {
    msg('rebuilding index');
    result.newIndexes = await writeIndexes(repo, index, plan, result.newPacks, step);
    msg('deleting obsolete index files');
    for (const id of index.indexIds) {
      await removeIfExists(repo, 'index', id);
      result.removedIndexes.push(id);
      await step('old-index-deleted');
    }
  }

  // 5. now nothing refers to them any more
  const doomed = [...result.removedPacks, ...result.repackedPacks];
  if (doomed.length > 0) {
    msg(`removing ${doomed.length} old packs`);
    await mapLimit(doomed, 4, async (id) => {
      await removeIfExists(repo, 'pack', id);
      await step('pack-deleted');
    });
  }
  msg('done');
  result.durationMs = repo.clock.now() - started;
  return result;
}

async function removeIfExists(repo: Repository, type: 'pack' | 'index', id: Id): Promise<void> {
  try {
    await repo.removeFile(type, id);
  } catch (e) {
    if (!(e instanceof CairnError && e.code === 'NOT_FOUND')) throw e;
  }
}

/**
 * Copies every blob marked in plan.keep out of the repacked packs into new packs, exactly once.
 * Each blob is verified (MAC, decompression, hash) before it is copied; a damaged copy is replaced
 * by another copy from a different pack when one exists, otherwise prune stops before deleting
 * anything. Sealed bytes are copied as they are, except where the pack must be compressed.
 */
async function repack(repo: Repository, index: CompactIndex, plan: PrunePlan, writer: PackWriter, signal?: AbortSignal): Promise<number> {
  const { start, order } = index.byPack();
  // the reads: runs of at most READ_RUN bytes of needed blobs (large gaps skipped), pack by pack
  interface Run {
    pack: number;
    from: number;
    to: number;
    entries: number[];
  }
  const runs: Run[] = [];
  for (let p = 0; p < index.packCount; p++) {
    if (plan.action[p] !== PackAction.Repack) continue;
    const entries: number[] = [];
    for (let i = start[p]!; i < start[p + 1]!; i++) {
      const e = order[i]!;
      if (plan.keep[index.entryHandle(e)]) entries.push(e);
    }
    // byPack() lists each pack's entries by offset
    let i = 0;
    while (i < entries.length) {
      const from = index.entryOffset(entries[i]!);
      let to = from + index.entryLength(entries[i]!);
      let j = i + 1;
      while (j < entries.length) {
        const off = index.entryOffset(entries[j]!);
        const end = off + index.entryLength(entries[j]!);
        if (off - to > MAX_READ_GAP || end - from > READ_RUN) break;
        to = Math.max(to, end);
        j++;
      }
      runs.push({ pack: p, from, to, entries: entries.slice(i, j) });
      i = j;
    }
  }
  // Runs are read into recycled buffers (two are in use at a time: the run being copied and the
  // next one being read): fresh buffers would be fresh pages to fault in and GC pressure. Every
  // run gets a buffer of at least READ_RUN bytes, so one size class serves them all (taken at
  // their own sizes, the runs of the prune benchmark made 12 buffers, 19.5 MiB).
  const buffers = new BufferPool(3 * 2 * READ_RUN);
  const read = (r: Run): Promise<{ buf?: Buffer; into: Buffer; error?: unknown }> => {
    const into = buffers.take(Math.max(READ_RUN, r.to - r.from));
    return repo.backend.load({ type: 'pack', name: index.packId(r.pack) }, r.from, r.to - r.from, into).then(
      (buf) => ({ buf, into }),
      (error: unknown) => ({ error, into }),
    );
  };
  // one run is verified and copied while the next one is read
  const verifier = new BlobVerifier(repo);
  let copied = 0;
  let next = runs.length > 0 ? read(runs[0]!) : undefined;
  for (let r = 0; r < runs.length; r++) {
    signal?.throwIfAborted();
    const { pack: p, from: runStart, entries } = runs[r]!;
    const { buf, into, error: readError } = await next!;
    next = r + 1 < runs.length ? read(runs[r + 1]!) : undefined;
    const packId = index.packId(p);
    // verify the blobs of this run in parallel (on the thread pool with the native kernels)
    const run = entries.filter((e) => plan.keep[index.entryHandle(e)]);
    const verdicts: unknown[] = new Array(run.length).fill(readError ?? null);
    if (buf) {
      await mapLimit(run, verifier.parallelism, async (e, k) => {
        const loc = index.location(e);
        try {
          await verifier.verifyAsync(index.handleId(index.entryHandle(e)), loc, buf.subarray(loc.offset - runStart, loc.offset - runStart + loc.length));
        } catch (err) {
          verdicts[k] = err;
        }
      });
    }
    for (const [k, e] of run.entries()) {
      const h = index.entryHandle(e);
      if (!plan.keep[h]) continue; // a second location of the same blob
      const type = typeName(index.handleType(h));
      const id = index.handleId(h);
      let loc = index.location(e);
      let sealed: Uint8Array | undefined;
      const firstError = verdicts[k];
      if (buf && firstError === null) sealed = buf.subarray(loc.offset - runStart, loc.offset - runStart + loc.length);
      if (!sealed) {
        // fall back to another copy of the blob in a different pack
        for (let alt = index.firstEntry(h); alt >= 0 && !sealed; alt = index.nextEntry(alt)) {
          if (index.entryPack(alt) === p) continue;
          const altLoc = index.location(alt);
          try {
            const s = await repo.backend.load({ type: 'pack', name: altLoc.packId }, altLoc.offset, altLoc.length);
            await verifier.verifyAsync(id, altLoc, s);
            sealed = s;
            loc = altLoc;
          } catch {
            /* try the next copy */
          }
        }
      }
      if (!sealed) {
        await next; // do not leave a read running
        throw new CairnError(
          'CORRUPT',
          `${type} blob ${id} in pack ${packId} cannot be read (${errorMessage(firstError)}) and no other copy exists; prune stopped before deleting anything — run "cairn check --read-data"`,
          { object: `pack ${packId}`, cause: firstError },
        );
      }
      let ulen = loc.uncompressedLength ?? 0;
      if (plan.mustCompress[p] && !ulen && loc.length > 32) {
        // restic compresses these unconditionally; storing them raw again would repack them forever
        const plain = repo.sealer.open(sealed, `${type} blob ${id}`);
        sealed = repo.sealer.seal(zstdCompress(plain));
        ulen = plain.length;
      }
      plan.keep[h] = 0;
      copied++;
      await writer.add(type, id, sealed, ulen); // copies the bytes: the run buffer can go
    }
    buffers.give(into);
  }
  return copied;
}

async function writeIndexes(repo: Repository, index: CompactIndex, plan: PrunePlan, newPacks: Id[], step: (s: PruneStep) => Promise<void>): Promise<Id[]> {
  const maxBlobs = INDEX_MAX_BLOBS;
  const supersedes = [...index.indexIds];
  const { start, order } = index.byPack();
  const newSet = new Set(newPacks);
  const written: Id[] = [];
  let w = new IndexJsonWriter(supersedes);
  const flush = async () => {
    const id = await repo.saveUnpacked('index', w.finish());
    written.push(id);
    w = new IndexJsonWriter(supersedes);
    await step('index-stored');
  };
  for (let p = 0; p < index.packCount; p++) {
    const packId = index.packId(p);
    if (!newSet.has(packId) && plan.action[p] !== PackAction.Keep) continue;
    const entries = order.subarray(start[p]!, start[p + 1]!); // by offset
    if (w.blobs > 0 && w.blobs + entries.length > maxBlobs) await flush();
    w.beginPack(packId);
    for (const e of entries) {
      const h = index.entryHandle(e);
      w.blob(index.handleIdBytes(h), 0, index.handleType(h), index.entryOffset(e), index.entryLength(e), index.entryUlen(e));
    }
  }
  // always write at least one file: it carries `supersedes` even when no pack survives
  if (w.blobs > 0 || written.length === 0) await flush();
  return written;
}
