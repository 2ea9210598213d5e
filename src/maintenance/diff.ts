/**
 * diff (restic 0.14 cmd/restic/cmd_diff.go): changes from one snapshot to another.
 * Markers: `+` added, `-` removed, `M` file content modified, `T` type changed, `U` metadata
 * changed (only with `metadata`). Directories end in `/`.
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { parseTime } from '../format/time.js';
import type { TreeNode } from '../format/tree.js';
import { CompactIndex, DATA, TREE } from '../repository/compact-index.js';
import { RepoLock } from '../repository/lock.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots, type SnapshotEntry } from '../repository/snapshots.js';
import { BlobLoader } from './walk.js';

export interface DiffChange {
  path: string;
  modifier: string;
}

export interface DiffStat {
  files: number;
  dirs: number;
  others: number;
  dataBlobs: number;
  treeBlobs: number;
  bytes: number;
}

export interface DiffResult {
  sourceSnapshot: Id;
  targetSnapshot: Id;
  changedFiles: number;
  added: DiffStat;
  removed: DiffStat;
  warnings: string[];
}

export interface DiffOptions {
  metadata?: boolean;
  noLock?: boolean;
  retryLockMs?: number;
  signal?: AbortSignal;
  /** Called once both snapshots are resolved, before the first change. */
  onStart?: (snapshot1: Id, snapshot2: Id) => void;
  /** Each change as it is found (in restic's order). */
  onChange?: (c: DiffChange) => void;
}

const newStat = (): DiffStat => ({ files: 0, dirs: 0, others: 0, dataBlobs: 0, treeBlobs: 0, bytes: 0 });

function resolve(all: SnapshotEntry[], ref: string): SnapshotEntry {
  if (ref === 'latest') {
    const last = all[all.length - 1];
    if (!last) throw new CairnError('NOT_FOUND', 'no snapshot found', { object: 'snapshot latest' });
    return last;
  }
  const hits = all.filter((s) => s.id.startsWith(ref));
  if (hits.length === 0) throw new CairnError('NOT_FOUND', `no matching ID found for prefix "${ref}"`, { object: `snapshot ${ref}` });
  if (hits.length > 1) throw new CairnError('INVALID_ARGUMENT', `multiple IDs with prefix "${ref}" found`);
  return hits[0]!;
}

function sameTime(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return parseTime(a).ns === parseTime(b).ns;
  } catch {
    return false;
  }
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  if (a === null || b === null) return (a?.length ?? 0) === (b?.length ?? 0);
  return a.equals(b);
}

/** restic's Node.Equals. */
export function nodesEqual(a: TreeNode, b: TreeNode): boolean {
  if (!a.name.equals(b.name) || a.type !== b.type || (a.mode >>> 0) !== (b.mode >>> 0)) return false;
  if (!sameTime(a.mtime, b.mtime) || !sameTime(a.atime, b.atime) || !sameTime(a.ctime, b.ctime)) return false;
  if (a.uid !== b.uid || a.gid !== b.gid || (a.user ?? '') !== (b.user ?? '') || (a.group ?? '') !== (b.group ?? '')) return false;
  if ((a.inode ?? 0n) !== (b.inode ?? 0n) || (a.deviceId ?? 0n) !== (b.deviceId ?? 0n)) return false;
  if ((a.size ?? 0) !== (b.size ?? 0) || (a.links ?? 0) !== (b.links ?? 0) || (a.linktarget ?? '') !== (b.linktarget ?? '')) return false;
  if ((a.device ?? 0n) !== (b.device ?? 0n)) return false;
  if ((a.content === null) !== (b.content === null)) return false;
  if (a.content && b.content && (a.content.length !== b.content.length || a.content.some((id, i) => id !== b.content![i]))) return false;
  const xa = a.extendedAttributes ?? [];
  const xb = b.extendedAttributes ?? [];
  if (xa.length !== xb.length) return false;
  const m = new Map(xa.map((x) => [x.name, x.value]));
  const present = new Set<string>();
  for (const x of xb) {
    if (!m.has(x.name) || !sameBytes(m.get(x.name)!, x.value)) return false;
    present.add(x.name);
  }
  if ([...m.keys()].some((k) => !present.has(k))) return false;
  if ((a.subtree ?? null) !== (b.subtree ?? null)) return false;
  return (a.error ?? '') === (b.error ?? '');
}

