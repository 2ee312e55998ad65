/*
 * print.c -- numpy's str() of an ndarray, byte for byte.
 *
 * A user comparing Spore with numpy should see the same text, so this file
 * ports numpy's array2string with its default print options (precision 8,
 * threshold 1000, edgeitems 3, linewidth 75, floatmode 'maxprec', sign '-')
 * rather than inventing a format.  It works in three steps:
 *
 *  1. Which elements are shown: all of them, or when there are more than
 *     1000, the first and last 3 along every axis longer than 6 (with "..."
 *     between them).
 *  2. One format for all shown elements (numpy's FloatingFormat /
 *     IntegerFormat / BoolFormat): floats choose positional or scientific
 *     notation from the largest and smallest nonzero magnitudes, then every
 *     element is padded to a common width around its decimal point.
 *  3. Layout (numpy's _formatArray): nested brackets, one space between
 *     elements, rows wrapped at 75 columns with a hanging indent, and blank
 *     lines between blocks of higher axes.
 *
 * Digits: numpy prints each float with the fewest significant digits that
 * read back as the same value in the array's own dtype (Dragon4 "unique"),
 * cut at 8 fractional digits with exact rounding.  Here the shortest digits
 * come from printf's correctly rounded %.*e at increasing precision, checked
 * by reading them back (strtof for float32, so float32 arrays print
 * float32's shortest digits, not float64's); the cut uses %.8f / %.8e, which
 * glibc rounds exactly, as Dragon4 does.  float16 and bfloat16 read back
 * through their own rounding, so they too print their own shortest digits.
 *
 * A 0-d tensor prints like numpy's scalar str(): "4.0", "1e-05", "True".
 *
 * A tensor on a GPU prints its values like any other: they are copied to
 * the host first through sp_tensor_to (public API, spore/ops.h, defined by
 * the backend layer of the same library: core cannot reach a device
 * itself), as MindSpore and PyTorch print device tensors.
 */
#include <stdlib.h>

#include "core/device.h"
#include "core/tensor_util.h"
#include "spore/ops.h"

/* ---- a growing string ------------------------------------------------------ */

typedef struct pr_str {
    char *p;
    size_t n, cap;
    int failed; /* an allocation failed: the content is incomplete */
} pr_str;

static void pr_put(pr_str *s, const char *text, size_t len) {
    if (s->failed) return;
    if (s->n + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->n + len + 1) cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) {
            s->failed = 1;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->n, text, len);
    s->n += len;
    s->p[s->n] = '\0';
}

static void pr_puts(pr_str *s, const char *text) { pr_put(s, text, strlen(text)); }

static void pr_spaces(pr_str *s, int n) {
    for (int i = 0; i < n; i++) pr_put(s, " ", 1);
}

static void pr_rstrip(pr_str *s) {
    while (s->n > 0 && s->p[s->n - 1] == ' ') s->p[--s->n] = '\0';
}

/* ---- shortest digits ----------------------------------------------------------- */

/* A finite value as sign, significant digits and decimal exponent:
 * |v| = 0.d[0]d[1]... * 10^(exp+1), i.e. d[0] sits at 10^exp. */
typedef struct pr_dec {
    int neg;
    int n;      /* number of digits, >= 1, no trailing zeros (except "0") */
    int exp;
    char d[24];
} pr_dec;

/* Does the decimal text read back as exactly `a` in dtype `dt`? */
static int pr_roundtrips(const char *text, double a, sp_dtype dt) {
    switch (dt) {
    case SP_F32: return (double)strtof(text, NULL) == a;
    case SP_F16: return (double)sp_f16_to_f32(sp_f32_to_f16((float)strtod(text, NULL))) == a;
    case SP_BF16: return (double)sp_bf16_to_f32(sp_f32_to_bf16(strtof(text, NULL))) == a;
    default: return strtod(text, NULL) == a;
    }
}

/* Parses "d.ddde[+-]x" (printf %e output, no sign) into digits. */
static void pr_dec_parse(const char *text, pr_dec *dec) {
    dec->n = 0;
    const char *c = text;
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9') dec->d[dec->n++] = *c;
    dec->exp = *c == 'e' ? atoi(c + 1) : 0;
    while (dec->n > 1 && dec->d[dec->n - 1] == '0') dec->n--;
    dec->d[dec->n] = '\0';
}

/* The p-digit decimal of integer m (with its last digit at 10^(e - p + 1)),
 * as text strtod reads. */
