/*
 * test_ir.c -- the IR built by hand: free variables (transitive, stable
 * order), the printer's exact text, print -> parse -> print round trips
 * over modules covering every node and value kind, the verifier on good
 * and broken IR, parse errors with line:col, caret diagnostics, and a
 * small mutation fuzz of the IR parser.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "test.h"

enum {
#define SP_BUILTIN(ID, name, n) B_##ID,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

static sp_loc L(int line, int col) {
    sp_loc l = {"f.py", line, col};
    return l;
}
static const sp_loc NOLOC = {NULL, 0, 0};

/* Constant-node helpers: each makes a fresh constant in g. */
static sp_node *cint(sp_graph *g, int64_t i) {
    sp_value *v = sp_value_int(i);
    sp_node *n = ir_const_new(g, v, NOLOC);
    sp_value_release(v);
    return n;
}
static sp_node *cbuiltin(sp_graph *g, int id) {
    sp_value *v = sp_value_builtin(id);
    sp_node *n = ir_const_new(g, v, NOLOC);
    sp_value_release(v);
    return n;
}
static sp_node *cgraph(sp_graph *g, sp_graph *h) {
    sp_value *v = sp_value_graph(h);
    sp_node *n = ir_const_new(g, v, NOLOC);
    sp_value_release(v);
    return n;
}
static sp_node *cval(sp_graph *g, sp_value *v) { /* takes v */
    sp_node *n = ir_const_new(g, v, NOLOC);
    sp_value_release(v);
    return n;
}
static sp_node *app(sp_graph *g, sp_loc loc, int n, ...) {
    sp_node *in[16];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) in[i] = va_arg(ap, sp_node *);
    va_end(ap);
    return ir_apply_new(g, n, in, loc);
}
static sp_node *bcall(sp_graph *g, sp_loc loc, int id, sp_node *a, sp_node *b) {
    return b ? app(g, loc, 3, cbuiltin(g, id), a, b) : app(g, loc, 2, cbuiltin(g, id), a);
}

static int has_fv(const sp_graph *g, const sp_node *n) {
    for (int i = 0; i < g->n_fv; i++)
        if (g->fv[i] == n) return 1;
    return 0;
}

/* print -> parse -> print gives the same bytes, the parsed module verifies
 * and finalizes; returns the first text (caller frees). */
static char *check_roundtrip(sp_module *m, const char *what) {
    char *t1 = sp_module_print(m);
    CHECK(t1 != NULL);
    if (!t1) {
        fprintf(stderr, "  print failed (%s): %s\n", what, sp_last_error());
        return NULL;
    }
    sp_module *m2 = sp_module_parse_ir(t1, "roundtrip.ir");
    CHECK(m2 != NULL);
    if (!m2) {
        fprintf(stderr, "  parse failed (%s): %s\n--- text ---\n%s", what, sp_last_error(), t1);
        return t1;
    }
    char *t2 = sp_module_print(m2);
    CHECK(t2 && strcmp(t1, t2) == 0);
    if (t2 && strcmp(t1, t2) != 0) fprintf(stderr, "  round trip differs (%s):\n%s---\n%s", what, t1, t2);
    CHECK_OK(sp_module_verify(m2));
    CHECK_OK(ir_module_finalize(m2));
    CHECK(m2->n_graphs == m->n_graphs && m2->n_globals == m->n_globals);
    for (int i = 0; i < m->n_graphs && i < m2->n_graphs; i++)
        CHECK(m2->graphs[i]->n_fv == m->graphs[i]->n_fv);
    free(t2);
    sp_module_free(m2);
    return t1;
}

/* ---- an if lowered to switch + continuation --------------------------------
 *   def f(x, y):
 *       if x > 0: z = x + y
 *       else:     z = x - y
 *       return z * 2                                                     */
static sp_module *build_if(void) {
    sp_module *m = sp_module_new("f.py", "def f(x, y):\n    if x > 0:\n");
    sp_graph *f = ir_graph_new(m, "f", NULL, L(1, 1));
    sp_node *x = ir_param_new(f, "x", L(1, 7)), *y = ir_param_new(f, "y", L(1, 10));
    sp_graph *gt = ir_graph_new(m, "f.if_true", f, L(2, 5));
    sp_graph *gf = ir_graph_new(m, "f.if_false", f, L(4, 5));
    sp_graph *k = ir_graph_new(m, "f.cont", f, L(6, 5));
    sp_node *c = bcall(f, L(2, 10), B_GT, x, cint(f, 0));
    sp_node *sw = app(f, L(2, 5), 4, cbuiltin(f, B_SWITCH), c, cgraph(f, gt), cgraph(f, gf));
    f->output = app(f, L(2, 5), 1, sw);
    sp_node *z1 = bcall(gt, L(3, 13), B_ADD, x, y);
    z1->name = ir_intern(m, "z");
    gt->output = app(gt, L(3, 9), 2, cgraph(gt, k), z1);
    sp_node *z2 = bcall(gf, L(5, 13), B_SUB, x, y);
    z2->name = ir_intern(m, "z");
    gf->output = app(gf, L(5, 9), 2, cgraph(gf, k), z2);
    sp_node *z = ir_param_new(k, "z", L(6, 5));
    k->output = bcall(k, L(6, 12), B_MUL, z, cint(k, 2));
    sp_value *fv = sp_value_graph(f);
    ir_module_set_global(m, "f", fv);
    sp_value_release(fv);
    return m;
}

