/**
 * Loading blobs through a CompactIndex and walking snapshot trees with bounded concurrency.
 */
import { CairnError, errorMessage, isCairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { decodeTree, type TreeNode } from '../format/tree.js';
import { typeName, type CompactIndex, TREE } from '../repository/compact-index.js';
import type { Repository } from '../repository/repository.js';

/** Reads and verifies blobs at the locations a CompactIndex knows. */
export class BlobLoader {
  constructor(readonly repo: Repository, readonly index: CompactIndex) {}

  /** Loads a handle, trying each location until one decrypts and hashes correctly. */
  async loadHandle(h: number): Promise<Buffer> {
    const type = typeName(this.index.handleType(h));
    const id = this.index.handleId(h);
    let lastErr: unknown;
    for (let e = this.index.firstEntry(h); e >= 0; e = this.index.nextEntry(e)) {
      const loc = this.index.location(e);
      try {
        const sealed = await this.repo.backend.load({ type: 'pack', name: loc.packId }, loc.offset, loc.length);
        return await this.repo.openBlob(type, id, loc, sealed);
      } catch (err) {
        lastErr = isCairnError(err, 'NOT_FOUND')
          ? new CairnError('CORRUPT', `${type} blob ${id}: pack ${loc.packId} does not exist`, { object: `pack ${loc.packId}`, cause: err })
          : err;
      }
    }
    throw lastErr ?? new CairnError('NOT_FOUND', `${type} blob ${id} not found in index`, { object: `${type} blob ${id}` });
  }

  async loadBlob(type: 'data' | 'tree', id: Id): Promise<Buffer> {
    const h = this.index.find(type, id);
    if (h < 0) throw new CairnError('NOT_FOUND', `${type} blob ${id} not found in index`, { object: `${type} blob ${id}` });
    return this.loadHandle(h);
  }

  /** The raw bytes of a tree blob (verified). */
  async loadTreeBytes(id: Id): Promise<Buffer> {
    const h = this.index.find(TREE, id);
    if (h < 0) throw new CairnError('NOT_FOUND', `tree ${id} not found in index`, { object: `tree ${id}` });
    return this.loadHandle(h);
  }

  async loadTree(id: Id): Promise<TreeNode[]> {
    const h = this.index.find(TREE, id);
    if (h < 0) throw new CairnError('NOT_FOUND', `tree ${id} not found in index`, { object: `tree ${id}` });
    const buf = await this.loadHandle(h);
    try {
      return decodeTree(buf);
    } catch (e) {
      throw new CairnError('CORRUPT', `tree ${id}: cannot be decoded: ${errorMessage(e)}`, { object: `tree ${id}`, cause: e });
    }
  }
}

export interface TreeJob<C> {
  id: Id;
  ctx: C;
}

export interface WalkOptions<C, X = TreeNode[]> {
  /** How a tree is loaded (default: loader.loadTree, fully decoded nodes). */
  load?: (id: Id) => Promise<X>;
  /** Trees loaded at once. */
  concurrency?: number;
  signal?: AbortSignal;
  /** Return false to skip a tree (already visited); called before loading it. */
  enter(job: TreeJob<C>): boolean;
  /** Called with each loaded tree; returns the subtrees to visit. */
  visit(job: TreeJob<C>, tree: X): Array<TreeJob<C>> | void;
  /** A tree that could not be loaded; without it the walk fails with the error. */
  onError?(job: TreeJob<C>, err: unknown): void;
}

/**
 * Depth-first walk over trees with up to `concurrency` loads in flight. Pending jobs form a stack,
 * so memory stays proportional to depth × fan-out, not to the number of trees.
 */
export async function walkTrees<C, X = TreeNode[]>(loader: BlobLoader, roots: Array<TreeJob<C>>, opts: WalkOptions<C, X>): Promise<void> {
  const load = opts.load ?? ((id: Id) => loader.loadTree(id) as Promise<unknown> as Promise<X>);
  const stack: Array<TreeJob<C>> = [...roots].reverse();
  const limit = Math.max(1, opts.concurrency ?? 8);
  let active = 0;
  let failure: unknown;
  let failed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      if (failed) return;
      if (opts.signal?.aborted) {
        failed = true;
        failure = opts.signal.reason;
        notify();
        return;
      }
      const job = stack.pop();
      if (!job) {
        if (active === 0) {
          notify();
          return;
        }
        await new Promise<void>((r) => {
          const prev = wake;
          wake = () => {
            prev?.();
            r();
          };
        });
        continue;
      }
      if (!opts.enter(job)) continue;
      active++;
      try {
        let nodes: X;
        try {
          nodes = await load(job.id);
        } catch (e) {
          if (!opts.onError) throw e;
          opts.onError(job, e);
          continue;
        }
        const children = opts.visit(job, nodes);
        if (children) for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
      } catch (e) {
        if (!failed) {
          failed = true;
          failure = e;
        }
        return;
      } finally {
        active--;
        notify();
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < limit; i++) workers.push(worker());
  await Promise.all(workers);
  if (failed) throw failure;
}

/** Joins a tree path and a node name (slash-separated, like restic's path.Join). */
export function joinPath(dir: string, name: string): string {
  return dir === '/' || dir === '' ? '/' + name : dir + '/' + name;
}
