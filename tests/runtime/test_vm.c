/*
 * test_vm.c -- the VM through its C API: calling compiled functions with
 * positional and keyword values, partials and API functions from C, error
 * messages with their source location, the recursion limit, and no leaked
 * tensor memory after successes or failures (sp_cpu_live_bytes).
 */
#include <stdlib.h>

#include "frontend/frontend.h"
#include "runtime/vm.h"
#include "test.h"

static const char *SRC =
    "from spore import ops\n"
    "def scale(x, factor=2, *rest):\n"
    "    return x * factor + len(rest)\n"
    "def mk(n):\n"
    "    return lambda v: v + n\n"
    "def deep(n):\n"
    "    return 0 if n == 0 else 1 + deep(n - 1)\n"
    "def loop(n):\n"
    "    i = 0\n"
    "    acc = ops.zeros(3)\n"
    "    while i < n:\n"
    "        acc = acc + i\n"
    "        i += 1\n"
    "    return acc\n"
    "def bad(x):\n"
    "    return x + ops.ones((5,))\n"
    "def relu_fn():\n"
    "    return ops.relu\n";

/* A tensor value owning t (sp_value_tensor takes its own reference). */
static sp_value *tensor_value(sp_tensor *t) {
    sp_value *v = sp_value_tensor(t);
    sp_tensor_release(t);
    return v;
}

/* The text of v (freed here) compared with want. */
static void check_text(sp_value *v, const char *want) {
    char *s = v ? sp_value_to_string(v) : NULL;
    CHECK_STR(s, want);
    free(s);
}

static sp_value *call(sp_module *m, const char *fn, int n, sp_value **args) {
    sp_value *f = ir_module_get_global(m, fn);
    CHECK(f != NULL);
    return f ? sp_vm_call(m, f, n, args) : NULL;
}

static void test_calls(void) {
    int64_t live = sp_cpu_live_bytes();
    sp_module *m = sp_frontend_compile("vm_test.py", SRC, 0, NULL);
    CHECK(m != NULL);
    if (!m) return;
    sp_value *three = sp_value_int(3), *ten = sp_value_int(10), *kw = sp_value_keyword("factor", ten);
    sp_value *a1[1] = {three}, *a2[2] = {three, kw}, *a4[4] = {three, three, three, three};
    sp_value *r = call(m, "scale", 1, a1);
    check_text(r, "6");
    sp_value_release(r);
    r = call(m, "scale", 2, a2);
    check_text(r, "30");
    sp_value_release(r);
    r = call(m, "scale", 4, a4);
    check_text(r, "11");
    sp_value_release(r);

    /* a closure returned to C, called from C */
    sp_value *add = call(m, "mk", 1, a1);
    CHECK(add && add->kind == SP_V_CLOSURE);
    r = add ? sp_vm_call(m, add, 1, &ten) : NULL;
    check_text(r, "13");
    sp_value_release(r);
    sp_value_release(add);

    /* a tail-recursive loop and a tensor result */
    sp_value *n = sp_value_int(4);
    r = call(m, "loop", 1, &n);
    check_text(r, "[6. 6. 6.]");
    sp_value_release(r);
    sp_value_release(n);

    /* an API function as a value (partial(builtin.api, "ops.relu")) called from C */
    sp_value *relu = call(m, "relu_fn", 0, NULL);
    CHECK(relu && relu->kind == SP_V_PARTIAL);
    sp_value *t = tensor_value(sp_tensor_from_data(SP_F32, 1, (int64_t[]){2}, (float[]){-1, 2}));
    r = relu ? sp_vm_call(m, relu, 1, &t) : NULL;
    check_text(r, "[0. 2.]");
    sp_value_release(r);
    sp_value_release(t);
    sp_value_release(relu);

    sp_value_release(kw);
    sp_value_release(ten);
    sp_value_release(three);
    sp_module_free(m);
    CHECK(sp_cpu_live_bytes() == live);
}

static void test_errors(void) {
    int64_t live = sp_cpu_live_bytes();
    sp_module *m = sp_frontend_compile("vm_test.py", SRC, 0, NULL);
    CHECK(m != NULL);
    if (!m) return;
    /* wrong arity from C: no call site, so no location */
    sp_clear_error();
    CHECK(call(m, "scale", 0, NULL) == NULL);
    CHECK(strstr(sp_last_error(), "scale() missing 1 required argument: 'x'") != NULL);
    /* an unknown keyword */
    sp_value *one = sp_value_int(1), *kw = sp_value_keyword("nope", one), *a[2] = {one, kw};
    CHECK(call(m, "scale", 2, a) == NULL);
    CHECK(strstr(sp_last_error(), "unexpected keyword argument 'nope'") != NULL);
    /* a shape error inside the program names the line and shows a caret */
    sp_value *x = tensor_value(sp_tensor_zeros(SP_F32, 1, (int64_t[]){3}, SP_CPU));
    CHECK(call(m, "bad", 1, &x) == NULL);
    CHECK(strstr(sp_last_error(), "vm_test.py:16:14: add: shapes (3,) and (5,) cannot be broadcast") != NULL);
    CHECK(strstr(sp_last_error(), "\n             ^") != NULL);
    /* the recursion limit, then a deep but allowed recursion */
    sp_value *big = sp_value_int(5000), *ok = sp_value_int(900);
    CHECK(call(m, "deep", 1, &big) == NULL);
    CHECK(strstr(sp_last_error(), "maximum recursion depth exceeded") != NULL);
    CHECK(strstr(sp_last_error(), "vm_test.py:7:") != NULL);
    sp_value *r = call(m, "deep", 1, &ok);
    check_text(r, "900");
    sp_value_release(r);
    /* entry points */
    CHECK(sp_vm_run(m, "nosuch", 0, NULL) == NULL);
    CHECK(strstr(sp_last_error(), "no function 'nosuch'") != NULL);
    sp_value_release(big);
    sp_value_release(ok);
    sp_value_release(x);
    sp_value_release(kw);
    sp_value_release(one);
    sp_module_free(m);
    CHECK(sp_cpu_live_bytes() == live);
}

int main(void) {
    RUN(test_calls);
    RUN(test_errors);
    return TEST_SUMMARY();
}
