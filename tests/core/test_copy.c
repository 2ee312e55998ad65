/*
 * test_copy.c -- cast, contiguous, copy_into and fill.
 *
 * The cast tables below were generated with numpy 1.24 (/usr/bin/python3,
 * script in the lead's notes): each source dtype holds a few values chosen
 * to hit rounding, wrapping and specials (negative floats to uint8, values
 * past int8's range, 65504/70000 for float16, int64 extremes, NaN and
 * infinities), and every one is cast to all nine dtypes.  Expected values
 * follow core.h's astype rules, which are numpy's except where numpy's
 * answer is C undefined behaviour: NaN, infinities and floats outside int64
 * become 0 before wrapping to the integer width.  bfloat16 expectations are
 * float32 rounded to nearest-even in its top 16 bits.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"
#include "test.h"

static int64_t live0;
#define BEGIN() (live0 = sp_cpu_live_bytes())
#define END() CHECK(sp_cpu_live_bytes() == live0)

typedef union cast_want {
    double f;
    long long i;
} cast_want;

static const float src_F32[] = {-2.5f, -1.0f, -0.0f, 0.5f, 1.7000000476837158f, 3.0f, 127.9000015258789f, 200.60000610351562f, 300.0f, -129.3000030517578f, 65504.0f, 70000.0f, 10000000000.0f, -3.000000104103097e+19f, NAN, INFINITY, -INFINITY};
static const double src_F64[] = {-2.5, -1.0, -0.0, 0.5, 1.7, 3.0, 127.9, 200.6, 300.0, -129.3, 65504.0, 70000.0, 10000000000.0, -3e+19, NAN, INFINITY, -INFINITY};
static const uint16_t src_F16[] = {0xc100, 0xbc00, 0x8000, 0x3800, 0x3ecd, 0x4200, 0x57fe, 0x5a45, 0x5cb0, 0xd80a, 0x7bff, 0x7c00, 0x7c00, 0xfc00, 0x7e00, 0x7c00, 0xfc00};
static const uint16_t src_BF16[] = {0xc020, 0xbf80, 0x8000, 0x3f00, 0x3fda, 0x4040, 0x4300, 0x4349, 0x4396, 0xc301, 0x4780, 0x4789, 0x5015, 0xdfd0, 0x7fc0, 0x7f80, 0xff80};
static const int8_t src_I8[] = {-128LL, -1LL, 0LL, 1LL, 127LL, 5LL, -7LL};
static const uint8_t src_U8[] = {0LL, 1LL, 127LL, 128LL, 255LL, 5LL};
static const int32_t src_I32[] = {-2147483648LL, -1LL, 0LL, 1LL, 2147483647LL, 70000LL, 16777217LL, -300LL};
static const int64_t src_I64[] = {(-INT64_MAX - 1), -1LL, 0LL, 1LL, 9223372036854775807LL, 9007199254740993LL, 16777217LL, 300LL, -129LL, 1099511627779LL};
static const uint8_t src_BOOL[] = {0LL, 1LL, 1LL, 0LL};

/* want_<S>[d][i]: element i of src_<S> cast to dtype d (SP_ order). */
static const cast_want want_F32[SP_DTYPE_COUNT][17] = {
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7000000476837158}, {.f = 3.0}, {.f = 127.9000015258789}, {.f = 200.60000610351562}, {.f = 300.0}, {.f = -129.3000030517578}, {.f = 65504.0}, {.f = 70000.0}, {.f = 10000000000.0}, {.f = -3.000000104103097e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7000000476837158}, {.f = 3.0}, {.f = 127.9000015258789}, {.f = 200.60000610351562}, {.f = 300.0}, {.f = -129.3000030517578}, {.f = 65504.0}, {.f = 70000.0}, {.f = 10000000000.0}, {.f = -3.000000104103097e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7001953125}, {.f = 3.0}, {.f = 127.875}, {.f = 200.625}, {.f = 300.0}, {.f = -129.25}, {.f = 65504.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = -INFINITY}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.703125}, {.f = 3.0}, {.f = 128.0}, {.f = 201.0}, {.f = 300.0}, {.f = -129.0}, {.f = 65536.0}, {.f = 70144.0}, {.f = 9999220736.0}, {.f = -2.997595911977802e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = -56LL}, {.i = 44LL}, {.i = 127LL}, {.i = -32LL}, {.i = 112LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 254LL}, {.i = 255LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 44LL}, {.i = 127LL}, {.i = 224LL}, {.i = 112LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65504LL}, {.i = 70000LL}, {.i = 1410065408LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65504LL}, {.i = 70000LL}, {.i = 10000000000LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 1LL}, {.i = 1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_F64[SP_DTYPE_COUNT][17] = {
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7000000476837158}, {.f = 3.0}, {.f = 127.9000015258789}, {.f = 200.60000610351562}, {.f = 300.0}, {.f = -129.3000030517578}, {.f = 65504.0}, {.f = 70000.0}, {.f = 10000000000.0}, {.f = -3.000000104103097e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7}, {.f = 3.0}, {.f = 127.9}, {.f = 200.6}, {.f = 300.0}, {.f = -129.3}, {.f = 65504.0}, {.f = 70000.0}, {.f = 10000000000.0}, {.f = -3e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7001953125}, {.f = 3.0}, {.f = 127.875}, {.f = 200.625}, {.f = 300.0}, {.f = -129.25}, {.f = 65504.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = -INFINITY}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.703125}, {.f = 3.0}, {.f = 128.0}, {.f = 201.0}, {.f = 300.0}, {.f = -129.0}, {.f = 65536.0}, {.f = 70144.0}, {.f = 9999220736.0}, {.f = -2.997595911977802e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = -56LL}, {.i = 44LL}, {.i = 127LL}, {.i = -32LL}, {.i = 112LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 254LL}, {.i = 255LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 44LL}, {.i = 127LL}, {.i = 224LL}, {.i = 112LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65504LL}, {.i = 70000LL}, {.i = 1410065408LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65504LL}, {.i = 70000LL}, {.i = 10000000000LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 1LL}, {.i = 1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_F16[SP_DTYPE_COUNT][17] = {
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7001953125}, {.f = 3.0}, {.f = 127.875}, {.f = 200.625}, {.f = 300.0}, {.f = -129.25}, {.f = 65504.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = -INFINITY}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7001953125}, {.f = 3.0}, {.f = 127.875}, {.f = 200.625}, {.f = 300.0}, {.f = -129.25}, {.f = 65504.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = -INFINITY}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.7001953125}, {.f = 3.0}, {.f = 127.875}, {.f = 200.625}, {.f = 300.0}, {.f = -129.25}, {.f = 65504.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = -INFINITY}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.703125}, {.f = 3.0}, {.f = 128.0}, {.f = 201.0}, {.f = 300.0}, {.f = -129.0}, {.f = 65536.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = -INFINITY}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = -56LL}, {.i = 44LL}, {.i = 127LL}, {.i = -32LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 254LL}, {.i = 255LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 44LL}, {.i = 127LL}, {.i = 224LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65504LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 127LL}, {.i = 200LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65504LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 1LL}, {.i = 1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_BF16[SP_DTYPE_COUNT][17] = {
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.703125}, {.f = 3.0}, {.f = 128.0}, {.f = 201.0}, {.f = 300.0}, {.f = -129.0}, {.f = 65536.0}, {.f = 70144.0}, {.f = 9999220736.0}, {.f = -2.997595911977802e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.703125}, {.f = 3.0}, {.f = 128.0}, {.f = 201.0}, {.f = 300.0}, {.f = -129.0}, {.f = 65536.0}, {.f = 70144.0}, {.f = 9999220736.0}, {.f = -2.997595911977802e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.703125}, {.f = 3.0}, {.f = 128.0}, {.f = 201.0}, {.f = 300.0}, {.f = -129.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = INFINITY}, {.f = -INFINITY}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.f = -2.5}, {.f = -1.0}, {.f = -0.0}, {.f = 0.5}, {.f = 1.703125}, {.f = 3.0}, {.f = 128.0}, {.f = 201.0}, {.f = 300.0}, {.f = -129.0}, {.f = 65536.0}, {.f = 70144.0}, {.f = 9999220736.0}, {.f = -2.997595911977802e+19}, {.f = NAN}, {.f = INFINITY}, {.f = -INFINITY}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = -128LL}, {.i = -55LL}, {.i = 44LL}, {.i = 127LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 254LL}, {.i = 255LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 128LL}, {.i = 201LL}, {.i = 44LL}, {.i = 127LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 128LL}, {.i = 201LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65536LL}, {.i = 70144LL}, {.i = 1409286144LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = -2LL}, {.i = -1LL}, {.i = 0LL}, {.i = 0LL}, {.i = 1LL}, {.i = 3LL}, {.i = 128LL}, {.i = 201LL}, {.i = 300LL}, {.i = -129LL}, {.i = 65536LL}, {.i = 70144LL}, {.i = 9999220736LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}, {.i = 0LL}},
    {{.i = 1LL}, {.i = 1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_I8[SP_DTYPE_COUNT][7] = {
    {{.f = -128.0}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 5.0}, {.f = -7.0}},
    {{.f = -128.0}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 5.0}, {.f = -7.0}},
    {{.f = -128.0}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 5.0}, {.f = -7.0}},
    {{.f = -128.0}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 5.0}, {.f = -7.0}},
    {{.i = -128LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = 5LL}, {.i = -7LL}},
    {{.i = 128LL}, {.i = 255LL}, {.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = 5LL}, {.i = 249LL}},
    {{.i = -128LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = 5LL}, {.i = -7LL}},
    {{.i = -128LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = 5LL}, {.i = -7LL}},
    {{.i = 1LL}, {.i = 1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_U8[SP_DTYPE_COUNT][6] = {
    {{.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 128.0}, {.f = 255.0}, {.f = 5.0}},
    {{.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 128.0}, {.f = 255.0}, {.f = 5.0}},
    {{.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 128.0}, {.f = 255.0}, {.f = 5.0}},
    {{.f = 0.0}, {.f = 1.0}, {.f = 127.0}, {.f = 128.0}, {.f = 255.0}, {.f = 5.0}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = -128LL}, {.i = -1LL}, {.i = 5LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = 128LL}, {.i = 255LL}, {.i = 5LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = 128LL}, {.i = 255LL}, {.i = 5LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 127LL}, {.i = 128LL}, {.i = 255LL}, {.i = 5LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_I32[SP_DTYPE_COUNT][8] = {
    {{.f = -2147483648.0}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 2147483648.0}, {.f = 70000.0}, {.f = 16777216.0}, {.f = -300.0}},
    {{.f = -2147483648.0}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 2147483647.0}, {.f = 70000.0}, {.f = 16777217.0}, {.f = -300.0}},
    {{.f = -INFINITY}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = INFINITY}, {.f = -300.0}},
    {{.f = -2147483648.0}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 2147483648.0}, {.f = 70144.0}, {.f = 16777216.0}, {.f = -300.0}},
    {{.i = 0LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = -1LL}, {.i = 112LL}, {.i = 1LL}, {.i = -44LL}},
    {{.i = 0LL}, {.i = 255LL}, {.i = 0LL}, {.i = 1LL}, {.i = 255LL}, {.i = 112LL}, {.i = 1LL}, {.i = 212LL}},
    {{.i = -2147483648LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 2147483647LL}, {.i = 70000LL}, {.i = 16777217LL}, {.i = -300LL}},
    {{.i = -2147483648LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 2147483647LL}, {.i = 70000LL}, {.i = 16777217LL}, {.i = -300LL}},
    {{.i = 1LL}, {.i = 1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_I64[SP_DTYPE_COUNT][10] = {
    {{.f = -9.223372036854776e+18}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 9.223372036854776e+18}, {.f = 9007199254740992.0}, {.f = 16777216.0}, {.f = 300.0}, {.f = -129.0}, {.f = 1099511627776.0}},
    {{.f = -9.223372036854776e+18}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 9.223372036854776e+18}, {.f = 9007199254740992.0}, {.f = 16777217.0}, {.f = 300.0}, {.f = -129.0}, {.f = 1099511627779.0}},
    {{.f = -INFINITY}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = INFINITY}, {.f = INFINITY}, {.f = INFINITY}, {.f = 300.0}, {.f = -129.0}, {.f = INFINITY}},
    {{.f = -9.223372036854776e+18}, {.f = -1.0}, {.f = 0.0}, {.f = 1.0}, {.f = 9.223372036854776e+18}, {.f = 9007199254740992.0}, {.f = 16777216.0}, {.f = 300.0}, {.f = -129.0}, {.f = 1099511627776.0}},
    {{.i = 0LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = -1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 44LL}, {.i = 127LL}, {.i = 3LL}},
    {{.i = 0LL}, {.i = 255LL}, {.i = 0LL}, {.i = 1LL}, {.i = 255LL}, {.i = 1LL}, {.i = 1LL}, {.i = 44LL}, {.i = 127LL}, {.i = 3LL}},
    {{.i = 0LL}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = -1LL}, {.i = 1LL}, {.i = 16777217LL}, {.i = 300LL}, {.i = -129LL}, {.i = 3LL}},
    {{.i = (-INT64_MAX - 1)}, {.i = -1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 9223372036854775807LL}, {.i = 9007199254740993LL}, {.i = 16777217LL}, {.i = 300LL}, {.i = -129LL}, {.i = 1099511627779LL}},
    {{.i = 1LL}, {.i = 1LL}, {.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}, {.i = 1LL}},
};
static const cast_want want_BOOL[SP_DTYPE_COUNT][4] = {
    {{.f = 0.0}, {.f = 1.0}, {.f = 1.0}, {.f = 0.0}},
    {{.f = 0.0}, {.f = 1.0}, {.f = 1.0}, {.f = 0.0}},
    {{.f = 0.0}, {.f = 1.0}, {.f = 1.0}, {.f = 0.0}},
    {{.f = 0.0}, {.f = 1.0}, {.f = 1.0}, {.f = 0.0}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 0LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 0LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 0LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 0LL}},
    {{.i = 0LL}, {.i = 1LL}, {.i = 1LL}, {.i = 0LL}},
};

