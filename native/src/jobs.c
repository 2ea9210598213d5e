/*
 * N-API glue for the blob kernels (blob.c): sealKey, seal/sealSync, open/openSync, sha256.
 * The asynchronous forms run on the addon's kernel threads (kpool.c) and settle a promise on the
 * JavaScript thread. Contracts: native/README.md.
 *
 * Lifetimes: the input views are referenced (napi_ref) until the job completes, so the garbage
 * collector cannot free them while a pool thread reads them; the caller must not modify, detach or
 * transfer them until the promise settles (documented contract). Keys are copied into each job.
 * Results are malloc'ed by the kernel and handed to JavaScript as external Buffers whose size is
 * reported to V8 (napi_adjust_external_memory) so that it schedules collections accordingly.
 */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "batch.h"
#include "blob.h"
#include "kpool.h"
#include "util.h"

#define MAX_HASH_PARTS 4096
#define MAX_SAFE 9007199254740991.0

/* Marks SealKey objects so that arbitrary objects are refused (napi_check_object_type_tag). */
static const napi_type_tag key_tag = {0x636169726e6b6579ULL, 0x5365616c4b657931ULL};

static void free_key(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  /* volatile writes so the key material is really overwritten before free */
  volatile uint8_t *p = data;
  for (size_t i = 0; i < sizeof(cairn_key); i++) p[i] = 0;
  free(data);
}

static int get_exact(napi_env env, napi_value v, const char *what, size_t len, uint8_t *out) {
  uint8_t *p;
  size_t n;
  if (!cairn_get_bytes(env, v, what, &p, &n)) return 0;
  if (n != len) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be %zu bytes", what, len);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return 0;
  }
  memcpy(out, p, len);
  return 1;
}

/* sealKey(encrypt: Uint8Array(32), macK: Uint8Array(16), macR: Uint8Array(16)): SealKey */
napi_value cairn_js_seal_key(napi_env env, napi_callback_info info) {
  napi_value argv[3], obj;
  if (!cairn_args(env, info, 3, argv, NULL)) return NULL;
  if (cairn_blob_init() != 0) {
    napi_throw_error(env, "ERR_CAIRN_INTERNAL", "OpenSSL algorithms AES-256-CTR/AES-128-ECB/SHA256 are not available");
    return NULL;
  }
  cairn_key *k = calloc(1, sizeof *k);
  if (k == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (!get_exact(env, argv[0], "encrypt", 32, k->enc) || !get_exact(env, argv[1], "macK", 16, k->mac_k) ||
      !get_exact(env, argv[2], "macR", 16, k->mac_r)) {
    free_key(env, k, NULL);
    return NULL;
  }
  if (napi_create_object(env, &obj) != napi_ok || napi_type_tag_object(env, obj, &key_tag) != napi_ok) {
    free_key(env, k, NULL);
    cairn_napi_failed(env);
    return NULL;
  }
  if (napi_wrap(env, obj, k, free_key, NULL, NULL) != napi_ok) {
    free_key(env, k, NULL);
    cairn_napi_failed(env);
    return NULL;
  }
  return obj;
}

int cairn_get_seal_key(napi_env env, napi_value v, cairn_key *out) {
  bool ok = false;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  if (t == napi_object && napi_check_object_type_tag(env, v, &key_tag, &ok) != napi_ok) return cairn_napi_failed(env);
  void *p = NULL;
  if (!ok || napi_unwrap(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "key must be a SealKey (from sealKey())");
    return 0;
  }
  memcpy(out, p, sizeof *out);
  return 1;
}

static int get_optional_bytes(napi_env env, napi_value v, const char *what, size_t len, int *present, uint8_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  if (t == napi_undefined || t == napi_null) {
    *present = 0;
    return 1;
  }
  *present = 1;
  return get_exact(env, v, what, len, out);
}

/* ---- results and errors ------------------------------------------------------------------ */

static void free_external(napi_env env, void *data, void *hint) {
  napi_adjust_external_memory(env, -(int64_t)(uintptr_t)hint, NULL);
  free(data);
}

/* Hands a malloc'ed block to JavaScript as a Buffer (takes ownership, also on failure). */
static napi_value external_buffer(napi_env env, uint8_t *data, size_t len) {
  napi_value out;
  if (data == NULL || len == 0) {
    free(data);
    if (napi_create_buffer(env, 0, NULL, &out) != napi_ok) return cairn_napi_failed(env), NULL;
    return out;
  }
  if (napi_create_external_buffer(env, len, data, free_external, (void *)(uintptr_t)len, &out) != napi_ok) {
    free(data);
    cairn_napi_failed(env);
    return NULL;
  }
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)len, &ignored);
  return out;
}

