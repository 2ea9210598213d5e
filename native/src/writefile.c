/*
 * restoreFile / finishFile: the restorer's per-file work in one thread-pool job each.
 *
 * Restoring a small file with node:fs costs about eight round trips between the JavaScript thread
 * and libuv's pool (lstat, open, write, close, lstat, lchown, lstat, chmod) plus utimensat and
 * lsetxattr on the JavaScript thread; each round trip is a pair of thread wake-ups, which
 * dominated a 20k-file restore. restic makes the same system calls, but on its own threads.
 * restoreFile does them all in one job — open (never following a final symlink), check, write,
 * metadata on the descriptor, close — and finishFile applies the metadata to a file that was
 * written in several pieces through an already open descriptor. Contract: native/README.md
 * ("restoreFile", "finishFile").
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "writefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "kpool.h"
#include "sys.h"
#include "util.h"

/* Granularity of holes (--sparse): all-zero blocks of this size, aligned to file offsets, are skipped. */
#define SPARSE_BLOCK 4096

enum { WF_OK = 0, WF_ERRNO, WF_NOT_REGULAR, WF_LINKED };

typedef struct {
  char *name;
  uint8_t *value;
  size_t len;
} wf_xattr;

typedef struct {
  napi_deferred deferred;
  napi_ref data_ref;
  /* restoreFile: the path (raw bytes); finishFile: NULL and fd */
  char *path;
  int fd;
  const uint8_t *data;
  size_t len;
  int truncate, sparse;
  /* metadata */
  uint32_t mode;
  int chown;
  uint32_t uid, gid;
  int64_t atime, mtime;
  size_t nx;
  wf_xattr *x;
  /* results */
  int kind;
  int err;
  const char *syscall;
  int chown_err; /* 0, or the errno of a tolerated fchown failure (EPERM/EACCES/EINVAL) */
  int *xattr_err; /* per attribute: 0 or the errno of fsetxattr */
} wf_job;

static int fail(wf_job *j, int err, const char *syscall) {
  j->kind = WF_ERRNO;
  j->err = err;
  j->syscall = syscall;
  return -1;
}

