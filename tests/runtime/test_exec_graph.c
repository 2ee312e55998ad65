/*
 * test_exec_graph.c -- the capture policy of runtime/exec_graph.c, run on
 * any machine: a test double registered as the "cuda" backend keeps device
 * memory on the host, runs the CPU kernels, and implements the capture
 * functions of backend.h by recording launches (not running them) and
 * replaying the recording -- what CUDA graphs do, minus the GPU.
 *
 * So the executor's side of whole-graph capture is checked here, under
 * ASan too: the warming run, the recording on the second run, replays that
 * stage the caller's tensors in, copy results out into fresh tensors and
 * in-place updates back into the caller's tensors, bit-identical results
 * against plain runs over changing inputs and weights; a data error raised
 * inside a replay located as the plain run locates it, with nothing
 * written back; fallbacks (strided or aliased parameters) and a recording
 * the backend refuses, with their reasons; a random draw without a seed
 * never recorded; and every byte of the double's memory returned.  The
 * CUDA side (graph.cu) is test_graph_cuda.c's, on a GPU.
 *
 * usage: test_exec_graph [DIR]   (DIR holds mlp_sgd_step.ir; default: tests/compiler/lower
 * beside this file)
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "compiler/lower.h"
#include "core/device.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "test.h"

/* ---- the double --------------------------------------------------------------- */

static const sp_device DEV = {SP_DEVICE_CUDA, 0};
static long long mock_live;
static int mock_capturing, mock_refuse, mock_launches;

typedef struct mock_rec {
    int op, n_in, n_out;
    sp_attrs attrs;
    sp_tensor *in[SP_MAX_INPUTS], *out[SP_MAX_OUTPUTS];
} mock_rec;

typedef struct mock_graph {
    int n, cap;
    mock_rec *r;
} mock_graph;

static mock_graph *mock_rec_now;

static void *mock_alloc(size_t n, void *ctx) {
    (void)ctx;
    size_t *p = malloc(n + 64);
    if (!p) return NULL;
    p[0] = n;
    mock_live += (long long)n;
    return (char *)p + 64;
}

static void mock_free(void *p, void *ctx) {
    (void)ctx;
    if (!p) return;
    size_t *h = (size_t *)((char *)p - 64);
    mock_live -= (long long)h[0];
    free(h);
}

static sp_status mock_memset(void *p, int byte, size_t n, void *ctx) {
    (void)ctx;
    memset(p, byte, n);
    return SP_OK;
}

static void *mock_be_alloc(sp_backend *be, size_t n) {
    (void)be;
    return mock_alloc(n, NULL);
}
static void mock_be_free(sp_backend *be, void *p) {
    (void)be;
    mock_free(p, NULL);
}
static sp_status mock_copy(sp_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    if (mock_capturing) return sp_error(SP_ERR_UNSUPPORTED, "mock: copy during a capture");
    if (n) memcpy(dst, src, n);
    return SP_OK;
}
static int mock_supports(sp_backend *be, int op, sp_dtype d) {
    (void)be;
    sp_backend *cpu = sp_backend_cpu();
    return cpu->supports(cpu, op, d);
}
static sp_status mock_launch(sp_backend *be, const sp_kernel_args *a) {
    (void)be;
    if (mock_capturing) {
        mock_graph *g = mock_rec_now;
        if (g->n == g->cap) {
            int cap = g->cap ? 2 * g->cap : 16;
            mock_rec *r = realloc(g->r, (size_t)cap * sizeof *r);
            if (!r) return sp_error(SP_ERR_NOMEM, "mock: out of memory");
            g->r = r;
            g->cap = cap;
        }
        mock_rec *r = &g->r[g->n++];
        memset(r, 0, sizeof *r);
        r->op = a->op, r->n_in = a->n_in, r->n_out = a->n_out, r->attrs = *a->attrs;
        /* the recording holds what it touches, as CUDA's holds addresses
         * whose blocks the capture keeps */
        for (int i = 0; i < a->n_in; i++) sp_tensor_retain(r->in[i] = a->in[i]);
        for (int i = 0; i < a->n_out; i++) sp_tensor_retain(r->out[i] = a->out[i]);
        return SP_OK;
    }
    mock_launches++;
    sp_backend *cpu = sp_backend_cpu();
    return cpu->launch(cpu, a);
}
static sp_status mock_sync(sp_backend *be) {
    (void)be;
    return SP_OK;
}

