/*
 * dispatch.c -- running a primitive on tensors: check, infer, allocate,
 * launch.
 *
 * sp_op_call is the one door through which eager code, the VM and C users
 * run a primitive.  Its steps, in order, each of which may fail with a
 * message naming the primitive:
 *
 *   1. the inputs exist and sit on one device (see "Devices" below);
 *   2. inference (sp_op_infer) on their metas: arity, input 0's dtype
 *      against the table's mask, then the op's own infer function for
 *      shapes, attributes and output dtypes;
 *   3. the backend of that device exists and supports (op, dtype);
 *   4. outputs are allocated on that device (ops without inputs: the
 *      default device, sp_default_device), contiguous, with the inferred
 *      metas;
 *   5. the kernel runs.
 *
 * Invariant: a failed call hands back no outputs (*n_out == 0) and holds on
 * to nothing it allocated.  Success hands back exactly n_out new references.
 *
 * Random primitives (SP_OPF_RANDOM) read their stream from the attributes
 * seed and offset.  When the caller gives no seed (eager use), this file
 * draws one from the global Philox generator and reserves enough blocks
 * for the call, so consecutive eager calls give fresh numbers while the
 * compiler, which passes seed and offset explicitly, stays deterministic.
 *
 * Devices.  A call runs on the device of its inputs.  Two exceptions let
 * host data meet GPU tensors, and both copy the CPU input to the GPU for
 * the call only:
 *   - a 0-d CPU tensor beside tensors of one other device (PyTorch's rule):
 *     the Python numbers the front end, the compiler and rt_as_tensor turn
 *     into 0-d tensors stay on the host and work with inputs anywhere;
 *   - any CPU tensor beside tensors of the GPU that is the default device
 *     (MindSpore's rule: with device_target="GPU", host data goes to the
 *     device implicitly; PyTorch raises instead -- we follow MindSpore).
 * Otherwise inputs on different devices are an error naming both, and so
 * are two GPUs.  An input that an in-place primitive writes is never
 * copied (the write would land in the copy): on the wrong device it is an
 * error.  Meta-mode calls check the same rules but copy nothing.
 *
 * In-place primitives (SP_OPF_INPLACE: the optimizer updates) have no
 * outputs; their kernels write into inputs, which must therefore be
 * contiguous.
 *
 * Meta mode.  A call with any meta input (SP_DEVICE_META), or any call on
 * a thread that has a trace installed (sp_op_trace_set), stops after step
 * 2: its outputs are new meta tensors with the inferred metas, no kernel
 * runs, no backend is asked, and random primitives draw nothing from the
 * global generator (their attributes go to the trace as the caller gave
 * them).  Real tensors may meet meta ones in such a call -- they are the
 * constants of the program being traced (a Python scalar turned into a 0-d
 * tensor) -- so only the real inputs must share a device.  After
 * inference the trace callback sees the call: op, inputs, attributes and
 * outputs, all borrowed.  This is how the compiler evaluates an API
 * function abstractly and learns the primitive calls it makes.
 */
#include <string.h>

#include "backend/backend.h"
#include "ops/ops.h"

static const sp_attrs dispatch_no_attrs; /* n == 0 */

static _Thread_local sp_op_trace_fn dispatch_trace_fn;
static _Thread_local void *dispatch_trace_ctx;

void sp_op_trace_set(sp_op_trace_fn fn, void *ctx, sp_op_trace_fn *prev_fn, void **prev_ctx) {
    if (prev_fn) *prev_fn = dispatch_trace_fn;
    if (prev_ctx) *prev_ctx = dispatch_trace_ctx;
    dispatch_trace_fn = fn;
    dispatch_trace_ctx = fn ? ctx : NULL;
}

int sp_op_tracing(void) { return dispatch_trace_fn != NULL; }

sp_meta sp_meta_of(const sp_tensor *t) {
    sp_meta m;
    memset(&m, 0, sizeof m);
    if (!t) return m;
    m.dtype = t->dtype;
    m.ndim = t->ndim;
    for (int i = 0; i < t->ndim && i < SP_MAX_DIMS; i++) m.shape[i] = t->shape[i];
    return m;
}

