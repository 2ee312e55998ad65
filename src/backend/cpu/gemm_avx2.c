/*
 * gemm_avx2.c -- the AVX2+FMA microkernels of the GEMM driver (gemm.c).
 *
 * sgemm: a 6 x 16 tile of C lives in 12 ymm accumulators (6 rows x two
 * 8-float vectors).  Each step of k loads one 16-float row of the packed B
 * panel (two aligned loads), broadcasts the six A values of that step and
 * issues 12 FMAs; with two FMA units and a 4-5 cycle FMA latency, 12
 * independent chains keep both units busy, and the 2 loads + 6 broadcasts
 * per 12 FMAs stay under the load ports' budget.  That leaves 4 of the 16
 * ymm registers for B and the broadcast, so the compiler needs no spills
 * (check the assembly after touching the loop: a spill costs ~10%).
 *
 * dgemm: the same shape with doubles, 6 x 8 in 12 accumulators.
 *
 * Blocking (a Zen 3 / Skylake-class core: 32 KiB L1d, >= 512 KiB L2):
 * kc = 256 keeps a 256 x 16 float panel of B (16 KiB) in L1 beside the A
 * panel being streamed; mc = 144 rows of A (144 KiB) sit in L2; nc bounds
 * the packed B block (kc x nc, 4 MiB) that lives in L3.  (kc 192..384 and
 * mc 72..288 measured within 2% of each other on a Sapphire Rapids core.)
 *
 * The sgemm packing routines transpose 8 x 8 blocks in registers: a
 * row-major A (rows contiguous along k) and a transposed B (columns
 * contiguous along k) become k-major panels without scalar shuffling; a
 * plain B is a row copy, which the driver does with memcpy.
 *
 * Everything here is compiled for avx2+fma through function attributes, so
 * the file builds into a library that runs on any x86-64; the driver calls
 * these kernels only when sp_cpu_has_avx2_fma() says the CPU and OS allow.
 */
#include "backend/cpu/gemm_kernels.h"

#ifdef CPU_GEMM_X86
#include <immintrin.h>

#define AVX2_FN __attribute__((target("avx2,fma")))

/* Prefetches the 64-byte lines a tile of C covers, so the write-back at the
 * end of a kernel does not stall on cache misses. */
#define PREFETCH_C_ROWS(c, ldc, rows, bytes)                                  \
    do {                                                                      \
        for (int r_ = 0; r_ < (rows); r_++) {                                 \
            _mm_prefetch((const char *)((c) + r_ * (ldc)), _MM_HINT_T0);      \
            _mm_prefetch((const char *)((c) + r_ * (ldc)) + (bytes)-1,        \
                         _MM_HINT_T0);                                        \
        }                                                                     \
    } while (0)

AVX2_FN static void sgemm_avx2_6x16(int64_t k, const void *pa, const void *pb, void *pc,
                                    int64_t ldc, double alpha, double beta) {
    const float *a = pa, *b = pb;
    float *c = pc;
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    PREFETCH_C_ROWS(c, ldc, 6, 64);

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 x;
        _mm_prefetch((const char *)(b + 256), _MM_HINT_T0);
        x = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(x, b0, c00);
        c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(x, b0, c10);
        c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(x, b0, c20);
        c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(x, b0, c30);
        c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(x, b0, c40);
        c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(x, b0, c50);
        c51 = _mm256_fmadd_ps(x, b1, c51);
        a += 6;
        b += 16;
    }

    __m256 va = _mm256_set1_ps((float)alpha);
    __m256 acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    if (beta == 0) {
        for (int i = 0; i < 6; i++) {
            _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, acc[2 * i]));
            _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, acc[2 * i + 1]));
        }
    } else {
        __m256 vb = _mm256_set1_ps((float)beta);
        for (int i = 0; i < 6; i++) {
            float *ci = c + i * ldc;
            _mm256_storeu_ps(ci, _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci),
                                                 _mm256_mul_ps(va, acc[2 * i])));
            _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci + 8),
                                                     _mm256_mul_ps(va, acc[2 * i + 1])));
        }
    }
}

