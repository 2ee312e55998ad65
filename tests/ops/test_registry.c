/*
 * test_registry.c -- the primitive table, the attribute sets and shape/dtype
 * inference on metas.
 *
 * Inference is tested on sp_meta values through sp_op_infer, without
 * kernels or memory, one or more representative cases per inference
 * family with the exact shapes and dtypes numpy/torch give (the slice table
 * was produced with Python's len(range(n)[slice(...)]), the pooling sizes
 * with torch.nn.functional.max_pool2d).
 *
 * test_cpu_kernels fails while any row of ops.def lacks a CPU kernel; that
 * is on purpose: it is what keeps the backend complete.
 */
#include "test.h"

#include "backend/backend.h"
#include "ops/ops.h"

#define N SP_SLICE_NONE

static sp_meta meta(sp_dtype d, int ndim, const int64_t *shape) {
    sp_meta m;
    memset(&m, 0, sizeof m);
    m.dtype = d;
    m.ndim = ndim;
    for (int i = 0; i < ndim; i++) m.shape[i] = shape[i];
    return m;
}
#define META(d, ...) meta(d, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define SCALAR(d) meta(d, 0, NULL)

/* out has dtype d and the given shape. */
static int meta_is(const sp_meta *m, sp_dtype d, int ndim, const int64_t *shape) {
    if (m->dtype != d || m->ndim != ndim) goto bad;
    for (int i = 0; i < ndim; i++)
        if (m->shape[i] != shape[i]) goto bad;
    return 1;
bad:;
    char a[128], b[128];
    fprintf(stderr, "  got %s %s, wanted %s %s\n", sp_dtype_name(m->dtype),
            sp_shape_str(m->ndim, m->shape, a, sizeof a), sp_dtype_name(d),
            sp_shape_str(ndim, shape, b, sizeof b));
    return 0;
}
#define IS(m, d, ...) meta_is(&(m), d, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
#define IS0(m, d) meta_is(&(m), d, 0, NULL)

static sp_meta out[SP_MAX_OUTPUTS];
static int nout;

/* Infers op on n metas; returns the status (out/nout hold the result). */
static sp_status inf(int op, int n, const sp_meta *in, const sp_attrs *a) {
    nout = -1;
    sp_status st = sp_op_infer(op, n, in, a, &nout, out);
    if (st) fprintf(stderr, "  %s: %s\n", sp_op_name(op), sp_last_error());
    return st;
}

static void test_names(void) {
    CHECK(sp_op_count() == SP_OP_COUNT);
    CHECK(sp_op_count() > 90);
    int dup = 0;
    for (int i = 0; i < sp_op_count(); i++) {
        const char *n = sp_op_name(i);
        CHECK(n != NULL && n[0] != '\0');
        if (!n) continue;
        CHECK(sp_op_find(n) == i);
        for (int j = i + 1; j < sp_op_count(); j++) dup += strcmp(n, sp_op_name(j)) == 0;
    }
    CHECK(dup == 0);
    CHECK(sp_op_find("add") == SP_OP_ADD);
    CHECK_STR(sp_op_name(SP_OP_MATMUL), "matmul");
    CHECK_STR(sp_op_name(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY), "sparse_softmax_cross_entropy");
    sp_clear_error();
    CHECK(sp_op_find("foo") == -1);
    CHECK(strstr(sp_last_error(), "unknown primitive 'foo'") != NULL);
    CHECK(sp_op_find(NULL) == -1);
    CHECK(sp_op_name(-1) == NULL);
    CHECK(sp_op_name(SP_OP_COUNT) == NULL);
}

static void test_table(void) {
    CHECK(sp_op_num_inputs(SP_OP_ADD) == 2 && sp_op_num_outputs(SP_OP_ADD) == 1);
    CHECK(sp_op_num_inputs(SP_OP_CONCAT) == -1 && sp_op_num_outputs(SP_OP_CONCAT) == 1);
    CHECK(sp_op_num_inputs(SP_OP_SPLIT) == 1 && sp_op_num_outputs(SP_OP_SPLIT) == -1);
    CHECK(sp_op_num_inputs(SP_OP_ARANGE) == 0);
    CHECK(sp_op_num_inputs(SP_OP_ADAM_UPDATE) == 6 && sp_op_num_outputs(SP_OP_ADAM_UPDATE) == 0);
    CHECK(sp_op_num_outputs(SP_OP_LAYER_NORM) == 3);
    CHECK(sp_op_dtypes(SP_OP_EXP) == SP_DTM_FLOAT);
    CHECK(sp_op_dtypes(SP_OP_ADD) == SP_DTM_NUM);
    CHECK(sp_op_dtypes(SP_OP_ONE_HOT) == SP_DTM_INDEX);
    CHECK(sp_op_dtypes(SP_OP_CONV2D) == SP_DTM_F3264);
    CHECK(sp_op_is_differentiable(SP_OP_ADD) && !sp_op_is_differentiable(SP_OP_EQUAL));
    CHECK(!sp_op_is_differentiable(SP_OP_ARGMAX));
    CHECK(sp_op_is_inplace(SP_OP_SGD_UPDATE) && sp_op_is_inplace(SP_OP_ADAM_UPDATE));
    CHECK(sp_op_is_inplace(SP_OP_ASSIGN) && sp_op_dtypes(SP_OP_ASSIGN) == SP_DTM_ALL);
    CHECK(!sp_op_is_inplace(SP_OP_ADD) && !sp_op_is_inplace(SP_OP_BATCH_NORM));
    CHECK(sp_op_num_inputs(-5) == 0 && sp_op_dtypes(999) == 0 && !sp_op_is_inplace(-1));
    /* every op's table entry is complete */
    for (int i = 0; i < SP_OP_COUNT; i++) {
        CHECK(sp_op_defs[i].infer != NULL);
        CHECK(sp_op_defs[i].dtypes != 0);
        CHECK(sp_op_defs[i].n_in >= -1 && sp_op_defs[i].n_out >= -1);
        CHECK(!(sp_op_defs[i].flags & SP_OPF_INPLACE) || sp_op_defs[i].n_out == 0);
    }
}

