/*
 * fuzz_frontend.c -- fuzzing the front end and the IR text form.
 *
 * One input goes through everything that reads untrusted text: the lexer,
 * the parser and the builder (sp_frontend_compile, which also finalizes
 * and, in debug builds, verifies the IR), then the IR printer, the IR
 * parser on the printed text (which must print back identically), and the
 * IR parser on the raw input itself.  Errors are the expected outcome for
 * most inputs; what counts as a finding is a crash, a sanitizer report, a
 * leak, an SP_ERR_INTERNAL (the verifier caught the builder producing broken
 * IR) or a round trip that changes the text -- the last two abort so the
 * fuzzer records the input.
 *
 * Two ways to run it:
 *  - libFuzzer (configure with -DSPORE_FUZZ=ON and CC=clang, or build by
 *    hand with -fsanitize=fuzzer -DSPORE_LIBFUZZER): long runs,
 *    `fuzz_frontend tests/fuzz/corpus`.
 *  - a plain executable (the default, run by ctest): main() replays every
 *    file of the corpus directory (SPORE_FUZZ_CORPUS or argv[1]) and then
 *    runs a deterministic mutation loop (byte flips, insertions of Python
 *    tokens, splices between corpus files) for FUZZ_ITERS inputs, so every
 *    build exercises the harness for a few seconds with the same inputs.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

static void check_one(const uint8_t *data, size_t size) {
    char *src = malloc(size + 1);
    if (!src) return;
    memcpy(src, data, size);
    src[size] = '\0';

    sp_clear_error();
    sp_module *m = sp_frontend_compile("fuzz.py", src, 0, NULL);
    if (!m && sp_last_status() == SP_ERR_INTERNAL) {
        fprintf(stderr, "fuzz: internal error from the front end:\n%s\n", sp_last_error());
        abort();
    }
    if (m) {
        char *text = sp_module_print(m);
        if (text) {
            sp_module *m2 = sp_module_parse_ir(text, "fuzz.ir");
            if (!m2) {
                fprintf(stderr, "fuzz: printed IR does not parse: %s\n%s\n", sp_last_error(), text);
                abort();
            }
            char *text2 = sp_module_print(m2);
            if (text2 && strcmp(text, text2) != 0) {
                fprintf(stderr, "fuzz: IR round trip differs\n--- first\n%s\n--- second\n%s\n", text,
                        text2);
                abort();
            }
            free(text2);
            sp_module_free(m2);
        }
        free(text);
        sp_module_free(m);
    }
    /* the IR parser on arbitrary text: errors only */
    sp_module *raw = sp_module_parse_ir(src, "fuzz.ir");
    if (raw) {
        char *t = sp_module_print(raw);
        free(t);
        sp_module_free(raw);
    }
    free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1 << 16) return 0;
    check_one(data, size);
    return 0;
}

#ifndef SPORE_LIBFUZZER

#ifndef SPORE_FUZZ_CORPUS
#define SPORE_FUZZ_CORPUS "tests/fuzz/corpus"
#endif
#define FUZZ_ITERS 15000
#define FUZZ_MAX_FILES 256

typedef struct blob {
    uint8_t *p;
    size_t n;
} blob;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) { /* xorshift64*: deterministic across runs */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static const char *const tokens[] = {
    "(", ")", "[", "]", ":", ",", "\n", "    ", "\t", "if ", "else", "elif ", "while ", "for ",
    " in ", "def ", "return ", "lambda ", "and ", "or ", "not ", "==", "<", "**", "@", "...",
    "None", "x", "y", "f(", "\"s\"", "'''", "\\\n", "#", "=", "+=", ".", "0x", "1e", "range(",
    "break\n", "continue\n", "import spore\n", "from spore import ops\n", ";", "*", "-",
};

static blob mutate(const blob *a, const blob *b) {
    size_t cap = a->n + (b ? b->n : 0) + 64;
    blob o = {malloc(cap), 0};
    if (!o.p) return o;
    memcpy(o.p, a->p, a->n);
    o.n = a->n;
    int edits = 1 + (int)(rnd() % 4);
    for (int e = 0; e < edits; e++) {
        size_t pos = o.n ? (size_t)(rnd() % (o.n + 1)) : 0;
        switch (rnd() % 5) {
        case 0: /* flip a byte */
            if (o.n) o.p[pos % o.n] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1: /* delete a run */
            if (o.n) {
                size_t k = (size_t)(rnd() % 8), at = pos % o.n;
                if (at + k > o.n) k = o.n - at;
                memmove(o.p + at, o.p + at + k, o.n - at - k);
                o.n -= k;
            }
            break;
        case 2:
        case 3: { /* insert a token */
            const char *t = tokens[rnd() % (sizeof tokens / sizeof tokens[0])];
            size_t k = strlen(t);
            if (o.n + k > cap) break;
            memmove(o.p + pos + k, o.p + pos, o.n - pos);
            memcpy(o.p + pos, t, k);
            o.n += k;
            break;
        }
        default: /* splice the tail of another file */
            if (b && b->n) {
                size_t from = (size_t)(rnd() % b->n), k = b->n - from;
                if (pos + k > cap) k = cap - pos;
                memcpy(o.p + pos, b->p + from, k);
                o.n = pos + k;
            }
            break;
        }
    }
    return o;
}

static int load(const char *path, blob *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1 << 16)) {
        fclose(f);
        return 0;
    }
    out->p = malloc((size_t)n + 1);
    out->n = out->p ? fread(out->p, 1, (size_t)n, f) : 0;
    fclose(f);
    return out->p != NULL;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : SPORE_FUZZ_CORPUS;
    int iters = argc > 2 ? atoi(argv[2]) : FUZZ_ITERS;
    blob files[FUZZ_MAX_FILES];
    int nf = 0;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz_frontend: cannot open corpus directory %s\n", dir);
        return 1;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) && nf < FUZZ_MAX_FILES) {
        if (ent->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        if (load(path, &files[nf])) nf++;
    }
    closedir(d);
    if (nf == 0) {
        fprintf(stderr, "fuzz_frontend: empty corpus in %s\n", dir);
        return 1;
    }
    /* readdir order varies by file system: sort for a deterministic loop */
    for (int i = 1; i < nf; i++)
        for (int j = i; j > 0 && (files[j].n < files[j - 1].n ||
                                  (files[j].n == files[j - 1].n &&
                                   memcmp(files[j].p, files[j - 1].p, files[j].n) < 0)); j--) {
            blob t = files[j];
            files[j] = files[j - 1];
            files[j - 1] = t;
        }
    for (int i = 0; i < nf; i++) check_one(files[i].p, files[i].n);
    for (int it = 0; it < iters; it++) {
        const blob *a = &files[rnd() % (uint64_t)nf], *b = &files[rnd() % (uint64_t)nf];
        blob m = mutate(a, b);
        if (m.p) check_one(m.p, m.n);
        free(m.p);
    }
    for (int i = 0; i < nf; i++) free(files[i].p);
    fprintf(stderr, "fuzz_frontend: %d corpus files, %d mutated inputs, no findings\n", nf, iters);
    return 0;
}

#endif
