/**
 * The contract between cairn and its hot kernels / system calls. Two implementations exist:
 * the N-API addon in native/ (C) and the TypeScript fallback in ./fallback/. For the kernels
 * (poly1305, rabin, the blob kernels seal/open/sha256) both must produce identical results for
 * identical inputs (seal: given the same IV). Which one is used is decided by ./index.ts
 * (CAIRN_NATIVE=0 forces the fallback); the full contracts are in native/README.md.
 */

/** Rabin fingerprint cut finder bound to one polynomial (restic/chunker v0.4.0 semantics). */
export interface RabinKernel {
  /**
   * Finds the end of a chunk that starts at `chunkStart` in `buf`.
   * Returns the smallest chunk length n with max(minSize, scanFrom - chunkStart) <= n <= min(maxSize, end - chunkStart)
   * such that fp(buf[chunkStart+n-64 .. chunkStart+n-1]) & 0xFFFFF == 0, or -1 when there is none.
   * (The window fingerprint depends only on the last 64 bytes, so the caller can resume a scan
   * after appending data by passing scanFrom = previous end; bytes from max(chunkStart, scanFrom-64)
   * must be present in buf.) The caller handles maxSize (forced cut) and end of file.
   * Preconditions: 0 <= chunkStart <= scanFrom <= end <= buf.length, minSize >= 64.
   */
  findCut(buf: Uint8Array, chunkStart: number, scanFrom: number, end: number, minSize: number, maxSize: number): number;
}

export interface XattrEntry {
  name: string;
  value: Buffer;
}

/**
 * A path for the system calls: a string (passed to the kernel as UTF-8) or the raw bytes of the
 * path (a Buffer / Uint8Array), which can name files whose names are not valid UTF-8. Neither
 * may contain a NUL byte (TypeError). In errors, `.path` is the path as a string (bytes decoded
 * as UTF-8 with U+FFFD for invalid sequences, as Node's fs does).
 */
export type NativePath = string | Uint8Array;

declare const sealKeyBrand: unique symbol;
/**
 * A repository key prepared for the blob kernels (opaque; from `sealKey()` of the same
 * implementation — a key from the addon is refused by the fallback and vice versa).
 */
export interface SealKey {
  readonly [sealKeyBrand]: true;
}

export interface SealOptions {
  /** zstd-compress the blob (repository v2) when a 16 KiB sample shows it is worthwhile and the result is smaller. */
  compress: boolean;
  /** zstd level for the blob (integer within zstd's range; the sample always uses level 1). */
  level: number;
  /** Also compute the SHA-256 of the plaintext (returned as `id`). */
  hash?: boolean;
  /** The 16-byte IV to use instead of a random one (tests: identical output of both implementations). */
  iv?: Uint8Array;
  /**
   * Write the sealed blob into this buffer (at least data.length + 32 bytes, else RangeError)
   * instead of a new allocation; `sealed` is then a view of it. Lets callers recycle buffers.
   * Like `data`, it must be left alone until the promise settles.
   */
  out?: Uint8Array;
}

export interface SealedBlob {
  /** IV (16) || AES-256-CTR(payload) || Poly1305-AES MAC (16); payload = zstd frame or the plaintext. */
  sealed: Buffer;
  /** The plaintext length when the payload is compressed, else 0 (the index's uncompressed_length). */
  uncompressedLength: number;
  /** SHA-256 of the plaintext as 64 lower-case hex digits, when `hash` was requested. */
  id?: string;
}

export interface OpenOptions {
  /** From the index: the plaintext length of a compressed blob, 0 when it is stored uncompressed. */
  uncompressedLength: number;
  /** Refuse a compressed blob whose uncompressedLength exceeds this (bounds the allocation). */
  maxSize: number;
  /** When given (32 bytes or 64 hex digits), the plaintext's SHA-256 must equal it. */
  id?: Uint8Array | string;
  /**
   * Write the plaintext into this buffer (at least uncompressedLength bytes, or sealed.length − 32
   * for an uncompressed blob, else RangeError) and return a view of it. Must be left alone until
   * the promise settles.
   */
  out?: Uint8Array;
}

/** verify()'s options: open()'s, with the ID required and no destination. */
export interface VerifyOptions extends Omit<OpenOptions, 'out' | 'id'> {
  id: Uint8Array | string;
}

/** A stored blob where a file's bytes are expected (restoreSealedFile): open()'s arguments, with a destination. */
export interface SealedContent extends OpenOptions {
  key: SealKey;
  sealed: Uint8Array;
  out: Uint8Array;
}

