/*
 * abstract.c -- building, comparing, joining and widening abstract values
 * (abstract.h).
 *
 * Abstracts are allocated in the arena of the module they describe and are
 * never freed one by one: a fixed-point iteration that throws a guess away
 * leaves it in the arena, which is cheap next to tracking lifetimes.  A
 * CONST keeps its value alive through a constant node that belongs to no
 * graph but is registered with the module (ir_node_make_const), so the
 * module releases the reference when it dies.
 *
 * The hash is structural and computed once, when the abstract is built,
 * from the hashes of its parts; the specializer's memo looks signatures up
 * by the combined hash of the argument abstracts and only then compares
 * them with sp_abs_equal.  Tensor constants hash by dtype and shape, not
 * by their bytes: equality still compares every element.
 *
 * Joins follow the lattice of abstract.h with one rule that matters for
 * speed: a join keeps as much as both sides agree on (dtype, rank, each
 * dim, each tuple item), so a loop whose tensor keeps its shape stays
 * fully static after the fixed point, and one whose batch dim changes
 * loses that dim only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/abstract.h"
#include "ir/ir_internal.h"

/* ---- hashing ------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 29);
}

static uint64_t value_hash(const sp_value *v, int depth) {
    if (!v) return 1;
    uint64_t h = mix(0x51ed27, (uint64_t)v->kind);
    if (depth > 16) return h;
    switch (v->kind) {
    case SP_V_BOOL: return mix(h, (uint64_t)v->u.b);
    case SP_V_INT: return mix(h, (uint64_t)v->u.i);
    case SP_V_FLOAT: {
        double f = v->u.f;
        uint64_t bits;
        if (f != f) f = 0.5; /* NaN equals NaN as a constant */
        memcpy(&bits, &f, sizeof bits);
        return mix(h, bits);
    }
    case SP_V_STR:
        for (size_t i = 0; i < v->u.str.len; i++) h = mix(h, (unsigned char)v->u.str.s[i]);
        return h;
    case SP_V_TUPLE:
    case SP_V_LIST:
        h = mix(h, (uint64_t)v->u.seq.n);
        for (int i = 0; i < v->u.seq.n; i++) h = mix(h, value_hash(v->u.seq.items[i], depth + 1));
        return h;
    case SP_V_TENSOR: {
        const sp_tensor *t = v->u.tensor;
        h = mix(h, (uint64_t)t->dtype);
        for (int i = 0; i < t->ndim; i++) h = mix(h, (uint64_t)t->shape[i]);
        return h;
    }
    case SP_V_DTYPE: return mix(h, (uint64_t)v->u.dtype);
    case SP_V_PRIM: return mix(h, (uint64_t)v->u.prim);
    case SP_V_BUILTIN: return mix(h, (uint64_t)v->u.builtin);
    case SP_V_MODULE: return mix(h, (uint64_t)v->u.module);
    case SP_V_GRAPH: return mix(h, (uint64_t)(uintptr_t)v->u.graph);
    case SP_V_CLOSURE: return mix(h, (uint64_t)(uintptr_t)v->u.closure.graph);
    case SP_V_PARTIAL:
        h = mix(h, value_hash(v->u.partial.fn, depth + 1));
        for (int i = 0; i < v->u.partial.n; i++) h = mix(h, value_hash(v->u.partial.args[i], depth + 1));
        return h;
    case SP_V_KEYWORD:
        for (const char *s = v->u.kw.name; *s; s++) h = mix(h, (unsigned char)*s);
        return mix(h, value_hash(v->u.kw.value, depth + 1));
    case SP_V_SLICE:
        h = mix(h, value_hash(v->u.slice.start, depth + 1));
        h = mix(h, value_hash(v->u.slice.stop, depth + 1));
        return mix(h, value_hash(v->u.slice.step, depth + 1));
    default: return h;
    }
}