/* "float32, float64, float16" for a dtype mask. */
static void dispatch_mask_str(uint32_t mask, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (int d = 0; d < SP_DTYPE_COUNT; d++) {
        if (!(mask & SP_DTM(d))) continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? ", " : "", sp_dtype_name((sp_dtype)d));
        if (w < 0 || (size_t)w >= n - len) break;
        len += (size_t)w;
    }
}

static sp_status dispatch_bad_dtype(const sp_op_def *def, sp_dtype d, const char *what) {
    char mask[160];
    dispatch_mask_str(def->dtypes, mask, sizeof mask);
    return sp_error(SP_ERR_DTYPE, "%s: %sdtype %s is not supported (takes %s)", def->name, what,
                    sp_dtype_name(d), mask);
}

/* A meta that cannot come from a real tensor (the compiler may build them):
 * a bad dtype, ndim or a negative size. */
static sp_status dispatch_check_meta(const sp_op_def *def, int i, const sp_meta *m) {
    if ((int)m->dtype < 0 || m->dtype >= SP_DTYPE_COUNT)
        return sp_error(SP_ERR_DTYPE, "%s: input %d has an invalid dtype %d", def->name, i,
                        (int)m->dtype);
    if (m->ndim < 0 || m->ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "%s: input %d has %d dims (at most %d)", def->name, i,
                        m->ndim, SP_MAX_DIMS);
    /* inference functions and kernels multiply sizes (and strides) freely:
     * demand, as numpy does, that the product of the nonzero sizes times the
     * widest itemsize fits in int64, even for a tensor with no elements */
    int64_t bytes = 16;
    for (int k = 0; k < m->ndim; k++) {
        char s[256];
        if (m->shape[k] < 0) {
            sp_shape_str(m->ndim, m->shape, s, sizeof s);
            return sp_error(SP_ERR_SHAPE, "%s: input %d has a negative size in shape %s",
                            def->name, i, s);
        }
        if (__builtin_mul_overflow(bytes, m->shape[k] ? m->shape[k] : 1, &bytes)) {
            sp_shape_str(m->ndim, m->shape, s, sizeof s);
            return sp_error(SP_ERR_SHAPE, "%s: input %d has shape %s, too large for a tensor",
                            def->name, i, s);
        }
    }
    return SP_OK;
}

/* Outputs must be allocatable: sizes >= 0 and numel * itemsize within int64. */
static sp_status dispatch_check_out(const sp_op_def *def, int i, const sp_meta *m) {
    if ((int)m->dtype < 0 || m->dtype >= SP_DTYPE_COUNT || m->ndim < 0 || m->ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_INTERNAL, "%s: inference gave a bad meta for output %d",
                        def->name, i);
    int64_t n = 16; /* as for inputs: nonzero sizes times the widest itemsize */
    for (int k = 0; k < m->ndim; k++) {
        char s[256];
        if (m->shape[k] < 0) {
            sp_shape_str(m->ndim, m->shape, s, sizeof s);
            return sp_error(SP_ERR_SHAPE, "%s: negative size %lld in output shape %s", def->name,
                            (long long)m->shape[k], s);
        }
        if (__builtin_mul_overflow(n, m->shape[k] ? m->shape[k] : 1, &n)) {
            sp_shape_str(m->ndim, m->shape, s, sizeof s);
            return sp_error(SP_ERR_SHAPE, "%s: output shape %s is too large", def->name, s);
        }
    }
    return SP_OK;
}

