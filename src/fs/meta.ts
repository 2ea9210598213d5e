/**
 * File-system facts about one directory entry, as the archiver needs them to build a restic node
 * (spec §7.2): type, full st_mode, ownership, inode/device numbers, nanosecond times, symlink
 * target and extended attributes. Nothing here knows about trees or JSON.
 */
import { promises as fsp, readFileSync, statSync, constants as C, type BigIntStats } from 'node:fs';
import os from 'node:os';
import { CairnError, errnoCode, errorMessage, fsError } from '../core/errors.js';
import { Coalescer } from '../core/coalesce.js';
import { native } from '../native/index.js';
import { LSTAT_STRIDE, type LstatBatchResult } from '../native/api.js';
import { withNativePath } from './native-path.js';
import { displayPath, toPathBuffer } from './path.js';

export type FsEntryType = 'file' | 'dir' | 'symlink' | 'blockdev' | 'chardev' | 'fifo' | 'socket';

export interface FsXattr {
  name: string;
  value: Buffer;
}

export interface FsEntryMeta {
  type: FsEntryType;
  /** Full unix st_mode (type bits, setuid/setgid/sticky, permissions). */
  mode: number;
  uid: number;
  gid: number;
  inode: bigint;
  dev: bigint;
  rdev: bigint;
  nlink: number;
  size: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  /** Symlinks only: the target exactly as readlink returns it (bytes). */
  linkTarget?: Buffer;
  /**
   * Extended attributes in listxattr order. Undefined when not collected (opts.xattrs false, a
   * symlink, or collection failed — see xattrError); an empty array when there are none.
   */
  xattrs?: FsXattr[];
  /**
   * Set when xattrs were requested but could not be read (the entry itself is fine). The archiver
   * should report it as a warning for this path. ENOTSUP/ENODATA are not errors (no xattrs).
   */
  xattrError?: string;
}

/** The entry type of a unix st_mode. Unknown type bits are reported as an error by the caller. */
export function typeOfMode(mode: number): FsEntryType | undefined {
  switch (mode & C.S_IFMT) {
    case C.S_IFREG:
      return 'file';
    case C.S_IFDIR:
      return 'dir';
    case C.S_IFLNK:
      return 'symlink';
    case C.S_IFBLK:
      return 'blockdev';
    case C.S_IFCHR:
      return 'chardev';
    case C.S_IFIFO:
      return 'fifo';
    case C.S_IFSOCK:
      return 'socket';
    default:
      return undefined;
  }
}

/**
 * Builds an FsEntryMeta from a bigint lstat result the caller already has. `linkTarget` and
 * `xattrs` are taken as given (readMeta fills them in).
 */
export function metaFromStats(
  st: BigIntStats,
  extra: { linkTarget?: Buffer; xattrs?: FsXattr[]; xattrError?: string } = {},
  path?: Buffer | string,
): FsEntryMeta {
  const mode = Number(st.mode);
  const type = typeOfMode(mode);
  if (type === undefined) {
    const where = path === undefined ? 'entry' : displayPath(path);
    throw new CairnError('UNSUPPORTED', `${where}: unknown file type (st_mode 0${mode.toString(8)})`, {
      object: path === undefined ? undefined : displayPath(path),
    });
  }
  const m: FsEntryMeta = {
    type,
    mode,
    uid: Number(st.uid),
    gid: Number(st.gid),
    inode: st.ino,
    dev: st.dev,
    rdev: st.rdev,
    nlink: Number(st.nlink),
    size: Number(st.size),
    atimeNs: st.atimeNs,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
  };
  if (extra.linkTarget !== undefined) m.linkTarget = extra.linkTarget;
  if (extra.xattrs !== undefined) m.xattrs = extra.xattrs;
  if (extra.xattrError !== undefined) m.xattrError = extra.xattrError;
  return m;
}

/** errno codes that mean "this file system / entry has no extended attributes". */
const NO_XATTR_CODES = new Set(['ENOTSUP', 'EOPNOTSUPP', 'ENODATA', 'ENOATTR']);

/**
 * Reads the extended attributes of `path` without following a final symlink. Returns [] when the
 * file system does not support them (ENOTSUP) or reports ENODATA (restic does the same). Pass
 * `isDir` for directories (lets a directory whose own name is not UTF-8 be addressed).
 */
export async function readXattrs(path: Buffer | string, isDir = false): Promise<FsXattr[]> {
  const p = toPathBuffer(path);
  try {
    const list = await withNativePath(p, (s) => native.lgetxattrs(s), { isDir });
    return list.map((x: FsXattr) => ({ name: x.name, value: x.value }));
  } catch (e) {
    if (NO_XATTR_CODES.has(errnoCode(e) ?? '')) return [];
    throw e;
  }
}

