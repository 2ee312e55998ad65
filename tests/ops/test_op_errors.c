/*
 * test_op_errors.c -- every kind of bad input to a primitive call fails
 * with the right status code and a message that names the primitive and
 * the shapes, axes or values involved, and leaves nothing allocated.
 *
 * Calls go through sp_op_call on real tensors, so the dispatcher's own
 * checks (arity, NULL inputs, devices, contiguity of in-place updates) are
 * covered along with inference.  A tensor "on CUDA" is faked by wrapping
 * host memory in a buffer that claims device cuda:0: nothing ever reads it,
 * because every call with it must fail before a kernel runs.
 */
#include "test.h"

#include "ops/ops.h"

static int64_t live_at_start;

static sp_tensor *ten(sp_dtype d, int ndim, const int64_t *shape) {
    sp_tensor *t = sp_tensor_zeros(d, ndim, shape, SP_CPU);
    if (!t) fprintf(stderr, "tensor: %s\n", sp_last_error());
    return t;
}
#define T(d, ...) ten(d, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define T0(d) ten(d, 0, NULL)

/* sp_op_call that checks the no-output rule of failures. */
static sp_status call(int op, int n, sp_tensor **in, const sp_attrs *a) {
    sp_tensor *out[SP_MAX_OUTPUTS];
    int n_out = 99;
    sp_status st = sp_op_call(op, n, in, a, &n_out, out);
    if (st != SP_OK && n_out != 0) {
        fprintf(stderr, "  %s failed but returned %d outputs\n", sp_op_name(op), n_out);
        test_failures++;
    }
    for (int i = 0; st == SP_OK && i < n_out; i++) sp_tensor_release(out[i]);
    return st;
}

static void release_all(sp_tensor **t, int n) {
    for (int i = 0; i < n; i++) sp_tensor_release(t[i]);
}

static void test_shapes(void) {
    sp_tensor *x[3] = {T(SP_F32, 2, 3), T(SP_F32, 4), NULL};
    CHECK_ERR(call(SP_OP_ADD, 2, x, NULL), SP_ERR_SHAPE, "add: shapes (2, 3) and (4,) cannot be broadcast");
    CHECK_ERR(call(SP_OP_EQUAL, 2, x, NULL), SP_ERR_SHAPE, "equal: shapes (2, 3) and (4,)");
    sp_attrs a;
    sp_attrs_init(&a);
    CHECK_ERR(call(SP_OP_CONCAT, 2, x, &a), SP_ERR_SHAPE, "concat: input 1 of shape (4,) does not match input 0 of shape (2, 3)");
    CHECK_ERR(call(SP_OP_STACK, 2, x, &a), SP_ERR_SHAPE, "stack: input 1 has shape (4,), input 0 has (2, 3)");
    sp_tensor_release(x[1]);
    x[1] = T(SP_F32, 4, 5);
    CHECK_ERR(call(SP_OP_MATMUL, 2, x, NULL), SP_ERR_SHAPE, "matmul: shapes (2, 3) and (4, 5) do not match: inner dims 3 and 4");
    sp_attrs_set_int(&a, "transpose_a", 1);
    CHECK_ERR(call(SP_OP_MATMUL, 2, x, &a), SP_ERR_SHAPE, "(2, 3) (transposed)");
    sp_tensor_release(x[1]);
    x[1] = T(SP_F32, 2, 3, 4);
    x[2] = T(SP_F32, 3, 4, 5);
    CHECK_ERR(call(SP_OP_MATMUL, 2, &x[1], NULL), SP_ERR_SHAPE, "matmul: batch dims of shapes (2, 3, 4) and (3, 4, 5) cannot be broadcast");
    /* where names all three shapes */
    CHECK_ERR(call(SP_OP_WHERE, 3, x, NULL), SP_ERR_SHAPE, "where: shapes (2, 3), (2, 3, 4) and (3, 4, 5) cannot be broadcast");
    release_all(x, 3);

    sp_tensor *y = T(SP_F32, 2, 3);
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){4, 2});
    CHECK_ERR(call(SP_OP_RESHAPE, 1, &y, &a), SP_ERR_SHAPE, "reshape: cannot reshape (2, 3) into (4, 2)");
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){-1, -1});
    CHECK_ERR(call(SP_OP_RESHAPE, 1, &y, &a), SP_ERR_ARG, "reshape: more than one -1 in target (-1, -1)");
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){-1, 4});
    CHECK_ERR(call(SP_OP_RESHAPE, 1, &y, &a), SP_ERR_SHAPE, "reshape: cannot reshape (2, 3) into (-1, 4)");
    sp_attrs_set_ints(&a, "shape", 3, (int64_t[]){INT64_MAX, INT64_MAX, 0});
    CHECK_ERR(call(SP_OP_RESHAPE, 1, &y, &a), SP_ERR_SHAPE, "reshape: cannot reshape (2, 3)");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){4, 2});
    CHECK_ERR(call(SP_OP_BROADCAST_TO, 1, &y, &a), SP_ERR_SHAPE, "broadcast_to: cannot broadcast (2, 3) to (4, 2)");
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){3});
    CHECK_ERR(call(SP_OP_BROADCAST_TO, 1, &y, &a), SP_ERR_SHAPE, "broadcast_to: cannot broadcast (2, 3) to (3,)");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "sizes", 2, (int64_t[]){1, 3});
    CHECK_ERR(call(SP_OP_SPLIT, 1, &y, &a), SP_ERR_SHAPE, "split: sizes (1, 3) do not add up to 2, the size of axis 0 of (2, 3)");
    sp_attrs_set_ints(&a, "sizes", 2, (int64_t[]){INT64_MAX, 3});
    CHECK_ERR(call(SP_OP_SPLIT, 1, &y, &a), SP_ERR_SHAPE, "split: sizes");
    sp_tensor_release(y);
}

