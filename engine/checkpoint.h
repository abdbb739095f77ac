/*
 * checkpoint.h — durable state for `cep run --state redis://…`.
 *
 * The runtime keeps its state per task (one per source partition number,
 * engine/runtime.h). A checkpoint writes, per task, the entries changed
 * since the last one, the operators' scalars, and the next offset of each
 * of the task's topic partitions — one MULTI/EXEC per task, every task in
 * one pipelined round trip (state/redis.h). Only then are the Kafka offsets
 * committed. Restore on assignment loads a task and seeks its partitions to
 * the checkpointed offsets, so state and position always agree.
 */
#ifndef CEP_CHECKPOINT_H
#define CEP_CHECKPOINT_H

#include "engine/runtime.h"

#include <librdkafka/rdkafka.h>

typedef struct cep_ckpt cep_ckpt_t;

typedef struct cep_ckpt_info {
    uint64_t checkpoints, failures, tasks_written, entries, deletions, bytes;
    uint64_t restored_tasks, restored_entries, unknown_entries;
    uint64_t corrupt_entries; /* records that did not decode: skipped, their keys start afresh */
    uint64_t last_ns, last_entries; /* the last successful checkpoint: duration, entries written */
} cep_ckpt_info_t;

/* Connect to the state store. url: redis://[:password@]host:port[/db]; ns:
 * the key namespace (e.g. "cep:<group>"), copied. rt is borrowed and must
 * outlive the checkpointer. Fails (CEP_ERR_IO / CEP_ERR_ARG) with a clear
 * message when Redis is unreachable or refuses the password. */
cep_status_t cep_ckpt_new(const char *url, const char *ns, cep_runtime_t *rt, cep_ckpt_t **out, cep_error_t *err);
void cep_ckpt_free(cep_ckpt_t *c);
const char *cep_ckpt_where(const cep_ckpt_t *c);

/* Checkpoint the tasks of these partitions at these positions (next offset
 * to read per topic partition; elements with a negative offset record no
 * offset). Changes are forgotten only once Redis confirmed them all: on
 * failure the next call writes them again. */
cep_status_t cep_ckpt_save(cep_ckpt_t *c, const rd_kafka_topic_partition_list_t *positions, cep_error_t *err);

/* Load the tasks of the assigned partitions (replacing what the runtime
 * held for them) and set each element's offset to the checkpointed one;
 * elements without a checkpoint are left as they are. */
cep_status_t cep_ckpt_restore(cep_ckpt_t *c, rd_kafka_topic_partition_list_t *assigned, cep_error_t *err);

/* The same without Kafka (benchmarks, tools): tasks by partition number,
 * no offsets. */
cep_status_t cep_ckpt_save_tasks(cep_ckpt_t *c, const int32_t *tasks, size_t n, cep_error_t *err);
cep_status_t cep_ckpt_restore_task(cep_ckpt_t *c, int32_t task, cep_error_t *err);

/* The pack's lineage (patterns/rules.h) under "<ns>:lineage": written
 * before the next checkpoint's state whenever a version goes live, read at
 * start before the pack is compiled, so a restart plans the pack as the
 * instance that saved the state did. */
void cep_ckpt_set_lineage(cep_ckpt_t *c, const cep_ruleset_t *rs);
/* found = false when no lineage was saved under ns (a first start). */
cep_status_t cep_ckpt_load_lineage(const char *url, const char *ns, cep_lineage_t *out, bool *found,
                                   cep_error_t *err);

const cep_ckpt_info_t *cep_ckpt_info(const cep_ckpt_t *c);
/* Redis commands sent so far (for commands-per-event figures). */
uint64_t cep_ckpt_commands(const cep_ckpt_t *c);

#endif
