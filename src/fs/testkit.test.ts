/** Shared helpers for the fs/ tests (not a test file itself). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errnoCode, isCairnError } from '../core/errors.js';
import { native } from '../native/index.js';

export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `cairn-${prefix}-`));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;

/** Bytes of a file name that is not valid UTF-8. */
export const BAD_NAME = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74]); // "bad\xff\xfe.txt"

/**
 * Whether user.* extended attributes work in `dir` (file system and native API); returns the
 * reason when not, so that tests skip only the xattr assertions.
 */
export async function xattrSupport(dir: string): Promise<string | undefined> {
  const probe = path.join(dir, '.xattr-probe');
  await writeFile(probe, '');
  try {
    native.lsetxattr(probe, 'user.cairn.probe', Buffer.from('1'));
    return undefined;
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return `file system at ${dir} does not support user xattrs (${code})`;
    // the TypeScript fallback of the native API without the attr tools installed
    if (isCairnError(e, 'UNSUPPORTED')) return `extended attributes unavailable: ${(e as Error).message}`;
    throw e;
  } finally {
    await rm(probe, { force: true });
  }
}
