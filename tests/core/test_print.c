/*
 * test_print.c -- sp_tensor_to_string against numpy's str().
 *
 * Every expected string below was produced by numpy 1.24.2 (str(a) with the
 * default print options) and pasted in; the data are the same arrays'
 * elements.  They cover the float format choices (positional vs scientific
 * and each trigger, padding around the point, nan/inf widths, the 8-digit
 * cut), float32 and float16 shortest digits, ints and bools, wrapping at 75
 * columns, nesting, summarization past 1000 elements, empty and 0-d arrays.
 * bfloat16 has no numpy reference: its expectations follow core.h (its own
 * shortest digits) and are derived in the comments.
 */
#include <stdint.h>
#include <stdlib.h>

#include "test.h"

static int64_t live0;
#define BEGIN() (live0 = sp_cpu_live_bytes())
#define END() CHECK(sp_cpu_live_bytes() == live0)

typedef struct print_case {
    sp_dtype dtype;
    int ndim;
    int64_t shape[SP_MAX_DIMS];
    const void *data;
    const char *want;
} print_case;

static const print_case cases[] = {
    /* the brief: a common width */
    {SP_F64, 1, {3}, &(const double[]){4.0, 10.0, 18.0}, "[ 4. 10. 18.]"},
    /* fraction padded with spaces */
    {SP_F64, 1, {3}, &(const double[]){1.5, 2.0, 3.0}, "[1.5 2.  3. ]"},
    {SP_F64, 1, {3}, &(const double[]){0.1, 0.2, 0.3}, "[0.1 0.2 0.3]"},
    /* float32 shortest digits */
    {SP_F32, 1, {3}, &(const float[]){0.10000000149011612f, 0.20000000298023224f, 0.30000001192092896f}, "[0.1 0.2 0.3]"},
    {SP_I32, 1, {3}, &(const int32_t[]){1, 2, 3}, "[1 2 3]"},
    {SP_F64, 2, {2, 2}, &(const double[]){1.0, 2.0, 3.0, 4.0}, "[[1. 2.]\n"
        " [3. 4.]]"},
    /* ints right-aligned */
    {SP_I64, 2, {2, 2}, &(const int64_t[]){1LL, 2LL, 3LL, -40LL}, "[[  1   2]\n"
        " [  3 -40]]"},
    {SP_BOOL, 1, {2}, &(const uint8_t[]){1, 0}, "[ True False]"},
    /* scientific: min < 1e-4 */
    {SP_F64, 1, {2}, &(const double[]){1e-05, 1.0}, "[1.e-05 1.e+00]"},
    /* scientific: max >= 1e8 */
    {SP_F64, 1, {2}, &(const double[]){100000000.0, 1.0}, "[1.e+08 1.e+00]"},
    /* scientific: max/min > 1e3 */
    {SP_F64, 1, {2}, &(const double[]){1001.0, 1.0}, "[1.001e+03 1.000e+00]"},
    /* positional: max/min == 1e3 */
    {SP_F64, 1, {2}, &(const double[]){1000.0, 1.0}, "[1000.    1.]"},
    /* specials in scientific */
    {SP_F64, 1, {4}, &(const double[]){1.5e-05, 1.0, NAN, -INFINITY}, "[1.5e-05 1.0e+00     nan    -inf]"},
    /* nan widens pad_left */
    {SP_F64, 1, {2}, &(const double[]){1.0, NAN}, "[ 1. nan]"},
    {SP_F64, 1, {3}, &(const double[]){NAN, INFINITY, -INFINITY}, "[ nan  inf -inf]"},
    {SP_F64, 1, {2}, &(const double[]){-0.0, 1.0}, "[-0.  1.]"},
    {SP_F64, 1, {2}, &(const double[]){0.0, 0.0}, "[0. 0.]"},
    /* cut at 8 digits */
    {SP_F64, 1, {2}, &(const double[]){0.3333333333333333, 0.6666666666666666}, "[0.33333333 0.66666667]"},
    {SP_F64, 1, {1}, &(const double[]){12345678.12345679}, "[12345678.12345679]"},
    /* 3-digit exponents */
    {SP_F64, 1, {2}, &(const double[]){1e+100, 1.0}, "[1.e+100 1.e+000]"},
    {SP_F64, 1, {2}, &(const double[]){1.7976931348623157e+308, -1.0}, "[ 1.79769313e+308 -1.00000000e+000]"},
    /* int64 exact */
    {SP_I64, 1, {2}, &(const int64_t[]){9223372036854775807LL, (-INT64_MAX - 1)}, "[ 9223372036854775807 -9223372036854775808]"},
    {SP_I8, 1, {3}, &(const int8_t[]){-128, 0, 127}, "[-128    0  127]"},
    {SP_U8, 1, {2}, &(const uint8_t[]){0, 255}, "[  0 255]"},
    /* wraps at 75 columns */
    {SP_F64, 1, {30}, &(const double[]){0.0, 1.1, 2.2, 3.3000000000000003, 4.4, 5.5, 6.6000000000000005, 7.700000000000001, 8.8, 9.9, 11.0, 12.100000000000001, 13.200000000000001, 14.3, 15.400000000000002, 16.5, 17.6, 18.700000000000003, 19.8, 20.900000000000002, 22.0, 23.1, 24.200000000000003, 25.3, 26.400000000000002, 27.500000000000004, 28.6, 29.700000000000003, 30.800000000000004, 31.900000000000002}, "[ 0.   1.1  2.2  3.3  4.4  5.5  6.6  7.7  8.8  9.9 11.  12.1 13.2 14.3\n"
        " 15.4 16.5 17.6 18.7 19.8 20.9 22.  23.1 24.2 25.3 26.4 27.5 28.6 29.7\n"
        " 30.8 31.9]"},
    /* scientific rows wrap; exact digits past shortest */
    {SP_F32, 2, {3, 7}, &(const float[]){0.0003047170757781714f, -0.0010399840539321303f, 0.0007504511740989983f, 0.000940564728807658f, -0.0019510352285578847f, -0.0013021795311942697f, 0.00012784040882252157f, -0.00031624260009266436f, -1.6801157471491024e-05f, -0.000853043922688812f, 0.0008793979650363326f, 0.000777791952714324f, 6.603069778066128e-05f, 0.0011272411793470383f, 0.0004675093514379114f, -0.0008592924568802118f, 0.00036875077057629824f, -0.0009588826214894652f, 0.0008784502861090004f, -4.9925911298487335e-05f, -0.00018486236513126642f}, "[[ 3.0471708e-04 -1.0399841e-03  7.5045117e-04  9.4056473e-04\n"
        "  -1.9510352e-03 -1.3021795e-03  1.2784041e-04]\n"
        " [-3.1624260e-04 -1.6801157e-05 -8.5304392e-04  8.7939797e-04\n"
        "   7.7779195e-04  6.6030698e-05  1.1272412e-03]\n"
        " [ 4.6750935e-04 -8.5929246e-04  3.6875077e-04 -9.5888262e-04\n"
        "   8.7845029e-04 -4.9925911e-05 -1.8486237e-04]]"},
    /* float16: whole numbers printed exactly */
    {SP_F16, 1, {3}, &(const uint16_t[]){0x772c, 0x3800, 0xdae6}, "[ 2.938e+04  5.000e-01 -2.208e+02]"},
    {SP_F16, 1, {2}, &(const uint16_t[]){0x7bff, 0x0001}, "[6.55e+04 5.96e-08]"},
    {SP_F32, 1, {2}, &(const float[]){99999992.0f, 1.0f}, "[9.999999e+07 1.000000e+00]"},
    /* blank line between blocks */
    {SP_F64, 3, {2, 3, 4}, &(const double[]){0.0, 1.5, 3.0, 4.5, 6.0, 7.5, 9.0, 10.5, 12.0, 13.5, 15.0, 16.5, 18.0, 19.5, 21.0, 22.5, 24.0, 25.5, 27.0, 28.5, 30.0, 31.5, 33.0, 34.5}, "[[[ 0.   1.5  3.   4.5]\n"
        "  [ 6.   7.5  9.  10.5]\n"
        "  [12.  13.5 15.  16.5]]\n"
        "\n"
        " [[18.  19.5 21.  22.5]\n"
        "  [24.  25.5 27.  28.5]\n"
        "  [30.  31.5 33.  34.5]]]"},
    {SP_BOOL, 2, {2, 1}, &(const uint8_t[]){1, 0}, "[[ True]\n"
        " [False]]"},
    {SP_BOOL, 1, {30}, &(const uint8_t[]){1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0}, "[ True False False  True False  True  True  True  True False False False\n"
        " False False  True False  True  True  True  True False  True False False\n"
        "  True False False False  True False]"},
    /* empty */
    {SP_F32, 1, {0}, &(const float[]){0}, "[]"},
    {SP_I64, 2, {2, 0}, &(const int64_t[]){0}, "[]"},
    {SP_F64, 4, {2, 1, 3, 1}, &(const double[]){1.0, 1.0, 1.0, 1.0, 1.0, 1.0}, "[[[[1.]\n"
        "   [1.]\n"
        "   [1.]]]\n"
        "\n"
        "\n"
        " [[[1.]\n"
        "   [1.]\n"
        "   [1.]]]]"},
    /* 0-d like numpy scalars */
    {SP_F64, 1, {1}, &(const double[]){4.0}, "[4.]"},
    {SP_F32, 1, {1}, &(const float[]){4.0f}, "[4.]"},
    {SP_F32, 1, {1}, &(const float[]){0.10000000149011612f}, "[0.1]"},
    {SP_F64, 1, {1}, &(const double[]){1e-05}, "[1.e-05]"},
    {SP_F64, 1, {1}, &(const double[]){1e+16}, "[1.e+16]"},
    {SP_F32, 1, {1}, &(const float[]){1.500000030061316e+20f}, "[1.5e+20]"},
    {SP_F64, 1, {1}, &(const double[]){-0.0}, "[-0.]"},
    {SP_F64, 1, {1}, &(const double[]){NAN}, "[nan]"},
    {SP_F64, 1, {1}, &(const double[]){-INFINITY}, "[-inf]"},
    {SP_F16, 1, {1}, &(const uint16_t[]){0x772c}, "[29376.]"},
    {SP_F64, 1, {1}, &(const double[]){0.30000000000000004}, "[0.3]"},
    {SP_I8, 1, {1}, &(const int8_t[]){-7}, "[-7]"},
    {SP_BOOL, 1, {1}, &(const uint8_t[]){1}, "[ True]"},
    {SP_F64, 1, {1}, &(const double[]){123456789.0}, "[1.23456789e+08]"},
};

