/*
 * bench_compile.c -- a lowered, planned training step against the same
 * graph run primitive by primitive.
 *
 * The step is a 784-256-10 perceptron on batches of 64 and 512: forward, softmax
 * cross-entropy, backward, SGD updates of the four parameters, written as
 * IR text in canonical form (what specialization and grad expansion
 * produce).  The peer is the VM running that graph -- eager execution by
 * primitive, each output a fresh allocation -- in the same process, on
 * its own copy of the parameters; both train for the same steps and must
 * end at the same loss.  Printed: steps/s of each and their ratio, the
 * lower time, and the plan's peak bytes against the bytes kernel-by-kernel
 * execution holds at its peak (each output allocated, freed after its last
 * use) and the sum of all intermediates.
 *
 * usage: bench_compile [steps [batch]]   (SPORE_NUM_THREADS sets the threads;
 * without a batch, 64 then 512)
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/lower.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "runtime/vm.h"

static const char *STEP_IR =
    "global step = @step\n"
    "graph @step(%1 x, %2 labels, %3 w1, %4 b1, %5 w2, %6 b2, %40 a1, %41 a2, %42 a3, %43 a4, %44 lr) {\n"
    "  %7 = prim.matmul(%1, %3)\n"
    "  %8 h0 = prim.add(%7, %4)\n"
    "  %9 h = prim.relu(%8)\n"
    "  %10 = prim.matmul(%9, %5)\n"
    "  %11 logits = prim.add(%10, %6)\n"
    "  %13 loss = prim.sparse_softmax_cross_entropy(%11, %2)\n"
    "  %16 = prim.zeros(keyword(\"shape\", ()))\n"
    "  %17 = prim.greater(%8, %16)\n"
    "  %18 = prim.ones(keyword(\"shape\", ()))\n"
    "  %19 dlogits = prim.sparse_softmax_cross_entropy_backward(%11, %2, %18)\n"
    "  %21 dh = prim.matmul(%19, %5, keyword(\"transpose_b\", 1))\n"
    "  %22 dh0 = prim.where(%17, %21, %16)\n"
    "  %24 dw1 = prim.matmul(%1, %22, keyword(\"transpose_a\", 1))\n"
    "  %26 db1 = prim.sum(%22, keyword(\"axes\", (0,)))\n"
    "  %27 dw2 = prim.matmul(%9, %19, keyword(\"transpose_a\", 1))\n"
    "  %28 db2 = prim.sum(%19, keyword(\"axes\", (0,)))\n"
    "  %50 = prim.sgd_update(%3, %24, %40, %44)\n"
    "  %51 = prim.sgd_update(%4, %26, %41, %44)\n"
    "  %52 = prim.sgd_update(%5, %27, %42, %44)\n"
    "  %53 = prim.sgd_update(%6, %28, %43, %44)\n"
    "  %29 = builtin.make_tuple(%13, %50, %51, %52, %53)\n"
    "  return %29\n"
    "}\n";

enum { NP = 11, IN = 784, HID = 256, OUT = 10 };

static int B = 64;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The parameters: x, labels, w1, b1, w2, b2, four accumulators, lr. */
static void make_params(sp_tensor **p) {
    const int64_t sx[2] = {B, IN}, sl[1] = {B}, s1[2] = {IN, HID}, sb1[1] = {HID}, s2[2] = {HID, OUT},
                  sb2[1] = {OUT};
    p[0] = sp_tensor_new(SP_F32, 2, sx, SP_CPU);
    sp_rng_uniform(p[0], 1, 0, 0.0, 1.0);
    p[1] = sp_tensor_new(SP_I64, 1, sl, SP_CPU);
    for (int i = 0; i < B; i++) ((int64_t *)sp_tensor_data(p[1]))[i] = (i * 7) % OUT;
    p[2] = sp_tensor_new(SP_F32, 2, s1, SP_CPU);
    sp_rng_normal(p[2], 2, 0, 0.0, 0.05);
    p[3] = sp_tensor_zeros(SP_F32, 1, sb1, SP_CPU);
    p[4] = sp_tensor_new(SP_F32, 2, s2, SP_CPU);
    sp_rng_normal(p[4], 3, 0, 0.0, 0.05);
    p[5] = sp_tensor_zeros(SP_F32, 1, sb2, SP_CPU);
    for (int i = 0; i < 4; i++) p[6 + i] = sp_tensor_zeros(SP_F32, p[2 + i]->ndim, p[2 + i]->shape, SP_CPU);
    p[10] = sp_tensor_scalar(SP_F32, 0.1);
}

