/*
 * test_loaders.c -- IDX, MNIST and CIFAR-10 loaders: round trips through
 * files Spore writes, gzip and zlib streams written by zlib itself, the
 * real Fashion-MNIST files of Debian's dataset-fashion-mnist (counts,
 * first labels and checksums computed with numpy + gzip), a synthetic
 * CIFAR-10 directory, and one test per documented error: each damaged
 * file must fail with SP_ERR_FORMAT and a message naming the file.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void write_gz(const char *path, const void *p, size_t n) {
    gzFile g = gzopen(path, "wb");
    CHECK(g != NULL);
    if (!g) return;
    CHECK(gzwrite(g, p, (unsigned)n) == (int)n);
    gzclose(g);
}

static unsigned char *read_file(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

static int tensors_equal(const sp_tensor *a, const sp_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return memcmp(sp_tensor_data(a), sp_tensor_data(b), sp_tensor_nbytes(a)) == 0;
}

static void test_idx_round_trip(void) {
    sp_dtype dts[] = {SP_U8, SP_I8, SP_I32, SP_F32, SP_F64};
    for (int k = 0; k < 5; k++) {
        int64_t shape[3] = {3, 4, 5};
        sp_tensor *t = sp_tensor_new(dts[k], 3, shape, SP_CPU);
        for (int64_t i = 0; i < 60; i++) {
            double v = dts[k] == SP_U8 ? (double)(i * 7 % 256) : (double)(i * 37 % 200) - 100.5;
            if (!sp_dtype_is_float(dts[k])) v = (double)(int)v;
            sp_tensor *s = sp_tensor_scalar(dts[k], v);
            memcpy((char *)sp_tensor_data(t) + i * sp_dtype_size(dts[k]), sp_tensor_data(s),
                   sp_dtype_size(dts[k]));
            sp_tensor_release(s);
        }
        const char *p = tmp_path("rt.idx");
        CHECK_OK(sp_idx_save(p, t));
        sp_tensor *back = NULL;
        CHECK_OK(sp_idx_load(p, &back));
        CHECK(back && tensors_equal(t, back));
        /* the same bytes gzip-compressed, from a file and from memory */
        size_t n = 0;
        unsigned char *raw = read_file(p, &n);
        CHECK(raw != NULL);
        const char *gp = tmp_path("rt.idx.gz");
        write_gz(gp, raw, n);
        sp_tensor *gz = NULL;
        CHECK_OK(sp_idx_load(gp, &gz));
        CHECK(gz && tensors_equal(t, gz));
        size_t gn = 0;
        unsigned char *gbytes = read_file(gp, &gn);
        sp_tensor *gm = NULL;
        CHECK_OK(sp_idx_load_mem(gbytes, gn, "mem.gz", &gm));
        CHECK(gm && tensors_equal(t, gm));
        /* zlib (not gzip) framing */
        uLongf zn = compressBound(n);
        unsigned char *z = malloc(zn);
        CHECK(compress(z, &zn, raw, n) == Z_OK);
        sp_tensor *zt = NULL;
        CHECK_OK(sp_idx_load_mem(z, zn, "mem.z", &zt));
        CHECK(zt && tensors_equal(t, zt));
        free(z);
        free(raw);
        free(gbytes);
        sp_tensor_release(t);
        sp_tensor_release(back);
        sp_tensor_release(gz);
        sp_tensor_release(gm);
        sp_tensor_release(zt);
    }
}

static void test_idx_int16_and_values(void) {
    /* hand-made: type 0x0B (int16), shape (3,), values 1, -2, 300 big-endian */
    unsigned char f[] = {0, 0, 0x0B, 1, 0, 0, 0, 3, 0x00, 0x01, 0xFF, 0xFE, 0x01, 0x2C};
    sp_tensor *t = NULL;
    CHECK_OK(sp_idx_load_mem(f, sizeof f, "i16", &t));
    CHECK(t && t->dtype == SP_I32 && t->ndim == 1 && t->shape[0] == 3);
    if (t) {
        int32_t *p = sp_tensor_data(t);
        CHECK(p[0] == 1 && p[1] == -2 && p[2] == 300);
    }
    sp_tensor_release(t);
    /* float32 1.5 big-endian, 0-d */
    unsigned char g[] = {0, 0, 0x0D, 0, 0x3F, 0xC0, 0x00, 0x00};
    CHECK_OK(sp_idx_load_mem(g, sizeof g, "f32", &t));
    CHECK(t && t->ndim == 0 && *(float *)sp_tensor_data(t) == 1.5f);
    sp_tensor_release(t);
    /* concatenated gzip members read as one stream */
    const char *a = tmp_path("two.gz");
    gzFile gf = gzopen(a, "wb");
    gzwrite(gf, f, 8);
    gzclose(gf);
    size_t n1 = 0;
    unsigned char *m1 = read_file(a, &n1);
    gf = gzopen(a, "wb");
    gzwrite(gf, f + 8, sizeof f - 8);
    gzclose(gf);
    size_t n2 = 0;
    unsigned char *m2 = read_file(a, &n2);
    unsigned char *cat = malloc(n1 + n2);
    memcpy(cat, m1, n1);
    memcpy(cat + n1, m2, n2);
    CHECK_OK(sp_idx_load_mem(cat, n1 + n2, "cat", &t));
    CHECK(t && t->shape[0] == 3 && ((int32_t *)sp_tensor_data(t))[2] == 300);
    sp_tensor_release(t);
    free(m1);
    free(m2);
    free(cat);
}

