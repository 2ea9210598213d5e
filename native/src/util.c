#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *cairn_zalloc(napi_env env, size_t size) {
  void *p = calloc(1, size);
  if (p == NULL) napi_throw_error(env, "ENOMEM", "out of memory");
  return p;
}

int cairn_napi_failed(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return 0;
  const napi_extended_error_info *info = NULL;
  const char *msg = "N-API call failed";
  if (napi_get_last_error_info(env, &info) == napi_ok && info != NULL && info->error_message != NULL) {
    msg = info->error_message;
  }
  napi_throw_error(env, NULL, msg);
  return 0;
}

static int type_error(napi_env env, const char *what, const char *expected) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s must be %s", what, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return 0;
}

static int range_error(napi_env env, const char *what, const char *expected) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s must be %s", what, expected);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return 0;
}

int cairn_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, napi_value *this_arg) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, this_arg, NULL) != napi_ok) return cairn_napi_failed(env);
  /* N-API fills missing arguments with undefined. */
  return 1;
}

int cairn_get_bytes(napi_env env, napi_value v, const char *what, uint8_t **data, size_t *len) {
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok) return cairn_napi_failed(env);
  if (!is_ta) return type_error(env, what, "a Uint8Array");
  napi_typedarray_type type;
  size_t length = 0;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, &length, &ptr, NULL, NULL) != napi_ok) return cairn_napi_failed(env);
  if (type != napi_uint8_array) return type_error(env, what, "a Uint8Array");
  *data = (uint8_t *)ptr; /* already adjusted by the view's byte offset */
  *len = length;
  return 1;
}

int cairn_get_string(napi_env env, napi_value v, const char *what, char **out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  if (t != napi_string) return type_error(env, what, "a string");
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return cairn_napi_failed(env);
  char *buf = malloc(len + 1);
  if (buf == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return 0;
  }
  size_t got = 0;
  if (napi_get_value_string_utf8(env, v, buf, len + 1, &got) != napi_ok) {
    free(buf);
    return cairn_napi_failed(env);
  }
  if (strlen(buf) != got) {
    free(buf);
    char msg[256];
    snprintf(msg, sizeof msg, "%s must be a string without null bytes", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return 0;
  }
  *out = buf;
  return 1;
}

int cairn_get_path(napi_env env, napi_value v, const char *what, char **out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  if (t == napi_string) return cairn_get_string(env, v, what, out);
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok) return cairn_napi_failed(env);
  if (!is_ta) return type_error(env, what, "a string or a Uint8Array");
  uint8_t *data = NULL;
  size_t len = 0;
  if (!cairn_get_bytes(env, v, what, &data, &len)) {
    /* a typed array of another element type: replace the message so it names both forms */
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
    return type_error(env, what, "a string or a Uint8Array");
  }
  if (len > 0 && memchr(data, 0, len) != NULL) {
    char msg[256];
    snprintf(msg, sizeof msg, "%s must be a path without null bytes", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return 0;
  }
  char *buf = malloc(len + 1);
  if (buf == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return 0;
  }
  if (len > 0) memcpy(buf, data, len);
  buf[len] = '\0';
  *out = buf;
  return 1;
}

int cairn_get_int(napi_env env, napi_value v, const char *what, double min, double max, int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  if (t != napi_number) return type_error(env, what, "an integer");
  double d = 0;
  if (napi_get_value_double(env, v, &d) != napi_ok) return cairn_napi_failed(env);
  if (!isfinite(d) || floor(d) != d) return type_error(env, what, "an integer");
  if (d < min || d > max) {
    char expected[128];
    snprintf(expected, sizeof expected, "in %.0f..%.0f", min, max);
    return range_error(env, what, expected);
  }
  *out = (int64_t)d;
  return 1;
}

static int get_bigint_type(napi_env env, napi_value v, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  if (t != napi_bigint) return type_error(env, what, "a bigint");
  return 1;
}

int cairn_get_u64(napi_env env, napi_value v, const char *what, uint64_t *out) {
  if (!get_bigint_type(env, v, what)) return 0;
  bool lossless = false;
  if (napi_get_value_bigint_uint64(env, v, out, &lossless) != napi_ok) return cairn_napi_failed(env);
  if (!lossless) return range_error(env, what, "in 0..2^64-1");
  return 1;
}

int cairn_get_i64(napi_env env, napi_value v, const char *what, int64_t *out) {
  if (!get_bigint_type(env, v, what)) return 0;
  bool lossless = false;
  if (napi_get_value_bigint_int64(env, v, out, &lossless) != napi_ok) return cairn_napi_failed(env);
  if (!lossless) return range_error(env, what, "in -2^63..2^63-1");
  return 1;
}

int cairn_get_bool(napi_env env, napi_value v, const char *what, int *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return cairn_napi_failed(env);
  if (t != napi_boolean) return type_error(env, what, "a boolean");
  bool b = false;
  if (napi_get_value_bool(env, v, &b) != napi_ok) return cairn_napi_failed(env);
  *out = b ? 1 : 0;
  return 1;
}

const char *cairn_errno_name(int err) {
  switch (err) {
#define E(x) \
  case x: \
    return #x;
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR)
    E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE)
    E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK)
    E(ENOSYS) E(ENOTEMPTY) E(ELOOP) E(ENODATA) E(EOVERFLOW) E(EILSEQ) E(ENOTSUP) E(EDQUOT)
    E(ESTALE) E(ECANCELED) E(ETIMEDOUT) E(ENOTCONN) E(ECONNREFUSED) E(ECONNRESET)
