/*
 * test_meta.c -- meta tensors (SP_DEVICE_META) and the primitive-call
 * trace: contract 1 of the graph compiler.
 *
 * A meta tensor has a layout and no storage.  These tests check the three
 * halves of the contract: (1) core makes and views meta tensors, and every
 * reader of values (get, print, copies, casts, fills, random fills, moves to
 * another device) fails with SP_ERR_VALUE instead of touching NULL memory;
 * (2) sp_op_call / sp_op_call_into with a meta input, or any call with a
 * trace installed, infers, returns meta outputs, runs no kernel, draws no
 * random numbers and reports the call to the trace; (3) the runtime check
 * sp_test_api_trace (the replay proof the Python sweep of api.def uses)
 * passes, fails and leaks nothing on a few representative programs -- run
 * here so that ASan's leak checker covers it.  The CPU allocator's live
 * bytes are back where they started at the end.
 */
#include "test.h"

#include "core/internal.h"
#include "ops/ops.h"
#include "runtime/trace_check.h"

typedef struct rec {
    int n, ops[32], n_in[32], n_out[32], meta_out;
    int64_t seed_attr; /* a random call's seed attribute, -1 when absent */
} rec;

static void record(void *ctx, int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs, int n_out,
                   sp_tensor *const *out) {
    rec *r = ctx;
    (void)in;
    if (r->n < 32) {
        r->ops[r->n] = op;
        r->n_in[r->n] = n_in;
        r->n_out[r->n] = n_out;
        r->n++;
    }
    for (int i = 0; i < n_out; i++) r->meta_out += sp_tensor_is_meta(out[i]);
    r->seed_attr = sp_attrs_find(attrs, "seed") ? sp_attrs_get_int(attrs, "seed", -1) : -1;
}

static sp_tensor *meta(sp_dtype d, int ndim, const int64_t *shape) { return sp_tensor_new(d, ndim, shape, SP_META); }

static void test_meta_tensors(void) {
    int64_t live = sp_cpu_live_bytes();
    int64_t s[3] = {2, 3, 4};
    sp_tensor *m = meta(SP_F32, 3, s), *z = sp_tensor_zeros(SP_I64, 3, s, SP_META), *out = NULL;
    CHECK(m && z && sp_tensor_is_meta(m) && sp_tensor_is_meta(z));
    CHECK(sp_cpu_live_bytes() == live); /* no storage */
    CHECK(m->buf->data == NULL && m->buf->nbytes == 96 && sp_tensor_data(m) == NULL);
    CHECK(sp_tensor_is_contiguous(m) && sp_tensor_numel(m) == 24 && !sp_tensor_is_meta(NULL));
    /* layouts work */
    CHECK_OK(sp_tensor_transpose(m, 0, 2, &out));
    CHECK(out && sp_tensor_is_meta(out) && out->shape[0] == 4 && out->strides[0] == 1);
    sp_tensor *t2 = NULL;
    /* a reshape of a non-contiguous meta tensor would copy: a value error */
    CHECK_ERR(sp_tensor_reshape(out, 1, (int64_t[]){24}, &t2), SP_ERR_VALUE, "not known at compile time");
    CHECK_ERR(sp_tensor_contiguous(out, &t2), SP_ERR_VALUE, "not known at compile time");
    sp_tensor_release(out);
    CHECK_OK(sp_tensor_slice(m, 1, 1, SP_SLICE_NONE, 1, &out));
    CHECK(out && out->shape[1] == 2 && out->offset == 4);
    sp_tensor_release(out);
    CHECK_OK(sp_tensor_contiguous(m, &out)); /* already contiguous: itself */
    CHECK(out == m);
    sp_tensor_release(out);
    /* readers of values */
    sp_clear_error();
    CHECK(isnan(sp_tensor_get(m, (int64_t[]){0, 0, 0})) && sp_last_status() == SP_ERR_VALUE);
    CHECK(strstr(sp_last_error(), "tensor_get: the value of a tensor is not known at compile time (a meta "
                                  "tensor of shape (2, 3, 4) float32)") != NULL);
    sp_clear_error();
    CHECK(sp_tensor_to_string(m) == NULL && sp_last_status() == SP_ERR_VALUE);
    CHECK_ERR(sp_tensor_print(m, stdout), SP_ERR_VALUE, "tensor_to_string");
    CHECK_ERR(sp_tensor_cast(m, SP_F64, &out), SP_ERR_VALUE, "cast");
    CHECK(out == NULL);
    CHECK_ERR(sp_tensor_fill(m, 1.0), SP_ERR_VALUE, "fill");
    sp_tensor *c = sp_tensor_zeros(SP_F32, 3, s, SP_CPU);
    CHECK_ERR(sp_tensor_copy_into(c, m), SP_ERR_VALUE, "copy_into");
    CHECK_ERR(sp_tensor_copy_into(m, c), SP_ERR_VALUE, "copy_into");
    CHECK_ERR(sp_rng_uniform(m, 1, 0, 0, 1), SP_ERR_VALUE, "not known");
    CHECK_ERR(sp_tensor_to(m, SP_CPU, &out), SP_ERR_VALUE, "tensor_to");
    CHECK_STR(sp_status_name(SP_ERR_VALUE), "value error");
    sp_tensor_release(c);
    sp_tensor_release(m);
    sp_tensor_release(z);
    CHECK(sp_cpu_live_bytes() == live);
}

