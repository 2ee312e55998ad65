/*
 * dataset.c -- spore._C's face of the data pipeline (include/spore/data.h):
 * the objects python/spore/dataset builds MindSpore's Dataset API on.
 *
 *   DataPipe   one sp_dataset (a pipeline description); map, shuffle,
 *              batch and repeat return new DataPipes; iterate() starts a pass.
 *   DataIter   one sp_data_iter: next() yields a tuple of Tensors (or
 *              numpy arrays sharing their memory); close() joins its threads.
 *   Transform  one sp_transform: a C vision op or a Python callable.
 *
 * Sources.  Tensor sources read in order without a sampler go straight to
 * sp_dataset_from_tensors.  With shuffle, num_samples or sharding they are
 * a pull source over the same tensors whose reset(epoch) draws a Philox
 * Fisher-Yates permutation keyed by (seed, epoch): the order of a pass
 * depends on the seed and the epoch only, as MindSpore's RandomSampler
 * reshuffles every epoch, and no rows are buffered.  GeneratorDataset's
 * Python sources (random-access, callable, iterable) are pull sources too.
 *
 * Threads and the GIL.  The pipeline runs in C threads: the prefetch
 * thread pulls from sources, map workers run transforms.  A callback into
 * Python (a generator, a __getitem__, a Python map function) takes the GIL
 * with PyGILState_Ensure on whatever thread it runs; so every call here
 * that can wait for those threads (starting, advancing and freeing an
 * iterator) releases the GIL first, or the waiting thread and the worker
 * would each hold what the other needs.  A Python exception inside a
 * callback becomes a Spore error carrying its formatted traceback; it
 * travels down the pipeline like any other error and is raised by the
 * next() that reaches it (a RuntimeError, as MindSpore raises).
 *
 * Ownership: a DataPipe owns one sp_dataset reference, a DataIter one
 * sp_data_iter (which retains its dataset), a Transform one sp_transform.
 * Callback contexts hold strong references to their Python objects and
 * drop them under the GIL when the last C reference goes.
 */
#include "py.h"

#include <string.h>

#include "core/philox.h"
#include "spore/data.h"

#define DT_MAXC SP_DATA_MAX_COLUMNS

typedef struct {
    PyObject_HEAD
    sp_dataset *ds;
} py_datapipe;

typedef struct {
    PyObject_HEAD
    sp_data_iter *it;
    int ncols;
    int numpy; /* 1: rows as numpy arrays */
} py_dataiter;

typedef struct {
    PyObject_HEAD
    sp_transform *t;
} py_dtransform;

static PyTypeObject py_datapipe_type, py_dataiter_type, py_dtransform_type;

/* ---- helpers ------------------------------------------------------------ */

/* 1 when Python can be entered from a foreign thread: not while the
 * interpreter shuts down (a thread taking the GIL then never returns). */
#if PY_VERSION_HEX >= 0x030D0000
#define DT_FINALIZING() Py_IsFinalizing()
#else
#define DT_FINALIZING() _Py_IsFinalizing()
#endif
static int dt_python_alive(void) { return Py_IsInitialized() && !DT_FINALIZING(); }

/* Turns the pending Python exception into this thread's Spore error
 * ("<what>: <traceback>") and clears it.  Needs the GIL.  Returns the
 * status to hand back. */
static sp_status dt_error_from_python(const char *what) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value) PyException_SetTraceback(value, tb);
    PyObject *mod = PyImport_ImportModule("traceback"), *lines = NULL, *text = NULL;
    if (mod && type)
        lines = PyObject_CallMethod(mod, "format_exception", "OOO", type, value ? value : Py_None,
                                    tb ? tb : Py_None);
    if (lines) {
        PyObject *empty = PyUnicode_FromString("");
        text = empty ? PyUnicode_Join(empty, lines) : NULL;
        Py_XDECREF(empty);
    }
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    sp_status st = sp_error(SP_ERR_RUNTIME, "%s raised an exception:\n%s", what,
                            s ? s : "(the exception could not be formatted)");
    PyErr_Clear();
    Py_XDECREF(text);
    Py_XDECREF(lines);
    Py_XDECREF(mod);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return st;
}

/* A CPU sp_tensor for a Python object (new reference): a spore.Tensor
 * (shared), a buffer-protocol object (copied), anything numpy.asarray
 * takes (converted, then copied).  NULL + Python exception.  GIL held. */
static sp_tensor *dt_tensor_of(PyObject *o) {
    if (py_is_tensor(o)) {
        sp_tensor *t = ((py_tensor *)o)->v->u.tensor;
        if (t->buf && t->buf->device.type != SP_DEVICE_CPU) {
            sp_tensor *c = NULL;
            if (sp_tensor_to(t, SP_CPU, &c) != SP_OK) py_raise();
            return c; /* NULL on error */
        }
        sp_tensor_retain(t);
        return t;
    }
    PyObject *arr = NULL;
    if (!PyObject_CheckBuffer(o) || PyBytes_Check(o) || PyByteArray_Check(o)) {
        PyObject *np = PyImport_ImportModule("numpy");
        arr = np ? PyObject_CallMethod(np, "asarray", "O", o) : NULL;
        Py_XDECREF(np);
        if (!arr) return NULL;
        o = arr;
    }
    sp_value *v = py_tensor_from_buffer(o, -1);
    Py_XDECREF(arr);
    if (!v) return NULL;
    sp_tensor *t = v->u.tensor;
    sp_tensor_retain(t);
    sp_value_release(v);
    return t;
}

