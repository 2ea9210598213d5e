/**
 * The system-call functions, for both implementations (the fallback runs getfattr/setfattr,
 * mknod, mkfifo and touch). Each runs in a fresh temp dir. Extended attributes in the user.*
 * namespace may be unsupported by the temp file system: only then (ENOTSUP) are those assertions
 * skipped, with a message saying so.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCairnError } from '../core/errors.js';
import type { XattrEntry } from './api.js';
import { makeDev, splitDev } from './fallback/fs.js';
import { implementations, scratchDirs } from './testkit.test.js';

const { impls, missing } = implementations();
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function byName(list: XattrEntry[]): Array<[string, string]> {
  return list.map((e): [string, string] => [e.name, Buffer.from(e.value).toString('hex')]).sort((a, b) => (a[0] < b[0] ? -1 : 1));
}

function assertSysError(e: unknown, code: string, syscall: string, p: string): true {
  const err = e as NodeJS.ErrnoException;
  assert.ok(err instanceof Error, 'an Error');
  assert.equal(err.code, code, err.message);
  assert.equal(err.syscall, syscall);
  assert.equal(err.path, p);
  assert.equal(typeof err.errno, 'number');
  assert.ok(err.message.startsWith(`${code}: `), err.message);
  return true;
}

const freshDir = scratchDirs('cairn-native-fs-');

/** A file in a fresh scratch folder holding `data`; returns its path. */
function scratchFile(data: string | Buffer): string {
  const f = path.join(freshDir(), 'f');
  fs.writeFileSync(f, data);
  return f;
}

describe('native fs: implementations under test', () => {
  it('lists them', (t) => {
    if (missing !== undefined) t.diagnostic(`only the fallback is tested: ${missing}`);
    assert.ok(impls.length >= 1);
  });
});

