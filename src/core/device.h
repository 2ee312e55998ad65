/*
 * device.h -- how core reaches memory on devices it does not know.
 *
 * core sits below every backend, so it cannot call CUDA.  Instead a backend
 * registers, per device type, an allocator (and optionally a memset) when it
 * is loaded and finds a device; sp_buffer_new on that device type then goes
 * through it.  With nothing registered for a type, allocation fails with
 * SP_ERR_DEVICE and a message saying why, so a binary built without CUDA, or
 * run on a machine without a GPU, reports the missing device instead of
 * crashing.
 *
 * The CPU allocator is built in (sp_cpu_alloc) and cannot be replaced.
 * Registration is expected once, at load time, before tensors are made on
 * that device; re-registering replaces the hooks, so a backend that does it
 * must first release every buffer it allocated.
 */
#ifndef SPORE_CORE_DEVICE_H
#define SPORE_CORE_DEVICE_H

#include "spore/core.h"

typedef void *(*sp_device_alloc_fn)(size_t nbytes, void *ctx);
typedef void (*sp_device_free_fn)(void *p, void *ctx);
typedef sp_status (*sp_device_memset_fn)(void *p, int byte, size_t nbytes, void *ctx);

/* Registers the allocator of device type `type` (not SP_DEVICE_CPU, which is
 * ignored).  alloc returns NULL on failure (it may set sp_error; if it does
 * not, core reports SP_ERR_NOMEM).  Passing alloc == NULL unregisters.
 * Cannot fail. */
void sp_device_allocator_register(sp_device_type type, void *(*alloc)(size_t, void *ctx),
                                  void (*free)(void *, void *ctx), void *ctx);
/* Optional: a byte fill on that device, used by sp_tensor_zeros.  Cannot fail. */
void sp_device_memset_register(sp_device_type type, sp_device_memset_fn fn, void *ctx);

/* nbytes on dev: NULL + SP_ERR_DEVICE when the device type has no allocator,
 * NULL + SP_ERR_NOMEM when it has one that failed. */
void *sp_device_alloc(sp_device dev, size_t nbytes);
/* Frees memory from sp_device_alloc on a device of the same type. NULL is fine. */
void sp_device_free(sp_device dev, void *p);
/* Sets nbytes at p on dev to `byte`; SP_ERR_UNSUPPORTED when the device type
 * registered no memset. */
sp_status sp_device_memset(sp_device dev, void *p, int byte, size_t nbytes);
/* "cpu", "cuda" (for messages). */
const char *sp_device_type_name(sp_device_type type);

#endif
