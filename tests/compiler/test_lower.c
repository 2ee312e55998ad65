/*
 * test_lower.c -- lowering to a kernel list, the static memory plan and the
 * executor.
 *
 * The graphs are IR text in canonical form (the .ir files of tests/compiler/lower/ or
 * inline).  Each lowered graph is run beside the VM running the same graph
 * on the same inputs, and the results must agree; the plan's decisions are
 * checked by the names of the nodes they concern: which slots were written
 * in place, which became views, which were refused and why; and the figures:
 * the arena is smaller than running kernel by kernel would need.  Every
 * test also checks that the CPU allocator is back where it started.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/abstract.h"
#include "compiler/lower.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "runtime/vm.h"
#include "test.h"

static char lower_dir[4096];

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static sp_module *parse(const char *text) {
    sp_module *m = sp_module_parse_ir(text, "test.ir");
    if (m && (ir_module_finalize(m) != SP_OK || sp_module_verify(m) != SP_OK)) {
        sp_module_free(m);
        m = NULL;
    }
    if (!m) fprintf(stderr, "parse: %s\n", sp_last_error());
    return m;
}

static sp_module *parse_file(const char *name) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", lower_dir, name);
    char *text = read_text(path);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    sp_module *m = parse(text);
    free(text);
    return m;
}

static sp_graph *graph_of(sp_module *m, const char *name) {
    sp_value *v = m ? ir_module_get_global(m, name) : NULL;
    return v && v->kind == SP_V_GRAPH ? v->u.graph : NULL;
}

/* A float tensor of normal values (seeded) or an int64 one of k % mod. */
static sp_tensor *randn(int ndim, const int64_t *shape, uint64_t seed) {
    sp_tensor *t = sp_tensor_new(SP_F32, ndim, shape, SP_CPU);
    if (t) sp_rng_normal(t, seed, 0, 0.0, 1.0);
    return t;
}

static sp_tensor *ints(int64_t n, int64_t mod) {
    sp_tensor *t = sp_tensor_new(SP_I64, 1, &n, SP_CPU);
    for (int64_t i = 0; t && i < n; i++) ((int64_t *)sp_tensor_data(t))[i] = (i * 7 + 3) % mod;
    return t;
}

static sp_tensor *copy_of(sp_tensor *t) {
    sp_tensor *c = NULL;
    return sp_tensor_cast(t, t->dtype, &c) == SP_OK ? c : NULL;
}

/* Largest |a - b| / (1 + |b|) over two tensors of one shape; 1e30 when the
 * shapes or dtypes differ. */
static double max_diff(sp_tensor *a, sp_tensor *b) {
    if (!a || !b || a->dtype != b->dtype || a->ndim != b->ndim) return 1e30;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 1e30;
    sp_tensor *x = NULL, *y = NULL;
    double worst = 0;
    if (sp_tensor_cast(a, SP_F64, &x) == SP_OK && sp_tensor_cast(b, SP_F64, &y) == SP_OK) {
        const double *p = sp_tensor_data(x), *q = sp_tensor_data(y);
        for (int64_t i = 0; i < sp_tensor_numel(x); i++) {
            double d = fabs(p[i] - q[i]) / (1.0 + fabs(q[i]));
            if (!(d <= worst)) worst = d;
        }
    } else {
        worst = 1e30;
    }
    sp_tensor_release(x);
    sp_tensor_release(y);
    return worst;
}

/* Compares two results of the same structure; returns the worst difference. */
static double value_diff(const sp_value *a, const sp_value *b) {
    if (!a || !b || a->kind != b->kind) return 1e30;
    if (a->kind == SP_V_TENSOR) return max_diff(a->u.tensor, b->u.tensor);
    if (a->kind == SP_V_TUPLE) {
        if (a->u.seq.n != b->u.seq.n) return 1e30;
        double w = 0;
        for (int i = 0; i < a->u.seq.n; i++) {
            double d = value_diff(a->u.seq.items[i], b->u.seq.items[i]);
            if (!(d <= w)) w = d;
        }
        return w;
    }
    return sp_value_equal(a, b) ? 0 : 1e30;
}

