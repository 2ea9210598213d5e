/* restoreFile / finishFile: a restored file's write and metadata in one thread-pool job (writefile.c). */
#ifndef CAIRN_WRITEFILE_H
#define CAIRN_WRITEFILE_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>

napi_value cairn_js_restore_file(napi_env env, napi_callback_info info);
napi_value cairn_js_restore_file_batch(napi_env env, napi_callback_info info);
napi_value cairn_js_finish_file(napi_env env, napi_callback_info info);
napi_value cairn_js_finish_dir_batch(napi_env env, napi_callback_info info);

/*
 * A restoreFile job (restoreFile's eleven arguments) as one step of another batch kind
 * (openwrite.c): parse on the JavaScript thread (NULL with an exception pending), run on a pool
 * thread with the file's bytes (which must stay valid until it returns), outcome and free as in
 * restoreFileBatch.
 */
void *cairn_restore_job_parse(napi_env env, napi_value *args);
void cairn_restore_job_run(void *job, const uint8_t *bytes, size_t len);
napi_value cairn_restore_job_outcome(napi_env env, napi_status status, void *job, int *is_error);
void cairn_restore_job_free(napi_env env, void *job);

#endif
