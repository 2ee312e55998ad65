/*
 * test_pipeline.c -- datasets and iterators: row values from tensor and
 * pull sources, batch/repeat counts, seeded shuffles (a permutation,
 * reproducible, different per seed and per epoch), identical output with
 * 0, 1, 3 and 4 workers and any prefetch depth, errors delivered after the
 * rows before them, and clean shutdown mid-pass (every byte Spore
 * allocated comes back).
 */
#include <stdlib.h>
#include <string.h>

#include "test.h"

/* A source of n rows: x = (i, 10 i) float32 (2,), y = i int32. */
static sp_dataset *numbers(int n) {
    int64_t xs[2] = {n, 2}, ys[1] = {n};
    sp_tensor *x = sp_tensor_new(SP_F32, 2, xs, SP_CPU), *y = sp_tensor_new(SP_I32, 1, ys, SP_CPU);
    for (int i = 0; i < n; i++) {
        ((float *)sp_tensor_data(x))[2 * i] = (float)i;
        ((float *)sp_tensor_data(x))[2 * i + 1] = 10.0f * (float)i;
        ((int32_t *)sp_tensor_data(y))[i] = i;
    }
    sp_tensor *cols[2] = {x, y};
    const char *names[2] = {"x", "y"};
    sp_dataset *ds = sp_dataset_from_tensors(2, cols, names);
    sp_tensor_release(x);
    sp_tensor_release(y);
    return ds;
}

/* Reads a whole pass; returns the number of rows and stores the y column
 * (or its first element for batches) into ys (up to cap). */
static int drain(sp_dataset *ds, int workers, int prefetch, uint64_t epoch, int *ys, int cap,
                 int64_t *batch_sizes) {
    sp_data_iter *it = sp_data_iter_new(ds, workers, prefetch, epoch);
    CHECK(it != NULL);
    if (!it) return -1;
    int n = 0;
    for (;;) {
        sp_tensor *row[SP_DATA_MAX_COLUMNS];
        int end;
        sp_status st = sp_data_iter_next(it, row, &end);
        CHECK_OK(st);
        if (st != SP_OK || end) break;
        if (n < cap) {
            ys[n] = (int)(row[1]->ndim ? sp_tensor_get(row[1], (int64_t[]){0})
                                       : sp_tensor_get(row[1], NULL));
            if (batch_sizes) batch_sizes[n] = row[1]->ndim ? row[1]->shape[0] : 0;
        }
        n++;
        for (int c = 0; c < sp_dataset_num_columns(ds); c++) sp_tensor_release(row[c]);
    }
    sp_data_iter_free(it);
    return n;
}

static void test_tensor_source(void) {
    sp_dataset *ds = numbers(10);
    CHECK(sp_dataset_size(ds) == 10);
    CHECK_STR(sp_dataset_column_name(ds, 1), "y");
    sp_data_iter *it = sp_data_iter_new(ds, 0, 2, 0);
    for (int i = 0; i < 10; i++) {
        sp_tensor *row[2];
        int end;
        CHECK_OK(sp_data_iter_next(it, row, &end));
        CHECK(!end && row[0]->ndim == 1 && row[0]->shape[0] == 2 && row[1]->ndim == 0);
        CHECK(sp_tensor_get(row[0], (int64_t[]){1}) == 10.0 * i);
        CHECK(sp_tensor_get(row[1], NULL) == i);
        sp_tensor_release(row[0]);
        sp_tensor_release(row[1]);
    }
    for (int k = 0; k < 2; k++) { /* the end repeats */
        sp_tensor *row[2];
        int end = 0;
        CHECK_OK(sp_data_iter_next(it, row, &end));
        CHECK(end == 1 && row[0] == NULL);
    }
    sp_data_iter_free(it);
    sp_dataset_release(ds);
}

