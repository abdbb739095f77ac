/*
 * backtest.c — `cep backtest`: its alerts are `cep run`'s on the same
 * events, and its figures are exact on a small hand-labeled history.
 */
#include "../support/kafka_support.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&buf, &cap, '\0', f);
    fclose(f);
    cr_assert_geq(n, 0);
    return buf;
}

static int run(char *const argv[], const char *errfile)
{
    return cep_test_wait(cep_test_spawn(CEP_BINARY, argv, errfile));
}

Test(backtest, alerts_equal_those_of_cep_run_on_the_same_events, .timeout = 120)
{
    char events[] = "/tmp/cep-bt-ev-XXXXXX", labels[] = "/tmp/cep-bt-lab-XXXXXX", a1[] = "/tmp/cep-bt-a1-XXXXXX",
         a2[] = "/tmp/cep-bt-a2-XXXXXX", err[] = "/tmp/cep-bt-err-XXXXXX", d1[] = "/tmp/cep-bt-d1-XXXXXX",
         d2[] = "/tmp/cep-bt-d2-XXXXXX";
    char *files[] = {events, labels, a1, a2, err, d1, d2};
    for (int i = 0; i < 7; i++) close(mkstemp(files[i]));
    char *gen[] = {"cep", "gen", "--domain", "gaming", "--events", "60000", "--seed", "7", "--output", events,
                   "--labels", labels, NULL};
    cr_assert_eq(run(gen, err), 0);
    FILE *f = fopen(events, "a"); /* two records that cannot be read, at the end */
    fputs("{\"event_id\":\"x1\",\"event_type\":\"login\"\n"
          "{\"event_id\":\"x2\",\"event_type\":\"login\",\"event_time\":\"soon\",\"account_id\":\"p-1\"}\n",
          f);
    fclose(f);
    char *runv[] = {"cep", "run", "--rules", "rules/demo", "--input", events, "--output", a1, "--dead-letters", d1,
                    "--no-reload", NULL};
    cr_assert_eq(run(runv, err), 0);
    char *btv[] = {"cep", "backtest", "--rules", "rules/demo", "--input", events, "--labels", labels,
                   "--alerts", a2, "--dead-letters", d2, "--quiet", NULL};
    cr_assert_eq(run(btv, err), 0);
    char *x = slurp(a1), *y = slurp(a2), *dx = slurp(d1), *dy = slurp(d2);
    size_t lines = 0;
    for (const char *p = x; *p; p++) lines += *p == '\n';
    cr_assert_gt(lines, 50, "the demo pack alerts on generated traffic");
    cr_assert_str_eq(x, y, "the same alert lines, in the same order");
    cr_assert(strstr(dx, "\"line\":60002,\"offset\":57"), "cep run's dead letters:\n%s", dx);
    cr_assert_str_eq(dx, dy, "the same dead letters");
    free(y);
    free(dy);
    /* the rules split over threads (shares, nested queries and patterns
     * kept together): the same lines in the same order, the same report */
    char r1[] = "/tmp/cep-bt-r1-XXXXXX", r2[] = "/tmp/cep-bt-r2-XXXXXX";
    close(mkstemp(r1));
    close(mkstemp(r2));
    char *one[] = {"cep", "backtest", "--rules", "rules/demo", "--input", events, "--labels", labels, "--json", r1,
                   "--quiet", NULL};
    cr_assert_eq(run(one, err), 0);
    json_t *want = json_load_file(r1, 0, NULL);
    cr_assert(want);
    json_object_del(want, "wall_s");
    json_object_del(want, "events_per_s");
    char *threads[] = {"2", "3"};
    for (int t = 0; t < 2; t++) {
        char *btt[] = {"cep", "backtest", "--rules", "rules/demo", "--input", events, "--labels", labels, "--alerts",
                       a2, "--json", r2, "--dead-letters", d2, "--threads", threads[t], "--quiet", NULL};
        cr_assert_eq(run(btt, err), 0);
        y = slurp(a2);
        dy = slurp(d2);
        cr_assert_str_eq(x, y, "%s threads: the same alert lines, in the same order", threads[t]);
        cr_assert_str_eq(dx, dy, "%s threads: the same dead letters", threads[t]);
        free(y);
        free(dy);
        json_t *got = json_load_file(r2, 0, NULL);
        cr_assert(got);
        json_object_del(got, "wall_s");
        json_object_del(got, "events_per_s");
        cr_assert(json_equal(got, want), "%s threads: the same report", threads[t]);
        json_decref(got);
    }
    json_decref(want);
    free(x);
    free(dx);
    unlink(r1);
    unlink(r2);
    for (int i = 0; i < 7; i++) unlink(files[i]);
}

