/*
 * test_view.c -- reshape, permute, transpose, slice, expand, squeeze and
 * unsqueeze: the values seen through each view, that the view shares its
 * base's buffer when it should (writing through the base shows in the
 * view), and the errors for requests that make no sense.
 */
#include "test.h"

static int64_t live0;
#define BEGIN() (live0 = sp_cpu_live_bytes())
#define END() CHECK(sp_cpu_live_bytes() == live0)

/* A float32 tensor holding 0, 1, 2, ... in C order. */
static sp_tensor *iota(int ndim, const int64_t *shape) {
    sp_tensor *t = sp_tensor_new(SP_F32, ndim, shape, SP_CPU);
    int64_t n = sp_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) ((float *)sp_tensor_data(t))[i] = (float)i;
    return t;
}

static double at2(const sp_tensor *t, int64_t i, int64_t j) {
    return sp_tensor_get(t, (int64_t[]){i, j});
}

/* The values of t in C order, compared with want[]. */
static int values_are(const sp_tensor *t, const double *want) {
    int64_t idx[SP_MAX_DIMS] = {0};
    int64_t n = sp_tensor_numel(t);
    for (int64_t k = 0; k < n; k++) {
        if (sp_tensor_get(t, idx) != want[k]) {
            fprintf(stderr, "  element %lld = %g, wanted %g\n", (long long)k, sp_tensor_get(t, idx),
                    want[k]);
            return 0;
        }
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    return 1;
}

static void test_reshape_view(void) {
    BEGIN();
    sp_tensor *t = iota(2, (int64_t[]){2, 6}), *r = NULL;
    CHECK_OK(sp_tensor_reshape(t, 3, (int64_t[]){3, -1, 2}, &r));
    CHECK(r->ndim == 3 && r->shape[0] == 3 && r->shape[1] == 2 && r->shape[2] == 2);
    CHECK(r->buf == t->buf); /* a view */
    CHECK(sp_tensor_get(r, (int64_t[]){2, 1, 0}) == 10);
    ((float *)sp_tensor_data(t))[10] = -1;
    CHECK(sp_tensor_get(r, (int64_t[]){2, 1, 0}) == -1);
    sp_tensor_release(r);
    /* To 0-d and back from a 1-element tensor. */
    sp_tensor *one = iota(1, (int64_t[]){1}), *s0 = NULL;
    CHECK_OK(sp_tensor_reshape(one, 0, NULL, &s0));
    CHECK(s0->ndim == 0 && s0->buf == one->buf);
    sp_tensor_release(s0);
    sp_tensor_release(one);
    /* A column slice reshaped by splitting its non-contiguous axis keeps
     * being a view (numpy's rule: only axes that are merged must be
     * contiguous with each other). */
    sp_tensor *col = NULL, *r2 = NULL;
    CHECK_OK(sp_tensor_slice(t, 1, 0, SP_SLICE_NONE, 2, &col)); /* (2, 3), strides (6, 2) */
    CHECK_OK(sp_tensor_reshape(col, 3, (int64_t[]){2, 3, 1}, &r2));
    CHECK(r2->buf == t->buf);
    CHECK(sp_tensor_get(r2, (int64_t[]){1, 2, 0}) == -1); /* t[1, 4], written above */
    CHECK(sp_tensor_get(r2, (int64_t[]){0, 1, 0}) == 2);
    sp_tensor_release(r2);
    sp_tensor_release(col);
    sp_tensor_release(t);
    END();
}

static void test_reshape_copy(void) {
    BEGIN();
    sp_tensor *t = iota(2, (int64_t[]){2, 3}), *tt = NULL, *r = NULL;
    CHECK_OK(sp_tensor_transpose(t, 0, 1, &tt));
    CHECK(tt->buf == t->buf);
    CHECK_OK(sp_tensor_reshape(tt, 1, (int64_t[]){-1}, &r)); /* must copy */
    CHECK(r->buf != t->buf && sp_tensor_is_contiguous(r));
    CHECK(values_are(r, (double[]){0, 3, 1, 4, 2, 5}));
    ((float *)sp_tensor_data(t))[0] = 7;
    CHECK(sp_tensor_get(r, (int64_t[]){0}) == 0); /* a copy does not follow */
    sp_tensor_release(r);
    sp_tensor_release(tt);
    sp_tensor_release(t);
    END();
}

static void test_reshape_errors(void) {
    BEGIN();
    sp_tensor *t = iota(2, (int64_t[]){2, 3}), *r = (sp_tensor *)1;
    CHECK_ERR(sp_tensor_reshape(t, 2, (int64_t[]){4, 2}, &r), SP_ERR_SHAPE,
              "cannot reshape a tensor of shape (2, 3) (6 elements) into shape (4, 2)");
    CHECK(r == NULL);
    CHECK_ERR(sp_tensor_reshape(t, 2, (int64_t[]){4, -1}, &r), SP_ERR_SHAPE, "(4, -1)");
    CHECK_ERR(sp_tensor_reshape(t, 2, (int64_t[]){-1, -1}, &r), SP_ERR_SHAPE,
              "only specify one unknown");
    CHECK_ERR(sp_tensor_reshape(t, 2, (int64_t[]){-2, -3}, &r), SP_ERR_SHAPE, "negative size -2");
    CHECK_ERR(sp_tensor_reshape(t, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 6}, &r), SP_ERR_ARG,
              "ndim 9");
    CHECK_ERR(sp_tensor_reshape(t, 2, (int64_t[]){INT64_MAX, 4}, &r), SP_ERR_SHAPE,
              "cannot reshape");
    sp_tensor *e = sp_tensor_new(SP_F32, 1, (int64_t[]){0}, SP_CPU);
    CHECK_ERR(sp_tensor_reshape(e, 2, (int64_t[]){0, -1}, &r), SP_ERR_SHAPE, "(0, -1)");
    CHECK_OK(sp_tensor_reshape(e, 3, (int64_t[]){2, 0, 5}, &r));
    CHECK(r && sp_tensor_numel(r) == 0);
    sp_tensor_release(r);
    sp_tensor_release(e);
    sp_tensor_release(t);
    END();
}