typedef struct cast_src {
    sp_dtype d;
    const void *data;
    int n;
    const cast_want (*want)[SP_DTYPE_COUNT];
} cast_src;

#define SRC(S) {SP_##S, src_##S, (int)(sizeof src_##S / sizeof src_##S[0]), NULL}

/* The raw element i of t (contiguous or not) compared with w; ints exactly
 * as int64, floats as doubles with NaN equal to NaN and -0 distinct from 0. */
static int elem_is(const sp_tensor *t, int64_t i, cast_want w) {
    const char *p = (const char *)sp_tensor_data(t) + i * t->strides[0] * (int64_t)sp_dtype_size(t->dtype);
    if (sp_dtype_is_int(t->dtype) || t->dtype == SP_BOOL) return sp_load_i64(t->dtype, p) == w.i;
    double v = sp_load_f64(t->dtype, p);
    if (isnan(w.f)) return isnan(v);
    return v == w.f && signbit(v) == signbit(w.f);
}

static void test_cast_all_pairs(void) {
    BEGIN();
    const cast_src srcs[SP_DTYPE_COUNT] = {SRC(F32), SRC(F64), SRC(F16), SRC(BF16), SRC(I8),
                                           SRC(U8),  SRC(I32), SRC(I64), SRC(BOOL)};
    const void *wants[SP_DTYPE_COUNT] = {want_F32, want_F64, want_F16, want_BF16, want_I8,
                                         want_U8,  want_I32, want_I64, want_BOOL};
    int bad = 0;
    for (int s = 0; s < SP_DTYPE_COUNT; s++) {
        const cast_src *cs = &srcs[s];
        const cast_want *w = wants[s]; /* [SP_DTYPE_COUNT][n] flattened */
        sp_tensor *t = sp_tensor_from_data(cs->d, 1, (int64_t[]){cs->n}, cs->data);
        /* The same values reversed, through a negative-stride view. */
        sp_tensor *rev = NULL;
        CHECK_OK(sp_tensor_slice(t, 0, SP_SLICE_NONE, SP_SLICE_NONE, -1, &rev));
        for (int d = 0; d < SP_DTYPE_COUNT; d++) {
            sp_tensor *c = NULL, *cr = NULL;
            CHECK_OK(sp_tensor_cast(t, (sp_dtype)d, &c));
            CHECK_OK(sp_tensor_cast(rev, (sp_dtype)d, &cr));
            CHECK(c->dtype == (sp_dtype)d && sp_tensor_is_contiguous(c) && c->buf != t->buf);
            for (int i = 0; i < cs->n; i++) {
                cast_want wi = w[d * cs->n + i];
                if (!elem_is(c, i, wi) || !elem_is(cr, cs->n - 1 - i, wi)) {
                    bad++;
                    fprintf(stderr, "  cast %s -> %s: element %d = %.17g, wanted %.17g / %lld\n",
                            sp_dtype_name(cs->d), sp_dtype_name((sp_dtype)d), i,
                            sp_tensor_get(c, (int64_t[]){i}), wi.f, wi.i);
                }
            }
            sp_tensor_release(c);
            sp_tensor_release(cr);
        }
        sp_tensor_release(rev);
        sp_tensor_release(t);
    }
    CHECK(bad == 0);
    END();
}

