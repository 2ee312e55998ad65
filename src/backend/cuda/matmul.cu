/*
 * matmul.cu -- the CUDA kernel of the matmul primitive, through cuBLASLt.
 *
 * Semantics are the CPU's (ops.def, cpu/matmul.c): transpose_a/_b swap the
 * last two dims, a 1-D a is a row and a 1-D b a column (that dim dropped),
 * batch dims broadcast, float16/bfloat16 accumulate in float32 (cuBLASLt's
 * CUBLAS_COMPUTE_32F with 16-bit A, B and C), float64 computes in double.
 * float32 computes in plain float32 unless sp_set_allow_tf32(1) was called,
 * which selects CUBLAS_COMPUTE_32F_FAST_TF32 (torch's allow_tf32).
 *
 * Layout.  cuBLASLt is column-major; a row-major C = A B is the
 * column-major C^T = B^T A^T, so B is cuBLASLt's first operand and A its
 * second, and C (contiguous, M x N row-major) is an N x M column-major
 * matrix with ld N.  An operand whose columns are unit-stride is passed as
 * it lies (no transpose in cuBLASLt's terms), one whose rows are
 * unit-stride with the opposite transpose flag, so transposed views cost
 * nothing.  Batches go to cuBLASLt as a strided batch when the operand's
 * batch dims collapse to one stride (0 for a broadcast operand); anything
 * else (no unit stride, a negative or too small leading dimension, batch
 * dims that do not collapse) is first gathered into a contiguous buffer
 * with broadcasting applied.  When b is shared by every batch and a's
 * batches follow each other evenly, the batches fold into the rows of a
 * single product (x @ W of a linear layer).
 *
 * Plans.  A plan (the matmul and layout descriptors plus the algorithm the
 * heuristic picked) is cached per shape, layout, dtype, alignment and tf32
 * setting, so a training loop asks the heuristic once per distinct product.
 * The workspace (32 MiB, NVIDIA's recommendation for Hopper) is allocated
 * once per process and lives with it.  Pointer alignment is part of the
 * key because the heuristic is told the real alignment of each operand (its
 * default assumes 256 bytes, and an algorithm chosen under that assumption
 * may fault on an offset view).  The cache is guarded by a mutex; the
 * matmul itself runs outside it.
 */
#include <cublasLt.h>
#include <pthread.h>
#include <string.h>

#include "backend/cuda/nn_util.cuh"

#define MM_WORKSPACE (32u << 20)
#define MM_PLANS 128

/* A matrix operand as the product sees it (after the logical transpose). */
typedef struct mm_operand {
    int64_t rows, cols;           /* of op(X) */
    int64_t rs, cs;               /* strides of rows and columns, in elements */
    int64_t bstride[SP_MAX_DIMS]; /* per batch dim of the output; 0 = broadcast */
    const char *p;                /* element 0 */
    /* chosen layout */
    int colmajor;                 /* 1: rows unit-stride (cuBLASLt sees X as stored) */
    int64_t ld, bs;               /* leading dimension; batch stride (0 = shared) */
} mm_operand;

static void mm_describe(const sp_tensor *t, int tr, int is_a, int nb, mm_operand *o) {
    memset(o, 0, sizeof *o);
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
    int tb = t->ndim > 2 ? t->ndim - 2 : 0;
    for (int i = 0; i < nb; i++) {
        int di = i - (nb - tb);
        o->bstride[i] = di >= 0 && t->shape[di] != 1 ? t->strides[di] : 0;
    }
    o->p = (const char *)t->buf->data + t->offset * (int64_t)sp_dtype_size(t->dtype);
}

