/*
 * ast.h -- the syntax tree of Spore's Python-syntax source, and the arena
 * it lives in.
 *
 * The parser (parser.c) builds this tree from the lexer's tokens; the
 * builder (builder.c) walks it once to make IR, and then the whole tree is
 * dropped at once with its arena.  Nodes are plain structs allocated in an
 * fe_arena: nothing in the tree is freed on its own, nothing is shared
 * between trees, and every pointer in a node points into the same arena
 * (names and string literals included), so a failed parse frees everything
 * with one fe_arena_free.
 *
 * Every node carries the sp_loc (file:line:col, 1-based, the column in
 * bytes) of the token where the construct starts -- for a binary operator
 * the operator itself, so that "tensor + str" points at the `+` -- because
 * every later error (a name error in the builder, a type error in the VM)
 * is reported at the node's location with a caret line.
 *
 * Operators are recorded with the lexer's token kinds (FE_T_PLUS, FE_T_LT,
 * FE_T_KW_NOT, ...), plus the two comparisons that are two tokens long,
 * FE_CMP_NOT_IN and FE_CMP_IS_NOT.  Each expression also stores its depth
 * (1 + the deepest child), which the parser bounds so that a pathological
 * input cannot overflow the C stack of the recursive walks downstream.
 *
 * Only the language Spore accepts has nodes here: constructs Spore rejects
 * (class, try, with, yield, ...) are reported by the parser where it meets
 * them and never reach the tree.  The bitwise operators and shifts are the
 * exception: they parse (so precedence is Python's) and the builder
 * reports them, having no builtin to lower them to.
 */
#ifndef SPORE_FRONTEND_AST_H
#define SPORE_FRONTEND_AST_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* ---- arena --------------------------------------------------------------- */

typedef struct fe_arena {
    struct fe_chunk *head;
} fe_arena;

/* n zeroed bytes that live until fe_arena_free; NULL + SP_ERR_NOMEM. */
void *fe_arena_alloc(fe_arena *a, size_t n);
/* A NUL-terminated copy of s[0..n) in the arena; NULL + SP_ERR_NOMEM. */
char *fe_arena_strndup(fe_arena *a, const char *s, size_t n);
/* Frees every allocation of the arena; the arena is empty and reusable. */
void fe_arena_free(fe_arena *a);

/* ---- expressions ---------------------------------------------------------- */

typedef enum fe_expr_kind {
    FE_E_NAME,
    FE_E_INT,
    FE_E_FLOAT,
    FE_E_STR,
    FE_E_BOOL,
    FE_E_NONE,
    FE_E_ELLIPSIS,
    FE_E_TUPLE,
    FE_E_LIST,
    FE_E_ATTR,      /* value.name */
    FE_E_SUBSCRIPT, /* value[index]; index may be a SLICE or a TUPLE of them */
    FE_E_SLICE,     /* lo:hi:step, each may be NULL; only inside a subscript */
    FE_E_CALL,
    FE_E_UNARY,     /* op a: FE_T_MINUS, FE_T_PLUS, FE_T_TILDE, FE_T_KW_NOT */
    FE_E_BINARY,    /* a op b: arithmetic, bitwise, shifts, @ */
    FE_E_BOOLOP,    /* a and b / a or b: op FE_T_KW_AND or FE_T_KW_OR */
    FE_E_COMPARE,   /* a0 op0 a1 op1 a2 ...: chained comparison */
    FE_E_IFEXP,     /* a if cond else b */
    FE_E_LAMBDA,
    FE_E_LISTCOMP   /* [elt for target in iter if cond] */
} fe_expr_kind;

typedef struct fe_param {
    const char *name;
    sp_loc loc;
    struct fe_expr *def; /* default value or NULL */
} fe_param;

typedef struct fe_params {
    int n;
    fe_param *items;
    int has_varargs; /* the last item is `*name` */
} fe_params;

struct fe_stmt;