static void test_axes(void) {
    sp_tensor *x = T(SP_F32, 2, 3);
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axes", 3);
    CHECK_ERR(call(SP_OP_SUM, 1, &x, &a), SP_ERR_ARG, "sum: axis 3 is out of range for a tensor of 2 dims");
    sp_attrs_set_ints(&a, "axes", 2, (int64_t[]){1, -1});
    CHECK_ERR(call(SP_OP_MEAN, 1, &x, &a), SP_ERR_ARG, "mean: axis -1 is repeated in axes (1, -1)");
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK_ERR(call(SP_OP_SUM, 1, &x, &a), SP_ERR_ARG, "sum: takes attribute 'axes', not 'axis'");
    sp_attrs_set_int(&a, "axis", -3);
    CHECK_ERR(call(SP_OP_ARGMAX, 1, &x, &a), SP_ERR_ARG, "argmax: axis -3 is out of range for a tensor of 2 dims");
    CHECK_ERR(call(SP_OP_SOFTMAX, 1, &x, &a), SP_ERR_ARG, "softmax: axis -3 is out of range");
    CHECK_ERR(call(SP_OP_CUMSUM, 1, &x, &a), SP_ERR_ARG, "cumsum: axis -3");
    CHECK_ERR(call(SP_OP_SORT, 1, &x, &a), SP_ERR_ARG, "sort: axis -3");
    sp_attrs_set_int(&a, "axis", 2);
    CHECK_ERR(call(SP_OP_CONCAT, 1, &x, &a), SP_ERR_ARG, "concat: axis 2 is out of range for a tensor of 2 dims");
    sp_attrs_set_int(&a, "axis", 3);
    CHECK_ERR(call(SP_OP_STACK, 1, &x, &a), SP_ERR_ARG, "stack: axis 3 is out of range for a tensor of 3 dims");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "perm", 2, (int64_t[]){0, 0});
    CHECK_ERR(call(SP_OP_TRANSPOSE, 1, &x, &a), SP_ERR_ARG, "transpose: perm (0, 0) repeats axis 0");
    sp_attrs_set_ints(&a, "perm", 3, (int64_t[]){0, 1, 2});
    CHECK_ERR(call(SP_OP_TRANSPOSE, 1, &x, &a), SP_ERR_ARG, "transpose: perm (0, 1, 2) does not match a tensor of shape (2, 3)");
    sp_attrs_set_ints(&a, "perm", 2, (int64_t[]){0, 5});
    CHECK_ERR(call(SP_OP_TRANSPOSE, 1, &x, &a), SP_ERR_ARG, "transpose: axis 5 in perm (0, 5) is out of range");
    /* max over an empty axis has no answer */
    sp_tensor *e = T(SP_F32, 0, 3);
    CHECK_ERR(call(SP_OP_MAX, 1, &e, NULL), SP_ERR_SHAPE, "max: cannot reduce over axis 0 of size 0 in shape (0, 3)");
    CHECK_ERR(call(SP_OP_ARGMIN, 1, &e, NULL), SP_ERR_SHAPE, "argmin: cannot reduce an empty tensor of shape (0, 3)");
    sp_tensor *s = T0(SP_F32);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axes", 0);
    CHECK_ERR(call(SP_OP_SUM, 1, &s, &a), SP_ERR_ARG, "sum: axis 0 is out of range for a tensor of 0 dims");
    sp_tensor_release(s);
    sp_tensor_release(e);
    sp_tensor_release(x);
}

