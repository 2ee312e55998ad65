/*
 * parser.c -- recursive descent from tokens to the AST.
 *
 * The grammar is Python's (3.10), cut down to what Spore runs, with one
 * function per precedence level:
 *
 *   test      lambda | or_test ['if' or_test 'else' test]
 *   or/and    a or b, a and b, not a          (short-circuit in the builder)
 *   compare   a < b <= c, in, not in, is, is not   (one node per chain)
 *   bitor ^ & shifts + - * / // % @, unary - + ~, ** (right-assoc, binds
 *   tighter than a unary on its left: -2**2 == -4), then primaries:
 *   atoms with trailers (calls, subscripts with slices, attributes).
 *
 * What Spore does not run is rejected where the parser meets it, with
 * "not supported in Spore: ..." at the construct's first token: class, try,
 * with, global, nonlocal, yield, async/await, del, dict and set displays,
 * star-expressions and **kwargs, keyword-only parameters, generator
 * expressions and comprehensions other than a single-`for` list
 * comprehension.  Decorators are parsed and ignored (Spore compiles the
 * function either way; `@spore.jit` is the common case).  Annotations on
 * parameters, returns and assignments are parsed and ignored.
 *
 * Invariants: the token array always ends in EOF and the parser never moves
 * past it; recursion is bounded by PARSE_MAX_DEPTH and every expression's
 * `depth` by EXPR_MAX_DEPTH, so no input overflows the C stack here or in
 * the recursive walks of the builder.  The first error stops the parse.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/lexer.h"

#define PARSE_MAX_DEPTH 200
#define EXPR_MAX_DEPTH 1000
#define PARSE_MAX_ELIFS 1000

typedef struct parser {
    const char *file, *src;
    fe_arena *arena;
    fe_token *t;
    int n, i;
    int depth;     /* recursion depth of the expression functions */
    int def_depth; /* how many defs enclose the current statement */
    int loop_depth;
    int elif_depth;
    sp_status st;  /* the first error, SP_OK while none */
} parser;

static void p_error(parser *P, sp_loc loc, sp_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static void p_error(parser *P, sp_loc loc, sp_status code, const char *fmt, ...) {
    if (P->st) return;
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    P->st = sp_error_src(P->file, P->src, loc, code, "%s", msg);
}

static fe_token *cur(parser *P) { return &P->t[P->i]; }
static fe_tok_kind kind(parser *P) { return P->t[P->i].kind; }
static fe_tok_kind peek(parser *P, int k) {
    int j = P->i + k;
    return j < P->n ? P->t[j].kind : FE_T_EOF;
}
static fe_token *advance(parser *P) {
    fe_token *t = &P->t[P->i];
    if (t->kind != FE_T_EOF) P->i++;
    return t;
}
static int accept(parser *P, fe_tok_kind k) {
    if (kind(P) != k) return 0;
    advance(P);
    return 1;
}

static void unexpected(parser *P) {
    fe_token *t = cur(P);
    switch (t->kind) {
    case FE_T_INDENT: p_error(P, t->loc, SP_ERR_SYNTAX, "unexpected indent"); break;
    case FE_T_DEDENT:
    case FE_T_NEWLINE:
    case FE_T_EOF: p_error(P, t->loc, SP_ERR_SYNTAX, "invalid syntax: unexpected %s", fe_tok_text(t->kind)); break;
    case FE_T_NAME: p_error(P, t->loc, SP_ERR_SYNTAX, "invalid syntax: unexpected name '%s'", t->text); break;
    default: p_error(P, t->loc, SP_ERR_SYNTAX, "invalid syntax: unexpected '%s'", fe_tok_text(t->kind)); break;
    }
}

static int expect(parser *P, fe_tok_kind k) {
    if (accept(P, k)) return 1;
    if (P->st) return 0;
    fe_token *t = cur(P);
    if (t->kind == FE_T_INDENT && k != FE_T_INDENT)
        p_error(P, t->loc, SP_ERR_SYNTAX, "unexpected indent");
    else
        p_error(P, t->loc, SP_ERR_SYNTAX, "expected '%s'", fe_tok_text(k));
    return 0;
}

static void unsupported(parser *P, sp_loc loc, const char *what) {
    p_error(P, loc, SP_ERR_UNSUPPORTED, "not supported in Spore: %s", what);
}

static fe_expr *mk(parser *P, fe_expr_kind k, sp_loc loc) {
    fe_expr *e = fe_arena_alloc(P->arena, sizeof *e);
    if (!e) {
        if (!P->st) P->st = SP_ERR_NOMEM;
        return NULL;
    }
    e->kind = k;
    e->loc = loc;
    e->depth = 1;
    return e;
}

/* Sets e's depth from a child's; NULL (with an error) past the limit. */
static fe_expr *deeper(parser *P, fe_expr *e, const fe_expr *child) {
    if (!e || !child) return e;
    if (child->depth + 1 > e->depth) e->depth = child->depth + 1;
    if (e->depth > EXPR_MAX_DEPTH) {
        p_error(P, e->loc, SP_ERR_SYNTAX, "expression too deeply nested (more than %d levels)",
                EXPR_MAX_DEPTH);
        return NULL;
    }
    return e;
}

/* A growable array of pointers in malloc memory, copied into the arena
 * when done. */
typedef struct vec {
    void **p;
    int n, cap;
} vec;

static int vec_push(parser *P, vec *v, void *x) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        void **q = realloc(v->p, (size_t)cap * sizeof *q);
        if (!q) {
            if (!P->st) P->st = sp_error(SP_ERR_NOMEM, "parser: out of memory");
            return 0;
        }
        v->p = q;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return 1;
}

static void **vec_finish(parser *P, vec *v) {
    void **out = fe_arena_alloc(P->arena, (size_t)(v->n ? v->n : 1) * sizeof *out);
    if (out && v->n) memcpy(out, v->p, (size_t)v->n * sizeof *out);
    if (!out && !P->st) P->st = SP_ERR_NOMEM;
    free(v->p);
    v->p = NULL;
    return out;
}

static fe_expr *parse_test(parser *P);
static fe_expr *parse_or_test(parser *P);
static fe_expr *parse_bitor(parser *P);
static int parse_block(parser *P, fe_block *out, const char *what, sp_loc head);

/* ---- atoms and trailers -------------------------------------------------- */

static const char *kw_unsupported(fe_tok_kind k) {
    switch (k) {
    case FE_T_KW_YIELD: return "yield (generators)";
    case FE_T_KW_AWAIT: return "await";
    case FE_T_KW_ASYNC: return "async";
    default: return NULL;
    }
}

