/*
 * nn_util.cu -- the host helpers of nn_util.cuh: scratch tensors on the
 * kernel's device, the strided-to-contiguous copy the NN and library
 * kernels run their inputs through, and the device error flag of
 * data-dependent checks.
 *
 * The copy is element-size generic (1, 2, 4 or 8 bytes moved as one
 * integer), so one kernel per size serves every dtype: the families that
 * use it never convert while copying, they convert while computing.  Its
 * index arithmetic is the plain div/mod walk of the multi-index from the
 * last axis; these copies are the rare path (views), not the hot one.
 */
#include <string.h>

#include "backend/cuda/nn_util.cuh"

sp_device cuda_nn_device(const sp_kernel_args *a) {
    if (a->n_out > 0 && a->out[0] && a->out[0]->buf) return a->out[0]->buf->device;
    if (a->n_in > 0 && a->in[0] && a->in[0]->buf) return a->in[0]->buf->device;
    sp_device d = {SP_DEVICE_CUDA, 0};
    return d;
}

sp_tensor *cuda_nn_new(sp_device dev, sp_dtype dt, int ndim, const int64_t *shape) {
    return sp_tensor_new(dt, ndim, shape, dev);
}

typedef struct nn_gather_geom {
    int ndim;
    int64_t shape[SP_MAX_DIMS];
    int64_t strides[SP_MAX_DIMS];
} nn_gather_geom;

template <typename E>
__global__ void nn_gather_kernel(E *dst, const E *src, int64_t n, nn_gather_geom g) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t rem = i, off = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t k = rem % g.shape[d];
            rem /= g.shape[d];
            off += k * g.strides[d];
        }
        dst[i] = src[off];
    }
}

sp_status cuda_nn_gather(void *dst, const void *src, size_t es, int ndim, const int64_t *shape,
                         const int64_t *strides) {
    nn_gather_geom g;
    memset(&g, 0, sizeof g);
    int64_t n = 1;
    /* size-1 axes carry no index: drop them (fewer div/mods per element) */
    for (int d = 0; d < ndim; d++) {
        n *= shape[d];
        if (shape[d] == 1) continue;
        g.shape[g.ndim] = shape[d];
        g.strides[g.ndim] = strides[d];
        g.ndim++;
    }
    if (n == 0) return SP_OK;
    unsigned blocks = cuda_nn_blocks(n, 256);
    cudaStream_t s = cuda_stream();
    switch (es) {
    case 1: nn_gather_kernel<uint8_t><<<blocks, 256, 0, s>>>((uint8_t *)dst, (const uint8_t *)src, n, g); break;
    case 2: nn_gather_kernel<uint16_t><<<blocks, 256, 0, s>>>((uint16_t *)dst, (const uint16_t *)src, n, g); break;
    case 4: nn_gather_kernel<uint32_t><<<blocks, 256, 0, s>>>((uint32_t *)dst, (const uint32_t *)src, n, g); break;
    case 8: nn_gather_kernel<uint64_t><<<blocks, 256, 0, s>>>((uint64_t *)dst, (const uint64_t *)src, n, g); break;
    default: return sp_error(SP_ERR_INTERNAL, "gather: element size %zu", es);
    }
    return cuda_nn_launched("strided copy");
}

sp_status cuda_nn_contig(sp_tensor *t, sp_tensor **out) {
    *out = NULL;
    if (sp_tensor_is_contiguous(t)) {
        sp_tensor_retain(t);
        *out = t;
        return SP_OK;
    }
    sp_tensor *c = sp_tensor_new(t->dtype, t->ndim, t->shape, t->buf->device);
    if (!c) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    size_t es = sp_dtype_size(t->dtype);
    const char *src = (const char *)t->buf->data + t->offset * (int64_t)es;
    sp_status st = cuda_nn_gather(c->buf->data, src, es, t->ndim, t->shape, t->strides);
    if (st) {
        sp_tensor_release(c);
        return st;
    }
    *out = c;
    return SP_OK;
}

int cuda_nn_capturing(void) {
    cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(cuda_stream(), &cs) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return cs != cudaStreamCaptureStatusNone;
}

sp_tensor *cuda_nn_flag_new(sp_device dev) {
    int64_t one = 1;
    sp_tensor *f = sp_tensor_new(SP_I64, 1, &one, dev);
    if (!f) return NULL;
    cudaError_t e = cudaMemsetAsync(f->buf->data, 0xff, 8, cuda_stream());
    if (e != cudaSuccess) {
        cuda_check(e, "error flag");
        sp_tensor_release(f);
        return NULL;
    }
    return f;
}

sp_status cuda_nn_flag_read(sp_tensor *flag, unsigned long long *pos) {
    *pos = ~0ull;
    cudaStream_t s = cuda_stream();
    cudaError_t e = cudaMemcpyAsync(pos, flag->buf->data, sizeof *pos, cudaMemcpyDeviceToHost, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    return e == cudaSuccess ? SP_OK : cuda_check(e, "reading the error flag");
}

int64_t cuda_nn_index_at(const sp_tensor *t, int64_t i) {
    size_t es = sp_dtype_size(t->dtype);
    unsigned char b[8] = {0};
    const char *p = (const char *)t->buf->data + (t->offset + i) * (int64_t)es;
    cudaStream_t s = cuda_stream();
    if (cudaMemcpyAsync(b, p, es, cudaMemcpyDeviceToHost, s) != cudaSuccess ||
        cudaStreamSynchronize(s) != cudaSuccess) {
        cudaGetLastError();
        return -1;
    }
    switch (t->dtype) {
    case SP_I8: return (int8_t)b[0];
    case SP_U8: return b[0];
    case SP_I32: {
        int32_t v;
        memcpy(&v, b, 4);
        return v;
    }
    case SP_I64: {
        int64_t v;
        memcpy(&v, b, 8);
        return v;
    }
    default: return -1;
    }
}
