/*
 * program.c -- the public C API for whole programs (spore/program.h).
 *
 * A program is one module plus what C needs around it: declared
 * signatures to check calls against, the execution mode, the compile cache
 * (compiler/compile.h: one compiled program per entry and signature), and
 * the wrappers that sp_program_grad adds to the module.  The module itself
 * is the only model state; this file owns no model semantics.  Three
 * ideas carry it:
 *
 * Values at the border.  C passes sp_arg (a tensor or a Python number) and
 * gets back a flat list of tensors; everything in between is sp_value, so
 * a call is "convert, run the entry function, flatten".  Checks that need
 * the function (argument count, declared kinds, dtypes and shapes) happen
 * before anything runs and point at the parameter in the user's source,
 * because that is where the user will look; errors while running come from
 * the VM (or the compiler) already located at the failing source line.
 *
 * Gradients are source, not C.  sp_program_grad(p, "f", ..., wrt) adds to
 * the module a graph equivalent to
 *     def __grad_f_0_2_n3(a, b, c):
 *         return spore.value_and_grad(f, grad_position=(0, 2))(a, b, c)
 * built node by node the way the front end builds that text, registers it
 * as a module global and calls it like any function.  So the gradient is
 * the language's own value_and_grad (K transform, rules from src/ops/bprop)
 * and the compiler sees an ordinary entry point it can specialize and
 * cache.  Wrappers are made once per (function, positions, arity).
 *
 * Parameters are rebound constants.  The front end resolves a module-level
 * name at compile time: every use of `W1` in a function becomes a constant
 * node holding the very sp_value the global holds (the same pointer).  A
 * declaration `W1 = None` makes a fresh value, so the constant nodes that
 * came from W1 are exactly those holding that pointer; set_global swaps
 * them all (and the global) to the new tensor value.  That is Python's
 * meaning of rebinding a module global, applied to IR where the global was
 * folded in.  The swap is done in two phases (collect, then swap) so that
 * an allocation failure leaves the module unchanged, and it drops the
 * compile cache, whose programs have the old value folded in.
 *
 * Invariant: between calls, every constant node that came from a declared
 * parameter holds the same pointer as the module's global of that name.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compile.h"
#include "frontend/frontend.h"
#include "runtime/rt.h"
#include "spore/program.h"

typedef struct prog_sig {
    char *fn;
    int n;
    sp_arg_spec *spec;
} prog_sig;

struct sp_program {
    sp_module *m;
    sp_exec_mode mode;
    sp_compile_cache *cache; /* made on the first compiled call; dropped by set_global */
    int n_vm_only;
    char **vm_only;          /* entries the compiler cannot take (SP_ERR_UNSUPPORTED): run on the VM */
    int n_sigs;
    prog_sig *sigs;
};

struct sp_results {
    int n, cap;
    sp_tensor **t;
};

/* ---- programs ----------------------------------------------------------------- */

static sp_program *prog_wrap(sp_module *m) {
    if (!m) return NULL;
    sp_program *p = calloc(1, sizeof *p);
    if (!p) {
        sp_module_free(m);
        sp_error(SP_ERR_NOMEM, "program: out of memory");
        return NULL;
    }
    p->m = m;
    const char *e = getenv("SPORE_PROGRAM_EXEC");
    p->mode = e && strcmp(e, "vm") == 0 ? SP_EXEC_VM : SP_EXEC_AUTO;
    return p;
}

sp_program *sp_program_new_source(const char *file, const char *text) {
    if (!text) {
        sp_error(SP_ERR_ARG, "sp_program_new_source: NULL source text");
        return NULL;
    }
    return prog_wrap(sp_frontend_compile(file ? file : "<program>", text, 0, NULL));
}

sp_program *sp_program_load(const char *path) {
    if (!path) {
        sp_error(SP_ERR_ARG, "sp_program_load: NULL path");
        return NULL;
    }
    return prog_wrap(sp_frontend_compile_file(path, NULL));
}

