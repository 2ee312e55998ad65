/*
 * builtins.c -- the language's own operations (src/ir/builtins.def) on
 * Python values: ints, floats, bools, None, strings, tuples and lists, and
 * Python's built-in functions (len, isinstance, min, max, abs, print, range,
 * zip, enumerate, int, float, bool, tuple, list, str).
 *
 * Semantics are Python's, with int64 for int: + - * and ** on ints report
 * an overflow instead of growing; // and % floor toward negative infinity
 * and take the divisor's sign; / always gives a float; division by zero is
 * a ZeroDivisionError.  bool is an int (True + 1 == 2).  Comparisons of
 * numbers mix kinds by value (1 == 1.0), strings, tuples and lists compare
 * lexicographically, `==` between other kinds compares values of the same
 * kind and is False across kinds.  When a tensor takes part, the operator
 * goes to tensor_value.c (a primitive with weak typing).
 *
 * Values are immutable, so containers are shared rather than copied where
 * Python would have copied (t[:] of a whole tuple returns t itself).
 *
 * Arguments are borrowed; results are new references; errors set the
 * message and return NULL (vm.c adds the source location).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ad/ad.h"
#include "runtime/rt.h"

#define RT_MAX_RANGE (1 << 22) /* items of a materialized range, zip, repetition */

static const char *names[] = {
#define SP_BUILTIN(ID, name, n) #name,
#include "ir/builtins.def"
#undef SP_BUILTIN
};
static const int arity[] = {
#define SP_BUILTIN(ID, name, n) n,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

const char *rt_builtin_name(int id) { return id >= 0 && id < RT_B_COUNT ? names[id] : "?"; }

static sp_value *type_error2(const char *sym, const sp_value *a, const sp_value *b) {
    sp_error(SP_ERR_TYPE, "unsupported operand type(s) for %s: '%s' and '%s'", sym, sp_value_kind_name(a),
             sp_value_kind_name(b));
    return NULL;
}

static int is_intlike(const sp_value *v) { return v->kind == SP_V_INT || v->kind == SP_V_BOOL; }
static int64_t ival(const sp_value *v) { return v->kind == SP_V_INT ? v->u.i : v->u.b; }
static double fval(const sp_value *v) { return v->kind == SP_V_FLOAT ? v->u.f : (double)ival(v); }
static int is_seq(const sp_value *v) { return v->kind == SP_V_TUPLE || v->kind == SP_V_LIST; }

static sp_value *overflow(const char *sym) {
    sp_error(SP_ERR_RUNTIME, "OverflowError: integer overflow in %s (Spore's int is 64-bit)", sym);
    return NULL;
}

/* ---- numbers ---------------------------------------------------------------- */

static sp_value *int_pow(int64_t a, int64_t b) {
    if (b < 0) {
        if (a == 0) {
            sp_error(SP_ERR_RUNTIME, "ZeroDivisionError: 0.0 cannot be raised to a negative power");
            return NULL;
        }
        return sp_value_float(pow((double)a, (double)b));
    }
    int64_t r = 1, base = a;
    while (b) {
        if (b & 1 && __builtin_mul_overflow(r, base, &r)) return overflow("**");
        b >>= 1;
        if (b && __builtin_mul_overflow(base, base, &base)) return overflow("**");
    }
    return sp_value_int(r);
}

/* Python's float divmod. */
static void float_divmod(double a, double b, double *q, double *r) {
    double mod = fmod(a, b), div = (a - mod) / b;
    if (mod != 0) {
        if ((b < 0) != (mod < 0)) {
            mod += b;
            div -= 1.0;
        }
    } else {
        mod = copysign(0.0, b);
    }
    double fl;
    if (div != 0) {
        fl = floor(div);
        if (div - fl > 0.5) fl += 1.0;
    } else {
        fl = copysign(0.0, a / b);
    }
    *q = fl;
    *r = mod;
}

static int cmp_result(int id, int c) {
    switch (id) {
    case RT_B_EQ: return c == 0;
    case RT_B_NE: return c != 0;
    case RT_B_LT: return c < 0;
    case RT_B_LE: return c <= 0;
    case RT_B_GT: return c > 0;
    default: return c >= 0;
    }
}

static sp_value *num_binary(int id, const sp_value *a, const sp_value *b) {
    if (is_intlike(a) && is_intlike(b)) {
        int64_t x = ival(a), y = ival(b), r;
        switch (id) {
        case RT_B_ADD: return __builtin_add_overflow(x, y, &r) ? overflow("+") : sp_value_int(r);
        case RT_B_SUB: return __builtin_sub_overflow(x, y, &r) ? overflow("-") : sp_value_int(r);
        case RT_B_MUL: return __builtin_mul_overflow(x, y, &r) ? overflow("*") : sp_value_int(r);
        case RT_B_TRUEDIV:
            if (y == 0) break;
            return sp_value_float((double)x / (double)y);
        case RT_B_FLOORDIV:
        case RT_B_MOD: {
            if (y == 0) {
                sp_error(SP_ERR_RUNTIME, "ZeroDivisionError: integer division or modulo by zero");
                return NULL;
            }
            if (x == INT64_MIN && y == -1) return id == RT_B_MOD ? sp_value_int(0) : overflow("//");
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                q--;
                m += y;
            }
            return sp_value_int(id == RT_B_MOD ? m : q);
        }
        case RT_B_POW: return int_pow(x, y);
        default: return sp_value_bool(cmp_result(id, (x > y) - (x < y)));
        }
        sp_error(SP_ERR_RUNTIME, "ZeroDivisionError: division by zero");
        return NULL;
    }
    double x = fval(a), y = fval(b);
    switch (id) {
    case RT_B_ADD: return sp_value_float(x + y);
    case RT_B_SUB: return sp_value_float(x - y);
    case RT_B_MUL: return sp_value_float(x * y);
    case RT_B_TRUEDIV:
        if (y == 0) break;
        return sp_value_float(x / y);
    case RT_B_FLOORDIV:
    case RT_B_MOD: {
        if (y == 0) break;
        double q, r;
        float_divmod(x, y, &q, &r);
        return sp_value_float(id == RT_B_MOD ? r : q);
    }
    case RT_B_POW:
        if (x == 0 && y < 0) {
            sp_error(SP_ERR_RUNTIME, "ZeroDivisionError: 0.0 cannot be raised to a negative power");
            return NULL;
        }
        if (x < 0 && y != floor(y) && isfinite(y)) {
            sp_error(SP_ERR_RUNTIME, "ValueError: a negative number cannot be raised to a fractional power "
                                     "(the result would be complex)");
            return NULL;
        }
        return sp_value_float(pow(x, y));
    default:
        if (isnan(x) || isnan(y)) return sp_value_bool(id == RT_B_NE);
        return sp_value_bool(cmp_result(id, (x > y) - (x < y)));
    }
    sp_error(SP_ERR_RUNTIME, "ZeroDivisionError: float division by zero");
    return NULL;
}

