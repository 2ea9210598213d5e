/**
 * copy (restic 0.14 cmd/restic/cmd_copy.go): copies snapshots with every blob they need from one
 * repository into another. Both must chunk identically (same Rabin polynomial, same cairn
 * chunker settings), otherwise data copied in and data backed up later would not deduplicate;
 * copy refuses and names the difference.
 *
 * A snapshot is skipped when the destination already has a copy of it: a snapshot whose
 * `original` (or own ID) equals the source's `original` (or ID) and whose fields match. A copy
 * gets `original` set (if it was unset) and `parent` cleared. Order per snapshot: blobs into packs,
 * packs stored, index written, then the snapshot (spec §11).
 */
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { formatPolynomial } from '../chunker/polynomial.js';
import { parseTime } from '../format/time.js';
import { decodeTree } from '../format/tree.js';
import { mapLimit } from '../core/semaphore.js';
import type { Snapshot } from '../format/snapshot.js';
import type { RepoConfig } from '../format/config.js';
import { BlobWriter } from '../repository/blob-writer.js';
import { CompactIndex, DATA, TREE } from '../repository/compact-index.js';
import { RepoLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots, saveSnapshot, type SnapshotEntry } from '../repository/snapshots.js';
import { hasPaths, hasTags, type SnapshotSelection } from './forget-policy.js';
import { selectSnapshots } from './stats.js';
import { BlobLoader } from './walk.js';

export interface CopyOptions extends SnapshotSelection {
  /** Snapshot IDs/prefixes/"latest" in the source; default: all matching the filters. */
  ids?: string[];
  /** Do not lock the source (the destination is always locked). */
  noLockSource?: boolean;
  retryLockMs?: number;
  signal?: AbortSignal;
  onMessage?: (msg: string) => void;
}

export interface CopiedSnapshot {
  source: Id;
  /** The new snapshot's ID, or the existing copy's when skipped. */
  destination: Id;
  skipped: boolean;
  blobsCopied: number;
  bytesCopied: number;
}

export interface CopyResult {
  snapshots: CopiedSnapshot[];
  warnings: string[];
}

/** Describes how two repositories' chunkers differ, or undefined when they chunk identically. */
export function chunkerDifference(src: RepoConfig, dst: RepoConfig): string | undefined {
  const name = (c: RepoConfig) => (c.chunker ? `FastCDC (min ${c.chunker.min}, avg ${c.chunker.avg}, max ${c.chunker.max})` : 'Rabin');
  if (!!src.chunker !== !!dst.chunker || (src.chunker && dst.chunker && (src.chunker.min !== dst.chunker.min || src.chunker.avg !== dst.chunker.avg || src.chunker.max !== dst.chunker.max))) {
    return `the source repository uses the ${name(src)} chunker, the destination the ${name(dst)} chunker`;
  }
  if (src.chunkerPolynomial !== dst.chunkerPolynomial) {
    return `the chunker polynomials differ (source ${formatPolynomial(src.chunkerPolynomial)}, destination ${formatPolynomial(dst.chunkerPolynomial)})`;
  }
  return undefined;
}

/** restic's similarSnapshots: everything but parent and original matches. */
function similar(a: Snapshot, b: Snapshot): boolean {
  let sameTime: boolean;
  try {
    sameTime = parseTime(a.time).ns === parseTime(b.time).ns;
  } catch {
    sameTime = a.time === b.time;
  }
  if (!sameTime || a.tree !== b.tree || (a.hostname ?? '') !== (b.hostname ?? '') || (a.username ?? '') !== (b.username ?? '')) return false;
  if ((a.uid ?? 0) !== (b.uid ?? 0) || (a.gid ?? 0) !== (b.gid ?? 0)) return false;
  const ea = a.excludes ?? [];
  const eb = b.excludes ?? [];
  if (a.paths.length !== b.paths.length || ea.length !== eb.length || (a.tags ?? []).length !== (b.tags ?? []).length) return false;
  if (!hasPaths(a, b.paths) || !hasTags(a, b.tags ?? [])) return false;
  return ea.every((x, i) => x === eb[i]);
}

