/*
 * attrs.c -- named attributes of a primitive call (axis, stride, epsilon...).
 *
 * An sp_attrs is a small fixed array of (name, kind, value) on the caller's
 * stack: no allocation, nothing to free, cheap to copy.  Names and strings
 * are borrowed; they must outlive every call that reads the set.  Setting a
 * name that is already there replaces it in place (kind included), so a set
 * never holds two attributes of one name and lookups can stop at the first.
 *
 * Readers are forgiving about representation and strict about meaning: an
 * int reads as a float, a float with an integral value reads as an int, a
 * single int reads as a list of one, a one-element list reads as an int.
 * A value of the wrong kind altogether (a string where an int is wanted)
 * reads as absent, so the default applies; inference functions that need
 * an attribute check sp_attrs_find themselves and name what is missing.
 *
 * Lists longer than SP_MAX_ATTR_INTS and full sets are the only failures
 * (SP_ERR_ARG), and they leave the set unchanged.
 */
#include <math.h>
#include <string.h>

#include "spore/ops.h"

void sp_attrs_init(sp_attrs *a) {
    if (a) a->n = 0;
}

/* The slot for `name`: the existing one, or a fresh one at the end.  NULL
 * (and an error) when the set is full or the arguments are bad. */
static sp_attr *attrs_slot(sp_attrs *a, const char *name) {
    if (!a || !name) {
        sp_error(SP_ERR_ARG, "attrs: NULL %s", a ? "attribute name" : "attribute set");
        return NULL;
    }
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->a[i].name, name) == 0) return &a->a[i];
    if (a->n >= SP_MAX_ATTRS) {
        sp_error(SP_ERR_ARG, "attrs: cannot add '%s': the set already holds %d attributes",
                 name, SP_MAX_ATTRS);
        return NULL;
    }
    sp_attr *s = &a->a[a->n++];
    memset(s, 0, sizeof *s);
    s->name = name;
    return s;
}

static void attrs_reset(sp_attr *s, sp_attr_kind kind) {
    const char *name = s->name;
    memset(s, 0, sizeof *s);
    s->name = name;
    s->kind = kind;
}

sp_status sp_attrs_set_int(sp_attrs *a, const char *name, int64_t v) {
    sp_attr *s = attrs_slot(a, name);
    if (!s) return sp_last_status();
    attrs_reset(s, SP_ATTR_INT);
    s->i = v;
    s->f = (double)v;
    return SP_OK;
}

sp_status sp_attrs_set_float(sp_attrs *a, const char *name, double v) {
    sp_attr *s = attrs_slot(a, name);
    if (!s) return sp_last_status();
    attrs_reset(s, SP_ATTR_FLOAT);
    s->f = v;
    return SP_OK;
}

sp_status sp_attrs_set_ints(sp_attrs *a, const char *name, int n, const int64_t *v) {
    if (n < 0 || n > SP_MAX_ATTR_INTS)
        return sp_error(SP_ERR_ARG, "attrs: list '%s' has %d ints (at most %d)",
                        name ? name : "(null)", n, SP_MAX_ATTR_INTS);
    if (n > 0 && !v)
        return sp_error(SP_ERR_ARG, "attrs: list '%s' of %d ints is NULL", name ? name : "(null)", n);
    sp_attr *s = attrs_slot(a, name);
    if (!s) return sp_last_status();
    attrs_reset(s, SP_ATTR_INTS);
    s->n = n;
    if (n > 0) memcpy(s->ints, v, (size_t)n * sizeof *v);
    return SP_OK;
}

sp_status sp_attrs_set_str(sp_attrs *a, const char *name, const char *str) {
    if (!str) return sp_error(SP_ERR_ARG, "attrs: string '%s' is NULL", name ? name : "(null)");
    sp_attr *s = attrs_slot(a, name);
    if (!s) return sp_last_status();
    attrs_reset(s, SP_ATTR_STR);
    s->s = str;
    return SP_OK;
}

sp_status sp_attrs_set_dtype(sp_attrs *a, const char *name, sp_dtype d) {
    if ((int)d < 0 || d >= SP_DTYPE_COUNT)
        return sp_error(SP_ERR_DTYPE, "attrs: '%s' names an invalid dtype %d",
                        name ? name : "(null)", (int)d);
    sp_attr *s = attrs_slot(a, name);
    if (!s) return sp_last_status();
    attrs_reset(s, SP_ATTR_DTYPE);
    s->i = d;
    return SP_OK;
}

const sp_attr *sp_attrs_find(const sp_attrs *a, const char *name) {
    if (!a || !name) return NULL;
    for (int i = 0; i < a->n && i < SP_MAX_ATTRS; i++)
        if (a->a[i].name && strcmp(a->a[i].name, name) == 0) return &a->a[i];
    return NULL;
}

/* A double that converts to int64 without undefined behaviour and without
 * losing anything. */
static int attrs_integral(double f) {
    return f == floor(f) && f >= -9.2233720368547758e18 && f < 9.2233720368547758e18;
}

int64_t sp_attrs_get_int(const sp_attrs *a, const char *name, int64_t dflt) {
    const sp_attr *s = sp_attrs_find(a, name);
    if (!s) return dflt;
    switch (s->kind) {
    case SP_ATTR_INT:
    case SP_ATTR_DTYPE: return s->i;
    case SP_ATTR_FLOAT: return attrs_integral(s->f) ? (int64_t)s->f : dflt;
    case SP_ATTR_INTS: return s->n == 1 ? s->ints[0] : dflt;
    default: return dflt;
    }
}

double sp_attrs_get_float(const sp_attrs *a, const char *name, double dflt) {
    const sp_attr *s = sp_attrs_find(a, name);
    if (!s) return dflt;
    switch (s->kind) {
    case SP_ATTR_FLOAT: return s->f;
    case SP_ATTR_INT: return (double)s->i;
    case SP_ATTR_INTS: return s->n == 1 ? (double)s->ints[0] : dflt;
    default: return dflt;
    }
}

const int64_t *sp_attrs_get_ints(const sp_attrs *a, const char *name, int *n) {
    const sp_attr *s = sp_attrs_find(a, name);
    if (s && s->kind == SP_ATTR_INTS && s->n >= 0 && s->n <= SP_MAX_ATTR_INTS) {
        if (n) *n = s->n;
        return s->ints;
    }
    if (s && s->kind == SP_ATTR_INT) {
        if (n) *n = 1;
        return &s->i;
    }
    if (n) *n = 0;
    return NULL;
}

const char *sp_attrs_get_str(const sp_attrs *a, const char *name, const char *dflt) {
    const sp_attr *s = sp_attrs_find(a, name);
    return (s && s->kind == SP_ATTR_STR && s->s) ? s->s : dflt;
}

sp_dtype sp_attrs_get_dtype(const sp_attrs *a, const char *name, sp_dtype dflt) {
    const sp_attr *s = sp_attrs_find(a, name);
    if (s && (s->kind == SP_ATTR_DTYPE || s->kind == SP_ATTR_INT) && s->i >= 0 &&
        s->i < SP_DTYPE_COUNT)
        return (sp_dtype)s->i;
    return dflt;
}
