import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { CairnError, fsError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { Semaphore } from '../core/semaphore.js';
import { nullReporter, type Reporter, type BackupProgress } from '../core/reporter.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Chunker } from '../chunker/chunker.js';
import { encodeTree, type TreeNode } from '../format/tree.js';
import { readMeta, type FsEntryMeta } from '../fs/meta.js';
import { readDirSorted } from '../fs/walk.js';
import { lstat } from 'node:fs/promises';
import { FileReplacedError, openForRead } from '../fs/read.js';
import { displayPath } from '../fs/path.js';
import { BufferPool } from '../native/buffer-pool.js';
import type { SealKey } from '../native/api.js';
import { native } from '../native/index.js';
import { readChunks } from './chunk-reader.js';
import { nodeFromMeta, sameNode, unchanged } from './node.js';

/**
 * Files up to this size are read whole by one thread-pool job (native.readFile) instead of
 * open/fstat/read/read/close round trips: on the 20,000-file benchmark tree those round trips
 * (each a pair of context switches between the JavaScript thread and the pool) dominated.
 */
const SMALL_FILE_MAX = 1024 * 1024;
/** Files larger than SMALL_FILE_MAX read at once (see readLargeFile). */
const LARGE_FILES = 2;
/**
 * Larger files the walk may leave waiting for a LARGE_FILES slot while it goes on. When large
 * files took the walk's file slots, the walk stopped until they were read: a backup re-reading
 * its large changed files looked at 20,000 unchanged small files only afterwards.
 */
const LARGE_QUEUED = 64;
/**
 * Files up to this size are "tiny": many are read at once (TINY_FILES, outside the fileConcurrency
 * limit), so that their reads and seals share thread-pool jobs (native readFile coalesces the
 * calls of one event-loop turn); their buffers come from a pool of their own. Memory: at most
 * TINY_FILES × 2 × TINY_FILE_MAX (read + sealed copy), 8 MiB.
 */
const TINY_FILE_MAX = 64 * 1024;
const TINY_FILES = 64;

/** The errors openForRead reports, from a readFile() failure (read errors stay raw, as from readBlocks). */
function openError(e: unknown, shown: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ERR_CAIRN_NOT_REGULAR') return new FileReplacedError(shown, 'is no longer a regular file');
  if (err?.code === 'ERR_CAIRN_REPLACED') return new FileReplacedError(shown, 'was replaced by another file while the backup was running');
  if (err?.syscall === 'open' && err.code === 'ELOOP') return new FileReplacedError(shown, 'is now a symlink', e);
  if (err?.syscall === 'open' || err?.syscall === 'fstat') return fsError(e, shown, err.syscall);
  return e;
}

/**
 * Chunks at least this large are hashed on libuv's thread pool (the SHA-256 kernel); smaller
 * ones on the main thread, where hashing a few KiB costs less than a round trip to the pool.
 */
const ASYNC_HASH_MIN = 64 * 1024;

/** What the archiver needs from a repository (a narrow role, not the whole repository). */
export interface ArchiverRepo {
  loadTree(id: Id): Promise<TreeNode[]>;
  hasBlob(type: 'data' | 'tree', id: Id): boolean;
  /**
   * With transfer, the archiver hands over `data` (it may be detached). `sealed` is `data`
   * already sealed with sealParams() (then `id` is given too); the repository may use it.
   */
  saveBlob(
    type: 'data' | 'tree',
    data: Uint8Array,
    id?: Id,
    transfer?: boolean,
    sealed?: { sealed: Uint8Array; uncompressedLength: number },
  ): Promise<{ id: Id; known: boolean; added: number }>;
  /**
   * Optional: how data blobs are sealed, so that small files can be read, hashed and sealed in one
   * thread-pool job. Undefined (or absent) when the repository seals some other way.
   */
  sealParams?(): { key: SealKey; compress: boolean; level: number } | undefined;
}

export interface ArchiveOptions {
  chunker: Chunker;
  /** Returns true for absolute paths to leave out. */
  exclude?: (absPath: string) => boolean;
  oneFileSystem?: boolean;
  ignoreInode?: boolean;
  ignoreCtime?: boolean;
  withAtime?: boolean;
  xattrs?: boolean;
  /** Root tree of the parent snapshot (for change detection); undefined = read everything. */
  parentTree?: Id;
  /** Files read at once (each can still spread its chunks over all workers). */
  fileConcurrency?: number;
  /** Chunks waiting for compression/encryption at once; bounds memory to about this × 8 MiB. */
  chunkConcurrency?: number;
  readBlockSize?: number;
  reporter?: Reporter;
  clock?: Clock;
  signal?: AbortSignal;
}

export interface ArchiveSummary {
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dirsNew: number;
  dirsChanged: number;
  dirsUnmodified: number;
  dataBlobs: number;
  treeBlobs: number;
  dataAdded: number;
  totalFilesProcessed: number;
  totalBytesProcessed: number;
  errors: number;
}

/** One backup target: its absolute path and the chain of node names under the snapshot root. */
export interface ArchiveTarget {
  abs: string;
  /** Name components of the target below the snapshot root ([] = its contents go into the root). */
  components: string[];
}

/**
 * restic's layout of targets in the snapshot root (§7.7): an absolute target keeps its whole
 * directory chain, a relative one only the components it was given with, and "." (or any target
 * without a name) contributes its contents directly.
 */
export function layoutTarget(given: string, cwd: string): ArchiveTarget {
  const isAbs = given.startsWith('/');
  const cleanRel = path.posix.normalize(given);
  const abs = path.posix.resolve(cwd, given);
  const source = isAbs ? abs : cleanRel;
  const components = source.split('/').filter((c) => c.length > 0 && c !== '.' && c !== '..');
  return { abs, components };
}

/** A virtual directory of the snapshot root: intermediate dirs of the targets and the targets. */
interface VDir {
  /** Path whose metadata this directory carries (undefined for the synthetic root). */
  abs?: string;
  children: Map<string, VDir>;
  /** When set, the entire file-system subtree at this path is archived here. */
  target?: string;
  /** Extra whole-subtree targets merged into this directory's contents ('.' style targets). */
  contentsOf: string[];
}

/** An entry's lookups, started ahead of its turn (see Archiver.prefetch). */
interface Prefetched {
  ps: string;
  excluded: boolean;
  meta?: Promise<FsEntryMeta>;
  prevTree?: Promise<Prev | undefined>;
  /** A directory's entries, read as soon as its metadata shows it is one (see prefetchTree). */
  listing?: Promise<DirListing | undefined>;
}

/** A directory's sorted entries. */
interface DirListing {
  names: Buffer[];
  paths: Buffer[];
  /** Metadata lookups of the first entries, started with the listing (CHILDREN_AHEAD); startEntries empties it. */
  ahead: Array<Prefetched | undefined>;
}

/**
 * Entries of a directory whose lookups run ahead of the walk: their metadata (batched into one
 * thread-pool job per event-loop turn, see fs/meta.ts) and, for directories, their listing.
 */
const META_AHEAD = 128;

/**
 * Entries of a directory whose metadata is looked up while the walk is still before the directory
 * (when the directory itself is prefetched), so entering it does not wait for a thread-pool round
 * trip. Metadata only, one level only: what is held ahead stays bounded by META_AHEAD ×
 * CHILDREN_AHEAD small records.
 */
const CHILDREN_AHEAD = 32;

/** Work started by the walk: `done` settles when the entry (and everything below it) is stored. */
interface Pending<T> {
  done: Promise<T>;
}

interface Prev {
  /** The parent snapshot's tree of this directory. */
  id: Id;
  byName: Map<string, TreeNode>;
}

/**
 * Walks the targets depth-first and builds restic trees bottom-up. The walk itself is sequential;
 * file reading, chunking and sealing run concurrently behind bounded semaphores, and a directory's
 * tree is saved once all its children are done.
 */
export class Archiver {
  private readonly files: Semaphore;
  private readonly chunks: Semaphore;
  private readonly reporter: Reporter;
  private readonly clock: Clock;
  private readonly started: number;
  private readonly hardlinks = new Map<string, Promise<Id[]>>();
  private lastProgress = 0;
  /**
   * Files being read, for the progress report's current files — kept only when there is a progress
   * report (a Set add and delete per file hashes its path string: ~30 ms of the JavaScript thread
   * for 20,000 small files).
   */
  private readonly current: Set<string> | undefined;
  readonly summary: ArchiveSummary = {
    filesNew: 0, filesChanged: 0, filesUnmodified: 0, dirsNew: 0, dirsChanged: 0, dirsUnmodified: 0,
    dataBlobs: 0, treeBlobs: 0, dataAdded: 0, totalFilesProcessed: 0, totalBytesProcessed: 0, errors: 0,
  };
  private progress: BackupProgress;
  private scanned: { files: number; bytes: number } | undefined;
  /** Large files (streamed) read at once. */
  private readonly largeFiles = new Semaphore(LARGE_FILES);
  private readonly largeQueued = new Semaphore(LARGE_QUEUED);
  /** Read buffers, recycled across files (see chunk-reader.ts). */
  private readonly readPool = new BufferPool(40 * 1024 * 1024);
  /** Buffers of tiny files (their own pool: one large read buffer would crowd them out of readPool). */
  private readonly tinyPool = new BufferPool(4 * 1024 * 1024, 4 * 1024);
  private readonly tinyFiles = new Semaphore(TINY_FILES);

  constructor(private readonly repo: ArchiverRepo, private readonly opts: ArchiveOptions) {
    this.files = new Semaphore(opts.fileConcurrency ?? 4);
    this.chunks = new Semaphore(opts.chunkConcurrency ?? 8);
    this.reporter = opts.reporter ?? nullReporter;
    this.current = this.reporter.progress ? new Set() : undefined;
    this.clock = opts.clock ?? systemClock;
    this.started = this.clock.now();
    this.progress = { filesDone: 0, dirsDone: 0, bytesDone: 0, totalFiles: 0, totalBytes: 0, scanFinished: false, errors: 0, currentFiles: [], elapsedMs: 0 };
  }

  /**
   * Counts files and bytes below the targets while the backup runs (as restic's scanner does), so
   * progress can show totals and an ETA. Only runs when someone listens to progress.
   */
  private async scan(targets: ArchiveTarget[]): Promise<void> {
    let files = 0;
    let bytes = 0;
    const visit = async (p: Buffer, parentDev: bigint | undefined): Promise<void> => {
      if (this.opts.signal?.aborted) return;
      if (this.opts.exclude?.(p.toString('utf8'))) return;
      let st;
      try {
        st = await lstat(p, { bigint: true });
      } catch {
        return;
      }
      if (st.isDirectory()) {
        if (this.opts.oneFileSystem && parentDev !== undefined && st.dev !== parentDev) return;
        let names: Buffer[] = [];
        try {
          names = await readDirSorted(p);
        } catch {
          return;
        }
        for (const n of names) await visit(Buffer.concat([p, Buffer.from('/'), n]), st.dev);
      } else if (st.isFile()) {
        files++;
        bytes += Number(st.size);
        this.scanned = { files, bytes };
      }
    };
    for (const t of targets) await visit(Buffer.from(t.abs), undefined);
    this.scanned = { files, bytes };
    this.progress.scanFinished = true;
  }

  /** Archives the targets and returns the root tree ID. */
  async archive(targets: ArchiveTarget[]): Promise<Id> {
    if (this.reporter.progress) void this.scan(targets).catch(() => undefined);
    const root = buildVirtualRoot(targets);
    const prevRoot = await this.loadPrev(this.opts.parentTree);
    const node = await this.archiveVDir(root, prevRoot);
    const id = await node.done;
    this.report(true);
    return id;
  }

  private async loadPrev(id: Id | undefined): Promise<Prev | undefined> {
    if (!id) return undefined;
    try {
      const nodes = await this.repo.loadTree(id);
      return { id, byName: new Map(nodes.map((n) => [n.name.toString('latin1'), n])) };
    } catch {
      return undefined; // a broken parent only costs speed, never correctness
    }
  }

  private report(force = false): void {
    if (!this.reporter.progress) return;
    const now = this.clock.now();
    if (!force && now - this.lastProgress < 250) return;
    this.lastProgress = now;
    this.progress.elapsedMs = now - this.started;
    this.progress.currentFiles = [...(this.current ?? [])].slice(0, 4);
    this.progress.errors = this.summary.errors;
    const totals = this.scanned ?? { files: 0, bytes: 0 };
    this.reporter.progress({
      ...this.progress,
      totalFiles: Math.max(totals.files, this.progress.filesDone),
      totalBytes: Math.max(totals.bytes, this.progress.bytesDone),
    });
  }

  private itemError(p: string, e: unknown): void {
    this.summary.errors++;
    const err = e instanceof Error ? e : new Error(String(e));
    this.reporter.itemError?.(p, err);
  }

  /** Archives a virtual directory: intermediate dirs carry their own metadata, targets their whole subtree. */
  private async archiveVDir(v: VDir, prev: Prev | undefined): Promise<Pending<Id>> {
    const jobs: Array<Promise<TreeNode | undefined>> = [];
    for (const [name, child] of [...v.children].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])))) {
      const prevNode = prev?.byName.get(Buffer.from(name).toString('latin1'));
      if (child.target !== undefined) {
        jobs.push((await this.startEntry(Buffer.from(child.target), Buffer.from(name), prevNode, undefined)).done);
      } else {
        const meta = await readMeta(child.abs!, { xattrs: this.opts.xattrs ?? true }).catch((e) => {
          throw fsError(e, child.abs!, 'stat');
        });
        const node = nodeFromMeta(Buffer.from(name), meta, this.opts);
        const sub = await this.archiveVDir(child, await this.loadPrev(prevNode?.subtree));
        jobs.push(sub.done.then((id) => this.finishDir(node, id, prevNode)));
      }
    }
    for (const dir of v.contentsOf) {
      const d = Buffer.from(dir);
      const { names, paths } = this.listingOf(d, await readDirSorted(d), 0);
      await this.startEntries(paths, names, (name) => prev?.byName.get(name.toString('latin1')), undefined, jobs);
    }
    return { done: this.saveTreeWhenDone(jobs, prev) };
  }

  /**
   * The directory's tree, saved once its entries are done. When every entry equals its node in
   * the parent snapshot's tree (sameNode: what encodeTree writes, subtrees included) and that tree
   * is in the repository, the parent's tree is the answer without encoding or hashing anything:
   * in an unchanged incremental backup of the benchmark tree, encoding, hashing and looking up
   * its 1,221 trees took ~130 ms of the JavaScript thread's ~860 ms walk. A parent tree written by
   * restic or cairn holds exactly the bytes encodeTree would write for these nodes; one with fields
   * our decoder does not know (a newer restic's) keeps them instead of losing them.
   */
  private async saveTreeWhenDone(jobs: Array<Promise<TreeNode | undefined>>, prev: Prev | undefined): Promise<Id> {
    const nodes = (await Promise.all(jobs)).filter((n): n is TreeNode => n !== undefined);
    if (prev !== undefined && sameAsParent(nodes, prev) && this.repo.hasBlob('tree', prev.id)) return prev.id;
    const data = encodeTree(dedupeNames(nodes));
    const r = await this.repo.saveBlob('tree', data);
    if (!r.known) this.summary.treeBlobs++;
    this.summary.dataAdded += r.added;
    return r.id;
  }

  private finishDir(node: TreeNode, subtree: Id, prev: TreeNode | undefined): TreeNode {
    node.subtree = subtree;
    if (!prev || prev.type !== 'dir') this.summary.dirsNew++;
    else if (prev.subtree === subtree) this.summary.dirsUnmodified++;
    else this.summary.dirsChanged++;
    this.progress.dirsDone++;
    return node;
  }

  /**
   * Starts the lookups of an entry before its turn: its metadata (lstat, xattrs) and, for a
   * directory of the parent snapshot, the parent's tree. The walk then takes entries in order,
   * but no longer waits for one lookup (a thread-pool round trip) per entry in turn: an unchanged
   * incremental backup was bound by that latency (main thread idle two thirds of the time).
   */
  private prefetch(p: Buffer, prev: TreeNode | undefined, withTree = true): Prefetched {
    const ps = p.toString('utf8');
    if (this.opts.exclude?.(ps)) return { ps, excluded: true };
    const meta = readMeta(p, { xattrs: this.opts.xattrs ?? true });
    meta.catch(() => undefined); // handled when the entry's turn comes
    const pre: Prefetched = { ps, excluded: false, meta };
    if (withTree) this.prefetchTree(pre, p, prev);
    return pre;
  }

  /**
   * Starts a prefetched directory's listing and its tree in the parent snapshot (nothing for
   * other entries, or twice); with the listing, the metadata lookups of its first entries (see
   * CHILDREN_AHEAD) — theirs wait until startEntries brings them within META_AHEAD of their turn.
   */
  private prefetchTree(pre: Prefetched, p: Buffer, prev: TreeNode | undefined): void {
    if (pre.excluded || pre.listing !== undefined) return;
    pre.prevTree = prev?.type === 'dir' && prev.subtree ? this.loadPrev(prev.subtree) : undefined;
    pre.listing = pre.meta!.then((m) => (m.type === 'dir' ? readDirSorted(p).then((names) => this.listingOf(p, names, CHILDREN_AHEAD)) : undefined));
    pre.listing.catch(() => undefined); // handled when the directory's turn comes
  }

  /** A directory's listing, with the lookups of its first `ahead` entries started. */
  private listingOf(dir: Buffer, names: Buffer[], ahead: number): DirListing {
    const sep = Buffer.from('/');
    const paths = names.map((name) => Buffer.concat([dir, sep, name]));
    return { names, paths, ahead: names.slice(0, ahead).map((_, i) => this.prefetch(paths[i]!, undefined, false)) };
  }

  /** startEntry for the entries of one directory, in order, with lookups started META_AHEAD entries ahead. */
  private async startEntries(
    paths: Buffer[],
    names: Buffer[],
    prevOf: (name: Buffer) => TreeNode | undefined,
    parentDev: bigint | undefined,
    jobs: Array<Promise<TreeNode | undefined>>,
    prefetched: Array<Prefetched | undefined> = [],
  ): Promise<void> {
    const ahead: Array<Prefetched | undefined> = new Array<Prefetched | undefined>(names.length);
    let started = 0;
    for (let i = 0; i < names.length; i++) {
      for (; started < names.length && started < i + META_AHEAD; started++) {
        const prev = prevOf(names[started]!);
        const pre = prefetched[started] ?? this.prefetch(paths[started]!, prev);
        prefetched[started] = undefined; // held in `ahead` until its turn, and no longer
        this.prefetchTree(pre, paths[started]!, prev);
        ahead[started] = pre;
      }
      const pre = ahead[i]!;
      ahead[i] = undefined;
      jobs.push((await this.startEntry(paths[i]!, names[i]!, prevOf(names[i]!), parentDev, pre)).done);
    }
  }

  private async startEntry(
    p: Buffer,
    name: Buffer,
    prev: TreeNode | undefined,
    parentDev: bigint | undefined,
    pre: Prefetched = this.prefetch(p, prev),
  ): Promise<Pending<TreeNode | undefined>> {
    this.opts.signal?.throwIfAborted();
    const ps = pre.ps;
    if (pre.excluded) return { done: Promise.resolve(undefined) };
    let meta: FsEntryMeta;
    try {
      meta = await pre.meta!;
    } catch (e) {
      this.itemError(ps, fsError(e, ps, 'stat'));
      return { done: Promise.resolve(undefined) };
    }
    // restic 0.14 does not store sockets.
    if (meta.type === 'socket') return { done: Promise.resolve(undefined) };
    const node = nodeFromMeta(name, meta, this.opts);
    if (meta.type === 'dir') {
      const crosses = this.opts.oneFileSystem && parentDev !== undefined && meta.dev !== parentDev;
      const sub = await this.walkDir(p, meta, crosses ? undefined : await (pre.prevTree ?? this.loadPrev(undefined)), crosses, pre);
      return { done: sub.done.then((id) => this.finishDir(node, id, prev)) };
    }
    if (meta.type !== 'file') {
      this.progress.filesDone++;
      return { done: Promise.resolve(node) };
    }
    if (meta.xattrError) this.reporter.itemError?.(ps, new Error(`extended attributes not saved: ${meta.xattrError}`));
    const limit = meta.size <= TINY_FILE_MAX ? this.tinyFiles : meta.size <= SMALL_FILE_MAX ? this.files : this.largeQueued;
    await limit.acquire();
    return { done: this.archiveFile(p, ps, node, meta, prev).finally(() => limit.release()) };
  }

  private async walkDir(p: Buffer, meta: FsEntryMeta, prev: Prev | undefined, skipContents: boolean | undefined, pre?: Prefetched): Promise<Pending<Id>> {
    const jobs: Array<Promise<TreeNode | undefined>> = [];
    if (!skipContents) {
      const prevOf = (name: Buffer): TreeNode | undefined => prev?.byName.get(name.toString('latin1'));
      // taken out of the entry: held there, each directory's lookups would keep its children's,
      // and theirs, alive until the walk of the whole subtree ends
      const listing = pre?.listing;
      if (pre !== undefined) pre.listing = undefined;
      let dir: DirListing;
      try {
        dir = (await listing) ?? this.listingOf(p, await readDirSorted(p), 0);
      } catch (e) {
        this.itemError(p.toString('utf8'), fsError(e, p.toString('utf8'), 'read directory'));
        dir = { names: [], paths: [], ahead: [] };
      }
      await this.startEntries(dir.paths, dir.names, prevOf, meta.dev, jobs, dir.ahead);
    }
    return { done: this.saveTreeWhenDone(jobs, skipContents ? undefined : prev) };
  }

  private async archiveFile(p: Buffer, ps: string, node: TreeNode, meta: FsEntryMeta, prev: TreeNode | undefined): Promise<TreeNode | undefined> {
    try {
      if (unchanged(prev, node, this.opts) && prev!.content!.every((id) => this.repo.hasBlob('data', id))) {
        node.content = prev!.content;
        this.summary.filesUnmodified++;
        this.reporter.item?.('unmodified', ps, meta.size);
      } else {
        node.content = await this.contentOf(p, ps, meta);
        if (prev && prev.type === 'file') this.summary.filesChanged++;
        else this.summary.filesNew++;
        this.reporter.item?.(prev ? 'modified' : 'new', ps, meta.size);
      }
      this.summary.totalFilesProcessed++;
      this.summary.totalBytesProcessed += meta.size;
      this.progress.filesDone++;
      this.progress.bytesDone += meta.size;
      this.report();
      return node;
    } catch (e) {
      if (e instanceof CairnError && (e.code === 'CANCELLED' || e.code === 'BACKEND' || e.code === 'NO_SPACE')) throw e;
      if ((e as Error).name === 'AbortError') throw e;
      this.itemError(ps, e);
      return undefined;
    }
  }

  /** Content blob IDs of a file; hard links inside the backup are read once. */
  private contentOf(p: Buffer, ps: string, meta: FsEntryMeta): Promise<Id[]> {
    if (meta.nlink > 1) {
      const key = `${meta.dev}:${meta.inode}:${meta.size}:${meta.mtimeNs}`;
      let pending = this.hardlinks.get(key);
      if (!pending) {
        pending = this.readFile(p, ps, meta);
        this.hardlinks.set(key, pending);
      }
      return pending;
    }
    return this.readFile(p, ps, meta);
  }

  private async readFile(p: Buffer, ps: string, meta: FsEntryMeta): Promise<Id[]> {
    if (meta.size === 0) return [];
    this.current?.add(ps);
    try {
      if (meta.size <= SMALL_FILE_MAX) {
        const ids = await this.readSmallFile(p, meta);
        if (ids !== undefined) return ids;
        // It grew past what was read: read it as a stream.
      }
      return await this.readLargeFile(p, meta);
    } finally {
      this.current?.delete(ps);
    }
  }

  /**
   * A small file in one thread-pool job (open, fstat + identity check, read, close, and SHA-256
   * when it is one chunk), then chunked in memory. Undefined when the file has grown beyond the
   * buffer (the caller streams it then). Errors as openForRead/readBlocks report them.
   */
  private async readSmallFile(p: Buffer, meta: FsEntryMeta): Promise<Id[] | undefined> {
    const pool = meta.size <= TINY_FILE_MAX ? this.tinyPool : this.readPool;
    const out = pool.take(meta.size + 1);
    const oneChunk = meta.size <= this.opts.chunker.params.minSize;
    // A file that is one chunk is usually new data: seal it in the same job (wasted only when the
    // blob turns out to be known already).
    const sp = oneChunk ? this.repo.sealParams?.() : undefined;
    const sealOut = sp ? pool.take(meta.size + 1 + 32) : undefined;
    const seal = sp && sealOut ? { ...sp, out: sealOut } : undefined;
    const giveBack = () => {
      pool.give(out);
      if (sealOut) pool.give(sealOut);
    };
    let r;
    try {
      r = await native.readFile(p, out, { dev: meta.dev, ino: meta.inode, hash: oneChunk, seal });
    } catch (e) {
      giveBack();
      throw openError(e, displayPath(p));
    }
    if (!r.complete) {
      giveBack();
      return undefined;
    }
    const splitter = this.opts.chunker.newFile();
    const chunks: Buffer[] = [];
    for (let start = 0; start < r.length; ) {
      const n = splitter.next(out, start, r.length, true);
      if (n <= 0) throw new CairnError('INTERNAL', 'splitter returned 0 at end of file');
      chunks.push(out.subarray(start, start + n));
      start += n;
    }
    let users = chunks.length;
    const done = () => {
      if (--users === 0) giveBack();
    };
    if (users === 0) {
      giveBack();
      return [];
    }
    // The job sealed the whole file: usable when the file is exactly one chunk.
    const sealed = chunks.length === 1 ? r.sealed : undefined;
    if (sealed !== undefined && r.id !== undefined) {
      // Hashed and sealed already, its memory bounded by the caller's limit: no chunk slot needed.
      try {
        return [await this.storeChunk(chunks[0]!, r.id, sealed)];
      } finally {
        done();
      }
    }
    const ids: Id[] = new Array<Id>(chunks.length);
    const saves: Promise<void>[] = [];
    let failure: unknown;
    for (let i = 0; i < chunks.length; i++) {
      if (failure) {
        for (let k = i; k < chunks.length; k++) done();
        break;
      }
      await this.chunks.acquire();
      saves.push(
        this.storeChunk(chunks[i]!, chunks.length === 1 ? r.id : undefined, sealed)
          .then((id) => {
            ids[i] = id;
          })
          .catch((e) => {
            failure ??= e;
          })
          .finally(() => {
            done();
            this.chunks.release();
          }),
      );
    }
    await Promise.all(saves);
    if (failure) throw failure;
    return ids;
  }

  /**
   * A file streamed through pooled read buffers (see chunk-reader.ts), its chunks stored
   * concurrently. At most LARGE_FILES such files are read at once: each holds a buffer of a
   * maximal chunk plus a read (9 MiB with the default chunker), and one large file already keeps
   * every core busy (the chunks of one file are hashed, compressed and encrypted in parallel).
   */
  private async readLargeFile(p: Buffer, meta: FsEntryMeta): Promise<Id[]> {
    await this.largeFiles.acquire();
    try {
      return await this.streamFile(p, meta);
    } finally {
      this.largeFiles.release();
    }
  }

  private async streamFile(p: Buffer, meta: FsEntryMeta): Promise<Id[]> {
    const { handle, stat } = await openForRead(p, meta);
    try {
      const ids: Id[] = [];
      const saves: Promise<void>[] = [];
      let failure: unknown;
      const splitter = this.opts.chunker.newFile();
      const chunks = readChunks(handle, splitter, {
        pool: this.readPool,
        maxSize: splitter.maxSize ?? this.opts.chunker.params.maxSize,
        size: Number(stat.size),
        readSize: this.opts.readBlockSize,
        signal: this.opts.signal,
      });
      for await (const chunk of chunks) {
        if (failure) {
          chunk.release();
          break;
        }
        // The boundary scan stays sequential (here); hashing, compression and encryption of the
        // chunks run concurrently off the main thread, bounded by the chunk semaphore. Chunks are
        // views of pooled read buffers, given back once the chunk is stored (or known).
        await this.chunks.acquire();
        const slot = ids.push('') - 1;
        saves.push(
          this.storeChunk(chunk.data)
            .then((id) => {
              ids[slot] = id;
            })
            .catch((e) => {
              failure ??= e;
            })
            .finally(() => {
              chunk.release();
              this.chunks.release();
            }),
        );
      }
      await Promise.all(saves);
      if (failure) throw failure;
      return ids;
    } finally {
      await handle.close();
    }
  }

  /** Hashes one chunk (off the main thread unless it is small or already hashed) and saves it unless known; returns its ID. */
  private async storeChunk(chunk: Buffer, knownId?: Id, sealed?: { sealed: Uint8Array; uncompressedLength: number }): Promise<Id> {
    const id = knownId ?? (chunk.length >= ASYNC_HASH_MIN ? await native.sha256(chunk) : createHash('sha256').update(chunk).digest('hex'));
    if (this.repo.hasBlob('data', id)) return id;
    const r = await this.repo.saveBlob('data', chunk, id, false, knownId !== undefined ? sealed : undefined);
    if (!r.known) {
      this.summary.dataBlobs++;
      this.summary.dataAdded += r.added;
    }
    return id;
  }
}