static void test_permute_transpose(void) {
    BEGIN();
    sp_tensor *t = iota(3, (int64_t[]){2, 3, 4}), *p = NULL;
    CHECK_OK(sp_tensor_permute(t, (int[]){2, 0, -2}, &p));
    CHECK(p->shape[0] == 4 && p->shape[1] == 2 && p->shape[2] == 3 && p->buf == t->buf);
    /* p[k, i, j] == t[i, j, k] == 12 i + 4 j + k */
    CHECK(sp_tensor_get(p, (int64_t[]){3, 1, 2}) == 12 + 8 + 3);
    sp_tensor_release(p);
    CHECK_ERR(sp_tensor_permute(t, (int[]){0, 0, 1}, &p), SP_ERR_ARG,
              "(0, 0, 1) is not a permutation of the 3 axes of shape (2, 3, 4)");
    CHECK_ERR(sp_tensor_permute(t, (int[]){0, 1, 3}, &p), SP_ERR_ARG, "not a permutation");
    sp_tensor *tr = NULL;
    CHECK_OK(sp_tensor_transpose(t, -1, 0, &tr));
    CHECK(tr->shape[0] == 4 && tr->shape[2] == 2);
    CHECK(sp_tensor_get(tr, (int64_t[]){3, 2, 1}) == 12 + 8 + 3);
    sp_tensor_release(tr);
    CHECK_ERR(sp_tensor_transpose(t, 0, 3, &tr), SP_ERR_ARG,
              "axis 3 out of range for a tensor of 3 dims");
    CHECK_ERR(sp_tensor_transpose(t, -4, 0, &tr), SP_ERR_ARG, "axis -4");
    sp_tensor_release(t);
    END();
}

