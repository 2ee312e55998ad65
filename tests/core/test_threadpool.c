/*
 * test_threadpool.c -- sp_parallel_for covers every index exactly once in
 * chunks of at least `grain`, with any thread count; nested calls run inline;
 * tiny calls stay correct when issued by the hundred thousand; several user
 * threads may call it at once; the thread count setting is validated.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/threadpool.h"
#include "test.h"

typedef struct {
    int64_t n, grain;
    atomic_int *hits;         /* per index */
    atomic_llong sum;         /* sum of indices seen */
    atomic_int small_chunks;  /* chunks shorter than grain */
    atomic_int bad_index;     /* sp_thread_index out of [0, nthreads) */
    int nthreads;
} cover_ctx;

static void cover_fn(void *ctx_, int64_t b, int64_t e) {
    cover_ctx *c = ctx_;
    if (e - b < c->grain && !(b == 0 && e == c->n)) atomic_fetch_add(&c->small_chunks, 1);
    int ti = sp_thread_index();
    if (ti < 0 || ti >= c->nthreads) atomic_fetch_add(&c->bad_index, 1);
    long long s = 0;
    for (int64_t i = b; i < e; i++) {
        atomic_fetch_add(&c->hits[i], 1);
        s += i;
    }
    atomic_fetch_add(&c->sum, s);
}

/* Runs one covering loop and checks it; returns nonzero when all is well. */
static int cover_once(int64_t n, int64_t grain) {
    cover_ctx c = {.n = n, .grain = grain, .nthreads = sp_get_num_threads()};
    c.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *c.hits);
    atomic_init(&c.sum, 0);
    atomic_init(&c.small_chunks, 0);
    atomic_init(&c.bad_index, 0);
    sp_parallel_for(n, grain, cover_fn, &c);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= atomic_load(&c.hits[i]) == 1;
    ok &= atomic_load(&c.sum) == (n > 0 ? (long long)n * (n - 1) / 2 : 0);
    ok &= atomic_load(&c.small_chunks) == 0;
    ok &= atomic_load(&c.bad_index) == 0;
    free(c.hits);
    return ok;
}

static void test_cover(void) {
    static const int threads[] = {1, 2, 3, 8};
    static const int64_t sizes[][2] = {{0, 1},      {1, 1},      {7, 1},    {100, 1},
                                       {100, 7},    {100, 100},  {101, 50}, {1000, 3},
                                       {100003, 64}, {65536, 4096}, {5, 0}};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        CHECK_OK(sp_set_num_threads(threads[t]));
        CHECK(sp_get_num_threads() == threads[t]);
        for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
            int ok = cover_once(sizes[s][0], sizes[s][1]);
            CHECK(ok);
            if (!ok)
                fprintf(stderr, "  threads %d n %lld grain %lld\n", threads[t],
                        (long long)sizes[s][0], (long long)sizes[s][1]);
        }
    }
    CHECK(cover_once(-5, 1)); /* negative n: nothing runs */
}

/* Three chunks that wait for each other: proves that three distinct threads
 * run at once (with one thread this would time out). */
typedef struct {
    atomic_int arrived;
    atomic_int seen_mask;
    atomic_int timed_out;
} barrier_ctx;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void barrier_fn(void *ctx_, int64_t b, int64_t e) {
    barrier_ctx *c = ctx_;
    (void)b;
    (void)e;
    atomic_fetch_or(&c->seen_mask, 1 << sp_thread_index());
    atomic_fetch_add(&c->arrived, 1);
    double t0 = now_s();
    while (atomic_load(&c->arrived) < 3) {
        if (now_s() - t0 > 20) {
            atomic_store(&c->timed_out, 1);
            return;
        }
        usleep(100);
    }
}

static void test_concurrent_workers(void) {
    CHECK_OK(sp_set_num_threads(3));
    barrier_ctx c;
    atomic_init(&c.arrived, 0);
    atomic_init(&c.seen_mask, 0);
    atomic_init(&c.timed_out, 0);
    sp_parallel_for(3, 1, barrier_fn, &c);
    CHECK(atomic_load(&c.timed_out) == 0);
    CHECK(atomic_load(&c.seen_mask) == 7); /* thread indices 0, 1 and 2 */
}

/* A nested call runs inline on the thread that made it. */
typedef struct {
    atomic_int wrong;
    atomic_llong total;
} nest_ctx;

typedef struct {
    nest_ctx *outer;
    int index;
} nest_inner;

static void nest_inner_fn(void *ctx_, int64_t b, int64_t e) {
    nest_inner *in = ctx_;
    if (sp_thread_index() != in->index) atomic_fetch_add(&in->outer->wrong, 1);
    if (b != 0 || e != 1000) atomic_fetch_add(&in->outer->wrong, 1); /* not split */
    atomic_fetch_add(&in->outer->total, e - b);
}

