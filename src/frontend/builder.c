/*
 * builder.c -- the AST to Spore's functional IR (SSA by construction).
 *
 * A function body is built statement by statement into a *cursor*: the
 * graph being filled, the environment (source variable -> the node holding
 * its current value) and the pending effects.  There is no mutation in the
 * IR, so assignment only rebinds a name in the environment; every control
 * transfer is a call in tail position, which is what makes `return` inside
 * a branch or a loop simply the output of the graph it is in:
 *
 *   if c: A else: B; rest
 *       cur:  out = switch(c, @if_true, @if_false)()
 *       A and B are built in their own graphs (children of cur); each one
 *       that falls through ends in @if_after(v1, ..., vk), where v1..vk are
 *       the variables either branch assigns (the phis; a variable with no
 *       value on some path gets an SP_V_UNDEF constant there).  `rest` is
 *       built in @if_after, a child of cur, so everything else stays a free
 *       variable.  When neither branch falls through there is no @if_after.
 *
 *   while c: body [else: E]; rest
 *       cur:       out = @while(vals of L)           L = variables assigned
 *       @while(L): out = switch(c, @body, @exit)()       in the loop (+ the
 *       @body:     body, then @while(L) (continue too)  hidden counters of
 *       @exit:     E, then @after(L)                     a for)
 *       @after(L): rest (break jumps here directly)
 *
 *   for x in range(a, b[, k]) with k absent or a literal: a counter from a
 *   to b; any other for: seq = iter, n = len(seq), x = seq[i] for i < n.
 *
 * `a and b`, `a or b`, `x if c else y` and chained comparisons short-circuit
 * through switch over thunks (graphs with no parameters) called in place.
 *
 * Effects.  The VM evaluates what a graph's output depends on, so an
 * expression statement (print(...), a call whose value is dropped) and an
 * assert would vanish, and a call whose value is used only later would run
 * late (after a print that follows it in the source, or drawing random
 * numbers out of order).  So the value of every expression statement, every
 * assert, and every assignment whose right side calls anything but a pure
 * Python builtin is an *effect root*, and the builder threads the roots
 * into the next control transfer: the callee of the tail call (or the
 * returned value) x becomes tuple_getitem(make_tuple(e1, ..., en, x), n).
 * The VM evaluates inputs left to right, so the calls happen in source
 * order, and the call stays in tail position.  Operators, subscripts and
 * attribute reads are not roots: they are pure, and the optimizer may drop
 * roots it proves pure.
 *
 * Names resolve in the order local, enclosing function (a free variable:
 * the node of the enclosing graph, captured by value when the nested def or
 * lambda is evaluated), module global (defs, constants, imports), the
 * resolver, Python's builtins.  A name that a function assigns anywhere is
 * local in all of it, as in Python; reading it where no path has assigned
 * it is an error at compile time.
 *
 * All scratch memory (environments, name lists) lives in one arena freed at
 * the end, so the error paths have nothing to release.  Calls (keyword and
 * star calls, the static check of a call against its callee) and list
 * comprehensions are built in builder_call.c; builder_internal.h is what
 * the two files share.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/builder_internal.h"

/* The builtins a program may name (the rest are the IR's own plumbing). */
static const struct {
    const char *name;
    int id;
} py_builtins[] = {
    {"len", B_LEN},     {"print", B_PRINT},         {"range", B_RANGE}, {"zip", B_ZIP},
    {"enumerate", B_ENUMERATE}, {"min", B_MIN},     {"max", B_MAX},     {"abs", B_ABS},
    {"isinstance", B_ISINSTANCE}, {"int", B_INT},   {"float", B_FLOAT}, {"bool", B_BOOL},
    {"tuple", B_TUPLE}, {"list", B_LIST},           {"str", B_STR},
};

const char *fe_builtin_name(int id) {
    for (size_t i = 0; i < sizeof py_builtins / sizeof py_builtins[0]; i++)
        if (py_builtins[i].id == id) return py_builtins[i].name;
    return NULL;
}

static int names_has(const names *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0) return 1;
    return 0;
}

int fe_names_add(builder *b, names *s, const char *name) {
    if (names_has(s, name)) return 1;
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 8;
        const char **v = salloc(b, (size_t)cap * sizeof *v);
        if (!v) return 0;
        if (s->n) memcpy(v, s->v, (size_t)s->n * sizeof *v);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = name;
    return 1;
}

sp_node *fe_env_get(const env *e, const char *name) {
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->names[i], name) == 0) return e->nodes[i];
    return NULL;
}

int fe_env_set(builder *b, env *e, const char *name, sp_node *node) {
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->names[i], name) == 0) {
            e->nodes[i] = node;
            return 1;
        }
    if (e->n == e->cap) {
        int cap = e->cap ? e->cap * 2 : 8;
        const char **nm = salloc(b, (size_t)cap * sizeof *nm);
        sp_node **nd = salloc(b, (size_t)cap * sizeof *nd);
        if (!nm || !nd) return 0;
        if (e->n) {
            memcpy(nm, e->names, (size_t)e->n * sizeof *nm);
            memcpy(nd, e->nodes, (size_t)e->n * sizeof *nd);
        }
        e->names = nm;
        e->nodes = nd;
        e->cap = cap;
    }
    e->names[e->n] = name;
    e->nodes[e->n] = node;
    e->n++;
    return 1;
}

static int env_copy(builder *b, env *dst, const env *src) {
    memset(dst, 0, sizeof *dst);
    for (int i = 0; i < src->n; i++)
        if (!fe_env_set(b, dst, src->names[i], src->nodes[i])) return 0;
    return 1;
}

int fe_cursor_init(builder *b, cursor *c, sp_graph *g, const env *from) {
    memset(c, 0, sizeof *c);
    c->g = g;
    return from ? env_copy(b, &c->env, from) : 1;
}

static int push_effect(builder *b, cursor *c, sp_node *n) {
    if (c->n_eff == c->cap_eff) {
        int cap = c->cap_eff ? c->cap_eff * 2 : 4;
        sp_node **v = salloc(b, (size_t)cap * sizeof *v);
        if (!v) return 0;
        if (c->n_eff) memcpy(v, c->eff, (size_t)c->n_eff * sizeof *v);
        c->eff = v;
        c->cap_eff = cap;
    }
    c->eff[c->n_eff++] = n;
    return 1;
}

/* ---- node helpers ---------------------------------------------------------- */

static sp_node *kundef(sp_graph *g, sp_loc loc) { return konst(g, sp_value_undef(), loc); }
static sp_node *knone(sp_graph *g, sp_loc loc) { return konst(g, sp_value_none(), loc); }

/* Threads the cursor's pending effects into x (see the essay). */
static sp_node *seal(builder *b, cursor *c, sp_node *x, sp_loc loc) {
    if (!x || c->n_eff == 0) return x;
    int n = c->n_eff;
    sp_node **in = salloc(b, (size_t)(n + 2) * sizeof *in);
    if (!in) return NULL;
    in[0] = kbuiltin(c->g, B_MAKE_TUPLE, loc);
    if (!in[0]) return NULL;
    memcpy(in + 1, c->eff, (size_t)n * sizeof *in);
    in[n + 1] = x;
    sp_node *t = ir_apply_new(c->g, n + 2, in, loc);
    c->n_eff = 0;
    return call2(c->g, B_TUPLE_GETITEM, loc, t, konst(c->g, sp_value_int(n), loc));
}

