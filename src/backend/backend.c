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
 */
#include "backend/backend.h"

#define BACKEND_TYPES 2

static sp_backend *backend_slots[BACKEND_TYPES];

void sp_backend_register(sp_backend *be) {
    if (!be || (int)be->type < 0 || (int)be->type >= BACKEND_TYPES) return;
    __atomic_store_n(&backend_slots[be->type], be, __ATOMIC_RELEASE);
}

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
    if (!be)
        sp_error(SP_ERR_DEVICE,
                 "no CUDA backend: this Spore was built without CUDA, or libspore_cuda.so "
                 "was not loaded or found no GPU; use the CPU device instead");
    return be;
}