static const char *reason_of(int kind) {
  switch (kind) {
    case CAIRN_ERR_SHORT: return "short";
    case CAIRN_ERR_MAC: return "mac";
    case CAIRN_ERR_ZSTD: return "zstd";
    case CAIRN_ERR_SIZE: return "size";
    case CAIRN_ERR_HASH: return "hash";
    default: return NULL;
  }
}

/* The error for a failed kernel call: code ERR_CAIRN_CORRUPT + reason, ENOMEM or ERR_CAIRN_INTERNAL. */
static napi_value kernel_error(napi_env env, int kind, const char *msg) {
  const char *reason = reason_of(kind);
  const char *code = reason ? "ERR_CAIRN_CORRUPT" : kind == CAIRN_ERR_NOMEM ? "ENOMEM" : kind == CAIRN_ERR_ROOM ? "ERR_OUT_OF_RANGE" : "ERR_CAIRN_INTERNAL";
  napi_value jcode, jmsg, err, jreason;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok || napi_create_error(env, jcode, jmsg, &err) != napi_ok) {
    return NULL;
  }
  if (reason != NULL && (napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &jreason) != napi_ok ||
                         napi_set_named_property(env, err, "reason", jreason) != napi_ok)) {
    return NULL;
  }
  return err;
}

static napi_value hex_id(napi_env env, const uint8_t id[32]) {
  static const char digits[] = "0123456789abcdef";
  char hex[64];
  for (int i = 0; i < 32; i++) {
    hex[2 * i] = digits[id[i] >> 4];
    hex[2 * i + 1] = digits[id[i] & 15];
  }
  napi_value s;
  if (napi_create_string_latin1(env, hex, 64, &s) != napi_ok) return NULL;
  return s;
}

/*
 * { sealed: Buffer, uncompressedLength: number, id?: string } — takes ownership of r->out; when
 * the caller gave the destination (in_place), `sealed` is the number of bytes written to it.
 */
static napi_value seal_result(napi_env env, cairn_seal_result *r, int with_id, int in_place) {
  napi_value obj, sealed, ulen, id;
  uint8_t *out = r->out;
  r->out = NULL;
  if (in_place) {
    if (napi_create_double(env, (double)r->out_len, &sealed) != napi_ok) return cairn_napi_failed(env), NULL;
  } else {
    sealed = external_buffer(env, out, r->out_len);
    if (sealed == NULL) return NULL;
  }
  if (napi_create_object(env, &obj) != napi_ok || napi_set_named_property(env, obj, "sealed", sealed) != napi_ok ||
      napi_create_double(env, (double)r->ulen, &ulen) != napi_ok ||
      napi_set_named_property(env, obj, "uncompressedLength", ulen) != napi_ok) {
    cairn_napi_failed(env);
    return NULL;
  }
  if (with_id) {
    id = hex_id(env, r->id);
    if (id == NULL || napi_set_named_property(env, obj, "id", id) != napi_ok) {
      cairn_napi_failed(env);
      return NULL;
    }
  }
  return obj;
}

/* The plaintext as a Buffer (taking ownership of r->out), or its length when written in place. */
static napi_value open_result(napi_env env, cairn_open_result *r, int in_place) {
  if (in_place) {
    napi_value n;
    r->out = NULL;
    if (napi_create_double(env, (double)r->out_len, &n) != napi_ok) return cairn_napi_failed(env), NULL;
    return n;
  }
  uint8_t *out = r->out;
  r->out = NULL;
  return external_buffer(env, out, r->out_len);
}

