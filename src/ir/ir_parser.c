/*
 * ir_parser.c -- reads the text form that printer.c writes back into a
 * module, so passes can be tested as IR text in, IR text out.
 *
 *   module  := (global | graph)*
 *   global  := 'global' NAME '=' const
 *   graph   := 'graph' LABEL '(' [param (',' param)*] ')' ['parent' LABEL]
 *              '{' [LOC] node* 'return' [operand] '}'
 *   param   := ['*'] NODE [NAME] ['=' const]
 *   node    := NODE [NAME] '=' operand '(' [operand (',' operand)*] ')' [LOC]
 *   operand := NODE | const
 *   const   := INT | FLOAT | STRING | None | True | False | undef | '...'
 *            | '(' tuple ')' | '[' list ']' | LABEL | dtype.X | prim.X
 *            | builtin.X | module.X | tensor(DTYPE, [dims], [values])
 *            | closure(LABEL, v...) | partial(f, v...) | keyword(STR, v)
 *            | slice(a, b, c)
 *   NODE = %<int>, LABEL = @name, @name~k or @"quoted", LOC = a comment
 *   "# file:line:col" on the same line; other comments are ignored.
 *
 * Forward references are normal (a loop header calls itself, a branch
 * calls a continuation printed after it, a nested graph may be printed
 * before the graph owning its free variables), so graphs and nodes are
 * created as placeholders on first mention and filled in at their
 * definition; at the end every placeholder must have been defined, and
 * the module's graphs are put in the order of their definitions, which is
 * the printed order, so print -> parse -> print is the identity.
 *
 * The parser is fuzzed: every malformed input is an error
 * "file:line:col: message" with the offending line and a caret, never a
 * crash.  Recursion (nested constants) is bounded by a depth limit; sizes
 * are checked before anything is allocated from them.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ir/ir_internal.h"

#define PARSE_MAX_DEPTH 200

static const char *builtin_names[] = {
#define SP_BUILTIN(ID, name, n) #name,
#include "ir/builtins.def"
#undef SP_BUILTIN
};
#define N_BUILTINS ((int)(sizeof builtin_names / sizeof builtin_names[0]))

typedef enum tk_kind {
    TK_EOF,
    TK_NAME,  /* bare identifier, dots allowed: prim.add, None, graph */
    TK_INT,
    TK_FLOAT,
    TK_STR,
    TK_NODE,  /* %N */
    TK_LABEL, /* @label */
    TK_PUNCT, /* ( ) [ ] { } , = * */
    TK_ELLIPSIS
} tk_kind;

typedef struct token {
    tk_kind kind;
    const char *p; /* start in the text */
    size_t len;
    int line, col;
    int64_t i;
    double f;
    char c; /* TK_PUNCT */
} token;

typedef struct parser {
    const char *text, *file;
    const char *p; /* scan position */
    int line;
    const char *line_start;
    token tok;        /* current token */
    int prev_line;    /* line of the token before tok */
    const char *trail; /* a comment right after the previous token, same line */
    size_t trail_len;
    ir_buf str;        /* decoded text of the current TK_STR / quoted label */
    int failed;
    sp_module *m;
    ir_map nodes;   /* id + 1 -> node */
    ir_map labels;  /* interned label -> graph */
    ir_map defined; /* graph -> 1 once defined */
    sp_graph **order;
    int n_order, cap_order;
} parser;

static sp_loc tok_loc(const parser *ps, const token *t) {
    sp_loc l = {ps->file, t->line, t->col};
    return l;
}

/* Reports an error at token t (once); returns -1. */
static int perr(parser *ps, const token *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int perr(parser *ps, const token *t, const char *fmt, ...) {
    if (ps->failed) return -1;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sp_error_src(ps->file, ps->text, tok_loc(ps, t), SP_ERR_SYNTAX, "%s", msg);
    ps->failed = 1;
    return -1;
}

/* ---- tokens ------------------------------------------------------------- */

static int is_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '<';
}
static int is_cont(unsigned char c) {
    return is_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '>';
}
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* Decodes a "..." literal at ps->p into ps->str; advances past it. */
static int scan_string(parser *ps, token *t) {
    const char *p = ps->p + 1;
    ps->str.n = 0;
    if (ps->str.p) ps->str.p[0] = '\0';
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '\0' || c == '\n') return perr(ps, t, "unterminated string");
        if (c == '"') break;
        if (c == '\\') {
            char e = p[1];
            if (e == 'n') ir_buf_putc(&ps->str, '\n');
            else if (e == 't') ir_buf_putc(&ps->str, '\t');
            else if (e == 'r') ir_buf_putc(&ps->str, '\r');
            else if (e == '\\' || e == '"' || e == '\'') ir_buf_putc(&ps->str, e);
            else if (e == 'x') {
                int v = 0;
                for (int k = 2; k < 4; k++) {
                    char h = p[k];
                    int d = h >= '0' && h <= '9' ? h - '0'
                          : h >= 'a' && h <= 'f' ? h - 'a' + 10
                          : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                    if (d < 0) return perr(ps, t, "bad \\x escape in string");
                    v = v * 16 + d;
                }
                ir_buf_putc(&ps->str, (char)v);
                p += 2;
            } else {
                return perr(ps, t, "unknown escape in string");
            }
            p += 2;
            continue;
        }
        ir_buf_putc(&ps->str, (char)c);
        p++;
    }
    if (ps->str.failed) return perr(ps, t, "out of memory reading a string");
    if (!ps->str.p) ir_buf_putn(&ps->str, "", 0);
    ps->p = p + 1;
    return 0;
}

