/*
 * bench_train_step.c -- a training step written in the source language,
 * compiled against the same step run eagerly primitive by primitive.
 *
 * Two models, each a `train_step(params..., x, y, lr)` that returns the
 * updated parameters and the loss through spore.value_and_grad and plain
 * SGD: the 784-256-10 perceptron of examples/c/mlp.py (batch 64) and
 * LeNet-5 of bench/programs/lenet5.py (batch 64, 1x28x28).  Both run
 * through the public program API (spore/program.h), which is what a user
 * of Spore from C gets:
 *   compiled  the default: sp_compile per signature, cached, and the
 *             lowered kernel list with its static memory plan when the
 *             compiled graph is straight-line primitive code (else the
 *             compiled graph on the VM, else the VM);
 *   vm        sp_program_set_exec(SP_EXEC_VM): the tree-walking VM, every
 *             primitive an eager call with a fresh output, and gradients by
 *             run-time J.
 * Both start from the same parameters and see the same batch every step,
 * so after the same number of steps they must hold the same loss and
 * weights; the largest difference is printed (float32 round-off only:
 * fused kernels may add in another order).
 *
 * Which path the compiled run took is not visible through the program API,
 * so the bench compiles the same entry for the same arguments with
 * sp_compile (as the program does, default options) and prints whether the
 * result was lowered, why not otherwise, and the plan's figures: peak bytes
 * of the arena against the peak the same kernels would hold with each
 * output allocated alone and freed after its last use (sp_lowered_stats).
 *
 * Measured memory: a second thread polls sp_cpu_live_bytes() in a tight
 * loop during untimed steps (half as many as the timed ones, at least 5);
 * printed is the highest value seen minus the value before them (a lower
 * bound on the true peak: a buffer living for less than one poll, or while
 * the poller is off the CPU, can be missed).  A lowered program keeps its arena
 * between runs, so that arena is live before the step and is added back.
 * Steps are timed one by one; steps/s is from the median step (the machine
 * is shared and loaded) and the mean is printed beside it.
 *
 * usage: bench_train_step [--model mlp|lenet|all] [--steps N] [--threads LIST]
 *   --threads 1,2 runs each thread count in turn; without it, the number of
 *   threads Spore starts with (SPORE_NUM_THREADS, as bench/run_all.py sets).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/compile.h"
#include "compiler/lower.h"
#include "frontend/frontend.h"
#include "ir/value.h"
#include "spore/program.h"

#ifndef SPORE_BENCH_DIR
#define SPORE_BENCH_DIR "bench"
#endif

enum { MAX_P = 10, WARMUP = 3 };

/* Untimed steps run with the live-bytes sampler: half the timed ones, at
 * least 5. */
static int sampled_steps(int steps) { return steps / 2 > 5 ? steps / 2 : 5; }

typedef struct model {
    const char *name, *file;
    int n_params, batch, x_ndim;
    int64_t x_shape[4];
    double lr;
    int steps;
} model;

