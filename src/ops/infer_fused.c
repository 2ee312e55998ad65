/*
 * infer_fused.c -- the program of fused_elementwise: parsing, and inference
 * by running each step primitive's own inference (the grammar and the
 * semantics are in fused.h).
 *
 * Inference does not re-derive any rule: a step's operands become metas
 * (an input's, an earlier step's, or a 0-d meta of the literal's weak
 * dtype) and sp_op_infer of the step's primitive decides its dtype and
 * shape, with the errors that primitive gives.  So a fused call accepts
 * exactly the inputs its unfused chain accepts and types every
 * intermediate the same way; the kernels (CPU fused.c, CUDA fused.cu) read
 * the resolved step metas and never decide a dtype themselves.
 *
 * The parser is strict: an unknown primitive, one that is not elementwise
 * (ops.def flag SP_OPF_ELEMWISE), a random one, a stack that underflows or
 * does not end with exactly one value, a bad literal or attribute, more
 * than SP_FUSED_MAX_STEPS steps: each is an error naming the token, never a
 * crash, since the program is a string any user may write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ops/fused.h"
#include "ops/infer.h"

#define FU "fused_elementwise"

void sp_fused_free(sp_fused_prog *p) {
    if (!p) return;
    free(p->text);
    free(p);
}

/* Parses one attribute value into a: dtype for `dtype`, else int, float or
 * string by the literal's form. */
static sp_status fu_attr_value(sp_attr *a, char *v) {
    if (!*v) return sp_error(SP_ERR_ARG, FU ": attribute %s has no value", a->name);
    if (strcmp(a->name, "dtype") == 0) {
        sp_dtype d;
        if (sp_dtype_parse(v, &d) != SP_OK) return sp_last_status();
        a->kind = SP_ATTR_DTYPE;
        a->i = d;
        return SP_OK;
    }
    char *end;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (!*end && errno == 0) {
        a->kind = SP_ATTR_INT;
        a->i = i;
        a->f = (double)i;
        return SP_OK;
    }
    errno = 0;
    double f = strtod(v, &end);
    if (!*end) {
        a->kind = SP_ATTR_FLOAT;
        a->f = f;
        return SP_OK;
    }
    a->kind = SP_ATTR_STR;
    a->s = v;
    return SP_OK;
}

/* "op" or "op{k=v,...}" (tok is modified in place: it lives in p->text). */
static sp_status fu_parse_op(sp_fused_step *s, char *tok, int pos) {
    char *brace = strchr(tok, '{');
    if (brace) {
        size_t n = strlen(brace);
        if (n < 2 || brace[n - 1] != '}')
            return sp_error(SP_ERR_ARG, FU ": token %d '%s': attributes must end with '}'", pos, tok);
        brace[n - 1] = '\0';
        *brace = '\0';
        char *list = brace + 1;
        while (*list) {
            char *comma = strchr(list, ',');
            if (comma) *comma = '\0';
            char *eq = strchr(list, '=');
            if (!eq || eq == list)
                return sp_error(SP_ERR_ARG, FU ": token %d: attribute '%s' is not name=value", pos, list);
            if (s->n_attrs == SP_FUSED_MAX_STEP_ATTRS)
                return sp_error(SP_ERR_ARG, FU ": token %d: more than %d attributes", pos,
                                SP_FUSED_MAX_STEP_ATTRS);
            *eq = '\0';
            sp_attr *a = &s->attr[s->n_attrs++];
            memset(a, 0, sizeof *a);
            a->name = list;
            for (int k = 0; k < s->n_attrs - 1; k++)
                if (strcmp(s->attr[k].name, list) == 0)
                    return sp_error(SP_ERR_ARG, FU ": token %d: attribute %s given twice", pos, list);
            sp_status st = fu_attr_value(a, eq + 1);
            if (st) return st;
            if (!comma) break;
            list = comma + 1;
        }
    }
    int op = -1;
    for (int k = 0; k < SP_OP_COUNT; k++)
        if (strcmp(sp_op_defs[k].name, tok) == 0) op = k;
    if (op < 0) return sp_error(SP_ERR_ARG, FU ": token %d: no primitive called '%s'", pos, tok);
    const sp_op_def *d = &sp_op_defs[op];
    if (!(d->flags & SP_OPF_ELEMWISE) || (d->flags & (SP_OPF_RANDOM | SP_OPF_INPLACE)) ||
        d->n_in < 1 || d->n_in > 3 || d->n_out != 1)
        return sp_error(SP_ERR_ARG, FU ": token %d: %s is not an elementwise primitive", pos, tok);
    s->op = op;
    s->n_args = d->n_in;
    return SP_OK;
}

