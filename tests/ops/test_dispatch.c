/*
 * test_dispatch.c -- primitives called through sp_op_call compute the right
 * values, hand back the right number of outputs, and leak nothing.
 *
 * These are not the per-op numeric tests (those are generated from the
 * registry); they check the dispatcher's side of the contract: outputs are
 * allocated with the inferred shape and dtype, strided inputs reach the
 * kernel, multi-output and zero-output (in-place) ops, call_into with
 * caller-made outputs, call by name, eager random ops drawing fresh numbers
 * unless given a seed, and a kernel's data-dependent failure handing back
 * nothing.  At the end sp_cpu_live_bytes() is back where it started.
 */
#include "test.h"

#include "ops/ops.h"

#define F32(...) sp_tensor_from_data(SP_F32, 1, (int64_t[]){sizeof((float[]){__VA_ARGS__}) / sizeof(float)}, (float[]){__VA_ARGS__})

/* Element i of t in C order, for tensors of up to 8 dims. */
static double at(const sp_tensor *t, int64_t i) {
    int64_t idx[SP_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? i % t->shape[d] : 0;
        i = t->shape[d] ? i / t->shape[d] : 0;
    }
    return sp_tensor_get(t, idx);
}

/* out has dtype d, shape (given) and values v (numel of shape). */
static int holds(const sp_tensor *t, sp_dtype d, int ndim, const int64_t *shape, const double *v) {
    if (!t || t->dtype != d || t->ndim != ndim) goto bad;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) goto bad;
    for (int64_t i = 0; i < sp_tensor_numel(t); i++)
        if (!(fabs(at(t, i) - v[i]) <= 1e-6 * (1 + fabs(v[i])))) {
            fprintf(stderr, "  element %lld is %.9g, wanted %.9g\n", (long long)i, at(t, i), v[i]);
            return 0;
        }
    return 1;
bad:
    fprintf(stderr, "  wrong dtype or shape\n");
    return 0;
}
#define SHAPE(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}
#define VALS(...) (double[]){__VA_ARGS__}

static void release_all(sp_tensor **t, int n) {
    for (int i = 0; i < n; i++) sp_tensor_release(t[i]);
}

static void test_binary_broadcast(void) {
    float a6[6] = {1, 2, 3, 4, 5, 6};
    sp_tensor *a = sp_tensor_from_data(SP_F32, 2, (int64_t[]){2, 3}, a6);
    sp_tensor *b = F32(10, 20, 30);
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n = -1;
    CHECK_OK(sp_op_call(SP_OP_ADD, 2, (sp_tensor *[]){a, b}, NULL, &n, out));
    CHECK(n == 1 && holds(out[0], SP_F32, SHAPE(2, 3), VALS(11, 22, 33, 14, 25, 36)));
    sp_tensor_release(out[0]);
    /* by name, with b first: same broadcast */
    CHECK_OK(sp_op_call_name("mul", 2, (sp_tensor *[]){b, a}, NULL, &n, out));
    CHECK(n == 1 && holds(out[0], SP_F32, SHAPE(2, 3), VALS(10, 40, 90, 40, 100, 180)));
    sp_tensor_release(out[0]);
    /* a strided (transposed) input reaches the kernel as a view */
    sp_tensor *at_;
    CHECK_OK(sp_tensor_transpose(a, 0, 1, &at_)); /* (3, 2): 1 4 / 2 5 / 3 6 */
    sp_tensor *c = F32(100, 200);
    CHECK_OK(sp_op_call(SP_OP_SUB, 2, (sp_tensor *[]){at_, c}, NULL, &n, out));
    CHECK(n == 1 && holds(out[0], SP_F32, SHAPE(3, 2), VALS(-99, -196, -98, -195, -97, -194)));
    sp_tensor_release(out[0]);
    /* integer division gives float32 */
    int32_t i4[4] = {7, -7, 1, 0};
    sp_tensor *ia = sp_tensor_from_data(SP_I32, 1, (int64_t[]){4}, i4);
    sp_tensor *ib = sp_tensor_scalar(SP_I32, 2);
    CHECK_OK(sp_op_call(SP_OP_DIV, 2, (sp_tensor *[]){ia, ib}, NULL, &n, out));
    CHECK(n == 1 && holds(out[0], SP_F32, SHAPE(4), VALS(3.5, -3.5, 0.5, 0)));
    sp_tensor_release(out[0]);
    /* comparisons give bool */
    CHECK_OK(sp_op_call(SP_OP_GREATER, 2, (sp_tensor *[]){ia, ib}, NULL, &n, out));
    CHECK(n == 1 && holds(out[0], SP_BOOL, SHAPE(4), VALS(1, 0, 0, 0)));
    sp_tensor_release(out[0]);
    release_all((sp_tensor *[]){a, b, at_, c, ia, ib}, 6);
}

static void test_reduce(void) {
    int32_t v[6] = {1, 2, 3, 4, 5, 6};
    sp_tensor *x = sp_tensor_from_data(SP_I32, 2, (int64_t[]){2, 3}, v);
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n = -1;
    CHECK_OK(sp_op_call(SP_OP_SUM, 1, &x, NULL, &n, out));
    CHECK(n == 1 && holds(out[0], SP_I64, 0, NULL, VALS(21)));
    sp_tensor_release(out[0]);
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axes", -1);
    sp_attrs_set_int(&a, "keepdims", 1);
    CHECK_OK(sp_op_call(SP_OP_SUM, 1, &x, &a, &n, out));
    CHECK(n == 1 && holds(out[0], SP_I64, SHAPE(2, 1), VALS(6, 15)));
    sp_tensor_release(out[0]);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axes", 0);
    CHECK_OK(sp_op_call(SP_OP_MAX, 1, &x, &a, &n, out));
    CHECK(n == 1 && holds(out[0], SP_I32, SHAPE(3), VALS(4, 5, 6)));
    sp_tensor_release(out[0]);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK_OK(sp_op_call(SP_OP_ARGMAX, 1, &x, &a, &n, out));
    CHECK(n == 1 && holds(out[0], SP_I64, SHAPE(2), VALS(2, 2)));
    sp_tensor_release(out[0]);
    sp_tensor_release(x);
}

