/* N-API callbacks for the system calls (contracts in native/README.md). */
#ifndef CAIRN_SYS_H
#define CAIRN_SYS_H

#include <node_api.h>

napi_value cairn_lgetxattrs(napi_env env, napi_callback_info info);
napi_value cairn_lsetxattr(napi_env env, napi_callback_info info);
napi_value cairn_mknod(napi_env env, napi_callback_info info);
napi_value cairn_mkfifo(napi_env env, napi_callback_info info);
napi_value cairn_utimens(napi_env env, napi_callback_info info);

#endif
