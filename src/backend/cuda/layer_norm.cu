/*
 * layer_norm.cu -- layer_norm and layer_norm_backward on the GPU; the
 * CPU's formulas (norm.c) in fused kernels.
 *
 * Layer norm sees x as M rows of D = prod(x.shape[axis:]) elements and
 * saves mean and rstd = 1/sqrt(var + eps) (biased variance) per row:
 *
 *     y      = (x - mean) * rstd * gamma + beta
 *     dx     = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma
 *     dgamma = sum_rows dy * xhat,   dbeta = sum_rows dy
 *
 * The fast kernels keep a row in registers.  A group of G threads (a warp,
 * four rows to a block of 128, or a whole block of 64..512 threads) owns
 * a row; lane l holds the row's 16-byte chunks l, l + G, ... (at most NC
 * of them, as raw 16-byte words: eight bfloat16 take four registers) and
 * every pass over the row -- the sum, the squared deviations, the output
 * -- reads them from there: x comes from global memory once, with all of
 * the lane's loads in flight together, and nothing goes through shared
 * memory but the 8-byte partials of the group reductions.  G and NC
 * follow from D and the dtype alone (ln_pick), and the chunk a lane owns
 * does not depend on alignment: a misaligned tensor, read element by
 * element, adds the same numbers in the same order as the 16-byte path,
 * so the bits do not depend on where a tensor lies in its buffer.  Sums
 * run per lane in the compute type (float, double for float64) and across
 * lanes in double; outputs are rounded once.
 *
 * The backward is one pass too: each row's dy and x are loaded once,
 * reduced to mean(g) and mean(g * xhat), and dx written from the
 * registers; meanwhile each lane adds dy * xhat and dy into per-column
 * accumulators for its own columns (the same columns for every row of the
 * group).  When its rows are done the group writes these column sums as
 * one partial row, and ln_bwd_fin adds the partials of all groups in
 * group order, in double, into dgamma and dbeta: a two-level column
 * reduction with no atomics, so the bits are the same on every run.  The
 * number of groups NG is fixed by the shape (enough threads to fill a
 * large GPU, but at least a few rows per group so the partials stay small
 * next to the data), not by the machine, and group k handles rows k,
 * k + NG, ...  The per-column accumulators cost registers (2 * NC * VW
 * per lane, 32 at most), so 2-byte types take at most 2 chunks per lane
 * and instead load the group's next row while working on this one.
 *
 * Rows too long for the registers (forward: beyond 512 threads x 8
 * chunks; backward: 512 x 4 float32 or 512 x 2 half chunks) fall back to
 * rows.cuh's shared-memory kernel (forward, 2-byte and 4-byte types) or to
 * the plain kernels below: one block per row and a column-chunk reduction
 * for dgamma/dbeta.  Mixed dtypes (gamma not of x's dtype) take the plain
 * kernels, which read the side vectors through nm_vec.
 */
#include <type_traits>

#include "backend/cuda/norm.cuh"

/* ---- plain kernels (any float dtype, any gamma/beta dtype or length) ---- */

/* Forward, one block per row: two passes over the row for the statistics
 * (in double), one for the output. */
template <typename T>
__global__ void ln_fwd(const T *x, T *y, nm_vec gam, nm_vec bet, nm_vec mean, nm_vec rstd,
                       int64_t M, int64_t D, double eps) {
    typedef typename cuda_nn_acc<T>::type A;
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
        const T *xr = x + r * D;
        T *yr = y + r * D;
        double s = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) s += (double)cuda_nn_f(xr[k]);
        double mu = cuda_nn_block_sum(s, sh) / (double)D;
        double q = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            double d = (double)cuda_nn_f(xr[k]) - mu;
            q += d * d;
        }
        double rs = 1.0 / sqrt(cuda_nn_block_sum(q, sh) / (double)D + eps);
        if (threadIdx.x == 0) {
            nm_st(mean, r, mu);
            nm_st(rstd, r, rs);
        }
        A mt = (A)mu, rt = (A)rs;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x)
            yr[k] = cuda_nn_to<T>(((A)cuda_nn_f(xr[k]) - mt) * rt * (A)nm_ld(gam, k) + (A)nm_ld(bet, k));
    }
}

