/*
 * conv.cu -- conv2d and its two backprops on the GPU, through cuDNN 9.
 *
 * The geometry is the CPU's, literally: cpu_window_init (backend/cpu/conv.h,
 * exported by libspore) turns stride, dilation, pad_mode, padding and the
 * input and kernel sizes into per-side padding and output sizes, so both
 * backends agree on every attribute, "same" included, and report the same
 * errors.  Groups map to cuDNN's group count; float32 and float64 run in
 * their own precision (float32 uses CUDNN_FMA_MATH, so no TF32, unless
 * sp_set_allow_tf32(1) was called).
 *
 * cuDNN pads symmetrically.  When the two sides differ ("same" with an odd
 * total, or four explicit paddings) the input is first copied into a zero
 * frame carrying the difference on the larger side, and cuDNN pads the
 * smaller amount all round: the windows then read exactly the cells the
 * CPU's do.  The backward-data result on that frame is cropped back; the
 * backward-filter pass reads the framed input.
 *
 * Algorithms are chosen once per geometry and cached.  The candidates are
 * cuDNN's heuristic list (cudnnGet*Algorithm_v7) -- and, for the weight and
 * input gradients of small filters, Spore's own kernels (conv_filter.cu).
 * Only deterministic ones count, so a run repeats bit for bit; each runs
 * once to warm up and then CV_TRIALS times between two events (queued behind
 * a spin kernel, so host overhead is not timed), and the fastest is kept
 * (for LeNet's weight gradients on an H100 the heuristics' first choice took
 * 26 and 41 us, Spore's split-K kernel 13 and 27).  Timing synchronizes the
 * stream, which a CUDA graph recording must never do: while the stream is
 * being captured the choice is the old one (the first deterministic
 * candidate that runs) and it is not cached, so the plain run that comes
 * before a recording makes the timed choice that later recordings reuse.
 * Only when no deterministic algorithm runs is a nondeterministic one used
 * (the first that runs).  float32 without TF32 admits only the algorithms
 * that sum products in float32 (GEMM-like and direct ones, see cv_exact)
 * unless none is offered.  A timed choice is the same for the life of the
 * process, so a run repeats bit for bit; across processes two nearly equal
 * candidates may swap, and SPORE_CONV_TUNE=0 turns the timing off (the first
 * deterministic candidate that runs, Spore's own kernel where it applies)
 * for bits that repeat across processes too.  Workspaces come
 * from the stream-ordered allocator for the duration of the call.  Inputs
 * are made contiguous first (cuDNN's strided descriptors do not take every
 * view Spore can make, e.g. negative strides).
 */
#include <cudnn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/conv_filter.cuh"
#include "backend/cuda/nn_util.cuh"

extern "C" {
#include "backend/cpu/conv.h"
}

enum { CV_FWD, CV_BWD_DATA, CV_BWD_FILTER };

typedef struct cv_geom {
    int64_t N, C, H, W, O, kh, kw, G, Ho, Wo;
    cpu_window win;
} cv_geom;

static char *cv_shape(const int64_t *s, char *buf, size_t n) { return sp_shape_str(4, s, buf, n); }

static sp_status cv_geom_init(const char *op, const sp_attrs *attrs, const int64_t xs[4],
                              const int64_t ws[4], cv_geom *g) {
    char b1[96], b2[96];
    memset(g, 0, sizeof *g);
    g->N = xs[0], g->C = xs[1], g->H = xs[2], g->W = xs[3];
    g->O = ws[0], g->kh = ws[2], g->kw = ws[3];
    for (int i = 0; i < 4; i++)
        if (xs[i] < 0 || ws[i] < 0)
            return sp_error(SP_ERR_SHAPE, "%s: negative size in input %s or weight %s", op,
                            cv_shape(xs, b1, sizeof b1), cv_shape(ws, b2, sizeof b2));
    g->G = sp_attrs_get_int(attrs, "groups", 1);
    if (g->G < 1 || g->G > (1 << 20))
        return sp_error(SP_ERR_ARG, "%s: groups must be >= 1, got %lld", op, (long long)g->G);
    if (ws[1] * g->G != g->C || g->O % g->G != 0)
        return sp_error(SP_ERR_SHAPE,
                        "%s: weight %s with groups %lld does not fit input %s (want weight "
                        "[O, C/groups, kh, kw] with O divisible by groups)",
                        op, cv_shape(ws, b2, sizeof b2), (long long)g->G,
                        cv_shape(xs, b1, sizeof b1));
    if (g->kh < 1 || g->kw < 1)
        return sp_error(SP_ERR_SHAPE, "%s: weight %s has an empty kernel", op,
                        cv_shape(ws, b2, sizeof b2));
    const int64_t in[2] = {g->H, g->W}, k[2] = {g->kh, g->kw};
    sp_status st = cpu_window_init(op, attrs, in, k, NULL, 0, &g->win);
    if (st) return st;
    g->Ho = g->win.out[0];
    g->Wo = g->win.out[1];
    return SP_OK;
}

