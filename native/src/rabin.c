/*
 * Rolling Rabin fingerprints over a 64-byte window (spec §10).
 *
 * One byte step is a dependent chain (xor, shift, table load, xor) of about 8 cycles, so a single
 * scan is latency bound. The fingerprint depends only on the last 64 bytes, so a long range can be
 * split into segments that are scanned in lock step, each primed with the 64 bytes before its
 * first candidate: the chains are independent and the CPU overlaps them. The answer is still the
 * first cut of the earliest segment that has one.
 */
#include "rabin.h"

int cairn_rabin_degree(uint64_t pol) {
  return pol == 0 ? -1 : 63 - __builtin_clzll(pol);
}

/* a mod p over GF(2). */
static uint64_t pol_mod(uint64_t a, uint64_t p) {
  int dp = cairn_rabin_degree(p);
  while (a != 0 && cairn_rabin_degree(a) >= dp) a ^= p << (cairn_rabin_degree(a) - dp);
  return a;
}

int cairn_rabin_init(cairn_rabin_tables *t, uint64_t pol) {
  int k = cairn_rabin_degree(pol);
  if (k < 8 || k > 53) return -1;
  for (uint64_t b = 0; b < 256; b++) {
    uint64_t h = pol_mod(b, pol);
    for (int i = 0; i < CAIRN_RABIN_WINDOW - 1; i++) h = pol_mod(h << 8, pol); /* h < 2^53, no overflow */
    t->out[b] = h;
    /* b << k < 2^61 for k <= 53 */
    t->mod[b] = pol_mod(b << k, pol) | (b << k);
  }
  t->shift = k - 8;
  return 0;
}

#define INLINE static inline __attribute__((always_inline))

/* One slide: remove the byte o leaving the window, append the byte b. */
INLINE uint64_t slide(const cairn_rabin_tables *t, int shift, uint64_t d, uint8_t o, uint8_t b) {
  uint64_t x = d ^ t->out[o];
  return ((x << 8) | b) ^ t->mod[x >> shift];
}

/* Digest of the 64 bytes ending just before p (the window starts as zeros, so nothing leaves it). */
INLINE uint64_t prime(const cairn_rabin_tables *t, int shift, const uint8_t *p) {
  uint64_t d = 0;
  for (const uint8_t *q = p - CAIRN_RABIN_WINDOW; q < p; q++) d = ((d << 8) | *q) ^ t->mod[d >> shift];
  return d;
}

/* Single lane: first n in [lo, hi] with a cut, or −1. */
INLINE int64_t scan1(const cairn_rabin_tables *t, int shift, const uint8_t *buf, int64_t lo, int64_t hi) {
  uint64_t d = prime(t, shift, buf + lo);
  if ((d & CAIRN_RABIN_SPLIT_MASK) == 0) return lo;
  for (int64_t p = lo; p < hi; p++) {
    d = slide(t, shift, d, buf[p - CAIRN_RABIN_WINDOW], buf[p]);
    if ((d & CAIRN_RABIN_SPLIT_MASK) == 0) return p + 1;
  }
  return -1;
}

#define LANES 4
/*
 * Candidates per lane and round. Rounds keep the work past the first cut small (< LANES·LANE_LEN
 * bytes) while the priming (64 bytes per lane and round) costs well under 1 %.
 */
#define LANE_LEN 16384

INLINE int64_t scan(const cairn_rabin_tables *t, int shift, const uint8_t *buf, int64_t lo, int64_t hi) {
  int64_t pos = lo;
  while (hi - pos + 1 >= (int64_t)LANES * LANE_LEN) {
    /* Lane i checks candidates start[i] .. start[i] + LANE_LEN − 1; at step j it is at start[i] + j. */
    int64_t start[LANES];
    uint64_t d[LANES];
    for (int i = 0; i < LANES; i++) {
      start[i] = pos + (int64_t)i * LANE_LEN;
      d[i] = prime(t, shift, buf + start[i]);
    }
    int64_t j = 0;
    for (;;) {
      /* Separate, almost never taken branches: cheaper than combining the four tests. */
      int hit = 0;
      for (int i = 0; i < LANES; i++) {
        if ((d[i] & CAIRN_RABIN_SPLIT_MASK) == 0) {
          hit = 1;
          break;
        }
      }
      if (hit) {
        /*
         * Lanes before the first hitting one had no cut up to step j but still have candidates
         * after it; the earliest cut among them wins, else this one.
         */
        int first = 0;
        while ((d[first] & CAIRN_RABIN_SPLIT_MASK) != 0) first++;
        for (int i = 0; i < first; i++) {
          if (j + 1 < LANE_LEN) {
            int64_t r = scan1(t, shift, buf, start[i] + j + 1, start[i] + LANE_LEN - 1);
            if (r >= 0) return r;
          }
        }
        return start[first] + j;
      }
      if (++j == LANE_LEN) break;
      for (int i = 0; i < LANES; i++) {
        int64_t p = start[i] + j - 1;
        d[i] = slide(t, shift, d[i], buf[p - CAIRN_RABIN_WINDOW], buf[p]);
      }
    }
    pos += (int64_t)LANES * LANE_LEN;
  }
  return pos <= hi ? scan1(t, shift, buf, pos, hi) : -1;
}

/* restic's polynomials all have degree 53; a constant shift saves an instruction per byte. */
static int64_t scan_deg53(const cairn_rabin_tables *t, const uint8_t *buf, int64_t lo, int64_t hi) {
  return scan(t, 45, buf, lo, hi);
}

static int64_t scan_any(const cairn_rabin_tables *t, const uint8_t *buf, int64_t lo, int64_t hi) {
  return scan(t, t->shift, buf, lo, hi);
}

int64_t cairn_rabin_scan(const cairn_rabin_tables *t, const uint8_t *buf, int64_t lo, int64_t hi) {
  return t->shift == 45 ? scan_deg53(t, buf, lo, hi) : scan_any(t, buf, lo, hi);
}
