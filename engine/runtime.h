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
#include "state/state.h"

typedef struct cep_runtime cep_runtime_t;
struct cep_match_stats;

typedef struct cep_runtime_stats {
    uint64_t records, decoded, dead_letters, outputs, query_runs;
    uint64_t rekeyed, rekey_duplicates; /* records sent to re-key topics; copies seen twice and skipped */
} cep_runtime_stats_t;

/* rs is borrowed and must outlive the runtime. emit is called for every
 * output row of every query (sinks decide what to write). */
cep_runtime_t *cep_runtime_new(const cep_ruleset_t *rs, cep_emit_fn emit, void *ctx);
void cep_runtime_free(cep_runtime_t *rt);
/* Process one record. A record that cannot be decoded returns
 * CEP_ERR_DECODE with the reason in err; nothing else is affected. */
cep_status_t cep_runtime_push(cep_runtime_t *rt, const cep_record_t *rec, cep_error_t *err);
const cep_runtime_stats_t *cep_runtime_stats(const cep_runtime_t *rt);
/* The query whose run an output comes from: the one run for the current
 * record (the rows it feeds to other queries included) or advanced by
 * event time. Queries run in id order, so outputs of one record sorted
 * by it (stable) are in the order one runtime makes them. */
uint32_t cep_runtime_running(const cep_runtime_t *rt);
/* How many rows passed the query's WHERE (and ran it) so far: a measure
 * of what the query costs on this input. */
uint64_t cep_runtime_passes(const cep_runtime_t *rt, uint32_t query);
/* Event-time progress for the operators that wait for it (MATCH_RECOGNIZE):
 * rows at or below wm are complete. By default the watermark follows the
 * largest event time seen (max - delay - 1, delay 0); a negative delay
 * leaves it to explicit calls. finish = the end of input (+infinity):
 * timers fire, WITHIN runs expire. */
void cep_runtime_watermark(cep_runtime_t *rt, int64_t wm);
void cep_runtime_finish(cep_runtime_t *rt);
void cep_runtime_set_watermark_delay(cep_runtime_t *rt, int64_t delay);
/* MATCH_RECOGNIZE counters summed over the pack's pattern rules. */
void cep_runtime_match_stats(const cep_runtime_t *rt, struct cep_match_stats *sum);
/* The first runtime error a query raised (it then stops producing), or NULL. */
const char *cep_runtime_error(const cep_runtime_t *rt);
/* Does any source stream read this topic? */
bool cep_runtime_reads_topic(const cep_runtime_t *rt, const char *topic);

/* ---- re-keying -------------------------------------------------------------
 *
 * A stateful query (GROUP BY, PARTITION BY) on a source stream keyed by
 * something other than the stream's KEY column needs all records of a key
 * in one task. After cep_runtime_set_rekey, such a query no longer runs on
 * the source record: the record (its original bytes) goes to fn, keyed by
 * the query's key, for an internal topic per (stream, key) group named
 * "<prefix>.<stream>.rekey.<hash>"; the query runs when that record comes
 * back through cep_runtime_push from the internal topic (its partition is
 * the task). A record of an internal topic carries the source partition and
 * offset it was made from (src_partition, src_offset): a copy produced again
 * after a crash is skipped, so nothing is counted twice. Without this call
 * (files, backtests) every query runs on the source record. */
typedef void (*cep_rekey_fn)(void *ctx, const char *topic, const void *key, size_t klen, const cep_record_t *rec,
                             int64_t event_time);
void cep_runtime_set_rekey(cep_runtime_t *rt, const char *prefix, cep_rekey_fn fn, void *ctx);
/* The i-th internal topic (after set_rekey) and the source topic it
 * re-keys; NULL past the end. Borrowed. */
const char *cep_runtime_rekey_topic(const cep_runtime_t *rt, uint32_t i, const char **source_topic);

/* ---- tasks and checkpoints ------------------------------------------------
 *
 * State is kept per task: one per source partition number (partition p of
 * every source topic; records without a partition are task 0), with its own
 * operators, stream time and arrival order, as in Kafka Streams. A task is
 * what moves between instances: checkpointed whole, restored whole, dropped
 * when its partition is revoked. Checkpoint records are state/state.h's. */

/* Keep the change lists incremental checkpoints need (off: full snapshots only). */
void cep_runtime_track(cep_runtime_t *rt, bool on);
bool cep_runtime_has_task(const cep_runtime_t *rt, int32_t partition);
/* Forget a task and its state (its partition went elsewhere). */
void cep_runtime_task_drop(cep_runtime_t *rt, int32_t partition);
size_t cep_runtime_task_entries(const cep_runtime_t *rt, int32_t partition);
/* Write a task's state through sink: all = a full snapshot, else the
 * changes since the last cep_runtime_checkpoint_done. */
cep_status_t cep_runtime_checkpoint(cep_runtime_t *rt, int32_t partition, bool all, const cep_ckpt_sink_t *sink,
                                    cep_ckpt_stats_t *stats, cep_error_t *err);
void cep_runtime_checkpoint_done(cep_runtime_t *rt, int32_t partition);
/* Restore one checkpoint record into a task (created if needed): meta
 * records after or before entries, in any order. Records of rules not in
 * this pack are counted in *unknown. */
cep_status_t cep_runtime_restore(cep_runtime_t *rt, int32_t partition, bool meta, const void *id, size_t idlen,
                                 const void *val, size_t vlen, size_t *unknown, cep_error_t *err);
/* A task's full checkpoint as one byte string (appended to out), and back
 * into a fresh runtime: for conformance cases and tools that hold state in
 * memory. */
cep_status_t cep_runtime_snapshot(cep_runtime_t *rt, int32_t partition, cep_buf_t *out, cep_error_t *err);
cep_status_t cep_runtime_restore_snapshot(cep_runtime_t *rt, int32_t partition, const void *p, size_t n,
                                          cep_error_t *err);

/* ---- a new rule set ---------------------------------------------------------
 *
 * Replace the rule set between two records: operators are built for next,
 * and every state table whose fingerprint next still has (the same rule, or
 * a change that keeps the meaning of its state: HAVING, severity, output)
 * moves over as it is, with its operator's scalars; the rest starts empty
 * and the old state is freed. next is borrowed and must outlive the
 * runtime; the old rule set may be freed once this returns. */
typedef struct cep_swap_stats {
    uint64_t tasks, kept, dropped; /* entries moved over, entries of rules whose state did not fit */
} cep_swap_stats_t;
cep_status_t cep_runtime_swap(cep_runtime_t *rt, const cep_ruleset_t *next, cep_swap_stats_t *st, cep_error_t *err);

/* ---- warming rules apart (engine/bootstrap.h) -------------------------------
 *
 * A second runtime on the same rule set replays history for some rules
 * only; their state then joins the live runtime's tasks. */

/* Run only the queries marked in only (indexed by query id; NULL: all).
 * false: out of memory (nothing changed). */
bool cep_runtime_only(cep_runtime_t *rt, const bool *only);
/* Move the state of the marked queries' operators in task `partition` of
 * from (a runtime on rt's rule set) into rt's task, whose tables for them
 * must be empty (the rules start fresh there). Returns the entries moved;
 * *refused (may be NULL) counts tables that were not. */
size_t cep_runtime_graft(cep_runtime_t *rt, cep_runtime_t *from, int32_t partition, const bool *queries,
                         size_t *refused);

#endif
