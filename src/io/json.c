/*
 * json.c -- a strict recursive-descent JSON parser and a string builder.
 *
 * The parser reads a byte range with an explicit end (a header is not
 * NUL-terminated in the file) and never reads past it.  Its trust model
 * is "the bytes are hostile": every allocation is proportional to bytes
 * already consumed (a container grows by doubling as items arrive), the
 * nesting depth is capped so recursion cannot exhaust the stack, and the
 * first error stops the parse with the offset of the offending byte.
 *
 * Numbers follow the JSON grammar exactly (no leading zeros, no '+', no
 * bare '.'); the double comes from strtod on a bounded copy, and a
 * non-negative integer literal is also accumulated exactly into a uint64
 * when it fits, so offsets beyond 2^53 survive.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

#define JSON_MAX_DEPTH 64

typedef struct jp {
    const char *p, *end, *start, *name;
    sp_status st;
} jp;

static int jp_fail(jp *j, const char *what) {
    if (j->st == SP_OK)
        j->st = sp_error(SP_ERR_FORMAT, "%s: bad JSON at byte %zu: %s", j->name,
                         (size_t)(j->p - j->start), what);
    return 0;
}

static void jp_ws(jp *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int jp_value(jp *j, io_json *v, int depth);

static void buf_grow(io_buf *b, size_t need) {
    if (b->failed || b->n + need + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + need + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

void io_buf_put(io_buf *b, const char *s, size_t n) {
    buf_grow(b, n);
    if (b->failed) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void io_buf_puts(io_buf *b, const char *s) { io_buf_put(b, s, strlen(s)); }

void io_buf_printf(io_buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof tmp) {
        b->failed = 1; /* only short numeric pieces are printed this way */
        return;
    }
    io_buf_put(b, tmp, (size_t)k);
}

void io_buf_put_json_string(io_buf *b, const char *s) {
    io_buf_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"') io_buf_put(b, "\\\"", 2);
        else if (*c == '\\') io_buf_put(b, "\\\\", 2);
        else if (*c == '\n') io_buf_put(b, "\\n", 2);
        else if (*c == '\t') io_buf_put(b, "\\t", 2);
        else if (*c == '\r') io_buf_put(b, "\\r", 2);
        else if (*c < 0x20) io_buf_printf(b, "\\u%04x", *c);
        else io_buf_put(b, (const char *)c, 1);
    }
    io_buf_put(b, "\"", 1);
}

static int jp_hex4(jp *j, unsigned *out) {
    if (j->end - j->p < 4) return jp_fail(j, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return jp_fail(j, "bad hex digit in \\u escape");
    }
    j->p += 4;
    *out = v;
    return 1;
}

static void utf8_put(io_buf *b, unsigned cp) {
    char o[4];
    size_t n;
    if (cp < 0x80) o[0] = (char)cp, n = 1;
    else if (cp < 0x800) o[0] = (char)(0xC0 | (cp >> 6)), o[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        o[0] = (char)(0xE0 | (cp >> 12)), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        o[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        o[0] = (char)(0xF0 | (cp >> 18)), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    io_buf_put(b, o, n);
}

/* A string literal at j->p (the opening quote); *out is malloc'd. */
static int jp_string(jp *j, char **out) {
    io_buf b = {0};
    j->p++; /* the quote */
    for (;;) {
        if (j->p >= j->end) {
            free(b.p);
            return jp_fail(j, "unterminated string");
        }
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            break;
        }
        if (c < 0x20) {
            free(b.p);
            return jp_fail(j, "control character in a string");
        }
        if (c != '\\') {
            const char *q = j->p;
            while (q < j->end && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
            io_buf_put(&b, j->p, (size_t)(q - j->p));
            j->p = q;
            continue;
        }
        j->p++;
        if (j->p >= j->end) {
            free(b.p);
            return jp_fail(j, "unterminated escape");
        }
        char e = *j->p++;
        switch (e) {
        case '"': io_buf_put(&b, "\"", 1); break;
        case '\\': io_buf_put(&b, "\\", 1); break;
        case '/': io_buf_put(&b, "/", 1); break;
        case 'b': io_buf_put(&b, "\b", 1); break;
        case 'f': io_buf_put(&b, "\f", 1); break;
        case 'n': io_buf_put(&b, "\n", 1); break;
        case 'r': io_buf_put(&b, "\r", 1); break;
        case 't': io_buf_put(&b, "\t", 1); break;
        case 'u': {
            unsigned cp;
            if (!jp_hex4(j, &cp)) {
                free(b.p);
                return 0;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') {
                    free(b.p);
                    return jp_fail(j, "unpaired surrogate in \\u escape");
                }
                j->p += 2;
                if (!jp_hex4(j, &lo)) {
                    free(b.p);
                    return 0;
                }
                if (lo < 0xDC00 || lo > 0xDFFF) {
                    free(b.p);
                    return jp_fail(j, "unpaired surrogate in \\u escape");
                }
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                free(b.p);
                return jp_fail(j, "unpaired surrogate in \\u escape");
            } else if (cp == 0) {
                free(b.p);
                return jp_fail(j, "\\u0000 in a string");
            }
            utf8_put(&b, cp);
            break;
        }
        default:
            j->p--;
            free(b.p);
            return jp_fail(j, "unknown escape");
        }
    }
    if (!b.p) io_buf_put(&b, "", 0);
    if (b.failed) {
        free(b.p);
        if (j->st == SP_OK) j->st = sp_error(SP_ERR_NOMEM, "%s: out of memory reading JSON", j->name);
        return 0;
    }
    *out = b.p;
    return 1;
}

static int jp_number(jp *j, io_json *v) {
    const char *s = j->p;
    int neg = 0, isint = 1;
    if (j->p < j->end && *j->p == '-') neg = 1, j->p++;
    if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) return jp_fail(j, "bad number");
    uint64_t u = 0;
    int fits = 1;
    if (*j->p == '0') {
        j->p++;
    } else {
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
            unsigned d = (unsigned)(*j->p - '0');
            if (u > (UINT64_MAX - d) / 10) fits = 0;
            else u = u * 10 + d;
            j->p++;
        }
    }
    if (j->p < j->end && *j->p == '.') {
        isint = 0;
        j->p++;
        if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) return jp_fail(j, "bad fraction");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        isint = 0;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (j->p >= j->end || !(*j->p >= '0' && *j->p <= '9')) return jp_fail(j, "bad exponent");
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    }
    size_t n = (size_t)(j->p - s);
    char tmp[64];
    if (n >= sizeof tmp) { /* an absurdly long literal: its double is all we need */
        v->kind = IO_JSON_NUMBER;
        v->num = neg ? -1e308 : 1e308;
        v->is_uint = 0;
        return 1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    v->kind = IO_JSON_NUMBER;
    v->num = strtod(tmp, NULL);
    v->is_uint = isint && !neg && fits;
    v->u = v->is_uint ? u : 0;
    return 1;
}

