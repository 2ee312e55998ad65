/*
 * random.cu -- CUDA kernels of uniform, normal, bernoulli and randint:
 * the CPU's Philox recipe (src/core/philox.c) on the device.
 *
 * A random tensor is a pure function of (seed, offset, element index):
 * element i of uniform/bernoulli/randint is lane i%4 of Philox block i/4,
 * normal uses lanes 2*(i%2), 2*(i%2)+1 of block i/2 (Box-Muller's cosine
 * half, in double).  One thread computes one block and writes its 4 (or 2)
 * elements.  uniform, bernoulli and randint give the CPU's bits exactly:
 * the arithmetic is exact in double (u = x * 2^-32) or integer, and the
 * rounding to the dtype and the "stay below high" clamp repeat the CPU's,
 * with the bounds computed on the host by the same code.  normal agrees to
 * the last bit of libdevice's log and cos against the host libm (a float64
 * ulp or so; float32 and narrower results are almost always identical).
 *
 * These ops have no inputs: they run on the GPU through sp_op_call_into
 * with CUDA outputs.  Seed and offset come from the attributes; when absent
 * (a direct kernel call) they are drawn from the global generator as the
 * CPU kernels do, reserving the same number of blocks.
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

extern "C" {
#include "core/internal.h"
}

enum { RND_UNIFORM, RND_NORMAL, RND_BERNOULLI, RND_RANDINT };

struct rnd_args {
    int kind, dt;
    char *y;
    long long n;
    unsigned long long seed, offset;
    double a, b;            /* low/high, mean/std, p */
    long long ilow;
    unsigned long long rh, rl;
    double below_d;
    float below_f;
    uint16_t below_h;
};

__device__ inline float rnd_half_value(int d, uint16_t h) {
    return d == SP_F16 ? cu_f16_to_f32(h) : cu_bf16_to_f32(h);
}

__device__ inline void rnd_store_uniform(const rnd_args &A, long long i, double v) {
    switch (A.dt) {
    case SP_F64: ((double *)A.y)[i] = v >= A.b ? A.below_d : v; break;
    case SP_F32: {
        float x = (float)v;
        ((float *)A.y)[i] = (double)x >= A.b ? A.below_f : x;
        break;
    }
    default: {
        uint16_t h = A.dt == SP_F16 ? cu_f32_to_f16((float)v) : cu_f32_to_bf16((float)v);
        ((uint16_t *)A.y)[i] = (double)rnd_half_value(A.dt, h) >= A.b ? A.below_h : h;
        break;
    }
    }
}

__global__ void rnd_kernel(rnd_args A) {
    int per = A.kind == RND_NORMAL ? 2 : 4;
    long long nblocks = (A.n + per - 1) / per;
    CU_FOR(b, nblocks) {
        uint32_t x[4];
        cu_philox_block(A.seed, A.offset, (unsigned long long)b, x);
        for (int j = 0; j < per; j++) {
            long long i = b * per + j;
            if (i >= A.n) break;
            switch (A.kind) {
            case RND_UNIFORM: rnd_store_uniform(A, i, A.a + (A.b - A.a) * cu_u01(x[j])); break;
            case RND_BERNOULLI: cu_store_i64_plain(A.dt, A.y, i, cu_u01(x[j]) < A.a); break;
            case RND_RANDINT: {
                unsigned long long u = x[j];
                unsigned long long v = (unsigned long long)A.ilow + u * A.rh + ((u * A.rl) >> 32);
                cu_store_i64_plain(A.dt, A.y, i, (long long)v);
                break;
            }
            default: { /* normal: lanes 2j, 2j+1 */
                double u1 = ((double)x[2 * j] + 1.0) * 0x1p-32, u2 = cu_u01(x[2 * j + 1]);
                double z = sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
                cu_store_f64_plain(A.dt, A.y, i, A.a + A.b * z);
                break;
            }
            }
        }
    }
}

/* Seed and offset from the attributes, or reserved from the global
 * generator (ceil(n / per_block) blocks), as the CPU's cpu_rng_key. */
static void rnd_key(const sp_attrs *attrs, int64_t n, int per_block, rnd_args *A) {
    if (sp_attrs_find(attrs, "seed")) {
        A->seed = (unsigned long long)sp_attrs_get_int(attrs, "seed", 0);
        A->offset = (unsigned long long)sp_attrs_get_int(attrs, "offset", 0);
        return;
    }
    uint64_t s, o;
    sp_rng_next(((uint64_t)n + (uint64_t)per_block - 1) / (uint64_t)per_block, &s, &o);
    A->seed = s;
    A->offset = o;
}

static sp_status rnd_launch(rnd_args *A, const char *name) {
    if (A->n == 0) return SP_OK;
    int per = A->kind == RND_NORMAL ? 2 : 4;
    long long nblocks = (A->n + per - 1) / per;
    rnd_kernel<<<cu_blocks(nblocks), CU_THREADS, 0, cuda_stream()>>>(*A);
    return cu_launched(name);
}

