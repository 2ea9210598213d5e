/**
 * restoreFile / finishFile (the restorer's one-job-per-file kernels), for both implementations,
 * plus an equivalence run: the same scenario through the addon and the fallback must leave the
 * same files and report the same results and errors. user.* extended attributes may be
 * unsupported by the temp file system: only then are those assertions skipped.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isCairnError } from '../core/errors.js';
import type { FileMetaResult, NativeApi } from './api.js';
import { implementations, scratchDirs } from './testkit.test.js';

const { impls, missing } = implementations();
const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;
const myUid = process.getuid?.() ?? 0;
const myGid = process.getgid?.() ?? 0;

const freshDir = scratchDirs('cairn-native-write-');

/** Why user.* xattrs cannot be tested with this implementation here, or undefined. */
function xattrProblem(api: NativeApi, dir: string): string | undefined {
  const probe = path.join(dir, '.probe');
  fs.writeFileSync(probe, '');
  try {
    api.lsetxattr(probe, 'user.cairn.probe', Buffer.from('1'));
    return undefined;
  } catch (e) {
    if (isCairnError(e, 'UNSUPPORTED')) return `attr tools missing: ${(e as Error).message}`;
    if ((e as NodeJS.ErrnoException).code === 'ENOTSUP') return `user.* xattrs unsupported on ${dir}`;
    throw e;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

function sysErr(code: string, syscall: string, p?: string) {
  return (e: unknown): true => {
    const err = e as NodeJS.ErrnoException;
    assert.ok(err instanceof Error, 'an Error');
    assert.equal(err.code, code, err.message);
    assert.equal(err.syscall, syscall, err.message);
    assert.equal(err.path, p);
    assert.equal(err.errno, -(os.constants.errno as Record<string, number>)[code]!);
    assert.ok(err.message.startsWith(`${code}: `), err.message);
    return true;
  };
}

const coded = (code: string, p: string) => (e: unknown) => (e as NodeJS.ErrnoException).code === code && (e as NodeJS.ErrnoException).path === p;

const T = { atimeNs: 1_111_111_111_222_333_444n, mtimeNs: 1_234_567_890_987_654_321n };

describe('restoreFile/finishFile: implementations under test', () => {
  it('lists them', (t) => {
    if (missing !== undefined) t.diagnostic(`only the fallback is tested: ${missing}`);
    assert.ok(impls.length >= 1);
  });
});

for (const impl of impls) {
  const api = impl.api;

  describe(`${impl.name}: restoreFile`, () => {
    it('creates the file with its contents, mode (setuid after chown), nanosecond times and owner', async () => {
      const dir = freshDir();
      const f = path.join(dir, 'f');
      const data = Buffer.from('hello restore\n'.repeat(1000));
      const owner = isRoot ? { uid: 1234, gid: 5678 } : { uid: myUid, gid: myGid };
      const r = await api.restoreFile(f, data, { truncate: false, mode: 0o106751, owner, ...T });
      assert.deepEqual(r, { warnings: [] });
      const st = fs.lstatSync(f, { bigint: true });
      assert.ok(st.isFile());
      assert.equal(Number(st.mode) & 0o7777, 0o6751, 'setuid/setgid survive: fchmod comes after fchown');
      assert.equal(st.atimeNs, T.atimeNs);
      assert.equal(st.mtimeNs, T.mtimeNs);
      assert.equal(Number(st.uid), owner.uid);
      assert.equal(Number(st.gid), owner.gid);
      assert.ok(fs.readFileSync(f).equals(data));
    });

    it('times before 1970 and a file without data (null) or owner', async () => {
      const dir = freshDir();
      const f = path.join(dir, 'empty');
      const before = fs.statSync(dir);
      assert.deepEqual(await api.restoreFile(f, null, { truncate: false, mode: 0o100640, atimeNs: -1n, mtimeNs: -1_500_000_000n }), { warnings: [] });
      const st = fs.lstatSync(f, { bigint: true });
      assert.equal(st.size, 0n);
      assert.equal(Number(st.mode) & 0o7777, 0o640);
      assert.equal(st.atimeNs, -1n);
      assert.equal(st.mtimeNs, -1_500_000_000n);
      assert.equal(Number(st.uid), before.uid, 'owner left as created');
      await api.restoreFile(path.join(dir, 'zero'), new Uint8Array(0), { truncate: false, mode: 0o600, atimeNs: 0n, mtimeNs: 0n });
      assert.equal(fs.statSync(path.join(dir, 'zero')).size, 0);
    });

    it('extended attributes: set in order; failures are warnings and do not stop the rest', async (t) => {
      const dir = freshDir();
      const why = xattrProblem(api, dir);
      const f = path.join(dir, 'x');
      const xattrs = [
        { name: 'user.cairn.a', value: Buffer.from([0, 1, 2, 255]) },
        { name: 'nonamespace.b', value: Buffer.from('v') },
        { name: 'user.cairn.empty', value: Buffer.alloc(0) },
      ];
      const r = await api.restoreFile(f, Buffer.from('x'), { truncate: false, mode: 0o644, xattrs, ...T });
      assert.deepEqual(r.warnings[0], { syscall: 'fsetxattr', code: 'ENOTSUP', errno: -(os.constants.errno.ENOTSUP ?? 95), name: 'nonamespace.b' });
      if (why !== undefined) {
        t.diagnostic(`user.* assertions skipped: ${why}`);
        return;
      }
      assert.equal(r.warnings.length, 1);
      const got = Object.fromEntries(api.lgetxattrs(f).map((x) => [x.name, Buffer.from(x.value).toString('hex')]));
      assert.equal(got['user.cairn.a'], '000102ff');
      assert.equal(got['user.cairn.empty'], '');
      assert.equal(fs.statSync(f, { bigint: true }).mtimeNs, T.mtimeNs, 'times set after the attributes');
    });

    it('sparse: identical bytes, all-zero 4 KiB blocks stay holes, trailing zeros by ftruncate', async () => {
      const dir = freshDir();
      const size = 1 << 20;
      const data = Buffer.alloc(size + 100); // ends in zeros, in a partial block
      data.fill(1, 0, 10);
      data.fill(2, 300_000, 300_005);
      data.fill(3, 4096 * 100 - 1, 4096 * 100 + 1); // straddles a block boundary
      const dense = path.join(dir, 'dense');
      const sparse = path.join(dir, 'sparse');
      await api.restoreFile(dense, data, { truncate: false, mode: 0o644, ...T });
      await api.restoreFile(sparse, data, { truncate: false, sparse: true, mode: 0o644, ...T });
      assert.ok(fs.readFileSync(sparse).equals(data), 'sparse contents');
      assert.ok(fs.readFileSync(dense).equals(data), 'dense contents');
      const s = fs.statSync(sparse);
      const d = fs.statSync(dense);
      assert.equal(s.size, data.length);
      assert.ok(s.blocks * 512 <= 64 * 1024, `sparse allocated ${s.blocks * 512} bytes`);
      assert.ok(d.blocks > s.blocks * 4, `dense ${d.blocks} blocks vs sparse ${s.blocks}`);
      const zeros = path.join(dir, 'zeros');
      await api.restoreFile(zeros, Buffer.alloc(50_000), { truncate: false, sparse: true, mode: 0o644, ...T });
      assert.equal(fs.statSync(zeros).size, 50_000);
      assert.ok(fs.readFileSync(zeros).equals(Buffer.alloc(50_000)));
    });

    it('without truncate: anything at the name fails with EEXIST and is left alone (symlinks included)', async () => {
      const dir = freshDir();
      const secret = path.join(dir, 'secret');
      fs.writeFileSync(secret, 'original');
      const link = path.join(dir, 'link');
      fs.symlinkSync(secret, link);
      await assert.rejects(api.restoreFile(link, Buffer.from('evil'), { truncate: false, mode: 0o777, ...T }), sysErr('EEXIST', 'open', link));
      await assert.rejects(api.restoreFile(secret, Buffer.from('evil'), { truncate: false, mode: 0o777, ...T }), sysErr('EEXIST', 'open', secret));
      assert.equal(fs.readFileSync(secret, 'utf8'), 'original');
      assert.equal(fs.statSync(secret).mode & 0o777, 0o644 & ~process.umask());
    });

    it('with truncate: a single-linked file is rewritten in place; symlinks, hard-linked files, FIFOs and directories are refused untouched', async () => {
      const dir = freshDir();
      const f = path.join(dir, 'f');
      fs.writeFileSync(f, 'a much longer old content');
      const ino = fs.statSync(f).ino;
      await api.restoreFile(f, Buffer.from('new'), { truncate: true, mode: 0o600, ...T });
      assert.equal(fs.readFileSync(f, 'utf8'), 'new');
      assert.equal(fs.statSync(f).ino, ino);
      // missing: created
      await api.restoreFile(path.join(dir, 'created'), Buffer.from('c'), { truncate: true, mode: 0o600, ...T });
      assert.equal(fs.readFileSync(path.join(dir, 'created'), 'utf8'), 'c');

      const secret = path.join(dir, 'secret');
      fs.writeFileSync(secret, 'original');
      const link = path.join(dir, 'link');
      fs.symlinkSync(secret, link);
      await assert.rejects(api.restoreFile(link, Buffer.from('evil'), { truncate: true, mode: 0o777, ...T }), sysErr('ELOOP', 'open', link));
      assert.equal(fs.readFileSync(secret, 'utf8'), 'original');

      const other = path.join(dir, 'other');
      fs.linkSync(secret, other);
      await assert.rejects(api.restoreFile(secret, Buffer.from('evil'), { truncate: true, mode: 0o777, ...T }), coded('ERR_CAIRN_LINKED', secret));
      assert.equal(fs.readFileSync(other, 'utf8'), 'original', 'not truncated through the shared inode');
      assert.equal(fs.statSync(other).mode & 0o777, 0o644 & ~process.umask());

      const fifo = path.join(dir, 'fifo');
      api.mkfifo(fifo, 0o600);
      await assert.rejects(api.restoreFile(fifo, Buffer.from('x'), { truncate: true, mode: 0o600, ...T }), sysErr('ENXIO', 'open', fifo));
      await assert.rejects(api.restoreFile(dir, Buffer.from('x'), { truncate: true, mode: 0o600, ...T }), sysErr('EISDIR', 'open', dir));
    });

    it('a FIFO with a reader is refused after open (not a regular file), nothing written', async () => {
      const dir = freshDir();
      const fifo = path.join(dir, 'fifo');
      api.mkfifo(fifo, 0o600);
      const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      try {
        await assert.rejects(api.restoreFile(fifo, Buffer.from('x'), { truncate: true, mode: 0o600, ...T }), coded('ERR_CAIRN_NOT_REGULAR', fifo));
        let n = 0;
        try {
          n = fs.readSync(reader, Buffer.alloc(8)); // 0: end of file (the writer is gone)
        } catch (e) {
          assert.equal((e as NodeJS.ErrnoException).code, 'EAGAIN');
        }
        assert.equal(n, 0, 'nothing was written into the FIFO');
      } finally {
        fs.closeSync(reader);
      }
    });

    it('paths given as bytes (not UTF-8); errors name the path; ENOENT for a missing parent', async () => {
      const dir = freshDir();
      const p = Buffer.concat([Buffer.from(dir + '/'), Buffer.from([0x62, 0xff, 0xfe])]);
      await api.restoreFile(p, Buffer.from('bytes'), { truncate: false, mode: 0o640, ...T });
      const names = fs.readdirSync(dir, { encoding: 'buffer' });
      assert.deepEqual(names, [Buffer.from([0x62, 0xff, 0xfe])]);
      assert.equal(fs.readFileSync(p, 'utf8'), 'bytes');
      await assert.rejects(api.restoreFile(p, Buffer.from('x'), { truncate: false, mode: 0o640, ...T }), sysErr('EEXIST', 'open', p.toString('utf8')));
      const nope = path.join(dir, 'missing', 'f');
      await assert.rejects(api.restoreFile(nope, Buffer.from('x'), { truncate: false, mode: 0o640, ...T }), sysErr('ENOENT', 'open', nope));
    });

    it('rejects bad arguments (TypeError/RangeError) before touching anything', async () => {
      const dir = freshDir();
      const f = path.join(dir, 'f');
      const ok = { truncate: false, mode: 0o600, ...T };
      const bad: Array<[unknown, unknown, unknown, typeof TypeError]> = [
        [`${f}\0`, null, ok, TypeError],
        [42, null, ok, TypeError],
        [f, 'data', ok, TypeError],
        [f, null, { ...ok, truncate: undefined }, TypeError],
        [f, null, { ...ok, mode: 1.5 }, TypeError],
        [f, null, { ...ok, mode: -1 }, RangeError],
        [f, null, { ...ok, atimeNs: 1 }, TypeError],
        [f, null, { ...ok, mtimeNs: 2n ** 63n }, RangeError],
        [f, null, { ...ok, owner: { uid: -1, gid: 0 } }, RangeError],
        [f, null, { ...ok, xattrs: 'x' }, TypeError],
        [f, null, { ...ok, xattrs: [{ name: '', value: Buffer.alloc(1) }] }, TypeError],
        [f, null, { ...ok, xattrs: [{ name: 'user.x', value: 'v' }] }, TypeError],
      ];
      for (const [p, d, o, cls] of bad) {
        await assert.rejects(
          Promise.resolve().then(() => api.restoreFile(p as string, d as Uint8Array, o as never)),
          cls,
          JSON.stringify([p, o], (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)),
        );
      }
      assert.equal(fs.existsSync(f), false);
    });
  });

  describe(`${impl.name}: restoreSealedFile`, () => {
    const key = api.sealKey(Buffer.alloc(32, 7), Buffer.alloc(16, 8), Buffer.alloc(16, 9));
    const text = Buffer.from('one blob, one file\n'.repeat(3000));

    it('opens the blob (compressed or not) and writes it as the whole file with its metadata', async () => {
      const dir = freshDir();
      for (const compress of [false, true]) {
        const s = await api.seal(key, text, { compress, level: 3, hash: true });
        assert.equal(s.uncompressedLength > 0, compress, 'the text compresses');
        const f = path.join(dir, `f-${compress}`);
        const out = Buffer.alloc(text.length);
        const content = { key, sealed: s.sealed, out, uncompressedLength: s.uncompressedLength, maxSize: 1 << 20, id: s.id };
        assert.deepEqual(await api.restoreSealedFile(f, content, { truncate: false, mode: 0o100604, ...T }), { warnings: [] });
        assert.ok(fs.readFileSync(f).equals(text));
        const st = fs.lstatSync(f, { bigint: true });
        assert.equal(Number(st.mode) & 0o7777, 0o604);
        assert.equal(st.mtimeNs, T.mtimeNs);
      }
    });

    it('a blob that does not open (MAC, hash) rejects with ERR_CAIRN_CORRUPT and creates nothing', async () => {
      const dir = freshDir();
      const s = await api.seal(key, text, { compress: true, level: 3, hash: true });
      const flipped = Buffer.from(s.sealed);
      flipped[40]! ^= 1;
      const base = { key, out: Buffer.alloc(text.length), uncompressedLength: s.uncompressedLength, maxSize: 1 << 20 };
      const cases: Array<[string, typeof base & { sealed: Uint8Array; id?: string }]> = [
        ['mac', { ...base, sealed: flipped, id: s.id }],
        ['hash', { ...base, sealed: s.sealed, id: 'ab'.repeat(32) }],
      ];
      for (const [reason, content] of cases) {
        const f = path.join(dir, reason);
        await assert.rejects(api.restoreSealedFile(f, content, { truncate: false, mode: 0o600, ...T }), (e: unknown) => {
          const err = e as { code?: string; reason?: string };
          assert.equal(err.code, 'ERR_CAIRN_CORRUPT');
          assert.equal(err.reason, reason);
          return true;
        });
        assert.equal(fs.existsSync(f), false, `${reason}: nothing created`);
      }
    });

    it('file errors are restoreFile\'s (EEXIST without truncate, ENOENT for a missing parent)', async () => {
      const dir = freshDir();
      const s = await api.seal(key, text, { compress: false, level: 3 });
      const content = () => ({ key, sealed: s.sealed, out: Buffer.alloc(text.length), uncompressedLength: 0, maxSize: 1 << 20 });
      const f = path.join(dir, 'taken');
      fs.writeFileSync(f, 'old');
      await assert.rejects(api.restoreSealedFile(f, content(), { truncate: false, mode: 0o600, ...T }), sysErr('EEXIST', 'open', f));
      assert.equal(fs.readFileSync(f, 'utf8'), 'old');
      const g = path.join(dir, 'missing', 'g');
      await assert.rejects(api.restoreSealedFile(g, content(), { truncate: false, mode: 0o600, ...T }), sysErr('ENOENT', 'open', g));
    });
  });

  describe(`${impl.name}: finishDir`, () => {
    it('applies mode, owner, attributes and times to a directory by path; calls of one turn each get theirs', async (t) => {
      const dir = freshDir();
      const why = xattrProblem(api, dir);
      const owner = isRoot ? { uid: 4321, gid: 8765 } : { uid: myUid, gid: myGid };
      const xattrs = why === undefined ? [{ name: 'user.cairn.d', value: Buffer.from('v') }] : [];
      const names = Array.from({ length: 40 }, (_, i) => `d${i}`);
      for (const n of names) fs.mkdirSync(path.join(dir, n), { mode: 0o700 });
      const rs = await Promise.all(names.map((n, i) => api.finishDir(path.join(dir, n), { mode: i % 2 ? 0o1777 : 0o2750, owner, xattrs, ...T })));
      for (const [i, n] of names.entries()) {
        assert.deepEqual(rs[i], { warnings: [] });
        const st = fs.lstatSync(path.join(dir, n), { bigint: true });
        assert.equal((Number(st.mode) & 0o7777).toString(8), (i % 2 ? 0o1777 : 0o2750).toString(8), n);
        assert.equal(Number(st.uid), owner.uid);
        assert.equal(st.atimeNs, T.atimeNs);
        assert.equal(st.mtimeNs, T.mtimeNs);
        if (why === undefined) assert.deepEqual(api.lgetxattrs(path.join(dir, n)).find((x) => x.name === 'user.cairn.d')?.value, Buffer.from('v'));
      }
      if (why !== undefined) t.diagnostic(`xattr assertion skipped: ${why}`);
    });

    it('a symlink (even to a directory), a file or nothing at the name is refused and left alone', async () => {
      const dir = freshDir();
      const target = path.join(dir, 'target');
      fs.mkdirSync(target, { mode: 0o700 });
      fs.symlinkSync(target, path.join(dir, 'link'));
      fs.writeFileSync(path.join(dir, 'file'), 'x', { mode: 0o600 });
      const meta = { mode: 0o777, ...T };
      await assert.rejects(api.finishDir(path.join(dir, 'link'), meta), sysErr('ENOTDIR', 'open', path.join(dir, 'link')));
      await assert.rejects(api.finishDir(path.join(dir, 'file'), meta), sysErr('ENOTDIR', 'open', path.join(dir, 'file')));
      await assert.rejects(api.finishDir(path.join(dir, 'none'), meta), sysErr('ENOENT', 'open', path.join(dir, 'none')));
      assert.equal(fs.statSync(target).mode & 0o7777, 0o700);
      assert.equal(fs.statSync(path.join(dir, 'file')).mode & 0o7777, 0o600);
    });
  });

  describe(`${impl.name}: finishFile`, () => {
    it('applies mode, owner, attributes and times through a descriptor', async (t) => {
      const dir = freshDir();
      const why = xattrProblem(api, dir);
      const f = path.join(dir, 'f');
      const h = await fs.promises.open(f, 'w', 0o600);
      let r: FileMetaResult;
      try {
        await h.write('piece one, ');
        await h.write('piece two');
        const owner = isRoot ? { uid: 4321, gid: 8765 } : { uid: myUid, gid: myGid };
        const xattrs = why === undefined ? [{ name: 'user.cairn.f', value: Buffer.from('v') }] : [];
        r = await api.finishFile(h.fd, { mode: 0o102755, owner, xattrs, ...T });
        // renaming does not matter: the descriptor is the file
        fs.renameSync(f, path.join(dir, 'g'));
        assert.equal(Number(fs.statSync(path.join(dir, 'g')).uid), owner.uid);
      } finally {
        await h.close();
      }
      assert.deepEqual(r, { warnings: [] });
      const st = fs.lstatSync(path.join(dir, 'g'), { bigint: true });
      assert.equal(Number(st.mode) & 0o7777, 0o2755);
      assert.equal(st.atimeNs, T.atimeNs);
      assert.equal(st.mtimeNs, T.mtimeNs);
      if (why === undefined) assert.deepEqual(api.lgetxattrs(path.join(dir, 'g')).find((x) => x.name === 'user.cairn.f')?.value, Buffer.from('v'));
      else t.diagnostic(`xattr assertion skipped: ${why}`);
    });

    it('EBADF for a closed descriptor (no path); bad arguments', async () => {
      const fd = fs.openSync(path.join(freshDir(), 'f'), 'w');
      fs.closeSync(fd);
      await assert.rejects(api.finishFile(fd, { mode: 0o600, ...T }), sysErr('EBADF', 'fchmod'));
      await assert.rejects(Promise.resolve().then(() => api.finishFile(-1, { mode: 0o600, ...T })), RangeError);
      await assert.rejects(Promise.resolve().then(() => api.finishFile('3' as unknown as number, { mode: 0o600, ...T })), TypeError);
      await assert.rejects(Promise.resolve().then(() => api.finishFile(fd, { mode: 0o600, atimeNs: 0 as unknown as bigint, mtimeNs: 0n })), TypeError);
    });

    it('ownership that cannot be given away is a warning (not root), or works (root)', async () => {
      const fd = fs.openSync(path.join(freshDir(), 'f'), 'w');
      try {
        const r = await api.finishFile(fd, { mode: 0o640, owner: { uid: isRoot ? 1 : myUid + 1, gid: isRoot ? 1 : myGid }, ...T });
        if (isRoot) assert.deepEqual(r.warnings, []);
        else assert.deepEqual(r.warnings, [{ syscall: 'fchown', code: 'EPERM', errno: -os.constants.errno.EPERM }]);
        // the remaining steps ran
        const st = fs.fstatSync(fd, { bigint: true });
        assert.equal(Number(st.mode) & 0o7777, 0o640);
        assert.equal(st.mtimeNs, T.mtimeNs);
      } finally {
        fs.closeSync(fd);
      }
    });
  });
}

/** One scenario through an implementation: what it reported and what it left on disk. */
async function scenario(api: NativeApi, dir: string): Promise<unknown[]> {
  const log: unknown[] = [];
  const rel = (p: string | undefined) => (p === undefined ? undefined : path.relative(dir, p));
  const record = async (what: string, p: Promise<unknown>) => {
    try {
      log.push([what, 'ok', await p]);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      log.push([what, 'error', err.code, err.errno, err.syscall, rel(err.path), err.constructor.name]);
    }
  };
  const data = Buffer.alloc(70_000);
  for (let i = 0; i < data.length; i += 997) data[i] = (i * 7) & 0xff;
  data.fill(0, 8192, 40960);
  const xattrs = [{ name: 'user.eq', value: Buffer.from('1') }, { name: 'bad.eq', value: Buffer.from('2') }];
  await record('create', api.restoreFile(path.join(dir, 'a'), data, { truncate: false, mode: 0o4750, ...T }));
  await record('sparse', api.restoreFile(path.join(dir, 's'), data, { truncate: false, sparse: true, mode: 0o644, xattrs, ...T }));
  await record('exists', api.restoreFile(path.join(dir, 'a'), data, { truncate: false, mode: 0o644, ...T }));
  await record('truncate', api.restoreFile(path.join(dir, 'a'), data.subarray(0, 10), { truncate: true, mode: 0o600, atimeNs: 5n, mtimeNs: 6n }));
  fs.linkSync(path.join(dir, 'a'), path.join(dir, 'a2'));
  await record('linked', api.restoreFile(path.join(dir, 'a'), data, { truncate: true, mode: 0o600, ...T }));
  fs.symlinkSync('a', path.join(dir, 'l'));
  await record('symlink', api.restoreFile(path.join(dir, 'l'), data, { truncate: true, mode: 0o600, ...T }));
  await record('missing parent', api.restoreFile(path.join(dir, 'no', 'f'), data, { truncate: false, mode: 0o600, ...T }));
  await record('bad mode', Promise.resolve().then(() => api.restoreFile(path.join(dir, 'm'), data, { truncate: false, mode: 2 ** 33, ...T })));
  const fd = fs.openSync(path.join(dir, 'h'), 'w');
  fs.writeSync(fd, 'handle');
  await record('finish', api.finishFile(fd, { mode: 0o1751, xattrs, atimeNs: -7n, mtimeNs: 8n }));
  fs.closeSync(fd);
  await record('finish closed', api.finishFile(fd, { mode: 0o600, ...T }));
  // all stats before any read (reading updates atime, shared by hard links); the symlink's own
  // times are those of its creation, which differ from run to run
  const names = fs.readdirSync(dir).sort();
  const stats = names.map((name) => fs.lstatSync(path.join(dir, name), { bigint: true }));
  names.forEach((name, i) => {
    const st = stats[i]!;
    const p = path.join(dir, name);
    if (!st.isFile()) {
      log.push([name, st.mode.toString(8), fs.readlinkSync(p)]);
      return;
    }
    log.push([name, st.mode.toString(8), st.size, st.nlink, st.atimeNs, st.mtimeNs, st.blocks, fs.readFileSync(p).toString('base64')]);
  });
  return log;
}

describe('restoreFile/finishFile: equivalence of the addon and the fallback', () => {
  it('the same scenario gives the same results, errors and files', async (t) => {
    if (impls.length < 2) {
      t.skip(`needs both implementations: ${missing ?? ''}`);
      return;
    }
    const logs: unknown[][] = [];
    for (const impl of impls) {
      const dir = freshDir();
      logs.push(await scenario(impl.api, dir));
    }
    assert.deepEqual(logs[1], logs[0]);
  });
});
