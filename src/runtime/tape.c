/*
 * tape.c -- recording the eager tape (see tape.h for what it is for).
 *
 * A tape is three growing arrays and two small maps:
 *   nodes   one per tensor *value* the tape met: the tensor (retained, so
 *           its address cannot be reused while the tape lives), the version
 *           of its buffer when met, and whether it is active;
 *   recs    the primitive calls with an active input, in the order they ran,
 *           their inputs and outputs as node ids (ids[]) and their
 *           attributes as KEYWORD values (what a rule call passes);
 *   map     tensor address -> (node, version): the node a read of that
 *           tensor means now.  An entry is valid while the version of the
 *           tensor's buffer is the one it was made at, so a tensor written
 *           in place reads as a new node afterwards;
 *   bufs    the buffers written in place while recording: version, the op
 *           that wrote last, and whether that write was differentiated
 *           (setitem recorded functionally).
 *
 * The sink (tp_sink) is what ad_record_op calls.  Invariants it keeps:
 *   - a call without an active input is not kept: its outputs are
 *     constants of the program, met later as inputs like any tensor the
 *     tape did not make (a new inactive node);
 *   - outputs always get new nodes, active when float;
 *   - the compiler's meta-mode traces (sp_op_tracing, meta tensors) are
 *     not the user's program and are ignored;
 *   - in-place primitives are not kept; they bump the version of the
 *     buffers they write (assign: the variable; sgd_update: param and
 *     accum; adam_update: param, m and v; any other: every input), and
 *     batch_norm in training bumps its running statistics before its call
 *     is kept (it writes them itself).
 * A failure (out of memory, a read that cannot be right) is kept as the
 * tape's error and reported by sp_tape_grad: the sink cannot return one.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "ad/ad.h"
#include "core/internal.h"
#include "runtime/rt.h"
#include "runtime/tape.h"

typedef struct tp_entry {
    const sp_tensor *key; /* NULL: empty slot */
    int id;
    uint64_t ver;
} tp_entry;

typedef struct tp_buf {
    const void *buf;
    uint64_t ver;
    const char *writer;
    int tracked; /* the last write was differentiated (setitem rebinding) */
} tp_buf;

struct sp_tape {
    tp_node *nodes;
    int n_nodes, cap_nodes;
    tp_rec *recs;
    int n_recs, cap_recs;
    int *ids;
    int n_ids, cap_ids;
    tp_entry *map;
    int map_cap, map_n;
    tp_buf *bufs;
    int n_bufs, cap_bufs;
    char blind[200];
    char err[400];
    sp_status err_code;
    int recording, paused;
    sp_tape *prev;       /* the tape this one suspended */
    ad_tape_fn prev_fn;  /* the sink installed before this tape's */
    void *prev_ctx;
};

static _Thread_local sp_tape *tls_tape;

/* ---- errors ---------------------------------------------------------------------- */

static void tp_fail(sp_tape *t, sp_status code, const char *msg) {
    if (t->err_code) return;
    t->err_code = code;
    snprintf(t->err, sizeof t->err, "%s", msg);
}

static void tp_set_blind(sp_tape *t, const char *why) {
    if (!t->blind[0]) snprintf(t->blind, sizeof t->blind, "%s", why);
}

const char *sp_tape_blind(const sp_tape *t) { return t && t->blind[0] ? t->blind : NULL; }

sp_status tp_error(const sp_tape *t) {
    if (!t->err_code) return SP_OK;
    return sp_error(t->err_code, "%s", t->err);
}

/* ---- buffers and versions ---------------------------------------------------------- */

static tp_buf *tp_buf_find(const sp_tape *t, const void *buf) {
    for (int i = 0; i < t->n_bufs; i++)
        if (t->bufs[i].buf == buf) return &t->bufs[i];
    return NULL;
}

uint64_t tp_buf_version(const sp_tape *t, const void *buf, const char **writer) {
    const tp_buf *b = tp_buf_find(t, buf);
    if (writer) *writer = b ? b->writer : NULL;
    return b ? b->ver : 0;
}

