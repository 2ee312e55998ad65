/*
 * threadpool.c -- the persistent pool behind sp_parallel_for.
 *
 * Kernels call sp_parallel_for constantly, often on small tensors, so the
 * common path must cost a few microseconds: no allocation, no thread
 * creation, no system call when the workers are awake.  The pool is made on
 * the first parallel call with nthreads-1 worker threads; the calling thread
 * is the remaining one and always runs chunks itself.
 *
 * One job at a time.  A job is [0, n) cut into `nchunks` chunks of at least
 * `grain` iterations (up to 4 per thread, so a thread slowed by the machine's
 * other load does not hold up the rest); threads claim chunks with an atomic
 * counter.  Only workers 1..nactive (nactive = min(workers, nchunks-1)) take
 * part, the rest stay asleep.  The job is published by one 64-bit atomic
 * word, generation << 16 | nactive, so a worker reads "is there new work and
 * am I in it" in one load; the job's other fields are written before that
 * store (release) and not touched again until every participant has checked
 * out through `pending`, so a late worker can never see a half-written job.
 *
 * Waiting is spin-then-sleep on both sides: workers spin about 50 us for the
 * next job (kernels come in bursts) before sleeping on a condition variable,
 * and the caller spins on `pending` before sleeping.  Lost wake-ups are ruled
 * out Dekker-style: the sleeper announces itself (sleepers / caller_sleeping,
 * seq_cst) and re-checks the condition under the mutex; the waker publishes
 * (seq_cst) and then looks for sleepers, signalling under the same mutex.
 *
 * Several user threads: the pool serves one caller at a time.  A caller that
 * finds the pool busy (pthread_mutex_trylock fails) runs its whole loop
 * inline on its own thread instead of waiting, so concurrent callers never
 * deadlock and never see each other's chunks.  Consequently sp_thread_index
 * is unique only among the threads of one sp_parallel_for: per-thread
 * scratch must belong to the call (sized by sp_get_num_threads() when the
 * call starts), never be a global array shared across calls.  Calls from
 * inside a task run inline (no nested parallelism).
 *
 * sp_set_num_threads only records the wish; the pool is rebuilt to that size
 * by the next parallel call, under the pool lock, so resizing can never pull
 * threads out from under a running job.  Do not resize while other threads
 * are running kernels (their scratch was sized for the old count).
 *
 * Shutdown: an atexit handler stops and joins the workers, so leak checkers
 * see nothing; a forked child forgets the parent's pool (its threads do not
 * exist there) and makes a fresh one on demand.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define core_cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define core_cpu_relax() __asm__ __volatile__("yield")
#else
#define core_cpu_relax() ((void)0)
#endif

#define CHUNKS_PER_THREAD 4
#define WORKER_SPIN_NS 50000  /* how long an idle worker waits awake */
#define CALLER_SPIN_NS 200000 /* how long the caller waits awake for stragglers */

typedef struct core_pool {
    int nthreads; /* workers + the caller */
    pthread_t *threads;
    int nworkers;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers sleep here */
    pthread_cond_t done; /* the caller sleeps here */
    atomic_int sleepers;
    atomic_int caller_sleeping;
    atomic_int stop;

    /* the job: written by the caller before `word` is published */
    atomic_uint_fast64_t word; /* generation << 16 | nactive */
    sp_range_fn fn;
    void *ctx;
    int64_t n, nchunks;
    atomic_int_fast64_t next; /* next chunk to claim */
    atomic_int pending;       /* participants not yet checked out */
} core_pool;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static core_pool *pool;                                       /* under pool_lock */
static core_pool *pool_orphan; /* a forked child's dead pool, kept reachable */
static atomic_int want_threads; /* 0 until first read */
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static _Thread_local int tl_index;   /* 0 outside the pool */
static _Thread_local int tl_in_task; /* inside a chunk: nested calls run inline */

int core_num_threads_parse(const char *s, int ncpu) {
    if (ncpu < 1) ncpu = 1;
    if (ncpu > CORE_MAX_THREADS) ncpu = CORE_MAX_THREADS;
    if (!s) return ncpu;
    while (*s == ' ' || *s == '\t') s++;
    if (*s < '0' || *s > '9') return ncpu; /* also rejects "", "-3", "+3" */
    long v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (*s - '0');
        if (v > CORE_MAX_THREADS) return ncpu;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    if (*s != '\0' || v < 1) return ncpu;
    return (int)v;
}

static int core_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > CORE_MAX_THREADS ? CORE_MAX_THREADS : (int)n;
}

static int core_want_threads(void) {
    int n = atomic_load_explicit(&want_threads, memory_order_relaxed);
    if (n > 0) return n;
    n = core_num_threads_parse(getenv("SPORE_NUM_THREADS"), core_cpu_count());
    int expected = 0; /* a concurrent sp_set_num_threads wins */
    atomic_compare_exchange_strong(&want_threads, &expected, n);
    return atomic_load(&want_threads);
}

int sp_get_num_threads(void) { return core_want_threads(); }

sp_status sp_set_num_threads(int n) {
    if (n < 1 || n > CORE_MAX_THREADS)
        return sp_error(SP_ERR_ARG, "sp_set_num_threads: n must be in [1, %d], got %d",
                        CORE_MAX_THREADS, n);
    atomic_store(&want_threads, n);
    return SP_OK;
}

int sp_thread_index(void) { return tl_index; }

static int64_t core_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs chunks until none is left.  Chunk c covers [c*base + min(c, rem),
 * ...) so the sizes differ by at most one and nothing overflows. */