static void test_cpu_kernels(void) {
    sp_backend *be = sp_backend_cpu();
    CHECK(be != NULL && be == sp_backend_get(SP_DEVICE_CPU));
    CHECK_STR(be->name, "cpu");
    int missing = 0;
    for (int i = 0; i < SP_OP_COUNT; i++) {
        int any = 0;
        for (int d = 0; d < SP_DTYPE_COUNT; d++) any |= be->supports(be, i, (sp_dtype)d);
        if (!any) {
            fprintf(stderr, "  no CPU kernel for %s\n", sp_op_name(i));
            missing++;
        }
    }
    CHECK(missing == 0);
    /* supports follows the dtype masks */
    if (be->supports(be, SP_OP_EXP, SP_F32)) {
        CHECK(!be->supports(be, SP_OP_EXP, SP_I32));
        CHECK(!be->supports(be, SP_OP_EXP, SP_BOOL));
    }
    CHECK(!be->supports(be, -1, SP_F32) && !be->supports(be, SP_OP_COUNT, SP_F32));
}

static void test_backend_registry(void) {
    sp_clear_error();
    CHECK(sp_backend_get(SP_DEVICE_CUDA) == NULL);
    CHECK(sp_last_status() == SP_ERR_DEVICE);
    CHECK(strstr(sp_last_error(), "no CUDA backend") != NULL);
    CHECK(sp_backend_get((sp_device_type)7) == NULL);
    CHECK(sp_last_status() == SP_ERR_DEVICE);
}

static void test_attrs(void) {
    sp_attrs a;
    sp_attrs_init(&a);
    CHECK(a.n == 0);
    CHECK(sp_attrs_get_int(&a, "axis", -7) == -7);
    CHECK(sp_attrs_find(&a, "axis") == NULL);
    CHECK_OK(sp_attrs_set_int(&a, "axis", 2));
    CHECK(sp_attrs_get_int(&a, "axis", 0) == 2);
    CHECK(sp_attrs_get_float(&a, "axis", 0) == 2.0);
    /* replace, same slot, new kind */
    CHECK_OK(sp_attrs_set_int(&a, "axis", -1));
    CHECK(a.n == 1 && sp_attrs_get_int(&a, "axis", 0) == -1);
    CHECK_OK(sp_attrs_set_float(&a, "axis", 3.0));
    CHECK(a.n == 1 && sp_attrs_find(&a, "axis")->kind == SP_ATTR_FLOAT);
    CHECK(sp_attrs_get_int(&a, "axis", 0) == 3); /* integral float reads as int */
    CHECK_OK(sp_attrs_set_float(&a, "eps", 2.5));
    CHECK(sp_attrs_get_int(&a, "eps", 9) == 9); /* not integral: default */
    CHECK(sp_attrs_get_float(&a, "eps", 0) == 2.5);
    CHECK_OK(sp_attrs_set_float(&a, "huge", 1e300));
    CHECK(sp_attrs_get_int(&a, "huge", 4) == 4);
    int64_t v[3] = {1, -2, 3};
    int n = -1;
    CHECK_OK(sp_attrs_set_ints(&a, "perm", 3, v));
    const int64_t *p = sp_attrs_get_ints(&a, "perm", &n);
    CHECK(p && n == 3 && p[0] == 1 && p[1] == -2 && p[2] == 3);
    CHECK(sp_attrs_get_int(&a, "perm", 5) == 5); /* a list of 3 is not an int */
    CHECK_OK(sp_attrs_set_ints(&a, "one", 1, v));
    CHECK(sp_attrs_get_int(&a, "one", 0) == 1);
    CHECK_OK(sp_attrs_set_ints(&a, "empty", 0, NULL));
    p = sp_attrs_get_ints(&a, "empty", &n);
    CHECK(p != NULL && n == 0);
    p = sp_attrs_get_ints(&a, "axis", &n); /* a float is not a list */
    CHECK(p == NULL && n == 0);
    CHECK_OK(sp_attrs_set_int(&a, "k", 4));
    p = sp_attrs_get_ints(&a, "k", &n); /* a single int reads as a list of one */
    CHECK(p && n == 1 && p[0] == 4);
    p = sp_attrs_get_ints(&a, "absent", &n);
    CHECK(p == NULL && n == 0);
    CHECK_OK(sp_attrs_set_str(&a, "mode", "reflect"));
    CHECK_STR(sp_attrs_get_str(&a, "mode", "constant"), "reflect");
    CHECK_STR(sp_attrs_get_str(&a, "absent", "constant"), "constant");
    CHECK_STR(sp_attrs_get_str(&a, "k", "dflt"), "dflt"); /* an int is not a string */
    CHECK(sp_attrs_get_int(&a, "mode", 11) == 11);
    CHECK_OK(sp_attrs_set_dtype(&a, "dtype", SP_BF16));
    CHECK(sp_attrs_get_dtype(&a, "dtype", SP_F32) == SP_BF16);
    CHECK(sp_attrs_get_dtype(&a, "absent", SP_I8) == SP_I8);
    CHECK_ERR(sp_attrs_set_dtype(&a, "dtype", SP_DTYPE_COUNT), SP_ERR_DTYPE, "dtype");
    CHECK(sp_attrs_get_dtype(&a, "dtype", SP_F32) == SP_BF16); /* unchanged */

    /* overflow: a full set refuses a new name but still replaces */
    sp_attrs b;
    sp_attrs_init(&b);
    static const char *names[SP_MAX_ATTRS] = {"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7",
                                              "a8", "a9", "a10", "a11", "a12", "a13", "a14", "a15"};
    for (int i = 0; i < SP_MAX_ATTRS; i++) CHECK_OK(sp_attrs_set_int(&b, names[i], i));
    CHECK(b.n == SP_MAX_ATTRS);
    CHECK_ERR(sp_attrs_set_int(&b, "one_more", 1), SP_ERR_ARG, "one_more");
    CHECK(b.n == SP_MAX_ATTRS);
    CHECK_OK(sp_attrs_set_int(&b, "a7", 70));
    CHECK(sp_attrs_get_int(&b, "a7", 0) == 70 && sp_attrs_get_int(&b, "a15", 0) == 15);
    int64_t big[SP_MAX_ATTR_INTS + 1] = {0};
    sp_attrs_init(&b);
    CHECK_OK(sp_attrs_set_ints(&b, "max", SP_MAX_ATTR_INTS, big));
    CHECK_ERR(sp_attrs_set_ints(&b, "long", SP_MAX_ATTR_INTS + 1, big), SP_ERR_ARG, "long");
    CHECK_ERR(sp_attrs_set_ints(&b, "neg", -1, big), SP_ERR_ARG, "neg");
    CHECK(sp_attrs_find(&b, "long") == NULL && b.n == 1);
    CHECK_ERR(sp_attrs_set_int(&b, NULL, 1), SP_ERR_ARG, "NULL");
    CHECK_ERR(sp_attrs_set_str(&b, "s", NULL), SP_ERR_ARG, "'s'");
    CHECK(sp_attrs_get_int(NULL, "x", 3) == 3);
}