/* ---- a hand-labeled history ------------------------------------------------------ */

#define PACK                                                                                                  \
    "CREATE STREAM ev (event_id VARCHAR, event_type VARCHAR, event_time BIGINT, account_id VARCHAR,\n"         \
    "  amount_minor BIGINT) WITH (KAFKA_TOPIC='bt.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time',\n"   \
    "  KEY='account_id');\n"                                                                                  \
    "CREATE TABLE deposits WITH (TAGS='deposit_velocity', SEVERITY='high') AS\n"                              \
    "  SELECT account_id, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 1 MINUTE)\n"                           \
    "  WHERE event_type = 'deposit' GROUP BY account_id HAVING COUNT(*) >= 3;\n"                              \
    "CREATE STREAM big_out WITH (TAGS='large_withdrawal') AS SELECT account_id, amount_minor FROM ev\n"       \
    "  WHERE event_type = 'withdrawal' AND amount_minor >= 100000;\n"

#define T0 1700000000000LL /* in the hour that starts at 1699999200000 */

static void event(FILE *f, const char *id, const char *type, long long dt_s, const char *acct, long amount)
{
    fprintf(f,
            "{\"event_id\":\"%s\",\"event_type\":\"%s\",\"event_time\":%lld,\"account_id\":\"%s\","
            "\"amount_minor\":%ld}\n",
            id, type, T0 + dt_s * 1000, acct, amount);
}

/* The entry of rule `name` in the "rules" array of a report or of its diff. */
static json_t *rule(json_t *report, const char *name)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(report, "rules"), i, r) if (!strcmp(json_string_value(json_object_get(r, "rule")),
                                                                         name)) return r;
    cr_assert_fail("no rule %s in the report", name);
    return NULL;
}

static void assert_json(json_t *got, const char *want, const char *what)
{
    json_error_t je;
    json_t *w = json_loads(want, 0, &je);
    cr_assert(w, "bad expectation: %s", je.text);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT), *ws = json_dumps(w, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(g, ws, "%s", what);
    free(g);
    free(ws);
    json_decref(w);
}

/* v1 (PACK): deposits fires for a1 at 3 and 4 and for b2 at 3 (a false alert);
 * big_out for a1 (true) and d4 (a legit customer); c3's deposits fall in two
 * windows and nothing catches them */
static void hand_history(const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    event(f, "e1", "deposit", 0, "a1", 5000);
    event(f, "e2", "deposit", 10, "a1", 5000);  /* v2: a1 at 2 */
    event(f, "e3", "deposit", 12, "b2", 900);
    event(f, "e4", "deposit", 15, "b2", 900);   /* v2: b2 at 2 */
    event(f, "e5", "deposit", 20, "a1", 5000);  /* both: a1 at 3 */
    event(f, "e6", "deposit", 25, "b2", 900);   /* both: b2 at 3 */
    event(f, "e7", "deposit", 30, "a1", 5000);  /* both: a1 at 4 */
    event(f, "e8", "deposit", 5, "c3", 7000);   /* the window starts 20 s before T0: */
    event(f, "e9", "deposit", 70, "c3", 7000);  /* c3's two deposits fall in two windows */
    event(f, "e10", "withdrawal", 90, "a1", 200000);
    event(f, "e11", "withdrawal", 95, "d4", 150000);
    event(f, "e12", "withdrawal", 99, "e5", 500);
    fclose(f);
}

