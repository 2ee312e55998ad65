/*
 * bench_gemm.c -- Spore's float32 GEMM against OpenBLAS, in one process.
 *
 * For square sizes (64 .. 2048 by default, or the sizes given on the
 * command line) it times C = A B with cpu_sgemm and with cblas_sgemm on the
 * same row-major operands, best of several back-to-back runs each, and
 * prints GFLOP/s, the ratio Spore/OpenBLAS and Spore's share of the
 * machine's FMA peak.  The libraries take turns by size, not by run, with
 * a pause between: each library's worker threads stay awake between its
 * own back-to-back calls (as in a training loop) and are asleep when the
 * other library runs, so neither pays for the other's idle spinning.
 *
 * The peak is measured here too: a loop of independent FMA chains (12
 * ymm accumulators for AVX2, 24 zmm for AVX-512, enough to cover the FMA
 * latency on two FMA ports) run on one thread gives FLOP/s per core; the
 * peak for the run is that times the thread count Spore uses.  On a shared
 * or throttling machine the measured peak is what the cores deliver now,
 * which is the fair yardstick.
 *
 * Threads: Spore uses SPORE_NUM_THREADS (else every online CPU), OpenBLAS
 * OPENBLAS_NUM_THREADS (else its own default); both counts are printed.
 * The results of the two libraries are compared element by element (max
 * error relative to the largest element of C) as a correctness check.
 *
 * Built by CMake's bench glob; without OpenBLAS (SPORE_HAVE_OPENBLAS unset)
 * it prints Spore's numbers alone.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/gemm.h"
#include "core/internal.h"
#include "spore/core.h"

#ifdef SPORE_HAVE_OPENBLAS
#include <cblas.h>
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define BENCH_X86 1
#endif

/* Lets idle worker threads go to sleep: OpenBLAS's spin for a long while
 * after a call, and on a small machine they would steal cores from
 * whatever runs next. */