export async function copySnapshots(src: Repository, dst: Repository, opts: CopyOptions = {}): Promise<CopyResult> {
  const why = chunkerDifference(src.config, dst.config);
  if (why) {
    throw new CairnError(
      'INVALID_ARGUMENT',
      `refusing to copy: ${why}. Copied data would not deduplicate with data backed up into the destination; create the destination with "cairn init --copy-chunker-params --from-repo SOURCE"`,
    );
  }
  if (src.config.id === dst.config.id) throw new CairnError('INVALID_ARGUMENT', 'source and destination are the same repository');
  const msg = opts.onMessage ?? (() => undefined);
  const srcLock = opts.noLockSource ? undefined : await RepoLock.acquire(src, { exclusive: false, retryLockMs: opts.retryLockMs, signal: opts.signal });
  let dstLock: RepoLock | undefined;
  try {
    dstLock = await RepoLock.acquire(dst, { exclusive: false, retryLockMs: opts.retryLockMs, signal: opts.signal });
    const warnings: string[] = [];
    const srcAll = await listSnapshots(src, (id, e) => warnings.push(`could not load source snapshot ${id.slice(0, 8)}: ${errorMessage(e)}`));
    const dstAll = await listSnapshots(dst, (id, e) => warnings.push(`could not load destination snapshot ${id.slice(0, 8)}: ${errorMessage(e)}`));
    const srcIndex = await CompactIndex.load(src, { signal: opts.signal });
    await dst.loadIndex(opts.signal);
    const loader = new BlobLoader(src, srcIndex);

    const byOriginal = new Map<Id, SnapshotEntry[]>();
    const put = (k: Id, s: SnapshotEntry) => byOriginal.set(k, [...(byOriginal.get(k) ?? []), s]);
    for (const s of selectSnapshots(dstAll, undefined, opts, warnings)) {
      if (s.snapshot.original) put(s.snapshot.original, s);
      put(s.id, s);
    }
    const visitedTrees = new Set<Id>();
    const result: CopyResult = { snapshots: [], warnings };
    for (const sn of selectSnapshots(srcAll, opts.ids, opts, warnings)) {
      opts.signal?.throwIfAborted();
      const original = sn.snapshot.original ?? sn.id;
      const existing = (byOriginal.get(original) ?? []).find((d) => similar(d.snapshot, sn.snapshot));
      if (existing) {
        msg(`skipping source snapshot ${sn.id.slice(0, 8)}, was already copied to snapshot ${existing.id.slice(0, 8)}`);
        result.snapshots.push({ source: sn.id, destination: existing.id, skipped: true, blobsCopied: 0, bytesCopied: 0 });
        continue;
      }
      msg(`snapshot ${sn.id.slice(0, 8)} of [${sn.snapshot.paths.join(' ')}] at ${sn.snapshot.time}: copy started`);
      const writer = new BlobWriter(dst, { compression: 'auto' });
      let blobsCopied = 0;
      let bytesCopied = 0;
      try {
        const copyBlob = async (type: 'data' | 'tree', id: Id, data?: Buffer) => {
          if (writer.isKnown(type, id)) return;
          const plain = data ?? (await loader.loadBlob(type, id));
          const r = await writer.save(type, plain, id);
          if (!r.known) {
            blobsCopied++;
            bytesCopied += plain.length;
          }
        };
        // depth-first over trees not copied before; trees are copied as raw bytes, so their IDs stay
        const stack: Id[] = [sn.snapshot.tree];
        while (stack.length > 0) {
          const treeId = stack.pop()!;
          if (visitedTrees.has(treeId)) continue;
          visitedTrees.add(treeId);
          const h = srcIndex.find(TREE, treeId);
          if (h < 0) throw new CairnError('CORRUPT', `tree ${treeId} of snapshot ${sn.id} not found in the source index`, { object: `tree ${treeId}` });
          const raw = await loader.loadHandle(h);
          const blobs = new Set<Id>();
          for (const n of decodeTree(raw)) {
            if (n.type === 'file' && n.content) {
              for (const id of n.content) {
                if (srcIndex.find(DATA, id) < 0 && !writer.isKnown('data', id)) {
                  throw new CairnError('CORRUPT', `data blob ${id} of snapshot ${sn.id} not found in the source index`, { object: `data blob ${id}` });
                }
                blobs.add(id);
              }
            } else if (n.type === 'dir' && n.subtree) stack.push(n.subtree);
          }
          await mapLimit(blobs, 4, (id) => copyBlob('data', id));
          await copyBlob('tree', treeId, raw);
        }
        await writer.flush();
      } finally {
        await writer.close();
      }
      const copy: Snapshot = { ...sn.snapshot };
      delete copy.parent;
      if (!copy.original) copy.original = sn.id;
      const newId = await saveSnapshot(dst, copy);
      put(original, { id: newId, snapshot: copy, timeNs: sn.timeNs });
      msg(`snapshot ${newId.slice(0, 8)} saved`);
      result.snapshots.push({ source: sn.id, destination: newId, skipped: false, blobsCopied, bytesCopied });
    }
    return result;
  } finally {
    await dstLock?.release();
    await srcLock?.release();
  }
}
