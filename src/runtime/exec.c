/*
 * exec.c -- the executor of lowered graphs: a loop over a kernel list.
 *
 * All the thinking happened in sp_lower: the kernels are in order, every
 * attribute set is built, every tuple resolved, every intermediate has its
 * place in the arena.  A run only (1) checks that the parameters have the
 * signature the plan was made for -- a plan for (784, 256) is wrong for
 * anything else, so a mismatch is an error naming the parameter, never a
 * silent overrun; (2) takes an arena on the parameters' device (the
 * default device when there are none; constants, made on the CPU by the
 * compiler, are copied there once and kept: exec_const); (3) makes
 * a tensor for each slot when its kernel runs: a window on the arena, a
 * fresh tensor for an output, a view (reshape/transpose/slice/broadcast_to)
 * over its source; (4) launches each kernel with sp_op_call_into into its
 * planned outputs; (5) hands the outputs back and drops everything else.
 *
 * Views follow the tensor core's rules (sp_tensor_reshape & co.), so a
 * view is exactly the tensor the primitive would have copied; the run
 * checks its shape against the plan's.  A reshape of a parameter that is
 * not contiguous becomes a copy (sp_tensor_reshape decides; off the CPU
 * the reshape kernel makes it), outside the arena but correct.
 *
 * Errors: a kernel's run-time error (an index out of range in gather, a
 * device failure) gets the node's source location, like the VM's.  Every
 * exit path releases what the run made; the cached arena goes back to the
 * lowered object.
 *
 * On a backend that can record CUDA graphs, a run may instead replay the
 * whole kernel list as one graph: exec_graph.c decides, and hands back the
 * runs it does not take (the first, warming run among them), which then
 * go through exec_kernels here like any other.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "runtime/exec.h"
#include "runtime/exec_internal.h"

static int exec_same_dev(sp_device a, sp_device b) {
    return a.type == b.type && (a.type == SP_DEVICE_CPU || a.index == b.index);
}

static int exec_meta_eq(const sp_meta *a, const sp_tensor *t) {
    if (a->dtype != t->dtype || a->ndim != t->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != t->shape[i]) return 0;
    return 1;
}

sp_status exec_check(const sp_lowered *l, int n, sp_tensor *const *params, sp_device *dev) {
    *dev = SP_CPU;
    if (n != l->n_params)
        return sp_error(SP_ERR_ARG, "@%s (lowered): takes %d parameters, got %d", l->name, l->n_params, n);
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (l->params[i].ndim == SP_LOWER_STATIC) continue; /* folded into the graph */
        const sp_tensor *t = params[i];
        const char *pn = NULL;
        for (int s = 0; s < l->n_slots && !pn; s++)
            if (l->slots[s].kind == SP_LSLOT_PARAM && l->slots[s].index == i) pn = l->slots[s].name;
        if (!t || !t->buf)
            return sp_error(SP_ERR_ARG, "@%s (lowered): parameter %d (%s) is NULL", l->name, i, pn ? pn : "?");
        if (!exec_meta_eq(&l->params[i], t)) {
            char a[256], b[256];
            sp_shape_str(l->params[i].ndim, l->params[i].shape, a, sizeof a);
            sp_shape_str(t->ndim, t->shape, b, sizeof b);
            return sp_error(SP_ERR_SHAPE,
                            "@%s (lowered): parameter %d (%s): expected %s%s, got %s%s (compile again "
                            "for this signature)", l->name, i, pn ? pn : "?",
                            sp_dtype_name(l->params[i].dtype), a, sp_dtype_name(t->dtype), b);
        }
        if (first) *dev = t->buf->device, first = 0;
        else if (!exec_same_dev(*dev, t->buf->device))
            return sp_error(SP_ERR_DEVICE, "@%s (lowered): parameters 0 and %d are on different devices",
                            l->name, i);
    }
    /* no tensor parameter to follow: the program's tensors are made where
     * the default device is (`spore run --device cuda`) */
    if (first) *dev = sp_default_device();
    return SP_OK;
}

