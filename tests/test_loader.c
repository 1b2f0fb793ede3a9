/*
 * test_loader.c - the engine's prefetching batch loader (include/mytorch/data.h)
 * on a synthetic dataset whose items are known in closed form: item i has
 *
 *   "x"  variable [T_i, 3] f32, T_i = (7 i) mod 11 (some items are empty),
 *        x[t][f] = 100 i + 10 t + f
 *   "y"  variable [L_i] i64, L_i = i mod 5 + 1, y[t] = i + t, padded with -1
 *   "id" fixed, one i32 per item: i
 *   "w"  fixed [2] f32: (i, -i)
 *
 * Checks: the padded collate against a naive reference built from the
 * formulas; the order is the same whatever the prefetch depth and a start at
 * batch k gives the uninterrupted run's tail; every item comes exactly once
 * per epoch, also with bucketing; buckets and sorted batches are ordered by
 * length; a dataset's error reaches the consumer with its message; freeing
 * mid-epoch, with batches in flight and grown buffers, leaks nothing (the
 * ASan build runs these too); bad datasets and options are refused.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FX = 3, X = 0, Y = 1, ID = 2, W = 3 };

typedef struct toy {
    int64_t n;
    int64_t fail_item;      /* get fails on this item (-1: never) */
    bool fail_silently;     /* ... without a message */
} toy;

static int64_t x_len(int64_t i) { return (7 * i) % 11; }
static int64_t y_len(int64_t i) { return i % 5 + 1; }

static int64_t toy_length(void *ctx, int64_t item, int field)
{
    (void)ctx;
    return field == X ? x_len(item) : y_len(item);
}

static mt_status toy_get(void *ctx, int64_t i, const mt_data_pos *pos, void *const *dst)
{
    const toy *t = ctx;
    (void)pos;
    if (i == t->fail_item) {
        if (t->fail_silently) return MT_ERR_STATE;
        return mt_set_error(MT_ERR_FORMAT, "toy: item %lld is corrupt", (long long)i);
    }
    float *x = dst[X];
    for (int64_t s = 0; s < x_len(i); s++)
        for (int f = 0; f < FX; f++) x[s * FX + f] = (float)(100 * i + 10 * s + f);
    int64_t *y = dst[Y];
    for (int64_t s = 0; s < y_len(i); s++) y[s] = i + s;
    *(int32_t *)dst[ID] = (int32_t)i;
    float *w = dst[W];
    w[0] = (float)i;
    w[1] = (float)-i;
    return MT_OK;
}

static mt_dataset toy_dataset(toy *t)
{
    return (mt_dataset){
        .n = t->n, .n_fields = 4, .ctx = t, .get = toy_get, .length = toy_length,
        .fields = {
            { .name = "x", .dtype = MT_F32, .ndim = 2, .shape = { 0, FX }, .variable = true },
            { .name = "y", .dtype = MT_I64, .ndim = 1, .variable = true, .pad = -1 },
            { .name = "id", .dtype = MT_I32, .ndim = 0 },
            { .name = "w", .dtype = MT_F32, .ndim = 1, .shape = { 2 } },
        },
    };
}

/* The naive collate of one batch from its items: every field padded to the
   batch's longest row, compared element by element with what the loader made. */
