/*
 * data_internal.h -- what the files of src/data share: a byte source that
 * reads a file or memory, optionally through zlib, and the pieces of the
 * pipeline (node kinds, per-iteration state) that dataset.c and iter.c both
 * see.
 *
 * The byte source exists so each loader is written once: the IDX and
 * CIFAR decoders read "n bytes" from a data_src without caring whether the
 * bytes come from a file, from memory (the fuzz targets) or out of a gzip
 * stream.  A source knows an upper bound on the bytes it can still yield
 * (the file size, or the file size times deflate's maximum ratio), so a
 * header that claims more data than that is rejected before anything is
 * allocated for it.
 */
#ifndef SPORE_DATA_INTERNAL_H
#define SPORE_DATA_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <zlib.h>

#include "spore/data.h"

typedef struct data_src {
    const char *name;     /* for messages */
    FILE *f;              /* a file, or NULL for memory */
    const uint8_t *mem;   /* memory: the bytes and their count */
    size_t mem_n, mem_pos;
    uint64_t raw_size;    /* bytes of the underlying file or memory */
    int gz;               /* 1: bytes come through inflate */
    int z_live;           /* inflateInit2 done */
    int z_end;            /* the last member ended and no more input follows */
    z_stream z;
    uint8_t inbuf[1 << 16];
} data_src;

/* Opens `path` (gz decides itself from the first two bytes: 1f 8b is gzip,
 * a zlib header is zlib).  SP_ERR_IO with the path and strerror on failure.
 * The source must be closed with data_src_close even after an error. */
sp_status data_src_open_file(data_src *s, const char *path);
/* A source over memory the caller keeps alive; cannot fail. */
void data_src_open_mem(data_src *s, const void *data, size_t n, const char *name);
void data_src_close(data_src *s);
/* Reads up to n bytes into dst; *got is how many came (fewer only at the
 * end).  SP_ERR_FORMAT naming the source for a damaged compressed stream,
 * SP_ERR_IO for a read error. */
sp_status data_src_read(data_src *s, void *dst, size_t n, size_t *got);
/* An upper bound on the bytes the source can still yield. */
uint64_t data_src_bound(const data_src *s);

/* ---- dataset descriptions (dataset.c); run by iter.c ---- */

typedef enum ds_kind { DS_TENSORS, DS_PULL, DS_MAP, DS_SHUFFLE, DS_BATCH, DS_REPEAT } ds_kind;

/* An immutable pipeline node.  Sources own their columns' names; the other
 * kinds keep `up` (retained) and take their names from it. */
struct sp_dataset {
    int refcount;
    ds_kind kind;
    int ncols;
    sp_dataset *up;
    char *names[SP_DATA_MAX_COLUMNS];           /* sources only */
    sp_tensor *cols[SP_DATA_MAX_COLUMNS];       /* DS_TENSORS */
    int64_t nrows;
    sp_data_pull_fn pull;                       /* DS_PULL */
    sp_data_reset_fn reset;
    void *ctx;
    void (*free_ctx)(void *ctx);
    int nops;                                   /* DS_MAP */
    sp_transform **ops;
    int nmc;
    int mcols[SP_DATA_MAX_COLUMNS];
    uint64_t seed;                              /* DS_MAP, DS_SHUFFLE */
    int64_t n;                                  /* shuffle buffer, batch size, repeat count */
    int drop_remainder;                         /* DS_BATCH */
};

/* Mixes a seed with a small number (an op index, an epoch): a 64-bit
 * finalizer, so nearby inputs give unrelated keys.  Cannot fail. */
static inline uint64_t data_mix(uint64_t seed, uint64_t k) {
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (k + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

#endif
