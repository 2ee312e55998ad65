/*
 * dataset.c -- dataset descriptions: sources and the operations chained on
 * them.
 *
 * A sp_dataset is a node of an immutable linked list running from the
 * last operation back to its source (map -> batch -> shuffle -> source).
 * Building one checks every argument, so an iterator never meets a
 * description it cannot run; what can only fail while running (a file
 * changed under us, a batch of rows with different shapes, a transform on
 * the wrong dtype) fails at sp_data_iter_next with a message.
 *
 * Nothing here holds iteration state: an iterator (iter.c) makes its own
 * runtime copy of the chain, so one description can be iterated many times,
 * even by two iterators at once.  Nodes are ref-counted and each retains
 * its upstream, which is what lets a binding drop its references in any
 * order.
 *
 * MNIST and CIFAR-10 load their files when the dataset is made (the errors
 * are the user's to see at that line, not at the first batch) and become
 * tensor sources: images get a trailing channel axis for MNIST, (28, 28, 1),
 * as MindSpore's MnistDataset gives them.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "data/data_internal.h"

static sp_dataset *ds_alloc(ds_kind kind, int ncols, sp_dataset *up) {
    sp_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) {
        sp_error(SP_ERR_NOMEM, "dataset: out of memory");
        return NULL;
    }
    ds->refcount = 1;
    ds->kind = kind;
    ds->ncols = ncols;
    if (up) {
        sp_dataset_retain(up);
        ds->up = up;
    }
    return ds;
}

/* Copies the column names (default "column_<i>"); 0 on no memory. */
static int ds_set_names(sp_dataset *ds, const char *const *names) {
    for (int i = 0; i < ds->ncols; i++) {
        char def[32];
        snprintf(def, sizeof def, "column_%d", i);
        const char *n = names && names[i] ? names[i] : def;
        ds->names[i] = strdup(n);
        if (!ds->names[i]) {
            sp_error(SP_ERR_NOMEM, "dataset: out of memory");
            return 0;
        }
    }
    return 1;
}

