/*
 * safetensors.c -- checkpoints as safetensors files: an atomic writer and
 * a loader that trusts nothing it reads.
 *
 * Writing: the header is built in memory (tensors in the caller's order,
 * data laid end to end, the JSON padded with spaces to a multiple of 8 as
 * the reference implementation does, so every tensor's data is 8-byte
 * aligned in the file); then header and data go to a temporary file made
 * with mkstemp next to the target, which is fsync'd, renamed over the
 * target and followed by an fsync of the directory so the rename itself
 * is durable.  Any failure removes the temporary file and leaves the
 * target as it was; a crash mid-write leaves at worst a stray temporary
 * file, never a damaged checkpoint under the final name.
 *
 * Loading: the sizes come first.  The 8-byte header length is checked
 * against the file size (and a 100 MB cap) before the header is read; the
 * JSON is parsed strictly; each entry's dtype, shape and offsets are
 * checked (shape product * itemsize == end - begin, with overflow checks);
 * the entries sorted by offset must tile the data exactly, with no
 * overlap, hole or excess.  Only then is memory allocated, tensor by
 * tensor, and every byte allocated is a byte the file provably holds.
 * Reading from memory (the fuzz target) and from a file share this code
 * through one read_at callback.
 *
 * Byte order: safetensors is little-endian and so is every host Spore
 * builds for; a big-endian host fails at compile time rather than writing
 * files nobody else can read.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "io/json.h"
#include "spore/io.h"
#include "spore/ops.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER (100u << 20)

static const struct {
    const char *name;
    sp_dtype dtype;
} st_dtypes[] = {
    {"F32", SP_F32}, {"F64", SP_F64}, {"F16", SP_F16}, {"BF16", SP_BF16}, {"I64", SP_I64},
    {"I32", SP_I32}, {"I8", SP_I8},   {"U8", SP_U8},   {"BOOL", SP_BOOL},
};

static const char *st_dtype_name(sp_dtype d) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == d) return st_dtypes[i].name;
    return NULL;
}

/* ---- test hook: fail (or die) after writing this many bytes ---- */

static int64_t io_fail_at = -1;
static int io_fail_crash;

void io_test_fail_after(int64_t nbytes, int crash) {
    io_fail_at = nbytes;
    io_fail_crash = crash;
}

/* ---- saving ---- */

static int st_write_all(int fd, const void *p, size_t n, int64_t *written) {
    const char *c = p;
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        if (io_fail_at >= 0 && *written + (int64_t)k > io_fail_at) {
            k = (size_t)(io_fail_at - *written);
            if (k && write(fd, c, k) != (ssize_t)k) return 0;
            if (io_fail_crash) _exit(3); /* a crash: no cleanup at all */
            errno = ENOSPC;
            return 0;
        }
        ssize_t w = write(fd, c, k);
        if (w < 0) {
            if (errno == EINTR) continue;
            return 0;
        }
        c += w;
        n -= (size_t)w;
        *written += w;
    }
    return 1;
}

/* fsync of the directory holding `path`, so a rename survives a crash. */
static int st_sync_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return 0;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    free(copy);
    if (fd < 0) return 0;
    int ok = fsync(fd) == 0 || errno == EINVAL; /* some file systems cannot */
    close(fd);
    return ok;
}