static void test_dtypes(void) {
    sp_tensor *i = T(SP_I32, 3), *f = T(SP_F32, 3), *b = T(SP_BOOL, 3), *d = T(SP_F64, 3);
    CHECK_ERR(call(SP_OP_EXP, 1, &i, NULL), SP_ERR_DTYPE, "exp: dtype int32 is not supported (takes float32, float64, float16, bfloat16)");
    CHECK_ERR(call(SP_OP_NEG, 1, &b, NULL), SP_ERR_DTYPE, "neg: dtype bool is not supported");
    sp_tensor *fb[2] = {f, b};
    CHECK_ERR(call(SP_OP_ADD, 2, fb, NULL), SP_ERR_DTYPE, "add: dtype bool of input 1 is not supported");
    sp_tensor *fi[2] = {f, i};
    CHECK_ERR(call(SP_OP_ATAN2, 2, fi, NULL), SP_ERR_DTYPE, "atan2: dtype int32 of input 1");
    sp_tensor *fd[2] = {f, d};
    CHECK_ERR(call(SP_OP_MATMUL, 2, fd, NULL), SP_ERR_DTYPE, "matmul: a is float32 but b is float64");
    sp_tensor *ff[2] = {f, f};
    CHECK_ERR(call(SP_OP_GATHER, 2, ff, NULL), SP_ERR_DTYPE, "gather: indices must be int32 or int64, got float32");
    CHECK_ERR(call(SP_OP_ONE_HOT, 1, &f, NULL), SP_ERR_DTYPE, "one_hot: dtype float32 is not supported (takes int32, int64)");
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){2});
    sp_attrs_set_dtype(&a, "dtype", SP_I32);
    CHECK_ERR(call(SP_OP_UNIFORM, 0, NULL, &a), SP_ERR_DTYPE, "uniform: dtype int32 is not supported");
    sp_attrs_set_int(&a, "high", 2);
    sp_attrs_set_dtype(&a, "dtype", SP_BOOL);
    CHECK_ERR(call(SP_OP_RANDINT, 0, NULL, &a), SP_ERR_DTYPE, "randint: dtype bool is not supported");
    sp_attrs_set_int(&a, "stop", 3);
    CHECK_ERR(call(SP_OP_ARANGE, 0, NULL, &a), SP_ERR_DTYPE, "arange: dtype bool is not supported");
    sp_attrs_init(&a);
    CHECK_ERR(call(SP_OP_CAST, 1, &f, &a), SP_ERR_ARG, "cast: missing attribute 'dtype'");
    sp_attrs_set_str(&a, "dtype", "float99");
    CHECK_ERR(call(SP_OP_CAST, 1, &f, &a), SP_ERR_DTYPE, "cast: attribute 'dtype' is not a valid dtype");
    sp_tensor *x4 = T(SP_F32, 1, 1, 4, 4), *w4 = T(SP_F64, 1, 1, 3, 3);
    sp_tensor *xw[2] = {x4, w4};
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, NULL), SP_ERR_DTYPE, "conv2d: w must be float32 like the input, got float64");
    sp_tensor_release(x4);
    sp_tensor_release(w4);
    release_all((sp_tensor *[]){i, f, b, d}, 4);
}

static void test_sizes(void) {
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){-1, 2});
    sp_attrs_set_float(&a, "value", 1);
    CHECK_ERR(call(SP_OP_FULL, 0, NULL, &a), SP_ERR_ARG, "full: negative size -1 in shape (-1, 2)");
    CHECK_ERR(call(SP_OP_ZEROS, 0, NULL, &a), SP_ERR_ARG, "zeros: negative size -1 in shape (-1, 2)");
    CHECK_ERR(call(SP_OP_NORMAL, 0, NULL, &a), SP_ERR_ARG, "normal: negative size -1 in shape (-1, 2)");
    sp_attrs_set_ints(&a, "shape", 3, (int64_t[]){1 << 30, 1 << 30, 1 << 30});
    CHECK_ERR(call(SP_OP_ONES, 0, NULL, &a), SP_ERR_ARG, "ones: shape (1073741824, 1073741824, 1073741824) is too large");
    sp_attrs_set_ints(&a, "shape", 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
    CHECK_ERR(call(SP_OP_ONES, 0, NULL, &a), SP_ERR_SHAPE, "ones: shape has 9 dims (at most 8)");
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "stop", INT64_MAX);
    sp_attrs_set_int(&a, "start", INT64_MIN);
    CHECK_ERR(call(SP_OP_ARANGE, 0, NULL, &a), SP_ERR_ARG, "arange: range");
    sp_attrs_set_int(&a, "start", 0);
    CHECK_ERR(call(SP_OP_ARANGE, 0, NULL, &a), SP_ERR_ARG, "arange: shape (9223372036854775807,) is too large");
    sp_attrs_set_float(&a, "stop", 1e30);
    sp_attrs_set_float(&a, "step", 1e-30);
    CHECK_ERR(call(SP_OP_ARANGE, 0, NULL, &a), SP_ERR_ARG, "arange: start 0, stop 1e+30, step 1e-30 give too many elements");
    sp_attrs_set_float(&a, "step", 0);
    CHECK_ERR(call(SP_OP_ARANGE, 0, NULL, &a), SP_ERR_ARG, "arange: step must be nonzero");
    sp_attrs_set_float(&a, "stop", NAN);
    CHECK_ERR(call(SP_OP_ARANGE, 0, NULL, &a), SP_ERR_ARG, "arange: start 0, stop nan");

    sp_tensor *x = T(SP_F32, 2, 3);
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "reps", 2, (int64_t[]){INT64_MAX, 2});
    CHECK_ERR(call(SP_OP_TILE, 1, &x, &a), SP_ERR_ARG, "tile: size 2 * 9223372036854775807 overflows");
    sp_attrs_set_ints(&a, "reps", 2, (int64_t[]){1 << 30, 1 << 30});
    CHECK_ERR(call(SP_OP_TILE, 1, &x, &a), SP_ERR_ARG, "tile: tiled shape (2147483648, 3221225472) is too large");
    sp_attrs_set_ints(&a, "reps", 1, (int64_t[]){-2});
    CHECK_ERR(call(SP_OP_TILE, 1, &x, &a), SP_ERR_ARG, "tile: negative repetition -2 in reps (-2,)");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "pads", 4, (int64_t[]){0, INT64_MAX, 0, 0});
    CHECK_ERR(call(SP_OP_PAD, 1, &x, &a), SP_ERR_ARG, "pad: size 2 + 9223372036854775807 overflows");
    sp_attrs_set_ints(&a, "pads", 4, (int64_t[]){0, -1, 0, 0});
    CHECK_ERR(call(SP_OP_PAD, 1, &x, &a), SP_ERR_ARG, "pad: negative pad in pads (0, -1, 0, 0)");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "sizes", 2, (int64_t[]){3, -1});
    CHECK_ERR(call(SP_OP_SPLIT, 1, &x, &a), SP_ERR_ARG, "split: negative size -1 in sizes (3, -1)");
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "depth", -4);
    sp_tensor *idx = T(SP_I64, 3);
    CHECK_ERR(call(SP_OP_ONE_HOT, 1, &idx, &a), SP_ERR_ARG, "one_hot: depth must be a non-negative int, got -4");
    sp_tensor_release(idx);
    sp_tensor_release(x);
}

