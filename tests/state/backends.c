/*
 * One state-interface suite, run on both stores: the in-memory store alone
 * (its state kept as a snapshot byte string, as the conformance runner and
 * tools keep it) and the in-memory store checkpointed to a real
 * redis-server (dirty entries, deletions and meta in one MULTI/EXEC per
 * task, as `cep run --state redis://` does). Every case does the same
 * store operations, persists, opens a fresh store from what was persisted
 * and asserts exactly the same contents: entries, their expiry heap,
 * deletions, operator meta, unknown tables, corrupt records.
 */
#include "../support/redis_server.h"
#include "state/codec.h"
#include "state/redis.h"
#include "state/state.h"

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- an operator: a counter per key, and a scalar of its own --------------- */

typedef struct op {
    int64_t clock; /* the operator's scalar (its "stream time") */
} op_t;

static void free_data(void *ctx, cep_entry_t *e)
{
    (void)ctx;
    free(e->data);
    e->data = NULL;
}

static bool save(void *ctx, const cep_entry_t *e, cep_buf_t *out)
{
    (void)ctx;
    cep_codec_put_i64(out, *(int64_t *)e->data);
    return true;
}

static bool load(void *ctx, cep_entry_t *e, const char *p, size_t n)
{
    (void)ctx;
    cep_dec_t d = cep_codec_reader(p, n);
    int64_t v = cep_codec_get_i64(&d);
    if (!cep_codec_done(&d)) return false;
    int64_t *x = malloc(sizeof *x);
    *x = v;
    e->data = x;
    return true;
}

static void save_meta(void *ctx, cep_buf_t *out)
{
    cep_codec_put_i64(out, ((op_t *)ctx)->clock);
}

static bool load_meta(void *ctx, const char *p, size_t n)
{
    cep_dec_t d = cep_codec_reader(p, n);
    ((op_t *)ctx)->clock = cep_codec_get_i64(&d);
    return cep_codec_done(&d);
}

typedef struct world {
    cep_store_t *s;
    cep_table_t *t;
    op_t op;
} world_t;

static void world_open(world_t *w, uint64_t fp)
{
    w->s = cep_store_mem_new();
    cep_store_track(w->s, true);
    w->t = cep_store_table(w->s, fp, "counts", free_data, NULL);
    w->op.clock = 0;
    cep_table_codec_t c = {.save = save, .load = load, .save_meta = save_meta, .load_meta = load_meta, .ctx = &w->op};
    cep_table_set_codec(w->t, &c);
}

static uint64_t h(const char *k)
{
    return cep_hash_bytes(k, strlen(k), 0);
}

static void set(world_t *w, const char *k, int64_t v, int64_t expires)
{
    cep_entry_t *e = cep_table_upsert(w->t, k, strlen(k), h(k), NULL);
    cr_assert_not_null(e);
    if (!e->data) e->data = malloc(sizeof(int64_t));
    *(int64_t *)e->data = v;
    cep_table_set_expiry(w->t, e, expires);
}

static void drop(world_t *w, const char *k)
{
    cep_entry_t *e = cep_table_get(w->t, k, strlen(k), h(k));
    cr_assert_not_null(e);
    cep_table_remove(w->t, e);
}

/* ---- the two stores ------------------------------------------------------------ */

typedef struct backend {
    const char *name;
    bool redis;
    /* memory: the persisted snapshot */
    cep_buf_t snap;
    /* redis */
    cep_test_redis_t *server;
    cep_redis_t *r;
} backend_t;

static void backend_start(backend_t *b, bool redis)
{
    memset(b, 0, sizeof *b);
    b->redis = redis;
    b->name = redis ? "redis" : "memory";
    cep_buf_init(&b->snap);
    if (!redis) return;
    b->server = cep_test_redis_start(NULL);
    cr_assert_not_null(b->server);
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_connect(cep_test_redis_url(b->server), 5000, &b->r, &err), CEP_OK, "%s", err.msg);
}

static void backend_stop(backend_t *b)
{
    cep_buf_free(&b->snap);
    cep_redis_free(b->r);
    cep_test_redis_free(b->server);
}

/* Persist the store's changes; returns the entries written (puts). */
static uint64_t persist(backend_t *b, world_t *w)
{
    cep_ckpt_stats_t st = {0};
    cep_error_t err;
    cep_error_clear(&err);
    if (!b->redis) {
        cep_buf_reset(&b->snap);
        cr_assert_eq(cep_store_snapshot(w->s, &b->snap, &err), CEP_OK, "%s", err.msg);
        cep_store_checkpoint_done(w->s);
        return cep_store_size(w->s);
    }
    cep_redis_batch_t *batch = cep_redis_batch_new(7);
    cep_ckpt_sink_t sink = cep_redis_batch_sink(batch);
    cep_store_checkpoint(w->s, false, &sink, &st);
    cr_assert_eq(cep_redis_commit(b->r, "suite", &batch, 1, &err), CEP_OK, "%s", err.msg);
    cep_redis_batch_free(batch);
    cep_store_checkpoint_done(w->s);
    return st.puts;
}

