/*
 * elementwise.cu -- CUDA kernels of the elementwise primitives: the unary
 * math and predicates, clamp, the binary arithmetic, comparisons and logic
 * with numpy broadcasting, where, and cast.
 *
 * One kernel per family and compute type, not per op: the op is a runtime
 * switch, uniform across the grid, so the branch costs nothing next to the
 * memory traffic and the build stays small (every op of a family shares
 * six instantiations: float, double and int64 compute, each with a
 * contiguous and a strided path).  The compute type follows the CPU's
 * choice exactly (binary.c): arithmetic computes in the output dtype
 * (float16/bfloat16 in float32), comparisons in the promoted input dtype,
 * logic on "nonzero", where moves the output dtype's values.  Integers of
 * every width compute in int64 with unsigned wrapping and are wrapped to
 * their width when stored; since the CPU's narrow types wrap the same way
 * (addition, multiplication and negation commute with reduction mod 2^k),
 * the bits agree, and integer division/modulo by zero gives 0 as on the CPU.
 *
 * Float math uses CUDA's libdevice functions (expf, tanhf, erff ...),
 * accurate to a few ulp; the CPU uses its own polynomials, so float32
 * transcendental results may differ from the CPU's in the last bits (the
 * tests compare both to float64 numpy within float32 tolerance).  Exact
 * operations (+ - * /, sqrt, floor, ceil, rint, comparisons, min/max,
 * casts) agree bit for bit.
 *
 * Broadcasting: the host aligns every input to the output shape (stride 0
 * on broadcast dims), then collapses dims shared by all operands, so a
 * plain contiguous op is one dim and takes the contiguous path.  When all
 * operands share one float32/bfloat16/float16 dtype and are 16-byte
 * aligned, vector fast paths (see "fast paths" below) take contiguous,
 * scalar-broadcast and row-broadcast arithmetic, unary math and casts
 * among those three dtypes, bit-identical to the general kernels.
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

#define EW_MAX_OPS 4 /* out + up to 3 inputs */

struct ew_args {
    int op;
    int nin;
    int dt[EW_MAX_OPS];
    char *p[EW_MAX_OPS];
    cu_layout L[EW_MAX_OPS];
    long long n;
    double f0, f1;    /* softplus beta/threshold, clamp bounds */
    long long i0, i1; /* integer clamp bounds */
    int flag;         /* gelu: 1 = tanh form; clamp: has_lo | has_hi << 1 */
};

template <class C> struct ew_is_float { static const bool value = false; };
template <> struct ew_is_float<float> { static const bool value = true; };
template <> struct ew_is_float<double> { static const bool value = true; };

typedef unsigned long long u64;

/* ---- float helpers ---- */

__device__ inline float ew_sigmoid(float x) {
    float e = expf(-fabsf(x));
    return (x >= 0.0f ? 1.0f : e) / (1.0f + e);
}
__device__ inline double ew_sigmoid(double x) {
    double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

template <class C> __device__ inline C ew_divmod(C a, C b, C *modulus) {
    C mod = fmod(a, b);
    if (!b) {
        *modulus = mod;
        return a / b;
    }
    C div = (a - mod) / b;
    if (mod) {
        if ((b < 0) != (mod < 0)) {
            mod += b;
            div -= 1;
        }
    } else {
        mod = copysign((C)0, b);
    }
    C floordiv;
    if (div) {
        floordiv = floor(div);
        if (div - floordiv > (C)0.5) floordiv += 1;
    } else {
        floordiv = copysign((C)0, a / b);
    }
    *modulus = mod;
    return floordiv;
}

/* ---- integer helpers (values of any width held in int64) ---- */

__device__ inline long long ew_ifloordiv(long long a, long long b) {
    if (b == 0) return 0;
    if (b == -1) return (long long)(0ull - (u64)a);
    long long q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) q--;
    return q;
}

__device__ inline long long ew_imod(long long a, long long b) {
    if (b == 0 || b == -1) return 0;
    long long r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}

__device__ inline long long ew_ipow(long long a, long long b) {
    if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
    u64 r = 1, x = (u64)a, e = (u64)b;
    while (e) {
        if (e & 1u) r *= x;
        x *= x;
        e >>= 1;
    }
    return (long long)r;
}

/* ---- unary ---- */

