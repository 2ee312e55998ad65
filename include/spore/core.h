/*
 * spore/core.h -- the tensor core of Spore's public C API.
 *
 * Everything a C user or a language binding needs to make, view, copy and
 * print tensors: status codes and the thread-local error message, dtypes with
 * numpy's promotion rules, devices, ref-counted buffers and strided tensors,
 * the thread pool's size and the counter-based (Philox 4x32-10) generator.
 *
 * Ownership: every function named *_new, and every function that hands back a
 * tensor through an `out` argument, gives the caller one reference; the caller
 * drops it with sp_tensor_release().  Views share their base's buffer, so
 * releasing the base first is fine.
 *
 * Errors: functions return sp_status (SP_OK == 0) or NULL, and leave a
 * message in sp_last_error().  Nothing a user can cause aborts the process.
 */
#ifndef SPORE_CORE_H
#define SPORE_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SPORE_VERSION "0.1.0"
#define SP_MAX_DIMS 8

/* ---- status and errors ------------------------------------------------ */

typedef enum sp_status {
    SP_OK = 0,
    SP_ERR_ARG,         /* a bad argument: bad axis, negative size, NULL */
    SP_ERR_SHAPE,       /* shapes that do not fit together */
    SP_ERR_DTYPE,       /* a dtype the operation does not support */
    SP_ERR_NOMEM,       /* an allocation failed */
    SP_ERR_IO,          /* a file could not be read or written */
    SP_ERR_FORMAT,      /* a file or text is malformed */
    SP_ERR_UNSUPPORTED, /* a feature that is not there (yet) */
    SP_ERR_DEVICE,      /* a device that is missing or failed */
    SP_ERR_SYNTAX,      /* bad source code */
    SP_ERR_TYPE,        /* a type error found in a program */
    SP_ERR_RUNTIME,     /* an error while running a program */
    SP_ERR_INTERNAL,    /* a broken invariant: a bug in Spore */
    SP_ERR_VALUE        /* the value of a meta tensor was needed (not known at
                           compile time) */
} sp_status;

/* The message of the last error on this thread; "" when there was none.
 * The string stays valid until the next Spore call on this thread. */
const char *sp_last_error(void);
/* The status code of the last error on this thread (SP_OK when none). */
sp_status sp_last_status(void);
/* Forgets the last error on this thread. */
void sp_clear_error(void);
/* A short name for a status ("shape error"); never NULL. */
const char *sp_status_name(sp_status s);
/* Sets this thread's error message (printf-style) and returns `code`, so
 * that `return sp_error(SP_ERR_SHAPE, "...")` reports and fails in one. */
