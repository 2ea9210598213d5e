/**
 * Writing the bulk of large restored files with O_DIRECT, past the page cache.
 *
 * Why: on the project's VM a page the kernel hands out fresh costs ~6 µs (the hypervisor backs it
 * on first touch), and a restore writes its whole size into new page-cache pages: 30 % of a
 * restore's CPU was the kernel copying into them (copy_folio_from_iter_atomic). Direct writes move
 * the bytes from our (recycled) buffers to the disk instead. It also keeps a node agent's restore
 * from evicting the node's page cache for files nobody reads right away.
 *
 * How: a large file gets a second descriptor with O_DIRECT (reopened through /proc/self/fd, so it
 * is the very file created safely by RestoreTarget, never a path looked up again). A blob's
 * plaintext is placed in an aligned buffer at the same phase modulo 4096 as its file offset; its
 * aligned middle goes through the direct descriptor, the partial pages at both ends through the
 * ordinary one (the two never touch the same page). Anything that does not fit — sparse restores,
 * small pieces, file systems or devices that refuse O_DIRECT (EINVAL) — is written as before.
 */
import { constants as fsc } from 'node:fs';
import { open as openFile, type FileHandle } from 'node:fs/promises';
import { directIoFileSystem } from '../native/direct-io.js';
import { native } from '../native/index.js';

/** File offsets, lengths and memory addresses of direct writes are multiples of this. */
export const DIRECT_ALIGN = 4096;
/** Files at least this large get a direct descriptor. */
export const DIRECT_MIN_FILE = 1 << 20;
/** Blob pieces shorter than this are written through the page cache (not worth a second write). */
const DIRECT_MIN_WRITE = 16 * DIRECT_ALIGN;

export class DirectWriter {
  /** Cleared for good by the first refusal (EINVAL: the file system does not do O_DIRECT). */
  private usable: boolean;

  /** `dir`: the restore target, whose file system decides (see directIoFileSystem). */
  constructor(enable: boolean, dir: string) {
    this.usable = enable && directIoFileSystem(dir);
  }

  get enabled(): boolean {
    return this.usable;
  }

  /** Allocator for plaintext buffers: aligned when direct writes may be used. */
  allocator(): ((size: number) => Buffer) | undefined {
    return this.usable ? native.alignedBuffer : undefined;
  }

  /** A direct descriptor of the file open as `h`, or undefined (not usable here). */
  async reopen(h: FileHandle): Promise<FileHandle | undefined> {
    if (!this.usable) return undefined;
    try {
      return await openFile(`/proc/self/fd/${h.fd}`, fsc.O_WRONLY | fsc.O_DIRECT);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // EINVAL: no O_DIRECT on this file system; ENOENT/EACCES: no /proc — either way, not again
      if (code === 'EINVAL' || code === 'ENOENT' || code === 'EACCES') this.usable = false;
      return undefined;
    }
  }

  /**
   * Where a blob's plaintext should start in an aligned buffer so that file offset `position`
   * falls on an aligned address: position mod 4096.
   */
  static phase(position: number): number {
    return position % DIRECT_ALIGN;
  }

  /**
   * Writes all of `data` at `position`: the aligned middle through `direct` when `data` sits at
   * the right phase of an aligned buffer (`alignedBase`: the buffer it is a view of, from
   * allocator()), the rest through `h`.
   */
  async write(h: FileHandle, direct: FileHandle | undefined, data: Buffer, position: number, alignedBase: Buffer | undefined): Promise<void> {
    const end = position + data.length;
    const a = Math.ceil(position / DIRECT_ALIGN) * DIRECT_ALIGN;
    const z = Math.floor(end / DIRECT_ALIGN) * DIRECT_ALIGN;
    const aligned =
      direct !== undefined && this.usable && alignedBase !== undefined && data.buffer === alignedBase.buffer &&
      (data.byteOffset - alignedBase.byteOffset) % DIRECT_ALIGN === position % DIRECT_ALIGN && z - a >= DIRECT_MIN_WRITE;
    if (!aligned) return writeFully(h, data, 0, data.length, position);
    const middle = writeFully(direct, data, a - position, z - a, a).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      // refused after all (alignment rules of this device): through the page cache, from now on
      this.usable = false;
      return writeFully(h, data, a - position, z - a, a);
    });
    const writes: Promise<void>[] = [middle];
    if (a > position) writes.push(writeFully(h, data, 0, a - position, position));
    if (end > z) writes.push(writeFully(h, data, z - position, end - z, z));
    await Promise.all(writes);
  }
}

/** Writes data[off, off + len) at `position`, looping over short writes. */
export async function writeFully(h: FileHandle, data: Buffer, off: number, len: number, position: number): Promise<void> {
  let done = 0;
  while (done < len) {
    const { bytesWritten } = await h.write(data, off + done, len - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    done += bytesWritten;
  }
}
