/*
 * test_alloc_cache.c -- the CPU allocator's cache of large blocks: a freed
 * big block comes back for a request of about its size, live bytes stay
 * exact, and small or much smaller requests do not take it.
 */
#include <stdint.h>

#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define CACHE_ON 0
#else
#define CACHE_ON 1
#endif

static void test_reuse(void) {
    int64_t live0 = sp_cpu_live_bytes();
    size_t mb = (size_t)1 << 20;
    char *a = sp_cpu_alloc(mb);
    CHECK(a != NULL);
    CHECK(((uintptr_t)a & 63) == 0);
    CHECK(sp_cpu_live_bytes() == live0 + (int64_t)mb);
    a[0] = 1;
    a[mb - 1] = 2;
    sp_cpu_free(a);
    CHECK(sp_cpu_live_bytes() == live0);
    /* the same size again: the cached block */
    char *b = sp_cpu_alloc(mb);
    if (CACHE_ON) CHECK(b == a);
    CHECK(sp_cpu_live_bytes() == live0 + (int64_t)mb);
    sp_cpu_free(b);
    /* 10% smaller still fits the block; 2x smaller does not */
    char *c = sp_cpu_alloc(mb - mb / 10);
    if (CACHE_ON) CHECK(c == a);
    CHECK(sp_cpu_live_bytes() == live0 + (int64_t)(mb - mb / 10));
    char *d = sp_cpu_alloc(mb / 2);
    CHECK(d != NULL && d != c);
    sp_cpu_free(c);
    sp_cpu_free(d);
    /* a bigger request never gets a smaller block */
    char *e = sp_cpu_alloc(4 * mb);
    CHECK(e != NULL && e != a);
    e[4 * mb - 1] = 3;
    sp_cpu_free(e);
    CHECK(sp_cpu_live_bytes() == live0);
}

static void test_many(void) {
    int64_t live0 = sp_cpu_live_bytes();
    void *p[64];
    for (int i = 0; i < 64; i++) p[i] = sp_cpu_alloc(((size_t)300 << 10) + (size_t)i * 4096);
    for (int i = 0; i < 64; i++) CHECK(p[i] != NULL);
    for (int i = 0; i < 64; i++) sp_cpu_free(p[i]);
    CHECK(sp_cpu_live_bytes() == live0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 64; i++) p[i] = sp_cpu_alloc(((size_t)300 << 10) + (size_t)(63 - i) * 4096);
        for (int i = 0; i < 64; i++) {
            CHECK(p[i] != NULL);
            ((char *)p[i])[0] = (char)i;
        }
        for (int i = 0; i < 64; i++) sp_cpu_free(p[i]);
    }
    CHECK(sp_cpu_live_bytes() == live0);
}

int main(void) {
    RUN(test_reuse);
    RUN(test_many);
    return TEST_SUMMARY();
}
