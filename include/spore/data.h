/*
 * spore/data.h -- datasets: file loaders, vision transforms and the input
 * pipeline that feeds training.
 *
 * Three layers, each usable alone:
 *  - loaders turn files into tensors: IDX (MNIST, Fashion-MNIST; raw or
 *    gzip-compressed) and CIFAR-10's binary batches.  Every malformed,
 *    truncated or oversized file gives SP_ERR_FORMAT (SP_ERR_IO when it
 *    cannot be read) with a message naming the file and what is wrong; a
 *    loader never allocates more than the file can actually hold.
 *  - transforms (sp_transform) are MindSpore's vision operations on one
 *    image tensor, HWC (or HW) as MindSpore takes them: Rescale, Normalize,
 *    HWC2CHW, RandomCrop, RandomHorizontalFlip, Resize, TypeCast, plus a
 *    callback.  Random transforms draw from Philox keyed by (seed, a 64-bit
 *    counter) the caller passes, so a transform is a pure function.
 *  - datasets (sp_dataset) are immutable pipeline descriptions: a source
 *    (tensors sliced along axis 0, MNIST, CIFAR-10, a pull callback), then
 *    map / shuffle / batch / repeat.  An iterator (sp_data_iter) runs one
 *    pass of a description in worker threads with a bounded prefetch queue.
 *
 * Determinism: a pipeline's output (values and order) depends only on the
 * dataset description, its seeds and the iterator's epoch, never on the
 * number of workers or on timing: parallel maps reorder their results back
 * into input order, and the random draws of row k of a map are keyed by k.
 *
 * Ownership: *_new / constructors return one reference; datasets and
 * transforms are ref-counted and a dataset built on another retains it, so
 * the caller may release its own references at any time.  Rows handed out
 * by an iterator are new tensor references the caller releases.
 */
#ifndef SPORE_DATA_H
#define SPORE_DATA_H

#include "spore/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loaders ------------------------------------------------------------- */

/* Reads an IDX file (raw, or gzip/zlib-compressed: detected by its first
 * bytes).  The dtype follows the IDX type code: 0x08 uint8, 0x09 int8,
 * 0x0B int16 (widened to int32: Spore has no int16), 0x0C int32, 0x0D
 * float32, 0x0E float64; dimensions are big-endian.  On success *out is a
 * new contiguous CPU tensor.  A bad magic, type code, rank > 8, a
 * truncated body or trailing data gives SP_ERR_FORMAT naming the file;
 * SP_ERR_IO when it cannot be opened. */
sp_status sp_idx_load(const char *path, sp_tensor **out);
/* The same on bytes in memory; `name` is used in messages (may be NULL). */
sp_status sp_idx_load_mem(const void *data, size_t size, const char *name, sp_tensor **out);
/* Writes t (any dtype IDX can hold: uint8, int8, int32, float32, float64)
 * as a raw IDX file.  For tests and for users converting data. */
sp_status sp_idx_save(const char *path, const sp_tensor *t);

/* Loads MNIST-format data (MNIST, Fashion-MNIST) from `dir`: usage "train"
 * reads train-images-idx3-ubyte and train-labels-idx1-ubyte, "test" the
 * t10k-* files, each raw or with ".gz" (also the "train-images.idx3-ubyte"
 * spelling).  *images: uint8 (N, 28, 28); *labels: uint8 (N,).  Errors name
 * the directory or file: missing files, wrong dtypes/ranks, N mismatch. */
sp_status sp_mnist_load(const char *dir, const char *usage, sp_tensor **images,
                        sp_tensor **labels);

/* Loads CIFAR-10 binary batches from `dir` (or dir/cifar-10-batches-bin):
 * usage "train" reads data_batch_1.bin .. data_batch_5.bin, "test" reads
 * test_batch.bin, "all" both.  Each record is 1 label byte and 3072 pixel
 * bytes (1024 red, 1024 green, 1024 blue, row-major 32x32).
 * *images: uint8 (N, 32, 32, 3) HWC as MindSpore gives them; *labels:
 * uint8 (N,).  A size that is not a multiple of 3073 or a label > 9 gives
 * SP_ERR_FORMAT naming the file (and the record). */
sp_status sp_cifar10_load(const char *dir, const char *usage, sp_tensor **images,
                          sp_tensor **labels);
/* One batch file's bytes in memory; appends nothing, returns new tensors. */
sp_status sp_cifar10_load_mem(const void *data, size_t size, const char *name,
                              sp_tensor **images, sp_tensor **labels);