static sp_value **wrap_all(int n, sp_tensor **t) {
    sp_value **v = calloc((size_t)n, sizeof *v);
    for (int i = 0; i < n; i++) v[i] = sp_value_tensor(t[i]);
    return v;
}

static void release_all(int n, sp_value **v) {
    for (int i = 0; i < n; i++) sp_value_release(v[i]);
    free(v);
}

static int slot_kind(const sp_lowered *l, const char *name) {
    int s = sp_lowered_find_slot(l, name);
    return s < 0 ? -1 : (int)l->slots[s].kind;
}

/* The name of the slot that `name` was written in place of ("" for an
 * unnamed one, NULL when not in place). */
static const char *inplace_of(const sp_lowered *l, const char *name) {
    int s = sp_lowered_find_slot(l, name);
    if (s < 0 || l->slots[s].kind != SP_LSLOT_ARENA || l->slots[s].inplace_of < 0) return NULL;
    const char *b = l->slots[l->slots[s].inplace_of].name;
    return b ? b : "";
}

/* ---- the MLP step ---------------------------------------------------------- */

static void test_mlp_step(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = parse_file("mlp_step.ir");
    sp_graph *g = graph_of(m, "step");
    CHECK(g != NULL);
    if (!g) {
        sp_module_free(m);
        return;
    }
    const int64_t N = 8, si[4] = {N, 1, 4, 5}, sw1[2] = {20, 16}, sb1[1] = {16}, sw2[2] = {16, 5},
                  sb2[1] = {5};
    sp_tensor *p[6] = {randn(4, si, 1), ints(N, 5), randn(2, sw1, 2), randn(1, sb1, 3),
                       randn(2, sw2, 4), randn(1, sb2, 5)};
    sp_meta metas[6];
    for (int i = 0; i < 6; i++) metas[i] = sp_meta_of(p[i]);
    char why[256];
    sp_lowered *l = sp_lower(g, 6, metas, NULL, why, sizeof why);
    CHECK(l != NULL);
    if (!l) fprintf(stderr, "not lowered: %s\n", why);
    sp_value **args = wrap_all(6, p);
    sp_value *want = sp_vm_run(m, "step", 6, args);
    CHECK(want && want->kind == SP_V_TUPLE && want->u.seq.n == 5);
    if (l) {
        /* twice: the second run reuses the cached arena */
        for (int rep = 0; rep < 2; rep++) {
            sp_value *got = sp_lowered_run_value(l, 6, args);
            CHECK(got != NULL);
            if (!got) fprintf(stderr, "run: %s\n", sp_last_error());
            CHECK(value_diff(got, want) < 1e-5);
            sp_value_release(got);
        }
        sp_lower_stats st = sp_lowered_stats(l);
        CHECK(st.n_kernels == 18);
        CHECK(st.n_views == 2);     /* x = reshape(images), hT = transpose(h) */
        CHECK(st.n_inplace == 3);   /* h0, logits, dh0 */
        CHECK(st.arena_bytes > 0 && st.arena_bytes < st.noplan_bytes);
        CHECK(st.noplan_bytes <= st.naive_bytes);
        /* outputs: loss (64 after rounding), dw1 20x16, db1 16, dw2 16x5, db2 5 */
        CHECK(st.output_bytes == 64 + 1280 + 64 + 320 + 64);
        CHECK(slot_kind(l, "x") == SP_LSLOT_VIEW && slot_kind(l, "hT") == SP_LSLOT_VIEW);
        const char *a = inplace_of(l, "h0");
        CHECK(a && !strcmp(a, ""));
        CHECK(inplace_of(l, "logits") && !strcmp(inplace_of(l, "logits"), ""));
        CHECK(inplace_of(l, "dh0") && !strcmp(inplace_of(l, "dh0"), "dh"));
        CHECK(inplace_of(l, "h") == NULL); /* h0 is read again by greater */
        CHECK(slot_kind(l, "dw1") == SP_LSLOT_OUTPUT && slot_kind(l, "loss") == SP_LSLOT_OUTPUT);
        /* h lives until hT's last use (dw2), because hT is a view of it */
        int h = sp_lowered_find_slot(l, "h"), dw2 = sp_lowered_find_slot(l, "dw2");
        CHECK(h >= 0 && dw2 >= 0 && l->slots[h].last_use == l->slots[dw2].def);
        /* no two arena slots alive at once share bytes, except in-place pairs */
        int overlap = 0;
        for (int i = 0; i < l->n_slots; i++)
            for (int j = i + 1; j < l->n_slots; j++) {
                const sp_lslot *x = &l->slots[i], *y = &l->slots[j];
                if (x->kind != SP_LSLOT_ARENA || y->kind != SP_LSLOT_ARENA) continue;
                if (y->inplace_of == i || x->inplace_of == j) continue;
                int t_over = x->def <= y->last_use && y->def <= x->last_use;
                int m_over = x->offset < y->offset + y->nbytes && y->offset < x->offset + x->nbytes;
                if (t_over && m_over && x->nbytes && y->nbytes) overlap++;
            }
        CHECK(overlap == 0);
        char *txt = sp_lowered_print(l);
        CHECK(txt && strstr(txt, "peak bytes:") && strstr(txt, "in place of") && strstr(txt, "view of"));
        free(txt);

        /* the same plan with in-place and views off: same values, more memory */
        sp_lower_options off = {1, 1};
        sp_lowered *l2 = sp_lower(g, 6, metas, &off, why, sizeof why);
        CHECK(l2 != NULL);
        if (l2) {
            sp_value *got = sp_lowered_run_value(l2, 6, args);
            CHECK(value_diff(got, want) < 1e-5);
            sp_value_release(got);
            CHECK(l2->stats.n_inplace == 0 && l2->stats.n_views == 0);
            CHECK(l2->stats.arena_bytes >= st.arena_bytes);
            sp_lowered_free(l2);
        }

        /* a signature mismatch is an error naming the parameter */
        const int64_t bad[2] = {20, 17};
        sp_tensor *w = randn(2, bad, 9);
        sp_tensor *q[6] = {p[0], p[1], w, p[3], p[4], p[5]};
        sp_tensor *out[5] = {0};
        CHECK_ERR(sp_lowered_run(l, 6, q, out), SP_ERR_SHAPE, "parameter 2 (w1): expected float32(20, 16), got float32(20, 17)");
        CHECK(out[0] == NULL);
        CHECK_ERR(sp_lowered_run(l, 5, q, out), SP_ERR_ARG, "takes 6 parameters, got 5");
        sp_tensor *lab = sp_tensor_new(SP_I32, 1, &N, SP_CPU);
        q[1] = lab;
        q[2] = p[2];
        CHECK_ERR(sp_lowered_run(l, 6, q, out), SP_ERR_SHAPE, "expected int64(8,), got int32(8,)");
        sp_tensor_release(lab);
        sp_tensor_release(w);
        sp_lowered_free(l);
    }
    sp_value_release(want);
    release_all(6, args);
    for (int i = 0; i < 6; i++) sp_tensor_release(p[i]);
    sp_module_free(m);
    CHECK(sp_cpu_live_bytes() == live0);
}

