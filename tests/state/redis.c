/*
 * redis.c — checkpoints in a real redis-server (tests/support): what a
 * commit writes loads back byte for byte (NUL bytes, empty fields and
 * values, a 1 MB value), deletions and full replaces, the key layout with
 * its hash tag, one transaction per task that Redis applies wholly or not
 * at all, HSCAN streaming of 200k fields, exact connection and URL errors,
 * and reconnects across server restarts and a hung server.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/redis.h"
#include "tests/support/redis_server.h"

#define TIMEOUT_MS 5000
/* One timeout for every test: with --jobs 2, criterion 2.4.1's sandbox
 * (boxfort) loses a timeout record when tests with different timeouts
 * overlap, which LeakSanitizer then reports in the ASan build. */
#define TEST_TIMEOUT_S 300

/* The server of the running test; stopped by teardown even when an
 * assertion fails half-way. */
static cep_test_redis_t *srv;

static void teardown(void)
{
    cep_test_redis_free(srv);
    srv = NULL;
}

static void start(const char *password)
{
    srv = cep_test_redis_start(password);
    cr_assert_not_null(srv, "redis-server did not start");
}

static cep_redis_t *connect_ok(const char *url)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_redis_t *r = NULL;
    cr_assert_eq(cep_redis_connect(url, TIMEOUT_MS, &r, &err), CEP_OK, "%s", err.msg);
    cr_assert_not_null(r);
    return r;
}

/* The message of a connect that must fail with code. */
static const char *connect_fails(const char *url, int timeout_ms, cep_status_t code)
{
    static cep_error_t err;
    static char not_null;
    cep_error_clear(&err);
    cep_redis_t *r = (cep_redis_t *)&not_null; /* connect must set it to NULL */
    cr_assert_eq(cep_redis_connect(url, timeout_ms, &r, &err), code, "%s", err.msg);
    cr_assert_null(r);
    return err.msg;
}

static void commit_ok(cep_redis_t *r, const char *ns, cep_redis_batch_t *const *b, size_t n)
{
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_commit(r, ns, b, n, &err), CEP_OK, "%s", err.msg);
}

static void put_str(cep_redis_batch_t *b, const char *f, const char *v)
{
    cep_redis_batch_put(b, f, strlen(f), v, strlen(v));
}

static redisReply *raw_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(rep, "raw command failed: %s", c->errstr);
    return rep;
}

/* ---- what a load delivers ---------------------------------------------------- */

typedef struct kv {
    char *f, *v;
    size_t flen, vlen;
} kv_t;

typedef struct kvs {
    kv_t *items;
    size_t n, cap;
} kvs_t;

typedef struct loaded {
    kvs_t state, meta, offsets; /* offsets: topic -> decimal text */
} loaded_t;

static void kvs_add(kvs_t *l, const void *f, size_t flen, const void *v, size_t vlen)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        cr_assert_not_null(l->items);
    }
    kv_t *e = &l->items[l->n++];
    e->f = malloc(flen + 1);
    e->v = malloc(vlen + 1);
    cr_assert(e->f && e->v);
    memcpy(e->f, f, flen);
    memcpy(e->v, v, vlen);
    e->flen = flen;
    e->vlen = vlen;
}

static void kvs_free(kvs_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].f);
        free(l->items[i].v);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

static void loaded_free(loaded_t *x)
{
    kvs_free(&x->state);
    kvs_free(&x->meta);
    kvs_free(&x->offsets);
}

static bool on_state(void *ctx, const char *f, size_t flen, const char *v, size_t vlen)
{
    kvs_add(&((loaded_t *)ctx)->state, f, flen, v, vlen);
    return true;
}

static bool on_meta(void *ctx, const char *f, size_t flen, const char *v, size_t vlen)
{
    kvs_add(&((loaded_t *)ctx)->meta, f, flen, v, vlen);
    return true;
}

static bool on_offset(void *ctx, const char *topic, int64_t next)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)next);
    kvs_add(&((loaded_t *)ctx)->offsets, topic, strlen(topic), num, (size_t)n);
    return true;
}

static void load_ok(cep_redis_t *r, const char *ns, int32_t task, loaded_t *out)
{
    memset(out, 0, sizeof *out);
    cep_redis_loader_t l = {on_state, on_meta, on_offset, out};
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_load(r, ns, task, &l, &err), CEP_OK, "%s", err.msg);
}