static void test_half_round_trip(void) {
    BEGIN();
    /* Every float16 and bfloat16 bit pattern survives f16/bf16 -> f32 -> back
     * and f16 -> f64 -> f16 (NaNs stay NaN). */
    int64_t n = 65536;
    sp_tensor *h = sp_tensor_new(SP_F16, 1, &n, SP_CPU), *b = sp_tensor_new(SP_BF16, 1, &n, SP_CPU);
    for (int64_t i = 0; i < n; i++) {
        ((uint16_t *)sp_tensor_data(h))[i] = (uint16_t)i;
        ((uint16_t *)sp_tensor_data(b))[i] = (uint16_t)i;
    }
    static const sp_dtype via[] = {SP_F32, SP_F64};
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        sp_tensor *src[2] = {h, b};
        for (int s = 0; s < 2; s++) {
            sp_tensor *w = NULL, *back = NULL;
            CHECK_OK(sp_tensor_cast(src[s], via[k], &w));
            CHECK_OK(sp_tensor_cast(w, src[s]->dtype, &back));
            for (int64_t i = 0; i < n; i++) {
                uint16_t x = (uint16_t)i, y = ((uint16_t *)sp_tensor_data(back))[i];
                float fx = s ? sp_bf16_to_f32(x) : sp_f16_to_f32(x);
                if (isnan(fx) ? !isnan(s ? sp_bf16_to_f32(y) : sp_f16_to_f32(y)) : x != y) bad++;
            }
            sp_tensor_release(w);
            sp_tensor_release(back);
        }
    }
    CHECK(bad == 0);
    /* float64 -> float16 rounds once: 1 + 2^-11 + 2^-40 is just above the
     * halfway point between 1 and the next half, so it rounds up (a trip
     * through float32 would land on the halfway point and round to even). */
    sp_tensor *d = sp_tensor_from_data(SP_F64, 1, (int64_t[]){2},
                                       (double[]){1 + 0x1p-11 + 0x1p-40, 65519.99});
    sp_tensor *hh = NULL;
    CHECK_OK(sp_tensor_cast(d, SP_F16, &hh));
    CHECK(sp_tensor_get(hh, (int64_t[]){0}) == 1 + 0x1p-10);
    CHECK(sp_tensor_get(hh, (int64_t[]){1}) == 65504);
    sp_tensor_release(hh);
    sp_tensor_release(d);
    sp_tensor_release(h);
    sp_tensor_release(b);
    END();
}

