/**
 * Loader for the native layer: the N-API addon `cairn_native` when it was built
 * (<repoRoot>/native/build/Release/cairn_native.node), else the pure TypeScript fallback.
 * CAIRN_NATIVE=0 forces the fallback. An addon built without zstd has no blob kernels: the
 * fallback's are used then and `native.blobKernelsInfo` says why. Never prints: whoever cares
 * asks `native.kind` / `native.blobKernels`.
 *
 * The addon's asynchronous kernels (seal, open, sha256) run on its own threads, one per CPU
 * (native/src/kpool.c): callers may queue as many jobs as they like, and libuv's thread pool is
 * left to file I/O (the addon's batched reads and writes, and Node's fs). If UV_THREADPOOL_SIZE is
 * not set, this module raises it (before the pool starts, which it does on first use) to CPU
 * count + 2 on machines with more than two CPUs.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Coalescer } from '../core/coalesce.js';
import type { BlobKernels, FileKernels, FileMeta, FileMetaResult, NativeApi, NativePath, OpenOptions, ReadFileResult, SealedBlob, SealKey } from './api.js';
import * as fallbackFs from './fallback/fs.js';
import * as fallbackWrite from './fallback/writefile.js';
import { poly1305 as fallbackPoly1305 } from './fallback/poly1305.js';
import { rabin as fallbackRabin } from './fallback/rabin.js';
import { makeBlobKernels } from './fallback/seal.js';

export type {
  BlobKernels,
  CorruptReason,
  NativeApi,
  NativePath,
  OpenOptions,
  SealedContent,
  RabinKernel,
  ReadFileOptions,
  ReadFileResult,
  SealedBlob,
  SealKey,
  SealOptions,
  Sha256Stream,
  XattrEntry,
  FileKernels,
  FileMeta,
  FileMetaResult,
  FileMetaWarning,
  RestoreFileOptions,
} from './api.js';

const ADDON_RELATIVE = path.join('native', 'build', 'Release', 'cairn_native.node');

/** What the addon module exports: the system calls and kernels as in NativeApi, the blob kernels raw. */
type AddonExports = Pick<NativeApi, 'poly1305' | 'rabin' | 'lgetxattrs' | 'lsetxattr' | 'mknod' | 'mkfifo' | 'utimens'> & {
  /** Library versions when built with the blob kernels. */
  blobKernels?: string;
  /** Why the blob kernels are missing (built without zstd). */
  blobKernelsMissing?: string;
  sealKey?: (encrypt: Uint8Array, macK: Uint8Array, macR: Uint8Array) => SealKey;
  /** With `out`, `sealed` comes back as the number of bytes written into it. */
  seal?: (key: SealKey, data: Uint8Array, compress: boolean, level: number, hash: boolean, iv?: Uint8Array, out?: Uint8Array) => Promise<RawSealed>;
  sealSync?: (key: SealKey, data: Uint8Array, compress: boolean, level: number, hash: boolean, iv?: Uint8Array, out?: Uint8Array) => RawSealed;
  /** With `out`, the number of bytes written into it. */
  open?: (key: SealKey, sealed: Uint8Array, ulen: number, maxSize: number, id?: Uint8Array, out?: Uint8Array) => Promise<Buffer | number>;
  openSync?: (key: SealKey, sealed: Uint8Array, ulen: number, maxSize: number, id?: Uint8Array, out?: Uint8Array) => Buffer | number;
  verify?: (key: SealKey, sealed: Uint8Array, ulen: number, maxSize: number, id?: Uint8Array) => Promise<number>;
  sha256?: (data: Uint8Array | readonly Uint8Array[]) => Promise<string>;
  sha256Stream?: () => object;
  sha256Update?: (stream: object, data: Uint8Array) => Promise<void>;
  sha256Digest?: (stream: object) => string;
  readFile?: (
    path: NativePath,
    out: Uint8Array,
    dev: bigint | undefined,
    ino: bigint | undefined,
    hash: boolean,
    key?: SealKey,
    compress?: boolean,
    level?: number,
    sealOut?: Uint8Array,
  ) => Promise<RawReadFile>;
  /** readFile for several files in one job: each request is readFile's arguments; one outcome (result or Error) each. */
  readFileBatch?: (requests: unknown[][]) => Promise<Array<RawReadFile | Error>>;
  /** open for several blobs in one job: each request is open's arguments; one outcome (result or Error) each. */
  openBatch?: (requests: unknown[][]) => Promise<Array<Buffer | number | Error>>;
  lstatBatch?: NativeApi['lstatBatch'];
  alignedBuffer?: NativeApi['alignedBuffer'];
  /** restoreFile(path, data, truncate, sparse, mode, chown, uid, gid, atimeNs, mtimeNs, xattrs?) */
  restoreFile?: (...args: RawRestoreArgs) => Promise<FileMetaResult>;
  /** restoreFile for several files in one job: each request is restoreFile's arguments; one outcome (result or Error) each. */
  restoreFileBatch?: (requests: RawRestoreArgs[]) => Promise<Array<FileMetaResult | Error>>;
  /** (path, offset, length, out) per request; bytes read or an Error each. */
  preadBatch?: (requests: unknown[][]) => Promise<Array<number | Error>>;
  mkdirBatch?: (requests: unknown[][]) => Promise<Array<null | Error>>;
  finishDirBatch?: (requests: unknown[][]) => Promise<Array<FileMetaResult | Error>>;
  /** open's six arguments then restoreFile's eleven (its data ignored) per request; one outcome (result or Error) each. */
  openRestoreFileBatch?: (requests: unknown[][]) => Promise<Array<FileMetaResult | Error>>;
  /** finishFile(fd, mode, chown, uid, gid, atimeNs, mtimeNs, xattrs?) */
  finishFile?: (fd: number, ...meta: RawMetaArgs) => Promise<FileMetaResult>;
  fastcdcBoundaries?: NativeApi['fastcdcBoundaries'];
};
type RawMetaArgs = [mode: number, chown: boolean, uid: number, gid: number, atimeNs: bigint, mtimeNs: bigint, xattrs: FileMeta['xattrs']];
type RawRestoreArgs = [path: NativePath, data: Uint8Array | null, truncate: boolean, sparse: boolean, ...meta: RawMetaArgs];
type RawSealed = Omit<SealedBlob, 'sealed'> & { sealed: Buffer | number };
/** readFile's outcome as the addon gives it (an array: cheaper to make from C than an object). */
type RawReadFile = [length: number, size: number, complete: boolean, id?: string, sealedLength?: number, uncompressedLength?: number];
const ADDON_FUNCTIONS = ['poly1305', 'rabin', 'lgetxattrs', 'lsetxattr', 'mknod', 'mkfifo', 'utimens'] as const;
const BLOB_FUNCTIONS = ['sealKey', 'seal', 'sealSync', 'open', 'openSync', 'verify', 'sha256', 'sha256Stream', 'sha256Update', 'sha256Digest', 'readFile'] as const;