void sp_program_free(sp_program *p) {
    if (!p) return;
    for (int i = 0; i < p->n_sigs; i++) {
        free(p->sigs[i].fn);
        free(p->sigs[i].spec);
    }
    free(p->sigs);
    for (int i = 0; i < p->n_vm_only; i++) free(p->vm_only[i]);
    free(p->vm_only);
    sp_compile_cache_free(p->cache); /* before the module it compiled from */
    sp_module_free(p->m);
    free(p);
}

sp_status sp_program_set_exec(sp_program *p, sp_exec_mode mode) {
    if (!p) return sp_error(SP_ERR_ARG, "sp_program_set_exec: NULL program");
    if (mode != SP_EXEC_AUTO && mode != SP_EXEC_VM)
        return sp_error(SP_ERR_ARG, "sp_program_set_exec: unknown mode %d", (int)mode);
    p->mode = mode;
    return SP_OK;
}

/* ---- functions and their parameters ----------------------------------------------- */

/* The graph of module-level function `fn`, or NULL + an error naming the
 * file and the name.  `who` is the API function, for the message. */
static sp_graph *prog_function(const sp_program *p, const char *fn, const char *who) {
    if (!p || !fn) {
        sp_error(SP_ERR_ARG, "%s: NULL %s", who, p ? "function name" : "program");
        return NULL;
    }
    sp_value *v = ir_module_get_global(p->m, fn);
    if (!v) {
        sp_error(SP_ERR_ARG, "%s: no function '%s' at module level", p->m->file, fn);
        return NULL;
    }
    if (v->kind != SP_V_GRAPH) {
        sp_error(SP_ERR_TYPE, "%s: '%s' is not a function (it holds a value of type %s)", p->m->file, fn,
                 sp_value_kind_name(v));
        return NULL;
    }
    return v->u.graph;
}

/* "(w1, b1, x)" for the message of a wrong argument count. */
static void prog_param_list(const sp_graph *g, char *buf, size_t size) {
    size_t k = 0;
    buf[0] = 0;
    k += (size_t)snprintf(buf + k, size - k, "(");
    for (int i = 0; i < g->n_params && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%s%s", i ? ", " : "",
                              g->has_varargs && i == g->n_params - 1 ? "*" : "", g->param_names[i]);
    if (k < size) snprintf(buf + k, size - k, ")");
}

/* SP_OK when g accepts n positional arguments, else an error at its def. */
static sp_status prog_check_count(const sp_program *p, const sp_graph *g, int n) {
    int fixed = g->n_params - (g->has_varargs ? 1 : 0), required = 0;
    for (int i = 0; i < fixed; i++)
        if (!g->defaults || !g->defaults[i]) required = i + 1;
    if (n >= required && (g->has_varargs || n <= fixed)) return SP_OK;
    char params[512];
    prog_param_list(g, params, sizeof params);
    const char *how = "";
    int want = fixed;
    if (g->has_varargs || (n < required && required < fixed)) {
        how = "at least ";
        want = required;
    } else if (required < fixed) {
        how = "at most ";
    }
    return sp_error_at(p->m, g->loc, SP_ERR_ARG, "%s%s takes %s%d argument%s but %d %s given", g->name,
                       params, how, want, want == 1 ? "" : "s", n, n == 1 ? "was" : "were");
}

/* The name of the parameter that argument i binds to, for messages. */
static const char *prog_param_name(const sp_graph *g, int i, sp_loc *loc) {
    int fixed = g->n_params - (g->has_varargs ? 1 : 0);
    int k = i < fixed ? i : g->n_params - 1;
    *loc = k >= 0 && k < g->n_params ? g->params[k]->loc : g->loc;
    return k >= 0 && k < g->n_params ? g->param_names[k] : "?";
}

static const char *kind_name(sp_arg_kind k) {
    switch (k) {
    case SP_ARG_TENSOR: return "a tensor";
    case SP_ARG_INT: return "an int";
    case SP_ARG_FLOAT: return "a float";
    case SP_ARG_BOOL: return "a bool";
    case SP_ARG_NONE: return "None";
    }
    return "an unknown kind of argument";
}

static int kind_valid(sp_arg_kind k) { return k >= SP_ARG_TENSOR && k <= SP_ARG_NONE; }

