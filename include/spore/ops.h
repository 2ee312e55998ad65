/*
 * spore/ops.h -- calling Spore's primitives from C.
 *
 * A primitive is a row of src/ops/ops.def: a name, its inputs, its outputs,
 * the dtypes it takes and named attributes (axis, stride, epsilon, ...).  C
 * users find a primitive by name and call it on tensors; the call infers the
 * output shapes and dtypes, allocates the outputs on the inputs' device and
 * runs the kernel of that device's backend.
 *
 * Attributes are a small fixed-size set of named values (an int, a float, a
 * list of ints, a string or a dtype).  An sp_attrs lives on the stack; its
 * strings are borrowed, not copied, and must outlive the call.
 */
#ifndef SPORE_OPS_H
#define SPORE_OPS_H

#include "spore/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SP_MAX_ATTRS 16
#define SP_MAX_ATTR_INTS 16
#define SP_MAX_INPUTS 64
#define SP_MAX_OUTPUTS 16

typedef enum sp_attr_kind {
    SP_ATTR_INT,   /* also used for booleans (0/1) */
    SP_ATTR_FLOAT,
    SP_ATTR_INTS,
    SP_ATTR_STR,
    SP_ATTR_DTYPE
} sp_attr_kind;

typedef struct sp_attr {
    const char *name; /* borrowed */
    sp_attr_kind kind;
    int n; /* number of ints for SP_ATTR_INTS */
    int64_t i;
    double f;
    const char *s; /* borrowed */
    int64_t ints[SP_MAX_ATTR_INTS];
} sp_attr;

typedef struct sp_attrs {
    int n;
    sp_attr a[SP_MAX_ATTRS];
} sp_attrs;

/* Empties a set.  Cannot fail. */
void sp_attrs_init(sp_attrs *a);
/* Setters add or replace the named attribute.  They fail (SP_ERR_ARG) only
 * when the set is full or a list is longer than SP_MAX_ATTR_INTS. */
sp_status sp_attrs_set_int(sp_attrs *a, const char *name, int64_t v);
sp_status sp_attrs_set_float(sp_attrs *a, const char *name, double v);
sp_status sp_attrs_set_ints(sp_attrs *a, const char *name, int n, const int64_t *v);
sp_status sp_attrs_set_str(sp_attrs *a, const char *name, const char *s);
sp_status sp_attrs_set_dtype(sp_attrs *a, const char *name, sp_dtype d);
/* Getters return the default when the attribute is absent.  An int getter
 * accepts a float attribute with an integral value and vice versa. */
const sp_attr *sp_attrs_find(const sp_attrs *a, const char *name); /* NULL if absent */
int64_t sp_attrs_get_int(const sp_attrs *a, const char *name, int64_t dflt);
double sp_attrs_get_float(const sp_attrs *a, const char *name, double dflt);
/* The list (and its length in *n), or NULL with *n = 0 when absent.  A
 * single int attribute reads as a list of one. */
const int64_t *sp_attrs_get_ints(const sp_attrs *a, const char *name, int *n);
const char *sp_attrs_get_str(const sp_attrs *a, const char *name, const char *dflt);
sp_dtype sp_attrs_get_dtype(const sp_attrs *a, const char *name, sp_dtype dflt);

/* Number of registered primitives; ids run from 0 to sp_op_count()-1. */
int sp_op_count(void);
/* The id of the primitive called `name`, or -1 (and an error) if none. */
int sp_op_find(const char *name);
/* The primitive's name; NULL for a bad id. */
const char *sp_op_name(int op);
/* Declared arity: -1 means variadic (concat's inputs, split's outputs). */
int sp_op_num_inputs(int op);
int sp_op_num_outputs(int op);
/* Bit mask (SP_DTM_*) of the dtypes the primitive accepts for input 0 (for
 * ops without inputs: the dtypes its `dtype` attribute may name). */
uint32_t sp_op_dtypes(int op);
/* Nonzero when the primitive has a gradient (it is differentiable). */
int sp_op_is_differentiable(int op);
/* Nonzero when the primitive updates its inputs in place (optimizers). */
int sp_op_is_inplace(int op);

/* Runs primitive `op` on `n_in` inputs.  On success *n_out is set and out[0..
 * *n_out-1] hold new tensors the caller releases.  out must have room for
 * SP_MAX_OUTPUTS.  Errors (wrong arity, dtype, shapes, attributes, devices)
 * return a status and name the primitive and the shapes involved; no output
 * is returned then.  attrs may be NULL. */
sp_status sp_op_call(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs, int *n_out,
                     sp_tensor **out);
/* sp_op_call by name. */
sp_status sp_op_call_name(const char *name, int n_in, sp_tensor *const *in,
                          const sp_attrs *attrs, int *n_out, sp_tensor **out);

/* ---- devices ---- */

/* Nonzero when the CUDA backend is loaded and found a GPU.  The first call
 * loads libspore_cuda.so (and starts the CUDA runtime); when it returns 0,
 * sp_last_error() says why (not built, library missing, no driver, no
 * device).  Cannot fail otherwise. */
int sp_cuda_available(void);
/* A copy of t on `dev` (a new contiguous tensor), or t itself retained when
 * it is already there.  CPU <-> cuda:0 for now.  The result is usable at
 * once; a copy to the CPU returns when the values are on the host, and
 * reports any error a GPU kernel found on its data before it.  Returns
 * SP_OK and a new reference in *out, or an error (no GPU, no memory). */
sp_status sp_tensor_to(sp_tensor *t, sp_device dev, sp_tensor **out);
/* Whether float32 matmul (and convolution) on the GPU may use TensorFloat-32
 * tensor cores (10-bit mantissa inputs, float32 accumulation).  Off by
 * default; a process-wide switch.  Cannot fail. */
void sp_set_allow_tf32(int allow);
int sp_get_allow_tf32(void);

#ifdef __cplusplus
}
#endif
#endif
