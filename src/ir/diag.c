/*
 * diag.c -- error messages that point into user code.
 *
 * Every error about a program names its place the way compilers do, then
 * shows the line with a caret under the column:
 *
 *   model.py:3:14: add: shapes (2, 3) and (4,) cannot be broadcast
 *       y = x + b
 *                ^
 *
 * The caret line copies the tabs of the source line, so the caret sits
 * under the right character whatever the terminal's tab width.  A very long
 * line is cut to a window around the column (the error buffer is fixed;
 * see src/core/error.c).  Unknown parts degrade gracefully: no column, no
 * caret; no line, "file: message".  The quoted line comes from the module's
 * text when the location is in the module's file, else from the file on
 * disk (as Python's tracebacks read it: a graph copied into another module
 * -- a lifted or specialized copy failing at run time -- still shows its
 * line); neither (a file that is gone, <bprop>), no quoted line.
 *
 * Lines and columns are 1-based; columns count bytes, as the lexer does.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"

#define DIAG_WINDOW 160

/* Finds line `line` (1-based) of src: start and length without the newline. */
static int find_line(const char *src, int line, const char **start, size_t *len) {
    if (!src || line < 1) return 0;
    const char *p = src;
    for (int l = 1; l < line; l++) {
        p = strchr(p, '\n');
        if (!p) return 0;
        p++;
    }
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n && p[n - 1] == '\r') n--;
    *start = p;
    *len = n;
    return 1;
}

/* Line `line` of file `file` read from disk into buf (without its newline),
 * as Python's tracebacks do (linecache): for locations in a module that does
 * not hold that file's text -- a graph copied into another module (lifting,
 * specialization) raising an error at run time.  Names in angle brackets
 * (<bprop>, <string>) are not files.  Returns 1 when the line was read; a
 * line longer than buf is cut (the caret is clamped to what is shown). */
#define DIAG_DISK_LINE 4096
static int diag_disk_line(const char *file, int line, char *buf, size_t n) {
    if (!file || !*file || file[0] == '<' || line < 1) return 0;
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    int l = 1, ok = 0;
    size_t k = 0;
    for (int c; (c = fgetc(f)) != EOF;) {
        if (c == '\n') {
            if (l == line) break;
            l++;
            continue;
        }
        if (l == line && k + 1 < n) buf[k++] = (char)c;
    }
    if (l == line) ok = 1;
    buf[k] = '\0';
    fclose(f);
    return ok;
}

static sp_status diag_emit(const char *file, const char *source, int src_line, sp_loc loc,
                           sp_status code, const char *msg) {
    char out[2048];
    size_t k = 0;
    const char *f = file ? file : "<unknown>";
#define PUT(...)                                                                           \
    do {                                                                                   \
        if (k < sizeof out) {                                                              \
            int w_ = snprintf(out + k, sizeof out - k, __VA_ARGS__);                       \
            k += w_ > 0 ? (size_t)w_ : 0;                                                  \
        }                                                                                  \
    } while (0)
    if (loc.line <= 0) PUT("%s: %s", f, msg);
    else if (loc.col <= 0) PUT("%s:%d: %s", f, loc.line, msg);
    else PUT("%s:%d:%d: %s", f, loc.line, loc.col, msg);
    const char *ls;
    size_t len;
    if (loc.line > 0 && find_line(source, src_line, &ls, &len)) {
        size_t col = loc.col > 0 ? (size_t)loc.col - 1 : 0, from = 0;
        if (col > len) col = len;
        if (len > DIAG_WINDOW && col > DIAG_WINDOW / 2) from = col - DIAG_WINDOW / 2;
        size_t shown = len - from > DIAG_WINDOW ? DIAG_WINDOW : len - from;
        PUT("\n%.*s", (int)shown, ls + from);
        if (loc.col > 0) {
            PUT("\n");
            for (size_t i = from; i < col && k + 2 < sizeof out; i++) out[k++] = ls[i] == '\t' ? '\t' : ' ';
            PUT("^");
        }
    }
#undef PUT
    if (k >= sizeof out) k = sizeof out - 1;
    out[k] = '\0';
    return sp_error(code, "%s", out);
}

sp_status sp_error_at(const sp_module *m, sp_loc loc, sp_status code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *file = loc.file ? loc.file : m ? m->file : NULL;
    const char *source = NULL;
    /* The module's text is only the right one for locations in its file.
     * (A snippet compiled with a line offset carries that many blank lines
     * in front, so line numbers index its source directly.) */
    if (m && m->source && file && m->file && (file == m->file || strcmp(file, m->file) == 0))
        source = m->source;
    char line[DIAG_DISK_LINE];
    if (!source && diag_disk_line(file, loc.line, line, sizeof line))
        return diag_emit(file, line, 1, loc, code, msg);
    return diag_emit(file, source, loc.line, loc, code, msg);
}

sp_status sp_error_src(const char *file, const char *source, sp_loc loc, sp_status code,
                       const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return diag_emit(file ? file : loc.file, source, loc.line, loc, code, msg);
}
