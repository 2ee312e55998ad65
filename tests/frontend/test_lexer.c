/*
 * test_lexer.c -- tokens of Spore's Python-syntax source.
 *
 * Each case tokenizes a snippet and compares a compact rendering of the
 * token stream: names as themselves, ints and floats as their values,
 * strings as Python reprs, NEWLINE as "NL", INDENT/DEDENT as ">" and "<",
 * EOF as "$", operators and keywords as their text.  Error cases check the
 * full "file:line:col: message" and the caret line.
 */
#include <stdlib.h>

#include "frontend/lexer.h"
#include "ir/ir_internal.h"
#include "test.h"

/* The rendering of src's tokens (malloc'd), or "ERR <message>". */
static char *lex(const char *src) {
    fe_arena a = {0};
    fe_token *t;
    int n;
    ir_buf b = {0};
    ir_buf_puts(&b, "");
    if (fe_lex("t.py", src, &a, &t, &n) != SP_OK) {
        ir_buf_printf(&b, "ERR %s", sp_last_error());
        fe_arena_free(&a);
        return ir_buf_finish(&b);
    }
    for (int i = 0; i < n; i++) {
        if (i) ir_buf_putc(&b, ' ');
        switch (t[i].kind) {
        case FE_T_NAME: ir_buf_puts(&b, t[i].text); break;
        case FE_T_INT: ir_buf_printf(&b, "%lld", (long long)t[i].i); break;
        case FE_T_FLOAT: ir_buf_printf(&b, "%.17g", t[i].f); break;
        case FE_T_STR: ir_buf_put_quoted(&b, t[i].text, t[i].len, 1); break;
        case FE_T_NEWLINE: ir_buf_puts(&b, "NL"); break;
        case FE_T_INDENT: ir_buf_puts(&b, ">"); break;
        case FE_T_DEDENT: ir_buf_puts(&b, "<"); break;
        case FE_T_EOF: ir_buf_puts(&b, "$"); break;
        default: ir_buf_puts(&b, fe_tok_text(t[i].kind)); break;
        }
    }
    free(t);
    fe_arena_free(&a);
    return ir_buf_finish(&b);
}

#define LEX_IS(src, want)                                                                  \
    do {                                                                                   \
        char *got_ = lex(src);                                                             \
        CHECK_STR(got_, want);                                                             \
        free(got_);                                                                        \
    } while (0)

static void test_blocks(void) {
    LEX_IS("if x:\n    y\nz\n", "if x : NL > y NL < z NL $");
    LEX_IS("def f():\n  if a:\n    return 1\n  return 2\n",
           "def f ( ) : NL > if a : NL > return 1 NL < return 2 NL < $");
    /* several dedents at once, and at the end of the file without a newline */
    LEX_IS("a:\n b:\n  c:\n   d\ne", "a : NL > b : NL > c : NL > d NL < < < e NL $");
    LEX_IS("a:\n b:\n  c", "a : NL > b : NL > c NL < < $");
    LEX_IS("", "$");
    LEX_IS("\n\n   \n# only a comment\n", "$");
}

static void test_continuation(void) {
    LEX_IS("f(1,\n      2)\n", "f ( 1 , 2 ) NL $");
    LEX_IS("x = [1,\n# comment\n\n  2]\n", "x = [ 1 , 2 ] NL $");
    LEX_IS("x = 1 + \\\n  2\ny\n", "x = 1 + 2 NL y NL $");
    LEX_IS("if a:\n    x = (1 +\n2)\n    y\n", "if a : NL > x = ( 1 + 2 ) NL y NL < $");
    LEX_IS("x = 1  # trailing\n\n\ny = 2\n", "x = 1 NL y = 2 NL $");
    LEX_IS("a\r\nb\rc\n", "a NL b NL c NL $");
}

static void test_numbers(void) {
    LEX_IS("0x1F 0o17 0b101 1_000 0 00", "31 15 5 1000 0 0 NL $");
    LEX_IS("1.5 .5 5. 1e3 2.5E-2 1_0.0_1", "1.5 0.5 5 1000 0.025000000000000001 10.01 NL $");
    LEX_IS("9223372036854775807", "9223372036854775807 NL $");
    LEX_IS("x.y ...", "x . y ... NL $");
}

static void test_strings(void) {
    LEX_IS("'a' \"b\" '''c\nd''' \"\"\"e'f\"\"\"", "'a' 'b' 'c\\nd' \"e'f\" NL $");
    LEX_IS("'\\n\\t\\\\\\'\\x41\\101\\u00e9'", "\"\\n\\t\\\\'AA\xc3\xa9\" NL $");
    LEX_IS("r'\\d\\n' R\"\\\"\"", "'\\\\d\\\\n' '\\\\\"' NL $");
    LEX_IS("'\\q'", "'\\\\q' NL $"); /* an unknown escape keeps its backslash */
    LEX_IS("'a\\\nb'", "'ab' NL $");
    LEX_IS("u'x'", "'x' NL $");
}