/* dx, one block per row (sums in double). */
template <typename T>
__global__ void ln_bwd_dx(const T *dy, const T *x, nm_vec gam, nm_vec mean, nm_vec rstd, T *dx,
                          int64_t M, int64_t D) {
    typedef typename cuda_nn_acc<T>::type A;
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
        const T *xr = x + r * D, *dyr = dy + r * D;
        T *dxr = dx + r * D;
        A mt = (A)nm_ld(mean, r), rt = (A)nm_ld(rstd, r);
        double s1 = 0, s2 = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            A g = (A)cuda_nn_f(dyr[k]) * (A)nm_ld(gam, k);
            s1 += (double)g;
            s2 += (double)(g * (((A)cuda_nn_f(xr[k]) - mt) * rt));
        }
        s1 = cuda_nn_block_sum(s1, sh);
        s2 = cuda_nn_block_sum(s2, sh);
        A a = (A)(s1 / (double)D), b = (A)(s2 / (double)D);
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            A xv = (A)cuda_nn_f(xr[k]);
            dxr[k] = cuda_nn_to<T>(rt * ((A)cuda_nn_f(dyr[k]) * (A)nm_ld(gam, k) - a - (xv - mt) * rt * b));
        }
    }
}

/* Partial column sums: part[c][k] = sum over rows of chunk c of dy*xhat
 * (first D) and dy (next D). */
template <typename T>
__global__ void ln_bwd_part(const T *dy, const T *x, nm_vec mean, nm_vec rstd, int64_t M,
                            int64_t D, int64_t per, double *part) {
    typedef typename cuda_nn_acc<T>::type A;
    int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, c = blockIdx.y;
    if (k >= D) return;
    int64_t r0 = c * per, r1 = r0 + per < M ? r0 + per : M;
    double dg = 0, db = 0;
    for (int64_t r = r0; r < r1; r++) {
        A mt = (A)nm_ld(mean, r), rt = (A)nm_ld(rstd, r);
        A d = (A)cuda_nn_f(dy[r * D + k]);
        dg += (double)(d * (((A)cuda_nn_f(x[r * D + k]) - mt) * rt));
        db += (double)d;
    }
    part[c * 2 * D + k] = dg;
    part[c * 2 * D + D + k] = db;
}

/* dgamma, dbeta: the nchunks partials of ln_bwd_part added in order. */
__global__ void ln_bwd_total(const double *part, int64_t nchunks, int64_t D, nm_vec dgam,
                             nm_vec dbet) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < D;
         k += (int64_t)gridDim.x * blockDim.x) {
        double dg = 0, db = 0;
        for (int64_t c = 0; c < nchunks; c++) {
            dg += part[c * 2 * D + k];
            db += part[c * 2 * D + D + k];
        }
        nm_st(dgam, k, dg);
        nm_st(dbet, k, db);
    }
}

/* Layer norm forward over rows of D (rows.cuh, the row cached in shared
 * memory), T of 2 or 4 bytes; gamma and beta contiguous in T.  Only rows
 * too long for ln_fwd_reg come here. */
template <typename T, bool WARP>
__global__ void __launch_bounds__(RW_MAX_THREADS)
    ln_rows(const T *__restrict__ x, T *__restrict__ y, const T *__restrict__ gam,
            const T *__restrict__ bet, nm_vec mean, nm_vec rstd, int64_t M, int64_t D, double eps,
            int vec, int cached) {
    const int VW = RW_VW(T);
    __shared__ double shd[32];
    rw_place p = rw_where<WARP>(cached, D, VW);
    for (int64_t r = p.row0; r < M; r += p.rstep) {
        const T *xr = x + r * D;
        T *yr = y + r * D;
        float s = 0;
        rw_pass<T>(p, xr, D, vec, 0.0f, true, [&](int64_t, const float *f) {
#pragma unroll
            for (int i = 0; i < VW; i++) s += f[i];
        });
        double mu = rw_sum<WARP, double>((double)s, shd) / (double)D;
        float mf = (float)mu, q = 0;
        rw_pass<T>(p, xr, D, vec, 0.0f, false, [&](int64_t k0, const float *f) {
#pragma unroll
            for (int i = 0; i < VW; i++)
                if (k0 + i < D) {
                    float d = f[i] - mf;
                    q += d * d;
                }
        });
        double rs = 1.0 / sqrt(rw_sum<WARP, double>((double)q, shd) / (double)D + eps);
        if (p.lane == 0) {
            nm_st(mean, r, mu);
            nm_st(rstd, r, rs);
        }
        float rt = (float)rs;
        rw_pass<T>(p, xr, D, vec, 0.0f, false, [&](int64_t k0, const float *f) {
            float g[VW], b[VW], o[VW];
            rw_load<T>(gam, k0, D, vec, 0.0f, g);
            rw_load<T>(bet, k0, D, vec, 0.0f, b);
#pragma unroll
            for (int i = 0; i < VW; i++) o[i] = (f[i] - mf) * rt * g[i] + b[i];
            rw_store<T>(yr, k0, D, vec, o);
        });
    }
}

