/*
 * test_device.c -- the default device and the placement rules of dispatch,
 * proven on a machine without a GPU.
 *
 * The first part runs with no CUDA backend (this test links the static
 * libspore, which never loads libspore_cuda.so): the default device is the
 * CPU, sp_set_default_device(cuda) fails with SP_ERR_DEVICE and the
 * library's reason, parsing names the bad text.
 *
 * Then a stand-in GPU is registered as the CUDA backend: its "device
 * memory" is host memory from the CPU allocator and its kernels are the CPU
 * backend's, but every launch first checks that each input and output
 * tensor lives on cuda:0 -- exactly what a real GPU kernel needs, since it
 * cannot read host memory.  Copies between "host" and "device" are counted.
 * With it the test checks the rules of src/ops/dispatch.c (a 0-d CPU
 * tensor goes with GPU inputs; other CPU tensors go only when the GPU is
 * the default device; in-place targets never move; two devices name both),
 * creation on the default device, host reads (printing, item, truth), and
 * then runs the whole program corpus (tests/programs and tests/programs/
 * grad) on the VM and through the compiler with cuda:0 as the default
 * device, each in a child process of this binary as `spore run` would
 * (one program per process): each must print exactly its `# expect:`
 * lines, with no kernel ever handed a CPU tensor; the errors/ programs
 * must fail with their `# error:` messages.  What this cannot show is the CUDA kernels
 * themselves: tests/py/test_programs_gpu.py runs the same corpus on a real
 * GPU (bench/gpu_check.sh).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

#include "backend/backend.h"
#include "core/device.h"
#include "ops/ops.h"
#include "compiler/compile.h"
#include "frontend/frontend.h"
#include "runtime/vm.h"

static const sp_device GPU = {SP_DEVICE_CUDA, 0};

/* ---- the stand-in GPU ---------------------------------------------------------- */

static long fake_h2d, fake_d2h, fake_bad_launches;
static char fake_bad_what[256];

static void *fake_alloc(size_t n, void *ctx) { (void)ctx; return sp_cpu_alloc(n); }
static void fake_free(void *p, void *ctx) { (void)ctx; sp_cpu_free(p); }
static sp_status fake_memset(void *p, int byte, size_t n, void *ctx) {
    (void)ctx;
    if (n) memset(p, byte, n);
    return SP_OK;
}
static void *fake_be_alloc(sp_backend *be, size_t n) { (void)be; return sp_cpu_alloc(n); }
static void fake_be_free(sp_backend *be, void *p) { (void)be; sp_cpu_free(p); }
static sp_status fake_to_device(sp_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    fake_h2d++;
    if (n) memcpy(dst, src, n);
    return SP_OK;
}
static sp_status fake_to_host(sp_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    fake_d2h++;
    if (n) memcpy(dst, src, n);
    return SP_OK;
}
static int fake_supports(sp_backend *be, int op, sp_dtype d) {
    (void)be;
    sp_backend *c = sp_backend_cpu();
    return c->supports(c, op, d);
}
static int on_gpu(const sp_tensor *t) { return t && t->buf && t->buf->device.type == SP_DEVICE_CUDA && t->buf->device.index == 0; }
static sp_status fake_launch(sp_backend *be, const sp_kernel_args *a) {
    (void)be;
    for (int i = 0; i < a->n_in + a->n_out; i++) {
        const sp_tensor *t = i < a->n_in ? a->in[i] : a->out[i - a->n_in];
        if (!on_gpu(t)) {
            if (!fake_bad_launches++)
                snprintf(fake_bad_what, sizeof fake_bad_what, "%s: %s %d is not on cuda:0", sp_op_name(a->op),
                         i < a->n_in ? "input" : "output", i < a->n_in ? i : i - a->n_in);
            return sp_error(SP_ERR_INTERNAL, "stand-in GPU: %s", fake_bad_what);
        }
    }
    /* the CPU kernels see the same memory as CPU tensors (some call the
     * core's CPU-only helpers on their outputs) */
    sp_tensor *h[SP_MAX_INPUTS + SP_MAX_OUTPUTS] = {0};
    sp_status st = SP_OK;
    int k;
    for (k = 0; k < a->n_in + a->n_out; k++) {
        const sp_tensor *t = k < a->n_in ? a->in[k] : a->out[k - a->n_in];
        sp_buffer *b = sp_buffer_wrap(SP_CPU, t->buf->data, t->buf->nbytes, NULL, NULL);
        h[k] = b ? sp_tensor_view_of(b, t->dtype, t->ndim, t->shape, t->strides, t->offset) : NULL;
        sp_buffer_release(b);
        if (!h[k]) break;
    }
    if (k == a->n_in + a->n_out) {
        sp_kernel_args ha = *a;
        ha.in = h;
        ha.out = h + a->n_in;
        sp_backend *c = sp_backend_cpu();
        st = c->launch(c, &ha);
    } else {
        st = sp_last_status();
    }
    for (int i = 0; i < k; i++) sp_tensor_release(h[i]);
    return st;
}
static sp_status fake_sync(sp_backend *be) { (void)be; return SP_OK; }