static const prog_sig *prog_find_sig(const sp_program *p, const char *fn) {
    for (int i = 0; i < p->n_sigs; i++)
        if (strcmp(p->sigs[i].fn, fn) == 0) return &p->sigs[i];
    return NULL;
}

static char *spec_shape_str(const sp_arg_spec *s, char *buf, size_t n) {
    if (s->ndim < 0) {
        snprintf(buf, n, "any shape");
        return buf;
    }
    char sh[160];
    snprintf(buf, n, "shape %s", sp_shape_str(s->ndim, s->shape, sh, sizeof sh));
    return buf;
}

/* Checks argument i against its declared spec; errors point at the
 * parameter in the source. */
static sp_status prog_check_arg(const sp_program *p, const sp_graph *g, int i, const sp_arg *a,
                                const sp_arg_spec *s) {
    sp_loc loc;
    const char *pname = prog_param_name(g, i, &loc);
    int kind_ok = a->kind == s->kind || (s->kind == SP_ARG_FLOAT && a->kind == SP_ARG_INT);
    if (!kind_ok)
        return sp_error_at(p->m, loc, SP_ERR_TYPE, "%s: parameter '%s' (argument %d) must be %s, got %s",
                           g->name, pname, i + 1, kind_name(s->kind), kind_name(a->kind));
    if (s->kind != SP_ARG_TENSOR) return SP_OK;
    const sp_tensor *t = a->u.t;
    int ok = t->dtype == s->dtype && (s->ndim < 0 || s->ndim == t->ndim);
    for (int d = 0; ok && s->ndim > 0 && d < s->ndim; d++)
        ok = s->shape[d] < 0 || s->shape[d] == t->shape[d];
    if (ok) return SP_OK;
    char want[192], got[160];
    int shape_only = t->dtype == s->dtype;
    return sp_error_at(p->m, loc, shape_only ? SP_ERR_SHAPE : SP_ERR_DTYPE,
                       "%s: parameter '%s' (argument %d) must be a %s tensor of %s, got %s %s", g->name,
                       pname, i + 1, sp_dtype_name(s->dtype), spec_shape_str(s, want, sizeof want),
                       sp_dtype_name(t->dtype), sp_shape_str(t->ndim, t->shape, got, sizeof got));
}

/* Everything checkable before running: the count, well-formed args, and
 * the signature declared for g (sp_program_declare), if any. */
static sp_status prog_check_args(const sp_program *p, const sp_graph *g, int n, const sp_arg *args) {
    if (n < 0 || (n > 0 && !args)) return sp_error(SP_ERR_ARG, "%s: bad argument array (n = %d)", g->name, n);
    sp_status st = prog_check_count(p, g, n);
    if (st) return st;
    for (int i = 0; i < n; i++) {
        sp_loc loc;
        const char *pname = prog_param_name(g, i, &loc);
        if (!kind_valid(args[i].kind))
            return sp_error(SP_ERR_ARG, "%s: parameter '%s' (argument %d) has an unknown kind %d", g->name,
                            pname, i + 1, (int)args[i].kind);
        if (args[i].kind == SP_ARG_TENSOR && !args[i].u.t)
            return sp_error(SP_ERR_ARG, "%s: parameter '%s' (argument %d) is a NULL tensor", g->name, pname,
                            i + 1);
    }
    const prog_sig *sig = prog_find_sig(p, g->name);
    if (!sig) return SP_OK;
    if (sig->n != n)
        return sp_error_at(p->m, g->loc, SP_ERR_ARG, "%s: declared with %d argument%s, called with %d",
                           g->name, sig->n, sig->n == 1 ? "" : "s", n);
    for (int i = 0; i < n; i++)
        if ((st = prog_check_arg(p, g, i, &args[i], &sig->spec[i]))) return st;
    return SP_OK;
}

