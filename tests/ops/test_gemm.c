/*
 * test_gemm.c -- cpu_sgemm / cpu_dgemm against a naive double-precision
 * reference, and the matmul primitive (numpy.matmul semantics) through
 * sp_op_call_name.
 *
 * GEMM cases cover every size from 0 to 70 in each of M, N and K (the
 * others drawn at random), an exhaustive grid of sizes around the tile
 * edges (multiples of 4, 6, 8, 12, 16, 32, plus and minus one), shapes big
 * enough for several k passes and several column blocks, all four
 * transpose combinations, leading dimensions wider than the matrix (the
 * gap must stay untouched), zero and negative leading dimensions (views
 * with broadcast or reversed rows), alpha/beta combinations, and beta == 0
 * over a C full of NaN (which must not leak through).  Each runs with 1 and
 * 2 threads, and a large case must give bitwise identical results for both.
 *
 * The error bound per element is the classical one for a dot product,
 * (K + 4) * eps * sum_p |alpha a_ip b_pj| + eps |beta c_ij|, so a wrong
 * element, a missed k pass or a stray beta fails by orders of magnitude.
 */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>

#include "backend/cpu/gemm.h"
#include "core/internal.h"
#include "test.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double urand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / (double)(1ull << 52) - 1.0;
}

static int64_t irand(int64_t n) { return (int64_t)((urand() + 1.0) * 0.5 * (double)n) % n; }

typedef struct gemm_case {
    int dbl, ta, tb;
    int64_t M, N, K, lda, ldb, ldc;
    double alpha, beta;
    int nan_c; /* fill C with NaN (only meaningful with beta == 0) */
} gemm_case;

/* Runs one case; returns the worst error / bound ratio (> 1 means failed),
 * or 1e30 when memory outside C's window changed. */
static double gemm_check(const gemm_case *t) {
    int64_t M = t->M, N = t->N, K = t->K;
    int64_t arows = t->ta ? K : M, brows = t->tb ? N : K;
    size_t asz = (size_t)(arows * t->lda + 1), bsz = (size_t)(brows * t->ldb + 1);
    size_t csz = (size_t)(M * t->ldc + 1);
    double *a = malloc(asz * sizeof(double)), *b = malloc(bsz * sizeof(double));
    double *c0 = malloc(csz * sizeof(double));
    for (size_t i = 0; i < asz; i++) a[i] = urand();
    for (size_t i = 0; i < bsz; i++) b[i] = urand();
    for (size_t i = 0; i < csz; i++) c0[i] = t->nan_c ? NAN : urand();
    if (!t->dbl) { /* make the inputs exactly representable in float */
        for (size_t i = 0; i < asz; i++) a[i] = (float)a[i];
        for (size_t i = 0; i < bsz; i++) b[i] = (float)b[i];
        for (size_t i = 0; i < csz; i++) c0[i] = (float)c0[i];
    }
    void *A, *B, *C;
    if (t->dbl) {
        A = a;
        B = b;
        C = malloc(csz * sizeof(double));
        memcpy(C, c0, csz * sizeof(double));
        cpu_dgemm(t->ta, t->tb, M, N, K, t->alpha, a, t->lda, b, t->ldb, t->beta, C, t->ldc);
    } else {
        float *af = malloc(asz * sizeof(float)), *bf = malloc(bsz * sizeof(float));
        float *cf = malloc(csz * sizeof(float));
        for (size_t i = 0; i < asz; i++) af[i] = (float)a[i];
        for (size_t i = 0; i < bsz; i++) bf[i] = (float)b[i];
        for (size_t i = 0; i < csz; i++) cf[i] = (float)c0[i];
        A = af;
        B = bf;
        C = cf;
        cpu_sgemm(t->ta, t->tb, M, N, K, (float)t->alpha, af, t->lda, bf, t->ldb, (float)t->beta,
                  cf, t->ldc);
    }
    double eps = t->dbl ? DBL_EPSILON : FLT_EPSILON, worst = 0;
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < t->ldc; j++) {
            double got = t->dbl ? ((double *)C)[i * t->ldc + j] : ((float *)C)[i * t->ldc + j];
            if (j >= N) { /* the gap between rows must be untouched */
                if (!(got == c0[i * t->ldc + j] || (isnan(got) && isnan(c0[i * t->ldc + j]))))
                    worst = 1e30;
                continue;
            }
            double s = 0, abs_s = 0;
            for (int64_t p = 0; p < K; p++) {
                double x = t->ta ? a[p * t->lda + i] : a[i * t->lda + p];
                double y = t->tb ? b[j * t->ldb + p] : b[p * t->ldb + j];
                s += x * y;
                abs_s += fabs(x * y);
            }
            double cij = c0[i * t->ldc + j];
            double want = t->alpha * s + (t->beta == 0 ? 0 : t->beta * cij);
            double bound = (double)(K + 4) * eps * fabs(t->alpha) * abs_s +
                           4 * eps * (t->beta == 0 ? 0 : fabs(t->beta * cij)) + 1e-300;
            double r = fabs(got - want) / bound;
            if (!(r <= worst)) worst = isnan(r) ? 1e30 : r;
        }
    }
    if (!t->dbl) {
        free(A);
        free(B);
    }
    free(C);
    free(a);
    free(b);
    free(c0);
    return worst;
}

