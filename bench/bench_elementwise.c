/*
 * bench_elementwise.c -- how close Spore's CPU elementwise and reduction
 * kernels come to this machine's memory bandwidth.
 *
 * Elementwise ops on big tensors do almost no arithmetic per byte, so the
 * honest peer is not another library but the memory system itself: the
 * program first times a memcpy and a STREAM-style triad (a = b + s*c) of the
 * same size, the triad split over the same thread pool and thread count as
 * the kernels (SPORE_NUM_THREADS), and reports every kernel's bytes moved per
 * second as a ratio to the faster of the two.  A ratio near 1 means the
 * kernel runs at memory speed; well below 1 means it is compute bound (exp,
 * sigmoid) or has overhead to find.
 *
 * Kernels run through sp_op_call_into on preallocated outputs, so the time
 * is the kernel's; the "+alloc" column repeats the call through
 * sp_op_call_name, which also allocates (and first-touches) the output as a
 * user's eager call does.  Bytes moved count each input read once and the
 * output written once.  Every time is the best of REPS runs after a warm-up.
 *
 * Usage: bench_elementwise [numel]   (default 16M float32 elements)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "ops/ops.h"

#define REPS 5

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the bandwidth references ---- */

typedef struct triad_ctx {
    float *a;
    const float *b, *c;
    float s;
} triad_ctx;

static void triad_range(void *ctx, int64_t begin, int64_t end) {
    triad_ctx *t = ctx;
    for (int64_t i = begin; i < end; i++) t->a[i] = t->b[i] + t->s * t->c[i];
}