/* ---- register-resident rows ---- */

#define LN_MAX_THREADS 512
#define LN_FWD_NC 4    /* chunks per lane the forward aims at (ln_pick) */
#define LN_FWD_NC_MAX 8
#define LN_FILL_THREADS (128 * 1024) /* backward: threads of all groups together, at most */
#define LN_BWD_MIN_ROWS 4            /* backward: rows per group, at least (when M allows) */
#define LN_FIN_Y 32                  /* ln_bwd_fin: slices of the groups per column */

/* Chunk at element k0 of row p into u: one 16-byte load when vec (then
 * k0 + VW <= K), else element by element with zeros past K. */
template <typename T, bool VEC>
__device__ __forceinline__ void ln_ldc(const T *__restrict__ p, int k0, int K, uint4 &u) {
    if (VEC) {
        u = __ldg(reinterpret_cast<const uint4 *>(p + k0));
        return;
    }
    u = make_uint4(0, 0, 0, 0);
    T *e = reinterpret_cast<T *>(&u);
#pragma unroll
    for (int i = 0; i < RW_VW(T); i++)
        if (k0 + i < K) e[i] = p[k0 + i];
}

/* The VW elements of a raw chunk in the compute type A. */
template <typename T, typename A> __device__ __forceinline__ void ln_cvt(const uint4 &u, A *f) {
    const T *e = reinterpret_cast<const T *>(&u);
#pragma unroll
    for (int i = 0; i < RW_VW(T); i++) f[i] = (A)cuda_nn_f(e[i]);
}

/* f rounded to T (to nearest even), packed as one 16-byte chunk. */
template <typename T, typename A> __device__ __forceinline__ uint4 ln_pack(const A *f) {
    uint4 u;
    if constexpr (sizeof(T) == 2) {
        uint32_t *w = reinterpret_cast<uint32_t *>(&u);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if constexpr (std::is_same<T, __half>::value) {
                __half2 h = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
                w[i] = *reinterpret_cast<uint32_t *>(&h);
            } else {
                __nv_bfloat162 h = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
                w[i] = *reinterpret_cast<uint32_t *>(&h);
            }
        }
    } else {
        T *e = reinterpret_cast<T *>(&u);
#pragma unroll
        for (int i = 0; i < RW_VW(T); i++) e[i] = (T)f[i];
    }
    return u;
}

/* Stores f (rounded to T) as the chunk at element k0 of row p. */
template <typename T, typename A, bool VEC>
__device__ __forceinline__ void ln_stc(T *__restrict__ p, int k0, int K, const A *f) {
    if (VEC) {
        *reinterpret_cast<uint4 *>(p + k0) = ln_pack<T, A>(f);
    } else {
#pragma unroll
        for (int i = 0; i < RW_VW(T); i++)
            if (k0 + i < K) p[k0 + i] = cuda_nn_tof<T>(f[i]);
    }
}

/* Sum over the group, every thread gets it.  Block groups use sh (32
 * doubles); no trailing barrier: the next call writes sh only after its
 * first barrier, which every reader of this one has passed. */
template <bool WARP> __device__ __forceinline__ double ln_sum(double a, double *sh) {
    a = cuda_nn_warp_sum(a);
    if (WARP) return a;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (nw == 1) return a;
    __syncthreads();
    if (lane == 0) sh[wid] = a;
    __syncthreads();
    return cuda_nn_warp_sum(lane < nw ? sh[lane] : 0.0);
}

/* Two sums at once (sh: 64 doubles). */
template <bool WARP> __device__ __forceinline__ void ln_sum2(double &a, double &b, double *sh) {
    a = cuda_nn_warp_sum(a);
    b = cuda_nn_warp_sum(b);
    if (WARP) return;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (nw == 1) return;
    __syncthreads();
    if (lane == 0) sh[wid] = a, sh[32 + wid] = b;
    __syncthreads();
    a = cuda_nn_warp_sum(lane < nw ? sh[lane] : 0.0);
    b = cuda_nn_warp_sum(lane < nw ? sh[32 + lane] : 0.0);
}

/* Element 0 of chunk c of the lane (may lie past the row). */
__device__ __forceinline__ int ln_k0(const rw_place &p, int c, int vw) {
    return (p.lane + c * p.G) * vw;
}

/* Forward, NC chunks per lane; WARP: a warp per row.  gamma and beta
 * contiguous in T, D < 2^31; VEC: every row start, gamma and beta 16-byte aligned
 * and D a multiple of the chunk. */