static int n_reported;

static void gemm_expect(const gemm_case *t) {
    double r = gemm_check(t);
    CHECK(r <= 1.0);
    if (!(r <= 1.0) && n_reported++ < 20)
        fprintf(stderr,
                "  %s ta=%d tb=%d M=%lld N=%lld K=%lld lda=%lld ldb=%lld ldc=%lld alpha=%g "
                "beta=%g nan_c=%d threads=%d: error/bound %g\n",
                t->dbl ? "dgemm" : "sgemm", t->ta, t->tb, (long long)t->M, (long long)t->N,
                (long long)t->K, (long long)t->lda, (long long)t->ldb, (long long)t->ldc,
                t->alpha, t->beta, t->nan_c, sp_get_num_threads(), r);
}

/* A case with leading dimensions = the stored width plus `pad`. */
static gemm_case mk(int dbl, int ta, int tb, int64_t M, int64_t N, int64_t K, int64_t pad,
                    double alpha, double beta) {
    gemm_case t = {.dbl = dbl, .ta = ta, .tb = tb, .M = M, .N = N, .K = K,
                   .alpha = alpha, .beta = beta};
    t.lda = (ta ? M : K) + pad;
    t.ldb = (tb ? K : N) + pad;
    t.ldc = N + pad;
    if (t.lda < 1) t.lda = 1;
    if (t.ldb < 1) t.ldb = 1;
    if (t.ldc < 1) t.ldc = 1;
    return t;
}

static const double alphas[] = {1.0, -1.5, 0.5, 2.0};
static const double betas[] = {0.0, 1.0, 0.25, -2.0};

/* Every size 0..70 in each of M, N, K with the other two random. */
static void test_gemm_sweep(void) {
    for (int thr = 1; thr <= 2; thr++) {
        CHECK_OK(sp_set_num_threads(thr));
        for (int dbl = 0; dbl <= 1; dbl++) {
            for (int64_t s = 0; s <= 70; s++) {
                for (int which = 0; which < 3; which++) {
                    int64_t d[3] = {irand(71), irand(71), irand(71)};
                    d[which] = s;
                    int tr = (int)irand(4);
                    gemm_case t = mk(dbl, tr & 1, tr >> 1, d[0], d[1], d[2], irand(4),
                                     alphas[irand(4)], betas[irand(4)]);
                    t.nan_c = t.beta == 0 && irand(2);
                    gemm_expect(&t);
                }
            }
        }
    }
}

/* All transposes over a grid of sizes at the tile edges of every kernel set. */
static void test_gemm_edges(void) {
    static const int64_t sz[] = {1, 3, 5, 6, 7, 11, 12, 13, 15, 16, 17, 31, 32, 33};
    const int n = (int)(sizeof sz / sizeof sz[0]);
    for (int thr = 1; thr <= 2; thr++) {
        CHECK_OK(sp_set_num_threads(thr));
        for (int tr = 0; tr < 4; tr++)
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    int64_t k = sz[(i * 7 + j * 3 + tr) % n];
                    gemm_case t = mk((i + j) & 1, tr & 1, tr >> 1, sz[i], sz[j], k,
                                     (i + j) % 3, 1.0, (i ^ j) & 1 ? 0.5 : 0.0);
                    gemm_expect(&t);
                }
    }
}

/* Shapes past the cache blocks: several k passes (beta only on the first),
 * several column blocks, rows split between threads unevenly. */
