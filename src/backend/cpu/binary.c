/*
 * binary.c -- the CPU kernels of the binary elementwise primitives (add ...
 * logical_or) and of where, with numpy broadcasting and mixed input dtypes.
 *
 * Each op is a formula per compute dtype; elementwise.h turns it into a loop
 * with contiguous, scalar-broadcast and strided paths, and cpu_ew_run
 * (cast.c) iterates, threads and converts.  The compute dtype is chosen per
 * family, and inputs of any other dtype are converted to it in blocks:
 *   arithmetic   the output dtype inference gave (float16/bfloat16 -> f32);
 *                div of integers therefore runs in float32;
 *   comparisons  the promoted input dtype (numpy compares int64 with
 *                float32 in float64, not in either input's type);
 *   logical      the inputs' dtype when they agree, else bool (nonzero);
 *   where        the output dtype, moved as raw bits (no arithmetic), and a
 *                one-byte condition (bool, int8, uint8 read as nonzero; other
 *                dtypes are converted to bool first).
 *
 * Integer semantics are total, never a trap or undefined behaviour:
 * add/sub/mul wrap (computed in the unsigned twin type); division and modulo
 * by zero give 0; INT_MIN // -1 wraps to INT_MIN and INT_MIN % -1 is 0;
 * floor_div rounds toward -inf and mod takes the divisor's sign (Python's
 * rules); pow uses repeated squaring, wraps, and gives 0 for a negative
 * exponent unless |base| == 1.  Floats follow numpy exactly: maximum/minimum
 * propagate NaN, floor_div and mod use numpy's fmod-based divmod (so
 * floor_div(x, 0) = x/0 and mod(x, 0) = NaN).
 */
#include "backend/cpu/elementwise.h"

/* ---- scalar helpers ---- */

/* numpy's npy_divmod for float types: floor quotient and the remainder with
 * the divisor's sign, both exact-snapped as numpy does. */
#define EW_FLOAT_DIVMOD(SUF, T, FMOD, FLOOR, COPYSIGN)                                       \
    static inline T ew_divmod_##SUF(T a, T b, T *modulus) {                                  \
        T mod = FMOD(a, b);                                                                  \
        if (!b) {                                                                            \
            *modulus = mod;                                                                  \
            return a / b;                                                                    \
        }                                                                                    \
        T div = (a - mod) / b;                                                               \
        if (mod) {                                                                           \
            if ((b < 0) != (mod < 0)) {                                                      \
                mod += b;                                                                    \
                div -= 1;                                                                    \
            }                                                                                \
        } else {                                                                             \
            mod = COPYSIGN(0, b);                                                            \
        }                                                                                    \
        T floordiv;                                                                          \
        if (div) {                                                                           \
            floordiv = FLOOR(div);                                                           \
            if (div - floordiv > (T)0.5) floordiv += 1;                                      \
        } else {                                                                             \
            floordiv = COPYSIGN(0, a / b);                                                   \
        }                                                                                    \
        *modulus = mod;                                                                      \
        return floordiv;                                                                     \
    }                                                                                        \
    static inline T ew_floordiv_##SUF(T a, T b) {                                            \
        T m;                                                                                 \
        return ew_divmod_##SUF(a, b, &m);                                                    \
    }                                                                                        \
    static inline T ew_mod_##SUF(T a, T b) {                                                 \
        T m;                                                                                 \
        if (!b) return FMOD(a, b);                                                           \
        ew_divmod_##SUF(a, b, &m);                                                           \
        return m;                                                                            \
    }

EW_FLOAT_DIVMOD(f32, float, fmodf, floorf, copysignf)
EW_FLOAT_DIVMOD(f64, double, fmod, floor, copysign)

/* Signed integers, computed so that nothing overflows: U is T's unsigned
 * twin, in which wrapping is defined. */
