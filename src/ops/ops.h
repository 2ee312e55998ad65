/*
 * ops.h -- the primitive registry, inside Spore.
 *
 * ops.def is expanded here into the enum SP_OP_<ID>, the inference function
 * declarations and the registry table sp_op_defs[].  Shape/dtype inference
 * works on sp_meta (dtype + shape, no data), so the compiler's abstract
 * interpreter can run it on programs that have not run yet; sp_op_call()
 * (dispatch.c) runs the same inference on real tensors, allocates the
 * outputs and hands them to the backend of the inputs' device -- or, in
 * meta mode (a meta input, or a trace installed), stops after inference
 * and returns meta outputs.
 *
 * Every inference error names the primitive and the shapes it saw, e.g.
 * "add: shapes (2, 3) and (4,) cannot be broadcast".
 */
#ifndef SPORE_OPS_INTERNAL_H
#define SPORE_OPS_INTERNAL_H

#include "spore/ops.h"

typedef enum sp_op {
#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) SP_OP_##ID,
#include "ops.def"
#undef SP_OP
    SP_OP_COUNT
} sp_op;

enum {
    SP_OPF_DIFF = 1u << 0,
    SP_OPF_INPLACE = 1u << 1,
    SP_OPF_RANDOM = 1u << 2,
    SP_OPF_ELEMWISE = 1u << 3
};

/* What inference knows of a tensor: its dtype and shape. */
typedef struct sp_meta {
    sp_dtype dtype;
    int ndim;
    int64_t shape[SP_MAX_DIMS];
} sp_meta;

struct sp_op_def;
/* Fills out[0..*n_out-1] from the inputs' metas and the attributes.  The
 * caller has checked the arity and input 0's dtype against the table; the
 * function checks everything else and returns an error naming the op. */
typedef sp_status (*sp_infer_fn)(const struct sp_op_def *def, int n_in, const sp_meta *in,
                                 const sp_attrs *attrs, int *n_out, sp_meta *out);

typedef struct sp_op_def {
    const char *name;
    int n_in, n_out;
    uint32_t dtypes;
    uint32_t flags;
    sp_infer_fn infer;
} sp_op_def;

/* The table, indexed by sp_op. */
extern const sp_op_def sp_op_defs[SP_OP_COUNT];

/* Declarations of every inference function named in ops.def. */
#define SP_OP(ID, name, nin, nout, dtypes, infer, flags)                                     \
    sp_status infer_##infer(const sp_op_def *def, int n_in, const sp_meta *in,               \
                            const sp_attrs *attrs, int *n_out, sp_meta *out);
#include "ops.def"
#undef SP_OP

/* Inference on metas: checks arity and input 0's dtype, then runs the op's
 * infer function.  Used by sp_op_call and by the compiler. */
sp_status sp_op_infer(int op, int n_in, const sp_meta *in, const sp_attrs *attrs, int *n_out,
                      sp_meta *out);

/* The meta of a tensor.  Cannot fail. */
sp_meta sp_meta_of(const sp_tensor *t);

/* Runs `op` with outputs the caller allocated (shapes and dtypes must match
 * inference).  The memory planner of the compiler calls this. */
sp_status sp_op_call_into(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs,
                          int n_out, sp_tensor *const *out);

/* ---- meta mode and the primitive-call trace (dispatch.c) ---- */

/* Called once per primitive call in meta mode, after inference: op, the
 * inputs (meta tensors, or real ones: constants), the attributes as the
 * caller gave them, and the new meta outputs.  Everything is borrowed for
 * the duration of the call (retain what you keep). */
typedef void (*sp_op_trace_fn)(void *ctx, int op, int n_in, sp_tensor *const *in,
                               const sp_attrs *attrs, int n_out, sp_tensor *const *out);
/* Installs fn for the calling thread (NULL removes it) and returns the
 * previous pair through prev_fn/prev_ctx (may be NULL).  While a trace is
 * installed, EVERY primitive call on this thread (also those with no tensor
 * inputs: zeros, arange, random draws) produces meta outputs and runs no
 * kernel, then calls fn after inference.  A call with a meta input runs
 * the same way with or without a trace.  Random primitives in meta mode
 * draw nothing (the global generator is untouched).  Cannot fail. */
void sp_op_trace_set(sp_op_trace_fn fn, void *ctx, sp_op_trace_fn *prev_fn, void **prev_ctx);
/* Nonzero while a trace is installed on this thread.  Cannot fail. */
int sp_op_tracing(void);

/* ---- helpers shared by the inference functions (infer_util.c) ---- */
/* Normalizes axis into [0, ndim) or returns an error naming op and axis. */
sp_status sp_norm_axis(const char *op, int64_t axis, int ndim, int *out);
/* numpy broadcast of two shapes into out; error names op and both shapes. */
sp_status sp_broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b,
                              int *nout, int64_t *out);

#endif
