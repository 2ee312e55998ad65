/*
 * conv_filter.cu -- split-K weight gradient of a 2-D convolution for small
 * filters: dw[o, c, i, j] = sum over (n, ho, wo) of dy[n, o, ho, wo] *
 * x[n, g*Cg + c, ho*sh - ph + i*dh, wo*sw - pw + j*dw] (cells outside x
 * count as zero).
 *
 * The reduction (N*Ho*Wo terms per weight) is long and the weights few, so
 * the work is split along the batch: a block owns one (o, c) pair and one
 * slice of `per` images (about two blocks per SM in all); its threads walk the slice's output positions,
 * load dy once per position and accumulate all kh*kw taps in registers
 * (the x reads of neighbouring threads are neighbouring addresses).  The
 * block combines its threads with warp shuffles and a fixed pass over the
 * warps, and writes kh*kw partials (in double) for its slice.  A second
 * kernel sums each weight's partials in slice order, one warp per weight
 * with a fixed shuffle tree, and rounds once.  Everything depends on the
 * shapes only: the same bits on every run, with no atomics.
 *
 * Taps are template parameters (KH, KW: 5x5, 3x3) so the accumulators stay
 * in registers; other kernels go to cuDNN.  The same file holds a direct
 * input-gradient kernel for those filters (one thread per dx cell, a fixed
 * order over filters and taps).  conv.cu races both against cuDNN's
 * deterministic algorithms on first use of a geometry.
 */
#include "backend/cuda/conv_filter.cuh"

enum { CF_THREADS = 256, CF_BLOCKS = 264 };

template <typename T, int KH, int KW>
__global__ void cf_partial_kernel(cf_geom g, int per, const T *x, const T *dy, double *part) {
    const int KK = KH * KW;
    const int cg = g.c / g.g, og = g.o / g.g;
    int pair = blockIdx.x, slice = blockIdx.y;
    int o = pair / cg, c = pair % cg, cx = (o / og) * cg + c;
    int n0 = slice * per, n1 = n0 + per < g.n ? n0 + per : g.n;
    int plane = g.ho * g.wo;
    unsigned P = (unsigned)((n1 - n0) * plane);
    double acc[KK]; /* double even for float32: the products are exact */
#pragma unroll
    for (int q = 0; q < KK; q++) acc[q] = 0;
    for (unsigned p = threadIdx.x; p < P; p += CF_THREADS) {
        int nl = (int)(p / (unsigned)plane), r = (int)(p - (unsigned)nl * plane);
        int oh = r / g.wo, ow = r - oh * g.wo, n = n0 + nl;
        double d = (double)dy[((long long)n * g.o + o) * plane + r];
        const T *xp = x + ((long long)n * g.c + cx) * g.h * g.w;
        int h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
#pragma unroll
        for (int i = 0; i < KH; i++) {
            int hh = h0 + i * g.dh;
            bool hin = hh >= 0 && hh < g.h;
#pragma unroll
            for (int j = 0; j < KW; j++) {
                int ww = w0 + j * g.dw;
                if (hin && ww >= 0 && ww < g.w) acc[i * KW + j] += d * (double)xp[hh * g.w + ww];
            }
        }
    }
    __shared__ double sh[CF_THREADS / 32][KK];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int q = 0; q < KK; q++) {
        double v = acc[q];
#pragma unroll
        for (int s = 16; s > 0; s >>= 1) v += __shfl_down_sync(0xffffffffu, v, s);
        if (lane == 0) sh[warp][q] = v;
    }
    __syncthreads();
    for (int q = threadIdx.x; q < KK; q += CF_THREADS) {
        double v = 0;
        for (int w = 0; w < CF_THREADS / 32; w++) v += sh[w][q];
        part[((long long)slice * g.o * cg + pair) * KK + q] = v;
    }
}

/* One warp per weight: its nslices partials, lanes striding, then a fixed
 * shuffle tree; rounds once to T. */
template <typename T>
__global__ void cf_sum_kernel(const double *part, int nslices, int nw, T *dw) {
    int wgt = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
    if (wgt >= nw) return;
    double v = 0;
    for (int s = lane; s < nslices; s += 32) v += part[(long long)s * nw + wgt];
#pragma unroll
    for (int s = 16; s > 0; s >>= 1) v += __shfl_down_sync(0xffffffffu, v, s);
    if (lane == 0) dw[wgt] = (T)v;
}

/* Input gradient, one thread per dx cell (n, c, h, w): dx = sum over the
 * group's filters o and taps (i, j) whose output (oh, ow) covers the cell
 * of dy[n, o, oh, ow] * w[o, c, i, j], in that fixed order, in double.  A
 * warp's threads share (n, c) but for a plane boundary, so the weight reads
 * are broadcasts and the dy reads neighbours. */