template <typename T, int NC, bool WARP, bool VEC>
__global__ void __launch_bounds__(LN_MAX_THREADS)
    ln_fwd_reg(const T *__restrict__ x, T *__restrict__ y, const T *__restrict__ gam,
               const T *__restrict__ bet, nm_vec mean, nm_vec rstd, int64_t M, int D, double eps) {
    typedef typename cuda_nn_acc<T>::type A;
    const int VW = RW_VW(T);
    __shared__ double sh[32];
    rw_place p = rw_where<WARP>(0, D, VW);
    for (int64_t r = p.row0; r < M; r += p.rstep) {
        const T *xr = x + r * D;
        uint4 u[NC];
#pragma unroll
        for (int c = 0; c < NC; c++) {
            u[c] = make_uint4(0, 0, 0, 0);
            if (ln_k0(p, c, VW) < D) ln_ldc<T, VEC>(xr, ln_k0(p, c, VW), D, u[c]);
        }
        A s = 0;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            A f[VW];
            ln_cvt<T, A>(u[c], f); /* pads and chunks past D hold zeros */
#pragma unroll
            for (int i = 0; i < VW; i++) s += f[i];
        }
        double mu = ln_sum<WARP>((double)s, sh) / (double)D;
        A mf = (A)mu, q = 0;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int k0 = ln_k0(p, c, VW);
            A f[VW];
            ln_cvt<T, A>(u[c], f);
#pragma unroll
            for (int i = 0; i < VW; i++)
                if (VEC ? k0 < D : k0 + i < D) {
                    A d = f[i] - mf;
                    q += d * d;
                }
        }
        double rs = 1.0 / sqrt(ln_sum<WARP>((double)q, sh) / (double)D + eps);
        if (p.lane == 0) {
            nm_st(mean, r, mu);
            nm_st(rstd, r, rs);
        }
        A rt = (A)rs;
        T *yr = y + r * D;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int k0 = ln_k0(p, c, VW);
            if (k0 < D) {
                uint4 ug, ub;
                ln_ldc<T, VEC>(gam, k0, D, ug);
                ln_ldc<T, VEC>(bet, k0, D, ub);
                A f[VW], g[VW], b[VW], o[VW];
                ln_cvt<T, A>(u[c], f);
                ln_cvt<T, A>(ug, g);
                ln_cvt<T, A>(ub, b);
#pragma unroll
                for (int i = 0; i < VW; i++) o[i] = (f[i] - mf) * rt * g[i] + b[i];
                ln_stc<T, A, VEC>(yr, k0, D, o);
            }
        }
    }
}

/* Backward, NC chunks per lane: dx of every row of the group, and the
 * group's column sums of dy*xhat and dy as row p.row0 of part ([NG][2D]
 * in the compute type A).  VEC as ln_fwd_reg (dy, x, gamma, dx). */