static void test_gemm_large(void) {
    static const int64_t shapes[][3] = {
        {256, 256, 256}, {300, 200, 517}, {1000, 40, 300}, {7, 5000, 64}, {130, 4150, 300},
        {37, 1030, 700}, {2, 3, 2000},
    };
    for (int thr = 1; thr <= 2; thr++) {
        CHECK_OK(sp_set_num_threads(thr));
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int dbl = 0; dbl <= 1; dbl++) {
                int tr = (int)(s + (size_t)dbl + (size_t)thr) & 3;
                gemm_case t = mk(dbl, tr & 1, tr >> 1, shapes[s][0], shapes[s][1], shapes[s][2],
                                 (int64_t)s % 3, s & 1 ? -0.75 : 1.0, s & 2 ? 0.0 : 1.5);
                t.nan_c = t.beta == 0;
                gemm_expect(&t);
            }
    }
}

/* alpha == 0 and K == 0 scale C by beta without touching A or B; beta == 0
 * then writes zeros over NaN. */
static void test_gemm_degenerate(void) {
    float a[4] = {NAN, NAN, NAN, NAN}, b[4] = {NAN, NAN, NAN, NAN};
    float c[4] = {NAN, NAN, NAN, NAN};
    cpu_sgemm(0, 0, 2, 2, 2, 0.0f, a, 2, b, 2, 0.0f, c, 2);
    for (int i = 0; i < 4; i++) CHECK(c[i] == 0.0f);
    float d[4] = {1, 2, 3, 4};
    cpu_sgemm(0, 0, 2, 2, 0, 1.0f, NULL, 1, NULL, 1, 3.0f, d, 2);
    CHECK(d[0] == 3.0f && d[1] == 6.0f && d[2] == 9.0f && d[3] == 12.0f);
    cpu_sgemm(1, 1, 0, 5, 5, 1.0f, NULL, 1, NULL, 5, 0.0f, NULL, 5); /* M == 0: nothing */
    double e[2] = {NAN, NAN};
    cpu_dgemm(0, 0, 1, 2, 0, 1.0, NULL, 1, NULL, 2, 0.0, e, 2);
    CHECK(e[0] == 0.0 && e[1] == 0.0);
}

/* Leading dimension 0 (every row the same: a broadcast view) and negative
 * (rows reversed: a view sliced with step -1). */
static void test_gemm_odd_strides(void) {
    enum { M = 29, N = 37, K = 45 };
    static float a[M * K], b[K * N], c[M * N], row[K];
    for (int i = 0; i < M * K; i++) a[i] = (float)urand();
    for (int i = 0; i < K * N; i++) b[i] = (float)urand();
    for (int i = 0; i < K; i++) row[i] = (float)urand();
    for (int thr = 1; thr <= 2; thr++) {
        CHECK_OK(sp_set_num_threads(thr));
        /* A with rows reversed: row i is a[(M-1-i)*K ...] */
        cpu_sgemm(0, 0, M, N, K, 1.0f, a + (M - 1) * K, -K, b, N, 0.0f, c, N);
        double worst = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int p = 0; p < K; p++) s += (double)a[(M - 1 - i) * K + p] * b[p * N + j];
                worst = fmax(worst, fabs(c[i * N + j] - s));
            }
        CHECK(worst < 1e-4);
        /* A broadcast: lda = 0, every row of C is the same */
        cpu_sgemm(0, 0, M, N, K, 1.0f, row, 0, b, N, 0.0f, c, N);
        worst = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0;
                for (int p = 0; p < K; p++) s += (double)row[p] * b[p * N + j];
                worst = fmax(worst, fabs(c[i * N + j] - s));
            }
        CHECK(worst < 1e-4);
    }
}

/* The same product with 1 and 2 threads is bitwise identical. */
static void test_gemm_thread_invariance(void) {
    enum { M = 203, N = 311, K = 600 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c1 = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) a[i] = (float)urand();
    for (int i = 0; i < K * N; i++) b[i] = (float)urand();
    CHECK_OK(sp_set_num_threads(1));
    cpu_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c1, N);
    CHECK_OK(sp_set_num_threads(2));
    cpu_sgemm(0, 1, M, N, K, 1.0f, a, K, b, K, 0.0f, c2, N);
    CHECK(memcmp(c1, c2, sizeof(float) * M * N) == 0);
    free(a);
    free(b);
    free(c1);
    free(c2);
}

/* A GEMM called from inside a parallel loop runs single-threaded and is
 * still right (each task does its own product). */
typedef struct {
    float *a, *b, *c;
    int n;
} nested_ctx;

