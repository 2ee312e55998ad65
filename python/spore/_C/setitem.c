/*
 * setitem.c -- x[index] = value: item assignment into a Tensor, in place,
 * with numpy's semantics (MindSpore's Tensor.__setitem__ in PYNATIVE_MODE).
 *
 * The target is found with the indexing code of x[index] itself
 * (rt_getitem), so assignment and reading agree on every index form; the
 * write is Spore's strided converting copy (sp_tensor_copy_into), so the
 * value is broadcast to the target's shape and converted to x's dtype as
 * numpy does (float -> int truncates, nonzero -> True).  Three forms:
 *
 *   basic      ints, slices, None, Ellipsis and tuples of them: the target
 *              is a view of x; one copy into it.
 *   mask       a bool tensor, array or list m with m.shape == x.shape[:k]:
 *              the target rows are x[p] for each true position p in C
 *              order.  A value that broadcasts to one row (a scalar, most
 *              often) goes through the where primitive over the whole
 *              tensor and one copy back; otherwise it is broadcast to
 *              (count, *row) and copied row by row.
 *   integers   an integer tensor, array or list i: the rows x[i[j]] along
 *              axis 0, the value broadcast to i.shape + x.shape[1:] and
 *              copied row by row, so with repeated indices the last one
 *              wins, as in numpy.
 *
 * Invariants: nothing is written unless the whole assignment is valid
 * (index bounds, mask shape, value shape are all checked first); a value
 * that shares x's memory (x[1:] = x[:-1]) is copied aside before any write,
 * so the result never depends on the copy order.
 *
 * Devices: on the CPU the copies write into x's memory directly.  A tensor
 * on the GPU is copied to the CPU, assigned there, and written back whole
 * with the assign primitive (the GPU's own converting copy); it must be
 * contiguous, as every in-place primitive's input.
 *
 * Item assignment is eager only: the GRAPH_MODE front end rejects it in a
 * construct (tensors in a compiled graph are values, not storage).
 *
 * Under the PyNative tape (src/runtime/tape.h) an assignment where x or the
 * value carries a gradient is recorded functionally, as primitives with
 * rules, before the write: x_new = where(M, reshape(gather(flat(value), Q)),
 * x), where M (true where the assignment writes) and Q (for each written
 * element, the flat index of the value's element that lands there) are
 * made by running this same assignment on helper tensors -- so every index
 * form agrees with the real write by construction, repeated indices
 * included.  x's gradient is then zero where it was overwritten and the
 * value's is the gradient there, summed over broadcasting.  The tape then
 * takes x_new as x's node.  Any other write bumps x's version on the tape.
 */
#include "py.h"

#include <string.h>

/* Sets IndexError (bounds, mask shape) or ValueError (value shape). */
static int set_index_error(const char *msg) {
    PyErr_SetString(PyExc_IndexError, msg);
    return -1;
}

static int is_cpu(const sp_tensor *t) { return t->buf && t->buf->device.type == SP_DEVICE_CPU; }

/* t on the CPU (a new reference: t itself when there already), NULL + exception. */
static sp_tensor *cpu_of(sp_tensor *t) {
    sp_tensor *c = NULL;
    if (sp_tensor_to(t, SP_CPU, &c) != SP_OK) {
        py_raise();
        return NULL;
    }
    return c;
}

/* The value as a CPU tensor (new reference), NULL + exception.  Python
 * scalars take x's dtype (weak typing); anything else keeps its own, the
 * copy converting it. */
static sp_tensor *value_tensor(PyObject *value, sp_dtype xd) {
    sp_value *v = py_to_value(value, NULL);
    if (!v) return NULL;
    sp_tensor *t = NULL;
    if (v->kind == SP_V_TENSOR) {
        t = cpu_of(v->u.tensor);
    } else if (rt_is_scalar(v) || v->kind == SP_V_LIST || v->kind == SP_V_TUPLE) {
        if (!(t = rt_as_tensor(v, (int)xd, "Tensor.__setitem__() value"))) py_raise();
    } else {
        PyErr_Format(PyExc_TypeError, "Tensor.__setitem__(): cannot assign a value of type '%.100s'",
                     Py_TYPE(value)->tp_name);
    }
    sp_value_release(v);
    return t;
}

