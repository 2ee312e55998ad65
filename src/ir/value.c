/*
 * value.c -- the values of Spore programs: constructors, reference counts,
 * truthiness, constant equality and the text `spore run` prints.
 *
 * A value is a small tagged struct with a reference count.  Containers
 * (tuple, list, closure, partial, keyword, slice) own one reference to each
 * item; a tensor value owns one reference to its sp_tensor; a graph value
 * points at a graph the IR module owns.  Reference counts use atomic
 * increments, so a value may be shared by threads (a data loader handing
 * batches to the VM) as long as it is not being built.
 *
 * Releasing is iterative: programs can build deeply nested values (a tuple
 * wrapped in a tuple a million times by a loop), and freeing them by
 * recursion would overflow the C stack.  The same worry bounds printing and
 * comparison by a nesting depth, which reports an error instead of
 * crashing.
 *
 * Text: sp_value_to_string follows Python's print(): a string at the top
 * level prints raw, inside a container as its repr; floats print as
 * Python's repr (the shortest text that reads back to the same double:
 * "2.5", "3.0", "1e-05"); tensors as numpy does (sp_tensor_to_string).
 *
 * Equality (sp_value_equal) is equality of constants, what CSE and tests
 * need: kinds must match (1, 1.0 and True are three different constants,
 * as they print and behave differently), floats compare by value except
 * that NaN equals NaN and 0.0 differs from -0.0, tensors compare dtype,
 * shape and every element bit for bit.  Python's `==` across kinds is the
 * VM's builtin.eq, not this.
 *
 * This file also holds ir_buf, the growable text buffer every printer in
 * src/ir writes into.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ir/ir_internal.h"
#include "ir/value.h"

#define VALUE_MAX_DEPTH 512

/* ---- text buffer -------------------------------------------------------- */

static int buf_reserve(ir_buf *b, size_t extra) {
    if (b->failed) return 0;
    if (b->n + extra + 1 <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            b->failed = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return 0;
    }
    b->p = p;
    b->cap = cap;
    return 1;
}

void ir_buf_putn(ir_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void ir_buf_puts(ir_buf *b, const char *s) { ir_buf_putn(b, s, strlen(s)); }

void ir_buf_putc(ir_buf *b, char c) { ir_buf_putn(b, &c, 1); }

void ir_buf_printf(ir_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)len < sizeof small) {
        ir_buf_putn(b, small, (size_t)len);
        return;
    }
    if (!buf_reserve(b, (size_t)len)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

char *ir_buf_finish(ir_buf *b) {
    if (!b->failed && !b->p) buf_reserve(b, 0);
    if (b->failed) {
        ir_buf_free(b);
        sp_error(SP_ERR_NOMEM, "out of memory while building text");
        return NULL;
    }
    b->p[b->n] = '\0';
    char *p = b->p;
    memset(b, 0, sizeof *b);
    return p;
}

void ir_buf_free(ir_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

void ir_buf_put_quoted(ir_buf *b, const char *s, size_t len, int python_repr) {
    char q = '"';
    if (python_repr) {
        q = '\'';
        if (memchr(s, '\'', len) && !memchr(s, '"', len)) q = '"';
    }
    ir_buf_putc(b, q);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') ir_buf_puts(b, "\\\\");
        else if (c == (unsigned char)q) {
            ir_buf_putc(b, '\\');
            ir_buf_putc(b, q);
        } else if (c == '\n') ir_buf_puts(b, "\\n");
        else if (c == '\t') ir_buf_puts(b, "\\t");
        else if (c == '\r') ir_buf_puts(b, "\\r");
        /* Python's repr keeps UTF-8 text as is; the IR form escapes every
         * byte outside printable ASCII so that any byte string survives. */
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && !python_repr))
            ir_buf_printf(b, "\\x%02x", c);
        else ir_buf_putc(b, (char)c);
    }
    ir_buf_putc(b, q);
}

/* ---- floats ------------------------------------------------------------- */

