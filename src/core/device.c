/*
 * device.c -- the registry of device allocators (see device.h).
 *
 * One slot per device type.  The CPU slot is fixed to sp_cpu_alloc, so CPU
 * allocation never looks anything up through a hook.  Slots are written at
 * backend load time and read on every device allocation; the writes use
 * release stores and the reads acquire loads on the alloc pointer, so a
 * thread that sees a registered alloc also sees its free and ctx.
 *
 * The default device (sp_default_device, spore/core.h) lives here too: one
 * 64-bit word, type in the high half and index in the low, read with one
 * relaxed atomic load on every creation that names no device, so a reader
 * never sees a type from one setting and an index from another.  Setting a
 * CUDA device has to ask whether the GPU is there, which only the backend
 * layer knows: sp_set_default_device calls sp_cuda_available (public API,
 * spore/ops.h, defined in src/backend/backend.c of the same library) -- the
 * one call from core upwards, made only when a user asks for a GPU.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/device.h"
#include "spore/ops.h"

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

/* ---- the default device ------------------------------------------------------ */

static uint64_t device_default_word; /* 0: cpu:0 (SP_DEVICE_CPU == 0) */

static uint64_t device_pack(sp_device d) {
    return ((uint64_t)(uint32_t)d.type << 32) | (uint32_t)d.index;
}

sp_device sp_default_device(void) {
    uint64_t w = __atomic_load_n(&device_default_word, __ATOMIC_RELAXED);
    return (sp_device){(sp_device_type)(uint32_t)(w >> 32), (int)(uint32_t)w};
}

char *sp_device_str(sp_device dev, char *buf, size_t n) {
    if (!buf || !n) return buf;
    if (dev.type == SP_DEVICE_CPU) snprintf(buf, n, "cpu");
    else if (dev.type == SP_DEVICE_META) snprintf(buf, n, "meta");
    else if (dev.type == SP_DEVICE_CUDA) snprintf(buf, n, "cuda:%d", dev.index);
    else snprintf(buf, n, "device(%d):%d", (int)dev.type, dev.index);
    return buf;
}

sp_status sp_set_default_device(sp_device dev) {
    char s[48];
    if (dev.type == SP_DEVICE_CPU) dev.index = 0;
    else if (dev.type != SP_DEVICE_CUDA)
        return sp_error(SP_ERR_ARG, "set_default_device: %s is not a device tensors can be made on "
                        "(cpu or cuda:0)", sp_device_str(dev, s, sizeof s));
    else if (dev.index < 0)
        return sp_error(SP_ERR_ARG, "set_default_device: bad device index %d", dev.index);
    else if (!sp_cuda_available())
        /* sp_cuda_available left the backend's reason in the error */
        return sp_error(SP_ERR_DEVICE, "set_default_device: %s is not available: %s",
                        sp_device_str(dev, s, sizeof s), sp_last_error());
    else if (dev.index != 0)
        return sp_error(SP_ERR_DEVICE, "set_default_device: %s: Spore drives one GPU, cuda:0",
                        sp_device_str(dev, s, sizeof s));
    __atomic_store_n(&device_default_word, device_pack(dev), __ATOMIC_RELAXED);
    return SP_OK;
}

sp_status sp_device_parse(const char *s, sp_device *out) {
    if (!s || !out) return sp_error(SP_ERR_ARG, "device_parse: NULL argument");
    char low[16];
    size_t n = strlen(s), i;
    const char *colon = strchr(s, ':');
    size_t head = colon ? (size_t)(colon - s) : n;
    if (head >= sizeof low) goto bad;
    for (i = 0; i < head; i++) low[i] = (char)tolower((unsigned char)s[i]);
    low[head] = '\0';
    sp_device d;
    if (!strcmp(low, "cpu")) d = SP_CPU;
    else if (!strcmp(low, "cuda") || !strcmp(low, "gpu")) d = (sp_device){SP_DEVICE_CUDA, 0};
    else goto bad;
    if (colon) {
        char *end;
        const char *num = colon + 1;
        if (!isdigit((unsigned char)num[0])) goto bad;
        long v = strtol(num, &end, 10);
        if (*end || v > 1024) goto bad;
        if (d.type == SP_DEVICE_CPU && v != 0) goto bad;
        d.index = (int)v;
    }
    *out = d;
    return SP_OK;
bad:
    return sp_error(SP_ERR_ARG, "unknown device '%s' (use cpu, cuda or cuda:N; GPU for cuda)", s);
}
