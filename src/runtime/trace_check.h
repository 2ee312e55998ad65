/*
 * trace_check.h -- a test-only entry point (exported from libspore for the
 * Python tests through ctypes, and for tests/runtime/test_meta_trace.c):
 * proves that an API call can be replaced by the primitive calls it makes
 * when run on meta tensors under a trace (contract 1 of the compiler).
 *
 * Not part of the public API: nothing outside tests calls it.
 */
#ifndef SPORE_RUNTIME_TRACE_CHECK_H
#define SPORE_RUNTIME_TRACE_CHECK_H

#include <stddef.h>

/* `source` is a program defining `args()` (returns a tuple of arguments:
 * real tensors and Python values) and `f(...)` (calls the API function
 * under test on them).  The check:
 *   1. runs f(*args()) for real;
 *   2. runs f again on meta twins of every tensor argument (also inside
 *      tuples/lists) with a trace installed, recording each primitive call;
 *   3. compares the meta result with the real one (same structure; tensors
 *      with the same dtype and shape; other values equal);
 *   4. replays the recorded calls with sp_op_call on the real tensors
 *      (meta inputs mapped to the real tensors they stand for, real inputs
 *      -- constants -- as they are) and compares the replayed result with
 *      the real one, value for value (NaN equals NaN), unless a random
 *      primitive without a seed took part (then shapes only);
 *   5. checks that the global random generator did not move during the
 *      traced call.
 * Returns 0 when all holds; 1 when the traced call failed (a function that
 * needs values: the error message is in report); -1 on any mismatch or
 * failure of the real call (what went wrong is in report).  On 0, report
 * is "ok: <n> <op> <op> ..." with the recorded primitives, plus " random"
 * when values were not compared.  report always ends with a NUL. */
int sp_test_api_trace(const char *source, char *report, size_t report_size);

#endif
