/*
 * rules.h — the public face of patterns/: compile a rule pack (SQL text, a
 * .sql file or a folder of them) into one immutable rule set.
 */
#ifndef CEP_RULES_H
#define CEP_RULES_H

#include "base/base.h"

typedef struct cep_ruleset cep_ruleset_t;

/* ---- lineage: where each rule's state comes from --------------------------
 *
 * A rule is identified by its name. Its state fingerprint says what its
 * state means (its input, WHERE, grouping, window, aggregates, pattern...),
 * not what it does with it (HAVING, projection, severity, output topic,
 * description). Its origin is the pack version since which that state has
 * been gathered. Compiling a new version of a running pack with the old
 * one's lineage keeps the origin of every rule whose state fingerprint did
 * not change and gives new and changed rules the new version's: state
 * tables are named by origin too, so a rule that starts fresh never reads
 * state gathered before it, and aggregations share state only with rules
 * of the same origin. The lineage is saved with checkpoints, so a restart
 * plans the pack exactly as the running instance did. */
typedef struct cep_lineage_rule {
    char *name;
    uint64_t state_fp;
    uint32_t origin;
} cep_lineage_rule_t;

typedef struct cep_lineage {
    uint32_t version; /* the pack version: 0 at the first start, +1 per reload */
    cep_lineage_rule_t *rules;
    uint32_t n;
} cep_lineage_t;

/* Options that ksqlDB takes as properties. */
typedef struct cep_compile_opts {
    const char *default_key_format;   /* ksql.persistence.default.format.key; NULL = KAFKA */
    const char *default_value_format; /* ksql.persistence.default.format.value; NULL = none */
    bool wrap_single_values;          /* ksql.persistence.wrap.single.values (default true) */
    int64_t collect_list_limit, collect_set_limit; /* 0 = unlimited */
    const cep_lineage_t *lineage; /* the running pack's (a reload or a restart), or NULL */
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

/* The compiled pack's lineage (owned copies; free with cep_lineage_free). */
cep_status_t cep_ruleset_lineage(const cep_ruleset_t *rs, cep_lineage_t *out);
void cep_lineage_free(cep_lineage_t *l);
/* As bytes (saved with checkpoints) and back; false: not a lineage. */
void cep_lineage_encode(const cep_lineage_t *l, cep_buf_t *out);
bool cep_lineage_decode(const void *p, size_t n, cep_lineage_t *out);

/* What a new version does to each rule, for the reload log: rules of old
 * and of next by name, in next's order, then the removed ones. */
typedef enum cep_rule_change {
    CEP_RULE_SAME,      /* the same text: state and matches in flight go on */
    CEP_RULE_KEPT,      /* changed, its state still means the same: it goes on */
    CEP_RULE_RESET,     /* changed so its state would mean something else: starts empty */
    CEP_RULE_STATELESS, /* changed, and has no state */
    CEP_RULE_ADDED,
    CEP_RULE_REMOVED,
} cep_rule_change_t;
const char *cep_rule_change_name(cep_rule_change_t c);
typedef void (*cep_rule_change_fn)(void *ctx, const char *rule, cep_rule_change_t change, const char *version);
/* Calls fn once per rule (internal helper queries are not rules). Returns
 * the number of rules that are not CEP_RULE_SAME. */
uint32_t cep_ruleset_diff(const cep_ruleset_t *old, const cep_ruleset_t *next, cep_rule_change_fn fn, void *ctx);
uint32_t cep_ruleset_stream_count(const cep_ruleset_t *rs);

#endif
