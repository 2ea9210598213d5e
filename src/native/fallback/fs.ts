/**
 * Fallbacks for the system calls Node's fs module lacks, for when the addon is not built: they run
 * the usual command line tools (attr's getfattr/setfattr, coreutils' mknod/mkfifo/touch) through
 * execFileSync — never a shell — and turn their failures into errors shaped like Node's fs errors
 * (.code = errno name, .errno, .syscall, .path), the same shape the addon throws.
 *
 * Paths may be strings or raw bytes (NativePath). Bytes that are valid UTF-8 are passed as the
 * equivalent string; other bytes cannot be an argument of execFileSync (arguments are JavaScript
 * strings, encoded as UTF-8), so the tool is then started through findutils' `xargs -0`, which
 * reads the path's exact bytes from standard input and appends them to the command line.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CairnError } from '../../core/errors.js';
import type { NativePath, XattrEntry } from '../api.js';

/** strerror() texts (glibc/musl, as the tools print them) → errno names. */
const STRERROR_CODES: ReadonlyArray<readonly [string, string]> = [
  ['No such file or directory', 'ENOENT'],
  ['Operation not supported', 'ENOTSUP'],
  ['Not supported', 'ENOTSUP'],
  ['Operation not permitted', 'EPERM'],
  ['Permission denied', 'EACCES'],
  ['No data available', 'ENODATA'],
  ['No such attribute', 'ENODATA'],
  ['Attribute not found', 'ENODATA'],
  ['File exists', 'EEXIST'],
  ['Not a directory', 'ENOTDIR'],
  ['Is a directory', 'EISDIR'],
  ['Read-only file system', 'EROFS'],
  ['No space left on device', 'ENOSPC'],
  ['Disk quota exceeded', 'EDQUOT'],
  ['Numerical result out of range', 'ERANGE'],
  ['Result not representable', 'ERANGE'],
  ['Argument list too long', 'E2BIG'],
  ['File name too long', 'ENAMETOOLONG'],
  ['Too many levels of symbolic links', 'ELOOP'],
  ['Symbolic link loop', 'ELOOP'],
  ['Invalid argument', 'EINVAL'],
  ['Input/output error', 'EIO'],
  ['I/O error', 'EIO'],
  ['Bad file descriptor', 'EBADF'],
  ['Cannot allocate memory', 'ENOMEM'],
  ['Out of memory', 'ENOMEM'],
  ['Text file busy', 'ETXTBSY'],
  ['Device or resource busy', 'EBUSY'],
  ['Resource busy', 'EBUSY'],
];

const ERRNO_MESSAGES: Record<string, string> = Object.fromEntries(
  STRERROR_CODES.map(([text, code]) => [code, text.charAt(0).toLowerCase() + text.slice(1)]),
);

/** An Error shaped like Node's fs errors. */
export function sysError(code: string, syscall: string, filePath: string, detail?: string): NodeJS.ErrnoException {
  const text = detail ?? ERRNO_MESSAGES[code] ?? 'unknown error';
  const err: NodeJS.ErrnoException = new Error(`${code}: ${text}, ${syscall} '${filePath}'`);
  err.code = code;
  const n = (os.constants.errno as Record<string, number | undefined>)[code];
  if (n !== undefined) err.errno = -n;
  err.syscall = syscall;
  err.path = filePath;
  return err;
}

/** A checked path: `arg` is the string to pass to a tool (undefined when the bytes are not UTF-8). */
interface PathArg {
  /** The exact bytes (for fs calls, which take Buffers, and for xargs). */
  raw: Buffer;
  /** The path as a tool argument, when it can be one. */
  arg: string | undefined;
  /** For error messages and `.path` (invalid UTF-8 shown as U+FFFD, as Node does). */
  shown: string;
}