static void test_arity_and_null(void) {
    sp_tensor *x = T(SP_F32, 2);
    sp_tensor *in[SP_MAX_INPUTS + 1];
    for (int i = 0; i <= SP_MAX_INPUTS; i++) in[i] = x;
    CHECK_ERR(call(SP_OP_ADD, 1, in, NULL), SP_ERR_ARG, "add: takes 2 inputs, got 1");
    CHECK_ERR(call(SP_OP_EXP, 2, in, NULL), SP_ERR_ARG, "exp: takes 1 input, got 2");
    CHECK_ERR(call(SP_OP_ARANGE, 1, in, NULL), SP_ERR_ARG, "arange: takes 0 inputs, got 1");
    CHECK_ERR(call(SP_OP_CONCAT, 0, in, NULL), SP_ERR_ARG, "concat: takes 1 to 64 inputs, got 0");
    CHECK_ERR(call(SP_OP_CONCAT, SP_MAX_INPUTS + 1, in, NULL), SP_ERR_ARG, "concat: 65 inputs (at most 64)");
    CHECK_ERR(call(SP_OP_ADD, -1, in, NULL), SP_ERR_ARG, "add: -1 inputs");
    sp_tensor *xn[2] = {x, NULL};
    CHECK_ERR(call(SP_OP_ADD, 2, xn, NULL), SP_ERR_ARG, "add: input 1 is NULL");
    CHECK_ERR(call(SP_OP_ADD, 2, NULL, NULL), SP_ERR_ARG, "add: NULL input array");
    CHECK_ERR(call(-1, 1, in, NULL), SP_ERR_ARG, "unknown primitive id -1");
    CHECK_ERR(call(SP_OP_COUNT, 1, in, NULL), SP_ERR_ARG, "unknown primitive id");
    int n_out = 5;
    sp_tensor *out[SP_MAX_OUTPUTS];
    CHECK_ERR(sp_op_call_name("frobnicate", 1, in, NULL, &n_out, out), SP_ERR_ARG, "unknown primitive 'frobnicate'");
    CHECK(n_out == 0);
    CHECK_ERR(sp_op_call(SP_OP_EXP, 1, in, NULL, NULL, out), SP_ERR_ARG, "exp: NULL output array");
    /* metas the compiler could build wrong */
    sp_meta m[2];
    memset(m, 0, sizeof m);
    m[0].ndim = 9;
    CHECK_ERR(sp_op_infer(SP_OP_EXP, 1, m, NULL, &n_out, (sp_meta[SP_MAX_OUTPUTS]){0}), SP_ERR_SHAPE, "exp: input 0 has 9 dims (at most 8)");
    m[0].ndim = 1;
    m[0].shape[0] = -3;
    CHECK_ERR(sp_op_infer(SP_OP_EXP, 1, m, NULL, &n_out, (sp_meta[SP_MAX_OUTPUTS]){0}), SP_ERR_SHAPE, "exp: input 0 has a negative size in shape (-3,)");
    m[0].shape[0] = 3;
    m[0].dtype = (sp_dtype)42;
    CHECK_ERR(sp_op_infer(SP_OP_EXP, 1, m, NULL, &n_out, (sp_meta[SP_MAX_OUTPUTS]){0}), SP_ERR_DTYPE, "exp: input 0 has an invalid dtype 42");
    sp_tensor_release(x);
}

