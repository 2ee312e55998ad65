/*
 * fused.c -- the CPU kernel of fused_elementwise: a chain of elementwise
 * primitives (the postfix program of ops/fused.h), and optionally a sum,
 * mean, max or min at its end, in one pass over memory.
 *
 * Nothing here is written per pattern.  The kernel is generated at run time
 * from the program: each step runs the loop that the step primitive's own
 * kernel runs (cpu_ew_spec_of: the same vectorized loop, compute dtypes and
 * attribute state), over one BLOCK of FU_B elements at a time.  A step's
 * result lives in a block buffer (a "slot", one per stack position of the
 * program) in the dtype inference gave the step, so every intermediate is
 * rounded exactly as the unfused chain stores it; the fused result of a
 * float32 (or float16, float64...) chain therefore equals the unfused one
 * bit for bit, for any thread count.  Each stack position has two buffers
 * and a step writes the one its operands are not in: never in place, so
 * widths may differ and no loop runs with its output overlapping an input
 * (gcc's alias checks would send it to the scalar version).  Blocks are
 * small (512 elements: 2 KB of float32, at most 4 KB per buffer) so the
 * live buffers stay in L1 while the program runs over them; only the
 * inputs and the final result touch memory.
 *
 * Inputs.  Each input is read in the C order of the elementwise shape E
 * (or, with a reduction, of E with the kept axes first and the reduced
 * ones last: E').  Per input, size-1 dims are dropped and neighbours
 * merged; an input that is then one contiguous run is read in place, a
 * fully broadcast one as a stride-0 scalar, and any other layout (strided
 * views, partial broadcasting) is gathered into a block buffer first.
 * Literals (Python scalars in the program) are stride-0 operands in their
 * step's weak dtype, as the VM would have made them.
 *
 * Threads.  E (E') is cut into tiles of FU_TILE elements, the unit of work
 * for sp_parallel_for; a tile is walked block by block.  Elementwise
 * results depend on nothing but their element.  A reduction folds each
 * output's run of R consecutive E' elements: within a block into 8 double
 * (or int64) lanes, block partials added in order into the piece of the
 * output that lies in the tile; an output that lies entirely in one tile
 * is finished there, one that spans tiles leaves a piece per tile, and the
 * pieces are combined in tile order afterwards.  The tiling depends only
 * on the shapes, so the result is identical for any thread count.  Sums of
 * floats accumulate in double like reduce.c, so fused and unfused sums
 * agree to within the final rounding to the output dtype (the orders of
 * the double additions differ); max and min are exact; integer sums wrap
 * in int64 as reduce.c's do.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/elementwise.h"
#include "ops/fused.h"

#define FU_B CPU_EW_CHUNK                  /* elements per block */
#define FU_BUF ((size_t)FU_B * 8)          /* bytes of a block buffer */
#define FU_TILE ((int64_t)FU_B * 64)       /* elements per tile (task) */

enum { FU_DIRECT, FU_SCALAR, FU_GATHER };

typedef struct fu_input {
    int used, mode;
    sp_dtype dt;
    int64_t es;
    const char *base;
    int ndim; /* merged dims (FU_GATHER) */
    int64_t shape[SP_MAX_DIMS], st[SP_MAX_DIMS]; /* st in bytes */
    int gbuf; /* its gather buffer, FU_GATHER */
} fu_input;

/* A piece of one output's reduction that a tile could not finish. */
typedef struct fu_piece {
    int64_t o; /* -1: none */
    double d;
    int64_t i;
} fu_piece;

typedef struct fu_plan {
    const sp_fused_prog *p;
    int n_in, n_gather;
    fu_input in[SP_MAX_INPUTS];
    cpu_ew_spec spec[SP_FUSED_MAX_STEPS];
    cpu_ew_ctx ctx[SP_FUSED_MAX_STEPS];
    int buf[SP_FUSED_MAX_STEPS]; /* the block buffer of each step's result */
    _Alignas(8) unsigned char lit[SP_FUSED_MAX_STEPS][3][8];
    int64_t total;  /* elements of E */
    char *out;
    sp_dtype out_dt;
    /* reduction */
    int red; /* SP_OP_SUM/MEAN/MAX/MIN or -1 */
    int acc_int;
    int64_t R, M;
    double *accd;
    int64_t *acci;
    fu_piece *pieces; /* 2 per tile: head, tail */
    int failed;
} fu_plan;

