/* N-API entry points of the blob kernels (jobs.c); only built with CAIRN_HAVE_ZSTD. */
#ifndef CAIRN_JOBS_H
#define CAIRN_JOBS_H

#include <node_api.h>

#include "blob.h"

/* A SealKey argument (from sealKey()) copied into *out; throws a TypeError and returns 0 otherwise. */
int cairn_get_seal_key(napi_env env, napi_value v, cairn_key *out);

napi_value cairn_js_seal_key(napi_env env, napi_callback_info info);
napi_value cairn_js_seal(napi_env env, napi_callback_info info);
napi_value cairn_js_seal_sync(napi_env env, napi_callback_info info);
napi_value cairn_js_open(napi_env env, napi_callback_info info);
napi_value cairn_js_verify(napi_env env, napi_callback_info info);
napi_value cairn_js_open_sync(napi_env env, napi_callback_info info);
napi_value cairn_js_open_batch(napi_env env, napi_callback_info info);
/*
 * An open job (open()'s six arguments) run as one step of another batch kind (openwrite.c):
 * parse on the JavaScript thread (NULL with an exception pending), run on a pool thread (returns
 * the CAIRN_* kind; the plaintext is the destination given, or malloc'ed and owned by the job),
 * the Error of a failed run, free.
 */
void *cairn_open_job_parse(napi_env env, napi_value *args);
int cairn_open_job_run(void *job, const uint8_t **plain, size_t *len);
napi_value cairn_open_job_error(napi_env env, void *job);
void cairn_open_job_free(napi_env env, void *job);

napi_value cairn_js_sha256(napi_env env, napi_callback_info info);
/* openwrite.c */
napi_value cairn_js_open_restore_file_batch(napi_env env, napi_callback_info info);
napi_value cairn_js_sha256_stream(napi_env env, napi_callback_info info);
napi_value cairn_js_sha256_update(napi_env env, napi_callback_info info);
napi_value cairn_js_sha256_digest(napi_env env, napi_callback_info info);

#endif
