/*
 * test_graph_cuda.c -- whole-graph capture (runtime/exec_graph.c,
 * backend/cuda/graph.cu): a lowered training step recorded once as a CUDA
 * graph and replayed gives, bit for bit, what running its kernels one by
 * one gives (skipped, passing, without a GPU).
 *
 * The program is lower/mlp_sgd_step.ir: a perceptron's forward and
 * backward pass and SGD with momentum updating eight parameters in place.
 * Two copies of the parameters on the GPU step side by side, one through a
 * lowered object with capture off (the reference: plain runs), one with it
 * on, on new batches every step, and once on new weight tensors; after
 * every step the outputs and all parameters must be equal byte for byte.
 * Then: a label out of range inside a replay is reported with the plain
 * run's message and location and changes no parameter; a gather index out
 * of range likewise (the other error path: the device error slot);
 * parameters the graph cannot replay exactly (a strided batch, a weight
 * aliasing its momentum buffer) fall back to plain runs with the reason
 * counted; the counters say the graph was recorded once and replayed; and
 * when everything is freed the device allocator has every block back.
 *
 * Links the shared libspore (as test_lower_cuda.c does, for the same
 * reason: libspore_cuda.so uses that one copy of the core).
 *
 * usage: test_graph_cuda DIR   (DIR holds mlp_sgd_step.ir)
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/lower.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "test.h"

#define NP 10 /* parameters of @step */
#define NR 2  /* tensor results: loss, logits */

static const sp_device GPU = {SP_DEVICE_CUDA, 0};
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

/* A tensor on the GPU from host values (normal(seed), or labels). */
static sp_tensor *gpu_randn(int ndim, const int64_t *shape, uint64_t seed) {
    sp_tensor *h = sp_tensor_new(SP_F32, ndim, shape, SP_CPU), *d = NULL;
    if (h && sp_rng_normal(h, seed, 0, 0.0, 1.0) == SP_OK) sp_tensor_to(h, GPU, &d);
    sp_tensor_release(h);
    return d;
}

static sp_tensor *gpu_labels(int64_t n, int64_t salt, int64_t bad_at, int64_t bad) {
    sp_tensor *h = sp_tensor_new(SP_I64, 1, &n, SP_CPU), *d = NULL;
    if (!h) return NULL;
    for (int64_t i = 0; i < n; i++) ((int64_t *)sp_tensor_data(h))[i] = i == bad_at ? bad : (i * 7 + salt) % 5;
    sp_tensor_to(h, GPU, &d);
    sp_tensor_release(h);
    return d;
}

/* An independent copy of a GPU tensor (through the host). */
static sp_tensor *gpu_copy(sp_tensor *t) {
    sp_tensor *h = NULL, *d = NULL;
    if (t && sp_tensor_to(t, SP_CPU, &h) == SP_OK) sp_tensor_to(h, GPU, &d);
    sp_tensor_release(h);
    return d;
}

/* 1 when a and b (any devices) hold the same bytes. */
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

/* Runs l with capture on or off; NR results into out. */
static sp_status run(sp_lowered *l, int capture, sp_tensor *const *p, sp_tensor **out) {
    int prev = sp_exec_set_capture(capture);
    sp_status st = sp_lowered_run(l, l->n_params, p, out);
    sp_exec_set_capture(prev);
    return st;
}

static void release_n(int n, sp_tensor **t) {
    for (int i = 0; i < n; i++) {
        sp_tensor_release(t[i]);
        t[i] = NULL;
    }
}

/* The device allocator's live bytes (libspore_cuda.so's cuda_live_bytes),
 * or -1 when the symbol cannot be found. */
static long long gpu_live_bytes(void) {
    void *h = dlopen("libspore_cuda.so", RTLD_NOW | RTLD_NOLOAD);
    long long (*fn)(void) = NULL;
    if (h) *(void **)&fn = dlsym(h, "cuda_live_bytes");
    long long v = fn ? fn() : -1;
    if (h) dlclose(h);
    return v;
}

static int all_same(sp_tensor **a, sp_tensor **b, int n) {
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= same_bits(a[i], b[i]);
    return ok;
}

