/*
 * test_reduce_shape.c -- hand-checked cases for the CPU reduction, shape
 * and index kernels (reduce.c, shape.c, index.c, strided_copy.c).
 *
 * The registry-driven numpy tests (tests/ops/ *.py) cover every op on
 * random inputs; this file pins the corners where a plausible bug gives a
 * plausible number: reductions over non-adjacent axes with keepdims, ties
 * and NaN in argmax, logsumexp of huge values, integer widening, empty
 * reductions, reflect padding, negative slice steps, views as inputs
 * (transposed, reversed), repeated scatter indices and the error messages
 * for bad indices.  Expected values were computed with numpy/torch
 * (/usr/bin/python3) and are written out here.  A second group checks the
 * kernels' loop shapes (row, column, chunked) against a naive reference on
 * larger tensors, and that results do not depend on the thread count.
 */
#include <stdlib.h>

#include "backend/cpu/cpu.h"
#include "test.h"

/* ---- helpers ------------------------------------------------------------- */

static sp_tensor *tf32(int nd, const int64_t *shape, const float *v) {
    return sp_tensor_from_data(SP_F32, nd, shape, v);
}

/* Calls op `name`; returns the single output (NULL on failure, reported). */
static sp_tensor *call1(const char *name, int n_in, sp_tensor *const *in, const sp_attrs *at) {
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n_out = 0;
    sp_status st = sp_op_call_name(name, n_in, in, at, &n_out, out);
    if (st) {
        fprintf(stderr, "  %s failed: %s\n", name, sp_last_error());
        return NULL;
    }
    return out[0];
}

/* Nonzero when t has shape (nd, shape) and its elements (C order) equal
 * want[] within tol (relative); prints the first mismatch. */
static int same(const sp_tensor *t, int nd, const int64_t *shape, const double *want, double tol) {
    if (!t) return 0;
    if (t->ndim != nd) {
        fprintf(stderr, "  ndim %d, wanted %d\n", t->ndim, nd);
        return 0;
    }
    for (int i = 0; i < nd; i++)
        if (t->shape[i] != shape[i]) {
            fprintf(stderr, "  dim %d is %lld, wanted %lld\n", i, (long long)t->shape[i],
                    (long long)shape[i]);
            return 0;
        }
    int64_t n = sp_tensor_numel(t), idx[SP_MAX_DIMS];
    for (int64_t k = 0; k < n; k++) {
        int64_t r = k;
        for (int i = nd - 1; i >= 0; i--) idx[i] = r % shape[i], r /= shape[i];
        double g = sp_tensor_get(t, idx), w = want[k];
        int ok = (isnan(w) && isnan(g)) || g == w || fabs(g - w) <= tol * (1 + fabs(w));
        if (!ok) {
            fprintf(stderr, "  element %lld is %.17g, wanted %.17g\n", (long long)k, g, w);
            return 0;
        }
    }
    return 1;
}

#define S(...) ((const int64_t[]){__VA_ARGS__})
#define D(...) ((const double[]){__VA_ARGS__})

/* ---- reductions ---------------------------------------------------------- */

static void test_reduce_axes_keepdims(void) {
    float v[24];
    for (int i = 0; i < 24; i++) v[i] = (float)i;
    sp_tensor *x = tf32(3, S(2, 3, 4), v);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "axes", 2, S(0, -1));
    sp_attrs_set_int(&at, "keepdims", 1);
    sp_tensor *y = call1("sum", 1, &x, &at);
    CHECK(same(y, 3, S(1, 3, 1), D(60, 92, 124), 0));
    sp_tensor_release(y);
    sp_attrs_set_int(&at, "keepdims", 0);
    y = call1("mean", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(7.5, 11.5, 15.5), 0));
    sp_tensor_release(y);
    y = call1("max", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(15, 19, 23), 0));
    sp_tensor_release(y);
    y = call1("min", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(0, 4, 8), 0));
    sp_tensor_release(y);
    /* axes absent: everything, 0-d result */
    y = call1("sum", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(276), 0));
    sp_tensor_release(y);
    /* over axis 1 only: the kept inner dim makes this the column shape */
    sp_attrs_set_ints(&at, "axes", 1, S(1));
    y = call1("sum", 1, &x, &at);
    CHECK(same(y, 2, S(2, 4), D(12, 15, 18, 21, 48, 51, 54, 57), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);

    /* prod of (x+1) over (0, 2), numpy: 1048320, 195350400, 3029685248 */
    for (int i = 0; i < 24; i++) v[i] = (float)(i + 1);
    x = tf32(3, S(2, 3, 4), v);
    sp_attrs_set_ints(&at, "axes", 2, S(0, 2));
    y = call1("prod", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(1048320.0, 195350400.0, 3029685248.0), 1e-7));
    sp_tensor_release(y);
    sp_tensor_release(x);
}