/** path.Join of restic: clean slash-separated path. */
function join(prefix: string, name: string): string {
  const parts: string[] = [];
  for (const c of `${prefix}/${name}`.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  return '/' + parts.join('/');
}

export async function diff(repo: Repository, ref1: string, ref2: string, opts: DiffOptions = {}): Promise<DiffResult> {
  const lock = opts.noLock ? undefined : await RepoLock.acquire(repo, { exclusive: false, retryLockMs: opts.retryLockMs, signal: opts.signal });
  try {
    const all = await listSnapshots(repo, () => undefined);
    const sn1 = resolve(all, ref1);
    const sn2 = resolve(all, ref2);
    opts.onStart?.(sn1.id, sn2.id);
    const index = await CompactIndex.load(repo, { signal: opts.signal });
    const loader = new BlobLoader(repo, index);
    const emit = opts.onChange ?? (() => undefined);
    const result: DiffResult = { sourceSnapshot: ref1, targetSnapshot: ref2, changedFiles: 0, added: newStat(), removed: newStat(), warnings: [] };
    // blob sets as handle flags: before, after, common (unchanged subtrees)
    const before = new Uint8Array(index.handleCount);
    const after = new Uint8Array(index.handleCount);
    const common = new Uint8Array(index.handleCount);
    const unknown = { before: new Set<string>(), after: new Set<string>(), common: new Set<string>() };
    const add = (set: Uint8Array, which: keyof typeof unknown, type: number, id: Id) => {
      const h = index.find(type, id);
      if (h >= 0) set[h] = 1;
      else unknown[which].add(`${type}${id}`);
    };
    const addBlobs = (set: Uint8Array, which: keyof typeof unknown, n: TreeNode | undefined) => {
      if (!n) return;
      if (n.type === 'file') for (const id of n.content ?? []) add(set, which, DATA, id);
      else if (n.type === 'dir' && n.subtree) add(set, which, TREE, n.subtree);
    };
    const count = (s: DiffStat, n: TreeNode) => {
      if (n.type === 'file') s.files++;
      else if (n.type === 'dir') s.dirs++;
      else s.others++;
    };
    const warn = (e: unknown) => result.warnings.push((e as Error).message);
    const sortedNodes = async (id: Id) => (await loader.loadTree(id)).slice().sort((a, b) => Buffer.compare(a.name, b.name));

    const printDir = async (mode: string, stat: DiffStat, set: Uint8Array, which: 'before' | 'after', prefix: string, id: Id): Promise<void> => {
      for (const n of await loader.loadTree(id)) {
        let name = join(prefix, n.name.toString('utf8'));
        if (n.type === 'dir') name += '/';
        emit({ path: name, modifier: mode });
        count(stat, n);
        addBlobs(set, which, n);
        if (n.type === 'dir' && n.subtree) await printDir(mode, stat, set, which, name, n.subtree).catch(warn);
      }
    };
    const collectDir = async (id: Id): Promise<void> => {
      for (const n of await loader.loadTree(id)) {
        addBlobs(common, 'common', n);
        if (n.type === 'dir' && n.subtree) await collectDir(n.subtree).catch(warn);
      }
    };
    const diffTree = async (prefix: string, id1: Id, id2: Id): Promise<void> => {
      const t1 = new Map<string, TreeNode>();
      const t2 = new Map<string, TreeNode>();
      const names = new Map<string, Buffer>();
      for (const n of await sortedNodes(id1)) {
        const k = n.name.toString('latin1');
        t1.set(k, n);
        names.set(k, n.name);
      }
      for (const n of await sortedNodes(id2)) {
        const k = n.name.toString('latin1');
        t2.set(k, n);
        names.set(k, n.name);
      }
      const keys = [...names.keys()].sort((a, b) => Buffer.compare(names.get(a)!, names.get(b)!));
      for (const k of keys) {
        const n1 = t1.get(k);
        const n2 = t2.get(k);
        const nameStr = names.get(k)!.toString('utf8');
        addBlobs(before, 'before', n1);
        addBlobs(after, 'after', n2);
        if (n1 && n2) {
          let name = join(prefix, nameStr);
          let mod = '';
          if (n1.type !== n2.type) mod += 'T';
          if (n2.type === 'dir') name += '/';
          const c1 = n1.content ?? [];
          const c2 = n2.content ?? [];
          if (n1.type === 'file' && n2.type === 'file' && (c1.length !== c2.length || c1.some((id, i) => id !== c2[i]) || (n1.content === null) !== (n2.content === null))) {
            mod += 'M';
            result.changedFiles++;
          } else if (opts.metadata && !nodesEqual(n1, n2)) mod += 'U';
          if (mod) emit({ path: name, modifier: mod });
          if (n1.type === 'dir' && n2.type === 'dir' && n1.subtree && n2.subtree) {
            if (n1.subtree === n2.subtree) await collectDir(n1.subtree).catch(warn);
            else await diffTree(name, n1.subtree, n2.subtree).catch(warn);
          }
        } else if (n1) {
          let p = join(prefix, nameStr);
          if (n1.type === 'dir') p += '/';
          emit({ path: p, modifier: '-' });
          count(result.removed, n1);
          if (n1.type === 'dir' && n1.subtree) await printDir('-', result.removed, before, 'before', p, n1.subtree).catch(warn);
        } else if (n2) {
          let p = join(prefix, nameStr);
          if (n2.type === 'dir') p += '/';
          emit({ path: p, modifier: '+' });
          count(result.added, n2);
          if (n2.type === 'dir' && n2.subtree) await printDir('+', result.added, after, 'after', p, n2.subtree).catch(warn);
        }
      }
    };
    add(before, 'before', TREE, sn1.snapshot.tree);
    add(after, 'after', TREE, sn2.snapshot.tree);
    await diffTree('/', sn1.snapshot.tree, sn2.snapshot.tree);
    // blobs only before (not after, not in unchanged subtrees) were removed, and vice versa
    for (let h = 0; h < index.handleCount; h++) {
      const b = before[h] && !after[h] && !common[h];
      const a = after[h] && !before[h] && !common[h];
      if (!a && !b) continue;
      const stat = a ? result.added : result.removed;
      if (index.handleType(h) === TREE) stat.treeBlobs++;
      else stat.dataBlobs++;
      stat.bytes += index.plainSize(h);
    }
    for (const [which, stat] of [['before', result.removed], ['after', result.added]] as const) {
      const other = which === 'before' ? unknown.after : unknown.before;
      for (const k of unknown[which]) {
        if (other.has(k) || unknown.common.has(k)) continue;
        if (k[0] === String(TREE)) stat.treeBlobs++;
        else stat.dataBlobs++;
        result.warnings.push(`unable to find blob size for ${k.slice(1)}`);
      }
    }
    return result;
  } finally {
    await lock?.release();
  }
}
