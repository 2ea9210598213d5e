/*
 * Batched calls: many requests of one kind in one thread-pool job (batch.c). Why: each job costs
 * the JavaScript thread a wake-up of a pool thread (a futex, and on a VM an inter-processor
 * interrupt), tens of microseconds on the test VM — more than reading, opening or writing one
 * small file or blob. Contract: native/README.md ("Batched calls").
 */
#ifndef CAIRN_BATCH_H
#define CAIRN_BATCH_H

#include <node_api.h>
#include <stdint.h>

#include "kpool.h"

/* How to run one kind of request; a kernel's single-call functions, seen through void *. */
typedef struct {
  /* async resource name, e.g. "cairn:openBatch" */
  const char *name;
  /* where the batch runs: the kernel threads (CPU-bound work) or libuv's pool (I/O) */
  cairn_lane lane;
  /* arguments per request (missing trailing ones are undefined); at most CAIRN_BATCH_MAX_ARGS */
  uint32_t nargs;
  /* a new job from one request's arguments, or NULL with an exception pending */
  void *(*parse)(napi_env env, napi_value *args);
  /* runs one job on a pool thread */
  void (*execute)(napi_env env, void *job);
  /* the job's result, or (*is_error set) its Error; on the JavaScript thread */
  napi_value (*outcome)(napi_env env, napi_status status, void *job, int *is_error);
  /* frees a job (parsed or finished) */
  void (*destroy)(napi_env env, void *job);
} cairn_batch_kind;

#define CAIRN_BATCH_MAX_ARGS 20

/*
 * fn(requests: unknown[][]): Promise<Array<result | Error>> — parses every request (an argument
 * error in any of them is thrown for the whole call), runs them in order in one job and resolves
 * to one outcome per request.
 */
napi_value cairn_batch_call(napi_env env, napi_callback_info info, const cairn_batch_kind *kind);

#endif
