/**
 * Streaming a file's bytes through a FileSplitter.
 *
 * Ownership of yielded chunks (the safety choice): every yielded Buffer is never written again by
 * this generator, so a consumer may keep chunks (queue them for hashing, compression, packing)
 * after pulling the next one. That rules out the usual "compact the carry-over in place"
 * (copyWithin would overwrite chunks still queued downstream — silent repository corruption with
 * correct-looking IDs), so instead:
 *   - a chunk that lies inside one source buffer is yielded as a zero-copy view of that buffer;
 *   - bytes of a chunk that spans source buffers are gathered in an append-only carry buffer and the
 *     chunk is a view of it; when the carry is full, the undecided tail moves to a fresh carry and
 *     the old one is left to the chunks that still reference it.
 * The zero-copy views require that the source never overwrites a buffer it has yielded (true for
 * fs streams, FileHandle.read into fresh buffers, etc.). A source that recycles one read buffer must
 * pass `sourceReusesBuffers: true`, which copies those chunks instead.
 * Note that a view keeps its whole underlying buffer alive (a 600 KB chunk can pin a 16 MiB carry
 * until the consumer drops it); consumers holding chunks for long should copy the ones they keep.
 *
 * Memory held by the generator itself: the undecided tail (< maxSize) plus the current source
 * buffer, inside a carry of capacity 2 × maxSize (filled progressively, so untouched capacity is
 * never written).
 */
import { CairnError } from '../core/errors.js';
import type { Chunker, FileSplitter } from './types.js';

export interface SplitChunksOptions {
  /** Largest chunk the splitter returns; sizes the carry buffer. Default: splitter.maxSize, else 8 MiB. */
  maxSize?: number;
  /**
   * The source overwrites a buffer after yielding it (e.g. it reads into one recycled buffer): chunks
   * inside a single source buffer are then copied instead of being views of it.
   */
  sourceReusesBuffers?: boolean;
  /** Checked before every chunk; aborting stops the generator with a CANCELLED error. */
  signal?: AbortSignal;
}

const DEFAULT_MAX = 8 * 1024 * 1024;
/**
 * Smallest amount appended to the carry per splitter call. Appends then grow geometrically with the
 * undecided region, so splitter calls stay O(log) per chunk while the bytes copied past the cut
 * (which are dropped again when the rest of the chunk can be served from the source buffer) stay
 * about the size of the chunk.
 */
const MIN_APPEND = 256 * 1024;

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * Splits one file's bytes into chunks. `source` yields the file's bytes in order (any sizes); each
 * yielded Buffer is one complete chunk (see the module comment for ownership). An empty file yields
 * nothing. Closing the generator early closes the source.
 */
export async function* splitChunks(
  source: AsyncIterable<Uint8Array>,
  splitter: FileSplitter,
  opts: SplitChunksOptions = {},
): AsyncGenerator<Buffer, void, undefined> {
  const maxSize = opts.maxSize ?? splitter.maxSize ?? DEFAULT_MAX;
  const carryCapacity = 2 * maxSize;
  const copySlices = opts.sourceReusesBuffers === true;
  const signal = opts.signal;

  const it = source[Symbol.asyncIterator]();
  let sourceDone = false;

  let cur: Buffer = Buffer.alloc(0); // current source buffer; cur[pos..] not yet consumed
  let pos = 0;
  let eof = false; // the source has no more buffers after cur

  // The carry holds the bytes of a chunk that spans source buffers: carry[cStart, cFill) is the
  // undecided region, the last `fromCur` bytes of it are copies of cur[pos - fromCur, pos).
  let carry: Buffer | null = null;
  let cStart = 0;
  let cFill = 0;
  let fromCur = 0;

  /** Pulls the next non-empty source buffer into cur; sets eof when the source ends. */
  const pull = async (): Promise<void> => {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        sourceDone = true;
        eof = true;
        return;
      }
      if (r.value.length > 0) {
        cur = asBuffer(r.value);
        pos = 0;
        fromCur = 0;
        return;
      }
    }
  };

  const checkAbort = (): void => {
    if (signal?.aborted) throw new CairnError('CANCELLED', 'chunking cancelled', { cause: signal.reason });
  };

  try {
    for (;;) {
      checkAbort();
      if (carry === null) {
        // Serve straight from the source buffer.
        if (pos < cur.length) {
          const n = splitter.next(cur, pos, cur.length, eof);
          if (n > 0) {
            const chunk = copySlices ? Buffer.from(cur.subarray(pos, pos + n)) : cur.subarray(pos, pos + n);
            pos += n;
            yield chunk;
            continue;
          }
          if (eof) throw new CairnError('INTERNAL', 'splitter returned 0 at end of file');
          // The chunk continues past this buffer. Look ahead first: at end of file the tail is
          // served from cur without a copy. (Not with a recycling source: pulling would overwrite
          // the tail, so it goes to the carry first.)
          const tail = cur.subarray(pos);
          if (!copySlices) {
            await pull();
            if (eof) continue;
          }
          carry = Buffer.allocUnsafeSlow(Math.max(carryCapacity, 2 * tail.length));
          tail.copy(carry, 0);
          cStart = 0;
          cFill = tail.length;
          if (copySlices) {
            // cur is still current: its tail is in the carry now.
            pos = cur.length;
            fromCur = tail.length;
          }
          continue;
        }
        if (eof) return;
        await pull();
        continue;
      }

      // Carry mode: the undecided region spans source buffers.
      const atEnd = eof && pos === cur.length;
      const n = splitter.next(carry, cStart, cFill, atEnd);
      if (n > 0) {
        const chunk = carry.subarray(cStart, cStart + n);
        cStart += n;
        const left = cFill - cStart;
        if (left === 0) {
          carry = null;
        } else if (left <= fromCur) {
          // Everything still undecided is also in cur: continue there without copying.
          pos -= left;
          carry = null;
        }
        yield chunk;
        continue;
      }
      if (atEnd) throw new CairnError('INTERNAL', 'splitter returned 0 at end of file');
      if (pos === cur.length) {
        await pull();
        continue;
      }
      const region = cFill - cStart;
      if (cFill === carry.length) {
        // Full: move the undecided tail to a fresh carry (the old one may back yielded chunks).
        const fresh = Buffer.allocUnsafeSlow(Math.max(carryCapacity, 2 * region));
        carry.copy(fresh, 0, cStart, cFill);
        carry = fresh;
        cStart = 0;
        cFill = region;
      }
      // Grow the region geometrically, but not past maxSize: that much always decides a chunk, and
      // bytes copied beyond the cut are wasted when the rest is served from cur again.
      const step = Math.max(MIN_APPEND, region);
      const want = region < maxSize ? Math.min(step, maxSize - region) : step;
      const k = Math.min(cur.length - pos, carry.length - cFill, want);
      cur.copy(carry, cFill, pos, pos + k);
      cFill += k;
      pos += k;
      fromCur += k;
    }
  } finally {
    if (!sourceDone) await it.return?.();
  }
}

/** Chunk lengths of an in-memory file (tests, small inputs). */
export function splitBuffer(data: Uint8Array, chunker: Chunker): number[] {
  const splitter = chunker.newFile();
  const lengths: number[] = [];
  let pos = 0;
  while (pos < data.length) {
    const n = splitter.next(data, pos, data.length, true);
    if (n <= 0 || pos + n > data.length) {
      throw new CairnError('INTERNAL', `splitter returned ${n} with ${data.length - pos} bytes left at end of file`);
    }
    lengths.push(n);
    pos += n;
  }
  return lengths;
}