template <class C> __device__ inline C ew_unary_op(const ew_args &A, C x) {
    if constexpr (ew_is_float<C>::value) {
        switch (A.op) {
        case SP_OP_NEG: return -x;
        case SP_OP_ABS: return fabs(x);
        case SP_OP_SIGN: return x > 0 ? (C)1 : (x < 0 ? (C)-1 : x);
        case SP_OP_SQUARE: return x * x;
        case SP_OP_RELU: return x < 0 ? (C)0 : x;
        case SP_OP_EXP: return exp(x);
        case SP_OP_LOG: return log(x);
        case SP_OP_LOG1P: return log1p(x);
        case SP_OP_EXPM1: return expm1(x);
        case SP_OP_SQRT: return sqrt(x);
        case SP_OP_RSQRT: return (C)1 / sqrt(x);
        case SP_OP_RECIPROCAL: return (C)1 / x;
        case SP_OP_SIN: return sin(x);
        case SP_OP_COS: return cos(x);
        case SP_OP_TANH: return tanh(x);
        case SP_OP_SIGMOID: return ew_sigmoid(x);
        case SP_OP_SILU: return x * ew_sigmoid(x);
        case SP_OP_GELU:
            if (A.flag) {
                C u = (C)0.79788456080286535588 * (x + (C)0.044715 * x * x * x);
                return x * ew_sigmoid((C)2 * u);
            }
            return x * (C)0.5 * erfc(-x * (C)0.70710678118654752440);
        case SP_OP_SOFTPLUS: {
            C beta = (C)A.f0, thr = (C)A.f1;
            return beta * x > thr ? x : log1p(exp(beta * x)) / beta;
        }
        case SP_OP_ERF: return erf(x);
        case SP_OP_FLOOR: return floor(x);
        case SP_OP_CEIL: return ceil(x);
        case SP_OP_ROUND: return rint(x);
        case SP_OP_CLAMP: {
            C lo = (A.flag & 1) ? (C)A.f0 : (C)-INFINITY, hi = (A.flag & 2) ? (C)A.f1 : (C)INFINITY;
            C t = x < lo ? lo : x;
            return t > hi ? hi : t;
        }
        default: return x;
        }
    } else {
        switch (A.op) {
        case SP_OP_NEG: return (long long)(0ull - (u64)x);
        case SP_OP_ABS: return x < 0 ? (long long)(0ull - (u64)x) : x;
        case SP_OP_SIGN: return (x > 0) - (x < 0);
        case SP_OP_SQUARE: return (long long)((u64)x * (u64)x);
        case SP_OP_RELU: return x < 0 ? 0 : x;
        case SP_OP_CLAMP: {
            long long t = x < A.i0 ? A.i0 : x;
            return t > A.i1 ? A.i1 : t;
        }
        default: return x;
        }
    }
}

template <class C> __device__ inline bool ew_pred(int op, C x) {
    if constexpr (ew_is_float<C>::value) {
        switch (op) {
        case SP_OP_ISNAN: return x != x;
        case SP_OP_ISFINITE: return x - x == 0;
        default: return x == 0; /* logical_not */
        }
    } else {
        switch (op) {
        case SP_OP_ISNAN: return false;
        case SP_OP_ISFINITE: return true;
        default: return x == 0;
        }
    }
}

/* The contiguous paths take EW_UNROLL elements per thread and iteration,
 * a grid-stride apart (each load instruction stays coalesced), with every
 * load issued before any store: more bytes in flight per thread is what
 * keeps HBM busy. */
#define EW_UNROLL 4

template <class C, bool CONTIG> __global__ void ew_unary_kernel(ew_args A) {
    bool pred = A.op == SP_OP_ISNAN || A.op == SP_OP_ISFINITE || A.op == SP_OP_LOGICAL_NOT;
    if constexpr (CONTIG) {
        long long S = (long long)gridDim.x * blockDim.x;
        for (long long i0 = (long long)blockIdx.x * blockDim.x + threadIdx.x; i0 < A.n;
             i0 += EW_UNROLL * S) {
            C x[EW_UNROLL];
#pragma unroll
            for (int j = 0; j < EW_UNROLL; j++)
                if (i0 + j * S < A.n) x[j] = cu_load<C>(A.dt[1], A.p[1], i0 + j * S);
#pragma unroll
            for (int j = 0; j < EW_UNROLL; j++) {
                if (i0 + j * S >= A.n) break;
                if (pred)
                    cu_store(A.dt[0], A.p[0], i0 + j * S, ew_pred<C>(A.op, x[j]));
                else
                    cu_store(A.dt[0], A.p[0], i0 + j * S, ew_unary_op<C>(A, x[j]));
            }
        }
    } else {
        CU_FOR(i, A.n) {
            long long oo = cu_offset(A.L[0], i), xo = cu_offset(A.L[1], i);
            C x = cu_load<C>(A.dt[1], A.p[1], xo);
            if (pred)
                cu_store(A.dt[0], A.p[0], oo, ew_pred<C>(A.op, x));
            else
                cu_store(A.dt[0], A.p[0], oo, ew_unary_op<C>(A, x));
        }
    }
}