static const model MODELS[] = {
    {"mlp 784-256-10", SPORE_BENCH_DIR "/../examples/c/mlp.py", 4, 64, 2, {64, 784}, 0.1, 200},
    {"lenet-5", SPORE_BENCH_DIR "/programs/lenet5.py", 10, 64, 4, {64, 1, 28, 28}, 0.05, 40},
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- the live-bytes sampler ------------------------------------------------ */

typedef struct sampler {
    pthread_t th;
    int stop, started;
    int64_t peak;
} sampler;

static void *sampler_main(void *arg) {
    sampler *s = arg;
    __atomic_store_n(&s->started, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        int64_t v = sp_cpu_live_bytes();
        if (v > s->peak) s->peak = v;
    }
    return NULL;
}

/* ---- one run: a program, a mode, parameters ---------------------------------- */

typedef struct run {
    sp_tensor *w[MAX_P];
    double loss;
    double first_call_s;  /* compile (when compiled) + one step */
    double median_s, mean_s;
    int64_t peak_extra;   /* sampled live bytes above the step's start */
} run;

static sp_tensor *copy_tensor(const sp_tensor *t) {
    return sp_tensor_from_data(t->dtype, t->ndim, t->shape, sp_tensor_data(t));
}

/* One step: w <- train_step(w, x, y, lr); the loss in r->loss. */
static sp_status step(sp_program *p, const model *md, run *r, sp_tensor *x, sp_tensor *y) {
    sp_arg args[MAX_P + 3];
    for (int k = 0; k < md->n_params; k++) args[k] = sp_arg_tensor(r->w[k]);
    args[md->n_params] = sp_arg_tensor(x);
    args[md->n_params + 1] = sp_arg_tensor(y);
    args[md->n_params + 2] = sp_arg_float(md->lr);
    sp_results *res = NULL;
    sp_status st = sp_program_call(p, "train_step", md->n_params + 3, args, &res);
    if (st) return st;
    int got = sp_results_count(res);
    if (got != md->n_params + 1) {
        sp_results_free(res);
        return sp_error(SP_ERR_RUNTIME, "train_step returned %d tensors, expected %d", got, md->n_params + 1);
    }
    for (int k = 0; k < md->n_params; k++) {
        sp_tensor_release(r->w[k]);
        r->w[k] = sp_results_take(res, k);
    }
    r->loss = sp_tensor_get(sp_results_get(res, md->n_params), NULL);
    sp_results_free(res);
    return SP_OK;
}

/* Runs md's step on a fresh program in `mode` from copies of w0: WARMUP
 * steps (the first timed alone: it compiles), sampled_steps(steps) with the
 * live-bytes sampler on, then `steps` timed steps; fills r (its weights the
 * caller frees with run_free, also on error).  arena: bytes a lowered
 * program keeps between runs, counted into the compiled path's peak. */
static sp_status run_mode(const model *md, sp_exec_mode mode, sp_tensor *const *w0, sp_tensor *x, sp_tensor *y,
                          int steps, int64_t arena, run *r) {
    memset(r, 0, sizeof *r);
    sp_program *p = sp_program_load(md->file);
    if (!p) return sp_last_status();
    sp_status st = sp_program_set_exec(p, mode);
    for (int k = 0; k < md->n_params && !st; k++)
        if (!(r->w[k] = copy_tensor(w0[k]))) st = sp_last_status();
    double *t = calloc((size_t)steps, sizeof *t);
    if (!t && !st) st = sp_error(SP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < WARMUP && !st; i++) {
        double t0 = now();
        st = step(p, md, r, x, y);
        if (i == 0) r->first_call_s = now() - t0;
    }
    /* one sampler thread across the sampled steps: on a loaded machine it
     * may be off the CPU for a whole short step, so many steps are sampled */
    r->peak_extra = -1;
    int n_sampled = sampled_steps(steps);
    if (!st) {
        sampler s = {.stop = 0, .started = 0, .peak = 0};
        int64_t before = sp_cpu_live_bytes();
        s.peak = before;
        int threaded = pthread_create(&s.th, NULL, sampler_main, &s) == 0;
        while (threaded && !__atomic_load_n(&s.started, __ATOMIC_ACQUIRE)) sched_yield();
        for (int i = 0; i < n_sampled && !st; i++) st = step(p, md, r, x, y);
        if (threaded) {
            __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
            pthread_join(s.th, NULL);
            r->peak_extra = s.peak - before + (mode == SP_EXEC_AUTO ? arena : 0);
        }
    }
    for (int i = 0; i < steps && !st; i++) {
        double t0 = now();
        st = step(p, md, r, x, y);
        t[i] = now() - t0;
    }
    if (!st) {
        double sum = 0;
        for (int i = 0; i < steps; i++) sum += t[i];
        r->mean_s = sum / steps;
        qsort(t, (size_t)steps, sizeof *t, cmp_double);
        r->median_s = steps % 2 ? t[steps / 2] : 0.5 * (t[steps / 2 - 1] + t[steps / 2]);
    }
    free(t);
    sp_program_free(p);
    return st;
}

static void run_free(run *r, int n) {
    for (int k = 0; k < n; k++) sp_tensor_release(r->w[k]);
}

static double max_abs_diff(const sp_tensor *a, const sp_tensor *b) {
    const float *x = sp_tensor_data(a), *y = sp_tensor_data(b);
    int64_t n = sp_tensor_numel(a);
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        if (d > m || d != d) m = d;
    }
    return m;
}

/* ---- what sp_compile makes of the step ---------------------------------------- */