sp_status sp_program_declare(sp_program *p, const char *fn, int n, const sp_arg_spec *spec) {
    sp_graph *g = prog_function(p, fn, "sp_program_declare");
    if (!g) return sp_last_status();
    if (n < 0 || (n > 0 && !spec)) return sp_error(SP_ERR_ARG, "sp_program_declare: %s: bad spec array", fn);
    sp_status st = prog_check_count(p, g, n);
    if (st) return st;
    for (int i = 0; i < n; i++) {
        sp_loc loc;
        const char *pname = prog_param_name(g, i, &loc);
        const sp_arg_spec *s = &spec[i];
        if (!kind_valid(s->kind))
            return sp_error(SP_ERR_ARG, "sp_program_declare: %s: parameter '%s' has an unknown kind %d", fn,
                            pname, (int)s->kind);
        if (s->kind == SP_ARG_TENSOR && ((unsigned)s->dtype >= SP_DTYPE_COUNT || s->ndim < -1 ||
                                         s->ndim > SP_MAX_DIMS))
            return sp_error(SP_ERR_ARG, "sp_program_declare: %s: parameter '%s' has a bad dtype or rank", fn,
                            pname);
    }
    prog_sig *sig = (prog_sig *)prog_find_sig(p, fn);
    sp_arg_spec *copy = malloc(sizeof *copy * (size_t)(n ? n : 1));
    if (!copy) return sp_error(SP_ERR_NOMEM, "sp_program_declare: out of memory");
    if (n) memcpy(copy, spec, sizeof *copy * (size_t)n);
    if (!sig) {
        prog_sig *grown = realloc(p->sigs, sizeof *grown * (size_t)(p->n_sigs + 1));
        char *name = strdup(fn);
        if (!grown || !name) {
            if (grown) p->sigs = grown;
            free(name);
            free(copy);
            return sp_error(SP_ERR_NOMEM, "sp_program_declare: out of memory");
        }
        p->sigs = grown;
        sig = &p->sigs[p->n_sigs++];
        sig->fn = name;
        sig->spec = NULL;
    }
    free(sig->spec);
    sig->spec = copy;
    sig->n = n;
    return SP_OK;
}

/* ---- running ------------------------------------------------------------------ */

/* One VM value per argument, as the program sees them; NULL + error. */
static sp_value **prog_values(int n, const sp_arg *args) {
    sp_value **v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) {
        sp_error(SP_ERR_NOMEM, "program: out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const sp_arg *a = &args[i];
        switch (a->kind) {
        case SP_ARG_TENSOR: v[i] = sp_value_tensor(a->u.t); break;
        case SP_ARG_INT: v[i] = sp_value_int(a->u.i); break;
        case SP_ARG_FLOAT: v[i] = sp_value_float(a->u.f); break;
        case SP_ARG_BOOL: v[i] = sp_value_bool(a->u.b); break;
        case SP_ARG_NONE: v[i] = sp_value_none(); break;
        }
        if (!v[i]) {
            for (int k = 0; k < i; k++) sp_value_release(v[k]);
            free(v);
            return NULL;
        }
    }
    return v;
}

static void prog_values_free(int n, sp_value **v) {
    if (!v) return;
    for (int i = 0; i < n; i++) sp_value_release(v[i]);
    free(v);
}

/* Runs module-level function `entry` on args: a new reference or NULL +
 * error (already located at the source line by the VM). */
static sp_value *prog_exec(sp_program *p, const char *entry, int n, sp_value *const *args) {
    int vm_only = p->mode == SP_EXEC_VM;
    for (int i = 0; i < p->n_vm_only && !vm_only; i++) vm_only = strcmp(p->vm_only[i], entry) == 0;
    if (!vm_only) {
        /* compile once per (entry, signature), then run the compiled program */
        if (!p->cache && !(p->cache = sp_compile_cache_new(p->m, NULL))) return NULL;
        sp_compiled *c = sp_compile_cache_get(p->cache, entry, n, args);
        if (c) return sp_compiled_run(c, n, args);
        if (sp_last_status() != SP_ERR_UNSUPPORTED) return NULL;
        /* something the compiler does not take yet (the VM runs every
         * program): remember the entry so it is not compiled again */
        char **grown = realloc(p->vm_only, sizeof *grown * (size_t)(p->n_vm_only + 1));
        if (grown) {
            p->vm_only = grown;
            if ((grown[p->n_vm_only] = strdup(entry))) p->n_vm_only++;
        }
        sp_clear_error();
    }
    return sp_vm_run(p->m, entry, n, args);
}