static sp_backend fake_gpu = {
    .name = "cuda",
    .type = SP_DEVICE_CUDA,
    .alloc = fake_be_alloc,
    .free = fake_be_free,
    .memcpy_to_device = fake_to_device,
    .memcpy_to_host = fake_to_host,
    .supports = fake_supports,
    .launch = fake_launch,
    .sync = fake_sync,
};

static void fake_install(void) {
    sp_device_allocator_register(SP_DEVICE_CUDA, fake_alloc, fake_free, NULL);
    sp_device_memset_register(SP_DEVICE_CUDA, fake_memset, NULL);
    sp_backend_register(&fake_gpu);
}

/* ---- helpers ----------------------------------------------------------------------- */

static sp_tensor *f32(int n, const float *v) {
    int64_t s = n;
    return sp_tensor_from_data(SP_F32, 1, &s, v);
}

static sp_tensor *gpu_of(sp_tensor *h) {
    sp_tensor *d = NULL;
    if (sp_tensor_to(h, GPU, &d) != SP_OK) return NULL;
    return d;
}

/* t's values as text ("[2. 4.]"), freed by the caller; "?" when it fails. */
static char *text(const sp_tensor *t) {
    char *s = sp_tensor_to_string(t);
    return s ? s : strdup("?");
}

static int text_is(const sp_tensor *t, const char *want) {
    char *s = text(t);
    int ok = !strcmp(s, want);
    if (!ok) fprintf(stderr, "  got '%s', wanted '%s'\n", s, want);
    free(s);
    return ok;
}

/* ---- without a GPU ------------------------------------------------------------------ */

static void test_no_gpu(void) {
    CHECK(sp_default_device().type == SP_DEVICE_CPU);
    CHECK_ERR(sp_set_default_device(GPU), SP_ERR_DEVICE, "set_default_device: cuda:0 is not available: ");
    CHECK(strstr(sp_last_error(), "no CUDA backend") != NULL);
    CHECK(sp_default_device().type == SP_DEVICE_CPU); /* unchanged */
    CHECK_ERR(sp_set_default_device(SP_META), SP_ERR_ARG, "meta is not a device tensors can be made on");
    CHECK_ERR(sp_set_default_device((sp_device){(sp_device_type)7, 0}), SP_ERR_ARG, "set_default_device:");
    CHECK_OK(sp_set_default_device(SP_CPU));

    sp_device d = {SP_DEVICE_META, 5};
    CHECK_OK(sp_device_parse("cpu", &d));
    CHECK(d.type == SP_DEVICE_CPU && d.index == 0);
    CHECK_OK(sp_device_parse("GPU", &d));
    CHECK(d.type == SP_DEVICE_CUDA && d.index == 0);
    CHECK_OK(sp_device_parse("cuda:3", &d));
    CHECK(d.type == SP_DEVICE_CUDA && d.index == 3);
    CHECK_OK(sp_device_parse("CPU:0", &d));
    CHECK(d.type == SP_DEVICE_CPU);
    const char *bad[] = {"", "tpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cpu:1", "cudacuda", "cuda:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_ERR(sp_device_parse(bad[i], &d), SP_ERR_ARG, "unknown device '");
    char buf[32];
    CHECK(!strcmp(sp_device_str(GPU, buf, sizeof buf), "cuda:0"));
    CHECK(!strcmp(sp_device_str(SP_CPU, buf, sizeof buf), "cpu"));

    /* creation without a device: the CPU */
    int n = 0;
    sp_tensor *o[SP_MAX_OUTPUTS] = {0};
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){3});
    CHECK_OK(sp_op_call(SP_OP_ONES, 0, NULL, &a, &n, o));
    CHECK(n == 1 && o[0]->buf->device.type == SP_DEVICE_CPU);
    sp_tensor_release(o[0]);
}

/* ---- the dispatch rules ---------------------------------------------------------------- */