static void test_attributes(void) {
    sp_tensor *x = T(SP_F32, 2, 3);
    sp_attrs a;
    sp_attrs_init(&a);
    CHECK_ERR(call(SP_OP_RESHAPE, 1, &x, &a), SP_ERR_ARG, "reshape: missing attribute 'shape'");
    sp_attrs_set_str(&a, "shape", "2x3");
    CHECK_ERR(call(SP_OP_RESHAPE, 1, &x, &a), SP_ERR_ARG, "reshape: attribute 'shape' must be a list of ints");
    CHECK_ERR(call(SP_OP_BROADCAST_TO, 1, &x, NULL), SP_ERR_ARG, "broadcast_to: missing attribute 'shape'");
    CHECK_ERR(call(SP_OP_SPLIT, 1, &x, NULL), SP_ERR_ARG, "split: missing attribute 'sizes'");
    CHECK_ERR(call(SP_OP_TILE, 1, &x, NULL), SP_ERR_ARG, "tile: missing attribute 'reps'");
    CHECK_ERR(call(SP_OP_PAD, 1, &x, NULL), SP_ERR_ARG, "pad: missing attribute 'pads'");
    CHECK_ERR(call(SP_OP_TOPK, 1, &x, NULL), SP_ERR_ARG, "topk: missing attribute 'k'");
    CHECK_ERR(call(SP_OP_FULL, 0, NULL, NULL), SP_ERR_ARG, "full: missing attribute 'shape'");
    CHECK_ERR(call(SP_OP_ARANGE, 0, NULL, NULL), SP_ERR_ARG, "arange: missing attribute 'stop'");
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){2});
    CHECK_ERR(call(SP_OP_FULL, 0, NULL, &a), SP_ERR_ARG, "full: missing attribute 'value'");
    CHECK_ERR(call(SP_OP_RANDINT, 0, NULL, &a), SP_ERR_ARG, "randint: missing attribute 'high'");
    sp_attrs_set_int(&a, "high", -1);
    CHECK_ERR(call(SP_OP_RANDINT, 0, NULL, &a), SP_ERR_ARG, "randint: high -1 must be greater than low 0");
    sp_attrs_set_float(&a, "p", 1.5);
    CHECK_ERR(call(SP_OP_BERNOULLI, 0, NULL, &a), SP_ERR_ARG, "bernoulli: p must be in [0, 1], got 1.5");
    CHECK_ERR(call(SP_OP_DROPOUT, 1, &x, &a), SP_ERR_ARG, "dropout: p must be in [0, 1], got 1.5");
    sp_attrs_set_float(&a, "std", -1);
    CHECK_ERR(call(SP_OP_NORMAL, 0, NULL, &a), SP_ERR_ARG, "normal: needs a finite mean and std >= 0, got mean 0, std -1");
    sp_attrs_set_float(&a, "low", 2);
    CHECK_ERR(call(SP_OP_UNIFORM, 0, NULL, &a), SP_ERR_ARG, "uniform: needs finite low <= high, got low 2, high -1");

    /* pad: wrong length, bad mode, reflect too wide */
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "pads", 2, (int64_t[]){1, 1});
    CHECK_ERR(call(SP_OP_PAD, 1, &x, &a), SP_ERR_ARG, "pad: pads (1, 1) must have 4 entries (2 per dim) for shape (2, 3)");
    sp_attrs_set_ints(&a, "pads", 4, (int64_t[]){2, 0, 0, 0});
    sp_attrs_set_str(&a, "mode", "reflect");
    CHECK_ERR(call(SP_OP_PAD, 1, &x, &a), SP_ERR_ARG, "pad: reflect pads (2, 0, 0, 0) must be smaller than dim 0 of shape (2, 3)");
    sp_attrs_set_str(&a, "mode", "wrap");
    CHECK_ERR(call(SP_OP_PAD, 1, &x, &a), SP_ERR_ARG, "pad: mode must be one of \"constant\", \"reflect\", got \"wrap\"");
    /* slice */
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "step", 2, (int64_t[]){1, 0});
    CHECK_ERR(call(SP_OP_SLICE, 1, &x, &a), SP_ERR_ARG, "slice: step 0 on axis 1 (step (1, 0)) for shape (2, 3)");
    sp_attrs_set_ints(&a, "begin", 1, (int64_t[]){0});
    CHECK_ERR(call(SP_OP_SLICE, 1, &x, &a), SP_ERR_ARG, "slice: begin (0,) must have one entry per dim of shape (2, 3)");
    /* topk */
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "k", 5);
    CHECK_ERR(call(SP_OP_TOPK, 1, &x, &a), SP_ERR_ARG, "topk: k 5 is out of range for axis -1 of size 3 in (2, 3)");
    sp_attrs_set_int(&a, "k", -1);
    CHECK_ERR(call(SP_OP_TOPK, 1, &x, &a), SP_ERR_ARG, "topk: k -1 is out of range");
    /* gelu, softplus */
    sp_attrs_init(&a);
    sp_attrs_set_str(&a, "approximate", "fast");
    CHECK_ERR(call(SP_OP_GELU, 1, &x, &a), SP_ERR_ARG, "gelu: approximate must be one of \"none\", \"tanh\", got \"fast\"");
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "beta", 0);
    CHECK_ERR(call(SP_OP_SOFTPLUS, 1, &x, &a), SP_ERR_ARG, "softplus: beta must be nonzero");
    sp_tensor_release(x);
}