/* The Python object for a row's column: a spore.Tensor sharing t, or
 * (numpy) a numpy array sharing its memory.  Does not consume t. */
static PyObject *dt_wrap(sp_tensor *t, int numpy) {
    PyObject *w = py_tensor_wrap(sp_value_tensor(t));
    if (!w || !numpy) return w;
    PyObject *np = PyImport_ImportModule("numpy");
    PyObject *a = np ? PyObject_CallMethod(np, "asarray", "O", w) : NULL;
    Py_XDECREF(np);
    Py_DECREF(w);
    return a;
}

/* Fills row[0..ncols-1] from what a Python source or map function gave:
 * a tuple/list of ncols items, or (ncols == 1) one item.  0, or -1 +
 * Python exception (row left all NULL). */
static int dt_row_from(PyObject *item, int ncols, sp_tensor **row, const char *what) {
    for (int c = 0; c < ncols; c++) row[c] = NULL;
    int seq = PyTuple_Check(item) || (ncols > 1 && PyList_Check(item));
    if (seq && PySequence_Size(item) != ncols) {
        PyErr_Format(PyExc_ValueError, "%s gave %zd values for %d column(s)", what,
                     PySequence_Size(item), ncols);
        return -1;
    }
    if (!seq && ncols != 1) {
        PyErr_Format(PyExc_TypeError, "%s must give a tuple of %d values, not %s", what, ncols,
                     Py_TYPE(item)->tp_name);
        return -1;
    }
    for (int c = 0; c < ncols; c++) {
        PyObject *x = seq ? PySequence_GetItem(item, c) : (Py_INCREF(item), item);
        row[c] = x ? dt_tensor_of(x) : NULL;
        Py_XDECREF(x);
        if (!row[c]) {
            for (int k = 0; k < c; k++) sp_tensor_release(row[k]), row[k] = NULL;
            return -1;
        }
    }
    return 0;
}