static void test_rules(void) {
    CHECK_OK(sp_set_default_device(SP_CPU));
    float v[3] = {1, 2, 3};
    sp_tensor *hc = f32(3, v), *g = gpu_of(hc), *s = sp_tensor_scalar(SP_F32, 2.0), *o[SP_MAX_OUTPUTS] = {0};
    CHECK(g && s);
    if (!g || !s) goto done;
    int n = 0;
    /* a 0-d CPU tensor goes with GPU inputs (copied for the call) */
    long h2d = fake_h2d;
    CHECK_OK(sp_op_call(SP_OP_MUL, 2, (sp_tensor *[]){g, s}, NULL, &n, o));
    CHECK(n == 1 && on_gpu(o[0]) && text_is(o[0], "[2. 4. 6.]"));
    CHECK(fake_h2d == h2d + 1);
    sp_tensor_release(o[0]);
    CHECK_OK(sp_op_call(SP_OP_SUB, 2, (sp_tensor *[]){s, g}, NULL, &n, o));
    CHECK(n == 1 && on_gpu(o[0]) && text_is(o[0], "[ 1.  0. -1.]"));
    sp_tensor_release(o[0]);
    /* a CPU tensor of rank > 0 does not while the CPU is the default */
    CHECK_ERR(sp_op_call(SP_OP_ADD, 2, (sp_tensor *[]){hc, g}, NULL, &n, o), SP_ERR_DEVICE,
              "add: inputs are on different devices (input 0 on cpu, input 1 on cuda:0); move one with Tensor.to");
    CHECK(n == 0);
    /* ... but does once the GPU is the default (MindSpore's rule) */
    CHECK_OK(sp_set_default_device(GPU));
    CHECK(sp_default_device().type == SP_DEVICE_CUDA);
    CHECK_OK(sp_op_call(SP_OP_ADD, 2, (sp_tensor *[]){hc, g}, NULL, &n, o));
    CHECK(n == 1 && on_gpu(o[0]) && text_is(o[0], "[2. 4. 6.]"));
    sp_tensor_release(o[0]);
    /* all inputs on the CPU: the CPU, whatever the default */
    CHECK_OK(sp_op_call(SP_OP_ADD, 2, (sp_tensor *[]){hc, s}, NULL, &n, o));
    CHECK(n == 1 && o[0]->buf->device.type == SP_DEVICE_CPU);
    sp_tensor_release(o[0]);
    /* no inputs: the default device */
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", 1, (int64_t[]){2});
    CHECK_OK(sp_op_call(SP_OP_ONES, 0, NULL, &a, &n, o));
    CHECK(n == 1 && on_gpu(o[0]) && text_is(o[0], "[1. 1.]"));
    sp_tensor_release(o[0]);
    /* an in-place target never moves: the update would land in a copy */
    sp_tensor *hv = sp_tensor_scalar(SP_F32, 0.0), *gs = gpu_of(s);
    CHECK_ERR(sp_op_call(SP_OP_ASSIGN, 2, (sp_tensor *[]){hv, gs}, NULL, &n, o), SP_ERR_DEVICE,
              "assign: input 0 is on cpu and updated in place, input 1 on cuda:0");
    /* ... its read-only inputs do */
    sp_tensor *gv = gpu_of(hv);
    CHECK_OK(sp_op_call(SP_OP_ASSIGN, 2, (sp_tensor *[]){gv, s}, NULL, &n, o));
    CHECK(n == 0 && text_is(gv, "2.0"));
    sp_tensor *acc = gpu_of(hc), *lr = sp_tensor_scalar(SP_F32, 0.5);
    CHECK_ERR(sp_op_call(SP_OP_SGD_UPDATE, 4, (sp_tensor *[]){g, g, hc, lr}, NULL, &n, o), SP_ERR_DEVICE,
              "sgd_update: input 2 is on cpu and updated in place");
    CHECK_OK(sp_op_call(SP_OP_SGD_UPDATE, 4, (sp_tensor *[]){acc, g, g, lr}, NULL, &n, o));
    CHECK(text_is(acc, "[0.5 1.  1.5]"));
    /* call_into moves the same way */
    sp_tensor *out = sp_tensor_new(SP_F32, 1, (int64_t[]){3}, GPU);
    /* inputs all on the CPU run there: a GPU output is refused */
    CHECK_ERR(sp_op_call_into(SP_OP_MUL, 2, (sp_tensor *[]){hc, s}, NULL, 1, &out), SP_ERR_DEVICE,
              "mul: output 0 is on cuda:0, not on cpu");
    CHECK_OK(sp_op_call_into(SP_OP_MUL, 2, (sp_tensor *[]){g, s}, NULL, 1, &out));
    CHECK(text_is(out, "[2. 4. 6.]"));
    /* two GPUs: named both */
    sp_buffer *b1 = sp_buffer_wrap((sp_device){SP_DEVICE_CUDA, 1}, g->buf->data, 12, NULL, NULL);
    sp_tensor *g1 = b1 ? sp_tensor_view_of(b1, SP_F32, 1, (int64_t[]){3}, (int64_t[]){1}, 0) : NULL;
    sp_buffer_release(b1);
    CHECK_ERR(sp_op_call(SP_OP_ADD, 2, (sp_tensor *[]){g, g1}, NULL, &n, o), SP_ERR_DEVICE,
              "add: inputs are on different devices (input 0 on cuda:0, input 1 on cuda:1)");
    CHECK_ERR(sp_set_default_device((sp_device){SP_DEVICE_CUDA, 1}), SP_ERR_DEVICE, "Spore drives one GPU, cuda:0");
    CHECK(sp_default_device().type == SP_DEVICE_CUDA && sp_default_device().index == 0);
    /* host reads of a GPU tensor: printing and sp_tensor_to_string copy */
    long d2h = fake_d2h;
    CHECK(text_is(g, "[1. 2. 3.]"));
    CHECK(fake_d2h == d2h + 1);
    sp_tensor_release(g1);
    sp_tensor_release(out);
    sp_tensor_release(acc);
    sp_tensor_release(lr);
    sp_tensor_release(gv);
    sp_tensor_release(hv);
    sp_tensor_release(gs);
done:
    CHECK_OK(sp_set_default_device(SP_CPU));
    sp_tensor_release(hc);
    sp_tensor_release(g);
    sp_tensor_release(s);
}