static const char *if_text =
    "global f = @f\n"
    "\n"
    "graph @f(%1 x, %2 y) {  # f.py:1:1\n"
    "  %3 = builtin.gt(%1, 0)  # f.py:2:10\n"
    "  %4 = builtin.switch(%3, @f.if_true, @f.if_false)  # f.py:2:5\n"
    "  %5 = %4()  # f.py:2:5\n"
    "  return %5\n"
    "}\n"
    "\n"
    "graph @f.if_true() parent @f {  # f.py:2:5\n"
    "  %6 z = builtin.add(%1, %2)  # f.py:3:13\n"
    "  %7 = @f.cont(%6)  # f.py:3:9\n"
    "  return %7\n"
    "}\n"
    "\n"
    "graph @f.if_false() parent @f {  # f.py:4:5\n"
    "  %8 z = builtin.sub(%1, %2)  # f.py:5:13\n"
    "  %9 = @f.cont(%8)  # f.py:5:9\n"
    "  return %9\n"
    "}\n"
    "\n"
    "graph @f.cont(%10 z) parent @f {  # f.py:6:5\n"
    "  %11 = builtin.mul(%10, 2)  # f.py:6:12\n"
    "  return %11\n"
    "}\n";

static void test_if_switch(void) {
    sp_module *m = build_if();
    CHECK_OK(sp_module_verify(m));
    CHECK_OK(ir_module_finalize(m));
    sp_graph *f = m->graphs[0], *gt = m->graphs[1], *gf = m->graphs[2], *k = m->graphs[3];
    CHECK(f->n_fv == 0 && k->n_fv == 0);
    CHECK(gt->n_fv == 2 && gt->fv[0] == f->params[0] && gt->fv[1] == f->params[1]);
    CHECK(gf->n_fv == 2 && gf->fv[0] == f->params[0] && gf->fv[1] == f->params[1]);
    char *t = sp_module_print(m);
    CHECK_STR(t, if_text);
    free(t);
    /* one graph alone keeps the module's numbering */
    t = sp_graph_print(k);
    CHECK_STR(t, "graph @f.cont(%10 z) parent @f {  # f.py:6:5\n  %11 = builtin.mul(%10, 2)  # f.py:6:12\n"
                 "  return %11\n}\n");
    free(t);
    free(check_roundtrip(m, "if"));
    /* parsing the expected text directly gives the same text back */
    sp_module *m2 = sp_module_parse_ir(if_text, "f.ir");
    CHECK(m2 != NULL);
    t = m2 ? sp_module_print(m2) : NULL;
    CHECK_STR(t, if_text);
    free(t);
    sp_module_free(m2);
    sp_module_free(m);
}

/* ---- closures over a parent's and a grandparent's variables ----------------
 *   def outer(a):
 *       b = a * 2
 *       def mid(c):
 *           def inner(d):
 *               return a + d
 *           return inner(c) + b
 *       return mid                                                       */
static void test_closures(void) {
    sp_module *m = sp_module_new("f.py", NULL);
    sp_graph *outer = ir_graph_new(m, "outer", NULL, L(1, 1));
    sp_node *a = ir_param_new(outer, "a", L(1, 11));
    sp_node *b = bcall(outer, L(2, 9), B_MUL, a, cint(outer, 2));
    b->name = ir_intern(m, "b");
    sp_graph *mid = ir_graph_new(m, "mid", outer, L(3, 5));
    sp_node *c = ir_param_new(mid, "c", L(3, 13));
    sp_graph *inner = ir_graph_new(m, "inner", mid, L(4, 9));
    sp_node *d = ir_param_new(inner, "d", L(4, 19));
    inner->output = bcall(inner, L(5, 20), B_ADD, a, d);
    sp_node *call = app(mid, L(6, 16), 2, cgraph(mid, inner), c);
    mid->output = bcall(mid, L(6, 16), B_ADD, call, b);
    outer->output = cgraph(outer, mid);
    CHECK_OK(sp_module_verify(m));
    CHECK_OK(ir_module_finalize(m));
    CHECK(outer->n_fv == 0);
    CHECK(inner->n_fv == 1 && inner->fv[0] == a);
    /* the grandchild's use of the grandparent's `a` is the child's too */
    CHECK(mid->n_fv == 2 && has_fv(mid, a) && has_fv(mid, b));
    /* stable: finalizing again gives the same order */
    sp_node *f0 = mid->fv[0], *f1 = mid->fv[1];
    CHECK_OK(ir_module_finalize(m));
    CHECK(mid->n_fv == 2 && mid->fv[0] == f0 && mid->fv[1] == f1);
    /* `b` is only used by the closure: outer must still evaluate it */
    int n = -1;
    sp_node **nodes = ir_graph_nodes(outer, &n);
    CHECK(nodes && n == 1 && nodes[0] == b);
    free(nodes);
    nodes = ir_graph_nodes(mid, &n);
    CHECK(nodes && n == 2 && nodes[0] == call && nodes[1] == mid->output);
    free(nodes);
    char *t = sp_module_print(m);
    CHECK(t && strstr(t, "graph @outer(%1 a) {  # f.py:1:1\n  %2 b = builtin.mul(%1, 2)  # f.py:2:9\n  return @mid\n}"));
    CHECK(t && strstr(t, "graph @inner(%6 d) parent @mid {  # f.py:4:9\n  %7 = builtin.add(%1, %6)"));
    free(t);
    free(check_roundtrip(m, "closures"));
    sp_module_free(m);
}

