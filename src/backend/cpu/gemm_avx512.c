/*
 * gemm_avx512.c -- the AVX-512F microkernels of the GEMM driver (gemm.c).
 *
 * sgemm: a 12 x 32 tile of C in 24 zmm accumulators (12 rows x two
 * 16-float vectors).  Each step of k loads one 32-float row of the packed B
 * panel (two aligned 64-byte loads), broadcasts each of the 12 A values and
 * issues 24 FMAs.  Two FMA units with a 4-cycle latency need at least 8
 * independent chains; 24 leave room for load latency, and the 24 + 2 + a
 * broadcast register stay inside the 32 zmm registers, so nothing spills
 * (the compiler may fold the broadcasts into the FMAs' {1to16} memory
 * operands, which is as good).  14 x 32 would use 28 accumulators and
 * squeeze out slightly more B reuse, at the price of no slack at all.
 *
 * dgemm: the same shape with doubles, 12 x 16.
 *
 * Blocking for Sapphire Rapids class cores (48 KiB L1d, 2 MiB L2): kc =
 * 256 keeps a 256 x 32 float panel of B (32 KiB) in L1; mc = 240 rows of A
 * (240 KiB) sit in L2; kc x nc of B in L3.  Measured there (1 and 2
 * threads, n = 256..2048), kc from 192 to 384 and mc from 120 to 480 are
 * all within a few per cent; 256 / 240 was best at n = 256 with 2 threads.
 *
 * The packing routines transpose 8 x 8 blocks with AVX instructions (which
 * avx512f includes): A's rows and a transposed B's rows are contiguous
 * along k, the panels are k-major.
 *
 * Compiled for avx512f through function attributes; the driver calls these
 * kernels only when sp_cpu_has_avx512f() says the CPU and OS allow it.
 */
#include "backend/cpu/gemm_kernels.h"

#ifdef CPU_GEMM_X86
#include <immintrin.h>

#define AVX512_FN __attribute__((target("avx512f")))

/* One row of the tile: broadcast A value i and update both accumulators of
 * row i.  T is ps or pd. */
#define ROW_PS(i)                                   \
    x = _mm512_set1_ps(a[i]);                       \
    c##i##_0 = _mm512_fmadd_ps(x, b0, c##i##_0);    \
    c##i##_1 = _mm512_fmadd_ps(x, b1, c##i##_1)
#define ROW_PD(i)                                   \
    x = _mm512_set1_pd(a[i]);                       \
    c##i##_0 = _mm512_fmadd_pd(x, b0, c##i##_0);    \
    c##i##_1 = _mm512_fmadd_pd(x, b1, c##i##_1)

AVX512_FN static void sgemm_avx512_12x32(int64_t k, const void *pa, const void *pb, void *pc,
                                         int64_t ldc, double alpha, double beta) {
    const float *a = pa, *b = pb;
    float *c = pc;
    __m512 z = _mm512_setzero_ps();
    __m512 c0_0 = z, c0_1 = z, c1_0 = z, c1_1 = z, c2_0 = z, c2_1 = z;
    __m512 c3_0 = z, c3_1 = z, c4_0 = z, c4_1 = z, c5_0 = z, c5_1 = z;
    __m512 c6_0 = z, c6_1 = z, c7_0 = z, c7_1 = z, c8_0 = z, c8_1 = z;
    __m512 c9_0 = z, c9_1 = z, c10_0 = z, c10_1 = z, c11_0 = z, c11_1 = z;
    for (int r = 0; r < 12; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
    }

#pragma GCC unroll 2
    for (int64_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        __m512 x;
        _mm_prefetch((const char *)(b + 512), _MM_HINT_T0);
        ROW_PS(0); ROW_PS(1); ROW_PS(2); ROW_PS(3); ROW_PS(4); ROW_PS(5);
        ROW_PS(6); ROW_PS(7); ROW_PS(8); ROW_PS(9); ROW_PS(10); ROW_PS(11);
        a += 12;
        b += 32;
    }

    __m512 acc[24] = {c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0, c3_1,
                      c4_0, c4_1, c5_0, c5_1, c6_0, c6_1, c7_0, c7_1,
                      c8_0, c8_1, c9_0, c9_1, c10_0, c10_1, c11_0, c11_1};
    __m512 va = _mm512_set1_ps((float)alpha);
    if (beta == 0) {
        for (int i = 0; i < 12; i++) {
            _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(va, acc[2 * i]));
            _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(va, acc[2 * i + 1]));
        }
    } else {
        __m512 vb = _mm512_set1_ps((float)beta);
        for (int i = 0; i < 12; i++) {
            float *ci = c + i * ldc;
            _mm512_storeu_ps(ci, _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci),
                                                 _mm512_mul_ps(va, acc[2 * i])));
            _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(vb, _mm512_loadu_ps(ci + 16),
                                                      _mm512_mul_ps(va, acc[2 * i + 1])));
        }
    }
}