for (const impl of impls) {
  const api = impl.api;

  describe(`${impl.name}: extended attributes`, () => {
    /** Runs fn, or skips when this implementation/file system cannot do user xattrs. Returns false when skipped. */
    function xattrsUsable(t: { skip: (msg: string) => void }, dir: string): boolean {
      const probe = path.join(dir, 'probe');
      fs.writeFileSync(probe, '');
      try {
        api.lsetxattr(probe, 'user.cairn.probe', Buffer.from('1'));
        return true;
      } catch (e) {
        if (impl.name === 'fallback' && isCairnError(e, 'UNSUPPORTED')) {
          t.skip(`getfattr/setfattr not installed: the fallback reports UNSUPPORTED (${(e as Error).message})`);
          return false;
        }
        if ((e as NodeJS.ErrnoException).code === 'ENOTSUP') {
          t.skip(`user.* extended attributes are not supported on ${dir} (ENOTSUP)`);
          return false;
        }
        throw e;
      }
    }

    it('round-trips names and binary values (empty, NUL/0xff, larger than the first buffer)', (t) => {
      const dir = freshDir();
      if (!xattrsUsable(t, dir)) return;
      const f = path.join(dir, 'file');
      fs.writeFileSync(f, 'data');
      const big = Buffer.alloc(3000);
      for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
      const want: XattrEntry[] = [
        { name: 'user.bin', value: Buffer.from([0, 255, 1, 0]) },
        { name: 'user.empty', value: Buffer.alloc(0) },
        { name: 'user.big', value: big },
        { name: 'user.odd name=\\ "x"\n', value: Buffer.from('v') },
        { name: 'user.ünï', value: Buffer.from('😀') },
      ];
      for (const x of want) api.lsetxattr(f, x.name, x.value);
      const got = api.lgetxattrs(f);
      for (const x of got) assert.ok(Buffer.isBuffer(x.value), 'values are Buffers');
      assert.deepEqual(byName(got.filter((x) => x.name.startsWith('user.'))), byName(want));
      // Overwrite.
      api.lsetxattr(f, 'user.bin', new Uint8Array([9]));
      assert.equal(Buffer.from(api.lgetxattrs(f).find((x) => x.name === 'user.bin')!.value).toString('hex'), '09');
    });

    it('a directory; a file without attributes gives []', (t) => {
      const dir = freshDir();
      if (!xattrsUsable(t, dir)) return;
      const sub = path.join(dir, 'sub');
      fs.mkdirSync(sub);
      api.lsetxattr(sub, 'user.d', Buffer.from('dir'));
      assert.deepEqual(byName(api.lgetxattrs(sub).filter((x) => x.name.startsWith('user.'))), [['user.d', '646972']]);
      const plain = path.join(dir, 'plain');
      fs.writeFileSync(plain, '');
      assert.deepEqual(api.lgetxattrs(plain).filter((x) => x.name.startsWith('user.')), []);
    });

    it('does not follow a final symlink', (t) => {
      const dir = freshDir();
      if (!xattrsUsable(t, dir)) return;
      const target = path.join(dir, 'target');
      const link = path.join(dir, 'link');
      fs.writeFileSync(target, '');
      fs.symlinkSync('target', link);
      api.lsetxattr(target, 'user.t', Buffer.from('1'));
      assert.deepEqual(api.lgetxattrs(link).filter((x) => x.name.startsWith('user.')), []);
      // Linux refuses user.* attributes on symlinks (EPERM); either way the target is untouched.
      assert.throws(() => api.lsetxattr(link, 'user.l', Buffer.from('1')), (e: unknown) => typeof (e as NodeJS.ErrnoException).code === 'string');
      assert.deepEqual(byName(api.lgetxattrs(target).filter((x) => x.name.startsWith('user.'))), [['user.t', '31']]);
    });

    it('errors carry code, syscall and path', (t) => {
      const dir = freshDir();
      if (!xattrsUsable(t, dir)) return;
      const nope = path.join(dir, 'missing');
      assert.throws(() => api.lgetxattrs(nope), (e) => assertSysError(e, 'ENOENT', 'llistxattr', nope));
      assert.throws(() => api.lsetxattr(nope, 'user.x', Buffer.from('1')), (e) => assertSysError(e, 'ENOENT', 'lsetxattr', nope));
    });

    it('rejects bad arguments', () => {
      assert.throws(() => api.lgetxattrs(42 as unknown as string), TypeError);
      assert.throws(() => api.lgetxattrs('/tmp/a\0b'), TypeError);
      assert.throws(() => api.lsetxattr('/tmp/x', 'user.x', 'str' as unknown as Uint8Array), TypeError);
    });
  });

  describe(`${impl.name}: mkfifo`, () => {
    it('creates a FIFO with exactly the requested permission bits (umask not applied)', () => {
      const dir = freshDir();
      const old = process.umask(0o077);
      try {
        for (const [name, mode] of [
          ['a', 0o644],
          ['b', 0o666],
          ['c', 0o1777],
          ['d', 0o4750],
        ] as const) {
          const p = path.join(dir, name);
          api.mkfifo(p, mode);
          const st = fs.lstatSync(p);
          assert.ok(st.isFIFO(), name);
          assert.equal((st.mode & 0o7777).toString(8), mode.toString(8), name);
        }
      } finally {
        process.umask(old);
      }
    });

    it('EEXIST and ENOENT as fs-style errors', () => {
      const dir = freshDir();
      const p = path.join(dir, 'f');
      api.mkfifo(p, 0o600);
      assert.throws(() => api.mkfifo(p, 0o600), (e) => assertSysError(e, 'EEXIST', 'mkfifo', p));
      const q = path.join(dir, 'no', 'f');
      assert.throws(() => api.mkfifo(q, 0o600), (e) => assertSysError(e, 'ENOENT', 'mkfifo', q));
    });
  });

  describe(`${impl.name}: mkdir`, () => {
    it('makes directories with the mode less the umask; calls of one turn each get their own outcome', async () => {
      const dir = freshDir();
      const old = process.umask(0o022);
      try {
        const names = Array.from({ length: 100 }, (_, i) => `d${i}`);
        // one turn: shares batches in the addon; a parent and its child in one turn are made in order
        await Promise.all([...names.map((n) => api.mkdir(path.join(dir, n), 0o755)), api.mkdir(path.join(dir, 'p'), 0o700)]);
        await api.mkdir(path.join(dir, 'p', 'c'), 0o777);
        for (const n of names) assert.equal((fs.statSync(path.join(dir, n)).mode & 0o7777).toString(8), '755', n);
        assert.equal((fs.statSync(path.join(dir, 'p')).mode & 0o7777).toString(8), '700');
        assert.equal((fs.statSync(path.join(dir, 'p', 'c')).mode & 0o7777).toString(8), '755');
      } finally {
        process.umask(old);
      }
    });

    it('EEXIST, ENOENT and ENOTDIR as fs-style errors, beside successes in the same turn', async () => {
      const dir = freshDir();
      const f = path.join(dir, 'file');
      fs.writeFileSync(f, 'x');
      const cases = [path.join(dir, 'ok'), f, path.join(dir, 'no', 'd'), path.join(f, 'd')];
      const got = await Promise.allSettled(cases.map((p) => api.mkdir(p, 0o700)));
      assert.equal(got[0]!.status, 'fulfilled');
      assert.ok(fs.statSync(cases[0]!).isDirectory());
      for (const [k, code] of [[1, 'EEXIST'], [2, 'ENOENT'], [3, 'ENOTDIR']] as const) {
        const r = got[k]!;
        assert.equal(r.status, 'rejected');
        assertSysError((r as PromiseRejectedResult).reason, code, 'mkdir', cases[k]!);
      }
    });

    it('a symlink in the way is EEXIST, never followed', async () => {
      const dir = freshDir();
      fs.mkdirSync(path.join(dir, 'elsewhere'));
      fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'link'));
      await assert.rejects(api.mkdir(path.join(dir, 'link'), 0o700), (e) => assertSysError(e, 'EEXIST', 'mkdir', path.join(dir, 'link')));
      assert.deepEqual(fs.readdirSync(path.join(dir, 'elsewhere')), []);
    });

    it('rejects a bad mode', async () => {
      await assert.rejects(async () => api.mkdir(path.join(freshDir(), 'd'), 0o10000), RangeError);
      await assert.rejects(async () => api.mkdir(path.join(freshDir(), 'd'), 1.5), TypeError);
    });
  });

  describe(`${impl.name}: mknod`, () => {
    it('creates character and block devices with the given st_rdev and permissions', (t) => {
      if (!isRoot) {
        t.skip('mknod of devices needs root');
        return;
      }
      const dir = freshDir();
      const cases: Array<[string, number, bigint]> = [
        ['null', 0o020000 | 0o666, makeDev(1n, 3n)],
        ['blk', 0o060000 | 0o640, makeDev(259n, 70000n)], // minor > 255: the split encoding
        ['big', 0o020000 | 0o600, makeDev(4095n, 1048575n)],
        ['sticky', 0o020000 | 0o1640, makeDev(10n, 200n)],
      ];
      const old = process.umask(0o077);
      try {
        for (const [name, mode, dev] of cases) {
          const p = path.join(dir, name);
          api.mknod(p, mode, dev);
          const st = fs.lstatSync(p, { bigint: true });
          assert.equal(st.rdev, dev, name);
          assert.equal(Number(st.mode).toString(8), mode.toString(8), name);
        }
      } finally {
        process.umask(old);
      }
    });

    it('rejects a mode without S_IFCHR/S_IFBLK and an unencodable dev with EINVAL', (t) => {
      if (!isRoot) {
        t.skip('mknod of devices needs root');
        return;
      }
      const dir = freshDir();
      const p = path.join(dir, 'x');
      assert.throws(() => api.mknod(p, 0o100644, 0n), (e) => assertSysError(e, 'EINVAL', 'mknod', p));
      assert.throws(() => api.mknod(p, 0o010644, 0n), (e) => assertSysError(e, 'EINVAL', 'mknod', p));
      assert.throws(() => api.mknod(p, 0o020644, 1n << 63n), (e) => assertSysError(e, 'EINVAL', 'mknod', p));
      assert.equal(fs.existsSync(p), false);
      api.mknod(p, 0o020644, makeDev(1n, 5n));
      assert.throws(() => api.mknod(p, 0o020644, makeDev(1n, 5n)), (e) => assertSysError(e, 'EEXIST', 'mknod', p));
    });

    it('rejects bad argument types', () => {
      assert.throws(() => api.mknod('/tmp/x', 0o020644, 5 as unknown as bigint), TypeError);
      assert.throws(() => api.mknod('/tmp/x', 0o020644, -1n), RangeError);
      assert.throws(() => api.mknod('/tmp/x', 1.5, 0n), TypeError);
    });
  });

  describe(`${impl.name}: utimens`, () => {
    const times: Array<[bigint, bigint]> = [
      [1700000000123456789n, 1600000000987654321n],
      [0n, 1n],
      [-1500000001n, -1n], // before the epoch: floor division into seconds + nanoseconds
      [4102444800000000000n, 999999999n], // year 2100
    ];

    it('sets atime and mtime with nanosecond precision', () => {
      const f = scratchFile('');
      for (const [a, m] of times) {
        api.utimens(f, a, m, false);
        const st = fs.lstatSync(f, { bigint: true });
        assert.equal(st.atimeNs, a);
        assert.equal(st.mtimeNs, m);
      }
    });

    it('nofollow changes the symlink itself; follow changes the target', () => {
      const dir = freshDir();
      const target = path.join(dir, 'target');
      const link = path.join(dir, 'link');
      fs.writeFileSync(target, '');
      fs.symlinkSync('target', link);
      api.utimens(target, 1000000000000000001n, 1000000000000000002n, false);
      api.utimens(link, 1200000000000000003n, 1200000000000000004n, true);
      let l = fs.lstatSync(link, { bigint: true });
      let t = fs.lstatSync(target, { bigint: true });
      assert.equal(l.mtimeNs, 1200000000000000004n);
      assert.equal(l.atimeNs, 1200000000000000003n);
      assert.equal(t.mtimeNs, 1000000000000000002n);
      api.utimens(link, 1300000000000000005n, 1300000000000000006n, false);
      l = fs.lstatSync(link, { bigint: true });
      t = fs.lstatSync(target, { bigint: true });
      assert.equal(t.mtimeNs, 1300000000000000006n);
      assert.equal(t.atimeNs, 1300000000000000005n);
      assert.equal(l.mtimeNs, 1200000000000000004n);
    });

    it('works on directories and FIFOs', () => {
      const dir = freshDir();
      const sub = path.join(dir, 'sub');
      const fifo = path.join(dir, 'fifo');
      fs.mkdirSync(sub);
      fs.writeFileSync(path.join(sub, 'x'), '');
      api.mkfifo(fifo, 0o600);
      for (const p of [sub, fifo]) {
        api.utimens(p, 1111111111111111111n, 1222222222222222222n, true);
        const st = fs.lstatSync(p, { bigint: true });
        assert.equal(st.mtimeNs, 1222222222222222222n, p);
        assert.equal(st.atimeNs, 1111111111111111111n, p);
      }
    });

    it('ENOENT for a missing path and for a dangling symlink when following', () => {
      const dir = freshDir();
      const nope = path.join(dir, 'missing');
      assert.throws(() => api.utimens(nope, 1n, 1n, true), (e) => assertSysError(e, 'ENOENT', 'utimensat', nope));
      assert.equal(fs.existsSync(nope), false, 'must not create the file');
      const dangling = path.join(dir, 'dangling');
      fs.symlinkSync('missing', dangling);
      assert.throws(() => api.utimens(dangling, 1n, 1n, false), (e) => assertSysError(e, 'ENOENT', 'utimensat', dangling));
      api.utimens(dangling, 5n, 6n, true);
      assert.equal(fs.lstatSync(dangling, { bigint: true }).mtimeNs, 6n);
    });

    it('rejects bad argument types', () => {
      assert.throws(() => api.utimens('/tmp/x', 1 as unknown as bigint, 1n, false), TypeError);
      assert.throws(() => api.utimens('/tmp/x', 1n, 1n, 'yes' as unknown as boolean), TypeError);
      assert.throws(() => api.utimens('/tmp/x', 1n << 63n, 1n, false), RangeError);
    });
  });
}