/* ---- in place: where it is safe and nowhere else ------------------------ */

static const char *INPLACE_IR =
    "global f = @f\n"
    "graph @f(%1 x) {\n"
    "  %2 a = prim.neg(%1)\n"         /* x is a parameter: never written */
    "  %3 b = prim.exp(%2)\n"         /* a dies here: in place */
    "  %4 c = prim.sin(%3)\n"         /* b is read again below: not in place */
    "  %5 d = prim.mul(%4, %3)\n"     /* c and b die here: in place of c */
    "  %6 e = prim.sum(%5)\n"         /* not elementwise */
    "  %7 f = prim.add(%5, %6)\n"     /* the output: its own memory */
    "  %8 = builtin.make_tuple(%7, %6, 2.5)\n"
    "  return %8\n"
    "}\n";

static void test_inplace_rules(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = parse(INPLACE_IR);
    sp_graph *g = graph_of(m, "f");
    const int64_t shape[2] = {3, 40};
    sp_tensor *x = randn(2, shape, 7);
    sp_meta meta = sp_meta_of(x);
    char why[256];
    sp_lowered *l = g ? sp_lower(g, 1, &meta, NULL, why, sizeof why) : NULL;
    CHECK(l != NULL);
    if (l) {
        CHECK(inplace_of(l, "a") == NULL);
        CHECK(inplace_of(l, "b") && !strcmp(inplace_of(l, "b"), "a"));
        CHECK(inplace_of(l, "c") == NULL);
        CHECK(inplace_of(l, "d") && !strcmp(inplace_of(l, "d"), "c"));
        CHECK(slot_kind(l, "f") == SP_LSLOT_OUTPUT && slot_kind(l, "e") == SP_LSLOT_OUTPUT);
        CHECK(l->stats.n_inplace == 2);
        /* a, b, c: three 3x40 float buffers live at most two at a time */
        CHECK(l->stats.arena_bytes == 2 * 512);
        CHECK(l->stats.noplan_bytes == 3 * 512);
        sp_value *xv = sp_value_tensor(x);
        sp_value *want = sp_vm_run(m, "f", 1, &xv);
        sp_value *got = sp_lowered_run_value(l, 1, &xv);
        CHECK(got && want && value_diff(got, want) < 1e-6);
        CHECK(got && got->kind == SP_V_TUPLE && got->u.seq.n == 3 && got->u.seq.items[2]->kind == SP_V_FLOAT);
        /* the parameter was not touched: neg(x) again gives the same */
        sp_value *again = sp_lowered_run_value(l, 1, &xv);
        CHECK(again && value_diff(again, want) < 1e-6);
        sp_value_release(again);
        sp_value_release(got);
        sp_value_release(want);
        sp_value_release(xv);
        sp_lowered_free(l);
    }
    sp_tensor_release(x);
    sp_module_free(m);
    CHECK(sp_cpu_live_bytes() == live0);
}