/* A node only a closure uses is evaluated before the call that builds the
 * closure, in ir_graph_nodes and in the printed order:
 *   def f(xs):
 *       n = len(xs)
 *       def g(i): return i + n
 *       return g(0)                                                      */
static void test_closure_needs_first(void) {
    sp_module *m = sp_module_new("f.py", NULL);
    sp_graph *f = ir_graph_new(m, "f", NULL, L(1, 1));
    sp_node *xs = ir_param_new(f, "xs", NOLOC);
    sp_graph *g = ir_graph_new(m, "g", f, L(3, 5));
    sp_node *i = ir_param_new(g, "i", NOLOC);
    sp_node *n = bcall(f, L(2, 9), B_LEN, xs, NULL);
    g->output = bcall(g, L(3, 23), B_ADD, i, n);
    sp_node *call = app(f, L(4, 12), 2, cgraph(f, g), cint(f, 0));
    f->output = call;
    CHECK_OK(sp_module_verify(m));
    CHECK_OK(ir_module_finalize(m));
    int k = 0;
    sp_node **nodes = ir_graph_nodes(f, &k);
    CHECK(nodes && k == 2 && nodes[0] == n && nodes[1] == call);
    free(nodes);
    char *t = sp_module_print(m);
    CHECK(t && strstr(t, "  %2 = builtin.len(%1)  # f.py:2:9\n  %3 = @g(0)  # f.py:4:12\n  return %3\n"));
    free(t);
    free(check_roundtrip(m, "closure needs"));
    sp_module_free(m);
}

/* ---- a while loop as tail recursion ----------------------------------------
 *   def loop(n):
 *       i = 0; s = 0
 *       while i < n: s = s + i; i = i + 1
 *       return s                                                         */
static void test_while(void) {
    sp_module *m = sp_module_new("f.py", NULL);
    sp_graph *lp = ir_graph_new(m, "loop", NULL, L(1, 1));
    sp_node *n = ir_param_new(lp, "n", L(1, 10));
    sp_graph *hd = ir_graph_new(m, "loop.while", lp, L(3, 5));
    sp_node *i = ir_param_new(hd, "i", NOLOC), *s = ir_param_new(hd, "s", NOLOC);
    sp_graph *body = ir_graph_new(m, "loop.body", hd, L(3, 18));
    sp_graph *after = ir_graph_new(m, "loop.after", hd, L(4, 5));
    lp->output = app(lp, L(3, 5), 3, cgraph(lp, hd), cint(lp, 0), cint(lp, 0));
    sp_node *cond = bcall(hd, L(3, 11), B_LT, i, n);
    sp_node *sw = app(hd, L(3, 5), 4, cbuiltin(hd, B_SWITCH), cond, cgraph(hd, body), cgraph(hd, after));
    hd->output = app(hd, L(3, 5), 1, sw);
    sp_node *s2 = bcall(body, L(3, 22), B_ADD, s, i), *i2 = bcall(body, L(3, 33), B_ADD, i, cint(body, 1));
    body->output = app(body, L(3, 5), 3, cgraph(body, hd), i2, s2);
    after->output = s;
    CHECK_OK(sp_module_verify(m));
    CHECK_OK(ir_module_finalize(m));
    CHECK(lp->n_fv == 0);
    CHECK(hd->n_fv == 1 && hd->fv[0] == n);
    /* body needs s and i directly and n to rebuild the header's closure */
    CHECK(body->n_fv == 3 && has_fv(body, s) && has_fv(body, i) && has_fv(body, n));
    CHECK(after->n_fv == 1 && after->fv[0] == s);
    free(check_roundtrip(m, "while"));
    sp_module_free(m);
}

/* ---- every value kind, names, defaults, *args, duplicates ------------------ */
static sp_value *tensor_value(sp_dtype dt, int ndim, const int64_t *shape, const void *data) {
    sp_tensor *t = sp_tensor_from_data(dt, ndim, shape, data);
    sp_value *v = sp_value_tensor(t);
    sp_tensor_release(t);
    return v;
}

