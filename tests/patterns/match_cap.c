/*
 * The cap on live runs per partition (WITH (MAX_RUNS=n)): past it, the
 * oldest start rows are abandoned and counted, and matching goes on.
 */
#include "engine/runtime.h"
#include "patterns/match.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static int matches;

static void on(void *ctx, const cep_output_t *o)
{
    (void)ctx, (void)o;
    matches++;
}

Test(match_cap, oldest_runs_are_abandoned_and_counted)
{
    /* every row starts a run that never ends (B never holds): each live run
     * holds two threads, one waiting for B, one for the filler X */
    const char *sql = "CREATE STREAM ev (k VARCHAR, t BIGINT, kind VARCHAR) "
                      "WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
                      "CREATE STREAM never WITH (MAX_RUNS=5) AS SELECT * FROM ev MATCH_RECOGNIZE ("
                      "PARTITION BY k ORDER BY t MEASURES A.t AS t0 PATTERN (A X*? B) "
                      "DEFINE B AS kind = 'never');\n";
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("cap.sql", sql, strlen(sql), NULL, &rs, &err), CEP_OK, "%s", err.msg);
    matches = 0;
    cep_runtime_t *rt = cep_runtime_new(rs, on, NULL);
    char json[128];
    for (int i = 1; i <= 11; i++) { /* the 11th row moves the watermark past the 10th */
        int n = snprintf(json, sizeof json, "{\"k\":\"p\",\"t\":%d,\"kind\":\"x\"}", i * 1000);
        cep_record_t r = {.topic = "ev", .value = json, .vlen = (size_t)n};
        cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
    }
    cep_match_stats_t st;
    cep_runtime_match_stats(rt, &st);
    cr_assert_eq(st.rows, 10);
    /* 2 threads per live run: 6 > 5 from the third row on, so each row from
     * the third abandons the oldest run (2 threads): 8 rows x 2 */
    cr_assert_eq(st.peak_runs, 6);
    cr_assert_eq(st.capped_runs, 16);
    cr_assert_eq(matches, 0);
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
}

Test(match_cap, max_runs_must_be_positive)
{
    const char *sql = "CREATE STREAM ev (k VARCHAR, t BIGINT) WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
                      "CREATE STREAM x WITH (MAX_RUNS=0) AS SELECT * FROM ev MATCH_RECOGNIZE ("
                      "ORDER BY t MEASURES A.t AS t0 PATTERN (A));\n";
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("cap.sql", sql, strlen(sql), NULL, &rs, &err), CEP_ERR_SEMANTIC);
    cr_assert_str_eq(err.msg, "MAX_RUNS must be an integer from 1 to 10000000");
    cr_assert_eq(err.pos.line, 2);
}