static sp_status cv_check_in(const char *op, const char *what, const sp_tensor *t, sp_dtype dt) {
    char b[96];
    if (t->ndim != 4)
        return sp_error(SP_ERR_SHAPE, "%s: %s must be 4-D (NCHW), got shape %s", op, what,
                        sp_shape_str(t->ndim, t->shape, b, sizeof b));
    if (t->dtype != dt)
        return sp_error(SP_ERR_DTYPE, "%s: %s is %s but the other input is %s", op, what,
                        sp_dtype_name(t->dtype), sp_dtype_name(dt));
    if (dt != SP_F32 && dt != SP_F64)
        return sp_error(SP_ERR_DTYPE, "%s: %s must be float32 or float64, got %s", op, what,
                        sp_dtype_name(dt));
    return SP_OK;
}

static sp_status cv_check_out(const char *op, const sp_tensor *t, sp_dtype dt,
                              const int64_t want[4]) {
    char b1[96], b2[96];
    if (t->ndim != 4 || memcmp(t->shape, want, 4 * sizeof(int64_t)) != 0 || t->dtype != dt ||
        !sp_tensor_is_contiguous(t))
        return sp_error(SP_ERR_INTERNAL, "%s: output %s %s does not match the expected %s %s", op,
                        sp_dtype_name(t->dtype), sp_shape_str(t->ndim, t->shape, b1, sizeof b1),
                        sp_dtype_name(dt), cv_shape(want, b2, sizeof b2));
    return SP_OK;
}

static sp_status cv_shape_attr(const char *op, const sp_attrs *attrs, const char *name,
                               int64_t out[4]) {
    int n = 0;
    const int64_t *v = sp_attrs_get_ints(attrs, name, &n);
    if (!v || n != 4)
        return sp_error(SP_ERR_ARG, "%s: %s must be 4 ints, got %d", op, name, v ? n : 0);
    for (int i = 0; i < 4; i++) {
        if (v[i] < 0 || v[i] > ((int64_t)1 << 40))
            return sp_error(SP_ERR_ARG, "%s: %s[%d] = %lld is out of range", op, name, i,
                            (long long)v[i]);
        out[i] = v[i];
    }
    return SP_OK;
}

/* ---- the zero frame for asymmetric padding ---- */

/* dst [P, Hp, Wp] (zeroed) gets src [P, H, W] at (top, left). */
template <typename T>
__global__ void cv_frame_kernel(T *dst, const T *src, int64_t n, int64_t H, int64_t W, int64_t Hp,
                                int64_t Wp, int64_t top, int64_t left) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = i % W, r = i / W, h = r % H, p = r / H;
        dst[(p * Hp + h + top) * Wp + w + left] = src[i];
    }
}

/* ---- cuDNN state ---- */

#define CV_PLANS 64

typedef struct cv_key {
    int kind, dtype, tf32;
    int n, c, h, w, o, kh, kw, g, ph, pw, sh, sw, dh, dw, ho, wo;
} cv_key;

typedef struct cv_plan {
    cv_key key;
    int used, algo;
    cudnnMathType_t math;
    uint64_t stamp;
} cv_plan;

static pthread_mutex_t cv_mu = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t cv_handle;
static cv_plan cv_plans[CV_PLANS];
static uint64_t cv_clock;

static sp_status cv_dnn(cudnnStatus_t s, const char *op, const char *what) {
    if (s == CUDNN_STATUS_SUCCESS) return SP_OK;
    return sp_error(SP_ERR_DEVICE, "%s: cuDNN %s failed: %s", op, what, cudnnGetErrorString(s));
}

/* The cached choice for k, or NULL; call with cv_mu held. */
static cv_plan *cv_find_locked(const cv_key *k) {
    for (int i = 0; i < CV_PLANS; i++)
        if (cv_plans[i].used && memcmp(&cv_plans[i].key, k, sizeof *k) == 0) {
            cv_plans[i].stamp = ++cv_clock;
            return &cv_plans[i];
        }
    return NULL;
}