static sp_results *results_new(void) {
    sp_results *r = calloc(1, sizeof *r);
    if (!r) sp_error(SP_ERR_NOMEM, "program: out of memory");
    return r;
}

static sp_status results_push(sp_results *r, sp_tensor *t) {
    if (!t) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 4;
        sp_tensor **grown = realloc(r->t, sizeof *grown * (size_t)cap);
        if (!grown) {
            sp_tensor_release(t);
            return sp_error(SP_ERR_NOMEM, "program: out of memory");
        }
        r->t = grown;
        r->cap = cap;
    }
    r->t[r->n++] = t;
    return SP_OK;
}

/* Appends the tensors of v (flattening tuples and lists in order) to r.
 * `top` allows None (no tensors); `fn` names the function for errors. */
static sp_status results_flatten(sp_results *r, const sp_value *v, int top, const char *fn) {
    switch (v->kind) {
    case SP_V_TENSOR:
        sp_tensor_retain(v->u.tensor);
        return results_push(r, v->u.tensor);
    case SP_V_INT: {
        int64_t i = v->u.i;
        return results_push(r, sp_tensor_from_data(SP_I64, 0, NULL, &i));
    }
    case SP_V_FLOAT: {
        double f = v->u.f;
        return results_push(r, sp_tensor_from_data(SP_F64, 0, NULL, &f));
    }
    case SP_V_BOOL: {
        uint8_t b = v->u.b != 0;
        return results_push(r, sp_tensor_from_data(SP_BOOL, 0, NULL, &b));
    }
    case SP_V_NONE:
        if (top) return SP_OK;
        break;
    case SP_V_TUPLE:
    case SP_V_LIST:
        for (int i = 0; i < v->u.seq.n; i++) {
            sp_status st = results_flatten(r, v->u.seq.items[i], 0, fn);
            if (st) return st;
        }
        return SP_OK;
    default: break;
    }
    return sp_error(SP_ERR_TYPE,
                    "%s returned a %s as result %d (counting from 0); only tensors, numbers and tuples "
                    "of them can be returned to C", fn, sp_value_kind_name(v), r->n);
}

/* The results of v, or NULL + error. */
static sp_results *results_of(const sp_value *v, const char *fn) {
    sp_results *r = results_new();
    if (r && results_flatten(r, v, 1, fn)) {
        sp_results_free(r);
        return NULL;
    }
    return r;
}

sp_status sp_program_call(sp_program *p, const char *fn, int n, const sp_arg *args, sp_results **out) {
    if (!out) return sp_error(SP_ERR_ARG, "sp_program_call: NULL out");
    *out = NULL;
    sp_graph *g = prog_function(p, fn, "sp_program_call");
    if (!g) return sp_last_status();
    sp_status st = prog_check_args(p, g, n, args);
    if (st) return st;
    sp_value **v = prog_values(n, args);
    if (!v) return sp_last_status();
    sp_value *r = prog_exec(p, fn, n, v);
    prog_values_free(n, v);
    if (!r) return sp_last_status() ? sp_last_status() : SP_ERR_RUNTIME;
    *out = results_of(r, fn);
    sp_value_release(r);
    return *out ? SP_OK : sp_last_status();
}

/* ---- gradients ---------------------------------------------------------------- */

static sp_node *konst(sp_graph *g, sp_value *v, sp_loc loc) {
    if (!v) return NULL;
    sp_node *n = ir_const_new(g, v, loc);
    sp_value_release(v);
    return n;
}

static sp_node *apply3(sp_graph *g, sp_node *a, sp_node *b, sp_node *c, sp_loc loc) {
    if (!a || !b || !c) return NULL;
    sp_node *in[3] = {a, b, c};
    return ir_apply_new(g, 3, in, loc);
}

/* Builds (once) the module-level graph
 *     def <name>(params of f...): return spore.value_and_grad(f, grad_position=wrt)(params...)
 * and returns its name, interned in the module; NULL + error. */
