/*
 * spore.c -- the `spore` command-line program.
 *
 * Subcommands grow with the layers: `run-check` (the analogue of
 * mindspore.run_check(): version, backends, a small computation on each,
 * a verdict), `version`, `run FILE.py` (compile the module with Spore's own
 * front end and run its entry function on the VM, printing what it returns
 * as numpy would) and `ir FILE.py` (print the IR text; with --roundtrip,
 * print, parse the text back and print again, failing when the two texts
 * differ -- the check the test suite runs over the whole program corpus).
 * Both take `--passes a,b,c`: the optimization passes (src/compiler) run
 * on the module first, to a fixed point; `ir` then prints the optimized
 * IR, and reads IR text instead of source when FILE ends in .ir, so a
 * pass can be tried on a hand-written graph.
 * With --compile, `run` goes through the graph compiler (src/compiler/
 * compile.h: specialize, expand grad, optimize) instead of straight to the
 * VM; `ir --stage NAME` prints the IR after that stage of the compiler
 * (--time: the wall time of each stage on stderr; --args "f32[2,3], 3":
 * the entry's argument signature, tensors by dtype and shape).
 * `run --device cpu|cuda[:N]` makes that the default device
 * (sp_set_default_device) before anything runs, so the program's tensors
 * -- literals, zeros/ones/rand, everything made without a tensor input --
 * live there, as MindSpore's set_context(device_target="GPU") does; a GPU
 * that is not there fails the run (status 1) with the library's reason.
 * Every failure prints the library's error message (for program errors:
 * file:line:col, the source line and a caret) and exits non-zero; nothing
 * here aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/gemm.h"
#include "compiler/lower.h"
#include "compiler/compile.h"
#include "compiler/pass.h"
#include "frontend/frontend.h"
#include "runtime/vm.h"
#include "spore/spore.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: spore <command> [args]\n"
            "commands:\n"
            "  run FILE.py [--entry main] [--threads N] [--passes LIST] [--compile]\n"
            "              [--device cpu|cuda[:N]]\n"
            "              compile FILE.py and run its entry function; print what it returns\n"
            "              --compile: through the graph compiler (specialize, optimize)\n"
            "              --device: where the program's tensors are made (default cpu)\n"
            "  ir FILE.py|FILE.ir [--entry main] [--roundtrip] [--passes LIST]\n"
            "              print the IR of FILE.py (--roundtrip: print, parse, print, compare)\n"
            "              --passes a,b,c: optimize first (inline, beta, switch_const, dce, ...)\n"
            "     [--stage specialize|expand_grad|optimize] [--time] [--args \"f32[2,3], 3\"]\n"
            "              the IR after that stage of the graph compiler for entry's signature\n"
            "              --lower 'float32[8,784],int64[8],...': print the entry's kernel list and\n"
            "              memory plan for parameters of that signature (a canonical graph)\n"
            "  run-check   check the installation: backends and a small computation on each\n"
            "  version     print the version\n"
            "  help        this text\n");
}

/* Multiplies [1,2,3] by [4,5,6] elementwise and runs a 2x2 matmul on `dev`
 * (inputs made on the CPU and moved there, results moved back); returns 1
 * when both give the known answers. */