/* Picks a layout cuBLASLt takes directly; 0 when there is none. */
static int mm_layout(mm_operand *o, int nb, const int64_t *bshape) {
    if ((o->cs == 1 || o->cols == 1) && (o->rows == 1 || o->rs >= o->cols)) {
        o->colmajor = 0; /* rows contiguous: column-major cols x rows, ld = rs */
        o->ld = o->rows == 1 ? o->cols : o->rs;
    } else if ((o->rs == 1 || o->rows == 1) && (o->cols == 1 || o->cs >= o->rows)) {
        o->colmajor = 1; /* columns contiguous: column-major rows x cols, ld = cs */
        o->ld = o->cols == 1 ? o->rows : o->cs;
    } else {
        return 0;
    }
    if (o->ld < 1) o->ld = 1;
    /* batch dims must collapse to one stride: offset(b) = b * bs */
    int64_t bs = -1, want = 0;
    for (int d = nb - 1; d >= 0; d--) {
        if (bshape[d] == 1) continue;
        if (bs < 0) {
            bs = o->bstride[d];
            if (bs < 0) return 0;
            want = bs * bshape[d];
            continue;
        }
        if (o->bstride[d] != want) return 0;
        want *= bshape[d];
    }
    o->bs = bs < 0 ? 0 : bs;
    return 1;
}

/* Gathers the operand into a contiguous [nbatch or 1, rows, cols] buffer
 * (broadcast batches stay shared) and points o at it. */
static sp_status mm_pack(mm_operand *o, int nb, const int64_t *bshape, sp_tensor *like,
                         int expand, sp_tensor **hold) {
    int shared = !expand;
    for (int d = 0; d < nb; d++)
        if (o->bstride[d] != 0 && bshape[d] != 1) shared = 0;
    int64_t shape[SP_MAX_DIMS + 2], strides[SP_MAX_DIMS + 2], n = 1;
    int k = 0;
    if (!shared)
        for (int d = 0; d < nb; d++) {
            shape[k] = bshape[d];
            strides[k++] = o->bstride[d];
            n *= bshape[d];
        }
    shape[k] = o->rows;
    strides[k++] = o->rs;
    shape[k] = o->cols;
    strides[k++] = o->cs;
    int64_t tot = n * o->rows * o->cols;
    *hold = sp_tensor_new(like->dtype, 1, &tot, like->buf->device);
    if (!*hold) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    sp_status st = cuda_nn_gather((*hold)->buf->data, o->p, sp_dtype_size(like->dtype), k, shape,
                                  strides);
    if (st) return st;
    o->p = (const char *)(*hold)->buf->data;
    o->rs = o->cols, o->cs = 1;
    for (int d = 0; d < nb; d++) o->bstride[d] = 0;
    o->colmajor = 0;
    o->ld = o->cols > 0 ? o->cols : 1;
    o->bs = shared ? 0 : o->rows * o->cols;
    return SP_OK;
}

/* ---- cuBLASLt state: handle, workspace, plan cache ---- */

typedef struct mm_key {
    int dtype, tf32, ta, tb;
    int64_t m, n, k, lda, ldb, bsa, bsb, nbatch;
    int ala, alb, alc;
} mm_key;

typedef struct mm_plan {
    mm_key key;
    int used;
    uint64_t stamp;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} mm_plan;

static pthread_mutex_t mm_mu = PTHREAD_MUTEX_INITIALIZER;
static cublasLtHandle_t mm_handle;
static void *mm_ws;
static size_t mm_ws_size;
static mm_plan mm_plans[MM_PLANS];
static uint64_t mm_clock;

static sp_status mm_lt_check(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return SP_OK;
    return sp_error(SP_ERR_DEVICE, "matmul: cuBLASLt %s failed (%s, status %d)", what,
                    cublasLtGetStatusName(s), (int)s);
}

/* Creates the handle and workspace once; call with mm_mu held. */
static sp_status mm_init_locked(void) {
    if (mm_handle) return SP_OK;
    sp_status st = mm_lt_check(cublasLtCreate(&mm_handle), "handle creation");
    if (st) {
        mm_handle = NULL;
        return st;
    }
    if (cudaMalloc(&mm_ws, MM_WORKSPACE) == cudaSuccess) {
        mm_ws_size = MM_WORKSPACE;
    } else { /* run without a workspace rather than fail */
        cudaGetLastError();
        mm_ws = NULL;
        mm_ws_size = 0;
    }
    return SP_OK;
}

