/*
 * lexer.c -- source text to tokens, the way CPython's tokenizer does it.
 *
 * One pass over the bytes with three pieces of state besides the position:
 * the bracket stack (inside (), [] and {} a newline is only whitespace and
 * indentation means nothing; the stack also remembers where each bracket
 * opened, for "'(' was never closed"), whether we stand at the start of a
 * logical line (where indentation is measured), and the indentation stack.
 *
 * Indentation keeps two columns per level, one with tab stops of 8 and one
 * with tab stops of 1 (CPython's "altcol"): a file is consistent when both
 * columns order the lines the same way; where they disagree, the meaning of
 * the file would depend on the tab width and that is a TabError.
 *
 * Blank lines and comment-only lines produce no tokens at all, so the
 * parser never sees an empty logical line.  Every error goes out through
 * lex_error, which formats "file:line:col: message" with the caret line.
 *
 * Literals are decoded here so that the parser and builder only see
 * values: strings as bytes (UTF-8 for \u escapes), ints as int64 (overflow
 * is an error, never a wrap), floats through strtod after the `_`
 * separators are removed.
 */
#include "frontend/lexer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEX_MAX_INDENT 100
#define LEX_MAX_BRACKETS 200

static const char *const tok_texts[] = {
#define FE_TOK_TEXT(id, text) text,
    FE_TOKENS(FE_TOK_TEXT)
#undef FE_TOK_TEXT
};

const char *fe_tok_text(fe_tok_kind k) {
    return (k >= 0 && k < FE_T_COUNT) ? tok_texts[k] : "?";
}

typedef struct lexer {
    const char *file, *src;
    size_t p, line_start;
    int line;
    fe_arena *arena;
    fe_token *toks;
    int n, cap;
    int ind8[LEX_MAX_INDENT + 1], ind1[LEX_MAX_INDENT + 1], depth;
    int base_ok; /* a snippet: the first line's indentation is the base (column kept) */
    char brackets[LEX_MAX_BRACKETS];
    sp_loc bracket_locs[LEX_MAX_BRACKETS];
    int nb;
} lexer;

