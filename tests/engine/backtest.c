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
         a2[] = "/tmp/cep-bt-a2-XXXXXX", err[] = "/tmp/cep-bt-err-XXXXXX";
    char *files[] = {events, labels, a1, a2, err};
    for (int i = 0; i < 5; i++) close(mkstemp(files[i]));
    char *gen[] = {"cep", "gen", "--domain", "gaming", "--events", "60000", "--seed", "7", "--output", events,
                   "--labels", labels, NULL};
    cr_assert_eq(run(gen, err), 0);
    char *runv[] = {"cep", "run", "--rules", "rules/demo", "--input", events, "--output", a1,
                    "--no-reload", NULL};
    cr_assert_eq(run(runv, err), 0);
    char *btv[] = {"cep", "backtest", "--rules", "rules/demo", "--input", events, "--labels", labels,
                   "--alerts", a2, "--quiet", NULL};
    cr_assert_eq(run(btv, err), 0);
    char *x = slurp(a1), *y = slurp(a2);
    size_t lines = 0;
    for (const char *p = x; *p; p++) lines += *p == '\n';
    cr_assert_gt(lines, 50, "the demo pack alerts on generated traffic");
    cr_assert_str_eq(x, y, "the same alert lines, in the same order");
    free(x);
    free(y);
    for (int i = 0; i < 5; i++) unlink(files[i]);
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

Test(backtest, precision_recall_value_and_delay_on_a_hand_labeled_history, .timeout = 60)
{
    char pack[] = "/tmp/cep-bt-pack-XXXXXX", events[] = "/tmp/cep-bt-ev-XXXXXX", labels[] = "/tmp/cep-bt-lab-XXXXXX",
         report[] = "/tmp/cep-bt-rep-XXXXXX", err[] = "/tmp/cep-bt-err-XXXXXX";
    char *files[] = {pack, events, labels, report, err};
    for (int i = 0; i < 5; i++) close(mkstemp(files[i]));
    write_text(pack, PACK);
    FILE *f = fopen(events, "w");
    /* a1: four deposits in a minute (fraud), then a large withdrawal (fraud, another scenario) */
    event(f, "e1", "deposit", 0, "a1", 5000);
    event(f, "e2", "deposit", 10, "a1", 5000);
    /* b2: three deposits in a minute, legitimately */
    event(f, "e3", "deposit", 12, "b2", 900);
    event(f, "e4", "deposit", 15, "b2", 900);
    event(f, "e5", "deposit", 20, "a1", 5000); /* deposits fires for a1 (3) */
    event(f, "e6", "deposit", 25, "b2", 900);  /* deposits fires for b2: a false alert */
    event(f, "e7", "deposit", 30, "a1", 5000); /* and again for a1 (4) */
    /* c3: two deposits in two minutes (fraud) that nothing catches */
    event(f, "e8", "deposit", 5, "c3", 7000);
    event(f, "e9", "deposit", 70, "c3", 7000);
    event(f, "e10", "withdrawal", 90, "a1", 200000); /* big_out fires: true */
    event(f, "e11", "withdrawal", 95, "d4", 150000); /* big_out fires: a legit customer */
    event(f, "e12", "withdrawal", 99, "e5", 500);
    fclose(f);
    f = fopen(labels, "w");
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