static void test_conv_pool(void) {
    sp_tensor *x = T(SP_F32, 1, 3, 8, 8), *w = T(SP_F32, 4, 3, 3, 3);
    sp_tensor *xw[2] = {x, w};
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "stride", 0);
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_ARG, "conv2d: stride (0,) must be in [1, 2147483648]");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "dilation", 3, (int64_t[]){1, 1, 1});
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_ARG, "conv2d: dilation (1, 1, 1) must have 1 or 2 ints");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "padding", 3, (int64_t[]){1, 1, 1});
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_ARG, "conv2d: padding (1, 1, 1) must have 1, 2 or 4 ints");
    sp_attrs_set_int(&a, "padding", -1);
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_ARG, "conv2d: padding (-1,) must be in [0, 2147483648]");
    sp_attrs_init(&a);
    sp_attrs_set_str(&a, "pad_mode", "full");
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_ARG, "conv2d: pad_mode must be \"pad\", \"same\" or \"valid\", got \"full\"");
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "dilation", 4);
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_SHAPE, "conv2d: kernel 3x3 (dilation 4x4) is larger than the padded input 8x8 of x (1, 3, 8, 8)");
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "groups", 2);
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_SHAPE, "conv2d: x (1, 3, 8, 8) and w (4, 3, 3, 3) do not fit with groups 2");
    sp_attrs_set_int(&a, "groups", 0);
    CHECK_ERR(call(SP_OP_CONV2D, 2, xw, &a), SP_ERR_ARG, "conv2d: groups must be >= 1, got 0");
    sp_tensor *x3 = T(SP_F32, 3, 8, 8);
    sp_tensor *x3w[2] = {x3, w};
    CHECK_ERR(call(SP_OP_CONV2D, 2, x3w, NULL), SP_ERR_SHAPE, "conv2d: x must be 4-D (NCHW), got shape (3, 8, 8)");
    /* backprops check dy against the forward shape */
    sp_tensor *dy = T(SP_F32, 1, 4, 5, 5);
    sp_tensor *dyw[2] = {dy, w}, *dyx[2] = {dy, x};
    CHECK_ERR(call(SP_OP_CONV2D_BACKPROP_INPUT, 2, dyw, NULL), SP_ERR_ARG, "conv2d_backprop_input: missing attribute 'input_shape'");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "input_shape", 4, (int64_t[]){1, 3, 8, 8});
    CHECK_ERR(call(SP_OP_CONV2D_BACKPROP_INPUT, 2, dyw, &a), SP_ERR_SHAPE, "conv2d_backprop_input: dy has shape (1, 4, 5, 5) but the forward op gives (1, 4, 6, 6) for input_shape");
    sp_attrs_set_ints(&a, "input_shape", 3, (int64_t[]){1, 3, 8});
    CHECK_ERR(call(SP_OP_CONV2D_BACKPROP_INPUT, 2, dyw, &a), SP_ERR_ARG, "conv2d_backprop_input: input_shape (1, 3, 8) must have 4 ints");
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "filter_shape", 4, (int64_t[]){4, 3, 3, 3});
    CHECK_ERR(call(SP_OP_CONV2D_BACKPROP_FILTER, 2, dyx, &a), SP_ERR_SHAPE, "conv2d_backprop_filter: dy has shape (1, 4, 5, 5) but the forward op gives (1, 4, 6, 6)");
    sp_attrs_set_ints(&a, "filter_shape", 4, (int64_t[]){4, 3, -3, 3});
    CHECK_ERR(call(SP_OP_CONV2D_BACKPROP_FILTER, 2, dyx, &a), SP_ERR_ARG, "conv2d_backprop_filter: negative size -3 in filter_shape (4, 3, -3, 3)");
    /* pooling */
    CHECK_ERR(call(SP_OP_MAX_POOL2D, 1, &x, NULL), SP_ERR_ARG, "max_pool2d: missing attribute 'kernel_size'");
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "kernel_size", 3);
    sp_attrs_set_int(&a, "padding", 2);
    CHECK_ERR(call(SP_OP_MAX_POOL2D, 1, &x, &a), SP_ERR_ARG, "max_pool2d: padding 2 must be at most half the kernel size 3");
    sp_attrs_set_int(&a, "padding", 0);
    sp_attrs_set_int(&a, "kernel_size", 9);
    CHECK_ERR(call(SP_OP_AVG_POOL2D, 1, &x, &a), SP_ERR_SHAPE, "avg_pool2d: kernel 9x9 (dilation 1x1) is larger than the padded input 8x8 of x (1, 3, 8, 8)");
    sp_attrs_set_int(&a, "kernel_size", 0);
    CHECK_ERR(call(SP_OP_AVG_POOL2D, 1, &x, &a), SP_ERR_ARG, "avg_pool2d: kernel_size (0,) must be in [1,");
    sp_attrs_set_int(&a, "kernel_size", 2);
    sp_tensor *xdy[2] = {x, dy};
    CHECK_ERR(call(SP_OP_MAX_POOL2D_BACKWARD, 2, xdy, &a), SP_ERR_SHAPE, "max_pool2d_backward: dy has shape (1, 4, 5, 5) but the forward op gives (1, 3, 4, 4) for x");
    release_all((sp_tensor *[]){x, w, x3, dy}, 4);
}