static void test_batch_repeat_counts(void) {
    sp_dataset *ds = numbers(10);
    int ys[64];
    int64_t bs[64];
    sp_dataset *b = sp_dataset_batch(ds, 3, 0);
    CHECK(sp_dataset_size(b) == 4);
    CHECK(drain(b, 0, 0, 0, ys, 64, bs) == 4);
    CHECK(bs[0] == 3 && bs[3] == 1 && ys[1] == 3 && ys[3] == 9);
    sp_dataset *bd = sp_dataset_batch(ds, 3, 1);
    CHECK(sp_dataset_size(bd) == 3);
    CHECK(drain(bd, 2, 1, 0, ys, 64, bs) == 3);
    CHECK(bs[2] == 3);
    sp_dataset *r = sp_dataset_repeat(bd, 3);
    CHECK(sp_dataset_size(r) == 9);
    CHECK(drain(r, 0, 4, 0, ys, 64, bs) == 9);
    CHECK(ys[3] == 0 && ys[8] == 6);
    sp_dataset *rp = sp_dataset_repeat(ds, 2), *rb = sp_dataset_batch(rp, 4, 0);
    sp_dataset_release(rp); /* rb keeps it */
    CHECK(sp_dataset_size(rb) == 5);
    CHECK(drain(rb, 1, 1, 0, ys, 64, bs) == 5);
    CHECK(ys[2] == 8 && bs[2] == 4); /* rows 8 9 0 1 cross the pass */
    sp_dataset *big = sp_dataset_batch(ds, 100, 1);
    CHECK(drain(big, 0, 0, 0, ys, 64, NULL) == 0);
    sp_dataset *forever = sp_dataset_repeat(ds, -1);
    CHECK(sp_dataset_size(forever) == -1);
    /* the iterator stops when asked, in the middle of an infinite pass */
    sp_data_iter *it = sp_data_iter_new(forever, 3, 2, 0);
    for (int i = 0; i < 25; i++) {
        sp_tensor *row[2];
        int end;
        CHECK_OK(sp_data_iter_next(it, row, &end));
        CHECK(!end && sp_tensor_get(row[1], NULL) == i % 10);
        sp_tensor_release(row[0]);
        sp_tensor_release(row[1]);
    }
    sp_data_iter_free(it);
    sp_dataset_release(forever);
    sp_dataset_release(big);
    sp_dataset_release(rb);
    sp_dataset_release(r);
    sp_dataset_release(bd);
    sp_dataset_release(b);
    sp_dataset_release(ds);
}

static void test_shuffle(void) {
    sp_dataset *ds = numbers(50);
    int a[50], b[50], c[50], d[50], e[50];
    sp_dataset *s = sp_dataset_shuffle(ds, 8, 7);
    CHECK(drain(s, 0, 0, 0, a, 50, NULL) == 50);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) {
        seen[a[i]]++;
        moved += a[i] != i;
    }
    int perm = 1;
    for (int i = 0; i < 50; i++) perm &= seen[i] == 1;
    CHECK(perm);
    CHECK(moved > 25);
    /* a buffer of 8 lets a row move at most 7 places earlier */
    int bounded = 1;
    for (int i = 0; i < 50; i++) bounded &= a[i] <= i + 7;
    CHECK(bounded);
    CHECK(drain(s, 4, 3, 0, b, 50, NULL) == 50);
    CHECK(memcmp(a, b, sizeof a) == 0);
    sp_dataset *s2 = sp_dataset_shuffle(ds, 8, 8);
    CHECK(drain(s2, 0, 0, 0, c, 50, NULL) == 50);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(drain(s, 0, 0, 1, d, 50, NULL) == 50); /* epoch 1: another order, reproducible */
    CHECK(memcmp(a, d, sizeof a) != 0);
    CHECK(drain(s, 2, 2, 1, e, 50, NULL) == 50);
    CHECK(memcmp(d, e, sizeof d) == 0);
    sp_dataset *one = sp_dataset_shuffle(ds, 1, 5);
    CHECK(drain(one, 0, 0, 0, c, 50, NULL) == 50);
    int ident = 1;
    for (int i = 0; i < 50; i++) ident &= c[i] == i;
    CHECK(ident);
    /* repeat reshuffles each pass */
    sp_dataset *full = sp_dataset_shuffle(ds, 1000, 1), *rep = sp_dataset_repeat(full, 2);
    int r[100];
    CHECK(drain(rep, 0, 0, 0, r, 100, NULL) == 100);
    CHECK(memcmp(r, r + 50, 50 * sizeof *r) != 0);
    sp_dataset_release(rep);
    sp_dataset_release(full);
    sp_dataset_release(one);
    sp_dataset_release(s2);
    sp_dataset_release(s);
    sp_dataset_release(ds);
}

