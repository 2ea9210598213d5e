/* preadBatch (pread.c): ranged file reads in one thread-pool job each. */
#ifndef CAIRN_PREAD_H
#define CAIRN_PREAD_H

#include <node_api.h>

napi_value cairn_js_pread_batch(napi_env env, napi_callback_info info);

#endif