/* ---- per block ------------------------------------------------------------ */

typedef struct fu_scratch {
    char *slot[2 * SP_FUSED_MAX_STEPS];
    char *gather[SP_MAX_INPUTS];
    char *conv[CPU_EW_MAX_IN + 1];
    char *acc; /* a block of doubles / int64 for the reduction */
} fu_scratch;

/* n copies of the element of `size` bytes at src into dst (src may be
 * dst's first element). */
static void fu_spread(char *dst, const char *src, size_t size, int64_t n) {
    uint64_t v = 0;
    memcpy(&v, src, size);
    switch (size) {
    case 1: memset(dst, (int)(v & 0xff), (size_t)n); break;
    case 2: for (int64_t e = 0; e < n; e++) ((uint16_t *)(void *)dst)[e] = (uint16_t)v; break;
    case 4: for (int64_t e = 0; e < n; e++) ((uint32_t *)(void *)dst)[e] = (uint32_t)v; break;
    default: for (int64_t e = 0; e < n; e++) ((uint64_t *)(void *)dst)[e] = v; break;
    }
}

/* Gathers elements [start, start+n) of input x (E' order) into dst. */
static void fu_gather(const fu_input *x, int64_t start, int64_t n, char *dst) {
    const int nd = x->ndim, last = nd - 1;
    int64_t idx[SP_MAX_DIMS], rem = start;
    const char *ptr = x->base;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % x->shape[d];
        rem /= x->shape[d];
        ptr += idx[d] * x->st[d];
    }
    int64_t done = 0;
    while (done < n) {
        int64_t m = x->shape[last] - idx[last];
        if (m > n - done) m = n - done;
        if (x->st[last] == 0) /* a bias broadcast along the run: a fill */
            fu_spread(dst + done * x->es, ptr, (size_t)x->es, m);
        else
            cpu_ew_convert(x->dt, dst + done * x->es, x->es, x->dt, ptr, x->st[last], m);
        done += m;
        if (done >= n) break;
        idx[last] += m;
        ptr += m * x->st[last];
        for (int d = last; d > 0 && idx[d] == x->shape[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            ptr += x->st[d - 1] - x->shape[d] * x->st[d];
        }
    }
}

/* One step over n elements: operands ptr/st/dt, result into dst (dtype
 * ddt, contiguous), converting as cpu_ew_run would (ew_do_run, cast.c).
 * spread: the step is a where, whose branch-free loop wants both values
 * contiguous; a stride-0 value (a literal: the 0.0 of a masked gradient)
 * is spread over the block first, since the strided loop branches on a
 * mask that is a coin flip per element (binary.c's WHERE_LOOP). */
static void fu_step(const cpu_ew_spec *sp, const fu_scratch *sc, char *const *ptr,
                    const int64_t *st, const sp_dtype *dt, char *dst, sp_dtype ddt, int64_t n,
                    int spread) {
    char *p2[CPU_EW_MAX_IN + 1];
    int64_t s2[CPU_EW_MAX_IN + 1];
    const int conv_out = ddt != sp->ctype[0];
    p2[0] = conv_out ? sc->conv[0] : dst;
    s2[0] = (int64_t)sp_dtype_size(sp->ctype[0]);
    for (int k = 1; k <= sp->nin; k++) {
        if (dt[k] == sp->ctype[k]) {
            p2[k] = ptr[k];
            s2[k] = st[k];
            continue;
        }
        int64_t cs = (int64_t)sp_dtype_size(sp->ctype[k]);
        p2[k] = sc->conv[k];
        if (st[k] == 0) {
            cpu_ew_convert(sp->ctype[k], sc->conv[k], cs, dt[k], ptr[k], 0, 1);
            s2[k] = 0;
        } else {
            cpu_ew_convert(sp->ctype[k], sc->conv[k], cs, dt[k], ptr[k], st[k], n);
            s2[k] = cs;
        }
    }
    for (int k = 2; spread && k <= sp->nin; k++) {
        if (s2[k] != 0 || n < 2) continue;
        size_t cs = sp_dtype_size(sp->ctype[k]);
        fu_spread(sc->conv[k], p2[k], cs, n); /* p2[k] may be conv[k] itself */
        p2[k] = sc->conv[k];
        s2[k] = (int64_t)cs;
    }
    sp->loop(p2, s2, n, sp->ctx);
    if (conv_out)
        cpu_ew_convert(ddt, dst, (int64_t)sp_dtype_size(ddt), sp->ctype[0], sc->conv[0], s2[0], n);
}