static int jp_literal(jp *j, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return jp_fail(j, "unexpected character");
    j->p += n;
    return 1;
}

/* Appends an item slot to a container; returns it zeroed, or NULL. */
static io_json *jp_push(jp *j, io_json *v, size_t *cap, int with_key) {
    if (v->n == *cap) {
        size_t c = *cap ? *cap * 2 : 4;
        io_json *items = realloc(v->items, c * sizeof *items);
        if (!items) goto nomem;
        v->items = items;
        if (with_key) {
            char **keys = realloc(v->keys, c * sizeof *keys);
            if (!keys) goto nomem;
            v->keys = keys;
        }
        *cap = c;
    }
    memset(&v->items[v->n], 0, sizeof v->items[0]);
    if (with_key) v->keys[v->n] = NULL;
    return &v->items[v->n];
nomem:
    if (j->st == SP_OK) j->st = sp_error(SP_ERR_NOMEM, "%s: out of memory reading JSON", j->name);
    return NULL;
}

static int jp_value(jp *j, io_json *v, int depth) {
    jp_ws(j);
    if (j->p >= j->end) return jp_fail(j, "unexpected end of input");
    if (depth > JSON_MAX_DEPTH) return jp_fail(j, "nesting deeper than 64");
    char c = *j->p;
    if (c == '{' || c == '[') {
        int obj = c == '{';
        char close = obj ? '}' : ']';
        size_t cap = 0;
        v->kind = obj ? IO_JSON_OBJECT : IO_JSON_ARRAY;
        j->p++;
        jp_ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 1;
        }
        for (;;) {
            jp_ws(j);
            char *key = NULL;
            if (obj) {
                if (j->p >= j->end || *j->p != '"') return jp_fail(j, "expected a string key");
                if (!jp_string(j, &key)) return 0;
                jp_ws(j);
                if (j->p >= j->end || *j->p != ':') {
                    free(key);
                    return jp_fail(j, "expected ':'");
                }
                j->p++;
            }
            io_json *item = jp_push(j, v, &cap, obj);
            if (!item) {
                free(key);
                return 0;
            }
            if (obj) v->keys[v->n] = key;
            v->n++; /* counted before parsing so a failure frees it */
            if (!jp_value(j, item, depth + 1)) return 0;
            jp_ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return 1;
            }
            return jp_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (c == '"') {
        v->kind = IO_JSON_STRING;
        return jp_string(j, &v->s);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return jp_number(j, v);
    if (c == 't') return (v->kind = IO_JSON_BOOL, v->b = 1, jp_literal(j, "true"));
    if (c == 'f') return (v->kind = IO_JSON_BOOL, v->b = 0, jp_literal(j, "false"));
    if (c == 'n') return (v->kind = IO_JSON_NULL, jp_literal(j, "null"));
    return jp_fail(j, "unexpected character");
}

static void json_clear(io_json *v) {
    free(v->s);
    for (size_t i = 0; i < v->n; i++) {
        json_clear(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void io_json_free(io_json *v) {
    if (!v) return;
    json_clear(v);
    free(v);
}

sp_status io_json_parse(const char *text, size_t len, const char *name, io_json **out) {
    *out = NULL;
    io_json *v = calloc(1, sizeof *v);
    if (!v) return sp_error(SP_ERR_NOMEM, "%s: out of memory reading JSON", name);
    jp j = {text, text + len, text, name ? name : "<json>", SP_OK};
    if (jp_value(&j, v, 0)) {
        jp_ws(&j);
        if (j.p != j.end) jp_fail(&j, "unexpected data after the JSON value");
    }
    if (j.st != SP_OK) {
        io_json_free(v);
        return j.st;
    }
    *out = v;
    return SP_OK;
}

const io_json *io_json_get(const io_json *obj, const char *key) {
    if (!obj || obj->kind != IO_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (obj->keys[i] && !strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}
