/**
 * The entries of a restore plan, in columns, with only what the restore needs of each tree node.
 *
 * Paths: every directory the tree walk passes through is a "dir node" (parent dir node + name);
 * a directory entry refers to its own dir node, any other entry to its parent's dir node plus its
 * own name. Paths are rebuilt as component lists when an entry is worked on. Names live in one
 * chunked ByteStore.
 *
 * Metadata: Go mode, owner, times (seconds + nanoseconds, parsed once while planning) and size
 * in typed arrays; what few entries have (symlink targets, device numbers, extended attributes,
 * the name of an unknown node type, a time that did not parse, the content IDs of a hard link
 * that differ from its first link's) in a side map. About 75 bytes plus the name per entry,
 * against the ~1 KiB of a PlannedEntry that kept the decoded TreeNode (content ID strings, time
 * strings, user and group names…).
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import type { FsEntryType, FsXattr } from '../fs/meta.js';
import type { RestoreMeta } from '../fs/restore.js';
import { chmodBitsFromGo } from '../format/mode.js';
import { parseTimeParts } from '../format/time.js';
import type { TreeNode } from '../format/tree.js';
import { ByteStore, Column } from './columns.js';

/** Entry kinds (node types), as stored in the kind column. */
export const Kind = {
  file: 0,
  dir: 1,
  symlink: 2,
  dev: 3,
  chardev: 4,
  fifo: 5,
  socket: 6,
  /** A node type this version does not know (restoring it is an error of that entry). */
  unknown: 7,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

const KIND_OF = new Map<string, Kind>([
  ['file', Kind.file],
  ['dir', Kind.dir],
  ['symlink', Kind.symlink],
  ['dev', Kind.dev],
  ['chardev', Kind.chardev],
  ['fifo', Kind.fifo],
  ['socket', Kind.socket],
]);

/** File-system type restored for each kind (an unknown one is never restored; 'file' as before). */
const FS_TYPE: readonly FsEntryType[] = ['file', 'dir', 'symlink', 'blockdev', 'chardev', 'fifo', 'socket', 'file'];

/** What only some entries have. */
interface Extras {
  linkTarget?: Buffer;
  device?: bigint;
  xattrs?: FsXattr[];
  /** The node type, when unknown. */
  type?: string;
  /** Why the metadata cannot be restored (a time that does not parse): thrown by meta(). */
  metaError?: unknown;
  /** Content of a hard link when it differs from its first link's (whose blobs are written): for --verify. */
  linkContent?: Id[];
}

const NS_PER_S = 1_000_000_000n;
/** Slots of EntryTable's directory-path cache (a power of two). */
const DIR_PATH_SLOTS = 256;

/** Distinct lists of extended attributes kept for sharing (see EntryTable.shared). */
const MAX_XATTR_LISTS = 1024;

export class EntryTable {
  /** Entries in the table. */
  count = 0;
  /** Dir nodes in the table. */
  dirCount = 0;

  private readonly names = new ByteStore();
  private readonly extras = new Map<number, Extras>();
  private readonly xattrLists = new Map<string, FsXattr[]>();

  // dir nodes
  private readonly dirParent = new Column(Int32Array);
  private readonly dirNamePos = new Column(Float64Array);
  private readonly dirNameLen = new Column(Uint32Array);
  private readonly dirDepth = new Column(Uint32Array);

  // entries
  private readonly kinds = new Column(Uint8Array);
  /** Own dir node (directories) or parent dir node (anything else); -1 is the target itself. */
  private readonly node = new Column(Int32Array);
  private readonly namePos = new Column(Float64Array);
  private readonly nameLen = new Column(Uint32Array);
  private readonly goMode = new Column(Uint32Array);
  private readonly uid = new Column(Uint32Array);
  private readonly gid = new Column(Uint32Array);
  private readonly atimeS = new Column(Float64Array);
  private readonly atimeNs = new Column(Uint32Array);
  private readonly mtimeS = new Column(Float64Array);
  private readonly mtimeNs = new Column(Uint32Array);
  private readonly sizes = new Column(Float64Array);
  /** Hard links: the entry this one links to, else -1. */
  private readonly link = new Column(Int32Array);
  /** A file's content blobs are the refs refStart .. refStart + refCount of the blob table. */
  private readonly refStart = new Column(Uint32Array);
  private readonly refCount = new Column(Uint32Array);

  /** Entries the columns have room for. */
  private room = 0;

  /**
   * Recently built directory paths, direct-mapped by dir node (a restore writes the files of a few
   * directories in turn, which a one-entry memo kept missing): bounded, whatever the tree's size.
   */
  private readonly pathNode = new Int32Array(DIR_PATH_SLOTS).fill(-2);
  private readonly pathParts: Buffer[][] = new Array<Buffer[]>(DIR_PATH_SLOTS).fill([]);

  /** Adds a directory the walk passes through (restored or not); returns its dir node. */
  addDirNode(parent: number, name: Buffer): number {
    const d = this.dirCount++;
    const n = this.dirCount;
    this.dirParent.reserve(n);
    this.dirNamePos.reserve(n);
    this.dirNameLen.reserve(n);
    this.dirDepth.reserve(n);
    this.dirParent.set(d, parent);
    this.dirNamePos.set(d, this.names.add(name));
    this.dirNameLen.set(d, name.length);
    this.dirDepth.set(d, parent < 0 ? 1 : this.dirDepth.get(parent) + 1);
    return d;
  }

  /**
   * Adds an entry for tree node `n`: in dir node `dirNode` (a directory: `dirNode` is its own,
   * from addDirNode). Keeps only what the restore needs; returns the entry's number.
   */
  add(dirNode: number, n: TreeNode): number {
    const i = this.count++;
    if (this.count > this.room) this.grow(this.count);
    const kind = KIND_OF.get(n.type) ?? Kind.unknown;
    this.kinds.set(i, kind);
    this.node.set(i, dirNode);
    if (kind !== Kind.dir) {
      this.namePos.set(i, this.names.add(n.name));
      this.nameLen.set(i, n.name.length);
    }
    this.goMode.set(i, n.mode);
    this.uid.set(i, n.uid);
    this.gid.set(i, n.gid);
    this.sizes.set(i, n.size ?? 0);
    this.link.set(i, -1);

    try {
      const a = parseTimeParts(n.atime);
      const m = parseTimeParts(n.mtime);
      this.atimeS.set(i, a.secs);
      this.atimeNs.set(i, a.nanos);
      this.mtimeS.set(i, m.secs);
      this.mtimeNs.set(i, m.nanos);
    } catch (e) {
      this.extra(i).metaError = e; // reported when the metadata is applied, as an error of this entry
    }
    if (kind === Kind.unknown) this.extra(i).type = n.type;
    else if (kind === Kind.symlink) this.extra(i).linkTarget = Buffer.from(n.linktarget ?? '', 'utf8');
    else if (kind === Kind.dev || kind === Kind.chardev) this.extra(i).device = n.device ?? 0n;
    if (n.extendedAttributes !== undefined && n.extendedAttributes.length > 0) {
      const xattrs = n.extendedAttributes.filter((a) => a.value !== null).map((a) => ({ name: a.name, value: a.value! }));
      if (xattrs.length > 0) this.extra(i).xattrs = this.shared(xattrs);
    }
    return i;
  }

  /** Makes room in every entry column for n entries. */
  private grow(n: number): void {
    for (const c of [this.kinds, this.node, this.namePos, this.nameLen, this.goMode, this.uid, this.gid, this.atimeS, this.atimeNs, this.mtimeS, this.mtimeNs, this.sizes, this.link, this.refStart, this.refCount]) {
      c.reserve(n);
    }
    this.room = this.kinds.capacity;
  }

  /** Makes entry i a hard link to entry `to`; `content`: its own content IDs when they differ from `to`'s (for --verify). */
  setLink(i: number, to: number, content?: readonly Id[]): void {
    this.link.set(i, to);
    if (content !== undefined) this.extra(i).linkContent = [...content];
  }

  /** Counts one more content ref of entry i: refs of an entry must be added one after the other. */
  addRef(i: number, ref: number): void {
    const count = this.refCount.get(i);
    if (count === 0) this.refStart.set(i, ref);
    else if (this.refStart.get(i) + count !== ref) throw new CairnError('INTERNAL', `content refs of entry ${i} are not contiguous`);
    this.refCount.set(i, count + 1);
  }

  kind(i: number): Kind {
    return this.kinds.get(i) as Kind;
  }

  /** The node type of an entry of unknown kind. */
  typeName(i: number): string {
    return this.extras.get(i)?.type ?? '';
  }

  /** The entry i links to (hard link), or -1. */
  linkTo(i: number): number {
    return this.link.get(i);
  }

  /** The file size the snapshot records (0 when it records none). */
  size(i: number): number {
    return this.sizes.get(i);
  }

  /** Go os.FileMode. */
  mode(i: number): number {
    return this.goMode.get(i);
  }

  device(i: number): bigint {
    return this.extras.get(i)?.device ?? 0n;
  }

  linkTarget(i: number): Buffer {
    return this.extras.get(i)?.linkTarget ?? Buffer.alloc(0);
  }

  /** First content ref of a file (see refCountOf). */
  refStartOf(i: number): number {
    return this.refStart.get(i);
  }

  /** Content blobs of a file (hard links: 0, theirs are their first link's). */
  refCountOf(i: number): number {
    return this.refCount.get(i);
  }

  /** A hard link's own content IDs when they differ from those of the entry it links to, else undefined. */
  linkContent(i: number): readonly Id[] | undefined {
    return this.extras.get(i)?.linkContent;
  }

  /** The dir node entry i creates (a directory), else -1. */
  ownDirNode(i: number): number {
    return this.kinds.get(i) === Kind.dir ? this.node.get(i) : -1;
  }

  /** The dir node of the directory entry i is in (-1: the target itself). */
  parentDirNode(i: number): number {
    const d = this.node.get(i);
    return this.kinds.get(i) === Kind.dir ? this.dirParent.get(d) : d;
  }

  /** Number of path components of entry i below the target. */
  depth(i: number): number {
    const d = this.node.get(i);
    const dirDepth = d < 0 ? 0 : this.dirDepth.get(d);
    return this.kinds.get(i) === Kind.dir ? dirDepth : dirDepth + 1;
  }

  /** The path of entry i below the target, as name components (a new array; the names are views). */
  rel(i: number): Buffer[] {
    const dir = this.dirPath(this.node.get(i));
    if (this.kinds.get(i) === Kind.dir) return dir.slice();
    const own = this.names.view(this.namePos.get(i), this.nameLen.get(i));
    const out = new Array<Buffer>(dir.length + 1);
    for (let k = 0; k < dir.length; k++) out[k] = dir[k]!;
    out[dir.length] = own;
    return out;
  }

  /** The components of entry i's parent directory below the target. */
  parentRel(i: number): Buffer[] {
    const r = this.rel(i);
    r.pop();
    return r;
  }

  /** The path of entry i as shown in messages: components joined by "/", decoded as UTF-8. */
  relString(i: number): string {
    return relString(this.rel(i));
  }

  /** The metadata to restore on entry i; throws when the snapshot's metadata is unusable (an unparsable time). */
  meta(i: number): RestoreMeta {
    const x = this.extras.get(i);
    if (x?.metaError !== undefined) throw x.metaError;
    const m: RestoreMeta = {
      type: FS_TYPE[this.kinds.get(i)]!,
      mode: chmodBitsFromGo(this.goMode.get(i)),
      uid: this.uid.get(i),
      gid: this.gid.get(i),
      atimeNs: BigInt(this.atimeS.get(i)) * NS_PER_S + BigInt(this.atimeNs.get(i)),
      mtimeNs: BigInt(this.mtimeS.get(i)) * NS_PER_S + BigInt(this.mtimeNs.get(i)),
    };
    if (x?.xattrs !== undefined) m.xattrs = x.xattrs;
    return m;
  }

  /** The owner recorded for entry i. */
  owner(i: number): { uid: number; gid: number } {
    return { uid: this.uid.get(i), gid: this.gid.get(i) };
  }

  /** Bytes held by the columns, names and side table (approximate for the latter), for tests and diagnostics. */
  get bytesHeld(): number {
    let n = this.names.byteLength;
    for (const a of [this.dirParent, this.dirNamePos, this.dirNameLen, this.dirDepth, this.kinds, this.node, this.namePos, this.nameLen, this.goMode, this.uid, this.gid, this.atimeS, this.atimeNs, this.mtimeS, this.mtimeNs, this.sizes, this.link, this.refStart, this.refCount]) {
      n += a.byteLength;
    }
    return n + this.extras.size * 100;
  }

  /**
   * One copy of each distinct list of extended attributes: where every file has some (an SELinux
   * label, say), they are mostly the same few lists. Values are copied: a decoded value is a
   * small slice that would keep a whole buffer of the decoded tree alive. (Lists are never
   * changed once stored; after MAX_XATTR_LISTS distinct ones, further lists are not interned.)
   */
  private shared(xattrs: FsXattr[]): FsXattr[] {
    const key = xattrs.map((a) => `${a.name.length}:${a.name}${a.value.toString('base64')}`).join('\0');
    const known = this.xattrLists.get(key);
    if (known !== undefined) return known;
    const own = xattrs.map((a) => ({ name: a.name, value: Buffer.from(a.value) }));
    if (this.xattrLists.size < MAX_XATTR_LISTS) this.xattrLists.set(key, own);
    return own;
  }

  private extra(i: number): Extras {
    let x = this.extras.get(i);
    if (x === undefined) this.extras.set(i, (x = {}));
    return x;
  }

  /** Components of dir node d (-1: none), shared with the cache: callers copy before changing. */
  private dirPath(d: number): Buffer[] {
    const slot = d & (DIR_PATH_SLOTS - 1);
    if (this.pathNode[slot] === d) return this.pathParts[slot]!;
    const parts: Buffer[] = [];
    for (let k = d; k >= 0; k = this.dirParent.get(k)) parts.push(this.names.view(this.dirNamePos.get(k), this.dirNameLen.get(k)));
    parts.reverse();
    this.pathNode[slot] = d;
    this.pathParts[slot] = parts;
    return parts;
  }
}

/** A path of name components as shown in messages: joined by "/", decoded as UTF-8. */
export function relString(rel: readonly Buffer[]): string {
  return Buffer.concat(rel.flatMap((c, i) => (i === 0 ? [c] : [Buffer.from('/'), c]))).toString('utf8');
}
