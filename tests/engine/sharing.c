/*
 * Aggregations that differ only in HAVING, projection or metadata share one
 * operator (plan.h, cep_aggshare_t). Sharing must be invisible: every
 * rule's alerts in the shared pack equal, line for line, its alerts when it
 * runs alone.
 */
#include "bench/gen.h"
#include "engine/output.h"
#include "engine/runtime.h"
#include "patterns/plan.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char stream[] =
    "CREATE STREAM ev (account_id VARCHAR, event_type VARCHAR, event_time BIGINT, ip VARCHAR, status VARCHAR,\n"
    "  amount_minor BIGINT, instrument_id VARCHAR, stake_minor BIGINT)\n"
    "  WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time');\n";

/* three tiers of one detection, a variant with other aggregates, a session
 * pair, an EMIT FINAL pair, and a rule with another WHERE that must not join */
static const char *const rules[] = {
    "CREATE TABLE bets_low WITH (SEVERITY='low') AS SELECT account_id, COUNT(*) AS n FROM ev "
    "WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE) WHERE event_type = 'bet' GROUP BY account_id "
    "HAVING COUNT(*) >= 4;",
    "CREATE TABLE bets_mid WITH (SEVERITY='medium') AS SELECT account_id, COUNT(*) AS n FROM ev "
    "WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE) WHERE event_type = 'bet' GROUP BY account_id "
    "HAVING COUNT(*) >= 6;",
    "CREATE TABLE bets_high WITH (SEVERITY='high') AS SELECT account_id, COUNT(*) AS n, SUM(stake_minor) AS staked "
    "FROM ev WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE) WHERE event_type = 'bet' "
    "GROUP BY account_id HAVING COUNT(*) >= 8 AND SUM(stake_minor) > 1000;",
    "CREATE TABLE bets_value AS SELECT account_id, MAX(stake_minor) AS top, AVG(stake_minor) AS mean FROM ev "
    "WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE) WHERE event_type = 'bet' GROUP BY account_id "
    "HAVING MAX(stake_minor) > 3000;",
    "CREATE TABLE dep_sessions AS SELECT account_id, COUNT(*) AS n FROM ev "
    "WINDOW SESSION (20 MINUTES) WHERE event_type = 'deposit' GROUP BY account_id HAVING COUNT(*) >= 2;",
    "CREATE TABLE dep_sessions_instr AS SELECT account_id, COUNT_DISTINCT(instrument_id) AS k, "
    "SUM(amount_minor) AS total FROM ev WINDOW SESSION (20 MINUTES) WHERE event_type = 'deposit' "
    "GROUP BY account_id HAVING COUNT_DISTINCT(instrument_id) >= 2;",
    "CREATE TABLE fails_final AS SELECT ip, COUNT(*) AS n FROM ev "
    "WINDOW HOPPING (SIZE 10 MINUTES, ADVANCE BY 5 MINUTES, GRACE PERIOD 1 MINUTE) "
    "WHERE event_type = 'login' AND status <> 'ok' GROUP BY ip HAVING COUNT(*) >= 3 EMIT FINAL;",
    "CREATE TABLE fails_final_many AS SELECT ip, COUNT(*) AS n, COUNT_DISTINCT(account_id) AS accounts FROM ev "
    "WINDOW HOPPING (SIZE 10 MINUTES, ADVANCE BY 5 MINUTES, GRACE PERIOD 1 MINUTE) "
    "WHERE event_type = 'login' AND status <> 'ok' GROUP BY ip HAVING COUNT_DISTINCT(account_id) >= 5 EMIT FINAL;",
    "CREATE TABLE bad_logins_per_account AS SELECT account_id, COUNT(*) AS n FROM ev "
    "WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE) WHERE event_type = 'login' AND status = "
    "'bad_password' GROUP BY account_id HAVING COUNT(*) >= 3;",
};

typedef struct lines {
    cep_buf_t text[CEP_ARRAY_LEN(rules)];
    uint64_t count[CEP_ARRAY_LEN(rules)];
} lines_t;

typedef struct run {
    cep_runtime_t *rt;
    lines_t *out;
    cep_buf_t line;
} run_t;

static int rule_index(const char *name)
{
    for (size_t i = 0; i < CEP_ARRAY_LEN(rules); i++) {
        char want[64];
        const char *p = strstr(rules[i], "TABLE ") + 6;
        size_t n = strcspn(p, " ");
        snprintf(want, sizeof want, "%.*s", (int)n, p);
        for (char *c = want; *c; c++)
            if (*c >= 'a' && *c <= 'z') *c -= 32;
        if (!strcmp(want, name)) return (int)i;
    }
    return -1;
}

