/*
 * infer_create.c -- inference for the primitives that make tensors from
 * attributes alone: arange, full/zeros/ones and the random fills
 * (uniform, normal, bernoulli, randint).
 *
 * With no input to copy a shape or dtype from, everything comes from
 * attributes, which makes this the place where absurd requests (a shape of
 * -1, 2^62 elements, arange with step 0) must be turned away before the
 * dispatcher tries to allocate.  The dispatcher then checks the resulting
 * dtype against the op's mask (uniform cannot make int32).
 *
 * arange's default dtype follows torch: int64 when start, stop and step are
 * all given as ints (absent start/step count as ints), float32 as soon as
 * one of them is a float attribute, even one with an integral value.  Its
 * length is ceil((stop - start) / step), at least 0; for integer arguments
 * it is computed exactly in int64, for floats in double.
 */
#include <math.h>

#include "ops/infer.h"

static int crt_is_int_attr(const sp_attrs *attrs, const char *name) {
    const sp_attr *a = sp_attrs_find(attrs, name);
    return !a || a->kind == SP_ATTR_INT || (a->kind == SP_ATTR_INTS && a->n == 1);
}

sp_status infer_arange(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in, (void)in;
    double stop;
    sp_status st = ops_need_float(def, attrs, "stop", &stop);
    if (st) return st;
    double start = sp_attrs_get_float(attrs, "start", 0), step = sp_attrs_get_float(attrs, "step", 1);
    int integral = crt_is_int_attr(attrs, "start") && crt_is_int_attr(attrs, "stop") &&
                   crt_is_int_attr(attrs, "step");
    int64_t n;
    if (integral) {
        int64_t i0 = sp_attrs_get_int(attrs, "start", 0), i1 = sp_attrs_get_int(attrs, "stop", 0);
        int64_t is = sp_attrs_get_int(attrs, "step", 1), diff;
        if (is == 0) return sp_error(SP_ERR_ARG, "arange: step must be nonzero");
        if (__builtin_sub_overflow(i1, i0, &diff))
            return sp_error(SP_ERR_ARG, "arange: range [%lld, %lld) is too large", (long long)i0,
                            (long long)i1);
        if ((diff > 0) != (is > 0) || diff == 0) {
            n = 0;
        } else { /* ceil(diff / is) with both of one sign, without overflow */
            uint64_t ud = diff > 0 ? (uint64_t)diff : 0 - (uint64_t)diff;
            uint64_t us = is > 0 ? (uint64_t)is : 0 - (uint64_t)is;
            n = (int64_t)((ud - 1) / us + 1);
        }
    } else {
        if (!isfinite(start) || !isfinite(stop) || !isfinite(step))
            return sp_error(SP_ERR_ARG, "arange: start %g, stop %g and step %g must be finite",
                            start, stop, step);
        if (step == 0) return sp_error(SP_ERR_ARG, "arange: step must be nonzero");
        double len = ceil((stop - start) / step);
        if (!(len < 4.0e18))
            return sp_error(SP_ERR_ARG, "arange: start %g, stop %g, step %g give too many "
                            "elements", start, stop, step);
        n = len > 0 ? (int64_t)len : 0;
    }
    sp_dtype dt;
    if ((st = ops_get_dtype(def, attrs, "dtype", integral ? SP_I64 : SP_F32, &dt))) return st;
    if ((st = ops_check_shape(def->name, "shape", 1, &n))) return st;
    ops_meta_set(&out[0], dt, 1, &n);
    *n_out = 1;
    return SP_OK;
}

/* shape (required, checked) and dtype [dflt] into out[0]. */
static sp_status crt_shape_dtype(const sp_op_def *def, const sp_attrs *attrs, sp_dtype dflt,
                                 sp_meta *out) {
    int n;
    const int64_t *shape = ops_need_ints(def, attrs, "shape", &n);
    if (!shape) return sp_last_status();
    sp_status st = ops_check_shape(def->name, "shape", n, shape);
    if (st) return st;
    sp_dtype dt;
    if ((st = ops_get_dtype(def, attrs, "dtype", dflt, &dt))) return st;
    ops_meta_set(out, dt, n, shape);
    return SP_OK;
}

sp_status infer_full(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                     int *n_out, sp_meta *out) {
    (void)n_in, (void)in;
    sp_status st = crt_shape_dtype(def, attrs, SP_F32, &out[0]);
    if (st) return st;
    if (def == &sp_op_defs[SP_OP_FULL]) {
        double v;
        if ((st = ops_need_float(def, attrs, "value", &v))) return st;
    }
    *n_out = 1;
    return SP_OK;
}

sp_status infer_random(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in, (void)in;
    int is_randint = def == &sp_op_defs[SP_OP_RANDINT];
    sp_status st = crt_shape_dtype(def, attrs, is_randint ? SP_I64 : SP_F32, &out[0]);
    if (st) return st;
    if (def == &sp_op_defs[SP_OP_UNIFORM]) {
        double lo = sp_attrs_get_float(attrs, "low", 0), hi = sp_attrs_get_float(attrs, "high", 1);
        if (!isfinite(lo) || !isfinite(hi) || lo > hi)
            return sp_error(SP_ERR_ARG, "uniform: needs finite low <= high, got low %g, high %g",
                            lo, hi);
    } else if (def == &sp_op_defs[SP_OP_NORMAL]) {
        double mean = sp_attrs_get_float(attrs, "mean", 0), sd = sp_attrs_get_float(attrs, "std", 1);
        if (!isfinite(mean) || !(sd >= 0) || !isfinite(sd))
            return sp_error(SP_ERR_ARG, "normal: needs a finite mean and std >= 0, got mean %g, "
                            "std %g", mean, sd);
    } else if (def == &sp_op_defs[SP_OP_BERNOULLI]) {
        double p = sp_attrs_get_float(attrs, "p", 0.5);
        if (!(p >= 0 && p <= 1))
            return sp_error(SP_ERR_ARG, "bernoulli: p must be in [0, 1], got %g", p);
    } else if (is_randint) {
        if (!sp_attrs_find(attrs, "high"))
            return sp_error(SP_ERR_ARG, "randint: missing attribute 'high'");
        int64_t lo = sp_attrs_get_int(attrs, "low", 0), hi = sp_attrs_get_int(attrs, "high", 0);
        if (hi <= lo)
            return sp_error(SP_ERR_ARG, "randint: high %lld must be greater than low %lld",
                            (long long)hi, (long long)lo);
    }
    *n_out = 1;
    return SP_OK;
}
