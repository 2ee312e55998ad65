/*
 * graph.cu -- whole-graph capture on the CUDA backend: a lowered program's
 * kernels recorded once into a CUDA graph and replayed with one launch
 * (backend.h: capture_begin, capture_end, graph_launch, graph_free; the
 * policy -- when to capture, what to copy -- is src/runtime/exec_graph.c).
 *
 * Recording.  capture_begin gives the calling thread a capture of its own
 * (cuda_capture in cuda.h): a fresh stream in capture mode "relaxed", which
 * cuda_stream() returns on that thread only.  Every kernel, cuBLASLt and
 * cuDNN call and device-to-device copy the thread makes goes there and is
 * recorded, not run; other threads keep the main stream and run normally
 * (they do not leak into the graph, as they would if the main stream itself
 * were captured).  Relaxed mode lets the allocator call cudaMalloc on a
 * cache miss; everything that waits for the device cannot be recorded and
 * is made to fail cleanly instead: host copies (cuda_backend.c refuses them
 * and marks the capture failed), a stream synchronize on the capture stream
 * (CUDA invalidates the capture; cudaStreamEndCapture says so).  A failed
 * recording is discarded and the caller runs the program normally.
 *
 * Memory.  The recorded kernels hold raw device addresses.  Blocks the
 * capturing thread frees (kernel scratch, workspaces, contiguous copies)
 * are therefore kept by the capture (cuda_free_impl) and then by the graph,
 * and go back to the allocator only when the graph is freed; everything
 * else the graph touches (its inputs, outputs and arena) is owned by the
 * caller for as long as the graph lives.  A graph is replayed on the main
 * stream, so the allocator's stream-order argument holds unchanged.
 *
 * Replays and errors.  graph_launch copies the caller's inputs into the
 * graph's input buffers, launches the graph and copies results out, all in
 * one stream order, with one kernel per batch of copies (argument-passed
 * address lists, not one cudaMemcpyAsync each).  Kernels that find bad data
 * (an index out of range) raise the device error slot; in eager mode their
 * check synchronizes at once, in a capture cuda_err_check only notes that
 * the graph needs a check (check_err) and the cross-entropy kernels record
 * cuda_capture_flag.  A replay of such a graph skips the copies out when
 * the slot is raised (so a failed step writes nothing back into the
 * caller's tensors) and synchronizes to report the error, word for word
 * the eager message; a graph without such kernels never waits.  Under
 * SP_GRAPH_NOWAIT it does not wait either: the slot stays raised, every
 * later replay skips its copies out too, and the next copy to the host or
 * sync reports the error (as PyTorch reports a device-side assert) -- a
 * value read on the host is never a wrong one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"

typedef struct cuda_graph {
    cudaGraphExec_t exec;
    void **kept; /* allocator blocks the recorded kernels use */
    int n_kept;
    int check_err;
} cuda_graph;

/* ---- batched device copies -------------------------------------------------- */

#define CG_MAX 64 /* copies per launch: 64 * 24 bytes of arguments */

typedef struct cg_batch {
    const int *skip; /* when non-NULL and *skip != 0, copy nothing */
    int n;
    char *dst[CG_MAX];
    const char *src[CG_MAX];
    unsigned long long nbytes[CG_MAX];
} cg_batch;

/* blockIdx.y picks the copy; the x blocks stride over its bytes, 16 at a
 * time when both ends allow it. */
__global__ void cg_copy_kernel(cg_batch b) {
    if (b.skip && *(volatile const int *)b.skip) return;
    int e = blockIdx.y;
    char *d = b.dst[e];
    const char *s = b.src[e];
    unsigned long long n = b.nbytes[e], i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x,
                       step = (unsigned long long)gridDim.x * blockDim.x, head = 0;
    uintptr_t al = (uintptr_t)d | (uintptr_t)s;
    if ((al & 15) == 0) {
        head = n / 16 * 16;
        for (unsigned long long k = i; k < n / 16; k += step) ((uint4 *)d)[k] = ((const uint4 *)s)[k];
    } else if ((al & 3) == 0) {
        head = n / 4 * 4;
        for (unsigned long long k = i; k < n / 4; k += step)
            ((uint32_t *)d)[k] = ((const uint32_t *)s)[k];
    }
    for (unsigned long long k = head + i; k < n; k += step) d[k] = s[k];
}

