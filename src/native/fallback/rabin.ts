/**
 * restic's Rabin fingerprint cut finder (restic/chunker v0.4.0) in pure TypeScript.
 * Spec: shared/spec/restic-repository-format.md §10. Contract: ../api.ts (RabinKernel.findCut).
 *
 * The 53-bit digest is kept as two uint32 halves (hi < 2^29 after a shift, lo) so that the hot
 * loop runs on int32 arithmetic only; the tables OUT and MOD are computed once per polynomial
 * with BigInt and cached.
 */
import type { RabinKernel } from '../api.js';

/** Window size in bytes (fixed by restic). */
export const WINDOW_SIZE = 64;
/** A cut is where the low 20 bits of the window fingerprint are zero. */
export const SPLIT_MASK = 0xfffff;

export interface RabinTables {
  readonly degree: number;
  /** deg(P) − 8: the digest's top byte is digest >> shift. */
  readonly shift: number;
  readonly outHi: Int32Array;
  readonly outLo: Int32Array;
  readonly modHi: Int32Array;
  readonly modLo: Int32Array;
}

function degreeOf(p: bigint): number {
  return p.toString(2).length - 1;
}

/** a mod p over GF(2) (polynomials as bit sets). */
function polyMod(a: bigint, p: bigint): bigint {
  const dp = degreeOf(p);
  let x = a;
  while (x !== 0n) {
    const dx = degreeOf(x);
    if (dx < dp) break;
    x ^= p << BigInt(dx - dp);
  }
  return x;
}

/** Throws RangeError unless polynomial is a bigint of degree 8…53 (restic's are exactly 53). */
export function checkPolynomial(polynomial: bigint): void {
  if (typeof polynomial !== 'bigint') throw new TypeError('rabin: polynomial must be a bigint');
  if (polynomial <= 0n) throw new RangeError('rabin: polynomial must be positive');
  const deg = degreeOf(polynomial);
  if (deg < 8 || deg > 53) throw new RangeError(`rabin: polynomial degree must be 8..53, got ${deg}`);
}

/** OUT and MOD tables (spec §10.3) split into 32-bit halves. */
export function computeTables(polynomial: bigint): RabinTables {
  checkPolynomial(polynomial);
  const k = degreeOf(polynomial);
  const outHi = new Int32Array(256);
  const outLo = new Int32Array(256);
  const modHi = new Int32Array(256);
  const modLo = new Int32Array(256);
  for (let b = 0; b < 256; b++) {
    // OUT[b] = b · x^(8·63) mod P: the contribution of the byte leaving the window.
    let h = polyMod(BigInt(b), polynomial);
    for (let i = 0; i < WINDOW_SIZE - 1; i++) h = polyMod(h << 8n, polynomial);
    outHi[b] = Number(h >> 32n) | 0;
    outLo[b] = Number(h & 0xffffffffn) | 0;
    // MOD[b] = ((b << k) mod P) | (b << k): cancels the byte shifted above degree k−1 and adds its reduction.
    const top = BigInt(b) << BigInt(k);
    const m = polyMod(top, polynomial) | top;
    modHi[b] = Number(m >> 32n) | 0;
    modLo[b] = Number(m & 0xffffffffn) | 0;
  }
  return { degree: k, shift: k - 8, outHi, outLo, modHi, modLo };
}

const tableCache = new Map<bigint, RabinTables>();

/** Tables for polynomial, computed on first use and cached (a repository uses one polynomial). */
export function tablesFor(polynomial: bigint): RabinTables {
  let t = tableCache.get(polynomial);
  if (t === undefined) {
    t = computeTables(polynomial);
    tableCache.set(polynomial, t);
  }
  return t;
}

