/**
 * Poly1305 (RFC 8439 §2.5) in pure TypeScript.
 *
 * Why 22-bit limbs and not donna-32's 26-bit ones: JavaScript multiplies in float64, which is
 * exact only below 2^53. With 5 × 26-bit limbs a column of the schoolbook product is a sum of
 * five 26×28-bit products (≈ 2^56), so it would silently lose bits. With 6 × 22-bit limbs
 * (radix 2^22, 132 bits, and 2^132 ≡ 4·5 = 20 mod p) a column is at most six products of
 * (23-bit accumulator limb) × (≤ 26.4-bit r limb or 20·r limb) < 2^52, so every column sum is exact
 * and carries can be taken with plain int32 truncation. That is 36 multiplications per block,
 * fewer than the 50 a 26-bit scheme would need once each product is split to stay exact.
 *
 * The accumulator is only partially reduced (limbs < 2^22 + small) between blocks and fully
 * reduced mod 2^130 − 5 once at the end.
 */

const MASK22 = 0x3fffff;
/** 2^-22: multiplying by it is exact, and `| 0` then floors (all operands are non-negative and < 2^53). */
const INV22 = 1 / 4194304;

/** Scratch block for the final partial block; module-level so a call allocates only its result. */
const tail: Uint8Array = Buffer.alloc(16);

function load32(b: Uint8Array, i: number): number {
  return b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
}

