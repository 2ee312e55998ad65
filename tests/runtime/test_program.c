/*
 * test_program.c -- the public C API for whole programs (spore/program.h):
 * compiling source with file:line errors, calling functions with tensors
 * and numbers, results flattened from tuples, argument checks that name
 * the function and the parameter (counts, declared dtypes and shapes),
 * gradients through the source's value_and_grad against analytic values,
 * parameters (module globals) set and read from C and seen by every
 * function, the VM and the default execution path agreeing, and no tensor
 * memory left behind (sp_cpu_live_bytes) after successes and failures.
 */
#include <stdlib.h>

#include "test.h"

static const char *SRC =
    "import spore\n"                                   /* 1 */
    "from spore import ops\n"                          /* 2 */
    "W = None\n"                                       /* 3 */
    "B = None\n"                                       /* 4 */
    "N = 3\n"                                          /* 5 */
    "def affine(x, k):\n"                              /* 6 */
    "    return x * k + 1\n"                           /* 7 */
    "def pair(x):\n"                                   /* 8 */
    "    return x, (x.sum(), 3.5, True, 7)\n"          /* 9 */
    "def nothing(x):\n"                                /* 10 */
    "    return None\n"                                /* 11 */
    "def text(x):\n"                                   /* 12 */
    "    return 'hello'\n"                             /* 13 */
    "def bad_add(x):\n"                                /* 14 */
    "    return x + ops.ones((5,))\n"                  /* 15 */
    "def tanh_loss(w, x):\n"                           /* 16 */
    "    return ops.tanh(x @ w).sum()\n"               /* 17 */
    "def scaled(x, s):\n"                              /* 18 */
    "    return (x * x * s).sum()\n"                   /* 19 */
    "def vector(x):\n"                                 /* 20 */
    "    return x * 2.0\n"                             /* 21 */
    "def apply(x):\n"                                  /* 22 */
    "    return x @ W + B\n"                           /* 23 */
    "def nested(x):\n"                                 /* 24 */
    "    f = lambda y: y * W\n"                        /* 25 */
    "    return f(x)\n"                                /* 26 */
    "def opt(x, k=2.0):\n"                             /* 27 */
    "    return x * k\n"                               /* 28 */
    "def wloss(x):\n"                                 /* 29 */
    "    return (x @ W).sum()\n";                     /* 30 */

static sp_tensor *vec(int n, const float *v) {
    int64_t shape[1] = {n};
    return sp_tensor_from_data(SP_F32, 1, shape, v);
}

static sp_tensor *mat(int r, int c, const float *v) {
    int64_t shape[2] = {r, c};
    return sp_tensor_from_data(SP_F32, 2, shape, v);
}

static double at(const sp_tensor *t, int64_t i) {
    return sp_tensor_get(t, &i);
}

static double at2(const sp_tensor *t, int64_t i, int64_t j) {
    int64_t ix[2] = {i, j};
    return sp_tensor_get(t, ix);
}

static void test_compile_errors(void) {
    sp_clear_error();
    CHECK(sp_program_new_source("bad.py", "def f(x:\n    return x\n") == NULL);
    CHECK(sp_last_status() == SP_ERR_SYNTAX);
    CHECK(strstr(sp_last_error(), "bad.py:1:") != NULL);

    sp_clear_error();
    CHECK(sp_program_new_source("names.py", "def f(x):\n    return x + undefined_y\n") == NULL);
    CHECK(strstr(sp_last_error(), "names.py:2:16: name 'undefined_y' is not defined") != NULL);
    CHECK(strstr(sp_last_error(), "^") != NULL); /* the caret line */

    sp_clear_error();
    CHECK(sp_program_load("/nonexistent/model.py") == NULL);
    CHECK(sp_last_status() == SP_ERR_IO);
    CHECK(strstr(sp_last_error(), "/nonexistent/model.py") != NULL);

    CHECK(sp_program_new_source("x.py", NULL) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG);
    sp_program_free(NULL);
}