/** A path of raw bytes: dir (a string) / name with a byte that is not valid UTF-8 in it. */
function bytePath(dir: string, name: string): Buffer {
  return Buffer.concat([Buffer.from(dir + '/'), Buffer.from(name), Buffer.from([0xff, 0xfe]), Buffer.from('.x')]);
}

for (const impl of impls) {
  const api = impl.api;

  describe(`${impl.name}: paths given as bytes (names that are not valid UTF-8)`, () => {
    it('mkfifo and utimens on a non-UTF-8 name, also below a non-UTF-8 directory', () => {
      const dir = freshDir();
      const sub = bytePath(dir, 'dir');
      fs.mkdirSync(sub);
      for (const p of [bytePath(dir, 'fifo'), Buffer.concat([sub, Buffer.from('/'), Buffer.from([0x80, 0x41])])]) {
        api.mkfifo(p, 0o640);
        const st = fs.lstatSync(p, { bigint: true });
        assert.ok(st.isFIFO());
        assert.equal(Number(st.mode & 0o7777n).toString(8), '640');
        api.utimens(p, 1400000000000000001n, 1400000000000000002n, true);
        const st2 = fs.lstatSync(p, { bigint: true });
        assert.equal(st2.atimeNs, 1400000000000000001n);
        assert.equal(st2.mtimeNs, 1400000000000000002n);
      }
      // Nothing was created under a mangled (U+FFFD) name.
      const mangled = Buffer.from('\ufffd', 'utf8');
      assert.deepEqual(fs.readdirSync(dir, { encoding: 'buffer' }).filter((n) => n.includes(mangled)), []);
    });

    it('a Uint8Array that is valid UTF-8 names the same file as the string', () => {
      const dir = freshDir();
      const f = path.join(dir, 'ünï');
      fs.writeFileSync(f, '');
      api.utimens(new Uint8Array(Buffer.from(f)), 5n, 7n, true);
      assert.equal(fs.lstatSync(f, { bigint: true }).mtimeNs, 7n);
    });

    it('extended attributes on a non-UTF-8 name', (t) => {
      const dir = freshDir();
      const f = bytePath(dir, 'file');
      fs.writeFileSync(f, '');
      try {
        api.lsetxattr(f, 'user.cairn.b', Buffer.from([1, 2, 0, 3]));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOTSUP' || isCairnError(e, 'UNSUPPORTED')) {
          t.skip(`user xattrs unavailable here (${(e as Error).message})`);
          return;
        }
        throw e;
      }
      const got = api.lgetxattrs(f).filter((x) => x.name.startsWith('user.'));
      assert.deepEqual(byName(got), [['user.cairn.b', '01020003']]);
    });

    it('mknod on a non-UTF-8 name', (t) => {
      if (!isRoot) {
        t.skip('mknod of devices needs root');
        return;
      }
      const dir = freshDir();
      const p = bytePath(dir, 'dev');
      api.mknod(p, 0o020000 | 0o600, makeDev(1n, 3n));
      const st = fs.lstatSync(p, { bigint: true });
      assert.ok(st.isCharacterDevice());
      assert.equal(st.rdev, makeDev(1n, 3n));
    });

    it('errors name the path as Node does (invalid bytes as U+FFFD)', () => {
      const dir = freshDir();
      const p = bytePath(dir, 'missing');
      const shown = p.toString('utf8');
      assert.ok(shown.includes('\ufffd'));
      assert.throws(() => api.utimens(p, 1n, 1n, true), (e) => assertSysError(e, 'ENOENT', 'utimensat', shown));
      assert.throws(() => api.mkfifo(Buffer.concat([p, Buffer.from('/f')]), 0o600), (e) => assertSysError(e, 'ENOENT', 'mkfifo', shown + '/f'));
    });

    it('refuses NUL bytes and other argument types', () => {
      assert.throws(() => api.mkfifo(Buffer.from('/tmp/a\0b'), 0o600), TypeError);
      assert.throws(() => api.utimens(new Uint8Array([0x2f, 0]), 1n, 1n, true), TypeError);
      assert.throws(() => api.lgetxattrs(new Uint16Array(4) as unknown as Uint8Array), TypeError);
      assert.throws(() => api.lgetxattrs({} as unknown as string), TypeError);
    });
  });
}

