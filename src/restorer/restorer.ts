import { CairnError, isCairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { mapLimit } from '../core/semaphore.js';
import { nullReporter, type Reporter } from '../core/reporter.js';
import type { TreeNode } from '../format/tree.js';
import { chmodBitsFromGo, unixModeFromGo } from '../format/mode.js';
import { RestoreTarget, writeSparse, type RestoreMeta } from '../fs/restore.js';
import type { FileHandle } from 'node:fs/promises';
import { ByteBudget, Semaphore } from '../core/semaphore.js';
import { BufferPool } from '../native/buffer-pool.js';
import { DIRECT_MIN_FILE, DirectWriter } from './direct-write.js';
import type { SealedContent } from '../native/index.js';
import { Kind, type BlobLoc, type RestorePlan } from './plan.js';

export { planRestore } from './planner.js';
export type { BlobLoc };

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
  /**
   * Optional, with blobError: the blob as arguments of a kernel that opens it and writes it as a
   * whole file in one job (RestoreTarget.writeWholeFile with { sealed }); its ERR_CAIRN_CORRUPT
   * errors become blobError(id, loc, e).
   */
  sealedContent?(id: Id, loc: BlobLoc, sealed: Uint8Array, out: Buffer): SealedContent;
  blobError?(id: Id, loc: BlobLoc, e: unknown): unknown;
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
  /**
   * Each pack's reader reads its next range while the blobs of the current one are restored
   * (default false): for object stores, where a read is a round trip (restore from Ceph 5–10 %
   * faster); on a local disk reads are quick and it only costs memory (+17–28 MiB peak RSS).
   */
  readAhead?: boolean;
  /** Blobs being decrypted or written at once, at most (default 64). */
  blobConcurrency?: number;
  /** Plaintext bytes of the blobs being decrypted or written at once, at most (default 12 MiB; a larger blob runs alone). */
  blobBytes?: number;
  /** Write the bulk of large files with O_DIRECT where the file system allows (default true; see direct-write.ts). */
  directIo?: boolean;
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

/** Largest gap between two needed blobs of a pack that is still read in the same request. */
const MAX_READ_GAP = 1 << 20;
/**
 * Largest read from a pack that covers several blobs (with packConcurrency, bounds the pack bytes
 * held at once; a single larger blob is read alone). 4 MiB: peak RSS 214–217 MiB instead of
 * 240–254 MiB with 8 MiB on the benchmark restore, at no measurable cost in time.
 */
const MAX_READ = 4 << 20;
/** Blobs up to this plaintext size (small files) take their buffers from a pool of their own. */
const SMALL_PLAIN = 64 * 1024;
/** Entries set up at once before the content is written (directories, empty files, links, devices). */
const SETUP_CONCURRENCY = 32;

/** A file being restored: its descriptor, and for large files a second one with O_DIRECT (direct-write.ts). */
interface RestoreHandle {
  h: FileHandle;
  direct?: FileHandle;
}

async function closeHandle(x: RestoreHandle): Promise<void> {
  const d = x.direct?.close();
  try {
    await x.h.close();
  } finally {
    await d;
  }
}

/**
 * Open handles of files being restored, opened when their first blob arrives (created then, with
 * the overwrite semantics of RestoreTarget.createFile) and reopened with openFile() if they were
 * closed in between. At most `max` idle handles stay open; the least recently used idle ones are
 * closed beyond that (handles in use are never closed), so a restore of many files never runs
 * into the open-files limit.
 */
class OpenFiles {
  private readonly handles = new Map<number, { h: RestoreHandle; users: number }>();
  private readonly opening = new Map<number, Promise<void>>();
  private readonly created = new Set<number>();

  constructor(
    private readonly open: (i: number, create: boolean) => Promise<RestoreHandle>,
    private readonly max: number,
  ) {}

  /** A handle for entry i, counted as in use until release(i). */
  async acquire(i: number): Promise<RestoreHandle> {
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
    this.created.delete(i); // complete: never opened again
    let ok = false;
    try {
      await fn(e.h.h);
      ok = true;
    } finally {
      if (ok) await closeHandle(e.h);
      else await closeHandle(e.h).catch(() => undefined);
    }
    return true;
  }

  /** Closes entry i's handle (when no write is using it). */
  async close(i: number): Promise<void> {
    const e = this.handles.get(i);
    if (e === undefined || e.users > 0) return;
    this.handles.delete(i);
    await closeHandle(e.h);
  }

  /** Closes everything (after failures): errors are ignored. */
  async closeAll(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map((e) => closeHandle(e.h).catch(() => undefined)));
  }

  private evict(): void {
    if (this.handles.size <= this.max) return;
    for (const [i, e] of this.handles) {
      if (this.handles.size <= this.max) break;
      if (e.users > 0) continue;
      this.handles.delete(i);
      void closeHandle(e.h).catch(() => undefined);
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
 * reads of at most 4 MiB (or one larger blob) and blobBytes of plaintext; open files by maxOpenFiles.
 */
export async function executeRestore(repo: RestorerRepo, plan: RestorePlan, opts: RestoreOptions): Promise<RestoreSummary> {
  const reporter = opts.reporter ?? nullReporter;
  const E = plan.entries;
  const B = plan.blobs;
  const summary: RestoreSummary = { files: 0, dirs: 0, others: 0, bytes: 0, errors: 0, warnings: [] };
  const chown = (process.getuid?.() ?? 0) === 0;
  const failed = new Set<number>();
  const fail = (i: number, e: unknown) => {
    if (failed.has(i)) return;
    failed.add(i);
    summary.errors++;
    reporter.itemError?.(E.relString(i), e instanceof Error ? e : new Error(String(e)));
  };
  if (opts.dryRun) {
    for (let i = 0; i < E.count; i++) {
      const kind = E.kind(i);
      if (kind === Kind.dir) summary.dirs++;
      else if (kind === Kind.file) summary.files++;
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
    if (!chown) {
      const o = E.owner(i);
      if (o.uid !== euid || o.gid !== egid) ownersSkipped++;
    }
    return E.meta(i);
  };
  /** Metadata by path: directories, symlinks, FIFOs, devices (and files whose handle was closed). */
  const applyMeta = async (i: number) => {
    const r = await target.applyMeta(E.rel(i), metaOf(i), { chown });
    warn(r.warnings);
  };
  const wholeOpts = { ...ow, chown, sparse: opts.sparse === true };

  // 1. Directories, empty files, symlinks and special files in tree order. Files with content are
  //    created when their first blob arrives (2.), hard links once their target is complete (3.).
  //    Up to SETUP_CONCURRENCY entries are set up at once, each after the directory it is in (when
  //    that is an entry too): one after the other, a restore of 1,220 directories spent ~0.5 s
  //    waiting for one lstat + mkdir round trip after another.
  const links: number[] = [];
  const setupSlots = new Semaphore(SETUP_CONCURRENCY);
  /** Per dir node: 0 not an entry, 1 being set up (its task in dirTasks), 2 set up (or failed). */
  const dirState = new Uint8Array(E.dirCount);
  const dirTasks = new Map<number, Promise<void>>();
  /** The error that ends the whole restore (UNSAFE_PATH, NO_SPACE), from the set-up or the content. */
  let fatal: unknown;
  let setupStopped = false;
  const setUp = async (i: number, kind: Kind) => {
    try {
      switch (kind) {
        case Kind.dir:
          await target.mkdirp(E.rel(i), { replace: ow.overwrite });
          summary.dirs++;
          break;
        case Kind.file: {
          const rel = E.rel(i);
          await target.mkdirp(rel.slice(0, -1));
          if (E.linkTo(i) >= 0) break; // linked once its target is complete (3.)
          const size = E.size(i);
          if (E.refCountOf(i) === 0 && !(opts.sparse && size > 0)) {
            // empty: created with its metadata in one job
            warn((await target.writeWholeFile(rel, null, metaOf(i), wholeOpts)).warnings);
          } else if (E.refCountOf(i) === 0) {
            // no content but a size (sparse): a file that is one hole
            const h = await target.createFile(rel, ow);
            try {
              if (opts.sparse && size > 0) await h.truncate(size);
            } finally {
              await h.close();
            }
            await applyMeta(i);
          }
          break;
        }
        case Kind.symlink: {
          const rel = E.rel(i);
          await target.mkdirp(rel.slice(0, -1));
          await target.createSymlink(rel, E.linkTarget(i), ow);
          await applyMeta(i);
          summary.others++;
          break;
        }
        case Kind.fifo: {
          const rel = E.rel(i);
          await target.mkdirp(rel.slice(0, -1));
          await target.createFifo(rel, chmodBitsFromGo(E.mode(i)), ow);
          await applyMeta(i);
          summary.others++;
          break;
        }
        case Kind.dev:
        case Kind.chardev: {
          const rel = E.rel(i);
          await target.mkdirp(rel.slice(0, -1));
          await target.createDevice(rel, unixModeFromGo(E.mode(i)), E.device(i), ow);
          await applyMeta(i);
          summary.others++;
          break;
        }
        case Kind.socket:
          break; // restic skips sockets on restore
        default:
          throw new CairnError('CORRUPT', `unknown node type ${JSON.stringify(E.typeName(i))}`);
      }
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) {
        fatal ??= err; // the content phase, running beside, stops too
      } else {
        fail(i, err);
      }
    }
  };
  // The content (2.) starts right away, beside the set-up: a file's blobs wait only for the
  // set-up of its own directory (gateOf), not for all of them (on the benchmark restore the
  // set-up of 1,220 directories took ~80 ms with the kernel threads idle).
  const gates = new Gates(E.dirCount + E.count);
  /** Entry index of each dir node's directory entry (E.count when it has none). */
  const dirEntry = new Uint32Array(E.dirCount).fill(E.count);
  for (let i = 0; i < E.count; i++) {
    const own = E.ownDirNode(i);
    if (own >= 0) dirEntry[own] = Math.min(dirEntry[own]!, i);
  }
  /**
   * The gate a file's content waits for: its directory's, when that directory is an entry set up
   * before the file (as the set-up loop decides it below), else the file's own set-up (which
   * makes its directory).
   */
  const gateOf = (i: number): number => {
    const parent = E.parentDirNode(i);
    if (parent < 0) return -1; // in the target itself: nothing to wait for
    return dirEntry[parent]! < i ? parent : E.dirCount + i;
  };
  /** Undefined when entry i's directory is ready, else a promise of that. */
  const ready = (i: number): Promise<void> | undefined => {
    const k = gateOf(i);
    return k < 0 ? undefined : gates.wait(k);
  };
  const setUpAll = async () => {
    try {
      for (let i = 0; i < E.count && fatal === undefined && !setupStopped && !opts.signal?.aborted; i++) {
        const kind = E.kind(i);
        if (kind === Kind.file && E.linkTo(i) >= 0) links.push(i);
        else if (kind === Kind.file) summary.files++;
        const parent = E.parentDirNode(i);
        // Files with content need nothing now, unless their directory is not an entry (restoring a
        // subpath or with --include): then it is made here, as the content phase expects it.
        if (kind === Kind.file && E.refCountOf(i) > 0 && E.linkTo(i) < 0 && (parent < 0 || dirState[parent] !== 0)) continue;
        await setupSlots.acquire();
        const before = parent >= 0 && dirState[parent] === 1 ? dirTasks.get(parent) : undefined;
        const task = (before ?? Promise.resolve()).then(() => setUp(i, kind)).finally(() => setupSlots.release());
        const own = E.ownDirNode(i);
        if (own >= 0) {
          dirState[own] = 1;
          dirTasks.set(own, task);
          void task.finally(() => {
            dirState[own] = 2;
            dirTasks.delete(own);
            gates.open(own);
          });
        } else if (kind === Kind.file && E.refCountOf(i) > 0) {
          void task.finally(() => gates.open(E.dirCount + i));
        }
      }
      // everything started settles before the hard links (3.)
      for (let k = 0; k < SETUP_CONCURRENCY; k++) await setupSlots.acquire();
    } finally {
      gates.openAll(); // stopped early (error, abort): whatever waits goes on and sees why
    }
  };

  // 2. Content: every pack once, several at a time; each blob is opened off the main thread and
  //    written at its offsets as soon as it is ready, in any order.
  const direct = new DirectWriter(opts.directIo !== false && !opts.sparse, opts.target);
  /** Entry i is written in pieces and large enough for direct writes (its handle gets a direct descriptor). */
  const writesDirect = (i: number) => direct.enabled && E.size(i) >= DIRECT_MIN_FILE;
  const files = new OpenFiles(async (i, create) => {
    const rel = E.rel(i);
    const h = create ? await target.createFile(rel, ow) : await target.openFile(rel);
    const size = E.size(i);
    try {
      if (create && opts.sparse && size > 0) await h.truncate(size);
      return { h, direct: writesDirect(i) ? await direct.reopen(h) : undefined };
    } catch (err) {
      await h.close().catch(() => undefined);
      throw err;
    }
  }, Math.max(1, opts.maxOpenFiles ?? 128));
  /** Content blobs still to be written, per file. */
  const remaining = new Uint32Array(E.count);
  for (let i = 0; i < E.count; i++) if (E.kind(i) === Kind.file && E.linkTo(i) < 0) remaining[i] = E.refCountOf(i);
  // Files that are exactly one blob are written whole, with their metadata, in one thread-pool job
  // (writeWholeFile) once that blob is open; the others go through OpenFiles and get their
  // metadata through the handle when their last blob has landed (finishFile).
  const isWhole = (i: number) => E.refCountOf(i) === 1 && E.linkTo(i) < 0 && E.kind(i) === Kind.file;
  // aligned when large files may be written directly (their blobs are opened at the right phase)
  const plainPool = new BufferPool(16 << 20, undefined, direct.allocator());
  // Small files' blobs get buffers of their own: returned to plainPool, their steady stream pushed
  // out the idle large buffers (least recently used class first). Fresh buffers on the benchmark
  // restore: 326 of 64 KiB and ~130 large ones with one pool, 65 and ~85 with two (each fresh one
  // costs page faults, and V8 schedules a full garbage collection per ~64 MiB of new ArrayBuffers).
  const smallPlainPool = new BufferPool(4 << 20, SMALL_PLAIN, direct.allocator());
  const poolFor = (size: number) => (size <= SMALL_PLAIN ? smallPlainPool : plainPool);
  // per pack reader the range being restored (and with readAhead the next one)
  const packPool = new BufferPool((opts.readAhead ? 2 : 1) * (opts.packConcurrency ?? 4) * MAX_READ + (MAX_READ >> 2));
  // Blobs in flight: bounded in count and in plaintext bytes. Many small blobs in flight let their
  // opens and whole-file writes share thread-pool jobs (core/coalesce.ts): with 8 at a time a
  // restore of 20k small files made ~11k write jobs of 1.8 files each, every one a pool wake-up.
  // 12 MiB of plaintext: peak RSS 157-161 MiB on the benchmark restore against 161-174 with 32,
  // at the same speed (two cores have enough with a few large blobs in flight).
  const blobSlots = new Semaphore(Math.max(1, opts.blobConcurrency ?? 64));
  const blobBytes = new ByteBudget(Math.max(1, opts.blobBytes ?? 12 << 20));

  const writeWhole = async (i: number, plain: Buffer) => {
    try {
      warn((await target.writeWholeFile(E.rel(i), plain, metaOf(i), wholeOpts)).warnings);
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) fatal ??= err;
      fail(i, err);
      return;
    }
    remaining[i]!--;
    summary.bytes += plain.length;
  };

  /** Writes blob plaintext `plain` where ref r says (`alignedBase`: the buffer plain is a view of). */
  const writeTarget = async (r: number, plain: Buffer, alignedBase: Buffer) => {
    const i = B.refEntryOf(r);
    const waited = ready(i);
    if (waited !== undefined) await waited;
    if (failed.has(i)) return;
    if (isWhole(i)) return writeWhole(i, plain);
    let x: RestoreHandle;
    try {
      x = await files.acquire(i);
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) fatal ??= err;
      fail(i, err);
      return;
    }
    try {
      if (opts.sparse) await writeSparse(x.h, plain, B.refOffsetOf(r));
      else await direct.write(x.h, x.direct, plain, B.refOffsetOf(r), alignedBase);
    } catch (err) {
      files.release(i);
      if (isCairnError(err, 'NO_SPACE') || (err as NodeJS.ErrnoException).code === 'ENOSPC') fatal ??= err;
      fail(i, err);
      await files.close(i).catch(() => undefined);
      return;
    }
    files.release(i);
    summary.bytes += plain.length;
    if (--remaining[i]! === 0 && !failed.has(i)) {
      try {
        const done = await files.finish(i, async (fh) => warn((await target.finishFile(fh, E.rel(i), metaOf(i), { chown })).warnings));
        if (!done) {
          await files.close(i);
          await applyMeta(i);
        }
      } catch (err) {
        fail(i, err);
      }
    }
  };

  /** Every file blob b goes into has failed already (nothing left to do with it). */
  const useless = (b: number): boolean => {
    for (let r = B.firstRef(b); r >= 0; r = B.nextRef(r)) if (!failed.has(B.refEntryOf(r))) return false;
    return true;
  };
  const failAll = (b: number, err: unknown) => {
    for (let r = B.firstRef(b); r >= 0; r = B.nextRef(r)) fail(B.refEntryOf(r), err);
  };

  /**
   * A blob that is one file's whole content (and nothing else's): opened and written in one job.
   * Each job is a pool thread's wake-up; for a restore of many small files the open, its result
   * on this thread and the write made up most of the work here.
   */
  const writeWholeSealed = async (i: number, b: number, content: SealedContent) => {
    const waited = ready(i);
    if (waited !== undefined) await waited;
    if (failed.has(i)) return;
    try {
      warn((await target.writeWholeFile(E.rel(i), { sealed: content }, metaOf(i), wholeOpts)).warnings);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_CAIRN_CORRUPT') err = repo.blobError!(B.id(b), B.loc(b), err);
      else if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) fatal ??= err;
      fail(i, err);
      return;
    }
    remaining[i]!--;
    summary.bytes += B.plainLength(b);
  };

  const restoreBlob = async (b: number, sealed: Buffer) => {
    if (useless(b)) return;
    const only = B.firstRef(b);
    const len = B.plainLength(b);
    // A blob of a large file is opened at its file offset's phase, so that its middle can be
    // written directly (DirectWriter.write); further targets, if any, are written buffered.
    const first = B.refEntryOf(only);
    const phase = !isWhole(first) && writesDirect(first) ? DirectWriter.phase(B.refOffsetOf(only)) : 0;
    const pool = poolFor(len + phase);
    const out = pool.take(len + phase);
    try {
      if (repo.sealedContent && repo.blobError && B.nextRef(only) < 0 && isWhole(B.refEntryOf(only))) {
        await writeWholeSealed(B.refEntryOf(only), b, repo.sealedContent(B.id(b), B.loc(b), sealed, out));
        return;
      }
      let plain: Buffer;
      try {
        plain = await repo.openBlob(B.id(b), B.loc(b), sealed, phase > 0 ? out.subarray(phase) : out);
      } catch (err) {
        failAll(b, err);
        return;
      }
      const writes: Promise<void>[] = [];
      for (let r = only; r >= 0; r = B.nextRef(r)) writes.push(writeTarget(r, plain, out));
      await Promise.all(writes);
    } finally {
      pool.give(out);
    }
  };

  // Packs alternately from the front and the back of the plan, which lists them in tree order: a
  // snapshot's large files and its many small ones usually lie apart, and the first keep the
  // kernel threads busy (decrypting large blobs) while the others keep the I/O threads busy
  // (creating files). In plan order the two phases came one after the other.
  const packNumbers = function* () {
    for (let lo = 0, hi = B.packCount - 1; lo <= hi; ) {
      yield lo++;
      if (lo <= hi) yield hi--;
    }
  };
  const setupDone = setUpAll();
  let contentDone = false;
  try {
    await mapLimit(packNumbers(), opts.packConcurrency ?? 4, async (p) => {
      const packId = B.packId(p);
      const blobs = B.blobsOf(p);
      const end = (b: number) => B.offsetOf(b) + B.lengthOf(b);
      // Group blobs into read ranges: adjacent blobs (small gaps) come in one request.
      const ranges: Array<{ blobs: Uint32Array; start: number; length: number }> = [];
      for (let i = 0; i < blobs.length; ) {
        const start = B.offsetOf(blobs[i]!);
        let j = i + 1;
        while (j < blobs.length && B.offsetOf(blobs[j]!) - end(blobs[j - 1]!) <= MAX_READ_GAP && end(blobs[j]!) - start <= MAX_READ) j++;
        const range = blobs.subarray(i, j);
        i = j;
        if (!range.every(useless)) ranges.push({ blobs: range, start, length: end(range[range.length - 1]!) - start });
      }
      // Pack bytes land in recycled buffers: a fresh 8 MiB buffer per read would be fresh pages
      // and, counted as external memory, a full garbage collection every few reads.
      const read = (r: (typeof ranges)[number]) => {
        const into = packPool.take(r.length);
        const p = repo.readPack(packId, r.start, r.length, into).then(
          (buf) => ({ buf, into }),
          (err: unknown) => {
            packPool.give(into);
            throw err;
          },
        );
        p.catch(() => undefined); // handled where it is awaited
        return p;
      };
      // With readAhead the next range is read while the blobs of this one are restored.
      let ahead: ReturnType<typeof read> | undefined;
      try {
        for (let k = 0; k < ranges.length; k++) {
          opts.signal?.throwIfAborted();
          if (fatal !== undefined) throw fatal;
          const { blobs: range, start } = ranges[k]!;
          const current = ahead ?? read(ranges[k]!);
          ahead = opts.readAhead && k + 1 < ranges.length ? read(ranges[k + 1]!) : undefined;
          let got: { buf: Buffer; into: Buffer };
          try {
            got = await current;
          } catch (err) {
            for (const b of range) failAll(b, err);
            continue;
          }
          // The blobs of this range are opened concurrently (bounded); buf stays alive until they are done.
          const jobs = new JobGroup();
          for (const b of range) {
            const weight = B.plainLength(b);
            await blobSlots.acquire();
            await blobBytes.acquire(weight);
            if (fatal !== undefined) {
              blobBytes.release(weight);
              blobSlots.release();
              break;
            }
            const sealed = got.buf.subarray(B.offsetOf(b) - start, B.offsetOf(b) - start + B.lengthOf(b));
            jobs.add(
              restoreBlob(b, sealed).finally(() => {
                blobBytes.release(weight);
                blobSlots.release();
              }),
            );
          }
          await jobs.settled().finally(() => packPool.give(got.into)); // the blobs are written: nothing refers to the range any more
        }
      } finally {
        // stopped early (abort, fatal error): the read ahead still lands in a pooled buffer
        if (ahead !== undefined) await ahead.then((g) => packPool.give(g.into), () => undefined);
      }
    });
    if (fatal !== undefined) throw fatal;
    contentDone = true;
  } finally {
    if (!contentDone) setupStopped = true; // the content failed: the set-up loop ends too
    await setupDone;
    await files.closeAll();
  }
  opts.signal?.throwIfAborted();
  if (fatal !== undefined) throw fatal; // from the set-up, after the content was done
  for (let i = 0; i < E.count; i++) {
    if (remaining[i]! > 0 && !failed.has(i)) fail(i, new CairnError('INTERNAL', 'file content incomplete'));
  }

  // 3. Hard links, now that the files they link to are complete.
  for (const i of links) {
    try {
      const to = E.linkTo(i);
      if (failed.has(to)) throw new CairnError('IO', 'hard link target could not be restored');
      await target.createHardlink(E.rel(i), E.rel(to), ow);
      summary.files++;
    } catch (err) {
      if (isCairnError(err, 'UNSAFE_PATH') || isCairnError(err, 'NO_SPACE')) throw err;
      fail(i, err);
    }
  }

  // 4. Directory metadata last, deepest first, so restoring contents does not change it again and
  //    a directory made unreadable (no x bit) is only made so once everything below is done. The
  //    directories of one depth do not affect each other: they get theirs at the same time (up
  //    to SETUP_CONCURRENCY; one after the other, 1,220 directories waited ~0.4 s for ~5 round
  //    trips each).
  const dirs = dirsDeepestFirst(plan);
  for (let from = 0; from < dirs.length; ) {
    let to = from + 1;
    while (to < dirs.length && E.depth(dirs[to]!) === E.depth(dirs[from]!)) to++;
    await mapLimit(dirs.subarray(from, to), SETUP_CONCURRENCY, async (i) => {
      try {
        await applyMeta(i);
      } catch (err) {
        fail(i, err);
      }
    });
    from = to;
  }
  if (ownersSkipped > 0) {
    summary.warnings.unshift(`ownership of ${ownersSkipped} entries not restored: restoring owners needs root (running as uid ${euid})`);
  }
  return summary;
}

