/*
 * index.cu -- CUDA kernels of the indexing primitives: gather,
 * take_along_axis, scatter_add and one_hot.
 *
 * Index errors.  An index outside [-n, n) is a user error, not a crash: the
 * kernels skip it and raise the device error flag (cuda_err_slot), and the
 * host reads the flag right after the launch (cuda_err_check, which
 * synchronizes the stream -- these four kernels are the backend's only
 * synchronous ones in eager mode; inside a CUDA graph capture the check is
 * deferred to the next sync).  When the flag is up, the host copies the
 * indices back and finds the first bad one in C order, so the message is
 * the CPU's, word for word ("gather: index 7 out of range for axis 0 of
 * size 5").  gather checks every index even when the output is empty, as
 * the CPU does.
 *
 * scatter_add is deterministic and bit-identical to the CPU without
 * atomics: its work units are the lines of the indices along the axis (all
 * other coordinates fixed); two lines never write the same output element
 * because they differ in a coordinate that is not the axis, and each line
 * adds its updates in order, as the CPU's line loop does (float16/bfloat16
 * rounding after every addition included).
 */
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

typedef unsigned long long u64;

/* The error slot's address, given to kernels as an argument. */
struct idx_err {
    cuda_err_info *slot;
    int op;
};

__device__ inline void idx_report(const idx_err &E, long long v, long long ax, long long n) {
    if (atomicCAS(&E.slot->flag, 0, 1) == 0) {
        E.slot->kind = CUDA_ERR_INDEX;
        E.slot->op = E.op;
        E.slot->v = v;
        E.slot->a = ax;
        E.slot->b = n;
    }
}

__device__ inline void idx_move(int es, char *dst, long long doff, const char *src, long long soff) {
    switch (es) {
    case 1: ((uint8_t *)dst)[doff] = ((const uint8_t *)src)[soff]; break;
    case 2: ((uint16_t *)dst)[doff] = ((const uint16_t *)src)[soff]; break;
    case 4: ((uint32_t *)dst)[doff] = ((const uint32_t *)src)[soff]; break;
    default: ((u64 *)dst)[doff] = ((const u64 *)src)[soff]; break;
    }
}

/* The first index of idx (C order) outside [-n, n), as the CPU's error;
 * called after the device flag said there is one. */
static sp_status idx_report_host(const char *op, sp_tensor *idx, int ax, int64_t n) {
    sp_tensor *h = NULL;
    sp_clear_error();
    sp_status st = sp_tensor_to(idx, SP_CPU, &h);
    if (st) return st;
    int64_t total = sp_tensor_numel(h);
    const char *p = (const char *)sp_tensor_data(h);
    for (int64_t k = 0; k < total; k++) {
        int64_t v = h->dtype == SP_I32 ? ((const int32_t *)p)[k] : ((const int64_t *)p)[k];
        if (v < -n || v >= n) {
            sp_tensor_release(h);
            return sp_error(SP_ERR_ARG, "%s: index %lld out of range for axis %d of size %lld",
                            op, (long long)v, ax, (long long)n);
        }
    }
    sp_tensor_release(h);
    return sp_error(SP_ERR_INTERNAL, "%s: index out of range", op);
}

/* Reads the flag after the kernels; on an error, the exact message. */
static sp_status idx_finish(const char *op, sp_tensor *idx, int ax, int64_t n) {
    sp_status st = cuda_err_check();
    if (st == SP_ERR_ARG) return idx_report_host(op, idx, ax, n);
    return st;
}

static sp_status idx_check_dtype(const char *op, const sp_tensor *idx) {
    if (idx->dtype == SP_I32 || idx->dtype == SP_I64) return SP_OK;
    return sp_error(SP_ERR_DTYPE, "%s: indices must be int32 or int64, not %s", op,
                    sp_dtype_name(idx->dtype));
}

static sp_status idx_norm_axis(const char *op, const sp_attrs *attrs, int ndim, int *out) {
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    if (axis < -ndim || axis >= ndim)
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", op,
                        (long long)axis, ndim);
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return SP_OK;
}

static sp_status idx_check_out(const char *op, const sp_tensor *out, int ndim,
                               const int64_t *shape) {
    int ok = out->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = out->shape[i] == shape[i];
    if (ok) return SP_OK;
    char s1[128], s2[128];
    return sp_error(SP_ERR_INTERNAL, "%s: output shape %s does not match the computed %s", op,
                    sp_shape_str(out->ndim, out->shape, s1, sizeof s1),
                    sp_shape_str(ndim, shape, s2, sizeof s2));
}

