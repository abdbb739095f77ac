/*
 * Durable state against a real redis-server (started here on a free
 * loopback port) and the embedded broker: cep run killed with SIGKILL at
 * random points and restarted, an instance of a pair killed, redis-server
 * restarted under a running engine — each time the alert ids on cep.alerts
 * equal those of one uninterrupted run over the same events, none missing
 * and none new.
 */
#include "../support/kafka_support.h"
#include "../support/redis_server.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* a killed member leaves the group in 3 s (the embedded broker refuses less) */
#define SESSION "session.timeout.ms=3000"
#define HEARTBEAT "heartbeat.interval.ms=500"

static void gen_events(cep_test_events_t *ev, uint64_t n, uint64_t seed)
{
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = n;
    o.seed = seed;
    o.fraud_rate = 0.25;
    cep_test_events_gen(ev, &o);
}

static cep_kafka_broker_t *broker(void)
{
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(4, &b, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(cep_kafka_broker_topic(b, "gaming.events", 4, &err), CEP_OK, "%s", err.msg);
    cr_assert(!strncmp(cep_kafka_broker_bootstrap(b), "127.0.0.1:", 10));
    return b;
}

static char *tmpfile_path(void)
{
    char *p = strdup("/tmp/cep-ckpt-XXXXXX");
    int fd = mkstemp(p);
    cr_assert_geq(fd, 0);
    close(fd);
    return p;
}

/* cep run on the demo pack with Redis state; idle_ms 0 = until killed. */
static pid_t start_cep(const char *bs, const char *group, const char *redis, int idle_ms, const char *errfile)
{
    char idle[16];
    snprintf(idle, sizeof idle, "%d", idle_ms);
    char *argv[] = {"cep", "run", "--rules", "rules/demo", "--kafka", (char *)bs, "--group", (char *)group,
                    "--state", (char *)redis, "--checkpoint-ms", "100", "-X", SESSION, "-X", HEARTBEAT,
                    idle_ms ? "--idle-exit-ms" : NULL, idle, NULL};
    return cep_test_spawn(CEP_BINARY, argv, errfile);
}

/* The alert ids of one uninterrupted run over the events. */
static json_t *reference(const cep_test_events_t *ev, const char *redis)
{
    cep_kafka_broker_t *b = broker();
    const char *bs = cep_kafka_broker_bootstrap(b);
    cep_test_events_produce(ev, bs, "gaming.events");
    char *errf = tmpfile_path();
    cr_assert_eq(cep_test_wait(start_cep(bs, "reference", redis, 2500, errf)), 0);
    unsigned long long records, alerts;
    cep_test_run_counts(errf, &records, &alerts);
    cr_assert_eq(records, ev->n);
    json_t *ids = cep_test_read_topic(bs, "cep.alerts", NULL, NULL);
    cr_assert_gt(json_object_size(ids), 50, "the demo pack fires (%zu alerts)", json_object_size(ids));
    unlink(errf);
    free(errf);
    cep_kafka_broker_free(b);
    return ids;
}

/* How many times errfile says needle. */
static int occurrences(const char *errfile, const char *needle)
{
    char *text = NULL;
    size_t n;
    if (cep_file_read(errfile, &text, &n, NULL) != CEP_OK) return 0;
    int k = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle)) k++;
    free(text);
    return k;
}

/* Wait until the run logged its first assignment, then until it has taken
 * records for a while (checkpoints every 100 ms). */
static void wait_running(const char *errfile)
{
    for (int k = 0; k < 600 && !occurrences(errfile, "partition(s) assigned"); k++) usleep(50000);
    cr_assert_gt(occurrences(errfile, "partition(s) assigned"), 0, "the run joined its group");
    usleep(1500000);
}

static void expect_same_ids(json_t *want, json_t *got)
{
    const char *k;
    json_t *v;
    size_t missing = 0, extra = 0;
    json_object_foreach(want, k, v)
    {
        if (!json_object_get(got, k)) {
            if (missing < 5) fprintf(stderr, "missing alert %s\n", k);
            missing++;
        }
    }
    json_object_foreach(got, k, v)
    {
        if (!json_object_get(want, k)) {
            if (extra < 5) fprintf(stderr, "new alert %s\n", k);
            extra++;
        }
    }
    cr_assert_eq(missing, 0, "%zu alert ids missing", missing);
    cr_assert_eq(extra, 0, "%zu alert ids that an uninterrupted run does not have", extra);
    cr_assert_eq(json_object_size(got), json_object_size(want));
}

