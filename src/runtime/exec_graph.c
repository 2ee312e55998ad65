/*
 * exec_graph.c -- whole-graph sinking: a lowered program recorded once as
 * a CUDA graph and replayed with one launch per run (issue 8; DESIGN §6).
 *
 * A lowered program has static shapes by construction, its kernels are a
 * fixed list and its memory a fixed plan, so after one run everything a
 * kernel asks of the host (cuBLASLt plans, cuDNN algorithms, NVRTC modules,
 * allocator blocks) is cached and the list can be recorded: the backend's
 * capture_begin/capture_end (backend.h) around exec_kernels.  The life of
 * a lowered object on such a backend:
 *
 *   run 1   plain (the warming run)                         state WARM
 *   run 2   record, then replay                              state READY
 *   run 3+  replay
 *   any     plain, if recording failed (state OFF, why kept), if capture
 *           is turned off, if another thread is replaying it right now,
 *           or if this run's arguments do not allow an exact replay
 *           (a fallback, counted, reason kept)
 *
 * Inputs and outputs: staged.  The recorded kernels hold raw addresses, but
 * a caller passes new tensors at every step (a batch, weights returned by
 * the previous step).  The graph therefore owns one contiguous buffer per
 * parameter, recorded as the parameter, and every replay first copies the
 * caller's tensors in; it owns one buffer per output, and every replay
 * copies them into fresh tensors for the caller (results must survive the
 * next step); and a parameter the program updates in place (sgd_update...)
 * is copied back into the caller's tensor after the graph.  The backend
 * does each group as one batched kernel, and skips the copies out when a
 * kernel raised a data error, so a failed step changes none of the
 * caller's tensors.  Recording the caller's own addresses instead would
 * save the copies but would be wrong as soon as the caller passes other
 * tensors, and holding on to its buffers would keep them from being
 * reused; the copies cost two small kernels per step.
 *
 * Exactness: a replay runs the same kernels on the same values as the
 * plain run, so the results are bitwise the same, with three guards:
 * parameters must be contiguous (a strided view could take a different
 * kernel path in the plain run), a parameter updated in place must not
 * share memory with another parameter (the plain run would see the update
 * through the alias; a staged copy would not), and a random primitive
 * without a seed attribute stops recording altogether (the plain run
 * draws new numbers from the global generator each time; a replay would
 * repeat them).  Runs that fail the first two are plain runs.
 *
 * Data errors (an index out of range) found by a replayed kernel are
 * reported by that run, with the plain run's message and location: the
 * backend waits for the graph when it holds such checks.  In the async
 * mode (sp_exec_set_capture(SP_EXEC_CAPTURE_ASYNC), SPORE_CUDA_GRAPH=async)
 * it does not, and the error surfaces at the next copy to the host, as a
 * device-side assert does in PyTorch; nothing is written back either way.
 *
 * The graph takes over the lowered object's cached arena (later plain runs
 * make their own) and holds its constants; all of it, the recorded graph
 * included, goes when the lowered object is freed (l->graph_free).
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/internal.h"
#include "runtime/exec.h"
#include "runtime/exec_internal.h"

typedef struct exec_graph {
    sp_exec_graph_state state;
    int busy; /* a thread is recording or replaying it (set under l->lock) */
    int n_params, n_slots, n_results;
    sp_backend *be;
    void *graph;       /* the backend's recording; NULL until recorded */
    sp_device dev;
    sp_buffer *arena;  /* owned */
    unsigned char *mut;       /* [n_params]: updated in place by the program */
    sp_tensor **stage;        /* [n_params]: the graph's input buffers (NULL: static) */
    sp_tensor **keep;         /* [n_slots]: OUTPUT slots' buffers, CONST slots' tensors */
    sp_backend_copy *in, *out; /* a replay's copies: [n_params], [n_results + n_params] */
    sp_tensor **fresh;        /* a replay's results: [n_results] */
    long long captures, replays, plain, fallbacks;
    char why[256];
} exec_graph;

/* ---- the process-wide switch ---------------------------------------------------- */

static int exec_capture_on = -1; /* SP_EXEC_CAPTURE_*; -1: SPORE_CUDA_GRAPH not read yet */