for (const impl of impls) {
  const api = impl.api;

  describe(`${impl.name}: readFile (one job per small file)`, () => {
    it('reads a whole file, hashes it, reports fstat size and end of file', async () => {
      const dir = freshDir();
      const f = path.join(dir, 'f');
      const data = Buffer.from('x'.repeat(5000) + 'end');
      fs.writeFileSync(f, data);
      const st = fs.lstatSync(f, { bigint: true });
      const out = Buffer.alloc(data.length + 1);
      const r = await api.readFile(f, out, { dev: st.dev, ino: st.ino, hash: true });
      assert.deepEqual(r, { length: data.length, size: data.length, complete: true, id: createHash('sha256').update(data).digest('hex') });
      assert.ok(out.subarray(0, r.length).equals(data));
      const exact = await api.readFile(Buffer.from(f), Buffer.alloc(data.length), { hash: true });
      assert.equal(exact.complete, false, 'out filled before end of file was seen');
      assert.equal(exact.id, undefined);
      const small = await api.readFile(f, Buffer.alloc(10));
      assert.deepEqual(small, { length: 10, size: data.length, complete: false });
      const empty = path.join(dir, 'empty');
      fs.writeFileSync(empty, '');
      assert.deepEqual(await api.readFile(empty, Buffer.alloc(1), { hash: true }), {
        length: 0,
        size: 0,
        complete: true,
        id: createHash('sha256').digest('hex'),
      });
    });

    it('seals the contents in the same job when asked (and skips it when there is no room)', async () => {
      const data = Buffer.from('hello small file\n'.repeat(300));
      const f = scratchFile(data);
      const key = api.sealKey(Buffer.alloc(32, 1), Buffer.alloc(16, 2), Buffer.alloc(16, 3));
      const sealOut = Buffer.alloc(data.length + 32);
      const r = await api.readFile(f, Buffer.alloc(data.length + 1), { hash: true, seal: { key, compress: true, level: 3, out: sealOut } });
      assert.ok(r.sealed, 'sealed');
      assert.equal(r.sealed.sealed.buffer, sealOut.buffer, 'a view of seal.out');
      assert.equal(r.sealed.uncompressedLength, data.length, 'compressible text is compressed');
      const plain = api.openSync(key, r.sealed.sealed, { uncompressedLength: r.sealed.uncompressedLength, maxSize: 1 << 20, id: r.id });
      assert.ok(plain.equals(data));
      const none = await api.readFile(f, Buffer.alloc(data.length + 1), { seal: { key, compress: true, level: 3, out: Buffer.alloc(data.length) } });
      assert.equal(none.sealed, undefined, 'no room: not sealed');
      await assert.rejects(
        Promise.resolve().then(() => api.readFile(f, Buffer.alloc(8), { seal: { key: {} as never, compress: true, level: 3, out: sealOut } })),
        TypeError,
      );
    });

    it('a non-UTF-8 name given as bytes', async () => {
      const dir = freshDir();
      const p = bytePath(dir, 'file');
      fs.writeFileSync(p, 'abc');
      const out = Buffer.alloc(8);
      const r = await api.readFile(p, out);
      assert.equal(out.subarray(0, r.length).toString(), 'abc');
    });

    it('refuses a FIFO (without blocking), a directory, a symlink, a replaced inode; ENOENT as fs errors', async () => {
      const dir = freshDir();
      const fifo = path.join(dir, 'fifo');
      api.mkfifo(fifo, 0o600);
      await assert.rejects(api.readFile(fifo, Buffer.alloc(8)), (e: NodeJS.ErrnoException) => e.code === 'ERR_CAIRN_NOT_REGULAR' && e.path === fifo);
      await assert.rejects(api.readFile(dir, Buffer.alloc(8)), (e: NodeJS.ErrnoException) => e.code === 'ERR_CAIRN_NOT_REGULAR');
      const target = path.join(dir, 't');
      fs.writeFileSync(target, 'x');
      const link = path.join(dir, 'link');
      fs.symlinkSync('t', link);
      await assert.rejects(api.readFile(link, Buffer.alloc(8)), (e: NodeJS.ErrnoException) => e.code === 'ELOOP' && e.syscall === 'open');
      const st = fs.lstatSync(target, { bigint: true });
      await assert.rejects(api.readFile(target, Buffer.alloc(8), { dev: st.dev, ino: st.ino + 1n }), (e: NodeJS.ErrnoException) => e.code === 'ERR_CAIRN_REPLACED');
      const nope = path.join(dir, 'missing');
      await assert.rejects(api.readFile(nope, Buffer.alloc(8)), (e) => assertSysError(e, 'ENOENT', 'open', nope));
    });

    it('rejects bad arguments', async () => {
      await assert.rejects(Promise.resolve().then(() => api.readFile('/tmp/x\0', Buffer.alloc(1))), TypeError);
      await assert.rejects(Promise.resolve().then(() => api.readFile('/tmp/x', Buffer.alloc(0))), RangeError);
      await assert.rejects(Promise.resolve().then(() => api.readFile('/tmp/x', 'out' as unknown as Uint8Array)), TypeError);
    });
  });
}

