import { CairnError, isCairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { mapLimit } from '../core/semaphore.js';
import { nullReporter, type Reporter } from '../core/reporter.js';
import type { TreeNode } from '../format/tree.js';
import { parseTime } from '../format/time.js';
import { chmodBitsFromGo, unixModeFromGo } from '../format/mode.js';
import { RestoreTarget, writeSparse, type RestoreMeta } from '../fs/restore.js';
import type { FsEntryType } from '../fs/meta.js';
import type { FileHandle } from 'node:fs/promises';
import { Semaphore } from '../core/semaphore.js';
import { BufferPool } from '../native/buffer-pool.js';
import { relString, type PlannedBlob, type PlannedEntry, type RestorePlan } from './plan.js';

export interface BlobLoc {
  packId: Id;
  offset: number;
  length: number;
  uncompressedLength?: number;
}

/** What the restorer needs from a repository. */
export interface RestorerRepo {
  loadTree(id: Id): Promise<TreeNode[]>;
  lookupData(id: Id): BlobLoc[];
  /** Reads a byte range of a pack (into `into` when the backend can: the result is then a view of it). */
  readPack(packId: Id, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * Decrypts, decompresses and verifies one blob. `out` (when given) has room for the plaintext;
   * the implementation may write it there and return a view of it (the restorer reuses `out`
   * once the plaintext is written to disk). Must not keep `sealed` or `out` after settling.
   */
  openBlob(id: Id, loc: BlobLoc, sealed: Uint8Array, out?: Buffer): Buffer | Promise<Buffer>;
}

export interface RestoreOptions {
  target: string;
  /** Return false to skip an entry (path as "/a/b" inside the snapshot) and, for dirs, its contents. */
  filter?: (snapshotPath: string, node: TreeNode) => 'include' | 'exclude' | 'descend';
  sparse?: boolean;
  dryRun?: boolean;
  overwrite?: boolean;
  /** Packs (byte ranges of packs) read at once. */
  packConcurrency?: number;
  /** Blobs being decrypted or written at once (bounds plaintext memory to about this × 8 MiB). */
  blobConcurrency?: number;
  /** File handles kept open at once (files are opened when their data arrives, closed when complete or evicted). */
  maxOpenFiles?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
}

export interface RestoreSummary {
  files: number;
  dirs: number;
  others: number;
  bytes: number;
  errors: number;
  warnings: string[];
}

const FS_TYPE: Record<string, FsEntryType> = { file: 'file', dir: 'dir', symlink: 'symlink', dev: 'blockdev', chardev: 'chardev', fifo: 'fifo', socket: 'socket' };

/** Hard-link identity of a node within one snapshot. */
function linkKey(n: TreeNode): string | undefined {
  if (n.type !== 'file' || !n.links || n.links < 2 || !n.inode) return undefined;
  return `${n.deviceId ?? 0n}:${n.inode}`;
}

/**
 * Plans a restore: walks the tree, decides what to restore, and groups every needed data blob by
 * pack so each pack is read once. Blob order inside a pack follows pack offsets.
 */
export async function planRestore(repo: RestorerRepo, root: Id, opts: Pick<RestoreOptions, 'filter' | 'signal'>): Promise<RestorePlan> {
  const plan: RestorePlan = { entries: [], packs: new Map(), totalFiles: 0, totalBytes: 0 };
  const links = new Map<string, number>();
  const byBlob = new Map<Id, PlannedBlob>();

  const walk = async (treeId: Id, rel: Buffer[], prefix: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    const nodes = await repo.loadTree(treeId);
    for (const node of nodes) {
      const name = node.name;
      const nameStr = name.toString('utf8');
      const snapPath = `${prefix}/${nameStr}`;
      const decision = opts.filter ? opts.filter(snapPath, node) : 'include';
      if (decision === 'exclude') continue;
      const childRel = [...rel, name];
      if (node.type === 'dir') {
        const before = plan.entries.length;
        if (decision === 'include') plan.entries.push({ rel: childRel, node, remaining: 0 });
        if (node.subtree) await walk(node.subtree, childRel, snapPath);
        // A directory only walked through on the way to included entries is restored (with its
        // metadata) when something below it was; entries are created parents-first by mkdirp.
        if (decision === 'descend' && plan.entries.length > before) plan.entries.push({ rel: childRel, node, remaining: 0 });
        continue;
      }
      if (decision !== 'include') continue;
      const entry: PlannedEntry = { rel: childRel, node, remaining: 0 };
      const idx = plan.entries.push(entry) - 1;
      if (node.type !== 'file') continue;
      const lk = linkKey(node);
      if (lk !== undefined) {
        const first = links.get(lk);
        if (first !== undefined) {
          entry.linkTo = first;
          continue;
        }
        links.set(lk, idx);
      }
      plan.totalFiles++;
      let offset = 0;
      for (const id of node.content ?? []) {
        let pb = byBlob.get(id);
        if (!pb) {
          const loc = repo.lookupData(id)[0];
          if (!loc) throw new CairnError('CORRUPT', `data blob ${id} of ${snapPath} is not in the index`, { object: snapPath });
          pb = { id, offset: loc.offset, length: loc.length, plainLength: loc.uncompressedLength || loc.length - 32, targets: [] };
          if (loc.uncompressedLength) pb.uncompressedLength = loc.uncompressedLength;
          byBlob.set(id, pb);
          let list = plan.packs.get(loc.packId);
          if (!list) plan.packs.set(loc.packId, (list = []));
          list.push(pb);
        }
        pb.targets.push({ entry: idx, fileOffset: offset });
        entry.remaining++;
        offset += pb.plainLength;
      }
      plan.totalBytes += offset;
    }
  };
  await walk(root, [], '');
  for (const list of plan.packs.values()) list.sort((a, b) => a.offset - b.offset);
  return plan;
}

/** Largest gap between two needed blobs of a pack that is still read in the same request. */
const MAX_READ_GAP = 1 << 20;
/**
 * Largest read from a pack that covers several blobs (with packConcurrency, bounds the pack bytes
 * held at once; a single larger blob is read alone). 4 MiB: peak RSS 214–217 MiB instead of
 * 240–254 MiB with 8 MiB on the benchmark restore, at no measurable cost in time.
 */
const MAX_READ = 4 << 20;

/**
 * Open handles of files being restored, opened when their first blob arrives (created then, with
 * the overwrite semantics of RestoreTarget.createFile) and reopened with openFile() if they were
 * closed in between. At most `max` idle handles stay open; the least recently used idle ones are
 * closed beyond that (handles in use are never closed), so a restore of many files never runs
 * into the open-files limit.
 */
class OpenFiles {
  private readonly handles = new Map<number, { h: FileHandle; users: number }>();
  private readonly opening = new Map<number, Promise<void>>();
  private readonly created = new Set<number>();

  constructor(
    private readonly open: (i: number, create: boolean) => Promise<FileHandle>,
    private readonly max: number,
  ) {}

  /** A handle for entry i, counted as in use until release(i). */
  async acquire(i: number): Promise<FileHandle> {
    for (;;) {
      const e = this.handles.get(i);
      if (e !== undefined) {
        e.users++;
        // re-insert: Map order is then least recently used first
        this.handles.delete(i);
        this.handles.set(i, e);
        this.evict();
        return e.h;
      }
      let p = this.opening.get(i);
      if (p === undefined) {
        const create = !this.created.has(i);
        p = this.open(i, create).then((h) => {
          this.created.add(i);
          this.handles.set(i, { h, users: 0 });
        });
        this.opening.set(i, p);
        p.then(
          () => this.opening.delete(i),
          () => this.opening.delete(i),
        );
      }
      await p;
    }
  }

  release(i: number): void {
    const e = this.handles.get(i);
    if (e !== undefined) e.users--;
  }

  /**
   * Takes entry i's handle out (when open and no write is using it), runs fn on it and closes it.
   * False when there was no such handle (closed meanwhile: the caller falls back to paths).
   */
  async finish(i: number, fn: (h: FileHandle) => Promise<void>): Promise<boolean> {
    const e = this.handles.get(i);
    if (e === undefined || e.users > 0) return false;
    this.handles.delete(i);
    let ok = false;
    try {
      await fn(e.h);
      ok = true;
    } finally {
      if (ok) await e.h.close();
      else await e.h.close().catch(() => undefined);
    }
    return true;
  }

  /** Closes entry i's handle (when no write is using it). */
  async close(i: number): Promise<void> {
    const e = this.handles.get(i);
    if (e === undefined || e.users > 0) return;
    this.handles.delete(i);
    await e.h.close();
  }

  /** Closes everything (after failures): errors are ignored. */
  async closeAll(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((e) => e.h.close().catch(() => undefined)));
  }

  private evict(): void {
    if (this.handles.size <= this.max) return;
    for (const [i, e] of this.handles) {
      if (this.handles.size <= this.max) break;
      if (e.users > 0) continue;
      this.handles.delete(i);
      void e.h.close().catch(() => undefined);
    }
  }
}

/**
 * Executes a restore plan: creates the tree, reads each pack once (several at a time),
 * decrypts/decompresses/verifies the blobs off the main thread (as the repository's openBlob
 * does it), writes each blob at its offsets in whatever order blobs complete, and applies metadata
 * (files when complete, directories last). A file that is one blob (the common case for small
 * files) is created, written and given its metadata in a single thread-pool job
 * (RestoreTarget.writeWholeFile); larger files get theirs through their open handle right before
 * it is closed (RestoreTarget.finishFile) — each thread-pool round trip is a pair of thread
 * wake-ups, which dominated restores of many small files. Memory is bounded by packConcurrency
 * reads of at most 4 MiB (or one larger blob) and blobConcurrency plaintexts; open files by maxOpenFiles.
 */
export async function executeRestore(repo: RestorerRepo, plan: RestorePlan, opts: RestoreOptions): Promise<RestoreSummary> {
  const reporter = opts.reporter ?? nullReporter;
  const summary: RestoreSummary = { files: 0, dirs: 0, others: 0, bytes: 0, errors: 0, warnings: [] };
  const chown = (process.getuid?.() ?? 0) === 0;
  const failed = new Set<number>();
  const fail = (i: number, e: unknown) => {
    if (failed.has(i)) return;
    failed.add(i);
    summary.errors++;
    reporter.itemError?.(relString(plan.entries[i]!.rel), e instanceof Error ? e : new Error(String(e)));
  };
  if (opts.dryRun) {
    for (const e of plan.entries) {
      if (e.node.type === 'dir') summary.dirs++;
      else if (e.node.type === 'file') summary.files++;
      else summary.others++;
    }
    summary.bytes = plan.totalBytes;
    return summary;
  }

  const target = await RestoreTarget.open(opts.target, { create: true });
  const ow = { overwrite: opts.overwrite ?? true };
  const warn = (w: string[]) => {
    for (const x of w) {
      if (summary.warnings.length < 100) summary.warnings.push(x);
    }
  };

  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  let ownersSkipped = 0;
  /** The metadata to restore on entry i (called once per entry: counts skipped owners). */
  const metaOf = (i: number): RestoreMeta => {
    const n = plan.entries[i]!.node;
    if (!chown && (n.uid !== euid || n.gid !== egid)) ownersSkipped++;
    return {
      type: FS_TYPE[n.type] ?? 'file',
      mode: chmodBitsFromGo(n.mode),
      uid: n.uid,
      gid: n.gid,
      atimeNs: parseTime(n.atime).ns,
      mtimeNs: parseTime(n.mtime).ns,
      xattrs: n.extendedAttributes?.filter((x) => x.value !== null).map((x) => ({ name: x.name, value: x.value! })),
    };
  };
  /** Metadata by path: directories, symlinks, FIFOs, devices (and files whose handle was closed). */
  const applyMeta = async (i: number) => {
    const r = await target.applyMeta(plan.entries[i]!.rel, metaOf(i), { chown });
    warn(r.warnings);
  };
  const wholeOpts = { ...ow, chown, sparse: opts.sparse === true };

  // 1. Directories, empty files, symlinks and special files in tree order. Files with content are
  //    created when their first blob arrives (2.), hard links once their target is complete (3.).
  const links: number[] = [];
  for (let i = 0; i < plan.entries.length; i++) {
    opts.signal?.throwIfAborted();
    const e = plan.entries[i]!;
    const n = e.node;
    try {
      switch (n.type) {
        case 'dir':
          await target.mkdirp(e.rel, { replace: ow.overwrite });
          summary.dirs++;
          break;
        case 'file': {
          await target.mkdirp(e.rel.slice(0, -1));
          if (e.linkTo !== undefined) {
            links.push(i);
            break;
          }
          summary.files++;
          if (e.remaining === 0 && !(opts.sparse && (n.size ?? 0) > 0)) {
            // empty: created with its metadata in one job
            warn((await target.writeWholeFile(e.rel, null, metaOf(i), wholeOpts)).warnings);
          } else if (e.remaining === 0) {
            // no content but a size (sparse): a file that is one hole
            const h = await target.createFile(e.rel, ow);
            try {
              const size = n.size ?? 0;
              if (opts.sparse && size > 0) await h.truncate(size);
            } finally {
              await h.close();
            }
            await applyMeta(i);
          }
          break;
        }
        case 'symlink':
          await target.mkdirp(e.rel.slice(0, -1));
          await target.createSymlink(e.rel, Buffer.from(n.linktarget ?? '', 'utf8'), ow);
          await applyMeta(i);
          summary.others++;
          break;
        case 'fifo':
          await target.mkdirp(e.rel.slice(0, -1));
          await target.createFifo(e.rel, chmodBitsFromGo(n.mode), ow);
          await applyMeta(i);
          summary.others++;
          break;
        case 'dev':
        case 'chardev':
          await target.mkdirp(e.rel.slice(0, -1));
          await target.createDevice(e.rel, unixModeFromGo(n.mode), n.device ?? 0n, ow);
          await applyMeta(i);
          summary.others++;
          break;
        case 'socket':
          break; // restic skips sockets on restore
        default:
          throw new CairnError('CORRUPT', `unknown node type ${JSON.stringify(n.type)}`);
      }
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) throw err;
      fail(i, err);
    }
  }

  // 2. Content: every pack once, several at a time; each blob is opened off the main thread and
  //    written at its offsets as soon as it is ready, in any order.
  const files = new OpenFiles(async (i, create) => {
    const e = plan.entries[i]!;
    if (!create) return target.openFile(e.rel);
    const h = await target.createFile(e.rel, ow);
    const size = e.node.size ?? 0;
    if (opts.sparse && size > 0) {
      try {
        await h.truncate(size);
      } catch (err) {
        await h.close().catch(() => undefined);
        throw err;
      }
    }
    return h;
  }, Math.max(1, opts.maxOpenFiles ?? 128));
  // Files that are exactly one blob are written whole, with their metadata, in one thread-pool job
  // (writeWholeFile) once that blob is open; the others go through OpenFiles and get their
  // metadata through the handle when their last blob has landed (finishFile).
  const whole = new Uint8Array(plan.entries.length);
  for (let i = 0; i < plan.entries.length; i++) {
    const e = plan.entries[i]!;
    if (e.node.type === 'file' && e.linkTo === undefined && e.remaining === 1) whole[i] = 1;
  }
  const plainPool = new BufferPool(16 << 20);
  const packPool = new BufferPool((opts.packConcurrency ?? 4) * MAX_READ + (MAX_READ >> 2));
  const blobSlots = new Semaphore(Math.max(1, opts.blobConcurrency ?? 8));
  let fatal: unknown;

  const writeWhole = async (i: number, plain: Buffer) => {
    const e = plan.entries[i]!;
    try {
      warn((await target.writeWholeFile(e.rel, plain, metaOf(i), wholeOpts)).warnings);
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) fatal ??= err;
      fail(i, err);
      return;
    }
    e.remaining--;
    summary.bytes += plain.length;
  };

  const writeTarget = async (t: { entry: number; fileOffset: number }, plain: Buffer) => {
    if (failed.has(t.entry)) return;
    if (whole[t.entry] === 1) return writeWhole(t.entry, plain);
    let h: FileHandle;
    try {
      h = await files.acquire(t.entry);
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) fatal ??= err;
      fail(t.entry, err);
      return;
    }
    try {
      if (opts.sparse) await writeSparse(h, plain, t.fileOffset);
      else await writeFully(h, plain, t.fileOffset);
    } catch (err) {
      files.release(t.entry);
      if (isCairnError(err, 'NO_SPACE') || (err as NodeJS.ErrnoException).code === 'ENOSPC') fatal ??= err;
      fail(t.entry, err);
      await files.close(t.entry).catch(() => undefined);
      return;
    }
    files.release(t.entry);
    summary.bytes += plain.length;
    const e = plan.entries[t.entry]!;
    if (--e.remaining === 0 && !failed.has(t.entry)) {
      try {
        const done = await files.finish(t.entry, async (fh) => warn((await target.finishFile(fh, e.rel, metaOf(t.entry), { chown })).warnings));
        if (!done) {
          await files.close(t.entry);
          await applyMeta(t.entry);
        }
      } catch (err) {
        fail(t.entry, err);
      }
    }
  };

  const restoreBlob = async (packId: Id, pb: PlannedBlob, sealed: Buffer) => {
    if (pb.targets.every((t) => failed.has(t.entry))) return;
    const out = plainPool.take(pb.plainLength);
    try {
      let plain: Buffer;
      try {
        const loc: BlobLoc = { packId, offset: pb.offset, length: pb.length };
        if (pb.uncompressedLength) loc.uncompressedLength = pb.uncompressedLength;
        plain = await repo.openBlob(pb.id, loc, sealed, out);
      } catch (err) {
        for (const t of pb.targets) fail(t.entry, err);
        return;
      }
      await Promise.all(pb.targets.map((t) => writeTarget(t, plain)));
    } finally {
      plainPool.give(out);
    }
  };

  try {
    await mapLimit(plan.packs.entries(), opts.packConcurrency ?? 4, async ([packId, blobs]) => {
      // Group blobs into read ranges: adjacent blobs (small gaps) come in one request.
      let i = 0;
      while (i < blobs.length) {
        opts.signal?.throwIfAborted();
        if (fatal !== undefined) throw fatal;
        let j = i + 1;
        while (
          j < blobs.length &&
          blobs[j]!.offset - (blobs[j - 1]!.offset + blobs[j - 1]!.length) <= MAX_READ_GAP &&
          blobs[j]!.offset + blobs[j]!.length - blobs[i]!.offset <= MAX_READ
        ) {
          j++;
        }
        const range = blobs.slice(i, j);
        i = j;
        if (range.every((pb) => pb.targets.every((t) => failed.has(t.entry)))) continue;
        const start = range[0]!.offset;
        const end = range[range.length - 1]!.offset + range[range.length - 1]!.length;
        let buf: Buffer;
        // pack bytes land in recycled buffers: a fresh 8 MiB buffer per read would be fresh pages
        // and, counted as external memory, a full garbage collection every few reads
        const into = packPool.take(end - start);
        try {
          buf = await repo.readPack(packId, start, end - start, into);
        } catch (err) {
          packPool.give(into);
          for (const pb of range) for (const t of pb.targets) fail(t.entry, err);
          continue;
        }
        // The blobs of this range are opened concurrently (bounded); buf stays alive until they are done.
        const jobs: Promise<void>[] = [];
        for (const pb of range) {
          await blobSlots.acquire();
          if (fatal !== undefined) {
            blobSlots.release();
            break;
          }
          const sealed = buf.subarray(pb.offset - start, pb.offset - start + pb.length);
          jobs.push(restoreBlob(packId, pb, sealed).finally(() => blobSlots.release()));
        }
        await Promise.all(jobs);
        packPool.give(into); // the blobs are written: nothing refers to the range any more
      }
    });
    if (fatal !== undefined) throw fatal;
  } finally {
    await files.closeAll();
  }
  for (let i = 0; i < plan.entries.length; i++) {
    const e = plan.entries[i]!;
    if (e.node.type === 'file' && e.linkTo === undefined && e.remaining > 0 && !failed.has(i)) {
      fail(i, new CairnError('INTERNAL', 'file content incomplete'));
    }
  }

  // 3. Hard links, now that the files they link to are complete.
  for (const i of links) {
    const e = plan.entries[i]!;
    try {
      if (failed.has(e.linkTo!)) throw new CairnError('IO', 'hard link target could not be restored');
      await target.createHardlink(e.rel, plan.entries[e.linkTo!]!.rel, ow);
      summary.files++;
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) throw err;
      fail(i, err);
    }
  }

  // 4. Directory metadata last, deepest first, so restoring contents does not change it again.
  const dirs = plan.entries.map((e, i) => ({ e, i })).filter((x) => x.e.node.type === 'dir');
  dirs.sort((a, b) => b.e.rel.length - a.e.rel.length);
  for (const { i } of dirs) {
    try {
      await applyMeta(i);
    } catch (err) {
      fail(i, err);
    }
  }
  if (ownersSkipped > 0) {
    summary.warnings.unshift(`ownership of ${ownersSkipped} entries not restored: restoring owners needs root (running as uid ${euid})`);
  }
  return summary;
}

async function writeFully(h: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await h.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}
