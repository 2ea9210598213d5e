/**
 * createChunker: the one entry point for content-defined chunking. Consumers get a Chunker (params
 * + a per-file FileSplitter factory) and never see which algorithm or kernel is underneath.
 */
import { CairnError } from '../core/errors.js';
import { native } from '../native/index.js';
import type { RabinKernel } from '../native/api.js';
import { FASTCDC_LIMITS, FastCdcSplitter } from './fastcdc.js';
import { deg, isIrreducible, POLYNOMIAL_DEGREE, formatPolynomial } from './polynomial.js';
import { RabinSplitter } from './rabin.js';
import type { Chunker, ChunkerParams, FileSplitter } from './types.js';

export type { Chunker, ChunkerParams, FileSplitter } from './types.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** restic 0.14's chunker sizes (restic/chunker v0.4.0 MinSize/MaxSize; 2^20 split mask ⇒ avg 1 MiB). */
export const RESTIC_RABIN = { minSize: 512 * KiB, avgSize: 1 * MiB, maxSize: 8 * MiB };

/**
 * FastCDC with restic-like size limits: same min/max as restic so pack and memory behaviour stay
 * the same; avg 1 MiB gives chunks of roughly restic's average size.
 */
export const DEFAULT_FASTCDC = { minSize: 512 * KiB, avgSize: 1 * MiB, maxSize: 8 * MiB };

/** restic's split mask (2^20 − 1) is fixed in the kernel, which makes the average a constant. */
const RABIN_AVG = 1 * MiB;
/** The Rabin window; findCut needs minSize ≥ this. */
const RABIN_WINDOW = 64;
/** A sanity bound: chunks are held in memory whole. */
const RABIN_MAX_LIMIT = 1024 * MiB;

export interface ChunkerDeps {
  /** Kernel factory for 'rabin' (default native.rabin); tests inject other implementations. */
  rabin?: (polynomial: bigint) => RabinKernel;
}

export function createChunker(params: ChunkerParams, deps: ChunkerDeps = {}): Chunker {
  const frozen: ChunkerParams = Object.freeze({ ...params });
  const { minSize, avgSize, maxSize } = frozen;
  for (const [name, v] of [['minSize', minSize], ['avgSize', avgSize], ['maxSize', maxSize]] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) invalid(`${name} must be a positive integer, got ${v}`);
  }
  if (minSize > maxSize) invalid(`minSize ${minSize} exceeds maxSize ${maxSize}`);

  if (frozen.algorithm === 'rabin') {
    const poly = frozen.polynomial;
    if (poly === undefined) invalid('the rabin chunker needs a polynomial');
    const d = deg(poly);
    // deg ≥ 8 because the fingerprint update shifts by deg − 8 (restic/chunker computes the same).
    if (d < 8 || d > POLYNOMIAL_DEGREE || !isIrreducible(poly)) {
      invalid(`rabin polynomial ${formatPolynomial(poly)} must be irreducible with degree 8…${POLYNOMIAL_DEGREE}`);
    }
    if (avgSize !== RABIN_AVG) invalid(`the rabin chunker's average is fixed at ${RABIN_AVG} (split mask 2^20 − 1), got ${avgSize}`);
    if (minSize < RABIN_WINDOW) invalid(`the rabin chunker needs minSize ≥ ${RABIN_WINDOW}, got ${minSize}`);
    if (maxSize > RABIN_MAX_LIMIT) invalid(`the rabin chunker's maxSize is limited to ${RABIN_MAX_LIMIT}, got ${maxSize}`);
    const kernel = (deps.rabin ?? ((p: bigint) => native.rabin(p)))(poly);
    return {
      params: frozen,
      newFile: (): FileSplitter => new RabinSplitter(kernel, minSize, maxSize),
    };
  }

  if (frozen.algorithm === 'fastcdc') {
    for (const [name, v] of [['minSize', minSize], ['avgSize', avgSize], ['maxSize', maxSize]] as const) {
      const [lo, hi] = FASTCDC_LIMITS[name];
      if (v < lo || v > hi) invalid(`fastcdc ${name} must be within [${lo}, ${hi}], got ${v}`);
    }
    if (avgSize < minSize || avgSize > maxSize) invalid(`fastcdc needs minSize ≤ avgSize ≤ maxSize, got ${minSize}/${avgSize}/${maxSize}`);
    return {
      params: frozen,
      newFile: (): FileSplitter => new FastCdcSplitter(minSize, avgSize, maxSize),
    };
  }

  invalid(`unknown chunking algorithm ${JSON.stringify((frozen as { algorithm: unknown }).algorithm)}`);
}

function invalid(message: string): never {
  throw new CairnError('INVALID_ARGUMENT', `chunker: ${message}`);
}