static sp_status lex_error(lexer *lx, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

static sp_status lex_error(lexer *lx, int line, int col, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sp_loc loc = {lx->file, line, col};
    return sp_error_src(lx->file, lx->src, loc, SP_ERR_SYNTAX, "%s", msg);
}

static int lex_col(const lexer *lx, size_t p) { return (int)(p - lx->line_start) + 1; }

static fe_token *lex_push(lexer *lx, fe_tok_kind kind, int line, int col) {
    if (lx->n == lx->cap) {
        int cap = lx->cap ? lx->cap * 2 : 256;
        fe_token *t = realloc(lx->toks, (size_t)cap * sizeof *t);
        if (!t) {
            sp_error(SP_ERR_NOMEM, "lexer: out of memory for %d tokens", cap);
            return NULL;
        }
        lx->toks = t;
        lx->cap = cap;
    }
    fe_token *t = &lx->toks[lx->n++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->loc.file = lx->file;
    t->loc.line = line;
    t->loc.col = col;
    return t;
}

/* Consumes one newline ("\n", "\r\n" or "\r") at p. */
static void lex_newline(lexer *lx) {
    if (lx->src[lx->p] == '\r' && lx->src[lx->p + 1] == '\n') lx->p++;
    lx->p++;
    lx->line++;
    lx->line_start = lx->p;
}

static int is_name_start(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}
static int is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* ---- indentation -------------------------------------------------------- */

/* Measures the indentation of the line at p, then emits INDENT/DEDENTs.
 * Returns 0 when the line is blank (nothing emitted, p at the newline or
 * end), 1 when tokens follow, -1 on error. */
static int lex_indent(lexer *lx) {
    int c8 = 0, c1 = 0;
    for (;;) {
        char c = lx->src[lx->p];
        if (c == ' ') {
            c8++;
            c1++;
        } else if (c == '\t') {
            c8 = (c8 / 8 + 1) * 8;
            c1++;
        } else if (c == '\f') {
            c8 = c1 = 0;
        } else {
            break;
        }
        lx->p++;
    }
    char c = lx->src[lx->p];
    if (c == '#' || c == '\n' || c == '\r' || c == '\0') return 0;
    if (c == '\\' && (lx->src[lx->p + 1] == '\n' || lx->src[lx->p + 1] == '\r')) return 0;
    int line = lx->line, col = lex_col(lx, lx->p);
    if (lx->base_ok == 1) {
        /* a method cut out of its class keeps its indentation, so columns
         * (and carets) are the user's file's: that indentation is level 0 */
        lx->base_ok = 2;
        lx->ind8[0] = c8;
        lx->ind1[0] = c1;
    }
    int t8 = lx->ind8[lx->depth], t1 = lx->ind1[lx->depth];
    if (c8 == t8) {
        if (c1 != t1) goto tab_error;
        return 1;
    }
    if (c8 > t8) {
        if (c1 <= t1) goto tab_error;
        if (lx->depth == LEX_MAX_INDENT) {
            lex_error(lx, line, col, "too many levels of indentation (the limit is %d)",
                      LEX_MAX_INDENT);
            return -1;
        }
        lx->depth++;
        lx->ind8[lx->depth] = c8;
        lx->ind1[lx->depth] = c1;
        return lex_push(lx, FE_T_INDENT, line, col) ? 1 : -1;
    }
    while (lx->depth > 0 && c8 < lx->ind8[lx->depth]) {
        lx->depth--;
        if (!lex_push(lx, FE_T_DEDENT, line, col)) return -1;
    }
    if (c8 != lx->ind8[lx->depth]) {
        lex_error(lx, line, col, "unindent does not match any outer indentation level");
        return -1;
    }
    if (c1 != lx->ind1[lx->depth]) goto tab_error;
    return 1;
tab_error:
    lex_error(lx, line, col, "inconsistent use of tabs and spaces in indentation");
    return -1;
}

/* ---- numbers ------------------------------------------------------------ */

static sp_status lex_number(lexer *lx) {
    const char *s = lx->src;
    size_t start = lx->p, p = lx->p;
    int line = lx->line, col = lex_col(lx, start);
    int is_float = 0;
    char buf[512];
    size_t nb = 0;

    if (s[p] == '0' && (s[p + 1] == 'x' || s[p + 1] == 'X' || s[p + 1] == 'o' || s[p + 1] == 'O' ||
                        s[p + 1] == 'b' || s[p + 1] == 'B')) {
        char k = (char)(s[p + 1] | 0x20);
        int base = k == 'x' ? 16 : k == 'o' ? 8 : 2;
        p += 2;
        uint64_t v = 0;
        int digits = 0;
        for (;;) {
            if (s[p] == '_' && hexval((unsigned char)s[p + 1]) >= 0) p++;
            int d = hexval((unsigned char)s[p]);
            if (d < 0 || d >= base) break;
            if (v > (uint64_t)INT64_MAX / (uint64_t)base ||
                v * (uint64_t)base + (uint64_t)d > (uint64_t)INT64_MAX)
                return lex_error(lx, line, col, "integer literal too large for int64");
            v = v * (uint64_t)base + (uint64_t)d;
            digits++;
            p++;
        }
        if (!digits || is_name_char((unsigned char)s[p]))
            return lex_error(lx, line, col, "invalid %s literal",
                             base == 16 ? "hexadecimal" : base == 8 ? "octal" : "binary");
        fe_token *t = lex_push(lx, FE_T_INT, line, col);
        if (!t) return SP_ERR_NOMEM;
        t->i = (int64_t)v;
        lx->p = p;
        return SP_OK;
    }

    /* decimal: digits [. digits] [e [+-] digits], `_` only between digits */
#define LEX_DIGITS()                                                                       \
    while ((s[p] >= '0' && s[p] <= '9') || (s[p] == '_' && s[p + 1] >= '0' && s[p + 1] <= '9' && \
                                            p > start && s[p - 1] >= '0' && s[p - 1] <= '9')) { \
        if (s[p] != '_') {                                                                 \
            if (nb + 1 >= sizeof buf) return lex_error(lx, line, col, "numeric literal too long"); \
            buf[nb++] = s[p];                                                              \
        }                                                                                  \
        p++;                                                                               \
    }
    LEX_DIGITS();
    size_t int_digits = nb;
    if (s[p] == '.') {
        is_float = 1;
        buf[nb++] = '.';
        p++;
        if (s[p] >= '0' && s[p] <= '9') LEX_DIGITS();
    }
    if ((s[p] == 'e' || s[p] == 'E') &&
        ((s[p + 1] >= '0' && s[p + 1] <= '9') ||
         ((s[p + 1] == '+' || s[p + 1] == '-') && s[p + 2] >= '0' && s[p + 2] <= '9'))) {
        is_float = 1;
        buf[nb++] = 'e';
        p++;
        if (s[p] == '+' || s[p] == '-') buf[nb++] = s[p++];
        LEX_DIGITS();
    }
#undef LEX_DIGITS
    buf[nb] = '\0';
    if (s[p] == 'j' || s[p] == 'J')
        return lex_error(lx, line, col, "not supported in Spore: imaginary numbers");
    if (is_name_char((unsigned char)s[p]) || s[p] == '_')
        return lex_error(lx, line, col, "invalid decimal literal");
    fe_token *t;
    if (is_float) {
        t = lex_push(lx, FE_T_FLOAT, line, col);
        if (!t) return SP_ERR_NOMEM;
        t->f = strtod(buf, NULL);
    } else {
        if (int_digits > 1 && buf[0] == '0') {
            for (size_t i = 0; i < int_digits; i++)
                if (buf[i] != '0')
                    return lex_error(lx, line, col,
                                     "leading zeros in decimal integer literals are not "
                                     "permitted; use an 0o prefix for octal integers");
        }
        uint64_t v = 0;
        for (size_t i = 0; i < nb; i++) {
            uint64_t d = (uint64_t)(buf[i] - '0');
            if (v > ((uint64_t)INT64_MAX - d) / 10)
                return lex_error(lx, line, col, "integer literal too large for int64");
            v = v * 10 + d;
        }
        t = lex_push(lx, FE_T_INT, line, col);
        if (!t) return SP_ERR_NOMEM;
        t->i = (int64_t)v;
    }
    lx->p = p;
    return SP_OK;
}

/* ---- strings ------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int sbuf_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            sp_error(SP_ERR_NOMEM, "lexer: out of memory for a string literal");
            return 0;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 1;
}

static int sbuf_put_utf8(sbuf *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return sbuf_put(b, u, n);
}

/* The string literal whose prefix (r/u/b/f, any case, may be empty) starts
 * at `start` and whose opening quote is at lx->p. */
static sp_status lex_string(lexer *lx, size_t start) {
    const char *s = lx->src;
    int line = lx->line, col = lex_col(lx, start);
    int raw = 0;
    for (size_t i = start; i < lx->p; i++) {
        char c = (char)(s[i] | 0x20);
        if (c == 'r') raw = 1;
        if (c == 'b') return lex_error(lx, line, col, "not supported in Spore: bytes literals");
        if (c == 'f') return lex_error(lx, line, col, "not supported in Spore: f-strings");
    }
    char q = s[lx->p];
    int triple = s[lx->p + 1] == q && s[lx->p + 2] == q;
    lx->p += triple ? 3 : 1;
    sbuf b = {0};
    sp_status st = SP_OK;
    for (;;) {
        char c = s[lx->p];
        if (c == '\0') {
            st = lex_error(lx, line, col, triple ? "unterminated triple-quoted string literal"
                                                 : "unterminated string literal");
            goto out;
        }
        if (c == q && (!triple || (s[lx->p + 1] == q && s[lx->p + 2] == q))) {
            lx->p += triple ? 3 : 1;
            break;
        }
        if (c == '\n' || c == '\r') {
            if (!triple) {
                st = lex_error(lx, line, col, "unterminated string literal");
                goto out;
            }
            lex_newline(lx);
            if (!sbuf_put(&b, "\n", 1)) goto nomem;
            continue;
        }
        if (c != '\\') {
            if (!sbuf_put(&b, &c, 1)) goto nomem;
            lx->p++;
            continue;
        }
        /* a backslash */
        int eline = lx->line, ecol = lex_col(lx, lx->p);
        char e = s[lx->p + 1];
        if (e == '\0') {
            st = lex_error(lx, line, col, triple ? "unterminated triple-quoted string literal"
                                                 : "unterminated string literal");
            goto out;
        }
        if (e == '\n' || e == '\r') {
            lx->p++;
            if (raw && !sbuf_put(&b, "\\\n", 2)) goto nomem;
            lex_newline(lx);
            continue;
        }
        if (raw) {
            /* \" does not end a raw string, but both characters stay */
            char two[2] = {'\\', e};
            if (!sbuf_put(&b, two, 2)) goto nomem;
            lx->p += 2;
            continue;
        }
        lx->p += 2;
        const char *simple = NULL;
        switch (e) {
        case '\\': simple = "\\"; break;
        case '\'': simple = "'"; break;
        case '"': simple = "\""; break;
        case 'a': simple = "\a"; break;
        case 'b': simple = "\b"; break;
        case 'f': simple = "\f"; break;
        case 'n': simple = "\n"; break;
        case 'r': simple = "\r"; break;
        case 't': simple = "\t"; break;
        case 'v': simple = "\v"; break;
        default: break;
        }
        if (simple) {
            if (!sbuf_put(&b, simple, 1)) goto nomem;
            continue;
        }
        if (e >= '0' && e <= '7') {
            uint32_t v = (uint32_t)(e - '0');
            for (int k = 0; k < 2 && s[lx->p] >= '0' && s[lx->p] <= '7'; k++)
                v = v * 8 + (uint32_t)(s[lx->p++] - '0');
            if (!sbuf_put_utf8(&b, v)) goto nomem;
            continue;
        }
        if (e == 'x' || e == 'u' || e == 'U') {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int k = 0; k < nd; k++) {
                int d = hexval((unsigned char)s[lx->p]);
                if (d < 0) {
                    st = lex_error(lx, eline, ecol, "truncated \\%c escape in a string literal", e);
                    goto out;
                }
                v = v * 16 + (uint32_t)d;
                lx->p++;
            }
            if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff && e != 'x')) {
                st = lex_error(lx, eline, ecol, "illegal Unicode character in \\%c escape", e);
                goto out;
            }
            if (!sbuf_put_utf8(&b, v)) goto nomem;
            continue;
        }
        if (e == 'N') {
            st = lex_error(lx, eline, ecol, "not supported in Spore: \\N{...} escapes");
            goto out;
        }
        /* an unknown escape keeps its backslash, as in Python */
        char two[2] = {'\\', e};
        if (!sbuf_put(&b, two, 2)) goto nomem;
    }
    {
        fe_token *t = lex_push(lx, FE_T_STR, line, col);
        if (!t) goto nomem;
        t->text = fe_arena_strndup(lx->arena, b.p ? b.p : "", b.n);
        t->len = b.n;
        if (!t->text) goto nomem;
    }
    goto out;
