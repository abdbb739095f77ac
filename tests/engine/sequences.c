/*
 * Sequences across topics: two source streams merged with INSERT INTO into
 * one stream, and a row pattern over the merged stream, in event time.
 */
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static const char pack[] =
    "CREATE STREAM logins (account_id VARCHAR, t BIGINT, country VARCHAR)"
    "  WITH (KAFKA_TOPIC='logins', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
    "CREATE STREAM payments (account_id VARCHAR, t BIGINT, amount BIGINT)"
    "  WITH (KAFKA_TOPIC='payments', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
    "CREATE STREAM activity (account_id VARCHAR, t BIGINT, kind VARCHAR, country VARCHAR, amount BIGINT)"
    "  WITH (KAFKA_TOPIC='activity', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
    "INSERT INTO activity SELECT account_id, t, 'login' AS kind, country, CAST(NULL AS BIGINT) AS amount FROM logins;\n"
    "INSERT INTO activity SELECT account_id, t, 'payment' AS kind, CAST(NULL AS VARCHAR) AS country, amount"
    "  FROM payments;\n"
    "CREATE STREAM travel_then_pay AS SELECT * FROM activity MATCH_RECOGNIZE (\n"
    "  PARTITION BY account_id ORDER BY t\n"
    "  MEASURES A.country AS home, B.country AS away, P.amount AS amount\n"
    "  PATTERN (A B P) WITHIN INTERVAL '1' HOUR\n"
    "  DEFINE A AS kind = 'login', B AS kind = 'login' AND country <> A.country,\n"
    "         P AS kind = 'payment' AND amount > 1000)\n"
    "PARTITION BY account_id;\n";

typedef struct out {
    char v[8][256];
    int n;
} out_t;

static void on(void *ctx, const cep_output_t *o)
{
    out_t *x = ctx;
    if (strcmp(o->query->name, "TRAVEL_THEN_PAY")) return;
    cr_assert_lt(x->n, 8);
    cep_buf_t b;
    cep_buf_init(&b);
    cep_output_key_json(o, &b);
    cep_buf_putc(&b, ' ');
    cep_output_value_json(o, &b);
    snprintf(x->v[x->n++], sizeof x->v[0], "%s", cep_buf_cstr(&b));
    cep_buf_free(&b);
}

static void push(cep_runtime_t *rt, const char *topic, const char *json)
{
    cep_record_t r = {.topic = topic, .value = json, .vlen = strlen(json)};
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_push(rt, &r, &err), CEP_OK, "%s", err.msg);
}

Test(sequences, a_pattern_over_two_merged_topics)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("seq.sql", pack, strlen(pack), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    out_t out = {0};
    cep_runtime_t *rt = cep_runtime_new(rs, on, &out);
    push(rt, "logins", "{\"account_id\":\"a1\",\"t\":1000,\"country\":\"DE\"}");
    push(rt, "logins", "{\"account_id\":\"a2\",\"t\":1500,\"country\":\"FR\"}");
    push(rt, "logins", "{\"account_id\":\"a1\",\"t\":2000,\"country\":\"NG\"}");
    push(rt, "payments", "{\"account_id\":\"a2\",\"t\":2500,\"amount\":5000}");  /* a2: no second login */
    push(rt, "payments", "{\"account_id\":\"a1\",\"t\":3000,\"amount\":90000}"); /* a1: DE, NG, pay */
    push(rt, "logins", "{\"account_id\":\"a3\",\"t\":4000,\"country\":\"US\"}");
    push(rt, "logins", "{\"account_id\":\"a3\",\"t\":5000,\"country\":\"US\"}"); /* same country */
    push(rt, "payments", "{\"account_id\":\"a3\",\"t\":6000,\"amount\":90000}");
    cep_runtime_finish(rt);
    cr_assert_eq(out.n, 1);
    cr_assert_str_eq(out.v[0], "\"a1\" {\"HOME\":\"DE\",\"AWAY\":\"NG\",\"AMOUNT\":90000}");
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
}