static void test_int64_exact(void) {
    BEGIN();
    int64_t v[3] = {INT64_MAX, INT64_MIN, (1LL << 53) + 1};
    sp_tensor *t = sp_tensor_from_data(SP_I64, 1, (int64_t[]){3}, v), *c = NULL, *s = NULL;
    CHECK_OK(sp_tensor_slice(t, 0, SP_SLICE_NONE, SP_SLICE_NONE, -1, &s));
    CHECK_OK(sp_tensor_cast(s, SP_I64, &c)); /* strided, same dtype */
    CHECK(((int64_t *)sp_tensor_data(c))[0] == (1LL << 53) + 1);
    CHECK(((int64_t *)sp_tensor_data(c))[2] == INT64_MAX);
    CHECK(((int64_t *)sp_tensor_data(c))[1] == INT64_MIN);
    sp_tensor_release(c);
    sp_tensor_release(s);
    sp_tensor_release(t);
    END();
}

static void test_contiguous(void) {
    BEGIN();
    /* A transposed 3-d tensor big enough to be split across threads. */
    int64_t shape[3] = {40, 50, 33};
    sp_tensor *t = sp_tensor_new(SP_I32, 3, shape, SP_CPU), *p = NULL, *c = NULL;
    int32_t *d = sp_tensor_data(t);
    for (int64_t i = 0; i < 40 * 50 * 33; i++) d[i] = (int32_t)(i * 7 - 3);
    CHECK_OK(sp_tensor_contiguous(t, &c));
    CHECK(c == t); /* already contiguous: the same tensor, retained */
    CHECK(t->refcount == 2);
    sp_tensor_release(c);
    CHECK_OK(sp_tensor_permute(t, (int[]){2, 0, 1}, &p));
    CHECK_OK(sp_tensor_contiguous(p, &c));
    CHECK(c != p && sp_tensor_is_contiguous(c) && c->shape[0] == 33 && c->shape[2] == 50);
    int bad = 0;
    const int32_t *o = sp_tensor_data(c);
    for (int64_t k = 0; k < 33; k++)
        for (int64_t i = 0; i < 40; i++)
            for (int64_t j = 0; j < 50; j++)
                if (o[(k * 40 + i) * 50 + j] != d[(i * 50 + j) * 33 + k]) bad++;
    CHECK(bad == 0);
    sp_tensor_release(c);
    /* Same copy into float64 with one thread and with four: identical. */
    sp_tensor *c1 = NULL, *c4 = NULL;
    int nt = sp_get_num_threads();
    CHECK_OK(sp_set_num_threads(1));
    CHECK_OK(sp_tensor_cast(p, SP_F64, &c1));
    CHECK_OK(sp_set_num_threads(4));
    CHECK_OK(sp_tensor_cast(p, SP_F64, &c4));
    CHECK_OK(sp_set_num_threads(nt));
    CHECK(memcmp(sp_tensor_data(c1), sp_tensor_data(c4), sp_tensor_nbytes(c1)) == 0);
    CHECK(((double *)sp_tensor_data(c4))[33 * 40 * 50 - 1] == (double)d[40 * 50 * 33 - 1]);
    sp_tensor_release(c1);
    sp_tensor_release(c4);
    /* A transposed matrix whose sides are not multiples of the copy tile. */
    sp_tensor *m = sp_tensor_new(SP_F64, 2, (int64_t[]){37, 45}, SP_CPU), *mt = NULL, *mc = NULL;
    for (int64_t i = 0; i < 37 * 45; i++) ((double *)sp_tensor_data(m))[i] = (double)i;
    CHECK_OK(sp_tensor_transpose(m, 0, 1, &mt));
    CHECK_OK(sp_tensor_cast(mt, SP_F32, &mc));
    bad = 0;
    for (int64_t i = 0; i < 45; i++)
        for (int64_t j = 0; j < 37; j++)
            if (((float *)sp_tensor_data(mc))[i * 37 + j] != (float)(j * 45 + i)) bad++;
    CHECK(bad == 0);
    sp_tensor_release(mc);
    sp_tensor_release(mt);
    sp_tensor_release(m);
    sp_tensor_release(p);
    sp_tensor_release(t);
    END();
}