/* ---- binary ---- */

template <class C> __device__ inline C ew_arith(int op, C a, C b) {
    if constexpr (ew_is_float<C>::value) {
        C m;
        switch (op) {
        case SP_OP_ADD: return a + b;
        case SP_OP_SUB: return a - b;
        case SP_OP_MUL: return a * b;
        case SP_OP_DIV: return a / b;
        case SP_OP_POW: return pow(a, b);
        case SP_OP_MAXIMUM: return (a > b || a != a) ? a : b;
        case SP_OP_MINIMUM: return (a < b || a != a) ? a : b;
        case SP_OP_FLOOR_DIV: return ew_divmod<C>(a, b, &m);
        case SP_OP_MOD:
            if (!b) return fmod(a, b);
            ew_divmod<C>(a, b, &m);
            return m;
        case SP_OP_ATAN2: return atan2(a, b);
        default: return a;
        }
    } else {
        switch (op) {
        case SP_OP_ADD: return (long long)((u64)a + (u64)b);
        case SP_OP_SUB: return (long long)((u64)a - (u64)b);
        case SP_OP_MUL: return (long long)((u64)a * (u64)b);
        case SP_OP_POW: return ew_ipow(a, b);
        case SP_OP_MAXIMUM: return a > b ? a : b;
        case SP_OP_MINIMUM: return a < b ? a : b;
        case SP_OP_FLOOR_DIV: return ew_ifloordiv(a, b);
        case SP_OP_MOD: return ew_imod(a, b);
        default: return a;
        }
    }
}

template <class C> __device__ inline bool ew_cmp(int op, C a, C b) {
    switch (op) {
    case SP_OP_EQUAL: return a == b;
    case SP_OP_NOT_EQUAL: return a != b;
    case SP_OP_LESS: return a < b;
    case SP_OP_LESS_EQUAL: return a <= b;
    case SP_OP_GREATER: return a > b;
    default: return a >= b;
    }
}

/* kind: 0 arithmetic, 1 comparison, 2 logic */
template <class C, bool CONTIG> __global__ void ew_binary_kernel(ew_args A, int kind) {
    if (CONTIG && kind != 2) {
        long long S = (long long)gridDim.x * blockDim.x;
        for (long long i0 = (long long)blockIdx.x * blockDim.x + threadIdx.x; i0 < A.n;
             i0 += EW_UNROLL * S) {
            C a[EW_UNROLL], b[EW_UNROLL];
#pragma unroll
            for (int j = 0; j < EW_UNROLL; j++)
                if (i0 + j * S < A.n) {
                    a[j] = cu_load<C>(A.dt[1], A.p[1], i0 + j * S);
                    b[j] = cu_load<C>(A.dt[2], A.p[2], i0 + j * S);
                }
#pragma unroll
            for (int j = 0; j < EW_UNROLL; j++) {
                if (i0 + j * S >= A.n) break;
                if (kind == 1)
                    cu_store(A.dt[0], A.p[0], i0 + j * S, ew_cmp<C>(A.op, a[j], b[j]));
                else
                    cu_store(A.dt[0], A.p[0], i0 + j * S, ew_arith<C>(A.op, a[j], b[j]));
            }
        }
        return;
    }
    CU_FOR(i, A.n) {
        long long oo = CONTIG ? i : cu_offset(A.L[0], i);
        long long ao = CONTIG ? i : cu_offset(A.L[1], i);
        long long bo = CONTIG ? i : cu_offset(A.L[2], i);
        if (kind == 2) {
            bool a = cu_load_bool(A.dt[1], A.p[1], ao), b = cu_load_bool(A.dt[2], A.p[2], bo);
            cu_store(A.dt[0], A.p[0], oo, A.op == SP_OP_LOGICAL_AND ? (a && b) : (a || b));
            continue;
        }
        C a = cu_load<C>(A.dt[1], A.p[1], ao), b = cu_load<C>(A.dt[2], A.p[2], bo);
        if (kind == 1)
            cu_store(A.dt[0], A.p[0], oo, ew_cmp<C>(A.op, a, b));
        else
            cu_store(A.dt[0], A.p[0], oo, ew_arith<C>(A.op, a, b));
    }
}