/* Scans a number at ps->p (optionally signed); sets t. */
static int scan_number(parser *ps, token *t) {
    const char *p = ps->p;
    if (*p == '-') p++;
    if (strncmp(p, "inf", 3) == 0 && !is_cont((unsigned char)p[3])) {
        t->kind = TK_FLOAT;
        t->f = ps->p[0] == '-' ? -INFINITY : INFINITY;
        ps->p = p + 3;
        return 0;
    }
    if (!is_digit((unsigned char)*p)) return perr(ps, t, "expected a number after '-'");
    int is_float = 0;
    while (is_digit((unsigned char)*p)) p++;
    if (*p == '.') {
        is_float = 1;
        p++;
        while (is_digit((unsigned char)*p)) p++;
    }
    if (*p == 'e' || *p == 'E') {
        is_float = 1;
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!is_digit((unsigned char)*p)) return perr(ps, t, "bad exponent in number");
        while (is_digit((unsigned char)*p)) p++;
    }
    if (is_cont((unsigned char)*p)) return perr(ps, t, "bad number");
    size_t n = (size_t)(p - ps->p);
    char buf[64];
    if (n >= sizeof buf) {
        /* Long digit strings are legal for floats but never printed by us. */
        if (!is_float) return perr(ps, t, "integer out of range");
        return perr(ps, t, "number too long");
    }
    memcpy(buf, ps->p, n);
    buf[n] = '\0';
    if (is_float) {
        t->kind = TK_FLOAT;
        t->f = strtod(buf, NULL);
    } else {
        errno = 0;
        t->kind = TK_INT;
        t->i = strtoll(buf, NULL, 10);
        if (errno == ERANGE) return perr(ps, t, "integer out of range");
    }
    ps->p = p;
    return 0;
}

/* Moves to the next token, skipping blanks and comments; a comment on the
 * line of the token just left is remembered as its trailer. */
static int advance(parser *ps) {
    token *t = &ps->tok;
    ps->prev_line = t->line;
    ps->trail = NULL;
    for (;;) {
        char c = *ps->p;
        if (c == '\n') {
            ps->line++;
            ps->p++;
            ps->line_start = ps->p;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            ps->p++;
        } else if (c == '#') {
            const char *s = ps->p + 1;
            const char *e = strchr(s, '\n');
            if (!e) e = s + strlen(s);
            if (ps->line == ps->prev_line && !ps->trail) {
                ps->trail = s;
                ps->trail_len = (size_t)(e - s);
            }
            ps->p = e;
        } else {
            break;
        }
    }
    memset(t, 0, sizeof *t);
    t->p = ps->p;
    t->line = ps->line;
    t->col = (int)(ps->p - ps->line_start) + 1;
    unsigned char c = (unsigned char)*ps->p;
    if (c == '\0') {
        t->kind = TK_EOF;
        return 0;
    }
    if (is_start(c)) {
        const char *p = ps->p;
        while (is_cont((unsigned char)*p)) p++;
        t->kind = TK_NAME;
        t->len = (size_t)(p - ps->p);
        ps->p = p;
        if (t->len == 3 && memcmp(t->p, "inf", 3) == 0) {
            t->kind = TK_FLOAT;
            t->f = INFINITY;
        } else if (t->len == 3 && memcmp(t->p, "nan", 3) == 0) {
            t->kind = TK_FLOAT;
            t->f = NAN;
        }
        return 0;
    }
    if (is_digit(c) || c == '-') {
        int r = scan_number(ps, t);
        t->len = (size_t)(ps->p - t->p);
        return r;
    }
    if (c == '"') {
        t->kind = TK_STR;
        int r = scan_string(ps, t);
        t->len = (size_t)(ps->p - t->p);
        return r;
    }
    if (c == '%') {
        const char *p = ps->p + 1;
        int64_t v = 0;
        if (!is_digit((unsigned char)*p)) return perr(ps, t, "expected a node number after '%%'");
        while (is_digit((unsigned char)*p)) {
            v = v * 10 + (*p - '0');
            if (v > INT_MAX - 1) return perr(ps, t, "node number too large");
            p++;
        }
        if (is_cont((unsigned char)*p)) return perr(ps, t, "bad node number");
        t->kind = TK_NODE;
        t->i = v;
        t->len = (size_t)(p - ps->p);
        ps->p = p;
        return 0;
    }
    if (c == '@') {
        t->kind = TK_LABEL;
        const char *p = ps->p + 1;
        ps->str.n = 0;
        if (*p == '"') {
            ps->p = p;
            if (scan_string(ps, t)) return -1;
            p = ps->p;
        } else {
            while (is_cont((unsigned char)*p)) p++;
            if (p == ps->p + 1) return perr(ps, t, "expected a graph name after '@'");
            ir_buf_putn(&ps->str, ps->p + 1, (size_t)(p - ps->p - 1));
        }
        if (*p == '~') { /* the printer's suffix for graphs sharing a name */
            const char *q = p + 1;
            if (!is_digit((unsigned char)*q)) return perr(ps, t, "expected a number after '~'");
            while (is_digit((unsigned char)*q)) q++;
            if (q - p > 10) return perr(ps, t, "graph suffix too long");
            t->i = strtol(p + 1, NULL, 10);
            p = q;
        }
        if (is_cont((unsigned char)*p) || *p == '~' || *p == '"')
            return perr(ps, t, "bad graph name");
        if (ps->str.failed) return perr(ps, t, "out of memory reading a graph name");
        if (!ps->str.p) ir_buf_putn(&ps->str, "", 0);
        t->len = (size_t)(p - ps->p);
        ps->p = p;
        return 0;
    }
    if (c == '.' && ps->p[1] == '.' && ps->p[2] == '.') {
        t->kind = TK_ELLIPSIS;
        t->len = 3;
        ps->p += 3;
        return 0;
    }
    if (strchr("()[]{},=*", (int)c)) {
        t->kind = TK_PUNCT;
        t->c = (char)c;
        t->len = 1;
        ps->p++;
        return 0;
    }
    if (c >= 0x20 && c < 0x7f) return perr(ps, t, "unexpected character '%c'", c);
    return perr(ps, t, "unexpected byte 0x%02x", c);
}

