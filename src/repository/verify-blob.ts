/**
 * Verifies a stored blob — MAC, decryption, decompression, SHA-256 of the plaintext equals its
 * ID — in fixed-size slices, without holding the plaintext: what check --read-data and prune's
 * repacking need for every blob they touch, at a memory cost independent of the blob size.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import { ZstdStreamDecoder } from '../format/zstd-stream.js';
import { kernelConcurrency, native } from '../native/index.js';
import type { SealKey } from '../native/api.js';
import type { BlobLocation } from './master-index.js';
import type { Repository } from './repository.js';

const SLICE = 256 * 1024;
/** Below this, a thread-pool round trip costs more than verifying on the calling thread. */
const SYNC_LIMIT = 128 * 1024;

const REASONS: Record<string, string> = {
  short: 'too short to be encrypted data',
  mac: 'ciphertext verification failed',
  zstd: 'decompression failed',
  size: 'decompressed length differs from the index',
  hash: 'content does not match its ID',
};

/** Plaintext bytes of small blobs verified at once by verifyMany. */
const ARENA = 8 * 1024 * 1024;

/** The CairnError for a kernel's verdict on a blob. */
function corruptError(id: Id, loc: BlobLocation, e: unknown): CairnError {
  const what = `${loc.type} blob ${id} in pack ${loc.packId}`;
  const reason = (e as { code?: string; reason?: string }).code === 'ERR_CAIRN_CORRUPT' ? REASONS[(e as { reason: string }).reason] : undefined;
  return new CairnError('CORRUPT', `${what}: ${reason ?? (e as Error).message}`, { object: what, cause: e });
}

export class BlobVerifier {
  private hash = createHash('sha256');
  private readonly zstd: ZstdStreamDecoder;
  private readonly key: SealKey | undefined;
  /** openSync's output for blobs below SYNC_LIMIT (verifyAsync). */
  private syncOut: Buffer | undefined;
  /** How many verifyAsync calls are worth having in flight (the native kernels' thread-pool slots). */
  readonly parallelism: number;

  constructor(private readonly repo: Repository) {
    this.zstd = new ZstdStreamDecoder((chunk) => {
      this.hash.update(chunk);
    }, 64 << 20);
    if (native.blobKernels === 'native') {
      const k = repo.masterKey;
      this.key = native.sealKey(k.encrypt, k.macK, k.macR);
    }
    this.parallelism = this.key ? kernelConcurrency() : 1;
  }

  /**
   * Verifies many blobs (e.g. all blobs of one pack) and returns one verdict per item: null when
   * intact, else the CairnError verifyAsync would throw. With the native kernels, the small blobs
   * are all submitted at once — the kernel calls of one event-loop turn share thread-pool jobs —
   * with their plaintexts in one recycled arena; large ones go through verifyAsync.
   */
  async verifyMany(items: ReadonlyArray<{ id: Id; loc: BlobLocation; sealed: Uint8Array }>): Promise<unknown[]> {
    const verdicts: unknown[] = new Array<unknown>(items.length).fill(null);
    const small: number[] = [];
    const large: number[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const size = it.loc.uncompressedLength || it.sealed.length - 32;
      (this.key && it.sealed.length >= 32 && size < SYNC_LIMIT ? small : large).push(i);
    }
    // small blobs in slices of at most ARENA bytes of plaintext
    for (let from = 0; from < small.length; ) {
      let bytes = 0;
      let to = from;
      while (to < small.length) {
        const it = items[small[to]!]!;
        const size = it.loc.uncompressedLength || it.sealed.length - 32;
        if (to > from && bytes + size > ARENA) break;
        bytes += size;
        to++;
      }
      const arena = this.arena !== undefined && this.arena.length >= bytes ? this.arena : Buffer.allocUnsafeSlow(Math.max(bytes, ARENA));
      this.arena = undefined; // in use
      let off = 0;
      const jobs: Array<Promise<void>> = [];
      for (let k = from; k < to; k++) {
        const i = small[k]!;
        const { id, loc, sealed } = items[i]!;
        const size = loc.uncompressedLength || sealed.length - 32;
        const out = arena.subarray(off, off + size);
        off += size;
        const o = { uncompressedLength: loc.uncompressedLength ?? 0, maxSize: size, id, out };
        jobs.push(
          native.open(this.key!, sealed, o).then(
            () => undefined,
            (e: unknown) => {
              verdicts[i] = corruptError(id, loc, e);
            },
          ),
        );
      }
      await Promise.all(jobs);
      if (arena.length <= ARENA) this.arena = arena;
      from = to;
    }
    let next = 0;
    const worker = async () => {
      while (next < large.length) {
        const i = large[next++]!;
        const { id, loc, sealed } = items[i]!;
        try {
          await this.verifyAsync(id, loc, sealed);
        } catch (e) {
          verdicts[i] = e;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.parallelism, large.length) }, worker));
    return verdicts;
  }

  private arena: Buffer | undefined;

  /**
   * Like verify(), but with the native blob kernels the work runs on a kernel thread (blobs below
   * SYNC_LIMIT on the calling thread) and no plaintext is kept: large blobs are decrypted and
   * hashed in slices (native verify). Several calls may be in flight at once.
   */
  async verifyAsync(id: Id, loc: BlobLocation, sealed: Uint8Array): Promise<void> {
    if (!this.key || sealed.length < 32) return this.verify(id, loc, sealed);
    const size = loc.uncompressedLength || sealed.length - 32;
    const o = { uncompressedLength: loc.uncompressedLength ?? 0, maxSize: size, id };
    try {
      if (size < SYNC_LIMIT) native.openSync(this.key, sealed, { ...o, out: (this.syncOut ??= Buffer.allocUnsafeSlow(SYNC_LIMIT)) });
      // in slices on a kernel thread: no plaintext buffer, whatever the blob's size
      else await native.verify(this.key, sealed, o);
    } catch (e) {
      throw corruptError(id, loc, e);
    }
  }

  /** Throws CORRUPT (naming blob and pack) unless the sealed blob is intact and is the blob `id`. */
  verify(id: Id, loc: BlobLocation, sealed: Uint8Array): void {
    const what = `${loc.type} blob ${id} in pack ${loc.packId}`;
    if (sealed.length < 32) throw new CairnError('CORRUPT', `${what}: too short to be encrypted data`, { object: what });
    if (!this.repo.sealer.verifies(sealed)) throw new CairnError('CORRUPT', `${what}: ciphertext verification failed`, { object: what });
    const iv = sealed.subarray(0, 16);
    const ct = sealed.subarray(16, sealed.length - 16);
    const decipher = createCipheriv('aes-256-ctr', this.repo.masterKey.encrypt, iv);
    this.hash = createHash('sha256');
    const compressed = !!loc.uncompressedLength;
    if (compressed) this.zstd.reset();
    let n = 0;
    try {
      for (let off = 0; off < ct.length; off += SLICE) {
        const chunk = decipher.update(ct.subarray(off, Math.min(ct.length, off + SLICE)));
        if (compressed) this.zstd.write(chunk);
        else this.hash.update(chunk);
      }
      if (compressed) n = this.zstd.end();
    } catch (e) {
      throw new CairnError('CORRUPT', `${what}: decompression failed: ${(e as Error).message}`, { object: what, cause: e });
    }
    if (compressed) {
      if (n !== loc.uncompressedLength) throw new CairnError('CORRUPT', `${what}: decompressed to ${n} bytes, index says ${loc.uncompressedLength}`, { object: what });
    }
    if (this.hash.digest('hex') !== id) throw new CairnError('CORRUPT', `${what}: content does not match its ID`, { object: what });
  }
}