/* Compiles train_step for the arguments the program gets and prints the
 * path a compiled call takes; *arena gets the plan's arena bytes (0 when
 * not lowered). */
static void report_compiled(const model *md, sp_tensor *const *w0, sp_tensor *x, sp_tensor *y, int64_t *arena) {
    *arena = 0;
    sp_module *m = sp_frontend_compile_file(md->file, NULL);
    if (!m) {
        printf("  compile check: %s\n", sp_last_error());
        return;
    }
    int n = md->n_params + 3, ok = 1;
    sp_value *args[MAX_P + 3] = {0};
    for (int k = 0; k < md->n_params; k++) ok = ok && (args[k] = sp_value_tensor(w0[k]));
    ok = ok && (args[md->n_params] = sp_value_tensor(x));
    ok = ok && (args[md->n_params + 1] = sp_value_tensor(y));
    ok = ok && (args[md->n_params + 2] = sp_value_float(md->lr));
    sp_compiled *c = NULL;
    if (!ok) {
        printf("  compile check: %s\n", sp_last_error());
    } else if (sp_compile(m, "train_step", n, args, NULL, &c)) {
        printf("  path of the compiled run: the VM (sp_compile refused: %s)\n", sp_last_error());
    } else {
        const char *why = NULL;
        const sp_lowered *l = sp_compiled_lowered(c, &why);
        double total = 0;
        char stages[256];
        size_t len = 0;
        for (int s = 0; s < SP_STAGE_COUNT; s++) {
            double ts = sp_compiled_stage_seconds(c, (sp_stage)s);
            total += ts;
            len += (size_t)snprintf(stages + len, len < sizeof stages ? sizeof stages - len : 0, "%s%s %.0f",
                                    s ? ", " : "", sp_stage_name((sp_stage)s), 1e3 * ts);
        }
        printf("  compile: %.0f ms (%s ms)\n", 1e3 * total, stages);
        if (l) {
            sp_lower_stats s = sp_lowered_stats(l);
            *arena = s.arena_bytes;
            printf("  path of the compiled run: LOWERED (%d kernels, %d launches, %d in place, %d views)\n",
                   s.n_kernels, s.n_launches, s.n_inplace, s.n_views);
            printf("  memory plan: peak %.2f MB with the plan, %.2f MB without (each output its own buffer, "
                   "freed after last use), %.2f MB if nothing were freed; outputs %.2f MB\n",
                   (double)s.arena_bytes / 1e6, (double)s.noplan_bytes / 1e6, (double)s.naive_bytes / 1e6,
                   (double)s.output_bytes / 1e6);
        } else {
            printf("  path of the compiled run: compiled graph on the VM, NOT lowered (%s)\n",
                   why && *why ? why : "no reason given");
        }
    }
    sp_compiled_free(c);
    for (int k = 0; k < n; k++) sp_value_release(args[k]);
    sp_module_free(m);
}

/* ---- one model ------------------------------------------------------------------ */

/* A batch: x uniform in [0, 1), y in 0..9, from a fixed LCG (the same data
 * every run). */
static sp_status make_batch(const model *md, sp_tensor **x, sp_tensor **y) {
    int64_t b = md->batch;
    *x = sp_tensor_new(SP_F32, md->x_ndim, md->x_shape, SP_CPU);
    *y = sp_tensor_new(SP_I64, 1, &b, SP_CPU);
    if (!*x || !*y) return sp_last_status();
    uint64_t s = 0x9E3779B97F4A7C15ull;
    float *xd = sp_tensor_data(*x);
    for (int64_t i = 0, n = sp_tensor_numel(*x); i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        xd[i] = (float)(s >> 40) * (1.0f / 16777216.0f);
    }
    int64_t *yd = sp_tensor_data(*y);
    for (int64_t i = 0; i < b; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        yd[i] = (int64_t)((s >> 33) % 10);
    }
    return SP_OK;
}

