/*
 * backend.h -- the interface every device backend implements.
 *
 * After ggml-backend: a backend is a table of functions plus its own
 * context.  The op layer allocates outputs through it and launches one
 * kernel per primitive call; the compiler (later) asks `supports` to place
 * nodes and may hand a whole graph to `capture`.  The CPU backend is always
 * present; the CUDA backend lives in libspore_cuda.so and registers itself
 * when it is loaded and finds a device.
 *
 * Kernel contract: outputs are allocated (contiguous, on the backend's
 * device) with the shapes and dtypes inference gave; inputs may be any
 * strided view.  A kernel returns SP_OK or an error naming the primitive
 * (for data-dependent errors such as an index out of range); it never
 * aborts on user data.
 */
#ifndef SPORE_BACKEND_H
#define SPORE_BACKEND_H

#include "spore/ops.h"

typedef struct sp_kernel_args {
    int op;                /* sp_op */
    int n_in;
    sp_tensor *const *in;
    int n_out;
    sp_tensor *const *out;
    const sp_attrs *attrs; /* never NULL (an empty set when the caller gave none) */
} sp_kernel_args;

typedef sp_status (*sp_kernel_fn)(const sp_kernel_args *a);

typedef struct sp_backend {
    const char *name;       /* "cpu", "cuda" */
    sp_device_type type;
    void *ctx;
    /* Memory on the device: NULL + error when it cannot be had. */
    void *(*alloc)(struct sp_backend *be, size_t nbytes);
    void (*free)(struct sp_backend *be, void *p);
    /* Copies nbytes between host and device (or within the device). */
    sp_status (*memcpy_to_device)(struct sp_backend *be, void *dst, const void *src, size_t n);
    sp_status (*memcpy_to_host)(struct sp_backend *be, void *dst, const void *src, size_t n);
    /* Nonzero when the backend has a kernel for op on input 0 of dtype d. */
    int (*supports)(struct sp_backend *be, int op, sp_dtype d);
    sp_status (*launch)(struct sp_backend *be, const sp_kernel_args *a);
    sp_status (*sync)(struct sp_backend *be);
} sp_backend;

/* The backend for a device type, or NULL (and an error naming the device)
 * when none is registered. */
sp_backend *sp_backend_get(sp_device_type type);
/* Registers a backend (the CUDA library calls this when loaded). */
void sp_backend_register(sp_backend *be);
/* The CPU backend; always present. */
sp_backend *sp_backend_cpu(void);

#endif
