/**
 * restic/chunker v0.4.0 boundaries (spec §10) as a FileSplitter over a RabinKernel.
 *
 * The kernel (native addon or its TypeScript fallback) does the fingerprinting; this class only
 * implements the closed form of spec §10.5 across successive, growing read regions:
 *   chunk length = smallest n in [MIN, min(MAX, remaining)] whose 64-byte window fingerprint has
 *   its low 20 bits zero; if none: MAX when remaining > MAX, else remaining (end of file).
 * When a region ends before a chunk is decided, it remembers how far the scan got (relative to the
 * chunk start, never an absolute offset or a buffer) so the next call resumes there.
 */
import { CairnError } from '../core/errors.js';
import type { RabinKernel } from '../native/api.js';
import type { FileSplitter } from './types.js';

export class RabinSplitter implements FileSplitter {
  /**
   * Bytes from the current chunk start that an earlier findCut already covered without a cut
   * (0 = nothing scanned yet). Passed back as scanFrom - chunkStart so resumed scans never rescan.
   */
  private scanned = 0;

  constructor(
    private readonly kernel: RabinKernel,
    private readonly minSize: number,
    readonly maxSize: number,
  ) {}

  next(buf: Uint8Array, start: number, end: number, eof: boolean): number {
    const len = end - start;
    if (len < 0 || start < 0 || end > buf.length) {
      throw new CairnError('INTERNAL', `rabin splitter: bad region [${start}, ${end}) of a ${buf.length}-byte buffer`);
    }
    if (len < this.scanned) {
      throw new CairnError('INTERNAL', `rabin splitter: region shrank to ${len} bytes after ${this.scanned} were scanned`);
    }
    if (len === 0) return 0;
    if (len >= this.minSize) {
      const n = this.kernel.findCut(buf, start, start + this.scanned, end, this.minSize, this.maxSize);
      if (n > 0) return this.cut(n);
      // No fingerprint match in [MIN, min(MAX, len)]: with MAX bytes present the cut is forced.
      if (len >= this.maxSize) return this.cut(this.maxSize);
      this.scanned = len;
    }
    // Fewer than MIN bytes, or scanned to the region end without a match: the chunk is either the
    // rest of the file or needs more data.
    return eof ? this.cut(len) : 0;
  }

  private cut(n: number): number {
    this.scanned = 0;
    return n;
  }
}