describe('st_rdev encoding helpers', () => {
  it('splitDev/makeDev match glibc major()/minor()/makedev()', () => {
    assert.deepEqual(splitDev(0x0103n), { major: 1n, minor: 3n });
    assert.equal(makeDev(259n, 70000n), 0x11110370n);
    assert.deepEqual(splitDev(0x11110370n), { major: 259n, minor: 70000n });
    for (const [ma, mi] of [
      [0n, 0n],
      [4095n, 1048575n],
      [0xfffff000n, 0xffffff00n],
      [0xffffffffn, 0xffffffffn],
    ]) {
      assert.deepEqual(splitDev(makeDev(ma, mi)), { major: ma, minor: mi });
    }
  });
});

describe('alignedBuffer (addon only)', () => {
  const addon = impls.find((i) => i.name === 'native')?.api;

  it('exists in the addon and not in the fallback', (t) => {
    if (addon === undefined) return t.skip(`no addon: ${missing}`);
    assert.equal(typeof addon.alignedBuffer, 'function');
    assert.equal(impls.find((i) => i.name === 'fallback')?.api.alignedBuffer, undefined);
  });

  it('rejects sizes outside 1 … 2^31−1', (t) => {
    if (addon?.alignedBuffer === undefined) return t.skip('no addon');
    for (const bad of [0, -1, 2 ** 31, 1.5, Number.NaN]) {
      assert.throws(() => addon.alignedBuffer!(bad), (e: NodeJS.ErrnoException) => e instanceof RangeError || e instanceof TypeError, String(bad));
    }
  });

  it('gives buffers that O_DIRECT accepts, holding exactly what was written', (t) => {
    const alloc = addon?.alignedBuffer;
    if (alloc === undefined) return t.skip('no addon');
    const file = path.join(freshDir(), 'direct');
    let fd: number;
    try {
      fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT, 0o600);
    } catch (e) {
      // tmpfs before Linux 6.6 and some overlay set-ups refuse O_DIRECT at open: nothing to test there
      if ((e as NodeJS.ErrnoException).code === 'EINVAL') return t.skip(`${path.dirname(file)} does not support O_DIRECT`);
      throw e;
    }
    const expected: Buffer[] = [];
    try {
      let pos = 0;
      // many sizes, so that a lucky alignment of one allocation cannot pass the test
      for (let i = 0; i < 40; i++) {
        const size = 4096 * (1 + ((i * 37) % 300));
        const b: Buffer = alloc(size);
        assert.equal(b.length, size);
        b.fill(i + 1);
        assert.equal(fs.writeSync(fd, b, 0, size, pos), size);
        expected.push(Buffer.from(b));
        pos += size;
      }
    } finally {
      fs.closeSync(fd);
    }
    assert.ok(fs.readFileSync(file).equals(Buffer.concat(expected)));
  });
});