static int is_punct(const parser *ps, char c) { return ps->tok.kind == TK_PUNCT && ps->tok.c == c; }

static int is_word(const parser *ps, const char *w) {
    return ps->tok.kind == TK_NAME && ps->tok.len == strlen(w) && memcmp(ps->tok.p, w, ps->tok.len) == 0;
}

static const char *tok_desc(const token *t) {
    switch (t->kind) {
    case TK_EOF: return "end of text";
    case TK_NAME: return "a name";
    case TK_INT: return "an integer";
    case TK_FLOAT: return "a float";
    case TK_STR: return "a string";
    case TK_NODE: return "a node";
    case TK_LABEL: return "a graph";
    case TK_PUNCT: return "punctuation";
    case TK_ELLIPSIS: return "'...'";
    }
    return "?";
}

static int expect(parser *ps, char c) {
    if (!is_punct(ps, c)) {
        if (ps->tok.kind == TK_PUNCT)
            return perr(ps, &ps->tok, "expected '%c', found '%c'", c, ps->tok.c);
        return perr(ps, &ps->tok, "expected '%c', found %s", c, tok_desc(&ps->tok));
    }
    return advance(ps);
}

/* ---- graphs and nodes by name ------------------------------------------- */

/* The graph a label names, created on first mention (placeholder loc is the
 * mention, for "never defined"). */
static sp_graph *get_graph(parser *ps) {
    token *t = &ps->tok;
    ir_buf key = {0};
    /* Key: the decoded name, a NUL, the suffix: quoted and bare spellings of
     * one name are one graph. */
    ir_buf_putn(&key, ps->str.p, ps->str.n);
    ir_buf_printf(&key, "~%lld", (long long)t->i);
    if (key.failed || memchr(ps->str.p, '\0', ps->str.n)) {
        ir_buf_free(&key);
        perr(ps, t, key.failed ? "out of memory" : "a graph name cannot hold a NUL byte");
        return NULL;
    }
    const char *k = ir_intern(ps->m, key.p);
    ir_buf_free(&key);
    if (!k) {
        perr(ps, t, "out of memory");
        return NULL;
    }
    sp_graph *g = ir_map_get(&ps->labels, IR_PKEY(k));
    if (g) return g;
    sp_loc at = tok_loc(ps, t);
    g = ir_graph_new(ps->m, ps->str.p, NULL, at);
    if (!g || ir_map_put(&ps->labels, IR_PKEY(k), g)) {
        perr(ps, t, "out of memory");
        return NULL;
    }
    return g;
}

static sp_node *get_node(parser *ps, int id) {
    sp_node *n = ir_map_get(&ps->nodes, (uint64_t)id + 1);
    if (n) return n;
    n = ir_node_placeholder(ps->m, id);
    if (!n || ir_map_put(&ps->nodes, (uint64_t)id + 1, n)) {
        perr(ps, &ps->tok, "out of memory");
        return NULL;
    }
    n->loc = tok_loc(ps, &ps->tok); /* the first mention, until defined */
    return n;
}

