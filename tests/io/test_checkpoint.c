/*
 * test_checkpoint.c -- safetensors checkpoints: round trips of every dtype
 * with metadata and odd layouts, byte-exact header layout, the JSON
 * reader on valid and hostile text, one test per loader error (truncated,
 * bad JSON, offsets outside/overlapping/with holes, span != shape *
 * itemsize, huge header length), and atomic saving: a write that fails
 * part-way, and a process killed part-way, both leave the previous file
 * intact and loadable.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/io_internal.h"
#include "io/json.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static sp_tensor *filled(sp_dtype dt, int ndim, const int64_t *shape, int seed) {
    sp_tensor *t = sp_tensor_new(dt, ndim, shape, SP_CPU);
    int64_t n = sp_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = dt == SP_BOOL ? (double)((i + seed) % 3 == 0)
                   : sp_dtype_is_float(dt) ? (double)(i * 0.25 - seed)
                                           : (double)((i * 7 + seed) % 100);
        sp_tensor *s = sp_tensor_scalar(dt, v);
        memcpy((char *)sp_tensor_data(t) + i * sp_dtype_size(dt), sp_tensor_data(s), sp_dtype_size(dt));
        sp_tensor_release(s);
    }
    return t;
}

static int same(const sp_tensor *a, const sp_tensor *b) {
    if (!a || !b || a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    sp_tensor *ca, *cb;
    sp_tensor_contiguous((sp_tensor *)a, &ca);
    sp_tensor_contiguous((sp_tensor *)b, &cb);
    int ok = memcmp(sp_tensor_data(ca), sp_tensor_data(cb), sp_tensor_nbytes(ca)) == 0;
    sp_tensor_release(ca);
    sp_tensor_release(cb);
    return ok;
}

static unsigned char *slurp(const char *path, size_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    *n = fread(p, 1, (size_t)len, f);
    fclose(f);
    return p;
}

static void spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static void test_round_trip(void) {
    sp_dtype dts[9] = {SP_F32, SP_F64, SP_F16, SP_BF16, SP_I64, SP_I32, SP_I8, SP_U8, SP_BOOL};
    sp_tensor *ts[11];
    const char *names[11] = {"f32", "f64", "f16", "bf16", "i64", "i32", "i8", "u8", "flag",
                             "layer.0/w\"eird\\name\n", "empty"};
    for (int i = 0; i < 9; i++) {
        int64_t shape[3] = {2, 3, i + 1};
        ts[i] = filled(dts[i], 3, shape, i);
    }
    /* a transposed view (saved in its logical C order) and an empty tensor */
    int64_t s2[2] = {3, 4};
    sp_tensor *base = filled(SP_F32, 2, s2, 5);
    CHECK_OK(sp_tensor_transpose(base, 0, 1, &ts[9]));
    int64_t s0[2] = {0, 5};
    ts[10] = sp_tensor_new(SP_F32, 2, s0, SP_CPU);
    const char *mk[3] = {"step", "optimizer", "unicode"};
    const char *mv[3] = {"1200", "{\"lr\": 0.01}", "caf\xc3\xa9 \xe2\x9c\x93"};
    const char *p = tmp_path("ck.safetensors");
    CHECK_OK(sp_checkpoint_save(p, 11, names, ts, 3, mk, mv));
    sp_checkpoint *c = NULL;
    CHECK_OK(sp_checkpoint_load(p, &c));
    CHECK(c && c->n == 11 && c->nmeta == 3);
    for (int i = 0; c && i < 11; i++) {
        CHECK_STR(c->names[i], names[i]);
        CHECK(same(ts[i], c->tensors[i]));
        CHECK(sp_checkpoint_find(c, names[i]) == c->tensors[i]);
    }
    CHECK_STR(sp_checkpoint_meta(c, "optimizer"), "{\"lr\": 0.01}");
    CHECK_STR(sp_checkpoint_meta(c, "unicode"), mv[2]);
    CHECK(sp_checkpoint_meta(c, "nope") == NULL && sp_checkpoint_find(c, "nope") == NULL);
    sp_checkpoint_free(c);
    /* layout: 8-byte length, header padded to 8, tensors back to back */
    size_t n;
    unsigned char *b = slurp(p, &n);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)b[i] << (8 * i);
    CHECK(hl % 8 == 0 && b[8] == '{');
    size_t data = 0;
    for (int i = 0; i < 11; i++) data += sp_tensor_nbytes(ts[i]);
    CHECK(n == 8 + hl + data);
    CHECK(memcmp(b + 8, "{\"__metadata__\":{\"step\":\"1200\"", 30) == 0);
    /* the same bytes from memory */
    CHECK_OK(sp_checkpoint_load_mem(b, n, "mem", &c));
    CHECK(c && c->n == 11 && same(c->tensors[3], ts[3]));
    sp_checkpoint_free(c);
    free(b);
    /* no tensors, no metadata */
    CHECK_OK(sp_checkpoint_save(p, 0, NULL, NULL, 0, NULL, NULL));
    CHECK_OK(sp_checkpoint_load(p, &c));
    CHECK(c && c->n == 0 && c->nmeta == 0);
    sp_checkpoint_free(c);
    for (int i = 0; i < 11; i++) sp_tensor_release(ts[i]);
    sp_tensor_release(base);
}

