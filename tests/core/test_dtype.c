/*
 * test_dtype.c -- dtype sizes, names, parsing and promotion.
 *
 * The promotion table for the eight numpy dtypes was generated with numpy
 * 1.24 (np.promote_types) and pasted here; numpy's int16 (int8 + uint8) is
 * int32 in Spore, which has no int16.  The bfloat16 row follows ml_dtypes as
 * documented in core.h.
 */
#include "test.h"

static void test_sizes_names(void) {
    static const size_t sizes[SP_DTYPE_COUNT] = {4, 8, 2, 2, 1, 1, 4, 8, 1};
    static const char *names[SP_DTYPE_COUNT] = {"float32", "float64", "float16",
                                                "bfloat16", "int8", "uint8",
                                                "int32", "int64", "bool"};
    for (int d = 0; d < SP_DTYPE_COUNT; d++) {
        CHECK(sp_dtype_size((sp_dtype)d) == sizes[d]);
        CHECK_STR(sp_dtype_name((sp_dtype)d), names[d]);
        sp_dtype got = SP_DTYPE_COUNT;
        CHECK_OK(sp_dtype_parse(names[d], &got));
        CHECK(got == (sp_dtype)d);
    }
    CHECK(sp_dtype_size(SP_DTYPE_COUNT) == 0);
    CHECK(sp_dtype_size((sp_dtype)-1) == 0);
    CHECK_STR(sp_dtype_name(SP_DTYPE_COUNT), "invalid");
}

static void test_parse(void) {
    static const struct {
        const char *s;
        sp_dtype d;
    } ok[] = {{"f32", SP_F32}, {"F32", SP_F32},  {"Float32", SP_F32}, {"f64", SP_F64},
              {"double", SP_F64}, {"half", SP_F16}, {"bf16", SP_BF16},  {"i8", SP_I8},
              {"u8", SP_U8},   {"i32", SP_I32},  {"i64", SP_I64},     {"long", SP_I64},
              {"bool", SP_BOOL}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        sp_dtype got = SP_DTYPE_COUNT;
        CHECK_OK(sp_dtype_parse(ok[i].s, &got));
        CHECK(got == ok[i].d);
    }
    sp_dtype d = SP_F32;
    CHECK_ERR(sp_dtype_parse("float128", &d), SP_ERR_DTYPE, "float128");
    CHECK_ERR(sp_dtype_parse("", &d), SP_ERR_DTYPE, "unknown dtype");
    CHECK_ERR(sp_dtype_parse("float", &d), SP_ERR_DTYPE, "float"); /* ambiguous */
    CHECK_ERR(sp_dtype_parse(NULL, &d), SP_ERR_ARG, "NULL");
    CHECK(d == SP_F32); /* untouched on failure */
}

static void test_kinds(void) {
    for (int d = 0; d < SP_DTYPE_COUNT; d++) {
        int fl = d == SP_F32 || d == SP_F64 || d == SP_F16 || d == SP_BF16;
        int in = d == SP_I8 || d == SP_U8 || d == SP_I32 || d == SP_I64;
        int sg = fl || d == SP_I8 || d == SP_I32 || d == SP_I64;
        CHECK(sp_dtype_is_float((sp_dtype)d) == fl);
        CHECK(sp_dtype_is_int((sp_dtype)d) == in);
        CHECK(sp_dtype_is_signed((sp_dtype)d) == sg);
    }
}