static sp_module *build_kitchen_sink(void) {
    sp_module *m = sp_module_new("main file.py", NULL);
    sp_graph *g = ir_graph_new(m, "all values", NULL, L(1, 1));
    sp_graph *h = ir_graph_new(m, "h", NULL, (sp_loc){"other:file.py", 9, 2});
    sp_graph *h2 = ir_graph_new(m, "h", NULL, NOLOC); /* same name: labels get ~k */
    sp_graph *dead = ir_graph_new(m, "dead", g, NOLOC); /* nested, never referenced */
    sp_graph *inf = ir_graph_new(m, "inf", NULL, NOLOC); /* a name that reads as a float */
    sp_node *p1 = ir_param_new(g, "x", NOLOC);
    sp_node *p2 = ir_param_new(g, "weird name", NOLOC);
    sp_node *p3 = ir_param_new(g, "rest", NOLOC);
    g->defaults[1] = sp_value_float(0.5);
    g->has_varargs = 1;
    (void)p3;
    sp_node *hp = ir_param_new(h, NULL, NOLOC);
    h->output = hp;
    h2->output = cval(h2, sp_value_none());
    inf->output = cval(inf, sp_value_str("", 0));
    /* a node of g that only a dead nested graph uses still prints, in g */
    sp_node *od = bcall(g, L(8, 1), B_NEG, p1, NULL);
    dead->output = bcall(dead, NOLOC, B_ABS, od, NULL);

    sp_value *vals[64];
    int k = 0;
    vals[k++] = sp_value_int(INT64_MIN);
    vals[k++] = sp_value_int(INT64_MAX);
    vals[k++] = sp_value_float(0.1);
    vals[k++] = sp_value_float(-0.0);
    vals[k++] = sp_value_float(1e-05);
    vals[k++] = sp_value_float(1e300);
    vals[k++] = sp_value_float(NAN);
    vals[k++] = sp_value_float(INFINITY);
    vals[k++] = sp_value_float(-INFINITY);
    vals[k++] = sp_value_float(3.0);
    {
        const char *q = "quote\" back\\ nl\n tab\t \x01 \xc3\xa9 ' #";
        vals[k++] = sp_value_str(q, strlen(q));
    }
    vals[k++] = sp_value_str("a\0b", 3);
    vals[k++] = sp_value_none();
    vals[k++] = sp_value_bool(1);
    vals[k++] = sp_value_bool(0);
    vals[k++] = sp_value_ellipsis();
    vals[k++] = sp_value_undef();
    {
        sp_value *one = sp_value_int(1), *e = sp_value_tuple(0, NULL);
        sp_value *t1 = sp_value_tuple(1, &one), *l0 = sp_value_list(0, NULL);
        sp_value *items[4] = {one, t1, l0, e};
        vals[k++] = sp_value_tuple(4, items);
        vals[k++] = sp_value_list(4, items);
        sp_value_release(one);
        sp_value_release(e);
        sp_value_release(t1);
        sp_value_release(l0);
    }
    int64_t s23[2] = {2, 3}, s0[2] = {0, 3}, s2[1] = {2};
    float f6[6] = {1, 2.5f, -3, 0.1f, 1e-30f, INFINITY};
    int64_t i6[6] = {INT64_MIN, -1, 0, 1, 7, INT64_MAX};
    unsigned char b2[2] = {1, 0};
    uint16_t h2v[2] = {0x3c00, 0x3555}; /* f16 1.0 and 0.333 */
    uint16_t bf2[2] = {0x3f80, 0x3eab};
    double d2[2] = {1.0 / 3.0, -2e-308};
    int8_t i8v[2] = {-128, 127};
    vals[k++] = tensor_value(SP_F32, 2, s23, f6);
    vals[k++] = tensor_value(SP_I64, 2, s23, i6);
    vals[k++] = tensor_value(SP_BOOL, 1, s2, b2);
    vals[k++] = tensor_value(SP_F16, 1, s2, h2v);
    vals[k++] = tensor_value(SP_BF16, 1, s2, bf2);
    vals[k++] = tensor_value(SP_F64, 1, s2, d2);
    vals[k++] = tensor_value(SP_I8, 1, s2, i8v);
    vals[k++] = tensor_value(SP_F32, 2, s0, f6);   /* empty */
    vals[k++] = tensor_value(SP_F32, 0, NULL, f6); /* 0-d */
    {
        sp_tensor *t = sp_tensor_from_data(SP_F32, 2, s23, f6), *tt = NULL;
        sp_tensor_transpose(t, 0, 1, &tt); /* a strided view prints in logical order */
        vals[k++] = sp_value_tensor(tt);
        sp_tensor_release(t);
        sp_tensor_release(tt);
        float negz[2] = {-0.0f, NAN}; /* "-0" would read back as the int 0 (found by fuzzing) */
        vals[k++] = tensor_value(SP_F32, 1, s2, negz);
    }
    vals[k++] = sp_value_dtype(SP_BF16);
    vals[k++] = sp_value_prim(sp_op_find("matmul"));
    vals[k++] = sp_value_builtin(B_MAKE_KEYWORD);
    vals[k++] = sp_value_module(SP_MOD_SPORE);
    vals[k++] = sp_value_module(SP_MOD_OPS);
    vals[k++] = sp_value_module(SP_MOD_NN);
    vals[k++] = sp_value_module(SP_MOD_MATH);
    vals[k++] = sp_value_graph(h);
    vals[k++] = sp_value_graph(h2);
    vals[k++] = sp_value_graph(inf);
    {
        sp_value *one = sp_value_int(1), *none = sp_value_none(), *neg = sp_value_int(-1);
        vals[k++] = sp_value_closure(h, 1, &one);
        sp_value *add = sp_value_prim(sp_op_find("add"));
        vals[k++] = sp_value_partial(add, 1, &one);
        vals[k++] = sp_value_keyword("axis", neg);
        vals[k++] = sp_value_slice(one, none, neg);
        sp_value_release(add);
        sp_value_release(one);
        sp_value_release(none);
        sp_value_release(neg);
    }
    sp_node *in[64];
    in[0] = cbuiltin(g, B_MAKE_TUPLE);
    for (int i = 0; i < k; i++) in[i + 1] = cval(g, vals[i]);
    sp_node *tup = ir_apply_new(g, k + 1, in, (sp_loc){"main file.py", 3, 7});
    tup->name = ir_intern(m, "t~1\"odd");
    sp_node *kw = app(g, L(4, 1), 3, cbuiltin(g, B_MAKE_KEYWORD), cval(g, sp_value_str("k", 1)), p2);
    sp_node *hc = app(g, L(2147483647, 2147483647), 3, cgraph(g, h), tup, kw); /* extreme loc */
    char longname[301];
    memset(longname, 'a', 300);
    longname[300] = '\0';
    od->name = ir_intern(m, longname);
    g->output = app(g, NOLOC, 3, cbuiltin(g, B_MAKE_TUPLE), hc, p1);

    sp_value *gv = sp_value_graph(g), *pi = sp_value_float(3.14159), *ops = sp_value_module(SP_MOD_OPS);
    ir_module_set_global(m, "main", gv);
    ir_module_set_global(m, "PI", pi);
    ir_module_set_global(m, "ops", ops);
    ir_module_set_global(m, "odd name", pi);
    sp_value_release(gv);
    sp_value_release(pi);
    sp_value_release(ops);
    return m;
}

