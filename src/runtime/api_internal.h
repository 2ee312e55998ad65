/*
 * api_internal.h -- what the two halves of the functional API share:
 * api.c (the table of api.def and the impl functions of its rows) and
 * api_bind.c (the table parsed once, binding a call's arguments to a row's
 * parameters, the generic path from bound arguments to a primitive).
 *
 * A row's parameters are parsed on the first call of any API function and
 * never change after; an api_call lives on the stack of one call and points
 * at them.  Not part of the runtime's interface (rt.h): only these two
 * files include it.
 */
#ifndef SPORE_RUNTIME_API_INTERNAL_H
#define SPORE_RUNTIME_API_INTERNAL_H

#include "runtime/rt.h"

#define API_MAX_PARAMS 12
#define API_MAX_NAMES 4
#define API_NAME_LEN 32
#define API_QNAME_LEN 64

/* The rows of api.def, counted at compile time. */
enum {
    API_N_ROWS = 0
#define SP_API(MOD, name, PRIM, params, impl) +1
#include "runtime/api.def"
#undef SP_API
};

enum { MOD_SPORE = SP_MOD_SPORE, MOD_OPS = SP_MOD_OPS, MOD_MATH = SP_MOD_MATH, MOD_TENSOR = RT_MOD_TENSOR };
#define SP_OP_NONE (-1)

struct api_call;
typedef sp_value *(*api_impl)(struct api_call *c);

typedef struct api_row {
    int module;
    const char *name;
    int prim;
    const char *params;
    api_impl impl; /* NULL: GENERIC */
} api_row;

/* The kinds of api.def, decoded once. */
typedef enum {
    API_K_T,     /* T   */
    API_K_TOPT,  /* T?  */
    API_K_TS,    /* Ts  */
    API_K_I,     /* i   */
    API_K_F,     /* f   */
    API_K_B,     /* b   */
    API_K_S,     /* s   */
    API_K_DT,    /* dt  */
    API_K_INTS,  /* ints */
    API_K_INTS2, /* ints2 */
    API_K_V      /* v, and anything else: for the impl function only */
} api_kind;

typedef struct api_param {
    char names[API_MAX_NAMES][API_NAME_LEN];
    int n_names;
    api_kind kind;
    char attr[API_NAME_LEN]; /* "" = names[0]; "-" = ignored */
    sp_value *dflt;          /* the default (immortal, shared); NULL = required */
    int kwonly, varargs;
} api_param;

/* One row's parameters, parsed (api_specs_init). */
typedef struct api_spec {
    char qname[API_QNAME_LEN]; /* "ops.sum" */
    int n;                      /* parameters */
    int va;                     /* the *name parameter, or -1 */
    int max_pos;                /* parameters a positional argument can fill */
    int bad;                    /* the parameter string did not parse */
    api_param *p;               /* n of them (malloc'd once, never freed) */
} api_spec;

typedef struct api_call {
    const api_row *row;
    const char *qname;                 /* "ops.sum" for messages */
    int n;                             /* parameters */
    const api_param *p;                /* the row's (shared, read-only) */
    unsigned skip;                     /* parameters run_generic leaves out (bit k) */
    const sp_value *v[API_MAX_PARAMS]; /* bound values (borrowed or in owned[]) */
    sp_value *owned[API_MAX_PARAMS + 1];
    int n_owned;
} api_call;

/* The table (api.c), in api.def's order. */
extern const api_row api_rows[];

/* "spore", "ops", "math" or "Tensor" for a MOD_* value.  Cannot fail. */
const char *api_module_prefix(int module);
/* The row of module.name, or NULL.  Cannot fail otherwise. */
const api_row *api_find_row(int module, const char *name);
/* The bound value of parameter `name` (its first name); NULL if no such
 * parameter (an api.def bug). */
const sp_value *api_arg(const api_call *c, const char *name);
/* "ops.sum() argument 'x'" into buf, for an error message; returns buf. */
const char *api_what(const api_call *c, const char *param, char *buf, size_t size);
/* The dtype Python scalars take among c's tensor arguments, or -1. */
int api_weak_dtype(const api_call *c);
/* Sets the attribute for parameter p's value v in a (None: nothing);
 * 0, or -1 + error naming the function and parameter. */
int api_attr_from(api_call *c, const api_param *p, const sp_value *v, sp_attrs *a);
/* Runs prim on c's tensor arguments with the others as attributes (see
 * api.def's GENERIC): a new value, or NULL + error. */
sp_value *api_run_generic(api_call *c, int prim);

static inline int api_is_none(const sp_value *v) { return !v || v->kind == SP_V_NONE; }
static inline int api_is_seq(const sp_value *v) { return v->kind == SP_V_TUPLE || v->kind == SP_V_LIST; }

#endif