sp_status sp_checkpoint_save(const char *path, int n, const char *const *names,
                             sp_tensor *const *tensors, int nmeta,
                             const char *const *meta_keys, const char *const *meta_values) {
    if (!path || !*path) return sp_error(SP_ERR_ARG, "checkpoint_save: no path");
    if (n < 0 || (n && (!names || !tensors)) || nmeta < 0 ||
        (nmeta && (!meta_keys || !meta_values)))
        return sp_error(SP_ERR_ARG, "%s: checkpoint_save: bad tensor or metadata lists", path);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !*names[i] || !tensors[i])
            return sp_error(SP_ERR_ARG, "%s: checkpoint_save: entry %d has no name or tensor", path,
                            i);
        if (!strcmp(names[i], "__metadata__"))
            return sp_error(SP_ERR_ARG, "%s: checkpoint_save: \"__metadata__\" is reserved", path);
        if (!st_dtype_name(tensors[i]->dtype))
            return sp_error(SP_ERR_DTYPE, "%s: checkpoint_save: tensor \"%s\" has dtype %s", path,
                            names[i], sp_dtype_name(tensors[i]->dtype));
        for (int k = 0; k < i; k++)
            if (!strcmp(names[i], names[k]))
                return sp_error(SP_ERR_ARG, "%s: checkpoint_save: two tensors named \"%s\"", path,
                                names[i]);
    }
    for (int i = 0; i < nmeta; i++) {
        if (!meta_keys[i] || !meta_values[i])
            return sp_error(SP_ERR_ARG, "%s: checkpoint_save: metadata entry %d is NULL", path, i);
        for (int k = 0; k < i; k++)
            if (!strcmp(meta_keys[i], meta_keys[k]))
                return sp_error(SP_ERR_ARG, "%s: checkpoint_save: two metadata keys \"%s\"", path,
                                meta_keys[i]);
    }

    sp_status st = SP_OK;
    sp_tensor **host = calloc((size_t)n + 1, sizeof *host);
    io_buf h = {0};
    char *tmp = NULL;
    int fd = -1;
    if (!host) return sp_error(SP_ERR_NOMEM, "%s: checkpoint_save: out of memory", path);
    /* contiguous CPU copies (views of the caller's tensors when possible) */
    for (int i = 0; i < n && st == SP_OK; i++) {
        sp_tensor *t = tensors[i], *cpu = NULL;
        if (t->buf->device.type != SP_DEVICE_CPU) {
            if ((st = sp_tensor_to(t, SP_CPU, &cpu)) != SP_OK) break;
            t = cpu;
        }
        st = sp_tensor_contiguous(t, &host[i]);
        sp_tensor_release(cpu);
    }
    if (st != SP_OK) goto done;

    io_buf_put(&h, "{", 1);
    int first = 1;
    if (nmeta) {
        io_buf_puts(&h, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i) io_buf_put(&h, ",", 1);
            io_buf_put_json_string(&h, meta_keys[i]);
            io_buf_put(&h, ":", 1);
            io_buf_put_json_string(&h, meta_values[i]);
        }
        io_buf_put(&h, "}", 1);
        first = 0;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const sp_tensor *t = host[i];
        if (!first) io_buf_put(&h, ",", 1);
        first = 0;
        io_buf_put_json_string(&h, names[i]);
        io_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) io_buf_printf(&h, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        uint64_t nb = sp_tensor_nbytes(t);
        io_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                      (unsigned long long)(off + nb));
        off += nb;
    }
    io_buf_put(&h, "}", 1);
    while (!h.failed && (h.n % 8)) io_buf_put(&h, " ", 1);
    if (h.failed) {
        st = sp_error(SP_ERR_NOMEM, "%s: checkpoint_save: out of memory for the header", path);
        goto done;
    }

    size_t plen = strlen(path);
    tmp = malloc(plen + 16);
    if (!tmp) {
        st = sp_error(SP_ERR_NOMEM, "%s: checkpoint_save: out of memory", path);
        goto done;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        st = sp_error(SP_ERR_IO, "%s: cannot create a temporary file next to it: %s", path,
                      strerror(errno));
        free(tmp);
        tmp = NULL;
        goto done;
    }
    (void)fchmod(fd, 0644);
    int64_t written = 0;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    int ok = st_write_all(fd, len8, 8, &written) && st_write_all(fd, h.p, h.n, &written);
    for (int i = 0; ok && i < n; i++)
        ok = st_write_all(fd, sp_tensor_data(host[i]), sp_tensor_nbytes(host[i]), &written);
    if (!ok) {
        st = sp_error(SP_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    if (fsync(fd) != 0) {
        st = sp_error(SP_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        st = sp_error(SP_ERR_IO, "%s: close failed: %s", path, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        st = sp_error(SP_ERR_IO, "%s: cannot rename the temporary file into place: %s", path,
                      strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL; /* renamed: nothing to clean up any more */
    if (!st_sync_dir(path))
        st = sp_error(SP_ERR_IO, "%s: saved, but syncing its directory failed: %s", path,
                      strerror(errno));
done:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(h.p);
    for (int i = 0; i < n; i++) sp_tensor_release(host[i]);
    free(host);
    return st;
}

/* ---- loading ---- */

typedef struct st_reader {
    const char *name;
    uint64_t size;
    int fd;               /* a file, or -1 */
    const uint8_t *mem;   /* memory */
} st_reader;

static sp_status st_read_at(const st_reader *r, uint64_t off, void *dst, size_t n) {
    if (off > r->size || n > r->size - off)
        return sp_error(SP_ERR_FORMAT, "%s: truncated file", r->name);
    if (r->fd < 0) {
        if (n) memcpy(dst, r->mem + off, n);
        return SP_OK;
    }
    uint8_t *p = dst;
    while (n) {
        size_t k = n > (1u << 30) ? (1u << 30) : n;
        ssize_t got = pread(r->fd, p, k, (off_t)off);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return sp_error(SP_ERR_IO, "%s: read error: %s", r->name, strerror(errno));
        if (got == 0) return sp_error(SP_ERR_FORMAT, "%s: truncated file (it shrank while read)", r->name);
        p += got;
        off += (uint64_t)got;
        n -= (size_t)got;
    }
    return SP_OK;
}

typedef struct st_entry {
    const char *name;
    sp_dtype dtype;
    int ndim;
    int64_t shape[SP_MAX_DIMS];
    uint64_t begin, end;
    int index; /* position in the header */
} st_entry;

static int st_entry_cmp(const void *a, const void *b) {
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int st_str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks one header entry and fills e. */
static sp_status st_entry_parse(const st_reader *r, const char *name, const io_json *v,
                                st_entry *e) {
    if (v->kind != IO_JSON_OBJECT)
        return sp_error(SP_ERR_FORMAT, "%s: tensor \"%s\": its header entry is not an object",
                        r->name, name);
    const io_json *dt = io_json_get(v, "dtype"), *sh = io_json_get(v, "shape"),
                  *of = io_json_get(v, "data_offsets");
    if (!dt || dt->kind != IO_JSON_STRING)
        return sp_error(SP_ERR_FORMAT, "%s: tensor \"%s\": missing or non-string \"dtype\"",
                        r->name, name);
    e->dtype = SP_DTYPE_COUNT;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(dt->s, st_dtypes[i].name)) e->dtype = st_dtypes[i].dtype;
    if (e->dtype == SP_DTYPE_COUNT)
        return sp_error(SP_ERR_UNSUPPORTED,
                        "%s: tensor \"%s\": dtype \"%.32s\" is not one Spore reads (F32 F64 F16 "
                        "BF16 I64 I32 I8 U8 BOOL)",
                        r->name, name, dt->s);
    if (!sh || sh->kind != IO_JSON_ARRAY)
        return sp_error(SP_ERR_FORMAT, "%s: tensor \"%s\": missing or non-array \"shape\"", r->name,
                        name);
    if (sh->n > SP_MAX_DIMS)
        return sp_error(SP_ERR_FORMAT, "%s: tensor \"%s\": %zu dimensions, more than Spore's %d",
                        r->name, name, sh->n, SP_MAX_DIMS);
    e->ndim = (int)sh->n;
    uint64_t numel = 1;
    int big = 0;
    for (size_t d = 0; d < sh->n; d++) {
        const io_json *x = &sh->items[d];
        if (x->kind != IO_JSON_NUMBER || !x->is_uint || x->u > (uint64_t)INT64_MAX)
            return sp_error(SP_ERR_FORMAT,
                            "%s: tensor \"%s\": shape entry %zu is not a non-negative integer",
                            r->name, name, d);
        e->shape[d] = (int64_t)x->u;
        if (x->u && numel > UINT64_MAX / 8 / x->u) big = 1;
        else numel *= x->u;
    }
    if (!of || of->kind != IO_JSON_ARRAY || of->n != 2 || of->items[0].kind != IO_JSON_NUMBER ||
        of->items[1].kind != IO_JSON_NUMBER || !of->items[0].is_uint || !of->items[1].is_uint)
        return sp_error(SP_ERR_FORMAT,
                        "%s: tensor \"%s\": \"data_offsets\" must be two non-negative integers",
                        r->name, name);
    e->begin = of->items[0].u;
    e->end = of->items[1].u;
    if (e->end < e->begin)
        return sp_error(SP_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] run backwards",
                        r->name, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    uint64_t want = big ? UINT64_MAX : numel * sp_dtype_size(e->dtype);
    if (big || want != e->end - e->begin) {
        char s[160];
        return sp_error(SP_ERR_FORMAT,
                        "%s: tensor \"%s\": shape %s of %s needs %s bytes but data_offsets [%llu, "
                        "%llu] span %llu",
                        r->name, name, sp_shape_str(e->ndim, e->shape, s, sizeof s), dt->s,
                        big ? "more than 2^61" : "a different number of",
                        (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)(e->end - e->begin));
    }
    return SP_OK;
}

static sp_status st_load(const st_reader *r, sp_checkpoint **out) {
    *out = NULL;
    if (r->size < 8)
        return sp_error(SP_ERR_FORMAT, "%s: %llu bytes is too small for a safetensors file",
                        r->name, (unsigned long long)r->size);
    uint8_t len8[8];
    sp_status st = st_read_at(r, 0, len8, 8);
    if (st != SP_OK) return st;
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)len8[i] << (8 * i);
    if (hlen > r->size - 8)
        return sp_error(SP_ERR_FORMAT,
                        "%s: header length %llu is more than the %llu bytes after it (truncated "
                        "or not a safetensors file)",
                        r->name, (unsigned long long)hlen, (unsigned long long)(r->size - 8));
    if (hlen > ST_MAX_HEADER)
        return sp_error(SP_ERR_FORMAT, "%s: header length %llu is over the 100 MB limit", r->name,
                        (unsigned long long)hlen);
    if (hlen < 2)
        return sp_error(SP_ERR_FORMAT, "%s: header length %llu is too small for a JSON object",
                        r->name, (unsigned long long)hlen);
    char *text = malloc((size_t)hlen);
    if (!text) return sp_error(SP_ERR_NOMEM, "%s: out of memory for the header", r->name);
    io_json *root = NULL;
    st_entry *ents = NULL;
    char **keys = NULL;
    sp_checkpoint *c = NULL;
    if ((st = st_read_at(r, 8, text, (size_t)hlen)) != SP_OK) goto done;
    if (text[0] != '{') {
        st = sp_error(SP_ERR_FORMAT, "%s: the header does not start with '{'", r->name);
        goto done;
    }
    if ((st = io_json_parse(text, (size_t)hlen, r->name, &root)) != SP_OK) goto done;
    if (root->kind != IO_JSON_OBJECT) {
        st = sp_error(SP_ERR_FORMAT, "%s: the header is not a JSON object", r->name);
        goto done;
    }
    uint64_t data_size = r->size - 8 - hlen;
    c = calloc(1, sizeof *c);
    ents = calloc(root->n + 1, sizeof *ents);
    if (!c || !ents) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", r->name);
        goto done;
    }
    size_t ne = 0;
    const io_json *meta = NULL;
    /* duplicate names: sorted, so a hostile header of a million keys costs
     * n log n, not n^2 */
    keys = malloc((root->n + 1) * sizeof *keys);
    if (!keys) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", r->name);
        goto done;
    }
    if (root->n) memcpy(keys, root->keys, root->n * sizeof *keys);
    qsort(keys, root->n, sizeof *keys, st_str_cmp);
    for (size_t i = 1; i < root->n; i++)
        if (!strcmp(keys[i - 1], keys[i])) {
            st = sp_error(SP_ERR_FORMAT, "%s: the header names \"%s\" twice", r->name, keys[i]);
            goto done;
        }
    for (size_t i = 0; i < root->n; i++) {
        const char *key = root->keys[i];
        if (!strcmp(key, "__metadata__")) {
            meta = &root->items[i];
            continue;
        }
        if ((st = st_entry_parse(r, key, &root->items[i], &ents[ne])) != SP_OK) goto done;
        ents[ne].name = key;
        ents[ne].index = (int)ne;
        ne++;
    }
    if (ne > (size_t)INT32_MAX) {
        st = sp_error(SP_ERR_FORMAT, "%s: too many tensors", r->name);
        goto done;
    }
    /* the tensors must tile [0, data_size) exactly */
    qsort(ents, ne, sizeof *ents, st_entry_cmp);
    uint64_t at = 0;
    for (size_t i = 0; i < ne; i++) {
        if (ents[i].end > data_size) {
            st = sp_error(SP_ERR_FORMAT,
                          "%s: tensor \"%s\": data_offsets [%llu, %llu] lie outside the %llu bytes "
                          "of data (truncated file?)",
                          r->name, ents[i].name, (unsigned long long)ents[i].begin,
                          (unsigned long long)ents[i].end, (unsigned long long)data_size);
            goto done;
        }
        if (ents[i].begin < at) {
            st = sp_error(SP_ERR_FORMAT, "%s: tensors \"%s\" and \"%s\" overlap in the data",
                          r->name, ents[i - 1].name, ents[i].name);
            goto done;
        }
        if (ents[i].begin > at) {
            st = sp_error(SP_ERR_FORMAT, "%s: bytes [%llu, %llu) of the data belong to no tensor",
                          r->name, (unsigned long long)at, (unsigned long long)ents[i].begin);
            goto done;
        }
        at = ents[i].end;
    }
    if (at != data_size) {
        st = sp_error(SP_ERR_FORMAT,
                      "%s: %llu bytes of data follow the header but the tensors cover %llu",
                      r->name, (unsigned long long)data_size, (unsigned long long)at);
        goto done;
    }
    if (meta) {
        if (meta->kind != IO_JSON_OBJECT) {
            st = sp_error(SP_ERR_FORMAT, "%s: \"__metadata__\" is not an object", r->name);
            goto done;
        }
        for (size_t i = 0; i < meta->n; i++)
            if (meta->items[i].kind != IO_JSON_STRING) {
                st = sp_error(SP_ERR_FORMAT, "%s: metadata \"%s\" is not a string", r->name,
                              meta->keys[i]);
                goto done;
            }
        c->meta_keys = calloc(meta->n + 1, sizeof *c->meta_keys);
        c->meta_values = calloc(meta->n + 1, sizeof *c->meta_values);
        if (!c->meta_keys || !c->meta_values) {
            st = sp_error(SP_ERR_NOMEM, "%s: out of memory", r->name);
            goto done;
        }
        for (size_t i = 0; i < meta->n; i++) {
            c->meta_keys[i] = strdup(meta->keys[i]);
            c->meta_values[i] = strdup(meta->items[i].s);
            c->nmeta = (int)i + 1;
            if (!c->meta_keys[i] || !c->meta_values[i]) {
                st = sp_error(SP_ERR_NOMEM, "%s: out of memory", r->name);
                goto done;
            }
        }
    }
    c->names = calloc(ne + 1, sizeof *c->names);
    c->tensors = calloc(ne + 1, sizeof *c->tensors);
    if (!c->names || !c->tensors) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", r->name);
        goto done;
    }
    c->n = (int)ne;
    for (size_t i = 0; i < ne; i++) { /* data in file order, results in header order */
        const st_entry *e = &ents[i];
        sp_tensor *t = sp_tensor_new(e->dtype, e->ndim, e->shape, SP_CPU);
        c->names[e->index] = strdup(e->name);
        c->tensors[e->index] = t;
        if (!t || !c->names[e->index]) {
            st = t ? sp_error(SP_ERR_NOMEM, "%s: out of memory", r->name) : sp_last_status();
            goto done;
        }
        if ((st = st_read_at(r, 8 + hlen + e->begin, sp_tensor_data(t), (size_t)(e->end - e->begin))) !=
            SP_OK)
            goto done;
        if (e->dtype == SP_BOOL) {
            uint8_t *p = sp_tensor_data(t);
            for (uint64_t k = 0; k < e->end - e->begin; k++)
                if (p[k] > 1) {
                    st = sp_error(SP_ERR_FORMAT, "%s: tensor \"%s\": bool byte %u at element %llu",
                                  r->name, e->name, p[k], (unsigned long long)k);
                    goto done;
                }
        }
    }
    *out = c;
    c = NULL;
done:
    sp_checkpoint_free(c);
    free(ents);
    free(keys);
    io_json_free(root);
    free(text);
    return st;
}

sp_status sp_checkpoint_load(const char *path, sp_checkpoint **out) {
    if (!out) return sp_error(SP_ERR_ARG, "checkpoint_load: NULL output");
    *out = NULL;
    if (!path) return sp_error(SP_ERR_ARG, "checkpoint_load: NULL path");
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sp_error(SP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sp_error(SP_ERR_IO, "%s: not a regular file", path);
    }
    st_reader r = {path, (uint64_t)sb.st_size, fd, NULL};
    sp_status st = st_load(&r, out);
    close(fd);
    return st;
}

sp_status sp_checkpoint_load_mem(const void *data, size_t size, const char *name,
                                 sp_checkpoint **out) {
    if (!out) return sp_error(SP_ERR_ARG, "checkpoint_load_mem: NULL output");
    *out = NULL;
    if (!data && size) return sp_error(SP_ERR_ARG, "checkpoint_load_mem: NULL data");
    st_reader r = {name ? name : "<memory>", data ? size : 0, -1, data};
    return st_load(&r, out);
}

void sp_checkpoint_free(sp_checkpoint *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        if (c->names) free(c->names[i]);
        if (c->tensors) sp_tensor_release(c->tensors[i]);
    }
    for (int i = 0; i < c->nmeta; i++) {
        free(c->meta_keys[i]);
        free(c->meta_values[i]);
    }
    free(c->names);
    free(c->tensors);
    free(c->meta_keys);
    free(c->meta_values);
    free(c);
}

sp_tensor *sp_checkpoint_find(const sp_checkpoint *c, const char *name) {
    for (int i = 0; c && name && i < c->n; i++)
        if (c->names[i] && !strcmp(c->names[i], name)) return c->tensors[i];
    return NULL;
}

const char *sp_checkpoint_meta(const sp_checkpoint *c, const char *key) {
    for (int i = 0; c && key && i < c->nmeta; i++)
        if (!strcmp(c->meta_keys[i], key)) return c->meta_values[i];
    return NULL;
}
