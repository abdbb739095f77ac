/*
 * windows.c — windowed and unwindowed aggregation through the runtime:
 * tumbling with EMIT CHANGES, HAVING tombstones, session merges, hopping
 * windows, grace periods and EMIT FINAL, with every output row exact.
 */
#include <criterion/criterion.h>

#include "harness.h"

#define TX                                                                                         \
    "CREATE STREAM tx (id VARCHAR KEY, amount DOUBLE) "                                           \
    "WITH (KAFKA_TOPIC='tx', VALUE_FORMAT='JSON');\n"

Test(windows, tumbling_count_emit_changes)
{
    ut_run_t r;
    ut_run_open(&r, TX "CREATE TABLE cnt AS SELECT id, COUNT(*) AS n, SUM(amount) AS total FROM tx "
                       "WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY id EMIT CHANGES;");
    ut_push(&r, "tx", 1000, "a", "{\"amount\": 1.5}");
    ut_push(&r, "tx", 2000, "a", "{\"amount\": 2}");
    ut_push(&r, "tx", 3000, "b", "{\"amount\": 10}");
    ut_push(&r, "tx", 9000, "a", "{\"amount\": 0.25}");
    ut_push(&r, "tx", 12000, "a", "{\"amount\": 4}");
    UT_EXPECT(&r, "CNT \"a\" {\"N\":1,\"TOTAL\":1.5} ts=1000 w=0,10000",
              "CNT \"a\" {\"N\":2,\"TOTAL\":3.5} ts=2000 w=0,10000",
              "CNT \"b\" {\"N\":1,\"TOTAL\":10.0} ts=3000 w=0,10000",
              "CNT \"a\" {\"N\":3,\"TOTAL\":3.75} ts=9000 w=0,10000",
              "CNT \"a\" {\"N\":1,\"TOTAL\":4.0} ts=12000 w=10000,20000");
    ut_run_close(&r);
}

Test(windows, having_turns_false_into_a_tombstone)
{
    ut_run_t r;
    ut_run_open(&r, TX "CREATE TABLE few AS SELECT id, COUNT(*) AS n FROM tx GROUP BY id "
                       "HAVING COUNT(*) < 3;");
    ut_push(&r, "tx", 1000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 2000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 3000, "b", "{\"amount\": 1}");
    ut_push(&r, "tx", 4000, "a", "{\"amount\": 1}");
    /* once removed, a still-failing HAVING emits nothing more */
    ut_push(&r, "tx", 5000, "a", "{\"amount\": 1}");
    UT_EXPECT(&r, "FEW \"a\" {\"N\":1} ts=1000", "FEW \"a\" {\"N\":2} ts=2000",
              "FEW \"b\" {\"N\":1} ts=3000", "FEW \"a\" null ts=4000");
    ut_run_close(&r);
}

Test(windows, having_passes_only_above_threshold)
{
    ut_run_t r;
    ut_run_open(&r, TX "CREATE TABLE many AS SELECT id, COUNT(*) AS n FROM tx "
                       "WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY id HAVING COUNT(*) >= 2;");
    ut_push(&r, "tx", 1000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 2000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 3000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 61000, "a", "{\"amount\": 1}");
    UT_EXPECT(&r, "MANY \"a\" {\"N\":2} ts=2000 w=0,60000", "MANY \"a\" {\"N\":3} ts=3000 w=0,60000");
    ut_run_close(&r);
}