/** The directory entries of a plan, deepest first, in plan order at equal depth. */
export function dirsDeepestFirst(plan: RestorePlan): Uint32Array {
  const E = plan.entries;
  let n = 0;
  for (let i = 0; i < E.count; i++) if (E.kind(i) === Kind.dir) n++;
  const dirs = new Uint32Array(n);
  const depth = new Uint32Array(n);
  n = 0;
  for (let i = 0; i < E.count; i++) {
    if (E.kind(i) !== Kind.dir) continue;
    depth[n] = E.depth(i);
    dirs[n++] = i;
  }
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[k] = k;
  order.sort((a, b) => depth[b]! - depth[a]! || a - b);
  return order.map((k) => dirs[k]!);
}

/** Numbered gates, closed at first; wait(k) settles once open(k) or openAll() is called. */
class Gates {
  private readonly opened: Uint8Array;
  private all = false;
  private readonly waiting = new Map<number, { promise: Promise<void>; resolve: () => void }>();

  constructor(n: number) {
    this.opened = new Uint8Array(n);
  }

  /** Undefined when gate k is open already (nothing to await), else a promise of its opening. */
  wait(k: number): Promise<void> | undefined {
    if (this.all || this.opened[k] === 1) return undefined;
    let w = this.waiting.get(k);
    if (w === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      w = { promise, resolve };
      this.waiting.set(k, w);
    }
    return w.promise;
  }

  open(k: number): void {
    this.opened[k] = 1;
    const w = this.waiting.get(k);
    if (w === undefined) return;
    this.waiting.delete(k);
    w.resolve();
  }

  openAll(): void {
    this.all = true;
    for (const w of this.waiting.values()) w.resolve();
    this.waiting.clear();
  }
}

/**
 * Waits for a group of jobs without holding on to them: a range of a pack is thousands of small
 * blobs, and an array of their promises would live (and be promoted to the old generation of
 * the heap, as garbage to collect later) until the last of them is done.
 */
class JobGroup {
  private pending = 0;
  private failure: { error: unknown } | undefined;
  private wake: (() => void) | undefined;

  add(job: Promise<unknown>): void {
    this.pending++;
    job.then(
      () => this.done(),
      (error: unknown) => {
        this.failure ??= { error };
        this.done();
      },
    );
  }

  /** Resolves when every job added has settled; rejects with the first failure. */
  async settled(): Promise<void> {
    if (this.pending > 0) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure !== undefined) throw this.failure.error;
  }

  private done(): void {
    if (--this.pending === 0) this.wake?.();
  }
}