/* ---- sequences and strings ---------------------------------------------------- */

static int value_eq(const sp_value *a, const sp_value *b, int depth);

/* Three-way comparison of two ordered values; *ok = 0 + error when they
 * cannot be ordered. */
static int order_cmp(const sp_value *a, const sp_value *b, int depth, int *ok) {
    if (depth > 200) {
        sp_error(SP_ERR_RUNTIME, "RecursionError: comparison nested too deeply");
        *ok = 0;
        return 0;
    }
    if (rt_is_scalar(a) && rt_is_scalar(b)) {
        if (is_intlike(a) && is_intlike(b)) return (ival(a) > ival(b)) - (ival(a) < ival(b));
        double x = fval(a), y = fval(b);
        return (x > y) - (x < y);
    }
    if (a->kind == SP_V_STR && b->kind == SP_V_STR) {
        size_t n = a->u.str.len < b->u.str.len ? a->u.str.len : b->u.str.len;
        int c = memcmp(a->u.str.s, b->u.str.s, n);
        if (c) return c < 0 ? -1 : 1;
        return (a->u.str.len > b->u.str.len) - (a->u.str.len < b->u.str.len);
    }
    if (is_seq(a) && a->kind == b->kind) {
        int n = a->u.seq.n < b->u.seq.n ? a->u.seq.n : b->u.seq.n;
        for (int i = 0; i < n; i++) {
            const sp_value *x = a->u.seq.items[i], *y = b->u.seq.items[i];
            int e = value_eq(x, y, depth + 1);
            if (e < 0) {
                *ok = 0;
                return 0;
            }
            if (!e) return order_cmp(x, y, depth + 1, ok);
        }
        return (a->u.seq.n > b->u.seq.n) - (a->u.seq.n < b->u.seq.n);
    }
    sp_error(SP_ERR_TYPE, "'<' not supported between instances of '%s' and '%s'", sp_value_kind_name(a),
             sp_value_kind_name(b));
    *ok = 0;
    return 0;
}

/* Python == on non-tensor values: 1/0, or -1 + error. */
static int value_eq(const sp_value *a, const sp_value *b, int depth) {
    if (depth > 200) {
        sp_error(SP_ERR_RUNTIME, "RecursionError: comparison nested too deeply");
        return -1;
    }
    if (a == b) return 1;
    if (rt_is_scalar(a) && rt_is_scalar(b)) {
        if (is_intlike(a) && is_intlike(b)) return ival(a) == ival(b);
        return fval(a) == fval(b);
    }
    if (a->kind == SP_V_TENSOR || b->kind == SP_V_TENSOR) {
        /* inside containers: equal when the elementwise == is all true */
        sp_value *r = rt_tensor_binary(RT_B_EQ, a, b);
        if (!r) return -1;
        int t = 1;
        if (r->kind == SP_V_TENSOR && sp_tensor_is_meta(r->u.tensor)) {
            sp_meta_value_error("==", r->u.tensor);
            t = -1;
        } else if (r->kind == SP_V_TENSOR) {
            sp_tensor *x = rt_host(r->u.tensor); /* a GPU result is read on the host */
            if (!x) t = -1;
            for (int64_t i = 0, n = x ? sp_tensor_numel(x) : 0; i < n && t; i++) {
                int64_t idx[SP_MAX_DIMS], lin = i;
                for (int d = x->ndim - 1; d >= 0; d--) {
                    idx[d] = lin % x->shape[d];
                    lin /= x->shape[d];
                }
                t = sp_tensor_get(x, idx) != 0;
            }
            sp_tensor_release(x);
        } else {
            t = sp_value_truth(r);
        }
        sp_value_release(r);
        return t;
    }
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case SP_V_STR: return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
    case SP_V_TUPLE:
    case SP_V_LIST:
        if (a->u.seq.n != b->u.seq.n) return 0;
        for (int i = 0; i < a->u.seq.n; i++) {
            int e = value_eq(a->u.seq.items[i], b->u.seq.items[i], depth + 1);
            if (e <= 0) return e;
        }
        return 1;
    case SP_V_CLOSURE: return a->u.closure.graph == b->u.closure.graph && sp_value_equal(a, b);
    default: return sp_value_equal(a, b);
    }
}

