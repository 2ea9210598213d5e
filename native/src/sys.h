/* N-API callbacks for the system calls (contracts in native/README.md). */
#ifndef CAIRN_SYS_H
#define CAIRN_SYS_H

#include <stdint.h>
#include <time.h>

#include <node_api.h>
#include <sys/types.h>

napi_value cairn_lgetxattrs(napi_env env, napi_callback_info info);
napi_value cairn_lsetxattr(napi_env env, napi_callback_info info);
napi_value cairn_mknod(napi_env env, napi_callback_info info);
napi_value cairn_mkfifo(napi_env env, napi_callback_info info);
napi_value cairn_utimens(napi_env env, napi_callback_info info);

/* Nanoseconds since the epoch → timespec with 0 <= tv_nsec < 10^9 (floor division). */
struct timespec cairn_ns_to_timespec(int64_t ns);

/*
 * llistxattr / lgetxattr into a malloc'ed buffer that grows as needed (*buf may be realloc'ed);
 * return the length, or −1 with errno set. Safe on any thread.
 */
ssize_t cairn_xattr_list(const char *path, char **buf, size_t *cap);
ssize_t cairn_xattr_get(const char *path, const char *name, char **buf, size_t *cap);

#endif