/* Runs the program over elements [start, start+n) of E'; the result is in
 * the last step's slot, or (no reduction) in the output. */
static void fu_block(const fu_plan *pl, const fu_scratch *sc, int64_t start, int64_t n) {
    const sp_fused_prog *p = pl->p;
    const char *iptr[SP_MAX_INPUTS];
    int64_t ist[SP_MAX_INPUTS];
    for (int k = 0; k < pl->n_in; k++) {
        const fu_input *x = &pl->in[k];
        if (!x->used) continue;
        if (x->mode == FU_DIRECT) {
            iptr[k] = x->base + start * x->es;
            ist[k] = x->es;
        } else if (x->mode == FU_SCALAR) {
            iptr[k] = x->base;
            ist[k] = 0;
        } else {
            fu_gather(x, start, n, sc->gather[x->gbuf]);
            iptr[k] = sc->gather[x->gbuf];
            ist[k] = x->es;
        }
    }
    for (int i = 0; i < p->n_steps; i++) {
        const sp_fused_step *s = &p->step[i];
        char *ptr[CPU_EW_MAX_IN + 1];
        int64_t st[CPU_EW_MAX_IN + 1];
        sp_dtype dt[CPU_EW_MAX_IN + 1];
        for (int k = 0; k < s->n_args; k++) {
            const sp_fused_arg *a = &s->arg[k];
            if (a->kind == SP_FARG_INPUT) {
                ptr[k + 1] = (char *)iptr[a->index];
                st[k + 1] = ist[a->index];
                dt[k + 1] = pl->in[a->index].dt;
            } else if (a->kind == SP_FARG_STEP) {
                const sp_fused_step *src = &p->step[a->index];
                ptr[k + 1] = sc->slot[pl->buf[a->index]];
                dt[k + 1] = src->meta.dtype;
                st[k + 1] = (int64_t)sp_dtype_size(dt[k + 1]);
            } else {
                ptr[k + 1] = (char *)pl->lit[i][k];
                st[k + 1] = 0;
                dt[k + 1] = s->lit_dtype;
            }
        }
        char *dst = sc->slot[pl->buf[i]];
        if (i == p->n_steps - 1 && pl->red < 0)
            dst = pl->out + start * (int64_t)sp_dtype_size(s->meta.dtype);
        fu_step(&pl->spec[i], sc, ptr, st, dt, dst, s->meta.dtype, n, s->op == SP_OP_WHERE);
    }
}

/* ---- reduction ------------------------------------------------------------- */

typedef struct fu_acc {
    double d;
    int64_t i;
} fu_acc;

static void fu_acc_init(const fu_plan *pl, fu_acc *a) {
    a->i = 0;
    a->d = pl->red == SP_OP_MAX ? -INFINITY : pl->red == SP_OP_MIN ? INFINITY : 0.0;
    if (pl->acc_int && pl->red == SP_OP_MAX) a->i = INT64_MIN;
    if (pl->acc_int && pl->red == SP_OP_MIN) a->i = INT64_MAX;
}

static inline double fu_maxd(double a, double b) { return (a > b || a != a) ? a : b; }
static inline double fu_mind(double a, double b) { return (a < b || a != a) ? a : b; }

static void fu_acc_combine(const fu_plan *pl, fu_acc *a, const fu_acc *b) {
    switch (pl->red) {
    case SP_OP_MAX:
        a->d = fu_maxd(a->d, b->d);
        a->i = a->i > b->i ? a->i : b->i;
        break;
    case SP_OP_MIN:
        a->d = fu_mind(a->d, b->d);
        a->i = a->i < b->i ? a->i : b->i;
        break;
    default:
        a->d += b->d;
        a->i = (int64_t)((uint64_t)a->i + (uint64_t)b->i);
        break;
    }
}

/* Folds n values (doubles or int64 at v) into *a: 8 lanes, combined in a
 * fixed order. */
