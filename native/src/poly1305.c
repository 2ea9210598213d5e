/*
 * Poly1305 (RFC 8439 §2.5): OpenSSL's for long messages, our own for short ones and as the
 * fallback.
 *
 * Why both: the OpenSSL inside Node has vectorised Poly1305 (AVX2/AVX-512 on x86_64, NEON on
 * arm64) behind its EVP_MAC interface. On the test VM (AVX-512) it runs at 9.4 GB/s for 4 KiB
 * messages and 12.7 GB/s for 64 KiB and more, against 2.5–3.2 GB/s here: the MAC's share of every
 * seal, open and verify drops to about a quarter. For a few hundred bytes the EVP call's setup costs more
 * than it saves (256 B: 2.0 GB/s against 2.1). It is used only when the fetch works and a
 * self-test at load gives the same tags as our own code; otherwise everything stays here.
 *
 * Our own: three limbs of 44/44/42 bits and 128-bit products. Speed comes from breaking the
 * per-block dependency chain: with the powers r, r^2, r^3, r^4 precomputed, four blocks are
 * absorbed at once as
 *     h' = (h + m1)·r^4 + m2·r^3 + m3·r^2 + m4·r   (mod 2^130 − 5),
 * which is exactly what four sequential steps compute, but the 36 products are independent and
 * there is one carry chain per 64 bytes instead of four.
 */
#include "poly1305.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/opensslv.h>
#if OPENSSL_VERSION_MAJOR >= 3
#include <openssl/evp.h>
#define CAIRN_EVP_POLY1305 1
#endif

/* Messages at least this long go to OpenSSL when it is usable. */
#define EVP_MIN_LEN 1024

typedef unsigned __int128 u128;

#define M44 ((uint64_t)0xfffffffffff)
#define M42 ((uint64_t)0x3ffffffffff)

