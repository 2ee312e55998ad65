/*
 * spore/program.h -- whole programs from C: compile a model written in
 * Spore's source language, call its functions with tensors and numbers,
 * take gradients, and keep the model's weights in the program.
 *
 *   sp_program *p = sp_program_load("mlp.py");           // file:line errors
 *   sp_arg in[2] = {sp_arg_tensor(x), sp_arg_float(0.1)};
 *   sp_results *r;
 *   if (sp_program_call(p, "step", 2, in, &r)) fail(sp_last_error());
 *   sp_tensor *y = sp_results_get(r, 0);                  // borrowed from r
 *   sp_results_free(r);
 *   sp_program_free(p);
 *
 * Arguments are an array of sp_arg: a tensor (borrowed for the call), or a
 * Python int, float or bool, or None.  As in jax.jit and MindSpore's graph
 * mode, numbers are *static*: a function compiled for lr=0.1 is compiled
 * again for lr=0.05, while tensors are dynamic and only their dtype, shape
 * and device belong to the compiled signature.  Results come back as a flat
 * list of tensors: a returned tuple (nested or not) is flattened in order, a
 * returned Python number becomes a 0-d tensor (int64, float64 or bool), and
 * a function returning None returns no tensors.
 *
 * Parameters.  A module-level name declared in the source with a literal
 * (`W1 = None`) is a global the C program may rebind to a tensor with
 * sp_program_set_global and read back with sp_program_get_global; every
 * function of the program sees the new value from its next call on, as
 * Python functions see a rebound module global.  A trained model is kept in
 * the program this way and saved or restored name by name.
 *
 * Execution goes through the graph compiler (one compiled program per
 * function and argument signature, cached: a new batch size compiles once
 * more, then hits), or through the VM for a function the compiler does not
 * take; SPORE_PROGRAM_EXEC=vm in the environment, or sp_program_set_exec,
 * forces the VM, and both give the same results.
 *
 * Errors: every function returns an sp_status (or NULL) and leaves the
 * message in sp_last_error(): "file:line:col: message" with the source line
 * and a caret for anything about the program's source (syntax, names, a
 * failing operation at run time), and "function: parameter 'x' ..." for an
 * argument of the wrong kind, count, dtype or shape.  Nothing a caller does
 * aborts the process or leaks.
 *
 * Threads: a program is used by one thread at a time.
 */
#ifndef SPORE_PROGRAM_H
#define SPORE_PROGRAM_H

#include "spore/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sp_program sp_program;
typedef struct sp_results sp_results;

/* ---- programs --------------------------------------------------------------- */

/* Compiles source `text` (`file` names it in messages; NULL: "<program>").
 * NULL + error "file:line:col: message" and a caret line on a syntax or name
 * error. */
sp_program *sp_program_new_source(const char *file, const char *text);
/* Reads and compiles the file at `path`; an I/O error names the path. */
sp_program *sp_program_load(const char *path);
void sp_program_free(sp_program *p); /* NULL is fine */

/* How calls run.  SP_EXEC_AUTO (the default unless SPORE_PROGRAM_EXEC=vm is
 * set): compiled, cached per signature (the VM for what the compiler does
 * not take).  SP_EXEC_VM: always the VM (for comparison and debugging). */
typedef enum sp_exec_mode { SP_EXEC_AUTO = 0, SP_EXEC_VM = 1 } sp_exec_mode;
sp_status sp_program_set_exec(sp_program *p, sp_exec_mode mode);

/* ---- arguments ------------------------------------------------------------- */

typedef enum sp_arg_kind {
    SP_ARG_TENSOR = 0,
    SP_ARG_INT,
    SP_ARG_FLOAT,
    SP_ARG_BOOL,
    SP_ARG_NONE
} sp_arg_kind;

typedef struct sp_arg {
    sp_arg_kind kind;
    union {
        sp_tensor *t; /* borrowed: the call takes its own reference when it needs one */
        int64_t i;
        double f;
        int b;
    } u;
} sp_arg;

