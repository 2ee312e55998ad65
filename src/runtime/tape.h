/*
 * tape.h -- the eager (PyNative) tape of DESIGN §1: gradients of code that
 * ran one primitive at a time, from the same bprop rules, compiled by the
 * same pipeline.
 *
 * While a tape records on a thread, every primitive the runtime runs (the
 * hook ad_record_op of src/ad/ad.h: operators, ops.*, Tensor methods, P
 * instances, and the views that stand for a primitive) is noted with its
 * op, attributes, input tensors and output tensors, retained: the
 * backward pass reads them instead of recomputing the forward.  Tensors
 * are known by identity (the sp_tensor pointer) and version: each tensor
 * the tape meets becomes a node; a node is *active* when it is a float
 * tensor that depends on a leaf (an input or weight being differentiated).
 * Only calls with an active input are kept, so constant work costs a
 * lookup.
 *
 * sp_tape_grad walks the kept calls backwards from the outputs and builds
 * ONE IR graph (tape_grad.c) whose parameters are the tensors the rules
 * read plus the outputs' sensitivities, and whose body calls each
 * primitive's rule bprop_<op>(inputs..., out, dout, attrs...) and sums the
 * gradients per node (None is zero).  It is compiled like any program
 * (specialize -> optimize -> fuse -> lower) and cached per *structure*
 * (ops, attributes, dtypes, shapes, devices, wiring, leaves), so a
 * training loop compiles once and then only runs the kernel list.
 *
 * In-place writes.  In-place primitives (assign, the optimizer updates)
 * and Tensor.__setitem__ bump a version of the buffer they write; a node
 * saved before the write is stale.  The backward refuses to read a stale
 * node it needs (an error naming the writer, PyTorch's version counter);
 * reading a tensor again after a write makes a new node.  A write that is
 * differentiated (sp_tape_setitem_rebind: setitem recorded functionally)
 * moves the written tensor to the node of its new value.
 *
 * Blindness.  Work the tape cannot see -- a compiled graph or run-time J
 * running inside the taped code, or a nested tape -- marks the tape blind
 * (sp_tape_blind says why); its gradient would be wrong, so the caller
 * must not use it (the Python package then compiles the source instead).
 *
 * Threads: a tape belongs to the thread that began it; the compiled
 * backward cache is shared and locked.  Errors are values: NULL / status
 * and sp_error, nothing aborts on user input.
 */
#ifndef SPORE_RUNTIME_TAPE_H
#define SPORE_RUNTIME_TAPE_H

#include "ir/value.h"

typedef struct sp_tape sp_tape;

/* A new tape, recording on the calling thread from now on.  A tape already
 * recording on the thread is suspended until sp_tape_end and marked blind
 * (it cannot see this tape's backward).  NULL + error when out of memory. */
sp_tape *sp_tape_begin(void);
/* Stops t recording (t must be the innermost tape of the thread) and
 * resumes the tape it suspended.  NULL is fine.  Cannot fail. */
void sp_tape_end(sp_tape *t);
/* Frees t and releases every tensor it holds; ends it first if it still
 * records.  NULL is fine. */
void sp_tape_free(sp_tape *t);

/* Makes tensor x a leaf of t (differentiated when it is a float tensor):
 * its node id in *id, the same id when x was added before.  Call before
 * the code runs.  SP_OK or SP_ERR_NOMEM. */
sp_status sp_tape_add_leaf(sp_tape *t, sp_tensor *x, int *id);
/* The node of tensor x as t knows it now (-1 when t never saw x, or saw an
 * older version of it).  Cannot fail. */
int sp_tape_node_of(sp_tape *t, const sp_tensor *x);

/* NULL, or why t is blind (work it could not see ran while it recorded):
 * its gradient would be wrong, so the caller computes it another way.
 * Errors met while recording (out of memory, a read through a stale view)
 * are not blindness: sp_tape_grad reports them.  Borrowed, valid while t
 * lives. */
const char *sp_tape_blind(const sp_tape *t);

/* ---- for the runtime and the extension while a tape records ---------------- */

/* The thread's recording tape (not paused), or NULL.  Cannot fail. */
sp_tape *sp_tape_current(void);
/* Pause/resume recording on this thread (nestable): helper computations
 * that are not part of the user's program (masks for setitem, copies).
 * Cannot fail. */
void sp_tape_pause(void);
void sp_tape_resume(void);
/* Marks the thread's tape (recording or paused) blind: `what` ran where
 * the tape cannot see it.  No-op without a tape.  Cannot fail. */
void sp_tape_note_opaque(const char *what);
/* Notes an in-place write of x's buffer by `op` (a string literal) that is
 * not differentiated.  No-op without a tape. */
void sp_tape_note_write(const sp_tensor *x, const char *op);
/* Nonzero when x is active on the thread's tape (carries a gradient). */
int sp_tape_active(const sp_tensor *x);
/* After x's buffer was overwritten with the values of w, a tensor the tape
 * recorded (setitem, recorded functionally): bumps the buffer's version
 * and makes x's node w's node.  Other views of the buffer read later are
 * an error.  SP_OK or an error. */
sp_status sp_tape_setitem_rebind(const sp_tensor *x, const sp_tensor *w);

/* ---- the backward pass (tape_grad.c) ------------------------------------------- */

/* The gradients of the n_leaf nodes leaf_ids (from sp_tape_add_leaf) for
 * outputs outs[0..n_out-1] (tensors t produced, or any tensors: an output
 * the tape never saw has no gradient) seeded with sens[k] (same shape as
 * outs[k]; cast to its dtype).  A new tuple of n_leaf tensors (zeros where
 * no gradient reached), or NULL + error: a stale tensor the backward needs
 * (naming the op that wrote it), a primitive with no rule, a compile
 * failure.  t must have ended and not be blind. */
sp_value *sp_tape_grad(sp_tape *t, int n_out, sp_tensor *const *outs, sp_tensor *const *sens, int n_leaf,
                       const int *leaf_ids);
/* Compilations of backward graphs made so far, and cache hits. */
void sp_tape_stats(int64_t *compiles, int64_t *hits);
/* Drops every cached backward (tests; the leak check). */
void sp_tape_cache_clear(void);

/* ---- shared by tape.c and tape_grad.c ---------------------------------------- */

typedef struct tp_node {
    sp_tensor *t;      /* retained */
    uint64_t ver;      /* the version of t's buffer when the node was made */
    int active;        /* float and depends on a leaf */
} tp_node;

typedef struct tp_rec {
    int op;
    int n_in, n_out;
    int io;            /* ids[io .. io+n_in-1] inputs, then n_out outputs */
    sp_value *kws;     /* tuple of KEYWORD values (the attributes), owned */
} tp_rec;

/* Read-only views of a tape for the backward builder. */
int tp_n_nodes(const sp_tape *t);
const tp_node *tp_nodes(const sp_tape *t);
int tp_n_recs(const sp_tape *t);
const tp_rec *tp_recs(const sp_tape *t);
const int *tp_ids(const sp_tape *t);
/* The error the tape met while recording, set as the thread's error (its
 * status returned); SP_OK when none. */
sp_status tp_error(const sp_tape *t);
/* The current version of buffer buf on t (0 when never written), and the op
 * that last wrote it (NULL when none). */
uint64_t tp_buf_version(const sp_tape *t, const void *buf, const char **writer);

#endif
