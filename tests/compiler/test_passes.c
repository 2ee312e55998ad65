/*
 * test_passes.c -- the optimization passes, as IR text in, IR text out.
 *
 * Every file tests/compiler/cases/<pass>_<name>.ir is one case:
 *
 *   # what the case shows (comments are free)
 *   # passes: inline,dce
 *   global main = @main
 *   graph @main() { ... }              <- the input IR
 *   # expect:
 *   graph @main() { ... }              <- the IR after the passes
 *
 * The input is parsed, finalized and verified, the passes run to a fixed
 * point (sp_passes_run, 16 rounds at most), and the result must verify and
 * print exactly as the expected text does once parsed and printed (so the
 * expected text may be written loosely: node numbers, spacing and
 * locations are canonicalized by the round trip).  `# expect: same` says
 * the passes must not change the input at all -- the "must not touch"
 * cases: impure nodes, recursion, effects order.
 *
 * When the module has a function `main` without parameters, the runner
 * also runs it on the VM before and after the passes (two separate
 * parses, so running cannot affect what the passes see) and requires the
 * same printed result: a pass that rewrites the text wrongly but
 * consistently with a wrong expectation is still caught.
 *
 * `spore ir --passes LIST case.ir` prints what a case produces, which is
 * how expected sections are drafted (then checked by hand).
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/pass.h"
#include "ir/ir.h"
#include "runtime/vm.h"
#include "test.h"

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static sp_module *parse_ok(const char *text, const char *file) {
    sp_module *m = sp_module_parse_ir(text, file);
    if (m && (ir_module_finalize(m) != SP_OK || sp_module_verify(m) != SP_OK)) {
        sp_module_free(m);
        m = NULL;
    }
    return m;
}

/* The printed result of main() on m, or NULL when m has no such main. */
static char *run_main(sp_module *m) {
    sp_value *g = ir_module_get_global(m, "main");
    if (!g || g->kind != SP_V_GRAPH || g->u.graph->n_params != 0) return NULL;
    sp_value *v = sp_vm_run(m, "main", 0, NULL);
    char *s;
    if (v) {
        s = sp_value_to_string(v);
    } else {
        const char *e = sp_last_error();
        size_t k = strlen(e) + 8;
        s = malloc(k);
        if (s) snprintf(s, k, "error: %s", e);
        sp_clear_error();
    }
    sp_value_release(v);
    return s;
}

static void run_case(const char *dir, const char *name) {
    char path[8192];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        CHECK(!"case path too long");
        return;
    }
    char *text = read_text(path);
    CHECK(text != NULL);
    if (!text) return;
    int before = test_failures;
    /* "# passes:" names the list; "# expect:" splits input from expected */
    char passes[256] = "";
    char *pl = strstr(text, "# passes:");
    if (pl) {
        pl += 9;
        while (*pl == ' ') pl++;
        size_t k = strcspn(pl, "\r\n");
        if (k >= sizeof passes) k = sizeof passes - 1;
        memcpy(passes, pl, k);
        passes[k] = 0;
    }
    char *ex = strstr(text, "\n# expect:");
    CHECK(passes[0] && ex);
    if (!passes[0] || !ex) {
        fprintf(stderr, "%s: needs '# passes: LIST' and '# expect:'\n", name);
        free(text);
        return;
    }
    *ex = 0;
    const char *expect_line = ex + 10;
    int same = !strncmp(expect_line, " same", 5);
    const char *expected = strchr(expect_line, '\n');
    expected = expected ? expected + 1 : "";

    sp_module *m = parse_ok(text, name);
    CHECK(m != NULL);
    sp_module *want = parse_ok(same ? text : expected, name);
    CHECK(want != NULL);
    char *got_s = NULL, *want_s = NULL, *ran_before = NULL, *ran_after = NULL;
    if (!m || !want) {
        fprintf(stderr, "%s: does not parse: %s\n", name, sp_last_error());
        goto done;
    }
    CHECK_OK(sp_passes_run(m, passes, 16));
    CHECK_OK(sp_module_verify(m));
    got_s = sp_module_print(m);
    want_s = sp_module_print(want);
    CHECK(got_s && want_s);
    if (got_s && want_s && strcmp(got_s, want_s) != 0) {
        CHECK(!"the passes' output differs from the expected IR");
        fprintf(stderr, "%s: passes %s\n--- got:\n%s--- expected:\n%s---\n", name, passes, got_s, want_s);
    }
    /* the meaning: main() prints and returns the same before and after */
    sp_module_free(want);
    want = parse_ok(text, name);
    ran_before = want ? run_main(want) : NULL;
    if (ran_before) {
        ran_after = run_main(m);
        CHECK(ran_after && !strcmp(ran_before, ran_after));
        if (ran_after && strcmp(ran_before, ran_after))
            fprintf(stderr, "%s: main() gave %s before the passes, %s after\n", name, ran_before, ran_after);
    }