static void test_call(void) {
    sp_program *p = sp_program_new_source("t.py", SRC);
    CHECK(p != NULL);
    if (!p) return;
    float xs[3] = {1, 2, 3};
    sp_tensor *x = vec(3, xs);
    sp_results *r = NULL;

    sp_arg a[2] = {sp_arg_tensor(x), sp_arg_int(3)};
    CHECK_OK(sp_program_call(p, "affine", 2, a, &r));
    CHECK(sp_results_count(r) == 1);
    sp_tensor *y = sp_results_get(r, 0);
    CHECK(y && y->dtype == SP_F32 && y->ndim == 1 && y->shape[0] == 3);
    if (y) {
        CHECK_NEAR(at(y, 0), 4.0, 0);
        CHECK_NEAR(at(y, 2), 10.0, 0);
    }
    sp_results_free(r);

    a[1] = sp_arg_float(0.5);
    CHECK_OK(sp_program_call(p, "affine", 2, a, &r));
    if (r) CHECK_NEAR(at(sp_results_get(r, 0), 1), 2.0, 0);
    sp_results_free(r);

    /* tuples flatten in order; Python numbers become 0-d tensors */
    CHECK_OK(sp_program_call(p, "pair", 1, a, &r));
    CHECK(sp_results_count(r) == 5);
    if (sp_results_count(r) == 5) {
        CHECK(sp_results_get(r, 0)->ndim == 1);
        CHECK_NEAR(at(sp_results_get(r, 1), 0), 6.0, 0);
        sp_tensor *f = sp_results_get(r, 2), *b = sp_results_get(r, 3), *i = sp_results_get(r, 4);
        CHECK(f->dtype == SP_F64 && f->ndim == 0 && sp_tensor_get(f, NULL) == 3.5);
        CHECK(b->dtype == SP_BOOL && sp_tensor_get(b, NULL) == 1.0);
        CHECK(i->dtype == SP_I64 && sp_tensor_get(i, NULL) == 7.0);
        sp_tensor *taken = sp_results_take(r, 0);
        CHECK(taken == sp_results_get(r, 0));
        sp_tensor_release(taken);
    }
    CHECK(sp_results_get(r, 5) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG && strstr(sp_last_error(), "out of range"));
    sp_results_free(r);

    CHECK_OK(sp_program_call(p, "nothing", 1, a, &r));
    CHECK(r && sp_results_count(r) == 0);
    sp_results_free(r);

    /* default parameter values fill in */
    CHECK_OK(sp_program_call(p, "opt", 1, a, &r));
    if (r) CHECK_NEAR(at(sp_results_get(r, 0), 2), 6.0, 0);
    sp_results_free(r);

    CHECK_ERR(sp_program_call(p, "text", 1, a, &r), SP_ERR_TYPE, "text returned a str as result 0");
    CHECK(r == NULL);
    sp_tensor_release(x);
    sp_program_free(p);
}

