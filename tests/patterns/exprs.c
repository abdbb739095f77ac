/*
 * exprs.c — expressions evaluated through compiled rules: each test
 * compiles a source stream and a CREATE STREAM AS SELECT, pushes JSON
 * events through the runtime and compares every output row exactly.
 */
#include <criterion/criterion.h>

#include "harness.h"

#define EV                                                                                         \
    "CREATE STREAM ev (id VARCHAR KEY, s VARCHAR, n INT, b BIGINT, d DOUBLE, f BOOLEAN) "         \
    "WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON');\n"

Test(exprs, arithmetic_keeps_java_types)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, n + b AS nb, n * 2 - 1 AS arith, d / 4 AS q, "
                       "n / 2 AS idiv, n % 3 AS m, -n AS neg, CAST(n AS DOUBLE) / 3 AS third FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"n\": 5, \"b\": 10, \"d\": 1.0}");
    ut_push(&r, "ev", 2, "k", "{\"n\": -4, \"b\": 9000000000, \"d\": 0.3}");
    /* INT arithmetic wraps at 32 bits; INT + BIGINT is BIGINT */
    ut_push(&r, "ev", 3, "k", "{\"n\": 2147483647, \"b\": 1}");
    UT_EXPECT(&r,
              "O \"k\" {\"NB\":15,\"ARITH\":9,\"Q\":0.25,\"IDIV\":2,\"M\":2,\"NEG\":-5,"
              "\"THIRD\":1.6666666666666667} ts=1",
              "O \"k\" {\"NB\":8999999996,\"ARITH\":-9,\"Q\":0.075,\"IDIV\":-2,\"M\":-1,\"NEG\":4,"
              "\"THIRD\":-1.3333333333333333} ts=2",
              "O \"k\" {\"NB\":2147483648,\"ARITH\":-3,\"Q\":null,\"IDIV\":1073741823,\"M\":1,"
              "\"NEG\":-2147483647,\"THIRD\":7.158278823333334E8} ts=3");
    ut_run_close(&r);
}

Test(exprs, division_by_zero_is_null)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, n / 0 AS dz, b % 0 AS mz FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"n\": 5, \"b\": 7}");
    UT_EXPECT(&r, "O \"k\" {\"DZ\":null,\"MZ\":null} ts=1");
    ut_run_close(&r);
}

Test(exprs, where_filters_rows)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, n FROM ev WHERE n > 1 AND s = 'x';");
    ut_push(&r, "ev", 1, "a", "{\"n\": 5, \"s\": \"x\"}");
    ut_push(&r, "ev", 2, "b", "{\"n\": 1, \"s\": \"x\"}");
    ut_push(&r, "ev", 3, "c", "{\"n\": 9, \"s\": \"y\"}");
    ut_push(&r, "ev", 4, "d", "{\"s\": \"x\"}");
    ut_push(&r, "ev", 5, "e", "{\"n\": 2, \"s\": \"x\"}");
    UT_EXPECT(&r, "O \"a\" {\"N\":5} ts=1", "O \"e\" {\"N\":2} ts=5");
    ut_run_close(&r);
}

Test(exprs, three_valued_logic)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, NOT f AS nf, f AND n > 0 AS a, f OR n > 0 AS o, "
                       "f IS NULL AS isn FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"f\": true, \"n\": 1}");
    ut_push(&r, "ev", 2, "k", "{\"f\": null, \"n\": 1}");
    ut_push(&r, "ev", 3, "k", "{\"f\": null, \"n\": -1}");
    ut_push(&r, "ev", 4, "k", "{\"f\": false}");
    UT_EXPECT(&r, "O \"k\" {\"NF\":false,\"A\":true,\"O\":true,\"ISN\":false} ts=1",
              "O \"k\" {\"NF\":null,\"A\":null,\"O\":true,\"ISN\":true} ts=2",
              "O \"k\" {\"NF\":null,\"A\":false,\"O\":null,\"ISN\":true} ts=3",
              "O \"k\" {\"NF\":true,\"A\":false,\"O\":null,\"ISN\":false} ts=4");
    ut_run_close(&r);
}

