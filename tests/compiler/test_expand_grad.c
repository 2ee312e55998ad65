/*
 * test_expand_grad.c -- gradient expansion (src/ad/expand.c) and the
 * kernel count of issue 4: the gradient of an L-layer MLP, once expanded
 * and optimized, is a straight forward+backward graph.
 *
 * The MLP (L = 3, x @ w + b, relu, mean-squared loss) is written with raw
 * primitive calls (`from spore import prim`), so the expansion resolves
 * every J statically.  Three things are checked:
 *   1. values: main run plainly (run-time J, j.c) and after
 *      expand_grad + the optimizer give the same six gradients;
 *   2. plumbing: after expand_grad + the optimizer, nothing reachable from
 *      main calls J, j_primal, make_closure, closure_keys, call_star,
 *      grad_call or an env builtin, and no K graph is left;
 *   3. kernels: after specialization (sp_specialize, which folds the
 *      rules' shape and dtype logic) and the optimizer again, main is one
 *      straight-line graph whose primitive calls are exactly the multiset
 *      a hand-written backward needs (see expected_kernels), and it still
 *      computes the same gradients.
 * And the same through the functional API: an MLP written with @, +,
 * ops.relu and ops.cross_entropy, whose spore.value_and_grad the
 * specializer expands itself (src/compiler/spec_grad.c), compiles
 * (sp_compile up to the optimizer) to one graph of primitive calls and
 * tuple plumbing only, with the primitives a hand-written backward needs,
 * and gives the run-time grad's values.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/compile.h"
#include "compiler/pass.h"
#include "compiler/specialize.h"
#include "frontend/frontend.h"
#include "ir/ir.h"
#include "ops/ops.h"
#include "runtime/rt.h"
#include "runtime/vm.h"
#include "test.h"

static const char *MLP =
    "import spore\n"
    "from spore import prim\n"
    "\n"
    "def layer(h, w, b):\n"
    "    return prim.relu(prim.add(prim.matmul(h, w), b))\n"
    "\n"
    "def loss(x, y, w1, b1, w2, b2, w3, b3):\n"
    "    h1 = layer(x, w1, b1)\n"
    "    h2 = layer(h1, w2, b2)\n"
    "    o = layer(h2, w3, b3)\n"
    "    d = prim.sub(o, y)\n"
    "    return prim.mean(prim.mul(d, d))\n"
    "\n"
    "def main(x, y, w1, b1, w2, b2, w3, b3):\n"
    "    return spore.grad(loss, grad_position=(2, 3, 4, 5, 6, 7))(x, y, w1, b1, w2, b2, w3, b3)\n";

static const char *OPTIMIZE = "inline,beta,switch_const,tuple_simplify,cse,fold,algebra,dce,env_simplify";

#define N_ARGS 8

/* x[4,5], y[4,3], w1[5,6], b1[6], w2[6,4], b2[4], w3[4,3], b3[3]: values
 * from a fixed sequence, so some relu inputs are negative. */
static void make_args(sp_value **args) {
    static const int64_t shapes[N_ARGS][2] = {{4, 5}, {4, 3}, {5, 6}, {6, 0}, {6, 4}, {4, 0}, {4, 3}, {3, 0}};
    uint32_t s = 12345;
    for (int i = 0; i < N_ARGS; i++) {
        int nd = shapes[i][1] ? 2 : 1;
        int64_t n = shapes[i][0] * (nd == 2 ? shapes[i][1] : 1);
        float buf[64];
        for (int64_t k = 0; k < n; k++) {
            s = s * 1664525u + 1013904223u;
            buf[k] = (float)((s >> 8) % 2001) / 1000.0f - 1.0f;
        }
        sp_tensor *t = sp_tensor_from_data(SP_F32, nd, shapes[i], buf);
        args[i] = t ? sp_value_tensor(t) : NULL;
        sp_tensor_release(t);
    }
}

static sp_module *compile_mlp(void) {
    sp_module *m = sp_frontend_compile("mlp_grad.py", MLP, 0, NULL);
    if (m && ir_module_finalize(m) != SP_OK) {
        sp_module_free(m);
        m = NULL;
    }
    if (!m) fprintf(stderr, "compile: %s\n", sp_last_error());
    return m;
}