static void check_batch_against_reference(const mt_batch *b)
{
    cr_assert_eq(b->n_fields, 4);
    const int64_t n = b->size;
    int64_t tx = 0, ty = 0;
    for (int64_t r = 0; r < n; r++) {
        if (x_len(b->items[r]) > tx) tx = x_len(b->items[r]);
        if (y_len(b->items[r]) > ty) ty = y_len(b->items[r]);
    }
    const mt_batch_field *fx = &b->fields[X], *fy = &b->fields[Y], *fid = &b->fields[ID], *fw = &b->fields[W];
    cr_assert(fx->dtype == MT_F32 && fx->ndim == 3 && fx->shape[0] == n && fx->shape[1] == tx && fx->shape[2] == FX,
              "x is [%lld, %lld, %lld]", (long long)fx->shape[0], (long long)fx->shape[1], (long long)fx->shape[2]);
    cr_assert(fy->dtype == MT_I64 && fy->ndim == 2 && fy->shape[0] == n && fy->shape[1] == ty);
    cr_assert(fid->dtype == MT_I32 && fid->ndim == 1 && fid->shape[0] == n && !fid->lengths);
    cr_assert(fw->ndim == 2 && fw->shape[1] == 2 && !fw->lengths);
    const float *x = fx->data, *w = fw->data;
    const int64_t *y = fy->data;
    const int32_t *id = fid->data;
    for (int64_t r = 0; r < n; r++) {
        const int64_t i = b->items[r];
        cr_assert_eq(fx->lengths[r], x_len(i));
        cr_assert_eq(fy->lengths[r], y_len(i));
        for (int64_t s = 0; s < tx; s++)
            for (int f = 0; f < FX; f++) {
                float want = s < x_len(i) ? (float)(100 * i + 10 * s + f) : 0.0f;
                cr_assert_eq(x[(r * tx + s) * FX + f], want, "x of row %lld (item %lld), step %lld, f %d", (long long)r,
                             (long long)i, (long long)s, f);
            }
        for (int64_t s = 0; s < ty; s++)
            cr_assert_eq(y[r * ty + s], s < y_len(i) ? i + s : -1, "y of row %lld, step %lld", (long long)r, (long long)s);
        cr_assert_eq(id[r], (int32_t)i);
        cr_assert(w[2 * r] == (float)i && w[2 * r + 1] == (float)-i);
    }
}

/* One epoch's items in batch order, and each batch's size. */
typedef struct epoch_log {
    int64_t n_batches, rows;
    int64_t items[512], sizes[512];
} epoch_log;

static epoch_log run_epoch(const mt_dataset *ds, mt_loader_opts o, int64_t epoch, int64_t first_batch)
{
    mt_loader *L = mt_loader_new(ds, &o);
    cr_assert_not_null(L, "%s", mt_last_error());
    epoch_log log = { 0 };
    cr_assert_eq(mt_loader_start(L, epoch, first_batch), MT_OK, "%s", mt_last_error());
    mt_batch b;
    while (mt_loader_next(L, &b)) {
        cr_assert_eq(b.index, first_batch + log.n_batches, "batches come in order");
        cr_assert_eq(b.epoch, epoch);
        cr_assert(b.size >= 1 && b.size <= o.batch_size);
        check_batch_against_reference(&b);
        cr_assert(log.rows + b.size <= 512);
        memcpy(log.items + log.rows, b.items, (size_t)b.size * sizeof *b.items);
        log.sizes[log.n_batches++] = b.size;
        log.rows += b.size;
    }
    cr_assert(!mt_loader_failed(L), "%s", mt_last_error());
    cr_assert_eq(first_batch + log.n_batches, mt_loader_batches(L));
    mt_loader_free(L);
    return log;
}

static void expect_each_item_once(const epoch_log *l, int64_t n, const char *what)
{
    int seen[512] = { 0 };
    cr_assert_eq(l->rows, n, "%s: %lld rows for %lld items", what, (long long)l->rows, (long long)n);
    for (int64_t r = 0; r < l->rows; r++) {
        cr_assert(l->items[r] >= 0 && l->items[r] < n);
        seen[l->items[r]]++;
    }
    for (int64_t i = 0; i < n; i++) cr_assert_eq(seen[i], 1, "%s: item %lld seen %d times", what, (long long)i, seen[i]);
}