for (const impl of impls) {
  const api = impl.api;

  describe(`${impl.name}: pread (ranged reads in one job)`, () => {
    it('reads ranges into the buffer given, concurrently; fewer bytes only at end of file', async () => {
      const data = Buffer.alloc(300_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 9)) & 0xff;
      const f = scratchFile(data);
      const ranges: Array<[number, number]> = [[0, 10], [1, 65_536], [123_457, 100_000], [299_990, 10], [0, 300_000], [150_000, 0]];
      const outs = ranges.map(([, len]) => Buffer.alloc(len + 3, 0xee));
      const got = await Promise.all(ranges.map(([off, len], k) => api.pread(f, off, len, outs[k]!)));
      for (const [k, [off, len]] of ranges.entries()) {
        assert.equal(got[k], len);
        assert.ok(outs[k]!.subarray(0, len).equals(data.subarray(off, off + len)), `range ${off}+${len}`);
        assert.ok(outs[k]!.subarray(len).equals(Buffer.alloc(3, 0xee)), 'nothing written past length');
      }
      assert.equal(await api.pread(f, 299_000, 5000, Buffer.alloc(5000)), 1000, 'short at end of file');
      assert.equal(await api.pread(f, 400_000, 10, Buffer.alloc(10)), 0, 'beyond the end');
    });

    it('errors: ENOENT from open with the path; out shorter than length is a RangeError', async () => {
      const dir = freshDir();
      const missing = path.join(dir, 'missing');
      await assert.rejects(api.pread(missing, 0, 1, Buffer.alloc(1)), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.syscall === 'open' && String(e.path ?? e.message).includes('missing'));
      const f = path.join(dir, 'g');
      fs.writeFileSync(f, 'abc');
      await assert.rejects(async () => api.pread(f, 0, 10, Buffer.alloc(5)), (e: NodeJS.ErrnoException) => e instanceof RangeError && e.code === 'ERR_OUT_OF_RANGE');
    });
  });
}
