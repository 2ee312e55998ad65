/*
 * cuda_backend.c -- the CUDA backend's registration, memory and copies.
 *
 * libspore loads this library with dlopen (backend.c) and calls
 * spore_cuda_init(), which finds a device, makes the one stream every kernel
 * runs on, and registers the backend (sp_backend_register) and the device
 * allocator (core/device.h).  Any failure leaves nothing registered and a
 * message saying why; libspore then reports CUDA as unavailable.
 *
 * One device (cuda:0), one stream.  Everything that touches device memory
 * -- kernels, library calls, copies, memsets -- is enqueued on cuda_stream().
 * That single invariant is what makes the allocator simple and safe: it is
 * a caching, stream-ordered allocator, so a block freed on the host while
 * kernels that read it are still queued may be handed out at once to the
 * next request, because whatever uses it next is queued behind them on the
 * same stream.  (Work on another stream would have to record an event and
 * make the allocator wait on it before reuse; nothing does that yet.)  The
 * one exception, a thread recording a CUDA graph (graph.cu), is no
 * exception for memory: its capture stream runs nothing, and the graph is
 * replayed on the main stream.  The blocks a capturing thread frees are
 * kept for the graph instead of cached, since every replay uses them again.
 *
 * The cache keeps freed blocks in size classes a quarter of a power of two
 * apart (at most 25% waste), one free stack per class, and a hash table from
 * address to class for free().  cudaMalloc is called only on a cache miss;
 * when it fails the cache is emptied and the call retried once.
 *
 * Copies from pageable host memory go through two pinned staging buffers,
 * double-buffered with events, so a copy to the device returns as soon as
 * the last chunk is staged (the caller may free its memory then) and a
 * copy back overlaps the device-to-pinned transfer of one chunk with the
 * host memcpy of the previous one.  A copy to the host is synchronous: it
 * returns when the data is there, and it then reads the device error slot
 * (cuda_err_info in cuda.h), so an index error a kernel found reaches the
 * user no later than the values do.
 *
 * The kernel table names every cuda_<name> with an ordinary (strong)
 * reference, as the CPU's does: a primitive added to ops.def without its
 * CUDA kernel is a link error, which keeps the backend complete.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda.h"
#include "core/device.h"

/* ---- the kernel table ---------------------------------------------------- */

static sp_kernel_fn const cuda_kernels[SP_OP_COUNT] = {
#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) [SP_OP_##ID] = cuda_##name,
#include "ops/ops.def"
#undef SP_OP
};

/* ---- context ------------------------------------------------------------- */

#define STAGE_BYTES ((size_t)8 << 20)

typedef struct cuda_ctx {
    int device;
    int sm_count;
    cudaStream_t stream;
    cuda_err_info *err;   /* device */
    void *scratch;        /* device, 256 bytes */
    /* pinned staging */
    pthread_mutex_t stage_mu;
    void *stage[2];
    cudaEvent_t stage_ev[2];
} cuda_ctx;

static cuda_ctx cuda_g = {.stage_mu = PTHREAD_MUTEX_INITIALIZER};

/* The recording this thread is making (graph.cu), if any: its kernels go
 * to the capture's stream, the main stream stays free for other threads. */
static __thread cuda_capture *cuda_tls_capture;
static __thread int cuda_tls_err_op = -1;

cuda_capture *cuda_capture_get(void) { return cuda_tls_capture; }
void cuda_capture_set(cuda_capture *c) { cuda_tls_capture = c; }
int cuda_err_last_op(void) { return cuda_tls_err_op; }

cudaStream_t cuda_stream(void) {
    cuda_capture *c = cuda_tls_capture;
    return c ? c->stream : cuda_g.stream;
}
cuda_err_info *cuda_err_slot(void) { return cuda_g.err; }
void *cuda_scratch(void) { return cuda_g.scratch; }
int cuda_sm_count(void) { return cuda_g.sm_count; }