/* l holds field f exactly once, with value v. */
static void expect(const kvs_t *l, const void *f, size_t flen, const void *v, size_t vlen)
{
    const kv_t *hit = NULL;
    for (size_t i = 0; i < l->n; i++) {
        if (l->items[i].flen != flen || memcmp(l->items[i].f, f, flen) != 0) continue;
        cr_assert_null(hit, "field '%.*s' delivered twice", (int)flen, (const char *)f);
        hit = &l->items[i];
    }
    cr_assert_not_null(hit, "field '%.*s' missing", (int)flen, (const char *)f);
    cr_assert_eq(hit->vlen, vlen, "field '%.*s': %zu bytes, want %zu", (int)flen, (const char *)f,
                 hit->vlen, vlen);
    cr_assert(vlen == 0 || memcmp(hit->v, v, vlen) == 0, "field '%.*s': wrong value", (int)flen,
              (const char *)f);
}

#define EXPECT_STR(l, f, v) expect((l), (f), strlen(f), (v), strlen(v))

/* ---- what a commit writes ------------------------------------------------------ */

Test(redis, two_tasks_commit_in_one_round_trip_and_load_back_exactly, .fini = teardown,
     .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));

    size_t big_len = (size_t)1 << 20;
    char *big = malloc(big_len);
    cr_assert_not_null(big);
    for (size_t i = 0; i < big_len; i++) big[i] = (char)(i * 31 + 7);

    cep_redis_batch_t *b0 = cep_redis_batch_new(0), *b1 = cep_redis_batch_new(1);
    cep_redis_batch_put(b0, "a\0b", 3, "v\0\x01", 3);
    cep_redis_batch_put(b0, "empty", 5, "", 0);
    cep_redis_batch_put(b0, "", 0, "empty field", 11);
    cep_redis_batch_put(b0, "big", 3, big, big_len);
    cep_redis_batch_del(b0, "never\0there", 11);
    cep_redis_batch_meta(b0, "rule\0fp", 7, "\x00\xffmeta", 6);
    cep_redis_batch_offset(b0, "events", 1234);
    cep_redis_batch_offset(b0, "other", 0);
    put_str(b1, "k1", "v1");
    put_str(b1, "k2", "v2");
    cep_redis_batch_meta(b1, "m", 1, "x", 1);
    cep_redis_batch_offset(b1, "events", INT64_MAX);
    cr_assert_eq(cep_redis_batch_task(b1), 1);
    cr_assert_gt(cep_redis_batch_size(b0), big_len);

    cep_redis_stats_t before = *cep_redis_stats(r);
    cep_redis_batch_t *batches[] = {b0, b1};
    commit_ok(r, "cep:t", batches, 2);
    const cep_redis_stats_t *after = cep_redis_stats(r);
    cr_assert_eq(after->round_trips - before.round_trips, 1);
    /* task 0: MULTI, HSET state, HDEL state, HSET meta, HSET offsets, EXEC;
     * task 1: the same without HDEL */
    cr_assert_eq(after->commands - before.commands, 11);
    cr_assert_gt(after->bytes_out - before.bytes_out, big_len);

    loaded_t x;
    load_ok(r, "cep:t", 0, &x);
    cr_assert_eq(x.state.n, 4);
    expect(&x.state, "a\0b", 3, "v\0\x01", 3);
    expect(&x.state, "empty", 5, "", 0);
    expect(&x.state, "", 0, "empty field", 11);
    expect(&x.state, "big", 3, big, big_len);
    cr_assert_eq(x.meta.n, 1);
    expect(&x.meta, "rule\0fp", 7, "\x00\xffmeta", 6);
    cr_assert_eq(x.offsets.n, 2);
    EXPECT_STR(&x.offsets, "events", "1234");
    EXPECT_STR(&x.offsets, "other", "0");
    loaded_free(&x);

    load_ok(r, "cep:t", 1, &x);
    cr_assert_eq(x.state.n, 2);
    EXPECT_STR(&x.state, "k1", "v1");
    EXPECT_STR(&x.state, "k2", "v2");
    cr_assert_eq(x.meta.n, 1);
    EXPECT_STR(&x.meta, "m", "x");
    cr_assert_eq(x.offsets.n, 1);
    EXPECT_STR(&x.offsets, "events", "9223372036854775807");
    loaded_free(&x);

    /* a task without checkpoint, and another namespace, load nothing */
    load_ok(r, "cep:t", 2, &x);
    cr_assert_eq(x.state.n + x.meta.n + x.offsets.n, 0);
    load_ok(r, "cep:other", 0, &x);
    cr_assert_eq(x.state.n + x.meta.n + x.offsets.n, 0);

    /* the batches were not consumed: committing them again is a no-op */
    commit_ok(r, "cep:t", batches, 2);
    load_ok(r, "cep:t", 0, &x);
    cr_assert_eq(x.state.n, 4);
    expect(&x.state, "big", 3, big, big_len);
    loaded_free(&x);

    cep_redis_batch_free(b0);
    cep_redis_batch_free(b1);
    free(big);
    cep_redis_free(r);
}