static void mock_graph_free(sp_backend *be, void *p) {
    (void)be;
    mock_graph *g = p;
    if (!g) return;
    for (int k = 0; k < g->n; k++) {
        for (int i = 0; i < g->r[k].n_in; i++) sp_tensor_release(g->r[k].in[i]);
        for (int i = 0; i < g->r[k].n_out; i++) sp_tensor_release(g->r[k].out[i]);
    }
    free(g->r);
    free(g);
}

static sp_status mock_capture_begin(sp_backend *be) {
    (void)be;
    if (!(mock_rec_now = calloc(1, sizeof *mock_rec_now))) return sp_error(SP_ERR_NOMEM, "mock");
    mock_capturing = 1;
    return SP_OK;
}

static sp_status mock_capture_end(sp_backend *be, int keep, void **graph, char *why, size_t why_n) {
    mock_capturing = 0;
    *graph = NULL;
    mock_graph *g = mock_rec_now;
    mock_rec_now = NULL;
    if (!keep || mock_refuse) {
        mock_graph_free(be, g);
        if (!keep) return SP_OK;
        snprintf(why, why_n, "the mock refuses to record");
        return sp_error(SP_ERR_UNSUPPORTED, "mock: refused");
    }
    *graph = g;
    return SP_OK;
}

static sp_status mock_graph_launch(sp_backend *be, void *graph, int n_in, const sp_backend_copy *in,
                                   int n_out, const sp_backend_copy *out, int flags, int *err_op) {
    (void)flags;
    mock_graph *g = graph;
    sp_backend *cpu = sp_backend_cpu();
    *err_op = -1;
    for (int i = 0; i < n_in; i++) memcpy(in[i].dst, in[i].src, in[i].nbytes);
    for (int k = 0; k < g->n; k++) {
        mock_rec *r = &g->r[k];
        sp_kernel_args a = {r->op, r->n_in, r->in, r->n_out, r->out, &r->attrs};
        sp_status st = cpu->launch(cpu, &a);
        if (st) {
            *err_op = r->op;
            return st; /* nothing copied out */
        }
    }
    (void)be;
    for (int i = 0; i < n_out; i++) memcpy(out[i].dst, out[i].src, out[i].nbytes);
    return SP_OK;
}

static sp_backend mock_backend = {
    .name = "mock-cuda",
    .type = SP_DEVICE_CUDA,
    .alloc = mock_be_alloc,
    .free = mock_be_free,
    .memcpy_to_device = mock_copy,
    .memcpy_to_host = mock_copy,
    .supports = mock_supports,
    .launch = mock_launch,
    .sync = mock_sync,
    .capture_begin = mock_capture_begin,
    .capture_end = mock_capture_end,
    .graph_launch = mock_graph_launch,
    .graph_free = mock_graph_free,
};

/* ---- helpers ------------------------------------------------------------------- */

#define NP 10
#define NR 2

static char dir[4096];

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

static sp_graph *graph_of(sp_module *m, const char *name) {
    sp_value *gv = m ? ir_module_get_global(m, name) : NULL;
    return gv && gv->kind == SP_V_GRAPH ? gv->u.graph : NULL;
}

static sp_tensor *dev_randn(int ndim, const int64_t *shape, uint64_t seed) {
    sp_tensor *h = sp_tensor_new(SP_F32, ndim, shape, SP_CPU), *d = NULL;
    if (h && sp_rng_normal(h, seed, 0, 0.0, 1.0) == SP_OK) sp_tensor_to(h, DEV, &d);
    sp_tensor_release(h);
    return d;
}

static sp_tensor *dev_labels(int64_t n, int64_t salt, int64_t bad_at, int64_t bad) {
    sp_tensor *h = sp_tensor_new(SP_I64, 1, &n, SP_CPU), *d = NULL;
    if (!h) return NULL;
    for (int64_t i = 0; i < n; i++) ((int64_t *)sp_tensor_data(h))[i] = i == bad_at ? bad : (i * 7 + salt) % 5;
    sp_tensor_to(h, DEV, &d);
    sp_tensor_release(h);
    return d;
}

static sp_tensor *dev_copy(sp_tensor *t) {
    sp_tensor *h = NULL, *d = NULL;
    if (t && sp_tensor_to(t, SP_CPU, &h) == SP_OK) sp_tensor_to(h, DEV, &d);
    sp_tensor_release(h);
    return d;
}

