/*
 * fuzz_cifar.c -- fuzzing the CIFAR-10 batch loader.
 *
 * Each input goes to sp_cifar10_load_mem.  A success must hold exactly
 * size / 3073 records with labels 0..9; an error must name the input and
 * leave both outputs NULL.  See fuzz_binary.h for the two ways to run it.
 */
#include "fuzz_binary.h"

static void check_one(const uint8_t *data, size_t size) {
    sp_tensor *im = NULL, *lb = NULL;
    sp_clear_error();
    sp_status st = sp_cifar10_load_mem(data, size, "fuzz.bin", &im, &lb);
    if (st != SP_OK) {
        if (im || lb || !strstr(sp_last_error(), "fuzz.bin: ") || st == SP_ERR_INTERNAL) {
            fprintf(stderr, "fuzz_cifar: bad error (%s): %s\n", sp_status_name(st), sp_last_error());
            abort();
        }
        return;
    }
    int64_t n = (int64_t)(size / 3073);
    if (size % 3073 || im->shape[0] != n || lb->shape[0] != n || im->shape[3] != 3) {
        fprintf(stderr, "fuzz_cifar: %zu bytes gave %lld records\n", size, (long long)im->shape[0]);
        abort();
    }
    const uint8_t *l = sp_tensor_data(lb), *p = sp_tensor_data(im);
    for (int64_t i = 0; i < n; i++) {
        if (l[i] > 9 || l[i] != data[i * 3073] || p[i * 3072] != data[i * 3073 + 1]) {
            fprintf(stderr, "fuzz_cifar: record %lld decoded wrongly\n", (long long)i);
            abort();
        }
    }
    sp_tensor_release(im);
    sp_tensor_release(lb);
}