static const char *qname(builder *b, const char *prefix, const char *what) {
    size_t n = strlen(prefix) + strlen(what) + 2;
    char *s = salloc(b, n);
    if (!s) return NULL;
    snprintf(s, n, "%s.%s", prefix, what);
    return s;
}

sp_graph *fe_new_graph(builder *b, fnctx *fn, const char *what, sp_graph *parent, sp_loc loc) {
    const char *name = qname(b, fn->qname, what);
    return name ? ir_graph_new(b->m, name, parent, loc) : NULL;
}

/* ---- names -------------------------------------------------------------------- */

void fe_collect_targets(builder *b, names *s, const fe_expr *t, int *ok) {
    if (t->kind == FE_E_NAME) {
        if (!fe_names_add(b, s, t->u.name)) *ok = 0;
    } else if (t->kind == FE_E_TUPLE || t->kind == FE_E_LIST) {
        for (int i = 0; i < t->u.seq.n; i++) fe_collect_targets(b, s, t->u.seq.items[i], ok);
    }
}

static const char *import_binding(const fe_stmt *st, int i, char *buf, size_t n) {
    const fe_alias *a = &st->u.import.names[i];
    if (a->asname) return a->asname;
    if (st->kind == FE_S_FROM) return a->name;
    const char *dot = strchr(a->name, '.');
    size_t len = dot ? (size_t)(dot - a->name) : strlen(a->name);
    if (len >= n) len = n - 1;
    memcpy(buf, a->name, len);
    buf[len] = '\0';
    return buf;
}

/* Names a block assigns (not inside nested defs), in order of appearance. */
static void collect_assigned(builder *b, names *s, const fe_block *blk, int *ok) {
    for (int i = 0; i < blk->n; i++) {
        const fe_stmt *st = blk->items[i];
        switch (st->kind) {
        case FE_S_ASSIGN:
            for (int k = 0; k < st->u.assign.n; k++) fe_collect_targets(b, s, st->u.assign.targets[k], ok);
            break;
        case FE_S_AUGASSIGN: fe_collect_targets(b, s, st->u.aug.target, ok); break;
        case FE_S_FOR:
            fe_collect_targets(b, s, st->u.loop.target, ok);
            collect_assigned(b, s, &st->u.loop.body, ok);
            collect_assigned(b, s, &st->u.loop.orelse, ok);
            break;
        case FE_S_IF:
        case FE_S_WHILE:
            collect_assigned(b, s, &st->u.cond.body, ok);
            collect_assigned(b, s, &st->u.cond.orelse, ok);
            break;
        case FE_S_DEF:
            if (!fe_names_add(b, s, st->u.def.name)) *ok = 0;
            break;
        case FE_S_IMPORT:
        case FE_S_FROM:
            for (int k = 0; k < st->u.import.n; k++) {
                char buf[256];
                const char *nm = import_binding(st, k, buf, sizeof buf);
                char *copy = fe_arena_strndup(&b->scratch, nm, strlen(nm));
                if (!copy || !fe_names_add(b, s, copy)) *ok = 0;
            }
            break;
        default: break;
        }
    }
}

/* The module `spore.x` / `math` names, or -1. */
static int module_id(const char *dotted) {
    if (strcmp(dotted, "spore") == 0) return SP_MOD_SPORE;
    if (strcmp(dotted, "spore.ops") == 0) return SP_MOD_OPS;
    if (strcmp(dotted, "spore.nn") == 0) return SP_MOD_NN;
    if (strcmp(dotted, "math") == 0) return SP_MOD_MATH;
    if (strcmp(dotted, "spore.prim") == 0) return SP_MOD_PRIM;
    return -1;
}

/* The value an import binds to alias i of st: a MODULE value (new ref), or
 * NULL with the error set.  *skip is set for `from __future__ import x`. */
static sp_value *import_value(builder *b, const fe_stmt *st, int i, int *skip) {
    const fe_alias *a = &st->u.import.names[i];
    *skip = 0;
    if (st->kind == FE_S_IMPORT) {
        int id = module_id(a->name);
        if (id < 0) {
            sp_error_at(b->m, a->loc, SP_ERR_UNSUPPORTED,
                        "cannot import '%s': Spore programs can import spore, spore.ops, "
                        "spore.nn and math", a->name);
            return NULL;
        }
        if (!a->asname && strchr(a->name, '.')) id = SP_MOD_SPORE; /* `import spore.ops` binds spore */
        return sp_value_module(id);
    }
    const char *mod = st->u.import.module;
    if (strcmp(mod, "__future__") == 0) {
        *skip = 1;
        return NULL;
    }
    if (strcmp(mod, "spore") == 0) {
        if (strcmp(a->name, "ops") == 0) return sp_value_module(SP_MOD_OPS);
        if (strcmp(a->name, "nn") == 0) return sp_value_module(SP_MOD_NN);
        if (strcmp(a->name, "prim") == 0) return sp_value_module(SP_MOD_PRIM);
        sp_error_at(b->m, a->loc, SP_ERR_UNSUPPORTED,
                    "cannot import '%s' from spore: only the modules ops and nn can be imported "
                    "by name (write spore.%s)", a->name, a->name);
        return NULL;
    }
    if (module_id(mod) >= 0)
        sp_error_at(b->m, a->loc, SP_ERR_UNSUPPORTED,
                    "cannot import '%s' from %s: import the module and write %s.%s", a->name, mod,
                    strrchr(mod, '.') ? strrchr(mod, '.') + 1 : mod, a->name);
    else
        sp_error_at(b->m, a->loc, SP_ERR_UNSUPPORTED,
                    "cannot import from '%s': Spore programs can import spore, spore.ops, "
                    "spore.nn and math", mod);
    return NULL;
}

/* ---- compile-time constants (defaults, module-level assignments) ---------- */

static sp_value *const_eval(builder *b, const fe_expr *e);

static sp_value *const_num_binop(int op, const sp_value *x, const sp_value *y) {
    int xi = x->kind == SP_V_INT || x->kind == SP_V_BOOL, yi = y->kind == SP_V_INT || y->kind == SP_V_BOOL;
    int xf = x->kind == SP_V_FLOAT, yf = y->kind == SP_V_FLOAT;
    if (!(xi || xf) || !(yi || yf)) return NULL;
    if (xi && yi) {
        int64_t a = x->kind == SP_V_BOOL ? x->u.b : x->u.i, c = y->kind == SP_V_BOOL ? y->u.b : y->u.i, r;
        switch (op) {
        case FE_T_PLUS: return __builtin_add_overflow(a, c, &r) ? NULL : sp_value_int(r);
        case FE_T_MINUS: return __builtin_sub_overflow(a, c, &r) ? NULL : sp_value_int(r);
        case FE_T_STAR: return __builtin_mul_overflow(a, c, &r) ? NULL : sp_value_int(r);
        case FE_T_SLASH: return c == 0 ? NULL : sp_value_float((double)a / (double)c);
        case FE_T_DSLASH:
        case FE_T_PERCENT: {
            if (c == 0 || (a == INT64_MIN && c == -1)) return NULL;
            int64_t q = a / c, m = a % c;
            if (m != 0 && ((m < 0) != (c < 0))) {
                q -= 1;
                m += c;
            }
            return sp_value_int(op == FE_T_DSLASH ? q : m);
        }
        default: return NULL;
        }
    }
    double a = xf ? x->u.f : (double)(x->kind == SP_V_BOOL ? x->u.b : x->u.i);
    double c = yf ? y->u.f : (double)(y->kind == SP_V_BOOL ? y->u.b : y->u.i);
    switch (op) {
    case FE_T_PLUS: return sp_value_float(a + c);
    case FE_T_MINUS: return sp_value_float(a - c);
    case FE_T_STAR: return sp_value_float(a * c);
    case FE_T_SLASH: return c == 0 ? NULL : sp_value_float(a / c);
    default: return NULL;
    }
}