sp_status cuda_check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return SP_OK;
    return sp_error(e == cudaErrorMemoryAllocation ? SP_ERR_NOMEM : SP_ERR_DEVICE,
                    "%s: CUDA error %d (%s): %s", what, (int)e, cudaGetErrorName(e),
                    cudaGetErrorString(e));
}

/* ---- the caching allocator ---------------------------------------------- */

#define ALLOC_MIN_SHIFT 9 /* 512 bytes: the smallest class */
#define ALLOC_BINS (4 * 64)

typedef struct alloc_stack {
    void **p;
    int n, cap;
} alloc_stack;

/* Open addressing, linear probing; key NULL = empty, TOMB = deleted. */
typedef struct alloc_entry {
    void *key;
    int bin;
} alloc_entry;

static pthread_mutex_t alloc_mu = PTHREAD_MUTEX_INITIALIZER;
static alloc_stack alloc_free[ALLOC_BINS];
static alloc_entry *alloc_map;
static size_t alloc_map_cap, alloc_map_used; /* used counts tombstones too */
static long long alloc_live, alloc_cached;
static char alloc_tomb_byte;
#define ALLOC_TOMB ((void *)&alloc_tomb_byte)

/* The class of a request: its bin and the bytes a block of that bin has.
 * Classes are 2^k * {1, 1.25, 1.5, 1.75}. */
static size_t alloc_class(size_t n, int *bin) {
    if (n < ((size_t)1 << ALLOC_MIN_SHIFT)) n = (size_t)1 << ALLOC_MIN_SHIFT;
    int k = 63 - __builtin_clzll((unsigned long long)n);
    size_t base = (size_t)1 << k, step = base >> 2;
    size_t q = (n - base + step - 1) / step;
    if (q == 4) {
        k++;
        q = 0;
        base <<= 1;
        step <<= 1;
    }
    *bin = 4 * k + (int)q;
    return base + q * step;
}

static size_t alloc_bin_bytes(int bin) {
    size_t base = (size_t)1 << (bin / 4);
    return base + (size_t)(bin % 4) * (base >> 2);
}

static size_t alloc_hash(void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

static int alloc_map_put(void *p, int bin);

static int alloc_map_grow(void) {
    size_t old_cap = alloc_map_cap;
    alloc_entry *old = alloc_map;
    size_t cap = old_cap ? old_cap * 2 : 1024;
    alloc_entry *m = calloc(cap, sizeof *m);
    if (!m) return -1;
    alloc_map = m;
    alloc_map_cap = cap;
    alloc_map_used = 0;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key && old[i].key != ALLOC_TOMB) alloc_map_put(old[i].key, old[i].bin);
    free(old);
    return 0;
}

static int alloc_map_put(void *p, int bin) {
    if ((alloc_map_used + 1) * 2 > alloc_map_cap && alloc_map_grow() != 0) return -1;
    size_t mask = alloc_map_cap - 1, i = alloc_hash(p) & mask;
    while (alloc_map[i].key && alloc_map[i].key != ALLOC_TOMB) i = (i + 1) & mask;
    if (!alloc_map[i].key) alloc_map_used++;
    alloc_map[i].key = p;
    alloc_map[i].bin = bin;
    return 0;
}

/* Removes p and returns its bin, or -1 when p is not ours. */
static int alloc_map_take(void *p) {
    if (!alloc_map_cap) return -1;
    size_t mask = alloc_map_cap - 1, i = alloc_hash(p) & mask;
    while (alloc_map[i].key) {
        if (alloc_map[i].key == p) {
            alloc_map[i].key = ALLOC_TOMB;
            return alloc_map[i].bin;
        }
        i = (i + 1) & mask;
    }
    return -1;
}

static int alloc_push(int bin, void *p) {
    alloc_stack *s = &alloc_free[bin];
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        void **np = realloc(s->p, (size_t)cap * sizeof *np);
        if (!np) return -1;
        s->p = np;
        s->cap = cap;
    }
    s->p[s->n++] = p;
    return 0;
}

