/*
 * reduce.cu -- CUDA reductions: sum, mean, max, min, prod, logsumexp,
 * argmax, argmin over any set of axes, and cumsum along one.
 *
 * As on the CPU (reduce.c), the input's dims split into KEPT dims (the
 * output's, in order) and REDUCED dims (the "R-space" of N elements folded
 * into each of the M outputs); each set is collapsed separately, which
 * keeps C order, so an R-space index is the numpy index argmax reports.
 * Accumulators are the CPU's: floats in double (float32, float16, bfloat16
 * too; rounded once at the end), integers and bool wrapping in int64,
 * max/min propagating NaN, argmax/argmin ordered by (NaN first, value,
 * lower index) so the order of combination never changes the answer.
 *
 * Two shapes of work:
 *   THREAD  one thread folds one output (or one chunk of its R-space)
 *           serially: small N, or a "column" reduction whose consecutive
 *           outputs are consecutive in memory (sum over axis 0), where
 *           neighbouring threads read neighbouring addresses;
 *   BLOCK   a block folds one output (or one chunk of its R-space when M is
 *           small and N large, the partials combined in chunk order by a
 *           second kernel), threads striding over R and a fixed tree in
 *           shared memory combining them.
 * Chunks (for both shapes) keep the GPU busy when there are few outputs:
 * their partial results are combined in chunk order by a second kernel.
 * Float sum/mean/max/min over one collapsed R dim take vectorized, warp-
 * shuffle fast paths of the same two shapes (see "fast paths" below); over
 * several R dims whose innermost is contiguous (bias gradients: sum over
 * (0, 2, 3) of NCHW) a third, the run kernel, with enough chunks to fill
 * the GPU and the same fixed-order combine.
 * The split depends only on the shapes, so results are deterministic; the
 * order of float additions differs from the CPU's, which with double
 * accumulators shows only in float64 results' last bits.
 *
 * logsumexp is max-shifted as on the CPU: a max pass into a scratch vector,
 * then sum(exp(x - max)); an all -inf row gives -inf, a +inf gives +inf.
 * Empty reductions: sum 0, prod 1, mean NaN, logsumexp -inf; max/min/argmax/
 * argmin refuse.  cumsum scans each line serially in one thread (lines in
 * parallel; neighbouring lines are neighbours in memory unless the axis is
 * the last).
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

enum { R_SUM, R_PROD, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_LSE };
enum { F_PLAIN, F_MEAN, F_ARG, F_LSE, F_SHIFT };

struct racc {
    double d;
    long long i;
    long long arg;
};

struct red_args {
    int op, fin, isf;
    int xdt, odt;
    const char *x;
    char *y;
    cu_layout K, R;
    long long M, N;
    const double *shift; /* logsumexp: the max of each output */
    double *dsink;       /* F_SHIFT: where the max goes */
    long long chunk;     /* R-space elements per chunk (BLOCK with chunks) */
    int nchunks;
    racc *partial;       /* [M][nchunks] when nchunks > 1 */
};

typedef unsigned long long u64;

__device__ inline void acc_init(int op, racc &a) {
    a.arg = -1;
    switch (op) {
    case R_PROD: a.d = 1, a.i = 1; break;
    case R_MAX: a.d = -INFINITY, a.i = INT64_MIN; break;
    case R_MIN: a.d = INFINITY, a.i = INT64_MAX; break;
    default: a.d = 0, a.i = 0; break;
    }
}

/* argmax/argmin order of (v, i) against (w, j): NaN first, then the
 * larger (smaller) value, then the lower index. */
__device__ inline bool better_f(bool max, double v, long long i, double w, long long j) {
    if (w != w) return v != v && i < j;
    if (v != v) return true;
    if (v == w) return i < j;
    return max ? v > w : v < w;
}

__device__ inline bool better_i(bool max, long long v, long long i, long long w, long long j) {
    if (v == w) return i < j;
    return max ? v > w : v < w;
}

