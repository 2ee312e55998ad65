/*
 * test_specialize.c -- the specializer and the compile pipeline
 * (src/compiler/specialize.h, compile.h) on small programs.
 *
 * Each test compiles source text for an argument signature and checks
 * what specialization must know (every node typed; x.shape[0] * 2 and
 * len(t) constants; API calls gone, replaced by primitive calls), what
 * the optimizer then makes of it (a static `for` or a recursion on a
 * static n leaves a single graph), that recursion on a tensor-dependent
 * condition reaches a fixed point and still computes the right values,
 * that the cache compiles once per signature, that a type error names the
 * user's line, and that SPORE_DUMP_IR writes the stage files.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/compile.h"
#include "frontend/frontend.h"
#include "ir/ir_internal.h"
#include "runtime/rt.h"
#include "test.h"

static sp_module *source(const char *text) {
    sp_module *m = sp_frontend_compile("test.py", text, 0, NULL);
    if (!m) fprintf(stderr, "front end: %s\n", sp_last_error());
    return m;
}

static sp_value *tensor_arg(sp_dtype d, int ndim, const int64_t *shape, const float *data) {
    sp_tensor *t = data ? sp_tensor_from_data(d, ndim, shape, data) : sp_tensor_zeros(d, ndim, shape, SP_CPU);
    sp_value *v = t ? sp_value_tensor(t) : NULL;
    sp_tensor_release(t);
    return v;
}

/* The float elements of a tensor value (CPU, contiguous float32). */
static const float *floats(const sp_value *v) {
    return v && v->kind == SP_V_TENSOR && v->u.tensor->dtype == SP_F32 ? sp_tensor_data(v->u.tensor) : NULL;
}

/* Counts the graphs of m, the nodes without an abstract and the applies
 * whose callee is builtin `id`. */
static void scan(const sp_module *m, int *n_graphs, int *untyped, int builtin, int *n_builtin) {
    *n_graphs = m->n_graphs;
    *untyped = 0;
    *n_builtin = 0;
    for (int gi = 0; gi < m->n_graphs; gi++) {
        sp_graph *g = m->graphs[gi];
        for (int i = 0; i < g->n_params; i++)
            if (!g->params[i]->abs) (*untyped)++;
        int n = 0;
        sp_node **nodes = ir_graph_nodes(g, &n);
        for (int i = 0; i < n; i++) {
            sp_node *x = nodes[i];
            if (!x->abs) (*untyped)++;
            for (int k = 0; k < x->n_inputs; k++)
                if (x->inputs[k]->kind == SP_NODE_CONST && !x->inputs[k]->abs) (*untyped)++;
            sp_node *f = x->inputs[0];
            if (f->kind == SP_NODE_CONST && f->value->kind == SP_V_BUILTIN && f->value->u.builtin == builtin)
                (*n_builtin)++;
        }
        if (g->output && !g->output->abs) (*untyped)++;
        free(nodes);
    }
}

