/*
 * elementwise.h -- the engine shared by the CPU elementwise kernels
 * (unary.c, binary.c, cast.c).
 *
 * An elementwise kernel is split in two.  The engine (cast.c) walks the
 * output and its broadcast inputs in C order: it aligns every input to the
 * output's shape (broadcast dims get stride 0), drops size-1 dims, merges
 * adjacent dims that are contiguous in every operand, and hands out "runs":
 * the longest stretches along the innermost merged dim, each with one
 * constant byte stride per operand.  A loop (cpu_ew_loop) does the work on
 * one run; it is generated per op and per dtype by macros, and it checks the
 * strides itself so that the common cases (all contiguous; one input a
 * broadcast scalar) get a plain indexed loop gcc can vectorize.
 *
 * Loops exist only for "compute dtypes" (float32, float64, the integer types
 * and bool).  When an operand's dtype differs from the compute dtype the
 * loop wants (float16/bfloat16 always compute in float32; mixed input
 * dtypes compute in the promoted type), the engine converts that operand in
 * blocks of CPU_EW_CHUNK elements into a buffer on the stack, runs the loop
 * on the buffers and converts the block of results back.  So the conversion
 * rules of cast (numpy's astype, never undefined behaviour) are the only
 * ones in the family, and a loop never sees a dtype it was not written for.
 *
 * Work is split over the thread pool by flat output index; the result of
 * every element depends on that element only, so any thread count gives
 * bit-identical results.
 */
#ifndef SPORE_CPU_ELEMENTWISE_H
#define SPORE_CPU_ELEMENTWISE_H

#include "backend/cpu/cpu.h"

/* At most this many inputs per elementwise op (where has 3). */
#define CPU_EW_MAX_IN 3
/* Elements per conversion block: the stack buffers are 4 * 8 * CHUNK bytes. */
#define CPU_EW_CHUNK 512
/* Grains for sp_parallel_for, in output elements. */
#define CPU_EW_GRAIN_CHEAP 32768
#define CPU_EW_GRAIN_HEAVY 8192

/* One run of n elements.  p[0] is the output, p[1..nin] the inputs; s[k] is
 * operand k's stride in BYTES (0 for a broadcast operand; never 0 for the
 * output).  ctx is the op's constant state (attrs), possibly NULL. */
typedef void (*cpu_ew_loop)(char *const *p, const int64_t *s, int64_t n, const void *ctx);

typedef struct cpu_ew_spec {
    const char *name;                  /* primitive name, for errors */
    int nin;                           /* 1..CPU_EW_MAX_IN */
    sp_dtype ctype[CPU_EW_MAX_IN + 1]; /* dtype the loop reads: [0] out, [1..] inputs */
    cpu_ew_loop loop;
    const void *ctx;
    int64_t grain; /* CPU_EW_GRAIN_* */
} cpu_ew_spec;

/* Runs spec->loop over out (contiguous, the broadcast shape of the inputs)
 * and in[0..nin-1] (any strides, broadcastable to out), converting operands
 * whose dtype is not spec->ctype[k].  Returns SP_OK; cannot fail on
 * well-formed arguments (sp_op_call checked shapes). */
sp_status cpu_ew_run(const cpu_ew_spec *spec, sp_tensor *out, sp_tensor *const *in);

/* Converts n elements of dtype sd at src (byte stride ss, may be 0 or
 * negative) to dtype dd at dst (byte stride ds), with sp_tensor_cast's rules:
 * float->int truncates toward zero, NaN/inf/out of int64 range give 0, ints
 * wrap, anything nonzero (NaN too) is true.  Conversions to float16/bfloat16
 * round once, to nearest even, from the exact value.  Cannot fail. */
void cpu_ew_convert(sp_dtype dd, void *dst, int64_t ds, sp_dtype sd, const void *src, int64_t ss,
                    int64_t n);

/* The dtype a float16/bfloat16 computes in (float32); others map to themselves. */
static inline sp_dtype cpu_ew_widen(sp_dtype d) {
    return (d == SP_F16 || d == SP_BF16) ? SP_F32 : d;
}

/* ---- one primitive's loop, for kernels generated from several ----
 * The fused kernel (fused.c) runs a chain of elementwise primitives block
 * by block; to give the bits the unfused chain gives, each step runs the
 * very loop, compute dtypes and constant state that the primitive's own
 * kernel would pick.  Those choices live in one place per family (the
 * functions below), which the kernels themselves go through too. */

/* The constant state a loop reads (its spec's ctx points into one). */
typedef struct cpu_ew_softplus_ctx {
    double beta, threshold;
} cpu_ew_softplus_ctx;
typedef struct cpu_ew_clamp_ctx {
    int has_lo, has_hi;
    double lo, hi;
} cpu_ew_clamp_ctx;
typedef struct cpu_ew_cast_ctx {
    sp_dtype dd, sd;
} cpu_ew_cast_ctx;
typedef union cpu_ew_ctx {
    cpu_ew_softplus_ctx softplus;
    cpu_ew_clamp_ctx clamp;
    cpu_ew_cast_ctx cast;
} cpu_ew_ctx;

