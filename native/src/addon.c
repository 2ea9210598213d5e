/*
 * cairn_native: N-API (C) entry points. Kernels: poly1305, rabin (a RabinKernel class with
 * findCut), fastcdcBoundaries, and — when built with zstd — the blob kernels (jobs.c: sealKey,
 * seal, open, sha256); system calls in sys.c; the restorer's per-file jobs restoreFile/finishFile in writefile.c.
 * Contracts: native/README.md and src/native/api.ts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>

#include "fastcdc.h"
#include "poly1305.h"
#include "rabin.h"
#include "mkdirbatch.h"
#include "pread.h"
#include "statbatch.h"
#include "sys.h"
#include "util.h"
#include "writefile.h"
#ifdef CAIRN_HAVE_ZSTD
#include <openssl/crypto.h>

#include "blob.h"
#include "jobs.h"
#include "readfile.h"
#endif

#ifndef CAIRN_HAVE_ZSTD
#define NO_ZSTD_REASON \
  "the addon was built without the blob kernels: zstd-napi's static zstd library " \
  "(node_modules/zstd-napi/build/Release/zstd.a) was not found when it was compiled"
#endif

/* Per-environment data (worker threads each load the addon into their own environment). */
typedef struct {
  napi_ref rabin_ctor;
} addon_data;

/* poly1305(key: Uint8Array(32), msg: Uint8Array): Buffer(16) */
static napi_value js_poly1305(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  uint8_t *key, *msg;
  size_t key_len, msg_len;
  if (!cairn_args(env, info, 2, argv, NULL) || !cairn_get_bytes(env, argv[0], "key", &key, &key_len) ||
      !cairn_get_bytes(env, argv[1], "msg", &msg, &msg_len)) {
    return NULL;
  }
  if (key_len != 32) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "poly1305: key must be 32 bytes");
    return NULL;
  }
  uint8_t tag[16];
  static const uint8_t empty[1] = {0};
  cairn_poly1305(tag, key, msg_len ? msg : empty, msg_len);
  napi_value out;
  CAIRN_CALL(env, napi_create_buffer_copy(env, sizeof tag, tag, NULL, &out));
  return out;
}

/* Memory of alignedBuffer(): allocated by posix_memalign, freed when the Buffer is collected. */
static void free_aligned(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/*
 * alignedBuffer(size: integer 1..2^31-1): Buffer whose memory starts at a multiple of
 * CAIRN_IO_ALIGN (uninitialised). Direct I/O (O_DIRECT) needs buffers aligned like this, and
 * neither V8 nor malloc guarantee it for Buffers.
 */
#define CAIRN_IO_ALIGN 4096
static napi_value js_aligned_buffer(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t size;
  if (!cairn_args(env, info, 1, argv, NULL) || !cairn_get_int(env, argv[0], "size", 1, 2147483647.0, &size)) return NULL;
  void *mem = NULL;
  if (posix_memalign(&mem, CAIRN_IO_ALIGN, (size_t)size) != 0) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_value out;
  if (napi_create_external_buffer(env, (size_t)size, mem, free_aligned, NULL, &out) != napi_ok) {
    free(mem);
    cairn_napi_failed(env);
    return NULL;
  }
  return out;
}

static void free_tables(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

/* new RabinKernel(polynomial: bigint) — constructed through rabin(). */
static napi_value rabin_ctor(napi_env env, napi_callback_info info) {
  napi_value argv[1], self;
  uint64_t pol;
  if (!cairn_args(env, info, 1, argv, &self) || !cairn_get_u64(env, argv[0], "polynomial", &pol)) return NULL;
  int deg = cairn_rabin_degree(pol);
  if (deg < 8 || deg > 53) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "rabin: polynomial degree must be 8..53");
    return NULL;
  }
  cairn_rabin_tables *t = malloc(sizeof *t);
  if (t == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  cairn_rabin_init(t, pol);
  if (napi_wrap(env, self, t, free_tables, NULL, NULL) != napi_ok) {
    free(t);
    cairn_napi_failed(env);
    return NULL;
  }
  return self;
}

/* kernel.findCut(buf, chunkStart, scanFrom, end, minSize, maxSize): number */
static napi_value rabin_find_cut(napi_env env, napi_callback_info info) {
  napi_value argv[6], self;
  const double max_int = 9007199254740991.0; /* 2^53 − 1 */
  uint8_t *buf;
  size_t len;
  int64_t chunk_start, scan_from, end, min_size, max_size;
  if (!cairn_args(env, info, 6, argv, &self)) return NULL;
  void *ptr = NULL;
  if (napi_unwrap(env, self, &ptr) != napi_ok || ptr == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "findCut must be called on a RabinKernel");
    return NULL;
  }
  const cairn_rabin_tables *t = ptr;
  if (!cairn_get_bytes(env, argv[0], "buf", &buf, &len) ||
      !cairn_get_int(env, argv[1], "chunkStart", 0, max_int, &chunk_start) ||
      !cairn_get_int(env, argv[2], "scanFrom", 0, max_int, &scan_from) ||
      !cairn_get_int(env, argv[3], "end", 0, max_int, &end) ||
      !cairn_get_int(env, argv[4], "minSize", CAIRN_RABIN_WINDOW, max_int, &min_size) ||
      !cairn_get_int(env, argv[5], "maxSize", 0, max_int, &max_size)) {
    return NULL;
  }
  if (chunk_start > scan_from || scan_from > end || end > (int64_t)len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "findCut: need 0 <= chunkStart <= scanFrom <= end <= buf.length");
    return NULL;
  }
  int64_t lo = scan_from - chunk_start > min_size ? scan_from - chunk_start : min_size;
  int64_t hi = end - chunk_start < max_size ? end - chunk_start : max_size;
  int64_t n = -1;
  if (lo <= hi) {
    n = cairn_rabin_scan(t, buf + chunk_start, lo, hi);
  }
  napi_value out;
  CAIRN_CALL(env, napi_create_int64(env, n, &out));
  return out;
}

