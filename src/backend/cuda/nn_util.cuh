/*
 * nn_util.cuh -- what the CUDA kernels of the library and neural-network
 * families (matmul.cu, conv.cu, pool.cu, softmax.cu, norm.cu, nn.cu,
 * optim.cu) share: element conversions, dtype dispatch, contiguous copies
 * of strided inputs, device scratch tensors and the checked read of a
 * data-dependent error flag.
 *
 * The kernels of these families do row and window arithmetic, so instead
 * of walking arbitrary strides in every inner loop they first make their
 * data inputs contiguous (cuda_nn_contig hands back the tensor itself,
 * retained, when it already is, so the common case costs nothing) and then
 * index plainly.  float16 and bfloat16 are loaded into float, computed in
 * float (sums in float or double, as each file says) and rounded once on
 * the way out; float64 stays double throughout.
 *
 * Scratch memory comes from sp_tensor_new on the kernel's device, that is
 * from the backend's caching stream-ordered allocator: a scratch tensor
 * released right after the launches that use it is safe, because its
 * memory is reused only by work queued later on the same stream.
 *
 * Data-dependent errors (an index or label out of range) are found on the
 * device: a kernel lowers a flag with atomicMin to the first bad position,
 * and cuda_nn_flag_read copies it back, which synchronizes the stream.
 * While the stream is being captured into a CUDA graph nothing may
 * synchronize, so there the check is skipped (the kernels then skip or
 * zero the bad entries instead of reading out of bounds); under Spore's own
 * capture (graph.cu) the cross-entropy kernels record cuda_capture_flag
 * instead, so each replay reports the error through the device slot.
 */
#ifndef SPORE_CUDA_NN_UTIL_CUH
#define SPORE_CUDA_NN_UTIL_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "backend/cuda/cuda.h"

/* ---- element conversions (device) ---- */

__device__ __forceinline__ float cuda_nn_f(float v) { return v; }
__device__ __forceinline__ double cuda_nn_f(double v) { return v; }
__device__ __forceinline__ float cuda_nn_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float cuda_nn_f(__nv_bfloat16 v) { return __bfloat162float(v); }

/* Rounds a float or double into T (round to nearest even, as the CPU). */
template <typename T> __device__ __forceinline__ T cuda_nn_to(double v);
template <> __device__ __forceinline__ float cuda_nn_to<float>(double v) { return (float)v; }
template <> __device__ __forceinline__ double cuda_nn_to<double>(double v) { return v; }
template <> __device__ __forceinline__ __half cuda_nn_to<__half>(double v) {
    return __float2half_rn((float)v);
}
template <> __device__ __forceinline__ __nv_bfloat16 cuda_nn_to<__nv_bfloat16>(double v) {
    return __float2bfloat16_rn((float)v);
}
/* Rounds a value of the compute type (float or double, picked by overload)
 * into T: float values go to the 16-bit types without a detour through
 * double, double values keep their precision for a double T. */
template <typename T> __device__ __forceinline__ T cuda_nn_tof(double v) { return cuda_nn_to<T>(v); }
template <typename T> __device__ __forceinline__ T cuda_nn_tof(float v) { return cuda_nn_to<T>(v); }
template <> __device__ __forceinline__ __half cuda_nn_tof<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 cuda_nn_tof<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

/* The compute type of a storage type: double for double, float otherwise. */
template <typename T> struct cuda_nn_acc { typedef float type; };
template <> struct cuda_nn_acc<double> { typedef double type; };

/* Element i of a contiguous array of any dtype, as a double (for small
 * side inputs: gamma, running stats, lr, labels).  Cannot fail. */
__device__ __forceinline__ double cuda_nn_ld(const void *p, int dt, int64_t i) {
    switch (dt) {
    case SP_F32: return ((const float *)p)[i];
    case SP_F64: return ((const double *)p)[i];
    case SP_F16: return __half2float(((const __half *)p)[i]);
    case SP_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case SP_I8: return ((const int8_t *)p)[i];
    case SP_U8: return ((const uint8_t *)p)[i];
    case SP_I32: return ((const int32_t *)p)[i];
    case SP_I64: return (double)((const int64_t *)p)[i];
    case SP_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return 0;
    }
}

/* Element i of a contiguous integer array as int64 (indices, labels). */
__device__ __forceinline__ int64_t cuda_nn_ldi(const void *p, int dt, int64_t i) {
    switch (dt) {
    case SP_I8: return ((const int8_t *)p)[i];
    case SP_U8: return ((const uint8_t *)p)[i];
    case SP_I32: return ((const int32_t *)p)[i];
    case SP_I64: return ((const int64_t *)p)[i];
    case SP_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return -1;
    }
}

