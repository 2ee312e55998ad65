/*
 * fuzz_binary.h -- the driver shared by the fuzz targets of binary file
 * formats (fuzz_idx.c, fuzz_cifar.c, fuzz_safetensors.c).
 *
 * A target defines `static void check_one(const uint8_t *data, size_t
 * size)` (load the bytes, let any finding crash or abort) and, optionally,
 * FUZZ_TOKENS (strings worth inserting, e.g. JSON punctuation), then
 * includes this file.  What it gets:
 *  - LLVMFuzzerTestOneInput, for libFuzzer builds (SPORE_FUZZ=ON, clang);
 *  - otherwise a main() that replays every file of a corpus directory
 *    (argv[1]) and runs a deterministic mutation loop (argv[2] iterations,
 *    FUZZ_ITERS by default) of the mutations that break binary formats:
 *    bit flips, truncations, deleted and inserted runs, "interesting"
 *    integers (0, -1, 2^31, 2^63 in either byte order) written over
 *    length and size fields, and splices between corpus files.  The same
 *    inputs every run, so a ctest failure reproduces.
 * A finding is a crash, a sanitizer report, a leak (sp_cpu_live_bytes is
 * checked after every input) or an abort from check_one.
 */
#ifndef SPORE_FUZZ_BINARY_H
#define SPORE_FUZZ_BINARY_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spore/spore.h"

#ifndef FUZZ_MAX_INPUT
#define FUZZ_MAX_INPUT (1 << 16)
#endif

static void check_one(const uint8_t *data, size_t size);

static void fuzz_run_one(const uint8_t *data, size_t size) {
    int64_t live = sp_cpu_live_bytes();
    check_one(data, size);
    if (sp_cpu_live_bytes() != live) {
        fprintf(stderr, "fuzz: %lld bytes leaked by one input\n",
                (long long)(sp_cpu_live_bytes() - live));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size <= FUZZ_MAX_INPUT) fuzz_run_one(data, size);
    return 0;
}

#ifndef SPORE_LIBFUZZER

#ifndef FUZZ_ITERS
#define FUZZ_ITERS 200000
#endif
#define FUZZ_MAX_FILES 256

typedef struct fz_blob {
    uint8_t *p;
    size_t n;
} fz_blob;

static uint64_t fz_state = 0x2545F4914F6CDD1DULL;
static uint64_t fz_rnd(void) { /* xorshift64*: the same sequence every run */
    fz_state ^= fz_state >> 12;
    fz_state ^= fz_state << 25;
    fz_state ^= fz_state >> 27;
    return fz_state * 2685821657736338717ULL;
}

#ifndef FUZZ_TOKENS
#define FUZZ_TOKENS "\0"
#endif
static const char *const fz_tokens[] = {FUZZ_TOKENS};

static fz_blob fz_mutate(const fz_blob *a, const fz_blob *b) {
    size_t cap = a->n + (b ? b->n : 0) + 64;
    fz_blob o = {malloc(cap), 0};
    if (!o.p) return o;
    memcpy(o.p, a->p, a->n);
    o.n = a->n;
    int edits = 1 + (int)(fz_rnd() % 3);
    for (int e = 0; e < edits; e++) {
        size_t pos = o.n ? (size_t)(fz_rnd() % o.n) : 0;
        switch (fz_rnd() % 7) {
        case 0: /* flip a bit */
            if (o.n) o.p[pos] ^= (uint8_t)(1u << (fz_rnd() % 8));
            break;
        case 1: /* truncate */
            o.n = pos;
            break;
        case 2: { /* delete a run */
            size_t k = 1 + (size_t)(fz_rnd() % 16);
            if (pos + k > o.n) k = o.n - pos;
            memmove(o.p + pos, o.p + pos + k, o.n - pos - k);
            o.n -= k;
            break;
        }
        case 3: { /* an interesting integer over 1, 2, 4 or 8 bytes */
            static const uint64_t vals[] = {0, 1, 0xFF, 0x7F, 0x80, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                                            0xFFFFFFFF, 0x7FFFFFFFFFFFFFFFULL, UINT64_MAX, 3073,
                                            28, 60000};
            uint64_t v = vals[fz_rnd() % (sizeof vals / sizeof vals[0])];
            size_t w = (size_t)1 << (fz_rnd() % 4);
            int big = (int)(fz_rnd() % 2);
            for (size_t i = 0; i < w && pos + i < o.n; i++)
                o.p[pos + i] = (uint8_t)(v >> (8 * (big ? w - 1 - i : i)));
            break;
        }
        case 4: { /* insert a token or random bytes */
            const char *t = fz_tokens[fz_rnd() % (sizeof fz_tokens / sizeof fz_tokens[0])];
            size_t k = strlen(t);
            uint8_t rnd[4];
            if (!k) {
                k = 1 + (size_t)(fz_rnd() % 4);
                for (size_t i = 0; i < k; i++) rnd[i] = (uint8_t)fz_rnd();
                t = (const char *)rnd;
            }
            if (o.n + k > cap) break;
            memmove(o.p + pos + k, o.p + pos, o.n - pos);
            memcpy(o.p + pos, t, k);
            o.n += k;
            break;
        }
        case 5: /* set a byte */
            if (o.n) o.p[pos] = (uint8_t)fz_rnd();
            break;
        default: /* splice the tail of another file */
            if (b && b->n) {
                size_t from = (size_t)(fz_rnd() % b->n), k = b->n - from;
                if (pos + k > cap) k = cap - pos;
                memcpy(o.p + pos, b->p + from, k);
                o.n = pos + k;
            }
            break;
        }
    }
    return o;
}

static int fz_load(const char *path, fz_blob *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > FUZZ_MAX_INPUT) {
        fclose(f);
        return 0;
    }
    out->p = malloc((size_t)n + 1);
    out->n = out->p ? fread(out->p, 1, (size_t)n, f) : 0;
    fclose(f);
    return out->p != NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s corpus-dir [iterations]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int iters = argc > 2 ? atoi(argv[2]) : FUZZ_ITERS;
    fz_blob files[FUZZ_MAX_FILES];
    int nf = 0;
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "%s: cannot open corpus directory %s\n", argv[0], dir);
        return 1;
    }
    struct dirent *ent;
    while ((ent = readdir(d)) && nf < FUZZ_MAX_FILES) {
        if (ent->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
        if (fz_load(path, &files[nf])) nf++;
    }
    closedir(d);
    if (nf == 0) {
        fprintf(stderr, "%s: empty corpus in %s\n", argv[0], dir);
        return 1;
    }
    /* readdir order varies by file system: sort for a deterministic loop */
    for (int i = 1; i < nf; i++)
        for (int j = i; j > 0 && (files[j].n < files[j - 1].n ||
                                  (files[j].n == files[j - 1].n &&
                                   memcmp(files[j].p, files[j - 1].p, files[j].n) < 0));
             j--) {
            fz_blob t = files[j];
            files[j] = files[j - 1];
            files[j - 1] = t;
        }
    for (int i = 0; i < nf; i++) fuzz_run_one(files[i].p, files[i].n);
    for (int it = 0; it < iters; it++) {
        const fz_blob *a = &files[fz_rnd() % (uint64_t)nf], *b = &files[fz_rnd() % (uint64_t)nf];
        fz_blob m = fz_mutate(a, b);
        if (m.p) fuzz_run_one(m.p, m.n);
        free(m.p);
    }
    for (int i = 0; i < nf; i++) free(files[i].p);
    fprintf(stderr, "%s: %d corpus files, %d mutated inputs, no findings\n", argv[0], nf, iters);
    return 0;
}

#endif
#endif