static void fu_fold(const fu_plan *pl, const char *v, int64_t n, fu_acc *a) {
    if (pl->acc_int) {
        const int64_t *x = (const int64_t *)v;
        int64_t r = pl->red == SP_OP_MAX ? INT64_MIN : pl->red == SP_OP_MIN ? INT64_MAX : 0;
        for (int64_t k = 0; k < n; k++) {
            if (pl->red == SP_OP_MAX) r = x[k] > r ? x[k] : r;
            else if (pl->red == SP_OP_MIN) r = x[k] < r ? x[k] : r;
            else r = (int64_t)((uint64_t)r + (uint64_t)x[k]);
        }
        fu_acc b = {0.0, r};
        fu_acc_combine(pl, a, &b);
        return;
    }
    const double *x = (const double *)v;
    double l[8];
    fu_acc b;
    fu_acc_init(pl, &b);
    for (int j = 0; j < 8; j++) l[j] = b.d;
    int64_t k = 0;
    if (pl->red == SP_OP_MAX) {
        for (; k + 8 <= n; k += 8)
            for (int j = 0; j < 8; j++) l[j] = fu_maxd(l[j], x[k + j]);
        for (; k < n; k++) l[0] = fu_maxd(l[0], x[k]);
        for (int j = 0; j < 8; j++) b.d = fu_maxd(b.d, l[j]);
    } else if (pl->red == SP_OP_MIN) {
        for (; k + 8 <= n; k += 8)
            for (int j = 0; j < 8; j++) l[j] = fu_mind(l[j], x[k + j]);
        for (; k < n; k++) l[0] = fu_mind(l[0], x[k]);
        for (int j = 0; j < 8; j++) b.d = fu_mind(b.d, l[j]);
    } else {
        for (; k + 8 <= n; k += 8)
            for (int j = 0; j < 8; j++) l[j] += x[k + j];
        for (; k < n; k++) l[k & 7] += x[k];
        b.d = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    }
    fu_acc_combine(pl, a, &b);
}

/* Ends the piece of output o that covered [s0, s1) of the tile [a, b). */
static void fu_piece_end(fu_plan *pl, int64_t tile, int64_t a, int64_t b, int64_t o,
                         const fu_acc *acc) {
    int64_t seg0 = o * pl->R, seg1 = seg0 + pl->R;
    if (seg0 >= a && seg1 <= b) { /* whole: finished here */
        pl->accd[o] = acc->d;
        pl->acci[o] = acc->i;
        return;
    }
    fu_piece *pc = &pl->pieces[2 * tile + (seg0 < a ? 0 : 1)];
    pc->o = o;
    pc->d = acc->d;
    pc->i = acc->i;
}

/* ---- tiles ------------------------------------------------------------------ */

static void fu_tile(fu_plan *pl, const fu_scratch *sc, int64_t tile) {
    const int64_t a = tile * FU_TILE;
    const int64_t b = a + FU_TILE < pl->total ? a + FU_TILE : pl->total;
    const sp_fused_step *last = &pl->p->step[pl->p->n_steps - 1];
    fu_acc acc;
    int64_t o = pl->R > 0 ? a / pl->R : 0;
    fu_acc_init(pl, &acc);
    for (int64_t s = a; s < b; s += FU_B) {
        int64_t n = b - s < FU_B ? b - s : FU_B;
        fu_block(pl, sc, s, n);
        if (pl->red < 0) continue;
        /* fold the block into the outputs its elements belong to */
        const char *v = sc->slot[pl->buf[pl->p->n_steps - 1]];
        const int64_t es = (int64_t)sp_dtype_size(last->meta.dtype);
        cpu_ew_convert(pl->acc_int ? SP_I64 : SP_F64, sc->acc, 8, last->meta.dtype, v, es, n);
        int64_t k = 0;
        while (k < n) {
            int64_t seg1 = (o + 1) * pl->R;
            int64_t m = seg1 - (s + k);
            if (m > n - k) m = n - k;
            fu_fold(pl, sc->acc + k * 8, m, &acc);
            k += m;
            if (s + k == seg1) {
                fu_piece_end(pl, tile, a, b, o, &acc);
                fu_acc_init(pl, &acc);
                o++;
            }
        }
    }
    if (pl->red >= 0 && b % pl->R != 0) fu_piece_end(pl, tile, a, b, o, &acc);
}