/* After `[` or `(`: a single-`for` comprehension body, the element parsed. */
static fe_expr *parse_listcomp(parser *P, fe_expr *elt, sp_loc loc) {
    fe_expr *e = mk(P, FE_E_LISTCOMP, loc);
    if (!e) return NULL;
    advance(P); /* for */
    vec targets = {0};
    sp_loc tloc = cur(P)->loc;
    do {
        fe_expr *t = parse_bitor(P);
        if (!t || !vec_push(P, &targets, t)) {
            free(targets.p);
            return NULL;
        }
    } while (accept(P, FE_T_COMMA) && kind(P) != FE_T_KW_IN);
    if (targets.n == 1) {
        e->u.comp.target = targets.p[0];
        free(targets.p);
    } else {
        fe_expr *t = mk(P, FE_E_TUPLE, tloc);
        if (!t) {
            free(targets.p);
            return NULL;
        }
        t->u.seq.n = targets.n;
        t->u.seq.items = (fe_expr **)vec_finish(P, &targets);
        e->u.comp.target = t;
    }
    if (!expect(P, FE_T_KW_IN)) return NULL;
    e->u.comp.iter = parse_or_test(P);
    if (!e->u.comp.iter) return NULL;
    if (accept(P, FE_T_KW_IF)) {
        e->u.comp.cond = parse_or_test(P);
        if (!e->u.comp.cond) return NULL;
    }
    if (kind(P) == FE_T_KW_FOR || kind(P) == FE_T_KW_IF) {
        unsupported(P, cur(P)->loc, "comprehensions with more than one 'for' or 'if'");
        return NULL;
    }
    e->u.comp.elt = elt;
    return e;
}

/* A parenthesized or bracketed list of tests up to `close`.  Sets *comma
 * when a comma appeared (so `(a)` is not a tuple but `(a,)` is). */
static fe_expr **parse_testlist_until(parser *P, fe_tok_kind close, int *n, int *comma) {
    vec v = {0};
    *comma = 0;
    while (kind(P) != close) {
        if (kind(P) == FE_T_STAR) {
            unsupported(P, cur(P)->loc, "star-expressions (*x) in tuples and lists");
            free(v.p);
            return NULL;
        }
        fe_expr *e = parse_test(P);
        if (!e || !vec_push(P, &v, e)) {
            free(v.p);
            return NULL;
        }
        if (kind(P) == FE_T_WALRUS) {
            unsupported(P, cur(P)->loc, "assignment expressions (:=)");
            free(v.p);
            return NULL;
        }
        if (!accept(P, FE_T_COMMA)) break;
        *comma = 1;
    }
    if (!expect(P, close)) {
        free(v.p);
        return NULL;
    }
    *n = v.n;
    return (fe_expr **)vec_finish(P, &v);
}

static fe_expr *parse_atom(parser *P) {
    fe_token *t = cur(P);
    fe_expr *e;
    switch (t->kind) {
    case FE_T_NAME:
        advance(P);
        e = mk(P, FE_E_NAME, t->loc);
        if (e) e->u.name = t->text;
        return e;
    case FE_T_INT:
        advance(P);
        e = mk(P, FE_E_INT, t->loc);
        if (e) e->u.i = t->i;
        return e;
    case FE_T_FLOAT:
        advance(P);
        e = mk(P, FE_E_FLOAT, t->loc);
        if (e) e->u.f = t->f;
        return e;
    case FE_T_STR: {
        /* adjacent literals are one string */
        size_t len = 0;
        int j = P->i;
        while (P->t[j].kind == FE_T_STR) len += P->t[j++].len;
        e = mk(P, FE_E_STR, t->loc);
        char *s = fe_arena_alloc(P->arena, len + 1);
        if (!e || !s) {
            if (!P->st) P->st = SP_ERR_NOMEM;
            return NULL;
        }
        size_t off = 0;
        while (kind(P) == FE_T_STR) {
            fe_token *q = advance(P);
            if (q->len) memcpy(s + off, q->text, q->len);
            off += q->len;
        }
        e->u.str.s = s;
        e->u.str.len = len;
        return e;
    }
    case FE_T_KW_TRUE:
    case FE_T_KW_FALSE:
        advance(P);
        e = mk(P, FE_E_BOOL, t->loc);
        if (e) e->u.i = t->kind == FE_T_KW_TRUE;
        return e;
    case FE_T_KW_NONE: advance(P); return mk(P, FE_E_NONE, t->loc);
    case FE_T_ELLIPSIS: advance(P); return mk(P, FE_E_ELLIPSIS, t->loc);
    case FE_T_LPAREN: {
        advance(P);
        if (accept(P, FE_T_RPAREN)) {
            e = mk(P, FE_E_TUPLE, t->loc);
            return e;
        }
        if (kind(P) == FE_T_KW_YIELD) {
            unsupported(P, cur(P)->loc, "yield (generators)");
            return NULL;
        }
        if (kind(P) != FE_T_STAR) {
            fe_expr *first = parse_test(P);
            if (!first) return NULL;
            if (kind(P) == FE_T_KW_FOR) {
                unsupported(P, cur(P)->loc, "generator expressions");
                return NULL;
            }
            if (kind(P) == FE_T_WALRUS) {
                unsupported(P, cur(P)->loc, "assignment expressions (:=)");
                return NULL;
            }
            if (accept(P, FE_T_RPAREN)) return first; /* parenthesized */
            if (!expect(P, FE_T_COMMA)) return NULL;
            int n, comma;
            fe_expr **rest = parse_testlist_until(P, FE_T_RPAREN, &n, &comma);
            if (!rest) return NULL;
            e = mk(P, FE_E_TUPLE, t->loc);
            fe_expr **items = fe_arena_alloc(P->arena, (size_t)(n + 1) * sizeof *items);
            if (!e || !items) {
                if (!P->st) P->st = SP_ERR_NOMEM;
                return NULL;
            }
            items[0] = first;
            memcpy(items + 1, rest, (size_t)n * sizeof *items);
            e->u.seq.n = n + 1;
            e->u.seq.items = items;
            for (int k = 0; k <= n; k++) e = deeper(P, e, items[k]);
            return e;
        }
        int n, comma;
        fe_expr **items = parse_testlist_until(P, FE_T_RPAREN, &n, &comma);
        if (!items) return NULL;
        e = mk(P, FE_E_TUPLE, t->loc);
        if (e) {
            e->u.seq.n = n;
            e->u.seq.items = items;
        }
        return e;
    }
    case FE_T_LBRACK: {
        advance(P);
        if (kind(P) != FE_T_RBRACK && kind(P) != FE_T_STAR) {
            fe_expr *first = parse_test(P);
            if (!first) return NULL;
            if (kind(P) == FE_T_KW_FOR) {
                fe_expr *c = parse_listcomp(P, first, t->loc);
                if (!c || !expect(P, FE_T_RBRACK)) return NULL;
                return c;
            }
            vec v = {0};
            if (!vec_push(P, &v, first)) return NULL;
            while (accept(P, FE_T_COMMA) && kind(P) != FE_T_RBRACK) {
                if (kind(P) == FE_T_STAR) {
                    unsupported(P, cur(P)->loc, "star-expressions (*x) in tuples and lists");
                    free(v.p);
                    return NULL;
                }
                fe_expr *x = parse_test(P);
                if (!x || !vec_push(P, &v, x)) {
                    free(v.p);
                    return NULL;
                }
            }
            if (!expect(P, FE_T_RBRACK)) {
                free(v.p);
                return NULL;
            }
            e = mk(P, FE_E_LIST, t->loc);
            if (!e) {
                free(v.p);
                return NULL;
            }
            e->u.seq.n = v.n;
            e->u.seq.items = (fe_expr **)vec_finish(P, &v);
            if (!e->u.seq.items) return NULL;
            for (int k = 0; k < e->u.seq.n && e; k++) e = deeper(P, e, e->u.seq.items[k]);
            return e;
        }
        int n, comma;
        fe_expr **items = parse_testlist_until(P, FE_T_RBRACK, &n, &comma);
        if (!items) return NULL;
        e = mk(P, FE_E_LIST, t->loc);
        if (e) {
            e->u.seq.n = n;
            e->u.seq.items = items;
        }
        return e;
    }
    case FE_T_LBRACE: unsupported(P, t->loc, "dict and set displays"); return NULL;
    case FE_T_KW_LAMBDA: return parse_test(P);
    default: break;
    }
    const char *what = kw_unsupported(t->kind);
    if (what)
        unsupported(P, t->loc, what);
    else
        unexpected(P);
    return NULL;
}

