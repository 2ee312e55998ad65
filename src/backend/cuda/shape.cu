/*
 * shape.cu -- CUDA kernels of the shape and data-movement primitives:
 * reshape, transpose, broadcast_to, concat, split, stack, pad, tile, slice.
 *
 * Each is stride arithmetic on the host around one device mover, cu_copy
 * (cuda_common.cu): a block of a logical shape read through one set of
 * strides and written through another, converting dtypes where concat and
 * stack promote.  The host code follows the CPU's shape.c line for line, so
 * both devices agree on every view (broadcast strides of 0, negative slice
 * steps, tile's (repeat, index) pairs of dims) and on every error message.
 * Only reflect padding has its own kernel: each output element maps each of
 * its coordinates back through numpy's reflection, which no single set of
 * strides can express.
 *
 * Transpose has one more: when, after collapsing, the source's unit-stride
 * dim is not the output's last, an element-per-thread copy reads or writes
 * with a large stride.  tr_tiled instead moves 32x32 tiles through shared
 * memory (a 33-wide row, so the column reads hit distinct banks): a warp
 * reads 32 neighbours along the source's unit-stride dim and writes 32
 * neighbours along the output's, both coalesced; the other dims are a
 * batch index.  Raw element moves, so the bits are cu_copy's.
 */
#include <string.h>

#include "backend/cuda/cuda_common.cuh"
#include "core/internal.h"

static sp_status shape_norm_axis(const char *op, int64_t axis, int ndim, int *out) {
    if (axis < -ndim || axis >= ndim)
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", op,
                        (long long)axis, ndim);
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return SP_OK;
}

static sp_status shape_check_out(const char *op, const sp_tensor *out, int ndim,
                                 const int64_t *shape) {
    int ok = out->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = out->shape[i] == shape[i];
    if (ok) return SP_OK;
    char s1[128], s2[128];
    return sp_error(SP_ERR_INTERNAL, "%s: output shape %s does not match the computed %s", op,
                    sp_shape_str(out->ndim, out->shape, s1, sizeof s1),
                    sp_shape_str(ndim, shape, s2, sizeof s2));
}

static sp_status shape_check_args(const sp_kernel_args *a, const char *op, int nin, int nout) {
    if ((nin >= 0 && a->n_in != nin) || (nout >= 0 && a->n_out != nout) || a->n_in < 1 ||
        a->n_out < 1)
        return sp_error(SP_ERR_INTERNAL, "%s: kernel called with %d inputs and %d outputs", op,
                        a->n_in, a->n_out);
    return SP_OK;
}

/* Copies x (its own shape and strides) into the contiguous y, in C order. */
static sp_status shape_to_contig(sp_tensor *y, const sp_tensor *x) {
    int64_t ds[SP_MAX_DIMS];
    cu_contig_strides(x->ndim, x->shape, ds);
    if (sp_tensor_is_contiguous(x) && x->dtype == y->dtype) {
        size_t n = sp_tensor_nbytes(x);
        if (!n) return SP_OK;
        return cuda_check(cudaMemcpyAsync(sp_tensor_data(y), sp_tensor_data(x), n,
                                          cudaMemcpyDeviceToDevice, cuda_stream()),
                          "reshape");
    }
    return cu_copy(x->ndim, x->shape, y->dtype, sp_tensor_data(y), ds, x->dtype,
                   sp_tensor_data(x), x->strides);
}

sp_status cuda_reshape(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "reshape", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    if (sp_tensor_numel(x) != sp_tensor_numel(y) || x->dtype != y->dtype) {
        char s1[128], s2[128];
        return sp_error(SP_ERR_INTERNAL, "reshape: output %s does not fit input %s",
                        sp_shape_str(y->ndim, y->shape, s2, sizeof s2),
                        sp_shape_str(x->ndim, x->shape, s1, sizeof s1));
    }
    return shape_to_contig(y, x);
}

/* ---- tiled transpose ---- */

#define TR_TILE 32
#define TR_ROWS 8 /* threads per tile column: a 32x8 block moves a tile in 4 steps */