static uint64_t dt_mix(uint64_t seed, uint64_t k) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (k + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* ---- the sampler: which source rows a pass reads, in what order ---------- */

/* MindSpore's samplers for a random-access source of n rows: sequential or
 * a fresh permutation each epoch, then (num_shards > 1) the rows k with
 * k % num_shards == shard_id, wrapping around so every shard gets
 * ceil(n / num_shards) rows (DistributedSampler), then at most num_samples. */
typedef struct dt_sampler {
    int64_t n, count, pos;
    int64_t shards, shard_id;
    int shuffle;
    uint64_t seed;
    int64_t *perm; /* n entries when shuffle */
} dt_sampler;

/* 0, or -1 + Python exception on a bad argument or no memory. */
static int dt_sampler_init(dt_sampler *s, int64_t n, int shuffle, int64_t num_samples,
                           int64_t shards, int64_t shard_id, uint64_t seed) {
    memset(s, 0, sizeof *s);
    if (shards < 1 || shard_id < 0 || shard_id >= shards) {
        PyErr_Format(PyExc_ValueError, "shard_id %lld must be in [0, num_shards = %lld)",
                     (long long)shard_id, (long long)shards);
        return -1;
    }
    s->n = n, s->shuffle = shuffle, s->shards = shards, s->shard_id = shard_id, s->seed = seed;
    s->count = shards > 1 ? (n + shards - 1) / shards : n;
    if (n == 0) s->count = 0;
    if (num_samples >= 0 && num_samples < s->count) s->count = num_samples;
    if (shuffle && n > 0) {
        s->perm = PyMem_RawMalloc((size_t)n * sizeof *s->perm);
        if (!s->perm) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

/* Starts a pass: a new permutation keyed by (seed, epoch).  Cannot fail. */
static void dt_sampler_reset(dt_sampler *s, uint64_t epoch) {
    s->pos = 0;
    if (!s->perm) return;
    for (int64_t i = 0; i < s->n; i++) s->perm[i] = i;
    uint64_t key = dt_mix(s->seed, epoch);
    for (int64_t i = s->n - 1; i > 0; i--) {
        uint32_t r[4];
        core_philox_block(key, 0, (uint64_t)i, r);
        uint64_t u = ((uint64_t)r[0] << 32) | r[1];
        int64_t j = (int64_t)(u % (uint64_t)(i + 1));
        int64_t t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
}

/* The next source row, or -1 at the end of the pass. */
static int64_t dt_sampler_next(dt_sampler *s) {
    if (s->pos >= s->count) return -1;
    int64_t k = s->pos++;
    int64_t j = s->shards > 1 ? (k * s->shards + s->shard_id) % s->n : k;
    return s->perm ? s->perm[j] : j;
}

/* ---- tensor sources ------------------------------------------------------- */

typedef struct dt_tsrc {
    dt_sampler s;
    int ncols;
    sp_tensor *cols[DT_MAXC];
} dt_tsrc;

static sp_status dt_tsrc_pull(void *ctx, sp_tensor **row, int *end) {
    dt_tsrc *p = ctx;
    int64_t i = dt_sampler_next(&p->s);
    if (i < 0) {
        *end = 1;
        return SP_OK;
    }
    for (int c = 0; c < p->ncols; c++) {
        const sp_tensor *t = p->cols[c];
        row[c] = sp_tensor_view_of(t->buf, t->dtype, t->ndim - 1, t->shape + 1, t->strides + 1,
                                   t->offset + i * t->strides[0]);
        if (!row[c]) return sp_last_status(); /* the pipeline releases row[0..c-1] */
    }
    return SP_OK;
}

static sp_status dt_tsrc_reset(void *ctx, uint64_t epoch) {
    dt_sampler_reset(&((dt_tsrc *)ctx)->s, epoch);
    return SP_OK;
}

static void dt_tsrc_free(void *ctx) {
    dt_tsrc *p = ctx;
    for (int c = 0; c < p->ncols; c++) sp_tensor_release(p->cols[c]);
    PyMem_RawFree(p->s.perm);
    PyMem_RawFree(p);
}

/* ---- Python sources (GeneratorDataset) ------------------------------------ */

enum { DT_RANDOM = 0, DT_CALLABLE = 1, DT_ITERABLE = 2 };

typedef struct dt_psrc {
    int kind, ncols;
    PyObject *source; /* owned */
    PyObject *iter;   /* the current pass's iterator (CALLABLE, ITERABLE), owned */
    dt_sampler s;     /* RANDOM */
    int64_t limit, pulled; /* CALLABLE, ITERABLE: num_samples (-1: all) */
} dt_psrc;

static sp_status dt_psrc_reset(void *ctx, uint64_t epoch) {
    dt_psrc *p = ctx;
    if (p->kind == DT_RANDOM) {
        dt_sampler_reset(&p->s, epoch);
        return SP_OK;
    }
    if (!dt_python_alive()) return sp_error(SP_ERR_RUNTIME, "GeneratorDataset: Python is shutting down");
    PyGILState_STATE g = PyGILState_Ensure();
    sp_status st = SP_OK;
    Py_CLEAR(p->iter);
    p->pulled = 0;
    PyObject *src = p->kind == DT_CALLABLE ? PyObject_CallNoArgs(p->source) : (Py_INCREF(p->source), p->source);
    if (src) {
        p->iter = PyObject_GetIter(src);
        Py_DECREF(src);
    }
    if (!p->iter) st = dt_error_from_python("GeneratorDataset: starting the source");
    PyGILState_Release(g);
    return st;
}

static sp_status dt_psrc_pull(void *ctx, sp_tensor **row, int *end) {
    dt_psrc *p = ctx;
    if (!dt_python_alive()) return sp_error(SP_ERR_RUNTIME, "GeneratorDataset: Python is shutting down");
    PyGILState_STATE g = PyGILState_Ensure();
    sp_status st = SP_OK;
    PyObject *item = NULL;
    if (p->kind == DT_RANDOM) {
        int64_t i = dt_sampler_next(&p->s);
        if (i < 0) {
            *end = 1;
            goto done;
        }
        PyObject *k = PyLong_FromLongLong((long long)i);
        item = k ? PyObject_GetItem(p->source, k) : NULL;
        Py_XDECREF(k);
        if (!item) {
            st = dt_error_from_python("GeneratorDataset: source[i]");
            goto done;
        }
    } else {
        if (!p->iter) {
            st = sp_error(SP_ERR_RUNTIME, "GeneratorDataset: the source was not started");
            goto done;
        }
        if (p->limit >= 0 && p->pulled >= p->limit) {
            *end = 1;
            goto done;
        }
        item = PyIter_Next(p->iter);
        if (!item) {
            if (PyErr_Occurred()) st = dt_error_from_python("GeneratorDataset: the source");
            else *end = 1;
            goto done;
        }
        p->pulled++;
    }
    if (dt_row_from(item, p->ncols, row, "GeneratorDataset: the source") < 0)
        st = dt_error_from_python("GeneratorDataset: converting a row");
done:
    Py_XDECREF(item);
    PyGILState_Release(g);
    return st;
}

static void dt_psrc_free(void *ctx) {
    dt_psrc *p = ctx;
    if (dt_python_alive()) { /* at shutdown the objects are Python's to drop */
        PyGILState_STATE g = PyGILState_Ensure();
        Py_XDECREF(p->iter);
        Py_XDECREF(p->source);
        PyGILState_Release(g);
    }
    PyMem_RawFree(p->s.perm);
    PyMem_RawFree(p);
}

/* ---- Python map functions -------------------------------------------------- */

typedef struct dt_pyfunc {
    PyObject *fn; /* owned */
} dt_pyfunc;

/* Calls fn(*columns as numpy arrays) and reads back n columns.  The
 * arrays are copies: a function that writes into its input must not
 * change the source dataset's memory. */
static sp_status dt_pyfunc_call(void *ctx, int n, sp_tensor *const *in, sp_tensor **out,
                                uint64_t seed, uint64_t counter) {
    (void)seed;
    (void)counter;
    dt_pyfunc *f = ctx;
    if (!dt_python_alive()) return sp_error(SP_ERR_RUNTIME, "map: Python is shutting down");
    PyGILState_STATE g = PyGILState_Ensure();
    sp_status st = SP_OK;
    PyObject *args = PyTuple_New(n), *np = PyImport_ImportModule("numpy"), *r = NULL;
    for (int i = 0; args && np && i < n; i++) {
        PyObject *w = py_tensor_wrap(sp_value_tensor(in[i]));
        PyObject *a = w ? PyObject_CallMethod(np, "array", "O", w) : NULL;
        Py_XDECREF(w);
        if (!a) goto fail;
        PyTuple_SET_ITEM(args, i, a);
    }
    if (!args || !np) goto fail;
    r = PyObject_Call(f->fn, args, NULL);
    if (!r) goto fail;
    if (dt_row_from(r, n, out, "a map function") < 0) {
        st = dt_error_from_python("map: converting what the function returned");
        goto done;
    }
    goto done;
fail: {
    PyObject *name = PyObject_GetAttrString(f->fn, "__qualname__");
    if (!name) PyErr_Clear(), name = PyObject_Repr(f->fn);
    if (!name) PyErr_Clear();
    char what[256];
    snprintf(what, sizeof what, "map: the function %s", name ? PyUnicode_AsUTF8(name) : "?");
    Py_XDECREF(name);
    if (!PyErr_Occurred()) PyErr_NoMemory();
    st = dt_error_from_python(what);
}
done:
    Py_XDECREF(r);
    Py_XDECREF(args);
    Py_XDECREF(np);
    PyGILState_Release(g);
    return st;
}

static void dt_pyfunc_free(void *ctx) {
    dt_pyfunc *f = ctx;
    if (dt_python_alive()) {
        PyGILState_STATE g = PyGILState_Ensure();
        Py_XDECREF(f->fn);
        PyGILState_Release(g);
    }
    PyMem_RawFree(f);
}

/* ---- DataPipe ---------------------------------------------------------------- */

static PyObject *dt_pipe_wrap(sp_dataset *ds) {
    if (!ds) return py_raise();
    py_datapipe *p = PyObject_New(py_datapipe, &py_datapipe_type);
    if (!p) {
        sp_dataset_release(ds);
        return NULL;
    }
    p->ds = ds;
    return (PyObject *)p;
}

static void dt_pipe_dealloc(PyObject *self) {
    sp_dataset_release(((py_datapipe *)self)->ds);
    PyObject_Free(self);
}

/* map(ops, cols, seed): ops a sequence of Transforms, cols column indices. */
static PyObject *dt_pipe_map(PyObject *self, PyObject *args) {
    PyObject *ops, *cols;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOK", &ops, &cols, &seed)) return NULL;
    PyObject *fo = PySequence_Fast(ops, "map: operations must be a sequence");
    PyObject *fc = fo ? PySequence_Fast(cols, "map: columns must be a sequence") : NULL;
    PyObject *r = NULL;
    sp_transform **t = NULL;
    if (!fc) goto done;
    Py_ssize_t nops = PySequence_Fast_GET_SIZE(fo), ncols = PySequence_Fast_GET_SIZE(fc);
    if (nops < 1 || nops > 4096 || ncols < 1 || ncols > DT_MAXC) {
        PyErr_Format(PyExc_ValueError, "map: need 1 to 4096 operations and 1 to %d columns", DT_MAXC);
        goto done;
    }
    int ci[DT_MAXC];
    for (Py_ssize_t i = 0; i < ncols; i++) {
        long v = PyLong_AsLong(PySequence_Fast_GET_ITEM(fc, i));
        if (v == -1 && PyErr_Occurred()) goto done;
        ci[i] = v < -1 || v > DT_MAXC ? -1 : (int)v;
    }
    t = PyMem_Malloc((size_t)nops * sizeof *t);
    if (!t) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nops; k++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fo, k);
        if (!PyObject_TypeCheck(o, &py_dtransform_type)) {
            PyErr_Format(PyExc_TypeError, "map: operation %zd is not a Transform", k);
            goto done;
        }
        t[k] = ((py_dtransform *)o)->t;
    }
    r = dt_pipe_wrap(sp_dataset_map(((py_datapipe *)self)->ds, (int)nops, t, (int)ncols, ci, seed));
done:
    PyMem_Free(t);
    Py_XDECREF(fc);
    Py_XDECREF(fo);
    return r;
}

static PyObject *dt_pipe_shuffle(PyObject *self, PyObject *args) {
    long long n;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "LK", &n, &seed)) return NULL;
    return dt_pipe_wrap(sp_dataset_shuffle(((py_datapipe *)self)->ds, n, seed));
}