/* Element k (row-major) of t as a double. */
static double flat_get(const sp_tensor *t, int64_t k) {
    int64_t idx[8] = {0};
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = k % t->shape[d];
        k /= t->shape[d];
    }
    return sp_tensor_get(t, idx);
}

/* The largest difference between two tuples of tensors, or -1 when their
 * structure differs. */
static double max_diff(const sp_value *a, const sp_value *b) {
    if (!a || !b || a->kind != SP_V_TUPLE || b->kind != SP_V_TUPLE || a->u.seq.n != b->u.seq.n) return -1;
    double m = 0;
    for (int i = 0; i < a->u.seq.n; i++) {
        const sp_value *x = a->u.seq.items[i], *y = b->u.seq.items[i];
        if (x->kind != SP_V_TENSOR || y->kind != SP_V_TENSOR) return -1;
        int64_t n = sp_tensor_numel(x->u.tensor);
        if (n != sp_tensor_numel(y->u.tensor) || x->u.tensor->ndim != y->u.tensor->ndim) return -1;
        for (int64_t k = 0; k < n; k++) {
            double d = fabs(flat_get(x->u.tensor, k) - flat_get(y->u.tensor, k));
            if (d > m) m = d;
        }
    }
    return m;
}

/* ---- what is reachable from main ------------------------------------------- */

typedef struct reach {
    const sp_graph *g[4096];
    int n;
} reach;

static int reached(const reach *r, const sp_graph *g) {
    for (int i = 0; i < r->n; i++)
        if (r->g[i] == g) return 1;
    return 0;
}

static void visit(reach *r, const sp_graph *g) {
    if (reached(r, g) || r->n >= 4096) return;
    r->g[r->n++] = g;
    int n = 0;
    sp_node **nodes = ir_graph_nodes(g, &n);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nodes[i]->n_inputs; k++) {
            const sp_node *x = nodes[i]->inputs[k];
            if (x->kind == SP_NODE_CONST && x->value->kind == SP_V_GRAPH) visit(r, x->value->u.graph);
        }
    if (g->output && g->output->kind == SP_NODE_CONST && g->output->value->kind == SP_V_GRAPH)
        visit(r, g->output->value->u.graph);
    free(nodes);
}

static int is_plumbing(int b) {
    switch (b) {
    case RT_B_J:
    case RT_B_J_PRIMAL:
    case RT_B_MAKE_CLOSURE:
    case RT_B_CLOSURE_KEYS:
    case RT_B_CALL_STAR:
    case RT_B_GRAD_CALL:
    case RT_B_BPROP_TAPE:
    case RT_B_ENV_NEW:
    case RT_B_ENV_GETITEM:
    case RT_B_ENV_SETITEM: return 1;
    default: return 0;
    }
}

/* The number of plumbing calls and of K graphs reachable from main. */
static int count_plumbing(sp_module *m) {
    sp_value *mv = ir_module_get_global(m, "main");
    if (!mv || mv->kind != SP_V_GRAPH) return -1;
    static reach r;
    r.n = 0;
    visit(&r, mv->u.graph);
    int bad = 0;
    for (int i = 0; i < r.n; i++) {
        if (!strncmp(r.g[i]->name, "K.", 2)) {
            fprintf(stderr, "  K graph left: @%s\n", r.g[i]->name);
            bad++;
        }
        int n = 0;
        sp_node **nodes = ir_graph_nodes(r.g[i], &n);
        for (int k = 0; k < n; k++) {
            const sp_node *x = nodes[k];
            if (x->kind != SP_NODE_APPLY || x->inputs[0]->kind != SP_NODE_CONST) continue;
            const sp_value *c = x->inputs[0]->value;
            if (c->kind == SP_V_BUILTIN && is_plumbing(c->u.builtin)) {
                fprintf(stderr, "  plumbing left in @%s: %%%d\n", r.g[i]->name, x->id);
                bad++;
            }
        }
        free(nodes);
    }
    return bad;
}

/* ---- the tests ---------------------------------------------------------------- */