static fe_expr *parse_call(parser *P, fe_expr *fn, sp_loc loc) {
    fe_expr *e = mk(P, FE_E_CALL, loc);
    if (!e) return NULL;
    e->u.call.fn = fn;
    e = deeper(P, e, fn);
    vec args = {0}, kws = {0};
    int seen_kw = 0;
    while (e && kind(P) != FE_T_RPAREN) {
        fe_token *t = cur(P);
        if (t->kind == FE_T_DSTAR) {
            unsupported(P, t->loc, "**kwargs in calls");
            goto fail;
        }
        const char *kw = NULL;
        if (t->kind == FE_T_STAR) {
            kw = FE_STAR_ARG; /* f(a, *rest): the items of rest are positional arguments */
            advance(P);
        } else if (t->kind == FE_T_NAME && peek(P, 1) == FE_T_ASSIGN) {
            kw = t->text;
            for (int k = 0; k < kws.n; k++)
                if (kws.p[k] && strcmp(kws.p[k], kw) == 0) {
                    p_error(P, t->loc, SP_ERR_SYNTAX, "keyword argument repeated: %s", kw);
                    goto fail;
                }
            advance(P);
            advance(P);
            seen_kw = 1;
        } else if (seen_kw) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "positional argument follows keyword argument");
            goto fail;
        }
        fe_expr *a = parse_test(P);
        if (!a) goto fail;
        if (kind(P) == FE_T_KW_FOR) {
            unsupported(P, cur(P)->loc, "generator expressions");
            goto fail;
        }
        if (kind(P) == FE_T_WALRUS) {
            unsupported(P, cur(P)->loc, "assignment expressions (:=)");
            goto fail;
        }
        if (!vec_push(P, &args, a) || !vec_push(P, &kws, (void *)kw)) goto fail;
        e = deeper(P, e, a);
        if (!accept(P, FE_T_COMMA)) break;
    }
    if (!e || !expect(P, FE_T_RPAREN)) goto fail;
    e->u.call.n = args.n;
    e->u.call.args = (fe_expr **)vec_finish(P, &args);
    e->u.call.kw = (const char **)vec_finish(P, &kws);
    if (!e->u.call.args || !e->u.call.kw) return NULL;
    return e;
fail:
    free(args.p);
    free(kws.p);
    return NULL;
}

/* One subscript item: a test or a slice lo:hi:step. */
static fe_expr *parse_subscript_item(parser *P) {
    sp_loc loc = cur(P)->loc;
    fe_expr *lo = NULL;
    if (kind(P) != FE_T_COLON) {
        lo = parse_test(P);
        if (!lo || kind(P) != FE_T_COLON) return lo;
    }
    advance(P); /* : */
    fe_expr *e = mk(P, FE_E_SLICE, loc);
    if (!e) return NULL;
    e->u.slice.lo = lo;
    e = deeper(P, e, lo);
    fe_tok_kind k = kind(P);
    if (e && k != FE_T_COLON && k != FE_T_COMMA && k != FE_T_RBRACK) {
        e->u.slice.hi = parse_test(P);
        if (!e->u.slice.hi) return NULL;
        e = deeper(P, e, e->u.slice.hi);
    }
    if (e && accept(P, FE_T_COLON)) {
        k = kind(P);
        if (k != FE_T_COMMA && k != FE_T_RBRACK) {
            e->u.slice.step = parse_test(P);
            if (!e->u.slice.step) return NULL;
            e = deeper(P, e, e->u.slice.step);
        }
    }
    return e;
}

static fe_expr *parse_subscript(parser *P, fe_expr *value, sp_loc loc) {
    fe_expr *e = mk(P, FE_E_SUBSCRIPT, loc);
    if (!e) return NULL;
    e->u.sub.value = value;
    e = deeper(P, e, value);
    if (!e) return NULL;
    if (kind(P) == FE_T_RBRACK) {
        unexpected(P);
        return NULL;
    }
    vec v = {0};
    int comma = 0;
    sp_loc iloc = cur(P)->loc;
    while (kind(P) != FE_T_RBRACK) {
        if (kind(P) == FE_T_STAR) {
            unsupported(P, cur(P)->loc, "star-expressions (*x) in subscripts");
            goto fail;
        }
        fe_expr *x = parse_subscript_item(P);
        if (!x || !vec_push(P, &v, x)) goto fail;
        if (!accept(P, FE_T_COMMA)) break;
        comma = 1;
    }
    if (!expect(P, FE_T_RBRACK)) goto fail;
    if (v.n == 1 && !comma) {
        e->u.sub.index = v.p[0];
        free(v.p);
    } else {
        fe_expr *t = mk(P, FE_E_TUPLE, iloc);
        if (!t) goto fail;
        t->u.seq.n = v.n;
        t->u.seq.items = (fe_expr **)vec_finish(P, &v);
        if (!t->u.seq.items) return NULL;
        for (int k = 0; k < t->u.seq.n && t; k++) t = deeper(P, t, t->u.seq.items[k]);
        e->u.sub.index = t;
    }
    return deeper(P, e, e->u.sub.index);
fail:
    free(v.p);
    return NULL;
}

static fe_expr *parse_primary(parser *P) {
    fe_expr *e = parse_atom(P);
    while (e) {
        fe_token *t = cur(P);
        if (t->kind == FE_T_LPAREN) {
            advance(P);
            e = parse_call(P, e, t->loc);
        } else if (t->kind == FE_T_LBRACK) {
            advance(P);
            e = parse_subscript(P, e, t->loc);
        } else if (t->kind == FE_T_DOT) {
            advance(P);
            fe_token *name = cur(P);
            if (name->kind != FE_T_NAME) {
                p_error(P, name->loc, SP_ERR_SYNTAX, "expected an attribute name after '.'");
                return NULL;
            }
            advance(P);
            fe_expr *a = mk(P, FE_E_ATTR, name->loc);
            if (!a) return NULL;
            a->u.attr.value = e;
            a->u.attr.name = name->text;
            e = deeper(P, a, e);
        } else {
            break;
        }
    }
    return e;
}