static void test_argmax_ties_nan(void) {
    float a[6] = {1, 5, 3, 5, 3, 2}; /* [[1,5],[3,5],[3,2]] */
    sp_tensor *x = tf32(2, S(3, 2), a);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "axis", 0);
    sp_tensor *y = call1("argmax", 1, &x, &at);
    CHECK(same(y, 1, S(2), D(1, 0), 0));
    CHECK(y && y->dtype == SP_I64);
    sp_tensor_release(y);
    y = call1("argmin", 1, &x, &at);
    CHECK(same(y, 1, S(2), D(0, 2), 0));
    sp_tensor_release(y);
    sp_attrs_set_int(&at, "axis", 1);
    sp_attrs_set_int(&at, "keepdims", 1);
    y = call1("argmax", 1, &x, &at);
    CHECK(same(y, 2, S(3, 1), D(1, 1, 0), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);

    float b[4] = {1, NAN, 5, NAN};
    x = tf32(1, S(4), b);
    y = call1("argmax", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(1), 0));
    sp_tensor_release(y);
    y = call1("argmin", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(1), 0));
    sp_tensor_release(y);
    y = call1("max", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(NAN), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);

    /* flattened argmax of a transposed view: [[3,3,0],[1,9,9]] -> 4, argmin 2 */
    float c[6] = {3, 1, 3, 9, 0, 9};
    sp_tensor *base = tf32(2, S(3, 2), c), *t = NULL;
    CHECK_OK(sp_tensor_transpose(base, 0, 1, &t));
    y = call1("argmax", 1, &t, NULL);
    CHECK(same(y, 0, NULL, D(4), 0));
    sp_tensor_release(y);
    y = call1("argmin", 1, &t, NULL);
    CHECK(same(y, 0, NULL, D(2), 0));
    sp_tensor_release(y);
    sp_tensor_release(t);
    sp_tensor_release(base);

    /* int64 values beyond 2^53 must compare exactly */
    int64_t big[3] = {(int64_t)1 << 62, ((int64_t)1 << 62) + 1, ((int64_t)1 << 62) - 1};
    x = sp_tensor_from_data(SP_I64, 1, S(3), big);
    y = call1("argmax", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(1), 0));
    sp_tensor_release(y);
    y = call1("max", 1, &x, NULL);
    CHECK(y && *(int64_t *)sp_tensor_data(y) == big[1]);
    sp_tensor_release(y);
    sp_tensor_release(x);
}

static void test_logsumexp(void) {
    float a[2] = {1000, 1000};
    sp_tensor *x = tf32(1, S(2), a);
    sp_tensor *y = call1("logsumexp", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(1000.6931471805599), 1e-7));
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* rows: all -inf -> -inf; a +inf -> inf; NaN -> NaN; [-1000,-1000] */
    float b[8] = {-INFINITY, -INFINITY, 1, INFINITY, NAN, 0, -1000, -1000};
    x = tf32(2, S(4, 2), b);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "axes", 1, S(1));
    y = call1("logsumexp", 1, &x, &at);
    CHECK(same(y, 1, S(4), D(-INFINITY, INFINITY, NAN, -999.30685281944005), 1e-7));
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* column shape: over axis 0 of [[1000, -1], [1000, -1]] */
    double c[4] = {1000, -1, 1000, -1};
    x = sp_tensor_from_data(SP_F64, 2, S(2, 2), c);
    sp_attrs_set_ints(&at, "axes", 1, S(0));
    y = call1("logsumexp", 1, &x, &at);
    CHECK(same(y, 1, S(2), D(1000.6931471805599, -0.30685281944005466), 1e-14));
    sp_tensor_release(y);
    sp_tensor_release(x);
}

