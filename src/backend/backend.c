/*
 * backend.c -- the registry of device backends.
 *
 * One backend per device type: the CPU backend is built in and always
 * answers; the CUDA backend lives in libspore_cuda.so and calls
 * sp_backend_register() when it is loaded and finds a device.  The op layer
 * asks sp_backend_get() for the backend of its inputs' device on every
 * call, so the lookup is a single atomic load with no lock.
 *
 * Registration happens once, early (library load), but may race with a
 * lookup on another thread; the slot is written with a release store and
 * read with an acquire load, so a reader sees either nothing or a fully
 * initialized backend.  Registering a second backend for a type replaces
 * the first (a test double, or a reloaded library); the old one is not
 * freed here because backends are owned by whoever registered them.
 *
 * The CUDA backend is loaded lazily, on the first request for it: loading
 * it starts the CUDA runtime (a few hundred milliseconds), which a CPU-only
 * program should never pay.  backend_cuda_load runs once (pthread_once) and
 * dlopens libspore_cuda.so from, in order, the directory of the libspore
 * that holds this code (dladdr), $SPORE_CUDA_LIB, and the default library
 * search path; then calls its spore_cuda_init, which registers the backend
 * and the device allocator or says why it cannot (no driver, no device, or
 * a program linking the static libspore, which would give the process two
 * copies of the core).  The reason for any failure is kept and repeated in
 * every later error, so `spore run-check` and sp_cuda_available() can say
 * exactly why there is no GPU.  SPORE_CUDA=0 in the environment skips the
 * load.
 *
 * sp_tensor_to moves tensors between devices through the backends' copy
 * functions: contiguous data only, so a strided source is first made
 * contiguous on its own device (sp_tensor_contiguous on the CPU, the
 * reshape kernel on the GPU).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/device.h"
#include "core/internal.h"
#include "ops/ops.h"

#define BACKEND_TYPES 2

static sp_backend *backend_slots[BACKEND_TYPES];

void sp_backend_register(sp_backend *be) {
    if (!be || (int)be->type < 0 || (int)be->type >= BACKEND_TYPES) return;
    __atomic_store_n(&backend_slots[be->type], be, __ATOMIC_RELEASE);
}

/* ---- loading libspore_cuda.so ---- */

static pthread_once_t backend_cuda_once = PTHREAD_ONCE_INIT;
static char backend_cuda_why[1024]; /* why CUDA is unavailable; "" when it is */

static void backend_why_append(size_t *len, const char *fmt, const char *a, const char *b) {
    if (*len >= sizeof backend_cuda_why) return;
    int w = snprintf(backend_cuda_why + *len, sizeof backend_cuda_why - *len, fmt, a, b);
    if (w > 0) *len += (size_t)w;
}

/* Tries one path.  Returns 1 when the library was found (whether or not
 * its init succeeded: then the search stops), 0 when it could not be
 * opened (the reason is appended to backend_cuda_why). */
static int backend_cuda_try(const char *path, size_t *len) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        backend_why_append(len, "%s%s", *len ? "; " : "", e ? e : path);
        return 0;
    }
    typedef sp_status (*init_fn)(const void *core_token);
    init_fn init;
    *(void **)&init = dlsym(h, "spore_cuda_init");
    if (!init) {
        snprintf(backend_cuda_why, sizeof backend_cuda_why,
                 "%s has no spore_cuda_init (not a Spore CUDA backend?)", path);
        dlclose(h);
        return 1;
    }
    sp_clear_error();
    if (init((const void *)&sp_backend_register) != SP_OK) {
        snprintf(backend_cuda_why, sizeof backend_cuda_why, "%s", sp_last_error());
        /* the library may hold CUDA runtime state: keep it loaded */
        return 1;
    }
    backend_cuda_why[0] = '\0';
    return 1;
}

static void backend_cuda_load(void) {
    const char *off = getenv("SPORE_CUDA");
    if (off && !strcmp(off, "0")) {
        snprintf(backend_cuda_why, sizeof backend_cuda_why, "disabled by SPORE_CUDA=0");
        return;
    }
    size_t len = 0;
    backend_cuda_why[0] = '\0';
    Dl_info info;
    if (dladdr((void *)&sp_backend_get, &info) && info.dli_fname) {
        char path[4096];
        const char *slash = strrchr(info.dli_fname, '/');
        int n = slash ? (int)(slash - info.dli_fname) : 1;
        snprintf(path, sizeof path, "%.*s/libspore_cuda.so", n, slash ? info.dli_fname : ".");
        if (backend_cuda_try(path, &len)) return;
    }
    const char *env = getenv("SPORE_CUDA_LIB");
    if (env && *env && backend_cuda_try(env, &len)) return;
    if (backend_cuda_try("libspore_cuda.so", &len)) return;
    static const char head[] = "libspore_cuda.so was not found or could not be loaded (";
    char tried[sizeof backend_cuda_why];
    memcpy(tried, backend_cuda_why, sizeof tried);
    int room = (int)(sizeof backend_cuda_why - sizeof head - 1); /* keeps the ')' */
    snprintf(backend_cuda_why, sizeof backend_cuda_why, "%s%.*s)", head, room, tried);
}

