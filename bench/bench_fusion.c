/*
 * bench_fusion.c -- what elementwise fusion buys on the CPU: a chain of
 * primitives run as one fused_elementwise call against the same chain run
 * primitive by primitive, both in Spore, on 2^22 float32 elements.
 *
 *   gelu    y = gelu(x*a + b)                 a: a row of 1024, b: a scalar
 *   chain   y = exp(tanh(x*0.5) - a) * x      (five ops, three temporaries)
 *   sumexp  s = sum(exp(x*0.5 - a), axis -1)  (the reduction fused too)
 *
 * The unfused side runs each primitive through sp_op_call_into into
 * preallocated intermediates (the best an eager caller or a memory planner
 * can do: no allocation inside the timing); the fused side is one call of
 * fused_elementwise into a preallocated output.  Both check that the
 * outputs agree (bit for bit for the elementwise chains, to float rounding
 * for the sum) before timing.  The ratio printed is unfused time / fused
 * time: above 1, fusion is faster.  Every time is the best of REPS runs
 * after a warm-up; the thread count is SPORE_NUM_THREADS.
 *
 * Usage: bench_fusion [numel]   (default 4M float32 elements)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/internal.h"
#include "ops/ops.h"

#define REPS 7
#define ROW 1024

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct step {
    int op;
    int n_in;
    sp_tensor *in[3];
    sp_attrs attrs;
    sp_tensor *out;
} step;

static int run_steps(step *s, int n) {
    for (int i = 0; i < n; i++)
        if (sp_op_call_into(s[i].op, s[i].n_in, s[i].in, &s[i].attrs, 1, &s[i].out) != SP_OK) {
            fprintf(stderr, "%s\n", sp_last_error());
            return -1;
        }
    return 0;
}

static double time_steps(step *s, int n) {
    double best = 1e30;
    run_steps(s, n);
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        run_steps(s, n);
        double t = now_s() - t0;
        if (t < best) best = t;
    }
    return best;
}

static void fill(sp_tensor *t, unsigned seed, float lo, float hi) {
    float *p = sp_tensor_data(t);
    int64_t n = sp_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * (float)(seed >> 8) / 16777216.0f;
    }
}

static int same(const sp_tensor *a, const sp_tensor *b, double rtol) {
    const float *p = sp_tensor_data(a), *q = sp_tensor_data(b);
    for (int64_t i = 0; i < sp_tensor_numel(a); i++) {
        if (rtol == 0 && memcmp(&p[i], &q[i], 4) != 0) return 0;
        if (rtol > 0 && fabs((double)p[i] - q[i]) > rtol * fabs((double)q[i])) return 0;
    }
    return 1;
}

/* One case: the unfused steps (last step's out = the unfused result) vs the
 * fused call on `in` with `program` (+ reduction attrs) into fout. */
static void bench_case(const char *name, step *s, int n, int n_in, sp_tensor **in,
                       sp_attrs *fattrs, sp_tensor *fout, double rtol) {
    if (run_steps(s, n)) return;
    step f = {sp_op_find("fused_elementwise"), n_in, {0}, *fattrs, fout};
    for (int k = 0; k < n_in; k++) f.in[k] = in[k];
    if (run_steps(&f, 1)) return;
    int ok = same(fout, s[n - 1].out, rtol);
    double tu = time_steps(s, n), tf = time_steps(&f, 1);
    printf("%-8s %2d ops  unfused %8.2f ms  fused %8.2f ms  ratio %5.2fx  %s\n", name, n, tu * 1e3,
           tf * 1e3, tu / tf, ok ? (rtol == 0 ? "bit-identical" : "agree") : "MISMATCH");
}

int main(int argc, char **argv) {
    int64_t n = argc > 1 ? atoll(argv[1]) : (int64_t)1 << 22;
    n = (n + ROW - 1) / ROW * ROW;
    int64_t shape[2] = {n / ROW, ROW}, row = ROW;
    sp_tensor *x = sp_tensor_new(SP_F32, 2, shape, SP_CPU), *a = sp_tensor_new(SP_F32, 1, &row, SP_CPU);
    sp_tensor *b = sp_tensor_new(SP_F32, 0, NULL, SP_CPU), *half = sp_tensor_new(SP_F32, 0, NULL, SP_CPU);
    sp_tensor *t[4], *fo = sp_tensor_new(SP_F32, 2, shape, SP_CPU);
    sp_tensor *rs = sp_tensor_new(SP_F32, 1, shape, SP_CPU), *rf = sp_tensor_new(SP_F32, 1, shape, SP_CPU);
    for (int k = 0; k < 4; k++) t[k] = sp_tensor_new(SP_F32, 2, shape, SP_CPU);
    if (!x || !a || !b || !half || !fo || !rs || !rf || !t[3]) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    fill(x, 1, -3, 3);
    fill(a, 2, -1, 1);
    *(float *)sp_tensor_data(b) = 0.25f;
    *(float *)sp_tensor_data(half) = 0.5f;
    printf("fused_elementwise vs the same primitives one by one: %lld float32 elements, %d threads\n",
           (long long)n, sp_get_num_threads());

    int MUL = sp_op_find("mul"), ADD = sp_op_find("add"), SUB = sp_op_find("sub");
    int GELU = sp_op_find("gelu"), EXP = sp_op_find("exp"), TANH = sp_op_find("tanh");
    int SUM = sp_op_find("sum");
    sp_attrs none, fa;
    sp_attrs_init(&none);

    step g[3] = {{MUL, 2, {x, a}, none, t[0]}, {ADD, 2, {t[0], b}, none, t[1]},
                 {GELU, 1, {t[1]}, none, t[2]}};
    sp_tensor *gin[3] = {x, a, b};
    sp_attrs_init(&fa);
    sp_attrs_set_str(&fa, "program", "i0 i1 mul i2 add gelu");
    bench_case("gelu", g, 3, 3, gin, &fa, fo, 0);

    step c[5] = {{MUL, 2, {x, half}, none, t[0]}, {TANH, 1, {t[0]}, none, t[1]},
                 {SUB, 2, {t[1], a}, none, t[2]}, {EXP, 1, {t[2]}, none, t[3]},
                 {MUL, 2, {t[3], x}, none, t[0]}};
    sp_attrs_init(&fa);
    sp_attrs_set_str(&fa, "program", "i0 f:0.5 mul tanh i1 sub exp i0 mul");
    bench_case("chain", c, 5, 2, gin, &fa, fo, 0);

    sp_attrs red;
    sp_attrs_init(&red);
    int64_t ax = -1;
    sp_attrs_set_ints(&red, "axes", 1, &ax);
    step r[4] = {{MUL, 2, {x, half}, none, t[0]}, {SUB, 2, {t[0], a}, none, t[1]},
                 {EXP, 1, {t[1]}, none, t[2]}, {SUM, 1, {t[2]}, red, rs}};
    sp_attrs_init(&fa);
    sp_attrs_set_str(&fa, "program", "i0 f:0.5 mul i1 sub exp");
    sp_attrs_set_str(&fa, "reduce", "sum");
    sp_attrs_set_ints(&fa, "axes", 1, &ax);
    bench_case("sumexp", r, 4, 2, gin, &fa, rf, 1e-6);

    sp_tensor *all[] = {x, a, b, half, fo, rs, rf, t[0], t[1], t[2], t[3]};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) sp_tensor_release(all[k]);
    return 0;
}
