/*
 * reduce.c -- CPU reductions: sum, mean, max, min, prod, logsumexp,
 * argmax, argmin over any set of axes, and cumsum along one.
 *
 * A reduction splits the input's dims into KEPT dims (the output's, in
 * order; the output is contiguous) and REDUCED dims, which form the
 * "R-space" of N elements folded into each of the M outputs.  The plan
 * drops size-1 dims, merges neighbours that are contiguous in memory, and
 * orders the reduced dims by decreasing |stride| so the innermost loop runs
 * along the smallest stride.  Each reduced dim also keeps its C-order
 * stride within the R-space, so argmax/argmin can report the logical
 * (numpy) index whatever order memory is walked in; ties and NaNs are
 * settled by comparing those indices, so order never changes a result.
 *
 * Two loop shapes cover the cases that matter:
 *   ROW     the innermost memory dim is reduced: every output folds runs
 *           along the reduced dims (sum over the last axis, over all);
 *   COLUMN  the innermost memory dim is kept: a block of up to 2048
 *           neighbouring outputs is folded together, one vectorizable pass
 *           per step of the R-space (sum over axis 0 of a matrix).
 * Work units (outputs, or output blocks) are spread over the pool.  When
 * there are few units and N is large, the R-space is also cut into chunks
 * whose partial results are combined in chunk order afterwards.  The cut
 * depends only on the shapes, never on the thread count, so results are
 * bit-identical for any number of threads.
 *
 * Accuracy: floating inputs accumulate in double (float32, float16 and
 * bfloat16 as well; the result is rounded once), with 8 partial sums per
 * run.  Integer and bool sums and products wrap in int64 (numpy).  max/min
 * propagate NaN; argmax/argmin return the first NaN (numpy).  logsumexp is
 * max-shifted: a max pass, then sum(exp(x - max)); an all -inf row gives
 * -inf, a +inf gives +inf.  Empty reductions: sum 0, prod 1, mean NaN,
 * logsumexp -inf; max/min/argmax/argmin refuse (inference refuses first).
 */
#include <stdlib.h>

#include "backend/cpu/cpu.h"

enum { R_SUM, R_PROD, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_LSE, R_NOPS };
/* how an accumulator becomes an output element */
enum { F_PLAIN, F_MEAN, F_ARG, F_LSE, F_SHIFT };

#define JB 2048           /* outputs per COLUMN unit: a whole row of most matrices */
#define CHUNK_WORK 65536  /* input elements per chunk when chunking */
#define MAX_PARTIAL (1 << 18)
#define GRAIN_WORK 32768  /* input elements per task, at least */

typedef struct racc {
    double d;    /* float value / sum / product */
    int64_t i;   /* integer value / sum / product */
    int64_t arg; /* argmax/argmin: R-space index, -1 while empty */
} racc;

typedef void (*row_fn)(const char *p, int64_t st, int64_t n, racc *a, int64_t lin0,
                       int64_t linst, double shift);
typedef void (*col_fn)(const char *p, int64_t sj, int64_t n, double *ad, int64_t *ai,
                       int64_t *aarg, int64_t lin, const double *shift);

/* ---- kernels, generated per dtype ---------------------------------------- */

#define LD_F32(v) ((double)(v))
#define LD_F64(v) (v)
#define LD_F16(v) ((double)sp_f16_to_f32(v))
#define LD_BF16(v) ((double)sp_bf16_to_f32(v))
#define LDC_SAME(v) (v)
#define LD_INT(v) ((int64_t)(v))
#define LD_BOOL(v) ((int64_t)((v) != 0))

/* argmax/argmin order of (value v, index i) against (w, j): NaN first,
 * then the larger (smaller) value, then the lower index. */
static inline int better_f(int max, double v, int64_t i, double w, int64_t j) {
    if (w != w) return v != v && i < j;
    if (v != v) return 1;
    if (v == w) return i < j;
    return max ? v > w : v < w;
}

static inline int better_i(int max, int64_t v, int64_t i, int64_t w, int64_t j) {
    if (v == w) return i < j;
    return max ? v > w : v < w;
}