/** The 16-byte Poly1305 tag of msg under the 32-byte one-time key r || s (r is clamped here). */
export function poly1305(key: Uint8Array, msg: Uint8Array): Buffer {
  if (!(key instanceof Uint8Array) || !(msg instanceof Uint8Array)) throw new TypeError('poly1305: key and msg must be Uint8Arrays');
  if (key.length !== 32) throw new RangeError(`poly1305: key must be 32 bytes, got ${key.length}`);

  // r, clamped (RFC 8439 §2.5.1), split into 22-bit limbs. r < 2^124, so r5 has at most 14 bits.
  const k0 = load32(key, 0) & 0x0fffffff;
  const k1 = load32(key, 4) & 0x0ffffffc;
  const k2 = load32(key, 8) & 0x0ffffffc;
  const k3 = load32(key, 12) & 0x0ffffffc;
  const r0 = k0 & MASK22;
  const r1 = ((k0 >>> 22) | (k1 << 10)) & MASK22;
  const r2 = ((k1 >>> 12) | (k2 << 20)) & MASK22;
  const r3 = (k2 >>> 2) & MASK22;
  const r4 = ((k2 >>> 24) | (k3 << 8)) & MASK22;
  const r5 = k3 >>> 14;
  // Limb products that land at 2^132 or above wrap around multiplied by 20.
  const s1 = r1 * 20;
  const s2 = r2 * 20;
  const s3 = r3 * 20;
  const s4 = r4 * 20;
  const s5 = r5 * 20;

  let h0 = 0;
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  let h4 = 0;
  let h5 = 0;

  const len = msg.length;
  const full = len & ~15;
  let block: Uint8Array = msg;
  let off = 0;
  let end = full;
  let hibit = 1 << 18; // 2^128 sits at bit 18 of limb 5 (bit offset 110)
  for (;;) {
    if (off >= end) {
      if (block === tail || full === len) break;
      // Last partial block: bytes, then 0x01, then zeros; no 2^128 bit.
      const rest = len - full;
      for (let i = 0; i < rest; i++) tail[i] = msg[full + i];
      tail[rest] = 1;
      for (let i = rest + 1; i < 16; i++) tail[i] = 0;
      block = tail;
      off = 0;
      end = 16;
      hibit = 0;
    }
    const w0 = load32(block, off);
    const w1 = load32(block, off + 4);
    const w2 = load32(block, off + 8);
    const w3 = load32(block, off + 12);
    h0 += w0 & MASK22;
    h1 += ((w0 >>> 22) | (w1 << 10)) & MASK22;
    h2 += ((w1 >>> 12) | (w2 << 20)) & MASK22;
    h3 += (w2 >>> 2) & MASK22;
    h4 += ((w2 >>> 24) | (w3 << 8)) & MASK22;
    h5 += (w3 >>> 14) | hibit;

    const d0 = h0 * r0 + h1 * s5 + h2 * s4 + h3 * s3 + h4 * s2 + h5 * s1;
    const d1 = h0 * r1 + h1 * r0 + h2 * s5 + h3 * s4 + h4 * s3 + h5 * s2;
    const d2 = h0 * r2 + h1 * r1 + h2 * r0 + h3 * s5 + h4 * s4 + h5 * s3;
    const d3 = h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s5 + h5 * s4;
    const d4 = h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0 + h5 * s5;
    const d5 = h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1 + h5 * r0;

    // Carry in two parallel rounds instead of one serial chain (the chain is what limits speed):
    // round 1 splits every column into low 22 bits and a carry (< 2^30) and moves the carry up one
    // limb (the top one wraps around ×20); round 2 does the same on the results, which leaves every
    // limb < 2^22 + 2^14.
    const c0 = (d0 * INV22) | 0;
    const c1 = (d1 * INV22) | 0;
    const c2 = (d2 * INV22) | 0;
    const c3 = (d3 * INV22) | 0;
    const c4 = (d4 * INV22) | 0;
    const c5 = (d5 * INV22) | 0;
    const t0 = (d0 & MASK22) + c5 * 20; // < 2^35: a float, exact
    const t1 = (d1 & MASK22) + c0; // < 2^31
    const t2 = (d2 & MASK22) + c1;
    const t3 = (d3 & MASK22) + c2;
    const t4 = (d4 & MASK22) + c3;
    const t5 = (d5 & MASK22) + c4;
    h0 = (t0 & MASK22) + (t5 >>> 22) * 20;
    h1 = (t1 & MASK22) + ((t0 * INV22) | 0);
    h2 = (t2 & MASK22) + (t1 >>> 22);
    h3 = (t3 & MASK22) + (t2 >>> 22);
    h4 = (t4 & MASK22) + (t3 >>> 22);
    h5 = (t5 & MASK22) + (t4 >>> 22);

    off += 16;
  }

  // Full carry so that every limb is < 2^22 (h < 2^132).
  let c = h0 >>> 22;
  h0 &= MASK22;
  h1 += c;
  c = h1 >>> 22;
  h1 &= MASK22;
  h2 += c;
  c = h2 >>> 22;
  h2 &= MASK22;
  h3 += c;
  c = h3 >>> 22;
  h3 &= MASK22;
  h4 += c;
  c = h4 >>> 22;
  h4 &= MASK22;
  h5 += c;
  // Fold bits 130 and up (limb 5 bits ≥ 20) back in as ×5, twice to absorb the carry it may cause.
  for (let pass = 0; pass < 2; pass++) {
    c = h5 >>> 20;
    h5 &= 0xfffff;
    h0 += c * 5;
    c = h0 >>> 22;
    h0 &= MASK22;
    h1 += c;
    c = h1 >>> 22;
    h1 &= MASK22;
    h2 += c;
    c = h2 >>> 22;
    h2 &= MASK22;
    h3 += c;
    c = h3 >>> 22;
    h3 &= MASK22;
    h4 += c;
    c = h4 >>> 22;
    h4 &= MASK22;
    h5 += c;
  }
  // Now h < 2^130. If h >= p = 2^130 - 5, then h + 5 >= 2^130: subtract p by taking g = h + 5 - 2^130.
  let g0 = h0 + 5;
  c = g0 >>> 22;
  g0 &= MASK22;
  let g1 = h1 + c;
  c = g1 >>> 22;
  g1 &= MASK22;
  let g2 = h2 + c;
  c = g2 >>> 22;
  g2 &= MASK22;
  let g3 = h3 + c;
  c = g3 >>> 22;
  g3 &= MASK22;
  let g4 = h4 + c;
  c = g4 >>> 22;
  g4 &= MASK22;
  const g5 = h5 + c;
  if (g5 >>> 20 !== 0) {
    h0 = g0;
    h1 = g1;
    h2 = g2;
    h3 = g3;
    h4 = g4;
    h5 = g5 & 0xfffff;
  }

  // h mod 2^128 as four 32-bit words, plus s, with carries.
  const x0 = (h0 | (h1 << 22)) >>> 0;
  const x1 = ((h1 >>> 10) | (h2 << 12)) >>> 0;
  const x2 = ((h2 >>> 20) | (h3 << 2) | (h4 << 24)) >>> 0;
  const x3 = ((h4 >>> 8) | (h5 << 14)) >>> 0;
  const out = Buffer.allocUnsafe(16);
  let t = x0 + (load32(key, 16) >>> 0);
  out.writeUInt32LE(t >>> 0, 0);
  t = x1 + (load32(key, 20) >>> 0) + (t > 0xffffffff ? 1 : 0);
  out.writeUInt32LE(t >>> 0, 4);
  t = x2 + (load32(key, 24) >>> 0) + (t > 0xffffffff ? 1 : 0);
  out.writeUInt32LE(t >>> 0, 8);
  t = x3 + (load32(key, 28) >>> 0) + (t > 0xffffffff ? 1 : 0);
  out.writeUInt32LE(t >>> 0, 12);
  return out;
}