Test(windows, session_merge_retracts_the_old_sessions)
{
    ut_run_t r;
    ut_run_open(&r, TX "CREATE TABLE sess AS SELECT id, COUNT(*) AS n, MAX(amount) AS mx FROM tx "
                       "WINDOW SESSION (5 SECONDS) GROUP BY id;");
    ut_push(&r, "tx", 1000, "a", "{\"amount\": 1.5}");
    ut_push(&r, "tx", 2000, "a", "{\"amount\": 2}");
    ut_push(&r, "tx", 9000, "a", "{\"amount\": 0.25}"); /* 7 s later: a new session */
    UT_EXPECT(&r, "SESS \"a\" {\"N\":1,\"MX\":1.5} ts=1000 w=1000,1000",
              "SESS \"a\" null ts=1000 w=1000,1000",
              "SESS \"a\" {\"N\":2,\"MX\":2.0} ts=2000 w=1000,2000",
              "SESS \"a\" {\"N\":1,\"MX\":0.25} ts=9000 w=9000,9000");
    /* 5500 is within the gap of both sessions: the two merge into one */
    ut_push(&r, "tx", 5500, "a", "{\"amount\": 7}");
    UT_EXPECT(&r, "SESS \"a\" null ts=2000 w=1000,2000", "SESS \"a\" null ts=9000 w=9000,9000",
              "SESS \"a\" {\"N\":4,\"MX\":7.0} ts=9000 w=1000,9000");
    ut_run_close(&r);
}

Test(windows, hopping_updates_every_overlapping_window)
{
    ut_run_t r;
    ut_run_open(&r, TX "CREATE TABLE hop AS SELECT id, COUNT(*) AS n FROM tx "
                       "WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY id;");
    ut_push(&r, "tx", 1000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 7000, "a", "{\"amount\": 2}");
    UT_EXPECT(&r, "HOP \"a\" {\"N\":1} ts=1000 w=0,10000", "HOP \"a\" {\"N\":2} ts=7000 w=0,10000",
              "HOP \"a\" {\"N\":1} ts=7000 w=5000,15000");
    ut_run_close(&r);
}

Test(windows, late_records_after_grace_are_dropped)
{
    ut_run_t r;
    ut_run_open(&r, TX "CREATE TABLE late AS SELECT id, COUNT(*) AS n FROM tx "
                       "WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 1 SECONDS) GROUP BY id;");
    ut_push(&r, "tx", 1000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 10500, "b", "{\"amount\": 1}");
    ut_push(&r, "tx", 2000, "a", "{\"amount\": 1}");  /* 10000 + 1000 > 10500: still open */
    ut_push(&r, "tx", 11000, "b", "{\"amount\": 1}"); /* stream time reaches the close */
    ut_push(&r, "tx", 3000, "a", "{\"amount\": 1}");  /* too late */
    UT_EXPECT(&r, "LATE \"a\" {\"N\":1} ts=1000 w=0,10000", "LATE \"b\" {\"N\":1} ts=10500 w=10000,20000",
              "LATE \"a\" {\"N\":2} ts=2000 w=0,10000", "LATE \"b\" {\"N\":2} ts=11000 w=10000,20000");
    ut_run_close(&r);
}

Test(windows, emit_final_once_per_window_on_stream_time)
{
    ut_run_t r;
    ut_run_open(&r, TX "CREATE TABLE fin AS SELECT id, COUNT(*) AS n, AVG(amount) AS av FROM tx "
                       "WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 2 SECONDS) GROUP BY id EMIT FINAL;");
    ut_push(&r, "tx", 1000, "a", "{\"amount\": 1}");
    ut_push(&r, "tx", 7000, "a", "{\"amount\": 2}");
    ut_push(&r, "tx", 11000, "a", "{\"amount\": 3}");
    UT_EXPECT_NONE(&r);
    /* another key's record moves stream time past 10000 + 2000 */
    ut_push(&r, "tx", 12500, "b", "{\"amount\": 4}");
    UT_EXPECT(&r, "FIN \"a\" {\"N\":2,\"AV\":1.5} ts=7000 w=0,10000");
    ut_push(&r, "tx", 9000, "a", "{\"amount\": 5}"); /* its window has closed */
    ut_push(&r, "tx", 21999, "a", "{\"amount\": 6}");
    UT_EXPECT_NONE(&r);
    ut_push(&r, "tx", 22000, "c", "{\"amount\": 6}");
    UT_EXPECT(&r, "FIN \"a\" {\"N\":1,\"AV\":3.0} ts=11000 w=10000,20000",
              "FIN \"b\" {\"N\":1,\"AV\":4.0} ts=12500 w=10000,20000");
    ut_run_close(&r);
}
