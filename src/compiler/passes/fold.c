/*
 * fold.c -- constant folding: an apply whose callee and arguments are all
 * constants, and whose evaluation is pure and cheap, becomes the constant
 * it evaluates to.
 *
 * The evaluation is the VM's own (rt_builtin_call, rt_prim_call,
 * rt_api_call), so a folded program computes exactly what the unfolded one
 * would.  What may fold:
 *   - builtins on plain data: Python's operators, comparisons, not/truth,
 *     len, getitem/tuple_getitem, getattr (ops.relu becomes the constant
 *     partial(builtin.api, "ops.relu"), x.shape a tuple), make_tuple,
 *     make_list, make_slice, range, min/max/abs, int/float/bool/str/tuple/
 *     list;
 *   - primitives (prim.X and the API's ops.X) that are elementwise, draw no
 *     random numbers and write nothing in place, on constant tensors and
 *     scalars, keyword attributes included;
 *   - ops.tensor / spore.tensor of constant data, and math.* on numbers.
 * Not: print, raise, assert, switch (switch_const's), partial and
 * make_keyword (their constants would change how calls bind and capture),
 * anything on callables, autodiff's builtins.
 *
 * Cost.  Folding runs at compile time, so nothing may be big: tensor
 * arguments and results hold at most FOLD_MAX_ELEMS elements, and the
 * operations whose result can outgrow their arguments (broadcasting,
 * seq * n, range) are measured before they run.  An evaluation that fails
 * (1 // 0, a shape error) is not folded: the error stays for the VM to
 * report at run time with its source line, and the message is cleared.
 *
 * Tensors captured by closures stay computed: spore.grad's `weights` are
 * the tensors a function captures from its enclosing function, found among
 * the closure's free variables, and a constant is not one.  So a value
 * holding a tensor folds only when no nested graph uses the apply.
 *
 * The constant replaces every use of the apply (constants are not ordered
 * among a graph's applies, so effects keep their order); the apply is left
 * for dce.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes_b.h"
#include "ops/ops.h"
#include "runtime/rt.h"

#define FOLD_MAX_ELEMS 4096
#define FOLD_MAX_ARGS 16

/* The number of items a value holds (tensor elements, sequence items,
 * string bytes, recursively), saturating above the limit; -1 when it holds
 * something fold does not handle (callables, keywords, undef, a tensor off
 * the CPU). */
static int64_t data_size(const sp_value *v, int depth) {
    if (!v || depth > 32) return -1;
    switch (v->kind) {
    case SP_V_NONE:
    case SP_V_BOOL:
    case SP_V_INT:
    case SP_V_FLOAT:
    case SP_V_DTYPE:
    case SP_V_ELLIPSIS:
    case SP_V_MODULE: return 1;
    case SP_V_STR: return (int64_t)v->u.str.len + 1;
    case SP_V_TENSOR:
        if (!v->u.tensor->buf || v->u.tensor->buf->device.type != SP_DEVICE_CPU) return -1;
        return sp_tensor_numel(v->u.tensor);
    case SP_V_SLICE: return 3;
    case SP_V_TUPLE:
    case SP_V_LIST: {
        int64_t s = 1;
        for (int i = 0; i < v->u.seq.n && s <= FOLD_MAX_ELEMS; i++) {
            int64_t k = data_size(v->u.seq.items[i], depth + 1);
            if (k < 0) return -1;
            s += k;
        }
        return s;
    }
    default: return -1;
    }
}

static int small_data(const sp_value *v) {
    int64_t s = data_size(v, 0);
    return s >= 0 && s <= FOLD_MAX_ELEMS;
}

/* A result fold may keep: small data, or the partial(builtin.api, name,
 * data...) that getattr of a module or a bound method gives. */
static int foldable_result(const sp_value *v) {
    if (v->kind == SP_V_PARTIAL) {
        const sp_value *f = v->u.partial.fn;
        if (f->kind != SP_V_BUILTIN || f->u.builtin != PB_API) return 0;
        for (int i = 0; i < v->u.partial.n; i++)
            if (!small_data(v->u.partial.args[i])) return 0;
        return 1;
    }
    return v->kind == SP_V_PRIM || small_data(v);
}