static void core_run_chunks(core_pool *p) {
    int64_t n = p->n, nchunks = p->nchunks;
    int64_t base = n / nchunks, rem = n % nchunks;
    for (;;) {
        int64_t c = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (c >= nchunks) break;
        int64_t b = c * base + (c < rem ? c : rem);
        int64_t e = b + base + (c < rem ? 1 : 0);
        p->fn(p->ctx, b, e);
    }
}

typedef struct {
    core_pool *p;
    int index;
} core_worker_arg;

static void *core_worker_main(void *arg_) {
    core_worker_arg arg = *(core_worker_arg *)arg_;
    free(arg_);
    core_pool *p = arg.p;
    tl_index = arg.index;
    tl_in_task = 1;
    uint64_t seen = 0; /* a new pool starts at generation 0; job 1 may already be posted */
    for (;;) {
        uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
        if ((w >> 16) == seen && !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            int64_t t0 = core_now_ns();
            for (int spins = 1;; spins++) {
                core_cpu_relax();
                w = atomic_load_explicit(&p->word, memory_order_acquire);
                if ((w >> 16) != seen) break;
                if ((spins & 63) == 0) {
                    if (atomic_load_explicit(&p->stop, memory_order_relaxed)) break;
                    if (core_now_ns() - t0 > WORKER_SPIN_NS) break;
                    sched_yield(); /* the machine may have fewer cores than threads */
                }
            }
            if ((w >> 16) == seen) {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (((w = atomic_load(&p->word)) >> 16) == seen && !atomic_load(&p->stop))
                    pthread_cond_wait(&p->wake, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
            }
        }
        if ((w >> 16) == seen) break; /* stop, with no new job */
        seen = w >> 16;
        if (arg.index > (int)(w & 0xffff)) continue; /* not needed for this job */
        core_run_chunks(p);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Stops and joins p's workers and frees it.  Caller holds pool_lock. */
static void core_pool_free(core_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

static void core_pool_atexit(void) {
    /* A job still running on another thread at exit keeps its pool: hanging
     * in exit would be worse than the threads the OS reclaims anyway. */
    if (pthread_mutex_trylock(&pool_lock) != 0) return;
    core_pool_free(pool);
    pool = NULL;
    pthread_mutex_unlock(&pool_lock);
}

static void core_pool_atfork_child(void) {
    /* The workers did not survive the fork and the locks may be held by
     * threads that are gone: forget everything, keep the memory reachable. */
    pool_orphan = pool;
    pool = NULL;
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&pool_lock, &fresh, sizeof fresh);
}

static void core_pool_once(void) {
    atexit(core_pool_atexit);
    pthread_atfork(NULL, NULL, core_pool_atfork_child);
}

/* A pool of nthreads (workers = nthreads-1).  If the OS refuses threads the
 * pool is smaller; NULL only when not even the struct could be allocated. */
static core_pool *core_pool_new(int nthreads) {
    core_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->word, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeping, 0);
    atomic_init(&p->stop, 0);
    for (int i = 0; i < nthreads - 1; i++) {
        core_worker_arg *a = malloc(sizeof *a);
        if (!a) break;
        a->p = p;
        a->index = i + 1;
        if (pthread_create(&p->threads[i], NULL, core_worker_main, a) != 0) {
            free(a);
            break;
        }
        p->nworkers++;
    }
    p->nthreads = p->nworkers + 1;
    return p;
}

static void core_run_inline(int64_t n, sp_range_fn fn, void *ctx) {
    int was = tl_in_task;
    tl_in_task = 1;
    fn(ctx, 0, n);
    tl_in_task = was;
}

void sp_parallel_for(int64_t n, int64_t grain, sp_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int nthreads = core_want_threads();
    if (n <= grain || nthreads == 1 || tl_in_task) {
        core_run_inline(n, fn, ctx);
        return;
    }
    if (pthread_mutex_trylock(&pool_lock) != 0) { /* another thread's job is running */
        core_run_inline(n, fn, ctx);
        return;
    }
    core_pool *p = pool;
    if (!p || p->nthreads != nthreads) {
        pthread_once(&pool_once, core_pool_once);
        core_pool_free(p);
        pool = p = core_pool_new(nthreads);
        if (!p) {
            pthread_mutex_unlock(&pool_lock);
            core_run_inline(n, fn, ctx);
            return;
        }
    }
    int64_t nchunks = n / grain;
    int64_t maxchunks = (int64_t)p->nthreads * CHUNKS_PER_THREAD;
    if (nchunks > maxchunks) nchunks = maxchunks;
    int64_t nactive = nchunks - 1 < p->nworkers ? nchunks - 1 : p->nworkers;
    if (nactive < 1) {
        pthread_mutex_unlock(&pool_lock);
        core_run_inline(n, fn, ctx);
        return;
    }

    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->nchunks = nchunks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, (int)nactive, memory_order_relaxed);
    uint64_t gen = (atomic_load_explicit(&p->word, memory_order_relaxed) >> 16) + 1;
    atomic_store(&p->word, gen << 16 | (uint64_t)nactive); /* seq_cst: see the essay */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }

    tl_in_task = 1;
    core_run_chunks(p);
    tl_in_task = 0;

    if (atomic_load_explicit(&p->pending, memory_order_acquire) != 0) {
        int64_t t0 = core_now_ns();
        for (int spins = 1; atomic_load_explicit(&p->pending, memory_order_acquire) != 0;
             spins++) {
            core_cpu_relax();
            if ((spins & 63) == 0) {
                if (core_now_ns() - t0 > CALLER_SPIN_NS) break;
                sched_yield();
            }
        }
        if (atomic_load(&p->pending) != 0) {
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->caller_sleeping, 1);
            while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mu);
            atomic_store(&p->caller_sleeping, 0);
            pthread_mutex_unlock(&p->mu);
        }
    }
    pthread_mutex_unlock(&pool_lock);
}
