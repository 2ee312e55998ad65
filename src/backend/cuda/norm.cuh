/*
 * norm.cuh -- what the normalization kernels (norm.cu: batch norm;
 * layer_norm.cu: layer norm) share: the small per-feature and per-channel
 * side vectors and the checks of their sizes.
 *
 * Data inputs (x, dy) are made contiguous before the kernels see them, but
 * the side vectors (gamma, beta, saved mean and rstd, running statistics)
 * are read and written where they are, through an nm_vec: a base pointer,
 * one stride and a dtype, each element converted to and from double.  They
 * are small (one value per feature, row or channel), so the conversion
 * costs nothing next to the rows, and any float dtype works for them.
 */
#ifndef SPORE_CUDA_NORM_CUH
#define SPORE_CUDA_NORM_CUH

#include "backend/cuda/rows.cuh"

/* A 1-D side vector on the device: element 0, stride, dtype. */
typedef struct nm_vec {
    void *p;
    int64_t st;
    int dt;
} nm_vec;

/* The vector of t's elements along its last axis (its stride kept). */
static inline nm_vec nm_vec_of(const sp_tensor *t) {
    nm_vec v;
    v.p = (char *)t->buf->data + t->offset * (int64_t)sp_dtype_size(t->dtype);
    v.st = t->ndim > 0 ? t->strides[t->ndim - 1] : 0;
    v.dt = t->dtype;
    return v;
}

/* A contiguous t of any shape (gamma over a multi-dim tail) read plainly. */
static inline nm_vec nm_vec_flat(const sp_tensor *t) {
    nm_vec v = nm_vec_of(t);
    v.st = 1;
    return v;
}

__device__ __forceinline__ double nm_ld(nm_vec v, int64_t i) { return cuda_nn_ld(v.p, v.dt, i * v.st); }
__device__ __forceinline__ void nm_st(nm_vec v, int64_t i, double x) { cuda_nn_st(v.p, v.dt, i * v.st, x); }

/* Threads of a block that reduces n values (32..512, a power of two). */
static inline int nm_threads(int64_t n) {
    int t = 32;
    while (t < 512 && t < n) t <<= 1;
    return t;
}

/* A grid of one block per row (kernels loop past 2^30 rows). */
static inline unsigned nm_grid(int64_t rows) {
    return (unsigned)(rows < (1 << 30) ? (rows > 0 ? rows : 1) : (1 << 30));
}

/* Fails with a message naming `what` unless t has n elements (the guard
 * of every raw-memory loop over a side vector). */
static inline sp_status nm_need(const char *op, const char *what, const sp_tensor *t, int64_t n) {
    char sb[128];
    if (sp_tensor_numel(t) != n)
        return sp_error(SP_ERR_SHAPE, "%s: %s of shape %s should have %lld elements", op, what,
                        sp_shape_str(t->ndim, t->shape, sb, sizeof sb), (long long)n);
    return SP_OK;
}

/* The first element of a contiguous t. */
template <typename T> static inline const T *nm_ptr(const sp_tensor *t) {
    return (const T *)t->buf->data + t->offset;
}

#endif