static void test_copy_into_broadcast(void) {
    BEGIN();
    /* dst = base[:, ::2] of a (4, 6) float64 base; src is int32 (1, 3). */
    sp_tensor *base = sp_tensor_zeros(SP_F64, 2, (int64_t[]){4, 6}, SP_CPU), *dst = NULL;
    CHECK_OK(sp_tensor_fill(base, -1));
    CHECK_OK(sp_tensor_slice(base, 1, SP_SLICE_NONE, SP_SLICE_NONE, 2, &dst));
    sp_tensor *src = sp_tensor_from_data(SP_I32, 2, (int64_t[]){1, 3}, (int32_t[]){10, 20, 30});
    CHECK_OK(sp_tensor_copy_into(dst, src));
    const double *b = sp_tensor_data(base);
    int bad = 0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 6; j++)
            if (b[i * 6 + j] != (j % 2 ? -1 : 10 * (j / 2 + 1))) bad++;
    CHECK(bad == 0);
    /* A 1-d source broadcast along a leading axis, into a reversed view. */
    sp_tensor *rv = NULL;
    CHECK_OK(sp_tensor_slice(base, 0, SP_SLICE_NONE, SP_SLICE_NONE, -1, &rv));
    sp_tensor *row = sp_tensor_from_data(SP_F32, 1, (int64_t[]){6}, (float[]){1, 2, 3, 4, 5, 6});
    CHECK_OK(sp_tensor_copy_into(rv, row));
    CHECK(b[0] == 1 && b[23] == 6 && b[13] == 2);
    /* A 0-d source fills everything. */
    sp_tensor *z = sp_tensor_scalar(SP_BOOL, 1);
    CHECK_OK(sp_tensor_copy_into(dst, z));
    CHECK(b[0] == 1 && b[1] == 2 && b[2] == 1 && b[22] == 1);
    CHECK_ERR(sp_tensor_copy_into(dst, row), SP_ERR_SHAPE,
              "cannot broadcast source shape (6,) to (4, 3)");
    CHECK_ERR(sp_tensor_copy_into(src, base), SP_ERR_SHAPE, "(4, 6) to (1, 3)");
    sp_tensor_release(z);
    sp_tensor_release(row);
    sp_tensor_release(rv);
    sp_tensor_release(src);
    sp_tensor_release(dst);
    sp_tensor_release(base);
    END();
}

