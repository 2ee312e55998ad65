/*
 * bench_gpu_step.c -- a LeNet-5 training step at batch 64 on the GPU, its
 * kernels launched one by one against the same step recorded once as a
 * CUDA graph and replayed (issue 8: "the goal is 0.3 ms with the whole step
 * in one CUDA graph"; PyTorch eager 1.16 ms, torch.compile with CUDA graphs
 * 0.83 ms on the lent H100).
 *
 * The model and the step are source code, bench/programs/lenet5_gpu.py:
 * train_step takes the ten parameters and a batch and returns the ten
 * updated ones and the loss (value_and_grad, then SGD), and sp_compile
 * turns it into one lowered kernel list (forward, backward and update; the
 * bench fails if it does not lower).  The same compiled object runs in
 * three capture modes (runtime/exec.h): "plain" (capture off: every kernel
 * launched by the executor), "graph" (recorded on its second run, then
 * replayed; a replay waits for the device when the graph holds data checks
 * -- the cross-entropy label check here -- so a bad label is reported by
 * the step that met it) and "graph_async" (the same without that wait: a
 * bad label surfaces at the next copy to the host, as in PyTorch).
 *
 * Method: parameters drawn as PyTorch's default init does (uniform in
 * +-1/sqrt(fan_in)), eight batches of random images and labels on the GPU
 * cycled as a loader would hand them over (new tensors each step); each
 * mode starts from the same parameters, runs `warm` steps (for the graph
 * modes: the warming run, the recording, replays), then times `iters`
 * steps between two full synchronizations, twice, keeping the better.
 * Every mode must end with the same parameters and loss, bit for bit
 * (printed as same_bits).
 *
 * Output (one line each, key=value, read by bench/peer_gpu_step.py):
 *   gpu_step model=lenet5 batch=64 kernels=K launches=L lower_ms=...
 *   gpu_step mode=plain ms=...
 *   gpu_step mode=graph ms=... captures=1 replays=R plain=P fallbacks=0 state=2 why=""
 *   gpu_step mode=graph_async ms=...
 *   gpu_step same_bits=1 loss=... speedup=...   (plain ms / graph ms)
 * Without a GPU it prints why and exits 0.
 *
 * --profile (after the timed modes): where the step's time goes, kernel by
 * kernel.  The lowered list is run again by this file, outside the
 * executor -- every output a fresh tensor, views made as the executor
 * makes them, each kernel through the backend like the executor's calls --
 * and each kernel is timed twice: `seq_us`, the device time between
 * events recorded just before and just after it in a plain run of the
 * whole list (median of PROF_PASSES passes; when the step is launch-bound
 * this includes the device waiting for the host), and `graph_us`, its
 * device time alone: PROF_REPS launches of it recorded into one CUDA graph
 * with the backend's capture functions, replayed PROF_REPLAYS times
 * between two events (a kernel that cannot be recorded shows graph_us=-1
 * and why).  Printed: the top kernels by graph_us (seq_us on the CPU,
 * where there are no events and kernels are timed on the host clock) with
 * the op, the shapes and the share of the sum, then the sums -- the sum of
 * graph_us is about what a replayed step would take if the kernels were
 * all that counted.  Lines:
 *   gpu_step profile rank=R k=K op=OP graph_us=... seq_us=... share=..% in=... out=... at=FILE:LINE
 *   gpu_step profile_total kernels=N graph_us=... seq_us=... timed_by=events|host_clock
 *
 * usage: bench_gpu_step [--iters N] [--warm N] [--batch N] [--program FILE] [--cpu]
 *                       [--profile [TOP]]
 * (--cpu: the same on the CPU, where nothing is recorded: a check that the
 * program compiles and lowers, and a CPU figure)
 */
#define _POSIX_C_SOURCE 199309L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "compiler/compile.h"
#include "compiler/lower.h"
#include "frontend/frontend.h"
#include "runtime/exec.h"
#include "spore/spore.h"

#define NPARAM 10
#define NBATCH 8
#define PROF_PASSES 7   /* plain passes over the list (seq_us: the median) */
#define PROF_REPS 20    /* launches of one kernel recorded into its graph */
#define PROF_REPLAYS 10 /* replays of that graph between two events */

static sp_device GPU = {SP_DEVICE_CUDA, 0}; /* --cpu: the CPU */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int gpu_sync(void) {
    sp_backend *be = sp_backend_get(GPU.type);
    return be && be->sync(be) == SP_OK;
}