/* a = a (+) b; for arg ops the order of a and b does not matter. */
__device__ inline void acc_merge(const red_args &A, racc &a, const racc &b) {
    switch (A.op) {
    case R_SUM:
    case R_LSE:
        a.d += b.d;
        a.i = (long long)((u64)a.i + (u64)b.i);
        break;
    case R_PROD:
        a.d *= b.d;
        a.i = (long long)((u64)a.i * (u64)b.i);
        break;
    case R_MAX:
        a.d = (b.d > a.d || b.d != b.d) && a.d == a.d ? b.d : a.d;
        a.i = b.i > a.i ? b.i : a.i;
        break;
    case R_MIN:
        a.d = (b.d < a.d || b.d != b.d) && a.d == a.d ? b.d : a.d;
        a.i = b.i < a.i ? b.i : a.i;
        break;
    default: {
        bool max = A.op == R_ARGMAX;
        if (b.arg < 0) break;
        if (a.arg < 0 || (A.isf ? better_f(max, b.d, b.arg, a.d, a.arg)
                                : better_i(max, b.i, b.arg, a.i, a.arg)))
            a = b;
    }
    }
}

/* Folds element r (R-space index) at input offset off into a. */
__device__ inline void acc_add(const red_args &A, racc &a, long long off, long long r,
                               double shift) {
    racc b;
    if (A.isf) {
        b.d = cu_load<double>(A.xdt, A.x, off);
        if (A.op == R_LSE) b.d = exp(b.d - shift);
        b.i = 0;
    } else {
        b.i = cu_load<long long>(A.xdt, A.x, off);
        b.d = 0;
    }
    b.arg = r;
    if (A.op == R_SUM || A.op == R_LSE) {
        a.d += b.d;
        a.i = (long long)((u64)a.i + (u64)b.i);
    } else if (A.op == R_PROD) {
        a.d *= b.d;
        a.i = (long long)((u64)a.i * (u64)b.i);
    } else {
        acc_merge(A, a, b);
    }
}

__device__ inline void acc_finish(const red_args &A, long long o, const racc &a) {
    switch (A.fin) {
    case F_PLAIN:
        if (A.isf)
            cu_store_f64_plain(A.odt, A.y, o, a.d);
        else
            cu_store(A.odt, A.y, o, a.i);
        break;
    case F_MEAN:
        cu_store_f64_plain(A.odt, A.y, o, (A.isf ? a.d : (double)a.i) / (double)A.N);
        break;
    case F_ARG: ((long long *)A.y)[o] = a.arg; break;
    case F_LSE: {
        double m = A.N == 0 ? -INFINITY : A.shift[o];
        cu_store_f64_plain(A.odt, A.y, o, isfinite(m) ? m + log(a.d) : m);
        break;
    }
    default: A.dsink[o] = A.isf ? a.d : (double)a.i; break;
    }
}

/* One thread per output (x) and R-space chunk (blockIdx.y). */
__global__ void red_thread_kernel(red_args A) {
    int c = blockIdx.y;
    long long r0 = (long long)c * A.chunk, r1 = r0 + A.chunk < A.N ? r0 + A.chunk : A.N;
    CU_FOR(o, A.M) {
        long long base = cu_offset(A.K, o);
        double shift = A.op == R_LSE && A.shift ? A.shift[o] : 0.0;
        racc a;
        acc_init(A.op, a);
        if (A.R.nd == 1) {
            long long st = A.R.st[0];
            for (long long r = r0; r < r1; r++) acc_add(A, a, base + r * st, r, shift);
        } else {
            for (long long r = r0; r < r1; r++) acc_add(A, a, base + cu_offset(A.R, r), r, shift);
        }
        if (A.nchunks > 1)
            A.partial[o * A.nchunks + c] = a;
        else
            acc_finish(A, o, a);
    }
}

/* One block per (output, chunk); blockDim.x a power of two <= 256. */
__global__ void red_block_kernel(red_args A) {
    __shared__ racc sh[256];
    long long o = blockIdx.x;
    int c = blockIdx.y, t = threadIdx.x;
    long long base = cu_offset(A.K, o);
    double shift = A.op == R_LSE && A.shift ? A.shift[o] : 0.0;
    long long r0 = (long long)c * A.chunk, r1 = r0 + A.chunk < A.N ? r0 + A.chunk : A.N;
    racc a;
    acc_init(A.op, a);
    if (A.R.nd == 1) {
        long long st = A.R.st[0];
        for (long long r = r0 + t; r < r1; r += blockDim.x) acc_add(A, a, base + r * st, r, shift);
    } else {
        for (long long r = r0 + t; r < r1; r += blockDim.x)
            acc_add(A, a, base + cu_offset(A.R, r), r, shift);
    }
    sh[t] = a;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if (t < w) acc_merge(A, sh[t], sh[t + w]);
        __syncthreads();
    }
    if (t == 0) {
        if (A.nchunks > 1)
            A.partial[o * A.nchunks + c] = sh[0];
        else
            acc_finish(A, o, sh[0]);
    }
}

