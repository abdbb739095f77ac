/*
 * Per-partition event time: each source partition is a task with its own
 * operators and stream time (Kafka Streams' model), so a lagging partition
 * neither holds another's windows open nor has its records dropped as late
 * because another partition is ahead.
 */
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

typedef struct out {
    char v[8][128];
    int n;
} out_t;

static void on(void *ctx, const cep_output_t *o)
{
    out_t *x = ctx;
    cr_assert_lt(x->n, 8);
    cep_buf_t b;
    cep_buf_init(&b);
    cep_output_key_json(o, &b);
    cep_buf_putc(&b, '=');
    cep_output_value_json(o, &b);
    snprintf(x->v[x->n++], sizeof x->v[0], "%s", cep_buf_cstr(&b));
    cep_buf_free(&b);
}

static void push(cep_runtime_t *rt, int partition, const char *k, int64_t t)
{
    char json[128];
    int n = snprintf(json, sizeof json, "{\"k\":\"%s\",\"t\":%lld}", k, (long long)t);
    cep_record_t r = {.topic = "ev", .value = json, .vlen = (size_t)n, .partition = partition};
    cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
}

Test(watermark, each_partition_keeps_its_own_stream_time)
{
    const char *sql = "CREATE STREAM ev (k VARCHAR, t BIGINT) WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
                      "CREATE TABLE c AS SELECT k, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 10 SECONDS) "
                      "GROUP BY k EMIT FINAL;\n";
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("wm.sql", sql, strlen(sql), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    out_t out = {0};
    cep_runtime_t *rt = cep_runtime_new(rs, on, &out);
    push(rt, 0, "a", 1000);
    push(rt, 1, "b", 2000);
    push(rt, 0, "a", 15000); /* partition 0 at 15 s: its [0, 10 s) closes */
    cr_assert_eq(out.n, 1);
    cr_assert_str_eq(out.v[0], "\"a\"={\"N\":1}");
    push(rt, 1, "b", 9000); /* not late: partition 1 is at 2 s */
    cr_assert_eq(out.n, 1);
    push(rt, 1, "b", 12000); /* partition 1 past 10 s: its window closes */
    cr_assert_eq(out.n, 2);
    cr_assert_str_eq(out.v[1], "\"b\"={\"N\":2}");
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
}

Test(watermark, one_partition_keeps_ksqldb_stream_time)
{
    const char *sql = "CREATE STREAM ev (k VARCHAR, t BIGINT) WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
                      "CREATE TABLE c AS SELECT k, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 10 SECONDS) "
                      "GROUP BY k EMIT FINAL;\n";
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("wm.sql", sql, strlen(sql), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    out_t out = {0};
    cep_runtime_t *rt = cep_runtime_new(rs, on, &out);
    push(rt, 0, "a", 1000);
    push(rt, 0, "b", 2000);
    push(rt, 0, "a", 15000); /* stream time 15 s: [0, 10 s) closes for every key */
    cr_assert_eq(out.n, 2);
    push(rt, 0, "b", 9000); /* late now: dropped */
    cr_assert_eq(out.n, 2);
    cr_assert_str_eq(out.v[0], "\"a\"={\"N\":1}");
    cr_assert_str_eq(out.v[1], "\"b\"={\"N\":1}");
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
}
