/*
 * bootstrap.h — warming new and reset rules from recent history. When a
 * reload adds a rule or changes one so that its state starts over, the
 * rule would otherwise see nothing older than the reload: a 1-hour
 * velocity rule stays blind for an hour. A rule that asks for it
 * (WITH (BOOTSTRAP='window' | '<duration>'), or every new and reset rule
 * with `cep run --reload-bootstrap`) is warmed before its version goes
 * live:
 *
 * 1. On the reload thread, off the event path: a private runtime on the
 *    new version, running only the warming rules (and the queries that
 *    feed them), reads each assigned partition of their input from the
 *    window span before the last record processed (offsets for times) up
 *    to where the live consumer is, again until it has nearly caught up.
 *    Its alerts are dropped: no alert is older than the reload.
 * 2. On the event thread, right after the swap and before the next
 *    record: the few records the live consumer processed meanwhile are
 *    read too, and the warmed state moves into the live tasks.
 *
 * From then on the rule runs as if it had been live over that history;
 * every record is seen once, alerts start at the reload. A rebalance in
 * between abandons the warm-up (the rules start fresh, as without it).
 */
#ifndef CEP_BOOTSTRAP_H
#define CEP_BOOTSTRAP_H

#include "engine/runtime.h"
#include "patterns/rules.h"

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>

typedef struct cep_bootstrap cep_bootstrap_t;

typedef struct cep_bootstrap_opts {
    const char *brokers;
    const char *const *props; /* librdkafka "key=value" settings */
    size_t nprops;
    rd_kafka_t *live;          /* the live consumer: its assignment and positions */
    const char *rekey_prefix;  /* names the internal re-key topics (the group) */
    int64_t default_ms;        /* rules without BOOTSTRAP: CEP_BOOTSTRAP_* or a span (0: they start fresh) */
    atomic_uint *generation;   /* moved on by every rebalance */
    volatile int *stop;
    FILE *log;                 /* default stderr */
} cep_bootstrap_opts_t;

/* Reload thread: which rules of next (not in running, or reset) warm up,
 * and their history read into a private runtime. NULL: nothing to warm,
 * or it could not be done (logged: the rules start fresh). */
cep_bootstrap_t *cep_bootstrap_prepare(const cep_bootstrap_opts_t *o, const cep_ruleset_t *next,
                                       const cep_ruleset_t *running);
/* Event thread: next was just swapped into rt, before the record at
 * (topic, partition, offset) of the live consumer. Reads what the live
 * consumer processed since prepare and moves the warmed state into rt. */
void cep_bootstrap_finish(cep_bootstrap_t *b, cep_runtime_t *rt, const char *topic, int32_t partition, int64_t offset);
void cep_bootstrap_free(cep_bootstrap_t *b);

#endif