__attribute__((unused)) static void pause_s(double s) {
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- FMA peak per core ---------------------------------------------------- */

#ifdef BENCH_X86
/* The asm barrier keeps the compiler from folding the chains together. */
__attribute__((target("avx2,fma"), noinline)) static float fma_chains_avx2(int64_t n) {
    __m256 x0 = _mm256_set1_ps(1.0f), x1 = x0, x2 = x0, x3 = x0, x4 = x0, x5 = x0;
    __m256 x6 = x0, x7 = x0, x8 = x0, x9 = x0, x10 = x0, x11 = x0;
    const __m256 m = _mm256_set1_ps(0.9999999f), d = _mm256_set1_ps(1e-7f);
    for (int64_t i = 0; i < n; i++) {
        x0 = _mm256_fmadd_ps(x0, m, d); x1 = _mm256_fmadd_ps(x1, m, d);
        x2 = _mm256_fmadd_ps(x2, m, d); x3 = _mm256_fmadd_ps(x3, m, d);
        x4 = _mm256_fmadd_ps(x4, m, d); x5 = _mm256_fmadd_ps(x5, m, d);
        x6 = _mm256_fmadd_ps(x6, m, d); x7 = _mm256_fmadd_ps(x7, m, d);
        x8 = _mm256_fmadd_ps(x8, m, d); x9 = _mm256_fmadd_ps(x9, m, d);
        x10 = _mm256_fmadd_ps(x10, m, d); x11 = _mm256_fmadd_ps(x11, m, d);
        __asm__ volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(x3), "+x"(x4), "+x"(x5),
                         "+x"(x6), "+x"(x7), "+x"(x8), "+x"(x9), "+x"(x10), "+x"(x11));
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(x0, x1), _mm256_add_ps(x2, x3)),
                             _mm256_add_ps(_mm256_add_ps(x4, x5), _mm256_add_ps(x6, x7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(x8, x9), _mm256_add_ps(x10, x11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}

/* Named accumulators, not an array: an array would live in memory. */
#define FMA16(x) x = _mm512_fmadd_ps(x, m, d)
__attribute__((target("avx512f"), noinline)) static float fma_chains_avx512(int64_t n) {
    __m512 y0 = _mm512_set1_ps(1.0f), y1 = y0, y2 = y0, y3 = y0, y4 = y0, y5 = y0, y6 = y0;
    __m512 y7 = y0, y8 = y0, y9 = y0, y10 = y0, y11 = y0, y12 = y0, y13 = y0, y14 = y0;
    __m512 y15 = y0, y16 = y0, y17 = y0, y18 = y0, y19 = y0, y20 = y0, y21 = y0, y22 = y0;
    __m512 y23 = y0;
    const __m512 m = _mm512_set1_ps(0.9999999f), d = _mm512_set1_ps(1e-7f);
    for (int64_t i = 0; i < n; i++) {
        FMA16(y0); FMA16(y1); FMA16(y2); FMA16(y3); FMA16(y4); FMA16(y5);
        FMA16(y6); FMA16(y7); FMA16(y8); FMA16(y9); FMA16(y10); FMA16(y11);
        FMA16(y12); FMA16(y13); FMA16(y14); FMA16(y15); FMA16(y16); FMA16(y17);
        FMA16(y18); FMA16(y19); FMA16(y20); FMA16(y21); FMA16(y22); FMA16(y23);
        __asm__ volatile("" : "+v"(y0), "+v"(y1), "+v"(y2), "+v"(y3), "+v"(y4), "+v"(y5),
                         "+v"(y6), "+v"(y7), "+v"(y8), "+v"(y9), "+v"(y10), "+v"(y11));
        __asm__ volatile("" : "+v"(y12), "+v"(y13), "+v"(y14), "+v"(y15), "+v"(y16),
                         "+v"(y17), "+v"(y18), "+v"(y19), "+v"(y20), "+v"(y21), "+v"(y22),
                         "+v"(y23));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(y0, y1), _mm512_add_ps(y2, y3)),
                             _mm512_add_ps(_mm512_add_ps(y4, y5), _mm512_add_ps(y6, y7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(y8, y9), _mm512_add_ps(y10, y11)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(y12, y13), _mm512_add_ps(y14, y15)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(y16, y17), _mm512_add_ps(y18, y19)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(y20, y21), _mm512_add_ps(y22, y23)));
    return _mm512_reduce_add_ps(s);
}
#endif

/* Best FLOP/s of one core over a few runs of ~0.05 s; 0 when no FMA unit. */
static double fma_peak(int avx512) {
#ifdef BENCH_X86
    if (avx512 ? !sp_cpu_has_avx512f() : !sp_cpu_has_avx2_fma()) return 0;
    int64_t n = 1 << 20;
    double per_iter = avx512 ? 24.0 * 16 * 2 : 12.0 * 8 * 2, best = 0;
    volatile float sink = 0;
    for (int r = 0; r < 7; r++) {
        double t = now_s();
        sink += avx512 ? fma_chains_avx512(n) : fma_chains_avx2(n);
        t = now_s() - t;
        if (t < 0.02) { /* too short to time: grow and retry */
            n *= 4;
            r--;
            continue;
        }
        double f = (double)n * per_iter / t;
        if (f > best) best = f;
    }
    (void)sink;
    return best;
#else
    (void)avx512;
    return 0;
#endif
}

/* ---- GEMM timing --------------------------------------------------------- */

static float *bench_alloc(int64_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, (size_t)n * sizeof(float) + 64) != 0) return NULL;
    return p;
}

static void fill(float *x, int64_t n, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(seed >> 40) / (double)(1 << 24) - 0.5);
    }
}

static void run_spore(int64_t n, const float *a, const float *b, float *c) {
    cpu_sgemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}

#ifdef SPORE_HAVE_OPENBLAS
static void run_openblas(int64_t n, const float *a, const float *b, float *c) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a,
                (int)n, b, (int)n, 0.0f, c, (int)n);
}
#endif