static void test_sgd_step_replay(void) {
    char path[4200];
    snprintf(path, sizeof path, "%s/mlp_sgd_step.ir", dir);
    char *text = read_text(path);
    CHECK(text != NULL);
    sp_module *m = text ? sp_module_parse_ir(text, path) : NULL;
    free(text);
    CHECK(m && ir_module_finalize(m) == SP_OK);
    sp_graph *g = graph_of(m, "step");
    CHECK(g != NULL);
    if (!g) {
        sp_module_free(m);
        return;
    }
    long long live0 = gpu_live_bytes();
    CHECK(live0 >= 0);
    const int64_t N = 8, si[4] = {N, 1, 4, 5}, sw1[2] = {20, 16}, sb1[1] = {16}, sw2[2] = {16, 5},
                  sb2[1] = {5};
    const int64_t *wshape[4] = {sw1, sb1, sw2, sb2};
    const int wnd[4] = {2, 1, 2, 1};
    sp_tensor *ref[NP] = {0}, *cap[NP] = {0};
    for (int i = 0; i < 4; i++) {
        ref[2 + i] = gpu_randn(wnd[i], wshape[i], 10 + (uint64_t)i);
        cap[2 + i] = gpu_copy(ref[2 + i]);
        ref[6 + i] = sp_tensor_zeros(SP_F32, wnd[i], wshape[i], GPU);
        cap[6 + i] = sp_tensor_zeros(SP_F32, wnd[i], wshape[i], GPU);
    }
    sp_meta metas[NP];
    metas[0] = (sp_meta){.dtype = SP_F32, .ndim = 4, .shape = {N, 1, 4, 5}};
    metas[1] = (sp_meta){.dtype = SP_I64, .ndim = 1, .shape = {N}};
    for (int i = 2; i < NP; i++) metas[i] = sp_meta_of(ref[i]);
    char why[256];
    sp_lowered *lr = sp_lower(g, NP, metas, NULL, why, sizeof why);
    sp_lowered *lc = sp_lower(g, NP, metas, NULL, why, sizeof why);
    CHECK(lr && lc);
    if (!lr || !lc) goto done;

    /* steps on new batches; at step 4 new (equal) weight tensors */
    for (int step = 0; step < 7; step++) {
        sp_tensor *x = gpu_randn(4, si, 100 + (uint64_t)step), *y = gpu_labels(N, step, -1, 0);
        ref[0] = x, ref[1] = y, cap[0] = x, cap[1] = y;
        if (step == 4)
            for (int i = 2; i < 6; i++) {
                sp_tensor *c = gpu_copy(cap[i]);
                sp_tensor_release(cap[i]);
                cap[i] = c;
            }
        sp_tensor *ro[NR] = {0}, *co[NR] = {0}, *w1_before = gpu_copy(cap[2]);
        CHECK_OK(run(lr, 0, ref, ro));
        CHECK_OK(run(lc, 1, cap, co));
        CHECK(all_same(ro, co, NR));
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        CHECK(!same_bits(w1_before, cap[2])); /* the step did update w1, in the caller's tensor */
        sp_tensor_release(w1_before);
        release_n(NR, ro);
        release_n(NR, co);
        sp_tensor_release(x);
        sp_tensor_release(y);
        ref[0] = ref[1] = cap[0] = cap[1] = NULL;
        sp_exec_graph_stats s = sp_lowered_graph_stats(lc);
        if (step == 0) CHECK(s.state == SP_EXEC_GRAPH_WARM && s.captures == 0 && s.plain == 1);
        if (step >= 1) CHECK(s.state == SP_EXEC_GRAPH_READY && s.captures == 1 && s.replays == step);
        if (s.state == SP_EXEC_GRAPH_OFF) fprintf(stderr, "  capture off: %s\n", s.why);
    }
    CHECK(sp_lowered_graph_stats(lr).replays == 0);
    CHECK(sp_lowered_graph_stats(lr).captures == 0);

    /* a label out of range inside a replay: the plain run's error, and no
     * parameter written */
    {
        sp_tensor *x = gpu_randn(4, si, 7), *y = gpu_labels(N, 1, 3, 9);
        ref[0] = cap[0] = x, ref[1] = cap[1] = y;
        sp_tensor *ro[NR] = {0}, *co[NR] = {0};
        char want[1024];
        sp_status a = run(lr, 0, ref, ro);
        snprintf(want, sizeof want, "%s", sp_last_error());
        sp_status b = run(lc, 1, cap, co);
        CHECK(a == SP_ERR_ARG && b == SP_ERR_ARG);
        CHECK(strstr(want, "label 9 at position 3 out of range [0, 5)") != NULL);
        CHECK_STR(sp_last_error(), want);
        CHECK(!ro[0] && !co[0]);
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        sp_clear_error();
        sp_tensor_release(y);
        /* and the next step is fine again */
        y = gpu_labels(N, 2, -1, 0);
        ref[1] = cap[1] = y;
        CHECK_OK(run(lr, 0, ref, ro));
        CHECK_OK(run(lc, 1, cap, co));
        CHECK(all_same(ro, co, NR));
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        release_n(NR, ro);
        release_n(NR, co);
        sp_tensor_release(x);
        sp_tensor_release(y);
        ref[0] = ref[1] = cap[0] = cap[1] = NULL;
    }

    /* a strided batch: replayed exactly it could not be; a plain run, counted */
    {
        const int64_t sT[4] = {N, 1, 5, 4};
        sp_tensor *xt = gpu_randn(4, sT, 8), *x = NULL, *y = gpu_labels(N, 3, -1, 0);
        CHECK_OK(sp_tensor_permute(xt, (int[]){0, 1, 3, 2}, &x));
        CHECK(x && !sp_tensor_is_contiguous(x));
        ref[0] = cap[0] = x, ref[1] = cap[1] = y;
        sp_tensor *ro[NR] = {0}, *co[NR] = {0};
        long long fb = sp_lowered_graph_stats(lc).fallbacks;
        CHECK_OK(run(lr, 0, ref, ro));
        CHECK_OK(run(lc, 1, cap, co));
        CHECK(all_same(ro, co, NR));
        CHECK(all_same(ref + 2, cap + 2, NP - 2));
        sp_exec_graph_stats s = sp_lowered_graph_stats(lc);
        CHECK(s.fallbacks == fb + 1 && strstr(s.why, "not contiguous") != NULL);
        release_n(NR, ro);
        release_n(NR, co);
        sp_tensor_release(xt);
        sp_tensor_release(x);
        sp_tensor_release(y);
        ref[0] = ref[1] = cap[0] = cap[1] = NULL;
    }

    /* a weight passed as its own momentum buffer: the update must be seen
     * through the alias, as in the plain run */
    {
        sp_tensor *x = gpu_randn(4, si, 9), *y = gpu_labels(N, 4, -1, 0);
        sp_tensor *rp[NP], *cp[NP];
        memcpy(rp, ref, sizeof rp);
        memcpy(cp, cap, sizeof cp);
        rp[0] = cp[0] = x, rp[1] = cp[1] = y;
        rp[9] = rp[5], cp[9] = cp[5]; /* mb2 = b2 */
        sp_tensor *ro[NR] = {0}, *co[NR] = {0};
        CHECK_OK(run(lr, 0, rp, ro));
        CHECK_OK(run(lc, 1, cp, co));
        CHECK(all_same(ro, co, NR));
        CHECK(all_same(rp + 2, cp + 2, NP - 2));
        CHECK(strstr(sp_lowered_graph_stats(lc).why, "shares memory") != NULL);
        release_n(NR, ro);
        release_n(NR, co);
        sp_tensor_release(x);
        sp_tensor_release(y);
    }
    {
        sp_exec_graph_stats s = sp_lowered_graph_stats(lc);
        fprintf(stderr, "  mlp_sgd_step: %lld capture, %lld replays, %lld plain runs (%lld fallbacks)\n",
                s.captures, s.replays, s.plain, s.fallbacks);
        CHECK(s.captures == 1 && s.replays == 8 && s.fallbacks == 2 && s.plain == 3);
    }
done:
    sp_lowered_free(lr);
    sp_lowered_free(lc);
    release_n(NP, ref);
    release_n(NP, cap);
    sp_module_free(m);
    /* every block the graph kept, staged or planned is back */
    if (live0 >= 0) CHECK(gpu_live_bytes() == live0);
}

