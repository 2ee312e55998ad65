/*
 * test_value.c -- values: Python's printing, truthiness, constant equality,
 * and exact reference counts (no leaks, nested values freed recursively,
 * very deep nesting freed without recursion).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "test.h"

/* Checks and frees the text of v; releases v. */
static void check_text(sp_value *v, const char *want, const char *where) {
    char *s = v ? sp_value_to_string(v) : NULL;
    if (!s || strcmp(s, want) != 0) fprintf(stderr, "  (%s)\n", where);
    CHECK_STR(s, want);
    free(s);
    sp_value_release(v);
}

static void test_scalars(void) {
    check_text(sp_value_int(3), "3", "int");
    check_text(sp_value_int(-7), "-7", "neg int");
    check_text(sp_value_int(INT64_MIN), "-9223372036854775808", "int64 min");
    check_text(sp_value_bool(1), "True", "True");
    check_text(sp_value_bool(0), "False", "False");
    check_text(sp_value_none(), "None", "None");
    check_text(sp_value_ellipsis(), "Ellipsis", "Ellipsis");
    /* Python's repr, taken from /usr/bin/python3 */
    static const struct {
        double v;
        const char *s;
    } fl[] = {
        {2.5, "2.5"},
        {3.0, "3.0"},
        {1e-05, "1e-05"},
        {1e16, "1e+16"},
        {1e15, "1000000000000000.0"},
        {0.1, "0.1"},
        {-0.0, "-0.0"},
        {1.0 / 3.0, "0.3333333333333333"},
        {123456789.123, "123456789.123"},
        {1e-4, "0.0001"},
        {0.00012345, "0.00012345"},
        {1.5e300, "1.5e+300"},
        {5e-324, "5e-324"},
        {9223372036854775808.0, "9.223372036854776e+18"},
        {-1.25e-7, "-1.25e-07"},
        {100.0, "100.0"},
        {1e22, "1e+22"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {9007199254740992.0, "9007199254740992.0"},
        {0.30000000000000004, "0.30000000000000004"},
    };
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) check_text(sp_value_float(fl[i].v), fl[i].s, fl[i].s);
    check_text(sp_value_float(INFINITY), "inf", "inf");
    check_text(sp_value_float(-INFINITY), "-inf", "-inf");
    check_text(sp_value_float(NAN), "nan", "nan");
}

static sp_value *str(const char *s) { return sp_value_str(s, strlen(s)); }

static void test_strings_and_containers(void) {
    check_text(str("it's raw"), "it's raw", "top-level string prints raw");
    sp_value *items[5] = {str("a"), str("it's"), str("x\ny"), str("q\""), str("both'\"")};
    sp_value *t = sp_value_tuple(5, items);
    for (int i = 0; i < 5; i++) sp_value_release(items[i]);
    check_text(t, "('a', \"it's\", 'x\\ny', 'q\"', 'both\\'\"')", "string reprs in a tuple");

    sp_value *one = sp_value_int(1), *two = sp_value_int(2), *f = sp_value_float(3.5);
    sp_value *p2[2] = {one, two};
    check_text(sp_value_tuple(2, p2), "(1, 2)", "pair");
    check_text(sp_value_tuple(1, p2), "(1,)", "1-tuple");
    check_text(sp_value_tuple(0, NULL), "()", "empty tuple");
    check_text(sp_value_list(2, p2), "[1, 2]", "list");
    check_text(sp_value_list(0, NULL), "[]", "empty list");
    sp_value *inner = sp_value_tuple(1, p2);
    sp_value *l2[2] = {two, f};
    sp_value *lst = sp_value_list(2, l2);
    sp_value *nest[3] = {inner, lst, sp_value_none()};
    check_text(sp_value_tuple(3, nest), "((1,), [2, 3.5], None)", "nested");
    sp_value_release(inner);
    sp_value_release(lst);
    sp_value_release(nest[2]);

    /* a string with a NUL inside keeps its length */
    sp_value *z = sp_value_str("a\0b", 3);
    CHECK(z && z->u.str.len == 3 && z->u.str.s[1] == '\0' && z->u.str.s[3] == '\0');
    sp_value *zt = sp_value_tuple(1, &z);
    check_text(zt, "('a\\x00b',)", "NUL escaped in repr");
    sp_value_release(z);

    /* keywords, slices, partials, dtypes, modules, prims, builtins */
    check_text(sp_value_keyword("axis", one), "axis=1", "keyword");
    sp_value *neg = sp_value_int(-1);
    check_text(sp_value_slice(one, NULL, neg), "slice(1, None, -1)", "slice");
    check_text(sp_value_dtype(SP_F32), "spore.float32", "dtype");
    check_text(sp_value_module(SP_MOD_OPS), "<module 'spore.ops'>", "module");
    check_text(sp_value_prim(sp_op_find("add")), "<primitive add>", "prim");
    check_text(sp_value_builtin(0), "<built-in function switch>", "builtin");
    sp_value *add = sp_value_prim(sp_op_find("add"));
    check_text(sp_value_partial(add, 1, &one), "functools.partial(<primitive add>, 1)", "partial");
    sp_value_release(add);
    sp_value_release(neg);
    sp_value_release(one);
    sp_value_release(two);
    sp_value_release(f);
}