__global__ void red_combine_kernel(red_args A) {
    CU_FOR(o, A.M) {
        racc a = A.partial[o * A.nchunks];
        for (int c = 1; c < A.nchunks; c++) acc_merge(A, a, A.partial[o * A.nchunks + c]);
        acc_finish(A, o, a);
    }
}

/* ---- host ---- */

/* Splits the R-space into chunks so that about `want` work items (threads
 * or blocks) exist, each folding at least `min_chunk` elements.  Depends on
 * the shapes only, so results are reproducible. */
static void red_chunks(red_args *A, long long items, long long want, long long min_chunk) {
    A->nchunks = 1;
    A->chunk = A->N;
    if (items >= want || A->N <= 2 * min_chunk) return;
    long long nc = (want + items - 1) / items, by_size = A->N / min_chunk;
    if (nc > by_size) nc = by_size;
    if (nc > 65535) nc = 65535;
    if (nc > 1) {
        A->chunk = (A->N + nc - 1) / nc;
        A->nchunks = (int)((A->N + A->chunk - 1) / A->chunk);
    }
}

/* ---- fast paths: sum/mean/max/min of float32, bfloat16, float16 ----
 *
 * The general kernels above carry a 24-byte accumulator through a switch
 * per element.  For the common case -- a float input, sum/mean/max/min,
 * one collapsed R dim -- these kernels keep one double, read rows with
 * 16-byte loads (four in flight per thread) and combine a block with warp
 * shuffles in a fixed tree.  Chunks and their partials (combined in chunk
 * order by one warp per output, again a fixed tree) depend on the shapes
 * only: no atomics, the same bits on every run.  The accumulator and the
 * final store are the general path's (double, rounded once), so only the
 * order of float64 additions differs from it. */

template <int DT> __device__ inline double rf_ld(const char *x, long long k) {
    if constexpr (DT == SP_F32) {
        return (double)((const float *)x)[k];
    } else {
        uint16_t h = ((const uint16_t *)x)[k];
        return (double)(DT == SP_BF16 ? cu_bf16_to_f32(h) : cu_f16_to_f32(h));
    }
}

template <int OP> __device__ inline double rf_init() {
    return OP == R_SUM ? 0.0 : OP == R_MAX ? -INFINITY : INFINITY;
}

/* acc_merge's rules for one double (NaN propagates for max/min). */
template <int OP> __device__ inline double rf_comb(double a, double b) {
    if constexpr (OP == R_SUM) return a + b;
    if constexpr (OP == R_MAX) return (b > a || b != b) && a == a ? b : a;
    return (b < a || b != b) && a == a ? b : a;
}

/* Adds the elements of one 16-byte word to a, in order. */
template <int DT, int OP> __device__ inline double rf_word(double a, uint4 w) {
    if constexpr (DT == SP_F32) {
        a = rf_comb<OP>(a, (double)__uint_as_float(w.x));
        a = rf_comb<OP>(a, (double)__uint_as_float(w.y));
        a = rf_comb<OP>(a, (double)__uint_as_float(w.z));
        return rf_comb<OP>(a, (double)__uint_as_float(w.w));
    } else {
        uint32_t u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            uint16_t lo = (uint16_t)(u[j] & 0xffffu), hi = (uint16_t)(u[j] >> 16);
            a = rf_comb<OP>(a, (double)(DT == SP_BF16 ? cu_bf16_to_f32(lo) : cu_f16_to_f32(lo)));
            a = rf_comb<OP>(a, (double)(DT == SP_BF16 ? cu_bf16_to_f32(hi) : cu_f16_to_f32(hi)));
        }
        return a;
    }
}