static void nested_fn(void *ctx_, int64_t lo, int64_t hi) {
    nested_ctx *x = ctx_;
    int n = x->n;
    for (int64_t t = lo; t < hi; t++)
        cpu_sgemm(0, 0, n, n, n, 1.0f, x->a + t * n * n, n, x->b, n, 0.0f, x->c + t * n * n, n);
}

static void test_gemm_nested(void) {
    enum { T = 6, n = 96 };
    nested_ctx x = {malloc(sizeof(float) * T * n * n), malloc(sizeof(float) * n * n),
                    malloc(sizeof(float) * T * n * n), n};
    for (int i = 0; i < T * n * n; i++) x.a[i] = (float)urand();
    for (int i = 0; i < n * n; i++) x.b[i] = (float)urand();
    CHECK_OK(sp_set_num_threads(2));
    sp_parallel_for(T, 1, nested_fn, &x);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < n; i += 7)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < n; p++) s += (double)x.a[t * n * n + i * n + p] * x.b[p * n + j];
                worst = fmax(worst, fabs(x.c[t * n * n + i * n + j] - s));
            }
    CHECK(worst < 1e-4);
    free(x.a);
    free(x.b);
    free(x.c);
}

static void test_gemm_kernel_name(void) {
    const char *k = cpu_sgemm_kernel_name();
    const char *want = sp_cpu_has_avx512f() ? "avx512" : sp_cpu_has_avx2_fma() ? "avx2" : "generic";
#if !defined(__x86_64__) && !defined(__i386__)
    want = "generic";
#endif
    CHECK_STR(k, want);
}

/* ---- the matmul primitive ---------------------------------------------- */

/* A tensor of `dtype` with values urand() rounded to the dtype. */
static sp_tensor *rand_tensor(sp_dtype dtype, int ndim, const int64_t *shape) {
    sp_tensor *t = sp_tensor_new(dtype, ndim, shape, SP_CPU);
    if (!t) return NULL;
    int64_t n = sp_tensor_numel(t);
    char *p = sp_tensor_data(t);
    for (int64_t i = 0; i < n; i++) sp_store_f64(dtype, p + i * (int64_t)sp_dtype_size(dtype), urand());
    return t;
}

/* Reads t at a multi-index given as the last `n` dims of idx, with numpy
 * broadcasting (size-1 dims read index 0). */
static double bget(const sp_tensor *t, int nidx, const int64_t *idx) {
    int64_t ix[SP_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        int64_t v = idx[nidx - t->ndim + d];
        ix[d] = t->shape[d] == 1 ? 0 : v;
    }
    return sp_tensor_get(t, ix);
}

/* Checks out = matmul(a, b) with numpy semantics (after the optional
 * transposes) against a double reference; tol is relative to sum |a b|. */
