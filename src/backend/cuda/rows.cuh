/*
 * rows.cuh -- the single-read row machinery of the fused row kernels
 * (softmax.cu: softmax, log_softmax, cross-entropy and its backward;
 * layer_norm.cu: layer norm rows too long for its registers): a row of K
 * contiguous elements handled by one warp (short rows, several rows per
 * block) or one whole block (long rows), loaded with 16-byte vectors and
 * kept in shared memory, so the kernel reads global memory once however
 * many passes it makes over the row (statistics, then the output).
 *
 * Chunks.  A row is cut into chunks of RW_VW(T) = 16 / sizeof(T) elements
 * (4 floats, 8 halves); lane `l` of a group of G threads owns chunks
 * l, l + G, l + 2G, ...  Every pass walks its chunks in that order, four
 * at a time (all four loads issued before any use: bytes in flight).  The
 * assignment depends only on K, the dtype and G -- never on alignment --
 * so the vector path (one 16-byte load per chunk, taken when the row
 * starts are 16-byte aligned: aligned base and K a multiple of the chunk)
 * and the scalar path (the same chunk element by element) add the same
 * numbers in the same order: the same bits whichever path a call takes
 * (an output at an odd offset in an arena gets the bits a fresh one
 * gets).  Elements past K in the last chunk read as a pad value the
 * caller picks (-inf for a max, 0 for a sum); passes where a pad would
 * change the result test `k < K` themselves.
 *
 * Cache.  When the group's rows fit (rw_cache_floats(K) floats per group,
 * at most RW_CACHE_BYTES per block) each lane stores its chunks, as
 * float, in the group's slice of dynamic shared memory during the first
 * pass and later passes read them from there.  A lane reads back only
 * what it stored itself, so the cache needs no barrier; rows too long for
 * it re-read global memory (L2) in the later passes, same order, same bits.
 *
 * Group size rw_config picks from K and the dtype alone (so it is part of
 * the result's definition, not of the machine): a warp per row up to 256
 * chunks, else a block of 128..512 threads with about four chunks each
 * (kernels declare __launch_bounds__(RW_MAX_THREADS)).
 */
#ifndef SPORE_CUDA_ROWS_CUH
#define SPORE_CUDA_ROWS_CUH

#include "backend/cuda/nn_util.cuh"

/* the default limit of shared memory per block is 48 KiB, static and dynamic
 * together: the kernels keep 1 KiB for their static reduction scratch */
#define RW_CACHE_BYTES (47 * 1024)
#define RW_UNROLL 4
#define RW_MAX_THREADS 512

template <typename T> struct rw_vw { enum { N = 16 / (int)sizeof(T) }; };
#define RW_VW(T) ((int)rw_vw<T>::N)

/* Floats of cache one row of K needs (whole chunks). */
__host__ __device__ static inline int64_t rw_cache_floats(int64_t K, int vw) { return (K + vw - 1) / vw * vw; }

/* How a launch covers rows: `warp` (one warp per row, `threads` / 32 rows
 * per block) or one block of `threads` per row; `cache` whether rows stay
 * in shared memory; `smem` its bytes per block. */
typedef struct rw_conf {
    int warp, threads, cache;
    size_t smem;
    unsigned blocks;
} rw_conf;

/* The launch for `rows` rows of K elements of a vw-element chunk, with
 * `per_elem` cached floats per element (1, or 2 for kernels that cache two
 * arrays).  Cannot fail. */
static inline rw_conf rw_config(int64_t rows, int64_t K, int vw, int per_elem) {
    rw_conf c;
    int64_t chunks = (K + vw - 1) / vw;
    c.warp = chunks <= 256;
    if (c.warp) {
        c.threads = 128;
    } else {
        int t = 128;
        while (t < RW_MAX_THREADS && (int64_t)t * 4 < chunks) t <<= 1;
        c.threads = t;
    }
    int64_t per_block = c.warp ? c.threads / 32 : 1;
    int64_t bytes = per_block * rw_cache_floats(K, vw) * per_elem * (int64_t)sizeof(float);
    c.cache = bytes <= RW_CACHE_BYTES;
    c.smem = c.cache ? (size_t)bytes : 0;
    int64_t b = (rows + per_block - 1) / per_block;
    if (b < 1) b = 1;
    if (b > (1 << 30)) b = 1 << 30;
    c.blocks = (unsigned)b;
    return c;
}

/* Whether pointer p (in bytes) is 16-byte aligned. */
static inline int rw_aligned(const void *p) { return ((uintptr_t)p & 15u) == 0; }

/* ---- device side ---- */

/* The calling thread's place: its lane in the group, the group size, the
 * first row and the row stride of the grid loop, and the group's cache. */
struct rw_place {
    int lane, G;
    int64_t row0, rstep;
    float *cache; /* the group's slice, NULL when not cached */
};

