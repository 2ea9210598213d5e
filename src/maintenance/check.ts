/**
 * check (spec §14; restic 0.14 internal/checker): index, packs, structure and — with
 * --read-data / --read-data-subset — the content of every selected pack.
 *
 * Every problem names the object it concerns (index file, pack, blob, tree, snapshot, path inside
 * the snapshot). Errors mean the repository is damaged; hints (orphaned packs, a pack listed in
 * several index files, mixed packs, old index format) do not. When packs or blobs are damaged,
 * the files and directories that use them are listed per snapshot ("affected").
 */
import { createHash, randomInt } from 'node:crypto';
import { CairnError, errorMessage } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { decodePackHeader, parseTrailer, COMPRESSED_ENTRY_SIZE, PLAIN_ENTRY_SIZE } from '../format/pack.js';
import type { TreeNode } from '../format/tree.js';
import { CompactIndex, DATA, TREE, typeName, type IndexLoadIssue } from '../repository/compact-index.js';
import { RepoLock } from '../repository/lock.js';
import { BlobVerifier } from '../repository/verify-blob.js';
import { BufferPool } from '../native/buffer-pool.js';
import { native } from '../native/index.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots, type SnapshotEntry } from '../repository/snapshots.js';
import { parseSize } from './prune-plan.js';
import { BlobLoader, joinPath, walkTrees } from './walk.js';

export type ProblemKind =
  | 'index-unreadable'
  | 'index-old-format'
  | 'pack-in-several-indexes'
  | 'mixed-pack'
  | 'pack-missing'
  | 'pack-size'
  | 'pack-orphaned'
  | 'snapshot-unreadable'
  | 'tree-missing'
  | 'tree-unreadable'
  | 'node-invalid'
  | 'blob-missing'
  | 'pack-hash'
  | 'pack-layout'
  | 'pack-header'
  | 'blob-damaged'
  | 'pack-unreadable';

export interface CheckProblem {
  severity: 'error' | 'hint';
  kind: ProblemKind;
  message: string;
  index?: Id;
  pack?: Id;
  blob?: Id;
  blobType?: 'data' | 'tree';
  tree?: Id;
  snapshot?: Id;
  /** Path inside the snapshot. */
  path?: string;
}

/** A file or directory of a snapshot that uses a damaged or missing blob. */
export interface AffectedItem {
  snapshot: Id;
  path: string;
  blob: Id;
  blobType: 'data' | 'tree';
  /** Packs the blob was stored in. */
  packs: Id[];
}

export type ReadDataSubset = { kind: 'bucket'; n: number; total: number } | { kind: 'percent'; value: number } | { kind: 'size'; bytes: number };

export interface CheckOptions {
  readData?: boolean;
  /** restic's --read-data-subset: "n/t", "x%" or a size ("500M"). */
  readDataSubset?: string | ReadDataSubset;
  noLock?: boolean;
  /** The caller already holds an exclusive lock (migrate). */
  lockHeld?: boolean;
  retryLockMs?: number;
  signal?: AbortSignal;
  onProblem?: (p: CheckProblem) => void;
  onMessage?: (msg: string) => void;
  onAffected?: (a: AffectedItem) => void;
  /** Random source for percentage/size subsets (tests make it deterministic). */
  random?: (maxExclusive: number) => number;
  concurrency?: number;
}

export interface CheckResult {
  errors: number;
  hints: number;
  problems: CheckProblem[];
  affected: AffectedItem[];
  snapshots: number;
  packs: number;
  packsRead: number;
  /** True when at least one error (not hint) was found. */
  damaged: boolean;
}

/** Problems kept in the result (all are passed to onProblem). */
const MAX_KEPT_PROBLEMS = 10_000;
/** Packs up to this size (the default target plus one maximal blob) are read into recycled buffers. */
const PACK_BUFFER_MAX = 32 * 1024 * 1024;
/** Affected paths reported per damaged blob and in total. */
const MAX_AFFECTED_PER_BLOB = 20;
const MAX_AFFECTED = 10_000;
/** restic 0.14 only looks at the first byte of the pack ID for n/t buckets. */
const MAX_BUCKETS = 256;