static void check_string(const sp_tensor *t, const char *want) {
    char *got = sp_tensor_to_string(t);
    CHECK_STR(got, want);
    free(got);
}

static void test_numpy_cases(void) {
    BEGIN();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const print_case *c = &cases[i];
        sp_tensor *t = sp_tensor_from_data(c->dtype, c->ndim, c->shape, c->data);
        CHECK(t != NULL);
        if (t) check_string(t, c->want);
        sp_tensor_release(t);
    }
    END();
}

/* arange(n) * scale in dtype d with the given shape. */
static sp_tensor *arange(sp_dtype d, int ndim, const int64_t *shape, double scale) {
    sp_tensor *t = sp_tensor_new(d, ndim, shape, SP_CPU), *v = NULL;
    int64_t n = sp_tensor_numel(t);
    sp_tensor *f = sp_tensor_new(SP_F64, 1, &n, SP_CPU);
    for (int64_t i = 0; i < n; i++) ((double *)sp_tensor_data(f))[i] = (double)i * scale;
    sp_tensor_reshape(f, ndim, shape, &v);
    sp_tensor_copy_into(t, v);
    sp_tensor_release(v);
    sp_tensor_release(f);
    return t;
}

static void test_summarized(void) {
    BEGIN();
    sp_tensor *t = arange(SP_F64, 2, (int64_t[]){2, 1000}, 1);
    check_string(t, "[[0.000e+00 1.000e+00 2.000e+00 ... 9.970e+02 9.980e+02 9.990e+02]\n"
                    " [1.000e+03 1.001e+03 1.002e+03 ... 1.997e+03 1.998e+03 1.999e+03]]");
    sp_tensor_release(t);
    t = arange(SP_I64, 1, (int64_t[]){1001}, 1);
    check_string(t, "[   0    1    2 ...  998  999 1000]");
    sp_tensor_release(t);
    t = arange(SP_I32, 3, (int64_t[]){10, 10, 30}, 1);
    check_string(t,
                 "[[[   0    1    2 ...   27   28   29]\n  [  30   31   32 ...   57   58   59]\n"
                 "  [  60   61   62 ...   87   88   89]\n  ...\n  [ 210  211  212 ...  237  238  239]\n"
                 "  [ 240  241  242 ...  267  268  269]\n  [ 270  271  272 ...  297  298  299]]\n\n"
                 " [[ 300  301  302 ...  327  328  329]\n  [ 330  331  332 ...  357  358  359]\n"
                 "  [ 360  361  362 ...  387  388  389]\n  ...\n  [ 510  511  512 ...  537  538  539]\n"
                 "  [ 540  541  542 ...  567  568  569]\n  [ 570  571  572 ...  597  598  599]]\n\n"
                 " [[ 600  601  602 ...  627  628  629]\n  [ 630  631  632 ...  657  658  659]\n"
                 "  [ 660  661  662 ...  687  688  689]\n  ...\n  [ 810  811  812 ...  837  838  839]\n"
                 "  [ 840  841  842 ...  867  868  869]\n  [ 870  871  872 ...  897  898  899]]\n\n"
                 " ...\n\n"
                 " [[2100 2101 2102 ... 2127 2128 2129]\n  [2130 2131 2132 ... 2157 2158 2159]\n"
                 "  [2160 2161 2162 ... 2187 2188 2189]\n  ...\n  [2310 2311 2312 ... 2337 2338 2339]\n"
                 "  [2340 2341 2342 ... 2367 2368 2369]\n  [2370 2371 2372 ... 2397 2398 2399]]\n\n"
                 " [[2400 2401 2402 ... 2427 2428 2429]\n  [2430 2431 2432 ... 2457 2458 2459]\n"
                 "  [2460 2461 2462 ... 2487 2488 2489]\n  ...\n  [2610 2611 2612 ... 2637 2638 2639]\n"
                 "  [2640 2641 2642 ... 2667 2668 2669]\n  [2670 2671 2672 ... 2697 2698 2699]]\n\n"
                 " [[2700 2701 2702 ... 2727 2728 2729]\n  [2730 2731 2732 ... 2757 2758 2759]\n"
                 "  [2760 2761 2762 ... 2787 2788 2789]\n  ...\n  [2910 2911 2912 ... 2937 2938 2939]\n"
                 "  [2940 2941 2942 ... 2967 2968 2969]\n  [2970 2971 2972 ... 2997 2998 2999]]]");
    sp_tensor_release(t);
    /* 1000 elements exactly is not summarized: str(np.zeros(1000, np.uint8))
     * is 2028 characters on 28 lines, the last holding " 0]" alone (the
     * last element must leave room for the ']'). */
    t = arange(SP_U8, 1, (int64_t[]){1000}, 0);
    char *s = sp_tensor_to_string(t);
    CHECK(s && !strstr(s, "...") && strlen(s) == 2028);
    CHECK(s && strncmp(s, "[0 0 0", 6) == 0 && strcmp(s + strlen(s) - 10, " 0 0 0\n 0]") == 0);
    int lines = 0;
    for (const char *c = s; c && *c; c++) lines += *c == '\n';
    CHECK(lines == 27);
    free(s);
    sp_tensor_release(t);
    END();
}