static inline sp_arg sp_arg_tensor(sp_tensor *t) {
    sp_arg a;
    a.kind = SP_ARG_TENSOR;
    a.u.t = t;
    return a;
}
static inline sp_arg sp_arg_int(int64_t i) {
    sp_arg a;
    a.kind = SP_ARG_INT;
    a.u.i = i;
    return a;
}
static inline sp_arg sp_arg_float(double f) {
    sp_arg a;
    a.kind = SP_ARG_FLOAT;
    a.u.f = f;
    return a;
}
static inline sp_arg sp_arg_bool(int b) {
    sp_arg a;
    a.kind = SP_ARG_BOOL;
    a.u.b = b != 0;
    return a;
}
static inline sp_arg sp_arg_none(void) {
    sp_arg a;
    a.kind = SP_ARG_NONE;
    a.u.i = 0;
    return a;
}

/* The declared type of one parameter (sp_program_declare).  kind
 * SP_ARG_TENSOR checks dtype, ndim and shape, where ndim -1 takes any rank
 * and a shape entry -1 any size on that axis; for the other kinds only the
 * kind is checked (an int is accepted where a float is declared). */
typedef struct sp_arg_spec {
    sp_arg_kind kind;
    sp_dtype dtype;
    int ndim;
    int64_t shape[SP_MAX_DIMS];
} sp_arg_spec;

/* Declares the signature of function `fn`: n parameter types, n equal to
 * the number of arguments its calls pass.  From then on every call of fn
 * (sp_program_call and sp_program_grad) is checked against it before it
 * runs, and a mismatch names the function and the parameter: "train_step:
 * parameter 'x' (argument 5) must be a float32 tensor of shape (-1, 784),
 * got uint8 (64, 28, 28)".  Declaring again replaces the signature.
 * SP_OK, or an error for an unknown function or a count the function does
 * not accept. */
sp_status sp_program_declare(sp_program *p, const char *fn, int n, const sp_arg_spec *spec);

/* ---- calls ------------------------------------------------------------------ */

/* Calls module-level function `fn` with n positional arguments.  On SP_OK
 * *out is a new results object (free it with sp_results_free); on error
 * *out is NULL.  A wrong number of arguments names the function and its
 * parameters; a value the function returns that is not a tensor, a number,
 * None or a tuple of them is an error naming its position. */
sp_status sp_program_call(sp_program *p, const char *fn, int n, const sp_arg *args, sp_results **out);

/* Value and gradients of fn (whose result must be a scalar: a 0-d or
 * 1-element float tensor, or a float) with respect to the arguments at
 * positions wrt[0..n_wrt), computed by the source language's
 * spore.value_and_grad(fn, grad_position=wrt) inside the program.  On SP_OK
 * *value (when value is not NULL) holds fn's result as one tensor and *grads
 * (when not NULL) one gradient per position of wrt, in order, each of its
 * argument's shape (0-d for a float argument).  A position out of range or
 * naming an argument that is not a float tensor or float is an error
 * naming the function and the parameter. */
sp_status sp_program_grad(sp_program *p, const char *fn, int n, const sp_arg *args, int n_wrt,
                          const int *wrt, sp_results **value, sp_results **grads);

/* ---- results ---------------------------------------------------------------- */

/* The number of tensors in r (0 for NULL). */
int sp_results_count(const sp_results *r);
/* Tensor i of r, borrowed: valid until sp_results_free(r).  NULL + error
 * when i is out of range. */
sp_tensor *sp_results_get(const sp_results *r, int i);
/* Tensor i of r as a new reference the caller releases (r keeps its own). */
sp_tensor *sp_results_take(const sp_results *r, int i);
void sp_results_free(sp_results *r); /* NULL is fine */

/* ---- parameters (module-level globals holding tensors) ----------------------- */

/* Rebinds module-level name `name`, declared in the source with a literal
 * (`W1 = None`, `scale = 1.0`), to tensor t; the program takes a reference
 * and t must not be written to afterwards.  Every function sees the new
 * value from its next call on.  Errors: a name the source does not declare,
 * a name bound to a function or module, t NULL. */
sp_status sp_program_set_global(sp_program *p, const char *name, sp_tensor *t);
/* The tensor module-level name `name` holds, as a new reference the caller
 * releases.  NULL + error when the name is not declared or does not hold a
 * tensor (still None, say). */
sp_tensor *sp_program_get_global(sp_program *p, const char *name);
/* The module-level names that hold tensors now, for saving a model: the
 * count, and name i (0 <= i < count) in declaration order (a string owned by
 * the program; NULL + error when i is out of range). */
int sp_program_global_count(const sp_program *p);
const char *sp_program_global_name(const sp_program *p, int i);

#ifdef __cplusplus
}
#endif
#endif