/** Validates --read-data-subset like restic (n/t with 1 ≤ n ≤ t ≤ 256, 0 < x% ≤ 100, size > 0). */
export function parseReadDataSubset(s: string): ReadDataSubset {
  const bad = () => new CairnError('INVALID_ARGUMENT', 'check flag --read-data-subset has invalid value, please see documentation');
  if (/^[0-9]+(\/[0-9]+)*$/.test(s)) {
    const parts = s.split('/').map(Number);
    if (parts.length !== 2) throw bad();
    const [n, t] = parts as [number, number];
    if (n === 0 || t === 0 || n > t) throw new CairnError('INVALID_ARGUMENT', 'check flag --read-data-subset=n/t values must be positive integers, and n <= t, e.g. --read-data-subset=1/2');
    if (t > MAX_BUCKETS) throw new CairnError('INVALID_ARGUMENT', `check flag --read-data-subset=n/t t must be at most ${MAX_BUCKETS}`);
    return { kind: 'bucket', n, total: t };
  }
  if (s.endsWith('%')) {
    const v = Number(s.slice(0, -1));
    if (s.length === 1 || !Number.isFinite(v)) throw bad();
    if (v <= 0 || v > 100) throw new CairnError('INVALID_ARGUMENT', 'check flag --read-data-subset=x% x must be above 0.0% and at most 100.0%');
    return { kind: 'percent', value: v };
  }
  let bytes: number;
  try {
    bytes = parseSize(s);
  } catch {
    throw bad();
  }
  if (bytes <= 0) throw new CairnError('INVALID_ARGUMENT', 'check flag --read-data-subset=n n must be above 0');
  return { kind: 'size', bytes };
}

export async function check(repo: Repository, opts: CheckOptions = {}): Promise<CheckResult> {
  if (opts.readData && opts.readDataSubset) throw new CairnError('INVALID_ARGUMENT', 'check flags --read-data and --read-data-subset cannot be used together');
  const subset = typeof opts.readDataSubset === 'string' ? parseReadDataSubset(opts.readDataSubset) : opts.readDataSubset;
  const checker = new Checker(repo, opts, subset);
  // snapshots and index are read while the lock is confirmed (its 200 ms re-check)
  const lock = opts.noLock || opts.lockHeld ? undefined : await RepoLock.acquire(repo, { exclusive: true, retryLockMs: opts.retryLockMs, signal: opts.signal, whileConfirming: () => checker.load() });
  try {
    return await checker.run();
  } finally {
    await lock?.release();
  }
}

class Checker {
  private readonly result: CheckResult = { errors: 0, hints: 0, problems: [], affected: [], snapshots: 0, packs: 0, packsRead: 0, damaged: false };
  private index!: CompactIndex;
  /** Per handle: 1 = no readable copy is known (its packs are missing, truncated or damaged). */
  private damagedEntry!: Uint8Array;
  private readonly msg: (m: string) => void;
  private readonly verifier: BlobVerifier;

  constructor(private readonly repo: Repository, private readonly opts: CheckOptions, private readonly subset: ReadDataSubset | undefined) {
    this.msg = opts.onMessage ?? (() => undefined);
    this.verifier = new BlobVerifier(repo);
  }

  private report(p: CheckProblem): void {
    if (p.severity === 'error') {
      this.result.errors++;
      this.result.damaged = true;
    } else this.result.hints++;
    if (this.result.problems.length < MAX_KEPT_PROBLEMS) this.result.problems.push(p);
    this.opts.onProblem?.(p);
  }

  private loaded: { snapshots: SnapshotEntry[]; snapshotErrors: Array<{ id: Id; e: unknown }>; indexIssues: IndexLoadIssue[] } | undefined;