Test(redis, deletions_apply_in_call_order, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b = cep_redis_batch_new(0);
    put_str(b, "a", "1");
    put_str(b, "b", "2");
    put_str(b, "c", "3");
    commit_ok(r, "cep:t", &b, 1);

    cep_redis_batch_reset(b);
    cr_assert_eq(cep_redis_batch_size(b), 0);
    cep_redis_batch_del(b, "b", 1);
    put_str(b, "c", "3 again");
    cep_redis_batch_del(b, "x", 1);
    put_str(b, "x", "back");  /* del then put: present */
    put_str(b, "y", "gone");
    cep_redis_batch_del(b, "y", 1); /* put then del: absent */
    commit_ok(r, "cep:t", &b, 1);

    loaded_t x;
    load_ok(r, "cep:t", 0, &x);
    cr_assert_eq(x.state.n, 3);
    EXPECT_STR(&x.state, "a", "1");
    EXPECT_STR(&x.state, "c", "3 again");
    EXPECT_STR(&x.state, "x", "back");
    loaded_free(&x);
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

Test(redis, replace_all_wipes_the_old_checkpoint, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b = cep_redis_batch_new(4);
    put_str(b, "a", "1");
    put_str(b, "b", "2");
    cep_redis_batch_meta(b, "m1", 2, "x", 1);
    cep_redis_batch_offset(b, "t1", 5);
    cep_redis_batch_offset(b, "t2", 6);
    commit_ok(r, "cep:t", &b, 1);

    cep_redis_batch_reset(b);
    put_str(b, "c", "3");
    cep_redis_batch_replace_all(b); /* after a put: the DEL still comes first */
    cep_redis_batch_meta(b, "m2", 2, "y", 1);
    cep_redis_batch_offset(b, "t1", 6);
    cep_redis_batch_offset(b, "t1", 7); /* the last one wins */
    commit_ok(r, "cep:t", &b, 1);

    loaded_t x;
    load_ok(r, "cep:t", 4, &x);
    cr_assert_eq(x.state.n, 1);
    EXPECT_STR(&x.state, "c", "3");
    cr_assert_eq(x.meta.n, 1);
    EXPECT_STR(&x.meta, "m2", "y");
    cr_assert_eq(x.offsets.n, 1);
    EXPECT_STR(&x.offsets, "t1", "7");
    loaded_free(&x);

    /* a replace with nothing in it leaves nothing */
    cep_redis_batch_reset(b);
    cep_redis_batch_replace_all(b);
    commit_ok(r, "cep:t", &b, 1);
    load_ok(r, "cep:t", 4, &x);
    cr_assert_eq(x.state.n + x.meta.n + x.offsets.n, 0);
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted names KEYS * returns, joined with spaces. */
static void all_keys(redisContext *c, char *out, size_t cap)
{
    redisReply *rep = raw_cmd(c, "KEYS *");
    cr_assert_eq(rep->type, REDIS_REPLY_ARRAY);
    char *names[16];
    cr_assert_leq(rep->elements, 16);
    for (size_t i = 0; i < rep->elements; i++) names[i] = rep->element[i]->str;
    qsort(names, rep->elements, sizeof names[0], cmp_str);
    out[0] = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", i ? " " : "", names[i]);
    }
    freeReplyObject(rep);
}

Test(redis, keys_carry_the_task_as_hash_tag_and_drop_removes_them, .fini = teardown,
     .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b = cep_redis_batch_new(3);
    put_str(b, "k", "v");
    cep_redis_batch_meta(b, "m", 1, "x", 1);
    cep_redis_batch_offset(b, "events", 42);
    commit_ok(r, "cep:mygroup", &b, 1);

    redisContext *c = cep_test_redis_raw(srv);
    cr_assert_not_null(c);
    char keys[512];
    all_keys(c, keys, sizeof keys);
    cr_assert_str_eq(keys, "cep:mygroup:{3}:meta cep:mygroup:{3}:offsets cep:mygroup:{3}:state");
    const char *names[] = {"cep:mygroup:{3}:meta", "cep:mygroup:{3}:offsets",
                           "cep:mygroup:{3}:state"};
    for (size_t i = 0; i < CEP_ARRAY_LEN(names); i++) {
        redisReply *rep = raw_cmd(c, "TYPE %s", names[i]);
        cr_assert_str_eq(rep->str, "hash", "%s", names[i]);
        freeReplyObject(rep);
    }
    redisReply *rep = raw_cmd(c, "HGET cep:mygroup:{3}:offsets events");
    cr_assert_str_eq(rep->str, "42");
    freeReplyObject(rep);

    /* braces in the namespace would make the cluster hash them, not the task */
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_commit(r, "cep:{g}", &b, 1, &err), CEP_ERR_ARG);
    cr_assert_str_eq(err.msg, "redis namespace 'cep:{g}': must not contain '{' or '}' (the task "
                              "is the keys' hash tag)");
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_drop(r, "cep:mygroup", 3, &err), CEP_OK, "%s", err.msg);
    all_keys(c, keys, sizeof keys);
    cr_assert_str_eq(keys, "");
    redisFree(c);
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