typedef struct loading {
    world_t *w;
    size_t unknown;
    cep_error_t *err;
    bool failed;
} loading_t;

static bool l_state(void *ctx, const char *f, size_t fl, const char *v, size_t vl)
{
    loading_t *l = ctx;
    l->failed |= cep_store_restore_entry(l->w->s, f, fl, v, vl, &l->unknown, l->err) != CEP_OK;
    return !l->failed;
}

static bool l_meta(void *ctx, const char *f, size_t fl, const char *v, size_t vl)
{
    loading_t *l = ctx;
    l->failed |= cep_store_restore_meta(l->w->s, f, fl, v, vl, &l->unknown, l->err) != CEP_OK;
    return !l->failed;
}

/* A fresh store (operator fingerprint fp) from what was persisted. */
static cep_status_t reopen(backend_t *b, world_t *w, uint64_t fp, size_t *unknown, cep_error_t *err)
{
    world_open(w, fp);
    *unknown = 0;
    if (!b->redis) return cep_store_restore_snapshot(w->s, b->snap.data ? b->snap.data : "", b->snap.len, unknown, err);
    loading_t l = {w, 0, err, false};
    cep_redis_loader_t ld = {l_state, l_meta, NULL, &l};
    cep_status_t st = cep_redis_load(b->r, "suite", 7, &ld, err);
    *unknown = l.unknown;
    return st;
}

static void world_close(world_t *w)
{
    cep_store_free(w->s);
}

static int64_t value_of(world_t *w, const char *k, int64_t *expires)
{
    cep_entry_t *e = cep_table_get(w->t, k, strlen(k), h(k));
    cr_assert_not_null(e, "key %s restored", k);
    if (expires) *expires = e->expires;
    return *(int64_t *)e->data;
}

/* ---- the suite -------------------------------------------------------------------- */

static bool params[] = {false, true};

ParameterizedTestParameters(store, round_trip_of_entries_expiry_and_meta)
{
    return cr_make_param_array(bool, params, 2);
}

ParameterizedTest(bool *redis, store, round_trip_of_entries_expiry_and_meta, .timeout = 60)
{
    backend_t b;
    backend_start(&b, *redis);
    world_t w;
    world_open(&w, 0xabc);
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        set(&w, k, i * 3, i % 2 ? INT64_MAX : 1000 + i);
    }
    w.op.clock = 123456789;
    cr_assert_eq(persist(&b, &w), 1000, "%s: every new entry written", b.name);
    world_close(&w);
    size_t unknown;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(reopen(&b, &w, 0xabc, &unknown, &err), CEP_OK, "%s: %s", b.name, err.msg);
    cr_assert_eq(unknown, 0);
    cr_assert_eq(cep_table_size(w.t), 1000, "%s", b.name);
    cr_assert_eq(w.op.clock, 123456789, "%s: the operator's scalar", b.name);
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key-%d", i);
        int64_t exp;
        cr_assert_eq(value_of(&w, k, &exp), i * 3);
        cr_assert_eq(exp, i % 2 ? INT64_MAX : 1000 + i, "%s: expiry of %s", b.name, k);
    }
    /* the expiry heap works on restored entries: exactly the 250 with expiry < 1500 go */
    cr_assert_eq(cep_table_expire(w.t, 1500, 100000), 250, "%s", b.name);
    cr_assert_eq(cep_table_size(w.t), 750);
    world_close(&w);
    backend_stop(&b);
}

ParameterizedTestParameters(store, changes_deletions_and_recreations_persist)
{
    return cr_make_param_array(bool, params, 2);
}

ParameterizedTest(bool *redis, store, changes_deletions_and_recreations_persist, .timeout = 60)
{
    backend_t b;
    backend_start(&b, *redis);
    world_t w;
    world_open(&w, 0xdef);
    char k[32];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%d", i);
        set(&w, k, i, INT64_MAX);
    }
    persist(&b, &w);
    /* 100 removed, 100 changed, 50 new, 10 removed and made again */
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%d", i);
        drop(&w, k);
    }
    for (int i = 100; i < 200; i++) {
        snprintf(k, sizeof k, "k%d", i);
        set(&w, k, -i, 5000);
    }
    for (int i = 300; i < 350; i++) {
        snprintf(k, sizeof k, "k%d", i);
        set(&w, k, i, INT64_MAX);
    }
    for (int i = 200; i < 210; i++) {
        snprintf(k, sizeof k, "k%d", i);
        drop(&w, k);
        set(&w, k, 7 * i, INT64_MAX);
    }
    /* a new entry removed before any checkpoint saw it leaves no trace */
    set(&w, "ephemeral", 1, INT64_MAX);
    drop(&w, "ephemeral");
    uint64_t written = persist(&b, &w);
    /* Redis gets only what changed; the snapshot is the whole store */
    cr_assert_eq(written, *redis ? 160 : 250, "%s: %llu entries written", b.name, (unsigned long long)written);
    world_close(&w);
    size_t unknown;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(reopen(&b, &w, 0xdef, &unknown, &err), CEP_OK, "%s: %s", b.name, err.msg);
    cr_assert_eq(cep_table_size(w.t), 250, "%s", b.name);
    /* nothing changed since the restore: nothing to write (reads below mark
     * what they touch, as the operators' lookups precede a change) */
    if (*redis) cr_assert_eq(persist(&b, &w), 0, "a restored store is clean");
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%d", i);
        cr_assert_null(cep_table_get(w.t, k, strlen(k), h(k)), "%s: %s deleted", b.name, k);
    }
    cr_assert_null(cep_table_get(w.t, "ephemeral", 9, h("ephemeral")));
    for (int i = 100; i < 350; i++) {
        snprintf(k, sizeof k, "k%d", i);
        int64_t exp;
        int64_t want = i < 200 ? -i : i < 210 ? 7 * i : i;
        cr_assert_eq(value_of(&w, k, &exp), want, "%s: %s", b.name, k);
        cr_assert_eq(exp, i < 200 ? 5000 : INT64_MAX);
    }
    world_close(&w);
    backend_stop(&b);
}

