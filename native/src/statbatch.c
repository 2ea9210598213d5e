/*
 * lstatBatch: the metadata of many directory entries (lstat, readlink for symlinks, extended
 * attributes for the rest) in one thread-pool job. Why: the archiver looks up every entry of the
 * tree; one libuv job per lstat (and a synchronous llistxattr per entry on the JavaScript thread)
 * cost ~30 µs of main-thread time each on the 2-core test VM (waking a pool thread is a futex and
 * an inter-processor interrupt), which bounded an unchanged incremental backup of 20,000 files.
 * Contract: native/README.md ("lstatBatch").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "statbatch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kpool.h"
#include "sys.h"
#include "util.h"

/* Values per entry in the result's BigInt64Array (see native/README.md). */
#define STRIDE 12

typedef struct {
  char *path;
  int err; /* errno of the failed call, 0 on success */
  const char *syscall;
  struct stat st;
  char *link; /* symlink target (not NUL-terminated) */
  size_t link_len;
  char *names; /* llistxattr result: NUL-separated names */
  size_t names_len;
  char **values; /* one per name (NULL: vanished since listed) */
  size_t *value_lens;
  size_t n_names;
  int xerr; /* extended attributes could not be read (the entry itself is fine) */
  const char *xsyscall;
} sb_entry;

typedef struct {
  napi_deferred deferred;
  int xattrs;
  size_t n;
  sb_entry *e;
} sb_job;

static void sb_free(sb_job *j) {
  for (size_t i = 0; i < j->n; i++) {
    sb_entry *e = &j->e[i];
    free(e->path);
    free(e->link);
    free(e->names);
    if (e->values != NULL) {
      for (size_t k = 0; k < e->n_names; k++) free(e->values[k]);
    }
    free(e->values);
    free(e->value_lens);
  }
  free(j->e);
  free(j);
}

static int no_xattrs(int err) { return err == ENOTSUP || err == ENODATA; }

static void read_link(sb_entry *e) {
  size_t cap = e->st.st_size > 0 ? (size_t)e->st.st_size + 1 : 256;
  for (;;) {
    char *buf = malloc(cap);
    if (buf == NULL) {
      e->err = ENOMEM;
      e->syscall = "readlink";
      return;
    }
    ssize_t n = readlink(e->path, buf, cap);
    if (n < 0) {
      e->err = errno;
      e->syscall = "readlink";
      free(buf);
      return;
    }
    if ((size_t)n < cap) {
      e->link = buf;
      e->link_len = (size_t)n;
      return;
    }
    free(buf); /* it grew since lstat: try again with more room */
    cap *= 2;
  }
}

static void read_xattrs(sb_entry *e) {
  size_t cap = 256;
  e->names = malloc(cap);
  if (e->names == NULL) {
    e->xerr = ENOMEM;
    e->xsyscall = "llistxattr";
    return;
  }
  ssize_t len = cairn_xattr_list(e->path, &e->names, &cap);
  if (len < 0) {
    if (!no_xattrs(errno)) {
      e->xerr = errno;
      e->xsyscall = "llistxattr";
    }
    return;
  }
  e->names_len = (size_t)len;
  size_t count = 0;
  for (size_t off = 0; off < e->names_len; off += strnlen(e->names + off, e->names_len - off) + 1) count++;
  if (count == 0) return;
  e->values = calloc(count, sizeof *e->values);
  e->value_lens = calloc(count, sizeof *e->value_lens);
  if (e->values == NULL || e->value_lens == NULL) {
    e->xerr = ENOMEM;
    e->xsyscall = "lgetxattr";
    return;
  }
  e->n_names = count;
  size_t k = 0;
  for (size_t off = 0; off < e->names_len && k < count; k++) {
    const char *name = e->names + off;
    size_t name_len = strnlen(name, e->names_len - off);
    off += name_len + 1;
    if (name_len == 0) continue;
    size_t vcap = 256;
    char *v = malloc(vcap);
    if (v == NULL) {
      e->xerr = ENOMEM;
      e->xsyscall = "lgetxattr";
      return;
    }
    ssize_t vlen = cairn_xattr_get(e->path, name, &v, &vcap);
    if (vlen < 0) {
      int err = errno;
      free(v);
      if (err == ENODATA) continue; /* removed since it was listed */
      e->xerr = err;
      e->xsyscall = "lgetxattr";
      return;
    }
    e->values[k] = v;
    e->value_lens[k] = (size_t)vlen;
  }
}

static void sb_execute(napi_env env, void *data) {
  (void)env;
  sb_job *j = data;
  for (size_t i = 0; i < j->n; i++) {
    sb_entry *e = &j->e[i];
    if (lstat(e->path, &e->st) != 0) {
      e->err = errno;
      e->syscall = "lstat";
      continue;
    }
    if (S_ISLNK(e->st.st_mode)) read_link(e);
    else if (j->xattrs) read_xattrs(e);
  }
}

static int64_t ns_of(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + (int64_t)t.tv_nsec; }