/* Gives every cached block back to the driver.  Called with alloc_mu held. */
static void alloc_release_cache_locked(void) {
    /* kernels queued before a block was freed may still read it */
    (void)cudaStreamSynchronize(cuda_g.stream);
    for (int b = 0; b < ALLOC_BINS; b++) {
        alloc_stack *s = &alloc_free[b];
        for (int i = 0; i < s->n; i++) cudaFree(s->p[i]);
        alloc_cached -= (long long)s->n * (long long)alloc_bin_bytes(b);
        s->n = 0;
    }
}

static void *cuda_alloc_impl(size_t nbytes) {
    if (nbytes > ((size_t)1 << 46)) {
        sp_error(SP_ERR_NOMEM, "cuda: cannot allocate %zu bytes (more than the device has)",
                 nbytes);
        return NULL;
    }
    int bin;
    size_t sz = alloc_class(nbytes, &bin);
    void *p = NULL;
    pthread_mutex_lock(&alloc_mu);
    alloc_stack *s = &alloc_free[bin];
    if (s->n > 0) {
        p = s->p[--s->n];
        alloc_cached -= (long long)sz;
    } else {
        cudaError_t e = cudaMalloc(&p, sz);
        if (e != cudaSuccess && !cuda_tls_capture) { /* emptying the cache waits for the device */
            (void)cudaGetLastError(); /* not sticky, but clear it */
            alloc_release_cache_locked();
            e = cudaMalloc(&p, sz);
        }
        if (e != cudaSuccess) {
            (void)cudaGetLastError();
            long long live = alloc_live;
            pthread_mutex_unlock(&alloc_mu);
            sp_error(SP_ERR_NOMEM,
                     "cuda: out of device memory allocating %zu bytes (%lld bytes in use): %s",
                     nbytes, live, cudaGetErrorString(e));
            return NULL;
        }
    }
    if (alloc_map_put(p, bin) != 0) {
        alloc_push(bin, p); /* keep it cached; best effort */
        alloc_cached += (long long)sz;
        pthread_mutex_unlock(&alloc_mu);
        sp_error(SP_ERR_NOMEM, "cuda: out of host memory for the allocator's table");
        return NULL;
    }
    alloc_live += (long long)sz;
    pthread_mutex_unlock(&alloc_mu);
    return p;
}

void cuda_block_free(void *p) {
    if (!p) return;
    pthread_mutex_lock(&alloc_mu);
    int bin = alloc_map_take(p);
    if (bin >= 0) {
        size_t sz = alloc_bin_bytes(bin);
        alloc_live -= (long long)sz;
        if (alloc_push(bin, p) == 0)
            alloc_cached += (long long)sz;
        else
            cudaFree(p);
    }
    pthread_mutex_unlock(&alloc_mu);
}

/* During a capture a freed block is kept for the graph: the recorded
 * kernels will read and write it at every replay, so it must not go to
 * anyone else.  If it cannot be kept, the capture is marked failed (its
 * graph is never run) and the block goes back as usual. */
static void cuda_free_impl(void *p) {
    cuda_capture *c = cuda_tls_capture;
    if (p && c) {
        if (c->n_kept == c->cap_kept) {
            int cap = c->cap_kept ? 2 * c->cap_kept : 32;
            void **np = realloc(c->kept, (size_t)cap * sizeof *np);
            if (np) {
                c->kept = np;
                c->cap_kept = cap;
            }
        }
        if (c->n_kept < c->cap_kept) {
            c->kept[c->n_kept++] = p;
            return;
        }
        c->failed = "out of host memory keeping the capture's blocks";
    }
    cuda_block_free(p);
}

long long cuda_live_bytes(void) {
    pthread_mutex_lock(&alloc_mu);
    long long v = alloc_live;
    pthread_mutex_unlock(&alloc_mu);
    return v;
}

