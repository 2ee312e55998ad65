/*
 * cuda_common.cuh -- what the CUDA kernel families share: dtype conversion
 * with the CPU's exact rules, element load/store by dtype, strided index
 * arithmetic, and launch helpers.
 *
 * Conversions.  Every conversion repeats the CPU's (src/backend/cpu/cast.c,
 * src/core/internal.h) bit for bit, so a cast or a mixed-dtype op gives the
 * same bits on both devices: float16/bfloat16 are handled as raw uint16
 * with the same round-to-nearest-even code, a double narrows to a half
 * through float32 rounded to odd (one correct rounding), float->int
 * truncates toward zero with NaN/inf/out of int64 range giving 0 before
 * wrapping, and bool is "nonzero" (NaN too).  Device code never relies on
 * signed overflow: integer arithmetic is done in uint64_t and wrapped when
 * stored, which gives the same bits as the CPU's narrow wrapping types.
 *
 * Compute types.  Elementwise kernels read every operand, whatever its
 * dtype, as one of three canonical compute types -- float (float32, float16,
 * bfloat16), double (float64) or long long (integers and bool) -- so one
 * kernel instantiation per compute type covers all 81 dtype pairs, and the
 * per-element dtype switch is uniform across a warp (no divergence).
 *
 * Indexing.  A cu_layout holds up to CU_MAX_DIMS dims of a logical shape and
 * one operand's element strides in that shape (0 for broadcast, negative
 * for reversed views).  Hosts collapse dims first (cu_collapse) so common
 * cases are one or two dims.
 */
#ifndef SPORE_CUDA_COMMON_CUH
#define SPORE_CUDA_COMMON_CUH

#include <stdint.h>

#include "backend/cuda/cuda.h"

#define CU_MAX_DIMS 16 /* tile uses 2 per dim */
#define CU_THREADS 256

/* ---- half precision, as src/core/internal.h ---------------------------- */

__device__ inline float cu_bf16_to_f32(uint16_t h) {
    return __uint_as_float((uint32_t)h << 16);
}

__device__ inline uint16_t cu_f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

__device__ inline float cu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while ((man & 0x400u) == 0);
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return __uint_as_float(u);
}