nomem:
    st = SP_ERR_NOMEM;
out:
    free(b.p);
    return st;
}

/* ---- operators ------------------------------------------------------------ */

typedef struct op_text {
    const char *text;
    fe_tok_kind kind;
} op_text;

/* Longest first, so that the first match is the longest one. */
static const op_text ops[] = {
    {"**=", FE_T_DSTAR_EQ}, {"//=", FE_T_DSLASH_EQ}, {"<<=", FE_T_LSHIFT_EQ},
    {">>=", FE_T_RSHIFT_EQ}, {"...", FE_T_ELLIPSIS},  {"->", FE_T_ARROW},
    {":=", FE_T_WALRUS},     {"**", FE_T_DSTAR},      {"//", FE_T_DSLASH},
    {"<<", FE_T_LSHIFT},     {">>", FE_T_RSHIFT},     {"<=", FE_T_LE},
    {">=", FE_T_GE},         {"==", FE_T_EQ},         {"!=", FE_T_NE},
    {"+=", FE_T_PLUS_EQ},    {"-=", FE_T_MINUS_EQ},   {"*=", FE_T_STAR_EQ},
    {"/=", FE_T_SLASH_EQ},   {"%=", FE_T_PERCENT_EQ}, {"@=", FE_T_AT_EQ},
    {"&=", FE_T_AMP_EQ},     {"|=", FE_T_PIPE_EQ},    {"^=", FE_T_CARET_EQ},
    {"(", FE_T_LPAREN},      {")", FE_T_RPAREN},      {"[", FE_T_LBRACK},
    {"]", FE_T_RBRACK},      {"{", FE_T_LBRACE},      {"}", FE_T_RBRACE},
    {",", FE_T_COMMA},       {":", FE_T_COLON},       {";", FE_T_SEMI},
    {".", FE_T_DOT},         {"@", FE_T_AT},          {"=", FE_T_ASSIGN},
    {"+", FE_T_PLUS},        {"-", FE_T_MINUS},       {"*", FE_T_STAR},
    {"/", FE_T_SLASH},       {"%", FE_T_PERCENT},     {"&", FE_T_AMP},
    {"|", FE_T_PIPE},        {"^", FE_T_CARET},       {"~", FE_T_TILDE},
    {"<", FE_T_LT},          {">", FE_T_GT},
};