sp_status sp_error(sp_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- dtypes ------------------------------------------------------------ */

typedef enum sp_dtype {
    SP_F32 = 0,
    SP_F64,
    SP_F16,
    SP_BF16,
    SP_I8,
    SP_U8,
    SP_I32,
    SP_I64,
    SP_BOOL,
    SP_DTYPE_COUNT
} sp_dtype;

/* Bit masks of dtypes, used by the op registry to say what a primitive takes. */
#define SP_DTM(d) (1u << (d))
#define SP_DTM_FLOAT (SP_DTM(SP_F32) | SP_DTM(SP_F64) | SP_DTM(SP_F16) | SP_DTM(SP_BF16))
#define SP_DTM_F3264 (SP_DTM(SP_F32) | SP_DTM(SP_F64))
#define SP_DTM_INT (SP_DTM(SP_I8) | SP_DTM(SP_U8) | SP_DTM(SP_I32) | SP_DTM(SP_I64))
#define SP_DTM_INDEX (SP_DTM(SP_I32) | SP_DTM(SP_I64))
#define SP_DTM_NUM (SP_DTM_FLOAT | SP_DTM_INT)
#define SP_DTM_ALL (SP_DTM_NUM | SP_DTM(SP_BOOL))

/* Size in bytes of one element; 0 for an invalid dtype. */
size_t sp_dtype_size(sp_dtype d);
/* numpy's name ("float32", "bfloat16", "bool"); "invalid" for a bad value. */
const char *sp_dtype_name(sp_dtype d);
/* Parses a numpy-style name ("float32", "f32", "int64", "bool", ...).
 * Returns SP_OK or SP_ERR_DTYPE with a message. */
sp_status sp_dtype_parse(const char *name, sp_dtype *out);
int sp_dtype_is_float(sp_dtype d);   /* f32 f64 f16 bf16 */
int sp_dtype_is_int(sp_dtype d);     /* i8 u8 i32 i64 (not bool) */
int sp_dtype_is_signed(sp_dtype d);  /* floats and signed ints */
/* numpy's promotion of two dtypes (np.promote_types), with bfloat16 as
 * ml_dtypes does it: bf16+f16 -> f32, bf16+int8/uint8 -> bf16, bf16+wider
 * int -> f64 as float16 does.  Cannot fail. */
sp_dtype sp_dtype_promote(sp_dtype a, sp_dtype b);

/* ---- devices ------------------------------------------------------------ */

/* SP_DEVICE_META is no device: a meta tensor has a dtype, shape and strides
 * but no storage (its buffer's data is NULL).  The compiler evaluates code
 * abstractly on meta tensors; a primitive with a meta input only infers its
 * outputs (see sp_op_trace_set in src/ops/ops.h).  Anything that reads a
 * meta tensor's values fails with SP_ERR_VALUE, never crashes. */
typedef enum sp_device_type {
    SP_DEVICE_CPU = 0,
    SP_DEVICE_CUDA = 1,
    SP_DEVICE_META = 2
} sp_device_type;
typedef struct sp_device {
    sp_device_type type;
    int index;
} sp_device;
#define SP_CPU ((sp_device){SP_DEVICE_CPU, 0})
#define SP_META ((sp_device){SP_DEVICE_META, 0})

/* The default device: where a tensor goes when its maker names no device
 * and has no tensor input to follow -- primitives without inputs (zeros,
 * ones, full, arange, the random draws), tensors made from literals, lists
 * and numpy arrays (spore.tensor, Tensor(...)), the API's creation
 * functions.  MindSpore's set_context(device_target=...) and `spore run
 * --device` set it.  Process-wide (one atomic word, as MindSpore's context
 * is), the CPU at start.  A 0-d tensor made from a Python scalar stays on
 * the CPU whatever the default: primitives read it beside tensors of any
 * one device (see sp_op_call in spore/ops.h).  Cannot fail. */
sp_device sp_default_device(void);
/* Sets the default device.  The CPU always works; a CUDA device must be
 * there: the CUDA backend is loaded (libspore_cuda.so, a few hundred ms the
 * first time) and asked, and a missing one is SP_ERR_DEVICE with the
 * library's reason ("no CUDA backend: ...").  Spore drives one GPU, cuda:0;
 * another index is SP_ERR_DEVICE too.  SP_DEVICE_META or an unknown type is
 * SP_ERR_ARG.  On any error the default is unchanged. */
sp_status sp_set_default_device(sp_device dev);
/* Parses "cpu", "cuda", "cuda:N", "gpu", "gpu:N" (any case; "GPU" is
 * MindSpore's device_target) into *out.  Checks the text only, not that the
 * device is there.  SP_ERR_ARG naming the text otherwise. */
sp_status sp_device_parse(const char *s, sp_device *out);
/* Writes "cpu", "cuda:0" or "meta" into buf (always NUL-terminated);
 * returns buf. */
char *sp_device_str(sp_device dev, char *buf, size_t n);

/* ---- buffers ------------------------------------------------------------ */

/* A ref-counted block of device memory.  CPU buffers come from a 64-byte
 * aligned allocator that counts live bytes. */
typedef struct sp_buffer {
    void *data;
    size_t nbytes;
    sp_device device;
    int refcount;               /* touched only with atomic builtins */
    void (*deleter)(void *ctx); /* external memory: called on last release */
    void *deleter_ctx;
} sp_buffer;

/* A new buffer of `nbytes` (uninitialized) on `dev`; NULL + error on failure. */
sp_buffer *sp_buffer_new(sp_device dev, size_t nbytes);
/* Wraps memory the caller owns; `deleter(ctx)` runs on the last release
 * (deleter may be NULL: the memory must then outlive the buffer). */
sp_buffer *sp_buffer_wrap(sp_device dev, void *data, size_t nbytes,
                          void (*deleter)(void *ctx), void *ctx);
void sp_buffer_retain(sp_buffer *b);
void sp_buffer_release(sp_buffer *b); /* NULL is fine */

/* Bytes currently held by Spore's CPU allocator (all threads).  Tests use it
 * to prove that nothing leaks. */
int64_t sp_cpu_live_bytes(void);
/* 64-byte aligned allocation counted in sp_cpu_live_bytes(); NULL + error on
 * failure; a request of 0 bytes returns a valid unique pointer. */
void *sp_cpu_alloc(size_t nbytes);
void sp_cpu_free(void *p); /* NULL is fine */

/* ---- tensors ------------------------------------------------------------ */

typedef struct sp_tensor {
    sp_dtype dtype;
    int ndim;
    int64_t shape[SP_MAX_DIMS];
    int64_t strides[SP_MAX_DIMS]; /* in elements; may be 0 (broadcast) */
    int64_t offset;               /* in elements, into buf */
    sp_buffer *buf;
    int refcount;                 /* touched only with atomic builtins */
} sp_tensor;

/* A new contiguous tensor with uninitialized memory.  shape may be NULL when
 * ndim == 0.  NULL + error on a negative size, ndim > 8 or no memory.  On
 * SP_META (here and in sp_tensor_zeros) no memory is allocated. */
sp_tensor *sp_tensor_new(sp_dtype dtype, int ndim, const int64_t *shape, sp_device dev);
/* Like sp_tensor_new, filled with zeros. */
sp_tensor *sp_tensor_zeros(sp_dtype dtype, int ndim, const int64_t *shape, sp_device dev);
/* A new CPU tensor holding a copy of `data` (numel * itemsize bytes, C order). */
sp_tensor *sp_tensor_from_data(sp_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* A 0-d CPU tensor holding `v` converted to `dtype`. */
sp_tensor *sp_tensor_scalar(sp_dtype dtype, double v);
/* A tensor over an existing buffer (retained) with the given layout; checks
 * that every reachable element lies inside the buffer. */
sp_tensor *sp_tensor_view_of(sp_buffer *buf, sp_dtype dtype, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset);
void sp_tensor_retain(sp_tensor *t);
void sp_tensor_release(sp_tensor *t); /* NULL is fine */

int64_t sp_tensor_numel(const sp_tensor *t);
size_t sp_tensor_nbytes(const sp_tensor *t);      /* numel * itemsize */
int sp_tensor_is_contiguous(const sp_tensor *t);  /* C order, no gaps */
/* Nonzero when t is a meta tensor (no storage; on SP_META).  NULL: 0. */
int sp_tensor_is_meta(const sp_tensor *t);
/* Address of element 0 (buffer data + offset); for CPU tensors.  NULL for
 * a meta tensor. */
void *sp_tensor_data(const sp_tensor *t);
/* Element at a multi-index, converted to double (CPU only; for tests and
 * printing).  Returns NaN and sets an error on a bad index. */
double sp_tensor_get(const sp_tensor *t, const int64_t *index);
/* Writes "(2, 3)" for a shape into buf (always NUL-terminated); returns buf. */
char *sp_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

/* Views: no copy; the result shares t's buffer.  Each returns SP_OK and a new
 * reference in *out, or an error naming the shapes/axes that were wrong.
 * Negative axes count from the end, as in numpy. */
/* Reshape; one entry may be -1.  A view when the strides allow it, a
 * contiguous copy otherwise (numpy's rule). */
sp_status sp_tensor_reshape(sp_tensor *t, int ndim, const int64_t *shape, sp_tensor **out);
sp_status sp_tensor_permute(sp_tensor *t, const int *perm, sp_tensor **out);
sp_status sp_tensor_transpose(sp_tensor *t, int dim0, int dim1, sp_tensor **out);
/* t[start:stop:step] on one axis, with Python's clamping; step != 0 and may
 * be negative; SP_SLICE_NONE for an omitted start or stop. */
#define SP_SLICE_NONE INT64_MIN
sp_status sp_tensor_slice(sp_tensor *t, int axis, int64_t start, int64_t stop, int64_t step,
                          sp_tensor **out);
/* broadcast_to: numpy rules; broadcast dims get stride 0. */
sp_status sp_tensor_expand(sp_tensor *t, int ndim, const int64_t *shape, sp_tensor **out);
/* Removes one size-1 axis, or every size-1 axis when axis == SP_ALL_AXES. */
#define SP_ALL_AXES (-1000)
sp_status sp_tensor_squeeze(sp_tensor *t, int axis, sp_tensor **out);
/* Inserts a size-1 axis at `axis` (in the result's numbering, -1 = last). */
sp_status sp_tensor_unsqueeze(sp_tensor *t, int axis, sp_tensor **out);

/* Copies: each returns a new contiguous tensor on t's device. */
/* t itself (retained) when already contiguous, else a C-order copy. */
sp_status sp_tensor_contiguous(sp_tensor *t, sp_tensor **out);
/* A C-order copy converted to `dtype` (numpy's astype: float->int truncates
 * toward zero; NaN/inf or out-of-range to int gives 0/the wrapped value,
 * never undefined behaviour; nonzero -> true for bool). */
sp_status sp_tensor_cast(sp_tensor *t, sp_dtype dtype, sp_tensor **out);
/* dst[...] = src broadcast to dst's shape, converting dtypes.  dst may be a
 * strided view; src and dst must not overlap. */
sp_status sp_tensor_copy_into(sp_tensor *dst, const sp_tensor *src);
/* Fills every element of t (any layout) with v converted to t's dtype. */
sp_status sp_tensor_fill(sp_tensor *t, double v);

/* numpy's repr of the values only, e.g. "[ 4. 10. 18.]" or "[[1 2]\n [3 4]]";
 * a malloc'd string the caller frees with free(); NULL + error on failure. */
char *sp_tensor_to_string(const sp_tensor *t);
/* Prints sp_tensor_to_string(t) and a newline to f. */
sp_status sp_tensor_print(const sp_tensor *t, FILE *f);

/* ---- threads ------------------------------------------------------------ */

/* Threads used by kernels.  The default is SPORE_NUM_THREADS from the
 * environment, else the number of online CPUs.  n < 1 is an error. */
sp_status sp_set_num_threads(int n);
int sp_get_num_threads(void);

/* ---- random numbers (Philox 4x32-10) --------------------------------------
 * Counter-based: element i of a fill depends only on (seed, offset, i), so the
 * same seed gives the same numbers with any thread count and on any device.
 * One Philox call on counter (offset + i/4) yields 4 uint32; element i uses
 * lane i%4 (uniform, bernoulli, randint), normals use Box-Muller on the
 * pair of lanes (2*(i%2), 2*(i%2)+1) of the block offset + i/2. */

/* The raw generator: 4 uint32 for a 128-bit counter (ctr_lo, ctr_hi) and a
 * 64-bit key. */
void sp_philox4x32(uint64_t key, uint64_t ctr_lo, uint64_t ctr_hi, uint32_t out[4]);
/* The global generator: sp_set_seed() resets it; sp_rng_next() returns the
 * seed and reserves `nblocks` Philox blocks starting at *offset, so every
 * eager random call draws fresh numbers. */
void sp_set_seed(uint64_t seed);
uint64_t sp_get_seed(void);
void sp_rng_next(uint64_t nblocks, uint64_t *seed, uint64_t *offset);
/* Fills a contiguous float tensor (any float dtype; ints for randint). */
sp_status sp_rng_uniform(sp_tensor *t, uint64_t seed, uint64_t offset, double low, double high);
sp_status sp_rng_normal(sp_tensor *t, uint64_t seed, uint64_t offset, double mean, double std);
/* 1 with probability p, else 0, in t's dtype (any dtype, bool included). */
sp_status sp_rng_bernoulli(sp_tensor *t, uint64_t seed, uint64_t offset, double p);
/* Integers uniform in [low, high) (t integer or float). high > low. */
sp_status sp_rng_randint(sp_tensor *t, uint64_t seed, uint64_t offset, int64_t low, int64_t high);

#ifdef __cplusplus
}
#endif
#endif
