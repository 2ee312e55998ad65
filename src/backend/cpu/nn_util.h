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
 * float16 and bfloat16 rows are widened to float32 scratch, computed in
 * float32 and rounded once on the way out (ops.def's rule); float32 rows are
 * used in place; float64 has its own double-precision path.  Statistics
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
    case SP_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case SP_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = sp_f16_to_f32(((const sp_f16 *)src)[i]);
        break;
    case SP_BF16:
        for (int64_t i = 0; i < n; i++) dst[i] = sp_bf16_to_f32(((const sp_bf16 *)src)[i]);
        break;
    default:
        for (int64_t i = 0; i < n; i++) dst[i] = (float)sp_load_f64(d, (const char *)src + (size_t)i * sp_dtype_size(d));
        break;
    }
}

/* Rounds n floats at src into dtype d at dst (contiguous).  Cannot fail. */
static inline void cpu_nn_store_f32(sp_dtype d, void *dst, const float *src, int64_t n) {
    switch (d) {
    case SP_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case SP_F16:
        for (int64_t i = 0; i < n; i++) ((sp_f16 *)dst)[i] = sp_f32_to_f16(src[i]);
        break;
    case SP_BF16:
        for (int64_t i = 0; i < n; i++) ((sp_bf16 *)dst)[i] = sp_f32_to_bf16(src[i]);
        break;
    default:
        for (int64_t i = 0; i < n; i++) sp_store_f64(d, (char *)dst + (size_t)i * sp_dtype_size(d), src[i]);
        break;
    }
}

/* Element i of a 1-D (or 0-d) tensor of any dtype and stride, as a double.
 * The caller has checked the bounds.  Cannot fail. */
static inline double cpu_nn_at(const sp_tensor *t, int64_t i) {
    int64_t st = t->ndim > 0 ? t->strides[t->ndim - 1] : 0;
    return sp_load_f64(t->dtype, (const char *)sp_tensor_data(t) + (size_t)(i * st) * sp_dtype_size(t->dtype));
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
    case SP_I32: return ((const int32_t *)data)[i];
    case SP_I64: return ((const int64_t *)data)[i];
    default: return sp_load_i64(t->dtype, (const char *)data + (size_t)i * sp_dtype_size(t->dtype));
    }
}

#endif