#define FLOAT_KERNELS(NAME, T, LD, CT, LDC)                                                     \
    static void row_sum_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,     \
                               int64_t ls, double sh) {                                        \
        const T *p = (const T *)pv;                                                            \
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;                 \
        int64_t k = 0;                                                                         \
        (void)l0, (void)ls, (void)sh;                                                          \
        if (st == 1)                                                                           \
            for (; k + 8 <= n; k += 8) {                                                       \
                s0 += LD(p[k]), s1 += LD(p[k + 1]), s2 += LD(p[k + 2]), s3 += LD(p[k + 3]);    \
                s4 += LD(p[k + 4]), s5 += LD(p[k + 5]), s6 += LD(p[k + 6]);                    \
                s7 += LD(p[k + 7]);                                                            \
            }                                                                                  \
        for (; k < n; k++) s0 += LD(p[k * st]);                                                \
        a->d += ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));                             \
    }                                                                                          \
    static void row_lse_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,     \
                               int64_t ls, double sh) {                                        \
        const T *p = (const T *)pv;                                                            \
        double s = 0;                                                                          \
        (void)l0, (void)ls;                                                                    \
        for (int64_t k = 0; k < n; k++) s += exp(LD(p[k * st]) - sh);                          \
        a->d += s;                                                                             \
    }                                                                                          \
    static void row_prod_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,    \
                                int64_t ls, double sh) {                                       \
        const T *p = (const T *)pv;                                                            \
        double s = a->d;                                                                       \
        (void)l0, (void)ls, (void)sh;                                                          \
        for (int64_t k = 0; k < n; k++) s *= LD(p[k * st]);                                    \
        a->d = s;                                                                              \
    }                                                                                          \
    /* max (max != 0) or min of a run, compared in CT; NaN when any is NaN */                   \
    static double run_ext_##NAME(int max, const T *p, int64_t st, int64_t n) {                  \
        CT m0 = max ? (CT)-INFINITY : (CT)INFINITY, m1 = m0, m2 = m0, m3 = m0;                  \
        int nan = 0;                                                                            \
        int64_t k = 0;                                                                          \
        if (st == 1 && max)                                                                     \
            for (; k + 4 <= n; k += 4) {                                                        \
                CT v0 = LDC(p[k]), v1 = LDC(p[k + 1]), v2 = LDC(p[k + 2]), v3 = LDC(p[k + 3]);  \
                m0 = v0 > m0 ? v0 : m0, m1 = v1 > m1 ? v1 : m1;                                 \
                m2 = v2 > m2 ? v2 : m2, m3 = v3 > m3 ? v3 : m3;                                 \
                nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);                       \
            }                                                                                   \
        else if (st == 1)                                                                       \
            for (; k + 4 <= n; k += 4) {                                                        \
                CT v0 = LDC(p[k]), v1 = LDC(p[k + 1]), v2 = LDC(p[k + 2]), v3 = LDC(p[k + 3]);  \
                m0 = v0 < m0 ? v0 : m0, m1 = v1 < m1 ? v1 : m1;                                 \
                m2 = v2 < m2 ? v2 : m2, m3 = v3 < m3 ? v3 : m3;                                 \
                nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);                       \
            }                                                                                   \
        for (; k < n; k++) {                                                                    \
            CT v = LDC(p[k * st]);                                                              \
            m0 = (max ? v > m0 : v < m0) ? v : m0;                                              \
            nan |= v != v;                                                                      \
        }                                                                                       \
        if (nan) return NAN;                                                                    \
        if (max) {                                                                              \
            m0 = m1 > m0 ? m1 : m0, m2 = m3 > m2 ? m3 : m2;                                     \
            return m2 > m0 ? m2 : m0;                                                           \
        }                                                                                       \
        m0 = m1 < m0 ? m1 : m0, m2 = m3 < m2 ? m3 : m2;                                         \
        return m2 < m0 ? m2 : m0;                                                               \
    }                                                                                           \
    static void row_max_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,      \
                               int64_t ls, double sh) {                                         \
        double m = run_ext_##NAME(1, (const T *)pv, st, n);                                     \
        (void)l0, (void)ls, (void)sh;                                                           \
        if (a->d == a->d && (m > a->d || m != m)) a->d = m;                                     \
    }                                                                                           \
    static void row_min_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,      \
                               int64_t ls, double sh) {                                         \
        double m = run_ext_##NAME(0, (const T *)pv, st, n);                                     \
        (void)l0, (void)ls, (void)sh;                                                           \
        if (a->d == a->d && (m < a->d || m != m)) a->d = m;                                     \
    }                                                                                           \
    /* two passes: the extreme, then the first element equal to it (or the                      \
     * first NaN) */                                                                            \
    static void row_arg_##NAME(int max, const char *pv, int64_t st, int64_t n, racc *a,         \
                               int64_t l0, int64_t ls) {                                        \
        const T *p = (const T *)pv;                                                             \
        if (n <= 0) return;                                                                     \
        double m = run_ext_##NAME(max, p, st, n);                                               \
        int64_t k = 0;                                                                          \
        if (m != m) {                                                                           \
            while (k < n - 1 && LDC(p[k * st]) == LDC(p[k * st])) k++;                          \
        } else {                                                                                \
            while (k < n - 1 && (double)LDC(p[k * st]) != m) k++;                               \
        }                                                                                       \
        if (a->arg < 0 || better_f(max, m, l0 + k * ls, a->d, a->arg)) a->d = m, a->arg = l0 + k * ls; \
    }                                                                                           \
    static void row_argmax_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,  \
                                  int64_t ls, double sh) {                                     \
        (void)sh;                                                                              \
        row_arg_##NAME(1, pv, st, n, a, l0, ls);                                               \
    }                                                                                          \
    static void row_argmin_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,  \
                                  int64_t ls, double sh) {                                     \
        (void)sh;                                                                              \
        row_arg_##NAME(0, pv, st, n, a, l0, ls);                                               \
    }                                                                                          \
    static void col_sum_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                               int64_t *aarg, int64_t lin, const double *sh) {                 \
        const T *p = (const T *)pv;                                                            \
        (void)ai, (void)aarg, (void)lin, (void)sh;                                             \
        if (sj == 1)                                                                           \
            for (int64_t j = 0; j < n; j++) ad[j] += LD(p[j]);                                 \
        else                                                                                   \
            for (int64_t j = 0; j < n; j++) ad[j] += LD(p[j * sj]);                            \
    }                                                                                          \
    static void col_lse_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                               int64_t *aarg, int64_t lin, const double *sh) {                 \
        const T *p = (const T *)pv;                                                            \
        (void)ai, (void)aarg, (void)lin;                                                       \
        for (int64_t j = 0; j < n; j++) ad[j] += exp(LD(p[j * sj]) - sh[j]);                   \
    }                                                                                          \
    static void col_prod_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                                int64_t *aarg, int64_t lin, const double *sh) {                \
        const T *p = (const T *)pv;                                                            \
        (void)ai, (void)aarg, (void)lin, (void)sh;                                             \
        for (int64_t j = 0; j < n; j++) ad[j] *= LD(p[j * sj]);                                \
    }                                                                                          \
    static void col_max_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                               int64_t *aarg, int64_t lin, const double *sh) {                 \
        const T *p = (const T *)pv;                                                            \
        (void)ai, (void)aarg, (void)lin, (void)sh;                                             \
        for (int64_t j = 0; j < n; j++) {                                                      \
            double v = LD(p[j * sj]);                                                          \
            ad[j] = (v > ad[j] || v != v) ? v : ad[j];                                         \
        }                                                                                      \
    }                                                                                          \
    static void col_min_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                               int64_t *aarg, int64_t lin, const double *sh) {                 \
        const T *p = (const T *)pv;                                                            \
        (void)ai, (void)aarg, (void)lin, (void)sh;                                             \
        for (int64_t j = 0; j < n; j++) {                                                      \
            double v = LD(p[j * sj]);                                                          \
            ad[j] = (v < ad[j] || v != v) ? v : ad[j];                                         \
        }                                                                                      \
    }                                                                                          \
    static void col_argmax_##NAME(const char *pv, int64_t sj, int64_t n, double *ad,           \
                                  int64_t *ai, int64_t *aarg, int64_t lin, const double *sh) { \
        const T *p = (const T *)pv;                                                            \
        (void)ai, (void)sh;                                                                    \
        for (int64_t j = 0; j < n; j++) {                                                      \
            double v = LD(p[j * sj]);                                                          \
            if (aarg[j] < 0 || better_f(1, v, lin, ad[j], aarg[j])) ad[j] = v, aarg[j] = lin;  \
        }                                                                                      \
    }                                                                                          \
    static void col_argmin_##NAME(const char *pv, int64_t sj, int64_t n, double *ad,           \
                                  int64_t *ai, int64_t *aarg, int64_t lin, const double *sh) { \
        const T *p = (const T *)pv;                                                            \
        (void)ai, (void)sh;                                                                    \
        for (int64_t j = 0; j < n; j++) {                                                      \
            double v = LD(p[j * sj]);                                                          \
            if (aarg[j] < 0 || better_f(0, v, lin, ad[j], aarg[j])) ad[j] = v, aarg[j] = lin;  \
        }                                                                                      \
    }

