/*
 * tensor.c -- making, counting and releasing strided tensors.
 *
 * An sp_tensor is a layout (dtype, shape, strides in elements, offset) over
 * a ref-counted buffer.  Many tensors may share one buffer (views); each
 * holds one reference to it, so the buffer lives as long as any view does.
 *
 * Invariants every tensor made here keeps:
 *  - 0 <= ndim <= SP_MAX_DIMS and every size >= 0; entries past ndim are 0.
 *  - every element reachable through (shape, strides, offset) lies inside
 *    buf (checked by sp_tensor_view_of for layouts a caller supplies; true by
 *    construction for the others).  Strides may be 0 or negative.
 *  - numel * itemsize fits in size_t.
 * Kernels rely on the second: they index without bounds checks.
 *
 * A new tensor is contiguous in C order.  "Contiguous" ignores the strides
 * of size-1 axes (they are never stepped over) and calls every empty tensor
 * contiguous, as numpy does; both matter when reshape decides whether it
 * can return a view.
 *
 * A meta tensor (on SP_META) is all of the above except the memory: its
 * buffer's data is NULL.  Layout functions work on it unchanged; anything
 * that reads values (sp_tensor_get here, copies and printing elsewhere)
 * fails with sp_meta_value_error.
 */
#include <stdlib.h>

#include "core/device.h"
#include "core/tensor_util.h"

sp_status core_check_shape(const char *what, int ndim, const int64_t *shape, int64_t *numel) {
    if (ndim < 0 || ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_ARG, "%s: ndim %d out of range [0, %d]", what, ndim, SP_MAX_DIMS);
    if (ndim > 0 && !shape) return sp_error(SP_ERR_ARG, "%s: NULL shape for ndim %d", what, ndim);
    int64_t n = 1;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char buf[256];
            return sp_error(SP_ERR_ARG, "%s: negative size %lld in shape %s", what,
                            (long long)shape[i], sp_shape_str(ndim, shape, buf, sizeof buf));
        }
        if (__builtin_mul_overflow(n, shape[i], &n)) overflow = 1;
    }
    /* An overflowing product with a zero later on is still an empty tensor. */
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) n = 0, overflow = 0;
    if (overflow) {
        char buf[256];
        return sp_error(SP_ERR_ARG, "%s: shape %s has more elements than fit in int64", what,
                        sp_shape_str(ndim, shape, buf, sizeof buf));
    }
    if (numel) *numel = n;
    return SP_OK;
}

void core_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        /* Only an empty tensor's shape can overflow here, and its strides
         * are never used: saturate rather than overflow. */
        if (__builtin_mul_overflow(s, shape[i] > 0 ? shape[i] : 1, &s)) s = INT64_MAX;
    }
}

sp_status core_norm_axis(const char *what, int axis, int ndim, int *out) {
    int a = axis < 0 ? axis + ndim : axis;
    if (a < 0 || a >= ndim)
        return sp_error(SP_ERR_ARG, "%s: axis %d out of range for a tensor of %d dims", what, axis,
                        ndim);
    *out = a;
    return SP_OK;
}

sp_tensor *core_tensor_wrap(sp_buffer *buf, sp_dtype dtype, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset) {
    sp_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        sp_error(SP_ERR_NOMEM, "out of memory allocating a tensor header");
        return NULL;
    }
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->strides[i] = strides[i];
    }
    t->offset = offset;
    t->buf = buf;
    sp_buffer_retain(buf);
    t->refcount = 1;
    return t;
}

static sp_status tensor_check_dtype(const char *what, sp_dtype dtype) {
    if ((unsigned)dtype >= SP_DTYPE_COUNT)
        return sp_error(SP_ERR_DTYPE, "%s: invalid dtype %d", what, (int)dtype);
    return SP_OK;
}