static void test_infer_elementwise(void) {
    sp_meta in[3];
    sp_attrs a;
    sp_attrs_init(&a);
    in[0] = META(SP_F16, 2, 3);
    CHECK(inf(SP_OP_EXP, 1, in, NULL) == SP_OK && nout == 1 && IS(out[0], SP_F16, 2, 3));
    in[0] = META(SP_I32, 4);
    CHECK(inf(SP_OP_ISNAN, 1, in, NULL) == SP_OK && IS(out[0], SP_BOOL, 4));
    CHECK(inf(SP_OP_RELU, 1, in, NULL) == SP_OK && IS(out[0], SP_I32, 4));
    in[0] = SCALAR(SP_F64);
    CHECK(inf(SP_OP_NEG, 1, in, NULL) == SP_OK && IS0(out[0], SP_F64));
    /* binary: broadcast and promote */
    in[0] = META(SP_I32, 2, 1, 3);
    in[1] = META(SP_F32, 4, 1);
    CHECK(inf(SP_OP_ADD, 2, in, NULL) == SP_OK && IS(out[0], SP_F64, 2, 4, 3));
    in[0] = META(SP_I32, 5);
    in[1] = META(SP_I64, 1);
    CHECK(inf(SP_OP_MUL, 2, in, NULL) == SP_OK && IS(out[0], SP_I64, 5));
    in[0] = META(SP_F16, 3);
    in[1] = META(SP_BF16, 2, 1);
    CHECK(inf(SP_OP_SUB, 2, in, NULL) == SP_OK && IS(out[0], SP_F32, 2, 3));
    in[0] = META(SP_F32, 0, 3);
    in[1] = META(SP_F32, 1);
    CHECK(inf(SP_OP_POW, 2, in, NULL) == SP_OK && IS(out[0], SP_F32, 0, 3));
    /* div: ints give float32 */
    in[0] = META(SP_I32, 2, 3);
    in[1] = META(SP_I32, 3);
    CHECK(inf(SP_OP_DIV, 2, in, NULL) == SP_OK && IS(out[0], SP_F32, 2, 3));
    in[0] = META(SP_F64, 3);
    CHECK(inf(SP_OP_DIV, 2, in, NULL) == SP_OK && IS(out[0], SP_F64, 3));
    CHECK(inf(SP_OP_FLOOR_DIV, 2, in, NULL) == SP_OK && IS(out[0], SP_F64, 3));
    /* comparisons */
    in[0] = META(SP_F32, 3);
    in[1] = SCALAR(SP_F64);
    CHECK(inf(SP_OP_LESS, 2, in, NULL) == SP_OK && IS(out[0], SP_BOOL, 3));
    in[0] = META(SP_BOOL, 2, 1);
    in[1] = META(SP_BOOL, 4);
    CHECK(inf(SP_OP_LOGICAL_AND, 2, in, NULL) == SP_OK && IS(out[0], SP_BOOL, 2, 4));
    /* where */
    in[0] = META(SP_BOOL, 2, 1);
    in[1] = META(SP_F32, 3);
    in[2] = META(SP_F16, 1);
    CHECK(inf(SP_OP_WHERE, 3, in, NULL) == SP_OK && IS(out[0], SP_F32, 2, 3));
    in[0] = META(SP_I8, 4, 1, 1);
    in[1] = META(SP_I32, 5, 1);
    in[2] = META(SP_I32, 6);
    CHECK(inf(SP_OP_WHERE, 3, in, NULL) == SP_OK && IS(out[0], SP_I32, 4, 5, 6));
    /* cast, softmax */
    in[0] = META(SP_F32, 2);
    sp_attrs_set_dtype(&a, "dtype", SP_I8);
    CHECK(inf(SP_OP_CAST, 1, in, &a) == SP_OK && IS(out[0], SP_I8, 2));
    in[0] = META(SP_F32, 2, 5);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", 0);
    CHECK(inf(SP_OP_SOFTMAX, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 5));
    CHECK(inf(SP_OP_LOG_SOFTMAX, 1, in, NULL) == SP_OK && IS(out[0], SP_F32, 2, 5));
}