/* Nonzero when text `s` stored as dtype d has the same bits as v does. */
static int real_roundtrips(double v, sp_dtype d, const char *s) {
    unsigned char a[8] = {0}, c[8] = {0};
    sp_store_f64(d, a, v);
    sp_store_f64(d, c, strtod(s, NULL));
    return memcmp(a, c, sizeof a) == 0;
}

void ir_format_real(double v, sp_dtype d, char *buf, size_t n) {
    if (isnan(v)) {
        snprintf(buf, n, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, n, v > 0 ? "inf" : "-inf");
        return;
    }
    /* The shortest %e that reads back exactly: "d.ddde+XX". */
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (real_roundtrips(v, d, e)) break;
    }
    const char *q = e;
    int neg = 0;
    if (*q == '-') {
        neg = 1;
        q++;
    }
    char digits[24];
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9' && nd < 23) digits[nd++] = *q;
    int exp = *q == 'e' ? atoi(q + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';

    char out[64];
    int k = 0;
    if (neg) out[k++] = '-';
    if (exp >= -4 && exp < 16) { /* positional, as Python's repr */
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[k++] = i < nd ? digits[i] : '0';
            out[k++] = '.';
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++) out[k++] = digits[i];
            else out[k++] = '0';
        } else {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[k++] = '0';
            for (int i = 0; i < nd; i++) out[k++] = digits[i];
        }
        out[k] = '\0';
    } else {
        out[k++] = digits[0];
        if (nd > 1) {
            out[k++] = '.';
            for (int i = 1; i < nd; i++) out[k++] = digits[i];
        }
        snprintf(out + k, sizeof out - (size_t)k, "e%c%02d", exp < 0 ? '-' : '+',
                 exp < 0 ? -exp : exp);
    }
    snprintf(buf, n, "%s", out);
}

/* ---- constructors ------------------------------------------------------- */

static sp_value *value_new(sp_vkind kind) {
    sp_value *v = calloc(1, sizeof *v);
    if (!v) {
        sp_error(SP_ERR_NOMEM, "out of memory allocating a value");
        return NULL;
    }
    v->refcount = 1;
    v->kind = kind;
    return v;
}

sp_value *sp_value_none(void) { return value_new(SP_V_NONE); }
sp_value *sp_value_undef(void) { return value_new(SP_V_UNDEF); }
sp_value *sp_value_ellipsis(void) { return value_new(SP_V_ELLIPSIS); }

sp_value *sp_value_bool(int b) {
    sp_value *v = value_new(SP_V_BOOL);
    if (v) v->u.b = b != 0;
    return v;
}

sp_value *sp_value_int(int64_t i) {
    sp_value *v = value_new(SP_V_INT);
    if (v) v->u.i = i;
    return v;
}

sp_value *sp_value_float(double f) {
    sp_value *v = value_new(SP_V_FLOAT);
    if (v) v->u.f = f;
    return v;
}

sp_value *sp_value_str(const char *s, size_t len) {
    if (!s && len) {
        sp_error(SP_ERR_ARG, "value_str: NULL text of length %zu", len);
        return NULL;
    }
    sp_value *v = value_new(SP_V_STR);
    if (!v) return NULL;
    v->u.str.s = malloc(len + 1);
    if (!v->u.str.s) {
        free(v);
        sp_error(SP_ERR_NOMEM, "out of memory allocating a string of %zu bytes", len);
        return NULL;
    }
    if (len) memcpy(v->u.str.s, s, len);
    v->u.str.s[len] = '\0';
    v->u.str.len = len;
    return v;
}

