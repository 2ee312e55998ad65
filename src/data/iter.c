/*
 * iter.c -- running a dataset description: the iterator, its prefetch
 * thread and the parallel maps.
 *
 * An iterator copies the description's chain into runtime nodes (dnode),
 * one per sp_dataset, each with a pull-style next() and a reset(epoch)
 * that starts its upstream over.  Sources, shuffle, batch and repeat are
 * sequential: exactly one thread calls a node's next() at a time.  A map
 * with workers is where parallelism lives, and the one idea of this file
 * is how it stays deterministic:
 *
 *   - a worker takes the "pull turn" (one at a time), pulls the next
 *     chunk of up to 16 rows from upstream and numbers each row with the
 *     map's row counter;
 *   - it transforms the rows outside any lock, with random draws keyed by
 *     each row's number, and marks the chunk ready in slot c % Q of a
 *     ring of Q chunks;
 *   - the consumer takes chunks strictly in order, and rows within them.
 *
 * So rows leave a map in the order they entered it, with the same random
 * draws, whatever the number of workers and however the threads are
 * scheduled; a map with 0 workers runs the same numbering inline.  The
 * ring bounds the run-ahead (workers wait when Q chunks are out), and the
 * locks and wake-ups are paid once per chunk, not once per row.
 *
 * The iterator's prefetch thread pulls finished rows from the last node
 * into a bounded queue, so the pipeline runs while the caller trains.
 * End-of-data and errors travel as queue items too: the caller sees every
 * row produced before an error, then the error (its message carried
 * across threads as a string), then the same outcome on every later call.
 *
 * Shutdown: sp_data_iter_free sets a stop flag on the iterator and on
 * every map, wakes every waiter, joins the prefetch thread and then each
 * map's workers, and releases whatever rows were in flight.  A worker
 * blocked inside an upstream map's next() is woken by that map's stop flag.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/philox.h"
#include "data/data_internal.h"

#define MAXC SP_DATA_MAX_COLUMNS

/* A row or an outcome, as it travels through a map's ring or the queue. */
enum { SL_EMPTY = 0, SL_ROW, SL_END, SL_ERR };
typedef struct slot {
    int state;
    sp_tensor *row[MAXC];
    sp_status st;
    char *msg;
} slot;

/* A run of up to MAP_CHUNK consecutive rows a map worker pulled and
 * transformed in one turn, then the outcome that ended the run, if any.
 * Workers hand rows over in chunks so the locking costs per chunk, not per
 * row. */
#define MAP_CHUNK 16
typedef struct chunk {
    int ready;        /* filled by a worker, not yet handed out completely */
    int k, pos;       /* rows held; rows already handed out */
    sp_tensor **rows; /* MAP_CHUNK * ncols */
    slot tail;        /* SL_END or SL_ERR after the k rows; SL_EMPTY if none */
} chunk;

typedef struct dnode dnode;
struct dnode {
    const sp_dataset *ds;
    dnode *up;
    int ncols;
    int at_end; /* next() returned end; cleared by reset */
    int started;
    /* tensors */
    int64_t pos;
    /* shuffle */
    sp_tensor **buf;
    int64_t cap, count;
    int up_done;
    uint64_t draws, key;
    /* batch */
    sp_tensor **rows;
    int64_t rows_cap;
    /* repeat */
    int64_t passes, pass_rows;
    uint64_t epoch;
    /* map */
    uint64_t base_seed, next_in;     /* next_in: the next row's number */
    uint64_t next_chunk, out_chunk;  /* chunks started by workers; handed out */
    int nw, nth, sync_ok, pulling, busy, paused, stop;
    uint64_t Q;                      /* chunks in the ring */
    chunk *chunks, *cur;             /* cur: the chunk the consumer is reading */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
};

struct sp_data_iter {
    int ncols, nn;
    dnode *nodes; /* nodes[0] is the last operation, nodes[nn-1] the source */
    sp_dataset *ds;
    int prefetch, th_started, sync_ok, stop;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv_put, cv_get;
    slot *q;
    int qhead, qcount;
    slot final; /* the sticky end or error once seen */
};

static sp_status node_next(dnode *n, sp_tensor **row, int *end);
static sp_status node_reset(dnode *n, uint64_t epoch);

