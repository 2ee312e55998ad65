/*
 * test_tensor.c -- making and releasing tensors and buffers.
 *
 * Every test records sp_cpu_live_bytes() on entry and checks on exit that
 * it came back to the same value, so a leaked buffer fails the test that
 * leaked it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/device.h"
#include "test.h"

static int64_t live0;
#define BEGIN() (live0 = sp_cpu_live_bytes())
#define END() CHECK(sp_cpu_live_bytes() == live0)

static void test_alloc(void) {
    BEGIN();
    void *p = sp_cpu_alloc(100);
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    CHECK(sp_cpu_live_bytes() == live0 + 100);
    memset(p, 0xab, 100);
    void *z1 = sp_cpu_alloc(0), *z2 = sp_cpu_alloc(0);
    CHECK(z1 && z2 && z1 != z2);
    CHECK(sp_cpu_live_bytes() == live0 + 100);
    sp_cpu_free(z1);
    sp_cpu_free(z2);
    sp_cpu_free(p);
    sp_cpu_free(NULL);
    CHECK(sp_cpu_alloc(SIZE_MAX - 10) == NULL);
    CHECK(sp_last_status() == SP_ERR_NOMEM);
    END();
}

static int deleter_calls;
static void count_deleter(void *ctx) {
    deleter_calls++;
    free(ctx);
}

static void test_buffer(void) {
    BEGIN();
    sp_buffer *b = sp_buffer_new(SP_CPU, 64);
    CHECK(b && b->refcount == 1 && b->nbytes == 64);
    CHECK(sp_cpu_live_bytes() == live0 + 64);
    sp_buffer_retain(b);
    sp_buffer_release(b);
    CHECK(sp_cpu_live_bytes() == live0 + 64);
    sp_buffer_release(b);
    sp_buffer_release(NULL);
    END();

    void *mem = malloc(32);
    deleter_calls = 0;
    b = sp_buffer_wrap(SP_CPU, mem, 32, count_deleter, mem);
    CHECK(b && b->data == mem);
    sp_buffer_retain(b);
    sp_buffer_release(b);
    CHECK(deleter_calls == 0);
    sp_buffer_release(b);
    CHECK(deleter_calls == 1);

    static float stat[4];
    b = sp_buffer_wrap(SP_CPU, stat, sizeof stat, NULL, NULL);
    CHECK(b != NULL);
    sp_buffer_release(b); /* no deleter: nothing freed */
    END();
}

static size_t fake_live;
static void *fake_alloc(size_t n, void *ctx) {
    CHECK(ctx == &fake_live);
    fake_live += n;
    return malloc(n ? n : 1);
}
static void fake_free(void *p, void *ctx) {
    (void)ctx;
    fake_live--; /* just a marker that it ran */
    free(p);
}

static void test_device(void) {
    BEGIN();
    sp_device cuda = {SP_DEVICE_CUDA, 0};
    sp_clear_error();
    CHECK(sp_buffer_new(cuda, 16) == NULL);
    CHECK(sp_last_status() == SP_ERR_DEVICE);
    CHECK(strstr(sp_last_error(), "no CUDA device: Spore was built without CUDA or no GPU/driver "
                                  "was found") != NULL);
    CHECK(sp_tensor_new(SP_F32, 1, (int64_t[]){4}, cuda) == NULL);
    CHECK(sp_last_status() == SP_ERR_DEVICE);

    sp_device_allocator_register(SP_DEVICE_CUDA, fake_alloc, fake_free, &fake_live);
    fake_live = 0;
    sp_buffer *b = sp_buffer_new(cuda, 16);
    CHECK(b && fake_live == 16 && b->device.type == SP_DEVICE_CUDA);
    sp_buffer_release(b);
    CHECK(fake_live == 15);
    /* zeros on a device without a memset hook: an error, no leak. */
    CHECK(sp_tensor_zeros(SP_F32, 1, (int64_t[]){4}, cuda) == NULL);
    CHECK(sp_last_status() == SP_ERR_UNSUPPORTED);
    CHECK(fake_live == 15 + 16 - 1);
    sp_device_allocator_register(SP_DEVICE_CUDA, NULL, NULL, NULL);
    CHECK(sp_buffer_new(cuda, 16) == NULL);
    CHECK(sp_last_status() == SP_ERR_DEVICE);
    END();
}