static sp_status fu_parse_literal(sp_fused_arg *a, const char *tok, int pos) {
    char *end;
    errno = 0;
    a->kind = SP_FARG_LIT;
    if (tok[0] == 'f') {
        a->lit_kind = SP_FLIT_FLOAT;
        a->f = strtod(tok + 2, &end);
    } else {
        a->lit_kind = tok[0] == 'n' ? SP_FLIT_INT : SP_FLIT_BOOL;
        a->i = strtoll(tok + 2, &end, 10);
        if (errno == ERANGE) end = (char *)tok; /* out of int64 */
        if (a->lit_kind == SP_FLIT_BOOL && a->i != 0 && a->i != 1) end = (char *)tok;
    }
    if (!tok[2] || *end)
        return sp_error(SP_ERR_ARG, FU ": token %d '%s' is not a literal", pos, tok);
    return SP_OK;
}

sp_fused_prog *sp_fused_parse(const char *text) {
    if (!text) {
        sp_error(SP_ERR_ARG, FU ": the program is NULL");
        return NULL;
    }
    sp_fused_prog *p = calloc(1, sizeof *p);
    char *t = p ? strdup(text) : NULL;
    if (!t) {
        free(p);
        sp_error(SP_ERR_NOMEM, FU ": out of memory");
        return NULL;
    }
    p->text = t;
    p->max_input = -1;
    p->reduce_op = -1;
    /* the stack: each entry an operand; step results know their slot */
    sp_fused_arg stack[SP_FUSED_MAX_STEPS * 3 + 1];
    int sp = 0, pos = 0;
    sp_status st = SP_OK;
    char *save = NULL;
    for (char *tok = strtok_r(t, " ", &save); tok && !st; tok = strtok_r(NULL, " ", &save), pos++) {
        sp_fused_arg a;
        memset(&a, 0, sizeof a);
        if (tok[0] == 'i' && tok[1] >= '0' && tok[1] <= '9') {
            char *end;
            errno = 0;
            long k = strtol(tok + 1, &end, 10);
            if (*end || errno || k >= SP_MAX_INPUTS) {
                st = sp_error(SP_ERR_ARG, FU ": token %d '%s' is not an input", pos, tok);
                break;
            }
            a.kind = SP_FARG_INPUT;
            a.index = (int)k;
            if (k > p->max_input) p->max_input = (int)k;
        } else if ((tok[0] == 'f' || tok[0] == 'n' || tok[0] == 'b') && tok[1] == ':') {
            st = fu_parse_literal(&a, tok, pos);
            if (st) break;
        } else {
            if (p->n_steps == SP_FUSED_MAX_STEPS) {
                st = sp_error(SP_ERR_ARG, FU ": more than %d steps", SP_FUSED_MAX_STEPS);
                break;
            }
            sp_fused_step *s = &p->step[p->n_steps];
            st = fu_parse_op(s, tok, pos);
            if (st) break;
            if (sp < s->n_args) {
                st = sp_error(SP_ERR_ARG, FU ": token %d: %s needs %d operands, the stack has %d",
                              pos, tok, s->n_args, sp);
                break;
            }
            sp -= s->n_args;
            memcpy(s->arg, &stack[sp], sizeof(sp_fused_arg) * (size_t)s->n_args);
            /* the result takes the stack position of its first operand;
             * slots count step results below it */
            int slot = 0;
            for (int k = 0; k < sp; k++) slot += stack[k].kind == SP_FARG_STEP;
            s->slot = slot;
            if (slot + 1 > p->n_slots) p->n_slots = slot + 1;
            a.kind = SP_FARG_STEP;
            a.index = p->n_steps++;
        }
        if (sp == (int)(sizeof stack / sizeof stack[0])) {
            st = sp_error(SP_ERR_ARG, FU ": the program's stack is too deep");
            break;
        }
        stack[sp++] = a;
    }
    if (!st && p->n_steps == 0) st = sp_error(SP_ERR_ARG, FU ": the program has no primitive");
    if (!st && (sp != 1 || stack[0].kind != SP_FARG_STEP || stack[0].index != p->n_steps - 1))
        st = sp_error(SP_ERR_ARG, FU ": the program must leave exactly its last step's result, "
                                  "not %d values", sp);
    if (st) {
        sp_fused_free(p);
        return NULL;
    }
    return p;
}