/* The value of a constant expression (new ref), or NULL when e is not one
 * (no error set: the caller says what it needed). */
static sp_value *const_eval(builder *b, const fe_expr *e) {
    switch (e->kind) {
    case FE_E_INT: return sp_value_int(e->u.i);
    case FE_E_FLOAT: return sp_value_float(e->u.f);
    case FE_E_STR: return sp_value_str(e->u.str.s, e->u.str.len);
    case FE_E_BOOL: return sp_value_bool((int)e->u.i);
    case FE_E_NONE: return sp_value_none();
    case FE_E_ELLIPSIS: return sp_value_ellipsis();
    case FE_E_TUPLE:
    case FE_E_LIST: {
        int n = e->u.seq.n;
        sp_value **items = calloc((size_t)(n ? n : 1), sizeof *items);
        if (!items) return NULL;
        sp_value *r = NULL;
        int i;
        for (i = 0; i < n; i++)
            if (!(items[i] = const_eval(b, e->u.seq.items[i]))) break;
        if (i == n) r = e->kind == FE_E_TUPLE ? sp_value_tuple(n, items) : sp_value_list(n, items);
        for (int k = 0; k < i; k++) sp_value_release(items[k]);
        free(items);
        return r;
    }
    case FE_E_UNARY: {
        if (e->u.op.op != FE_T_MINUS && e->u.op.op != FE_T_PLUS) return NULL;
        sp_value *a = const_eval(b, e->u.op.a), *r = NULL;
        if (!a) return NULL;
        int neg = e->u.op.op == FE_T_MINUS;
        if (a->kind == SP_V_INT && !(neg && a->u.i == INT64_MIN))
            r = sp_value_int(neg ? -a->u.i : a->u.i);
        else if (a->kind == SP_V_FLOAT)
            r = sp_value_float(neg ? -a->u.f : a->u.f);
        sp_value_release(a);
        return r;
    }
    case FE_E_BINARY: {
        sp_value *x = const_eval(b, e->u.op.a);
        sp_value *y = x ? const_eval(b, e->u.op.b) : NULL;
        sp_value *r = x && y ? const_num_binop(e->u.op.op, x, y) : NULL;
        sp_value_release(x);
        sp_value_release(y);
        return r;
    }
    case FE_E_NAME: {
        sp_value *v = ir_module_get_global(b->m, e->u.name);
        if (!v) return NULL;
        sp_value_retain(v);
        return v;
    }
    case FE_E_ATTR: {
        /* spore.float32 and friends: dtypes are constants */
        if (e->u.attr.value->kind != FE_E_NAME) return NULL;
        sp_value *mod = ir_module_get_global(b->m, e->u.attr.value->u.name);
        if (!mod || mod->kind != SP_V_MODULE || mod->u.module == SP_MOD_MATH) return NULL;
        for (int d = 0; d < SP_DTYPE_COUNT; d++)
            if (strcmp(sp_dtype_name((sp_dtype)d), e->u.attr.name) == 0) return sp_value_dtype((sp_dtype)d);
        return NULL;
    }
    default: return NULL;
    }
}

/* ---- expressions --------------------------------------------------------------- */

static sp_graph *build_function(builder *b, fnctx *outer, const env *outer_env, sp_graph *parent,
                                sp_graph *g, const char *name, const fe_params *params,
                                const fe_block *body, const fe_expr *lambda_body, sp_loc loc);

/* A node bound to a name, as c's graph should use it: a constant of
 * another graph is copied into c's graph, so that constants never become
 * free variables (a nested def that calls itself would otherwise capture
 * its own closure). */
static sp_node *localize(sp_graph *g, sp_node *n, sp_loc loc) {
    if (!n || n->kind != SP_NODE_CONST || n->graph == g) return n;
    sp_value_retain(n->value);
    return konst(g, n->value, loc);
}
static sp_node *use_node(cursor *c, sp_node *n, sp_loc loc) { return localize(c->g, n, loc); }

static sp_node *lookup(builder *b, fnctx *fn, cursor *c, const char *name, sp_loc loc) {
    sp_node *n = fe_env_get(&c->env, name);
    if (n) return use_node(c, n, loc);
    if (names_has(&fn->locals, name)) {
        sp_error_at(b->m, loc, SP_ERR_SYNTAX, "local variable '%s' referenced before assignment", name);
        return NULL;
    }
    /* each level keeps the environment its nested def saw */
    for (fnctx *k = fn; k->outer; k = k->outer) {
        fnctx *o = k->outer;
        const env *oe = k->outer_env;
        if (oe && (n = fe_env_get(oe, name))) return use_node(c, n, loc);
        if (names_has(&o->locals, name)) {
            sp_error_at(b->m, loc, SP_ERR_SYNTAX,
                        "free variable '%s' referenced before assignment in enclosing scope", name);
            return NULL;
        }
    }
    sp_value *v = ir_module_get_global(b->m, name);
    if (v) {
        sp_value_retain(v);
        return konst(c->g, v, loc);
    }
    if (b->resolver && b->resolver->resolve) {
        v = b->resolver->resolve(b->resolver->ctx, name);
        if (v) return konst(c->g, v, loc);
    }
    for (size_t i = 0; i < sizeof py_builtins / sizeof py_builtins[0]; i++)
        if (strcmp(py_builtins[i].name, name) == 0) return kbuiltin(c->g, py_builtins[i].id, loc);
    if (b->m->file && strcmp(b->m->file, "<bprop>") == 0) {
        /* the gradient rules (src/ad) may name the autodiff plumbing */
        static const char *const all_names[] = {
#define SP_BUILTIN(ID, nm, n) #nm,
#include "ir/builtins.def"
#undef SP_BUILTIN
        };
        for (int i = B_J; i < B_COUNT; i++)
            if (strcmp(all_names[i], name) == 0) return kbuiltin(c->g, i, loc);
    }
    if (strcmp(name, "Ellipsis") == 0) return konst(c->g, sp_value_ellipsis(), loc);
    sp_error_at(b->m, loc, SP_ERR_SYNTAX, "name '%s' is not defined", name);
    return NULL;
}

static int binop_builtin(int op) {
    switch (op) {
    case FE_T_PLUS: return B_ADD;
    case FE_T_MINUS: return B_SUB;
    case FE_T_STAR: return B_MUL;
    case FE_T_SLASH: return B_TRUEDIV;
    case FE_T_DSLASH: return B_FLOORDIV;
    case FE_T_PERCENT: return B_MOD;
    case FE_T_DSTAR: return B_POW;
    case FE_T_AT: return B_MATMUL;
    case FE_T_LT: return B_LT;
    case FE_T_LE: return B_LE;
    case FE_T_GT: return B_GT;
    case FE_T_GE: return B_GE;
    case FE_T_EQ: return B_EQ;
    case FE_T_NE: return B_NE;
    case FE_T_KW_IS: return B_IS;
    case FE_CMP_IS_NOT: return B_IS_NOT;
    case FE_T_KW_IN: return B_IN;
    case FE_CMP_NOT_IN: return B_NOT_IN;
    default: return -1;
    }
}

static sp_node *op_unsupported(builder *b, int op, sp_loc loc) {
    sp_error_at(b->m, loc, SP_ERR_UNSUPPORTED, "not supported in Spore: the operator '%s'",
                fe_op_text(op));
    return NULL;
}