static sp_value *seq_concat(const sp_value *a, const sp_value *b) {
    int n = a->u.seq.n + b->u.seq.n;
    sp_value **items = malloc(sizeof *items * (size_t)(n ? n : 1));
    if (!items) {
        sp_error(SP_ERR_NOMEM, "out of memory concatenating sequences");
        return NULL;
    }
    memcpy(items, a->u.seq.items, sizeof *items * (size_t)a->u.seq.n);
    memcpy(items + a->u.seq.n, b->u.seq.items, sizeof *items * (size_t)b->u.seq.n);
    sp_value *r = a->kind == SP_V_TUPLE ? sp_value_tuple(n, items) : sp_value_list(n, items);
    free(items);
    return r;
}

static sp_value *seq_repeat(const sp_value *s, int64_t k) {
    if (k < 0) k = 0;
    if (s->kind == SP_V_STR) {
        if (s->u.str.len && (uint64_t)k > (uint64_t)(1 << 28) / s->u.str.len) return overflow("* (string too long)");
        size_t n = s->u.str.len * (size_t)k;
        char *buf = malloc(n + 1);
        if (!buf) {
            sp_error(SP_ERR_NOMEM, "out of memory repeating a string");
            return NULL;
        }
        for (int64_t i = 0; i < k; i++) memcpy(buf + (size_t)i * s->u.str.len, s->u.str.s, s->u.str.len);
        sp_value *r = sp_value_str(buf, n);
        free(buf);
        return r;
    }
    if (s->u.seq.n && k > RT_MAX_RANGE / s->u.seq.n) return overflow("* (sequence too long)");
    int n = (int)(s->u.seq.n * k);
    sp_value **items = malloc(sizeof *items * (size_t)(n ? n : 1));
    if (!items) {
        sp_error(SP_ERR_NOMEM, "out of memory repeating a sequence");
        return NULL;
    }
    for (int64_t i = 0; i < k; i++)
        memcpy(items + i * s->u.seq.n, s->u.seq.items, sizeof *items * (size_t)s->u.seq.n);
    sp_value *r = s->kind == SP_V_TUPLE ? sp_value_tuple(n, items) : sp_value_list(n, items);
    free(items);
    return r;
}

static sp_value *str_concat(const sp_value *a, const sp_value *b) {
    size_t n = a->u.str.len + b->u.str.len;
    char *buf = malloc(n + 1);
    if (!buf) {
        sp_error(SP_ERR_NOMEM, "out of memory concatenating strings");
        return NULL;
    }
    memcpy(buf, a->u.str.s, a->u.str.len);
    memcpy(buf + a->u.str.len, b->u.str.s, b->u.str.len);
    sp_value *r = sp_value_str(buf, n);
    free(buf);
    return r;
}

/* x in container: 1/0 or -1 + error. */
static int contains(const sp_value *c, const sp_value *x) {
    if (c->kind == SP_V_STR) {
        if (x->kind != SP_V_STR) {
            sp_error(SP_ERR_TYPE, "'in <string>' requires string as left operand, not %s", sp_value_kind_name(x));
            return -1;
        }
        if (x->u.str.len == 0) return 1;
        for (size_t i = 0; i + x->u.str.len <= c->u.str.len; i++)
            if (!memcmp(c->u.str.s + i, x->u.str.s, x->u.str.len)) return 1;
        return 0;
    }
    if (is_seq(c)) {
        for (int i = 0; i < c->u.seq.n; i++) {
            int e = value_eq(c->u.seq.items[i], x, 0);
            if (e) return e;
        }
        return 0;
    }
    sp_error(SP_ERR_TYPE, "argument of type '%s' is not iterable", sp_value_kind_name(c));
    return -1;
}

sp_value *rt_binary(int id, const sp_value *a, const sp_value *b) {
    if (id == RT_B_IS || id == RT_B_IS_NOT) {
        int same = a == b || (a->kind == b->kind && (a->kind == SP_V_NONE || a->kind == SP_V_ELLIPSIS ||
                                                     (a->kind == SP_V_BOOL && a->u.b == b->u.b) ||
                                                     (a->kind == SP_V_DTYPE && a->u.dtype == b->u.dtype) ||
                                                     (a->kind == SP_V_MODULE && a->u.module == b->u.module) ||
                                                     (a->kind == SP_V_BUILTIN && a->u.builtin == b->u.builtin) ||
                                                     (a->kind == SP_V_TENSOR && a->u.tensor == b->u.tensor)));
        return sp_value_bool(id == RT_B_IS ? same : !same);
    }
    if (id == RT_B_IN || id == RT_B_NOT_IN) {
        if (b->kind == SP_V_TENSOR) {
            sp_error(SP_ERR_UNSUPPORTED, "'in' on a Tensor is not supported (use ops.equal(...).any())");
            return NULL;
        }
        int r = contains(b, a);
        return r < 0 ? NULL : sp_value_bool(id == RT_B_IN ? r : !r);
    }
    if (a->kind == SP_V_TENSOR || b->kind == SP_V_TENSOR) return rt_tensor_binary(id, a, b);
    if (rt_is_scalar(a) && rt_is_scalar(b) && id != RT_B_MATMUL) return num_binary(id, a, b);
    const char *sym = id == RT_B_ADD ? "+" : id == RT_B_SUB ? "-" : id == RT_B_MUL ? "*" : id == RT_B_TRUEDIV ? "/"
                      : id == RT_B_FLOORDIV ? "//" : id == RT_B_MOD ? "%" : id == RT_B_POW ? "**" : "@";
    switch (id) {
    case RT_B_EQ:
    case RT_B_NE: {
        int e = value_eq(a, b, 0);
        return e < 0 ? NULL : sp_value_bool(id == RT_B_EQ ? e : !e);
    }
    case RT_B_LT:
    case RT_B_LE:
    case RT_B_GT:
    case RT_B_GE: {
        int ok = 1, c = order_cmp(a, b, 0, &ok);
        if (!ok) {
            if (sp_last_status() == SP_ERR_TYPE) {
                const char *s = id == RT_B_LT ? "<" : id == RT_B_LE ? "<=" : id == RT_B_GT ? ">" : ">=";
                sp_error(SP_ERR_TYPE, "'%s' not supported between instances of '%s' and '%s'", s,
                         sp_value_kind_name(a), sp_value_kind_name(b));
            }
            return NULL;
        }
        return sp_value_bool(cmp_result(id, c));
    }
    case RT_B_ADD:
        if (a->kind == SP_V_STR && b->kind == SP_V_STR) return str_concat(a, b);
        if (is_seq(a) && a->kind == b->kind) return seq_concat(a, b);
        break;
    case RT_B_MUL:
        if ((is_seq(a) || a->kind == SP_V_STR) && is_intlike(b)) return seq_repeat(a, ival(b));
        if ((is_seq(b) || b->kind == SP_V_STR) && is_intlike(a)) return seq_repeat(b, ival(a));
        break;
    default: break;
    }
    return type_error2(sym, a, b);
}

