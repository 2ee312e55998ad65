/*
 * strided_copy.c -- copying n-dimensional blocks between strided layouts.
 *
 * A block is described by its sizes and by two stride vectors (in
 * elements), one for the source and one for the destination.  Before any
 * byte moves the description is simplified: size-1 dims are dropped, dims
 * are ordered by decreasing destination stride (so the destination is
 * walked forward) and neighbours that are contiguous in both layouts are
 * merged.  What is left picks one of three inner loops:
 *
 *   MEMCPY  the last dim has unit stride on both sides: runs of memcpy;
 *   TILE    the destination's last dim has unit stride and another dim has
 *           unit stride in the source (a transpose): 16x16 tiles, so both
 *           sides stay in cache;
 *   ELEM    anything else: an element loop on the last dim.
 *
 * The remaining "outer" dims, times the pieces a long last dim is cut into,
 * form units of work for sp_parallel_for.  Every element is written exactly
 * once by exactly one unit, so the result never depends on the thread
 * count, and no unit reads what another writes (src and dst are disjoint).
 */
#include "backend/cpu/strided_copy.h"

#include <stdlib.h>

enum { K_MEMCPY, K_TILE, K_ELEM, K_CONVERT };

#define TILE 16
#define PIECE 16384 /* elements of a long last dim per unit */
#define GRAIN_ELEMS 32768

typedef struct copy_plan {
    int kind;
    size_t es;
    sp_dtype sdt, ddt;
    char *dst;
    const char *src;
    int no; /* outer dims */
    int64_t osh[CPU_COPY_MAX_DIMS], od[CPU_COPY_MAX_DIMS], os[CPU_COPY_MAX_DIMS];
    int64_t n, dl, sl;     /* last dim: size, dst stride, src stride */
    int64_t nj, dj, sj;    /* TILE: the dim whose src stride is 1 */
    int64_t npieces, plen; /* last dim (or TILE's j dim) cut into pieces */
} copy_plan;

void cpu_contig_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

static int64_t iabs64(int64_t v) { return v < 0 ? -v : v; }

/* Drops size-1 dims, sorts by decreasing |dst stride| and merges dims that
 * are contiguous on both sides.  Returns the new ndim, or -1 when the block
 * is empty. */
static int copy_simplify(int n, const int64_t *shape, const int64_t *ds, const int64_t *ss,
                         int64_t *sh, int64_t *d, int64_t *s) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (shape[i] == 0) return -1;
        if (shape[i] == 1) continue;
        sh[m] = shape[i], d[m] = ds[i], s[m] = ss[i];
        m++;
    }
    for (int i = 1; i < m; i++) { /* stable insertion sort */
        int64_t a = sh[i], b = d[i], c = s[i];
        int j = i - 1;
        while (j >= 0 && iabs64(d[j]) < iabs64(b)) {
            sh[j + 1] = sh[j], d[j + 1] = d[j], s[j + 1] = s[j];
            j--;
        }
        sh[j + 1] = a, d[j + 1] = b, s[j + 1] = c;
    }
    int k = 0;
    for (int i = 1; i < m; i++) {
        if (d[k] == d[i] * sh[i] && s[k] == s[i] * sh[i]) {
            sh[k] *= sh[i];
            d[k] = d[i], s[k] = s[i];
        } else {
            k++;
            sh[k] = sh[i], d[k] = d[i], s[k] = s[i];
        }
    }
    return m == 0 ? 0 : k + 1;
}

/* Element loop of one run: n elements, strides dl/sl, element size es. */
static void copy_run(char *dst, int64_t dl, const char *src, int64_t sl, int64_t n, size_t es) {
#define RUN_LOOP(T)                                                                            \
    do {                                                                                       \
        T *d_ = (T *)dst;                                                                      \
        const T *s_ = (const T *)src;                                                          \
        if (dl == 1 && sl == 0) {                                                              \
            T v_ = s_[0];                                                                      \
            for (int64_t i = 0; i < n; i++) d_[i] = v_;                                        \
        } else {                                                                               \
            for (int64_t i = 0; i < n; i++) d_[i * dl] = s_[i * sl];                           \
        }                                                                                      \
    } while (0)
    switch (es) {
    case 1: RUN_LOOP(uint8_t); break;
    case 2: RUN_LOOP(uint16_t); break;
    case 4: RUN_LOOP(uint32_t); break;
    case 8: RUN_LOOP(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + (size_t)(i * dl) * es, src + (size_t)(i * sl) * es, es);
    }
#undef RUN_LOOP
}

