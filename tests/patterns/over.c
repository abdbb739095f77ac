/*
 * Sliding OVER aggregates in a derived table: exact values per row, the
 * range boundary, null arguments, MIN/MAX as rows leave, and state that
 * is released once a partition's rows leave the range.
 */
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const char pack[] =
    "CREATE STREAM tx (card VARCHAR, t BIGINT, amount BIGINT, shop VARCHAR)"
    "  WITH (KAFKA_TOPIC='tx', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
    "CREATE STREAM velocity AS SELECT card, n, total, shops, low, high, mean FROM (\n"
    "  SELECT card,\n"
    "    COUNT(*) OVER (PARTITION BY card ORDER BY t RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING AND CURRENT ROW) AS n,\n"
    "    SUM(amount) OVER (PARTITION BY card ORDER BY t RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING AND CURRENT ROW) AS total,\n"
    "    COUNT_DISTINCT(shop) OVER (PARTITION BY card ORDER BY t RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING AND CURRENT ROW) AS shops,\n"
    "    MIN(amount) OVER (PARTITION BY card ORDER BY t RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING AND CURRENT ROW) AS low,\n"
    "    MAX(amount) OVER (PARTITION BY card ORDER BY t RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING AND CURRENT ROW) AS high,\n"
    "    AVG(amount) OVER (PARTITION BY card ORDER BY t RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING AND CURRENT ROW) AS mean\n"
    "  FROM tx WHERE amount IS NULL OR amount > 0) v\n"
    "WHERE n >= 1;\n";

typedef struct lines {
    char v[32][256];
    int n;
} lines_t;

static void on(void *ctx, const cep_output_t *o)
{
    lines_t *l = ctx;
    cr_assert_lt(l->n, 32);
    cep_buf_t b;
    cep_buf_init(&b);
    cep_output_value_json(o, &b);
    snprintf(l->v[l->n++], sizeof l->v[0], "%s", cep_buf_cstr(&b));
    cep_buf_free(&b);
}

static void push(cep_runtime_t *rt, const char *json)
{
    cep_record_t r = {.topic = "tx", .value = json, .vlen = strlen(json)};
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_push(rt, &r, &err), CEP_OK, "%s", err.msg);
}

Test(over, sliding_values_per_row)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("over.sql", pack, strlen(pack), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    lines_t out = {0};
    cep_runtime_t *rt = cep_runtime_new(rs, on, &out);
    push(rt, "{\"card\":\"c1\",\"t\":1000,\"amount\":30,\"shop\":\"s1\"}");
    push(rt, "{\"card\":\"c1\",\"t\":5000,\"amount\":10,\"shop\":\"s2\"}");
    push(rt, "{\"card\":\"c2\",\"t\":6000,\"amount\":99,\"shop\":\"s1\"}");
    push(rt, "{\"card\":\"c1\",\"t\":11000,\"amount\":20,\"shop\":\"s1\"}"); /* 1000 is exactly 10 s back: still in */
    push(rt, "{\"card\":\"c1\",\"t\":11001,\"amount\":null,\"shop\":\"s3\"}"); /* 1000 leaves; a null amount counts in COUNT(*) */
    push(rt, "{\"card\":\"c1\",\"t\":11002,\"amount\":-5,\"shop\":\"s9\"}");   /* filtered out by WHERE */
    push(rt, "{\"card\":\"c1\",\"t\":30000,\"amount\":7,\"shop\":\"s1\"}");   /* everything else has left */
    cr_assert_eq(out.n, 6);
    cr_assert_str_eq(out.v[0], "{\"CARD\":\"c1\",\"N\":1,\"TOTAL\":30,\"SHOPS\":1,\"LOW\":30,\"HIGH\":30,\"MEAN\":30.0}");
    cr_assert_str_eq(out.v[1], "{\"CARD\":\"c1\",\"N\":2,\"TOTAL\":40,\"SHOPS\":2,\"LOW\":10,\"HIGH\":30,\"MEAN\":20.0}");
    cr_assert_str_eq(out.v[2], "{\"CARD\":\"c2\",\"N\":1,\"TOTAL\":99,\"SHOPS\":1,\"LOW\":99,\"HIGH\":99,\"MEAN\":99.0}");
    cr_assert_str_eq(out.v[3], "{\"CARD\":\"c1\",\"N\":3,\"TOTAL\":60,\"SHOPS\":2,\"LOW\":10,\"HIGH\":30,\"MEAN\":20.0}");
    cr_assert_str_eq(out.v[4], "{\"CARD\":\"c1\",\"N\":3,\"TOTAL\":30,\"SHOPS\":3,\"LOW\":10,\"HIGH\":20,\"MEAN\":15.0}");
    cr_assert_str_eq(out.v[5], "{\"CARD\":\"c1\",\"N\":1,\"TOTAL\":7,\"SHOPS\":1,\"LOW\":7,\"HIGH\":7,\"MEAN\":7.0}");
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
}

Test(over, derived_tables_only_project_filter_and_slide)
{
    const char *bad = "CREATE STREAM tx (card VARCHAR, t BIGINT) WITH (KAFKA_TOPIC='tx', VALUE_FORMAT='JSON');\n"
                      "CREATE STREAM x AS SELECT card FROM (SELECT card, TOPK(t, 2) OVER (PARTITION BY card ORDER BY t "
                      "RANGE BETWEEN INTERVAL '1' SECOND PRECEDING AND CURRENT ROW) AS k FROM tx) v;";
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("bad.sql", bad, strlen(bad), NULL, &rs, &err), CEP_ERR_UNSUPPORTED);
    cr_assert_str_eq(err.msg, "TOPK OVER (...) is not supported; use COUNT, COUNT_DISTINCT, SUM, AVG, MIN or MAX");
    cr_assert_eq(err.pos.line, 2);
    cr_assert_eq(err.pos.col, 51);
}