static double loss_of(const sp_value *v) {
    if (!v || v->kind != SP_V_TUPLE) return NAN;
    return sp_tensor_get(v->u.seq.items[0]->u.tensor, NULL);
}

static int bench(int steps);

int main(int argc, char **argv) {
    int steps = argc > 1 ? atoi(argv[1]) : 200;
    if (steps < 1) steps = 1;
    if (argc > 2) {
        B = atoi(argv[2]) > 0 ? atoi(argv[2]) : 64;
        return bench(steps);
    }
    int rc = 0;
    B = 64;
    rc |= bench(steps);
    B = 512;
    rc |= bench(steps / 4 > 0 ? steps / 4 : 1);
    return rc;
}

static int bench(int steps) {
    sp_module *m = sp_module_parse_ir(STEP_IR, "bench_compile.ir");
    if (!m || ir_module_finalize(m) != SP_OK) {
        fprintf(stderr, "bench_compile: %s\n", sp_last_error());
        return 1;
    }
    sp_graph *g = ir_module_get_global(m, "step")->u.graph;
    sp_tensor *pv[NP], *pl[NP];
    make_params(pv);
    make_params(pl);
    sp_meta metas[NP];
    for (int i = 0; i < NP; i++) metas[i] = sp_meta_of(pl[i]);
    char why[256];
    double t0 = now();
    sp_lowered *l = sp_lower(g, NP, metas, NULL, why, sizeof why);
    double t_lower = now() - t0;
    if (!l) {
        fprintf(stderr, "bench_compile: not lowerable: %s\n", why);
        return 1;
    }
    sp_value *av[NP], *al[NP];
    for (int i = 0; i < NP; i++) {
        av[i] = sp_value_tensor(pv[i]);
        al[i] = sp_value_tensor(pl[i]);
    }
    /* warm up both (allocator caches, the cached arena) */
    sp_value *r = sp_vm_run(m, "step", NP, av);
    double l0 = loss_of(r);
    sp_value_release(r);
    r = sp_lowered_run_value(l, NP, al);
    double l1 = loss_of(r);
    sp_value_release(r);
    double lv = 0, ll = 0;
    t0 = now();
    for (int i = 0; i < steps; i++) {
        r = sp_vm_run(m, "step", NP, av);
        lv = loss_of(r);
        sp_value_release(r);
    }
    double t_vm = now() - t0;
    t0 = now();
    for (int i = 0; i < steps; i++) {
        r = sp_lowered_run_value(l, NP, al);
        ll = loss_of(r);
        sp_value_release(r);
    }
    double t_lo = now() - t0;
    sp_lower_stats st = sp_lowered_stats(l);
    printf("MLP %d-%d-%d training step, batch %d, %d threads, %d steps\n", IN, HID, OUT, B,
           sp_get_num_threads(), steps);
    printf("  loss: first %.6f / %.6f, last %.6f (VM) %.6f (lowered)%s\n", l0, l1, lv, ll,
           fabs(lv - ll) <= 1e-4 * (1 + fabs(lv)) ? "" : "  MISMATCH");
    printf("  lower time: %.3f ms; %d kernels (%d launches, %d views, %d in place)\n", 1e3 * t_lower,
           st.n_kernels, st.n_launches, st.n_views, st.n_inplace);
    printf("  %-34s %10.1f steps/s\n", "VM (eager by primitive)", steps / t_vm);
    printf("  %-34s %10.1f steps/s   %.2fx the VM\n", "lowered + planned", steps / t_lo, t_vm / t_lo);
    printf("  peak intermediate bytes: plan %lld, kernel by kernel %lld (%.2fx the plan), "
           "never freed %lld; outputs %lld\n", (long long)st.arena_bytes, (long long)st.noplan_bytes,
           st.arena_bytes ? (double)st.noplan_bytes / (double)st.arena_bytes : 0.0,
           (long long)st.naive_bytes, (long long)st.output_bytes);
    for (int i = 0; i < NP; i++) {
        sp_value_release(av[i]);
        sp_value_release(al[i]);
        sp_tensor_release(pv[i]);
        sp_tensor_release(pl[i]);
    }
    sp_lowered_free(l);
    sp_module_free(m);
    return 0;
}