static int exec_capture_mode(void) {
    int v = __atomic_load_n(&exec_capture_on, __ATOMIC_ACQUIRE);
    if (v >= 0) return v;
    const char *e = getenv("SPORE_CUDA_GRAPH");
    int want = -1, mode = SP_EXEC_CAPTURE_ON;
    if (e && e[0] == '0') mode = SP_EXEC_CAPTURE_OFF;
    else if (e && !strcmp(e, "async")) mode = SP_EXEC_CAPTURE_ASYNC;
    __atomic_compare_exchange_n(&exec_capture_on, &want, mode, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&exec_capture_on, __ATOMIC_ACQUIRE);
}

int sp_exec_set_capture(int mode) {
    int prev = exec_capture_mode();
    if (mode != SP_EXEC_CAPTURE_ON && mode != SP_EXEC_CAPTURE_ASYNC) mode = SP_EXEC_CAPTURE_OFF;
    __atomic_store_n(&exec_capture_on, mode, __ATOMIC_RELEASE);
    return prev;
}

/* ---- state ------------------------------------------------------------------------- */

/* Drops a recording and the buffers made for it; the counters stay. */
static void exec_graph_drop(exec_graph *g) {
    if (g->graph) g->be->graph_free(g->be, g->graph);
    g->graph = NULL;
    /* the buffers go after the graph: a replay still queued finishes
     * before work queued later reuses them (one stream) */
    for (int i = 0; i < g->n_params; i++) {
        sp_tensor_release(g->stage[i]);
        g->stage[i] = NULL;
    }
    for (int s = 0; s < g->n_slots; s++) {
        sp_tensor_release(g->keep[s]);
        g->keep[s] = NULL;
    }
    sp_buffer_release(g->arena);
    g->arena = NULL;
}

static void exec_graph_free(void *p) {
    exec_graph *g = p;
    if (!g) return;
    exec_graph_drop(g);
    free(g->mut);
    free(g->stage);
    free(g->keep);
    free(g->in);
    free(g->out);
    free(g->fresh);
    free(g);
}

/* Why l can never be replayed exactly, or NULL. */
static const char *exec_graph_static_why(const sp_lowered *l, char *buf, size_t n) {
    int launches = 0;
    for (int k = 0; k < l->n_kernels; k++) {
        const sp_lkernel *kk = &l->kernels[k];
        if (kk->is_view) continue;
        launches++;
        const sp_op_def *def = &sp_op_defs[kk->op];
        if ((def->flags & SP_OPF_RANDOM) && !sp_attrs_find(&kk->attrs, "seed")) {
            snprintf(buf, n, "%s draws from the global generator (no seed attribute): a replay "
                     "would repeat its numbers", def->name);
            return buf;
        }
    }
    if (!launches) return "no kernel to launch";
    for (int r = 0; r < l->n_results; r++) {
        sp_lslot_kind k = l->slots[l->results[r]].kind;
        if (k != SP_LSLOT_OUTPUT && k != SP_LSLOT_PARAM && k != SP_LSLOT_CONST) {
            snprintf(buf, n, "result %d lives in the arena or is a view", r);
            return buf;
        }
    }
    return NULL;
}

static exec_graph *exec_graph_new(const sp_lowered *l, sp_backend *be) {
    exec_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->be = be;
    g->n_params = l->n_params;
    g->n_slots = l->n_slots;
    g->n_results = l->n_results;
    g->mut = calloc((size_t)l->n_params + 1, 1);
    g->stage = calloc((size_t)l->n_params + 1, sizeof *g->stage);
    g->keep = calloc((size_t)l->n_slots + 1, sizeof *g->keep);
    g->in = calloc((size_t)l->n_params + 1, sizeof *g->in);
    g->out = calloc((size_t)(l->n_results + l->n_params) + 1, sizeof *g->out);
    g->fresh = calloc((size_t)l->n_results + 1, sizeof *g->fresh);
    if (!g->mut || !g->stage || !g->keep || !g->in || !g->out || !g->fresh) {
        exec_graph_free(g);
        return NULL;
    }
    for (int s = 0; s < l->n_slots; s++)
        if (l->slots[s].kind == SP_LSLOT_PARAM && l->slots[s].mutated) g->mut[l->slots[s].index] = 1;
    const char *why = exec_graph_static_why(l, g->why, sizeof g->why);
    if (why) {
        if (why != g->why) snprintf(g->why, sizeof g->why, "%s", why);
        g->state = SP_EXEC_GRAPH_OFF;
    }
    return g;
}