static void test_call_errors(void) {
    sp_program *p = sp_program_new_source("t.py", SRC);
    if (!p) {
        CHECK(p != NULL);
        return;
    }
    float xs[3] = {1, 2, 3};
    sp_tensor *x = vec(3, xs);
    sp_results *r = (sp_results *)1;
    sp_arg a[3] = {sp_arg_tensor(x), sp_arg_int(3), sp_arg_int(4)};

    CHECK_ERR(sp_program_call(p, "nope", 1, a, &r), SP_ERR_ARG, "t.py: no function 'nope' at module level");
    CHECK(r == NULL);
    CHECK_ERR(sp_program_call(p, "N", 1, a, &r), SP_ERR_TYPE, "'N' is not a function");
    CHECK_ERR(sp_program_call(p, "affine", 1, a, &r), SP_ERR_ARG,
              "t.py:6:1: affine(x, k) takes 2 arguments but 1 was given");
    CHECK_ERR(sp_program_call(p, "affine", 3, a, &r), SP_ERR_ARG, "takes 2 arguments but 3 were given");
    CHECK_ERR(sp_program_call(p, "opt", 3, a, &r), SP_ERR_ARG, "opt(x, k) takes at most 2 arguments");
    CHECK_ERR(sp_program_call(p, "opt", 0, a, &r), SP_ERR_ARG, "opt(x, k) takes at least 1 argument but 0");

    sp_arg nul[1] = {sp_arg_tensor(NULL)};
    CHECK_ERR(sp_program_call(p, "vector", 1, nul, &r), SP_ERR_ARG,
              "vector: parameter 'x' (argument 1) is a NULL tensor");

    /* an error while running points at the source line */
    CHECK_ERR(sp_program_call(p, "bad_add", 1, a, &r), SP_ERR_SHAPE, "t.py:15:");
    CHECK(r == NULL);

    /* declared signatures: kind, dtype and shape errors name the parameter */
    sp_arg_spec spec[2] = {{SP_ARG_TENSOR, SP_F32, 1, {-1}}, {SP_ARG_FLOAT, SP_F32, 0, {0}}};
    CHECK_OK(sp_program_declare(p, "affine", 2, spec));
    CHECK_OK(sp_program_call(p, "affine", 2, a, &r)); /* an int where a float is declared is fine */
    sp_results_free(r);
    sp_arg wrong_kind[2] = {sp_arg_float(1.0), sp_arg_int(1)};
    CHECK_ERR(sp_program_call(p, "affine", 2, wrong_kind, &r), SP_ERR_TYPE,
              "t.py:6:12: affine: parameter 'x' (argument 1) must be a tensor, got a float");
    int64_t s2[2] = {3, 1};
    sp_tensor *i64 = sp_tensor_zeros(SP_I64, 1, s2, SP_CPU), *m2 = sp_tensor_zeros(SP_F32, 2, s2, SP_CPU);
    sp_arg bad_dtype[2] = {sp_arg_tensor(i64), sp_arg_int(1)};
    CHECK_ERR(sp_program_call(p, "affine", 2, bad_dtype, &r), SP_ERR_DTYPE,
              "affine: parameter 'x' (argument 1) must be a float32 tensor of shape (-1,), got int64 (3,)");
    sp_arg bad_rank[2] = {sp_arg_tensor(m2), sp_arg_int(1)};
    CHECK_ERR(sp_program_call(p, "affine", 2, bad_rank, &r), SP_ERR_SHAPE,
              "must be a float32 tensor of shape (-1,), got float32 (3, 1)");
    spec[0].ndim = 1;
    spec[0].shape[0] = 4;
    CHECK_OK(sp_program_declare(p, "affine", 2, spec));
    CHECK_ERR(sp_program_call(p, "affine", 2, a, &r), SP_ERR_SHAPE, "shape (4,), got float32 (3,)");
    CHECK_ERR(sp_program_declare(p, "affine", 1, spec), SP_ERR_ARG, "takes 2 arguments but 1 was given");
    CHECK_ERR(sp_program_declare(p, "missing", 1, spec), SP_ERR_ARG, "no function 'missing'");

    sp_tensor_release(i64);
    sp_tensor_release(m2);
    sp_tensor_release(x);
    sp_program_free(p);
}

