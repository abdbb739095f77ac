/*
 * A query whose output feeds another stream (an OVER or MATCH_RECOGNIZE
 * part, a derived stream) runs in the middle of a record's candidate list:
 * the queries after it must still see the record's own WHERE results, not
 * those computed for the nested stream's rows. A pack with an OVER rule
 * before an aggregation with the same filter must give the aggregation the
 * same alerts as a pack with the aggregation alone.
 */
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define STREAM                                                                                                \
    "CREATE STREAM ev (acct VARCHAR, kind VARCHAR, amt BIGINT, t BIGINT)\n"                                    \
    "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t', KEY='acct');\n"
#define AGG                                                                                                   \
    "CREATE TABLE spend AS SELECT acct, SUM(amt) AS s FROM ev WINDOW TUMBLING (SIZE 60 SECONDS)\n"              \
    "  WHERE kind = 'bet' GROUP BY acct HAVING SUM(amt) >= 300;\n"
#define OVER                                                                                                  \
    "CREATE STREAM velocity AS SELECT acct, n FROM (SELECT acct, COUNT(*) OVER (PARTITION BY acct ORDER BY t\n" \
    "  RANGE BETWEEN INTERVAL '30' SECONDS PRECEDING AND CURRENT ROW) AS n FROM ev WHERE kind = 'bet') v\n"    \
    "  WHERE n >= 2 PARTITION BY acct;\n"

static void on_out(void *ctx, const cep_output_t *o)
{
    if (strcmp(o->query->name, "SPEND")) return;
    cep_output_alert_line(o, ctx);
    cep_buf_putc(ctx, '\n');
}

static void run(const char *sql, cep_buf_t *out)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("p.sql", sql, strlen(sql), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    cep_runtime_t *rt = cep_runtime_new(rs, on_out, out);
    static const char *kinds[] = {"bet", "win", "bet", "login"};
    for (int i = 0; i < 400; i++) {
        char json[160];
        int n = snprintf(json, sizeof json, "{\"acct\":\"u%d\",\"kind\":\"%s\",\"amt\":%d,\"t\":%d}", i % 3,
                         kinds[(i * 7 / 3) % 4], (i * 53) % 200, 1000 + i * 2500);
        cep_record_t r = {.topic = "ev", .value = json, .vlen = (size_t)n};
        cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
    }
    cep_runtime_finish(rt);
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
}

Test(nesting, a_nested_stream_does_not_change_the_filters_of_the_queries_after_it)
{
    cep_buf_t alone, after_over;
    cep_buf_init(&alone);
    cep_buf_init(&after_over);
    run(STREAM AGG, &alone);
    run(STREAM OVER AGG, &after_over);
    cr_assert_gt(alone.len, 0, "spend fires");
    cr_assert_str_eq(cep_buf_cstr(&after_over), cep_buf_cstr(&alone));
    cep_buf_free(&alone);
    cep_buf_free(&after_over);
}
