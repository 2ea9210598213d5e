/*
 * openRestoreFileBatch: a restore's commonest step — a file that is exactly one blob — as one
 * job per file instead of two. Each request opens a stored blob (open()'s six arguments: MAC
 * check, decryption, bounded decompression, hash check, into the destination given) and, only
 * when that succeeded, writes the plaintext as the whole file with its metadata (restoreFile's
 * eleven arguments; its data argument is ignored). Why: each job is a thread-pool wake-up, and a
 * restore of many small files spent most of its JavaScript thread handing blobs to openBatch,
 * taking them back and handing them to restoreFileBatch. Contract: native/README.md
 * ("openRestoreFileBatch").
 */
#include <stdlib.h>

#include "batch.h"
#include "jobs.h"
#include "util.h"
#include "writefile.h"

typedef struct {
  void *open;
  void *restore;
  int opened; /* CAIRN_OK once the blob is open and the file step ran */
} open_restore;

/* The writer's request starts after open()'s six arguments. */
#define OPEN_ARGS 6

static void or_destroy(napi_env env, void *data) {
  open_restore *j = data;
  if (j->open != NULL) cairn_open_job_free(env, j->open);
  if (j->restore != NULL) cairn_restore_job_free(env, j->restore);
  free(j);
}

static void *or_parse(napi_env env, napi_value *args) {
  open_restore *j = cairn_zalloc(env, sizeof *j);
  if (j == NULL) return NULL;
  j->opened = -1;
  /* restoreFile's data argument (args[OPEN_ARGS + 1]) is replaced by the plaintext: parse it as null */
  napi_value restore_args[11];
  for (int k = 0; k < 11; k++) restore_args[k] = args[OPEN_ARGS + k];
  if (napi_get_null(env, &restore_args[1]) != napi_ok) {
    free(j);
    return cairn_napi_failed(env), NULL;
  }
  if ((j->open = cairn_open_job_parse(env, args)) == NULL || (j->restore = cairn_restore_job_parse(env, restore_args)) == NULL) {
    or_destroy(env, j);
    return NULL;
  }
  return j;
}

static void or_execute(napi_env env, void *data) {
  (void)env;
  open_restore *j = data;
  const uint8_t *plain = NULL;
  size_t len = 0;
  j->opened = cairn_open_job_run(j->open, &plain, &len);
  if (j->opened == CAIRN_OK) cairn_restore_job_run(j->restore, plain, len);
}

static napi_value or_outcome(napi_env env, napi_status status, void *data, int *is_error) {
  open_restore *j = data;
  if (status == napi_ok && j->opened != CAIRN_OK) {
    napi_value err = cairn_open_job_error(env, j->open);
    if (err == NULL) err = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "could not create the error", "");
    *is_error = 1;
    return err;
  }
  return cairn_restore_job_outcome(env, status, j->restore, is_error);
}

static const cairn_batch_kind open_restore_batch = {"cairn:openRestoreFileBatch", CAIRN_LANE_IO, OPEN_ARGS + 11, or_parse, or_execute, or_outcome, or_destroy};

/* openRestoreFileBatch(requests: Array<[...open's 6 arguments, ...restoreFile's 11]>): Promise<Array<{ warnings } | Error>> */
napi_value cairn_js_open_restore_file_batch(napi_env env, napi_callback_info info) { return cairn_batch_call(env, info, &open_restore_batch); }
