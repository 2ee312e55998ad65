/*
 * conv.h -- the sliding-window geometry shared by the CPU convolution
 * (conv.c) and pooling (pool.c) kernels.
 *
 * conv2d, its two backprops and the pooling primitives read the same
 * attributes (ops.def): stride, dilation, pad_mode "pad" | "same" | "valid",
 * padding as 1, 2 or 4 ints, and for pooling ceil_mode.  This header turns
 * them, for one input size and kernel size, into explicit per-side padding
 * and output sizes, so every kernel walks windows the same way:
 *
 *   output index o of a spatial axis covers input positions
 *       o * stride - pad_lo + t * dil,   t = 0 .. k-1,
 *   and positions outside [0, in) are padding.
 *
 * "same" gives ceil(in / stride) outputs with the total padding split so the
 * extra cell goes at the bottom/right (TensorFlow and MindSpore).  ceil_mode
 * applies to "pad" only and follows PyTorch: the last window may run past
 * the padding, but it must start inside the input or the top/left padding.
 * src/ops/infer_conv.c computes the same sizes; the kernels check theirs
 * against the outputs they are handed.
 *
 * Axis 0 of every pair is the height, axis 1 the width.
 */
#ifndef SPORE_CPU_CONV_H
#define SPORE_CPU_CONV_H

#include "spore/ops.h"

typedef struct cpu_window {
    int64_t in[2];     /* input size */
    int64_t k[2];      /* kernel size (taps, before dilation) */
    int64_t stride[2];
    int64_t dil[2];
    int64_t pad_lo[2]; /* top, left */
    int64_t pad_hi[2]; /* bottom, right */
    int64_t out[2];    /* output size (0 only for an empty input with "same") */
} cpu_window;

/* Reads stride [dflt_stride, or 1,1 when NULL], dilation [1,1], pad_mode,
 * padding and, when ceil_ok, ceil_mode [0] from attrs and fills *w for an
 * input of in[0] x in[1] and a kernel of k[0] x k[1] taps.  Returns SP_OK,
 * SP_ERR_ARG naming `op` and the attribute for a bad value (stride < 1,
 * negative padding, unknown pad_mode, a list of the wrong length), or
 * SP_ERR_SHAPE when the (padded) input is smaller than the dilated kernel. */
sp_status cpu_window_init(const char *op, const sp_attrs *attrs, const int64_t in[2],
                          const int64_t k[2], const int64_t *dflt_stride, int ceil_ok,
                          cpu_window *w);

/* The range [*lo, *hi) of outputs along one axis whose tap t lands inside
 * the input (the others read padding).  Cannot fail; *lo <= *hi. */
static inline void cpu_window_valid(const cpu_window *w, int axis, int64_t t, int64_t *lo,
                                    int64_t *hi) {
    int64_t s = w->stride[axis], off = t * w->dil[axis] - w->pad_lo[axis];
    /* o*s + off >= 0  and  o*s + off <= in-1 */
    int64_t a = -off, b = w->in[axis] - 1 - off;
    int64_t l = a <= 0 ? 0 : (a + s - 1) / s;
    int64_t h = b < 0 ? 0 : b / s + 1;
    if (h > w->out[axis]) h = w->out[axis];
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

#endif
