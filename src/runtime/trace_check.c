/*
 * trace_check.c -- the test-only proof that a traced API call is the
 * primitive calls it made (see trace_check.h for the steps).
 *
 * The compiler's specializer runs every API function on meta tensors with
 * a trace installed and replaces the call by the recorded primitive calls.
 * That is sound only if (a) the meta run gives the dtypes and shapes the
 * real run gives and (b) the recorded calls, replayed on real tensors,
 * compute the real result.  This file checks both for one call at a time,
 * so a Python test can sweep every row of api.def.
 *
 * The recorder keeps, per primitive call, the op, its inputs and outputs
 * (retained) and a deep copy of its attributes: the caller's sp_attrs
 * borrows its strings, and some (parameter names of api.c's bound call)
 * die with the call.  Replay maps each meta tensor to the real tensor it
 * stands for through a small list (pointer -> real), seeded with the
 * arguments and extended with every replayed output; a meta input that is
 * not in the list is a failure (a meta tensor the trace never saw made).
 *
 * Everything allocated here is released on every path; the C test runs it
 * under ASan's leak checker.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "frontend/frontend.h"
#include "runtime/rt.h"
#include "runtime/trace_check.h"

typedef struct tc_rec {
    int op, n_in, n_out;
    sp_tensor *in[SP_MAX_INPUTS];
    sp_tensor *out[SP_MAX_OUTPUTS];
    sp_attrs attrs; /* names and strings owned (strdup) */
} tc_rec;

typedef struct tc_trace {
    tc_rec *recs;
    int n, cap, failed;
} tc_trace;

typedef struct tc_map {
    sp_tensor **meta, **real; /* real retained; meta borrowed (kept alive elsewhere) */
    int n, cap;
} tc_map;

static void tc_attrs_free(sp_attrs *a) {
    for (int i = 0; i < a->n; i++) {
        free((char *)a->a[i].name);
        if (a->a[i].kind == SP_ATTR_STR) free((char *)a->a[i].s);
    }
    a->n = 0;
}

static int tc_attrs_copy(sp_attrs *dst, const sp_attrs *src) {
    dst->n = 0;
    for (int i = 0; src && i < src->n; i++) {
        dst->a[i] = src->a[i];
        dst->a[i].name = strdup(src->a[i].name ? src->a[i].name : "");
        dst->a[i].s = src->a[i].kind == SP_ATTR_STR && src->a[i].s ? strdup(src->a[i].s) : NULL;
        dst->n = i + 1;
        if (!dst->a[i].name || (src->a[i].kind == SP_ATTR_STR && src->a[i].s && !dst->a[i].s)) return -1;
    }
    return 0;
}

static void tc_record(void *ctx, int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs, int n_out,
                      sp_tensor *const *out) {
    tc_trace *t = ctx;
    if (t->failed) return;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        tc_rec *r = realloc(t->recs, sizeof *r * (size_t)cap);
        if (!r) {
            t->failed = 1;
            return;
        }
        t->recs = r;
        t->cap = cap;
    }
    tc_rec *r = &t->recs[t->n++];
    memset(r, 0, sizeof *r);
    r->op = op;
    r->n_in = n_in;
    r->n_out = n_out;
    for (int i = 0; i < n_in; i++) sp_tensor_retain(r->in[i] = in[i]);
    for (int i = 0; i < n_out; i++) sp_tensor_retain(r->out[i] = out[i]);
    if (tc_attrs_copy(&r->attrs, attrs)) t->failed = 1;
}

static void tc_trace_free(tc_trace *t) {
    for (int k = 0; k < t->n; k++) {
        tc_rec *r = &t->recs[k];
        for (int i = 0; i < r->n_in; i++) sp_tensor_release(r->in[i]);
        for (int i = 0; i < r->n_out; i++) sp_tensor_release(r->out[i]);
        tc_attrs_free(&r->attrs);
    }
    free(t->recs);
    memset(t, 0, sizeof *t);
}

static int tc_map_add(tc_map *m, sp_tensor *meta, sp_tensor *real) {
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        sp_tensor **a = realloc(m->meta, sizeof *a * (size_t)cap);
        if (!a) return -1;
        m->meta = a;
        sp_tensor **b = realloc(m->real, sizeof *b * (size_t)cap);
        if (!b) return -1;
        m->real = b;
        m->cap = cap;
    }
    m->meta[m->n] = meta;
    sp_tensor_retain(real);
    m->real[m->n++] = real;
    return 0;
}

/* The real tensor for t: itself when t is real (a constant), the mapped
 * one for a meta tensor, NULL when a meta tensor is unknown. */
static sp_tensor *tc_map_get(const tc_map *m, sp_tensor *t) {
    if (!sp_tensor_is_meta(t)) return t;
    for (int i = m->n - 1; i >= 0; i--)
        if (m->meta[i] == t) return m->real[i];
    return NULL;
}