/* Writes all of p at off (pwrite loops over short writes and EINTR). */
static int write_all(int fd, const uint8_t *p, size_t n, off_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

static int all_zero(const uint8_t *p, size_t n) {
  return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/*
 * Writes data at offset 0 of a file that is empty: every run of blocks that are not all zero with
 * one pwrite, then (when the data ends in zeros) ftruncate to the full length, leaving holes.
 */
static int write_sparse(wf_job *j, int fd) {
  const size_t none = (size_t)-1;
  size_t run = none;
  for (size_t i = 0; i < j->len; i += SPARSE_BLOCK) {
    size_t n = j->len - i < SPARSE_BLOCK ? j->len - i : SPARSE_BLOCK;
    if (all_zero(j->data + i, n)) {
      if (run != none) {
        if (write_all(fd, j->data + run, i - run, (off_t)run) != 0) return fail(j, errno, "write");
        run = none;
      }
    } else if (run == none) {
      run = i;
    }
  }
  if (run != none) {
    if (write_all(fd, j->data + run, j->len - run, (off_t)run) != 0) return fail(j, errno, "write");
  } else if (j->len > 0 && ftruncate(fd, (off_t)j->len) != 0) {
    return fail(j, errno, "ftruncate");
  }
  return 0;
}

/* fchown (tolerating EPERM/EACCES/EINVAL), fchmod, fsetxattr (failures recorded), futimens. */
static int apply_meta(wf_job *j, int fd) {
  if (j->chown && fchown(fd, (uid_t)j->uid, (gid_t)j->gid) != 0) {
    int e = errno;
    if (e != EPERM && e != EACCES && e != EINVAL) return fail(j, e, "fchown");
    j->chown_err = e;
  }
  /* After fchown: changing the owner clears setuid/setgid (also for root since Linux 2.2.13). */
  if (fchmod(fd, (mode_t)(j->mode & 07777)) != 0) return fail(j, errno, "fchmod");
  for (size_t i = 0; i < j->nx; i++) {
    static const char empty[1] = {0};
    const void *v = j->x[i].len > 0 ? (const void *)j->x[i].value : (const void *)empty;
    if (fsetxattr(fd, j->x[i].name, v, j->x[i].len, 0) != 0) j->xattr_err[i] = errno;
  }
  /* Last: nothing after it may change the times. */
  struct timespec ts[2] = {cairn_ns_to_timespec(j->atime), cairn_ns_to_timespec(j->mtime)};
  if (futimens(fd, ts) != 0) return fail(j, errno, "futimens");
  return 0;
}

static void restore_execute(napi_env env, void *data) {
  (void)env;
  wf_job *j = data;
  /*
   * Without O_TRUNC even when replacing: the existing file is truncated only after fstat has
   * shown that it is a regular file with no other hard links, so that a file which gained a link
   * (or a FIFO/device that appeared) since the caller looked is never clobbered.
   */
  int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (j->truncate ? 0 : O_EXCL);
  int fd = open(j->path, flags, 0600);
  if (fd < 0) {
    fail(j, errno, "open");
    return;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    fail(j, errno, "fstat");
  } else if (!S_ISREG(st.st_mode)) {
    j->kind = WF_NOT_REGULAR;
  } else if (j->truncate && st.st_nlink != 1) {
    j->kind = WF_LINKED;
  } else if (j->truncate && st.st_size != 0 && ftruncate(fd, 0) != 0) {
    fail(j, errno, "ftruncate");
  } else if (j->sparse) {
    if (write_sparse(j, fd) == 0) apply_meta(j, fd);
  } else if (write_all(fd, j->data, j->len, 0) != 0) {
    fail(j, errno, "write");
  } else {
    apply_meta(j, fd);
  }
  if (close(fd) != 0 && j->kind == WF_OK && errno != EINTR) fail(j, errno, "close");
}

static void finish_execute(napi_env env, void *data) {
  (void)env;
  wf_job *j = data;
  apply_meta(j, j->fd);
}

static void wf_free(napi_env env, wf_job *j) {
  if (j->data_ref != NULL) napi_delete_reference(env, j->data_ref);
  for (size_t i = 0; i < j->nx; i++) {
    free(j->x[i].name);
    free(j->x[i].value);
  }
  free(j->x);
  free(j->xattr_err);
  free(j->path);
  free(j);
}

static int set_str(napi_env env, napi_value obj, const char *key, const char *s) {
  napi_value v;
  return napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

/* { syscall, code, errno[, name] } */
static int push_warning(napi_env env, napi_value arr, uint32_t *n, const char *syscall, int err, const char *name) {
  napi_value w, v;
  if (napi_create_object(env, &w) != napi_ok || !set_str(env, w, "syscall", syscall) || !set_str(env, w, "code", cairn_errno_name(err)) ||
      napi_create_int32(env, -err, &v) != napi_ok || napi_set_named_property(env, w, "errno", v) != napi_ok) {
    return 0;
  }
  if (name != NULL && !set_str(env, w, "name", name)) return 0;
  return napi_set_element(env, arr, (*n)++, w) == napi_ok;
}

/* { warnings: [...] } */
static napi_value wf_result(napi_env env, wf_job *j) {
  napi_value obj, arr;
  uint32_t n = 0;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_array(env, &arr) != napi_ok) return NULL;
  if (j->chown_err != 0 && !push_warning(env, arr, &n, "fchown", j->chown_err, NULL)) return NULL;
  for (size_t i = 0; i < j->nx; i++) {
    if (j->xattr_err[i] != 0 && !push_warning(env, arr, &n, "fsetxattr", j->xattr_err[i], j->x[i].name)) return NULL;
  }
  if (napi_set_named_property(env, obj, "warnings", arr) != napi_ok) return NULL;
  return obj;
}

/* The outcome of a finished job: its result, or (*is_error set) its Error. */
static napi_value wf_outcome(napi_env env, napi_status status, wf_job *j, int *is_error) {
  napi_value result = NULL, error = NULL;
  const char *shown = j->path != NULL ? j->path : "";
  if (status != napi_ok) {
    error = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "job cancelled", shown);
  } else {
    switch (j->kind) {
      case WF_OK: result = wf_result(env, j); break;
      case WF_ERRNO: error = cairn_errno_error(env, j->err, j->syscall, j->path); break;
      case WF_NOT_REGULAR: error = cairn_coded_error(env, "ERR_CAIRN_NOT_REGULAR", "is not a regular file", shown); break;
      case WF_LINKED: error = cairn_coded_error(env, "ERR_CAIRN_LINKED", "has other hard links", shown); break;
      default: error = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "unexpected job state", shown); break;
    }
  }
  if (result == NULL && error == NULL) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &error);
    if (error == NULL) error = cairn_coded_error(env, "ERR_CAIRN_INTERNAL", "could not create the result", shown);
  }
  *is_error = error != NULL;
  return error != NULL ? error : result;
}

static void wf_complete(napi_env env, napi_status status, void *data) {
  wf_job *j = data;
  int is_error = 0;
  napi_value v = wf_outcome(env, status, j, &is_error);
  if (is_error) napi_reject_deferred(env, j->deferred, v);
  else napi_resolve_deferred(env, j->deferred, v);
  wf_free(env, j);
}