static int check_device(sp_device dev, const char *label) {
    static const float a[] = {1, 2, 3}, b[] = {4, 5, 6}, want[] = {4, 10, 18};
    int64_t n = 3, sq[2] = {2, 2};
    static const float m[] = {1, 2, 3, 4}, mm_want[] = {7, 10, 15, 22};
    sp_tensor *h[3] = {sp_tensor_from_data(SP_F32, 1, &n, a), sp_tensor_from_data(SP_F32, 1, &n, b),
                       sp_tensor_from_data(SP_F32, 2, sq, m)};
    sp_tensor *d[3] = {0}, *out[SP_MAX_OUTPUTS] = {0}, *mm[SP_MAX_OUTPUTS] = {0};
    sp_tensor *out_h = NULL, *mm_h = NULL;
    int nout = 0, ok = 0;
    for (int i = 0; i < 3; i++)
        if (!h[i] || sp_tensor_to(h[i], dev, &d[i]) != SP_OK) goto done;
    sp_tensor *xy[2] = {d[0], d[1]}, *mmin[2] = {d[2], d[2]};
    if (sp_op_call_name("mul", 2, xy, NULL, &nout, out) != SP_OK) goto done;
    if (sp_op_call_name("matmul", 2, mmin, NULL, &nout, mm) != SP_OK) goto done;
    if (sp_tensor_to(out[0], SP_CPU, &out_h) != SP_OK || sp_tensor_to(mm[0], SP_CPU, &mm_h) != SP_OK)
        goto done;
    char *s = sp_tensor_to_string(out_h);
    printf("  %s: [1. 2. 3.] * [4. 5. 6.] = %s\n", label, s ? s : "?");
    free(s);
    ok = memcmp(sp_tensor_data(out_h), want, sizeof want) == 0 &&
         memcmp(sp_tensor_data(mm_h), mm_want, sizeof mm_want) == 0;
    if (!ok) printf("  %s: wrong results\n", label);
done:
    if (!ok && sp_last_error()[0]) printf("  %s: failed: %s\n", label, sp_last_error());
    sp_tensor_release(out[0]);
    sp_tensor_release(mm[0]);
    sp_tensor_release(out_h);
    sp_tensor_release(mm_h);
    for (int i = 0; i < 3; i++) {
        sp_tensor_release(h[i]);
        sp_tensor_release(d[i]);
    }
    return ok;
}

static int run_check(void) {
    printf("Spore version: %s\n", sp_version());
    printf("backends:\n");
    printf("  cpu: %d threads, GEMM kernel %s\n", sp_get_num_threads(), cpu_sgemm_kernel_name());
    int have_cuda = sp_backend_get(SP_DEVICE_CUDA) != NULL;
    if (have_cuda) {
        printf("  cuda: available\n");
    } else {
        printf("  cuda: not available (%s)\n", sp_last_error());
        sp_clear_error();
    }
    printf("checks:\n");
    int ok_cpu = check_device(SP_CPU, "cpu");
    int ok_cuda = have_cuda ? check_device((sp_device){SP_DEVICE_CUDA, 0}, "cuda") : 0;
    if (ok_cpu && (!have_cuda || ok_cuda)) {
        printf("Spore %s is installed successfully and works on: CPU%s\n", sp_version(),
               have_cuda ? ", GPU (CUDA)" : "");
        return 0;
    }
    printf("Spore %s does NOT work on this machine: the %s check failed\n", sp_version(),
           ok_cpu ? "CUDA" : "CPU");
    return 1;
}

/* The options of `run` and `ir`.  Returns 0, or 2 after a usage message. */
typedef struct cli_opts {
    const char *file, *entry, *passes;
    int threads, roundtrip;
    const char *lower; /* ir --lower SIG (helper LOWER) */
    const char *stage, *args; /* ir --stage NAME --args SIG (the graph compiler) */
    int compile, time;        /* run --compile; ir --time */
    int has_device;           /* run --device NAME */
    sp_device device;
} cli_opts;

