/**
 * stats (restic 0.14 cmd/restic/cmd_stats.go): sizes of snapshots in four counting modes.
 *
 * - restore-size: every node of every selected snapshot counts as a file; sizes add up, except
 *   that a file whose inode was already counted in the same snapshot (a hard link) adds nothing.
 * - files-by-contents: each distinct content (sequence of blob IDs) counts once.
 * - blobs-per-file: per distinct content, the distinct blobs of its file path, with their sizes.
 * - raw-data: the distinct blobs (data and tree) the snapshots reference, stored sizes.
 */
import { createHash } from 'node:crypto';
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import type { TreeNode } from '../format/tree.js';
import { CompactIndex, DATA, TREE } from '../repository/compact-index.js';
import { RepoLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots, type SnapshotEntry } from '../repository/snapshots.js';
import { matchesSelection, type SnapshotSelection } from './forget-policy.js';
import { scanTreeRefsFast as scanTreeRefs } from '../format/tree-refs.js';
import { BlobLoader, joinPath, walkTrees } from './walk.js';

export type StatsMode = 'restore-size' | 'files-by-contents' | 'blobs-per-file' | 'raw-data';

export const STATS_MODES: readonly StatsMode[] = ['restore-size', 'files-by-contents', 'blobs-per-file', 'raw-data'];

export interface StatsOptions extends SnapshotSelection {
  mode?: StatsMode;
  /** Snapshot IDs, prefixes or "latest"; default: every snapshot matching the filters. */
  ids?: string[];
  noLock?: boolean;
  retryLockMs?: number;
  signal?: AbortSignal;
}

export interface StatsResult {
  mode: StatsMode;
  totalSize: number;
  totalFileCount: number;
  /** Only in raw-data and blobs-per-file modes. */
  totalBlobCount: number;
  snapshotsCount: number;
  warnings: string[];
}

/** Resolves explicit snapshot references like restic's FindFilteredSnapshots (unknown ones are warnings). */
export function selectSnapshots(all: SnapshotEntry[], ids: string[] | undefined, filter: SnapshotSelection, warnings: string[]): SnapshotEntry[] {
  const like = (s: SnapshotEntry) => ({ id: s.id, time: s.snapshot.time, hostname: s.snapshot.hostname, paths: s.snapshot.paths, tags: s.snapshot.tags });
  if (!ids || ids.length === 0) return all.filter((s) => matchesSelection(like(s), filter));
  const out: SnapshotEntry[] = [];
  const seen = new Set<Id>();
  for (const ref of ids) {
    let hit: SnapshotEntry | undefined;
    if (ref === 'latest') {
      for (const s of all) if (matchesSelection(like(s), filter) && (!hit || s.timeNs >= hit.timeNs)) hit = s;
      if (!hit) warnings.push('Ignoring "latest", no snapshot matched the given filter');
    } else {
      const hits = all.filter((s) => s.id.startsWith(ref));
      if (hits.length === 1) hit = hits[0];
      else warnings.push(hits.length ? `Ignoring "${ref}": prefix is ambiguous` : `Ignoring "${ref}": no matching ID found`);
    }
    if (hit && !seen.has(hit.id)) {
      seen.add(hit.id);
      out.push(hit);
    }
  }
  return out;
}