static int bench_model(const model *md, int steps, const int *threads, int n_threads) {
    sp_tensor *w0[MAX_P] = {0}, *x = NULL, *y = NULL;
    int rc = 1;
    printf("\n%s: train_step of %s, batch %d, lr %g, SGD (%d warm-up + %d sampled + %d timed steps)\n",
           md->name, md->file, md->batch, md->lr, WARMUP, sampled_steps(steps), steps);
    sp_program *init = sp_program_load(md->file);
    sp_results *r0 = NULL;
    sp_arg seed = sp_arg_int(0);
    if (!init || sp_program_set_exec(init, SP_EXEC_VM) || sp_program_call(init, "init", 1, &seed, &r0)) goto out;
    if (sp_results_count(r0) != md->n_params) {
        sp_error(SP_ERR_RUNTIME, "init returned %d tensors, expected %d", sp_results_count(r0), md->n_params);
        goto out;
    }
    for (int k = 0; k < md->n_params; k++) w0[k] = sp_results_take(r0, k);
    if (make_batch(md, &x, &y)) goto out;

    int64_t arena = 0;
    report_compiled(md, w0, x, y, &arena);
    for (int ti = 0; ti < n_threads; ti++) {
        if (threads[ti] > 0 && sp_set_num_threads(threads[ti])) goto out;
        run c, v;
        sp_status sc = run_mode(md, SP_EXEC_AUTO, w0, x, y, steps, arena, &c);
        if (sc) {
            run_free(&c, md->n_params);
            goto out;
        }
        sp_status sv = run_mode(md, SP_EXEC_VM, w0, x, y, steps, arena, &v);
        if (sv) {
            run_free(&c, md->n_params);
            run_free(&v, md->n_params);
            goto out;
        }
        double wdiff = 0;
        for (int k = 0; k < md->n_params; k++) {
            double d = max_abs_diff(c.w[k], v.w[k]);
            if (d > wdiff || d != d) wdiff = d;
        }
        int nt = sp_get_num_threads();
        printf("  threads %d  compiled: %8.1f steps/s (mean %7.1f; first call %6.0f ms)   peak +%.2f MB\n", nt,
               1 / c.median_s, 1 / c.mean_s, 1e3 * c.first_call_s, (double)c.peak_extra / 1e6);
        printf("  threads %d  vm:       %8.1f steps/s (mean %7.1f; first call %6.0f ms)   peak +%.2f MB\n", nt,
               1 / v.median_s, 1 / v.mean_s, 1e3 * v.first_call_s, (double)v.peak_extra / 1e6);
        printf("  threads %d  compiled/vm speed %.2fx; after %d steps loss %.6f vs %.6f (|diff| %.2e), "
               "weights max |diff| %.2e\n",
               nt, v.median_s / c.median_s, WARMUP + sampled_steps(steps) + steps, c.loss, v.loss,
               fabs(c.loss - v.loss), wdiff);
        fflush(stdout);
        run_free(&c, md->n_params);
        run_free(&v, md->n_params);
    }
    rc = 0;
out:
    if (rc) printf("  %s: FAILED: %s\n", md->name, sp_last_error());
    for (int k = 0; k < MAX_P; k++) sp_tensor_release(w0[k]);
    sp_tensor_release(x);
    sp_tensor_release(y);
    sp_results_free(r0);
    sp_program_free(init);
    return rc;
}

int main(int argc, char **argv) {
    const char *which = "all";
    setvbuf(stdout, NULL, _IOLBF, 0); /* lines reach a pipe as they come (run_all.py, a killed run) */
    int steps = 0, threads[8], n_threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--model") && v) {
            which = argv[++i];
        } else if (!strcmp(a, "--steps") && v) {
            steps = atoi(argv[++i]);
        } else if (!strcmp(a, "--threads") && v) {
            char *s = argv[++i], *end;
            while (*s && n_threads < 8) {
                long t = strtol(s, &end, 10);
                if (end == s || t < 1) break;
                threads[n_threads++] = (int)t;
                s = *end == ',' ? end + 1 : end;
            }
        } else {
            fprintf(stderr, "usage: bench_train_step [--model mlp|lenet|all] [--steps N] [--threads 1,2]\n");
            return 2;
        }
    }
    if (!n_threads) threads[n_threads++] = 0; /* as started */
    printf("bench_train_step: a training step through the program API, compiled vs the VM "
           "(steps/s from the median step; peak = sp_cpu_live_bytes polled during a step, above its start)\n");
    int rc = 0;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        if (strcmp(which, "all") && strncmp(MODELS[i].name, which, strlen(which))) continue;
        rc |= bench_model(&MODELS[i], steps > 0 ? steps : MODELS[i].steps, threads, n_threads);
    }
    return rc;
}
