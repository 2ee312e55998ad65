/*
 * ir.h -- Spore's functional graph IR (after MindSpore's ANF and Myia).
 *
 * A graph is a function: parameters, one output node, and a parent graph
 * (its lexical scope; NULL at module level).  A node is a parameter, a
 * constant (an sp_value) or an apply whose input 0 is the callee.  Nodes
 * are owned by exactly one graph; a node may be used by graphs nested in
 * its owner: those uses are the nested graph's free variables, and a graph
 * value with free variables becomes a closure when evaluated.
 *
 *   if c: A else: B        ->  switch(c, g_true, g_false)()      (tail call)
 *   statements after an if ->  a continuation graph whose parameters are
 *                              the variables the branches assigned (phis)
 *   while c: body          ->  a header graph calling itself in tail
 *                              position: constant stack in the VM
 *
 * Memory: graphs and nodes live in an sp_module's arena and die with it;
 * constants hold references to their values, dropped when the module is
 * freed.  Every node carries the source location of the expression it came
 * from, so every later error points at user code.
 */
#ifndef SPORE_IR_H
#define SPORE_IR_H

#include "ir/value.h"

typedef struct sp_loc {
    const char *file; /* interned in the module; never NULL ("<unknown>") */
    int line, col;    /* 1-based; 0 when unknown */
} sp_loc;

typedef enum sp_node_kind { SP_NODE_PARAM, SP_NODE_CONST, SP_NODE_APPLY } sp_node_kind;

struct sp_abstract; /* types of the specializer (a later issue) */

typedef struct sp_node {
    sp_node_kind kind;
    int id;                /* unique within the module, stable: printer names %<id> */
    struct sp_graph *graph; /* owner (NULL for constants shared module-wide) */
    sp_loc loc;
    const char *name;      /* the source variable it was bound to, or NULL */
    sp_value *value;       /* CONST: owned reference */
    int n_inputs;          /* APPLY: inputs[0] is the callee */
    struct sp_node **inputs;
    struct sp_abstract *abs;
} sp_node;

typedef struct sp_graph {
    const char *name;      /* interned ("f", "f.if_true.3") */
    int id;
    struct sp_graph *parent;
    struct sp_module *module;
    int n_params;
    sp_node **params;
    const char **param_names; /* for keyword binding */
    sp_value **defaults;      /* per param: default value or NULL (owned refs) */
    int has_varargs;          /* last param collects extra positionals as a tuple */
    sp_node *output;
    sp_loc loc;
    /* Free variables: nodes of enclosing graphs used by this graph or any
     * graph it references (transitively), in a stable order.  Computed by
     * ir_graph_free_vars() / ir_module_finalize(). */
    int n_fv;
    sp_node **fv;
    /* K(g), the autodiff transform of this graph (src/ad/k.c), built on
     * first use; NULL until then. */
    struct sp_graph *k_graph;
    /* K(g) as an IR expansion (src/ad/expand.c: static J, rules copied
     * in), built on first use; NULL until then.  (Added by JEXP.) */
    struct sp_graph *kx_graph;
    /* The graph this one was copied from by ir_graph_clone_into (src/ir/
     * clone.h), possibly in another module; NULL for an original. */
    const struct sp_graph *clone_of;
} sp_graph;

typedef struct sp_module {
    const char *file;   /* interned */
    char *source;       /* the source text (for caret lines), owned; may be NULL */
    int n_graphs;
    sp_graph **graphs;  /* every graph, in creation order */
    int next_id;
    struct ir_arena *arena;
    /* Module-level names: top-level defs and constants, for `--entry` and
     * for the resolver. */
    int n_globals;
    const char **global_names;
    sp_value **global_values; /* owned references */
} sp_module;

/* ---- building (ir.c) -------------------------------------------------- */

/* A new empty module for `file` (copied) and `source` (copied; may be NULL).
 * NULL + error on failure. */
sp_module *sp_module_new(const char *file, const char *source);
void sp_module_free(sp_module *m); /* NULL is fine */
/* Interns a string in the module's arena (for names). */
const char *ir_intern(sp_module *m, const char *s);
/* Allocates zeroed memory in the module's arena (freed with the module). */
void *ir_alloc(sp_module *m, size_t n);

sp_graph *ir_graph_new(sp_module *m, const char *name, sp_graph *parent, sp_loc loc);
sp_node *ir_param_new(sp_graph *g, const char *name, sp_loc loc);
/* A constant node; takes a new reference to v. */
sp_node *ir_const_new(sp_graph *g, sp_value *v, sp_loc loc);
/* An apply node in g; inputs[0] is the callee. */
sp_node *ir_apply_new(sp_graph *g, int n, sp_node *const *inputs, sp_loc loc);
/* Binds a module-level name (takes a reference to v). */
sp_status ir_module_set_global(sp_module *m, const char *name, sp_value *v);
sp_value *ir_module_get_global(const sp_module *m, const char *name); /* borrowed; NULL if absent */

/* The nodes g owns that evaluating g needs, params excluded, in dependency
 * order (inputs before users): those reachable from g's output, where a
 * constant input naming a graph h counts h's free variables as inputs too
 * (the closure is built before the call), so it needs ir_module_finalize
 * first.  A malloc'd array (length in *n) the caller
 * frees; NULL + error on failure.  (Added by the IR helper for the VM.) */
sp_node **ir_graph_nodes(const sp_graph *g, int *n);

/* Computes n_fv/fv of every graph of the module (after building or after a
 * pass changes the graphs).  Returns an error for a use of a node whose
 * owner does not enclose the user (a broken IR). */
sp_status ir_module_finalize(sp_module *m);

/* ---- text form (printer.c, parser.c) ------------------------------------
 * One line per node, with types once known and source locations:
 *
 *   graph @f(%1 x, %2 y) {                  # f.py:1:1
 *     %3 = prim.add(%1, %2)                 # f.py:2:12
 *     %4 = builtin.switch(%3, @f.if_true.1, @f.if_false.2)
 *     return %4
 *   }
 *
 * Printing then parsing then printing gives identical text. */
/* A malloc'd string; NULL + error on failure. */
char *sp_module_print(const sp_module *m);
char *sp_graph_print(const sp_graph *g);
/* Parses the text form into a new module; errors name line:col in the text. */
sp_module *sp_module_parse_ir(const char *text, const char *file);

/* ---- checks (verify.c) ------------------------------------------------- */
/* Checks the invariants: every node's owner is its graph, inputs are
 * defined in the same graph or an enclosing one (free-variable scoping),
 * applies have a callee, params belong to their graph, constant graph
 * arities match static calls where known.  SP_OK or SP_ERR_INTERNAL with a
 * message naming the graph and node. */
sp_status sp_module_verify(const sp_module *m);

/* ---- errors with carets (diag.c) ----------------------------------------- */
/* Sets the thread's error: "file:line:col: message\n<the line>\n   ^" using
 * the module's source when available.  Returns code. */
sp_status sp_error_at(const sp_module *m, sp_loc loc, sp_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The same for a source text that is not in a module yet (the parser). */
sp_status sp_error_src(const char *file, const char *source, sp_loc loc, sp_status code,
                       const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

#endif
