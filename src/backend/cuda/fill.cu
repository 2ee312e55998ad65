/*
 * fill.cu -- CUDA kernels of the primitives that make a tensor from
 * attributes alone: full, zeros, ones and arange.
 *
 * These have no inputs, so sp_op_call puts their outputs on the CPU; they
 * run here when a caller hands CUDA outputs to sp_op_call_into (the
 * compiler's memory planner does).  full/zeros/ones build the one element
 * on the host with the CPU's own conversion (an int attribute stored exactly,
 * a float one through double) and replicate its bytes (a memset when all
 * bytes agree).  arange computes element i = start + i*step on the device,
 * in wrapping int64 arithmetic when start, stop and step are all int
 * attributes, else in double, and stores it with the CPU's rules -- the
 * same bits as the CPU for every element.
 */
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

/* The element bytes of a full/zeros/ones output, as cpu_fill_value. */
static void fill_pattern(sp_dtype d, const sp_attr *v, double dflt, unsigned char *pat) {
    memset(pat, 0, 8);
    sp_tensor *t = NULL;
    if (v && (v->kind == SP_ATTR_INT || (v->kind == SP_ATTR_INTS && v->n == 1))) {
        int64_t iv = v->kind == SP_ATTR_INT ? v->i : v->ints[0];
        /* sp_store_i64: exact for integers, through double for floats */
        if (sp_dtype_is_float(d)) {
            t = sp_tensor_scalar(d, (double)iv);
        } else {
            uint64_t u = (uint64_t)iv;
            if (d == SP_BOOL) u = iv != 0;
            memcpy(pat, &u, sp_dtype_size(d)); /* little-endian: the low bytes wrap */
            return;
        }
    } else {
        t = sp_tensor_scalar(d, v ? (v->kind == SP_ATTR_FLOAT ? v->f : dflt) : dflt);
    }
    if (t) {
        memcpy(pat, sp_tensor_data(t), sp_dtype_size(d));
        sp_tensor_release(t);
    }
}

static sp_status fill_run(const sp_kernel_args *a, const sp_attr *v, double dflt) {
    if (a->n_out != 1) return sp_error(SP_ERR_INTERNAL, "fill: kernel called with %d outputs", a->n_out);
    sp_tensor *y = a->out[0];
    unsigned char pat[8];
    fill_pattern(y->dtype, v, dflt, pat);
    return cu_fill_bytes(sp_tensor_data(y), sp_tensor_numel(y), (int)sp_dtype_size(y->dtype), pat);
}

sp_status cuda_full(const sp_kernel_args *a) {
    const sp_attr *v = sp_attrs_find(a->attrs, "value");
    if (!v || (v->kind != SP_ATTR_INT && v->kind != SP_ATTR_FLOAT &&
               !(v->kind == SP_ATTR_INTS && v->n == 1)))
        return sp_error(SP_ERR_ARG, "full: attribute 'value' must be a number");
    return fill_run(a, v, 0);
}

sp_status cuda_zeros(const sp_kernel_args *a) { return fill_run(a, NULL, 0); }
sp_status cuda_ones(const sp_kernel_args *a) { return fill_run(a, NULL, 1); }

struct arange_args {
    char *y;
    int dt, integral;
    long long istart, istep, n;
    double start, step;
};

__global__ void arange_kernel(arange_args A) {
    CU_FOR(i, A.n) {
        if (A.integral) {
            unsigned long long v = (unsigned long long)A.istart +
                                   (unsigned long long)i * (unsigned long long)A.istep;
            cu_store_i64_plain(A.dt, A.y, i, (long long)v);
        } else {
            cu_store_f64_plain(A.dt, A.y, i, A.start + (double)i * A.step);
        }
    }
}

static int fill_attr_is_int(const sp_attrs *attrs, const char *name) {
    const sp_attr *a = sp_attrs_find(attrs, name);
    return !a || a->kind == SP_ATTR_INT || (a->kind == SP_ATTR_INTS && a->n == 1);
}

sp_status cuda_arange(const sp_kernel_args *a) {
    if (a->n_out != 1) return sp_error(SP_ERR_INTERNAL, "arange: kernel called with %d outputs", a->n_out);
    sp_tensor *y = a->out[0];
    const sp_attrs *at = a->attrs;
    arange_args A;
    memset(&A, 0, sizeof A);
    A.y = (char *)sp_tensor_data(y);
    A.dt = y->dtype;
    A.integral = fill_attr_is_int(at, "start") && fill_attr_is_int(at, "stop") &&
                 fill_attr_is_int(at, "step");
    A.istart = sp_attrs_get_int(at, "start", 0);
    A.istep = sp_attrs_get_int(at, "step", 1);
    A.start = sp_attrs_get_float(at, "start", 0);
    A.step = sp_attrs_get_float(at, "step", 1);
    A.n = sp_tensor_numel(y);
    if (A.n == 0) return SP_OK;
    arange_kernel<<<cu_blocks(A.n), CU_THREADS, 0, cuda_stream()>>>(A);
    return cu_launched("arange");
}
