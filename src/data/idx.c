/*
 * idx.c -- IDX files (the format of MNIST and Fashion-MNIST) and the MNIST
 * directory loader.
 *
 * An IDX file is: two zero bytes, a type code, the rank r, then r
 * big-endian uint32 dimensions, then the elements in C order, big-endian.
 * Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D
 * float32, 0x0E float64.  Spore has no int16, so 0x0B is widened to int32
 * in place after reading (each int16 lands at a higher address than it
 * came from when walking from the end, so one buffer suffices).
 *
 * The one idea: nothing in the header is trusted.  The element count is
 * computed with overflow checks, compared with what the byte source can
 * still hold (data_src_bound), and only then is a tensor allocated; the
 * body must fill it exactly, and a byte after it is an error too, so a
 * truncated download or a concatenated file is reported, not silently
 * half-read.  Every message starts with the file name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "data/data_internal.h"

static sp_dtype idx_dtype_of(int code, size_t *file_itemsize) {
    switch (code) {
    case 0x08: *file_itemsize = 1; return SP_U8;
    case 0x09: *file_itemsize = 1; return SP_I8;
    case 0x0B: *file_itemsize = 2; return SP_I32;
    case 0x0C: *file_itemsize = 4; return SP_I32;
    case 0x0D: *file_itemsize = 4; return SP_F32;
    case 0x0E: *file_itemsize = 8; return SP_F64;
    default: *file_itemsize = 0; return SP_DTYPE_COUNT;
    }
}

static void idx_swap_bytes(uint8_t *p, size_t count, size_t size) {
    if (size == 1) return;
    for (size_t i = 0; i < count; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

static sp_status idx_read_exact(data_src *s, void *dst, size_t n, const char *what) {
    size_t got;
    sp_status st = data_src_read(s, dst, n, &got);
    if (st != SP_OK) return st;
    if (got < n)
        return sp_error(SP_ERR_FORMAT, "%s: truncated IDX file: %s needs %zu bytes, found %zu",
                        s->name, what, n, got);
    return SP_OK;
}

static sp_status idx_decode(data_src *s, sp_tensor **out) {
    *out = NULL;
    uint8_t magic[4];
    sp_status st = idx_read_exact(s, magic, 4, "the magic number");
    if (st != SP_OK) return st;
    if (magic[0] != 0 || magic[1] != 0)
        return sp_error(SP_ERR_FORMAT,
                        "%s: not an IDX file: the magic number starts %02x %02x, not 00 00",
                        s->name, magic[0], magic[1]);
    size_t fsize;
    sp_dtype dt = idx_dtype_of(magic[2], &fsize);
    if (dt == SP_DTYPE_COUNT)
        return sp_error(SP_ERR_FORMAT,
                        "%s: unknown IDX type code 0x%02x (known: 08 09 0b 0c 0d 0e)", s->name,
                        magic[2]);
    int ndim = magic[3];
    if (ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_FORMAT, "%s: IDX rank %d is more than Spore's %d dimensions",
                        s->name, ndim, SP_MAX_DIMS);
    uint8_t dims[4 * SP_MAX_DIMS];
    if (ndim) {
        st = idx_read_exact(s, dims, (size_t)ndim * 4, "the dimensions");
        if (st != SP_OK) return st;
    }
    int64_t shape[SP_MAX_DIMS];
    uint64_t count = 1;
    int overflow = 0;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *d = dims + 4 * i;
        shape[i] = (int64_t)(((uint32_t)d[0] << 24) | ((uint32_t)d[1] << 16) |
                             ((uint32_t)d[2] << 8) | d[3]);
        if (shape[i] && count > (UINT64_MAX >> 4) / (uint64_t)shape[i]) overflow = 1;
        else count *= (uint64_t)shape[i];
    }
    uint64_t bound = data_src_bound(s);
    if (overflow || count > bound / fsize) {
        char sh[160];
        sp_shape_str(ndim, shape, sh, sizeof sh);
        if (!s->gz && overflow)
            return sp_error(SP_ERR_FORMAT,
                            "%s: IDX header claims shape %s, more than 2^60 elements", s->name,
                            sh);
        if (!s->gz)
            return sp_error(SP_ERR_FORMAT,
                            "%s: truncated IDX file: shape %s needs %llu bytes of data, the file "
                            "has %llu after the header",
                            s->name, sh, (unsigned long long)(count * fsize),
                            (unsigned long long)bound);
        return sp_error(SP_ERR_FORMAT,
                        "%s: IDX header claims shape %s, more data than this %llu-byte "
                        "compressed file can hold",
                        s->name, sh, (unsigned long long)s->raw_size);
    }
    size_t nbytes = (size_t)count * fsize;
    sp_tensor *t = sp_tensor_new(dt, ndim, shape, SP_CPU);
    if (!t) return sp_last_status();
    uint8_t *p = sp_tensor_data(t);
    size_t got;
    st = data_src_read(s, p, nbytes, &got);
    if (st == SP_OK && got < nbytes)
        st = sp_error(SP_ERR_FORMAT,
                      "%s: truncated IDX file: the header promises %zu bytes of data, found %zu",
                      s->name, nbytes, got);
    if (st == SP_OK) {
        uint8_t extra;
        st = data_src_read(s, &extra, 1, &got);
        if (st == SP_OK && got)
            st = sp_error(SP_ERR_FORMAT,
                          "%s: trailing data after the %zu bytes the IDX header promises",
                          s->name, nbytes);
    }
    if (st != SP_OK) {
        sp_tensor_release(t);
        return st;
    }
    idx_swap_bytes(p, (size_t)count, fsize);
    if (magic[2] == 0x0B) /* widen int16 -> int32 in place, from the end */
        for (size_t i = (size_t)count; i-- > 0;) {
            int16_t v;
            memcpy(&v, p + 2 * i, 2);
            int32_t w = v;
            memcpy(p + 4 * i, &w, 4);
        }
    *out = t;
    return SP_OK;
}