/* ---- constants ---------------------------------------------------------- */

static sp_value *parse_value(parser *ps, int depth);

/* Items up to `close` into a malloc'd array; trailing comma allowed. */
static int parse_items(parser *ps, char close, int depth, sp_value ***out, int *n, int *had_comma) {
    sp_value **a = NULL;
    int cap = 0, k = 0;
    *had_comma = 0;
    while (!is_punct(ps, close)) {
        sp_value *v = parse_value(ps, depth + 1);
        if (!v) goto fail;
        if (k == cap) {
            int nc = cap ? cap * 2 : 8;
            sp_value **p = realloc(a, sizeof *p * (size_t)nc);
            if (!p) {
                sp_value_release(v);
                perr(ps, &ps->tok, "out of memory");
                goto fail;
            }
            a = p;
            cap = nc;
        }
        a[k++] = v;
        if (is_punct(ps, ',')) {
            *had_comma = 1;
            if (advance(ps)) goto fail;
        } else if (!is_punct(ps, close)) {
            expect(ps, close);
            goto fail;
        }
    }
    if (advance(ps)) goto fail;
    *out = a;
    *n = k;
    return 0;
fail:
    for (int i = 0; i < k; i++) sp_value_release(a[i]);
    free(a);
    return -1;
}

static void release_items(sp_value **a, int n) {
    for (int i = 0; i < n; i++) sp_value_release(a[i]);
    free(a);
}

static sp_value *nomem(parser *ps) {
    perr(ps, &ps->tok, "out of memory");
    return NULL;
}

/* tensor(DTYPE, [dims], [values]) after the word "tensor". */
static sp_value *parse_tensor(parser *ps, token at) {
    sp_dtype dt;
    int64_t shape[SP_MAX_DIMS];
    int ndim = 0;
    unsigned char *data = NULL;
    size_t count = 0, cap = 0;
    if (expect(ps, '(')) return NULL;
    if (ps->tok.kind != TK_NAME) {
        perr(ps, &ps->tok, "expected a dtype name");
        return NULL;
    }
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(ps->tok.len < 31 ? ps->tok.len : 31), ps->tok.p);
    if (sp_dtype_parse(name, &dt) != SP_OK) {
        perr(ps, &ps->tok, "unknown dtype '%s'", name);
        return NULL;
    }
    size_t isz = sp_dtype_size(dt);
    if (advance(ps) || expect(ps, ',') || expect(ps, '[')) return NULL;
    while (!is_punct(ps, ']')) {
        if (ps->tok.kind != TK_INT || ps->tok.i < 0) {
            perr(ps, &ps->tok, "expected a size (an integer >= 0)");
            return NULL;
        }
        if (ndim == SP_MAX_DIMS) {
            perr(ps, &ps->tok, "a tensor has at most %d dimensions", SP_MAX_DIMS);
            return NULL;
        }
        shape[ndim++] = ps->tok.i;
        if (advance(ps)) return NULL;
        if (is_punct(ps, ',')) {
            if (advance(ps)) return NULL;
        } else if (!is_punct(ps, ']')) {
            expect(ps, ']');
            return NULL;
        }
    }
    if (advance(ps) || expect(ps, ',') || expect(ps, '[')) return NULL;
    while (!is_punct(ps, ']')) {
        token *t = &ps->tok;
        unsigned char cell[8] = {0};
        if (is_word(ps, "True") || is_word(ps, "False")) {
            if (dt != SP_BOOL) goto bad_elem;
            cell[0] = is_word(ps, "True");
        } else if (t->kind == TK_INT) {
            if (sp_dtype_is_float(dt)) {
                sp_store_f64(dt, cell, (double)t->i);
            } else {
                sp_store_i64(dt, cell, t->i);
                if (sp_load_i64(dt, cell) != t->i) {
                    perr(ps, t, "%lld is out of range for %s", (long long)t->i, sp_dtype_name(dt));
                    goto fail;
                }
            }
        } else if (t->kind == TK_FLOAT) {
            if (!sp_dtype_is_float(dt)) goto bad_elem;
            sp_store_f64(dt, cell, t->f);
        } else {
            goto bad_elem;
        }
        if (count == cap) {
            size_t nc = cap ? cap * 2 : 16;
            unsigned char *p = realloc(data, nc * isz);
            if (!p) {
                nomem(ps);
                goto fail;
            }
            data = p;
            cap = nc;
        }
        memcpy(data + count * isz, cell, isz);
        count++;
        if (advance(ps)) goto fail;
        if (is_punct(ps, ',')) {
            if (advance(ps)) goto fail;
        } else if (!is_punct(ps, ']')) {
            expect(ps, ']');
            goto fail;
        }
    }
    /* numel, compared with what was read before anything is allocated from it */
    size_t numel = 1;
    int zero = 0;
    for (int d = 0; d < ndim; d++) zero |= shape[d] == 0;
    if (zero) numel = 0;
    else
        for (int d = 0; d < ndim; d++) {
            if ((uint64_t)shape[d] > (uint64_t)count || numel > count / (size_t)shape[d]) {
                numel = count + 1; /* more than was given */
                break;
            }
            numel *= (size_t)shape[d];
        }
    if (numel != count) {
        perr(ps, &at, "tensor: the shape asks for %s values, %zu given",
             numel > count ? "more" : "fewer", count);
        goto fail;
    }
    if (advance(ps) || expect(ps, ')')) goto fail;
    unsigned char dummy[8] = {0};
    sp_tensor *tt = sp_tensor_from_data(dt, ndim, shape, data ? data : dummy);
    free(data);
    if (!tt) {
        perr(ps, &at, "tensor: %s", sp_last_error());
        return NULL;
    }
    sp_value *v = sp_value_tensor(tt);
    sp_tensor_release(tt);
    if (!v) return nomem(ps);
    return v;