/* ---- where ---- */

template <class C, bool CONTIG> __global__ void ew_where_kernel(ew_args A) {
    CU_FOR(i, A.n) {
        long long oo = CONTIG ? i : cu_offset(A.L[0], i);
        long long co = CONTIG ? i : cu_offset(A.L[1], i);
        bool c = cu_load_bool(A.dt[1], A.p[1], co);
        int k = c ? 2 : 3;
        long long xo = CONTIG ? i : cu_offset(A.L[k], i);
        if (A.dt[k] == A.dt[0]) { /* raw bits, as the CPU */
            switch (A.dt[0]) {
            case SP_F64:
            case SP_I64: ((u64 *)A.p[0])[oo] = ((const u64 *)A.p[k])[xo]; break;
            case SP_F32:
            case SP_I32: ((uint32_t *)A.p[0])[oo] = ((const uint32_t *)A.p[k])[xo]; break;
            case SP_F16:
            case SP_BF16: ((uint16_t *)A.p[0])[oo] = ((const uint16_t *)A.p[k])[xo]; break;
            default: ((uint8_t *)A.p[0])[oo] = ((const uint8_t *)A.p[k])[xo]; break;
            }
        } else {
            cu_store(A.dt[0], A.p[0], oo, cu_load<C>(A.dt[k], A.p[k], xo));
        }
    }
}

/* ---- fast paths: float32/bfloat16/float16, all operands one dtype ----
 *
 * The general kernels above read and write one element at a time through
 * the dtype switch.  When every operand has the same float dtype, is
 * contiguous (or, for the second binary operand, a scalar or one row
 * repeated over the rows) and 16-byte aligned, these kernels move eight
 * elements per thread and step with 16-byte loads and stores (two for
 * float32, one for the halves), computing exactly as the general path
 * (float32 math, the same rounding on store), so results are bit-identical
 * to it.  The tail past the last whole vector takes the scalar loop. */

#define EW_V 8

template <int DT> __device__ inline void ew_vload(const void *p, long long v, float x[EW_V]) {
    if constexpr (DT == SP_F32) {
        const float4 *q = (const float4 *)p + 2 * v;
        float4 a = q[0], b = q[1];
        x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w;
        x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
    } else {
        uint4 a = ((const uint4 *)p)[v];
        uint32_t w[4] = {a.x, a.y, a.z, a.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            uint16_t lo = (uint16_t)(w[j] & 0xffffu), hi = (uint16_t)(w[j] >> 16);
            x[2 * j] = DT == SP_BF16 ? cu_bf16_to_f32(lo) : cu_f16_to_f32(lo);
            x[2 * j + 1] = DT == SP_BF16 ? cu_bf16_to_f32(hi) : cu_f16_to_f32(hi);
        }
    }
}

template <int DT> __device__ inline void ew_vstore(void *p, long long v, const float x[EW_V]) {
    if constexpr (DT == SP_F32) {
        float4 *q = (float4 *)p + 2 * v;
        q[0] = make_float4(x[0], x[1], x[2], x[3]);
        q[1] = make_float4(x[4], x[5], x[6], x[7]);
    } else {
        uint32_t w[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            uint32_t lo = DT == SP_BF16 ? cu_f32_to_bf16(x[2 * j]) : cu_f32_to_f16(x[2 * j]);
            uint32_t hi =
                DT == SP_BF16 ? cu_f32_to_bf16(x[2 * j + 1]) : cu_f32_to_f16(x[2 * j + 1]);
            w[j] = lo | (hi << 16);
        }
        ((uint4 *)p)[v] = make_uint4(w[0], w[1], w[2], w[3]);
    }
}

template <int DT> __global__ void ew_unary_vec_kernel(ew_args A) {
    long long nv = A.n / EW_V;
    CU_FOR(v, nv) {
        float x[EW_V];
        ew_vload<DT>(A.p[1], v, x);
#pragma unroll
        for (int j = 0; j < EW_V; j++) x[j] = ew_unary_op<float>(A, x[j]);
        ew_vstore<DT>(A.p[0], v, x);
    }
    CU_FOR(i, A.n - nv * EW_V) {
        long long k = nv * EW_V + i;
        cu_store(A.dt[0], A.p[0], k, ew_unary_op<float>(A, cu_load<float>(A.dt[1], A.p[1], k)));
    }
}