static uint64_t abs_hash(const sp_abstract *a) {
    uint64_t h = mix(0xab5, (uint64_t)a->kind);
    switch (a->kind) {
    case SP_ABS_CONST: return mix(h, value_hash(a->value, 0));
    case SP_ABS_TENSOR:
        h = mix(h, (uint64_t)a->dtype);
        h = mix(h, (uint64_t)a->ndim);
        h = mix(h, (uint64_t)a->device.type * 131 + (uint64_t)a->device.index);
        for (int i = 0; i < a->ndim; i++) h = mix(h, (uint64_t)a->shape[i]);
        return h;
    case SP_ABS_SCALAR: return mix(h, (uint64_t)a->scalar);
    case SP_ABS_FUNC:
        return mix(mix(mix(h, (uint64_t)(uintptr_t)a->graph), (uint64_t)(uintptr_t)a->scope), (uint64_t)a->foreign);
    case SP_ABS_KEYWORD:
        for (const char *s = a->name; *s; s++) h = mix(h, (unsigned char)*s);
        return mix(h, a->items[0]->hash);
    case SP_ABS_PARTIAL: h = mix(h, a->fn->hash); /* fall through */
    case SP_ABS_TUPLE:
    case SP_ABS_LIST:
    case SP_ABS_ALT:
        h = mix(h, (uint64_t)a->n);
        for (int i = 0; i < a->n; i++) h = mix(h, a->items[i]->hash);
        return h;
    default: return h;
    }
}

/* ---- constructors -------------------------------------------------------- */

static sp_abstract *abs_new(sp_module *m, sp_abs_kind kind) {
    sp_abstract *a = ir_alloc(m, sizeof *a);
    if (a) a->kind = kind;
    return a;
}

static sp_abstract *abs_done(sp_abstract *a) {
    if (a) a->hash = abs_hash(a);
    return a;
}

sp_abstract *sp_abs_bottom(sp_module *m) { return abs_done(abs_new(m, SP_ABS_BOTTOM)); }
sp_abstract *sp_abs_any(sp_module *m) { return abs_done(abs_new(m, SP_ABS_ANY)); }

sp_abstract *sp_abs_const(sp_module *m, sp_value *v) {
    sp_abstract *a = abs_new(m, SP_ABS_CONST);
    sp_node *keep = a ? ir_alloc(m, sizeof *keep) : NULL;
    if (!keep || ir_node_make_const(m, keep, v) != SP_OK) return NULL;
    keep->id = -1;
    a->value = v;
    return abs_done(a);
}

sp_abstract *sp_abs_tensor(sp_module *m, sp_dtype dtype, int ndim, const int64_t *shape, sp_device dev) {
    sp_abstract *a = abs_new(m, SP_ABS_TENSOR);
    if (!a) return NULL;
    a->dtype = dtype;
    a->ndim = ndim < 0 ? 0 : ndim > SP_MAX_DIMS ? SP_MAX_DIMS : ndim;
    for (int i = 0; i < a->ndim; i++) a->shape[i] = shape ? shape[i] : -1;
    a->device = dev;
    return abs_done(a);
}

sp_abstract *sp_abs_scalar(sp_module *m, sp_vkind kind) {
    sp_abstract *a = abs_new(m, SP_ABS_SCALAR);
    if (!a) return NULL;
    a->scalar = kind;
    return abs_done(a);
}

static sp_abstract *with_items(sp_module *m, sp_abs_kind kind, int n, sp_abstract *const *items) {
    sp_abstract *a = abs_new(m, kind);
    if (!a) return NULL;
    a->n = n;
    if (n > 0) {
        a->items = ir_alloc(m, sizeof *a->items * (size_t)n);
        if (!a->items) return NULL;
        memcpy(a->items, items, sizeof *a->items * (size_t)n);
    }
    return a;
}

sp_abstract *sp_abs_seq(sp_module *m, sp_abs_kind kind, int n, sp_abstract *const *items) {
    return abs_done(with_items(m, kind == SP_ABS_LIST ? SP_ABS_LIST : SP_ABS_TUPLE, n, items));
}

sp_abstract *sp_abs_func(sp_module *m, sp_graph *g, void *scope) {
    sp_abstract *a = abs_new(m, SP_ABS_FUNC);
    if (!a) return NULL;
    a->graph = g;
    a->scope = scope;
    return abs_done(a);
}

sp_abstract *sp_abs_func_foreign(sp_module *m, const sp_abstract *f) {
    sp_abstract *a = abs_new(m, SP_ABS_FUNC);
    if (!a) return NULL;
    a->graph = f->graph;
    a->scope = f->scope;
    a->foreign = 1;
    return abs_done(a);
}

sp_abstract *sp_abs_partial(sp_module *m, sp_abstract *fn, int n, sp_abstract *const *args) {
    sp_abstract *a = with_items(m, SP_ABS_PARTIAL, n, args);
    if (!a) return NULL;
    a->fn = fn;
    return abs_done(a);
}

sp_abstract *sp_abs_alt(sp_module *m, int n, sp_abstract *const *choices) {
    return abs_done(with_items(m, SP_ABS_ALT, n, choices));
}

