/*
 * dtype.c -- element types: sizes, names, parsing and numpy's promotion.
 *
 * Spore's dtypes are numpy's, plus bfloat16 as ml_dtypes defines it.  The
 * promotion of two dtypes is a fixed 9x9 table rather than a rule computed
 * from kinds and sizes: numpy's lattice has irregular corners (float16 with
 * int32 gives float64, int8 with uint8 gives int16) that a short rule gets
 * wrong, and a table is checked against np.promote_types cell by cell in
 * tests/core/test_dtype.c.
 *
 * Where numpy's answer is a dtype Spore lacks, the table takes the smallest
 * Spore dtype that holds both operands exactly: int8 + uint8 is int16 in
 * numpy and int32 here.  bfloat16 follows ml_dtypes: it is a "float16-sized
 * float" that promotes like float16 with ints and bool, and meets float16 at
 * float32 (neither holds the other).
 *
 * The table is symmetric and each diagonal entry is the dtype itself; both
 * are asserted by the tests.
 */
#include <string.h>
#include <strings.h>

#include "spore/core.h"

static const size_t dtype_sizes[SP_DTYPE_COUNT] = {
    [SP_F32] = 4, [SP_F64] = 8, [SP_F16] = 2, [SP_BF16] = 2, [SP_I8] = 1,
    [SP_U8] = 1,  [SP_I32] = 4, [SP_I64] = 8, [SP_BOOL] = 1,
};

static const char *const dtype_names[SP_DTYPE_COUNT] = {
    [SP_F32] = "float32", [SP_F64] = "float64", [SP_F16] = "float16",
    [SP_BF16] = "bfloat16", [SP_I8] = "int8", [SP_U8] = "uint8",
    [SP_I32] = "int32", [SP_I64] = "int64", [SP_BOOL] = "bool",
};

static int dtype_valid(sp_dtype d) { return (unsigned)d < SP_DTYPE_COUNT; }

size_t sp_dtype_size(sp_dtype d) { return dtype_valid(d) ? dtype_sizes[d] : 0; }

const char *sp_dtype_name(sp_dtype d) { return dtype_valid(d) ? dtype_names[d] : "invalid"; }

/* Aliases accepted besides the canonical names: bit-width short forms and
 * PyTorch's unambiguous spellings.  numpy's byte codes ("i8" = int64) and
 * "float"/"int" (whose meaning differs between numpy and PyTorch) are left
 * out on purpose: a name that means two things is an error, not a guess. */
static const struct {
    const char *name;
    sp_dtype dtype;
} dtype_aliases[] = {
    {"f32", SP_F32}, {"f64", SP_F64},     {"double", SP_F64}, {"f16", SP_F16},
    {"half", SP_F16}, {"bf16", SP_BF16},  {"i8", SP_I8},      {"u8", SP_U8},
    {"i32", SP_I32}, {"i64", SP_I64},     {"long", SP_I64},   {"bool_", SP_BOOL},
};

sp_status sp_dtype_parse(const char *name, sp_dtype *out) {
    if (!name || !out) return sp_error(SP_ERR_ARG, "dtype parse: NULL argument");
    for (int d = 0; d < SP_DTYPE_COUNT; d++) {
        if (strcasecmp(name, dtype_names[d]) == 0) {
            *out = (sp_dtype)d;
            return SP_OK;
        }
    }
    for (size_t i = 0; i < sizeof dtype_aliases / sizeof dtype_aliases[0]; i++) {
        if (strcasecmp(name, dtype_aliases[i].name) == 0) {
            *out = dtype_aliases[i].dtype;
            return SP_OK;
        }
    }
    return sp_error(SP_ERR_DTYPE,
                    "unknown dtype '%s' (expected one of float32, float64, float16, bfloat16, "
                    "int8, uint8, int32, int64, bool)",
                    name);
}

int sp_dtype_is_float(sp_dtype d) {
    return d == SP_F32 || d == SP_F64 || d == SP_F16 || d == SP_BF16;
}

int sp_dtype_is_int(sp_dtype d) { return d == SP_I8 || d == SP_U8 || d == SP_I32 || d == SP_I64; }

int sp_dtype_is_signed(sp_dtype d) {
    return sp_dtype_is_float(d) || d == SP_I8 || d == SP_I32 || d == SP_I64;
}

#define F32 SP_F32
#define F64 SP_F64
#define F16 SP_F16
#define BF SP_BF16
#define I8 SP_I8
#define U8 SP_U8
#define I32 SP_I32
#define I64 SP_I64
#define BO SP_BOOL
static const unsigned char promote_table[SP_DTYPE_COUNT][SP_DTYPE_COUNT] = {
    /*          f32  f64  f16  bf16 i8   u8   i32  i64  bool */
    /* f32  */ {F32, F64, F32, F32, F32, F32, F64, F64, F32},
    /* f64  */ {F64, F64, F64, F64, F64, F64, F64, F64, F64},
    /* f16  */ {F32, F64, F16, F32, F16, F16, F64, F64, F16},
    /* bf16 */ {F32, F64, F32, BF, BF, BF, F64, F64, BF},
    /* i8   */ {F32, F64, F16, BF, I8, I32, I32, I64, I8},
    /* u8   */ {F32, F64, F16, BF, I32, U8, I32, I64, U8},
    /* i32  */ {F64, F64, F64, F64, I32, I32, I32, I64, I32},
    /* i64  */ {F64, F64, F64, F64, I64, I64, I64, I64, I64},
    /* bool */ {F32, F64, F16, BF, I8, U8, I32, I64, BO},
};
#undef F32
#undef F64
#undef F16
#undef BF
#undef I8
#undef U8
#undef I32
#undef I64
#undef BO

sp_dtype sp_dtype_promote(sp_dtype a, sp_dtype b) {
    /* "Cannot fail": an invalid operand is a caller bug; answer float32
     * rather than index out of the table. */
    if (!dtype_valid(a) || !dtype_valid(b)) return SP_F32;
    return (sp_dtype)promote_table[a][b];
}
