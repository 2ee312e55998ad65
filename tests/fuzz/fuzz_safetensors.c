/*
 * fuzz_safetensors.c -- fuzzing the safetensors checkpoint loader and its
 * JSON reader.
 *
 * Each input goes to sp_checkpoint_load_mem.  A success must account for
 * every byte: the tensors' bytes plus the 8-byte length and the header add
 * up to the input's size (the format allows no holes), names are unique
 * and every tensor is findable by name; an error must name the input and
 * leave the output NULL.  JSON punctuation and safetensors keys are among
 * the inserted tokens, so mutations reach deep into the header.  See
 * fuzz_binary.h for the two ways to run it.
 */
#define FUZZ_TOKENS "\"", "{", "}", "[", "]", ",", ":", "0", "-1", "1e999", "\\u00e9", \
    "\"dtype\":\"F32\"", "\"shape\":[", "\"data_offsets\":[0,", "\"__metadata__\":{", \
    "\"BOOL\"", "\"BF16\"", "18446744073709551615", "null", " ", "\\"
#include "fuzz_binary.h"

static void check_one(const uint8_t *data, size_t size) {
    sp_checkpoint *c = (sp_checkpoint *)&c;
    sp_clear_error();
    sp_status st = sp_checkpoint_load_mem(data, size, "fuzz.safetensors", &c);
    if (st != SP_OK) {
        if (c != NULL || !strstr(sp_last_error(), "fuzz.safetensors: ") || st == SP_ERR_INTERNAL) {
            fprintf(stderr, "fuzz_safetensors: bad error (%s): %s\n", sp_status_name(st),
                    sp_last_error());
            abort();
        }
        return;
    }
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)data[i] << (8 * i);
    uint64_t total = 8 + hl;
    for (int i = 0; i < c->n; i++) {
        total += sp_tensor_nbytes(c->tensors[i]);
        if (sp_checkpoint_find(c, c->names[i]) != c->tensors[i]) {
            fprintf(stderr, "fuzz_safetensors: tensor \"%s\" is not unique\n", c->names[i]);
            abort();
        }
    }
    if (total != size) {
        fprintf(stderr, "fuzz_safetensors: %zu bytes accepted, %llu accounted for\n", size,
                (unsigned long long)total);
        abort();
    }
    sp_checkpoint_free(c);
}