static int same_bits(sp_tensor *a, sp_tensor *b) {
    sp_tensor *x = NULL, *y = NULL;
    int ok = 0;
    if (a && b && a->dtype == b->dtype && sp_tensor_numel(a) == sp_tensor_numel(b) &&
        sp_tensor_to(a, SP_CPU, &x) == SP_OK && sp_tensor_to(b, SP_CPU, &y) == SP_OK) {
        sp_tensor *cx = NULL, *cy = NULL;
        if (sp_tensor_contiguous(x, &cx) == SP_OK && sp_tensor_contiguous(y, &cy) == SP_OK)
            ok = memcmp(sp_tensor_data(cx), sp_tensor_data(cy),
                        (size_t)sp_tensor_numel(cx) * sp_dtype_size(cx->dtype)) == 0;
        sp_tensor_release(cx);
        sp_tensor_release(cy);
    }
    sp_tensor_release(x);
    sp_tensor_release(y);
    return ok;
}

static int all_same(sp_tensor **a, sp_tensor **b, int n) {
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= same_bits(a[i], b[i]);
    return ok;
}

static sp_status run(sp_lowered *l, int mode, sp_tensor *const *p, sp_tensor **out) {
    int prev = sp_exec_set_capture(mode);
    sp_status st = sp_lowered_run(l, NP, p, out);
    sp_exec_set_capture(prev);
    return st;
}

static void release_n(int n, sp_tensor **t) {
    for (int i = 0; i < n; i++) {
        sp_tensor_release(t[i]);
        t[i] = NULL;
    }
}

static sp_module *load_step(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/mlp_sgd_step.ir", dir);
    char *text = read_text(path);
    CHECK(text != NULL);
    sp_module *m = text ? sp_module_parse_ir(text, path) : NULL;
    free(text);
    CHECK(m && ir_module_finalize(m) == SP_OK);
    return m;
}

/* ---- the training step ----------------------------------------------------------- */

