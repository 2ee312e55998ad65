/*
 * gemm.c -- the GEMM driver: blocking, packing, threading and scratch for
 * cpu_sgemm and cpu_dgemm (contract in gemm.h).
 *
 * The structure is Goto's / BLIS's.  C = alpha op(A) op(B) + beta C is cut
 * into blocks that fit the cache levels of the kernel set in use
 * (gemm_kernels.h):
 *
 *   for jc over N by nc:             B block kc x nc, in L3
 *     for pc over K by kc:           one pass of k; beta applies on the first
 *       one task per thread (its rows of C, or a slice of the columns):
 *         for ic over its rows by mc:
 *           pack those rows of A into mr-tall panels  (mc x kc, in L2)
 *           for jr over its columns by nr:            (the B panel stays in L1)
 *             pack B panel jr unless done already     (each panel once a pass)
 *             for ir over the rows by mr:
 *               microkernel: mr x nr tile of C += A panel x B panel
 *
 * Packing makes every layout look the same to the kernel: op(A) and op(B)
 * are read through a row and a column stride, so transposes, any lda (even
 * 0 or negative, as views of a tensor produce) and the zero padding of edge
 * panels all happen while packing.  Edge tiles go through a small scratch
 * tile and are added into C element by element.
 *
 * Threads: each pass is one sp_parallel_for with one task per thread.  The
 * rows of C are split evenly (in whole mr panels), so a thread packs only
 * the rows of A it multiplies and each core's L2 holds its own block; when
 * C has too few rows to go round, the columns are split instead (each task
 * then packs the same few rows of A, which is cheap).  The packed B block
 * is shared and packed lazily: a task that needs panel q claims it with a
 * compare-and-swap and packs it, or waits for the task that claimed it
 * (which is running: a panel is claimed only by a thread about to pack
 * it, so the wait cannot deadlock even when the pool runs the tasks one
 * after another).  Tasks start at different panels, so at first each packs
 * its own share and nobody waits; there is no barrier between packing B
 * and using it.  Every element of C is computed by one thread with the
 * same k order whatever the thread count, so results are bitwise identical
 * for any number of threads.  Called from inside a parallel loop,
 * sp_parallel_for runs inline: the GEMM is then single-threaded on the
 * calling thread, as the contract wants.
 *
 * Scratch: packed blocks come from a small cache of 64-byte aligned blocks
 * shared by all threads under a mutex (a block is taken for one pass and
 * given back), so repeated calls do not page-fault fresh memory, concurrent
 * callers never share a block, and a destructor frees the cache at exit so
 * leak checkers see nothing.  The cache uses the C allocator, not
 * sp_cpu_alloc, so it does not show in sp_cpu_live_bytes.  If the B block
 * cannot be had the call falls back to an unpacked loop; if a task's A
 * block cannot be had, that task computes its part unpacked.
 */
#include "backend/cpu/gemm.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm_kernels.h"
#include "core/internal.h"

/* Below this many flops per thread, adding a thread costs more than it
 * saves (waking the pool is a few microseconds). */
#define GEMM_MIN_FLOPS_PER_THREAD (1 << 20)

/* ---- kernel selection ---------------------------------------------------- */

static const cpu_gemm_kernel *gemm_pick(int dbl) {
#ifdef CPU_GEMM_X86
    if (sp_cpu_has_avx512f()) return dbl ? &cpu_dgemm_avx512 : &cpu_sgemm_avx512;
    if (sp_cpu_has_avx2_fma()) return dbl ? &cpu_dgemm_avx2 : &cpu_sgemm_avx2;
#endif
    return dbl ? &cpu_dgemm_generic : &cpu_sgemm_generic;
}

const char *cpu_sgemm_kernel_name(void) { return gemm_pick(0)->name; }

/* ---- scratch cache ------------------------------------------------------- */

typedef struct gemm_block {
    struct gemm_block *next;
    size_t cap;
    void *mem; /* 64-byte aligned, cap bytes */
} gemm_block;

static pthread_mutex_t scratch_lock = PTHREAD_MUTEX_INITIALIZER;
static gemm_block *scratch_free; /* blocks not in use */