sp_status sp_op_infer(int op, int n_in, const sp_meta *in, const sp_attrs *attrs, int *n_out,
                      sp_meta *out) {
    if (n_out) *n_out = 0;
    if (op < 0 || op >= SP_OP_COUNT)
        return sp_error(SP_ERR_ARG, "unknown primitive id %d (there are %d)", op, SP_OP_COUNT);
    const sp_op_def *def = &sp_op_defs[op];
    if (!n_out || !out) return sp_error(SP_ERR_ARG, "%s: NULL output array", def->name);
    if (def->n_in >= 0 && n_in != def->n_in)
        return sp_error(SP_ERR_ARG, "%s: takes %d input%s, got %d", def->name, def->n_in,
                        def->n_in == 1 ? "" : "s", n_in);
    if (def->n_in < 0 && (n_in < 1 || n_in > SP_MAX_INPUTS))
        return sp_error(SP_ERR_ARG, "%s: takes 1 to %d inputs, got %d", def->name, SP_MAX_INPUTS,
                        n_in);
    if (n_in > 0 && !in) return sp_error(SP_ERR_ARG, "%s: NULL input array", def->name);
    for (int i = 0; i < n_in; i++) {
        sp_status st = dispatch_check_meta(def, i, &in[i]);
        if (st) return st;
    }
    if (n_in > 0 && !(def->dtypes & SP_DTM(in[0].dtype))) return dispatch_bad_dtype(def, in[0].dtype, "");
    if (!attrs) attrs = &dispatch_no_attrs;
    if (!def->infer)
        return sp_error(SP_ERR_UNSUPPORTED, "%s: no shape inference yet", def->name);

    int n = 0;
    sp_meta tmp[SP_MAX_OUTPUTS];
    sp_status st = def->infer(def, n_in, in, attrs, &n, tmp);
    if (st) return st;
    if (n < 0 || n > SP_MAX_OUTPUTS || (def->n_out >= 0 && n != def->n_out))
        return sp_error(SP_ERR_INTERNAL, "%s: inference gave %d outputs", def->name, n);
    for (int i = 0; i < n; i++) {
        st = dispatch_check_out(def, i, &tmp[i]);
        if (st) return st;
    }
    /* ops without inputs make their dtype from attributes; the table's mask
     * says which ones they may make */
    if (n_in == 0 && n > 0 && !(def->dtypes & SP_DTM(tmp[0].dtype)))
        return dispatch_bad_dtype(def, tmp[0].dtype, "");
    memcpy(out, tmp, (size_t)n * sizeof *tmp);
    *n_out = n;
    return SP_OK;
}

static const char *dispatch_dev_str(sp_device d, char *buf, size_t n) {
    if (d.type == SP_DEVICE_CPU)
        snprintf(buf, n, "cpu");
    else if (d.type == SP_DEVICE_CUDA)
        snprintf(buf, n, "cuda:%d", d.index);
    else
        snprintf(buf, n, "device(%d):%d", (int)d.type, d.index);
    return buf;
}

static int dispatch_same_dev(sp_device a, sp_device b) {
    return a.type == b.type && (a.type == SP_DEVICE_CPU || a.index == b.index);
}

/* The inputs an in-place primitive's kernel writes (bit i: input i); all of
 * them for one not listed, so a new in-place primitive is safe before it
 * is listed. */
static uint64_t dispatch_written(int op) {
    switch (op) {
    case SP_OP_SGD_UPDATE: return 0x5;  /* param, accum */
    case SP_OP_ADAM_UPDATE: return 0xd; /* param, m, v */
    case SP_OP_ASSIGN: return 0x1;      /* variable */
    default: return (sp_op_defs[op].flags & SP_OPF_INPLACE) ? ~(uint64_t)0 : 0;
    }
}

/* Chooses the device of a call from its real inputs (the essay's
 * "Devices") and marks in *move the CPU inputs to copy there.  *dev is
 * left alone when every real input is on the CPU. */
static sp_status dispatch_devices(const sp_op_def *def, int op, int n_in, sp_tensor *const *in,
                                  sp_device *dev, uint64_t *move) {
    int gpu = -1; /* the first real input off the CPU */
    char a[32], b[32];
    *move = 0;
    for (int i = 0; i < n_in; i++) {
        sp_device d = in[i]->buf->device;
        if (d.type == SP_DEVICE_META || d.type == SP_DEVICE_CPU) continue;
        if (gpu < 0) {
            gpu = i;
            *dev = d;
        } else if (!dispatch_same_dev(d, *dev)) {
            return sp_error(SP_ERR_DEVICE,
                            "%s: inputs are on different devices (input %d on %s, input %d on %s)",
                            def->name, gpu, dispatch_dev_str(*dev, a, sizeof a), i,
                            dispatch_dev_str(d, b, sizeof b));
        }
    }
    if (gpu < 0) return SP_OK;
    int host_ok = dispatch_same_dev(sp_default_device(), *dev);
    uint64_t written = dispatch_written(op);
    for (int i = 0; i < n_in; i++) {
        if (in[i]->buf->device.type != SP_DEVICE_CPU) continue;
        if (written & ((uint64_t)1 << i))
            return sp_error(SP_ERR_DEVICE,
                            "%s: input %d is on cpu and updated in place, input %d on %s: move it "
                            "there first (Tensor.to)", def->name, i, gpu,
                            dispatch_dev_str(*dev, a, sizeof a));
        if (in[i]->ndim != 0 && !host_ok) {
            int lo = i < gpu ? i : gpu, hi = i < gpu ? gpu : i;
            return sp_error(SP_ERR_DEVICE,
                            "%s: inputs are on different devices (input %d on %s, input %d on %s); "
                            "move one with Tensor.to, or make %s the default device",
                            def->name, lo, lo == i ? "cpu" : dispatch_dev_str(*dev, a, sizeof a), hi,
                            hi == i ? "cpu" : dispatch_dev_str(*dev, b, sizeof b),
                            dispatch_dev_str(*dev, a, sizeof a));
        }
        *move |= (uint64_t)1 << i;
    }
    return SP_OK;
}