/* ---- operators ------------------------------------------------------------ */

static fe_expr *binary(parser *P, fe_expr_kind k, int op, sp_loc loc, fe_expr *a, fe_expr *b) {
    if (!a || !b) return NULL;
    fe_expr *e = mk(P, k, loc);
    if (!e) return NULL;
    e->u.op.op = op;
    e->u.op.a = a;
    e->u.op.b = b;
    e = deeper(P, e, a);
    return deeper(P, e, b);
}

static fe_expr *parse_factor(parser *P);

static fe_expr *parse_power(parser *P) {
    if (kind(P) == FE_T_KW_AWAIT) {
        unsupported(P, cur(P)->loc, "await");
        return NULL;
    }
    fe_expr *e = parse_primary(P);
    if (e && kind(P) == FE_T_DSTAR) {
        fe_token *op = advance(P);
        fe_expr *rhs = parse_factor(P); /* right-associative; binds a unary on its right */
        return binary(P, FE_E_BINARY, FE_T_DSTAR, op->loc, e, rhs);
    }
    return e;
}

static fe_expr *parse_factor(parser *P) {
    fe_tok_kind k = kind(P);
    if (k == FE_T_MINUS || k == FE_T_PLUS || k == FE_T_TILDE) {
        fe_token *op = advance(P);
        if (++P->depth > PARSE_MAX_DEPTH) {
            p_error(P, op->loc, SP_ERR_SYNTAX, "expression too deeply nested");
            return NULL;
        }
        fe_expr *a = parse_factor(P);
        P->depth--;
        if (!a) return NULL;
        fe_expr *e = mk(P, FE_E_UNARY, op->loc);
        if (!e) return NULL;
        e->u.op.op = k;
        e->u.op.a = a;
        return deeper(P, e, a);
    }
    return parse_power(P);
}

typedef fe_expr *(*level_fn)(parser *P);

/* Left-associative binary levels: one loop each. */
static fe_expr *left_assoc(parser *P, level_fn next, const fe_tok_kind *ops, int nops) {
    fe_expr *e = next(P);
    while (e) {
        fe_tok_kind k = kind(P);
        int hit = 0;
        for (int i = 0; i < nops; i++) hit |= ops[i] == k;
        if (!hit) break;
        fe_token *op = advance(P);
        e = binary(P, FE_E_BINARY, k, op->loc, e, next(P));
    }
    return e;
}

static fe_expr *parse_term(parser *P) {
    static const fe_tok_kind ops[] = {FE_T_STAR, FE_T_SLASH, FE_T_DSLASH, FE_T_PERCENT, FE_T_AT};
    return left_assoc(P, parse_factor, ops, 5);
}
static fe_expr *parse_arith(parser *P) {
    static const fe_tok_kind ops[] = {FE_T_PLUS, FE_T_MINUS};
    return left_assoc(P, parse_term, ops, 2);
}
static fe_expr *parse_shift(parser *P) {
    static const fe_tok_kind ops[] = {FE_T_LSHIFT, FE_T_RSHIFT};
    return left_assoc(P, parse_arith, ops, 2);
}
static fe_expr *parse_bitand(parser *P) {
    static const fe_tok_kind ops[] = {FE_T_AMP};
    return left_assoc(P, parse_shift, ops, 1);
}
static fe_expr *parse_bitxor(parser *P) {
    static const fe_tok_kind ops[] = {FE_T_CARET};
    return left_assoc(P, parse_bitand, ops, 1);
}
static fe_expr *parse_bitor(parser *P) {
    static const fe_tok_kind ops[] = {FE_T_PIPE};
    return left_assoc(P, parse_bitxor, ops, 1);
}

/* The comparison operator at the cursor (consumed), or 0 when none. */
static int comp_op(parser *P) {
    fe_tok_kind k = kind(P);
    switch (k) {
    case FE_T_LT:
    case FE_T_GT:
    case FE_T_LE:
    case FE_T_GE:
    case FE_T_EQ:
    case FE_T_NE:
    case FE_T_KW_IN: advance(P); return k;
    case FE_T_KW_NOT:
        if (peek(P, 1) != FE_T_KW_IN) return 0;
        advance(P);
        advance(P);
        return FE_CMP_NOT_IN;
    case FE_T_KW_IS:
        advance(P);
        return accept(P, FE_T_KW_NOT) ? FE_CMP_IS_NOT : FE_T_KW_IS;
    default: return 0;
    }
}

static fe_expr *parse_comparison(parser *P) {
    fe_expr *first = parse_bitor(P);
    if (!first) return NULL;
    sp_loc loc = cur(P)->loc;
    int op = comp_op(P);
    if (!op) return first;
    vec vals = {0}, ops = {0};
    fe_expr *e = mk(P, FE_E_COMPARE, loc);
    if (!e || !vec_push(P, &vals, first)) goto fail;
    e = deeper(P, e, first);
    while (op) {
        fe_expr *x = parse_bitor(P);
        if (!x || !vec_push(P, &vals, x) || !vec_push(P, &ops, (void *)(intptr_t)op)) goto fail;
        e = deeper(P, e, x);
        if (!e) goto fail;
        op = comp_op(P);
    }
    e->u.cmp.n = vals.n;
    int *iops = fe_arena_alloc(P->arena, (size_t)ops.n * sizeof *iops);
    if (!iops) goto fail;
    for (int i = 0; i < ops.n; i++) iops[i] = (int)(intptr_t)ops.p[i];
    free(ops.p);
    e->u.cmp.ops = iops;
    e->u.cmp.vals = (fe_expr **)vec_finish(P, &vals);
    return e->u.cmp.vals ? e : NULL;
fail:
    if (!P->st) P->st = SP_ERR_NOMEM;
    free(vals.p);
    free(ops.p);
    return NULL;
}

static fe_expr *parse_not(parser *P) {
    if (kind(P) == FE_T_KW_NOT) {
        fe_token *op = advance(P);
        if (++P->depth > PARSE_MAX_DEPTH) {
            p_error(P, op->loc, SP_ERR_SYNTAX, "expression too deeply nested");
            return NULL;
        }
        fe_expr *a = parse_not(P);
        P->depth--;
        if (!a) return NULL;
        fe_expr *e = mk(P, FE_E_UNARY, op->loc);
        if (!e) return NULL;
        e->u.op.op = FE_T_KW_NOT;
        e->u.op.a = a;
        return deeper(P, e, a);
    }
    return parse_comparison(P);
}

static fe_expr *parse_and(parser *P) {
    fe_expr *e = parse_not(P);
    while (e && kind(P) == FE_T_KW_AND) {
        fe_token *op = advance(P);
        e = binary(P, FE_E_BOOLOP, FE_T_KW_AND, op->loc, e, parse_not(P));
    }
    return e;
}