static int parse_opts(int argc, char **argv, int allow_roundtrip, cli_opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--entry") && i + 1 < argc) {
            o->entry = argv[++i];
        } else if (!strncmp(a, "--entry=", 8)) {
            o->entry = a + 8;
        } else if (!strcmp(a, "--passes") && i + 1 < argc) {
            o->passes = argv[++i];
        } else if (!strncmp(a, "--passes=", 9)) {
            o->passes = a + 9;
        } else if ((!strcmp(a, "--threads") && i + 1 < argc) || !strncmp(a, "--threads=", 10)) {
            const char *v = a[9] == '=' ? a + 10 : argv[++i];
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 4096) {
                fprintf(stderr, "spore %s: --threads wants a positive integer, not '%s'\n", argv[1], v);
                return 2;
            }
            o->threads = (int)n;
        } else if (allow_roundtrip && !strcmp(a, "--lower") && i + 1 < argc) {
            o->lower = argv[++i];
        } else if (allow_roundtrip && !strcmp(a, "--roundtrip")) {
            o->roundtrip = 1;
        } else if (!allow_roundtrip && !strcmp(a, "--compile")) {
            o->compile = 1;
        } else if (!allow_roundtrip && ((!strcmp(a, "--device") && i + 1 < argc) || !strncmp(a, "--device=", 9))) {
            const char *v = a[8] == '=' ? a + 9 : argv[++i];
            if (sp_device_parse(v, &o->device) != SP_OK) {
                fprintf(stderr, "spore %s: --device: %s\n", argv[1], sp_last_error());
                return 2;
            }
            o->has_device = 1;
        } else if (allow_roundtrip && !strcmp(a, "--stage") && i + 1 < argc) {
            o->stage = argv[++i];
        } else if (allow_roundtrip && !strncmp(a, "--stage=", 8)) {
            o->stage = a + 8;
        } else if (allow_roundtrip && !strcmp(a, "--time")) {
            o->time = 1;
        } else if (allow_roundtrip && !strcmp(a, "--args") && i + 1 < argc) {
            o->args = argv[++i];
        } else if (allow_roundtrip && !strncmp(a, "--args=", 7)) {
            o->args = a + 7;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "spore %s: unknown option '%s'\n", argv[1], a);
            usage(stderr);
            return 2;
        } else if (!o->file) {
            o->file = a;
        } else {
            fprintf(stderr, "spore %s: more than one file given ('%s' and '%s')\n", argv[1], o->file, a);
            return 2;
        }
    }
    if (!o->file) {
        fprintf(stderr, "spore %s: no FILE.py given\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return 0;
}

static int fail(void) {
    fflush(stdout);
    fprintf(stderr, "%s\n", sp_last_error()[0] ? sp_last_error() : "error (no message)");
    return 1;
}

/* The module of o->file: IR text for a name ending in .ir (parsed,
 * finalized, verified), else compiled from source; then o->passes, when
 * given.  NULL + error on failure. */
static sp_module *load_module(const cli_opts *o) {
    sp_module *m = NULL;
    size_t k = strlen(o->file);
    if (k > 3 && !strcmp(o->file + k - 3, ".ir")) {
        FILE *f = fopen(o->file, "rb");
        if (!f) {
            sp_error(SP_ERR_IO, "%s: cannot open", o->file);
            return NULL;
        }
        char *text = NULL;
        size_t n = 0, cap = 0;
        for (;;) {
            if (n + 4096 + 1 > cap) {
                cap = cap ? cap * 2 : 8192;
                char *p = realloc(text, cap);
                if (!p) {
                    free(text);
                    fclose(f);
                    sp_error(SP_ERR_NOMEM, "%s: out of memory reading", o->file);
                    return NULL;
                }
                text = p;
            }
            size_t r = fread(text + n, 1, 4096, f);
            n += r;
            if (r < 4096) break;
        }
        fclose(f);
        text[n] = 0;
        m = sp_module_parse_ir(text, o->file);
        free(text);
        if (m && (ir_module_finalize(m) != SP_OK || sp_module_verify(m) != SP_OK)) {
            sp_module_free(m);
            return NULL;
        }
    } else {
        m = sp_frontend_compile_file(o->file, NULL);
    }
    if (m && o->passes && sp_passes_run(m, o->passes, 16) != SP_OK) {
        sp_module_free(m);
        return NULL;
    }
    return m;
}

static int cmd_run(int argc, char **argv) {
    cli_opts o;
    int rc = parse_opts(argc, argv, 0, &o);
    if (rc) return rc;
    if (o.threads && sp_set_num_threads(o.threads) != SP_OK) return fail();
    if (o.has_device && sp_set_default_device(o.device) != SP_OK) return fail();
    sp_module *m = load_module(&o);
    if (!m) return fail();
    sp_value *v = NULL;
    if (o.compile) {
        sp_compiled *c = NULL;
        if (sp_compile(m, o.entry, 0, NULL, NULL, &c) == SP_OK) v = sp_compiled_run(c, 0, NULL);
        sp_compiled_free(c);
    } else {
        v = sp_vm_run(m, o.entry, 0, NULL);
    }
    if (!v) {
        rc = fail();
    } else if (v->kind != SP_V_NONE) {
        char *s = sp_value_to_string(v);
        if (s) {
            printf("%s\n", s);
            free(s);
        } else {
            rc = fail();
        }
    }
    sp_value_release(v);
    sp_module_free(m);
    return rc;
}

/* Nonzero when g is `top` or nested (at any depth) inside it. */
static int within(const sp_graph *g, const sp_graph *top) {
    for (; g; g = g->parent)
        if (g == top) return 1;
    return 0;
}

/* The IR text of m, or of the entry graph and the graphs nested in it. */
static char *ir_text(const sp_module *m, const char *entry) {
    if (!entry) return sp_module_print(m);
    sp_value *fn = ir_module_get_global(m, entry);
    if (!fn || fn->kind != SP_V_GRAPH) {
        sp_error(SP_ERR_ARG, "%s: no function '%s' at module level", m->file, entry);
        return NULL;
    }
    size_t n = 0;
    char *all = NULL;
    for (int i = 0; i < m->n_graphs; i++) {
        if (!within(m->graphs[i], fn->u.graph)) continue;
        char *s = sp_graph_print(m->graphs[i]);
        if (!s) {
            free(all);
            return NULL;
        }
        size_t k = strlen(s);
        char *p = realloc(all, n + k + 2);
        if (!p) {
            free(s);
            free(all);
            sp_error(SP_ERR_NOMEM, "ir: out of memory");
            return NULL;
        }
        all = p;
        if (n) all[n++] = '\n';
        memcpy(all + n, s, k + 1);
        n += k;
        free(s);
    }
    return all;
}

/* ---- ir --stage NAME --args SIG: the graph compiler's IR ---- */

/* Parses one argument of --args: "f32[2,3]" (a meta tensor of that dtype
 * and shape), an int, a float, True, False, None or a 'string'.  A new
 * value, or NULL + error. */
static sp_value *parse_arg(const char *s, size_t len) {
    char buf[256];
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    if (len == 0 || len >= sizeof buf) {
        sp_error(SP_ERR_ARG, "--args: an empty or overlong argument");
        return NULL;
    }
    memcpy(buf, s, len);
    buf[len] = 0;
    if (!strcmp(buf, "True") || !strcmp(buf, "False")) return sp_value_bool(buf[0] == 'T');
    if (!strcmp(buf, "None")) return sp_value_none();
    if (len >= 2 && (buf[0] == '\'' || buf[0] == '"') && buf[len - 1] == buf[0]) return sp_value_str(buf + 1, len - 2);
    char *bracket = strchr(buf, '[');
    if (bracket && buf[len - 1] == ']') {
        *bracket = 0;
        sp_dtype d;
        if (sp_dtype_parse(buf, &d) != SP_OK) return NULL;
        int64_t shape[SP_MAX_DIMS];
        int nd = 0;
        for (char *p = bracket + 1; *p && *p != ']';) {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (end == p || nd == SP_MAX_DIMS || v < 0) {
                sp_error(SP_ERR_ARG, "--args: bad shape in '%.*s'", (int)len, s);
                return NULL;
            }
            shape[nd++] = v;
            p = end;
            while (*p == ',' || *p == ' ') p++;
        }
        sp_tensor *t = sp_tensor_new(d, nd, shape, SP_META);
        sp_value *v = t ? sp_value_tensor(t) : NULL;
        sp_tensor_release(t);
        return v;
    }
    char *end;
    long long i = strtoll(buf, &end, 10);
    if (!*end) return sp_value_int(i);
    double f = strtod(buf, &end);
    if (!*end) return sp_value_float(f);
    sp_error(SP_ERR_ARG, "--args: cannot read '%s' (want f32[2,3], 3, 2.5, True, None or 'text')", buf);
    return NULL;
}

/* Splits --args at top-level commas into values; the count, or -1 + error. */
static int parse_args(const char *sig, sp_value **out, int max) {
    int n = 0, depth = 0;
    const char *start = sig;
    if (!sig || !*sig) return 0;
    for (const char *p = sig;; p++) {
        if (*p == '[') depth++;
        if (*p == ']') depth--;
        if ((*p == ',' && depth == 0) || !*p) {
            if (n == max) {
                sp_error(SP_ERR_ARG, "--args: more than %d arguments", max);
                goto fail;
            }
            if (!(out[n] = parse_arg(start, (size_t)(p - start)))) goto fail;
            n++;
            start = p + 1;
            if (!*p) break;
        }
    }
    return n;
fail:
    for (int i = 0; i < n; i++) sp_value_release(out[i]);
    return -1;
}

static int print_stage(sp_module *m, const cli_opts *o) {
    sp_value *args[64];
    int n = parse_args(o->args, args, 64);
    if (n < 0) return fail();
    sp_compile_options opt;
    memset(&opt, 0, sizeof opt);
    opt.stop_after = o->stage;
    sp_compiled *c = NULL;
    int rc = 0;
    if (sp_compile(m, o->entry, n, args, &opt, &c) != SP_OK) {
        rc = fail();
    } else {
        char *text = ir_text(sp_compiled_module(c), o->entry);
        if (text) {
            fputs(text, stdout);
            free(text);
        } else {
            rc = fail();
        }
        if (o->time)
            for (int s = 0; s < SP_STAGE_COUNT; s++)
                fprintf(stderr, "stage %-12s %9.3f ms\n", sp_stage_name((sp_stage)s),
                        1e3 * sp_compiled_stage_seconds(c, (sp_stage)s));
    }
    sp_compiled_free(c);
    for (int i = 0; i < n; i++) sp_value_release(args[i]);
    return rc;
}

/* ---- ir --lower SIG: the kernel list and memory plan (src/compiler/lower.h) ---- */
static int print_lowered(sp_module *m, const cli_opts *o) {
    const char *entry = o->entry ? o->entry : "main";
    sp_value *fn = ir_module_get_global(m, entry);
    if (!fn || fn->kind != SP_V_GRAPH) {
        sp_error(SP_ERR_ARG, "%s: no function '%s' at module level", m->file, entry);
        return fail();
    }
    sp_meta sig[64];
    int n = sp_lower_parse_sig(o->lower, sig, 64);
    if (n < 0) return fail();
    char why[512];
    sp_lowered *l = sp_lower(fn->u.graph, n, sig, NULL, why, sizeof why);
    if (!l) {
        fprintf(stderr, "spore ir --lower: @%s is not lowerable: %s\n", entry, why);
        return 1;
    }
    char *s = sp_lowered_print(l);
    int rc = s ? (fputs(s, stdout), 0) : fail();
    free(s);
    sp_lowered_free(l);
    return rc;
}

static int cmd_ir(int argc, char **argv) {
    cli_opts o;
    int rc = parse_opts(argc, argv, 1, &o);
    if (rc) return rc;
    sp_module *m = load_module(&o), *m2 = NULL;
    if (!m) return fail();
    if (o.lower) {
        rc = print_lowered(m, &o);
        sp_module_free(m);
        return rc;
    }
    if (o.stage) {
        rc = print_stage(m, &o);
        sp_module_free(m);
        return rc;
    }
    char *text = ir_text(m, o.entry), *text2 = NULL;
    if (!text) {
        rc = fail();
        goto done;
    }
    fputs(text, stdout);
    if (!o.roundtrip) goto done;
    /* the round trip is over the whole module: what the parser reads back */
    if (o.entry) {
        free(text);
        if (!(text = sp_module_print(m))) {
            rc = fail();
            goto done;
        }
    }
    m2 = sp_module_parse_ir(text, m->file);
    if (!m2 || ir_module_finalize(m2) != SP_OK || sp_module_verify(m2) != SP_OK) {
        fflush(stdout);
        fprintf(stderr, "spore ir --roundtrip: the printed IR does not parse back:\n");
        rc = fail();
        goto done;
    }
    if (!(text2 = sp_module_print(m2))) {
        rc = fail();
        goto done;
    }
    if (strcmp(text, text2) != 0) {
        size_t i = 0, line = 1;
        for (; text[i] && text[i] == text2[i]; i++)
            if (text[i] == '\n') line++;
        fflush(stdout);
        fprintf(stderr, "spore ir --roundtrip: print -> parse -> print differs at line %zu\n", line);
        rc = 1;
    }
done:
    free(text);
    free(text2);
    sp_module_free(m2);
    sp_module_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run-check")) return run_check();
    if (!strcmp(cmd, "run")) return cmd_run(argc, argv);
    if (!strcmp(cmd, "ir")) return cmd_ir(argc, argv);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("spore %s\n", sp_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "spore: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