/**
 * Merges the targets into one virtual tree: each target contributes its chain of parent
 * directories (as restic does for absolute targets), and the target itself at the end.
 * A target with no components ("/") contributes its contents to the root.
 */
function buildVirtualRoot(targets: ArchiveTarget[]): VDir {
  const root: VDir = { children: new Map(), contentsOf: [] };
  for (const t of targets) {
    if (t.components.length === 0) {
      root.contentsOf.push(t.abs);
      continue;
    }
    let dir = root;
    // Intermediate directories carry the metadata of the matching ancestors of the target.
    const ancestors = t.abs.split('/').filter((c) => c.length > 0);
    const skip = ancestors.length - t.components.length;
    for (let i = 0; i < t.components.length; i++) {
      const c = t.components[i]!;
      const abs = '/' + ancestors.slice(0, skip + i + 1).join('/');
      let child = dir.children.get(c);
      if (!child) {
        child = { abs, children: new Map(), contentsOf: [] };
        dir.children.set(c, child);
      }
      if (i === t.components.length - 1) child.target = t.abs;
      dir = child;
    }
  }
  return root;
}

/**
 * The entries are exactly the parent tree's, in its order: as many, each equal to the parent's node
 * at its place (sameNode compares names too), names strictly ascending. byName iterates in the
 * parent tree's order (for a name the tree holds twice: the first one's place, the last one's
 * node, as the walk's lookups see it), so no name is looked up again — the walk did that once per
 * entry already.
 */
function sameAsParent(nodes: readonly TreeNode[], prev: Prev): boolean {
  if (nodes.length !== prev.byName.size) return false;
  let i = 0;
  for (const p of prev.byName.values()) {
    const n = nodes[i]!;
    if (i > 0 && Buffer.compare(nodes[i - 1]!.name, n.name) >= 0) return false;
    if (!sameNode(n, p)) return false;
    i++;
  }
  return true;
}

function dedupeNames(nodes: TreeNode[]): TreeNode[] {
  const seen = new Set<string>();
  const out: TreeNode[] = [];
  for (const n of nodes) {
    const k = n.name.toString('latin1');
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(n);
  }
  return out;
}
