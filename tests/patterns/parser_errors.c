/*
 * parser_errors.c — a broken rule pack fails to compile with the exact
 * status, message, line and column of its first problem (CONVENTIONS 3,
 * 13), and nothing is allocated.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "harness.h"

/* line 1 of every pack below; the rule under test starts on line 2 */
#define TX                                                                                         \
    "CREATE STREAM tx (id VARCHAR KEY, amount DOUBLE, qty INT, name VARCHAR) "                    \
    "WITH (KAFKA_TOPIC='tx', VALUE_FORMAT='JSON');\n"

static void expect_error(const char *sql, cep_status_t code, const char *msg, uint32_t line,
                         uint32_t col)
{
    cep_error_t err;
    cr_assert_eq(ut_compile_fail(sql, &err), code, "status %s: %s", cep_status_name(err.code),
                 err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_str_eq(err.msg, msg);
    cr_assert_eq(err.pos.line, line, "line %u", err.pos.line);
    cr_assert_eq(err.pos.col, col, "col %u", err.pos.col);
    cr_assert_str_eq(err.file, "test.sql");
}

Test(parser_errors, unknown_column_suggests_the_nearest)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, amout FROM tx;", CEP_ERR_SEMANTIC,
                 "unknown column 'AMOUT' in TX (did you mean AMOUNT?)", 2, 31);
}

Test(parser_errors, unknown_column_without_a_near_name)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, zzz FROM tx;", CEP_ERR_SEMANTIC,
                 "unknown column 'ZZZ' in TX", 2, 31);
}

Test(parser_errors, first_of_several_errors_wins)
{
    expect_error(TX "CREATE STREAM o AS SELECT id FROM tx WHERE qty > 1 AND amout > 2 AND nme = 'x';",
                 CEP_ERR_SEMANTIC, "unknown column 'AMOUT' in TX (did you mean AMOUNT?)", 2, 56);
}

Test(parser_errors, unknown_function)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, FOO(amount) AS f FROM tx;", CEP_ERR_SEMANTIC,
                 "unknown function FOO", 2, 31);
}

Test(parser_errors, wrong_argument_count)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, ABS() AS c FROM tx;", CEP_ERR_SEMANTIC,
                 "ABS takes 1 argument, not 0", 2, 31);
}

Test(parser_errors, wrong_argument_type)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, UCASE(qty) AS u FROM tx;", CEP_ERR_SEMANTIC,
                 "argument 1 must be STRING, not INTEGER", 2, 31);
}

Test(parser_errors, type_mismatch_in_where)
{
    expect_error(TX "CREATE STREAM o AS SELECT id FROM tx WHERE name > 5;", CEP_ERR_SEMANTIC,
                 "Cannot compare NAME (STRING) to 5 (INTEGER) with GREATER_THAN.", 2, 49);
}

Test(parser_errors, type_mismatch_on_a_later_line)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, amount FROM tx\nWHERE name = 'x'\n  AND qty > 'y';",
                 CEP_ERR_SEMANTIC, "Cannot compare QTY (INTEGER) to 'y' (STRING) with GREATER_THAN.",
                 4, 11);
}

Test(parser_errors, where_must_be_boolean)
{
    expect_error(TX "CREATE STREAM o AS SELECT id FROM tx WHERE qty;", CEP_ERR_SEMANTIC,
                 "WHERE expression must be BOOLEAN, not INTEGER: QTY", 2, 44);
}

Test(parser_errors, missing_from)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, amount;", CEP_ERR_SYNTAX,
                 "expected FROM but found ';'", 2, 37);
}

Test(parser_errors, missing_closing_parenthesis)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, (qty + 1 AS q FROM tx;", CEP_ERR_SYNTAX,
                 "expected ')' but found 'AS'", 2, 40);
}

Test(parser_errors, unterminated_comment)
{
    expect_error(TX "/* never closed\nCREATE STREAM o AS SELECT id FROM tx;", CEP_ERR_SYNTAX,
                 "unterminated /* comment", 2, 1);
}

Test(parser_errors, unterminated_string)
{
    expect_error(TX "CREATE STREAM o AS SELECT id FROM tx WHERE name = 'abc;", CEP_ERR_SYNTAX,
                 "unterminated string literal", 2, 51);
}

Test(parser_errors, unknown_source)
{
    expect_error(TX "CREATE STREAM o AS SELECT id FROM nope;", CEP_ERR_SEMANTIC,
                 "unknown stream or table 'NOPE'", 2, 35);
}

Test(parser_errors, duplicate_stream)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, amount FROM tx;\nCREATE STREAM o AS SELECT id FROM tx;",
                 CEP_ERR_SEMANTIC, "stream O already exists", 3, 1);
}

