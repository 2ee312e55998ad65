/*
 * cuda.h -- the CUDA backend's kernels and shared state (libspore_cuda.so).
 *
 * The CUDA backend is its own shared library, built whenever a CUDA toolkit
 * is found and loaded at run time by libspore (backend.c dlopens it on the
 * first request for a CUDA device), so one build of Spore runs with or
 * without a GPU.  It links libspore.so for the core (errors, tensors, the
 * registry, inference) and registers itself with sp_backend_register and
 * the device allocator hook of core/device.h.
 *
 * Every primitive of ops.def has a kernel cuda_<name>, for every dtype the
 * CPU kernel claims, in the file of its family (elementwise.cu, reduce.cu,
 * shape.cu, index.cu, matmul.cu (cuBLASLt), conv.cu (cuDNN), pool.cu,
 * softmax.cu, norm.cu, nn.cu, optim.cu, random.cu, sort.cu).  The same
 * kernel contract as the CPU's (src/backend/backend.h): outputs arrive
 * allocated and contiguous on the device; inputs may be strided views.
 * Kernels are launched on the backend's stream (cuda_stream()) and never
 * synchronize unless they must read a result on the host (data-dependent
 * errors such as an index out of range are reported through a device flag
 * read at the next synchronization; document where a kernel does this).
 */
#ifndef SPORE_CUDA_H
#define SPORE_CUDA_H

#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "backend/backend.h"
#include "ops/ops.h"

#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) \
    sp_status cuda_##name(const sp_kernel_args *a);
#include "ops/ops.def"
#undef SP_OP

/* The stream every kernel is launched on. */
cudaStream_t cuda_stream(void);
/* Turns a CUDA error into sp_status with a message naming `what`. */
sp_status cuda_check(cudaError_t e, const char *what);

#ifdef __cplusplus
}
#endif
#endif