/* The metadata arguments shared by both functions: mode, chown, uid, gid, atimeNs, mtimeNs, xattrs. */
static int get_meta(napi_env env, napi_value *argv, wf_job *j) {
  int64_t mode = 0, uid = 0, gid = 0;
  if (!cairn_get_int(env, argv[0], "mode", 0, 4294967295.0, &mode) || !cairn_get_bool(env, argv[1], "chown", &j->chown)) return 0;
  if (j->chown && (!cairn_get_int(env, argv[2], "uid", 0, 4294967295.0, &uid) || !cairn_get_int(env, argv[3], "gid", 0, 4294967295.0, &gid))) {
    return 0;
  }
  if (!cairn_get_i64(env, argv[4], "atimeNs", &j->atime) || !cairn_get_i64(env, argv[5], "mtimeNs", &j->mtime)) return 0;
  j->mode = (uint32_t)mode;
  j->uid = (uint32_t)uid;
  j->gid = (uint32_t)gid;
  napi_valuetype t;
  if (napi_typeof(env, argv[6], &t) != napi_ok) return cairn_napi_failed(env);
  if (t == napi_undefined || t == napi_null) return 1;
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, argv[6], &is_array) != napi_ok) return cairn_napi_failed(env);
  if (!is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "xattrs must be an array of { name, value }");
    return 0;
  }
  if (napi_get_array_length(env, argv[6], &n) != napi_ok) return cairn_napi_failed(env);
  if (n == 0) return 1;
  j->x = calloc(n, sizeof *j->x);
  j->xattr_err = calloc(n, sizeof *j->xattr_err);
  if (j->x == NULL || j->xattr_err == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return 0;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value e, name, value;
    napi_valuetype te;
    if (napi_get_element(env, argv[6], i, &e) != napi_ok || napi_typeof(env, e, &te) != napi_ok) return cairn_napi_failed(env);
    if (te != napi_object) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "xattrs must be an array of { name, value }");
      return 0;
    }
    if (napi_get_named_property(env, e, "name", &name) != napi_ok || napi_get_named_property(env, e, "value", &value) != napi_ok) {
      return cairn_napi_failed(env);
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    wf_xattr *x = &j->x[j->nx];
    if (!cairn_get_string(env, name, "xattr name", &x->name)) return 0;
    j->nx++; /* owns x->name from here on (freed by wf_free) */
    if (x->name[0] == '\0') {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "xattr name must be a non-empty string");
      return 0;
    }
    if (!cairn_get_bytes(env, value, "xattr value", &bytes, &len)) return 0;
    if (len > 0) {
      x->value = malloc(len);
      if (x->value == NULL) {
        napi_throw_error(env, "ENOMEM", "out of memory");
        return 0;
      }
      memcpy(x->value, bytes, len);
    }
    x->len = len;
  }
  return 1;
}

static napi_value queue(napi_env env, wf_job *j, const char *name, napi_async_execute_callback execute) {
  napi_value promise;
  if (napi_create_promise(env, &j->deferred, &promise) != napi_ok) {
    wf_free(env, j);
    cairn_napi_failed(env);
    return NULL;
  }
  if (!cairn_queue_job(env, CAIRN_LANE_IO, name, execute, wf_complete, j)) {
    /* the promise stays pending forever, but nobody sees it: the call throws */
    wf_free(env, j);
    return NULL;
  }
  return promise;
}

/*
 * restoreFile(path, data: Uint8Array | null, truncate: boolean, sparse: boolean,
 *             mode, chown: boolean, uid, gid, atimeNs: bigint, mtimeNs: bigint, xattrs?)
 *   : Promise<{ warnings }>
 */
/* Parses restoreFile's 11 arguments into a new job (NULL with an exception pending). */
static wf_job *wf_parse_restore(napi_env env, napi_value *argv) {
  wf_job *j = cairn_zalloc(env, sizeof *j);
  if (j == NULL) return NULL;
  j->fd = -1;
  napi_valuetype td;
  if (!cairn_get_path(env, argv[0], "path", &j->path) || napi_typeof(env, argv[1], &td) != napi_ok) {
    wf_free(env, j);
    return NULL;
  }
  if (td != napi_null && td != napi_undefined) {
    uint8_t *bytes = NULL;
    if (!cairn_get_bytes(env, argv[1], "data", &bytes, &j->len)) {
      wf_free(env, j);
      return NULL;
    }
    j->data = bytes;
    /* Referenced until the job completes: the garbage collector must not free it meanwhile. */
    if (j->len > 0 && napi_create_reference(env, argv[1], 1, &j->data_ref) != napi_ok) {
      wf_free(env, j);
      cairn_napi_failed(env);
      return NULL;
    }
  }
  if (!cairn_get_bool(env, argv[2], "truncate", &j->truncate) || !cairn_get_bool(env, argv[3], "sparse", &j->sparse) ||
      !get_meta(env, argv + 4, j)) {
    wf_free(env, j);
    return NULL;
  }
  return j;
}