__device__ inline void rf_finish(const red_args &A, long long o, double a) {
    if (A.fin == F_MEAN) a /= (double)A.N;
    cu_store_f64_plain(A.odt, A.y, o, a);
}

/* Fixed-tree block combine of blockDim.x (a multiple of 32, <= 1024)
 * values; the result is valid in thread 0. */
template <int OP> __device__ inline double rf_block(double a) {
    __shared__ double sh[32];
#pragma unroll
    for (int w = 16; w > 0; w >>= 1) a = rf_comb<OP>(a, __shfl_down_sync(0xffffffffu, a, w));
    int t = threadIdx.x, nw = blockDim.x / 32;
    if ((t & 31) == 0) sh[t / 32] = a;
    __syncthreads();
    if (t < 32) {
        a = t < nw ? sh[t] : rf_init<OP>();
#pragma unroll
        for (int w = 16; w > 0; w >>= 1) a = rf_comb<OP>(a, __shfl_down_sync(0xffffffffu, a, w));
    }
    return a;
}

/* One block per (output, chunk) of a contiguous R dim. */
template <int DT, int OP> __global__ void rf_row_kernel(red_args A, double *part) {
    const int ES = DT == SP_F32 ? 4 : 2, EPW = 16 / ES;
    long long o = blockIdx.x;
    int c = blockIdx.y, t = threadIdx.x, B = blockDim.x;
    long long r0 = (long long)c * A.chunk, r1 = r0 + A.chunk < A.N ? r0 + A.chunk : A.N;
    const char *p = A.x + (cu_offset(A.K, o) + r0) * ES;
    long long len = r1 - r0;
    long long head = (long long)((16 - ((uintptr_t)p & 15)) & 15) / ES;
    if (head > len) head = len;
    double a = rf_init<OP>();
    if (t < head) a = rf_comb<OP>(a, rf_ld<DT>(p, t));
    const uint4 *q = (const uint4 *)(p + head * ES);
    long long nw = (len - head) / EPW;
    for (long long v = t; v < nw; v += 4 * B) {
        uint4 w[4];
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (v + j * B < nw) w[j] = q[v + j * B];
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (v + j * B < nw) a = rf_word<DT, OP>(a, w[j]);
    }
    for (long long k = head + nw * EPW + t; k < len; k += B) a = rf_comb<OP>(a, rf_ld<DT>(p, k));
    a = rf_block<OP>(a);
    if (t == 0) {
        if (A.nchunks > 1)
            part[o * A.nchunks + c] = a;
        else
            rf_finish(A, o, a);
    }
}

/* One thread per (output, chunk), folding a strided R dim serially, eight
 * loads in flight: neighbouring outputs are neighbours in memory. */
template <int DT, int OP> __global__ void rf_col_kernel(red_args A, double *part) {
    int c = blockIdx.y;
    long long r0 = (long long)c * A.chunk, r1 = r0 + A.chunk < A.N ? r0 + A.chunk : A.N;
    long long st = A.R.st[0];
    CU_FOR(o, A.M) {
        long long base = cu_offset(A.K, o);
        double a = rf_init<OP>();
        long long r = r0;
        for (; r + 8 <= r1; r += 8) {
            double v[8];
#pragma unroll
            for (int j = 0; j < 8; j++) v[j] = rf_ld<DT>(A.x, base + (r + j) * st);
#pragma unroll
            for (int j = 0; j < 8; j++) a = rf_comb<OP>(a, v[j]);
        }
        for (; r < r1; r++) a = rf_comb<OP>(a, rf_ld<DT>(A.x, base + r * st));
        if (A.nchunks > 1)
            part[o * A.nchunks + c] = a;
        else
            rf_finish(A, o, a);
    }
}

/* One block per (output, chunk) of an R-space whose innermost dim is a
 * contiguous run of L elements (sum over axes (0, 2, 3) of NCHW: runs of
 * H*W, one per image).  The chunk is a range of flat R indices, so it may
 * start or end inside a run; 32-bit index arithmetic (the host checks N),
 * four loads in flight per thread, neighbouring threads on neighbouring
 * addresses within a run. */