#define INT_KERNELS(NAME, T, LD)                                                               \
    static void row_sum_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,     \
                               int64_t ls, double sh) {                                        \
        const T *p = (const T *)pv;                                                            \
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                               \
        int64_t k = 0;                                                                         \
        (void)l0, (void)ls, (void)sh;                                                          \
        if (st == 1)                                                                           \
            for (; k + 4 <= n; k += 4) {                                                       \
                s0 += (uint64_t)LD(p[k]), s1 += (uint64_t)LD(p[k + 1]);                        \
                s2 += (uint64_t)LD(p[k + 2]), s3 += (uint64_t)LD(p[k + 3]);                    \
            }                                                                                  \
        for (; k < n; k++) s0 += (uint64_t)LD(p[k * st]);                                      \
        a->i = (int64_t)((uint64_t)a->i + s0 + s1 + s2 + s3);                                  \
    }                                                                                          \
    static void row_prod_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,    \
                                int64_t ls, double sh) {                                       \
        const T *p = (const T *)pv;                                                            \
        uint64_t s = (uint64_t)a->i;                                                           \
        (void)l0, (void)ls, (void)sh;                                                          \
        for (int64_t k = 0; k < n; k++) s *= (uint64_t)LD(p[k * st]);                          \
        a->i = (int64_t)s;                                                                     \
    }                                                                                          \
    static int64_t run_ext_##NAME(int max, const T *p, int64_t st, int64_t n) {                 \
        int64_t m0 = max ? INT64_MIN : INT64_MAX, m1 = m0;                                      \
        int64_t k = 0;                                                                          \
        if (st == 1 && max)                                                                     \
            for (; k + 2 <= n; k += 2) {                                                        \
                int64_t v0 = LD(p[k]), v1 = LD(p[k + 1]);                                       \
                m0 = v0 > m0 ? v0 : m0, m1 = v1 > m1 ? v1 : m1;                                 \
            }                                                                                   \
        else if (st == 1)                                                                       \
            for (; k + 2 <= n; k += 2) {                                                        \
                int64_t v0 = LD(p[k]), v1 = LD(p[k + 1]);                                       \
                m0 = v0 < m0 ? v0 : m0, m1 = v1 < m1 ? v1 : m1;                                 \
            }                                                                                   \
        for (; k < n; k++) {                                                                    \
            int64_t v = LD(p[k * st]);                                                          \
            m0 = (max ? v > m0 : v < m0) ? v : m0;                                              \
        }                                                                                       \
        return max ? (m1 > m0 ? m1 : m0) : (m1 < m0 ? m1 : m0);                                 \
    }                                                                                           \
    static void row_max_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,      \
                               int64_t ls, double sh) {                                         \
        int64_t m = run_ext_##NAME(1, (const T *)pv, st, n);                                    \
        (void)l0, (void)ls, (void)sh;                                                           \
        a->i = m > a->i ? m : a->i;                                                             \
    }                                                                                           \
    static void row_min_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,      \
                               int64_t ls, double sh) {                                         \
        int64_t m = run_ext_##NAME(0, (const T *)pv, st, n);                                    \
        (void)l0, (void)ls, (void)sh;                                                           \
        a->i = m < a->i ? m : a->i;                                                             \
    }                                                                                           \
    static void row_arg_##NAME(int max, const char *pv, int64_t st, int64_t n, racc *a,         \
                               int64_t l0, int64_t ls) {                                        \
        const T *p = (const T *)pv;                                                             \
        if (n <= 0) return;                                                                     \
        int64_t m = run_ext_##NAME(max, p, st, n), k = 0;                                       \
        while (k < n - 1 && LD(p[k * st]) != m) k++;                                            \
        if (a->arg < 0 || better_i(max, m, l0 + k * ls, a->i, a->arg)) a->i = m, a->arg = l0 + k * ls; \
    }                                                                                           \
    static void row_argmax_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,  \
                                  int64_t ls, double sh) {                                     \
        (void)sh;                                                                              \
        row_arg_##NAME(1, pv, st, n, a, l0, ls);                                               \
    }                                                                                          \
    static void row_argmin_##NAME(const char *pv, int64_t st, int64_t n, racc *a, int64_t l0,  \
                                  int64_t ls, double sh) {                                     \
        (void)sh;                                                                              \
        row_arg_##NAME(0, pv, st, n, a, l0, ls);                                               \
    }                                                                                          \
    static void col_sum_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                               int64_t *aarg, int64_t lin, const double *sh) {                 \
        const T *p = (const T *)pv;                                                            \
        (void)ad, (void)aarg, (void)lin, (void)sh;                                             \
        if (sj == 1)                                                                           \
            for (int64_t j = 0; j < n; j++)                                                    \
                ai[j] = (int64_t)((uint64_t)ai[j] + (uint64_t)LD(p[j]));                       \
        else                                                                                   \
            for (int64_t j = 0; j < n; j++)                                                    \
                ai[j] = (int64_t)((uint64_t)ai[j] + (uint64_t)LD(p[j * sj]));                  \
    }                                                                                          \
    static void col_prod_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                                int64_t *aarg, int64_t lin, const double *sh) {                \
        const T *p = (const T *)pv;                                                            \
        (void)ad, (void)aarg, (void)lin, (void)sh;                                             \
        for (int64_t j = 0; j < n; j++)                                                        \
            ai[j] = (int64_t)((uint64_t)ai[j] * (uint64_t)LD(p[j * sj]));                      \
    }                                                                                          \
    static void col_max_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                               int64_t *aarg, int64_t lin, const double *sh) {                 \
        const T *p = (const T *)pv;                                                            \
        (void)ad, (void)aarg, (void)lin, (void)sh;                                             \
        for (int64_t j = 0; j < n; j++) {                                                      \
            int64_t v = LD(p[j * sj]);                                                         \
            ai[j] = v > ai[j] ? v : ai[j];                                                     \
        }                                                                                      \
    }                                                                                          \
    static void col_min_##NAME(const char *pv, int64_t sj, int64_t n, double *ad, int64_t *ai, \
                               int64_t *aarg, int64_t lin, const double *sh) {                 \
        const T *p = (const T *)pv;                                                            \
        (void)ad, (void)aarg, (void)lin, (void)sh;                                             \
        for (int64_t j = 0; j < n; j++) {                                                      \
            int64_t v = LD(p[j * sj]);                                                         \
            ai[j] = v < ai[j] ? v : ai[j];                                                     \
        }                                                                                      \
    }                                                                                          \
    static void col_argmax_##NAME(const char *pv, int64_t sj, int64_t n, double *ad,           \
                                  int64_t *ai, int64_t *aarg, int64_t lin, const double *sh) { \
        const T *p = (const T *)pv;                                                            \
        (void)ad, (void)sh;                                                                    \
        for (int64_t j = 0; j < n; j++) {                                                      \
            int64_t v = LD(p[j * sj]);                                                         \
            if (aarg[j] < 0 || better_i(1, v, lin, ai[j], aarg[j])) ai[j] = v, aarg[j] = lin;  \
        }                                                                                      \
    }                                                                                          \
    static void col_argmin_##NAME(const char *pv, int64_t sj, int64_t n, double *ad,           \
                                  int64_t *ai, int64_t *aarg, int64_t lin, const double *sh) { \
        const T *p = (const T *)pv;                                                            \
        (void)ad, (void)sh;                                                                    \
        for (int64_t j = 0; j < n; j++) {                                                      \
            int64_t v = LD(p[j * sj]);                                                         \
            if (aarg[j] < 0 || better_i(0, v, lin, ai[j], aarg[j])) ai[j] = v, aarg[j] = lin;  \
        }                                                                                      \
    }