/* Reads every batch of a pass into one growing byte string. */
static unsigned char *pass_bytes(sp_dataset *ds, int workers, int prefetch, size_t *n) {
    unsigned char *all = NULL;
    *n = 0;
    sp_data_iter *it = sp_data_iter_new(ds, workers, prefetch, 0);
    CHECK(it != NULL);
    if (!it) return NULL;
    for (;;) {
        sp_tensor *row[2];
        int end;
        sp_status st = sp_data_iter_next(it, row, &end);
        CHECK_OK(st);
        if (st != SP_OK || end) break;
        for (int c = 0; c < 2; c++) {
            size_t k = sp_tensor_nbytes(row[c]);
            all = realloc(all, *n + k + 16);
            memcpy(all + *n, sp_tensor_data(row[c]), k);
            *n += k;
            char sh[64] = {0};
            sp_shape_str(row[c]->ndim, row[c]->shape, sh, sizeof sh);
            memcpy(all + *n, sh, 16);
            *n += 16;
            sp_tensor_release(row[c]);
        }
    }
    sp_data_iter_free(it);
    return all;
}

static sp_dataset *image_pipeline(int with_shuffle_first) {
    int64_t is[4] = {100, 8, 8, 3}, ls[1] = {100};
    sp_tensor *im = sp_tensor_new(SP_U8, 4, is, SP_CPU), *lb = sp_tensor_new(SP_I32, 1, ls, SP_CPU);
    for (int i = 0; i < 100 * 192; i++) ((unsigned char *)sp_tensor_data(im))[i] = (unsigned char)(i * 13 + i / 7);
    for (int i = 0; i < 100; i++) ((int32_t *)sp_tensor_data(lb))[i] = i;
    sp_tensor *cols[2] = {im, lb};
    sp_dataset *src = sp_dataset_from_tensors(2, cols, NULL);
    sp_tensor_release(im);
    sp_tensor_release(lb);
    int64_t pad[4] = {1, 1, 1, 1};
    sp_transform *ops[3] = {sp_transform_random_crop(6, 6, pad, 0, 0),
                            sp_transform_random_horizontal_flip(0.5),
                            sp_transform_rescale(1.0 / 255, 0)};
    sp_transform *cast = sp_transform_type_cast(SP_F32);
    int c0 = 0, c1 = 1;
    /* the shuffle before or after the maps: each variant is deterministic */
    sp_dataset *a = with_shuffle_first ? sp_dataset_shuffle(src, 16, 3) : src;
    if (!with_shuffle_first) sp_dataset_retain(src);
    sp_dataset *m = sp_dataset_map(a, 3, ops, 1, &c0, 42);
    sp_dataset *m2 = sp_dataset_map(m, 1, &cast, 1, &c1, 0);
    sp_dataset *s = with_shuffle_first ? m2 : sp_dataset_shuffle(m2, 16, 3);
    if (with_shuffle_first) sp_dataset_retain(m2);
    sp_dataset *b = sp_dataset_batch(s, 8, 0);
    sp_dataset *r = sp_dataset_repeat(b, 2);
    for (int k = 0; k < 3; k++) sp_transform_release(ops[k]);
    sp_transform_release(cast);
    sp_dataset *mine[6] = {src, a, m, m2, s, b};
    for (int k = 0; k < 6; k++) sp_dataset_release(mine[k]);
    return r;
}

static void test_workers_deterministic(void) {
    for (int sf = 0; sf < 2; sf++) {
        sp_dataset *ds = image_pipeline(sf);
        CHECK(sp_dataset_size(ds) == 26);
        size_t n0, n;
        unsigned char *ref = pass_bytes(ds, 0, 0, &n0);
        CHECK(n0 == 26 * 16 * 2 + 2 * (12 * 8 * 6 * 6 * 3 * 4 + 4 * 6 * 6 * 3 * 4) +
                        2 * (12 * 8 * 4 + 4 * 4));
        const int cfg[][2] = {{1, 1}, {4, 4}, {3, 2}, {4, 0}, {0, 3}};
        for (int k = 0; k < 5; k++) {
            unsigned char *got = pass_bytes(ds, cfg[k][0], cfg[k][1], &n);
            CHECK(n == n0 && got && memcmp(ref, got, n) == 0);
            free(got);
        }
        /* the random transforms really vary: the two repeated passes differ */
        size_t half = n0 / 2;
        CHECK(memcmp(ref, ref + half, half) != 0);
        free(ref);
        sp_dataset_release(ds);
    }
}

/* a callback that fails on the row whose label is 5 */
static sp_status fail_on_five(void *ctx, int n, sp_tensor *const *in, sp_tensor **out,
                              uint64_t seed, uint64_t counter) {
    (void)ctx, (void)n, (void)seed, (void)counter;
    if (sp_tensor_get(in[0], NULL) == 5) return sp_error(SP_ERR_RUNTIME, "boom at 5");
    out[0] = in[0];
    sp_tensor_retain(in[0]);
    return SP_OK;
}

