/*
 * over.h — sliding per-event aggregates: agg(x) OVER (PARTITION BY k ORDER
 * BY t RANGE BETWEEN INTERVAL 'n' unit PRECEDING AND CURRENT ROW) in a
 * derived table, for velocity rules.
 */
#ifndef CEP_OVER_H
#define CEP_OVER_H

#include "patterns/window.h"

typedef struct cep_overop cep_overop_t;

/* q is borrowed from the rule set; the state lives in tables of store
 * (borrowed; free the store before the operator: its tables' codecs point
 * at the operator). */
cep_overop_t *cep_overop_new(const cep_query_t *q, cep_store_t *store);
void cep_overop_free(cep_overop_t *op);
/* The table of its i-th sliding aggregate (NULL past the last). */
cep_table_t *cep_overop_table(const cep_overop_t *op, uint32_t i);
/* One row that passed the derived table's WHERE: update every sliding
 * aggregate of its partition, then emit the projected row. */
void cep_overop_process(cep_overop_t *op, const cep_value_t *row, cep_eval_t *ev, cep_emit_fn emit, void *ctx);
/* Entries held across all partitions, for tests and metrics. */
uint64_t cep_overop_entries(const cep_overop_t *op);

#endif