FLOAT_KERNELS(f32, float, LD_F32, float, LDC_SAME)
FLOAT_KERNELS(f64, double, LD_F64, double, LDC_SAME)
FLOAT_KERNELS(f16, sp_f16, LD_F16, float, sp_f16_to_f32)
FLOAT_KERNELS(bf16, sp_bf16, LD_BF16, float, sp_bf16_to_f32)
INT_KERNELS(i8, int8_t, LD_INT)
INT_KERNELS(u8, uint8_t, LD_INT)
INT_KERNELS(i32, int32_t, LD_INT)
INT_KERNELS(i64, int64_t, LD_INT)
INT_KERNELS(bool, uint8_t, LD_BOOL)

#define ALL_TABLE(kind, op)                                                                    \
    {                                                                                          \
        [SP_F32] = kind##_##op##_f32, [SP_F64] = kind##_##op##_f64,                            \
        [SP_F16] = kind##_##op##_f16, [SP_BF16] = kind##_##op##_bf16,                          \
        [SP_I8] = kind##_##op##_i8, [SP_U8] = kind##_##op##_u8, [SP_I32] = kind##_##op##_i32,  \
        [SP_I64] = kind##_##op##_i64, [SP_BOOL] = kind##_##op##_bool                           \
    }
#define FLOAT_TABLE(kind, op)                                                                  \
    {                                                                                          \
        [SP_F32] = kind##_##op##_f32, [SP_F64] = kind##_##op##_f64,                            \
        [SP_F16] = kind##_##op##_f16, [SP_BF16] = kind##_##op##_bf16                           \
    }

static const row_fn row_table[R_NOPS][SP_DTYPE_COUNT] = {
    [R_SUM] = ALL_TABLE(row, sum),       [R_PROD] = ALL_TABLE(row, prod),
    [R_MAX] = ALL_TABLE(row, max),       [R_MIN] = ALL_TABLE(row, min),
    [R_ARGMAX] = ALL_TABLE(row, argmax), [R_ARGMIN] = ALL_TABLE(row, argmin),
    [R_LSE] = FLOAT_TABLE(row, lse),
};

static const col_fn col_table[R_NOPS][SP_DTYPE_COUNT] = {
    [R_SUM] = ALL_TABLE(col, sum),       [R_PROD] = ALL_TABLE(col, prod),
    [R_MAX] = ALL_TABLE(col, max),       [R_MIN] = ALL_TABLE(col, min),
    [R_ARGMAX] = ALL_TABLE(col, argmax), [R_ARGMIN] = ALL_TABLE(col, argmin),
    [R_LSE] = FLOAT_TABLE(col, lse),
};

/* ---- the plan ------------------------------------------------------------- */

typedef struct rplan {
    int op, isf, fin;
    size_t es;
    const char *base;
    int nk, nr;
    int64_t ksh[SP_MAX_DIMS], kst[SP_MAX_DIMS];                    /* kept, output order */
    int64_t rsh[SP_MAX_DIMS], rst[SP_MAX_DIMS], rlin[SP_MAX_DIMS]; /* reduced */
    int64_t M, N;
    int column;
    int64_t J, sj, njb, W;          /* COLUMN: last kept dim, its blocks, block width */
    int64_t units, nchunks, clen;   /* work units, R-space chunks, chunk length */
    racc *partial;                  /* [units][nchunks][W] when nchunks > 1 */
    const double *shift;            /* logsumexp: the max of every output */
    double *dsink;                  /* F_SHIFT: where the max pass writes */
    char *optr;
    sp_dtype odt;
    size_t oes;
    row_fn rowf;
    col_fn colf;
} rplan;