/* A transpose as tiles: dims `a` (unit stride in the source, stride da in
 * the output) and `b` (stride sb in the source, unit stride in the output)
 * of sizes A and B, and nb batch dims with both strides. */
struct tr_args {
    long long A, B, sb, da, nbatch;
    int nb;
    long long bshape[CU_MAX_DIMS], bsrc[CU_MAX_DIMS], bdst[CU_MAX_DIMS];
};

template <class E> __global__ void __launch_bounds__(TR_TILE * TR_ROWS)
    tr_tiled(const E *__restrict__ src, E *__restrict__ dst, tr_args t) {
    __shared__ E tile[TR_TILE][TR_TILE + 1];
    long long ta_n = (t.A + TR_TILE - 1) / TR_TILE, tb_n = (t.B + TR_TILE - 1) / TR_TILE;
    long long ntiles = ta_n * tb_n * t.nbatch;
    int tx = threadIdx.x, ty = threadIdx.y;
    for (long long w = blockIdx.x; w < ntiles; w += gridDim.x) {
        long long tb = w % tb_n, rest = w / tb_n, ta = rest % ta_n, q = rest / ta_n;
        long long so = 0, dof = 0;
        for (int k = t.nb - 1; k >= 0; k--) {
            long long i = q % t.bshape[k];
            q /= t.bshape[k];
            so += i * t.bsrc[k];
            dof += i * t.bdst[k];
        }
        long long a0 = ta * TR_TILE, b0 = tb * TR_TILE;
#pragma unroll
        for (int k = 0; k < TR_TILE; k += TR_ROWS) {
            long long a = a0 + tx, b = b0 + ty + k;
            if (a < t.A && b < t.B) tile[ty + k][tx] = src[so + a + b * t.sb];
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < TR_TILE; k += TR_ROWS) {
            long long b = b0 + tx, a = a0 + ty + k;
            if (a < t.A && b < t.B) dst[dof + a * t.da + b] = tile[tx][ty + k];
        }
        __syncthreads();
    }
}

/* Copies the block `shape` of src (strides ss) into the contiguous dst
 * (strides ds) through tiles when that pays: returns 1 when it launched
 * (the caller checks the launch), 0 to leave the copy to cu_copy. */
static int shape_transpose_tiled(int nd, const int64_t *shape, int esize, void *dp,
                                 const int64_t *ds, const void *sp, const int64_t *ss) {
    cu_layout L[2];
    const int64_t *st[2] = {ss, ds};
    long long n = 1;
    for (int i = 0; i < nd; i++) n *= shape[i];
    if (n == 0) return 0;
    cu_collapse(nd, shape, 2, st, L);
    int m = L[0].nd, ia = -1, ib = m - 1;
    if (m < 2 || L[1].st[ib] != 1 || L[0].st[ib] == 1) return 0;
    for (int i = 0; i < ib; i++)
        if (L[0].st[i] == 1) ia = i;
    if (ia < 0 || L[0].shape[ia] < 16 || L[0].shape[ib] < 16) return 0;
    tr_args t;
    memset(&t, 0, sizeof t);
    t.A = L[0].shape[ia], t.B = L[0].shape[ib], t.sb = L[0].st[ib], t.da = L[1].st[ia];
    t.nbatch = 1;
    for (int i = 0; i < m; i++) {
        if (i == ia || i == ib) continue;
        t.bshape[t.nb] = L[0].shape[i], t.bsrc[t.nb] = L[0].st[i], t.bdst[t.nb] = L[1].st[i];
        t.nbatch *= L[0].shape[i];
        t.nb++;
    }
    long long tiles = (t.A + TR_TILE - 1) / TR_TILE * ((t.B + TR_TILE - 1) / TR_TILE) * t.nbatch;
    long long cap = (long long)cuda_sm_count() * 32;
    unsigned g = (unsigned)(tiles < cap ? tiles : cap);
    dim3 blk(TR_TILE, TR_ROWS);
    cudaStream_t s = cuda_stream();
    switch (esize) {
    case 1: tr_tiled<uint8_t><<<g, blk, 0, s>>>((const uint8_t *)sp, (uint8_t *)dp, t); break;
    case 2: tr_tiled<uint16_t><<<g, blk, 0, s>>>((const uint16_t *)sp, (uint16_t *)dp, t); break;
    case 4: tr_tiled<uint32_t><<<g, blk, 0, s>>>((const uint32_t *)sp, (uint32_t *)dp, t); break;
    case 8:
        tr_tiled<unsigned long long>
            <<<g, blk, 0, s>>>((const unsigned long long *)sp, (unsigned long long *)dp, t);
        break;
    default: return 0;
    }
    return 1;
}