static void test_functions_and_kinds(void) {
    sp_module *m = sp_module_new("f.py", NULL);
    sp_loc loc = {NULL, 1, 1};
    sp_graph *g = ir_graph_new(m, "f", NULL, loc);
    sp_value *gv = sp_value_graph(g);
    sp_value *one = sp_value_int(1);
    sp_value *cl = sp_value_closure(g, 1, &one);
    check_text(sp_value_graph(g), "<function f>", "graph");
    check_text(sp_value_closure(g, 1, &one), "<function f>", "closure");
    CHECK_STR(sp_value_kind_name(gv), "function");
    CHECK_STR(sp_value_kind_name(cl), "function");
    CHECK_STR(sp_value_kind_name(one), "int");
    sp_value *fl = sp_value_float(1), *no = sp_value_none();
    CHECK_STR(sp_value_kind_name(fl), "float");
    CHECK_STR(sp_value_kind_name(no), "NoneType");
    int64_t n = 2;
    float d[2] = {1, 2};
    sp_tensor *t = sp_tensor_from_data(SP_F32, 1, &n, d);
    sp_value *tv = sp_value_tensor(t);
    CHECK_STR(sp_value_kind_name(tv), "Tensor");
    sp_tensor_release(t);
    sp_value_release(tv);
    sp_value_release(fl);
    sp_value_release(no);
    sp_value_release(gv);
    sp_value_release(cl);
    sp_value_release(one);
    sp_module_free(m);
}

static void test_tensors(void) {
    int64_t live0 = sp_cpu_live_bytes();
    int64_t n = 3;
    float d[3] = {1, 2, 3};
    sp_tensor *t = sp_tensor_from_data(SP_F32, 1, &n, d);
    CHECK(sp_cpu_live_bytes() > live0);
    sp_value *tv = sp_value_tensor(t);
    CHECK(t->refcount == 2);
    sp_tensor_release(t); /* the value keeps it alive */
    CHECK(sp_cpu_live_bytes() > live0);
    char *s = sp_value_to_string(tv);
    CHECK_STR(s, "[1. 2. 3.]");
    free(s);
    sp_value *i7 = sp_value_int(7);
    sp_value *pair[2] = {i7, tv};
    sp_value *tup = sp_value_tuple(2, pair);
    sp_value_release(i7);
    sp_value_release(tv); /* now only the tuple holds the tensor */
    CHECK(sp_cpu_live_bytes() > live0);
    s = sp_value_to_string(tup);
    CHECK_STR(s, "(7, [1. 2. 3.])");
    free(s);
    sp_value *outer = sp_value_list(1, &tup);
    sp_value_release(tup);
    sp_value_release(outer); /* frees list -> tuple -> tensor */
    CHECK(sp_cpu_live_bytes() == live0);

    /* truthiness of tensors */
    float one = 2.0f;
    int64_t n1 = 1;
    sp_tensor *t1 = sp_tensor_from_data(SP_F32, 1, &n1, &one);
    sp_value *v1 = sp_value_tensor(t1);
    sp_tensor_release(t1);
    CHECK(sp_value_truth(v1) == 1);
    sp_value_release(v1);
    sp_tensor *t0 = sp_tensor_scalar(SP_I32, 0);
    sp_value *v0 = sp_value_tensor(t0);
    sp_tensor_release(t0);
    CHECK(sp_value_truth(v0) == 0);
    sp_value_release(v0);
    sp_tensor *t3 = sp_tensor_from_data(SP_F32, 1, &n, d);
    sp_value *v3 = sp_value_tensor(t3);
    sp_tensor_release(t3);
    sp_clear_error();
    CHECK(sp_value_truth(v3) == -1);
    CHECK(sp_last_status() == SP_ERR_TYPE && strstr(sp_last_error(), "ambiguous") &&
          strstr(sp_last_error(), "(3,)"));
    sp_value_release(v3);
    CHECK(sp_cpu_live_bytes() == live0);
}