static fe_expr *parse_or_test(parser *P) {
    fe_expr *e = parse_and(P);
    while (e && kind(P) == FE_T_KW_OR) {
        fe_token *op = advance(P);
        e = binary(P, FE_E_BOOLOP, FE_T_KW_OR, op->loc, e, parse_and(P));
    }
    return e;
}

/* Parameters of a def (until ')') or a lambda (until ':'). */
static int parse_params(parser *P, fe_params *out, fe_tok_kind close, int annotations) {
    vec names = {0};
    fe_param *items = NULL;
    int n = 0, cap = 0, seen_default = 0;
    memset(out, 0, sizeof *out);
    while (kind(P) != close) {
        fe_token *t = cur(P);
        int star = 0;
        if (t->kind == FE_T_DSTAR) {
            unsupported(P, t->loc, "**kwargs parameters (only *args is supported)");
            goto fail;
        }
        if (t->kind == FE_T_SLASH) { /* positional-only marker: nothing to do */
            advance(P);
            if (!accept(P, FE_T_COMMA)) break;
            continue;
        }
        if (out->has_varargs) {
            unsupported(P, t->loc, "keyword-only parameters (after *args)");
            goto fail;
        }
        if (t->kind == FE_T_STAR) {
            advance(P);
            if (kind(P) != FE_T_NAME) {
                unsupported(P, t->loc, "keyword-only parameters (a bare '*')");
                goto fail;
            }
            star = 1;
            t = cur(P);
        }
        if (t->kind != FE_T_NAME) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "expected a parameter name");
            goto fail;
        }
        advance(P);
        for (int k = 0; k < n; k++)
            if (strcmp(items[k].name, t->text) == 0) {
                p_error(P, t->loc, SP_ERR_SYNTAX, "duplicate argument '%s' in function definition",
                        t->text);
                goto fail;
            }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            fe_param *q = fe_arena_alloc(P->arena, (size_t)cap * sizeof *q);
            if (!q) goto fail;
            if (n) memcpy(q, items, (size_t)n * sizeof *q);
            items = q;
        }
        fe_param *pp = &items[n++];
        pp->name = t->text;
        pp->loc = t->loc;
        if (annotations && accept(P, FE_T_COLON)) {
            if (!parse_test(P)) goto fail; /* annotations are ignored */
        }
        if (kind(P) == FE_T_ASSIGN) {
            fe_token *eq = advance(P);
            if (star) {
                p_error(P, eq->loc, SP_ERR_SYNTAX, "*args cannot have a default value");
                goto fail;
            }
            pp->def = parse_test(P);
            if (!pp->def) goto fail;
            seen_default = 1;
        } else if (seen_default && !star) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "non-default argument follows default argument");
            goto fail;
        }
        if (star) out->has_varargs = 1;
        if (!accept(P, FE_T_COMMA)) break;
    }
    free(names.p);
    out->n = n;
    out->items = items;
    return 1;
fail:
    free(names.p);
    if (!P->st) P->st = SP_ERR_NOMEM;
    return 0;
}

static fe_expr *parse_test(parser *P) {
    if (++P->depth > PARSE_MAX_DEPTH) {
        p_error(P, cur(P)->loc, SP_ERR_SYNTAX, "expression too deeply nested");
        return NULL;
    }
    fe_expr *e;
    if (kind(P) == FE_T_KW_LAMBDA) {
        fe_token *lam = advance(P);
        e = mk(P, FE_E_LAMBDA, lam->loc);
        if (e && parse_params(P, &e->u.lambda.params, FE_T_COLON, 0) && expect(P, FE_T_COLON)) {
            e->u.lambda.body = parse_test(P);
            e = e->u.lambda.body ? deeper(P, e, e->u.lambda.body) : NULL;
        } else {
            e = NULL;
        }
    } else {
        e = parse_or_test(P);
        if (e && kind(P) == FE_T_KW_IF) {
            fe_token *kw = advance(P);
            fe_expr *c = mk(P, FE_E_IFEXP, kw->loc);
            if (!c) return NULL;
            c->u.ifexp.a = e;
            c->u.ifexp.cond = parse_or_test(P);
            if (c->u.ifexp.cond && expect(P, FE_T_KW_ELSE)) {
                c->u.ifexp.b = parse_test(P);
            }
            if (!c->u.ifexp.cond || !c->u.ifexp.b) {
                e = NULL;
            } else {
                c = deeper(P, c, e);
                c = deeper(P, c, c ? c->u.ifexp.cond : NULL);
                e = c ? deeper(P, c, c->u.ifexp.b) : NULL;
            }
        }
    }
    P->depth--;
    return e;
}

/* test (',' test)* [','] as a tuple when there is a comma. */
static fe_expr *parse_testlist(parser *P) {
    sp_loc loc = cur(P)->loc;
    if (kind(P) == FE_T_STAR) {
        unsupported(P, loc, "star-expressions (*x)");
        return NULL;
    }
    fe_expr *first = parse_test(P);
    if (!first || kind(P) != FE_T_COMMA) return first;
    vec v = {0};
    if (!vec_push(P, &v, first)) return NULL;
    while (accept(P, FE_T_COMMA)) {
        fe_tok_kind k = kind(P);
        if (k == FE_T_NEWLINE || k == FE_T_SEMI || k == FE_T_ASSIGN || k == FE_T_RPAREN ||
            k == FE_T_COLON || k == FE_T_EOF || (k >= FE_T_PLUS_EQ && k <= FE_T_RSHIFT_EQ))
            break;
        if (k == FE_T_STAR) {
            unsupported(P, cur(P)->loc, "star-expressions (*x)");
            free(v.p);
            return NULL;
        }
        fe_expr *x = parse_test(P);
        if (!x || !vec_push(P, &v, x)) {
            free(v.p);
            return NULL;
        }
    }
    fe_expr *e = mk(P, FE_E_TUPLE, loc);
    if (!e) {
        free(v.p);
        return NULL;
    }
    e->u.seq.n = v.n;
    e->u.seq.items = (fe_expr **)vec_finish(P, &v);
    if (!e->u.seq.items) return NULL;
    for (int k = 0; k < e->u.seq.n && e; k++) e = deeper(P, e, e->u.seq.items[k]);
    return e;
}

/* ---- statements ---------------------------------------------------------- */

static fe_stmt *mks(parser *P, fe_stmt_kind k, sp_loc loc) {
    fe_stmt *s = fe_arena_alloc(P->arena, sizeof *s);
    if (!s) {
        if (!P->st) P->st = SP_ERR_NOMEM;
        return NULL;
    }
    s->kind = k;
    s->loc = loc;
    return s;
}

