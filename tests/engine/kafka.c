/*
 * Kafka in, alerts out, over TCP on loopback against the embedded broker
 * (librdkafka's mock cluster, a real Kafka protocol endpoint) started here:
 * the alerts read back from cep.alerts equal, as a set of alert ids and
 * values, the alerts of the same events replayed from memory; malformed
 * records land in cep.dlq with their reason and the run goes on.
 */
#include "bench/gen.h"
#include "engine/kafka.h"
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

typedef struct events {
    cep_buf_t lines;
    cep_kafka_producer_t *prod;
    uint64_t n;
} events_t;

static void keep_event(void *ctx, const char *key, size_t klen, const char *json, size_t n)
{
    events_t *e = ctx;
    cep_buf_put(&e->lines, json, n);
    cep_buf_putc(&e->lines, '\n');
    cr_assert_eq(cep_kafka_produce(e->prod, "gaming.events", key, klen, json, n, 0, NULL, NULL, 0, NULL), CEP_OK);
    e->n++;
}

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

static json_t *read_topic(const char *bootstrap, const char *topic, json_t *reasons)
{
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    char group[128];
    snprintf(group, sizeof group, "test-reader-%s", topic);
    rd_kafka_conf_set(c, "group.id", group, errstr, sizeof errstr);
    rd_kafka_conf_set(c, "auto.offset.reset", "earliest", errstr, sizeof errstr);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    cr_assert_not_null(rk, "%s", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    json_t *set = json_object();
    uint64_t start = cep_now_ns(), last = 0;
    /* the topic may have several partitions: read until every one has hit
     * its end and nothing arrived for 1.5 s */
    int eofs = 0;
    while (cep_now_ns() - start < 60000000000ULL) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (eofs && cep_now_ns() - last > 1500000000ULL) break;
            continue;
        }
        last = cep_now_ns();
        if (m->err) {
            eofs += m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
            rd_kafka_message_destroy(m);
            continue;
        }
        rd_kafka_headers_t *h = NULL;
        const void *id = NULL, *reason = NULL;
        size_t idn = 0, rn = 0;
        if (!rd_kafka_message_headers(m, &h)) {
            rd_kafka_header_get_last(h, "alert_id", &id, &idn);
            rd_kafka_header_get_last(h, "reason", &reason, &rn);
        }
        char key[512];
        if (id) {
            snprintf(key, sizeof key, "%.*s", (int)idn, (const char *)id);
            char *v = strndup(m->payload ? (const char *)m->payload : "null", m->payload ? m->len : 4);
            json_object_set_new(set, key, json_string(v));
            free(v);
        } else if (reason && reasons) {
            char *r = strndup(reason, rn);
            json_array_append_new(reasons, json_string(r));
            free(r);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return set;
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
    events_t ev = {0};
    cep_buf_init(&ev.lines);
    cr_assert_eq(cep_kafka_producer_new(bs, NULL, 0, &ev.prod, &err), CEP_OK, "%s", err.msg);
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 6000; /* under the embedded broker's 5 MB per partition */
    o.seed = 77;
    o.fraud_rate = 0.25;
    cep_gen_sink_t sink = {keep_event, NULL, &ev};
    cr_assert_eq(cep_gen_run(&o, &sink, NULL, NULL), CEP_OK);
    const char *bad1 = "{\"event_id\":\"x1\",\"event_type\":\"login\"";
    const char *bad2 = "{\"event_id\":\"x2\",\"event_type\":\"login\",\"event_time\":\"soon\",\"account_id\":\"p-1\"}";
    cr_assert_eq(cep_kafka_produce(ev.prod, "gaming.events", "p-1", 3, bad1, strlen(bad1), 0, NULL, NULL, 0, NULL), CEP_OK);
    cr_assert_eq(cep_kafka_produce(ev.prod, "gaming.events", "p-1", 3, bad2, strlen(bad2), 0, NULL, NULL, 0, NULL), CEP_OK);
    cr_assert_eq(cep_kafka_producer_flush(ev.prod, 30000), 0);
    cep_kafka_producer_free(ev.prod);

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
    json_t *got = read_topic(bs, "cep.alerts", NULL);
    json_t *dlq = read_topic(bs, "cep.dlq", reasons);
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
    cep_buf_free(&ev.lines);
    cep_ruleset_free(rs);
    cep_kafka_broker_free(b);
}

#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static pid_t spawn_cep(char *const argv[], const char *errfile)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, CEP_BINARY, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* "cep run: R records, A alerts, D dead letters" from a run's stderr */
static void run_counts(const char *errfile, unsigned long long *records, unsigned long long *alerts)
{
    char *text;
    size_t n;
    cr_assert_eq(cep_file_read(errfile, &text, &n, NULL), CEP_OK);
    const char *line = strstr(text, "cep run: ");
    cr_assert_not_null(line, "no summary in: %s", text);
    cr_assert_eq(sscanf(line, "cep run: %llu records, %llu alerts", records, alerts), 2, "%s", line);
    free(text);
}

Test(kafka, sigterm_mid_run_loses_nothing_acknowledged, .timeout = 120)
{
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(1, &b, &err), CEP_OK, "%s", err.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    events_t ev = {0};
    cep_buf_init(&ev.lines);
    cr_assert_eq(cep_kafka_producer_new(bs, NULL, 0, &ev.prod, &err), CEP_OK, "%s", err.msg);
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 6000;
    o.seed = 5;
    o.fraud_rate = 0.25;
    cep_gen_sink_t sink = {keep_event, NULL, &ev};
    cr_assert_eq(cep_gen_run(&o, &sink, NULL, NULL), CEP_OK);
    cr_assert_eq(cep_kafka_producer_flush(ev.prod, 30000), 0);
    cep_kafka_producer_free(ev.prod);

    char errfile[] = "/tmp/cep-sigterm-XXXXXX";
    int fd = mkstemp(errfile);
    cr_assert_geq(fd, 0);
    close(fd);
    char *argv1[] = {"cep", "run", "--rules", "rules/demo", "--kafka", (char *)bs, "--group", "g-term", NULL};
    pid_t pid = spawn_cep(argv1, errfile);
    sleep(5); /* it joins the group and consumes for a while */
    cr_assert_eq(kill(pid, SIGTERM), 0);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "SIGTERM ends the run with exit 0");
    unsigned long long records1, alerts1;
    run_counts(errfile, &records1, &alerts1);
    cr_assert_gt(records1, 0);
    /* every alert the run counted as produced is on the topic */
    json_t *got = read_topic(bs, "cep.alerts", NULL);
    cr_assert_eq(json_object_size(got), alerts1, "%zu alerts on cep.alerts, %llu acknowledged",
                 json_object_size(got), alerts1);
    /* the same group resumes where the first run committed: nothing twice, nothing skipped */
    char *argv2[] = {"cep", "run", "--rules", "rules/demo", "--kafka", (char *)bs, "--group", "g-term",
                     "--idle-exit-ms", "1500", NULL};
    pid = spawn_cep(argv2, errfile);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    unsigned long long records2, alerts2;
    run_counts(errfile, &records2, &alerts2);
    cr_assert_eq(records1 + records2, 6000, "%llu + %llu records", records1, records2);
    unlink(errfile);
    json_decref(got);
    cep_buf_free(&ev.lines);
    cep_kafka_broker_free(b);
}

