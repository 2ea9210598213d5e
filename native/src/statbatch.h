/* lstatBatch: the metadata of many entries in one thread-pool job (statbatch.c). */
#ifndef CAIRN_STATBATCH_H
#define CAIRN_STATBATCH_H

#include <node_api.h>

napi_value cairn_js_lstat_batch(napi_env env, napi_callback_info info);

#endif