napi_value cairn_js_restore_file(napi_env env, napi_callback_info info) {
  napi_value argv[11];
  if (!cairn_args(env, info, 11, argv, NULL)) return NULL;
  wf_job *j = wf_parse_restore(env, argv);
  if (j == NULL) return NULL;
  return queue(env, j, "cairn:restoreFile", restore_execute);
}

/* restoreFileBatch(requests: Array<restoreFile's 11 arguments>): Promise<Array<{ warnings } | Error>> (batch.h) */
static void *wf_batch_parse(napi_env env, napi_value *args) { return wf_parse_restore(env, args); }
static napi_value wf_batch_outcome(napi_env env, napi_status status, void *j, int *is_error) { return wf_outcome(env, status, j, is_error); }
static void wf_batch_destroy(napi_env env, void *j) { wf_free(env, j); }
static const cairn_batch_kind restore_file_batch = {"cairn:restoreFileBatch", CAIRN_LANE_IO, 11, wf_batch_parse, restore_execute, wf_batch_outcome, wf_batch_destroy};

napi_value cairn_js_restore_file_batch(napi_env env, napi_callback_info info) { return cairn_batch_call(env, info, &restore_file_batch); }

/* ---- a restoreFile job inside another batch kind (writefile.h) ---------------------------- */

void *cairn_restore_job_parse(napi_env env, napi_value *args) { return wf_parse_restore(env, args); }

void cairn_restore_job_run(void *data, const uint8_t *bytes, size_t len) {
  wf_job *j = data;
  j->data = bytes;
  j->len = len;
  restore_execute(NULL, j);
}

napi_value cairn_restore_job_outcome(napi_env env, napi_status status, void *data, int *is_error) { return wf_outcome(env, status, data, is_error); }

void cairn_restore_job_free(napi_env env, void *data) { wf_free(env, data); }

/* finishFile(fd, mode, chown: boolean, uid, gid, atimeNs: bigint, mtimeNs: bigint, xattrs?): Promise<{ warnings }> */
napi_value cairn_js_finish_file(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!cairn_args(env, info, 8, argv, NULL)) return NULL;
  wf_job *j = cairn_zalloc(env, sizeof *j);
  if (j == NULL) return NULL;
  int64_t fd = -1;
  if (!cairn_get_int(env, argv[0], "fd", 0, 2147483647.0, &fd) || !get_meta(env, argv + 1, j)) {
    wf_free(env, j);
    return NULL;
  }
  j->fd = (int)fd;
  return queue(env, j, "cairn:finishFile", finish_execute);
}

/* ---- finishDirBatch ------------------------------------------------------------------------- */

/*
 * A directory's metadata by path in one job: open(O_DIRECTORY | O_NOFOLLOW) — a symlink or
 * anything else but a directory at the name fails with ENOTDIR, so nothing is followed — then
 * finishFile's steps on the descriptor, then close. The restore applies the metadata of its
 * directories last, up to 32 at a time; through node:fs that was four requests each.
 */
static void dir_execute(napi_env env, void *data) {
  (void)env;
  wf_job *j = data;
  int fd = open(j->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    fail(j, errno, "open");
    return;
  }
  apply_meta(j, fd);
  close(fd);
}

/* (path, mode, chown: boolean, uid, gid, atimeNs: bigint, mtimeNs: bigint, xattrs?) */
static void *dir_parse(napi_env env, napi_value *args) {
  wf_job *j = cairn_zalloc(env, sizeof *j);
  if (j == NULL) return NULL;
  j->fd = -1;
  if (!cairn_get_path(env, args[0], "path", &j->path) || !get_meta(env, args + 1, j)) {
    wf_free(env, j);
    return NULL;
  }
  return j;
}

static const cairn_batch_kind finish_dir_batch = {"cairn:finishDirBatch", CAIRN_LANE_IO, 8, dir_parse, dir_execute, wf_batch_outcome, wf_batch_destroy};

/* finishDirBatch(requests: Array<[path, mode, chown, uid, gid, atimeNs, mtimeNs, xattrs?]>): Promise<Array<{ warnings } | Error>> */
napi_value cairn_js_finish_dir_batch(napi_env env, napi_callback_info info) { return cairn_batch_call(env, info, &finish_dir_batch); }