static void nest_outer_fn(void *ctx_, int64_t b, int64_t e) {
    nest_ctx *c = ctx_;
    for (int64_t i = b; i < e; i++) {
        nest_inner in = {c, sp_thread_index()};
        sp_parallel_for(1000, 1, nest_inner_fn, &in);
    }
}

static void test_nested(void) {
    CHECK_OK(sp_set_num_threads(4));
    nest_ctx c;
    atomic_init(&c.wrong, 0);
    atomic_init(&c.total, 0);
    sp_parallel_for(64, 1, nest_outer_fn, &c);
    CHECK(atomic_load(&c.wrong) == 0);
    CHECK(atomic_load(&c.total) == 64 * 1000);
}

static void sum_fn(void *ctx_, int64_t b, int64_t e) {
    atomic_llong *s = ctx_;
    long long v = 0;
    for (int64_t i = b; i < e; i++) v += i + 1;
    atomic_fetch_add(s, v);
}

static void test_many_tiny(void) {
    CHECK_OK(sp_set_num_threads(2));
    atomic_llong s;
    atomic_init(&s, 0);
    const int calls = 100000;
    double t0 = now_s();
    for (int k = 0; k < calls; k++) sp_parallel_for(64, 8, sum_fn, &s);
    double dt = now_s() - t0;
    CHECK(atomic_load(&s) == (long long)calls * 64 * 65 / 2);
    fprintf(stderr, "  %d calls of n=64 on 2 threads: %.2f us per call\n", calls,
            dt / calls * 1e6);
}

/* Several user threads share the pool (or run inline when it is busy). */
static void *user_thread(void *arg) {
    int *ok = arg;
    for (int k = 0; k < 300; k++) {
        atomic_llong s;
        atomic_init(&s, 0);
        int64_t n = 1000 + k;
        sp_parallel_for(n, 16, sum_fn, &s);
        if (atomic_load(&s) != (long long)n * (n + 1) / 2) *ok = 0;
    }
    return NULL;
}

static void test_user_threads(void) {
    CHECK_OK(sp_set_num_threads(3));
    pthread_t th[4];
    int ok[4] = {1, 1, 1, 1};
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, user_thread, &ok[i]) == 0);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) CHECK(ok[i]);
}

static void test_num_threads_setting(void) {
    CHECK_ERR(sp_set_num_threads(0), SP_ERR_ARG, "sp_set_num_threads");
    CHECK_ERR(sp_set_num_threads(-4), SP_ERR_ARG, "got -4");
    CHECK_ERR(sp_set_num_threads(CORE_MAX_THREADS + 1), SP_ERR_ARG, "sp_set_num_threads");
    CHECK_OK(sp_set_num_threads(5));
    CHECK(sp_get_num_threads() == 5);
    CHECK(sp_set_num_threads(0) != SP_OK);
    CHECK(sp_get_num_threads() == 5); /* a refused value changes nothing */

    /* SPORE_NUM_THREADS parsing */
    CHECK(core_num_threads_parse("4", 16) == 4);
    CHECK(core_num_threads_parse(" 12 ", 16) == 12);
    CHECK(core_num_threads_parse("1", 16) == 1);
    CHECK(core_num_threads_parse(NULL, 6) == 6);
    CHECK(core_num_threads_parse("", 6) == 6);
    CHECK(core_num_threads_parse("abc", 6) == 6);
    CHECK(core_num_threads_parse("4x", 6) == 6);
    CHECK(core_num_threads_parse("0", 6) == 6);
    CHECK(core_num_threads_parse("-3", 6) == 6);
    CHECK(core_num_threads_parse("+3", 6) == 6);
    CHECK(core_num_threads_parse("3.5", 6) == 6);
    CHECK(core_num_threads_parse("99999999999999999999999", 6) == 6);
    CHECK(core_num_threads_parse("2", 0) == 2);
    CHECK(core_num_threads_parse("junk", 0) == 1); /* a CPU count below 1 reads as 1 */
}

int main(void) {
    /* The default follows SPORE_NUM_THREADS (ctest sets 2) or the CPU count. */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    CHECK(sp_get_num_threads() ==
          core_num_threads_parse(getenv("SPORE_NUM_THREADS"), ncpu < 1 ? 1 : (int)ncpu));
    RUN(test_num_threads_setting);
    RUN(test_cover);
    RUN(test_concurrent_workers);
    RUN(test_nested);
    RUN(test_many_tiny);
    RUN(test_user_threads);
    return TEST_SUMMARY();
}