AVX512_FN static void dgemm_avx512_12x16(int64_t k, const void *pa, const void *pb, void *pc,
                                         int64_t ldc, double alpha, double beta) {
    const double *a = pa, *b = pb;
    double *c = pc;
    __m512d z = _mm512_setzero_pd();
    __m512d c0_0 = z, c0_1 = z, c1_0 = z, c1_1 = z, c2_0 = z, c2_1 = z;
    __m512d c3_0 = z, c3_1 = z, c4_0 = z, c4_1 = z, c5_0 = z, c5_1 = z;
    __m512d c6_0 = z, c6_1 = z, c7_0 = z, c7_1 = z, c8_0 = z, c8_1 = z;
    __m512d c9_0 = z, c9_1 = z, c10_0 = z, c10_1 = z, c11_0 = z, c11_1 = z;
    for (int r = 0; r < 12; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
    }

#pragma GCC unroll 2
    for (int64_t p = 0; p < k; p++) {
        __m512d b0 = _mm512_load_pd(b), b1 = _mm512_load_pd(b + 8);
        __m512d x;
        ROW_PD(0); ROW_PD(1); ROW_PD(2); ROW_PD(3); ROW_PD(4); ROW_PD(5);
        ROW_PD(6); ROW_PD(7); ROW_PD(8); ROW_PD(9); ROW_PD(10); ROW_PD(11);
        a += 12;
        b += 16;
    }

    __m512d acc[24] = {c0_0, c0_1, c1_0, c1_1, c2_0, c2_1, c3_0, c3_1,
                       c4_0, c4_1, c5_0, c5_1, c6_0, c6_1, c7_0, c7_1,
                       c8_0, c8_1, c9_0, c9_1, c10_0, c10_1, c11_0, c11_1};
    __m512d va = _mm512_set1_pd(alpha);
    if (beta == 0) {
        for (int i = 0; i < 12; i++) {
            _mm512_storeu_pd(c + i * ldc, _mm512_mul_pd(va, acc[2 * i]));
            _mm512_storeu_pd(c + i * ldc + 8, _mm512_mul_pd(va, acc[2 * i + 1]));
        }
    } else {
        __m512d vb = _mm512_set1_pd(beta);
        for (int i = 0; i < 12; i++) {
            double *ci = c + i * ldc;
            _mm512_storeu_pd(ci, _mm512_fmadd_pd(vb, _mm512_loadu_pd(ci),
                                                 _mm512_mul_pd(va, acc[2 * i])));
            _mm512_storeu_pd(ci + 8, _mm512_fmadd_pd(vb, _mm512_loadu_pd(ci + 8),
                                                     _mm512_mul_pd(va, acc[2 * i + 1])));
        }
    }
}

/* Transposes the 8 x 8 block in r: afterwards r[j] holds what was column j
 * (AVX instructions, which avx512f includes). */
AVX512_FN static inline void avx512_transpose8(__m256 r[8]) {
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

/* Twelve rows of A, each contiguous along k, into a k-major 12-tall panel:
 * per 8 steps of k, rows 0-7 and rows 8-11 (padded) go through an 8 x 8
 * transpose; each step's 12 values are one 8-float and one 4-float store. */
AVX512_FN static void sgemm_avx512_pack_a(const void *src, int64_t lda, int64_t k, void *dst) {
    const float *a = src;
    float *d = dst;
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 lo[8], hi[8];
        for (int i = 0; i < 8; i++) lo[i] = _mm256_loadu_ps(a + i * lda + p);
        for (int i = 0; i < 4; i++) hi[i] = _mm256_loadu_ps(a + (8 + i) * lda + p);
        hi[4] = hi[5] = hi[6] = hi[7] = _mm256_setzero_ps();
        avx512_transpose8(lo);
        avx512_transpose8(hi);
        for (int j = 0; j < 8; j++) {
            _mm256_storeu_ps(d + (p + j) * 12, lo[j]);
            _mm_storeu_ps(d + (p + j) * 12 + 8, _mm256_castps256_ps128(hi[j]));
        }
    }
    for (; p < k; p++)
        for (int i = 0; i < 12; i++) d[p * 12 + i] = a[i * lda + p];
}

/* Thirty-two columns of op(B), each contiguous along k (rows of a
 * transposed B), into a k-major 32-wide panel: four 8 x 8 transposes per 8
 * steps of k, aligned stores. */
AVX512_FN static void sgemm_avx512_pack_b(const void *src, int64_t ldb, int64_t k, void *dst) {
    const float *b = src;
    float *d = dst;
    int64_t p = 0;
    for (; p + 8 <= k; p += 8) {
        for (int h = 0; h < 4; h++) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(b + (h * 8 + j) * ldb + p);
            avx512_transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_store_ps(d + (p + q) * 32 + h * 8, r[q]);
        }
    }
    for (; p < k; p++)
        for (int j = 0; j < 32; j++) d[p * 32 + j] = b[j * ldb + p];
}

const cpu_gemm_kernel cpu_sgemm_avx512 = {"avx512", sizeof(float), 12, 32, 240, 256, 4096,
                                          sgemm_avx512_12x32, sgemm_avx512_pack_a,
                                          sgemm_avx512_pack_b};
const cpu_gemm_kernel cpu_dgemm_avx512 = {"avx512", sizeof(double), 12, 16, 120, 192, 2048,
                                          dgemm_avx512_12x16, NULL, NULL};

#endif /* CPU_GEMM_X86 */