/* Copies n references (retaining each) into a new array; NULL + error. */
static sp_value **copy_refs(int n, sp_value *const *items, const char *what) {
    if (n < 0 || (n > 0 && !items)) {
        sp_error(SP_ERR_ARG, "%s: bad item list (n = %d)", what, n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!items[i]) {
            sp_error(SP_ERR_ARG, "%s: item %d is NULL", what, i);
            return NULL;
        }
    sp_value **a = malloc(sizeof *a * (size_t)(n ? n : 1));
    if (!a) {
        sp_error(SP_ERR_NOMEM, "%s: out of memory for %d items", what, n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        sp_value_retain(items[i]);
        a[i] = items[i];
    }
    return a;
}

static sp_value *seq_new(sp_vkind kind, int n, sp_value *const *items) {
    sp_value **a = copy_refs(n, items, kind == SP_V_TUPLE ? "tuple" : "list");
    if (!a) return NULL;
    sp_value *v = value_new(kind);
    if (!v) {
        for (int i = 0; i < n; i++) sp_value_release(a[i]);
        free(a);
        return NULL;
    }
    v->u.seq.n = n;
    v->u.seq.items = a;
    return v;
}

sp_value *sp_value_tuple(int n, sp_value *const *items) { return seq_new(SP_V_TUPLE, n, items); }
sp_value *sp_value_list(int n, sp_value *const *items) { return seq_new(SP_V_LIST, n, items); }

sp_value *sp_value_tensor(sp_tensor *t) {
    if (!t) {
        sp_error(SP_ERR_ARG, "value_tensor: NULL tensor");
        return NULL;
    }
    sp_value *v = value_new(SP_V_TENSOR);
    if (!v) return NULL;
    sp_tensor_retain(t);
    v->u.tensor = t;
    return v;
}

sp_value *sp_value_dtype(sp_dtype d) {
    sp_value *v = value_new(SP_V_DTYPE);
    if (v) v->u.dtype = d;
    return v;
}

sp_value *sp_value_prim(int op) {
    sp_value *v = value_new(SP_V_PRIM);
    if (v) v->u.prim = op;
    return v;
}

sp_value *sp_value_builtin(int id) {
    sp_value *v = value_new(SP_V_BUILTIN);
    if (v) v->u.builtin = id;
    return v;
}

sp_value *sp_value_module(int id) {
    sp_value *v = value_new(SP_V_MODULE);
    if (v) v->u.module = id;
    return v;
}

sp_value *sp_value_graph(struct sp_graph *g) {
    if (!g) {
        sp_error(SP_ERR_ARG, "value_graph: NULL graph");
        return NULL;
    }
    sp_value *v = value_new(SP_V_GRAPH);
    if (v) v->u.graph = g;
    return v;
}

sp_value *sp_value_closure(struct sp_graph *g, int n, sp_value *const *fv) {
    if (!g) {
        sp_error(SP_ERR_ARG, "value_closure: NULL graph");
        return NULL;
    }
    sp_value **a = copy_refs(n, fv, "closure");
    if (!a) return NULL;
    sp_value *v = value_new(SP_V_CLOSURE);
    if (!v) {
        for (int i = 0; i < n; i++) sp_value_release(a[i]);
        free(a);
        return NULL;
    }
    v->u.closure.graph = g;
    v->u.closure.n = n;
    v->u.closure.fv = a;
    return v;
}

sp_value *sp_value_partial(sp_value *fn, int n, sp_value *const *args) {
    if (!fn) {
        sp_error(SP_ERR_ARG, "value_partial: NULL function");
        return NULL;
    }
    sp_value **a = copy_refs(n, args, "partial");
    if (!a) return NULL;
    sp_value *v = value_new(SP_V_PARTIAL);
    if (!v) {
        for (int i = 0; i < n; i++) sp_value_release(a[i]);
        free(a);
        return NULL;
    }
    sp_value_retain(fn);
    v->u.partial.fn = fn;
    v->u.partial.n = n;
    v->u.partial.args = a;
    return v;
}

sp_value *sp_value_keyword(const char *name, sp_value *val) {
    if (!name || !val) {
        sp_error(SP_ERR_ARG, "value_keyword: NULL %s", name ? "value" : "name");
        return NULL;
    }
    sp_value *v = value_new(SP_V_KEYWORD);
    if (!v) return NULL;
    size_t len = strlen(name);
    v->u.kw.name = malloc(len + 1);
    if (!v->u.kw.name) {
        free(v);
        sp_error(SP_ERR_NOMEM, "out of memory allocating a keyword");
        return NULL;
    }
    memcpy(v->u.kw.name, name, len + 1);
    sp_value_retain(val);
    v->u.kw.value = val;
    return v;
}

/* NULL parts stand for None (an omitted bound). */
sp_value *sp_value_slice(sp_value *start, sp_value *stop, sp_value *step) {
    sp_value *parts[3] = {start, stop, step};
    for (int i = 0; i < 3; i++) {
        if (parts[i]) {
            sp_value_retain(parts[i]);
        } else if (!(parts[i] = sp_value_none())) {
            for (int j = 0; j < i; j++) sp_value_release(parts[j]);
            return NULL;
        }
    }
    sp_value *v = value_new(SP_V_SLICE);
    if (!v) {
        for (int i = 0; i < 3; i++) sp_value_release(parts[i]);
        return NULL;
    }
    v->u.slice.start = parts[0];
    v->u.slice.stop = parts[1];
    v->u.slice.step = parts[2];
    return v;
}

/* ---- reference counts --------------------------------------------------- */

void sp_value_retain(sp_value *v) {
    if (v) sp_ref_inc(&v->refcount);
}

/* A worklist of values whose count reached zero. */
typedef struct dead_list {
    sp_value **p;
    int n, cap;
    sp_value *small[32];
} dead_list;

static void value_destroy(sp_value *v, dead_list *dl);

/* Drops one reference to child c; a dead child joins the worklist, or, when
 * the worklist cannot grow, is destroyed right away (recursion is then the
 * only way left, and it is bounded by the value's depth). */
static void drop_child(sp_value *c, dead_list *dl) {
    if (!c || sp_ref_dec(&c->refcount) > 0) return;
    if (dl->n == dl->cap) {
        int cap = dl->cap * 2;
        sp_value **p = dl->p == dl->small ? malloc(sizeof *p * (size_t)cap)
                                          : realloc(dl->p, sizeof *p * (size_t)cap);
        if (!p) {
            value_destroy(c, dl);
            return;
        }
        if (dl->p == dl->small) memcpy(p, dl->small, sizeof dl->small);
        dl->p = p;
        dl->cap = cap;
    }
    dl->p[dl->n++] = c;
}

/* Frees v's own memory; its children go through drop_child. */
static void value_destroy(sp_value *v, dead_list *dl) {
    switch (v->kind) {
    case SP_V_STR: free(v->u.str.s); break;
    case SP_V_TUPLE:
    case SP_V_LIST:
    case SP_V_ENV:
        for (int i = 0; i < v->u.seq.n; i++) drop_child(v->u.seq.items[i], dl);
        free(v->u.seq.items);
        break;
    case SP_V_TENSOR: sp_tensor_release(v->u.tensor); break;
    case SP_V_CLOSURE:
        for (int i = 0; i < v->u.closure.n; i++) drop_child(v->u.closure.fv[i], dl);
        free(v->u.closure.fv);
        break;
    case SP_V_PARTIAL:
        drop_child(v->u.partial.fn, dl);
        for (int i = 0; i < v->u.partial.n; i++) drop_child(v->u.partial.args[i], dl);
        free(v->u.partial.args);
        break;
    case SP_V_KEYWORD:
        free(v->u.kw.name);
        drop_child(v->u.kw.value, dl);
        break;
    case SP_V_SLICE:
        drop_child(v->u.slice.start, dl);
        drop_child(v->u.slice.stop, dl);
        drop_child(v->u.slice.step, dl);
        break;
    default: break;
    }
    free(v);
}

void sp_value_release(sp_value *v) {
    if (!v || sp_ref_dec(&v->refcount) > 0) return;
    dead_list dl;
    dl.p = dl.small;
    dl.n = 0;
    dl.cap = (int)(sizeof dl.small / sizeof dl.small[0]);
    value_destroy(v, &dl);
    while (dl.n > 0) value_destroy(dl.p[--dl.n], &dl);
    if (dl.p != dl.small) free(dl.p);
}

/* ---- truth and equality ------------------------------------------------- */

int sp_value_truth(const sp_value *v) {
    if (!v) {
        sp_error(SP_ERR_ARG, "truth: NULL value");
        return -1;
    }
    switch (v->kind) {
    case SP_V_NONE: return 0;
    case SP_V_BOOL: return v->u.b != 0;
    case SP_V_INT: return v->u.i != 0;
    case SP_V_FLOAT: return v->u.f != 0.0; /* NaN is true, as in Python */
    case SP_V_STR: return v->u.str.len != 0;
    case SP_V_TUPLE:
    case SP_V_LIST: return v->u.seq.n != 0;
    case SP_V_TENSOR: {
        const sp_tensor *t = v->u.tensor;
        int64_t n = sp_tensor_numel(t);
        if (n != 1) {
            char sh[96];
            sp_error(SP_ERR_TYPE,
                     "the truth value of a Tensor of shape %s (%lld elements) is ambiguous; "
                     "use .any() or .all()",
                     sp_shape_str(t->ndim, t->shape, sh, sizeof sh), (long long)n);
            return -1;
        }
        if (sp_tensor_is_meta(t)) {
            sp_error(SP_ERR_VALUE, "the truth value of a Tensor is not known at compile time (bool(), if, "
                     "while, and, or on a tensor need its value)");
            return -1;
        }
        /* a GPU tensor's one value is read through a host copy */
        sp_tensor *h = NULL;
        if (sp_tensor_to((sp_tensor *)t, SP_CPU, &h) != SP_OK) return -1;
        const void *p = sp_tensor_data(h);
        int r = sp_dtype_is_float(h->dtype) ? sp_load_f64(h->dtype, p) != 0.0 : sp_load_i64(h->dtype, p) != 0;
        sp_tensor_release(h);
        return r;
    }
    case SP_V_UNDEF:
        sp_error(SP_ERR_RUNTIME, "truth: a variable used before it was assigned");
        return -1;
    default: return 1; /* functions, modules, dtypes, keywords: objects are true */
    }
}

/* Address of element `lin` (C order) of a CPU tensor of any layout. */
static const unsigned char *tensor_elem(const sp_tensor *t, int64_t lin) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t s = t->shape[d];
        off += (lin % s) * t->strides[d];
        lin /= s;
    }
    return (const unsigned char *)sp_tensor_data(t) + off * (int64_t)sp_dtype_size(t->dtype);
}

