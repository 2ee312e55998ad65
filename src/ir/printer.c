/*
 * printer.c -- the IR as text, one line per node.
 *
 *   global main = @main
 *
 *   graph @main(%1 x, %2 y = 2.5, *%3 rest) {  # f.py:1:1
 *     %4 a = prim.add(%1, %2)  # f.py:2:12
 *     %5 = builtin.switch(%4, @main.if_true.1, @main.if_false.2)
 *     %6 = %5()
 *     return %6
 *   }
 *
 *   graph @main.if_true.1() parent @main {
 *     return %4
 *   }
 *
 * The text is canonical, which is what makes print -> parse -> print give
 * the same bytes: nodes are renumbered %1, %2, ... over the whole module
 * (graphs in module order; in each, its params, then its nodes in the
 * evaluation order of ir_graph_nodes: depth-first from the output, the
 * free variables a closure needs before the call that makes it; then any
 * node only a dead graph uses), constants print inline where they are used
 * (ids and locations of constant nodes are not part of the text), and
 * every constant is written so that it reads back exactly: floats in
 * their shortest round-trip form, strings with escapes, tensors with their
 * dtype, shape and every element.  Graph labels are graph names, with a
 * "~k" suffix when several graphs share a name; names that are not plain
 * identifiers print as quoted strings.  Dead nodes (used by no graph's
 * output or free variable) do not print.
 *
 * The printer never fails on a broken module (the verifier's job is to
 * say what is wrong): a node it cannot number prints as %?, which the
 * parser then rejects.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ir/ir_internal.h"

#define PRINT_MAX_DEPTH 100

static const char *builtin_names[] = {
#define SP_BUILTIN(ID, name, n) #name,
#include "ir/builtins.def"
#undef SP_BUILTIN
};
#define N_BUILTINS ((int)(sizeof builtin_names / sizeof builtin_names[0]))

static const char *module_names[] = {"spore", "ops", "nn", "math", "prim"};

typedef struct pr_ctx {
    const sp_module *m;
    ir_map gidx;     /* graph -> index + 1 */
    ir_map num;      /* node -> printed number */
    char **labels;   /* per graph: its printed label (without '@') */
    sp_node ***order; /* per graph: own nodes, dependency order */
    int *n_order, *cap_order;
    int status;      /* first error met */
} pr_ctx;

static int is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '<';
}

static int is_name_char(unsigned char c) {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '>';
}

/* Nonzero when s can print bare (as a name or a label). */
static int is_bare(const char *s) {
    if (!s || !is_name_start((unsigned char)s[0])) return 0;
    if (strcmp(s, "inf") == 0 || strcmp(s, "nan") == 0) return 0; /* they read as floats */
    for (const char *p = s + 1; *p; p++)
        if (!is_name_char((unsigned char)*p)) return 0;
    return 1;
}

static void put_name(ir_buf *b, const char *s) {
    if (is_bare(s)) ir_buf_puts(b, s);
    else ir_buf_put_quoted(b, s, strlen(s), 0);
}

/* ---- order and numbering ------------------------------------------------ */

typedef struct pr_order_ctx {
    pr_ctx *c;
    int gi;           /* graph being walked */
    int *fv_n;        /* free variables from ir_fv_compute, or NULL */
    sp_node ***fv;
    sp_node ***roots; /* per graph: nodes other graphs use, queued */
    int *n_roots, *cap_roots;
    ir_map queued;
} pr_order_ctx;

static int list_push(sp_node ***a, int *n, int *cap, sp_node *x) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 16;
        sp_node **p = realloc(*a, sizeof *p * (size_t)nc);
        if (!p) return sp_error(SP_ERR_NOMEM, "out of memory printing IR");
        *a = p;
        *cap = nc;
    }
    (*a)[(*n)++] = x;
    return 0;
}

