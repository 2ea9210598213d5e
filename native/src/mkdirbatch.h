/* mkdirBatch (mkdirbatch.c): directories made in one thread-pool job per batch. */
#ifndef CAIRN_MKDIRBATCH_H
#define CAIRN_MKDIRBATCH_H

#include <node_api.h>

napi_value cairn_js_mkdir_batch(napi_env env, napi_callback_info info);

#endif
