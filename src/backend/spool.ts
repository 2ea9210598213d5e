/**
 * Spooling for object stores: a pack being written goes to a local temporary file, and commit()
 * uploads that file (streamed, re-read by every attempt) and deletes it. A pack then costs a few
 * MiB of staging memory instead of its whole size — restic spools packs to temporary files for
 * the same reason. The temporary folder is configurable (openBackend's spoolDir; default
 * os.tmpdir(), i.e. $TMPDIR or /tmp; the agent uses its scratch volume).
 *
 * Temporary files are unlinked right after they are created and used through their open
 * descriptor only: a crashed or killed process leaves nothing behind (the kernel frees the
 * blocks when the descriptor goes). Between create and unlink — or where a file system refuses to
 * unlink open files — the name is `cairn-spool-<pid>-<random>.tmp`, in the temporary folder, never
 * in a repository, so it can never be taken for a pack.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { CairnError, errnoCode, fsError } from '../core/errors.js';
import type { Backend, FileHandle, FileInfo, FileSource, FileType, SpoolFile } from './backend.js';

/** Name prefix of every temporary spool file. */
export const SPOOL_PREFIX = 'cairn-spool-';

/** Read size when a spooled file is streamed to the network: few reads, little memory per upload. */
const READ_CHUNK = 256 * 1024;

type FileSaver = Backend & { saveFile(h: FileHandle, src: FileSource): Promise<void> };

export interface TempSpoolOptions {
  /** Folder of the temporary files (default os.tmpdir()). */
  dir?: string;
}

/**
 * Adds createSpool() to a backend that can save from files (saveFile): spooled files are local
 * temporary files committed through `inner.saveFile`, so the wrappers below (retry, limits) see
 * each upload as one operation they can repeat. Everything else is passed through.
 */
export class SpoolingBackend implements Backend {
  readonly location: string;
  readonly dir: string;

  constructor(
    readonly inner: FileSaver,
    opts: TempSpoolOptions = {},
  ) {
    this.location = inner.location;
    this.dir = path.resolve(opts.dir ?? os.tmpdir());
  }

  get connections(): number | undefined {
    return this.inner.connections;
  }

  createSpool(type: FileType): Promise<SpoolFile> {
    return openTempSpool(this.dir, this.location, (name, src) => this.inner.saveFile({ type, name }, src));
  }

  create(): Promise<void> {
    return this.inner.create();
  }
  save(h: FileHandle, data: Uint8Array): Promise<void> {
    return this.inner.save(h, data);
  }
  saveFile(h: FileHandle, src: FileSource): Promise<void> {
    return this.inner.saveFile(h, src);
  }
  load(h: FileHandle, offset?: number, length?: number, into?: Buffer): Promise<Buffer> {
    return this.inner.load(h, offset, length, into);
  }
  stat(h: FileHandle): Promise<FileInfo> {
    return this.inner.stat(h);
  }
  list(type: FileType, signal?: AbortSignal): AsyncIterable<FileInfo> {
    return this.inner.list(type, signal);
  }
  remove(h: FileHandle): Promise<void> {
    return this.inner.remove(h);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Wraps `backend` in a SpoolingBackend when it can save from files; returns it unchanged otherwise. */
export function withTempSpool(backend: Backend, opts: TempSpoolOptions = {}): Backend {
  return backend.saveFile ? new SpoolingBackend(backend as FileSaver, opts) : backend;
}

/**
 * A spool file in `dir` whose commit hands a FileSource over it to `store`, then deletes it.
 * Writes go through the page cache (no O_DIRECT, no fsync): the bytes are read back within
 * seconds and then dropped, so most never reach the disk at all.
 */
export async function openTempSpool(dir: string, location: string, store: (name: string, src: FileSource) => Promise<void>): Promise<SpoolFile> {
  const file = path.join(dir, `${SPOOL_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}.tmp`);
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL, 0o600);
  } catch (e) {
    const code = errnoCode(e);
    const why = code === 'ENOENT' ? 'it does not exist' : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'it is not writable' : (e as Error).message;
    throw new CairnError(
      code === 'ENOSPC' || code === 'EDQUOT' ? 'NO_SPACE' : 'INVALID_ARGUMENT',
      `cannot create a temporary pack file in ${dir} (${why}): packs for ${location} are spooled there before upload; make it writable or choose another folder (TMPDIR; the agent uses VELERO_SCRATCH_DIR)`,
      { object: dir, cause: e },
    );
  }
  // Unlinked at once: from here on only the descriptor holds the file, and a crash leaves nothing.
  let named = true;
  try {
    await fsp.unlink(file);
    named = false;
  } catch {
    /* a file system that cannot unlink open files: deleted when closed instead */
  }
  let size = 0;
  let closed = false;
  const readers = new Set<Readable>();
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    // a reader an SDK left behind (an aborted request) must not outlive the descriptor
    for (const r of readers) r.destroy();
    await fh.close().catch(() => undefined);
    if (named) await fsp.rm(file, { force: true }).catch(() => undefined);
  };
  return {
    write: async (data, position) => {
      try {
        for (let off = 0; off < data.length; ) off += (await fh.write(data, off, data.length - off, position + off)).bytesWritten;
      } catch (e) {
        throw fsError(e, file, 'write temporary pack file');
      }
      size = Math.max(size, position + data.length);
    },
    commit: async (name) => {
      try {
        await store(name, fileSource(fh, size, file, readers));
      } finally {
        await close();
      }
    },
    discard: close,
  };
}

/**
 * Reads of an open file as a FileSource: positional reads through the FileHandle, so any number
 * of streams may run at once, and a read after the close fails (EBADF) instead of reading another
 * file that reused the descriptor number. (FileHandle.createReadStream would close the handle
 * when any one of its streams is destroyed, whatever autoClose says — an aborted upload attempt
 * would then leave nothing for the retry to read.)
 */
function fileSource(fh: fsp.FileHandle, size: number, file: string, readers: Set<Readable>): FileSource {
  return {
    size,
    stream(start = 0, end = size): Readable {
      if (!(start >= 0 && end <= size && start <= end)) throw new CairnError('INTERNAL', `${file}: invalid range ${start}-${end} of ${size} bytes`);
      let pos = start;
      const r = new Readable({
        highWaterMark: READ_CHUNK,
        read() {
          const n = Math.min(READ_CHUNK, end - pos);
          if (n <= 0) {
            this.push(null);
            return;
          }
          const buf = Buffer.allocUnsafe(n);
          fh.read(buf, 0, n, pos).then(
            ({ bytesRead }) => {
              if (bytesRead === 0) {
                this.destroy(new CairnError('IO', `${file}: the temporary file ended at ${pos} of ${size} bytes`, { object: file }));
                return;
              }
              pos += bytesRead;
              this.push(bytesRead === n ? buf : buf.subarray(0, bytesRead));
            },
            (e: unknown) => this.destroy(fsError(e, file, 'read temporary pack file')),
          );
        },
      });
      readers.add(r);
      r.once('close', () => readers.delete(r));
      return r;
    },
  };
}