__device__ inline uint16_t cu_f32_to_f16(float f) {
    uint32_t u = __float_as_uint(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) {
        if (a < 0x33000000u) return (uint16_t)sign;
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((a - 0x38000000u) >> 13);
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (uint16_t)(sign | r);
}

/* double -> float rounded to odd: exact input for a later half rounding. */
__device__ inline float cu_f64_to_f32_odd(double d) {
    float f = (float)d;
    double back = (double)f;
    if (back != d) {
        uint32_t u = __float_as_uint(f);
        if (fabs(back) > fabs(d)) u -= 1;
        u |= 1u;
        f = __uint_as_float(u);
    }
    return f;
}

/* sp_f64_to_i64: NaN, inf and out of range give 0. */
__device__ inline long long cu_ftoi(double v) {
    if (!(v > -9.2233720368547758e18 && v < 9.2233720368547758e18)) return 0;
    return (long long)v;
}

/* ---- canonical loads -------------------------------------------------- */

/* Element `off` (in elements) of dtype d at base, as float/double/int64:
 * the canonical value, before any conversion rule. */
template <class C> __device__ inline C cu_load(int d, const void *base, long long off);

/* The conversion rules (cast.c's CVT_DST): canonical source -> compute C. */
template <class C> struct cu_cvt;
template <> struct cu_cvt<float> {
    __device__ static float f(float v) { return v; }
    __device__ static float d(double v) { return (float)v; }
    __device__ static float i(long long v) { return (float)v; }
};
template <> struct cu_cvt<double> {
    __device__ static double f(float v) { return (double)v; }
    __device__ static double d(double v) { return v; }
    __device__ static double i(long long v) { return (double)v; }
};
template <> struct cu_cvt<long long> {
    __device__ static long long f(float v) { return cu_ftoi(v); }
    __device__ static long long d(double v) { return cu_ftoi(v); }
    __device__ static long long i(long long v) { return v; }
};

template <class C> __device__ inline C cu_load(int d, const void *base, long long off) {
    switch (d) {
    case SP_F32: return cu_cvt<C>::f(((const float *)base)[off]);
    case SP_F64: return cu_cvt<C>::d(((const double *)base)[off]);
    case SP_F16: return cu_cvt<C>::f(cu_f16_to_f32(((const uint16_t *)base)[off]));
    case SP_BF16: return cu_cvt<C>::f(cu_bf16_to_f32(((const uint16_t *)base)[off]));
    case SP_I8: return cu_cvt<C>::i(((const int8_t *)base)[off]);
    case SP_U8: return cu_cvt<C>::i(((const uint8_t *)base)[off]);
    case SP_I32: return cu_cvt<C>::i(((const int32_t *)base)[off]);
    case SP_I64: return cu_cvt<C>::i(((const long long *)base)[off]);
    default: return cu_cvt<C>::i(((const uint8_t *)base)[off] != 0); /* bool */
    }
}

/* Nonzero test of any element (bool conversion: NaN is true). */
__device__ inline bool cu_load_bool(int d, const void *base, long long off) {
    switch (d) {
    case SP_F32: return ((const float *)base)[off] != 0.0f;
    case SP_F64: return ((const double *)base)[off] != 0.0;
    case SP_F16:
    case SP_BF16: return (((const uint16_t *)base)[off] & 0x7fffu) != 0;
    case SP_I32: return ((const int32_t *)base)[off] != 0;
    case SP_I64: return ((const long long *)base)[off] != 0;
    default: return ((const uint8_t *)base)[off] != 0;
    }
}

/* ---- stores with cast's rules ----------------------------------------- */

__device__ inline void cu_store_wrap(int d, void *base, long long off, long long v) {
    switch (d) {
    case SP_I8: ((int8_t *)base)[off] = (int8_t)(uint8_t)(unsigned long long)v; break;
    case SP_U8: ((uint8_t *)base)[off] = (uint8_t)(unsigned long long)v; break;
    case SP_I32: ((int32_t *)base)[off] = (int32_t)(uint32_t)(unsigned long long)v; break;
    case SP_I64: ((long long *)base)[off] = v; break;
    default: ((uint8_t *)base)[off] = v != 0; break;
    }
}

/* Stores canonical float v (from a float32/half source or float compute). */
__device__ inline void cu_store(int d, void *base, long long off, float v) {
    switch (d) {
    case SP_F32: ((float *)base)[off] = v; break;
    case SP_F64: ((double *)base)[off] = (double)v; break;
    case SP_F16: ((uint16_t *)base)[off] = cu_f32_to_f16(v); break;
    case SP_BF16: ((uint16_t *)base)[off] = cu_f32_to_bf16(v); break;
    case SP_BOOL: ((uint8_t *)base)[off] = v != 0.0f; break;
    default: cu_store_wrap(d, base, off, cu_ftoi(v)); break;
    }
}

__device__ inline void cu_store(int d, void *base, long long off, double v) {
    switch (d) {
    case SP_F32: ((float *)base)[off] = (float)v; break;
    case SP_F64: ((double *)base)[off] = v; break;
    case SP_F16: ((uint16_t *)base)[off] = cu_f32_to_f16(cu_f64_to_f32_odd(v)); break;
    case SP_BF16: ((uint16_t *)base)[off] = cu_f32_to_bf16(cu_f64_to_f32_odd(v)); break;
    case SP_BOOL: ((uint8_t *)base)[off] = v != 0.0; break;
    default: cu_store_wrap(d, base, off, cu_ftoi(v)); break;
    }
}

__device__ inline void cu_store(int d, void *base, long long off, long long v) {
    switch (d) {
    case SP_F32: ((float *)base)[off] = (float)v; break;
    case SP_F64: ((double *)base)[off] = (double)v; break;
    case SP_F16: ((uint16_t *)base)[off] = cu_f32_to_f16(cu_f64_to_f32_odd((double)v)); break;
    case SP_BF16: ((uint16_t *)base)[off] = cu_f32_to_bf16(cu_f64_to_f32_odd((double)v)); break;
    default: cu_store_wrap(d, base, off, v); break;
    }
}

__device__ inline void cu_store(int d, void *base, long long off, bool v) {
    cu_store(d, base, off, (long long)v);
}

/* sp_store_f64's rules (reductions, fills): a double goes to a half through
 * float32 with two roundings, as the CPU's reductions do. */
__device__ inline void cu_store_f64_plain(int d, void *base, long long off, double v) {
    if (d == SP_F16 || d == SP_BF16)
        cu_store(d, base, off, (float)v);
    else
        cu_store(d, base, off, v);
}

/* sp_store_i64's rules: integers exactly (wrapped), floats through double
 * (and halves through float). */
__device__ inline void cu_store_i64_plain(int d, void *base, long long off, long long v) {
    if (d == SP_F32 || d == SP_F64 || d == SP_F16 || d == SP_BF16)
        cu_store_f64_plain(d, base, off, (double)v);
    else
        cu_store_wrap(d, base, off, v);
}

/* ---- Philox 4x32-10, as src/core/philox.h ------------------------------ */

/* Block `block` of a fill at (seed, offset): counter offset + block with its
 * carry in the third word, key the seed's two halves. */
__device__ inline void cu_philox_block(unsigned long long seed, unsigned long long offset,
                                       unsigned long long block, uint32_t c[4]) {
    unsigned long long lo = offset + block;
    c[0] = (uint32_t)lo;
    c[1] = (uint32_t)(lo >> 32);
    c[2] = lo < offset;
    c[3] = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint32_t hi0 = __umulhi(0xD2511F53u, c[0]), lo0 = 0xD2511F53u * c[0];
        uint32_t hi1 = __umulhi(0xCD9E8D57u, c[2]), lo1 = 0xCD9E8D57u * c[2];
        uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = lo1;
        c[2] = n2;
        c[3] = lo0;
    }
}

