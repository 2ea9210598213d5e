import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { decodeTree, type TreeNode } from '../format/tree.js';
import { encodeConfig } from '../format/config.js';
import { encodeMasterKey } from '../format/keyfile.js';
import type { Repository } from '../repository/repository.js';
import { listSnapshots, matchesFilter, findSnapshot, type SnapshotEntry, type SnapshotFilter } from '../repository/snapshots.js';
import { resolveTree } from './restore.js';

export async function listSnapshotsFiltered(repo: Repository, filter: SnapshotFilter = {}): Promise<SnapshotEntry[]> {
  return (await listSnapshots(repo, (id, e) => repo.logger.warn('unreadable snapshot', { snapshot: id, error: (e as Error).message }))).filter((s) => matchesFilter(s.snapshot, filter));
}

export interface LsEntry {
  path: string;
  node: TreeNode;
}

/** Lists a snapshot's entries (paths absolute inside the snapshot), optionally below one directory. */
export async function listTree(repo: Repository, ref: string, dir?: string, recursive = true): Promise<{ snapshot: SnapshotEntry; entries: LsEntry[] }> {
  if (!repo.isIndexLoaded) await repo.loadIndex();
  const snapshot = await findSnapshot(repo, ref.split(':')[0]!);
  const { tree } = await resolveTree(repo, ref);
  const entries: LsEntry[] = [];
  const base = ref.includes(':') ? '/' + ref.slice(ref.indexOf(':') + 1).replace(/^\/+|\/+$/g, '') : '';
  const prefix = dir ? dir.replace(/\/+$/, '') : undefined;
  const walk = async (id: Id, at: string) => {
    for (const n of decodeTree(await repo.loadBlob('tree', id))) {
      const p = `${at === '/' ? '' : at}/${n.name.toString('utf8')}`;
      const inScope = !prefix || p === prefix || p.startsWith(prefix + '/') || prefix.startsWith(p + '/');
      if (!inScope) continue;
      if (!prefix || p === prefix || p.startsWith(prefix + '/')) entries.push({ path: p, node: n });
      if (n.type === 'dir' && n.subtree && (recursive || (prefix !== undefined && (prefix.startsWith(p + '/') || p === prefix)))) await walk(n.subtree, p);
    }
  };
  await walk(tree, base || '/');
  return { snapshot, entries };
}

export type CatKind = 'config' | 'masterkey' | 'key' | 'index' | 'snapshot' | 'lock' | 'pack' | 'blob' | 'tree';

/** Returns the decrypted content of a repository object (raw bytes for packs, like restic). */
export async function catObject(repo: Repository, kind: CatKind, ref?: string): Promise<Buffer> {
  const need = () => {
    if (!ref) throw new CairnError('INVALID_ARGUMENT', `cat ${kind} needs an ID`);
    return ref;
  };
  switch (kind) {
    case 'config':
      return encodeConfig(repo.config);
    case 'masterkey':
      return encodeMasterKey({ encrypt: repo.masterKey.encrypt, macK: repo.masterKey.macK, macR: repo.masterKey.macR });
    case 'key':
      return repo.backend.load({ type: 'key', name: await fullId(repo, 'key', need()) });
    case 'index':
    case 'snapshot':
    case 'lock':
      return repo.loadUnpacked(kind, await fullId(repo, kind, need()));
    case 'pack':
      return repo.backend.load({ type: 'pack', name: await fullId(repo, 'pack', need()) });
    case 'blob':
    case 'tree': {
      if (!repo.isIndexLoaded) await repo.loadIndex();
      if (kind === 'tree' && !/^[0-9a-f]{64}$/.test(need())) {
        const { tree } = await resolveTree(repo, need());
        return repo.loadBlob('tree', tree);
      }
      const id = need();
      if (kind === 'tree') return repo.loadBlob('tree', id);
      for (const t of ['data', 'tree'] as const) if (repo.index.has(t, id)) return repo.loadBlob(t, id);
      throw new CairnError('NOT_FOUND', `blob ${id} not found`, { object: `blob ${id}` });
    }
  }
}

async function fullId(repo: Repository, type: 'key' | 'index' | 'snapshot' | 'lock' | 'pack', prefix: string): Promise<Id> {
  if (/^[0-9a-f]{64}$/.test(prefix)) return prefix;
  if (type === 'snapshot' && prefix === 'latest') return (await findSnapshot(repo, 'latest')).id;
  const hits = (await repo.listIds(type)).filter((id) => id.startsWith(prefix));
  if (hits.length === 1) return hits[0]!;
  throw new CairnError(hits.length ? 'INVALID_ARGUMENT' : 'NOT_FOUND', hits.length ? `${type} ID ${prefix} is ambiguous` : `no ${type} with ID ${prefix}`);
}