/* a1's deposits and c3's are one deposit_velocity instance each; a1's
 * big withdrawal is cash_out; e3 and e11 are known good */
static void hand_labels(const char *path)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    const char *velocity[] = {"e1", "e2", "e5", "e7"};
    for (int i = 0; i < 4; i++)
        fprintf(f, "{\"event_id\":\"%s\",\"label\":\"fraud\",\"scenario\":\"deposit_velocity\",\"instance\":1}\n",
                velocity[i]);
    fprintf(f, "{\"event_id\":\"e8\",\"label\":\"fraud\",\"scenario\":\"deposit_velocity\",\"instance\":2}\n");
    fprintf(f, "{\"event_id\":\"e9\",\"label\":\"fraud\",\"scenario\":\"deposit_velocity\",\"instance\":2}\n");
    fprintf(f, "\n{\"event_id\":\"e10\",\"label\":\"abuse\",\"scenario\":\"cash_out\"}\n"); /* no instance: per account */
    fprintf(f, "{\"event_id\":\"e3\",\"label\":\"legit\",\"scenario\":\"household\"}\n");
    fprintf(f, "{\"event_id\":\"e11\",\"label\":\"legit\",\"scenario\":\"high_roller\"}\n");
    fclose(f);
}

Test(backtest, precision_recall_value_and_delay_on_a_hand_labeled_history, .timeout = 60)
{
    char pack[] = "/tmp/cep-bt-pack-XXXXXX", events[] = "/tmp/cep-bt-ev-XXXXXX", labels[] = "/tmp/cep-bt-lab-XXXXXX",
         report[] = "/tmp/cep-bt-rep-XXXXXX", err[] = "/tmp/cep-bt-err-XXXXXX";
    char *files[] = {pack, events, labels, report, err};
    for (int i = 0; i < 5; i++) close(mkstemp(files[i]));
    write_text(pack, PACK);
    hand_history(events);
    hand_labels(labels);
    char *btv[] = {"cep", "backtest", "--rules", pack, "--input", events, "--labels", labels, "--json", report, "--quiet",
                   NULL};
    cr_assert_eq(run(btv, err), 0);
    json_error_t je;
    json_t *rep = json_load_file(report, 0, &je);
    cr_assert(rep, "%s", je.text);
    cr_assert_eq(json_integer_value(json_object_get(rep, "events")), 12);
    assert_json(json_object_get(rep, "event_time"), "{\"from\":1700000000000,\"to\":1700000099000}", "event time");
    assert_json(json_object_get(rep, "scenarios"),
                "{\"deposit_velocity\":{\"instances\":2,\"caught\":1,\"recall\":0.5,\"value_minor\":34000,"
                "\"caught_value_minor\":20000},"
                "\"cash_out\":{\"instances\":1,\"caught\":1,\"recall\":1.0,\"value_minor\":200000,"
                "\"caught_value_minor\":200000}}",
                "per scenario, by any rule");

    json_t *dep = rule(rep, "DEPOSITS");
    cr_assert_eq(json_integer_value(json_object_get(dep, "alerts")), 3);
    cr_assert_eq(json_integer_value(json_object_get(dep, "true_alerts")), 2, "a1's two alerts cover its labeled deposits");
    cr_assert_float_eq(json_real_value(json_object_get(dep, "precision")), 2.0 / 3.0, 1e-12);
    cr_assert_float_eq(json_real_value(json_object_get(dep, "recall")), 0.5, 1e-12, "its tagged scenario");
    assert_json(json_object_get(dep, "per_hour"), "[[1699999200000,3]]", "alerts per hour");
    assert_json(json_object_get(dep, "top_keys"), "[[\"a1\",2],[\"b2\",1]]", "top keys");
    assert_json(json_object_get(dep, "scenarios"),
                "{\"deposit_velocity\":{\"instances\":2,\"caught\":1,\"recall\":0.5,\"caught_value_minor\":20000,"
                "\"detection_delay_ms\":{\"min\":20000,\"median\":20000,\"max\":20000}}}",
                "caught 20 s after the instance's first event");
    json_t *sample = json_array_get(json_object_get(dep, "samples"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(sample, "event"), "event_id")), "e5",
                     "the first sample shows the event that made it");
    cr_assert_eq(json_array_size(json_object_get(dep, "samples")), 3);

    json_t *big = rule(rep, "BIG_OUT");
    cr_assert_eq(json_integer_value(json_object_get(big, "alerts")), 2);
    cr_assert_eq(json_integer_value(json_object_get(big, "true_alerts")), 1);
    cr_assert_float_eq(json_real_value(json_object_get(big, "precision")), 0.5, 1e-12);
    cr_assert(json_is_null(json_object_get(big, "recall")), "no instance of its tagged scenario in the labels");
    assert_json(json_object_get(big, "scenarios"),
                "{\"cash_out\":{\"instances\":1,\"caught\":1,\"recall\":1.0,\"caught_value_minor\":200000,"
                "\"detection_delay_ms\":{\"min\":0,\"median\":0,\"max\":0}}}",
                "caught by the event itself");
    json_decref(rep);
    for (int i = 0; i < 5; i++) unlink(files[i]);
}