bad_elem:
    perr(ps, &ps->tok, "bad element for a tensor of %s", sp_dtype_name(dt));
fail:
    free(data);
    return NULL;
}

/* name(args...) forms: closure, partial, keyword, slice. */
static sp_value *parse_call_form(parser *ps, token at, const char *what, int depth) {
    if (advance(ps)) return NULL;
    if (!is_punct(ps, '(')) {
        expect(ps, '(');
        return NULL;
    }
    if (advance(ps)) return NULL;
    sp_value **a = NULL;
    int n = 0, comma;
    if (parse_items(ps, ')', depth, &a, &n, &comma)) return NULL;
    sp_value *v = NULL;
    if (strcmp(what, "closure") == 0) {
        if (n < 1 || a[0]->kind != SP_V_GRAPH) perr(ps, &at, "closure: expected a graph first");
        else if (!(v = sp_value_closure(a[0]->u.graph, n - 1, a + 1))) nomem(ps);
    } else if (strcmp(what, "partial") == 0) {
        if (n < 1) perr(ps, &at, "partial: expected a function");
        else if (!(v = sp_value_partial(a[0], n - 1, a + 1))) nomem(ps);
    } else if (strcmp(what, "keyword") == 0) {
        if (n != 2 || a[0]->kind != SP_V_STR || memchr(a[0]->u.str.s, '\0', a[0]->u.str.len))
            perr(ps, &at, "keyword: expected a name string and a value");
        else if (!(v = sp_value_keyword(a[0]->u.str.s, a[1]))) nomem(ps);
    } else {
        if (n != 3) perr(ps, &at, "slice: expected start, stop and step");
        else if (!(v = sp_value_slice(a[0], a[1], a[2]))) nomem(ps);
    }
    release_items(a, n);
    return v;
}

/* The word after a dotted prefix ("prim.add" -> "add"), or NULL. */
static const char *after_prefix(const token *t, const char *prefix, char *buf, size_t n) {
    size_t pl = strlen(prefix);
    if (t->len <= pl || memcmp(t->p, prefix, pl) != 0 || t->len - pl >= n) return NULL;
    memcpy(buf, t->p + pl, t->len - pl);
    buf[t->len - pl] = '\0';
    return buf;
}

