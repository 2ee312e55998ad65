/*
 * train_mlp.c -- trains a 784-256-10 MLP on Fashion-MNIST from C alone,
 * with the model written in Spore's source language (mlp.py beside this
 * file) and driven through the program API (spore/program.h).
 *
 * The division of labour is the point of the example: C owns the data
 * (loading the IDX files with sp_mnist_load, shuffling, cutting batches)
 * and the loop; the source owns the model (init, forward, loss, the SGD
 * step with value_and_grad inside it, evaluation).  The weights travel as
 * tensors: init() returns them, train_step() takes them and returns the
 * updated ones with the loss, and correct() measures test accuracy after
 * each epoch.  At the end they are stored in the program's parameters W1,
 * B1, W2, B2 (sp_program_set_global), and evaluate() -- which reads those
 * globals, as a deployed model would -- must give the same accuracy.
 *
 * Batches are drawn without replacement in an order shuffled per epoch by
 * a Fisher-Yates pass over Spore's counter-based generator (Philox keyed by
 * --seed and the epoch), so a run is reproducible with any thread count;
 * the last short batch of an epoch is dropped, so every step has the same
 * shape and one compiled signature serves the whole run.
 *
 *   train_mlp [--data DIR] [--epochs N] [--threads N] [--batch N] [--lr F]
 *             [--seed N] [--train-limit N] [--model FILE] [--exec vm]
 *             [--min-accuracy F] [--check-loss] [--skip-missing] [--help]
 *
 * Exits 0 on success; 1 with the message on any error (a missing data
 * directory, a model file with a syntax error, an accuracy under
 * --min-accuracy, a loss that did not fall under --check-loss); 77 when the
 * data directory is absent and --skip-missing is given (ctest's skip code).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <spore/spore.h>

#ifndef SPORE_EXAMPLES_DIR
#define SPORE_EXAMPLES_DIR "examples/c"
#endif

#define N_PARAMS 4
static const char *const PARAM_NAMES[N_PARAMS] = {"W1", "B1", "W2", "B2"};

typedef struct options {
    const char *data, *model, *exec;
    int epochs, threads, batch, skip_missing, check_loss;
    double lr, min_accuracy;
    long long seed, train_limit;
} options;

static int usage(const char *why) {
    fprintf(why ? stderr : stdout,
            "%s%s%s"
            "usage: train_mlp [--data DIR] [--epochs N] [--threads N] [--batch N] [--lr F] [--seed N]\n"
            "                 [--train-limit N] [--model FILE] [--exec vm] [--min-accuracy F]\n"
            "                 [--check-loss] [--skip-missing]\n",
            why ? "train_mlp: " : "", why ? why : "", why ? "\n" : "");
    return why ? 1 : 2;
}

static int parse_args(int argc, char **argv, options *o) {
    *o = (options){.data = "/usr/share/datasets/fashion-mnist",
                   .model = SPORE_EXAMPLES_DIR "/mlp.py",
                   .epochs = 5,
                   .batch = 64,
                   .lr = 0.1,
                   .seed = 0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        errno = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(NULL);
        if (!strcmp(a, "--skip-missing")) {
            o->skip_missing = 1;
            continue;
        }
        if (!strcmp(a, "--check-loss")) {
            o->check_loss = 1;
            continue;
        }
        if (!v) return usage("a flag without its value, or an unknown flag");
        i++;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--exec")) o->exec = v;
        else if (!strcmp(a, "--epochs")) o->epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--threads")) o->threads = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--batch")) o->batch = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--seed")) o->seed = strtoll(v, &end, 10);
        else if (!strcmp(a, "--train-limit")) o->train_limit = strtoll(v, &end, 10);
        else if (!strcmp(a, "--lr")) o->lr = strtod(v, &end);
        else if (!strcmp(a, "--min-accuracy")) o->min_accuracy = strtod(v, &end);
        else return usage("unknown flag");
        if (end && (*end || errno || end == v)) return usage("a flag's value is not a number");
    }
    if (o->epochs < 1 || o->batch < 1 || o->threads < 0 || o->train_limit < 0 || o->seed < 0 || !(o->lr > 0))
        return usage("--epochs and --batch must be >= 1, --lr > 0, the others >= 0");
    if (o->exec && strcmp(o->exec, "vm") && strcmp(o->exec, "auto")) return usage("--exec takes vm or auto");
    return 0;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A permutation of 0..n-1 for `epoch`: Fisher-Yates on Philox draws. */
