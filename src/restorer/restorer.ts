import { CairnError, isCairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { mapLimit } from '../core/semaphore.js';
import { nullReporter, type Reporter } from '../core/reporter.js';
import type { TreeNode } from '../format/tree.js';
import { parseTime } from '../format/time.js';
import { chmodBitsFromGo, unixModeFromGo } from '../format/mode.js';
import { RestoreTarget, writeSparse } from '../fs/restore.js';
import type { FsEntryType } from '../fs/meta.js';
import type { FileHandle } from 'node:fs/promises';
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
  /** Reads a byte range of a pack. */
  readPack(packId: Id, offset: number, length: number): Promise<Buffer>;
  /** Decrypts, decompresses and verifies one blob. */
  openBlob(id: Id, loc: BlobLoc, sealed: Uint8Array): Buffer | Promise<Buffer>;
}

export interface RestoreOptions {
  target: string;
  /** Return false to skip an entry (path as "/a/b" inside the snapshot) and, for dirs, its contents. */
  filter?: (snapshotPath: string, node: TreeNode) => 'include' | 'exclude' | 'descend';
  sparse?: boolean;
  dryRun?: boolean;
  overwrite?: boolean;
  /** Packs read at once. */
  packConcurrency?: number;
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
 * Executes a restore plan: creates the tree, reads each pack once (in parallel), writes blobs at
 * their file offsets as they arrive, and applies metadata (files when complete, directories last).
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
  const handles = new HandleCache(target, 64);
  const warn = (w: string[]) => {
    for (const x of w) {
      if (summary.warnings.length < 100) summary.warnings.push(x);
    }
  };

  const euid = process.geteuid?.() ?? 0;
  const egid = process.getegid?.() ?? 0;
  let ownersSkipped = 0;
  const applyMeta = async (i: number) => {
    const e = plan.entries[i]!;
    const n = e.node;
    if (!chown && (n.uid !== euid || n.gid !== egid)) ownersSkipped++;
    const r = await target.applyMeta(e.rel, {
      type: FS_TYPE[n.type] ?? 'file',
      mode: chmodBitsFromGo(n.mode),
      uid: n.uid,
      gid: n.gid,
      atimeNs: parseTime(n.atime).ns,
      mtimeNs: parseTime(n.mtime).ns,
      xattrs: n.extendedAttributes?.filter((x) => x.value !== null).map((x) => ({ name: x.name, value: x.value! })),
    }, { chown });
    warn(r.warnings);
  };

  // 1. Create directories, files (empty, sized), links and special files in tree order.
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
            if (failed.has(e.linkTo)) throw new CairnError('IO', 'hard link target could not be restored');
            await target.createHardlink(e.rel, plan.entries[e.linkTo]!.rel, ow);
            summary.files++;
            break;
          }
          // Create (and size, for sparse output) now, but do not keep the file open: a snapshot
          // can hold millions of files; blobs reopen them through a small handle cache.
          const h = await target.createFile(e.rel, ow);
          try {
            const size = n.size ?? 0;
            if (opts.sparse && size > 0) await h.truncate(size);
          } finally {
            await h.close();
          }
          summary.files++;
          if (e.remaining === 0) await applyMeta(i);
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

  // 2. Content: every pack once, in parallel; blobs land at their offsets in any order.
  const writeBlob = async (pb: PlannedBlob, plain: Buffer) => {
    for (const t of pb.targets) {
      if (failed.has(t.entry)) continue;
      const e = plan.entries[t.entry]!;
      try {
        const h = await handles.acquire(t.entry, e.rel);
        try {
          if (opts.sparse) await writeSparse(h, plain, t.fileOffset);
          else await writeFully(h, plain, t.fileOffset);
        } finally {
          handles.release(t.entry);
        }
        summary.bytes += plain.length;
        if (--e.remaining === 0) {
          await handles.close(t.entry);
          await applyMeta(t.entry);
        }
      } catch (err) {
        if (isCairnError(err, 'NO_SPACE') || (err as NodeJS.ErrnoException).code === 'ENOSPC') throw err;
        fail(t.entry, err);
      }
    }
  };

  await mapLimit(plan.packs.entries(), opts.packConcurrency ?? 4, async ([packId, blobs]) => {
    opts.signal?.throwIfAborted();
    // Group blobs into read ranges: adjacent blobs (small gaps) come in one request.
    let i = 0;
    while (i < blobs.length) {
      let j = i + 1;
      while (j < blobs.length && blobs[j]!.offset - (blobs[j - 1]!.offset + blobs[j - 1]!.length) <= MAX_READ_GAP && blobs[j]!.offset + blobs[j]!.length - blobs[i]!.offset <= 32 << 20) j++;
      const start = blobs[i]!.offset;
      const end = blobs[j - 1]!.offset + blobs[j - 1]!.length;
      let buf: Buffer | undefined;
      try {
        buf = await repo.readPack(packId, start, end - start);
      } catch (err) {
        for (const pb of blobs.slice(i, j)) for (const t of pb.targets) fail(t.entry, err);
      }
      if (buf) {
        for (const pb of blobs.slice(i, j)) {
          let plain: Buffer;
          try {
            plain = await repo.openBlob(pb.id, { packId, offset: pb.offset, length: pb.length, uncompressedLength: pb.uncompressedLength }, buf.subarray(pb.offset - start, pb.offset - start + pb.length));
          } catch (err) {
            for (const t of pb.targets) fail(t.entry, err);
            continue;
          }
          await writeBlob(pb, plain);
        }
      }
      i = j;
    }
  });
  await handles.closeAll();
  for (let i = 0; i < plan.entries.length; i++) {
    const e = plan.entries[i]!;
    if (e.node.type === 'file' && e.linkTo === undefined && e.remaining > 0 && !failed.has(i)) {
      fail(i, new CairnError('INTERNAL', 'file content incomplete'));
    }
  }

  // 3. Directory metadata last, deepest first, so restoring contents does not change it again.
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

/**
 * Open files being written, bounded: a file is opened when one of its blobs arrives and kept open
 * while more are expected, but at most `limit` handles stay open (least recently used idle ones are
 * closed and reopened later), so restores of huge trees never run out of file descriptors.
 */
class HandleCache {
  private readonly open = new Map<number, { h: FileHandle; users: number }>();

  constructor(private readonly target: RestoreTarget, private readonly limit: number) {}

  async acquire(i: number, rel: Buffer[]): Promise<FileHandle> {
    let slot = this.open.get(i);
    if (slot) {
      this.open.delete(i); // re-insert: Map order is our LRU order
      this.open.set(i, slot);
    } else {
      await this.evict();
      slot = { h: await this.target.openFile(rel), users: 0 };
      const raced = this.open.get(i);
      if (raced) {
        await slot.h.close();
        slot = raced;
      } else this.open.set(i, slot);
    }
    slot.users++;
    return slot.h;
  }

  release(i: number): void {
    const slot = this.open.get(i);
    if (slot) slot.users--;
  }

  async close(i: number): Promise<void> {
    const slot = this.open.get(i);
    if (!slot || slot.users > 0) return;
    this.open.delete(i);
    await slot.h.close();
  }

  private async evict(): Promise<void> {
    if (this.open.size < this.limit) return;
    for (const [i, slot] of this.open) {
      if (slot.users > 0) continue;
      this.open.delete(i);
      await slot.h.close().catch(() => undefined);
      if (this.open.size < this.limit) return;
    }
  }

  async closeAll(): Promise<void> {
    for (const slot of this.open.values()) await slot.h.close().catch(() => undefined);
    this.open.clear();
  }
}

async function writeFully(h: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await h.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