static int po_node(void *ctx, sp_node *n) {
    pr_order_ctx *o = ctx;
    pr_ctx *c = o->c;
    if (n->kind != SP_NODE_APPLY) return 0;
    return list_push(&c->order[o->gi], &c->n_order[o->gi], &c->cap_order[o->gi], n);
}

/* A node of another graph: queue it as a root of its owner's walk, so that
 * a node used only by a dead graph still prints. */
static int po_free(void *ctx, sp_node *user, sp_node *x) {
    pr_order_ctx *o = ctx;
    (void)user;
    if (!x) return 0;
    int oi = (int)(uintptr_t)ir_map_get(&o->c->gidx, IR_PKEY(x->graph)) - 1;
    if (oi < 0 || ir_map_get(&o->queued, IR_PKEY(x))) return 0;
    if (ir_map_put(&o->queued, IR_PKEY(x), (void *)1)) return SP_ERR_NOMEM;
    return list_push(&o->roots[oi], &o->n_roots[oi], &o->cap_roots[oi], x);
}

static sp_node **po_fv(void *ctx, const sp_graph *h, int *n) {
    pr_order_ctx *o = ctx;
    int hi = o->fv ? (int)(uintptr_t)ir_map_get(&o->c->gidx, IR_PKEY(h)) - 1 : -1;
    *n = hi >= 0 ? o->fv_n[hi] : 0;
    return hi >= 0 ? o->fv[hi] : NULL;
}

/* Each graph's nodes in the order ir_graph_nodes gives (from the output,
 * a closure's needs before the call that makes it), computed from the
 * graphs themselves rather than from g->fv, which may be stale; then the
 * nodes only other (dead) graphs use.  A module whose free variables
 * cannot be computed (broken scoping) still prints, in plain order. */
static int pr_compute_order(pr_ctx *c) {
    const sp_module *m = c->m;
    int ng = m->n_graphs, rc = -1;
    pr_order_ctx o;
    memset(&o, 0, sizeof o);
    o.c = c;
    if (ir_fv_compute(m, &o.fv_n, &o.fv) != SP_OK) {
        o.fv_n = NULL;
        o.fv = NULL;
        if (sp_last_status() == SP_ERR_NOMEM) return -1;
    }
    ir_walk *walks = calloc((size_t)ng + 1, sizeof *walks);
    int *pos = calloc((size_t)ng + 1, sizeof *pos);
    o.roots = calloc((size_t)ng + 1, sizeof *o.roots);
    o.n_roots = calloc((size_t)ng + 1, sizeof *o.n_roots);
    o.cap_roots = calloc((size_t)ng + 1, sizeof *o.cap_roots);
    if (!walks || !pos || !o.roots || !o.n_roots || !o.cap_roots) goto done;
    for (int i = 0; i < ng; i++) {
        ir_walk_init(&walks[i], m->graphs[i], &o);
        walks[i].on_node = po_node;
        walks[i].on_free = po_free;
        walks[i].graph_fv = po_fv;
    }
    for (int i = 0; i < ng; i++) {
        o.gi = i;
        if (m->graphs[i]->output && ir_walk_from(&walks[i], m->graphs[i]->output)) goto done;
    }
    /* Nodes used only by other graphs: walk them in their owner until no
     * graph has a root left (a root may queue roots in earlier graphs). */
    for (int progress = 1; progress;) {
        progress = 0;
        for (int i = 0; i < ng; i++) {
            o.gi = i;
            while (pos[i] < o.n_roots[i]) {
                progress = 1;
                if (ir_walk_from(&walks[i], o.roots[i][pos[i]++])) goto done;
            }
        }
    }
    rc = 0;
done:
    for (int i = 0; i < ng; i++) {
        if (walks) ir_walk_free(&walks[i]);
        if (o.roots) free(o.roots[i]);
    }
    free(walks);
    free(pos);
    free(o.roots);
    free(o.n_roots);
    free(o.cap_roots);
    ir_map_free(&o.queued);
    if (o.fv) ir_fv_free(m, o.fv_n, o.fv);
    return rc;
}

