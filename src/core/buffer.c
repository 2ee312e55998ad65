/*
 * buffer.c -- the CPU allocator and ref-counted buffers.
 *
 * sp_cpu_alloc hands out 64-byte aligned blocks (one cache line, and the
 * width of an AVX-512 register, so kernels may use aligned loads at a
 * buffer's start) and counts the bytes it has live in one process-wide
 * atomic.  Tests read that counter before and after to prove nothing
 * leaked; it counts the bytes asked for, not the allocator's overhead.
 *
 * Each block carries a 64-byte header in front of it holding the requested
 * size, so sp_cpu_free needs no size argument and the counter stays exact.
 * A request for 0 bytes still gets a unique header-backed pointer, so
 * "empty tensor" is never a NULL data pointer.
 *
 * Large blocks (>= 256 KiB) are cached when freed and handed out again to a
 * later request of about the same size (at most 25% larger): an eager
 * program allocates the same big activations every step, and a fresh block
 * from the OS costs a page fault per 4 KiB -- more than the kernel that
 * fills it (64 MiB: ~100 ms of faults against a ~30 ms add).  The cache
 * holds at most CACHE_SLOTS blocks and CACHE_MAX_BYTES in all, is freed at
 * exit, and is off under AddressSanitizer (so use-after-free stays visible)
 * or when SPORE_CPU_CACHE=0.  Cached blocks are not live: the counter
 * still proves that nothing leaked.
 *
 * An sp_buffer owns its memory one of two ways: made by sp_buffer_new (the
 * memory came from the device allocator and goes back to it), or wrapped
 * (sp_buffer_wrap: the caller's deleter runs, or nothing when it is NULL).
 * Internally the first case is also a deleter, buffer_free_owned, with the
 * buffer itself as context, so release has one path.  The ref count starts
 * at 1 and is touched only with atomics; the last release frees both the
 * memory and the struct.
 *
 * A buffer on SP_META has no memory at all: data is NULL, nbytes is the
 * size it would have (so views keep their bounds checks) and there is no
 * deleter.  Every reader of data checks the device first.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/device.h"
#include "core/internal.h"

#define CPU_ALIGN 64
#define CACHE_MIN_BYTES ((size_t)256 << 10)
#define CACHE_MAX_BYTES ((size_t)512 << 20)
#define CACHE_SLOTS 32

#if defined(__SANITIZE_ADDRESS__)
#define CACHE_ENABLED_DEFAULT 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_ENABLED_DEFAULT 0
#endif
#endif
#ifndef CACHE_ENABLED_DEFAULT
#define CACHE_ENABLED_DEFAULT 1
#endif

/* A block's header: the bytes asked for (counted live) and the bytes the
 * block really has (what the cache matches on). */
typedef struct cpu_header {
    size_t nbytes;
    size_t capacity;
} cpu_header;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static void *cache_blocks[CACHE_SLOTS]; /* bases */
static int cache_n;
static size_t cache_bytes;
static int cache_state; /* 0 unknown, 1 on, -1 off */

static void cache_drain(void) {
    pthread_mutex_lock(&cache_mu);
    for (int i = 0; i < cache_n; i++) free(cache_blocks[i]);
    cache_n = 0;
    cache_bytes = 0;
    pthread_mutex_unlock(&cache_mu);
}

/* Decided once, under cache_mu. */
static int cache_on_locked(void) {
    if (cache_state == 0) {
        const char *e = getenv("SPORE_CPU_CACHE");
        cache_state = (CACHE_ENABLED_DEFAULT && !(e && e[0] == '0')) ? 1 : -1;
        if (cache_state == 1) atexit(cache_drain);
    }
    return cache_state == 1;
}

/* A cached base with capacity in [total, total*1.25], or NULL. */
static void *cache_take(size_t total) {
    void *best = NULL;
    pthread_mutex_lock(&cache_mu);
    if (cache_on_locked()) {
        int bi = -1;
        size_t bcap = 0;
        for (int i = 0; i < cache_n; i++) {
            size_t cap = ((cpu_header *)cache_blocks[i])->capacity;
            if (cap >= total && cap - total <= total / 4 && (bi < 0 || cap < bcap)) {
                bi = i;
                bcap = cap;
            }
        }
        if (bi >= 0) {
            best = cache_blocks[bi];
            cache_blocks[bi] = cache_blocks[--cache_n];
            cache_bytes -= bcap;
        }
    }
    pthread_mutex_unlock(&cache_mu);
    return best;
}

