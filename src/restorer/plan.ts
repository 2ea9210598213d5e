import type { Id } from '../core/ids.js';
import type { TreeNode } from '../format/tree.js';

/** One entry to restore, with its path below the target as raw name components. */
export interface PlannedEntry {
  rel: Buffer[];
  node: TreeNode;
  /** For hard links: the entry (index into entries) this one links to. */
  linkTo?: number;
  /** Content blobs still to be written (files only). */
  remaining: number;
}

/** Where one blob of a pack must be written. */
export interface BlobTarget {
  entry: number;
  fileOffset: number;
}

export interface PlannedBlob {
  id: Id;
  offset: number;
  length: number;
  uncompressedLength?: number;
  plainLength: number;
  targets: BlobTarget[];
}

export interface RestorePlan {
  entries: PlannedEntry[];
  /** Pack ID → the blobs to read from it (sorted by offset). */
  packs: Map<Id, PlannedBlob[]>;
  totalFiles: number;
  totalBytes: number;
}

export function relString(rel: Buffer[]): string {
  return Buffer.concat(rel.flatMap((c, i) => (i === 0 ? [c] : [Buffer.from('/'), c]))).toString('utf8');
}
