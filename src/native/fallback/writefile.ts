/**
 * restoreFile / finishFile with node:fs and the command line tools (see ./fs.ts) — several
 * thread-pool round trips and, for extended attributes and nanosecond times, child processes,
 * where the addon does one job. Same steps, same results, same errors (native/README.md).
 *
 * Node has no fsetxattr or futimens with nanoseconds: both go through /proc/<pid>/fd/<fd>, which
 * setfattr and touch follow to the open file (never to whatever now has its name).
 */
import fs from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import { isCairnError } from '../../core/errors.js';
import type { FileMeta, FileMetaResult, FileMetaWarning, NativePath, RestoreFileOptions } from '../api.js';
import { fsetxattr, utimens } from './fs.js';
import { bool, codedError, int, rangeError, typeError } from './args.js';

const open = promisify(fs.open);
const close = promisify(fs.close);
const fstat = promisify(fs.fstat);
const ftruncate = promisify(fs.ftruncate);
const write = promisify(fs.write);
const fchown = promisify(fs.fchown);
const fchmod = promisify(fs.fchmod);

const C = fs.constants;
/** Holes (--sparse): all-zero blocks of this size, aligned to file offsets, are not written. */
const SPARSE_BLOCK = 4096;
const ZERO = Buffer.alloc(SPARSE_BLOCK);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const U32_MAX = 0xffffffff;

function i64(v: unknown, what: string): bigint {
  if (typeof v !== 'bigint') throw typeError(`${what} must be a bigint`);
  if (v < INT64_MIN || v > INT64_MAX) throw rangeError(`${what} must be in -2^63..2^63-1`);
  return v;
}

interface CheckedMeta {
  mode: number;
  owner?: { uid: number; gid: number };
  atimeNs: bigint;
  mtimeNs: bigint;
  xattrs: Array<{ name: string; value: Uint8Array }>;
}

/** The addon's argument checks, in its order (same error classes and codes). */
function checkMeta(m: FileMeta): CheckedMeta {
  const mode = int(m.mode, 'mode', 0, U32_MAX);
  let owner: CheckedMeta['owner'];
  if (m.owner !== undefined) owner = { uid: int(m.owner.uid, 'uid', 0, U32_MAX), gid: int(m.owner.gid, 'gid', 0, U32_MAX) };
  const atimeNs = i64(m.atimeNs, 'atimeNs');
  const mtimeNs = i64(m.mtimeNs, 'mtimeNs');
  const xattrs: CheckedMeta['xattrs'] = [];
  if (m.xattrs !== undefined && m.xattrs !== null) {
    if (!Array.isArray(m.xattrs)) throw typeError('xattrs must be an array of { name, value }');
    for (const x of m.xattrs as unknown[]) {
      if (x === null || typeof x !== 'object') throw typeError('xattrs must be an array of { name, value }');
      const { name, value } = x as { name: unknown; value: unknown };
      if (typeof name !== 'string') throw typeError('xattr name must be a string');
      if (name.includes('\0')) throw Object.assign(new TypeError('xattr name must be a string without null bytes'), { code: 'ERR_INVALID_ARG_VALUE' });
      if (name === '') throw Object.assign(new TypeError('xattr name must be a non-empty string'), { code: 'ERR_INVALID_ARG_VALUE' });
      if (!(value instanceof Uint8Array)) throw typeError('xattr value must be a Uint8Array');
      xattrs.push({ name, value });
    }
  }
  return { mode, owner, atimeNs, mtimeNs, xattrs };
}

/** A path argument as restoreFile takes it: the value for fs calls and the string shown in errors. */
function checkPath(p: unknown): { fsPath: string | Buffer; shown: string } {
  if (typeof p === 'string') {
    if (p.includes('\0')) throw Object.assign(new TypeError('path must be a string without null bytes'), { code: 'ERR_INVALID_ARG_VALUE' });
    return { fsPath: p, shown: p };
  }
  if (!(p instanceof Uint8Array)) throw typeError('path must be a string or a Uint8Array');
  const raw = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (raw.includes(0)) throw Object.assign(new TypeError('path must be a path without null bytes'), { code: 'ERR_INVALID_ARG_VALUE' });
  return { fsPath: Buffer.from(raw), shown: raw.toString('utf8') };
}

const ERRNO = os.constants.errno as Record<string, number | undefined>;