static void test_cumsum(void) {
    int32_t a[3] = {2147483647, 1, -5};
    sp_tensor *x = sp_tensor_from_data(SP_I32, 1, S(3), a);
    sp_tensor *y = call1("cumsum", 1, &x, NULL);
    CHECK(y && y->dtype == SP_I64);
    CHECK(same(y, 1, S(3), D(2147483647.0, 2147483648.0, 2147483643.0), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    float b[6] = {0, 1, 2, 3, 4, 5};
    x = tf32(2, S(2, 3), b);
    y = call1("cumsum", 1, &x, NULL);
    CHECK(same(y, 2, S(2, 3), D(0, 1, 2, 3, 5, 7), 0));
    sp_tensor_release(y);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "axis", -1);
    y = call1("cumsum", 1, &x, &at);
    CHECK(same(y, 2, S(2, 3), D(0, 1, 3, 3, 7, 12), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
}

static void test_empty_reductions(void) {
    sp_tensor *x = sp_tensor_zeros(SP_F32, 2, S(0, 3), SP_CPU);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "axes", 1, S(0));
    sp_tensor *y = call1("sum", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(0, 0, 0), 0));
    sp_tensor_release(y);
    y = call1("prod", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(1, 1, 1), 0));
    sp_tensor_release(y);
    y = call1("mean", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(NAN, NAN, NAN), 0));
    sp_tensor_release(y);
    y = call1("logsumexp", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(-INFINITY, -INFINITY, -INFINITY), 0));
    sp_tensor_release(y);
    /* over the non-empty axis: an empty result, no error */
    sp_attrs_set_ints(&at, "axes", 1, S(1));
    y = call1("max", 1, &x, &at);
    CHECK(same(y, 1, S(0), NULL, 0));
    sp_tensor_release(y);
    sp_tensor *out[SP_MAX_OUTPUTS];
    int n_out;
    sp_attrs_set_ints(&at, "axes", 1, S(0));
    CHECK_ERR(sp_op_call_name("max", 1, &x, &at, &n_out, out), SP_ERR_SHAPE, "max");
    /* the kernel itself refuses too, when called past inference */
    sp_tensor *o3 = sp_tensor_zeros(SP_F32, 1, S(3), SP_CPU);
    sp_kernel_args ka = {.op = SP_OP_MIN, .n_in = 1, .in = &x, .n_out = 1, .out = &o3,
                         .attrs = &at};
    CHECK_ERR(cpu_min(&ka), SP_ERR_SHAPE, "min: cannot reduce over an empty axis");
    sp_tensor_release(o3);
    sp_tensor_release(x);
    /* sum of bool -> int64 */
    uint8_t bb[5] = {1, 0, 1, 1, 1};
    x = sp_tensor_from_data(SP_BOOL, 1, S(5), bb);
    y = call1("sum", 1, &x, NULL);
    CHECK(y && y->dtype == SP_I64);
    CHECK(same(y, 0, NULL, D(4), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
}

/* float32 sums against the float64 numpy reference: x_i = float32(((i*7919)
 * % 10007)/10007 - 0.25); numpy's float64 sum is 24995.494953902235, and
 * over axis 0 of its (1000, 100) reshape the first three columns are
 * 253.58509053, 251.93114818, 249.27720603. */
static void test_sum_accuracy(void) {
    int n = 100000;
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) v[i] = (float)((double)(((int64_t)i * 7919) % 10007) / 10007.0 - 0.25);
    sp_tensor *x = tf32(1, S(n), v);
    sp_tensor *y = call1("sum", 1, &x, NULL);
    CHECK(y && fabs(sp_tensor_get(y, NULL) - 24995.494953902235) <= 1e-6 * 24995.5);
    sp_tensor_release(y);
    sp_tensor *x2 = NULL;
    CHECK_OK(sp_tensor_reshape(x, 2, S(1000, 100), &x2));
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "axes", 1, S(0));
    y = call1("sum", 1, &x2, &at);
    if (y) {
        CHECK(y->ndim == 1 && y->shape[0] == 100);
        CHECK_NEAR(sp_tensor_get(y, S(0)), 253.58509053, 1e-6);
        CHECK_NEAR(sp_tensor_get(y, S(1)), 251.93114818, 1e-6);
        CHECK_NEAR(sp_tensor_get(y, S(2)), 249.27720603, 1e-6);
    }
    sp_tensor_release(y);
    sp_tensor_release(x2);
    sp_tensor_release(x);
    free(v);
}

/* ---- shape kernels --------------------------------------------------------- */

static void test_pad(void) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    sp_tensor *x = tf32(2, S(2, 3), a);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "pads", 4, S(1, 1, 2, 2));
    sp_attrs_set_str(&at, "mode", "reflect");
    sp_tensor *y = call1("pad", 1, &x, &at);
    CHECK(same(y, 2, S(4, 7),
               D(6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2, 1, 6, 5, 4, 5, 6, 5, 4, 3, 2, 1, 2, 3, 2,
                 1),
               0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* constant 9 around a transposed view of arange(6).reshape(2,3) */
    float b[6] = {0, 1, 2, 3, 4, 5};
    sp_tensor *base = tf32(2, S(2, 3), b), *t = NULL;
    CHECK_OK(sp_tensor_transpose(base, 0, 1, &t));
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "pads", 4, S(0, 1, 2, 0));
    sp_attrs_set_float(&at, "value", 9);
    y = call1("pad", 1, &t, &at);
    CHECK(same(y, 2, S(4, 4), D(9, 9, 0, 3, 9, 9, 1, 4, 9, 9, 2, 5, 9, 9, 9, 9), 0));
    sp_tensor_release(y);
    sp_tensor_release(t);
    sp_tensor_release(base);
}

