import type { FsEntryMeta } from '../fs/meta.js';
import { userName, groupName } from '../fs/meta.js';
import { formatTime, localOffsetMinutes } from '../format/time.js';
import { goModeFromUnix } from '../format/mode.js';
import { goStringFromBytes } from '../format/json.js';
import type { TreeNode } from '../format/tree.js';

export function nsToTime(ns: bigint): string {
  return formatTime(ns, localOffsetMinutes(ns));
}

const TYPE_MAP: Record<FsEntryMeta['type'], TreeNode['type']> = {
  file: 'file',
  dir: 'dir',
  symlink: 'symlink',
  blockdev: 'dev',
  chardev: 'chardev',
  fifo: 'fifo',
  socket: 'socket',
};

/**
 * Builds the tree node restic 0.14 would write for a file-system entry (§7.2 of the format
 * spec): atime carries the mtime (restic only records the real atime with --with-atime), links is
 * set for files, symlinks and devices only, xattrs are not collected for symlinks.
 */
export function nodeFromMeta(name: Buffer, m: FsEntryMeta, opts: { withAtime?: boolean } = {}): TreeNode {
  const type = TYPE_MAP[m.type];
  const mtime = nsToTime(m.mtimeNs);
  const node: TreeNode = {
    name,
    type,
    mode: goModeFromUnix(m.mode),
    mtime,
    atime: opts.withAtime ? nsToTime(m.atimeNs) : mtime,
    ctime: nsToTime(m.ctimeNs),
    uid: m.uid,
    gid: m.gid,
    content: null,
  };
  const user = userName(m.uid);
  const group = groupName(m.gid);
  if (user) node.user = user;
  if (group) node.group = group;
  if (m.inode) node.inode = m.inode;
  if (m.dev) node.deviceId = m.dev;
  if (type === 'file' || type === 'symlink' || type === 'dev' || type === 'chardev') {
    if (m.nlink) node.links = m.nlink;
  }
  if (type === 'file') {
    if (m.size) node.size = m.size;
    node.content = [];
  }
  if (type === 'symlink' && m.linkTarget) node.linktarget = goStringFromBytes(m.linkTarget);
  if ((type === 'dev' || type === 'chardev') && m.rdev) node.device = m.rdev;
  if (type !== 'symlink' && m.xattrs && m.xattrs.length > 0) {
    node.extendedAttributes = m.xattrs.map((x) => ({ name: x.name, value: x.value }));
  }
  return node;
}

/** restic's change detection: type, size, mtime, ctime (unless ignored) and inode (unless ignored). */
export function unchanged(prev: TreeNode | undefined, cur: TreeNode, opts: { ignoreInode?: boolean; ignoreCtime?: boolean }): boolean {
  if (!prev || prev.type !== cur.type || prev.type !== 'file') return false;
  if ((prev.size ?? 0) !== (cur.size ?? 0)) return false;
  if (!sameInstant(prev.mtime, cur.mtime)) return false;
  if (!opts.ignoreCtime && !sameInstant(prev.ctime, cur.ctime)) return false;
  if (!opts.ignoreInode && (prev.inode ?? 0n) !== (cur.inode ?? 0n)) return false;
  return prev.content !== null;
}

function sameInstant(a: string, b: string): boolean {
  if (a === b) return true;
  // The same instant may be written with another zone offset (the machine's TZ changed).
  return Date.parse(a.replace(/\.\d+/, '')) === Date.parse(b.replace(/\.\d+/, '')) && fraction(a) === fraction(b);
}

function fraction(s: string): string {
  const m = /\.(\d+)/.exec(s);
  return (m?.[1] ?? '').replace(/0+$/, '');
}

/** A uint64 field as encodeTree writes it: absent and 0 are both left out. */
function u64Text(v: bigint | number | undefined): string {
  return v ? String(v) : '';
}

/**
 * True when encodeTree writes the two nodes identically: every field it writes is equal (times as
 * text, absent and empty/zero alike where the encoder leaves both out). A directory whose entries
 * all equal its parent snapshot's can keep the parent's tree blob (see Archiver.saveTreeWhenDone).
 */
export function sameNode(a: TreeNode, b: TreeNode): boolean {
  // modes compared as uint32 (as encodeTree writes them): one built with JS bit operations is negative when ModeDir is set
  if (a.type !== b.type || a.mode >>> 0 !== b.mode >>> 0 || a.mtime !== b.mtime || a.atime !== b.atime || a.ctime !== b.ctime) return false;
  if (a.uid !== b.uid || a.gid !== b.gid || (a.user || '') !== (b.user || '') || (a.group || '') !== (b.group || '')) return false;
  if (u64Text(a.inode) !== u64Text(b.inode) || u64Text(a.deviceId) !== u64Text(b.deviceId) || u64Text(a.size) !== u64Text(b.size)) return false;
  if (u64Text(a.links) !== u64Text(b.links) || u64Text(a.device) !== u64Text(b.device)) return false;
  if ((a.linktarget || '') !== (b.linktarget || '') || (a.error || '') !== (b.error || '') || a.subtree !== b.subtree) return false;
  if (!a.name.equals(b.name) || !sameContent(a.content, b.content)) return false;
  return sameXattrs(a.extendedAttributes, b.extendedAttributes);
}

function sameContent(a: readonly string[] | null | undefined, b: readonly string[] | null | undefined): boolean {
  if (a === b) return true;
  if (a == null || b == null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameXattrs(a: TreeNode['extendedAttributes'], b: TreeNode['extendedAttributes']): boolean {
  const n = a?.length ?? 0;
  if (n !== (b?.length ?? 0)) return false;
  for (let i = 0; i < n; i++) {
    const x = a![i]!;
    const y = b![i]!;
    if (x.name !== y.name) return false;
    if (x.value === null || y.value === null ? x.value !== y.value : !x.value.equals(y.value)) return false;
  }
  return true;
}
