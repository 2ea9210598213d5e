/**
 * A restore plan: the entries to restore in restore order (EntryTable) and the data blobs to
 * write into them, grouped by pack (BlobTable). Built by planRestore (or by hand in tests) with
 * addDirNode / addEntry / addContent / setLink, then finish(); read by executeRestore.
 */
import type { Id } from '../core/ids.js';
import type { TreeNode } from '../format/tree.js';
import { BlobTable } from './blob-table.js';
import { EntryTable } from './entry-table.js';

export { Kind, relString } from './entry-table.js';
export type { BlobLoc } from './blob-table.js';

export class RestorePlan {
  readonly entries = new EntryTable();
  readonly blobs = new BlobTable();
  /** Files whose content is restored (hard links to an earlier file not counted). */
  totalFiles = 0;
  /** Their bytes. */
  totalBytes = 0;

  /** A directory the walk passes through (`parent` -1: the target); see EntryTable.addDirNode. */
  addDirNode(parent: number, name: Buffer): number {
    return this.entries.addDirNode(parent, name);
  }

  /** Appends an entry for `node` in dir node `dirNode` (a directory's own); returns its number. */
  addEntry(dirNode: number, node: TreeNode): number {
    return this.entries.add(dirNode, node);
  }

  /**
   * Appends blob b (from blobs.find / blobs.add) to the content of file entry i, at `fileOffset`.
   * A file's blobs are added in order, before the next file's. Returns the blob's plaintext length.
   */
  addContent(i: number, b: number, fileOffset: number): number {
    this.entries.addRef(i, this.blobs.addRef(b, i, fileOffset));
    return this.blobs.plainLength(b);
  }

  /**
   * Makes file entry i a hard link to entry `to` (restored once `to` is complete). `content` is
   * the link's own list of blob IDs (for --verify): kept only when it is not `to`'s (as it
   * always is unless the file changed while the snapshot was taken).
   */
  setLink(i: number, to: number, content: readonly Id[]): void {
    const theirs = this.contentIds(to);
    const same = content.length === theirs.length && content.every((id, k) => id === theirs[k]);
    this.entries.setLink(i, to, same ? undefined : content);
  }

  /** Ends planning (see BlobTable.finish); entries and blobs can no longer be added. */
  finish(): this {
    this.blobs.finish();
    return this;
  }

  /** The content blob IDs of file entry i, in file order. */
  contentIds(i: number): Id[] {
    const own = this.entries.linkContent(i);
    if (own !== undefined) return [...own];
    const to = this.entries.linkTo(i);
    if (to >= 0) return this.contentIds(to);
    const start = this.entries.refStartOf(i);
    const n = this.entries.refCountOf(i);
    const ids = new Array<Id>(n);
    for (let k = 0; k < n; k++) ids[k] = this.blobs.id(this.blobs.refBlobOf(start + k));
    return ids;
  }

  /** Bytes the plan holds (approximately), for tests and diagnostics. */
  get bytesHeld(): number {
    return this.entries.bytesHeld + this.blobs.bytesHeld;
  }
}
