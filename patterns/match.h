/*
 * match.h — MATCH_RECOGNIZE: the compiled form of a row-pattern query (an
 * NFA whose VAR instructions carry compiled DEFINE predicates, navigation
 * and aggregate slots, measures) and the operator that runs it per
 * partition in event time.
 *
 * Semantics: ../shared/conformance/MATCH_RECOGNIZE_SEMANTICS.md, standard
 * (Trino) where Flink differs. docs/PATTERNS.md says what cep does.
 */
#ifndef CEP_MATCH_H
#define CEP_MATCH_H

#include "patterns/window.h"

/* NFA instructions (a Pike VM program; threads are kept in preference order):
 *   NFA_VAR    x = variable: take the row if DEFINE x holds on the tentative mapping
 *   NFA_SPLIT  continue at x first, then at y (x is preferred)
 *   NFA_JMP    continue at x
 *   NFA_START  holds only at the partition's first row (^)
 *   NFA_END    holds only at the partition's end ($): never, in a stream
 *   NFA_MATCH  the pattern matched */
typedef enum cep_nfa_op { NFA_VAR, NFA_SPLIT, NFA_JMP, NFA_START, NFA_END, NFA_MATCH } cep_nfa_op_t;

typedef struct cep_nfa_insn {
    uint8_t op;
    uint32_t x, y;
} cep_nfa_insn_t;

/* A value a DEFINE or MEASURES expression reads from the match rather than
 * from the current row. The expression's program reads it from slot
 * scope->ncols_input + index. */
typedef enum cep_nav_kind {
    NAV_FIRST,     /* FIRST(v.expr, n): the n-th row of v from the first */
    NAV_LAST,      /* LAST(v.expr, n) and plain v.col: the n-th row of v from the last */
    NAV_PREV,      /* PREV(expr, n): n rows before the base row, in the partition */
    NAV_AGG,       /* COUNT/SUM/AVG/MIN/MAX(v.expr) over v's rows */
    NAV_CLASSIFIER, /* the variable of the row a FIRST/LAST selects (or of the current row) */
    NAV_MATCH_NUMBER,
} cep_nav_kind_t;

typedef struct cep_nav {
    cep_nav_kind_t kind;
    uint64_t vars;         /* variables the navigation ranges over; 0 = all rows of the match */
    cep_program_t *inner;  /* over an input row; NULL for COUNT(*) and CLASSIFIER */
    int64_t offset;        /* FIRST/LAST logical offset, PREV physical offset */
    bool prev_from_last;   /* PREV's base row: the last row of vars (else the current row) */
    int agg;               /* NAV_AGG: cep_agg_kind_t */
    bool count_star;
    bool classifier;       /* FIRST/LAST(CLASSIFIER()) */
    const cep_type_t *type;
} cep_nav_t;

typedef struct cep_mexpr {
    cep_program_t *prog; /* over the scope row: input columns, then navigations, then pseudo columns */
    uint32_t *navs;      /* the navigations it reads */
    uint32_t nnavs;
} cep_mexpr_t;

typedef struct cep_match_plan {
    const cep_stream_t *from; /* the input stream */
    uint32_t scope_ncols;     /* input columns + navigations: the scope row's column count */
    cep_program_t **partition;
    uint32_t npartition;
    cep_program_t **order; /* secondary ORDER BY keys (the first is event time) */
    uint32_t norder;
    const char **vars;     /* pattern variables, upper-cased */
    uint32_t nvars;
    cep_mexpr_t *define;   /* per variable; prog NULL = TRUE */
    cep_nav_t *navs;
    uint32_t nnavs;
    cep_mexpr_t *measures; /* one per output measure */
    uint32_t nmeasures;
    cep_nfa_insn_t *code;
    uint32_t ncode;
    cep_skip_kind_t skip;
    uint64_t skip_vars;    /* SKIP TO FIRST/LAST: the variable or subset */
    int64_t within_ms;     /* 0 = none */
    int absent_var;        /* NOT FOLLOWED BY: the variable, or -1 */
    int64_t absent_ms;     /* ... WITHIN: the window [first.ts, first.ts + absent_ms) */
    uint32_t max_prev;     /* rows of history PREV may read before a match */
    uint32_t max_runs;     /* live threads per partition before the cap policy applies */
    const char **define_text;  /* per variable, as written (NULL = TRUE), for explain */
    const char **measure_text; /* per measure, as written */
    const char **measure_names;
    const char *pattern_text;
} cep_match_plan_t;

typedef struct cep_matchop cep_matchop_t;

typedef struct cep_match_stats {
    uint64_t rows, late, matches, capped_runs, peak_runs;
    /* live runs of a partition after each of its rows: hist[0] = 0 runs,
     * hist[k] = [2^(k-1), 2^k) runs, the last bucket everything above */
    uint64_t runs_hist[16];
} cep_match_stats_t;

/* q is borrowed from the rule set; partitions live in a table of store
 * (borrowed; free the store before the operator: its entries are freed
 * through the operator). */
cep_matchop_t *cep_matchop_new(const cep_query_t *q, cep_store_t *store);
void cep_matchop_free(cep_matchop_t *op);
/* The table of its partitions (in the task's store). */
cep_table_t *cep_matchop_table(const cep_matchop_t *op);
/* The identity of a pattern rule's state (its table's fingerprint): what
 * the runs depend on, not the rule's metadata or output topic. */
uint64_t cep_matchop_state_fingerprint(const cep_query_t *q);
/* Buffer one input row; rows are matched once the watermark passes them,
 * in (event time, ORDER BY keys, arrival) order. A row at or below the
 * watermark is late: counted and dropped. */
void cep_matchop_push(cep_matchop_t *op, const cep_value_t *row, cep_eval_t *ev, cep_emit_fn emit, void *ctx);
/* Advance the watermark (INT64_MAX = end of input): match the rows it
 * passes, expire WITHIN runs, emit what is resolved. */
void cep_matchop_watermark(cep_matchop_t *op, int64_t wm, cep_eval_t *ev, cep_emit_fn emit, void *ctx);
/* With a bounded-out-of-orderness policy, the watermark follows the
 * largest event time seen: max - delay - 1. delay < 0: explicit only. */
void cep_matchop_set_delay(cep_matchop_t *op, int64_t delay);
/* A runtime error (AFTER MATCH SKIP TO a variable that is empty or the
 * first row); the operator stops producing. NULL when none. */
const char *cep_matchop_error(const cep_matchop_t *op);
const cep_match_stats_t *cep_matchop_stats(const cep_matchop_t *op);

#endif