static void test_idx_errors(void) {
    sp_tensor *t = (sp_tensor *)1;
    CHECK_ERR(sp_idx_load(tmp_path("missing.idx"), &t), SP_ERR_IO, "missing.idx: cannot open");
    CHECK(t == NULL);
    unsigned char bad_magic[] = {1, 0, 8, 1, 0, 0, 0, 1, 7};
    CHECK_ERR(sp_idx_load_mem(bad_magic, sizeof bad_magic, "m.idx", &t), SP_ERR_FORMAT,
              "m.idx: not an IDX file");
    unsigned char bad_type[] = {0, 0, 7, 1, 0, 0, 0, 1, 7};
    CHECK_ERR(sp_idx_load_mem(bad_type, sizeof bad_type, "t.idx", &t), SP_ERR_FORMAT,
              "t.idx: unknown IDX type code 0x07");
    unsigned char rank[] = {0, 0, 8, 9};
    CHECK_ERR(sp_idx_load_mem(rank, sizeof rank, "r.idx", &t), SP_ERR_FORMAT,
              "r.idx: IDX rank 9");
    unsigned char short_dims[] = {0, 0, 8, 2, 0, 0, 0};
    CHECK_ERR(sp_idx_load_mem(short_dims, sizeof short_dims, "d.idx", &t), SP_ERR_FORMAT,
              "d.idx: truncated IDX file: the dimensions");
    unsigned char trunc[] = {0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3};
    CHECK_ERR(sp_idx_load_mem(trunc, sizeof trunc, "tr.idx", &t), SP_ERR_FORMAT,
              "tr.idx: truncated IDX file: shape (5,) needs 5 bytes of data, the file has 3");
    unsigned char extra[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3};
    CHECK_ERR(sp_idx_load_mem(extra, sizeof extra, "x.idx", &t), SP_ERR_FORMAT,
              "x.idx: trailing data");
    /* a huge claim in a small file: refused before any allocation */
    unsigned char huge[] = {0, 0, 0x0E, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                            0xFF, 0xFF, 0xFF, 0xFF};
    int64_t live = sp_cpu_live_bytes();
    CHECK_ERR(sp_idx_load_mem(huge, sizeof huge, "h.idx", &t), SP_ERR_FORMAT, "h.idx: IDX header claims shape");
    CHECK(sp_cpu_live_bytes() == live);
    /* compressed: truncated stream, and a claim bigger than the ratio allows */
    unsigned char body[4 + 4 + 1000];
    memset(body, 0, sizeof body);
    body[2] = 8, body[3] = 1, body[6] = 0x03, body[7] = 0xE8; /* (1000,) */
    uLongf zn = compressBound(sizeof body);
    unsigned char *z = malloc(zn);
    compress(z, &zn, body, sizeof body);
    CHECK_ERR(sp_idx_load_mem(z, zn - 6, "cut.gz", &t), SP_ERR_FORMAT, "cut.gz: truncated");
    z[zn / 2] ^= 0x55;
    sp_status st = sp_idx_load_mem(z, zn, "flip.gz", &t);
    CHECK(st == SP_ERR_FORMAT && strstr(sp_last_error(), "flip.gz: "));
    CHECK(t == NULL);
    free(z);
    unsigned char big[] = {0, 0, 8, 2, 0x10, 0, 0, 0, 0x10, 0, 0, 0}; /* 2^56 bytes */
    zn = compressBound(sizeof big);
    z = malloc(zn);
    compress(z, &zn, big, sizeof big);
    CHECK_ERR(sp_idx_load_mem(z, zn, "big.gz", &t), SP_ERR_FORMAT,
              "more data than this");
    free(z);
    /* gzip member followed by garbage */
    unsigned char ok[] = {0, 0, 8, 1, 0, 0, 0, 1, 42};
    const char *gp = tmp_path("garbage.gz");
    write_gz(gp, ok, sizeof ok);
    size_t gn = 0;
    unsigned char *g = read_file(gp, &gn);
    g = realloc(g, gn + 3);
    memcpy(g + gn, "xyz", 3);
    write_file(gp, g, gn + 3);
    CHECK_ERR(sp_idx_load(gp, &t), SP_ERR_FORMAT, "garbage.gz: unexpected bytes after");
    free(g);
    CHECK_ERR(sp_idx_load_mem(NULL, 0, "empty", &t), SP_ERR_FORMAT, "empty: truncated IDX file");
    CHECK_ERR(sp_idx_load(tmpdir, &t), SP_ERR_IO, "is a directory");
}

