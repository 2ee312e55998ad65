/*
 * fuzz_idx.c -- fuzzing the IDX loader (raw, gzip and zlib framing).
 *
 * Each input goes to sp_idx_load_mem.  Errors are the expected outcome for
 * most inputs; a success must describe exactly the bytes that were there:
 * a raw input of n bytes decodes to at most n - 4 bytes of elements (int16
 * widened to int32 doubles that), and an error must always name the input
 * and leave the output NULL.  Anything else aborts so the fuzzer keeps the
 * input.  See fuzz_binary.h for the two ways to run it.
 */
#include "fuzz_binary.h"

static void check_one(const uint8_t *data, size_t size) {
    sp_tensor *t = (sp_tensor *)&t;
    sp_clear_error();
    sp_status st = sp_idx_load_mem(data, size, "fuzz.idx", &t);
    if (st != SP_OK) {
        if (t != NULL || !strstr(sp_last_error(), "fuzz.idx: ") || st == SP_ERR_INTERNAL) {
            fprintf(stderr, "fuzz_idx: bad error (%s): %s\n", sp_status_name(st), sp_last_error());
            abort();
        }
        return;
    }
    int compressed = size >= 1 && data[0] != 0; /* raw IDX starts with 00 */
    if (!t || (!compressed && sp_tensor_nbytes(t) > 2 * size)) {
        fprintf(stderr, "fuzz_idx: a %zu-byte input gave %zu bytes of tensor\n", size,
                t ? sp_tensor_nbytes(t) : 0);
        abort();
    }
    /* touch every byte, so a short read would show under the sanitizers */
    const uint8_t *p = sp_tensor_data(t);
    unsigned sum = 0;
    for (size_t i = 0; i < sp_tensor_nbytes(t); i++) sum += p[i];
    (void)sum;
    sp_tensor_release(t);
}
