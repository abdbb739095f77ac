/*
 * rules.h — the public face of patterns/: compile a rule pack (SQL text, a
 * .sql file or a folder of them) into one immutable rule set.
 */
#ifndef CEP_RULES_H
#define CEP_RULES_H

#include "base/base.h"

typedef struct cep_ruleset cep_ruleset_t;

/* Options that ksqlDB takes as properties. */
typedef struct cep_compile_opts {
    const char *default_key_format;   /* ksql.persistence.default.format.key; NULL = KAFKA */
    const char *default_value_format; /* ksql.persistence.default.format.value; NULL = none */
    bool wrap_single_values;          /* ksql.persistence.wrap.single.values (default true) */
    int64_t collect_list_limit, collect_set_limit; /* 0 = unlimited */
} cep_compile_opts_t;

void cep_compile_opts_init(cep_compile_opts_t *o);

/* Compile SQL text; file names positions. On success *out is owned by the
 * caller (free with cep_ruleset_free). On failure nothing is allocated and
 * err holds the first problem with its file:line:col. */
cep_status_t cep_rules_compile(const char *file, const char *sql, size_t len,
                               const cep_compile_opts_t *opts, cep_ruleset_t **out,
                               cep_error_t *err);
/* Compile a pack: a .sql file or a directory of them (sorted by name,
 * compiled together as one text so streams declared in one file serve the
 * rules of the others). */
cep_status_t cep_rules_compile_path(const char *path, const cep_compile_opts_t *opts,
                                    cep_ruleset_t **out, cep_error_t *err);
void cep_ruleset_free(cep_ruleset_t *rs);

uint32_t cep_ruleset_query_count(const cep_ruleset_t *rs);
uint32_t cep_ruleset_stream_count(const cep_ruleset_t *rs);

#endif