export async function stats(repo: Repository, opts: StatsOptions = {}): Promise<StatsResult> {
  const mode = opts.mode ?? 'restore-size';
  if (!STATS_MODES.includes(mode)) throw new CairnError('INVALID_ARGUMENT', `unknown counting mode: ${mode} (use restore-size, files-by-contents, blobs-per-file or raw-data)`);
  const lock = opts.noLock ? undefined : await RepoLock.acquire(repo, { exclusive: false, retryLockMs: opts.retryLockMs, signal: opts.signal });
  try {
    const warnings: string[] = [];
    const all = await listSnapshots(repo, (id, e) => warnings.push(`could not load snapshot ${id.slice(0, 8)}: ${errorMessage(e)}`));
    const index = await CompactIndex.load(repo, { signal: opts.signal });
    const loader = new BlobLoader(repo, index);
    const selected = selectSnapshots(all, opts.ids, opts, warnings);
    const r: StatsResult = { mode, totalSize: 0, totalFileCount: 0, totalBlobCount: 0, snapshotsCount: selected.length, warnings };
    if (mode === 'raw-data') {
      const seen = new Uint8Array(index.handleCount);
      const count = (h: number) => {
        if (seen[h]) return;
        seen[h] = 1;
        r.totalSize += index.entryLength(index.firstEntry(h));
        r.totalBlobCount++;
      };
      await walkTrees<undefined, Buffer>(loader, selected.map((s) => ({ id: s.snapshot.tree, ctx: undefined })), {
        signal: opts.signal,
        load: (id) => loader.loadTreeBytes(id),
        enter: (job) => {
          const h = index.find(TREE, job.id);
          if (h < 0) throw new CairnError('CORRUPT', `tree ${job.id} not found in index`, { object: `tree ${job.id}` });
          if (seen[h]) return false;
          count(h);
          return true;
        },
        visit: (_job, raw) => {
          const sub: Array<{ id: Id; ctx: undefined }> = [];
          scanTreeRefs(raw, {
            content: (id) => {
              const h = index.find(DATA, id);
              if (h < 0) throw new CairnError('CORRUPT', `blob ${id} not found`, { object: `data blob ${id}` });
              count(h);
            },
            subtree: (id) => sub.push({ id, ctx: undefined }),
          });
          return sub;
        },
      });
      return r;
    }
    const uniqueFiles = new Set<string>();
    const fileBlobs = new Map<string, Set<Id>>();
    for (const s of selected) {
      const inodes = new Set<bigint>();
      // restic's walker visits the nodes of each tree sorted by name, depth first
      const walk = async (treeId: Id, dir: string, parentTree: Id, ignore: Set<Id>): Promise<void> => {
        const nodes: TreeNode[] = (await loader.loadTree(treeId)).slice().sort((a, b) => Buffer.compare(a.name, b.name));
        for (const n of nodes) {
          const p = joinPath(dir, n.name.toString('utf8'));
          if (n.type === 'dir') {
            if (!n.subtree) throw new CairnError('CORRUPT', `subtree for node ${n.name.toString('utf8')} in tree ${p} is nil`);
            if (ignore.has(n.subtree)) continue;
            visitNode(n, p, parentTree);
            // in the content modes restic's walker never enters the same subtree twice in one snapshot
            if (mode !== 'restore-size') ignore.add(n.subtree);
            await walk(n.subtree, p, n.subtree, ignore);
          } else visitNode(n, p, parentTree);
        }
      };
      const visitNode = (n: TreeNode, p: string, parentTree: Id) => {
        if (mode === 'restore-size') {
          r.totalFileCount++;
          const ino = n.inode ?? 0n;
          if (ino === 0n || !inodes.has(ino)) {
            inodes.add(ino);
            r.totalSize += n.size ?? 0;
          }
          return;
        }
        const h = createHash('sha256');
        for (const id of n.content ?? []) h.update(Buffer.from(id, 'hex'));
        const fid = h.digest('base64');
        if (uniqueFiles.has(fid)) return;
        uniqueFiles.add(fid);
        if (mode === 'files-by-contents') {
          r.totalSize += n.size ?? 0;
          r.totalFileCount++;
          return;
        }
        // blobs-per-file: restic keys the blob sets by the node path joined with the name again
        const key = joinPath(p, n.name.toString('utf8'));
        for (const id of n.content ?? []) {
          let set = fileBlobs.get(key);
          if (!set) {
            fileBlobs.set(key, (set = new Set()));
            r.totalFileCount++;
          }
          if (set.has(id)) continue;
          const size = index.blobSize('data', id);
          if (size === undefined) throw new CairnError('CORRUPT', `blob ${id} not found for tree ${parentTree}`, { object: `data blob ${id}` });
          r.totalSize += size;
          set.add(id);
          r.totalBlobCount++;
        }
      };
      await walk(s.snapshot.tree, '/', s.snapshot.tree, new Set());
    }
    return r;
  } finally {
    await lock?.release();
  }
}