static PyObject *dt_pipe_batch(PyObject *self, PyObject *args) {
    long long n;
    int drop;
    if (!PyArg_ParseTuple(args, "Lp", &n, &drop)) return NULL;
    return dt_pipe_wrap(sp_dataset_batch(((py_datapipe *)self)->ds, n, drop));
}

static PyObject *dt_pipe_repeat(PyObject *self, PyObject *args) {
    long long n;
    if (!PyArg_ParseTuple(args, "L", &n)) return NULL;
    return dt_pipe_wrap(sp_dataset_repeat(((py_datapipe *)self)->ds, n));
}

static PyObject *dt_pipe_size(PyObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromLongLong((long long)sp_dataset_size(((py_datapipe *)self)->ds));
}

/* iterate(num_workers, prefetch, epoch, numpy): a DataIter over one pass. */
static PyObject *dt_pipe_iterate(PyObject *self, PyObject *args) {
    int workers, prefetch, numpy;
    unsigned long long epoch;
    if (!PyArg_ParseTuple(args, "iiKp", &workers, &prefetch, &epoch, &numpy)) return NULL;
    sp_dataset *ds = ((py_datapipe *)self)->ds;
    py_dataiter *it = PyObject_New(py_dataiter, &py_dataiter_type);
    if (!it) return NULL;
    it->ncols = sp_dataset_num_columns(ds);
    it->numpy = numpy;
    sp_data_iter *di;
    /* resetting a Python source takes the GIL, maybe on this thread */
    Py_BEGIN_ALLOW_THREADS
    di = sp_data_iter_new(ds, workers, prefetch, epoch);
    Py_END_ALLOW_THREADS
    it->it = di;
    if (!di) {
        Py_DECREF(it);
        return py_raise();
    }
    return (PyObject *)it;
}