Test(loader, padded_collate_matches_a_naive_reference, .init = mt_test_setup, .fini = mt_test_teardown)
{
    toy t = { .n = 53, .fail_item = -1 };
    mt_dataset ds = toy_dataset(&t);
    for (int pf = -1; pf <= 2; pf++) {
        epoch_log l = run_epoch(&ds, (mt_loader_opts){ .batch_size = 8, .prefetch = pf }, 0, 0);
        cr_assert_eq(l.n_batches, 7, "53 items in batches of 8: 6 full and 1 of 5");
        cr_assert_eq(l.sizes[6], 5);
        for (int64_t i = 0; i < 53; i++) cr_assert_eq(l.items[i], i, "no shuffle: item order");
    }
    /* drop_last; a batch of one; a batch of everything */
    cr_expect_eq(run_epoch(&ds, (mt_loader_opts){ .batch_size = 8, .drop_last = true }, 0, 0).rows, 48);
    cr_expect_eq(run_epoch(&ds, (mt_loader_opts){ .batch_size = 1, .shuffle = true, .seed = 3 }, 1, 0).n_batches, 53);
    cr_expect_eq(run_epoch(&ds, (mt_loader_opts){ .batch_size = 100 }, 0, 0).n_batches, 1);

    /* the batch as tensors: x [B, T, 3] and its lengths */
    mt_loader *L = mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 4, .prefetch = 1 });
    cr_assert_not_null(L);
    cr_assert_eq(mt_loader_start(L, 0, 2), MT_OK);
    mt_batch b;
    cr_assert(mt_loader_next(L, &b));
    mt_tensor *x = mt_batch_tensor(&b, X, mt_cpu()), *len = mt_batch_lengths(&b, X, mt_cpu());
    cr_assert(x && len, "%s", mt_last_error());
    cr_assert(x->ndim == 3 && x->shape[0] == 4 && x->shape[2] == FX);
    int64_t lens[4];
    cr_assert_eq(mt_to_data(len, MT_I64, lens), MT_OK);
    for (int r = 0; r < 4; r++) cr_expect_eq(lens[r], x_len(8 + r));
    cr_expect_null(mt_batch_lengths(&b, ID, mt_cpu()), "a fixed field has no lengths");
    cr_expect_null(mt_batch_tensor(&b, 4, mt_cpu()));
    mt_loader_free(L);
}

Test(loader, order_is_the_same_at_every_prefetch_depth_and_on_resume, .init = mt_test_setup, .fini = mt_test_teardown)
{
    toy t = { .n = 61, .fail_item = -1 };
    mt_dataset ds = toy_dataset(&t);
    const mt_loader_opts variants[] = {
        { .batch_size = 4, .shuffle = true, .seed = 7 },
        { .batch_size = 4, .shuffle = true, .seed = 7, .drop_last = true },
        { .batch_size = 5, .shuffle = true, .seed = 8, .bucket = 3 },
        { .batch_size = 6, .shuffle = true, .seed = 9, .sort = true },
        { .batch_size = 3, .bucket = 2, .drop_last = true },
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++)
        for (int64_t epoch = 0; epoch < 2; epoch++) {
            mt_loader_opts o = variants[v];
            o.prefetch = -1;   /* the reference: no thread, every batch made on demand */
            epoch_log ref = run_epoch(&ds, o, epoch, 0);
            const int depths[] = { -1, 0, 1, 2, 4, 100 };
            for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
                o.prefetch = depths[k];
                o.pinned = k % 2 == 1;
                const int64_t nb = ref.n_batches, firsts[] = { 0, 1, nb / 2, nb - 1, nb };
                for (size_t f = 0; f < sizeof firsts / sizeof firsts[0]; f++) {
                    epoch_log got = run_epoch(&ds, o, epoch, firsts[f]);
                    int64_t row0 = 0;
                    for (int64_t b = 0; b < firsts[f]; b++) row0 += ref.sizes[b];
                    cr_assert_eq(got.n_batches, nb - firsts[f]);
                    cr_assert_arr_eq(got.sizes, ref.sizes + firsts[f], (size_t)got.n_batches * sizeof *got.sizes,
                                     "variant %zu, epoch %lld, prefetch %d, first batch %lld", v, (long long)epoch, depths[k],
                                     (long long)firsts[f]);
                    cr_assert_arr_eq(got.items, ref.items + row0, (size_t)got.rows * sizeof *got.items,
                                     "variant %zu, epoch %lld, prefetch %d, first batch %lld", v, (long long)epoch, depths[k],
                                     (long long)firsts[f]);
                }
            }
        }
    /* (seed, epoch) fixes the order; another epoch or seed changes it */
    mt_loader_opts o = { .batch_size = 4, .shuffle = true, .seed = 7 };
    epoch_log e0 = run_epoch(&ds, o, 0, 0), e1 = run_epoch(&ds, o, 1, 0), again = run_epoch(&ds, o, 0, 0);
    o.seed = 70;
    epoch_log other = run_epoch(&ds, o, 0, 0);
    expect_each_item_once(&e0, 61, "epoch 0");
    expect_each_item_once(&e1, 61, "epoch 1");
    cr_expect_arr_eq(e0.items, again.items, 61 * sizeof *e0.items);
    int64_t same01 = 0, same_seed = 0;
    for (int i = 0; i < 61; i++) {
        same01 += e0.items[i] == e1.items[i];
        same_seed += e0.items[i] == other.items[i];
    }
    cr_expect(same01 < 10 && same_seed < 10, "positions shared: epochs %lld, seeds %lld", (long long)same01, (long long)same_seed);
}