Test(parser_errors, non_aggregate_column_not_grouped)
{
    expect_error(TX "CREATE TABLE o AS SELECT id, qty, COUNT(*) AS c FROM tx GROUP BY id;",
                 CEP_ERR_SEMANTIC, "Non-aggregate SELECT expression(s) not part of GROUP BY: QTY", 2,
                 30);
}

Test(parser_errors, aggregate_in_stream_is_a_table)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, SUM(qty) AS s FROM tx GROUP BY id;",
                 CEP_ERR_SEMANTIC,
                 "Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS "
                 "SELECT statement instead.",
                 2, 1);
}

Test(parser_errors, sum_needs_a_number)
{
    expect_error(TX "CREATE TABLE o AS SELECT id, SUM(name) AS s FROM tx GROUP BY id;",
                 CEP_ERR_SEMANTIC, "SUM needs a numeric argument", 2, 30);
}

Test(parser_errors, nested_aggregates)
{
    expect_error(TX "CREATE TABLE o AS SELECT id, SUM(COUNT(*)) AS c FROM tx GROUP BY id;",
                 CEP_ERR_SEMANTIC, "aggregate calls cannot be nested", 2, 34);
}

Test(parser_errors, having_without_group_by)
{
    expect_error(TX "CREATE STREAM o AS SELECT id FROM tx HAVING qty > 1;", CEP_ERR_SEMANTIC,
                 "HAVING requires a GROUP BY clause", 2, 49);
}

Test(parser_errors, emit_final_needs_a_window)
{
    expect_error(TX "CREATE STREAM o AS SELECT * FROM tx EMIT FINAL;", CEP_ERR_SEMANTIC,
                 "EMIT FINAL is only supported for windowed aggregations.", 2, 37);
}

Test(parser_errors, bad_regular_expression_is_a_compile_error)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, REGEXP_LIKE(name, '(') AS c FROM tx;",
                 CEP_ERR_SEMANTIC,
                 "invalid regular expression at offset 1: missing closing parenthesis", 2, 31);
}

Test(parser_errors, integer_literal_out_of_range)
{
    expect_error(TX "CREATE STREAM o AS SELECT id, 99999999999999999999 AS big FROM tx;",
                 CEP_ERR_SYNTAX, "integer literal out of range: 99999999999999999999", 2, 31);
}

Test(parser_errors, declarations)
{
    expect_error("CREATE STREAM s (a INT) WITH (VALUE_FORMAT='JSON');", CEP_ERR_SEMANTIC,
                 "S needs KAFKA_TOPIC in its WITH clause", 1, 1);
    expect_error("CREATE STREAM s (a INT, a BIGINT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');",
                 CEP_ERR_SEMANTIC, "duplicate column 'A'", 1, 25);
    expect_error("CREATE STREAM s (a FLUB) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');",
                 CEP_ERR_SYNTAX, "unknown type 'FLUB'", 1, 20);
    expect_error("CREATE STREAM s (ROWTIME BIGINT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');",
                 CEP_ERR_SEMANTIC, "'ROWTIME' is a reserved column name", 1, 18);
    expect_error("CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON', COLOUR='red');",
                 CEP_ERR_SEMANTIC, "unknown property 'COLOUR'", 1, 69);
}

Test(parser_errors, bare_select_is_unsupported)
{
    expect_error(TX "SELECT id FROM tx", CEP_ERR_UNSUPPORTED,
                 "a bare SELECT is not a rule: use CREATE STREAM ... AS SELECT", 2, 1);
}

Test(parser_errors, error_offsets_point_into_the_text)
{
    const char *sql = TX "CREATE STREAM o AS SELECT id, amout FROM tx;";
    cep_error_t err;
    ut_compile_fail(sql, &err);
    cr_assert_eq(err.pos.length, 5);
    cr_assert_eq(strncmp(sql + err.pos.offset, "amout", 5), 0);
    char buf[256];
    cr_assert_str_eq(cep_error_format(&err, buf, sizeof buf),
                     "test.sql:2:31: unknown column 'AMOUT' in TX (did you mean AMOUNT?)");
}

Test(parser_errors, bootstrap_takes_window_off_or_a_duration)
{
    expect_error(TX "CREATE STREAM o WITH (BOOTSTRAP='soon') AS SELECT id FROM tx;", CEP_ERR_SEMANTIC,
                 "BOOTSTRAP must be 'window', 'off' or a duration such as '2 HOURS'", 2, 23);
    expect_error(TX "CREATE STREAM o WITH (BOOTSTRAP=5) AS SELECT id FROM tx;", CEP_ERR_SEMANTIC,
                 "BOOTSTRAP must be 'window', 'off' or a duration such as '2 HOURS'", 2, 23);
    expect_error(TX "CREATE STREAM o WITH (BOOTSTRAP='0 HOURS') AS SELECT id FROM tx;", CEP_ERR_SEMANTIC,
                 "BOOTSTRAP must be 'window', 'off' or a duration such as '2 HOURS'", 2, 23);
}
