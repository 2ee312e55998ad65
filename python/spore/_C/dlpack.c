/*
 * dlpack.c -- DLPack both ways: Tensor.__dlpack__ / __dlpack_device__ and
 * spore.from_dlpack, so tensors move to and from numpy and PyTorch without
 * a copy.
 *
 * The structs below are DLPack's ABI (dlpack.h, v0.8, the "dltensor"
 * capsule every consumer understands); they are written out here because
 * the layout is the standard and the header is not a dependency worth
 * having.
 *
 * Export: a DLManagedTensor whose manager_ctx is one reference to the
 * sp_tensor, with shape and strides stored in the same allocation; its
 * deleter drops the reference.  The capsule's destructor calls the deleter
 * only when no consumer renamed the capsule to "used_dltensor" (the
 * protocol's handshake).
 *
 * Import: the producer's memory is wrapped in an sp_buffer whose deleter
 * calls the producer's DLManagedTensor deleter, so the memory lives exactly
 * as long as the last Spore view of it.  That deleter may run on any
 * thread that drops the last reference; producers' deleters (numpy's and
 * PyTorch's) take the GIL themselves where they need it, and ours takes it
 * with PyGILState_Ensure.
 */
#include "py.h"

#include <string.h>

typedef enum { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3 } DLDeviceType;
typedef struct { int32_t device_type; int32_t device_id; } DLDevice;
typedef enum { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLBool = 6 } DLDataTypeCode;
typedef struct { uint8_t code; uint8_t bits; uint16_t lanes; } DLDataType;
typedef struct {
    void *data;
    DLDevice device;
    int32_t ndim;
    DLDataType dtype;
    int64_t *shape;
    int64_t *strides;
    uint64_t byte_offset;
} DLTensor;
typedef struct DLManagedTensor {
    DLTensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct DLManagedTensor *self);
} DLManagedTensor;

typedef struct {
    DLManagedTensor m;
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS];
} export_t;

static void export_deleter(DLManagedTensor *self) {
    sp_tensor_release((sp_tensor *)self->manager_ctx);
    free(self);
}

static void capsule_destructor(PyObject *cap) {
    if (!PyCapsule_IsValid(cap, "dltensor")) return; /* consumed: the consumer owns it */
    DLManagedTensor *m = PyCapsule_GetPointer(cap, "dltensor");
    if (m && m->deleter) m->deleter(m);
}

static int dl_dtype(sp_dtype d, DLDataType *out) {
    static const DLDataType map[SP_DTYPE_COUNT] = {
        [SP_F32] = {kDLFloat, 32, 1}, [SP_F64] = {kDLFloat, 64, 1}, [SP_F16] = {kDLFloat, 16, 1},
        [SP_BF16] = {kDLBfloat, 16, 1}, [SP_I8] = {kDLInt, 8, 1},   [SP_U8] = {kDLUInt, 8, 1},
        [SP_I32] = {kDLInt, 32, 1},   [SP_I64] = {kDLInt, 64, 1},   [SP_BOOL] = {kDLBool, 8, 1}};
    if ((int)d < 0 || d >= SP_DTYPE_COUNT) return -1;
    *out = map[d];
    return 0;
}

static int sp_from_dl(DLDataType t, sp_dtype *out) {
    if (t.lanes != 1) return -1;
    for (int d = 0; d < SP_DTYPE_COUNT; d++) {
        DLDataType x;
        dl_dtype((sp_dtype)d, &x);
        if (x.code == t.code && x.bits == t.bits) {
            *out = (sp_dtype)d;
            return 0;
        }
    }
    /* PyTorch before DLPack 0.8 exported bool as uint8 with 8 bits: that is
     * uint8 here, which is what the bits say. */
    return -1;
}