/* src without its leading size-1 axes beyond ndim (numpy lets a value of
 * shape (1, 3) fill a target of shape (3,)), checked to broadcast to
 * (ndim, shape); a new reference, NULL + ValueError naming both shapes. */
static sp_tensor *fit_value(sp_tensor *src, int ndim, const int64_t *shape) {
    int drop = 0;
    while (src->ndim - drop > ndim && src->shape[drop] == 1) drop++;
    int ok = src->ndim - drop <= ndim;
    for (int i = 0; ok && i < src->ndim - drop; i++) {
        int64_t s = src->shape[drop + i], d = shape[ndim - (src->ndim - drop) + i];
        ok = s == d || s == 1;
    }
    if (!ok) {
        char a[160], b[160];
        PyErr_Format(PyExc_ValueError, "could not broadcast input array from shape %s into shape %s",
                     sp_shape_str(src->ndim, src->shape, a, sizeof a), sp_shape_str(ndim, shape, b, sizeof b));
        return NULL;
    }
    sp_tensor *out = NULL;
    if (sp_tensor_reshape(src, src->ndim - drop, src->shape + drop, &out) != SP_OK) {
        py_raise();
        return NULL;
    }
    return out;
}

/* A view of the row of x at element offset `off` over x's axes from k on. */
static sp_tensor *row_view(const sp_tensor *x, int k, int64_t off) {
    sp_tensor *r = sp_tensor_view_of(x->buf, x->dtype, x->ndim - k, x->shape + k, x->strides + k, off);
    if (!r) py_raise();
    return r;
}

static int copy_into(sp_tensor *dst, const sp_tensor *src) {
    if (sp_tensor_copy_into(dst, src) != SP_OK) {
        py_raise();
        return -1;
    }
    return 0;
}

/* Copies rows of v (broadcast to (n, *x.shape[k:])) into x at the element
 * offsets off[0..n).  0, or -1 + exception (nothing written on a shape
 * error). */
static int copy_rows(sp_tensor *x, int k, const int64_t *off, int64_t n, sp_tensor *v) {
    int64_t shape[SP_MAX_DIMS + 1];
    int nd = x->ndim - k + 1;
    shape[0] = n;
    memcpy(shape + 1, x->shape + k, sizeof *shape * (size_t)(x->ndim - k));
    if (nd > SP_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "Tensor.__setitem__(): more than %d dimensions", SP_MAX_DIMS);
        return -1;
    }
    sp_tensor *fit = fit_value(v, nd, shape), *vb = NULL;
    if (!fit) return -1;
    int rc = -1;
    if (sp_tensor_expand(fit, nd, shape, &vb) != SP_OK) {
        py_raise();
        goto done;
    }
    for (int64_t j = 0; j < n; j++) {
        sp_tensor *dst = row_view(x, k, off[j]), *src = dst ? row_view(vb, 1, vb->offset + j * vb->strides[0]) : NULL;
        int bad = !src || copy_into(dst, src);
        sp_tensor_release(dst);
        sp_tensor_release(src);
        if (bad) goto done;
    }
    rc = 0;
done:
    sp_tensor_release(vb);
    sp_tensor_release(fit);
    return rc;
}

