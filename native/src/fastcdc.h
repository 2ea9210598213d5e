/*
 * FastCDC boundaries as the npm package fastcdc-wasm 0.1.0 computes them (its get_chunks: the
 * Rust crate fastcdc 1.0.5 over a whole input, end of input = end of file). See native/README.md.
 */
#ifndef CAIRN_FASTCDC_H
#define CAIRN_FASTCDC_H

#include <stddef.h>
#include <stdint.h>

/* Parameter limits of fastcdc 1.0.5 (it refuses anything outside them). */
#define CAIRN_FASTCDC_MIN_LO 64u
#define CAIRN_FASTCDC_MIN_HI (64u << 20)
#define CAIRN_FASTCDC_AVG_LO 256u
#define CAIRN_FASTCDC_AVG_HI (256u << 20)
#define CAIRN_FASTCDC_MAX_LO 1024u
#define CAIRN_FASTCDC_MAX_HI (1024u << 20)

/*
 * Writes the chunk boundaries of data[0, n) — 0, each cut, n; only 0 when n is 0 — to out and
 * returns how many there are, or −1 when out (cap entries) is too small (n / min + 2 entries
 * always suffice). gear is the 256-entry table of the gear hash. The parameters must lie within
 * the limits above.
 */
int64_t cairn_fastcdc_boundaries(const uint8_t *data, size_t n, uint32_t min, uint32_t avg, uint32_t max,
                                 const uint32_t gear[256], uint32_t *out, size_t cap);

#endif
