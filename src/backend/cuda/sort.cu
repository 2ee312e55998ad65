/*
 * sort.cu -- CUDA kernels of sort and topk.
 *
 * The CPU's one idea (sort.c) carries over: every element of a row becomes
 * a pair (key, index) ordered by a total order -- key first (NaN the
 * largest, -0.0 == 0.0), then index -- so any correct sort of the pairs is
 * the stable sort, and topk's "ties by lower index" is the same order.
 * Keys are exact images of the values: double for the float dtypes (exact
 * for float32/16/bfloat16 too), int64 for the integers.
 *
 * One block sorts one row with a merge sort in global scratch memory: each
 * pass merges runs of width w into runs of 2w, every element finding its
 * place independently as (its rank in its own run) + (the number of
 * elements of the other run that come before it, by binary search); the
 * order is total, so no two elements claim the same place.  log2(n) passes
 * of O(n log n) work, all threads of the block busy.  Values are then
 * copied as raw element bytes from the input (NaN payloads and signed
 * zeros survive) and indices written as int64.  topk sorts the whole row
 * and keeps the first k, which gives the CPU's answer by construction.
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

struct sort_args {
    const char *x;
    char *vals;
    long long *idx;
    int xdt, es, desc;
    long long len, klen, rows, sa;
    cu_layout XR;  /* rows: x strides */
    cu_layout OR;  /* rows: output strides */
    long long oa;  /* output stride along the axis */
    void *k0, *k1; /* key scratch, rows * len each */
    long long *i0, *i1;
};

template <class K> __device__ inline bool srt_isnan(K v) { return v != v; }

template <class K> __device__ inline bool srt_lt(K a, K b) {
    return a < b || (srt_isnan(b) && !srt_isnan(a));
}

template <class K>
__device__ inline bool srt_before(K ka, long long ia, K kb, long long ib, int desc) {
    if (desc ? srt_lt(kb, ka) : srt_lt(ka, kb)) return true;
    if (desc ? srt_lt(ka, kb) : srt_lt(kb, ka)) return false;
    return ia < ib;
}

/* The number of pairs in [lo, hi) of (k, ix) that come before (kv, iv). */
template <class K>
__device__ inline long long srt_count_before(const K *k, const long long *ix, long long lo,
                                             long long hi, K kv, long long iv, int desc) {
    long long a = lo, b = hi;
    while (a < b) {
        long long m = a + (b - a) / 2;
        if (srt_before(k[m], ix[m], kv, iv, desc))
            a = m + 1;
        else
            b = m;
    }
    return a - lo;
}

template <class K> __global__ void sort_kernel(sort_args A) {
    for (long long row = blockIdx.x; row < A.rows; row += gridDim.x) {
        long long L = A.len;
        K *ka = (K *)A.k0 + row * L, *kb = (K *)A.k1 + row * L;
        long long *ia = A.i0 + row * L, *ib = A.i1 + row * L;
        long long xoff = cu_offset(A.XR, row);
        for (long long j = threadIdx.x; j < L; j += blockDim.x) {
            ka[j] = cu_load<K>(A.xdt, A.x, xoff + j * A.sa);
            ia[j] = j;
        }
        __syncthreads();
        for (long long w = 1; w < L; w *= 2) {
            for (long long j = threadIdx.x; j < L; j += blockDim.x) {
                long long start = j / (2 * w) * (2 * w);
                long long mid = start + w < L ? start + w : L;
                long long end = start + 2 * w < L ? start + 2 * w : L;
                long long dest;
                if (j < mid)
                    dest = j + srt_count_before<K>(ka, ia, mid, end, ka[j], ia[j], A.desc);
                else
                    dest = start + (j - mid) +
                           srt_count_before<K>(ka, ia, start, mid, ka[j], ia[j], A.desc);
                kb[dest] = ka[j];
                ib[dest] = ia[j];
            }
            __syncthreads();
            K *tk = ka;
            ka = kb;
            kb = tk;
            long long *ti = ia;
            ia = ib;
            ib = ti;
        }
        long long ooff = cu_offset(A.OR, row);
        for (long long j = threadIdx.x; j < A.klen; j += blockDim.x) {
            long long src = xoff + ia[j] * A.sa, dst = ooff + j * A.oa;
            switch (A.es) {
            case 1: ((uint8_t *)A.vals)[dst] = ((const uint8_t *)A.x)[src]; break;
            case 2: ((uint16_t *)A.vals)[dst] = ((const uint16_t *)A.x)[src]; break;
            case 4: ((uint32_t *)A.vals)[dst] = ((const uint32_t *)A.x)[src]; break;
            default:
                ((unsigned long long *)A.vals)[dst] = ((const unsigned long long *)A.x)[src];
                break;
            }
            A.idx[dst] = ia[j];
        }
        __syncthreads();
    }
}