/** Argument checks shared by the fallbacks; the addon performs the same ones (same error classes). */
function checkPath(p: unknown): PathArg {
  if (typeof p === 'string') {
    if (p.includes('\0')) throw new TypeError('path must not contain NUL bytes');
    return { raw: Buffer.from(p, 'utf8'), arg: p, shown: p };
  }
  if (!(p instanceof Uint8Array)) throw new TypeError('path must be a string or a Uint8Array');
  const raw = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (raw.includes(0)) throw new TypeError('path must not contain NUL bytes');
  const shown = raw.toString('utf8');
  // Valid UTF-8 exactly when decoding and encoding again gives the same bytes.
  const arg = Buffer.from(shown, 'utf8').equals(raw) ? shown : undefined;
  return { raw: Buffer.from(raw), arg, shown };
}

function checkMode(mode: unknown): asserts mode is number {
  if (typeof mode !== 'number' || !Number.isInteger(mode)) throw new TypeError('mode must be an integer');
  if (mode < 0 || mode > 0xffffffff) throw new RangeError('mode must be in 0..2^32-1');
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function checkTime(t: unknown, what: string): asserts t is bigint {
  if (typeof t !== 'bigint') throw new TypeError(`utimens: ${what} must be a bigint`);
  if (t < INT64_MIN || t > INT64_MAX) throw new RangeError(`utimens: ${what} out of the int64 range`);
}

const toolCache = new Map<string, string | null>();

/** Absolute path of an executable found on PATH (or the usual sbin/bin dirs), cached; null if absent. */
function findTool(name: string): string | null {
  const cached = toolCache.get(name);
  if (cached !== undefined) return cached;
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '');
  for (const d of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
    if (!dirs.includes(d)) dirs.push(d);
  }
  let found: string | null = null;
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) {
        found = p;
        break;
      }
    } catch {
      // not here
    }
  }
  toolCache.set(name, found);
  return found;
}

function requireTool(name: string, what: string): string {
  const p = findTool(name);
  if (p === null) {
    throw new CairnError('UNSUPPORTED', `${what} needs the native addon or the '${name}' command, neither is available`);
  }
  return p;
}

/**
 * Runs a tool without a shell, in the C locale so that its error messages can be matched; on
 * failure throws an fs-style error whose code is recognised from stderr (EIO when unknown).
 */
function run(tool: string, args: string[], syscall: string, filePath: string, input?: Buffer): Buffer {
  try {
    return execFileSync(tool, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      input,
      env: { ...process.env, LC_ALL: 'C', LANG: 'C', LANGUAGE: '' },
      maxBuffer: 256 * 1024 * 1024,
    });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer | string }).stderr;
    const text = stderr === undefined ? '' : stderr.toString().trim();
    for (const [msg, code] of STRERROR_CODES) {
      if (text.includes(msg)) throw sysError(code, syscall, filePath);
    }
    const why = text !== '' ? text : e instanceof Error ? e.message : String(e);
    throw sysError('EIO', syscall, filePath, `${path.basename(tool)} failed: ${why}`);
  }
}

/**
 * Runs `tool before... PATH after...`. A path that is not valid UTF-8 goes through `xargs -0`:
 * appended as the last argument (after must be empty) or, with `after`, substituted for a
 * placeholder argument (`-I`), the other arguments being plain numbers and options.
 */
function runOnPath(tool: string, before: string[], p: PathArg, after: string[], syscall: string): Buffer {
  if (p.arg !== undefined) return run(tool, [...before, p.arg, ...after], syscall, p.shown);
  const xargs = requireTool('xargs', 'passing a file name that is not valid UTF-8 to a tool');
  const input = Buffer.concat([p.raw, Buffer.alloc(1)]);
  if (after.length === 0) return run(xargs, ['-0', '-r', '--', tool, ...before], syscall, p.shown, input);
  const slot = '@CAIRN_PATH@';
  return run(xargs, ['-0', '-r', '-I', slot, '--', tool, ...before, slot, ...after], syscall, p.shown, input);
}