Test(backtest, a_bad_label_line_is_an_error_with_its_line, .timeout = 30)
{
    char pack[] = "/tmp/cep-bt-pack-XXXXXX", events[] = "/tmp/cep-bt-ev-XXXXXX", labels[] = "/tmp/cep-bt-lab-XXXXXX",
         err[] = "/tmp/cep-bt-err-XXXXXX";
    char *files[] = {pack, events, labels, err};
    for (int i = 0; i < 4; i++) close(mkstemp(files[i]));
    write_text(pack, PACK);
    write_text(events, "");
    write_text(labels, "{\"event_id\":\"e1\",\"label\":\"fraud\"}\n{\"event_id\":7}\n");
    char *btv[] = {"cep", "backtest", "--rules", pack, "--input", events, "--labels", labels, "--quiet", NULL};
    cr_assert_eq(run(btv, err), 1);
    char want[200];
    snprintf(want, sizeof want, "cep backtest: %s:2: a label needs \"event_id\" and \"label\" strings", labels);
    cr_assert(cep_test_file_has(err, want), "the reason, with the file and line");
    for (int i = 0; i < 4; i++) unlink(files[i]);
}

/* ---- the pack diff ------------------------------------------------------------------ */

/* the next version: deposits at two (its state still fits), big_out gone,
 * small_out new and on probation */
#define PACK_V2                                                                                               \
    "CREATE STREAM ev (event_id VARCHAR, event_type VARCHAR, event_time BIGINT, account_id VARCHAR,\n"         \
    "  amount_minor BIGINT) WITH (KAFKA_TOPIC='bt.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time',\n"   \
    "  KEY='account_id');\n"                                                                                  \
    "CREATE TABLE deposits WITH (TAGS='deposit_velocity', SEVERITY='high') AS\n"                              \
    "  SELECT account_id, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 1 MINUTE)\n"                           \
    "  WHERE event_type = 'deposit' GROUP BY account_id HAVING COUNT(*) >= 2;\n"                              \
    "CREATE STREAM small_out WITH (MODE='shadow') AS SELECT account_id, amount_minor FROM ev\n"               \
    "  WHERE event_type = 'withdrawal' AND amount_minor < 100000;\n"

/* the alert's key and value, compactly: "\"a1\" {\"N\":2}" */
static void assert_alert(json_t *alert, const char *want)
{
    char *k = json_dumps(json_object_get(alert, "key"), JSON_ENCODE_ANY | JSON_COMPACT);
    char *v = json_dumps(json_object_get(alert, "value"), JSON_SORT_KEYS | JSON_COMPACT);
    char got[256];
    snprintf(got, sizeof got, "%s %s", k, v);
    free(k);
    free(v);
    cr_assert_str_eq(got, want);
}