  /** Reads snapshots and index (only reads: it may run while the lock is being confirmed); problems are reported by run(). */
  async load(): Promise<void> {
    // list snapshots before loading the index (spec §11: the reverse order could see a snapshot
    // whose index file is not there yet)
    const snapshotErrors: Array<{ id: Id; e: unknown }> = [];
    const snapshots = await listSnapshots(this.repo, (id, e) => snapshotErrors.push({ id, e }));
    this.msg('load indexes');
    const indexIssues: IndexLoadIssue[] = [];
    this.index = await CompactIndex.load(this.repo, { signal: this.opts.signal, onIssue: (i) => indexIssues.push(i) });
    this.loaded = { snapshots, snapshotErrors, indexIssues };
  }

  async run(): Promise<CheckResult> {
    if (this.loaded === undefined) await this.load();
    const { snapshots, snapshotErrors, indexIssues } = this.loaded!;
    for (const i of indexIssues) {
      this.report({
        severity: i.kind === 'old-format' ? 'hint' : 'error',
        kind: i.kind === 'old-format' ? 'index-old-format' : 'index-unreadable',
        message: i.kind === 'old-format' ? `${i.message}; this is non-critical, a prune rewrites it` : `error loading ${i.message}`,
        index: i.indexId,
      });
    }
    const index = this.index;
    for (const { pack, indexes } of index.packsInSeveralIndexes()) {
      this.report({ severity: 'hint', kind: 'pack-in-several-indexes', message: `pack ${index.packId(pack)} contained in several indexes: ${indexes.join(', ')}`, pack: index.packId(pack) });
    }
    for (let p = 0; p < index.packCount; p++) {
      if (index.isMixedPack(p)) this.report({ severity: 'hint', kind: 'mixed-pack', message: `pack ${index.packId(p)} contains a mix of tree and data blobs (non-critical, prune repacks it)`, pack: index.packId(p) });
    }
    this.damagedEntry = new Uint8Array(index.entryCount);

    this.msg('check all packs');
    const existing = await this.checkPacks();

    this.msg('check snapshots, trees and blobs');
    for (const { id, e } of snapshotErrors) {
      this.report({ severity: 'error', kind: 'snapshot-unreadable', message: `snapshot ${id} cannot be loaded: ${errorMessage(e)}`, snapshot: id });
    }
    this.result.snapshots = snapshots.length;
    if (this.opts.readData || this.subset) {
      // The packs are read while the trees are checked: the tree walk keeps this thread busy, the
      // packs' hashing and blob verification the thread pool (one after the other, a 2-core
      // machine sat a third idle). Problems found by reading are reported after the structure's,
      // in the order a sequential check gives.
      const selected = this.selectPacks(existing);
      this.msg(`read ${selected.length} of ${existing.size} indexed packs`);
      const dataProblems: CheckProblem[] = [];
      const reading = this.readPacks(selected, (p) => dataProblems.push(p));
      const structure = this.checkStructure(snapshots);
      const [r, st] = await Promise.allSettled([reading, structure]);
      if (st.status === 'rejected') throw st.reason;
      for (const p of dataProblems) this.report(p);
      if (r.status === 'rejected') throw r.reason;
    } else {
      await this.checkStructure(snapshots);
    }

    await this.findAffected(snapshots);
    this.msg(this.result.damaged ? 'repository contains errors' : 'no errors were found');
    return this.result;
  }