/* ---- per-run guards -------------------------------------------------------------- */

static const char *exec_param_name(const sp_lowered *l, int i) {
    for (int s = 0; s < l->n_slots; s++)
        if (l->slots[s].kind == SP_LSLOT_PARAM && l->slots[s].index == i && l->slots[s].name)
            return l->slots[s].name;
    return "?";
}

static void exec_range(const sp_tensor *t, const char **lo, const char **hi) {
    size_t es = sp_dtype_size(t->dtype);
    *lo = (const char *)t->buf->data + t->offset * (int64_t)es;
    *hi = *lo + (size_t)sp_tensor_numel(t) * es;
}

/* Why this run's parameters cannot be replayed exactly, or NULL. */
static const char *exec_graph_args_why(const sp_lowered *l, const exec_graph *g, sp_tensor *const *p,
                                       sp_device dev, char *buf, size_t n) {
    if (g->graph && (dev.type != g->dev.type || dev.index != g->dev.index)) {
        snprintf(buf, n, "the parameters are on another device than the recording");
        return buf;
    }
    for (int i = 0; i < l->n_params; i++) {
        if (l->params[i].ndim == SP_LOWER_STATIC) continue;
        if (!sp_tensor_is_contiguous(p[i])) {
            snprintf(buf, n, "parameter %d (%s) is not contiguous", i, exec_param_name(l, i));
            return buf;
        }
    }
    for (int i = 0; i < l->n_params; i++) {
        if (!g->mut[i] || l->params[i].ndim == SP_LOWER_STATIC || sp_tensor_numel(p[i]) == 0) continue;
        const char *a0, *a1, *b0, *b1;
        exec_range(p[i], &a0, &a1);
        for (int j = 0; j < l->n_params; j++) {
            if (j == i || l->params[j].ndim == SP_LOWER_STATIC || sp_tensor_numel(p[j]) == 0) continue;
            exec_range(p[j], &b0, &b1);
            if (a0 < b1 && b0 < a1) {
                snprintf(buf, n, "parameter %d (%s) is updated in place and shares memory with "
                         "parameter %d (%s)", i, exec_param_name(l, i), j, exec_param_name(l, j));
                return buf;
            }
        }
    }
    return NULL;
}

/* ---- recording ------------------------------------------------------------------------ */

/* Makes the graph's buffers and records l's kernels over them.  SP_OK, or
 * an error with the reason in why (everything made is dropped). */