static void row_release(sp_tensor **row, int n) {
    for (int i = 0; i < n; i++) {
        sp_tensor_release(row[i]);
        row[i] = NULL;
    }
}

/* Records this thread's error in s (the message crosses threads as a copy). */
static void slot_set_error(slot *s, sp_status st) {
    s->state = SL_ERR;
    s->st = st;
    s->msg = strdup(*sp_last_error() ? sp_last_error() : sp_status_name(st));
}

/* Re-raises a recorded error on the calling thread. */
static sp_status slot_raise(const slot *s) {
    return sp_error(s->st, "%s", s->msg ? s->msg : sp_status_name(s->st));
}

/* ---- sources ---- */

static sp_status tensors_next(dnode *n, sp_tensor **row, int *end) {
    const sp_dataset *ds = n->ds;
    if (n->pos >= ds->nrows) {
        *end = 1;
        return SP_OK;
    }
    for (int c = 0; c < n->ncols; c++) {
        const sp_tensor *t = ds->cols[c];
        row[c] = sp_tensor_view_of(t->buf, t->dtype, t->ndim - 1, t->shape + 1, t->strides + 1,
                                   t->offset + n->pos * t->strides[0]);
        if (!row[c]) {
            row_release(row, c);
            return sp_last_status();
        }
    }
    n->pos++;
    return SP_OK;
}

static sp_status pull_next(dnode *n, sp_tensor **row, int *end) {
    for (int c = 0; c < n->ncols; c++) row[c] = NULL;
    sp_clear_error();
    sp_status st = n->ds->pull(n->ds->ctx, row, end);
    if (st == SP_OK && !*end)
        for (int c = 0; c < n->ncols; c++)
            if (!row[c]) st = sp_error(SP_ERR_RUNTIME, "data source: column %d of a row is NULL", c);
    if (st != SP_OK || *end) {
        row_release(row, n->ncols);
        if (st != SP_OK && !*sp_last_error())
            sp_error(st, "data source: failed with %s", sp_status_name(st));
    }
    return st;
}

static sp_status pull_reset(dnode *n, uint64_t epoch) {
    if (n->ds->reset) {
        sp_clear_error();
        sp_status st = n->ds->reset(n->ds->ctx, epoch);
        if (st != SP_OK && !*sp_last_error())
            sp_error(st, "data source: reset failed with %s", sp_status_name(st));
        return st;
    }
    if (n->started)
        return sp_error(SP_ERR_UNSUPPORTED,
                        "data source: this source has no reset, so it can be read only once");
    return SP_OK;
}

/* ---- shuffle ---- */

static sp_status shuffle_next(dnode *n, sp_tensor **row, int *end) {
    int nc = n->ncols;
    while (!n->up_done && n->count < n->ds->n) {
        if (n->count == n->cap) {
            int64_t cap = n->cap ? n->cap * 2 : 64;
            if (cap > n->ds->n) cap = n->ds->n;
            sp_tensor **b = realloc(n->buf, (size_t)cap * (size_t)nc * sizeof *b);
            if (!b) return sp_error(SP_ERR_NOMEM, "shuffle: out of memory for the buffer");
            n->buf = b;
            n->cap = cap;
        }
        int e = 0;
        sp_status st = node_next(n->up, n->buf + n->count * nc, &e);
        if (st != SP_OK) return st;
        if (e) n->up_done = 1;
        else n->count++;
    }
    if (!n->count) {
        *end = 1;
        return SP_OK;
    }
    uint32_t r[4];
    core_philox_block(n->key, 0, n->draws++, r);
    uint64_t u = ((uint64_t)r[0] << 32) | r[1];
    int64_t k = (int64_t)(u % (uint64_t)n->count);
    memcpy(row, n->buf + k * nc, (size_t)nc * sizeof *row);
    n->count--;
    memmove(n->buf + k * nc, n->buf + n->count * nc, (size_t)nc * sizeof *row);
    return SP_OK;
}

static sp_status shuffle_reset(dnode *n, uint64_t epoch) {
    row_release(n->buf, (int)(n->count * n->ncols));
    n->count = 0;
    n->up_done = 0;
    n->draws = 0;
    n->key = data_mix(n->ds->seed, epoch);
    return node_reset(n->up, epoch);
}

/* ---- batch ---- */

