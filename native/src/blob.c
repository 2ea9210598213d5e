/*
 * Seal/open kernels for one blob (restic repository format, spec §2 and §5.5):
 *
 *   seal:  [SHA-256(plain)]  →  zstd(plain) if worthwhile and smaller  →  IV || AES-256-CTR || MAC
 *   open:  MAC check  →  AES-256-CTR  →  [zstd, exactly one frame, bounded]  →  [SHA-256 check]
 *
 * MAC = Poly1305 over the ciphertext with key r || AES-128-ECB(k, IV) (restic's Poly1305-AES).
 * AES and SHA-256 come from the OpenSSL inside the Node binary (its symbols are exported; the
 * headers are Node's own), Poly1305 from poly1305.c, zstd from the static library zstd-napi builds.
 *
 * Everything here may run on any thread (libuv's pool or a JavaScript thread): per-thread state
 * (zstd contexts, cipher contexts, a scratch buffer) lives in thread-specific data that is freed
 * when the thread exits. The compression decisions are made exactly as the TypeScript fallback
 * makes them (src/native/fallback/seal.ts), so that both produce identical bytes for the same IV.
 */
#include "blob.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>

#include <zstd.h>
#include <zstd_errors.h>

#include "poly1305.h"

/* The compressibility sample: 16 KiB from the middle, compressed at level 1. */
#define SAMPLE 16384
#define SAMPLE_MIN_INPUT (4 * SAMPLE)
/* Worth compressing when the sample shrinks below 97 % (compared as integers: n·100 < 97·SAMPLE). */
#define SAMPLE_PERCENT 97
/* A scratch buffer larger than this is released after the call instead of kept for the next. */
#define SCRATCH_KEEP (4u << 20)
/* EVP_*Update take int lengths: feed at most this much per call. */
#define EVP_STEP ((size_t)1 << 30)

#define ZSTD_MAGIC 0xFD2FB528u

typedef struct {
  ZSTD_CCtx *sample;
  ZSTD_CCtx *cc;
  int cc_level;
  ZSTD_DCtx *dc;
  EVP_CIPHER_CTX *ctr;
  EVP_CIPHER_CTX *ecb;
  EVP_MD_CTX *md;
  uint8_t *scratch;
  size_t scratch_cap;
} thread_state;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t state_key;
static int init_status = -1;
static const EVP_CIPHER *aes256ctr;
static const EVP_CIPHER *aes128ecb;
static const EVP_MD *sha256md;

static void free_state(void *p) {
  thread_state *st = p;
  if (st == NULL) return;
  ZSTD_freeCCtx(st->sample);
  ZSTD_freeCCtx(st->cc);
  ZSTD_freeDCtx(st->dc);
  EVP_CIPHER_CTX_free(st->ctr);
  EVP_CIPHER_CTX_free(st->ecb);
  EVP_MD_CTX_free(st->md);
  free(st->scratch);
  free(st);
}

static void init_process(void) {
  if (pthread_key_create(&state_key, free_state) != 0) return;
#if OPENSSL_VERSION_MAJOR >= 3
  /* Explicit fetches: an implicit fetch on every EVP_*Init_ex would take the store's lock. */
  aes256ctr = EVP_CIPHER_fetch(NULL, "AES-256-CTR", NULL);
  aes128ecb = EVP_CIPHER_fetch(NULL, "AES-128-ECB", NULL);
  sha256md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
  aes256ctr = EVP_aes_256_ctr();
  aes128ecb = EVP_aes_128_ecb();
  sha256md = EVP_sha256();
#endif
  if (aes256ctr == NULL || aes128ecb == NULL || sha256md == NULL) return;
  init_status = 0;
}

int cairn_blob_init(void) {
  pthread_once(&init_once, init_process);
  return init_status;
}

const char *cairn_zstd_version(void) {
  return ZSTD_versionString();
}