/* ---- unary ---------------------------------------------------------------------- */

static sp_value *unary(int id, const sp_value *a) {
    if (id == RT_B_NOT || id == RT_B_TRUTH) {
        int t = sp_value_truth(a);
        return t < 0 ? NULL : sp_value_bool(id == RT_B_NOT ? !t : t);
    }
    if (a->kind == SP_V_TENSOR) {
        if (id == RT_B_POS) {
            sp_value_retain((sp_value *)a);
            return (sp_value *)a;
        }
        sp_tensor *t = a->u.tensor;
        return rt_op(id == RT_B_NEG ? SP_OP_NEG : SP_OP_ABS, 1, &t, NULL);
    }
    if (is_intlike(a)) {
        int64_t x = ival(a);
        if (id == RT_B_POS) return sp_value_int(x);
        if (x == INT64_MIN) return overflow(id == RT_B_NEG ? "unary -" : "abs()");
        return sp_value_int(id == RT_B_NEG ? -x : x < 0 ? -x : x);
    }
    if (a->kind == SP_V_FLOAT)
        return sp_value_float(id == RT_B_NEG ? -a->u.f : id == RT_B_ABS ? fabs(a->u.f) : a->u.f);
    const char *what = id == RT_B_NEG ? "bad operand type for unary -" : id == RT_B_POS ? "bad operand type for unary +"
                                                                                        : "bad operand type for abs()";
    sp_error(SP_ERR_TYPE, "%s: '%s'", what, sp_value_kind_name(a));
    return NULL;
}

/* ---- indexing of sequences -------------------------------------------------------- */

sp_value *rt_seq_getitem(const sp_value *x, const sp_value *index) {
    const char *kind = sp_value_kind_name(x);
    int64_t n;
    if (is_seq(x)) n = x->u.seq.n;
    else if (x->kind == SP_V_STR) n = (int64_t)x->u.str.len;
    else {
        sp_error(SP_ERR_TYPE, "'%s' object is not subscriptable", kind);
        return NULL;
    }
    if (index->kind == SP_V_SLICE) {
        int64_t start, step, len;
        if (rt_slice_indices(index, n, &start, &step, &len)) return NULL;
        if (x->kind == SP_V_STR) {
            char *buf = malloc((size_t)len + 1);
            if (!buf) {
                sp_error(SP_ERR_NOMEM, "out of memory slicing a string");
                return NULL;
            }
            for (int64_t i = 0; i < len; i++) buf[i] = x->u.str.s[start + i * step];
            sp_value *r = sp_value_str(buf, (size_t)len);
            free(buf);
            return r;
        }
        if (len == n && step == 1) {
            sp_value_retain((sp_value *)x);
            return (sp_value *)x;
        }
        sp_value **items = malloc(sizeof *items * (size_t)(len ? len : 1));
        if (!items) {
            sp_error(SP_ERR_NOMEM, "out of memory slicing a %s", kind);
            return NULL;
        }
        for (int64_t i = 0; i < len; i++) items[i] = x->u.seq.items[start + i * step];
        sp_value *r = x->kind == SP_V_TUPLE ? sp_value_tuple((int)len, items) : sp_value_list((int)len, items);
        free(items);
        return r;
    }
    int64_t i;
    if (index->kind == SP_V_FLOAT || rt_int_of(index, &i, "index")) {
        sp_error(SP_ERR_TYPE, "%s indices must be integers or slices, not %s", kind, sp_value_kind_name(index));
        return NULL;
    }
    if (i < -n || i >= n) {
        sp_error(SP_ERR_ARG, "IndexError: %s index %lld out of range (length %lld)", kind, (long long)i,
                 (long long)n);
        return NULL;
    }
    if (i < 0) i += n;
    if (x->kind == SP_V_STR) return sp_value_str(x->u.str.s + i, 1);
    sp_value_retain(x->u.seq.items[i]);
    return x->u.seq.items[i];
}