sp_status cuda_transpose(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "transpose", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim, n = 0, perm[SP_MAX_DIMS], seen[SP_MAX_DIMS] = {0};
    const int64_t *p = sp_attrs_get_ints(a->attrs, "perm", &n);
    if (!p) {
        for (int i = 0; i < nd; i++) perm[i] = nd - 1 - i;
    } else {
        if (n != nd)
            return sp_error(SP_ERR_ARG, "transpose: perm has %d entries for %d dims", n, nd);
        for (int i = 0; i < nd; i++) {
            if ((st = shape_norm_axis("transpose", p[i], nd, &perm[i]))) return st;
            if (seen[perm[i]]++)
                return sp_error(SP_ERR_ARG, "transpose: axis %d repeated in perm", perm[i]);
        }
    }
    int64_t shape[SP_MAX_DIMS], ss[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = x->shape[perm[i]], ss[i] = x->strides[perm[i]];
    if ((st = shape_check_out("transpose", y, nd, shape))) return st;
    cu_contig_strides(nd, shape, ds);
    if (x->dtype == y->dtype &&
        shape_transpose_tiled(nd, shape, (int)sp_dtype_size(x->dtype), sp_tensor_data(y), ds,
                              sp_tensor_data(x), ss))
        return cu_launched("transpose");
    return cu_copy(nd, shape, y->dtype, sp_tensor_data(y), ds, x->dtype, sp_tensor_data(x), ss);
}

sp_status cuda_broadcast_to(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "broadcast_to", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = y->ndim, lead = y->ndim - x->ndim;
    int64_t ss[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    if (lead < 0) goto bad;
    for (int i = 0; i < nd; i++) {
        int j = i - lead;
        if (j < 0 || (x->shape[j] == 1 && y->shape[i] != 1))
            ss[i] = 0;
        else if (x->shape[j] == y->shape[i])
            ss[i] = x->strides[j];
        else
            goto bad;
    }
    cu_contig_strides(nd, y->shape, ds);
    return cu_copy(nd, y->shape, y->dtype, sp_tensor_data(y), ds, x->dtype, sp_tensor_data(x),
                   ss);
bad:
    char s1[128], s2[128];
    return sp_error(SP_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s",
                    sp_shape_str(x->ndim, x->shape, s1, sizeof s1),
                    sp_shape_str(y->ndim, y->shape, s2, sizeof s2));
}

sp_status cuda_concat(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "concat", -1, 1);
    if (st) return st;
    sp_tensor *y = a->out[0];
    int nd = a->in[0]->ndim, ax = 0;
    if ((st = shape_norm_axis("concat", sp_attrs_get_int(a->attrs, "axis", 0), nd, &ax)))
        return st;
    int64_t shape[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    memcpy(shape, a->in[0]->shape, sizeof shape);
    shape[ax] = 0;
    for (int k = 0; k < a->n_in; k++) {
        const sp_tensor *x = a->in[k];
        int ok = x->ndim == nd;
        for (int i = 0; ok && i < nd; i++) ok = i == ax || x->shape[i] == shape[i];
        if (!ok) {
            char s1[128], s2[128];
            return sp_error(SP_ERR_SHAPE,
                            "concat: input %d of shape %s does not fit input 0 of shape %s on "
                            "axis %d",
                            k, sp_shape_str(x->ndim, x->shape, s1, sizeof s1),
                            sp_shape_str(nd, a->in[0]->shape, s2, sizeof s2), ax);
        }
        shape[ax] += x->shape[ax];
    }
    if ((st = shape_check_out("concat", y, nd, shape))) return st;
    cu_contig_strides(nd, shape, ds);
    int64_t off = 0;
    for (int k = 0; k < a->n_in && !st; k++) {
        const sp_tensor *x = a->in[k];
        st = cu_copy(nd, x->shape, y->dtype, cu_ptr(y, off * ds[ax]), ds, x->dtype,
                     sp_tensor_data(x), x->strides);
        off += x->shape[ax];
    }
    return st;
}

sp_status cuda_split(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "split", 1, -1);
    if (st) return st;
    sp_tensor *x = a->in[0];
    int nd = x->ndim, ax = 0, n = 0;
    if ((st = shape_norm_axis("split", sp_attrs_get_int(a->attrs, "axis", 0), nd, &ax))) return st;
    const int64_t *sizes = sp_attrs_get_ints(a->attrs, "sizes", &n);
    if (!sizes || n != a->n_out)
        return sp_error(SP_ERR_INTERNAL, "split: %d sizes for %d outputs", n, a->n_out);
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        if (sizes[k] < 0 || sizes[k] > x->shape[ax] - total)
            return sp_error(SP_ERR_ARG, "split: sizes do not sum to %lld, the length of axis %d",
                            (long long)x->shape[ax], ax);
        total += sizes[k];
    }
    if (total != x->shape[ax])
        return sp_error(SP_ERR_ARG, "split: sizes sum to %lld, not %lld, the length of axis %d",
                        (long long)total, (long long)x->shape[ax], ax);
    int64_t shape[SP_MAX_DIMS], ds[SP_MAX_DIMS], off = 0;
    memcpy(shape, x->shape, sizeof shape);
    for (int k = 0; k < n && !st; k++) {
        sp_tensor *y = a->out[k];
        shape[ax] = sizes[k];
        if ((st = shape_check_out("split", y, nd, shape))) return st;
        cu_contig_strides(nd, shape, ds);
        st = cu_copy(nd, shape, y->dtype, sp_tensor_data(y), ds, x->dtype,
                     cu_ptr(x, off * x->strides[ax]), x->strides);
        off += sizes[k];
    }
    return st;
}