template <int DT, int OP> __global__ void rf_runs_kernel(red_args A, double *part, cu_layout outer) {
    long long o = blockIdx.x;
    int c = blockIdx.y, t = threadIdx.x, B = blockDim.x;
    unsigned L = (unsigned)A.R.shape[A.R.nd - 1];
    unsigned r0 = (unsigned)((long long)c * A.chunk);
    unsigned r1 = (unsigned)(r0 + A.chunk < A.N ? r0 + A.chunk : A.N);
    long long base = cu_offset(A.K, o), st0 = outer.st[0];
    bool flat = outer.nd == 1;
    double a = rf_init<OP>();
    for (unsigned e = r0 + t; e < r1; e += 4 * B) {
        double v[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            unsigned k = e + j * B;
            if (k < r1) {
                unsigned run = k / L, pos = k - run * L;
                long long off = base + (flat ? (long long)run * st0 : cu_offset(outer, run)) + pos;
                v[j] = rf_ld<DT>(A.x, off);
            }
        }
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (e + j * B < r1) a = rf_comb<OP>(a, v[j]);
    }
    a = rf_block<OP>(a);
    if (t == 0) {
        if (A.nchunks > 1)
            part[o * A.nchunks + c] = a;
        else
            rf_finish(A, o, a);
    }
}

/* One warp per output: the chunks' partials in a fixed tree. */
template <int OP> __global__ void rf_combine_kernel(red_args A, const double *part) {
    long long o = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (o >= A.M) return;
    double a = rf_init<OP>();
    for (int c = lane; c < A.nchunks; c += 32) a = rf_comb<OP>(a, part[o * A.nchunks + c]);
#pragma unroll
    for (int w = 16; w > 0; w >>= 1) a = rf_comb<OP>(a, __shfl_down_sync(0xffffffffu, a, w));
    if (lane == 0) rf_finish(A, o, a);
}

template <int DT, int OP> static void rf_launch(red_args *A, bool row, double *part) {
    cudaStream_t s = cuda_stream();
    if (row) {
        dim3 grid((unsigned)A->M, (unsigned)A->nchunks);
        rf_row_kernel<DT, OP><<<grid, 256, 0, s>>>(*A, part);
    } else {
        long long bx = (A->M + 127) / 128;
        dim3 grid((unsigned)(bx < 65535 * 16 ? bx : 65535 * 16), (unsigned)A->nchunks);
        rf_col_kernel<DT, OP><<<grid, 128, 0, s>>>(*A, part);
    }
    if (A->nchunks > 1) rf_combine_kernel<OP><<<(unsigned)((A->M + 7) / 8), 256, 0, s>>>(*A, part);
}

template <int DT> static void rf_launch_op(red_args *A, bool row, double *part) {
    if (A->op == R_SUM)
        rf_launch<DT, R_SUM>(A, row, part);
    else if (A->op == R_MAX)
        rf_launch<DT, R_MAX>(A, row, part);
    else
        rf_launch<DT, R_MIN>(A, row, part);
}

template <int DT, int OP> static void rf_runs_launch(red_args *A, double *part) {
    cudaStream_t s = cuda_stream();
    cu_layout outer = A->R;
    outer.nd--; /* the R-space less its innermost (contiguous) dim */
    dim3 grid((unsigned)A->M, (unsigned)A->nchunks);
    rf_runs_kernel<DT, OP><<<grid, 256, 0, s>>>(*A, part, outer);
    if (A->nchunks > 1) rf_combine_kernel<OP><<<(unsigned)((A->M + 7) / 8), 256, 0, s>>>(*A, part);
}

template <int DT> static void rf_runs_op(red_args *A, double *part) {
    if (A->op == R_SUM)
        rf_runs_launch<DT, R_SUM>(A, part);
    else if (A->op == R_MAX)
        rf_runs_launch<DT, R_MAX>(A, part);
    else
        rf_runs_launch<DT, R_MIN>(A, part);
}

