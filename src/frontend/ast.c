/*
 * ast.c -- the front end's arena and the AST's text dump.
 *
 * The arena is a list of chunks; an allocation takes the next aligned bytes
 * of the head chunk or starts a new chunk (at least 64 KiB, or the request
 * when larger).  Nothing is freed before the whole arena is: a syntax tree
 * is built once, walked once by the builder and dropped.
 *
 * The dump is for tests and debugging: one statement per line with
 * two-space indentation, expressions as fully parenthesized prefix forms,
 * so that a test can check precedence and associativity by string
 * comparison ("(+ a (* b c))", "(< a b c)" for a chain, "(call f a k=b)").
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/lexer.h"
#include "ir/ir_internal.h"

typedef struct fe_chunk {
    struct fe_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} fe_chunk;

void *fe_arena_alloc(fe_arena *a, size_t n) {
    const size_t align = alignof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    if (n == 0) n = align;
    fe_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) {
            sp_error(SP_ERR_NOMEM, "front end: out of memory (%zu bytes)", n);
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *fe_arena_strndup(fe_arena *a, const char *s, size_t n) {
    char *p = fe_arena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void fe_arena_free(fe_arena *a) {
    fe_chunk *c = a->head;
    while (c) {
        fe_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

const char *fe_op_text(int op) { return fe_tok_text((fe_tok_kind)op); }

/* ---- dump ------------------------------------------------------------------ */

static void dump_expr(ir_buf *b, const fe_expr *e);

static void dump_params(ir_buf *b, const fe_params *p) {
    for (int i = 0; i < p->n; i++) {
        if (i) ir_buf_puts(b, ", ");
        if (p->has_varargs && i == p->n - 1) ir_buf_putc(b, '*');
        ir_buf_puts(b, p->items[i].name);
        if (p->items[i].def) {
            ir_buf_putc(b, '=');
            dump_expr(b, p->items[i].def);
        }
    }
}

static void dump_list(ir_buf *b, const char *head, int n, fe_expr *const *items) {
    ir_buf_printf(b, "(%s", head);
    for (int i = 0; i < n; i++) {
        ir_buf_putc(b, ' ');
        dump_expr(b, items[i]);
    }
    ir_buf_putc(b, ')');
}

static void dump_opt(ir_buf *b, const fe_expr *e) {
    if (e)
        dump_expr(b, e);
    else
        ir_buf_putc(b, '_');
}

static void dump_expr(ir_buf *b, const fe_expr *e) {
    char num[40];
    switch (e->kind) {
    case FE_E_NAME: ir_buf_puts(b, e->u.name); break;
    case FE_E_INT: ir_buf_printf(b, "%lld", (long long)e->u.i); break;
    case FE_E_FLOAT:
        ir_format_real(e->u.f, SP_F64, num, sizeof num);
        ir_buf_puts(b, num);
        break;
    case FE_E_STR: ir_buf_put_quoted(b, e->u.str.s, e->u.str.len, 1); break;
    case FE_E_BOOL: ir_buf_puts(b, e->u.i ? "True" : "False"); break;
    case FE_E_NONE: ir_buf_puts(b, "None"); break;
    case FE_E_ELLIPSIS: ir_buf_puts(b, "..."); break;
    case FE_E_TUPLE: dump_list(b, "tuple", e->u.seq.n, e->u.seq.items); break;
    case FE_E_LIST: dump_list(b, "list", e->u.seq.n, e->u.seq.items); break;
    case FE_E_ATTR:
        ir_buf_puts(b, "(. ");
        dump_expr(b, e->u.attr.value);
        ir_buf_printf(b, " %s)", e->u.attr.name);
        break;
    case FE_E_SUBSCRIPT:
        ir_buf_puts(b, "([] ");
        dump_expr(b, e->u.sub.value);
        ir_buf_putc(b, ' ');
        dump_expr(b, e->u.sub.index);
        ir_buf_putc(b, ')');
        break;
    case FE_E_SLICE:
        ir_buf_puts(b, "(: ");
        dump_opt(b, e->u.slice.lo);
        ir_buf_putc(b, ' ');
        dump_opt(b, e->u.slice.hi);
        ir_buf_putc(b, ' ');
        dump_opt(b, e->u.slice.step);
        ir_buf_putc(b, ')');
        break;
    case FE_E_CALL:
        ir_buf_puts(b, "(call ");
        dump_expr(b, e->u.call.fn);
        for (int i = 0; i < e->u.call.n; i++) {
            ir_buf_putc(b, ' ');
            if (e->u.call.kw[i]) ir_buf_printf(b, "%s=", e->u.call.kw[i]);
            dump_expr(b, e->u.call.args[i]);
        }
        ir_buf_putc(b, ')');
        break;
    case FE_E_UNARY:
    case FE_E_BINARY:
    case FE_E_BOOLOP:
        ir_buf_printf(b, "(%s ", fe_op_text(e->u.op.op));
        dump_expr(b, e->u.op.a);
        if (e->u.op.b) {
            ir_buf_putc(b, ' ');
            dump_expr(b, e->u.op.b);
        }
        ir_buf_putc(b, ')');
        break;
    case FE_E_COMPARE:
        ir_buf_putc(b, '(');
        dump_expr(b, e->u.cmp.vals[0]);
        for (int i = 1; i < e->u.cmp.n; i++) {
            ir_buf_printf(b, " %s ", fe_op_text(e->u.cmp.ops[i - 1]));
            dump_expr(b, e->u.cmp.vals[i]);
        }
        ir_buf_putc(b, ')');
        break;
    case FE_E_IFEXP:
        ir_buf_puts(b, "(if ");
        dump_expr(b, e->u.ifexp.cond);
        ir_buf_putc(b, ' ');
        dump_expr(b, e->u.ifexp.a);
        ir_buf_putc(b, ' ');
        dump_expr(b, e->u.ifexp.b);
        ir_buf_putc(b, ')');
        break;
    case FE_E_LAMBDA:
        ir_buf_puts(b, "(lambda (");
        dump_params(b, &e->u.lambda.params);
        ir_buf_puts(b, ") ");
        dump_expr(b, e->u.lambda.body);
        ir_buf_putc(b, ')');
        break;
    case FE_E_LISTCOMP:
        ir_buf_puts(b, "(listcomp ");
        dump_expr(b, e->u.comp.elt);
        ir_buf_putc(b, ' ');
        dump_expr(b, e->u.comp.target);
        ir_buf_putc(b, ' ');
        dump_expr(b, e->u.comp.iter);
        ir_buf_putc(b, ' ');
        dump_opt(b, e->u.comp.cond);
        ir_buf_putc(b, ')');
        break;
    }
}

