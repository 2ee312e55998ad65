/*
 * spore.c -- the `spore` command-line program.
 *
 * Subcommands grow with the layers: today `run-check` (the analogue of
 * mindspore.run_check(): version, backends, a small computation on each,
 * a verdict) and `version`.  `run FILE.py`, `ir` and friends arrive with the
 * front end.  Every failure prints the library's error message and exits
 * non-zero; nothing here aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/gemm.h"
#include "spore/spore.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: spore <command> [args]\n"
            "commands:\n"
            "  run-check   check the installation: backends and a small computation on each\n"
            "  version     print the version\n"
            "  help        this text\n");
}

/* Multiplies [1,2,3] by [4,5,6] elementwise and a 2x2 matmul on `dev`;
 * returns 1 when both give the known answers. */
static int check_device(sp_device dev, const char *label) {
    static const float a[] = {1, 2, 3}, b[] = {4, 5, 6}, want[] = {4, 10, 18};
    int64_t n = 3, sq[2] = {2, 2};
    static const float m[] = {1, 2, 3, 4}, mm_want[] = {7, 10, 15, 22};
    sp_tensor *x = sp_tensor_from_data(SP_F32, 1, &n, a);
    sp_tensor *y = sp_tensor_from_data(SP_F32, 1, &n, b);
    sp_tensor *sqm = sp_tensor_from_data(SP_F32, 2, sq, m);
    sp_tensor *out[SP_MAX_OUTPUTS] = {0}, *mm[SP_MAX_OUTPUTS] = {0};
    int nout = 0, ok = 0;
    (void)dev; /* inputs are made on the CPU; other devices come with their backends */
    if (!x || !y || !sqm) goto done;
    sp_tensor *xy[2] = {x, y}, *mmin[2] = {sqm, sqm};
    if (sp_op_call_name("mul", 2, xy, NULL, &nout, out) != SP_OK) goto done;
    if (sp_op_call_name("matmul", 2, mmin, NULL, &nout, mm) != SP_OK) goto done;
    char *s = sp_tensor_to_string(out[0]);
    printf("  %s: [1. 2. 3.] * [4. 5. 6.] = %s\n", label, s ? s : "?");
    free(s);
    ok = memcmp(sp_tensor_data(out[0]), want, sizeof want) == 0 &&
         memcmp(sp_tensor_data(mm[0]), mm_want, sizeof mm_want) == 0;
done:
    if (!ok && sp_last_error()[0]) printf("  %s: failed: %s\n", label, sp_last_error());
    sp_tensor_release(out[0]);
    sp_tensor_release(mm[0]);
    sp_tensor_release(x);
    sp_tensor_release(y);
    sp_tensor_release(sqm);
    return ok;
}

static int run_check(void) {
    printf("Spore version: %s\n", sp_version());
    printf("backends:\n");
    printf("  cpu: %d threads, GEMM kernel %s\n", sp_get_num_threads(), cpu_sgemm_kernel_name());
    sp_backend *cuda = sp_backend_get(SP_DEVICE_CUDA);
    if (cuda) {
        printf("  cuda: available\n");
    } else {
        printf("  cuda: not available (%s)\n", sp_last_error());
        sp_clear_error();
    }
    printf("checks:\n");
    int ok = check_device(SP_CPU, "cpu");
    if (ok) {
        printf("Spore %s is installed successfully and works on: CPU\n", sp_version());
        return 0;
    }
    printf("Spore %s does NOT work on this machine: the CPU check failed\n", sp_version());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run-check")) return run_check();
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("spore %s\n", sp_version());
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "spore: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
