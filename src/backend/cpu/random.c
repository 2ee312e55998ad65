/*
 * random.c -- CPU kernels of the random-tensor primitives: uniform, normal,
 * bernoulli, randint.
 *
 * The numbers themselves come from the core's fills (sp_rng_uniform & co. in
 * src/core/philox.c, where the exact recipe is written down), so an eager
 * call, a compiled graph and the C API draw identical tensors for the same
 * (seed, offset), with any thread count.
 *
 * Seeding: when the attribute "seed" is present the kernel is a pure
 * function of (seed, offset [0]) -- what the compiler emits after it has
 * fixed the randomness of a graph.  When it is absent (eager calls), the
 * kernel reserves exactly the Philox blocks its fill consumes from the global
 * generator -- ceil(n/4) (normal: ceil(n/2)) -- so successive calls draw
 * fresh, non-overlapping numbers and sp_set_seed() makes a run repeatable.
 */
#include "backend/cpu/cpu.h"

/* The (seed, offset) of a fill of n elements that consumes one block per
 * `per_block` elements. */
static void cpu_rng_key(const sp_attrs *attrs, int64_t n, int per_block, uint64_t *seed,
                        uint64_t *offset) {
    if (sp_attrs_find(attrs, "seed")) {
        *seed = (uint64_t)sp_attrs_get_int(attrs, "seed", 0);
        *offset = (uint64_t)sp_attrs_get_int(attrs, "offset", 0);
        return;
    }
    sp_rng_next(((uint64_t)n + (uint64_t)per_block - 1) / (uint64_t)per_block, seed, offset);
}

sp_status cpu_uniform(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    uint64_t seed, offset;
    cpu_rng_key(a->attrs, sp_tensor_numel(y), 4, &seed, &offset);
    return sp_rng_uniform(y, seed, offset, sp_attrs_get_float(a->attrs, "low", 0),
                          sp_attrs_get_float(a->attrs, "high", 1));
}

sp_status cpu_normal(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    uint64_t seed, offset;
    cpu_rng_key(a->attrs, sp_tensor_numel(y), 2, &seed, &offset);
    return sp_rng_normal(y, seed, offset, sp_attrs_get_float(a->attrs, "mean", 0),
                         sp_attrs_get_float(a->attrs, "std", 1));
}

sp_status cpu_bernoulli(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    uint64_t seed, offset;
    cpu_rng_key(a->attrs, sp_tensor_numel(y), 4, &seed, &offset);
    return sp_rng_bernoulli(y, seed, offset, sp_attrs_get_float(a->attrs, "p", 0.5));
}

sp_status cpu_randint(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    if (!sp_attrs_find(a->attrs, "high"))
        return sp_error(SP_ERR_ARG, "randint: missing attribute 'high'");
    uint64_t seed, offset;
    cpu_rng_key(a->attrs, sp_tensor_numel(y), 4, &seed, &offset);
    return sp_rng_randint(y, seed, offset, sp_attrs_get_int(a->attrs, "low", 0),
                          sp_attrs_get_int(a->attrs, "high", 0));
}
