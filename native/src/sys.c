/* System calls Node's fs module lacks: extended attributes, device nodes, FIFOs, utimensat. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>

#include "util.h"

/* Initial buffer sizes; both grow on ERANGE to what the kernel reports (at least doubling). */
#define LIST_INITIAL 1024
#define VALUE_INITIAL 256

/* Grows *buf to at least need bytes (and at least twice its size); 0 on allocation failure. */
static int grow(char **buf, size_t *cap, size_t need) {
  size_t n = *cap * 2;
  if (n < need) n = need;
  char *p = realloc(*buf, n);
  if (p == NULL) return 0;
  *buf = p;
  *cap = n;
  return 1;
}

/* llistxattr into a growing buffer; returns the list length or −1 with errno set. */
static ssize_t list_names(const char *path, char **buf, size_t *cap) {
  for (;;) {
    ssize_t n = llistxattr(path, *buf, *cap);
    if (n >= 0) return n;
    if (errno != ERANGE) return -1;
    ssize_t need = llistxattr(path, NULL, 0);
    if (need < 0) return -1;
    if (!grow(buf, cap, (size_t)need + 1)) {
      errno = ENOMEM;
      return -1;
    }
  }
}

/* lgetxattr into a growing buffer; returns the value length or −1 with errno set. */
static ssize_t get_value(const char *path, const char *name, char **buf, size_t *cap) {
  for (;;) {
    ssize_t n = lgetxattr(path, name, *buf, *cap);
    if (n >= 0) return n;
    if (errno != ERANGE) return -1;
    ssize_t need = lgetxattr(path, name, NULL, 0);
    if (need < 0) return -1;
    if (!grow(buf, cap, (size_t)need + 1)) {
      errno = ENOMEM;
      return -1;
    }
  }
}

napi_value cairn_lgetxattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char *path = NULL;
  if (!cairn_args(env, info, 1, argv, NULL) || !cairn_get_path(env, argv[0], "path", &path)) return NULL;

  size_t list_cap = LIST_INITIAL, value_cap = VALUE_INITIAL;
  char *list = malloc(list_cap);
  char *value = malloc(value_cap);
  napi_value result = NULL;
  if (list == NULL || value == NULL) {
    cairn_throw_errno(env, ENOMEM, "llistxattr", path);
    goto done;
  }
  ssize_t list_len = list_names(path, &list, &list_cap);
  if (list_len < 0) {
    cairn_throw_errno(env, errno, "llistxattr", path);
    goto done;
  }
  napi_value array;
  if (napi_create_array(env, &array) != napi_ok) {
    cairn_napi_failed(env);
    goto done;
  }
  uint32_t index = 0;
  for (ssize_t off = 0; off < list_len;) {
    const char *name = list + off;
    size_t name_len = strnlen(name, (size_t)(list_len - off));
    off += (ssize_t)name_len + 1;
    if (name_len == 0) continue;
    ssize_t value_len = get_value(path, name, &value, &value_cap);
    if (value_len < 0) {
      if (errno == ENODATA) continue; /* removed since it was listed */
      cairn_throw_errno(env, errno, "lgetxattr", path);
      goto done;
    }
    napi_value entry, jname, jvalue;
    if (napi_create_object(env, &entry) != napi_ok ||
        napi_create_string_utf8(env, name, name_len, &jname) != napi_ok ||
        napi_create_buffer_copy(env, (size_t)value_len, value, NULL, &jvalue) != napi_ok ||
        napi_set_named_property(env, entry, "name", jname) != napi_ok ||
        napi_set_named_property(env, entry, "value", jvalue) != napi_ok ||
        napi_set_element(env, array, index++, entry) != napi_ok) {
      cairn_napi_failed(env);
      goto done;
    }
  }
  result = array;
done:
  free(list);
  free(value);
  free(path);
  return result;
}

napi_value cairn_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char *path = NULL, *name = NULL;
  uint8_t *data = NULL;
  size_t len = 0;
  napi_value result = NULL;
  if (!cairn_args(env, info, 3, argv, NULL) || !cairn_get_path(env, argv[0], "path", &path)) return NULL;
  if (!cairn_get_string(env, argv[1], "name", &name) || !cairn_get_bytes(env, argv[2], "value", &data, &len)) goto done;
  if (name[0] == '\0') {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "name must be a non-empty string");
    goto done;
  }
  if (lsetxattr(path, name, len ? (const void *)data : "", len, 0) != 0) {
    cairn_throw_errno(env, errno, "lsetxattr", path);
    goto done;
  }
  napi_get_undefined(env, &result);
