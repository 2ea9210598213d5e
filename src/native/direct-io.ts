/**
 * Where cairn writes with O_DIRECT (pack spool files of the local backend, the bulk of large
 * restored files): only where the addon can allocate aligned memory and the file system's
 * O_DIRECT is plain local block I/O — ext2/3/4 and XFS (statfs f_type). Elsewhere (network file
 * systems, where it means uncached round trips; btrfs, FUSE, overlay, tmpfs) the page cache is
 * used as always. A file system that still refuses (EINVAL) is handled by the callers.
 */
import { constants as fsc, statfsSync } from 'node:fs';
import { native } from './index.js';

const DIRECT_FS_TYPES = new Set([0xef53, 0x58465342]);

/** True when writes below `dir` (an existing directory) may use O_DIRECT. */
export function directIoFileSystem(dir: string): boolean {
  if (native.alignedBuffer === undefined || typeof fsc.O_DIRECT !== 'number' || process.platform !== 'linux') return false;
  try {
    return DIRECT_FS_TYPES.has(Number(statfsSync(dir).type));
  } catch {
    return false;
  }
}