/**
 * Why opening a blob failed, on errors with `.code === 'ERR_CAIRN_CORRUPT'`:
 * 'short' (less than IV + MAC), 'mac' (MAC mismatch: damaged data or wrong key), 'zstd' (not
 * exactly one valid zstd frame, or larger than maxSize), 'size' (decompressed length differs from
 * uncompressedLength), 'hash' (SHA-256 differs from id).
 */
export type CorruptReason = 'short' | 'mac' | 'zstd' | 'size' | 'hash';

export interface ReadFileOptions {
  /** With ino: the file must still be this inode on this device (as lstat saw it), else ERR_CAIRN_REPLACED. */
  dev?: bigint;
  ino?: bigint;
  /** Also compute the SHA-256 of the contents (only when the whole file was read). */
  hash?: boolean;
  /**
   * Also seal the contents as one blob (as seal() would, random IV), into seal.out, when the whole
   * file was read and seal.out has room for it (length + 32 bytes); otherwise skipped silently.
   * Saves a second thread-pool round trip for files that are one chunk.
   */
  seal?: { key: SealKey; compress: boolean; level: number; out: Uint8Array };
}

export interface ReadFileResult {
  /** Bytes read into out (from offset 0). */
  length: number;
  /** st_size from fstat after opening. */
  size: number;
  /** True when end of file was reached within out; false when out filled up first (the file is larger). */
  complete: boolean;
  /** SHA-256 of out[0, length) as hex, when hash was asked for and complete is true. */
  id?: string;
  /** The sealed contents (a view of seal.out), when sealing was asked for and done. */
  sealed?: SealedBlob;
}

/** Metadata restoreFile()/finishFile() apply to a regular file through its descriptor. */
export interface FileMeta {
  /** st_mode; exactly mode & 0o7777 (permissions, setuid, setgid, sticky) is applied with fchmod. */
  mode: number;
  /** When given, fchown(uid, gid) first (0 ≤ ids ≤ 2^32−1); EPERM/EACCES/EINVAL become warnings. */
  owner?: { uid: number; gid: number };
  /** Nanoseconds since the epoch (int64), set last with futimens. */
  atimeNs: bigint;
  mtimeNs: bigint;
  /** Set with fsetxattr (create or replace), in this order; failures become warnings. */
  xattrs?: ReadonlyArray<{ name: string; value: Uint8Array }>;
}

export interface RestoreFileOptions extends FileMeta {
  /**
   * false: create the file (O_EXCL; an existing entry fails with EEXIST). true: an existing entry
   * is reused only when it is a regular file with exactly one link (else ERR_CAIRN_NOT_REGULAR /
   * ERR_CAIRN_LINKED, before anything is written) and then truncated; a missing one is created.
   */
  truncate: boolean;
  /** Skip all-zero 4 KiB blocks (aligned to file offsets) so they stay holes; the size is set with ftruncate. */
  sparse?: boolean;
}

/** A metadata step that failed without failing the call. */
export interface FileMetaWarning {
  /** 'fchown' (EPERM, EACCES or EINVAL only) or 'fsetxattr' (any errno). */
  syscall: 'fchown' | 'fsetxattr';
  /** errno name as in system call errors ('EPERM', 'ENOTSUP', …). */
  code: string;
  /** −errno. */
  errno: number;
  /** The attribute, for 'fsetxattr'. */
  name?: string;
}

export interface FileMetaResult {
  warnings: FileMetaWarning[];
}

/** The restorer's per-file jobs (see native/README.md, "restoreFile" and "finishFile"). */
export interface FileKernels {
  /**
   * Writes a whole regular file and its metadata in one thread-pool job: open(O_WRONLY | O_CREAT |
   * O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (truncate ? 0 : O_EXCL), 0600), fstat (regular file; with
   * truncate also exactly one link, then ftruncate 0), write all of data (null: none) at offset 0,
   * fchown, fchmod, fsetxattr…, futimens, close. Errors are Node-style (.code, .errno, .syscall
   * 'open' | 'fstat' | 'ftruncate' | 'write' | 'fchown' | 'fchmod' | 'futimens' | 'close', .path) or
   * coded (ERR_CAIRN_NOT_REGULAR, ERR_CAIRN_LINKED). `data` must be left alone until the promise settles.
   */
  restoreFile(path: NativePath, data: Uint8Array | null, opts: RestoreFileOptions): Promise<FileMetaResult>;
  /**
   * fchown, fchmod, fsetxattr…, futimens on an open descriptor (a file written in several pieces),
   * in one job. Errors as restoreFile's (without .path). The descriptor must stay open, and no write
   * to it be in flight, until the promise settles.
   */
  finishFile(fd: number, meta: FileMeta): Promise<FileMetaResult>;
  /**
   * A directory's metadata by path in one job: open(O_RDONLY | O_DIRECTORY | O_NOFOLLOW) — a
   * symlink or any other non-directory at the name fails with ENOTDIR, nothing is followed —, finishFile's
   * steps on the descriptor, close. Errors as restoreFile's (.syscall 'open' | 'fchown' | 'fchmod' |
   * 'futimens', .path). With the addon, the calls of one event-loop turn share a job.
   */
  finishDir(path: NativePath, meta: FileMeta): Promise<FileMetaResult>;
}