  /** Packs: every indexed pack exists with the size the index implies; unindexed ones are orphans. */
  private async checkPacks(): Promise<Map<number, number>> {
    const index = this.index;
    const expected = index.packSizes();
    const seen = new Uint8Array(index.packCount);
    const existing = new Map<number, number>(); // pack number → real size
    const sizeOk = new Uint8Array(index.packCount);
    let orphans = 0;
    for await (const f of this.repo.backend.list('pack', this.opts.signal)) {
      const p = index.packNumber(f.name);
      if (p === undefined) {
        orphans++;
        this.report({ severity: 'hint', kind: 'pack-orphaned', message: `pack ${f.name}: not referenced in any index`, pack: f.name });
        continue;
      }
      seen[p] = 1;
      existing.set(p, f.size);
      if (f.size !== expected[p]) {
        this.report({
          severity: 'error',
          kind: 'pack-size',
          message: `pack ${f.name}: unexpected file size: got ${f.size}, expected ${expected[p]}${f.size < expected[p]! ? ' (truncated or blobs missing from the file)' : ' (the index does not list every blob of the pack)'}`,
          pack: f.name,
        });
      } else sizeOk[p] = 1;
    }
    this.result.packs = index.packCount;
    if (orphans > 0) this.msg(`${orphans} additional files were found in the repo, which likely contain duplicate data. This is non-critical, you can run "cairn prune" to correct this.`);
    // blobs in missing packs, and blobs beyond the end of a short pack, cannot be read
    for (let e = 0; e < index.entryCount; e++) {
      const p = index.entryPack(e);
      if (!seen[p]) this.damagedEntry[e] = 1;
      else if (!sizeOk[p] && index.entryOffset(e) + index.entryLength(e) > existing.get(p)!) this.damagedEntry[e] = 1;
    }
    for (let p = 0; p < index.packCount; p++) {
      if (!seen[p]) this.report({ severity: 'error', kind: 'pack-missing', message: `pack ${index.packId(p)}: does not exist`, pack: index.packId(p) });
    }
    return existing;
  }

  /** Structure: snapshots → trees → nodes; each tree once. */
  private async checkStructure(snapshots: SnapshotEntry[]): Promise<void> {
    const index = this.index;
    const visited = new Uint8Array(index.handleCount);
    const missingTrees = new Set<Id>();
    const loader = new BlobLoader(this.repo, index);
    type Ctx = { snapshot: Id; path: string };
    await walkTrees<Ctx>(loader, snapshots.map((s) => ({ id: s.snapshot.tree, ctx: { snapshot: s.id, path: '/' } })), {
      concurrency: this.opts.concurrency ?? 8,
      signal: this.opts.signal,
      enter: (job) => {
        const h = index.find(TREE, job.id);
        if (h < 0) {
          if (!missingTrees.has(job.id)) {
            missingTrees.add(job.id);
            this.report({
              severity: 'error',
              kind: 'tree-missing',
              message: `tree ${job.id} (directory ${job.ctx.path} in snapshot ${job.ctx.snapshot.slice(0, 8)}) not found in index`,
              tree: job.id,
              blob: job.id,
              blobType: 'tree',
              snapshot: job.ctx.snapshot,
              path: job.ctx.path,
            });
          }
          return false;
        }
        if (visited[h]) return false;
        visited[h] = 1;
        return true;
      },
      onError: (job, e) => {
        const h = index.find(TREE, job.id);
        const packs = h >= 0 ? index.entriesOf(h).map((x) => index.packId(index.entryPack(x))) : [];
        this.report({
          severity: 'error',
          kind: 'tree-unreadable',
          message: `tree ${job.id} (directory ${job.ctx.path} in snapshot ${job.ctx.snapshot.slice(0, 8)}${packs.length ? `, pack ${packs.join(', ')}` : ''}): ${errorMessage(e)}`,
          tree: job.id,
          blob: job.id,
          blobType: 'tree',
          pack: packs[0],
          snapshot: job.ctx.snapshot,
          path: job.ctx.path,
        });
      },
      visit: (job, nodes) => this.checkTree(job.id, job.ctx, nodes),
    });
  }

