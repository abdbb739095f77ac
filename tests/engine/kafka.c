/*
 * Kafka in, alerts out, over TCP on loopback against the embedded broker
 * (librdkafka's mock cluster, a real Kafka protocol endpoint) started here:
 * the alerts read back from cep.alerts equal, as a set of alert ids and
 * values, the alerts of the same events replayed from memory; malformed
 * records land in cep.dlq with their reason and the run goes on.
 */
#include "../support/compile_support.h"
#include "../support/kafka_support.h"
#include "bench/gen.h"
#include "engine/kafka.h"
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

/* alert id -> value JSON */
static void on_file_alert(void *ctx, const cep_output_t *o)
{
    json_t *set = ctx;
    cep_buf_t id, v;
    cep_buf_init(&id);
    cep_buf_init(&v);
    cep_output_alert_id(o, &id);
    cep_output_value_json(o, &v);
    json_object_set_new(set, cep_buf_cstr(&id), json_string(cep_buf_cstr(&v)));
    cep_buf_free(&id);
    cep_buf_free(&v);
}

/* Replay JSON lines through a fresh runtime; alerts into set (id -> value). */
static void replay(const cep_ruleset_t *rs, const cep_buf_t *lines, json_t *set)
{
    cep_runtime_t *rt = cep_runtime_new(rs, on_file_alert, set);
    cr_assert_not_null(rt);
    const char *p = lines->data, *end = lines->data + lines->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        cep_record_t r = {.topic = "gaming.events", .value = p, .vlen = (size_t)(nl - p)};
        cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
        p = nl + 1;
    }
    cep_runtime_finish(rt);
    cep_runtime_free(rt);
}

/* An embedded broker on loopback with n generated events (a quarter of
 * them fraud) produced to gaming.events. */
static cep_kafka_broker_t *broker_with_events(uint64_t n, uint64_t seed, cep_test_events_t *ev)
{
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(1, &b, &err), CEP_OK, "%s", err.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    cr_assert(!strncmp(bs, "127.0.0.1:", 10), "loopback only: %s", bs);
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = n;
    o.seed = seed;
    o.fraud_rate = 0.25;
    cep_test_events_gen(ev, &o);
    cep_test_events_produce(ev, bs, "gaming.events");
    return b;
}