const cpus = Math.max(1, availableParallelism());
if (process.env.UV_THREADPOOL_SIZE === undefined && cpus + 2 > 4) process.env.UV_THREADPOOL_SIZE = String(cpus + 2);

/**
 * How many kernel jobs run at once: the addon's kernel threads (CAIRN_KERNEL_THREADS, else one per
 * CPU). Callers size their in-flight windows by it.
 */
export function kernelConcurrency(): number {
  // read as the addon reads it (kpool.c): a whole number from 1 to 256, else ignored
  const v = process.env.CAIRN_KERNEL_THREADS ?? '';
  const n = /^\d+$/.test(v) ? Number(v) : 0;
  return n >= 1 && n <= 256 ? n : cpus;
}

/** 32 raw bytes for an ID given as hex (validated) or bytes; undefined stays undefined. */
function idBytes(id: OpenOptions['id']): Uint8Array | undefined {
  if (id === undefined || id === null) return undefined;
  if (typeof id !== 'string') return id;
  const b = Buffer.from(id, 'hex');
  if (id.length !== 64 || b.length !== 32) {
    throw Object.assign(new RangeError('id must be 64 hex digits'), { code: 'ERR_OUT_OF_RANGE' });
  }
  return b;
}

/** A Buffer view of the first n bytes of out. */
function viewOf(out: Uint8Array, n: number): Buffer {
  return Buffer.isBuffer(out) ? out.subarray(0, n) : Buffer.from(out.buffer, out.byteOffset, n);
}

