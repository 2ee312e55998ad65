/*
 * test_parser.c -- the parser (as AST dumps) and the builder (as IR shapes).
 *
 * Parser cases compare fe_ast_dump text, which spells precedence and
 * associativity out as prefix forms.  Builder cases compile whole modules
 * with sp_frontend_compile and check the IR the printer writes: which
 * builtins appear, how many times, the graphs and their parameters (the
 * phis of if/while), and that print -> parse -> print is identical.  Error
 * cases check the full message: "file:line:col: message", the source line
 * and the caret under the column.
 */
#include <stdlib.h>

#include "frontend/frontend.h"
#include "frontend/lexer.h"
#include "test.h"

static char *ast(const char *src) {
    fe_arena a = {0};
    fe_block b;
    char *out;
    if (fe_parse("t.py", src, &a, &b) != SP_OK) {
        size_t n = strlen(sp_last_error()) + 8;
        out = malloc(n);
        snprintf(out, n, "ERR %s", sp_last_error());
    } else {
        out = fe_ast_dump(&b);
    }
    fe_arena_free(&a);
    return out;
}

#define AST_IS(src, want)                                                                  \
    do {                                                                                   \
        char *got_ = ast(src);                                                             \
        CHECK_STR(got_, want);                                                             \
        free(got_);                                                                        \
    } while (0)