static uint64_t tp_version_of(const sp_tape *t, const sp_tensor *x) {
    return t->n_bufs ? tp_buf_version(t, x->buf, NULL) : 0;
}

/* Bumps the version of x's buffer; returns the entry (NULL: no memory). */
static tp_buf *tp_bump(sp_tape *t, const sp_tensor *x, const char *op, int tracked) {
    tp_buf *b = tp_buf_find(t, x->buf);
    if (!b) {
        if (t->n_bufs == t->cap_bufs) {
            int cap = t->cap_bufs ? t->cap_bufs * 2 : 4;
            tp_buf *nb = realloc(t->bufs, sizeof *nb * (size_t)cap);
            if (!nb) {
                tp_fail(t, SP_ERR_NOMEM, "PyNative tape: out of memory");
                return NULL;
            }
            t->bufs = nb;
            t->cap_bufs = cap;
        }
        b = &t->bufs[t->n_bufs++];
        b->buf = x->buf;
        b->ver = 0;
    }
    b->ver++;
    b->writer = op;
    b->tracked = tracked;
    return b;
}

/* ---- the tensor map ------------------------------------------------------------------ */

static size_t tp_hash(const void *p, int cap) {
    uintptr_t h = (uintptr_t)p;
    h ^= h >> 17;
    h *= 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 7) & (size_t)(cap - 1);
}

static tp_entry *tp_slot(const sp_tape *t, const sp_tensor *x) {
    if (!t->map_cap) return NULL;
    for (size_t i = tp_hash(x, t->map_cap);; i = (i + 1) & (size_t)(t->map_cap - 1)) {
        tp_entry *e = &t->map[i];
        if (e->key == x || !e->key) return e;
    }
}

static int tp_map_put(sp_tape *t, const sp_tensor *x, int id, uint64_t ver) {
    if ((t->map_n + 1) * 2 > t->map_cap) {
        int cap = t->map_cap ? t->map_cap * 2 : 64;
        tp_entry *old = t->map, *nm = calloc((size_t)cap, sizeof *nm);
        if (!nm) return -1;
        int oc = t->map_cap;
        t->map = nm;
        t->map_cap = cap;
        for (int i = 0; i < oc; i++)
            if (old[i].key) *tp_slot(t, old[i].key) = old[i];
        free(old);
    }
    tp_entry *e = tp_slot(t, x);
    if (!e->key) t->map_n++;
    e->key = x;
    e->id = id;
    e->ver = ver;
    return 0;
}

/* The node a read of x means now, or -1 (unknown, or an older version). */
static int tp_lookup(const sp_tape *t, const sp_tensor *x) {
    const tp_entry *e = tp_slot(t, x);
    if (!e || !e->key) return -1;
    return e->ver == tp_version_of(t, x) ? e->id : -1;
}

int sp_tape_node_of(sp_tape *t, const sp_tensor *x) { return t && x ? tp_lookup(t, x) : -1; }

/* ---- nodes and records ----------------------------------------------------------------- */

static int tp_new_node(sp_tape *t, sp_tensor *x, int active) {
    if (t->n_nodes == t->cap_nodes) {
        int cap = t->cap_nodes ? t->cap_nodes * 2 : 32;
        tp_node *nn = realloc(t->nodes, sizeof *nn * (size_t)cap);
        if (!nn) return -1;
        t->nodes = nn;
        t->cap_nodes = cap;
    }
    uint64_t ver = tp_version_of(t, x);
    if (tp_map_put(t, x, t->n_nodes, ver)) return -1;
    sp_tensor_retain(x);
    tp_node *n = &t->nodes[t->n_nodes];
    n->t = x;
    n->ver = ver;
    n->active = active && sp_dtype_is_float(x->dtype);
    return t->n_nodes++;
}

/* The node of input x: the current one, or a new constant.  A tensor in a
 * buffer that a differentiated setitem wrote, read through another
 * tensor than the one the write went to, cannot be right: an error. */
