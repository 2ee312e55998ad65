/*
 * compile.h -- the graph compiler's entry point: one function of a module
 * compiled for one input signature (DESIGN §1).
 *
 *   source -> front end -> IR -> specialize -> expand grad -> optimize
 *          -> fuse -> lower -> run
 *
 * sp_compile runs the stages that exist on a copy of the program: the
 * specializer (compiler/specialize.h) makes a new module for the signature
 * of the arguments; the optimization passes run on it to a fixed point;
 * later stages (fusion, lowering with a memory plan) plug in after them.
 * sp_compiled_run runs the result.  The source module is never changed and
 * must outlive every sp_compiled made from it.
 *
 * Signatures.  Tensors count by dtype, shape and device; Python scalars,
 * strings, None and tuples of them by value (static, as in jax.jit and
 * MindSpore's graph mode): f(x, 2) and f(x, 3) are two compilations.
 * sp_compile_cache keeps one sp_compiled per signature; a call with a new
 * batch size compiles once more and then hits.
 *
 * Debugging.  SPORE_DUMP_IR=dir (or opt->dump_dir) writes the IR text after
 * every stage as dir/NN_stage.ir; per-stage wall times are kept on the
 * result (`spore ir --stage NAME --time` prints them).
 */
#ifndef SPORE_COMPILER_COMPILE_H
#define SPORE_COMPILER_COMPILE_H

#include "compiler/specialize.h"

/* The stages, in order. */
typedef enum sp_stage {
    SP_STAGE_SPECIALIZE,
    SP_STAGE_EXPAND_GRAD,
    SP_STAGE_OPTIMIZE,
    SP_STAGE_FUSE,
    SP_STAGE_LOWER,
    SP_STAGE_COUNT
} sp_stage;

/* "specialize", "expand_grad", "optimize", "fuse", "lower"; NULL when out
 * of range.  Cannot fail. */
const char *sp_stage_name(sp_stage s);
/* The stage called name, or -1 (and an error listing the names). */
int sp_stage_find(const char *name);

typedef struct sp_compile_options {
    const char *passes;   /* the optimization pipeline; NULL: the default */
    int max_rounds;       /* of the pass driver; 0: 16 */
    const char *stop_after; /* a stage name: stop after it; NULL: run every stage */
    const char *dump_dir; /* NULL: $SPORE_DUMP_IR (unset: no dumps) */
    int no_fuse;          /* skip elementwise fusion (also $SPORE_NO_FUSE=1) */
    int no_lower;         /* run on the VM even when lowerable (also $SPORE_NO_LOWER=1) */
} sp_compile_options;

/* The default pipeline of the optimize stage. */
#define SP_COMPILE_DEFAULT_PASSES "inline,beta,switch_const,tuple_simplify,cse,fold,algebra,env_simplify,dce"

typedef struct sp_compiled sp_compiled; /* one entry function compiled for one signature */

/* Compiles `entry` ("main" when NULL) of m for the signature of args
 * (n values: tensors by dtype+shape+device, the rest by value).  opt may
 * be NULL.  On SP_OK *out is a new sp_compiled (free with
 * sp_compiled_free); on error *out is NULL and the message is set (a type
 * error in the program names file:line:col with a caret).  The module m
 * must outlive the result. */
sp_status sp_compile(sp_module *m, const char *entry, int n, sp_value *const *args,
                     const sp_compile_options *opt, sp_compiled **out);
/* Runs c on args (a signature matching the one compiled for: tensors of the
 * same dtype/shape, the same static values; not checked here, see the
 * cache).  A new reference, or NULL + error (run-time errors name the
 * user's source line). */
sp_value *sp_compiled_run(sp_compiled *c, int n, sp_value *const *args);
void sp_compiled_free(sp_compiled *c); /* NULL is fine */

/* The compiled module (borrowed; for printing and tests) and the entry
 * graph in it. */
sp_module *sp_compiled_module(const sp_compiled *c);
/* The entry's kernel list (compiler/lower.h) when it was lowerable, else
 * NULL with *why (may be NULL) saying where lowering stopped.  Borrowed. */
struct sp_lowered;
const struct sp_lowered *sp_compiled_lowered(const sp_compiled *c, const char **why);
sp_graph *sp_compiled_graph(const sp_compiled *c);
/* Wall time of a stage in seconds (0 for a stage that did not run). */
double sp_compiled_stage_seconds(const sp_compiled *c, sp_stage s);
/* The specializer's counters. */
const sp_spec_stats *sp_compiled_spec_stats(const sp_compiled *c);

/* ---- the cache ------------------------------------------------------------ */

typedef struct sp_compile_cache sp_compile_cache;

/* A cache of compilations of functions of m (which must outlive it), all
 * with options opt (copied; may be NULL).  NULL + error when out of memory. */
sp_compile_cache *sp_compile_cache_new(sp_module *m, const sp_compile_options *opt);
void sp_compile_cache_free(sp_compile_cache *cc); /* NULL is fine */
/* The compilation of `entry` for the signature of args: found, or compiled
 * and kept.  Borrowed (the cache owns it); NULL + error when compiling
 * fails (nothing is kept then). */
sp_compiled *sp_compile_cache_get(sp_compile_cache *cc, const char *entry, int n, sp_value *const *args);
/* sp_compile_cache_get then sp_compiled_run. */
sp_value *sp_compile_cache_call(sp_compile_cache *cc, const char *entry, int n, sp_value *const *args);
/* Lookups that found a compilation, and compilations made. */
int sp_compile_cache_hits(const sp_compile_cache *cc);
int sp_compile_cache_misses(const sp_compile_cache *cc);

#endif