static sp_status batch_stack(dnode *n, int64_t k, sp_tensor **row) {
    int nc = n->ncols;
    for (int c = 0; c < nc; c++) row[c] = NULL;
    for (int c = 0; c < nc; c++) {
        const sp_tensor *r0 = n->rows[c];
        for (int64_t i = 1; i < k; i++) {
            const sp_tensor *ri = n->rows[i * nc + c];
            int same = ri->dtype == r0->dtype && ri->ndim == r0->ndim;
            for (int d = 0; same && d < r0->ndim; d++) same = ri->shape[d] == r0->shape[d];
            if (!same) {
                char a[160], b[160];
                sp_error(SP_ERR_SHAPE,
                         "batch: column \"%s\" has shape %s %s in row 0 of the batch but %s %s "
                         "in row %lld; rows of a batch must match",
                         sp_dataset_column_name(n->ds, c),
                         sp_shape_str(r0->ndim, r0->shape, a, sizeof a), sp_dtype_name(r0->dtype),
                         sp_shape_str(ri->ndim, ri->shape, b, sizeof b), sp_dtype_name(ri->dtype),
                         (long long)i);
                row_release(row, nc);
                return SP_ERR_SHAPE;
            }
        }
        if (r0->ndim + 1 > SP_MAX_DIMS) {
            row_release(row, nc);
            return sp_error(SP_ERR_SHAPE, "batch: column \"%s\" already has %d dimensions",
                            sp_dataset_column_name(n->ds, c), r0->ndim);
        }
        int64_t shape[SP_MAX_DIMS];
        shape[0] = k;
        memcpy(shape + 1, r0->shape, (size_t)r0->ndim * sizeof *shape);
        sp_tensor *o = sp_tensor_new(r0->dtype, r0->ndim + 1, shape, SP_CPU);
        if (!o) {
            row_release(row, nc);
            return sp_last_status();
        }
        row[c] = o;
        size_t each = sp_tensor_nbytes(r0);
        uint8_t *dst = sp_tensor_data(o);
        for (int64_t i = 0; i < k; i++) {
            sp_tensor *ri = n->rows[i * nc + c], *ci;
            if (ri->buf->device.type != SP_DEVICE_CPU) {
                row_release(row, nc);
                return sp_error(SP_ERR_DEVICE, "batch: column \"%s\" is not on the CPU",
                                sp_dataset_column_name(n->ds, c));
            }
            sp_status st = sp_tensor_contiguous(ri, &ci);
            if (st != SP_OK) {
                row_release(row, nc);
                return st;
            }
            if (each) memcpy(dst + (size_t)i * each, sp_tensor_data(ci), each);
            sp_tensor_release(ci);
        }
    }
    return SP_OK;
}

static sp_status batch_next(dnode *n, sp_tensor **row, int *end) {
    int nc = n->ncols;
    int64_t k = 0, want = n->ds->n;
    sp_status st = SP_OK;
    while (k < want) {
        if (k == n->rows_cap) {
            int64_t cap = n->rows_cap ? n->rows_cap * 2 : 16;
            if (cap > want) cap = want;
            sp_tensor **r = realloc(n->rows, (size_t)cap * (size_t)nc * sizeof *r);
            if (!r) {
                st = sp_error(SP_ERR_NOMEM, "batch: out of memory");
                break;
            }
            n->rows = r;
            n->rows_cap = cap;
        }
        int e = 0;
        st = node_next(n->up, n->rows + k * nc, &e);
        if (st != SP_OK || e) break;
        k++;
    }
    if (st == SP_OK) {
        if (k == 0 || (k < want && n->ds->drop_remainder)) *end = 1;
        else st = batch_stack(n, k, row);
    }
    row_release(n->rows, (int)(k * nc));
    return st;
}

/* ---- repeat ---- */

#define REPEAT_EPOCH_MUL 0x9E3779B97F4A7C15ULL

static sp_status repeat_next(dnode *n, sp_tensor **row, int *end) {
    for (;;) {
        int e = 0;
        sp_status st = node_next(n->up, row, &e);
        if (st != SP_OK) return st;
        if (!e) {
            n->pass_rows++;
            return SP_OK;
        }
        n->passes++;
        /* an empty pass would repeat forever without producing anything */
        if ((n->ds->n != -1 && n->passes >= n->ds->n) || n->pass_rows == 0) {
            *end = 1;
            return SP_OK;
        }
        n->pass_rows = 0;
        st = node_reset(n->up, n->epoch * REPEAT_EPOCH_MUL + (uint64_t)n->passes);
        if (st != SP_OK) return st;
    }
}