static void matmul_expect(sp_tensor *a, sp_tensor *b, int ta, int tb, double tol) {
    sp_attrs at;
    sp_attrs_init(&at);
    if (ta) sp_attrs_set_int(&at, "transpose_a", 1);
    if (tb) sp_attrs_set_int(&at, "transpose_b", 1);
    sp_tensor *in[2] = {a, b}, *out[SP_MAX_OUTPUTS] = {0};
    int n_out = 0;
    sp_status st = sp_op_call_name("matmul", 2, in, &at, &n_out, out);
    CHECK_OK(st);
    if (st != SP_OK) return;
    CHECK(n_out == 1);
    sp_tensor *c = out[0];
    CHECK(c->dtype == a->dtype);
    /* logical 2-D views of a and b after transposes, as numpy.matmul */
    int a1 = a->ndim == 1, b1 = b->ndim == 1;
    int64_t M = a1 ? 1 : a->shape[a->ndim - (ta ? 1 : 2)];
    int64_t K = a->shape[a->ndim - (a1 || !ta ? 1 : 2)];
    int64_t N = b1 ? 1 : b->shape[b->ndim - (tb ? 2 : 1)];
    int nba = a1 ? 0 : a->ndim - 2, nbb = b1 ? 0 : b->ndim - 2;
    int nb = nba > nbb ? nba : nbb;
    int64_t bshape[SP_MAX_DIMS];
    for (int d = 0; d < nb; d++) {
        int da = d - (nb - nba), db = d - (nb - nbb);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        bshape[d] = sa == 1 ? sb : sa;
    }
    CHECK(c->ndim == nb + !a1 + !b1);
    if (c->ndim != nb + !a1 + !b1) goto done;
    for (int d = 0; d < nb; d++) CHECK(c->shape[d] == bshape[d]);
    int64_t nbatch = 1;
    for (int d = 0; d < nb; d++) nbatch *= bshape[d];
    double worst = 0;
    for (int64_t bt = 0; bt < nbatch; bt++) {
        int64_t idx[SP_MAX_DIMS + 2], rem = bt;
        for (int d = nb - 1; d >= 0; d--) {
            idx[d] = rem % bshape[d];
            rem /= bshape[d];
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0, abs_s = 0;
                for (int64_t p = 0; p < K; p++) {
                    int64_t ia[SP_MAX_DIMS + 2], ib[SP_MAX_DIMS + 2];
                    memcpy(ia, idx, sizeof(int64_t) * (size_t)nb);
                    memcpy(ib, idx, sizeof(int64_t) * (size_t)nb);
                    double x, y;
                    if (a1) {
                        x = sp_tensor_get(a, &p);
                    } else {
                        ia[nb] = ta ? p : i;
                        ia[nb + 1] = ta ? i : p;
                        x = bget(a, nb + 2, ia);
                    }
                    if (b1) {
                        y = sp_tensor_get(b, &p);
                    } else {
                        ib[nb] = tb ? j : p;
                        ib[nb + 1] = tb ? p : j;
                        y = bget(b, nb + 2, ib);
                    }
                    s += x * y;
                    abs_s += fabs(x * y);
                }
                int64_t oi[SP_MAX_DIMS + 2];
                memcpy(oi, idx, sizeof(int64_t) * (size_t)nb);
                int o = nb;
                if (!a1) oi[o++] = i;
                if (!b1) oi[o++] = j;
                double got = sp_tensor_get(c, oi);
                double r = fabs(got - s) / (tol * (abs_s + 1e-30) + 1e-300);
                if (!(r <= worst)) worst = isnan(r) ? 1e30 : r;
            }
    }
    CHECK(worst <= 1.0);
    if (!(worst <= 1.0)) {
        char sa[64], sb[64];
        fprintf(stderr, "  matmul %s %s %s ta=%d tb=%d: error/bound %g\n",
                sp_dtype_name(a->dtype), sp_shape_str(a->ndim, a->shape, sa, sizeof sa),
                sp_shape_str(b->ndim, b->shape, sb, sizeof sb), ta, tb, worst);
    }
done:
    sp_tensor_release(c);
}

static double dtype_tol(sp_dtype d) {
    switch (d) {
    case SP_F64: return 1e-13;
    case SP_F32: return 1e-5;
    case SP_F16: return 2e-3;  /* one rounding of the result to float16 */
    default: return 1e-2;      /* bfloat16 */
    }
}

static void test_matmul_shapes(void) {
    static const sp_dtype dts[] = {SP_F32, SP_F64, SP_F16, SP_BF16};
    struct {
        int na;
        int64_t a[4];
        int nb;
        int64_t b[4];
        int ta, tb;
    } cases[] = {
        {2, {5, 7}, 2, {7, 3}, 0, 0},
        {2, {7, 5}, 2, {7, 3}, 1, 0},
        {2, {5, 7}, 2, {3, 7}, 0, 1},
        {2, {7, 5}, 2, {3, 7}, 1, 1},
        {4, {2, 1, 3, 4}, 3, {5, 4, 6}, 0, 0}, /* batch broadcast -> (2, 5, 3, 6) */
        {3, {3, 4, 5}, 2, {5, 2}, 0, 0},       /* batches fold into one product */
        {3, {4, 1, 5}, 2, {5, 3}, 0, 0},       /* one-row batches fold too */
        {4, {2, 3, 4, 5}, 3, {1, 5, 2}, 0, 0}, /* b broadcast over both batch dims */
        {3, {3, 5, 4}, 2, {5, 2}, 1, 0},       /* transposed a: no folding */
        {2, {4, 5}, 3, {3, 5, 2}, 0, 0},
        {1, {4}, 2, {4, 6}, 0, 0},             /* 1-D a: a row, dropped */
        {3, {2, 3, 4}, 1, {4}, 0, 0},          /* 1-D b: a column, dropped */
        {1, {9}, 1, {9}, 0, 0},                /* dot product: a 0-d result */
        {1, {4}, 3, {2, 4, 3}, 0, 0},
        {3, {2, 4, 3}, 1, {4}, 1, 0},
        {2, {3, 0}, 2, {0, 4}, 0, 0},          /* K == 0: zeros */
        {3, {0, 3, 4}, 2, {4, 2}, 0, 0},       /* empty batch */
        {3, {64, 9, 11}, 3, {64, 11, 13}, 0, 0}, /* many small products: batch-parallel */
        {2, {70, 130}, 2, {90, 130}, 0, 1},
    };
    for (int thr = 1; thr <= 2; thr++) {
        CHECK_OK(sp_set_num_threads(thr));
        for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
            for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                sp_tensor *a = rand_tensor(dts[d], cases[i].na, cases[i].a);
                sp_tensor *b = rand_tensor(dts[d], cases[i].nb, cases[i].b);
                CHECK(a && b);
                if (a && b) matmul_expect(a, b, cases[i].ta, cases[i].tb, dtype_tol(dts[d]));
                sp_tensor_release(a);
                sp_tensor_release(b);
            }
    }
}