static thread_state *state(void) {
  if (cairn_blob_init() != 0) return NULL;
  thread_state *st = pthread_getspecific(state_key);
  if (st != NULL) return st;
  st = calloc(1, sizeof *st);
  if (st == NULL) return NULL;
  st->sample = ZSTD_createCCtx();
  st->cc = ZSTD_createCCtx();
  st->dc = ZSTD_createDCtx();
  st->ctr = EVP_CIPHER_CTX_new();
  st->ecb = EVP_CIPHER_CTX_new();
  st->md = EVP_MD_CTX_new();
  st->cc_level = 0;
  /* The same frame parameters as src/format/zstd.ts: content size on, checksum off. */
  if (st->sample == NULL || st->cc == NULL || st->dc == NULL || st->ctr == NULL || st->ecb == NULL || st->md == NULL ||
      ZSTD_isError(ZSTD_CCtx_setParameter(st->sample, ZSTD_c_compressionLevel, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(st->sample, ZSTD_c_checksumFlag, 0)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(st->sample, ZSTD_c_contentSizeFlag, 1)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(st->cc, ZSTD_c_checksumFlag, 0)) ||
      ZSTD_isError(ZSTD_CCtx_setParameter(st->cc, ZSTD_c_contentSizeFlag, 1)) ||
      pthread_setspecific(state_key, st) != 0) {
    free_state(st);
    return NULL;
  }
  return st;
}

static uint8_t *scratch(thread_state *st, size_t need) {
  if (need == 0) need = 1;
  if (st->scratch_cap < need) {
    free(st->scratch);
    size_t cap = need < ((size_t)1 << 20) ? ((size_t)1 << 20) : need;
    st->scratch = malloc(cap);
    st->scratch_cap = st->scratch ? cap : 0;
  }
  return st->scratch;
}

static void trim_scratch(thread_state *st) {
  if (st->scratch_cap > SCRATCH_KEEP) {
    free(st->scratch);
    st->scratch = NULL;
    st->scratch_cap = 0;
  }
}

static int fail(char *err, size_t cap, int kind, const char *fmt, const char *detail) {
  snprintf(err, cap, fmt, detail ? detail : "");
  return kind;
}

/* SHA-256 over parts with the thread's digest context. 0 on success. */
static int digest(thread_state *st, const uint8_t *const *parts, const size_t *lens, size_t count, uint8_t out[32]) {
  if (EVP_DigestInit_ex(st->md, sha256md, NULL) != 1) return -1;
  for (size_t i = 0; i < count; i++) {
    if (lens[i] > 0 && EVP_DigestUpdate(st->md, parts[i], lens[i]) != 1) return -1;
  }
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(st->md, out, &n) != 1 || n != 32) return -1;
  return 0;
}

int cairn_sha256(const uint8_t *const *parts, const size_t *lens, size_t count, uint8_t out[32]) {
  thread_state *st = state();
  if (st == NULL) return -1;
  return digest(st, parts, lens, count, out);
}

/* A SHA-256 stream: an EVP context of its own (not the thread's), used by one thread at a time. */
cairn_sha256_stream *cairn_sha256_stream_new(void) {
  if (cairn_blob_init() != 0) return NULL;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md == NULL) return NULL;
  if (EVP_DigestInit_ex(md, sha256md, NULL) != 1) {
    EVP_MD_CTX_free(md);
    return NULL;
  }
  return (cairn_sha256_stream *)md;
}

int cairn_sha256_stream_update(cairn_sha256_stream *s, const uint8_t *data, size_t n) {
  for (size_t off = 0; off < n;) {
    size_t step = n - off < EVP_STEP ? n - off : EVP_STEP;
    if (EVP_DigestUpdate((EVP_MD_CTX *)s, data + off, step) != 1) return -1;
    off += step;
  }
  return 0;
}

int cairn_sha256_stream_final(cairn_sha256_stream *s, uint8_t out[32]) {
  unsigned int n = 0;
  return EVP_DigestFinal_ex((EVP_MD_CTX *)s, out, &n) == 1 && n == 32 ? 0 : -1;
}

void cairn_sha256_stream_free(cairn_sha256_stream *s) {
  EVP_MD_CTX_free((EVP_MD_CTX *)s);
}

/* AES-256-CTR of n bytes from in to out (may be equal) with the given IV. 0 on success. */
static int ctr_xor(thread_state *st, const cairn_key *k, const uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t n) {
  if (EVP_EncryptInit_ex(st->ctr, aes256ctr, NULL, k->enc, iv) != 1) return -1;
  for (size_t off = 0; off < n;) {
    size_t step = n - off < EVP_STEP ? n - off : EVP_STEP;
    int got = 0;
    if (EVP_EncryptUpdate(st->ctr, out + off, &got, in + off, (int)step) != 1 || (size_t)got != step) return -1;
    off += step;
  }
  return 0;
}