/* A block of at least nbytes, or NULL when memory is short.  Takes the
 * smallest cached block that fits; otherwise grows the largest cached one
 * (so the cache does not fill with blocks too small to use) or makes one. */
static gemm_block *gemm_scratch_get(size_t nbytes) {
    pthread_mutex_lock(&scratch_lock);
    gemm_block **best = NULL, **largest = NULL;
    for (gemm_block **pp = &scratch_free; *pp; pp = &(*pp)->next) {
        if ((*pp)->cap >= nbytes && (!best || (*pp)->cap < (*best)->cap)) best = pp;
        if (!largest || (*pp)->cap > (*largest)->cap) largest = pp;
    }
    gemm_block **take = best ? best : largest;
    gemm_block *b = NULL;
    if (take) {
        b = *take;
        *take = b->next;
    }
    pthread_mutex_unlock(&scratch_lock);
    if (b && b->cap >= nbytes) return b;
    if (!b) {
        b = malloc(sizeof *b);
        if (!b) return NULL;
        b->mem = NULL;
        b->cap = 0;
    }
    free(b->mem);
    b->mem = NULL;
    b->cap = 0;
    size_t cap = (nbytes + 4095) & ~(size_t)4095;
    if (posix_memalign(&b->mem, 64, cap) != 0) {
        b->mem = NULL;
        free(b);
        return NULL;
    }
    b->cap = cap;
    return b;
}

static void gemm_scratch_put(gemm_block *b) {
    if (!b) return;
    pthread_mutex_lock(&scratch_lock);
    b->next = scratch_free;
    scratch_free = b;
    pthread_mutex_unlock(&scratch_lock);
}

__attribute__((destructor)) static void gemm_scratch_release_all(void) {
    pthread_mutex_lock(&scratch_lock);
    gemm_block *b = scratch_free;
    scratch_free = NULL;
    pthread_mutex_unlock(&scratch_lock);
    while (b) {
        gemm_block *next = b->next;
        free(b->mem);
        free(b);
        b = next;
    }
}

/* ---- typed helpers: packing, edge tiles, scaling, the unpacked loop ------
 * op(A)(i, p) is A[i*ars + p*acs] and op(B)(p, j) is B[p*brs + j*bcs]. */

/* kc groups of W consecutive elements, group p from src + p*acs. */
#define GEMM_COPY_ROWS(T, W)                                                                   \
    for (int64_t p = 0; p < kc; p++) memcpy(dst + p * (W), src + p * acs, sizeof(T) * (size_t)(W))