static void test_meta_calls_without_trace(void) {
    int64_t live = sp_cpu_live_bytes();
    int64_t sa[2] = {2, 3}, sb[2] = {4, 3};
    sp_tensor *a = meta(SP_F32, 2, sa), *b = meta(SP_F16, 1, sb + 1), *out[SP_MAX_OUTPUTS];
    sp_tensor *in[2] = {a, b};
    int n = 0;
    CHECK(!sp_op_tracing());
    CHECK_OK(sp_op_call(SP_OP_ADD, 2, in, NULL, &n, out));
    CHECK(n == 1 && sp_tensor_is_meta(out[0]) && out[0]->dtype == SP_F32 && out[0]->ndim == 2 &&
          out[0]->shape[1] == 3);
    sp_tensor_release(out[0]);
    /* inference errors are still errors, naming the primitive */
    sp_tensor *bad = meta(SP_F32, 2, sb), *in2[2] = {a, bad};
    CHECK_ERR(sp_op_call(SP_OP_ADD, 2, in2, NULL, &n, out), SP_ERR_SHAPE, "add");
    CHECK(n == 0);
    /* a real CPU constant may meet a meta tensor */
    sp_tensor *k = sp_tensor_scalar(SP_F32, 2.0), *in3[2] = {a, k};
    CHECK_OK(sp_op_call(SP_OP_MUL, 2, in3, NULL, &n, out));
    CHECK(n == 1 && sp_tensor_is_meta(out[0]));
    sp_tensor_release(out[0]);
    /* multi-output: sort gives values and indices */
    CHECK_OK(sp_op_call(SP_OP_SORT, 1, &a, NULL, &n, out));
    CHECK(n == 2 && sp_tensor_is_meta(out[0]) && out[1]->dtype == SP_I64);
    for (int i = 0; i < n; i++) sp_tensor_release(out[i]);
    /* call_into: meta outputs given by the caller */
    sp_tensor *o = meta(SP_F32, 2, sa);
    CHECK_OK(sp_op_call_into(SP_OP_EXP, 1, &a, NULL, 1, &o));
    sp_tensor *wrong = meta(SP_F32, 2, sb);
    CHECK_ERR(sp_op_call_into(SP_OP_EXP, 1, &a, NULL, 1, &wrong), SP_ERR_SHAPE, "exp");
    /* real inputs with meta outputs: nothing is written, nothing read */
    sp_tensor *r = sp_tensor_zeros(SP_F32, 2, sa, SP_CPU);
    CHECK_OK(sp_op_call_into(SP_OP_EXP, 1, &r, NULL, 1, &o));
    /* an in-place update on meta tensors: no kernel */
    sp_tensor *w = meta(SP_F32, 1, sb), *g = meta(SP_F32, 1, sb), *lr = meta(SP_F32, 0, NULL),
              *mom = meta(SP_F32, 1, sb);
    sp_tensor *upd[4] = {w, g, mom, lr};
    CHECK_OK(sp_op_call(SP_OP_SGD_UPDATE, 4, upd, NULL, &n, out));
    CHECK(n == 0);
    for (int i = 0; i < 4; i++) sp_tensor_release(upd[i]);
    sp_tensor_release(r);
    sp_tensor_release(wrong);
    sp_tensor_release(o);
    sp_tensor_release(k);
    sp_tensor_release(bad);
    sp_tensor_release(a);
    sp_tensor_release(b);
    CHECK(sp_cpu_live_bytes() == live);
}