static void test_slice(void) {
    BEGIN();
    sp_tensor *t = iota(1, (int64_t[]){10}), *s = NULL;
    /* t[2:8:3] */
    CHECK_OK(sp_tensor_slice(t, 0, 2, 8, 3, &s));
    CHECK(s->shape[0] == 2 && values_are(s, (double[]){2, 5}) && s->buf == t->buf);
    sp_tensor_release(s);
    /* t[::-1] */
    CHECK_OK(sp_tensor_slice(t, 0, SP_SLICE_NONE, SP_SLICE_NONE, -1, &s));
    CHECK(values_are(s, (double[]){9, 8, 7, 6, 5, 4, 3, 2, 1, 0}));
    /* (t[::-1])[1::-4] and [::-3] on the reversed view: strides compose. */
    sp_tensor *s2 = NULL;
    CHECK_OK(sp_tensor_slice(s, 0, SP_SLICE_NONE, SP_SLICE_NONE, -3, &s2));
    CHECK(values_are(s2, (double[]){0, 3, 6, 9}));
    sp_tensor_release(s2);
    sp_tensor_release(s);
    /* t[-3:], t[-100:3], t[5:100], t[8:2] (empty), t[8:2:-2], t[-1:-11:-4] */
    CHECK_OK(sp_tensor_slice(t, 0, -3, SP_SLICE_NONE, 1, &s));
    CHECK(values_are(s, (double[]){7, 8, 9}) && s->shape[0] == 3);
    sp_tensor_release(s);
    CHECK_OK(sp_tensor_slice(t, 0, -100, 3, 1, &s));
    CHECK(s->shape[0] == 3 && values_are(s, (double[]){0, 1, 2}));
    sp_tensor_release(s);
    CHECK_OK(sp_tensor_slice(t, 0, 5, 100, 1, &s));
    CHECK(s->shape[0] == 5);
    sp_tensor_release(s);
    CHECK_OK(sp_tensor_slice(t, 0, 8, 2, 1, &s));
    CHECK(s->shape[0] == 0);
    sp_tensor_release(s);
    CHECK_OK(sp_tensor_slice(t, 0, 8, 2, -2, &s));
    CHECK(s->shape[0] == 3 && values_are(s, (double[]){8, 6, 4}));
    sp_tensor_release(s);
    CHECK_OK(sp_tensor_slice(t, 0, -1, -11, -4, &s));
    CHECK(s->shape[0] == 3 && values_are(s, (double[]){9, 5, 1}));
    sp_tensor_release(s);
    /* Huge steps and bounds clamp without overflow. */
    CHECK_OK(sp_tensor_slice(t, 0, INT64_MAX, INT64_MIN + 1, INT64_MIN, &s));
    CHECK(s->shape[0] == 1 && values_are(s, (double[]){9}));
    sp_tensor_release(s);
    CHECK_OK(sp_tensor_slice(t, 0, 1, INT64_MAX, INT64_MAX, &s));
    CHECK(s->shape[0] == 1 && values_are(s, (double[]){1}));
    sp_tensor_release(s);
    CHECK_ERR(sp_tensor_slice(t, 0, 0, 5, 0, &s), SP_ERR_ARG, "step cannot be zero");
    CHECK_ERR(sp_tensor_slice(t, 1, 0, 5, 1, &s), SP_ERR_ARG, "axis 1 out of range");
    sp_tensor_release(t);

    /* Slicing an inner axis of a matrix: m[:, 1:3] */
    sp_tensor *m = iota(2, (int64_t[]){3, 4});
    CHECK_OK(sp_tensor_slice(m, -1, 1, 3, 1, &s));
    CHECK(s->shape[0] == 3 && s->shape[1] == 2 && !sp_tensor_is_contiguous(s));
    CHECK(values_are(s, (double[]){1, 2, 5, 6, 9, 10}));
    sp_tensor_release(s);
    sp_tensor_release(m);
    END();
}

static void test_expand(void) {
    BEGIN();
    sp_tensor *t = iota(2, (int64_t[]){3, 1}), *e = NULL;
    CHECK_OK(sp_tensor_expand(t, 3, (int64_t[]){2, 3, 4}, &e));
    CHECK(e->strides[0] == 0 && e->strides[2] == 0 && e->buf == t->buf);
    CHECK(sp_tensor_get(e, (int64_t[]){1, 2, 3}) == 2);
    CHECK(sp_tensor_get(e, (int64_t[]){0, 1, 0}) == 1);
    sp_tensor_release(e);
    CHECK_OK(sp_tensor_expand(t, 2, (int64_t[]){-1, 5}, &e)); /* -1 keeps the size */
    CHECK(e->shape[0] == 3 && e->shape[1] == 5);
    sp_tensor_release(e);
    CHECK_OK(sp_tensor_expand(t, 2, (int64_t[]){3, 0}, &e));
    CHECK(sp_tensor_numel(e) == 0);
    sp_tensor_release(e);
    CHECK_ERR(sp_tensor_expand(t, 2, (int64_t[]){4, 4}, &e), SP_ERR_SHAPE,
              "cannot broadcast shape (3, 1) to (4, 4)");
    CHECK_ERR(sp_tensor_expand(t, 1, (int64_t[]){3}, &e), SP_ERR_SHAPE, "fewer dims");
    CHECK_ERR(sp_tensor_expand(t, 3, (int64_t[]){-1, 3, 1}, &e), SP_ERR_SHAPE, "negative size");
    sp_tensor_release(t);
    END();
}