static void test_step(void) {
    sp_module *m = load_step();
    sp_graph *g = graph_of(m, "step");
    CHECK(g != NULL);
    if (!g) {
        sp_module_free(m);
        return;
    }
    const int64_t N = 8, si[4] = {N, 1, 4, 5}, sw1[2] = {20, 16}, sb1[1] = {16}, sw2[2] = {16, 5},
                  sb2[1] = {5};
    const int64_t *wshape[4] = {sw1, sb1, sw2, sb2};
    const int wnd[4] = {2, 1, 2, 1};
    sp_tensor *ref[NP] = {0}, *cap[NP] = {0};
    for (int i = 0; i < 4; i++) {
        ref[2 + i] = dev_randn(wnd[i], wshape[i], 10 + (uint64_t)i);
        cap[2 + i] = dev_copy(ref[2 + i]);
        ref[6 + i] = sp_tensor_zeros(SP_F32, wnd[i], wshape[i], DEV);
        cap[6 + i] = sp_tensor_zeros(SP_F32, wnd[i], wshape[i], DEV);
    }
    CHECK(cap[2] && cap[2]->buf->device.type == SP_DEVICE_CUDA);
    sp_meta metas[NP];
    metas[0] = (sp_meta){.dtype = SP_F32, .ndim = 4, .shape = {N, 1, 4, 5}};
    metas[1] = (sp_meta){.dtype = SP_I64, .ndim = 1, .shape = {N}};
    for (int i = 2; i < NP; i++) metas[i] = sp_meta_of(ref[i]);
    char why[256];
    sp_lowered *lr = sp_lower(g, NP, metas, NULL, why, sizeof why);
    sp_lowered *lc = sp_lower(g, NP, metas, NULL, why, sizeof why);
    CHECK(lr && lc);
    if (!lr || !lc) goto done;
    int launches_per_run = sp_lowered_stats(lc).n_launches;

    for (int step = 0; step < 6; step++) {
        sp_tensor *x = dev_randn(4, si, 100 + (uint64_t)step), *y = dev_labels(N, step, -1, 0);
        ref[0] = cap[0] = x, ref[1] = cap[1] = y;
        if (step == 3) /* the caller passes other (equal) weight tensors */
            for (int i = 2; i < 6; i++) {
                sp_tensor *c = dev_copy(cap[i]);
                sp_tensor_release(cap[i]);
                cap[i] = c;
            }
        sp_tensor *ro[NR] = {0}, *co[NR] = {0}, *w1_before = dev_copy(cap[2]);
        CHECK_OK(run(lr, SP_EXEC_CAPTURE_OFF, ref, ro));
        int before = mock_launches;
        CHECK_OK(run(lc, SP_EXEC_CAPTURE_ON, cap, co));
        /* run 0 warms (every kernel launched), run 1 records then replays,
         * later runs only replay: no kernel launched one by one */
        if (step == 0) CHECK(mock_launches - before == launches_per_run);
        if (step >= 1) CHECK(mock_launches == before);
        CHECK(all_same(ro, co, NR));
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        CHECK(!same_bits(w1_before, cap[2])); /* updated, in the caller's tensor */
        CHECK(co[0] && co[0]->buf->device.type == SP_DEVICE_CUDA && co[0] != ro[0]);
        sp_tensor_release(w1_before);
        release_n(NR, ro);
        release_n(NR, co);
        sp_tensor_release(x);
        sp_tensor_release(y);
        ref[0] = ref[1] = cap[0] = cap[1] = NULL;
        sp_exec_graph_stats s = sp_lowered_graph_stats(lc);
        if (step == 0) CHECK(s.state == SP_EXEC_GRAPH_WARM && s.captures == 0 && s.plain == 1);
        if (step >= 1) CHECK(s.state == SP_EXEC_GRAPH_READY && s.captures == 1 && s.replays == step);
    }
    CHECK(sp_lowered_graph_stats(lr).replays == 0);

    /* results that stay alive across steps are never overwritten by a replay */
    {
        sp_tensor *x = dev_randn(4, si, 50), *y = dev_labels(N, 1, -1, 0), *a[NR] = {0}, *b[NR] = {0};
        ref[0] = cap[0] = x, ref[1] = cap[1] = y;
        CHECK_OK(run(lc, SP_EXEC_CAPTURE_ON, cap, a));
        sp_tensor *keep = dev_copy(a[1]);
        CHECK_OK(run(lc, SP_EXEC_CAPTURE_ON, cap, b));
        CHECK(same_bits(keep, a[1]) && a[1] != b[1] && a[1]->buf->data != b[1]->buf->data);
        sp_tensor_release(keep);
        release_n(NR, a);
        release_n(NR, b);
        /* bring ref level with cap again: two plain steps */
        for (int k = 0; k < 2; k++) {
            sp_tensor *t[NR] = {0};
            CHECK_OK(run(lr, SP_EXEC_CAPTURE_OFF, ref, t));
            release_n(NR, t);
        }
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        sp_tensor_release(x);
        sp_tensor_release(y);
        ref[0] = ref[1] = cap[0] = cap[1] = NULL;
    }

    /* a label out of range inside a replay: the plain run's message and
     * location, and no parameter written */
    {
        sp_tensor *x = dev_randn(4, si, 7), *y = dev_labels(N, 1, 3, 9);
        ref[0] = cap[0] = x, ref[1] = cap[1] = y;
        sp_tensor *ro[NR] = {0}, *co[NR] = {0};
        long long r0 = sp_lowered_graph_stats(lc).replays;
        char want[1024];
        sp_status a = run(lr, SP_EXEC_CAPTURE_OFF, ref, ro);
        snprintf(want, sizeof want, "%s", sp_last_error());
        sp_status b = run(lc, SP_EXEC_CAPTURE_ON, cap, co);
        CHECK(a != SP_OK && b == a);
        CHECK(strstr(want, "sparse_softmax_cross_entropy") != NULL);
        CHECK(strstr(want, "mlp_sgd_step.ir:") != NULL); /* located at the node */
        CHECK_STR(sp_last_error(), want);
        CHECK(!ro[0] && !co[0]);
        CHECK(sp_lowered_graph_stats(lc).replays == r0 + 1);
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        sp_clear_error();
        sp_tensor_release(x);
        sp_tensor_release(y);
        ref[0] = ref[1] = cap[0] = cap[1] = NULL;
    }

    /* a strided batch and an aliased update run plainly, counted */
    {
        const int64_t sT[4] = {N, 1, 5, 4};
        sp_tensor *xt = dev_randn(4, sT, 8), *x = NULL, *y = dev_labels(N, 3, -1, 0);
        CHECK_OK(sp_tensor_permute(xt, (int[]){0, 1, 3, 2}, &x));
        CHECK(x && !sp_tensor_is_contiguous(x));
        ref[0] = cap[0] = x, ref[1] = cap[1] = y;
        sp_tensor *ro[NR] = {0}, *co[NR] = {0};
        CHECK_OK(run(lr, SP_EXEC_CAPTURE_OFF, ref, ro));
        CHECK_OK(run(lc, SP_EXEC_CAPTURE_ON, cap, co));
        CHECK(all_same(ro, co, NR));
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        sp_exec_graph_stats s = sp_lowered_graph_stats(lc);
        CHECK(s.fallbacks == 1 && strstr(s.why, "parameter 0 (images) is not contiguous") != NULL);
        release_n(NR, ro);
        release_n(NR, co);
        sp_tensor *rp[NP], *cp[NP];
        memcpy(rp, ref, sizeof rp);
        memcpy(cp, cap, sizeof cp);
        rp[0] = cp[0] = xt; /* any [N,1,4,5]-sized contiguous batch will do: reshape it */
        sp_tensor *xr = NULL;
        CHECK_OK(sp_tensor_reshape(xt, 4, si, &xr));
        rp[0] = cp[0] = xr;
        rp[9] = rp[5], cp[9] = cp[5]; /* mb2 is b2 itself */
        CHECK_OK(run(lr, SP_EXEC_CAPTURE_OFF, rp, ro));
        CHECK_OK(run(lc, SP_EXEC_CAPTURE_ON, cp, co));
        CHECK(all_same(ro, co, NR));
        CHECK(all_same(rp + 2, cp + 2, NP - 2));
        s = sp_lowered_graph_stats(lc);
        CHECK(s.fallbacks == 2 && strstr(s.why, "shares memory with parameter 9 (mb2)") != NULL);
        release_n(NR, ro);
        release_n(NR, co);
        sp_tensor_release(xr);
        sp_tensor_release(xt);
        sp_tensor_release(x);
        sp_tensor_release(y);
        ref[0] = ref[1] = cap[0] = cap[1] = NULL;
    }
    {
        sp_exec_graph_stats s = sp_lowered_graph_stats(lc);
        CHECK(s.captures == 1 && s.replays == 8 && s.plain == 3 && s.fallbacks == 2);
    }
done:
    sp_lowered_free(lr);
    sp_lowered_free(lc);
    release_n(NP, ref);
    release_n(NP, cap);
    sp_module_free(m);
}