static PyMethodDef dt_pipe_methods[] = {
    {"map", dt_pipe_map, METH_VARARGS, "map(ops, cols, seed): a DataPipe applying Transforms"},
    {"shuffle", dt_pipe_shuffle, METH_VARARGS, "shuffle(buffer_size, seed)"},
    {"batch", dt_pipe_batch, METH_VARARGS, "batch(batch_size, drop_remainder)"},
    {"repeat", dt_pipe_repeat, METH_VARARGS, "repeat(count): -1 forever"},
    {"size", dt_pipe_size, METH_NOARGS, "rows of one pass, -1 when unknown"},
    {"iterate", dt_pipe_iterate, METH_VARARGS,
     "iterate(num_workers, prefetch, epoch, numpy): a DataIter over one pass"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject py_datapipe_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "spore._C.DataPipe",
    .tp_basicsize = sizeof(py_datapipe),
    .tp_dealloc = dt_pipe_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A data pipeline description (sp_dataset); made by data_* functions.",
    .tp_methods = dt_pipe_methods,
};

/* ---- DataIter ------------------------------------------------------------------ */

static void dt_iter_close_(py_dataiter *it) {
    sp_data_iter *di = it->it;
    it->it = NULL;
    if (!di) return;
    /* joining workers that may be waiting for the GIL */
    Py_BEGIN_ALLOW_THREADS
    sp_data_iter_free(di);
    Py_END_ALLOW_THREADS
}

static void dt_iter_dealloc(PyObject *self) {
    dt_iter_close_((py_dataiter *)self);
    PyObject_Free(self);
}

static PyObject *dt_iter_next(PyObject *self) {
    py_dataiter *it = (py_dataiter *)self;
    if (!it->it) return NULL; /* closed: StopIteration */
    sp_tensor *row[DT_MAXC];
    int end = 0;
    sp_status st;
    sp_data_iter *di = it->it;
    Py_BEGIN_ALLOW_THREADS
    st = sp_data_iter_next(di, row, &end);
    Py_END_ALLOW_THREADS
    if (st != SP_OK) {
        py_raise();
        dt_iter_close_(it);
        return NULL;
    }
    if (end) {
        dt_iter_close_(it);
        return NULL;
    }
    PyObject *t = PyTuple_New(it->ncols);
    for (int c = 0; c < it->ncols; c++) {
        PyObject *o = t ? dt_wrap(row[c], it->numpy) : NULL;
        sp_tensor_release(row[c]);
        if (!o) Py_CLEAR(t);
        else PyTuple_SET_ITEM(t, c, o);
    }
    return t;
}

static PyObject *dt_iter_close(PyObject *self, PyObject *unused) {
    (void)unused;
    dt_iter_close_((py_dataiter *)self);
    Py_RETURN_NONE;
}

static PyMethodDef dt_iter_methods[] = {
    {"close", dt_iter_close, METH_NOARGS, "stops the pipeline's threads and frees the pass"},
    {NULL, NULL, 0, NULL}};

static PyTypeObject py_dataiter_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "spore._C.DataIter",
    .tp_basicsize = sizeof(py_dataiter),
    .tp_dealloc = dt_iter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One pass over a DataPipe: yields tuples of Tensors (or numpy arrays).",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = dt_iter_next,
    .tp_methods = dt_iter_methods,
};

/* ---- Transform ------------------------------------------------------------------- */

static PyObject *dt_tf_wrap(sp_transform *t) {
    if (!t) return py_raise();
    py_dtransform *o = PyObject_New(py_dtransform, &py_dtransform_type);
    if (!o) {
        sp_transform_release(t);
        return NULL;
    }
    o->t = t;
    return (PyObject *)o;
}

static void dt_tf_dealloc(PyObject *self) {
    sp_transform_release(((py_dtransform *)self)->t);
    PyObject_Free(self);
}

/* apply(columns, seed, counter): the transform on one row, eagerly; the
 * columns may be Tensors or arrays; returns a tuple of Tensors. */
static PyObject *dt_tf_apply(PyObject *self, PyObject *args) {
    PyObject *cols;
    unsigned long long seed, counter;
    if (!PyArg_ParseTuple(args, "OKK", &cols, &seed, &counter)) return NULL;
    sp_transform *t = ((py_dtransform *)self)->t;
    int n = sp_transform_num_columns(t);
    sp_tensor *in[DT_MAXC], *out[DT_MAXC];
    if (dt_row_from(cols, n, in, "the transform's input") < 0) return NULL;
    sp_status st;
    Py_BEGIN_ALLOW_THREADS /* a Python callback takes the GIL itself */
    st = sp_transform_apply(t, n, in, out, seed, counter);
    Py_END_ALLOW_THREADS
    for (int c = 0; c < n; c++) sp_tensor_release(in[c]);
    if (st != SP_OK) return py_raise();
    PyObject *r = PyTuple_New(n);
    for (int c = 0; c < n; c++) {
        PyObject *o = r ? dt_wrap(out[c], 0) : NULL;
        sp_tensor_release(out[c]);
        if (!o) Py_CLEAR(r);
        else PyTuple_SET_ITEM(r, c, o);
    }
    return r;
}

static PyObject *dt_tf_ncols(PyObject *self, void *c) {
    (void)c;
    return PyLong_FromLong(sp_transform_num_columns(((py_dtransform *)self)->t));
}

