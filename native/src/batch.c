/* Batched calls: see batch.h. */
#include "batch.h"

#include <stdbool.h>
#include <stdlib.h>

#include "util.h"

typedef struct {
  napi_deferred deferred;
  const cairn_batch_kind *kind;
  size_t n;
  void **jobs;
} batch;

static void batch_free(napi_env env, batch *b) {
  for (size_t i = 0; i < b->n; i++) {
    if (b->jobs[i] != NULL) b->kind->destroy(env, b->jobs[i]);
  }
  free(b->jobs);
  free(b);
}

static void batch_execute(napi_env env, void *data) {
  batch *b = data;
  for (size_t i = 0; i < b->n; i++) b->kind->execute(env, b->jobs[i]);
}

static void batch_complete(napi_env env, napi_status status, void *data) {
  batch *b = data;
  napi_value arr = NULL;
  if (napi_create_array_with_length(env, b->n, &arr) == napi_ok) {
    for (size_t i = 0; i < b->n && arr != NULL; i++) {
      int is_error = 0;
      napi_value v = b->kind->outcome(env, status, b->jobs[i], &is_error);
      if (v == NULL || napi_set_element(env, arr, (uint32_t)i, v) != napi_ok) arr = NULL;
    }
  }
  if (arr != NULL) {
    napi_resolve_deferred(env, b->deferred, arr);
  } else {
    napi_value err = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "could not create the results", b->kind->name);
    napi_reject_deferred(env, b->deferred, err);
  }
  batch_free(env, b);
}

napi_value cairn_batch_call(napi_env env, napi_callback_info info, const cairn_batch_kind *kind) {
  napi_value argv[1], promise;
  if (!cairn_args(env, info, 1, argv, NULL)) return NULL;
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "requests must be an array");
    return NULL;
  }
  batch *b = calloc(1, sizeof *b);
  if (b == NULL || (n > 0 && (b->jobs = calloc(n, sizeof *b->jobs)) == NULL)) {
    free(b);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  b->kind = kind;
  for (uint32_t i = 0; i < n; i++) {
    napi_value req, fields[CAIRN_BATCH_MAX_ARGS];
    bool req_array = false;
    uint32_t len = 0;
    if (napi_get_element(env, argv[0], i, &req) != napi_ok || napi_is_array(env, req, &req_array) != napi_ok || !req_array ||
        napi_get_array_length(env, req, &len) != napi_ok) {
      batch_free(env, b);
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "each request must be an array");
      return NULL;
    }
    for (uint32_t k = 0; k < kind->nargs; k++) {
      napi_status st = k < len ? napi_get_element(env, req, k, &fields[k]) : napi_get_undefined(env, &fields[k]);
      if (st != napi_ok) {
        batch_free(env, b);
        return cairn_napi_failed(env), NULL;
      }
    }
    b->jobs[i] = kind->parse(env, fields);
    b->n = i + 1;
    if (b->jobs[i] == NULL) {
      batch_free(env, b);
      return NULL;
    }
  }
  b->n = n;
  if (napi_create_promise(env, &b->deferred, &promise) != napi_ok) {
    batch_free(env, b);
    return cairn_napi_failed(env), NULL;
  }
  if (!cairn_queue_job(env, kind->lane, kind->name, batch_execute, batch_complete, b)) {
    batch_free(env, b);
    return NULL;
  }
  return promise;
}