/* The number of elements of the numpy broadcast of the tensor and scalar
 * arguments, or -1 when they do not broadcast or another kind is among
 * them.  Scalars are 0-d. */
static int64_t broadcast_numel(int n, sp_value *const *args) {
    int nd = 0;
    int64_t shape[SP_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        const sp_value *v = args[i];
        if (v->kind == SP_V_KEYWORD) continue;
        if (v->kind == SP_V_BOOL || v->kind == SP_V_INT || v->kind == SP_V_FLOAT) continue;
        if (v->kind != SP_V_TENSOR) return -1;
        const sp_tensor *t = v->u.tensor;
        int out_nd = t->ndim > nd ? t->ndim : nd;
        int64_t out[SP_MAX_DIMS];
        for (int k = 0; k < out_nd; k++) {
            int ia = k - (out_nd - nd), ib = k - (out_nd - t->ndim);
            int64_t a = ia >= 0 ? shape[ia] : 1, b = ib >= 0 ? t->shape[ib] : 1;
            if (a != b && a != 1 && b != 1) return -1;
            out[k] = a == 1 ? b : a;
        }
        nd = out_nd;
        memcpy(shape, out, sizeof out[0] * (size_t)nd);
    }
    int64_t numel = 1;
    for (int k = 0; k < nd; k++) {
        if (shape[k] > FOLD_MAX_ELEMS) return FOLD_MAX_ELEMS + 1;
        numel *= shape[k];
        if (numel > FOLD_MAX_ELEMS) return FOLD_MAX_ELEMS + 1;
    }
    return numel;
}

static int is_seq(const sp_value *v) {
    return v->kind == SP_V_STR || v->kind == SP_V_TUPLE || v->kind == SP_V_LIST;
}

static int64_t seq_len(const sp_value *v) {
    return v->kind == SP_V_STR ? (int64_t)v->u.str.len : v->u.seq.n;
}

/* range(args) has at most FOLD_MAX_ELEMS items (and int arguments). */
static int small_range(int n, sp_value *const *args) {
    int64_t a[3] = {0, 0, 1};
    if (n < 1 || n > 3) return 0;
    for (int i = 0; i < n; i++)
        if (args[i]->kind != SP_V_INT) return 0;
    if (n == 1)
        a[1] = args[0]->u.i;
    else
        for (int i = 0; i < n; i++) a[i] = args[i]->u.i;
    if (a[2] == 0) return 0;
    /* |stop - start| / |step| without overflow: compare in long double */
    long double span = (long double)a[1] - (long double)a[0];
    return span / (long double)a[2] <= FOLD_MAX_ELEMS;
}

/* Whether builtin id on args is one fold may evaluate now. */
static int builtin_ok(int id, int n, sp_value *const *args) {
    for (int i = 0; i < n; i++)
        if (!small_data(args[i])) return 0;
    switch (id) {
    case PB_ADD:
    case PB_SUB:
    case PB_TRUEDIV:
    case PB_FLOORDIV:
    case PB_MOD:
    case PB_POW:
    case PB_EQ:
    case PB_NE:
    case PB_LT:
    case PB_LE:
    case PB_GT:
    case PB_GE:
        if (n != 2) return 0;
        if (args[0]->kind == SP_V_TENSOR || args[1]->kind == SP_V_TENSOR) return broadcast_numel(n, args) >= 0 &&
                                                                                 broadcast_numel(n, args) <= FOLD_MAX_ELEMS;
        return 1;
    case PB_MUL:
        if (n != 2) return 0;
        if (args[0]->kind == SP_V_TENSOR || args[1]->kind == SP_V_TENSOR) {
            int64_t k = broadcast_numel(n, args);
            return k >= 0 && k <= FOLD_MAX_ELEMS;
        }
        for (int i = 0; i < 2; i++) /* "ab" * n */
            if (is_seq(args[i])) {
                const sp_value *k = args[1 - i];
                if (k->kind != SP_V_INT && k->kind != SP_V_BOOL) return 1; /* an error at run time */
                int64_t times = k->kind == SP_V_INT ? k->u.i : k->u.b;
                return times <= 0 || (seq_len(args[i]) <= FOLD_MAX_ELEMS / times);
            }
        return 1;
    case PB_IN:
    case PB_NOT_IN:
    case PB_IS:
    case PB_IS_NOT:
    case PB_NEG:
    case PB_POS:
    case PB_NOT:
    case PB_TRUTH:
    case PB_GETITEM:
    case PB_TUPLE_GETITEM:
    case PB_GETATTR:
    case PB_LEN:
    case PB_MIN:
    case PB_MAX:
    case PB_ABS:
    case PB_INT:
    case PB_FLOAT:
    case PB_BOOL:
    case PB_STR:
    case PB_TUPLE:
    case PB_LIST:
    case PB_MAKE_TUPLE:
    case PB_MAKE_LIST:
    case PB_MAKE_SLICE:
    case PB_ZIP:
    case PB_ENUMERATE: return 1;
    case PB_RANGE: return small_range(n, args);
    default: return 0;
    }
}