/* alert id -> the last value seen for it (EMIT CHANGES updates keep their id) */
static void last_values(const char *bootstrap, json_t *into)
{
    json_t *got = read_topic(bootstrap, "cep.alerts", NULL);
    const char *k;
    json_t *v;
    json_object_foreach(got, k, v) json_object_set(into, k, v);
    json_decref(got);
}

/* the partition count of the last "N partition(s) assigned" line a run logged */
static int last_assignment(const char *errfile)
{
    char *text = NULL;
    size_t n;
    if (cep_file_read(errfile, &text, &n, NULL) != CEP_OK) return 0;
    int count = 0;
    for (const char *p = text; (p = strstr(p, "partition(s) assigned"));) {
        const char *q = p;
        while (q > text && q[-1] != ' ') q--;
        while (q > text && q[-1] == ' ') q--;
        while (q > text && q[-1] >= '0' && q[-1] <= '9') q--;
        count = atoi(q);
        p += 21;
    }
    free(text);
    return count;
}

Test(kafka, two_processes_in_one_group_equal_one, .timeout = 180)
{
    /* rules keyed by account, the topic keyed by account: each instance sees all of a key */
    char packdir[] = "/tmp/cep-pack-XXXXXX";
    cr_assert_not_null(mkdtemp(packdir));
    char path[256];
    snprintf(path, sizeof path, "%s/pack.sql", packdir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("CREATE STREAM g (account_id VARCHAR, event_time BIGINT, event_type VARCHAR, status VARCHAR,\n"
          "  amount_minor BIGINT) WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time');\n"
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
    pid_t p1 = spawn_cep(argv, err1), p2 = spawn_cep(argv, err2);
    /* wait until the group has settled with partitions on both (they exit 20 s
     * after their last record, or 20 s after starting without one) */
    for (int tries = 0; tries < 150; tries++) {
        int a = last_assignment(err1), c = last_assignment(err2);
        if (a > 0 && c > 0 && a + c == 4) break;
        usleep(100000);
    }
    cr_assert_eq(last_assignment(err1) + last_assignment(err2), 4, "the two instances share the 4 partitions");
    events_t ev = {0};
    cep_buf_init(&ev.lines);
    cr_assert_eq(cep_kafka_producer_new(bs, NULL, 0, &ev.prod, &err), CEP_OK, "%s", err.msg);
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 12000; /* about 3.7 MB over 4 partitions */
    o.seed = 11;
    o.fraud_rate = 0.2;
    cep_gen_sink_t sink = {keep_event, NULL, &ev};
    cr_assert_eq(cep_gen_run(&o, &sink, NULL, NULL), CEP_OK);
    cr_assert_eq(cep_kafka_producer_flush(ev.prod, 30000), 0);
    cep_kafka_producer_free(ev.prod);
    int st1 = 0, st2 = 0;
    cr_assert_eq(waitpid(p1, &st1, 0), p1);
    cr_assert_eq(waitpid(p2, &st2, 0), p2);
    cr_assert(WIFEXITED(st1) && !WEXITSTATUS(st1) && WIFEXITED(st2) && !WEXITSTATUS(st2));
    unsigned long long r1, a1, r2, a2;
    run_counts(err1, &r1, &a1);
    run_counts(err2, &r2, &a2);
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
    cep_buf_free(&ev.lines);
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
    json_t *got = read_topic(bs, "cep.alerts", NULL);
    cr_assert_eq(json_object_size(got), 1);
    cr_assert_str_eq(json_string_value(json_object_get(got, "R/k/1")), "{\"N\":1}");
    json_decref(got);
    cep_kafka_broker_free(b);
}