sp_status sp_idx_load(const char *path, sp_tensor **out) {
    if (!out) return sp_error(SP_ERR_ARG, "idx_load: NULL output");
    *out = NULL;
    if (!path) return sp_error(SP_ERR_ARG, "idx_load: NULL path");
    data_src s;
    sp_status st = data_src_open_file(&s, path);
    if (st == SP_OK) st = idx_decode(&s, out);
    data_src_close(&s);
    return st;
}

sp_status sp_idx_load_mem(const void *data, size_t size, const char *name, sp_tensor **out) {
    if (!out) return sp_error(SP_ERR_ARG, "idx_load_mem: NULL output");
    *out = NULL;
    data_src s;
    data_src_open_mem(&s, data, size, name);
    sp_status st = idx_decode(&s, out);
    data_src_close(&s);
    return st;
}

sp_status sp_idx_save(const char *path, const sp_tensor *t) {
    if (!path || !t) return sp_error(SP_ERR_ARG, "idx_save: NULL argument");
    int code;
    switch (t->dtype) {
    case SP_U8: code = 0x08; break;
    case SP_I8: code = 0x09; break;
    case SP_I32: code = 0x0C; break;
    case SP_F32: code = 0x0D; break;
    case SP_F64: code = 0x0E; break;
    default:
        return sp_error(SP_ERR_DTYPE, "idx_save: IDX cannot hold %s", sp_dtype_name(t->dtype));
    }
    if (t->buf->device.type != SP_DEVICE_CPU)
        return sp_error(SP_ERR_DEVICE, "idx_save: the tensor is not on the CPU");
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > (int64_t)UINT32_MAX)
            return sp_error(SP_ERR_SHAPE, "idx_save: dimension %d (%lld) does not fit IDX's 32 bits",
                            i, (long long)t->shape[i]);
    sp_tensor *c;
    sp_status st = sp_tensor_contiguous((sp_tensor *)t, &c);
    if (st != SP_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        sp_tensor_release(c);
        return sp_error(SP_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    uint8_t head[4 + 4 * SP_MAX_DIMS] = {0, 0, (uint8_t)code, (uint8_t)t->ndim};
    for (int i = 0; i < t->ndim; i++) {
        uint32_t d = (uint32_t)t->shape[i];
        head[4 + 4 * i] = (uint8_t)(d >> 24);
        head[5 + 4 * i] = (uint8_t)(d >> 16);
        head[6 + 4 * i] = (uint8_t)(d >> 8);
        head[7 + 4 * i] = (uint8_t)d;
    }
    int ok = fwrite(head, 1, 4 + 4 * (size_t)t->ndim, f) == 4 + 4 * (size_t)t->ndim;
    size_t item = sp_dtype_size(t->dtype), n = (size_t)sp_tensor_numel(c);
    const uint8_t *p = sp_tensor_data(c);
    uint8_t chunk[4096];
    for (size_t i = 0; ok && i < n;) {
        size_t k = n - i < sizeof chunk / item ? n - i : sizeof chunk / item;
        memcpy(chunk, p + i * item, k * item);
        idx_swap_bytes(chunk, k, item);
        ok = fwrite(chunk, item, k, f) == k;
        i += k;
    }
    sp_tensor_release(c);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return sp_error(SP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return SP_OK;
}

/* ---- MNIST ---- */

/* Finds <dir>/<stem> with one of MNIST's spellings and an optional .gz;
 * writes the path into buf.  Returns 1 when found. */
static int mnist_find(const char *dir, const char *prefix, const char *kind, char *buf,
                      size_t n) {
    static const char *const seps[] = {"-", "."};
    static const char *const exts[] = {"", ".gz"};
    for (int s = 0; s < 2; s++)
        for (int e = 0; e < 2; e++) {
            snprintf(buf, n, "%s/%s-%s%sidx%s-ubyte%s", dir, prefix, kind, seps[s],
                     kind[0] == 'i' ? "3" : "1", exts[e]);
            FILE *f = fopen(buf, "rb");
            if (f) {
                fclose(f);
                return 1;
            }
        }
    return 0;
}

sp_status sp_mnist_load(const char *dir, const char *usage, sp_tensor **images,
                        sp_tensor **labels) {
    if (!images || !labels) return sp_error(SP_ERR_ARG, "mnist_load: NULL output");
    *images = *labels = NULL;
    if (!dir || !usage) return sp_error(SP_ERR_ARG, "mnist_load: NULL directory or usage");
    const char *prefix;
    if (!strcmp(usage, "train")) prefix = "train";
    else if (!strcmp(usage, "test")) prefix = "t10k";
    else
        return sp_error(SP_ERR_ARG, "mnist_load: usage must be \"train\" or \"test\", not \"%s\"",
                        usage);
    size_t plen = strlen(dir) + 64;
    char *ipath = malloc(plen), *lpath = malloc(plen);
    sp_tensor *im = NULL, *lb = NULL;
    sp_status st = SP_OK;
    if (!ipath || !lpath) {
        st = sp_error(SP_ERR_NOMEM, "mnist_load: out of memory");
        goto done;
    }
    if (!mnist_find(dir, prefix, "images", ipath, plen) ||
        !mnist_find(dir, prefix, "labels", lpath, plen)) {
        st = sp_error(SP_ERR_IO,
                      "%s: no MNIST %s files here (looked for %s-images-idx3-ubyte and "
                      "%s-labels-idx1-ubyte, with or without .gz)",
                      dir, usage, prefix, prefix);
        goto done;
    }
    if ((st = sp_idx_load(ipath, &im)) != SP_OK) goto done;
    if ((st = sp_idx_load(lpath, &lb)) != SP_OK) goto done;
    if (im->dtype != SP_U8 || im->ndim != 3) {
        char sh[160];
        st = sp_error(SP_ERR_FORMAT, "%s: MNIST images must be uint8 (N, rows, cols), found %s %s",
                      ipath, sp_dtype_name(im->dtype), sp_shape_str(im->ndim, im->shape, sh, sizeof sh));
        goto done;
    }
    if (lb->dtype != SP_U8 || lb->ndim != 1) {
        char sh[160];
        st = sp_error(SP_ERR_FORMAT, "%s: MNIST labels must be uint8 (N,), found %s %s", lpath,
                      sp_dtype_name(lb->dtype), sp_shape_str(lb->ndim, lb->shape, sh, sizeof sh));
        goto done;
    }
    if (im->shape[0] != lb->shape[0]) {
        st = sp_error(SP_ERR_FORMAT, "%s: %lld labels for %lld images in %s", lpath,
                      (long long)lb->shape[0], (long long)im->shape[0], ipath);
        goto done;
    }
    *images = im;
    *labels = lb;
    im = lb = NULL;
done:
    sp_tensor_release(im);
    sp_tensor_release(lb);
    free(ipath);
    free(lpath);
    return st;
}
