/*
 * internal.h -- what the layers above core share inside the library but do
 * not show to users: half-precision conversion, element load/store by dtype,
 * ref-count atomics, the thread pool's parallel loop and CPU feature checks.
 *
 * float16 and bfloat16 are stored as uint16_t.  Conversions round to
 * nearest-even and keep NaN and infinities, so a value survives a round
 * trip through float32 exactly.
 */
#ifndef SPORE_CORE_INTERNAL_H
#define SPORE_CORE_INTERNAL_H

#include <math.h>
#include <string.h>

#include "spore/core.h"

typedef uint16_t sp_f16;
typedef uint16_t sp_bf16;

static inline float sp_bf16_to_f32(sp_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline sp_bf16 sp_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (sp_bf16)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (sp_bf16)(u >> 16);
}

static inline float sp_f16_to_f32(sp_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else { /* subnormal: renormalize */
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
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline sp_f16 sp_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (sp_f16)(sign | 0x7e00u);             /* NaN */
    if (a >= 0x477ff000u) return (sp_f16)(sign | 0x7c00u);            /* overflow -> inf */
    if (a < 0x38800000u) {                                            /* subnormal or zero */
        if (a < 0x33000000u) return (sp_f16)sign;                     /* rounds to 0 */
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (sp_f16)(sign | r);
    }
    uint32_t r = ((a - 0x38000000u) >> 13);
    uint32_t rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (sp_f16)(sign | r);
}

/* Reads element p of dtype d as a double.  Cannot fail. */
static inline double sp_load_f64(sp_dtype d, const void *p) {
    switch (d) {
    case SP_F32: return *(const float *)p;
    case SP_F64: return *(const double *)p;
    case SP_F16: return sp_f16_to_f32(*(const sp_f16 *)p);
    case SP_BF16: return sp_bf16_to_f32(*(const sp_bf16 *)p);
    case SP_I8: return *(const int8_t *)p;
    case SP_U8: return *(const uint8_t *)p;
    case SP_I32: return *(const int32_t *)p;
    case SP_I64: return (double)*(const int64_t *)p;
    case SP_BOOL: return *(const uint8_t *)p != 0;
    default: return 0;
    }
}

/* Reads element p as int64 (floats truncate; NaN/inf/out of range -> 0... see
 * sp_f64_to_i64).  Cannot fail. */
static inline int64_t sp_f64_to_i64(double v) {
    if (!(v > -9.2233720368547758e18 && v < 9.2233720368547758e18)) return 0; /* NaN, inf, range */
    return (int64_t)v;
}

static inline int64_t sp_load_i64(sp_dtype d, const void *p) {
    switch (d) {
    case SP_I8: return *(const int8_t *)p;
    case SP_U8: return *(const uint8_t *)p;
    case SP_I32: return *(const int32_t *)p;
    case SP_I64: return *(const int64_t *)p;
    case SP_BOOL: return *(const uint8_t *)p != 0;
    default: return sp_f64_to_i64(sp_load_f64(d, p));
    }
}

/* Writes v converted to dtype d at p (numpy astype rules; never UB). */
static inline void sp_store_f64(sp_dtype d, void *p, double v) {
    switch (d) {
    case SP_F32: *(float *)p = (float)v; break;
    case SP_F64: *(double *)p = v; break;
    case SP_F16: *(sp_f16 *)p = sp_f32_to_f16((float)v); break;
    case SP_BF16: *(sp_bf16 *)p = sp_f32_to_bf16((float)v); break;
    case SP_I8: *(int8_t *)p = (int8_t)(uint8_t)(uint64_t)sp_f64_to_i64(v); break;
    case SP_U8: *(uint8_t *)p = (uint8_t)(uint64_t)sp_f64_to_i64(v); break;
    case SP_I32: *(int32_t *)p = (int32_t)(uint32_t)(uint64_t)sp_f64_to_i64(v); break;
    case SP_I64: *(int64_t *)p = sp_f64_to_i64(v); break;
    case SP_BOOL: *(uint8_t *)p = v != 0; break;
    default: break;
    }
}

static inline void sp_store_i64(sp_dtype d, void *p, int64_t v) {
    switch (d) {
    case SP_I8: *(int8_t *)p = (int8_t)(uint8_t)(uint64_t)v; break;
    case SP_U8: *(uint8_t *)p = (uint8_t)(uint64_t)v; break;
    case SP_I32: *(int32_t *)p = (int32_t)(uint32_t)(uint64_t)v; break;
    case SP_I64: *(int64_t *)p = v; break;
    case SP_BOOL: *(uint8_t *)p = v != 0; break;
    default: sp_store_f64(d, p, (double)v); break;
    }
}

/* Python's slice(start, stop, step).indices(n) on int64: returns the number
 * of elements and sets *first to the first index.  start/stop may be
 * SP_SLICE_NONE (omitted); step != 0.  No overflow for any int64 inputs.
 * The tensor core's views, shape inference and every backend's slice
 * kernel use this one definition.  Cannot fail. */
static inline int64_t sp_slice_range(int64_t n, int64_t start, int64_t stop, int64_t step,
                                     int64_t *first) {
    int64_t b, e, count;
    if (step > 0) {
        b = start == SP_SLICE_NONE ? 0 : start < 0 ? start + n : start;
        e = stop == SP_SLICE_NONE ? n : stop < 0 ? stop + n : stop;
        b = b < 0 ? 0 : b > n ? n : b;
        e = e < 0 ? 0 : e > n ? n : e;
        count = e > b ? (int64_t)(((uint64_t)(e - b) - 1) / (uint64_t)step + 1) : 0;
    } else {
        b = start == SP_SLICE_NONE ? n - 1 : start < 0 ? start + n : start;
        e = stop == SP_SLICE_NONE ? -1 : stop < 0 ? stop + n : stop;
        b = b < -1 ? -1 : b > n - 1 ? n - 1 : b;
        e = e < -1 ? -1 : e > n - 1 ? n - 1 : e;
        count = b > e ? (int64_t)(((uint64_t)(b - e) - 1) / (0 - (uint64_t)step) + 1) : 0;
    }
    *first = b;
    return count;
}

/* The error for reading the values of a meta tensor (see SP_DEVICE_META):
 * SP_ERR_VALUE, "<what>: the value of a tensor is not known at compile time
 * (a meta tensor of shape (2, 3) float32)".  Returns SP_ERR_VALUE. */
sp_status sp_meta_value_error(const char *what, const sp_tensor *t);

static inline void sp_ref_inc(int *rc) { __atomic_add_fetch(rc, 1, __ATOMIC_RELAXED); }
/* Returns the count after the decrement. */
static inline int sp_ref_dec(int *rc) { return __atomic_sub_fetch(rc, 1, __ATOMIC_ACQ_REL); }

/* ---- thread pool (threadpool.c) ---- */
typedef void (*sp_range_fn)(void *ctx, int64_t begin, int64_t end);
/* Runs fn over [0, n) split into chunks of at least `grain` iterations on
 * the persistent pool; the calling thread takes part.  Returns when every
 * chunk is done.  Runs inline when n <= grain, with one thread, or when
 * called from inside a pool task (no nested parallelism).  Cannot fail. */
void sp_parallel_for(int64_t n, int64_t grain, sp_range_fn fn, void *ctx);
/* Index of the calling pool thread in [0, sp_get_num_threads()), 0 for the
 * main thread; kernels use it to pick per-thread scratch. */
int sp_thread_index(void);

/* ---- CPU features (cpu_features.c) ---- */
int sp_cpu_has_avx2_fma(void);
int sp_cpu_has_avx512f(void);

#endif
