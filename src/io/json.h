/*
 * json.h -- the small JSON reader and writer that the checkpoint code
 * needs (safetensors headers), written for untrusted input.
 *
 * io_json_parse builds a tree of io_json values from a byte range that
 * need not be NUL-terminated.  It accepts exactly RFC 8259 JSON (no
 * comments, no trailing commas, no NaN), with a nesting limit, and reports
 * the first problem with its byte offset.  Integers that fit uint64 are
 * kept exactly (is_uint, u) because safetensors offsets are 64-bit; every
 * number also has its double value.  Strings are decoded to UTF-8 with
 * \u escapes (surrogate pairs joined); an embedded NUL makes the string
 * unusable as a C string, so it is rejected.
 */
#ifndef SPORE_IO_JSON_H
#define SPORE_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "spore/core.h"

typedef enum io_json_kind {
    IO_JSON_NULL,
    IO_JSON_BOOL,
    IO_JSON_NUMBER,
    IO_JSON_STRING,
    IO_JSON_ARRAY,
    IO_JSON_OBJECT
} io_json_kind;

typedef struct io_json io_json;
struct io_json {
    io_json_kind kind;
    int b;            /* BOOL */
    double num;       /* NUMBER */
    int is_uint;      /* NUMBER: a non-negative integer that fits uint64 */
    uint64_t u;
    char *s;          /* STRING (NUL-terminated UTF-8) */
    size_t n;         /* ARRAY / OBJECT: number of items */
    io_json *items;   /* ARRAY / OBJECT values */
    char **keys;      /* OBJECT keys, in file order (duplicates kept) */
};

/* Parses text[0..len).  On success *out is a new tree (io_json_free).  On
 * failure SP_ERR_FORMAT: "<name>: bad JSON at byte K: <what>". */
sp_status io_json_parse(const char *text, size_t len, const char *name, io_json **out);
void io_json_free(io_json *v); /* NULL is fine */
/* The value of `key` in an object (the first if repeated), or NULL. */
const io_json *io_json_get(const io_json *obj, const char *key);

/* A growing string for writing JSON.  Functions set `failed` on no memory
 * instead of returning it, so a writer checks once at the end. */
typedef struct io_buf {
    char *p;
    size_t n, cap;
    int failed;
} io_buf;

void io_buf_put(io_buf *b, const char *s, size_t n);
void io_buf_puts(io_buf *b, const char *s);
void io_buf_printf(io_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Writes s as a JSON string literal, quotes included. */
void io_buf_put_json_string(io_buf *b, const char *s);

#endif