/* Runs the fast path when it applies (sets *st); false otherwise. */
static bool rf_try(red_args *A, bool thread_mode, const char *name, sp_status *st) {
    if (A->xdt != SP_F32 && A->xdt != SP_BF16 && A->xdt != SP_F16) return false;
    if (A->op != R_SUM && A->op != R_MAX && A->op != R_MIN) return false;
    if (A->fin != F_PLAIN && A->fin != F_MEAN) return false;
    if (A->N < 1) return false;
    /* several R dims, the innermost a contiguous run: the run kernel */
    bool runs = A->R.nd >= 2 && !thread_mode && A->R.st[A->R.nd - 1] == 1 &&
                A->R.shape[A->R.nd - 1] >= 16 && A->N <= 0x3fffffffLL && A->M <= 65535;
    if (A->R.nd != 1 && !runs) return false;
    bool row = !thread_mode;
    if (!runs && row && A->R.st[0] != 1) return false;
    if (runs)
        red_chunks(A, A->M, 512, 1024);
    else if (row)
        red_chunks(A, A->M, 2048, 16384);
    else
        red_chunks(A, A->M, 1 << 18, 64);
    double *part = NULL;
    if (A->nchunks > 1) {
        part = (double *)cuda_tmp_alloc((size_t)A->M * A->nchunks * sizeof(double));
        if (!part) {
            *st = sp_last_status();
            return true;
        }
    }
    if (runs) {
        if (A->xdt == SP_F32)
            rf_runs_op<SP_F32>(A, part);
        else if (A->xdt == SP_BF16)
            rf_runs_op<SP_BF16>(A, part);
        else
            rf_runs_op<SP_F16>(A, part);
    } else if (A->xdt == SP_F32)
        rf_launch_op<SP_F32>(A, row, part);
    else if (A->xdt == SP_BF16)
        rf_launch_op<SP_BF16>(A, row, part);
    else
        rf_launch_op<SP_F16>(A, row, part);
    *st = cu_launched(name);
    cuda_tmp_free(part); /* stream-ordered */
    return true;
}

static sp_status red_launch(red_args *A, const char *name) {
    cudaStream_t s = cuda_stream();
    if (A->M == 0) return SP_OK;
    if (A->M > 0x7fffffffLL)
        return sp_error(SP_ERR_UNSUPPORTED, "%s: %lld outputs are too many for one launch", name,
                        A->M);
    /* a column reduction: neighbouring outputs are neighbours in memory */
    bool column = A->K.nd >= 1 && A->K.shape[A->K.nd - 1] > 1 &&
                  (A->K.st[A->K.nd - 1] == 1 || A->K.st[A->K.nd - 1] == -1);
    bool thread_mode = A->N <= 32 || (column && A->M >= 64);
    sp_status fst;
    if (rf_try(A, thread_mode, name, &fst)) return fst;
    if (thread_mode)
        red_chunks(A, A->M, 1 << 18, 64);
    else
        red_chunks(A, A->M, 512, 8192);
    racc *partial = NULL;
    A->partial = NULL;
    if (A->nchunks > 1) {
        partial = (racc *)cuda_tmp_alloc((size_t)A->M * A->nchunks * sizeof(racc));
        if (!partial) return sp_last_status();
        A->partial = partial;
    }
    sp_status st;
    if (thread_mode) {
        long long bx = (A->M + 127) / 128;
        dim3 grid((unsigned)(bx < 65535 * 16 ? bx : 65535 * 16), (unsigned)A->nchunks);
        red_thread_kernel<<<grid, 128, 0, s>>>(*A);
    } else {
        int threads = 32;
        while (threads < 256 && threads < A->N) threads *= 2;
        dim3 grid((unsigned)A->M, (unsigned)A->nchunks);
        red_block_kernel<<<grid, threads, 0, s>>>(*A);
    }
    st = cu_launched(name);
    if (!st && A->nchunks > 1) {
        red_combine_kernel<<<cu_blocks(A->M, 128), 128, 0, s>>>(*A);
        st = cu_launched(name);
    }
    cuda_tmp_free(partial); /* stream-ordered: safe right after enqueueing */
    A->partial = NULL;
    return st;
}

static sp_status red_empty_error(const char *name, const sp_tensor *x) {
    char s[128];
    return sp_error(SP_ERR_SHAPE, "%s: cannot reduce over an empty axis in shape %s", name,
                    sp_shape_str(x->ndim, x->shape, s, sizeof s));
}