static int tensor_equal(const sp_tensor *a, const sp_tensor *b) {
    if (a == b) return 1;
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    if (a->buf->device.type != SP_DEVICE_CPU || b->buf->device.type != SP_DEVICE_CPU) return 0;
    int64_t n = sp_tensor_numel(a);
    size_t isz = sp_dtype_size(a->dtype);
    for (int64_t i = 0; i < n; i++)
        if (memcmp(tensor_elem(a, i), tensor_elem(b, i), isz) != 0) return 0;
    return 1;
}

static int value_equal(const sp_value *a, const sp_value *b, int depth);

static int items_equal(int n, sp_value *const *a, sp_value *const *b, int depth) {
    for (int i = 0; i < n; i++)
        if (!value_equal(a[i], b[i], depth + 1)) return 0;
    return 1;
}

static int value_equal(const sp_value *a, const sp_value *b, int depth) {
    if (a == b) return 1;
    if (!a || !b || a->kind != b->kind || depth > VALUE_MAX_DEPTH) return 0;
    switch (a->kind) {
    case SP_V_NONE:
    case SP_V_UNDEF:
    case SP_V_ELLIPSIS: return 1;
    case SP_V_BOOL: return a->u.b == b->u.b;
    case SP_V_INT: return a->u.i == b->u.i;
    case SP_V_FLOAT:
        if (isnan(a->u.f) || isnan(b->u.f)) return isnan(a->u.f) && isnan(b->u.f);
        return a->u.f == b->u.f && signbit(a->u.f) == signbit(b->u.f);
    case SP_V_STR:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.s, b->u.str.s, a->u.str.len) == 0;
    case SP_V_TUPLE:
    case SP_V_LIST:
    case SP_V_ENV:
        return a->u.seq.n == b->u.seq.n && items_equal(a->u.seq.n, a->u.seq.items, b->u.seq.items, depth);
    case SP_V_TENSOR: return tensor_equal(a->u.tensor, b->u.tensor);
    case SP_V_DTYPE: return a->u.dtype == b->u.dtype;
    case SP_V_PRIM: return a->u.prim == b->u.prim;
    case SP_V_BUILTIN: return a->u.builtin == b->u.builtin;
    case SP_V_MODULE: return a->u.module == b->u.module;
    case SP_V_GRAPH: return a->u.graph == b->u.graph;
    case SP_V_CLOSURE:
        return a->u.closure.graph == b->u.closure.graph && a->u.closure.n == b->u.closure.n &&
               items_equal(a->u.closure.n, a->u.closure.fv, b->u.closure.fv, depth);
    case SP_V_PARTIAL:
        return a->u.partial.n == b->u.partial.n &&
               value_equal(a->u.partial.fn, b->u.partial.fn, depth + 1) &&
               items_equal(a->u.partial.n, a->u.partial.args, b->u.partial.args, depth);
    case SP_V_KEYWORD:
        return strcmp(a->u.kw.name, b->u.kw.name) == 0 &&
               value_equal(a->u.kw.value, b->u.kw.value, depth + 1);
    case SP_V_SLICE:
        return value_equal(a->u.slice.start, b->u.slice.start, depth + 1) &&
               value_equal(a->u.slice.stop, b->u.slice.stop, depth + 1) &&
               value_equal(a->u.slice.step, b->u.slice.step, depth + 1);
    }
    return 0;
}