static void test_values_and_plumbing(void) {
    sp_value *args[N_ARGS];
    make_args(args);
    sp_module *plain = compile_mlp(), *opt = compile_mlp();
    CHECK(plain && opt);
    if (!plain || !opt) goto done;
    sp_value *ref = sp_vm_run(plain, "main", N_ARGS, args);
    CHECK(ref != NULL);
    char list[512];
    snprintf(list, sizeof list, "expand_grad,%s", OPTIMIZE);
    CHECK_OK(sp_passes_run(opt, list, 16));
    sp_value *got = sp_vm_run(opt, "main", N_ARGS, args);
    CHECK(got != NULL);
    double d = max_diff(ref, got);
    CHECK(d >= 0 && d < 1e-5);
    if (!(d >= 0 && d < 1e-5)) fprintf(stderr, "  expanded gradients differ by %g (%s)\n", d, got ? "" : sp_last_error());
    sp_value_release(ref);
    sp_value_release(got);
done:
    sp_module_free(plain);
    sp_module_free(opt);
    for (int i = 0; i < N_ARGS; i++) sp_value_release(args[i]);
}

/* What a hand-written forward+backward of the 3-layer MLP needs, as the
 * rules spell it.  The loss value itself is not returned, so its forward
 * mul and mean are dead; everything else:
 *   forward   matmul, add, relu per layer (3 each); sub for d = o - y
 *   seed      ones (dL = 1, sens_of folded by the specializer)
 *   mean      reshape + broadcast_to of dL to d's shape, mul by 1/n
 *   d * d     mul (dout * d, one node for both operands after CSE) and
 *             add (the two operands' contributions summed)
 *   relu      greater (out > 0) and where -- per layer; the masked-out
 *             value is a 0-d constant (the rule writes a Python 0.0), not
 *             a zeros(...) kernel: 3 fewer calls than when the rule
 *             built zeros_like(dout)
 *   + b       sum over the batch (keepdims) and reshape to b's shape --
 *             per layer (the matmul side gets dout itself)
 *   matmul    dw per layer (3), dx for layers 2 and 3 (layer 1's input
 *             gradient is not asked for, so dce drops it), each followed
 *             by a reshape to the operand's own shape (a view; the rule
 *             undoes 1-D lifting with it)
 * Nothing else: no tuple, closure, env or AD builtin, and one make_tuple
 * for the six gradients returned. */
static const struct {
    const char *op;
    int n;
} expected_kernels[] = {
    {"matmul", 8}, {"add", 4},  {"relu", 3},  {"sub", 1},   {"mul", 2},  {"ones", 1},
    {"reshape", 9}, {"broadcast_to", 1}, {"greater", 3}, {"where", 3}, {"sum", 3},
};
#define N_EXPECTED ((int)(sizeof expected_kernels / sizeof expected_kernels[0]))

/* Checks the applies of g against expected_kernels; prints what differs. */
static int kernels_match(const sp_graph *g) {
    int count[SP_OP_COUNT] = {0}, other = 0, n = 0, ok = 1;
    sp_node **nodes = ir_graph_nodes(g, &n);
    for (int i = 0; i < n; i++) {
        const sp_node *x = nodes[i];
        if (x->kind != SP_NODE_APPLY) continue;
        const sp_value *c = x->inputs[0]->kind == SP_NODE_CONST ? x->inputs[0]->value : NULL;
        if (c && c->kind == SP_V_PRIM) count[c->u.prim]++;
        else if (!(c && c->kind == SP_V_BUILTIN && c->u.builtin == RT_B_MAKE_TUPLE && x == g->output)) {
            fprintf(stderr, "  not a kernel: %%%d (%s)\n", x->id, c ? sp_value_kind_name(c) : "a call of a value");
            other++;
        }
    }
    free(nodes);
    for (int op = 0; op < SP_OP_COUNT; op++) {
        int want = 0;
        for (int k = 0; k < N_EXPECTED; k++)
            if (!strcmp(expected_kernels[k].op, sp_op_name(op))) want = expected_kernels[k].n;
        if (count[op] != want) {
            fprintf(stderr, "  %s: %d calls, expected %d\n", sp_op_name(op), count[op], want);
            ok = 0;
        }
    }
    return ok && other == 0;
}