static void mm_plan_free(mm_plan *p) {
    if (!p->used) return;
    cublasLtMatrixLayoutDestroy(p->la);
    cublasLtMatrixLayoutDestroy(p->lb);
    cublasLtMatrixLayoutDestroy(p->lc);
    cublasLtMatmulDescDestroy(p->desc);
    p->used = 0;
}

static int mm_align(const void *p, int64_t ld, int64_t bs, size_t es) {
    uint64_t v = (uint64_t)(uintptr_t)p | (uint64_t)(ld * (int64_t)es) | (uint64_t)(bs * (int64_t)es);
    int a = 256;
    while (a > 1 && (v & (uint64_t)(a - 1))) a >>= 1;
    return a;
}

static sp_status mm_layout_new(cublasLtMatrixLayout_t *l, cudaDataType_t t, uint64_t rows,
                               uint64_t cols, int64_t ld, int64_t nbatch, int64_t bs) {
    sp_status st = mm_lt_check(cublasLtMatrixLayoutCreate(l, t, rows, cols, ld), "layout");
    if (st) return st;
    if (nbatch > 1) {
        int32_t cnt = (int32_t)nbatch;
        if ((st = mm_lt_check(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT,
                                                               &cnt, sizeof cnt),
                              "batch count")) ||
            (st = mm_lt_check(cublasLtMatrixLayoutSetAttribute(
                                  *l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &bs, sizeof bs),
                              "batch stride")))
            return st;
    }
    return SP_OK;
}

/* Builds plan p for key k (descriptors + heuristic choice). */
static sp_status mm_plan_build(mm_plan *p, const mm_key *k) {
    cudaDataType_t dt = k->dtype == SP_F64 ? CUDA_R_64F
                        : k->dtype == SP_F16 ? CUDA_R_16F
                        : k->dtype == SP_BF16 ? CUDA_R_16BF
                                              : CUDA_R_32F;
    cublasComputeType_t ct = k->dtype == SP_F64 ? CUBLAS_COMPUTE_64F
                             : (k->dtype == SP_F32 && k->tf32) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                               : CUBLAS_COMPUTE_32F;
    cudaDataType_t sc = k->dtype == SP_F64 ? CUDA_R_64F : CUDA_R_32F;
    memset(p, 0, sizeof *p);
    sp_status st = mm_lt_check(cublasLtMatmulDescCreate(&p->desc, ct, sc), "descriptor");
    if (st) return st;
    cublasOperation_t opa = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opb = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtMatmulPreference_t pref = NULL;
    /* cuBLASLt's A is our b (N x K after op), its B our a (K x M after op) */
    uint64_t ar = k->ta ? k->k : k->n, ac = k->ta ? k->n : k->k;
    uint64_t br = k->tb ? k->m : k->k, bc = k->tb ? k->k : k->m;
    if ((st = mm_lt_check(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa,
                                                         sizeof opa),
                          "transpose")) ||
        (st = mm_lt_check(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb,
                                                         sizeof opb),
                          "transpose")))
        goto fail_desc;
    if ((st = mm_layout_new(&p->la, dt, ar, ac, k->lda, k->nbatch, k->bsa))) goto fail_desc;
    if ((st = mm_layout_new(&p->lb, dt, br, bc, k->ldb, k->nbatch, k->bsb))) goto fail_la;
    if ((st = mm_layout_new(&p->lc, dt, k->n, k->m, k->n, k->nbatch, k->n * k->m))) goto fail_lb;
    if ((st = mm_lt_check(cublasLtMatmulPreferenceCreate(&pref), "preference"))) goto fail_lc;
    {
        uint64_t ws = mm_ws_size;
        uint32_t a1 = (uint32_t)k->ala, a2 = (uint32_t)k->alb, a3 = (uint32_t)k->alc;
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                             sizeof ws);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a1,
                                             sizeof a1);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a2,
                                             sizeof a2);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &a3,
                                             sizeof a3);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &a3,
                                             sizeof a3);
        cublasLtMatmulHeuristicResult_t res;
        int n = 0;
        memset(&res, 0, sizeof res);
        cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(mm_handle, p->desc, p->la, p->lb, p->lc,
                                                          p->lc, pref, 1, &res, &n);
        cublasLtMatmulPreferenceDestroy(pref);
        if (s != CUBLAS_STATUS_SUCCESS || n < 1) {
            st = sp_error(SP_ERR_UNSUPPORTED,
                          "matmul: cuBLASLt has no algorithm for %s [%lld x %lld] @ [%lld x %lld] "
                          "(batch %lld; status %s)",
                          sp_dtype_name((sp_dtype)k->dtype), (long long)k->m, (long long)k->k,
                          (long long)k->k, (long long)k->n, (long long)k->nbatch,
                          cublasLtGetStatusName(s));
            goto fail_lc;
        }
        p->algo = res.algo;
    }
    p->key = *k;
    p->used = 1;
    return SP_OK;