static void tc_map_free(tc_map *m) {
    for (int i = 0; i < m->n; i++) sp_tensor_release(m->real[i]);
    free(m->meta);
    free(m->real);
    memset(m, 0, sizeof *m);
}

static void tc_say(char *report, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(report, n, fmt, ap);
    va_end(ap);
}

/* A copy of v with every tensor replaced by a new meta twin, each pair
 * added to m.  NULL on failure. */
static sp_value *tc_meta_twin(const sp_value *v, tc_map *m) {
    if (v->kind == SP_V_TENSOR) {
        sp_tensor *t = v->u.tensor;
        sp_tensor *mt = sp_tensor_new(t->dtype, t->ndim, t->shape, SP_META);
        if (!mt || tc_map_add(m, mt, t)) {
            sp_tensor_release(mt);
            return NULL;
        }
        return rt_wrap(mt);
    }
    if (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) {
        int n = v->u.seq.n, k;
        sp_value **items = calloc((size_t)(n ? n : 1), sizeof *items);
        if (!items) return NULL;
        for (k = 0; k < n; k++)
            if (!(items[k] = tc_meta_twin(v->u.seq.items[k], m))) break;
        sp_value *r = k < n ? NULL : v->kind == SP_V_TUPLE ? sp_value_tuple(n, items) : sp_value_list(n, items);
        for (int i = 0; i < k; i++) sp_value_release(items[i]);
        free(items);
        return r;
    }
    sp_value_retain((sp_value *)v);
    return (sp_value *)v;
}

/* Element-wise equality of two CPU tensors of one dtype and shape (NaN
 * equals NaN).  1 equal, 0 not. */
static int tc_tensor_values_equal(const sp_tensor *a, const sp_tensor *b) {
    int64_t n = sp_tensor_numel(a), idx[SP_MAX_DIMS];
    for (int64_t i = 0; i < n; i++) {
        int64_t lin = i;
        for (int d = a->ndim - 1; d >= 0; d--) {
            idx[d] = lin % a->shape[d];
            lin /= a->shape[d];
        }
        double x = sp_tensor_get(a, idx), y = sp_tensor_get(b, idx);
        if (!(x == y || (isnan(x) && isnan(y)))) return 0;
    }
    return 1;
}

static int tc_same_meta(const sp_tensor *a, const sp_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return 0;
    return 1;
}

/* Compares the traced result (tensors meta, or real constants) with the
 * real one.  With m (replay done), meta tensors are compared by the
 * values of their replayed twins unless `shapes_only`.  0 equal, -1 with
 * the difference in report. */
static int tc_compare(const sp_value *traced, const sp_value *real, const tc_map *m, int shapes_only,
                      const char *path, char *report, size_t rn) {
    if (traced->kind != real->kind) {
        tc_say(report, rn, "%s: the traced call gives a %s, the real one a %s", path, sp_value_kind_name(traced),
               sp_value_kind_name(real));
        return -1;
    }
    if (traced->kind == SP_V_TENSOR) {
        sp_tensor *t = traced->u.tensor, *r = real->u.tensor;
        if (!tc_same_meta(t, r)) {
            char a[128], b[128];
            tc_say(report, rn, "%s: traced %s %s, real %s %s", path, sp_shape_str(t->ndim, t->shape, a, sizeof a),
                   sp_dtype_name(t->dtype), sp_shape_str(r->ndim, r->shape, b, sizeof b), sp_dtype_name(r->dtype));
            return -1;
        }
        if (!m) return 0;
        sp_tensor *x = tc_map_get(m, t);
        if (!x) {
            tc_say(report, rn, "%s: the result is a meta tensor no traced call made", path);
            return -1;
        }
        if (!shapes_only && !tc_tensor_values_equal(x, r)) {
            tc_say(report, rn, "%s: the replayed primitives give other values than the real call", path);
            return -1;
        }
        return 0;
    }
    if (traced->kind == SP_V_TUPLE || traced->kind == SP_V_LIST) {
        if (traced->u.seq.n != real->u.seq.n) {
            tc_say(report, rn, "%s: %d items traced, %d real", path, traced->u.seq.n, real->u.seq.n);
            return -1;
        }
        for (int i = 0; i < traced->u.seq.n; i++) {
            char sub[96];
            snprintf(sub, sizeof sub, "%.80s[%d]", path, i);
            if (tc_compare(traced->u.seq.items[i], real->u.seq.items[i], m, shapes_only, sub, report, rn)) return -1;
        }
        return 0;
    }
    int eq = sp_value_equal(traced, real);
    if (eq != 1) {
        tc_say(report, rn, "%s: the traced call gives another %s than the real one", path, sp_value_kind_name(real));
        return -1;
    }
    return 0;
}

