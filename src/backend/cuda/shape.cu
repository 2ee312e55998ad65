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