/* ---- mutation: views of what an update writes are copies ---------------- */

static const char *MUTATE_IR =
    "global f = @f\n"
    "graph @f(%1 w, %2 g, %3 acc, %4 lr) {\n"
    "  %5 before = prim.reshape(%1, keyword(\"shape\", (6,)))\n"
    "  %6 t = prim.transpose(%2, keyword(\"perm\", (1, 0)))\n"
    "  %7 u = prim.sgd_update(%1, %2, %3, %4)\n"
    "  %8 after = prim.mul(%1, 1.0)\n"
    "  %9 s = prim.add(%5, 0)\n"
    "  %10 = builtin.make_tuple(%9, %7, %8, %6)\n"
    "  return %10\n"
    "}\n";

static void test_mutation(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = parse(MUTATE_IR);
    sp_graph *g = graph_of(m, "f");
    const int64_t shape[2] = {2, 3};
    sp_tensor *w = randn(2, shape, 1), *gr = randn(2, shape, 2), *acc = sp_tensor_zeros(SP_F32, 2, shape, SP_CPU);
    sp_tensor *lr = sp_tensor_scalar(SP_F32, 0.5);
    sp_meta metas[4] = {sp_meta_of(w), sp_meta_of(gr), sp_meta_of(acc), sp_meta_of(lr)};
    char why[256];
    sp_lowered *l = g ? sp_lower(g, 4, metas, NULL, why, sizeof why) : NULL;
    CHECK(l != NULL);
    if (l) {
        /* w is updated in place: its reshape must copy the old values */
        CHECK(slot_kind(l, "before") == SP_LSLOT_ARENA);
        CHECK(l->slots[sp_lowered_find_slot(l, "w")].mutated);
        /* an output is never a view */
        CHECK(slot_kind(l, "t") == SP_LSLOT_OUTPUT);
        sp_tensor *w2 = copy_of(w), *acc2 = copy_of(acc);
        sp_tensor *vp[4] = {w2, gr, acc2, lr};
        sp_value **vargs = wrap_all(4, vp);
        sp_value *want = sp_vm_run(m, "f", 4, vargs);
        sp_tensor *lp[4] = {w, gr, acc, lr};
        sp_value **largs = wrap_all(4, lp);
        sp_value *got = sp_lowered_run_value(l, 4, largs);
        CHECK(got && want && value_diff(got, want) < 1e-6);
        CHECK(max_diff(w, w2) < 1e-7); /* the update happened alike */
        /* s = the old w (evaluated before the update: the output's order),
         * after = the new w */
        if (got && got->kind == SP_V_TUPLE) {
            CHECK(got->u.seq.items[1]->kind == SP_V_NONE);
            CHECK(fabs(sp_tensor_get(got->u.seq.items[0]->u.tensor, (int64_t[]){5}) -
                       sp_tensor_get(w2, (int64_t[]){1, 2})) > 1e-4);
            CHECK(fabs(sp_tensor_get(got->u.seq.items[2]->u.tensor, (int64_t[]){1, 2}) -
                       sp_tensor_get(w, (int64_t[]){1, 2})) < 1e-7);
        }
        sp_value_release(got);
        sp_value_release(want);
        release_all(4, vargs);
        release_all(4, largs);
        sp_tensor_release(w2);
        sp_tensor_release(acc2);
        sp_lowered_free(l);
    }
    sp_tensor_release(w);
    sp_tensor_release(gr);
    sp_tensor_release(acc);
    sp_tensor_release(lr);
    sp_module_free(m);
    CHECK(sp_cpu_live_bytes() == live0);
}