sp_status cuda_stack(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "stack", -1, 1);
    if (st) return st;
    sp_tensor *y = a->out[0];
    const sp_tensor *x0 = a->in[0];
    int nd = x0->ndim, ax = 0;
    if ((st = shape_norm_axis("stack", sp_attrs_get_int(a->attrs, "axis", 0), nd + 1, &ax)))
        return st;
    int64_t shape[SP_MAX_DIMS], ys[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    if (nd + 1 > SP_MAX_DIMS) return sp_error(SP_ERR_SHAPE, "stack: result has more than 8 dims");
    for (int i = 0, j = 0; i <= nd; i++) shape[i] = i == ax ? a->n_in : x0->shape[j++];
    if ((st = shape_check_out("stack", y, nd + 1, shape))) return st;
    cu_contig_strides(nd + 1, shape, ys);
    for (int i = 0, j = 0; i <= nd; i++)
        if (i != ax) ds[j++] = ys[i];
    for (int k = 0; k < a->n_in && !st; k++) {
        const sp_tensor *x = a->in[k];
        int ok = x->ndim == nd;
        for (int i = 0; ok && i < nd; i++) ok = x->shape[i] == x0->shape[i];
        if (!ok) {
            char s1[128], s2[128];
            return sp_error(SP_ERR_SHAPE, "stack: input %d has shape %s, input 0 has %s", k,
                            sp_shape_str(x->ndim, x->shape, s1, sizeof s1),
                            sp_shape_str(nd, x0->shape, s2, sizeof s2));
        }
        st = cu_copy(nd, x->shape, y->dtype, cu_ptr(y, k * ys[ax]), ds, x->dtype,
                     sp_tensor_data(x), x->strides);
    }
    return st;
}