#define EW_SINT_HELPERS(SUF, T, U)                                                            \
    static inline T ew_floordiv_##SUF(T a, T b) {                                            \
        if (b == 0) return 0;                                                                \
        if (b == -1) return (T)(U)(0u - (U)a); /* MIN // -1 wraps to MIN */                  \
        T q = (T)(a / b);                                                                    \
        if ((T)(a % b) != 0 && ((a < 0) != (b < 0))) q--;                                    \
        return q;                                                                            \
    }                                                                                        \
    static inline T ew_mod_##SUF(T a, T b) {                                                 \
        if (b == 0 || b == -1) return 0;                                                     \
        T r = (T)(a % b);                                                                    \
        if (r != 0 && ((r < 0) != (b < 0))) r = (T)(r + b);                                  \
        return r;                                                                            \
    }                                                                                        \
    static inline T ew_pow_##SUF(T a, T b) {                                                 \
        if (b < 0) return a == 1 ? 1 : a == -1 ? (((U)b & 1u) ? -1 : 1) : 0;                 \
        U r = 1, x = (U)a, e = (U)b;                                                         \
        while (e) {                                                                          \
            if (e & 1u) r = (U)(r * x);                                                      \
            x = (U)(x * x);                                                                  \
            e >>= 1;                                                                         \
        }                                                                                    \
        return (T)r;                                                                         \
    }

EW_SINT_HELPERS(i8, int8_t, uint8_t)
EW_SINT_HELPERS(i32, int32_t, uint32_t)
EW_SINT_HELPERS(i64, int64_t, uint64_t)

static inline uint8_t ew_floordiv_u8(uint8_t a, uint8_t b) { return b ? (uint8_t)(a / b) : 0; }
static inline uint8_t ew_mod_u8(uint8_t a, uint8_t b) { return b ? (uint8_t)(a % b) : 0; }
static inline uint8_t ew_pow_u8(uint8_t a, uint8_t b) {
    unsigned r = 1, x = a;
    while (b) {
        if (b & 1u) r = (r * x) & 0xffu;
        x = (x * x) & 0xffu;
        b >>= 1;
    }
    return (uint8_t)r;
}

/* ---- loop generation ---- */

#define EW_TAB(op) static const cpu_ew_loop op##_tab[SP_DTYPE_COUNT]

/* A numeric op from five formulas: float32, float64, signed ints (given T,
 * U), uint8.  Formulas use `a` and `b`. */
#define EW_S8(E) E(int8_t, uint8_t, i8)
#define EW_S32(E) E(int32_t, uint32_t, i32)
#define EW_S64(E) E(int64_t, uint64_t, i64)

