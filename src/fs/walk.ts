/**
 * Directory listing for the archiver, which drives the recursion itself.
 */
import { promises as fsp } from 'node:fs';
import { fsError } from '../core/errors.js';
import { displayPath, toPathBuffer } from './path.js';

/** Compares names by their raw bytes (restic's tree order; not JS string order). */
export function compareNames(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * The names in `dir` (without `.` and `..`), as raw bytes, sorted by unsigned byte order.
 * Like readdir(3) it follows a symlink at `dir`; the archiver lstat()s an entry before descending.
 */
export async function readDirSorted(dir: Buffer | string): Promise<Buffer[]> {
  const p = toPathBuffer(dir);
  let names: Buffer[];
  try {
    names = await fsp.readdir(p, { encoding: 'buffer' });
  } catch (e) {
    throw fsError(e, displayPath(p), 'reading directory');
  }
  names.sort(Buffer.compare);
  return names;
}

/**
 * True when a child entry lives on a different file system than its parent directory (a mount
 * point), given both st_dev values. Used for `--one-file-system`.
 */
export function crossesFs(parentDev: bigint, childDev: bigint): boolean {
  return parentDev !== childDev;
}