typedef struct fe_expr {
    fe_expr_kind kind;
    sp_loc loc;
    int depth;
    union {
        const char *name;                             /* NAME */
        int64_t i;                                    /* INT, BOOL */
        double f;                                     /* FLOAT */
        struct { char *s; size_t len; } str;          /* STR (decoded bytes) */
        struct { int n; struct fe_expr **items; } seq; /* TUPLE, LIST */
        struct { struct fe_expr *value; const char *name; } attr;
        struct { struct fe_expr *value, *index; } sub;
        struct { struct fe_expr *lo, *hi, *step; } slice;
        struct {
            struct fe_expr *fn;
            int n;
            struct fe_expr **args;
            const char **kw; /* per arg: keyword name, NULL for positional, FE_STAR_ARG for *x */
        } call;
        struct { int op; struct fe_expr *a, *b; } op; /* UNARY (b NULL), BINARY, BOOLOP */
        struct {
            int n;                /* operands; n - 1 operators */
            struct fe_expr **vals;
            int *ops;
        } cmp;
        struct { struct fe_expr *cond, *a, *b; } ifexp;
        struct { fe_params params; struct fe_expr *body; } lambda;
        struct { struct fe_expr *elt, *target, *iter, *cond; } comp;
    } u;
} fe_expr;

/* ---- statements ------------------------------------------------------------ */

typedef struct fe_block {
    int n;
    struct fe_stmt **items;
} fe_block;

typedef enum fe_stmt_kind {
    FE_S_EXPR,
    FE_S_ASSIGN,    /* t1 = t2 = ... = value */
    FE_S_AUGASSIGN, /* target op= value; op is the binary operator's token kind */
    FE_S_RETURN,    /* value may be NULL */
    FE_S_IF,
    FE_S_WHILE,
    FE_S_FOR,
    FE_S_BREAK,
    FE_S_CONTINUE,
    FE_S_PASS,
    FE_S_ASSERT,
    FE_S_RAISE,     /* value may be NULL */
    FE_S_DEF,
    FE_S_IMPORT,    /* import a.b [as c], ... */
    FE_S_FROM       /* from a.b import c [as d], ... */
} fe_stmt_kind;

typedef struct fe_alias {
    const char *name;   /* dotted module name (IMPORT) or imported name (FROM) */
    const char *asname; /* NULL when there is no `as` */
    sp_loc loc;
} fe_alias;

typedef struct fe_stmt {
    fe_stmt_kind kind;
    sp_loc loc;
    union {
        fe_expr *expr; /* EXPR, RETURN, RAISE */
        struct { int n; fe_expr **targets; fe_expr *value; } assign;
        struct { fe_expr *target; int op; fe_expr *value; } aug;
        struct { fe_expr *cond; fe_block body, orelse; } cond; /* IF, WHILE */
        struct { fe_expr *target, *iter; fe_block body, orelse; } loop; /* FOR */
        struct { fe_expr *cond, *msg; } assert_;
        struct { const char *name; fe_params params; fe_block body; } def;
        struct { const char *module; int n; fe_alias *names; } import; /* module: FROM only */
    } u;
} fe_stmt;

/* ---- the passes over the tree ----------------------------------------------- */

/* Parses `src` of `file` (which must outlive the tree) into *out, every node
 * in `arena` (parser.c).  SP_OK, or SP_ERR_SYNTAX / SP_ERR_UNSUPPORTED /
 * SP_ERR_NOMEM with "file:line:col: message" and the caret line set; on
 * error the arena may hold a partial tree (free it). */
sp_status fe_parse(const char *file, const char *src, fe_arena *arena, fe_block *out);
/* fe_parse of a snippet whose first line may be indented (fe_lex_snippet). */
sp_status fe_parse_snippet(const char *file, const char *src, int base_ok, fe_arena *arena, fe_block *out);

/* The `kw` of a call argument written *x. */
#define FE_STAR_ARG "*"

struct sp_resolver;
/* Lowers a parsed module into `m`: one graph per def, module globals for
 * defs, constants and imports (builder.c).  SP_OK or an error located at
 * the offending node, with m holding whatever was built (free it). */
sp_status fe_build(sp_module *m, const fe_block *b, const struct sp_resolver *resolver);

/* The tree as text, one statement per line, expressions as S-expressions:
 * "def f(x, y=1):\n  return (+ x y)\n".  For tests; malloc'd, NULL + error
 * on allocation failure. */
char *fe_ast_dump(const fe_block *b);
/* The text of an operator token kind ("+", "not in", "and"). */
const char *fe_op_text(int op);

#endif