/* BM: how b is indexed: 0 contiguous, 1 one scalar, 2 a row of A.i0
 * elements (a multiple of EW_V) repeated. */
template <int DT, int BM> __global__ void ew_binary_vec_kernel(ew_args A) {
    long long nv = A.n / EW_V;
    CU_FOR(v, nv) {
        float a[EW_V], b[EW_V];
        ew_vload<DT>(A.p[1], v, a);
        if constexpr (BM == 0) {
            ew_vload<DT>(A.p[2], v, b);
        } else if constexpr (BM == 1) {
            float s = cu_load<float>(DT, A.p[2], 0);
#pragma unroll
            for (int j = 0; j < EW_V; j++) b[j] = s;
        } else {
            ew_vload<DT>(A.p[2], v % (A.i0 / EW_V), b);
        }
#pragma unroll
        for (int j = 0; j < EW_V; j++) a[j] = ew_arith<float>(A.op, a[j], b[j]);
        ew_vstore<DT>(A.p[0], v, a);
    }
    CU_FOR(i, A.n - nv * EW_V) {
        long long k = nv * EW_V + i;
        long long bo = BM == 0 ? k : BM == 1 ? 0 : k % A.i0;
        float r = ew_arith<float>(A.op, cu_load<float>(DT, A.p[1], k), cu_load<float>(DT, A.p[2], bo));
        cu_store(DT, A.p[0], k, r);
    }
}

static bool ew_vec_dtype(sp_dtype d) { return d == SP_F32 || d == SP_BF16 || d == SP_F16; }
static bool ew_aligned(const void *p) { return ((uintptr_t)p & 15u) == 0; }
static unsigned ew_vec_blocks(long long n) { return cu_blocks((n + EW_V - 1) / EW_V); }

/* Launches the vector unary kernel when it applies; false otherwise. */
static bool ew_unary_fast(const ew_args *A, bool contig) {
    int d = A->dt[0];
    if (!contig || d != A->dt[1] || !ew_vec_dtype((sp_dtype)d)) return false;
    if (!ew_aligned(A->p[0]) || !ew_aligned(A->p[1])) return false;
    if (A->op == SP_OP_ISNAN || A->op == SP_OP_ISFINITE || A->op == SP_OP_LOGICAL_NOT) return false;
    unsigned g = ew_vec_blocks(A->n);
    cudaStream_t s = cuda_stream();
    if (d == SP_F32)
        ew_unary_vec_kernel<SP_F32><<<g, CU_THREADS, 0, s>>>(*A);
    else if (d == SP_BF16)
        ew_unary_vec_kernel<SP_BF16><<<g, CU_THREADS, 0, s>>>(*A);
    else
        ew_unary_vec_kernel<SP_F16><<<g, CU_THREADS, 0, s>>>(*A);
    return true;
}

template <int BM> static void ew_binary_vec_launch(int d, ew_args *A) {
    unsigned g = ew_vec_blocks(A->n);
    cudaStream_t s = cuda_stream();
    if (d == SP_F32)
        ew_binary_vec_kernel<SP_F32, BM><<<g, CU_THREADS, 0, s>>>(*A);
    else if (d == SP_BF16)
        ew_binary_vec_kernel<SP_BF16, BM><<<g, CU_THREADS, 0, s>>>(*A);
    else
        ew_binary_vec_kernel<SP_F16, BM><<<g, CU_THREADS, 0, s>>>(*A);
}

/* Arithmetic (kind 0) with out, a and b of one float dtype, out and a
 * contiguous, b contiguous, a scalar or a repeated row. */
static bool ew_binary_fast(ew_args *A, int kind) {
    int d = A->dt[0];
    if (kind != 0 || d != A->dt[1] || d != A->dt[2] || !ew_vec_dtype((sp_dtype)d)) return false;
    if (!ew_aligned(A->p[0]) || !ew_aligned(A->p[1]) || !ew_aligned(A->p[2])) return false;
    const cu_layout *L = A->L;
    int nd = L[0].nd;
    if (nd == 1 && L[0].st[0] == 1 && L[1].st[0] == 1 && (L[2].st[0] == 1 || L[2].st[0] == 0)) {
        if (L[2].st[0] == 1)
            ew_binary_vec_launch<0>(d, A);
        else
            ew_binary_vec_launch<1>(d, A);
        return true;
    }
    if (nd == 2 && L[0].st[1] == 1 && L[0].st[0] == L[0].shape[1] && L[1].st[1] == 1 &&
        L[1].st[0] == L[0].shape[1] && L[2].st[0] == 0 && L[2].st[1] == 1 &&
        L[0].shape[1] % EW_V == 0) {
        A->i0 = L[0].shape[1];
        ew_binary_vec_launch<2>(d, A);
        return true;
    }
    return false;
}