/* A recording the backend refuses: the program runs plainly from then on,
 * the reason kept, the results right. */
static void test_refused(void) {
    sp_module *m = load_step();
    sp_graph *g = graph_of(m, "step");
    if (!g) {
        sp_module_free(m);
        return;
    }
    const int64_t N = 8, si[4] = {N, 1, 4, 5}, sw1[2] = {20, 16}, sb1[1] = {16}, sw2[2] = {16, 5},
                  sb2[1] = {5};
    const int64_t *wshape[4] = {sw1, sb1, sw2, sb2};
    const int wnd[4] = {2, 1, 2, 1};
    sp_tensor *p[NP] = {0}, *q[NP] = {0};
    for (int i = 0; i < 4; i++) {
        p[2 + i] = dev_randn(wnd[i], wshape[i], 20 + (uint64_t)i);
        q[2 + i] = dev_copy(p[2 + i]);
        p[6 + i] = sp_tensor_zeros(SP_F32, wnd[i], wshape[i], DEV);
        q[6 + i] = sp_tensor_zeros(SP_F32, wnd[i], wshape[i], DEV);
    }
    p[0] = q[0] = dev_randn(4, si, 3);
    p[1] = q[1] = dev_labels(N, 0, -1, 0);
    sp_tensor_retain(p[0]);
    sp_tensor_retain(p[1]);
    sp_meta metas[NP];
    for (int i = 0; i < NP; i++) metas[i] = sp_meta_of(p[i]);
    char why[256];
    sp_lowered *lp = sp_lower(g, NP, metas, NULL, why, sizeof why);
    sp_lowered *lq = sp_lower(g, NP, metas, NULL, why, sizeof why);
    CHECK(lp && lq);
    mock_refuse = 1;
    for (int k = 0; lp && lq && k < 3; k++) {
        sp_tensor *a[NR] = {0}, *b[NR] = {0};
        CHECK_OK(run(lp, SP_EXEC_CAPTURE_OFF, p, a));
        CHECK_OK(run(lq, SP_EXEC_CAPTURE_ON, q, b));
        CHECK(all_same(a, b, NR) && all_same(p + 2, q + 2, NP - 2));
        release_n(NR, a);
        release_n(NR, b);
    }
    mock_refuse = 0;
    sp_exec_graph_stats s = sp_lowered_graph_stats(lq);
    CHECK(s.state == SP_EXEC_GRAPH_OFF && s.captures == 0 && s.replays == 0 && s.plain == 3);
    CHECK(strstr(s.why, "the mock refuses to record") != NULL);
    sp_lowered_free(lp);
    sp_lowered_free(lq);
    release_n(NP, p);
    release_n(NP, q);
    sp_module_free(m);
}

