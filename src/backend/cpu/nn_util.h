/*
 * nn_util.h -- small helpers shared by the CPU kernels of the neural-network
 * family: softmax.c, norm.c, nn.c and optim.c.
 *
 * These kernels do real arithmetic on rows (a softmax row, a normalized row,
 * a channel), so instead of walking arbitrary strides in every inner loop
 * they first make their data inputs contiguous (sp_tensor_contiguous gives
 * back the tensor itself, retained, when it already is, so the common case
 * costs nothing) and then run plain indexed loops the compiler vectorizes.
 *
 * float16 and bfloat16 are widened to float32 (a staged float32 copy of the
 * input, cpu_nn_stage_in/out/done, or a scratch row), computed in float32
 * and rounded once on the way out (ops.def's rule); float32 is used in
 * place; float64 has its own double-precision path.  Statistics
 * (sums, means, variances) accumulate in double, in a fixed order that does
 * not depend on the thread count, so every kernel of the family gives
 * bit-identical results with any number of threads.
 *
 * Work inside sp_parallel_for cannot return a status, so range functions
 * that allocate scratch record a failure in a flag of their context and the
 * kernel turns it into SP_ERR_NOMEM after the loop.
 */
#ifndef SPORE_CPU_NN_UTIL_H
#define SPORE_CPU_NN_UTIL_H

#include <stdlib.h>

#include "backend/cpu/cpu.h"

/* Elements of work below which a parallel loop runs inline: big enough that
 * waking the pool pays for itself. */
#define CPU_NN_GRAIN_ELEMS 32768

/* Rows per chunk so that a chunk holds about CPU_NN_GRAIN_ELEMS elements of
 * rows `row_len` long.  Cannot fail; at least 1. */
static inline int64_t cpu_nn_grain(int64_t row_len) {
    if (row_len < 1) row_len = 1;
    int64_t g = CPU_NN_GRAIN_ELEMS / row_len;
    return g < 1 ? 1 : g;
}

/* Widens n elements of float dtype d at src (contiguous) into dst.  d is
 * f32, f16, bf16 or f64 (f64 narrows to float).  Cannot fail. */
static inline void cpu_nn_load_f32(sp_dtype d, const void *src, int64_t n, float *dst) {
    switch (d) {
    case SP_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case SP_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = sp_f16_to_f32(((const sp_f16 *)src)[i]);
        break;
    case SP_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = sp_bf16_to_f32(((const sp_bf16 *)src)[i]);
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            dst[i] = (float)sp_load_f64(d, (const char *)src + (size_t)i * sp_dtype_size(d));
        break;
    }
}

/* Rounds n floats at src into dtype d at dst (contiguous).  Cannot fail. */
static inline void cpu_nn_store_f32(sp_dtype d, void *dst, const float *src, int64_t n) {
    switch (d) {
    case SP_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case SP_F16:
        for (int64_t i = 0; i < n; i++) ((sp_f16 *)dst)[i] = sp_f32_to_f16(src[i]);
        break;
    case SP_BF16:
        for (int64_t i = 0; i < n; i++) ((sp_bf16 *)dst)[i] = sp_f32_to_bf16(src[i]);
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            sp_store_f64(d, (char *)dst + (size_t)i * sp_dtype_size(d), src[i]);
        break;
    }
}

/* Element i of a 1-D (or 0-d) tensor of any dtype and stride, as a double.
 * The caller has checked the bounds.  Cannot fail. */
static inline double cpu_nn_at(const sp_tensor *t, int64_t i) {
    int64_t st = t->ndim > 0 ? t->strides[t->ndim - 1] : 0;
    return sp_load_f64(t->dtype, (const char *)sp_tensor_data(t) +
                                     (size_t)(i * st) * sp_dtype_size(t->dtype));
}

/* Pointer to element i of a 1-D (or 0-d) tensor of any stride. */
static inline void *cpu_nn_ptr(const sp_tensor *t, int64_t i) {
    int64_t st = t->ndim > 0 ? t->strides[t->ndim - 1] : 0;
    return (char *)sp_tensor_data(t) + (i * st) * (int64_t)sp_dtype_size(t->dtype);
}