static sp_status lex_op(lexer *lx) {
    const char *s = lx->src + lx->p;
    int line = lx->line, col = lex_col(lx, lx->p);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].text);
        if (strncmp(s, ops[i].text, n) != 0) continue;
        fe_tok_kind k = ops[i].kind;
        if (k == FE_T_LPAREN || k == FE_T_LBRACK || k == FE_T_LBRACE) {
            if (lx->nb == LEX_MAX_BRACKETS)
                return lex_error(lx, line, col, "too many nested parentheses");
            lx->brackets[lx->nb] = s[0];
            lx->bracket_locs[lx->nb].file = lx->file;
            lx->bracket_locs[lx->nb].line = line;
            lx->bracket_locs[lx->nb].col = col;
            lx->nb++;
        } else if (k == FE_T_RPAREN || k == FE_T_RBRACK || k == FE_T_RBRACE) {
            char want = k == FE_T_RPAREN ? '(' : k == FE_T_RBRACK ? '[' : '{';
            if (lx->nb == 0) return lex_error(lx, line, col, "unmatched '%c'", s[0]);
            if (lx->brackets[lx->nb - 1] != want)
                return lex_error(lx, line, col, "closing parenthesis '%c' does not match opening "
                                 "parenthesis '%c' on line %d", s[0], lx->brackets[lx->nb - 1],
                                 lx->bracket_locs[lx->nb - 1].line);
            lx->nb--;
        }
        lx->p += n;
        return lex_push(lx, k, line, col) ? SP_OK : SP_ERR_NOMEM;
    }
    unsigned char c = (unsigned char)s[0];
    if (c == '!') return lex_error(lx, line, col, "invalid syntax: '!' (did you mean 'not'?)");
    if (c == '$' || c == '?' || c == '`')
        return lex_error(lx, line, col, "invalid character '%c' in source", c);
    return lex_error(lx, line, col, "invalid character (byte 0x%02x) in source", c);
}