static void test_slice(void) {
    float a[12];
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    sp_tensor *x = tf32(1, S(10), a);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "begin", 1, S(8));
    sp_attrs_set_ints(&at, "end", 1, S(2));
    sp_attrs_set_ints(&at, "step", 1, S(-2));
    sp_tensor *y = call1("slice", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(8, 6, 4), 0));
    sp_tensor_release(y);
    /* [-100:100:3] clamps: 0, 3, 6, 9 */
    sp_attrs_set_ints(&at, "begin", 1, S(-100));
    sp_attrs_set_ints(&at, "end", 1, S(100));
    sp_attrs_set_ints(&at, "step", 1, S(3));
    y = call1("slice", 1, &x, &at);
    CHECK(same(y, 1, S(4), D(0, 3, 6, 9), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* arange(12).reshape(3,4)[::-1, 1::2] = [[9,11],[5,7],[1,3]] */
    x = tf32(2, S(3, 4), a);
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "begin", 2, S(SP_SLICE_NONE, 1));
    sp_attrs_set_ints(&at, "end", 2, S(SP_SLICE_NONE, SP_SLICE_NONE));
    sp_attrs_set_ints(&at, "step", 2, S(-1, 2));
    y = call1("slice", 1, &x, &at);
    CHECK(same(y, 2, S(3, 2), D(9, 11, 5, 7, 1, 3), 0));
    /* and a reduction over that reversed result's source view */
    sp_tensor *rv = NULL;
    CHECK_OK(sp_tensor_slice(x, 0, SP_SLICE_NONE, SP_SLICE_NONE, -1, &rv));
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "axes", 1, S(0));
    sp_tensor *s = call1("sum", 1, &rv, &at);
    CHECK(same(s, 1, S(4), D(12, 15, 18, 21), 0));
    sp_tensor_release(s);
    sp_tensor_release(rv);
    sp_tensor_release(y);
    sp_tensor_release(x);
}

static void test_concat_split_stack(void) {
    float a[6] = {0, 1, 2, 3, 4, 5};
    sp_tensor *base = tf32(2, S(2, 3), a), *t = NULL;
    CHECK_OK(sp_tensor_transpose(base, 0, 1, &t));
    sp_tensor *ones = sp_tensor_new(SP_F32, 2, S(3, 1), SP_CPU);
    sp_tensor_fill(ones, 1);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "axis", 1);
    sp_tensor *in[2] = {t, ones};
    sp_tensor *y = call1("concat", 2, in, &at);
    CHECK(same(y, 2, S(3, 3), D(0, 3, 1, 1, 4, 1, 2, 5, 1), 0));
    sp_tensor_release(y);
    /* mixed dtypes: int32 then float32 -> float64 (numpy promotion) */
    int32_t iv[3] = {7, -8, 9};
    sp_tensor *ic = sp_tensor_from_data(SP_I32, 2, S(3, 1), iv);
    in[0] = ic;
    y = call1("concat", 2, in, &at);
    CHECK(y && y->dtype == SP_F64);
    CHECK(same(y, 2, S(3, 2), D(7, 1, -8, 1, 9, 1), 0));
    sp_tensor_release(y);
    /* stack along the new last axis */
    in[0] = t, in[1] = t;
    sp_attrs_set_int(&at, "axis", -1);
    y = call1("stack", 2, in, &at);
    CHECK(same(y, 3, S(3, 2, 2), D(0, 0, 3, 3, 1, 1, 4, 4, 2, 2, 5, 5), 0));
    sp_tensor_release(y);
    /* split the transposed view on axis 0 into (1, 2) */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "sizes", 2, S(1, 2));
    sp_tensor *outs[SP_MAX_OUTPUTS] = {0};
    int n_out = 0;
    CHECK_OK(sp_op_call_name("split", 1, &t, &at, &n_out, outs));
    CHECK(n_out == 2);
    CHECK(same(outs[0], 2, S(1, 2), D(0, 3), 0));
    CHECK(same(outs[1], 2, S(2, 2), D(1, 4, 2, 5), 0));
    sp_tensor_release(outs[0]);
    sp_tensor_release(outs[1]);
    /* reshape of the transposed view reads it in C order */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "shape", 1, S(-1));
    y = call1("reshape", 1, &t, &at);
    CHECK(same(y, 1, S(6), D(0, 3, 1, 4, 2, 5), 0));
    sp_tensor_release(y);
    sp_tensor_release(ic);
    sp_tensor_release(ones);
    sp_tensor_release(t);
    sp_tensor_release(base);
}