static sp_value *uniform_gpu(int nd, const int64_t *shape, double bound, uint64_t seed) {
    sp_tensor *h = sp_tensor_new(SP_F32, nd, shape, SP_CPU), *d = NULL;
    if (h && sp_rng_uniform(h, seed, 0, -bound, bound) == SP_OK) sp_tensor_to(h, GPU, &d);
    sp_tensor_release(h);
    sp_value *v = d ? sp_value_tensor(d) : NULL;
    sp_tensor_release(d);
    return v;
}

static sp_value *labels_gpu(int64_t n, uint64_t seed) {
    sp_tensor *h = sp_tensor_new(SP_I64, 1, &n, SP_CPU), *d = NULL;
    if (!h) return NULL;
    int64_t *p = sp_tensor_data(h);
    for (int64_t i = 0; i < n; i++) p[i] = (int64_t)(((uint64_t)i * 2654435761u + seed * 97) % 10);
    sp_tensor_to(h, GPU, &d);
    sp_tensor_release(h);
    sp_value *v = d ? sp_value_tensor(d) : NULL;
    sp_tensor_release(d);
    return v;
}

/* `steps` steps from the parameters in w (replaced by the new ones; w
 * holds references), batch k of the cycle at step s being (first + s) %
 * NBATCH.  The last loss into *loss (a new reference).  0, or -1 with the
 * message printed. */
static int train(sp_compiled *c, sp_value **w, sp_value **bx, sp_value **by, int steps, int first,
                 sp_value **loss) {
    sp_value *args[NPARAM + 2];
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < NPARAM; i++) args[i] = w[i];
        args[NPARAM] = bx[(first + s) % NBATCH];
        args[NPARAM + 1] = by[(first + s) % NBATCH];
        sp_value *r = sp_compiled_run(c, NPARAM + 2, args);
        if (!r || r->kind != SP_V_TUPLE || r->u.seq.n != NPARAM + 1) {
            printf("gpu_step error=\"step %d: %s\"\n", s, r ? "unexpected result" : sp_last_error());
            sp_value_release(r);
            return -1;
        }
        for (int i = 0; i < NPARAM; i++) {
            sp_value_release(w[i]);
            sp_value_retain(w[i] = r->u.seq.items[i]);
        }
        if (loss) {
            sp_value_release(*loss);
            sp_value_retain(*loss = r->u.seq.items[NPARAM]);
        }
        sp_value_release(r);
    }
    return 0;
}

static int same_bits(sp_value *a, sp_value *b) {
    sp_tensor *x = NULL, *y = NULL;
    int ok = a && b && a->kind == SP_V_TENSOR && b->kind == SP_V_TENSOR &&
             sp_tensor_to(a->u.tensor, SP_CPU, &x) == SP_OK &&
             sp_tensor_to(b->u.tensor, SP_CPU, &y) == SP_OK && sp_tensor_numel(x) == sp_tensor_numel(y) &&
             memcmp(sp_tensor_data(x), sp_tensor_data(y),
                    (size_t)sp_tensor_numel(x) * sp_dtype_size(x->dtype)) == 0;
    sp_tensor_release(x);
    sp_tensor_release(y);
    return ok;
}

/* ---- --profile ------------------------------------------------------------- */

typedef struct prof_row {
    int k;
    double seq_us, graph_us;
    char why[96];
} prof_row;

/* The view kernel k of src as the executor makes it (runtime/exec.c);
 * a slice is run as its copy kernel instead (not timed: not a launch). */
static sp_tensor *prof_view(const sp_lkernel *k, const sp_lslot *dst, sp_tensor *src) {
    sp_tensor *t = NULL;
    int n = 0;
    const sp_meta *m = &dst->meta;
    sp_status st;
    if (k->op == SP_OP_RESHAPE && (src->buf->device.type == SP_DEVICE_CPU || sp_tensor_is_contiguous(src))) {
        st = sp_tensor_reshape(src, m->ndim, m->shape, &t);
    } else if (k->op == SP_OP_BROADCAST_TO) {
        st = sp_tensor_expand(src, m->ndim, m->shape, &t);
    } else if (k->op == SP_OP_TRANSPOSE) {
        int np, perm[SP_MAX_DIMS];
        const int64_t *p = sp_attrs_get_ints(&k->attrs, "perm", &np);
        for (int i = 0; i < src->ndim; i++) perm[i] = p ? (int)p[i] : src->ndim - 1 - i;
        st = sp_tensor_permute(src, perm, &t);
    } else {
        st = sp_op_call(k->op, 1, &src, &k->attrs, &n, &t);
    }
    return st ? NULL : t;
}

