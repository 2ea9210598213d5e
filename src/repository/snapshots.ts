import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { mapLimit } from '../core/semaphore.js';
import { decodeSnapshot, encodeSnapshot, type Snapshot } from '../format/snapshot.js';
import { parseTime } from '../format/time.js';
import type { Repository } from './repository.js';

export interface SnapshotEntry {
  id: Id;
  snapshot: Snapshot;
  /** Snapshot time in nanoseconds since the epoch (for sorting). */
  timeNs: bigint;
}

export interface SnapshotFilter {
  hosts?: string[];
  /** A snapshot matches when it has all tags of at least one of the lists. */
  tags?: string[][];
  /** A snapshot matches when its paths contain all of these. */
  paths?: string[];
}

/** Loads every snapshot, oldest first. Unreadable snapshots are reported through onError and skipped. */
export async function listSnapshots(repo: Repository, onError?: (id: Id, e: unknown) => void): Promise<SnapshotEntry[]> {
  const ids = await repo.listIds('snapshot');
  const out: SnapshotEntry[] = [];
  await mapLimit(ids, 8, async (id) => {
    try {
      const snapshot = decodeSnapshot(await repo.loadUnpacked('snapshot', id));
      out.push({ id, snapshot, timeNs: parseTime(snapshot.time).ns });
    } catch (e) {
      if (onError) onError(id, e);
      else throw e;
    }
  });
  out.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : a.id < b.id ? -1 : 1));
  return out;
}

export function matchesFilter(s: Snapshot, f: SnapshotFilter): boolean {
  if (f.hosts?.length && !f.hosts.includes(s.hostname ?? '')) return false;
  if (f.paths?.length && !f.paths.every((p) => s.paths.includes(p))) return false;
  if (f.tags?.length) {
    const have = new Set(s.tags ?? []);
    const ok = f.tags.some((list) => list.every((t) => (t === '' ? have.size === 0 : have.has(t))));
    if (!ok) return false;
  }
  return true;
}

/** Resolves "latest", a full ID or a unique ID prefix to one snapshot. */
export async function findSnapshot(repo: Repository, ref: string, filter: SnapshotFilter = {}): Promise<SnapshotEntry> {
  const all = await listSnapshots(repo, (id, e) => repo.logger.warn('skipping unreadable snapshot', { snapshot: id, error: errorMessage(e) }));
  if (ref === 'latest') {
    const matching = all.filter((e) => matchesFilter(e.snapshot, filter));
    const last = matching[matching.length - 1];
    if (!last) throw new CairnError('NOT_FOUND', 'no snapshot found' + describeFilter(filter), { object: 'snapshot latest' });
    return last;
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new CairnError('INVALID_ARGUMENT', `invalid snapshot ID ${JSON.stringify(ref)}`);
  const hits = all.filter((e) => e.id.startsWith(ref));
  if (hits.length === 0) throw new CairnError('NOT_FOUND', `no snapshot matching ID ${ref}`, { object: `snapshot ${ref}` });
  if (hits.length > 1) throw new CairnError('INVALID_ARGUMENT', `snapshot ID prefix ${ref} is ambiguous (${hits.length} matches)`);
  return hits[0]!;
}

function describeFilter(f: SnapshotFilter): string {
  const parts: string[] = [];
  if (f.hosts?.length) parts.push(`host ${f.hosts.join(',')}`);
  if (f.paths?.length) parts.push(`paths ${f.paths.join(',')}`);
  if (f.tags?.length) parts.push(`tags ${f.tags.map((t) => t.join(',')).join(' or ')}`);
  return parts.length ? ` for ${parts.join(', ')}` : '';
}

/**
 * restic's parent choice: the newest snapshot not newer than `beforeNs`, with the same hostname,
 * whose paths contain every backup target.
 */
export function findParent(all: SnapshotEntry[], host: string, paths: string[], beforeNs: bigint): SnapshotEntry | undefined {
  let best: SnapshotEntry | undefined;
  for (const e of all) {
    if (e.timeNs > beforeNs) continue;
    if ((e.snapshot.hostname ?? '') !== host) continue;
    if (!paths.every((p) => e.snapshot.paths.includes(p))) continue;
    if (!best || e.timeNs >= best.timeNs) best = e;
  }
  return best;
}

export async function saveSnapshot(repo: Repository, s: Snapshot): Promise<Id> {
  return repo.saveUnpacked('snapshot', encodeSnapshot(s));
}