fail_lc:
    cublasLtMatrixLayoutDestroy(p->lc);
fail_lb:
    cublasLtMatrixLayoutDestroy(p->lb);
fail_la:
    cublasLtMatrixLayoutDestroy(p->la);
fail_desc:
    cublasLtMatmulDescDestroy(p->desc);
    memset(p, 0, sizeof *p);
    return st;
}

/* The cached plan for k (built on a miss, evicting the least recently
 * used); call with mm_mu held.  *out points into the cache. */
static sp_status mm_plan_get_locked(const mm_key *k, mm_plan **out) {
    mm_plan *victim = &mm_plans[0];
    for (int i = 0; i < MM_PLANS; i++) {
        mm_plan *p = &mm_plans[i];
        if (p->used && memcmp(&p->key, k, sizeof *k) == 0) {
            p->stamp = ++mm_clock;
            *out = p;
            return SP_OK;
        }
        if (!p->used) {
            if (victim->used) victim = p;
        } else if (victim->used && p->stamp < victim->stamp) {
            victim = p;
        }
    }
    mm_plan_free(victim);
    sp_status st = mm_plan_build(victim, k);
    if (st) return st;
    victim->stamp = ++mm_clock;
    *out = victim;
    return SP_OK;
}

/* c = a @ b with operands already laid out for cuBLASLt. */
static sp_status mm_call(const mm_operand *A, const mm_operand *B, sp_tensor *c, int64_t M,
                         int64_t N, int64_t K, int64_t nbatch) {
    sp_dtype dt = c->dtype;
    size_t es = sp_dtype_size(dt);
    mm_key k;
    memset(&k, 0, sizeof k);
    k.dtype = dt;
    k.tf32 = dt == SP_F32 && sp_get_allow_tf32();
    k.ta = B->colmajor; /* cuBLASLt's A (our b) is transposed when its columns are contiguous */
    k.tb = A->colmajor;
    k.m = M, k.n = N, k.k = K;
    k.lda = B->ld, k.ldb = A->ld;
    k.nbatch = nbatch;
    k.bsa = nbatch > 1 ? B->bs : 0;
    k.bsb = nbatch > 1 ? A->bs : 0;
    k.ala = mm_align(B->p, B->ld, k.bsa, es);
    k.alb = mm_align(A->p, A->ld, k.bsb, es);
    k.alc = mm_align(c->buf->data, N, nbatch > 1 ? M * N : 0, es);
    float one_f = 1.0f, zero_f = 0.0f;
    double one_d = 1.0, zero_d = 0.0;
    const void *alpha = dt == SP_F64 ? (const void *)&one_d : (const void *)&one_f;
    const void *beta = dt == SP_F64 ? (const void *)&zero_d : (const void *)&zero_f;
    pthread_mutex_lock(&mm_mu);
    mm_plan *p = NULL;
    sp_status st = mm_init_locked();
    if (!st) st = mm_plan_get_locked(&k, &p);
    if (st) {
        pthread_mutex_unlock(&mm_mu);
        return st;
    }
    /* another thread may evict the slot once the lock is released, so the
     * call runs under the lock (it only enqueues work) */
    cublasStatus_t s = cublasLtMatmul(mm_handle, p->desc, alpha, B->p, p->la, A->p, p->lb, beta,
                                      c->buf->data, p->lc, c->buf->data, p->lc, &p->algo, mm_ws,
                                      mm_ws_size, cuda_stream());
    pthread_mutex_unlock(&mm_mu);
    if (s != CUBLAS_STATUS_SUCCESS)
        return sp_error(SP_ERR_DEVICE,
                        "matmul: cuBLASLt failed on %s [%lld x %lld] @ [%lld x %lld] (batch %lld): %s",
                        sp_dtype_name(dt), (long long)M, (long long)K, (long long)K, (long long)N,
                        (long long)nbatch, cublasLtGetStatusName(s));
    return SP_OK;
}