/* A thunk graph (no params) whose output is e, built with c's environment. */
static sp_graph *thunk(builder *b, fnctx *fn, cursor *c, const char *what, const fe_expr *e,
                       sp_node *value, sp_loc loc) {
    sp_graph *g = fe_new_graph(b, fn, what, c->g, loc);
    if (!g) return NULL;
    if (e) {
        cursor t;
        memset(&t, 0, sizeof t);
        t.g = g;
        t.env = c->env; /* expressions never assign: sharing is safe */
        value = fe_build_expr(b, fn, &t, e);
    }
    value = localize(g, value, loc);
    if (!value) return NULL;
    g->output = value;
    return g;
}

/* switch(cond, g1, g2)() in c. */
static sp_node *branch(sp_graph *in, sp_node *cond, sp_graph *g1, sp_graph *g2, sp_loc loc) {
    if (!cond || !g1 || !g2) return NULL;
    sp_node *sw = call3(in, B_SWITCH, loc, cond, kgraph(in, g1, loc), kgraph(in, g2, loc));
    return call0(in, sw, loc);
}

static sp_node *build_compare(builder *b, fnctx *fn, cursor *c, const fe_expr *e) {
    cursor t = *c;
    sp_node *left = fe_build_expr(b, fn, &t, e->u.cmp.vals[0]), *result = NULL;
    if (!left) return NULL;
    for (int i = 1; i < e->u.cmp.n; i++) {
        int op = e->u.cmp.ops[i - 1];
        sp_node *right = fe_build_expr(b, fn, &t, e->u.cmp.vals[i]);
        sp_node *r = right ? call2(t.g, binop_builtin(op), e->loc, left, right) : NULL;
        if (!r) return NULL;
        sp_node *out = r;
        sp_graph *rest = NULL;
        if (i < e->u.cmp.n - 1) {
            /* a < b < c: c and the second test only when a < b; b once */
            rest = fe_new_graph(b, fn, "cmp_rest", t.g, e->loc);
            sp_graph *no = thunk(b, fn, &t, "cmp_false", NULL, r, e->loc);
            out = branch(t.g, r, rest, no, e->loc);
            if (!out) return NULL;
        }
        if (t.g == c->g)
            result = out;
        else
            t.g->output = out;
        if (!rest) break;
        t.g = rest;
        left = localize(rest, right, e->loc);
        if (!left) return NULL;
    }
    return result;
}

static sp_node *build_index(builder *b, fnctx *fn, cursor *c, const fe_expr *e) {
    if (e->kind == FE_E_SLICE) {
        sp_node *parts[3];
        const fe_expr *src[3] = {e->u.slice.lo, e->u.slice.hi, e->u.slice.step};
        for (int i = 0; i < 3; i++) {
            parts[i] = src[i] ? fe_build_expr(b, fn, c, src[i]) : knone(c->g, e->loc);
            if (!parts[i]) return NULL;
        }
        return call3(c->g, B_MAKE_SLICE, e->loc, parts[0], parts[1], parts[2]);
    }
    if (e->kind == FE_E_TUPLE) {
        int n = e->u.seq.n;
        sp_node **in = salloc(b, (size_t)(n + 1) * sizeof *in);
        if (!in || !(in[0] = kbuiltin(c->g, B_MAKE_TUPLE, e->loc))) return NULL;
        for (int i = 0; i < n; i++)
            if (!(in[i + 1] = build_index(b, fn, c, e->u.seq.items[i]))) return NULL;
        return ir_apply_new(c->g, n + 1, in, e->loc);
    }
    return fe_build_expr(b, fn, c, e);
}

static sp_node *build_seq(builder *b, fnctx *fn, cursor *c, const fe_expr *e, int id) {
    int n = e->u.seq.n;
    sp_node **in = salloc(b, (size_t)(n + 1) * sizeof *in);
    if (!in || !(in[0] = kbuiltin(c->g, id, e->loc))) return NULL;
    for (int i = 0; i < n; i++)
        if (!(in[i + 1] = fe_build_expr(b, fn, c, e->u.seq.items[i]))) return NULL;
    return ir_apply_new(c->g, n + 1, in, e->loc);
}


/* "a.b.c" for an expression that is a name or a chain of attributes of one
 * (the base of the resolver's resolve_attr); 0 for anything else or a path
 * longer than n - 1. */
static int attr_path(const fe_expr *e, char *buf, size_t n) {
    if (e->kind == FE_E_NAME) {
        size_t k = strlen(e->u.name);
        if (k >= n) return 0;
        memcpy(buf, e->u.name, k + 1);
        return 1;
    }
    if (e->kind != FE_E_ATTR || !attr_path(e->u.attr.value, buf, n)) return 0;
    size_t k = strlen(buf), a = strlen(e->u.attr.name);
    if (k + 1 + a >= n) return 0;
    buf[k] = '.';
    memcpy(buf + k + 1, e->u.attr.name, a + 1);
    return 1;
}