/* ---- transactions ---------------------------------------------------------------- */

Test(redis, a_refused_transaction_writes_nothing_of_its_task, .fini = teardown,
     .timeout = TEST_TIMEOUT_S)
{
    /* A user that may write task 0 and task 1's state hash, not task 1's
     * meta: Redis refuses that HSET when it is queued, so task 1's whole
     * transaction is discarded, state included, while task 0's runs. */
    start(NULL);
    redisContext *c = cep_test_redis_raw(srv);
    cr_assert_not_null(c);
    redisReply *rep =
        raw_cmd(c, "ACL SETUSER writer on >wpw ~cep:t:{0}:* ~cep:t:{1}:state +@all");
    cr_assert_eq(rep->type, REDIS_REPLY_STATUS, "%s", rep->str);
    freeReplyObject(rep);

    char url[128];
    snprintf(url, sizeof url, "redis://writer:wpw@127.0.0.1:%d", cep_test_redis_port(srv));
    cep_redis_t *r = connect_ok(url);
    cep_redis_batch_t *b0 = cep_redis_batch_new(0), *b1 = cep_redis_batch_new(1);
    put_str(b0, "a", "1");
    put_str(b0, "b", "2");
    cep_redis_batch_meta(b0, "m", 1, "x", 1);
    cep_redis_batch_offset(b0, "events", 10);
    put_str(b1, "a", "1");
    cep_redis_batch_meta(b1, "m", 1, "x", 1);
    cep_redis_batch_offset(b1, "events", 10);

    cep_redis_batch_t *batches[] = {b0, b1};
    cep_error_t err;
    cep_error_clear(&err);
    uint64_t trips = cep_redis_stats(r)->round_trips;
    cr_assert_eq(cep_redis_commit(r, "cep:t", batches, 2, &err), CEP_ERR_IO);
    cr_assert_eq(cep_redis_stats(r)->round_trips, trips + 1);
    char want[512];
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: task 1: transaction discarded, nothing written: HSET of "
             "'cep:t:{1}:meta' refused: NOPERM this user has no permissions to access one of the "
             "keys used as arguments",
             cep_test_redis_port(srv));
    cr_assert_str_eq(err.msg, want);

    rep = raw_cmd(c, "EXISTS cep:t:{1}:state cep:t:{1}:meta cep:t:{1}:offsets");
    cr_assert_eq(rep->integer, 0);
    freeReplyObject(rep);
    loaded_t x;
    load_ok(r, "cep:t", 0, &x);
    cr_assert_eq(x.state.n, 2);
    EXPECT_STR(&x.state, "a", "1");
    EXPECT_STR(&x.state, "b", "2");
    EXPECT_STR(&x.meta, "m", "x");
    EXPECT_STR(&x.offsets, "events", "10");
    loaded_free(&x);

    /* the connection is still in step: the next commit works */
    commit_ok(r, "cep:t", &b0, 1);
    redisFree(c);
    cep_redis_batch_free(b0);
    cep_redis_batch_free(b1);
    cep_redis_free(r);
}

Test(redis, a_command_failing_inside_exec_is_an_error, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    redisContext *c = cep_test_redis_raw(srv);
    cr_assert_not_null(c);
    freeReplyObject(raw_cmd(c, "SET cep:t:{2}:meta not-a-hash"));
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b = cep_redis_batch_new(2);
    put_str(b, "a", "1");
    cep_redis_batch_meta(b, "m", 1, "x", 1);
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_commit(r, "cep:t", &b, 1, &err), CEP_ERR_IO);
    char want[512];
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: task 2: HSET of 'cep:t:{2}:meta' failed inside the transaction, "
             "the rest of it was applied: WRONGTYPE Operation against a key holding the wrong "
             "kind of value",
             cep_test_redis_port(srv));
    cr_assert_str_eq(err.msg, want);
    redisReply *rep = raw_cmd(c, "HLEN cep:t:{2}:state");
    cr_assert_eq(rep->integer, 1); /* Redis does not roll back */
    freeReplyObject(rep);

    /* a full replace repairs it */
    cep_redis_batch_replace_all(b);
    commit_ok(r, "cep:t", &b, 1);
    loaded_t x;
    load_ok(r, "cep:t", 2, &x);
    EXPECT_STR(&x.meta, "m", "x");
    loaded_free(&x);
    redisFree(c);
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