/* The module's IR text after a round trip check; NULL on a compile error. */
static char *ir(const char *src) {
    sp_module *m = sp_frontend_compile("t.py", src, 0, NULL);
    if (!m) return NULL;
    char *text = sp_module_print(m);
    sp_module *m2 = text ? sp_module_parse_ir(text, "t.ir") : NULL;
    char *text2 = m2 ? sp_module_print(m2) : NULL;
    CHECK(text2 && strcmp(text, text2) == 0);
    free(text2);
    sp_module_free(m2);
    sp_module_free(m);
    return text;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay ? strstr(hay, needle) : NULL; p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Compiling src fails with exactly `want` as the message. */
#define COMPILE_ERR(src, code, want)                                                       \
    do {                                                                                   \
        sp_clear_error();                                                                  \
        sp_module *m_ = sp_frontend_compile("t.py", src, 0, NULL);                         \
        CHECK(m_ == NULL);                                                                 \
        sp_module_free(m_);                                                                \
        CHECK(sp_last_status() == (code));                                                 \
        CHECK_STR(sp_last_error(), want);                                                  \
    } while (0)

/* ---- parser --------------------------------------------------------------- */

static void test_precedence(void) {
    AST_IS("x = a + b * c ** -d ** e\n", "x = (+ a (* b (** c (- (** d e)))))\n");
    AST_IS("x = -a ** 2\n", "x = (- (** a 2))\n");
    AST_IS("x = a - b - c\n", "x = (- (- a b) c)\n");
    AST_IS("x = a @ b / c // d % e\n", "x = (% (// (/ (@ a b) c) d) e)\n");
    AST_IS("x = not a == b and c or d\n", "x = (or (and (not (a == b)) c) d)\n");
    AST_IS("x = a < b <= c is not d not in e\n", "x = (a < b <= c is not d not in e)\n");
    AST_IS("x = a if b else c if d else e\n", "x = (if b a (if d c e))\n");
    AST_IS("x = lambda a, b=1: a + b\n", "x = (lambda (a, b=1) (+ a b))\n");
    AST_IS("x = a | b ^ c & d << e + f\n", "x = (| a (^ b (& c (<< d (+ e f)))))\n");
}

static void test_primaries(void) {
    AST_IS("y = f(a, b=2)(c).d[e]\n", "y = ([] (. (call (call f a b=2) c) d) e)\n");
    AST_IS("y = x[:, 1:3]\n", "y = ([] x (tuple (: _ _ _) (: 1 3 _)))\n");
    AST_IS("y = x[..., None]\n", "y = ([] x (tuple ... None))\n");
    AST_IS("y = x[::-1, 2:]\n", "y = ([] x (tuple (: _ _ (- 1)) (: 2 _ _)))\n");
    AST_IS("y = x[0,]\n", "y = ([] x (tuple 0))\n");
    AST_IS("y = (1,), (), [1, 2,], 'a' 'b'\n", "y = (tuple (tuple 1) (tuple) (list 1 2) 'ab')\n");
    AST_IS("y = [i * 2 for i in range(3) if i]\n",
           "y = (listcomp (* i 2) i (call range 3) i)\n");
}

static void test_statements(void) {
    AST_IS("def f(a, b=2, *args):\n    return a\n", "def f(a, b=2, *args):\n  return a\n");
    AST_IS("a, (b, c) = t\nx = y = 1\nx += 2\nz: int = 3\nw: int\n",
           "(tuple a (tuple b c)) = t\nx = y = 1\nx += 2\nz = 3\npass\n");
    AST_IS("if a:\n    pass\nelif b:\n    pass\nelse:\n    x = 1\n",
           "if a:\n  pass\nelse:\n  if b:\n    pass\n  else:\n    x = 1\n");
    AST_IS("while a:\n    break\nelse:\n    pass\n", "while a:\n  break\nelse:\n  pass\n");
    AST_IS("for i, j in zip(a, b):\n    continue\n",
           "for (tuple i j) in (call zip a b):\n  continue\n");
    AST_IS("assert x, 'm'\nraise ValueError('v')\n", "assert x, 'm'\nraise (call ValueError 'v')\n");
    AST_IS("import spore.ops as ops, spore\nfrom spore import (ops as P, nn)\n",
           "import spore.ops as ops, spore\nfrom spore import ops as P, nn\n");
    AST_IS("@spore.jit\n@other(1)\ndef f(x: int) -> int: return x\n", "def f(x):\n  return x\n");
    AST_IS("x = 1; y = 2;\n", "x = 1\ny = 2\n");
}

static void test_syntax_errors(void) {
    AST_IS("def f(:):\n    pass\n", "ERR t.py:1:7: expected a parameter name\ndef f(:):\n      ^");
    AST_IS("if x\n    pass\n", "ERR t.py:1:5: expected ':'\nif x\n    ^");
    AST_IS("if x:\npass\n", "ERR t.py:2:1: expected an indented block after 'if' statement on "
                            "line 1\npass\n^");
    AST_IS("x = 1\n    y = 2\n", "ERR t.py:2:5: unexpected indent\n    y = 2\n    ^");
    AST_IS("x = (1 +)\n", "ERR t.py:1:9: invalid syntax: unexpected ')'\nx = (1 +)\n        ^");
    AST_IS("f(a=1, b)\n", "ERR t.py:1:8: positional argument follows keyword argument\nf(a=1, b)\n"
                          "       ^");
    AST_IS("def f(a=1, b):\n    pass\n",
           "ERR t.py:1:12: non-default argument follows default argument\n"
           "def f(a=1, b):\n           ^");
    AST_IS("1 = x\n", "ERR t.py:1:1: cannot assign to literal\n1 = x\n^");
    AST_IS("f() = x\n", "ERR t.py:1:2: cannot assign to function call\nf() = x\n ^");
    AST_IS("break\n", "ERR t.py:1:1: 'break' outside loop\nbreak\n^");
    AST_IS("return 1\n", "ERR t.py:1:1: 'return' outside function\nreturn 1\n^");
    AST_IS("def f(a, a):\n    pass\n",
           "ERR t.py:1:10: duplicate argument 'a' in function definition\ndef f(a, a):\n         ^");
    AST_IS("else:\n    pass\n", "ERR t.py:1:1: invalid syntax: 'else' without a matching statement\n"
                                 "else:\n^");
    AST_IS("f(x=1, x=2)\n", "ERR t.py:1:8: keyword argument repeated: x\nf(x=1, x=2)\n       ^");
}

static void test_unsupported(void) {
    static const struct {
        const char *src, *msg;
    } cases[] = {
        {"def f():\n    class A:\n        pass\n",
         "t.py:2:5: not supported in Spore: class definitions inside functions\n    class A:\n    ^"},
        {"def f():\n    global x\n", "t.py:2:5: not supported in Spore: global\n    global x\n    ^"},
        {"def f():\n    nonlocal x\n",
         "t.py:2:5: not supported in Spore: nonlocal\n    nonlocal x\n    ^"},
        {"def f():\n    try:\n        pass\n    except:\n        pass\n",
         "t.py:2:5: not supported in Spore: try/except\n    try:\n    ^"},
        {"def f():\n    with a:\n        pass\n",
         "t.py:2:5: not supported in Spore: with\n    with a:\n    ^"},
        {"def f():\n    yield 1\n",
         "t.py:2:5: not supported in Spore: yield (generators)\n    yield 1\n    ^"},
        {"async def f():\n    pass\n", "t.py:1:1: not supported in Spore: async\nasync def f():\n^"},
        {"def f():\n    return await g()\n",
         "t.py:2:12: not supported in Spore: await\n    return await g()\n           ^"},
        {"def f(**kw):\n    pass\n",
         "t.py:1:7: not supported in Spore: **kwargs parameters (only *args is supported)\n"
         "def f(**kw):\n      ^"},
        {"def f(*a, b):\n    pass\n",
         "t.py:1:11: not supported in Spore: keyword-only parameters (after *args)\n"
         "def f(*a, b):\n          ^"},
        {"def f(a):\n    return g(**a)\n",
         "t.py:2:14: not supported in Spore: **kwargs in calls\n    return g(**a)\n"
         "             ^"},
        {"x = {1: 2}\n", "t.py:1:5: not supported in Spore: dict and set displays\nx = {1: 2}\n    ^"},
        {"x = (i for i in y)\n",
         "t.py:1:8: not supported in Spore: generator expressions\nx = (i for i in y)\n       ^"},
        {"x = [i for i in a for j in b]\n",
         "t.py:1:19: not supported in Spore: comprehensions with more than one 'for' or 'if'\n"
         "x = [i for i in a for j in b]\n                  ^"},
        {"def f():\n    del x\n", "t.py:2:5: not supported in Spore: del\n    del x\n    ^"},
        {"def f():\n    if (y := 1):\n        pass\n",
         "t.py:2:11: not supported in Spore: assignment expressions (:=)\n    if (y := 1):\n"
         "          ^"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char want[512];
        snprintf(want, sizeof want, "ERR %s", cases[i].msg);
        AST_IS(cases[i].src, want);
    }
}

static void test_depth_limit(void) {
    /* deep nesting is an error, never a stack overflow */
    char *src = malloc(200000);
    size_t k = 0;
    memcpy(src, "x = ", 4);
    k = 4;
    for (int i = 0; i < 50000; i++) src[k++] = '(';
    src[k++] = '1';
    for (int i = 0; i < 50000; i++) src[k++] = ')';
    src[k++] = '\n';
    src[k] = '\0';
    char *got = ast(src);
    CHECK(got && strncmp(got, "ERR t.py:1:", 11) == 0);
    free(got);
    k = 4;
    for (int i = 0; i < 30000; i++) {
        memcpy(src + k, "a+", 2);
        k += 2;
    }
    memcpy(src + k, "a\n", 3);
    got = ast(src);
    CHECK(got && strstr(got, "expression too deeply nested"));
    free(got);
    free(src);
}

/* ---- builder -------------------------------------------------------------- */

static void test_if_phis(void) {
    char *t = ir("def f(a):\n"
                 "    if a > 0:\n"
                 "        b = 1\n"
                 "    else:\n"
                 "        b = 2\n"
                 "        c = 3\n"
                 "    return b\n");
    CHECK(t != NULL);
    CHECK(count(t, "builtin.switch(") == 1);
    CHECK(count(t, "graph @f.if_after(%") == 1);
    CHECK(count(t, " b, %") == 1);               /* phis b and c */
    CHECK(count(t, "@f.if_after(1, undef)") == 1); /* c has no value on the true path */
    CHECK(count(t, "@f.if_after(2, 3)") == 1);
    free(t);
    /* both branches return: no continuation */
    t = ir("def f(a):\n    if a:\n        return 1\n    else:\n        return 2\n");
    CHECK(t && count(t, "if_after") == 0 && count(t, "return 1") == 1);
    free(t);
}

static void test_loops(void) {
    char *t = ir("def f(n):\n"
                 "    s = 0\n"
                 "    i = 0\n"
                 "    while i < n:\n"
                 "        i += 1\n"
                 "        if i == 3:\n"
                 "            continue\n"
                 "        if i > 7:\n"
                 "            break\n"
                 "        s += i\n"
                 "    return s\n");
    CHECK(t != NULL);
    CHECK(count(t, "graph @f.while(%") == 1);
    CHECK(count(t, "graph @f.while_after(%") == 1);
    CHECK(count(t, "= @f.while(") == 3);       /* entry, continue, end of body */
    CHECK(count(t, "= @f.while_after(") == 2); /* break and the exit */
    free(t);
    t = ir("def f(xs):\n    t = 0\n    for j in range(10, 0, -2):\n        t -= j\n"
           "    for k, v in enumerate(xs):\n        t += k * v\n    return t\n");
    CHECK(t && count(t, "builtin.gt(") == 1 && count(t, "builtin.add(%") >= 2);
    CHECK(t && count(t, "builtin.range") == 0); /* the counted loop builds no tuple */
    CHECK(t && count(t, "builtin.enumerate(") == 1 && count(t, "builtin.len(") == 1);
    free(t);
}

static void test_expressions(void) {
    /* a < f() < c calls f once; `and` short-circuits through switch */
    char *t = ir("def f(a, c, g):\n    return a < g() < c and c\n");
    CHECK(t && count(t, "= %3()") == 1 && count(t, "builtin.switch(") == 2);
    free(t);
    t = ir("from spore import ops\n"
           "def f(x, y=2, *rest):\n"
           "    return ops.relu(x, axis=-1)[..., None, 1:3], x.T, (lambda z: z + y)(1)\n");
    CHECK(t && count(t, "builtin.getattr(module.ops, \"relu\")") == 1);
    CHECK(t && count(t, "builtin.make_keyword(\"axis\", -1)") == 1);
    CHECK(t && count(t, "builtin.make_slice(1, 3, None)") == 1);
    CHECK(t && count(t, "builtin.make_tuple(..., None, %") == 1);
    CHECK(t && count(t, "graph @f.lambda(%") == 1 && count(t, "*%") == 1);
    free(t);
    t = ir("def f(t):\n    a, (b, c) = t\n    return c\n");
    CHECK(t && count(t, "builtin.tuple_getitem(") == 2);
    free(t);
    t = ir("def f(n):\n    return [i * i for i in range(n) if i % 2]\n");
    CHECK(t && count(t, "graph @f.listcomp()") == 1 && count(t, "builtin.make_list()") == 1);
    free(t);
}

static void test_effects(void) {
    /* print and assert stay: threaded into the return in source order */
    char *t = ir("def f(x):\n    print(1)\n    assert x, 'm'\n    return x\n");
    CHECK(t && count(t, "builtin.make_tuple(%") == 1 && count(t, "builtin.tuple_getitem(%") == 1);
    CHECK(t && strstr(t, "builtin.print(1)") && strstr(t, "builtin.assert(%1, \"m\")"));
    free(t);
    /* y = g(x) is a root before the print that follows it; y = x + 1 is not */
    t = ir("def f(x, g):\n    y = g(x)\n    z = x + 1\n    print(z)\n    return y\n");
    CHECK(t && strstr(t, "%3 y = %2(%1)") && strstr(t, "builtin.make_tuple(%3, %5, %3)"));
    free(t);
}

static void test_names(void) {
    char *t = ir("import spore as ms\n"
                 "N = 2 * 3 + 1\n"
                 "DT = ms.float32\n"
                 "def g(x, n=N, d=DT):\n"
                 "    return h(x) + len(x) + n\n"
                 "def h(x):\n"
                 "    def inner(y):\n"
                 "        return x + y\n"
                 "    return inner(1)\n");
    CHECK(t && strstr(t, "global N = 7") && strstr(t, "global DT = dtype.float32"));
    CHECK(t && strstr(t, "n = 7") && strstr(t, "@h(%1)") && strstr(t, "builtin.len(%1)"));
    CHECK(t && strstr(t, "graph @h.inner(%") && strstr(t, "parent @h"));
    free(t);
    t = ir("from __future__ import annotations\nimport spore.nn\nimport spore.ops as O, math\n"
           "from spore import nn as N\n");
    CHECK(t && strstr(t, "global spore = module.spore") && strstr(t, "global O = module.ops"));
    CHECK(t && strstr(t, "global math = module.math") && strstr(t, "global N = module.nn"));
    CHECK(t && !strstr(t, "annotations"));
    free(t);
    t = ir("if __name__ == '__main__':\n    main()\n'''doc'''\n");
    CHECK(t != NULL);
    free(t);
}

static void test_name_errors(void) {
    COMPILE_ERR("def f():\n    return y\n", SP_ERR_SYNTAX,
                "t.py:2:12: name 'y' is not defined\n    return y\n           ^");
    COMPILE_ERR("def f():\n    print(y)\n    y = 1\n", SP_ERR_SYNTAX,
                "t.py:2:11: local variable 'y' referenced before assignment\n    print(y)\n"
                "          ^");
    COMPILE_ERR("import numpy as np\n", SP_ERR_UNSUPPORTED,
                "t.py:1:8: cannot import 'numpy': Spore programs can import spore, spore.ops, "
                "spore.nn and math\nimport numpy as np\n       ^");
    COMPILE_ERR("from spore import Tensor\n", SP_ERR_UNSUPPORTED,
                "t.py:1:19: cannot import 'Tensor' from spore: only the modules ops and nn can be "
                "imported by name (write spore.Tensor)\nfrom spore import Tensor\n"
                "                  ^");
    COMPILE_ERR("def f(x):\n    x[0] = 1\n", SP_ERR_UNSUPPORTED,
                "t.py:2:5: not supported in Spore: assignment to a subscript (tensors are "
                "immutable; use ops.scatter or ops.where)\n    x[0] = 1\n    ^");
    COMPILE_ERR("def f(x):\n    x.a.b += 1\n", SP_ERR_UNSUPPORTED,
                "t.py:2:5: not supported in Spore: assignment to an attribute (values are "
                "immutable)\n    x.a.b += 1\n    ^");
    COMPILE_ERR("def f(x):\n    return x | 1\n", SP_ERR_UNSUPPORTED,
                "t.py:2:14: not supported in Spore: the operator '|'\n    return x | 1\n"
                "             ^");
    COMPILE_ERR("x = f(1)\n", SP_ERR_UNSUPPORTED,
                "t.py:1:6: not supported in Spore: a module-level assignment of a value that is "
                "not a constant (compute it inside a function)\nx = f(1)\n     ^");
    COMPILE_ERR("def f(x=g()):\n    pass\n", SP_ERR_UNSUPPORTED,
                "t.py:1:10: not supported in Spore: a default value that is not a constant "
                "(literals, tuples of them, module-level constants, spore dtypes)\n"
                "def f(x=g()):\n         ^");
    COMPILE_ERR("print(1)\n", SP_ERR_UNSUPPORTED,
                "t.py:1:1: not supported in Spore: statements at module level other than imports, "
                "defs and constant assignments (put them in a function)\nprint(1)\n^");
}

static void test_arity_errors(void) {
    /* static calls are checked once every graph is built (callees may come later) */
    COMPILE_ERR("def main():\n    return f(1)\ndef f(a, b):\n    return a\n", SP_ERR_TYPE,
                "t.py:2:12: f() missing required argument 'b'\n    return f(1)\n           ^");
    COMPILE_ERR("def f(a, b=1):\n    return a\ndef main():\n    return f(1, 2, 3)\n", SP_ERR_TYPE,
                "t.py:4:12: f() takes 2 positional arguments but 3 were given\n"
                "    return f(1, 2, 3)\n           ^");
    COMPILE_ERR("def f(a, b=1):\n    return a\ndef main():\n    return f(1, c=2)\n", SP_ERR_TYPE,
                "t.py:4:19: f() got an unexpected keyword argument 'c'\n    return f(1, c=2)\n"
                "                  ^");
    COMPILE_ERR("def f(a, b=1):\n    return a\ndef main():\n    return f(1, a=2)\n", SP_ERR_TYPE,
                "t.py:4:19: f() got multiple values for argument 'a'\n    return f(1, a=2)\n"
                "                  ^");
    COMPILE_ERR("def main():\n    return len(1, 2)\n", SP_ERR_TYPE,
                "t.py:2:12: len() takes exactly 1 argument (2 given)\n    return len(1, 2)\n"
                "           ^");
    COMPILE_ERR("def main():\n    g = lambda x: x\n    return g()\n", SP_ERR_TYPE,
                "t.py:3:12: <lambda>() missing required argument 'x'\n    return g()\n"
                "           ^");
    /* fine: keywords, defaults, *args */
    char *t = ir("def f(a, b=1, *r):\n    return a\ndef main():\n    return f(b=2, a=1), f(1, 2, 3, 4)\n");
    CHECK(t != NULL);
    free(t);
}

static void test_line_offset(void) {
    sp_clear_error();
    sp_module *m = sp_frontend_compile("big.py", "def f():\n    return q\n", 10, NULL);
    CHECK(m == NULL);
    CHECK_STR(sp_last_error(), "big.py:12:12: name 'q' is not defined\n    return q\n           ^");
    m = sp_frontend_compile("crlf.py", "def f():\r\n    return q\r\n", 0, NULL);
    CHECK(m == NULL);
    CHECK_STR(sp_last_error(), "crlf.py:2:12: name 'q' is not defined\n    return q\n           ^");
}

static void test_resolver_and_globals(void) {
    sp_module *m = sp_frontend_compile("t.py", "import spore\ndef main():\n    return 1\n", 0, NULL);
    CHECK(m != NULL);
    if (m) {
        sp_value *g = ir_module_get_global(m, "main");
        CHECK(g && g->kind == SP_V_GRAPH && g->u.graph->n_params == 0);
        sp_value *s = ir_module_get_global(m, "spore");
        CHECK(s && s->kind == SP_V_MODULE && s->u.module == SP_MOD_SPORE);
    }
    sp_module_free(m);
}

static sp_value *resolve_w(void *ctx, const char *name) {
    (void)ctx;
    return strcmp(name, "W") == 0 ? sp_value_int(42) : NULL;
}

static void test_resolver(void) {
    sp_resolver r = {.resolve = resolve_w, .ctx = NULL};
    sp_module *m = sp_frontend_compile("t.py", "def f():\n    return W\n", 0, &r);
    CHECK(m != NULL);
    if (m) {
        char *t = sp_module_print(m);
        CHECK(t && strstr(t, "return 42"));
        free(t);
    }
    sp_module_free(m);
}

int main(void) {
    RUN(test_precedence);
    RUN(test_primaries);
    RUN(test_statements);
    RUN(test_syntax_errors);
    RUN(test_unsupported);
    RUN(test_depth_limit);
    RUN(test_if_phis);
    RUN(test_loops);
    RUN(test_expressions);
    RUN(test_effects);
    RUN(test_names);
    RUN(test_name_errors);
    RUN(test_arity_errors);
    RUN(test_line_offset);
    RUN(test_resolver_and_globals);
    RUN(test_resolver);
    return TEST_SUMMARY();
}
