/* restic's Rabin fingerprint cut finder (restic/chunker v0.4.0 semantics; see native/README.md). */
#ifndef CAIRN_RABIN_H
#define CAIRN_RABIN_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_RABIN_WINDOW 64
#define CAIRN_RABIN_SPLIT_MASK ((uint64_t)0xfffff)

typedef struct {
  uint64_t out[256]; /* OUT[b] = b·x^(8·63) mod P */
  uint64_t mod[256]; /* MOD[b] = ((b << k) mod P) | (b << k) */
  int shift;         /* deg(P) − 8 */
} cairn_rabin_tables;

/* Degree of pol (index of the highest set bit), −1 for 0. */
int cairn_rabin_degree(uint64_t pol);

/* Fills t for pol; returns 0, or −1 when deg(pol) is outside 8..53. */
int cairn_rabin_init(cairn_rabin_tables *t, uint64_t pol);

/*
 * Smallest n in [lo, hi] such that the fingerprint of buf[n−64 .. n−1] has its low 20 bits zero,
 * or −1. Requires 64 <= lo; reads buf[lo−64 .. hi−1] only.
 */
int64_t cairn_rabin_scan(const cairn_rabin_tables *t, const uint8_t *buf, int64_t lo, int64_t hi);

#endif