static void test_infer_reduce(void) {
    sp_meta in[1];
    sp_attrs a;
    int64_t ax[2] = {0, -1};
    in[0] = META(SP_I32, 2, 3, 4);
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "axes", 2, ax);
    CHECK(inf(SP_OP_SUM, 1, in, &a) == SP_OK && IS(out[0], SP_I64, 3));
    sp_attrs_set_int(&a, "keepdims", 1);
    CHECK(inf(SP_OP_SUM, 1, in, &a) == SP_OK && IS(out[0], SP_I64, 1, 3, 1));
    CHECK(inf(SP_OP_MAX, 1, in, &a) == SP_OK && IS(out[0], SP_I32, 1, 3, 1));
    CHECK(inf(SP_OP_PROD, 1, in, NULL) == SP_OK && IS0(out[0], SP_I64));
    in[0] = META(SP_BOOL, 5);
    CHECK(inf(SP_OP_SUM, 1, in, NULL) == SP_OK && IS0(out[0], SP_I64));
    in[0] = META(SP_F16, 2, 3, 4);
    CHECK(inf(SP_OP_MEAN, 1, in, NULL) == SP_OK && IS0(out[0], SP_F16));
    CHECK(inf(SP_OP_SUM, 1, in, NULL) == SP_OK && IS0(out[0], SP_F16));
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axes", 1); /* a single int works as a list */
    CHECK(inf(SP_OP_LOGSUMEXP, 1, in, &a) == SP_OK && IS(out[0], SP_F16, 2, 4));
    sp_attrs_set_ints(&a, "axes", 0, NULL); /* empty list: all axes */
    sp_attrs_set_int(&a, "keepdims", 1);
    CHECK(inf(SP_OP_MIN, 1, in, &a) == SP_OK && IS(out[0], SP_F16, 1, 1, 1));
    /* max of an empty result is fine: nothing to compute */
    in[0] = META(SP_F32, 3, 0);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axes", 0);
    CHECK(inf(SP_OP_MAX, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 0));
    CHECK(inf(SP_OP_SUM, 1, in, NULL) == SP_OK && IS0(out[0], SP_F32));
    /* argmax / argmin */
    in[0] = META(SP_F32, 2, 3);
    CHECK(inf(SP_OP_ARGMAX, 1, in, NULL) == SP_OK && IS0(out[0], SP_I64));
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "keepdims", 1);
    CHECK(inf(SP_OP_ARGMIN, 1, in, &a) == SP_OK && IS(out[0], SP_I64, 1, 1));
    sp_attrs_set_int(&a, "axis", -1);
    CHECK(inf(SP_OP_ARGMIN, 1, in, &a) == SP_OK && IS(out[0], SP_I64, 2, 1));
    sp_attrs_set_int(&a, "keepdims", 0);
    CHECK(inf(SP_OP_ARGMAX, 1, in, &a) == SP_OK && IS(out[0], SP_I64, 2));
    /* cumsum */
    in[0] = META(SP_U8, 5);
    CHECK(inf(SP_OP_CUMSUM, 1, in, NULL) == SP_OK && IS(out[0], SP_I64, 5));
    in[0] = META(SP_F32, 2, 3);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK(inf(SP_OP_CUMSUM, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 3));
    /* sort, topk */
    in[0] = META(SP_I32, 3, 4);
    CHECK(inf(SP_OP_SORT, 1, in, NULL) == SP_OK && nout == 2 && IS(out[0], SP_I32, 3, 4) &&
          IS(out[1], SP_I64, 3, 4));
    in[0] = META(SP_F32, 3, 5);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "k", 2);
    CHECK(inf(SP_OP_TOPK, 1, in, &a) == SP_OK && nout == 2 && IS(out[0], SP_F32, 3, 2) &&
          IS(out[1], SP_I64, 3, 2));
    sp_attrs_set_int(&a, "k", 3);
    sp_attrs_set_int(&a, "axis", 0);
    CHECK(inf(SP_OP_TOPK, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 3, 5));
    sp_attrs_set_int(&a, "k", 0);
    CHECK(inf(SP_OP_TOPK, 1, in, &a) == SP_OK && IS(out[1], SP_I64, 0, 5));
}