/* x[i] = v with an integer tensor i (axis 0). */
static int assign_int_index(sp_tensor *x, sp_tensor *idx, sp_tensor *v) {
    if (x->ndim == 0) return set_index_error("too many indices for tensor: tensor is 0-dimensional, but 1 were indexed");
    sp_tensor *i64 = NULL;
    if (sp_tensor_cast(idx, SP_I64, &i64) != SP_OK) {
        py_raise();
        return -1;
    }
    int64_t n = sp_tensor_numel(i64), size = x->shape[0], *off = PyMem_Malloc(sizeof *off * (size_t)(n ? n : 1));
    int rc = -1;
    if (!off) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *ix = sp_tensor_data(i64);
    for (int64_t j = 0; j < n; j++) {
        int64_t k = ix[j];
        if (k < -size || k >= size) {
            PyErr_Format(PyExc_IndexError, "index %lld is out of bounds for axis 0 with size %lld", (long long)k,
                         (long long)size);
            goto done;
        }
        off[j] = x->offset + (k < 0 ? k + size : k) * x->strides[0];
    }
    /* the target is i.shape + x.shape[1:]: give v that shape's rows */
    int64_t shape[SP_MAX_DIMS * 2];
    int nd = 0;
    for (int d = 0; d < idx->ndim; d++) shape[nd++] = idx->shape[d];
    for (int d = 1; d < x->ndim; d++) shape[nd++] = x->shape[d];
    if (nd > SP_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "Tensor.__setitem__(): the target would have more than %d dimensions",
                     SP_MAX_DIMS);
        goto done;
    }
    sp_tensor *fit = fit_value(v, nd, shape), *vb = NULL, *rows = NULL;
    if (fit && sp_tensor_expand(fit, nd, shape, &vb) == SP_OK) {
        int64_t rshape[SP_MAX_DIMS];
        rshape[0] = n;
        memcpy(rshape + 1, x->shape + 1, sizeof *rshape * (size_t)(x->ndim - 1));
        if (sp_tensor_reshape(vb, x->ndim, rshape, &rows) == SP_OK) rc = copy_rows(x, 1, off, n, rows);
        else py_raise();
    } else if (fit) {
        py_raise();
    }
    sp_tensor_release(rows);
    sp_tensor_release(vb);
    sp_tensor_release(fit);
done:
    PyMem_Free(off);
    sp_tensor_release(i64);
    return rc;
}

/* x[m] = v with a bool mask m over x's leading axes. */
static int assign_mask(sp_tensor *x, sp_tensor *m, sp_tensor *v) {
    if (m->ndim > x->ndim) {
        PyErr_Format(PyExc_IndexError, "too many indices for tensor: tensor is %d-dimensional, but %d were indexed",
                     x->ndim, m->ndim);
        return -1;
    }
    for (int d = 0; d < m->ndim; d++)
        if (m->shape[d] != x->shape[d]) {
            PyErr_Format(PyExc_IndexError,
                         "boolean index did not match indexed array along dimension %d; dimension is %lld but "
                         "corresponding boolean dimension is %lld",
                         d, (long long)x->shape[d], (long long)m->shape[d]);
            return -1;
        }
    int k = m->ndim, rest = x->ndim - k;
    /* a value for one row: where(m, v, x) over the whole tensor, one copy back */
    int drop = 0;
    while (v->ndim - drop > rest && v->shape[drop] == 1) drop++;
    int per_row = v->ndim - drop <= rest;
    for (int i = 0; per_row && i < v->ndim - drop; i++) {
        int64_t s = v->shape[drop + i];
        per_row = s == 1 || s == x->shape[x->ndim - (v->ndim - drop) + i];
    }
    if (per_row) {
        sp_tensor *fit = fit_value(v, rest, x->shape + k), *vc = NULL, *mr = NULL, *out[1] = {NULL};
        int64_t mshape[SP_MAX_DIMS];
        for (int d = 0; d < x->ndim; d++) mshape[d] = d < k ? m->shape[d] : 1;
        int n_out = 0, rc = -1;
        if (fit && sp_tensor_cast(fit, x->dtype, &vc) == SP_OK && sp_tensor_reshape(m, x->ndim, mshape, &mr) == SP_OK) {
            sp_tensor *in[3] = {mr, vc, x};
            if (sp_op_call(SP_OP_WHERE, 3, in, NULL, &n_out, out) == SP_OK) rc = copy_into(x, out[0]);
            else py_raise();
        } else if (fit) {
            py_raise();
        }
        sp_tensor_release(out[0]);
        sp_tensor_release(mr);
        sp_tensor_release(vc);
        sp_tensor_release(fit);
        return rc;
    }
    /* a value with a row per true position: its offsets in C order */
    sp_tensor *mc = NULL;
    if (sp_tensor_cast(m, SP_BOOL, &mc) != SP_OK) {
        py_raise();
        return -1;
    }
    const unsigned char *mb = sp_tensor_data(mc);
    int64_t total = sp_tensor_numel(mc), count = 0;
    for (int64_t j = 0; j < total; j++) count += mb[j] != 0;
    int64_t *off = PyMem_Malloc(sizeof *off * (size_t)(count ? count : 1));
    int rc = -1;
    if (!off) {
        PyErr_NoMemory();
    } else {
        int64_t c = 0;
        for (int64_t j = 0; j < total; j++) {
            if (!mb[j]) continue;
            int64_t o = x->offset, r = j;
            for (int d = k - 1; d >= 0; d--) {
                o += (r % m->shape[d]) * x->strides[d];
                r /= m->shape[d];
            }
            off[c++] = o;
        }
        rc = copy_rows(x, k, off, count, v);
    }
    PyMem_Free(off);
    sp_tensor_release(mc);
    return rc;
}

