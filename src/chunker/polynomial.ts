/**
 * Polynomials over GF(2) as non-negative bigints: bit i is the coefficient of x^i, addition is XOR.
 * Used for restic's Rabin chunker polynomial (spec §10.2, §10.7): generating one at `init`,
 * validating the one in a repository's config, and formatting it back (spec §3).
 *
 * Everything here is cold code (a handful of calls per repository open), so clarity wins over
 * speed; the hot fingerprint loop lives in native/ (RabinKernel).
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { CairnError } from '../core/errors.js';

/** restic's polynomials have exactly this degree; parsePolynomial accepts any degree up to it. */
export const POLYNOMIAL_DEGREE = 53;

/** restic gives up generating after this many candidates (chunker.RandomPolynomial). */
const MAX_RANDOM_TRIES = 1_000_000;

const ZERO = 0n;
const ONE = 1n;
/** The polynomial "x". */
const X = 2n;

function assertPoly(p: bigint, name: string): void {
  if (p < ZERO) throw new CairnError('INVALID_ARGUMENT', `GF(2) polynomial ${name} must be non-negative, got ${p}`);
}

/** Degree of p (index of the highest set bit); -1 for the zero polynomial. */
export function deg(p: bigint): number {
  assertPoly(p, 'p');
  if (p === ZERO) return -1;
  // toString(2) is exact for bigints of any size and cheap for the ~54-bit values used here.
  return p.toString(2).length - 1;
}

/** a mod m (polynomial remainder). Throws for m = 0. */
export function mod(a: bigint, m: bigint): bigint {
  assertPoly(a, 'a');
  assertPoly(m, 'm');
  if (m === ZERO) throw new CairnError('INVALID_ARGUMENT', 'GF(2) polynomial division by zero');
  const dm = deg(m);
  let da = deg(a);
  while (da >= dm) {
    a ^= m << BigInt(da - dm);
    da = deg(a);
  }
  return a;
}

/** (a · b) mod m, by shift-and-add with the running multiple of a kept reduced. */
export function mulMod(a: bigint, b: bigint, m: bigint): bigint {
  assertPoly(b, 'b');
  let acc = mod(a, m); // a · x^i mod m for the current bit i of b
  const dm = deg(m);
  const top = ONE << BigInt(dm); // the x^deg(m) term; present after a shift means "reduce once"
  let result = ZERO;
  let rest = b;
  while (rest !== ZERO) {
    if ((rest & ONE) === ONE) result ^= acc;
    rest >>= ONE;
    acc <<= ONE;
    // acc had degree < dm before the shift, so at most the x^dm term needs cancelling.
    if ((acc & top) !== ZERO) acc ^= m;
  }
  return result;
}

/** Greatest common divisor (Euclid with polynomial remainders). gcd(a, 0) = a. */
export function gcd(a: bigint, b: bigint): bigint {
  assertPoly(a, 'a');
  assertPoly(b, 'b');
  while (b !== ZERO) {
    const r = mod(a, b);
    a = b;
    b = r;
  }
  return a;
}

/**
 * Ben-Or irreducibility test (spec §10.7): p of degree d is irreducible iff for every
 * i = 1 … ⌊d/2⌋, gcd(p, (x^(2^i) − x) mod p) = 1. Constant polynomials (0 and 1) are not irreducible.
 */
export function isIrreducible(p: bigint): boolean {
  assertPoly(p, 'p');
  const d = deg(p);
  if (d < 1) return false;
  let xPow = mod(X, p); // x^(2^i) mod p, squared once per round
  for (let i = 1; i <= Math.floor(d / 2); i++) {
    xPow = mulMod(xPow, xPow, p);
    // Subtraction is XOR in GF(2); xPow is reduced and deg(p) > 1 here, so XOR-ing x keeps it reduced.
    const q = mod(xPow ^ X, p);
    if (gcd(p, q) !== ONE) return false;
  }
  return true;
}

/**
 * A random irreducible polynomial of degree 53, generated like restic's `init` (spec §10.7):
 * 8 random bytes as a little-endian uint64, keep bits 0…53, set bits 53 and 0, retry until
 * irreducible. `randomBytes` is injectable so tests can make it deterministic.
 */
export function randomPolynomial(randomBytes: (n: number) => Uint8Array = cryptoRandomBytes): bigint {
  const keep = (ONE << 54n) - ONE;
  const force = (ONE << 53n) | ONE;
  for (let tries = 0; tries < MAX_RANDOM_TRIES; tries++) {
    const b = randomBytes(8);
    if (b.length < 8) throw new CairnError('INTERNAL', `random source returned ${b.length} bytes, wanted 8`);
    let f = ZERO;
    for (let i = 7; i >= 0; i--) f = (f << 8n) | BigInt(b[i]);
    f = (f & keep) | force;
    if (isIrreducible(f)) return f;
  }
  throw new CairnError('INTERNAL', `no irreducible polynomial found after ${MAX_RANDOM_TRIES} tries`);
}

/** The config-file form (spec §3): lower-case hex, no 0x, no leading zeros (Go strconv.FormatUint(p, 16)). */
export function formatPolynomial(p: bigint): string {
  assertPoly(p, 'p');
  return p.toString(16);
}

const HEX_RE = /^[0-9a-fA-F]+$/;

/**
 * Parses `chunker_polynomial` from a repository config. Accepts what restic accepts (Go
 * strconv.ParseUint(s, 16, 64): hex digits of either case, leading zeros allowed, no 0x prefix,
 * no sign) and then requires degree ≤ 53 and irreducibility, as restic does on every open.
 */
export function parsePolynomial(s: string): bigint {
  if (!HEX_RE.test(s)) {
    throw new CairnError('CORRUPT', `invalid chunker polynomial ${JSON.stringify(s)}: not a hexadecimal number`);
  }
  const p = BigInt('0x' + s);
  const d = deg(p);
  if (d > POLYNOMIAL_DEGREE) {
    throw new CairnError('CORRUPT', `invalid chunker polynomial ${JSON.stringify(s)}: degree ${d} exceeds ${POLYNOMIAL_DEGREE}`);
  }
  if (!isIrreducible(p)) {
    throw new CairnError('CORRUPT', `invalid chunker polynomial ${JSON.stringify(s)}: not irreducible`);
  }
  return p;
}