static sp_tensor *tensor_new_named(const char *what, sp_dtype dtype, int ndim,
                                   const int64_t *shape, sp_device dev) {
    int64_t numel;
    if (tensor_check_dtype(what, dtype) || core_check_shape(what, ndim, shape, &numel)) return NULL;
    size_t isz = sp_dtype_size(dtype);
    if ((uint64_t)numel > SIZE_MAX / isz) {
        char buf[256];
        sp_error(SP_ERR_NOMEM, "%s: shape %s of %s is too large to allocate", what,
                 sp_shape_str(ndim, shape, buf, sizeof buf), sp_dtype_name(dtype));
        return NULL;
    }
    sp_buffer *b = sp_buffer_new(dev, (size_t)numel * isz);
    if (!b) return NULL;
    int64_t strides[SP_MAX_DIMS];
    core_contiguous_strides(ndim, shape, strides);
    sp_tensor *t = core_tensor_wrap(b, dtype, ndim, shape, strides, 0);
    sp_buffer_release(b); /* t holds the only reference now (or none on failure) */
    return t;
}

sp_tensor *sp_tensor_new(sp_dtype dtype, int ndim, const int64_t *shape, sp_device dev) {
    return tensor_new_named("tensor_new", dtype, ndim, shape, dev);
}

sp_tensor *sp_tensor_zeros(sp_dtype dtype, int ndim, const int64_t *shape, sp_device dev) {
    sp_tensor *t = tensor_new_named("tensor_zeros", dtype, ndim, shape, dev);
    if (!t) return NULL;
    if (dev.type != SP_DEVICE_META && sp_device_memset(dev, t->buf->data, 0, t->buf->nbytes) != SP_OK) {
        sp_tensor_release(t);
        return NULL;
    }
    return t;
}

sp_tensor *sp_tensor_from_data(sp_dtype dtype, int ndim, const int64_t *shape, const void *data) {
    sp_tensor *t = tensor_new_named("tensor_from_data", dtype, ndim, shape, SP_CPU);
    if (!t) return NULL;
    size_t n = sp_tensor_nbytes(t);
    if (n && !data) {
        sp_tensor_release(t);
        sp_error(SP_ERR_ARG, "tensor_from_data: NULL data for %zu bytes", n);
        return NULL;
    }
    if (n) memcpy(t->buf->data, data, n);
    return t;
}

sp_tensor *sp_tensor_scalar(sp_dtype dtype, double v) {
    sp_tensor *t = tensor_new_named("tensor_scalar", dtype, 0, NULL, SP_CPU);
    if (t) sp_store_f64(dtype, t->buf->data, v);
    return t;
}

sp_tensor *sp_tensor_view_of(sp_buffer *buf, sp_dtype dtype, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset) {
    int64_t numel;
    if (!buf) {
        sp_error(SP_ERR_ARG, "tensor_view_of: NULL buffer");
        return NULL;
    }
    if (tensor_check_dtype("tensor_view_of", dtype) ||
        core_check_shape("tensor_view_of", ndim, shape, &numel))
        return NULL;
    if (ndim > 0 && !strides) {
        sp_error(SP_ERR_ARG, "tensor_view_of: NULL strides for ndim %d", ndim);
        return NULL;
    }
    size_t isz = sp_dtype_size(dtype);
    int64_t cap = (int64_t)(buf->nbytes / isz); /* whole elements in the buffer */
    char sbuf[256];
    if (offset < 0 || offset > cap) {
        sp_error(SP_ERR_ARG, "tensor_view_of: offset %lld outside a buffer of %lld %s elements",
                 (long long)offset, (long long)cap, sp_dtype_name(dtype));
        return NULL;
    }
    if (numel > 0) {
        /* The lowest and highest element reachable; any overflow on the way
         * means the layout reaches far outside every real buffer. */
        int64_t lo = offset, hi = offset;
        int bad = 0;
        for (int i = 0; i < ndim; i++) {
            int64_t span;
            if (__builtin_mul_overflow(shape[i] - 1, strides[i], &span)) {
                bad = 1;
                break;
            }
            if (span < 0 ? __builtin_add_overflow(lo, span, &lo)
                         : __builtin_add_overflow(hi, span, &hi)) {
                bad = 1;
                break;
            }
        }
        if (bad || lo < 0 || hi >= cap) {
            sp_error(SP_ERR_ARG,
                     "tensor_view_of: shape %s with strides and offset %lld reaches outside a "
                     "buffer of %lld %s elements",
                     sp_shape_str(ndim, shape, sbuf, sizeof sbuf), (long long)offset,
                     (long long)cap, sp_dtype_name(dtype));
            return NULL;
        }
    }
    return core_tensor_wrap(buf, dtype, ndim, shape, strides, offset);
}