Test(backtest, the_pack_diff_is_exact_on_two_versions, .timeout = 60)
{
    char v1[] = "/tmp/cep-bt-v1-XXXXXX", v2[] = "/tmp/cep-bt-v2-XXXXXX", events[] = "/tmp/cep-bt-ev-XXXXXX",
         report[] = "/tmp/cep-bt-rep-XXXXXX", alerts[] = "/tmp/cep-bt-al-XXXXXX", err[] = "/tmp/cep-bt-err-XXXXXX";
    char *files[] = {v1, v2, events, report, alerts, err};
    for (int i = 0; i < 6; i++) close(mkstemp(files[i]));
    write_text(v1, PACK);
    write_text(v2, PACK_V2);
    hand_history(events);
    char *btv[] = {"cep", "backtest", "--rules", v2, "--baseline", v1, "--input", events, "--json", report,
                   "--alerts", alerts, "--quiet", NULL};
    cr_assert_eq(run(btv, err), 0);
    json_error_t je;
    json_t *rep = json_load_file(report, 0, &je);
    cr_assert(rep, "%s", je.text);
    json_t *base = json_object_get(rep, "baseline");
    cr_assert_str_eq(json_string_value(json_object_get(base, "pack")), v1);
    /* v1: deposits a1@3, a1@4, b2@3; big_out a1, d4. v2: deposits a1@2, b2@2 and those three; small_out e5 */
    cr_assert_eq(json_integer_value(json_object_get(base, "alerts")), 6);
    cr_assert_eq(json_integer_value(json_object_get(base, "baseline_alerts")), 5);
    cr_assert_eq(json_integer_value(json_object_get(base, "added")), 3);
    cr_assert_eq(json_integer_value(json_object_get(base, "removed")), 2);
    cr_assert_eq(json_integer_value(json_object_get(base, "unchanged")), 3);
    cr_assert_eq(json_array_size(json_object_get(base, "rules")), 3, "deposits, small_out, then big_out");

    json_t *dep = rule(base, "DEPOSITS");
    cr_assert_str_eq(json_string_value(json_object_get(dep, "change")), "changed");
    json_t *counts = json_pack("[IIIII]", json_integer_value(json_object_get(dep, "alerts")),
                               json_integer_value(json_object_get(dep, "baseline_alerts")),
                               json_integer_value(json_object_get(dep, "added")),
                               json_integer_value(json_object_get(dep, "removed")),
                               json_integer_value(json_object_get(dep, "unchanged")));
    assert_json(counts, "[5,3,2,0,3]", "deposits: alerts, baseline alerts, added, removed, unchanged");
    json_decref(counts);
    json_t *added = json_object_get(dep, "added_samples");
    cr_assert_eq(json_array_size(added), 2);
    assert_alert(json_array_get(added, 0), "\"a1\" {\"N\":2}");
    assert_alert(json_array_get(added, 1), "\"b2\" {\"N\":2}");
    cr_assert_eq(json_array_size(json_object_get(dep, "removed_samples")), 0);

    json_t *small = rule(base, "SMALL_OUT");
    cr_assert_str_eq(json_string_value(json_object_get(small, "change")), "added");
    cr_assert_eq(json_integer_value(json_object_get(small, "added")), 1);
    assert_alert(json_array_get(json_object_get(small, "added_samples"), 0), "null {\"ACCOUNT_ID\":\"e5\",\"AMOUNT_MINOR\":500}");

    json_t *big = rule(base, "BIG_OUT");
    cr_assert_str_eq(json_string_value(json_object_get(big, "change")), "removed");
    cr_assert_eq(json_integer_value(json_object_get(big, "alerts")), 0);
    cr_assert_eq(json_integer_value(json_object_get(big, "removed")), 2);
    json_t *removed = json_object_get(big, "removed_samples");
    assert_alert(json_array_get(removed, 0), "null {\"ACCOUNT_ID\":\"a1\",\"AMOUNT_MINOR\":200000}");
    assert_alert(json_array_get(removed, 1), "null {\"ACCOUNT_ID\":\"d4\",\"AMOUNT_MINOR\":150000}");

    /* the shadow rule runs in the backtest, marked as it is live */
    cr_assert_str_eq(json_string_value(json_object_get(rule(rep, "SMALL_OUT"), "mode")), "shadow");
    char *lines = slurp(alerts);
    const char *at = strstr(lines, "\"rule\":\"SMALL_OUT\"");
    cr_assert(at && strstr(at, "\"mode\":\"shadow\""), "the shadow alert line is marked:\n%s", lines);
    int marked = 0;
    for (const char *m = lines; (m = strstr(m, "\"mode\":\"shadow\"")); m++) marked++;
    cr_assert_eq(marked, 1, "only its one alert is marked");
    free(lines);
    json_decref(rep);
    for (int i = 0; i < 6; i++) unlink(files[i]);
}