/* restic's MAC: Poly1305 with key clamp(r) || AES-128-ECB(k, iv) over the ciphertext. 0 on success. */
static int mac(thread_state *st, const cairn_key *k, const uint8_t iv[16], const uint8_t *ct, size_t n, uint8_t tag[16]) {
  uint8_t key[32];
  int got = 0;
  memcpy(key, k->mac_r, 16);
  if (EVP_EncryptInit_ex(st->ecb, aes128ecb, NULL, k->mac_k, NULL) != 1 || EVP_CIPHER_CTX_set_padding(st->ecb, 0) != 1 ||
      EVP_EncryptUpdate(st->ecb, key + 16, &got, iv, 16) != 1 || got != 16) {
    return -1;
  }
  static const uint8_t empty[1] = {0};
  cairn_poly1305(tag, key, n ? ct : empty, n);
  return 0;
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* The sample test of src/native/fallback/seal.ts: worthCompressing(). 1 yes, 0 no, −1 error. */
static int worth_compressing(thread_state *st, const uint8_t *in, size_t n, char *err, size_t cap) {
  if (n < SAMPLE_MIN_INPUT) return 1;
  size_t start = (n >> 1) - (SAMPLE >> 1);
  size_t bound = ZSTD_compressBound(SAMPLE);
  uint8_t *dst = scratch(st, bound);
  if (dst == NULL) return fail(err, cap, -1, "out of memory%s", NULL);
  size_t c = ZSTD_compress2(st->sample, dst, bound, in + start, SAMPLE);
  if (ZSTD_isError(c)) {
    ZSTD_CCtx_reset(st->sample, ZSTD_reset_session_only);
    snprintf(err, cap, "zstd compression failed: %s", ZSTD_getErrorName(c));
    return -1;
  }
  return c * 100 < (size_t)SAMPLE * SAMPLE_PERCENT;
}

int cairn_seal(const cairn_key *k, const uint8_t *in, size_t n, const cairn_seal_opts *o, cairn_seal_result *r) {
  memset(r, 0, sizeof *r);
  thread_state *st = state();
  if (st == NULL) return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_NOMEM, "out of memory (thread state)%s", NULL);
  if (o->hash) {
    const uint8_t *parts[1] = {in};
    size_t lens[1] = {n};
    if (digest(st, parts, lens, 1, r->id) != 0) return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_INTERNAL, "SHA-256 failed%s", NULL);
  }
  const uint8_t *payload = in;
  size_t plen = n;
  if (o->compress && n > 0) {
    int worth = worth_compressing(st, in, n, r->err, sizeof r->err);
    if (worth < 0) return r->kind = CAIRN_ERR_INTERNAL;
    if (worth) {
      if (st->cc_level != o->level) {
        size_t e = ZSTD_CCtx_setParameter(st->cc, ZSTD_c_compressionLevel, o->level);
        if (ZSTD_isError(e)) return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_INTERNAL, "zstd level: %s", ZSTD_getErrorName(e));
        st->cc_level = o->level;
      }
      size_t bound = ZSTD_compressBound(n);
      if (ZSTD_isError(bound)) return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_INTERNAL, "zstd: input too large%s", NULL);
      uint8_t *dst = scratch(st, bound);
      if (dst == NULL) return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_NOMEM, "out of memory%s", NULL);
      size_t c = ZSTD_compress2(st->cc, dst, bound, in, n);
      if (ZSTD_isError(c)) {
        ZSTD_CCtx_reset(st->cc, ZSTD_reset_session_only);
        return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_INTERNAL, "zstd compression failed: %s", ZSTD_getErrorName(c));
      }
      if (c < n) {
        payload = dst;
        plen = c;
        r->ulen = n;
      }
    }
  }
  uint8_t *out = o->dst;
  if (out != NULL) {
    if (o->dst_cap < plen + CAIRN_OVERHEAD) {
      trim_scratch(st);
      return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_ROOM, "out is too small for the sealed blob%s", NULL);
    }
  } else if ((out = malloc(plen + CAIRN_OVERHEAD)) == NULL) {
    trim_scratch(st);
    return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_NOMEM, "out of memory%s", NULL);
  }
  uint8_t *iv = out;
  if (o->has_iv) {
    memcpy(iv, o->iv, CAIRN_IV_LEN);
  } else {
    do {
      if (RAND_bytes(iv, CAIRN_IV_LEN) != 1) {
        if (out != o->dst) free(out);
        trim_scratch(st);
        return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_INTERNAL, "RAND_bytes failed%s", NULL);
      }
    } while (all_zero(iv, CAIRN_IV_LEN)); /* restic refuses an all-zero nonce */
  }
  uint8_t *ct = out + CAIRN_IV_LEN;
  if (ctr_xor(st, k, iv, payload, ct, plen) != 0 || mac(st, k, iv, ct, plen, ct + plen) != 0) {
    if (out != o->dst) free(out);
    trim_scratch(st);
    return r->kind = fail(r->err, sizeof r->err, CAIRN_ERR_INTERNAL, "AES failed%s", NULL);
  }
  trim_scratch(st);
  r->out = out;
  r->out_len = plen + CAIRN_OVERHEAD;
  return r->kind = CAIRN_OK;
}