/* One test's world: Redis, the events, the alert ids of an uninterrupted
 * run over them, and a fresh broker for the run under test. */
typedef struct scene {
    cep_test_redis_t *redis;
    const char *url;
    cep_test_events_t ev;
    json_t *want;
    cep_kafka_broker_t *b;
    const char *bs;
    char *errf;
} scene_t;

static void scene_start(scene_t *sc, bool persistent, uint64_t events, uint64_t seed)
{
    sc->redis = persistent ? cep_test_redis_start_persistent(NULL) : cep_test_redis_start(NULL);
    cr_assert_not_null(sc->redis);
    sc->url = cep_test_redis_url(sc->redis);
    gen_events(&sc->ev, events, seed);
    sc->want = reference(&sc->ev, sc->url);
    sc->b = broker();
    sc->bs = cep_kafka_broker_bootstrap(sc->b);
    sc->errf = tmpfile_path();
}

/* The alert ids on the run's cep.alerts equal the uninterrupted run's; then free it all. */
static void scene_finish(scene_t *sc)
{
    json_t *got = cep_test_read_topic(sc->bs, "cep.alerts", NULL, NULL);
    expect_same_ids(sc->want, got);
    json_decref(sc->want);
    json_decref(got);
    unlink(sc->errf);
    free(sc->errf);
    cep_kafka_broker_free(sc->b);
    cep_test_events_free(&sc->ev);
    cep_test_redis_free(sc->redis);
}

/* How many "task(s) ... restored" lines restored at least one task. */
static int restores_with_state(const char *errfile)
{
    char *text = NULL;
    size_t n;
    cr_assert_eq(cep_file_read(errfile, &text, &n, NULL), CEP_OK);
    int k = 0;
    for (const char *p = text; (p = strstr(p, "cep: state: ")); p++) {
        unsigned long long tasks = 0, entries = 0;
        if (sscanf(p, "cep: state: %llu task(s) and %llu entries restored", &tasks, &entries) == 2 && tasks > 0) k++;
    }
    free(text);
    return k;
}

Test(checkpoint, killed_at_ten_random_points_equals_one_run, .timeout = 300)
{
    scene_t sc;
    scene_start(&sc, false, 10000, 21);
    cep_test_trickle_t *tr = cep_test_trickle_start(&sc.ev, sc.bs, "gaming.events", 50, 400);
    uint64_t x = 0x5eed;
    for (int i = 0; i < 10; i++) {
        int joined = occurrences(sc.errf, "partition(s) assigned");
        pid_t pid = start_cep(sc.bs, "crashy", sc.url, 0, sc.errf);
        /* once it holds its partitions (and has restored them), let it run 0.2 to 1.5 s */
        for (int k = 0; k < 600 && occurrences(sc.errf, "partition(s) assigned") == joined; k++) usleep(50000);
        cr_assert_gt(occurrences(sc.errf, "partition(s) assigned"), joined, "restart %d joined the group", i);
        x = cep_hash_mix(x + (uint64_t)i);
        usleep((useconds_t)(200 + x % 1300) * 1000u);
        cr_assert_eq(kill(pid, SIGKILL), 0);
        cr_assert_eq(cep_test_wait(pid), 128 + SIGKILL);
    }
    uint64_t produced_before_last = cep_test_trickle_done(tr);
    cep_test_trickle_join(tr);
    cr_assert_eq(cep_test_wait(start_cep(sc.bs, "crashy", sc.url, 2500, sc.errf)), 0);
    cr_assert_lt(produced_before_last, sc.ev.n, "the kills happened while events were still arriving");
    cr_assert_geq(restores_with_state(sc.errf), 9, "the restarts found their state in Redis");
    scene_finish(&sc);
}