static _Thread_local const sp_module *sort_module; /* qsort has no context argument */

static const char *graph_name_of(const sp_graph *g) { return g->name ? g->name : "_"; }

static int by_name(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    int r = strcmp(graph_name_of(sort_module->graphs[i]), graph_name_of(sort_module->graphs[j]));
    return r ? r : (i > j) - (i < j);
}

/* Labels: the name, plus "~k" (k counting in module order) when several
 * graphs share it. */
static int pr_compute_labels(pr_ctx *c) {
    const sp_module *m = c->m;
    int ng = m->n_graphs;
    int *idx = malloc(sizeof *idx * (size_t)(ng + 1));
    if (!idx) return -1;
    for (int i = 0; i < ng; i++) idx[i] = i;
    sort_module = m;
    qsort(idx, (size_t)ng, sizeof *idx, by_name);
    for (int s = 0; s < ng;) {
        int e = s + 1;
        const char *nm = graph_name_of(m->graphs[idx[s]]);
        while (e < ng && strcmp(graph_name_of(m->graphs[idx[e]]), nm) == 0) e++;
        for (int k = s; k < e; k++) {
            ir_buf b = {0};
            put_name(&b, nm);
            if (e - s > 1) ir_buf_printf(&b, "~%d", k - s + 1);
            c->labels[idx[k]] = ir_buf_finish(&b);
            if (!c->labels[idx[k]]) {
                free(idx);
                return -1;
            }
        }
        s = e;
    }
    free(idx);
    return 0;
}

static void pr_free(pr_ctx *c) {
    int ng = c->m->n_graphs;
    for (int i = 0; i < ng; i++) {
        if (c->labels) free(c->labels[i]);
        if (c->order) free(c->order[i]);
    }
    free(c->labels);
    free(c->order);
    free(c->n_order);
    free(c->cap_order);
    ir_map_free(&c->gidx);
    ir_map_free(&c->num);
}

static sp_status pr_init(pr_ctx *c, const sp_module *m) {
    memset(c, 0, sizeof *c);
    c->m = m;
    size_t ng = (size_t)m->n_graphs + 1;
    c->labels = calloc(ng, sizeof *c->labels);
    c->order = calloc(ng, sizeof *c->order);
    c->n_order = calloc(ng, sizeof *c->n_order);
    c->cap_order = calloc(ng, sizeof *c->cap_order);
    if (!c->labels || !c->order || !c->n_order || !c->cap_order) goto nomem;
    for (int i = 0; i < m->n_graphs; i++)
        if (ir_map_put(&c->gidx, IR_PKEY(m->graphs[i]), (void *)(uintptr_t)(i + 1))) goto nomem;
    if (pr_compute_order(c) || pr_compute_labels(c)) goto nomem;
    int k = 0;
    for (int i = 0; i < m->n_graphs; i++) {
        const sp_graph *g = m->graphs[i];
        for (int j = 0; j < g->n_params; j++)
            if (g->params[j] && !ir_map_get(&c->num, IR_PKEY(g->params[j])) &&
                ir_map_put(&c->num, IR_PKEY(g->params[j]), (void *)(uintptr_t)++k))
                goto nomem;
        for (int j = 0; j < c->n_order[i]; j++)
            if (ir_map_put(&c->num, IR_PKEY(c->order[i][j]), (void *)(uintptr_t)++k)) goto nomem;
    }
    return SP_OK;
nomem:
    pr_free(c);
    return sp_error(SP_ERR_NOMEM, "out of memory printing IR");
}

/* ---- values ------------------------------------------------------------- */

static void put_graph_ref(pr_ctx *c, ir_buf *b, const sp_graph *g) {
    int gi = (int)(uintptr_t)ir_map_get(&c->gidx, IR_PKEY(g)) - 1;
    ir_buf_putc(b, '@');
    ir_buf_puts(b, gi >= 0 ? c->labels[gi] : "?");
}