static void shuffle(int64_t *idx, int64_t n, uint64_t seed, uint64_t epoch) {
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        uint32_t r[4];
        sp_philox4x32(seed, (uint64_t)i, epoch, r);
        uint64_t x = ((uint64_t)r[0] << 32) | r[1];
        int64_t j = (int64_t)(x % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* Rows idx[0..b) of the uint8 (N, 28, 28) images as float32 (b, 784) in
 * [0, 1], and their labels as int64 (b,).  New tensors or NULL + error. */
static sp_status make_batch(const sp_tensor *images, const sp_tensor *labels, const int64_t *idx, int64_t b,
                            sp_tensor **x, sp_tensor **y) {
    int64_t xs[2] = {b, 784}, ys[1] = {b};
    *x = sp_tensor_new(SP_F32, 2, xs, SP_CPU);
    *y = sp_tensor_new(SP_I64, 1, ys, SP_CPU);
    if (!*x || !*y) {
        sp_tensor_release(*x);
        sp_tensor_release(*y);
        *x = *y = NULL;
        return sp_last_status();
    }
    const uint8_t *im = sp_tensor_data(images), *lb = sp_tensor_data(labels);
    float *xd = sp_tensor_data(*x);
    int64_t *yd = sp_tensor_data(*y);
    for (int64_t r = 0; r < b; r++) {
        const uint8_t *src = im + idx[r] * 784;
        for (int k = 0; k < 784; k++) xd[r * 784 + k] = (float)src[k] * (1.0f / 255.0f);
        yd[r] = lb[idx[r]];
    }
    return SP_OK;
}

/* The number of test images classified correctly, evaluated in chunks of
 * 1000: by correct(w..., x, y) with the weights w when w is not NULL, else
 * by evaluate(x, y), which reads the parameters stored in the program. */
static sp_status test_correct(sp_program *p, sp_tensor *const *w, const sp_tensor *images,
                              const sp_tensor *labels, int64_t *out) {
    int64_t n = images->shape[0], total = 0;
    *out = 0;
    int64_t *idx = malloc(sizeof *idx * (size_t)n);
    if (!idx) return sp_error(SP_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    sp_status st = SP_OK;
    for (int64_t s = 0; s < n && !st; s += 1000) {
        int64_t b = n - s < 1000 ? n - s : 1000;
        sp_tensor *x, *y;
        if ((st = make_batch(images, labels, idx + s, b, &x, &y))) break;
        sp_arg args[N_PARAMS + 2];
        int na = 0;
        for (int k = 0; w && k < N_PARAMS; k++) args[na++] = sp_arg_tensor(w[k]);
        args[na++] = sp_arg_tensor(x);
        args[na++] = sp_arg_tensor(y);
        sp_results *r = NULL;
        st = sp_program_call(p, w ? "correct" : "evaluate", na, args, &r);
        if (!st) total += (int64_t)sp_tensor_get(sp_results_get(r, 0), NULL);
        sp_results_free(r);
        sp_tensor_release(x);
        sp_tensor_release(y);
    }
    free(idx);
    *out = total;
    return st;
}

/* Declares the signatures the loop calls with, so that a wrong tensor is
 * reported against the parameter it was passed for. */
static sp_status declare(sp_program *p) {
    sp_arg_spec step[7] = {
        {SP_ARG_TENSOR, SP_F32, 2, {784, 256}}, {SP_ARG_TENSOR, SP_F32, 1, {256}},
        {SP_ARG_TENSOR, SP_F32, 2, {256, 10}},  {SP_ARG_TENSOR, SP_F32, 1, {10}},
        {SP_ARG_TENSOR, SP_F32, 2, {-1, 784}},  {SP_ARG_TENSOR, SP_I64, 1, {-1}},
        {SP_ARG_FLOAT, SP_F32, 0, {0}},
    };
    sp_arg_spec eval[2] = {step[4], step[5]};
    sp_status st = sp_program_declare(p, "train_step", 7, step);
    if (!st) st = sp_program_declare(p, "correct", 6, step); /* the first six of train_step's */
    return st ? st : sp_program_declare(p, "evaluate", 2, eval);
}

static int dir_exists(const char *path) {
    struct stat s;
    return stat(path, &s) == 0 && S_ISDIR(s.st_mode);
}

int main(int argc, char **argv) {
    options o;
    int bad = parse_args(argc, argv, &o);
    if (bad) return bad == 2 ? 0 : 1; /* 2: --help */
    if (!dir_exists(o.data)) {
        if (o.skip_missing) {
            printf("train_mlp: skipped: no dataset directory %s (install dataset-fashion-mnist)\n", o.data);
            return 77;
        }
        fprintf(stderr, "train_mlp: %s: no such directory (install dataset-fashion-mnist, or pass --data DIR)\n",
                o.data);
        return 1;
    }
    if (o.threads && sp_set_num_threads(o.threads)) {
        fprintf(stderr, "train_mlp: %s\n", sp_last_error());
        return 1;
    }

    int rc = 1;
    sp_tensor *tr_x = NULL, *tr_y = NULL, *te_x = NULL, *te_y = NULL, *w[N_PARAMS] = {0};
    sp_program *p = NULL;
    int64_t *order = NULL;
    double t0 = now();
    if (sp_mnist_load(o.data, "train", &tr_x, &tr_y) || sp_mnist_load(o.data, "test", &te_x, &te_y)) goto fail;
    if (tr_x->shape[1] * tr_x->shape[2] != 784 || te_x->shape[1] * te_x->shape[2] != 784) {
        sp_error(SP_ERR_FORMAT, "%s: images are not 28x28", o.data);
        goto fail;
    }
    int64_t n_train = tr_x->shape[0];
    if (o.train_limit && o.train_limit < n_train) n_train = o.train_limit;
    printf("train_mlp: %lld training and %lld test images from %s (%.2f s); %d threads\n",
           (long long)n_train, (long long)te_x->shape[0], o.data, now() - t0, sp_get_num_threads());

    if (!(p = sp_program_load(o.model))) goto fail;
    if (o.exec && !strcmp(o.exec, "vm") && sp_program_set_exec(p, SP_EXEC_VM)) goto fail;
    if (declare(p)) goto fail;

    sp_results *r = NULL;
    sp_arg seed = sp_arg_int(o.seed);
    if (sp_program_call(p, "init", 1, &seed, &r)) goto fail;
    if (sp_results_count(r) != N_PARAMS) {
        sp_error(SP_ERR_RUNTIME, "%s: init returned %d tensors, expected %d", o.model, sp_results_count(r),
                 N_PARAMS);
        sp_results_free(r);
        goto fail;
    }
    for (int k = 0; k < N_PARAMS; k++) w[k] = sp_results_take(r, k);
    sp_results_free(r);

    order = malloc(sizeof *order * (size_t)n_train);
    if (!order) {
        sp_error(SP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    int64_t steps = n_train / o.batch;
    if (steps < 1) {
        sp_error(SP_ERR_ARG, "--train-limit %lld is smaller than one batch of %d", (long long)n_train, o.batch);
        goto fail;
    }
    /* the mean loss of the first and the last steps of the run, for --check-loss */
    int64_t window = steps < 50 ? (steps + 1) / 2 : 50;
    double first_loss = 0, last_loss = 0, accuracy = 0;
    for (int e = 0; e < o.epochs; e++) {
        double te = now(), sum = 0;
        shuffle(order, n_train, (uint64_t)o.seed, (uint64_t)e);
        for (int64_t s = 0; s < steps; s++) {
            sp_tensor *x, *y;
            if (make_batch(tr_x, tr_y, order + s * o.batch, o.batch, &x, &y)) goto fail;
            sp_arg args[7] = {sp_arg_tensor(w[0]), sp_arg_tensor(w[1]), sp_arg_tensor(w[2]),
                              sp_arg_tensor(w[3]), sp_arg_tensor(x),    sp_arg_tensor(y),
                              sp_arg_float(o.lr)};
            sp_status st = sp_program_call(p, "train_step", 7, args, &r);
            sp_tensor_release(x);
            sp_tensor_release(y);
            if (st) goto fail;
            for (int k = 0; k < N_PARAMS; k++) {
                sp_tensor_release(w[k]);
                w[k] = sp_results_take(r, k);
            }
            double loss = sp_tensor_get(sp_results_get(r, N_PARAMS), NULL);
            sp_results_free(r);
            sum += loss;
            if (e == 0 && s < window) first_loss += loss / (double)window;
            if (e == o.epochs - 1 && s >= steps - window) last_loss += loss / (double)window;
        }
        double t_train = now() - te;
        int64_t right = 0;
        if (test_correct(p, w, te_x, te_y, &right)) goto fail;
        accuracy = (double)right / (double)te_x->shape[0];
        printf("epoch %d/%d  loss %.4f  test accuracy %.2f%%  (%lld steps of %d in %.2f s, eval %.2f s)\n", e + 1,
               o.epochs, sum / (double)steps, 100 * accuracy, (long long)steps, o.batch, t_train,
               now() - te - t_train);
        fflush(stdout);
    }
    /* keep the trained model in the program, and check that evaluate(),
     * which reads it from there, agrees with the last epoch's figure */
    for (int k = 0; k < N_PARAMS; k++)
        if (sp_program_set_global(p, PARAM_NAMES[k], w[k])) goto fail;
    int64_t right = 0;
    if (test_correct(p, NULL, te_x, te_y, &right)) goto fail;
    if ((double)right / (double)te_x->shape[0] != accuracy) {
        sp_error(SP_ERR_RUNTIME, "evaluate() with the stored parameters gives %.2f%%, the last epoch %.2f%%",
                 100.0 * (double)right / (double)te_x->shape[0], 100 * accuracy);
        goto fail;
    }
    printf("train_mlp: done in %.2f s; the trained weights are the program's %s, %s, %s, %s "
           "(evaluate: %.2f%%)\n", now() - t0, PARAM_NAMES[0], PARAM_NAMES[1], PARAM_NAMES[2], PARAM_NAMES[3],
           100 * accuracy);
    if (o.check_loss && !(last_loss < first_loss)) {
        sp_error(SP_ERR_RUNTIME, "the loss did not fall: %.4f over the first %lld steps, %.4f over the last",
                 first_loss, (long long)window, last_loss);
        goto fail;
    }
    if (o.check_loss) printf("loss fell from %.4f to %.4f\n", first_loss, last_loss);
    if (accuracy < o.min_accuracy) {
        sp_error(SP_ERR_RUNTIME, "test accuracy %.2f%% is under --min-accuracy %.2f%%", 100 * accuracy,
                 100 * o.min_accuracy);
        goto fail;
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "train_mlp: %s\n", sp_last_error());
    for (int k = 0; k < N_PARAMS; k++) sp_tensor_release(w[k]);
    free(order);
    sp_program_free(p);
    sp_tensor_release(tr_x);
    sp_tensor_release(tr_y);
    sp_tensor_release(te_x);
    sp_tensor_release(te_y);
    return rc;
}
