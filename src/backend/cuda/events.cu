/*
 * events.cu -- timing events of the CUDA backend (backend.h: event_new,
 * event_record, event_elapsed, event_free), for profilers such as
 * bench/bench_gpu_step.c --profile.
 *
 * An event is a plain cudaEvent_t (timing enabled) recorded on the stream
 * every kernel of this thread goes to (cuda_stream()), so the time between
 * two events is the device's time for the work queued between them --
 * including any time the device sat idle waiting for the host to queue
 * more, which is exactly what a launch-bound step loses.  Recording is
 * refused while the thread captures a graph: an event recorded into a
 * capture would time the recording, not a replay.  Nothing here
 * synchronizes except event_elapsed, which waits for its end event.
 */
#include "backend/cuda/cuda.h"

void *cuda_event_new(sp_backend *be) {
    (void)be;
    cudaEvent_t ev = NULL;
    if (cuda_check(cudaEventCreateWithFlags(&ev, cudaEventDefault), "cuda event: create")) return NULL;
    return (void *)ev;
}

sp_status cuda_event_record(sp_backend *be, void *ev) {
    (void)be;
    if (!ev) return sp_error(SP_ERR_ARG, "cuda event: record of NULL");
    if (cuda_capture_get())
        return sp_error(SP_ERR_UNSUPPORTED, "cuda event: cannot record while this thread captures a graph");
    return cuda_check(cudaEventRecord((cudaEvent_t)ev, cuda_stream()), "cuda event: record");
}

sp_status cuda_event_elapsed(sp_backend *be, void *start, void *end, double *ms) {
    (void)be;
    if (!start || !end || !ms) return sp_error(SP_ERR_ARG, "cuda event: elapsed of NULL");
    sp_status st = cuda_check(cudaEventSynchronize((cudaEvent_t)end), "cuda event: synchronize");
    float f = 0;
    if (!st) st = cuda_check(cudaEventElapsedTime(&f, (cudaEvent_t)start, (cudaEvent_t)end), "cuda event: elapsed");
    *ms = st ? 0.0 : (double)f;
    return st;
}

void cuda_event_free(sp_backend *be, void *ev) {
    (void)be;
    if (ev) (void)cudaEventDestroy((cudaEvent_t)ev);
}