/* x[index] = v for a CPU tensor x and a CPU value v. */
static int assign_cpu(PyObject *self, sp_tensor *x, PyObject *index, sp_tensor *v) {
    sp_value *iv = py_to_value(index, NULL);
    if (!iv) return -1;
    int rc = -1;
    sp_tensor *it = NULL;
    /* an advanced index: a tensor of rank >= 1 or a bool one, an array, a list */
    if ((iv->kind == SP_V_TENSOR && (iv->u.tensor->ndim > 0 || iv->u.tensor->dtype == SP_BOOL)) ||
        iv->kind == SP_V_LIST) {
        it = iv->kind == SP_V_TENSOR ? cpu_of(iv->u.tensor) : rt_tensor_from_data(iv, -1, "index");
        if (!it) {
            if (!PyErr_Occurred()) py_raise();
            goto done;
        }
        if (iv->kind == SP_V_LIST && sp_tensor_numel(it) == 0 && it->dtype != SP_BOOL) {
            /* x[[]] = v: numpy reads an empty list as an empty integer index */
            sp_tensor *e = NULL;
            if (sp_tensor_cast(it, SP_I64, &e) != SP_OK) {
                py_raise();
                goto done;
            }
            sp_tensor_release(it);
            it = e;
        }
        if (it->dtype == SP_BOOL) rc = assign_mask(x, it, v);
        else if (sp_dtype_is_int(it->dtype)) rc = assign_int_index(x, it, v);
        else
            PyErr_Format(PyExc_IndexError, "tensor indices must be integers or booleans, not %s",
                         sp_dtype_name(it->dtype));
        goto done;
    }
    sp_value *target = rt_getitem(((py_tensor *)self)->v, iv);
    if (!target) {
        if (sp_last_status() == SP_ERR_ARG && strstr(sp_last_error(), "out of")) set_index_error(sp_last_error());
        else py_raise();
        goto done;
    }
    sp_tensor *dst = target->u.tensor, *fit = NULL;
    if (target->kind != SP_V_TENSOR || dst->buf != x->buf) {
        PyErr_SetString(PyExc_RuntimeError, "Tensor.__setitem__(): the index did not give a view of the tensor");
    } else if ((fit = fit_value(v, dst->ndim, dst->shape))) {
        rc = copy_into(dst, fit);
    }
    sp_tensor_release(fit);
    sp_value_release(target);
done:
    sp_tensor_release(it);
    sp_value_release(iv);
    return rc;
}