static void test_mlp_static_values(void) {
    sp_module *m = source("from spore import ops\n"
                          "def f(x, w, b):\n"
                          "    h = ops.relu(x @ w + b)\n"
                          "    t = (1, 2, 3)\n"
                          "    return ops.softmax(h, axis=-1), x.shape[0] * 2, len(t), h.sum(axis=1)\n");
    CHECK(m != NULL);
    if (!m) return;
    int64_t sx[2] = {4, 3}, sw[2] = {3, 5}, sb[1] = {5};
    sp_value *args[3] = {tensor_arg(SP_F32, 2, sx, NULL), tensor_arg(SP_F32, 2, sw, NULL),
                         tensor_arg(SP_F32, 1, sb, NULL)};
    sp_compile_options opt = {0};
    opt.stop_after = "specialize";
    sp_compiled *c = NULL;
    CHECK_OK(sp_compile(m, "f", 3, args, &opt, &c));
    if (c) {
        int ng, untyped, napi;
        scan(sp_compiled_module(c), &ng, &untyped, RT_B_API, &napi);
        CHECK(untyped == 0);
        CHECK(napi == 0); /* ops.relu, ops.softmax, h.sum: all primitives now */
        int nmatmul = 0;
        scan(sp_compiled_module(c), &ng, &untyped, RT_B_MATMUL, &nmatmul);
        CHECK(nmatmul == 0); /* x @ w became prim.matmul */
        sp_graph *g = sp_compiled_graph(c);
        const sp_abstract *a = g ? g->output->abs : NULL;
        CHECK(a && a->kind == SP_ABS_TUPLE && a->n == 4);
        if (a && a->kind == SP_ABS_TUPLE && a->n == 4) {
            const sp_abstract *y = a->items[0], *k = a->items[1], *l = a->items[2], *s = a->items[3];
            CHECK(y->kind == SP_ABS_TENSOR && y->dtype == SP_F32 && y->ndim == 2 && y->shape[0] == 4 &&
                  y->shape[1] == 5);
            CHECK(k->kind == SP_ABS_CONST && k->value->kind == SP_V_INT && k->value->u.i == 8);
            CHECK(l->kind == SP_ABS_CONST && l->value->kind == SP_V_INT && l->value->u.i == 3);
            CHECK(s->kind == SP_ABS_TENSOR && s->ndim == 1 && s->shape[0] == 4);
        }
        const sp_spec_stats *st = sp_compiled_spec_stats(c);
        CHECK(st && st->n_replaced >= 5);
    }
    sp_compiled_free(c);
    /* the full pipeline computes what the VM computes */
    CHECK_OK(sp_compile(m, "f", 3, args, NULL, &c));
    if (c) {
        sp_value *r = sp_compiled_run(c, 3, args), *want = sp_vm_run(m, "f", 3, args);
        CHECK(r && want);
        if (r && want) {
            char *a = sp_value_to_string(r), *b = sp_value_to_string(want);
            CHECK(a && b && !strcmp(a, b));
            free(a);
            free(b);
        }
        sp_value_release(r);
        sp_value_release(want);
    }
    sp_compiled_free(c);
    for (int i = 0; i < 3; i++) sp_value_release(args[i]);
    sp_module_free(m);
}

/* Compiles `entry` of text for one float32 argument of `n` elements
 * holding `data`, runs it, checks the result against `want` and returns
 * the number of graphs left after optimization (-1 on failure). */
static int compile_run_1(const char *text, const char *entry, int n, const float *data, const float *want,
                         const sp_abstract **out_abs) {
    sp_module *m = source(text);
    if (!m) return -1;
    int64_t shape[1] = {n};
    sp_value *x = tensor_arg(SP_F32, 1, shape, data);
    sp_compiled *c = NULL;
    int graphs = -1;
    CHECK_OK(sp_compile(m, entry, 1, &x, NULL, &c));
    if (c) {
        graphs = sp_compiled_module(c)->n_graphs;
        if (out_abs) *out_abs = sp_compiled_graph(c)->output->abs;
        sp_value *r = sp_compiled_run(c, 1, &x);
        const float *got = floats(r);
        CHECK(got != NULL);
        for (int i = 0; got && i < n; i++) CHECK_NEAR(got[i], want[i], 1e-6);
        if (!got) fprintf(stderr, "run: %s\n", sp_last_error());
        sp_value_release(r);
        if (out_abs && *out_abs) {
            /* copy what the caller checks before the module goes */
            static sp_abstract keep;
            keep = **out_abs;
            *out_abs = &keep;
        }
    }
    sp_compiled_free(c);
    sp_value_release(x);
    sp_module_free(m);
    return graphs;
}

static void test_static_loop_unrolls(void) {
    static const float x[2] = {1, 2}, want[2] = {4, 5};
    int graphs = compile_run_1("def g(x):\n"
                               "    for i in range(3):\n"
                               "        x = x + i\n"
                               "    return x\n",
                               "g", 2, x, want, NULL);
    CHECK(graphs == 1); /* no loop header, body or exit graph is left */
}

static void test_static_recursion_unrolls(void) {
    static const float x[2] = {1, -3}, want[2] = {8, -24};
    int graphs = compile_run_1("def p(x, n=3):\n"
                               "    if n == 0:\n"
                               "        return x\n"
                               "    return p(x * 2.0, n - 1)\n",
                               "p", 2, x, want, NULL);
    CHECK(graphs == 1);
}