/* ---- a time range of a Kafka topic ------------------------------------------------- */

#define KT0 1767225600000LL /* 2026-01-01T00:00:00Z */

Test(backtest, a_kafka_time_range_replays_exactly_its_records, .timeout = 120)
{
    cep_kafka_broker_t *b = NULL;
    cep_error_t e;
    cep_error_clear(&e);
    cr_assert_eq(cep_kafka_broker_new(1, &b, &e), CEP_OK, "%s", e.msg);
    cr_assert_eq(cep_kafka_broker_topic(b, "bt.events", 2, &e), CEP_OK, "%s", e.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    /* 400 events a second apart, 8 accounts over 2 partitions, stamped with their event time */
    cep_kafka_producer_t *p = NULL;
    cr_assert_eq(cep_kafka_producer_new(bs, NULL, 0, &p, &e), CEP_OK, "%s", e.msg);
    for (int i = 0; i < 400; i++) {
        char acct[8], line[200];
        snprintf(acct, sizeof acct, "a%d", i % 8);
        int n = snprintf(line, sizeof line,
                         "{\"event_id\":\"e%d\",\"event_type\":\"deposit\",\"event_time\":%lld,\"account_id\":\"%s\","
                         "\"amount_minor\":100}",
                         i, KT0 + i * 1000LL, acct);
        cr_assert_eq(cep_kafka_produce(p, "bt.events", acct, strlen(acct), line, (size_t)n, KT0 + i * 1000LL, NULL,
                                       NULL, 0, NULL),
                     CEP_OK);
    }
    cr_assert_eq(cep_kafka_producer_flush(p, 30000), 0);
    cep_kafka_producer_free(p);

    char pack[] = "/tmp/cep-bt-pack-XXXXXX", alerts[] = "/tmp/cep-bt-al-XXXXXX", report[] = "/tmp/cep-bt-rep-XXXXXX",
         err[] = "/tmp/cep-bt-err-XXXXXX";
    char *files[] = {pack, alerts, report, err};
    for (int i = 0; i < 4; i++) close(mkstemp(files[i]));
    write_text(pack, "CREATE STREAM ev (event_id VARCHAR, event_time BIGINT, account_id VARCHAR)\n"
                     "  WITH (KAFKA_TOPIC='bt.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time', KEY='account_id');\n"
                     "CREATE STREAM seen AS SELECT account_id, event_id FROM ev;\n");
    /* [00:01:40, 00:04:10): events 100 to 249 */
    char to[32];
    snprintf(to, sizeof to, "%lld", KT0 + 250000LL);
    char *btv[] = {"cep", "backtest", "--rules", pack, "--kafka", (char *)bs, "--from", "2026-01-01T00:01:40Z",
                   "--to", to, "--alerts", alerts, "--json", report, "--quiet", NULL};
    cr_assert_eq(run(btv, err), 0);
    bool seen[400] = {false};
    int n = 0;
    FILE *f = fopen(alerts, "r");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *a = json_loads(line, 0, NULL);
        cr_assert(a, "an alert line: %s", line);
        const char *id = json_string_value(json_object_get(json_object_get(a, "value"), "EVENT_ID"));
        cr_assert(id && id[0] == 'e', "%s", line);
        int k = atoi(id + 1);
        cr_assert(k >= 100 && k < 250, "event %d is outside the range", k);
        cr_assert(!seen[k], "event %d read twice", k);
        seen[k] = true;
        n++;
        json_decref(a);
    }
    free(line);
    fclose(f);
    cr_assert_eq(n, 150, "every event of the range (%d)", n);
    json_t *rep = json_load_file(report, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(rep, "events")), 150);
    assert_json(json_object_get(rep, "event_time"), "{\"from\":1767225700000,\"to\":1767225849000}", "event time");
    json_decref(rep);

    /* no range: the whole topic; a range after its end: nothing */
    char *all[] = {"cep", "backtest", "--rules", pack, "--kafka", (char *)bs, "--json", report, "--quiet", NULL};
    cr_assert_eq(run(all, err), 0);
    rep = json_load_file(report, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(rep, "events")), 400);
    json_decref(rep);
    char *later[] = {"cep", "backtest", "--rules", pack, "--kafka", (char *)bs, "--from", "2026-01-02", "--json",
                     report, "--quiet", NULL};
    cr_assert_eq(run(later, err), 0);
    rep = json_load_file(report, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(rep, "events")), 0);
    json_decref(rep);
    for (int i = 0; i < 4; i++) unlink(files[i]);
    cep_kafka_broker_free(b);
}