Test(loader, bucketing_keeps_every_item_once_and_sorts_by_length, .init = mt_test_setup, .fini = mt_test_teardown)
{
    toy t = { .n = 97, .fail_item = -1 };
    mt_dataset ds = toy_dataset(&t);
    for (int64_t bucket = 1; bucket <= 4; bucket++)
        for (int64_t epoch = 0; epoch < 3; epoch++) {
            const int64_t B = 6;
            mt_loader_opts o = { .batch_size = B, .shuffle = true, .seed = 11, .bucket = bucket, .prefetch = 1 };
            epoch_log l = run_epoch(&ds, o, epoch, 0);
            expect_each_item_once(&l, 97, "bucketed");
            cr_assert_eq(l.n_batches, 17);
            /* rows of a batch by decreasing length; only the last bucket's last batch is partial */
            int64_t row = 0, partial = 0;
            for (int64_t b = 0; b < l.n_batches; b++) {
                for (int64_t r = 1; r < l.sizes[b]; r++)
                    cr_assert_geq(x_len(l.items[row + r - 1]), x_len(l.items[row + r]), "batch %lld is not sorted", (long long)b);
                partial += l.sizes[b] < B;
                row += l.sizes[b];
            }
            cr_assert_leq(partial, 1);
            /* with drop_last every batch is full and each item comes at most once */
            o.drop_last = true;
            epoch_log d = run_epoch(&ds, o, epoch, 0);
            cr_assert_eq(d.n_batches, 16);
            for (int64_t b = 0; b < d.n_batches; b++) cr_assert_eq(d.sizes[b], B);
            int seen[97] = { 0 };
            for (int64_t r = 0; r < d.rows; r++) cr_assert_eq(seen[d.items[r]]++, 0);
        }
    /* without shuffle a bucket's batches run from its longest items to its shortest */
    epoch_log l = run_epoch(&ds, (mt_loader_opts){ .batch_size = 5, .bucket = 20 }, 0, 0);
    expect_each_item_once(&l, 97, "one big bucket");
    for (int64_t r = 1; r < 97; r++) cr_assert_geq(x_len(l.items[r - 1]), x_len(l.items[r]));
    /* the batches' order is shuffled between buckets: the first batch is not always the longest */
    int firsts_longest = 0;
    for (int64_t epoch = 0; epoch < 8; epoch++) {
        epoch_log e = run_epoch(&ds, (mt_loader_opts){ .batch_size = 4, .bucket = 2, .shuffle = true, .seed = 5 }, epoch, 0);
        firsts_longest += x_len(e.items[0]) == 10;
    }
    cr_expect_lt(firsts_longest, 8, "every epoch started with a longest item");
}

/* An order of its own: the reverse, on odd epochs only */
static mt_status reverse_order(void *ctx, uint64_t seed, int64_t epoch, int64_t *perm)
{
    const toy *t = ctx;
    (void)seed;
    for (int64_t i = 0; i < t->n; i++) perm[i] = epoch % 2 ? t->n - 1 - i : i;
    if (epoch == 5) perm[0] = perm[1];   /* not a permutation */
    return MT_OK;
}