static void fu_worker(void *ctx, int64_t begin, int64_t end) {
    fu_plan *pl = ctx;
    const sp_fused_prog *p = pl->p;
    int nbuf = 2 * p->n_slots + pl->n_gather + CPU_EW_MAX_IN + 1 + 1;
    char *mem = aligned_alloc(64, FU_BUF * (size_t)nbuf);
    if (!mem) {
        __atomic_store_n(&pl->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    fu_scratch sc;
    char *q = mem;
    for (int k = 0; k < 2 * p->n_slots; k++, q += FU_BUF) sc.slot[k] = q;
    for (int k = 0; k < pl->n_gather; k++, q += FU_BUF) sc.gather[k] = q;
    for (int k = 0; k <= CPU_EW_MAX_IN; k++, q += FU_BUF) sc.conv[k] = q;
    sc.acc = q;
    for (int64_t t = begin; t < end; t++) fu_tile(pl, &sc, t);
    free(mem);
}

/* ---- set-up ------------------------------------------------------------------ */

/* How input x is read in E' order: E' is E with dims permuted by perm. */
static void fu_input_plan(fu_input *f, const sp_tensor *x, int nd, const int64_t *eshape,
                          const int *perm) {
    int64_t bst[SP_MAX_DIMS];
    cpu_broadcast_strides(x, nd, eshape, bst);
    f->dt = x->dtype;
    f->es = (int64_t)sp_dtype_size(x->dtype);
    f->base = sp_tensor_data(x);
    int n = 0;
    for (int j = 0; j < nd; j++) {
        int d = perm[j];
        int64_t sz = eshape[d], st = bst[d] * f->es;
        if (sz == 1) continue;
        if (n > 0 && f->st[n - 1] == st * sz) {
            f->shape[n - 1] *= sz;
            f->st[n - 1] = st;
        } else {
            f->shape[n] = sz;
            f->st[n] = st;
            n++;
        }
    }
    f->ndim = n;
    int all0 = 1;
    for (int d = 0; d < n; d++) all0 &= f->st[d] == 0;
    if (all0) f->mode = FU_SCALAR;
    else if (n == 1 && f->st[0] == f->es) f->mode = FU_DIRECT;
    else f->mode = FU_GATHER;
}

sp_status cpu_fused_elementwise(const sp_kernel_args *a) {
    sp_meta min[SP_MAX_INPUTS];
    for (int k = 0; k < a->n_in; k++) min[k] = sp_meta_of(a->in[k]);
    sp_fused_prog *p = sp_fused_prepare(a->n_in, min, a->attrs);
    if (!p) return sp_last_status();
    sp_status st = SP_OK;
    fu_plan *pl = calloc(1, sizeof *pl);
    if (!pl) {
        sp_fused_free(p);
        return sp_error(SP_ERR_NOMEM, "fused_elementwise: out of memory");
    }
    pl->p = p;
    pl->n_in = a->n_in;
    pl->out = sp_tensor_data(a->out[0]);
    pl->out_dt = a->out[0]->dtype;
    pl->red = p->reduce_op;

    /* the loops of the steps, and their literals */
    for (int i = 0; i < p->n_steps && !st; i++) {
        const sp_fused_step *s = &p->step[i];
        sp_dtype dt[3];
        for (int k = 0; k < s->n_args; k++) {
            const sp_fused_arg *g = &s->arg[k];
            if (g->kind == SP_FARG_INPUT) {
                dt[k] = a->in[g->index]->dtype;
                pl->in[g->index].used = 1;
            } else if (g->kind == SP_FARG_STEP) {
                dt[k] = p->step[g->index].meta.dtype;
            } else {
                dt[k] = s->lit_dtype;
                if (g->lit_kind == SP_FLIT_FLOAT) sp_store_f64(s->lit_dtype, pl->lit[i][k], g->f);
                else sp_store_i64(s->lit_dtype, pl->lit[i][k], g->i);
            }
        }
        /* stack position `slot` has two buffers; take the one its operand at
         * that position (if a step result) does not hold */
        pl->buf[i] = 2 * s->slot;
        for (int k = 0; k < s->n_args; k++)
            if (s->arg[k].kind == SP_FARG_STEP && p->step[s->arg[k].index].slot == s->slot)
                pl->buf[i] = 2 * s->slot + 1 - (pl->buf[s->arg[k].index] & 1);
        sp_attrs sa;
        sp_fused_step_attrs(s, &sa);
        st = cpu_ew_spec_of(s->op, s->n_args, dt, s->meta.dtype, &sa, &pl->spec[i], &pl->ctx[i]);
    }

    /* E' = E with the kept axes first, the reduced ones last */
    const sp_meta *e = &p->elem;
    int perm[SP_MAX_DIMS], red_ax[SP_MAX_DIMS] = {0};
    pl->total = 1;
    for (int d = 0; d < e->ndim; d++) pl->total *= e->shape[d];
    pl->R = 1;
    if (!st && pl->red >= 0) {
        int n_ax = 0;
        const int64_t *ax = sp_attrs_get_ints(a->attrs, "axes", &n_ax);
        if (!ax)
            for (int d = 0; d < e->ndim; d++) red_ax[d] = 1;
        for (int k = 0; k < n_ax && !st; k++) {
            int d;
            st = sp_norm_axis("fused_elementwise", ax[k], e->ndim, &d);
            if (!st) red_ax[d] = 1;
        }
        for (int d = 0; d < e->ndim; d++)
            if (red_ax[d]) pl->R *= e->shape[d];
        pl->M = sp_tensor_numel(a->out[0]);
        pl->acc_int = !sp_dtype_is_float(p->elem.dtype);
    }
    int np = 0;
    for (int d = 0; d < e->ndim; d++)
        if (!red_ax[d]) perm[np++] = d;
    for (int d = 0; d < e->ndim; d++)
        if (red_ax[d]) perm[np++] = d;
    for (int k = 0; k < a->n_in && !st; k++) {
        if (!pl->in[k].used) continue;
        fu_input_plan(&pl->in[k], a->in[k], e->ndim, e->shape, perm);
        if (pl->in[k].mode == FU_GATHER) pl->in[k].gbuf = pl->n_gather++;
    }

    int64_t n_tiles = (pl->total + FU_TILE - 1) / FU_TILE;
    if (!st && pl->red >= 0) {
        size_t m = (size_t)(pl->M ? pl->M : 1);
        pl->accd = malloc(m * sizeof(double));
        pl->acci = malloc(m * sizeof(int64_t));
        pl->pieces = malloc((size_t)(2 * n_tiles + 1) * sizeof(fu_piece));
        if (!pl->accd || !pl->acci || !pl->pieces)
            st = sp_error(SP_ERR_NOMEM, "fused_elementwise: out of memory");
        for (int64_t t = 0; !st && t < 2 * n_tiles; t++) pl->pieces[t].o = -1;
        if (!st && pl->R == 0) /* empty reductions: the fold's identity */
            for (int64_t o = 0; o < pl->M; o++) {
                fu_acc z;
                fu_acc_init(pl, &z);
                pl->accd[o] = z.d;
                pl->acci[o] = z.i;
            }
    }
    if (!st && n_tiles > 0) {
        sp_parallel_for(n_tiles, 1, fu_worker, pl);
        if (pl->failed) st = sp_error(SP_ERR_NOMEM, "fused_elementwise: out of memory");
    }
    if (!st && pl->red >= 0) {
        /* pieces of outputs that span tiles, in tile order */
        int64_t cur = -1;
        for (int64_t t = 0; t < 2 * n_tiles; t++) {
            const fu_piece *pc = &pl->pieces[t];
            if (pc->o < 0) continue;
            if (pc->o != cur) {
                pl->accd[pc->o] = pc->d;
                pl->acci[pc->o] = pc->i;
                cur = pc->o;
            } else {
                fu_acc x = {pl->accd[cur], pl->acci[cur]};
                fu_acc_combine(pl, &x, &(fu_acc){pc->d, pc->i});
                pl->accd[cur] = x.d;
                pl->acci[cur] = x.i;
            }
        }
        if (pl->red == SP_OP_MEAN)
            for (int64_t o = 0; o < pl->M; o++) pl->accd[o] /= (double)pl->R;
        if (pl->acc_int)
            cpu_ew_convert(pl->out_dt, pl->out, (int64_t)sp_dtype_size(pl->out_dt), SP_I64,
                           pl->acci, 8, pl->M);
        else
            cpu_ew_convert(pl->out_dt, pl->out, (int64_t)sp_dtype_size(pl->out_dt), SP_F64,
                           pl->accd, 8, pl->M);
    }
    free(pl->accd);
    free(pl->acci);
    free(pl->pieces);
    free(pl);
    sp_fused_free(p);
    return st;
}