void sp_tensor_retain(sp_tensor *t) {
    if (t) sp_ref_inc(&t->refcount);
}

void sp_tensor_release(sp_tensor *t) {
    if (!t || sp_ref_dec(&t->refcount) > 0) return;
    sp_buffer_release(t->buf);
    free(t);
}

int64_t sp_tensor_numel(const sp_tensor *t) {
    /* A zero anywhere first: the other sizes of an empty tensor may
     * multiply past int64 (tensor_new allows that). */
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0) return 0;
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t sp_tensor_nbytes(const sp_tensor *t) {
    return (size_t)sp_tensor_numel(t) * sp_dtype_size(t->dtype);
}

int sp_tensor_is_contiguous(const sp_tensor *t) {
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 0) return 1;
        if (t->shape[i] != 1 && t->strides[i] != expect) return 0;
        expect *= t->shape[i];
    }
    return 1;
}

int sp_tensor_is_meta(const sp_tensor *t) {
    return t && t->buf && t->buf->device.type == SP_DEVICE_META;
}

sp_status sp_meta_value_error(const char *what, const sp_tensor *t) {
    char sh[256];
    if (!t) return sp_error(SP_ERR_VALUE, "%s: the value of a tensor is not known at compile time", what);
    return sp_error(SP_ERR_VALUE,
                    "%s: the value of a tensor is not known at compile time (a meta tensor of "
                    "shape %s %s)",
                    what, sp_shape_str(t->ndim, t->shape, sh, sizeof sh), sp_dtype_name(t->dtype));
}

void *sp_tensor_data(const sp_tensor *t) {
    if (!t->buf->data) return NULL; /* a meta tensor */
    return (char *)t->buf->data + (size_t)t->offset * sp_dtype_size(t->dtype);
}

double sp_tensor_get(const sp_tensor *t, const int64_t *index) {
    if (!t) {
        sp_error(SP_ERR_ARG, "tensor_get: NULL tensor");
        return NAN;
    }
    if (sp_tensor_is_meta(t)) {
        sp_meta_value_error("tensor_get", t);
        return NAN;
    }
    if (t->buf->device.type != SP_DEVICE_CPU) {
        sp_error(SP_ERR_DEVICE, "tensor_get: the tensor is on %s, not the CPU",
                 sp_device_type_name(t->buf->device.type));
        return NAN;
    }
    if (t->ndim > 0 && !index) {
        sp_error(SP_ERR_ARG, "tensor_get: NULL index for a %d-d tensor", t->ndim);
        return NAN;
    }
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (index[i] < 0 || index[i] >= t->shape[i]) {
            char buf[256];
            sp_error(SP_ERR_ARG, "tensor_get: index %lld out of range for axis %d of shape %s",
                     (long long)index[i], i, sp_shape_str(t->ndim, t->shape, buf, sizeof buf));
            return NAN;
        }
        off += index[i] * t->strides[i];
    }
    const char *p = (const char *)sp_tensor_data(t) + off * (int64_t)sp_dtype_size(t->dtype);
    return sp_load_f64(t->dtype, p);
}

char *sp_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    size_t used = 0;
    buf[0] = '\0';
#define SHAPE_PUT(...)                                                                     \
    do {                                                                                   \
        if (used < n) {                                                                    \
            int w_ = snprintf(buf + used, n - used, __VA_ARGS__);                          \
            if (w_ > 0) used += (size_t)w_;                                                \
        }                                                                                  \
    } while (0)
    SHAPE_PUT("(");
    for (int i = 0; i < ndim && shape; i++) SHAPE_PUT(i ? ", %lld" : "%lld", (long long)shape[i]);
    /* A 1-tuple prints with its trailing comma, as Python writes it. */
    SHAPE_PUT(ndim == 1 ? ",)" : ")");
#undef SHAPE_PUT
    return buf;
}