static double time_memcpy(void *dst, const void *src, size_t n) {
    double best = 1e30;
    memcpy(dst, src, n);
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        memcpy(dst, src, n);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

static double time_triad(float *a, const float *b, const float *c, int64_t n) {
    triad_ctx t = {a, b, c, 3.0f};
    double best = 1e30;
    sp_parallel_for(n, 32768, triad_range, &t);
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        sp_parallel_for(n, 32768, triad_range, &t);
        double dt = now_s() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

/* ---- kernels ---- */

typedef struct bench_case {
    const char *label;
    const char *op;
    int n_in;
    int last_axis; /* reductions: 1 = axes [-1] on the 2-D view, 0 = all axes */
} bench_case;

/* Times one op; returns 0 and fills *t_into, *t_alloc, *bytes, or -1 with
 * the error message printed (a missing kernel is reported, not fatal). */
static int time_op(const bench_case *bc, sp_tensor **in, double *t_into, double *t_alloc,
                   double *bytes) {
    sp_attrs at;
    sp_attrs_init(&at);
    if (bc->last_axis) {
        int64_t ax = -1;
        sp_attrs_set_ints(&at, "axes", 1, &ax);
    }
    int op = sp_op_find(bc->op);
    if (op < 0) return -1;
    sp_tensor *out[SP_MAX_OUTPUTS];
    int n_out = 0;
    if (sp_op_call(op, bc->n_in, in, &at, &n_out, out) != SP_OK) return -1;

    double b = 0;
    for (int i = 0; i < bc->n_in; i++) b += (double)sp_tensor_nbytes(in[i]);
    for (int i = 0; i < n_out; i++) b += (double)sp_tensor_nbytes(out[i]);
    *bytes = b;

    double best = 1e30;
    int ok = 1;
    for (int r = 0; r < REPS && ok; r++) {
        double t0 = now_s();
        ok = sp_op_call_into(op, bc->n_in, in, &at, n_out, out) == SP_OK;
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    for (int i = 0; i < n_out; i++) sp_tensor_release(out[i]);
    if (!ok) return -1;
    *t_into = best;

    best = 1e30;
    for (int r = 0; r < REPS && ok; r++) {
        double t0 = now_s();
        ok = sp_op_call(op, bc->n_in, in, &at, &n_out, out) == SP_OK;
        double t = now_s() - t0;
        if (t < best) best = t;
        if (ok)
            for (int i = 0; i < n_out; i++) sp_tensor_release(out[i]);
    }
    if (!ok) return -1;
    *t_alloc = best;
    return 0;
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : (int64_t)1 << 24;
    if (n < 1024) n = 1024;
    n &= ~(int64_t)1023; /* so the 2-D view below has a power-of-two factor */
    int64_t rows = 1, cols = n;
    while (cols > 4096 && (cols % 2) == 0) { /* a square-ish 2-D view for last-axis reductions */
        cols /= 2;
        rows *= 2;
        if (rows >= cols) break;
    }

    sp_tensor *x = sp_tensor_new(SP_F32, 1, &n, SP_CPU);
    sp_tensor *y = sp_tensor_new(SP_F32, 1, &n, SP_CPU);
    sp_tensor *z = sp_tensor_new(SP_F32, 1, &n, SP_CPU);
    if (!x || !y || !z) {
        fprintf(stderr, "bench_elementwise: %s\n", sp_last_error());
        return 1;
    }
    float *xp = sp_tensor_data(x), *yp = sp_tensor_data(y), *zp = sp_tensor_data(z);
    for (int64_t i = 0; i < n; i++) {
        xp[i] = (float)((i % 2001) - 1000) * 0.01f;
        yp[i] = (float)((i % 997) + 1) * 0.003f;
        zp[i] = 0;
    }
    int64_t shape2[2] = {rows, cols};
    sp_tensor *x2 = NULL;
    if (sp_tensor_reshape(x, 2, shape2, &x2) != SP_OK) {
        fprintf(stderr, "bench_elementwise: %s\n", sp_last_error());
        return 1;
    }

    size_t nb = (size_t)n * sizeof(float);
    double t_cpy = time_memcpy(zp, xp, nb);
    double t_tri = time_triad(zp, xp, yp, n);
    double bw_cpy = 2.0 * nb / t_cpy / 1e9, bw_tri = 3.0 * nb / t_tri / 1e9;
    double bw = bw_cpy > bw_tri ? bw_cpy : bw_tri;

    printf("bench_elementwise: float32, %lld elements (%.0f MiB per tensor), %d thread(s)\n",
           (long long)n, nb / 1048576.0, sp_get_num_threads());
    printf("machine: memcpy %.2f GB/s (1 thread, libc), triad %.2f GB/s (%d thread(s)); "
           "reference = %.2f GB/s\n\n",
           bw_cpy, bw_tri, sp_get_num_threads(), bw);
    printf("%-22s %-14s %10s %10s %9s %8s %10s\n", "kernel", "shape", "MB moved", "ms", "GB/s",
           "vs ref", "ms +alloc");

    const bench_case cases[] = {
        {"add", "add", 2, 0},           {"mul", "mul", 2, 0},
        {"exp", "exp", 1, 0},           {"relu", "relu", 1, 0},
        {"sigmoid", "sigmoid", 1, 0},   {"sum (all axes)", "sum", 1, 0},
        {"max (all axes)", "max", 1, 0}, {"sum (last axis)", "sum", 1, 1},
        {"max (last axis)", "max", 1, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const bench_case *bc = &cases[k];
        int red = strcmp(bc->op, "sum") == 0 || strcmp(bc->op, "max") == 0;
        sp_tensor *in[2] = {red ? x2 : x, y};
        char shape[64];
        sp_shape_str(in[0]->ndim, in[0]->shape, shape, sizeof shape);
        double ti, ta, bytes;
        sp_clear_error();
        if (time_op(bc, in, &ti, &ta, &bytes) != 0) {
            printf("%-22s %-14s skipped: %s\n", bc->label, shape, sp_last_error());
            continue;
        }
        double gbs = bytes / ti / 1e9;
        printf("%-22s %-14s %10.1f %10.2f %9.2f %8.2f %10.2f\n", bc->label, shape, bytes / 1e6,
               ti * 1e3, gbs, gbs / bw, ta * 1e3);
    }
    sp_tensor_release(x2);
    sp_tensor_release(x);
    sp_tensor_release(y);
    sp_tensor_release(z);
    return 0;
}