#define GEMM_TYPED(T, SFX)                                                                     \
    /* Rows [0, m) x k range [0, kc) of op(A) from `a` into mr-tall panels;  \
     * `fast` (may be NULL) packs a full panel of contiguous rows. */                          \
    static void gemm_pack_a_##SFX(const T *a, int64_t ars, int64_t acs, int64_t m, int64_t kc,  \
                                  int mr, cpu_gemm_pack_fn fast, T *dst) {                      \
        for (int64_t i = 0; i < m; i += mr, dst += (int64_t)mr * kc) {                         \
            int64_t h = m - i < mr ? m - i : mr;                                               \
            const T *src = a + i * ars;                                                        \
            if (h < mr) memset(dst, 0, sizeof(T) * (size_t)(mr * kc));                         \
            if (acs == 1 && h == mr && fast) {                                                 \
                fast(src, ars, kc, dst);                                                       \
            } else if (acs == 1) {                                                             \
                for (int64_t r = 0; r < h; r++) {                                              \
                    const T *s = src + r * ars;                                                \
                    for (int64_t p = 0; p < kc; p++) dst[p * mr + r] = s[p];                   \
                }                                                                              \
            } else if (ars == 1 && h == mr) { /* constant sizes let memcpy inline */        \
                switch (mr) {                                                                  \
                case 4: GEMM_COPY_ROWS(T, 4); break;                                           \
                case 6: GEMM_COPY_ROWS(T, 6); break;                                           \
                case 12: GEMM_COPY_ROWS(T, 12); break;                                         \
                default: GEMM_COPY_ROWS(T, mr); break;                                         \
                }                                                                              \
            } else {                                                                           \
                for (int64_t p = 0; p < kc; p++)                                               \
                    for (int64_t r = 0; r < h; r++) dst[p * mr + r] = src[r * ars + p * acs];  \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* Panels [p0, p1) (nr columns each, of n in all) x kc of op(B) from `b`. */               \
    static void gemm_pack_b_##SFX(const T *b, int64_t brs, int64_t bcs, int64_t n, int64_t kc,  \
                                  int nr, cpu_gemm_pack_fn fast, int64_t p0, int64_t p1,        \
                                  T *dst) {                                                     \
        for (int64_t q = p0; q < p1; q++) {                                                    \
            int64_t j = q * nr, w = n - j < nr ? n - j : nr;                                   \
            const T *src = b + j * bcs;                                                        \
            T *d = dst + q * nr * kc;                                                          \
            if (w < nr) memset(d, 0, sizeof(T) * (size_t)(nr * kc));                           \
            if (bcs == 1 && w == nr) {                                                         \
                for (int64_t p = 0; p < kc; p++) memcpy(d + p * nr, src + p * brs,             \
                                                        sizeof(T) * (size_t)nr);               \
            } else if (brs == 1 && w == nr && fast) {                                          \
                fast(src, bcs, kc, d);                                                         \
            } else if (brs == 1) {                                                             \
                for (int64_t c = 0; c < w; c++) {                                              \
                    const T *s = src + c * bcs;                                                \
                    for (int64_t p = 0; p < kc; p++) d[p * nr + c] = s[p];                     \
                }                                                                              \
            } else {                                                                           \
                for (int64_t p = 0; p < kc; p++)                                               \
                    for (int64_t c = 0; c < w; c++) d[p * nr + c] = src[p * brs + c * bcs];    \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    /* C[h x w] = tile + beta * C (C unread when beta == 0). */                               \
    static void gemm_edge_##SFX(const T *tile, int nr, T *c, int64_t ldc, int64_t h,           \
                                int64_t w, double beta) {                                      \
        for (int64_t i = 0; i < h; i++)                                                        \
            for (int64_t j = 0; j < w; j++)                                                    \
                c[i * ldc + j] = beta == 0 ? tile[i * nr + j]                                  \
                                           : tile[i * nr + j] + (T)beta * c[i * ldc + j];      \
    }                                                                                          \
    /* C = beta * C over m x n (zeros when beta == 0: C unread). */                            \
    static void gemm_scale_##SFX(T *c, int64_t ldc, int64_t m, int64_t n, double beta) {        \
        for (int64_t i = 0; i < m; i++)                                                        \
            for (int64_t j = 0; j < n; j++)                                                    \
                c[i * ldc + j] = beta == 0 ? (T)0 : (T)beta * c[i * ldc + j];                  \
    }                                                                                          \
    /* The unpacked loop: C[m x n] = alpha op(A)[m x k] op(B)[k x n] + beta C. */              \
    static void gemm_naive_##SFX(const T *a, int64_t ars, int64_t acs, const T *b, int64_t brs, \
                                 int64_t bcs, T *c, int64_t ldc, int64_t m, int64_t n,          \
                                 int64_t k, double alpha, double beta) {                       \
        for (int64_t i = 0; i < m; i++)                                                        \
            for (int64_t j = 0; j < n; j++) {                                                  \
                T s = 0;                                                                       \
                for (int64_t p = 0; p < k; p++) s += a[i * ars + p * acs] * b[p * brs + j * bcs]; \
                c[i * ldc + j] = beta == 0 ? (T)alpha * s                                      \
                                           : (T)alpha * s + (T)beta * c[i * ldc + j];          \
            }                                                                                  \
    }

GEMM_TYPED(float, f32)
GEMM_TYPED(double, f64)

/* ---- the driver ---------------------------------------------------------- */

typedef struct gemm_job {
    const cpu_gemm_kernel *kr;
    int dbl; /* element type: 0 float, 1 double */
    int64_t M, N, K;
    const char *A, *B; /* op(A)(i,p) at A + (i*ars + p*acs)*esize, op(B)(p,j) likewise */
    int64_t ars, acs, brs, bcs;
    char *C;
    int64_t ldc;
    double alpha, beta;
    int nthreads;
    /* the current pass */
    int64_t jc, nc, pc, kc;
    double beta_pass;
    void *bpack;
    atomic_int *bstate; /* per B panel of the pass: PANEL_FREE, _BUSY or _READY */
    /* task grid: nb_m row blocks of mb rows x nb_n column slices of nw columns */
    int64_t mb, nb_m, nw, nb_n;
} gemm_job;

/* Address of element `idx` (which may be negative) of an array of es-byte
 * elements: signed arithmetic, so negative strides never wrap. */
#define GEMM_AT(base, idx, es) ((base) + (ptrdiff_t)(idx) * (ptrdiff_t)(es))

static int64_t gemm_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

enum { PANEL_FREE, PANEL_BUSY, PANEL_READY };

/* Makes panel q of the pass's packed B ready: packs it if no thread has
 * claimed it, else waits for the thread that did.  The wait cannot hang: a
 * panel is BUSY only while the thread that claimed it is packing it. */
static void gemm_need_panel(const gemm_job *g, int64_t q) {
    atomic_int *st = &g->bstate[q];
    if (atomic_load_explicit(st, memory_order_acquire) == PANEL_READY) return;
    int expect = PANEL_FREE;
    if (atomic_compare_exchange_strong_explicit(st, &expect, PANEL_BUSY, memory_order_acquire,
                                                memory_order_acquire)) {
        size_t es = g->kr->esize;
        const char *src = GEMM_AT(g->B, g->pc * g->brs + g->jc * g->bcs, es);
        if (g->dbl)
            gemm_pack_b_f64((const double *)src, g->brs, g->bcs, g->nc, g->kc, g->kr->nr,
                            g->kr->pack_b, q, q + 1, g->bpack);
        else
            gemm_pack_b_f32((const float *)src, g->brs, g->bcs, g->nc, g->kc, g->kr->nr,
                            g->kr->pack_b, q, q + 1, g->bpack);
        atomic_store_explicit(st, PANEL_READY, memory_order_release);
        return;
    }
    while (atomic_load_explicit(st, memory_order_acquire) != PANEL_READY) {
#ifdef CPU_GEMM_X86
        __builtin_ia32_pause();
#endif
    }
}

/* Rows [i0, i0+m) x pass columns [j0, j0+n) (relative to jc) of this pass,
 * without packing: the fallback when a task gets no scratch. */
static void gemm_task_naive(const gemm_job *g, int64_t i0, int64_t m, int64_t j0, int64_t n) {
    size_t es = g->kr->esize;
    const char *a = GEMM_AT(g->A, i0 * g->ars + g->pc * g->acs, es);
    const char *b = GEMM_AT(g->B, g->pc * g->brs + (g->jc + j0) * g->bcs, es);
    char *c = GEMM_AT(g->C, i0 * g->ldc + g->jc + j0, es);
    if (g->dbl)
        gemm_naive_f64((const double *)a, g->ars, g->acs, (const double *)b, g->brs, g->bcs,
                       (double *)c, g->ldc, m, n, g->kc, g->alpha, g->beta_pass);
    else
        gemm_naive_f32((const float *)a, g->ars, g->acs, (const float *)b, g->brs, g->bcs,
                       (float *)c, g->ldc, m, n, g->kc, g->alpha, g->beta_pass);
}

/* One task: a block of rows times a slice of the pass's columns. */
static void gemm_task(const gemm_job *g, int64_t t) {
    const cpu_gemm_kernel *kr = g->kr;
    const int mr = kr->mr, nr = kr->nr;
    const size_t es = kr->esize;
    int64_t bm = t / g->nb_n, bn = t % g->nb_n;
    int64_t i_lo = bm * g->mb, i_hi = i_lo + g->mb < g->M ? i_lo + g->mb : g->M;
    int64_t j_lo = bn * g->nw, j_hi = j_lo + g->nw < g->nc ? j_lo + g->nw : g->nc;
    if (i_lo >= i_hi || j_lo >= j_hi) return;

    /* the task's rows in balanced blocks of at most kr->mc */
    int64_t mc = gemm_ceil_div(gemm_ceil_div(i_hi - i_lo, mr),
                               gemm_ceil_div(i_hi - i_lo, kr->mc)) * mr;
    size_t need = (size_t)((mc < i_hi - i_lo ? mc : i_hi - i_lo) + mr) * (size_t)g->kc * es;
    gemm_block *blk = gemm_scratch_get(need);
    if (!blk) {
        gemm_task_naive(g, i_lo, i_hi - i_lo, j_lo, j_hi - j_lo);
        return;
    }
    _Alignas(64) char tile[12 * 32 * sizeof(double)]; /* the largest mr x nr of any set */

    for (int64_t ic = i_lo; ic < i_hi; ic += mc) {
        int64_t m = i_hi - ic < mc ? i_hi - ic : mc;
        const char *asrc = GEMM_AT(g->A, ic * g->ars + g->pc * g->acs, es);
        if (g->dbl)
            gemm_pack_a_f64((const double *)asrc, g->ars, g->acs, m, g->kc, mr, kr->pack_a,
                            blk->mem);
        else
            gemm_pack_a_f32((const float *)asrc, g->ars, g->acs, m, g->kc, mr, kr->pack_a,
                            blk->mem);

        /* Tasks sharing the columns start at different panels, so that at
         * first each packs its own share of B instead of waiting. */
        int64_t q_lo = j_lo / nr, nq = gemm_ceil_div(j_hi - j_lo, nr);
        int64_t q0 = g->nb_m > 1 ? nq * bm / g->nb_m : 0;
        for (int64_t qq = 0; qq < nq; qq++) {
            int64_t q = q_lo + (q0 + qq) % nq, j = q * nr;
            int64_t w = j_hi - j < nr ? j_hi - j : nr;
            gemm_need_panel(g, q);
            const char *bp = GEMM_AT((const char *)g->bpack, j * g->kc, es);
            for (int64_t i = 0; i < m; i += mr) {
                int64_t h = m - i < mr ? m - i : mr;
                const char *ap = GEMM_AT((const char *)blk->mem, i * g->kc, es);
                char *c = GEMM_AT(g->C, (ic + i) * g->ldc + g->jc + j, es);
                if (h == mr && w == nr) {
                    kr->micro(g->kc, ap, bp, c, g->ldc, g->alpha, g->beta_pass);
                } else {
                    kr->micro(g->kc, ap, bp, tile, nr, g->alpha, 0.0);
                    if (g->dbl)
                        gemm_edge_f64((const double *)tile, nr, (double *)c, g->ldc, h, w,
                                      g->beta_pass);
                    else
                        gemm_edge_f32((const float *)tile, nr, (float *)c, g->ldc, h, w,
                                      g->beta_pass);
                }
            }
        }
    }
    gemm_scratch_put(blk);
}

static void gemm_task_range(void *ctx, int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; t++) gemm_task(ctx, t);
}

/* Runs fn over [0, n) on `nthreads` threads (inline when 1), in chunks of
 * about n / nthreads. */
static void gemm_parallel(int nthreads, int64_t n, sp_range_fn fn, void *ctx) {
    if (nthreads <= 1 || n <= 1)
        fn(ctx, 0, n);
    else
        sp_parallel_for(n, 1, fn, ctx);
}

/* Lays out the task grid of a pass over nc columns (see the essay): one
 * task per thread, rows split evenly in whole panels, or columns when
 * there are too few rows to go round. */
static void gemm_plan_tasks(gemm_job *g) {
    const cpu_gemm_kernel *kr = g->kr;
    int nt = g->nthreads;
    int64_t panels_m = gemm_ceil_div(g->M, kr->mr);
    int64_t panels_n = gemm_ceil_div(g->nc, kr->nr);
    int64_t nb_m = 1, nb_n = 1;
    if (nt > 1 && (panels_m >= 4 * nt || panels_m % nt == 0 || panels_n < nt))
        nb_m = nt < panels_m ? nt : panels_m;
    else if (nt > 1)
        nb_n = nt < panels_n ? nt : panels_n;
    g->mb = gemm_ceil_div(panels_m, nb_m) * kr->mr;
    g->nb_m = gemm_ceil_div(g->M, g->mb);
    g->nw = gemm_ceil_div(panels_n, nb_n) * kr->nr;
    g->nb_n = gemm_ceil_div(g->nc, g->nw);
}

static void gemm_run(const cpu_gemm_kernel *kr, int dbl, int trans_a, int trans_b, int64_t M,
                     int64_t N, int64_t K, double alpha, const void *A, int64_t lda,
                     const void *B, int64_t ldb, double beta, void *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0) {
        if (dbl)
            gemm_scale_f64(C, ldc, M, N, beta);
        else
            gemm_scale_f32(C, ldc, M, N, beta);
        return;
    }
    gemm_job g = {
        .kr = kr, .dbl = dbl, .M = M, .N = N, .K = K, .A = A, .B = B, .C = C, .ldc = ldc,
        .alpha = alpha, .beta = beta,
        .ars = trans_a ? 1 : lda, .acs = trans_a ? lda : 1,
        .brs = trans_b ? 1 : ldb, .bcs = trans_b ? ldb : 1,
    };
    double flops = 2.0 * (double)M * (double)N * (double)K;
    int nt = sp_get_num_threads();
    if (flops < (double)nt * GEMM_MIN_FLOPS_PER_THREAD) {
        nt = (int)(flops / GEMM_MIN_FLOPS_PER_THREAD);
        if (nt < 1) nt = 1;
    }
    g.nthreads = nt;

    /* Balanced passes: K = 300 with kc 256 runs two passes of 150. */
    int64_t kpasses = gemm_ceil_div(K, kr->kc);
    int64_t kc_max = gemm_ceil_div(K, kpasses);
    int64_t npasses = gemm_ceil_div(N, kr->nc);
    int64_t nc_max = gemm_ceil_div(gemm_ceil_div(N, npasses), kr->nr) * kr->nr;

    size_t bbytes = (size_t)(nc_max + kr->nr) * (size_t)kc_max * kr->esize;
    size_t sbytes = (size_t)gemm_ceil_div(nc_max, kr->nr) * sizeof(atomic_int);
    bbytes = (bbytes + 63) & ~(size_t)63;
    gemm_block *bblk = gemm_scratch_get(bbytes + sbytes);
    if (!bblk) {
        g.jc = 0;
        g.pc = 0;
        g.kc = K;
        g.beta_pass = beta;
        gemm_task_naive(&g, 0, M, 0, N);
        return;
    }
    g.bpack = bblk->mem;
    g.bstate = (atomic_int *)((char *)bblk->mem + bbytes);
    for (int64_t q = 0; q < gemm_ceil_div(nc_max, kr->nr); q++) atomic_init(&g.bstate[q], 0);

    for (g.jc = 0; g.jc < N; g.jc += nc_max) {
        g.nc = N - g.jc < nc_max ? N - g.jc : nc_max;
        gemm_plan_tasks(&g);
        for (g.pc = 0; g.pc < K; g.pc += kc_max) {
            g.kc = K - g.pc < kc_max ? K - g.pc : kc_max;
            g.beta_pass = g.pc == 0 ? beta : 1.0;
            int64_t panels_n = gemm_ceil_div(g.nc, kr->nr);
            for (int64_t q = 0; q < panels_n; q++)
                atomic_store_explicit(&g.bstate[q], PANEL_FREE, memory_order_relaxed);
            gemm_parallel(nt, g.nb_m * g.nb_n, gemm_task_range, &g);
        }
    }
    gemm_scratch_put(bblk);
}

void cpu_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc) {
    gemm_run(gemm_pick(0), 0, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void cpu_dgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
               double *C, int64_t ldc) {
    gemm_run(gemm_pick(1), 1, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