sp_buffer *exec_arena_get(sp_lowered *l, sp_device dev, int *cached) {
    size_t need = (size_t)(l->stats.arena_bytes > 64 ? l->stats.arena_bytes : 64);
    sp_buffer *a = NULL;
    int busy;
    *cached = 0;
    pthread_mutex_lock(&l->lock);
    busy = l->arena_busy;
    if (!busy) {
        if (l->arena && !exec_same_dev(l->arena->device, dev)) {
            sp_buffer_release(l->arena);
            l->arena = NULL;
        }
        if (!l->arena) l->arena = sp_buffer_new(dev, need);
        if (l->arena) {
            a = l->arena;
            l->arena_busy = 1;
            *cached = 1;
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (busy) a = sp_buffer_new(dev, need);
    return a;
}

void exec_arena_put(sp_lowered *l, sp_buffer *a, int cached) {
    if (!cached) {
        sp_buffer_release(a);
        return;
    }
    pthread_mutex_lock(&l->lock);
    l->arena_busy = 0;
    pthread_mutex_unlock(&l->lock);
}

sp_tensor *exec_const(sp_lowered *l, int s, sp_device dev) {
    sp_tensor *t = l->slots[s].tensor, *r = NULL;
    if (exec_same_dev(t->buf->device, dev)) {
        sp_tensor_retain(t);
        return t;
    }
    pthread_mutex_lock(&l->lock);
    if (!l->dev_consts) {
        l->dev_consts = calloc((size_t)l->n_slots + 1, sizeof *l->dev_consts);
        l->const_dev = dev;
    }
    if (l->dev_consts && exec_same_dev(l->const_dev, dev)) {
        if (!l->dev_consts[s] && sp_tensor_to(t, dev, &l->dev_consts[s]) != SP_OK) l->dev_consts[s] = NULL;
        r = l->dev_consts[s];
        if (r) sp_tensor_retain(r);
        pthread_mutex_unlock(&l->lock);
        return r;
    }
    pthread_mutex_unlock(&l->lock);
    return sp_tensor_to(t, dev, &r) == SP_OK ? r : NULL;
}

static void exec_arena_unref(void *arena) { sp_buffer_release(arena); }

/* A window of the arena for slot x (contiguous).  The window is a buffer
 * of its own over the arena's bytes (holding a reference to the arena),
 * with offset 0: several CUDA kernels write their output at the buffer's
 * start, ignoring the tensor's offset, which no fresh output ever had. */
static sp_tensor *exec_window(sp_buffer *arena, const sp_lslot *x) {
    int64_t strides[SP_MAX_DIMS], st = 1;
    for (int i = x->meta.ndim - 1; i >= 0; i--) {
        strides[i] = st;
        st *= x->meta.shape[i];
    }
    sp_buffer_retain(arena);
    sp_buffer *b = sp_buffer_wrap(arena->device, (char *)arena->data + x->offset, (size_t)x->nbytes,
                                  exec_arena_unref, arena);
    if (!b) {
        sp_buffer_release(arena);
        return NULL;
    }
    sp_tensor *t = sp_tensor_view_of(b, x->meta.dtype, x->meta.ndim, x->meta.shape, strides, 0);
    sp_buffer_release(b);
    return t;
}

/* The view kernel k of src, checked against the plan's meta. */
static sp_tensor *exec_view(const sp_lkernel *k, const sp_lslot *dst, sp_tensor *src) {
    sp_tensor *t = NULL;
    const sp_meta *m = &dst->meta;
    sp_status st = SP_OK;
    if (k->op == SP_OP_RESHAPE && src->buf->device.type != SP_DEVICE_CPU && !sp_tensor_is_contiguous(src)) {
        /* the core copies only on the CPU: the device's reshape kernel
         * makes the contiguous copy (a strided parameter) */
        int n = 0;
        st = sp_op_call(SP_OP_RESHAPE, 1, &src, &k->attrs, &n, &t);
        if (!st && n != 1) st = sp_error(SP_ERR_INTERNAL, "reshape: %d outputs", n);
    } else if (k->op == SP_OP_RESHAPE) {
        st = sp_tensor_reshape(src, m->ndim, m->shape, &t);
    } else if (k->op == SP_OP_BROADCAST_TO) {
        st = sp_tensor_expand(src, m->ndim, m->shape, &t);
    } else if (k->op == SP_OP_TRANSPOSE) {
        int np, perm[SP_MAX_DIMS];
        const int64_t *p = sp_attrs_get_ints(&k->attrs, "perm", &np);
        for (int i = 0; i < src->ndim; i++) perm[i] = p ? (int)p[i] : src->ndim - 1 - i;
        st = sp_tensor_permute(src, perm, &t);
    } else if (k->op == SP_OP_SLICE) {
        static const char *const names[3] = {"begin", "end", "step"};
        const int64_t *v[3];
        int cnt;
        for (int j = 0; j < 3; j++) v[j] = sp_attrs_get_ints(&k->attrs, names[j], &cnt);
        int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS], off = src->offset;
        for (int i = 0; i < src->ndim; i++) {
            int64_t step = v[2] ? v[2][i] : 1, first = 0;
            shape[i] = sp_slice_range(src->shape[i], v[0] ? v[0][i] : SP_SLICE_NONE,
                                      v[1] ? v[1][i] : SP_SLICE_NONE, step, &first);
            if (shape[i] > 0) off += first * src->strides[i];
            strides[i] = src->strides[i] * step;
        }
        t = sp_tensor_view_of(src->buf, src->dtype, src->ndim, shape, strides, off);
        st = t ? SP_OK : sp_last_status();
    } else {
        st = sp_error(SP_ERR_INTERNAL, "%s is not a view primitive", sp_op_name(k->op));
    }
    if (st) return NULL;
    if (!exec_meta_eq(m, t)) {
        sp_tensor_release(t);
        sp_error(SP_ERR_INTERNAL, "%s: the view's shape differs from the plan", sp_op_name(k->op));
        return NULL;
    }
    return t;
}

sp_status exec_kernels(sp_lowered *l, sp_device dev, sp_buffer *arena, sp_tensor **t) {
    sp_status st = SP_OK;
    for (int k = 0; k < l->n_kernels; k++) {
        const sp_lkernel *kk = &l->kernels[k];
        for (int j = 0; j < kk->n_out && !kk->is_view; j++) {
            int s = kk->out[j];
            const sp_lslot *x = &l->slots[s];
            if (t[s]) continue; /* an output the caller gave */
            t[s] = x->kind == SP_LSLOT_OUTPUT ? sp_tensor_new(x->meta.dtype, x->meta.ndim, x->meta.shape, dev)
                                              : exec_window(arena, x);
            if (!t[s]) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        }
        if (kk->is_view) {
            t[kk->out[0]] = exec_view(kk, &l->slots[kk->out[0]], t[kk->in[0]]);
            st = t[kk->out[0]] ? SP_OK : sp_last_status();
        } else {
            sp_tensor *in[SP_MAX_INPUTS], *o[SP_MAX_OUTPUTS];
            for (int i = 0; i < kk->n_in; i++) in[i] = t[kk->in[i]];
            for (int j = 0; j < kk->n_out; j++) o[j] = t[kk->out[j]];
            st = sp_op_call_into(kk->op, kk->n_in, in, &kk->attrs, kk->n_out, o);
        }
        if (st) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", sp_last_error());
            return sp_error_at(l->module, kk->loc, st ? st : SP_ERR_RUNTIME, "%s", msg);
        }
    }
    return SP_OK;
}