static void test_infer_shape(void) {
    sp_meta in[4];
    sp_attrs a;
    in[0] = META(SP_F32, 2, 3);
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){3, -1});
    CHECK(inf(SP_OP_RESHAPE, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 3, 2));
    sp_attrs_set_ints(&a, "shape", 0, NULL);
    in[0] = META(SP_I8, 1, 1);
    CHECK(inf(SP_OP_RESHAPE, 1, in, &a) == SP_OK && IS0(out[0], SP_I8));
    in[0] = META(SP_F32, 2, 0);
    sp_attrs_set_ints(&a, "shape", 3, (int64_t[]){0, 5, 7});
    CHECK(inf(SP_OP_RESHAPE, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 0, 5, 7));
    /* transpose */
    in[0] = META(SP_BOOL, 2, 3, 4);
    CHECK(inf(SP_OP_TRANSPOSE, 1, in, NULL) == SP_OK && IS(out[0], SP_BOOL, 4, 3, 2));
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "perm", 3, (int64_t[]){1, 0, 2});
    CHECK(inf(SP_OP_TRANSPOSE, 1, in, &a) == SP_OK && IS(out[0], SP_BOOL, 3, 2, 4));
    sp_attrs_set_ints(&a, "perm", 3, (int64_t[]){-1, 0, 1});
    CHECK(inf(SP_OP_TRANSPOSE, 1, in, &a) == SP_OK && IS(out[0], SP_BOOL, 4, 2, 3));
    /* broadcast_to */
    in[0] = META(SP_F32, 3, 1);
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 3, (int64_t[]){2, 3, 4});
    CHECK(inf(SP_OP_BROADCAST_TO, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 3, 4));
    /* concat */
    in[0] = META(SP_F32, 2, 3);
    in[1] = META(SP_F64, 4, 3);
    CHECK(inf(SP_OP_CONCAT, 2, in, NULL) == SP_OK && IS(out[0], SP_F64, 6, 3));
    in[1] = META(SP_F32, 2, 1);
    in[2] = META(SP_F32, 2, 0);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", -1);
    CHECK(inf(SP_OP_CONCAT, 3, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 4));
    CHECK(inf(SP_OP_CONCAT, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 3));
    /* split */
    in[0] = META(SP_I64, 10, 4);
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "sizes", 2, (int64_t[]){3, 7});
    CHECK(inf(SP_OP_SPLIT, 1, in, &a) == SP_OK && nout == 2 && IS(out[0], SP_I64, 3, 4) &&
          IS(out[1], SP_I64, 7, 4));
    sp_attrs_set_ints(&a, "sizes", 3, (int64_t[]){1, 0, 3});
    sp_attrs_set_int(&a, "axis", 1);
    CHECK(inf(SP_OP_SPLIT, 1, in, &a) == SP_OK && nout == 3 && IS(out[0], SP_I64, 10, 1) &&
          IS(out[1], SP_I64, 10, 0) && IS(out[2], SP_I64, 10, 3));
    /* stack */
    in[0] = in[1] = in[2] = META(SP_F32, 2, 3);
    CHECK(inf(SP_OP_STACK, 3, in, NULL) == SP_OK && IS(out[0], SP_F32, 3, 2, 3));
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", -1);
    CHECK(inf(SP_OP_STACK, 3, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 3, 3));
    sp_attrs_set_int(&a, "axis", 1);
    CHECK(inf(SP_OP_STACK, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 2, 3));
    /* pad */
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "pads", 4, (int64_t[]){1, 2, 0, 3});
    CHECK(inf(SP_OP_PAD, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 5, 6));
    sp_attrs_set_str(&a, "mode", "reflect");
    sp_attrs_set_ints(&a, "pads", 4, (int64_t[]){1, 1, 2, 0});
    CHECK(inf(SP_OP_PAD, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 4, 5));
    /* tile */
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "reps", 1, (int64_t[]){2});
    CHECK(inf(SP_OP_TILE, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 6));
    sp_attrs_set_ints(&a, "reps", 3, (int64_t[]){2, 1, 2});
    CHECK(inf(SP_OP_TILE, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 2, 6));
    sp_attrs_set_ints(&a, "reps", 2, (int64_t[]){0, 2});
    CHECK(inf(SP_OP_TILE, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 0, 6));
    /* gather vs take_along_axis */
    in[0] = META(SP_F32, 5, 6, 7);
    in[1] = META(SP_I32, 2, 3);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK(inf(SP_OP_GATHER, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 5, 2, 3, 7));
    sp_attrs_set_int(&a, "axis", -1);
    CHECK(inf(SP_OP_GATHER, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 5, 6, 2, 3));
    in[1] = SCALAR(SP_I64);
    CHECK(inf(SP_OP_GATHER, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 5, 6));
    in[0] = META(SP_F64, 4, 5);
    in[1] = META(SP_I64, 4, 2);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK(inf(SP_OP_TAKE_ALONG_AXIS, 2, in, &a) == SP_OK && IS(out[0], SP_F64, 4, 2));
    in[1] = META(SP_I64, 2, 9);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK(inf(SP_OP_TAKE_ALONG_AXIS, 2, in, &a) == SP_OK && IS(out[0], SP_F64, 2, 9));
    /* scatter_add */
    in[0] = META(SP_F32, 4, 5);
    in[1] = META(SP_I64, 2, 5);
    in[2] = META(SP_F32, 2, 5);
    CHECK(inf(SP_OP_SCATTER_ADD, 3, in, NULL) == SP_OK && IS(out[0], SP_F32, 4, 5));
    /* one_hot */
    in[0] = META(SP_I32, 3);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "depth", 4);
    CHECK(inf(SP_OP_ONE_HOT, 1, in, &a) == SP_OK && IS(out[0], SP_F32, 3, 4));
    sp_attrs_set_dtype(&a, "dtype", SP_I64);
    in[0] = META(SP_I64, 2, 2);
    CHECK(inf(SP_OP_ONE_HOT, 1, in, &a) == SP_OK && IS(out[0], SP_I64, 2, 2, 4));
}