/* ---- big hashes ----------------------------------------------------------------- */

typedef struct counted {
    unsigned char *seen;
    size_t n, dup, bad;
} counted_t;

static bool count_state(void *ctx, const char *f, size_t flen, const char *v, size_t vlen)
{
    counted_t *c = ctx;
    unsigned idx;
    char want[16];
    if (flen != 7 || sscanf(f, "f%6u", &idx) != 1 || idx >= 200000) {
        c->bad++;
        return true;
    }
    snprintf(want, sizeof want, "v%06u", idx);
    if (vlen != 7 || memcmp(v, want, 7) != 0) c->bad++;
    if (c->seen[idx]++) c->dup++;
    c->n++;
    return true;
}

Test(redis, hscan_streams_200k_fields_exactly_once, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b = cep_redis_batch_new(0);
    for (unsigned i = 0; i < 200000; i++) {
        char f[16], v[16];
        snprintf(f, sizeof f, "f%06u", i);
        snprintf(v, sizeof v, "v%06u", i);
        cep_redis_batch_put(b, f, 7, v, 7);
    }
    uint64_t cmds = cep_redis_stats(r)->commands;
    commit_ok(r, "cep:t", &b, 1);
    /* MULTI, 200 HSETs of 1000 fields, EXEC */
    cr_assert_eq(cep_redis_stats(r)->commands - cmds, 202);

    counted_t c = {calloc(200000, 1), 0, 0, 0};
    cr_assert_not_null(c.seen);
    cep_redis_loader_t l = {.on_state = count_state, .ctx = &c};
    cep_error_t err;
    cep_error_clear(&err);
    uint64_t trips = cep_redis_stats(r)->round_trips;
    cr_assert_eq(cep_redis_load(r, "cep:t", 0, &l, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(c.n, 200000);
    cr_assert_eq(c.dup, 0);
    cr_assert_eq(c.bad, 0);
    /* pages of about 10000 fields, not one reply */
    uint64_t pages = cep_redis_stats(r)->round_trips - trips;
    cr_assert(pages >= 15 && pages <= 40, "%llu HSCAN pages", (unsigned long long)pages);
    free(c.seen);
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

/* ---- connecting ----------------------------------------------------------------- */

Test(redis, passwords_exact_errors, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start("s3cret");
    int port = cep_test_redis_port(srv);
    char url[128], want[256];

    snprintf(url, sizeof url, "redis://:nope@127.0.0.1:%d", port);
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: authentication failed: WRONGPASS invalid username-password "
             "pair or user is disabled.",
             port);
    cr_assert_str_eq(connect_fails(url, TIMEOUT_MS, CEP_ERR_IO), want);

    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: the server wants a password and the URL has none: NOAUTH "
             "Authentication required.",
             port);
    cr_assert_str_eq(connect_fails(url, TIMEOUT_MS, CEP_ERR_IO), want);

    snprintf(url, sizeof url, "redis://:s3cret@127.0.0.1:%d", port);
    cep_redis_t *r = connect_ok(url);
    snprintf(want, sizeof want, "127.0.0.1:%d/0", port);
    cr_assert_str_eq(cep_redis_where(r), want);
    cep_redis_free(r);

    snprintf(url, sizeof url, "redis://default:s3cret@127.0.0.1:%d/0", port);
    cep_redis_free(connect_ok(url));
}

Test(redis, a_password_with_url_characters_is_percent_encoded, .fini = teardown,
     .timeout = TEST_TIMEOUT_S)
{
    start("p@ss w/rd:%");
    char url[128];
    snprintf(url, sizeof url, "redis://:p%%40ss%%20w%%2Frd%%3A%%25@127.0.0.1:%d",
             cep_test_redis_port(srv));
    cep_redis_free(connect_ok(url));
}

Test(redis, a_closed_port_is_refused, .timeout = TEST_TIMEOUT_S)
{
    int port = cep_test_redis_free_port();
    cr_assert_gt(port, 0);
    char url[64], want[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: cannot connect: Connection refused", port);
    cr_assert_str_eq(connect_fails(url, TIMEOUT_MS, CEP_ERR_IO), want);
}

Test(redis, bad_urls_exact_errors, .timeout = TEST_TIMEOUT_S)
{
    static const struct {
        const char *url, *shown;
    } cases[] = {
        {"x", "x"},
        {"", ""},
        {"redis://localhost", "redis://localhost"},
        {"redis://:6379", "redis://:6379"},
        {"redis://h:0", "redis://h:0"},
        {"redis://h:65536", "redis://h:65536"},
        {"redis://h:6379/x", "redis://h:6379/x"},
        {"redis://h:6379/1/2", "redis://h:6379/1/2"},
        {"redis://h:6379?db=1", "redis://h:6379?db=1"},
        {"http://h:6379", "http://h:6379"},
        {"redis://[::1:6379", "redis://[::1:6379"},
        {"redis://:secret@h:abc", "redis://***@h:abc"},
        {"redis://secret@h:6379", "redis://***@h:6379"},
        {"redis://:bad%zz@h:1", "redis://***@h:1"},
        {":secret@h", "***@h"},
    };
    for (size_t i = 0; i < CEP_ARRAY_LEN(cases); i++) {
        char want[256];
        snprintf(want, sizeof want,
                 "redis URL '%s': expected redis://[[user]:password@]host:port[/db]",
                 cases[i].shown);
        cr_assert_str_eq(connect_fails(cases[i].url, TIMEOUT_MS, CEP_ERR_ARG), want);
    }
    cr_assert_str_eq(connect_fails("rediss://h:6379", TIMEOUT_MS, CEP_ERR_UNSUPPORTED),
                     "redis URL: TLS (rediss://) is not supported");
    cr_assert_str_eq(connect_fails("redis://h:1", 0, CEP_ERR_ARG),
                     "redis timeout must be > 0 ms, got 0");
}

Test(redis, url_forms_and_the_db, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    int port = cep_test_redis_port(srv);
    char url[128], want[256];

    snprintf(url, sizeof url, "127.0.0.1:%d/5", port); /* no scheme */
    cep_redis_t *r = connect_ok(url);
    snprintf(want, sizeof want, "127.0.0.1:%d/5", port);
    cr_assert_str_eq(cep_redis_where(r), want);
    cep_redis_batch_t *b = cep_redis_batch_new(0);
    put_str(b, "k", "v");
    commit_ok(r, "cep:t", &b, 1);
    cep_redis_free(r);

    redisContext *c = cep_test_redis_raw(srv);
    cr_assert_not_null(c);
    redisReply *rep = raw_cmd(c, "EXISTS cep:t:{0}:state");
    cr_assert_eq(rep->integer, 0);
    freeReplyObject(rep);
    freeReplyObject(raw_cmd(c, "SELECT 5"));
    rep = raw_cmd(c, "EXISTS cep:t:{0}:state");
    cr_assert_eq(rep->integer, 1);
    freeReplyObject(rep);
    redisFree(c);

    snprintf(url, sizeof url, "REDIS://[127.0.0.1]:%d/", port);
    r = connect_ok(url);
    snprintf(want, sizeof want, "127.0.0.1:%d/0", port);
    cr_assert_str_eq(cep_redis_where(r), want);
    cep_redis_free(r);

    snprintf(url, sizeof url, "redis://127.0.0.1:%d/99", port);
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: cannot select db 99: ERR DB index is out of range", port);
    cr_assert_str_eq(connect_fails(url, TIMEOUT_MS, CEP_ERR_IO), want);
    cep_redis_batch_free(b);
}

/* ---- restarts and failures --------------------------------------------------------- */

Test(redis, a_restart_between_commit_and_load_keeps_the_data, .fini = teardown,
     .timeout = TEST_TIMEOUT_S)
{
    srv = cep_test_redis_start_persistent("pw");
    cr_assert_not_null(srv);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b0 = cep_redis_batch_new(0), *b1 = cep_redis_batch_new(1);
    cep_redis_batch_put(b0, "a\0", 2, "1\0", 2);
    cep_redis_batch_meta(b0, "m", 1, "x", 1);
    cep_redis_batch_offset(b0, "events", 77);
    put_str(b1, "b", "2");
    cep_redis_batch_t *batches[] = {b0, b1};
    commit_ok(r, "cep:t", batches, 2);

    cr_assert(cep_test_redis_restart(srv));
    /* the old connection died with the server: the load reconnects before
     * it delivers anything */
    loaded_t x;
    load_ok(r, "cep:t", 0, &x);
    cr_assert_eq(cep_redis_stats(r)->reconnects, 1);
    cr_assert_eq(x.state.n, 1);
    expect(&x.state, "a\0", 2, "1\0", 2);
    EXPECT_STR(&x.meta, "m", "x");
    EXPECT_STR(&x.offsets, "events", "77");
    loaded_free(&x);
    load_ok(r, "cep:t", 1, &x);
    cr_assert_eq(x.state.n, 1);
    EXPECT_STR(&x.state, "b", "2");
    loaded_free(&x);
    cep_redis_batch_free(b0);
    cep_redis_batch_free(b1);
    cep_redis_free(r);
}

Test(redis, a_commit_fails_while_the_server_is_down_and_works_after_restart, .fini = teardown,
     .timeout = TEST_TIMEOUT_S)
{
    start("pw");
    int port = cep_test_redis_port(srv);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b = cep_redis_batch_new(0);
    put_str(b, "first", "1");
    commit_ok(r, "cep:t", &b, 1);

    cep_test_redis_stop(srv);
    cep_redis_batch_reset(b);
    put_str(b, "second", "2");
    cep_redis_batch_offset(b, "events", 5);
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_commit(r, "cep:t", &b, 1, &err), CEP_ERR_IO);
    /* the old connection is found dead, and the one reconnect is refused */
    char want[256];
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: cannot connect: Connection refused (reconnecting after: ", port);
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_commit(r, "cep:t", &b, 1, &err), CEP_ERR_IO);
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: cannot connect: Connection refused", port);
    cr_assert_str_eq(err.msg, want);
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_ensure(r, &err), CEP_ERR_IO);
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(cep_redis_stats(r)->reconnects, 0);

    cr_assert(cep_test_redis_restart(srv));
    commit_ok(r, "cep:t", &b, 1);
    cr_assert_eq(cep_redis_stats(r)->reconnects, 1);
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_ensure(r, &err), CEP_OK); /* healthy: nothing to do */
    cr_assert_eq(cep_redis_stats(r)->reconnects, 1);

    /* the server kept nothing across the restart (no persistence): only
     * the second checkpoint is there */
    loaded_t x;
    load_ok(r, "cep:t", 0, &x);
    cr_assert_eq(x.state.n, 1);
    EXPECT_STR(&x.state, "second", "2");
    cr_assert_eq(x.offsets.n, 1);
    EXPECT_STR(&x.offsets, "events", "5");
    loaded_free(&x);

    /* a restart the client has not noticed: the commit finds the old
     * connection dead, reconnects and writes the whole batch again */
    cr_assert(cep_test_redis_restart(srv));
    uint64_t trips = cep_redis_stats(r)->round_trips;
    commit_ok(r, "cep:t", &b, 1);
    cr_assert_eq(cep_redis_stats(r)->reconnects, 2);
    /* the lost attempt, the handshake's AUTH and PING, the second attempt */
    cr_assert_eq(cep_redis_stats(r)->round_trips - trips, 4);
    load_ok(r, "cep:t", 0, &x);
    cr_assert_eq(x.state.n, 1);
    EXPECT_STR(&x.state, "second", "2");
    loaded_free(&x);
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