static void test_nn(void) {
    sp_tensor *logits = T(SP_F32, 4, 10), *lab = T(SP_I32, 3), *flab = T(SP_F32, 4);
    CHECK_ERR(call(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY, 2, (sp_tensor *[]){logits, lab}, NULL), SP_ERR_SHAPE, "sparse_softmax_cross_entropy: labels of shape (3,) do not match logits of shape (4, 10)");
    CHECK_ERR(call(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY, 2, (sp_tensor *[]){logits, flab}, NULL), SP_ERR_DTYPE, "sparse_softmax_cross_entropy: labels must be int32 or int64, got float32");
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_str(&a, "reduction", "avg");
    sp_tensor *lab4 = T(SP_I64, 4);
    CHECK_ERR(call(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY, 2, (sp_tensor *[]){logits, lab4}, &a), SP_ERR_ARG, "reduction must be one of \"mean\", \"sum\", \"none\", got \"avg\"");
    /* layer_norm */
    sp_tensor *x = T(SP_F32, 2, 3, 4), *g = T(SP_F32, 3), *b4 = T(SP_F32, 4);
    CHECK_ERR(call(SP_OP_LAYER_NORM, 3, (sp_tensor *[]){x, g, b4}, NULL), SP_ERR_SHAPE, "layer_norm: gamma has shape (3,), expected (4,)");
    sp_tensor *g64 = T(SP_F64, 4);
    CHECK_ERR(call(SP_OP_LAYER_NORM, 3, (sp_tensor *[]){x, g64, b4}, NULL), SP_ERR_DTYPE, "layer_norm: gamma must be float32 like the input, got float64");
    /* batch_norm */
    sp_tensor *bx = T(SP_F32, 2, 3, 4, 4);
    CHECK_ERR(call(SP_OP_BATCH_NORM, 5, (sp_tensor *[]){bx, g, g, g, b4}, NULL), SP_ERR_SHAPE, "batch_norm: running_var has shape (4,), expected (3,)");
    CHECK_ERR(call(SP_OP_BATCH_NORM, 5, (sp_tensor *[]){g, g, g, g, g}, NULL), SP_ERR_SHAPE, "batch_norm: x must be [N, C, ...] (at least 2 dims), got shape (3,)");
    /* embedding */
    sp_tensor *wt = T(SP_F32, 10, 4);
    CHECK_ERR(call(SP_OP_EMBEDDING, 2, (sp_tensor *[]){g, lab4}, NULL), SP_ERR_SHAPE, "embedding: weight must have 2 dims, got shape (3,)");
    CHECK_ERR(call(SP_OP_EMBEDDING, 2, (sp_tensor *[]){wt, flab}, NULL), SP_ERR_DTYPE, "embedding: indices must be int32 or int64, got float32");
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "num_embeddings", 10);
    CHECK_ERR(call(SP_OP_EMBEDDING_BACKWARD, 2, (sp_tensor *[]){x, lab4}, &a), SP_ERR_SHAPE, "embedding_backward: dout of shape (2, 3, 4) does not match indices of shape (4,)");
    /* gather family */
    sp_tensor *idx2 = T(SP_I64, 5, 3);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK_ERR(call(SP_OP_TAKE_ALONG_AXIS, 2, (sp_tensor *[]){logits, idx2}, &a), SP_ERR_SHAPE, "take_along_axis: indices of shape (5, 3) do not fit x of shape (4, 10)");
    CHECK_ERR(call(SP_OP_SCATTER_ADD, 3, (sp_tensor *[]){logits, idx2, logits}, NULL), SP_ERR_SHAPE, "scatter_add: indices (5, 3) and updates (4, 10) differ in shape");
    sp_tensor *emp = T(SP_F32, 0, 2);
    CHECK_ERR(call(SP_OP_GATHER, 2, (sp_tensor *[]){emp, lab4}, NULL), SP_ERR_SHAPE, "gather: cannot take indices (4,) from axis 0 of size 0 in (0, 2)");
    release_all((sp_tensor *[]){logits, lab, flab, lab4, x, g, b4, g64, bx, wt, idx2, emp}, 12);
}

