import type { Id } from '../core/ids.js';
import { decodeTree } from '../format/tree.js';
import type { Repository } from '../repository/repository.js';
import { resolveTree } from './restore.js';

export interface SnapshotSize {
  snapshotId: Id;
  /** Logical size a restore writes (restic `stats` restore-size mode: hard links counted once). */
  totalSize: number;
  totalFiles: number;
}

/** Sums the file sizes of a snapshot by walking its trees (loads the index if needed). */
export async function snapshotSize(repo: Repository, ref: string, signal?: AbortSignal): Promise<SnapshotSize> {
  if (!repo.isIndexLoaded) await repo.loadIndex(signal);
  const { snapshotId, tree } = await resolveTree(repo, ref);
  const seenLinks = new Set<string>();
  let totalSize = 0;
  let totalFiles = 0;
  const walk = async (id: Id): Promise<void> => {
    signal?.throwIfAborted();
    for (const n of decodeTree(await repo.loadBlob('tree', id))) {
      if (n.type === 'dir' && n.subtree) await walk(n.subtree);
      else if (n.type === 'file') {
        if (n.links && n.links > 1 && n.inode) {
          const k = `${n.deviceId ?? 0n}:${n.inode}`;
          if (seenLinks.has(k)) continue;
          seenLinks.add(k);
        }
        totalFiles++;
        totalSize += n.size ?? 0;
      }
    }
  };
  await walk(tree);
  return { snapshotId, totalSize, totalFiles };
}