static void test_grad(void) {
    sp_program *p = sp_program_new_source("t.py", SRC);
    if (!p) {
        CHECK(p != NULL);
        return;
    }
    /* loss = sum(tanh(x @ w)); dL/dw = x^T (1 - tanh(x @ w)^2) */
    float wv[2] = {0.5f, -0.25f}, xv[6] = {1, 2, 3, 4, 0, 1};
    sp_tensor *w = mat(2, 1, wv), *x = mat(3, 2, xv);
    sp_arg a[2] = {sp_arg_tensor(w), sp_arg_tensor(x)};
    sp_results *val = NULL, *grads = NULL;
    int wrt[2] = {0, 1};
    CHECK_OK(sp_program_grad(p, "tanh_loss", 2, a, 2, wrt, &val, &grads));
    CHECK(sp_results_count(val) == 1 && sp_results_count(grads) == 2);
    if (sp_results_count(val) == 1 && sp_results_count(grads) == 2) {
        double loss = 0, dw[2] = {0, 0}, dz[3];
        for (int i = 0; i < 3; i++) {
            double z = tanh(xv[2 * i] * wv[0] + xv[2 * i + 1] * wv[1]);
            loss += z;
            dz[i] = 1 - z * z;
            dw[0] += xv[2 * i] * dz[i];
            dw[1] += xv[2 * i + 1] * dz[i];
        }
        CHECK_NEAR(sp_tensor_get(sp_results_get(val, 0), NULL), loss, 1e-6);
        sp_tensor *gw = sp_results_get(grads, 0), *gx = sp_results_get(grads, 1);
        CHECK(gw->ndim == 2 && gw->shape[0] == 2 && gw->shape[1] == 1);
        CHECK(gx->ndim == 2 && gx->shape[0] == 3 && gx->shape[1] == 2);
        CHECK_NEAR(at2(gw, 0, 0), dw[0], 1e-6);
        CHECK_NEAR(at2(gw, 1, 0), dw[1], 1e-6);
        for (int i = 0; i < 3; i++) {
            CHECK_NEAR(at2(gx, i, 0), dz[i] * wv[0], 1e-6);
            CHECK_NEAR(at2(gx, i, 1), dz[i] * wv[1], 1e-6);
        }
    }
    sp_results_free(val);
    sp_results_free(grads);

    /* the same wrapper again (cached), only the gradients asked for */
    int only_w[1] = {0};
    grads = NULL;
    CHECK_OK(sp_program_grad(p, "tanh_loss", 2, a, 1, only_w, NULL, &grads));
    CHECK(sp_results_count(grads) == 1);
    sp_results_free(grads);
    CHECK_OK(sp_program_grad(p, "tanh_loss", 2, a, 1, only_w, NULL, &grads));
    sp_results_free(grads);

    /* a float argument: d/ds sum(x*x*s) = sum(x^2), d/dx = 2 s x */
    float v3[3] = {1, 2, 3};
    sp_tensor *v = vec(3, v3);
    sp_arg b[2] = {sp_arg_tensor(v), sp_arg_float(1.5)};
    int both[2] = {1, 0};
    CHECK_OK(sp_program_grad(p, "scaled", 2, b, 2, both, &val, &grads));
    if (sp_results_count(grads) == 2) {
        CHECK_NEAR(sp_tensor_get(sp_results_get(val, 0), NULL), 1.5 * 14, 1e-6);
        sp_tensor *gs = sp_results_get(grads, 0), *gx = sp_results_get(grads, 1);
        CHECK(gs->ndim == 0);
        CHECK_NEAR(sp_tensor_get(gs, NULL), 14.0, 1e-6);
        CHECK_NEAR(at(gx, 2), 2 * 1.5 * 3, 1e-6);
    }
    sp_results_free(val);
    sp_results_free(grads);

    /* errors name the function and the parameter */
    int64_t s3[1] = {3};
    sp_tensor *iv = sp_tensor_zeros(SP_I64, 1, s3, SP_CPU);
    sp_arg c[2] = {sp_arg_tensor(iv), sp_arg_float(1.0)};
    int first[1] = {0}, far[1] = {2};
    CHECK_ERR(sp_program_grad(p, "scaled", 2, c, 1, first, &val, &grads), SP_ERR_TYPE,
              "t.py:18:12: scaled: parameter 'x' (argument 1) is a int64 tensor; gradients");
    CHECK(val == NULL && grads == NULL);
    CHECK_ERR(sp_program_grad(p, "scaled", 2, b, 1, far, &val, &grads), SP_ERR_ARG,
              "scaled: position 2 is out of range for a call with 2 arguments");
    CHECK_ERR(sp_program_grad(p, "scaled", 2, b, 0, far, &val, &grads), SP_ERR_ARG, "no argument positions");
    sp_arg iarg[2] = {sp_arg_tensor(v), sp_arg_int(2)};
    int second[1] = {1};
    CHECK_ERR(sp_program_grad(p, "scaled", 2, iarg, 1, second, &val, &grads), SP_ERR_TYPE,
              "parameter 's' (argument 2) is an int");
    /* a non-scalar output is the source language's error, at the user's function */
    sp_arg d[1] = {sp_arg_tensor(v)};
    sp_clear_error();
    CHECK(sp_program_grad(p, "vector", 1, d, 1, first, &val, &grads) != SP_OK);
    CHECK(strstr(sp_last_error(), "t.py:") != NULL);
    CHECK(val == NULL && grads == NULL);

    sp_tensor_release(iv);
    sp_tensor_release(v);
    sp_tensor_release(w);
    sp_tensor_release(x);
    sp_program_free(p);
}

