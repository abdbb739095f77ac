/*
 * A new rule set swapped into a running runtime (the core of hot reload):
 * a rule whose state still fits (unchanged, or only its HAVING changed)
 * goes on from its state as if it had run the new version all along; a
 * removed rule stops and its state is freed; a new rule starts empty.
 */
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define STREAM                                                                                                \
    "CREATE STREAM ev (acct VARCHAR, kind VARCHAR, v BIGINT, t BIGINT)\n"                                      \
    "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t', KEY='acct');\n"
#define SEQ(with)                                                                                             \
    "CREATE STREAM seq " with " AS SELECT * FROM ev MATCH_RECOGNIZE (PARTITION BY acct ORDER BY t\n"           \
    "  MEASURES FIRST(A.t) AS t0, LAST(B.t) AS t1 ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW\n"            \
    "  PATTERN (A B+ C) DEFINE A AS kind = 'a', B AS kind = 'b', C AS kind = 'c');\n"

static const char *v1 = STREAM
    "CREATE TABLE busy AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 1 MINUTE)\n"
    "  GROUP BY acct HAVING COUNT(*) >= 4;\n" SEQ("")
    "CREATE TABLE spend AS SELECT acct, SUM(v) AS s FROM ev WHERE kind = 'b' GROUP BY acct;\n";
/* busy: a lower threshold (its state fits); seq: a new severity (its runs go
 * on); spend: gone; big: new */
static const char *v2 = STREAM
    "CREATE TABLE busy AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 1 MINUTE)\n"
    "  GROUP BY acct HAVING COUNT(*) >= 2;\n" SEQ("WITH (SEVERITY='high')")
    "CREATE TABLE big AS SELECT acct, MAX(v) AS m FROM ev WHERE kind = 'c' GROUP BY acct;\n";

typedef struct lines {
    cep_buf_t per[4]; /* BUSY, SEQ, SPEND, BIG: alert lines after `from` */
    int n, from;      /* records pushed; lines are kept once n >= from */
} lines_t;

static int rule_slot(const char *name)
{
    static const char *names[] = {"BUSY", "SEQ", "SPEND", "BIG"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

static void on_out(void *ctx, const cep_output_t *o)
{
    lines_t *l = ctx;
    int r = rule_slot(o->query->name);
    cr_assert_geq(r, 0);
    if (l->n < l->from) return;
    cep_buf_t line;
    cep_buf_init(&line);
    cep_output_key_json(o, &line);
    cep_buf_putc(&line, '=');
    cep_output_value_json(o, &line);
    cep_buf_printf(&line, "@%lld\n", (long long)o->timestamp);
    cep_buf_put(&l->per[r], line.data, line.len);
    cep_buf_free(&line);
}

static void push(cep_runtime_t *rt, lines_t *l, int i)
{
    static const char *kinds[] = {"a", "b", "b", "c", "x"};
    char json[160];
    /* per (account, partition), kinds run a b b c x a b b c x ... */
    int n = snprintf(json, sizeof json, "{\"acct\":\"u%d\",\"kind\":\"%s\",\"v\":%d,\"t\":%d}", (i / 2) % 3,
                     kinds[(i / 6) % 5], (i * 37) % 100, 1000 + i * 7000);
    cep_record_t r = {.topic = "ev", .value = json, .vlen = (size_t)n, .partition = i % 2};
    cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
    l->n++;
}

static cep_ruleset_t *compile(const char *sql)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("p.sql", sql, strlen(sql), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    return rs;
}

static void lines_init(lines_t *l, int from)
{
    for (int i = 0; i < 4; i++) cep_buf_init(&l->per[i]);
    l->n = 0;
    l->from = from;
}

static void lines_free(lines_t *l)
{
    for (int i = 0; i < 4; i++) cep_buf_free(&l->per[i]);
}

static const char *text(lines_t *l, int r)
{
    return cep_buf_cstr(&l->per[r]);
}

Test(swap, state_that_fits_moves_over_the_rest_starts_or_stops)
{
    enum { N = 300, CUT = 160 }; /* at the cut every account is inside a b b c: seq is mid-match */
    cep_ruleset_t *rs1 = compile(v1), *rs2 = compile(v2);
    /* the run under test: v1 for [0, CUT), then v2 */
    lines_t got;
    lines_init(&got, CUT);
    cep_runtime_t *rt = cep_runtime_new(rs1, on_out, &got);
    for (int i = 0; i < CUT; i++) push(rt, &got, i);
    cep_swap_stats_t st;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_swap(rt, rs2, &st, &err), CEP_OK, "%s", err.msg);
    cep_ruleset_free(rs1); /* nothing of v1 is used any more */
    cr_assert_eq(st.tasks, 2, "two partitions");
    cr_assert_gt(st.kept, 0);
    cr_assert_eq(st.dropped, 6, "spend's three accounts in each of the two tasks (%llu)", (unsigned long long)st.dropped);
    for (int i = CUT; i < N; i++) push(rt, &got, i);
    cep_runtime_finish(rt);
    cep_runtime_free(rt);

    /* busy and seq as if v2 had run from the start; big as if it started at the cut */
    lines_t all, late;
    lines_init(&all, CUT);
    lines_init(&late, 0);
    cep_runtime_t *a = cep_runtime_new(rs2, on_out, &all), *b = cep_runtime_new(rs2, on_out, &late);
    for (int i = 0; i < N; i++) push(a, &all, i);
    for (int i = CUT; i < N; i++) push(b, &late, i);
    cep_runtime_finish(a);
    cep_runtime_finish(b);
    cr_assert_gt(strlen(text(&all, 0)), 0, "busy fires after the cut");
    cr_assert_gt(strlen(text(&all, 1)), 0, "seq fires after the cut");
    cr_assert_gt(strlen(text(&late, 3)), 0, "big fires");
    cr_assert_str_eq(text(&got, 0), text(&all, 0), "busy goes on from its state with the new threshold");
    cr_assert_str_eq(text(&got, 1), text(&all, 1), "seq goes on mid-match under its new severity");
    cr_assert_str_eq(text(&got, 2), "", "spend is gone");
    cr_assert_str_eq(text(&got, 3), text(&late, 3), "big starts empty at the cut");
    cep_runtime_free(a);
    cep_runtime_free(b);
    lines_free(&got);
    lines_free(&all);
    lines_free(&late);
    cep_ruleset_free(rs2);
}