/* An optional destination: undefined/null, or a Uint8Array of at least `need` bytes. */
static int get_destination(napi_env env, napi_value v, size_t need, int check, uint8_t **dst, size_t *cap) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  *dst = NULL;
  *cap = 0;
  if (t == napi_undefined || t == napi_null) return 1;
  if (!cairn_get_bytes(env, v, "out", dst, cap)) return 0;
  if (check && *cap < need) {
    char msg[160];
    snprintf(msg, sizeof msg, "out must have room for %zu bytes, has %zu", need, *cap);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return 0;
  }
  if (*dst == NULL) {
    /* a zero-length view: keep a non-NULL marker so that "given" stays distinguishable */
    static uint8_t none[1];
    *dst = none;
  }
  return 1;
}

/* ---- jobs -------------------------------------------------------------------------------- */

enum { JOB_SEAL, JOB_OPEN, JOB_VERIFY, JOB_HASH, JOB_HASH_UPDATE };

/* A Sha256Stream object's native side. busy: an update job is queued or running. */
typedef struct {
  cairn_sha256_stream *s;
  int busy;
  int done;
} hash_stream;

typedef struct {
  int type;
  napi_deferred deferred;
  napi_ref *refs;
  size_t nrefs;
  cairn_key key;
  const uint8_t *in;
  size_t n;
  cairn_seal_opts seal;
  cairn_seal_result seal_r;
  cairn_open_opts open;
  cairn_open_result open_r;
  const uint8_t **parts;
  size_t *lens;
  size_t nparts;
  uint8_t digest[32];
  int hash_failed;
  hash_stream *stream;
} job;

static void job_free(napi_env env, job *j) {
  for (size_t i = 0; i < j->nrefs; i++) {
    if (j->refs[i] != NULL) napi_delete_reference(env, j->refs[i]);
  }
  free(j->refs);
  free(j->parts);
  free(j->lens);
  if (j->seal_r.out != j->seal.dst) free(j->seal_r.out);
  if (j->open_r.out != j->open.dst) free(j->open_r.out);
  volatile uint8_t *p = (volatile uint8_t *)&j->key;
  for (size_t i = 0; i < sizeof j->key; i++) p[i] = 0;
  free(j);
}

static job *job_new(napi_env env, int type, size_t nrefs) {
  job *j = calloc(1, sizeof *j);
  if (j != NULL) {
    j->type = type;
    j->refs = calloc(nrefs ? nrefs : 1, sizeof *j->refs);
    if (j->refs == NULL) {
      free(j);
      j = NULL;
    }
  }
  if (j == NULL) napi_throw_error(env, "ENOMEM", "out of memory");
  return j;
}

static int job_ref(napi_env env, job *j, napi_value v) {
  if (napi_create_reference(env, v, 1, &j->refs[j->nrefs]) != napi_ok) return cairn_napi_failed(env);
  j->nrefs++;
  return 1;
}

static void execute(napi_env env, void *data) {
  (void)env;
  job *j = data;
  switch (j->type) {
    case JOB_SEAL:
      cairn_seal(&j->key, j->in, j->n, &j->seal, &j->seal_r);
      break;
    case JOB_OPEN:
      cairn_open(&j->key, j->in, j->n, &j->open, &j->open_r);
      break;
    case JOB_VERIFY:
      cairn_verify(&j->key, j->in, j->n, &j->open, &j->open_r);
      break;
    case JOB_HASH:
      j->hash_failed = cairn_sha256(j->parts, j->lens, j->nparts, j->digest) != 0;
      break;
    case JOB_HASH_UPDATE:
      j->hash_failed = cairn_sha256_stream_update(j->stream->s, j->in, j->n) != 0;
      break;
  }
}

