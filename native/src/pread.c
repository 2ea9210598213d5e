/*
 * preadBatch: ranged reads of files (the local backend's blob and pack-range loads) as one
 * thread-pool job each — open, pread until done, close — instead of three node:fs requests, each
 * a pool thread's wake-up (~50 µs of the JavaScript thread on the test VM). Loading the 1,220 tree
 * blobs of a snapshot took 3,660 requests. Batch-only (requests of one event-loop turn share a
 * job, see batch.h). Contract: native/README.md ("pread").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "batch.h"
#include "pread.h"
#include "util.h"

/* Largest offset + length accepted: 2^53 − 1 (exact in a JavaScript number). */
#define MAX_SAFE 9007199254740991.0

typedef struct {
  char *path;
  int64_t offset;
  size_t len;
  uint8_t *out;
  napi_ref out_ref;
  size_t got;
  int err;
  const char *syscall;
} pr_job;

static void pr_destroy(napi_env env, void *data) {
  pr_job *j = data;
  if (j->out_ref != NULL) napi_delete_reference(env, j->out_ref);
  free(j->path);
  free(j);
}

/* (path, offset, length, out): out must hold length bytes. */
static void *pr_parse(napi_env env, napi_value *args) {
  pr_job *j = cairn_zalloc(env, sizeof *j);
  if (j == NULL) return NULL;
  int64_t offset = 0, len = 0;
  size_t cap = 0;
  if (!cairn_get_path(env, args[0], "path", &j->path) || !cairn_get_int(env, args[1], "offset", 0, MAX_SAFE, &offset) ||
      !cairn_get_int(env, args[2], "length", 0, MAX_SAFE, &len) || !cairn_get_bytes(env, args[3], "out", &j->out, &cap)) {
    pr_destroy(env, j);
    return NULL;
  }
  if ((size_t)len > cap) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "out is shorter than length");
    pr_destroy(env, j);
    return NULL;
  }
  if (len > 0 && napi_create_reference(env, args[3], 1, &j->out_ref) != napi_ok) {
    pr_destroy(env, j);
    return cairn_napi_failed(env), NULL;
  }
  j->offset = offset;
  j->len = (size_t)len;
  return j;
}

static void pr_execute(napi_env env, void *data) {
  (void)env;
  pr_job *j = data;
  int fd = open(j->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    j->err = errno;
    j->syscall = "open";
    return;
  }
  while (j->got < j->len) {
    ssize_t n = pread(fd, j->out + j->got, j->len - j->got, (off_t)(j->offset + (int64_t)j->got));
    if (n < 0) {
      if (errno == EINTR) continue;
      j->err = errno;
      j->syscall = "read";
      break;
    }
    if (n == 0) break; /* end of file: the caller sees got < length */
    j->got += (size_t)n;
  }
  close(fd);
}

static napi_value pr_outcome(napi_env env, napi_status status, void *data, int *is_error) {
  pr_job *j = data;
  napi_value v = NULL;
  if (status != napi_ok) v = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "job cancelled", j->path);
  else if (j->err != 0) v = cairn_errno_error(env, j->err, j->syscall, j->path);
  else if (napi_create_double(env, (double)j->got, &v) != napi_ok) v = NULL;
  *is_error = status != napi_ok || j->err != 0;
  return v;
}

static const cairn_batch_kind pread_batch = {"cairn:preadBatch", CAIRN_LANE_IO, 4, pr_parse, pr_execute, pr_outcome, pr_destroy};

/* preadBatch(requests: Array<[path, offset, length, out]>): Promise<Array<number | Error>> (bytes read into out; fewer than length at end of file) */
napi_value cairn_js_pread_batch(napi_env env, napi_callback_info info) { return cairn_batch_call(env, info, &pread_batch); }