/* ---- pad ---- */

struct pad_args {
    int nd, es;
    const char *x;
    char *y;
    long long shape[SP_MAX_DIMS], xshape[SP_MAX_DIMS], xst[SP_MAX_DIMS], before[SP_MAX_DIMS];
    long long n;
};

/* numpy's reflect index (period 2(n-1)), as the CPU's pad_reflect_index. */
__device__ inline long long pad_reflect(long long o, long long before, long long n) {
    if (n == 1) return 0;
    long long p = 2 * (n - 1), i = (o - before) % p;
    if (i < 0) i += p;
    return i < n ? i : p - i;
}

__global__ void pad_reflect_kernel(pad_args A) {
    CU_FOR(i, A.n) {
        long long rem = i, off = 0;
        for (int k = A.nd - 1; k >= 0; k--) {
            long long c = rem % A.shape[k];
            rem /= A.shape[k];
            off += pad_reflect(c, A.before[k], A.xshape[k]) * A.xst[k];
        }
        switch (A.es) {
        case 1: ((uint8_t *)A.y)[i] = ((const uint8_t *)A.x)[off]; break;
        case 2: ((uint16_t *)A.y)[i] = ((const uint16_t *)A.x)[off]; break;
        case 4: ((uint32_t *)A.y)[i] = ((const uint32_t *)A.x)[off]; break;
        default:
            ((unsigned long long *)A.y)[i] = ((const unsigned long long *)A.x)[off];
            break;
        }
    }
}

/* The bytes of v stored in dtype d with sp_store_f64's rules. */
static void shape_value_bytes(sp_dtype d, double v, unsigned char *pat) {
    sp_tensor *t = sp_tensor_scalar(d, v); /* the core's own conversion */
    memset(pat, 0, 8);
    if (t) {
        memcpy(pat, sp_tensor_data(t), sp_dtype_size(d));
        sp_tensor_release(t);
    }
}

sp_status cuda_pad(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "pad", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim, n = 0;
    const int64_t *pads = sp_attrs_get_ints(a->attrs, "pads", &n);
    const char *mode = sp_attrs_get_str(a->attrs, "mode", "constant");
    if (n != 2 * nd) return sp_error(SP_ERR_ARG, "pad: %d pads for %d dims (want 2 per dim)", n, nd);
    int64_t shape[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        if (pads[2 * i] < 0 || pads[2 * i + 1] < 0)
            return sp_error(SP_ERR_ARG, "pad: negative pad on axis %d", i);
        shape[i] = x->shape[i] + pads[2 * i] + pads[2 * i + 1];
    }
    if ((st = shape_check_out("pad", y, nd, shape))) return st;
    if (x->dtype != y->dtype) return sp_error(SP_ERR_INTERNAL, "pad: output dtype differs");
    int es = (int)sp_dtype_size(y->dtype);
    cu_contig_strides(nd, shape, ds);
    if (strcmp(mode, "constant") == 0) {
        unsigned char val[8];
        shape_value_bytes(y->dtype, sp_attrs_get_float(a->attrs, "value", 0.0), val);
        if ((st = cu_fill_bytes(sp_tensor_data(y), sp_tensor_numel(y), es, val))) return st;
        int64_t off = 0;
        for (int i = 0; i < nd; i++) off += pads[2 * i] * ds[i];
        return cu_copy(nd, x->shape, y->dtype, cu_ptr(y, off), ds, x->dtype, sp_tensor_data(x),
                       x->strides);
    }
    if (strcmp(mode, "reflect") != 0)
        return sp_error(SP_ERR_ARG, "pad: unknown mode '%s' (constant or reflect)", mode);
    if (sp_tensor_numel(y) == 0) return SP_OK;
    for (int i = 0; i < nd; i++)
        if (x->shape[i] == 0 && shape[i] > 0)
            return sp_error(SP_ERR_ARG, "pad: cannot reflect-pad the empty axis %d", i);
    pad_args A;
    memset(&A, 0, sizeof A);
    A.nd = nd;
    A.es = es;
    A.x = (const char *)sp_tensor_data(x);
    A.y = (char *)sp_tensor_data(y);
    A.n = sp_tensor_numel(y);
    for (int i = 0; i < nd; i++) {
        A.shape[i] = shape[i];
        A.xshape[i] = x->shape[i];
        A.xst[i] = x->strides[i];
        A.before[i] = pads[2 * i];
    }
    pad_reflect_kernel<<<cu_blocks(A.n), CU_THREADS, 0, cuda_stream()>>>(A);
    return cu_launched("pad");
}