static void test_new_release(void) {
    BEGIN();
    int64_t shape[3] = {2, 3, 4};
    sp_tensor *t = sp_tensor_new(SP_F32, 3, shape, SP_CPU);
    CHECK(t != NULL);
    CHECK(t->ndim == 3 && t->dtype == SP_F32 && t->offset == 0 && t->refcount == 1);
    CHECK(t->strides[0] == 12 && t->strides[1] == 4 && t->strides[2] == 1);
    CHECK(sp_tensor_numel(t) == 24);
    CHECK(sp_tensor_nbytes(t) == 96);
    CHECK(sp_tensor_is_contiguous(t));
    CHECK(sp_cpu_live_bytes() == live0 + 96);
    CHECK(((uintptr_t)sp_tensor_data(t) & 63) == 0);
    sp_tensor_retain(t);
    sp_tensor_release(t);
    CHECK(sp_cpu_live_bytes() == live0 + 96);
    sp_tensor_release(t);
    sp_tensor_release(NULL);
    END();

    sp_tensor *s = sp_tensor_new(SP_I64, 0, NULL, SP_CPU);
    CHECK(s && s->ndim == 0 && sp_tensor_numel(s) == 1 && sp_tensor_nbytes(s) == 8);
    sp_tensor_release(s);
    sp_tensor *e = sp_tensor_new(SP_F64, 2, (int64_t[]){3, 0}, SP_CPU);
    CHECK(e && sp_tensor_numel(e) == 0 && sp_tensor_nbytes(e) == 0 && sp_tensor_is_contiguous(e));
    CHECK(sp_tensor_data(e) != NULL);
    sp_tensor_release(e);

    sp_tensor *z = sp_tensor_zeros(SP_I32, 2, (int64_t[]){5, 7}, SP_CPU);
    CHECK(z != NULL);
    int allzero = 1;
    for (int i = 0; i < 35; i++) allzero &= ((int32_t *)sp_tensor_data(z))[i] == 0;
    CHECK(allzero);
    sp_tensor_release(z);
    END();
}

static void test_new_errors(void) {
    BEGIN();
    sp_clear_error();
    CHECK(sp_tensor_new(SP_F32, 2, (int64_t[]){2, -1}, SP_CPU) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG);
    CHECK(strstr(sp_last_error(), "negative size -1 in shape (2, -1)") != NULL);
    CHECK(sp_tensor_new(SP_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, SP_CPU) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG && strstr(sp_last_error(), "ndim 9"));
    CHECK(sp_tensor_new(SP_F32, -1, NULL, SP_CPU) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG);
    CHECK(sp_tensor_new(SP_F32, 2, NULL, SP_CPU) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG);
    CHECK(sp_tensor_new(SP_DTYPE_COUNT, 1, (int64_t[]){2}, SP_CPU) == NULL);
    CHECK(sp_last_status() == SP_ERR_DTYPE);
    /* numel overflows int64; with a zero it is just empty. */
    int64_t huge[3] = {INT64_MAX / 2, 4, 1};
    CHECK(sp_tensor_new(SP_F32, 3, huge, SP_CPU) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG && strstr(sp_last_error(), "int64"));
    int64_t huge0[3] = {INT64_MAX / 2, 4, 0};
    sp_tensor *e = sp_tensor_new(SP_F32, 3, huge0, SP_CPU);
    CHECK(e && sp_tensor_numel(e) == 0);
    sp_tensor_release(e);
    /* Fits int64 but not memory. */
    CHECK(sp_tensor_new(SP_F64, 1, (int64_t[]){INT64_MAX / 4}, SP_CPU) == NULL);
    CHECK(sp_last_status() == SP_ERR_NOMEM);
    CHECK(sp_tensor_from_data(SP_F32, 1, (int64_t[]){3}, NULL) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG);
    END();
}

static void test_from_data_get(void) {
    BEGIN();
    float v[6] = {1.5f, -2, 3, 4, 5, 6.25f};
    sp_tensor *t = sp_tensor_from_data(SP_F32, 2, (int64_t[]){2, 3}, v);
    CHECK(t != NULL);
    v[0] = 99; /* a copy: the tensor does not see it */
    CHECK(sp_tensor_get(t, (int64_t[]){0, 0}) == 1.5);
    CHECK(sp_tensor_get(t, (int64_t[]){0, 1}) == -2);
    CHECK(sp_tensor_get(t, (int64_t[]){1, 2}) == 6.25);
    sp_clear_error();
    CHECK(isnan(sp_tensor_get(t, (int64_t[]){2, 0})));
    CHECK(sp_last_status() == SP_ERR_ARG);
    CHECK(strstr(sp_last_error(), "index 2 out of range for axis 0 of shape (2, 3)") != NULL);
    CHECK(isnan(sp_tensor_get(t, (int64_t[]){0, -1})));
    CHECK(isnan(sp_tensor_get(t, NULL)));
    sp_tensor_release(t);

    int64_t big[2] = {INT64_MAX, -5};
    sp_tensor *i = sp_tensor_from_data(SP_I64, 1, (int64_t[]){2}, big);
    CHECK(((int64_t *)sp_tensor_data(i))[0] == INT64_MAX);
    CHECK(sp_tensor_get(i, (int64_t[]){1}) == -5);
    sp_tensor_release(i);

    static const struct {
        sp_dtype d;
        double in, want;
    } sc[] = {{SP_F32, 0.1, (float)0.1}, {SP_F64, 0.1, 0.1},  {SP_F16, 1.0 / 3, 0.333251953125},
              {SP_BF16, 1.0 / 3, 0.333984375}, {SP_I8, -3.7, -3}, {SP_U8, 300, 44},
              {SP_I32, 2.9, 2}, {SP_I64, -1e15, -1e15}, {SP_BOOL, 0.5, 1}};
    for (size_t k = 0; k < sizeof sc / sizeof sc[0]; k++) {
        sp_tensor *s = sp_tensor_scalar(sc[k].d, sc[k].in);
        CHECK(s && s->ndim == 0 && s->dtype == sc[k].d);
        CHECK(sp_tensor_get(s, NULL) == sc[k].want);
        sp_tensor_release(s);
    }
    END();
}