long long cuda_cached_bytes(void) {
    pthread_mutex_lock(&alloc_mu);
    long long v = alloc_cached;
    pthread_mutex_unlock(&alloc_mu);
    return v;
}

void *cuda_tmp_alloc(size_t nbytes) { return cuda_alloc_impl(nbytes); }
void cuda_tmp_free(void *p) { cuda_free_impl(p); }

/* The hooks of core/device.h. */
static void *cuda_dev_alloc(size_t nbytes, void *ctx) {
    (void)ctx;
    return cuda_alloc_impl(nbytes);
}

static void cuda_dev_free(void *p, void *ctx) {
    (void)ctx;
    cuda_free_impl(p);
}

static sp_status cuda_dev_memset(void *p, int byte, size_t nbytes, void *ctx) {
    (void)ctx;
    if (!nbytes) return SP_OK;
    return cuda_check(cudaMemsetAsync(p, byte, nbytes, cuda_stream()), "cuda memset");
}

/* ---- the device error slot ------------------------------------------------ */

static sp_status cuda_err_read(void) {
    cuda_err_info h;
    cuda_tls_err_op = -1;
    sp_status st = cuda_check(cudaMemcpyAsync(&h, cuda_g.err, sizeof h, cudaMemcpyDeviceToHost,
                                              cuda_g.stream),
                              "cuda: reading the error slot");
    if (!st) st = cuda_check(cudaStreamSynchronize(cuda_g.stream), "cuda: synchronize");
    if (st || !h.flag) return st;
    (void)cudaMemsetAsync(cuda_g.err, 0, sizeof h, cuda_g.stream);
    cuda_tls_err_op = h.op;
    const char *op = sp_op_name(h.op);
    if (!op) op = "cuda kernel";
    if (h.kind == CUDA_ERR_POSITION)
        return sp_error(SP_ERR_ARG, "%s: index %lld at position %lld out of range [0, %lld)", op,
                        h.v, h.a, h.b);
    if (h.kind == CUDA_ERR_LABEL)
        return sp_error(SP_ERR_ARG, "%s: label %lld at position %lld out of range [0, %lld)", op,
                        h.v, h.a, h.b);
    if (h.kind == CUDA_ERR_INDEX)
        return sp_error(SP_ERR_ARG, "%s: index %lld out of range for axis %lld of size %lld", op,
                        h.v, h.a, h.b);
    return sp_error(SP_ERR_ARG, "%s: the kernel reported error kind %d", op, h.kind);
}

sp_status cuda_err_check(void) {
    cuda_capture *c = cuda_tls_capture;
    if (c) { /* the graph's replays read the slot instead */
        c->check_err = 1;
        return SP_OK;
    }
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(cuda_g.stream, &cs) == cudaSuccess &&
        cs != cudaStreamCaptureStatusNone)
        return SP_OK; /* read at the next sync after the graph runs */
    return cuda_err_read();
}

/* ---- copies -------------------------------------------------------------- */

/* What kind of memory p is: device memory of ours (or any device memory),
 * pinned host memory, or ordinary pageable host memory. */