/* ---- tile and slice ---- */

sp_status cuda_tile(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "tile", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nr = 0;
    const int64_t *reps = sp_attrs_get_ints(a->attrs, "reps", &nr);
    int nd = x->ndim > nr ? x->ndim : nr;
    if (nd > SP_MAX_DIMS) return sp_error(SP_ERR_SHAPE, "tile: result has more than 8 dims");
    int64_t r[SP_MAX_DIMS], xs[SP_MAX_DIMS], xst[SP_MAX_DIMS], shape[SP_MAX_DIMS];
    int64_t ys[SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ri = i - (nd - nr), xi = i - (nd - x->ndim);
        r[i] = ri >= 0 ? reps[ri] : 1;
        xs[i] = xi >= 0 ? x->shape[xi] : 1;
        xst[i] = xi >= 0 ? x->strides[xi] : 0;
        if (r[i] < 0) return sp_error(SP_ERR_ARG, "tile: negative repeat %lld", (long long)r[i]);
        shape[i] = r[i] * xs[i];
    }
    if ((st = shape_check_out("tile", y, nd, shape))) return st;
    cu_contig_strides(nd, shape, ys);
    int64_t bsh[2 * SP_MAX_DIMS], bd[2 * SP_MAX_DIMS], bs[2 * SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        bsh[2 * i] = r[i], bd[2 * i] = xs[i] * ys[i], bs[2 * i] = 0;
        bsh[2 * i + 1] = xs[i], bd[2 * i + 1] = ys[i], bs[2 * i + 1] = xst[i];
    }
    return cu_copy(2 * nd, bsh, y->dtype, sp_tensor_data(y), bd, x->dtype, sp_tensor_data(x), bs);
}

sp_status cuda_slice(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "slice", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim, nb = 0, ne = 0, ns = 0;
    const int64_t *begin = sp_attrs_get_ints(a->attrs, "begin", &nb);
    const int64_t *end = sp_attrs_get_ints(a->attrs, "end", &ne);
    const int64_t *step = sp_attrs_get_ints(a->attrs, "step", &ns);
    if (nb > nd || ne > nd || ns > nd)
        return sp_error(SP_ERR_ARG, "slice: begin/end/step have %d/%d/%d entries for %d dims", nb,
                        ne, ns, nd);
    int64_t shape[SP_MAX_DIMS], ss[SP_MAX_DIMS], ds[SP_MAX_DIMS], off = 0;
    for (int i = 0; i < nd; i++) {
        int64_t b = i < nb ? begin[i] : SP_SLICE_NONE, e = i < ne ? end[i] : SP_SLICE_NONE;
        int64_t s = i < ns ? step[i] : 1, first;
        if (s == 0) return sp_error(SP_ERR_ARG, "slice: step 0 on axis %d", i);
        shape[i] = sp_slice_range(x->shape[i], b, e, s, &first);
        if (shape[i] > 0) off += first * x->strides[i];
        ss[i] = shape[i] > 1 ? s * x->strides[i] : 0;
    }
    if ((st = shape_check_out("slice", y, nd, shape))) return st;
    cu_contig_strides(nd, shape, ds);
    return cu_copy(nd, shape, y->dtype, sp_tensor_data(y), ds, x->dtype, cu_ptr(x, off), ss);
}