sp_node *fe_build_expr(builder *b, fnctx *fn, cursor *c, const fe_expr *e) {
    sp_graph *g = c->g;
    switch (e->kind) {
    case FE_E_NAME: return lookup(b, fn, c, e->u.name, e->loc);
    case FE_E_INT: return konst(g, sp_value_int(e->u.i), e->loc);
    case FE_E_FLOAT: return konst(g, sp_value_float(e->u.f), e->loc);
    case FE_E_STR: return konst(g, sp_value_str(e->u.str.s, e->u.str.len), e->loc);
    case FE_E_BOOL: return konst(g, sp_value_bool((int)e->u.i), e->loc);
    case FE_E_NONE: return knone(g, e->loc);
    case FE_E_ELLIPSIS: return konst(g, sp_value_ellipsis(), e->loc);
    case FE_E_TUPLE: return build_seq(b, fn, c, e, B_MAKE_TUPLE);
    case FE_E_LIST: return build_seq(b, fn, c, e, B_MAKE_LIST);
    case FE_E_ATTR: {
        char path[256];
        if (b->resolver && b->resolver->resolve_attr && attr_path(e->u.attr.value, path, sizeof path)) {
            sp_value *r = b->resolver->resolve_attr(b->resolver->ctx, path, e->u.attr.name);
            if (r) return konst(g, r, e->loc);
        }
        sp_node *v = fe_build_expr(b, fn, c, e->u.attr.value);
        const char *nm = e->u.attr.name;
        return v ? call2(g, B_GETATTR, e->loc, v, konst(g, sp_value_str(nm, strlen(nm)), e->loc)) : NULL;
    }
    case FE_E_SUBSCRIPT: {
        sp_node *v = fe_build_expr(b, fn, c, e->u.sub.value);
        sp_node *i = v ? build_index(b, fn, c, e->u.sub.index) : NULL;
        return i ? call2(g, B_GETITEM, e->loc, v, i) : NULL;
    }
    case FE_E_SLICE:
        sp_error_at(b->m, e->loc, SP_ERR_SYNTAX, "a slice is only allowed inside []");
        return NULL;
    case FE_E_CALL: return fe_build_call(b, fn, c, e);
    case FE_E_UNARY: {
        int op = e->u.op.op;
        if (op == FE_T_TILDE) return op_unsupported(b, op, e->loc);
        /* a negative literal is a constant, as Python's compiler makes it */
        if (op == FE_T_MINUS && e->u.op.a->kind == FE_E_INT)
            return konst(g, sp_value_int(-e->u.op.a->u.i), e->loc);
        if (op == FE_T_MINUS && e->u.op.a->kind == FE_E_FLOAT)
            return konst(g, sp_value_float(-e->u.op.a->u.f), e->loc);
        sp_node *a = fe_build_expr(b, fn, c, e->u.op.a);
        int id = op == FE_T_MINUS ? B_NEG : op == FE_T_PLUS ? B_POS : B_NOT;
        return a ? call1(g, id, e->loc, a) : NULL;
    }
    case FE_E_BINARY: {
        int id = binop_builtin(e->u.op.op);
        if (id < 0) return op_unsupported(b, e->u.op.op, e->loc);
        sp_node *x = fe_build_expr(b, fn, c, e->u.op.a);
        sp_node *y = x ? fe_build_expr(b, fn, c, e->u.op.b) : NULL;
        return y ? call2(g, id, e->loc, x, y) : NULL;
    }
    case FE_E_BOOLOP: {
        /* a and b -> switch(a, {b}, {a})();  a or b -> switch(a, {a}, {b})() */
        sp_node *x = fe_build_expr(b, fn, c, e->u.op.a);
        if (!x) return NULL;
        int is_and = e->u.op.op == FE_T_KW_AND;
        sp_graph *rhs = thunk(b, fn, c, is_and ? "and" : "or", e->u.op.b, NULL, e->loc);
        sp_graph *keep = rhs ? thunk(b, fn, c, is_and ? "and_false" : "or_true", NULL, x, e->loc) : NULL;
        if (!keep) return NULL;
        return is_and ? branch(g, x, rhs, keep, e->loc) : branch(g, x, keep, rhs, e->loc);
    }
    case FE_E_COMPARE: return build_compare(b, fn, c, e);
    case FE_E_IFEXP: {
        sp_node *cond = fe_build_expr(b, fn, c, e->u.ifexp.cond);
        if (!cond) return NULL;
        sp_graph *ga = thunk(b, fn, c, "ifexp_true", e->u.ifexp.a, NULL, e->u.ifexp.a->loc);
        sp_graph *gb = ga ? thunk(b, fn, c, "ifexp_false", e->u.ifexp.b, NULL, e->u.ifexp.b->loc) : NULL;
        return gb ? branch(g, cond, ga, gb, e->loc) : NULL;
    }
    case FE_E_LAMBDA: {
        sp_graph *lg = build_function(b, fn, &c->env, g, NULL, "lambda", &e->u.lambda.params,
                                      NULL, e->u.lambda.body, e->loc);
        return lg ? kgraph(g, lg, e->loc) : NULL;
    }
    case FE_E_LISTCOMP: return fe_build_listcomp(b, fn, c, e);
    }
    return NULL;
}

/* ---- statements ------------------------------------------------------------------ */

/* Where an expression starts in the text: its leftmost primary (the
 * carets of errors about a whole target point there). */
static sp_loc expr_start(const fe_expr *e) {
    for (;;) {
        if (e->kind == FE_E_ATTR)
            e = e->u.attr.value;
        else if (e->kind == FE_E_SUBSCRIPT)
            e = e->u.sub.value;
        else if (e->kind == FE_E_CALL)
            e = e->u.call.fn;
        else
            return e->loc;
    }
}

static int assign_target(builder *b, fnctx *fn, cursor *c, const fe_expr *t, sp_node *v) {
    (void)fn;
    switch (t->kind) {
    case FE_E_NAME:
        if (v->kind == SP_NODE_APPLY && !v->name) v->name = ir_intern(b->m, t->u.name);
        return fe_env_set(b, &c->env, t->u.name, v);
    case FE_E_TUPLE:
    case FE_E_LIST:
        for (int i = 0; i < t->u.seq.n; i++) {
            const fe_expr *it = t->u.seq.items[i];
            sp_node *x = call2(c->g, B_TUPLE_GETITEM, it->loc, v, konst(c->g, sp_value_int(i), it->loc));
            if (!x || !assign_target(b, fn, c, it, x)) return 0;
        }
        return 1;
    case FE_E_ATTR:
        sp_error_at(b->m, expr_start(t), SP_ERR_UNSUPPORTED,
                    "not supported in Spore: assignment to an attribute (values are immutable)");
        return 0;
    case FE_E_SUBSCRIPT:
        sp_error_at(b->m, expr_start(t), SP_ERR_UNSUPPORTED,
                    "not supported in Spore: assignment to a subscript (tensors are immutable; "
                    "use ops.scatter or ops.where)");
        return 0;
    default:
        sp_error_at(b->m, t->loc, SP_ERR_SYNTAX, "cannot assign to this expression");
        return 0;
    }
}

/* Ends c with a tail call of `target` with the values of `vars` (UNDEF
 * where c has none). */
static int jump(builder *b, cursor *c, sp_graph *target, const names *vars, sp_loc loc) {
    sp_node **in = salloc(b, (size_t)(vars->n + 1) * sizeof *in);
    if (!in) return 0;
    for (int i = 0; i < vars->n; i++) {
        in[i + 1] = localize(c->g, fe_env_get(&c->env, vars->v[i]), loc);
        if (!in[i + 1] && !(in[i + 1] = kundef(c->g, loc))) return 0;
    }
    in[0] = seal(b, c, kgraph(c->g, target, loc), loc);
    if (!in[0]) return 0;
    c->g->output = ir_apply_new(c->g, vars->n + 1, in, loc);
    return c->g->output != NULL;
}

/* A graph with one parameter per name of vars; env gets them bound. */
static sp_graph *graph_with_vars(builder *b, fnctx *fn, const char *what, sp_graph *parent,
                                 const names *vars, env *bind, sp_loc loc) {
    sp_graph *g = fe_new_graph(b, fn, what, parent, loc);
    if (!g) return NULL;
    for (int i = 0; i < vars->n; i++) {
        sp_node *p = ir_param_new(g, vars->v[i], loc);
        if (!p || (bind && !fe_env_set(b, bind, vars->v[i], p))) return NULL;
    }
    return g;
}

static int build_block(builder *b, fnctx *fn, cursor *c, const fe_block *blk);

static int build_if(builder *b, fnctx *fn, cursor *c, const fe_stmt *s) {
    sp_node *cond = fe_build_expr(b, fn, c, s->u.cond.cond);
    if (!cond) return -1;
    sp_graph *gt = fe_new_graph(b, fn, "if_true", c->g, s->loc);
    sp_graph *gf = gt ? fe_new_graph(b, fn, "if_false", c->g, s->loc) : NULL;
    if (!gf) return -1;
    sp_node *sw = call3(c->g, B_SWITCH, s->loc, cond, kgraph(c->g, gt, s->loc), kgraph(c->g, gf, s->loc));
    c->g->output = call0(c->g, seal(b, c, sw, s->loc), s->loc);
    if (!c->g->output) return -1;
    cursor ct, cf;
    if (!fe_cursor_init(b, &ct, gt, &c->env) || !fe_cursor_init(b, &cf, gf, &c->env)) return -1;
    int rt = build_block(b, fn, &ct, &s->u.cond.body);
    if (rt < 0) return -1;
    int rf = build_block(b, fn, &cf, &s->u.cond.orelse);
    if (rf < 0) return -1;
    if (!rt && !rf) return 0;
    names phi = {0};
    int ok = 1;
    collect_assigned(b, &phi, &s->u.cond.body, &ok);
    collect_assigned(b, &phi, &s->u.cond.orelse, &ok);
    if (!ok) return -1;
    env after_env;
    if (!env_copy(b, &after_env, &c->env)) return -1;
    sp_graph *k = graph_with_vars(b, fn, "if_after", c->g, &phi, &after_env, s->loc);
    if (!k) return -1;
    if (rt && !jump(b, &ct, k, &phi, s->loc)) return -1;
    if (rf && !jump(b, &cf, k, &phi, s->loc)) return -1;
    c->g = k;
    c->env = after_env;
    c->n_eff = 0;
    return 1;
}