static sp_status red_run(const sp_kernel_args *a, const char *name, int op, int fin,
                         const int *red) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "%s: kernel called with %d inputs and %d outputs", name,
                        a->n_in, a->n_out);
    sp_tensor *x = a->in[0], *y = a->out[0];
    red_args A;
    memset(&A, 0, sizeof A);
    A.isf = sp_dtype_is_float(x->dtype);
    A.xdt = x->dtype;
    A.odt = y->dtype;
    A.x = (const char *)sp_tensor_data(x);
    A.y = (char *)sp_tensor_data(y);
    int64_t ksh[SP_MAX_DIMS], kst[SP_MAX_DIMS], rsh[SP_MAX_DIMS], rst[SP_MAX_DIMS];
    int nk = 0, nr = 0;
    A.M = 1;
    A.N = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (red[i]) {
            rsh[nr] = x->shape[i], rst[nr++] = x->strides[i];
            A.N *= x->shape[i];
        } else {
            ksh[nk] = x->shape[i], kst[nk++] = x->strides[i];
            A.M *= x->shape[i];
        }
    }
    if (sp_tensor_numel(y) != A.M)
        return sp_error(SP_ERR_INTERNAL, "%s: output has %lld elements, expected %lld", name,
                        (long long)sp_tensor_numel(y), A.M);
    const int64_t *kp = kst, *rp = rst;
    cu_collapse(nk, ksh, 1, &kp, &A.K);
    cu_collapse(nr, rsh, 1, &rp, &A.R);
    if (A.M == 0) return SP_OK;
    if (A.N == 0 && op != R_SUM && op != R_PROD && op != R_LSE) return red_empty_error(name, x);
    double *shift = NULL;
    sp_status st;
    if (op == R_LSE && A.N > 0) {
        shift = (double *)cuda_tmp_alloc((size_t)A.M * sizeof(double));
        if (!shift) return sp_last_status();
        A.op = R_MAX, A.fin = F_SHIFT, A.dsink = shift;
        st = red_launch(&A, name);
        if (st) {
            cuda_tmp_free(shift);
            return st;
        }
        A.shift = shift;
    }
    A.op = op, A.fin = fin;
    if (A.N == 0) { /* every output is the empty fold */
        A.nchunks = 1;
        A.chunk = 0;
        red_thread_kernel<<<cu_blocks(A.M, 128), 128, 0, cuda_stream()>>>(A);
        st = cu_launched(name);
    } else {
        st = red_launch(&A, name);
    }
    cuda_tmp_free(shift);
    return st;
}

static sp_status red_axes(const sp_kernel_args *a, const char *name, int *red) {
    int nd = a->in[0]->ndim, n = 0;
    const int64_t *axes = sp_attrs_get_ints(a->attrs, "axes", &n);
    memset(red, 0, sizeof(int) * SP_MAX_DIMS);
    if (!axes || n == 0) {
        for (int i = 0; i < nd; i++) red[i] = 1;
        return SP_OK;
    }
    for (int k = 0; k < n; k++) {
        int64_t ax = axes[k];
        if (ax < -nd || ax >= nd)
            return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", name,
                            (long long)ax, nd);
        if (ax < 0) ax += nd;
        if (red[ax]++)
            return sp_error(SP_ERR_ARG, "%s: axis %lld is repeated in axes", name,
                            (long long)axes[k]);
    }
    return SP_OK;
}

static sp_status red_kernel(const sp_kernel_args *a, const char *name, int op, int fin) {
    int red[SP_MAX_DIMS];
    if (a->n_in < 1) return sp_error(SP_ERR_INTERNAL, "%s: no input", name);
    sp_status st = red_axes(a, name, red);
    return st ? st : red_run(a, name, op, fin, red);
}

sp_status cuda_sum(const sp_kernel_args *a) { return red_kernel(a, "sum", R_SUM, F_PLAIN); }
sp_status cuda_mean(const sp_kernel_args *a) { return red_kernel(a, "mean", R_SUM, F_MEAN); }
sp_status cuda_max(const sp_kernel_args *a) { return red_kernel(a, "max", R_MAX, F_PLAIN); }
sp_status cuda_min(const sp_kernel_args *a) { return red_kernel(a, "min", R_MIN, F_PLAIN); }
sp_status cuda_prod(const sp_kernel_args *a) { return red_kernel(a, "prod", R_PROD, F_PLAIN); }
sp_status cuda_logsumexp(const sp_kernel_args *a) {
    return red_kernel(a, "logsumexp", R_LSE, F_LSE);
}