/* ---- the corpus with cuda:0 as the default device ------------------------------------------ */

/* The `# TAG:` lines of a file joined with newlines (each line ends with
 * one); malloc'd. */
static char *expectations(const char *path, const char *tag) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(cap, 1), line[4096], head[64];
    int hn = snprintf(head, sizeof head, "# %s:", tag);
    while (out && fgets(line, sizeof line, f)) {
        size_t k = strlen(line);
        while (k && (line[k - 1] == '\n' || line[k - 1] == '\r')) line[--k] = 0;
        if (strncmp(line, head, (size_t)hn)) continue;
        const char *p = line + hn;
        if (*p == ' ') p++;
        else if (*p) continue;
        size_t m = strlen(p);
        if (n + m + 2 >= cap) break;
        memcpy(out + n, p, m);
        n += m;
        out[n++] = '\n';
    }
    fclose(f);
    return out;
}

/* Child mode (`test_device --run FILE compiled cpu|gpu`): runs one program
 * as `spore run` does, on the stand-in GPU when asked; exit 0, or 1 with
 * the error on stderr, or 3 when a kernel was handed a tensor off cuda:0. */
static int run_child(const char *file, int compiled, int gpu) {
    fake_install();
    if (gpu && sp_set_default_device(GPU) != SP_OK) {
        fprintf(stderr, "%s", sp_last_error());
        return 1;
    }
    sp_module *m = sp_frontend_compile_file(file, NULL);
    sp_value *v = NULL;
    if (m && compiled) {
        sp_compiled *c = NULL;
        if (sp_compile(m, NULL, 0, NULL, NULL, &c) == SP_OK) v = sp_compiled_run(c, 0, NULL);
        sp_compiled_free(c);
    } else if (m) {
        v = sp_vm_run(m, NULL, 0, NULL);
    }
    int rc = 0;
    if (v && v->kind != SP_V_NONE) {
        char *s = sp_value_to_string(v);
        if (s) printf("%s\n", s);
        else rc = 1;
        free(s);
    }
    if (!v) rc = 1;
    fflush(stdout);
    if (rc) fprintf(stderr, "%s", sp_last_error());
    if (fake_bad_launches) {
        fprintf(stderr, "stand-in GPU: %s", fake_bad_what);
        rc = 3;
    }
    sp_value_release(v);
    sp_module_free(m);
    return rc;
}

/* The whole contents of fd (malloc'd, NUL-terminated). */
static char *slurp(int fd) {
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = calloc((size_t)(size > 0 ? size : 0) + 1, 1);
    if (buf && size > 0 && pread(fd, buf, (size_t)size, 0) != size) buf[0] = 0;
    return buf;
}