/* The hidden counter of a for loop: a name no source variable can have. */
const char *fe_hidden_name(builder *b, const char *what) {
    static const char prefix[] = "for.";
    size_t n = sizeof prefix + strlen(what) + 16;
    char *s = salloc(b, n);
    if (s) snprintf(s, n, "%s%s.%d", prefix, what, b->m->next_id);
    return s;
}

/* The literal int value of e (a possibly negated INT), in *v. */
static int literal_int(const fe_expr *e, int64_t *v) {
    if (e->kind == FE_E_INT) {
        *v = e->u.i;
        return 1;
    }
    if (e->kind == FE_E_UNARY && e->u.op.op == FE_T_MINUS && e->u.op.a->kind == FE_E_INT) {
        *v = -e->u.op.a->u.i;
        return 1;
    }
    return 0;
}

/* while and for: see the essay.  For a `for`, s->kind == FE_S_FOR. */
int fe_build_loop(builder *b, fnctx *fn, cursor *c, const fe_stmt *s) {
    int is_for = s->kind == FE_S_FOR;
    const fe_block *body = is_for ? &s->u.loop.body : &s->u.cond.body;
    const fe_block *orelse = is_for ? &s->u.loop.orelse : &s->u.cond.orelse;
    sp_loc loc = s->loc;
    names vars = {0};
    int ok = 1;

    /* for: evaluate the iterable once, before the loop */
    const char *ivar = NULL;
    sp_node *stop = NULL, *seq = NULL, *step = NULL;
    int64_t step_v = 1;
    int counted = 0;
    if (is_for) {
        const fe_expr *it = s->u.loop.iter;
        if (it->kind == FE_E_CALL && it->u.call.fn->kind == FE_E_NAME &&
            strcmp(it->u.call.fn->u.name, "range") == 0 && it->u.call.n >= 1 && it->u.call.n <= 3 &&
            !fe_env_get(&c->env, "range") && !names_has(&fn->locals, "range") &&
            !ir_module_get_global(b->m, "range")) {
            int plain = 1;
            for (int i = 0; i < it->u.call.n; i++) plain &= it->u.call.kw[i] == NULL;
            if (it->u.call.n == 3 && !(literal_int(it->u.call.args[2], &step_v) && step_v != 0)) plain = 0;
            counted = plain;
        }
        sp_node *start;
        if (counted) {
            int n = it->u.call.n;
            start = n == 1 ? konst(c->g, sp_value_int(0), it->loc) : fe_build_expr(b, fn, c, it->u.call.args[0]);
            stop = start ? fe_build_expr(b, fn, c, it->u.call.args[n == 1 ? 0 : 1]) : NULL;
            step = stop ? konst(c->g, sp_value_int(step_v), it->loc) : NULL;
            if (!step) return -1;
        } else {
            seq = fe_build_expr(b, fn, c, it);
            stop = seq ? call1(c->g, B_LEN, it->loc, seq) : NULL;
            start = stop ? konst(c->g, sp_value_int(0), it->loc) : NULL;
            if (!start) return -1;
        }
        ivar = fe_hidden_name(b, "i");
        if (!ivar || !fe_names_add(b, &vars, ivar) || !fe_env_set(b, &c->env, ivar, start)) return -1;
        fe_collect_targets(b, &vars, s->u.loop.target, &ok);
    }
    collect_assigned(b, &vars, body, &ok);
    collect_assigned(b, &vars, orelse, &ok);
    if (!ok) return -1;

    env head_env, after_env;
    if (!env_copy(b, &head_env, &c->env) || !env_copy(b, &after_env, &c->env)) return -1;
    sp_graph *head = graph_with_vars(b, fn, is_for ? "for" : "while", c->g, &vars, &head_env, loc);
    sp_graph *after = head ? graph_with_vars(b, fn, is_for ? "for_after" : "while_after", c->g,
                                             &vars, &after_env, loc) : NULL;
    if (!after || !jump(b, c, head, &vars, loc)) return -1;

    /* the header: the test, then the switch */
    cursor hc;
    memset(&hc, 0, sizeof hc);
    hc.g = head;
    hc.env = head_env;
    sp_node *cond;
    if (is_for) {
        sp_node *i = fe_env_get(&hc.env, ivar);
        cond = call2(head, counted && step_v < 0 ? B_GT : B_LT, loc, i, localize(head, stop, loc));
    } else {
        cond = fe_build_expr(b, fn, &hc, s->u.cond.cond);
    }
    if (!cond) return -1;
    sp_graph *gbody = fe_new_graph(b, fn, is_for ? "for_body" : "while_body", head, loc);
    sp_graph *gexit = gbody ? fe_new_graph(b, fn, is_for ? "for_exit" : "while_exit", head, loc) : NULL;
    if (!gexit) return -1;
    head->output = branch(head, cond, gbody, gexit, loc);
    if (!head->output) return -1;

    loopctx lc = {fn->loop, head, after, vars};
    cursor bc, ec;
    if (!fe_cursor_init(b, &bc, gbody, &hc.env) || !fe_cursor_init(b, &ec, gexit, &hc.env)) return -1;
    if (is_for) {
        sp_node *i = fe_env_get(&bc.env, ivar), *x, *next;
        sp_loc tloc = s->u.loop.target->loc;
        if (counted) {
            x = i;
            next = call2(gbody, B_ADD, loc, i, localize(gbody, step, loc));
        } else {
            x = call2(gbody, B_GETITEM, tloc, localize(gbody, seq, tloc), i);
            next = call2(gbody, B_ADD, loc, i, konst(gbody, sp_value_int(1), loc));
        }
        if (!x || !next || !fe_env_set(b, &bc.env, ivar, next) ||
            !assign_target(b, fn, &bc, s->u.loop.target, x))
            return -1;
    }
    fn->loop = &lc;
    int rb = build_block(b, fn, &bc, body);
    fn->loop = lc.outer;
    if (rb < 0 || (rb && !jump(b, &bc, head, &vars, loc))) return -1;
    int re = build_block(b, fn, &ec, orelse);
    if (re < 0 || (re && !jump(b, &ec, after, &vars, loc))) return -1;
    c->g = after;
    c->env = after_env;
    c->n_eff = 0;
    return 1;
}

static int build_def(builder *b, fnctx *fn, cursor *c, const fe_stmt *s) {
    const char *name = s->u.def.name;
    /* bind the name first so the function can call itself */
    sp_graph *g = fe_new_graph(b, fn, name, c->g, s->loc);
    sp_node *k = g ? kgraph(c->g, g, s->loc) : NULL;
    if (!k || !fe_env_set(b, &c->env, name, k)) return -1;
    g = build_function(b, fn, &c->env, c->g, g, name, &s->u.def.params, &s->u.def.body, NULL,
                       s->loc);
    return g ? 1 : -1;
}

/* Whether evaluating e may have effects whose order matters: it calls
 * something other than a pure Python builtin (a user function may print,
 * ops.randn draws from the generator).  Lambda bodies do not run here. */