/** Turns the addon's in-place result (a byte count) into a view of the destination. */
function sealedView(r: RawSealed, out: Uint8Array | undefined): SealedBlob {
  if (typeof r.sealed === 'number') (r as SealedBlob).sealed = viewOf(out!, r.sealed);
  return r as SealedBlob;
}

function plainView(r: Buffer | number, out: Uint8Array | undefined): Buffer {
  return typeof r === 'number' ? viewOf(out!, r) : r;
}

/** Calls an addon function that returns a promise: an argument error it throws becomes the promise's rejection, as the API promises. */
function rejecting<T>(call: () => Promise<T>): Promise<T> {
  try {
    return call();
  } catch (e) {
    return Promise.reject(e);
  }
}

/** The addon's blob kernels behind the NativeApi signatures. */
function addonBlobKernels(
  m: Required<Pick<AddonExports, (typeof BLOB_FUNCTIONS)[number]>> & Pick<AddonExports, 'readFileBatch' | 'openBatch'>,
  info: string,
): BlobKernels {
  const batch = m.readFileBatch;
  // Up to 32 files per job (a few MiB with the archiver's small files), spread over as many jobs
  // as the kernels may run at once.
  // Blob opens of one event-loop turn (a restore opens every blob of a pack range at once) share
  // jobs too.
  const openMany = m.openBatch;
  const openBatcher =
    openMany === undefined ? undefined : new Coalescer<unknown[], Buffer | number>((reqs) => openMany(reqs), { maxBatch: 64, lanes: kernelConcurrency() });
  const readBatcher = batch === undefined ? undefined : new Coalescer<unknown[], RawReadFile>((reqs) => batch(reqs), { maxBatch: 32, lanes: kernelConcurrency() });
  return {
    blobKernels: 'native',
    blobKernelsInfo: info,
    sealKey: m.sealKey,
    seal: (key, data, o) => rejecting(() => m.seal(key, data, o.compress, o.level, o.hash ?? false, o.iv, o.out)).then((r) => sealedView(r, o.out)),
    sealSync: (key, data, o) => sealedView(m.sealSync(key, data, o.compress, o.level, o.hash ?? false, o.iv, o.out), o.out),
    open: (key, sealed, o) =>
      (openBatcher !== undefined
        ? openBatcher.submit([key, sealed, o.uncompressedLength, o.maxSize, idBytes(o.id), o.out])
        : rejecting(() => m.open(key, sealed, o.uncompressedLength, o.maxSize, idBytes(o.id), o.out))
      ).then((r) => plainView(r, o.out)),
    openSync: (key, sealed, o) => plainView(m.openSync(key, sealed, o.uncompressedLength, o.maxSize, idBytes(o.id), o.out), o.out),
    verify: (key, sealed, o) => rejecting(() => m.verify(key, sealed, o.uncompressedLength, o.maxSize, idBytes(o.id))),
    sha256: (data) => rejecting(() => m.sha256(data)),
    sha256Stream: () => {
      const s = m.sha256Stream();
      return { update: (data) => rejecting(() => m.sha256Update(s, data)), digest: () => m.sha256Digest(s) };
    },
    // I/O (libuv's pool); callers bound how many files they read.
    // Calls made in one turn of the event loop share thread-pool jobs (see core/coalesce.ts).
    readFile: (path, out, o = {}) => {
      const sl = o.seal;
      const args: unknown[] = sl ? [path, out, o.dev, o.ino, o.hash ?? false, sl.key, sl.compress, sl.level, sl.out] : [path, out, o.dev, o.ino, o.hash ?? false];
      const p = readBatcher !== undefined ? readBatcher.submit(args) : (m.readFile as (...a: unknown[]) => Promise<RawReadFile>)(...args);
      return p.then((r) => {
        const result: ReadFileResult = { length: r[0], size: r[1], complete: r[2] };
        if (r[3] !== undefined) result.id = r[3];
        if (r[4] !== undefined) result.sealed = { sealed: viewOf(sl!.out, r[4]), uncompressedLength: r[5] ?? 0 };
        return result;
      });
    },
  };
}

function rawMeta(m: FileMeta): RawMetaArgs {
  const o = m.owner;
  return [m.mode, o !== undefined, o?.uid ?? 0, o?.gid ?? 0, m.atimeNs, m.mtimeNs, m.xattrs];
}

/**
 * The addon's restoreFile/finishFile behind the FileKernels signatures; the fallback's when the
 * addon predates them. I/O jobs on libuv's pool (callers bound them).
 */