/* The inputs a kernel gets when `move` (nonzero) marks some: `buf` holding
 * copies on dev of the inputs marked in `move` (new references the
 * caller drops with dispatch_unmove) and the rest borrowed.  NULL + error
 * when a copy fails (nothing is held then). */
static sp_tensor *const *dispatch_moved(int n_in, sp_tensor *const *in, uint64_t move, sp_device dev,
                                        sp_tensor **buf) {
    for (int i = 0; i < n_in; i++) {
        buf[i] = in[i];
        if (!(move & ((uint64_t)1 << i))) continue;
        if (sp_tensor_to(in[i], dev, &buf[i]) != SP_OK) {
            for (int k = 0; k < i; k++)
                if (move & ((uint64_t)1 << k)) sp_tensor_release(buf[k]);
            return NULL;
        }
    }
    return buf;
}

static void dispatch_unmove(int n_in, sp_tensor *const *use, uint64_t move) {
    for (int i = 0; move && i < n_in; i++)
        if (move & ((uint64_t)1 << i)) sp_tensor_release(use[i]);
}

/* Checks the input tensors (present, one device, sane metas) and infers.
 * *meta says whether the call runs in meta mode (see the essay): a trace is
 * installed or an input is a meta tensor; then only the real inputs must
 * share a device.  *move marks the CPU inputs to copy to *dev (never in
 * meta mode). */
static sp_status dispatch_prepare(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs,
                                  int *n_out, sp_meta *metas, sp_device *dev, int *meta,
                                  uint64_t *move) {
    *n_out = 0;
    *move = 0;
    *meta = dispatch_trace_fn != NULL;
    if (op < 0 || op >= SP_OP_COUNT)
        return sp_error(SP_ERR_ARG, "unknown primitive id %d (there are %d)", op, SP_OP_COUNT);
    const sp_op_def *def = &sp_op_defs[op];
    if (n_in < 0 || n_in > SP_MAX_INPUTS)
        return sp_error(SP_ERR_ARG, "%s: %d inputs (at most %d)", def->name, n_in, SP_MAX_INPUTS);
    if (n_in > 0 && !in) return sp_error(SP_ERR_ARG, "%s: NULL input array", def->name);
    sp_meta inm[SP_MAX_INPUTS];
    /* no inputs: the default device; inputs all on the CPU: the CPU */
    *dev = n_in == 0 ? sp_default_device() : SP_CPU;
    for (int i = 0; i < n_in; i++) {
        if (!in[i] || !in[i]->buf)
            return sp_error(SP_ERR_ARG, "%s: input %d is NULL", def->name, i);
        if (in[i]->buf->device.type == SP_DEVICE_META) *meta = 1;
        inm[i] = sp_meta_of(in[i]);
    }
    /* a meta input goes with any device */
    sp_status dst = dispatch_devices(def, op, n_in, in, dev, move);
    if (dst) return dst;
    if (*meta) {
        *dev = SP_META;
        *move = 0;
    }
    sp_status st = sp_op_infer(op, n_in, inm, attrs, n_out, metas);
    if (st) return st;
    if ((def->flags & SP_OPF_INPLACE))
        for (int i = 0; i < n_in; i++)
            if (!sp_tensor_is_contiguous(in[i]))
                return sp_error(SP_ERR_ARG, "%s: input %d must be contiguous (it is updated in place)",
                                def->name, i);
    return SP_OK;
}