static void test_every_kind_roundtrip(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = build_kitchen_sink();
    CHECK_OK(sp_module_verify(m));
    CHECK_OK(ir_module_finalize(m));
    CHECK(m->graphs[3]->n_fv == 1); /* the dead graph still has its free variable */
    char *t = check_roundtrip(m, "every kind");
    CHECK(t != NULL);
    if (t) {
        CHECK(strstr(t, "graph @\"all values\"(%1 x, %2 \"weird name\" = 0.5, *%3 rest) {  # f.py:1:1\n"));
        CHECK(strstr(t, "graph @h~1(%9) {  # other:file.py:9:2\n"));
        /* a node only a dead nested graph uses prints in its owner, after the live ones */
        CHECK(strstr(t, "  %7 = builtin.make_tuple(%6, %1)\n  %8 aaaaaaaaaa"));
        CHECK(strstr(t, "aaaaa = builtin.neg(%1)  # f.py:8:1\n  return %7\n"));
        CHECK(strstr(t, "  %6 = @h~1(%4, %5)  # f.py:2147483647:2147483647\n"));
        CHECK(strstr(t, "graph @dead() parent @\"all values\" {\n  %10 = builtin.abs(%8)\n"));
        CHECK(strstr(t, "graph @h~2() {\n"));
        CHECK(strstr(t, "graph @\"inf\"() {\n  return \"\"\n}"));
        CHECK(strstr(t, "-9223372036854775808, 9223372036854775807, 0.1, -0.0, 1e-05, 1e+300, nan, inf, -inf, 3.0, "));
        CHECK(strstr(t, "\"quote\\\" back\\\\ nl\\n tab\\t \\x01 \\xc3\\xa9 ' #\", \"a\\x00b\", None, True, False, ..., undef, "));
        CHECK(strstr(t, "(1, (1,), [], ()), [1, (1,), [], ()], "));
        CHECK(strstr(t, "tensor(float32, [2, 3], [1, 2.5, -3, 0.1, 1e-30, inf])"));
        CHECK(strstr(t, "tensor(int64, [2, 3], [-9223372036854775808, -1, 0, 1, 7, 9223372036854775807])"));
        CHECK(strstr(t, "tensor(bool, [2], [True, False])"));
        CHECK(strstr(t, "tensor(float16, [2], [1, 0.3333])"));
        CHECK(strstr(t, "tensor(float64, [2], [0.3333333333333333, -2e-308])"));
        CHECK(strstr(t, "tensor(int8, [2], [-128, 127])"));
        CHECK(strstr(t, "tensor(float32, [0, 3], [])"));
        CHECK(strstr(t, "tensor(float32, [], [1])"));
        CHECK(strstr(t, "tensor(float32, [3, 2], [1, 0.1, 2.5, 1e-30, -3, inf])"));
        CHECK(strstr(t, "dtype.bfloat16, prim.matmul, builtin.make_keyword, module.spore, module.ops, module.nn, "
                        "module.math, @h~1, @h~2, @\"inf\", closure(@h~1, 1), partial(prim.add, 1), "
                        "keyword(\"axis\", -1), slice(1, None, -1))  # main file.py:3:7\n"));
        CHECK(strstr(t, "tensor(bfloat16, [2], [1, 0.334])"));
        CHECK(strstr(t, "tensor(float32, [2], [-0.0, nan])"));
        CHECK(strstr(t, "%4 \"t~1\\\"odd\" = builtin.make_tuple("));
        CHECK(strstr(t, "global main = @\"all values\"\nglobal PI = 3.14159\nglobal ops = module.ops\n"
                        "global \"odd name\" = 3.14159\n"));
    }
    /* the float32 constants read back bit for bit */
    sp_module *m2 = t ? sp_module_parse_ir(t, "x.ir") : NULL;
    if (m2) {
        sp_node *tup = NULL;
        int n = 0;
        sp_node **nodes = ir_graph_nodes(m2->graphs[0], &n);
        for (int i = 0; i < n; i++)
            if (nodes[i]->name && strstr(nodes[i]->name, "odd")) tup = nodes[i];
        free(nodes);
        CHECK(tup != NULL);
        if (tup) {
            /* every constant equals the original one */
            sp_graph *g0 = m->graphs[0];
            sp_node *orig = NULL;
            nodes = ir_graph_nodes(g0, &n);
            for (int i = 0; i < n; i++)
                if (nodes[i]->name && strstr(nodes[i]->name, "odd")) orig = nodes[i];
            free(nodes);
            CHECK(orig && orig->n_inputs == tup->n_inputs);
            for (int i = 1; orig && i < tup->n_inputs && i < orig->n_inputs; i++) {
                const sp_value *a = orig->inputs[i]->value, *b = tup->inputs[i]->value;
                if (a->kind == SP_V_GRAPH || a->kind == SP_V_CLOSURE) continue; /* other module */
                if (!sp_value_equal(a, b)) fprintf(stderr, "  constant %d differs after parse\n", i);
                CHECK(sp_value_equal(a, b));
            }
        }
        sp_module_free(m2);
    }
    free(t);
    sp_module_free(m);
    CHECK(sp_cpu_live_bytes() == live0);
}