Test(checkpoint, survivor_of_a_pair_takes_over_with_state, .timeout = 300)
{
    scene_t sc;
    scene_start(&sc, false, 10000, 22);
    char *err1 = sc.errf, *err2 = tmpfile_path();
    pid_t p1 = start_cep(sc.bs, "pair", sc.url, 0, err1);
    pid_t p2 = start_cep(sc.bs, "pair", sc.url, 6000, err2);
    /* 4 partitions of gaming.events and 4 of each internal topic re-keying
     * the demo pack's rules by device, by IP and by player pair */
    const int all = 4 + 3 * 4;
    for (int i = 0; i < 200; i++) {
        int a = cep_test_last_assignment(err1), c = cep_test_last_assignment(err2);
        if (a > 0 && c > 0 && a + c == all) break;
        usleep(100000);
    }
    cr_assert_eq(cep_test_last_assignment(err1) + cep_test_last_assignment(err2), all, "the pair shares %d partitions",
                 all);
    cep_test_trickle_t *tr = cep_test_trickle_start(&sc.ev, sc.bs, "gaming.events", 100, 150);
    while (cep_test_trickle_done(tr) < sc.ev.n / 3) usleep(50000);
    cr_assert_eq(kill(p1, SIGKILL), 0);
    cr_assert_eq(cep_test_wait(p1), 128 + SIGKILL);
    cep_test_trickle_join(tr);
    cr_assert_eq(cep_test_wait(p2), 0);
    cr_assert_eq(cep_test_last_assignment(err2), all, "the survivor holds every partition at the end");
    cr_assert_geq(restores_with_state(err2), 1, "the survivor loaded the partitions it took over");
    unlink(err2);
    free(err2);
    scene_finish(&sc);
}

/* redis-server stops under a running engine and comes back: once with its
 * data (append-only file), once without (the engine writes its tasks whole
 * after reconnecting, then a SIGKILL proves what Redis holds is complete). */
static void redis_restart_case(bool persistent)
{
    scene_t sc;
    scene_start(&sc, persistent, 10000, 23);
    pid_t pid = start_cep(sc.bs, "redis-restart", sc.url, 0, sc.errf);
    cep_test_trickle_t *tr = cep_test_trickle_start(&sc.ev, sc.bs, "gaming.events", 100, 300);
    wait_running(sc.errf);
    cr_assert_lt(cep_test_trickle_done(tr), sc.ev.n / 2, "the outage comes while events arrive");
    cep_test_redis_stop(sc.redis);
    usleep(2000000);
    cr_assert(cep_test_redis_restart(sc.redis));
    while (cep_test_trickle_done(tr) < sc.ev.n * 3 / 4) usleep(50000);
    usleep(1000000); /* a checkpoint after the restart */
    cr_assert_eq(kill(pid, SIGKILL), 0);
    cr_assert_eq(cep_test_wait(pid), 128 + SIGKILL);
    cep_test_trickle_join(tr);
    cr_assert_eq(cep_test_wait(start_cep(sc.bs, "redis-restart", sc.url, 2500, sc.errf)), 0);
    cr_assert(cep_test_file_has(sc.errf, "cep: state: checkpoint to"), "the outage is logged");
    cr_assert(cep_test_file_has(sc.errf, "is back"), "the recovery is logged");
    scene_finish(&sc);
}

Test(checkpoint, redis_restarted_with_its_data_loses_no_alert, .timeout = 300)
{
    redis_restart_case(true);
}

Test(checkpoint, redis_restarted_empty_loses_no_alert, .timeout = 300)
{
    redis_restart_case(false);
}

Test(checkpoint, unreachable_or_refusing_redis_is_a_clear_error)
{
    cep_test_redis_t *redis = cep_test_redis_start("s3cret");
    cr_assert_not_null(redis);
    cep_kafka_broker_t *b = broker();
    const char *bs = cep_kafka_broker_bootstrap(b);
    char *errf = tmpfile_path();
    char wrong[128];
    snprintf(wrong, sizeof wrong, "redis://:nope@127.0.0.1:%d", cep_test_redis_port(redis));
    cr_assert_eq(cep_test_wait(start_cep(bs, "bad", wrong, 1000, errf)), 1);
    cr_assert(cep_test_file_has(errf, "authentication failed"), "wrong password named");
    int port = cep_test_redis_free_port();
    char closed[128];
    snprintf(closed, sizeof closed, "redis://127.0.0.1:%d", port);
    char expect[160];
    snprintf(expect, sizeof expect, "redis 127.0.0.1:%d: cannot connect: Connection refused", port);
    cr_assert_eq(cep_test_wait(start_cep(bs, "bad", closed, 1000, errf)), 1);
    cr_assert(cep_test_file_has(errf, expect), "unreachable Redis named");
    unlink(errf);
    free(errf);
    cep_kafka_broker_free(b);
    cep_test_redis_free(redis);
}