/* Checks that e can be assigned to (`aug`: a single target). */
static int check_target(parser *P, const fe_expr *e, int aug) {
    switch (e->kind) {
    case FE_E_NAME: return 1;
    case FE_E_ATTR:
    case FE_E_SUBSCRIPT: return 1; /* the builder says these are unsupported */
    case FE_E_TUPLE:
    case FE_E_LIST:
        if (aug) {
            p_error(P, e->loc, SP_ERR_SYNTAX,
                    "'%s' is an illegal expression for augmented assignment",
                    e->kind == FE_E_TUPLE ? "tuple" : "list");
            return 0;
        }
        if (e->u.seq.n == 0 && e->kind == FE_E_TUPLE) {
            p_error(P, e->loc, SP_ERR_SYNTAX, "cannot assign to ()");
            return 0;
        }
        for (int i = 0; i < e->u.seq.n; i++)
            if (!check_target(P, e->u.seq.items[i], 0)) return 0;
        return 1;
    case FE_E_CALL: p_error(P, e->loc, SP_ERR_SYNTAX, "cannot assign to function call"); return 0;
    case FE_E_INT:
    case FE_E_FLOAT:
    case FE_E_STR:
    case FE_E_BOOL:
    case FE_E_NONE:
    case FE_E_ELLIPSIS: p_error(P, e->loc, SP_ERR_SYNTAX, "cannot assign to literal"); return 0;
    default: p_error(P, e->loc, SP_ERR_SYNTAX, "cannot assign to expression"); return 0;
    }
}

static const char *dotted_name(parser *P) {
    char buf[512];
    size_t n = 0;
    for (;;) {
        fe_token *t = cur(P);
        if (t->kind != FE_T_NAME) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "expected a module name");
            return NULL;
        }
        advance(P);
        size_t len = strlen(t->text);
        if (n + len + 2 >= sizeof buf) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "module name too long");
            return NULL;
        }
        if (n) buf[n++] = '.';
        memcpy(buf + n, t->text, len);
        n += len;
        if (!accept(P, FE_T_DOT)) break;
    }
    char *s = fe_arena_strndup(P->arena, buf, n);
    if (!s && !P->st) P->st = SP_ERR_NOMEM;
    return s;
}

static const char *as_name(parser *P) {
    if (!accept(P, FE_T_KW_AS)) return NULL;
    fe_token *t = cur(P);
    if (t->kind != FE_T_NAME) {
        p_error(P, t->loc, SP_ERR_SYNTAX, "expected a name after 'as'");
        return NULL;
    }
    advance(P);
    return t->text;
}

static fe_stmt *parse_import(parser *P) {
    fe_token *kw = advance(P);
    fe_stmt *s = mks(P, kw->kind == FE_T_KW_IMPORT ? FE_S_IMPORT : FE_S_FROM, kw->loc);
    if (!s) return NULL;
    if (kw->kind == FE_T_KW_FROM) {
        if (kind(P) == FE_T_DOT || kind(P) == FE_T_ELLIPSIS) {
            unsupported(P, cur(P)->loc, "relative imports");
            return NULL;
        }
        s->u.import.module = dotted_name(P);
        if (!s->u.import.module || !expect(P, FE_T_KW_IMPORT)) return NULL;
        if (kind(P) == FE_T_STAR) {
            unsupported(P, cur(P)->loc, "'import *'");
            return NULL;
        }
    }
    int paren = kw->kind == FE_T_KW_FROM && accept(P, FE_T_LPAREN);
    fe_alias *items = NULL;
    int n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            fe_alias *q = fe_arena_alloc(P->arena, (size_t)cap * sizeof *q);
            if (!q) {
                if (!P->st) P->st = SP_ERR_NOMEM;
                return NULL;
            }
            if (n) memcpy(q, items, (size_t)n * sizeof *q);
            items = q;
        }
        fe_alias *a = &items[n++];
        a->loc = cur(P)->loc;
        if (kw->kind == FE_T_KW_IMPORT) {
            a->name = dotted_name(P);
        } else {
            fe_token *t = cur(P);
            if (t->kind != FE_T_NAME) {
                p_error(P, t->loc, SP_ERR_SYNTAX, "expected a name to import");
                return NULL;
            }
            advance(P);
            a->name = t->text;
        }
        if (!a->name) return NULL;
        if (kind(P) == FE_T_KW_AS) {
            a->asname = as_name(P);
            if (!a->asname) return NULL;
        }
        if (!accept(P, FE_T_COMMA)) break;
        if (paren && kind(P) == FE_T_RPAREN) break;
    }
    if (paren && !expect(P, FE_T_RPAREN)) return NULL;
    s->u.import.n = n;
    s->u.import.names = items;
    return s;
}

static int is_aug(fe_tok_kind k) { return k >= FE_T_PLUS_EQ && k <= FE_T_RSHIFT_EQ; }

static int aug_binop(fe_tok_kind k) {
    switch (k) {
    case FE_T_PLUS_EQ: return FE_T_PLUS;
    case FE_T_MINUS_EQ: return FE_T_MINUS;
    case FE_T_STAR_EQ: return FE_T_STAR;
    case FE_T_SLASH_EQ: return FE_T_SLASH;
    case FE_T_DSLASH_EQ: return FE_T_DSLASH;
    case FE_T_PERCENT_EQ: return FE_T_PERCENT;
    case FE_T_DSTAR_EQ: return FE_T_DSTAR;
    case FE_T_AT_EQ: return FE_T_AT;
    case FE_T_AMP_EQ: return FE_T_AMP;
    case FE_T_PIPE_EQ: return FE_T_PIPE;
    case FE_T_CARET_EQ: return FE_T_CARET;
    case FE_T_LSHIFT_EQ: return FE_T_LSHIFT;
    default: return FE_T_RSHIFT;
    }
}