static sp_status exec_graph_record(sp_lowered *l, exec_graph *g, sp_device dev, char *why, size_t why_n) {
    sp_status st = SP_OK;
    sp_tensor **t = calloc((size_t)l->n_slots + 1, sizeof *t);
    if (!t) {
        snprintf(why, why_n, "out of memory");
        return sp_error(SP_ERR_NOMEM, "out of memory");
    }
    g->dev = dev;
    for (int i = 0; i < l->n_params && !st; i++) {
        const sp_meta *m = &l->params[i];
        if (m->ndim == SP_LOWER_STATIC) continue;
        if (!(g->stage[i] = sp_tensor_new(m->dtype, m->ndim, m->shape, dev))) st = sp_last_status();
    }
    for (int s = 0; s < l->n_slots && !st; s++) {
        const sp_lslot *x = &l->slots[s];
        if (x->kind == SP_LSLOT_PARAM) {
            t[s] = g->stage[x->index];
            sp_tensor_retain(t[s]);
            continue;
        }
        if (x->kind == SP_LSLOT_CONST)
            g->keep[s] = exec_const(l, s, dev); /* held: the recording reads its bytes */
        else if (x->kind == SP_LSLOT_OUTPUT)
            g->keep[s] = sp_tensor_new(x->meta.dtype, x->meta.ndim, x->meta.shape, dev);
        else
            continue;
        if (!g->keep[s]) st = sp_last_status();
        t[s] = g->keep[s];
        sp_tensor_retain(t[s]);
    }
    if (!st) {
        /* the graph takes the cached arena over: its bytes are the graph's now */
        int cached = 0;
        g->arena = exec_arena_get(l, dev, &cached);
        if (!g->arena) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        } else if (cached) {
            pthread_mutex_lock(&l->lock);
            l->arena = NULL; /* its reference is g->arena's now */
            l->arena_busy = 0;
            pthread_mutex_unlock(&l->lock);
        }
    }
    if (st) {
        snprintf(why, why_n, "making the graph's buffers: %s", sp_last_error());
    } else if ((st = g->be->capture_begin(g->be))) {
        snprintf(why, why_n, "%s", sp_last_error());
    } else {
        sp_status kst = exec_kernels(l, dev, g->arena, t);
        if (kst) snprintf(why, why_n, "a kernel could not be recorded: %s", sp_last_error());
        /* released inside the capture: a copy a view made (a reshape of a
         * strided slot) is freed there, so the capture keeps its block */
        for (int s = 0; s < l->n_slots; s++) {
            sp_tensor_release(t[s]);
            t[s] = NULL;
        }
        char cwhy[200];
        void *graph = NULL;
        sp_status est = g->be->capture_end(g->be, kst == SP_OK, &graph, cwhy, sizeof cwhy);
        if (kst) st = kst;
        else if (est) snprintf(why, why_n, "%s", cwhy[0] ? cwhy : sp_last_error()), st = est;
        else g->graph = graph;
    }
    for (int s = 0; s < l->n_slots; s++) sp_tensor_release(t[s]);
    free(t);
    if (st) exec_graph_drop(g);
    return st;
}

/* ---- replay ------------------------------------------------------------------------------ */

static sp_status exec_graph_replay(sp_lowered *l, exec_graph *g, sp_tensor *const *params, sp_tensor **out,
                                   int flags) {
    int ni = 0, no = 0, err_op = -1;
    sp_status st = SP_OK;
    const char *lo, *hi;
    for (int i = 0; i < l->n_params; i++) {
        if (!g->stage[i]) continue;
        exec_range(params[i], &lo, &hi);
        g->in[ni++] = (sp_backend_copy){g->stage[i]->buf->data, lo, (size_t)(hi - lo)};
    }
    memset(g->fresh, 0, (size_t)l->n_results * sizeof *g->fresh);
    for (int r = 0; r < l->n_results && !st; r++) {
        int s = l->results[r];
        const sp_lslot *x = &l->slots[s];
        sp_tensor *f = NULL;
        if (x->kind == SP_LSLOT_PARAM) {
            f = params[x->index];
        } else if (x->kind == SP_LSLOT_CONST) {
            f = g->keep[s];
        } else {
            for (int r2 = 0; r2 < r && !f; r2++)
                if (l->results[r2] == s) f = g->fresh[r2]; /* the same tensor, as a plain run gives */
            if (!f) {
                if (!(g->fresh[r] = sp_tensor_new(x->meta.dtype, x->meta.ndim, x->meta.shape, g->dev))) {
                    st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
                    break;
                }
                g->out[no++] = (sp_backend_copy){g->fresh[r]->buf->data, g->keep[s]->buf->data,
                                                 (size_t)x->nbytes};
                continue;
            }
        }
        sp_tensor_retain(f);
        g->fresh[r] = f;
    }
    for (int i = 0; i < l->n_params && !st; i++) {
        if (!g->mut[i] || !g->stage[i]) continue;
        exec_range(params[i], &lo, &hi);
        g->out[no++] = (sp_backend_copy){(void *)lo, g->stage[i]->buf->data, (size_t)(hi - lo)};
    }
    if (!st) st = g->be->graph_launch(g->be, g->graph, ni, g->in, no, g->out, flags, &err_op);
    if (st) {
        /* a data error: located at the first kernel of the primitive that
         * raised it, as the plain run locates it */
        for (int k = 0; err_op >= 0 && k < l->n_kernels; k++) {
            if (l->kernels[k].op != err_op) continue;
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", sp_last_error());
            st = sp_error_at(l->module, l->kernels[k].loc, st, "%s", msg);
            break;
        }
        for (int r = 0; r < l->n_results; r++) sp_tensor_release(g->fresh[r]);
        return st;
    }
    for (int r = 0; r < l->n_results; r++) out[r] = g->fresh[r];
    return SP_OK;
}