static void cv_store_locked(const cv_key *k, int algo, cudnnMathType_t math) {
    cv_plan *v = &cv_plans[0];
    for (int i = 0; i < CV_PLANS; i++) {
        if (!cv_plans[i].used) {
            v = &cv_plans[i];
            break;
        }
        if (cv_plans[i].stamp < v->stamp) v = &cv_plans[i];
    }
    v->key = *k;
    v->used = 1;
    v->algo = algo;
    v->math = math;
    v->stamp = ++cv_clock;
}

/* One algorithm candidate: its cuDNN id and math type, or CV_OWN. */
typedef struct cv_cand {
    int algo;
    cudnnMathType_t math;
    int det; /* deterministic */
} cv_cand;

enum { CV_OWN = -1, CV_TRIALS = 5 };
#define CV_SPIN_CYCLES 2000000LL /* ~1 ms at H100 clocks */

/* Descriptors of one call. */
typedef struct cv_descs {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
} cv_descs;

static void cv_descs_free(cv_descs *d) {
    if (d->x) cudnnDestroyTensorDescriptor(d->x);
    if (d->y) cudnnDestroyTensorDescriptor(d->y);
    if (d->w) cudnnDestroyFilterDescriptor(d->w);
    if (d->conv) cudnnDestroyConvolutionDescriptor(d->conv);
}

/* Whether cuDNN algorithm `algo` of pass `kind` sums products in the input
 * precision, as the CPU does.  The FFT and Winograd algorithms transform
 * the operands first and lose precision: on an H100 the timed choice for
 * LeNet's second weight gradient (float32, when these were admitted) was
 * off from the CPU by up to 0.5% of the largest weight, with results
 * quantized to about 17 bits, while float64 (no FFT there) matched.  Faster
 * is no reason to return a float32 convolution that is not one, so strict
 * float32 leaves them out. */
static int cv_exact(int kind, int algo) {
    if (kind == CV_FWD)
        return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
    if (kind == CV_BWD_DATA)
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
}

/* Lists up to `cap` candidates for kind k (heuristic order, deterministic
 * first; for float32 without TF32, FMA math and exact algorithms only). */
static int cv_candidates(int kind, const cv_descs *d, int strict_fma, cv_cand *out, int cap) {
    enum { MAXC = 16 };
    int n = 0, got = 0;
    cv_cand det[MAXC], nondet[MAXC];
    int nd = 0, nn = 0;
    if (kind == CV_FWD) {
        cudnnConvolutionFwdAlgoPerf_t p[MAXC];
        if (cudnnGetConvolutionForwardAlgorithm_v7(cv_handle, d->x, d->w, d->conv, d->y, MAXC, &got,
                                                   p) != CUDNN_STATUS_SUCCESS)
            got = 0;
        for (int i = 0; i < got; i++) {
            if (p[i].status != CUDNN_STATUS_SUCCESS) continue;
            if (strict_fma && (p[i].mathType != CUDNN_FMA_MATH || !cv_exact(kind, (int)p[i].algo)))
                continue;
            cv_cand c = {(int)p[i].algo, p[i].mathType, p[i].determinism == CUDNN_DETERMINISTIC};
            if (c.det) det[nd++] = c; else nondet[nn++] = c;
        }
    } else if (kind == CV_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t p[MAXC];
        if (cudnnGetConvolutionBackwardDataAlgorithm_v7(cv_handle, d->w, d->y, d->conv, d->x, MAXC,
                                                        &got, p) != CUDNN_STATUS_SUCCESS)
            got = 0;
        for (int i = 0; i < got; i++) {
            if (p[i].status != CUDNN_STATUS_SUCCESS) continue;
            if (strict_fma && (p[i].mathType != CUDNN_FMA_MATH || !cv_exact(kind, (int)p[i].algo)))
                continue;
            cv_cand c = {(int)p[i].algo, p[i].mathType, p[i].determinism == CUDNN_DETERMINISTIC};
            if (c.det) det[nd++] = c; else nondet[nn++] = c;
        }
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t p[MAXC];
        if (cudnnGetConvolutionBackwardFilterAlgorithm_v7(cv_handle, d->x, d->y, d->conv, d->w,
                                                          MAXC, &got, p) != CUDNN_STATUS_SUCCESS)
            got = 0;
        for (int i = 0; i < got; i++) {
            if (p[i].status != CUDNN_STATUS_SUCCESS) continue;
            if (strict_fma && (p[i].mathType != CUDNN_FMA_MATH || !cv_exact(kind, (int)p[i].algo)))
                continue;
            cv_cand c = {(int)p[i].algo, p[i].mathType, p[i].determinism == CUDNN_DETERMINISTIC};
            if (c.det) det[nd++] = c; else nondet[nn++] = c;
        }
    }
    for (int i = 0; i < nd && n < cap; i++) out[n++] = det[i];
    for (int i = 0; i < nn && n < cap; i++) out[n++] = nondet[i];
    return n;
}