static void test_view_of(void) {
    BEGIN();
    sp_buffer *b = sp_buffer_new(SP_CPU, 10 * sizeof(float));
    for (int i = 0; i < 10; i++) ((float *)b->data)[i] = (float)i;
    /* Every other element, backwards from 9: 9 7 5 3 1. */
    sp_tensor *v = sp_tensor_view_of(b, SP_F32, 1, (int64_t[]){5}, (int64_t[]){-2}, 9);
    CHECK(v != NULL);
    sp_buffer_release(b); /* the view keeps it alive */
    CHECK(sp_cpu_live_bytes() == live0 + 40);
    CHECK(sp_tensor_get(v, (int64_t[]){0}) == 9 && sp_tensor_get(v, (int64_t[]){4}) == 1);
    CHECK(!sp_tensor_is_contiguous(v));
    b = v->buf;
    sp_clear_error();
    /* One past the end, and one before the start. */
    CHECK(sp_tensor_view_of(b, SP_F32, 1, (int64_t[]){5}, (int64_t[]){2}, 2) == NULL);
    CHECK(sp_last_status() == SP_ERR_ARG && strstr(sp_last_error(), "outside a buffer of 10"));
    CHECK(sp_tensor_view_of(b, SP_F32, 1, (int64_t[]){5}, (int64_t[]){-2}, 7) == NULL);
    CHECK(sp_tensor_view_of(b, SP_F32, 1, (int64_t[]){2}, (int64_t[]){1}, -1) == NULL);
    CHECK(sp_tensor_view_of(b, SP_F64, 1, (int64_t[]){6}, (int64_t[]){1}, 0) == NULL);
    /* Overflowing strides are rejected, not wrapped around. */
    CHECK(sp_tensor_view_of(b, SP_F32, 2, (int64_t[]){3, 3}, (int64_t[]){INT64_MAX / 2, 1}, 0) ==
          NULL);
    /* The largest valid ones: a stride-0 broadcast and an empty view at the end. */
    sp_tensor *w = sp_tensor_view_of(b, SP_F32, 2, (int64_t[]){3, 10}, (int64_t[]){0, 1}, 0);
    CHECK(w && sp_tensor_get(w, (int64_t[]){2, 9}) == 9);
    sp_tensor *e = sp_tensor_view_of(b, SP_F32, 1, (int64_t[]){0}, (int64_t[]){1}, 10);
    CHECK(e && sp_tensor_numel(e) == 0);
    sp_tensor_release(w);
    sp_tensor_release(e);
    sp_tensor_release(v);
    END();
}

static void test_contiguity_shape_str(void) {
    BEGIN();
    float d[12] = {0};
    sp_tensor *t = sp_tensor_from_data(SP_F32, 2, (int64_t[]){3, 4}, d);
    sp_tensor *u = sp_tensor_view_of(t->buf, SP_F32, 3, (int64_t[]){3, 1, 4},
                                     (int64_t[]){4, 99 * 0 + 7, 1}, 0);
    CHECK(u && sp_tensor_is_contiguous(u)); /* size-1 strides do not matter */
    sp_tensor *c = sp_tensor_view_of(t->buf, SP_F32, 2, (int64_t[]){4, 3}, (int64_t[]){1, 4}, 0);
    CHECK(c && !sp_tensor_is_contiguous(c));
    sp_tensor_release(u);
    sp_tensor_release(c);
    sp_tensor_release(t);
    char buf[64];
    CHECK_STR(sp_shape_str(2, (int64_t[]){2, 3}, buf, sizeof buf), "(2, 3)");
    CHECK_STR(sp_shape_str(1, (int64_t[]){5}, buf, sizeof buf), "(5,)");
    CHECK_STR(sp_shape_str(0, NULL, buf, sizeof buf), "()");
    char tiny[5];
    CHECK_STR(sp_shape_str(3, (int64_t[]){100, 200, 300}, tiny, sizeof tiny), "(100");
    END();
}

int main(void) {
    RUN(test_alloc);
    RUN(test_buffer);
    RUN(test_device);
    RUN(test_new_release);
    RUN(test_new_errors);
    RUN(test_from_data_get);
    RUN(test_view_of);
    RUN(test_contiguity_shape_str);
    return TEST_SUMMARY();
}
