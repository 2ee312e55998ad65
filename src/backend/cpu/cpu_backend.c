/*
 * cpu_backend.c -- the CPU backend: memory from the counting allocator and a
 * kernel table generated from ops.def.
 *
 * The table has one slot per primitive, cpu_<name>, in ops.def order, so a
 * kernel is found by indexing with the op id.  The kernels are ordinary
 * (strong) references: a primitive added to ops.def without its CPU kernel
 * is a link error, which is what keeps the backend complete, and a program
 * linking the static archive pulls in every kernel file.
 *
 * `supports(op, d)` is answered from the dtype masks of ops.def: the CPU
 * backend implements every dtype the table promises.  For ops without
 * inputs the dispatcher passes the output dtype, which the table's mask
 * also describes.
 *
 * cpu_broadcast_strides lives here because every elementwise family needs
 * it and it belongs to no single family.
 */
#include <string.h>

#include "backend/cpu/cpu.h"

static sp_kernel_fn const cpu_kernels[SP_OP_COUNT] = {
#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) [SP_OP_##ID] = cpu_##name,
#include "ops/ops.def"
#undef SP_OP
};

static void *cpu_be_alloc(sp_backend *be, size_t nbytes) {
    (void)be;
    return sp_cpu_alloc(nbytes);
}

static void cpu_be_free(sp_backend *be, void *p) {
    (void)be;
    sp_cpu_free(p);
}

static sp_status cpu_be_memcpy(sp_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    if (n) memmove(dst, src, n);
    return SP_OK;
}

static int cpu_be_supports(sp_backend *be, int op, sp_dtype d) {
    (void)be;
    if (op < 0 || op >= SP_OP_COUNT || !cpu_kernels[op]) return 0;
    if ((int)d < 0 || d >= SP_DTYPE_COUNT) return 0;
    return (sp_op_defs[op].dtypes & SP_DTM(d)) != 0;
}

static sp_status cpu_be_launch(sp_backend *be, const sp_kernel_args *a) {
    (void)be;
    if (!a || a->op < 0 || a->op >= SP_OP_COUNT)
        return sp_error(SP_ERR_INTERNAL, "cpu: launch of an unknown primitive");
    sp_kernel_fn fn = cpu_kernels[a->op];
    if (!fn)
        return sp_error(SP_ERR_UNSUPPORTED, "no CPU kernel for %s", sp_op_defs[a->op].name);
    return fn(a);
}

static sp_status cpu_be_sync(sp_backend *be) {
    (void)be;
    return SP_OK; /* kernels return only when their work is done */
}

static sp_backend cpu_backend = {
    .name = "cpu",
    .type = SP_DEVICE_CPU,
    .ctx = NULL,
    .alloc = cpu_be_alloc,
    .free = cpu_be_free,
    .memcpy_to_device = cpu_be_memcpy,
    .memcpy_to_host = cpu_be_memcpy,
    .supports = cpu_be_supports,
    .launch = cpu_be_launch,
    .sync = cpu_be_sync,
};

sp_backend *sp_backend_cpu(void) { return &cpu_backend; }

void cpu_broadcast_strides(const sp_tensor *t, int ndim, const int64_t *shape, int64_t *strides) {
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - lead;
        /* a size-1 dim is read at index 0 whatever the output index is */
        strides[i] = (j < 0 || t->shape[j] == 1) ? 0 : t->strides[j];
    }
    (void)shape;
}
