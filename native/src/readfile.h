/* readFile: one thread-pool job that reads a whole small regular file (readfile.c). */
#ifndef CAIRN_READFILE_H
#define CAIRN_READFILE_H

#include <node_api.h>

napi_value cairn_js_read_file(napi_env env, napi_callback_info info);
napi_value cairn_js_read_file_batch(napi_env env, napi_callback_info info);

#endif