/* cast between float32, bfloat16 and float16, both contiguous: eight
 * elements per step, cast's rules (via float32, exact for these). */
template <int SD, int DD> __global__ void ew_cast_vec_kernel(const void *x, void *y, long long n) {
    long long nv = n / EW_V;
    CU_FOR(v, nv) {
        float t[EW_V];
        ew_vload<SD>(x, v, t);
        ew_vstore<DD>(y, v, t);
    }
    CU_FOR(i, n - nv * EW_V) {
        long long k = nv * EW_V + i;
        cu_store(DD, y, k, cu_load<float>(SD, x, k));
    }
}

template <int SD> static void ew_cast_vec_launch(int dd, const void *x, void *y, long long n) {
    unsigned g = ew_vec_blocks(n);
    cudaStream_t s = cuda_stream();
    if (dd == SP_F32)
        ew_cast_vec_kernel<SD, SP_F32><<<g, CU_THREADS, 0, s>>>(x, y, n);
    else if (dd == SP_BF16)
        ew_cast_vec_kernel<SD, SP_BF16><<<g, CU_THREADS, 0, s>>>(x, y, n);
    else
        ew_cast_vec_kernel<SD, SP_F16><<<g, CU_THREADS, 0, s>>>(x, y, n);
}

static bool ew_cast_fast(const sp_tensor *x, const sp_tensor *y) {
    if (x->dtype == y->dtype || !ew_vec_dtype(x->dtype) || !ew_vec_dtype(y->dtype)) return false;
    const void *xp = sp_tensor_data(x);
    void *yp = sp_tensor_data(y);
    if (!ew_aligned(xp) || !ew_aligned(yp)) return false;
    int64_t cs[SP_MAX_DIMS];
    cu_contig_strides(x->ndim, x->shape, cs);
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] != 1 && x->strides[i] != cs[i]) return false;
    long long n = sp_tensor_numel(x);
    if (n == 0) return false;
    if (x->dtype == SP_F32)
        ew_cast_vec_launch<SP_F32>(y->dtype, xp, yp, n);
    else if (x->dtype == SP_BF16)
        ew_cast_vec_launch<SP_BF16>(y->dtype, xp, yp, n);
    else
        ew_cast_vec_launch<SP_F16>(y->dtype, xp, yp, n);
    return true;
}

/* ---- host side ---- */

enum { EW_F, EW_D, EW_I };

/* The canonical compute type of a dtype: F for float32/float16/bfloat16. */
static int ew_ctype(sp_dtype d) {
    if (d == SP_F64) return EW_D;
    if (sp_dtype_is_float(d)) return EW_F;
    return EW_I;
}

/* Fills A's operands from the kernel args (out, then the inputs) and
 * collapses the dims.  Returns whether the contiguous path applies. */
static bool ew_prepare(const sp_kernel_args *a, int nin, ew_args *A) {
    sp_tensor *y = a->out[0];
    int nd = y->ndim;
    int64_t st[EW_MAX_OPS][SP_MAX_DIMS];
    const int64_t *sp[EW_MAX_OPS];
    cu_contig_strides(nd, y->shape, st[0]);
    for (int k = 0; k < nin; k++) cu_broadcast_strides(a->in[k], nd, y->shape, st[k + 1]);
    for (int k = 0; k <= nin; k++) sp[k] = st[k];
    cu_collapse(nd, y->shape, nin + 1, sp, A->L);
    A->nin = nin;
    A->n = sp_tensor_numel(y);
    A->dt[0] = y->dtype;
    A->p[0] = (char *)sp_tensor_data(y);
    for (int k = 0; k < nin; k++) {
        A->dt[k + 1] = a->in[k]->dtype;
        A->p[k + 1] = (char *)sp_tensor_data(a->in[k]);
    }
    bool contig = A->L[0].nd == 1;
    for (int k = 0; k <= nin && contig; k++) contig = A->L[k].st[0] == 1;
    return contig;
}

