/*
 * cpu_features.c -- which vector instruction sets the kernels may use.
 *
 * Kernels compiled with AVX2/AVX-512 intrinsics (through function-level
 * target attributes) pick their code path at run time with these checks, so
 * one binary runs on any x86-64.  An instruction set is usable only when the
 * CPU has it (cpuid) AND the OS saves its registers on a context switch
 * (OSXSAVE set and XCR0, read with xgetbv, enabling the state): a kernel or
 * hypervisor may hide YMM/ZMM state even on a CPU that has the units.
 *
 *   avx2_fma: cpuid.1:ECX.{FMA(12), OSXSAVE(27), AVX(28)}, cpuid.7.0:EBX.AVX2(5),
 *             XCR0 bits 1,2 (SSE, YMM state)
 *   avx512f:  the above plus cpuid.7.0:EBX.AVX512F(16), XCR0 bits 5,6,7
 *             (opmask, ZMM0-15 upper halves, ZMM16-31)
 *
 * SPORE_DISABLE_AVX512=1 / SPORE_DISABLE_AVX2=1 turn a path off (to test the
 * fallbacks).  Results are computed once and cached; the check is thread-
 * safe (pthread_once) and cannot fail.  Non-x86 builds answer 0.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CORE_X86 1
#endif

static int has_avx2_fma, has_avx512f;
static pthread_once_t features_once = PTHREAD_ONCE_INIT;

static int core_env_set(const char *name) {
    const char *s = getenv(name);
    return s && *s && *s != '0';
}

#ifdef CORE_X86
static uint64_t core_xgetbv0(void) {
    uint32_t lo, hi;
    /* the raw encoding of xgetbv, so no -mxsave is needed */
    __asm__ __volatile__(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}
#endif

static void core_detect(void) {
#ifdef CORE_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    if (!osxsave || !avx) return;
    uint64_t xcr0 = core_xgetbv0();
    int ymm_os = (xcr0 & 0x6) == 0x6;
    int zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0;
    if (__get_cpuid_max(0, NULL) < 7) return;
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    has_avx2_fma = ymm_os && avx2 && fma && !core_env_set("SPORE_DISABLE_AVX2");
    has_avx512f = has_avx2_fma && zmm_os && avx512f && !core_env_set("SPORE_DISABLE_AVX512");
#endif
}

int sp_cpu_has_avx2_fma(void) {
    pthread_once(&features_once, core_detect);
    return has_avx2_fma;
}

int sp_cpu_has_avx512f(void) {
    pthread_once(&features_once, core_detect);
    return has_avx512f;
}