/* ---- views of intermediates; make_keyword nodes; variadic tuples --------- */

static const char *VIEWS_IR =
    "global f = @f\n"
    "graph @f(%1 x) {\n"
    "  %2 e = prim.exp(%1)\n"
    "  %3 = builtin.make_keyword(\"shape\", (4, 6))\n"
    "  %4 r = prim.reshape(%2, %3)\n"
    "  %5 s = prim.slice(%4, keyword(\"begin\", (1, 0)), keyword(\"end\", (4, 6)), keyword(\"step\", (2, 3)))\n"
    "  %6 b = prim.broadcast_to(%5, keyword(\"shape\", (3, 2, 2)))\n"
    "  %7 n = prim.neg(%6)\n"
    "  %13 nr = prim.reshape(%7, keyword(\"shape\", (2, 6)))\n"
    "  %8 = builtin.make_tuple(%13, %4)\n"
    "  %9 c = prim.concat(%8)\n" /* (the VM spreads the tuple only without keywords) */
    "  %10 sp = prim.split(%1, keyword(\"axis\", 1), keyword(\"sizes\", (1, 2)))\n"
    "  %11 p = builtin.tuple_getitem(%10, 1)\n"
    "  %12 = builtin.make_tuple(%9, %11)\n"
    "  return %12\n"
    "}\n";