/* Stores v into element i of a contiguous float array of dtype dt. */
__device__ __forceinline__ void cuda_nn_st(void *p, int dt, int64_t i, double v) {
    switch (dt) {
    case SP_F32: ((float *)p)[i] = (float)v; break;
    case SP_F64: ((double *)p)[i] = v; break;
    case SP_F16: ((__half *)p)[i] = __float2half_rn((float)v); break;
    case SP_BF16: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    default: break;
    }
}

/* ---- warp and block reductions (fixed order: deterministic) ---- */

template <typename A> __device__ __forceinline__ A cuda_nn_warp_sum(A v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* max that skips NaN (fmax's rule): a row's NaN shows up later, in the sum. */
template <typename A> __device__ __forceinline__ A cuda_nn_warp_max(A v) {
    for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result.  `sh` holds 32 A's of shared memory; the call
 * ends with a barrier, so sh may be reused right after. */
template <typename A> __device__ __forceinline__ A cuda_nn_block_sum(A v, A *sh) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cuda_nn_warp_sum(v);
    if (nw == 1) return v;
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    A t = lane < nw ? sh[lane] : (A)0;
    t = cuda_nn_warp_sum(t);
    __syncthreads();
    return t;
}

template <typename A> __device__ __forceinline__ A cuda_nn_block_max(A v, A *sh) {
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cuda_nn_warp_max(v);
    if (nw == 1) return v;
    __syncthreads();
    if (lane == 0) sh[wid] = v;
    __syncthreads();
    A t = lane < nw ? sh[lane] : (A)-INFINITY;
    t = cuda_nn_warp_max(t);
    __syncthreads();
    return t;
}

/* ---- host side ---- */

/* Dispatches on a float dtype: runs the body (the macro's last arguments)
 * with T typedef'd to the storage type; other dtypes fall to the default
 * branch of the caller's switch. */
#define CUDA_NN_FLOAT_CASES(dt, T, ...)                                                            \
    case SP_F32: {                                                                                 \
        typedef float T;                                                                           \
        __VA_ARGS__;                                                                                  \
    } break;                                                                                       \
    case SP_F64: {                                                                                 \
        typedef double T;                                                                          \
        __VA_ARGS__;                                                                                  \
    } break;                                                                                       \
    case SP_F16: {                                                                                 \
        typedef __half T;                                                                          \
        __VA_ARGS__;                                                                                  \
    } break;                                                                                       \
    case SP_BF16: {                                                                                \
        typedef __nv_bfloat16 T;                                                                   \
        __VA_ARGS__;                                                                                  \
    } break;

/* Blocks of `threads` covering n items, capped so the grid stays legal
 * (kernels loop with a grid stride). */
static inline unsigned cuda_nn_blocks(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65535LL * 32) b = 65535LL * 32;
    return (unsigned)b;
}

/* The device a kernel runs on: that of its first output, else input 0. */
sp_device cuda_nn_device(const sp_kernel_args *a);

/* A new contiguous scratch tensor on dev; NULL + error when out of memory. */
sp_tensor *cuda_nn_new(sp_device dev, sp_dtype dt, int ndim, const int64_t *shape);

/* t itself (retained) when contiguous, else a contiguous copy on t's
 * device.  The caller releases *out.  Fails only for lack of memory. */
sp_status cuda_nn_contig(sp_tensor *t, sp_tensor **out);

/* Copies the strided array src (ndim <= SP_MAX_DIMS dims of `shape`,
 * strides in elements, any sign, 0 allowed) of elements of `es` bytes
 * into contiguous dst, on the stream.  Cannot fail except for a launch
 * error, which it returns. */
sp_status cuda_nn_gather(void *dst, const void *src, size_t es, int ndim, const int64_t *shape,
                         const int64_t *strides);

/* Nonzero while cuda_stream() is being captured into a graph. */
int cuda_nn_capturing(void);

/* The error flag of data-dependent checks: a device uint64 initialized to
 * UINT64_MAX on the stream.  cuda_nn_flag_new returns it (NULL + error when
 * out of memory); kernels atomicMin a bad position into it;
 * cuda_nn_flag_read synchronizes the stream and returns the flag's value
 * (UINT64_MAX: no error) in *pos, or an error if the copy failed.  The
 * caller releases the flag tensor. */
sp_tensor *cuda_nn_flag_new(sp_device dev);
sp_status cuda_nn_flag_read(sp_tensor *flag, unsigned long long *pos);

/* Reads element i of a contiguous int tensor on the device (for the text
 * of an error message); synchronizes.  Returns -1 when it cannot. */
int64_t cuda_nn_index_at(const sp_tensor *t, int64_t i);

/* Checks the last launch (cudaGetLastError) and names `what` on error. */
static inline sp_status cuda_nn_launched(const char *what) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? SP_OK : cuda_check(e, what);
}

#endif