static void test_promote_numpy(void) {
    static const sp_dtype order[8] = {SP_F32, SP_F64, SP_F16, SP_I8, SP_U8, SP_I32, SP_I64, SP_BOOL};
    /* np.promote_types(order[i], order[j]), numpy 1.24.2 (int16 -> SP_I32). */
    static const sp_dtype want[8][8] = {
        /* float32  */ {SP_F32, SP_F64, SP_F32, SP_F32, SP_F32, SP_F64, SP_F64, SP_F32},
        /* float64  */ {SP_F64, SP_F64, SP_F64, SP_F64, SP_F64, SP_F64, SP_F64, SP_F64},
        /* float16  */ {SP_F32, SP_F64, SP_F16, SP_F16, SP_F16, SP_F64, SP_F64, SP_F16},
        /* int8     */ {SP_F32, SP_F64, SP_F16, SP_I8, SP_I32, SP_I32, SP_I64, SP_I8},
        /* uint8    */ {SP_F32, SP_F64, SP_F16, SP_I32, SP_U8, SP_I32, SP_I64, SP_U8},
        /* int32    */ {SP_F64, SP_F64, SP_F64, SP_I32, SP_I32, SP_I32, SP_I64, SP_I32},
        /* int64    */ {SP_F64, SP_F64, SP_F64, SP_I64, SP_I64, SP_I64, SP_I64, SP_I64},
        /* bool     */ {SP_F32, SP_F64, SP_F16, SP_I8, SP_U8, SP_I32, SP_I64, SP_BOOL},
    };
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 8; j++) {
            sp_dtype got = sp_dtype_promote(order[i], order[j]);
            if (got != want[i][j])
                fprintf(stderr, "promote(%s, %s) = %s, wanted %s\n", sp_dtype_name(order[i]),
                        sp_dtype_name(order[j]), sp_dtype_name(got), sp_dtype_name(want[i][j]));
            CHECK(got == want[i][j]);
        }
    }
}

static void test_promote_bf16(void) {
    static const struct {
        sp_dtype other, want;
    } rows[] = {{SP_F32, SP_F32}, {SP_F64, SP_F64}, {SP_F16, SP_F32}, {SP_BF16, SP_BF16},
                {SP_I8, SP_BF16}, {SP_U8, SP_BF16}, {SP_I32, SP_F64}, {SP_I64, SP_F64},
                {SP_BOOL, SP_BF16}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        CHECK(sp_dtype_promote(SP_BF16, rows[i].other) == rows[i].want);
        CHECK(sp_dtype_promote(rows[i].other, SP_BF16) == rows[i].want);
    }
    /* The whole table is symmetric with each dtype its own promotion. */
    for (int a = 0; a < SP_DTYPE_COUNT; a++) {
        CHECK(sp_dtype_promote((sp_dtype)a, (sp_dtype)a) == (sp_dtype)a);
        for (int b = 0; b < SP_DTYPE_COUNT; b++)
            CHECK(sp_dtype_promote((sp_dtype)a, (sp_dtype)b) ==
                  sp_dtype_promote((sp_dtype)b, (sp_dtype)a));
    }
}

static void test_errors_version(void) {
    CHECK_STR(sp_version(), SPORE_VERSION);
    sp_clear_error();
    CHECK_STR(sp_last_error(), "");
    CHECK(sp_last_status() == SP_OK);
    CHECK(sp_error(SP_ERR_SHAPE, "gather: index %d out of range", 7) == SP_ERR_SHAPE);
    CHECK_STR(sp_last_error(), "gather: index 7 out of range");
    CHECK(sp_last_status() == SP_ERR_SHAPE);
    /* The message may quote the previous one. */
    sp_error(SP_ERR_RUNTIME, "while running f: %s", sp_last_error());
    CHECK_STR(sp_last_error(), "while running f: gather: index 7 out of range");
    CHECK_STR(sp_status_name(SP_ERR_SHAPE), "shape error");
    CHECK_STR(sp_status_name(SP_OK), "ok");
    CHECK(sp_status_name((sp_status)999) != NULL);
    /* A very long message is truncated, not overflowed. */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sp_error(SP_ERR_ARG, "%s", big);
    CHECK(strlen(sp_last_error()) > 1000 && strlen(sp_last_error()) < 5000);
    sp_clear_error();
    CHECK_STR(sp_last_error(), "");
}

int main(void) {
    RUN(test_sizes_names);
    RUN(test_parse);
    RUN(test_kinds);
    RUN(test_promote_numpy);
    RUN(test_promote_bf16);
    RUN(test_errors_version);
    return TEST_SUMMARY();
}