static cf_geom cv_cf_geom(const cv_key *k) {
    cf_geom g = {k->n, k->c, k->h, k->w, k->o, k->g, k->kh, k->kw, k->ho, k->wo,
                 k->ph, k->pw, k->sh, k->sw, k->dh, k->dw};
    return g;
}

/* Runs one algorithm; returns the cuDNN status (CV_OWN: success, or
 * CUDNN_STATUS_EXECUTION_FAILED with the error cleared). */
static cudnnStatus_t cv_exec(int kind, const cv_descs *d, const cv_key *k, cv_cand c, int is64,
                             const void *x, const void *w, const void *y, void *out, sp_device dev) {
    if (c.algo == CV_OWN) {
        cf_geom fg = cv_cf_geom(k);
        sp_status st = kind == CV_BWD_DATA ? cf_data_run(&fg, is64, y, w, out) : cf_run(&fg, is64, x, y, out);
        if (st == SP_OK) return CUDNN_STATUS_SUCCESS;
        sp_clear_error();
        return CUDNN_STATUS_EXECUTION_FAILED;
    }
    cudnnSetConvolutionMathType(d->conv, c.math);
    size_t wsz = 0;
    cudnnStatus_t s;
    if (kind == CV_FWD)
        s = cudnnGetConvolutionForwardWorkspaceSize(cv_handle, d->x, d->w, d->conv, d->y,
                                                    (cudnnConvolutionFwdAlgo_t)c.algo, &wsz);
    else if (kind == CV_BWD_DATA)
        s = cudnnGetConvolutionBackwardDataWorkspaceSize(cv_handle, d->w, d->y, d->conv, d->x,
                                                         (cudnnConvolutionBwdDataAlgo_t)c.algo, &wsz);
    else
        s = cudnnGetConvolutionBackwardFilterWorkspaceSize(
            cv_handle, d->x, d->y, d->conv, d->w, (cudnnConvolutionBwdFilterAlgo_t)c.algo, &wsz);
    if (s != CUDNN_STATUS_SUCCESS) return s;
    sp_tensor *ws = NULL;
    if (wsz > 0) {
        int64_t n = (int64_t)wsz;
        ws = sp_tensor_new(SP_U8, 1, &n, dev);
        if (!ws) {
            sp_clear_error();
            return CUDNN_STATUS_ALLOC_FAILED;
        }
    }
    void *wp = ws ? ws->buf->data : NULL;
    float one_f = 1.0f, zero_f = 0.0f;
    double one_d = 1.0, zero_d = 0.0;
    const void *alpha = is64 ? (const void *)&one_d : (const void *)&one_f;
    const void *beta = is64 ? (const void *)&zero_d : (const void *)&zero_f;
    if (kind == CV_FWD)
        s = cudnnConvolutionForward(cv_handle, alpha, d->x, x, d->w, w, d->conv,
                                    (cudnnConvolutionFwdAlgo_t)c.algo, wp, wsz, beta, d->y, out);
    else if (kind == CV_BWD_DATA)
        s = cudnnConvolutionBackwardData(cv_handle, alpha, d->w, w, d->y, y, d->conv,
                                         (cudnnConvolutionBwdDataAlgo_t)c.algo, wp, wsz, beta, d->x,
                                         out);
    else
        s = cudnnConvolutionBackwardFilter(cv_handle, alpha, d->x, x, d->y, y, d->conv,
                                           (cudnnConvolutionBwdFilterAlgo_t)c.algo, wp, wsz, beta,
                                           d->w, out);
    sp_tensor_release(ws);
    return s;
}

/* Whether to time the candidates: yes unless SPORE_CONV_TUNE=0, which
 * keeps the first deterministic candidate that runs (the same algorithm in
 * every process, so the same bits across processes too; a timed choice can
 * differ between processes when two candidates take about as long). */
static int cv_tune(void) {
    const char *e = getenv("SPORE_CONV_TUNE");
    return !(e && e[0] == '0' && e[1] == 0);
}

