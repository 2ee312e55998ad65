/*
 * nn.cu -- dropout and embedding (forward and backward) on the GPU.
 *
 * Dropout draws exactly the numbers the CPU does (cpu/nn.c, core/philox.h):
 * element i takes lane i%4 of Philox 4x32-10 block i/4 at (seed, offset) and
 * is kept iff that uint32 x satisfies x >= ceil(p * 2^32), the exact form of
 * x * 2^-32 >= p.  The Philox rounds below repeat core/philox.h literally,
 * so a seed gives the same mask on both devices.  One thread draws one
 * block (four elements).  Kept elements become x * (1/(1-p)) computed in
 * double and rounded once to the dtype (for float16/bfloat16 through float,
 * as the CPU); dropped ones are exactly 0.
 *
 * Embedding gathers rows of weight [V, D] (one thread per output element).
 * An index outside [0, V) is reported through the backend's error slot
 * (cuda.h: cuda_err_slot / cuda_err_check) with the CPU's message; the
 * offending row is written as zeros instead of read out of bounds.
 *
 * The backward must add the rows of dout that share an index.  To be
 * deterministic it does what the CPU does with a counting sort, using a
 * stable radix sort (CUB) of (index, position) pairs: positions of one
 * index then sit together in increasing order, and one thread per (run,
 * column) adds its run in that order.  Rows no index names stay zero.
 * float16/bfloat16 accumulate in float and round once.
 */
#include <cub/device/device_radix_sort.cuh>
#include <string.h>

#include "backend/cuda/nn_util.cuh"

/* ---- Philox 4x32-10, as core/philox.h ---- */

__device__ __forceinline__ void nn_philox_block(uint64_t seed, uint64_t offset, uint64_t block,
                                                uint32_t out[4]) {
    uint64_t lo = offset + block;
    uint64_t hi = lo < offset;
    uint32_t c0 = (uint32_t)lo, c1 = (uint32_t)(lo >> 32), c2 = (uint32_t)hi,
             c3 = (uint32_t)(hi >> 32);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
#pragma unroll
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c0 = n0;
        c1 = (uint32_t)p1;
        c2 = n2;
        c3 = (uint32_t)p0;
    }
    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

template <typename T>
__global__ void nn_dropout(const T *x, T *y, uint8_t *mask, int64_t n, uint64_t seed,
                           uint64_t offset, uint64_t thr, double scale) {
    int64_t nb = (n + 3) / 4;
    for (int64_t b = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; b < nb;
         b += (int64_t)gridDim.x * blockDim.x) {
        uint32_t r[4];
        nn_philox_block(seed, offset, (uint64_t)b, r);
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t i = b * 4 + j;
            if (i >= n) break;
            int keep = (uint64_t)r[j] >= thr;
            mask[i] = (uint8_t)keep;
            if (sizeof(T) == 8)
                y[i] = keep ? cuda_nn_to<T>((double)cuda_nn_f(x[i]) * scale) : cuda_nn_to<T>(0.0);
            else
                y[i] = keep ? cuda_nn_tof<T>((float)((double)cuda_nn_f(x[i]) * scale))
                            : cuda_nn_tof<T>(0.0f);
        }
    }
}

sp_status cuda_dropout(const sp_kernel_args *a) {
    const char *op = "dropout";
    sp_tensor *x = NULL, *y = a->out[0], *mask = a->out[1];
    if (!sp_dtype_is_float(a->in[0]->dtype) || y->dtype != a->in[0]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: x must be float, got %s", op,
                        sp_dtype_name(a->in[0]->dtype));
    if (mask->dtype != SP_BOOL && mask->dtype != SP_U8 && mask->dtype != SP_I8)
        return sp_error(SP_ERR_DTYPE, "%s: mask must be bool, got %s", op,
                        sp_dtype_name(mask->dtype));
    int64_t n = sp_tensor_numel(a->in[0]);
    if (sp_tensor_numel(y) != n || sp_tensor_numel(mask) != n)
        return sp_error(SP_ERR_SHAPE, "%s: outputs do not have the %lld elements of x", op,
                        (long long)n);
    double p = sp_attrs_get_float(a->attrs, "p", 0.5);
    if (!(p >= 0 && p <= 1)) return sp_error(SP_ERR_ARG, "%s: p must be in [0, 1], got %g", op, p);
    uint64_t seed, offset;
    if (sp_attrs_find(a->attrs, "seed")) {
        seed = (uint64_t)sp_attrs_get_int(a->attrs, "seed", 0);
        offset = (uint64_t)sp_attrs_get_int(a->attrs, "offset", 0);
    } else {
        sp_rng_next(((uint64_t)n + 3) / 4, &seed, &offset);
    }
    if (n == 0) return SP_OK;
    uint64_t thr = p >= 1 ? (uint64_t)1 << 32 : (uint64_t)ceil(p * 4294967296.0);
    double scale = 1.0 / (1.0 - p);
    sp_status st = cuda_nn_contig(a->in[0], &x);
    if (st) return st;
    cudaStream_t s = cuda_stream();
    unsigned bl = cuda_nn_blocks((n + 3) / 4, 256);
    switch (x->dtype) {
        CUDA_NN_FLOAT_CASES(x->dtype, T, {
            nn_dropout<T><<<bl, 256, 0, s>>>((const T *)x->buf->data + x->offset, (T *)y->buf->data,
                                            (uint8_t *)mask->buf->data, n, seed, offset, thr, scale);
        })
    default: break;
    }
    st = cuda_nn_launched(op);
    sp_tensor_release(x);
    return st;
}

