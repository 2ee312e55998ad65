/*
 * plan.c -- the static memory plan of a lowered graph: where in one arena
 * each intermediate tensor lives.
 *
 * Time is the kernel index.  A slot is written by its kernel (def) and read
 * until its last use; a view reads nothing itself but keeps its source's
 * bytes alive, so the last use of a viewed slot is the latest use of any
 * view of it, transitively (views are made after their sources, so one
 * backward sweep over the slots propagates it).  A slot's bytes are busy
 * over the closed interval [def, last use]: at kernel k the inputs are read
 * while the outputs are written, so a buffer that dies at k and one born at
 * k overlap -- unless the kernel is elementwise and writes its output into
 * an input that dies right there (in place): element i is read before
 * element i is written, and nothing else reads those bytes.  The
 * conditions: the input is an arena slot itself (not a view, parameter,
 * constant or output), its last use (views included) is this kernel, it
 * has the output's dtype and shape, and no other input of the kernel is a
 * view of it.  The output then continues the input's buffer.
 *
 * Buffers (chains of in-place slots) get offsets by greedy best fit in
 * decreasing size order: each buffer goes into the smallest gap, among the
 * buffers already placed whose intervals overlap its own, that holds it
 * (the "greedy by size" plan of TFLite's arena planner).  Sizes and
 * offsets are multiples of 64 bytes, so every slot is aligned for any
 * dtype and vector width.
 *
 * The statistics compare the plan with what running kernel by kernel
 * would hold: every kernel output its own allocation (views too: the VM's
 * view primitives copy), freed after its own last use.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/lower.h"

typedef struct plan_buf {
    int64_t size, offset;
    int start, end;
} plan_buf;

static int64_t plan_round(int64_t n) { return (n + 63) / 64 * 64; }

static int plan_root(const sp_lowered *l, int s) {
    while (l->slots[s].kind == SP_LSLOT_VIEW) s = l->slots[s].base;
    return s;
}

static int plan_same_meta(const sp_meta *a, const sp_meta *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* Whether kernel k may write its output into input slot i (see above). */
static int plan_can_inplace(const sp_lowered *l, const sp_lkernel *k, int i, int k_index) {
    const sp_lslot *s = &l->slots[i], *o = &l->slots[k->out[0]];
    if (s->kind != SP_LSLOT_ARENA || s->last_use != k_index || !plan_same_meta(&s->meta, &o->meta))
        return 0;
    for (int j = 0; j < k->n_in; j++)
        if (k->in[j] != i && plan_root(l, k->in[j]) == i) return 0;
    return 1;
}

/* Sort keys: buffers by decreasing size (then birth, then number). */
typedef struct plan_key {
    int64_t size;
    int start, idx;
} plan_key;

static int plan_cmp_key(const void *a, const void *b) {
    const plan_key *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->idx - y->idx;
}

typedef struct plan_span {
    int64_t offset, size;
} plan_span;