static cu_layout idx_layout(const sp_tensor *t) {
    cu_layout L;
    const int64_t *st = t->strides;
    cu_collapse(t->ndim, t->shape, 1, &st, &L);
    return L;
}

/* ---- gather ---- */

struct gather_args {
    idx_err E;
    const char *x;
    char *y;
    const void *idx;
    int idt, es;
    cu_layout IL;           /* indices */
    cu_layout PRE, POST;    /* x's dims before and after the axis (x strides) */
    long long ni, npost, n, sa, total;
};

__global__ void gather_check_kernel(gather_args A) {
    CU_FOR(k, A.ni) {
        long long v = cu_load<long long>(A.idt, A.idx, cu_offset(A.IL, k));
        if (v < -A.n || v >= A.n) idx_report(A.E, v, 0, A.n);
    }
}

__global__ void gather_kernel(gather_args A) {
    CU_FOR(u, A.total) {
        long long post = u % A.npost, r = u / A.npost;
        long long k = r % A.ni, pre = r / A.ni;
        long long v = cu_load<long long>(A.idt, A.idx, cu_offset(A.IL, k));
        if (v < -A.n || v >= A.n) continue;
        if (v < 0) v += A.n;
        long long off = cu_offset(A.PRE, pre) + v * A.sa + cu_offset(A.POST, post);
        idx_move(A.es, A.y, u, A.x, off);
    }
}

/* The fast path of gather: rows (everything after the axis) contiguous and
 * a whole number of 16-byte words, every row start 16-byte aligned; moves
 * one word per thread and step.  Indices were checked by the check kernel;
 * bad ones are skipped here as in gather_kernel. */
__global__ void gather_rows_kernel(gather_args A, long long W) {
    long long nw = A.total / A.npost * W;
    CU_FOR(u, nw) {
        long long w = u % W, r = u / W;
        long long k = r % A.ni, pre = r / A.ni;
        long long v = cu_load<long long>(A.idt, A.idx, cu_offset(A.IL, k));
        if (v < -A.n || v >= A.n) continue;
        if (v < 0) v += A.n;
        long long off = (cu_offset(A.PRE, pre) + v * A.sa) * A.es;
        ((uint4 *)A.y)[u] = ((const uint4 *)(A.x + off))[w];
    }
}

/* The same for long rows (W >= 64 words): one block per output row (grid-
 * stride over rows), the index read once, four words in flight a thread. */
__global__ void gather_long_rows_kernel(gather_args A, long long W) {
    long long rows = A.total / A.npost;
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        long long k = r % A.ni, pre = r / A.ni;
        long long v = cu_load<long long>(A.idt, A.idx, cu_offset(A.IL, k));
        if (v < -A.n || v >= A.n) continue;
        if (v < 0) v += A.n;
        const uint4 *src = (const uint4 *)(A.x + (cu_offset(A.PRE, pre) + v * A.sa) * A.es);
        uint4 *dst = (uint4 *)A.y + r * W;
        long long B = blockDim.x;
        for (long long w = threadIdx.x; w < W; w += 4 * B) {
            uint4 t[4];
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (w + j * B < W) t[j] = src[w + j * B];
#pragma unroll
            for (int j = 0; j < 4; j++)
                if (w + j * B < W) dst[w + j * B] = t[j];
        }
    }
}

/* Whether gather_rows_kernel applies; *W gets the words per row. */
static bool gather_rows_ok(const gather_args *A, long long *W) {
    long long rb = A->npost * A->es;
    if (A->POST.nd != 1 || (A->npost > 1 && A->POST.st[0] != 1) || rb % 16 != 0) return false;
    if (((uintptr_t)A->x & 15) || ((uintptr_t)A->y & 15) || (A->sa * A->es) % 16) return false;
    for (int i = 0; i < A->PRE.nd; i++)
        if (A->PRE.shape[i] > 1 && (A->PRE.st[i] * A->es) % 16) return false;
    *W = rb / 16;
    return true;
}

