/*
 * compile_support.h — compile a test's pack, optionally as the next version
 * of a running one (with its lineage, as hot reload does).
 */
#ifndef CEP_TEST_COMPILE_SUPPORT_H
#define CEP_TEST_COMPILE_SUPPORT_H

#include "patterns/rules.h"

/* sql compiled as file; prev (may be NULL) is the version it follows.
 * Fails the test with the compiler's message if it does not compile. */
cep_ruleset_t *cep_test_compile(const char *file, const char *sql, const cep_ruleset_t *prev);

#endif