static int has_call(builder *b, fnctx *fn, cursor *c, const fe_expr *e) {
    switch (e->kind) {
    case FE_E_CALL: {
        const fe_expr *f = e->u.call.fn;
        int pure = 0;
        if (f->kind == FE_E_NAME && strcmp(f->u.name, "print") != 0 && !fe_env_get(&c->env, f->u.name) &&
            !names_has(&fn->locals, f->u.name) && !ir_module_get_global(b->m, f->u.name)) {
            for (size_t i = 0; i < sizeof py_builtins / sizeof py_builtins[0]; i++)
                pure |= strcmp(py_builtins[i].name, f->u.name) == 0;
        }
        if (!pure) return 1;
        for (int i = 0; i < e->u.call.n; i++)
            if (has_call(b, fn, c, e->u.call.args[i])) return 1;
        return 0;
    }
    case FE_E_TUPLE:
    case FE_E_LIST:
        for (int i = 0; i < e->u.seq.n; i++)
            if (has_call(b, fn, c, e->u.seq.items[i])) return 1;
        return 0;
    case FE_E_ATTR: return has_call(b, fn, c, e->u.attr.value);
    case FE_E_SUBSCRIPT: return has_call(b, fn, c, e->u.sub.value) || has_call(b, fn, c, e->u.sub.index);
    case FE_E_SLICE:
        return (e->u.slice.lo && has_call(b, fn, c, e->u.slice.lo)) ||
               (e->u.slice.hi && has_call(b, fn, c, e->u.slice.hi)) ||
               (e->u.slice.step && has_call(b, fn, c, e->u.slice.step));
    case FE_E_UNARY: return has_call(b, fn, c, e->u.op.a);
    case FE_E_BINARY:
    case FE_E_BOOLOP: return has_call(b, fn, c, e->u.op.a) || has_call(b, fn, c, e->u.op.b);
    case FE_E_COMPARE:
        for (int i = 0; i < e->u.cmp.n; i++)
            if (has_call(b, fn, c, e->u.cmp.vals[i])) return 1;
        return 0;
    case FE_E_IFEXP:
        return has_call(b, fn, c, e->u.ifexp.cond) || has_call(b, fn, c, e->u.ifexp.a) ||
               has_call(b, fn, c, e->u.ifexp.b);
    case FE_E_LISTCOMP:
        return has_call(b, fn, c, e->u.comp.elt) || has_call(b, fn, c, e->u.comp.iter) ||
               (e->u.comp.cond && has_call(b, fn, c, e->u.comp.cond));
    default: return 0;
    }
}

static int build_stmt(builder *b, fnctx *fn, cursor *c, const fe_stmt *s) {
    switch (s->kind) {
    case FE_S_EXPR: {
        const fe_expr *e = s->u.expr;
        if (e->kind == FE_E_STR || e->kind == FE_E_NAME || e->kind == FE_E_INT ||
            e->kind == FE_E_FLOAT || e->kind == FE_E_NONE || e->kind == FE_E_ELLIPSIS ||
            e->kind == FE_E_BOOL) {
            /* docstrings and bare names: nothing to run, but a bare name must exist */
            if (e->kind == FE_E_NAME && !lookup(b, fn, c, e->u.name, e->loc)) return -1;
            return 1;
        }
        sp_node *v = fe_build_expr(b, fn, c, e);
        if (!v) return -1;
        if (v->kind == SP_NODE_APPLY && !push_effect(b, c, v)) return -1;
        return 1;
    }
    case FE_S_ASSIGN: {
        int ordered = has_call(b, fn, c, s->u.assign.value);
        sp_node *v = fe_build_expr(b, fn, c, s->u.assign.value);
        if (!v) return -1;
        /* a call's effects happen here, in source order, used or not */
        if (ordered && v->kind == SP_NODE_APPLY && !push_effect(b, c, v)) return -1;
        for (int i = 0; i < s->u.assign.n; i++)
            if (!assign_target(b, fn, c, s->u.assign.targets[i], v)) return -1;
        return 1;
    }
    case FE_S_AUGASSIGN: {
        const fe_expr *t = s->u.aug.target;
        if (t->kind != FE_E_NAME) return assign_target(b, fn, c, t, NULL) ? 1 : -1;
        int id = binop_builtin(s->u.aug.op);
        if (id < 0) return op_unsupported(b, s->u.aug.op, s->loc) ? 1 : -1;
        int ordered = has_call(b, fn, c, s->u.aug.value);
        sp_node *x = lookup(b, fn, c, t->u.name, t->loc);
        sp_node *y = x ? fe_build_expr(b, fn, c, s->u.aug.value) : NULL;
        sp_node *r = y ? call2(c->g, id, s->loc, x, y) : NULL;
        if (r && ordered && !push_effect(b, c, r)) return -1;
        return r && assign_target(b, fn, c, t, r) ? 1 : -1;
    }
    case FE_S_RETURN: {
        sp_node *v = s->u.expr ? fe_build_expr(b, fn, c, s->u.expr) : knone(c->g, s->loc);
        c->g->output = seal(b, c, v, s->loc);
        return c->g->output ? 0 : -1;
    }
    case FE_S_RAISE: {
        sp_node *msg;
        const fe_expr *e = s->u.expr;
        if (!e) {
            msg = konst(c->g, sp_value_str("exception", 9), s->loc);
        } else if (e->kind == FE_E_CALL && e->u.call.n >= 1 && !e->u.call.kw[0]) {
            msg = fe_build_expr(b, fn, c, e->u.call.args[0]); /* raise ValueError("...") */
        } else if (e->kind == FE_E_CALL && e->u.call.fn->kind == FE_E_NAME) {
            msg = konst(c->g, sp_value_str(e->u.call.fn->u.name, strlen(e->u.call.fn->u.name)), s->loc);
        } else {
            msg = fe_build_expr(b, fn, c, e);
        }
        sp_node *r = msg ? call1(c->g, B_RAISE, s->loc, msg) : NULL;
        c->g->output = seal(b, c, r, s->loc);
        return c->g->output ? 0 : -1;
    }
    case FE_S_ASSERT: {
        sp_node *cond = fe_build_expr(b, fn, c, s->u.assert_.cond);
        sp_node *msg = !cond ? NULL
                       : s->u.assert_.msg ? fe_build_expr(b, fn, c, s->u.assert_.msg)
                                          : knone(c->g, s->loc);
        sp_node *r = msg ? call2(c->g, B_ASSERT, s->loc, cond, msg) : NULL;
        return r && push_effect(b, c, r) ? 1 : -1;
    }
    case FE_S_PASS: return 1;
    case FE_S_BREAK:
    case FE_S_CONTINUE: {
        loopctx *l = fn->loop;
        if (!l) { /* the parser rejects these; keep the builder safe anyway */
            sp_error_at(b->m, s->loc, SP_ERR_SYNTAX, "'%s' outside loop",
                        s->kind == FE_S_BREAK ? "break" : "continue");
            return -1;
        }
        return jump(b, c, s->kind == FE_S_BREAK ? l->after : l->head, &l->vars, s->loc) ? 0 : -1;
    }
    case FE_S_IF: return build_if(b, fn, c, s);
    case FE_S_WHILE:
    case FE_S_FOR: return fe_build_loop(b, fn, c, s);
    case FE_S_DEF: return build_def(b, fn, c, s);
    case FE_S_IMPORT:
    case FE_S_FROM:
        for (int i = 0; i < s->u.import.n; i++) {
            int skip;
            sp_value *v = import_value(b, s, i, &skip);
            if (skip) continue;
            char buf[256];
            const char *nm = import_binding(s, i, buf, sizeof buf);
            char *copy = fe_arena_strndup(&b->scratch, nm, strlen(nm));
            sp_node *k = copy ? konst(c->g, v, s->u.import.names[i].loc) : NULL;
            if (!k || !fe_env_set(b, &c->env, copy, k)) return -1;
        }
        return 1;
    }
    return -1;
}