static void test_specialized_kernels(void) {
    sp_value *args[N_ARGS];
    make_args(args);
    sp_module *plain = compile_mlp(), *opt = compile_mlp(), *spec = NULL;
    CHECK(plain && opt);
    if (!plain || !opt) goto done;
    sp_value *ref = sp_vm_run(plain, "main", N_ARGS, args);
    char list[512];
    snprintf(list, sizeof list, "expand_grad,%s", OPTIMIZE);
    CHECK_OK(sp_passes_run(opt, list, 16));
    spec = sp_specialize(opt, "main", N_ARGS, args, NULL);
    CHECK(spec != NULL);
    if (!spec) {
        fprintf(stderr, "  specialize: %s\n", sp_last_error());
        sp_value_release(ref);
        goto done;
    }
    CHECK_OK(sp_passes_run(spec, OPTIMIZE, 16));
    CHECK(count_plumbing(spec) == 0);
    sp_value *mv = ir_module_get_global(spec, "main");
    CHECK(mv && mv->kind == SP_V_GRAPH && kernels_match(mv->u.graph));
    sp_value *got = sp_vm_run(spec, "main", N_ARGS, args);
    double d = max_diff(ref, got);
    CHECK(d >= 0 && d < 1e-5);
    sp_value_release(ref);
    sp_value_release(got);
done:
    sp_module_free(spec);
    sp_module_free(plain);
    sp_module_free(opt);
    for (int i = 0; i < N_ARGS; i++) sp_value_release(args[i]);
}

/* ---- the same MLP through the functional API ------------------------------------- */

static const char *MLP_OPS =
    "import spore\n"
    "from spore import ops\n"
    "\n"
    "def loss(w1, b1, w2, b2, x, y):\n"
    "    return ops.cross_entropy(ops.relu(x @ w1 + b1) @ w2 + b2, y)\n"
    "\n"
    "def main(w1, b1, w2, b2, x, y):\n"
    "    return spore.value_and_grad(loss, grad_position=(0, 1, 2, 3))(w1, b1, w2, b2, x, y)\n";

/* The forward (2 matmul, 2 add, relu, the fused softmax cross-entropy),
 * the seed (ones), cross-entropy's rule (its one fused backward primitive,
 * which takes the seed: it replaced softmax, one_hot, sub, div and mul),
 * each `+ b` (the bias gradient summed over the batch and reshaped),
 * relu's (greater on relu's output, where with a 0-d constant zero: no
 * zeros kernel), the matmuls'
 * (dW2, dh, dW1; dx is not asked for, so dce drops it; each reshaped to
 * its operand's shape by the rule).  Nothing else: no J, env, add_grad,
 * API or Python-operator builtin, and tuples only to return the result. */
static const struct {
    const char *op;
    int n;
} expected_ops_kernels[] = {
    {"matmul", 5}, {"add", 2}, {"relu", 1}, {"sparse_softmax_cross_entropy", 1}, {"ones", 1},
    {"sparse_softmax_cross_entropy_backward", 1},
    {"sum", 2}, {"reshape", 5}, {"greater", 1}, {"where", 1},
};
#define N_EXPECTED_OPS ((int)(sizeof expected_ops_kernels / sizeof expected_ops_kernels[0]))

/* Applies of g: primitive calls counted into count[], make_tuple and
 * tuple_getitem allowed; anything else printed and counted as `other`. */
static int ops_kernels_match(const sp_graph *g) {
    int count[SP_OP_COUNT] = {0}, other = 0, n = 0, ok = 1;
    sp_node **nodes = ir_graph_nodes(g, &n);
    for (int i = 0; i < n; i++) {
        const sp_node *x = nodes[i];
        if (x->kind != SP_NODE_APPLY) continue;
        const sp_value *c = x->inputs[0]->kind == SP_NODE_CONST ? x->inputs[0]->value : NULL;
        if (c && c->kind == SP_V_PRIM) {
            count[c->u.prim]++;
        } else if (!(c && c->kind == SP_V_BUILTIN &&
                     (c->u.builtin == RT_B_MAKE_TUPLE || c->u.builtin == RT_B_TUPLE_GETITEM))) {
            fprintf(stderr, "  not a kernel: %%%d (%s%s)\n", x->id, c ? sp_value_kind_name(c) : "a call of a value",
                    c && c->kind == SP_V_BUILTIN ? " builtin" : "");
            other++;
        }
    }
    free(nodes);
    for (int op = 0; op < SP_OP_COUNT; op++) {
        int want = 0;
        for (int k = 0; k < N_EXPECTED_OPS; k++)
            if (!strcmp(expected_ops_kernels[k].op, sp_op_name(op))) want = expected_ops_kernels[k].n;
        if (count[op] != want) {
            fprintf(stderr, "  %s: %d calls, expected %d\n", sp_op_name(op), count[op], want);
            ok = 0;
        }
    }
    return ok && other == 0;
}