static void test_truth(void) {
    struct {
        sp_value *v;
        int want;
    } cases[] = {
        {sp_value_none(), 0},        {sp_value_bool(1), 1},       {sp_value_bool(0), 0},
        {sp_value_int(0), 0},        {sp_value_int(-3), 1},       {sp_value_float(0.0), 0},
        {sp_value_float(-0.0), 0},   {sp_value_float(NAN), 1},    {sp_value_str("", 0), 0},
        {sp_value_str("x", 1), 1},   {sp_value_tuple(0, NULL), 0}, {sp_value_dtype(SP_F32), 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(sp_value_truth(cases[i].v) == cases[i].want);
        sp_value_release(cases[i].v);
    }
    sp_value *u = sp_value_undef();
    CHECK(sp_value_truth(u) == -1);
    sp_value_release(u);
}

static void test_equal(void) {
    sp_value *i1 = sp_value_int(1), *i1b = sp_value_int(1), *f1 = sp_value_float(1.0), *b1 = sp_value_bool(1);
    CHECK(sp_value_equal(i1, i1b));
    CHECK(!sp_value_equal(i1, f1)); /* different constants: they print differently */
    CHECK(!sp_value_equal(i1, b1));
    sp_value *n1 = sp_value_float(NAN), *n2 = sp_value_float(NAN), *z = sp_value_float(0.0),
             *nz = sp_value_float(-0.0);
    CHECK(sp_value_equal(n1, n2));
    CHECK(!sp_value_equal(z, nz));
    sp_value *a[2] = {i1, f1}, *b[2] = {i1b, f1}, *c[2] = {i1, b1};
    sp_value *ta = sp_value_tuple(2, a), *tb = sp_value_tuple(2, b), *tc = sp_value_tuple(2, c),
             *la = sp_value_list(2, a);
    CHECK(sp_value_equal(ta, tb));
    CHECK(!sp_value_equal(ta, tc));
    CHECK(!sp_value_equal(ta, la));
    /* tensors: same values through a transposed view compare equal */
    int64_t sh[2] = {2, 2}, sh1[1] = {4};
    float d[4] = {1, 2, 3, 4}, dt[4] = {1, 3, 2, 4};
    sp_tensor *x = sp_tensor_from_data(SP_F32, 2, sh, d), *y = sp_tensor_from_data(SP_F32, 2, sh, dt);
    sp_tensor *yt = NULL, *flat = sp_tensor_from_data(SP_F32, 1, sh1, d);
    CHECK_OK(sp_tensor_transpose(y, 0, 1, &yt));
    sp_value *vx = sp_value_tensor(x), *vyt = sp_value_tensor(yt), *vy = sp_value_tensor(y),
             *vf = sp_value_tensor(flat);
    CHECK(sp_value_equal(vx, vyt));
    CHECK(!sp_value_equal(vx, vy));
    CHECK(!sp_value_equal(vx, vf)); /* same data, other shape */
    sp_tensor_release(x);
    sp_tensor_release(y);
    sp_tensor_release(yt);
    sp_tensor_release(flat);
    sp_value *vals[] = {i1, i1b, f1, b1, n1, n2, z, nz, ta, tb, tc, la, vx, vyt, vy, vf};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) sp_value_release(vals[i]);
}

/* A tuple nested a million deep: release must not recurse a million deep,
 * printing must stop at its depth limit. */
static void test_deep_nesting(void) {
    int64_t live0 = sp_cpu_live_bytes();
    int64_t n = 1;
    float one = 1;
    sp_tensor *t = sp_tensor_from_data(SP_F32, 1, &n, &one);
    sp_value *v = sp_value_tensor(t);
    sp_tensor_release(t);
    for (int i = 0; i < 1000000 && v; i++) {
        sp_value *w = sp_value_tuple(1, &v);
        sp_value_release(v);
        v = w;
    }
    CHECK(v != NULL);
    char *s = sp_value_to_string(v);
    CHECK(s && strncmp(s, "((((", 4) == 0 && strstr(s, "..."));
    free(s);
    sp_value *w = sp_value_tuple(1, &v);
    CHECK(sp_value_equal(v, v));
    sp_value_release(w);
    sp_value_release(v);
    CHECK(sp_cpu_live_bytes() == live0);
}

static void test_refcounts(void) {
    sp_value *x = sp_value_int(5);
    sp_value *arr[3] = {x, x, x};
    sp_value *t = sp_value_tuple(3, arr);
    CHECK(x->refcount == 4);
    sp_value *kw = sp_value_keyword("k", t);
    CHECK(t->refcount == 2);
    sp_value *sl = sp_value_slice(x, x, NULL);
    CHECK(x->refcount == 6);
    sp_value *p = sp_value_partial(kw, 2, arr);
    CHECK(kw->refcount == 2 && x->refcount == 8);
    sp_value_release(p);
    CHECK(kw->refcount == 1 && x->refcount == 6);
    sp_value_release(sl);
    sp_value_release(kw);
    CHECK(t->refcount == 1);
    sp_value_release(t);
    CHECK(x->refcount == 1);
    sp_value_release(x);
    sp_value_release(NULL);
    /* bad arguments are errors, not crashes */
    sp_value *bad[1] = {NULL};
    CHECK(sp_value_tuple(1, bad) == NULL && sp_last_status() == SP_ERR_ARG);
    CHECK(sp_value_tensor(NULL) == NULL);
    CHECK(sp_value_keyword(NULL, NULL) == NULL);
}

int main(void) {
    RUN(test_scalars);
    RUN(test_strings_and_containers);
    RUN(test_functions_and_kinds);
    RUN(test_tensors);
    RUN(test_truth);
    RUN(test_equal);
    RUN(test_deep_nesting);
    RUN(test_refcounts);
    return TEST_SUMMARY();
}