/* A Uint32Array's elements (a TypeError for anything else). */
static int get_u32_array(napi_env env, napi_value v, const char *what, uint32_t **data, size_t *count) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, v, &type, count, &ptr, NULL, NULL) != napi_ok || type != napi_uint32_array) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be a Uint32Array", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  static uint32_t none[1];
  *data = ptr != NULL ? ptr : none;
  return 1;
}

/*
 * fastcdcBoundaries(data, minSize, avgSize, maxSize, gear: Uint32Array(256), out: Uint32Array):
 * number — the boundaries of data (see fastcdc.h) written to out; their count, or −1 when out is
 * too small. Runs on the calling thread: the backup's splitter asks for a few MiB at a time.
 */
static napi_value js_fastcdc_boundaries(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  uint8_t *data;
  uint32_t *gear, *out;
  size_t len, gear_len, out_len;
  int64_t min, avg, max;
  if (!cairn_args(env, info, 6, argv, NULL) || !cairn_get_bytes(env, argv[0], "data", &data, &len) ||
      !cairn_get_int(env, argv[1], "minSize", CAIRN_FASTCDC_MIN_LO, CAIRN_FASTCDC_MIN_HI, &min) ||
      !cairn_get_int(env, argv[2], "avgSize", CAIRN_FASTCDC_AVG_LO, CAIRN_FASTCDC_AVG_HI, &avg) ||
      !cairn_get_int(env, argv[3], "maxSize", CAIRN_FASTCDC_MAX_LO, CAIRN_FASTCDC_MAX_HI, &max) ||
      !get_u32_array(env, argv[4], "gear", &gear, &gear_len) || !get_u32_array(env, argv[5], "out", &out, &out_len)) {
    return NULL;
  }
  if (gear_len != 256) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fastcdcBoundaries: gear must hold 256 entries");
    return NULL;
  }
  if (len > 0xffffffffu) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "fastcdcBoundaries: data must be shorter than 4 GiB");
    return NULL;
  }
  int64_t n = cairn_fastcdc_boundaries(data, len, (uint32_t)min, (uint32_t)avg, (uint32_t)max, gear, out, out_len);
  napi_value result;
  CAIRN_CALL(env, napi_create_int64(env, n, &result));
  return result;
}

/* rabin(polynomial: bigint): RabinKernel */
static napi_value js_rabin(napi_env env, napi_callback_info info) {
  napi_value argv[1], ctor, instance;
  if (!cairn_args(env, info, 1, argv, NULL)) return NULL;
  addon_data *data = NULL;
  CAIRN_CALL(env, napi_get_instance_data(env, (void **)&data));
  CAIRN_CALL(env, napi_get_reference_value(env, data->rabin_ctor, &ctor));
  CAIRN_CALL(env, napi_new_instance(env, ctor, 1, argv, &instance));
  return instance;
}

static void free_addon_data(napi_env env, void *data, void *hint) {
  (void)hint;
  addon_data *d = data;
  napi_delete_reference(env, d->rabin_ctor);
  free(d);
}

#if defined(__GLIBC__)
#include <malloc.h>
#include <pthread.h>