static void put_tensor(pr_ctx *c, ir_buf *b, const sp_tensor *t) {
    if (t->buf->device.type != SP_DEVICE_CPU) {
        if (!c->status) c->status = sp_error(SP_ERR_UNSUPPORTED, "print IR: a tensor constant is not on the CPU");
        ir_buf_puts(b, "tensor(?)");
        return;
    }
    ir_buf_printf(b, "tensor(%s, [", sp_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) ir_buf_printf(b, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    ir_buf_puts(b, "], [");
    int64_t n = sp_tensor_numel(t);
    size_t isz = sp_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) {
        int64_t lin = i, off = 0;
        for (int d = t->ndim - 1; d >= 0; d--) {
            off += (lin % t->shape[d]) * t->strides[d];
            lin /= t->shape[d];
        }
        const unsigned char *p = (const unsigned char *)sp_tensor_data(t) + off * (int64_t)isz;
        if (i) ir_buf_puts(b, ", ");
        if (t->dtype == SP_BOOL) {
            ir_buf_puts(b, *p ? "True" : "False");
        } else if (sp_dtype_is_float(t->dtype)) {
            char s[40];
            ir_format_real(sp_load_f64(t->dtype, p), t->dtype, s, sizeof s);
            size_t len = strlen(s);
            /* "1", not "1.0"; but "-0.0" keeps its point: "-0" would read as int 0 */
            if (len > 2 && strcmp(s + len - 2, ".0") == 0 && strcmp(s, "-0.0") != 0) s[len - 2] = '\0';
            ir_buf_puts(b, s);
        } else {
            ir_buf_printf(b, "%lld", (long long)sp_load_i64(t->dtype, p));
        }
    }
    ir_buf_puts(b, "])");
}

static void put_value(pr_ctx *c, ir_buf *b, const sp_value *v, int depth);

static void put_items(pr_ctx *c, ir_buf *b, int n, sp_value *const *items, int depth, int lead) {
    for (int i = 0; i < n; i++) {
        if (i || lead) ir_buf_puts(b, ", ");
        put_value(c, b, items[i], depth + 1);
    }
}