/* ---- Python's built-in functions --------------------------------------------------- */

/* The items of an iterable: a tuple/list's own array (borrowed, *owned =
 * NULL), or a new array of new values for strings and tensors (rows),
 * released by items_free. */
typedef struct items {
    int n;
    sp_value **v;
    int owned;
} items;

static void items_free(items *it) {
    if (it->owned) {
        for (int i = 0; i < it->n; i++) sp_value_release(it->v[i]);
        free(it->v);
    }
    memset(it, 0, sizeof *it);
}

static int items_of(const sp_value *x, items *it, const char *what) {
    memset(it, 0, sizeof *it);
    if (is_seq(x)) {
        it->n = x->u.seq.n;
        it->v = x->u.seq.items;
        return 0;
    }
    int64_t n;
    if (x->kind == SP_V_STR) n = (int64_t)x->u.str.len;
    else if (x->kind == SP_V_TENSOR && x->u.tensor->ndim > 0) n = x->u.tensor->shape[0];
    else {
        sp_error(SP_ERR_TYPE, "%s: '%s' object is not iterable", what, sp_value_kind_name(x));
        return -1;
    }
    if (n > RT_MAX_RANGE) {
        sp_error(SP_ERR_ARG, "%s: %lld items are too many to iterate", what, (long long)n);
        return -1;
    }
    it->v = calloc((size_t)(n ? n : 1), sizeof *it->v);
    if (!it->v) {
        sp_error(SP_ERR_NOMEM, "%s: out of memory", what);
        return -1;
    }
    it->owned = 1;
    for (int64_t i = 0; i < n; i++) {
        sp_value *k = sp_value_int(i);
        it->v[i] = k ? rt_getitem(x, k) : NULL;
        sp_value_release(k);
        if (!it->v[i]) {
            it->n = (int)i;
            items_free(it);
            return -1;
        }
        it->n = (int)i + 1;
    }
    return 0;
}

static sp_value *b_len(const sp_value *x) {
    if (is_seq(x)) return sp_value_int(x->u.seq.n);
    if (x->kind == SP_V_STR) return sp_value_int((int64_t)x->u.str.len);
    if (x->kind == SP_V_TENSOR) {
        if (x->u.tensor->ndim == 0) {
            sp_error(SP_ERR_TYPE, "len() of a 0-d tensor");
            return NULL;
        }
        return sp_value_int(x->u.tensor->shape[0]);
    }
    sp_error(SP_ERR_TYPE, "object of type '%s' has no len()", sp_value_kind_name(x));
    return NULL;
}

/* isinstance(x, t) for one type t: 1/0, -1 + error. */
static int instance_of(const sp_value *x, const sp_value *t) {
    if (t->kind == SP_V_BUILTIN) {
        switch (t->u.builtin) {
        case RT_B_INT: return x->kind == SP_V_INT || x->kind == SP_V_BOOL;
        case RT_B_FLOAT: return x->kind == SP_V_FLOAT;
        case RT_B_BOOL: return x->kind == SP_V_BOOL;
        case RT_B_TUPLE: return x->kind == SP_V_TUPLE;
        case RT_B_LIST: return x->kind == SP_V_LIST;
        case RT_B_STR: return x->kind == SP_V_STR;
        default: break;
        }
    }
    if (rt_is_tensor_type(t)) return x->kind == SP_V_TENSOR;
    if (t->kind == SP_V_TUPLE) {
        for (int i = 0; i < t->u.seq.n; i++) {
            int r = instance_of(x, t->u.seq.items[i]);
            if (r) return r;
        }
        return 0;
    }
    sp_error(SP_ERR_TYPE, "isinstance() arg 2 must be a type or tuple of types (int, float, bool, tuple, list, "
                          "str, spore.Tensor), not %s", sp_value_kind_name(t));
    return -1;
}

static sp_value *b_minmax(int is_max, int n, sp_value *const *args) {
    const char *name = is_max ? "max" : "min";
    items it = {0};
    sp_value *const *v = args;
    int k = n;
    if (n == 0) {
        sp_error(SP_ERR_TYPE, "%s expected at least 1 argument, got 0", name);
        return NULL;
    }
    if (n == 1) {
        if (items_of(args[0], &it, name)) return NULL;
        v = it.v;
        k = it.n;
        if (k == 0) {
            sp_error(SP_ERR_ARG, "ValueError: %s() arg is an empty sequence", name);
            items_free(&it);
            return NULL;
        }
    }
    const sp_value *best = v[0];
    for (int i = 1; i < k; i++) {
        sp_value *c = rt_binary(is_max ? RT_B_GT : RT_B_LT, v[i], best);
        int t = c ? sp_value_truth(c) : -1;
        sp_value_release(c);
        if (t < 0) {
            items_free(&it);
            return NULL;
        }
        if (t) best = v[i];
    }
    sp_value_retain((sp_value *)best);
    items_free(&it);
    return (sp_value *)best;
}