/* The outcome of a finished job: its result, or (*is_error set) its Error. */
static napi_value job_outcome(napi_env env, napi_status status, job *j, int *is_error) {
  napi_value result = NULL, error = NULL;
  if (status == napi_cancelled) {
    error = kernel_error(env, CAIRN_ERR_INTERNAL, "cancelled");
  } else if (j->type == JOB_SEAL) {
    if (j->seal_r.kind != CAIRN_OK) error = kernel_error(env, j->seal_r.kind, j->seal_r.err);
    else result = seal_result(env, &j->seal_r, j->seal.hash, j->seal.dst != NULL);
  } else if (j->type == JOB_OPEN) {
    if (j->open_r.kind != CAIRN_OK) {
      error = kernel_error(env, j->open_r.kind, j->open_r.err);
    } else {
      result = open_result(env, &j->open_r, j->open.dst != NULL);
    }
  } else if (j->type == JOB_VERIFY) {
    if (j->open_r.kind != CAIRN_OK) error = kernel_error(env, j->open_r.kind, j->open_r.err);
    else if (napi_create_double(env, (double)j->open_r.out_len, &result) != napi_ok) result = NULL;
  } else if (j->type == JOB_HASH_UPDATE) {
    j->stream->busy = 0;
    if (j->hash_failed) error = kernel_error(env, CAIRN_ERR_INTERNAL, "SHA-256 failed");
    else if (napi_get_undefined(env, &result) != napi_ok) result = NULL;
  } else {
    if (j->hash_failed) error = kernel_error(env, CAIRN_ERR_INTERNAL, "SHA-256 failed");
    else result = hex_id(env, j->digest);
  }
  if (result == NULL && error == NULL) {
    /* building the result failed: reject with the pending exception if there is one */
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &error);
    if (error == NULL) error = kernel_error(env, CAIRN_ERR_INTERNAL, "could not create the result");
  }
  *is_error = error != NULL;
  return error != NULL ? error : result;
}

static void complete(napi_env env, napi_status status, void *data) {
  job *j = data;
  int is_error = 0;
  napi_value v = job_outcome(env, status, j, &is_error);
  if (is_error) napi_reject_deferred(env, j->deferred, v);
  else napi_resolve_deferred(env, j->deferred, v);
  job_free(env, j);
}

/* Queues j; returns the promise (or NULL with an exception pending; j is freed then). */
static napi_value job_queue(napi_env env, job *j, const char *name) {
  napi_value promise;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    job_free(env, j);
    cairn_napi_failed(env);
    return NULL;
  }
  /* a stream's updates run one after the other: each goes before the waiting jobs */
  cairn_lane lane = j->type == JOB_HASH_UPDATE ? CAIRN_LANE_CPU_FIRST : CAIRN_LANE_CPU;
  if (!cairn_queue_job(env, lane, name, execute, complete, j)) {
    /* the promise stays pending forever, but nobody sees it: the call throws */
    job_free(env, j);
    return NULL;
  }
  return promise;
}

/* ---- seal ------------------------------------------------------------------------------------ */

/* Parses (key, data, compress, level, hash, iv?, out?) into j. */
static int parse_seal(napi_env env, napi_value *argv, job *j, napi_value *data_value) {
  uint8_t *data;
  size_t n;
  int compress = 0, hash = 0;
  int64_t level = 0;
  if (!cairn_get_seal_key(env, argv[0], &j->key) || !cairn_get_bytes(env, argv[1], "data", &data, &n) ||
      !cairn_get_bool(env, argv[2], "compress", &compress) ||
      !cairn_get_int(env, argv[3], "level", (double)ZSTD_minCLevel(), (double)ZSTD_maxCLevel(), &level) ||
      !cairn_get_bool(env, argv[4], "hash", &hash) ||
      !get_optional_bytes(env, argv[5], "iv", CAIRN_IV_LEN, &j->seal.has_iv, j->seal.iv)) {
    return 0;
  }
  if (!get_destination(env, argv[6], n + CAIRN_OVERHEAD, 1, &j->seal.dst, &j->seal.dst_cap)) return 0;
  j->in = data;
  j->n = n;
  j->seal.compress = compress;
  j->seal.level = (int)level;
  j->seal.hash = hash;
  *data_value = argv[1];
  return 1;
}