static void test_globals(void) {
    sp_program *p = sp_program_new_source("t.py", SRC);
    if (!p) {
        CHECK(p != NULL);
        return;
    }
    CHECK(sp_program_global_count(p) == 0);
    sp_clear_error();
    CHECK(sp_program_get_global(p, "W") == NULL);
    CHECK(strstr(sp_last_error(), "'W' is None, not a tensor (it was never set)") != NULL);
    CHECK(sp_program_get_global(p, "N") == NULL);
    CHECK(strstr(sp_last_error(), "'N' holds a int") != NULL);
    CHECK(sp_program_get_global(p, "Q") == NULL);
    CHECK(strstr(sp_last_error(), "no module-level name 'Q'") != NULL);

    float w1[2] = {1, 2}, b1[1] = {0.5f}, w2[2] = {-1, 3}, xv[2] = {10, 20};
    sp_tensor *W = mat(2, 1, w1), *B = vec(1, b1), *W2 = mat(2, 1, w2), *x = mat(1, 2, xv);
    sp_results *r = NULL;
    sp_arg a[1] = {sp_arg_tensor(x)};
    /* before W is set, apply fails at its source line (None @ ...) */
    sp_clear_error();
    CHECK(sp_program_call(p, "apply", 1, a, &r) != SP_OK);
    CHECK(strstr(sp_last_error(), "t.py:23:") != NULL);

    CHECK_OK(sp_program_set_global(p, "W", W));
    CHECK_OK(sp_program_set_global(p, "B", B));
    CHECK(sp_program_global_count(p) == 2);
    CHECK_STR(sp_program_global_name(p, 0), "W");
    CHECK_STR(sp_program_global_name(p, 1), "B");
    CHECK(sp_program_global_name(p, 2) == NULL);
    CHECK_OK(sp_program_call(p, "apply", 1, a, &r));
    if (r) CHECK_NEAR(at2(sp_results_get(r, 0), 0, 0), 10 + 40 + 0.5, 0);
    sp_results_free(r);

    /* the gradient graph (K of wloss) is built now, with W's first value */
    int wrt0[1] = {0};
    sp_results *g0 = NULL;
    CHECK_OK(sp_program_grad(p, "wloss", 1, a, 1, wrt0, NULL, &g0));
    if (sp_results_count(g0) == 1) CHECK_NEAR(at2(sp_results_get(g0, 0), 0, 1), 2.0, 0);
    sp_results_free(g0);

    /* rebinding again reaches every use, nested lambdas and built K graphs too */
    CHECK_OK(sp_program_set_global(p, "W", W2));
    CHECK_OK(sp_program_call(p, "apply", 1, a, &r));
    if (r) CHECK_NEAR(at2(sp_results_get(r, 0), 0, 0), -10 + 60 + 0.5, 0);
    sp_results_free(r);
    CHECK_OK(sp_program_call(p, "nested", 1, a, &r)); /* (1,2) * (2,1) -> (2,2) */
    if (r) {
        sp_tensor *t = sp_results_get(r, 0);
        CHECK(t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 2);
        CHECK_NEAR(at2(t, 1, 0), 3 * 10, 0);
    }
    sp_results_free(r);
    sp_tensor *got = sp_program_get_global(p, "W");
    CHECK(got == W2);
    sp_tensor_release(got);

    /* gradients see the new value: d/dx sum(x @ W) = W^T */
    int wrt[1] = {0};
    sp_results *g = NULL;
    CHECK_OK(sp_program_grad(p, "wloss", 1, a, 1, wrt, NULL, &g));
    if (sp_results_count(g) == 1) {
        CHECK_NEAR(at2(sp_results_get(g, 0), 0, 0), -1.0, 0);
        CHECK_NEAR(at2(sp_results_get(g, 0), 0, 1), 3.0, 0);
    }
    sp_results_free(g);

    CHECK_ERR(sp_program_set_global(p, "apply", W), SP_ERR_TYPE, "'apply' is not a parameter");
    CHECK_ERR(sp_program_set_global(p, "spore", W), SP_ERR_TYPE, "is not a parameter");
    CHECK_ERR(sp_program_set_global(p, "Z", W), SP_ERR_ARG, "declare the parameter in the source, e.g. `Z = None`");
    CHECK_ERR(sp_program_set_global(p, "W", NULL), SP_ERR_ARG, "NULL tensor");

    /* two names bound to one value cannot be told apart in the IR */
    sp_program *q = sp_program_new_source("alias.py", "A = 1.0\nC = A\ndef f():\n    return A\n");
    CHECK(q != NULL);
    if (q) CHECK_ERR(sp_program_set_global(q, "C", W), SP_ERR_ARG, "'C' is bound to the same value as 'A'");
    sp_program_free(q);

    sp_tensor_release(W);
    sp_tensor_release(B);
    sp_tensor_release(W2);
    sp_tensor_release(x);
    sp_program_free(p);
}