/* Launches kernel k of l on the tensors t (outputs already there). */
static sp_status prof_launch(const sp_lowered *l, int k, sp_tensor **t) {
    const sp_lkernel *kk = &l->kernels[k];
    sp_tensor *in[SP_MAX_INPUTS], *o[SP_MAX_OUTPUTS];
    for (int i = 0; i < kk->n_in; i++) in[i] = t[kk->in[i]];
    for (int j = 0; j < kk->n_out; j++) o[j] = t[kk->out[j]];
    return sp_op_call_into(kk->op, kk->n_in, in, &kk->attrs, kk->n_out, o);
}

/* One plain pass over the list: views made, kernels launched, each
 * between events ev[2k], ev[2k+1] (or timed on the host clock into us[k]
 * when the backend has no events).  The first pass also makes the slots'
 * tensors. */
static sp_status prof_pass(const sp_lowered *l, sp_backend *be, sp_tensor **t, void **ev, double *us) {
    for (int k = 0; k < l->n_kernels; k++) {
        const sp_lkernel *kk = &l->kernels[k];
        sp_status st = SP_OK;
        if (kk->is_view) {
            if (!t[kk->out[0]] && !(t[kk->out[0]] = prof_view(kk, &l->slots[kk->out[0]], t[kk->in[0]])))
                return sp_last_status();
            continue;
        }
        for (int j = 0; j < kk->n_out; j++) {
            const sp_lslot *x = &l->slots[kk->out[j]];
            if (!t[kk->out[j]] && !(t[kk->out[j]] = sp_tensor_new(x->meta.dtype, x->meta.ndim, x->meta.shape, GPU)))
                return sp_last_status();
        }
        if (ev) {
            if ((st = be->event_record(be, ev[2 * k])) || (st = prof_launch(l, k, t)) ||
                (st = be->event_record(be, ev[2 * k + 1])))
                return st;
        } else {
            double a = now();
            if ((st = prof_launch(l, k, t))) return st;
            us[k] = (now() - a) * 1e6;
        }
    }
    return SP_OK;
}

static int prof_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int prof_cmp_row(const void *a, const void *b) {
    const prof_row *x = a, *y = b;
    double kx = x->graph_us >= 0 ? x->graph_us : x->seq_us, ky = y->graph_us >= 0 ? y->graph_us : y->seq_us;
    return kx > ky ? -1 : kx < ky ? 1 : x->k - y->k;
}

/* graph_us of kernel k: PROF_REPS launches recorded into one graph,
 * replayed PROF_REPLAYS times between events a and b.  -1 and the reason
 * in why when the backend cannot record it. */
static double prof_graph_us(const sp_lowered *l, sp_backend *be, sp_tensor **t, int k, void *a, void *b,
                            char *why, size_t why_n) {
    void *graph = NULL;
    double ms = -1;
    if (!be->capture_begin || be->capture_begin(be) != SP_OK) {
        snprintf(why, why_n, "no capture: %s", be->capture_begin ? sp_last_error() : "backend");
        return -1;
    }
    sp_status st = SP_OK;
    for (int r = 0; r < PROF_REPS && !st; r++) st = prof_launch(l, k, t);
    if (st) {
        snprintf(why, why_n, "%s", sp_last_error());
        be->capture_end(be, 0, &graph, why, 0);
        return -1;
    }
    if (be->capture_end(be, 1, &graph, why, why_n) != SP_OK || !graph) return -1;
    int err_op = -1;
    st = be->graph_launch(be, graph, 0, NULL, 0, NULL, 0, &err_op); /* warm replay */
    if (!st) st = be->event_record(be, a);
    for (int r = 0; r < PROF_REPLAYS && !st; r++) st = be->graph_launch(be, graph, 0, NULL, 0, NULL, 0, &err_op);
    if (!st) st = be->event_record(be, b);
    if (!st) st = be->event_elapsed(be, a, b, &ms);
    if (st) {
        snprintf(why, why_n, "%s", sp_last_error());
        ms = -1;
    }
    be->graph_free(be, graph);
    return ms < 0 ? -1 : ms * 1e3 / (PROF_REPLAYS * PROF_REPS);
}