Test(loader, the_dataset_may_give_its_own_order, .init = mt_test_setup, .fini = mt_test_teardown)
{
    toy t = { .n = 20, .fail_item = -1 };
    mt_dataset ds = toy_dataset(&t);
    ds.order = reverse_order;
    epoch_log l = run_epoch(&ds, (mt_loader_opts){ .batch_size = 3, .prefetch = 2 }, 1, 0);
    for (int64_t i = 0; i < 20; i++) cr_assert_eq(l.items[i], 19 - i);
    mt_loader *L = mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 3 });
    cr_assert_eq(mt_loader_start(L, 5, 0), MT_ERR_ARGUMENT);
    cr_expect(strstr(mt_last_error(), "not a permutation"), "%s", mt_last_error());
    mt_batch b;
    cr_expect(!mt_loader_next(L, &b));
    cr_assert_eq(mt_loader_start(L, 2, 0), MT_OK, "a good order after a bad one");
    cr_expect(mt_loader_next(L, &b) && b.items[0] == 0);
    mt_loader_free(L);
}

Test(loader, a_dataset_error_reaches_the_consumer_with_its_message, .init = mt_test_setup, .fini = mt_test_teardown)
{
    toy t = { .n = 30, .fail_item = 13 };
    mt_dataset ds = toy_dataset(&t);
    for (int pf = -1; pf <= 3; pf++) {
        mt_loader *L = mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 4, .prefetch = pf });
        cr_assert_not_null(L);
        mt_batch b;
        cr_expect(!mt_loader_next(L, &b), "no epoch started");
        cr_expect(mt_loader_failed(L));
        cr_expect(strstr(mt_last_error(), "start"), "%s", mt_last_error());
        mt_clear_error();
        cr_assert_eq(mt_loader_start(L, 0, 0), MT_OK);
        int got = 0;
        while (mt_loader_next(L, &b)) got++;
        cr_expect_eq(got, 3, "prefetch %d: batches 0-2 come, batch 3 holds item 13", pf);
        cr_expect(mt_loader_failed(L));
        cr_expect_eq(mt_last_status(), MT_ERR_FORMAT);
        cr_expect(strstr(mt_last_error(), "toy: item 13 is corrupt"), "prefetch %d: '%s'", pf, mt_last_error());
        cr_expect(strstr(mt_last_error(), "batch 3 of epoch 0"), "prefetch %d: '%s'", pf, mt_last_error());
        /* a new start clears it; the batches before the bad one are fine */
        cr_assert_eq(mt_loader_start(L, 0, 1), MT_OK);
        cr_expect(mt_loader_next(L, &b) && b.index == 1);
        cr_expect(!mt_loader_failed(L));
        mt_loader_free(L);
    }
    /* a status without a message still says what failed */
    t.fail_silently = true;
    mt_loader *L = mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 30, .prefetch = 1 });
    cr_assert_eq(mt_loader_start(L, 0, 0), MT_OK);
    mt_batch b;
    cr_expect(!mt_loader_next(L, &b));
    cr_expect_eq(mt_last_status(), MT_ERR_STATE);
    cr_expect(strstr(mt_last_error(), "without a message"), "%s", mt_last_error());
    mt_loader_free(L);
}