Test(exprs, case_in_between_like)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, CASE WHEN n > 10 THEN 'big' WHEN n > 0 THEN "
                       "'small' END AS sz, n IN (1, 2, 3) AS i, n BETWEEN 2 AND 5 AS bt, "
                       "s LIKE 'us%r_' AS lk FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"n\": 12, \"s\": \"user1\"}");
    ut_push(&r, "ev", 2, "k", "{\"n\": 2, \"s\": \"user\"}");
    ut_push(&r, "ev", 3, "k", "{\"n\": -1, \"s\": \"usXXr9\"}");
    ut_push(&r, "ev", 4, "k", "{}");
    UT_EXPECT(&r, "O \"k\" {\"SZ\":\"big\",\"I\":false,\"BT\":false,\"LK\":true} ts=1",
              "O \"k\" {\"SZ\":\"small\",\"I\":true,\"BT\":true,\"LK\":false} ts=2",
              "O \"k\" {\"SZ\":null,\"I\":false,\"BT\":false,\"LK\":true} ts=3",
              "O \"k\" {\"SZ\":null,\"I\":null,\"BT\":null,\"LK\":null} ts=4");
    ut_run_close(&r);
}

Test(exprs, string_functions)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, SUBSTRING(s, 2, 3) AS sub, UCASE(s) AS up, "
                       "LCASE(s) AS lo, TRIM(s) AS tr, LEN(s) AS l, CONCAT(s, '!') AS c FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"s\": \" Hello \"}");
    UT_EXPECT(&r, "O \"k\" {\"SUB\":\"Hel\",\"UP\":\" HELLO \",\"LO\":\" hello \",\"TR\":\"Hello\","
                  "\"L\":7,\"C\":\" Hello !\"} ts=1");
    ut_run_close(&r);
}

Test(exprs, null_functions)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, COALESCE(s, 'none') AS co, IFNULL(n, -1) AS ifn, "
                       "NULLIF(n, 5) AS nif FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"s\": \"x\", \"n\": 5}");
    ut_push(&r, "ev", 2, "k", "{\"n\": 6}");
    UT_EXPECT(&r, "O \"k\" {\"CO\":\"x\",\"IFN\":5,\"NIF\":null} ts=1",
              "O \"k\" {\"CO\":\"none\",\"IFN\":6,\"NIF\":6} ts=2");
    ut_run_close(&r);
}

Test(exprs, casts_follow_java)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, CAST(d AS INT) AS i, CAST(d AS BIGINT) AS b, "
                       "CAST(d AS DECIMAL(12, 2)) AS dec, CAST(d AS VARCHAR) AS s FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"d\": 1.005}");
    ut_push(&r, "ev", 2, "k", "{\"d\": -2.5}");
    ut_push(&r, "ev", 3, "k", "{\"d\": 3e9}");
    ut_push(&r, "ev", 4, "k", "{\"d\": 1e20}");
    UT_EXPECT(&r, "O \"k\" {\"I\":1,\"B\":1,\"DEC\":1.01,\"S\":\"1.005\"} ts=1",
              "O \"k\" {\"I\":-2,\"B\":-2,\"DEC\":-2.50,\"S\":\"-2.5\"} ts=2",
              "O \"k\" {\"I\":2147483647,\"B\":3000000000,\"DEC\":3000000000.00,\"S\":\"3.0E9\"} ts=3",
              "O \"k\" {\"I\":2147483647,\"B\":9223372036854775807,\"DEC\":null,\"S\":\"1.0E20\"} ts=4");
    ut_run_close(&r);
}

Test(exprs, bad_event_is_a_decode_error_and_is_skipped)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, n FROM ev;");
    cr_assert_eq(ut_push(&r, "ev", 1, "k", "{\"n\": 1"), CEP_ERR_DECODE);
    cr_assert_eq(ut_push(&r, "ev", 2, "k", "{\"n\": \"seven\"}"), CEP_ERR_DECODE);
    cr_assert_eq(ut_push(&r, "ev", 3, "k", "{\"n\": 3}"), CEP_OK);
    cr_assert_eq(ut_push(&r, "other", 4, "k", "{\"n\": 4}"), CEP_OK, "unread topics are ignored");
    UT_EXPECT(&r, "O \"k\" {\"N\":3} ts=3");
    ut_run_close(&r);
}

Test(exprs, derived_stream_feeds_the_next_rule)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM a AS SELECT id, n * 10 AS t FROM ev WHERE n > 0;\n"
                       "CREATE STREAM b AS SELECT id, t + 1 AS u FROM a WHERE t < 100;");
    ut_push(&r, "ev", 1, "k", "{\"n\": 2}");
    ut_push(&r, "ev", 2, "k", "{\"n\": 20}");
    ut_push(&r, "ev", 3, "k", "{\"n\": -1}");
    UT_EXPECT(&r, "A \"k\" {\"T\":20} ts=1", "B \"k\" {\"U\":21} ts=1", "A \"k\" {\"T\":200} ts=2");
    ut_run_close(&r);
}
