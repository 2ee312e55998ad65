/*
 * bench_gpu.c -- Spore's side of the GPU benchmark: GEMM at n x n x n
 * (bfloat16, float32 through TF32, plain float32, float16) and a
 * device-to-device copy, on the CUDA backend.
 *
 * It prints one line per measurement, `key=value` pairs after a name, for
 * bench_gpu.py to read and set beside PyTorch's figures taken in the same
 * run.  Without a GPU (or without libspore_cuda.so) it says why and exits
 * 0, so `make bench` stays green on a CPU-only machine.
 *
 * Method: inputs are uniform random values (never
 * zeros, which run faster than real data on these GPUs); each measurement
 * warms up (cuBLASLt's heuristic and plan cache, the allocator), then times
 * `iters` calls between two full synchronizations of the backend with the
 * host's monotonic clock; at 8192 one product is a millisecond or more, so
 * the launch overhead and the two syncs are noise.  The output of each
 * call is preallocated (sp_op_call_into), so the allocator is out of the
 * timed loop.  The copy is the cast primitive to the same dtype on a
 * contiguous 1 GiB tensor, counting bytes read plus bytes written.
 *
 * usage: bench_gpu [n=8192] [iters=20]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/backend.h"
#include "ops/ops.h"
#include "spore/spore.h"

static double bg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const sp_device bg_gpu = {SP_DEVICE_CUDA, 0};

/* A random tensor of dt on the GPU; NULL + message on failure. */
static sp_tensor *bg_random(sp_dtype dt, int64_t r, int64_t c, uint64_t seed) {
    int64_t shape[2] = {r, c};
    sp_tensor *h = sp_tensor_new(dt, 2, shape, SP_CPU), *d = NULL;
    if (!h) return NULL;
    if (sp_rng_uniform(h, seed, 0, -1.0, 1.0) == SP_OK) sp_tensor_to(h, bg_gpu, &d);
    sp_tensor_release(h);
    return d;
}

static int bg_sync(void) {
    sp_backend *be = sp_backend_get(SP_DEVICE_CUDA);
    return be && be->sync(be) == SP_OK;
}

static int bg_gemm(const char *name, sp_dtype dt, int tf32, int64_t n, int iters) {
    sp_tensor *a = bg_random(dt, n, n, 1), *b = bg_random(dt, n, n, 2), *c = NULL;
    int64_t shape[2] = {n, n};
    if (a && b) c = sp_tensor_new(dt, 2, shape, bg_gpu);
    int ok = 0;
    if (!c) {
        printf("gemm %s n=%lld error=\"%s\"\n", name, (long long)n, sp_last_error());
        goto done;
    }
    sp_set_allow_tf32(tf32);
    sp_tensor *in[2] = {a, b};
    for (int i = 0; i < 3; i++)
        if (sp_op_call_into(SP_OP_MATMUL, 2, in, NULL, 1, &c) != SP_OK) {
            printf("gemm %s n=%lld error=\"%s\"\n", name, (long long)n, sp_last_error());
            goto done;
        }
    if (!bg_sync()) goto done;
    double t0 = bg_now();
    for (int i = 0; i < iters; i++) sp_op_call_into(SP_OP_MATMUL, 2, in, NULL, 1, &c);
    if (!bg_sync()) goto done;
    double dt_s = (bg_now() - t0) / iters;
    double tflops = 2.0 * (double)n * (double)n * (double)n / dt_s * 1e-12;
    printf("gemm %s n=%lld ms=%.4f tflops=%.1f\n", name, (long long)n, dt_s * 1e3, tflops);
    ok = 1;
done:
    sp_set_allow_tf32(0);
    sp_tensor_release(a);
    sp_tensor_release(b);
    sp_tensor_release(c);
    fflush(stdout);
    return ok;
}

static void bg_copy(int iters) {
    const int64_t side = (int64_t)1 << 14, n = side * side; /* 1 GiB of float32 */
    int64_t shape[2] = {side, side};
    sp_tensor *src = bg_random(SP_F32, side, side, 3), *dst = NULL;
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_dtype(&at, "dtype", SP_F32);
    if (src) dst = sp_tensor_new(SP_F32, 2, shape, bg_gpu);
    if (!dst) {
        printf("copy error=\"%s\"\n", sp_last_error());
        goto done;
    }
    sp_tensor *in[1] = {src};
    for (int i = 0; i < 3; i++)
        if (sp_op_call_into(SP_OP_CAST, 1, in, &at, 1, &dst) != SP_OK) {
            printf("copy error=\"%s\"\n", sp_last_error());
            goto done;
        }
    if (!bg_sync()) goto done;
    double t0 = bg_now();
    for (int i = 0; i < iters; i++) sp_op_call_into(SP_OP_CAST, 1, in, &at, 1, &dst);
    if (!bg_sync()) goto done;
    double s = (bg_now() - t0) / iters;
    printf("copy bytes=%lld ms=%.4f gbps=%.0f\n", (long long)(2 * n * 4), s * 1e3,
           2.0 * (double)n * 4.0 / s * 1e-9);
done:
    sp_tensor_release(src);
    sp_tensor_release(dst);
    fflush(stdout);
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : 8192;
    int iters = argc > 2 ? atoi(argv[2]) : 20;
    if (n < 1 || iters < 1) {
        fprintf(stderr, "usage: bench_gpu [n] [iters]\n");
        return 2;
    }
    if (!sp_cuda_available()) {
        printf("no GPU: %s\n", sp_last_error());
        return 0;
    }
    bg_gemm("bf16", SP_BF16, 0, n, iters);
    bg_gemm("tf32", SP_F32, 1, n, iters);
    bg_gemm("fp16", SP_F16, 0, n, iters);
    bg_gemm("fp32", SP_F32, 0, n, iters > 5 ? 5 : iters);
    bg_copy(iters);
    return 0;
}