static void test_multi_output(void) {
    sp_tensor *x = F32(1, 2, 3, 4, 5);
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n = -1;
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "sizes", 3, (int64_t[]){2, 0, 3});
    CHECK_OK(sp_op_call(SP_OP_SPLIT, 1, &x, &a, &n, out));
    CHECK(n == 3);
    if (n == 3) {
        CHECK(holds(out[0], SP_F32, SHAPE(2), VALS(1, 2)));
        CHECK(holds(out[1], SP_F32, SHAPE(0), VALS(0)));
        CHECK(holds(out[2], SP_F32, SHAPE(3), VALS(3, 4, 5)));
        release_all(out, 3);
    }
    /* concat is variadic */
    sp_tensor *y = F32(9);
    CHECK_OK(sp_op_call(SP_OP_CONCAT, 3, (sp_tensor *[]){y, x, y}, NULL, &n, out));
    CHECK(n == 1 && holds(out[0], SP_F32, SHAPE(7), VALS(9, 1, 2, 3, 4, 5, 9)));
    if (n == 1) sp_tensor_release(out[0]);
    release_all((sp_tensor *[]){x, y}, 2);
}

static void test_call_into(void) {
    sp_tensor *x = F32(1, 4, 9), *o = sp_tensor_new(SP_F32, 1, (int64_t[]){3}, SP_CPU);
    CHECK_OK(sp_op_call_into(SP_OP_SQRT, 1, &x, NULL, 1, &o));
    CHECK(holds(o, SP_F32, SHAPE(3), VALS(1, 2, 3)));
    release_all((sp_tensor *[]){x, o}, 2);
}

static void test_inplace(void) {
    sp_tensor *p = F32(1, 2), *g = F32(10, 20), *acc = F32(0, 0);
    sp_tensor *lr = sp_tensor_scalar(SP_F32, 0.5);
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n = -1;
    CHECK_OK(sp_op_call(SP_OP_SGD_UPDATE, 4, (sp_tensor *[]){p, g, acc, lr}, NULL, &n, out));
    CHECK(n == 0);
    CHECK(holds(p, SP_F32, SHAPE(2), VALS(-4, -8)));
    release_all((sp_tensor *[]){p, g, acc, lr}, 4);
}

static void test_random(void) {
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){8});
    sp_tensor *o[4] = {0};
    int n;
    sp_set_seed(1234);
    CHECK_OK(sp_op_call(SP_OP_UNIFORM, 0, NULL, &a, &n, &o[0]));
    CHECK_OK(sp_op_call(SP_OP_UNIFORM, 0, NULL, &a, &n, &o[1]));
    sp_set_seed(1234);
    CHECK_OK(sp_op_call(SP_OP_UNIFORM, 0, NULL, &a, &n, &o[2]));
    if (!o[0] || !o[1] || !o[2]) goto done;
    int same01 = 1, same02 = 1, in_range = 1;
    for (int i = 0; i < 8; i++) {
        same01 &= at(o[0], i) == at(o[1], i);
        same02 &= at(o[0], i) == at(o[2], i);
        in_range &= at(o[0], i) >= 0 && at(o[0], i) < 1;
    }
    CHECK(!same01); /* eager calls draw fresh numbers */
    CHECK(same02);  /* the same seed repeats them */
    CHECK(in_range);
    /* an explicit seed and offset do not touch the global generator */
    sp_attrs_set_int(&a, "seed", 77);
    sp_attrs_set_int(&a, "offset", 0);
    CHECK_OK(sp_op_call(SP_OP_UNIFORM, 0, NULL, &a, &n, &o[3]));
    sp_tensor *ref = sp_tensor_new(SP_F32, 1, (int64_t[]){8}, SP_CPU);
    CHECK_OK(sp_rng_uniform(ref, 77, 0, 0, 1));
    int same = o[3] != NULL;
    for (int i = 0; same && i < 8; i++) same = at(o[3], i) == at(ref, i);
    CHECK(same);
    sp_tensor_release(ref);
done:
    release_all(o, 4);
}

static void test_kernel_failure(void) {
    /* an index out of range is found by the kernel: no outputs, no leak */
    int64_t before = sp_cpu_live_bytes();
    sp_tensor *x = F32(1, 2, 3);
    int64_t iv[2] = {0, 7};
    sp_tensor *idx = sp_tensor_from_data(SP_I64, 1, (int64_t[]){2}, iv);
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n = 99;
    sp_clear_error();
    sp_status st = sp_op_call(SP_OP_GATHER, 2, (sp_tensor *[]){x, idx}, NULL, &n, out);
    CHECK(st != SP_OK && n == 0);
    CHECK(strstr(sp_last_error(), "gather") != NULL);
    release_all((sp_tensor *[]){x, idx}, 2);
    CHECK(sp_cpu_live_bytes() == before);
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_binary_broadcast);
    RUN(test_reduce);
    RUN(test_multi_output);
    RUN(test_call_into);
    RUN(test_inplace);
    RUN(test_random);
    RUN(test_kernel_failure);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}