static int64_t red_abs(int64_t v) { return v < 0 ? -v : v; }

static void acc_init(int op, racc *a) {
    a->arg = -1;
    switch (op) {
    case R_PROD: a->d = 1, a->i = 1; break;
    case R_MAX: a->d = -INFINITY, a->i = INT64_MIN; break;
    case R_MIN: a->d = INFINITY, a->i = INT64_MAX; break;
    default: a->d = 0, a->i = 0; break;
    }
}

/* a = a (+) b, b covering later R-space chunks than a. */
static void acc_merge(const rplan *P, racc *a, const racc *b) {
    switch (P->op) {
    case R_SUM:
    case R_LSE:
        a->d += b->d;
        a->i = (int64_t)((uint64_t)a->i + (uint64_t)b->i);
        break;
    case R_PROD:
        a->d *= b->d;
        a->i = (int64_t)((uint64_t)a->i * (uint64_t)b->i);
        break;
    case R_MAX:
        a->d = (b->d > a->d || b->d != b->d) && a->d == a->d ? b->d : a->d;
        a->i = b->i > a->i ? b->i : a->i;
        break;
    case R_MIN:
        a->d = (b->d < a->d || b->d != b->d) && a->d == a->d ? b->d : a->d;
        a->i = b->i < a->i ? b->i : a->i;
        break;
    default: { /* argmax, argmin */
        int max = P->op == R_ARGMAX;
        if (b->arg < 0) break;
        if (a->arg < 0 || (P->isf ? better_f(max, b->d, b->arg, a->d, a->arg)
                                  : better_i(max, b->i, b->arg, a->i, a->arg)))
            *a = *b;
    }
    }
}

static void acc_finish(const rplan *P, int64_t o, const racc *a) {
    char *p = P->optr + (size_t)o * P->oes;
    switch (P->fin) {
    case F_PLAIN:
        if (P->isf)
            sp_store_f64(P->odt, p, a->d);
        else
            sp_store_i64(P->odt, p, a->i);
        break;
    case F_MEAN: sp_store_f64(P->odt, p, (P->isf ? a->d : (double)a->i) / (double)P->N); break;
    case F_ARG: sp_store_i64(P->odt, p, a->arg); break;
    case F_LSE: {
        double m = P->shift[o];
        sp_store_f64(P->odt, p, isfinite(m) ? m + log(a->d) : m);
        break;
    }
    default: P->dsink[o] = P->isf ? a->d : (double)a->i; break;
    }
}

/* Folds R-space elements [r0, r1) of the output whose kept offset is at p0
 * into acc (ROW shape). */
static void row_range(const rplan *P, const char *p0, int64_t r0, int64_t r1, racc *acc,
                      double shift) {
    int nr = P->nr, last = nr - 1;
    int64_t ridx[SP_MAX_DIMS], roff = 0, lin = 0, rem = r0;
    for (int k = last; k >= 0; k--) {
        ridx[k] = rem % P->rsh[k];
        rem /= P->rsh[k];
        roff += ridx[k] * P->rst[k];
        lin += ridx[k] * P->rlin[k];
    }
    int64_t L = P->rsh[last], sl = P->rst[last], ll = P->rlin[last];
    for (int64_t r = r0; r < r1;) {
        int64_t pos = ridx[last], len = L - pos < r1 - r ? L - pos : r1 - r;
        P->rowf(p0 + (ptrdiff_t)roff * (ptrdiff_t)P->es, sl, len, acc, lin, ll, shift);
        r += len;
        if (r >= r1) break;
        roff -= pos * sl, lin -= pos * ll, ridx[last] = 0;
        for (int k = last - 1; k >= 0; k--) {
            ridx[k]++, roff += P->rst[k], lin += P->rlin[k];
            if (ridx[k] < P->rsh[k]) break;
            roff -= P->rst[k] * P->rsh[k], lin -= P->rlin[k] * P->rsh[k], ridx[k] = 0;
        }
    }
}

static void row_task(void *ctx, int64_t b, int64_t e) {
    const rplan *P = ctx;
    int64_t C = P->nchunks, u = b / C, c = b % C, kidx[SP_MAX_DIMS], koff = 0, rem = u;
    for (int k = P->nk - 1; k >= 0; k--) {
        kidx[k] = rem % P->ksh[k];
        rem /= P->ksh[k];
        koff += kidx[k] * P->kst[k];
    }
    for (int64_t t = b; t < e; t++) {
        racc acc;
        acc_init(P->op, &acc);
        int64_t r0 = c * P->clen, r1 = r0 + P->clen < P->N ? r0 + P->clen : P->N;
        row_range(P, P->base + (ptrdiff_t)koff * (ptrdiff_t)P->es, r0, r1, &acc,
                  P->shift ? P->shift[u] : 0.0);
        if (C == 1)
            acc_finish(P, u, &acc);
        else
            P->partial[u * C + c] = acc;
        if (++c == C) {
            c = 0, u++;
            for (int k = P->nk - 1; k >= 0; k--) {
                kidx[k]++, koff += P->kst[k];
                if (kidx[k] < P->ksh[k]) break;
                koff -= P->kst[k] * P->ksh[k], kidx[k] = 0;
            }
        }
    }
}