static void dump_block(ir_buf *b, const fe_block *blk, int indent);

static void dump_stmt(ir_buf *b, const fe_stmt *s, int indent) {
    for (int i = 0; i < indent; i++) ir_buf_puts(b, "  ");
    switch (s->kind) {
    case FE_S_EXPR: dump_expr(b, s->u.expr); break;
    case FE_S_ASSIGN:
        for (int i = 0; i < s->u.assign.n; i++) {
            dump_expr(b, s->u.assign.targets[i]);
            ir_buf_puts(b, " = ");
        }
        dump_expr(b, s->u.assign.value);
        break;
    case FE_S_AUGASSIGN:
        dump_expr(b, s->u.aug.target);
        ir_buf_printf(b, " %s= ", fe_op_text(s->u.aug.op));
        dump_expr(b, s->u.aug.value);
        break;
    case FE_S_RETURN:
    case FE_S_RAISE:
        ir_buf_puts(b, s->kind == FE_S_RETURN ? "return" : "raise");
        if (s->u.expr) {
            ir_buf_putc(b, ' ');
            dump_expr(b, s->u.expr);
        }
        break;
    case FE_S_IF:
    case FE_S_WHILE:
        ir_buf_puts(b, s->kind == FE_S_IF ? "if " : "while ");
        dump_expr(b, s->u.cond.cond);
        ir_buf_puts(b, ":\n");
        dump_block(b, &s->u.cond.body, indent + 1);
        if (s->u.cond.orelse.n) {
            for (int i = 0; i < indent; i++) ir_buf_puts(b, "  ");
            ir_buf_puts(b, "else:\n");
            dump_block(b, &s->u.cond.orelse, indent + 1);
        }
        return;
    case FE_S_FOR:
        ir_buf_puts(b, "for ");
        dump_expr(b, s->u.loop.target);
        ir_buf_puts(b, " in ");
        dump_expr(b, s->u.loop.iter);
        ir_buf_puts(b, ":\n");
        dump_block(b, &s->u.loop.body, indent + 1);
        if (s->u.loop.orelse.n) {
            for (int i = 0; i < indent; i++) ir_buf_puts(b, "  ");
            ir_buf_puts(b, "else:\n");
            dump_block(b, &s->u.loop.orelse, indent + 1);
        }
        return;
    case FE_S_BREAK: ir_buf_puts(b, "break"); break;
    case FE_S_CONTINUE: ir_buf_puts(b, "continue"); break;
    case FE_S_PASS: ir_buf_puts(b, "pass"); break;
    case FE_S_ASSERT:
        ir_buf_puts(b, "assert ");
        dump_expr(b, s->u.assert_.cond);
        if (s->u.assert_.msg) {
            ir_buf_puts(b, ", ");
            dump_expr(b, s->u.assert_.msg);
        }
        break;
    case FE_S_DEF:
        ir_buf_printf(b, "def %s(", s->u.def.name);
        dump_params(b, &s->u.def.params);
        ir_buf_puts(b, "):\n");
        dump_block(b, &s->u.def.body, indent + 1);
        return;
    case FE_S_IMPORT:
    case FE_S_FROM:
        if (s->kind == FE_S_FROM)
            ir_buf_printf(b, "from %s import ", s->u.import.module);
        else
            ir_buf_puts(b, "import ");
        for (int i = 0; i < s->u.import.n; i++) {
            if (i) ir_buf_puts(b, ", ");
            ir_buf_puts(b, s->u.import.names[i].name);
            if (s->u.import.names[i].asname)
                ir_buf_printf(b, " as %s", s->u.import.names[i].asname);
        }
        break;
    }
    ir_buf_putc(b, '\n');
}

static void dump_block(ir_buf *b, const fe_block *blk, int indent) {
    for (int i = 0; i < blk->n; i++) dump_stmt(b, blk->items[i], indent);
}

char *fe_ast_dump(const fe_block *blk) {
    ir_buf b = {0};
    ir_buf_puts(&b, "");
    dump_block(&b, blk, 0);
    return ir_buf_finish(&b);
}
