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
 * An sp_buffer owns its memory one of two ways: made by sp_buffer_new (the
 * memory came from the device allocator and goes back to it), or wrapped
 * (sp_buffer_wrap: the caller's deleter runs, or nothing when it is NULL).
 * Internally the first case is also a deleter, buffer_free_owned, with the
 * buffer itself as context, so release has one path.  The ref count starts
 * at 1 and is touched only with atomics; the last release frees both the
 * memory and the struct.
 */
#include <stdlib.h>

#include "core/device.h"
#include "core/internal.h"

#define CPU_ALIGN 64

static int64_t cpu_live_bytes;

int64_t sp_cpu_live_bytes(void) { return __atomic_load_n(&cpu_live_bytes, __ATOMIC_RELAXED); }

void *sp_cpu_alloc(size_t nbytes) {
    if (nbytes > SIZE_MAX - 2 * CPU_ALIGN) {
        sp_error(SP_ERR_NOMEM, "out of memory: cannot allocate %zu bytes", nbytes);
        return NULL;
    }
    size_t total = (nbytes + CPU_ALIGN + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    void *base = NULL;
    if (posix_memalign(&base, CPU_ALIGN, total) != 0 || !base) {
        sp_error(SP_ERR_NOMEM, "out of memory: cannot allocate %zu bytes", nbytes);
        return NULL;
    }
    *(size_t *)base = nbytes;
    __atomic_add_fetch(&cpu_live_bytes, (int64_t)nbytes, __ATOMIC_RELAXED);
    return (char *)base + CPU_ALIGN;
}

void sp_cpu_free(void *p) {
    if (!p) return;
    void *base = (char *)p - CPU_ALIGN;
    size_t nbytes = *(size_t *)base;
    __atomic_sub_fetch(&cpu_live_bytes, (int64_t)nbytes, __ATOMIC_RELAXED);
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