static void test_save_errors(void) {
    int64_t sh[1] = {2};
    sp_tensor *t = filled(SP_F32, 1, sh, 0);
    sp_tensor *two[2] = {t, t};
    const char *dup[2] = {"a", "a"}, *meta[1] = {"__metadata__"}, *empty[1] = {""};
    const char *p = tmp_path("e.safetensors");
    CHECK_ERR(sp_checkpoint_save(p, 2, dup, two, 0, NULL, NULL), SP_ERR_ARG, "two tensors named \"a\"");
    CHECK_ERR(sp_checkpoint_save(p, 1, meta, two, 0, NULL, NULL), SP_ERR_ARG, "reserved");
    CHECK_ERR(sp_checkpoint_save(p, 1, empty, two, 0, NULL, NULL), SP_ERR_ARG, "no name");
    CHECK_ERR(sp_checkpoint_save("/nonexistent-dir/x.safetensors", 1, dup, two, 0, NULL, NULL),
              SP_ERR_IO, "/nonexistent-dir/x.safetensors: cannot create a temporary file");
    CHECK(access(p, F_OK) != 0);
    sp_checkpoint *c = (sp_checkpoint *)1;
    CHECK_ERR(sp_checkpoint_load(p, &c), SP_ERR_IO, "e.safetensors: cannot open");
    CHECK(c == NULL);
    sp_tensor_release(t);
}

static void test_json(void) {
    const char *ok = " {\"a\": [1, -2.5e3, 18446744073709551615, 18446744073709551616, true, "
                     "false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\", \"o\": {}} ";
    io_json *v = NULL;
    CHECK_OK(io_json_parse(ok, strlen(ok), "j", &v));
    const io_json *a = io_json_get(v, "a");
    CHECK(a && a->kind == IO_JSON_ARRAY && a->n == 7);
    if (a && a->n == 7) {
        CHECK(a->items[0].is_uint && a->items[0].u == 1);
        CHECK(!a->items[1].is_uint && a->items[1].num == -2500);
        CHECK(a->items[2].is_uint && a->items[2].u == UINT64_MAX);
        CHECK(!a->items[3].is_uint);
        CHECK(a->items[4].kind == IO_JSON_BOOL && a->items[4].b == 1);
        CHECK(a->items[6].kind == IO_JSON_NULL);
    }
    const io_json *s = io_json_get(v, "s");
    CHECK(s && !strcmp(s->s, "x\xc3\xa9\xf0\x9f\x98\x80\n"));
    io_json_free(v);
    const char *bad[] = {"{", "{\"a\":}", "[1,]", "{\"a\" 1}", "01", "1.", "-", "\"\\x\"",
                         "\"\\ud800\"", "\"a\nb\"", "[1] 2", "tru", "\"\\u0000\"", "{1:2}", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = (io_json *)1;
        CHECK_ERR(io_json_parse(bad[i], strlen(bad[i]), "j", &v), SP_ERR_FORMAT, "j: bad JSON at byte");
        CHECK(v == NULL);
    }
    /* nesting: 64 levels parse, 100 do not (and do not overflow the stack) */
    char deep[256];
    for (int d = 0; d < 2; d++) {
        int k = d ? 100 : 64;
        for (int i = 0; i < k; i++) deep[i] = '[', deep[2 * k - 1 - i] = ']';
        sp_status st = io_json_parse(deep, 2 * (size_t)k, "deep", &v);
        CHECK(d ? st == SP_ERR_FORMAT && strstr(sp_last_error(), "nesting") : st == SP_OK);
        io_json_free(v);
    }
    io_buf b = {0};
    io_buf_put_json_string(&b, "q\"\\\x01\t");
    CHECK_STR(b.p, "\"q\\\"\\\\\\u0001\\t\"");
    free(b.p);
}

