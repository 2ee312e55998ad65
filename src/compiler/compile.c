/*
 * compile.c -- the compile pipeline, its per-stage timings and IR dumps,
 * and the cache of compilations keyed by input signature (compile.h).
 *
 * The pipeline is a list of stages run in order on the specialized module:
 * each stage is timed with a monotonic clock, and with SPORE_DUMP_IR set
 * the module's IR text is written after it.  A stage whose machinery is
 * not built (a pass name sp_pass_find does not know) is skipped, so the
 * pipeline grows by adding rows, not by editing callers.
 *
 * Gradients.  The specializer expands spore.grad(f)(args) on a known f
 * itself (src/compiler/spec_grad.c): f is specialized for the arguments,
 * ad_expand_grad builds its gradient graph from that typed clone, and the
 * graph is specialized in turn, so the backward pass is primitive calls
 * like the forward pass before the optimizer runs.  The expand_grad stage
 * therefore does no work of its own: its time is the part of
 * specialization spent building gradient graphs (sp_spec_stats:
 * expand_seconds: checks, ad_expand_grad, free-variable lists), taken off
 * the specialize stage's time; specializing those graphs counts as
 * specialization.  Its dump (02_expand_grad) is the module as
 * specialization left it.  A gradient the specializer cannot expand
 * statically (options or function known only at run time, a user f_bprop,
 * run-time J left inside) stays a run-time grad, run by the VM.

 * The cache maps a signature string to a compilation.  The string spells
 * out what a compilation depends on: for a tensor its dtype, shape and
 * device; for everything else its kind and value (the text `spore run`
 * prints, which is exact for ints and for floats: repr round-trips).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "compiler/compile.h"
#include "compiler/lower.h"
#include "compiler/pass.h"
#include "runtime/exec.h"
#include "ir/ir_internal.h"
#include "runtime/vm.h"

struct sp_compiled {
    sp_module *src, *m;
    sp_module *mid; /* the module expand_grad rewrote, when it was specialized again (m's abstracts name its graphs) */
    char *entry;
    sp_value *fn; /* the entry graph of m */
    double seconds[SP_STAGE_COUNT];
    sp_spec_stats stats;
    /* The entry lowered to a kernel list with a memory plan (lower.h), or
     * NULL when it is not lowerable (why says where) and the VM runs it. */
    sp_lowered *lowered;
    char why[256];
};

static const char *stage_names[SP_STAGE_COUNT] = {"specialize", "expand_grad", "optimize", "fuse", "lower"};

const char *sp_stage_name(sp_stage s) { return (int)s >= 0 && s < SP_STAGE_COUNT ? stage_names[s] : NULL; }