static void col_task(void *ctx, int64_t b, int64_t e) {
    const rplan *P = ctx;
    double ad[JB];
    int64_t ai[JB], aarg[JB];
    for (int64_t t = b; t < e; t++) {
        int64_t C = P->nchunks, u = t / C, c = t % C, ko = u / P->njb, jb = u % P->njb;
        int64_t j0 = jb * JB, w = P->J - j0 < JB ? P->J - j0 : JB, o0 = ko * P->J + j0;
        int64_t koff = j0 * P->sj, rem = ko;
        for (int k = P->nk - 2; k >= 0; k--) {
            koff += (rem % P->ksh[k]) * P->kst[k];
            rem /= P->ksh[k];
        }
        racc init;
        acc_init(P->op, &init);
        for (int64_t j = 0; j < w; j++) ad[j] = init.d, ai[j] = init.i, aarg[j] = -1;
        int64_t r0 = c * P->clen, r1 = r0 + P->clen < P->N ? r0 + P->clen : P->N;
        int64_t ridx[SP_MAX_DIMS], roff = 0, lin = 0;
        rem = r0;
        for (int k = P->nr - 1; k >= 0; k--) {
            ridx[k] = rem % P->rsh[k];
            rem /= P->rsh[k];
            roff += ridx[k] * P->rst[k];
            lin += ridx[k] * P->rlin[k];
        }
        const double *sh = P->shift ? P->shift + o0 : NULL;
        for (int64_t r = r0; r < r1; r++) {
            P->colf(P->base + (ptrdiff_t)(koff + roff) * (ptrdiff_t)P->es, P->sj, w, ad, ai, aarg,
                    lin, sh);
            for (int k = P->nr - 1; k >= 0; k--) {
                ridx[k]++, roff += P->rst[k], lin += P->rlin[k];
                if (ridx[k] < P->rsh[k]) break;
                roff -= P->rst[k] * P->rsh[k], lin -= P->rlin[k] * P->rsh[k], ridx[k] = 0;
            }
        }
        for (int64_t j = 0; j < w; j++) {
            racc acc = {ad[j], ai[j], aarg[j]};
            if (C == 1)
                acc_finish(P, o0 + j, &acc);
            else
                P->partial[(u * C + c) * P->W + j] = acc;
        }
    }
}

/* Splits x's dims into kept and reduced (red[i] != 0) and simplifies them. */
static void plan_dims(rplan *P, const sp_tensor *x, const int *red) {
    int nd = x->ndim;
    int64_t lin = 1, rl[SP_MAX_DIMS];
    P->M = P->N = 1;
    for (int i = nd - 1; i >= 0; i--) {
        if (!red[i]) continue;
        rl[i] = lin;
        lin *= x->shape[i];
    }
    P->nk = P->nr = 0;
    for (int i = 0; i < nd; i++) {
        int64_t n = x->shape[i], s = x->strides[i];
        if (red[i])
            P->N *= n;
        else
            P->M *= n;
        if (n == 1) continue;
        if (!red[i]) {
            if (P->nk > 0 && P->kst[P->nk - 1] == s * n) {
                P->ksh[P->nk - 1] *= n, P->kst[P->nk - 1] = s;
            } else {
                P->ksh[P->nk] = n, P->kst[P->nk] = s, P->nk++;
            }
        } else {
            int j = P->nr++; /* insert, keeping |stride| decreasing (stable) */
            while (j > 0 && red_abs(P->rst[j - 1]) < red_abs(s)) {
                P->rsh[j] = P->rsh[j - 1], P->rst[j] = P->rst[j - 1], P->rlin[j] = P->rlin[j - 1];
                j--;
            }
            P->rsh[j] = n, P->rst[j] = s, P->rlin[j] = rl[i];
        }
    }
    int m = 0; /* merge reduced dims contiguous in memory and in the R-space */
    for (int i = 1; i < P->nr; i++) {
        if (P->rst[m] == P->rst[i] * P->rsh[i] && P->rlin[m] == P->rlin[i] * P->rsh[i]) {
            P->rsh[m] *= P->rsh[i], P->rst[m] = P->rst[i], P->rlin[m] = P->rlin[i];
        } else {
            m++;
            P->rsh[m] = P->rsh[i], P->rst[m] = P->rst[i], P->rlin[m] = P->rlin[i];
        }
    }
    if (P->nr > 0) P->nr = m + 1;
    if (P->nr == 0) P->rsh[0] = 1, P->rst[0] = 0, P->rlin[0] = 0, P->nr = 1;
    P->column = P->nk > 0 && red_abs(P->kst[P->nk - 1]) < red_abs(P->rst[P->nr - 1]);
}

/* Runs the planned reduction (M > 0, N > 0) and writes every output. */
static sp_status plan_run(rplan *P, const char *name) {
    int64_t w;
    if (P->column) {
        P->J = P->ksh[P->nk - 1], P->sj = P->kst[P->nk - 1];
        P->njb = (P->J + JB - 1) / JB;
        P->W = w = P->J < JB ? P->J : JB;
        P->units = (P->M / P->J) * P->njb;
    } else {
        P->W = w = 1;
        P->units = P->M;
    }
    int64_t C = 1;
    if (P->units < 64 && P->N * w >= 2 * CHUNK_WORK) {
        int64_t cap = MAX_PARTIAL / (P->units * w), steps = CHUNK_WORK / w;
        C = P->N / (steps > 0 ? steps : 1);
        if (C > cap) C = cap;
        if (C < 1) C = 1;
    }
    P->clen = (P->N + C - 1) / C;
    P->nchunks = C = (P->N + P->clen - 1) / P->clen;
    P->partial = NULL;
    if (C > 1) {
        P->partial = malloc((size_t)(P->units * C * w) * sizeof *P->partial);
        if (!P->partial) return sp_error(SP_ERR_NOMEM, "%s: out of memory for partial results", name);
    }
    int64_t work = w * P->clen;
    sp_parallel_for(P->units * C, work >= GRAIN_WORK ? 1 : GRAIN_WORK / work,
                    P->column ? col_task : row_task, P);
    if (C > 1) {
        for (int64_t u = 0; u < P->units; u++) {
            int64_t o0 = u, wu = 1;
            if (P->column) {
                int64_t j0 = (u % P->njb) * JB;
                o0 = (u / P->njb) * P->J + j0;
                wu = P->J - j0 < JB ? P->J - j0 : JB;
            }
            for (int64_t j = 0; j < wu; j++) {
                racc acc = P->partial[(u * C) * w + j];
                for (int64_t c = 1; c < C; c++) acc_merge(P, &acc, &P->partial[(u * C + c) * w + j]);
                acc_finish(P, o0 + j, &acc);
            }
        }
        free(P->partial);
    }
    return SP_OK;
}