static void test_views_and_bf16(void) {
    BEGIN();
    /* A transposed view prints its own order: np.arange(6.).reshape(2, 3).T */
    sp_tensor *t = arange(SP_F32, 2, (int64_t[]){2, 3}, 1), *tt = NULL, *r = NULL;
    CHECK_OK(sp_tensor_transpose(t, 0, 1, &tt));
    check_string(tt, "[[0. 3.]\n [1. 4.]\n [2. 5.]]");
    /* np.arange(6.)[::-2] */
    CHECK_OK(sp_tensor_reshape(t, 1, (int64_t[]){-1}, &r));
    sp_tensor *rv = NULL;
    CHECK_OK(sp_tensor_slice(r, 0, SP_SLICE_NONE, SP_SLICE_NONE, -2, &rv));
    check_string(rv, "[5. 3. 1.]");
    sp_tensor_release(rv);
    sp_tensor_release(r);
    sp_tensor_release(tt);
    sp_tensor_release(t);
    /* bfloat16 1/3 is 0.333984375; its neighbours are 0.33203125 and
     * 0.3359375, so "0.334" is the shortest text that reads back to it
     * ("0.33" reads back as 0.330078125). */
    sp_tensor *b = sp_tensor_new(SP_BF16, 1, (int64_t[]){2}, SP_CPU);
    sp_tensor *one = sp_tensor_scalar(SP_F64, 1.0 / 3);
    CHECK_OK(sp_tensor_fill(b, 1.0 / 3));
    sp_tensor *e = NULL;
    CHECK_OK(sp_tensor_slice(b, 0, 1, 2, 1, &e));
    CHECK_OK(sp_tensor_fill(e, 1.0));
    check_string(b, "[0.334 1.   ]");
    sp_tensor *bs = sp_tensor_scalar(SP_BF16, 1.0 / 3);
    check_string(bs, "0.334");
    /* bf16 300.5 rounds to 300 (spacing 2 there): "300.0". */
    sp_tensor *b3 = sp_tensor_scalar(SP_BF16, 300.5);
    check_string(b3, "300.0");
    sp_tensor_release(b3);
    sp_tensor_release(bs);
    sp_tensor_release(e);
    sp_tensor_release(one);
    sp_tensor_release(b);
    END();
}

static void test_print_file(void) {
    BEGIN();
    sp_tensor *t = sp_tensor_from_data(SP_I8, 1, (int64_t[]){3}, (int8_t[]){-1, 0, 12});
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        CHECK_OK(sp_tensor_print(t, f));
        rewind(f);
        char buf[64] = {0};
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        CHECK(n == 11);
        CHECK_STR(buf, "[-1  0 12]\n");
        fclose(f);
    }
    CHECK_ERR(sp_tensor_print(t, NULL), SP_ERR_ARG, "NULL file");
    sp_clear_error();
    CHECK(sp_tensor_to_string(NULL) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG);
    sp_tensor_release(t);
    END();
}

int main(void) {
    RUN(test_numpy_cases);
    RUN(test_summarized);
    RUN(test_views_and_bf16);
    RUN(test_print_file);
    return TEST_SUMMARY();
}
