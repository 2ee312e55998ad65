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

/* ---- added by CUDA-A (cuda_backend.c) ---- */

/* Data-dependent errors found on the device.  A kernel that finds one
 * claims the slot with atomicCAS(&slot->flag, 0, 1) and, if it won, fills in
 * the rest; the host reads it after a synchronization.  `kind` picks the
 * message: CUDA_ERR_INDEX "<op>: index V out of range for axis A of size B"
 * (the CPU's gather/take_along_axis/scatter_add wording), CUDA_ERR_POSITION
 * "<op>: index V at position A out of range [0, B)" (embedding's). */
enum { CUDA_ERR_NONE = 0, CUDA_ERR_INDEX = 1, CUDA_ERR_POSITION = 2 };
typedef struct cuda_err_info {
    int flag;       /* 0 = clear; set once by atomicCAS */
    int kind;       /* CUDA_ERR_* */
    int op;         /* sp_op of the kernel */
    int pad;
    long long v, a, b;
} cuda_err_info;
/* The device address of the slot (zeroed at load).  Cannot fail. */
cuda_err_info *cuda_err_slot(void);
/* Reports an error the kernels left in the slot, clearing it.  When the
 * stream is being captured into a graph it returns SP_OK without waiting
 * (the slot is read at the next sync); otherwise it synchronizes the stream
 * (so call it only after kernels that can fail on data).  Returns SP_OK or
 * SP_ERR_ARG with the message of the kernel's kind. */
sp_status cuda_err_check(void);
/* A small device scratch area that lives as long as the library (256 bytes,
 * 256-byte aligned), for kernels that need a flag or a counter.  Cannot
 * fail. */
void *cuda_scratch(void);
/* Bytes the caching allocator has handed out and not had back, and bytes it
 * keeps cached for reuse. */
long long cuda_live_bytes(void);
long long cuda_cached_bytes(void);
/* Device scratch memory from the caching allocator for a kernel's temporary
 * use (stream-ordered: freeing right after enqueuing work is safe).  NULL
 * and an error on failure; cuda_tmp_free(NULL) is fine. */
void *cuda_tmp_alloc(size_t nbytes);
void cuda_tmp_free(void *p);
/* The number of SMs of the device (for grid sizing). */
int cuda_sm_count(void);

#ifdef __cplusplus
}
#endif
#endif