/* ---- the verifier on broken IR --------------------------------------------- */
static void test_verify_broken(void) {
    /* a node used outside its scope: top-level @b uses a node of top-level @a */
    sp_module *m = sp_module_new("f.py", NULL);
    sp_graph *a = ir_graph_new(m, "a", NULL, NOLOC), *b = ir_graph_new(m, "b", NULL, NOLOC);
    sp_node *x = ir_param_new(a, "x", NOLOC);
    sp_node *y = bcall(a, L(2, 3), B_NEG, x, NULL);
    a->output = y;
    b->output = bcall(b, L(7, 9), B_NEG, y, NULL);
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "outside its scope");
    CHECK(strstr(sp_last_error(), "graph @b") && strstr(sp_last_error(), "f.py:7:9"));
    CHECK_ERR(ir_module_finalize(m), SP_ERR_INTERNAL, "does not enclose");
    sp_module_free(m);

    /* a sibling's child is not visible */
    m = sp_module_new("f.py", NULL);
    sp_graph *p = ir_graph_new(m, "p", NULL, NOLOC), *q = ir_graph_new(m, "q", NULL, NOLOC);
    sp_graph *pc = ir_graph_new(m, "p.child", p, NOLOC);
    ir_param_new(p, "v", NOLOC);
    pc->output = p->params[0];
    p->output = cgraph(p, pc);
    q->output = cgraph(q, pc);
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "does not enclose @q");
    CHECK_ERR(ir_module_finalize(m), SP_ERR_INTERNAL, "does not enclose");
    sp_module_free(m);

    /* an apply without a callee, a cycle, a missing output, bad arity */
    m = sp_module_new("f.py", NULL);
    sp_graph *g = ir_graph_new(m, "g", NULL, NOLOC);
    sp_node *gx = ir_param_new(g, "x", NOLOC);
    sp_node *n1 = bcall(g, L(3, 1), B_NEG, gx, NULL);
    g->output = n1;
    CHECK_OK(sp_module_verify(m));
    n1->n_inputs = 0;
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "without a callee");
    n1->n_inputs = 2;
    n1->inputs[1] = n1;
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "cycle");
    n1->inputs[1] = gx;
    g->output = NULL;
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "no output");
    g->output = bcall(g, L(4, 1), B_ADD, gx, NULL); /* add takes 2 */
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "builtin.add takes 2 arguments, 1 given");
    g->output = app(g, L(5, 1), 3, cgraph(g, g), gx, gx);
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "calls @g with 2 positional arguments; it takes 1");
    g->output = app(g, L(5, 1), 1, cgraph(g, g));
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "it needs at least 1");
    /* with a keyword argument the count is the callee's business */
    sp_node *kw = app(g, L(5, 3), 3, cbuiltin(g, B_MAKE_KEYWORD), cval(g, sp_value_str("x", 1)), gx);
    g->output = app(g, L(5, 1), 2, cgraph(g, g), kw);
    CHECK_OK(sp_module_verify(m));
    /* a parameter node that is not in the list */
    sp_node *stray = ir_param_new(g, "s", NOLOC);
    g->n_params = 1;
    g->output = stray;
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "not one of its parameters");
    g->n_params = 2;
    g->output = gx;
    CHECK_OK(sp_module_verify(m));
    /* a global bound to a nested graph */
    sp_graph *nested = ir_graph_new(m, "nested", g, NOLOC);
    nested->output = gx;
    sp_value *nv = sp_value_graph(nested);
    ir_module_set_global(m, "bad", nv);
    sp_value_release(nv);
    CHECK_ERR(sp_module_verify(m), SP_ERR_INTERNAL, "nested in @g");
    sp_module_free(m);
}

/* ---- parse errors name line:col, with the line and a caret ------------------ */
static void check_parse_error(const char *text, const char *needle) {
    sp_clear_error();
    sp_module *m = sp_module_parse_ir(text, "t.ir");
    CHECK(m == NULL);
    CHECK(sp_last_status() == SP_ERR_SYNTAX);
    if (!strstr(sp_last_error(), needle)) fprintf(stderr, "  wanted '%s', got '%s'\n", needle, sp_last_error());
    CHECK(strstr(sp_last_error(), needle) != NULL);
    sp_module_free(m);
}