static const char *GATHER_IR = "global f = @f\n"
                               "graph @f(%1 w, %2 idx) {\n"
                               "  %3 y = prim.gather(%1, %2, keyword(\"axis\", 0))\n"
                               "  %4 z = prim.mul(%3, 2.0)\n"
                               "  return %4\n"
                               "}\n";

/* The device error slot's path: a gather index out of range in a replay. */
static void test_gather_error_replay(void) {
    sp_module *m = sp_module_parse_ir(GATHER_IR, "gather.ir");
    CHECK(m && ir_module_finalize(m) == SP_OK);
    sp_graph *g = graph_of(m, "f");
    CHECK(g != NULL);
    if (!g) {
        sp_module_free(m);
        return;
    }
    const int64_t sw[2] = {5, 3}, ni = 4;
    sp_tensor *w = gpu_randn(2, sw, 1);
    sp_tensor *hi = sp_tensor_new(SP_I64, 1, &ni, SP_CPU), *good = NULL, *bad = NULL;
    int64_t *p = sp_tensor_data(hi);
    p[0] = 4, p[1] = 0, p[2] = -1, p[3] = 2;
    CHECK_OK(sp_tensor_to(hi, GPU, &good));
    p[2] = 9;
    CHECK_OK(sp_tensor_to(hi, GPU, &bad));
    sp_meta metas[2] = {sp_meta_of(w), sp_meta_of(hi)};
    char why[256];
    sp_lowered *l = sp_lower(g, 2, metas, NULL, why, sizeof why);
    CHECK(l != NULL);
    for (int rep = 0; l && rep < 4; rep++) {
        sp_tensor *in[2] = {w, rep == 2 ? bad : good}, *a = NULL, *b = NULL;
        sp_status sa = run(l, 0, in, &a);
        char want[1024];
        snprintf(want, sizeof want, "%s", sp_last_error());
        sp_status sb = run(l, 1, in, &b);
        if (rep == 2) {
            if (!strstr(want, "gather: index 9")) fprintf(stderr, "  rep 2: plain said: %s\n", want);
            CHECK(sa == SP_ERR_ARG && sb == SP_ERR_ARG && !a && !b);
            CHECK(strstr(want, "gather: index 9 out of range for axis 0 of size 5") != NULL);
            CHECK_STR(sp_last_error(), want);
            sp_clear_error();
        } else {
            if (sa || sb) fprintf(stderr, "  rep %d: plain %d, graph %d: %s (plain said: %s)\n", rep, sa, sb,
                                  sp_last_error(), want);
            CHECK(sa == SP_OK && sb == SP_OK && same_bits(a, b));
        }
        sp_tensor_release(a);
        sp_tensor_release(b);
    }
    sp_exec_graph_stats s = sp_lowered_graph_stats(l);
    CHECK(s.captures == 1 && s.replays == 3);
    sp_lowered_free(l);
    sp_tensor_release(w);
    sp_tensor_release(hi);
    sp_tensor_release(good);
    sp_tensor_release(bad);
    sp_module_free(m);
}