static void pr_int_text(char *buf, size_t n, long long m, int last_exp) {
    snprintf(buf, n, "%llde%d", m, last_exp);
}

/* Fewest significant digits of v (finite) that round-trip in dt. */
static void pr_shortest(double v, sp_dtype dt, pr_dec *dec) {
    dec->neg = signbit(v) != 0;
    double a = fabs(v);
    if (a == 0) {
        dec->n = 1;
        dec->exp = 0;
        strcpy(dec->d, "0");
        return;
    }
    char buf[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, a);
        if (pr_roundtrips(buf, a, dt)) {
            pr_dec_parse(buf, dec);
            return;
        }
        /* At a power of two the rounding interval is lopsided: a p-digit
         * neighbour of the nearest p-digit decimal may still read back. */
        pr_dec t;
        pr_dec_parse(buf, &t);
        long long m = 0;
        for (int i = 0; i < p; i++) m = m * 10 + (i < t.n ? t.d[i] - '0' : 0);
        for (int k = -1; k <= 1; k += 2) {
            if (m + k <= 0) continue;
            char cand[64];
            pr_int_text(cand, sizeof cand, m + k, t.exp - p + 1);
            if (pr_roundtrips(cand, a, dt)) {
                snprintf(buf, sizeof buf, "%.*e", p - 1, strtod(cand, NULL));
                pr_dec_parse(buf, dec);
                return;
            }
        }
    }
    snprintf(buf, sizeof buf, "%.16e", a);
    pr_dec_parse(buf, dec);
}

/* Positional text with at most `maxfrac` fraction digits (-1: no limit),
 * trailing zeros trimmed but the point kept: "4.", "-0.25", "30000000.".
 * With `whole_int`, digits run at least to the units place, as numpy's
 * arrays print them (Dragon4 with min_digits=0): float16 29376 prints
 * "29376." in an array although "29380" already identifies it (and the
 * scalar prints "29380.0"). */
static void pr_positional(double v, sp_dtype dt, int maxfrac, int whole_int, char *out,
                          size_t outn) {
    pr_dec dec;
    pr_shortest(v, dt, &dec);
    int nfrac = dec.n - 1 - dec.exp;
    if (whole_int && nfrac < 0) {
        /* The shortest digits stop left of the units place, so the spacing
         * of the dtype there is above 1 and v is a whole number: print it. */
        snprintf(out, outn, "%.0f.", v);
        return;
    }
    if (maxfrac >= 0 && nfrac > maxfrac) {
        /* More digits than shown: round the exact value, as Dragon4 does. */
        char tmp[400];
        snprintf(tmp, sizeof tmp, "%.*f", maxfrac, v);
        size_t len = strlen(tmp);
        while (len > 0 && tmp[len - 1] == '0') tmp[--len] = '\0';
        snprintf(out, outn, "%s", tmp);
        return;
    }
    size_t k = 0;
    char *o = out;
#define PR_OUT(ch)                                                                         \
    do {                                                                                   \
        if (k + 1 < outn) o[k++] = (ch);                                                   \
    } while (0)
    if (dec.neg) PR_OUT('-');
    if (dec.exp < 0) {
        PR_OUT('0');
    } else {
        for (int i = 0; i <= dec.exp; i++) PR_OUT(i < dec.n ? dec.d[i] : '0');
    }
    PR_OUT('.');
    for (int i = dec.exp + 1; i < dec.n; i++) PR_OUT(i < 0 ? '0' : dec.d[i]);
    o[k] = '\0';
#undef PR_OUT
}

/* Scientific text: mantissa with at most `maxfrac` fraction digits (-1: no
 * limit), extended to `minfrac` digits; exponent with at least
 * `expdigits` digits.  "1.e-05", "1.50e+00". */
static void pr_scientific(double v, sp_dtype dt, int maxfrac, int minfrac, int expdigits,
                          char *out, size_t outn) {
    pr_dec dec;
    pr_shortest(v, dt, &dec);
    /* Past the shortest digits numpy prints the exact value's digits, not
     * zeros (Dragon4's min_digits): 8.347536e-05f at 8 digits is
     * 8.3475359e-05.  Both that and the cut at maxfrac are %.*e of the
     * exact value. */
    int want = dec.n - 1 < minfrac ? minfrac : dec.n - 1;
    if (maxfrac >= 0 && want > maxfrac) want = maxfrac;
    if (want != dec.n - 1) {
        char tmp[64];
        snprintf(tmp, sizeof tmp, "%.*e", want, fabs(v));
        int neg = dec.neg;
        pr_dec_parse(tmp, &dec);
        dec.neg = neg;
    }
    char frac[32];
    int nf = 0;
    for (int i = 1; i < dec.n && nf < 30; i++) frac[nf++] = dec.d[i];
    while (nf < minfrac && nf < 30) frac[nf++] = '0';
    frac[nf] = '\0';
    int e = dec.exp;
    snprintf(out, outn, "%s%c.%se%c%0*d", dec.neg ? "-" : "", dec.d[0], frac, e < 0 ? '-' : '+',
             expdigits, e < 0 ? -e : e);
}