/* ---- the entry ------------------------------------------------------------------------------ */

int exec_graph_run(sp_lowered *l, sp_tensor *const *params, sp_device dev, sp_tensor **out,
                   sp_status *st) {
    if (dev.type == SP_DEVICE_CPU || dev.type == SP_DEVICE_META) return 0;
    sp_backend *be = sp_backend_get(dev.type);
    if (!be || !be->capture_begin || !be->capture_end || !be->graph_launch || !be->graph_free) return 0;
    int mode = exec_capture_mode(), take = 0;
    pthread_mutex_lock(&l->lock);
    exec_graph *g = l->graph;
    if (!g && (g = exec_graph_new(l, be))) {
        l->graph = g;
        l->graph_free = exec_graph_free;
    }
    if (!g) {
        /* out of memory: run plainly, try again next time */
    } else if (mode == SP_EXEC_CAPTURE_OFF || g->state == SP_EXEC_GRAPH_OFF || g->busy) {
        g->plain++;
    } else if (g->state == SP_EXEC_GRAPH_NONE) {
        g->state = SP_EXEC_GRAPH_WARM; /* this run warms the caches */
        g->plain++;
    } else {
        g->busy = 1;
        take = 1;
    }
    pthread_mutex_unlock(&l->lock);
    if (!take) return 0;

    char why[256];
    const char *bad = exec_graph_args_why(l, g, params, dev, why, sizeof why);
    if (!bad && !g->graph) {
        sp_status saved = sp_last_status();
        char saved_msg[512];
        snprintf(saved_msg, sizeof saved_msg, "%s", sp_last_error());
        if (exec_graph_record(l, g, dev, why, sizeof why) != SP_OK) {
            /* not the user's error: the run goes on plainly */
            if (saved) sp_error(saved, "%s", saved_msg);
            else sp_clear_error();
            pthread_mutex_lock(&l->lock);
            g->state = SP_EXEC_GRAPH_OFF;
            snprintf(g->why, sizeof g->why, "%s", why);
            g->plain++;
            g->busy = 0;
            pthread_mutex_unlock(&l->lock);
            return 0;
        }
        pthread_mutex_lock(&l->lock);
        g->state = SP_EXEC_GRAPH_READY;
        g->captures++;
        pthread_mutex_unlock(&l->lock);
    }
    if (bad) {
        pthread_mutex_lock(&l->lock);
        snprintf(g->why, sizeof g->why, "%s", bad);
        g->plain++;
        g->fallbacks++;
        g->busy = 0;
        pthread_mutex_unlock(&l->lock);
        return 0;
    }
    *st = exec_graph_replay(l, g, params, out, mode == SP_EXEC_CAPTURE_ASYNC ? SP_GRAPH_NOWAIT : 0);
    pthread_mutex_lock(&l->lock);
    g->replays++;
    g->busy = 0;
    pthread_mutex_unlock(&l->lock);
    return 1;
}

sp_exec_graph_stats sp_lowered_graph_stats(const sp_lowered *l) {
    sp_exec_graph_stats r;
    memset(&r, 0, sizeof r);
    if (!l) return r;
    pthread_mutex_t *mu = (pthread_mutex_t *)&l->lock; /* the figures move; the program does not */
    pthread_mutex_lock(mu);
    const exec_graph *g = l->graph;
    if (g) {
        r.state = g->state;
        r.captures = g->captures;
        r.replays = g->replays;
        r.plain = g->plain;
        r.fallbacks = g->fallbacks;
        snprintf(r.why, sizeof r.why, "%s", g->why);
    }
    pthread_mutex_unlock(mu);
    return r;
}