static void test_fashion_mnist(void) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (access(dir, R_OK) != 0) {
        /* the Makefile installs dataset-fashion-mnist; its absence is a failure */
        fprintf(stderr, "missing %s (apt-get install dataset-fashion-mnist)\n", dir);
        CHECK(0);
        return;
    }
    static const unsigned char train_first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    static const unsigned char test_first[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    const char *usage[2] = {"train", "test"};
    const int64_t count[2] = {60000, 10000};
    const uint64_t img_sum[2] = {3431114169ull, 573469082ull}, lab_sum[2] = {270000, 45000};
    for (int u = 0; u < 2; u++) {
        sp_tensor *im = NULL, *lb = NULL;
        CHECK_OK(sp_mnist_load(dir, usage[u], &im, &lb));
        if (!im || !lb) continue;
        CHECK(im->dtype == SP_U8 && im->ndim == 3 && im->shape[0] == count[u] &&
              im->shape[1] == 28 && im->shape[2] == 28);
        CHECK(lb->dtype == SP_U8 && lb->ndim == 1 && lb->shape[0] == count[u]);
        const unsigned char *l = sp_tensor_data(lb), *p = sp_tensor_data(im);
        CHECK(memcmp(l, u ? test_first : train_first, 10) == 0);
        uint64_t s = 0, ls = 0;
        for (int64_t i = 0; i < count[u] * 784; i++) s += p[i];
        for (int64_t i = 0; i < count[u]; i++) ls += l[i];
        CHECK(s == img_sum[u]);
        CHECK(ls == lab_sum[u]);
        if (u == 0) CHECK(p[14 * 28 + 14] == 217 && p[784 * 59999 + 400] == 129);
        sp_tensor_release(im);
        sp_tensor_release(lb);
    }
    sp_dataset *ds = sp_dataset_mnist(dir, "test");
    CHECK(ds && sp_dataset_size(ds) == 10000 && sp_dataset_num_columns(ds) == 2);
    CHECK_STR(sp_dataset_column_name(ds, 0), "image");
    CHECK_STR(sp_dataset_column_name(ds, 1), "label");
    sp_data_iter *it = sp_data_iter_new(ds, 0, 0, 0);
    sp_tensor *row[2];
    int end;
    CHECK_OK(sp_data_iter_next(it, row, &end));
    CHECK(!end && row[0]->ndim == 3 && row[0]->shape[2] == 1 && row[1]->ndim == 0);
    CHECK(sp_tensor_get(row[1], NULL) == 9);
    sp_tensor_release(row[0]);
    sp_tensor_release(row[1]);
    sp_data_iter_free(it);
    sp_dataset_release(ds);
}

static void test_mnist_errors(void) {
    sp_tensor *im = NULL, *lb = NULL;
    CHECK_ERR(sp_mnist_load(tmpdir, "train", &im, &lb), SP_ERR_IO, "no MNIST train files");
    CHECK_ERR(sp_mnist_load(tmpdir, "val", &im, &lb), SP_ERR_ARG, "usage must be");
    /* 2 images, 3 labels */
    unsigned char imgs[16 + 2 * 4] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2};
    unsigned char labs[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    write_file(tmp_path("t10k-images-idx3-ubyte"), imgs, sizeof imgs);
    write_file(tmp_path("t10k-labels-idx1-ubyte"), labs, sizeof labs);
    CHECK_ERR(sp_mnist_load(tmpdir, "test", &im, &lb), SP_ERR_FORMAT, "3 labels for 2 images");
    labs[7] = 2;
    write_file(tmp_path("t10k-labels-idx1-ubyte"), labs, sizeof labs - 1);
    CHECK_OK(sp_mnist_load(tmpdir, "test", &im, &lb));
    CHECK(im && im->shape[0] == 2 && lb && lb->shape[0] == 2);
    sp_tensor_release(im);
    sp_tensor_release(lb);
    labs[2] = 0x0C; /* int32 labels: wrong dtype for MNIST */
    write_file(tmp_path("t10k-labels-idx1-ubyte"), labs, 8);
    CHECK_ERR(sp_mnist_load(tmpdir, "test", &im, &lb), SP_ERR_FORMAT,
              "t10k-labels-idx1-ubyte: truncated");
    unlink(tmp_path("t10k-images-idx3-ubyte"));
    unlink(tmp_path("t10k-labels-idx1-ubyte"));
}