/* ---- which elements are shown -------------------------------------------------- */

#define PR_THRESHOLD 1000
#define PR_EDGE 3
#define PR_LINEWIDTH 75
#define PR_PRECISION 8

typedef struct pr_ctx {
    const sp_tensor *t;
    size_t isz;
    int summarize;
    /* float format */
    int exp_format;
    int pad_left, pad_right, precision, exp_size;
    /* int format */
    int int_width;
    /* first-pass statistics */
    int any_finite, any_nonfinite, neg_inf;
    double max_abs, min_abs; /* over finite nonzero values */
    int any_nonzero;
    int64_t imax, imin;
    int err;
} pr_ctx;

typedef void (*pr_visit_fn)(pr_ctx *c, const char *p);

/* Calls fn on every shown element, in order. */
static void pr_walk(pr_ctx *c, int axis, const char *p, pr_visit_fn fn) {
    const sp_tensor *t = c->t;
    if (axis == t->ndim) {
        fn(c, p);
        return;
    }
    int64_t n = t->shape[axis];
    int64_t step = t->strides[axis] * (int64_t)c->isz;
    int cut = c->summarize && n > 2 * PR_EDGE;
    for (int64_t i = 0; i < n; i++) {
        if (cut && i == PR_EDGE) i = n - PR_EDGE;
        pr_walk(c, axis + 1, p + i * step, fn);
    }
}

static int pr_is_int(sp_dtype d) { return sp_dtype_is_int(d); }

/* ---- formats -------------------------------------------------------------------- */

static void pr_stats(pr_ctx *c, const char *p) {
    sp_dtype dt = c->t->dtype;
    if (pr_is_int(dt)) {
        int64_t v = sp_load_i64(dt, p);
        if (v > c->imax) c->imax = v;
        if (v < c->imin) c->imin = v;
        return;
    }
    double v = sp_load_f64(dt, p);
    if (!isfinite(v)) {
        c->any_nonfinite = 1;
        if (isinf(v) && v < 0) c->neg_inf = 1;
        return;
    }
    c->any_finite = 1;
    double a = fabs(v);
    if (a != 0) {
        if (!c->any_nonzero || a > c->max_abs) c->max_abs = a;
        if (!c->any_nonzero || a < c->min_abs) c->min_abs = a;
        c->any_nonzero = 1;
    }
}

static void pr_widths(pr_ctx *c, const char *p) {
    sp_dtype dt = c->t->dtype;
    double v = sp_load_f64(dt, p);
    if (!isfinite(v)) return;
    char buf[400];
    if (c->exp_format)
        pr_scientific(v, dt, PR_PRECISION, 0, 2, buf, sizeof buf);
    else
        pr_positional(v, dt, PR_PRECISION, 1, buf, sizeof buf);
    char *dot = strchr(buf, '.');
    if (!dot) return;
    int il = (int)(dot - buf);
    if (il > c->pad_left) c->pad_left = il;
    char *e = strchr(dot, 'e');
    if (c->exp_format) {
        int fl = (int)(e - dot - 1), el = (int)strlen(e + 1) - 1;
        if (fl > c->precision) c->precision = fl;
        if (el > c->exp_size) c->exp_size = el;
    } else {
        int fl = (int)strlen(dot + 1);
        if (fl > c->pad_right) c->pad_right = fl;
    }
}

/* numpy's ratio test runs in the array's own dtype (float16 overflows to inf). */
static double pr_round_to(sp_dtype dt, double v) {
    switch (dt) {
    case SP_F32: return (float)v;
    case SP_F16: return sp_f16_to_f32(sp_f32_to_f16((float)v));
    case SP_BF16: return sp_bf16_to_f32(sp_f32_to_bf16((float)v));
    default: return v;
    }
}

