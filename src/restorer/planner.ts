import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import type { TreeNode } from '../format/tree.js';
import { RestorePlan } from './plan.js';
import type { RestoreOptions, RestorerRepo } from './restorer.js';

/** Subtrees loaded ahead of the walk, per directory being walked. */
const TREES_AHEAD = 16;

/** Hard-link identity of a node within one snapshot. */
function linkKey(n: TreeNode): string | undefined {
  if (n.type !== 'file' || !n.links || n.links < 2 || !n.inode) return undefined;
  return `${n.deviceId ?? 0n}:${n.inode}`;
}

/**
 * Plans a restore: walks the tree, decides what to restore, and groups every needed data blob by
 * pack so each pack is read once. Blob order inside a pack follows pack offsets. Entries are kept
 * in the order they are restored in: tree order, except that a directory only walked through on
 * the way to included entries comes after them (see below). Decoded trees are dropped as soon as
 * their entries are recorded: the plan keeps only what the restore needs (see EntryTable).
 */
export async function planRestore(repo: RestorerRepo, root: Id, opts: Pick<RestoreOptions, 'filter' | 'signal'>): Promise<RestorePlan> {
  const plan = new RestorePlan();
  const links = new Map<string, number>();

  const walk = async (tree: Promise<TreeNode[]>, dirNode: number, prefix: string): Promise<void> => {
    opts.signal?.throwIfAborted();
    const nodes = await tree;
    // only filters, directories and error messages need the path as text
    const pathOf = (node: TreeNode) => `${prefix}/${node.name.toString('utf8')}`;
    const decisions = nodes.map((node) => (opts.filter ? opts.filter(pathOf(node), node) : 'include'));
    // Subtrees load TREES_AHEAD directories ahead of the walk: one after the other, each a pack
    // read and a thread-pool round trip, they were most of the planning time.
    const subdirs: number[] = [];
    nodes.forEach((node, k) => {
      if (node.type === 'dir' && node.subtree && decisions[k] !== 'exclude') subdirs.push(k);
    });
    const loads = new Map<number, Promise<TreeNode[]>>();
    let next = 0;
    const loadAhead = (upTo: number) => {
      for (; next < subdirs.length && next < upTo; next++) {
        const k = subdirs[next]!;
        const p = repo.loadTree(nodes[k]!.subtree!);
        p.catch(() => undefined); // reported when the walk gets there
        loads.set(k, p);
      }
    };
    loadAhead(TREES_AHEAD);
    let dirsSeen = 0;
    for (let k = 0; k < nodes.length; k++) {
      const node = nodes[k]!;
      const decision = decisions[k]!;
      const snapPath = () => pathOf(node);
      if (decision === 'exclude') continue;
      if (node.type === 'dir') {
        const own = plan.addDirNode(dirNode, node.name);
        const before = plan.entries.count;
        if (decision === 'include') plan.addEntry(own, node);
        const sub = loads.get(k);
        if (sub) {
          loads.delete(k);
          loadAhead(++dirsSeen + TREES_AHEAD);
          await walk(sub, own, snapPath());
        }
        // A directory only walked through on the way to included entries is restored (with its
        // metadata) when something below it was; entries are created parents-first by mkdirp.
        if (decision === 'descend' && plan.entries.count > before) plan.addEntry(own, node);
        continue;
      }
      if (decision !== 'include') continue;
      const idx = plan.addEntry(dirNode, node);
      if (node.type !== 'file') continue;
      const lk = linkKey(node);
      if (lk !== undefined) {
        const first = links.get(lk);
        if (first !== undefined) {
          plan.setLink(idx, first, node.content ?? []);
          continue;
        }
        links.set(lk, idx);
      }
      plan.totalFiles++;
      let offset = 0;
      for (const id of node.content ?? []) {
        let b = plan.blobs.find(id);
        if (b < 0) {
          const loc = repo.lookupData(id)[0];
          if (!loc) throw new CairnError('CORRUPT', `data blob ${id} of ${snapPath()} is not in the index`, { object: snapPath() });
          b = plan.blobs.add(id, loc);
        }
        offset += plan.addContent(idx, b, offset);
      }
      plan.totalBytes += offset;
    }
  };
  await walk(repo.loadTree(root), -1, '');
  return plan.finish();
}