template <typename T, int NC, bool WARP, bool VEC>
__global__ void __launch_bounds__(LN_MAX_THREADS)
    ln_bwd_reg(const T *__restrict__ dy, const T *__restrict__ x, const T *__restrict__ gam,
               nm_vec mean, nm_vec rstd, T *__restrict__ dx, int64_t M, int D,
               typename cuda_nn_acc<T>::type *__restrict__ part) {
    typedef typename cuda_nn_acc<T>::type A;
    const int VW = RW_VW(T);
    __shared__ double sh[64];
    rw_place p = rw_where<WARP>(0, D, VW);
    A ag[NC][VW], ab[NC][VW];
#pragma unroll
    for (int c = 0; c < NC; c++)
#pragma unroll
        for (int i = 0; i < VW; i++) ag[c][i] = ab[c][i] = 0;
    /* 2-byte types hold half the bytes per register: their loads of the
     * group's next row are issued before this row's arithmetic (PF), so
     * as many bytes are in flight per thread as for float32 */
    const bool PF = sizeof(T) == 2;
    uint4 ux[NC], ud[NC], nx[NC], nd[NC];
    auto load = [&](int64_t r, uint4 *lx, uint4 *ld) {
        const T *xr = x + r * D, *dyr = dy + r * D;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int k0 = ln_k0(p, c, VW);
            lx[c] = ld[c] = make_uint4(0, 0, 0, 0);
            if (k0 < D) {
                ln_ldc<T, VEC>(xr, k0, D, lx[c]);
                ln_ldc<T, VEC>(dyr, k0, D, ld[c]);
            }
        }
    };
    if (PF && p.row0 < M) load(p.row0, ux, ud);
    for (int64_t r = p.row0; r < M; r += p.rstep) {
        if (!PF)
            load(r, ux, ud);
        else if (r + p.rstep < M)
            load(r + p.rstep, nx, nd);
        A mt = (A)nm_ld(mean, r), rt = (A)nm_ld(rstd, r);
        /* pads are zeros in dy, x and gamma: they add 0 to every sum */
        A s1 = 0, s2 = 0;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int k0 = ln_k0(p, c, VW);
            if (k0 < D) {
                uint4 ug;
                ln_ldc<T, VEC>(gam, k0, D, ug);
                A xv[VW], d[VW], g[VW];
                ln_cvt<T, A>(ux[c], xv);
                ln_cvt<T, A>(ud[c], d);
                ln_cvt<T, A>(ug, g);
#pragma unroll
                for (int i = 0; i < VW; i++) {
                    A gk = d[i] * g[i], xh = (xv[i] - mt) * rt;
                    s1 += gk;
                    s2 += gk * xh;
                    ag[c][i] += d[i] * xh;
                    ab[c][i] += d[i];
                }
            }
        }
        double S1 = (double)s1, S2 = (double)s2;
        ln_sum2<WARP>(S1, S2, sh);
        A a = (A)(S1 / (double)D), b = (A)(S2 / (double)D);
        T *dxr = dx + r * D;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            int k0 = ln_k0(p, c, VW);
            if (k0 < D) {
                uint4 ug;
                ln_ldc<T, VEC>(gam, k0, D, ug);
                A xv[VW], d[VW], g[VW], o[VW];
                ln_cvt<T, A>(ux[c], xv);
                ln_cvt<T, A>(ud[c], d);
                ln_cvt<T, A>(ug, g);
#pragma unroll
                for (int i = 0; i < VW; i++) o[i] = rt * (d[i] * g[i] - a - (xv[i] - mt) * rt * b);
                ln_stc<T, A, VEC>(dxr, k0, D, o);
            }
        }
        if (PF) {
#pragma unroll
            for (int c = 0; c < NC; c++) ux[c] = nx[c], ud[c] = nd[c];
        }
    }
    A *pr = part + p.row0 * 2 * D;
#pragma unroll
    for (int c = 0; c < NC; c++) {
        int k0 = ln_k0(p, c, VW);
#pragma unroll
        for (int i = 0; i < VW; i++)
            if (VEC ? k0 < D : k0 + i < D) {
                pr[k0 + i] = ag[c][i];
                pr[D + k0 + i] = ab[c][i];
            }
    }
}

/* dgamma, dbeta from the NG partial rows of part ([NG][2D]): column j of
 * 2D is summed by LN_FIN_Y threads, thread y taking groups y, y + LN_FIN_Y,
 * ... in order, and the LN_FIN_Y sums are added in order: fixed, so the
 * same bits on every run.  Block (32, LN_FIN_Y), grid over 2D / 32. */
template <typename P>
__global__ void __launch_bounds__(32 * LN_FIN_Y)
    ln_bwd_fin(const P *__restrict__ part, int64_t ng, int64_t D, nm_vec dgam, nm_vec dbet) {
    __shared__ double sh[LN_FIN_Y][33];
    int64_t j = blockIdx.x * (int64_t)32 + threadIdx.x, W = 2 * D;
    double s = 0;
    if (j < W) {
#pragma unroll 8
        for (int64_t g = threadIdx.y; g < ng; g += LN_FIN_Y) s += (double)part[g * W + j];
    }
    sh[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < W) {
        double t = 0;
        for (int y = 0; y < LN_FIN_Y; y++) t += sh[y][threadIdx.x];
        if (j < D)
            nm_st(dgam, j, t);
        else
            nm_st(dbet, j - D, t);
    }
}

/* How a row of D is spread: G threads per row (32: a warp, four rows to a
 * block of 128; else one block of G), NC chunks per lane. */
typedef struct ln_conf {
    int G, nc, threads, gpb;
} ln_conf;

/* Picks the smallest G (32..LN_MAX_THREADS) that covers the row's chunks
 * with nc_want chunks per lane, then the smallest NC in 1, 2, 4, 8 that
 * covers them with G.  From D and the chunk width alone.  Returns 0 when
 * the row needs more than nc_max chunks per lane. */
static int ln_pick(int64_t D, int vw, int nc_want, int nc_max, ln_conf *c) {
    int64_t chunks = (D + vw - 1) / vw;
    int G = 32;
    while (G < LN_MAX_THREADS && (int64_t)G * nc_want < chunks) G <<= 1;
    int64_t need = (chunks + G - 1) / G;
    int nc = 1;
    while (nc < need) nc <<= 1;
    if (nc > nc_max) return 0;
    c->G = G;
    c->nc = nc;
    c->threads = G == 32 ? 128 : G;
    c->gpb = c->threads / G;
    return 1;
}

