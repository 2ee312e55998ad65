/*
 * conv_filter.cuh -- Spore's own split-K weight gradient of conv2d, for the
 * small filters (LeNet's 6x1x5x5 and 16x6x5x5) where cuDNN's deterministic
 * algorithms spend 25-40 us on a few MFLOP.  conv.cu times it beside cuDNN's
 * candidates and keeps whichever is fastest; see conv_filter.cu.
 */
#ifndef SPORE_CUDA_CONV_FILTER_CUH
#define SPORE_CUDA_CONV_FILTER_CUH

#include "backend/cuda/nn_util.cuh"

/* Geometry of one weight-gradient pass: x [N, C, H, W] (already framed, so
 * the padding ph/pw is symmetric), dy [N, O, Ho, Wo], dw [O, C/G, kh, kw],
 * all contiguous. */
typedef struct cf_geom {
    int n, c, h, w, o, g, kh, kw, ho, wo, ph, pw, sh, sw, dh, dw;
} cf_geom;

/* Nonzero when cf_run and cf_data_run handle this geometry (square-ish small kernels,
 * at most a few thousand weights, 32-bit indices). */
int cf_supported(const cf_geom *g);

/* Enqueues dw = conv2d_backprop_filter(x, dy) on cuda_stream(): is64
 * selects float64 (else float32).  Deterministic: the split over the batch
 * depends on the shapes only and the partials are summed in a fixed order.
 * Returns SP_OK, or an error (out of memory, launch failure). */
sp_status cf_run(const cf_geom *g, int is64, const void *x, const void *dy, void *dw);

/* Enqueues dx = conv2d_backprop_input(dy, w) for the same geometry (dx is
 * the framed [N, C, H, W]); deterministic (a fixed summation order per
 * cell, in double).  Returns SP_OK or a launch error. */
sp_status cf_data_run(const cf_geom *g, int is64, const void *dy, const void *w, void *dx);

#endif