static PyMethodDef dt_tf_methods[] = {
    {"apply", dt_tf_apply, METH_VARARGS, "apply(columns, seed, counter): a tuple of Tensors"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef dt_tf_getset[] = {
    {"num_columns", dt_tf_ncols, NULL, "columns the transform takes", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject py_dtransform_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "spore._C.Transform",
    .tp_basicsize = sizeof(py_dtransform),
    .tp_dealloc = dt_tf_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A data transform (sp_transform); made by data_transform / data_pyfunc.",
    .tp_methods = dt_tf_methods,
    .tp_getset = dt_tf_getset,
};

/* ---- module functions ---------------------------------------------------------------- */

/* Concatenates two contiguous tensors of equal trailing shape along axis 0
 * (new reference), NULL + error. */
static sp_tensor *dt_concat0(sp_tensor *a, sp_tensor *b) {
    int64_t shape[SP_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[0] = a->shape[0] + b->shape[0];
    sp_tensor *o = sp_tensor_new(a->dtype, a->ndim, shape, SP_CPU);
    if (!o) return NULL;
    size_t na = sp_tensor_nbytes(a), nb = sp_tensor_nbytes(b);
    if (na) memcpy(sp_tensor_data(o), sp_tensor_data(a), na);
    if (nb) memcpy((char *)sp_tensor_data(o) + na, sp_tensor_data(b), nb);
    return o;
}

/* Loads one usage of MNIST as images (N, H, W, 1) and labels (N,). */
static sp_status dt_mnist_usage(const char *dir, const char *usage, sp_tensor **im, sp_tensor **lb) {
    sp_tensor *raw;
    sp_status st = sp_mnist_load(dir, usage, &raw, lb);
    if (st != SP_OK) return st;
    int64_t shape[4] = {raw->shape[0], raw->shape[1], raw->shape[2], 1};
    st = sp_tensor_reshape(raw, 4, shape, im);
    sp_tensor_release(raw);
    if (st != SP_OK) {
        sp_tensor_release(*lb);
        *lb = NULL;
    }
    return st;
}

/* Loads usage "train", "test" or "all" (both, train first) with `one`. */
static PyObject *dt_load_images_labels(const char *dir, const char *usage,
                                       sp_status (*one)(const char *, const char *, sp_tensor **,
                                                        sp_tensor **)) {
    sp_tensor *im = NULL, *lb = NULL, *im2 = NULL, *lb2 = NULL;
    sp_status st;
    Py_BEGIN_ALLOW_THREADS /* reading and inflating files: let other threads run */
    if (strcmp(usage, "all") == 0) {
        st = one(dir, "train", &im, &lb);
        if (st == SP_OK) st = one(dir, "test", &im2, &lb2);
        if (st == SP_OK) {
            if (im->ndim != im2->ndim ||
                memcmp(im->shape + 1, im2->shape + 1, (size_t)(im->ndim - 1) * sizeof(int64_t))) {
                st = sp_error(SP_ERR_FORMAT, "%s: the train and test images differ in size", dir);
            } else {
                sp_tensor *a = dt_concat0(im, im2), *b = a ? dt_concat0(lb, lb2) : NULL;
                sp_tensor_release(im);
                sp_tensor_release(lb);
                im = a, lb = b;
                if (!b) st = sp_last_status();
            }
        }
    } else {
        st = one(dir, usage, &im, &lb);
    }
    Py_END_ALLOW_THREADS
    sp_tensor_release(im2);
    sp_tensor_release(lb2);
    PyObject *r = NULL;
    if (st == SP_OK) {
        PyObject *a = dt_wrap(im, 0), *b = a ? dt_wrap(lb, 0) : NULL;
        if (b) r = PyTuple_Pack(2, a, b);
        Py_XDECREF(a);
        Py_XDECREF(b);
    } else {
        py_raise();
    }
    sp_tensor_release(im);
    sp_tensor_release(lb);
    return r;
}

/* data_mnist(dir, usage): (images uint8 (N, 28, 28, 1), labels uint8 (N,)). */
static PyObject *dt_mnist(PyObject *mod, PyObject *args) {
    (void)mod;
    const char *dir, *usage;
    if (!PyArg_ParseTuple(args, "ss", &dir, &usage)) return NULL;
    return dt_load_images_labels(dir, usage, dt_mnist_usage);
}

/* data_cifar10(dir, usage): (images uint8 (N, 32, 32, 3), labels uint8 (N,)). */
static PyObject *dt_cifar10(PyObject *mod, PyObject *args) {
    (void)mod;
    const char *dir, *usage;
    if (!PyArg_ParseTuple(args, "ss", &dir, &usage)) return NULL;
    if (strcmp(usage, "all") == 0) { /* the loader reads all six batches itself */
        sp_tensor *im, *lb;
        sp_status st;
        Py_BEGIN_ALLOW_THREADS
        st = sp_cifar10_load(dir, usage, &im, &lb);
        Py_END_ALLOW_THREADS
        if (st != SP_OK) return py_raise();
        PyObject *a = dt_wrap(im, 0), *b = a ? dt_wrap(lb, 0) : NULL, *r = b ? PyTuple_Pack(2, a, b) : NULL;
        Py_XDECREF(a);
        Py_XDECREF(b);
        sp_tensor_release(im);
        sp_tensor_release(lb);
        return r;
    }
    return dt_load_images_labels(dir, usage, sp_cifar10_load);
}

/* Reads column names (a sequence of str) into names[]; the count or -1. */
static int dt_names(PyObject *seq, const char **names, PyObject **keep) {
    *keep = PySequence_Fast(seq, "column names must be a sequence of str");
    if (!*keep) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(*keep);
    if (n < 1 || n > DT_MAXC) {
        PyErr_Format(PyExc_ValueError, "a dataset has 1 to %d columns, not %zd", DT_MAXC, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!(names[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(*keep, i)))) return -1;
    return (int)n;
}

/* data_tensors(cols, names, shuffle, num_samples, num_shards, shard_id, seed):
 * rows are slices of the Tensors cols along axis 0 (NumpySlicesDataset,
 * MnistDataset, Cifar10Dataset); num_samples -1 for all. */
static PyObject *dt_tensors(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *cols, *names_o, *keep = NULL, *fc = NULL, *r = NULL;
    int shuffle;
    long long num_samples, shards, shard_id;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "OOpLLLK", &cols, &names_o, &shuffle, &num_samples, &shards,
                          &shard_id, &seed))
        return NULL;
    const char *names[DT_MAXC];
    sp_tensor *t[DT_MAXC] = {0};
    int n = dt_names(names_o, names, &keep);
    if (n < 0) goto done;
    if (!(fc = PySequence_Fast(cols, "data_tensors: columns must be a sequence"))) goto done;
    if (PySequence_Fast_GET_SIZE(fc) != n) {
        PyErr_Format(PyExc_ValueError, "%d column names for %zd columns", n, PySequence_Fast_GET_SIZE(fc));
        goto done;
    }
    for (int c = 0; c < n; c++)
        if (!(t[c] = dt_tensor_of(PySequence_Fast_GET_ITEM(fc, c)))) goto done;
    for (int c = 0; c < n; c++)
        if (t[c]->ndim < 1 || t[c]->shape[0] != t[0]->shape[0]) {
            PyErr_Format(PyExc_ValueError,
                         "column \"%s\" has %lld rows but column \"%s\" has %lld; the columns "
                         "must have the same length",
                         names[c], t[c]->ndim < 1 ? 0LL : (long long)t[c]->shape[0], names[0],
                         (long long)t[0]->shape[0]);
            goto done;
        }
    int64_t rows = t[0]->shape[0];
    if (!shuffle && shards == 1 && (num_samples < 0 || num_samples >= rows)) {
        r = dt_pipe_wrap(sp_dataset_from_tensors(n, t, names));
        goto done;
    }
    dt_tsrc *p = PyMem_RawCalloc(1, sizeof *p);
    if (!p) {
        PyErr_NoMemory();
        goto done;
    }
    if (dt_sampler_init(&p->s, rows, shuffle, num_samples, shards, shard_id, seed) < 0) {
        PyMem_RawFree(p);
        goto done;
    }
    p->ncols = n;
    for (int c = 0; c < n; c++) p->cols[c] = t[c], t[c] = NULL;
    sp_dataset *ds = sp_dataset_from_pull(n, names, dt_tsrc_pull, dt_tsrc_reset, p, dt_tsrc_free);
    if (ds) r = dt_pipe_wrap(ds); /* ds owns p now */
    else dt_tsrc_free(p), py_raise();
done:
    for (int c = 0; c < DT_MAXC; c++) sp_tensor_release(t[c]);
    Py_XDECREF(fc);
    Py_XDECREF(keep);
    return r;
}

/* data_generator(kind, source, names, shuffle, num_samples, num_shards,
 * shard_id, seed): kind 0 random-access (len(source) rows, source[i]),
 * 1 a callable returning an iterable per pass, 2 an iterable. */
static PyObject *dt_generator(PyObject *mod, PyObject *args) {
    (void)mod;
    int kind, shuffle;
    PyObject *source, *names_o, *keep = NULL, *r = NULL;
    long long num_samples, shards, shard_id;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "iOOpLLLK", &kind, &source, &names_o, &shuffle, &num_samples,
                          &shards, &shard_id, &seed))
        return NULL;
    const char *names[DT_MAXC];
    int n = dt_names(names_o, names, &keep);
    if (n < 0) goto done;
    if (kind < DT_RANDOM || kind > DT_ITERABLE) {
        PyErr_Format(PyExc_ValueError, "data_generator: bad kind %d", kind);
        goto done;
    }
    dt_psrc *p = PyMem_RawCalloc(1, sizeof *p);
    if (!p) {
        PyErr_NoMemory();
        goto done;
    }
    p->kind = kind, p->ncols = n, p->limit = num_samples;
    if (kind == DT_RANDOM) {
        Py_ssize_t len = PyObject_Length(source);
        if (len < 0 || dt_sampler_init(&p->s, len, shuffle, num_samples, shards, shard_id, seed) < 0) {
            PyMem_RawFree(p);
            goto done;
        }
    }
    Py_INCREF(source);
    p->source = source;
    sp_dataset *ds = sp_dataset_from_pull(n, names, dt_psrc_pull, dt_psrc_reset, p, dt_psrc_free);
    if (ds) r = dt_pipe_wrap(ds); /* ds owns p now */
    else dt_psrc_free(p), py_raise();
done:
    Py_XDECREF(keep);
    return r;
}

/* Reads a sequence of numbers into v[0..max-1]; the count or -1. */
static int dt_doubles(PyObject *seq, double *v, int max, const char *what) {
    PyObject *f = PySequence_Fast(seq, what);
    if (!f) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(f);
    if (n > max) {
        PyErr_Format(PyExc_ValueError, "%s: at most %d values, got %zd", what, max, n);
        Py_DECREF(f);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        v[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(f, i));
        if (v[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(f);
            return -1;
        }
    }
    Py_DECREF(f);
    return (int)n;
}

/* data_transform(name, *args): a C vision transform.
 *   ("rescale", rescale, shift)  ("normalize", mean, std)  ("hwc2chw",)
 *   ("random_crop", h, w, (left, top, right, bottom), pad_if_needed, fill)
 *   ("random_horizontal_flip", prob)  ("resize", h, w, nearest)
 *   ("type_cast", dtype) */
static PyObject *dt_transform(PyObject *mod, PyObject *args) {
    (void)mod;
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    const char *name = n ? PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, 0)) : NULL;
    if (!name) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "data_transform: needs a name");
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, n);
    if (!rest) return NULL;
    sp_transform *t = NULL;
    int ok = 0;
    if (!strcmp(name, "rescale")) {
        double a, b;
        if ((ok = PyArg_ParseTuple(rest, "dd", &a, &b))) t = sp_transform_rescale(a, b);
    } else if (!strcmp(name, "normalize")) {
        PyObject *mo, *so;
        double m[64], s[64];
        if ((ok = PyArg_ParseTuple(rest, "OO", &mo, &so))) {
            int nm = dt_doubles(mo, m, 64, "Normalize mean"), ns = nm < 0 ? -1 : dt_doubles(so, s, 64, "Normalize std");
            if (ns < 0) ok = 0;
            else if (nm != ns) {
                PyErr_Format(PyExc_ValueError, "Normalize: %d mean values but %d std values", nm, ns);
                ok = 0;
            } else t = sp_transform_normalize(nm, m, s);
        }
    } else if (!strcmp(name, "hwc2chw")) {
        if ((ok = PyArg_ParseTuple(rest, ""))) t = sp_transform_hwc2chw();
    } else if (!strcmp(name, "random_crop")) {
        long long h, w, p[4];
        int pin;
        double fill;
        if ((ok = PyArg_ParseTuple(rest, "LL(LLLL)pd", &h, &w, &p[0], &p[1], &p[2], &p[3], &pin, &fill))) {
            int64_t pad[4] = {p[0], p[1], p[2], p[3]};
            t = sp_transform_random_crop(h, w, pad, pin, fill);
        }
    } else if (!strcmp(name, "random_horizontal_flip")) {
        double prob;
        if ((ok = PyArg_ParseTuple(rest, "d", &prob))) t = sp_transform_random_horizontal_flip(prob);
    } else if (!strcmp(name, "resize")) {
        long long h, w;
        int nearest;
        if ((ok = PyArg_ParseTuple(rest, "LLp", &h, &w, &nearest)))
            t = sp_transform_resize(h, w, nearest ? SP_INTERP_NEAREST : SP_INTERP_BILINEAR);
    } else if (!strcmp(name, "type_cast")) {
        PyObject *d;
        sp_dtype dt;
        if ((ok = PyArg_ParseTuple(rest, "O", &d)) && (ok = py_dtype_from(d, &dt) == 0))
            t = sp_transform_type_cast(dt);
    } else {
        PyErr_Format(PyExc_ValueError, "data_transform: unknown transform '%s'", name);
    }
    Py_DECREF(rest);
    if (!ok) return NULL;
    return dt_tf_wrap(t);
}

