import { open as openFile } from 'node:fs/promises';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import type { Reporter } from '../core/reporter.js';
import { decodeTree, type TreeNode } from '../format/tree.js';
import { compileExcludes } from '../fs/exclude.js';
import type { Repository } from '../repository/repository.js';
import { RepoLock } from '../repository/lock.js';
import { blobError } from '../repository/seal-open.js';
import { findSnapshot, type SnapshotFilter } from '../repository/snapshots.js';
import { executeRestore, planRestore, type RestoreSummary, type RestorerRepo } from '../restorer/restorer.js';
import { Kind, type RestorePlan } from '../restorer/plan.js';

export interface RestoreOptions {
  /** "latest", an ID or a prefix, optionally followed by ":subpath". */
  snapshot: string;
  target: string;
  includes?: string[];
  excludes?: string[];
  verify?: boolean;
  sparse?: boolean;
  dryRun?: boolean;
  filter?: SnapshotFilter;
  packConcurrency?: number;
  reporter?: Reporter;
  signal?: AbortSignal;
  noLock?: boolean;
}

export interface RestoreResult extends RestoreSummary {
  snapshotId: Id;
  verified?: { files: number; errors: number };
  durationMs: number;
}

export function restorerRole(repo: Repository): RestorerRepo {
  // Decryption, decompression and hashing run in the blob kernel, off the main thread.
  const opener = repo.blobOpener;
  return {
    loadTree: async (id) => decodeTree(await repo.loadBlob('tree', id)),
    lookupData: (id) => repo.index.lookup('data', id),
    readPack: (packId, offset, length, into) => repo.backend.load({ type: 'pack', name: packId }, offset, length, into),
    openBlob: (id, loc, sealed, out) => opener.open('data', id, loc, sealed, out),
    sealedContent: (id, loc, sealed, out) => opener.content(id, loc, sealed, out),
    blobError: (id, loc, e) => blobError('data', id, loc, e),
  };
}

/** Finds the tree of SNAPSHOT[:SUBPATH]. */
export async function resolveTree(repo: Repository, ref: string, filter?: SnapshotFilter): Promise<{ snapshotId: Id; tree: Id }> {
  const colon = ref.indexOf(':');
  const snapRef = colon >= 0 ? ref.slice(0, colon) : ref;
  const sub = colon >= 0 ? ref.slice(colon + 1) : '';
  const snap = await findSnapshot(repo, snapRef, filter);
  let tree = snap.snapshot.tree;
  for (const comp of sub.split('/').filter((c) => c && c !== '.')) {
    const nodes = decodeTree(await repo.loadBlob('tree', tree));
    const n = nodes.find((x) => x.name.toString('utf8') === comp);
    if (!n) throw new CairnError('NOT_FOUND', `path ${sub} not found in snapshot ${snap.id.slice(0, 8)}`, { object: sub });
    if (n.type !== 'dir' || !n.subtree) throw new CairnError('INVALID_ARGUMENT', `${sub} in snapshot ${snap.id.slice(0, 8)} is not a directory`);
    tree = n.subtree;
  }
  return { snapshotId: snap.id, tree };
}

function makeFilter(includes: string[], excludes: string[]): ((p: string, n: TreeNode) => 'include' | 'exclude' | 'descend') | undefined {
  if (!includes.length && !excludes.length) return undefined;
  const excluded = excludes.length ? compileExcludes(excludes) : () => false;
  const included = includes.length ? compileExcludes(includes) : undefined;
  return (p, node) => {
    if (excluded(p)) return 'exclude';
    if (!included) return 'include';
    // Included when the entry or one of its ancestors matches an include pattern.
    for (let q = p; q.length > 0; q = q.slice(0, q.lastIndexOf('/'))) if (included(q)) return 'include';
    return node.type === 'dir' ? 'descend' : 'exclude';
  };
}

export async function restore(repo: Repository, opts: RestoreOptions): Promise<RestoreResult> {
  const started = repo.clock.now();
  const lock = opts.noLock || opts.dryRun ? undefined : await RepoLock.acquire(repo, { exclusive: false, signal: opts.signal });
  try {
    if (!repo.isIndexLoaded) await repo.loadIndex(opts.signal);
    const { snapshotId, tree } = await resolveTree(repo, opts.snapshot, opts.filter);
    const role = restorerRole(repo);
    const target = path.resolve(opts.target);
    const plan = await planRestore(role, tree, { filter: makeFilter(opts.includes ?? [], opts.excludes ?? []), signal: opts.signal });
    const summary = await executeRestore(role, plan, {
      target,
      sparse: opts.sparse,
      dryRun: opts.dryRun,
      packConcurrency: opts.packConcurrency ?? repo.backend.connections,
      // remote backends (those with a connection limit): a read is a round trip worth overlapping
      readAhead: repo.backend.connections !== undefined,
      reporter: opts.reporter,
      signal: opts.signal,
    });
    const result: RestoreResult = { ...summary, snapshotId, durationMs: 0 };
    if (opts.verify && !opts.dryRun) result.verified = await verifyRestore(repo, plan, target, opts.reporter);
    result.durationMs = repo.clock.now() - started;
    return result;
  } finally {
    await lock?.release();
  }
}

/** Re-reads every restored file and checks each content blob's hash (restic's --verify). */
async function verifyRestore(repo: Repository, plan: RestorePlan, target: string, reporter?: Reporter) {
  let files = 0;
  let errors = 0;
  const entries = plan.entries;
  for (let i = 0; i < entries.count; i++) {
    if (entries.kind(i) !== Kind.file) continue;
    files++;
    const rel = entries.rel(i);
    const p = Buffer.concat([Buffer.from(target + '/'), ...rel.flatMap((c, k) => (k ? [Buffer.from('/'), c] : [c]))]);
    try {
      const h = await openFile(p, 'r');
      try {
        let pos = 0;
        for (const id of plan.contentIds(i)) {
          const size = repo.index.blobSize('data', id);
          if (size === undefined) throw new CairnError('CORRUPT', `blob ${id} not in index`);
          const buf = Buffer.alloc(size);
          const { bytesRead } = await h.read(buf, 0, size, pos);
          if (bytesRead !== size || createHash('sha256').update(buf).digest('hex') !== id) {
            throw new CairnError('CORRUPT', `content at offset ${pos} does not match blob ${id.slice(0, 8)}`);
          }
          pos += size;
        }
        const st = await h.stat();
        if (st.size !== pos) throw new CairnError('CORRUPT', `size ${st.size} differs from snapshot (${pos})`);
      } finally {
        await h.close();
      }
    } catch (err) {
      errors++;
      reporter?.itemError?.(entries.relString(i), err instanceof Error ? err : new Error(String(err)));
    }
  }
  return { files, errors };
}