/* ---- embedding ---- */

/* Flags the first bad index it meets in the backend's error slot. */
__device__ __forceinline__ void nn_bad_index(int op, int64_t v, int64_t pos, int64_t V,
                                             cuda_err_info *slot) {
    if (atomicCAS(&slot->flag, 0, 1) == 0) {
        slot->kind = CUDA_ERR_POSITION;
        slot->op = op;
        slot->v = v;
        slot->a = pos;
        slot->b = V;
        __threadfence();
    }
}

template <typename T>
__global__ void nn_emb_fwd(const T *w, const void *idx, int idt, T *out, int64_t n, int64_t V,
                           int64_t D, cuda_err_info *slot) {
    int64_t Dk = D > 0 ? D : 1, tot = n * Dk; /* D == 0: still check every index */
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < tot;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / Dk, k = i % Dk, v = cuda_nn_ldi(idx, idt, r);
        if (v < 0 || v >= V) {
            if (k == 0) nn_bad_index(SP_OP_EMBEDDING, v, r, V, slot);
            if (D > 0) out[i] = cuda_nn_to<T>(0.0);
        } else if (D > 0) {
            out[i] = w[v * D + k];
        }
    }
}

static sp_status nn_idx_check(const char *op, const sp_tensor *idx) {
    if (!sp_dtype_is_int(idx->dtype))
        return sp_error(SP_ERR_DTYPE, "%s: indices must be int32 or int64, got %s", op,
                        sp_dtype_name(idx->dtype));
    return SP_OK;
}

static const void *nn_ptr(const sp_tensor *t) {
    return (const char *)t->buf->data + t->offset * (int64_t)sp_dtype_size(t->dtype);
}

sp_status cuda_embedding(const sp_kernel_args *a) {
    const char *op = "embedding";
    sp_tensor *w = NULL, *idx = NULL, *out = a->out[0];
    char s1[128];
    if (a->in[0]->ndim != 2)
        return sp_error(SP_ERR_SHAPE, "%s: weight must be [V, D], got shape %s", op,
                        sp_shape_str(a->in[0]->ndim, a->in[0]->shape, s1, sizeof s1));
    int64_t V = a->in[0]->shape[0], D = a->in[0]->shape[1], n = sp_tensor_numel(a->in[1]);
    if (out->dtype != a->in[0]->dtype || sp_tensor_numel(out) != n * D)
        return sp_error(SP_ERR_SHAPE, "%s: output does not fit %lld indices of rows of %lld", op,
                        (long long)n, (long long)D);
    sp_status st = nn_idx_check(op, a->in[1]);
    if (st || n == 0) return st;
    if ((st = cuda_nn_contig(a->in[1], &idx)) || (st = cuda_nn_contig(a->in[0], &w))) goto done;
    {
        cudaStream_t s = cuda_stream();
        unsigned bl = cuda_nn_blocks(n * (D > 0 ? D : 1), 256);
        switch (w->dtype) {
            CUDA_NN_FLOAT_CASES(w->dtype, T, {
                nn_emb_fwd<T><<<bl, 256, 0, s>>>((const T *)nn_ptr(w), nn_ptr(idx), idx->dtype,
                                                (T *)out->buf->data, n, V, D, cuda_err_slot());
            })
        default: break;
        }
        if ((st = cuda_nn_launched(op))) goto done;
        st = cuda_err_check();
    }
done:
    sp_tensor_release(w);
    sp_tensor_release(idx);
    return st;
}

/* keys[i] = the index at position i (V for a bad one, reported), vals[i] = i. */
__global__ void nn_emb_keys(const void *idx, int idt, int64_t n, int64_t V, int32_t *keys,
                            int32_t *vals, cuda_err_info *slot) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t v = cuda_nn_ldi(idx, idt, i);
        if (v < 0 || v >= V) {
            nn_bad_index(SP_OP_EMBEDDING_BACKWARD, v, i, V, slot);
            v = V;
        }
        keys[i] = (int32_t)v;
        vals[i] = (int32_t)i;
    }
}

/* One thread per (sorted position j, column k): the first position of each
 * run of equal keys adds the run's dout rows in order. */