/* data_pyfunc(fn, ncols): a Transform calling the Python callable fn on
 * ncols columns (numpy arrays) in the pipeline's worker threads. */
static PyObject *dt_pyfunc_new(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *fn;
    int ncols;
    if (!PyArg_ParseTuple(args, "Oi", &fn, &ncols)) return NULL;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "map: %R is neither a transform nor callable", fn);
        return NULL;
    }
    dt_pyfunc *f = PyMem_RawMalloc(sizeof *f);
    if (!f) return PyErr_NoMemory();
    Py_INCREF(fn);
    f->fn = fn;
    sp_transform *t = sp_transform_callback(ncols, dt_pyfunc_call, f, dt_pyfunc_free);
    if (!t) {
        dt_pyfunc_free(f);
        return py_raise();
    }
    return dt_tf_wrap(t);
}

static PyMethodDef dt_functions[] = {
    {"data_mnist", dt_mnist, METH_VARARGS, "data_mnist(dir, usage): (images, labels) Tensors"},
    {"data_cifar10", dt_cifar10, METH_VARARGS, "data_cifar10(dir, usage): (images, labels) Tensors"},
    {"data_tensors", dt_tensors, METH_VARARGS,
     "data_tensors(cols, names, shuffle, num_samples, num_shards, shard_id, seed): a DataPipe"},
    {"data_generator", dt_generator, METH_VARARGS,
     "data_generator(kind, source, names, shuffle, num_samples, num_shards, shard_id, seed)"},
    {"data_transform", dt_transform, METH_VARARGS, "data_transform(name, *args): a Transform"},
    {"data_pyfunc", dt_pyfunc_new, METH_VARARGS, "data_pyfunc(fn, ncols): a Python Transform"},
    {NULL, NULL, 0, NULL}};

int py_dataset_init(PyObject *m) {
    if (PyType_Ready(&py_datapipe_type) < 0 || PyType_Ready(&py_dataiter_type) < 0 ||
        PyType_Ready(&py_dtransform_type) < 0)
        return -1;
    if (PyModule_AddFunctions(m, dt_functions) < 0) return -1;
    Py_INCREF(&py_datapipe_type);
    if (PyModule_AddObject(m, "DataPipe", (PyObject *)&py_datapipe_type) < 0) {
        Py_DECREF(&py_datapipe_type);
        return -1;
    }
    Py_INCREF(&py_dataiter_type);
    if (PyModule_AddObject(m, "DataIter", (PyObject *)&py_dataiter_type) < 0) {
        Py_DECREF(&py_dataiter_type);
        return -1;
    }
    Py_INCREF(&py_dtransform_type);
    if (PyModule_AddObject(m, "Transform", (PyObject *)&py_dtransform_type) < 0) {
        Py_DECREF(&py_dtransform_type);
        return -1;
    }
    return 0;
}