/* A synthetic CIFAR-10 record: label, then R, G, B planes. */
static void cifar_record(unsigned char *rec, int label, int seed) {
    rec[0] = (unsigned char)label;
    for (int i = 0; i < 3072; i++) rec[1 + i] = (unsigned char)((i * 31 + seed * 17) & 0xFF);
}

static void test_cifar(void) {
    char sub[600];
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", tmpdir);
    {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "mkdir -p %s", sub);
        CHECK(system(cmd) == 0);
    }
    unsigned char *buf = malloc(3073 * 3);
    int labels[6][3];
    for (int b = 0; b < 6; b++) {
        int nrec = b == 5 ? 2 : 3;
        for (int r = 0; r < nrec; r++) {
            labels[b][r] = (b + r * 3) % 10;
            cifar_record(buf + r * 3073, labels[b][r], b * 10 + r);
        }
        char p[700];
        if (b < 5) snprintf(p, sizeof p, "%s/data_batch_%d.bin", sub, b + 1);
        else snprintf(p, sizeof p, "%s/test_batch.bin", sub);
        write_file(p, buf, 3073 * (size_t)nrec);
    }
    sp_tensor *im = NULL, *lb = NULL;
    CHECK_OK(sp_cifar10_load(tmpdir, "train", &im, &lb)); /* finds the subfolder */
    CHECK(im && im->ndim == 4 && im->shape[0] == 15 && im->shape[1] == 32 && im->shape[2] == 32 &&
          im->shape[3] == 3);
    if (im && lb) {
        const unsigned char *p = sp_tensor_data(im), *l = sp_tensor_data(lb);
        CHECK(l[0] == labels[0][0] && l[4] == labels[1][1] && l[14] == labels[4][2]);
        /* row 4 = batch 2 record 1 (seed 11); pixel (y=2, x=5), channel c */
        for (int c = 0; c < 3; c++) {
            int i = c * 1024 + 2 * 32 + 5;
            CHECK(p[4 * 3072 + (2 * 32 + 5) * 3 + c] == ((i * 31 + 11 * 17) & 0xFF));
        }
    }
    sp_tensor_release(im);
    sp_tensor_release(lb);
    CHECK_OK(sp_cifar10_load(sub, "test", &im, &lb));
    CHECK(im && im->shape[0] == 2 && ((unsigned char *)sp_tensor_data(lb))[1] == labels[5][1]);
    sp_tensor_release(im);
    sp_tensor_release(lb);
    CHECK_OK(sp_cifar10_load(sub, "all", &im, &lb));
    CHECK(im && im->shape[0] == 17);
    sp_tensor_release(im);
    sp_tensor_release(lb);

    sp_dataset *ds = sp_dataset_cifar10(tmpdir, "test");
    CHECK(ds && sp_dataset_size(ds) == 2);
    sp_dataset_release(ds);

    /* errors: a bad size, a bad label, a missing file */
    char p[700];
    snprintf(p, sizeof p, "%s/test_batch.bin", sub);
    write_file(p, buf, 3073 + 5);
    CHECK_ERR(sp_cifar10_load(sub, "test", &im, &lb), SP_ERR_FORMAT,
              "test_batch.bin: 3078 bytes is not a whole number of 3073-byte");
    buf[3073] = 12;
    write_file(p, buf, 3073 * 2);
    CHECK_ERR(sp_cifar10_load(sub, "test", &im, &lb), SP_ERR_FORMAT,
              "test_batch.bin: record 1 has label 12");
    CHECK(im == NULL && lb == NULL);
    unlink(p);
    CHECK_ERR(sp_cifar10_load(sub, "test", &im, &lb), SP_ERR_IO, "test_batch.bin: cannot open");
    CHECK(sp_dataset_cifar10(sub, "test") == NULL && strstr(sp_last_error(), "test_batch.bin"));
    CHECK_ERR(sp_cifar10_load(sub, "nope", &im, &lb), SP_ERR_ARG, "usage must be");
    CHECK_ERR(sp_cifar10_load_mem(buf, 100, "m.bin", &im, &lb), SP_ERR_FORMAT,
              "m.bin: 100 bytes is not a whole number");
    free(buf);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", sub);
    CHECK(system(cmd) == 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spore_test_loaders_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    int64_t live = sp_cpu_live_bytes();
    RUN(test_idx_round_trip);
    RUN(test_idx_int16_and_values);
    RUN(test_idx_errors);
    RUN(test_fashion_mnist);
    RUN(test_mnist_errors);
    RUN(test_cifar);
    CHECK(sp_cpu_live_bytes() == live);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