PyObject *py_tensor_dlpack(PyObject *self, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"stream", "max_version", "dl_device", "copy", NULL};
    PyObject *stream = Py_None, *maxv = Py_None, *dev = Py_None, *copy = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$OOO:__dlpack__", kwlist, &stream, &maxv, &dev, &copy))
        return NULL;
    sp_tensor *t = ((py_tensor *)self)->v->u.tensor;
    export_t *e = calloc(1, sizeof *e);
    if (!e) return PyErr_NoMemory();
    if (dl_dtype(t->dtype, &e->m.dl_tensor.dtype) < 0) {
        free(e);
        PyErr_SetString(PyExc_BufferError, "__dlpack__: unsupported dtype");
        return NULL;
    }
    sp_tensor_retain(t);
    e->m.manager_ctx = t;
    e->m.deleter = export_deleter;
    DLTensor *d = &e->m.dl_tensor;
    d->data = t->buf ? t->buf->data : NULL;
    d->byte_offset = (uint64_t)t->offset * sp_dtype_size(t->dtype);
    /* numpy wants data itself to point at element 0 (it ignores nothing,
     * but some consumers require byte_offset == 0): fold the offset in */
    d->data = (char *)d->data + d->byte_offset;
    d->byte_offset = 0;
    d->device.device_type = t->buf && t->buf->device.type == SP_DEVICE_CUDA ? kDLCUDA : kDLCPU;
    d->device.device_id = t->buf ? t->buf->device.index : 0;
    d->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) {
        e->shape[i] = t->shape[i];
        e->strides[i] = t->strides[i];
    }
    d->shape = e->shape;
    d->strides = e->strides;
    PyObject *cap = PyCapsule_New(&e->m, "dltensor", capsule_destructor);
    if (!cap) export_deleter(&e->m);
    return cap;
}

PyObject *py_tensor_dlpack_device(PyObject *self, PyObject *unused) {
    (void)unused;
    sp_tensor *t = ((py_tensor *)self)->v->u.tensor;
    int cuda = t->buf && t->buf->device.type == SP_DEVICE_CUDA;
    return Py_BuildValue("(ii)", cuda ? kDLCUDA : kDLCPU, t->buf ? t->buf->device.index : 0);
}

static void import_deleter(void *ctx) {
    DLManagedTensor *m = ctx;
    if (!m->deleter) return;
    PyGILState_STATE g = PyGILState_Ensure();
    m->deleter(m);
    PyGILState_Release(g);
}

PyObject *py_from_dlpack(PyObject *mod, PyObject *obj) {
    (void)mod;
    PyObject *cap;
    if (PyCapsule_CheckExact(obj)) {
        cap = obj;
        Py_INCREF(cap);
    } else {
        cap = PyObject_CallMethod(obj, "__dlpack__", NULL);
        if (!cap) return NULL;
    }
    DLManagedTensor *m = PyCapsule_GetPointer(cap, "dltensor");
    if (!m) {
        Py_DECREF(cap);
        return NULL;
    }
    DLTensor *d = &m->dl_tensor;
    sp_dtype dt;
    sp_device dev = SP_CPU;
    if (d->device.device_type == kDLCUDA) dev = (sp_device){SP_DEVICE_CUDA, d->device.device_id};
    else if (d->device.device_type != kDLCPU && d->device.device_type != kDLCUDAHost) {
        Py_DECREF(cap);
        return PyErr_Format(PyExc_BufferError, "from_dlpack: device type %d is not supported",
                            (int)d->device.device_type);
    }
    if (sp_from_dl(d->dtype, &dt) < 0 || d->ndim < 0 || d->ndim > SP_MAX_DIMS) {
        Py_DECREF(cap);
        return PyErr_Format(PyExc_BufferError, "from_dlpack: unsupported dtype (code %d, %d bits) or rank %d",
                            d->dtype.code, d->dtype.bits, (int)d->ndim);
    }
    size_t isz = sp_dtype_size(dt);
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS], lo = 0, hi = 0, numel = 1;
    for (int i = 0; i < d->ndim; i++) numel *= (shape[i] = d->shape[i]);
    int64_t k = 1;
    for (int i = d->ndim - 1; i >= 0; i--) {
        strides[i] = d->strides ? d->strides[i] : k;
        k *= shape[i];
        if (numel > 0) {
            if (strides[i] < 0) lo += strides[i] * (shape[i] - 1);
            else hi += strides[i] * (shape[i] - 1);
        }
    }
    char *base = (char *)d->data + d->byte_offset;
    /* the capsule is ours now: the buffer's deleter gives it back */
    if (PyCapsule_SetName(cap, "used_dltensor") < 0) {
        Py_DECREF(cap);
        return NULL;
    }
    Py_DECREF(cap);
    sp_buffer *buf = sp_buffer_wrap(dev, base + lo * (int64_t)isz, (size_t)(hi - lo + 1) * isz, import_deleter, m);
    if (!buf) {
        import_deleter(m);
        return py_raise();
    }
    sp_tensor *t = sp_tensor_view_of(buf, dt, d->ndim, shape, strides, -lo);
    sp_buffer_release(buf);
    if (!t) return py_raise();
    sp_value *v = sp_value_tensor(t);
    sp_tensor_release(t);
    return py_tensor_wrap(v);
}