/** Undoes getfattr's quoting of attribute names (backslash + three octal digits, and "\\"). */
function unquoteName(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else if (c === 0x5c && raw[i + 1] === 0x5c) {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(c);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Parses one value as printed by `getfattr -e hex` (0x…; base64 0s… accepted too). */
function parseValue(v: string, filePath: string): Buffer {
  if (/^0[xX]([0-9a-fA-F]{2})*$/.test(v)) return Buffer.from(v.slice(2), 'hex');
  if (/^0[sS][A-Za-z0-9+/]*=*$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  throw sysError('EIO', 'lgetxattr', filePath, `unexpected getfattr output: ${JSON.stringify(v)}`);
}

export function lgetxattrs(filePath: NativePath): XattrEntry[] {
  const p = checkPath(filePath);
  const tool = requireTool('getfattr', 'reading extended attributes');
  // getfattr exits 0 and prints nothing for a missing file in some versions: check it first so
  // the error is the same as the addon's.
  try {
    fs.lstatSync(p.raw);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw sysError(code, 'llistxattr', p.shown);
  }
  // -h: do not follow a final symlink; -d: dump values; -m -: every namespace; -e hex: exact bytes.
  const out = runOnPath(tool, ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--'], p, [], 'llistxattr');
  const entries: XattrEntry[] = [];
  for (const line of out.toString('utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    // An attribute with an empty value is printed as its bare name.
    if (eq < 0) entries.push({ name: unquoteName(line), value: Buffer.alloc(0) });
    else entries.push({ name: unquoteName(line.slice(0, eq)), value: parseValue(line.slice(eq + 1), p.shown) });
  }
  return entries;
}

export function lsetxattr(filePath: NativePath, name: string, value: Uint8Array): void {
  const p = checkPath(filePath);
  if (typeof name !== 'string' || name === '' || name.includes('\0')) {
    throw new TypeError('lsetxattr: name must be a non-empty string without NUL');
  }
  if (!(value instanceof Uint8Array)) throw new TypeError('lsetxattr: value must be a Uint8Array');
  const tool = requireTool('setfattr', 'setting extended attributes');
  const args = ['-h', '-n', name];
  // setfattr treats a missing -v as the empty value; "0x" with no digits would be rejected.
  if (value.length > 0) args.push('-v', '0x' + Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex'));
  args.push('--');
  runOnPath(tool, args, p, [], 'lsetxattr');
}

const S_IFMT = 0o170000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Linux st_rdev → (major, minor), decoded as glibc's major()/minor() do (each 32 bits). */
export function splitDev(dev: bigint): { major: bigint; minor: bigint } {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return { major, minor };
}

/** (major, minor) → st_rdev, as glibc's makedev() encodes it. */
export function makeDev(major: bigint, minor: bigint): bigint {
  return ((major & 0xfffn) << 8n) | ((major & 0xfffff000n) << 32n) | (minor & 0xffn) | ((minor & 0xffffff00n) << 12n);
}

/**
 * coreutils' mknod/mkfifo -m accept only rwx bits ("mode must specify only file permission bits"),
 * so setuid/setgid/sticky are added with chmod afterwards; -m itself is applied without umask.
 */
function applySpecialBits(p: PathArg, mode: number): void {
  if ((mode & 0o7000) === 0) return;
  try {
    fs.chmodSync(p.raw, mode & 0o7777);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw sysError(code, 'chmod', p.shown);
  }
}

export function mknod(filePath: NativePath, mode: number, dev: bigint): void {
  const p = checkPath(filePath);
  checkMode(mode);
  if (typeof dev !== 'bigint') throw new TypeError('mknod: dev must be a bigint');
  if (dev < 0n || dev > 0xffffffffffffffffn) throw new RangeError('mknod: dev must be in 0..2^64-1');
  const type = mode & S_IFMT;
  if (type !== S_IFCHR && type !== S_IFBLK) {
    throw sysError('EINVAL', 'mknod', p.shown, 'invalid argument (mode must include S_IFBLK or S_IFCHR)');
  }
  const tool = requireTool('mknod', 'creating device nodes');
  const { major, minor } = splitDev(dev);
  // Bits that major/minor cannot carry: the addon's mknod(2) rejects such a dev with EINVAL too.
  if (makeDev(major, minor) !== dev) throw sysError('EINVAL', 'mknod', p.shown);
  const perm = (mode & 0o777).toString(8);
  runOnPath(tool, ['-m', perm, '--'], p, [type === S_IFBLK ? 'b' : 'c', major.toString(), minor.toString()], 'mknod');
  applySpecialBits(p, mode);
}

export function mkfifo(filePath: NativePath, mode: number): void {
  const p = checkPath(filePath);
  checkMode(mode);
  const tool = requireTool('mkfifo', 'creating FIFOs');
  runOnPath(tool, ['-m', (mode & 0o777).toString(8), '--'], p, [], 'mkfifo');
  applySpecialBits(p, mode);
}

/** Nanoseconds since the epoch as touch's "@SECONDS.NNNNNNNNN". */
function touchTime(ns: bigint): string {
  const neg = ns < 0n;
  const abs = neg ? -ns : ns;
  const sec = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, '0');
  return `@${neg ? '-' : ''}${sec}.${frac}`;
}

export function utimens(filePath: NativePath, atimeNs: bigint, mtimeNs: bigint, nofollow: boolean): void {
  const p = checkPath(filePath);
  checkTime(atimeNs, 'atimeNs');
  checkTime(mtimeNs, 'mtimeNs');
  if (typeof nofollow !== 'boolean') throw new TypeError('utimens: nofollow must be a boolean');
  const tool = requireTool('touch', 'setting timestamps');
  // touch would create a missing file; utimensat fails with ENOENT, so check first.
  try {
    if (nofollow) fs.lstatSync(p.raw);
    else fs.statSync(p.raw);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    throw sysError(code, 'utimensat', p.shown);
  }
  const common = nofollow ? ['-h', '-c'] : ['-c'];
  runOnPath(tool, [...common, '-a', '-d', touchTime(atimeNs), '--'], p, [], 'utimensat');
  runOnPath(tool, [...common, '-m', '-d', touchTime(mtimeNs), '--'], p, [], 'utimensat');
}

/**
 * fsetxattr(fd, name, value) for the fallback of restoreFile/finishFile: setfattr on
 * /proc/<pid>/fd/<fd> *without* -h, so the kernel follows that magic link to the open file itself
 * (whatever its name is now). Errors are shaped as the others, with syscall 'fsetxattr'.
 */
export function fsetxattr(fd: number, name: string, value: Uint8Array): void {
  const tool = requireTool('setfattr', 'setting extended attributes');
  const target = `/proc/${process.pid}/fd/${fd}`;
  const args = ['-n', name];
  if (value.length > 0) args.push('-v', '0x' + Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex'));
  args.push('--', target);
  run(tool, args, 'fsetxattr', target);
}

/** mkdir(): node:fs (mode checked as the addon checks it). */
export async function mkdir(dirPath: NativePath, mode: number): Promise<void> {
  if (!Number.isInteger(mode)) throw Object.assign(new TypeError('mode must be an integer'), { code: 'ERR_INVALID_ARG_TYPE' });
  if (mode < 0 || mode > 0o7777) throw Object.assign(new RangeError('mode must be from 0 to 0o7777'), { code: 'ERR_OUT_OF_RANGE' });
  await fs.promises.mkdir(checkPath(dirPath).raw, { mode });
}

/** pread(): open, read until `length` bytes or end of file, close; node:fs errors as they come. */
export async function pread(filePath: NativePath, offset: number, length: number, out: Uint8Array): Promise<number> {
  if (length > out.length) throw Object.assign(new RangeError('out is shorter than length'), { code: 'ERR_OUT_OF_RANGE' });
  const fh = await fs.promises.open(checkPath(filePath).raw, 'r');
  try {
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(out, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got;
  } finally {
    await fh.close();
  }
}