sp_status sp_lowered_run(sp_lowered *l, int n, sp_tensor *const *params, sp_tensor **out) {
    if (!l || (n > 0 && !params) || (l->n_results > 0 && !out))
        return sp_error(SP_ERR_ARG, "lowered_run: NULL argument");
    sp_device dev;
    sp_status st = exec_check(l, n, params, &dev);
    if (st) return st;
    if (exec_graph_run(l, params, dev, out, &st)) return st; /* replayed (exec_graph.c) */
    int cached = 0;
    sp_buffer *arena = NULL;
    sp_tensor **t = calloc((size_t)l->n_slots + 1, sizeof *t);
    if (!t) return sp_error(SP_ERR_NOMEM, "out of memory running @%s", l->name);
    arena = exec_arena_get(l, dev, &cached);
    if (!arena) {
        st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        goto done;
    }
    for (int s = 0; s < l->n_slots; s++) {
        const sp_lslot *x = &l->slots[s];
        if (x->kind == SP_LSLOT_PARAM) {
            t[s] = params[x->index];
            sp_tensor_retain(t[s]);
        } else if (x->kind == SP_LSLOT_CONST && !(t[s] = exec_const(l, s, dev))) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            goto done;
        }
    }
    if ((st = exec_kernels(l, dev, arena, t))) goto done;
    for (int i = 0; i < l->n_results; i++) {
        out[i] = t[l->results[i]];
        sp_tensor_retain(out[i]);
    }
done:
    for (int s = 0; s < l->n_slots; s++) sp_tensor_release(t[s]);
    free(t);
    if (arena) exec_arena_put(l, arena, cached);
    return st;
}

static sp_value *exec_tree(const sp_lowered *l, int o, sp_tensor **res, int *next) {
    const sp_lout *x = &l->outs[o];
    if (x->kind == 0) {
        sp_tensor *t = res[(*next)++];
        return sp_value_tensor(t);
    }
    if (x->kind == 1) {
        sp_value_retain(x->value);
        return x->value;
    }
    sp_value **items = calloc((size_t)x->n + 1, sizeof *items);
    if (!items) {
        sp_error(SP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    sp_value *r = NULL;
    int i;
    for (i = 0; i < x->n; i++)
        if (!(items[i] = exec_tree(l, x->child[i], res, next))) break;
    if (i == x->n) r = sp_value_tuple(x->n, items);
    for (int k = 0; k < i; k++) sp_value_release(items[k]);
    free(items);
    return r;
}

sp_value *sp_lowered_run_value(sp_lowered *l, int n, sp_value *const *args) {
    if (!l || (n > 0 && !args)) {
        sp_error(SP_ERR_ARG, "lowered_run_value: NULL argument");
        return NULL;
    }
    sp_tensor **p = calloc((size_t)n + 1, sizeof *p);
    sp_tensor **res = calloc((size_t)l->n_results + 1, sizeof *res);
    sp_value *r = NULL;
    if (!p || !res) {
        sp_error(SP_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n && i < l->n_params; i++) {
        if (l->params[i].ndim == SP_LOWER_STATIC) continue; /* p[i] stays NULL */
        if (!args[i] || args[i]->kind != SP_V_TENSOR) {
            sp_error(SP_ERR_TYPE, "@%s (lowered): parameter %d must be a Tensor, not %s", l->name, i,
                     args[i] ? sp_value_kind_name(args[i]) : "NULL");
            goto done;
        }
        p[i] = args[i]->u.tensor;
    }
    if (sp_lowered_run(l, n, p, res) != SP_OK) goto done;
    int next = 0;
    r = exec_tree(l, l->out_root, res, &next);
    for (int i = 0; i < l->n_results; i++) sp_tensor_release(res[i]);
done:
    free(p);
    free(res);
    return r;
}
