/*
 * device.c -- the registry of device allocators (see device.h).
 *
 * One slot per device type.  The CPU slot is fixed to sp_cpu_alloc, so CPU
 * allocation never looks anything up through a hook.  Slots are written at
 * backend load time and read on every device allocation; the writes use
 * release stores and the reads acquire loads on the alloc pointer, so a
 * thread that sees a registered alloc also sees its free and ctx.
 */
#include <string.h>

#include "core/device.h"

typedef struct device_slot {
    sp_device_alloc_fn alloc;
    sp_device_free_fn free;
    void *ctx;
    sp_device_memset_fn memset;
    void *memset_ctx;
} device_slot;

#define DEVICE_TYPES 2
static device_slot device_slots[DEVICE_TYPES];

const char *sp_device_type_name(sp_device_type type) {
    switch (type) {
    case SP_DEVICE_CPU: return "cpu";
    case SP_DEVICE_CUDA: return "cuda";
    case SP_DEVICE_META: return "meta";
    }
    return "unknown device";
}

static device_slot *device_slot_of(sp_device_type type) {
    if ((unsigned)type >= DEVICE_TYPES || type == SP_DEVICE_CPU) return NULL;
    return &device_slots[type];
}

void sp_device_allocator_register(sp_device_type type, void *(*alloc)(size_t, void *ctx),
                                  void (*free_fn)(void *, void *ctx), void *ctx) {
    device_slot *s = device_slot_of(type);
    if (!s) return;
    __atomic_store_n(&s->alloc, NULL, __ATOMIC_RELEASE);
    s->free = free_fn;
    s->ctx = ctx;
    __atomic_store_n(&s->alloc, alloc, __ATOMIC_RELEASE);
}

void sp_device_memset_register(sp_device_type type, sp_device_memset_fn fn, void *ctx) {
    device_slot *s = device_slot_of(type);
    if (!s) return;
    __atomic_store_n(&s->memset, NULL, __ATOMIC_RELEASE);
    s->memset_ctx = ctx;
    __atomic_store_n(&s->memset, fn, __ATOMIC_RELEASE);
}

static const char *device_missing_msg(sp_device_type type) {
    if (type == SP_DEVICE_CUDA)
        return "no CUDA device: Spore was built without CUDA or no GPU/driver was found";
    return "no allocator registered for this device type";
}

void *sp_device_alloc(sp_device dev, size_t nbytes) {
    if (dev.type == SP_DEVICE_CPU) return sp_cpu_alloc(nbytes);
    device_slot *s = device_slot_of(dev.type);
    sp_device_alloc_fn alloc = s ? __atomic_load_n(&s->alloc, __ATOMIC_ACQUIRE) : NULL;
    if (!alloc) {
        sp_error(SP_ERR_DEVICE, "%s (allocating %zu bytes on %s:%d)", device_missing_msg(dev.type),
                 nbytes, sp_device_type_name(dev.type), dev.index);
        return NULL;
    }
    sp_clear_error();
    void *p = alloc(nbytes, s->ctx);
    if (!p && sp_last_status() == SP_OK)
        sp_error(SP_ERR_NOMEM, "out of memory allocating %zu bytes on %s:%d", nbytes,
                 sp_device_type_name(dev.type), dev.index);
    return p;
}

void sp_device_free(sp_device dev, void *p) {
    if (!p) return;
    if (dev.type == SP_DEVICE_CPU) {
        sp_cpu_free(p);
        return;
    }
    device_slot *s = device_slot_of(dev.type);
    if (s && s->free) s->free(p, s->ctx);
}

sp_status sp_device_memset(sp_device dev, void *p, int byte, size_t nbytes) {
    if (dev.type == SP_DEVICE_CPU) {
        if (nbytes) memset(p, byte, nbytes);
        return SP_OK;
    }
    device_slot *s = device_slot_of(dev.type);
    sp_device_memset_fn fn = s ? __atomic_load_n(&s->memset, __ATOMIC_ACQUIRE) : NULL;
    if (!fn)
        return sp_error(SP_ERR_UNSUPPORTED, "memset on %s:%d: the device registered no memset",
                        sp_device_type_name(dev.type), dev.index);
    return fn(p, byte, nbytes, s->memset_ctx);
}