static void test_trace(void) {
    int64_t live = sp_cpu_live_bytes();
    rec r;
    memset(&r, 0, sizeof r);
    sp_op_trace_fn pf = (sp_op_trace_fn)1;
    void *pc = (void *)1;
    sp_op_trace_set(record, &r, &pf, &pc);
    CHECK(pf == NULL && pc == NULL && sp_op_tracing());
    /* every call is meta now, real inputs or none */
    int64_t s[2] = {2, 3};
    sp_tensor *x = sp_tensor_zeros(SP_F32, 2, s, SP_CPU), *out[SP_MAX_OUTPUTS];
    int n = 0;
    CHECK_OK(sp_op_call(SP_OP_RELU, 1, &x, NULL, &n, out));
    CHECK(n == 1 && sp_tensor_is_meta(out[0]));
    sp_tensor_release(out[0]);
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 2, s);
    sp_attrs_set_dtype(&a, "dtype", SP_F64);
    CHECK_OK(sp_op_call(SP_OP_ZEROS, 0, NULL, &a, &n, out));
    CHECK(n == 1 && sp_tensor_is_meta(out[0]) && out[0]->dtype == SP_F64);
    sp_tensor_release(out[0]);
    /* random draws nothing */
    uint64_t s0, o0, s1, o1;
    sp_rng_next(0, &s0, &o0);
    CHECK_OK(sp_op_call(SP_OP_NORMAL, 0, NULL, &a, &n, out));
    sp_rng_next(0, &s1, &o1);
    CHECK(n == 1 && sp_tensor_is_meta(out[0]) && s0 == s1 && o0 == o1);
    CHECK(r.seed_attr == -1); /* the trace sees the caller's attributes, no seed added */
    sp_tensor_release(out[0]);
    /* a failing call reaches no trace */
    int before = r.n;
    sp_tensor *in2[2] = {x, x};
    CHECK_ERR(sp_op_call(SP_OP_MATMUL, 2, in2, NULL, &n, out), SP_ERR_SHAPE, "matmul");
    CHECK(r.n == before);
    /* nested install: the previous pair comes back and is restored */
    rec r2;
    memset(&r2, 0, sizeof r2);
    sp_op_trace_set(record, &r2, &pf, &pc);
    CHECK(pf == record && pc == &r);
    CHECK_OK(sp_op_call(SP_OP_EXP, 1, &x, NULL, &n, out));
    sp_tensor_release(out[0]);
    sp_op_trace_set(pf, pc, NULL, NULL);
    CHECK(r2.n == 1 && r2.ops[0] == SP_OP_EXP);
    sp_op_trace_set(NULL, NULL, &pf, &pc);
    CHECK(pf == record && pc == &r && !sp_op_tracing());
    CHECK(r.n == 3 && r.ops[0] == SP_OP_RELU && r.ops[1] == SP_OP_ZEROS && r.ops[2] == SP_OP_NORMAL);
    CHECK(r.n_in[0] == 1 && r.n_in[1] == 0 && r.n_out[0] == 1 && r.meta_out == 3);
    /* and without a trace the same call is real again, drawing numbers */
    CHECK_OK(sp_op_call(SP_OP_NORMAL, 0, NULL, &a, &n, out));
    sp_rng_next(0, &s1, &o1);
    CHECK(n == 1 && !sp_tensor_is_meta(out[0]) && o1 > o0);
    sp_tensor_release(out[0]);
    sp_tensor_release(x);
    CHECK(sp_cpu_live_bytes() == live);
}

static int trace_check(const char *args, const char *call, char *rep, size_t n) {
    char src[1024];
    snprintf(src, sizeof src,
             "import spore\nimport math\nfrom spore import ops\n\ndef args():\n    spore.set_seed(3)\n"
             "    return %s\n\ndef f(*p):\n    a = p[0]\n    b = p[1] if len(p) > 1 else None\n    return %s\n",
             args, call);
    return sp_test_api_trace(src, rep, n);
}

static void test_trace_check(void) {
    int64_t live = sp_cpu_live_bytes();
    char rep[512];
    CHECK(trace_check("(ops.randn(2, 3),)", "ops.relu(a)", rep, sizeof rep) == 0);
    CHECK_STR(rep, "ok: 1 relu");
    CHECK(trace_check("(ops.randn(4, 5),)", "a[1, ::-2]", rep, sizeof rep) == 0);
    CHECK_STR(rep, "ok: 2 slice reshape");
    CHECK(trace_check("(ops.randn(2, 3), ops.randn(3))", "ops.layer_norm(a, (3,), b) * 2", rep, sizeof rep) == 0);
    CHECK_STR(rep, "ok: 3 full layer_norm mul");
    CHECK(trace_check("(ops.randn(3),)", "spore.grad(lambda x: (x * x).sum())(a)", rep, sizeof rep) == 0);
    CHECK(trace_check("(ops.randn(2, 3),)", "ops.dropout(a)", rep, sizeof rep) == 0);
    CHECK(strstr(rep, "random") != NULL);
    CHECK(trace_check("(ops.randn(1),)", "a.item()", rep, sizeof rep) == 1);
    CHECK(strstr(rep, "Tensor.item(): the value of a tensor is not known at compile time") != NULL);
    CHECK(trace_check("(ops.randn(2),)", "ops.randn(2, 2)[a]", rep, sizeof rep) == -1); /* real call fails */
    CHECK(strstr(rep, "real call") != NULL);
    CHECK(sp_test_api_trace("def f(:", rep, sizeof rep) == -1 && strstr(rep, "compile") != NULL);
    CHECK(sp_test_api_trace(NULL, NULL, 0) == -1);
    CHECK(!sp_op_tracing());
    CHECK(sp_cpu_live_bytes() == live);
}

int main(void) {
    RUN(test_meta_tensors);
    RUN(test_meta_calls_without_trace);
    RUN(test_trace);
    RUN(test_trace_check);
    return TEST_SUMMARY();
}
