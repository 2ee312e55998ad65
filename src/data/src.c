/*
 * src.c -- the byte source under every dataset loader: a file or a block
 * of memory, read plainly or through zlib's inflate.
 *
 * Compression is detected from the first bytes, never from the file name:
 * 1f 8b is gzip; a first byte 0x78 whose 16-bit big-endian header is a
 * multiple of 31 is zlib.  Both go through one inflate stream opened with
 * windowBits 15 + 32 (automatic header detection).  Concatenated gzip
 * members (what `cat a.gz b.gz` makes) are read as one stream, as gunzip
 * does; any other bytes after the last member are an error.
 *
 * data_src_bound gives the most bytes the source could still produce:
 * for a plain source the unread bytes, for a compressed one the whole
 * input times 1032 (deflate's largest expansion ratio) plus a little.  The
 * loaders compare a header's claims against it before allocating, which is
 * what keeps a 40-byte file from asking for terabytes.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"

static int src_looks_compressed(const uint8_t *b, size_t n) {
    if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return 1;
    if (n >= 2 && b[0] == 0x78 && ((b[0] << 8) | b[1]) % 31 == 0) return 1;
    return 0;
}

static sp_status src_start_inflate(data_src *s) {
    memset(&s->z, 0, sizeof s->z);
    if (inflateInit2(&s->z, 15 + 32) != Z_OK)
        return sp_error(SP_ERR_NOMEM, "%s: cannot start zlib", s->name);
    s->z_live = 1;
    s->gz = 1;
    return SP_OK;
}

sp_status data_src_open_file(data_src *s, const char *path) {
    memset(s, 0, offsetof(data_src, inbuf));
    s->name = path;
    s->f = fopen(path, "rb");
    if (!s->f) return sp_error(SP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(s->f), &st) != 0)
        return sp_error(SP_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return sp_error(SP_ERR_IO, "%s: is a directory", path);
    s->raw_size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
    uint8_t head[2];
    size_t k = fread(head, 1, 2, s->f);
    if (ferror(s->f)) return sp_error(SP_ERR_IO, "%s: read error: %s", path, strerror(errno));
    rewind(s->f);
    if (src_looks_compressed(head, k)) return src_start_inflate(s);
    return SP_OK;
}

void data_src_open_mem(data_src *s, const void *data, size_t n, const char *name) {
    memset(s, 0, offsetof(data_src, inbuf));
    s->name = name ? name : "<memory>";
    s->mem = data;
    s->mem_n = data ? n : 0;
    s->raw_size = s->mem_n;
    if (src_looks_compressed(s->mem, s->mem_n) && src_start_inflate(s) != SP_OK) {
        /* out of memory for zlib's state: read as plain bytes, which then
         * fail the format checks with a message */
        s->gz = 0;
    }
}

void data_src_close(data_src *s) {
    if (s->z_live) inflateEnd(&s->z);
    s->z_live = 0;
    if (s->f) fclose(s->f);
    s->f = NULL;
}

/* Plain bytes from the file or memory. */
static sp_status src_raw_read(data_src *s, void *dst, size_t n, size_t *got) {
    if (s->f) {
        *got = fread(dst, 1, n, s->f);
        if (*got < n && ferror(s->f))
            return sp_error(SP_ERR_IO, "%s: read error: %s", s->name, strerror(errno));
        return SP_OK;
    }
    size_t left = s->mem_n - s->mem_pos;
    *got = n < left ? n : left;
    if (*got) memcpy(dst, s->mem + s->mem_pos, *got);
    s->mem_pos += *got;
    return SP_OK;
}

/* Refills zlib's input; sets *eof when the raw bytes are exhausted. */
static sp_status src_refill(data_src *s, int *eof) {
    *eof = 0;
    if (s->z.avail_in) return SP_OK;
    if (!s->f) { /* memory: hand zlib the rest directly, in int-sized steps */
        size_t left = s->mem_n - s->mem_pos, k = left > (1u << 30) ? (1u << 30) : left;
        if (!k) {
            *eof = 1;
            return SP_OK;
        }
        s->z.next_in = (Bytef *)(uintptr_t)(s->mem + s->mem_pos);
        s->z.avail_in = (uInt)k;
        s->mem_pos += k;
        return SP_OK;
    }
    size_t got;
    sp_status st = src_raw_read(s, s->inbuf, sizeof s->inbuf, &got);
    if (st != SP_OK) return st;
    if (!got) *eof = 1;
    s->z.next_in = s->inbuf;
    s->z.avail_in = (uInt)got;
    return SP_OK;
}

static sp_status src_inflate_read(data_src *s, uint8_t *dst, size_t n, size_t *got) {
    *got = 0;
    while (*got < n && !s->z_end) {
        int eof;
        sp_status st = src_refill(s, &eof);
        if (st != SP_OK) return st;
        if (eof)
            return sp_error(SP_ERR_FORMAT, "%s: truncated compressed stream (it ends mid-way)",
                            s->name);
        size_t want = n - *got;
        s->z.next_out = dst + *got;
        s->z.avail_out = want > (1u << 30) ? (1u << 30) : (uInt)want;
        uInt before = s->z.avail_out;
        int zr = inflate(&s->z, Z_NO_FLUSH);
        *got += before - s->z.avail_out;
        if (zr == Z_STREAM_END) {
            /* another gzip member may follow; anything else is garbage */
            st = src_refill(s, &eof);
            if (st != SP_OK) return st;
            if (eof) {
                s->z_end = 1;
                break;
            }
            if (s->z.avail_in >= 1 && s->z.next_in[0] != 0x1f)
                return sp_error(SP_ERR_FORMAT, "%s: unexpected bytes after the compressed stream",
                                s->name);
            inflateReset(&s->z);
        } else if (zr == Z_BUF_ERROR) {
            if (s->z.avail_out == 0) break; /* full: the caller asked for less */
            /* no progress with input available is impossible; no input is
             * handled by the refill on the next turn */
        } else if (zr != Z_OK) {
            return sp_error(SP_ERR_FORMAT, "%s: damaged compressed data (zlib: %s)", s->name,
                            s->z.msg ? s->z.msg : "error");
        }
    }
    return SP_OK;
}

sp_status data_src_read(data_src *s, void *dst, size_t n, size_t *got) {
    if (s->gz) return src_inflate_read(s, dst, n, got);
    return src_raw_read(s, dst, n, got);
}

uint64_t data_src_bound(const data_src *s) {
    if (s->gz) {
        if (s->z_end) return 0;
        uint64_t in = s->raw_size;
        return in > (UINT64_MAX - 4096) / 1032 ? UINT64_MAX : in * 1032 + 4096;
    }
    if (s->f) {
        long pos = ftell(s->f);
        return pos >= 0 && (uint64_t)pos <= s->raw_size ? s->raw_size - (uint64_t)pos : 0;
    }
    return s->mem_n - s->mem_pos;
}
