/**
 * The set of blobs still referenced by snapshots (spec §13.1 step 1), as one byte per index handle.
 */
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { DATA, TREE, type CompactIndex } from '../repository/compact-index.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots, type SnapshotEntry } from '../repository/snapshots.js';
import { scanTreeRefsFast as scanTreeRefs } from '../format/tree-refs.js';
import { BlobLoader, walkTrees } from './walk.js';

export interface UsedBlobs {
  /** One byte per handle: 1 = referenced. */
  used: Uint8Array;
  /** Referenced blobs that are not in the index ("type id"). */
  missing: string[];
  snapshots: SnapshotEntry[];
}

/**
 * Loads every snapshot (except `ignore`) and walks its trees, marking each reachable tree and
 * each data blob of a file. A snapshot that cannot be loaded, or a tree that cannot be loaded,
 * is an error: deciding what is unused without it would delete needed data.
 */
export async function findUsedBlobs(
  repo: Repository,
  index: CompactIndex,
  opts: { ignore?: ReadonlySet<Id>; signal?: AbortSignal; concurrency?: number } = {},
): Promise<UsedBlobs> {
  const snapshots = (
    await listSnapshots(repo, (id, e) => {
      throw new CairnError('CORRUPT', `failed loading snapshot ${id}: ${errorMessage(e)}`, { object: `snapshot ${id}`, cause: e });
    })
  ).filter((s) => !opts.ignore?.has(s.id));
  const used = new Uint8Array(index.handleCount);
  const missing = new Set<string>();
  const loader = new BlobLoader(repo, index);
  // one walk over all snapshots: trees shared between snapshots are loaded once
  await walkTrees<Id, Buffer>(loader, snapshots.map((sn) => ({ id: sn.snapshot.tree, ctx: sn.id })), {
    concurrency: opts.concurrency ?? 8,
    signal: opts.signal,
    load: (id) => loader.loadTreeBytes(id),
    enter: (job) => {
      const h = index.find(TREE, job.id);
      if (h < 0) {
        missing.add(`tree ${job.id}`);
        return false;
      }
      if (used[h]) return false;
      used[h] = 1;
      return true;
    },
    visit: (job, raw) => {
      const sub: Array<{ id: Id; ctx: Id }> = [];
      try {
        scanTreeRefs(raw, {
          content: (id) => {
            const h = index.find(DATA, id);
            if (h < 0) missing.add(`data ${id}`);
            else used[h] = 1;
          },
          subtree: (id) => sub.push({ id, ctx: job.ctx }),
        });
      } catch (e) {
        throw new CairnError('CORRUPT', `tree ${job.id} of snapshot ${job.ctx}: ${errorMessage(e)}`, { object: `tree ${job.id}`, cause: e });
      }
      return sub;
    },
    onError: (job, e) => {
      throw new CairnError('CORRUPT', `unable to load tree ${job.id} of snapshot ${job.ctx}: ${errorMessage(e)}`, { object: `tree ${job.id}`, cause: e });
    },
  });
  return { used, missing: [...missing], snapshots };
}