static fe_stmt *parse_expr_stmt(parser *P) {
    sp_loc loc = cur(P)->loc;
    fe_expr *first = parse_testlist(P);
    if (!first) return NULL;
    fe_tok_kind k = kind(P);
    if (k == FE_T_WALRUS) {
        unsupported(P, cur(P)->loc, "assignment expressions (:=)");
        return NULL;
    }
    if (is_aug(k)) {
        fe_token *op = advance(P);
        if (!check_target(P, first, 1)) return NULL;
        fe_stmt *s = mks(P, FE_S_AUGASSIGN, op->loc);
        if (!s) return NULL;
        s->u.aug.target = first;
        s->u.aug.op = aug_binop(k);
        s->u.aug.value = parse_testlist(P);
        return s->u.aug.value ? s : NULL;
    }
    if (k == FE_T_COLON) { /* annotated: x: T [= v] */
        advance(P);
        if (first->kind != FE_E_NAME && first->kind != FE_E_ATTR && first->kind != FE_E_SUBSCRIPT) {
            p_error(P, first->loc, SP_ERR_SYNTAX, "only single target (not tuple) can be annotated");
            return NULL;
        }
        if (!parse_test(P)) return NULL;
        if (!accept(P, FE_T_ASSIGN)) return mks(P, FE_S_PASS, loc);
        fe_stmt *s = mks(P, FE_S_ASSIGN, loc);
        fe_expr **t = fe_arena_alloc(P->arena, sizeof *t);
        if (!s || !t) {
            if (!P->st) P->st = SP_ERR_NOMEM;
            return NULL;
        }
        t[0] = first;
        s->u.assign.n = 1;
        s->u.assign.targets = t;
        s->u.assign.value = parse_testlist(P);
        return s->u.assign.value ? s : NULL;
    }
    if (k != FE_T_ASSIGN) {
        fe_stmt *s = mks(P, FE_S_EXPR, loc);
        if (s) s->u.expr = first;
        return s;
    }
    vec targets = {0};
    fe_expr *value = first;
    while (kind(P) == FE_T_ASSIGN) {
        advance(P);
        if (!check_target(P, value, 0) || !vec_push(P, &targets, value)) goto fail;
        if (kind(P) == FE_T_KW_YIELD) {
            unsupported(P, cur(P)->loc, "yield (generators)");
            goto fail;
        }
        value = parse_testlist(P);
        if (!value) goto fail;
    }
    fe_stmt *s = mks(P, FE_S_ASSIGN, loc);
    if (!s) goto fail;
    s->u.assign.n = targets.n;
    s->u.assign.targets = (fe_expr **)vec_finish(P, &targets);
    s->u.assign.value = value;
    return s->u.assign.targets ? s : NULL;
fail:
    free(targets.p);
    return NULL;
}

static fe_stmt *parse_small(parser *P) {
    fe_token *t = cur(P);
    fe_stmt *s;
    switch (t->kind) {
    case FE_T_KW_PASS: advance(P); return mks(P, FE_S_PASS, t->loc);
    case FE_T_KW_BREAK:
    case FE_T_KW_CONTINUE:
        advance(P);
        if (P->loop_depth == 0) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "'%s' outside loop", fe_tok_text(t->kind));
            return NULL;
        }
        return mks(P, t->kind == FE_T_KW_BREAK ? FE_S_BREAK : FE_S_CONTINUE, t->loc);
    case FE_T_KW_RETURN:
        advance(P);
        if (P->def_depth == 0) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "'return' outside function");
            return NULL;
        }
        s = mks(P, FE_S_RETURN, t->loc);
        if (s && kind(P) != FE_T_NEWLINE && kind(P) != FE_T_SEMI) {
            s->u.expr = parse_testlist(P);
            if (!s->u.expr) return NULL;
        }
        return s;
    case FE_T_KW_RAISE:
        advance(P);
        s = mks(P, FE_S_RAISE, t->loc);
        if (s && kind(P) != FE_T_NEWLINE && kind(P) != FE_T_SEMI) {
            s->u.expr = parse_test(P);
            if (!s->u.expr) return NULL;
            if (accept(P, FE_T_KW_FROM) && !parse_test(P)) return NULL;
        }
        return s;
    case FE_T_KW_ASSERT:
        advance(P);
        s = mks(P, FE_S_ASSERT, t->loc);
        if (!s) return NULL;
        s->u.assert_.cond = parse_test(P);
        if (!s->u.assert_.cond) return NULL;
        if (accept(P, FE_T_COMMA)) {
            s->u.assert_.msg = parse_test(P);
            if (!s->u.assert_.msg) return NULL;
        }
        return s;
    case FE_T_KW_IMPORT:
    case FE_T_KW_FROM: return parse_import(P);
    case FE_T_KW_GLOBAL: unsupported(P, t->loc, "global"); return NULL;
    case FE_T_KW_NONLOCAL: unsupported(P, t->loc, "nonlocal"); return NULL;
    case FE_T_KW_DEL: unsupported(P, t->loc, "del"); return NULL;
    case FE_T_KW_YIELD: unsupported(P, t->loc, "yield (generators)"); return NULL;
    default: return parse_expr_stmt(P);
    }
}

/* simple_stmt (';' simple_stmt)* [';'] NEWLINE, appended to v. */
static int parse_simple_line(parser *P, vec *v) {
    for (;;) {
        fe_stmt *s = parse_small(P);
        if (!s || !vec_push(P, v, s)) return 0;
        if (!accept(P, FE_T_SEMI)) break;
        if (kind(P) == FE_T_NEWLINE) break;
    }
    if (kind(P) != FE_T_NEWLINE) {
        if (!P->st) unexpected(P);
        return 0;
    }
    advance(P);
    return 1;
}

static int parse_stmt(parser *P, vec *v);

static fe_stmt *parse_if(parser *P, fe_token *kw) {
    fe_stmt *s = mks(P, kw->kind == FE_T_KW_WHILE ? FE_S_WHILE : FE_S_IF, kw->loc);
    if (!s) return NULL;
    s->u.cond.cond = parse_test(P);
    if (!s->u.cond.cond) return NULL;
    if (kind(P) == FE_T_WALRUS) {
        unsupported(P, cur(P)->loc, "assignment expressions (:=)");
        return NULL;
    }
    if (!expect(P, FE_T_COLON)) return NULL;
    if (kw->kind == FE_T_KW_WHILE) P->loop_depth++;
    int ok = parse_block(P, &s->u.cond.body, kw->kind == FE_T_KW_WHILE ? "'while' statement"
                         : kw->kind == FE_T_KW_IF ? "'if' statement" : "'elif' statement", kw->loc);
    if (kw->kind == FE_T_KW_WHILE) P->loop_depth--;
    if (!ok) return NULL;
    fe_token *t = cur(P);
    if (t->kind == FE_T_KW_ELIF && kw->kind != FE_T_KW_WHILE) {
        advance(P);
        /* an elif is an if nested in the else: bound the chain like any nesting */
        if (++P->elif_depth > PARSE_MAX_ELIFS) {
            p_error(P, t->loc, SP_ERR_SYNTAX, "too many elif branches (the limit is %d)",
                    PARSE_MAX_ELIFS);
            return NULL;
        }
        fe_stmt *inner = parse_if(P, t);
        P->elif_depth--;
        fe_stmt **items = fe_arena_alloc(P->arena, sizeof *items);
        if (!inner || !items) {
            if (!P->st) P->st = SP_ERR_NOMEM;
            return NULL;
        }
        items[0] = inner;
        s->u.cond.orelse.n = 1;
        s->u.cond.orelse.items = items;
    } else if (t->kind == FE_T_KW_ELSE) {
        advance(P);
        if (!expect(P, FE_T_COLON) ||
            !parse_block(P, &s->u.cond.orelse, "'else' statement", t->loc))
            return NULL;
    }
    return s;
}