  private checkTree(treeId: Id, ctx: { snapshot: Id; path: string }, nodes: TreeNode[]): Array<{ id: Id; ctx: { snapshot: Id; path: string } }> {
    const index = this.index;
    const sub: Array<{ id: Id; ctx: { snapshot: Id; path: string } }> = [];
    const nodeError = (path: string, message: string, extra: Partial<CheckProblem> = {}) =>
      this.report({ severity: 'error', kind: 'node-invalid', message: `tree ${treeId} (${path} in snapshot ${ctx.snapshot.slice(0, 8)}): ${message}`, tree: treeId, snapshot: ctx.snapshot, path, ...extra });
    for (const n of nodes) {
      const name = n.name.toString('utf8');
      const path = joinPath(ctx.path, name);
      switch (n.type) {
        case 'file':
          if (n.content === null) {
            nodeError(path, `file ${JSON.stringify(name)} has nil blob list`);
            break;
          }
          n.content.forEach((id, i) => {
            if (/^0{64}$/.test(id)) {
              nodeError(path, `file ${JSON.stringify(name)} blob ${i} has null ID`);
              return;
            }
            if (index.find(DATA, id) < 0) {
              this.report({
                severity: 'error',
                kind: 'blob-missing',
                message: `tree ${treeId}: file ${path} in snapshot ${ctx.snapshot.slice(0, 8)}: data blob ${id} not found in index`,
                tree: treeId,
                blob: id,
                blobType: 'data',
                snapshot: ctx.snapshot,
                path,
              });
            }
          });
          break;
        case 'dir':
          if (!n.subtree) nodeError(path, `dir node ${JSON.stringify(name)} has no subtree`);
          else if (/^0{64}$/.test(n.subtree)) nodeError(path, `dir node ${JSON.stringify(name)} subtree id is null`);
          else sub.push({ id: n.subtree, ctx: { snapshot: ctx.snapshot, path } });
          break;
        case 'symlink':
        case 'socket':
        case 'chardev':
        case 'dev':
        case 'fifo':
          break;
        default:
          nodeError(path, `node ${JSON.stringify(name)} with invalid type ${JSON.stringify(n.type)}`);
      }
      if (n.name.length === 0) nodeError(ctx.path, 'node with empty name');
    }
    return sub;
  }

