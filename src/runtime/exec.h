/*
 * exec.h -- runs a lowered graph (src/compiler/lower.h): its kernels in
 * order over the planned arena, outputs returned to the caller.
 *
 * Thread safety: a lowered object may be run from several threads at
 * once.  It caches the arena of its last run; a run takes it under the
 * object's lock, and a run that finds it taken (or on another device)
 * allocates its own for the run.  Constants copied to a GPU are cached once
 * per object under the same lock.
 */
#ifndef SPORE_RUNTIME_EXEC_H
#define SPORE_RUNTIME_EXEC_H

#include "compiler/lower.h"

/* Runs l on n parameter tensors (their dtypes and shapes must be l's
 * signature; all on one device, where the arena and the outputs go).  On
 * success out[0..l->n_results-1] hold new references to the output
 * tensors (the leaves of the output tree, in order) and SP_OK is returned;
 * on error (a signature mismatch: "parameter 1 (w1): expected float32(784,
 * 256), got float32(10, 256)"; a kernel's run-time error, located at the
 * node's source) nothing is returned and nothing leaks. */
sp_status sp_lowered_run(sp_lowered *l, int n, sp_tensor *const *params, sp_tensor **out);

/* The same for values: args must be tensor values; the result has the
 * graph output's structure (tuples, constants and tensors).  A new
 * reference, or NULL + error. */
sp_value *sp_lowered_run_value(sp_lowered *l, int n, sp_value *const *args);

/* ---- whole-graph capture (exec_graph.c) ----
 * On a backend that records graphs (CUDA), the first run of a lowered
 * object runs its kernels (warming the allocator, cuBLASLt plans, cuDNN
 * algorithms, generated kernels); the second records them into one graph
 * and replays it, and later runs replay it: the parameters are copied into
 * the graph's own input buffers, the outputs out of its output buffers
 * into fresh tensors, and parameters the program updates in place are
 * copied back -- so the results are those of the plain run, bit for bit,
 * whatever tensors the caller passes each time.  A program that cannot be
 * recorded runs plainly, with the reason kept in its stats. */
typedef enum sp_exec_graph_state {
    SP_EXEC_GRAPH_NONE = 0, /* not run yet, or on a backend without capture */
    SP_EXEC_GRAPH_WARM,     /* one plain run made; the next one records */
    SP_EXEC_GRAPH_READY,    /* recorded: runs replay it */
    SP_EXEC_GRAPH_OFF       /* cannot be recorded (why says why): runs are plain */
} sp_exec_graph_state;

typedef struct sp_exec_graph_stats {
    sp_exec_graph_state state;
    long long captures;  /* graphs recorded (0 or 1) */
    long long replays;   /* runs that replayed the graph */
    long long plain;     /* runs that ran the kernels one by one on this backend */
    long long fallbacks; /* of those, runs the graph could have taken but for their arguments */
    char why[256];       /* OFF: why; otherwise the last fallback's reason, or "" */
} sp_exec_graph_stats;

/* l's capture figures (all zero for NULL or a CPU-only history).  Cannot
 * fail. */
sp_exec_graph_stats sp_lowered_graph_stats(const sp_lowered *l);
/* Capture for the whole process: OFF; ON (the default); ASYNC, which is
 * ON except that a replay never waits for the device to report a data error
 * (an index out of range): the next copy to the host reports it instead,
 * and the replay writes nothing back.  SPORE_CUDA_GRAPH=0 / =async in the
 * environment sets the default.  A recorded graph is kept while OFF and
 * used again afterwards.  Returns the previous mode. */
enum { SP_EXEC_CAPTURE_OFF = 0, SP_EXEC_CAPTURE_ON = 1, SP_EXEC_CAPTURE_ASYNC = 2 };
int sp_exec_set_capture(int mode);

#endif