/* Builds a file: 8-byte length, the header text (unpadded), `data` bytes. */
static size_t make_file(unsigned char *out, const char *header, size_t ndata) {
    size_t hl = strlen(header);
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, header, hl);
    memset(out + 8 + hl, 0, ndata);
    return 8 + hl + ndata;
}

static void test_load_errors(void) {
    static const struct {
        const char *header;
        size_t ndata;
        sp_status code;
        const char *needle;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, SP_ERR_FORMAT,
         "lie outside the 4 bytes of data"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, SP_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, SP_ERR_FORMAT,
         "bytes [0, 4) of the data belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, SP_ERR_FORMAT,
         "8 bytes of data follow the header but the tensors cover 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, SP_ERR_FORMAT,
         "shape (3,) of F32 needs a different number of bytes but data_offsets [0, 8] span 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}",
         8, SP_ERR_FORMAT, "more than 2^61"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, SP_ERR_FORMAT,
         "shape entry 0 is not a non-negative integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 8, SP_ERR_FORMAT,
         "run backwards"},
        {"{\"a\":{\"dtype\":\"C64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, SP_ERR_UNSUPPORTED,
         "dtype \"C64\" is not one Spore reads"},
        {"{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SP_ERR_FORMAT, "missing or non-string \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, SP_ERR_FORMAT, "non-array \"shape\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, SP_ERR_FORMAT, "\"data_offsets\" must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, SP_ERR_FORMAT, "names \"a\" twice"},
        {"{\"a\":3}", 0, SP_ERR_FORMAT, "not an object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, SP_ERR_FORMAT, "metadata \"k\" is not a string"},
        {"{\"__metadata__\":[]}", 0, SP_ERR_FORMAT, "\"__metadata__\" is not an object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, SP_ERR_FORMAT,
         "bad JSON at byte"},
        {"[1, 2]", 0, SP_ERR_FORMAT, "does not start with '{'"},
        {"{\"a\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, SP_OK, ""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4,5,6,7,8,9],\"data_offsets\":[0,4]}}", 4,
         SP_ERR_FORMAT, "9 dimensions"},
    };
    unsigned char buf[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = make_file(buf, cases[i].header, cases[i].ndata);
        sp_checkpoint *c = (sp_checkpoint *)1;
        if (cases[i].code == SP_OK) {
            CHECK_OK(sp_checkpoint_load_mem(buf, n, "case.st", &c));
            sp_checkpoint_free(c);
            buf[n - 1] = 7; /* a bool byte that is not 0 or 1 */
            CHECK_ERR(sp_checkpoint_load_mem(buf, n, "case.st", &c), SP_ERR_FORMAT, "bool byte 7");
            continue;
        }
        sp_clear_error();
        sp_status st = sp_checkpoint_load_mem(buf, n, "case.st", &c);
        if (st != cases[i].code || !strstr(sp_last_error(), cases[i].needle) ||
            !strstr(sp_last_error(), "case.st: ") || c != NULL) {
            fprintf(stderr, "case %zu: got %s '%s'\n", i, sp_status_name(st), sp_last_error());
            CHECK(0);
        }
    }
    /* header length beyond the file, over the limit, and a tiny file */
    sp_checkpoint *c;
    unsigned char huge[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, '{', '}'};
    int64_t live = sp_cpu_live_bytes();
    CHECK_ERR(sp_checkpoint_load_mem(huge, 16, "h.st", &c), SP_ERR_FORMAT,
              "h.st: header length 9223372036854775807 is more than the 8 bytes after it");
    CHECK(sp_cpu_live_bytes() == live);
    unsigned char *big = calloc(1, (101u << 20) + 8);
    uint64_t hl = (uint64_t)101 << 20;
    for (int i = 0; i < 8; i++) big[i] = (unsigned char)(hl >> (8 * i));
    CHECK_ERR(sp_checkpoint_load_mem(big, (101u << 20) + 8, "b.st", &c), SP_ERR_FORMAT,
              "b.st: header length 105906176 is over the 100 MB limit");
    free(big);
    CHECK_ERR(sp_checkpoint_load_mem("abc", 3, "t.st", &c), SP_ERR_FORMAT,
              "t.st: 3 bytes is too small");
    /* a real file cut short at every length: each is an error, never a crash */
    int64_t sh[2] = {3, 5};
    sp_tensor *t = filled(SP_F64, 2, sh, 1);
    const char *nm[1] = {"w"};
    const char *p = tmp_path("cut.safetensors");
    CHECK_OK(sp_checkpoint_save(p, 1, nm, &t, 0, NULL, NULL));
    size_t n;
    unsigned char *whole = slurp(p, &n);
    int all_fail = 1;
    for (size_t k = 0; k < n; k++) {
        spit(p, whole, k);
        sp_status st = sp_checkpoint_load(p, &c);
        all_fail &= st == SP_ERR_FORMAT && strstr(sp_last_error(), "cut.safetensors: ") != NULL;
    }
    CHECK(all_fail);
    free(whole);
    sp_tensor_release(t);
}