sp_abstract *sp_abs_keyword(sp_module *m, const char *name, sp_abstract *value) {
    sp_abstract *a = with_items(m, SP_ABS_KEYWORD, 1, &value);
    if (!a) return NULL;
    a->name = ir_intern(m, name);
    return a->name ? abs_done(a) : NULL;
}

sp_abstract *sp_abs_of_arg(sp_module *m, sp_value *v) {
    if (v->kind == SP_V_TENSOR) {
        const sp_tensor *t = v->u.tensor;
        sp_device dev = t->buf ? t->buf->device : SP_CPU;
        if (dev.type == SP_DEVICE_META) dev = SP_CPU; /* a signature given by shape only */
        return sp_abs_tensor(m, t->dtype, t->ndim, t->shape, dev);
    }
    if (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) {
        int has_tensor = 0;
        for (int i = 0; i < v->u.seq.n; i++)
            if (v->u.seq.items[i]->kind == SP_V_TENSOR || v->u.seq.items[i]->kind == SP_V_TUPLE ||
                v->u.seq.items[i]->kind == SP_V_LIST)
                has_tensor = 1;
        if (has_tensor) {
            sp_abstract *small[16], **items = v->u.seq.n <= 16 ? small : malloc(sizeof *items * (size_t)v->u.seq.n);
            if (!items) {
                sp_error(SP_ERR_NOMEM, "specialize: out of memory");
                return NULL;
            }
            int i;
            for (i = 0; i < v->u.seq.n; i++)
                if (!(items[i] = sp_abs_of_arg(m, v->u.seq.items[i]))) break;
            sp_abstract *r = i == v->u.seq.n
                                 ? sp_abs_seq(m, v->kind == SP_V_LIST ? SP_ABS_LIST : SP_ABS_TUPLE, i, items)
                                 : NULL;
            if (items != small) free(items);
            return r;
        }
    }
    return sp_abs_const(m, v);
}

/* ---- comparing ------------------------------------------------------------ */

int sp_abs_equal(const sp_abstract *a, const sp_abstract *b) {
    if (a == b) return 1;
    if (!a || !b || a->kind != b->kind || a->hash != b->hash) return 0;
    switch (a->kind) {
    case SP_ABS_BOTTOM:
    case SP_ABS_ANY: return 1;
    case SP_ABS_CONST: return a->value->kind == b->value->kind && sp_value_equal(a->value, b->value);
    case SP_ABS_TENSOR:
        if (a->dtype != b->dtype || a->ndim != b->ndim || a->device.type != b->device.type ||
            a->device.index != b->device.index)
            return 0;
        for (int i = 0; i < a->ndim; i++)
            if (a->shape[i] != b->shape[i]) return 0;
        return 1;
    case SP_ABS_SCALAR: return a->scalar == b->scalar;
    case SP_ABS_FUNC: return a->graph == b->graph && a->scope == b->scope && a->foreign == b->foreign;
    case SP_ABS_KEYWORD: return !strcmp(a->name, b->name) && sp_abs_equal(a->items[0], b->items[0]);
    case SP_ABS_PARTIAL:
        if (!sp_abs_equal(a->fn, b->fn)) return 0;
        /* fall through */
    case SP_ABS_TUPLE:
    case SP_ABS_LIST:
    case SP_ABS_ALT:
        if (a->n != b->n) return 0;
        for (int i = 0; i < a->n; i++)
            if (!sp_abs_equal(a->items[i], b->items[i])) return 0;
        return 1;
    }
    return 0;
}

int sp_abs_tensor_known(const sp_abstract *a) {
    if (!a || a->kind != SP_ABS_TENSOR) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] < 0) return 0;
    return 1;
}

/* ---- join and widen ---------------------------------------------------------- */

static int scalar_kind(const sp_value *v) {
    return v->kind == SP_V_INT || v->kind == SP_V_FLOAT || v->kind == SP_V_BOOL;
}

/* The abstract of a constant seen as a sequence, or NULL when it is not
 * one (a constant tuple joins item by item with a TUPLE). */
static sp_abstract *const_as_seq(sp_module *m, const sp_abstract *a) {
    if (a->kind != SP_ABS_CONST || (a->value->kind != SP_V_TUPLE && a->value->kind != SP_V_LIST)) return NULL;
    int n = a->value->u.seq.n;
    sp_abstract **items = malloc(sizeof *items * (size_t)(n ? n : 1));
    if (!items) return NULL;
    int i;
    for (i = 0; i < n; i++)
        if (!(items[i] = sp_abs_const(m, a->value->u.seq.items[i]))) break;
    sp_abstract *r = i == n ? sp_abs_seq(m, a->value->kind == SP_V_LIST ? SP_ABS_LIST : SP_ABS_TUPLE, n, items)
                            : NULL;
    free(items);
    return r;
}