/* Runs the recorded calls on real tensors, extending m.  0 or -1. */
static int tc_replay(const tc_trace *tr, tc_map *m, int *random, char *report, size_t rn) {
    for (int k = 0; k < tr->n; k++) {
        const tc_rec *r = &tr->recs[k];
        sp_tensor *in[SP_MAX_INPUTS], *out[SP_MAX_OUTPUTS];
        for (int i = 0; i < r->n_in; i++)
            if (!(in[i] = tc_map_get(m, r->in[i]))) {
                tc_say(report, rn, "replay: input %d of %s (call %d) is a meta tensor no traced call made", i,
                       sp_op_name(r->op), k);
                return -1;
            }
        if ((sp_op_defs[r->op].flags & SP_OPF_RANDOM) && !sp_attrs_find(&r->attrs, "seed")) *random = 1;
        int n_out = 0;
        if (sp_op_call(r->op, r->n_in, in, &r->attrs, &n_out, out) != SP_OK) {
            tc_say(report, rn, "replay: %s (call %d) failed: %s", sp_op_name(r->op), k, sp_last_error());
            return -1;
        }
        int bad = n_out != r->n_out;
        for (int i = 0; i < n_out; i++) {
            if (!bad && tc_map_add(m, r->out[i], out[i])) bad = 1;
            sp_tensor_release(out[i]);
        }
        if (bad) {
            tc_say(report, rn, "replay: %s (call %d) gave %d outputs, the trace %d", sp_op_name(r->op), k, n_out,
                   r->n_out);
            return -1;
        }
    }
    return 0;
}

int sp_test_api_trace(const char *source, char *report, size_t rn) {
    char dummy[8];
    if (!report || rn == 0) report = dummy, rn = sizeof dummy;
    report[0] = '\0';
    int rc = -1;
    sp_module *mod = NULL;
    sp_value *args = NULL, *real = NULL, *margs = NULL, *traced = NULL;
    tc_trace tr;
    tc_map m;
    memset(&tr, 0, sizeof tr);
    memset(&m, 0, sizeof m);
    if (!source) {
        tc_say(report, rn, "no source");
        return -1;
    }
    if (!(mod = sp_frontend_compile("<trace>", source, 0, NULL))) {
        tc_say(report, rn, "compile: %s", sp_last_error());
        goto done;
    }
    if (!(args = sp_vm_run(mod, "args", 0, NULL)) || args->kind != SP_V_TUPLE) {
        tc_say(report, rn, "args(): %s", args ? "must return a tuple" : sp_last_error());
        goto done;
    }
    if (!(real = sp_vm_run(mod, "f", args->u.seq.n, args->u.seq.items))) {
        tc_say(report, rn, "real call: %s", sp_last_error());
        goto done;
    }
    if (!(margs = tc_meta_twin(args, &m))) {
        tc_say(report, rn, "meta twins: %s", sp_last_error());
        goto done;
    }
    uint64_t seed0, off0, seed1, off1;
    sp_rng_next(0, &seed0, &off0);
    sp_op_trace_fn pf;
    void *pc;
    sp_op_trace_set(tc_record, &tr, &pf, &pc);
    traced = sp_vm_run(mod, "f", margs->u.seq.n, margs->u.seq.items);
    sp_op_trace_set(pf, pc, NULL, NULL);
    sp_rng_next(0, &seed1, &off1);
    if (tr.failed) {
        tc_say(report, rn, "trace: out of memory");
        goto done;
    }
    if (!traced) {
        tc_say(report, rn, "%s", sp_last_error());
        rc = 1;
        goto done;
    }
    if (seed0 != seed1 || off0 != off1) {
        tc_say(report, rn, "the traced call moved the random generator (offset %llu -> %llu)",
               (unsigned long long)off0, (unsigned long long)off1);
        goto done;
    }
    if (tc_compare(traced, real, NULL, 1, "result", report, rn)) goto done;
    int random = 0;
    if (tc_replay(&tr, &m, &random, report, rn)) goto done;
    if (tc_compare(traced, real, &m, random, "result", report, rn)) goto done;
    size_t len = (size_t)snprintf(report, rn, "ok: %d", tr.n);
    for (int k = 0; k < tr.n && len < rn; k++)
        len += (size_t)snprintf(report + len, rn - len, " %s", sp_op_name(tr.recs[k].op));
    if (random && len < rn) snprintf(report + len, rn - len, " random");
    rc = 0;
done:
    sp_value_release(traced);
    sp_value_release(margs);
    sp_value_release(real);
    sp_value_release(args);
    tc_trace_free(&tr);
    tc_map_free(&m);
    sp_module_free(mod);
    return rc;
}
