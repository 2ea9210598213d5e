/*
 * readFile: reads a whole (small) regular file in one thread-pool job — open without following a
 * symlink and without updating atime, fstat, check type and identity, read to end of file, close,
 * and optionally SHA-256 — instead of four or five round trips between the JavaScript thread and
 * the pool (each a pair of context switches). Contract: native/README.md ("readFile").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "readfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zstd.h>

#include "batch.h"
#include "blob.h"
#include "jobs.h"
#include "kpool.h"
#include "util.h"

#ifndef O_NOATIME
#define O_NOATIME 0
#endif

enum { RF_OK = 0, RF_ERRNO, RF_NOT_REGULAR, RF_REPLACED, RF_HASH };

typedef struct {
  napi_deferred deferred;
  napi_ref out_ref;
  char *path;
  uint8_t *out;
  size_t cap;
  int check_identity;
  uint64_t dev, ino;
  int hash;
  /* optional: seal the contents too (when read completely) */
  int seal;
  cairn_key key;
  napi_ref seal_ref;
  cairn_seal_opts seal_opts;
  cairn_seal_result seal_r;
  /* results */
  int kind;
  int err;
  const char *syscall;
  size_t length;
  uint64_t size;
  int complete;
  uint8_t id[32];
} rf_job;

static void rf_execute(napi_env env, void *data) {
  (void)env;
  rf_job *j = data;
  const int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  int fd = open(j->path, flags | O_NOATIME);
  /* O_NOATIME needs ownership or CAP_FOWNER: without, open normally (as fs/read.ts does). */
  if (fd < 0 && errno == EPERM && O_NOATIME != 0) fd = open(j->path, flags);
  if (fd < 0) {
    j->kind = RF_ERRNO;
    j->err = errno;
    j->syscall = "open";
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    j->kind = RF_ERRNO;
    j->err = errno;
    j->syscall = "fstat";
    close(fd);
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    j->kind = RF_NOT_REGULAR;
    close(fd);
    return;
  }
  if (j->check_identity && ((uint64_t)st.st_dev != j->dev || (uint64_t)st.st_ino != j->ino)) {
    j->kind = RF_REPLACED;
    close(fd);
    return;
  }
  j->size = (uint64_t)st.st_size;
  size_t len = 0;
  while (len < j->cap) {
    ssize_t n = read(fd, j->out + len, j->cap - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      j->kind = RF_ERRNO;
      j->err = errno;
      j->syscall = "read";
      close(fd);
      return;
    }
    if (n == 0) {
      j->complete = 1;
      break;
    }
    len += (size_t)n;
  }
  close(fd);
  j->length = len;
  if (j->hash && j->complete) {
    const uint8_t *parts[1] = {j->out};
    size_t lens[1] = {len};
    if (cairn_sha256(parts, lens, 1, j->id) != 0) j->kind = RF_HASH;
  }
  /* Sealing is best effort: when the destination is too small (the file grew) it is skipped. */
  if (j->kind == RF_OK && j->seal && j->complete && len + CAIRN_OVERHEAD <= j->seal_opts.dst_cap) {
    if (cairn_seal(&j->key, j->out, len, &j->seal_opts, &j->seal_r) != CAIRN_OK) j->seal_r.out_len = 0;
  }
}

/*
 * [length, size, complete, id?, sealedLength?, uncompressedLength?] — an array, turned into the
 * result object in src/native/index.ts: a named property set from C costs a key lookup each, six
 * per file (~40 ms of the JavaScript thread in a backup of 20,000 small files).
 */
static napi_value rf_result(napi_env env, rf_job *j) {
  napi_value arr, v;
  static const char digits[] = "0123456789abcdef";
  int sealed = j->seal_r.kind == CAIRN_OK && j->seal_r.out_len > 0;
  if (napi_create_array_with_length(env, sealed ? 6 : j->hash && j->complete ? 4 : 3, &arr) != napi_ok) return NULL;
  if (napi_create_double(env, (double)j->length, &v) != napi_ok || napi_set_element(env, arr, 0, v) != napi_ok) return NULL;
  if (napi_create_double(env, (double)j->size, &v) != napi_ok || napi_set_element(env, arr, 1, v) != napi_ok) return NULL;
  if (napi_get_boolean(env, j->complete != 0, &v) != napi_ok || napi_set_element(env, arr, 2, v) != napi_ok) return NULL;
  if (j->hash && j->complete) {
    char hex[64];
    for (int i = 0; i < 32; i++) {
      hex[2 * i] = digits[j->id[i] >> 4];
      hex[2 * i + 1] = digits[j->id[i] & 15];
    }
    if (napi_create_string_latin1(env, hex, 64, &v) != napi_ok || napi_set_element(env, arr, 3, v) != napi_ok) return NULL;
  } else if (sealed) {
    if (napi_get_undefined(env, &v) != napi_ok || napi_set_element(env, arr, 3, v) != napi_ok) return NULL;
  }
  if (sealed) {
    if (napi_create_double(env, (double)j->seal_r.out_len, &v) != napi_ok || napi_set_element(env, arr, 4, v) != napi_ok ||
        napi_create_double(env, (double)j->seal_r.ulen, &v) != napi_ok || napi_set_element(env, arr, 5, v) != napi_ok) {
      return NULL;
    }
  }
  return arr;
}

static void rf_free(napi_env env, rf_job *j) {
  if (j->out_ref != NULL) napi_delete_reference(env, j->out_ref);
  if (j->seal_ref != NULL) napi_delete_reference(env, j->seal_ref);
  volatile uint8_t *k = (volatile uint8_t *)&j->key;
  for (size_t i = 0; i < sizeof j->key; i++) k[i] = 0;
  free(j->path);
  free(j);
}

