/*
 * frontend.h -- from Python-syntax source text to IR.
 *
 * The front end is Spore's own: a lexer (with Python's INDENT/DEDENT),
 * a recursive-descent parser to an AST, and a builder that turns the AST
 * into the functional IR of src/ir (if -> switch + continuation graphs,
 * while/for -> tail-recursive graphs, closures as free variables).  No
 * CPython is involved, which is what lets autodiff, the optimizer and C-only
 * deployment see whole programs.
 *
 * Name resolution: local variables and parameters, enclosing functions'
 * variables (free variables), module-level defs and constants, imports of
 * spore (`import spore`, `from spore import ops, nn`, `import spore.ops as
 * ops`), Python's builtins (builtins.def), and, for the Python package, a
 * resolver callback that can answer any other global name (sub-cells,
 * Parameters, constants).  An undefined name is a compile error at its
 * file:line:col with a caret line.
 */
#ifndef SPORE_FRONTEND_H
#define SPORE_FRONTEND_H

#include "ir/ir.h"

typedef struct sp_resolver {
    /* Returns a new reference for `name`, or NULL when the name is unknown
     * (without setting an error). */
    sp_value *(*resolve)(void *ctx, const char *name);
    void *ctx;
    /* Optional (NULL: unused).  Asked first for every `base.attr` whose base
     * is a plain name or a chain of attributes of one, given as the dotted
     * path ("self", "self.inner"), local or not: the Python package answers
     * `self.w` of a Cell's construct (where `self` is a parameter),
     * `self.inner.w`, and `F.tensor_add` for a global F.  Returns a new
     * reference to the attribute's value, which the expression then is as a
     * constant, or NULL (without an error) to build the read as usual. */
    sp_value *(*resolve_attr)(void *ctx, const char *path, const char *attr);
} sp_resolver;

/* Compiles a whole source file into a module (every top-level def becomes a
 * global graph value).  `file` names the source in messages; `line_offset`
 * is added to every line number (the Python package compiles a snippet cut
 * out of a larger file).  NULL + error "file:line:col: message" plus the
 * caret line on any syntax, unsupported-construct or name error. */
sp_module *sp_frontend_compile(const char *file, const char *source, int line_offset,
                               const sp_resolver *resolver);
/* Reads and compiles a file; I/O errors name the path. */
sp_module *sp_frontend_compile_file(const char *path, const sp_resolver *resolver);

#endif