static void test_errors_in_order(void) {
    sp_dataset *ds = numbers(20);
    sp_transform *f = sp_transform_callback(1, fail_on_five, NULL, NULL);
    int c1 = 1;
    sp_dataset *m = sp_dataset_map(ds, 1, &f, 1, &c1, 0);
    for (int w = 0; w <= 4; w += 4) {
        sp_data_iter *it = sp_data_iter_new(m, w, 2, 0);
        for (int i = 0; i < 5; i++) {
            sp_tensor *row[2];
            int end;
            CHECK_OK(sp_data_iter_next(it, row, &end));
            CHECK(!end && sp_tensor_get(row[1], NULL) == i);
            sp_tensor_release(row[0]);
            sp_tensor_release(row[1]);
        }
        for (int k = 0; k < 2; k++) {
            sp_tensor *row[2];
            int end;
            CHECK_ERR(sp_data_iter_next(it, row, &end), SP_ERR_RUNTIME, "boom at 5");
        }
        sp_data_iter_free(it);
    }
    /* a transform on the wrong shape: the message names the transform */
    sp_transform *flip = sp_transform_random_horizontal_flip(1);
    int c0 = 0;
    sp_dataset *bad = sp_dataset_map(ds, 1, &flip, 1, &c0, 0);
    sp_data_iter *it = sp_data_iter_new(bad, 2, 2, 0);
    sp_tensor *row[2];
    int end;
    CHECK_ERR(sp_data_iter_next(it, row, &end), SP_ERR_SHAPE,
              "RandomHorizontalFlip: expects an HW or HWC image, got shape (2,)");
    sp_data_iter_free(it);
    /* bad arguments */
    int c9 = 9;
    CHECK(sp_dataset_map(ds, 1, &flip, 1, &c9, 0) == NULL &&
          strstr(sp_last_error(), "column 9 does not exist"));
    CHECK(sp_dataset_batch(ds, 0, 0) == NULL && strstr(sp_last_error(), "batch_size 0"));
    CHECK(sp_dataset_repeat(ds, 0) == NULL && strstr(sp_last_error(), "count 0"));
    CHECK(sp_dataset_shuffle(ds, 0, 1) == NULL && strstr(sp_last_error(), "buffer_size 0"));
    CHECK(sp_data_iter_new(ds, -1, 0, 0) == NULL && strstr(sp_last_error(), "workers"));
    sp_transform_release(flip);
    sp_dataset_release(bad);
    sp_transform_release(f);
    sp_dataset_release(m);
    sp_dataset_release(ds);
}

/* A pull source: rows i = 0..n-1 of a float (i, i) (2,) or shape (i+1,)
 * when ragged; counts resets. */
typedef struct gen {
    int i, n, ragged, resets;
    uint64_t last_epoch;
} gen;

static sp_status gen_pull(void *ctx, sp_tensor **row, int *end) {
    gen *g = ctx;
    if (g->i >= g->n) {
        *end = 1;
        return SP_OK;
    }
    int64_t len = g->ragged ? g->i + 1 : 2;
    row[0] = sp_tensor_zeros(SP_F32, 1, &len, SP_CPU);
    sp_tensor_fill(row[0], g->i);
    row[1] = sp_tensor_scalar(SP_I64, g->i);
    g->i++;
    return SP_OK;
}

static sp_status gen_reset(void *ctx, uint64_t epoch) {
    gen *g = ctx;
    g->i = 0;
    g->resets++;
    g->last_epoch = epoch;
    return SP_OK;
}