/* Finds the backend and checks that it runs (op, dtype). */
static sp_backend *dispatch_backend(int op, sp_device dev, sp_dtype d) {
    const sp_op_def *def = &sp_op_defs[op];
    sp_backend *be = sp_backend_get(dev.type);
    if (!be) return NULL;
    if (be->supports && be->supports(be, op, d)) return be;
    char ds[32];
    if (dev.type == SP_DEVICE_CPU && (def->dtypes & SP_DTM(d)))
        sp_error(SP_ERR_UNSUPPORTED, "no CPU kernel for %s", def->name);
    else
        sp_error(SP_ERR_UNSUPPORTED, "%s: the %s backend has no kernel for dtype %s (on %s)",
                 def->name, be->name, sp_dtype_name(d), dispatch_dev_str(dev, ds, sizeof ds));
    return NULL;
}

/* Copies attrs and adds seed/offset from the global generator when the
 * caller gave no seed.  Returns the attrs to use (either `attrs` or `buf`). */
static const sp_attrs *dispatch_random_attrs(const sp_op_def *def, const sp_attrs *attrs,
                                             const sp_meta *out0, sp_attrs *buf, sp_status *st) {
    *st = SP_OK;
    if (!(def->flags & SP_OPF_RANDOM) || sp_attrs_find(attrs, "seed")) return attrs;
    *buf = *attrs;
    int64_t numel = 1;
    for (int k = 0; k < out0->ndim; k++) numel *= out0->shape[k]; /* checked by infer */
    /* uniform lanes take numel/4 blocks, normals numel/2: reserve the larger */
    uint64_t seed, offset, nblocks = (uint64_t)numel / 2 + 1;
    sp_rng_next(nblocks, &seed, &offset);
    if ((*st = sp_attrs_set_int(buf, "seed", (int64_t)seed)) != SP_OK ||
        (*st = sp_attrs_set_int(buf, "offset", (int64_t)offset)) != SP_OK) {
        *st = sp_error(SP_ERR_ARG, "%s: no room for the seed attributes (%d attributes given)",
                       def->name, attrs->n);
        return NULL;
    }
    return buf;
}

static sp_status dispatch_launch(sp_backend *be, int op, int n_in, sp_tensor *const *in,
                                 const sp_attrs *attrs, int n_out, sp_tensor *const *out) {
    sp_kernel_args ka = {op, n_in, in, n_out, out, attrs};
    return be->launch(be, &ka);
}

sp_status sp_op_call(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs, int *n_out,
                     sp_tensor **out) {
    if (!n_out || !out) {
        if (n_out) *n_out = 0;
        return sp_error(SP_ERR_ARG, "%s: NULL output array",
                        sp_op_name(op) ? sp_op_name(op) : "sp_op_call");
    }
    *n_out = 0;
    if (!attrs) attrs = &dispatch_no_attrs;
    int n = 0, meta;
    sp_meta metas[SP_MAX_OUTPUTS];
    sp_device dev;
    uint64_t move;
    sp_status st = dispatch_prepare(op, n_in, in, attrs, &n, metas, &dev, &meta, &move);
    if (st) return st;
    const sp_op_def *def = &sp_op_defs[op];
    sp_backend *be = NULL;
    sp_attrs rbuf;
    const sp_attrs *use = attrs;
    if (!meta) {
        sp_dtype kd = n_in > 0 ? in[0]->dtype : (n > 0 ? metas[0].dtype : SP_F32);
        be = dispatch_backend(op, dev, kd);
        if (!be) return sp_last_status();
        use = dispatch_random_attrs(def, attrs, &metas[0], &rbuf, &st);
        if (!use) return st;
    }

    sp_tensor *res[SP_MAX_OUTPUTS] = {0};
    for (int i = 0; i < n; i++) {
        res[i] = sp_tensor_new(metas[i].dtype, metas[i].ndim, metas[i].shape, dev);
        if (!res[i]) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            goto fail;
        }
    }
    if (!meta) {
        sp_tensor *mbuf[SP_MAX_INPUTS];
        sp_tensor *const *kin = move ? dispatch_moved(n_in, in, move, dev, mbuf) : in;
        if (move && !kin) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_DEVICE;
            goto fail;
        }
        st = dispatch_launch(be, op, n_in, kin, use, n, res);
        dispatch_unmove(n_in, kin, move);
        if (st) goto fail;
    } else if (dispatch_trace_fn) {
        dispatch_trace_fn(dispatch_trace_ctx, op, n_in, in, attrs, n, res);
    }
    for (int i = 0; i < n; i++) out[i] = res[i];
    *n_out = n;
    return SP_OK;