done:
  free(path);
  free(name);
  return result;
}

/*
 * Sets the permission bits exactly (mknod/mkfifo apply the umask) without following a symlink
 * that might have replaced the new node. fchmodat(AT_SYMLINK_NOFOLLOW) is emulated by the C
 * library through /proc; where that is unavailable, plain chmod on the just created node.
 */
static int set_perm(const char *path, mode_t perm) {
  if (fchmodat(AT_FDCWD, path, perm, AT_SYMLINK_NOFOLLOW) == 0) return 0;
  if (errno != ENOTSUP && errno != EOPNOTSUPP && errno != ENOSYS) return -1;
  return chmod(path, perm);
}

napi_value cairn_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char *path = NULL;
  int64_t mode = 0;
  uint64_t dev = 0;
  napi_value result = NULL;
  if (!cairn_args(env, info, 3, argv, NULL) || !cairn_get_path(env, argv[0], "path", &path)) return NULL;
  if (!cairn_get_int(env, argv[1], "mode", 0, 4294967295.0, &mode) || !cairn_get_u64(env, argv[2], "dev", &dev)) goto done;
  mode_t type = (mode_t)mode & S_IFMT;
  if (type != S_IFCHR && type != S_IFBLK) {
    cairn_throw_errno(env, EINVAL, "mknod", path);
    goto done;
  }
  if (mknod(path, type | ((mode_t)mode & 07777), (dev_t)dev) != 0) {
    cairn_throw_errno(env, errno, "mknod", path);
    goto done;
  }
  if (set_perm(path, (mode_t)mode & 07777) != 0) {
    cairn_throw_errno(env, errno, "chmod", path);
    goto done;
  }
  napi_get_undefined(env, &result);
done:
  free(path);
  return result;
}

napi_value cairn_mkfifo(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char *path = NULL;
  int64_t mode = 0;
  napi_value result = NULL;
  if (!cairn_args(env, info, 2, argv, NULL) || !cairn_get_path(env, argv[0], "path", &path)) return NULL;
  if (!cairn_get_int(env, argv[1], "mode", 0, 4294967295.0, &mode)) goto done;
  if (mkfifo(path, (mode_t)mode & 07777) != 0) {
    cairn_throw_errno(env, errno, "mkfifo", path);
    goto done;
  }
  if (set_perm(path, (mode_t)mode & 07777) != 0) {
    cairn_throw_errno(env, errno, "chmod", path);
    goto done;
  }
  napi_get_undefined(env, &result);
done:
  free(path);
  return result;
}

/* Nanoseconds since the epoch → timespec with 0 <= tv_nsec < 10^9 (floor division). */
struct timespec cairn_ns_to_timespec(int64_t ns) {
  int64_t sec = ns / 1000000000, rem = ns % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    sec -= 1;
  }
  struct timespec ts;
  ts.tv_sec = (time_t)sec;
  ts.tv_nsec = (long)rem;
  return ts;
}

napi_value cairn_utimens(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char *path = NULL;
  int64_t atime = 0, mtime = 0;
  int nofollow = 0;
  napi_value result = NULL;
  if (!cairn_args(env, info, 4, argv, NULL) || !cairn_get_path(env, argv[0], "path", &path)) return NULL;
  if (!cairn_get_i64(env, argv[1], "atimeNs", &atime) || !cairn_get_i64(env, argv[2], "mtimeNs", &mtime) ||
      !cairn_get_bool(env, argv[3], "nofollow", &nofollow)) {
    goto done;
  }
  struct timespec ts[2] = {cairn_ns_to_timespec(atime), cairn_ns_to_timespec(mtime)};
  if (utimensat(AT_FDCWD, path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0) != 0) {
    cairn_throw_errno(env, errno, "utimensat", path);
    goto done;
  }
  napi_get_undefined(env, &result);
done:
  free(path);
  return result;
}

/* The growing-buffer xattr helpers above, for the batch kernels (statbatch.c). */
ssize_t cairn_xattr_list(const char *path, char **buf, size_t *cap) { return list_names(path, buf, cap); }
ssize_t cairn_xattr_get(const char *path, const char *name, char **buf, size_t *cap) { return get_value(path, name, buf, cap); }