static sp_value *b_print(int n, sp_value *const *args) {
    const char *sep = " ", *end = "\n";
    size_t sep_n = 1, end_n = 1;
    for (int i = 0; i < n; i++) {
        const sp_value *a = args[i];
        if (a->kind != SP_V_KEYWORD) continue;
        const sp_value *v = a->u.kw.value;
        int is_sep = !strcmp(a->u.kw.name, "sep");
        if (!is_sep && strcmp(a->u.kw.name, "end") != 0 && strcmp(a->u.kw.name, "flush") != 0) {
            sp_error(SP_ERR_TYPE, "print() got an unexpected keyword argument '%s'", a->u.kw.name);
            return NULL;
        }
        if (!strcmp(a->u.kw.name, "flush") || v->kind == SP_V_NONE) continue;
        if (v->kind != SP_V_STR) {
            sp_error(SP_ERR_TYPE, "print(): %s must be None or a string, not %s", a->u.kw.name, sp_value_kind_name(v));
            return NULL;
        }
        if (is_sep) sep = v->u.str.s, sep_n = v->u.str.len;
        else end = v->u.str.s, end_n = v->u.str.len;
    }
    /* format everything first, so an error prints nothing */
    char **texts = calloc((size_t)(n ? n : 1), sizeof *texts);
    if (!texts) {
        sp_error(SP_ERR_NOMEM, "print: out of memory");
        return NULL;
    }
    int ok = 1;
    for (int i = 0; i < n && ok; i++)
        if (args[i]->kind != SP_V_KEYWORD) ok = (texts[i] = sp_value_to_string(args[i])) != NULL;
    if (ok) {
        int first = 1;
        for (int i = 0; i < n; i++) {
            if (!texts[i]) continue;
            if (!first) fwrite(sep, 1, sep_n, stdout);
            fputs(texts[i], stdout);
            first = 0;
        }
        fwrite(end, 1, end_n, stdout);
        fflush(stdout);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return ok ? sp_value_none() : NULL;
}

static sp_value *tuple_of_ints(int64_t start, int64_t step, int64_t len) {
    sp_value **v = malloc(sizeof *v * (size_t)(len ? len : 1));
    if (!v) {
        sp_error(SP_ERR_NOMEM, "range: out of memory");
        return NULL;
    }
    int64_t i;
    for (i = 0; i < len; i++)
        if (!(v[i] = sp_value_int((int64_t)((uint64_t)start + (uint64_t)i * (uint64_t)step)))) break;
    sp_value *r = i == len ? sp_value_tuple((int)len, v) : NULL;
    for (int64_t k = 0; k < i; k++) sp_value_release(v[k]);
    free(v);
    return r;
}

static sp_value *b_range(int n, sp_value *const *args) {
    int64_t a[3] = {0, 0, 1};
    if (n < 1 || n > 3) {
        sp_error(SP_ERR_TYPE, "range expected 1 to 3 arguments, got %d", n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!is_intlike(args[i]) && args[i]->kind != SP_V_TENSOR) {
            sp_error(SP_ERR_TYPE, "range(): '%s' object cannot be interpreted as an integer",
                     sp_value_kind_name(args[i]));
            return NULL;
        }
        if (rt_int_of(args[i], &a[n == 1 ? 1 : i], "range")) return NULL;
    }
    int64_t start = a[0], stop = a[1], step = a[2];
    uint64_t len;
    if (step == 0) {
        sp_error(SP_ERR_ARG, "ValueError: range() arg 3 must not be zero");
        return NULL;
    }
    /* in uint64: stop - start may not fit an int64 */
    if (step > 0) len = stop > start ? ((uint64_t)stop - (uint64_t)start - 1) / (uint64_t)step + 1 : 0;
    else len = start > stop ? ((uint64_t)start - (uint64_t)stop - 1) / (0ull - (uint64_t)step) + 1 : 0;
    if (len > RT_MAX_RANGE) {
        sp_error(SP_ERR_ARG, "range of %llu items is too long to materialize (at most %d; a `for i in range(...)` "
                 "with a literal step does not materialize it)", (unsigned long long)len, RT_MAX_RANGE);
        return NULL;
    }
    return tuple_of_ints(start, step, (int64_t)len);
}

static sp_value *b_zip(int n, sp_value *const *args) {
    items *its = calloc((size_t)(n ? n : 1), sizeof *its);
    if (!its) {
        sp_error(SP_ERR_NOMEM, "zip: out of memory");
        return NULL;
    }
    sp_value *r = NULL, **rows = NULL, **row = NULL;
    int len = n ? INT32_MAX : 0, i, k;
    for (i = 0; i < n; i++) {
        if (items_of(args[i], &its[i], "zip")) goto done;
        if (its[i].n < len) len = its[i].n;
    }
    rows = calloc((size_t)(len ? len : 1), sizeof *rows);
    row = malloc(sizeof *row * (size_t)(n ? n : 1));
    if (!rows || !row) {
        sp_error(SP_ERR_NOMEM, "zip: out of memory");
        goto done;
    }
    for (k = 0; k < len; k++) {
        for (int j = 0; j < n; j++) row[j] = its[j].v[k];
        if (!(rows[k] = sp_value_tuple(n, row))) goto done;
    }
    r = sp_value_tuple(len, rows);
done:
    for (int j = 0; rows && j < len; j++) sp_value_release(rows[j]);
    free(rows);
    free(row);
    for (int j = 0; j < n; j++) items_free(&its[j]);
    free(its);
    return r;
}

static sp_value *b_enumerate(int n, sp_value *const *args) {
    int64_t start = 0;
    const sp_value *seq = NULL;
    for (int i = 0; i < n; i++) {
        const sp_value *a = args[i];
        if (a->kind == SP_V_KEYWORD) {
            if (strcmp(a->u.kw.name, "start") != 0) {
                sp_error(SP_ERR_TYPE, "enumerate() got an unexpected keyword argument '%s'", a->u.kw.name);
                return NULL;
            }
            if (rt_int_of(a->u.kw.value, &start, "enumerate start")) return NULL;
        } else if (!seq) {
            seq = a;
        } else if (rt_int_of(a, &start, "enumerate start")) {
            return NULL;
        }
    }
    if (!seq) {
        sp_error(SP_ERR_TYPE, "enumerate() missing required argument 'iterable'");
        return NULL;
    }
    items it;
    if (items_of(seq, &it, "enumerate")) return NULL;
    sp_value **rows = calloc((size_t)(it.n ? it.n : 1), sizeof *rows), *r = NULL;
    int k = 0;
    if (rows) {
        for (k = 0; k < it.n; k++) {
            sp_value *pair[2] = {sp_value_int(start + k), it.v[k]};
            rows[k] = pair[0] ? sp_value_tuple(2, pair) : NULL;
            sp_value_release(pair[0]);
            if (!rows[k]) break;
        }
        if (k == it.n) r = sp_value_tuple(it.n, rows);
        for (int j = 0; j < k; j++) sp_value_release(rows[j]);
    } else {
        sp_error(SP_ERR_NOMEM, "enumerate: out of memory");
    }
    free(rows);
    items_free(&it);
    return r;
}

static sp_value *b_int(const sp_value *x) {
    if (is_intlike(x)) return sp_value_int(ival(x));
    double f;
    if (x->kind == SP_V_STR) {
        char *end;
        errno = 0;
        long long v = strtoll(x->u.str.s, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (end == x->u.str.s || *end || errno) {
            sp_error(SP_ERR_ARG, "ValueError: invalid literal for int() with base 10: '%s'", x->u.str.s);
            return NULL;
        }
        return sp_value_int(v);
    }
    if (x->kind == SP_V_TENSOR && sp_tensor_numel(x->u.tensor) == 1 && !sp_dtype_is_float(x->u.tensor->dtype) &&
        !sp_tensor_is_meta(x->u.tensor)) { /* a meta one fails in rt_float_of below */
        int64_t i; /* rt_int_of reads a GPU tensor through a host copy */
        return rt_int_of(x, &i, "int()") ? NULL : sp_value_int(i);
    }
    if (x->kind != SP_V_FLOAT && x->kind != SP_V_TENSOR) {
        sp_error(SP_ERR_TYPE, "int() argument must be a string or a number, not '%s'", sp_value_kind_name(x));
        return NULL;
    }
    if (rt_float_of(x, &f, "int()")) return NULL;
    if (isnan(f)) {
        sp_error(SP_ERR_ARG, "ValueError: cannot convert float NaN to integer");
        return NULL;
    }
    if (!(f > -9.2233720368547758e18 && f < 9.2233720368547758e18)) {
        sp_error(SP_ERR_RUNTIME, "OverflowError: cannot convert float %g to a 64-bit integer", f);
        return NULL;
    }
    return sp_value_int((int64_t)f);
}

static sp_value *b_float(const sp_value *x) {
    double f;
    if (x->kind == SP_V_STR) {
        char *end;
        f = strtod(x->u.str.s, &end);
        while (*end == ' ' || *end == '\t' || *end == '\n') end++;
        if (end == x->u.str.s || *end) {
            sp_error(SP_ERR_ARG, "ValueError: could not convert string to float: '%s'", x->u.str.s);
            return NULL;
        }
        return sp_value_float(f);
    }
    if (!rt_is_scalar(x) && x->kind != SP_V_TENSOR) {
        sp_error(SP_ERR_TYPE, "float() argument must be a string or a number, not '%s'", sp_value_kind_name(x));
        return NULL;
    }
    return rt_float_of(x, &f, "float()") ? NULL : sp_value_float(f);
}

static sp_value *b_seq(int to_list, const sp_value *x) {
    if ((to_list && x->kind == SP_V_LIST) || (!to_list && x->kind == SP_V_TUPLE)) {
        sp_value_retain((sp_value *)x);
        return (sp_value *)x;
    }
    items it;
    if (items_of(x, &it, to_list ? "list()" : "tuple()")) return NULL;
    sp_value *r = to_list ? sp_value_list(it.n, it.v) : sp_value_tuple(it.n, it.v);
    items_free(&it);
    return r;
}

/* ---- the dispatcher --------------------------------------------------------------- */

static int takes_keywords(int id) {
    return id == RT_B_PRINT || id == RT_B_ENUMERATE || id == RT_B_API || id == RT_B_PARTIAL ||
           id == RT_B_MAKE_TUPLE || id == RT_B_MAKE_LIST || id == RT_B_J_PRIMAL || id == RT_B_GRAD_CALL ||
           id == RT_B_FILL_ZEROS || id == RT_B_SCATTER_TUPLE || id == RT_B_GATHER_TUPLE ||
           id == RT_B_TUPLE_HEAD || id == RT_B_TUPLE_TAIL || id == RT_B_ADD_GRAD || id == RT_B_ENV_SETITEM ||
           id == RT_B_ENV_GETITEM;
}

sp_value *rt_builtin_call(int id, int n, sp_value *const *args) {
    if (id < 0 || id >= RT_B_COUNT) {
        sp_error(SP_ERR_ARG, "no builtin with id %d", id);
        return NULL;
    }
    const char *name = names[id];
    if (arity[id] >= 0 && n != arity[id]) {
        sp_error(SP_ERR_TYPE, "%s() takes %d argument%s (%d given)", name, arity[id], arity[id] == 1 ? "" : "s", n);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (args[i]->kind == SP_V_UNDEF && id != RT_B_MAKE_TUPLE && id != RT_B_TUPLE_GETITEM &&
            id != RT_B_J_PRIMAL && id < RT_B_J) {
            sp_error(SP_ERR_RUNTIME, "UnboundLocalError: a variable is used where no value was assigned to it "
                                     "on this path");
            return NULL;
        }
        if (args[i]->kind == SP_V_KEYWORD && !takes_keywords(id)) {
            sp_error(SP_ERR_TYPE, "%s() takes no keyword arguments (got %s=...)", name, args[i]->u.kw.name);
            return NULL;
        }
    }
    switch (id) {
    case RT_B_SWITCH: {
        int t = sp_value_truth(args[0]);
        if (t < 0) return NULL;
        sp_value_retain(args[t ? 1 : 2]);
        return args[t ? 1 : 2];
    }
    case RT_B_MAKE_TUPLE: return sp_value_tuple(n, args);
    case RT_B_MAKE_LIST: return sp_value_list(n, args);
    case RT_B_MAKE_SLICE:
        for (int i = 0; i < 3; i++)
            if (args[i]->kind != SP_V_NONE && !is_intlike(args[i]) &&
                !(args[i]->kind == SP_V_TENSOR && sp_tensor_numel(args[i]->u.tensor) == 1)) {
                sp_error(SP_ERR_TYPE, "slice indices must be integers or None, not %s", sp_value_kind_name(args[i]));
                return NULL;
            }
        return sp_value_slice(args[0], args[1], args[2]);
    case RT_B_MAKE_KEYWORD:
        if (args[0]->kind != SP_V_STR) {
            sp_error(SP_ERR_TYPE, "make_keyword: the name must be a str");
            return NULL;
        }
        return sp_value_keyword(args[0]->u.str.s, args[1]);
    case RT_B_TUPLE_GETITEM:
    case RT_B_GETITEM:
        if (args[0]->kind == SP_V_UNDEF) {
            sp_error(SP_ERR_RUNTIME, "UnboundLocalError: a variable is used where no value was assigned to it");
            return NULL;
        }
        return rt_getitem(args[0], args[1]);
    case RT_B_PARTIAL:
        if (n < 1) {
            sp_error(SP_ERR_TYPE, "partial() needs a function");
            return NULL;
        }
        return sp_value_partial(args[0], n - 1, args + 1);
    case RT_B_RAISE: {
        char *s = sp_value_to_string(args[0]);
        if (s) sp_error(SP_ERR_RUNTIME, "%s", s);
        free(s);
        return NULL;
    }
    case RT_B_ASSERT: {
        int t = sp_value_truth(args[0]);
        if (t < 0) return NULL;
        if (t) return sp_value_none();
        if (args[1]->kind == SP_V_NONE) {
            sp_error(SP_ERR_RUNTIME, "AssertionError");
        } else {
            char *s = sp_value_to_string(args[1]);
            if (s) sp_error(SP_ERR_RUNTIME, "AssertionError: %s", s);
            free(s);
        }
        return NULL;
    }
    case RT_B_NEG:
    case RT_B_POS:
    case RT_B_NOT:
    case RT_B_TRUTH:
    case RT_B_ABS: return unary(id, args[0]);
    case RT_B_GETATTR:
        if (args[1]->kind != SP_V_STR) {
            sp_error(SP_ERR_TYPE, "getattr(): attribute name must be a string");
            return NULL;
        }
        return rt_getattr(args[0], args[1]->u.str.s);
    case RT_B_LEN: return b_len(args[0]);
    case RT_B_ISINSTANCE: {
        int r = instance_of(args[0], args[1]);
        return r < 0 ? NULL : sp_value_bool(r);
    }
    case RT_B_MIN: return b_minmax(0, n, args);
    case RT_B_MAX: return b_minmax(1, n, args);
    case RT_B_PRINT: return b_print(n, args);
    case RT_B_RANGE: return b_range(n, args);
    case RT_B_ZIP: return b_zip(n, args);
    case RT_B_ENUMERATE: return b_enumerate(n, args);
    case RT_B_INT: return b_int(args[0]);
    case RT_B_FLOAT: return b_float(args[0]);
    case RT_B_BOOL: return unary(RT_B_TRUTH, args[0]);
    case RT_B_TUPLE: return b_seq(0, args[0]);
    case RT_B_LIST: return b_seq(1, args[0]);
    case RT_B_STR: {
        char *s = sp_value_to_string(args[0]);
        sp_value *r = s ? sp_value_str(s, strlen(s)) : NULL;
        free(s);
        return r;
    }
    case RT_B_API: return rt_api_call(n, args);
    default:
        if (id >= RT_B_J) { /* autodiff (src/ad) */
            int handled = 0;
            sp_value *r = ad_builtin_call(id, n, args, &handled);
            if (handled) return r;
        }
        return rt_binary(id, args[0], args[1]);
    }
}

sp_value *rt_getattr(const sp_value *x, const char *name) {
    switch (x->kind) {
    case SP_V_TENSOR: return rt_tensor_getattr(x, name);
    case SP_V_MODULE: return rt_module_attr(x->u.module, name);
    case SP_V_DTYPE:
        if (!strcmp(name, "itemsize")) return sp_value_int((int64_t)sp_dtype_size(x->u.dtype));
        if (!strcmp(name, "name")) return sp_value_str(sp_dtype_name(x->u.dtype), strlen(sp_dtype_name(x->u.dtype)));
        break;
    default: break;
    }
    sp_error(SP_ERR_TYPE, "'%s' object has no attribute '%s'", sp_value_kind_name(x), name);
    return NULL;
}