/* ---- transforms ------------------------------------------------------------ */

typedef struct sp_transform sp_transform;

/* Interpolation of Resize. */
typedef enum sp_interp { SP_INTERP_BILINEAR = 0, SP_INTERP_NEAREST = 1 } sp_interp;

/* A user transform: maps `n` columns in[] to n columns out[] (new
 * references).  Returns SP_OK or an error status with sp_error() set.
 * `seed`/`counter` identify the row, for callbacks that draw randomness.
 * Called from worker threads, one row per call, possibly concurrently. */
typedef sp_status (*sp_transform_fn)(void *ctx, int n, sp_tensor *const *in, sp_tensor **out,
                                     uint64_t seed, uint64_t counter);

/* Constructors: NULL + error on a bad argument.  All but the callback take
 * exactly one column. */
/* out = in * rescale + shift, as float32. */
sp_transform *sp_transform_rescale(double rescale, double shift);
/* out[..., c] = (in[..., c] - mean[c]) / std[c] as float32, on HWC images
 * (n == C) or HW images (n == 1).  std[c] must be nonzero. */
sp_transform *sp_transform_normalize(int n, const double *mean, const double *std);
/* (H, W, C) -> (C, H, W), contiguous; HW images pass unchanged.  The result
 * may share memory with the input when no copy is needed. */
sp_transform *sp_transform_hwc2chw(void);
/* Pads HWC/HW images by padding[4] = {left, top, right, bottom} with
 * `fill`, then crops a (h, w) window at a uniformly random position.
 * pad_if_needed pads a too-small image up to (h, w) first, else that is an
 * error naming the sizes. */
sp_transform *sp_transform_random_crop(int64_t h, int64_t w, const int64_t padding[4],
                                       int pad_if_needed, double fill);
/* Mirrors HWC/HW images left-right with probability prob in [0, 1]. */
sp_transform *sp_transform_random_horizontal_flip(double prob);
/* Resizes HWC/HW images to (h, w); w <= 0 means "resize the shorter side to
 * h keeping the aspect ratio" (MindSpore's Resize(int)).  Bilinear uses
 * half-pixel centres (OpenCV INTER_LINEAR without its fixed-point
 * rounding); integer images round to nearest and saturate. */
sp_transform *sp_transform_resize(int64_t h, int64_t w, sp_interp interp);
/* Casts to dtype (sp_tensor_cast semantics). */
sp_transform *sp_transform_type_cast(sp_dtype dtype);
/* A user callback over `ncols` columns; free_ctx(ctx) (may be NULL) runs
 * when the last reference goes. */
sp_transform *sp_transform_callback(int ncols, sp_transform_fn fn, void *ctx,
                                    void (*free_ctx)(void *ctx));
void sp_transform_retain(sp_transform *t);
void sp_transform_release(sp_transform *t); /* NULL is fine */
/* How many columns the transform takes (1 for the vision transforms). */
int sp_transform_num_columns(const sp_transform *t);
/* Applies t to n columns in[] giving new references in out[].  Random
 * transforms are keyed by (seed, counter): same key, same result.  Errors
 * name the transform and the offending shape or dtype. */
sp_status sp_transform_apply(sp_transform *t, int n, sp_tensor *const *in, sp_tensor **out,
                             uint64_t seed, uint64_t counter);

/* ---- datasets ---------------------------------------------------------- */

typedef struct sp_dataset sp_dataset;

#define SP_DATA_MAX_COLUMNS 16

/* A pull source: fills row[0..ncols-1] with new references and sets *end =
 * 0, or sets *end = 1 at the end of the data.  reset (may be NULL, then
 * the source can be read by one pass only) starts the data over: it is
 * called when an iterator starts (with the iterator's epoch) and before
 * every later pass of a repeat (with a number derived from the epoch and
 * the pass).  Both are called from one thread at a time, not always the
 * same one and usually not the caller's: a binding to an interpreter with
 * a global lock takes the lock inside the callback, and must release it
 * while it waits in sp_data_iter_next.  Two iterators over one pull
 * dataset share its ctx; that is safe only if the callbacks make it so. */
typedef sp_status (*sp_data_pull_fn)(void *ctx, sp_tensor **row, int *end);
typedef sp_status (*sp_data_reset_fn)(void *ctx, uint64_t epoch);

