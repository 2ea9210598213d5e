import type { Sealer } from '../crypto/seal.js';
import { zstdCompress } from '../format/zstd.js';

export interface SealResult {
  sealed: Uint8Array;
  /** Plaintext length when the stored payload is compressed, else 0. */
  uncompressedLength: number;
}

/**
 * Compresses (when asked and when that makes the blob smaller) and encrypts one blob. restic 0.14
 * always compresses in v2; readers accept both, and incompressible data is cheaper to keep raw.
 * The output is a fresh ArrayBuffer so a worker can transfer it without a copy.
 */
export function sealBlob(s: Sealer, data: Uint8Array, compress: boolean, level: number): SealResult {
  let payload: Uint8Array = data;
  let uncompressedLength = 0;
  if (compress && data.length > 0) {
    const c = zstdCompress(data, level);
    if (c.length < data.length) {
      payload = c;
      uncompressedLength = data.length;
    }
  }
  const out = new Uint8Array(new ArrayBuffer(payload.length + 32));
  s.sealInto(payload, Buffer.from(out.buffer, 0, out.length), 0);
  return { sealed: out, uncompressedLength };
}