sp_abstract *sp_abs_join(sp_module *m, sp_abstract *a, sp_abstract *b) {
    if (sp_abs_equal(a, b)) return a;
    if (a->kind == SP_ABS_BOTTOM) return b;
    if (b->kind == SP_ABS_BOTTOM) return a;
    if (a->kind == SP_ABS_ANY) return a;
    if (b->kind == SP_ABS_ANY) return b;
    /* scalars: constants of one kind, or a constant and a SCALAR */
    sp_vkind ka = a->kind == SP_ABS_SCALAR ? a->scalar : a->kind == SP_ABS_CONST && scalar_kind(a->value) ? a->value->kind : SP_V_NONE;
    sp_vkind kb = b->kind == SP_ABS_SCALAR ? b->scalar : b->kind == SP_ABS_CONST && scalar_kind(b->value) ? b->value->kind : SP_V_NONE;
    if (ka != SP_V_NONE && ka == kb) return sp_abs_scalar(m, ka);
    if (a->kind == SP_ABS_CONST && b->kind == SP_ABS_CONST && a->value->kind == SP_V_TENSOR &&
        b->value->kind == SP_V_TENSOR) {
        const sp_tensor *x = a->value->u.tensor, *y = b->value->u.tensor;
        if (x->dtype != y->dtype || x->ndim != y->ndim) return sp_abs_any(m);
        sp_abstract *t = sp_abs_tensor(m, x->dtype, x->ndim, x->shape, SP_CPU);
        if (!t) return NULL;
        for (int i = 0; i < x->ndim; i++)
            if (x->shape[i] != y->shape[i]) t->shape[i] = -1;
        return abs_done(t);
    }
    if (a->kind == SP_ABS_CONST && a->value->kind == SP_V_TENSOR && b->kind == SP_ABS_TENSOR) {
        sp_abstract *t = sp_abs_of_arg(m, a->value);
        return t ? sp_abs_join(m, t, b) : NULL;
    }
    if (b->kind == SP_ABS_CONST && b->value->kind == SP_V_TENSOR && a->kind == SP_ABS_TENSOR)
        return sp_abs_join(m, b, a);
    if (a->kind == SP_ABS_TENSOR && b->kind == SP_ABS_TENSOR) {
        if (a->dtype != b->dtype || a->ndim != b->ndim) return sp_abs_any(m);
        sp_abstract *t = sp_abs_tensor(m, a->dtype, a->ndim, a->shape, a->device);
        if (!t) return NULL;
        for (int i = 0; i < a->ndim; i++)
            if (a->shape[i] != b->shape[i]) t->shape[i] = -1;
        return abs_done(t);
    }
    if ((a->kind == SP_ABS_CONST) != (b->kind == SP_ABS_CONST)) {
        sp_abstract *s = const_as_seq(m, a->kind == SP_ABS_CONST ? a : b);
        if (s) return sp_abs_join(m, s, a->kind == SP_ABS_CONST ? b : a);
    }
    if ((a->kind == SP_ABS_TUPLE || a->kind == SP_ABS_LIST) && a->kind == b->kind && a->n == b->n) {
        sp_abstract **items = malloc(sizeof *items * (size_t)(a->n ? a->n : 1));
        if (!items) {
            sp_error(SP_ERR_NOMEM, "specialize: out of memory");
            return NULL;
        }
        int i;
        for (i = 0; i < a->n; i++)
            if (!(items[i] = sp_abs_join(m, a->items[i], b->items[i]))) break;
        sp_abstract *r = i == a->n ? sp_abs_seq(m, a->kind, a->n, items) : NULL;
        free(items);
        return r;
    }
    if (a->kind == SP_ABS_KEYWORD && b->kind == SP_ABS_KEYWORD && !strcmp(a->name, b->name)) {
        sp_abstract *v = sp_abs_join(m, a->items[0], b->items[0]);
        return v ? sp_abs_keyword(m, a->name, v) : NULL;
    }
    return sp_abs_any(m);
}

