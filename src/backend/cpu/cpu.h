/*
 * cpu.h -- the CPU backend's kernels and the helpers they share.
 *
 * Every primitive in ops.def has a kernel cpu_<name> here, defined in the
 * file of its family (elementwise.c, reduce.c, shape.c, matmul.c, conv.c,
 * pool.c, nn.c, optim.c, random.c); a missing one is a link error, which is
 * how the table keeps the backend complete.
 *
 * Kernels run on the persistent thread pool through sp_parallel_for and may
 * take strided inputs; the helpers below turn any layout into loops.
 */
#ifndef SPORE_CPU_H
#define SPORE_CPU_H

#include "backend/backend.h"
#include "core/internal.h"
#include "ops/ops.h"

#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) \
    sp_status cpu_##name(const sp_kernel_args *a);
#include "ops/ops.def"
#undef SP_OP

/* Strides of t aligned to an output of `ndim` dims and `shape` (numpy
 * broadcasting: missing leading dims and size-1 dims get stride 0).  The
 * caller has checked that t broadcasts to shape. */
void cpu_broadcast_strides(const sp_tensor *t, int ndim, const int64_t *shape, int64_t *strides);

#endif
