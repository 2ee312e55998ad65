/*
 * frontend.c -- the front end's two entry points: text or file to module.
 *
 * The pipeline is lexer+parser (fe_parse) into an AST arena, the builder
 * (fe_build) into a fresh sp_module, then ir_module_finalize for the free
 * variables, and in debug builds (NDEBUG undefined) sp_module_verify, so a
 * builder bug shows up as an internal error at once rather than as a
 * strange VM failure later.
 *
 * The text is normalized before anything reads it: "\r\n" and lone "\r"
 * become "\n", so that the lexer's line numbers and the caret lines of
 * diag.c (which splits on "\n") agree; and `line_offset` is realized as that
 * many empty lines in front of the text, so every location -- the lexer's,
 * the builder's, the VM's -- comes out already offset and the caret line is
 * still found in the module's copy of the source.  A NUL byte ends the
 * source, as it does for any C string.
 *
 * The module keeps the normalized text (for caret lines at run time); the
 * AST and its arena are gone when these functions return.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "frontend/lexer.h"

#define FE_MAX_LINE_OFFSET 10000000

/* The normalized, offset copy of source (malloc'd), or NULL + error. */
static char *normalize(const char *source, int line_offset) {
    size_t n = strlen(source);
    char *out = malloc((size_t)line_offset + n + 1);
    if (!out) {
        sp_error(SP_ERR_NOMEM, "front end: out of memory for a source of %zu bytes", n);
        return NULL;
    }
    memset(out, '\n', (size_t)line_offset);
    size_t k = (size_t)line_offset;
    for (size_t i = 0; i < n; i++) {
        if (source[i] == '\r') {
            out[k++] = '\n';
            if (source[i + 1] == '\n') i++;
        } else {
            out[k++] = source[i];
        }
    }
    out[k] = '\0';
    return out;
}

sp_module *sp_frontend_compile(const char *file, const char *source, int line_offset,
                               const sp_resolver *resolver) {
    if (!file) file = "<string>";
    if (!source) {
        sp_error(SP_ERR_ARG, "%s: no source text", file);
        return NULL;
    }
    if (line_offset < 0 || line_offset > FE_MAX_LINE_OFFSET) {
        sp_error(SP_ERR_ARG, "%s: line offset %d out of range", file, line_offset);
        return NULL;
    }
    char *text = normalize(source, line_offset);
    if (!text) return NULL;
    sp_module *m = sp_module_new(file, text);
    if (!m) {
        free(text);
        return NULL;
    }
    fe_arena arena = {0};
    fe_block tree;
    /* a snippet (line_offset > 0: a method cut out of a class) may keep its
     * indentation, so columns match the user's file */
    sp_status st = fe_parse_snippet(m->file, m->source ? m->source : text, line_offset > 0, &arena, &tree);
    free(text);
    if (st == SP_OK) st = fe_build(m, &tree, resolver);
    fe_arena_free(&arena);
    if (st == SP_OK) st = ir_module_finalize(m);
#ifndef NDEBUG
    if (st == SP_OK) st = sp_module_verify(m);
#endif
    if (st != SP_OK) {
        if (!sp_last_error()[0]) sp_error(st, "%s: compilation failed", file);
        sp_module_free(m);
        return NULL;
    }
    return m;
}

sp_module *sp_frontend_compile_file(const char *path, const sp_resolver *resolver) {
    if (!path) {
        sp_error(SP_ERR_ARG, "compile_file: NULL path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        sp_error(SP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *q = realloc(buf, cap);
            if (!q) {
                free(buf);
                fclose(f);
                sp_error(SP_ERR_NOMEM, "%s: out of memory reading the file", path);
                return NULL;
            }
            buf = q;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        sp_error(SP_ERR_IO, "%s: read error", path);
        return NULL;
    }
    buf[n] = '\0';
    if (memchr(buf, '\0', n)) {
        free(buf);
        sp_error(SP_ERR_FORMAT, "%s: the file contains a NUL byte (is it a Python source file?)", path);
        return NULL;
    }
    sp_module *m = sp_frontend_compile(path, buf, 0, resolver);
    free(buf);
    return m;
}