int main(int argc, char **argv) {
    int64_t sizes[32] = {64, 128, 256, 512, 1024, 2048};
    int nsizes = 6;
    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc && nsizes < 32; i++) {
            long v = strtol(argv[i], NULL, 10);
            if (v > 0) sizes[nsizes++] = v;
        }
    }
    int sp_threads = sp_get_num_threads();
    double peak2 = fma_peak(0), peak5 = fma_peak(1);
    double peak = peak5 > peak2 ? peak5 : peak2;
    printf("Spore sgemm kernel: %s, threads: %d\n", cpu_sgemm_kernel_name(), sp_threads);
#ifdef SPORE_HAVE_OPENBLAS
    printf("OpenBLAS: %s (core %s), threads: %d\n", openblas_get_config(),
           openblas_get_corename(), openblas_get_num_threads());
#else
    printf("OpenBLAS: not built in (no libopenblas found)\n");
#endif
    printf("FMA peak per core: AVX2 %.1f GFLOP/s", peak2 * 1e-9);
    if (peak5 > 0) printf(", AVX-512 %.1f GFLOP/s", peak5 * 1e-9);
    printf("; peak for %d thread%s: %.1f GFLOP/s\n\n", sp_threads, sp_threads == 1 ? "" : "s",
           peak * sp_threads * 1e-9);
    printf("%6s %12s %12s %8s %9s %10s\n", "n", "Spore GF/s", "OpenBLAS", "ratio", "% peak",
           "max relerr");

    int failed = 0;
    for (int s = 0; s < nsizes; s++) {
        int64_t n = sizes[s];
        float *a = bench_alloc(n * n), *b = bench_alloc(n * n), *c = bench_alloc(n * n);
        float *c2 = bench_alloc(n * n);
        if (!a || !b || !c || !c2) {
            fprintf(stderr, "bench_gemm: out of memory at n = %lld\n", (long long)n);
            return 1;
        }
        fill(a, n * n, 1 + (uint64_t)n);
        fill(b, n * n, 2 + (uint64_t)n);
        double flops = 2.0 * (double)n * (double)n * (double)n;
        /* enough rounds for ~0.4 s per library, at least 3 */
        int reps = (int)(0.4 * 100e9 / flops);
        if (reps < 3) reps = 3;
        if (reps > 200) reps = 200;
        double best_s = 1e30;
        run_spore(n, a, b, c); /* warm-up: scratch, pool, page faults */
        for (int r = 0; r < reps; r++) {
            double t = now_s();
            run_spore(n, a, b, c);
            t = now_s() - t;
            if (t < best_s) best_s = t;
        }
#ifdef SPORE_HAVE_OPENBLAS
        double best_o = 1e30;
        pause_s(0.2);
        run_openblas(n, a, b, c2);
        for (int r = 0; r < reps; r++) {
            double t = now_s();
            run_openblas(n, a, b, c2);
            t = now_s() - t;
            if (t < best_o) best_o = t;
        }
        pause_s(0.2);
#endif
        double gs = flops / best_s * 1e-9;
        double pct = peak > 0 ? 100.0 * flops / best_s / (peak * sp_threads) : 0;
#ifdef SPORE_HAVE_OPENBLAS
        double go = flops / best_o * 1e-9, cmax = 0, emax = 0;
        for (int64_t i = 0; i < n * n; i++) {
            cmax = fmax(cmax, fabs((double)c2[i]));
            double e = fabs((double)c[i] - (double)c2[i]);
            if (!(e <= emax)) emax = isnan(e) ? INFINITY : e;
        }
        double rel = emax / (cmax > 0 ? cmax : 1);
        if (!(rel < 1e-4)) failed = 1;
        printf("%6lld %12.1f %12.1f %8.2f %8.1f%% %10.2e\n", (long long)n, gs, go, gs / go, pct,
               rel);
#else
        printf("%6lld %12.1f %12s %8s %8.1f%% %10s\n", (long long)n, gs, "-", "-", pct, "-");
#endif
        fflush(stdout);
        free(a);
        free(b);
        free(c);
        free(c2);
    }
    if (failed) fprintf(stderr, "bench_gemm: Spore and OpenBLAS disagree\n");
    return failed;
}