int sp_stage_find(const char *name) {
    for (int i = 0; i < SP_STAGE_COUNT; i++)
        if (name && !strcmp(name, stage_names[i])) return i;
    sp_error(SP_ERR_ARG, "compile: unknown stage '%s' (known: specialize, expand_grad, optimize, fuse, lower)",
             name ? name : "(null)");
    return -1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Writes m's IR text to dir/NN_stage.ir (the directory made if missing). */
static sp_status dump_stage(const char *dir, int index, const char *stage, const sp_module *m) {
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return sp_error(SP_ERR_IO, "SPORE_DUMP_IR: cannot create directory '%s'", dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/%02d_%s.ir", dir, index, stage);
    char *text = sp_module_print(m);
    if (!text) return sp_last_status();
    FILE *f = fopen(path, "w");
    if (!f) {
        free(text);
        return sp_error(SP_ERR_IO, "SPORE_DUMP_IR: cannot write '%s'", path);
    }
    size_t len = strlen(text);
    int ok = fwrite(text, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    free(text);
    return ok ? SP_OK : sp_error(SP_ERR_IO, "SPORE_DUMP_IR: cannot write '%s'", path);
}

/* 05_lower.txt: the kernel list and memory plan, or why the entry stayed
 * on the VM. */
static void dump_lower(const char *dir, const sp_lowered *l, const char *why) {
    char path[4096];
    snprintf(path, sizeof path, "%s/05_lower.txt", dir);
    char *text = l ? sp_lowered_print(l) : NULL;
    FILE *f = fopen(path, "w");
    if (f) {
        if (text) fputs(text, f);
        else fprintf(f, "not lowered: %s\n", why && why[0] ? why : "(no reason recorded)");
        fclose(f);
    }
    free(text);
}

static int pass_known(const char *name) {
    if (sp_pass_find(name)) return 1;
    sp_clear_error();
    return 0;
}

/* Runs the passes of `list` to a fixed point when they all exist; *ran
 * says whether they did. */
static sp_status run_passes(sp_module *m, const char *list, int max_rounds, int *ran) {
    char name[64];
    *ran = 0;
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        snprintf(name, sizeof name, "%.*s", (int)(k < 63 ? k : 63), p);
        if (!pass_known(name)) return SP_OK;
        p = e ? e + 1 : p + k;
    }
    *ran = 1;
    return sp_passes_run(m, list, max_rounds);
}

sp_status sp_compile(sp_module *m, const char *entry, int n, sp_value *const *args, const sp_compile_options *opt,
                     sp_compiled **out) {
    if (out) *out = NULL;
    if (!m || !out || n < 0 || (n > 0 && !args)) return sp_error(SP_ERR_ARG, "compile: NULL argument");
    sp_compile_options o;
    memset(&o, 0, sizeof o);
    if (opt) o = *opt;
    if (!o.passes) o.passes = SP_COMPILE_DEFAULT_PASSES;
    if (!o.max_rounds) o.max_rounds = 64;
    if (!o.dump_dir) o.dump_dir = getenv("SPORE_DUMP_IR");
    if (o.dump_dir && !o.dump_dir[0]) o.dump_dir = NULL;
    const char *env = getenv("SPORE_NO_FUSE");
    if (env && env[0] == '1') o.no_fuse = 1;
    env = getenv("SPORE_NO_LOWER");
    if (env && env[0] == '1') o.no_lower = 1;
    int last = SP_STAGE_COUNT - 1;
    if (o.stop_after && (last = sp_stage_find(o.stop_after)) < 0) return SP_ERR_ARG;
    if (!entry) entry = "main";
    sp_compiled *c = calloc(1, sizeof *c);
    if (!c || !(c->entry = malloc(strlen(entry) + 1))) {
        free(c);
        return sp_error(SP_ERR_NOMEM, "compile: out of memory");
    }
    strcpy(c->entry, entry);
    c->src = m;
    sp_status st = SP_OK;
    if (o.dump_dir) st = dump_stage(o.dump_dir, 0, "input", m);

    /* specialize */
    double t0 = now();
    if (!st) {
        c->m = sp_specialize(m, entry, n, args, &c->stats);
        if (!c->m) st = sp_last_status() ? sp_last_status() : SP_ERR_INTERNAL;
    }
    c->seconds[SP_STAGE_SPECIALIZE] = now() - t0;
    if (!st && o.dump_dir) st = dump_stage(o.dump_dir, 1, "specialize", c->m);

    /* expand grad: done inside specialization (spec_grad.c), where the
     * function and the arguments are typed; its share of the time is
     * reported here and taken off specialize's */
    if (!st && last >= SP_STAGE_EXPAND_GRAD) {
        double e = c->stats.expand_seconds;
        if (e > c->seconds[SP_STAGE_SPECIALIZE]) e = c->seconds[SP_STAGE_SPECIALIZE];
        c->seconds[SP_STAGE_SPECIALIZE] -= e;
        c->seconds[SP_STAGE_EXPAND_GRAD] = e;
        if (o.dump_dir) st = dump_stage(o.dump_dir, 2, "expand_grad", c->m);
    }

    /* optimize */
    if (!st && last >= SP_STAGE_OPTIMIZE) {
        t0 = now();
        int ran = 0;
        st = run_passes(c->m, o.passes, o.max_rounds, &ran);
        if (!st && !ran) st = sp_passes_run(c->m, o.passes, o.max_rounds); /* names the unknown pass */
        c->seconds[SP_STAGE_OPTIMIZE] = now() - t0;
        if (!st && o.dump_dir) st = dump_stage(o.dump_dir, 3, "optimize", c->m);
    }

    /* fuse: chains of elementwise primitives become one generated kernel */
    if (!st && last >= SP_STAGE_FUSE && !o.no_fuse && pass_known("fuse")) {
        t0 = now();
        st = sp_passes_run(c->m, "fuse,dce", 4);
        c->seconds[SP_STAGE_FUSE] = now() - t0;
        if (!st && o.dump_dir) st = dump_stage(o.dump_dir, 4, "fuse", c->m);
    }
    /* lower: a straight-line entry becomes a kernel list with a static
     * memory plan; anything else (control flow left after optimization,
     * calls the VM must make) keeps running on the VM, and why says where
     * lowering stopped. */
    if (!st && last >= SP_STAGE_LOWER && !o.no_lower) {
        t0 = now();
        sp_value *fn = ir_module_get_global(c->m, entry);
        if (fn && fn->kind == SP_V_GRAPH)
            c->lowered = sp_lower_specialized(fn->u.graph, NULL, c->why, sizeof c->why);
        c->seconds[SP_STAGE_LOWER] = now() - t0;
        if (o.dump_dir) dump_lower(o.dump_dir, c->lowered, c->why);
    }

    if (!st) {
        sp_value *fn = ir_module_get_global(c->m, entry);
        if (!fn) {
            st = sp_error(SP_ERR_INTERNAL, "compile: the specialized module lost '%s'", entry);
        } else {
            sp_value_retain(fn);
            c->fn = fn;
        }
    }
    if (st) {
        sp_compiled_free(c);
        return st;
    }
    *out = c;
    return SP_OK;
}

sp_value *sp_compiled_run(sp_compiled *c, int n, sp_value *const *args) {
    if (!c) {
        sp_error(SP_ERR_ARG, "compiled_run: NULL compilation");
        return NULL;
    }
    /* The kernel list takes exactly its parameters, positionally; a call
     * that leans on defaults or keywords binds through the VM. */
    int lowered = c->lowered && n == c->lowered->n_params;
    for (int i = 0; lowered && i < n; i++)
        if (args[i] && args[i]->kind == SP_V_KEYWORD) lowered = 0;
    sp_value *r = lowered ? sp_lowered_run_value(c->lowered, n, args) : sp_vm_call(c->m, c->fn, n, args);
    if (r && r->kind == SP_V_UNDEF) {
        sp_value_release(r);
        sp_error(SP_ERR_RUNTIME, "%s: %s() returned a variable that was never assigned", c->m->file, c->entry);
        return NULL;
    }
    return r;
}

void sp_compiled_free(sp_compiled *c) {
    if (!c) return;
    sp_value_release(c->fn);
    sp_lowered_free(c->lowered);
    sp_module_free(c->m);
    sp_module_free(c->mid);
    free(c->entry);
    free(c);
}

sp_module *sp_compiled_module(const sp_compiled *c) { return c ? c->m : NULL; }

const sp_lowered *sp_compiled_lowered(const sp_compiled *c, const char **why) {
    if (why) *why = c && !c->lowered ? c->why : NULL;
    return c ? c->lowered : NULL;
}

sp_graph *sp_compiled_graph(const sp_compiled *c) {
    return c && c->fn && c->fn->kind == SP_V_GRAPH ? c->fn->u.graph : NULL;
}

double sp_compiled_stage_seconds(const sp_compiled *c, sp_stage s) {
    return c && (int)s >= 0 && s < SP_STAGE_COUNT ? c->seconds[s] : 0;
}

const sp_spec_stats *sp_compiled_spec_stats(const sp_compiled *c) { return c ? &c->stats : NULL; }

/* ---- the cache -------------------------------------------------------------- */

typedef struct cache_entry {
    char *key;
    sp_compiled *c;
} cache_entry;

struct sp_compile_cache {
    sp_module *m;
    sp_compile_options opt;
    cache_entry *e;
    int n, cap;
    int hits, misses;
};

static void sig_put(ir_buf *b, const sp_value *v, int depth) {
    if (depth > 16) {
        ir_buf_puts(b, "...");
        return;
    }
    if (v->kind == SP_V_TENSOR) {
        const sp_tensor *t = v->u.tensor;
        sp_device d = t->buf ? t->buf->device : SP_CPU;
        if (d.type == SP_DEVICE_META) d = SP_CPU;
        ir_buf_printf(b, "T%s[", sp_dtype_name(t->dtype));
        for (int i = 0; i < t->ndim; i++) ir_buf_printf(b, "%s%lld", i ? "," : "", (long long)t->shape[i]);
        ir_buf_printf(b, "]@%d:%d", (int)d.type, d.index);
        return;
    }
    if (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) {
        ir_buf_putc(b, v->kind == SP_V_TUPLE ? '(' : '[');
        for (int i = 0; i < v->u.seq.n; i++) {
            if (i) ir_buf_putc(b, ',');
            sig_put(b, v->u.seq.items[i], depth + 1);
        }
        ir_buf_putc(b, v->kind == SP_V_TUPLE ? ')' : ']');
        return;
    }
    if (v->kind == SP_V_KEYWORD) {
        ir_buf_printf(b, "%s=", v->u.kw.name);
        sig_put(b, v->u.kw.value, depth + 1);
        return;
    }
    if (v->kind == SP_V_GRAPH || v->kind == SP_V_CLOSURE || v->kind == SP_V_PARTIAL) {
        ir_buf_printf(b, "F%p", (const void *)v); /* callables: by identity */
        return;
    }
    char *s = sp_value_to_string(v);
    ir_buf_printf(b, "%s:%s", sp_value_kind_name(v), s ? s : "?");
    free(s);
}

static char *sig_key(const char *entry, int n, sp_value *const *args) {
    ir_buf b = {0};
    ir_buf_puts(&b, entry);
    ir_buf_putc(&b, '(');
    for (int i = 0; i < n; i++) {
        if (i) ir_buf_putc(&b, ';');
        sig_put(&b, args[i], 0);
    }
    ir_buf_putc(&b, ')');
    return ir_buf_finish(&b);
}

sp_compile_cache *sp_compile_cache_new(sp_module *m, const sp_compile_options *opt) {
    if (!m) {
        sp_error(SP_ERR_ARG, "compile_cache_new: NULL module");
        return NULL;
    }
    sp_compile_cache *cc = calloc(1, sizeof *cc);
    if (!cc) {
        sp_error(SP_ERR_NOMEM, "compile cache: out of memory");
        return NULL;
    }
    cc->m = m;
    if (opt) cc->opt = *opt;
    return cc;
}

void sp_compile_cache_free(sp_compile_cache *cc) {
    if (!cc) return;
    for (int i = 0; i < cc->n; i++) {
        free(cc->e[i].key);
        sp_compiled_free(cc->e[i].c);
    }
    free(cc->e);
    free(cc);
}

sp_compiled *sp_compile_cache_get(sp_compile_cache *cc, const char *entry, int n, sp_value *const *args) {
    if (!cc || n < 0 || (n > 0 && !args)) {
        sp_error(SP_ERR_ARG, "compile_cache_get: NULL argument");
        return NULL;
    }
    if (!entry) entry = "main";
    for (int i = 0; i < n; i++)
        if (!args[i]) {
            sp_error(SP_ERR_ARG, "compile_cache_get: argument %d is NULL", i);
            return NULL;
        }
    char *key = sig_key(entry, n, args);
    if (!key) return NULL;
    for (int i = 0; i < cc->n; i++)
        if (!strcmp(cc->e[i].key, key)) {
            free(key);
            cc->hits++;
            return cc->e[i].c;
        }
    sp_compiled *c = NULL;
    if (sp_compile(cc->m, entry, n, args, &cc->opt, &c) != SP_OK) {
        free(key);
        return NULL;
    }
    if (cc->n == cc->cap) {
        int cap = cc->cap ? cc->cap * 2 : 8;
        cache_entry *e = realloc(cc->e, sizeof *e * (size_t)cap);
        if (!e) {
            free(key);
            sp_compiled_free(c);
            sp_error(SP_ERR_NOMEM, "compile cache: out of memory");
            return NULL;
        }
        cc->e = e;
        cc->cap = cap;
    }
    cc->e[cc->n++] = (cache_entry){key, c};
    cc->misses++;
    return c;
}

sp_value *sp_compile_cache_call(sp_compile_cache *cc, const char *entry, int n, sp_value *const *args) {
    sp_compiled *c = sp_compile_cache_get(cc, entry, n, args);
    return c ? sp_compiled_run(c, n, args) : NULL;
}

int sp_compile_cache_hits(const sp_compile_cache *cc) { return cc ? cc->hits : 0; }
int sp_compile_cache_misses(const sp_compile_cache *cc) { return cc ? cc->misses : 0; }
