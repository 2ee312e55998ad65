/*
 * infer.h -- helpers shared by the inference files (infer_*.c), private to
 * src/ops.
 *
 * Inference runs on sp_meta only and must reject, with a message naming the
 * primitive and the shapes, anything a kernel could not run safely: after a
 * successful inference a kernel may trust every size, axis and attribute it
 * reads.  Sizes come from users and may be anything an int64 holds, so
 * every sum or product of sizes here goes through the overflow-checked
 * helpers below, never plain + or *.
 *
 * ops_str is a small struct holding a formatted shape; returned by value, it
 * lives until the end of the full expression (C11 6.2.4p8), so several can
 * appear in one sp_error call: sp_error(..., ops_shape(&a).s, ops_shape(&b).s).
 */
#ifndef SPORE_OPS_INFER_H
#define SPORE_OPS_INFER_H

#include "ops/ops.h"

typedef struct ops_str {
    char s[256];
} ops_str;

/* "(2, 3)" for a meta's shape, or for a list of ints. */
ops_str ops_shape(const sp_meta *m);
ops_str ops_ints(int n, const int64_t *v);

/* Sets *m to (dtype, shape).  Cannot fail. */
void ops_meta_set(sp_meta *m, sp_dtype dtype, int ndim, const int64_t *shape);
int ops_same_shape(const sp_meta *a, const sp_meta *b);

/* Checks a shape: an error naming op and the shape on a negative size, more
 * than SP_MAX_DIMS dims, or when the product of its nonzero sizes (times 16
 * bytes, the widest element) would overflow int64 -- numpy's rule, which
 * keeps every contiguous stride representable even for empty tensors. */
sp_status ops_check_shape(const char *op, const char *what, int ndim, const int64_t *shape);
/* a + b and a * b for sizes (both >= 0); error naming op on overflow. */
sp_status ops_add(const char *op, int64_t a, int64_t b, int64_t *out);
sp_status ops_mul(const char *op, int64_t a, int64_t b, int64_t *out);

/* A required list attribute; error "op: missing attribute 'name'" when it
 * is absent.  Returns the list, or NULL with the error set. */
const int64_t *ops_need_ints(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                             int *n);
/* Reads a dtype attribute: the default when absent, an error when it is
 * present but not a valid dtype. */
sp_status ops_get_dtype(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                        sp_dtype dflt, sp_dtype *out);
/* Reads a float attribute that must be there. */
sp_status ops_need_float(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                         double *out);
/* Reads a string attribute that must be one of `choices` (NULL-ended);
 * absent gives choices[0].  *idx is the index of the choice. */
sp_status ops_get_choice(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                         const char *const *choices, int *idx);

/* Input `i` (called `what`) must have an int32/int64 dtype. */
sp_status ops_need_index(const sp_op_def *def, const sp_meta *m, const char *what);
/* Input `i` must have dtype d (the dtype of input 0, usually). */
sp_status ops_need_dtype(const sp_op_def *def, const sp_meta *m, const char *what, sp_dtype d);
/* Input must have this many dims. */
sp_status ops_need_ndim(const sp_op_def *def, const sp_meta *m, const char *what, int ndim);
/* Input must have exactly this shape. */
sp_status ops_need_shape(const sp_op_def *def, const sp_meta *m, const char *what, int ndim,
                         const int64_t *shape);

#endif