/** The blob kernels (see native/README.md, "Blob kernels"). */
export interface BlobKernels {
  /** 'native' when the addon runs them (off the JavaScript thread), else 'fallback'. */
  readonly blobKernels: 'native' | 'fallback';
  /** For diagnostics: library versions, or why the addon's kernels are not used. */
  readonly blobKernelsInfo: string;
  /** Prepares a key: encrypt = 32-byte AES-256 key, macK = 16-byte AES-128 key, macR = 16-byte Poly1305 r. */
  sealKey(encrypt: Uint8Array, macK: Uint8Array, macR: Uint8Array): SealKey;
  /**
   * Compresses (per options), encrypts and authenticates one blob. The addon does the work on
   * libuv's thread pool; `data` must not be modified, detached or transferred until the promise
   * settles. Rejects only on internal failures (out of memory).
   */
  seal(key: SealKey, data: Uint8Array, opts: SealOptions): Promise<SealedBlob>;
  /** seal() on the calling thread (small blobs, where a thread-pool round trip costs more). */
  sealSync(key: SealKey, data: Uint8Array, opts: SealOptions): SealedBlob;
  /**
   * Verifies the MAC, decrypts, decompresses (when uncompressedLength > 0) and checks the hash
   * (when id is given) of one stored blob; resolves to the plaintext. Rejects with an Error whose
   * `.code` is 'ERR_CAIRN_CORRUPT' and `.reason` a CorruptReason when the blob is damaged.
   * `sealed` must not be modified, detached or transferred until the promise settles.
   */
  open(key: SealKey, sealed: Uint8Array, opts: OpenOptions): Promise<Buffer>;
  /** open() on the calling thread. */
  openSync(key: SealKey, sealed: Uint8Array, opts: OpenOptions): Buffer;
  /**
   * open()'s checks (MAC, decompression, length, ID) without the plaintext: resolves to its
   * length, rejects as open() does. The addon decrypts, decompresses and hashes in fixed-size
   * slices, so the memory it needs does not grow with the blob (the fallback opens the blob).
   */
  verify(key: SealKey, sealed: Uint8Array, opts: VerifyOptions): Promise<number>;
  /** SHA-256 of data (or of the concatenation of the parts, at most 4096) as 64 lower-case hex digits, off the JavaScript thread. */
  sha256(data: Uint8Array | readonly Uint8Array[]): Promise<string>;
  /** An incremental SHA-256 whose updates run off the JavaScript thread (see Sha256Stream). */
  sha256Stream(): Sha256Stream;
  /**
   * Reads a whole regular file into `out` in one thread-pool job: open (O_RDONLY | O_NOFOLLOW |
   * O_NONBLOCK | O_NOATIME, without O_NOATIME where that is not permitted), fstat, check that it
   * is a regular file (else ERR_CAIRN_NOT_REGULAR) and, with dev/ino, the same inode (else
   * ERR_CAIRN_REPLACED), read until end of file or until out is full, close, [SHA-256].
   * System call failures are Node-style errors (.code, .errno, .syscall 'open' | 'fstat' |
   * 'read', .path). `out` must be left alone until the promise settles.
   */
  readFile(path: NativePath, out: Uint8Array, opts?: ReadFileOptions): Promise<ReadFileResult>;
}

/**
 * lstatBatch's packed result: `nums` holds LSTAT_STRIDE values per path — [errno (0: success),
 * st_mode, st_uid, st_gid, st_ino, st_dev, st_rdev, st_nlink, st_size, atime ns, mtime ns,
 * ctime ns] (ino/dev/rdev as the bits of the unsigned values) — and `extra[i]` is, for a failed
 * path, the failed call's name ('lstat' | 'readlink'); for a symlink, an entry with xattrs or an
 * xattr failure, [linkTarget?: Buffer, xattrs?: flat [name, value, ...], xattrErrorCode?,
 * xattrSyscall?]; else undefined.
 */
export interface LstatBatchResult {
  nums: BigInt64Array;
  extra: Array<string | [Buffer | undefined, Array<string | Buffer> | undefined, string | undefined, string | undefined] | undefined>;
}

export const LSTAT_STRIDE = 12;