static void test_squeeze_unsqueeze(void) {
    BEGIN();
    sp_tensor *t = iota(4, (int64_t[]){1, 3, 1, 2}), *s = NULL, *u = NULL;
    CHECK_OK(sp_tensor_squeeze(t, SP_ALL_AXES, &s));
    CHECK(s->ndim == 2 && s->shape[0] == 3 && s->shape[1] == 2 && s->buf == t->buf);
    CHECK(values_are(s, (double[]){0, 1, 2, 3, 4, 5}));
    sp_tensor_release(s);
    CHECK_OK(sp_tensor_squeeze(t, -2, &s));
    CHECK(s->ndim == 3 && s->shape[0] == 1 && s->shape[1] == 3 && s->shape[2] == 2);
    sp_tensor_release(s);
    CHECK_ERR(sp_tensor_squeeze(t, 1, &s), SP_ERR_SHAPE,
              "cannot squeeze axis 1 of shape (1, 3, 1, 2): its size is 3, not 1");
    CHECK_ERR(sp_tensor_squeeze(t, 4, &s), SP_ERR_ARG, "axis 4 out of range");
    CHECK_OK(sp_tensor_unsqueeze(t, -1, &u));
    CHECK(u->ndim == 5 && u->shape[4] == 1 && u->buf == t->buf && sp_tensor_is_contiguous(u));
    sp_tensor_release(u);
    CHECK_OK(sp_tensor_unsqueeze(t, 0, &u));
    CHECK(u->ndim == 5 && u->shape[0] == 1 && u->shape[2] == 3);
    CHECK(sp_tensor_get(u, (int64_t[]){0, 0, 2, 0, 1}) == 5);
    sp_tensor_release(u);
    CHECK_ERR(sp_tensor_unsqueeze(t, 6, &u), SP_ERR_ARG, "axis 6 out of range");
    sp_tensor *s8 = iota(8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 2});
    CHECK_ERR(sp_tensor_unsqueeze(s8, 0, &u), SP_ERR_ARG, "cannot gain another");
    sp_tensor_release(s8);
    /* 0-d: unsqueeze to (1,), squeeze back */
    sp_tensor *z = sp_tensor_scalar(SP_F64, 2.5);
    CHECK_OK(sp_tensor_unsqueeze(z, 0, &u));
    CHECK(u->ndim == 1 && u->shape[0] == 1 && sp_tensor_get(u, (int64_t[]){0}) == 2.5);
    CHECK_OK(sp_tensor_squeeze(u, 0, &s));
    CHECK(s->ndim == 0 && sp_tensor_get(s, NULL) == 2.5);
    sp_tensor_release(s);
    sp_tensor_release(u);
    sp_tensor_release(z);
    sp_tensor_release(t);
    END();
}

static void test_base_released_first(void) {
    BEGIN();
    sp_tensor *t = iota(2, (int64_t[]){4, 4}), *v = NULL;
    CHECK_OK(sp_tensor_slice(t, 0, 1, 3, 1, &v));
    sp_tensor_release(t);
    CHECK(at2(v, 1, 3) == 11);
    sp_tensor_release(v);
    END();
    CHECK_ERR(sp_tensor_reshape(NULL, 0, NULL, &v), SP_ERR_ARG, "NULL");
}

int main(void) {
    RUN(test_reshape_view);
    RUN(test_reshape_copy);
    RUN(test_reshape_errors);
    RUN(test_permute_transpose);
    RUN(test_slice);
    RUN(test_expand);
    RUN(test_squeeze_unsqueeze);
    RUN(test_base_released_first);
    return TEST_SUMMARY();
}