static sp_status repeat_reset(dnode *n, uint64_t epoch) {
    n->passes = n->pass_rows = 0;
    n->epoch = epoch;
    return node_reset(n->up, epoch * REPEAT_EPOCH_MUL);
}

/* ---- map ---- */

/* Applies the map's transforms to row (in place); row number `seq`.  On
 * error the row is released. */
static sp_status map_apply(dnode *n, sp_tensor **row, uint64_t seq) {
    const sp_dataset *ds = n->ds;
    for (int k = 0; k < ds->nops; k++) {
        sp_tensor *in[MAXC], *out[MAXC];
        for (int j = 0; j < ds->nmc; j++) in[j] = row[ds->mcols[j]];
        sp_status st = sp_transform_apply(ds->ops[k], ds->nmc, in, out,
                                          data_mix(n->base_seed, (uint64_t)k), seq);
        if (st != SP_OK) {
            row_release(row, n->ncols);
            return st;
        }
        for (int j = 0; j < ds->nmc; j++) {
            sp_tensor_release(row[ds->mcols[j]]);
            row[ds->mcols[j]] = out[j];
        }
    }
    return SP_OK;
}

/* Releases what a chunk still holds and empties it (caller owns it). */
static void chunk_clear(dnode *n, chunk *c) {
    row_release(c->rows + (size_t)c->pos * (size_t)n->ncols, (c->k - c->pos) * n->ncols);
    free(c->tail.msg);
    memset(&c->tail, 0, sizeof c->tail);
    c->k = c->pos = c->ready = 0;
}

