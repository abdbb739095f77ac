/*
 * runtime.h — the engine: routes records to the streams that read their
 * topic, decodes each once, runs the prefilter and the shared WHERE atoms,
 * and drives every candidate query. Outputs of a query that another query
 * reads are fed to it directly, as typed rows.
 */
#ifndef CEP_RUNTIME_H
#define CEP_RUNTIME_H

#include "engine/decode.h"
#include "patterns/rules.h"
#include "patterns/window.h"

typedef struct cep_runtime cep_runtime_t;
struct cep_match_stats;

typedef struct cep_runtime_stats {
    uint64_t records, decoded, dead_letters, outputs, query_runs;
} cep_runtime_stats_t;

/* rs is borrowed and must outlive the runtime. emit is called for every
 * output row of every query (sinks decide what to write). */
cep_runtime_t *cep_runtime_new(const cep_ruleset_t *rs, cep_emit_fn emit, void *ctx);
void cep_runtime_free(cep_runtime_t *rt);
/* Process one record. A record that cannot be decoded returns
 * CEP_ERR_DECODE with the reason in err; nothing else is affected. */
cep_status_t cep_runtime_push(cep_runtime_t *rt, const cep_record_t *rec, cep_error_t *err);
const cep_runtime_stats_t *cep_runtime_stats(const cep_runtime_t *rt);
/* Event-time progress for the operators that wait for it (MATCH_RECOGNIZE):
 * rows at or below wm are complete. By default the watermark follows the
 * largest event time seen (max - delay - 1, delay 0); a negative delay
 * leaves it to explicit calls. finish = the end of input (+infinity):
 * timers fire, WITHIN runs expire. */
void cep_runtime_watermark(cep_runtime_t *rt, int64_t wm);
void cep_runtime_finish(cep_runtime_t *rt);
void cep_runtime_set_watermark_delay(cep_runtime_t *rt, int64_t delay);
/* A source partition without records for this long (wall clock, default
 * 5000 ms) no longer holds its stream's watermark back. */
void cep_runtime_set_idle_ms(cep_runtime_t *rt, int64_t ms);
/* MATCH_RECOGNIZE counters summed over the pack's pattern rules. */
void cep_runtime_match_stats(const cep_runtime_t *rt, struct cep_match_stats *sum);
/* The first runtime error a query raised (it then stops producing), or NULL. */
const char *cep_runtime_error(const cep_runtime_t *rt);
/* Does any source stream read this topic? */
bool cep_runtime_reads_topic(const cep_runtime_t *rt, const char *topic);

#endif