static rnd_args rnd_begin(const sp_kernel_args *a, int kind) {
    rnd_args A;
    memset(&A, 0, sizeof A);
    sp_tensor *y = a->out[0];
    A.kind = kind;
    A.dt = y->dtype;
    A.y = (char *)sp_tensor_data(y);
    A.n = sp_tensor_numel(y);
    rnd_key(a->attrs, A.n, kind == RND_NORMAL ? 2 : 4, &A);
    return A;
}

/* ---- uniform's "below high" bounds, as core_uniform_bounds ---- */

static uint16_t rnd_half_step_down(uint16_t h) {
    if (h == 0) return 0x8001;
    return (h & 0x8000) ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
}

static double rnd_half_value_host(sp_dtype d, uint16_t h) {
    return d == SP_F16 ? sp_f16_to_f32(h) : sp_bf16_to_f32(h);
}

static uint16_t rnd_half_round_host(sp_dtype d, double v) {
    return d == SP_F16 ? sp_f32_to_f16((float)v) : sp_f32_to_bf16((float)v);
}

static void rnd_uniform_bounds(rnd_args *A) {
    double low = A->a, high = A->b;
    A->below_d = nextafter(high, -INFINITY);
    float hf = (float)high;
    if ((double)hf >= high) hf = nextafterf(hf, -INFINITY);
    if ((double)hf < low) hf = (float)low;
    A->below_f = hf;
    sp_dtype d = (sp_dtype)A->dt;
    if (d == SP_F16 || d == SP_BF16) {
        uint16_t h = rnd_half_round_host(d, high);
        while (rnd_half_value_host(d, h) >= high) h = rnd_half_step_down(h);
        if (rnd_half_value_host(d, h) < low) h = rnd_half_round_host(d, low);
        A->below_h = h;
    }
}

sp_status cuda_uniform(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    rnd_args A = rnd_begin(a, RND_UNIFORM);
    A.a = sp_attrs_get_float(a->attrs, "low", 0);
    A.b = sp_attrs_get_float(a->attrs, "high", 1);
    if (!sp_dtype_is_float(y->dtype))
        return sp_error(SP_ERR_DTYPE, "uniform: dtype must be floating point, got %s",
                        sp_dtype_name(y->dtype));
    if (!(isfinite(A.a) && isfinite(A.b) && A.a <= A.b && isfinite(A.b - A.a)))
        return sp_error(SP_ERR_ARG, "uniform: need finite low <= high, got [%g, %g)", A.a, A.b);
    if (A.a == A.b) {
        unsigned char pat[8] = {0};
        sp_store_f64(y->dtype, pat, A.a);
        return cu_fill_bytes(A.y, A.n, (int)sp_dtype_size(y->dtype), pat);
    }
    rnd_uniform_bounds(&A);
    return rnd_launch(&A, "uniform");
}

sp_status cuda_normal(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    rnd_args A = rnd_begin(a, RND_NORMAL);
    A.a = sp_attrs_get_float(a->attrs, "mean", 0);
    A.b = sp_attrs_get_float(a->attrs, "std", 1);
    if (!sp_dtype_is_float(y->dtype))
        return sp_error(SP_ERR_DTYPE, "normal: dtype must be floating point, got %s",
                        sp_dtype_name(y->dtype));
    if (!(isfinite(A.a) && isfinite(A.b) && A.b >= 0))
        return sp_error(SP_ERR_ARG, "normal: need finite mean and std >= 0, got mean %g std %g",
                        A.a, A.b);
    return rnd_launch(&A, "normal");
}

sp_status cuda_bernoulli(const sp_kernel_args *a) {
    rnd_args A = rnd_begin(a, RND_BERNOULLI);
    A.a = sp_attrs_get_float(a->attrs, "p", 0.5);
    if (!(A.a >= 0 && A.a <= 1))
        return sp_error(SP_ERR_ARG, "bernoulli: p must be in [0, 1], got %g", A.a);
    return rnd_launch(&A, "bernoulli");
}

sp_status cuda_randint(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    if (!sp_attrs_find(a->attrs, "high"))
        return sp_error(SP_ERR_ARG, "randint: missing attribute 'high'");
    rnd_args A = rnd_begin(a, RND_RANDINT);
    int64_t low = sp_attrs_get_int(a->attrs, "low", 0), high = sp_attrs_get_int(a->attrs, "high", 0);
    if (high <= low)
        return sp_error(SP_ERR_ARG, "randint: need low < high, got [%lld, %lld)", (long long)low,
                        (long long)high);
    int64_t lo = INT64_MIN, hi = INT64_MAX;
    switch (y->dtype) {
    case SP_I8: lo = INT8_MIN, hi = INT8_MAX; break;
    case SP_U8: lo = 0, hi = UINT8_MAX; break;
    case SP_I32: lo = INT32_MIN, hi = INT32_MAX; break;
    case SP_BOOL: lo = 0, hi = 1; break;
    default: break;
    }
    if (low < lo || high - 1 > hi)
        return sp_error(SP_ERR_ARG, "randint: [%lld, %lld) does not fit %s", (long long)low,
                        (long long)high, sp_dtype_name(y->dtype));
    uint64_t r = (uint64_t)high - (uint64_t)low;
    A.ilow = low;
    A.rh = r >> 32;
    A.rl = r & 0xffffffffu;
    return rnd_launch(&A, "randint");
}