/* Python's len(range(n)[slice(b, e, s)]) for n = 10, 5, 0. */
static void test_infer_slice(void) {
    static const struct {
        int64_t b, e, s, len[3];
    } cases[] = {
        {N, N, 3, {4, 2, 0}},     {2, N, 3, {3, 1, 0}},       {N, N, -1, {10, 5, 0}},
        {-3, N, 1, {3, 3, 0}},    {100, -100, -1, {10, 5, 0}}, {N, 1, -2, {4, 2, 0}},
        {1, -1, 1, {8, 3, 0}},    {N, N, -2, {5, 3, 0}},      {3, 3, 1, {0, 0, 0}},
        {-100, 100, 1, {10, 5, 0}}, {N, N, INT64_MAX, {1, 1, 0}}, {N, N, INT64_MIN, {1, 1, 0}},
        {INT64_MAX, N, -1, {10, 5, 0}}, {INT64_MIN + 1, INT64_MAX, 1, {10, 5, 0}},
    };
    const int64_t lens[3] = {10, 5, 0};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int k = 0; k < 3; k++) {
            sp_meta in = META(SP_F32, 2, lens[k]);
            sp_attrs a;
            sp_attrs_init(&a);
            sp_attrs_set_ints(&a, "begin", 2, (int64_t[]){N, cases[c].b});
            sp_attrs_set_ints(&a, "end", 2, (int64_t[]){N, cases[c].e});
            sp_attrs_set_ints(&a, "step", 2, (int64_t[]){1, cases[c].s});
            int ok = inf(SP_OP_SLICE, 1, &in, &a) == SP_OK && IS(out[0], SP_F32, 2, cases[c].len[k]);
            CHECK(ok);
            if (!ok) fprintf(stderr, "  slice case %zu, len %lld\n", c, (long long)lens[k]);
        }
    /* absent begin/end/step: the whole tensor */
    sp_meta in = META(SP_F32, 4, 5);
    CHECK(inf(SP_OP_SLICE, 1, &in, NULL) == SP_OK && IS(out[0], SP_F32, 4, 5));
}

static void test_infer_create(void) {
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "stop", 5);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && IS(out[0], SP_I64, 5));
    sp_attrs_set_int(&a, "start", 1);
    sp_attrs_set_int(&a, "stop", 10);
    sp_attrs_set_int(&a, "step", 3);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && IS(out[0], SP_I64, 3));
    sp_attrs_set_int(&a, "start", 10);
    sp_attrs_set_int(&a, "stop", 0);
    sp_attrs_set_int(&a, "step", -3);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && IS(out[0], SP_I64, 4));
    sp_attrs_set_int(&a, "step", 3);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && IS(out[0], SP_I64, 0));
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "stop", 2.5);
    sp_attrs_set_float(&a, "step", 0.5);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && IS(out[0], SP_F32, 5));
    sp_attrs_set_float(&a, "stop", 2.0); /* a float attribute gives float32, as torch */
    sp_attrs_set_float(&a, "step", 1.0);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && IS(out[0], SP_F32, 2));
    sp_attrs_set_dtype(&a, "dtype", SP_F64);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && IS(out[0], SP_F64, 2));
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "start", 0.1);
    sp_attrs_set_float(&a, "stop", 0.4);
    sp_attrs_set_float(&a, "step", 0.1);
    CHECK(inf(SP_OP_ARANGE, 0, NULL, &a) == SP_OK && out[0].ndim == 1 &&
          out[0].shape[0] == (int64_t)ceil((0.4 - 0.1) / 0.1));
    /* full / zeros / ones */
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){2, 3});
    sp_attrs_set_float(&a, "value", 1.5);
    sp_attrs_set_dtype(&a, "dtype", SP_I32);
    CHECK(inf(SP_OP_FULL, 0, NULL, &a) == SP_OK && IS(out[0], SP_I32, 2, 3));
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 0, NULL);
    CHECK(inf(SP_OP_ZEROS, 0, NULL, &a) == SP_OK && IS0(out[0], SP_F32));
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){0});
    sp_attrs_set_dtype(&a, "dtype", SP_BOOL);
    CHECK(inf(SP_OP_ONES, 0, NULL, &a) == SP_OK && IS(out[0], SP_BOOL, 0));
    /* random */
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 2, (int64_t[]){2, 3});
    CHECK(inf(SP_OP_UNIFORM, 0, NULL, &a) == SP_OK && IS(out[0], SP_F32, 2, 3));
    sp_attrs_set_dtype(&a, "dtype", SP_F64);
    CHECK(inf(SP_OP_NORMAL, 0, NULL, &a) == SP_OK && IS(out[0], SP_F64, 2, 3));
    sp_attrs_set_dtype(&a, "dtype", SP_BOOL);
    CHECK(inf(SP_OP_BERNOULLI, 0, NULL, &a) == SP_OK && IS(out[0], SP_BOOL, 2, 3));
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){7});
    sp_attrs_set_int(&a, "high", 5);
    CHECK(inf(SP_OP_RANDINT, 0, NULL, &a) == SP_OK && IS(out[0], SP_I64, 7));
}