#define EW_NUM_OP(op, EXPR_F, EXPR_D, EXPR_S, EXPR_U)                                         \
    CPU_EW_LOOP2(op##_f32, float, float, EXPR_F)                                              \
    CPU_EW_LOOP2(op##_f64, double, double, EXPR_D)                                            \
    CPU_EW_LOOP2(op##_i8, int8_t, int8_t, EW_S8(EXPR_S))                                      \
    CPU_EW_LOOP2(op##_i32, int32_t, int32_t, EW_S32(EXPR_S))                                  \
    CPU_EW_LOOP2(op##_i64, int64_t, int64_t, EW_S64(EXPR_S))                                  \
    CPU_EW_LOOP2(op##_u8, uint8_t, uint8_t, EXPR_U)                                           \
    EW_TAB(op) = {[SP_F32] = op##_f32, [SP_F64] = op##_f64, [SP_I8] = op##_i8,                \
                  [SP_I32] = op##_i32, [SP_I64] = op##_i64, [SP_U8] = op##_u8};

#define EW_FLOAT_OP(op, EXPR_F, EXPR_D)                                                       \
    CPU_EW_LOOP2(op##_f32, float, float, EXPR_F)                                              \
    CPU_EW_LOOP2(op##_f64, double, double, EXPR_D)                                            \
    EW_TAB(op) = {[SP_F32] = op##_f32, [SP_F64] = op##_f64};

#define ADD_S(T, U, S) (T)(U)((U)a + (U)b)
#define SUB_S(T, U, S) (T)(U)((U)a - (U)b)
#define MUL_S(T, U, S) (T)(U)((U)a * (U)b)
#define MAX_S(T, U, S) (a > b ? a : b)
#define MIN_S(T, U, S) (a < b ? a : b)
#define POW_S(T, U, S) ew_pow_##S(a, b)
#define FLOORDIV_S(T, U, S) ew_floordiv_##S(a, b)
#define MOD_S(T, U, S) ew_mod_##S(a, b)

EW_NUM_OP(add, a + b, a + b, ADD_S, (uint8_t)(a + b))
EW_NUM_OP(sub, a - b, a - b, SUB_S, (uint8_t)(a - b))
EW_NUM_OP(mul, a *b, a *b, MUL_S, (uint8_t)(a * b))
EW_NUM_OP(pow, powf(a, b), pow(a, b), POW_S, ew_pow_u8(a, b))
/* NaN in either operand wins: a > b is false when b is NaN, so b is taken */
EW_NUM_OP(maximum, (a > b || a != a) ? a : b, (a > b || a != a) ? a : b, MAX_S, a > b ? a : b)
EW_NUM_OP(minimum, (a < b || a != a) ? a : b, (a < b || a != a) ? a : b, MIN_S, a < b ? a : b)
EW_NUM_OP(floor_div, ew_floordiv_f32(a, b), ew_floordiv_f64(a, b), FLOORDIV_S,
          ew_floordiv_u8(a, b))
EW_NUM_OP(mod, ew_mod_f32(a, b), ew_mod_f64(a, b), MOD_S, ew_mod_u8(a, b))
EW_FLOAT_OP(div, a / b, a / b)
EW_FLOAT_OP(atan2, atan2f(a, b), atan2(a, b))

/* Comparisons and logic: bool (uint8 0/1) out; bool inputs use the uint8
 * loops, which see only 0 and 1. */
#define EW_BOOL_OP(op, EXPR)                                                                  \
    CPU_EW_LOOP2(op##_f32, float, uint8_t, EXPR)                                              \
    CPU_EW_LOOP2(op##_f64, double, uint8_t, EXPR)                                             \
    CPU_EW_LOOP2(op##_i8, int8_t, uint8_t, EXPR)                                              \
    CPU_EW_LOOP2(op##_u8, uint8_t, uint8_t, EXPR)                                             \
    CPU_EW_LOOP2(op##_i32, int32_t, uint8_t, EXPR)                                            \
    CPU_EW_LOOP2(op##_i64, int64_t, uint8_t, EXPR)                                            \
    EW_TAB(op) = {[SP_F32] = op##_f32, [SP_F64] = op##_f64, [SP_I8] = op##_i8,                \
                  [SP_U8] = op##_u8,   [SP_I32] = op##_i32, [SP_I64] = op##_i64,              \
                  [SP_BOOL] = op##_u8};

EW_BOOL_OP(equal, a == b)
EW_BOOL_OP(not_equal, a != b)
EW_BOOL_OP(less, a < b)
EW_BOOL_OP(less_equal, a <= b)
EW_BOOL_OP(greater, a > b)
EW_BOOL_OP(greater_equal, a >= b)
EW_BOOL_OP(logical_and, (a != 0) & (b != 0))
EW_BOOL_OP(logical_or, (a != 0) | (b != 0))

/* where: select raw elements of one size. */
#define WHERE_LOOP(name, T)                                                                   \
    static void name(char *const *p, const int64_t *s, int64_t n, const void *c) {           \
        (void)c;                                                                             \
        const int64_t es = (int64_t)sizeof(T);                                               \
        if (s[0] == es && s[1] == 1 && s[2] == es && s[3] == es) {                           \
            T *o = (T *)p[0];                                                                \
            const uint8_t *m = (const uint8_t *)p[1];                                        \
            const T *x = (const T *)p[2], *y = (const T *)p[3];                              \
            /* a bit mask instead of a branch: the condition of a relu      \
             * gradient is a coin flip per element, which mispredicts, and   \
             * the masked form vectorizes; the bits selected are the same */ \
            for (int64_t k = 0; k < n; k++) {                                                \
                T mk = (T)0 - (T)(m[k] != 0);                                                \
                o[k] = (T)((x[k] & mk) | (y[k] & (T)~mk));                                   \
            }                                                                                \
        } else {                                                                             \
            char *po = p[0];                                                                 \
            const char *pm = p[1], *px = p[2], *py = p[3];                                   \
            for (int64_t k = 0; k < n; k++, po += s[0], pm += s[1], px += s[2], py += s[3])  \
                memcpy(po, *(const uint8_t *)pm ? px : py, sizeof(T));                       \
        }                                                                                    \
    }

WHERE_LOOP(where_1, uint8_t)
WHERE_LOOP(where_2, uint16_t)
WHERE_LOOP(where_4, uint32_t)
WHERE_LOOP(where_8, uint64_t)

/* ---- kernels ---- */

/* A two-input op computing in dtype ct with output compute dtype oct. */
static sp_status ew_binary_spec(const char *name, const cpu_ew_loop *tab, sp_dtype da,
                                sp_dtype db, sp_dtype ct, sp_dtype oct, int64_t grain,
                                cpu_ew_spec *spec) {
    if (!tab[ct])
        return sp_error(SP_ERR_DTYPE, "%s: no CPU kernel for dtypes %s and %s (computing in %s)",
                        name, sp_dtype_name(da), sp_dtype_name(db), sp_dtype_name(ct));
    *spec = (cpu_ew_spec){name, 2, {oct, ct, ct}, tab[ct], NULL, grain};
    return SP_OK;
}

/* where: raw elements of the output's size, a one-byte condition read as
 * nonzero directly (other condition dtypes are converted to bool first). */
static sp_status ew_where_spec(sp_dtype cd, sp_dtype out, cpu_ew_spec *spec) {
    sp_dtype cct = sp_dtype_size(cd) == 1 ? cd : SP_BOOL;
    cpu_ew_loop loop;
    switch (sp_dtype_size(out)) {
    case 1: loop = where_1; break;
    case 2: loop = where_2; break;
    case 4: loop = where_4; break;
    case 8: loop = where_8; break;
    default: return sp_error(SP_ERR_DTYPE, "where: no CPU kernel for dtype %s", sp_dtype_name(out));
    }
    *spec = (cpu_ew_spec){"where", 3, {out, cct, out, out}, loop, NULL, CPU_EW_GRAIN_CHEAP};
    return SP_OK;
}

/* Arithmetic computes in the output's dtype; comparisons in the promoted
 * input dtype, bool out; logic in the common dtype when the inputs agree,
 * else both as bool. */
#define EW_ARITH_ROW(ID, op, grain)                                                           \
    case SP_OP_##ID:                                                                         \
        return ew_binary_spec(#op, op##_tab, da, db, cpu_ew_widen(out), cpu_ew_widen(out),   \
                              grain, spec);
#define EW_CMP_ROW(ID, op)                                                                    \
    case SP_OP_##ID:                                                                         \
        return ew_binary_spec(#op, op##_tab, da, db, cpu_ew_widen(sp_dtype_promote(da, db)),  \
                              SP_BOOL, CPU_EW_GRAIN_CHEAP, spec);
#define EW_LOGIC_ROW(ID, op)                                                                  \
    case SP_OP_##ID:                                                                         \
        return ew_binary_spec(#op, op##_tab, da, db, da == db ? cpu_ew_widen(da) : SP_BOOL,   \
                              SP_BOOL, CPU_EW_GRAIN_CHEAP, spec);

sp_status cpu_ew_binary_spec(int op, int nin, const sp_dtype *in, sp_dtype out,
                             cpu_ew_spec *spec) {
    for (int k = 0; k < nin; k++)
        if ((int)in[k] < 0 || in[k] >= SP_DTYPE_COUNT)
            return sp_error(SP_ERR_DTYPE, "binary: bad dtype");
    if ((int)out < 0 || out >= SP_DTYPE_COUNT) return sp_error(SP_ERR_DTYPE, "binary: bad dtype");
    if (op == SP_OP_WHERE && nin == 3) return ew_where_spec(in[0], out, spec);
    if (nin != 2)
        return sp_error(SP_ERR_UNSUPPORTED, "%s is not a binary elementwise primitive",
                        sp_op_name(op) ? sp_op_name(op) : "?");
    sp_dtype da = in[0], db = in[1];
    switch (op) {
        EW_ARITH_ROW(ADD, add, CPU_EW_GRAIN_CHEAP)
        EW_ARITH_ROW(SUB, sub, CPU_EW_GRAIN_CHEAP)
        EW_ARITH_ROW(MUL, mul, CPU_EW_GRAIN_CHEAP)
        EW_ARITH_ROW(DIV, div, CPU_EW_GRAIN_CHEAP)
        EW_ARITH_ROW(MAXIMUM, maximum, CPU_EW_GRAIN_CHEAP)
        EW_ARITH_ROW(MINIMUM, minimum, CPU_EW_GRAIN_CHEAP)
        EW_ARITH_ROW(POW, pow, CPU_EW_GRAIN_HEAVY)
        EW_ARITH_ROW(FLOOR_DIV, floor_div, CPU_EW_GRAIN_HEAVY)
        EW_ARITH_ROW(MOD, mod, CPU_EW_GRAIN_HEAVY)
        EW_ARITH_ROW(ATAN2, atan2, CPU_EW_GRAIN_HEAVY)
        EW_CMP_ROW(EQUAL, equal)
        EW_CMP_ROW(NOT_EQUAL, not_equal)
        EW_CMP_ROW(LESS, less)
        EW_CMP_ROW(LESS_EQUAL, less_equal)
        EW_CMP_ROW(GREATER, greater)
        EW_CMP_ROW(GREATER_EQUAL, greater_equal)
        EW_LOGIC_ROW(LOGICAL_AND, logical_and)
        EW_LOGIC_ROW(LOGICAL_OR, logical_or)
    default:
        return sp_error(SP_ERR_UNSUPPORTED, "%s is not a binary elementwise primitive",
                        sp_op_name(op) ? sp_op_name(op) : "?");
    }
}

/* Every binary kernel (and where): the spec its op and dtypes pick. */
static sp_status ew_binary(const sp_kernel_args *a, int op) {
    sp_dtype in[CPU_EW_MAX_IN];
    for (int k = 0; k < a->n_in && k < CPU_EW_MAX_IN; k++) in[k] = a->in[k]->dtype;
    cpu_ew_spec spec;
    sp_status st = cpu_ew_binary_spec(op, a->n_in, in, a->out[0]->dtype, &spec);
    return st ? st : cpu_ew_run(&spec, a->out[0], a->in);
}

#define EW_KERNEL(ID, op)                                                                     \
    sp_status cpu_##op(const sp_kernel_args *a) { return ew_binary(a, SP_OP_##ID); }

EW_KERNEL(ADD, add)
EW_KERNEL(SUB, sub)
EW_KERNEL(MUL, mul)
EW_KERNEL(DIV, div)
EW_KERNEL(MAXIMUM, maximum)
EW_KERNEL(MINIMUM, minimum)
EW_KERNEL(POW, pow)
EW_KERNEL(FLOOR_DIV, floor_div)
EW_KERNEL(MOD, mod)
EW_KERNEL(ATAN2, atan2)
EW_KERNEL(EQUAL, equal)
EW_KERNEL(NOT_EQUAL, not_equal)
EW_KERNEL(LESS, less)
EW_KERNEL(LESS_EQUAL, less_equal)
EW_KERNEL(GREATER, greater)
EW_KERNEL(GREATER_EQUAL, greater_equal)
EW_KERNEL(LOGICAL_AND, logical_and)
EW_KERNEL(LOGICAL_OR, logical_or)
EW_KERNEL(WHERE, where)
