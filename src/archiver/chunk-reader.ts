/**
 * Reading a file and splitting it into chunks with recycled buffers (the archiver's hot path).
 *
 * The generic stream splitter (chunker/stream.ts over fs/read.ts) allocates a fresh 4 MiB block
 * per read and a fresh 2 × maxSize carry for every chunk that spans two blocks. For a 1 GiB backup
 * that is several GiB of new ArrayBuffers: each page faults when first written, and V8 counts them
 * as external memory, which triggered a full garbage collection every ~64 MiB (measured: 60–130
 * mark-compacts, ~20 % of the backup's CPU). Here the bytes are read into buffers taken from a
 * BufferPool; a chunk is a view of its buffer and holds a reference to it until the consumer
 * calls `release()`, and a buffer goes back to the pool when the reader has moved on and every
 * chunk in it is released. When a buffer is full, only the undecided tail (less than one maximal
 * chunk, usually much less) is copied into the next one.
 *
 * Reads: one read is kept in flight ahead of the splitter (disk I/O overlaps chunking). A read
 * shorter than asked at or beyond the size fstat reported is taken as end of file, so a small
 * file costs one read call (fs/read.ts confirms EOF with a second, empty read); a file that keeps
 * growing is read to its new end, as there.
 */
import type { FileHandle } from 'node:fs/promises';
import { CairnError } from '../core/errors.js';
import type { FileSplitter } from '../chunker/types.js';
import type { BufferPool } from '../native/buffer-pool.js';

export interface FileChunk {
  /** The chunk's bytes: a view of a pooled buffer, valid until release(). */
  data: Buffer;
  /** Gives the bytes back (call exactly once, when nothing uses `data` any more). */
  release(): void;
}

export interface ReadChunksOptions {
  pool: BufferPool;
  /** The splitter's largest chunk (a buffer must hold one, plus room to read). */
  maxSize: number;
  /** File size as fstat saw it when opening. */
  size: number;
  /** Bytes per read call at most. */
  readSize?: number;
  signal?: AbortSignal;
}

/** A pooled buffer with a count of its users (the reader while current, and each chunk in it). */
class Block {
  refs = 1;
  constructor(readonly buf: Buffer) {}
}

/**
 * One read: 1 MiB keeps a large file's buffer at a maximal chunk + 1 MiB (9 MiB with the default
 * chunker) — 4 MiB reads cost ~20 MiB more peak RSS on the benchmark (two large files, each with
 * about two buffers alive) and were not faster.
 */
const DEFAULT_READ = 1024 * 1024;

function cancelled(): CairnError {
  return new CairnError('CANCELLED', 'reading cancelled');
}

/**
 * Yields the chunks of the file open in `handle` from offset 0 to end of file. Read errors are raw
 * Node errors (wrap them with the path). Stopping early (break/throw) waits for the read in flight
 * and releases the reader's buffer; chunks already yielded stay valid until released.
 */
export async function* readChunks(handle: FileHandle, splitter: FileSplitter, o: ReadChunksOptions): AsyncGenerator<FileChunk, void, undefined> {
  const pool = o.pool;
  const readSize = o.readSize ?? DEFAULT_READ;
  // Room for a maximal chunk plus one read: FastCDC decides only with ≥ maxSize bytes in view.
  const big = o.maxSize + readSize;
  const release = (b: Block) => {
    if (--b.refs === 0) pool.give(b.buf);
  };
  // A file that fits (with one byte to spare, so that its single read also shows the end) gets a
  // buffer of its size class; larger files a buffer of one maximal chunk plus one read.
  let blk = new Block(pool.take(o.size + 1 <= big ? o.size + 1 : big));
  let start = 0; // blk.buf[start, end) is read but not yet chunked
  let end = 0;
  let pos = 0; // file offset of blk.buf[end]
  let eof = false;
  let inflight: { p: Promise<number>; want: number } | undefined;

  const startRead = () => {
    if (eof || inflight !== undefined || end >= blk.buf.length) return;
    const want = Math.min(readSize, blk.buf.length - end);
    const p = readAt(handle, blk.buf, end, want, pos, o.signal);
    p.catch(() => undefined); // handled where awaited; avoid an unhandled rejection on early exit
    inflight = { p, want };
  };

  try {
    startRead();
    for (;;) {
      if (o.signal?.aborted) throw cancelled();
      const n = end > start ? splitter.next(blk.buf, start, end, eof) : 0;
      if (n > 0) {
        const b = blk;
        b.refs++;
        const data = b.buf.subarray(start, start + n);
        start += n;
        let released = false;
        yield {
          data,
          release: () => {
            if (released) return;
            released = true;
            release(b);
          },
        };
        startRead();
        continue;
      }
      if (eof) {
        if (start !== end) throw new CairnError('INTERNAL', 'splitter returned 0 at end of file');
        return;
      }
      if (inflight !== undefined) {
        const { p, want } = inflight;
        const got = await p;
        inflight = undefined;
        end += got;
        pos += got;
        // Short read at or past the size known at open: end of file (regular files read short only there).
        if (got === 0 || (got < want && pos >= o.size)) eof = true;
        startRead();
        continue;
      }
      // The buffer is full and the splitter needs more: continue in a fresh buffer with the tail.
      const tail = end - start;
      const next = new Block(pool.take(Math.max(big, 2 * tail)));
      blk.buf.copy(next.buf, 0, start, end);
      release(blk);
      blk = next;
      start = 0;
      end = tail;
      startRead();
    }
  } finally {
    if (inflight !== undefined) await inflight.p.catch(() => undefined);
    release(blk);
  }
}

/** One read of up to `want` bytes at file offset `pos` into buf[off..]; returns the bytes read. */
async function readAt(handle: FileHandle, buf: Buffer, off: number, want: number, pos: number, signal?: AbortSignal): Promise<number> {
  if (signal?.aborted) throw cancelled();
  const { bytesRead } = await handle.read(buf, off, want, pos);
  return bytesRead;
}