static const char *RANDOM_IR = "global r = @r\n"
                               "graph @r(%1 x) {\n"
                               "  %2 u = prim.uniform(keyword(\"shape\", (4,)))\n"
                               "  %3 y = prim.add(%1, %2)\n"
                               "  return %3\n"
                               "}\n";

/* A draw from the global generator is never recorded: each run must give
 * new numbers, as it does without capture. */
static void test_random_not_recorded(void) {
    sp_module *m = sp_module_parse_ir(RANDOM_IR, "random.ir");
    CHECK(m && ir_module_finalize(m) == SP_OK);
    sp_graph *g = graph_of(m, "r");
    const int64_t n = 4;
    sp_tensor *x = sp_tensor_zeros(SP_F32, 1, &n, GPU), *y[3] = {0};
    sp_meta meta = sp_meta_of(x);
    char why[256];
    sp_lowered *l = g ? sp_lower(g, 1, &meta, NULL, why, sizeof why) : NULL;
    CHECK(l != NULL);
    for (int i = 0; l && i < 3; i++) CHECK_OK(sp_lowered_run(l, 1, &x, &y[i]));
    CHECK(y[1] && y[2] && !same_bits(y[1], y[2]));
    sp_exec_graph_stats s = sp_lowered_graph_stats(l);
    CHECK(s.state == SP_EXEC_GRAPH_OFF && s.captures == 0 && s.replays == 0);
    CHECK(strstr(s.why, "global generator") != NULL);
    release_n(3, y);
    sp_tensor_release(x);
    sp_lowered_free(l);
    sp_module_free(m);
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "tests/compiler/lower");
    if (!sp_cuda_available()) {
        fprintf(stderr, "test_graph_cuda: no GPU: %s; skipped\n", sp_last_error());
        sp_clear_error();
        return 0;
    }
    sp_exec_set_capture(1); /* whatever SPORE_CUDA_GRAPH says */
    RUN(test_sgd_step_replay);
    RUN(test_gather_error_replay);
    RUN(test_random_not_recorded);
    return TEST_SUMMARY();
}