static void test_parse_errors(void) {
    check_parse_error("graph @f(%1 x) {\n  %2 = prim.nosuch(%1)\n  return %2\n}\n",
                      "t.ir:2:8: unknown primitive 'nosuch'\n  %2 = prim.nosuch(%1)\n       ^");
    check_parse_error("graph @f(%1 x) {\n  return %9\n}\n", "t.ir:2:10: node %9 is used but never defined");
    check_parse_error("graph @f() {\n  return @g\n}\n", "t.ir:2:10: graph @g is used but never defined");
    check_parse_error("graph @f() {\n  return \"abc\n}\n", "t.ir:2:10: unterminated string");
    check_parse_error("graph @f() {\n  return (1)\n}\n", "t.ir:2:10: a tuple of one item needs a trailing comma");
    check_parse_error("graph @f() {\n  return tensor(float32, [2, 2], [1, 2, 3])\n}\n",
                      "t.ir:2:10: tensor: the shape asks for more values, 3 given");
    check_parse_error("graph @f() {\n  return tensor(int8, [1], [300])\n}\n", "300 is out of range for int8");
    check_parse_error("graph @f() {\n  return tensor(int32, [1], [1.5])\n}\n", "bad element for a tensor of int32");
    check_parse_error("graph @f() {\n  return tensor(float32, [99999999999, 99999999999], [1])\n}\n",
                      "the shape asks for more values, 1 given");
    check_parse_error("graph @f(%1 x, %1 y) {\n  return %1\n}\n", "t.ir:1:16: node %1 is defined twice");
    check_parse_error("graph @f() {\n  return 1\n}\ngraph @f() {\n  return 2\n}\n",
                      "t.ir:4:7: graph @f is defined twice");
    check_parse_error("graph @f(*%1 a, %2 b) {\n  return 1\n}\n", "*args must be the last parameter");
    check_parse_error("graph @f() {\n  return 99999999999999999999\n}\n", "integer out of range");
    check_parse_error("graph @f() {\n  %1 = 3(\n}\n", "t.ir:3:1: expected a value, found '}'");
    check_parse_error("graph @f() {\n  return 1\n", "t.ir:3:1: expected '}', found end of text");
    check_parse_error("oops", "t.ir:1:1: expected 'graph' or 'global'");
    check_parse_error("graph @f() {\n  return $\n}\n", "t.ir:2:10: unexpected character '$'");
    check_parse_error("graph @f() parent @f {\n  return 1\n}\n", "a graph cannot be its own parent");
    check_parse_error("global x = 1\nglobal x = 2\n", "t.ir:2:8: global 'x' is defined twice");
    check_parse_error("graph @f() {\n  return builtin.nosuch\n}\n", "unknown builtin 'nosuch'");
    check_parse_error("graph @f() {\n  return dtype.float99\n}\n", "unknown dtype 'float99'");
    check_parse_error("graph @f() {\n  return module.torch\n}\n", "unknown module 'torch'");
    check_parse_error("graph @f() {\n  return keyword(1, 2)\n}\n", "keyword: expected a name string");
    /* deep nesting is an error, not a stack overflow */
    char deep[4000] = "graph @f() {\n  return ";
    size_t k = strlen(deep);
    for (int i = 0; i < 1000; i++) deep[k++] = '[';
    deep[k] = '\0';
    check_parse_error(deep, "constant nested too deeply");
    /* a lenient reader: comments and blank lines anywhere, locations read back */
    sp_module *m = sp_module_parse_ir("# a comment\n\ngraph @f(%1 x) {   # src.py:10:2\n"
                                      "  # inside\n  %2 = prim.neg(%1)  # src.py:11:5  \n  return %2 # done\n}\n",
                                      "t.ir");
    CHECK(m != NULL);
    if (m) {
        sp_graph *g = m->graphs[0];
        CHECK(g->loc.line == 10 && g->loc.col == 2 && strcmp(g->loc.file, "src.py") == 0);
        CHECK(g->output->loc.line == 11 && g->output->loc.col == 5);
        CHECK(g->output->n_inputs == 2 && g->output->inputs[1] == g->params[0]);
        CHECK(g->output->inputs[0]->value->kind == SP_V_PRIM);
        CHECK_OK(sp_module_verify(m));
    }
    sp_module_free(m);
}