static void put_value(pr_ctx *c, ir_buf *b, const sp_value *v, int depth) {
    char num[40];
    if (!v || depth > PRINT_MAX_DEPTH) {
        if (!c->status)
            c->status = sp_error(v ? SP_ERR_UNSUPPORTED : SP_ERR_INTERNAL, "print IR: %s",
                                 v ? "a constant nested too deeply" : "a constant node without value");
        ir_buf_puts(b, "?");
        return;
    }
    switch (v->kind) {
    case SP_V_NONE: ir_buf_puts(b, "None"); break;
    case SP_V_UNDEF: ir_buf_puts(b, "undef"); break;
    case SP_V_ENV: ir_buf_puts(b, "env"); break; /* autodiff run-time only; never a parsed constant */
    case SP_V_ELLIPSIS: ir_buf_puts(b, "..."); break;
    case SP_V_BOOL: ir_buf_puts(b, v->u.b ? "True" : "False"); break;
    case SP_V_INT: ir_buf_printf(b, "%lld", (long long)v->u.i); break;
    case SP_V_FLOAT:
        ir_format_real(v->u.f, SP_F64, num, sizeof num);
        ir_buf_puts(b, num);
        break;
    case SP_V_STR: ir_buf_put_quoted(b, v->u.str.s, v->u.str.len, 0); break;
    case SP_V_TUPLE:
        ir_buf_putc(b, '(');
        put_items(c, b, v->u.seq.n, v->u.seq.items, depth, 0);
        if (v->u.seq.n == 1) ir_buf_putc(b, ',');
        ir_buf_putc(b, ')');
        break;
    case SP_V_LIST:
        ir_buf_putc(b, '[');
        put_items(c, b, v->u.seq.n, v->u.seq.items, depth, 0);
        ir_buf_putc(b, ']');
        break;
    case SP_V_TENSOR: put_tensor(c, b, v->u.tensor); break;
    case SP_V_DTYPE: ir_buf_printf(b, "dtype.%s", sp_dtype_name(v->u.dtype)); break;
    case SP_V_PRIM: {
        const char *n = sp_op_name(v->u.prim);
        ir_buf_printf(b, "prim.%s", n ? n : "?");
        break;
    }
    case SP_V_BUILTIN:
        ir_buf_printf(b, "builtin.%s",
                      v->u.builtin >= 0 && v->u.builtin < N_BUILTINS ? builtin_names[v->u.builtin] : "?");
        break;
    case SP_V_MODULE:
        ir_buf_printf(b, "module.%s", v->u.module >= 0 && v->u.module < 5 ? module_names[v->u.module] : "?");
        break;
    case SP_V_GRAPH: put_graph_ref(c, b, v->u.graph); break;
    case SP_V_CLOSURE:
        ir_buf_puts(b, "closure(");
        put_graph_ref(c, b, v->u.closure.graph);
        put_items(c, b, v->u.closure.n, v->u.closure.fv, depth, 1);
        ir_buf_putc(b, ')');
        break;
    case SP_V_PARTIAL:
        ir_buf_puts(b, "partial(");
        put_value(c, b, v->u.partial.fn, depth + 1);
        put_items(c, b, v->u.partial.n, v->u.partial.args, depth, 1);
        ir_buf_putc(b, ')');
        break;
    case SP_V_KEYWORD:
        ir_buf_puts(b, "keyword(");
        ir_buf_put_quoted(b, v->u.kw.name, strlen(v->u.kw.name), 0);
        ir_buf_puts(b, ", ");
        put_value(c, b, v->u.kw.value, depth + 1);
        ir_buf_putc(b, ')');
        break;
    case SP_V_SLICE:
        ir_buf_puts(b, "slice(");
        put_value(c, b, v->u.slice.start, depth + 1);
        ir_buf_puts(b, ", ");
        put_value(c, b, v->u.slice.stop, depth + 1);
        ir_buf_puts(b, ", ");
        put_value(c, b, v->u.slice.step, depth + 1);
        ir_buf_putc(b, ')');
        break;
    }
}

/* ---- graphs ------------------------------------------------------------- */

static void put_operand(pr_ctx *c, ir_buf *b, const sp_node *n) {
    if (n && n->kind == SP_NODE_CONST) {
        put_value(c, b, n->value, 0);
        return;
    }
    uintptr_t k = n ? (uintptr_t)ir_map_get(&c->num, IR_PKEY(n)) : 0;
    if (k) ir_buf_printf(b, "%%%lu", (unsigned long)k);
    else ir_buf_puts(b, "%?");
}

static void put_loc(ir_buf *b, sp_loc loc, const char *dflt_file) {
    if (loc.line <= 0) return;
    const char *f = loc.file ? loc.file : dflt_file;
    size_t len = strlen(f);
    int quote = len == 0 || f[0] == '"' || f[0] == ' ' || f[len - 1] == ' ';
    for (size_t i = 0; i < len && !quote; i++)
        if ((unsigned char)f[i] < 0x20 || f[i] == 0x7f) quote = 1;
    ir_buf_puts(b, "  # ");
    if (quote) ir_buf_put_quoted(b, f, len, 0);
    else ir_buf_puts(b, f);
    ir_buf_printf(b, ":%d:%d", loc.line, loc.col < 0 ? 0 : loc.col);
}