/** An fs-style error (as the addon's): "<CODE>: <description>, <syscall>[ '<path>']", .code, .errno, .syscall[, .path]. */
function sysError(e: unknown, syscall: string, shown: string | undefined): NodeJS.ErrnoException {
  const code = (e as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
  const msg = e instanceof Error ? e.message : String(e);
  // Node's own messages are "<CODE>: <description>, <syscall> …": keep the description.
  const m = /^[A-Z0-9_]+: ([^,]*),/.exec(msg);
  const desc = m ? m[1] : msg;
  const err: NodeJS.ErrnoException = new Error(`${code}: ${desc}, ${syscall}${shown === undefined ? '' : ` '${shown}'`}`);
  err.code = code;
  const n = ERRNO[code];
  err.errno = n !== undefined ? -n : (e as NodeJS.ErrnoException | undefined)?.errno;
  err.syscall = syscall;
  if (shown !== undefined) err.path = shown;
  return err;
}

function warning(syscall: FileMetaWarning['syscall'], code: string, name?: string): FileMetaWarning {
  const w: FileMetaWarning = { syscall, code, errno: -(ERRNO[code] ?? 0) };
  if (name !== undefined) w.name = name;
  return w;
}

async function writeAll(fd: number, b: Uint8Array, position: number, shown: string): Promise<void> {
  let off = 0;
  while (off < b.length) {
    let n: number;
    try {
      ({ bytesWritten: n } = await write(fd, b, off, b.length - off, position + off));
    } catch (e) {
      throw sysError(e, 'write', shown);
    }
    if (n <= 0) throw sysError({ code: 'EIO' }, 'write', shown);
    off += n;
  }
}

/** Runs of blocks that are not all zero are written; a trailing hole is made by ftruncate. */
async function writeSparse(fd: number, data: Uint8Array, shown: string): Promise<void> {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let run = -1;
  for (let i = 0; i < b.length; i += SPARSE_BLOCK) {
    const end = Math.min(b.length, i + SPARSE_BLOCK);
    const zero = b.subarray(i, end).equals(end - i === SPARSE_BLOCK ? ZERO : ZERO.subarray(0, end - i));
    if (zero) {
      if (run >= 0) await writeAll(fd, b.subarray(run, i), run, shown);
      run = -1;
    } else if (run < 0) {
      run = i;
    }
  }
  if (run >= 0) {
    await writeAll(fd, b.subarray(run), run, shown);
  } else if (b.length > 0) {
    try {
      await ftruncate(fd, b.length);
    } catch (e) {
      throw sysError(e, 'ftruncate', shown);
    }
  }
}

/** fchown (EPERM/EACCES/EINVAL: warning), fchmod, fsetxattr (failures: warnings), futimens. */
async function applyMeta(fd: number, m: CheckedMeta, shown: string | undefined): Promise<FileMetaResult> {
  const warnings: FileMetaWarning[] = [];
  if (m.owner !== undefined) {
    try {
      await fchown(fd, m.owner.uid, m.owner.gid);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EPERM' && code !== 'EACCES' && code !== 'EINVAL') throw sysError(e, 'fchown', shown);
      warnings.push(warning('fchown', code));
    }
  }
  try {
    await fchmod(fd, m.mode & 0o7777);
  } catch (e) {
    throw sysError(e, 'fchmod', shown);
  }
  for (const x of m.xattrs) {
    try {
      fsetxattr(fd, x.name, x.value);
    } catch (e) {
      // without setfattr installed the attribute cannot be set either: a warning, as ENOTSUP
      warnings.push(warning('fsetxattr', isCairnError(e, 'UNSUPPORTED') ? 'ENOTSUP' : ((e as NodeJS.ErrnoException).code ?? 'EIO'), x.name));
    }
  }
  try {
    utimens(`/proc/${process.pid}/fd/${fd}`, m.atimeNs, m.mtimeNs, false);
  } catch (e) {
    if (isCairnError(e, 'UNSUPPORTED')) throw e;
    throw sysError(e, 'futimens', shown);
  }
  return { warnings };
}

export async function restoreFile(path: NativePath, data: Uint8Array | null, o: RestoreFileOptions): Promise<FileMetaResult> {
  const { fsPath, shown } = checkPath(path);
  if (data !== null && data !== undefined && !(data instanceof Uint8Array)) throw typeError('data must be a Uint8Array');
  const truncate = bool(o.truncate, 'truncate');
  const sparse = bool(o.sparse ?? false, 'sparse');
  const m = checkMeta(o);
  const flags = C.O_WRONLY | C.O_CREAT | C.O_NOFOLLOW | C.O_NONBLOCK | (truncate ? 0 : C.O_EXCL);
  let fd: number;
  try {
    fd = await open(fsPath, flags, 0o600);
  } catch (e) {
    throw sysError(e, 'open', shown);
  }
  let ok = false;
  try {
    let st: fs.BigIntStats;
    try {
      st = await fstat(fd, { bigint: true });
    } catch (e) {
      throw sysError(e, 'fstat', shown);
    }
    if (!st.isFile()) throw codedError('ERR_CAIRN_NOT_REGULAR', 'is not a regular file', shown);
    if (truncate && st.nlink !== 1n) throw codedError('ERR_CAIRN_LINKED', 'has other hard links', shown);
    if (truncate && st.size !== 0n) {
      try {
        await ftruncate(fd, 0);
      } catch (e) {
        throw sysError(e, 'ftruncate', shown);
      }
    }
    const bytes = data ?? new Uint8Array(0);
    if (sparse) await writeSparse(fd, bytes, shown);
    else await writeAll(fd, bytes, 0, shown);
    const r = await applyMeta(fd, m, shown);
    ok = true;
    return r;
  } finally {
    try {
      await close(fd);
    } catch (e) {
      // a failed close of a file that was otherwise restored is an error (as in the addon)
      if (ok) throw sysError(e, 'close', shown);
    }
  }
}

export async function finishFile(fd: number, meta: FileMeta): Promise<FileMetaResult> {
  const n = int(fd, 'fd', 0, 0x7fffffff);
  const m = checkMeta(meta);
  return applyMeta(n, m, undefined);
}

/** finishDir(): open(O_RDONLY | O_DIRECTORY | O_NOFOLLOW), finishFile's steps, close. */
export async function finishDir(path: NativePath, meta: FileMeta): Promise<FileMetaResult> {
  const { fsPath, shown } = checkPath(path);
  const m = checkMeta(meta);
  let fd: number;
  try {
    fd = await open(fsPath, C.O_RDONLY | C.O_DIRECTORY | C.O_NOFOLLOW);
  } catch (e) {
    throw sysError(e, 'open', shown);
  }
  try {
    return await applyMeta(fd, m, shown);
  } finally {
    await close(fd).catch(() => undefined);
  }
}