/** Validates findCut's arguments (shared by both implementations so that they fail alike). */
export function checkFindCutArgs(
  buf: Uint8Array,
  chunkStart: number,
  scanFrom: number,
  end: number,
  minSize: number,
  maxSize: number,
): void {
  if (!(buf instanceof Uint8Array)) throw new TypeError('findCut: buf must be a Uint8Array');
  if (
    !Number.isSafeInteger(chunkStart) ||
    !Number.isSafeInteger(scanFrom) ||
    !Number.isSafeInteger(end) ||
    !Number.isSafeInteger(minSize) ||
    !Number.isSafeInteger(maxSize)
  ) {
    throw new TypeError('findCut: offsets and sizes must be integers');
  }
  if (chunkStart < 0 || chunkStart > scanFrom || scanFrom > end || end > buf.length) {
    throw new RangeError(
      `findCut: need 0 <= chunkStart (${chunkStart}) <= scanFrom (${scanFrom}) <= end (${end}) <= buf.length (${buf.length})`,
    );
  }
  if (minSize < WINDOW_SIZE) throw new RangeError(`findCut: minSize must be >= ${WINDOW_SIZE}, got ${minSize}`);
  if (maxSize < 0) throw new RangeError(`findCut: maxSize must be >= 0, got ${maxSize}`);
}

/**
 * The hot loop: smallest length n in [lo, hi] whose last-64-byte window fingerprint has its low 20
 * bits zero, or -1. Requires WINDOW_SIZE <= lo; hashing starts at chunkStart + lo − 64.
 */
function scan(t: RabinTables, buf: Uint8Array, chunkStart: number, lo: number, hi: number): number {
  const { outHi, outLo, modHi, modLo, shift } = t;
  let dHi = 0;
  let dLo = 0;
  // Prime: the window starts as 64 zero bytes (OUT[0] = 0 and fp = 0), so the first 64 slides only append.
  let p = chunkStart + lo - WINDOW_SIZE;
  const primeEnd = chunkStart + lo;
  if (shift >= 32) {
    const sh = shift - 32;
    for (; p < primeEnd; p++) {
      const idx = dHi >>> sh;
      dHi = ((dHi << 8) | (dLo >>> 24)) ^ modHi[idx];
      dLo = ((dLo << 8) | buf[p]) ^ modLo[idx];
    }
    if ((dLo & SPLIT_MASK) === 0) return lo;
    const stop = chunkStart + hi;
    for (; p < stop; p++) {
      const o = buf[p - WINDOW_SIZE];
      dHi ^= outHi[o];
      dLo ^= outLo[o];
      const idx = dHi >>> sh;
      dHi = ((dHi << 8) | (dLo >>> 24)) ^ modHi[idx];
      dLo = ((dLo << 8) | buf[p]) ^ modLo[idx];
      if ((dLo & SPLIT_MASK) === 0) return p + 1 - chunkStart;
    }
    return -1;
  }
  // Degree < 40: the top byte straddles the halves (not used by restic, kept for completeness).
  // For degree <= 32 the high half is 0 here, so `<< 32` (which JavaScript treats as `<< 0`) is harmless.
  const sl = 32 - shift;
  for (; p < primeEnd; p++) {
    const idx = ((dHi << sl) | (dLo >>> shift)) & 0xff;
    dHi = ((dHi << 8) | (dLo >>> 24)) ^ modHi[idx];
    dLo = ((dLo << 8) | buf[p]) ^ modLo[idx];
  }
  if ((dLo & SPLIT_MASK) === 0) return lo;
  const stop = chunkStart + hi;
  for (; p < stop; p++) {
    const o = buf[p - WINDOW_SIZE];
    dHi ^= outHi[o];
    dLo ^= outLo[o];
    const idx = ((dHi << sl) | (dLo >>> shift)) & 0xff;
    dHi = ((dHi << 8) | (dLo >>> 24)) ^ modHi[idx];
    dLo = ((dLo << 8) | buf[p]) ^ modLo[idx];
    if ((dLo & SPLIT_MASK) === 0) return p + 1 - chunkStart;
  }
  return -1;
}

class FallbackRabin implements RabinKernel {
  constructor(private readonly tables: RabinTables) {}

  findCut(buf: Uint8Array, chunkStart: number, scanFrom: number, end: number, minSize: number, maxSize: number): number {
    checkFindCutArgs(buf, chunkStart, scanFrom, end, minSize, maxSize);
    const lo = Math.max(minSize, scanFrom - chunkStart);
    const hi = Math.min(maxSize, end - chunkStart);
    if (lo > hi) return -1;
    return scan(this.tables, buf, chunkStart, lo, hi);
  }
}

/** A RabinKernel for polynomial (tables cached per polynomial). */
export function rabin(polynomial: bigint): RabinKernel {
  return new FallbackRabin(tablesFor(polynomial));
}
