/*
 * gemm.h -- the CPU backend's matrix-multiply engine, shared by matmul,
 * conv2d (im2col) and anything else that reduces to GEMM.
 *
 * Row-major BLAS semantics: C = alpha * op(A) @ op(B) + beta * C, where
 * op(X) is X or X^T as trans* says, op(A) is M x K, op(B) is K x N and C is
 * M x N with leading dimensions lda/ldb/ldc (elements between rows).  When
 * beta == 0, C is not read (NaNs in C do not leak through).
 *
 * cpu_sgemm packs panels of A and B into aligned scratch and runs a
 * register-blocked microkernel picked at run time (AVX-512, AVX2+FMA, or
 * portable C) on the thread pool; it cannot fail (scratch comes from a
 * per-thread cache; on allocation failure it falls back to an unpacked loop).
 * `threads` may be 0 for "use the pool"; callers that already run inside a
 * parallel loop get a single-threaded GEMM automatically.
 */
#ifndef SPORE_CPU_GEMM_H
#define SPORE_CPU_GEMM_H

#include <stdint.h>

void cpu_sgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
               int64_t ldc);

void cpu_dgemm(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double *A, int64_t lda, const double *B, int64_t ldb, double beta,
               double *C, int64_t ldc);

/* Name of the microkernel cpu_sgemm uses on this machine ("avx512",
 * "avx2", "generic"); for benchmarks and run-check. */
const char *cpu_sgemm_kernel_name(void);

#endif
