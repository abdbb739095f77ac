/*
 * plan.h — the compiled rule set: streams with their slot layouts, queries
 * with their programs, aggregates and windows, and the per-stream prefilter.
 * Everything here lives in one arena and is immutable once built; the
 * runtime only reads it. Internal to cep (the public view is rules.h).
 */
#ifndef CEP_PLAN_H
#define CEP_PLAN_H

#include "patterns/ast.h"
#include "patterns/expr.h"

typedef enum cep_format {
    CEP_FMT_JSON,
    CEP_FMT_DELIMITED,
    CEP_FMT_KAFKA,
    CEP_FMT_NONE,
    CEP_FMT_COUNT
} cep_format_t;

typedef struct cep_column {
    const char *name;
    const cep_type_t *type;
    bool is_key;
} cep_column_t;

/* Pseudo columns follow the declared columns in every row. */
enum {
    CEP_PSEUDO_ROWTIME,
    CEP_PSEUDO_ROWPARTITION,
    CEP_PSEUDO_ROWOFFSET,
    CEP_PSEUDO_WINDOWSTART,
    CEP_PSEUDO_WINDOWEND,
    CEP_PSEUDO_COUNT
};

typedef struct cep_query cep_query_t;

/* A prefilter bucket: the queries whose WHERE requires slot = value. */
typedef struct cep_pf_bucket {
    cep_value_t value;
    uint32_t *queries;
    uint32_t nqueries;
} cep_pf_bucket_t;

typedef struct cep_pf_index {
    uint32_t slot;
    cep_pf_bucket_t *buckets; /* open addressing, power-of-two size */
    uint32_t nbuckets;
} cep_pf_index_t;

typedef struct cep_stream {
    uint32_t id;
    const char *name;
    bool is_table;
    bool is_source; /* declared with columns, fed from outside */
    const char *topic;
    bool topic_given; /* KAFKA_TOPIC was written (else the topic is the name, as in ksqlDB) */
    cep_format_t key_format, value_format;
    bool wrap_single;
    char delimiter;
    cep_column_t *cols;
    uint32_t ncols;
    uint32_t msg_key;   /* WITH (KEY='col'): 1 + the value column the message key carries; 0 = unknown */
    uint32_t *key_cols; /* indices of key columns, in declaration order */
    uint32_t nkey;
    int ts_col; /* TIMESTAMP column index, or -1 for the record time */
    const char *ts_format;
    cep_window_kind_t window_type; /* windowed source (WINDOW_TYPE=) */
    int64_t window_size;
    uint32_t nslots; /* ncols + CEP_PSEUDO_COUNT */
    bool *needed;    /* per column: some query reads it (decode only these) */
    /* field name -> column, by case-folded name hash: [0] value columns,
     * [1] key columns (open addressing, mask+1 slots, col -1 = empty). A
     * folded name shared by two columns ("a" and "A") marks the part
     * ambiguous, and the decoder falls back to its exact-match-first scan. */
    struct cep_field_slot {
        uint64_t hash;
        int32_t col;
    } *fields[2];
    uint32_t fields_mask[2];
    bool fields_ambiguous[2];

    /* queries reading this stream, in statement order */
    uint32_t *queries;
    uint32_t nqueries;
    /* prefilter: queries indexed on slot = constant; others always run */
    cep_pf_index_t *pf;
    uint32_t npf;
    uint32_t *pf_always;
    uint32_t npf_always;
    /* WHERE atoms of the queries on this stream, shared and memoised */
    cep_program_t **atoms;
    uint32_t natoms;
} cep_stream_t;

typedef enum cep_agg_kind {
    AGG_COUNT,      /* COUNT(*) / COUNT(x) */
    AGG_COUNT_DISTINCT,
    AGG_SUM,
    AGG_MIN,
    AGG_MAX,
    AGG_AVG,
    AGG_LATEST,     /* LATEST_BY_OFFSET */
    AGG_EARLIEST,   /* EARLIEST_BY_OFFSET */
    AGG_COLLECT_LIST,
    AGG_COLLECT_SET,
    AGG_TOPK,
    AGG_TOPKDISTINCT,
    AGG_KIND_COUNT
} cep_agg_kind_t;

typedef struct cep_aggspec {
    cep_agg_kind_t kind;
    cep_program_t *arg;  /* over the source row; NULL for COUNT(*) */
    cep_program_t *arg2; /* TOPK(value, other, k): the second column */
    const cep_type_t *type; /* result type */
    const cep_type_t *arg_type;
    int64_t n;           /* TOPK k, *_BY_OFFSET n, collect limit */
    bool n_given;        /* *_BY_OFFSET(x, n): the result is an ARRAY */
    bool ignore_nulls;
    bool count_star;
} cep_aggspec_t;

typedef struct cep_window_spec {
    cep_window_kind_t kind;
    int64_t size, advance, gap, grace;
    int64_t retention; /* how long closed windows are kept for EMIT FINAL */
} cep_window_spec_t;

/* BOOTSTRAP (engine/bootstrap.h): warm the rule's state from history when
 * a reload adds or resets it. */
#define CEP_BOOTSTRAP_UNSET 0
#define CEP_BOOTSTRAP_WINDOW (-1) /* 'window': the span its state covers */
#define CEP_BOOTSTRAP_OFF (-2)
typedef struct cep_rule_meta {
    const char *severity, *owner, *description, *mode;
    const char **tags;
    uint32_t ntags;
    int64_t bootstrap_ms; /* > 0: that much history; else CEP_BOOTSTRAP_* */
    bool shadow;          /* MODE='shadow': alerts go to CEP_SHADOW_TOPIC, marked */
} cep_rule_meta_t;