void sp_fused_step_attrs(const sp_fused_step *s, sp_attrs *out) {
    out->n = s->n_attrs;
    for (int k = 0; k < s->n_attrs; k++) out->a[k] = s->attr[k];
}

sp_status sp_fused_resolve(sp_fused_prog *p, int n_in, const sp_meta *in, const sp_attrs *attrs) {
    if (p->max_input >= n_in)
        return sp_error(SP_ERR_ARG, FU ": the program reads input %d of %d", p->max_input, n_in);
    for (int i = 0; i < p->n_steps; i++) {
        sp_fused_step *s = &p->step[i];
        sp_meta m[3];
        /* a literal takes the dtype of the step's first tensor operand */
        int weak = -1;
        for (int k = 0; k < s->n_args && weak < 0; k++) {
            const sp_fused_arg *a = &s->arg[k];
            if (a->kind == SP_FARG_INPUT) weak = in[a->index].dtype;
            if (a->kind == SP_FARG_STEP) weak = p->step[a->index].meta.dtype;
        }
        if (weak < 0) /* all literals: the fold pass's business, not a kernel's */
            return sp_error(SP_ERR_ARG, FU ": step %d (%s) has no tensor operand", i,
                            sp_op_defs[s->op].name);
        s->lit_dtype = (sp_dtype)weak;
        for (int k = 0; k < s->n_args; k++) {
            const sp_fused_arg *a = &s->arg[k];
            if (a->kind == SP_FARG_INPUT) m[k] = in[a->index];
            else if (a->kind == SP_FARG_STEP) m[k] = p->step[a->index].meta;
            else ops_meta_set(&m[k], s->lit_dtype, 0, NULL);
        }
        sp_attrs sa;
        sp_fused_step_attrs(s, &sa);
        int n_out = 0;
        sp_meta out[SP_MAX_OUTPUTS];
        sp_status st = sp_op_infer(s->op, s->n_args, m, &sa, &n_out, out);
        if (st) return st;
        s->meta = out[0];
    }
    p->elem = p->step[p->n_steps - 1].meta;
    p->out = p->elem;
    p->reduce_op = -1;
    const sp_attr *r = sp_attrs_find(attrs, "reduce");
    if (r) {
        static const char *const names[] = {"sum", "mean", "max", "min"};
        static const int ops[] = {SP_OP_SUM, SP_OP_MEAN, SP_OP_MAX, SP_OP_MIN};
        for (int k = 0; k < 4 && r->kind == SP_ATTR_STR; k++)
            if (strcmp(r->s, names[k]) == 0) p->reduce_op = ops[k];
        if (p->reduce_op < 0)
            return sp_error(SP_ERR_ARG, FU ": reduce must be \"sum\", \"mean\", \"max\" or \"min\"");
        sp_attrs ra;
        sp_attrs_init(&ra);
        const sp_attr *ax = sp_attrs_find(attrs, "axes"), *kd = sp_attrs_find(attrs, "keepdims");
        if (ax) ra.a[ra.n++] = *ax;
        if (kd) ra.a[ra.n++] = *kd;
        int n_out = 0;
        sp_meta out[SP_MAX_OUTPUTS];
        sp_status st = sp_op_infer(p->reduce_op, 1, &p->elem, &ra, &n_out, out);
        if (st) return st;
        p->out = out[0];
    }
    return SP_OK;
}

sp_fused_prog *sp_fused_prepare(int n_in, const sp_meta *in, const sp_attrs *attrs) {
    const sp_attr *a = sp_attrs_find(attrs, "program");
    if (!a || a->kind != SP_ATTR_STR) {
        sp_error(SP_ERR_ARG, FU ": missing string attribute 'program'");
        return NULL;
    }
    sp_fused_prog *p = sp_fused_parse(a->s);
    if (p && sp_fused_resolve(p, n_in, in, attrs) != SP_OK) {
        sp_fused_free(p);
        return NULL;
    }
    return p;
}

sp_status infer_fused(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                      int *n_out, sp_meta *out) {
    (void)def;
    sp_fused_prog *p = sp_fused_prepare(n_in, in, attrs);
    if (!p) return sp_last_status();
    out[0] = p->out;
    *n_out = 1;
    sp_fused_free(p);
    return SP_OK;
}