/**
 * Incremental SHA-256 (a pack's ID while its bytes are written). One update at a time: the next
 * may start when the previous promise settled; `data` must stay unmodified until then. digest()
 * ends the stream. Misuse (an update in flight, a finished stream) throws an Error with code
 * ERR_INVALID_STATE.
 */
export interface Sha256Stream {
  update(data: Uint8Array): Promise<void>;
  /** 64 lower-case hex digits. */
  digest(): string;
}

export interface NativeApi extends BlobKernels, FileKernels {
  /** 'native' for the addon, 'fallback' for the TypeScript implementation. */
  readonly kind: 'native' | 'fallback';

  /**
   * Reads `length` bytes of a file from `offset` into out[0, length): open, pread until done or
   * end of file, close — one thread-pool job with the addon (reads of one event-loop turn share
   * jobs). Resolves to the bytes read (fewer than length only at end of file). Errors are
   * Node-style (.code, .errno, .syscall 'open' | 'read', .path). `out` must be left alone until the
   * promise settles.
   */
  pread(path: NativePath, offset: number, length: number, out: Uint8Array): Promise<number>;

  /**
   * mkdir(path, mode) (mode 0 to 0o7777, less the umask) — one thread-pool job for the calls of one
   * event-loop turn with the addon. Errors are Node-style (.code such as 'EEXIST', .errno,
   * .syscall 'mkdir', .path).
   */
  mkdir(path: NativePath, mode: number): Promise<void>;

  /**
   * open(content) and, when that succeeded, restoreFile(path, plaintext, opts): a file that is one
   * blob, in one thread-pool job with the addon (the fallback runs the two in turn). A blob that
   * does not open rejects as open() does (ERR_CAIRN_CORRUPT) and nothing is created; otherwise
   * results and errors are restoreFile's. content.sealed and content.out must be left alone until
   * the promise settles.
   */
  restoreSealedFile(path: NativePath, content: SealedContent, opts: RestoreFileOptions): Promise<FileMetaResult>;

  /**
   * Addon only (absent in the fallback, whose callers use per-entry calls): lstat of each path, its
   * target for a symlink (readlink), and for anything else, when `xattrs`, its extended attributes
   * (llistxattr + lgetxattr, never following a final symlink; ENOTSUP/ENODATA mean none) — all in
   * one thread-pool job.
   */
  lstatBatch?(paths: NativePath[], xattrs: boolean): Promise<LstatBatchResult>;

  /**
   * Addon only (the fallback has no way to align memory; its callers use buffered I/O): a Buffer
   * of `size` bytes (1 … 2³¹−1, uninitialised) whose memory starts at a multiple of 4096, as
   * direct I/O (O_DIRECT) requires of the buffers it transfers. Freed when collected.
   */
  alignedBuffer?(size: number): Buffer;

  /**
   * Poly1305 one-time authenticator (RFC 8439 §2.5): key = r (16 bytes, clamped inside) || s (16 bytes).
   * Returns the 16-byte tag of msg. (restic's Poly1305-AES uses s = AES-128(k, nonce).)
   */
  poly1305(key: Uint8Array, msg: Uint8Array): Buffer;

  /** A Rabin cut finder for the polynomial (degree 53 or less, given as bigint). */
  rabin(polynomial: bigint): RabinKernel;

  /**
   * Addon only (the fallback is fastcdc-wasm itself, see src/chunker/fastcdc.ts): the FastCDC
   * boundaries of data as fastcdc-wasm's get_chunks computes them — 0, each cut, data.length — with
   * the gear table `gear` (256 entries), written to `out`; returns their count, or −1 when `out` is
   * too small (data.length / minSize + 2 entries always suffice). Parameters within
   * FASTCDC_LIMITS, else a RangeError. Synchronous, on the calling thread.
   */
  fastcdcBoundaries?(data: Uint8Array, minSize: number, avgSize: number, maxSize: number, gear: Uint32Array, out: Uint32Array): number;

  /** Extended attributes of path without following a final symlink, in listxattr order. */
  lgetxattrs(path: NativePath): XattrEntry[];
  /** Sets one extended attribute without following a final symlink. */
  lsetxattr(path: NativePath, name: string, value: Uint8Array): void;
  /** Creates a device node (mode includes S_IFBLK or S_IFCHR, dev is the Linux st_rdev encoding). */
  mknod(path: NativePath, mode: number, dev: bigint): void;
  /** Creates a FIFO with the given permission bits. */
  mkfifo(path: NativePath, mode: number): void;
  /**
   * Sets atime and mtime with nanosecond precision (utimensat); does not follow a final symlink when
   * nofollow is true. Times are nanoseconds since the epoch.
   */
  utimens(path: NativePath, atimeNs: bigint, mtimeNs: bigint, nofollow: boolean): void;
}