/*
 * Parses one request (9 values: path, out, dev?, ino?, hash, key?, compress?, level?, sealOut?)
 * into a new job that holds references to out (and sealOut). NULL with an exception pending.
 */
static rf_job *rf_parse(napi_env env, napi_value *argv) {
  rf_job *j = cairn_zalloc(env, sizeof *j);
  if (j == NULL) return NULL;
  napi_valuetype tdev, tino;
  int hash = 0;
  if (!cairn_get_path(env, argv[0], "path", &j->path) || !cairn_get_bytes(env, argv[1], "out", &j->out, &j->cap) ||
      napi_typeof(env, argv[2], &tdev) != napi_ok || napi_typeof(env, argv[3], &tino) != napi_ok) {
    rf_free(env, j);
    return NULL;
  }
  if (tdev != napi_undefined || tino != napi_undefined) {
    if (!cairn_get_u64(env, argv[2], "dev", &j->dev) || !cairn_get_u64(env, argv[3], "ino", &j->ino)) {
      rf_free(env, j);
      return NULL;
    }
    j->check_identity = 1;
  }
  if (!cairn_get_bool(env, argv[4], "hash", &hash)) {
    rf_free(env, j);
    return NULL;
  }
  j->hash = hash;
  napi_valuetype tkey;
  if (napi_typeof(env, argv[5], &tkey) != napi_ok) {
    rf_free(env, j);
    return cairn_napi_failed(env), NULL;
  }
  if (tkey != napi_undefined) {
    int compress = 0;
    int64_t level = 0;
    if (!cairn_get_seal_key(env, argv[5], &j->key) || !cairn_get_bool(env, argv[6], "compress", &compress) ||
        !cairn_get_int(env, argv[7], "level", (double)ZSTD_minCLevel(), (double)ZSTD_maxCLevel(), &level) ||
        !cairn_get_bytes(env, argv[8], "sealOut", &j->seal_opts.dst, &j->seal_opts.dst_cap) ||
        napi_create_reference(env, argv[8], 1, &j->seal_ref) != napi_ok) {
      rf_free(env, j);
      return NULL;
    }
    j->seal = 1;
    j->seal_opts.compress = compress;
    j->seal_opts.level = (int)level;
  }
  if (j->cap == 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "out must not be empty");
    rf_free(env, j);
    return NULL;
  }
  if (napi_create_reference(env, argv[1], 1, &j->out_ref) != napi_ok) {
    rf_free(env, j);
    cairn_napi_failed(env);
    return NULL;
  }
  return j;
}

/* The outcome of a finished job: its result object, or (*is_error set) its Error. */
static napi_value rf_outcome(napi_env env, napi_status status, rf_job *j, int *is_error) {
  napi_value result = NULL, error = NULL;
  if (status != napi_ok) {
    error = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "readFile job cancelled", j->path);
  } else {
    switch (j->kind) {
      case RF_OK: result = rf_result(env, j); break;
      case RF_ERRNO: error = cairn_errno_error(env, j->err, j->syscall, j->path); break;
      case RF_NOT_REGULAR: error = cairn_coded_error(env, "ERR_CAIRN_NOT_REGULAR", "is no longer a regular file", j->path); break;
      case RF_REPLACED: error = cairn_coded_error(env, "ERR_CAIRN_REPLACED", "was replaced by another file", j->path); break;
      default: error = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "SHA-256 failed", j->path); break;
    }
  }
  if (result == NULL && error == NULL) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &error);
    if (error == NULL) error = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "could not create the result", j->path);
  }
  *is_error = error != NULL;
  return error != NULL ? error : result;
}

static void rf_complete(napi_env env, napi_status status, void *data) {
  rf_job *j = data;
  int is_error = 0;
  napi_value v = rf_outcome(env, status, j, &is_error);
  if (is_error) napi_reject_deferred(env, j->deferred, v);
  else napi_resolve_deferred(env, j->deferred, v);
  rf_free(env, j);
}

/*
 * readFile(path, out, dev?: bigint, ino?: bigint, hash: boolean,
 *          key?: SealKey, compress?: boolean, level?: number, sealOut?: Uint8Array)
 *   : Promise<[length, size, complete, id?, sealedLength?, uncompressedLength?]>
 */
napi_value cairn_js_read_file(napi_env env, napi_callback_info info) {
  napi_value argv[9], promise;
  if (!cairn_args(env, info, 9, argv, NULL)) return NULL;
  rf_job *j = rf_parse(env, argv);
  if (j == NULL) return NULL;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    rf_free(env, j);
    cairn_napi_failed(env);
    return NULL;
  }
  if (!cairn_queue_job(env, CAIRN_LANE_IO, "cairn:readFile", rf_execute, rf_complete, j)) {
    /* the promise stays pending forever, but nobody sees it: the call throws */
    rf_free(env, j);
    return NULL;
  }
  return promise;
}

/* readFileBatch(requests: Array<readFile's 9 arguments>): Promise<Array<result | Error>> (batch.h) */
static void *rf_batch_parse(napi_env env, napi_value *args) { return rf_parse(env, args); }
static napi_value rf_batch_outcome(napi_env env, napi_status status, void *j, int *is_error) { return rf_outcome(env, status, j, is_error); }
static void rf_batch_destroy(napi_env env, void *j) { rf_free(env, j); }
static const cairn_batch_kind read_file_batch = {"cairn:readFileBatch", CAIRN_LANE_IO, 9, rf_batch_parse, rf_execute, rf_batch_outcome, rf_batch_destroy};

napi_value cairn_js_read_file_batch(napi_env env, napi_callback_info info) { return cairn_batch_call(env, info, &read_file_batch); }
