/*
 * Values at the edge of their range in rule text: a clear compile error
 * with the position, never an overflow.
 */
#include "patterns/rules.h"

#include <criterion/criterion.h>
#include <string.h>

static void expect_error(const char *sql, cep_status_t code, uint32_t line, uint32_t col, const char *msg)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("limits.sql", sql, strlen(sql), NULL, &rs, &err), code, "%s", err.msg);
    cr_assert_null(rs);
    cr_assert_str_eq(err.msg, msg);
    cr_assert_eq(err.pos.line, line);
    cr_assert_eq(err.pos.col, col);
}

#define STREAM "CREATE STREAM s (a BIGINT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');\n"

Test(limits, interval_literal_overflow)
{
    expect_error(STREAM "CREATE STREAM o AS SELECT a FROM s WHERE a > INTERVAL '9999999999999999' WEEKS;",
                 CEP_ERR_SYNTAX, 2, 55, "INTERVAL out of range: 9999999999999999");
}

Test(limits, window_size_overflow)
{
    expect_error(STREAM "CREATE TABLE o AS SELECT a, COUNT(*) AS n FROM s "
                        "WINDOW TUMBLING (SIZE 9999999999999999 DAYS) GROUP BY a;",
                 CEP_ERR_SYNTAX, 2, 72, "duration out of range");
}

Test(limits, integer_literal_overflow)
{
    expect_error(STREAM "CREATE STREAM o AS SELECT a FROM s WHERE a > 99999999999999999999;", CEP_ERR_SYNTAX, 2, 46,
                 "integer literal out of range: 99999999999999999999");
}

Test(limits, function_arity_names_both_bounds)
{
    expect_error("CREATE STREAM tx (id INT, name VARCHAR) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');\n"
                 "CREATE STREAM o AS SELECT id, SUBSTRING(name) AS s FROM tx;",
                 CEP_ERR_SEMANTIC, 2, 31, "SUBSTRING takes 2 to 3 arguments, not 1");
}

Test(limits, advance_in_a_tumbling_window_points_at_advance)
{
    expect_error(STREAM "CREATE TABLE o AS SELECT a, COUNT(*) AS c FROM s "
                        "WINDOW TUMBLING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY a;",
                 CEP_ERR_SYNTAX, 2, 84, "ADVANCE BY is only valid in a HOPPING window");
}