/* Sources.  Each returns NULL + error on a bad argument. */
/* Rows are slices along axis 0 of `ncols` tensors with equal first
 * dimensions (NumpySlicesDataset); the tensors are retained, rows are views. */
sp_dataset *sp_dataset_from_tensors(int ncols, sp_tensor *const *cols, const char *const *names);
/* MnistDataset: columns "image" uint8 (28, 28, 1) and "label" uint8. */
sp_dataset *sp_dataset_mnist(const char *dir, const char *usage);
/* Cifar10Dataset: columns "image" uint8 (32, 32, 3) and "label" uint8. */
sp_dataset *sp_dataset_cifar10(const char *dir, const char *usage);
/* GeneratorDataset: rows come from pull(); free_ctx(ctx) runs when the
 * last reference goes.  On failure (NULL) ctx is not freed: it stays the
 * caller's. */
sp_dataset *sp_dataset_from_pull(int ncols, const char *const *names, sp_data_pull_fn pull,
                                 sp_data_reset_fn reset, void *ctx, void (*free_ctx)(void *ctx));

/* Operations: each returns a new dataset that retains `ds`, or NULL + error. */
/* Applies transforms ops[0..nops-1] in turn to the columns named by
 * cols[0..ncols-1] (indices; each op must take ncols columns, or 1 when
 * ncols == 1).  Rows are processed in parallel by the iterator's workers and
 * come out in input order.  `seed` keys the random transforms; row k of this
 * map (counted from the start of the iteration, across repeats) uses
 * counter k. */
sp_dataset *sp_dataset_map(sp_dataset *ds, int nops, sp_transform *const *ops, int ncols,
                           const int *cols, uint64_t seed);
/* MindSpore's shuffle: a buffer of buffer_size rows, each output row drawn
 * uniformly from it and replaced by the next input.  The order depends only
 * on (seed, epoch).  buffer_size >= 1 (1 = no shuffling). */
sp_dataset *sp_dataset_shuffle(sp_dataset *ds, int64_t buffer_size, uint64_t seed);
/* Stacks batch_size consecutive rows per column (shapes and dtypes must
 * match, else an error at iteration naming the rows' shapes); the last
 * short batch is dropped when drop_remainder, else emitted. */
sp_dataset *sp_dataset_batch(sp_dataset *ds, int64_t batch_size, int drop_remainder);
/* Runs the upstream `count` times (count == -1: forever); each pass after
 * the first resets the upstream with the next epoch number. */
sp_dataset *sp_dataset_repeat(sp_dataset *ds, int64_t count);

void sp_dataset_retain(sp_dataset *ds);
void sp_dataset_release(sp_dataset *ds); /* NULL is fine */
int sp_dataset_num_columns(const sp_dataset *ds);
/* The column's name (borrowed, lives as long as ds); NULL if out of range. */
const char *sp_dataset_column_name(const sp_dataset *ds, int col);
/* Rows one pass yields when that can be known without reading (sources
 * from tensors, MNIST, CIFAR, and ops on them); -1 when unknown (pull
 * sources, infinite repeat). */
int64_t sp_dataset_size(const sp_dataset *ds);

/* ---- iterators --------------------------------------------------------- */

typedef struct sp_data_iter sp_data_iter;

/* Starts one pass over ds.  num_workers in [0, 256] threads per map (0:
 * maps run inline on the thread that pulls from them); prefetch rows are
 * read ahead into a bounded queue by a background thread (0: no thread,
 * sp_data_iter_next runs the pipeline on the caller's thread); `epoch` is
 * mixed into the seeds of shuffles and random transforms (pass the epoch
 * number to get a new order and new crops each epoch).  The output is the
 * same for every num_workers and prefetch.  NULL + error on a bad argument
 * or when threads cannot start. */
sp_data_iter *sp_data_iter_new(sp_dataset *ds, int num_workers, int prefetch, uint64_t epoch);
/* The next row: row[0..ncols-1] receive new references and *end = 0, or
 * *end = 1 when the pass is over.  An error anywhere in the pipeline
 * (a bad file, a transform on a wrong shape) comes back here with its
 * message, once the rows before it have been delivered; after an error or
 * the end every call repeats that outcome. */
sp_status sp_data_iter_next(sp_data_iter *it, sp_tensor **row, int *end);
/* Stops the workers (joining them) and frees everything, mid-pass or not.
 * NULL is fine. */
void sp_data_iter_free(sp_data_iter *it);

#ifdef __cplusplus
}
#endif
#endif