/* " (a, b), (c,)" of the slots of a kernel into buf. */
static void prof_shapes(const sp_lowered *l, int n, const int *slots, char *buf, size_t cap) {
    size_t w = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && w + 2 < cap; i++) {
        char sb[96];
        const sp_meta *m = &l->slots[slots[i]].meta;
        int c = snprintf(buf + w, cap - w, "%s%s%s", i ? "," : "", sp_dtype_name(m->dtype),
                         sp_shape_str(m->ndim, m->shape, sb, sizeof sb));
        if (c < 0) break;
        w += (size_t)c;
        if (w >= cap) w = cap - 1;
    }
    char *q = buf; /* one token per key=value: no spaces */
    for (char *p = buf; *p; p++)
        if (*p != ' ') *q++ = *p;
    *q = '\0';
}

/* Profiles the lowered list l with the parameters args (their tensors) and
 * prints the top `top` kernels.  0, or -1 with the error printed. */
static int profile(const sp_lowered *l, sp_value *const *args, int top) {
    sp_backend *be = sp_backend_get(GPU.type);
    if (!be) return -1;
    int use_ev = be->event_new && be->event_record && be->event_elapsed && be->event_free;
    int nk = l->n_kernels, rc = -1;
    sp_tensor **t = calloc((size_t)l->n_slots + 1, sizeof *t);
    void **ev = use_ev ? calloc((size_t)2 * nk + 2, sizeof *ev) : NULL;
    double *pass_us = calloc((size_t)nk * PROF_PASSES + 1, sizeof *pass_us);
    prof_row *row = calloc((size_t)nk + 1, sizeof *row);
    if (!t || (use_ev && !ev) || !pass_us || !row) {
        sp_error(SP_ERR_NOMEM, "profile: out of memory");
        goto done;
    }
    for (int s = 0; s < l->n_slots; s++) {
        const sp_lslot *x = &l->slots[s];
        if (x->kind == SP_LSLOT_PARAM) {
            if (args[x->index]->kind != SP_V_TENSOR) goto done;
            sp_tensor_retain(t[s] = args[x->index]->u.tensor);
        } else if (x->kind == SP_LSLOT_CONST && sp_tensor_to(x->tensor, GPU, &t[s]) != SP_OK) {
            goto done;
        }
    }
    for (int i = 0; use_ev && i < 2 * nk + 2; i++)
        if (!(ev[i] = be->event_new(be))) goto done;
    /* a warming pass (generated kernels compiled, library plans made), then
     * the timed ones */
    for (int pass = -1; pass < PROF_PASSES; pass++) {
        double *us = pass_us + (size_t)nk * (pass < 0 ? 0 : pass);
        if (prof_pass(l, be, t, ev, us) != SP_OK || be->sync(be) != SP_OK) goto done;
        for (int k = 0; use_ev && pass >= 0 && k < nk; k++) {
            double ms = 0;
            if (l->kernels[k].is_view) continue;
            if (be->event_elapsed(be, ev[2 * k], ev[2 * k + 1], &ms) != SP_OK) goto done;
            us[k] = ms * 1e3;
        }
    }
    int nrow = 0;
    double sum_seq = 0, sum_graph = 0;
    int all_graph = use_ev && be->capture_begin;
    for (int k = 0; k < nk; k++) {
        if (l->kernels[k].is_view) continue;
        double v[PROF_PASSES];
        for (int p = 0; p < PROF_PASSES; p++) v[p] = pass_us[(size_t)nk * p + k];
        qsort(v, PROF_PASSES, sizeof v[0], prof_cmp_double);
        prof_row *r = &row[nrow++];
        r->k = k;
        r->seq_us = v[PROF_PASSES / 2];
        r->graph_us = -1;
        if (use_ev && be->capture_begin)
            r->graph_us = prof_graph_us(l, be, t, k, ev[2 * nk], ev[2 * nk + 1], r->why, sizeof r->why);
        if (r->graph_us < 0) all_graph = 0;
        sum_seq += r->seq_us;
        sum_graph += r->graph_us > 0 ? r->graph_us : 0;
        sp_clear_error();
    }
    if (be->sync(be) != SP_OK) goto done;
    qsort(row, (size_t)nrow, sizeof *row, prof_cmp_row);
    double base = sum_graph > 0 ? sum_graph : sum_seq;
    for (int i = 0; i < nrow && i < top; i++) {
        const prof_row *r = &row[i];
        const sp_lkernel *kk = &l->kernels[r->k];
        char si[512], so[256];
        prof_shapes(l, kk->n_in, kk->in, si, sizeof si);
        prof_shapes(l, kk->n_out, kk->out, so, sizeof so);
        double key = r->graph_us >= 0 ? r->graph_us : r->seq_us;
        printf("gpu_step profile rank=%d k=%d op=%s graph_us=%.2f seq_us=%.2f share=%.1f%% in=%s out=%s "
               "at=%s:%d%s%s%s\n",
               i + 1, r->k, sp_op_name(kk->op), r->graph_us, r->seq_us, base > 0 ? 100.0 * key / base : 0.0, si,
               so, kk->loc.file ? kk->loc.file : "?", kk->loc.line, r->why[0] ? " why=\"" : "", r->why,
               r->why[0] ? "\"" : "");
    }
    printf("gpu_step profile_total kernels=%d graph_us=%.2f seq_us=%.2f timed_by=%s%s\n", nrow,
           use_ev ? sum_graph : -1.0, sum_seq, use_ev ? "events" : "host_clock",
           use_ev && !all_graph ? " (some kernels not recorded: graph_us is a partial sum)" : "");
    rc = 0;
done:
    if (rc) printf("gpu_step error=\"profile: %s\"\n", sp_last_error());
    for (int s = 0; t && s < l->n_slots; s++) sp_tensor_release(t[s]);
    for (int i = 0; ev && i < 2 * nk + 2; i++) be->event_free(be, ev[i]);
    free(t);
    free(ev);
    free(pass_us);
    free(row);
    return rc;
}