static enum cudaMemoryType cuda_mem_type(const void *p) {
    struct cudaPointerAttributes at;
    if (cudaPointerGetAttributes(&at, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return cudaMemoryTypeUnregistered;
    }
    return at.type;
}

static int cuda_is_device(enum cudaMemoryType t) {
    return t == cudaMemoryTypeDevice || t == cudaMemoryTypeManaged;
}

/* A copy that involves host memory waits for the device, which a capture
 * cannot record: it fails, and so does the capture. */
static sp_status cuda_host_copy_in_capture(const char *what) {
    cuda_capture *c = cuda_tls_capture;
    if (!c) return SP_OK;
    c->failed = "a kernel copies between host and device";
    return sp_error(SP_ERR_UNSUPPORTED, "%s: not possible while capturing a CUDA graph", what);
}

static sp_status cuda_be_to_device(sp_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    if (!n) return SP_OK;
    enum cudaMemoryType t = cuda_mem_type(src);
    if (cuda_is_device(t))
        return cuda_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cuda_stream()),
                          "cuda copy device to device");
    sp_status cst = cuda_host_copy_in_capture("cuda copy host to device");
    if (cst) return cst;
    if (t == cudaMemoryTypeHost) { /* pinned by someone else: direct, but wait */
        sp_status st = cuda_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice,
                                                  cuda_g.stream), "cuda copy host to device");
        return st ? st : cuda_check(cudaStreamSynchronize(cuda_g.stream), "cuda copy host to device");
    }
    sp_status st = SP_OK;
    pthread_mutex_lock(&cuda_g.stage_mu);
    for (size_t off = 0, k = 0; off < n && !st; off += STAGE_BYTES, k ^= 1) {
        size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
        /* the previous copy out of this staging buffer must be done */
        st = cuda_check(cudaEventSynchronize(cuda_g.stage_ev[k]), "cuda copy host to device");
        if (st) break;
        memcpy(cuda_g.stage[k], (const char *)src + off, len);
        st = cuda_check(cudaMemcpyAsync((char *)dst + off, cuda_g.stage[k], len,
                                        cudaMemcpyHostToDevice, cuda_g.stream),
                        "cuda copy host to device");
        if (!st)
            st = cuda_check(cudaEventRecord(cuda_g.stage_ev[k], cuda_g.stream),
                            "cuda copy host to device");
    }
    pthread_mutex_unlock(&cuda_g.stage_mu);
    return st;
}

static sp_status cuda_be_to_host(sp_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    sp_status st = SP_OK;
    if (n) {
        enum cudaMemoryType t = cuda_mem_type(dst);
        if (cuda_is_device(t))
            return cuda_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice,
                                              cuda_stream()), "cuda copy device to device");
        if ((st = cuda_host_copy_in_capture("cuda copy device to host"))) return st;
        if (t == cudaMemoryTypeHost) {
            st = cuda_check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, cuda_g.stream),
                            "cuda copy device to host");
        } else {
            /* chunk i goes device -> stage[i%2]; while it flies, chunk i-1
             * goes stage -> dst */
            pthread_mutex_lock(&cuda_g.stage_mu);
            size_t nchunks = (n + STAGE_BYTES - 1) / STAGE_BYTES;
            for (size_t i = 0; i <= nchunks && !st; i++) {
                if (i < nchunks) {
                    size_t off = i * STAGE_BYTES, k = i & 1;
                    size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
                    st = cuda_check(cudaEventSynchronize(cuda_g.stage_ev[k]),
                                    "cuda copy device to host");
                    if (!st)
                        st = cuda_check(cudaMemcpyAsync(cuda_g.stage[k], (const char *)src + off,
                                                        len, cudaMemcpyDeviceToHost,
                                                        cuda_g.stream),
                                        "cuda copy device to host");
                    if (!st)
                        st = cuda_check(cudaEventRecord(cuda_g.stage_ev[k], cuda_g.stream),
                                        "cuda copy device to host");
                }
                if (!st && i > 0) {
                    size_t j = i - 1, off = j * STAGE_BYTES, k = j & 1;
                    size_t len = n - off < STAGE_BYTES ? n - off : STAGE_BYTES;
                    st = cuda_check(cudaEventSynchronize(cuda_g.stage_ev[k]),
                                    "cuda copy device to host");
                    if (!st) memcpy((char *)dst + off, cuda_g.stage[k], len);
                }
            }
            pthread_mutex_unlock(&cuda_g.stage_mu);
        }
    }
    if (st) return st;
    /* the values are on the host: so is any error the kernels found */
    return cuda_err_read();
}

/* ---- the backend ---------------------------------------------------------- */