/* The default path and the VM give identical results (they are the same
 * path until the graph compiler lands; then this compares them). */
static void test_exec_modes(void) {
    sp_program *p = sp_program_new_source("t.py", SRC);
    if (!p) {
        CHECK(p != NULL);
        return;
    }
    float wv[2] = {0.3f, -0.7f}, xv[6] = {1, -2, 3, 0.5f, -1, 2};
    sp_tensor *w = mat(2, 1, wv), *x = mat(3, 2, xv);
    sp_arg a[2] = {sp_arg_tensor(w), sp_arg_tensor(x)};
    int wrt[1] = {0};
    sp_results *g_auto = NULL, *g_vm = NULL, *v_auto = NULL, *v_vm = NULL;
    CHECK_OK(sp_program_set_exec(p, SP_EXEC_AUTO));
    CHECK_OK(sp_program_grad(p, "tanh_loss", 2, a, 1, wrt, &v_auto, &g_auto));
    CHECK_OK(sp_program_set_exec(p, SP_EXEC_VM));
    CHECK_OK(sp_program_grad(p, "tanh_loss", 2, a, 1, wrt, &v_vm, &g_vm));
    CHECK_ERR(sp_program_set_exec(p, (sp_exec_mode)7), SP_ERR_ARG, "unknown mode");
    if (g_auto && g_vm) {
        sp_tensor *ga = sp_results_get(g_auto, 0), *gv = sp_results_get(g_vm, 0);
        CHECK(memcmp(sp_tensor_data(ga), sp_tensor_data(gv), sp_tensor_nbytes(ga)) == 0);
        CHECK(sp_tensor_get(sp_results_get(v_auto, 0), NULL) == sp_tensor_get(sp_results_get(v_vm, 0), NULL));
    }
    sp_results_free(g_auto);
    sp_results_free(g_vm);
    sp_results_free(v_auto);
    sp_results_free(v_vm);
    sp_tensor_release(w);
    sp_tensor_release(x);
    sp_program_free(p);
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_compile_errors);
    RUN(test_call);
    RUN(test_call_errors);
    RUN(test_grad);
    RUN(test_globals);
    RUN(test_exec_modes);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}
