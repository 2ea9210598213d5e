/**
 * Opening stored blobs with the blob kernel (src/native: MAC check, AES-256-CTR, bounded zstd,
 * SHA-256 check) off the main thread: the restore path. Errors are the same CairnErrors
 * Repository.openBlob throws (code CORRUPT, naming the blob and its pack).
 */
import { CairnError } from '../core/errors.js';
import type { Id } from '../core/ids.js';
import type { CryptoKey } from '../crypto/key.js';
import type { SealedContent, SealKey } from '../native/api.js';
import { native } from '../native/index.js';
import type { BlobType } from './master-index.js';

/** Largest plaintext accepted for a compressed blob (as Repository.openBlob: chunks are ≤ 8 MiB). */
const MAX_BLOB_PLAINTEXT = 64 << 20;
/** Blobs up to this stored size are opened on the calling thread: a pool round trip costs more. */
const INLINE_OPEN_LIMIT = 4 * 1024;

export interface StoredBlob {
  packId: Id;
  offset: number;
  length: number;
  uncompressedLength?: number;
}

/** The plaintext length of a stored blob (what `out` must hold). */
export function plainLength(loc: StoredBlob): number {
  return loc.uncompressedLength || Math.max(0, loc.length - 32);
}

export class BlobOpener {
  private readonly key: SealKey;

  constructor(key: CryptoKey) {
    this.key = native.sealKey(key.encrypt, key.macK, key.macR);
  }

  /**
   * Decrypts, decompresses and verifies one blob read from a pack. With `out` (at least
   * plainLength(loc) bytes) the plaintext is written there and a view of it returned. `sealed` and
   * `out` must be left alone until the promise settles.
   */
  async open(type: BlobType, id: Id, loc: StoredBlob, sealed: Uint8Array, out?: Uint8Array): Promise<Buffer> {
    const o = { uncompressedLength: loc.uncompressedLength ?? 0, maxSize: MAX_BLOB_PLAINTEXT, id, out };
    try {
      return sealed.length <= INLINE_OPEN_LIMIT ? native.openSync(this.key, sealed, o) : await native.open(this.key, sealed, o);
    } catch (e) {
      throw blobError(type, id, loc, e);
    }
  }

  /**
   * The same blob as arguments for a kernel that opens it itself (native.restoreSealedFile); map
   * its failure with blobError.
   */
  content(id: Id, loc: StoredBlob, sealed: Uint8Array, out: Uint8Array): SealedContent {
    return { key: this.key, sealed, out, uncompressedLength: loc.uncompressedLength ?? 0, maxSize: MAX_BLOB_PLAINTEXT, id };
  }
}

/** The CairnError for a failed open, worded as Repository.openBlob words it. */
export function blobError(type: BlobType, id: Id, loc: StoredBlob, e: unknown): unknown {
  const err = e as { code?: string; reason?: string; message?: string };
  if (err?.code !== 'ERR_CAIRN_CORRUPT') return e;
  const what = `${type} blob ${id} in pack ${loc.packId}`;
  let msg: string;
  switch (err.reason) {
    case 'short':
      msg = `${what}: too short to be encrypted data`;
      break;
    case 'mac':
      msg = `${what}: ciphertext verification failed`;
      break;
    case 'zstd':
      msg = `${what}: decompression failed: ${err.message ?? ''}`;
      break;
    case 'hash':
      msg = `${what}: content does not match its ID`;
      break;
    default:
      msg = `${what}: ${err.message ?? 'corrupt'}`;
  }
  return new CairnError('CORRUPT', msg, { object: what, cause: e });
}