/* Whether primitive op on args is one fold may evaluate now. */
static int prim_ok(int op, int n, sp_value *const *args) {
    if (op < 0 || op >= SP_OP_COUNT) return 0;
    uint32_t fl = sp_op_defs[op].flags;
    if (!(fl & SP_OPF_ELEMWISE) || (fl & (SP_OPF_RANDOM | SP_OPF_INPLACE)) || sp_op_defs[op].n_out != 1) return 0;
    for (int i = 0; i < n; i++) {
        const sp_value *v = args[i]->kind == SP_V_KEYWORD ? args[i]->u.kw.value : args[i];
        if (!small_data(v)) return 0;
    }
    int64_t k = broadcast_numel(n, args);
    return k >= 0 && k <= FOLD_MAX_ELEMS;
}

static int is_api_name(const sp_value *s, const char *prefix) {
    return s && s->kind == SP_V_STR && strncmp(s->u.str.s, prefix, strlen(prefix)) == 0;
}

/* Evaluates an API function call (args[0] its name) when fold may. */
static sp_value *eval_api(int n, sp_value *const *args) {
    const sp_value *name = args[0];
    if (name->kind != SP_V_STR) return NULL;
    const char *q = name->u.str.s;
    if (!strcmp(q, "ops.tensor") || !strcmp(q, "spore.tensor") || !strcmp(q, "spore.Tensor")) {
        for (int i = 1; i < n; i++) {
            const sp_value *v = args[i]->kind == SP_V_KEYWORD ? args[i]->u.kw.value : args[i];
            if (!small_data(v)) return NULL;
        }
        return rt_api_call(n, args);
    }
    if (is_api_name(name, "math.")) {
        for (int i = 1; i < n; i++)
            if (args[i]->kind != SP_V_INT && args[i]->kind != SP_V_FLOAT && args[i]->kind != SP_V_BOOL) return NULL;
        return rt_api_call(n, args);
    }
    if (is_api_name(name, "ops.")) {
        int op = sp_op_find(q + 4);
        if (op >= 0 && prim_ok(op, n - 1, args + 1)) return rt_api_call(n, args);
    }
    return NULL;
}

/* The value of argument x: a constant's, or the KEYWORD that a
 * make_keyword of two constants makes (new reference); NULL otherwise. */
static sp_value *arg_value(const sp_node *x) {
    if (x->kind == SP_NODE_CONST) {
        if (!x->value || x->value->kind == SP_V_UNDEF || x->value->kind == SP_V_KEYWORD) return NULL;
        sp_value_retain(x->value);
        return x->value;
    }
    if (pass_call_builtin(x) != PB_MAKE_KEYWORD || x->n_inputs != 3) return NULL;
    const sp_value *name = pass_const_value(x->inputs[1]), *v = pass_const_value(x->inputs[2]);
    if (!name || name->kind != SP_V_STR || !v || v->kind == SP_V_UNDEF || v->kind == SP_V_KEYWORD) return NULL;
    return sp_value_keyword(name->u.str.s, (sp_value *)v);
}

