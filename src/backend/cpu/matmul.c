/*
 * matmul.c -- the CPU kernel of the matmul primitive: numpy.matmul on top
 * of cpu_sgemm / cpu_dgemm.
 *
 * Semantics (ops.def): transpose_a / transpose_b swap the last two dims of
 * an input of 2 or more dims; a 1-D a is a row (1 x K) and a 1-D b a column
 * (K x 1), and that dim is dropped from the result; the batch dims (all but
 * the last two) broadcast.  The output arrives contiguous with the inferred
 * shape, so every batch is an M x N row-major block of it.
 *
 * Strides: the GEMM reads op(A) through a row and a column stride, so a
 * matrix whose columns or rows are unit-stride is passed as it lies (rows
 * contiguous: lda = row stride; columns contiguous: the transposed layout
 * with lda = column stride), including zero and negative strides from
 * broadcasts and reversed slices.  Only a matrix with no unit stride at all
 * is first made contiguous.  A size-1 dim has no stride that matters, which
 * is what lets a 1-D operand through whatever its stride.
 *
 * Batches: when b is shared by every batch (2-D or broadcast) and a's batch
 * dims lie evenly in memory after its rows, all batches are one GEMM with
 * nbatch * M rows (x @ W of a linear layer on [B, T, D] input).  Otherwise
 * each batch is its own GEMM: in order, each on the whole thread pool, when
 * the products are big; spread over the pool, one GEMM per task (each then
 * single-threaded), when they are small.
 *
 * float16 / bfloat16: a and b are widened to float32 copies, multiplied in
 * float32 (float32 accumulation) and the result rounded once to the output
 * dtype.
 */
#include "backend/cpu/cpu.h"
#include "backend/cpu/gemm.h"

/* Below this many multiply-adds a product is run on one thread, and
 * batches of such products are spread over the pool instead. */
#define MM_SMALL_MACS (1 << 18)

/* A matrix operand as the GEMM sees it. */
typedef struct mm_operand {
    int64_t rows, cols;   /* after the optional transpose */
    int64_t rs, cs;       /* strides of rows and columns, in elements */
    int64_t bstride[SP_MAX_DIMS]; /* per batch dim of the output; 0 = broadcast */
    int trans;            /* GEMM layout: 0 = rows contiguous, 1 = columns */
    int64_t ld;
} mm_operand;

/* Picks the GEMM layout of an operand; returns 0 when neither dim has unit
 * stride (the caller makes a contiguous copy). */
static int mm_layout(mm_operand *o) {
    if (o->cs == 1 || o->cols == 1) {
        o->trans = 0;
        o->ld = o->rs;
        return 1;
    }
    if (o->rs == 1 || o->rows == 1) {
        o->trans = 1;
        o->ld = o->cs;
        return 1;
    }
    return 0;
}

/* Fills o for tensor t (2-D matrix view of its last dims, transposed when
 * `tr`; 1-D as a row when `is_a`, a column otherwise) against the output's
 * nb batch dims. */
static void mm_describe(const sp_tensor *t, int tr, int is_a, int nb, mm_operand *o) {
    if (t->ndim == 1) {
        int64_t len = t->shape[0], st = t->strides[0];
        if (is_a) {
            o->rows = 1, o->cols = len, o->rs = 0, o->cs = st;
        } else {
            o->rows = len, o->cols = 1, o->rs = st, o->cs = 0;
        }
    } else {
        int d = t->ndim;
        o->rows = t->shape[d - 2], o->cols = t->shape[d - 1];
        o->rs = t->strides[d - 2], o->cs = t->strides[d - 1];
        if (tr) {
            int64_t x = o->rows;
            o->rows = o->cols, o->cols = x;
            x = o->rs;
            o->rs = o->cs, o->cs = x;
        }
    }
    int tb = t->ndim > 2 ? t->ndim - 2 : 0; /* the tensor's own batch dims */
    for (int i = 0; i < nb; i++) {
        int di = i - (nb - tb);
        o->bstride[i] = di >= 0 && t->shape[di] != 1 ? t->strides[di] : 0;
    }
}

typedef struct mm_job {
    int dbl;
    int nb;                       /* batch dims */
    int64_t bshape[SP_MAX_DIMS];  /* batch shape */
    mm_operand a, b;
    const char *pa, *pb;          /* element 0 of a, b */
    char *pc;
    size_t es;
    int64_t M, N, K;
} mm_job;

static void mm_one(const mm_job *j, int64_t batch) {
    int64_t oa = 0, ob = 0, rem = batch;
    for (int d = j->nb - 1; d >= 0; d--) {
        int64_t i = rem % j->bshape[d];
        rem /= j->bshape[d];
        oa += i * j->a.bstride[d];
        ob += i * j->b.bstride[d];
    }
    const char *a = j->pa + (ptrdiff_t)oa * (ptrdiff_t)j->es;
    const char *b = j->pb + (ptrdiff_t)ob * (ptrdiff_t)j->es;
    char *c = j->pc + (ptrdiff_t)(batch * j->M * j->N) * (ptrdiff_t)j->es;
    if (j->dbl)
        cpu_dgemm(j->a.trans, j->b.trans, j->M, j->N, j->K, 1.0, (const double *)a, j->a.ld,
                  (const double *)b, j->b.ld, 0.0, (double *)c, j->N);
    else
        cpu_sgemm(j->a.trans, j->b.trans, j->M, j->N, j->K, 1.0f, (const float *)a, j->a.ld,
                  (const float *)b, j->b.ld, 0.0f, (float *)c, j->N);
}