template <bool WARP>
__device__ __forceinline__ rw_place rw_where(int cached, int64_t K, int vw) {
    extern __shared__ float rw_smem[];
    rw_place p;
    int gpb = WARP ? (int)(blockDim.x >> 5) : 1, gid = WARP ? (int)(threadIdx.x >> 5) : 0;
    p.lane = WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    p.G = WARP ? 32 : (int)blockDim.x;
    p.row0 = (int64_t)blockIdx.x * gpb + gid;
    p.rstep = (int64_t)gridDim.x * gpb;
    p.cache = cached ? rw_smem + (int64_t)gid * rw_cache_floats(K, vw) : NULL;
    return p;
}

/* Sum / max over the group (a warp or the block); every thread gets the
 * result.  `sh`: 32 slots of shared memory (block groups only). */
template <bool WARP, typename A> __device__ __forceinline__ A rw_sum(A v, A *sh) {
    if (WARP) return cuda_nn_warp_sum(v);
    return cuda_nn_block_sum(v, sh);
}
template <bool WARP> __device__ __forceinline__ float rw_max(float v, float *sh) {
    if (WARP) return cuda_nn_warp_max(v);
    return cuda_nn_block_max(v, sh);
}

/* Chunk at element k0 of row p (K elements) into f, as float: one 16-byte
 * load when vec (then k0 + VW <= K), else element by element with `pad`
 * past K. */
template <typename T>
__device__ __forceinline__ void rw_load(const T *__restrict__ p, int64_t k0, int64_t K, bool vec,
                                        float pad, float *f) {
    const int VW = RW_VW(T);
    if (vec) {
        uint4 u = __ldg(reinterpret_cast<const uint4 *>(p + k0));
        const T *e = reinterpret_cast<const T *>(&u);
#pragma unroll
        for (int i = 0; i < VW; i++) f[i] = cuda_nn_f(e[i]);
    } else {
#pragma unroll
        for (int i = 0; i < VW; i++) f[i] = k0 + i < K ? cuda_nn_f(p[k0 + i]) : pad;
    }
}

/* Stores f (rounded to T) as the chunk at element k0 of row p. */
template <typename T>
__device__ __forceinline__ void rw_store(T *__restrict__ p, int64_t k0, int64_t K, bool vec,
                                         const float *f) {
    const int VW = RW_VW(T);
    if (vec) {
        uint4 u;
        T *e = reinterpret_cast<T *>(&u);
#pragma unroll
        for (int i = 0; i < VW; i++) e[i] = cuda_nn_tof<T>(f[i]);
        *reinterpret_cast<uint4 *>(p + k0) = u;
    } else {
#pragma unroll
        for (int i = 0; i < VW; i++)
            if (k0 + i < K) p[k0 + i] = cuda_nn_tof<T>(f[i]);
    }
}

/* The cache's copy of a chunk (16-byte aligned: k0 is a multiple of VW,
 * a multiple of 4). */
template <int VW> __device__ __forceinline__ void rw_cput(float *c, int64_t k0, const float *f) {
#pragma unroll
    for (int i = 0; i < VW; i += 4)
        *reinterpret_cast<float4 *>(c + k0 + i) = make_float4(f[i], f[i + 1], f[i + 2], f[i + 3]);
}
template <int VW> __device__ __forceinline__ void rw_cget(const float *c, int64_t k0, float *f) {
#pragma unroll
    for (int i = 0; i < VW; i += 4) {
        float4 v = *reinterpret_cast<const float4 *>(c + k0 + i);
        f[i] = v.x, f[i + 1] = v.y, f[i + 2] = v.z, f[i + 3] = v.w;
    }
}

/* Runs fn(k0, f) over the lane's chunks of row xr in the fixed order,
 * RW_UNROLL chunks per step with their loads first.  When `fill`, the
 * chunks come from global memory and go into the cache (if any); else
 * they come from the cache when there is one.  Chunks wholly past K are
 * skipped. */
template <typename T, typename F>
__device__ __forceinline__ void rw_pass(const rw_place &p, const T *__restrict__ xr, int64_t K,
                                        bool vec, float pad, bool fill, F fn) {
    const int VW = RW_VW(T);
    for (int64_t c0 = p.lane; c0 * VW < K; c0 += (int64_t)RW_UNROLL * p.G) {
        float f[RW_UNROLL][VW];
#pragma unroll
        for (int u = 0; u < RW_UNROLL; u++) {
            int64_t k0 = (c0 + (int64_t)u * p.G) * VW;
            if (k0 < K) {
                if (p.cache && !fill)
                    rw_cget<VW>(p.cache, k0, f[u]);
                else
                    rw_load<T>(xr, k0, K, vec, pad, f[u]);
            }
        }
#pragma unroll
        for (int u = 0; u < RW_UNROLL; u++) {
            int64_t k0 = (c0 + (int64_t)u * p.G) * VW;
            if (k0 < K) {
                if (fill && p.cache) rw_cput<VW>(p.cache, k0, f[u]);
                fn(k0, f[u]);
            }
        }
    }
}

#endif
