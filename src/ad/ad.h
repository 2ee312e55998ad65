/*
 * ad.h -- automatic differentiation by source transformation (reverse
 * mode), after MindSpore's and Myia's K transform.
 *
 * K(g) (k.c) is a graph with g's parameters that returns (value, bprop);
 * bprop(dout) returns (env, d_param1, ..., d_paramn), env holding the
 * gradients of g's free variables keyed by the free variable's node.  In
 * K(g) every apply r = f(a...) becomes t = J(f)(a...), r = t[0], and the
 * backward graph calls t[1] with r's accumulated gradient.  Values flowing
 * through K(g) are the primal values themselves: J is applied to each
 * callee at run time (j.c), so higher-order functions, closures passed in
 * and returned, partials and recursion need nothing special.
 *
 * J (j.c): a graph or closure -> the closure of K(graph) over the same
 * free-variable values (K(g) keeps g's free variables, in g's order); a
 * partial -> J of its function with the bound arguments' gradients moved
 * into the env under keys -1, -2, ...; a primitive, builtin or API
 * function -> partial(builtin.j_primal, f), which runs f and returns
 * (out, bprop) where bprop is a partial application of a rule graph: the
 * primitive's bprop_<name> from src/ops/bprop (through _ad_prim), or a
 * builtin's rule from src/ad/bprop_builtins.py.  Because every bprop is a
 * graph, K applies to K's output and grad of grad works.  An API function
 * that runs several primitives in C (ops.cross_entropy, conv2d with bias)
 * gets a replay of its recorded primitive calls instead (bprop_tape),
 * which is first order only.
 *
 * Gradients: None is zero (no contribution); add_grad sums tensors,
 * scalars, tuples item-wise and envs key-wise.  The gradient of a closure
 * or partial value is an env.  Integer values get no gradient.  A Python
 * float passed to a primitive (ops.sin(x), t * x) is a tensor to the
 * kernel; the runtime notes which float became which tensor
 * (ad_note_scalar), so the float argument receives that input's gradient
 * (a 0-d tensor); math.* on Python numbers has rules of its own
 * (_ad_math; a math function without one is an error when its gradient is
 * needed, never a silent zero).  Every gradient has the structure of its value: the
 * rules of add_grad and of J give each operand only its own part
 * (_ad_add_grad, _ad_j_env), which keeps third and higher orders sound.
 *
 * User rules (MindSpore's Cell.bprop): a top-level function f whose
 * module also defines a top-level f_bprop(inputs..., out, dout) is
 * differentiated through it: J(f) = partial(_ad_custom, "f", f, f_bprop)
 * runs f and its bprop returns f_bprop's gradients, one per input (a
 * tuple, or a bare value for one input; None for none; a wrong count is
 * an error at the user's call).  f's body is not differentiated, tensors
 * f captures get no gradient, and grad of grad differentiates f_bprop.
 *
 * Errors are values as everywhere: NULL + sp_error; the VM adds the
 * source location of the node that failed.
 */
#ifndef SPORE_AD_H
#define SPORE_AD_H

#include "ir/ir.h"

/* ---- k.c ------------------------------------------------------------------ */

/* K(g), built once per graph and cached in g->k_graph (in g's module).
 * NULL + error on failure. */
sp_graph *ad_k(sp_graph *g);

/* ---- j.c ------------------------------------------------------------------ */

/* J(f) of builtins.def: a new reference or NULL + error. */
sp_value *ad_j(const sp_value *f);
/* builtin.j_primal(f, args...): runs f and returns (out, bprop). */
sp_value *ad_j_primal(int n, sp_value *const *args);
/* builtin.bprop_tape(f, args, out, records, dout). */
sp_value *ad_bprop_tape(int n, sp_value *const *args);
/* builtin.grad_call(fn, pos, weights, has_aux, with_value, sens_param, args...) (grad.c). */
sp_value *ad_grad_call(int n, sp_value *const *args);
/* The callable spore.grad(...) returns (grad.c): pos an int, a tuple, None
 * (all inputs) or False (none, only weights); weights None, a Tensor or a
 * tuple/list of Tensors that fn captures.  A new reference or NULL. */
sp_value *ad_grad_fn(const sp_value *fn, const sp_value *pos, const sp_value *weights, int has_aux,
                     int with_value, int sens_param);
/* Notes a primitive call for j_primal's recorder (no-op when not
 * recording); called by the runtime wherever a primitive runs, and where a
 * view stands for one (reshape, transpose, cast). */
struct sp_attrs;
void ad_record_op(int op, int n_in, sp_tensor *const *in, const struct sp_attrs *attrs, int n_out,
                  sp_tensor *const *out);
/* The eager tape's sink (src/runtime/tape.c, DESIGN §1): while one is
 * installed on this thread, every primitive call ad_record_op sees outside
 * a j_primal recording goes to fn(ctx, op, ...) (arguments borrowed, as
 * ad_record_op's).  A call that j_primal's own recorder takes instead
 * (run-time J running inside the taped code) reaches fn with op == -1 and
 * nothing else: the tape cannot see that work.  Installing returns the
 * previous pair through prev_fn/prev_ctx (may be NULL).  Cannot fail. */
typedef void (*ad_tape_fn)(void *ctx, int op, int n_in, sp_tensor *const *in, const struct sp_attrs *attrs,
                           int n_out, sp_tensor *const *out);
void ad_tape_set(ad_tape_fn fn, void *ctx, ad_tape_fn *prev_fn, void **prev_ctx);
/* Nonzero while primitive calls on this thread go to a tape sink (one is
 * installed and no j_primal recording is active): the views that stand
 * for a primitive (basic indexing) are then noted as primitives too.
 * Cannot fail. */
int ad_tape_recording(void);
/* Notes that float value v was turned into tensor t (rt_as_tensor), so
 * that j_primal can route the gradient of t, a primitive's input, to the
 * float argument v (no-op when not recording). */
void ad_note_scalar(const sp_value *v, const sp_tensor *t);
/* A primitive's attributes as a tuple of KEYWORD values, the form a bprop
 * rule is called with (j_primal's records and the PyNative tape's).  A new
 * reference, or NULL on allocation failure. */
sp_value *ad_attrs_keywords(const struct sp_attrs *a);
/* Builtins of builtins.def implemented in src/ad (J, call_star,
 * make_closure, closure_keys, fill_zeros, scatter/gather/head/tail of
 * tuples, getitem_grad, sens_of, and the env builtins).  Returns NULL with
 * *handled = 0 for other ids. */
sp_value *ad_builtin_call(int id, int n, sp_value *const *args, int *handled);

/* ---- env.c ------------------------------------------------------------------ */

/* The empty env. */
sp_value *ad_env_new(void);
/* env[key] (a new reference), or dflt (retained) when absent; a None env
 * is empty. */
sp_value *ad_env_get(const sp_value *env, int64_t key, const sp_value *dflt);
/* A new env equal to env with key bound to v (v None removes key). */
sp_value *ad_env_set(const sp_value *env, int64_t key, const sp_value *v);
/* The sum of two gradients (see the essay); a new reference or NULL. */
sp_value *ad_add_grad(const sp_value *a, const sp_value *b);
/* The env key of a free-variable node. */
int64_t ad_key_of(const sp_node *n);

/* ---- rules.c ----------------------------------------------------------------- */

/* The rule module's global `name` (borrowed), or NULL without an error
 * when there is none; NULL + error when the rules do not compile. */
sp_value *ad_rule(const char *name);
/* The same, but a missing name is an error naming it. */
sp_value *ad_rule_required(const char *name);

#endif