int sp_value_equal(const sp_value *a, const sp_value *b) { return value_equal(a, b, 0); }

/* ---- text --------------------------------------------------------------- */

static const char *module_name(int id) {
    switch (id) {
    case SP_MOD_SPORE: return "spore";
    case SP_MOD_OPS: return "spore.ops";
    case SP_MOD_NN: return "spore.nn";
    case SP_MOD_MATH: return "math";
    case SP_MOD_PRIM: return "spore.prim";
    default: return "?";
    }
}

static const char *builtin_names[] = {
#define SP_BUILTIN(ID, name, n) #name,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

static const char *builtin_name(int id) {
    int n = (int)(sizeof builtin_names / sizeof builtin_names[0]);
    return id >= 0 && id < n ? builtin_names[id] : "?";
}

static const char *graph_name(const struct sp_graph *g) {
    return g && g->name ? g->name : "<anonymous>";
}

/* Appends v; `top` is 1 for the outermost value, where strings print raw. */
static void value_text(ir_buf *b, const sp_value *v, int top, int depth) {
    char num[40];
    if (depth > VALUE_MAX_DEPTH) {
        ir_buf_puts(b, "...");
        return;
    }
    switch (v->kind) {
    case SP_V_NONE: ir_buf_puts(b, "None"); break;
    case SP_V_UNDEF: ir_buf_puts(b, "<undefined>"); break;
    case SP_V_ENV: ir_buf_printf(b, "<env of %d gradients>", v->u.seq.n / 2); break;
    case SP_V_ELLIPSIS: ir_buf_puts(b, "Ellipsis"); break;
    case SP_V_BOOL: ir_buf_puts(b, v->u.b ? "True" : "False"); break;
    case SP_V_INT: ir_buf_printf(b, "%lld", (long long)v->u.i); break;
    case SP_V_FLOAT:
        ir_format_real(v->u.f, SP_F64, num, sizeof num);
        ir_buf_puts(b, num);
        break;
    case SP_V_STR:
        if (top) ir_buf_putn(b, v->u.str.s, v->u.str.len);
        else ir_buf_put_quoted(b, v->u.str.s, v->u.str.len, 1);
        break;
    case SP_V_TUPLE:
    case SP_V_LIST: {
        int tup = v->kind == SP_V_TUPLE;
        ir_buf_putc(b, tup ? '(' : '[');
        for (int i = 0; i < v->u.seq.n; i++) {
            if (i) ir_buf_puts(b, ", ");
            value_text(b, v->u.seq.items[i], 0, depth + 1);
        }
        if (tup && v->u.seq.n == 1) ir_buf_putc(b, ',');
        ir_buf_putc(b, tup ? ')' : ']');
        break;
    }
    case SP_V_TENSOR: {
        char *s = sp_tensor_to_string(v->u.tensor);
        if (!s) { /* the error (a GPU tensor, no memory) is already set */
            b->failed = 2;
            return;
        }
        ir_buf_puts(b, s);
        free(s);
        break;
    }
    case SP_V_DTYPE: ir_buf_printf(b, "spore.%s", sp_dtype_name(v->u.dtype)); break;
    case SP_V_PRIM: {
        const char *n = sp_op_name(v->u.prim);
        ir_buf_printf(b, "<primitive %s>", n ? n : "?");
        break;
    }
    case SP_V_BUILTIN: ir_buf_printf(b, "<built-in function %s>", builtin_name(v->u.builtin)); break;
    case SP_V_MODULE: ir_buf_printf(b, "<module '%s'>", module_name(v->u.module)); break;
    case SP_V_GRAPH: ir_buf_printf(b, "<function %s>", graph_name(v->u.graph)); break;
    case SP_V_CLOSURE: ir_buf_printf(b, "<function %s>", graph_name(v->u.closure.graph)); break;
    case SP_V_PARTIAL:
        ir_buf_puts(b, "functools.partial(");
        value_text(b, v->u.partial.fn, 0, depth + 1);
        for (int i = 0; i < v->u.partial.n; i++) {
            ir_buf_puts(b, ", ");
            value_text(b, v->u.partial.args[i], 0, depth + 1);
        }
        ir_buf_putc(b, ')');
        break;
    case SP_V_KEYWORD:
        ir_buf_printf(b, "%s=", v->u.kw.name);
        value_text(b, v->u.kw.value, 0, depth + 1);
        break;
    case SP_V_SLICE:
        ir_buf_puts(b, "slice(");
        value_text(b, v->u.slice.start, 0, depth + 1);
        ir_buf_puts(b, ", ");
        value_text(b, v->u.slice.stop, 0, depth + 1);
        ir_buf_puts(b, ", ");
        value_text(b, v->u.slice.step, 0, depth + 1);
        ir_buf_putc(b, ')');
        break;
    }
}

char *sp_value_to_string(const sp_value *v) {
    if (!v) {
        sp_error(SP_ERR_ARG, "value_to_string: NULL value");
        return NULL;
    }
    ir_buf b = {0};
    value_text(&b, v, 1, 0);
    if (b.failed == 2) { /* keep the tensor printer's message */
        ir_buf_free(&b);
        return NULL;
    }
    return ir_buf_finish(&b);
}

const char *sp_value_kind_name(const sp_value *v) {
    if (!v) return "NULL";
    switch (v->kind) {
    case SP_V_NONE: return "NoneType";
    case SP_V_BOOL: return "bool";
    case SP_V_INT: return "int";
    case SP_V_FLOAT: return "float";
    case SP_V_STR: return "str";
    case SP_V_TUPLE: return "tuple";
    case SP_V_LIST: return "list";
    case SP_V_TENSOR: return "Tensor";
    case SP_V_DTYPE: return "dtype";
    case SP_V_PRIM: return "primitive";
    case SP_V_BUILTIN: return "builtin_function";
    case SP_V_MODULE: return "module";
    case SP_V_GRAPH:
    case SP_V_CLOSURE: return "function";
    case SP_V_PARTIAL: return "functools.partial";
    case SP_V_KEYWORD: return "keyword";
    case SP_V_SLICE: return "slice";
    case SP_V_ELLIPSIS: return "ellipsis";
    case SP_V_UNDEF: return "undefined";
    case SP_V_ENV: return "env";
    }
    return "?";
}