static int tp_input_node(sp_tape *t, sp_tensor *x) {
    int id = tp_lookup(t, x);
    if (id >= 0) return id;
    const tp_buf *b = t->n_bufs ? tp_buf_find(t, x->buf) : NULL;
    if (b && b->tracked) {
        tp_fail(t, SP_ERR_UNSUPPORTED,
                "PyNative grad: a tensor written by Tensor.__setitem__ is read through another view of the same "
                "memory made before the write; the tape cannot follow that write through the view (index the "
                "written tensor again after assigning)");
        return -1;
    }
    id = tp_new_node(t, x, 0);
    if (id < 0) tp_fail(t, SP_ERR_NOMEM, "PyNative tape: out of memory");
    return id;
}

static int tp_reserve_ids(sp_tape *t, int n) {
    if (t->n_ids + n <= t->cap_ids) return 0;
    int cap = t->cap_ids ? t->cap_ids * 2 : 128;
    while (cap < t->n_ids + n) cap *= 2;
    int *ni = realloc(t->ids, sizeof *ni * (size_t)cap);
    if (!ni) return -1;
    t->ids = ni;
    t->cap_ids = cap;
    return 0;
}

/* The inputs an in-place primitive writes. */
static int tp_written(int op, int i, int n_in) {
    switch (op) {
    case SP_OP_ASSIGN: return i == 0;
    case SP_OP_SGD_UPDATE: return i == 0 || i == 2;
    case SP_OP_ADAM_UPDATE: return i == 0 || i == 2 || i == 3;
    default: return i < n_in;
    }
}

static void tp_sink(void *ctx, int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs, int n_out,
                    sp_tensor *const *out) {
    sp_tape *t = ctx;
    if (op < 0) {
        tp_set_blind(t, "run-time autodiff (a gradient compiled from source) ran inside the function");
        return;
    }
    if (t->err_code || sp_op_tracing() || op >= SP_OP_COUNT) return;
    for (int i = 0; i < n_in; i++)
        if (!in[i] || sp_tensor_is_meta(in[i])) return;
    for (int i = 0; i < n_out; i++)
        if (!out[i] || sp_tensor_is_meta(out[i])) return;
    const sp_op_def *def = &sp_op_defs[op];
    if (def->flags & SP_OPF_INPLACE) {
        for (int i = 0; i < n_in; i++)
            if (tp_written(op, i, n_in)) tp_bump(t, in[i], def->name, 0);
        return;
    }
    if (op == SP_OP_BATCH_NORM && n_in == 5) {
        const sp_attr *tr = attrs ? sp_attrs_find(attrs, "training") : NULL;
        if (!tr || tr->i) {
            tp_bump(t, in[3], def->name, 0);
            tp_bump(t, in[4], def->name, 0);
        }
    }
    if (n_in == 1 && n_out == 1 && in[0] == out[0]) return;
    int any = 0;
    for (int i = 0; i < n_in && !any; i++) {
        int id = tp_lookup(t, in[i]);
        any = id >= 0 && t->nodes[id].active;
    }
    if (!any) return;
    if (t->n_recs == t->cap_recs) {
        int cap = t->cap_recs ? t->cap_recs * 2 : 32;
        tp_rec *nr = realloc(t->recs, sizeof *nr * (size_t)cap);
        if (!nr) goto oom;
        t->recs = nr;
        t->cap_recs = cap;
    }
    if (tp_reserve_ids(t, n_in + n_out)) goto oom;
    tp_rec *r = &t->recs[t->n_recs];
    r->op = op;
    r->n_in = n_in;
    r->n_out = n_out;
    r->io = t->n_ids;
    if (!(r->kws = ad_attrs_keywords(attrs))) goto oom;
    for (int i = 0; i < n_in; i++) {
        int id = tp_input_node(t, in[i]);
        if (id < 0) {
            sp_value_release(r->kws);
            return;
        }
        t->ids[t->n_ids++] = id;
    }
    for (int i = 0; i < n_out; i++) {
        int id = tp_new_node(t, out[i], 1);
        if (id < 0) {
            sp_value_release(r->kws);
            goto oom;
        }
        t->ids[t->n_ids++] = id;
    }
    t->n_recs++;
    return;
oom:
    tp_fail(t, SP_ERR_NOMEM, "PyNative tape: out of memory");
}

