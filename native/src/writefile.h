/* restoreFile / finishFile: a restored file's write and metadata in one thread-pool job (writefile.c). */
#ifndef CAIRN_WRITEFILE_H
#define CAIRN_WRITEFILE_H

#include <node_api.h>

napi_value cairn_js_restore_file(napi_env env, napi_callback_info info);
napi_value cairn_js_restore_file_batch(napi_env env, napi_callback_info info);
napi_value cairn_js_finish_file(napi_env env, napi_callback_info info);

#endif