/* x[index] = v for a contiguous tensor x on the GPU: the assignment runs
 * on a CPU copy, which the assign primitive then writes back whole. */
static int assign_gpu(sp_tensor *x, PyObject *index, sp_tensor *v) {
    sp_tensor *host = NULL, *back = NULL;
    if (sp_tensor_to(x, SP_CPU, &host) != SP_OK) {
        py_raise();
        return -1;
    }
    PyObject *ho = py_tensor_wrap(sp_value_tensor(host)); /* for rt_getitem, which takes a value */
    int rc = -1;
    if (ho && !assign_cpu(ho, host, index, v)) {
        sp_tensor *in[2] = {x, NULL}, *out[1] = {NULL};
        int n_out = 0;
        if (sp_tensor_to(host, x->buf->device, &back) == SP_OK) {
            in[1] = back;
            if (sp_op_call(SP_OP_ASSIGN, 2, in, NULL, &n_out, out) == SP_OK) rc = 0;
        }
        if (rc) py_raise();
    }
    Py_XDECREF(ho);
    sp_tensor_release(back);
    sp_tensor_release(host);
    return rc;
}

/* ---- recording for the PyNative tape ------------------------------------------------- */

/* The helper tensor h (CPU, contiguous, x's shape) after h[index] = fill,
 * assigned by this file's own code; 0 or -1 + exception. */
static int tape_helper(sp_tensor *h, PyObject *index, sp_tensor *fill) {
    PyObject *ho = py_tensor_wrap(sp_value_tensor(h));
    int rc = ho ? assign_cpu(ho, h, index, fill) : -1;
    Py_XDECREF(ho);
    return rc;
}

/* The new value of x as recorded primitives (see the essay): a new tensor
 * reference, or NULL + exception.  v is the value as value_tensor made it
 * and src the tensor the user passed (its identity is what the tape knows;
 * v itself for a Python value). */
static sp_tensor *tape_new_value(sp_tensor *x, PyObject *index, sp_tensor *v, sp_tensor *src) {
    int64_t nx = sp_tensor_numel(x);
    sp_tensor *m = sp_tensor_zeros(SP_BOOL, x->ndim, x->shape, SP_CPU);
    sp_tensor *q = sp_tensor_zeros(SP_I64, x->ndim, x->shape, SP_CPU);
    sp_tensor *truth = sp_tensor_zeros(SP_BOOL, 0, NULL, SP_CPU);
    sp_tensor *pos = sp_tensor_zeros(SP_I64, v->ndim, v->shape, SP_CPU);
    sp_tensor *qf = NULL, *vc = NULL, *vf = NULL, *sf = NULL, *sv = NULL, *w = NULL;
    sp_tensor *mo = NULL, *qo = NULL; /* on x's device */
    sp_attrs a;
    if (!m || !q || !truth || !pos || sp_tensor_fill(truth, 1.0) || sp_tensor_fill(q, -1.0)) {
        py_raise();
        goto done;
    }
    int64_t *pd = sp_tensor_data(pos);
    for (int64_t i = 0; i < sp_tensor_numel(pos); i++) pd[i] = i;
    sp_tape_pause();
    int rc = tape_helper(m, index, truth);
    if (!rc) rc = tape_helper(q, index, pos);
    sp_tape_resume();
    if (rc) goto done;
    int64_t *qd = sp_tensor_data(q);
    for (int64_t i = 0; i < nx; i++)
        if (qd[i] < 0) qd[i] = 0; /* not written: masked out by M */
    if (sp_tensor_reshape(q, 1, &nx, &qf) || sp_tensor_to(m, x->buf->device, &mo) ||
        sp_tensor_to(qf, x->buf->device, &qo)) {
        py_raise();
        goto done;
    }
    /* the recorded part: the value in x's dtype, flat, gathered into x's
     * layout, chosen where written */
    vc = src;
    sp_tensor_retain(vc);
    if (src->dtype != x->dtype) {
        sp_tensor_release(vc);
        sp_attrs_init(&a);
        sp_attrs_set_dtype(&a, "dtype", x->dtype);
        if (!(vc = rt_op1(SP_OP_CAST, 1, &src, &a))) goto fail;
    }
    int64_t nflat = sp_tensor_numel(vc);
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 1, &nflat);
    if (!(vf = rt_op1(SP_OP_RESHAPE, 1, &vc, &a))) goto fail;
    sp_tensor *gin[2] = {vf, qo};
    if (!(sf = rt_op1(SP_OP_GATHER, 2, gin, NULL))) goto fail;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", x->ndim, x->shape);
    if (!(sv = rt_op1(SP_OP_RESHAPE, 1, &sf, &a))) goto fail;
    sp_tensor *win[3] = {mo, sv, x};
    if (!(w = rt_op1(SP_OP_WHERE, 3, win, NULL))) goto fail;
    goto done;
