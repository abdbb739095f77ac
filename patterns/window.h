/*
 * window.h — the aggregation operator: GROUP BY with or without a ksqlDB
 * window (TUMBLING, HOPPING, SESSION), grace periods, HAVING with
 * tombstones, EMIT CHANGES and EMIT FINAL, over per-(rule, key) state.
 */
#ifndef CEP_WINDOW_H
#define CEP_WINDOW_H

#include "patterns/plan.h"
#include "state/state.h"

/* One output row of a query, in the sink's column order. */
typedef struct cep_output {
    const cep_query_t *query;
    const cep_stream_t *sink;
    const cep_value_t *cols; /* sink->ncols values; keys are the is_key columns */
    bool tombstone;          /* the value is null (key columns still set) */
    int64_t timestamp;
    bool windowed;
    int64_t wstart, wend;
    cep_window_kind_t wtype;
} cep_output_t;

typedef void (*cep_emit_fn)(void *ctx, const cep_output_t *o);

typedef struct cep_aggop cep_aggop_t;

/* The operator of a share (plan.h): one state table for all its members.
 * sh is borrowed from the rule set, which must outlive the store. */
cep_aggop_t *cep_aggop_new(const cep_aggshare_t *sh, cep_store_t *store);
void cep_aggop_free(cep_aggop_t *op);
/* The table of its (key, window) entries. */
cep_table_t *cep_aggop_table(const cep_aggop_t *op);
/* Feed one source row that passed WHERE. retract: a table source's old row
 * being withdrawn. seq: arrival order. */
void cep_aggop_process(cep_aggop_t *op, const cep_value_t *row, bool retract, uint64_t seq,
                       cep_eval_t *ev, cep_emit_fn emit, void *ctx);
/* A hint before process: stage 0 starts loading the table slot of the
 * row's (key, first window), stage 1 its entry. A record that updates many
 * operators starts all their loads before the first update needs one, so
 * the cache misses of state lookups overlap instead of adding up. The
 * key worked out here is the one process (of the same row and seq) uses. */
void cep_aggop_prefetch(cep_aggop_t *op, const cep_value_t *row, uint64_t seq, cep_eval_t *ev, int stage);

#endif