static void put_graph(pr_ctx *c, ir_buf *b, int gi) {
    const sp_graph *g = c->m->graphs[gi];
    ir_buf_puts(b, "graph @");
    ir_buf_puts(b, c->labels[gi]);
    ir_buf_putc(b, '(');
    for (int i = 0; i < g->n_params; i++) {
        if (i) ir_buf_puts(b, ", ");
        if (g->has_varargs && i == g->n_params - 1) ir_buf_putc(b, '*');
        put_operand(c, b, g->params[i]);
        const char *nm = g->param_names ? g->param_names[i] : NULL;
        if (!nm && g->params[i]) nm = g->params[i]->name;
        if (nm) {
            ir_buf_putc(b, ' ');
            put_name(b, nm);
        }
        if (g->defaults && g->defaults[i]) {
            ir_buf_puts(b, " = ");
            put_value(c, b, g->defaults[i], 0);
        }
    }
    ir_buf_putc(b, ')');
    if (g->parent) {
        ir_buf_puts(b, " parent ");
        put_graph_ref(c, b, g->parent);
    }
    ir_buf_puts(b, " {");
    put_loc(b, g->loc, c->m->file);
    ir_buf_putc(b, '\n');
    for (int j = 0; j < c->n_order[gi]; j++) {
        const sp_node *n = c->order[gi][j];
        ir_buf_puts(b, "  ");
        put_operand(c, b, n);
        if (n->name) {
            ir_buf_putc(b, ' ');
            put_name(b, n->name);
        }
        ir_buf_puts(b, " = ");
        if (n->n_inputs < 1 || !n->inputs) {
            ir_buf_puts(b, "%?");
        } else {
            put_operand(c, b, n->inputs[0]);
        }
        ir_buf_putc(b, '(');
        for (int i = 1; i < n->n_inputs && n->inputs; i++) {
            if (i > 1) ir_buf_puts(b, ", ");
            put_operand(c, b, n->inputs[i]);
        }
        ir_buf_putc(b, ')');
        put_loc(b, n->loc, c->m->file);
        ir_buf_putc(b, '\n');
    }
    ir_buf_puts(b, "  return");
    if (g->output) {
        ir_buf_putc(b, ' ');
        put_operand(c, b, g->output);
    }
    ir_buf_puts(b, "\n}\n");
}

static char *pr_finish(pr_ctx *c, ir_buf *b) {
    int st = c->status;
    pr_free(c);
    if (st) {
        ir_buf_free(b);
        return NULL;
    }
    return ir_buf_finish(b);
}

char *sp_module_print(const sp_module *m) {
    if (!m) {
        sp_error(SP_ERR_ARG, "module_print: NULL module");
        return NULL;
    }
    pr_ctx c;
    if (pr_init(&c, m)) return NULL;
    ir_buf b = {0};
    for (int i = 0; i < m->n_globals; i++) {
        ir_buf_puts(&b, "global ");
        put_name(&b, m->global_names[i]);
        ir_buf_puts(&b, " = ");
        put_value(&c, &b, m->global_values[i], 0);
        ir_buf_putc(&b, '\n');
    }
    for (int i = 0; i < m->n_graphs; i++) {
        if (i || m->n_globals) ir_buf_putc(&b, '\n');
        put_graph(&c, &b, i);
    }
    return pr_finish(&c, &b);
}

char *sp_graph_print(const sp_graph *g) {
    if (!g || !g->module) {
        sp_error(SP_ERR_ARG, "graph_print: NULL graph or graph without module");
        return NULL;
    }
    pr_ctx c;
    if (pr_init(&c, g->module)) return NULL;
    int gi = (int)(uintptr_t)ir_map_get(&c.gidx, IR_PKEY(g)) - 1;
    ir_buf b = {0};
    if (gi < 0) {
        pr_free(&c);
        sp_error(SP_ERR_INTERNAL, "graph_print: graph @%s is not in its module", g->name ? g->name : "_");
        return NULL;
    }
    put_graph(&c, &b, gi);
    return pr_finish(&c, &b);
}