function fileKernels(m: Partial<AddonExports>): FileKernels {
  const { restoreFile, finishFile } = m;
  if (typeof restoreFile !== 'function' || typeof finishFile !== 'function') {
    return { restoreFile: fallbackWrite.restoreFile, finishFile: fallbackWrite.finishFile, finishDir: fallbackWrite.finishDir };
  }
  // The files a restore completes in one event-loop turn share thread-pool jobs (core/coalesce.ts).
  const many = m.restoreFileBatch;
  const batcher = typeof many === 'function' ? new Coalescer<RawRestoreArgs, FileMetaResult>((reqs) => many(reqs), { maxBatch: 32, lanes: kernelConcurrency() }) : undefined;
  return {
    restoreFile: (path, data, o) => {
      const args: RawRestoreArgs = [path, data ?? null, o.truncate, o.sparse ?? false, ...rawMeta(o)];
      return batcher !== undefined ? batcher.submit(args) : restoreFile(...args);
    },
    finishFile: (fd, meta) => finishFile(fd, ...rawMeta(meta)),
    finishDir: directoryFinisher(m.finishDirBatch),
  };
}

/** finishDir: the addon's batch job (libuv's pool; a restore finishes ~30 directories at a time), else the fallback. */
function directoryFinisher(many: AddonExports['finishDirBatch']): FileKernels['finishDir'] {
  if (typeof many !== 'function') return fallbackWrite.finishDir;
  const batcher = new Coalescer<unknown[], FileMetaResult>((reqs) => many(reqs), { maxBatch: 64, lanes: 1 });
  return (path, meta) => batcher.submit([path, ...rawMeta(meta)]);
}

/** pread: the addon's batch job (I/O, libuv's pool), else node:fs. */
function rangedReader(many: AddonExports['preadBatch']): NativeApi['pread'] {
  if (typeof many !== 'function') return fallbackFs.pread;
  const batcher = new Coalescer<unknown[], number>((reqs) => many(reqs), { maxBatch: 32, lanes: kernelConcurrency() });
  return (path, offset, length, out) => batcher.submit([path, offset, length, out]);
}

/** mkdir: the addon's batch job (I/O, libuv's pool), else node:fs. */
function directoryMaker(many: AddonExports['mkdirBatch']): NativeApi['mkdir'] {
  if (typeof many !== 'function') return fallbackFs.mkdir;
  // a restore makes ~30 directories at a time: few jobs, large batches
  const batcher = new Coalescer<unknown[], null>((reqs) => many(reqs), { maxBatch: 64, lanes: 1 });
  return (path, mode) => batcher.submit([path, mode]).then(() => undefined);
}

/**
 * restoreSealedFile: the addon's combined job (requests of one event-loop turn share jobs, see
 * core/coalesce.ts; on libuv's pool like restoreFile), or
 * open() then restoreFile().
 */
function sealedFileRestorer(many: AddonExports['openRestoreFileBatch'], blob: BlobKernels, files: FileKernels): NativeApi['restoreSealedFile'] {
  if (typeof many !== 'function') {
    return async (path, c, o) => files.restoreFile(path, await blob.open(c.key, c.sealed, c), o);
  }
  const batcher = new Coalescer<unknown[], FileMetaResult>((reqs) => many(reqs), { maxBatch: 32, lanes: kernelConcurrency() });
  return (path, c, o) => {
    let args: unknown[];
    try {
      args = [c.key, c.sealed, c.uncompressedLength, c.maxSize, idBytes(c.id), c.out, path, null, o.truncate, o.sparse ?? false, ...rawMeta(o)];
    } catch (e) {
      return Promise.reject(e);
    }
    return batcher.submit(args);
  };
}

function readPackageName(file: string): string | undefined {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (pkg !== null && typeof pkg === 'object' && 'name' in pkg && typeof pkg.name === 'string') return pkg.name;
  } catch {
    // unreadable or not JSON: not ours
  }
  return undefined;
}

/**
 * The repository (or installed package) root: walking up from this module (dist/native/,
 * build/src/native/, ...), the directory whose package.json is cairn's; else the first directory
 * with any package.json; undefined if there is none.
 */
export function findRepoRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string | undefined {
  let first: string | undefined;
  for (let dir = from; ; ) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      if (readPackageName(pkg) === 'cairn') return dir;
      first ??= dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return first;
    dir = parent;
  }
}

