/**
 * Prune planning (spec §13.1; restic 0.14 cmd/restic/cmd_prune.go): which packs to delete, which
 * to repack, which blobs to copy. Pure: takes the index, the set of used blobs and the listing of
 * pack files, returns the plan. The executor (prune.ts) carries it out.
 *
 * Everything per blob or per pack lives in typed arrays indexed by handle/entry/pack number.
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { DATA, TREE, type CompactIndex } from '../repository/compact-index.js';

export type MaxUnused = { kind: 'percent'; value: number } | { kind: 'bytes'; value: number } | { kind: 'unlimited' };

export interface PruneLimits {
  /** Tolerated unused space after pruning (restic default 5%). */
  maxUnused: MaxUnused;
  /** Upper bound on bytes repacked (default unlimited). */
  maxRepackBytes: number;
  repackCacheableOnly?: boolean;
  repackSmall?: boolean;
  repackUncompressed?: boolean;
  /** Target pack size (16 MiB): packs below 1/25 of it are "small" (4/5 with repackSmall). */
  packSize?: number;
}

/** restic's parseSizeStr: integer with optional k/K, m/M, g/G, t/T suffix (powers of 1024). */
export function parseSize(s: string): number {
  const m = /^\s*([0-9]+)\s*([kKmMgGtT]?)\s*$/.exec(s);
  if (!m) throw new CairnError('INVALID_ARGUMENT', `invalid size ${JSON.stringify(s)} (examples: 500M, 2G, 1024)`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Number(m[1]) * mult[m[2]!.toLowerCase()]!;
}

/** `--max-unused`: "unlimited", "x%" (0 ≤ x < 100) or a size. */
export function parseMaxUnused(s: string): MaxUnused {
  const v = s.trim();
  if (v === '') throw new CairnError('INVALID_ARGUMENT', `invalid value for --max-unused: ${JSON.stringify(s)}`);
  if (v === 'unlimited') return { kind: 'unlimited' };
  if (v.endsWith('%')) {
    const p = Number(v.slice(0, -1));
    if (v.length === 1 || !Number.isFinite(p)) throw new CairnError('INVALID_ARGUMENT', `invalid percentage ${JSON.stringify(s)} passed for --max-unused`);
    if (p < 0) throw new CairnError('INVALID_ARGUMENT', 'percentage for --max-unused must be positive');
    if (p >= 100) throw new CairnError('INVALID_ARGUMENT', 'percentage for --max-unused must be below 100%');
    return { kind: 'percent', value: p };
  }
  try {
    return { kind: 'bytes', value: parseSize(v) };
  } catch {
    throw new CairnError('INVALID_ARGUMENT', `invalid number of bytes ${JSON.stringify(s)} for --max-unused`);
  }
}

export function maxUnusedBytes(m: MaxUnused, used: number): number {
  if (m.kind === 'unlimited') return Infinity;
  if (m.kind === 'bytes') return m.value;
  return Math.floor((m.value / (100 - m.value)) * used);
}

export interface PruneStats {
  blobs: { used: number; duplicate: number; unused: number; remove: number; repack: number; repackrm: number };
  size: { used: number; duplicate: number; unused: number; remove: number; repack: number; repackrm: number; unref: number };
  packs: { used: number; unused: number; partlyUsed: number; unref: number; keep: number; repack: number; remove: number };
}

/** What happens to each pack number of the index. */
export const enum PackAction {
  /** Listed in the index but not found in the repository (and not needed): dropped from the index. */
  Ignore = 0,
  Keep = 1,
  Remove = 2,
  Repack = 3,
}

export interface PrunePlan {
  /** Pack files that no index lists: deleted first. */
  removeFirst: Array<{ id: Id; size: number }>;
  /** Per pack number of the index. */
  action: Uint8Array;
  /** Per pack number: its blobs must be compressed when repacked (v2, tree pack or --repack-uncompressed). */
  mustCompress: Uint8Array;
  /** Per handle: 1 = copy this blob while repacking (used, and no copy survives in a kept pack). */
  keep: Uint8Array;
  /** Number of handles with keep = 1. */
  keepCount: number;
  repackCount: number;
  removeCount: number;
  ignoreCount: number;
  stats: PruneStats;
}

export interface PackFile {
  id: Id;
  size: number;
}

/** Used by the sort of repack candidates: a/b > c/d without dividing, exact for 32-bit sizes. */
function ratioGreater(unusedA: number, usedA: number, unusedB: number, usedB: number): boolean {
  const l = unusedA * usedB;
  const r = unusedB * usedA;
  if (l < 2 ** 53 && r < 2 ** 53) return l > r;
  return BigInt(unusedA) * BigInt(usedB) > BigInt(unusedB) * BigInt(usedA);
}

/**
 * Plans a prune. `used` has one byte per handle (non-zero = referenced by a kept snapshot).
 * Throws CORRUPT when a needed pack is missing or has the wrong size (nothing is changed then).
 */
export function planPrune(index: CompactIndex, used: Uint8Array, packFiles: Iterable<PackFile>, limits: PruneLimits, repoVersion: 1 | 2): PrunePlan {
  const stats: PruneStats = {
    blobs: { used: 0, duplicate: 0, unused: 0, remove: 0, repack: 0, repackrm: 0 },
    size: { used: 0, duplicate: 0, unused: 0, remove: 0, repack: 0, repackrm: 0, unref: 0 },
    packs: { used: 0, unused: 0, partlyUsed: 0, unref: 0, keep: 0, repack: 0, remove: 0 },
  };
  const nh = index.handleCount;
  const ne = index.entryCount;
  const np = index.packCount;

  // 1. classify index entries: the first entry of a used blob is "used", further entries of it are
  //    duplicates (resolved below), entries of unreferenced blobs are "unused"
  const seen = new Uint8Array(nh); // 1 = a used entry of this handle was met
  const dupCount = new Map<number, number>();
  for (let e = 0; e < ne; e++) {
    const h = index.entryHandle(e);
    const len = index.entryLength(e);
    if (used[h] && !seen[h]) {
      seen[h] = 1;
      stats.size.used += len;
      stats.blobs.used++;
    } else if (seen[h]) {
      const c = dupCount.get(h);
      dupCount.set(h, c === undefined ? 2 : Math.min(255, c + 1));
      stats.size.duplicate += len;
      stats.blobs.duplicate++;
    } else {
      stats.size.unused += len;
      stats.blobs.unused++;
    }
  }
  for (let h = 0; h < nh; h++) {
    if (used[h] && !seen[h]) {
      throw new CairnError('CORRUPT', `index is not complete: used blob ${index.handleId(h)} has no index entry`, { object: `blob ${index.handleId(h)}` });
    }
  }

  // 2. per pack: header size, used/unused bytes and blobs, blob type, any uncompressed blob
  const usedSize = new Float64Array(np);
  const unusedSize = new Float64Array(np);
  const usedBlobs = new Uint32Array(np);
  const unusedBlobs = new Uint32Array(np);
  const uncompressed = new Uint8Array(np);
  for (let p = 0; p < np; p++) usedSize[p] = 36;
  for (let e = 0; e < ne; e++) {
    const p = index.entryPack(e);
    const h = index.entryHandle(e);
    usedSize[p] += index.entryHeaderSize(e);
    if (!index.entryUlen(e)) uncompressed[p] = 1;
    if (dupCount.has(h)) continue;
    if (seen[h]) {
      usedSize[p] += index.entryLength(e);
      usedBlobs[p]++;
    } else {
      unusedSize[p] += index.entryLength(e);
      unusedBlobs[p]++;
    }
  }
  // duplicates: one occurrence becomes used — the first met in a pack that already has used blobs,
  // or else the last one; all others count as unused
  if (dupCount.size > 0) {
    for (let e = 0; e < ne; e++) {
      const h = index.entryHandle(e);
      const count = dupCount.get(h);
      if (count === undefined) continue;
      const p = index.entryPack(e);
      const len = index.entryLength(e);
      if (count === 0) {
        unusedSize[p] += len;
        unusedBlobs[p]++;
      } else if (usedBlobs[p]! > 0 || count === 1) {
        usedSize[p] += len;
        usedBlobs[p]++;
        dupCount.set(h, 0);
      } else {
        unusedSize[p] += len;
        unusedBlobs[p]++;
        dupCount.set(h, count - 1);
      }
    }
  }

  // 3. decide per pack file
  const packSize = limits.packSize ?? 16 * 1024 * 1024;
  const smallLimit = limits.repackSmall ? Math.floor(packSize / 5) * 4 : Math.floor(packSize / 25);
  const action = new Uint8Array(np); // PackAction.Ignore until listed
  const listed = new Uint8Array(np);
  const mustCompress = new Uint8Array(np);
  const removeFirst: Array<{ id: Id; size: number }> = [];
  const candidates: number[] = [];
  const smallCandidates: number[] = [];
  const total = (p: number) => usedSize[p]! + unusedSize[p]!;
  const sizeErrors: string[] = [];
  for (const f of packFiles) {
    const p = index.packNumber(f.id);
    if (p === undefined) {
      removeFirst.push({ id: f.id, size: f.size });
      stats.size.unref += f.size;
      continue;
    }
    listed[p] = 1;
    if (total(p) !== f.size && usedBlobs[p]! !== 0) {
      sizeErrors.push(`pack ${f.id}: calculated size ${total(p)} does not match real size ${f.size}`);
      continue;
    }
    if (usedBlobs[p] === 0) stats.packs.unused++;
    else if (unusedBlobs[p] === 0) stats.packs.used++;
    else stats.packs.partlyUsed++;
    const tpe = index.packType(p);
    if (repoVersion >= 2) mustCompress[p] = (tpe === TREE || limits.repackUncompressed) && uncompressed[p] ? 1 : 0;
    if (usedBlobs[p] === 0) {
      action[p] = PackAction.Remove;
      stats.blobs.remove += unusedBlobs[p]!;
      stats.size.remove += unusedSize[p]!;
    } else if (limits.repackCacheableOnly && tpe === DATA) {
      action[p] = PackAction.Keep;
      stats.packs.keep++;
    } else if (unusedBlobs[p] === 0 && tpe !== 2 && !mustCompress[p]) {
      if (f.size >= smallLimit) {
        action[p] = PackAction.Keep;
        stats.packs.keep++;
      } else smallCandidates.push(p);
    } else {
      candidates.push(p);
    }
  }
  if (sizeErrors.length > 0) {
    throw new CairnError('CORRUPT', `pack size does not match calculated size from index (run "cairn check"): ${sizeErrors.join('; ')}`, {
      object: sizeErrors[0]!.split(':')[0],
    });
  }
  // packs in the index but not in the repository: harmless when nothing in them is needed
  const missingNeeded: Id[] = [];
  let ignoreCount = 0;
  for (let p = 0; p < np; p++) {
    if (listed[p]) continue;
    if (usedBlobs[p] === 0) {
      action[p] = PackAction.Ignore;
      ignoreCount++;
      stats.blobs.remove += unusedBlobs[p]!;
      stats.size.remove += unusedSize[p]!;
    } else missingNeeded.push(index.packId(p));
  }
  if (missingNeeded.length > 0) {
    throw new CairnError('CORRUPT', `packs from index missing in repo: ${missingNeeded.length} needed pack file(s) do not exist: ${missingNeeded.join(', ')}`, {
      object: `pack ${missingNeeded[0]}`,
    });
  }

  // 4. small packs are only worth repacking when there are at least 10 of them
  if (smallCandidates.length < 10) {
    for (const p of smallCandidates) action[p] = PackAction.Keep;
    stats.packs.keep += smallCandidates.length;
  } else candidates.push(...smallCandidates);

  // 5. tree/mixed packs first, then small packs, then by descending unused/used ratio
  const isData = (p: number) => index.packType(p) === DATA;
  candidates.sort((a, b) => {
    const da = isData(a);
    const db = isData(b);
    if (!da && db) return -1;
    if (!db && da) return 1;
    const sa = total(a) < smallLimit;
    const sb = total(b) < smallLimit;
    if (sa && !sb) return -1;
    if (sb && !sa) return 1;
    if (ratioGreater(unusedSize[a]!, usedSize[a]!, unusedSize[b]!, usedSize[b]!)) return -1;
    if (ratioGreater(unusedSize[b]!, usedSize[b]!, unusedSize[a]!, usedSize[a]!)) return 1;
    return 0;
  });

  const maxUnusedAfter = maxUnusedBytes(limits.maxUnused, stats.size.used);
  let repackCount = 0;
  for (const p of candidates) {
    const reachedUnusedSizeAfter = stats.size.unused - stats.size.remove - stats.size.repackrm < maxUnusedAfter;
    const reachedRepackSize = stats.size.repack + total(p) >= limits.maxRepackBytes;
    const largeEnough = total(p) >= smallLimit;
    if (reachedRepackSize) {
      action[p] = PackAction.Keep;
      stats.packs.keep++;
    } else if (!isData(p) || mustCompress[p]) {
      action[p] = PackAction.Repack;
    } else if (reachedUnusedSizeAfter && largeEnough) {
      action[p] = PackAction.Keep;
      stats.packs.keep++;
    } else {
      action[p] = PackAction.Repack;
    }
    if (action[p] === PackAction.Repack) {
      repackCount++;
      stats.blobs.repack += unusedBlobs[p]! + usedBlobs[p]!;
      stats.size.repack += total(p);
      stats.blobs.repackrm += unusedBlobs[p]!;
      stats.size.repackrm += unusedSize[p]!;
    }
  }
  let removeCount = 0;
  for (let p = 0; p < np; p++) if (action[p] === PackAction.Remove && listed[p]) removeCount++;
  stats.packs.unref = removeFirst.length;
  stats.packs.repack = repackCount;
  stats.packs.remove = removeCount;

  // 6. blobs to copy: used blobs that have no entry in a pack that stays
  const keep = new Uint8Array(nh);
  let keepCount = 0;
  if (repackCount > 0) {
    for (let h = 0; h < nh; h++) if (used[h]) keep[h] = 1;
    for (let e = 0; e < ne; e++) {
      const p = index.entryPack(e);
      // a copy in a pack that is listed and stays makes the blob safe; missing (ignored) packs do
      // not count (restic lets them count, which could drop the last readable copy)
      if (action[p] === PackAction.Keep && listed[p]) keep[index.entryHandle(e)] = 0;
    }
    for (let h = 0; h < nh; h++) keepCount += keep[h]!;
  }
  return { removeFirst, action, mustCompress, keep, keepCount, repackCount, removeCount, ignoreCount, stats };
}