/* ---- the reduction kernels ---------------------------------------------- */

static sp_status red_axes_str_error(const char *name, const sp_tensor *x, const char *what) {
    char s[128];
    return sp_error(SP_ERR_SHAPE, "%s: %s in shape %s", name, what,
                    sp_shape_str(x->ndim, x->shape, s, sizeof s));
}

/* Reduces a->in[0] over the axes flagged in red[] with op, finishing each
 * output with fin, into a->out[0]. */
static sp_status reduce_run(const sp_kernel_args *a, const char *name, int op, int fin,
                            const int *red, int keepdims) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "%s: kernel called with %d inputs and %d outputs", name,
                        a->n_in, a->n_out);
    sp_tensor *x = a->in[0], *y = a->out[0];
    int64_t shape[SP_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!red[i])
            shape[nd++] = x->shape[i];
        else if (keepdims)
            shape[nd++] = 1;
    int same = y->ndim == nd;
    for (int i = 0; same && i < nd; i++) same = y->shape[i] == shape[i];
    if (!same) {
        char s1[128], s2[128];
        return sp_error(SP_ERR_INTERNAL, "%s: output shape %s does not match the computed %s",
                        name, sp_shape_str(y->ndim, y->shape, s1, sizeof s1),
                        sp_shape_str(nd, shape, s2, sizeof s2));
    }
    rplan P;
    memset(&P, 0, sizeof P);
    P.isf = sp_dtype_is_float(x->dtype);
    P.es = sp_dtype_size(x->dtype);
    P.base = sp_tensor_data(x);
    P.optr = sp_tensor_data(y);
    P.odt = y->dtype;
    P.oes = sp_dtype_size(y->dtype);
    if ((int)x->dtype < 0 || x->dtype >= SP_DTYPE_COUNT || !row_table[op][x->dtype] ||
        (fin == F_MEAN && !P.isf))
        return sp_error(SP_ERR_DTYPE, "%s: no kernel for dtype %s", name,
                        sp_dtype_name(x->dtype));
    plan_dims(&P, x, red);
    if (P.M == 0) return SP_OK;
    if (P.N == 0) {
        if (op != R_SUM && op != R_PROD && op != R_LSE)
            return red_axes_str_error(name, x, "cannot reduce over an empty axis");
        racc acc;
        acc_init(op, &acc);
        for (int64_t o = 0; o < P.M; o++) {
            if (op == R_LSE)
                sp_store_f64(P.odt, P.optr + (size_t)o * P.oes, -INFINITY);
            else
                P.fin = fin, acc_finish(&P, o, &acc);
        }
        return SP_OK;
    }
    double *shift = NULL;
    if (op == R_LSE) { /* the max pass */
        shift = malloc((size_t)P.M * sizeof *shift);
        if (!shift) return sp_error(SP_ERR_NOMEM, "%s: out of memory", name);
        P.op = R_MAX, P.fin = F_SHIFT, P.dsink = shift;
        P.rowf = row_table[R_MAX][x->dtype], P.colf = col_table[R_MAX][x->dtype];
        sp_status st = plan_run(&P, name);
        if (st) {
            free(shift);
            return st;
        }
        P.shift = shift;
    }
    P.op = op, P.fin = fin;
    P.rowf = row_table[op][x->dtype], P.colf = col_table[op][x->dtype];
    sp_status st = plan_run(&P, name);
    free(shift);
    return st;
}

/* The reduced-axis flags from the `axes` attribute (absent or empty: all). */
static sp_status red_axes(const sp_kernel_args *a, const char *name, int *red) {
    int nd = a->in[0]->ndim, n = 0;
    const int64_t *axes = sp_attrs_get_ints(a->attrs, "axes", &n);
    memset(red, 0, sizeof(int) * SP_MAX_DIMS);
    if (!axes || n == 0) {
        for (int i = 0; i < nd; i++) red[i] = 1;
        return SP_OK;
    }
    for (int k = 0; k < n; k++) {
        int64_t ax = axes[k];
        if (ax < -nd || ax >= nd)
            return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", name,
                            (long long)ax, nd);
        if (ax < 0) ax += nd;
        if (red[ax]++)
            return sp_error(SP_ERR_ARG, "%s: axis %lld is repeated in axes", name,
                            (long long)axes[k]);
    }
    return SP_OK;
}

static sp_status reduce_kernel(const sp_kernel_args *a, const char *name, int op, int fin) {
    int red[SP_MAX_DIMS];
    if (a->n_in < 1) return sp_error(SP_ERR_INTERNAL, "%s: no input", name);
    sp_status st = red_axes(a, name, red);
    if (st) return st;
    return reduce_run(a, name, op, fin, red, sp_attrs_get_int(a->attrs, "keepdims", 0) != 0);
}

sp_status cpu_sum(const sp_kernel_args *a) { return reduce_kernel(a, "sum", R_SUM, F_PLAIN); }
sp_status cpu_mean(const sp_kernel_args *a) { return reduce_kernel(a, "mean", R_SUM, F_MEAN); }
sp_status cpu_max(const sp_kernel_args *a) { return reduce_kernel(a, "max", R_MAX, F_PLAIN); }
sp_status cpu_min(const sp_kernel_args *a) { return reduce_kernel(a, "min", R_MIN, F_PLAIN); }
sp_status cpu_prod(const sp_kernel_args *a) { return reduce_kernel(a, "prod", R_PROD, F_PLAIN); }
sp_status cpu_logsumexp(const sp_kernel_args *a) {
    return reduce_kernel(a, "logsumexp", R_LSE, F_LSE);
}

static sp_status arg_kernel(const sp_kernel_args *a, const char *name, int op) {
    int red[SP_MAX_DIMS] = {0};
    if (a->n_in < 1) return sp_error(SP_ERR_INTERNAL, "%s: no input", name);
    int nd = a->in[0]->ndim;
    if (sp_attrs_find(a->attrs, "axis")) {
        int64_t ax = sp_attrs_get_int(a->attrs, "axis", 0);
        if (ax < -nd || ax >= nd)
            return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", name,
                            (long long)ax, nd);
        red[ax < 0 ? ax + nd : ax] = 1;
    } else {
        for (int i = 0; i < nd; i++) red[i] = 1;
    }
    return reduce_run(a, name, op, F_ARG, red, sp_attrs_get_int(a->attrs, "keepdims", 0) != 0);
}

