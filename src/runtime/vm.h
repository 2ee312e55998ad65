/*
 * vm.h -- runs IR on a backend.
 *
 * The VM evaluates a graph's applies in dependency order and calls
 * primitives through the registry (sp_op_call), builtins through their
 * implementations, and graphs/closures by pushing a frame.  A call in tail
 * position (a graph's output) reuses the frame, so loops lowered to tail
 * recursion run in constant C stack; non-tail recursion is limited by a
 * depth counter that reports "maximum recursion depth exceeded" at the
 * call's source line instead of overflowing the C stack.
 *
 * Every run-time error (a shape error from a primitive, tensor + str, a
 * wrong number of arguments) names the source location of the node that
 * failed, with a caret line.
 */
#ifndef SPORE_VM_H
#define SPORE_VM_H

#include "ir/ir.h"

/* Calls a callable value (graph, closure, partial, primitive, builtin) with
 * positional arguments (KEYWORD values among them bind by name).  Returns a
 * new reference, or NULL + error. */
sp_value *sp_vm_call(sp_module *m, sp_value *fn, int n, sp_value *const *args);
/* Calls the module-level function `entry` ("main" when NULL). */
sp_value *sp_vm_run(sp_module *m, const char *entry, int n, sp_value *const *args);

#endif
