/*
 * errors.c — the one error type: first error wins, positions are copied so
 * the error outlives its source, and the "file:line:col: msg" format.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

Test(errors, set_records_code_position_and_message)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_pos_t pos = {.file = "rules.sql", .line = 3, .col = 14, .offset = 40, .length = 5};
    cr_assert_eq(cep_error_set(&err, CEP_ERR_SEMANTIC, &pos, "unknown column '%s'", "AMT"),
                 CEP_ERR_SEMANTIC);
    cr_assert_eq(err.code, CEP_ERR_SEMANTIC);
    cr_assert_str_eq(err.msg, "unknown column 'AMT'");
    cr_assert_eq(err.pos.line, 3);
    cr_assert_eq(err.pos.col, 14);
    cr_assert_eq(err.pos.offset, 40);
    cr_assert_eq(err.pos.length, 5);
    cr_assert_str_eq(err.pos.file, "rules.sql");
}

Test(errors, first_error_wins)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_pos_t p1 = {.file = "a.sql", .line = 1, .col = 2};
    cep_pos_t p2 = {.file = "b.sql", .line = 9, .col = 9};
    cep_error_set(&err, CEP_ERR_SYNTAX, &p1, "first");
    /* the later call still reports its own code to its caller */
    cr_assert_eq(cep_error_set(&err, CEP_ERR_IO, &p2, "second"), CEP_ERR_IO);
    cr_assert_eq(err.code, CEP_ERR_SYNTAX);
    cr_assert_str_eq(err.msg, "first");
    cr_assert_eq(err.pos.line, 1);
    cr_assert_eq(err.pos.col, 2);
    cr_assert_str_eq(err.file, "a.sql");
}

Test(errors, clear_allows_a_new_error)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_error_set(&err, CEP_ERR_SYNTAX, NULL, "first");
    cep_error_clear(&err);
    cr_assert_eq(err.code, CEP_OK);
    cep_error_set(&err, CEP_ERR_DECODE, NULL, "second");
    cr_assert_eq(err.code, CEP_ERR_DECODE);
    cr_assert_str_eq(err.msg, "second");
}

Test(errors, null_error_is_ignored_but_code_returned)
{
    cr_assert_eq(cep_error_set(NULL, CEP_ERR_NOMEM, NULL, "out of memory"), CEP_ERR_NOMEM);
}

Test(errors, file_name_is_copied)
{
    char name[32];
    snprintf(name, sizeof name, "%s", "pack/rule.sql");
    cep_pos_t pos = {.file = name, .line = 2, .col = 7};
    cep_error_t err;
    cep_error_clear(&err);
    cep_error_set(&err, CEP_ERR_SYNTAX, &pos, "boom");
    memset(name, 'x', sizeof name - 1); /* the source goes away */
    cr_assert_str_eq(err.pos.file, "pack/rule.sql");
    cr_assert_eq(err.pos.file, err.file, "pos.file must point into the error itself");
}

Test(errors, format_with_file_line_col)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_pos_t pos = {.file = "r.sql", .line = 12, .col = 5};
    cep_error_set(&err, CEP_ERR_SYNTAX, &pos, "expected %s", "FROM");
    char buf[128];
    cr_assert_str_eq(cep_error_format(&err, buf, sizeof buf), "r.sql:12:5: expected FROM");
}

Test(errors, format_without_file_names_input)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_pos_t pos = {.line = 1, .col = 1};
    cep_error_set(&err, CEP_ERR_SYNTAX, &pos, "bad");
    char buf[64];
    cr_assert_str_eq(cep_error_format(&err, buf, sizeof buf), "<input>:1:1: bad");
}

Test(errors, format_without_position)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_error_set(&err, CEP_ERR_IO, NULL, "disk on fire");
    char buf[64];
    cr_assert_str_eq(cep_error_format(&err, buf, sizeof buf), "disk on fire");

    cep_error_clear(&err);
    cep_pos_t fileonly = {.file = "x.sql"};
    cep_error_set(&err, CEP_ERR_IO, &fileonly, "empty");
    cr_assert_str_eq(cep_error_format(&err, buf, sizeof buf), "x.sql: empty");
}

Test(errors, format_truncates_to_capacity)
{
    cep_error_t err;
    cep_error_clear(&err);
    cep_pos_t pos = {.file = "f", .line = 1, .col = 2};
    cep_error_set(&err, CEP_ERR_SYNTAX, &pos, "abcdef");
    char buf[8];
    cr_assert_str_eq(cep_error_format(&err, buf, sizeof buf), "f:1:2: ");
}

Test(errors, status_names)
{
    cr_assert_str_eq(cep_status_name(CEP_OK), "ok");
    cr_assert_str_eq(cep_status_name(CEP_ERR_SYNTAX), "syntax error");
    cr_assert_str_eq(cep_status_name(CEP_ERR_SEMANTIC), "semantic error");
    cr_assert_str_eq(cep_status_name(CEP_ERR_NOMEM), "out of memory");
    cr_assert_str_eq(cep_status_name(CEP_ERR_ARG), "usage error");
    cr_assert_str_eq(cep_status_name(CEP_STATUS_COUNT), "unknown");
    cr_assert_str_eq(cep_status_name((cep_status_t)-1), "unknown");
}

Test(errors, file_read_missing_file_is_io_error)
{
    cep_error_t err;
    cep_error_clear(&err);
    char *data = NULL;
    size_t len = 0;
    cr_assert_eq(cep_file_read("/nonexistent/cep-ut.sql", &data, &len, &err), CEP_ERR_IO);
    cr_assert_eq(err.code, CEP_ERR_IO);
    cr_assert_str_eq(err.msg, "/nonexistent/cep-ut.sql: No such file or directory");
    cr_assert_null(data);
}

Test(errors, durations_as_people_write_them)
{
    int64_t ms = -1;
    cr_assert(cep_parse_duration("30 MINUTES", &ms));
    cr_assert_eq(ms, 1800000);
    cr_assert(cep_parse_duration("1 hour", &ms));
    cr_assert_eq(ms, 3600000);
    cr_assert(cep_parse_duration("90s", &ms));
    cr_assert_eq(ms, 90000);
    cr_assert(cep_parse_duration("500ms", &ms));
    cr_assert_eq(ms, 500);
    cr_assert(cep_parse_duration(" 2 d ", &ms));
    cr_assert_eq(ms, 172800000);
    cr_assert(cep_parse_duration("1 WEEK", &ms));
    cr_assert_eq(ms, 604800000);
    ms = -1;
    cr_assert_not(cep_parse_duration("", &ms));
    cr_assert_not(cep_parse_duration("MINUTES", &ms));
    cr_assert_not(cep_parse_duration("5 fortnights", &ms));
    cr_assert_not(cep_parse_duration("-5 s", &ms));
    cr_assert_not(cep_parse_duration("99999999999999999 days", &ms), "beyond the time range");
    cr_assert_eq(ms, -1, "untouched on failure");
}