sp_status cpu_argmax(const sp_kernel_args *a) { return arg_kernel(a, "argmax", R_ARGMAX); }
sp_status cpu_argmin(const sp_kernel_args *a) { return arg_kernel(a, "argmin", R_ARGMIN); }

/* ---- cumsum --------------------------------------------------------------
 * Work units are the lines along the axis, JB of them at a time when the
 * axis is not the last dim (a block of neighbouring lines is one
 * vectorizable pass per step).  Each line is scanned in order by one
 * thread, so the result never depends on the thread count. */

typedef struct cum_ctx {
    const sp_tensor *x;
    sp_tensor *y;
    int nu; /* unit dims: every dim but the axis and the block dim */
    int64_t ush[SP_MAX_DIMS], ust[SP_MAX_DIMS], uost[SP_MAX_DIMS];
    int64_t L, sa, oa; /* the axis: length, input and output strides */
    int64_t J, sj, njb;
} cum_ctx;

static void cum_task(void *ctx, int64_t b, int64_t e) {
    const cum_ctx *c = ctx;
    sp_dtype xd = c->x->dtype, yd = c->y->dtype;
    size_t xes = sp_dtype_size(xd), yes = sp_dtype_size(yd);
    int isf = sp_dtype_is_float(xd);
    double ad[JB];
    uint64_t ai[JB];
    for (int64_t u = b; u < e; u++) {
        int64_t ui = u / c->njb, j0 = (u % c->njb) * JB, ioff = j0 * c->sj, ooff = j0;
        int64_t w = c->J - j0 < JB ? c->J - j0 : JB;
        for (int k = c->nu - 1; k >= 0; k--) {
            int64_t i = ui % c->ush[k];
            ui /= c->ush[k];
            ioff += i * c->ust[k];
            ooff += i * c->uost[k];
        }
        const char *xp = (const char *)sp_tensor_data(c->x) + (ptrdiff_t)ioff * (ptrdiff_t)xes;
        char *yp = (char *)sp_tensor_data(c->y) + (size_t)ooff * yes;
        for (int64_t j = 0; j < w; j++) ad[j] = 0, ai[j] = 0;
        for (int64_t k = 0; k < c->L; k++) {
            const char *xr = xp + (ptrdiff_t)(k * c->sa) * (ptrdiff_t)xes;
            char *yr = yp + (size_t)(k * c->oa) * yes;
            if (xd == SP_F32 && yd == SP_F32) {
                for (int64_t j = 0; j < w; j++) {
                    ad[j] += ((const float *)xr)[j * c->sj];
                    ((float *)yr)[j] = (float)ad[j];
                }
            } else if (xd == SP_F64 && yd == SP_F64) {
                for (int64_t j = 0; j < w; j++) {
                    ad[j] += ((const double *)xr)[j * c->sj];
                    ((double *)yr)[j] = ad[j];
                }
            } else if (isf) {
                for (int64_t j = 0; j < w; j++) {
                    ad[j] += sp_load_f64(xd, xr + (ptrdiff_t)(j * c->sj) * (ptrdiff_t)xes);
                    sp_store_f64(yd, yr + (size_t)j * yes, ad[j]);
                }
            } else {
                for (int64_t j = 0; j < w; j++) {
                    ai[j] += (uint64_t)sp_load_i64(xd, xr + (ptrdiff_t)(j * c->sj) * (ptrdiff_t)xes);
                    sp_store_i64(yd, yr + (size_t)j * yes, (int64_t)ai[j]);
                }
            }
        }
    }
}

sp_status cpu_cumsum(const sp_kernel_args *a) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "cumsum: kernel called with %d inputs and %d outputs",
                        a->n_in, a->n_out);
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim;
    int same = y->ndim == nd;
    for (int i = 0; same && i < nd; i++) same = y->shape[i] == x->shape[i];
    if (!same) {
        char s1[128], s2[128];
        return sp_error(SP_ERR_INTERNAL, "cumsum: output shape %s does not match input %s",
                        sp_shape_str(y->ndim, y->shape, s1, sizeof s1),
                        sp_shape_str(nd, x->shape, s2, sizeof s2));
    }
    if (sp_tensor_numel(x) == 0) return SP_OK;
    cum_ctx c = {.x = x, .y = y};
    if (nd == 0) { /* one element: the sum of itself */
        c.L = 1, c.J = 1, c.njb = 1;
        cum_task(&c, 0, 1);
        return SP_OK;
    }
    int64_t ax = sp_attrs_get_int(a->attrs, "axis", 0);
    if (ax < -nd || ax >= nd)
        return sp_error(SP_ERR_ARG, "cumsum: axis %lld out of range for %d dims", (long long)ax,
                        nd);
    if (ax < 0) ax += nd;
    int64_t ost[SP_MAX_DIMS] = {0}, units = 1, s = 1;
    for (int i = nd - 1; i >= 0; i--) ost[i] = s, s *= y->shape[i];
    c.L = x->shape[ax], c.sa = x->strides[ax], c.oa = ost[ax];
    int jdim = ax == nd - 1 ? -1 : nd - 1;
    c.J = jdim < 0 ? 1 : x->shape[jdim];
    c.sj = jdim < 0 ? 0 : x->strides[jdim];
    c.njb = (c.J + JB - 1) / JB;
    for (int i = 0; i < nd; i++) {
        if (i == ax || i == jdim) continue;
        c.ush[c.nu] = x->shape[i], c.ust[c.nu] = x->strides[i], c.uost[c.nu] = ost[i];
        units *= x->shape[i];
        c.nu++;
    }
    units *= c.njb;
    int64_t work = c.L * (c.J < JB ? c.J : JB);
    sp_parallel_for(units, work >= GRAIN_WORK ? 1 : GRAIN_WORK / work, cum_task, &c);
    return SP_OK;
}