static inline uint64_t load64_le(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

static inline void store64_le(uint8_t *p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  memcpy(p, &v, 8);
}

/* A field element in radix 2^44 (limbs may exceed their nominal width slightly). */
typedef struct {
  uint64_t l0, l1, l2;
} fe;

/* Splits a 16-byte block into limbs and adds the 2^128 bit when hibit is set (bit 40 of limb 2). */
static inline fe load_block(const uint8_t *p, uint64_t hibit) {
  uint64_t t0 = load64_le(p), t1 = load64_le(p + 8);
  fe m;
  m.l0 = t0 & M44;
  m.l1 = ((t0 >> 44) | (t1 << 20)) & M44;
  m.l2 = (t1 >> 24) | hibit;
  return m;
}

/* Accumulates a·b into the three column sums (2^132 wraps around as ×20, since 2^130 ≡ 5). */
static inline void mul_acc(u128 *d0, u128 *d1, u128 *d2, fe a, fe b) {
  uint64_t s1 = b.l1 * 20, s2 = b.l2 * 20;
  *d0 += (u128)a.l0 * b.l0 + (u128)a.l1 * s2 + (u128)a.l2 * s1;
  *d1 += (u128)a.l0 * b.l1 + (u128)a.l1 * b.l0 + (u128)a.l2 * s2;
  *d2 += (u128)a.l0 * b.l2 + (u128)a.l1 * b.l1 + (u128)a.l2 * b.l0;
}

/* Column sums → limbs l0, l2 < 2^44/2^42, l1 < 2^44 + 2^13 (partially reduced). */
static inline fe carry(u128 d0, u128 d1, u128 d2) {
  fe h;
  uint64_t c;
  h.l0 = (uint64_t)d0 & M44;
  d1 += (uint64_t)(d0 >> 44);
  h.l1 = (uint64_t)d1 & M44;
  d2 += (uint64_t)(d1 >> 44);
  h.l2 = (uint64_t)d2 & M42;
  c = (uint64_t)(d2 >> 42);
  h.l0 += c * 5;
  c = h.l0 >> 44;
  h.l0 &= M44;
  h.l1 += c;
  return h;
}

static inline fe fe_mul(fe a, fe b) {
  u128 d0 = 0, d1 = 0, d2 = 0;
  mul_acc(&d0, &d1, &d2, a, b);
  return carry(d0, d1, d2);
}

static void poly1305_limbs(uint8_t tag[16], const uint8_t key[32], const uint8_t *msg, size_t len) {
  const uint64_t hib = (uint64_t)1 << 40;
  uint64_t t0 = load64_le(key) & 0x0ffffffc0fffffffULL; /* clamp r (RFC 8439 §2.5.1) */
  uint64_t t1 = load64_le(key + 8) & 0x0ffffffc0ffffffcULL;
  fe r, r2, r3, r4, h = {0, 0, 0};
  r.l0 = t0 & M44;
  r.l1 = ((t0 >> 44) | (t1 << 20)) & M44;
  r.l2 = t1 >> 24;

  if (len >= 64) {
    r2 = fe_mul(r, r);
    r3 = fe_mul(r2, r);
    r4 = fe_mul(r2, r2);
    while (len >= 64) {
      u128 d0 = 0, d1 = 0, d2 = 0;
      fe m = load_block(msg, hib);
      m.l0 += h.l0;
      m.l1 += h.l1;
      m.l2 += h.l2;
      mul_acc(&d0, &d1, &d2, m, r4);
      mul_acc(&d0, &d1, &d2, load_block(msg + 16, hib), r3);
      mul_acc(&d0, &d1, &d2, load_block(msg + 32, hib), r2);
      mul_acc(&d0, &d1, &d2, load_block(msg + 48, hib), r);
      h = carry(d0, d1, d2);
      msg += 64;
      len -= 64;
    }
  }
  while (len > 0) {
    fe m;
    if (len >= 16) {
      m = load_block(msg, hib);
      msg += 16;
      len -= 16;
    } else {
      uint8_t last[16] = {0};
      memcpy(last, msg, len);
      last[len] = 1; /* pad with 0x01 then zeros; no 2^128 bit */
      m = load_block(last, 0);
      len = 0;
    }
    m.l0 += h.l0;
    m.l1 += h.l1;
    m.l2 += h.l2;
    h = fe_mul(m, r);
  }

  /* Full reduction mod p = 2^130 − 5. */
  uint64_t h0 = h.l0, h1 = h.l1, h2 = h.l2, c;
  c = h1 >> 44; h1 &= M44; h2 += c;
  c = h2 >> 42; h2 &= M42; h0 += c * 5;
  c = h0 >> 44; h0 &= M44; h1 += c;
  c = h1 >> 44; h1 &= M44; h2 += c;
  c = h2 >> 42; h2 &= M42; h0 += c * 5;
  c = h0 >> 44; h0 &= M44; h1 += c;
  /* h < 2^130 + small; g = h + 5 − 2^130 is the result when it does not go negative. */
  uint64_t g0 = h0 + 5;
  c = g0 >> 44; g0 &= M44;
  uint64_t g1 = h1 + c;
  c = g1 >> 44; g1 &= M44;
  uint64_t g2 = h2 + c - ((uint64_t)1 << 42);
  uint64_t use_g = (g2 >> 63) - 1; /* all ones when g2 did not borrow, i.e. h >= p */
  h0 = (h0 & ~use_g) | (g0 & use_g);
  h1 = (h1 & ~use_g) | (g1 & use_g);
  h2 = (h2 & ~use_g) | (g2 & use_g);

  /* (h + s) mod 2^128. */
  uint64_t s0 = load64_le(key + 16), s1 = load64_le(key + 24);
  uint64_t w0 = h0 | (h1 << 44);
  uint64_t w1 = (h1 >> 20) | (h2 << 24);
  u128 sum = (u128)w0 + s0;
  store64_le(tag, (uint64_t)sum);
  sum = (u128)w1 + s1 + (uint64_t)(sum >> 64);
  store64_le(tag + 8, (uint64_t)sum);
}

#ifdef CAIRN_EVP_POLY1305
static pthread_once_t evp_once = PTHREAD_ONCE_INIT;
static pthread_key_t evp_ctx_key;
static EVP_MAC *evp_poly; /* NULL: not usable, poly1305_limbs does everything */

static void free_ctx(void *p) { EVP_MAC_CTX_free(p); }

/* The thread's MAC context (made on first use, freed when the thread exits), or NULL. */
static EVP_MAC_CTX *thread_ctx(void) {
  EVP_MAC_CTX *c = pthread_getspecific(evp_ctx_key);
  if (c == NULL && (c = EVP_MAC_CTX_new(evp_poly)) != NULL && pthread_setspecific(evp_ctx_key, c) != 0) {
    EVP_MAC_CTX_free(c);
    c = NULL;
  }
  return c;
}

/* OpenSSL's tag, 0 on success (any failure: the caller computes it itself). */
static int poly1305_evp(uint8_t tag[16], const uint8_t key[32], const uint8_t *msg, size_t len) {
  EVP_MAC_CTX *c = thread_ctx();
  size_t n = 0;
  if (c == NULL || EVP_MAC_init(c, key, 32, NULL) != 1 || EVP_MAC_update(c, msg, len) != 1 ||
      EVP_MAC_final(c, tag, &n, 16) != 1 || n != 16) {
    return -1;
  }
  return 0;
}

/*
 * Fetches OpenSSL's Poly1305 and keeps it only if it agrees with ours on a few messages.
 * CAIRN_POLY1305_OPENSSL=0 keeps our own for every length (tests run both that way).
 */
static void evp_init(void) {
  const char *env = getenv("CAIRN_POLY1305_OPENSSL");
  if (env != NULL && strcmp(env, "0") == 0) return;
  if (pthread_key_create(&evp_ctx_key, free_ctx) != 0) return;
  EVP_MAC *m = EVP_MAC_fetch(NULL, "POLY1305", NULL);
  if (m == NULL) return;
  evp_poly = m;
  uint8_t key[32], msg[EVP_MIN_LEN * 4 + 19];
  for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)(0xA5 ^ (i * 29));
  for (size_t i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 131 + (i >> 7));
  static const size_t lens[] = {EVP_MIN_LEN, EVP_MIN_LEN + 1, EVP_MIN_LEN * 4 + 19};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    uint8_t a[16], b[16];
    poly1305_limbs(a, key, msg, lens[i]);
    if (poly1305_evp(b, key, msg, lens[i]) != 0 || memcmp(a, b, 16) != 0) {
      evp_poly = NULL;
      EVP_MAC_free(m);
      return;
    }
  }
}
#endif

int cairn_poly1305_uses_openssl(void) {
#ifdef CAIRN_EVP_POLY1305
  pthread_once(&evp_once, evp_init);
  return evp_poly != NULL;
#else
  return 0;
#endif
}

void cairn_poly1305(uint8_t tag[16], const uint8_t key[32], const uint8_t *msg, size_t len) {
#ifdef CAIRN_EVP_POLY1305
  if (len >= EVP_MIN_LEN && cairn_poly1305_uses_openssl() && poly1305_evp(tag, key, msg, len) == 0) return;
#endif
  poly1305_limbs(tag, key, msg, len);
}