sp_dataset *sp_dataset_from_tensors(int ncols, sp_tensor *const *cols, const char *const *names) {
    if (ncols < 1 || ncols > SP_DATA_MAX_COLUMNS || !cols) {
        sp_error(SP_ERR_ARG, "dataset_from_tensors: need 1 to %d columns, got %d",
                 SP_DATA_MAX_COLUMNS, ncols);
        return NULL;
    }
    for (int i = 0; i < ncols; i++) {
        if (!cols[i]) {
            sp_error(SP_ERR_ARG, "dataset_from_tensors: column %d is NULL", i);
            return NULL;
        }
        if (cols[i]->ndim < 1) {
            sp_error(SP_ERR_SHAPE, "dataset_from_tensors: column %d is a scalar; rows are slices "
                                   "along axis 0", i);
            return NULL;
        }
        if (cols[i]->buf->device.type != SP_DEVICE_CPU) {
            sp_error(SP_ERR_DEVICE, "dataset_from_tensors: column %d is not on the CPU", i);
            return NULL;
        }
        if (cols[i]->shape[0] != cols[0]->shape[0]) {
            sp_error(SP_ERR_SHAPE,
                     "dataset_from_tensors: column %d has %lld rows, column 0 has %lld", i,
                     (long long)cols[i]->shape[0], (long long)cols[0]->shape[0]);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (names && names[i] && names[j] && !strcmp(names[i], names[j])) {
                sp_error(SP_ERR_ARG, "dataset_from_tensors: two columns are named \"%s\"",
                         names[i]);
                return NULL;
            }
    }
    sp_dataset *ds = ds_alloc(DS_TENSORS, ncols, NULL);
    if (!ds) return NULL;
    ds->nrows = cols[0]->shape[0];
    for (int i = 0; i < ncols; i++) {
        sp_tensor_retain(cols[i]);
        ds->cols[i] = cols[i];
    }
    if (!ds_set_names(ds, names)) {
        sp_dataset_release(ds);
        return NULL;
    }
    return ds;
}

static sp_dataset *ds_images_labels(sp_tensor *images, sp_tensor *labels) {
    static const char *const names[2] = {"image", "label"};
    sp_tensor *cols[2] = {images, labels};
    sp_dataset *ds = sp_dataset_from_tensors(2, cols, names);
    sp_tensor_release(images);
    sp_tensor_release(labels);
    return ds;
}

sp_dataset *sp_dataset_mnist(const char *dir, const char *usage) {
    sp_tensor *im, *lb;
    if (sp_mnist_load(dir, usage, &im, &lb) != SP_OK) return NULL;
    int64_t shape[4] = {im->shape[0], im->shape[1], im->shape[2], 1};
    sp_tensor *im4;
    sp_status st = sp_tensor_reshape(im, 4, shape, &im4);
    sp_tensor_release(im);
    if (st != SP_OK) {
        sp_tensor_release(lb);
        return NULL;
    }
    return ds_images_labels(im4, lb);
}

sp_dataset *sp_dataset_cifar10(const char *dir, const char *usage) {
    sp_tensor *im, *lb;
    if (sp_cifar10_load(dir, usage, &im, &lb) != SP_OK) return NULL;
    return ds_images_labels(im, lb);
}

sp_dataset *sp_dataset_from_pull(int ncols, const char *const *names, sp_data_pull_fn pull,
                                 sp_data_reset_fn reset, void *ctx, void (*free_ctx)(void *ctx)) {
    if (ncols < 1 || ncols > SP_DATA_MAX_COLUMNS || !pull) {
        sp_error(SP_ERR_ARG, "dataset_from_pull: need a pull function and 1 to %d columns, got %d",
                 SP_DATA_MAX_COLUMNS, ncols);
        return NULL;
    }
    sp_dataset *ds = ds_alloc(DS_PULL, ncols, NULL);
    if (!ds) return NULL;
    /* names first: on failure ctx stays the caller's, never freed here */
    if (!ds_set_names(ds, names)) {
        sp_dataset_release(ds);
        return NULL;
    }
    ds->pull = pull, ds->reset = reset, ds->ctx = ctx, ds->free_ctx = free_ctx;
    return ds;
}

sp_dataset *sp_dataset_map(sp_dataset *ds, int nops, sp_transform *const *ops, int ncols,
                           const int *cols, uint64_t seed) {
    if (!ds || nops < 1 || !ops || ncols < 1 || ncols > ds->ncols || !cols) {
        sp_error(SP_ERR_ARG, "dataset_map: need a dataset, at least one operation and 1 to %d "
                             "input columns",
                 ds ? ds->ncols : SP_DATA_MAX_COLUMNS);
        return NULL;
    }
    for (int i = 0; i < ncols; i++) {
        if (cols[i] < 0 || cols[i] >= ds->ncols) {
            sp_error(SP_ERR_ARG, "dataset_map: column %d does not exist (the dataset has %d)",
                     cols[i], ds->ncols);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (cols[i] == cols[j]) {
                sp_error(SP_ERR_ARG, "dataset_map: column %d is listed twice", cols[i]);
                return NULL;
            }
    }
    for (int k = 0; k < nops; k++) {
        if (!ops[k]) {
            sp_error(SP_ERR_ARG, "dataset_map: operation %d is NULL", k);
            return NULL;
        }
        if (sp_transform_num_columns(ops[k]) != ncols) {
            sp_error(SP_ERR_ARG, "dataset_map: operation %d takes %d column(s), the map gives it %d",
                     k, sp_transform_num_columns(ops[k]), ncols);
            return NULL;
        }
    }
    sp_dataset *m = ds_alloc(DS_MAP, ds->ncols, ds);
    if (!m) return NULL;
    m->ops = calloc((size_t)nops, sizeof *m->ops);
    if (!m->ops) {
        sp_dataset_release(m);
        sp_error(SP_ERR_NOMEM, "dataset_map: out of memory");
        return NULL;
    }
    m->nops = nops;
    for (int k = 0; k < nops; k++) {
        sp_transform_retain(ops[k]);
        m->ops[k] = ops[k];
    }
    m->nmc = ncols;
    memcpy(m->mcols, cols, (size_t)ncols * sizeof *cols);
    m->seed = seed;
    return m;
}

sp_dataset *sp_dataset_shuffle(sp_dataset *ds, int64_t buffer_size, uint64_t seed) {
    if (!ds || buffer_size < 1 || buffer_size > ((int64_t)1 << 32)) {
        sp_error(SP_ERR_ARG, "dataset_shuffle: buffer_size %lld must be in [1, 2^32]",
                 (long long)buffer_size);
        return NULL;
    }
    sp_dataset *s = ds_alloc(DS_SHUFFLE, ds->ncols, ds);
    if (s) s->n = buffer_size, s->seed = seed;
    return s;
}

sp_dataset *sp_dataset_batch(sp_dataset *ds, int64_t batch_size, int drop_remainder) {
    if (!ds || batch_size < 1 || batch_size > ((int64_t)1 << 31)) {
        sp_error(SP_ERR_ARG, "dataset_batch: batch_size %lld must be in [1, 2^31]",
                 (long long)batch_size);
        return NULL;
    }
    sp_dataset *b = ds_alloc(DS_BATCH, ds->ncols, ds);
    if (b) b->n = batch_size, b->drop_remainder = drop_remainder != 0;
    return b;
}

sp_dataset *sp_dataset_repeat(sp_dataset *ds, int64_t count) {
    if (!ds || (count < 1 && count != -1)) {
        sp_error(SP_ERR_ARG, "dataset_repeat: count %lld must be >= 1, or -1 for forever",
                 (long long)count);
        return NULL;
    }
    sp_dataset *r = ds_alloc(DS_REPEAT, ds->ncols, ds);
    if (r) r->n = count;
    return r;
}

void sp_dataset_retain(sp_dataset *ds) {
    if (ds) sp_ref_inc(&ds->refcount);
}

void sp_dataset_release(sp_dataset *ds) {
    /* iterative over the chain: a long pipeline must not recurse deeply */
    while (ds && sp_ref_dec(&ds->refcount) == 0) {
        sp_dataset *up = ds->up;
        for (int i = 0; i < SP_DATA_MAX_COLUMNS; i++) {
            free(ds->names[i]);
            sp_tensor_release(ds->cols[i]);
        }
        for (int k = 0; k < ds->nops; k++) sp_transform_release(ds->ops[k]);
        free(ds->ops);
        if (ds->free_ctx) ds->free_ctx(ds->ctx);
        free(ds);
        ds = up;
    }
}

int sp_dataset_num_columns(const sp_dataset *ds) { return ds ? ds->ncols : 0; }

const char *sp_dataset_column_name(const sp_dataset *ds, int col) {
    if (!ds || col < 0 || col >= ds->ncols) return NULL;
    while (ds->up) ds = ds->up;
    return ds->names[col];
}

int64_t sp_dataset_size(const sp_dataset *ds) {
    if (!ds) return -1;
    switch (ds->kind) {
    case DS_TENSORS: return ds->nrows;
    case DS_PULL: return -1;
    case DS_MAP:
    case DS_SHUFFLE: return sp_dataset_size(ds->up);
    case DS_BATCH: {
        int64_t n = sp_dataset_size(ds->up);
        if (n < 0) return -1;
        return ds->drop_remainder ? n / ds->n : (n + ds->n - 1) / ds->n;
    }
    case DS_REPEAT: {
        int64_t n = sp_dataset_size(ds->up);
        if (n < 0 || ds->n < 0) return n == 0 ? 0 : -1;
        return n > INT64_MAX / ds->n ? -1 : n * ds->n;
    }
    }
    return -1;
}