/* Keeps the stream busy for about `cycles` clock cycles. */
__global__ void cv_spin_kernel(long long cycles) {
    long long t0 = clock64();
    while (clock64() - t0 < cycles) {
    }
}

/* Times the deterministic candidates (warm-up, then CV_TRIALS runs between
 * two events; synchronizes the stream) and returns the index of the
 * fastest, having left its result in `out`; -1 when none ran or the timing
 * itself failed (errors cleared; *last gets the last cuDNN status).  Call
 * with cv_mu held, never while the stream is captured. */
static int cv_time_locked(int kind, const cv_descs *d, const cv_key *k, const cv_cand *cand, int nc,
                          int is64, const void *x, const void *w, const void *y, void *out,
                          sp_device dev, cudnnStatus_t *last) {
    cudaStream_t s = cuda_stream();
    cudaEvent_t e0 = NULL, e1 = NULL;
    int best = -1, ran = -1;
    float best_ms = 0;
    if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) goto done;
    for (int i = 0; i < nc; i++) {
        if (!cand[i].det) continue;
        ran = i; /* the last one that may have written `out` */
        cudnnStatus_t r = cv_exec(kind, d, k, cand[i], is64, x, w, y, out, dev);
        *last = r;
        if (r != CUDNN_STATUS_SUCCESS) continue;
        /* the trials queue up behind a ~1 ms spin, so the events time the
         * GPU's work and not the host's (cuDNN's per-call overhead, the
         * workspace allocation), which would favour the wrong algorithm */
        cv_spin_kernel<<<1, 1, 0, s>>>(CV_SPIN_CYCLES);
        cudaEventRecord(e0, s);
        for (int t = 0; t < CV_TRIALS && r == CUDNN_STATUS_SUCCESS; t++)
            r = cv_exec(kind, d, k, cand[i], is64, x, w, y, out, dev);
        cudaEventRecord(e1, s);
        float ms = 0;
        if (r != CUDNN_STATUS_SUCCESS || cudaEventSynchronize(e1) != cudaSuccess ||
            cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess) {
            (void)cudaGetLastError();
            continue;
        }
        if (best < 0 || ms < best_ms) best = i, best_ms = ms;
    }
    /* the output must be the kept algorithm's bits, as every later run's */
    if (best >= 0 && ran != best &&
        cv_exec(kind, d, k, cand[best], is64, x, w, y, out, dev) != CUDNN_STATUS_SUCCESS)
        best = -1;
done:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    (void)cudaGetLastError();
    return best;
}

/* One convolution pass on contiguous device arrays.  x is [N,C,Hx,Wx]
 * (already framed: padding ph/pw symmetric), w [O,C/G,kh,kw], y
 * [N,O,Ho,Wo]; `out` is y (forward), x (backward data) or w (backward
 * filter). */