static sp_status cg_copies(int n, const sp_backend_copy *c, const int *skip, cudaStream_t s) {
    for (int i0 = 0; i0 < n; i0 += CG_MAX) {
        cg_batch b;
        memset(&b, 0, sizeof b);
        b.skip = skip;
        unsigned long long most = 0;
        for (int i = i0; i < n && b.n < CG_MAX; i++) {
            b.dst[b.n] = (char *)c[i].dst;
            b.src[b.n] = (const char *)c[i].src;
            b.nbytes[b.n] = c[i].nbytes;
            if (c[i].nbytes > most) most = c[i].nbytes;
            b.n++;
        }
        if (most == 0) continue;
        unsigned long long per = 256ull * 16 * 4; /* bytes a block moves per pass, roughly */
        unsigned blocks = (unsigned)((most + per - 1) / per);
        if (blocks > 1024) blocks = 1024;
        cg_copy_kernel<<<dim3(blocks, (unsigned)b.n), 256, 0, s>>>(b);
        sp_status st = cuda_check(cudaGetLastError(), "cuda graph: copies");
        if (st) return st;
    }
    return SP_OK;
}

/* ---- the cross-entropy label check, recorded ------------------------------- */

__global__ void cg_flag_kernel(const unsigned long long *flag, const char *labels, int dtype, int op,
                               long long C, cuda_err_info *slot) {
    unsigned long long pos = *flag;
    if (pos == ~0ull) return;
    long long v;
    switch (dtype) {
    case SP_I8: v = ((const int8_t *)labels)[pos]; break;
    case SP_U8: v = ((const uint8_t *)labels)[pos]; break;
    case SP_I32: v = ((const int32_t *)labels)[pos]; break;
    case SP_I64: v = ((const long long *)labels)[pos]; break;
    default: v = -1; break;
    }
    if (atomicCAS(&slot->flag, 0, 1) == 0) {
        slot->kind = CUDA_ERR_LABEL;
        slot->op = op;
        slot->v = v;
        slot->a = (long long)pos;
        slot->b = C;
    }
}

sp_status cuda_capture_flag(const void *flag, const sp_tensor *labels, int op, long long C) {
    cuda_capture *c = cuda_capture_get();
    if (!c) return SP_OK;
    c->check_err = 1;
    const char *lab = (const char *)labels->buf->data + labels->offset * (int64_t)sp_dtype_size(labels->dtype);
    cg_flag_kernel<<<1, 1, 0, c->stream>>>((const unsigned long long *)flag, lab, (int)labels->dtype, op,
                                           C, cuda_err_slot());
    return cuda_check(cudaGetLastError(), "cross-entropy label check");
}

/* ---- capture ------------------------------------------------------------------ */

sp_status cuda_graph_capture_begin(sp_backend *be) {
    (void)be;
    if (cuda_capture_get())
        return sp_error(SP_ERR_INTERNAL, "cuda graph: this thread is already capturing");
    cuda_capture *c = (cuda_capture *)calloc(1, sizeof *c);
    if (!c) return sp_error(SP_ERR_NOMEM, "cuda graph: out of memory");
    sp_status st = cuda_check(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking),
                              "cuda graph: capture stream");
    if (!st)
        st = cuda_check(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeRelaxed),
                        "cuda graph: begin capture");
    if (st) {
        if (c->stream) cudaStreamDestroy(c->stream);
        free(c);
        return st;
    }
    cuda_capture_set(c);
    return SP_OK;
}