/**
 * lstat + readlink + xattrs of one entry. Never follows a final symlink. xattrs are collected when
 * `opts.xattrs` is set, except for symlinks (restic does not collect them there); a failure to
 * read them does not fail the call (see FsEntryMeta.xattrError). With the addon, the lookups made
 * during one turn of the event loop share one thread-pool job (native lstatBatch); the result is
 * the same as readMetaSingle's.
 */
export async function readMeta(path: Buffer | string, opts: { xattrs: boolean }): Promise<FsEntryMeta> {
  const batcher = opts.xattrs ? metaBatchers.withXattrs : metaBatchers.plain;
  if (batcher === undefined) return readMetaSingle(path, opts);
  const p = toPathBuffer(path);
  try {
    return await batcher.submit(p);
  } catch (e) {
    // a path beyond PATH_MAX: the single-entry path knows how to address it
    if (errnoCode(e) === 'ENAMETOOLONG') return readMetaSingle(p, opts);
    throw e;
  }
}

/**
 * lstat + readlink + xattrs of one entry, one call at a time (the fallback of readMeta). Never follows a final symlink. xattrs are collected when
 * `opts.xattrs` is set, except for symlinks (restic does not collect them there); a failure to
 * read them does not fail the call (see FsEntryMeta.xattrError).
 */
