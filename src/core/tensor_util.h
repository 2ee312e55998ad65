/*
 * tensor_util.h -- helpers the tensor files of core share (tensor.c,
 * view.c, copy.c, print.c); not part of any other layer's contract.
 */
#ifndef SPORE_CORE_TENSOR_UTIL_H
#define SPORE_CORE_TENSOR_UTIL_H

#include "core/internal.h"

/* Checks 0 <= ndim <= SP_MAX_DIMS and every size >= 0, and that numel fits
 * int64; sets *numel.  `what` names the caller in the message
 * ("tensor_new: negative size -1 in shape (2, -1)"). */
sp_status core_check_shape(const char *what, int ndim, const int64_t *shape, int64_t *numel);
/* A tensor struct (refcount 1) over buf (retained) with the given layout;
 * no bounds check.  NULL + SP_ERR_NOMEM. */
sp_tensor *core_tensor_wrap(sp_buffer *buf, sp_dtype dtype, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset);
/* C-order strides for shape. Cannot fail. */
void core_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
/* Normalizes a possibly negative axis against ndim; SP_ERR_ARG naming `what`
 * when out of range. */
sp_status core_norm_axis(const char *what, int axis, int ndim, int *out);

#endif