done:
    fprintf(stderr, "%s %s\n", test_failures == before ? "  ok  " : "  FAIL", name);
    free(got_s);
    free(want_s);
    free(ran_before);
    free(ran_after);
    sp_module_free(m);
    sp_module_free(want);
    free(text);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char cases_dir[4096];

static void test_cases(void) {
    DIR *d = opendir(cases_dir);
    CHECK(d != NULL);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", cases_dir);
        return;
    }
    char *names[1024];
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 1024;) {
        size_t k = strlen(e->d_name);
        if (k <= 3 || strcmp(e->d_name + k - 3, ".ir")) continue;
        char *copy = malloc(k + 1);
        if (!copy) break;
        memcpy(copy, e->d_name, k + 1);
        names[n++] = copy;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    CHECK(n > 0);
    const char *only = getenv("SPORE_PASS_CASE"); /* run one case by name prefix */
    for (int i = 0; i < n; i++) {
        if (!only || !strncmp(names[i], only, strlen(only))) run_case(cases_dir, names[i]);
        free(names[i]);
    }
}

/* The driver's own contract: unknown names, empty lists, fixed point. */
static void test_driver(void) {
    CHECK(sp_pass_find("inline") != NULL);
    CHECK(sp_pass_find("dce") != NULL);
    CHECK(sp_pass_find("nope") == NULL);
    CHECK(strstr(sp_last_error(), "unknown pass 'nope'") != NULL);
    CHECK(strstr(sp_last_error(), "inline") != NULL);
    sp_module *m = parse_ok("global main = @main\ngraph @main() {\n  %1 = builtin.add(1, 2)\n  return %1\n}\n",
                            "d.ir");
    CHECK(m != NULL);
    if (!m) return;
    CHECK_ERR(sp_passes_run(m, "inline,bogus", 4), SP_ERR_ARG, "unknown pass 'bogus'");
    CHECK_OK(sp_passes_run(m, "", 4));
    CHECK_OK(sp_passes_run(m, " inline , dce ", 4));
    char *s = sp_module_print(m);
    CHECK(s && strstr(s, "builtin.add(1, 2)"));
    free(s);
    sp_module_free(m);
}

int main(void) {
    const char *env = getenv("SPORE_PASS_CASES");
    if (env) {
        snprintf(cases_dir, sizeof cases_dir, "%s", env);
    } else { /* next to this source file (CMake compiles it by absolute path) */
        snprintf(cases_dir, sizeof cases_dir, "%s", __FILE__);
        char *slash = strrchr(cases_dir, '/');
        if (slash) snprintf(slash, sizeof cases_dir - (size_t)(slash - cases_dir), "/cases");
        else snprintf(cases_dir, sizeof cases_dir, "cases");
    }
    RUN(test_driver);
    RUN(test_cases);
    return TEST_SUMMARY();
}