/* x / 2^32 in [0, 1), exact in double. */
__device__ inline double cu_u01(uint32_t x) { return (double)x * 0x1p-32; }

/* ---- layouts ------------------------------------------------------------ */

struct cu_layout {
    int nd;
    long long shape[CU_MAX_DIMS];
    long long st[CU_MAX_DIMS]; /* strides, elements */
};

/* The element offset of flat C-order index i of the layout's shape. */
__device__ inline long long cu_offset(const cu_layout &L, long long i) {
    long long off = 0;
    for (int k = L.nd - 1; k > 0; k--) {
        long long s = L.shape[k];
        long long q = i / s;
        off += (i - q * s) * L.st[k];
        i = q;
    }
    return L.nd > 0 ? off + i * L.st[0] : 0;
}

/* Grid for n threads' worth of work, grid-stride loops for the rest. */
static inline unsigned cu_blocks(long long n, int threads = CU_THREADS) {
    long long b = (n + threads - 1) / threads;
    long long cap = (long long)cuda_sm_count() * 32;
    if (b > cap) b = cap;
    return b < 1 ? 1u : (unsigned)b;
}

#define CU_FOR(i, n)                                                                          \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n);              \
         i += (long long)gridDim.x * blockDim.x)

/* ---- host helpers (cuda_common.cu) -------------------------------------- */

/* The element strides of a contiguous shape. */
void cu_contig_strides(int nd, const int64_t *shape, int64_t *st);
/* Collapses a shape shared by `nops` operands (st[k] are operand k's
 * strides): drops size-1 dims and merges neighbours contiguous in every
 * operand.  Writes the result to L[0..nops-1].  A 0-d shape becomes 1-d of
 * size 1. */
void cu_collapse(int nd, const int64_t *shape, int nops, const int64_t *const *st, cu_layout *L);
/* Numpy-broadcast strides of t for an output shape of nd dims. */
void cu_broadcast_strides(const sp_tensor *t, int nd, const int64_t *shape, int64_t *st);
/* Copies the block `shape` of src (dtype sd, strides ss, from element 0 at
 * sp) to dst (dtype dd, strides ds, at dp), converting with cast's rules;
 * raw bytes when the dtypes agree.  Enqueued on cuda_stream(). */
sp_status cu_copy(int nd, const int64_t *shape, sp_dtype dd, void *dp, const int64_t *ds,
                  sp_dtype sd, const void *sp, const int64_t *ss);
/* Writes `count` copies of the esize-byte pattern at dst. */
sp_status cu_fill_bytes(void *dst, long long count, int esize, const unsigned char *pat);
/* Element pointer helpers. */
static inline char *cu_ptr(const sp_tensor *t, int64_t elem) {
    return (char *)sp_tensor_data(t) + elem * (int64_t)sp_dtype_size(t->dtype);
}
/* Reports a launch error after a kernel launch; name names the op. */
static inline sp_status cu_launched(const char *name) {
    return cuda_check(cudaGetLastError(), name);
}

#endif
