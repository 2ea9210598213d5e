import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isCairnError } from '../core/errors.js';
import {
  deg,
  formatPolynomial,
  gcd,
  isIrreducible,
  mod,
  mulMod,
  parsePolynomial,
  randomPolynomial,
} from './polynomial.js';

/** Carry-less multiplication without reduction (test oracle). */
function clmul(a: bigint, b: bigint): bigint {
  let r = 0n;
  for (let i = 0n; b >> i !== 0n; i++) if (((b >> i) & 1n) === 1n) r ^= a << i;
  return r;
}

/** Deterministic byte source for randomPolynomial. */
function seededBytes(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = s >>> 24;
    }
    return out;
  };
}

test('deg', () => {
  assert.equal(deg(0n), -1);
  assert.equal(deg(1n), 0);
  assert.equal(deg(2n), 1);
  assert.equal(deg(0x2497575ac89183n), 53);
  assert.equal(deg(1n << 200n), 200);
});

test('mod and mulMod agree with carry-less multiplication', () => {
  fc.assert(
    fc.property(fc.bigInt(0n, (1n << 64n) - 1n), fc.bigInt(0n, (1n << 64n) - 1n), fc.bigInt(2n, (1n << 54n) - 1n), (a, b, m) => {
      const r = mulMod(a, b, m);
      assert.ok(deg(r) < deg(m));
      assert.equal(r, mod(clmul(a, b), m));
      // a = q·m + (a mod m) means a ^ (a mod m) is divisible by m
      assert.equal(mod(a ^ mod(a, m), m), 0n);
    }),
    { seed: 1, numRuns: 300 },
  );
});

test('gcd', () => {
  const p = 0x2497575ac89183n;
  const q = 0x36eefcf51308e3n;
  assert.equal(gcd(p, q), 1n);
  assert.equal(gcd(clmul(p, 0b111n), clmul(q, 0b111n)), 0b111n);
  assert.equal(gcd(p, 0n), p);
  assert.equal(gcd(0n, p), p);
});

test('irreducible: fixture and spec polynomials, small known cases', () => {
  for (const p of [0x2497575ac89183n, 0x36eefcf51308e3n, 0x289e08e5790585n]) assert.equal(isIrreducible(p), true, p.toString(16));
  assert.equal(isIrreducible(0b100n), false); // x^2
  assert.equal(isIrreducible(0b101n), false); // x^2 + 1 = (x + 1)^2
  assert.equal(isIrreducible(0b111n), true); // x^2 + x + 1
  assert.equal(isIrreducible(0b1011n), true); // x^3 + x + 1
  assert.equal(isIrreducible(0x11bn), true); // AES polynomial x^8 + x^4 + x^3 + x + 1
  assert.equal(isIrreducible(0x11dn), true); // x^8 + x^4 + x^3 + x^2 + 1
  assert.equal(isIrreducible(0b10n), true); // x
  assert.equal(isIrreducible(1n), false);
  assert.equal(isIrreducible(0n), false);
  // A product of two irreducible factors is reducible.
  assert.equal(isIrreducible(clmul(0b111n, 0b1011n)), false);
  assert.equal(isIrreducible(clmul(0x2497575ac89183n, 0b11n)), false);
});

test('irreducibility matches brute-force factoring for all polynomials up to degree 10', () => {
  const irreducible: bigint[] = [];
  for (let p = 2n; p < 1n << 11n; p++) {
    let brute = true;
    for (const f of irreducible) {
      if (deg(f) * 2 > deg(p)) break;
      if (mod(p, f) === 0n) {
        brute = false;
        break;
      }
    }
    if (brute) irreducible.push(p);
    assert.equal(isIrreducible(p), brute, p.toString(2));
  }
  // Known count of irreducible polynomials over GF(2) of degree 10 is 99.
  assert.equal(irreducible.filter((p) => deg(p) === 10).length, 99);
});

test('randomPolynomial: degree 53, irreducible, constant term set', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const p = randomPolynomial(seededBytes(seed));
    assert.equal(deg(p), 53);
    assert.equal(p & 1n, 1n);
    assert.equal(isIrreducible(p), true);
  }
  const p = randomPolynomial();
  assert.equal(deg(p), 53);
  assert.equal(isIrreducible(p), true);
});

test('randomPolynomial reads 8 bytes little-endian and masks like restic', () => {
  // First draw: bytes make a reducible candidate (x^53 + 1 is divisible by x + 1); second draw is
  // the fixture polynomial's bytes with junk in bits 54..63.
  const fixture = 0x2497575ac89183n | (0xffn << 56n);
  const draws = [new Uint8Array(8), new Uint8Array(8)];
  for (let i = 0; i < 8; i++) draws[1][i] = Number((fixture >> BigInt(8 * i)) & 0xffn);
  let call = 0;
  const p = randomPolynomial(() => draws[call++]);
  assert.equal(call, 2);
  assert.equal(p, 0x2497575ac89183n);
});

test('format and parse', () => {
  assert.equal(formatPolynomial(0x2497575ac89183n), '2497575ac89183');
  assert.equal(formatPolynomial(0x0036eefcf51308e3n), '36eefcf51308e3');
  assert.equal(parsePolynomial('2497575ac89183'), 0x2497575ac89183n);
  assert.equal(parsePolynomial('36EEFCF51308E3'), 0x36eefcf51308e3n);
  assert.equal(parsePolynomial('00289e08e5790585'), 0x289e08e5790585n);
  const bad = ['', '0x2497575ac89183', '-2497575ac89183', '2497575ac89183 ', 'xyz', '4', '0', '1', '1000000000000001', '2497575ac89182'];
  for (const s of bad) {
    assert.throws(() => parsePolynomial(s), (e: unknown) => isCairnError(e, 'CORRUPT') && /invalid chunker polynomial/.test((e as Error).message), s);
  }
  // degree 54, irreducible or not, is rejected for its degree
  assert.throws(() => parsePolynomial((1n << 54n | 1n).toString(16)), /degree 54/);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1_000_000 }), (seed) => {
      const p = randomPolynomial(seededBytes(seed));
      assert.equal(parsePolynomial(formatPolynomial(p)), p);
      assert.equal(parsePolynomial(formatPolynomial(p).toUpperCase()), p);
    }),
    { seed: 7, numRuns: 20 },
  );
});
