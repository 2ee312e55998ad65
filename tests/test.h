/*
 * test.h -- the little harness of Spore's C tests.
 *
 * A test file defines functions `static void test_x(void)` and lists them in
 * main with RUN(test_x).  CHECK* macros count and report failures with file
 * and line but go on, so one run shows every broken check; main returns
 * TEST_SUMMARY(), which prints "N checks, M failed" and gives the exit code
 * ctest reads.
 */
#ifndef SPORE_TEST_H
#define SPORE_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "spore/spore.h"

static int test_checks, test_failures;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        test_checks++;                                                                     \
        if (!(cond)) {                                                                     \
            test_failures++;                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
        }                                                                                  \
    } while (0)

#define CHECK_OK(expr)                                                                     \
    do {                                                                                   \
        test_checks++;                                                                     \
        sp_status st_ = (expr);                                                            \
        if (st_ != SP_OK) {                                                                \
            test_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,           \
                    sp_last_error());                                                      \
        }                                                                                  \
    } while (0)

/* The call fails with `code` and its message contains `needle`. */
#define CHECK_ERR(expr, code, needle)                                                      \
    do {                                                                                   \
        test_checks++;                                                                     \
        sp_clear_error();                                                                  \
        sp_status st_ = (expr);                                                            \
        if (st_ != (code) || !strstr(sp_last_error(), (needle))) {                         \
            test_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s: wanted %s containing '%s', got %s '%s'\n",         \
                    __FILE__, __LINE__, #expr, sp_status_name(code), (needle),              \
                    sp_status_name(st_), sp_last_error());                                  \
        }                                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        test_checks++;                                                                     \
        double a_ = (a), b_ = (b);                                                         \
        if (!(fabs(a_ - b_) <= (tol) * (1.0 + fabs(b_)))) {                                \
            test_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s = %.17g, wanted %.17g\n", __FILE__, __LINE__, #a,    \
                    a_, b_);                                                               \
        }                                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        test_checks++;                                                                     \
        const char *a_ = (a), *b_ = (b);                                                   \
        if (!a_ || strcmp(a_, b_) != 0) {                                                  \
            test_failures++;                                                               \
            fprintf(stderr, "%s:%d: %s = \"%s\", wanted \"%s\"\n", __FILE__, __LINE__, #a,  \
                    a_ ? a_ : "(null)", b_);                                               \
        }                                                                                  \
    } while (0)

#define RUN(fn)                                                                            \
    do {                                                                                   \
        int before_ = test_failures;                                                       \
        fn();                                                                              \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #fn);        \
    } while (0)

#define TEST_SUMMARY()                                                                     \
    (fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures),                \
     test_failures ? 1 : 0)

#endif