static sp_status cv_pass(const char *op, int kind, sp_dtype dt, const cv_geom *g, int64_t Hx,
                         int64_t Wx, int64_t ph, int64_t pw, const void *x, const void *w,
                         const void *y, void *out, sp_device dev) {
    int64_t dims[] = {g->N, g->C, Hx, Wx, g->O, g->kh, g->kw, g->Ho, g->Wo, ph, pw};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i] > INT32_MAX)
            return sp_error(SP_ERR_UNSUPPORTED, "%s: a size of %lld is too large for cuDNN", op,
                            (long long)dims[i]);
    if (g->N * g->C * Hx * Wx > INT32_MAX || g->N * g->O * g->Ho * g->Wo > INT32_MAX)
        return sp_error(SP_ERR_UNSUPPORTED, "%s: tensors of 2^31 elements or more are not supported", op);
    int is64 = dt == SP_F64;
    int tf32 = !is64 && sp_get_allow_tf32();
    cudnnDataType_t ct = is64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    cv_key k;
    memset(&k, 0, sizeof k);
    k.kind = kind, k.dtype = dt, k.tf32 = tf32;
    k.n = (int)g->N, k.c = (int)g->C, k.h = (int)Hx, k.w = (int)Wx, k.o = (int)g->O;
    k.kh = (int)g->kh, k.kw = (int)g->kw, k.g = (int)g->G, k.ph = (int)ph, k.pw = (int)pw;
    k.sh = (int)g->win.stride[0], k.sw = (int)g->win.stride[1];
    k.dh = (int)g->win.dil[0], k.dw = (int)g->win.dil[1];
    k.ho = (int)g->Ho, k.wo = (int)g->Wo;

    cv_descs d;
    memset(&d, 0, sizeof d);
    sp_status st = SP_OK;
    pthread_mutex_lock(&cv_mu);
    if (!cv_handle && (st = cv_dnn(cudnnCreate(&cv_handle), op, "handle creation"))) {
        cv_handle = NULL;
        goto out;
    }
    if ((st = cv_dnn(cudnnSetStream(cv_handle, cuda_stream()), op, "stream")) ||
        (st = cv_dnn(cudnnCreateTensorDescriptor(&d.x), op, "descriptor")) ||
        (st = cv_dnn(cudnnCreateTensorDescriptor(&d.y), op, "descriptor")) ||
        (st = cv_dnn(cudnnCreateFilterDescriptor(&d.w), op, "descriptor")) ||
        (st = cv_dnn(cudnnCreateConvolutionDescriptor(&d.conv), op, "descriptor")) ||
        (st = cv_dnn(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, ct, k.n, k.c, k.h, k.w),
                     op, "input descriptor")) ||
        (st = cv_dnn(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, ct, k.n, k.o, (int)g->Ho,
                                                (int)g->Wo),
                     op, "output descriptor")) ||
        (st = cv_dnn(cudnnSetFilter4dDescriptor(d.w, ct, CUDNN_TENSOR_NCHW, k.o, (int)(g->C / g->G),
                                                k.kh, k.kw),
                     op, "filter descriptor")) ||
        (st = cv_dnn(cudnnSetConvolution2dDescriptor(d.conv, k.ph, k.pw, k.sh, k.sw, k.dh, k.dw,
                                                     CUDNN_CROSS_CORRELATION, ct),
                     op, "convolution descriptor")) ||
        (st = cv_dnn(cudnnSetConvolutionGroupCount(d.conv, k.g), op, "group count")) ||
        (st = cv_dnn(cudnnSetConvolutionMathType(d.conv, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
                     op, "math type")))
        goto out;
    {
        int on, oc, oh, ow;
        if ((st = cv_dnn(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &on, &oc, &oh, &ow),
                         op, "output size")))
            goto out;
        if (on != k.n || oc != k.o || oh != g->Ho || ow != g->Wo) {
            st = sp_error(SP_ERR_INTERNAL, "%s: cuDNN sizes the output %dx%d, Spore %lldx%lld", op,
                          oh, ow, (long long)g->Ho, (long long)g->Wo);
            goto out;
        }
        cv_plan *p = cv_find_locked(&k);
        if (p) {
            cv_cand c = {p->algo, p->math, 1};
            cudnnStatus_t s = cv_exec(kind, &d, &k, c, is64, x, w, y, out, dev);
            if (s == CUDNN_STATUS_SUCCESS) goto out;
            p->used = 0; /* forget it and search again */
        }
        cv_cand cand[17];
        int nc = 0;
        cf_geom fg = cv_cf_geom(&k);
        if (kind != CV_FWD && cf_supported(&fg)) {
            cv_cand own = {CV_OWN, CUDNN_DEFAULT_MATH, 1};
            cand[nc++] = own;
        }
        int nh = cv_candidates(kind, &d, !is64 && !tf32, cand + nc, 16);
        if (nh == 0) nh = cv_candidates(kind, &d, 0, cand + nc, 16);
        nc += nh;
        cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
        if (!cuda_nn_capturing() && cv_tune()) {
            int best = cv_time_locked(kind, &d, &k, cand, nc, is64, x, w, y, out, dev, &last);
            if (best >= 0) {
                cv_store_locked(&k, cand[best].algo, cand[best].math);
                goto out;
            }
        }
        for (int i = 0; i < nc; i++) {
            last = cv_exec(kind, &d, &k, cand[i], is64, x, w, y, out, dev);
            if (last == CUDNN_STATUS_SUCCESS) {
                if (!cuda_nn_capturing()) cv_store_locked(&k, cand[i].algo, cand[i].math);
                goto out;
            }
        }
        st = cv_dnn(last, op, "convolution (no algorithm ran)");
    }
out:
    pthread_mutex_unlock(&cv_mu);
    cv_descs_free(&d);
    if (!st) st = cuda_nn_launched(op);
    return st;
}

/* The symmetric padding cuDNN gets and the frame that carries the rest. */
typedef struct cv_frame {
    int64_t ph, pw, top, left, Hp, Wp;
    int needed;
} cv_frame;

