/*
 * backend.h -- the interface every device backend implements.
 *
 * After ggml-backend: a backend is a table of functions plus its own
 * context.  The op layer allocates outputs through it and launches one
 * kernel per primitive call; the compiler (later) asks `supports` to place
 * nodes and may hand a whole graph to `capture` (the optional capture_*
 * and graph_* functions at the end of the table).  The CPU backend is always
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

/* graph_launch's flags. */
#define SP_GRAPH_NOWAIT 1

/* One copy of graph_launch: nbytes from src to dst, both device memory. */
typedef struct sp_backend_copy {
    void *dst;
    const void *src;
    size_t nbytes;
} sp_backend_copy;

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

    /* ---- whole-graph capture (optional: NULL where a backend has none) ----
     * Used by src/runtime/exec_graph.c to record a lowered program's kernels
     * once and replay them.  Between capture_begin and capture_end the
     * kernels this thread launches through the backend are recorded, not
     * run; memory the thread frees meanwhile stays reserved for the graph
     * (the recorded work may use it); anything that would wait for the
     * device or copy to or from host memory fails (and so does the capture).
     * Other threads keep launching normally. */
    /* Starts recording on this thread.  SP_OK, or an error (nothing started). */
    sp_status (*capture_begin)(struct sp_backend *be);
    /* Ends the recording.  keep = 0 discards it (say, after a kernel
     * failed).  Otherwise *graph is the replayable graph, or NULL, with
     * SP_ERR_UNSUPPORTED and a reason in why[0..why_n-1], when the recording
     * cannot be replayed (a kernel synchronized, a library refused).  The
     * thread launches normally afterwards in every case. */
    sp_status (*capture_end)(struct sp_backend *be, int keep, void **graph, char *why, size_t why_n);
    /* Replays graph, ordered after all work queued before: the n_in copies,
     * the graph, then the n_out copies -- these only when no kernel raised a
     * data-dependent error (an index out of range), so a failed step writes
     * nothing back.  Returns without waiting, except for a graph whose
     * kernels can raise such errors: then it waits and returns the error
     * (with the message an uncaptured run gives) and *err_op is the
     * primitive that raised it (-1 otherwise).  With SP_GRAPH_NOWAIT in
     * flags it never waits: such an error is reported by the next copy to
     * the host or sync instead (the copies out are skipped all the same). */
    sp_status (*graph_launch)(struct sp_backend *be, void *graph, int n_in, const sp_backend_copy *in,
                              int n_out, const sp_backend_copy *out, int flags, int *err_op);
    /* Frees a graph and what it reserved (work still queued finishes first).
     * NULL is fine. */
    void (*graph_free)(struct sp_backend *be, void *graph);

    /* ---- timing events (optional: NULL where a backend has none; added
     * for bench_gpu_step --profile) ----
     * An event marks a point in the backend's stream order; the time
     * between two recorded events is the device's time between them, not
     * the host's.  event_new: a new event, or NULL + error.  event_record:
     * records ev after all work this thread has queued (on a capturing
     * thread it fails: events are not recorded into graphs here).
     * event_elapsed: waits until `end` has happened and sets *ms to the
     * time from `start` to `end`; an error when either was never recorded.
     * event_free: NULL is fine. */
    void *(*event_new)(struct sp_backend *be);
    sp_status (*event_record)(struct sp_backend *be, void *ev);
    sp_status (*event_elapsed)(struct sp_backend *be, void *start, void *end, double *ms);
    void (*event_free)(struct sp_backend *be, void *ev);
} sp_backend;

/* The backend for a device type, or NULL (and an error naming the device)
 * when none is registered. */
sp_backend *sp_backend_get(sp_device_type type);
/* Registers a backend (the CUDA library calls this when loaded). */
void sp_backend_register(sp_backend *be);
/* The CPU backend; always present. */
sp_backend *sp_backend_cpu(void);

#endif
