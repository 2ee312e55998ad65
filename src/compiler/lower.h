/*
 * lower.h -- a straight-line graph as a linear kernel list with a static
 * memory plan (DESIGN §1: "lower"), and what the executor needs of it.
 *
 * Input: a graph in canonical form -- parameters, calls of primitive
 * constants (`prim.add(%a, %b, keyword("axis", 1))`), make_keyword /
 * make_tuple / tuple_getitem plumbing and constants -- plus the dtype and
 * shape of every parameter.  Every node's shape comes from the primitives'
 * own inference (sp_op_infer), so the plan is exact.  Anything else
 * (switch, graph calls, builtins on Python values, API calls, free
 * variables) is not lowerable: sp_lower returns NULL with a reason for the
 * caller, which then runs the graph on the VM.  That is not a user error.
 *
 * The result is a list of kernels in the graph's node order (the front end
 * threads effects through the data flow, so that order is the effect
 * order) over *slots*: one slot per tensor value.  A slot is a parameter,
 * a constant (a tensor made at lower time), an arena slice, an output (its
 * own allocation each run, handed to the caller) or a view of another slot
 * (reshape/transpose/slice/broadcast_to computed as a view by the executor
 * instead of a copy).  Tuples exist only at lower time: every tuple_getitem
 * is resolved to the slot it names.
 *
 * The memory plan (plan.c) gives each arena slot an offset: liveness from
 * the kernel list (a buffer lives from the kernel that writes it to the
 * last kernel reading it or any view of it), in-place reuse (an
 * elementwise kernel writes into an input that dies there), then offsets
 * by greedy best fit in one arena, sizes rounded to 64 bytes.
 *
 * Invariants the executor relies on: the kernels of a slot's buffer never
 * overlap in time with another slot sharing arena bytes, except for an
 * in-place pair (same size, same index-for-index access); views are never
 * outputs and never mutated (no in-place primitive writes to them or to
 * what they view), so aliasing never changes a value the VM would compute;
 * graph outputs never live in the arena.
 *
 * Lifetime: the lowered object holds references to the values its
 * attributes borrow strings from and to its constant tensors; it keeps a
 * pointer to the graph's module for error locations, so the module must
 * outlive it (as for sp_compile).
 */
#ifndef SPORE_COMPILER_LOWER_H
#define SPORE_COMPILER_LOWER_H

#include <pthread.h>

#include "ir/ir.h"
#include "ops/ops.h"

typedef enum sp_lslot_kind {
    SP_LSLOT_PARAM,  /* the index-th parameter of the run */
    SP_LSLOT_CONST,  /* a tensor made at lower time (.tensor) */
    SP_LSLOT_ARENA,  /* bytes [offset, offset + nbytes) of the arena */
    SP_LSLOT_OUTPUT, /* a fresh tensor each run, returned to the caller */
    SP_LSLOT_VIEW    /* a view of slot .base made by its kernel */
} sp_lslot_kind;

typedef struct sp_lslot {
    sp_lslot_kind kind;
    sp_meta meta;
    int index;         /* PARAM: parameter number */
    sp_tensor *tensor; /* CONST: owned reference (CPU) */
    int base;          /* VIEW: the slot viewed; else -1 */
    int inplace_of;    /* ARENA: the slot whose bytes it took over in place, or -1 */
    int def;           /* the kernel writing it; -1 for params and constants */
    int last_use;      /* the last kernel reading it or a view of it (own reads for views) */
    int mutated;       /* an in-place primitive (sgd_update...) writes to it */
    int64_t nbytes;    /* numel * itemsize */
    int64_t offset;    /* ARENA: byte offset, a multiple of 64 */
    const char *name;  /* the source variable of its node, or NULL (module-owned) */
    int node_id;       /* the IR node that made it (-1 when none) */
} sp_lslot;

typedef struct sp_lkernel {
    int op;            /* sp_op */
    int is_view;       /* computes out[0] as a view of in[0]: no launch */
    sp_attrs attrs;    /* strings borrowed from values the lowered object holds */
    int n_in, n_out;
    int *in, *out;     /* slot numbers */
    int node_id;
    sp_loc loc;
} sp_lkernel;

/* The graph's output: a tree of tuples over slots and constant values. */
typedef struct sp_lout {
    int kind;          /* 0: slot, 1: constant value, 2: tuple of n children */
    int slot;          /* kind 0 */
    sp_value *value;   /* kind 1: owned reference */
    int n, *child;     /* kind 2: indices into outs[] */
} sp_lout;

