/*
 * functions.c — REGEXP_LIKE, REGEXP_EXTRACT and GEO_DISTANCE through
 * compiled rules.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define EV                                                                                         \
    "CREATE STREAM ev (id VARCHAR KEY, s VARCHAR, lat1 DOUBLE, lon1 DOUBLE, lat2 DOUBLE, "        \
    "lon2 DOUBLE) WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON');\n"

Test(functions, regexp_like_matches_the_whole_pattern_anchors)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, REGEXP_LIKE(s, '^user-[0-9]+$') AS full, "
                       "REGEXP_LIKE(s, '[0-9]') AS part FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"s\": \"user-42\"}");
    ut_push(&r, "ev", 2, "k", "{\"s\": \"user-42x\"}");
    ut_push(&r, "ev", 3, "k", "{\"s\": \"abc\"}");
    ut_push(&r, "ev", 4, "k", "{}");
    UT_EXPECT(&r, "O \"k\" {\"FULL\":true,\"PART\":true} ts=1",
              "O \"k\" {\"FULL\":false,\"PART\":true} ts=2",
              "O \"k\" {\"FULL\":false,\"PART\":false} ts=3",
              "O \"k\" {\"FULL\":null,\"PART\":null} ts=4");
    ut_run_close(&r);
}

Test(functions, regexp_like_in_where)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, s FROM ev WHERE REGEXP_LIKE(s, '^(admin|root)$');");
    ut_push(&r, "ev", 1, "a", "{\"s\": \"root\"}");
    ut_push(&r, "ev", 2, "b", "{\"s\": \"rooted\"}");
    ut_push(&r, "ev", 3, "c", "{\"s\": \"admin\"}");
    UT_EXPECT(&r, "O \"a\" {\"S\":\"root\"} ts=1", "O \"c\" {\"S\":\"admin\"} ts=3");
    ut_run_close(&r);
}

Test(functions, regexp_extract_groups)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, REGEXP_EXTRACT('([a-z]+)-([0-9]+)', s) AS g0, "
                       "REGEXP_EXTRACT('([a-z]+)-([0-9]+)', s, 1) AS g1, "
                       "REGEXP_EXTRACT('([a-z]+)-([0-9]+)', s, 2) AS g2 FROM ev;");
    ut_push(&r, "ev", 1, "k", "{\"s\": \"id: user-42, host-7\"}");
    ut_push(&r, "ev", 2, "k", "{\"s\": \"nothing here\"}");
    UT_EXPECT(&r, "O \"k\" {\"G0\":\"user-42\",\"G1\":\"user\",\"G2\":\"42\"} ts=1",
              "O \"k\" {\"G0\":null,\"G1\":null,\"G2\":null} ts=2");
    ut_run_close(&r);
}

/* The haversine distance on a sphere of 6371 km (3959 mi), as ksqlDB. */
static double haversine(double la1, double lo1, double la2, double lo2, double radius)
{
    double r1 = la1 * M_PI / 180, r2 = la2 * M_PI / 180;
    double dla = (la2 - la1) * M_PI / 180, dlo = (lo2 - lo1) * M_PI / 180;
    double a = pow(sin(dla / 2), 2) + pow(sin(dlo / 2), 2) * cos(r1) * cos(r2);
    return 2 * asin(sqrt(a)) * radius;
}

static double field(const char *line, const char *name)
{
    const char *p = strstr(line, name);
    cr_assert_not_null(p, "%s in %s", name, line);
    return strtod(p + strlen(name), NULL);
}

Test(functions, geo_distance_km_and_miles)
{
    ut_run_t r;
    ut_run_open(&r, EV "CREATE STREAM o AS SELECT id, GEO_DISTANCE(lat1, lon1, lat2, lon2) AS km, "
                       "GEO_DISTANCE(lat1, lon1, lat2, lon2, 'MI') AS mi FROM ev;");
    ut_push(&r, "ev", 1, "k",
            "{\"lat1\": 37.4133, \"lon1\": -122.1162, \"lat2\": 37.7749, \"lon2\": -122.4194}");
    ut_push(&r, "ev", 2, "k", "{\"lat1\": 0, \"lon1\": 0, \"lat2\": 0, \"lon2\": 180}");
    ut_push(&r, "ev", 3, "k", "{\"lat1\": 51.5, \"lon1\": 0, \"lat2\": 51.5, \"lon2\": 0}");
    ut_push(&r, "ev", 4, "k", "{\"lat1\": 1}");
    cr_assert_eq(r.nout, 4);
    /* the last digits depend on the order of floating-point operations:
     * compare to within 1e-9 km of ksqlDB's formula */
    cr_assert_float_eq(field(r.out[0], "\"KM\":"), haversine(37.4133, -122.1162, 37.7749, -122.4194, 6371), 1e-9);
    cr_assert_float_eq(field(r.out[0], "\"MI\":"), haversine(37.4133, -122.1162, 37.7749, -122.4194, 3959), 1e-9);
    cr_assert_float_eq(field(r.out[0], "\"KM\":"), 48.27318, 1e-5);
    /* half the circumference: pi * 6371 */
    cr_assert_float_eq(field(r.out[1], "\"KM\":"), M_PI * 6371, 1e-9);
    cr_assert_str_eq(r.out[2], "O \"k\" {\"KM\":0.0,\"MI\":0.0} ts=3");
    cr_assert_str_eq(r.out[3], "O \"k\" {\"KM\":null,\"MI\":null} ts=4");
    ut_run_close(&r);
}
