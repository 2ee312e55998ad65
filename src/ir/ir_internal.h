/*
 * ir_internal.h -- what the files of src/ir share and nobody else needs.
 *
 * A growable string buffer (the printers and error messages build text in
 * it), a hash map from 64-bit keys to pointers (node numbering in the
 * printer, visited sets in the walks, id and label tables in the IR
 * parser), the arena's bookkeeping hooks the parser needs to build nodes
 * it met before their definition, and the float formatting that both the
 * value printer and the IR printer use.
 *
 * The buffer never fails halfway: after an allocation failure it remembers
 * `failed`, ignores further appends, and ir_buf_finish reports SP_ERR_NOMEM
 * once, so a printer can append freely and check once at the end.
 *
 * The map uses open addressing with key 0 reserved for "empty": callers
 * map pointers directly (never NULL) and integers as (id + 1).
 */
#ifndef SPORE_IR_INTERNAL_H
#define SPORE_IR_INTERNAL_H

#include <stdarg.h>

#include "ir/ir.h"

/* ---- text buffer (value.c) ---- */
typedef struct ir_buf {
    char *p;
    size_t n, cap;
    int failed;
} ir_buf;

void ir_buf_putn(ir_buf *b, const char *s, size_t n);
void ir_buf_puts(ir_buf *b, const char *s);
void ir_buf_putc(ir_buf *b, char c);
void ir_buf_printf(ir_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Hands over the NUL-terminated text (the caller frees it), or NULL with
 * SP_ERR_NOMEM when any append failed.  The buffer is empty afterwards. */
char *ir_buf_finish(ir_buf *b);
void ir_buf_free(ir_buf *b);

/* Appends `s` (len bytes) as a double-quoted literal with \\ \" \n \t \r and
 * \xHH escapes (quote '"'), or Python's repr form (quote 0: single quotes
 * unless the text holds a single quote and no double quote). */
void ir_buf_put_quoted(ir_buf *b, const char *s, size_t len, int python_repr);

/* The shortest text that reads back to exactly `v` once stored as dtype d
 * (SP_F64 for Python floats), in Python's repr style: "2.5", "3.0",
 * "1e-05", "1e+16", "inf", "-inf", "nan".  buf needs 32 bytes. */
void ir_format_real(double v, sp_dtype d, char *buf, size_t n);

/* ---- hash map (ir.c) ---- */
typedef struct ir_map {
    uint64_t *keys;
    void **vals;
    size_t cap, n;
} ir_map;

/* The value for key (nonzero), or NULL when absent. */
void *ir_map_get(const ir_map *m, uint64_t key);
/* Adds or replaces; SP_OK or SP_ERR_NOMEM. */
sp_status ir_map_put(ir_map *m, uint64_t key, void *val);
void ir_map_free(ir_map *m);
#define IR_PKEY(p) ((uint64_t)(uintptr_t)(p))

/* ---- arena hooks (ir.c) for the IR parser ---- */
/* A node with no owner yet (kind APPLY, no inputs), id `id`; the parser
 * fills it in when the definition arrives. */
sp_node *ir_node_placeholder(sp_module *m, int id);
/* Appends an existing node (filled in as a PARAM of g) to g's params. */
sp_status ir_graph_push_param(sp_graph *g, sp_node *p, const char *name);
/* Makes node p a CONST holding v (takes a new reference) and registers it
 * so the module releases the value. */
sp_status ir_node_make_const(sp_module *m, sp_node *p, sp_value *v);
/* Puts graphs in the given order (a permutation of m->graphs) and renumbers
 * their ids. */
void ir_module_reorder(sp_module *m, sp_graph **order);

/* ---- walks (ir.c) ---- */
/* Calls fn on every graph a constant value refers to (graphs inside tuples,
 * lists, partials and keywords; not a closure's graph, whose free variables
 * are bound already).  Returns the first nonzero result of fn. */
int ir_value_graphs(const sp_value *v, int (*fn)(void *ctx, sp_graph *g), void *ctx);

/* A depth-first walk over the nodes one graph owns, iterative (graphs can
 * be chains of 10^5 nodes), visiting each own node once across several
 * roots, inputs before users.  A constant input naming a graph h counts
 * h's free variables (graph_fv) as inputs of the user too: the closure
 * needs them before the call.  Callbacks return nonzero to stop. */
typedef struct ir_walk {
    const sp_graph *g;
    void *ctx;
    int (*on_node)(void *ctx, sp_node *n);               /* own node, post-order */
    int (*on_free)(void *ctx, sp_node *user, sp_node *x); /* a node g does not own (x may be NULL) */
    sp_node **(*graph_fv)(void *ctx, const sp_graph *h, int *n); /* h's free variables */
    /* private */
    ir_map seen;
    sp_node **stack, *user;
    int *next;
    int n, cap;
} ir_walk;
void ir_walk_init(ir_walk *w, const sp_graph *g, void *ctx);
int ir_walk_from(ir_walk *w, sp_node *root);
void ir_walk_free(ir_walk *w);

/* The free variables of every graph (by index in m->graphs) computed into
 * fresh arrays without touching the module: n[i] and fv[i].  Fails like
 * ir_module_finalize.  Free both with ir_fv_free. */
sp_status ir_fv_compute(const sp_module *m, int **n, sp_node ****fv);
void ir_fv_free(const sp_module *m, int *n, sp_node ***fv);

#endif