/* ---- the HTML page ------------------------------------------------------------------- */

/* The text of the element that starts at `open` inside `page` (up to `close`). */
static char *between(const char *page, const char *open, const char *close)
{
    const char *a = strstr(page, open);
    cr_assert(a, "the page has %s", open);
    const char *b = strstr(a, close);
    cr_assert(b, "%s is closed", open);
    return strndup(a, (size_t)(b - a));
}

static void assert_has(const char *text, const char *needle, const char *what)
{
    cr_assert(strstr(text, needle), "%s: no %s in\n%s", what, needle, text);
}

Test(backtest, the_html_page_shows_the_reports_figures_and_fetches_nothing, .timeout = 60)
{
    char v1[] = "/tmp/cep-bt-v1-XXXXXX", v2[] = "/tmp/cep-bt-v2-XXXXXX", events[] = "/tmp/cep-bt-ev-XXXXXX",
         labels[] = "/tmp/cep-bt-lab-XXXXXX", report[] = "/tmp/cep-bt-rep-XXXXXX", html[] = "/tmp/cep-bt-html-XXXXXX",
         err[] = "/tmp/cep-bt-err-XXXXXX";
    char *files[] = {v1, v2, events, labels, report, html, err};
    for (int i = 0; i < 7; i++) close(mkstemp(files[i]));
    write_text(v1, PACK);
    write_text(v2, PACK_V2);
    hand_history(events);
    hand_labels(labels);
    char *btv[] = {"cep", "backtest", "--rules", v2, "--baseline", v1, "--input", events, "--labels", labels,
                   "--json", report, "--report", html, "--quiet", NULL};
    cr_assert_eq(run(btv, err), 0);
    json_t *rep = json_load_file(report, 0, NULL);
    cr_assert(rep);
    /* the timeline: minutes from the window before T0; deposits' five alerts all in the first */
    assert_json(json_object_get(rep, "timeline"), "{\"from\":1699999980000,\"step_ms\":60000,\"buckets\":2}",
                "timeline buckets");
    assert_json(json_object_get(rule(rep, "DEPOSITS"), "timeline"), "[5,0]", "deposits over the timeline");
    assert_json(json_object_get(rule(rep, "SMALL_OUT"), "timeline"), "[0,1]", "small_out over the timeline");
    assert_json(json_object_get(rule(rep, "DEPOSITS"), "per_day"), "[[1699920000000,5]]", "per UTC day");
    json_decref(rep);

    char *page = slurp(html);
    size_t n = strlen(page);
    cr_assert(!strncmp(page, "<!doctype html>\n<html lang=\"en\">", 32), "an HTML5 document");
    cr_assert_str_eq(page + n - 8, "</html>\n");
    /* self-contained: nothing to fetch, nothing to run */
    const char *fetches[] = {"http:", "https:", "src=", "<link", "<script", "@import", "url(", "<iframe"};
    for (size_t i = 0; i < sizeof fetches / sizeof *fetches; i++)
        cr_assert_null(strstr(page, fetches[i]), "the page holds %s", fetches[i]);
    const char *parts[] = {"<svg id=\"timeline-chart\"", "<svg id=\"quality-chart\"", "<svg id=\"diff-chart\"",
                           "<section id=\"rules\">", "<section id=\"scenarios\">", "<section id=\"diff\">",
                           "<section id=\"details\">"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) assert_has(page, parts[i], "a part of the page");

    /* the cards: 12 events, 6 alerts, both rules fired */
    assert_has(page, "data-k=\"events\" data-v=\"12\"", "events card");
    assert_has(page, "data-k=\"alerts\" data-v=\"6\"", "alerts card");
    assert_has(page, "data-k=\"rules_fired\" data-v=\"2\"><b>2 of 2</b>", "rules card");
    /* deposits: 5 alerts, a1's three cover its labeled deposits: precision 0.6; recall 1 of 2 instances */
    char *row = between(page, "<tr data-rule=\"DEPOSITS\">", "</tr>");
    assert_has(row, "<span class=\"badge sev-high\">high</span>", "severity");
    assert_has(row, "data-k=\"alerts\" data-v=\"5\">5</td>", "alerts");
    assert_has(row, "data-k=\"true_alerts\" data-v=\"3\">3</td>", "true alerts");
    assert_has(row, "data-k=\"precision\" data-v=\"0.6\">0.60", "precision");
    assert_has(row, "data-k=\"recall\" data-v=\"0.5\">0.50", "recall");
    free(row);
    row = between(page, "<tr data-rule=\"SMALL_OUT\">", "</tr>");
    assert_has(row, "<span class=\"badge shadow\">shadow</span>", "the shadow rule is marked");
    assert_has(row, "data-k=\"precision\" data-v=\"0\">0.00", "its one alert is on a customer no label names");
    assert_has(row, "data-k=\"recall\" data-v=\"null\">&ndash;", "no tagged scenario");
    free(row);
    /* the timeline's bar for deposits' first minute */
    assert_has(page, "2023-11-14 22:13 DEPOSITS: 5</title>", "a timeline bar with its count");
    /* scenarios */
    row = between(page, "<tr data-scenario=\"deposit_velocity\">", "</tr>");
    assert_has(row, "data-k=\"instances\" data-v=\"2\"", "instances");
    assert_has(row, "data-k=\"caught\" data-v=\"1\"", "caught");
    assert_has(row, "data-k=\"caught_value_minor\" data-v=\"20000\"", "value caught");
    assert_has(row, "<code>DEPOSITS</code> <span class=\"muted\">1, median delay 10.0 s</span>",
               "caught by deposits at a1's second deposit");
    free(row);
    /* the diff */
    assert_has(page, "data-added=\"3\" data-removed=\"2\" data-unchanged=\"3\"", "diff totals");
    char *diff = between(page, "<section id=\"diff\">", "</section>");
    row = between(diff, "<tr data-rule=\"BIG_OUT\">", "</tr>");
    assert_has(row, "data-k=\"change\">removed</td>", "big_out is gone");
    assert_has(row, "data-k=\"removed\" data-v=\"2\"", "with its two alerts");
    free(row);
    row = between(diff, "<g data-rule=\"DEPOSITS\">", "</g>");
    assert_has(row, "class=\"added\"", "an added bar");
    assert_has(row, "data-v=\"2\"><title>2 added</title>", "of two");
    cr_assert_null(strstr(row, "class=\"removed\""), "nothing removed from deposits");
    free(row);
    free(diff);
    /* samples are escaped text */
    assert_has(page, "&quot;rule&quot;: &quot;DEPOSITS&quot;", "a sample alert, escaped");
    free(page);
    for (int i = 0; i < 7; i++) unlink(files[i]);
}