/* ---- begin, end, pause --------------------------------------------------------------- */

sp_tape *sp_tape_begin(void) {
    sp_tape *t = calloc(1, sizeof *t);
    if (!t) {
        sp_error(SP_ERR_NOMEM, "PyNative tape: out of memory");
        return NULL;
    }
    if (tls_tape) tp_set_blind(tls_tape, "a gradient was taken inside the function (nested grad)");
    t->prev = tls_tape;
    tls_tape = t;
    t->recording = 1;
    ad_tape_set(tp_sink, t, &t->prev_fn, &t->prev_ctx);
    return t;
}

void sp_tape_end(sp_tape *t) {
    if (!t || !t->recording) return;
    t->recording = 0;
    if (tls_tape == t) tls_tape = t->prev;
    ad_tape_set(t->prev_fn, t->prev_ctx, NULL, NULL);
}

void sp_tape_free(sp_tape *t) {
    if (!t) return;
    sp_tape_end(t);
    for (int i = 0; i < t->n_nodes; i++) sp_tensor_release(t->nodes[i].t);
    for (int i = 0; i < t->n_recs; i++) sp_value_release(t->recs[i].kws);
    free(t->nodes);
    free(t->recs);
    free(t->ids);
    free(t->map);
    free(t->bufs);
    free(t);
}

sp_tape *sp_tape_current(void) { return tls_tape && !tls_tape->paused ? tls_tape : NULL; }

void sp_tape_pause(void) {
    sp_tape *t = tls_tape;
    if (t && t->paused++ == 0) ad_tape_set(t->prev_fn, t->prev_ctx, NULL, NULL);
}

void sp_tape_resume(void) {
    sp_tape *t = tls_tape;
    if (t && t->paused > 0 && --t->paused == 0) ad_tape_set(tp_sink, t, NULL, NULL);
}

void sp_tape_note_opaque(const char *what) {
    if (tls_tape) tp_set_blind(tls_tape, what);
}

void sp_tape_note_write(const sp_tensor *x, const char *op) {
    if (tls_tape && x) tp_bump(tls_tape, x, op, 0);
}

int sp_tape_active(const sp_tensor *x) {
    sp_tape *t = tls_tape;
    if (!t || !x) return 0;
    int id = tp_lookup(t, x);
    return id >= 0 && t->nodes[id].active;
}

sp_status sp_tape_setitem_rebind(const sp_tensor *x, const sp_tensor *w) {
    sp_tape *t = tls_tape;
    if (!t) return SP_OK;
    int id = tp_lookup(t, w);
    tp_buf *b = tp_bump(t, x, "Tensor.__setitem__", 1);
    if (!b) return tp_error(t);
    if (id < 0) return SP_OK; /* nothing recorded it: x is a constant again */
    if (tp_map_put(t, x, id, b->ver)) {
        tp_fail(t, SP_ERR_NOMEM, "PyNative tape: out of memory");
        return tp_error(t);
    }
    return SP_OK;
}

sp_status sp_tape_add_leaf(sp_tape *t, sp_tensor *x, int *id) {
    int k = tp_lookup(t, x);
    if (k < 0 && (k = tp_new_node(t, x, 1)) < 0) return sp_error(SP_ERR_NOMEM, "PyNative tape: out of memory");
    *id = k;
    return SP_OK;
}

/* ---- views for tape_grad.c ------------------------------------------------------------ */

int tp_n_nodes(const sp_tape *t) { return t->n_nodes; }
const tp_node *tp_nodes(const sp_tape *t) { return t->nodes; }
int tp_n_recs(const sp_tape *t) { return t->n_recs; }
const tp_rec *tp_recs(const sp_tape *t) { return t->recs; }
const int *tp_ids(const sp_tape *t) { return t->ids; }
