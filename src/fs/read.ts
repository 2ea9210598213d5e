/**
 * Reading file contents for backup.
 */
import { promises as fsp, constants as C, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { CairnError, errnoCode, fsError } from '../core/errors.js';
import { displayPath, toPathBuffer } from './path.js';

/**
 * The entry at a path is no longer the regular file the archiver saw with lstat (replaced by
 * another inode, a symlink, a FIFO, ...). The archiver should treat the file as changed.
 */
export class FileReplacedError extends CairnError {
  constructor(path: string, why: string, cause?: unknown) {
    super('IO', `${path}: ${why}`, { object: path, cause });
    this.name = 'FileReplacedError';
  }
}

export interface OpenedFile {
  handle: FileHandle;
  /** fstat of the opened file (bigint), taken right after opening. */
  stat: BigIntStats;
}

/** st_dev and st_ino of what the archiver's lstat saw. */
export interface ExpectedIdentity {
  dev: bigint;
  inode: bigint;
}

/** O_NOATIME needs ownership or CAP_FOWNER; 0 where the platform lacks it. */
const O_NOATIME = C.O_NOATIME ?? 0;
// O_NONBLOCK: if the path has been replaced by a FIFO, open must not hang (it is ignored for
// regular files). O_NOFOLLOW: a path replaced by a symlink fails with ELOOP.
const BASE_FLAGS = C.O_RDONLY | C.O_NOFOLLOW | C.O_NONBLOCK;

/**
 * Opens a regular file for reading without following a symlink and without updating its atime
 * (falls back to a normal open when O_NOATIME is not permitted). Verifies with fstat that it is a
 * regular file and, when `expect` is given, the same inode the caller's lstat saw; otherwise
 * throws FileReplacedError. Returns the handle and the fstat, so the archiver can compare size
 * and times after reading to detect a file that changed while being read.
 */
export async function openForRead(path: Buffer | string, expect?: ExpectedIdentity): Promise<OpenedFile> {
  const p = toPathBuffer(path);
  const shown = displayPath(p);
  let handle: FileHandle;
  try {
    try {
      handle = await fsp.open(p, BASE_FLAGS | O_NOATIME);
    } catch (e) {
      if (O_NOATIME === 0 || errnoCode(e) !== 'EPERM') throw e;
      handle = await fsp.open(p, BASE_FLAGS);
    }
  } catch (e) {
    if (errnoCode(e) === 'ELOOP') throw new FileReplacedError(shown, 'is now a symlink', e);
    throw fsError(e, shown, 'open');
  }
  let st: BigIntStats;
  try {
    st = await handle.stat({ bigint: true });
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw fsError(e, shown, 'fstat');
  }
  if ((Number(st.mode) & C.S_IFMT) !== C.S_IFREG) {
    await handle.close().catch(() => undefined);
    throw new FileReplacedError(shown, 'is no longer a regular file');
  }
  if (expect !== undefined && (st.ino !== expect.inode || st.dev !== expect.dev)) {
    await handle.close().catch(() => undefined);
    throw new FileReplacedError(shown, 'was replaced by another file while the backup was running');
  }
  return { handle, stat: st };
}

export const DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024;
const PROBE_SIZE = 64 * 1024;

function cancelled(): CairnError {
  return new CairnError('CANCELLED', 'reading cancelled');
}

/**
 * Reads the file sequentially from offset 0 to end of file and yields its bytes in blocks of
 * `blockSize` (the last one shorter; if the file grows while being read, the block that ends at
 * the size seen at the start may be shorter too, and reading continues to the new end). Every
 * block is a fresh allocation that the consumer may keep and no two blocks share bytes.
 * Allocation follows the file size (so small files do not pin whole blocks). Checks `signal`
 * before every read (CairnError 'CANCELLED'). Read errors are raw Node errors: wrap them with
 * fsError and the path.
 */
export async function* readBlocks(
  handle: FileHandle,
  blockSize: number = DEFAULT_BLOCK_SIZE,
  signal?: AbortSignal,
): AsyncGenerator<Buffer, void, undefined> {
  if (!Number.isInteger(blockSize) || blockSize <= 0) {
    throw new CairnError('INVALID_ARGUMENT', `block size must be a positive integer, got ${blockSize}`);
  }
  const reader = new BlockReader(handle, blockSize, Number((await handle.stat({ bigint: true })).size), signal);
  // One block of read-ahead: the next read is in flight while the consumer works on this block,
  // so disk I/O overlaps with chunking and hashing.
  let next: Promise<Block> | undefined = reader.read();
  try {
    while (next !== undefined) {
      const block = await next;
      next = undefined;
      if (signal?.aborted) throw cancelled();
      if (block.data.length === 0) return;
      if (!block.eof) next = reader.read();
      yield block.data;
    }
  } finally {
    // consumer stopped early (break/throw): let the read-ahead settle before the caller closes
    if (next !== undefined) await next.catch(() => undefined);
  }
}

interface Block {
  data: Buffer;
  /** True when end of file was seen while reading this block (nothing follows). */
  eof: boolean;
}

/** Sequential block reads from offset 0; see readBlocks. Not re-entrant: one read at a time. */
class BlockReader {
  private pos = 0;
  private probe: Buffer | undefined;

  constructor(
    private readonly handle: FileHandle,
    private readonly blockSize: number,
    /** File size as far as we know (grows when reading finds more). */
    private known: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async read(): Promise<Block> {
    if (this.signal?.aborted) throw cancelled();
    const want = Math.min(this.blockSize, Math.max(this.known - this.pos, 0));
    if (want > 0) {
      const buf = Buffer.allocUnsafe(want);
      const filled = await fill(this.handle, buf, 0, this.pos, this.signal);
      this.pos += filled;
      // shorter than the size we knew: the file shrank
      return { data: filled === want ? buf : shrink(buf, filled), eof: filled < want };
    }
    // At the size we know of: confirm EOF (or find data appended meanwhile).
    this.probe ??= Buffer.allocUnsafe(Math.min(PROBE_SIZE, this.blockSize));
    const { bytesRead } = await this.handle.read(this.probe, 0, this.probe.length, this.pos);
    if (bytesRead === 0) return { data: Buffer.alloc(0), eof: true };
    this.known = Math.max(Number((await this.handle.stat({ bigint: true })).size), this.pos + bytesRead);
    const out = Buffer.allocUnsafe(Math.min(this.blockSize, this.known - this.pos));
    this.probe.copy(out, 0, 0, bytesRead);
    const filled = await fill(this.handle, out, bytesRead, this.pos, this.signal);
    this.pos += filled;
    return { data: filled === out.length ? out : shrink(out, filled), eof: filled < out.length };
  }
}

/** Reads into buf[from..] at file offset pos+from until full or EOF; returns bytes now in buf. */
async function fill(handle: FileHandle, buf: Buffer, from: number, pos: number, signal?: AbortSignal): Promise<number> {
  let off = from;
  while (off < buf.length) {
    if (signal?.aborted) throw cancelled();
    const { bytesRead } = await handle.read(buf, off, buf.length - off, pos + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return off;
}

/** A short final block: copy when it would pin much more memory than it holds. */
function shrink(buf: Buffer, len: number): Buffer {
  return len * 2 < buf.length ? Buffer.from(buf.subarray(0, len)) : buf.subarray(0, len);
}
