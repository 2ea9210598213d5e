/* Small helpers shared by the N-API glue: argument checks and Node-style errors. */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <node_api.h>

/*
 * Every helper that can fail throws a pending JavaScript exception and returns 0; on success it
 * returns 1. Callers return NULL to JavaScript right after a 0.
 */

/* Fetches exactly n arguments (missing ones are `undefined`) and `this`. */
int cairn_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, napi_value *this_arg);

/* A Uint8Array (Buffer included): its data pointer (may be NULL when empty) and length. */
int cairn_get_bytes(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len);

/* A string without NUL characters, as malloc'ed UTF-8 (free it). */
int cairn_get_string(napi_env env, napi_value v, const char *what, char **out);

/*
 * A path: a string (encoded as UTF-8) or a Uint8Array/Buffer (its raw bytes, so that names that
 * are not valid UTF-8 can be expressed). Either must be free of NUL bytes. Returns a malloc'ed,
 * NUL-terminated copy (free it).
 */
int cairn_get_path(napi_env env, napi_value v, const char *what, char **out);

/* A number that is an integer in [min, max] (both within ±2^53). */
int cairn_get_int(napi_env env, napi_value v, const char *what, double min, double max, int64_t *out);

/* A bigint in [0, 2^64). */
int cairn_get_u64(napi_env env, napi_value v, const char *what, uint64_t *out);

/* A bigint in [−2^63, 2^63). */
int cairn_get_i64(napi_env env, napi_value v, const char *what, int64_t *out);

/* A boolean. */
int cairn_get_bool(napi_env env, napi_value v, const char *what, int *out);

/*
 * Throws an Error shaped like Node's fs errors:
 *   message "<CODE>: <description>, <syscall> '<path>'", .code = errno name ("ENOENT", …),
 *   .errno = −err, .syscall, .path.
 * Returns 0 so that callers can `return cairn_throw_errno(...) ? … : NULL`.
 */
int cairn_throw_errno(napi_env env, int err, const char *syscall, const char *path);

/* The same Error, created and returned instead of thrown (for rejecting promises); NULL on failure. */
napi_value cairn_errno_error(napi_env env, int err, const char *syscall, const char *path);

/*
 * An Error with a cairn code ("ERR_CAIRN_…"), message "<path>: <text>" and .path, created and
 * returned (for rejecting promises); NULL on failure.
 */
napi_value cairn_coded_error(napi_env env, const char *code, const char *text, const char *path);

/* Name of an errno value ("ENOENT"), or "UNKNOWN". */
const char *cairn_errno_name(int err);

/* Makes sure an exception is pending after a failed N-API call (returns 0). */
int cairn_napi_failed(napi_env env);

/* calloc(1, size), or NULL with an ENOMEM error thrown. */
void *cairn_zalloc(napi_env env, size_t size);

/* Evaluates an N-API call; on failure leaves an exception pending and returns NULL. */
#define CAIRN_CALL(env, call) \
  do { \
    if ((call) != napi_ok) { \
      cairn_napi_failed(env); \
      return NULL; \
    } \
  } while (0)

#endif