static void test_views(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = parse(VIEWS_IR);
    sp_graph *g = graph_of(m, "f");
    const int64_t shape[2] = {8, 3};
    sp_tensor *x = randn(2, shape, 3);
    sp_meta meta = sp_meta_of(x);
    char why[256] = "";
    sp_lowered *l = g ? sp_lower(g, 1, &meta, NULL, why, sizeof why) : NULL;
    CHECK(l != NULL);
    if (!l) fprintf(stderr, "not lowered: %s\n", why);
    if (l) {
        CHECK(slot_kind(l, "r") == SP_LSLOT_VIEW && slot_kind(l, "s") == SP_LSLOT_VIEW &&
              slot_kind(l, "b") == SP_LSLOT_VIEW);
        /* e is viewed until concat reads r */
        int e = sp_lowered_find_slot(l, "e"), c = sp_lowered_find_slot(l, "c");
        CHECK(e >= 0 && c >= 0 && l->slots[e].last_use == l->slots[c].def);
        CHECK(inplace_of(l, "n") == NULL); /* its input is a broadcast view */
        sp_value *xv = sp_value_tensor(x);
        sp_value *want = sp_vm_run(m, "f", 1, &xv);
        sp_value *got = sp_lowered_run_value(l, 1, &xv);
        CHECK(got && want && value_diff(got, want) < 1e-6);
        if (got && got->kind == SP_V_TUPLE) {
            CHECK(got->u.seq.items[0]->u.tensor->shape[0] == 6 && got->u.seq.items[1]->u.tensor->shape[1] == 2);
        }
        sp_value_release(got);
        sp_value_release(want);
        sp_value_release(xv);
        sp_lowered_free(l);
    }
    sp_tensor_release(x);
    sp_module_free(m);
    CHECK(sp_cpu_live_bytes() == live0);
}

/* ---- what is not lowerable says why ---------------------------------------- */

static const char *SWITCH_IR =
    "global f = @f\n"
    "graph @f(%1 x, %2 c) {\n"
    "  %3 = builtin.switch(%2, @t, @e)\n"
    "  %4 = %3()\n"
    "  return %4\n"
    "}\n"
    "graph @t() {\n"
    "  return 1\n"
    "}\n"
    "graph @e() {\n"
    "  return 2\n"
    "}\n";

static void test_not_lowerable(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = parse(SWITCH_IR);
    sp_graph *g = graph_of(m, "f");
    sp_meta metas[2];
    memset(metas, 0, sizeof metas);
    metas[1].dtype = SP_BOOL;
    char why[256] = "";
    sp_error(SP_ERR_IO, "an earlier error");
    CHECK(g && sp_lower(g, 2, metas, NULL, why, sizeof why) == NULL);
    CHECK(strstr(why, "builtin.switch is not lowerable") != NULL);
    CHECK(strstr(sp_last_error(), "an earlier error") != NULL); /* untouched */
    CHECK(g && sp_lower(g, 1, metas, NULL, why, sizeof why) == NULL);
    CHECK(strstr(why, "takes 2 parameters") != NULL);
    sp_module_free(m);

    /* a shape error found by inference is a reason too (the VM reports it) */
    m = parse("global f = @f\ngraph @f(%1 x) {\n  %2 = prim.matmul(%1, %1)\n  return %2\n}\n");
    g = graph_of(m, "f");
    sp_meta x = {SP_F32, 2, {3, 4}};
    CHECK(g && sp_lower(g, 1, &x, NULL, why, sizeof why) == NULL);
    CHECK(strstr(why, "matmul") != NULL);
    sp_module_free(m);
    m = parse("global f = @f\ngraph @f(%1 x) {\n  %2 = builtin.api(\"ops.relu\", %1)\n  return %2\n}\n");
    g = graph_of(m, "f");
    CHECK(g && sp_lower(g, 1, &x, NULL, why, sizeof why) == NULL);
    CHECK(strstr(why, "builtin.api is not lowerable") != NULL);
    sp_module_free(m);
    sp_clear_error();
    CHECK(sp_cpu_live_bytes() == live0);
}

/* ---- a kernel's run-time error points at the node ------------------------- */

