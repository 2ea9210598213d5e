import { hostname } from 'node:os';
import { CairnError } from '../core/errors.js';
import { hashId, type Id } from '../core/ids.js';
import { nullReporter, type Reporter } from '../core/reporter.js';
import { createChunker, RESTIC_RABIN, type Chunker } from '../chunker/chunker.js';
import { decodeTree, EMPTY_TREE_ID } from '../format/tree.js';
import { formatTime, localOffsetMinutes } from '../format/time.js';
import type { Snapshot } from '../format/snapshot.js';
import { compileExcludes } from '../fs/exclude.js';
import { Archiver, layoutTarget, type ArchiveSummary, type ArchiverRepo } from '../archiver/archiver.js';
import type { Repository } from '../repository/repository.js';
import { BlobWriter, type Compression } from '../repository/blob-writer.js';
import { RepoLock } from '../repository/lock.js';
import { findParent, findSnapshot, listSnapshots, saveSnapshot, type SnapshotEntry } from '../repository/snapshots.js';
import { safeUserName } from '../repository/repository.js';

export interface BackupOptions {
  paths: string[];
  tags?: string[];
  host?: string;
  /** Explicit parent snapshot (ID, prefix or "latest"); otherwise chosen like restic. */
  parent?: string;
  /** Read every file, ignoring the parent's metadata. */
  force?: boolean;
  excludes?: string[];
  oneFileSystem?: boolean;
  ignoreInode?: boolean;
  ignoreCtime?: boolean;
  withAtime?: boolean;
  dryRun?: boolean;
  /** Snapshot time in ns since the epoch (default: now). */
  timeNs?: bigint;
  /** Working directory for relative paths (default: process.cwd()). */
  cwd?: string;
  compression?: Compression;
  packSize?: number;
  workers?: number;
  fileConcurrency?: number;
  retryLockMs?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
  /** Skip the lock (dry runs and callers that hold one). */
  noLock?: boolean;
}

export interface BackupResult {
  snapshotId?: Id;
  parent?: Id;
  tree: Id;
  summary: ArchiveSummary;
  dataAddedPacked: number;
  durationMs: number;
  dryRun: boolean;
}

export function chunkerFor(repo: Repository): Chunker {
  const c = repo.config.chunker;
  if (c && c.algorithm === 'fastcdc') return createChunker({ algorithm: 'fastcdc', minSize: c.min, avgSize: c.avg, maxSize: c.max });
  return createChunker({ algorithm: 'rabin', ...RESTIC_RABIN, polynomial: repo.config.chunkerPolynomial });
}

/** Backs up paths into the repository: lock, index, archive with a parent, flush packs + index, then the snapshot. */
export async function backup(repo: Repository, opts: BackupOptions): Promise<BackupResult> {
  const started = repo.clock.now();
  if (opts.paths.length === 0) throw new CairnError('INVALID_ARGUMENT', 'no paths given to back up');
  const cwd = opts.cwd ?? process.cwd();
  const targets = opts.paths.map((p) => layoutTarget(p, cwd));
  const absPaths = [...new Set(targets.map((t) => t.abs))];
  const host = opts.host ?? hostname();
  const timeNs = opts.timeNs ?? repo.clock.nowNs();
  const lock = opts.dryRun || opts.noLock ? undefined : await RepoLock.acquire(repo, { exclusive: false, retryLockMs: opts.retryLockMs, signal: opts.signal });
  // index and snapshot list at once (a shared lock has no re-check wait to overlap them with)
  let snapshots: SnapshotEntry[] | undefined;
  try {
    [, snapshots] = await Promise.all([repo.loadIndex(opts.signal), opts.force || opts.parent ? undefined : listSnapshots(repo, () => undefined)]);
  } catch (e) {
    await lock?.release();
    throw e;
  }
  // a remote backend takes as many pack uploads at once as it has connections (restic: 5 for S3/REST)
  const writer = new BlobWriter(repo, { compression: opts.compression, packSize: opts.packSize, workers: opts.workers, uploadConcurrency: repo.backend.connections });
  try {
    let parentId: Id | undefined;
    let parentTree: Id | undefined;
    if (!opts.force) {
      if (opts.parent) {
        const p = await findSnapshot(repo, opts.parent);
        parentId = p.id;
        parentTree = p.snapshot.tree;
      } else {
        const p = findParent(snapshots ?? [], host, absPaths, timeNs);
        parentId = p?.id;
        parentTree = p?.snapshot.tree;
      }
    }
    const dry = opts.dryRun === true;
    const role: ArchiverRepo = {
      loadTree: async (id) => decodeTree(await repo.loadBlob('tree', id)),
      hasBlob: (type, id) => writer.isKnown(type, id),
      saveBlob: async (type, data, id, transfer, sealed) => {
        if (dry) {
          const blobId = id ?? hashId(data);
          const known = writer.isKnown(type, blobId);
          return { id: blobId, known, added: known ? 0 : data.length + 32 };
        }
        return writer.save(type, data, id, { transfer, sealed });
      },
      // Lets the archiver seal small files in the job that reads them (not in dry runs).
      sealParams: () => (dry ? undefined : writer.sealParams('data')),
    };
    const excludes = opts.excludes ?? [];
    const archiver = new Archiver(role, {
      chunker: chunkerFor(repo),
      exclude: excludes.length ? compileExcludes(excludes) : undefined,
      oneFileSystem: opts.oneFileSystem,
      ignoreInode: opts.ignoreInode,
      ignoreCtime: opts.ignoreCtime,
      withAtime: opts.withAtime,
      parentTree,
      fileConcurrency: opts.fileConcurrency,
      reporter: opts.reporter ?? nullReporter,
      clock: repo.clock,
      signal: opts.signal,
    });
    const tree = await archiver.archive(targets);
    if (dry) {
      return { tree, summary: archiver.summary, dataAddedPacked: archiver.summary.dataAdded, durationMs: repo.clock.now() - started, dryRun: true, parent: parentId };
    }
    // restic refuses to write a snapshot without any entry; Velero relies on the message.
    if (tree === EMPTY_TREE_ID) throw new CairnError('EMPTY_SNAPSHOT', 'snapshot is empty', { object: absPaths.join(', ') });
    await writer.flush();
    const snap: Snapshot = {
      time: formatTime(timeNs, localOffsetMinutes(timeNs)),
      tree,
      paths: absPaths,
      hostname: host,
      username: safeUserName(),
    };
    if (parentId) snap.parent = parentId;
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    if (uid) snap.uid = uid;
    if (gid) snap.gid = gid;
    if (excludes.length) snap.excludes = excludes;
    if (opts.tags?.length) snap.tags = opts.tags;
    const snapshotId = await saveSnapshot(repo, snap);
    return { snapshotId, parent: parentId, tree, summary: archiver.summary, dataAddedPacked: writer.stats.addedBytes, durationMs: repo.clock.now() - started, dryRun: false };
  } finally {
    await writer.close();
    await lock?.release();
  }
}