/* Inputs that are views: transposed, sliced with a negative step (neither
 * dim contiguous), broadcast with stride 0. */
static void test_matmul_views(void) {
    CHECK_OK(sp_set_num_threads(2));
    int64_t sa[3] = {3, 6, 10}, sb[2] = {8, 6};
    sp_tensor *a = rand_tensor(SP_F32, 3, sa), *b = rand_tensor(SP_F32, 2, sb);
    sp_tensor *at = NULL, *bt = NULL, *as = NULL, *as2 = NULL, *be = NULL;
    /* a^T per batch: (3, 10, 6); b^T: (6, 8) */
    CHECK_OK(sp_tensor_transpose(a, 1, 2, &at));
    CHECK_OK(sp_tensor_transpose(b, 0, 1, &bt));
    if (at && bt) matmul_expect(at, bt, 0, 0, 1e-5);
    /* a[:, ::-1, ::2]: (3, 6, 5), no unit stride anywhere; with b[:5, :]^T */
    CHECK_OK(sp_tensor_slice(a, 1, SP_SLICE_NONE, SP_SLICE_NONE, -1, &as));
    if (as) CHECK_OK(sp_tensor_slice(as, 2, SP_SLICE_NONE, SP_SLICE_NONE, 2, &as2));
    sp_tensor *b5 = NULL;
    int64_t sb5[2] = {5, 7};
    b5 = rand_tensor(SP_F32, 2, sb5);
    if (as2 && b5) matmul_expect(as2, b5, 0, 0, 1e-5);
    /* b broadcast along a new batch dim: (4, 8, 6) with stride 0 */
    int64_t se[3] = {4, 8, 6};
    CHECK_OK(sp_tensor_expand(b, 3, se, &be));
    int64_t sx[2] = {5, 8};
    sp_tensor *x = rand_tensor(SP_F32, 2, sx);
    if (be && x) matmul_expect(x, be, 0, 0, 1e-5);
    if (be && x) matmul_expect(be, be, 1, 0, 1e-5);
    sp_tensor_release(x);
    sp_tensor_release(b5);
    sp_tensor_release(be);
    sp_tensor_release(as2);
    sp_tensor_release(as);
    sp_tensor_release(bt);
    sp_tensor_release(at);
    sp_tensor_release(b);
    sp_tensor_release(a);
}

static void test_matmul_errors(void) {
    int64_t sa[2] = {2, 3}, sb[2] = {4, 5};
    sp_tensor *a = rand_tensor(SP_F32, 2, sa), *b = rand_tensor(SP_F32, 2, sb);
    sp_tensor *in[2] = {a, b}, *out[SP_MAX_OUTPUTS] = {0};
    int n_out = 0;
    CHECK_ERR(sp_op_call_name("matmul", 2, in, NULL, &n_out, out), SP_ERR_SHAPE, "matmul");
    sp_tensor *bd = rand_tensor(SP_F64, 2, (int64_t[]){3, 5});
    in[1] = bd;
    CHECK(sp_op_call_name("matmul", 2, in, NULL, &n_out, out) != SP_OK);
    sp_tensor_release(bd);
    sp_tensor_release(a);
    sp_tensor_release(b);
}

int main(void) {
    int64_t live0 = sp_cpu_live_bytes();
    RUN(test_gemm_kernel_name);
    RUN(test_gemm_degenerate);
    RUN(test_gemm_edges);
    RUN(test_gemm_sweep);
    RUN(test_gemm_large);
    RUN(test_gemm_odd_strides);
    RUN(test_gemm_thread_invariance);
    RUN(test_gemm_nested);
    RUN(test_matmul_shapes);
    RUN(test_matmul_views);
    RUN(test_matmul_errors);
    CHECK(sp_cpu_live_bytes() == live0);
    return TEST_SUMMARY();
}
