/*
 * The addon's own threads for CPU-bound kernels, and the one place that queues asynchronous jobs.
 *
 * Why not libuv's thread pool for the kernels as well: on libuv's pool the JavaScript side had to
 * admit at most one kernel job per CPU (so that file reads always found a free pool thread), and
 * a job's slot was only free again once its completion had run on the JavaScript thread. Measured
 * on the 2-core test VM (backup of one 512 MiB file): both slots were taken 90 % of the time with
 * 3.2 jobs waiting on average, yet the pool threads used one core between them; the rest of each
 * slot's time went to the job waiting for its completion to be picked up by a busy JavaScript
 * thread, and to the next job's trip through libuv's queue. Here a kernel thread takes the next
 * job as soon as it finishes one, the JavaScript thread only collects results, and reads and
 * writes keep libuv's pool to themselves.
 *
 * Completions reach the JavaScript thread through a thread-safe function per environment (one per
 * JavaScript thread, so it lives in thread-local storage): Node wakes the loop, runs call_js in a
 * callback scope (promise continuations run right after), keeps the loop alive while referenced
 * and tears it down with the environment. Jobs in flight reference it (loop kept alive); with
 * none, it is unreferenced so that it never holds a process open.
 */
#include "kpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef struct kenv kenv;

typedef struct ktask {
  struct ktask *next;
  kenv *owner;
  napi_env env;
  napi_async_execute_callback execute;
  napi_async_complete_callback complete;
  void *data;
} ktask;

/* One JavaScript thread's end of the pool. */
struct kenv {
  napi_threadsafe_function tsfn;
  /* held by kernel threads while they hand a result over; closed once the environment is gone */
  pthread_mutex_t mu;
  int closed;
  /* JavaScript thread only */
  size_t inflight;
};

static pthread_mutex_t queue_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cv = PTHREAD_COND_INITIALIZER;
static ktask *queue_head, *queue_tail;
static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
static int threads_started;
static __thread kenv *thread_env;

/* Threads the CPU lane runs (CAIRN_KERNEL_THREADS, else the CPUs this process may use). */
static int kernel_threads(void) {
  const char *s = getenv("CAIRN_KERNEL_THREADS");
  if (s != NULL && *s >= '0' && *s <= '9') { /* digits only, as the loader reads it */
    char *end;
    long n = strtol(s, &end, 10);
    if (*end == '\0' && n >= 1 && n <= 256) return (int)n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n;
  }
  return 1;
}

/*
 * Our threads give way to the JavaScript thread: each kernel thread, and each libuv pool thread
 * the first time it runs one of our jobs, switches itself to SCHED_BATCH (same priority, but a
 * thread that wakes up does not preempt the running one). Why: on two cores the JavaScript thread,
 * which feeds every pipeline, was preempted by the very threads it had just handed work to — in a
 * backup of 20,000 small files it was switched out involuntarily ~2,600 times and spent ~0.4 s
 * runnable but waiting; with SCHED_BATCH ~400–1,000 times and ~0.1 s less, the backup 1.9–2.2 s
 * instead of 2.1–2.7 s (pairs of runs). CAIRN_THREAD_SCHED=normal keeps the default policy.
 */
static pthread_once_t sched_once = PTHREAD_ONCE_INIT;
static int sched_batch;

/* On the JavaScript thread, before the first job is queued (getenv is not safe beside setenv). */
static void read_sched_choice(void) {
  const char *m = getenv("CAIRN_THREAD_SCHED");
  sched_batch = m == NULL || strcmp(m, "normal") != 0;
}

/* On a pool or kernel thread: applies the choice once per thread. */
static void yield_to_js_thread(void) {
  static __thread int done;
  if (done) return;
  done = 1;
#ifdef SCHED_BATCH
  if (sched_batch) {
    struct sched_param sp = {0};
    (void)sched_setscheduler(0, SCHED_BATCH, &sp); /* best effort: on failure nothing changes */
  }
#endif
}

static void *kernel_thread(void *arg) {
  (void)arg;
  yield_to_js_thread();
  for (;;) {
    pthread_mutex_lock(&queue_mu);
    while (queue_head == NULL) pthread_cond_wait(&queue_cv, &queue_mu);
    ktask *t = queue_head;
    queue_head = t->next;
    if (queue_head == NULL) queue_tail = NULL;
    pthread_mutex_unlock(&queue_mu);

    t->execute(t->env, t->data);

    kenv *e = t->owner;
    pthread_mutex_lock(&e->mu);
    int handed = !e->closed && napi_call_threadsafe_function(e->tsfn, t, napi_tsfn_nonblocking) == napi_ok;
    pthread_mutex_unlock(&e->mu);
    /* not handed over: the environment is going away, and with it whatever the job belonged to */
    if (!handed) free(t);
  }
  return NULL;
}