#define EW_LAUNCH(KERNEL, CT, CONTIG, ...)                                                     \
    do {                                                                                       \
        unsigned g_ = cu_blocks(A_N);                                                          \
        cudaStream_t s_ = cuda_stream();                                                       \
        if (CT == EW_F)                                                                        \
            CONTIG ? KERNEL<float, true><<<g_, CU_THREADS, 0, s_>>>(__VA_ARGS__)               \
                   : KERNEL<float, false><<<g_, CU_THREADS, 0, s_>>>(__VA_ARGS__);             \
        else if (CT == EW_D)                                                                   \
            CONTIG ? KERNEL<double, true><<<g_, CU_THREADS, 0, s_>>>(__VA_ARGS__)              \
                   : KERNEL<double, false><<<g_, CU_THREADS, 0, s_>>>(__VA_ARGS__);            \
        else                                                                                   \
            CONTIG ? KERNEL<long long, true><<<g_, CU_THREADS, 0, s_>>>(__VA_ARGS__)           \
                   : KERNEL<long long, false><<<g_, CU_THREADS, 0, s_>>>(__VA_ARGS__);         \
    } while (0)

static sp_status ew_unary_run(const sp_kernel_args *a, int op, ew_args *A) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "%s: kernel called with %d inputs", sp_op_name(op),
                        a->n_in);
    bool contig = ew_prepare(a, 1, A);
    A->op = op;
    if (A->n == 0) return SP_OK;
    if (ew_unary_fast(A, contig)) return cu_launched(sp_op_name(op));
    int ct = ew_ctype(a->in[0]->dtype);
    long long A_N = A->n;
    EW_LAUNCH(ew_unary_kernel, ct, contig, *A);
    return cu_launched(sp_op_name(op));
}

#define EW_UNARY(name, ID)                                                                     \
    sp_status cuda_##name(const sp_kernel_args *a) {                                           \
        ew_args A;                                                                             \
        memset(&A, 0, sizeof A);                                                               \
        return ew_unary_run(a, SP_OP_##ID, &A);                                                \
    }

EW_UNARY(neg, NEG)
EW_UNARY(abs, ABS)
EW_UNARY(sign, SIGN)
EW_UNARY(exp, EXP)
EW_UNARY(log, LOG)
EW_UNARY(log1p, LOG1P)
EW_UNARY(expm1, EXPM1)
EW_UNARY(sqrt, SQRT)
EW_UNARY(rsqrt, RSQRT)
EW_UNARY(square, SQUARE)
EW_UNARY(reciprocal, RECIPROCAL)
EW_UNARY(sin, SIN)
EW_UNARY(cos, COS)
EW_UNARY(tanh, TANH)
EW_UNARY(sigmoid, SIGMOID)
EW_UNARY(relu, RELU)
EW_UNARY(silu, SILU)
EW_UNARY(erf, ERF)
EW_UNARY(floor, FLOOR)
EW_UNARY(ceil, CEIL)
EW_UNARY(round, ROUND)
EW_UNARY(logical_not, LOGICAL_NOT)
EW_UNARY(isnan, ISNAN)
EW_UNARY(isfinite, ISFINITE)

sp_status cuda_gelu(const sp_kernel_args *a) {
    ew_args A;
    memset(&A, 0, sizeof A);
    const char *mode = sp_attrs_get_str(a->attrs, "approximate", "none");
    if (strcmp(mode, "tanh") == 0)
        A.flag = 1;
    else if (strcmp(mode, "none") != 0)
        return sp_error(SP_ERR_ARG, "gelu: approximate must be \"none\" or \"tanh\", got \"%s\"",
                        mode);
    return ew_unary_run(a, SP_OP_GELU, &A);
}

sp_status cuda_softplus(const sp_kernel_args *a) {
    ew_args A;
    memset(&A, 0, sizeof A);
    A.f0 = sp_attrs_get_float(a->attrs, "beta", 1.0);
    A.f1 = sp_attrs_get_float(a->attrs, "threshold", 20.0);
    return ew_unary_run(a, SP_OP_SOFTPLUS, &A);
}

/* An integer clamp bound: the float bound saturated to the dtype's range,
 * then truncated (as the CPU). */
static long long ew_clamp_int_bound(int has, double v, long long tmin, long long tmax,
                                    long long dflt) {
    if (!has || v != v) return dflt;
    if (v <= (double)tmin) return tmin;
    if (v >= (double)tmax) return tmax;
    return (long long)v;
}