#undef E
#if defined(EOPNOTSUPP) && EOPNOTSUPP != ENOTSUP
    case EOPNOTSUPP:
      return "ENOTSUP";
#endif
#if defined(EWOULDBLOCK) && EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
      return "EAGAIN";
#endif
    default:
      return "UNKNOWN";
  }
}

static int set_prop(napi_env env, napi_value obj, const char *key, napi_value v) {
  return napi_set_named_property(env, obj, key, v) == napi_ok;
}

int cairn_throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_value error = cairn_errno_error(env, err, syscall, path);
  if (error != NULL) napi_throw(env, error);
  else cairn_napi_failed(env);
  return 0;
}

napi_value cairn_errno_error(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = cairn_errno_name(err);
  char desc[128];
  /* strerror is fine here: this runs on the JavaScript thread only. */
  snprintf(desc, sizeof desc, "%s", strerror(err));
  if (desc[0] >= 'A' && desc[0] <= 'Z') desc[0] = (char)(desc[0] - 'A' + 'a');
  size_t n = strlen(code) + strlen(desc) + strlen(syscall) + (path ? strlen(path) : 0) + 16;
  char *msg = malloc(n);
  if (msg == NULL) return NULL;
  if (path != NULL) snprintf(msg, n, "%s: %s, %s '%s'", code, desc, syscall, path);
  else snprintf(msg, n, "%s: %s, %s", code, desc, syscall);
  napi_value jcode, jmsg, error, jerrno, jsyscall, jpath;
  int ok = napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) == napi_ok &&
           napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) == napi_ok &&
           napi_create_error(env, jcode, jmsg, &error) == napi_ok &&
           napi_create_int32(env, -err, &jerrno) == napi_ok && set_prop(env, error, "errno", jerrno) &&
           napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &jsyscall) == napi_ok &&
           set_prop(env, error, "syscall", jsyscall);
  if (ok && path != NULL) {
    ok = napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &jpath) == napi_ok && set_prop(env, error, "path", jpath);
  }
  free(msg);
  return ok ? error : NULL;
}

napi_value cairn_coded_error(napi_env env, const char *code, const char *text, const char *path) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", path, text);
  napi_value jcode, jmsg, err, jpath;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok || napi_create_error(env, jcode, jmsg, &err) != napi_ok ||
      napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &jpath) != napi_ok ||
      napi_set_named_property(env, err, "path", jpath) != napi_ok) {
    return NULL;
  }
  return err;
}