static void convert_run(const copy_plan *p, char *dst, const char *src, int64_t n) {
    size_t des = sp_dtype_size(p->ddt), ses = sp_dtype_size(p->sdt);
    int ints = !sp_dtype_is_float(p->sdt) && !sp_dtype_is_float(p->ddt);
    for (int64_t i = 0; i < n; i++) {
        char *dp = dst + (ptrdiff_t)(i * p->dl) * (ptrdiff_t)des;
        const char *sp = src + (ptrdiff_t)(i * p->sl) * (ptrdiff_t)ses;
        if (ints)
            sp_store_i64(p->ddt, dp, sp_load_i64(p->sdt, sp));
        else
            sp_store_f64(p->ddt, dp, sp_load_f64(p->sdt, sp));
    }
}

/* Transposed tile loop over rows [a0, a1) of dim j and all of the last
 * dim: dst[a*dj + b] = src[a*sj + b*sl]. */
static void copy_tile(const copy_plan *p, char *dst, const char *src, int64_t a0, int64_t a1) {
#define TILE_LOOP(T)                                                                           \
    do {                                                                                       \
        T *d_ = (T *)dst;                                                                      \
        const T *s_ = (const T *)src;                                                          \
        for (int64_t ab = a0; ab < a1; ab += TILE) {                                           \
            int64_t ae = ab + TILE < a1 ? ab + TILE : a1;                                      \
            for (int64_t bb = 0; bb < p->n; bb += TILE) {                                      \
                int64_t be = bb + TILE < p->n ? bb + TILE : p->n;                              \
                for (int64_t a = ab; a < ae; a++) {                                            \
                    T *dr = d_ + a * p->dj;                                                    \
                    const T *sr = s_ + a * p->sj;                                              \
                    for (int64_t b = bb; b < be; b++) dr[b] = sr[b * p->sl];                   \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)
    switch (p->es) {
    case 1: TILE_LOOP(uint8_t); break;
    case 2: TILE_LOOP(uint16_t); break;
    case 4: TILE_LOOP(uint32_t); break;
    default: TILE_LOOP(uint64_t); break;
    }
#undef TILE_LOOP
}

static void copy_units(void *ctx, int64_t begin, int64_t end) {
    const copy_plan *p = ctx;
    size_t des = p->kind == K_CONVERT ? sp_dtype_size(p->ddt) : p->es;
    size_t ses = p->kind == K_CONVERT ? sp_dtype_size(p->sdt) : p->es;
    int64_t idx[CPU_COPY_MAX_DIMS];
    int64_t outer = begin / p->npieces, piece = begin % p->npieces;
    int64_t doff = 0, soff = 0;
    for (int k = p->no - 1; k >= 0; k--) {
        idx[k] = outer % p->osh[k];
        outer /= p->osh[k];
        doff += idx[k] * p->od[k];
        soff += idx[k] * p->os[k];
    }
    for (int64_t u = begin; u < end; u++) {
        int64_t lo = piece * p->plen;
        if (p->kind == K_TILE) {
            int64_t hi = lo + p->plen < p->nj ? lo + p->plen : p->nj;
            copy_tile(p, p->dst + (ptrdiff_t)doff * (ptrdiff_t)des,
                      p->src + (ptrdiff_t)soff * (ptrdiff_t)ses, lo, hi);
        } else {
            int64_t len = lo + p->plen < p->n ? p->plen : p->n - lo;
            char *d = p->dst + (ptrdiff_t)(doff + lo * p->dl) * (ptrdiff_t)des;
            const char *s = p->src + (ptrdiff_t)(soff + lo * p->sl) * (ptrdiff_t)ses;
            if (p->kind == K_MEMCPY)
                memcpy(d, s, (size_t)len * p->es);
            else if (p->kind == K_ELEM)
                copy_run(d, p->dl, s, p->sl, len, p->es);
            else
                convert_run(p, d, s, len);
        }
        if (++piece == p->npieces) {
            piece = 0;
            for (int k = p->no - 1; k >= 0; k--) {
                idx[k]++;
                doff += p->od[k];
                soff += p->os[k];
                if (idx[k] < p->osh[k]) break;
                doff -= p->od[k] * p->osh[k];
                soff -= p->os[k] * p->osh[k];
                idx[k] = 0;
            }
        }
    }
}

static void copy_run_plan(copy_plan *p, int m, const int64_t *sh, const int64_t *d,
                          const int64_t *s) {
    int64_t outer = 1;
    if (m == 0) { /* one element */
        p->n = 1, p->dl = p->sl = 1;
    } else {
        p->n = sh[m - 1], p->dl = d[m - 1], p->sl = s[m - 1];
    }
    int tj = -1;
    if (p->kind != K_CONVERT) {
        if (p->dl == 1 && p->sl == 1) {
            p->kind = K_MEMCPY;
        } else {
            p->kind = K_ELEM;
            if (p->dl == 1 && p->n >= 8)
                for (int j = m - 2; j >= 0; j--)
                    if (s[j] == 1 && sh[j] >= 8) {
                        tj = j;
                        break;
                    }
            if (tj >= 0) p->kind = K_TILE;
        }
    }
    p->no = 0;
    for (int i = 0; i < m - 1; i++) {
        if (i == tj) continue;
        p->osh[p->no] = sh[i], p->od[p->no] = d[i], p->os[p->no] = s[i];
        outer *= sh[i];
        p->no++;
    }
    int64_t work; /* elements per outer index */
    if (p->kind == K_TILE) {
        p->nj = sh[tj], p->dj = d[tj], p->sj = s[tj];
        /* pieces of whole tiles, big enough to be worth a task */
        int64_t rows = GRAIN_ELEMS / p->n;
        rows = rows < TILE ? TILE : (rows / TILE) * TILE;
        p->plen = rows;
        p->npieces = (p->nj + rows - 1) / rows;
        work = p->nj * p->n;
    } else {
        p->plen = p->n > 2 * PIECE ? PIECE : p->n;
        p->npieces = (p->n + p->plen - 1) / p->plen;
        work = p->n;
    }
    int64_t units = outer * p->npieces;
    int64_t per_unit = work / p->npieces;
    int64_t grain = per_unit >= GRAIN_ELEMS ? 1 : GRAIN_ELEMS / (per_unit ? per_unit : 1);
    sp_parallel_for(units, grain, copy_units, p);
}

void cpu_copy_strided(int ndim, const int64_t *shape, size_t esize, void *dst, const int64_t *ds,
                      const void *src, const int64_t *ss) {
    copy_plan p;
    int64_t sh[CPU_COPY_MAX_DIMS], d[CPU_COPY_MAX_DIMS], s[CPU_COPY_MAX_DIMS];
    int m = copy_simplify(ndim, shape, ds, ss, sh, d, s);
    if (m < 0) return;
    p.kind = K_ELEM;
    p.es = esize;
    p.dst = dst;
    p.src = src;
    copy_run_plan(&p, m, sh, d, s);
}

void cpu_copy_convert(int ndim, const int64_t *shape, void *dst, sp_dtype ddt, const int64_t *ds,
                      const void *src, sp_dtype sdt, const int64_t *ss) {
    if (ddt == sdt) {
        cpu_copy_strided(ndim, shape, sp_dtype_size(ddt), dst, ds, src, ss);
        return;
    }
    copy_plan p;
    int64_t sh[CPU_COPY_MAX_DIMS], d[CPU_COPY_MAX_DIMS], s[CPU_COPY_MAX_DIMS];
    int m = copy_simplify(ndim, shape, ds, ss, sh, d, s);
    if (m < 0) return;
    p.kind = K_CONVERT;
    p.es = 0;
    p.sdt = sdt, p.ddt = ddt;
    p.dst = dst;
    p.src = src;
    copy_run_plan(&p, m, sh, d, s);
}

void cpu_copy_to_contig(sp_tensor *dst, const sp_tensor *src) {
    int64_t ds[SP_MAX_DIMS];
    cpu_contig_strides(src->ndim, src->shape, ds);
    cpu_copy_strided(src->ndim, src->shape, sp_dtype_size(src->dtype), sp_tensor_data(dst), ds,
                     sp_tensor_data(src), src->strides);
}