static sp_value *parse_value(parser *ps, int depth) {
    token t = ps->tok;
    if (depth > PARSE_MAX_DEPTH) {
        perr(ps, &t, "constant nested too deeply");
        return NULL;
    }
    sp_value *v = NULL;
    char w[64];
    switch (t.kind) {
    case TK_INT: v = sp_value_int(t.i); break;
    case TK_FLOAT: v = sp_value_float(t.f); break;
    case TK_STR: v = sp_value_str(ps->str.p, ps->str.n); break;
    case TK_ELLIPSIS: v = sp_value_ellipsis(); break;
    case TK_LABEL: {
        sp_graph *g = get_graph(ps);
        if (!g) return NULL;
        v = sp_value_graph(g);
        break;
    }
    case TK_PUNCT:
        if (t.c == '(' || t.c == '[') {
            if (advance(ps)) return NULL;
            sp_value **a = NULL;
            int n = 0, comma;
            if (parse_items(ps, t.c == '(' ? ')' : ']', depth, &a, &n, &comma)) return NULL;
            if (t.c == '(' && n == 1 && !comma) {
                release_items(a, n);
                perr(ps, &t, "a tuple of one item needs a trailing comma: (x,)");
                return NULL;
            }
            v = t.c == '(' ? sp_value_tuple(n, a) : sp_value_list(n, a);
            release_items(a, n);
            return v ? v : nomem(ps);
        }
        perr(ps, &t, "expected a value, found '%c'", t.c);
        return NULL;
    case TK_NAME:
        if (is_word(ps, "None")) v = sp_value_none();
        else if (is_word(ps, "True")) v = sp_value_bool(1);
        else if (is_word(ps, "False")) v = sp_value_bool(0);
        else if (is_word(ps, "undef")) v = sp_value_undef();
        else if (is_word(ps, "tensor")) {
            if (advance(ps)) return NULL;
            return parse_tensor(ps, t);
        } else if (is_word(ps, "closure") || is_word(ps, "partial") || is_word(ps, "keyword") ||
                   is_word(ps, "slice")) {
            snprintf(w, sizeof w, "%.*s", (int)t.len, t.p);
            return parse_call_form(ps, t, w, depth);
        } else if (after_prefix(&t, "prim.", w, sizeof w)) {
            int op = sp_op_find(w);
            if (op < 0) {
                perr(ps, &t, "unknown primitive '%s'", w);
                return NULL;
            }
            v = sp_value_prim(op);
        } else if (after_prefix(&t, "builtin.", w, sizeof w)) {
            int id = -1;
            for (int i = 0; i < N_BUILTINS; i++)
                if (strcmp(builtin_names[i], w) == 0) id = i;
            if (id < 0) {
                perr(ps, &t, "unknown builtin '%s'", w);
                return NULL;
            }
            v = sp_value_builtin(id);
        } else if (after_prefix(&t, "dtype.", w, sizeof w)) {
            sp_dtype d;
            if (sp_dtype_parse(w, &d) != SP_OK) {
                perr(ps, &t, "unknown dtype '%s'", w);
                return NULL;
            }
            v = sp_value_dtype(d);
        } else if (after_prefix(&t, "module.", w, sizeof w)) {
            static const char *mods[] = {"spore", "ops", "nn", "math", "prim"};
            static const int ids[] = {SP_MOD_SPORE, SP_MOD_OPS, SP_MOD_NN, SP_MOD_MATH, SP_MOD_PRIM};
            for (int i = 0; i < 5 && !v; i++)
                if (strcmp(w, mods[i]) == 0 && !(v = sp_value_module(ids[i]))) return nomem(ps);
            if (!v) {
                perr(ps, &t, "unknown module '%s'", w);
                return NULL;
            }
        } else {
            perr(ps, &t, "unknown name '%.*s' where a value was expected", (int)(t.len < 64 ? t.len : 64), t.p);
            return NULL;
        }
        break;
    default:
        perr(ps, &t, "expected a value, found %s", tok_desc(&t));
        return NULL;
    }
    if (!v) return nomem(ps);
    if (advance(ps)) {
        sp_value_release(v);
        return NULL;
    }
    return v;
}

/* ---- statements --------------------------------------------------------- */

/* A node reference or an inline constant (a new const node of g). */
static sp_node *parse_operand(parser *ps, sp_graph *g, int depth) {
    if (ps->tok.kind == TK_NODE) {
        sp_node *n = get_node(ps, (int)ps->tok.i);
        if (!n || advance(ps)) return NULL;
        return n;
    }
    sp_value *v = parse_value(ps, depth);
    if (!v) return NULL;
    sp_loc none = {ps->m->file, 0, 0};
    sp_node *c = ir_const_new(g, v, none);
    sp_value_release(v);
    if (!c) nomem(ps);
    return c;
}

/* A name after a node number: bare or quoted; NULL when absent. */
static int parse_opt_name(parser *ps, const char **out) {
    *out = NULL;
    ir_buf b = {0};
    if (ps->tok.kind == TK_NAME) {
        ir_buf_putn(&b, ps->tok.p, ps->tok.len);
    } else if (ps->tok.kind == TK_STR) {
        if (memchr(ps->str.p, '\0', ps->str.n)) return perr(ps, &ps->tok, "a name cannot hold a NUL byte");
        ir_buf_putn(&b, ps->str.p, ps->str.n);
    } else {
        return 0;
    }
    *out = b.failed ? NULL : ir_intern(ps->m, b.p);
    ir_buf_free(&b);
    if (!*out) return perr(ps, &ps->tok, "out of memory");
    return advance(ps);
}