static void *cuda_be_alloc(sp_backend *be, size_t nbytes) {
    (void)be;
    return cuda_alloc_impl(nbytes);
}

static void cuda_be_free(sp_backend *be, void *p) {
    (void)be;
    cuda_free_impl(p);
}

static int cuda_be_supports(sp_backend *be, int op, sp_dtype d) {
    (void)be;
    if (op < 0 || op >= SP_OP_COUNT || !cuda_kernels[op]) return 0;
    if ((int)d < 0 || d >= SP_DTYPE_COUNT) return 0;
    return (sp_op_defs[op].dtypes & SP_DTM(d)) != 0;
}

static void cuda_parent_release(void *ctx) { sp_buffer_release((sp_buffer *)ctx); }

/* An output that starts inside its buffer (sp_op_call_into a planned arena
 * slice) seen as a tensor of its own with offset 0: several kernels address
 * outputs from the buffer's start (they were written for fresh outputs), so
 * the launch hands them a buffer that begins where the output does.  The
 * new buffer keeps the parent alive.  NULL + error on failure. */
static sp_tensor *cuda_rebase(sp_tensor *t) {
    size_t es = sp_dtype_size(t->dtype), skip = (size_t)t->offset * es;
    sp_buffer *b = sp_buffer_wrap(t->buf->device, (char *)t->buf->data + skip, t->buf->nbytes - skip,
                                  cuda_parent_release, t->buf);
    if (!b) return NULL;
    sp_buffer_retain(t->buf);
    sp_tensor *r = sp_tensor_view_of(b, t->dtype, t->ndim, t->shape, t->strides, 0);
    sp_buffer_release(b); /* the view holds it (or, on failure, this frees it) */
    return r;
}

static sp_status cuda_be_launch(sp_backend *be, const sp_kernel_args *a) {
    (void)be;
    if (!a || a->op < 0 || a->op >= SP_OP_COUNT)
        return sp_error(SP_ERR_INTERNAL, "cuda: launch of an unknown primitive");
    sp_kernel_fn fn = cuda_kernels[a->op];
    if (!fn) return sp_error(SP_ERR_UNSUPPORTED, "no CUDA kernel for %s", sp_op_defs[a->op].name);
    int shifted = 0;
    for (int i = 0; i < a->n_out; i++) shifted |= a->out[i] && a->out[i]->offset != 0;
    sp_status st;
    if (shifted) {
        sp_tensor *out[SP_MAX_OUTPUTS] = {0};
        sp_kernel_args b = *a;
        st = a->n_out <= SP_MAX_OUTPUTS ? SP_OK : sp_error(SP_ERR_INTERNAL, "cuda: too many outputs");
        for (int i = 0; !st && i < a->n_out; i++) {
            if (a->out[i]->offset == 0) sp_tensor_retain(out[i] = a->out[i]);
            else if (!(out[i] = cuda_rebase(a->out[i]))) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        }
        b.out = out;
        if (!st) st = fn(&b);
        for (int i = 0; i < a->n_out && i < SP_MAX_OUTPUTS; i++) sp_tensor_release(out[i]);
    } else {
        st = fn(a);
    }
    if (st) return st;
    /* a bad launch configuration shows here; faults inside kernels show at
     * the next synchronization */
    return cuda_check(cudaGetLastError(), sp_op_defs[a->op].name);
}

static sp_status cuda_be_sync(sp_backend *be) {
    (void)be;
    sp_status st = cuda_host_copy_in_capture("cuda sync");
    if (st) return st;
    return cuda_err_read(); /* synchronizes */
}

