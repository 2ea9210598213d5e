import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../../src/native/index.js';

/** A deterministic pseudo-random generator (xorshift) so datasets are reproducible. */
export function seeded(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export function randomData(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe((n + 3) & ~3);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(Math.floor(rand() * 0x100000000), i);
  return b.subarray(0, n);
}

export function textData(rand: () => number, n: number): Buffer {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'kubernetes', 'volume', 'backup', 'restic', 'cairn', 'node', 'pod', 'error', 'info'];
  const parts: string[] = [];
  let len = 0;
  let line = 0;
  while (len < n) {
    const s = `2026-11-22T10:${String(line % 60).padStart(2, '0')}:00Z ${words[Math.floor(rand() * words.length)]} ${words[Math.floor(rand() * words.length)]} id=${Math.floor(rand() * 1e6)}\n`;
    parts.push(s);
    len += s.length;
    line++;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

const isRoot = (process.getuid?.() ?? 1) === 0;

function setNs(p: string, sec: number, nsec: number): void {
  const ns = BigInt(sec) * 1_000_000_000n + BigInt(nsec);
  native.utimens(p, ns, ns, true);
}

/**
 * Builds a tree exercising every kind of metadata a backup must keep: sizes across chunk
 * boundaries, modes incl. setuid/setgid/sticky, owners, nanosecond times, symlinks (dangling too),
 * hard links, FIFOs, devices, xattrs incl. a POSIX ACL, a sparse file and non-UTF-8 names.
 */
export function makeRichTree(root: string, seed = 1, opts: { bigFiles?: boolean } = {}): void {
  const rand = seeded(seed);
  fs.mkdirSync(root, { recursive: true });
  const w = (rel: string, data: Buffer, mode = 0o644) => {
    const p = path.join(root, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data, { mode });
    fs.chmodSync(p, mode);
  };
  w('small.txt', Buffer.from('hello world\n'));
  w('empty', Buffer.alloc(0));
  w('text/log.txt', textData(rand, 700_000));
  w('text/other.log', textData(rand, 3_000_000));
  w('bin/random.bin', randomData(rand, opts.bigFiles ? 12_000_000 : 2_500_000), 0o600);
  w('bin/exact-min.bin', randomData(rand, 512 * 1024), 0o640);
  w('bin/zeros.bin', Buffer.alloc(1_200_000));
  w('modes/setuid', Buffer.from('#!/bin/sh\n'), 0o755);
  fs.chmodSync(path.join(root, 'modes/setuid'), 0o4755);
  w('modes/setgid', Buffer.from('x'), 0o755);
  fs.chmodSync(path.join(root, 'modes/setgid'), 0o2755);
  fs.mkdirSync(path.join(root, 'modes/sticky'));
  fs.chmodSync(path.join(root, 'modes/sticky'), 0o1777);
  w('modes/readonly', Buffer.from('ro'), 0o400);
  fs.mkdirSync(path.join(root, 'empty-dir'));
  fs.symlinkSync('../small.txt', path.join(root, 'text/link-to-small'));
  fs.symlinkSync('does/not/exist', path.join(root, 'dangling'));
  fs.linkSync(path.join(root, 'small.txt'), path.join(root, 'text/hardlink-to-small'));
  native.mkfifo(path.join(root, 'fifo'), 0o644);
  if (isRoot) {
    native.mknod(path.join(root, 'null-dev'), 0o020644, 259n); // char 1:3
    w('owned', Buffer.from('owned by 1234'));
    fs.chownSync(path.join(root, 'owned'), 1234, 4321);
    fs.lchownSync(path.join(root, 'dangling'), 1234, 4321);
  }
  // names that are not valid UTF-8 and names that need quoting
  const odd = Buffer.concat([Buffer.from(root + '/'), Buffer.from([0x62, 0x61, 0x64, 0xff, 0x2e, 0x74, 0x78, 0x74])]);
  fs.writeFileSync(odd, 'not utf-8 name');
  w('weird "q" <&> back\\slash\ttab é ☃ 😀.txt', Buffer.from('weird'));
  // sparse: 8 MiB with data at both ends
  const sp = path.join(root, 'sparse.img');
  const fd = fs.openSync(sp, 'w');
  fs.writeSync(fd, Buffer.from('start'), 0, 5, 0);
  fs.writeSync(fd, Buffer.from('end'), 0, 3, 8 * 1024 * 1024 - 3);
  fs.closeSync(fd);
  // xattrs (user namespace) and a POSIX ACL; skipped where the file system has no xattr support
  try {
    native.lsetxattr(path.join(root, 'small.txt'), 'user.comment', Buffer.from([0x78, 0x00, 0x01, 0xff]));
    native.lsetxattr(path.join(root, 'text'), 'user.dir', Buffer.from('dir attr'));
    // system.posix_acl_access: version 2, entries (tag, perm, id): user_obj rw, user 1000 r, group_obj r, mask r, other none
    const acl = Buffer.alloc(4 + 5 * 8);
    acl.writeUInt32LE(2, 0);
    const ent = [[0x01, 6, 0xffffffff], [0x02, 4, 1000], [0x04, 4, 0xffffffff], [0x10, 4, 0xffffffff], [0x20, 0, 0xffffffff]];
    ent.forEach(([tag, perm, id], i) => {
      acl.writeUInt16LE(tag!, 4 + i * 8);
      acl.writeUInt16LE(perm!, 6 + i * 8);
      acl.writeUInt32LE(id!, 8 + i * 8);
    });
    native.lsetxattr(path.join(root, 'text/log.txt'), 'system.posix_acl_access', acl);
  } catch {
    /* no xattr support on this file system */
  }
  // times with nanoseconds, directories last so creating entries does not change them again
  // (entries whose names are not UTF-8 keep their creation time: the native calls take strings)
  const all: string[] = [];
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d, { encoding: 'buffer' })) {
      const name = n.toString('utf8');
      if (!Buffer.from(name, 'utf8').equals(n)) continue;
      const p = `${d}/${name}`;
      if (fs.lstatSync(p).isDirectory()) walk(p);
      all.push(p);
    }
  };
  walk(root);
  all.forEach((p, i) => setNs(p, 1_600_000_000 + i * 7919, (i * 123_456_789) % 1_000_000_000));
  setNs(root, 1_650_000_000, 987_654_321);
}

