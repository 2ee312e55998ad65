/*
 * lexer.h -- Python's tokens for Spore's front end.
 *
 * The lexer turns the whole source into an array of tokens up front (the
 * parser looks ahead freely and sources are small).  It does what Python's
 * tokenizer does: NEWLINE ends a logical line, INDENT/DEDENT bracket blocks
 * (the indentation of each line is compared with tab stops of 8 and of 1,
 * and a line whose order differs between the two is a TabError, as in
 * CPython), lines inside (), [] and {} and lines ending in a backslash
 * continue the logical line, blank and comment-only lines produce nothing,
 * and the token stream always ends with NEWLINE, the DEDENTs that close
 * every open block, and EOF.
 *
 * Literals are decoded here: ints (decimal, 0x, 0o, 0b, with `_`
 * separators; an int that does not fit int64 is an error), floats, and
 * strings with every quoting form (' " ''' """, r/u prefixes, escapes
 * including \x, \u, \U and octal, adjacent literals are joined by the
 * parser).  Bytes, f-strings and imaginary numbers are errors that say so.
 *
 * Locations are 1-based line and byte column of the token's first byte.
 * Errors are SP_ERR_SYNTAX with "file:line:col: message" and the caret line
 * (sp_error_src).
 */
#ifndef SPORE_FRONTEND_LEXER_H
#define SPORE_FRONTEND_LEXER_H

#include "frontend/ast.h"

/* X-macro of token kinds: (ID, text).  Keywords come as a block so that
 * FE_T_KW_FIRST..FE_T_KW_LAST covers them. */
#define FE_TOKENS(X)                                                                       \
    X(EOF, "end of file") X(NEWLINE, "newline") X(INDENT, "indent") X(DEDENT, "dedent")    \
    X(NAME, "name") X(INT, "integer") X(FLOAT, "float") X(STR, "string")                   \
    X(LPAREN, "(") X(RPAREN, ")") X(LBRACK, "[") X(RBRACK, "]") X(LBRACE, "{")            \
    X(RBRACE, "}") X(COMMA, ",") X(COLON, ":") X(SEMI, ";") X(DOT, ".")                   \
    X(ELLIPSIS, "...") X(AT, "@") X(ASSIGN, "=") X(ARROW, "->") X(WALRUS, ":=")           \
    X(PLUS, "+") X(MINUS, "-") X(STAR, "*") X(SLASH, "/") X(DSLASH, "//")                 \
    X(PERCENT, "%") X(DSTAR, "**") X(LSHIFT, "<<") X(RSHIFT, ">>") X(AMP, "&")            \
    X(PIPE, "|") X(CARET, "^") X(TILDE, "~") X(LT, "<") X(GT, ">") X(LE, "<=")            \
    X(GE, ">=") X(EQ, "==") X(NE, "!=")                                                    \
    X(PLUS_EQ, "+=") X(MINUS_EQ, "-=") X(STAR_EQ, "*=") X(SLASH_EQ, "/=")                 \
    X(DSLASH_EQ, "//=") X(PERCENT_EQ, "%=") X(DSTAR_EQ, "**=") X(AT_EQ, "@=")             \
    X(AMP_EQ, "&=") X(PIPE_EQ, "|=") X(CARET_EQ, "^=") X(LSHIFT_EQ, "<<=")               \
    X(RSHIFT_EQ, ">>=")                                                                    \
    X(KW_FALSE, "False") X(KW_NONE, "None") X(KW_TRUE, "True") X(KW_AND, "and")           \
    X(KW_AS, "as") X(KW_ASSERT, "assert") X(KW_ASYNC, "async") X(KW_AWAIT, "await")       \
    X(KW_BREAK, "break") X(KW_CLASS, "class") X(KW_CONTINUE, "continue") X(KW_DEF, "def") \
    X(KW_DEL, "del") X(KW_ELIF, "elif") X(KW_ELSE, "else") X(KW_EXCEPT, "except")         \
    X(KW_FINALLY, "finally") X(KW_FOR, "for") X(KW_FROM, "from") X(KW_GLOBAL, "global")   \
    X(KW_IF, "if") X(KW_IMPORT, "import") X(KW_IN, "in") X(KW_IS, "is")                   \
    X(KW_LAMBDA, "lambda") X(KW_NONLOCAL, "nonlocal") X(KW_NOT, "not") X(KW_OR, "or")     \
    X(KW_PASS, "pass") X(KW_RAISE, "raise") X(KW_RETURN, "return") X(KW_TRY, "try")       \
    X(KW_WHILE, "while") X(KW_WITH, "with") X(KW_YIELD, "yield")                          \
    X(CMP_NOT_IN, "not in") X(CMP_IS_NOT, "is not")

typedef enum fe_tok_kind {
#define FE_TOK_ENUM(id, text) FE_T_##id,
    FE_TOKENS(FE_TOK_ENUM)
#undef FE_TOK_ENUM
    FE_T_COUNT
} fe_tok_kind;

#define FE_T_KW_FIRST FE_T_KW_FALSE
#define FE_T_KW_LAST FE_T_KW_YIELD
#define FE_CMP_NOT_IN FE_T_CMP_NOT_IN
#define FE_CMP_IS_NOT FE_T_CMP_IS_NOT

typedef struct fe_token {
    fe_tok_kind kind;
    sp_loc loc;
    const char *text; /* NAME: the name (arena); STR: decoded bytes (arena) */
    size_t len;       /* STR: byte length */
    int64_t i;        /* INT */
    double f;         /* FLOAT */
} fe_token;

/* Tokenizes `src` (NUL-terminated) of `file` (used in locations; must
 * outlive the tokens).  On success *out is a malloc'd array of *n tokens
 * ending in FE_T_EOF (the caller frees it); names and strings live in
 * `arena`.  Returns SP_OK, or SP_ERR_SYNTAX / SP_ERR_NOMEM with the message
 * set and *out NULL. */
sp_status fe_lex(const char *file, const char *src, fe_arena *arena, fe_token **out, int *n);
/* fe_lex for a snippet cut out of a larger file (a method of a class):
 * with base_ok, the indentation of the first line holding tokens is the
 * base level instead of an error, so columns stay the file's. */
sp_status fe_lex_snippet(const char *file, const char *src, int base_ok, fe_arena *arena, fe_token **out, int *n);

/* The text of a token kind for messages ("(", "name", "newline"). */
const char *fe_tok_text(fe_tok_kind k);

#endif