static void test_tile_broadcast_transpose(void) {
    float a[4] = {1, 2, 3, 4};
    sp_tensor *x = tf32(2, S(2, 2), a);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "reps", 3, S(2, 1, 2));
    sp_tensor *y = call1("tile", 1, &x, &at);
    CHECK(same(y, 3, S(2, 2, 4), D(1, 2, 1, 2, 3, 4, 3, 4, 1, 2, 1, 2, 3, 4, 3, 4), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    x = tf32(1, S(3), a);
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "shape", 2, S(2, 3));
    y = call1("broadcast_to", 1, &x, &at);
    CHECK(same(y, 2, S(2, 3), D(1, 2, 3, 1, 2, 3), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);

    /* a transpose big enough for the tiled path, odd sizes on purpose */
    int64_t R = 67, C = 130, B = 3;
    float *v = malloc(sizeof(float) * (size_t)(B * R * C));
    for (int64_t i = 0; i < B * R * C; i++) v[i] = (float)i;
    x = tf32(3, S(B, R, C), v);
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "perm", 3, S(2, 0, 1));
    y = call1("transpose", 1, &x, &at);
    int bad = !y || y->ndim != 3 || y->shape[0] != C || y->shape[1] != B || y->shape[2] != R;
    for (int64_t c = 0; !bad && c < C; c++)
        for (int64_t b = 0; b < B; b++)
            for (int64_t r = 0; r < R; r++)
                if (((float *)sp_tensor_data(y))[(c * B + b) * R + r] != v[(b * R + r) * C + c])
                    bad = 1;
    CHECK(!bad);
    sp_tensor_release(y);
    sp_tensor_release(x);
    free(v);
}

/* ---- index kernels --------------------------------------------------------- */

static void test_gather(void) {
    float a[5] = {10, 11, 12, 13, 14};
    sp_tensor *x = tf32(1, S(5), a);
    int64_t bad[2] = {1, 7}, good[3] = {-1, 0, 2};
    sp_tensor *ib = sp_tensor_from_data(SP_I64, 1, S(2), bad);
    sp_tensor *ig = sp_tensor_from_data(SP_I64, 1, S(3), good);
    sp_tensor *in[2] = {x, ib}, *out[SP_MAX_OUTPUTS];
    int n_out;
    CHECK_ERR(sp_op_call_name("gather", 2, in, NULL, &n_out, out), SP_ERR_ARG,
              "gather: index 7 out of range for axis 0 of size 5");
    in[1] = ig;
    sp_tensor *y = call1("gather", 2, in, NULL);
    CHECK(same(y, 1, S(3), D(14, 10, 12), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* np.take(arange(6).reshape(2,3)*10, [[2,0],[-1,1]], axis=1) */
    float b[6] = {0, 10, 20, 30, 40, 50};
    int32_t i2[4] = {2, 0, -1, 1};
    x = tf32(2, S(2, 3), b);
    sp_tensor *ii = sp_tensor_from_data(SP_I32, 2, S(2, 2), i2);
    in[0] = x, in[1] = ii;
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "axis", 1);
    y = call1("gather", 2, in, &at);
    CHECK(same(y, 3, S(2, 2, 2), D(20, 0, 20, 10, 50, 30, 50, 40), 0));
    sp_tensor_release(y);
    sp_tensor_release(ii);
    sp_tensor_release(x);
    sp_tensor_release(ib);
    sp_tensor_release(ig);
}

static void test_take_along_axis(void) {
    float a[6] = {1, 2, 3, 4, 5, 6};
    int64_t i[4] = {2, 0, 1, 1}, ib[4] = {0, 1, 3, 0};
    sp_tensor *x = tf32(2, S(2, 3), a);
    sp_tensor *idx = sp_tensor_from_data(SP_I64, 2, S(2, 2), i);
    sp_tensor *in[2] = {x, idx}, *out[SP_MAX_OUTPUTS];
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "axis", 1);
    sp_tensor *y = call1("take_along_axis", 2, in, &at);
    CHECK(same(y, 2, S(2, 2), D(3, 1, 5, 5), 0));
    sp_tensor_release(y);
    sp_tensor_release(idx);
    idx = sp_tensor_from_data(SP_I64, 2, S(2, 2), ib);
    in[1] = idx;
    int n_out;
    CHECK_ERR(sp_op_call_name("take_along_axis", 2, in, &at, &n_out, out), SP_ERR_ARG,
              "take_along_axis: index 3 out of range for axis 1 of size 3");
    sp_tensor_release(idx);
    sp_tensor_release(x);
}