/* Every tensor of a and b (nested tuples) within tol; -1 when their
 * structure differs. */
static double max_diff_deep(const sp_value *a, const sp_value *b, int depth) {
    if (!a || !b || a->kind != b->kind || depth > 8) return -1;
    if (a->kind == SP_V_TENSOR) {
        int64_t n = sp_tensor_numel(a->u.tensor);
        if (n != sp_tensor_numel(b->u.tensor) || a->u.tensor->ndim != b->u.tensor->ndim) return -1;
        double m = 0;
        for (int64_t k = 0; k < n; k++) {
            double d = fabs(flat_get(a->u.tensor, k) - flat_get(b->u.tensor, k));
            if (d > m) m = d;
        }
        return m;
    }
    if (a->kind != SP_V_TUPLE || a->u.seq.n != b->u.seq.n) return -1;
    double m = 0;
    for (int i = 0; i < a->u.seq.n; i++) {
        double d = max_diff_deep(a->u.seq.items[i], b->u.seq.items[i], depth + 1);
        if (d < 0) return -1;
        if (d > m) m = d;
    }
    return m;
}

static void test_api_mlp_kernels(void) {
    static const int64_t shapes[5][2] = {{5, 6}, {6, 0}, {6, 3}, {3, 0}, {4, 5}};
    sp_value *args[6] = {0};
    uint32_t r = 777;
    for (int i = 0; i < 5; i++) {
        int nd = shapes[i][1] ? 2 : 1;
        int64_t n = shapes[i][0] * (nd == 2 ? shapes[i][1] : 1);
        float buf[64];
        for (int64_t k = 0; k < n; k++) {
            r = r * 1664525u + 1013904223u;
            buf[k] = (float)((r >> 8) % 2001) / 1000.0f - 1.0f;
        }
        sp_tensor *t = sp_tensor_from_data(SP_F32, nd, shapes[i], buf);
        args[i] = t ? sp_value_tensor(t) : NULL;
        sp_tensor_release(t);
    }
    int64_t labels[4] = {0, 2, 1, 2}, ls[1] = {4};
    sp_tensor *yt = sp_tensor_from_data(SP_I64, 1, ls, labels);
    args[5] = yt ? sp_value_tensor(yt) : NULL;
    sp_tensor_release(yt);
    sp_module *m = sp_frontend_compile("mlp_ops.py", MLP_OPS, 0, NULL);
    CHECK(m && ir_module_finalize(m) == SP_OK);
    sp_compiled *c = NULL;
    sp_compile_options o;
    memset(&o, 0, sizeof o);
    o.stop_after = "optimize";
    if (m) CHECK_OK(sp_compile(m, "main", 6, args, &o, &c));
    if (!c) fprintf(stderr, "  compile: %s\n", sp_last_error());
    const sp_graph *g = sp_compiled_graph(c);
    CHECK(g && ops_kernels_match(g));
    CHECK(c && sp_compiled_spec_stats(c)->n_grads == 1);
    sp_value *ref = m ? sp_vm_run(m, "main", 6, args) : NULL;
    sp_value *got = c ? sp_compiled_run(c, 6, args) : NULL;
    CHECK(ref && got);
    double d = max_diff_deep(ref, got, 0);
    CHECK(d >= 0 && d < 1e-5);
    if (!(d >= 0 && d < 1e-5)) fprintf(stderr, "  compiled value_and_grad differs by %g\n", d);
    sp_value_release(ref);
    sp_value_release(got);
    sp_compiled_free(c);
    sp_module_free(m);
    for (int i = 0; i < 6; i++) sp_value_release(args[i]);
}

int main(void) {
    RUN(test_values_and_plumbing);
    RUN(test_specialized_kernels);
    RUN(test_api_mlp_kernels);
    return TEST_SUMMARY();
}
