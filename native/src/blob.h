/*
 * The blob kernels: seal (SHA-256, zstd with a compressibility sample, AES-256-CTR, Poly1305-AES)
 * and open (MAC check, decryption, bounded zstd decompression, SHA-256 check), in plain C without
 * N-API so that they run on any thread. Contracts: native/README.md ("seal kernel").
 *
 * Only compiled when the zstd library was found at build time (CAIRN_HAVE_ZSTD, see binding.gyp).
 */
#ifndef CAIRN_BLOB_H
#define CAIRN_BLOB_H

#include <stddef.h>
#include <stdint.h>

#define CAIRN_IV_LEN 16
#define CAIRN_MAC_LEN 16
#define CAIRN_OVERHEAD 32

/* restic's master key: AES-256 key for the data, AES-128 key k and Poly1305 r for the MAC. */
typedef struct {
  uint8_t enc[32];
  uint8_t mac_k[16];
  uint8_t mac_r[16];
} cairn_key;

/* Error kinds (cairn_*_result.kind); the N-API layer turns them into .code / .reason. */
enum {
  CAIRN_OK = 0,
  CAIRN_ERR_NOMEM,    /* allocation failed */
  CAIRN_ERR_INTERNAL, /* zstd/OpenSSL failed where it should not (message in err) */
  CAIRN_ERR_SHORT,    /* open: input shorter than IV + MAC */
  CAIRN_ERR_MAC,      /* open: the MAC does not verify */
  CAIRN_ERR_ZSTD,     /* open: not exactly one valid zstd frame, or larger than allowed */
  CAIRN_ERR_SIZE,     /* open: decompressed size differs from the expected one */
  CAIRN_ERR_HASH,     /* open: SHA-256 of the plaintext differs from the expected ID */
  CAIRN_ERR_ROOM,     /* the destination given is too small for the result */
};

typedef struct {
  uint8_t *dst;          /* write the result here (capacity dst_cap ≥ n + 32) instead of a malloc'ed block */
  size_t dst_cap;
  int compress;          /* zstd-compress when the sample says it is worthwhile and it is smaller */
  int level;             /* zstd level for the blob (the sample always uses level 1) */
  int hash;              /* also compute SHA-256 of the plaintext */
  int has_iv;            /* use iv instead of a random one (tests) */
  uint8_t iv[CAIRN_IV_LEN];
} cairn_seal_opts;

typedef struct {
  uint8_t *out;      /* IV || ciphertext || MAC: opts.dst, or malloc'ed (caller frees) */
  size_t out_len;
  size_t ulen;       /* plaintext length when the payload is compressed, else 0 */
  uint8_t id[32];    /* SHA-256 of the plaintext when opts.hash */
  int kind;
  char err[192];
} cairn_seal_result;

typedef struct {
  uint8_t *dst;      /* write the plaintext here (capacity dst_cap ≥ its length) instead of a malloc'ed block */
  size_t dst_cap;
  size_t ulen;       /* 0: stored uncompressed; else the plaintext length of the compressed payload */
  size_t max_size;   /* refuse a compressed payload whose ulen exceeds this */
  int check_id;
  uint8_t id[32];    /* expected SHA-256 of the plaintext when check_id */
} cairn_open_opts;

typedef struct {
  uint8_t *out;      /* the plaintext: opts.dst, or malloc'ed (caller frees; NULL when empty) */
  size_t out_len;
  int kind;
  char err[192];
} cairn_open_result;

/* One-time process initialisation (fetches the OpenSSL algorithms). Returns 0 on success. */
int cairn_blob_init(void);

/* Seals one blob; returns r->kind. On success r->out must be freed by the caller unless it is o->dst. */
int cairn_seal(const cairn_key *k, const uint8_t *in, size_t n, const cairn_seal_opts *o, cairn_seal_result *r);

/* Opens one sealed blob; returns r->kind. On success r->out must be freed by the caller unless it is o->dst. */
int cairn_open(const cairn_key *k, const uint8_t *in, size_t n, const cairn_open_opts *o, cairn_open_result *r);

/*
 * cairn_open's checks (MAC, decompression, length, and the ID when o->check_id) in fixed-size
 * slices, keeping no plaintext: o->dst is ignored, r->out stays NULL, r->out_len is the plaintext
 * length. Returns r->kind.
 */
int cairn_verify(const cairn_key *k, const uint8_t *in, size_t n, const cairn_open_opts *o, cairn_open_result *r);

/* SHA-256 of the concatenation of parts. Returns 0 on success. */
int cairn_sha256(const uint8_t *const *parts, const size_t *lens, size_t count, uint8_t out[32]);

/*
 * Incremental SHA-256 (a pack's ID, hashed as its bytes are written). A stream may move between
 * threads but must not be used by two at once. new: NULL when out of memory; update/final: 0 on
 * success; after final only free is allowed.
 */
typedef struct cairn_sha256_stream cairn_sha256_stream;
cairn_sha256_stream *cairn_sha256_stream_new(void);
int cairn_sha256_stream_update(cairn_sha256_stream *s, const uint8_t *data, size_t n);
int cairn_sha256_stream_final(cairn_sha256_stream *s, uint8_t out[32]);
void cairn_sha256_stream_free(cairn_sha256_stream *s);

/* The zstd version linked in ("1.5.7"). */
const char *cairn_zstd_version(void);

#endif
