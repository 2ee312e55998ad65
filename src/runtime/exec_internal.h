/*
 * exec_internal.h -- what exec.c (the plain executor of lowered graphs)
 * and exec_graph.c (the same kernels recorded once as a CUDA graph and
 * replayed) share.  Not part of any public contract.
 */
#ifndef SPORE_RUNTIME_EXEC_INTERNAL_H
#define SPORE_RUNTIME_EXEC_INTERNAL_H

#include "compiler/lower.h"

/* Checks n parameters against l's signature and finds their device.
 * SP_OK, or the error sp_lowered_run reports. */
sp_status exec_check(const sp_lowered *l, int n, sp_tensor *const *params, sp_device *dev);

/* The arena for a run: the cached one when free and on dev, else a new
 * one; *cached says which, for exec_arena_put.  NULL + error when out of
 * memory. */
sp_buffer *exec_arena_get(sp_lowered *l, sp_device dev, int *cached);
void exec_arena_put(sp_lowered *l, sp_buffer *a, int cached);

/* Constant slot s on dev: the lowered object's own tensor on the CPU, a
 * copy cached for the first other device, else a copy for this run.  A new
 * reference, or NULL + error. */
sp_tensor *exec_const(sp_lowered *l, int s, sp_device dev);

/* Runs l's kernels in order.  t[] (n_slots entries) holds on entry the
 * tensors of the parameter and constant slots, and may hold those of
 * OUTPUT slots (else they are allocated on dev); arena slots become
 * windows of `arena`, views are made as their kernels come.  On return t[]
 * holds a reference for every slot made (the caller releases them, also on
 * error).  SP_OK, or the first kernel's error located at its node. */
sp_status exec_kernels(sp_lowered *l, sp_device dev, sp_buffer *arena, sp_tensor **t);

/* exec_graph.c: runs l as a replay of its recorded graph when it can.
 * Returns 1 when it took the run (*st: SP_OK with out[] filled as
 * sp_lowered_run fills it, or the run's error, nothing returned); 0 when
 * the caller must run l's kernels itself (no capture on this backend,
 * capture off, the warming first run, a run it cannot replay exactly). */
int exec_graph_run(sp_lowered *l, sp_tensor *const *params, sp_device dev, sp_tensor **out,
                   sp_status *st);

#endif