static void test_scatter_add(void) {
    /* torch: x.scatter_add(0, idx, u) = [[7, 32], [3, 74], [9, 6]] */
    float a[6] = {1, 2, 3, 4, 5, 6}, u[8] = {1, 10, 2, 20, 3, 30, 4, 40};
    int64_t i[8] = {0, 1, 0, 1, 0, 0, 2, 1};
    sp_tensor *x = tf32(2, S(3, 2), a), *up = tf32(2, S(4, 2), u);
    sp_tensor *idx = sp_tensor_from_data(SP_I64, 2, S(4, 2), i);
    sp_tensor *in[3] = {x, idx, up}, *out[SP_MAX_OUTPUTS];
    sp_tensor *y = call1("scatter_add", 3, in, NULL);
    CHECK(same(y, 2, S(3, 2), D(7, 32, 3, 74, 9, 6), 0));
    sp_tensor_release(y);
    CHECK(a[0] == 1); /* x untouched */
    i[5] = 3;
    sp_tensor *ib = sp_tensor_from_data(SP_I64, 2, S(4, 2), i);
    in[1] = ib;
    int n_out;
    CHECK_ERR(sp_op_call_name("scatter_add", 3, in, NULL, &n_out, out), SP_ERR_ARG,
              "scatter_add: index 3 out of range for axis 0 of size 3");
    sp_tensor_release(ib);
    sp_tensor_release(idx);
    sp_tensor_release(up);
    sp_tensor_release(x);
}

static void test_one_hot(void) {
    int32_t i[4] = {0, 2, -1, 3};
    sp_tensor *idx = sp_tensor_from_data(SP_I32, 1, S(4), i);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_int(&at, "depth", 3);
    sp_attrs_set_dtype(&at, "dtype", SP_I32);
    sp_attrs_set_float(&at, "on_value", 5);
    sp_attrs_set_float(&at, "off_value", -1);
    sp_tensor *y = call1("one_hot", 1, &idx, &at);
    CHECK(y && y->dtype == SP_I32);
    CHECK(same(y, 2, S(4, 3), D(5, -1, -1, -1, -1, 5, -1, -1, -1, -1, -1, -1), 0));
    sp_tensor_release(y);
    sp_tensor_release(idx);
}

/* ---- loop shapes against a naive reference ------------------------------- */

/* Naive reduction of the f64 view v over the axes in mask: sum, max, min
 * and argmax (the first index in the C order of the reduced dims). */
static void naive_reduce(const sp_tensor *v, unsigned mask, double *sum, double *mx, double *mn,
                         int64_t *am, int64_t nout) {
    int nd = v->ndim;
    int64_t n = sp_tensor_numel(v), idx[SP_MAX_DIMS];
    for (int64_t o = 0; o < nout; o++) sum[o] = 0, mx[o] = -INFINITY, mn[o] = INFINITY, am[o] = -1;
    const double *d = sp_tensor_data(v);
    for (int64_t k = 0; k < n; k++) {
        int64_t r = k, off = 0, o = 0, rl = 0;
        for (int i = nd - 1; i >= 0; i--) idx[i] = r % v->shape[i], r /= v->shape[i];
        for (int i = 0; i < nd; i++) {
            off += idx[i] * v->strides[i];
            if (mask >> i & 1)
                rl = rl * v->shape[i] + idx[i];
            else
                o = o * v->shape[i] + idx[i];
        }
        double x = d[off];
        sum[o] += x;
        if (x > mx[o]) mx[o] = x, am[o] = rl;
        if (x < mn[o]) mn[o] = x;
    }
}