Test(redis, a_hung_server_times_out, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    int port = cep_test_redis_port(srv);
    cep_error_t err;
    cep_error_clear(&err);
    cep_redis_t *r = NULL;
    cr_assert_eq(cep_redis_connect(cep_test_redis_url(srv), 300, &r, &err), CEP_OK, "%s", err.msg);
    cep_redis_batch_t *b = cep_redis_batch_new(0);
    put_str(b, "k", "v");

    cr_assert(cep_test_redis_pause(srv));
    uint64_t t0 = cep_now_ns();
    cr_assert_eq(cep_redis_commit(r, "cep:t", &b, 1, &err), CEP_ERR_IO);
    uint64_t ms = (cep_now_ns() - t0) / 1000000;
    /* the reply times out, and so does the PING of the one reconnect (the
     * kernel still accepts connections for the stopped process) */
    char want[256];
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: PING: timed out after 300 ms (reconnecting after: timed out "
             "after 300 ms)",
             port);
    cr_assert_str_eq(err.msg, want);
    cr_assert(ms >= 550 && ms < 3000, "%llu ms", (unsigned long long)ms);

    cr_assert(cep_test_redis_resume(srv));
    commit_ok(r, "cep:t", &b, 1);
    cr_assert_eq(cep_redis_stats(r)->reconnects, 1);
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

/* ---- loading errors --------------------------------------------------------------- */

typedef struct stopper {
    int left;
    cep_error_t *err; /* set: record a reason before stopping */
} stopper_t;

static bool stop_after(void *ctx, const char *f, size_t flen, const char *v, size_t vlen)
{
    stopper_t *s = ctx;
    if (--s->left > 0) return true;
    if (s->err) cep_error_set(s->err, CEP_ERR_NOMEM, NULL, "no room for state");
    return false;
}

Test(redis, a_callback_stops_the_load, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    cep_redis_batch_t *b = cep_redis_batch_new(0);
    for (int i = 0; i < 10; i++) {
        char f[8];
        snprintf(f, sizeof f, "f%d", i);
        put_str(b, f, "v");
    }
    commit_ok(r, "cep:t", &b, 1);

    cep_error_t err;
    cep_error_clear(&err);
    stopper_t s = {3, NULL};
    cep_redis_loader_t l = {.on_state = stop_after, .ctx = &s};
    cr_assert_eq(cep_redis_load(r, "cep:t", 0, &l, &err), CEP_ERR_RUNTIME);
    char want[256];
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: loading task 0: stopped by the caller at 'cep:t:{0}:state'",
             cep_test_redis_port(srv));
    cr_assert_str_eq(err.msg, want);
    cr_assert_eq(s.left, 0);

    /* the caller's own reason wins */
    cep_error_clear(&err);
    s = (stopper_t){1, &err};
    cr_assert_eq(cep_redis_load(r, "cep:t", 0, &l, &err), CEP_ERR_NOMEM);
    cr_assert_str_eq(err.msg, "no room for state");
    cep_redis_batch_free(b);
    cep_redis_free(r);
}