static int plan_cmp_span(const void *a, const void *b) {
    const plan_span *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Places buffer b among the placed ones: best fit over the gaps left by
 * those that overlap it in time. */
static void plan_place(plan_buf *bufs, const plan_key *placed, int n_placed, int b, plan_span *tmp) {
    int nt = 0;
    for (int i = 0; i < n_placed; i++) {
        const plan_buf *p = &bufs[placed[i].idx];
        if (p->start <= bufs[b].end && bufs[b].start <= p->end) tmp[nt++] = (plan_span){p->offset, p->size};
    }
    qsort(tmp, (size_t)nt, sizeof *tmp, plan_cmp_span);
    int64_t best = -1, best_gap = 0, pos = 0;
    for (int i = 0; i < nt; i++) {
        int64_t gap = tmp[i].offset - pos;
        if (gap >= bufs[b].size && (best < 0 || gap < best_gap)) {
            best = pos;
            best_gap = gap;
        }
        if (tmp[i].offset + tmp[i].size > pos) pos = tmp[i].offset + tmp[i].size;
    }
    bufs[b].offset = best >= 0 ? best : pos;
}

sp_status lower_plan(sp_lowered *l, const sp_lower_options *opt) {
    int ns = l->n_slots;
    int *own = malloc(sizeof *own * (size_t)(ns + 1));
    int *buf_of = malloc(sizeof *buf_of * (size_t)(ns + 1));
    plan_buf *bufs = calloc((size_t)ns + 1, sizeof *bufs);
    plan_key *ix = malloc(sizeof *ix * (size_t)(ns + 1));
    plan_span *tmp = malloc(sizeof *tmp * (size_t)(ns + 1));
    if (!own || !buf_of || !bufs || !ix || !tmp) {
        free(own), free(buf_of), free(bufs), free(ix), free(tmp);
        return sp_error(SP_ERR_NOMEM, "out of memory planning memory");
    }
    /* liveness: own reads, then views extend their sources */
    for (int s = 0; s < ns; s++) l->slots[s].last_use = l->slots[s].def;
    for (int k = 0; k < l->n_kernels; k++)
        for (int i = 0; i < l->kernels[k].n_in; i++) l->slots[l->kernels[k].in[i]].last_use = k;
    for (int s = 0; s < ns; s++) own[s] = l->slots[s].last_use;
    for (int s = ns - 1; s >= 0; s--) {
        sp_lslot *v = &l->slots[s];
        if (v->kind == SP_LSLOT_VIEW && l->slots[v->base].last_use < v->last_use)
            l->slots[v->base].last_use = v->last_use;
    }

    /* buffers, with in-place chains */
    int nb = 0;
    sp_lower_stats st;
    memset(&st, 0, sizeof st);
    for (int s = 0; s < ns; s++) buf_of[s] = -1;
    for (int k = 0; k < l->n_kernels; k++) {
        const sp_lkernel *kk = &l->kernels[k];
        if (kk->is_view) {
            st.n_views++;
            continue;
        }
        st.n_launches++;
        int reuse = -1;
        if (!(opt && opt->no_inplace) && kk->n_out == 1 && l->slots[kk->out[0]].kind == SP_LSLOT_ARENA &&
            (sp_op_defs[kk->op].flags & SP_OPF_ELEMWISE))
            for (int i = 0; i < kk->n_in && reuse < 0; i++)
                if (plan_can_inplace(l, kk, kk->in[i], k)) reuse = kk->in[i];
        for (int j = 0; j < kk->n_out; j++) {
            int o = kk->out[j];
            sp_lslot *so = &l->slots[o];
            if (so->kind != SP_LSLOT_ARENA) continue;
            if (reuse >= 0) {
                so->inplace_of = reuse;
                buf_of[o] = buf_of[reuse];
                if (bufs[buf_of[o]].end < so->last_use) bufs[buf_of[o]].end = so->last_use;
                st.n_inplace++;
                continue;
            }
            bufs[nb] = (plan_buf){plan_round(so->nbytes), 0, so->def, so->last_use};
            buf_of[o] = nb++;
        }
    }
    st.n_kernels = l->n_kernels;

    /* offsets: greedy best fit, largest first */
    for (int i = 0; i < nb; i++) ix[i] = (plan_key){bufs[i].size, bufs[i].start, i};
    qsort(ix, (size_t)nb, sizeof *ix, plan_cmp_key);
    for (int i = 0; i < nb; i++) {
        const plan_buf *b = &bufs[ix[i].idx];
        plan_place(bufs, ix, i, ix[i].idx, tmp);
        if (b->offset + b->size > st.arena_bytes) st.arena_bytes = b->offset + b->size;
    }
    for (int s = 0; s < ns; s++)
        if (l->slots[s].kind == SP_LSLOT_ARENA) l->slots[s].offset = bufs[buf_of[s]].offset;

    /* the figures without a plan: each kernel output alone, freed after its own last use */
    int64_t live = 0;
    int64_t *dies = calloc((size_t)l->n_kernels + 1, sizeof *dies); /* bytes freed after kernel k */
    if (!dies) {
        free(own), free(buf_of), free(bufs), free(ix), free(tmp);
        return sp_error(SP_ERR_NOMEM, "out of memory planning memory");
    }
    for (int s = 0; s < ns; s++)
        if (l->slots[s].def >= 0 && l->slots[s].kind != SP_LSLOT_OUTPUT) dies[own[s]] += plan_round(l->slots[s].nbytes);
    for (int k = 0; k < l->n_kernels; k++) {
        const sp_lkernel *kk = &l->kernels[k];
        for (int j = 0; j < kk->n_out; j++) {
            const sp_lslot *so = &l->slots[kk->out[j]];
            if (so->kind == SP_LSLOT_OUTPUT) continue;
            live += plan_round(so->nbytes);
            st.naive_bytes += plan_round(so->nbytes);
        }
        if (live > st.noplan_bytes) st.noplan_bytes = live;
        live -= dies[k];
    }
    free(dies);
    for (int s = 0; s < ns; s++)
        if (l->slots[s].kind == SP_LSLOT_OUTPUT) st.output_bytes += plan_round(l->slots[s].nbytes);
    l->stats = st;
    free(own), free(buf_of), free(bufs), free(ix), free(tmp);
    return SP_OK;
}