fail:
    for (int i = 0; i < n; i++) sp_tensor_release(res[i]);
    return st;
}

sp_status sp_op_call_into(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs,
                          int n_out, sp_tensor *const *out) {
    if (!attrs) attrs = &dispatch_no_attrs;
    int n = 0, meta;
    sp_meta metas[SP_MAX_OUTPUTS];
    sp_device dev;
    uint64_t move;
    sp_status st = dispatch_prepare(op, n_in, in, attrs, &n, metas, &dev, &meta, &move);
    if (st) return st;
    const sp_op_def *def = &sp_op_defs[op];
    if (n_out != n)
        return sp_error(SP_ERR_ARG, "%s: given %d outputs, inference gives %d", def->name, n_out, n);
    if (n > 0 && !out) return sp_error(SP_ERR_ARG, "%s: NULL output array", def->name);
    for (int i = 0; i < n; i++)
        if (out[i] && out[i]->buf && out[i]->buf->device.type == SP_DEVICE_META) meta = 1;
    for (int i = 0; i < n; i++) {
        const sp_tensor *t = out[i];
        if (!t || !t->buf) return sp_error(SP_ERR_ARG, "%s: output %d is NULL", def->name, i);
        sp_meta m = sp_meta_of(t);
        int same = m.dtype == metas[i].dtype && m.ndim == metas[i].ndim;
        for (int k = 0; same && k < m.ndim; k++) same = m.shape[k] == metas[i].shape[k];
        if (!same) {
            char a[256], b[256];
            sp_shape_str(m.ndim, m.shape, a, sizeof a);
            sp_shape_str(metas[i].ndim, metas[i].shape, b, sizeof b);
            return sp_error(SP_ERR_SHAPE, "%s: output %d is %s %s, inference gives %s %s",
                            def->name, i, a, sp_dtype_name(m.dtype), b,
                            sp_dtype_name(metas[i].dtype));
        }
        if (!sp_tensor_is_contiguous(t))
            return sp_error(SP_ERR_ARG, "%s: output %d must be contiguous", def->name, i);
        if (meta) continue; /* meta mode: outputs on any device, nothing is written */
        if (n_in == 0 && i == 0) dev = t->buf->device; /* no inputs: the outputs decide */
        if (!dispatch_same_dev(t->buf->device, dev)) {
            char a[32], b[32];
            return sp_error(SP_ERR_DEVICE, "%s: output %d is on %s, not on %s", def->name,
                            i, dispatch_dev_str(t->buf->device, a, sizeof a),
                            dispatch_dev_str(dev, b, sizeof b));
        }
    }
    if (meta) {
        if (dispatch_trace_fn) dispatch_trace_fn(dispatch_trace_ctx, op, n_in, in, attrs, n, out);
        return SP_OK;
    }
    sp_dtype kd = n_in > 0 ? in[0]->dtype : (n > 0 ? metas[0].dtype : SP_F32);
    sp_backend *be = dispatch_backend(op, dev, kd);
    if (!be) return sp_last_status();
    sp_attrs rbuf;
    const sp_attrs *use = dispatch_random_attrs(def, attrs, &metas[0], &rbuf, &st);
    if (!use) return st;
    sp_tensor *mbuf[SP_MAX_INPUTS];
    sp_tensor *const *kin = move ? dispatch_moved(n_in, in, move, dev, mbuf) : in;
    if (move && !kin) return sp_last_status() ? sp_last_status() : SP_ERR_DEVICE;
    st = dispatch_launch(be, op, n_in, kin, use, n, out);
    dispatch_unmove(n_in, kin, move);
    return st;
}

sp_status sp_op_call_name(const char *name, int n_in, sp_tensor *const *in,
                          const sp_attrs *attrs, int *n_out, sp_tensor **out) {
    if (n_out) *n_out = 0;
    int op = sp_op_find(name);
    if (op < 0) return sp_last_status();
    return sp_op_call(op, n_in, in, attrs, n_out, out);
}