/* Product of shape[lo:hi]; 1 for an empty range. */
static inline int64_t cpu_nn_prod(const int64_t *shape, int lo, int hi) {
    int64_t p = 1;
    for (int i = lo; i < hi; i++) p *= shape[i];
    return p;
}

/* Reads an index tensor's element i (contiguous) as int64.  Cannot fail. */
static inline int64_t cpu_nn_index(const sp_tensor *t, const void *data, int64_t i) {
    switch (t->dtype) {
    case SP_I32:
        return ((const int32_t *)data)[i];
    case SP_I64:
        return ((const int64_t *)data)[i];
    default:
        return sp_load_i64(t->dtype, (const char *)data + (size_t)i * sp_dtype_size(t->dtype));
    }
}

/* ---- staging: the kernels compute in float32 or float64 only ---- */

/* A contiguous version of t the float32/float64 code can read: t itself
 * (retained) or a copy, widened to float32 for float16/bfloat16.  The
 * caller releases *out.  Fails (with a message) only for lack of memory. */
static inline sp_status cpu_nn_stage_in(sp_tensor *t, sp_tensor **out) {
    if (t->dtype == SP_F16 || t->dtype == SP_BF16) return sp_tensor_cast(t, SP_F32, out);
    return sp_tensor_contiguous(t, out);
}

/* Where the working code writes output t: t itself (retained) or a float32
 * scratch tensor of t's shape for float16/bfloat16; cpu_nn_stage_done
 * finishes it. */
static inline sp_status cpu_nn_stage_out(sp_tensor *t, sp_tensor **out) {
    if (t->dtype == SP_F16 || t->dtype == SP_BF16) {
        *out = sp_tensor_new(SP_F32, t->ndim, t->shape, SP_CPU);
        return *out ? SP_OK : sp_last_status();
    }
    sp_tensor_retain(t);
    *out = t;
    return SP_OK;
}

/* Rounds a float32 scratch output into the real one (once) and drops the
 * scratch; `work` may be NULL (nothing staged).  Returns st when st is an
 * error already, so `st = cpu_nn_stage_done(t, w, st)` keeps the first. */
static inline sp_status cpu_nn_stage_done(sp_tensor *t, sp_tensor *work, sp_status st) {
    if (work && work != t && st == SP_OK) st = sp_tensor_copy_into(t, work);
    sp_tensor_release(work);
    return st;
}

/* ---- vectorizable float32 helpers ----
 * Written as eight independent lanes (or as branch-free selects) so that
 * gcc and clang vectorize them at -O3 without -ffast-math, while the order
 * of every sum stays fixed by the code, not by the thread count. */

/* exp(x) in float32, within 1 ulp of expf on [-87, 88] (Cephes' polynomial
 * after the reduction x = n*ln2 + r); 0 below -87 (exp(-87) is 1.6e-38, so
 * softmax and logsumexp cannot tell), inf above 88.72, NaN for NaN.  Its
 * selects vectorize only when the compiler may drop FP-trap semantics:
 * files that want it vectorized say `#pragma GCC optimize
 * ("no-trapping-math")` under gcc (clang does not trap by default). */
static inline float cpu_nn_expf(float x) {
    float xc = x >= -87.0f ? x : -87.0f; /* NaN -> -87: keeps the int conversion defined */
    xc = xc <= 88.5f ? xc : 88.5f;
    float nf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round to nearest */
    int32_t n = (int32_t)nf;
    n = n > 127 ? 127 : n;
    nf = (float)n;
    float r = xc - nf * 0.693359375f - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } sc = {.i = (n + 127) * (1 << 23)}; /* 2^n, n in [-126, 127] */
    float res = p * sc.f;
    res = x >= -87.0f ? res : 0.0f;
    res = x > 88.72283f ? INFINITY : res;
    return x != x ? x : res;
}

/* max of x[0..n-1], NaN skipped; -inf for n == 0 or all NaN. */
static inline float cpu_nn_max_f32(const float *x, int64_t n) {
    float acc[8];
    for (int j = 0; j < 8; j++) acc[j] = -INFINITY;
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) acc[j] = x[k + j] > acc[j] ? x[k + j] : acc[j];
    float m = -INFINITY;
    for (int j = 0; j < 8; j++) m = acc[j] > m ? acc[j] : m;
    for (; k < n; k++) m = x[k] > m ? x[k] : m;
    return m;
}

#endif
