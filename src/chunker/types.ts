/**
 * The chunker interface every consumer uses (archiver, benchmarks, tests). Kept in its own module
 * so the algorithm modules can implement it without importing the factory (and native/).
 */

export interface ChunkerParams {
  /**
   * 'rabin': restic/chunker v0.4.0, byte-exact with restic 0.14 (dedups with restic's own backups);
   * 'fastcdc': FastCDC (the cuts of fastcdc-rs 1.0.5: the addon's kernel, else fastcdc-wasm),
   * faster, but its blob boundaries never match restic's.
   */
  algorithm: 'rabin' | 'fastcdc';
  /** Smallest chunk except the last of a file. */
  minSize: number;
  /**
   * Target average. FastCDC uses it directly; restic's Rabin split mask is fixed at 2^20 − 1, so for
   * 'rabin' this must be 1 MiB (the expected distance beyond minSize between content cuts).
   */
  avgSize: number;
  /** Largest chunk; a cut is forced here. */
  maxSize: number;
  /** Rabin polynomial (degree ≤ 53, irreducible); required for 'rabin', ignored for 'fastcdc'. */
  polynomial?: bigint;
}

export interface FileSplitter {
  /**
   * buf[start,end) holds the not-yet-chunked bytes of the current file, starting at a chunk
   * boundary. Returns the length of the next complete chunk, or 0 when more data is needed (only
   * when !eof). With eof=true it returns > 0 while start < end (and 0 once start == end). The
   * caller then advances start by that length (it may also move/compact the bytes to a new buffer
   * between calls — the splitter relies only on the bytes from start, never on buffer identity or
   * absolute offsets). The region must never shrink except by the returned lengths.
   */
  next(buf: Uint8Array, start: number, end: number, eof: boolean): number;
  /** The largest chunk this splitter can return (a sizing hint for stream buffers). */
  readonly maxSize?: number;
}

export interface Chunker {
  readonly params: ChunkerParams;
  /** A splitter for one file; state is never shared between files. */
  newFile(): FileSplitter;
}