export async function readMetaSingle(path: Buffer | string, opts: { xattrs: boolean }): Promise<FsEntryMeta> {
  const p = toPathBuffer(path);
  let st: BigIntStats;
  try {
    st = await fsp.lstat(p, { bigint: true });
  } catch (e) {
    throw fsError(e, displayPath(p), 'lstat');
  }
  const extra: { linkTarget?: Buffer; xattrs?: FsXattr[]; xattrError?: string } = {};
  const type = typeOfMode(Number(st.mode));
  if (type === 'symlink') {
    try {
      extra.linkTarget = await fsp.readlink(p, { encoding: 'buffer' });
    } catch (e) {
      throw fsError(e, displayPath(p), 'readlink');
    }
  } else if (opts.xattrs && type !== undefined) {
    try {
      extra.xattrs = await readXattrs(p, type === 'dir');
    } catch (e) {
      extra.xattrError = `reading extended attributes of ${displayPath(p)}: ${errorMessage(e)}`;
    }
  }
  return metaFromStats(st, extra, p);
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** A Node-style fs error for an errno the batch kernel reported. */
function errnoError(errno: number, syscall: string, p: Buffer): NodeJS.ErrnoException {
  const code = ERRNO_NAMES.get(errno) ?? 'UNKNOWN';
  return Object.assign(new Error(`${code}: ${syscall} failed, ${syscall} '${displayPath(p)}'`), { code, errno: -errno, syscall, path: displayPath(p) });
}

/** FsEntryMeta (or the error readMetaSingle would throw) of entry i of a batch result. */
function metaFromBatch(r: LstatBatchResult, i: number, p: Buffer, xattrsAsked: boolean): FsEntryMeta | Error {
  const v = r.nums;
  const o = i * LSTAT_STRIDE;
  const x = r.extra[i];
  const errno = Number(v[o]);
  if (errno !== 0) {
    const syscall = typeof x === 'string' ? x : 'lstat';
    return fsError(errnoError(errno, syscall, p), displayPath(p), syscall);
  }
  const mode = Number(v[o + 1]);
  const type = typeOfMode(mode);
  if (type === undefined) {
    return new CairnError('UNSUPPORTED', `${displayPath(p)}: unknown file type (st_mode 0${mode.toString(8)})`, { object: displayPath(p) });
  }
  const m: FsEntryMeta = {
    type,
    mode,
    uid: Number(v[o + 2]),
    gid: Number(v[o + 3]),
    inode: BigInt.asUintN(64, v[o + 4]!),
    dev: BigInt.asUintN(64, v[o + 5]!),
    rdev: BigInt.asUintN(64, v[o + 6]!),
    nlink: Number(v[o + 7]),
    size: Number(v[o + 8]),
    atimeNs: v[o + 9]!,
    mtimeNs: v[o + 10]!,
    ctimeNs: v[o + 11]!,
  };
  if (type === 'symlink') {
    m.linkTarget = Array.isArray(x) && x[0] !== undefined ? x[0] : Buffer.alloc(0);
  } else if (xattrsAsked) {
    const list = Array.isArray(x) ? x[1] : undefined;
    const xattrs: FsXattr[] = [];
    if (list !== undefined) for (let k = 0; k + 1 < list.length; k += 2) xattrs.push({ name: list[k] as string, value: list[k + 1] as Buffer });
    if (Array.isArray(x) && x[2] !== undefined) {
      const code = x[2];
      const syscall = x[3] ?? 'llistxattr';
      const errnoValue = (os.constants.errno as Record<string, number>)[code] ?? 0;
      m.xattrError = `reading extended attributes of ${displayPath(p)}: ${errnoError(errnoValue, syscall, p).message}`;
    } else {
      m.xattrs = xattrs;
    }
  }
  return m;
}

function metaBatcher(xattrs: boolean): Coalescer<Buffer, FsEntryMeta> | undefined {
  const batch = native.lstatBatch;
  if (batch === undefined) return undefined;
  return new Coalescer<Buffer, FsEntryMeta>(
    async (paths) => {
      const r = await batch(paths, xattrs);
      return paths.map((p, i) => metaFromBatch(r, i, p, xattrs));
    },
    // lookups are short: few jobs, large batches
    { maxBatch: 256, lanes: 1 },
  );
}

const metaBatchers = { withXattrs: metaBatcher(true), plain: metaBatcher(false) };

// ---------------------------------------------------------------------------------------------
// User and group names (restic uses the system user database: /etc/passwd and /etc/group).

interface ColonDb {
  path: string;
  byId: Map<number, string>;
  /** Identity of the file the map was built from (mtime and size), to notice edits. */
  stamp: string;
  checkedAt: number;
}

/** How often (ms) a long-running process re-checks whether /etc/passwd or /etc/group changed. */
const RECHECK_MS = 30_000;

const dbPaths = { passwd: '/etc/passwd', group: '/etc/group' };
const dbs: { passwd?: ColonDb; group?: ColonDb } = {};

/** Points the lookups at other files (tests, or a host's database mounted into a container). */
export function setUserDatabasePaths(paths: { passwd?: string; group?: string }): void {
  if (paths.passwd !== undefined) dbPaths.passwd = paths.passwd;
  if (paths.group !== undefined) dbPaths.group = paths.group;
  dbs.passwd = undefined;
  dbs.group = undefined;
}

function fileStamp(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.ino}:${st.mtimeNs}:${st.size}`;
  } catch {
    return 'missing';
  }
}

/**
 * Parses a colon-separated database. The name is field 0 and the numeric id is field 2; lines
 * that are blank, comments (#), NIS compat entries (+/-) or lack `minFields` fields are skipped;
 * the first entry for an id wins (like getpwuid on a plain files database).
 */
function parseColonFile(text: string, minFields: number): Map<number, string> {
  const byId = new Map<number, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line[0] === '#' || line[0] === '+' || line[0] === '-') continue;
    const fields = line.split(':');
    if (fields.length < minFields) continue;
    const idText = fields[2];
    if (!/^[0-9]+$/.test(idText)) continue;
    const id = Number(idText);
    if (!Number.isSafeInteger(id) || byId.has(id)) continue;
    byId.set(id, fields[0]);
  }
  return byId;
}

function loadDb(kind: 'passwd' | 'group'): ColonDb {
  const path = dbPaths[kind];
  const now = Date.now();
  const cur = dbs[kind];
  if (cur && cur.path === path && now - cur.checkedAt < RECHECK_MS) return cur;
  const stamp = fileStamp(path);
  if (cur && cur.path === path && cur.stamp === stamp) {
    cur.checkedAt = now;
    return cur;
  }
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    text = '';
  }
  const db: ColonDb = { path, byId: parseColonFile(text, kind === 'passwd' ? 6 : 4), stamp, checkedAt: now };
  dbs[kind] = db;
  return db;
}

/** The user name of `uid` from the user database, or "" when unknown. Cached. */
export function userName(uid: number): string {
  return loadDb('passwd').byId.get(uid) ?? '';
}

/** The group name of `gid` from the group database, or "" when unknown. Cached. */
export function groupName(gid: number): string {
  return loadDb('group').byId.get(gid) ?? '';
}

/**
 * The name of the user running this process (snapshot `username`): the database entry of the
 * real uid, else what the C library reports, else $USER, else "".
 */
export function currentUserName(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid >= 0) {
    const n = userName(uid);
    if (n !== '') return n;
  }
  try {
    const n = os.userInfo().username;
    if (n) return n;
  } catch {
    // no entry for this uid
  }
  return process.env.USER ?? '';
}