static fe_stmt *parse_for(parser *P, fe_token *kw) {
    fe_stmt *s = mks(P, FE_S_FOR, kw->loc);
    if (!s) return NULL;
    sp_loc tloc = cur(P)->loc;
    vec targets = {0};
    int comma = 0;
    for (;;) {
        if (kind(P) == FE_T_STAR) {
            unsupported(P, cur(P)->loc, "star-targets (*x)");
            free(targets.p);
            return NULL;
        }
        fe_expr *t = parse_bitor(P);
        if (!t || !vec_push(P, &targets, t)) {
            free(targets.p);
            return NULL;
        }
        if (!accept(P, FE_T_COMMA)) break;
        comma = 1;
        if (kind(P) == FE_T_KW_IN) break;
    }
    if (targets.n == 1 && !comma) {
        s->u.loop.target = targets.p[0];
        free(targets.p);
    } else {
        fe_expr *t = mk(P, FE_E_TUPLE, tloc);
        if (!t) {
            free(targets.p);
            return NULL;
        }
        t->u.seq.n = targets.n;
        t->u.seq.items = (fe_expr **)vec_finish(P, &targets);
        if (!t->u.seq.items) return NULL;
        s->u.loop.target = t;
    }
    if (!check_target(P, s->u.loop.target, 0) || !expect(P, FE_T_KW_IN)) return NULL;
    s->u.loop.iter = parse_testlist(P);
    if (!s->u.loop.iter || !expect(P, FE_T_COLON)) return NULL;
    P->loop_depth++;
    int ok = parse_block(P, &s->u.loop.body, "'for' statement", kw->loc);
    P->loop_depth--;
    if (!ok) return NULL;
    fe_token *t = cur(P);
    if (t->kind == FE_T_KW_ELSE) {
        advance(P);
        if (!expect(P, FE_T_COLON) ||
            !parse_block(P, &s->u.loop.orelse, "'else' statement", t->loc))
            return NULL;
    }
    return s;
}

static fe_stmt *parse_def(parser *P, fe_token *kw) {
    fe_stmt *s = mks(P, FE_S_DEF, kw->loc);
    if (!s) return NULL;
    fe_token *name = cur(P);
    if (name->kind != FE_T_NAME) {
        p_error(P, name->loc, SP_ERR_SYNTAX, "expected a function name after 'def'");
        return NULL;
    }
    advance(P);
    s->u.def.name = name->text;
    if (!expect(P, FE_T_LPAREN) || !parse_params(P, &s->u.def.params, FE_T_RPAREN, 1) ||
        !expect(P, FE_T_RPAREN))
        return NULL;
    if (accept(P, FE_T_ARROW) && !parse_test(P)) return NULL;
    if (!expect(P, FE_T_COLON)) return NULL;
    /* a def starts a new function: loops around it do not reach inside */
    int saved_loops = P->loop_depth;
    P->loop_depth = 0;
    P->def_depth++;
    int ok = parse_block(P, &s->u.def.body, "function definition", kw->loc);
    P->def_depth--;
    P->loop_depth = saved_loops;
    return ok ? s : NULL;
}

/* One statement (a simple line may hold several), appended to v. */
static int parse_stmt(parser *P, vec *v) {
    fe_token *t = cur(P);
    fe_stmt *s = NULL;
    switch (t->kind) {
    case FE_T_KW_IF:
    case FE_T_KW_WHILE:
        advance(P);
        s = parse_if(P, t);
        break;
    case FE_T_KW_FOR:
        advance(P);
        s = parse_for(P, t);
        break;
    case FE_T_KW_DEF:
        advance(P);
        s = parse_def(P, t);
        break;
    case FE_T_AT:
        /* decorators: parsed and ignored */
        while (kind(P) == FE_T_AT) {
            advance(P);
            if (!parse_test(P) || !expect(P, FE_T_NEWLINE)) return 0;
        }
        if (kind(P) == FE_T_KW_CLASS) {
            unsupported(P, cur(P)->loc, P->def_depth ? "class definitions inside functions"
                                                     : "class definitions");
            return 0;
        }
        if (kind(P) != FE_T_KW_DEF) {
            p_error(P, cur(P)->loc, SP_ERR_SYNTAX, "expected 'def' after a decorator");
            return 0;
        }
        t = advance(P);
        s = parse_def(P, t);
        break;
    case FE_T_KW_CLASS:
        unsupported(P, t->loc, P->def_depth ? "class definitions inside functions"
                                            : "class definitions");
        return 0;
    case FE_T_KW_TRY: unsupported(P, t->loc, "try/except"); return 0;
    case FE_T_KW_WITH: unsupported(P, t->loc, "with"); return 0;
    case FE_T_KW_ASYNC: unsupported(P, t->loc, "async"); return 0;
    case FE_T_KW_ELSE:
    case FE_T_KW_ELIF:
    case FE_T_KW_EXCEPT:
    case FE_T_KW_FINALLY:
        p_error(P, t->loc, SP_ERR_SYNTAX, "invalid syntax: '%s' without a matching statement",
                fe_tok_text(t->kind));
        return 0;
    case FE_T_INDENT: p_error(P, t->loc, SP_ERR_SYNTAX, "unexpected indent"); return 0;
    default: return parse_simple_line(P, v);
    }
    return s && vec_push(P, v, s);
}

/* After a ':' -- an indented block, or simple statements on the same line. */
static int parse_block(parser *P, fe_block *out, const char *what, sp_loc head) {
    vec v = {0};
    if (kind(P) != FE_T_NEWLINE) {
        if (!parse_simple_line(P, &v)) goto fail;
    } else {
        advance(P);
        if (kind(P) != FE_T_INDENT) {
            p_error(P, cur(P)->loc, SP_ERR_SYNTAX, "expected an indented block after %s on line %d",
                    what, head.line);
            goto fail;
        }
        advance(P);
        while (kind(P) != FE_T_DEDENT && kind(P) != FE_T_EOF)
            if (!parse_stmt(P, &v)) goto fail;
        accept(P, FE_T_DEDENT);
    }
    out->n = v.n;
    out->items = (fe_stmt **)vec_finish(P, &v);
    return out->items != NULL;
fail:
    free(v.p);
    if (!P->st) P->st = SP_ERR_NOMEM;
    return 0;
}

sp_status fe_parse(const char *file, const char *src, fe_arena *arena, fe_block *out) {
    return fe_parse_snippet(file, src, 0, arena, out);
}

sp_status fe_parse_snippet(const char *file, const char *src, int base_ok, fe_arena *arena, fe_block *out) {
    parser P;
    memset(&P, 0, sizeof P);
    memset(out, 0, sizeof *out);
    P.file = file;
    P.src = src;
    P.arena = arena;
    sp_status st = fe_lex_snippet(file, src, base_ok, arena, &P.t, &P.n);
    if (st) return st;
    vec v = {0};
    while (kind(&P) != FE_T_EOF && !P.st) {
        if (kind(&P) == FE_T_NEWLINE) {
            advance(&P);
            continue;
        }
        if (!parse_stmt(&P, &v)) break;
    }
    if (!P.st) {
        out->n = v.n;
        out->items = (fe_stmt **)vec_finish(&P, &v);
    } else {
        free(v.p);
    }
    free(P.t);
    if (P.st == SP_ERR_NOMEM && !sp_last_error()[0]) sp_error(SP_ERR_NOMEM, "parser: out of memory");
    return P.st;
}