static sp_backend cuda_backend = {
    .name = "cuda",
    .type = SP_DEVICE_CUDA,
    .ctx = &cuda_g,
    .alloc = cuda_be_alloc,
    .free = cuda_be_free,
    .memcpy_to_device = cuda_be_to_device,
    .memcpy_to_host = cuda_be_to_host,
    .supports = cuda_be_supports,
    .launch = cuda_be_launch,
    .sync = cuda_be_sync,
    .capture_begin = cuda_graph_capture_begin,
    .capture_end = cuda_graph_capture_end,
    .graph_launch = cuda_graph_launch,
    .graph_free = cuda_graph_free,
    .event_new = cuda_event_new,
    .event_record = cuda_event_record,
    .event_elapsed = cuda_event_elapsed,
    .event_free = cuda_event_free,
};

/* ---- loading ---------------------------------------------------------------- */

/* Called once by libspore (backend.c) right after dlopen.  `core_token` is
 * libspore's own address of sp_backend_register: if it differs from the one
 * this library was linked against, the process holds two copies of the core
 * (a program linked with the static libspore) and registering here would
 * register into the wrong one.  Returns SP_OK, having registered the backend
 * and the allocator, or an error (nothing registered) saying why. */
__attribute__((visibility("default"))) sp_status spore_cuda_init(const void *core_token);

sp_status spore_cuda_init(const void *core_token) {
    if (core_token != (const void *)&sp_backend_register)
        return sp_error(SP_ERR_DEVICE,
                        "libspore_cuda.so needs the shared libspore.so, but this program links "
                        "libspore statically (two copies of the core in one process)");
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n <= 0) {
        (void)cudaGetLastError();
        if (e != cudaSuccess)
            return sp_error(SP_ERR_DEVICE,
                            "no CUDA device: libspore_cuda.so loaded but cudaGetDeviceCount found "
                            "no GPU (CUDA error %d %s: %s)",
                            (int)e, cudaGetErrorName(e), cudaGetErrorString(e));
        return sp_error(SP_ERR_DEVICE,
                        "no CUDA device: libspore_cuda.so loaded but cudaGetDeviceCount found "
                        "no GPU (0 devices)");
    }
    cuda_g.device = 0;
    sp_status st = cuda_check(cudaSetDevice(0), "cuda init: cudaSetDevice(0)");
    if (st) return st;
    if (cudaDeviceGetAttribute(&cuda_g.sm_count, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess)
        cuda_g.sm_count = 80;
    if ((st = cuda_check(cudaStreamCreateWithFlags(&cuda_g.stream, cudaStreamNonBlocking),
                         "cuda init: stream")))
        return st;
    void *dev = NULL;
    if ((st = cuda_check(cudaMalloc(&dev, 512), "cuda init: error slot"))) goto fail;
    cuda_g.err = dev;
    cuda_g.scratch = (char *)dev + 256;
    if ((st = cuda_check(cudaMemset(dev, 0, 512), "cuda init: error slot"))) goto fail;
    for (int k = 0; k < 2; k++) {
        if ((st = cuda_check(cudaHostAlloc(&cuda_g.stage[k], STAGE_BYTES, cudaHostAllocDefault),
                             "cuda init: pinned staging")))
            goto fail;
        if ((st = cuda_check(cudaEventCreateWithFlags(&cuda_g.stage_ev[k],
                                                      cudaEventDisableTiming),
                             "cuda init: events")))
            goto fail;
    }
    sp_device_allocator_register(SP_DEVICE_CUDA, cuda_dev_alloc, cuda_dev_free, NULL);
    sp_device_memset_register(SP_DEVICE_CUDA, cuda_dev_memset, NULL);
    sp_backend_register(&cuda_backend);
    return SP_OK;
fail:
    for (int k = 0; k < 2; k++) {
        if (cuda_g.stage_ev[k]) cudaEventDestroy(cuda_g.stage_ev[k]);
        if (cuda_g.stage[k]) cudaFreeHost(cuda_g.stage[k]);
        cuda_g.stage_ev[k] = NULL;
        cuda_g.stage[k] = NULL;
    }
    if (dev) cudaFree(dev);
    cuda_g.err = NULL;
    cudaStreamDestroy(cuda_g.stream);
    cuda_g.stream = NULL;
    return st;
}
