/**
 * The native API (src/native/api.ts) takes paths as JavaScript strings, which the addon encodes as
 * UTF-8. File names are bytes, so a path that is not valid UTF-8 cannot be passed as it is. This
 * module turns a byte path into a string the native calls can use, without following a final
 * symlink and without changing the meaning of the path:
 *
 *  1. valid UTF-8 → the path itself;
 *  2. only the directory part is not UTF-8 → `/proc/<pid>/fd/<fd of the directory>/<name>`
 *     (the kernel follows the /proc magic link to the directory we opened; the final component is
 *     still looked up with the native call's own nofollow semantics);
 *  3. the final component itself is not UTF-8 and the entry is a directory →
 *     `/proc/<pid>/fd/<fd of the directory itself>/.`;
 *  4. otherwise no string can name it. Callers that may rename
 *     (the restorer) pass `renameFallback`: the entry is renamed to a temporary UTF-8 name in the
 *     same directory for the duration of the call and renamed back afterwards. Callers that must
 *     not touch the entry (backup) get a CairnError('UNSUPPORTED').
 */
import { promises as fsp, constants as C } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { CairnError } from '../core/errors.js';
import { baseName, dirName, displayPath, isUtf8Path, joinPath } from './path.js';

let tmpCounter = 0;

/**
 * /proc/<our pid>/fd rather than /proc/self/fd: the TypeScript fallback of the native API runs
 * command-line tools in child processes, for which /proc/self would be the child.
 */
function procFdDir(): string {
  return `/proc/${process.pid}/fd`;
}

/** A fresh, recognisable temporary file name (valid UTF-8, no slashes). */
export function tempName(): string {
  tmpCounter = (tmpCounter + 1) % 0x7fffffff;
  return `.cairn-tmp-${process.pid}-${tmpCounter}-${randomBytes(4).toString('hex')}`;
}

export interface NativePathOptions {
  /**
   * The entry is known to be a directory: a non-UTF-8 final name is then addressed as
   * `/proc/<pid>/fd/<fd of the directory itself>/.` (opened with O_NOFOLLOW), without renaming.
   */
  isDir?: boolean;
  /** Allow renaming the entry to a temporary UTF-8 name while `fn` runs (restore side only). */
  renameFallback?: boolean;
}

/** Runs `fn` with a string path that names the same file-system entry as `p` (see module doc). */
export async function withNativePath<T>(p: Buffer, fn: (path: string) => T | Promise<T>, opts: NativePathOptions = {}): Promise<T> {
  if (isUtf8Path(p) && !p.includes(0)) return await fn(p.toString('utf8'));
  const name = baseName(p);
  const dir = dirName(p);
  if (isUtf8Path(name)) {
    const dh = await fsp.open(dir, C.O_RDONLY | C.O_DIRECTORY);
    try {
      return await fn(`${procFdDir()}/${dh.fd}/${name.toString('utf8')}`);
    } finally {
      await dh.close();
    }
  }
  if (opts.isDir) {
    const dh = await fsp.open(p, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
    try {
      return await fn(`${procFdDir()}/${dh.fd}/.`);
    } finally {
      await dh.close();
    }
  }
  if (!opts.renameFallback) {
    throw new CairnError(
      'UNSUPPORTED',
      `${displayPath(p)}: the native interface cannot address a file name that is not valid UTF-8`,
      { object: displayPath(p) },
    );
  }
  const tmp = joinPath(dir, tempName());
  await fsp.rename(p, tmp);
  try {
    return await withNativePath(tmp, fn);
  } finally {
    await fsp.rename(tmp, p);
  }
}

/**
 * Like withNativePath, for calls that create the entry (mknod, mkfifo): when the final name is not
 * UTF-8 the entry is created under a temporary name and then moved into place. With
 * `replace` false an existing entry at `p` makes the move fail with EEXIST (link + unlink, so
 * nothing is replaced); with `replace` true an existing non-directory is atomically replaced.
 */
export async function createViaNativePath(p: Buffer, create: (path: string) => void, replace: boolean): Promise<void> {
  const name = baseName(p);
  if (isUtf8Path(name) && !name.includes(0)) {
    await withNativePath(p, create);
    return;
  }
  const tmp = joinPath(dirName(p), tempName());
  await withNativePath(tmp, create);
  try {
    if (replace) {
      await fsp.rename(tmp, p);
    } else {
      await fsp.link(tmp, p);
      await fsp.unlink(tmp);
    }
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
}