/* Fills *spec (and *ctx, which spec->ctx may point into: keep it alive as
 * long as spec) with what cpu_<op> runs for inputs of dtypes in[0..nin-1]
 * and an output of dtype out (inference's).  Covers every primitive flagged
 * SP_OPF_ELEMWISE; SP_ERR_UNSUPPORTED for others, SP_ERR_DTYPE for a dtype
 * with no loop, SP_ERR_ARG for a bad attribute (as the kernel would).
 * unary.c: cpu_ew_unary_spec; binary.c: cpu_ew_binary_spec (two inputs, and
 * where); cast.c: cpu_ew_cast_spec; cpu_ew_spec_of (cast.c) picks one. */
sp_status cpu_ew_unary_spec(int op, sp_dtype x, const sp_attrs *attrs, cpu_ew_spec *spec,
                            cpu_ew_ctx *ctx);
sp_status cpu_ew_binary_spec(int op, int nin, const sp_dtype *in, sp_dtype out,
                             cpu_ew_spec *spec);
sp_status cpu_ew_cast_spec(sp_dtype out, sp_dtype x, cpu_ew_spec *spec, cpu_ew_ctx *ctx);
sp_status cpu_ew_spec_of(int op, int nin, const sp_dtype *in, sp_dtype out,
                         const sp_attrs *attrs, cpu_ew_spec *spec, cpu_ew_ctx *ctx);

/* ---- loop generators ----
 * CPU_EW_LOOP1(name, T, OT, EXPR): y = EXPR of `x` (type T), output OT.
 * CPU_EW_LOOP2(name, T, OT, EXPR): y = EXPR of `a`, `b` (type T).
 * Inside EXPR, `c` is the ctx pointer (const void *).  Each loop has a
 * contiguous path, broadcast-scalar paths (binary) and a strided path; the
 * contiguous ones are what gcc vectorizes. */
#define CPU_EW_LOOP1_BODY(T, OT, EXPR)                                                        \
    OT *o_ = (OT *)p[0];                                                                     \
    const T *i_ = (const T *)p[1];                                                           \
    if (s[0] == (int64_t)sizeof(OT) && s[1] == (int64_t)sizeof(T)) {                         \
        for (int64_t k_ = 0; k_ < n; k_++) {                                                 \
            T x = i_[k_];                                                                    \
            o_[k_] = (OT)(EXPR);                                                             \
        }                                                                                    \
    } else {                                                                                 \
        char *po_ = p[0];                                                                    \
        const char *pi_ = p[1];                                                              \
        for (int64_t k_ = 0; k_ < n; k_++, po_ += s[0], pi_ += s[1]) {                       \
            T x = *(const T *)pi_;                                                           \
            *(OT *)po_ = (OT)(EXPR);                                                         \
        }                                                                                    \
    }

#define CPU_EW_LOOP1(name, T, OT, EXPR)                                                       \
    static void name(char *const *p, const int64_t *s, int64_t n, const void *c) {           \
        (void)c;                                                                             \
        CPU_EW_LOOP1_BODY(T, OT, EXPR)                                                       \
    }

#define CPU_EW_LOOP2_BODY(T, OT, EXPR)                                                        \
    OT *o_ = (OT *)p[0];                                                                     \
    const T *x_ = (const T *)p[1], *y_ = (const T *)p[2];                                    \
    const int64_t es_ = (int64_t)sizeof(T);                                                  \
    if (s[0] == (int64_t)sizeof(OT) && s[1] == es_ && s[2] == es_) {                         \
        for (int64_t k_ = 0; k_ < n; k_++) {                                                 \
            T a = x_[k_], b = y_[k_];                                                        \
            o_[k_] = (OT)(EXPR);                                                             \
        }                                                                                    \
    } else if (s[0] == (int64_t)sizeof(OT) && s[1] == es_ && s[2] == 0) {                    \
        const T b = y_[0];                                                                   \
        for (int64_t k_ = 0; k_ < n; k_++) {                                                 \
            T a = x_[k_];                                                                    \
            o_[k_] = (OT)(EXPR);                                                             \
        }                                                                                    \
    } else if (s[0] == (int64_t)sizeof(OT) && s[1] == 0 && s[2] == es_) {                    \
        const T a = x_[0];                                                                   \
        for (int64_t k_ = 0; k_ < n; k_++) {                                                 \
            T b = y_[k_];                                                                    \
            o_[k_] = (OT)(EXPR);                                                             \
        }                                                                                    \
    } else {                                                                                 \
        char *po_ = p[0];                                                                    \
        const char *pa_ = p[1], *pb_ = p[2];                                                 \
        for (int64_t k_ = 0; k_ < n; k_++, po_ += s[0], pa_ += s[1], pb_ += s[2]) {          \
            T a = *(const T *)pa_, b = *(const T *)pb_;                                      \
            *(OT *)po_ = (OT)(EXPR);                                                         \
        }                                                                                    \
    }

#define CPU_EW_LOOP2(name, T, OT, EXPR)                                                       \
    static void name(char *const *p, const int64_t *s, int64_t n, const void *c) {           \
        (void)c;                                                                             \
        CPU_EW_LOOP2_BODY(T, OT, EXPR)                                                       \
    }

#endif
