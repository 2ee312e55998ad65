/*
 * cuda_common.cu -- host helpers of the CUDA kernel families: dim collapsing,
 * broadcast strides, and the two data movers every shape kernel is built
 * from: a strided block copy (with dtype conversion) and a pattern fill.
 *
 * cu_copy is the GPU's cpu_copy_convert: a block of a logical shape, read
 * through one set of strides and written through another.  Reshape,
 * transpose, broadcast_to, slice, concat, split, stack, tile and pad are
 * each a few lines of stride arithmetic on the host around it.  Same-dtype
 * copies move raw elements (1, 2, 4 or 8 bytes: NaN payloads survive);
 * mixed ones read through the source's canonical compute type and store
 * with cast's rules, exactly as the CPU.  One thread per element; after
 * collapsing, a plain contiguous copy is one dim and takes the fast path.
 */
#include "backend/cuda/cuda_common.cuh"

void cu_contig_strides(int nd, const int64_t *shape, int64_t *st) {
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        st[i] = s;
        s *= shape[i];
    }
}

void cu_broadcast_strides(const sp_tensor *t, int nd, const int64_t *shape, int64_t *st) {
    (void)shape;
    int lead = nd - t->ndim;
    for (int i = 0; i < nd; i++) {
        int j = i - lead;
        st[i] = (j < 0 || t->shape[j] == 1) ? 0 : t->strides[j];
    }
}

void cu_collapse(int nd, const int64_t *shape, int nops, const int64_t *const *st, cu_layout *L) {
    int64_t sh[CU_MAX_DIMS], s[4][CU_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < nd; i++) {
        if (shape[i] == 1) continue;
        if (shape[i] == 0) { /* empty: one dim of 0 */
            n = 0;
            sh[n] = 0;
            for (int k = 0; k < nops; k++) s[k][n] = 0;
            n = 1;
            break;
        }
        if (n > 0) {
            int merge = 1;
            for (int k = 0; k < nops && merge; k++) merge = s[k][n - 1] == st[k][i] * shape[i];
            if (merge) {
                sh[n - 1] *= shape[i];
                for (int k = 0; k < nops; k++) s[k][n - 1] = st[k][i];
                continue;
            }
        }
        sh[n] = shape[i];
        for (int k = 0; k < nops; k++) s[k][n] = st[k][i];
        n++;
    }
    if (n == 0) {
        sh[0] = 1;
        for (int k = 0; k < nops; k++) s[k][0] = 0;
        n = 1;
    }
    for (int k = 0; k < nops; k++) {
        L[k].nd = n;
        for (int i = 0; i < n; i++) {
            L[k].shape[i] = sh[i];
            L[k].st[i] = s[k][i];
        }
    }
}

/* ---- copy ---- */

/* Four elements per thread and iteration, a grid-stride apart, all loads
 * before the stores (bytes in flight). */
template <class T>
__global__ void cu_copy_raw(cu_layout ls, cu_layout ld, const T *src, T *dst, long long n) {
    long long S = (long long)gridDim.x * blockDim.x;
    for (long long i0 = (long long)blockIdx.x * blockDim.x + threadIdx.x; i0 < n; i0 += 4 * S) {
        T v[4];
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (i0 + j * S < n)
                v[j] = src[ls.nd == 1 ? (i0 + j * S) * ls.st[0] : cu_offset(ls, i0 + j * S)];
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (i0 + j * S < n)
                dst[ld.nd == 1 ? (i0 + j * S) * ld.st[0] : cu_offset(ld, i0 + j * S)] = v[j];
    }
}

template <class T>
static void cu_copy_raw_launch(unsigned g, cudaStream_t s, const cu_layout *L, const void *sp,
                               void *dp, long long n) {
    cu_copy_raw<T><<<g, CU_THREADS, 0, s>>>(L[0], L[1], (const T *)sp, (T *)dp, n);
}

template <class C>
__global__ void cu_copy_cvt(cu_layout ls, cu_layout ld, int sd, const void *src, int dd,
                            void *dst, long long n) {
    CU_FOR(i, n) cu_store(dd, dst, cu_offset(ld, i), cu_load<C>(sd, src, cu_offset(ls, i)));
}

sp_status cu_copy(int nd, const int64_t *shape, sp_dtype dd, void *dp, const int64_t *ds,
                  sp_dtype sd, const void *sp, const int64_t *ss) {
    long long n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    if (n == 0) return SP_OK;
    cu_layout L[2];
    const int64_t *st[2] = {ss, ds};
    cu_collapse(nd, shape, 2, st, L);
    cudaStream_t s = cuda_stream();
    unsigned g = cu_blocks(n);
    if (sd == dd && L[0].nd == 1 && L[0].st[0] == 1 && L[1].st[0] == 1)
        return cuda_check(cudaMemcpyAsync(dp, sp, (size_t)n * sp_dtype_size(sd),
                                          cudaMemcpyDeviceToDevice, s),
                          "cuda copy");
    if (sd == dd) {
        switch (sp_dtype_size(sd)) {
        case 1: cu_copy_raw_launch<uint8_t>(g, s, L, sp, dp, n); break;
        case 2: cu_copy_raw_launch<uint16_t>(g, s, L, sp, dp, n); break;
        case 4: cu_copy_raw_launch<uint32_t>(g, s, L, sp, dp, n); break;
        default: cu_copy_raw_launch<unsigned long long>(g, s, L, sp, dp, n); break;
        }
    } else if (sd == SP_F64) {
        cu_copy_cvt<double><<<g, CU_THREADS, 0, s>>>(L[0], L[1], sd, sp, dd, dp, n);
    } else if (sp_dtype_is_float(sd)) {
        cu_copy_cvt<float><<<g, CU_THREADS, 0, s>>>(L[0], L[1], sd, sp, dd, dp, n);
    } else {
        cu_copy_cvt<long long><<<g, CU_THREADS, 0, s>>>(L[0], L[1], sd, sp, dd, dp, n);
    }
    return cu_launched("cuda copy");
}

/* ---- fill ---- */

template <class T> __global__ void cu_fill_kernel(T *dst, T v, long long n) {
    CU_FOR(i, n) dst[i] = v;
}

sp_status cu_fill_bytes(void *dst, long long count, int esize, const unsigned char *pat) {
    if (count <= 0) return SP_OK;
    cudaStream_t s = cuda_stream();
    int same = 1;
    for (int i = 1; i < esize; i++) same &= pat[i] == pat[0];
    if (same)
        return cuda_check(cudaMemsetAsync(dst, pat[0], (size_t)count * esize, s), "cuda fill");
    unsigned g = cu_blocks(count);
    if (esize == 2) {
        uint16_t v;
        memcpy(&v, pat, 2);
        cu_fill_kernel<uint16_t><<<g, CU_THREADS, 0, s>>>((uint16_t *)dst, v, count);
    } else if (esize == 4) {
        uint32_t v;
        memcpy(&v, pat, 4);
        cu_fill_kernel<uint32_t><<<g, CU_THREADS, 0, s>>>((uint32_t *)dst, v, count);
    } else {
        unsigned long long v;
        memcpy(&v, pat, 8);
        cu_fill_kernel<unsigned long long>
            <<<g, CU_THREADS, 0, s>>>((unsigned long long *)dst, v, count);
    }
    return cu_launched("cuda fill");
}
