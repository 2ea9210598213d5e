/*
 * mkdirBatch: directories made in one thread-pool job per batch. Why: a restore makes every
 * directory of the snapshot one after the other's parent, ~30 at a time; one libuv request per
 * mkdir cost the JavaScript thread a pool thread's wake-up each (a futex and an inter-processor
 * interrupt on the test VM), ~0.1 s for the 1,220 directories of the benchmark tree. Batch-only
 * (requests of one event-loop turn share a job, see batch.h). Contract: native/README.md.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "batch.h"
#include "mkdirbatch.h"
#include "util.h"

typedef struct {
  char *path;
  int64_t mode;
  int err;
} md_job;

static void md_destroy(napi_env env, void *data) {
  (void)env;
  md_job *j = data;
  free(j->path);
  free(j);
}

/* (path, mode) */
static void *md_parse(napi_env env, napi_value *args) {
  md_job *j = cairn_zalloc(env, sizeof *j);
  if (j == NULL) return NULL;
  if (!cairn_get_path(env, args[0], "path", &j->path) || !cairn_get_int(env, args[1], "mode", 0, 07777, &j->mode)) {
    md_destroy(env, j);
    return NULL;
  }
  return j;
}

static void md_execute(napi_env env, void *data) {
  (void)env;
  md_job *j = data;
  if (mkdir(j->path, (mode_t)j->mode) != 0) j->err = errno;
}

static napi_value md_outcome(napi_env env, napi_status status, void *data, int *is_error) {
  md_job *j = data;
  napi_value v = NULL;
  if (status != napi_ok) v = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "job cancelled", j->path);
  else if (j->err != 0) v = cairn_errno_error(env, j->err, "mkdir", j->path);
  else if (napi_get_null(env, &v) != napi_ok) v = NULL;
  *is_error = status != napi_ok || j->err != 0;
  return v;
}

static const cairn_batch_kind mkdir_batch = {"cairn:mkdirBatch", CAIRN_LANE_IO, 2, md_parse, md_execute, md_outcome, md_destroy};

/* mkdirBatch(requests: Array<[path, mode]>): Promise<Array<null | Error>> (Node-style errors: .code, .errno, .syscall, .path) */
napi_value cairn_js_mkdir_batch(napi_env env, napi_callback_info info) { return cairn_batch_call(env, info, &mkdir_batch); }