/* Launches ln_fwd_reg<T, NC> in the shape of c (grid of `blocks`). */
template <typename T, int NC>
static void ln_fwd_launch(const ln_conf &c, unsigned blocks, cudaStream_t s, const T *x, T *y,
                          const T *g, const T *b, nm_vec mv, nm_vec rv, int64_t M, int D,
                          double eps, int vec) {
    if (c.G == 32 && vec)
        ln_fwd_reg<T, NC, true, true><<<blocks, c.threads, 0, s>>>(x, y, g, b, mv, rv, M, D, eps);
    else if (c.G == 32)
        ln_fwd_reg<T, NC, true, false><<<blocks, c.threads, 0, s>>>(x, y, g, b, mv, rv, M, D, eps);
    else if (vec)
        ln_fwd_reg<T, NC, false, true><<<blocks, c.threads, 0, s>>>(x, y, g, b, mv, rv, M, D, eps);
    else
        ln_fwd_reg<T, NC, false, false><<<blocks, c.threads, 0, s>>>(x, y, g, b, mv, rv, M, D, eps);
}

/* Launches a fast forward for T (gamma and beta of x's dtype): 1 if
 * launched, 0 when the plain kernel must do it. */
template <typename T>
static int ln_fwd_fast(const T *x, T *y, const T *g, const T *b, nm_vec mv, nm_vec rv, int64_t M,
                       int64_t D, double eps, cudaStream_t s) {
    const int VW = RW_VW(T);
    int vec = D % VW == 0 && rw_aligned(x) && rw_aligned(y) && rw_aligned(g) && rw_aligned(b);
    ln_conf c;
    if (ln_pick(D, VW, LN_FWD_NC, LN_FWD_NC_MAX, &c)) {
        int64_t nb = (M + c.gpb - 1) / c.gpb;
        unsigned blocks = (unsigned)(nb < (1 << 30) ? (nb > 0 ? nb : 1) : (1 << 30));
        switch (c.nc) {
        case 1: ln_fwd_launch<T, 1>(c, blocks, s, x, y, g, b, mv, rv, M, (int)D, eps, vec); break;
        case 2: ln_fwd_launch<T, 2>(c, blocks, s, x, y, g, b, mv, rv, M, (int)D, eps, vec); break;
        case 4: ln_fwd_launch<T, 4>(c, blocks, s, x, y, g, b, mv, rv, M, (int)D, eps, vec); break;
        default: ln_fwd_launch<T, 8>(c, blocks, s, x, y, g, b, mv, rv, M, (int)D, eps, vec); break;
        }
        return 1;
    }
    if constexpr (sizeof(T) == 8) {
        return 0;
    } else {
        rw_conf rc = rw_config(M, D, VW, 1);
        if (rc.warp)
            ln_rows<T, true><<<rc.blocks, rc.threads, rc.smem, s>>>(x, y, g, b, mv, rv, M, D, eps,
                                                                   vec, rc.cache);
        else
            ln_rows<T, false><<<rc.blocks, rc.threads, rc.smem, s>>>(x, y, g, b, mv, rv, M, D, eps,
                                                                    vec, rc.cache);
        return 1;
    }
}

/* The normalized axis of layer norm, checked against x: M rows of D.
 * Returns an error naming op when the axis is out of range. */
static sp_status ln_axis(const char *op, const sp_kernel_args *a, const sp_tensor *x, int64_t *M,
                         int64_t *D) {
    int64_t axis = sp_attrs_get_int(a->attrs, "axis", -1);
    char sb[128];
    if (x->ndim == 0 || axis < -x->ndim || axis >= x->ndim)
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for shape %s", op, (long long)axis,
                        sp_shape_str(x->ndim, x->shape, sb, sizeof sb));
    int ax = (int)(axis < 0 ? axis + x->ndim : axis);
    *M = 1, *D = 1;
    for (int i = 0; i < ax; i++) *M *= x->shape[i];
    for (int i = ax; i < x->ndim; i++) *D *= x->shape[i];
    return SP_OK;
}