ParameterizedTestParameters(store, records_of_unknown_rules_are_counted_corrupt_ones_refused)
{
    return cr_make_param_array(bool, params, 2);
}

ParameterizedTest(bool *redis, store, records_of_unknown_rules_are_counted_corrupt_ones_refused, .timeout = 60)
{
    backend_t b;
    backend_start(&b, *redis);
    world_t w;
    world_open(&w, 0x111);
    set(&w, "a", 1, INT64_MAX);
    set(&w, "b", 2, INT64_MAX);
    persist(&b, &w);
    world_close(&w);
    /* a store whose operator has another fingerprint: every record is unknown */
    size_t unknown;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(reopen(&b, &w, 0x222, &unknown, &err), CEP_OK, "%s: %s", b.name, err.msg);
    cr_assert_eq(unknown, 3, "%s: two entries and one meta record of another rule", b.name);
    cr_assert_eq(cep_table_size(w.t), 0);
    /* a record that does not decode is an error naming the rule */
    unsigned char id[9] = {0, 0, 0, 0, 0, 0, 0x02, 0x22, 'x'};
    const char junk[] = "\x02\xff";
    cep_error_clear(&err);
    cr_assert_eq(cep_store_restore_entry(w.s, id, sizeof id, junk, 2, NULL, &err), CEP_ERR_DECODE);
    cr_assert_str_eq(err.msg, "state of counts: a record does not decode");
    cr_assert_eq(cep_table_size(w.t), 0, "a corrupt record leaves no entry");
    world_close(&w);
    backend_stop(&b);
}

ParameterizedTestParameters(store, a_grafted_table_is_written_whole_by_the_next_checkpoint)
{
    return cr_make_param_array(bool, params, 2);
}

/* State gathered apart (a rule warmed from history, engine/bootstrap.h)
 * joins a live store: its entries and its operator's scalar move into the
 * empty table, and the next incremental checkpoint writes every one. */
ParameterizedTest(bool *redis, store, a_grafted_table_is_written_whole_by_the_next_checkpoint, .timeout = 60)
{
    backend_t b;
    backend_start(&b, *redis);
    world_t live, apart;
    world_open(&live, 0x333);
    set(&live, "x", 1, INT64_MAX);
    persist(&b, &live);
    drop(&live, "x"); /* the live table is empty again, with a deletion pending */
    world_open(&apart, 0x333);
    cep_store_track(apart.s, false); /* as the warming runtime keeps it */
    char k[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "w%d", i);
        set(&apart, k, 10 * i, 2000 + i);
    }
    apart.op.clock = 77;
    size_t moved = 0;
    cr_assert(cep_table_graft(live.t, apart.t, &moved));
    cr_assert_eq(moved, 200);
    cr_assert_eq(cep_table_size(apart.t), 0, "the entries moved, not copied");
    cr_assert_eq(live.op.clock, 77, "the operator's scalar came along");
    /* a table that has state of its own is not overwritten */
    world_t other;
    world_open(&other, 0x333);
    set(&other, "y", 5, INT64_MAX);
    cr_assert_not(cep_table_graft(live.t, other.t, &moved));
    cr_assert_eq(moved, 0);
    cr_assert_eq(cep_table_size(live.t), 200);
    cr_assert_eq(persist(&b, &live), 200, "%s: every grafted entry is written", b.name);
    world_close(&live);
    world_close(&apart);
    world_close(&other);
    size_t unknown;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(reopen(&b, &live, 0x333, &unknown, &err), CEP_OK, "%s: %s", b.name, err.msg);
    cr_assert_eq(cep_table_size(live.t), 200, "%s: the deleted x is gone, the grafted entries are there", b.name);
    cr_assert_eq(live.op.clock, 77);
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "w%d", i);
        int64_t exp;
        cr_assert_eq(value_of(&live, k, &exp), 10 * i);
        cr_assert_eq(exp, 2000 + i, "%s: expiry of %s", b.name, k);
    }
    /* the expiry heap came along too: the 100 with expiry < 2100 go */
    cr_assert_eq(cep_table_expire(live.t, 2100, 100000), 100);
    world_close(&live);
    backend_stop(&b);
}
