/**
 * Sealing one blob on the calling thread, for the worker-thread path of the blob writer (used
 * when the addon's blob kernels are not available). The work itself is the blob kernel's
 * (src/native: zstd with the compressibility sample, AES-256-CTR, Poly1305-AES); this module
 * only adapts it to the worker protocol. See blob-writer.ts for why and when which path is used.
 */
import type { SealKey } from '../native/api.js';
import { native } from '../native/index.js';

export interface SealResult {
  sealed: Uint8Array;
  /** Plaintext length when the stored payload is compressed, else 0. */
  uncompressedLength: number;
}

/**
 * Compresses (when asked and when that makes the blob smaller) and encrypts one blob. The result
 * is a view of a fresh ArrayBuffer of its own (data.length + 32 bytes), so that a worker can
 * transfer it instead of copying it (memory the addon allocates itself cannot be transferred).
 */
export function sealBlob(key: SealKey, data: Uint8Array, compress: boolean, level: number): SealResult {
  const out = Buffer.allocUnsafeSlow(data.length + 32);
  const r = native.sealSync(key, data, { compress, level, out });
  return { sealed: r.sealed, uncompressedLength: r.uncompressedLength };
}