sp_status cuda_layer_norm(const sp_kernel_args *a) {
    const char *op = "layer_norm";
    sp_tensor *x = NULL, *g = NULL, *b = NULL;
    int64_t M = 0, D = 0;
    sp_status st = ln_axis(op, a, a->in[0], &M, &D);
    if (st) return st;
    if ((st = nm_need(op, "gamma", a->in[1], D)) || (st = nm_need(op, "beta", a->in[2], D)) ||
        (st = nm_need(op, "mean", a->out[1], M)) || (st = nm_need(op, "rstd", a->out[2], M)))
        return st;
    if (M == 0) return SP_OK;
    if ((st = cuda_nn_contig(a->in[0], &x)) || (st = cuda_nn_contig(a->in[1], &g)) ||
        (st = cuda_nn_contig(a->in[2], &b)))
        goto done;
    {
        double eps = sp_attrs_get_float(a->attrs, "epsilon", 1e-5);
        nm_vec gv = nm_vec_flat(g), bv = nm_vec_flat(b);
        nm_vec mv = nm_vec_flat(a->out[1]), rv = nm_vec_flat(a->out[2]);
        cudaStream_t s = cuda_stream();
        switch (x->dtype) {
            CUDA_NN_FLOAT_CASES(x->dtype, T, {
                if (g->dtype == x->dtype && b->dtype == x->dtype &&
                    ln_fwd_fast<T>(nm_ptr<T>(x), (T *)a->out[0]->buf->data, nm_ptr<T>(g),
                                   nm_ptr<T>(b), mv, rv, M, D, eps, s))
                    break;
                ln_fwd<T><<<nm_grid(M), nm_threads(D), 0, s>>>(
                    nm_ptr<T>(x), (T *)a->out[0]->buf->data, gv, bv, mv, rv, M, D, eps);
            })
        default: break;
        }
        st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(x);
    sp_tensor_release(g);
    sp_tensor_release(b);
    return st;
}

/* The operands of a backward launch. */
template <typename T> struct ln_bwd_io {
    const T *dy, *x, *g;
    T *dx;
    nm_vec mv, rv, dgv, dbv;
    int64_t M, D;
};

/* Launches ln_bwd_reg<T, NC> in the shape of c (grid of `blocks`, one
 * partial row of part per group). */
template <typename T, int NC>
static void ln_bwd_launch(const ln_conf &c, unsigned blocks, cudaStream_t s, const ln_bwd_io<T> &o,
                          int vec, typename cuda_nn_acc<T>::type *part) {
    int D = (int)o.D;
    const T *dy = o.dy, *x = o.x, *g = o.g;
    if (c.G == 32 && vec)
        ln_bwd_reg<T, NC, true, true><<<blocks, c.threads, 0, s>>>(dy, x, g, o.mv, o.rv, o.dx, o.M,
                                                                   D, part);
    else if (c.G == 32)
        ln_bwd_reg<T, NC, true, false><<<blocks, c.threads, 0, s>>>(dy, x, g, o.mv, o.rv, o.dx, o.M,
                                                                    D, part);
    else if (vec)
        ln_bwd_reg<T, NC, false, true><<<blocks, c.threads, 0, s>>>(dy, x, g, o.mv, o.rv, o.dx, o.M,
                                                                    D, part);
    else
        ln_bwd_reg<T, NC, false, false><<<blocks, c.threads, 0, s>>>(dy, x, g, o.mv, o.rv, o.dx,
                                                                     o.M, D, part);
}

/* The fused backward for T (gamma of x's dtype): *done = 1 when it ran
 * (or failed: then the status says why), 0 when the row is too long. */
template <typename T>
static sp_status ln_bwd_fast(const ln_bwd_io<T> &o, sp_device dev, cudaStream_t s, int *done) {
    typedef typename cuda_nn_acc<T>::type A;
    const int VW = RW_VW(T);
    /* the per-column accumulators of a lane: 2 * NC * VW values in registers */
    const int nc_max = sizeof(T) == 2 ? 2 : 4;
    ln_conf c;
    *done = 0;
    if (!ln_pick(o.D, VW, nc_max, nc_max, &c)) return SP_OK;
    *done = 1;
    /* blocks: enough to fill a large GPU, but each group at least
     * LN_BWD_MIN_ROWS rows, so the partials stay small next to the data */
    int64_t nb = (o.M + (int64_t)c.gpb * LN_BWD_MIN_ROWS - 1) / ((int64_t)c.gpb * LN_BWD_MIN_ROWS);
    if (nb > LN_FILL_THREADS / c.threads) nb = LN_FILL_THREADS / c.threads;
    if (nb < 1) nb = 1;
    int64_t ng = nb * c.gpb, psz = ng * 2 * o.D;
    sp_tensor *part = cuda_nn_new(dev, sizeof(A) == 8 ? SP_F64 : SP_F32, 1, &psz);
    if (!part) return sp_last_status();
    A *pp = (A *)part->buf->data;
    int vec = o.D % VW == 0 && rw_aligned(o.dy) && rw_aligned(o.x) && rw_aligned(o.g) &&
              rw_aligned(o.dx);
    switch (c.nc) {
    case 1: ln_bwd_launch<T, 1>(c, (unsigned)nb, s, o, vec, pp); break;
    case 2: ln_bwd_launch<T, 2>(c, (unsigned)nb, s, o, vec, pp); break;
    default:
        if constexpr (sizeof(T) != 2) ln_bwd_launch<T, 4>(c, (unsigned)nb, s, o, vec, pp);
        break;
    }
    ln_bwd_fin<A><<<(unsigned)((2 * o.D + 31) / 32), dim3(32, LN_FIN_Y), 0, s>>>(pp, ng, o.D, o.dgv,
                                                                                 o.dbv);
    sp_tensor_release(part);
    return SP_OK;
}

/* The plain backward: a block per row for dx, column chunks for dgamma
 * and dbeta (gamma of any float dtype). */
template <typename T>
static sp_status ln_bwd_plain(const ln_bwd_io<T> &o, nm_vec gv, sp_device dev, cudaStream_t s) {
    /* chunks of rows for dgamma/dbeta: a count fixed by M alone */
    int64_t M = o.M, D = o.D;
    int64_t nch = M < 64 ? (M > 0 ? M : 1) : 64, per = M > 0 ? (M + nch - 1) / nch : 0;
    int64_t psz = nch * 2 * D;
    sp_tensor *part = cuda_nn_new(dev, SP_F64, 1, &psz);
    if (!part) return sp_last_status();
    double *pp = (double *)part->buf->data;
    if (M > 0)
        ln_bwd_dx<T><<<nm_grid(M), nm_threads(D), 0, s>>>(o.dy, o.x, gv, o.mv, o.rv, o.dx, M, D);
    dim3 pgrid((unsigned)((D + 127) / 128), (unsigned)nch);
    ln_bwd_part<T><<<pgrid, 128, 0, s>>>(o.dy, o.x, o.mv, o.rv, M, D, per, pp);
    ln_bwd_total<<<cuda_nn_blocks(D, 256), 256, 0, s>>>(pp, nch, D, o.dgv, o.dbv);
    sp_tensor_release(part);
    return SP_OK;
}

sp_status cuda_layer_norm_backward(const sp_kernel_args *a) {
    const char *op = "layer_norm_backward";
    sp_tensor *dy = NULL, *x = NULL, *g = NULL, *mean = NULL, *rstd = NULL;
    int64_t M = 0, D = 0;
    sp_status st = ln_axis(op, a, a->in[1], &M, &D);
    if (st) return st;
    if ((st = nm_need(op, "dy", a->in[0], M * D)) || (st = nm_need(op, "gamma", a->in[2], D)) ||
        (st = nm_need(op, "mean", a->in[3], M)) || (st = nm_need(op, "rstd", a->in[4], M)) ||
        (st = nm_need(op, "dgamma", a->out[1], D)) || (st = nm_need(op, "dbeta", a->out[2], D)))
        return st;
    if (a->in[0]->dtype != a->in[1]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: dy is %s but x is %s", op,
                        sp_dtype_name(a->in[0]->dtype), sp_dtype_name(a->in[1]->dtype));
    if (D == 0) return SP_OK;
    if ((st = cuda_nn_contig(a->in[0], &dy)) || (st = cuda_nn_contig(a->in[1], &x)) ||
        (st = cuda_nn_contig(a->in[2], &g)) || (st = cuda_nn_contig(a->in[3], &mean)) ||
        (st = cuda_nn_contig(a->in[4], &rstd)))
        goto done;
    {
        nm_vec gv = nm_vec_flat(g);
        sp_device dev = a->out[1]->buf->device;
        cudaStream_t s = cuda_stream();
        switch (x->dtype) {
            CUDA_NN_FLOAT_CASES(x->dtype, T, {
                ln_bwd_io<T> o = {nm_ptr<T>(dy), nm_ptr<T>(x), nm_ptr<T>(g),
                                  (T *)a->out[0]->buf->data, nm_vec_flat(mean), nm_vec_flat(rstd),
                                  nm_vec_flat(a->out[1]), nm_vec_flat(a->out[2]), M, D};
                int fast = 0;
                if (g->dtype == x->dtype) st = ln_bwd_fast<T>(o, dev, s, &fast);
                if (!fast) st = ln_bwd_plain<T>(o, gv, dev, s);
            })
        default: break;
        }
        if (!st) st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(dy);
    sp_tensor_release(x);
    sp_tensor_release(g);
    sp_tensor_release(mean);
    sp_tensor_release(rstd);
    return st;
}