static void mm_batch_range(void *ctx, int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) mm_one(ctx, i);
}

/* Merges a's batch dims into its rows when b is shared by all batches and
 * a's rows continue evenly from one batch to the next; returns 1 and
 * rewrites the job as a single product when it can. */
static int mm_try_fold(mm_job *j) {
    if (j->a.trans != 0) return 0;
    for (int d = 0; d < j->nb; d++)
        if (j->b.bstride[d] != 0) return 0;
    int64_t rs = j->a.rs;
    if (j->M == 1) /* a lone row has no row stride of its own: the batch's is it */
        for (int d = j->nb - 1; d >= 0; d--)
            if (j->bshape[d] != 1) {
                rs = j->a.bstride[d];
                break;
            }
    int64_t want = rs * j->M, nbatch = 1; /* the stride the next batch dim must have */
    for (int d = j->nb - 1; d >= 0; d--) {
        nbatch *= j->bshape[d];
        if (j->bshape[d] == 1) continue;
        if (j->a.bstride[d] != want) return 0;
        want *= j->bshape[d];
    }
    j->M *= nbatch;
    j->a.rs = j->a.ld = rs;
    j->nb = 0;
    return 1;
}

/* Runs the float32 / float64 product c = a @ b (c contiguous). */
static sp_status mm_run(sp_tensor *a, sp_tensor *b, sp_tensor *c, int ta, int tb) {
    sp_tensor *ac = NULL, *bc = NULL;
    sp_status st = SP_OK;
    mm_job j = {.dbl = c->dtype == SP_F64, .es = sp_dtype_size(c->dtype)};
    j.nb = c->ndim - (a->ndim >= 2) - (b->ndim >= 2);
    for (int d = 0; d < j.nb; d++) j.bshape[d] = c->shape[d];
    mm_describe(a, ta, 1, j.nb, &j.a);
    mm_describe(b, tb, 0, j.nb, &j.b);
    if (!mm_layout(&j.a)) {
        if ((st = sp_tensor_contiguous(a, &ac))) goto done;
        mm_describe(ac, ta, 1, j.nb, &j.a);
        mm_layout(&j.a);
        a = ac;
    }
    if (!mm_layout(&j.b)) {
        if ((st = sp_tensor_contiguous(b, &bc))) goto done;
        mm_describe(bc, tb, 0, j.nb, &j.b);
        mm_layout(&j.b);
        b = bc;
    }
    j.M = j.a.rows, j.K = j.a.cols, j.N = j.b.cols;
    if (j.b.rows != j.K) {
        st = sp_error(SP_ERR_SHAPE, "matmul: inner dims %lld and %lld do not match",
                      (long long)j.K, (long long)j.b.rows);
        goto done;
    }
    j.pa = sp_tensor_data(a);
    j.pb = sp_tensor_data(b);
    j.pc = sp_tensor_data(c);

    int64_t nbatch = 1;
    for (int d = 0; d < j.nb; d++) nbatch *= j.bshape[d];
    if (nbatch == 0 || j.M == 0 || j.N == 0) goto done;
    if (nbatch > 1) mm_try_fold(&j);
    nbatch = 1;
    for (int d = 0; d < j.nb; d++) nbatch *= j.bshape[d];

    double macs = (double)j.M * (double)j.N * (double)(j.K > 0 ? j.K : 1);
    if (nbatch > 1 && macs < MM_SMALL_MACS) {
        int64_t grain = (int64_t)(MM_SMALL_MACS / macs);
        sp_parallel_for(nbatch, grain < 1 ? 1 : grain, mm_batch_range, &j);
    } else {
        mm_batch_range(&j, 0, nbatch);
    }
done:
    sp_tensor_release(ac);
    sp_tensor_release(bc);
    return st;
}

sp_status cpu_matmul(const sp_kernel_args *args) {
    sp_tensor *a = args->in[0], *b = args->in[1], *c = args->out[0];
    sp_dtype dt = c->dtype;
    if (a->dtype != dt || b->dtype != dt || !sp_dtype_is_float(dt))
        return sp_error(SP_ERR_DTYPE, "matmul: a is %s, b is %s, out is %s (one float dtype needed)",
                        sp_dtype_name(a->dtype), sp_dtype_name(b->dtype), sp_dtype_name(dt));
    if (a->ndim < 1 || b->ndim < 1)
        return sp_error(SP_ERR_SHAPE, "matmul: inputs need at least 1 dim, got %d and %d",
                        a->ndim, b->ndim);
    int ta = sp_attrs_get_int(args->attrs, "transpose_a", 0) != 0 && a->ndim >= 2;
    int tb = sp_attrs_get_int(args->attrs, "transpose_b", 0) != 0 && b->ndim >= 2;
    if (dt == SP_F32 || dt == SP_F64) return mm_run(a, b, c, ta, tb);

    /* float16 / bfloat16: widen, multiply in float32, round once */
    sp_tensor *a32 = NULL, *b32 = NULL, *c32 = NULL;
    sp_status st;
    if ((st = sp_tensor_cast(a, SP_F32, &a32)) || (st = sp_tensor_cast(b, SP_F32, &b32)))
        goto done;
    c32 = sp_tensor_new(SP_F32, c->ndim, c->shape, SP_CPU);
    if (!c32) {
        st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        goto done;
    }
    if ((st = mm_run(a32, b32, c32, ta, tb))) goto done;
    st = sp_tensor_copy_into(c, c32);
done:
    sp_tensor_release(a32);
    sp_tensor_release(b32);
    sp_tensor_release(c32);
    return st;
}