sp_status cuda_clamp(const sp_kernel_args *a) {
    ew_args A;
    memset(&A, 0, sizeof A);
    int has_lo = sp_attrs_find(a->attrs, "min") != NULL;
    int has_hi = sp_attrs_find(a->attrs, "max") != NULL;
    A.f0 = sp_attrs_get_float(a->attrs, "min", 0.0);
    A.f1 = sp_attrs_get_float(a->attrs, "max", 0.0);
    A.flag = has_lo | (has_hi << 1);
    long long tmin = INT64_MIN, tmax = INT64_MAX;
    switch (a->in[0]->dtype) {
    case SP_I8: tmin = INT8_MIN, tmax = INT8_MAX; break;
    case SP_U8: tmin = 0, tmax = UINT8_MAX; break;
    case SP_I32: tmin = INT32_MIN, tmax = INT32_MAX; break;
    default: break;
    }
    A.i0 = ew_clamp_int_bound(has_lo, A.f0, tmin, tmax, tmin);
    A.i1 = ew_clamp_int_bound(has_hi, A.f1, tmin, tmax, tmax);
    return ew_unary_run(a, SP_OP_CLAMP, &A);
}

/* kind 0: compute in the output dtype; 1: in the promoted inputs' dtype;
 * 2: logic. */
static sp_status ew_binary_run(const sp_kernel_args *a, int op, int kind) {
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "%s: kernel called with %d inputs", sp_op_name(op),
                        a->n_in);
    ew_args A;
    memset(&A, 0, sizeof A);
    bool contig = ew_prepare(a, 2, &A);
    A.op = op;
    if (A.n == 0) return SP_OK;
    sp_dtype cd = kind == 0 ? a->out[0]->dtype
                            : sp_dtype_promote(a->in[0]->dtype, a->in[1]->dtype);
    if (ew_binary_fast(&A, kind)) return cu_launched(sp_op_name(op));
    int ct = ew_ctype(cd);
    long long A_N = A.n;
    EW_LAUNCH(ew_binary_kernel, ct, contig, A, kind);
    return cu_launched(sp_op_name(op));
}

#define EW_BINARY(name, ID, kind)                                                              \
    sp_status cuda_##name(const sp_kernel_args *a) { return ew_binary_run(a, SP_OP_##ID, kind); }

EW_BINARY(add, ADD, 0)
EW_BINARY(sub, SUB, 0)
EW_BINARY(mul, MUL, 0)
EW_BINARY(div, DIV, 0)
EW_BINARY(pow, POW, 0)
EW_BINARY(maximum, MAXIMUM, 0)
EW_BINARY(minimum, MINIMUM, 0)
EW_BINARY(floor_div, FLOOR_DIV, 0)
EW_BINARY(mod, MOD, 0)
EW_BINARY(atan2, ATAN2, 0)
EW_BINARY(equal, EQUAL, 1)
EW_BINARY(not_equal, NOT_EQUAL, 1)
EW_BINARY(less, LESS, 1)
EW_BINARY(less_equal, LESS_EQUAL, 1)
EW_BINARY(greater, GREATER, 1)
EW_BINARY(greater_equal, GREATER_EQUAL, 1)
EW_BINARY(logical_and, LOGICAL_AND, 2)
EW_BINARY(logical_or, LOGICAL_OR, 2)

sp_status cuda_where(const sp_kernel_args *a) {
    if (a->n_in != 3 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "where: kernel called with %d inputs", a->n_in);
    ew_args A;
    memset(&A, 0, sizeof A);
    bool contig = ew_prepare(a, 3, &A);
    A.op = SP_OP_WHERE;
    if (A.n == 0) return SP_OK;
    int ct = ew_ctype(a->out[0]->dtype);
    long long A_N = A.n;
    EW_LAUNCH(ew_where_kernel, ct, contig, A);
    return cu_launched("where");
}

/* cast: a converting copy of x into the contiguous output. */
sp_status cuda_cast(const sp_kernel_args *a) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "cast: kernel called with %d inputs", a->n_in);
    sp_tensor *x = a->in[0], *y = a->out[0];
    if (ew_cast_fast(x, y)) return cu_launched("cast");
    int64_t ds[SP_MAX_DIMS];
    cu_contig_strides(y->ndim, y->shape, ds);
    return cu_copy(x->ndim, x->shape, y->dtype, sp_tensor_data(y), ds, x->dtype,
                   sp_tensor_data(x), x->strides);
}