static void test_atomic_save(void) {
    int64_t sh[1] = {1000};
    sp_tensor *old = filled(SP_F32, 1, sh, 1), *neu = filled(SP_F32, 1, sh, 2);
    const char *nm[1] = {"w"};
    const char *p = tmp_path("atomic.safetensors");
    CHECK_OK(sp_checkpoint_save(p, 1, nm, &old, 0, NULL, NULL));
    /* a write that fails after 100 bytes: error, old file intact, no temp */
    io_test_fail_after(100, 0);
    CHECK_ERR(sp_checkpoint_save(p, 1, nm, &neu, 0, NULL, NULL), SP_ERR_IO, "atomic.safetensors: write failed");
    io_test_fail_after(-1, 0);
    sp_checkpoint *c = NULL;
    CHECK_OK(sp_checkpoint_load(p, &c));
    CHECK(c && same(c->tensors[0], old));
    sp_checkpoint_free(c);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s | grep tmp)\"", tmpdir);
    CHECK(system(cmd) == 0);
    /* a process that dies mid-write: the final name still holds the old file */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        io_test_fail_after(2000, 1);
        sp_checkpoint_save(p, 1, nm, &neu, 0, NULL, NULL);
        _exit(0); /* not reached */
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);
    CHECK_OK(sp_checkpoint_load(p, &c));
    CHECK(c && same(c->tensors[0], old));
    sp_checkpoint_free(c);
    /* then a good save replaces it */
    CHECK_OK(sp_checkpoint_save(p, 1, nm, &neu, 0, NULL, NULL));
    CHECK_OK(sp_checkpoint_load(p, &c));
    CHECK(c && same(c->tensors[0], neu));
    sp_checkpoint_free(c);
    sp_tensor_release(old);
    sp_tensor_release(neu);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/spore_test_ckpt_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    int64_t live = sp_cpu_live_bytes();
    RUN(test_round_trip);
    RUN(test_save_errors);
    RUN(test_json);
    RUN(test_load_errors);
    RUN(test_atomic_save);
    CHECK(sp_cpu_live_bytes() == live);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