export interface EntryFacts {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeNs: bigint;
  hash?: string;
  link?: string;
  xattrs?: string;
  rdev?: number;
  inodeGroup?: string;
}

/** Collects comparable facts of every entry below root, keyed by relative path (latin1 for raw bytes). */
export function snapshotFacts(root: string, opts: { xattrs?: boolean } = {}): Map<string, EntryFacts> {
  const out = new Map<string, EntryFacts>();
  const inodes = new Map<bigint, string>();
  const walk = (dir: Buffer, rel: string) => {
    for (const name of fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const p = Buffer.concat([dir, Buffer.from('/'), name]);
      const r = rel ? `${rel}/${name.toString('latin1')}` : name.toString('latin1');
      const st = fs.lstatSync(p, { bigint: true });
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'chardev' : st.isBlockDevice() ? 'blockdev' : 'other';
      const f: EntryFacts = { type, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid), size: type === 'file' ? Number(st.size) : 0, mtimeNs: st.mtimeNs };
      if (type === 'file') {
        f.hash = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
        if (st.nlink > 1n) {
          const first = inodes.get(st.ino);
          if (first === undefined) inodes.set(st.ino, r);
          f.inodeGroup = first ?? r;
        }
      }
      if (type === 'symlink') f.link = fs.readlinkSync(p, { encoding: 'buffer' }).toString('latin1');
      if (type === 'chardev' || type === 'blockdev') f.rdev = Number(st.rdev);
      if (opts.xattrs !== false && type !== 'symlink') {
        const ps = p.toString('utf8');
        try {
          const xs = Buffer.from(ps, 'utf8').equals(p) ? native.lgetxattrs(ps) : [];
          f.xattrs = xs.map((x) => `${x.name}=${x.value.toString('hex')}`).sort().join(',');
        } catch {
          f.xattrs = '';
        }
      }
      out.set(r, f);
      if (type === 'dir') walk(p, r);
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

/** Human-readable differences between two fact maps (empty when identical). */
export function diffFacts(a: Map<string, EntryFacts>, b: Map<string, EntryFacts>, ignore: Array<keyof EntryFacts> = []): string[] {
  const diffs: string[] = [];
  for (const [k, fa] of a) {
    const fb = b.get(k);
    if (!fb) {
      diffs.push(`missing in restore: ${k}`);
      continue;
    }
    for (const key of Object.keys(fa) as Array<keyof EntryFacts>) {
      if (ignore.includes(key)) continue;
      if (String(fa[key]) !== String(fb[key])) diffs.push(`${k}: ${key} ${String(fa[key])} != ${String(fb[key])}`);
    }
  }
  for (const k of b.keys()) if (!a.has(k)) diffs.push(`unexpected in restore: ${k}`);
  return diffs;
}