sp_status cuda_gather(const sp_kernel_args *a) {
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "gather: kernel called with %d inputs", a->n_in);
    sp_tensor *x = a->in[0], *idx = a->in[1], *y = a->out[0];
    int ax = 0;
    sp_status st = idx_check_dtype("gather", idx);
    if (st || (st = idx_norm_axis("gather", a->attrs, x->ndim, &ax))) return st;
    int64_t shape[SP_MAX_DIMS];
    int nd = 0;
    if (x->ndim - 1 + idx->ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "gather: result would have more than %d dims", SP_MAX_DIMS);
    for (int i = 0; i < ax; i++) shape[nd++] = x->shape[i];
    for (int i = 0; i < idx->ndim; i++) shape[nd++] = idx->shape[i];
    for (int i = ax + 1; i < x->ndim; i++) shape[nd++] = x->shape[i];
    if ((st = idx_check_out("gather", y, nd, shape))) return st;
    if (x->dtype != y->dtype) return sp_error(SP_ERR_INTERNAL, "gather: output dtype differs");
    gather_args A;
    memset(&A, 0, sizeof A);
    A.E.slot = cuda_err_slot();
    A.E.op = SP_OP_GATHER;
    A.x = (const char *)sp_tensor_data(x);
    A.y = (char *)sp_tensor_data(y);
    A.idx = sp_tensor_data(idx);
    A.idt = idx->dtype;
    A.es = (int)sp_dtype_size(x->dtype);
    A.IL = idx_layout(idx);
    A.ni = sp_tensor_numel(idx);
    A.n = x->shape[ax];
    A.sa = x->strides[ax];
    const int64_t *xs = x->strides, *xs2 = x->strides + ax + 1;
    cu_collapse(ax, x->shape, 1, &xs, &A.PRE);
    cu_collapse(x->ndim - ax - 1, x->shape + ax + 1, 1, &xs2, &A.POST);
    A.npost = 1;
    for (int i = ax + 1; i < x->ndim; i++) A.npost *= x->shape[i];
    A.total = sp_tensor_numel(y);
    if (A.ni == 0) return SP_OK;
    cudaStream_t s = cuda_stream();
    gather_check_kernel<<<cu_blocks(A.ni), CU_THREADS, 0, s>>>(A);
    if ((st = cu_launched("gather"))) return st;
    long long W = 0;
    if (A.total > 0 && gather_rows_ok(&A, &W)) {
        long long rows = A.total / A.npost;
        if (W >= 64)
            gather_long_rows_kernel<<<(unsigned)(rows < 0x7fffffffLL ? rows : 0x7fffffffLL),
                                      CU_THREADS, 0, s>>>(A, W);
        else
            gather_rows_kernel<<<cu_blocks(rows * W), CU_THREADS, 0, s>>>(A, W);
        if ((st = cu_launched("gather"))) return st;
    } else if (A.total > 0) {
        gather_kernel<<<cu_blocks(A.total), CU_THREADS, 0, s>>>(A);
        if ((st = cu_launched("gather"))) return st;
    }
    return idx_finish("gather", idx, ax, A.n);
}

/* ---- take_along_axis and scatter_add ---- */

struct along_args {
    idx_err E;
    const char *x, *upd;
    char *y;
    const void *idx;
    int idt, es, dt, nd, ax;
    long long ishape[SP_MAX_DIMS], ist[SP_MAX_DIMS], xst[SP_MAX_DIMS], ust[SP_MAX_DIMS],
        yst[SP_MAX_DIMS];
    long long n, total;
};

__global__ void along_kernel(along_args A) {
    CU_FOR(m, A.total) {
        long long rem = m, ioff = 0, xoff = 0;
        for (int i = A.nd - 1; i >= 0; i--) {
            long long c = rem % A.ishape[i];
            rem /= A.ishape[i];
            ioff += c * A.ist[i];
            if (i != A.ax) xoff += c * A.xst[i];
        }
        long long v = cu_load<long long>(A.idt, A.idx, ioff);
        if (v < -A.n || v >= A.n) {
            idx_report(A.E, v, A.ax, A.n);
            continue;
        }
        if (v < 0) v += A.n;
        idx_move(A.es, A.y, m, A.x, xoff + v * A.xst[A.ax]);
    }
}

/* y[o] += u[k], in y's dtype, as the CPU's scatter_add_one. */
__device__ inline void scatter_add_one(int d, char *y, long long o, const char *u, long long k) {
    switch (d) {
    case SP_F32: ((float *)y)[o] += ((const float *)u)[k]; break;
    case SP_F64: ((double *)y)[o] += ((const double *)u)[k]; break;
    case SP_F16:
        ((uint16_t *)y)[o] = cu_f32_to_f16(cu_f16_to_f32(((uint16_t *)y)[o]) +
                                           cu_f16_to_f32(((const uint16_t *)u)[k]));
        break;
    case SP_BF16:
        ((uint16_t *)y)[o] = cu_f32_to_bf16(cu_bf16_to_f32(((uint16_t *)y)[o]) +
                                            cu_bf16_to_f32(((const uint16_t *)u)[k]));
        break;
    case SP_I8:
    case SP_U8: ((uint8_t *)y)[o] = (uint8_t)(((uint8_t *)y)[o] + ((const uint8_t *)u)[k]); break;
    case SP_I32:
        ((uint32_t *)y)[o] = ((uint32_t *)y)[o] + ((const uint32_t *)u)[k];
        break;
    case SP_I64: ((u64 *)y)[o] = ((u64 *)y)[o] + ((const u64 *)u)[k]; break;
    default: ((uint8_t *)y)[o] = ((uint8_t *)y)[o] || ((const uint8_t *)u)[k]; break;
    }
}