Test(loader, freeing_at_any_point_leaks_nothing, .init = mt_test_setup, .fini = mt_test_teardown)
{
    toy t = { .n = 200, .fail_item = -1 };
    mt_dataset ds = toy_dataset(&t);
    for (int pf = -1; pf <= 5; pf++)
        for (int taken = 0; taken <= 6; taken++) {
            mt_loader *L = mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 7, .shuffle = true, .seed = 1, .prefetch = pf,
                                                                 .pinned = taken % 2, .bucket = taken % 3 });
            cr_assert_not_null(L, "%s", mt_last_error());
            if (taken > 0) cr_assert_eq(mt_loader_start(L, taken, taken - 1), MT_OK);
            mt_batch b;
            for (int k = 1; k < taken; k++) cr_assert(mt_loader_next(L, &b));
            if (taken == 6) cr_assert_eq(mt_loader_start(L, 0, 0), MT_OK, "a restart with batches in flight");
            mt_loader_free(L);   /* mid-epoch, with the thread filling ahead */
        }
    mt_loader_free(NULL);
    /* an empty dataset: no batches, nothing to wait for */
    t.n = 0;
    ds = toy_dataset(&t);
    mt_loader *L = mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 4 });
    cr_assert_not_null(L, "%s", mt_last_error());
    cr_expect_eq(mt_loader_batches(L), 0);
    cr_assert_eq(mt_loader_start(L, 0, 0), MT_OK);
    mt_batch b;
    cr_expect(!mt_loader_next(L, &b));
    cr_expect(!mt_loader_failed(L));
    mt_loader_free(L);
}

Test(loader, bad_datasets_and_options_are_refused, .init = mt_test_setup, .fini = mt_test_teardown)
{
    toy t = { .n = 10, .fail_item = -1 };
    const mt_dataset good = toy_dataset(&t);
    mt_dataset ds = good;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 0 }));
    cr_expect(strstr(mt_last_error(), "batch_size"), "%s", mt_last_error());
    cr_expect_null(mt_loader_new(NULL, &(mt_loader_opts){ .batch_size = 1 }));
    cr_expect_null(mt_loader_new(&ds, NULL));
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2, .bucket = -1 }));
    ds.get = NULL;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2 }));
    cr_expect(strstr(mt_last_error(), "get"), "%s", mt_last_error());
    ds = good;
    ds.length = NULL;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2 }));
    cr_expect(strstr(mt_last_error(), "length"), "%s", mt_last_error());
    ds = good;
    ds.n_fields = 0;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2 }));
    ds = good;
    ds.fields[W].dtype = MT_DTYPE_COUNT;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2 }));
    cr_expect(strstr(mt_last_error(), "'w'"), "%s", mt_last_error());
    ds = good;
    ds.fields[W].shape[0] = -3;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2 }));
    ds = good;
    ds.n = -1;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2 }));
    /* bucketing needs a variable field */
    ds = good;
    ds.fields[X].variable = ds.fields[Y].variable = false;
    ds.fields[X].shape[0] = 2;
    cr_expect_null(mt_loader_new(&ds, &(mt_loader_opts){ .batch_size = 2, .sort = true }));
    cr_expect(strstr(mt_last_error(), "variable"), "%s", mt_last_error());
    /* start's arguments */
    mt_loader *L = mt_loader_new(&good, &(mt_loader_opts){ .batch_size = 4, .prefetch = 1 });
    cr_assert_not_null(L);
    cr_expect_eq(mt_loader_start(L, -1, 0), MT_ERR_ARGUMENT);
    cr_expect_eq(mt_loader_start(L, 0, 4), MT_ERR_ARGUMENT, "3 batches: 4 is past the end");
    cr_expect_eq(mt_loader_start(L, 0, 3), MT_OK, "the end itself: an empty epoch");
    mt_batch b;
    cr_expect(!mt_loader_next(L, &b));
    cr_expect(!mt_loader_failed(L));
    mt_loader_free(L);
}

Test(loader, hash_is_a_fixed_function, .init = mt_test_setup, .fini = mt_test_teardown)
{
    /* every shuffled run depends on these values (splitmix64's finaliser
       mix(x), mt_data_hash(k, v) = mix(k ^ mix(v)); mix(0) = 0xe220a8397b1dcdaf):
       a change here changes every order and mask */
    cr_expect_eq(mt_data_hash(0, 0), 0xa706dd2f4d197e6fULL);
    cr_expect_eq(mt_data_hash(42, 7), 0x6eab8625df268fbcULL);
    cr_expect_neq(mt_data_hash(1, 2), mt_data_hash(2, 1));
}
