/*
 * harness.h — shared helpers of the patterns tests: compile a rule pack,
 * push JSON events through the real runtime and collect every output row
 * as one line of text "<SINK> <key json> <value json> ts=<t>[ w=<s>,<e>]".
 */
#ifndef CEP_TESTS_PATTERNS_HARNESS_H
#define CEP_TESTS_PATTERNS_HARNESS_H

#include "engine/runtime.h"
#include "patterns/rules.h"

typedef struct ut_run {
    cep_ruleset_t *rs;
    cep_runtime_t *rt;
    char **out; /* collected output lines, malloc'ed */
    size_t nout, cap;
} ut_run_t;

/* Compile sql (criterion-fails with the formatted error if it does not). */
void ut_run_open(ut_run_t *r, const char *sql);
void ut_run_close(ut_run_t *r);
/* Push one JSON record on topic; key NULL means no key. Returns the status. */
cep_status_t ut_push(ut_run_t *r, const char *topic, int64_t ts, const char *key, const char *value);
/* Assert the collected lines equal want[0..n) exactly, then forget them. */
void ut_expect(ut_run_t *r, const char *const *want, size_t n);
#define UT_EXPECT(r, ...)                                                                          \
    do {                                                                                           \
        const char *const ut_want_[] = {__VA_ARGS__};                                             \
        ut_expect((r), ut_want_, sizeof ut_want_ / sizeof ut_want_[0]);                           \
    } while (0)
#define UT_EXPECT_NONE(r) ut_expect((r), NULL, 0)

/* Compile sql that must fail; returns the status and fills err. */
cep_status_t ut_compile_fail(const char *sql, cep_error_t *err);

#endif