static void on_alert(void *ctx, const cep_output_t *o)
{
    run_t *r = ctx;
    int i = rule_index(o->query->name);
    cr_assert_geq(i, 0, "unknown rule %s", o->query->name);
    cep_buf_reset(&r->line);
    cep_output_alert_line(o, &r->line);
    /* rule_version is the rule's own fingerprint: the same alone and shared */
    cep_buf_put(&r->out->text[i], r->line.data, r->line.len);
    cep_buf_putc(&r->out->text[i], '\n');
    r->out->count[i]++;
}

static void on_event(void *ctx, const char *key, size_t klen, const char *json, size_t n)
{
    run_t *r = ctx;
    cep_record_t rec = {.topic = "gaming.events", .value = json, .vlen = n};
    cr_assert_eq(cep_runtime_push(r->rt, &rec, NULL), CEP_OK);
}

static cep_ruleset_t *compile(const char *sql)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("sharing.sql", sql, strlen(sql), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    return rs;
}

static void replay(cep_ruleset_t *rs, lines_t *out)
{
    run_t r = {.out = out};
    cep_buf_init(&r.line);
    r.rt = cep_runtime_new(rs, on_alert, &r);
    cr_assert_not_null(r.rt);
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 40000;
    o.seed = 9;
    o.fraud_rate = 0.05;
    cep_gen_sink_t sink = {on_event, NULL, &r};
    cr_assert_eq(cep_gen_run(&o, &sink, NULL, NULL), CEP_OK);
    cep_runtime_free(r.rt);
    cep_buf_free(&r.line);
}

Test(sharing, shared_pack_equals_each_rule_alone)
{
    cep_buf_t pack;
    cep_buf_init(&pack);
    cep_buf_puts(&pack, stream);
    for (size_t i = 0; i < CEP_ARRAY_LEN(rules); i++) cep_buf_puts(&pack, rules[i]);
    cep_ruleset_t *rs = compile(cep_buf_cstr(&pack));
    /* nine aggregations in four shares: the bet tiers and value variant, the
     * deposit sessions, the EMIT FINAL pair, and the bad-password rule alone */
    cr_assert_eq(rs->nqueries, 9);
    cr_assert_eq(rs->nshares, 4);
    cr_assert_eq(rs->shares[0]->nmembers, 4);
    cr_assert_eq(rs->shares[0]->nspecs, 4, "COUNT(*), SUM, MAX, AVG once each");
    cr_assert_eq(rs->shares[1]->nmembers, 2);
    cr_assert_eq(rs->shares[2]->nmembers, 2);
    cr_assert_eq(rs->shares[3]->nmembers, 1);
    lines_t *shared = calloc(1, sizeof *shared);
    replay(rs, shared);
    cep_ruleset_free(rs);
    uint64_t total = 0;
    for (size_t i = 0; i < CEP_ARRAY_LEN(rules); i++) {
        cep_buf_t one;
        cep_buf_init(&one);
        cep_buf_puts(&one, stream);
        cep_buf_puts(&one, rules[i]);
        cep_ruleset_t *rs1 = compile(cep_buf_cstr(&one));
        cr_assert_eq(rs1->nshares, 1);
        lines_t *alone = calloc(1, sizeof *alone);
        replay(rs1, alone);
        cr_assert_eq(shared->count[i], alone->count[i], "rule %zu: %llu shared, %llu alone", i,
                     (unsigned long long)shared->count[i], (unsigned long long)alone->count[i]);
        cr_assert_eq(shared->text[i].len, alone->text[i].len, "rule %zu", i);
        cr_assert(!memcmp(shared->text[i].data, alone->text[i].data, alone->text[i].len), "rule %zu differs", i);
        total += alone->count[i];
        cep_buf_free(&alone->text[i]);
        cep_buf_free(&shared->text[i]);
        free(alone);
        cep_ruleset_free(rs1);
        cep_buf_free(&one);
    }
    /* the comparison means something only if the rules fire */
    for (size_t i = 0; i < CEP_ARRAY_LEN(rules); i++) cr_assert_gt(shared->count[i], 0, "rule %zu never fired", i);
    cr_assert_gt(total, 100);
    free(shared);
    cep_buf_free(&pack);
}
