/*
 * gemm_generic.c -- the portable microkernels of the GEMM driver: plain C
 * for CPUs without AVX2+FMA (or with SPORE_DISABLE_AVX2=1) and for non-x86
 * builds.
 *
 * The tile is 4 x 8 (float and double alike), held in a local array that
 * the compiler keeps in vector registers at -O2/-O3 with the baseline ISA
 * (SSE2 on x86-64, NEON on aarch64): 32 accumulators is 8 xmm registers for
 * float, 16 for double.  The inner loop is written so that each A value
 * multiplies a whole row of B, which is the form auto-vectorizers handle.
 * No FMA contraction is assumed: results may differ from the AVX2 kernels
 * in the last bit, never by more than ordinary float rounding.
 *
 * Blocking is the same idea as the AVX2 kernels with a smaller tile: kc =
 * 256 (an 8 KiB B panel in L1), mc = 128, nc = 2048.
 */
#include "backend/cpu/gemm_kernels.h"

#define GEN_MR 4
#define GEN_NR 8

static void sgemm_generic_4x8(int64_t k, const void *pa, const void *pb, void *pc, int64_t ldc,
                              double alpha, double beta) {
    const float *a = pa, *b = pb;
    float *c = pc;
    float acc[GEN_MR][GEN_NR] = {{0}};
    for (int64_t p = 0; p < k; p++) {
        for (int i = 0; i < GEN_MR; i++) {
            float x = a[i];
            for (int j = 0; j < GEN_NR; j++) acc[i][j] += x * b[j];
        }
        a += GEN_MR;
        b += GEN_NR;
    }
    float al = (float)alpha, be = (float)beta;
    for (int i = 0; i < GEN_MR; i++)
        for (int j = 0; j < GEN_NR; j++)
            c[i * ldc + j] = be == 0 ? al * acc[i][j] : al * acc[i][j] + be * c[i * ldc + j];
}

static void dgemm_generic_4x8(int64_t k, const void *pa, const void *pb, void *pc, int64_t ldc,
                              double alpha, double beta) {
    const double *a = pa, *b = pb;
    double *c = pc;
    double acc[GEN_MR][GEN_NR] = {{0}};
    for (int64_t p = 0; p < k; p++) {
        for (int i = 0; i < GEN_MR; i++) {
            double x = a[i];
            for (int j = 0; j < GEN_NR; j++) acc[i][j] += x * b[j];
        }
        a += GEN_MR;
        b += GEN_NR;
    }
    for (int i = 0; i < GEN_MR; i++)
        for (int j = 0; j < GEN_NR; j++)
            c[i * ldc + j] =
                beta == 0 ? alpha * acc[i][j] : alpha * acc[i][j] + beta * c[i * ldc + j];
}

const cpu_gemm_kernel cpu_sgemm_generic = {"generic", sizeof(float), GEN_MR, GEN_NR, 128, 256,
                                           2048, sgemm_generic_4x8, NULL, NULL};
const cpu_gemm_kernel cpu_dgemm_generic = {"generic", sizeof(double), GEN_MR, GEN_NR, 128, 256,
                                           2048, dgemm_generic_4x8, NULL, NULL};