/* A "# file:line:col" trailer of the statement just read, if there is one. */
static int trailer_loc(parser *ps, sp_loc *loc) {
    if (!ps->trail) return 0;
    const char *s = ps->trail, *e = ps->trail + ps->trail_len;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r')) e--;
    const char *c2 = e;
    while (c2 > s && is_digit((unsigned char)c2[-1])) c2--;
    if (c2 == e || c2 == s || c2[-1] != ':' || e - c2 > 10) return 0;
    const char *c1 = c2 - 1;
    while (c1 > s && is_digit((unsigned char)c1[-1])) c1--;
    if (c1 == c2 - 1 || c1 == s || c1[-1] != ':' || c2 - 1 - c1 > 10) return 0;
    long long line = strtoll(c1, NULL, 10), col = strtoll(c2, NULL, 10);
    if (line > INT_MAX || col > INT_MAX) return 0;
    const char *fe = c1 - 1; /* end of the file part */
    if (fe == s) return 0;
    ir_buf f = {0};
    if (*s == '"') {
        /* quoted: decode with the string scanner's rules on a copy */
        parser sub = *ps;
        sub.str = (ir_buf){0};
        char *copy = malloc((size_t)(fe - s) + 1);
        if (!copy) return perr(ps, &ps->tok, "out of memory");
        memcpy(copy, s, (size_t)(fe - s));
        copy[fe - s] = '\0';
        sub.p = copy;
        sub.failed = 1; /* a malformed quoted file is just not a location */
        int bad = scan_string(&sub, &sub.tok) || sub.p != copy + (fe - s) ||
                  memchr(sub.str.p, '\0', sub.str.n);
        if (!bad) ir_buf_putn(&f, sub.str.p, sub.str.n);
        free(copy);
        ir_buf_free(&sub.str);
        if (bad) return 0;
    } else {
        ir_buf_putn(&f, s, (size_t)(fe - s));
    }
    if (f.failed) {
        ir_buf_free(&f);
        return perr(ps, &ps->tok, "out of memory");
    }
    loc->file = ir_intern(ps->m, f.p);
    ir_buf_free(&f);
    if (!loc->file) return perr(ps, &ps->tok, "out of memory");
    loc->line = (int)line;
    loc->col = (int)col;
    return 0;
}

static int parse_node(parser *ps, sp_graph *g) {
    token at = ps->tok;
    sp_node *n = get_node(ps, (int)at.i);
    if (!n) return -1;
    if (n->graph) return perr(ps, &at, "node %%%d is defined twice", (int)at.i);
    n->graph = g; /* defined from here on */
    if (advance(ps) || parse_opt_name(ps, &n->name) || expect(ps, '=')) return -1;
    sp_node **in = NULL;
    int k = 0, cap = 0, rc = -1;
    for (;;) {
        sp_node *x = parse_operand(ps, g, 0);
        if (!x) goto done;
        if (k == cap) {
            int nc = cap ? cap * 2 : 8;
            sp_node **p = realloc(in, sizeof *p * (size_t)nc);
            if (!p) {
                nomem(ps);
                goto done;
            }
            in = p;
            cap = nc;
        }
        in[k++] = x;
        if (k == 1) {
            if (expect(ps, '(')) goto done;
            if (is_punct(ps, ')')) break;
        } else if (is_punct(ps, ',')) {
            if (advance(ps)) goto done;
        } else {
            break;
        }
    }
    if (!is_punct(ps, ')')) {
        expect(ps, ')');
        goto done;
    }
    n->kind = SP_NODE_APPLY;
    n->inputs = ir_alloc(ps->m, sizeof *in * (size_t)k);
    if (!n->inputs) {
        nomem(ps);
        goto done;
    }
    memcpy(n->inputs, in, sizeof *in * (size_t)k);
    n->n_inputs = k;
    if (advance(ps)) goto done;
    sp_loc loc = {ps->m->file, 0, 0};
    if (trailer_loc(ps, &loc)) goto done;
    n->loc = loc;
    rc = 0;
done:
    free(in);
    return rc;
}