static void check_view_reductions(sp_tensor *v) {
    int nd = v->ndim;
    int64_t total = sp_tensor_numel(v);
    double *sum = malloc(sizeof(double) * (size_t)total * 3);
    double *mx = sum + total, *mn = mx + total;
    int64_t *am = malloc(sizeof(int64_t) * (size_t)total);
    for (unsigned mask = 1; mask < (1u << nd); mask++) {
        int64_t axes[SP_MAX_DIMS], nout = 1;
        int na = 0;
        for (int i = 0; i < nd; i++)
            if (mask >> i & 1)
                axes[na++] = i;
            else
                nout *= v->shape[i];
        naive_reduce(v, mask, sum, mx, mn, am, nout);
        sp_attrs at;
        sp_attrs_init(&at);
        sp_attrs_set_ints(&at, "axes", na, axes);
        sp_tensor *ys = call1("sum", 1, &v, &at), *yx = call1("max", 1, &v, &at);
        sp_tensor *yn = call1("min", 1, &v, &at), *ya = NULL;
        if (na == 1) {
            sp_attrs_init(&at);
            sp_attrs_set_int(&at, "axis", axes[0]);
            ya = call1("argmax", 1, &v, &at);
        }
        int ok = ys && yx && yn && (na != 1 || ya);
        for (int64_t o = 0; ok && o < nout; o++) {
            ok = fabs(((double *)sp_tensor_data(ys))[o] - sum[o]) <= 1e-12 * (1 + fabs(sum[o])) &&
                 ((double *)sp_tensor_data(yx))[o] == mx[o] &&
                 ((double *)sp_tensor_data(yn))[o] == mn[o] &&
                 (na != 1 || ((int64_t *)sp_tensor_data(ya))[o] == am[o]);
            if (!ok) fprintf(stderr, "  mask %u output %lld differs\n", mask, (long long)o);
        }
        CHECK(ok);
        sp_tensor_release(ys), sp_tensor_release(yx), sp_tensor_release(yn), sp_tensor_release(ya);
    }
    /* flattened argmax */
    naive_reduce(v, (1u << nd) - 1, sum, mx, mn, am, 1);
    sp_tensor *ya = call1("argmax", 1, &v, NULL);
    CHECK(ya && *(int64_t *)sp_tensor_data(ya) == am[0]);
    sp_tensor_release(ya);
    free(am);
    free(sum);
}

static void test_reduce_vs_naive(void) {
    int64_t shape[4] = {6, 5, 40, 33}, n = 6 * 5 * 40 * 33;
    double *v = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = floor(sin((double)i * 0.37) * 4.0); /* many ties */
    sp_tensor *x = sp_tensor_from_data(SP_F64, 4, shape, v), *p = NULL, *r = NULL;
    check_view_reductions(x);
    CHECK_OK(sp_tensor_permute(x, (const int[]){2, 0, 3, 1}, &p));
    check_view_reductions(p);
    CHECK_OK(sp_tensor_slice(p, 2, SP_SLICE_NONE, SP_SLICE_NONE, -2, &r));
    check_view_reductions(r);
    sp_tensor_release(r);
    sp_tensor_release(p);
    sp_tensor_release(x);
    free(v);
}

/* Large reductions take the chunked path; argmax must still find the first
 * of two equal maxima and the first NaN across chunk boundaries. */
