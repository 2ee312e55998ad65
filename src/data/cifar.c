/*
 * cifar.c -- CIFAR-10's binary batches.
 *
 * A batch file is a run of 3073-byte records: one label byte (0..9), then
 * the 32x32 image as three planes (red, green, blue), each row-major.
 * MindSpore hands images out HWC, so each record is transposed from
 * planes to interleaved pixels while it is copied.
 *
 * A directory is read in a fixed order (data_batch_1..5 for "train",
 * test_batch for "test", both for "all"), so row k of a dataset is always
 * the same image.  Sizes are checked before anything is allocated: a file
 * whose size is not a whole number of records, or a record with a label
 * above 9, is an error naming the file (and the record).  The loader reads
 * plain files only; CIFAR's distribution is a tar.gz the user unpacks.
 */
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define CIFAR_REC 3073
#define CIFAR_PIX 3072

/* Decodes `nrec` records from s into images/labels starting at row `row`. */
static sp_status cifar_decode(data_src *s, int64_t nrec, uint8_t *img, uint8_t *lab) {
    uint8_t rec[CIFAR_REC];
    for (int64_t r = 0; r < nrec; r++) {
        size_t got;
        sp_status st = data_src_read(s, rec, CIFAR_REC, &got);
        if (st != SP_OK) return st;
        if (got < CIFAR_REC)
            return sp_error(SP_ERR_FORMAT, "%s: truncated CIFAR-10 file at record %lld", s->name,
                            (long long)r);
        if (rec[0] > 9)
            return sp_error(SP_ERR_FORMAT,
                            "%s: record %lld has label %d; CIFAR-10 labels are 0..9", s->name,
                            (long long)r, rec[0]);
        lab[r] = rec[0];
        uint8_t *o = img + r * CIFAR_PIX;
        for (int p = 0; p < 1024; p++) {
            o[3 * p + 0] = rec[1 + p];
            o[3 * p + 1] = rec[1 + 1024 + p];
            o[3 * p + 2] = rec[1 + 2048 + p];
        }
    }
    return SP_OK;
}

static sp_status cifar_count(const data_src *s, int64_t *n) {
    if (s->gz)
        return sp_error(SP_ERR_FORMAT,
                        "%s: a compressed file; CIFAR-10 batches are read uncompressed (unpack "
                        "cifar-10-binary.tar.gz first)",
                        s->name);
    if (s->raw_size % CIFAR_REC)
        return sp_error(SP_ERR_FORMAT,
                        "%s: %llu bytes is not a whole number of 3073-byte CIFAR-10 records",
                        s->name, (unsigned long long)s->raw_size);
    *n = (int64_t)(s->raw_size / CIFAR_REC);
    return SP_OK;
}

static sp_status cifar_alloc(int64_t n, sp_tensor **images, sp_tensor **labels) {
    int64_t ish[4] = {n, 32, 32, 3};
    *images = sp_tensor_new(SP_U8, 4, ish, SP_CPU);
    *labels = *images ? sp_tensor_new(SP_U8, 1, &n, SP_CPU) : NULL;
    if (!*labels) {
        sp_tensor_release(*images);
        *images = NULL;
        return sp_last_status();
    }
    return SP_OK;
}

sp_status sp_cifar10_load_mem(const void *data, size_t size, const char *name,
                              sp_tensor **images, sp_tensor **labels) {
    if (!images || !labels) return sp_error(SP_ERR_ARG, "cifar10_load_mem: NULL output");
    *images = *labels = NULL;
    data_src s;
    data_src_open_mem(&s, data, size, name);
    int64_t n = 0;
    sp_status st = cifar_count(&s, &n);
    if (st == SP_OK) st = cifar_alloc(n, images, labels);
    if (st == SP_OK)
        st = cifar_decode(&s, n, sp_tensor_data(*images), sp_tensor_data(*labels));
    data_src_close(&s);
    if (st != SP_OK) {
        sp_tensor_release(*images);
        sp_tensor_release(*labels);
        *images = *labels = NULL;
    }
    return st;
}

sp_status sp_cifar10_load(const char *dir, const char *usage, sp_tensor **images,
                          sp_tensor **labels) {
    if (!images || !labels) return sp_error(SP_ERR_ARG, "cifar10_load: NULL output");
    *images = *labels = NULL;
    if (!dir || !usage) return sp_error(SP_ERR_ARG, "cifar10_load: NULL directory or usage");
    static const char *const files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                        "data_batch_3.bin", "data_batch_4.bin",
                                        "data_batch_5.bin", "test_batch.bin"};
    int first, last;
    if (!strcmp(usage, "train")) first = 0, last = 5;
    else if (!strcmp(usage, "test")) first = 5, last = 6;
    else if (!strcmp(usage, "all")) first = 0, last = 6;
    else
        return sp_error(SP_ERR_ARG,
                        "cifar10_load: usage must be \"train\", \"test\" or \"all\", not \"%s\"",
                        usage);
    size_t plen = strlen(dir) + 64;
    char *paths[6] = {0};
    data_src *srcs = calloc(6, sizeof *srcs);
    int64_t counts[6] = {0}, total = 0;
    sp_status st = SP_OK;
    if (!srcs) return sp_error(SP_ERR_NOMEM, "cifar10_load: out of memory");
    /* dir itself, or the folder the tarball unpacks to */
    const char *sub = "";
    {
        char *probe = malloc(plen + 32);
        if (!probe) {
            free(srcs);
            return sp_error(SP_ERR_NOMEM, "cifar10_load: out of memory");
        }
        snprintf(probe, plen + 32, "%s/%s", dir, files[first]);
        FILE *f = fopen(probe, "rb");
        if (f) fclose(f);
        else {
            snprintf(probe, plen + 32, "%s/cifar-10-batches-bin/%s", dir, files[first]);
            f = fopen(probe, "rb");
            if (f) {
                fclose(f);
                sub = "cifar-10-batches-bin/";
            }
        }
        free(probe);
    }
    int opened = 0;
    for (int i = first; i < last && st == SP_OK; i++) {
        paths[i] = malloc(plen + 32);
        if (!paths[i]) {
            st = sp_error(SP_ERR_NOMEM, "cifar10_load: out of memory");
            break;
        }
        snprintf(paths[i], plen + 32, "%s/%s%s", dir, sub, files[i]);
        opened = i + 1;
        st = data_src_open_file(&srcs[i], paths[i]);
        if (st == SP_OK) st = cifar_count(&srcs[i], &counts[i]);
        total += counts[i];
    }
    if (st == SP_OK) st = cifar_alloc(total, images, labels);
    int64_t row = 0;
    for (int i = first; i < last && st == SP_OK; i++) {
        st = cifar_decode(&srcs[i], counts[i], (uint8_t *)sp_tensor_data(*images) + row * CIFAR_PIX,
                          (uint8_t *)sp_tensor_data(*labels) + row);
        row += counts[i];
    }
    for (int i = first; i < opened; i++) data_src_close(&srcs[i]);
    for (int i = 0; i < 6; i++) free(paths[i]);
    free(srcs);
    if (st != SP_OK) {
        sp_tensor_release(*images);
        sp_tensor_release(*labels);
        *images = *labels = NULL;
    }
    return st;
}