/** Where the addon is expected (it may not exist). */
export function addonPath(): string | undefined {
  const root = findRepoRoot();
  return root === undefined ? undefined : path.join(root, ADDON_RELATIVE);
}

let addonError: unknown;

/** Why the addon could not be loaded by the last loadAddon() call (undefined if it loaded or was absent). */
export function addonLoadError(): unknown {
  return addonError;
}

/** The N-API implementation, or undefined when it is not built or cannot be loaded here. */
export function loadAddon(): NativeApi | undefined {
  addonError = undefined;
  const file = addonPath();
  if (file === undefined || !fs.existsSync(file)) return undefined;
  let mod: Partial<AddonExports>;
  try {
    mod = createRequire(import.meta.url)(file) as Partial<AddonExports>;
  } catch (e) {
    // Built for another Node ABI or platform, or a broken build: use the fallback.
    addonError = e;
    return undefined;
  }
  return apiFromAddon(mod, file);
}

/**
 * The NativeApi over what an addon module exports (exported for tests), or undefined (with
 * addonLoadError() set) when a required function is missing. Without the blob kernels (built
 * without zstd) the TypeScript ones are used, with the addon's Poly1305.
 */
export function apiFromAddon(mod: Partial<AddonExports>, file: string): NativeApi | undefined {
  for (const name of ADDON_FUNCTIONS) {
    if (typeof mod[name] !== 'function') {
      addonError = new Error(`${file} does not export ${name}()`);
      return undefined;
    }
  }
  const m = mod as AddonExports;
  let blob: BlobKernels;
  if (BLOB_FUNCTIONS.every((name) => typeof m[name] === 'function')) {
    blob = addonBlobKernels(m as Required<AddonExports>, `addon: ${m.blobKernels ?? 'blob kernels'}`);
  } else {
    const why = m.blobKernelsMissing ?? `${file} does not export the blob kernels (${BLOB_FUNCTIONS.join(', ')})`;
    blob = makeBlobKernels(m.poly1305, `TypeScript fallback: ${why}`);
  }
  const files = fileKernels(m);
  return Object.freeze({
    kind: 'native' as const,
    restoreSealedFile: sealedFileRestorer(blob.blobKernels === 'native' ? m.openRestoreFileBatch : undefined, blob, files),
    pread: rangedReader(m.preadBatch),
    mkdir: directoryMaker(m.mkdirBatch),
    poly1305: m.poly1305,
    rabin: m.rabin,
    lgetxattrs: m.lgetxattrs,
    lsetxattr: m.lsetxattr,
    mknod: m.mknod,
    mkfifo: m.mkfifo,
    utimens: m.utimens,
    ...files,
    ...(typeof m.lstatBatch === 'function' ? { lstatBatch: m.lstatBatch } : {}),
    ...(typeof m.alignedBuffer === 'function' ? { alignedBuffer: m.alignedBuffer } : {}),
    ...(typeof m.fastcdcBoundaries === 'function' ? { fastcdcBoundaries: m.fastcdcBoundaries } : {}),
    ...blob,
  });
}

/** The pure TypeScript implementation (always available). */
export function loadFallback(): NativeApi {
  const blob = makeBlobKernels(fallbackPoly1305, 'TypeScript fallback');
  const files: FileKernels = { restoreFile: fallbackWrite.restoreFile, finishFile: fallbackWrite.finishFile, finishDir: fallbackWrite.finishDir };
  return Object.freeze({
    ...blob,
    kind: 'fallback' as const,
    restoreSealedFile: sealedFileRestorer(undefined, blob, files),
    pread: fallbackFs.pread,
    mkdir: fallbackFs.mkdir,
    poly1305: fallbackPoly1305,
    rabin: fallbackRabin,
    lgetxattrs: fallbackFs.lgetxattrs,
    lsetxattr: fallbackFs.lsetxattr,
    mknod: fallbackFs.mknod,
    mkfifo: fallbackFs.mkfifo,
    utimens: fallbackFs.utimens,
    ...files,
  });
}

function load(): NativeApi {
  if (process.env.CAIRN_NATIVE === '0') return loadFallback();
  return loadAddon() ?? loadFallback();
}

/** The implementation cairn uses: the addon if available (and not disabled), else the fallback. */
export const native: NativeApi = load();
