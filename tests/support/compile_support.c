/*
 * compile_support.c — see compile_support.h.
 */
#include "compile_support.h"

#include <criterion/criterion.h>
#include <string.h>

cep_ruleset_t *cep_test_compile(const char *file, const char *sql, const cep_ruleset_t *prev)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cep_compile_opts_t o;
    cep_compile_opts_init(&o);
    cep_lineage_t l;
    if (prev) {
        cr_assert_eq(cep_ruleset_lineage(prev, &l), CEP_OK);
        o.lineage = &l;
    }
    cr_assert_eq(cep_rules_compile(file, sql, strlen(sql), &o, &rs, &err), CEP_OK, "%s\n%s", err.msg, sql);
    if (prev) cep_lineage_free(&l);
    return rs;
}