static void test_copy_into_overlap(void) {
    BEGIN();
    /* a[1:] = a[:-1], as numpy does it: the old values shift right. */
    sp_tensor *a = sp_tensor_from_data(SP_I64, 1, (int64_t[]){6}, (int64_t[]){0, 1, 2, 3, 4, 5});
    sp_tensor *hi = NULL, *lo = NULL;
    CHECK_OK(sp_tensor_slice(a, 0, 1, SP_SLICE_NONE, 1, &hi));
    CHECK_OK(sp_tensor_slice(a, 0, SP_SLICE_NONE, -1, 1, &lo));
    CHECK_OK(sp_tensor_copy_into(hi, lo));
    const int64_t *d = sp_tensor_data(a);
    CHECK(d[0] == 0 && d[1] == 0 && d[2] == 1 && d[5] == 4);
    sp_tensor_release(hi);
    sp_tensor_release(lo);
    sp_tensor_release(a);
    END();
}

static void test_fill(void) {
    BEGIN();
    sp_tensor *t = sp_tensor_zeros(SP_U8, 2, (int64_t[]){3, 4}, SP_CPU), *col = NULL;
    CHECK_OK(sp_tensor_slice(t, 1, 1, 2, 1, &col));
    CHECK_OK(sp_tensor_fill(col, -1.5)); /* truncates to -1, wraps to 255 */
    const uint8_t *d = sp_tensor_data(t);
    CHECK(d[1] == 255 && d[5] == 255 && d[9] == 255 && d[0] == 0 && d[2] == 0 && d[11] == 0);
    CHECK_OK(sp_tensor_fill(t, NAN)); /* NaN to an integer: 0, defined */
    CHECK(d[1] == 0 && d[11] == 0);
    sp_tensor *h = sp_tensor_new(SP_BF16, 1, (int64_t[]){70000}, SP_CPU);
    CHECK_OK(sp_tensor_fill(h, 1.0 / 3));
    CHECK(sp_tensor_get(h, (int64_t[]){69999}) == 0.333984375);
    sp_tensor *e = sp_tensor_new(SP_F32, 2, (int64_t[]){0, 3}, SP_CPU);
    CHECK_OK(sp_tensor_fill(e, 1)); /* empty: nothing to do */
    sp_tensor *s = sp_tensor_scalar(SP_I64, 0);
    CHECK_OK(sp_tensor_fill(s, -9007199254740992.0));
    CHECK(*(int64_t *)sp_tensor_data(s) == -9007199254740992LL);
    sp_tensor_release(s);
    sp_tensor_release(e);
    sp_tensor_release(h);
    sp_tensor_release(col);
    sp_tensor_release(t);
    END();
}

static void test_errors(void) {
    BEGIN();
    sp_tensor *t = sp_tensor_zeros(SP_F32, 1, (int64_t[]){2}, SP_CPU), *o = (sp_tensor *)1;
    CHECK_ERR(sp_tensor_cast(t, SP_DTYPE_COUNT, &o), SP_ERR_DTYPE, "invalid dtype");
    CHECK(o == NULL);
    CHECK_ERR(sp_tensor_cast(NULL, SP_F32, &o), SP_ERR_ARG, "NULL");
    CHECK_ERR(sp_tensor_copy_into(t, NULL), SP_ERR_ARG, "NULL");
    CHECK_ERR(sp_tensor_fill(NULL, 0), SP_ERR_ARG, "NULL");
    sp_tensor_release(t);
    END();
}

int main(void) {
    RUN(test_cast_all_pairs);
    RUN(test_half_round_trip);
    RUN(test_int64_exact);
    RUN(test_contiguous);
    RUN(test_copy_into_broadcast);
    RUN(test_copy_into_overlap);
    RUN(test_fill);
    RUN(test_errors);
    return TEST_SUMMARY();
}