/* ---- carets ----------------------------------------------------------------- */
static void test_diag(void) {
    sp_module *m = sp_module_new("f.py", "def f(x):\n\ty = x + 'a'\n    return y\n");
    sp_loc loc = {m->file, 2, 8};
    CHECK(sp_error_at(m, loc, SP_ERR_TYPE, "add: Tensor + %s", "str") == SP_ERR_TYPE);
    CHECK_STR(sp_last_error(), "f.py:2:8: add: Tensor + str\n\ty = x + 'a'\n\t      ^");
    loc.line = 3;
    loc.col = 0;
    sp_error_at(m, loc, SP_ERR_RUNTIME, "no column");
    CHECK_STR(sp_last_error(), "f.py:3: no column\n    return y");
    loc.line = 0;
    sp_error_at(m, loc, SP_ERR_RUNTIME, "nowhere");
    CHECK_STR(sp_last_error(), "f.py: nowhere");
    loc.line = 40;
    loc.col = 2;
    sp_error_at(m, loc, SP_ERR_RUNTIME, "past the end");
    CHECK_STR(sp_last_error(), "f.py:40:2: past the end");
    sp_loc other = {"bprop.py", 1, 1}; /* another file: no source line */
    sp_error_at(m, other, SP_ERR_RUNTIME, "elsewhere");
    CHECK_STR(sp_last_error(), "bprop.py:1:1: elsewhere");
    sp_loc first = {m->file, 1, 1};
    sp_error_at(m, first, SP_ERR_SYNTAX, "first line");
    CHECK_STR(sp_last_error(), "f.py:1:1: first line\ndef f(x):\n^");
    sp_loc eol = {m->file, 1, 99}; /* a column past the end: caret at the end */
    sp_error_at(m, eol, SP_ERR_SYNTAX, "eol");
    CHECK_STR(sp_last_error(), "f.py:1:99: eol\ndef f(x):\n         ^");
    /* a long line shows a window around the column, caret still under it */
    char lng[520];
    memset(lng, 'a', 300);
    lng[300] = 'X';
    memset(lng + 301, 'b', 200);
    lng[501] = '\0';
    sp_loc at = {NULL, 1, 301};
    sp_error_src("long.py", lng, at, SP_ERR_SYNTAX, "here");
    const char *e = sp_last_error(), *l2 = strchr(e, '\n'), *l3 = l2 ? strchr(l2 + 1, '\n') : NULL;
    CHECK(l2 && l3 && strlen(l3 + 1) >= 1 && (size_t)(l3 - l2 - 1) < 300);
    if (l2 && l3) {
        size_t caret = strlen(l3 + 1) - 1;
        CHECK(l3[1 + caret] == '^' && l2[1 + caret] == 'X');
    }
    sp_loc s = {NULL, 1, 5};
    sp_error_src("g.py", "a = b +\n", s, SP_ERR_SYNTAX, "undefined name '%s'", "b");
    CHECK_STR(sp_last_error(), "g.py:1:5: undefined name 'b'\na = b +\n    ^");
    CHECK(sp_last_status() == SP_ERR_SYNTAX);
    sp_module_free(m);
}

/* ---- mutation fuzz: the parser errors cleanly or reads back what it prints -- */
static void test_parser_mutations(void) {
    sp_module *m = build_kitchen_sink();
    char *t = sp_module_print(m);
    sp_module_free(m);
    m = build_if();
    char *t2 = sp_module_print(m);
    sp_module_free(m);
    CHECK(t && t2);
    if (!t || !t2) return;
    static const char junk[] = "%@()[]{},=*\"#:\n -.0123456789~xe\\";
    uint64_t seed = 12345;
    int parsed = 0, failed = 0, bad_msg = 0, bad_rt = 0;
    for (int it = 0; it < 3000; it++) {
        const char *src = it & 1 ? t : t2;
        size_t len = strlen(src);
        char *s = malloc(len + 8);
        memcpy(s, src, len + 1);
        int edits = 1 + (int)(seed % 3);
        for (int e = 0; e < edits; e++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t pos = (size_t)(seed >> 33) % len;
            int op = (int)((seed >> 20) % 4);
            if (op == 0) s[pos] = junk[(seed >> 8) % (sizeof junk - 1)];
            else if (op == 1) memmove(s + pos, s + pos + 1, len - pos); /* delete */
            else if (op == 2) s[pos] = '\0';                             /* truncate */
            else s[pos] = (char)(seed >> 40);                            /* any byte */
            len = strlen(s);
            if (len == 0) break;
        }
        sp_module *mm = sp_module_parse_ir(s, "fz.ir");
        if (mm) {
            parsed++;
            char *p1 = sp_module_print(mm);
            sp_module *m3 = p1 ? sp_module_parse_ir(p1, "fz.ir") : NULL;
            char *p2 = m3 ? sp_module_print(m3) : NULL;
            if (!p1 || !p2 || strcmp(p1, p2) != 0) bad_rt++;
            sp_module_verify(mm); /* may fail; must not crash */
            ir_module_finalize(mm);
            free(p1);
            free(p2);
            sp_module_free(m3);
            sp_module_free(mm);
        } else {
            failed++;
            if (strncmp(sp_last_error(), "fz.ir:", 6) != 0) {
                if (bad_msg++ < 3) fprintf(stderr, "  bad message: %s\n", sp_last_error());
            }
        }
        free(s);
    }
    fprintf(stderr, "  mutations: %d parsed, %d rejected\n", parsed, failed);
    CHECK(bad_msg == 0);
    CHECK(bad_rt == 0);
    CHECK(failed > 1000 && parsed > 10);
    free(t);
    free(t2);
}

int main(void) {
    RUN(test_if_switch);
    RUN(test_closures);
    RUN(test_closure_needs_first);
    RUN(test_while);
    RUN(test_every_kind_roundtrip);
    RUN(test_verify_broken);
    RUN(test_parse_errors);
    RUN(test_diag);
    RUN(test_parser_mutations);
    return TEST_SUMMARY();
}