/* One thread per line of idx along the axis. */
__global__ void scatter_kernel(along_args A, long long lines) {
    CU_FOR(l, lines) {
        long long rem = l, ioff = 0, uoff = 0, yoff = 0;
        for (int i = A.nd - 1; i >= 0; i--) {
            if (i == A.ax) continue;
            long long c = rem % A.ishape[i];
            rem /= A.ishape[i];
            ioff += c * A.ist[i], uoff += c * A.ust[i], yoff += c * A.yst[i];
        }
        for (long long k = 0; k < A.ishape[A.ax]; k++) {
            long long v = cu_load<long long>(A.idt, A.idx, ioff + k * A.ist[A.ax]);
            if (v < -A.n || v >= A.n) {
                idx_report(A.E, v, A.ax, A.n);
                continue;
            }
            if (v < 0) v += A.n;
            scatter_add_one(A.dt, A.y, yoff + v * A.yst[A.ax], A.upd, uoff + k * A.ust[A.ax]);
        }
    }
}

static sp_status along_check(const char *op, const sp_tensor *x, const sp_tensor *idx, int ax) {
    int ok = idx->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim; i++) ok = i == ax || idx->shape[i] <= x->shape[i];
    if (ok) return SP_OK;
    char s1[128], s2[128];
    return sp_error(SP_ERR_SHAPE, "%s: indices of shape %s do not fit x of shape %s on axis %d",
                    op, sp_shape_str(idx->ndim, idx->shape, s1, sizeof s1),
                    sp_shape_str(x->ndim, x->shape, s2, sizeof s2), ax);
}

static void along_fill(along_args *A, const sp_tensor *x, const sp_tensor *idx, sp_tensor *y,
                       int ax, int op) {
    memset(A, 0, sizeof *A);
    A->E.slot = cuda_err_slot();
    A->E.op = op;
    A->x = (const char *)sp_tensor_data(x);
    A->y = (char *)sp_tensor_data(y);
    A->idx = sp_tensor_data(idx);
    A->idt = idx->dtype;
    A->es = (int)sp_dtype_size(x->dtype);
    A->dt = x->dtype;
    A->nd = idx->ndim;
    A->ax = ax;
    int64_t ys[SP_MAX_DIMS];
    cu_contig_strides(y->ndim, y->shape, ys);
    for (int i = 0; i < idx->ndim; i++) {
        A->ishape[i] = idx->shape[i];
        A->ist[i] = idx->strides[i];
        A->xst[i] = x->strides[i];
        A->yst[i] = ys[i];
    }
    A->n = x->shape[ax];
    A->total = sp_tensor_numel(idx);
}

sp_status cuda_take_along_axis(const sp_kernel_args *a) {
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "take_along_axis: kernel called with %d inputs", a->n_in);
    sp_tensor *x = a->in[0], *idx = a->in[1], *y = a->out[0];
    int ax = 0;
    sp_status st = idx_check_dtype("take_along_axis", idx);
    if (st || (st = idx_norm_axis("take_along_axis", a->attrs, x->ndim, &ax))) return st;
    if ((st = along_check("take_along_axis", x, idx, ax))) return st;
    if ((st = idx_check_out("take_along_axis", y, idx->ndim, idx->shape))) return st;
    if (x->dtype != y->dtype)
        return sp_error(SP_ERR_INTERNAL, "take_along_axis: output dtype differs");
    along_args A;
    along_fill(&A, x, idx, y, ax, SP_OP_TAKE_ALONG_AXIS);
    if (A.total == 0) return SP_OK;
    along_kernel<<<cu_blocks(A.total), CU_THREADS, 0, cuda_stream()>>>(A);
    if ((st = cu_launched("take_along_axis"))) return st;
    return idx_finish("take_along_axis", idx, ax, A.n);
}