static int parse_graph(parser *ps) {
    if (advance(ps)) return -1; /* 'graph' */
    if (ps->tok.kind != TK_LABEL) return perr(ps, &ps->tok, "expected a graph name (@name)");
    token at = ps->tok;
    sp_graph *g = get_graph(ps);
    if (!g) return -1;
    if (ir_map_get(&ps->defined, IR_PKEY(g))) return perr(ps, &at, "graph @%s is defined twice", g->name);
    if (ir_map_put(&ps->defined, IR_PKEY(g), (void *)1)) return perr(ps, &at, "out of memory");
    if (ps->n_order == ps->cap_order) {
        int nc = ps->cap_order ? ps->cap_order * 2 : 16;
        sp_graph **p = realloc(ps->order, sizeof *p * (size_t)nc);
        if (!p) return perr(ps, &at, "out of memory");
        ps->order = p;
        ps->cap_order = nc;
    }
    ps->order[ps->n_order++] = g;
    if (advance(ps) || expect(ps, '(')) return -1;
    while (!is_punct(ps, ')')) {
        int star = 0;
        if (g->has_varargs) return perr(ps, &ps->tok, "*args must be the last parameter");
        if (is_punct(ps, '*')) {
            star = 1;
            if (advance(ps)) return -1;
        }
        if (ps->tok.kind != TK_NODE) return perr(ps, &ps->tok, "expected a parameter (%%N)");
        token pt = ps->tok;
        sp_node *p = get_node(ps, (int)pt.i);
        if (!p) return -1;
        if (p->graph) return perr(ps, &pt, "node %%%d is defined twice", (int)pt.i);
        const char *name;
        if (advance(ps) || parse_opt_name(ps, &name)) return -1;
        if (ir_graph_push_param(g, p, name)) return perr(ps, &pt, "out of memory");
        p->name = name;
        p->loc = (sp_loc){ps->m->file, 0, 0};
        g->has_varargs = star;
        if (is_punct(ps, '=')) {
            if (advance(ps)) return -1;
            sp_value *v = parse_value(ps, 0);
            if (!v) return -1;
            g->defaults[g->n_params - 1] = v;
        }
        if (is_punct(ps, ',')) {
            if (advance(ps)) return -1;
            if (is_punct(ps, ')')) return perr(ps, &ps->tok, "expected a parameter after ','");
        } else if (!is_punct(ps, ')')) {
            return expect(ps, ')');
        }
    }
    if (advance(ps)) return -1;
    if (is_word(ps, "parent")) {
        if (advance(ps)) return -1;
        if (ps->tok.kind != TK_LABEL) return perr(ps, &ps->tok, "expected a graph name after 'parent'");
        token pt = ps->tok;
        sp_graph *parent = get_graph(ps);
        if (!parent) return -1;
        if (parent == g) return perr(ps, &pt, "a graph cannot be its own parent");
        g->parent = parent;
        if (advance(ps)) return -1;
    }
    if (!is_punct(ps, '{')) return expect(ps, '{');
    if (advance(ps)) return -1;
    sp_loc loc = {ps->m->file, 0, 0};
    if (trailer_loc(ps, &loc)) return -1;
    g->loc = loc;
    while (ps->tok.kind == TK_NODE)
        if (parse_node(ps, g)) return -1;
    if (!is_word(ps, "return"))
        return perr(ps, &ps->tok, "expected a node (%%N = ...) or 'return', found %s", tok_desc(&ps->tok));
    if (advance(ps)) return -1;
    if (!is_punct(ps, '}')) {
        if (!(g->output = parse_operand(ps, g, 0))) return -1;
    }
    return expect(ps, '}');
}

static int parse_global(parser *ps) {
    if (advance(ps)) return -1;
    token at = ps->tok;
    const char *name;
    if (parse_opt_name(ps, &name)) return -1;
    if (!name) return perr(ps, &at, "expected a global name");
    if (expect(ps, '=')) return -1;
    sp_value *v = parse_value(ps, 0);
    if (!v) return -1;
    if (ir_module_get_global(ps->m, name)) {
        sp_value_release(v);
        return perr(ps, &at, "global '%s' is defined twice", name);
    }
    sp_status st = ir_module_set_global(ps->m, name, v);
    sp_value_release(v);
    if (st) return perr(ps, &at, "out of memory");
    return 0;
}

/* Every mentioned graph and node must have been defined. */
static int check_defined(parser *ps) {
    for (int i = 0; i < ps->m->n_graphs; i++) {
        sp_graph *g = ps->m->graphs[i];
        if (!ir_map_get(&ps->defined, IR_PKEY(g))) {
            token t = {0};
            t.line = g->loc.line;
            t.col = g->loc.col;
            return perr(ps, &t, "graph @%s is used but never defined", g->name);
        }
    }
    /* Report the undefined node mentioned first. */
    sp_node *worst = NULL;
    for (size_t i = 0; i < ps->nodes.cap; i++) {
        sp_node *n = ps->nodes.vals[i];
        if (!ps->nodes.keys[i] || n->graph) continue;
        if (!worst || n->loc.line < worst->loc.line ||
            (n->loc.line == worst->loc.line && n->loc.col < worst->loc.col))
            worst = n;
    }
    if (worst) {
        token t = {0};
        t.line = worst->loc.line;
        t.col = worst->loc.col;
        return perr(ps, &t, "node %%%d is used but never defined", worst->id);
    }
    return 0;
}

sp_module *sp_module_parse_ir(const char *text, const char *file) {
    if (!text) {
        sp_error(SP_ERR_ARG, "parse_ir: NULL text");
        return NULL;
    }
    parser ps;
    memset(&ps, 0, sizeof ps);
    ps.text = text;
    ps.p = text;
    ps.line = 1;
    ps.line_start = text;
    ps.m = sp_module_new(file ? file : "<ir>", NULL);
    if (!ps.m) return NULL;
    ps.file = ps.m->file;
    int rc = advance(&ps);
    while (!rc && ps.tok.kind != TK_EOF) {
        if (is_word(&ps, "graph")) rc = parse_graph(&ps);
        else if (is_word(&ps, "global")) rc = parse_global(&ps);
        else rc = perr(&ps, &ps.tok, "expected 'graph' or 'global', found %s", tok_desc(&ps.tok));
    }
    if (!rc) rc = check_defined(&ps);
    if (!rc) ir_module_reorder(ps.m, ps.order);
    ir_buf_free(&ps.str);
    ir_map_free(&ps.nodes);
    ir_map_free(&ps.labels);
    ir_map_free(&ps.defined);
    free(ps.order);
    if (rc) {
        sp_module_free(ps.m);
        return NULL;
    }
    return ps.m;
}
