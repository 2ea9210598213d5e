/**
 * The contract between cairn and its hot kernels / system calls. Two implementations exist:
 * the N-API addon in native/ (C++) and the pure TypeScript fallback in ./fallback/. For the
 * kernels (poly1305, rabin) both must produce identical results for identical inputs.
 * Which one is used is decided by ./index.ts (CAIRN_NATIVE=0 forces the fallback).
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

export interface NativeApi {
  /** 'native' for the addon, 'fallback' for the TypeScript implementation. */
  readonly kind: 'native' | 'fallback';

  /**
   * Poly1305 one-time authenticator (RFC 8439 §2.5): key = r (16 bytes, clamped inside) || s (16 bytes).
   * Returns the 16-byte tag of msg. (restic's Poly1305-AES uses s = AES-128(k, nonce).)
   */
  poly1305(key: Uint8Array, msg: Uint8Array): Buffer;

  /** A Rabin cut finder for the polynomial (degree 53 or less, given as bigint). */
  rabin(polynomial: bigint): RabinKernel;

  /** Extended attributes of path without following a final symlink, in listxattr order. */
  lgetxattrs(path: string): XattrEntry[];
  /** Sets one extended attribute without following a final symlink. */
  lsetxattr(path: string, name: string, value: Uint8Array): void;
  /** Creates a device node (mode includes S_IFBLK or S_IFCHR, dev is the Linux st_rdev encoding). */
  mknod(path: string, mode: number, dev: bigint): void;
  /** Creates a FIFO with the given permission bits. */
  mkfifo(path: string, mode: number): void;
  /**
   * Sets atime and mtime with nanosecond precision (utimensat); does not follow a final symlink when
   * nofollow is true. Times are nanoseconds since the epoch.
   */
  utimens(path: string, atimeNs: bigint, mtimeNs: bigint, nofollow: boolean): void;
}
