/*
 * strided_copy.h -- the block copier the shape and index kernels share.
 *
 * Most data-movement primitives (reshape of a view, transpose, broadcast_to,
 * concat, split, stack, pad, tile, slice, gather) are one idea: copy an
 * n-dimensional block whose source and destination each have arbitrary
 * element strides.  cpu_copy_strided does that for any element size; it
 * merges dimensions that are contiguous in both, turns unit-stride runs into
 * memcpy, runs a cache-blocked tile loop when the source is transposed
 * relative to the destination, and spreads the work over the thread pool
 * (inline when the block is small or when called from inside a pool task).
 *
 * cpu_copy_convert is the slow general path for blocks whose dtypes differ
 * (concat/stack of mixed dtypes): integers go through int64, everything else
 * through double, with the core's never-UB conversion rules.
 */
#ifndef SPORE_CPU_STRIDED_COPY_H
#define SPORE_CPU_STRIDED_COPY_H

#include "backend/cpu/cpu.h"

/* Most dims a block may have: tile views an n-d tensor as 2n dims. */
#define CPU_COPY_MAX_DIMS (2 * SP_MAX_DIMS)

/* Copies the block of `ndim` dims (<= CPU_COPY_MAX_DIMS) and sizes `shape`
 * from src (strides ss, in elements of `esize` bytes) to dst (strides ds).
 * Zero and negative strides are fine in src; dst strides must not make two
 * elements alias, and src must not overlap dst.  Cannot fail. */
void cpu_copy_strided(int ndim, const int64_t *shape, size_t esize, void *dst, const int64_t *ds,
                      const void *src, const int64_t *ss);

/* As cpu_copy_strided, converting each element from sdt to ddt.  Cannot
 * fail. */
void cpu_copy_convert(int ndim, const int64_t *shape, void *dst, sp_dtype ddt, const int64_t *ds,
                      const void *src, sp_dtype sdt, const int64_t *ss);

/* C-order strides (in elements) of a shape.  Cannot fail. */
void cpu_contig_strides(int ndim, const int64_t *shape, int64_t *strides);

/* Copies tensor src (any layout) into the contiguous tensor dst, which has
 * the same number of elements and the same dtype, in C order.  Cannot fail. */
void cpu_copy_to_contig(sp_tensor *dst, const sp_tensor *src);

#endif