/* ---- the kernel ---- */

sp_status cuda_matmul(const sp_kernel_args *args) {
    sp_tensor *a = args->in[0], *b = args->in[1], *c = args->out[0];
    sp_tensor *ha = NULL, *hb = NULL, *ha2 = NULL, *hb2 = NULL;
    sp_dtype dt = c->dtype;
    if (a->dtype != dt || b->dtype != dt || !sp_dtype_is_float(dt))
        return sp_error(SP_ERR_DTYPE, "matmul: a is %s, b is %s, out is %s (one float dtype needed)",
                        sp_dtype_name(a->dtype), sp_dtype_name(b->dtype), sp_dtype_name(dt));
    if (a->ndim < 1 || b->ndim < 1)
        return sp_error(SP_ERR_SHAPE, "matmul: inputs need at least 1 dim, got %d and %d", a->ndim,
                        b->ndim);
    int ta = sp_attrs_get_int(args->attrs, "transpose_a", 0) != 0 && a->ndim >= 2;
    int tb = sp_attrs_get_int(args->attrs, "transpose_b", 0) != 0 && b->ndim >= 2;
    int nb = c->ndim - (a->ndim >= 2) - (b->ndim >= 2);
    if (nb < 0) nb = 0;
    int64_t bshape[SP_MAX_DIMS];
    int64_t nbatch = 1;
    for (int d = 0; d < nb; d++) {
        bshape[d] = c->shape[d];
        nbatch *= bshape[d];
    }
    mm_operand A, B;
    mm_describe(a, ta, 1, nb, &A);
    mm_describe(b, tb, 0, nb, &B);
    int64_t M = A.rows, K = A.cols, N = B.cols;
    if (B.rows != K)
        return sp_error(SP_ERR_SHAPE, "matmul: inner dims %lld and %lld do not match", (long long)K,
                        (long long)B.rows);
    if (nbatch == 0 || M == 0 || N == 0) return SP_OK;
    cudaStream_t stream = cuda_stream();
    if (K == 0)
        return cuda_check(cudaMemsetAsync(c->buf->data, 0, sp_tensor_nbytes(c), stream),
                          "matmul (empty inner dim)");
    if (nbatch > INT32_MAX)
        return sp_error(SP_ERR_UNSUPPORTED, "matmul: %lld batches (at most %d)", (long long)nbatch,
                        INT32_MAX);
    sp_status st = SP_OK;
    if (!mm_layout(&A, nb, bshape) && (st = mm_pack(&A, nb, bshape, a, 0, &ha))) goto done;
    if (!mm_layout(&B, nb, bshape) && (st = mm_pack(&B, nb, bshape, b, 0, &hb))) goto done;
    /* fold a's batches into its rows when b is shared and a's rows run on */
    if (nbatch > 1 && B.bs == 0 && !A.colmajor && A.bs == M * A.ld) {
        M *= nbatch;
        nbatch = 1;
        A.bs = 0;
    }
    st = mm_call(&A, &B, c, M, N, K, nbatch);
    if (st == SP_ERR_UNSUPPORTED && nbatch > 1 && (A.bs == 0 || B.bs == 0)) {
        sp_clear_error();
        if (A.bs == 0 && (st = mm_pack(&A, nb, bshape, a, 1, &ha2))) goto done;
        if (B.bs == 0 && (st = mm_pack(&B, nb, bshape, b, 1, &hb2))) goto done;
        st = mm_call(&A, &B, c, M, N, K, nbatch);
    }
done:
    sp_tensor_release(ha);
    sp_tensor_release(hb);
    sp_tensor_release(ha2);
    sp_tensor_release(hb2);
    return st;
}
