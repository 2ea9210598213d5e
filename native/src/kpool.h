/*
 * Where asynchronous jobs run (kpool.c). CPU-bound kernels (seal, open, SHA-256) go to the
 * addon's own threads, one per CPU; I/O jobs (reading, writing, stat) to libuv's thread pool as
 * napi_async_work. Either way `execute` runs on another thread (it must not call N-API) and
 * `complete` on the JavaScript thread afterwards, with status napi_ok.
 */
#ifndef CAIRN_KPOOL_H
#define CAIRN_KPOOL_H

#include <node_api.h>

/*
 * CAIRN_LANE_CPU_FIRST: a kernel job that goes before the waiting ones — for jobs that are links
 * of a chain (each waits for the previous, like the updates of a SHA-256 stream), which would
 * otherwise wait through the whole queue once per link.
 */
typedef enum { CAIRN_LANE_CPU, CAIRN_LANE_CPU_FIRST, CAIRN_LANE_IO } cairn_lane;

/*
 * Queues one job. Returns 1, or 0 with an exception pending (nothing was queued; the caller
 * still owns data). `name` is the async resource name of I/O jobs (e.g. "cairn:readFileBatch").
 */
int cairn_queue_job(napi_env env, cairn_lane lane, const char *name, napi_async_execute_callback execute,
                    napi_async_complete_callback complete, void *data);

#endif