static cv_frame cv_frame_of(const cv_geom *g) {
    cv_frame f;
    const cpu_window *w = &g->win;
    f.ph = w->pad_lo[0] < w->pad_hi[0] ? w->pad_lo[0] : w->pad_hi[0];
    f.pw = w->pad_lo[1] < w->pad_hi[1] ? w->pad_lo[1] : w->pad_hi[1];
    f.top = w->pad_lo[0] - f.ph;
    f.left = w->pad_lo[1] - f.pw;
    f.Hp = g->H + (w->pad_lo[0] - f.ph) + (w->pad_hi[0] - f.ph);
    f.Wp = g->W + (w->pad_lo[1] - f.pw) + (w->pad_hi[1] - f.pw);
    f.needed = f.Hp != g->H || f.Wp != g->W;
    return f;
}

/* A framed copy of contiguous x ([N*C] planes of H x W) in *held. */
static sp_status cv_frame_input(const cv_geom *g, const cv_frame *f, sp_tensor *x, sp_tensor **held) {
    int64_t shape[4] = {g->N, g->C, f->Hp, f->Wp};
    *held = sp_tensor_new(x->dtype, 4, shape, x->buf->device);
    if (!*held) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    cudaStream_t s = cuda_stream();
    sp_status st = cuda_check(cudaMemsetAsync((*held)->buf->data, 0, sp_tensor_nbytes(*held), s),
                              "conv2d (padding frame)");
    if (st) return st;
    int64_t n = sp_tensor_numel(x);
    if (n == 0) return SP_OK;
    unsigned bl = cuda_nn_blocks(n, 256);
    if (x->dtype == SP_F64)
        cv_frame_kernel<double><<<bl, 256, 0, s>>>((double *)(*held)->buf->data,
                                                   (const double *)x->buf->data + x->offset, n,
                                                   g->H, g->W, f->Hp, f->Wp, f->top, f->left);
    else
        cv_frame_kernel<float><<<bl, 256, 0, s>>>((float *)(*held)->buf->data,
                                                  (const float *)x->buf->data + x->offset, n, g->H,
                                                  g->W, f->Hp, f->Wp, f->top, f->left);
    return cuda_nn_launched("conv2d (padding frame)");
}

static const char *cv_ptr(const sp_tensor *t) {
    return (const char *)t->buf->data + t->offset * (int64_t)sp_dtype_size(t->dtype);
}

static sp_status cv_zero(sp_tensor *t, const char *op) {
    return cuda_check(cudaMemsetAsync(t->buf->data, 0, sp_tensor_nbytes(t), cuda_stream()), op);
}

sp_status cuda_conv2d(const sp_kernel_args *a) {
    const char *op = "conv2d";
    sp_tensor *x = a->in[0], *w = a->in[1], *y = a->out[0];
    sp_tensor *xc = NULL, *wc = NULL, *xf = NULL;
    sp_status st;
    if ((st = cv_check_in(op, "input", x, x->dtype)) || (st = cv_check_in(op, "weight", w, x->dtype)))
        return st;
    cv_geom g;
    if ((st = cv_geom_init(op, a->attrs, x->shape, w->shape, &g))) return st;
    const int64_t want[4] = {g.N, g.O, g.Ho, g.Wo};
    if ((st = cv_check_out(op, y, x->dtype, want))) return st;
    if (sp_tensor_numel(y) == 0) return SP_OK;
    if (g.C == 0) return cv_zero(y, op);
    cv_frame f = cv_frame_of(&g);
    if ((st = cuda_nn_contig(x, &xc)) || (st = cuda_nn_contig(w, &wc))) goto done;
    if (f.needed && (st = cv_frame_input(&g, &f, xc, &xf))) goto done;
    st = cv_pass(op, CV_FWD, x->dtype, &g, f.Hp, f.Wp, f.ph, f.pw, cv_ptr(xf ? xf : xc), cv_ptr(wc),
                 NULL, y->buf->data, y->buf->device);
done:
    sp_tensor_release(xc);
    sp_tensor_release(wc);
    sp_tensor_release(xf);
    return st;
}