/* 1: falls through (c may now be a continuation), 0: ended by a transfer
 * (the rest of the block is unreachable and not built), -1: error. */
static int build_block(builder *b, fnctx *fn, cursor *c, const fe_block *blk) {
    for (int i = 0; i < blk->n; i++) {
        int r = build_stmt(b, fn, c, blk->items[i]);
        if (r <= 0) return r;
    }
    return 1;
}

/* ---- functions ---------------------------------------------------------------- */

/* Fills graph g (made by the caller, or made here when g is NULL) with a
 * function: parameters with defaults, then the body or lambda expression. */
static sp_graph *build_function(builder *b, fnctx *outer, const env *outer_env, sp_graph *parent,
                                sp_graph *g, const char *name, const fe_params *params,
                                const fe_block *body, const fe_expr *lambda_body, sp_loc loc) {
    fnctx fn;
    memset(&fn, 0, sizeof fn);
    fn.outer = outer;
    fn.outer_env = outer_env;
    fn.qname = outer ? qname(b, outer->qname, name) : name;
    if (!fn.qname) return NULL;
    if (!g) {
        g = ir_graph_new(b->m, fn.qname, parent, loc);
        if (!g) return NULL;
    }
    cursor c;
    memset(&c, 0, sizeof c);
    c.g = g;
    for (int i = 0; i < params->n; i++) {
        const fe_param *p = &params->items[i];
        sp_node *pn = ir_param_new(g, p->name, p->loc);
        if (!pn || !fe_env_set(b, &c.env, p->name, pn) || !fe_names_add(b, &fn.locals, p->name)) return NULL;
        if (p->def) {
            sp_value *v = const_eval(b, p->def);
            if (!v) {
                sp_error_at(b->m, p->def->loc, SP_ERR_UNSUPPORTED,
                            "not supported in Spore: a default value that is not a constant "
                            "(literals, tuples of them, module-level constants, spore dtypes)");
                return NULL;
            }
            g->defaults[i] = v;
        }
    }
    g->has_varargs = params->has_varargs;
    if (lambda_body) {
        g->output = fe_build_expr(b, &fn, &c, lambda_body);
        return g->output ? g : NULL;
    }
    int ok = 1;
    collect_assigned(b, &fn.locals, body, &ok);
    if (!ok) return NULL;
    int r = build_block(b, &fn, &c, body);
    if (r < 0) return NULL;
    if (r == 1) {
        c.g->output = seal(b, &c, knone(c.g, loc), loc);
        if (!c.g->output) return NULL;
    }
    return g;
}

/* ---- the module ------------------------------------------------------------------ */

static int is_main_guard(const fe_stmt *s) {
    if (s->kind != FE_S_IF) return 0;
    const fe_expr *c = s->u.cond.cond;
    return c->kind == FE_E_COMPARE && c->u.cmp.n == 2 && c->u.cmp.ops[0] == FE_T_EQ &&
           c->u.cmp.vals[0]->kind == FE_E_NAME && strcmp(c->u.cmp.vals[0]->u.name, "__name__") == 0;
}

static sp_status set_global(builder *b, const char *name, sp_value *v) {
    if (!v) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    sp_status st = ir_module_set_global(b->m, name, v);
    sp_value_release(v);
    return st;
}

/* Module-level statements: defs (graphs made first so that functions can
 * call each other in any order), imports, constant assignments. */
sp_status fe_build(sp_module *m, const fe_block *blk, const sp_resolver *resolver) {
    builder b;
    memset(&b, 0, sizeof b);
    b.m = m;
    b.resolver = resolver;
    sp_status st = SP_OK;
    sp_graph **graphs = NULL;
    if (blk->n) {
        graphs = calloc((size_t)blk->n, sizeof *graphs);
        if (!graphs) return sp_error(SP_ERR_NOMEM, "front end: out of memory");
    }
    for (int i = 0; i < blk->n && !st; i++) {
        const fe_stmt *s = blk->items[i];
        switch (s->kind) {
        case FE_S_DEF:
            graphs[i] = ir_graph_new(m, s->u.def.name, NULL, s->loc);
            st = graphs[i] ? set_global(&b, s->u.def.name, sp_value_graph(graphs[i])) : SP_ERR_NOMEM;
            break;
        case FE_S_IMPORT:
        case FE_S_FROM:
            for (int k = 0; k < s->u.import.n && !st; k++) {
                int skip;
                sp_value *v = import_value(&b, s, k, &skip);
                if (skip) continue;
                char buf[256];
                st = v ? set_global(&b, import_binding(s, k, buf, sizeof buf), v) : sp_last_status();
            }
            break;
        case FE_S_ASSIGN: {
            const fe_expr *val = s->u.assign.value;
            sp_value *v = NULL;
            if (val->kind == FE_E_LAMBDA && s->u.assign.n == 1 &&
                s->u.assign.targets[0]->kind == FE_E_NAME) {
                graphs[i] = ir_graph_new(m, s->u.assign.targets[0]->u.name, NULL, s->loc);
                v = graphs[i] ? sp_value_graph(graphs[i]) : NULL;
            } else {
                v = const_eval(&b, val);
            }
            if (!v) {
                if (!graphs[i])
                    st = sp_error_at(m, val->loc, SP_ERR_UNSUPPORTED,
                                     "not supported in Spore: a module-level assignment of a value "
                                     "that is not a constant (compute it inside a function)");
                else
                    st = SP_ERR_NOMEM;
                break;
            }
            for (int k = 0; k < s->u.assign.n && !st; k++) {
                const fe_expr *t = s->u.assign.targets[k];
                if (t->kind != FE_E_NAME) {
                    st = sp_error_at(m, t->loc, SP_ERR_UNSUPPORTED,
                                     "not supported in Spore: module-level assignment to anything "
                                     "but a name");
                    break;
                }
                sp_value_retain(v);
                st = set_global(&b, t->u.name, v);
            }
            sp_value_release(v);
            break;
        }
        case FE_S_EXPR:
            if (s->u.expr->kind == FE_E_STR) break; /* the module docstring */
            /* fall through */
        default:
            if (s->kind == FE_S_PASS || is_main_guard(s)) break;
            st = sp_error_at(m, s->loc, SP_ERR_UNSUPPORTED,
                             "not supported in Spore: statements at module level other than "
                             "imports, defs and constant assignments (put them in a function)");
            break;
        }
    }
    for (int i = 0; i < blk->n && !st; i++) {
        const fe_stmt *s = blk->items[i];
        if (!graphs[i]) continue;
        sp_graph *g;
        if (s->kind == FE_S_DEF)
            g = build_function(&b, NULL, NULL, NULL, graphs[i], s->u.def.name, &s->u.def.params,
                               &s->u.def.body, NULL, s->loc);
        else
            g = build_function(&b, NULL, NULL, NULL, graphs[i], s->u.assign.targets[0]->u.name,
                               &s->u.assign.value->u.lambda.params, NULL,
                               s->u.assign.value->u.lambda.body, s->loc);
        if (!g) st = sp_last_status() ? sp_last_status() : SP_ERR_INTERNAL;
    }
    for (int i = 0; i < b.n_calls && !st; i++) st = fe_check_call(&b, &b.calls[i]);
    free(graphs);
    fe_arena_free(&b.scratch);
    return st;
}
