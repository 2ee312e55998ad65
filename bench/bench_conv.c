/*
 * bench_conv.c -- times Spore's conv2d, conv2d_backprop_input and
 * conv2d_backprop_filter (float32, CPU) at the LeNet-5 and ResNet-18 layer
 * shapes, through sp_op_call_name (output allocation included, as a
 * framework user would see it).
 *
 *   bench_conv [--threads T] [--batch-resnet N] [--quick] [--clock wall|cpu]
 *
 * Prints one parseable line per shape:
 *
 *   conv name=resnet.l1 N=8 C=64 H=56 W=56 O=64 k=3 s=1 p=1 fwd_ms=... bwd_in_ms=... bwd_w_ms=...
 *
 * bench/conv_peer.py runs this binary and PyTorch on the same shapes and
 * prints the side-by-side table with ratios.  Each time is the best of
 * several runs after a warm-up (the machine is shared, and the best run is
 * the one least disturbed); runs continue until about 0.2 s (0.05 s with
 * --quick) have been spent on the op, at least 3 and at most 50.
 *
 * --clock cpu times with the process's CPU clock instead of the wall clock:
 * on a machine busy with other work, and with one thread, it gives the time
 * the op would take on an idle core (with several threads it is their sum,
 * not a speed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/gemm.h"
#include "spore/spore.h"

typedef struct bench_shape {
    const char *name;
    int64_t N, C, H, W, O, k, s, p;
} bench_shape;

static clockid_t bench_clock = CLOCK_MONOTONIC;

static double bench_now(void) {
    struct timespec ts;
    clock_gettime(bench_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sp_tensor *bench_rand(int64_t a, int64_t b, int64_t c, int64_t d) {
    const int64_t s[4] = {a, b, c, d};
    sp_tensor *t = sp_tensor_new(SP_F32, 4, s, SP_CPU);
    if (t) sp_rng_uniform(t, 1234, 0, -1, 1);
    return t;
}

/* Best time in ms of op(in) over the runs; -1 on error. */
static double bench_op(const char *op, int n_in, sp_tensor **in, const sp_attrs *at,
                       double budget) {
    double best = 1e30, spent = 0;
    for (int r = 0; r < 51 && (r < 4 || spent < budget); r++) {
        sp_tensor *out[SP_MAX_OUTPUTS];
        int n = 0;
        double t0 = bench_now();
        if (sp_op_call_name(op, n_in, in, at, &n, out) != SP_OK) {
            fprintf(stderr, "bench_conv: %s failed: %s\n", op, sp_last_error());
            return -1;
        }
        double dt = bench_now() - t0;
        for (int i = 0; i < n; i++) sp_tensor_release(out[i]);
        if (r == 0) continue; /* warm-up: caches, scratch, thread pool */
        spent += dt;
        if (dt < best) best = dt;
    }
    return best * 1e3;
}

int main(int argc, char **argv) {
    int threads = 0, quick = 0;
    int64_t nres = 8;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch-resnet") == 0 && i + 1 < argc)
            nres = atoll(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--clock") == 0 && i + 1 < argc && strcmp(argv[i + 1], "cpu") == 0)
            bench_clock = CLOCK_PROCESS_CPUTIME_ID, i++;
        else if (strcmp(argv[i], "--clock") == 0 && i + 1 < argc && strcmp(argv[i + 1], "wall") == 0)
            i++;
        else {
            fprintf(stderr, "usage: bench_conv [--threads T] [--batch-resnet N] [--quick] "
                            "[--clock wall|cpu]\n");
            return 2;
        }
    }
    if (threads > 0 && sp_set_num_threads(threads) != SP_OK) {
        fprintf(stderr, "bench_conv: %s\n", sp_last_error());
        return 2;
    }
    const bench_shape shapes[] = {
        {"lenet.c1", 64, 1, 28, 28, 6, 5, 1, 2},
        {"lenet.c2", 64, 6, 14, 14, 16, 5, 1, 0},
        {"resnet.stem", nres, 3, 224, 224, 64, 7, 2, 3},
        {"resnet.l1", nres, 64, 56, 56, 64, 3, 1, 1},
        {"resnet.l2", nres, 128, 28, 28, 128, 3, 1, 1},
        {"resnet.l3", nres, 256, 14, 14, 256, 3, 1, 1},
        {"resnet.l4", nres, 512, 7, 7, 512, 3, 1, 1},
        {"resnet.down", nres, 64, 56, 56, 128, 1, 2, 0},
    };
    double budget = quick ? 0.05 : 0.2;
    printf("# spore conv bench: threads=%d gemm=%s clock=%s\n", sp_get_num_threads(),
           cpu_sgemm_kernel_name(), bench_clock == CLOCK_MONOTONIC ? "wall" : "cpu");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const bench_shape *b = &shapes[i];
        int64_t Ho = (b->H + 2 * b->p - b->k) / b->s + 1, Wo = (b->W + 2 * b->p - b->k) / b->s + 1;
        sp_tensor *x = bench_rand(b->N, b->C, b->H, b->W), *w = bench_rand(b->O, b->C, b->k, b->k);
        sp_tensor *dy = bench_rand(b->N, b->O, Ho, Wo);
        if (!x || !w || !dy) {
            fprintf(stderr, "bench_conv: %s\n", sp_last_error());
            return 1;
        }
        sp_attrs at;
        sp_attrs_init(&at);
        const int64_t st[2] = {b->s, b->s}, xs[4] = {b->N, b->C, b->H, b->W},
                      ws[4] = {b->O, b->C, b->k, b->k};
        sp_attrs_set_ints(&at, "stride", 2, st);
        sp_attrs_set_int(&at, "padding", b->p);
        sp_attrs_set_ints(&at, "input_shape", 4, xs);
        sp_attrs_set_ints(&at, "filter_shape", 4, ws);
        sp_tensor *f[2] = {x, w}, *bi[2] = {dy, w}, *bf[2] = {dy, x};
        double t_f = bench_op("conv2d", 2, f, &at, budget);
        double t_bi = bench_op("conv2d_backprop_input", 2, bi, &at, budget);
        double t_bf = bench_op("conv2d_backprop_filter", 2, bf, &at, budget);
        printf("conv name=%s N=%lld C=%lld H=%lld W=%lld O=%lld k=%lld s=%lld p=%lld "
               "fwd_ms=%.3f bwd_in_ms=%.3f bwd_w_ms=%.3f\n",
               b->name, (long long)b->N, (long long)b->C, (long long)b->H, (long long)b->W,
               (long long)b->O, (long long)b->k, (long long)b->s, (long long)b->p, t_f, t_bi,
               t_bf);
        fflush(stdout);
        sp_tensor_release(x), sp_tensor_release(w), sp_tensor_release(dy);
        if (t_f < 0 || t_bi < 0 || t_bf < 0) return 1;
    }
    return 0;
}