AVX2_FN static void dgemm_avx2_6x8(int64_t k, const void *pa, const void *pb, void *pc,
                                   int64_t ldc, double alpha, double beta) {
    const double *a = pa, *b = pb;
    double *c = pc;
    __m256d c00 = _mm256_setzero_pd(), c01 = _mm256_setzero_pd();
    __m256d c10 = _mm256_setzero_pd(), c11 = _mm256_setzero_pd();
    __m256d c20 = _mm256_setzero_pd(), c21 = _mm256_setzero_pd();
    __m256d c30 = _mm256_setzero_pd(), c31 = _mm256_setzero_pd();
    __m256d c40 = _mm256_setzero_pd(), c41 = _mm256_setzero_pd();
    __m256d c50 = _mm256_setzero_pd(), c51 = _mm256_setzero_pd();
    PREFETCH_C_ROWS(c, ldc, 6, 64);

#pragma GCC unroll 4
    for (int64_t p = 0; p < k; p++) {
        __m256d b0 = _mm256_load_pd(b), b1 = _mm256_load_pd(b + 4);
        __m256d x;
        x = _mm256_broadcast_sd(a + 0);
        c00 = _mm256_fmadd_pd(x, b0, c00);
        c01 = _mm256_fmadd_pd(x, b1, c01);
        x = _mm256_broadcast_sd(a + 1);
        c10 = _mm256_fmadd_pd(x, b0, c10);
        c11 = _mm256_fmadd_pd(x, b1, c11);
        x = _mm256_broadcast_sd(a + 2);
        c20 = _mm256_fmadd_pd(x, b0, c20);
        c21 = _mm256_fmadd_pd(x, b1, c21);
        x = _mm256_broadcast_sd(a + 3);
        c30 = _mm256_fmadd_pd(x, b0, c30);
        c31 = _mm256_fmadd_pd(x, b1, c31);
        x = _mm256_broadcast_sd(a + 4);
        c40 = _mm256_fmadd_pd(x, b0, c40);
        c41 = _mm256_fmadd_pd(x, b1, c41);
        x = _mm256_broadcast_sd(a + 5);
        c50 = _mm256_fmadd_pd(x, b0, c50);
        c51 = _mm256_fmadd_pd(x, b1, c51);
        a += 6;
        b += 8;
    }

    __m256d va = _mm256_set1_pd(alpha);
    __m256d acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    if (beta == 0) {
        for (int i = 0; i < 6; i++) {
            _mm256_storeu_pd(c + i * ldc, _mm256_mul_pd(va, acc[2 * i]));
            _mm256_storeu_pd(c + i * ldc + 4, _mm256_mul_pd(va, acc[2 * i + 1]));
        }
    } else {
        __m256d vb = _mm256_set1_pd(beta);
        for (int i = 0; i < 6; i++) {
            double *ci = c + i * ldc;
            _mm256_storeu_pd(ci, _mm256_fmadd_pd(vb, _mm256_loadu_pd(ci),
                                                 _mm256_mul_pd(va, acc[2 * i])));
            _mm256_storeu_pd(ci + 4, _mm256_fmadd_pd(vb, _mm256_loadu_pd(ci + 4),
                                                     _mm256_mul_pd(va, acc[2 * i + 1])));
        }
    }
}

/* Transposes the 8 x 8 block in r: afterwards r[j] holds what was column j. */
AVX2_FN static inline void avx2_transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Six rows of A, each contiguous along k, into a k-major 6-tall panel:
 * 8 steps of k at a time through an 8 x 8 transpose (rows 6 and 7 are
 * don't-care), each step stored as a full vector whose last two lanes the
 * next store overwrites -- hence the two floats of slack past the panel. */
AVX2_FN static void sgemm_avx2_pack_a(const void *src, int64_t lda, int64_t k, void *dst) {
    const float *a = src;
    float *d = dst;
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 r[8];
        for (int i = 0; i < 6; i++) r[i] = _mm256_loadu_ps(a + i * lda + p);
        r[6] = r[7] = _mm256_setzero_ps();
        avx2_transpose8(r);
        for (int j = 0; j < 8; j++) _mm256_storeu_ps(d + (p + j) * 6, r[j]);
    }
    for (; p < k; p++)
        for (int i = 0; i < 6; i++) d[p * 6 + i] = a[i * lda + p];
}

/* Sixteen columns of op(B), each contiguous along k (the rows of a
 * transposed B), into a k-major 16-wide panel: two 8 x 8 transposes per 8
 * steps of k, aligned stores. */
AVX2_FN static void sgemm_avx2_pack_b(const void *src, int64_t ldb, int64_t k, void *dst) {
    const float *b = src;
    float *d = dst;
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
        for (int h = 0; h < 2; h++) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(b + (h * 8 + j) * ldb + p);
            avx2_transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_store_ps(d + (p + q) * 16 + h * 8, r[q]);
        }
    }
    for (; p < k; p++)
        for (int j = 0; j < 16; j++) d[p * 16 + j] = b[j * ldb + p];
}

const cpu_gemm_kernel cpu_sgemm_avx2 = {"avx2", sizeof(float), 6, 16, 144, 256, 4080,
                                        sgemm_avx2_6x16, sgemm_avx2_pack_a, sgemm_avx2_pack_b};
const cpu_gemm_kernel cpu_dgemm_avx2 = {"avx2", sizeof(double), 6, 8, 72, 256, 2040,
                                        dgemm_avx2_6x8, NULL, NULL};

#endif /* CPU_GEMM_X86 */