static sp_status red_arg_kernel(const sp_kernel_args *a, const char *name, int op) {
    int red[SP_MAX_DIMS] = {0};
    if (a->n_in < 1) return sp_error(SP_ERR_INTERNAL, "%s: no input", name);
    int nd = a->in[0]->ndim;
    if (sp_attrs_find(a->attrs, "axis")) {
        int64_t ax = sp_attrs_get_int(a->attrs, "axis", 0);
        if (ax < -nd || ax >= nd)
            return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", name,
                            (long long)ax, nd);
        red[ax < 0 ? ax + nd : ax] = 1;
    } else {
        for (int i = 0; i < nd; i++) red[i] = 1;
    }
    return red_run(a, name, op, F_ARG, red);
}

sp_status cuda_argmax(const sp_kernel_args *a) { return red_arg_kernel(a, "argmax", R_ARGMAX); }
sp_status cuda_argmin(const sp_kernel_args *a) { return red_arg_kernel(a, "argmin", R_ARGMIN); }

/* ---- cumsum ---- */

struct cum_args {
    int isf, xdt, ydt;
    const char *x;
    char *y;
    cu_layout U;  /* the line-index space: input strides */
    cu_layout UO; /* the same space: output strides */
    long long lines, L, sa, oa;
};

__global__ void cum_kernel(cum_args A) {
    CU_FOR(u, A.lines) {
        long long xo = cu_offset(A.U, u), yo = cu_offset(A.UO, u);
        double d = 0;
        u64 iv = 0;
        for (long long k = 0; k < A.L; k++) {
            if (A.isf) {
                d += cu_load<double>(A.xdt, A.x, xo + k * A.sa);
                cu_store_f64_plain(A.ydt, A.y, yo + k * A.oa, d);
            } else {
                iv += (u64)cu_load<long long>(A.xdt, A.x, xo + k * A.sa);
                cu_store(A.ydt, A.y, yo + k * A.oa, (long long)iv);
            }
        }
    }
}

sp_status cuda_cumsum(const sp_kernel_args *a) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "cumsum: kernel called with %d inputs and %d outputs",
                        a->n_in, a->n_out);
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim;
    if (sp_tensor_numel(x) == 0) return SP_OK;
    cum_args A;
    memset(&A, 0, sizeof A);
    A.isf = sp_dtype_is_float(x->dtype);
    A.xdt = x->dtype;
    A.ydt = y->dtype;
    A.x = (const char *)sp_tensor_data(x);
    A.y = (char *)sp_tensor_data(y);
    int64_t ost[SP_MAX_DIMS];
    cu_contig_strides(nd, y->shape, ost);
    int ax = 0;
    if (nd > 0) {
        int64_t v = sp_attrs_get_int(a->attrs, "axis", 0);
        if (v < -nd || v >= nd)
            return sp_error(SP_ERR_ARG, "cumsum: axis %lld out of range for %d dims",
                            (long long)v, nd);
        ax = (int)(v < 0 ? v + nd : v);
        A.L = x->shape[ax], A.sa = x->strides[ax], A.oa = ost[ax];
    } else {
        A.L = 1;
    }
    int64_t ush[SP_MAX_DIMS], ust[SP_MAX_DIMS], uost[SP_MAX_DIMS];
    int nu = 0;
    A.lines = 1;
    for (int i = 0; i < nd; i++) {
        if (i == ax) continue;
        ush[nu] = x->shape[i], ust[nu] = x->strides[i], uost[nu++] = ost[i];
        A.lines *= x->shape[i];
    }
    const int64_t *sts[2] = {ust, uost};
    cu_layout L2[2];
    cu_collapse(nu, ush, 2, sts, L2);
    A.U = L2[0];
    A.UO = L2[1];
    cum_kernel<<<cu_blocks(A.lines, 128), 128, 0, cuda_stream()>>>(A);
    return cu_launched("cumsum");
}