static void test_infer_matmul(void) {
    sp_meta in[2];
    sp_attrs a;
    struct {
        int na;
        int64_t a[4];
        int nb;
        int64_t b[4];
        int ta, tb, nr;
        int64_t r[4];
    } cases[] = {
        {2, {2, 3}, 2, {3, 4}, 0, 0, 2, {2, 4}},
        {1, {3}, 2, {3, 4}, 0, 0, 1, {4}},
        {2, {2, 3}, 1, {3}, 0, 0, 1, {2}},
        {1, {3}, 1, {3}, 0, 0, 0, {0}},
        {4, {5, 1, 2, 3}, 3, {4, 3, 6}, 0, 0, 4, {5, 4, 2, 6}},
        {2, {3, 2}, 2, {3, 4}, 1, 0, 2, {2, 4}},
        {2, {2, 3}, 2, {4, 3}, 0, 1, 2, {2, 4}},
        {3, {7, 3, 2}, 2, {5, 3}, 1, 1, 3, {7, 2, 5}},
        {1, {3}, 3, {2, 3, 4}, 0, 0, 2, {2, 4}},
        {3, {2, 4, 3}, 1, {3}, 0, 0, 2, {2, 4}},
        {2, {0, 3}, 2, {3, 0}, 0, 0, 2, {0, 0}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        in[0] = meta(SP_F32, cases[c].na, cases[c].a);
        in[1] = meta(SP_F32, cases[c].nb, cases[c].b);
        sp_attrs_init(&a);
        sp_attrs_set_int(&a, "transpose_a", cases[c].ta);
        sp_attrs_set_int(&a, "transpose_b", cases[c].tb);
        int ok = inf(SP_OP_MATMUL, 2, in, &a) == SP_OK &&
                 meta_is(&out[0], SP_F32, cases[c].nr, cases[c].r);
        CHECK(ok);
        if (!ok) fprintf(stderr, "  matmul case %zu\n", c);
    }
}

static void test_infer_conv_pool(void) {
    sp_meta in[2];
    sp_attrs a;
    in[0] = META(SP_F32, 1, 3, 32, 32);
    in[1] = META(SP_F32, 8, 3, 3, 3);
    CHECK(inf(SP_OP_CONV2D, 2, in, NULL) == SP_OK && IS(out[0], SP_F32, 1, 8, 30, 30));
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "padding", 1);
    sp_attrs_set_ints(&a, "stride", 2, (int64_t[]){2, 2});
    CHECK(inf(SP_OP_CONV2D, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 1, 8, 16, 16));
    sp_attrs_set_ints(&a, "padding", 4, (int64_t[]){0, 1, 2, 3});
    sp_attrs_set_ints(&a, "stride", 2, (int64_t[]){1, 3});
    /* H: 32+1-3+1 = 31; W: (32+5-3)/3+1 = 12 */
    CHECK(inf(SP_OP_CONV2D, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 1, 8, 31, 12));
    sp_attrs_init(&a);
    sp_attrs_set_str(&a, "pad_mode", "same");
    sp_attrs_set_int(&a, "stride", 2);
    in[0] = META(SP_F64, 2, 3, 31, 8);
    in[1] = META(SP_F64, 4, 3, 5, 5);
    CHECK(inf(SP_OP_CONV2D, 2, in, &a) == SP_OK && IS(out[0], SP_F64, 2, 4, 16, 4));
    sp_attrs_init(&a);
    sp_attrs_set_str(&a, "pad_mode", "valid");
    sp_attrs_set_int(&a, "dilation", 2);
    in[0] = META(SP_F32, 1, 3, 32, 32);
    in[1] = META(SP_F32, 8, 3, 3, 3);
    CHECK(inf(SP_OP_CONV2D, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 1, 8, 28, 28));
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "groups", 3);
    in[0] = META(SP_F32, 2, 6, 10, 10);
    in[1] = META(SP_F32, 9, 2, 3, 3);
    CHECK(inf(SP_OP_CONV2D, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 2, 9, 8, 8));
    /* backprops */
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "input_shape", 4, (int64_t[]){1, 3, 32, 32});
    in[0] = META(SP_F32, 1, 8, 30, 30);
    in[1] = META(SP_F32, 8, 3, 3, 3);
    CHECK(inf(SP_OP_CONV2D_BACKPROP_INPUT, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 1, 3, 32, 32));
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "filter_shape", 4, (int64_t[]){8, 3, 3, 3});
    in[1] = META(SP_F32, 1, 3, 32, 32);
    CHECK(inf(SP_OP_CONV2D_BACKPROP_FILTER, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 8, 3, 3, 3));
    /* pooling, against torch.nn.functional.max_pool2d */
    struct {
        int64_t in, k, s, p;
        int ceil;
        int64_t o;
    } pc[] = {{5, 2, 2, 0, 0, 2}, {5, 2, 2, 0, 1, 3}, {5, 2, 2, 1, 1, 3}, {6, 3, 2, 1, 1, 4},
              {6, 3, 2, 1, 0, 3}, {7, 3, 1, 1, 0, 7}, {4, 4, 4, 0, 1, 1}};
    for (size_t c = 0; c < sizeof pc / sizeof pc[0]; c++) {
        in[0] = META(SP_F32, 2, 3, pc[c].in, pc[c].in);
        sp_attrs_init(&a);
        sp_attrs_set_int(&a, "kernel_size", pc[c].k);
        sp_attrs_set_int(&a, "stride", pc[c].s);
        sp_attrs_set_int(&a, "padding", pc[c].p);
        sp_attrs_set_int(&a, "ceil_mode", pc[c].ceil);
        int ok = inf(SP_OP_MAX_POOL2D, 1, in, &a) == SP_OK &&
                 IS(out[0], SP_F32, 2, 3, pc[c].o, pc[c].o);
        CHECK(ok);
        if (!ok) fprintf(stderr, "  pool case %zu\n", c);
    }
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "kernel_size", 2, (int64_t[]){2, 3});
    in[0] = META(SP_F64, 1, 1, 5, 7);
    CHECK(inf(SP_OP_AVG_POOL2D, 1, in, &a) == SP_OK && IS(out[0], SP_F64, 1, 1, 2, 2));
    in[1] = META(SP_F64, 1, 1, 2, 2);
    CHECK(inf(SP_OP_MAX_POOL2D_BACKWARD, 2, in, &a) == SP_OK && IS(out[0], SP_F64, 1, 1, 5, 7));
    sp_attrs_set_ints(&a, "input_shape", 4, (int64_t[]){1, 1, 5, 7});
    CHECK(inf(SP_OP_AVG_POOL2D_BACKWARD, 1, &in[1], &a) == SP_OK &&
          IS(out[0], SP_F64, 1, 1, 5, 7));
    sp_attrs_set_str(&a, "pad_mode", "same");
    in[1] = META(SP_F64, 1, 1, 3, 3);
    CHECK(inf(SP_OP_AVG_POOL2D_BACKWARD, 1, &in[1], &a) == SP_OK &&
          IS(out[0], SP_F64, 1, 1, 5, 7));
}