fail:
    py_raise();
done:
    sp_tensor_release(m);
    sp_tensor_release(q);
    sp_tensor_release(truth);
    sp_tensor_release(pos);
    sp_tensor_release(qf);
    sp_tensor_release(mo);
    sp_tensor_release(qo);
    sp_tensor_release(vc);
    sp_tensor_release(vf);
    sp_tensor_release(sf);
    sp_tensor_release(sv);
    return w;
}

int py_tensor_setitem(PyObject *self, PyObject *index, PyObject *value) {
    if (!value) {
        PyErr_SetString(PyExc_TypeError, "'Tensor' object does not support item deletion");
        return -1;
    }
    sp_tensor *x = ((py_tensor *)self)->v->u.tensor;
    if (sp_tensor_is_meta(x)) {
        PyErr_SetString(PyExc_TypeError, "Tensor.__setitem__(): a meta tensor has no values to assign");
        return -1;
    }
    sp_tensor *v = value_tensor(value, x->dtype), *aside = NULL;
    if (!v) return -1;
    /* a value in x's own memory is read whole before anything is written */
    if (v->buf == x->buf) {
        if (sp_tensor_cast(v, v->dtype, &aside) != SP_OK) {
            sp_tensor_release(v);
            py_raise();
            return -1;
        }
        sp_tensor_release(v);
        v = aside;
    }
    int rc = -1;
    sp_tensor *w = NULL; /* x's new value as the tape recorded it */
    int taped = sp_tape_current() != NULL;
    if (taped) {
        sp_tensor *src = py_is_tensor(value) ? ((py_tensor *)value)->v->u.tensor : v;
        if ((sp_tape_active(x) || sp_tape_active(src)) && sp_tensor_numel(v) > 0 &&
            !(w = tape_new_value(x, index, v, src))) {
            sp_tensor_release(v);
            return -1;
        }
        sp_tape_pause(); /* the write itself is not the user's program */
    }
    if (is_cpu(x)) {
        rc = assign_cpu(self, x, index, v);
    } else if (!sp_tensor_is_contiguous(x)) {
        PyErr_SetString(PyExc_NotImplementedError,
                        "Tensor.__setitem__(): item assignment into a non-contiguous GPU tensor view is not "
                        "supported (assign into the tensor it views)");
    } else {
        rc = assign_gpu(x, index, v);
    }
    if (taped) {
        sp_tape_resume();
        if (!rc && (w ? sp_tape_setitem_rebind(x, w) : (sp_tape_note_write(x, "Tensor.__setitem__"), SP_OK))) {
            py_raise();
            rc = -1;
        }
    }
    sp_tensor_release(w);
    sp_tensor_release(v);
    return rc;
}