static void pr_fill_format(pr_ctx *c) {
    sp_dtype dt = c->t->dtype;
    char *base = sp_tensor_data(c->t);
    if (dt == SP_BOOL) return;
    c->imax = INT64_MIN;
    c->imin = INT64_MAX;
    pr_walk(c, 0, base, pr_stats);
    if (pr_is_int(dt)) {
        char a[32], b[32];
        snprintf(a, sizeof a, "%lld", (long long)c->imax);
        snprintf(b, sizeof b, "%lld", (long long)c->imin);
        c->int_width = (int)(strlen(a) > strlen(b) ? strlen(a) : strlen(b));
        return;
    }
    if (c->any_nonzero) {
        double ratio = pr_round_to(dt, c->max_abs / c->min_abs);
        c->exp_format = c->max_abs >= 1e8 || c->min_abs < 0.0001 || ratio > 1000.;
    }
    if (c->any_finite) {
        pr_walk(c, 0, base, pr_widths);
        if (c->exp_format) c->pad_right = c->exp_size + 2 + c->precision;
    }
    if (c->any_nonfinite) {
        int offset = c->pad_right + 1;
        if (3 - offset > c->pad_left) c->pad_left = 3 - offset;
        if (3 + c->neg_inf - offset > c->pad_left) c->pad_left = 3 + c->neg_inf - offset;
    }
}

/* One element as shown in an array (padded to the common width). */
static void pr_format_elem(const pr_ctx *c, const char *p, char *out, size_t outn) {
    sp_dtype dt = c->t->dtype;
    if (dt == SP_BOOL) {
        snprintf(out, outn, "%s", *(const uint8_t *)p ? " True" : "False");
        return;
    }
    if (pr_is_int(dt)) {
        snprintf(out, outn, "%*lld", c->int_width, (long long)sp_load_i64(dt, p));
        return;
    }
    double v = sp_load_f64(dt, p);
    if (!isfinite(v)) {
        const char *s = isnan(v) ? "nan" : v < 0 ? "-inf" : "inf";
        snprintf(out, outn, "%*s", c->pad_left + c->pad_right + 1, s);
        return;
    }
    char buf[400];
    if (c->exp_format)
        pr_scientific(v, dt, PR_PRECISION, c->precision, c->exp_size, buf, sizeof buf);
    else
        pr_positional(v, dt, PR_PRECISION, 1, buf, sizeof buf);
    char *dot = strchr(buf, '.');
    int il = dot ? (int)(dot - buf) : (int)strlen(buf);
    int fl = dot ? (int)strlen(dot + 1) : 0;
    int rpad = c->exp_format ? 0 : c->pad_right - fl;
    snprintf(out, outn, "%*s%s%*s", c->pad_left - il > 0 ? c->pad_left - il : 0, "", buf,
             rpad > 0 ? rpad : 0, "");
}

/* ---- layout (numpy's _formatArray) ------------------------------------------------ */

static void pr_extend_line(pr_str *s, pr_str *line, const char *word, int width, int hang) {
    int wrap = (int)(line->n + strlen(word)) > width;
    if ((int)line->n <= hang) wrap = 0; /* wrapping would not help */
    if (wrap) {
        pr_rstrip(line);
        pr_put(s, line->p, line->n);
        pr_puts(s, "\n");
        line->n = 0;
        if (line->p) line->p[0] = '\0';
        pr_spaces(line, hang);
    }
    pr_puts(line, word);
}

/* Appends the text of the sub-array at p starting at `axis` to out.  `hang`
 * is the hanging indent (in spaces) of its lines, `width` what is left of
 * the line width at this depth. */
static void pr_recurse(const pr_ctx *c, int axis, const char *p, int hang, int width,
                       pr_str *out) {
    const sp_tensor *t = c->t;
    int64_t n = t->shape[axis];
    int64_t step = t->strides[axis] * (int64_t)c->isz;
    int cut = c->summarize && n > 2 * PR_EDGE;
    int axes_left = t->ndim - axis;
    pr_str s = {0};
    if (axes_left == 1) {
        int elem_width = width - 1; /* room for the closing ']' */
        pr_str line = {0};
        pr_spaces(&line, hang);
        char word[512];
        for (int64_t i = 0; i < n; i++) {
            if (cut && i == PR_EDGE) {
                pr_extend_line(&s, &line, "...", elem_width, hang);
                pr_puts(&line, " ");
                i = n - PR_EDGE;
            }
            pr_format_elem(c, p + i * step, word, sizeof word);
            pr_extend_line(&s, &line, word, elem_width, hang);
            if (i < n - 1) pr_puts(&line, " ");
        }
        pr_put(&s, line.p, line.n);
        if (line.failed) s.failed = 1;
        free(line.p);
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (cut && i == PR_EDGE) {
                pr_spaces(&s, hang);
                pr_puts(&s, "...");
                for (int k = 0; k < axes_left - 1; k++) pr_puts(&s, "\n");
                i = n - PR_EDGE;
            }
            pr_spaces(&s, hang);
            pr_recurse(c, axis + 1, p + i * step, hang + 1, width - 1, &s);
            if (i < n - 1)
                for (int k = 0; k < axes_left - 1; k++) pr_puts(&s, "\n");
        }
    }
    pr_puts(out, "[");
    if (s.p && s.n >= (size_t)hang) pr_put(out, s.p + hang, s.n - (size_t)hang);
    pr_puts(out, "]");
    if (s.failed) out->failed = 1;
    free(s.p);
}