static sp_status sort_run(const sp_kernel_args *a, const char *name, int ax, int desc,
                          int64_t klen) {
    sp_tensor *x = a->in[0], *vals = a->out[0], *idx = a->out[1];
    int nd = x->ndim;
    sort_args A;
    memset(&A, 0, sizeof A);
    A.x = (const char *)sp_tensor_data(x);
    A.vals = (char *)sp_tensor_data(vals);
    A.idx = (long long *)sp_tensor_data(idx);
    A.xdt = x->dtype;
    A.es = (int)sp_dtype_size(x->dtype);
    A.desc = desc;
    A.len = nd ? x->shape[ax] : 1;
    A.sa = nd ? x->strides[ax] : 0;
    A.klen = klen;
    int64_t ost[SP_MAX_DIMS], rsh[SP_MAX_DIMS], rxs[SP_MAX_DIMS], ros[SP_MAX_DIMS];
    cu_contig_strides(vals->ndim, vals->shape, ost);
    A.oa = nd ? ost[ax] : 0;
    int nr = 0;
    A.rows = 1;
    for (int i = 0; i < nd; i++) {
        if (i == ax) continue;
        rsh[nr] = x->shape[i], rxs[nr] = x->strides[i], ros[nr++] = ost[i];
        A.rows *= x->shape[i];
    }
    const int64_t *sts[2] = {rxs, ros};
    cu_layout L2[2];
    cu_collapse(nr, rsh, 2, sts, L2);
    A.XR = L2[0];
    A.OR = L2[1];
    if (A.rows == 0 || A.len == 0 || A.klen == 0) return SP_OK;
    size_t n = (size_t)(A.rows * A.len);
    char *scratch = (char *)cuda_tmp_alloc(n * 32);
    if (!scratch) return sp_last_status();
    A.k0 = scratch;
    A.k1 = scratch + n * 8;
    A.i0 = (long long *)(scratch + n * 16);
    A.i1 = (long long *)(scratch + n * 24);
    int threads = 32;
    while (threads < 256 && threads < A.len) threads *= 2;
    long long grid = A.rows < 65535 * 16 ? A.rows : 65535 * 16;
    if (sp_dtype_is_float(x->dtype))
        sort_kernel<double><<<(unsigned)grid, threads, 0, cuda_stream()>>>(A);
    else
        sort_kernel<long long><<<(unsigned)grid, threads, 0, cuda_stream()>>>(A);
    sp_status st = cu_launched(name);
    cuda_tmp_free(scratch);
    return st;
}

static sp_status sort_axis(const sp_kernel_args *a, const char *name, int64_t dflt, int *ax) {
    int nd = a->in[0]->ndim;
    int64_t v = sp_attrs_get_int(a->attrs, "axis", dflt);
    if (nd == 0) {
        if (v != 0 && v != -1)
            return sp_error(SP_ERR_ARG, "%s: axis %lld is out of range for a 0-d tensor", name,
                            (long long)v);
        *ax = 0;
        return SP_OK;
    }
    return sp_norm_axis(name, v, nd, ax);
}

sp_status cuda_sort(const sp_kernel_args *a) {
    if (a->n_in != 1 || a->n_out != 2)
        return sp_error(SP_ERR_INTERNAL, "sort: kernel called with %d inputs and %d outputs",
                        a->n_in, a->n_out);
    int ax;
    sp_status st = sort_axis(a, "sort", -1, &ax);
    if (st) return st;
    sp_tensor *x = a->in[0];
    return sort_run(a, "sort", ax, sp_attrs_get_int(a->attrs, "descending", 0) != 0,
                    x->ndim ? x->shape[ax] : 1);
}

sp_status cuda_topk(const sp_kernel_args *a) {
    if (a->n_in != 1 || a->n_out != 2)
        return sp_error(SP_ERR_INTERNAL, "topk: kernel called with %d inputs and %d outputs",
                        a->n_in, a->n_out);
    int ax;
    sp_status st = sort_axis(a, "topk", -1, &ax);
    if (st) return st;
    sp_tensor *x = a->in[0];
    int64_t len = x->ndim ? x->shape[ax] : 1;
    int64_t k = sp_attrs_get_int(a->attrs, "k", -1);
    if (k < 0 || k > len)
        return sp_error(SP_ERR_ARG, "topk: k %lld is out of range for axis %lld of size %lld",
                        (long long)k, (long long)sp_attrs_get_int(a->attrs, "axis", -1),
                        (long long)len);
    return sort_run(a, "topk", ax, sp_attrs_get_int(a->attrs, "largest", 1) != 0, k);
}
