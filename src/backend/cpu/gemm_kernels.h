/*
 * gemm_kernels.h -- what the GEMM driver (gemm.c) and its microkernels
 * (gemm_avx2.c, gemm_avx512.c, gemm_generic.c) agree on.
 *
 * A microkernel multiplies one packed MR x k panel of A by one packed k x NR
 * panel of B and writes the MR x NR tile of C:
 *
 *     C[i][j] = alpha * sum_p a[p*MR + i] * b[p*NR + j]  +  beta * C[i][j]
 *
 * for every i < MR, j < NR, with C[i][j] at c[i*ldc + j].  When beta == 0
 * the kernel never reads C.  k may be anything >= 1.  Panels come from the
 * driver's packing routines: `a` is k groups of MR consecutive elements and
 * `b` is k groups of NR consecutive elements, and `b` is 64-byte aligned, so
 * kernels may use aligned vector loads on it.  Edge tiles (fewer than MR
 * rows or NR columns of C) are the driver's business: it zero-pads the
 * panels and points the kernel at a scratch tile, so kernels only ever see
 * full tiles.
 *
 * A kernel set also names the cache blocking the driver should use with it:
 * kc elements of k per pass (a k x NR panel of B should sit in L1), mc rows
 * of A per packed block (mc x kc of A in L2) and nc columns of B per packed
 * block (kc x nc of B in L3).  mc is a multiple of mr and nc of nr.
 *
 * alpha and beta travel as double so one signature serves float and double;
 * the float kernels convert them, which is exact for values that came from
 * float.
 */
#ifndef SPORE_CPU_GEMM_KERNELS_H
#define SPORE_CPU_GEMM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef void (*cpu_gemm_micro_fn)(int64_t k, const void *a, const void *b, void *c,
                                  int64_t ldc, double alpha, double beta);
/* Optional vectorized packing of one full panel (NULL: the driver's C
 * loops).  pack_a: mr rows of op(A), each contiguous along k (row i at
 * a + i*lda), into a k-major mr-tall panel; it may write up to 8 elements
 * past the panel's end (the driver leaves that much slack).  pack_b: nr
 * columns of op(B), each contiguous along k (column j at b + j*ldb), into a
 * k-major nr-wide panel. */
typedef void (*cpu_gemm_pack_fn)(const void *src, int64_t ld, int64_t k, void *dst);

typedef struct cpu_gemm_kernel {
    const char *name;   /* "avx512", "avx2", "generic" */
    size_t esize;       /* 4 (float) or 8 (double) */
    int mr, nr;         /* register tile */
    int64_t mc, kc, nc; /* cache blocking */
    cpu_gemm_micro_fn micro;
    cpu_gemm_pack_fn pack_a, pack_b; /* may be NULL */
} cpu_gemm_kernel;

/* The kernel sets; each is defined in its own file.  The x86 ones exist
 * only on x86 builds and must be used only when sp_cpu_has_avx512f() /
 * sp_cpu_has_avx2_fma() say so. */
extern const cpu_gemm_kernel cpu_sgemm_generic, cpu_dgemm_generic;
#if defined(__x86_64__) || defined(__i386__)
#define CPU_GEMM_X86 1
extern const cpu_gemm_kernel cpu_sgemm_avx2, cpu_dgemm_avx2;
extern const cpu_gemm_kernel cpu_sgemm_avx512, cpu_dgemm_avx512;
#endif

#endif
