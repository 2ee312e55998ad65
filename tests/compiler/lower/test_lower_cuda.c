/*
 * test_lower_cuda.c -- a lowered graph run on a GPU gives what the VM gives
 * on the CPU (skipped, passing, without a GPU).
 *
 * Apart from test_lower.c because it must link the shared libspore: the
 * CUDA backend (libspore_cuda.so, loaded at run time) links that one copy
 * of the core, and a statically linked test would hold a second one.  The
 * graph is lower/mlp_step.ir (forward and backward of a perceptron, views,
 * in-place slots); the arena and the outputs must be on the GPU, and two
 * runs (the second on the cached arena) must match the CPU.  This is what
 * caught CUDA kernels that write at the start of their output's buffer
 * whatever the tensor's offset (exec.c gives each arena slot a buffer of
 * its own for that reason).
 *
 * usage: test_lower_cuda DIR   (DIR holds mlp_step.ir)
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/lower.h"
#include "ir/ir.h"
#include "runtime/exec.h"
#include "runtime/vm.h"
#include "test.h"

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

static sp_tensor *randn(int ndim, const int64_t *shape, uint64_t seed) {
    sp_tensor *t = sp_tensor_new(SP_F32, ndim, shape, SP_CPU);
    if (t) sp_rng_normal(t, seed, 0, 0.0, 1.0);
    return t;
}

static double max_diff(sp_tensor *a, sp_tensor *b) {
    if (!a || !b || a->dtype != b->dtype || sp_tensor_numel(a) != sp_tensor_numel(b)) return 1e30;
    sp_tensor *x = NULL, *y = NULL;
    double worst = 1e30;
    if (sp_tensor_cast(a, SP_F64, &x) == SP_OK && sp_tensor_cast(b, SP_F64, &y) == SP_OK) {
        const double *p = sp_tensor_data(x), *q = sp_tensor_data(y);
        worst = 0;
        for (int64_t i = 0; i < sp_tensor_numel(x); i++) {
            double d = fabs(p[i] - q[i]) / (1.0 + fabs(q[i]));
            if (!(d <= worst)) worst = d;
        }
    }
    sp_tensor_release(x);
    sp_tensor_release(y);
    return worst;
}

static char dir[4096];

static void test_mlp_step_cuda(void) {
    if (!sp_cuda_available()) {
        fprintf(stderr, "  (no GPU: %s; skipped)\n", sp_last_error());
        sp_clear_error();
        return;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/mlp_step.ir", dir);
    char *text = read_text(path);
    CHECK(text != NULL);
    sp_module *m = text ? sp_module_parse_ir(text, path) : NULL;
    free(text);
    CHECK(m && ir_module_finalize(m) == SP_OK);
    sp_value *gv = m ? ir_module_get_global(m, "step") : NULL;
    sp_graph *g = gv && gv->kind == SP_V_GRAPH ? gv->u.graph : NULL;
    CHECK(g != NULL);
    const int64_t N = 8, si[4] = {N, 1, 4, 5}, sw1[2] = {20, 16}, sb1[1] = {16}, sw2[2] = {16, 5},
                  sb2[1] = {5};
    sp_tensor *p[6] = {randn(4, si, 1), sp_tensor_new(SP_I64, 1, &N, SP_CPU), randn(2, sw1, 2),
                       randn(1, sb1, 3), randn(2, sw2, 4), randn(1, sb2, 5)};
    for (int64_t i = 0; i < N; i++) ((int64_t *)sp_tensor_data(p[1]))[i] = (i * 7 + 3) % 5;
    sp_tensor *d[6] = {0};
    sp_value *args[6];
    sp_meta metas[6];
    for (int i = 0; i < 6; i++) {
        metas[i] = sp_meta_of(p[i]);
        args[i] = sp_value_tensor(p[i]);
        CHECK_OK(sp_tensor_to(p[i], (sp_device){SP_DEVICE_CUDA, 0}, &d[i]));
    }
    char why[256];
    sp_lowered *l = g ? sp_lower(g, 6, metas, NULL, why, sizeof why) : NULL;
    CHECK(l != NULL);
    sp_value *want = g ? sp_vm_run(m, "step", 6, args) : NULL;
    CHECK(want && want->kind == SP_V_TUPLE && want->u.seq.n == 5);
    for (int rep = 0; l && want && rep < 2; rep++) {
        sp_tensor *out[5] = {0};
        CHECK_OK(sp_lowered_run(l, 6, d, out));
        for (int i = 0; i < 5; i++) {
            sp_tensor *h = NULL;
            CHECK(out[i] && out[i]->buf->device.type == SP_DEVICE_CUDA);
            if (out[i] && sp_tensor_to(out[i], SP_CPU, &h) == SP_OK)
                CHECK(max_diff(h, want->u.seq.items[i]->u.tensor) < 1e-4);
            sp_tensor_release(h);
            sp_tensor_release(out[i]);
        }
    }
    CHECK(l && l->arena && l->arena->device.type == SP_DEVICE_CUDA);
    sp_lowered_free(l);
    sp_value_release(want);
    for (int i = 0; i < 6; i++) {
        sp_value_release(args[i]);
        sp_tensor_release(p[i]);
        sp_tensor_release(d[i]);
    }
    sp_module_free(m);
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "tests/compiler/lower");
    /* the plain executor: with capture on, the second run would record a
     * CUDA graph, which takes the cached arena over (test_graph_cuda.c) */
    sp_exec_set_capture(SP_EXEC_CAPTURE_OFF);
    RUN(test_mlp_step_cuda);
    return TEST_SUMMARY();
}