template <typename T>
__global__ void nn_emb_bwd(const T *dout, const int32_t *keys, const int32_t *pos, int64_t n,
                           int64_t V, int64_t D, T *dw) {
    typedef typename cuda_nn_acc<T>::type A;
    int64_t tot = n * D;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < tot;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i / D, k = i % D;
        int32_t v = keys[j];
        if (v >= V || (j > 0 && keys[j - 1] == v)) continue;
        A acc = 0;
        for (int64_t e = j; e < n && keys[e] == v; e++) acc += (A)cuda_nn_f(dout[(int64_t)pos[e] * D + k]);
        dw[(int64_t)v * D + k] = cuda_nn_to<T>((double)acc);
    }
}

sp_status cuda_embedding_backward(const sp_kernel_args *a) {
    const char *op = "embedding_backward";
    sp_tensor *dout = NULL, *idx = NULL, *dw = a->out[0], *scratch = NULL;
    char s1[128], s2[128];
    int64_t V = sp_attrs_get_int(a->attrs, "num_embeddings", -1);
    if (V < 0)
        return sp_error(SP_ERR_ARG, "%s: num_embeddings must be given and >= 0, got %lld", op,
                        (long long)V);
    int64_t n = sp_tensor_numel(a->in[1]);
    if (dw->ndim != 2 || dw->shape[0] != V || dw->dtype != a->in[0]->dtype ||
        a->in[0]->ndim != a->in[1]->ndim + 1 || sp_tensor_numel(a->in[0]) != n * dw->shape[1])
        return sp_error(SP_ERR_SHAPE, "%s: dout of shape %s does not fit indices of shape %s", op,
                        sp_shape_str(a->in[0]->ndim, a->in[0]->shape, s1, sizeof s1),
                        sp_shape_str(a->in[1]->ndim, a->in[1]->shape, s2, sizeof s2));
    int64_t D = dw->shape[1];
    sp_status st = nn_idx_check(op, a->in[1]);
    if (st) return st;
    if (n >= INT32_MAX || V >= INT32_MAX)
        return sp_error(SP_ERR_UNSUPPORTED, "%s: %lld indices into %lld rows (at most 2^31 - 1)",
                        op, (long long)n, (long long)V);
    cudaStream_t s = cuda_stream();
    if (sp_tensor_numel(dw) > 0 &&
        (st = cuda_check(cudaMemsetAsync(dw->buf->data, 0, sp_tensor_nbytes(dw), s), op)))
        return st;
    if (n == 0) return SP_OK;
    if ((st = cuda_nn_contig(a->in[1], &idx)) || (st = cuda_nn_contig(a->in[0], &dout))) goto done;
    {
        int end_bit = 1;
        while (end_bit < 32 && ((int64_t)1 << end_bit) <= V) end_bit++;
        size_t tmp = 0;
        cub::DeviceRadixSort::SortPairs(NULL, tmp, (const int32_t *)NULL, (int32_t *)NULL,
                                        (const int32_t *)NULL, (int32_t *)NULL, (int)n, 0, end_bit, s);
        size_t lists = (size_t)n * 4 * sizeof(int32_t);
        int64_t bytes = (int64_t)(lists + tmp + 256);
        if (!(scratch = cuda_nn_new(dw->buf->device, SP_U8, 1, &bytes))) {
            st = sp_last_status();
            goto done;
        }
        int32_t *keys = (int32_t *)scratch->buf->data, *vals = keys + n, *skeys = vals + n,
                *svals = skeys + n;
        void *tmpp = (char *)scratch->buf->data + ((lists + 255) & ~(size_t)255);
        nn_emb_keys<<<cuda_nn_blocks(n, 256), 256, 0, s>>>(nn_ptr(idx), idx->dtype, n, V, keys, vals,
                                                           cuda_err_slot());
        if ((st = cuda_nn_launched(op))) goto done;
        if (cub::DeviceRadixSort::SortPairs(tmpp, tmp, keys, skeys, vals, svals, (int)n, 0, end_bit,
                                            s) != cudaSuccess) {
            st = cuda_nn_launched(op);
            if (!st) st = sp_error(SP_ERR_DEVICE, "%s: the radix sort failed", op);
            goto done;
        }
        if (D > 0 && V > 0) {
            unsigned bl = cuda_nn_blocks(n * D, 256);
            switch (dout->dtype) {
                CUDA_NN_FLOAT_CASES(dout->dtype, T, {
                    nn_emb_bwd<T><<<bl, 256, 0, s>>>((const T *)nn_ptr(dout), skeys, svals, n, V, D,
                                                    (T *)dw->buf->data);
                })
            default: break;
            }
        }
        if ((st = cuda_nn_launched(op))) goto done;
        st = cuda_err_check();
    }
done:
    sp_tensor_release(dout);
    sp_tensor_release(idx);
    sp_tensor_release(scratch);
    return st;
}