int sp_cuda_available(void) { return sp_backend_get(SP_DEVICE_CUDA) != NULL; }

/* ---- tf32 ---- */

static int backend_allow_tf32;

void sp_set_allow_tf32(int allow) {
    __atomic_store_n(&backend_allow_tf32, allow != 0, __ATOMIC_RELAXED);
}

int sp_get_allow_tf32(void) { return __atomic_load_n(&backend_allow_tf32, __ATOMIC_RELAXED); }

sp_backend *sp_backend_get(sp_device_type type) {
    if (type == SP_DEVICE_CPU) {
        sp_backend *be = __atomic_load_n(&backend_slots[SP_DEVICE_CPU], __ATOMIC_ACQUIRE);
        return be ? be : sp_backend_cpu();
    }
    if ((int)type < 0 || (int)type >= BACKEND_TYPES) {
        sp_error(SP_ERR_DEVICE, "no backend for device type %d: Spore knows cpu and cuda",
                 (int)type);
        return NULL;
    }
    sp_backend *be = __atomic_load_n(&backend_slots[type], __ATOMIC_ACQUIRE);
    if (be) return be; /* registered already (or a test double) */
    pthread_once(&backend_cuda_once, backend_cuda_load);
    be = __atomic_load_n(&backend_slots[type], __ATOMIC_ACQUIRE);
    if (!be)
        sp_error(SP_ERR_DEVICE, "no CUDA backend: %s; use the CPU device instead",
                 backend_cuda_why[0] ? backend_cuda_why : "libspore_cuda.so registered none");
    return be;
}

/* ---- moving tensors between devices ---- */

static const char *backend_dev_str(sp_device d, char *buf, size_t n) {
    if (d.type == SP_DEVICE_CPU)
        snprintf(buf, n, "cpu");
    else
        snprintf(buf, n, "%s:%d", sp_device_type_name(d.type), d.index);
    return buf;
}

/* A contiguous tensor with t's values on t's own device (t retained when
 * already contiguous). */
static sp_status backend_contiguous(sp_tensor *t, sp_tensor **out) {
    if (sp_tensor_is_contiguous(t) || t->buf->device.type == SP_DEVICE_CPU)
        return sp_tensor_contiguous(t, out);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_status st = sp_attrs_set_ints(&at, "shape", t->ndim, t->shape);
    if (st) return st;
    int n = 0;
    return sp_op_call(SP_OP_RESHAPE, 1, &t, &at, &n, out);
}

sp_status sp_tensor_to(sp_tensor *t, sp_device dev, sp_tensor **out) {
    if (!out) return sp_error(SP_ERR_ARG, "tensor_to: NULL output");
    *out = NULL;
    if (!t || !t->buf) return sp_error(SP_ERR_ARG, "tensor_to: NULL tensor");
    sp_device from = t->buf->device;
    char a[32], b[32];
    if (from.type == dev.type && (dev.type == SP_DEVICE_CPU || from.index == dev.index)) {
        sp_tensor_retain(t);
        *out = t;
        return SP_OK;
    }
    if (from.type == SP_DEVICE_META) return sp_meta_value_error("tensor_to", t);
    if ((dev.type != SP_DEVICE_CPU && dev.type != SP_DEVICE_CUDA) ||
        (from.type != SP_DEVICE_CPU && from.type != SP_DEVICE_CUDA))
        return sp_error(SP_ERR_DEVICE, "tensor_to: no way from %s to %s",
                        backend_dev_str(from, a, sizeof a), backend_dev_str(dev, b, sizeof b));
    if (from.type == SP_DEVICE_CUDA && dev.type == SP_DEVICE_CUDA)
        return sp_error(SP_ERR_UNSUPPORTED, "tensor_to: copies between GPUs (%s to %s) are not "
                        "supported yet", backend_dev_str(from, a, sizeof a),
                        backend_dev_str(dev, b, sizeof b));
    sp_device gpu = from.type == SP_DEVICE_CUDA ? from : dev;
    if (gpu.index != 0)
        return sp_error(SP_ERR_DEVICE, "tensor_to: %s: Spore uses one GPU, cuda:0",
                        backend_dev_str(gpu, a, sizeof a));
    sp_backend *be = sp_backend_get(SP_DEVICE_CUDA);
    if (!be) return sp_last_status();
    sp_tensor *src = NULL, *dst = NULL;
    sp_status st = backend_contiguous(t, &src);
    if (st) return st;
    dst = sp_tensor_new(t->dtype, t->ndim, t->shape, dev);
    if (!dst) {
        st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        goto fail;
    }
    size_t n = sp_tensor_nbytes(t);
    if (dev.type == SP_DEVICE_CUDA)
        st = be->memcpy_to_device(be, sp_tensor_data(dst), sp_tensor_data(src), n);
    else
        st = be->memcpy_to_host(be, sp_tensor_data(dst), sp_tensor_data(src), n);
    if (st) goto fail;
    sp_tensor_release(src);
    *out = dst;
    return SP_OK;
fail:
    sp_tensor_release(src);
    sp_tensor_release(dst);
    return st;
}