static void test_tensor_recursion_fixed_point(void) {
    static const float x[2] = {1, 1}, want[2] = {64, 64};
    const sp_abstract *a = NULL;
    int graphs = compile_run_1("def q(x):\n"
                               "    if x.sum() > 100.0:\n"
                               "        return x\n"
                               "    return q(x * 2.0)\n",
                               "q", 2, x, want, &a);
    CHECK(graphs >= 1);
    /* the recursion's result is known after the fixed point */
    CHECK(a && a->kind == SP_ABS_TENSOR && a->dtype == SP_F32 && a->ndim == 1 && a->shape[0] == 2);
    /* a while loop whose trip count depends on the data */
    static const float y[3] = {1, 2, 3}, wy[3] = {16, 32, 48};
    graphs = compile_run_1("def w(x):\n"
                           "    i = 0\n"
                           "    while x.sum() < 50.0:\n"
                           "        x = x * 2.0\n"
                           "        i = i + 1\n"
                           "    return x\n",
                           "w", 3, y, wy, NULL);
    CHECK(graphs >= 1);
}

static void test_cache(void) {
    sp_module *m = source("def f(x):\n"
                          "    return x * 2.0 + x.shape[0]\n");
    CHECK(m != NULL);
    if (!m) return;
    sp_compile_cache *cc = sp_compile_cache_new(m, NULL);
    CHECK(cc != NULL);
    int64_t rows[3] = {4, 8, 4};
    for (int k = 0; k < 3 && cc; k++) {
        int64_t shape[2] = {rows[k], 3};
        float data[24];
        for (int i = 0; i < rows[k] * 3; i++) data[i] = (float)i;
        sp_value *x = tensor_arg(SP_F32, 2, shape, data);
        sp_value *r = sp_compile_cache_call(cc, "f", 1, &x);
        const float *got = floats(r);
        CHECK(got != NULL);
        for (int i = 0; got && i < rows[k] * 3; i++) CHECK_NEAR(got[i], 2.0 * i + (double)rows[k], 1e-6);
        sp_value_release(r);
        sp_value_release(x);
    }
    CHECK(sp_compile_cache_misses(cc) == 2);
    CHECK(sp_compile_cache_hits(cc) == 1);
    /* a static argument is part of the signature */
    sp_value *three = sp_value_int(3), *four = sp_value_int(4);
    sp_compile_cache_free(cc);
    sp_module_free(m);
    m = source("def s(n):\n    return n * 10\n");
    cc = m ? sp_compile_cache_new(m, NULL) : NULL;
    if (cc) {
        sp_value *r3 = sp_compile_cache_call(cc, "s", 1, &three), *r4 = sp_compile_cache_call(cc, "s", 1, &four),
                 *r3b = sp_compile_cache_call(cc, "s", 1, &three);
        CHECK(r3 && r3->kind == SP_V_INT && r3->u.i == 30);
        CHECK(r4 && r4->kind == SP_V_INT && r4->u.i == 40);
        CHECK(r3b && r3b->kind == SP_V_INT && r3b->u.i == 30);
        CHECK(sp_compile_cache_misses(cc) == 2 && sp_compile_cache_hits(cc) == 1);
        sp_value_release(r3);
        sp_value_release(r4);
        sp_value_release(r3b);
    }
    sp_value_release(three);
    sp_value_release(four);
    sp_compile_cache_free(cc);
    sp_module_free(m);
}

static void test_type_errors(void) {
    sp_module *m = source("def e(x):\n"
                          "    y = x * 2.0\n"
                          "    return y + 'a'\n"
                          "def mm(a, b):\n"
                          "    return a @ b\n"
                          "def maybe(x):\n"
                          "    if x.sum() > 0.0:\n"
                          "        return x + 'a'\n"
                          "    return x\n");
    CHECK(m != NULL);
    if (!m) return;
    int64_t s2[1] = {2}, s23[2] = {2, 3};
    sp_value *x = tensor_arg(SP_F32, 1, s2, NULL), *a = tensor_arg(SP_F32, 2, s23, NULL);
    sp_compiled *c = NULL;
    CHECK_ERR(sp_compile(m, "e", 1, &x, NULL, &c), SP_ERR_TYPE, "test.py:3:14: ");
    CHECK(c == NULL);
    sp_value *ab[2] = {a, a};
    sp_clear_error();
    sp_status st = sp_compile(m, "mm", 2, ab, NULL, &c);
    CHECK(st != SP_OK && strstr(sp_last_error(), "test.py:5:") && strstr(sp_last_error(), "matmul"));
    CHECK(c == NULL);
    /* in a branch that may not run, the error waits for run time */
    CHECK_OK(sp_compile(m, "maybe", 1, &x, NULL, &c));
    if (c) {
        sp_value *r = sp_compiled_run(c, 1, &x); /* zeros: sum 0, the branch is not taken */
        CHECK(r != NULL);
        sp_value_release(r);
    }
    sp_compiled_free(c);
    sp_value_release(x);
    sp_value_release(a);
    sp_module_free(m);
}

