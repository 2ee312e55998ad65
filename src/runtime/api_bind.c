/*
 * api_bind.c -- the functional API's table parsed once, and the binding of
 * a call's arguments to a row's parameters (api.def's rules).
 *
 * Every row's parameter string is parsed on the first call of any API
 * function (pthread_once) into api_specs[]: the parameters with their kinds
 * decoded and their defaults as values that live as long as the process,
 * and an open-addressed hash of the qualified names ("ops.sum").  After that
 * the table is read-only, so threads share it without a lock, and a call
 * costs a hash probe and a bind into an api_call on the caller's stack: no
 * parsing, no allocation of its own (a *args tuple aside), no formatting --
 * the "ops.sum() argument 'x'" subject of a message is written only when
 * there is an error to report.
 *
 * Binding follows Python: positionals fill the parameters in order up to
 * the keyword-only marker, keywords match a parameter by any of its names,
 * a missing parameter takes its default or is an error naming it, an
 * unknown or repeated keyword is an error.  The defaults are shared between
 * calls and threads; values are immutable and their counts atomic, so a
 * borrowed default is as good as a fresh one.
 *
 * The GENERIC path (api_run_generic) turns the bound tensors into the
 * primitive's inputs and the rest into its attributes; api.c's impl
 * functions build on the same pieces.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "runtime/api_internal.h"

const char *api_module_prefix(int module) {
    switch (module) {
    case MOD_SPORE: return "spore";
    case MOD_OPS: return "ops";
    case MOD_MATH: return "math";
    case MOD_TENSOR: return "Tensor";
    default: return "?";
    }
}

/* ---- the parsed table ------------------------------------------------------------ */

#define API_HASH_SLOTS 1024 /* a power of two, well over twice the rows */