Test(checkpoint, hung_redis_pauses_consumption_then_it_resumes, .timeout = 300)
{
    scene_t sc;
    scene_start(&sc, false, 8000, 24);
    char *argv[] = {"cep", "run", "--rules", "rules/demo", "--kafka", (char *)sc.bs, "--group", "hung", "--state",
                    (char *)sc.url, "--checkpoint-ms", "100", "--checkpoint-max-lag", "300", "-X", SESSION, "-X",
                    HEARTBEAT, "--idle-exit-ms", "2500", NULL};
    pid_t pid = cep_test_spawn(CEP_BINARY, argv, sc.errf);
    cep_test_trickle_t *tr = cep_test_trickle_start(&sc.ev, sc.bs, "gaming.events", 100, 300);
    wait_running(sc.errf);
    cr_assert_lt(cep_test_trickle_done(tr), sc.ev.n / 2, "Redis hangs while events arrive");
    cr_assert(cep_test_redis_pause(sc.redis)); /* SIGSTOP: connections hang, nothing answers */
    for (int i = 0; i < 300 && !cep_test_file_has(sc.errf, "consumption paused"); i++) usleep(100000);
    cr_assert(cep_test_file_has(sc.errf, "consumption paused"), "a hung Redis stops consumption after 300 records");
    usleep(1000000);
    cr_assert(cep_test_redis_resume(sc.redis));
    cep_test_trickle_join(tr);
    cr_assert_eq(cep_test_wait(pid), 0);
    cr_assert(cep_test_file_has(sc.errf, "consumption resumed"), "it resumes by itself");
    scene_finish(&sc);
}

/* ---- a pack that changed between checkpoint and restore ------------------- */

#include "engine/checkpoint.h"
#include "engine/output.h"

/* rule name -> its last value */
static void last_values_of(void *ctx, const cep_output_t *o)
{
    cep_buf_t v;
    cep_buf_init(&v);
    cep_output_value_json(o, &v);
    json_object_set_new(ctx, o->query->name, json_string(cep_buf_cstr(&v)));
    cep_buf_free(&v);
}

static void push_acct(cep_runtime_t *rt, const char *acct, int64_t t)
{
    char json[128];
    int n = snprintf(json, sizeof json, "{\"acct\":\"%s\",\"v\":%lld,\"t\":%lld}", acct, (long long)t, (long long)t);
    cep_record_t r = {.topic = "ev", .value = json, .vlen = (size_t)n, .partition = 0};
    cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
}