/* Runs `file` in a child process of this binary (one program per process,
 * as `spore run`; a crash is a failure, not the end of the test).  Returns
 * what it printed (malloc'd); *status is its exit status (-1: a signal),
 * *err what it wrote to stderr (malloc'd). */
static char *run_captured(const char *file, int compiled, int gpu, int *status, char **err) {
    char to[] = "/tmp/spore_test_device_XXXXXX", te[] = "/tmp/spore_test_device_XXXXXX";
    int fo = mkstemp(to), fe = mkstemp(te);
    *status = -1;
    *err = NULL;
    if (fo >= 0) unlink(to);
    if (fe >= 0) unlink(te);
    if (fo < 0 || fe < 0) {
        if (fo >= 0) close(fo);
        if (fe >= 0) close(fe);
        return NULL;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fo, 1);
        dup2(fe, 2);
        execl("/proc/self/exe", "test_device", "--run", file, compiled ? "1" : "0", gpu ? "gpu" : "cpu",
              (char *)NULL);
        _exit(127);
    }
    int ws = 0;
    if (pid > 0 && waitpid(pid, &ws, 0) == pid && WIFEXITED(ws)) *status = WEXITSTATUS(ws);
    char *out = slurp(fo);
    *err = slurp(fe);
    close(fo);
    close(fe);
    return out;
}

static int is_py(const char *name) {
    size_t k = strlen(name);
    return k > 3 && !strcmp(name + k - 3, ".py");
}

/* Every program of dir prints its expectations on the stand-in GPU, run
 * compiled or on the VM. */
static int corpus_dir(const char *dir, int compiled) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_py(e->d_name)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *want = expectations(path, "expect"), *err = NULL;
        int status = -1;
        if (want && !want[0]) { /* no `# expect:` lines (test_programs.py says so) */
            free(want);
            continue;
        }
        char *got = want ? run_captured(path, compiled, 1, &status, &err) : NULL;
        int ok = want && got && status == 0 && !strcmp(got, want);
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  %s (%s): status %d: %s\n  printed:\n%s  wanted:\n%s\n", path,
                    compiled ? "compiled" : "VM", status, err ? err : "", got ? got : "", want ? want : "");
        free(want);
        free(got);
        free(err);
        count++;
    }
    closedir(d);
    return count;
}

/* Every program of dir fails on the stand-in GPU as on the CPU: status 1
 * and every `# error:` line of the file in the message (what
 * tests/py/test_programs.py demands of the CPU run). */
static int errors_dir(const char *dir, int compiled) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_py(e->d_name)) continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int st = -1;
        char *err = NULL, *want = expectations(path, "error");
        free(run_captured(path, compiled, 1, &st, &err));
        int ok = st == 1 && err && want && want[0];
        for (char *line = want, *nl; ok && line && *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (!nl) break;
            *nl = 0;
            ok = strstr(err, line) != NULL;
        }
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  %s (%s): status %d: %s\n", path, compiled ? "compiled" : "VM", st, err ? err : "");
        free(err);
        free(want);
        count++;
    }
    closedir(d);
    return count;
}

static void test_corpus(void) {
    char root[1024];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *slash = strrchr(root, '/');
    if (!slash) {
        fprintf(stderr, "  cannot find tests/programs from %s\n", __FILE__);
        CHECK(0);
        return;
    }
    *slash = 0; /* tests/runtime */
    static const char *const dirs[] = {"programs", "programs/grad"}, *const errs[] = {"programs/errors",
                                                                                     "programs/grad/errors"};
    char dir[2100];
    for (int compiled = 1; compiled >= 0; compiled--) {
        int n = 0, k = 0;
        for (int i = 0; i < 2; i++) {
            snprintf(dir, sizeof dir, "%s/../%s", root, dirs[i]);
            n += corpus_dir(dir, compiled);
        }
        for (int i = 0; i < 2; i++) {
            snprintf(dir, sizeof dir, "%s/../%s", root, errs[i]);
            k += errors_dir(dir, compiled);
        }
        CHECK(n >= 30 && k >= 20);
        printf("  %s: %d corpus programs print their expectations on the stand-in GPU, %d error programs fail "
               "with their messages\n", compiled ? "compiled" : "VM", n, k);
    }
    CHECK_OK(sp_set_default_device(SP_CPU));
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "--run")) /* a child of run_captured */
        return run_child(argv[2], argv[3][0] == '1', !strcmp(argv[4], "gpu"));
    RUN(test_no_gpu);
    fake_install();
    RUN(test_rules);
    RUN(test_corpus);
    return TEST_SUMMARY();
}