static const char *prog_grad_entry(sp_program *p, sp_graph *f, int n, int n_wrt, const int *wrt) {
    char name[256];
    int k = snprintf(name, sizeof name, "__grad_%s", f->name);
    for (int i = 0; i < n_wrt && k < (int)sizeof name; i++) k += snprintf(name + k, sizeof name - (size_t)k, "_%d", wrt[i]);
    if (k < (int)sizeof name) k += snprintf(name + k, sizeof name - (size_t)k, "_n%d", n);
    if (k >= (int)sizeof name) {
        sp_error(SP_ERR_ARG, "sp_program_grad: %s: too many positions", f->name);
        return NULL;
    }
    sp_module *m = p->m;
    sp_value *have = ir_module_get_global(m, name);
    if (have && have->kind == SP_V_GRAPH) return have->u.graph->name;

    sp_loc loc = f->loc;
    sp_graph *w = ir_graph_new(m, name, NULL, loc);
    if (!w) return NULL;
    sp_node **call = malloc(sizeof *call * (size_t)(n + 1));
    sp_value **pos = malloc(sizeof *pos * (size_t)(n_wrt ? n_wrt : 1));
    int ok = call && pos;
    int n_pos = 0;
    for (int i = 0; ok && i < n_wrt; i++, n_pos++) ok = (pos[i] = sp_value_int(wrt[i])) != NULL;
    for (int i = 0; ok && i < n; i++) {
        sp_loc ploc;
        char pname[32];
        const char *fname = prog_param_name(f, i, &ploc);
        if (f->has_varargs && i >= f->n_params - 1) {
            snprintf(pname, sizeof pname, "arg%d", i);
            fname = pname;
        }
        ok = (call[i + 1] = ir_param_new(w, fname, loc)) != NULL;
    }
    if (ok) {
        sp_node *vg = apply3(w, konst(w, sp_value_builtin(RT_B_GETATTR), loc),
                             konst(w, sp_value_module(SP_MOD_SPORE), loc),
                             konst(w, sp_value_str("value_and_grad", 14), loc), loc);
        sp_node *kw = apply3(w, konst(w, sp_value_builtin(RT_B_MAKE_KEYWORD), loc),
                             konst(w, sp_value_str("grad_position", 13), loc),
                             konst(w, sp_value_tuple(n_pos, pos), loc), loc);
        sp_node *fg = apply3(w, vg, konst(w, sp_value_graph(f), loc), kw, loc);
        call[0] = fg;
        w->output = fg ? ir_apply_new(w, n + 1, call, loc) : NULL;
        ok = w->output != NULL;
    }
    for (int i = 0; pos && i < n_pos; i++) sp_value_release(pos[i]);
    free(pos);
    free(call);
    if (!ok) {
        if (!sp_last_status()) sp_error(SP_ERR_NOMEM, "sp_program_grad: out of memory");
        return NULL;
    }
    /* an unfinished graph stays in the arena unnamed if this fails: it is
     * unreachable and freed with the module */
    sp_value *gv = sp_value_graph(w);
    sp_status st = gv ? ir_module_set_global(m, name, gv) : SP_ERR_NOMEM;
    sp_value_release(gv);
    if (!st) st = ir_module_finalize(m);
    return st ? NULL : w->name;
}