int main(int argc, char **argv) {
    int iters = 200, warm = 20, prof_top = 0;
    int64_t batch = 64;
    const char *program = "bench/programs/lenet5_gpu.py";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warm") && i + 1 < argc) warm = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--program") && i + 1 < argc) program = argv[++i];
        else if (!strcmp(argv[i], "--cpu")) GPU = SP_CPU;
        else if (!strcmp(argv[i], "--profile")) {
            prof_top = 15;
            if (i + 1 < argc && argv[i + 1][0] >= '0' && argv[i + 1][0] <= '9') prof_top = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_gpu_step [--iters N] [--warm N] [--batch N] [--program FILE] "
                            "[--cpu] [--profile [TOP]]\n");
            return 2;
        }
    }
    if (iters < 1 || warm < 3 || batch < 1) {
        fprintf(stderr, "bench_gpu_step: --iters >= 1, --warm >= 3 (warming run, recording, replay), "
                        "--batch >= 1\n");
        return 2;
    }
    if (GPU.type == SP_DEVICE_CUDA && !sp_cuda_available()) {
        printf("gpu_step skipped=\"no GPU: %s\"\n", sp_last_error());
        return 0;
    }
    int rc = 1;
    sp_module *m = sp_frontend_compile_file(program, NULL);
    if (!m) {
        printf("gpu_step error=\"%s\"\n", sp_last_error());
        return 1;
    }
    /* parameters: PyTorch's default init, bound 1/sqrt(fan_in) */
    static const int nd[NPARAM] = {4, 1, 4, 1, 2, 1, 2, 1, 2, 1};
    static const int64_t shapes[NPARAM][4] = {{6, 1, 5, 5}, {6}, {16, 6, 5, 5}, {16}, {400, 120},
                                               {120}, {120, 84}, {84}, {84, 10}, {10}};
    static const double fan[NPARAM] = {25, 25, 150, 150, 400, 400, 120, 120, 84, 84};
    sp_value *init[NPARAM] = {0}, *w[NPARAM] = {0}, *bx[NBATCH] = {0}, *by[NBATCH] = {0};
    sp_value *final_w[NPARAM] = {0}, *final_loss = NULL, *loss = NULL;
    sp_compiled *c = NULL;
    for (int i = 0; i < NPARAM; i++)
        if (!(init[i] = uniform_gpu(nd[i], shapes[i], 1.0 / sqrt(fan[i]), 1 + (uint64_t)i))) goto fail;
    const int64_t xs[4] = {batch, 1, 28, 28};
    for (int k = 0; k < NBATCH; k++)
        if (!(bx[k] = uniform_gpu(4, xs, 1.0, 100 + (uint64_t)k)) || !(by[k] = labels_gpu(batch, (uint64_t)k)))
            goto fail;
    sp_value *args[NPARAM + 2];
    for (int i = 0; i < NPARAM; i++) args[i] = init[i];
    args[NPARAM] = bx[0];
    args[NPARAM + 1] = by[0];
    double t0 = now();
    if (sp_compile(m, "train_step", NPARAM + 2, args, NULL, &c) != SP_OK) goto fail;
    double compile_ms = (now() - t0) * 1e3;
    const char *why = NULL;
    const sp_lowered *l = sp_compiled_lowered(c, &why);
    if (!l) {
        printf("gpu_step error=\"train_step is not lowerable: %s\"\n", why ? why : "?");
        goto done;
    }
    sp_lower_stats ls = sp_lowered_stats(l);
    printf("gpu_step model=lenet5 batch=%lld kernels=%d launches=%d arena_bytes=%lld compile_ms=%.1f\n",
           (long long)batch, ls.n_kernels, ls.n_launches, (long long)ls.arena_bytes, compile_ms);

    static const char *const names[3] = {"plain", "graph", "graph_async"};
    static const int modes[3] = {SP_EXEC_CAPTURE_OFF, SP_EXEC_CAPTURE_ON, SP_EXEC_CAPTURE_ASYNC};
    double best[3] = {1e30, 1e30, 1e30};
    int same = 1;
    for (int round = 0; round < 2; round++) {
        for (int mi = 0; mi < 3; mi++) {
            sp_exec_set_capture(modes[mi]);
            for (int i = 0; i < NPARAM; i++) {
                sp_value_release(w[i]);
                sp_value_retain(w[i] = init[i]);
            }
            if (train(c, w, bx, by, warm, 0, NULL) != 0 || !gpu_sync()) goto fail;
            double a = now();
            if (train(c, w, bx, by, iters, warm, &loss) != 0) goto fail;
            if (!gpu_sync()) goto fail;
            double ms = (now() - a) * 1e3 / iters;
            if (ms < best[mi]) best[mi] = ms;
            /* every mode ends where the plain one did */
            if (round == 0 && mi == 0) {
                for (int i = 0; i < NPARAM; i++) sp_value_retain(final_w[i] = w[i]);
                sp_value_retain(final_loss = loss);
            } else if (round == 0) {
                same &= same_bits(loss, final_loss);
                for (int i = 0; i < NPARAM; i++) same &= same_bits(w[i], final_w[i]);
            }
        }
    }
    sp_exec_set_capture(SP_EXEC_CAPTURE_ON);
    sp_exec_graph_stats gs = sp_lowered_graph_stats(l);
    printf("gpu_step mode=%s ms=%.4f\n", names[0], best[0]);
    printf("gpu_step mode=%s ms=%.4f captures=%lld replays=%lld plain=%lld fallbacks=%lld state=%d "
           "why=\"%s\"\n", names[1], best[1], gs.captures, gs.replays, gs.plain, gs.fallbacks,
           (int)gs.state, gs.why);
    printf("gpu_step mode=%s ms=%.4f\n", names[2], best[2]);
    sp_tensor *hl = NULL;
    double lv = NAN;
    if (loss && sp_tensor_to(loss->u.tensor, SP_CPU, &hl) == SP_OK && hl->dtype == SP_F32)
        lv = *(const float *)sp_tensor_data(hl);
    sp_tensor_release(hl);
    printf("gpu_step same_bits=%d loss=%.6f speedup=%.2f\n", same, lv, best[0] / best[1]);
    rc = same && (gs.captures == 1 || GPU.type == SP_DEVICE_CPU) ? 0 : 1;
    if (prof_top > 0) {
        sp_exec_set_capture(SP_EXEC_CAPTURE_OFF); /* the profile launches kernels itself */
        for (int i = 0; i < NPARAM; i++) args[i] = w[i];
        if (profile(l, args, prof_top) != 0) rc = 1;
        sp_exec_set_capture(SP_EXEC_CAPTURE_ON);
    }
    goto done;
fail:
    printf("gpu_step error=\"%s\"\n", sp_last_error());
    rc = 1;
done:
    sp_compiled_free(c);
    for (int i = 0; i < NPARAM; i++) {
        sp_value_release(init[i]);
        sp_value_release(w[i]);
        sp_value_release(final_w[i]);
    }
    for (int k = 0; k < NBATCH; k++) {
        sp_value_release(bx[k]);
        sp_value_release(by[k]);
    }
    sp_value_release(loss);
    sp_value_release(final_loss);
    sp_module_free(m);
    return rc;
}