/* seal(key, data, compress, level, hash, iv?, out?): Promise<{sealed, uncompressedLength, id?}> */
napi_value cairn_js_seal(napi_env env, napi_callback_info info) {
  napi_value argv[7], data;
  if (!cairn_args(env, info, 7, argv, NULL)) return NULL;
  job *j = job_new(env, JOB_SEAL, 2);
  if (j == NULL) return NULL;
  if (!parse_seal(env, argv, j, &data) || !job_ref(env, j, data) || (j->seal.dst != NULL && !job_ref(env, j, argv[6]))) {
    job_free(env, j);
    return NULL;
  }
  return job_queue(env, j, "cairn:seal");
}

/* sealSync(key, data, compress, level, hash, iv?, out?): {sealed, uncompressedLength, id?} */
napi_value cairn_js_seal_sync(napi_env env, napi_callback_info info) {
  napi_value argv[7], data, result = NULL;
  if (!cairn_args(env, info, 7, argv, NULL)) return NULL;
  job *j = job_new(env, JOB_SEAL, 0);
  if (j == NULL) return NULL;
  if (parse_seal(env, argv, j, &data)) {
    if (cairn_seal(&j->key, j->in, j->n, &j->seal, &j->seal_r) != CAIRN_OK) {
      napi_value err = kernel_error(env, j->seal_r.kind, j->seal_r.err);
      if (err) napi_throw(env, err);
      else cairn_napi_failed(env);
    } else {
      result = seal_result(env, &j->seal_r, j->seal.hash, j->seal.dst != NULL);
    }
  }
  job_free(env, j);
  return result;
}

/* ---- open ------------------------------------------------------------------------------------ */

/* Parses (key, sealed, uncompressedLength, maxSize, id?, out?) into j. */
static int parse_open(napi_env env, napi_value *argv, job *j) {
  uint8_t *data;
  size_t n;
  int64_t ulen = 0, max_size = 0;
  if (!cairn_get_seal_key(env, argv[0], &j->key) || !cairn_get_bytes(env, argv[1], "sealed", &data, &n) ||
      !cairn_get_int(env, argv[2], "uncompressedLength", 0, MAX_SAFE, &ulen) ||
      !cairn_get_int(env, argv[3], "maxSize", 0, MAX_SAFE, &max_size) ||
      !get_optional_bytes(env, argv[4], "id", 32, &j->open.check_id, j->open.id)) {
    return 0;
  }
  /* The room needed is known now, unless the blob is too short or too large (errors come later). */
  size_t need = ulen ? (size_t)ulen : (n >= CAIRN_OVERHEAD ? n - CAIRN_OVERHEAD : 0);
  int check = n >= CAIRN_OVERHEAD && ulen <= max_size;
  if (!get_destination(env, argv[5], need, check, &j->open.dst, &j->open.dst_cap)) return 0;
  j->in = data;
  j->n = n;
  j->open.ulen = (size_t)ulen;
  j->open.max_size = (size_t)max_size;
  return 1;
}

/* open(key, sealed, uncompressedLength, maxSize, id?, out?): Promise<Buffer | number> */
napi_value cairn_js_open(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!cairn_args(env, info, 6, argv, NULL)) return NULL;
  job *j = job_new(env, JOB_OPEN, 2);
  if (j == NULL) return NULL;
  if (!parse_open(env, argv, j) || !job_ref(env, j, argv[1]) || (j->open.dst != NULL && !job_ref(env, j, argv[5]))) {
    job_free(env, j);
    return NULL;
  }
  return job_queue(env, j, "cairn:open");
}

