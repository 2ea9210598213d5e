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
napi_value cairn_js_open_sync(napi_env env, napi_callback_info info);
napi_value cairn_js_open_batch(napi_env env, napi_callback_info info);
napi_value cairn_js_sha256(napi_env env, napi_callback_info info);
napi_value cairn_js_sha256_stream(napi_env env, napi_callback_info info);
napi_value cairn_js_sha256_update(napi_env env, napi_callback_info info);
napi_value cairn_js_sha256_digest(napi_env env, napi_callback_info info);

#endif