static uint32_t load32_le(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/*
 * The start of cairn_open and cairn_verify: clears r, then checks the length and the MAC (in
 * constant time). Returns the thread's state, or NULL with r->kind and r->err set.
 */
static thread_state *authenticate(const cairn_key *k, const uint8_t *in, size_t n, cairn_open_result *r) {
  memset(r, 0, sizeof *r);
  char *err = r->err;
  const size_t cap = sizeof r->err;
  if (n < CAIRN_OVERHEAD) {
    r->kind = fail(err, cap, CAIRN_ERR_SHORT, "too short to be encrypted data%s", NULL);
    return NULL;
  }
  thread_state *st = state();
  if (st == NULL) {
    r->kind = fail(err, cap, CAIRN_ERR_NOMEM, "out of memory (thread state)%s", NULL);
    return NULL;
  }
  const uint8_t *ct = in + CAIRN_IV_LEN;
  size_t clen = n - CAIRN_OVERHEAD;
  uint8_t tag[16];
  if (mac(st, k, in, ct, clen, tag) != 0) {
    r->kind = fail(err, cap, CAIRN_ERR_INTERNAL, "AES failed%s", NULL);
    return NULL;
  }
  if (CRYPTO_memcmp(tag, ct + clen, 16) != 0) {
    r->kind = fail(err, cap, CAIRN_ERR_MAC, "ciphertext verification failed%s", NULL);
    return NULL;
  }
  return st;
}

int cairn_open(const cairn_key *k, const uint8_t *in, size_t n, const cairn_open_opts *o, cairn_open_result *r) {
  thread_state *st = authenticate(k, in, n, r);
  if (st == NULL) return r->kind;
  char *err = r->err;
  const size_t cap = sizeof r->err;
  const uint8_t *iv = in;
  const uint8_t *ct = in + CAIRN_IV_LEN;
  size_t clen = n - CAIRN_OVERHEAD;

  uint8_t *out = NULL;
  size_t out_len = 0;
  size_t need = o->ulen ? o->ulen : clen;
  if (o->dst != NULL && o->dst_cap < need && (o->ulen == 0 || o->ulen <= o->max_size)) {
    return r->kind = fail(err, cap, CAIRN_ERR_ROOM, "out is too small for the plaintext%s", NULL);
  }
  if (o->ulen == 0) {
    if (clen > 0) {
      out = o->dst ? o->dst : malloc(clen);
      if (out == NULL) return r->kind = fail(err, cap, CAIRN_ERR_NOMEM, "out of memory%s", NULL);
      if (ctr_xor(st, k, iv, ct, out, clen) != 0) {
        if (out != o->dst) free(out);
        return r->kind = fail(err, cap, CAIRN_ERR_INTERNAL, "AES failed%s", NULL);
      }
    }
    out_len = clen;
  } else {
    int kind = CAIRN_OK;
    uint8_t *frame = scratch(st, clen);
    if (frame == NULL) return r->kind = fail(err, cap, CAIRN_ERR_NOMEM, "out of memory%s", NULL);
    if (ctr_xor(st, k, iv, ct, frame, clen) != 0) {
      kind = fail(err, cap, CAIRN_ERR_INTERNAL, "AES failed%s", NULL);
    } else if (o->ulen > o->max_size) {
      snprintf(err, cap, "zstd: blob would decompress to %zu bytes, more than the allowed %zu", o->ulen, o->max_size);
      kind = CAIRN_ERR_ZSTD;
    } else if (clen < 4 || load32_le(frame) != ZSTD_MAGIC) {
      kind = fail(err, cap, CAIRN_ERR_ZSTD, "zstd: not a zstd frame%s", NULL);
    } else {
      size_t flen = ZSTD_findFrameCompressedSize(frame, clen);
      unsigned long long declared = ZSTD_getFrameContentSize(frame, clen);
      if (ZSTD_isError(flen)) {
        kind = fail(err, cap, CAIRN_ERR_ZSTD, "zstd: invalid frame: %s", ZSTD_getErrorName(flen));
      } else if (flen != clen) {
        snprintf(err, cap, "zstd: %zu bytes after the frame", clen - flen);
        kind = CAIRN_ERR_ZSTD;
      } else if (declared == ZSTD_CONTENTSIZE_ERROR) {
        kind = fail(err, cap, CAIRN_ERR_ZSTD, "zstd: invalid frame header%s", NULL);
      } else if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != (unsigned long long)o->ulen) {
        snprintf(err, cap, "decompressed to %llu bytes, index says %zu", declared, o->ulen);
        kind = CAIRN_ERR_SIZE;
      } else {
        out = o->dst ? o->dst : malloc(o->ulen);
        if (out == NULL) {
          kind = fail(err, cap, CAIRN_ERR_NOMEM, "out of memory%s", NULL);
        } else {
          size_t got = ZSTD_decompressDCtx(st->dc, out, o->ulen, frame, clen);
          if (ZSTD_isError(got)) {
            if (ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall) {
              snprintf(err, cap, "decompressed to more than the %zu bytes the index says", o->ulen);
              kind = CAIRN_ERR_SIZE;
            } else {
              kind = fail(err, cap, CAIRN_ERR_ZSTD, "zstd: invalid frame: %s", ZSTD_getErrorName(got));
            }
          } else if (got != o->ulen) {
            snprintf(err, cap, "decompressed to %zu bytes, index says %zu", got, o->ulen);
            kind = CAIRN_ERR_SIZE;
          }
        }
      }
    }
    trim_scratch(st);
    if (kind != CAIRN_OK) {
      if (out != o->dst) free(out);
      return r->kind = kind;
    }
    out_len = o->ulen;
  }
  if (o->check_id) {
    uint8_t id[32];
    const uint8_t *parts[1] = {out};
    size_t lens[1] = {out_len};
    if (digest(st, parts, lens, 1, id) != 0) {
      if (out != o->dst) free(out);
      return r->kind = fail(err, cap, CAIRN_ERR_INTERNAL, "SHA-256 failed%s", NULL);
    }
    if (memcmp(id, o->id, 32) != 0) {
      if (out != o->dst) free(out);
      return r->kind = fail(err, cap, CAIRN_ERR_HASH, "content does not match its ID%s", NULL);
    }
  }
  r->out = out;
  r->out_len = out_len;
  return r->kind = CAIRN_OK;
}