static void test_chunked(void) {
    int64_t n = 200000;
    float *v = calloc((size_t)n, sizeof(float));
    v[150000] = 5, v[30000] = 5;
    sp_tensor *x = tf32(1, S(n), v);
    sp_tensor *y = call1("argmax", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(30000), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    v[190000] = NAN, v[170000] = NAN;
    x = tf32(1, S(n), v);
    y = call1("argmin", 1, &x, NULL);
    CHECK(same(y, 0, NULL, D(170000), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* column shape with chunks: (n/2, 2) over axis 0; column 0 holds 1..,
     * column 1 holds 2 * (1..); sums are exact in double */
    for (int64_t i = 0; i < n / 2; i++) v[2 * i] = (float)(i % 100), v[2 * i + 1] = (float)(2 * (i % 100));
    x = tf32(2, S(n / 2, 2), v);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "axes", 1, S(0));
    y = call1("sum", 1, &x, &at);
    CHECK(same(y, 1, S(2), D(4950000, 9900000), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    free(v);
}

/* Same bits with 1 and with 3 threads, for each loop shape. */
static void test_thread_independence(void) {
    int64_t n = 1 << 20;
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = (float)sin((double)i) * 1000.0f;
    sp_tensor *x = tf32(2, S(1024, 1024), v);
    int saved = sp_get_num_threads();
    const int64_t axes_list[3][2] = {{0, 1}, {0, -1}, {1, -1}};
    const int nax[3] = {2, 1, 1};
    for (int c = 0; c < 3; c++) {
        sp_attrs at;
        sp_attrs_init(&at);
        sp_attrs_set_ints(&at, "axes", nax[c], axes_list[c]);
        sp_set_num_threads(1);
        sp_tensor *a = call1("sum", 1, &x, &at), *la = call1("logsumexp", 1, &x, &at);
        sp_set_num_threads(3);
        sp_tensor *b = call1("sum", 1, &x, &at), *lb = call1("logsumexp", 1, &x, &at);
        CHECK(a && b && memcmp(sp_tensor_data(a), sp_tensor_data(b), sp_tensor_nbytes(a)) == 0);
        CHECK(la && lb && memcmp(sp_tensor_data(la), sp_tensor_data(lb), sp_tensor_nbytes(la)) == 0);
        sp_tensor_release(a), sp_tensor_release(b), sp_tensor_release(la), sp_tensor_release(lb);
    }
    sp_set_num_threads(saved);
    sp_tensor_release(x);
    free(v);
}

static void test_half_types(void) {
    /* f16 and bf16 accumulate in float32 or better: 4096 * 0.1 rounds once */
    int64_t n = 4096;
    sp_tensor *x = sp_tensor_new(SP_F16, 1, S(n), SP_CPU);
    sp_tensor_fill(x, 0.1);
    sp_tensor *y = call1("sum", 1, &x, NULL);
    /* float16(0.1) = 0.0999755859375; times 4096 = 409.5, exact in f16 */
    CHECK(same(y, 0, NULL, D(409.5), 0));
    sp_tensor_release(y);
    y = call1("cumsum", 1, &x, NULL);
    CHECK(y && y->dtype == SP_F16 && sp_tensor_get(y, S(n - 1)) == 409.5);
    sp_tensor_release(y);
    sp_tensor_release(x);
    x = sp_tensor_new(SP_BF16, 2, S(2, 3), SP_CPU);
    sp_tensor_fill(x, -2);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "axes", 1, S(0));
    y = call1("prod", 1, &x, &at);
    CHECK(same(y, 1, S(3), D(4, 4, 4), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
}

static void test_int_reductions(void) {
    int8_t a[3] = {-128, 127, -1};
    sp_tensor *x = sp_tensor_from_data(SP_I8, 1, S(3), a);
    sp_tensor *y = call1("sum", 1, &x, NULL);
    CHECK(y && y->dtype == SP_I64 && same(y, 0, NULL, D(-2), 0));
    sp_tensor_release(y);
    y = call1("min", 1, &x, NULL);
    CHECK(y && y->dtype == SP_I8 && same(y, 0, NULL, D(-128), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    uint8_t b[2] = {200, 100};
    x = sp_tensor_from_data(SP_U8, 1, S(2), b);
    y = call1("sum", 1, &x, NULL); /* widened first: 300, not 44 */
    CHECK(same(y, 0, NULL, D(300), 0));
    sp_tensor_release(y);
    y = call1("max", 1, &x, NULL);
    CHECK(y && y->dtype == SP_U8 && same(y, 0, NULL, D(200), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    int32_t c[2] = {100000, 100000};
    x = sp_tensor_from_data(SP_I32, 1, S(2), c);
    y = call1("prod", 1, &x, NULL);
    CHECK(y && y->dtype == SP_I64 && same(y, 0, NULL, D(1e10), 0));
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* gather rows of a transposed view: the row is strided in memory */
    float f[6] = {0, 1, 2, 3, 4, 5};
    int64_t i[2] = {2, 0};
    sp_tensor *base = tf32(2, S(2, 3), f), *t = NULL;
    CHECK_OK(sp_tensor_transpose(base, 0, 1, &t));
    sp_tensor *idx = sp_tensor_from_data(SP_I64, 1, S(2), i), *in[2] = {t, idx};
    y = call1("gather", 2, in, NULL);
    CHECK(same(y, 2, S(2, 2), D(2, 5, 0, 3), 0));
    sp_tensor_release(y);
    /* cumsum down the columns of the same view: [[0,3],[1,7],[3,12]] */
    y = call1("cumsum", 1, &t, NULL);
    CHECK(same(y, 2, S(3, 2), D(0, 3, 1, 7, 3, 12), 0));
    sp_tensor_release(y);
    sp_tensor_release(idx);
    sp_tensor_release(t);
    sp_tensor_release(base);
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_reduce_axes_keepdims);
    RUN(test_argmax_ties_nan);
    RUN(test_logsumexp);
    RUN(test_cumsum);
    RUN(test_empty_reductions);
    RUN(test_sum_accuracy);
    RUN(test_pad);
    RUN(test_slice);
    RUN(test_concat_split_stack);
    RUN(test_tile_broadcast_transpose);
    RUN(test_gather);
    RUN(test_take_along_axis);
    RUN(test_scatter_add);
    RUN(test_one_hot);
    RUN(test_reduce_vs_naive);
    RUN(test_chunked);
    RUN(test_thread_independence);
    RUN(test_half_types);
    RUN(test_int_reductions);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}
