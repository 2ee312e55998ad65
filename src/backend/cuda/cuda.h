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
 * "<op>: index V at position A out of range [0, B)" (embedding's),
 * CUDA_ERR_LABEL "<op>: label V at position A out of range [0, B)" (the
 * cross-entropy kernels', raised in CUDA graphs by cuda_capture_flag). */
enum { CUDA_ERR_NONE = 0, CUDA_ERR_INDEX = 1, CUDA_ERR_POSITION = 2, CUDA_ERR_LABEL = 3 };
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

/* ---- added by CUDAGRAPH (graph.cu: whole-graph capture) ---- */

/* A recording in progress on one thread (backend.h: capture_begin/end).
 * While a thread has one, cuda_stream() on that thread is the capture's
 * stream, the allocator keeps the blocks the thread frees in `kept` (the
 * recorded kernels may use them; the graph gives them back when freed),
 * and cuda_err_check sets check_err instead of synchronizing.  `failed`
 * names why the recording cannot be used (a copy to the host was asked
 * for...). */
typedef struct cuda_capture {
    cudaStream_t stream;
    void **kept;
    int n_kept, cap_kept;
    int check_err; /* a kernel deferred a data-dependent error check */
    const char *failed;
} cuda_capture;
/* This thread's recording, or NULL; set by graph.cu.  Cannot fail. */
cuda_capture *cuda_capture_get(void);
void cuda_capture_set(cuda_capture *c);
/* The primitive of the last error cuda_err_check or a sync read on this
 * thread (-1 when none). */
int cuda_err_last_op(void);
/* During a capture: records a kernel into it that raises the device error
 * slot (CUDA_ERR_LABEL) when the cross-entropy flag `flag` (a device
 * uint64 holding the first bad position, UINT64_MAX for none) is set,
 * reading the label there from `labels` (contiguous int32/int64), so a
 * replay reports what the eager check would.  SP_OK or a launch error. */
sp_status cuda_capture_flag(const void *flag, const sp_tensor *labels, int op, long long C);
/* The backend table's capture functions (backend.h). */
sp_status cuda_graph_capture_begin(sp_backend *be);
sp_status cuda_graph_capture_end(sp_backend *be, int keep, void **graph, char *why, size_t why_n);
sp_status cuda_graph_launch(sp_backend *be, void *graph, int n_in, const sp_backend_copy *in,
                            int n_out, const sp_backend_copy *out, int flags, int *err_op);
void cuda_graph_free(sp_backend *be, void *graph);
/* Gives a block back to the allocator's cache (for blocks a capture kept). */
void cuda_block_free(void *p);

/* ---- added by STEP (events.cu: backend.h's timing events) ---- */
void *cuda_event_new(sp_backend *be);
sp_status cuda_event_record(sp_backend *be, void *ev);
sp_status cuda_event_elapsed(sp_backend *be, void *start, void *end, double *ms);
void cuda_event_free(sp_backend *be, void *ev);

#ifdef __cplusplus
}
#endif
#endif