/* ---- names and keywords ---------------------------------------------------- */

static fe_tok_kind keyword(const char *s, size_t n) {
    for (int k = FE_T_KW_FIRST; k <= FE_T_KW_LAST; k++) {
        const char *t = tok_texts[k];
        if (strlen(t) == n && memcmp(t, s, n) == 0) return (fe_tok_kind)k;
    }
    return FE_T_NAME;
}

static int is_string_prefix(const char *s, size_t n) {
    if (n == 0 || n > 2) return 0;
    int r = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        char c = (char)(s[i] | 0x20);
        if (c == 'r')
            r++;
        else if (c == 'u' || c == 'b' || c == 'f')
            other++;
        else
            return 0;
    }
    return r <= 1 && other <= 1;
}

/* ---- the main loop ------------------------------------------------------- */

sp_status fe_lex(const char *file, const char *src, fe_arena *arena, fe_token **out, int *n) {
    return fe_lex_snippet(file, src, 0, arena, out, n);
}

sp_status fe_lex_snippet(const char *file, const char *src, int base_ok, fe_arena *arena, fe_token **out, int *n) {
    lexer lx;
    memset(&lx, 0, sizeof lx);
    lx.base_ok = base_ok ? 1 : 0;
    lx.file = file;
    lx.src = src;
    lx.line = 1;
    lx.arena = arena;
    *out = NULL;
    *n = 0;
    int at_line_start = 1, line_has_tokens = 0;
    sp_status st = SP_OK;

    /* a UTF-8 byte order mark is not part of the program */
    if ((unsigned char)src[0] == 0xef && (unsigned char)src[1] == 0xbb &&
        (unsigned char)src[2] == 0xbf)
        lx.p = lx.line_start = 3;

    for (;;) {
        if (at_line_start && lx.nb == 0) {
            int r = lex_indent(&lx);
            if (r < 0) goto fail;
            at_line_start = 0;
        }
        char c = src[lx.p];
        if (c == ' ' || c == '\t' || c == '\f') {
            lx.p++;
            continue;
        }
        if (c == '#') {
            while (src[lx.p] && src[lx.p] != '\n' && src[lx.p] != '\r') lx.p++;
            continue;
        }
        if (c == '\\') {
            char d = src[lx.p + 1];
            if (d == '\n' || d == '\r') {
                lx.p++;
                lex_newline(&lx);
                if (src[lx.p] == '\0') {
                    st = lex_error(&lx, lx.line, 1, "unexpected end of file after a line "
                                   "continuation character");
                    goto fail;
                }
                continue;
            }
            st = lex_error(&lx, lx.line, lex_col(&lx, lx.p),
                           "unexpected character after line continuation character");
            goto fail;
        }
        if (c == '\n' || c == '\r') {
            int line = lx.line, col = lex_col(&lx, lx.p);
            lex_newline(&lx);
            if (lx.nb > 0) continue;
            if (line_has_tokens) {
                if (!lex_push(&lx, FE_T_NEWLINE, line, col)) goto nomem;
                line_has_tokens = 0;
            }
            at_line_start = 1;
            continue;
        }
        if (c == '\0') {
            if (lx.nb > 0) {
                sp_loc l = lx.bracket_locs[lx.nb - 1];
                st = lex_error(&lx, l.line, l.col, "'%c' was never closed", lx.brackets[lx.nb - 1]);
                goto fail;
            }
            int line = lx.line, col = lex_col(&lx, lx.p);
            if (line_has_tokens && !lex_push(&lx, FE_T_NEWLINE, line, col)) goto nomem;
            while (lx.depth > 0) {
                lx.depth--;
                if (!lex_push(&lx, FE_T_DEDENT, line, col)) goto nomem;
            }
            if (!lex_push(&lx, FE_T_EOF, line, col)) goto nomem;
            break;
        }
        line_has_tokens = 1;
        unsigned char uc = (unsigned char)c;
        if (is_name_start(uc)) {
            size_t start = lx.p;
            while (is_name_char((unsigned char)src[lx.p])) lx.p++;
            size_t len = lx.p - start;
            if ((src[lx.p] == '\'' || src[lx.p] == '"') && is_string_prefix(src + start, len)) {
                st = lex_string(&lx, start);
                if (st) goto fail;
                continue;
            }
            fe_tok_kind k = keyword(src + start, len);
            fe_token *t = lex_push(&lx, k, lx.line, lex_col(&lx, start));
            if (!t) goto nomem;
            if (k == FE_T_NAME) {
                t->text = fe_arena_strndup(arena, src + start, len);
                if (!t->text) goto nomem;
            }
            continue;
        }
        if ((c >= '0' && c <= '9') || (c == '.' && src[lx.p + 1] >= '0' && src[lx.p + 1] <= '9')) {
            st = lex_number(&lx);
            if (st) goto fail;
            continue;
        }
        if (c == '\'' || c == '"') {
            st = lex_string(&lx, lx.p);
            if (st) goto fail;
            continue;
        }
        st = lex_op(&lx);
        if (st) goto fail;
    }
    *out = lx.toks;
    *n = lx.n;
    return SP_OK;
nomem:
    st = SP_ERR_NOMEM;
fail:
    free(lx.toks);
    return st ? st : SP_ERR_SYNTAX;
}