/* verify(key, sealed, uncompressedLength, maxSize, id): Promise<number> — open's checks, no plaintext kept */
napi_value cairn_js_verify(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!cairn_args(env, info, 5, argv, NULL) || napi_get_undefined(env, &argv[5]) != napi_ok) return NULL;
  job *j = job_new(env, JOB_VERIFY, 1);
  if (j == NULL) return NULL;
  if (!parse_open(env, argv, j) || !job_ref(env, j, argv[1])) {
    job_free(env, j);
    return NULL;
  }
  if (!j->open.check_id) {
    job_free(env, j);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "id must be a 32-byte Buffer");
    return NULL;
  }
  return job_queue(env, j, "cairn:verify");
}

/* openSync(key, sealed, uncompressedLength, maxSize, id?, out?): Buffer | number */
napi_value cairn_js_open_sync(napi_env env, napi_callback_info info) {
  napi_value argv[6], result = NULL;
  if (!cairn_args(env, info, 6, argv, NULL)) return NULL;
  job *j = job_new(env, JOB_OPEN, 0);
  if (j == NULL) return NULL;
  if (parse_open(env, argv, j)) {
    if (cairn_open(&j->key, j->in, j->n, &j->open, &j->open_r) != CAIRN_OK) {
      napi_value err = kernel_error(env, j->open_r.kind, j->open_r.err);
      if (err) napi_throw(env, err);
      else cairn_napi_failed(env);
    } else {
      result = open_result(env, &j->open_r, j->open.dst != NULL);
    }
  }
  job_free(env, j);
  return result;
}

/* openBatch(requests: Array<open's 6 arguments>): Promise<Array<Buffer | number | Error>> (batch.h) */
static void *open_batch_parse(napi_env env, napi_value *args) {
  job *j = job_new(env, JOB_OPEN, 2);
  if (j == NULL) return NULL;
  if (!parse_open(env, args, j) || !job_ref(env, j, args[1]) || (j->open.dst != NULL && !job_ref(env, j, args[5]))) {
    job_free(env, j);
    return NULL;
  }
  return j;
}
static napi_value open_batch_outcome(napi_env env, napi_status status, void *j, int *is_error) { return job_outcome(env, status, j, is_error); }
static void open_batch_destroy(napi_env env, void *j) { job_free(env, j); }
static const cairn_batch_kind open_batch = {"cairn:openBatch", CAIRN_LANE_CPU, 6, open_batch_parse, execute, open_batch_outcome, open_batch_destroy};

napi_value cairn_js_open_batch(napi_env env, napi_callback_info info) { return cairn_batch_call(env, info, &open_batch); }

/* ---- an open job inside another batch kind (jobs.h) ------------------------------------------ */

void *cairn_open_job_parse(napi_env env, napi_value *args) { return open_batch_parse(env, args); }

int cairn_open_job_run(void *data, const uint8_t **plain, size_t *len) {
  job *j = data;
  int kind = cairn_open(&j->key, j->in, j->n, &j->open, &j->open_r);
  *plain = j->open_r.out;
  *len = j->open_r.out_len;
  return kind;
}

napi_value cairn_open_job_error(napi_env env, void *data) {
  job *j = data;
  return kernel_error(env, j->open_r.kind, j->open_r.err);
}

void cairn_open_job_free(napi_env env, void *data) { job_free(env, data); }

/* ---- sha256 ---------------------------------------------------------------------------------- */

/* sha256(data: Uint8Array | Uint8Array[]): Promise<string> (64 lower-case hex digits) */
napi_value cairn_js_sha256(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!cairn_args(env, info, 1, argv, NULL)) return NULL;
  bool is_array = false;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok) return cairn_napi_failed(env), NULL;
  uint32_t count = 1;
  if (is_array && napi_get_array_length(env, argv[0], &count) != napi_ok) return cairn_napi_failed(env), NULL;
  if (count > MAX_HASH_PARTS) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "sha256: at most 4096 parts");
    return NULL;
  }
  job *j = job_new(env, JOB_HASH, count);
  if (j == NULL) return NULL;
  j->parts = calloc(count ? count : 1, sizeof *j->parts);
  j->lens = calloc(count ? count : 1, sizeof *j->lens);
  if (j->parts == NULL || j->lens == NULL) {
    job_free(env, j);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value part = argv[0];
    if (is_array && napi_get_element(env, argv[0], i, &part) != napi_ok) {
      job_free(env, j);
      return cairn_napi_failed(env), NULL;
    }
    uint8_t *p;
    size_t n;
    if (!cairn_get_bytes(env, part, "data", &p, &n) || !job_ref(env, j, part)) {
      job_free(env, j);
      return NULL;
    }
    j->parts[i] = p;
    j->lens[i] = n;
  }
  j->nparts = count;
  return job_queue(env, j, "cairn:sha256");
}