/* Plaintext is produced and hashed in slices of this size by cairn_verify. */
#define VERIFY_SLICE ((size_t)256 << 10)

/*
 * cairn_open's checks without keeping the plaintext: it is decrypted (and decompressed) slice by
 * slice into a per-thread scratch area and hashed as it goes, so verifying a blob costs
 * 2 × VERIFY_SLICE bytes (plus zstd's window for compressed ones) whatever its size.
 */
int cairn_verify(const cairn_key *k, const uint8_t *in, size_t n, const cairn_open_opts *o, cairn_open_result *r) {
  thread_state *st = authenticate(k, in, n, r);
  if (st == NULL) return r->kind;
  char *err = r->err;
  const size_t cap = sizeof r->err;
  const uint8_t *ct = in + CAIRN_IV_LEN; /* after the IV */
  size_t clen = n - CAIRN_OVERHEAD;
  if (o->ulen > o->max_size) {
    snprintf(err, cap, "zstd: blob would decompress to %zu bytes, more than the allowed %zu", o->ulen, o->max_size);
    return r->kind = CAIRN_ERR_ZSTD;
  }
  uint8_t *plain = scratch(st, 2 * VERIFY_SLICE);
  if (plain == NULL) return r->kind = fail(err, cap, CAIRN_ERR_NOMEM, "out of memory%s", NULL);
  uint8_t *window = plain + VERIFY_SLICE; /* decompressed output */
  if (EVP_EncryptInit_ex(st->ctr, aes256ctr, NULL, k->enc, in) != 1 || EVP_DigestInit_ex(st->md, sha256md, NULL) != 1) {
    return r->kind = fail(err, cap, CAIRN_ERR_INTERNAL, "AES or SHA-256 failed%s", NULL);
  }
  const int compressed = o->ulen != 0;
  if (compressed) ZSTD_DCtx_reset(st->dc, ZSTD_reset_session_only);
  int kind = CAIRN_OK;
  int frame_done = 0;
  size_t total = 0;
  for (size_t off = 0; off < clen && kind == CAIRN_OK; off += VERIFY_SLICE) {
    size_t step = clen - off < VERIFY_SLICE ? clen - off : VERIFY_SLICE;
    int got = 0;
    if (EVP_EncryptUpdate(st->ctr, plain, &got, ct + off, (int)step) != 1 || (size_t)got != step) {
      kind = fail(err, cap, CAIRN_ERR_INTERNAL, "AES failed%s", NULL);
      break;
    }
    if (!compressed) {
      if (EVP_DigestUpdate(st->md, plain, step) != 1) kind = fail(err, cap, CAIRN_ERR_INTERNAL, "SHA-256 failed%s", NULL);
      total += step;
      continue;
    }
    if (off == 0 && (clen < 4 || load32_le(plain) != ZSTD_MAGIC)) {
      kind = fail(err, cap, CAIRN_ERR_ZSTD, "zstd: not a zstd frame%s", NULL);
      break;
    }
    ZSTD_inBuffer zin = {plain, step, 0};
    for (;;) {
      ZSTD_outBuffer zout = {window, VERIFY_SLICE, 0};
      size_t ret = ZSTD_decompressStream(st->dc, &zout, &zin);
      if (ZSTD_isError(ret)) {
        kind = fail(err, cap, CAIRN_ERR_ZSTD, "zstd: invalid frame: %s", ZSTD_getErrorName(ret));
        break;
      }
      total += zout.pos;
      if (total > o->ulen) {
        snprintf(err, cap, "decompressed to more than the %zu bytes the index says", o->ulen);
        kind = CAIRN_ERR_SIZE;
        break;
      }
      if (zout.pos > 0 && EVP_DigestUpdate(st->md, window, zout.pos) != 1) {
        kind = fail(err, cap, CAIRN_ERR_INTERNAL, "SHA-256 failed%s", NULL);
        break;
      }
      if (ret == 0) {
        frame_done = 1;
        if (zin.pos < zin.size || off + step < clen) {
          snprintf(err, cap, "zstd: %zu bytes after the frame", clen - off - zin.pos);
          kind = CAIRN_ERR_ZSTD;
        }
        break;
      }
      /* the slice is used up and everything it decoded is out: the next slice is needed */
      if (zin.pos == zin.size && zout.pos < zout.size) break;
    }
  }
  if (kind == CAIRN_OK && compressed && !frame_done) kind = fail(err, cap, CAIRN_ERR_ZSTD, "zstd: the frame is cut short%s", NULL);
  if (kind == CAIRN_OK && compressed && total != o->ulen) {
    snprintf(err, cap, "decompressed to %zu bytes, index says %zu", total, o->ulen);
    kind = CAIRN_ERR_SIZE;
  }
  uint8_t id[32];
  unsigned int idlen = 0;
  if (kind == CAIRN_OK && (EVP_DigestFinal_ex(st->md, id, &idlen) != 1 || idlen != 32)) kind = fail(err, cap, CAIRN_ERR_INTERNAL, "SHA-256 failed%s", NULL);
  if (kind == CAIRN_OK && o->check_id && memcmp(id, o->id, 32) != 0) kind = fail(err, cap, CAIRN_ERR_HASH, "content does not match its ID%s", NULL);
  trim_scratch(st);
  r->out_len = total;
  return r->kind = kind;
}