/* Where every shadow rule's alerts go on Kafka, whatever its KAFKA_TOPIC:
 * a rule on probation never writes where live consumers read. */
#define CEP_SHADOW_TOPIC "cep.alerts.shadow"

typedef enum cep_query_kind { CEP_Q_PROJECT, CEP_Q_AGGREGATE, CEP_Q_MATCH, CEP_Q_OVER } cep_query_kind_t;

/* One sliding per-event aggregate: agg(arg) OVER (PARTITION BY .. ORDER BY
 * t RANGE BETWEEN range_ms PRECEDING AND CURRENT ROW): for each row, the
 * aggregate over the rows of its partition with t in [t - range_ms, t]. */
typedef struct cep_overspec {
    cep_program_t **partition; /* over the input row */
    uint32_t npartition;
    cep_program_t *order;      /* the row's time, BIGINT */
    int64_t range_ms;
    cep_agg_kind_t kind;       /* COUNT, COUNT_DISTINCT, SUM, AVG, MIN, MAX */
    cep_program_t *arg;        /* NULL for COUNT(*) */
    const cep_type_t *type;
} cep_overspec_t;

/* Aggregations that differ only in HAVING, projection and metadata (the
 * threshold tiers and severities of one detection) share one operator: same
 * source, WHERE, GROUP BY, window, grace and emit mode. The operator keeps
 * the union of their aggregates in one state entry per (key, window); each
 * member reads its own aggregates through its aggmap. At most
 * CEP_SHARE_MAX members, so a member's HAVING state is one bit. */
#ifndef CEP_SHARE_MAX
#define CEP_SHARE_MAX 64
#endif
typedef struct cep_aggshare {
    uint32_t id;
    cep_query_t **members; /* statement order */
    uint32_t nmembers;
    const cep_aggspec_t **specs; /* the union, borrowed from the members */
    uint32_t nspecs;
    uint64_t fingerprint; /* identity of the shared state */
    uint32_t max_agg_nslots, max_sink_cols;
} cep_aggshare_t;

struct cep_query {
    uint32_t id;
    const char *name; /* the sink's name: the rule name */
    uint64_t fingerprint; /* of its text: the rule_version alerts carry */
    /* lineage (rules.h): what its state means, and the pack version since
     * which it has been gathered; state tables are named by both */
    uint64_t state_fp;
    uint32_t origin;
    cep_query_kind_t kind;
    cep_stream_t *from;
    cep_stream_t *sink;
    cep_rule_meta_t meta;
    cep_pos_t pos;
    const char *text;

    /* WHERE as a conjunction of shared atoms of from->atoms */
    uint32_t *where_atoms;
    uint32_t nwhere;

    /* CEP_Q_PROJECT: one program per sink column, over the source row */
    cep_program_t **proj;

    /* CEP_Q_AGGREGATE */
    cep_program_t **group; /* over the source row */
    uint32_t ngroup;
    cep_aggspec_t *aggs;
    uint32_t naggs;
    cep_window_spec_t win;
    bool emit_final;
    cep_program_t *having; /* over the aggregate row, or NULL */
    cep_program_t **out;   /* one per sink column, over the aggregate row */
    /* aggregate row layout: [group values][aggregate results][WINDOWSTART][WINDOWEND][ROWTIME] */
    uint32_t agg_nslots;
    /* a table source aggregates a changelog: updates retract the old row */
    bool from_table;
    /* the shared operator this aggregation runs in, its bit there, and
     * aggmap[i] = the union index of aggs[i] */
    cep_aggshare_t *share;
    uint32_t share_member;
    uint32_t *aggmap;

    /* CEP_Q_MATCH: the compiled MATCH_RECOGNIZE (patterns/match.h) */
    struct cep_match_plan *match;
    /* its rows feed the query that selects from it; they are not alerts */
    bool internal;

    /* CEP_Q_OVER: the sliding aggregates; proj reads the scope row (input
     * columns, then one column per aggregate, then the pseudo columns) */
    cep_overspec_t *overs;
    uint32_t novers;
    uint32_t over_scope_ncols;
};

static inline uint32_t cep_aggrow_ws(const cep_query_t *q)
{
    return q->ngroup + q->naggs;
}

struct cep_ruleset {
    cep_arena_t arena;
    cep_stream_t **streams;
    uint32_t nstreams;
    cep_query_t **queries;
    uint32_t nqueries;
    uint32_t max_slots; /* widest row, for scratch sizing */
    uint32_t max_atoms;
    cep_aggshare_t **shares;
    uint32_t nshares;
    uint32_t version; /* the lineage's pack version */
};

/* How far back a query's state reaches in event time: 0 = it keeps none,
 * -1 = no bound. A window that still takes records (its size; with EMIT
 * FINAL up to its grace), a session's gap, an OVER range, a pattern's
 * WITHIN. (Warm-ups read that much history; backtests match alerts to the
 * events in that span.) */
int64_t cep_query_span(const cep_query_t *q);

/* A state table's name for a query: the operator's fingerprint, made
 * distinct per origin (origin 0, the first version, leaves it as is). */
static inline uint64_t cep_origin_fp(uint64_t fp, uint32_t origin)
{
    return origin ? cep_hash_bytes(&origin, sizeof origin, fp ^ 0x4f524947ULL) : fp;
}

#endif
