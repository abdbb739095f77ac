/*
 * agg.h — aggregate accumulators (COUNT, SUM, MIN, MAX, AVG, COUNT_DISTINCT,
 * LATEST/EARLIEST_BY_OFFSET, COLLECT_LIST/SET, TOPK, TOPKDISTINCT): add a
 * value, retract one (table sources), merge two (session windows), read the
 * result. Accumulators own their values (malloc'ed copies), since state
 * outlives the event that fed it.
 */
#ifndef CEP_AGG_H
#define CEP_AGG_H

#include "patterns/plan.h"
#include "state/codec.h"

typedef struct cep_acc {
    int64_t n; /* rows or non-null values counted */
    union {
        int64_t i;
        double d;
    } sum;
    cep_value_t v;       /* MIN, MAX, LATEST, EARLIEST (owned) */
    uint64_t seq;        /* arrival sequence of v */
    cep_value_t *items;  /* lists, sets, TOPK (owned) */
    uint64_t *seqs;      /* arrival sequences of items (LATEST/EARLIEST n);
                            COUNT_DISTINCT: the set's fingerprints (no items) */
    uint32_t nitems, cap;
    bool has_v;
} cep_acc_t;

/* value: the aggregate's argument for this row (NULL when count_star);
 * value2: TOPK's second column. seq increases with arrival order. */
void cep_acc_add(const cep_aggspec_t *s, cep_acc_t *a, const cep_value_t *value,
                 const cep_value_t *value2, uint64_t seq);
/* Undo an add (changelog retraction). */
void cep_acc_retract(const cep_aggspec_t *s, cep_acc_t *a, const cep_value_t *value,
                     const cep_value_t *value2);
/* into += from (session merge); from is left empty. */
void cep_acc_merge(const cep_aggspec_t *s, cep_acc_t *into, cep_acc_t *from);
/* The current result; composites are built in the arena. */
cep_value_t cep_acc_result(const cep_aggspec_t *s, const cep_acc_t *a, cep_arena_t *arena);
void cep_acc_free(cep_acc_t *a);
/* Checkpoints: an accumulator to bytes and back (a is overwritten; on
 * false free it with cep_acc_free). */
void cep_acc_save(const cep_aggspec_t *s, const cep_acc_t *a, cep_buf_t *out);
bool cep_acc_load(const cep_aggspec_t *s, cep_acc_t *a, cep_dec_t *d);
/* The SQL name of an aggregate kind ("LATEST_BY_OFFSET"), NULL out of range. */
const char *cep_agg_kind_name(cep_agg_kind_t kind);

#endif