sp_status cuda_scatter_add(const sp_kernel_args *a) {
    if (a->n_in != 3 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "scatter_add: kernel called with %d inputs", a->n_in);
    sp_tensor *x = a->in[0], *idx = a->in[1], *upd = a->in[2], *y = a->out[0];
    int ax = 0;
    sp_status st = idx_check_dtype("scatter_add", idx);
    if (st || (st = idx_norm_axis("scatter_add", a->attrs, x->ndim, &ax))) return st;
    if ((st = along_check("scatter_add", x, idx, ax))) return st;
    int same = upd->ndim == idx->ndim;
    for (int i = 0; same && i < idx->ndim; i++) same = upd->shape[i] == idx->shape[i];
    if (!same || upd->dtype != x->dtype) {
        char s1[128], s2[128];
        return sp_error(SP_ERR_SHAPE,
                        "scatter_add: updates %s %s do not match indices %s and x dtype %s",
                        sp_shape_str(upd->ndim, upd->shape, s1, sizeof s1),
                        sp_dtype_name(upd->dtype),
                        sp_shape_str(idx->ndim, idx->shape, s2, sizeof s2),
                        sp_dtype_name(x->dtype));
    }
    if ((st = idx_check_out("scatter_add", y, x->ndim, x->shape))) return st;
    if (x->dtype != y->dtype)
        return sp_error(SP_ERR_INTERNAL, "scatter_add: output dtype differs");
    int64_t ds[SP_MAX_DIMS];
    cu_contig_strides(x->ndim, x->shape, ds);
    if ((st = cu_copy(x->ndim, x->shape, y->dtype, sp_tensor_data(y), ds, x->dtype,
                      sp_tensor_data(x), x->strides)))
        return st;
    along_args A;
    along_fill(&A, x, idx, y, ax, SP_OP_SCATTER_ADD);
    A.upd = (const char *)sp_tensor_data(upd);
    for (int i = 0; i < upd->ndim; i++) A.ust[i] = upd->strides[i];
    if (A.total == 0) return SP_OK;
    long long lines = A.total / idx->shape[ax];
    scatter_kernel<<<cu_blocks(lines, 128), 128, 0, cuda_stream()>>>(A, lines);
    if ((st = cu_launched("scatter_add"))) return st;
    return idx_finish("scatter_add", idx, ax, A.n);
}

/* ---- one_hot ---- */

struct onehot_args {
    const void *idx;
    int idt, es;
    cu_layout IL;
    char *y;
    long long depth, total;
    unsigned char on[8], off[8];
};

__global__ void onehot_kernel(onehot_args A) {
    CU_FOR(i, A.total) {
        long long k = i / A.depth, d = i - k * A.depth;
        long long v = cu_load<long long>(A.idt, A.idx, cu_offset(A.IL, k));
        const unsigned char *p = v == d ? A.on : A.off;
        for (int b = 0; b < A.es; b++) A.y[i * A.es + b] = (char)p[b];
    }
}

static void idx_value_bytes(sp_dtype d, double v, unsigned char *pat) {
    sp_tensor *t = sp_tensor_scalar(d, v);
    memset(pat, 0, 8);
    if (t) {
        memcpy(pat, sp_tensor_data(t), sp_dtype_size(d));
        sp_tensor_release(t);
    }
}

sp_status cuda_one_hot(const sp_kernel_args *a) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "one_hot: kernel called with %d inputs", a->n_in);
    sp_tensor *idx = a->in[0], *y = a->out[0];
    sp_status st = idx_check_dtype("one_hot", idx);
    if (st) return st;
    int64_t depth = sp_attrs_get_int(a->attrs, "depth", -1), shape[SP_MAX_DIMS];
    if (depth < 0)
        return sp_error(SP_ERR_ARG, "one_hot: depth must be >= 0, got %lld", (long long)depth);
    if (idx->ndim + 1 > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "one_hot: result would have more than %d dims", SP_MAX_DIMS);
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = depth;
    if ((st = idx_check_out("one_hot", y, idx->ndim + 1, shape))) return st;
    onehot_args A;
    memset(&A, 0, sizeof A);
    A.idx = sp_tensor_data(idx);
    A.idt = idx->dtype;
    A.es = (int)sp_dtype_size(y->dtype);
    A.IL = idx_layout(idx);
    A.y = (char *)sp_tensor_data(y);
    A.depth = depth;
    A.total = sp_tensor_numel(y);
    idx_value_bytes(y->dtype, sp_attrs_get_float(a->attrs, "off_value", 0.0), A.off);
    idx_value_bytes(y->dtype, sp_attrs_get_float(a->attrs, "on_value", 1.0), A.on);
    if (A.total == 0) return SP_OK;
    onehot_kernel<<<cu_blocks(A.total), CU_THREADS, 0, cuda_stream()>>>(A);
    return cu_launched("one_hot");
}