sp_status cuda_conv2d_backprop_input(const sp_kernel_args *a) {
    const char *op = "conv2d_backprop_input";
    sp_tensor *dy = a->in[0], *w = a->in[1], *dx = a->out[0];
    sp_tensor *dyc = NULL, *wc = NULL, *dxf = NULL;
    sp_status st;
    if ((st = cv_check_in(op, "dy", dy, dy->dtype)) || (st = cv_check_in(op, "weight", w, dy->dtype)))
        return st;
    int64_t xshape[4];
    if ((st = cv_shape_attr(op, a->attrs, "input_shape", xshape))) return st;
    cv_geom g;
    if ((st = cv_geom_init(op, a->attrs, xshape, w->shape, &g))) return st;
    const int64_t dyshape[4] = {g.N, g.O, g.Ho, g.Wo};
    if (memcmp(dy->shape, dyshape, sizeof dyshape) != 0) {
        char b1[96], b2[96], b3[96];
        return sp_error(SP_ERR_SHAPE, "%s: dy has shape %s but input_shape %s gives %s", op,
                        cv_shape(dy->shape, b1, sizeof b1), cv_shape(xshape, b2, sizeof b2),
                        cv_shape(dyshape, b3, sizeof b3));
    }
    if ((st = cv_check_out(op, dx, dy->dtype, xshape))) return st;
    if (sp_tensor_numel(dx) == 0) return SP_OK;
    if (g.O == 0 || g.Ho * g.Wo == 0) return cv_zero(dx, op);
    cv_frame f = cv_frame_of(&g);
    if ((st = cuda_nn_contig(dy, &dyc)) || (st = cuda_nn_contig(w, &wc))) goto done;
    if (f.needed) {
        int64_t fs[4] = {g.N, g.C, f.Hp, f.Wp};
        dxf = sp_tensor_new(dx->dtype, 4, fs, dx->buf->device);
        if (!dxf) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            goto done;
        }
    }
    st = cv_pass(op, CV_BWD_DATA, dy->dtype, &g, f.Hp, f.Wp, f.ph, f.pw, NULL, cv_ptr(wc),
                 cv_ptr(dyc), dxf ? dxf->buf->data : dx->buf->data, dx->buf->device);
    if (!st && dxf) { /* crop the frame */
        int64_t es = (int64_t)sp_dtype_size(dx->dtype);
        int64_t strides[4] = {g.C * f.Hp * f.Wp, f.Hp * f.Wp, f.Wp, 1};
        const char *src = (const char *)dxf->buf->data + (f.top * f.Wp + f.left) * es;
        st = cuda_nn_gather(dx->buf->data, src, (size_t)es, 4, xshape, strides);
    }
done:
    sp_tensor_release(dyc);
    sp_tensor_release(wc);
    sp_tensor_release(dxf);
    return st;
}

sp_status cuda_conv2d_backprop_filter(const sp_kernel_args *a) {
    const char *op = "conv2d_backprop_filter";
    sp_tensor *dy = a->in[0], *x = a->in[1], *dw = a->out[0];
    sp_tensor *dyc = NULL, *xc = NULL, *xf = NULL;
    sp_status st;
    if ((st = cv_check_in(op, "dy", dy, dy->dtype)) || (st = cv_check_in(op, "input", x, dy->dtype)))
        return st;
    int64_t wshape[4];
    if ((st = cv_shape_attr(op, a->attrs, "filter_shape", wshape))) return st;
    cv_geom g;
    if ((st = cv_geom_init(op, a->attrs, x->shape, wshape, &g))) return st;
    const int64_t dyshape[4] = {g.N, g.O, g.Ho, g.Wo};
    if (memcmp(dy->shape, dyshape, sizeof dyshape) != 0) {
        char b1[96], b2[96], b3[96], b4[96];
        return sp_error(SP_ERR_SHAPE, "%s: dy has shape %s but input %s and filter %s give %s", op,
                        cv_shape(dy->shape, b1, sizeof b1), cv_shape(x->shape, b2, sizeof b2),
                        cv_shape(wshape, b3, sizeof b3), cv_shape(dyshape, b4, sizeof b4));
    }
    if ((st = cv_check_out(op, dw, dy->dtype, wshape))) return st;
    if (sp_tensor_numel(dw) == 0) return SP_OK;
    if (g.N == 0 || g.Ho * g.Wo == 0) return cv_zero(dw, op);
    cv_frame f = cv_frame_of(&g);
    if ((st = cuda_nn_contig(dy, &dyc)) || (st = cuda_nn_contig(x, &xc))) goto done;
    if (f.needed && (st = cv_frame_input(&g, &f, xc, &xf))) goto done;
    st = cv_pass(op, CV_BWD_FILTER, dy->dtype, &g, f.Hp, f.Wp, f.ph, f.pw, cv_ptr(xf ? xf : xc),
                 NULL, cv_ptr(dyc), dw->buf->data, dw->buf->device);
done:
    sp_tensor_release(dyc);
    sp_tensor_release(xc);
    sp_tensor_release(xf);
    return st;
}
