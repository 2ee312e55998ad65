/*
 * spore/io.h -- checkpoints in the safetensors format.
 *
 * A checkpoint is a list of named tensors plus string metadata (optimizer
 * state and step travel as tensors and metadata).  The file format is
 * safetensors, so files written here are read by the `safetensors` Python
 * package and the other way round:
 *
 *   8 bytes   little-endian uint64 N, the header's length
 *   N bytes   JSON: {"name": {"dtype": "F32", "shape": [2, 3],
 *                             "data_offsets": [begin, end]}, ...,
 *                    "__metadata__": {"key": "value", ...}}
 *             padded with spaces to a multiple of 8
 *   the data  each tensor's bytes, C order, little-endian, at
 *             [begin, end) relative to the end of the header
 *
 * dtypes: F32 F64 F16 BF16 I64 I32 I8 U8 BOOL.
 *
 * Saving is atomic: the file is written under a temporary name in the same
 * directory, fsync'd, renamed over the final name, and the directory is
 * fsync'd, so a crash leaves the old file or the new one, never a mix.
 * Loading checks everything before trusting it (header length against the
 * file size, JSON syntax, dtypes, shapes, offsets inside the data, no
 * overlaps or holes, shape * itemsize == span) and gives SP_ERR_FORMAT
 * naming the file and the problem; it never allocates more than the file
 * holds.
 */
#ifndef SPORE_IO_H
#define SPORE_IO_H

#include "spore/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What sp_checkpoint_load returns.  Everything is owned by the struct and
 * freed by sp_checkpoint_free.  Tensors are in the header's order. */
typedef struct sp_checkpoint {
    int n;
    char **names;
    sp_tensor **tensors;  /* contiguous CPU tensors */
    int nmeta;
    char **meta_keys;
    char **meta_values;
} sp_checkpoint;

/* Saves n named tensors (CPU, any layout, any dtype) and nmeta string
 * key/value pairs (may be 0 with NULL arrays) to `path`, atomically.
 * Names must be non-empty, unique and not "__metadata__".  On failure the
 * file at `path` is untouched and the temporary file is removed. */
sp_status sp_checkpoint_save(const char *path, int n, const char *const *names,
                             sp_tensor *const *tensors, int nmeta,
                             const char *const *meta_keys, const char *const *meta_values);
/* Loads a safetensors file into a new *out (free with sp_checkpoint_free). */
sp_status sp_checkpoint_load(const char *path, sp_checkpoint **out);
/* The same on bytes in memory; `name` is used in messages (may be NULL). */
sp_status sp_checkpoint_load_mem(const void *data, size_t size, const char *name,
                                 sp_checkpoint **out);
void sp_checkpoint_free(sp_checkpoint *c); /* NULL is fine */
/* The tensor named `name` (borrowed), or NULL when there is none. */
sp_tensor *sp_checkpoint_find(const sp_checkpoint *c, const char *name);
/* The metadata value for `key` (borrowed), or NULL when there is none. */
const char *sp_checkpoint_meta(const sp_checkpoint *c, const char *key);

#ifdef __cplusplus
}
#endif
#endif