sp_abstract *sp_abs_widen(sp_module *m, sp_abstract *a, int level) {
    switch (a->kind) {
    case SP_ABS_CONST: {
        const sp_value *v = a->value;
        if (scalar_kind(v)) return sp_abs_scalar(m, v->kind);
        if (v->kind == SP_V_NONE || v->kind == SP_V_DTYPE || v->kind == SP_V_PRIM || v->kind == SP_V_BUILTIN ||
            v->kind == SP_V_MODULE || v->kind == SP_V_GRAPH || v->kind == SP_V_CLOSURE ||
            v->kind == SP_V_PARTIAL || v->kind == SP_V_UNDEF)
            return a;
        if (v->kind == SP_V_TENSOR && level < 2) return a;
        return sp_abs_any(m);
    }
    case SP_ABS_TENSOR: return level >= 2 ? sp_abs_any(m) : a;
    case SP_ABS_TUPLE:
    case SP_ABS_LIST: {
        if (level >= 2) return sp_abs_any(m);
        sp_abstract **items = malloc(sizeof *items * (size_t)(a->n ? a->n : 1));
        if (!items) {
            sp_error(SP_ERR_NOMEM, "specialize: out of memory");
            return NULL;
        }
        int i;
        for (i = 0; i < a->n; i++)
            if (!(items[i] = sp_abs_widen(m, a->items[i], level))) break;
        sp_abstract *r = i == a->n ? sp_abs_seq(m, a->kind, a->n, items) : NULL;
        free(items);
        return r;
    }
    case SP_ABS_KEYWORD: {
        sp_abstract *v = sp_abs_widen(m, a->items[0], level);
        return v ? sp_abs_keyword(m, a->name, v) : NULL;
    }
    default: return a;
    }
}

/* ---- text ------------------------------------------------------------------- */

static void put_abs(ir_buf *b, const sp_abstract *a, int depth) {
    if (!a) {
        ir_buf_puts(b, "null");
        return;
    }
    if (depth > 8) {
        ir_buf_puts(b, "...");
        return;
    }
    switch (a->kind) {
    case SP_ABS_BOTTOM: ir_buf_puts(b, "bottom"); return;
    case SP_ABS_ANY: ir_buf_puts(b, "any"); return;
    case SP_ABS_CONST: {
        if (a->value->kind == SP_V_TENSOR) {
            const sp_tensor *t = a->value->u.tensor;
            ir_buf_printf(b, "const %s[", sp_dtype_name(t->dtype));
            for (int i = 0; i < t->ndim; i++) ir_buf_printf(b, "%s%lld", i ? "," : "", (long long)t->shape[i]);
            ir_buf_puts(b, "]");
            return;
        }
        char *s = sp_value_to_string(a->value);
        ir_buf_puts(b, s ? s : "?");
        free(s);
        return;
    }
    case SP_ABS_TENSOR:
        ir_buf_printf(b, "%s[", sp_dtype_name(a->dtype));
        for (int i = 0; i < a->ndim; i++) {
            if (a->shape[i] < 0)
                ir_buf_printf(b, "%s?", i ? "," : "");
            else
                ir_buf_printf(b, "%s%lld", i ? "," : "", (long long)a->shape[i]);
        }
        ir_buf_puts(b, "]");
        return;
    case SP_ABS_SCALAR:
        ir_buf_puts(b, a->scalar == SP_V_INT ? "int" : a->scalar == SP_V_FLOAT ? "float" : "bool");
        return;
    case SP_ABS_TUPLE:
    case SP_ABS_LIST:
        ir_buf_putc(b, a->kind == SP_ABS_LIST ? '[' : '(');
        for (int i = 0; i < a->n; i++) {
            if (i) ir_buf_puts(b, ", ");
            put_abs(b, a->items[i], depth + 1);
        }
        if (a->kind == SP_ABS_TUPLE && a->n == 1) ir_buf_putc(b, ',');
        ir_buf_putc(b, a->kind == SP_ABS_LIST ? ']' : ')');
        return;
    case SP_ABS_FUNC: ir_buf_printf(b, "func @%s", a->graph->name); return;
    case SP_ABS_PARTIAL:
        ir_buf_puts(b, "partial(");
        put_abs(b, a->fn, depth + 1);
        for (int i = 0; i < a->n; i++) {
            ir_buf_puts(b, ", ");
            put_abs(b, a->items[i], depth + 1);
        }
        ir_buf_putc(b, ')');
        return;
    case SP_ABS_ALT:
        for (int i = 0; i < a->n; i++) {
            if (i) ir_buf_puts(b, " | ");
            put_abs(b, a->items[i], depth + 1);
        }
        return;
    case SP_ABS_KEYWORD:
        ir_buf_printf(b, "%s=", a->name);
        put_abs(b, a->items[0], depth + 1);
        return;
    }
}

char *sp_abs_to_string(const sp_abstract *a) {
    ir_buf b = {0};
    put_abs(&b, a, 0);
    return ir_buf_finish(&b);
}