/* extra[i]: [linkTarget?, xattrs? (flat [name, value, ...]), xattrErrno?, xattrSyscall?] or undefined. */
static napi_value sb_extra(napi_env env, sb_entry *e) {
  napi_value arr, v, undef;
  if (napi_get_undefined(env, &undef) != napi_ok) return NULL;
  if (e->err != 0) {
    if (napi_create_string_utf8(env, e->syscall, NAPI_AUTO_LENGTH, &v) != napi_ok) return NULL;
    return v;
  }
  if (e->link == NULL && e->n_names == 0 && e->xerr == 0) return undef;
  if (napi_create_array_with_length(env, 4, &arr) != napi_ok) return NULL;
  if (e->link != NULL) {
    if (napi_create_buffer_copy(env, e->link_len, e->link, NULL, &v) != napi_ok || napi_set_element(env, arr, 0, v) != napi_ok) return NULL;
  }
  if (e->n_names > 0) {
    napi_value list;
    uint32_t idx = 0;
    if (napi_create_array(env, &list) != napi_ok) return NULL;
    size_t off = 0;
    for (size_t k = 0; k < e->n_names && off < e->names_len; k++) {
      const char *name = e->names + off;
      size_t name_len = strnlen(name, e->names_len - off);
      off += name_len + 1;
      if (e->values[k] == NULL) continue;
      napi_value jn, jv;
      if (napi_create_string_utf8(env, name, name_len, &jn) != napi_ok ||
          napi_create_buffer_copy(env, e->value_lens[k], e->value_lens[k] ? e->values[k] : "", NULL, &jv) != napi_ok ||
          napi_set_element(env, list, idx++, jn) != napi_ok || napi_set_element(env, list, idx++, jv) != napi_ok) {
        return NULL;
      }
    }
    if (napi_set_element(env, arr, 1, list) != napi_ok) return NULL;
  }
  if (e->xerr != 0) {
    if (napi_create_string_utf8(env, cairn_errno_name(e->xerr), NAPI_AUTO_LENGTH, &v) != napi_ok || napi_set_element(env, arr, 2, v) != napi_ok ||
        napi_create_string_utf8(env, e->xsyscall, NAPI_AUTO_LENGTH, &v) != napi_ok || napi_set_element(env, arr, 3, v) != napi_ok) {
      return NULL;
    }
  }
  return arr;
}

static napi_value sb_result(napi_env env, sb_job *j) {
  napi_value ab, nums, extra, obj;
  void *raw = NULL;
  if (napi_create_arraybuffer(env, j->n * STRIDE * sizeof(int64_t), &raw, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_bigint64_array, j->n * STRIDE, ab, 0, &nums) != napi_ok ||
      napi_create_array_with_length(env, j->n, &extra) != napi_ok || napi_create_object(env, &obj) != napi_ok) {
    return NULL;
  }
  int64_t *out = raw;
  for (size_t i = 0; i < j->n; i++) {
    sb_entry *e = &j->e[i];
    int64_t *r = out + i * STRIDE;
    memset(r, 0, STRIDE * sizeof *r);
    if (e->err != 0) {
      r[0] = e->err;
    } else {
      const struct stat *s = &e->st;
      r[1] = s->st_mode;
      r[2] = s->st_uid;
      r[3] = s->st_gid;
      r[4] = (int64_t)s->st_ino;
      r[5] = (int64_t)s->st_dev;
      r[6] = (int64_t)s->st_rdev;
      r[7] = (int64_t)s->st_nlink;
      r[8] = (int64_t)s->st_size;
      r[9] = ns_of(s->st_atim);
      r[10] = ns_of(s->st_mtim);
      r[11] = ns_of(s->st_ctim);
    }
    napi_value x = sb_extra(env, e);
    if (x == NULL || napi_set_element(env, extra, (uint32_t)i, x) != napi_ok) return NULL;
  }
  if (napi_set_named_property(env, obj, "nums", nums) != napi_ok || napi_set_named_property(env, obj, "extra", extra) != napi_ok) return NULL;
  return obj;
}

static void sb_complete(napi_env env, napi_status status, void *data) {
  sb_job *j = data;
  napi_value result = status == napi_ok ? sb_result(env, j) : NULL;
  if (result != NULL) {
    napi_resolve_deferred(env, j->deferred, result);
  } else {
    napi_value err = NULL;
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &err);
    if (err == NULL) {
      napi_value code, msg;
      napi_create_string_utf8(env, "ERR_CAIRN_INTERNAL", NAPI_AUTO_LENGTH, &code);
      napi_create_string_utf8(env, "lstatBatch: could not create the result", NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, code, msg, &err);
    }
    napi_reject_deferred(env, j->deferred, err);
  }
  sb_free(j);
}

/* lstatBatch(paths: Array<string | Uint8Array>, xattrs: boolean): Promise<{nums: BigInt64Array, extra: unknown[]}> */
napi_value cairn_js_lstat_batch(napi_env env, napi_callback_info info) {
  napi_value argv[2], promise;
  if (!cairn_args(env, info, 2, argv, NULL)) return NULL;
  bool is_array = false;
  uint32_t n = 0;
  int xattrs = 0;
  if (napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[0], &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "paths must be an array");
    return NULL;
  }
  if (!cairn_get_bool(env, argv[1], "xattrs", &xattrs)) return NULL;
  sb_job *j = calloc(1, sizeof *j);
  if (j == NULL || (n > 0 && (j->e = calloc(n, sizeof *j->e)) == NULL)) {
    free(j);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  j->xattrs = xattrs;
  for (uint32_t i = 0; i < n; i++) {
    napi_value p;
    j->n = i + 1;
    if (napi_get_element(env, argv[0], i, &p) != napi_ok) {
      sb_free(j);
      return cairn_napi_failed(env), NULL;
    }
    if (!cairn_get_path(env, p, "path", &j->e[i].path)) {
      sb_free(j);
      return NULL;
    }
  }
  j->n = n;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    sb_free(j);
    return cairn_napi_failed(env), NULL;
  }
  if (!cairn_queue_job(env, CAIRN_LANE_IO, "cairn:lstatBatch", sb_execute, sb_complete, j)) {
    sb_free(j);
    return NULL;
  }
  return promise;
}