template <typename T, int KH, int KW>
__global__ void cf_data_kernel(cf_geom g, const T *dy, const T *w, T *dx, unsigned total) {
    const int KK = KH * KW, cg = g.c / g.g, og = g.o / g.g;
    for (unsigned e = blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += gridDim.x * blockDim.x) {
        int ww = (int)(e % (unsigned)g.w), r = (int)(e / (unsigned)g.w);
        int hh = r % g.h, pl = r / g.h, c = pl % g.c, n = pl / g.c;
        int grp = c / cg, cl = c - grp * cg;
        int oh[KH], ow[KW];
#pragma unroll
        for (int i = 0; i < KH; i++) {
            int num = hh + g.ph - i * g.dh, q = num / g.sh;
            oh[i] = num >= 0 && q * g.sh == num && q < g.ho ? q : -1;
        }
#pragma unroll
        for (int j = 0; j < KW; j++) {
            int num = ww + g.pw - j * g.dw, q = num / g.sw;
            ow[j] = num >= 0 && q * g.sw == num && q < g.wo ? q : -1;
        }
        double acc = 0;
        for (int ol = 0; ol < og; ol++) {
            int o = grp * og + ol;
            const T *dyp = dy + ((long long)n * g.o + o) * g.ho * g.wo;
            const T *wp = w + ((long long)o * cg + cl) * KK;
#pragma unroll
            for (int i = 0; i < KH; i++) {
                if (oh[i] < 0) continue;
#pragma unroll
                for (int j = 0; j < KW; j++)
                    if (ow[j] >= 0)
                        acc += (double)dyp[oh[i] * g.wo + ow[j]] * (double)wp[i * KW + j];
            }
        }
        dx[e] = (T)acc;
    }
}

sp_status cf_data_run(const cf_geom *g, int is64, const void *dy, const void *w, void *dx) {
    if (!cf_supported(g))
        return sp_error(SP_ERR_INTERNAL, "conv2d_backprop_input: direct kernel given an unsupported geometry");
    unsigned total = (unsigned)((long long)g->n * g->c * g->h * g->w);
    if (total == 0) return SP_OK;
    unsigned bl = cuda_nn_blocks(total, 256);
    cudaStream_t s = cuda_stream();
    if (g->kh == 5) {
        if (is64) cf_data_kernel<double, 5, 5><<<bl, 256, 0, s>>>(*g, (const double *)dy, (const double *)w, (double *)dx, total);
        else cf_data_kernel<float, 5, 5><<<bl, 256, 0, s>>>(*g, (const float *)dy, (const float *)w, (float *)dx, total);
    } else {
        if (is64) cf_data_kernel<double, 3, 3><<<bl, 256, 0, s>>>(*g, (const double *)dy, (const double *)w, (double *)dx, total);
        else cf_data_kernel<float, 3, 3><<<bl, 256, 0, s>>>(*g, (const float *)dy, (const float *)w, (float *)dx, total);
    }
    return cuda_nn_launched("conv2d_backprop_input (direct)");
}

int cf_supported(const cf_geom *g) {
    if (g->g < 1 || g->c % g->g || g->o % g->g) return 0;
    if (!((g->kh == 5 && g->kw == 5) || (g->kh == 3 && g->kw == 3))) return 0;
    long long nw = (long long)g->o * (g->c / g->g) * g->kh * g->kw;
    long long xe = (long long)g->n * g->c * g->h * g->w, ye = (long long)g->n * g->o * g->ho * g->wo;
    return g->n > 0 && g->ho > 0 && g->wo > 0 && nw > 0 && nw <= 8192 && xe < (1LL << 31) &&
           ye < (1LL << 31);
}

template <typename T, int KH, int KW>
static void cf_launch(const cf_geom *g, int per, int nslices, const T *x, const T *dy, double *part,
                      T *dw) {
    cudaStream_t s = cuda_stream();
    int pairs = g->o * (g->c / g->g), nw = pairs * KH * KW;
    dim3 grid((unsigned)pairs, (unsigned)nslices);
    cf_partial_kernel<T, KH, KW><<<grid, CF_THREADS, 0, s>>>(*g, per, x, dy, part);
    cf_sum_kernel<T><<<(unsigned)((nw * 32 + 255) / 256), 256, 0, s>>>(part, nslices, nw, dw);
}

sp_status cf_run(const cf_geom *g, int is64, const void *x, const void *dy, void *dw) {
    if (!cf_supported(g))
        return sp_error(SP_ERR_INTERNAL, "conv2d_backprop_filter: split-K kernel given an unsupported geometry");
    /* slices: about CF_BLOCKS (pair, slice) blocks in all -- two per SM of
     * an H100, each thread then folding several positions, so the block
     * combine is paid rarely -- and never more slices than images */
    int pairs = g->o * (g->c / g->g), nw = pairs * g->kh * g->kw;
    int want = (CF_BLOCKS + pairs - 1) / pairs;
    if (want > g->n) want = g->n;
    if (want > 65535) want = 65535;
    int per = (g->n + want - 1) / want, nslices = (g->n + per - 1) / per;
    double *part = (double *)cuda_tmp_alloc((size_t)nslices * nw * sizeof(double));
    if (!part) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    if (g->kh == 5) {
        if (is64) cf_launch<double, 5, 5>(g, per, nslices, (const double *)x, (const double *)dy, part, (double *)dw);
        else cf_launch<float, 5, 5>(g, per, nslices, (const float *)x, (const float *)dy, part, (float *)dw);
    } else {
        if (is64) cf_launch<double, 3, 3>(g, per, nslices, (const double *)x, (const double *)dy, part, (double *)dw);
        else cf_launch<float, 3, 3>(g, per, nslices, (const float *)x, (const float *)dy, part, (float *)dw);
    }
    sp_status st = cuda_nn_launched("conv2d_backprop_filter (split-K)");
    cuda_tmp_free(part); /* stream-ordered */
    return st;
}
