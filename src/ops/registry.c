/*
 * registry.c -- the table of primitives, built from ops.def.
 *
 * Every fact about a primitive that does not depend on its inputs lives in
 * one row of ops.def: its name, arity, the dtypes input 0 may have, its
 * flags and the inference function that knows the rest.  This file expands
 * those rows into sp_op_defs[] (indexed by the enum sp_op, so the enum and
 * the table cannot drift apart) and answers the public questions about a
 * primitive by id or by name.
 *
 * Ids are dense, 0 .. SP_OP_COUNT-1, in the order of ops.def; they are not
 * stable across versions of Spore and are never written to files (IR text
 * and checkpoints use names).  sp_op_find is a linear scan over about a
 * hundred short strings, far cheaper than anything done with the result;
 * the compiler resolves names once per program, not per call.
 *
 * Every accessor tolerates a bad id (returns 0, -1 or NULL) so that a
 * binding passing garbage gets an answer, not a crash.
 */
#include <string.h>

#include "ops/ops.h"

const sp_op_def sp_op_defs[SP_OP_COUNT] = {
#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) \
    [SP_OP_##ID] = {#name, nin, nout, dtypes, flags, infer_##infer},
#include "ops.def"
#undef SP_OP
};

static const sp_op_def *ops_def(int op) {
    return (op >= 0 && op < SP_OP_COUNT) ? &sp_op_defs[op] : NULL;
}

int sp_op_count(void) { return SP_OP_COUNT; }

int sp_op_find(const char *name) {
    if (!name) {
        sp_error(SP_ERR_ARG, "unknown primitive (NULL name)");
        return -1;
    }
    for (int i = 0; i < SP_OP_COUNT; i++)
        if (strcmp(sp_op_defs[i].name, name) == 0) return i;
    sp_error(SP_ERR_ARG, "unknown primitive '%s'", name);
    return -1;
}

const char *sp_op_name(int op) {
    const sp_op_def *d = ops_def(op);
    return d ? d->name : NULL;
}

int sp_op_num_inputs(int op) {
    const sp_op_def *d = ops_def(op);
    return d ? d->n_in : 0;
}

int sp_op_num_outputs(int op) {
    const sp_op_def *d = ops_def(op);
    return d ? d->n_out : 0;
}

uint32_t sp_op_dtypes(int op) {
    const sp_op_def *d = ops_def(op);
    return d ? d->dtypes : 0;
}

int sp_op_is_differentiable(int op) {
    const sp_op_def *d = ops_def(op);
    return d ? (d->flags & SP_OPF_DIFF) != 0 : 0;
}

int sp_op_is_inplace(int op) {
    const sp_op_def *d = ops_def(op);
    return d ? (d->flags & SP_OPF_INPLACE) != 0 : 0;
}
