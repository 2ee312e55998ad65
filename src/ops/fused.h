/*
 * fused.h -- the expression program of the fused_elementwise primitive.
 *
 * The `fuse` pass (src/compiler/passes/fuse.c) rewrites a tree of
 * elementwise primitive calls into one call of fused_elementwise whose
 * string attribute `program` spells the tree in postfix, one token per
 * space-separated word:
 *
 *   i<k>              push input k of the fused call
 *   f:<x> n:<k> b:<0|1>
 *                     push a Python float / int / bool literal
 *   <op>              pop the arity of primitive <op> (ops.def, flagged
 *   <op>{k=v,...}     SP_OPF_ELEMWISE), push its result; the braces carry
 *                     the step's attributes (clamp{min=0.0,max=6.0},
 *                     gelu{approximate=tanh}, cast{dtype=float16})
 *
 * e.g. gelu(x*a + b) is "i0 i1 mul i2 add gelu".  An optional trailing
 * reduction is given by the attributes `reduce` ("sum", "mean", "max",
 * "min"), `axes` and `keepdims`, with the meaning they have on that
 * reduction primitive.
 *
 * Semantics are those of the unfused chain, exactly: each step's output
 * dtype and shape come from the step primitive's own inference on its
 * operands (so promotion and broadcasting match step by step), every step
 * result is rounded to its dtype (a float16 chain rounds after each step,
 * as the unfused one stores float16 after each op), and a literal takes the
 * dtype of the step's first tensor operand, the VM's weak typing of Python
 * scalars in a primitive call (runtime/tensor_value.c, rt_prim_call).
 *
 * A parsed program borrows nothing: attribute names and strings point into
 * its own copy of the text.  Everything here is plain C in libspore, so the
 * CUDA library (which generates its kernels from the same steps) links it.
 */
#ifndef SPORE_OPS_FUSED_H
#define SPORE_OPS_FUSED_H

#include "ops/ops.h"

#define SP_FUSED_MAX_STEPS 64
#define SP_FUSED_MAX_STEP_ATTRS 4

enum { SP_FARG_INPUT, SP_FARG_STEP, SP_FARG_LIT };
enum { SP_FLIT_FLOAT, SP_FLIT_INT, SP_FLIT_BOOL };

typedef struct sp_fused_arg {
    int kind;     /* SP_FARG_* */
    int index;    /* input number or step number */
    int lit_kind; /* SP_FLIT_* for a literal */
    double f;     /* float literal */
    int64_t i;    /* int / bool literal */
} sp_fused_arg;

typedef struct sp_fused_step {
    int op;     /* sp_op of an elementwise primitive */
    int n_args; /* its arity (1..3) */
    sp_fused_arg arg[3];
    int slot;   /* stack position the result occupies (0 = bottom) */
    int n_attrs;
    sp_attr attr[SP_FUSED_MAX_STEP_ATTRS]; /* names/strings point into prog->text */
    /* filled by sp_fused_resolve: */
    sp_meta meta;       /* the step's output */
    sp_dtype lit_dtype; /* dtype of this step's literals */
} sp_fused_step;

typedef struct sp_fused_prog {
    int n_steps;
    int n_slots;     /* deepest stack of step results, >= 1 */
    int max_input;   /* highest input referenced, -1 for none */
    int reduce_op;   /* SP_OP_SUM/MEAN/MAX/MIN, or -1 (set by sp_fused_resolve) */
    sp_meta elem;    /* the elementwise result (last step), before any reduction */
    sp_meta out;     /* the primitive's output */
    char *text;      /* owned copy of the program text (attrs point into it) */
    sp_fused_step step[SP_FUSED_MAX_STEPS];
} sp_fused_prog;

/* Parses a program (the grammar above).  Returns a malloc'd program the
 * caller frees with sp_fused_free, or NULL and an error naming the token. */
sp_fused_prog *sp_fused_parse(const char *text);
void sp_fused_free(sp_fused_prog *p); /* NULL is fine */

/* Runs inference through the program for n_in inputs of metas in and the
 * fused call's attrs (reduce/axes/keepdims): fills each step's meta and
 * lit_dtype, p->elem, p->reduce_op and p->out.  Errors are those the
 * unfused primitives would give (they name the step's primitive), or name
 * fused_elementwise for an input the program does not have. */
sp_status sp_fused_resolve(sp_fused_prog *p, int n_in, const sp_meta *in, const sp_attrs *attrs);

/* The step's attributes as an sp_attrs (borrowing from the program).
 * Cannot fail. */
void sp_fused_step_attrs(const sp_fused_step *s, sp_attrs *out);

/* Parse + resolve for a kernel: the fused call's `program` attribute read
 * and checked against the inputs.  NULL + error. */
sp_fused_prog *sp_fused_prepare(int n_in, const sp_meta *in, const sp_attrs *attrs);

#endif