static const char *RANDOM_IR = "global r = @r\n"
                               "graph @r(%1 x) {\n"
                               "  %2 u = prim.uniform(keyword(\"shape\", (4,)))\n"
                               "  %3 y = prim.add(%1, %2)\n"
                               "  return %3\n"
                               "}\n";

/* A draw from the global generator is never recorded (a replay would
 * repeat its numbers). */
static void test_random_not_recorded(void) {
    sp_module *m = sp_module_parse_ir(RANDOM_IR, "random.ir");
    CHECK(m && ir_module_finalize(m) == SP_OK);
    sp_graph *g = graph_of(m, "r");
    const int64_t n = 4;
    sp_tensor *x = sp_tensor_zeros(SP_F32, 1, &n, DEV), *y[3] = {0};
    sp_meta meta = sp_meta_of(x);
    char why[256];
    sp_lowered *l = g ? sp_lower(g, 1, &meta, NULL, why, sizeof why) : NULL;
    CHECK(l != NULL);
    /* the CPU's Philox kernels write only host tensors, so the double's
     * runs fail; what counts is that none was recorded */
    for (int i = 0; l && i < 3; i++) {
        sp_lowered_run(l, 1, &x, &y[i]);
        sp_clear_error();
    }
    sp_exec_graph_stats s = sp_lowered_graph_stats(l);
    CHECK(s.state == SP_EXEC_GRAPH_OFF && s.captures == 0 && s.replays == 0 && s.plain == 3);
    CHECK(strstr(s.why, "uniform draws from the global generator") != NULL);
    release_n(3, y);
    sp_tensor_release(x);
    sp_lowered_free(l);
    sp_module_free(m);
}

/* The CPU never records, and a NULL object has zero figures. */
static void test_cpu_untouched(void) {
    sp_exec_graph_stats s = sp_lowered_graph_stats(NULL);
    CHECK(s.state == SP_EXEC_GRAPH_NONE && s.replays == 0 && s.why[0] == '\0');
    sp_module *m = sp_module_parse_ir(RANDOM_IR, "random.ir");
    sp_graph *g = graph_of(m, "r");
    const int64_t n = 4;
    sp_tensor *x = sp_tensor_zeros(SP_F32, 1, &n, SP_CPU), *y = NULL;
    sp_meta meta = sp_meta_of(x);
    char why[256];
    sp_lowered *l = g ? sp_lower(g, 1, &meta, NULL, why, sizeof why) : NULL;
    for (int i = 0; l && i < 3; i++) {
        CHECK_OK(sp_lowered_run(l, 1, &x, &y));
        sp_tensor_release(y);
    }
    CHECK(l && !l->graph);
    sp_lowered_free(l);
    sp_tensor_release(x);
    sp_module_free(m);
}

int main(int argc, char **argv) {
    if (argc > 1) {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    } else { /* beside this source file (CMake compiles it by absolute path) */
        snprintf(dir, sizeof dir, "%s", __FILE__);
        char *slash = strrchr(dir, '/');
        if (slash) snprintf(slash, sizeof dir - (size_t)(slash - dir), "/../compiler/lower");
        else snprintf(dir, sizeof dir, "../compiler/lower");
    }
    sp_device_allocator_register(SP_DEVICE_CUDA, mock_alloc, mock_free, NULL);
    sp_device_memset_register(SP_DEVICE_CUDA, mock_memset, NULL);
    sp_backend_register(&mock_backend);
    sp_exec_set_capture(SP_EXEC_CAPTURE_ON);
    RUN(test_step);
    RUN(test_refused);
    RUN(test_random_not_recorded);
    RUN(test_cpu_untouched);
    CHECK(mock_live == 0); /* every byte of the double's memory is back */
    return TEST_SUMMARY();
}