/* ---- 0-d: numpy's scalar str() --------------------------------------------------- */

static void pr_scalar(const sp_tensor *t, char *out, size_t outn) {
    sp_dtype dt = t->dtype;
    const char *p = sp_tensor_data(t);
    if (dt == SP_BOOL) {
        snprintf(out, outn, "%s", *(const uint8_t *)p ? "True" : "False");
        return;
    }
    if (pr_is_int(dt)) {
        snprintf(out, outn, "%lld", (long long)sp_load_i64(dt, p));
        return;
    }
    double v = sp_load_f64(dt, p);
    if (!isfinite(v)) {
        snprintf(out, outn, "%s", isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
        return;
    }
    double a = fabs(v);
    if (a == 0 || (a >= 1e-4 && a < 1e16)) {
        pr_positional(v, dt, -1, 0, out, outn);
        size_t len = strlen(out);
        if (len > 0 && out[len - 1] == '.' && len + 1 < outn) strcat(out, "0");
    } else {
        pr_scientific(v, dt, -1, 0, 2, out, outn);
        /* The scalar form drops a bare point: "1e+20", not "1.e+20". */
        char *dot = strstr(out, ".e");
        if (dot) memmove(dot, dot + 1, strlen(dot + 1) + 1);
    }
}

/* ---- entry points ------------------------------------------------------------------ */

char *sp_tensor_to_string(const sp_tensor *t) {
    if (!t) {
        sp_error(SP_ERR_ARG, "tensor_to_string: NULL tensor");
        return NULL;
    }
    if (sp_tensor_is_meta(t)) {
        sp_meta_value_error("tensor_to_string", t);
        return NULL;
    }
    if (t->buf->device.type != SP_DEVICE_CPU) {
        sp_tensor *h = NULL;
        /* sp_tensor_to only reads t */
        if (sp_tensor_to((sp_tensor *)t, SP_CPU, &h) != SP_OK) return NULL;
        char *s = h->buf->device.type == SP_DEVICE_CPU ? sp_tensor_to_string(h) : NULL;
        if (!s && h->buf->device.type != SP_DEVICE_CPU)
            sp_error(SP_ERR_INTERNAL, "tensor_to_string: the host copy is not on the CPU");
        sp_tensor_release(h);
        return s;
    }
    pr_str out = {0};
    if (t->ndim == 0) {
        char buf[400];
        pr_scalar(t, buf, sizeof buf);
        pr_puts(&out, buf);
    } else if (sp_tensor_numel(t) == 0) {
        pr_puts(&out, "[]");
    } else {
        pr_ctx c;
        memset(&c, 0, sizeof c);
        c.t = t;
        c.isz = sp_dtype_size(t->dtype);
        c.summarize = sp_tensor_numel(t) > PR_THRESHOLD;
        pr_fill_format(&c);
        pr_recurse(&c, 0, sp_tensor_data(t), 1, PR_LINEWIDTH, &out);
    }
    if (out.failed || !out.p) {
        free(out.p);
        sp_error(SP_ERR_NOMEM, "tensor_to_string: out of memory");
        return NULL;
    }
    return out.p;
}

sp_status sp_tensor_print(const sp_tensor *t, FILE *f) {
    if (!f) return sp_error(SP_ERR_ARG, "tensor_print: NULL file");
    char *s = sp_tensor_to_string(t);
    if (!s) return sp_last_status();
    int bad = fputs(s, f) < 0 || fputc('\n', f) == EOF;
    free(s);
    if (bad) return sp_error(SP_ERR_IO, "tensor_print: write failed");
    return SP_OK;
}