/* Keeps base for reuse; returns 0 when the cache is off or full. */
static int cache_put(void *base) {
    size_t cap = ((cpu_header *)base)->capacity;
    int kept = 0;
    pthread_mutex_lock(&cache_mu);
    if (cache_on_locked() && cap <= CACHE_MAX_BYTES) {
        /* make room: evict the oldest blocks until this one fits */
        while (cache_n > 0 && (cache_n == CACHE_SLOTS || cache_bytes + cap > CACHE_MAX_BYTES)) {
            void *old = cache_blocks[0];
            cache_bytes -= ((cpu_header *)old)->capacity;
            cache_blocks[0] = cache_blocks[--cache_n];
            free(old);
        }
        cache_blocks[cache_n++] = base;
        cache_bytes += cap;
        kept = 1;
    }
    pthread_mutex_unlock(&cache_mu);
    return kept;
}

static int64_t cpu_live_bytes;

int64_t sp_cpu_live_bytes(void) { return __atomic_load_n(&cpu_live_bytes, __ATOMIC_RELAXED); }

void *sp_cpu_alloc(size_t nbytes) {
    if (nbytes > SIZE_MAX - 2 * CPU_ALIGN) {
        sp_error(SP_ERR_NOMEM, "out of memory: cannot allocate %zu bytes", nbytes);
        return NULL;
    }
    size_t total = (nbytes + CPU_ALIGN + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *base = total >= CACHE_MIN_BYTES ? cache_take(total) : NULL;
    if (!base) {
        if (posix_memalign(&base, CPU_ALIGN, total) != 0 || !base) {
            sp_error(SP_ERR_NOMEM, "out of memory: cannot allocate %zu bytes", nbytes);
            return NULL;
        }
        ((cpu_header *)base)->capacity = total;
    }
    ((cpu_header *)base)->nbytes = nbytes;
    __atomic_add_fetch(&cpu_live_bytes, (int64_t)nbytes, __ATOMIC_RELAXED);
    return (char *)base + CPU_ALIGN;
}

void sp_cpu_free(void *p) {
    if (!p) return;
    void *base = (char *)p - CPU_ALIGN;
    cpu_header *h = base;
    __atomic_sub_fetch(&cpu_live_bytes, (int64_t)h->nbytes, __ATOMIC_RELAXED);
    if (h->capacity >= CACHE_MIN_BYTES && cache_put(base)) return;
    free(base);
}

static void buffer_free_owned(void *ctx) {
    sp_buffer *b = ctx;
    sp_device_free(b->device, b->data);
}

sp_buffer *sp_buffer_new(sp_device dev, size_t nbytes) {
    sp_buffer *b = malloc(sizeof *b);
    if (!b) {
        sp_error(SP_ERR_NOMEM, "out of memory allocating a buffer header");
        return NULL;
    }
    if (dev.type == SP_DEVICE_META) {
        b->data = NULL;
        b->nbytes = nbytes;
        b->device = dev;
        b->refcount = 1;
        b->deleter = NULL;
        b->deleter_ctx = NULL;
        return b;
    }
    b->data = sp_device_alloc(dev, nbytes);
    if (!b->data) {
        free(b);
        return NULL;
    }
    b->nbytes = nbytes;
    b->device = dev;
    b->refcount = 1;
    b->deleter = buffer_free_owned;
    b->deleter_ctx = b;
    return b;
}

sp_buffer *sp_buffer_wrap(sp_device dev, void *data, size_t nbytes, void (*deleter)(void *ctx),
                          void *ctx) {
    if (!data && nbytes) {
        sp_error(SP_ERR_ARG, "buffer wrap: NULL data for %zu bytes", nbytes);
        return NULL;
    }
    sp_buffer *b = malloc(sizeof *b);
    if (!b) {
        sp_error(SP_ERR_NOMEM, "out of memory allocating a buffer header");
        return NULL;
    }
    b->data = data;
    b->nbytes = nbytes;
    b->device = dev;
    b->refcount = 1;
    b->deleter = deleter;
    b->deleter_ctx = ctx;
    return b;
}

void sp_buffer_retain(sp_buffer *b) {
    if (b) sp_ref_inc(&b->refcount);
}

void sp_buffer_release(sp_buffer *b) {
    if (!b || sp_ref_dec(&b->refcount) > 0) return;
    if (b->deleter) b->deleter(b->deleter_ctx);
    free(b);
}