/* ---- sha256 streams -------------------------------------------------------------------------- */

static const napi_type_tag stream_tag = {0x636169726e736861ULL, 0x3235365374726d31ULL};

static void free_stream(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  hash_stream *h = data;
  cairn_sha256_stream_free(h->s);
  free(h);
}

/* The hash_stream of a Sha256Stream object, or NULL with a TypeError thrown. */
static hash_stream *get_stream(napi_env env, napi_value v) {
  bool ok = false;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env), NULL;
  if (t == napi_object && napi_check_object_type_tag(env, v, &stream_tag, &ok) != napi_ok) return cairn_napi_failed(env), NULL;
  void *p = NULL;
  if (!ok || napi_unwrap(env, v, &p) != napi_ok || p == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "stream must be a Sha256Stream (from sha256Stream())");
    return NULL;
  }
  return p;
}

/* Refuses a stream that is finished or has an update in flight (an Error with code ERR_INVALID_STATE). */
static int stream_idle(napi_env env, hash_stream *h) {
  if (h->done || h->busy) {
    napi_throw_error(env, "ERR_INVALID_STATE", h->done ? "sha256 stream already finished" : "sha256 stream has an update in flight");
    return 0;
  }
  return 1;
}

/* sha256Stream(): Sha256Stream */
napi_value cairn_js_sha256_stream(napi_env env, napi_callback_info info) {
  (void)info;
  hash_stream *h = calloc(1, sizeof *h);
  if (h == NULL || (h->s = cairn_sha256_stream_new()) == NULL) {
    free(h);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok || napi_type_tag_object(env, obj, &stream_tag) != napi_ok ||
      napi_wrap(env, obj, h, free_stream, NULL, NULL) != napi_ok) {
    free_stream(env, h, NULL);
    cairn_napi_failed(env);
    return NULL;
  }
  return obj;
}

/* sha256Update(stream, data): Promise<void> — one update at a time per stream. */
napi_value cairn_js_sha256_update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!cairn_args(env, info, 2, argv, NULL)) return NULL;
  hash_stream *h = get_stream(env, argv[0]);
  uint8_t *data;
  size_t n;
  if (h == NULL || !stream_idle(env, h) || !cairn_get_bytes(env, argv[1], "data", &data, &n)) return NULL;
  job *j = job_new(env, JOB_HASH_UPDATE, 2);
  if (j == NULL) return NULL;
  if (!job_ref(env, j, argv[0]) || !job_ref(env, j, argv[1])) {
    job_free(env, j);
    return NULL;
  }
  j->stream = h;
  j->in = data;
  j->n = n;
  napi_value promise = job_queue(env, j, "cairn:sha256Update");
  if (promise != NULL) h->busy = 1;
  return promise;
}

/* sha256Digest(stream): string (64 lower-case hex digits); the stream is finished afterwards. */
napi_value cairn_js_sha256_digest(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!cairn_args(env, info, 1, argv, NULL)) return NULL;
  hash_stream *h = get_stream(env, argv[0]);
  if (h == NULL || !stream_idle(env, h)) return NULL;
  uint8_t out[32];
  h->done = 1;
  if (cairn_sha256_stream_final(h->s, out) != 0) {
    napi_throw_error(env, "ERR_CAIRN_INTERNAL", "SHA-256 failed");
    return NULL;
  }
  return hex_id(env, out);
}