  /** restic's selection: n/t by the first byte of the pack ID, x% and sizes by random choice. */
  private selectPacks(existing: Map<number, number>): number[] {
    // pack IDs are built from the index on each call: make each once for the sort
    const byId = [...existing.keys()].map((p) => ({ p, id: this.index.packId(p) })).sort((a, b) => (a.id < b.id ? -1 : 1));
    const all = byId.map((x) => x.p);
    const s = this.subset;
    if (!s) return all;
    if (s.kind === 'bucket') return byId.filter((x) => parseInt(x.id.slice(0, 2), 16) % s.total === s.n - 1).map((x) => x.p);
    let percent: number;
    if (s.kind === 'percent') percent = s.value;
    else {
      let repoSize = 0;
      for (const size of existing.values()) repoSize += size;
      if (repoSize === 0) throw new CairnError('INVALID_ARGUMENT', 'Cannot read from a repository having size 0');
      percent = (Math.min(s.bytes, repoSize) / repoSize) * 100;
    }
    let count = Math.floor(all.length * (percent / 100));
    if (all.length > 0 && count < 1) count = 1;
    const rnd = this.opts.random ?? ((max: number) => randomInt(max));
    // partial Fisher–Yates shuffle: the first `count` entries are a uniform random subset
    for (let i = 0; i < count; i++) {
      const j = i + rnd(all.length - i);
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    return all.slice(0, count);
  }

  private async readPacks(packs: number[], report: (p: CheckProblem) => void): Promise<void> {
    const { start, order } = this.index.byPack();
    const limit = Math.max(1, Math.min(4, this.opts.concurrency ?? 2));
    const sizes = this.index.packSizes();
    // Packs are read into recycled buffers: a fresh ~17 MiB buffer per pack is fresh pages to fault
    // in (measured: 850 MB of page faults for a 930 MB repository) and garbage-collection pressure.
    const buffers = new BufferPool(limit * PACK_BUFFER_MAX);
    let next = 0;
    const worker = async () => {
      while (next < packs.length) {
        this.opts.signal?.throwIfAborted();
        const p = packs[next++]!;
        const entries: number[] = [];
        for (let i = start[p]!; i < start[p + 1]!; i++) entries.push(order[i]!);
        const into = sizes[p]! <= PACK_BUFFER_MAX ? buffers.take(sizes[p]!) : undefined;
        try {
          await this.readPack(p, entries, into, report);
        } finally {
          if (into) buffers.give(into);
        }
        this.result.packsRead++;
      }
    };
    await Promise.all(Array.from({ length: limit }, worker));
  }

  /** --read-data for one pack: layout, SHA-256 of the file, every blob, and the header against the index. */
  private async readPack(p: number, entries: number[], into: Buffer | undefined, report: (p: CheckProblem) => void): Promise<void> {
    const index = this.index;
    const packId = index.packId(p);
    const err = (kind: ProblemKind, message: string, extra: Partial<CheckProblem> = {}) => report({ severity: 'error', kind, message: `pack ${packId}: ${message}`, pack: packId, ...extra });
    // entries come from byPack(): by offset
    let end = 0;
    let gaps = false;
    for (const e of entries) {
      if (index.entryOffset(e) !== end) gaps = true;
      end = index.entryOffset(e) + index.entryLength(e);
    }
    if (gaps) err('pack-layout', 'index for pack contains gaps / overlapping blobs');
    let data: Buffer;
    try {
      // a file larger than the index says (damage) does not fit `into` and gets its own buffer
      data = await this.repo.backend.load({ type: 'pack', name: packId }, 0, undefined, into);
    } catch (e) {
      err('pack-unreadable', `failed to download: ${errorMessage(e)}`);
      for (const x of entries) this.damagedEntry[x] = 1;
      return;
    }
    const hash = native.blobKernels === 'native' ? await native.sha256(data) : createHash('sha256').update(data).digest('hex');
    if (hash !== packId) err('pack-hash', `pack ID does not match, want ${packId}, got ${hash} (the file content is damaged)`);
    const inside: number[] = [];
    for (const e of entries) {
      const loc = index.location(e);
      if (loc.offset + loc.length <= data.length) {
        inside.push(e);
        continue;
      }
      const h = index.entryHandle(e);
      const id = index.handleId(h);
      const type = typeName(index.handleType(h));
      this.damagedEntry[e] = 1;
      err('blob-damaged', `${type} blob ${id}: beyond the end of the file (offset ${loc.offset}, length ${loc.length}, file size ${data.length})`, { blob: id, blobType: type });
    }
    const items = inside.map((e) => {
      const loc = index.location(e);
      return { id: index.handleId(index.entryHandle(e)), loc, sealed: data.subarray(loc.offset, loc.offset + loc.length) };
    });
    const verdicts = await this.verifier.verifyMany(items);
    for (const [k, e] of inside.entries()) {
      const x = verdicts[k];
      if (x === null) continue;
      const h = index.entryHandle(e);
      const id = index.handleId(h);
      const type = typeName(index.handleType(h));
      this.damagedEntry[e] = 1;
      err('blob-damaged', `${type} blob ${id} at offset ${items[k]!.loc.offset}: ${errorMessage(x).replace(`${type} blob ${id} in pack ${packId}: `, '')}`, { blob: id, blobType: type });
    }
    // the header at the end of the file must describe exactly what the index says
    try {
      const hlen = parseTrailer(data.subarray(data.length - 4), data.length);
      const plain = this.repo.sealer.open(data.subarray(data.length - 4 - hlen, data.length - 4), `pack ${packId} header`);
      const header = decodePackHeader(plain, this.repo.version);
      let expectedHeader = 32;
      for (const e of entries) expectedHeader += index.entryUlen(e) ? COMPRESSED_ENTRY_SIZE : PLAIN_ENTRY_SIZE;
      if (hlen !== expectedHeader) err('pack-header', `pack header size does not match, want ${expectedHeader}, got ${hlen}`);
      for (const b of header) {
        const h = index.find(b.type, b.id);
        let ok = false;
        if (h >= 0) {
          for (let e = index.firstEntry(h); e >= 0 && !ok; e = index.nextEntry(e)) {
            ok = index.entryPack(e) === p && index.entryOffset(e) === b.offset && index.entryLength(e) === b.length && index.entryUlen(e) === (b.uncompressedLength ?? 0);
          }
        }
        if (!ok) err('pack-header', `${b.type} blob ${b.id} is not contained in index or position is incorrect`, { blob: b.id, blobType: b.type });
      }
    } catch (e) {
      err('pack-header', `header: ${errorMessage(e).replace(`pack ${packId} header: `, '')}`);
    }
  }

  /**
   * Lists, per snapshot, the files and directories that use a blob without any readable copy.
   * Trees are scanned once to learn whether they contain damage; only damaged subtrees are
   * walked again for each snapshot.
   */
  private async findAffected(snapshots: SnapshotEntry[]): Promise<void> {
    const index = this.index;
    const bad = new Uint8Array(index.handleCount);
    let any = false;
    for (let h = 0; h < index.handleCount; h++) {
      let all = true;
      for (let e = index.firstEntry(h); e >= 0 && all; e = index.nextEntry(e)) all = this.damagedEntry[e] === 1;
      if (all && index.firstEntry(h) >= 0) {
        bad[h] = 1;
        any = true;
      }
    }
    if (!any) return;
    this.msg('finding files that use damaged data');
    const loader = new BlobLoader(this.repo, index);
    // 0 = unknown, 1 = clean, 2 = contains damage, 3 = cannot be read (reported by the structure check)
    const state = new Uint8Array(index.handleCount);
    const perBlob = new Map<number, number>();
    const packsOf = (h: number) => index.entriesOf(h).map((e) => index.packId(index.entryPack(e)));
    const load = async (h: number): Promise<TreeNode[] | undefined> => {
      try {
        return await loader.loadTree(index.handleId(h));
      } catch {
        return undefined;
      }
    };
    const scan = async (h: number): Promise<boolean> => {
      if (state[h]) return state[h] === 2;
      if (bad[h]) {
        state[h] = 2;
        return true;
      }
      const nodes = await load(h);
      if (!nodes) {
        state[h] = 3;
        return false;
      }
      let damaged = false;
      for (const n of nodes) {
        if (n.type === 'file' && n.content) {
          for (const id of n.content) {
            const d = index.find(DATA, id);
            if (d >= 0 && bad[d]) damaged = true;
          }
        } else if (n.type === 'dir' && n.subtree) {
          const t = index.find(TREE, n.subtree);
          if (t >= 0 && (await scan(t))) damaged = true;
        }
      }
      state[h] = damaged ? 2 : 1;
      return damaged;
    };
    const emit = (snapshot: Id, path: string, h: number) => {
      if (this.result.affected.length >= MAX_AFFECTED) return;
      const n = perBlob.get(h) ?? 0;
      if (n >= MAX_AFFECTED_PER_BLOB) return;
      perBlob.set(h, n + 1);
      const a: AffectedItem = { snapshot, path, blob: index.handleId(h), blobType: typeName(index.handleType(h)), packs: packsOf(h) };
      this.result.affected.push(a);
      this.opts.onAffected?.(a);
    };
    const list = async (snapshot: Id, h: number, path: string): Promise<void> => {
      if (bad[h]) {
        emit(snapshot, path, h);
        return;
      }
      const nodes = await load(h);
      if (!nodes) return;
      for (const n of nodes) {
        const p = joinPath(path, n.name.toString('utf8'));
        if (n.type === 'file' && n.content) {
          const seen = new Set<number>();
          for (const id of n.content) {
            const d = index.find(DATA, id);
            if (d >= 0 && bad[d] && !seen.has(d)) {
              seen.add(d);
              emit(snapshot, p, d);
            }
          }
        } else if (n.type === 'dir' && n.subtree) {
          const t = index.find(TREE, n.subtree);
          if (t >= 0 && state[t] === 2) await list(snapshot, t, p);
        }
      }
    };
    for (const s of snapshots) {
      const root = index.find(TREE, s.snapshot.tree);
      if (root < 0) continue;
      if (await scan(root)) await list(s.id, root, '/');
      if (this.result.affected.length >= MAX_AFFECTED) break;
    }
  }
}