sp_status sp_program_grad(sp_program *p, const char *fn, int n, const sp_arg *args, int n_wrt,
                          const int *wrt, sp_results **value, sp_results **grads) {
    if (value) *value = NULL;
    if (grads) *grads = NULL;
    sp_graph *g = prog_function(p, fn, "sp_program_grad");
    if (!g) return sp_last_status();
    sp_status st = prog_check_args(p, g, n, args);
    if (st) return st;
    if (n_wrt < 1 || !wrt)
        return sp_error(SP_ERR_ARG, "sp_program_grad: %s: no argument positions to differentiate with respect to",
                        fn);
    for (int i = 0; i < n_wrt; i++) {
        if (wrt[i] < 0 || wrt[i] >= n)
            return sp_error(SP_ERR_ARG, "sp_program_grad: %s: position %d is out of range for a call with %d argument%s",
                            fn, wrt[i], n, n == 1 ? "" : "s");
        const sp_arg *a = &args[wrt[i]];
        int is_float = a->kind == SP_ARG_FLOAT || (a->kind == SP_ARG_TENSOR && sp_dtype_is_float(a->u.t->dtype));
        if (!is_float) {
            sp_loc loc;
            const char *pname = prog_param_name(g, wrt[i], &loc);
            char what[64];
            if (a->kind == SP_ARG_TENSOR)
                snprintf(what, sizeof what, "a %s tensor", sp_dtype_name(a->u.t->dtype));
            else
                snprintf(what, sizeof what, "%s", kind_name(a->kind));
            return sp_error_at(p->m, loc, SP_ERR_TYPE,
                               "%s: parameter '%s' (argument %d) is %s; gradients are taken with respect to "
                               "floating-point tensors and floats", fn, pname, wrt[i] + 1, what);
        }
    }
    const char *entry = prog_grad_entry(p, g, n, n_wrt, wrt);
    if (!entry) return sp_last_status() ? sp_last_status() : SP_ERR_INTERNAL;
    sp_value **v = prog_values(n, args);
    if (!v) return sp_last_status();
    sp_value *r = prog_exec(p, entry, n, v);
    prog_values_free(n, v);
    if (!r) return sp_last_status() ? sp_last_status() : SP_ERR_RUNTIME;
    if (r->kind != SP_V_TUPLE || r->u.seq.n != 2) {
        sp_value_release(r);
        return sp_error(SP_ERR_INTERNAL, "sp_program_grad: %s: value_and_grad returned no (value, grads) pair", fn);
    }
    sp_results *rv = results_of(r->u.seq.items[0], fn);
    sp_results *rg = rv ? results_of(r->u.seq.items[1], fn) : NULL;
    sp_value_release(r);
    if (!rg) {
        sp_results_free(rv);
        return sp_last_status();
    }
    if (rv->n != 1 || rg->n != n_wrt) {
        sp_results_free(rv);
        sp_results_free(rg);
        return sp_error(SP_ERR_INTERNAL, "sp_program_grad: %s: unexpected result structure", fn);
    }
    if (value)
        *value = rv;
    else
        sp_results_free(rv);
    if (grads)
        *grads = rg;
    else
        sp_results_free(rg);
    return SP_OK;
}

/* ---- results ------------------------------------------------------------------ */

int sp_results_count(const sp_results *r) { return r ? r->n : 0; }

sp_tensor *sp_results_get(const sp_results *r, int i) {
    if (!r || i < 0 || i >= r->n) {
        sp_error(SP_ERR_ARG, "sp_results_get: index %d out of range (%d result%s)", i, r ? r->n : 0,
                 r && r->n == 1 ? "" : "s");
        return NULL;
    }
    return r->t[i];
}

sp_tensor *sp_results_take(const sp_results *r, int i) {
    sp_tensor *t = sp_results_get(r, i);
    if (t) sp_tensor_retain(t);
    return t;
}

void sp_results_free(sp_results *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) sp_tensor_release(r->t[i]);
    free(r->t);
    free(r);
}

/* ---- parameters ---------------------------------------------------------------- */

static int is_callable_kind(sp_vkind k) {
    return k == SP_V_GRAPH || k == SP_V_CLOSURE || k == SP_V_PARTIAL || k == SP_V_PRIM || k == SP_V_BUILTIN ||
           k == SP_V_MODULE;
}

/* Appends to *list every constant node of the module's graphs that holds
 * `old`; the array grows with realloc.  SP_OK or SP_ERR_NOMEM. */
static sp_status collect_const(sp_node *x, const sp_value *old, sp_node ***list, int *n, int *cap) {
    if (!x || x->kind != SP_NODE_CONST || x->value != old) return SP_OK;
    for (int i = 0; i < *n; i++)
        if ((*list)[i] == x) return SP_OK;
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 16;
        sp_node **grown = realloc(*list, sizeof *grown * (size_t)c);
        if (!grown) return sp_error(SP_ERR_NOMEM, "sp_program_set_global: out of memory");
        *list = grown;
        *cap = c;
    }
    (*list)[(*n)++] = x;
    return SP_OK;
}