Test(kafka, alerts_from_kafka_equal_the_replay, .timeout = 120)
{
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(1, &b, &err), CEP_OK, "%s", err.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    cr_assert(!strncmp(bs, "127.0.0.1:", 10), "loopback only: %s", bs);

    /* a separate client produces the events (and two malformed records) */
    cep_test_events_t ev;
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 6000; /* under the embedded broker's 5 MB per partition */
    o.seed = 77;
    o.fraud_rate = 0.25;
    cep_test_events_gen(&ev, &o);
    cep_test_events_produce(&ev, bs, "gaming.events");
    cep_kafka_producer_t *prod = NULL;
    cr_assert_eq(cep_kafka_producer_new(bs, NULL, 0, &prod, &err), CEP_OK, "%s", err.msg);
    const char *bad1 = "{\"event_id\":\"x1\",\"event_type\":\"login\"";
    const char *bad2 = "{\"event_id\":\"x2\",\"event_type\":\"login\",\"event_time\":\"soon\",\"account_id\":\"p-1\"}";
    cr_assert_eq(cep_kafka_produce(prod, "gaming.events", "p-1", 3, bad1, strlen(bad1), 0, NULL, NULL, 0, NULL), CEP_OK);
    cr_assert_eq(cep_kafka_produce(prod, "gaming.events", "p-1", 3, bad2, strlen(bad2), 0, NULL, NULL, 0, NULL), CEP_OK);
    cr_assert_eq(cep_kafka_producer_flush(prod, 30000), 0);
    cep_kafka_producer_free(prod);

    /* cep consumes, runs the demo pack, produces alerts and dead letters */
    cep_ruleset_t *rs = NULL;
    cr_assert_eq(cep_rules_compile_path("rules/demo", NULL, &rs, &err), CEP_OK, "%s", err.msg);
    cep_kafka_run_opts_t ro = {.bootstrap = bs, .group = "cep-test", .idle_exit_ms = 1500};
    cep_kafka_run_stats_t st;
    cr_assert_eq(cep_kafka_run(rs, &ro, &st, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(st.records, 6002);
    cr_assert_eq(st.dead_letters, 2);
    cr_assert_eq(st.delivery_failures, 0);

    /* the same events replayed from memory */
    json_t *want = json_object();
    replay(rs, &ev.lines, want);
    cr_assert_gt(json_object_size(want), 20, "the demo pack fires on this traffic (%zu alerts)", json_object_size(want));

    json_t *reasons = json_array();
    json_t *got = cep_test_read_topic(bs, "cep.alerts", NULL, NULL);
    json_t *dlq = cep_test_read_topic(bs, "cep.dlq", reasons, NULL);
    cr_assert_eq(json_object_size(got), json_object_size(want), "%zu alerts from Kafka, %zu from the replay",
                 json_object_size(got), json_object_size(want));
    cr_assert_eq(st.alerts, json_object_size(want), "every alert is produced once");
    const char *k;
    json_t *v;
    json_object_foreach(want, k, v)
    {
        json_t *g = json_object_get(got, k);
        cr_assert_not_null(g, "alert %s missing from cep.alerts", k);
        cr_assert_str_eq(json_string_value(g), json_string_value(v), "alert %s", k);
    }
    cr_assert_eq(json_array_size(reasons), 2);
    cr_assert_str_eq(json_string_value(json_array_get(reasons, 0)), "expected ',' or '}' (at byte 37)");
    cr_assert_str_eq(json_string_value(json_array_get(reasons, 1)),
                     "column EVENT_TIME: cannot read string 'soon' as BIGINT (at byte 57)");
    json_decref(want);
    json_decref(got);
    json_decref(dlq);
    json_decref(reasons);
    cep_test_events_free(&ev);
    cep_ruleset_free(rs);
    cep_kafka_broker_free(b);
}

Test(kafka, sigterm_mid_run_loses_nothing_acknowledged, .timeout = 120)
{
    cep_test_events_t ev;
    cep_kafka_broker_t *b = broker_with_events(6000, 5, &ev);
    const char *bs = cep_kafka_broker_bootstrap(b);
    cep_error_t err;
    cep_error_clear(&err);

    char errfile[] = "/tmp/cep-sigterm-XXXXXX";
    int fd = mkstemp(errfile);
    cr_assert_geq(fd, 0);
    close(fd);
    char *argv1[] = {"cep", "run", "--rules", "rules/demo", "--kafka", (char *)bs, "--group", "g-term", NULL};
    pid_t pid = cep_test_spawn(CEP_BINARY, argv1, errfile);
    /* it joins the group and consumes for a while */
    for (int k = 0; k < 600 && !cep_test_file_has(errfile, "partition(s) assigned"); k++) usleep(50000);
    cr_assert(cep_test_file_has(errfile, "partition(s) assigned"));
    sleep(1);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert_eq(cep_test_wait(pid), 0, "SIGTERM ends the run with exit 0");
    unsigned long long records1, alerts1;
    cep_test_run_counts(errfile, &records1, &alerts1);
    cr_assert_gt(records1, 0);
    /* every alert the run counted as produced is on the topic */
    json_t *got = cep_test_read_topic(bs, "cep.alerts", NULL, NULL);
    cr_assert_eq(json_object_size(got), alerts1, "%zu alerts on cep.alerts, %llu acknowledged",
                 json_object_size(got), alerts1);
    /* the same group resumes where the first run committed: nothing twice, nothing skipped */
    char *argv2[] = {"cep", "run", "--rules", "rules/demo", "--kafka", (char *)bs, "--group", "g-term",
                     "--idle-exit-ms", "1500", NULL};
    cr_assert_eq(cep_test_wait(cep_test_spawn(CEP_BINARY, argv2, errfile)), 0);
    unsigned long long records2, alerts2;
    cep_test_run_counts(errfile, &records2, &alerts2);
    cr_assert_eq(records1 + records2, 6000, "%llu + %llu records", records1, records2);
    unlink(errfile);
    json_decref(got);
    cep_test_events_free(&ev);
    cep_kafka_broker_free(b);
}

/* alert id -> the last value seen for it (EMIT CHANGES updates keep their id) */
static void last_values(const char *bootstrap, json_t *into)
{
    json_t *got = cep_test_read_topic(bootstrap, "cep.alerts", NULL, NULL);
    const char *k;
    json_t *v;
    json_object_foreach(got, k, v) json_object_set(into, k, v);
    json_decref(got);
}

Test(kafka, two_processes_in_one_group_equal_one, .timeout = 180)
{
    /* rules keyed by account, the topic keyed by account (KEY): each instance sees all of a key, no re-keying */
    char packdir[] = "/tmp/cep-pack-XXXXXX";
    cr_assert_not_null(mkdtemp(packdir));
    char path[256];
    snprintf(path, sizeof path, "%s/pack.sql", packdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("CREATE STREAM g (account_id VARCHAR, event_time BIGINT, event_type VARCHAR, status VARCHAR,\n"
          "  amount_minor BIGINT) WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time',\n"
          "  KEY='account_id');\n"
          "CREATE TABLE fails AS SELECT account_id, COUNT(*) AS n FROM g WINDOW TUMBLING (SIZE 10 MINUTES)\n"
          "  WHERE event_type = 'login' AND status = 'bad_password' GROUP BY account_id HAVING COUNT(*) >= 3;\n"
          "CREATE STREAM big AS SELECT account_id, amount_minor FROM g\n"
          "  WHERE event_type = 'deposit' AND amount_minor > 20000 PARTITION BY account_id;\n",
          f);
    fclose(f);
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(4, &b, &err), CEP_OK, "%s", err.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    char err1[] = "/tmp/cep-g1-XXXXXX", err2[] = "/tmp/cep-g2-XXXXXX";
    close(mkstemp(err1));
    close(mkstemp(err2));
    /* both instances join before any record exists, so each keeps its partitions */
    char *argv[] = {"cep", "run", "--rules", path, "--kafka", (char *)bs, "--group", "pair", "--idle-exit-ms", "20000", NULL};
    pid_t p1 = cep_test_spawn(CEP_BINARY, argv, err1), p2 = cep_test_spawn(CEP_BINARY, argv, err2);
    /* wait until the group has settled with partitions on both (they exit 20 s
     * after their last record, or 20 s after starting without one) */
    for (int tries = 0; tries < 150; tries++) {
        int a = cep_test_last_assignment(err1), c = cep_test_last_assignment(err2);
        if (a > 0 && c > 0 && a + c == 4) break;
        usleep(100000);
    }
    cr_assert_eq(cep_test_last_assignment(err1) + cep_test_last_assignment(err2), 4,
                 "the two instances share the 4 partitions");
    cep_test_events_t ev;
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 12000; /* about 3.7 MB over 4 partitions */
    o.seed = 11;
    o.fraud_rate = 0.2;
    cep_test_events_gen(&ev, &o);
    cep_test_events_produce(&ev, bs, "gaming.events");
    cr_assert_eq(cep_test_wait(p1), 0);
    cr_assert_eq(cep_test_wait(p2), 0);
    unsigned long long r1, a1, r2, a2;
    cep_test_run_counts(err1, &r1, &a1);
    cep_test_run_counts(err2, &r2, &a2);
    cr_assert_eq(r1 + r2, 12000, "%llu + %llu records", r1, r2);
    cr_assert_gt(r1, 0, "both instances got partitions");
    cr_assert_gt(r2, 0, "both instances got partitions");
    json_t *pair = json_object();
    last_values(bs, pair);
    /* one instance: the same events replayed from memory */
    json_t *one = json_object();
    cep_ruleset_t *rs = NULL;
    cr_assert_eq(cep_rules_compile_path(path, NULL, &rs, &err), CEP_OK, "%s", err.msg);
    replay(rs, &ev.lines, one);
    cr_assert_gt(json_object_size(one), 10);
    cr_assert_eq(json_object_size(pair), json_object_size(one), "%zu alert ids from the pair, %zu from one",
                 json_object_size(pair), json_object_size(one));
    const char *k;
    json_t *v;
    json_object_foreach(one, k, v)
    {
        json_t *g = json_object_get(pair, k);
        cr_assert_not_null(g, "alert %s missing from the pair", k);
        cr_assert_str_eq(json_string_value(g), json_string_value(v), "alert %s", k);
    }
    json_decref(pair);
    json_decref(one);
    cep_ruleset_free(rs);
    cep_test_events_free(&ev);
    cep_kafka_broker_free(b);
    unlink(err1);
    unlink(err2);
    unlink(path);
    rmdir(packdir);
}

Test(kafka, a_fixed_port_relays_to_the_broker, .timeout = 60)
{
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(1, &b, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(cep_kafka_broker_listen(b, 0, &err), CEP_OK, "%s", err.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    cr_assert(!strncmp(bs, "127.0.0.1:", 10), "%s", bs);
    cep_kafka_producer_t *p = NULL;
    cr_assert_eq(cep_kafka_producer_new(bs, NULL, 0, &p, &err), CEP_OK, "%s", err.msg);
    const char *hn[] = {"rule", "alert_id"}, *hv[] = {"R", "R/k/1"};
    cr_assert_eq(cep_kafka_produce(p, "cep.alerts", "k", 1, "{\"N\":1}", 7, 1, hn, hv, 2, &err), CEP_OK);
    cr_assert_eq(cep_kafka_producer_flush(p, 20000), 0);
    cep_kafka_producer_free(p);
    json_t *got = cep_test_read_topic(bs, "cep.alerts", NULL, NULL);
    cr_assert_eq(json_object_size(got), 1);
    cr_assert_str_eq(json_string_value(json_object_get(got, "R/k/1")), "{\"N\":1}");
    json_decref(got);
    cep_kafka_broker_free(b);
}

/* A shadow rule runs beside its live twin on the same traffic: the twin's
 * alerts go to cep.alerts, the shadow's to cep.alerts.shadow with a
 * "mode: shadow" header, even though it names cep.alerts as its topic, and
 * nothing of the shadow's reaches cep.alerts. */
Test(kafka, shadow_rules_alert_on_their_own_topic_marked, .timeout = 120)
{
    cep_test_events_t ev;
    cep_kafka_broker_t *b = broker_with_events(4000, 5, &ev);
    const char *bs = cep_kafka_broker_bootstrap(b);
    cep_error_t err;
    cep_error_clear(&err);

    const char *twins =
        "CREATE STREAM ev (account_id VARCHAR, event_type VARCHAR, event_time BIGINT)\n"
        "  WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time', KEY='account_id');\n"
        "CREATE TABLE busy WITH (SEVERITY='low') AS SELECT account_id, COUNT(*) AS n FROM ev\n"
        "  WINDOW TUMBLING (SIZE 10 MINUTES) GROUP BY account_id HAVING COUNT(*) >= 8 EMIT CHANGES;\n"
        "CREATE TABLE busy_candidate WITH (KAFKA_TOPIC='cep.alerts', MODE='shadow', SEVERITY='low') AS\n"
        "  SELECT account_id, COUNT(*) AS n FROM ev\n"
        "  WINDOW TUMBLING (SIZE 10 MINUTES) GROUP BY account_id HAVING COUNT(*) >= 8 EMIT CHANGES;\n";
    cep_ruleset_t *rs = cep_test_compile("twins.sql", twins, NULL);
    cep_kafka_run_opts_t ro = {.bootstrap = bs, .group = "cep-shadow", .idle_exit_ms = 1500};
    cep_kafka_run_stats_t st;
    cr_assert_eq(cep_kafka_run(rs, &ro, &st, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(st.records, 4000);

    size_t live_records = 0, shadow_records = 0;
    json_t *live = cep_test_read_topic_header(bs, "cep.alerts", "mode", &live_records);
    json_t *shadow = cep_test_read_topic_header(bs, CEP_SHADOW_TOPIC, "mode", &shadow_records);
    cr_assert_gt(json_object_size(live), 10, "the live twin fires (%zu alerts)", json_object_size(live));
    cr_assert_eq(json_object_size(shadow), json_object_size(live), "%zu shadow alerts, %zu live",
                 json_object_size(shadow), json_object_size(live));
    cr_assert_eq(shadow_records, live_records, "every update of the twin has its shadow");
    cr_assert_eq(st.alerts, live_records + shadow_records, "%llu alerts produced, %zu + %zu read",
                 (unsigned long long)st.alerts, live_records, shadow_records);
    const char *id;
    json_t *mark;
    json_object_foreach(live, id, mark)
    {
        cr_assert(!strncmp(id, "BUSY/", 5), "only the live rule on cep.alerts: %s", id);
        cr_assert(json_is_null(mark), "a live alert carries no mode header: %s", id);
        /* its twin: the same key and window under the other rule's name */
        char twin[512];
        snprintf(twin, sizeof twin, "BUSY_CANDIDATE/%s", id + 5);
        json_t *sm = json_object_get(shadow, twin);
        cr_assert_not_null(sm, "shadow twin of %s missing", id);
        cr_assert_str_eq(json_string_value(sm), "shadow");
    }
    json_decref(live);
    json_decref(shadow);
    cep_ruleset_free(rs);
    cep_test_events_free(&ev);
    cep_kafka_broker_free(b);
}