static void test_runtime_error(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = parse("global f = @f\ngraph @f(%1 x, %2 i) {\n"
                         "  %3 e = prim.exp(%1)\n"
                         "  %4 = prim.embedding(%3, %2)  # net.py:7:9\n"
                         "  return %4\n}\n");
    sp_graph *g = graph_of(m, "f");
    const int64_t shape[2] = {4, 3};
    sp_tensor *x = randn(2, shape, 1), *i = ints(5, 9); /* indices up to 8: out of range */
    sp_meta metas[2] = {sp_meta_of(x), sp_meta_of(i)};
    char why[256];
    sp_lowered *l = g ? sp_lower(g, 2, metas, NULL, why, sizeof why) : NULL;
    CHECK(l != NULL);
    if (l) {
        sp_tensor *p[2] = {x, i}, *out[1] = {0};
        sp_status st = sp_lowered_run(l, 2, p, out);
        CHECK(st != SP_OK && strstr(sp_last_error(), "net.py:7:9") && strstr(sp_last_error(), "embedding"));
        CHECK(out[0] == NULL);
        sp_lowered_free(l);
    }
    sp_tensor_release(x);
    sp_tensor_release(i);
    sp_module_free(m);
    sp_clear_error();
    CHECK(sp_cpu_live_bytes() == live0);
}

/* ---- the signature from the specializer's abstract values ----------------- */

static void test_from_abstract(void) {
    int64_t live0 = sp_cpu_live_bytes();
    sp_module *m = parse(INPLACE_IR);
    sp_graph *g = graph_of(m, "f");
    char why[256] = "";
    CHECK(g && sp_lower_specialized(g, NULL, why, sizeof why) == NULL);
    CHECK(strstr(why, "parameter 0 of @f is not a tensor of known shape") != NULL);
    const int64_t known[2] = {3, 40}, unknown[2] = {-1, 40};
    if (g) g->params[0]->abs = sp_abs_tensor(m, SP_F32, 2, unknown, SP_CPU);
    CHECK(g && sp_lower_specialized(g, NULL, why, sizeof why) == NULL);
    if (g) g->params[0]->abs = sp_abs_tensor(m, SP_F32, 2, known, SP_CPU);
    sp_lowered *l = g ? sp_lower_specialized(g, NULL, why, sizeof why) : NULL;
    CHECK(l && l->n_params == 1 && l->params[0].shape[1] == 40 && l->stats.n_inplace == 2);
    sp_lowered_free(l);
    sp_module_free(m);
    sp_clear_error();
    CHECK(sp_cpu_live_bytes() == live0);
}

static void test_parse_sig(void) {
    sp_meta m[4];
    CHECK(sp_lower_parse_sig("float32[2,3], int64[2],bool[]", m, 4) == 3);
    CHECK(m[0].dtype == SP_F32 && m[0].ndim == 2 && m[0].shape[1] == 3);
    CHECK(m[1].dtype == SP_I64 && m[1].ndim == 1 && m[1].shape[0] == 2);
    CHECK(m[2].dtype == SP_BOOL && m[2].ndim == 0);
    CHECK(sp_lower_parse_sig("", m, 4) == 0);
    CHECK(sp_lower_parse_sig("float32[2,", m, 4) == -1);
    CHECK(sp_lower_parse_sig("floaty[2]", m, 4) == -1);
    CHECK(sp_lower_parse_sig("f32[1] f32[1]", m, 1) == -1);
    sp_clear_error();
}

int main(void) {
    snprintf(lower_dir, sizeof lower_dir, "%s", __FILE__);
    char *slash = strrchr(lower_dir, '/');
    if (slash) snprintf(slash, sizeof lower_dir - (size_t)(slash - lower_dir), "/lower");
    else snprintf(lower_dir, sizeof lower_dir, "lower");
    RUN(test_mlp_step);
    RUN(test_inplace_rules);
    RUN(test_mutation);
    RUN(test_views);
    RUN(test_not_lowerable);
    RUN(test_runtime_error);
    RUN(test_from_abstract);
    RUN(test_parse_sig);
    return TEST_SUMMARY();
}