sp_status sp_program_set_global(sp_program *p, const char *name, sp_tensor *t) {
    if (!p || !name || !t)
        return sp_error(SP_ERR_ARG, "sp_program_set_global: NULL %s", !p ? "program" : !name ? "name" : "tensor");
    sp_module *m = p->m;
    sp_value *old = ir_module_get_global(m, name);
    if (!old)
        return sp_error(SP_ERR_ARG,
                        "%s: no module-level name '%s' to set (declare the parameter in the source, "
                        "e.g. `%s = None`)", m->file, name, name);
    if (is_callable_kind(old->kind))
        return sp_error(SP_ERR_TYPE, "%s: '%s' is not a parameter (it holds a value of type %s)", m->file, name,
                        sp_value_kind_name(old));
    for (int i = 0; i < m->n_globals; i++)
        if (m->global_values[i] == old && strcmp(m->global_names[i], name) != 0)
            return sp_error(SP_ERR_ARG,
                            "%s: '%s' is bound to the same value as '%s' (`%s = %s`); give each parameter "
                            "its own literal", m->file, name, m->global_names[i], name, m->global_names[i]);
    /* phase 1: everything that can fail */
    sp_node **list = NULL;
    int n = 0, cap = 0;
    sp_status st = SP_OK;
    for (int gi = 0; gi < m->n_graphs && !st; gi++) {
        sp_graph *g = m->graphs[gi];
        if (!g->output) continue;
        int nn;
        sp_node **nodes = ir_graph_nodes(g, &nn);
        if (!nodes) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            break;
        }
        for (int i = 0; i < nn && !st; i++) {
            sp_node *x = nodes[i];
            st = collect_const(x, old, &list, &n, &cap);
            for (int k = 0; x->kind == SP_NODE_APPLY && k < x->n_inputs && !st; k++)
                st = collect_const(x->inputs[k], old, &list, &n, &cap);
        }
        if (!st) st = collect_const(g->output, old, &list, &n, &cap);
        free(nodes);
    }
    sp_value *nv = st ? NULL : sp_value_tensor(t);
    if (!st && !nv) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    if (!st) st = ir_module_set_global(m, name, nv); /* the global keeps the old value on failure */
    if (st) {
        sp_value_release(nv);
        free(list);
        return st;
    }
    /* phase 2: cannot fail.  `old` stays alive until the last node lets go
     * of it (the global's reference went in ir_module_set_global). */
    for (int i = 0; i < n; i++) {
        sp_value *prev = list[i]->value;
        sp_value_retain(nv);
        list[i]->value = nv;
        sp_value_release(prev);
    }
    sp_value_release(nv);
    free(list);
    /* compiled programs have the old value folded in */
    sp_compile_cache_free(p->cache);
    p->cache = NULL;
    return SP_OK;
}

sp_tensor *sp_program_get_global(sp_program *p, const char *name) {
    if (!p || !name) {
        sp_error(SP_ERR_ARG, "sp_program_get_global: NULL %s", p ? "name" : "program");
        return NULL;
    }
    sp_value *v = ir_module_get_global(p->m, name);
    if (!v) {
        sp_error(SP_ERR_ARG, "%s: no module-level name '%s'", p->m->file, name);
        return NULL;
    }
    if (v->kind != SP_V_TENSOR) {
        if (v->kind == SP_V_NONE)
            sp_error(SP_ERR_TYPE, "%s: '%s' is None, not a tensor (it was never set)", p->m->file, name);
        else
            sp_error(SP_ERR_TYPE, "%s: '%s' holds a %s, not a tensor", p->m->file, name, sp_value_kind_name(v));
        return NULL;
    }
    sp_tensor_retain(v->u.tensor);
    return v->u.tensor;
}

int sp_program_global_count(const sp_program *p) {
    int n = 0;
    for (int i = 0; p && i < p->m->n_globals; i++) n += p->m->global_values[i]->kind == SP_V_TENSOR;
    return n;
}

const char *sp_program_global_name(const sp_program *p, int i) {
    for (int k = 0, seen = 0; p && k < p->m->n_globals; k++)
        if (p->m->global_values[k]->kind == SP_V_TENSOR && seen++ == i) return p->m->global_names[k];
    sp_error(SP_ERR_ARG, "sp_program_global_name: index %d out of range (%d tensor globals)", i,
             sp_program_global_count(p));
    return NULL;
}