static int file_nonempty(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int c = fgetc(f);
    fclose(f);
    return c != EOF;
}

static void test_dump_ir(void) {
    char dir[] = "/tmp/spore_dump_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    sp_module *m = source("def main():\n    return (1 + 2) * 3\n");
    sp_compile_options opt = {0};
    opt.dump_dir = dir;
    sp_compiled *c = NULL;
    CHECK_OK(sp_compile(m, "main", 0, NULL, &opt, &c));
    CHECK(file_nonempty(dir, "00_input.ir"));
    CHECK(file_nonempty(dir, "01_specialize.ir"));
    CHECK(file_nonempty(dir, "02_expand_grad.ir"));
    CHECK(file_nonempty(dir, "03_optimize.ir"));
    CHECK(sp_compiled_stage_seconds(c, SP_STAGE_SPECIALIZE) > 0);
    sp_value *r = c ? sp_compiled_run(c, 0, NULL) : NULL;
    CHECK(r && r->kind == SP_V_INT && r->u.i == 9);
    sp_value_release(r);
    sp_compiled_free(c);
    sp_module_free(m);
    const char *names[] = {"00_input.ir", "01_specialize.ir", "02_expand_grad.ir", "03_optimize.ir"};
    char path[512];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

/* f(*args) over a tuple of static length is an ordinary call: the callee
 * (a *args forwarder too, keywords among the items) is specialized and
 * inlined, so one graph is left and no call_star runs. */
static void test_star_calls_inline(void) {
    const char *text = "def add3(a, b, c=100.0):\n"
                       "    return a * 100.0 + b * 10.0 + c\n"
                       "def fwd(f, *args):\n"
                       "    return f(*args)\n"
                       "def f(x):\n"
                       "    t = (x, x)\n"
                       "    return fwd(add3, *t) + add3(*(x,), b=x, c=1.0)\n";
    float x[2] = {1, 2}, want[2] = {321, 541};
    CHECK(compile_run_1(text, "f", 2, x, want, NULL) == 1);
}

/* The specializer's statistics count each leaf call once: an in-place API
 * call replaced by its primitive (ops.assign) is "replaced", not also
 * "kept"; a print stays a run-time call ("kept"). */
static void test_stats_count_each_leaf_once(void) {
    sp_module *m = source("from spore import ops\n"
                          "def f(x, y):\n"
                          "    ops.assign(x, y)\n"
                          "    print(1)\n"
                          "    return x\n");
    CHECK(m != NULL);
    if (!m) return;
    int64_t sh[1] = {3};
    sp_value *args[2] = {tensor_arg(SP_F32, 1, sh, NULL), tensor_arg(SP_F32, 1, sh, NULL)};
    sp_compile_options opt = {0};
    opt.stop_after = "specialize";
    sp_compiled *c = NULL;
    CHECK_OK(sp_compile(m, "f", 2, args, &opt, &c));
    const sp_spec_stats *st = c ? sp_compiled_spec_stats(c) : NULL;
    CHECK(st != NULL);
    if (st) {
        CHECK(st->n_replaced == 1); /* ops.assign -> prim.assign */
        CHECK(st->n_kept == 1);     /* print */
    }
    int ng, untyped, napi;
    if (c) {
        scan(sp_compiled_module(c), &ng, &untyped, RT_B_API, &napi);
        CHECK(napi == 0);
    }
    sp_compiled_free(c);
    for (int i = 0; i < 2; i++) sp_value_release(args[i]);
    sp_module_free(m);
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_mlp_static_values);
    RUN(test_static_loop_unrolls);
    RUN(test_static_recursion_unrolls);
    RUN(test_tensor_recursion_fixed_point);
    RUN(test_cache);
    RUN(test_type_errors);
    RUN(test_dump_ir);
    RUN(test_stats_count_each_leaf_once);
    RUN(test_star_calls_inline);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}