static void cg_give_back(void **kept, int n) {
    for (int i = 0; i < n; i++) cuda_block_free(kept[i]);
    free(kept);
}

sp_status cuda_graph_capture_end(sp_backend *be, int keep, void **graph, char *why, size_t why_n) {
    (void)be;
    char buf[256];
    *graph = NULL;
    if (why && why_n) why[0] = '\0';
    cuda_capture *c = cuda_capture_get();
    if (!c) return sp_error(SP_ERR_INTERNAL, "cuda graph: no capture in progress on this thread");
    cuda_capture_set(NULL);
    cudaGraph_t g = NULL;
    cudaGraphExec_t x = NULL;
    const char *fail = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    if (!keep) {
        fail = "discarded";
    } else if (c->failed) {
        fail = c->failed;
    } else if (e != cudaSuccess || !g) {
        snprintf(buf, sizeof buf,
                 "the capture was invalidated (%s: a kernel waited for the device)",
                 cudaGetErrorName(e));
        fail = buf;
    } else if ((e = cudaGraphInstantiate(&x, g, 0)) != cudaSuccess) {
        snprintf(buf, sizeof buf, "cudaGraphInstantiate failed (%s)", cudaGetErrorName(e));
        fail = buf;
        x = NULL;
    }
    (void)cudaGetLastError(); /* capture errors are not sticky; clear them */
    if (g) cudaGraphDestroy(g);
    cudaStreamDestroy(c->stream);
    cuda_graph *r = NULL;
    if (!fail && !(r = (cuda_graph *)calloc(1, sizeof *r))) fail = "out of memory";
    if (fail) {
        if (x) cudaGraphExecDestroy(x);
        /* nothing recorded will ever run: the blocks are free again */
        cg_give_back(c->kept, c->n_kept);
        free(c);
        if (!keep) return SP_OK;
        if (why && why_n) snprintf(why, why_n, "%s", fail);
        return sp_error(SP_ERR_UNSUPPORTED, "cuda graph: %s", fail);
    }
    r->exec = x;
    r->kept = c->kept;
    r->n_kept = c->n_kept;
    r->check_err = c->check_err;
    free(c);
    (void)cudaGraphUpload(x, cuda_stream()); /* an early start on the first replay's setup */
    (void)cudaGetLastError();
    *graph = r;
    return SP_OK;
}

/* ---- replay ---------------------------------------------------------------------- */

sp_status cuda_graph_launch(sp_backend *be, void *graph, int n_in, const sp_backend_copy *in,
                            int n_out, const sp_backend_copy *out, int flags, int *err_op) {
    if (err_op) *err_op = -1;
    cuda_graph *g = (cuda_graph *)graph;
    if (!g) return sp_error(SP_ERR_ARG, "cuda graph: NULL graph");
    if (cuda_capture_get()) return sp_error(SP_ERR_UNSUPPORTED, "cuda graph: replay during a capture");
    cudaStream_t s = cuda_stream();
    sp_status st = cg_copies(n_in, in, NULL, s);
    if (!st) st = cuda_check(cudaGraphLaunch(g->exec, s), "cuda graph: launch");
    /* a graph whose kernels cannot fail on data never waits for the device */
    if (!st) st = cg_copies(n_out, out, g->check_err ? &cuda_err_slot()->flag : NULL, s);
    if (!st && g->check_err && !(flags & SP_GRAPH_NOWAIT)) {
        st = be->sync(be); /* reads the slot: the message of the eager check */
        if (st && err_op) *err_op = cuda_err_last_op();
    }
    return st;
}

void cuda_graph_free(sp_backend *be, void *graph) {
    (void)be;
    cuda_graph *g = (cuda_graph *)graph;
    if (!g) return;
    /* a replay still queued finishes first (CUDA frees the executable
     * after it); the blocks are reused only by work queued behind it */
    cudaGraphExecDestroy(g->exec);
    cg_give_back(g->kept, g->n_kept);
    free(g);
}