static void test_infer_nn(void) {
    sp_meta in[6];
    sp_attrs a;
    in[0] = META(SP_F32, 4, 10);
    in[1] = META(SP_I32, 4);
    CHECK(inf(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY, 2, in, NULL) == SP_OK && IS0(out[0], SP_F32));
    sp_attrs_init(&a);
    sp_attrs_set_str(&a, "reduction", "none");
    CHECK(inf(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 4));
    in[2] = META(SP_F32, 4);
    CHECK(inf(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY_BACKWARD, 3, in, &a) == SP_OK &&
          IS(out[0], SP_F32, 4, 10));
    in[2] = SCALAR(SP_F32);
    CHECK(inf(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY_BACKWARD, 3, in, NULL) == SP_OK &&
          IS(out[0], SP_F32, 4, 10));
    /* layer_norm: stats in float32 for half inputs */
    in[0] = META(SP_F16, 2, 3, 4);
    in[1] = in[2] = META(SP_F16, 3, 4);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", 1);
    CHECK(inf(SP_OP_LAYER_NORM, 3, in, &a) == SP_OK && nout == 3 && IS(out[0], SP_F16, 2, 3, 4) &&
          IS(out[1], SP_F32, 2) && IS(out[2], SP_F32, 2));
    in[0] = META(SP_F64, 2, 3, 4);
    in[1] = in[2] = META(SP_F64, 4);
    CHECK(inf(SP_OP_LAYER_NORM, 3, in, NULL) == SP_OK && IS(out[1], SP_F64, 2, 3));
    in[0] = in[1] = META(SP_F32, 2, 3, 4);
    in[2] = META(SP_F32, 4);
    in[3] = in[4] = META(SP_F32, 2, 3);
    CHECK(inf(SP_OP_LAYER_NORM_BACKWARD, 5, in, NULL) == SP_OK && IS(out[0], SP_F32, 2, 3, 4) &&
          IS(out[1], SP_F32, 4) && IS(out[2], SP_F32, 4));
    /* batch_norm */
    in[0] = META(SP_F32, 2, 3, 4, 4);
    for (int i = 1; i < 5; i++) in[i] = META(SP_F32, 3);
    CHECK(inf(SP_OP_BATCH_NORM, 5, in, NULL) == SP_OK && IS(out[0], SP_F32, 2, 3, 4, 4) &&
          IS(out[1], SP_F32, 3) && IS(out[2], SP_F32, 3));
    in[1] = in[0];
    CHECK(inf(SP_OP_BATCH_NORM_BACKWARD, 5, in, NULL) == SP_OK &&
          IS(out[0], SP_F32, 2, 3, 4, 4) && IS(out[1], SP_F32, 3) && IS(out[2], SP_F32, 3));
    /* dropout, embedding */
    in[0] = META(SP_BF16, 2, 3);
    CHECK(inf(SP_OP_DROPOUT, 1, in, NULL) == SP_OK && nout == 2 && IS(out[0], SP_BF16, 2, 3) &&
          IS(out[1], SP_BOOL, 2, 3));
    in[0] = META(SP_F32, 10, 4);
    in[1] = META(SP_I64, 2, 3);
    CHECK(inf(SP_OP_EMBEDDING, 2, in, NULL) == SP_OK && IS(out[0], SP_F32, 2, 3, 4));
    in[0] = META(SP_F32, 2, 3, 4);
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "num_embeddings", 10);
    CHECK(inf(SP_OP_EMBEDDING_BACKWARD, 2, in, &a) == SP_OK && IS(out[0], SP_F32, 10, 4));
    /* optimizers: no outputs */
    in[0] = in[1] = in[2] = in[3] = META(SP_F32, 3, 2);
    in[4] = in[5] = SCALAR(SP_F32);
    CHECK(inf(SP_OP_SGD_UPDATE, 4, (sp_meta[]){in[0], in[1], in[2], in[4]}, NULL) == SP_OK &&
          nout == 0);
    in[5] = SCALAR(SP_I64);
    CHECK(inf(SP_OP_ADAM_UPDATE, 6, in, NULL) == SP_OK && nout == 0);
    /* assign: value broadcasts to the variable's shape, any dtypes */
    CHECK(inf(SP_OP_ASSIGN, 2, (sp_meta[]){META(SP_I32, 3, 2), META(SP_F64, 2)}, NULL) == SP_OK &&
          nout == 0);
    CHECK(inf(SP_OP_ASSIGN, 2, (sp_meta[]){SCALAR(SP_I32), SCALAR(SP_BOOL)}, NULL) == SP_OK);
    CHECK(inf(SP_OP_ASSIGN, 2, (sp_meta[]){META(SP_F32, 2), META(SP_F32, 3, 2)}, NULL) ==
          SP_ERR_SHAPE);
    CHECK(inf(SP_OP_ASSIGN, 2, (sp_meta[]){META(SP_F32, 3, 2), META(SP_F32, 3)}, NULL) ==
          SP_ERR_SHAPE);
}

int main(void) {
    RUN(test_names);
    RUN(test_table);
    RUN(test_cpu_kernels);
    RUN(test_backend_registry);
    RUN(test_attrs);
    RUN(test_infer_elementwise);
    RUN(test_infer_reduce);
    RUN(test_infer_shape);
    RUN(test_infer_slice);
    RUN(test_infer_create);
    RUN(test_infer_matmul);
    RUN(test_infer_conv_pool);
    RUN(test_infer_nn);
    return TEST_SUMMARY();
}
