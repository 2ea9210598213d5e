/**
 * Unix st_mode ⇄ Go os.FileMode (spec §7.3). Tree nodes store Go's FileMode bits, which are
 * not the unix S_IF* / S_ISUID values, and values ≥ 2^31 — always handle them unsigned.
 */
import type { NodeType } from './tree.js';

export const GO_MODE_DIR = 0x80000000;
export const GO_MODE_APPEND = 0x40000000;
export const GO_MODE_EXCLUSIVE = 0x20000000;
export const GO_MODE_TEMPORARY = 0x10000000;
export const GO_MODE_SYMLINK = 0x08000000;
export const GO_MODE_DEVICE = 0x04000000;
export const GO_MODE_NAMED_PIPE = 0x02000000;
export const GO_MODE_SOCKET = 0x01000000;
export const GO_MODE_SETUID = 0x00800000;
export const GO_MODE_SETGID = 0x00400000;
export const GO_MODE_CHAR_DEVICE = 0x00200000;
export const GO_MODE_STICKY = 0x00100000;
export const GO_MODE_IRREGULAR = 0x00080000;
export const GO_MODE_PERM = 0o777;
/** Go's os.ModeType: the bits that say what kind of file this is. */
export const GO_MODE_TYPE =
  (GO_MODE_DIR | GO_MODE_SYMLINK | GO_MODE_NAMED_PIPE | GO_MODE_SOCKET | GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE | GO_MODE_IRREGULAR) >>> 0;
/** What restic keeps of a FileMode (perm, type, setuid, setgid, sticky). */
export const RESTIC_MODE_MASK = (GO_MODE_PERM | GO_MODE_TYPE | GO_MODE_SETUID | GO_MODE_SETGID | GO_MODE_STICKY) >>> 0;

// unix st_mode bits (Linux values; identical on every platform Node supports)
export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;

/**
 * st_mode → Go FileMode as restic stores it (Go's os.Stat mapping, then restic's mask).
 * Unknown file types map to no type bit, as in Go.
 */
export function goModeFromUnix(stMode: number): number {
  let m = stMode & GO_MODE_PERM;
  switch (stMode & S_IFMT) {
    case S_IFBLK:
      m |= GO_MODE_DEVICE;
      break;
    case S_IFCHR:
      m |= GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE;
      break;
    case S_IFDIR:
      m |= GO_MODE_DIR;
      break;
    case S_IFIFO:
      m |= GO_MODE_NAMED_PIPE;
      break;
    case S_IFLNK:
      m |= GO_MODE_SYMLINK;
      break;
    case S_IFSOCK:
      m |= GO_MODE_SOCKET;
      break;
    default:
      break; // S_IFREG and anything unknown: no type bit
  }
  if (stMode & S_ISUID) m |= GO_MODE_SETUID;
  if (stMode & S_ISGID) m |= GO_MODE_SETGID;
  if (stMode & S_ISVTX) m |= GO_MODE_STICKY;
  return (m & RESTIC_MODE_MASK) >>> 0;
}

/**
 * Go FileMode → st_mode (type bits + perm + setuid/setgid/sticky). A mode without type bits
 * is a regular file; ModeIrregular and other Go-only bits have no unix equivalent and are
 * dropped (the type then falls back to regular).
 */
export function unixModeFromGo(goMode: number): number {
  const g = goMode >>> 0;
  let m = g & GO_MODE_PERM;
  if (g & GO_MODE_SETUID) m |= S_ISUID;
  if (g & GO_MODE_SETGID) m |= S_ISGID;
  if (g & GO_MODE_STICKY) m |= S_ISVTX;
  if (g & GO_MODE_DIR) m |= S_IFDIR;
  else if (g & GO_MODE_SYMLINK) m |= S_IFLNK;
  else if (g & GO_MODE_DEVICE) m |= g & GO_MODE_CHAR_DEVICE ? S_IFCHR : S_IFBLK;
  else if (g & GO_MODE_NAMED_PIPE) m |= S_IFIFO;
  else if (g & GO_MODE_SOCKET) m |= S_IFSOCK;
  else m |= S_IFREG;
  return m;
}

/**
 * Permission bits for chmod from a Go FileMode: perm | setuid | setgid | sticky in unix
 * encoding (what restic's restore applies).
 */
export function chmodBitsFromGo(goMode: number): number {
  return unixModeFromGo(goMode) & 0o7777;
}

/** Node type restic records for a unix st_mode, or undefined for unknown file types. */
export function nodeTypeFromMode(stMode: number): NodeType | undefined {
  switch (stMode & S_IFMT) {
    case S_IFREG:
      return 'file';
    case S_IFDIR:
      return 'dir';
    case S_IFLNK:
      return 'symlink';
    case S_IFBLK:
      return 'dev';
    case S_IFCHR:
      return 'chardev';
    case S_IFIFO:
      return 'fifo';
    case S_IFSOCK:
      return 'socket';
    default:
      return undefined;
  }
}

/** Node type implied by a Go FileMode's type bits (restic's nodeTypeFromFileInfo). */
export function nodeTypeFromGoMode(goMode: number): NodeType | undefined {
  switch ((goMode & GO_MODE_TYPE) >>> 0) {
    case 0:
      return 'file';
    case GO_MODE_DIR:
      return 'dir';
    case GO_MODE_SYMLINK:
      return 'symlink';
    case GO_MODE_DEVICE:
      return 'dev';
    case (GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE) >>> 0:
      return 'chardev';
    case GO_MODE_NAMED_PIPE:
      return 'fifo';
    case GO_MODE_SOCKET:
      return 'socket';
    default:
      return undefined;
  }
}