static api_spec api_specs[API_N_ROWS];
static short api_hash[API_HASH_SLOTS];   /* row + 1, 0 = empty */
static int api_init_failed;              /* out of memory at init: every call fails */
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static uint32_t api_hash_str(const char *s, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static api_kind kind_of(const char *s, size_t n) {
    static const struct {
        const char *s;
        api_kind k;
    } kinds[] = {{"T", API_K_T},   {"T?", API_K_TOPT}, {"Ts", API_K_TS},     {"i", API_K_I},
                 {"f", API_K_F},   {"b", API_K_B},     {"s", API_K_S},       {"dt", API_K_DT},
                 {"ints", API_K_INTS}, {"ints2", API_K_INTS2}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strlen(kinds[i].s) == n && !strncmp(kinds[i].s, s, n)) return kinds[i].k;
    return API_K_V;
}

static sp_value *parse_default(const char *s, int n) {
    char buf[64];
    if (n >= (int)sizeof buf) n = (int)sizeof buf - 1;
    memcpy(buf, s, (size_t)n);
    buf[n] = '\0';
    if (!strcmp(buf, "None")) return sp_value_none();
    if (!strcmp(buf, "True")) return sp_value_bool(1);
    if (!strcmp(buf, "False")) return sp_value_bool(0);
    if (buf[0] == '\'') return sp_value_str(buf + 1, n >= 2 ? (size_t)n - 2 : 0);
    if (strpbrk(buf, ".eE")) return sp_value_float(strtod(buf, NULL));
    return sp_value_int(strtoll(buf, NULL, 10));
}

/* Parses row r's parameter string into s->p (room for API_MAX_PARAMS);
 * 0, or -1 when the string is malformed (s->bad) or a default could not
 * be made (no memory). */
static int parse_params(const api_row *r, api_spec *s) {
    const char *t = r->params;
    int kwonly = 0;
    s->n = 0;
    s->va = -1;
    s->max_pos = 0;
    while (*t) {
        while (*t == ' ' || *t == ',') t++;
        if (!*t) break;
        const char *e = t;
        int quote = 0;
        while (*e && (quote || *e != ',')) {
            if (*e == '\'') quote = !quote;
            e++;
        }
        if (e - t == 1 && *t == '*') {
            kwonly = 1;
            t = e;
            continue;
        }
        if (s->n == API_MAX_PARAMS) goto bad;
        api_param *p = &s->p[s->n++];
        memset(p, 0, sizeof *p);
        p->kwonly = kwonly;
        if (*t == '*') {
            p->varargs = 1;
            s->va = s->n - 1;
            kwonly = 1;
            t++;
        }
        for (;;) { /* names */
            const char *q = t;
            while (q < e && *q != '|' && *q != ':') q++;
            if (p->n_names == API_MAX_NAMES || q - t >= API_NAME_LEN || q == t) goto bad;
            memcpy(p->names[p->n_names], t, (size_t)(q - t));
            p->names[p->n_names++][q - t] = '\0';
            t = q;
            if (*t != '|') break;
            t++;
        }
        if (*t != ':') goto bad;
        t++;
        const char *q = t;
        while (q < e && *q != '>' && *q != '=') q++;
        p->kind = kind_of(t, (size_t)(q - t));
        t = q;
        if (*t == '>') {
            t++;
            q = t;
            while (q < e && *q != '=') q++;
            if (q - t >= API_NAME_LEN) goto bad;
            memcpy(p->attr, t, (size_t)(q - t));
            t = q;
        }
        if (*t == '=' && !(p->dflt = parse_default(t + 1, (int)(e - t - 1)))) return -1;
        if (!p->kwonly && !p->varargs) s->max_pos++;
        t = e;
    }
    return 0;
bad:
    s->bad = 1;
    return -1;
}

/* Fills api_specs and api_hash (once, under api_once). */
static void api_specs_init(void) {
    for (int i = 0; i < API_N_ROWS; i++) {
        const api_row *r = &api_rows[i];
        api_spec *s = &api_specs[i];
        api_param tmp[API_MAX_PARAMS];
        snprintf(s->qname, sizeof s->qname, "%s.%s", api_module_prefix(r->module), r->name);
        s->p = tmp;
        if (parse_params(r, s) && !s->bad) api_init_failed = 1;
        /* kept for the life of the process, like the table itself */
        s->p = malloc(sizeof *s->p * (size_t)(s->n ? s->n : 1));
        if (!s->p) {
            api_init_failed = 1;
            s->n = 0;
        } else {
            memcpy(s->p, tmp, sizeof *s->p * (size_t)s->n);
        }
        size_t n = strlen(s->qname);
        uint32_t h = api_hash_str(s->qname, n) & (API_HASH_SLOTS - 1);
        while (api_hash[h]) h = (h + 1) & (API_HASH_SLOTS - 1);
        api_hash[h] = (short)(i + 1);
    }
}

/* The row index of the qualified name q[0..n) ("ops.sum"), or -1. */
static int find_index(const char *q, size_t n) {
    pthread_once(&api_once, api_specs_init);
    uint32_t h = api_hash_str(q, n) & (API_HASH_SLOTS - 1);
    for (int i; (i = api_hash[h]); h = (h + 1) & (API_HASH_SLOTS - 1))
        if (!strncmp(api_specs[i - 1].qname, q, n) && api_specs[i - 1].qname[n] == '\0') return i - 1;
    return -1;
}

const api_row *api_find_row(int module, const char *name) {
    char q[API_QNAME_LEN];
    int n = snprintf(q, sizeof q, "%s.%s", api_module_prefix(module), name);
    if (n < 0 || n >= (int)sizeof q) return NULL;
    int i = find_index(q, (size_t)n);
    return i < 0 ? NULL : &api_rows[i];
}

/* ---- binding ---------------------------------------------------------------------- */

static int param_named(const api_param *p, const char *name) {
    for (int k = 0; k < p->n_names; k++)
        if (!strcmp(p->names[k], name)) return 1;
    return 0;
}

static int own(api_call *c, sp_value *v) {
    if (!v) return -1;
    c->owned[c->n_owned++] = v;
    return 0;
}

/* Binds args to c's parameters (see the essay). */
static int bind(api_call *c, const api_spec *s, int n, sp_value *const *args) {
    int npos = 0, pi = 0;
    for (int i = 0; i < n; i++)
        if (args[i]->kind != SP_V_KEYWORD) npos++;
    int va = s->va;
    sp_value *small[16], **extra = small;
    int ne = 0;
    if (va >= 0 && npos > (int)(sizeof small / sizeof small[0]) &&
        !(extra = malloc(sizeof *extra * (size_t)npos))) {
        sp_error(SP_ERR_NOMEM, "%s(): out of memory", c->qname);
        return -1;
    }
    int rc = -1;
    for (int i = 0; i < n; i++) {
        const sp_value *a = args[i];
        if (a->kind == SP_V_KEYWORD) {
            int k;
            for (k = 0; k < c->n; k++)
                if (!c->p[k].varargs && param_named(&c->p[k], a->u.kw.name)) break;
            if (k == c->n) {
                sp_error(SP_ERR_TYPE, "%s() got an unexpected keyword argument '%s'", c->qname, a->u.kw.name);
                goto done;
            }
            if (c->v[k]) {
                sp_error(SP_ERR_TYPE, "%s() got multiple values for argument '%s'", c->qname, c->p[k].names[0]);
                goto done;
            }
            c->v[k] = a->u.kw.value;
            continue;
        }
        while (pi < c->n && !c->p[pi].varargs && !c->p[pi].kwonly && c->v[pi]) pi++;
        if (pi < c->n && !c->p[pi].varargs && !c->p[pi].kwonly) {
            c->v[pi++] = a;
        } else if (va >= 0) {
            extra[ne++] = (sp_value *)a;
        } else {
            int max = s->max_pos;
            sp_error(SP_ERR_TYPE, "%s() takes %d positional argument%s but %d %s given", c->qname, max,
                     max == 1 ? "" : "s", npos, npos == 1 ? "was" : "were");
            goto done;
        }
    }
    if (va >= 0) {
        if (own(c, sp_value_tuple(ne, extra))) goto done;
        c->v[va] = c->owned[c->n_owned - 1];
    }
    for (int k = 0; k < c->n; k++) {
        if (c->v[k]) continue;
        if (!c->p[k].dflt) {
            sp_error(SP_ERR_TYPE, "%s() missing required argument '%s'", c->qname, c->p[k].names[0]);
            goto done;
        }
        c->v[k] = c->p[k].dflt;
    }
    rc = 0;
done:
    if (extra != small) free(extra);
    return rc;
}

const sp_value *api_arg(const api_call *c, const char *name) {
    for (int k = 0; k < c->n; k++)
        if (!strcmp(c->p[k].names[0], name)) return c->v[k];
    return NULL;
}


/* Made only when an error is about to be reported. */
const char *api_what(const api_call *c, const char *param, char *buf, size_t size) {
    snprintf(buf, size, "%s() argument '%s'", c->qname, param);
    return buf;
}

/* ---- generic: parameters to inputs and attributes -------------------------------- */

static int is_tensor_kind(const api_param *p) {
    return p->kind == API_K_T || p->kind == API_K_TOPT || p->kind == API_K_TS;
}

/* See api.def: the first non-bool tensor argument's dtype. */
int api_weak_dtype(const api_call *c) {
    for (int k = 0; k < c->n; k++) {
        if (!is_tensor_kind(&c->p[k])) continue;
        const sp_value *v = c->v[k];
        if (v->kind == SP_V_TENSOR && v->u.tensor->dtype != SP_BOOL) return v->u.tensor->dtype;
        if (api_is_seq(v) && c->p[k].kind == API_K_TS)
            for (int i = 0; i < v->u.seq.n; i++)
                if (v->u.seq.items[i]->kind == SP_V_TENSOR && v->u.seq.items[i]->u.tensor->dtype != SP_BOOL)
                    return v->u.seq.items[i]->u.tensor->dtype;
    }
    return -1;
}

/* An int or a tuple/list of plain ints into x (*n of them): 1; 0 when v
 * needs rt_ints_of (tensors, bools, errors). */
static int ints_fast(const sp_value *v, int64_t *x, int *n) {
    if (v->kind == SP_V_INT) {
        x[0] = v->u.i;
        *n = 1;
        return 1;
    }
    if (!api_is_seq(v) || v->u.seq.n > SP_MAX_ATTR_INTS) return 0;
    for (int i = 0; i < v->u.seq.n; i++) {
        if (v->u.seq.items[i]->kind != SP_V_INT) return 0;
        x[i] = v->u.seq.items[i]->u.i;
    }
    *n = v->u.seq.n;
    return 1;
}

int api_attr_from(api_call *c, const api_param *p, const sp_value *v, sp_attrs *a) {
    if (api_is_none(v) || (p->attr[0] == '-' && !p->attr[1])) return 0;
    const char *name = p->attr[0] ? p->attr : p->names[0];
    sp_status st = SP_OK;
    char what[112];
    switch (p->kind) {
    case API_K_I: {
        int64_t x;
        if (v->kind == SP_V_INT || v->kind == SP_V_BOOL) x = v->kind == SP_V_INT ? v->u.i : v->u.b;
        else if (rt_int_of(v, &x, api_what(c, p->names[0], what, sizeof what))) return -1;
        st = sp_attrs_set_int(a, name, x);
        break;
    }
    case API_K_F: {
        double x;
        if (v->kind == SP_V_FLOAT) x = v->u.f;
        else if (v->kind == SP_V_INT) x = (double)v->u.i;
        else if (rt_float_of(v, &x, api_what(c, p->names[0], what, sizeof what))) return -1;
        st = sp_attrs_set_float(a, name, x);
        break;
    }
    case API_K_B: {
        int t = sp_value_truth(v);
        if (t < 0) return -1;
        st = sp_attrs_set_int(a, name, t);
        break;
    }
    case API_K_S:
        if (v->kind != SP_V_STR) {
            sp_error(SP_ERR_TYPE, "%s must be a str, not %s", api_what(c, p->names[0], what, sizeof what),
                     sp_value_kind_name(v));
            return -1;
        }
        st = sp_attrs_set_str(a, name, v->u.str.s);
        break;
    case API_K_DT: {
        sp_dtype d;
        if (v->kind == SP_V_DTYPE) d = v->u.dtype;
        else if (v->kind == SP_V_STR) {
            if (sp_dtype_parse(v->u.str.s, &d) != SP_OK) return -1;
        } else {
            sp_error(SP_ERR_TYPE, "%s must be a dtype such as spore.float32, not %s",
                     api_what(c, p->names[0], what, sizeof what), sp_value_kind_name(v));
            return -1;
        }
        st = sp_attrs_set_dtype(a, name, d);
        break;
    }
    case API_K_INTS:
    case API_K_INTS2: {
        int64_t x[SP_MAX_ATTR_INTS];
        int n;
        if (!ints_fast(v, x, &n) && rt_ints_of(v, x, &n, api_what(c, p->names[0], what, sizeof what))) return -1;
        if (p->kind == API_K_INTS2 && n == 1) x[n++] = x[0];
        st = sp_attrs_set_ints(a, name, n, x);
        break;
    }
    default: return 0; /* v: for the impl function */
    }
    return st == SP_OK ? 0 : -1;
}

/* One tensor input for parameter p's value v (a new reference), NULL + error. */
static sp_tensor *input_of(const api_call *c, const api_param *p, const sp_value *v, int weak) {
    if (v->kind == SP_V_TENSOR) {
        sp_tensor_retain(v->u.tensor);
        return v->u.tensor;
    }
    char what[112];
    return rt_as_tensor(v, weak, api_what(c, p->names[0], what, sizeof what));
}

/* Fills the inputs (new references, *n_in of them) and attributes. */
static int gather_args(api_call *c, sp_tensor **in, int *n_in, sp_attrs *attrs) {
    int weak = api_weak_dtype(c);
    *n_in = 0;
    sp_attrs_init(attrs);
    for (int k = 0; k < c->n; k++) {
        const api_param *p = &c->p[k];
        const sp_value *v = c->v[k];
        if (c->skip & (1u << k)) continue;
        if (!is_tensor_kind(p)) {
            if (api_attr_from(c, p, v, attrs)) goto fail;
            continue;
        }
        if (p->kind == API_K_TOPT && api_is_none(v)) continue;
        if (p->kind == API_K_TS) {
            char what[112];
            if (!api_is_seq(v)) {
                sp_error(SP_ERR_TYPE, "%s must be a tuple or list of tensors, not %s",
                         api_what(c, p->names[0], what, sizeof what), sp_value_kind_name(v));
                goto fail;
            }
            for (int i = 0; i < v->u.seq.n; i++) {
                if (*n_in == SP_MAX_INPUTS) {
                    sp_error(SP_ERR_ARG, "%s: more than %d tensors", api_what(c, p->names[0], what, sizeof what),
                             SP_MAX_INPUTS);
                    goto fail;
                }
                if (!(in[*n_in] = input_of(c, p, v->u.seq.items[i], weak))) goto fail;
                (*n_in)++;
            }
            continue;
        }
        if (*n_in == SP_MAX_INPUTS) goto fail;
        if (!(in[*n_in] = input_of(c, p, v, weak))) goto fail;
        (*n_in)++;
    }
    return 0;
fail:
    for (int i = 0; i < *n_in; i++) sp_tensor_release(in[i]);
    *n_in = 0;
    return -1;
}

sp_value *api_run_generic(api_call *c, int prim) {
    sp_tensor *in[SP_MAX_INPUTS];
    int n_in;
    sp_attrs attrs;
    if (gather_args(c, in, &n_in, &attrs)) return NULL;
    sp_value *r = rt_op(prim, n_in, in, &attrs);
    for (int i = 0; i < n_in; i++) sp_tensor_release(in[i]);
    return r;
}

/* ---- entry points ---------------------------------------------------------------- */

sp_value *rt_api_call(int n, sp_value *const *args) {
    if (n < 1 || args[0]->kind != SP_V_STR) {
        sp_error(SP_ERR_TYPE, "api(): the first argument must be the function's name");
        return NULL;
    }
    const char *q = args[0]->u.str.s;
    int i = find_index(q, args[0]->u.str.len);
    if (api_init_failed) {
        sp_error(SP_ERR_NOMEM, "%s(): out of memory (building the API table)", q);
        return NULL;
    }
    if (i < 0) {
        sp_error(SP_ERR_ARG, "no API function '%s'", q);
        return NULL;
    }
    const api_spec *s = &api_specs[i];
    if (s->bad) {
        sp_error(SP_ERR_INTERNAL, "api.def: bad parameter list for %s: \"%s\"", s->qname, api_rows[i].params);
        return NULL;
    }
    api_call c;
    c.row = &api_rows[i];
    c.qname = s->qname;
    c.n = s->n;
    c.p = s->p;
    c.skip = 0;
    c.n_owned = 0;
    memset(c.v, 0, sizeof c.v);
    sp_value *r = NULL;
    if (!bind(&c, s, n - 1, args + 1)) r = c.row->impl ? c.row->impl(&c) : api_run_generic(&c, c.row->prim);
    for (int k = 0; k < c.n_owned; k++) sp_value_release(c.owned[k]);
    return r;
}