static void test_optim(void) {
    sp_tensor *p = T(SP_F32, 3, 2), *gr = T(SP_F32, 2, 3), *lr = T0(SP_F32), *v = T(SP_F32, 1);
    CHECK_ERR(call(SP_OP_SGD_UPDATE, 4, (sp_tensor *[]){p, gr, p, lr}, NULL), SP_ERR_SHAPE, "sgd_update: grad has shape (2, 3), param has (3, 2)");
    CHECK_ERR(call(SP_OP_SGD_UPDATE, 4, (sp_tensor *[]){p, p, p, v}, NULL), SP_ERR_SHAPE, "sgd_update: lr must be 0-d, got shape (1,)");
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "nesterov", 1);
    CHECK_ERR(call(SP_OP_SGD_UPDATE, 4, (sp_tensor *[]){p, p, p, lr}, &a), SP_ERR_ARG, "sgd_update: nesterov needs momentum > 0 and dampening 0");
    sp_tensor *pt;
    CHECK_OK(sp_tensor_transpose(p, 0, 1, &pt)); /* (2, 3), not contiguous */
    sp_tensor *gt = T(SP_F32, 2, 3);
    CHECK_ERR(call(SP_OP_SGD_UPDATE, 4, (sp_tensor *[]){pt, gt, gt, lr}, NULL), SP_ERR_ARG, "sgd_update: input 0 must be contiguous");
    sp_tensor *p64 = T(SP_F64, 3, 2);
    CHECK_ERR(call(SP_OP_ADAM_UPDATE, 6, (sp_tensor *[]){p, p, p64, p, lr, lr}, NULL), SP_ERR_DTYPE, "adam_update: m is float64, param is float32");
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "beta1", 1.0);
    CHECK_ERR(call(SP_OP_ADAM_UPDATE, 6, (sp_tensor *[]){p, p, p, p, lr, lr}, &a), SP_ERR_ARG, "adam_update: beta1 1 and beta2 0.999 must be in [0, 1)");
    CHECK_ERR(call(SP_OP_ADAM_UPDATE, 6, (sp_tensor *[]){p, p, p, p, lr, v}, NULL), SP_ERR_SHAPE, "adam_update: step must be 0-d, got shape (1,)");
    release_all((sp_tensor *[]){p, gr, lr, v, pt, gt, p64}, 7);
}

/* A tensor that claims to live on cuda:0 (host memory; never read). */
static float fake_mem[16];
static sp_tensor *fake_cuda(void) {
    sp_buffer *b = sp_buffer_wrap((sp_device){SP_DEVICE_CUDA, 0}, fake_mem, sizeof fake_mem, NULL, NULL);
    if (!b) return NULL;
    sp_tensor *t = sp_tensor_view_of(b, SP_F32, 1, (int64_t[]){4}, (int64_t[]){1}, 0);
    sp_buffer_release(b);
    return t;
}

static void test_devices(void) {
    sp_tensor *c = T(SP_F32, 4), *g = fake_cuda();
    CHECK(g != NULL);
    if (!g) return;
    CHECK_ERR(call(SP_OP_ADD, 2, (sp_tensor *[]){c, g}, NULL), SP_ERR_DEVICE, "add: inputs are on different devices (input 0 on cpu, input 1 on cuda:0)");
    CHECK_ERR(call(SP_OP_WHERE, 3, (sp_tensor *[]){g, g, c}, NULL), SP_ERR_DEVICE, "where: inputs are on different devices (input 0 on cuda:0, input 2 on cpu)");
    CHECK_ERR(call(SP_OP_EXP, 1, &g, NULL), SP_ERR_DEVICE, "no CUDA backend");
    CHECK_ERR(call(SP_OP_ADD, 2, (sp_tensor *[]){g, g}, NULL), SP_ERR_DEVICE, "no CUDA backend");
    /* an output on the wrong device is refused too */
    CHECK_ERR(sp_op_call_into(SP_OP_EXP, 1, &c, NULL, 1, &g), SP_ERR_DEVICE, "exp: output 0 is on cuda:0, not on cpu");
    release_all((sp_tensor *[]){c, g}, 2);
}

static void test_call_into(void) {
    sp_tensor *x = T(SP_F32, 2, 3), *y = T(SP_F32, 3), *bad = T(SP_F32, 3, 2), *bad_dt = T(SP_F64, 2, 3);
    CHECK_ERR(sp_op_call_into(SP_OP_ADD, 2, (sp_tensor *[]){x, y}, NULL, 1, &bad), SP_ERR_SHAPE, "add: output 0 is (3, 2) float32, inference gives (2, 3) float32");
    CHECK_ERR(sp_op_call_into(SP_OP_ADD, 2, (sp_tensor *[]){x, y}, NULL, 1, &bad_dt), SP_ERR_SHAPE, "add: output 0 is (2, 3) float64, inference gives (2, 3) float32");
    CHECK_ERR(sp_op_call_into(SP_OP_ADD, 2, (sp_tensor *[]){x, y}, NULL, 2, (sp_tensor *[]){x, x}), SP_ERR_ARG, "add: given 2 outputs, inference gives 1");
    sp_tensor *xt;
    CHECK_OK(sp_tensor_transpose(bad, 0, 1, &xt));
    CHECK_ERR(sp_op_call_into(SP_OP_ADD, 2, (sp_tensor *[]){x, y}, NULL, 1, &xt), SP_ERR_ARG, "add: output 0 must be contiguous");
    CHECK_ERR(sp_op_call_into(SP_OP_ADD, 2, (sp_tensor *[]){x, y}, NULL, 1, (sp_tensor *[]){NULL}), SP_ERR_ARG, "add: output 0 is NULL");
    release_all((sp_tensor *[]){x, y, bad, bad_dt, xt}, 5);
}

int main(void) {
    live_at_start = sp_cpu_live_bytes();
    RUN(test_shapes);
    RUN(test_axes);
    RUN(test_dtypes);
    RUN(test_sizes);
    RUN(test_arity_and_null);
    RUN(test_attributes);
    RUN(test_conv_pool);
    RUN(test_nn);
    RUN(test_optim);
    RUN(test_devices);
    RUN(test_call_into);
    CHECK(sp_cpu_live_bytes() == live_at_start);
    return TEST_SUMMARY();
}