static void test_operators(void) {
    LEX_IS("a @ b ** c // d -> e += f //= g ... != <= >>= := ~ ^ | & << >>",
           "a @ b ** c // d -> e += f //= g ... != <= >>= := ~ ^ | & << >> NL $");
    LEX_IS("x@=y;z**=2", "x @= y ; z **= 2 NL $");
    LEX_IS("not in is lambda None True False", "not in is lambda None True False NL $");
}

static void test_locations(void) {
    fe_arena a = {0};
    fe_token *t;
    int n;
    CHECK_OK(fe_lex("t.py", "def f(x):\n    return x + 1\n", &a, &t, &n));
    /* def f ( x ) : NL INDENT return x + 1 NL DEDENT EOF */
    CHECK(n == 15);
    if (n == 15) {
        CHECK(t[0].loc.line == 1 && t[0].loc.col == 1);
        CHECK(t[1].loc.line == 1 && t[1].loc.col == 5);
        CHECK(t[8].kind == FE_T_KW_RETURN && t[8].loc.line == 2 && t[8].loc.col == 5);
        CHECK(t[10].kind == FE_T_PLUS && t[10].loc.col == 14);
        CHECK(strcmp(t[0].loc.file, "t.py") == 0);
    }
    free(t);
    fe_arena_free(&a);
}

static void test_errors(void) {
    LEX_IS("if x:\n\ty\n        z\n",
           "ERR t.py:3:9: inconsistent use of tabs and spaces in indentation\n        z\n        ^");
    LEX_IS("if x:\n    y\n  z\n",
           "ERR t.py:3:3: unindent does not match any outer indentation level\n  z\n  ^");
    LEX_IS("x = 'abc\n", "ERR t.py:1:5: unterminated string literal\nx = 'abc\n    ^");
    LEX_IS("x = '''abc\n\n", "ERR t.py:1:5: unterminated triple-quoted string literal\nx = '''abc\n    ^");
    /* a backslash at the very end (found by fuzzing: it used to loop forever) */
    LEX_IS("x = 'ab\\", "ERR t.py:1:5: unterminated string literal\nx = 'ab\\\n    ^");
    LEX_IS("x = '''ab\\", "ERR t.py:1:5: unterminated triple-quoted string literal\nx = '''ab\\\n    ^");
    LEX_IS("9223372036854775808", "ERR t.py:1:1: integer literal too large for int64\n"
                                  "9223372036854775808\n^");
    LEX_IS("y = b'x'", "ERR t.py:1:5: not supported in Spore: bytes literals\ny = b'x'\n    ^");
    LEX_IS("y = f'{x}'", "ERR t.py:1:5: not supported in Spore: f-strings\ny = f'{x}'\n    ^");
    LEX_IS("y = 2j", "ERR t.py:1:5: not supported in Spore: imaginary numbers\ny = 2j\n    ^");
    LEX_IS("a $ b", "ERR t.py:1:3: invalid character '$' in source\na $ b\n  ^");
    LEX_IS("f(1,\n  2\n", "ERR t.py:1:2: '(' was never closed\nf(1,\n ^");
    LEX_IS("x)", "ERR t.py:1:2: unmatched ')'\nx)\n ^");
    LEX_IS("(x]", "ERR t.py:1:3: closing parenthesis ']' does not match opening parenthesis '(' "
                  "on line 1\n(x]\n  ^");
    LEX_IS("x = 1 \\ 2", "ERR t.py:1:7: unexpected character after line continuation character\n"
                         "x = 1 \\ 2\n      ^");
    LEX_IS("012", "ERR t.py:1:1: leading zeros in decimal integer literals are not permitted; use an "
                  "0o prefix for octal integers\n012\n^");
    LEX_IS("'\\x4'", "ERR t.py:1:2: truncated \\x escape in a string literal\n'\\x4'\n ^");
    LEX_IS("1abc", "ERR t.py:1:1: invalid decimal literal\n1abc\n^");
    LEX_IS("0x", "ERR t.py:1:1: invalid hexadecimal literal\n0x\n^");
    LEX_IS("a != !b", "ERR t.py:1:6: invalid syntax: '!' (did you mean 'not'?)\na != !b\n     ^");
}

static void test_deep_indent(void) {
    /* 101 nested blocks: over the limit, an error rather than an overflow */
    char src[20000];
    size_t k = 0;
    for (int d = 0; d <= 101; d++) {
        for (int i = 0; i < d; i++) src[k++] = ' ';
        memcpy(src + k, "if x:\n", 6);
        k += 6;
    }
    src[k] = '\0';
    char *got = lex(src);
    CHECK(got && strstr(got, "too many levels of indentation"));
    free(got);
}

int main(void) {
    RUN(test_blocks);
    RUN(test_continuation);
    RUN(test_numbers);
    RUN(test_strings);
    RUN(test_operators);
    RUN(test_locations);
    RUN(test_errors);
    RUN(test_deep_indent);
    return TEST_SUMMARY();
}
