/**
 * Streaming zstd decompression for verifying blobs without materialising them: compressed input
 * arrives in slices, decompressed output is handed to a sink slice by slice through one reused
 * buffer, so memory does not depend on the blob size.
 */
import binding from 'zstd-napi/binding.js';
import type { DCtx } from 'zstd-napi/binding.js';
import { CairnError } from '../core/errors.js';

const OUT_CHUNK = 128 * 1024;

export class ZstdStreamDecoder {
  private readonly dctx: DCtx = new binding.DCtx();
  private readonly out = Buffer.allocUnsafe(OUT_CHUNK);
  private produced = 0;
  private done = false;

  constructor(private readonly sink: (chunk: Buffer) => void, private readonly maxSize: number) {}

  /** Resets for the next frame. */
  reset(): void {
    this.dctx.reset(binding.ResetDirective.sessionOnly);
    this.produced = 0;
    this.done = false;
  }

  /** Feeds compressed bytes; throws CORRUPT on invalid data, output beyond maxSize, or data after the frame. */
  write(input: Uint8Array): void {
    let consumed = 0;
    try {
      while (consumed < input.length || !this.done) {
        if (this.done) throw new CairnError('CORRUPT', 'zstd: data after the frame');
        const [ret, p, c] = this.dctx.decompressStream(this.out, input.subarray(consumed));
        consumed += c;
        if (p > 0) {
          this.produced += p;
          if (this.produced > this.maxSize) throw new CairnError('CORRUPT', `zstd: frame decompresses to more than the expected ${this.maxSize} bytes`);
          this.sink(this.out.subarray(0, p));
        }
        if (ret === 0) this.done = true;
        else if (p === 0 && c === 0 && consumed < input.length) throw new CairnError('CORRUPT', 'zstd: decoder made no progress');
        // no progress and the output buffer was not full: the decoder needs more input
        if (p < OUT_CHUNK && consumed >= input.length) break;
      }
    } catch (e) {
      this.dctx.reset(binding.ResetDirective.sessionOnly);
      if (e instanceof CairnError) throw e;
      throw new CairnError('CORRUPT', `zstd: invalid frame: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Bytes produced; throws CORRUPT when the frame did not end. */
  end(): number {
    if (!this.done) throw new CairnError('CORRUPT', 'zstd: truncated frame');
    return this.produced;
  }
}
