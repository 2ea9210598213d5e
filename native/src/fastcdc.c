/*
 * FastCDC cut points with the exact rules of fastcdc 1.0.5 (what fastcdc-wasm runs), written from
 * the algorithm's description: a 32-bit gear hash h = (h >> 1) + gear[byte] rolled from min bytes
 * into the chunk, a cut right after the first byte where h & mask is zero, first with a mask of
 * (bits + 1) one-bits up to a "centre", then with (bits − 1) one-bits up to max, where bits is
 * log2(avg) rounded to the nearest integer; a chunk of max bytes when nothing hits; the rest of
 * the input when at most min bytes are left. fastcdc 1.0.5 puts the centre at
 * avg − min(avg, min + ⌈min/2⌉) bytes from the chunk start — with min ≥ avg/2 (cairn's default
 * 512 KiB / 1 MiB) that is before min, so only the second mask is ever used. The gear table is the
 * caller's (read out of fastcdc-wasm's module, see src/chunker/fastcdc.ts).
 */
#include "fastcdc.h"

/* log2(v) rounded to the nearest integer (as fastcdc 1.0.5's f64 log2().round()), v ≥ 1. */
static uint32_t log2_rounded(uint64_t v) {
  uint32_t k = 63 - (uint32_t)__builtin_clzll(v);
  /* log2(v) ≥ k + ½ ⇔ v² ≥ 2^(2k+1) (never equal for an integer v); v ≤ 2^28 here, so v² fits */
  return v * v >= (1ull << (2 * k + 1)) ? k + 1 : k;
}

static uint32_t low_bits(uint32_t bits) {
  return (uint32_t)((1ull << bits) - 1);
}

/* Length of the next chunk of p[0, left), left > 0. */
static size_t next_cut(const uint8_t *p, size_t left, size_t min, size_t centre, size_t max, uint32_t mask_small,
                       uint32_t mask_large, const uint32_t gear[256]) {
  if (left <= min) return left;
  size_t size = left < max ? left : max;
  size_t centre_end = centre < size ? centre : size;
  uint32_t h = 0;
  size_t i = min;
  for (; i < centre_end; i++) {
    h = (h >> 1) + gear[p[i]];
    if ((h & mask_small) == 0) return i + 1;
  }
  for (; i < size; i++) {
    h = (h >> 1) + gear[p[i]];
    if ((h & mask_large) == 0) return i + 1;
  }
  return size;
}

int64_t cairn_fastcdc_boundaries(const uint8_t *data, size_t n, uint32_t min, uint32_t avg, uint32_t max,
                                 const uint32_t gear[256], uint32_t *out, size_t cap) {
  if (cap < 1) return -1;
  uint32_t bits = log2_rounded(avg); /* 8..28 within the limits */
  uint32_t mask_small = low_bits(bits + 1);
  uint32_t mask_large = low_bits(bits - 1);
  size_t before_centre = (size_t)min + ((size_t)min + 1) / 2;
  if (before_centre > avg) before_centre = avg;
  size_t centre = (size_t)avg - before_centre;
  size_t count = 0;
  size_t pos = 0;
  out[count++] = 0;
  while (pos < n) {
    pos += next_cut(data + pos, n - pos, min, centre, max, mask_small, mask_large, gear);
    if (count == cap) return -1;
    out[count++] = (uint32_t)pos;
  }
  return (int64_t)count;
}