static void *map_worker(void *arg) {
    dnode *n = arg;
    int nc = n->ncols;
    pthread_mutex_lock(&n->mu);
    for (;;) {
        while (!n->stop &&
               (n->paused || n->pulling || n->up_done || n->next_chunk - n->out_chunk >= n->Q))
            pthread_cond_wait(&n->cv_work, &n->mu);
        if (n->stop) break;
        n->pulling = 1;
        n->busy++;
        chunk *c = &n->chunks[n->next_chunk++ % n->Q];
        uint64_t row0 = n->next_in;
        pthread_mutex_unlock(&n->mu);

        /* the pull turn: up to MAP_CHUNK rows, each numbered as the inline
         * path numbers them (the end takes a number too) */
        int k = 0, pulls = 0;
        while (k < MAP_CHUNK) {
            int e = 0;
            pulls++;
            sp_status st = node_next(n->up, c->rows + (size_t)k * (size_t)nc, &e);
            if (st != SP_OK) {
                slot_set_error(&c->tail, st);
                break;
            }
            if (e) {
                c->tail.state = SL_END;
                break;
            }
            k++;
        }
        pthread_mutex_lock(&n->mu);
        n->pulling = 0;
        n->next_in = row0 + (uint64_t)pulls;
        if (c->tail.state != SL_EMPTY) n->up_done = 1;
        pthread_cond_broadcast(&n->cv_work); /* the pull turn is free */
        pthread_mutex_unlock(&n->mu);

        for (int i = 0; i < k; i++) {
            sp_status st = map_apply(n, c->rows + (size_t)i * (size_t)nc, row0 + (uint64_t)i);
            if (st != SP_OK) { /* the rows before it stand; the error follows them */
                row_release(c->rows + (size_t)(i + 1) * (size_t)nc, (k - i - 1) * nc);
                free(c->tail.msg);
                memset(&c->tail, 0, sizeof c->tail);
                slot_set_error(&c->tail, st);
                k = i;
                break;
            }
        }

        pthread_mutex_lock(&n->mu);
        c->k = k;
        c->pos = 0;
        c->ready = 1;
        n->busy--;
        pthread_cond_broadcast(&n->cv_ready);
    }
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

static sp_status map_next(dnode *n, sp_tensor **row, int *end) {
    int nc = n->ncols;
    if (n->nw == 0) { /* inline, with the same numbering as the workers */
        uint64_t seq = n->next_in++;
        sp_status st = node_next(n->up, row, end);
        if (st != SP_OK || *end) return st;
        return map_apply(n, row, seq);
    }
    for (;;) {
        chunk *c = n->cur;
        if (c) { /* the consumer owns a ready chunk: no lock per row */
            if (c->pos < c->k) {
                sp_tensor **r = c->rows + (size_t)c->pos * (size_t)nc;
                memcpy(row, r, (size_t)nc * sizeof *row);
                memset(r, 0, (size_t)nc * sizeof *r);
                c->pos++;
                return SP_OK;
            }
            slot tail = c->tail;
            memset(&c->tail, 0, sizeof c->tail);
            pthread_mutex_lock(&n->mu);
            chunk_clear(n, c);
            n->out_chunk++;
            n->cur = NULL;
            pthread_cond_broadcast(&n->cv_work);
            pthread_mutex_unlock(&n->mu);
            if (tail.state == SL_END) {
                *end = 1;
                return SP_OK;
            }
            if (tail.state == SL_ERR) {
                sp_status st = slot_raise(&tail);
                free(tail.msg);
                return st;
            }
            continue;
        }
        pthread_mutex_lock(&n->mu);
        c = &n->chunks[n->out_chunk % n->Q];
        while (!c->ready && !n->stop) pthread_cond_wait(&n->cv_ready, &n->mu);
        int ready = c->ready;
        if (ready) n->cur = c;
        pthread_mutex_unlock(&n->mu);
        if (!ready) return sp_error(SP_ERR_RUNTIME, "dataset iterator: stopped");
    }
}

static sp_status map_reset(dnode *n, uint64_t epoch) {
    if (n->nw == 0 || !n->nth) return node_reset(n->up, epoch);
    pthread_mutex_lock(&n->mu);
    n->paused = 1;
    while (n->pulling || n->busy) pthread_cond_wait(&n->cv_ready, &n->mu);
    for (uint64_t q = 0; q < n->Q; q++) chunk_clear(n, &n->chunks[q]);
    n->out_chunk = n->next_chunk;
    n->cur = NULL;
    pthread_mutex_unlock(&n->mu);
    sp_status st = node_reset(n->up, epoch);
    pthread_mutex_lock(&n->mu);
    n->up_done = st != SP_OK; /* a failed upstream is not pulled again */
    n->paused = 0;
    pthread_cond_broadcast(&n->cv_work);
    pthread_mutex_unlock(&n->mu);
    return st;
}

/* ---- dispatch ---- */

static sp_status node_next(dnode *n, sp_tensor **row, int *end) {
    *end = 0;
    if (n->at_end) {
        *end = 1;
        return SP_OK;
    }
    sp_status st;
    switch (n->ds->kind) {
    case DS_TENSORS: st = tensors_next(n, row, end); break;
    case DS_PULL: st = pull_next(n, row, end); break;
    case DS_MAP: st = map_next(n, row, end); break;
    case DS_SHUFFLE: st = shuffle_next(n, row, end); break;
    case DS_BATCH: st = batch_next(n, row, end); break;
    case DS_REPEAT: st = repeat_next(n, row, end); break;
    default: st = sp_error(SP_ERR_INTERNAL, "dataset: unknown node kind");
    }
    if (st == SP_OK && *end) n->at_end = 1;
    return st;
}

static sp_status node_reset(dnode *n, uint64_t epoch) {
    sp_status st;
    switch (n->ds->kind) {
    case DS_TENSORS: n->pos = 0; st = SP_OK; break;
    case DS_PULL: st = pull_reset(n, epoch); break;
    case DS_MAP: st = map_reset(n, epoch); break;
    case DS_SHUFFLE: st = shuffle_reset(n, epoch); break;
    case DS_BATCH: st = node_reset(n->up, epoch); break;
    case DS_REPEAT: st = repeat_reset(n, epoch); break;
    default: st = sp_error(SP_ERR_INTERNAL, "dataset: unknown node kind");
    }
    n->at_end = 0;
    n->started = 1;
    return st;
}

/* ---- the iterator ---- */

static void *iter_prefetch(void *arg) {
    sp_data_iter *it = arg;
    dnode *root = &it->nodes[0];
    int last = 0;
    while (!last) {
        slot s = {0};
        int e = 0;
        sp_status st = node_next(root, s.row, &e);
        if (st != SP_OK) slot_set_error(&s, st), last = 1;
        else if (e) s.state = SL_END, last = 1;
        else s.state = SL_ROW;
        pthread_mutex_lock(&it->mu);
        while (it->qcount == it->prefetch && !it->stop) pthread_cond_wait(&it->cv_put, &it->mu);
        if (it->stop) {
            pthread_mutex_unlock(&it->mu);
            row_release(s.row, it->ncols);
            free(s.msg);
            break;
        }
        it->q[(it->qhead + it->qcount) % it->prefetch] = s;
        it->qcount++;
        pthread_cond_signal(&it->cv_get);
        pthread_mutex_unlock(&it->mu);
    }
    return NULL;
}

static void iter_stop_all(sp_data_iter *it) {
    if (it->sync_ok) {
        pthread_mutex_lock(&it->mu);
        it->stop = 1;
        pthread_cond_broadcast(&it->cv_put);
        pthread_cond_broadcast(&it->cv_get);
        pthread_mutex_unlock(&it->mu);
    }
    for (int i = 0; it->nodes && i < it->nn; i++) {
        dnode *n = &it->nodes[i];
        if (!n->sync_ok) continue;
        pthread_mutex_lock(&n->mu);
        n->stop = 1;
        pthread_cond_broadcast(&n->cv_work);
        pthread_cond_broadcast(&n->cv_ready);
        pthread_mutex_unlock(&n->mu);
    }
    if (it->th_started) pthread_join(it->th, NULL);
    it->th_started = 0;
    for (int i = 0; it->nodes && i < it->nn; i++) {
        dnode *n = &it->nodes[i];
        for (int w = 0; w < n->nth; w++) pthread_join(n->th[w], NULL);
        n->nth = 0;
    }
}

void sp_data_iter_free(sp_data_iter *it) {
    if (!it) return;
    iter_stop_all(it);
    for (int i = 0; it->nodes && i < it->nn; i++) {
        dnode *n = &it->nodes[i];
        row_release(n->buf, (int)(n->count * n->ncols));
        free(n->buf);
        free(n->rows);
        for (uint64_t q = 0; n->chunks && q < n->Q; q++) {
            if (n->chunks[q].rows) chunk_clear(n, &n->chunks[q]);
            free(n->chunks[q].rows);
        }
        free(n->chunks);
        free(n->th);
        if (n->sync_ok) {
            pthread_mutex_destroy(&n->mu);
            pthread_cond_destroy(&n->cv_work);
            pthread_cond_destroy(&n->cv_ready);
        }
    }
    for (int i = 0; it->q && i < it->qcount; i++) {
        slot *s = &it->q[(it->qhead + i) % it->prefetch];
        row_release(s->row, it->ncols);
        free(s->msg);
    }
    free(it->q);
    free(it->final.msg);
    if (it->sync_ok) {
        pthread_mutex_destroy(&it->mu);
        pthread_cond_destroy(&it->cv_put);
        pthread_cond_destroy(&it->cv_get);
    }
    free(it->nodes);
    sp_dataset_release(it->ds);
    free(it);
}

static int iter_sync_init(pthread_mutex_t *mu, pthread_cond_t *a, pthread_cond_t *b) {
    if (pthread_mutex_init(mu, NULL)) return 0;
    if (pthread_cond_init(a, NULL)) {
        pthread_mutex_destroy(mu);
        return 0;
    }
    if (pthread_cond_init(b, NULL)) {
        pthread_cond_destroy(a);
        pthread_mutex_destroy(mu);
        return 0;
    }
    return 1;
}

sp_data_iter *sp_data_iter_new(sp_dataset *ds, int num_workers, int prefetch, uint64_t epoch) {
    if (!ds || num_workers < 0 || num_workers > 256 || prefetch < 0 || prefetch > (1 << 20)) {
        sp_error(SP_ERR_ARG, "data_iter_new: need a dataset, 0 to 256 workers and a prefetch of 0 "
                             "to 2^20 rows (got %d workers, prefetch %d)",
                 num_workers, prefetch);
        return NULL;
    }
    sp_data_iter *it = calloc(1, sizeof *it);
    if (!it) goto nomem;
    sp_dataset_retain(ds);
    it->ds = ds;
    it->ncols = ds->ncols;
    it->prefetch = prefetch;
    for (const sp_dataset *d = ds; d; d = d->up) it->nn++;
    it->nodes = calloc((size_t)it->nn, sizeof *it->nodes);
    if (!it->nodes) goto nomem;
    int i = 0;
    for (const sp_dataset *d = ds; d; d = d->up, i++) {
        dnode *n = &it->nodes[i];
        n->ds = d;
        n->up = d->up ? &it->nodes[i + 1] : NULL;
        n->ncols = d->ncols;
        if (d->kind == DS_MAP) {
            n->base_seed = data_mix(d->seed, epoch);
            n->nw = num_workers;
            if (num_workers) {
                n->Q = 2 * (uint64_t)num_workers;
                n->chunks = calloc(n->Q, sizeof *n->chunks);
                n->th = calloc((size_t)num_workers, sizeof *n->th);
                if (!n->chunks || !n->th) goto nomem;
                for (uint64_t q = 0; q < n->Q; q++) {
                    n->chunks[q].rows = calloc((size_t)MAP_CHUNK * (size_t)n->ncols,
                                               sizeof *n->chunks[q].rows);
                    if (!n->chunks[q].rows) goto nomem;
                }
                if (!(n->sync_ok = iter_sync_init(&n->mu, &n->cv_work, &n->cv_ready))) goto nothread;
            }
        }
    }
    if (prefetch) {
        it->q = calloc((size_t)prefetch, sizeof *it->q);
        if (!it->q) goto nomem;
        if (!(it->sync_ok = iter_sync_init(&it->mu, &it->cv_put, &it->cv_get))) goto nothread;
    }
    /* the first pass starts here: sources rewind, shuffles take their key */
    if (node_reset(&it->nodes[0], epoch) != SP_OK) goto fail;
    for (i = it->nn - 1; i >= 0; i--) {
        dnode *n = &it->nodes[i];
        for (int w = 0; w < n->nw; w++) {
            if (pthread_create(&n->th[w], NULL, map_worker, n)) goto nothread;
            n->nth++;
        }
    }
    if (prefetch) {
        if (pthread_create(&it->th, NULL, iter_prefetch, it)) goto nothread;
        it->th_started = 1;
    }
    return it;
nothread:
    sp_error(SP_ERR_RUNTIME, "data_iter_new: cannot start threads");
    goto fail;
nomem:
    sp_error(SP_ERR_NOMEM, "data_iter_new: out of memory");
fail:
    if (it) {
        sp_status st = sp_last_status();
        char *msg = strdup(sp_last_error());
        sp_data_iter_free(it);
        sp_error(st, "%s", msg ? msg : "data_iter_new failed");
        free(msg);
    }
    return NULL;
}

sp_status sp_data_iter_next(sp_data_iter *it, sp_tensor **row, int *end) {
    if (!it || !row || !end) return sp_error(SP_ERR_ARG, "data_iter_next: NULL argument");
    *end = 0;
    for (int c = 0; c < it->ncols; c++) row[c] = NULL;
    if (it->final.state == SL_END) {
        *end = 1;
        return SP_OK;
    }
    if (it->final.state == SL_ERR) return slot_raise(&it->final);
    slot s = {0};
    if (!it->prefetch) {
        sp_status st = node_next(&it->nodes[0], s.row, end);
        if (st != SP_OK) {
            slot_set_error(&it->final, st);
            return slot_raise(&it->final);
        }
        if (*end) it->final.state = SL_END;
        else memcpy(row, s.row, (size_t)it->ncols * sizeof *row);
        return SP_OK;
    }
    pthread_mutex_lock(&it->mu);
    while (it->qcount == 0) pthread_cond_wait(&it->cv_get, &it->mu);
    s = it->q[it->qhead];
    memset(&it->q[it->qhead], 0, sizeof s);
    it->qhead = (it->qhead + 1) % it->prefetch;
    it->qcount--;
    pthread_cond_signal(&it->cv_put);
    pthread_mutex_unlock(&it->mu);
    if (s.state == SL_ROW) {
        memcpy(row, s.row, (size_t)it->ncols * sizeof *row);
        return SP_OK;
    }
    it->final = s;
    if (s.state == SL_END) {
        *end = 1;
        return SP_OK;
    }
    return slot_raise(&it->final);
}