static pthread_once_t malloc_once = PTHREAD_ONCE_INIT;

/*
 * glibc raises its mmap threshold (up to 32 MiB) each time a large block is freed, after which
 * multi-MiB buffers (pack buffers, read buffers, Node's) come from the main heap, whose free
 * space is not returned to the system: a backup's RSS grew by ~50 MiB of such holes (measured on
 * the 1 GiB benchmark). A fixed threshold keeps blocks of 1 MiB and more in their own mappings,
 * released when freed (cairn recycles its hot buffers, so the extra page faults are few).
 * CAIRN_MALLOC_TUNING=0 leaves glibc's defaults; an explicit MALLOC_MMAP_THRESHOLD_ wins.
 */
static void tune_malloc(void) {
  const char *off = getenv("CAIRN_MALLOC_TUNING");
  if (off != NULL && strcmp(off, "0") == 0) return;
  if (getenv("MALLOC_MMAP_THRESHOLD_") != NULL) return;
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
}
#endif

NAPI_MODULE_INIT() {
#if defined(__GLIBC__)
  pthread_once(&malloc_once, tune_malloc);
#endif
  addon_data *data = calloc(1, sizeof *data);
  if (data == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_property_descriptor method = {"findCut", NULL, rabin_find_cut, NULL, NULL, NULL, napi_default, NULL};
  napi_value ctor;
  if (napi_define_class(env, "RabinKernel", NAPI_AUTO_LENGTH, rabin_ctor, NULL, 1, &method, &ctor) != napi_ok ||
      napi_create_reference(env, ctor, 1, &data->rabin_ctor) != napi_ok ||
      napi_set_instance_data(env, data, free_addon_data, NULL) != napi_ok) {
    free(data);
    cairn_napi_failed(env);
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"poly1305", NULL, js_poly1305, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rabin", NULL, js_rabin, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fastcdcBoundaries", NULL, js_fastcdc_boundaries, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattrs", NULL, cairn_lgetxattrs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, cairn_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, cairn_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mkfifo", NULL, cairn_mkfifo, NULL, NULL, NULL, napi_enumerable, NULL},
      {"utimens", NULL, cairn_utimens, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lstatBatch", NULL, cairn_js_lstat_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"restoreFile", NULL, cairn_js_restore_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"restoreFileBatch", NULL, cairn_js_restore_file_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"preadBatch", NULL, cairn_js_pread_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mkdirBatch", NULL, cairn_js_mkdir_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"finishFile", NULL, cairn_js_finish_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"finishDirBatch", NULL, cairn_js_finish_dir_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"alignedBuffer", NULL, js_aligned_buffer, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) {
    cairn_napi_failed(env);
    return NULL;
  }
#ifdef CAIRN_HAVE_ZSTD
  napi_value info;
  char text[160];
  snprintf(text, sizeof text, "zstd %s, %s, Poly1305 %s", cairn_zstd_version(), OpenSSL_version(OPENSSL_VERSION),
           cairn_poly1305_uses_openssl() ? "from OpenSSL (1 KiB and longer)" : "own");
  napi_property_descriptor blob_props[] = {
      {"sealKey", NULL, cairn_js_seal_key, NULL, NULL, NULL, napi_enumerable, NULL},
      {"seal", NULL, cairn_js_seal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sealSync", NULL, cairn_js_seal_sync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"open", NULL, cairn_js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openSync", NULL, cairn_js_open_sync, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openBatch", NULL, cairn_js_open_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"verify", NULL, cairn_js_verify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256", NULL, cairn_js_sha256, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Stream", NULL, cairn_js_sha256_stream, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Update", NULL, cairn_js_sha256_update, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sha256Digest", NULL, cairn_js_sha256_digest, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readFile", NULL, cairn_js_read_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readFileBatch", NULL, cairn_js_read_file_batch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openRestoreFileBatch", NULL, cairn_js_open_restore_file_batch, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof blob_props / sizeof blob_props[0], blob_props) != napi_ok ||
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &info) != napi_ok ||
      napi_set_named_property(env, exports, "blobKernels", info) != napi_ok) {
    cairn_napi_failed(env);
    return NULL;
  }
#else
  /* Built without zstd (zstd-napi was not installed when the addon was compiled). */
  napi_value why;
  if (napi_create_string_utf8(env, NO_ZSTD_REASON, NAPI_AUTO_LENGTH, &why) != napi_ok ||
      napi_set_named_property(env, exports, "blobKernelsMissing", why) != napi_ok) {
    cairn_napi_failed(env);
    return NULL;
  }
#endif
  return exports;
}