static long long hlen(cep_test_redis_t *redis, const char *key)
{
    redisReply *r = redisCommand(cep_test_redis_raw(redis), "HLEN %s", key);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

Test(checkpoint, a_changed_pack_keeps_what_it_can_and_forgets_the_rest, .timeout = 60)
{
    const char *stream = "CREATE STREAM ev (acct VARCHAR, v BIGINT, t BIGINT) WITH (KAFKA_TOPIC='ev', "
                         "VALUE_FORMAT='JSON', TIMESTAMP='t', KEY='acct');\n";
    char v1[1024], v2[1024];
    snprintf(v1, sizeof v1, "%s%s", stream,
             "CREATE TABLE n AS SELECT acct, COUNT(*) AS n FROM ev GROUP BY acct;\n"
             "CREATE TABLE s AS SELECT acct, SUM(v) AS s FROM ev WHERE v > 0 GROUP BY acct;\n");
    /* n unchanged; s also averages now (its state changes shape); m is new.
     * (Different WHEREs keep the three from sharing one operator.) */
    snprintf(v2, sizeof v2, "%s%s", stream,
             "CREATE TABLE n AS SELECT acct, COUNT(*) AS n FROM ev GROUP BY acct;\n"
             "CREATE TABLE s AS SELECT acct, SUM(v) AS s, AVG(v) AS a FROM ev WHERE v > 0 GROUP BY acct;\n"
             "CREATE TABLE m AS SELECT acct, MAX(v) AS m FROM ev WHERE v >= 0 GROUP BY acct;\n");
    cep_test_redis_t *redis = cep_test_redis_start(NULL);
    cr_assert_not_null(redis);
    const char *url = cep_test_redis_url(redis);
    cep_ruleset_t *rs1 = NULL, *rs2 = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("v1.sql", v1, strlen(v1), NULL, &rs1, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(cep_rules_compile("v2.sql", v2, strlen(v2), NULL, &rs2, &err), CEP_OK, "%s", err.msg);
    json_t *last = json_object();
    int32_t zero = 0;

    cep_runtime_t *rt = cep_runtime_new(rs1, last_values_of, last);
    cep_ckpt_t *c = NULL;
    cr_assert_eq(cep_ckpt_new(url, "cep:change", rt, &c, &err), CEP_OK, "%s", err.msg);
    for (int i = 1; i <= 3; i++) push_acct(rt, "a", 1000 * i);
    push_acct(rt, "b", 5000);
    cr_assert_eq(cep_ckpt_save_tasks(c, &zero, 1, &err), CEP_OK, "%s", err.msg);
    cep_ckpt_free(c);
    cep_runtime_free(rt);
    cr_assert_eq(hlen(redis, "cep:change:{0}:state"), 4, "n and s, for a and b");
    /* a record that does not decode in each table (an existing id's table
     * prefix, a new key): n's is spoiled state, s's belongs to a gone shape */
    redisContext *raw = cep_test_redis_raw(redis);
    redisReply *keys = redisCommand(raw, "HKEYS cep:change:{0}:state");
    cr_assert_eq(keys->type, REDIS_REPLY_ARRAY);
    char prefixes[4][8];
    int np = 0;
    for (size_t i = 0; i < keys->elements; i++) {
        int k = 0;
        while (k < np && memcmp(prefixes[k], keys->element[i]->str, 8)) k++;
        if (k == np) memcpy(prefixes[np++], keys->element[i]->str, 8);
    }
    freeReplyObject(keys);
    cr_assert_eq(np, 2, "two tables");
    for (int k = 0; k < np; k++) {
        char junk[11];
        memcpy(junk, prefixes[k], 8);
        memcpy(junk + 8, "zzz", 3);
        redisReply *set = redisCommand(raw, "HSET cep:change:{0}:state %b %b", junk, (size_t)11, "\x02\xff", (size_t)2);
        freeReplyObject(set);
    }

    cep_runtime_t *rt2 = cep_runtime_new(rs2, last_values_of, last);
    cep_ckpt_t *c2 = NULL;
    cr_assert_eq(cep_ckpt_new(url, "cep:change", rt2, &c2, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(cep_ckpt_restore_task(c2, 0, &err), CEP_OK, "%s", err.msg);
    const cep_ckpt_info_t *ci = cep_ckpt_info(c2);
    cr_assert_eq(ci->restored_entries, 6);
    cr_assert_eq(ci->unknown_entries, 4, "s's two entries, its spoiled one and its operator record have its old shape "
                                         "(%llu unknown)", (unsigned long long)ci->unknown_entries);
    cr_assert_eq(ci->corrupt_entries, 1, "n's spoiled record is skipped, not fatal");
    /* n goes on counting; s and m start afresh */
    json_object_clear(last);
    push_acct(rt2, "a", 4000);
    cr_assert_str_eq(json_string_value(json_object_get(last, "N")), "{\"N\":4}");
    cr_assert_str_eq(json_string_value(json_object_get(last, "S")), "{\"S\":4000,\"A\":4000.0}");
    cr_assert_str_eq(json_string_value(json_object_get(last, "M")), "{\"M\":4000}");
    /* the next checkpoint forgets what no rule reads any more */
    cr_assert_eq(cep_ckpt_save_tasks(c2, &zero, 1, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(hlen(redis, "cep:change:{0}:state"), 4, "n for a and b, the new s and m for a");
    cep_ckpt_free(c2);
    cep_runtime_free(rt2);

    cep_runtime_t *rt3 = cep_runtime_new(rs2, last_values_of, last);
    cep_ckpt_t *c3 = NULL;
    cr_assert_eq(cep_ckpt_new(url, "cep:change", rt3, &c3, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(cep_ckpt_restore_task(c3, 0, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(cep_ckpt_info(c3)->unknown_entries, 0);
    cr_assert_eq(cep_ckpt_info(c3)->corrupt_entries, 0);
    push_acct(rt3, "b", 6000);
    cr_assert_str_eq(json_string_value(json_object_get(last, "N")), "{\"N\":2}");
    cep_ckpt_free(c3);
    cep_runtime_free(rt3);
    json_decref(last);
    cep_ruleset_free(rs1);
    cep_ruleset_free(rs2);
    cep_test_redis_free(redis);
}