static void start_threads(void) {
  int n = kernel_threads();
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (int i = 0; i < n; i++) {
    pthread_t tid;
    if (pthread_create(&tid, &attr, kernel_thread, NULL) == 0) threads_started++;
  }
  pthread_attr_destroy(&attr);
}

/* On the JavaScript thread: a finished job's completion (env NULL: the environment is being torn down). */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  kenv *e = context;
  ktask *t = data;
  if (env == NULL) {
    free(t);
    return;
  }
  t->complete(env, napi_ok, t->data);
  free(t);
  if (--e->inflight == 0) napi_unref_threadsafe_function(env, e->tsfn);
}

static void env_gone(napi_env env, void *finalize_data, void *hint) {
  (void)env;
  (void)hint;
  kenv *e = finalize_data;
  pthread_mutex_lock(&e->mu);
  e->closed = 1;
  pthread_mutex_unlock(&e->mu);
  /* e itself stays allocated: a kernel thread may still be about to look at `closed` */
  if (thread_env == e) thread_env = NULL;
}

static kenv *env_for(napi_env env) {
  if (thread_env != NULL) return thread_env;
  kenv *e = calloc(1, sizeof *e);
  if (e == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  napi_value name;
  if (pthread_mutex_init(&e->mu, NULL) != 0) {
    free(e);
    napi_throw_error(env, "ERR_CAIRN_INTERNAL", "could not create a mutex");
    return NULL;
  }
  if (napi_create_string_utf8(env, "cairn:kernel", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, e, env_gone, e, call_js, &e->tsfn) != napi_ok) {
    pthread_mutex_destroy(&e->mu);
    free(e);
    cairn_napi_failed(env);
    return NULL;
  }
  napi_unref_threadsafe_function(env, e->tsfn);
  thread_env = e;
  return e;
}

static int queue_cpu(napi_env env, int first, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data) {
  pthread_once(&threads_once, start_threads);
  if (threads_started == 0) {
    napi_throw_error(env, "ERR_CAIRN_INTERNAL", "could not start the kernel threads");
    return 0;
  }
  kenv *e = env_for(env);
  if (e == NULL) return 0;
  ktask *t = malloc(sizeof *t);
  if (t == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return 0;
  }
  *t = (ktask){NULL, e, env, execute, complete, data};
  if (e->inflight++ == 0 && napi_ref_threadsafe_function(env, e->tsfn) != napi_ok) {
    e->inflight--;
    free(t);
    return cairn_napi_failed(env);
  }
  pthread_mutex_lock(&queue_mu);
  if (first) {
    t->next = queue_head;
    queue_head = t;
    if (queue_tail == NULL) queue_tail = t;
  } else {
    if (queue_tail != NULL) queue_tail->next = t;
    else queue_head = t;
    queue_tail = t;
  }
  pthread_cond_signal(&queue_cv);
  pthread_mutex_unlock(&queue_mu);
  return 1;
}

/* I/O jobs: napi_async_work, deleted after its completion. */
typedef struct {
  napi_async_work work;
  napi_async_execute_callback execute;
  napi_async_complete_callback complete;
  void *data;
} io_job;

static void io_execute(napi_env env, void *p) {
  io_job *j = p;
  yield_to_js_thread();
  j->execute(env, j->data);
}

static void io_complete(napi_env env, napi_status status, void *p) {
  io_job *j = p;
  j->complete(env, status, j->data);
  napi_delete_async_work(env, j->work);
  free(j);
}

static int queue_io(napi_env env, const char *name, napi_async_execute_callback execute, napi_async_complete_callback complete, void *data) {
  io_job *j = calloc(1, sizeof *j);
  if (j == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return 0;
  }
  *j = (io_job){NULL, execute, complete, data};
  napi_value resource_name;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, io_execute, io_complete, j, &j->work) != napi_ok) {
    free(j);
    return cairn_napi_failed(env);
  }
  if (napi_queue_async_work(env, j->work) != napi_ok) {
    napi_delete_async_work(env, j->work);
    free(j);
    return cairn_napi_failed(env);
  }
  return 1;
}

int cairn_queue_job(napi_env env, cairn_lane lane, const char *name, napi_async_execute_callback execute,
                    napi_async_complete_callback complete, void *data) {
  pthread_once(&sched_once, read_sched_choice);
  if (lane == CAIRN_LANE_IO) return queue_io(env, name, execute, complete, data);
  return queue_cpu(env, lane == CAIRN_LANE_CPU_FIRST, execute, complete, data);
}