Test(redis, a_bad_offset_is_a_decode_error, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    start(NULL);
    redisContext *c = cep_test_redis_raw(srv);
    cr_assert_not_null(c);
    freeReplyObject(raw_cmd(c, "HSET cep:t:{0}:offsets events 12x"));
    redisFree(c);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    loaded_t x = {0};
    cep_redis_loader_t l = {on_state, on_meta, on_offset, &x};
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_redis_load(r, "cep:t", 0, &l, &err), CEP_ERR_DECODE);
    char want[256];
    snprintf(want, sizeof want,
             "redis 127.0.0.1:%d: 'cep:t:{0}:offsets' field 'events': '12x' is not an offset",
             cep_test_redis_port(srv));
    cr_assert_str_eq(err.msg, want);
    loaded_free(&x);
    cep_redis_free(r);
}

/* ---- benchmark ------------------------------------------------------------------- */

static bool count_only(void *ctx, const char *f, size_t flen, const char *v, size_t vlen)
{
    (*(size_t *)ctx)++;
    return true;
}

/* CEP_REDIS_BENCH=1 build-redis/tests/test_state --filter 'redis/bench*' --verbose
 * times a 100k-field commit and a 1M-field load (values of 60 bytes). */
Test(redis, bench_commit_100k_and_load_1m, .fini = teardown, .timeout = TEST_TIMEOUT_S)
{
    if (!getenv("CEP_REDIS_BENCH")) cr_skip_test("set CEP_REDIS_BENCH=1 to run");
    start(NULL);
    cep_redis_t *r = connect_ok(cep_test_redis_url(srv));
    char val[61];
    memset(val, 'v', 60);
    val[60] = 0;
    cep_redis_batch_t *b = cep_redis_batch_new(0);
    double commit_ms[10];
    for (int round = 0; round < 10; round++) {
        cep_redis_batch_reset(b);
        uint64_t t0 = cep_now_ns();
        for (unsigned i = 0; i < 100000; i++) {
            char f[24];
            int n = snprintf(f, sizeof f, "key:%07u", round * 100000 + i);
            memcpy(val, f, (size_t)n); /* distinct values */
            cep_redis_batch_put(b, f, (size_t)n, val, 60);
        }
        uint64_t t1 = cep_now_ns();
        commit_ok(r, "cep:bench", &b, 1);
        uint64_t t2 = cep_now_ns();
        commit_ms[round] = (double)(t2 - t1) / 1e6;
        fprintf(stderr,
                "bench: batch of 100k puts built in %.1f ms, committed in %.1f ms (%zu bytes)\n",
                (double)(t1 - t0) / 1e6, commit_ms[round], cep_redis_batch_size(b));
    }
    for (int rep = 0; rep < 3; rep++) {
        size_t n = 0;
        cep_redis_loader_t l = {.on_state = count_only, .ctx = &n};
        cep_error_t err;
        cep_error_clear(&err);
        uint64_t trips = cep_redis_stats(r)->round_trips;
        uint64_t t0 = cep_now_ns();
        cr_assert_eq(cep_redis_load(r, "cep:bench", 0, &l, &err), CEP_OK, "%s", err.msg);
        uint64_t t1 = cep_now_ns();
        cr_assert_eq(n, 1000000);
        fprintf(stderr, "bench: loaded %zu fields in %.1f ms (%llu round trips)\n", n,
                (double)(t1 - t0) / 1e6,
                (unsigned long long)(cep_redis_stats(r)->round_trips - trips));
    }
    cep_redis_batch_free(b);
    cep_redis_free(r);
}