/* The folded value of apply x (new reference), or NULL with no error set
 * when x does not fold. */
static sp_value *fold_value(const sp_node *x) {
    const sp_value *f = pass_const_value(x->inputs[0]);
    int n = x->n_inputs - 1;
    if (!f || n > FOLD_MAX_ARGS) return NULL;
    sp_value *args[FOLD_MAX_ARGS + 1];
    int got = 0, n_kw = 0;
    for (; got < n; got++) {
        args[got] = arg_value(x->inputs[1 + got]);
        if (!args[got]) break;
        n_kw += args[got]->kind == SP_V_KEYWORD;
    }
    sp_value *r = NULL;
    if (got == n) {
        if (f->kind == SP_V_BUILTIN && n_kw == 0 && builtin_ok(f->u.builtin, n, args))
            r = rt_builtin_call(f->u.builtin, n, args);
        else if (f->kind == SP_V_BUILTIN && f->u.builtin == PB_API && n >= 1)
            r = eval_api(n, args);
        else if (f->kind == SP_V_PRIM && prim_ok(f->u.prim, n, args))
            r = rt_prim_call(f->u.prim, n, args);
        else if (f->kind == SP_V_PARTIAL && f->u.partial.n == 1 && f->u.partial.fn->kind == SP_V_BUILTIN &&
                 f->u.partial.fn->u.builtin == PB_API) {
            sp_value *all[FOLD_MAX_ARGS + 2];
            all[0] = f->u.partial.args[0];
            memcpy(all + 1, args, sizeof *args * (size_t)n);
            r = eval_api(n + 1, all);
        }
    }
    for (int i = 0; i < got; i++) sp_value_release(args[i]);
    if (r && !foldable_result(r)) {
        sp_value_release(r);
        r = NULL;
    }
    if (!r) sp_clear_error();
    return r;
}

/* Whether v is or holds a tensor. */
static int has_tensor(const sp_value *v, int depth) {
    if (v->kind == SP_V_TENSOR) return 1;
    if ((v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) && depth < 32)
        for (int i = 0; i < v->u.seq.n; i++)
            if (has_tensor(v->u.seq.items[i], depth + 1)) return 1;
    if (v->kind == SP_V_PARTIAL && depth < 32)
        for (int i = 0; i < v->u.partial.n; i++)
            if (has_tensor(v->u.partial.args[i], depth + 1)) return 1;
    return 0;
}

/* Whether a graph nested in x's uses x (a free variable there). */
static int used_by_nested(const pass_users *u, const sp_node *x) {
    int k = 0;
    const pass_use *uses = pass_users_of(u, x, &k);
    for (int i = 0; i < k; i++)
        if (uses[i].graph != x->graph) return 1;
    return 0;
}

sp_status pass_fold(sp_module *m, int *changed) {
    sp_status st = pass_finalize_at_start(m);
    if (st) return st;
    sp_graph **graphs = pass_graphs_outer_first(m);
    if (!graphs) return SP_ERR_NOMEM;
    pass_users *u = pass_users_new(m);
    if (!u) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    for (int i = 0; i < m->n_graphs && !st; i++) {
        sp_graph *g = graphs[i];
        if (!g->output) continue;
        int n = 0;
        sp_node **order = ir_graph_nodes(g, &n);
        if (!order) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            break;
        }
        for (int k = 0; k < n && !st; k++) {
            sp_node *x = order[k];
            if (x->kind != SP_NODE_APPLY || x->n_inputs < 1) continue;
            sp_value *v = fold_value(x);
            if (!v) continue;
            if (has_tensor(v, 0) && used_by_nested(u, x)) {
                sp_value_release(v);
                continue;
            }
            sp_node *c = ir_const_new(g, v, x->loc);
            sp_value_release(v);
            if (!c) {
                st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
                break;
            }
            *changed = 1;
            st = pass_users_replace(u, x, c);
        }
        free(order);
    }
    pass_users_free(u);
    free(graphs);
    return st;
}