static void test_pull_source(void) {
    gen g = {0, 7, 0, 0, 0};
    const char *names[2] = {"data", "label"};
    sp_dataset *ds = sp_dataset_from_pull(2, names, gen_pull, gen_reset, &g, NULL);
    CHECK(sp_dataset_size(ds) == -1);
    sp_dataset *r = sp_dataset_repeat(ds, 2);
    int ys[32];
    CHECK(drain(r, 2, 2, 0, ys, 32, NULL) == 14);
    CHECK(ys[6] == 6 && ys[7] == 0 && ys[13] == 6);
    CHECK(g.resets == 2);
    sp_dataset *b = sp_dataset_batch(ds, 3, 0);
    int64_t bs[8];
    CHECK(drain(b, 0, 1, 0, ys, 8, bs) == 3);
    CHECK(bs[2] == 1 && ys[2] == 6);
    /* rows of different shapes cannot be batched */
    gen h = {0, 5, 1, 0, 0};
    sp_dataset *rag = sp_dataset_from_pull(2, names, gen_pull, gen_reset, &h, NULL);
    sp_dataset *rb = sp_dataset_batch(rag, 4, 0);
    sp_data_iter *it = sp_data_iter_new(rb, 1, 1, 0);
    sp_tensor *row[2];
    int end;
    CHECK_ERR(sp_data_iter_next(it, row, &end), SP_ERR_SHAPE,
              "batch: column \"data\" has shape (1,) float32 in row 0 of the batch but (2,) "
              "float32 in row 1");
    sp_data_iter_free(it);
    /* a source without reset can be read once only */
    gen k = {0, 3, 0, 0, 0};
    sp_dataset *once = sp_dataset_from_pull(2, names, gen_pull, NULL, &k, NULL);
    sp_dataset *r2 = sp_dataset_repeat(once, 2);
    it = sp_data_iter_new(r2, 0, 0, 0);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(sp_data_iter_next(it, row, &end));
        CHECK(!end);
        sp_tensor_release(row[0]);
        sp_tensor_release(row[1]);
    }
    CHECK_ERR(sp_data_iter_next(it, row, &end), SP_ERR_UNSUPPORTED, "can be read only once");
    sp_data_iter_free(it);
    sp_dataset_release(r2);
    sp_dataset_release(once);
    sp_dataset_release(rb);
    sp_dataset_release(rag);
    sp_dataset_release(b);
    sp_dataset_release(r);
    sp_dataset_release(ds);
}

/* A two-column callback: (x, y) -> (x * y, y + 100). */
static sp_status mix_cols(void *ctx, int n, sp_tensor *const *in, sp_tensor **out, uint64_t seed,
                          uint64_t counter) {
    (void)ctx, (void)n, (void)seed, (void)counter;
    double y = sp_tensor_get(in[1], NULL);
    if (sp_tensor_cast(in[0], SP_F32, &out[0]) != SP_OK) return sp_last_status();
    float *p = sp_tensor_data(out[0]);
    for (int64_t i = 0; i < sp_tensor_numel(out[0]); i++) p[i] *= (float)y;
    out[1] = sp_tensor_scalar(SP_I32, y + 100);
    return SP_OK;
}

static int frees;
static void count_free(void *ctx) {
    (void)ctx;
    frees++;
}

static void test_callback_map(void) {
    sp_dataset *ds = numbers(6);
    sp_transform *t = sp_transform_callback(2, mix_cols, NULL, count_free);
    int cols[2] = {0, 1};
    sp_dataset *m = sp_dataset_map(ds, 1, &t, 2, cols, 0);
    sp_transform_release(t);
    CHECK(frees == 0); /* the map holds it */
    sp_data_iter *it = sp_data_iter_new(m, 3, 2, 0);
    for (int i = 0; i < 6; i++) {
        sp_tensor *row[2];
        int end;
        CHECK_OK(sp_data_iter_next(it, row, &end));
        CHECK(sp_tensor_get(row[0], (int64_t[]){1}) == 10.0 * i * i);
        CHECK(sp_tensor_get(row[1], NULL) == i + 100);
        sp_tensor_release(row[0]);
        sp_tensor_release(row[1]);
    }
    sp_data_iter_free(it);
    sp_dataset_release(m);
    CHECK(frees == 1);
    sp_dataset_release(ds);
}

static void test_free_mid_pass(void) {
    /* many workers, a deep prefetch, a slow consumer: free after 3 rows */
    for (int rep = 0; rep < 20; rep++) {
        sp_dataset *ds = image_pipeline(rep & 1);
        sp_data_iter *it = sp_data_iter_new(ds, 4, 8, (uint64_t)rep);
        for (int i = 0; i < rep % 4; i++) {
            sp_tensor *row[2];
            int end;
            CHECK_OK(sp_data_iter_next(it, row, &end));
            sp_tensor_release(row[0]);
            sp_tensor_release(row[1]);
        }
        sp_dataset_release(ds); /* the iterator keeps the description alive */
        sp_data_iter_free(it);
    }
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_tensor_source);
    RUN(test_batch_repeat_counts);
    RUN(test_shuffle);
    RUN(test_workers_deterministic);
    RUN(test_errors_in_order);
    RUN(test_pull_source);
    RUN(test_callback_map);
    RUN(test_free_mid_pass);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}