/* Plan figures, in bytes; every size rounded up to 64 as the arena does. */
typedef struct sp_lower_stats {
    int64_t arena_bytes;   /* peak of the plan: the arena's size */
    int64_t noplan_bytes;  /* peak if every kernel output (views too: the VM copies) were a
                            * fresh allocation freed after its last use */
    int64_t naive_bytes;   /* the sum of every intermediate, none freed */
    int64_t output_bytes;  /* the graph's outputs (allocated apart, each run) */
    int n_kernels, n_launches, n_inplace, n_views;
} sp_lower_stats;

typedef struct sp_lower_options {
    int no_inplace; /* never reuse an input's bytes for an output */
    int no_views;   /* run view primitives as copies into planned buffers */
} sp_lower_options;

typedef struct sp_lowered {
    const sp_module *module; /* for error locations; not owned */
    const char *name;        /* the graph's name (module-owned) */
    int n_params;
    sp_meta *params;
    int n_slots, n_kernels, n_outs, out_root;
    sp_lslot *slots;
    sp_lkernel *kernels;
    sp_lout *outs;           /* outs[out_root] is the whole output */
    int n_results;           /* slot leaves of the output, in order (sp_lowered_run's out[]) */
    int *results;
    int n_keep;
    sp_value **keep;         /* values whose strings attrs borrow */
    sp_lower_stats stats;
    /* Run-time cache (exec.c), guarded by lock: the arena of the last run
     * and the constants copied to a non-CPU device. */
    pthread_mutex_t lock;
    sp_buffer *arena;
    int arena_busy;
    sp_device const_dev;
    sp_tensor **dev_consts;
    /* Whole-graph capture state (runtime/exec_graph.c), made by the first
     * run on a backend that can capture; sp_lowered_free calls graph_free. */
    void *graph;
    void (*graph_free)(void *graph);
} sp_lowered;

/* Lowers g for parameters of the given metas (n must be g's parameter
 * count).  Returns a new lowered object (free with sp_lowered_free) or NULL
 * when g is not lowerable, with a one-line reason in why[0..why_n-1] (e.g.
 * "f.py:3:9: builtin.switch is not lowerable": where the first node that
 * stops it comes from); sp_last_error is left as it
 * was.  opt may be NULL (everything on). */
/* A parameter meta with ndim == SP_LOWER_STATIC is a static argument (a
 * Python value the specializer folded into the graph): it gets no slot and
 * sp_lowered_run ignores what is passed for it. */
#define SP_LOWER_STATIC (-1)
sp_lowered *sp_lower(const sp_graph *g, int n, const sp_meta *params,
                     const sp_lower_options *opt, char *why, size_t why_n);
/* sp_lower with the parameters' metas taken from their abstract values
 * (node->abs after specialization, src/compiler/abstract.h): each must be
 * a TENSOR with every dim known or a CONST (static), else NULL and the
 * reason. */
sp_lowered *sp_lower_specialized(const sp_graph *g, const sp_lower_options *opt, char *why,
                                 size_t why_n);
void sp_lowered_free(sp_lowered *l); /* NULL is fine */

/* The plan's figures.  Cannot fail. */
sp_lower_stats sp_lowered_stats(const sp_lowered *l);

/* The kernel list as text: one line per kernel with its slots, where each
 * lives (arena offset and size, in place of, view of, param, output) and a
 * header with the peak bytes with and without the plan.  malloc'd; NULL +
 * error on failure. */
char *sp_lowered_print(const sp_lowered *l);

/* The slot made by the node named `name` (its source variable), or -1.
 * For tests and tools. */
int sp_lowered_find_slot(const sp_lowered *l, const char *name);

/* Parses a signature "float32[2,3], int64[2], float32[]" (dtype names as
 * sp_dtype_parse takes; [] is a 0-d tensor) into at most max metas.
 * Returns the count, or -1 + error (SP_ERR_ARG) naming the bad part. */
int sp_lower_parse_sig(const char *s, sp_meta *out, int max);

/* ---- plan.c (called by sp_lower) ---- */
/* Liveness, in-place reuse and arena offsets for l's slots; fills
 * l->stats.  Returns SP_OK, or SP_ERR_NOMEM. */
sp_status lower_plan(sp_lowered *l, const sp_lower_options *opt);

#endif
