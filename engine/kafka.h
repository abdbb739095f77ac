/*
 * kafka.h — cep on Kafka: the embedded broker (librdkafka's mock cluster, a
 * real Kafka protocol endpoint on loopback), the producer that writes
 * alerts, dead letters and generated events, and the consumer loop that
 * feeds a pack's source topics through the runtime.
 */
#ifndef CEP_KAFKA_H
#define CEP_KAFKA_H

#include "base/base.h"
#include "engine/decode.h"
#include "patterns/rules.h"

/* ---- the embedded broker ------------------------------------------------ */

typedef struct cep_kafka_broker cep_kafka_broker_t;

/* Start a one-broker cluster on loopback; topics are created with
 * `partitions` partitions (the broker creates unknown topics on first use
 * too). Owned by the caller: stop with cep_kafka_broker_free. */
cep_status_t cep_kafka_broker_new(int partitions, cep_kafka_broker_t **out, cep_error_t *err);
/* "127.0.0.1:port" (borrowed, valid until free). */
const char *cep_kafka_broker_bootstrap(const cep_kafka_broker_t *b);
cep_status_t cep_kafka_broker_topic(cep_kafka_broker_t *b, const char *topic, int partitions, cep_error_t *err);
/* Also accept clients on 127.0.0.1:port (0 = any free port): connections
 * are relayed to the cluster, whose metadata then points clients at it
 * directly. The bootstrap becomes that address. */
cep_status_t cep_kafka_broker_listen(cep_kafka_broker_t *b, int port, cep_error_t *err);
void cep_kafka_broker_free(cep_kafka_broker_t *b);

/* ---- producing ---------------------------------------------------------------- */

typedef struct cep_kafka_producer cep_kafka_producer_t;

/* An idempotent producer. props: librdkafka "key=value" settings (may be NULL). */
cep_status_t cep_kafka_producer_new(const char *bootstrap, const char *const *props, size_t nprops,
                                    cep_kafka_producer_t **out, cep_error_t *err);
/* Queue one record; a full queue waits for the broker (backpressure), it
 * never drops. headers: name/value pairs (NULL-terminated list of names
 * with values beside: hnames[i], hvals[i]). */
cep_status_t cep_kafka_produce(cep_kafka_producer_t *p, const char *topic, const void *key, size_t klen,
                               const void *value, size_t vlen, int64_t timestamp, const char *const *hnames,
                               const char *const *hvals, size_t nheaders, cep_error_t *err);
/* Wait until every queued record is acknowledged (or failed); returns the
 * number of records the broker refused, after retries. */
uint64_t cep_kafka_producer_flush(cep_kafka_producer_t *p, int timeout_ms);
void cep_kafka_producer_free(cep_kafka_producer_t *p);

/* ---- the consumer loop ------------------------------------------------------- */

typedef struct cep_kafka_run_opts {
    const char *bootstrap;
    const char *group;            /* consumer group (default "cep") */
    const char *const *props;     /* librdkafka "key=value" settings for consumer and producer */
    size_t nprops;
    const char *dlq_topic;        /* default "cep.dlq" */
    int idle_exit_ms;             /* > 0: stop once every partition is at its end for this long */
    volatile int *stop;           /* set non-zero (e.g. by a signal handler) to stop */
    bool summary;                 /* print alerts per rule to stderr at the end */
    /* Durable state (engine/checkpoint.h): NULL or "memory" keeps state in
     * this process only; "redis://..." checkpoints it every checkpoint_ms
     * (default 1000), on revocation and at exit, and restores it on
     * assignment. state_ns: the key namespace (default "cep:<group>"). */
    const char *state_url;
    const char *state_ns;
    int checkpoint_ms;
    /* Redis trouble: keep consuming while fewer than this many records
     * (default 200000) wait for a checkpoint, then pause until one succeeds. */
    uint64_t max_unsaved;
    /* Hot reload (engine/reload.h): new versions are swapped in between
     * two records; the consumer follows a changed set of topics. */
    struct cep_reloader *reloader;
    /* New and reset rules without BOOTSTRAP of their own warm up from
     * history (engine/bootstrap.h): CEP_BOOTSTRAP_WINDOW or a span in ms;
     * 0: they start fresh. */
    int64_t reload_bootstrap_ms;
} cep_kafka_run_opts_t;

typedef struct cep_kafka_run_stats {
    uint64_t records, alerts, dead_letters, delivery_failures;
    uint64_t rekeyed; /* records read back from the internal re-key topics (not in records) */
    uint64_t checkpoints, checkpoint_failures, pauses, restored_tasks, restored_entries, redis_commands;
    uint64_t first_ns, last_ns; /* monotonic clock at the first and the last record processed */
} cep_kafka_run_stats_t;

/* Consume the pack's source topics, run the rules, write each rule's rows
 * to its KAFKA_TOPIC with the alert headers and bad records to the
 * dead-letter topic; commit offsets once processed and produced. */
cep_status_t cep_kafka_run(const cep_ruleset_t *rs, const cep_kafka_run_opts_t *o, cep_kafka_run_stats_t *st,
                           cep_error_t *err);

/* A consumed message as the runtime's record (borrowing m's bytes): true
 * for a source topic of rs, false for an internal re-key topic (src_* then
 * say where it was made from). */
struct rd_kafka_message_s;
struct rd_kafka_s;
bool cep_kafka_record(const struct rd_kafka_message_s *m, const cep_ruleset_t *rs, cep_record_t *r);
/* The first offset of a partition whose record time is at or after ts,
 * below end (< 0: the partition's end); end if none is. Asks the broker's
 * time index (offsets for times) and, where the broker has none (the
 * embedded broker), searches the records by binary search, taking their
 * times to rise with their offsets. -1: the partition cannot be read. */
int64_t cep_kafka_offset_for_time(struct rd_kafka_s *rk, const char *topic, int32_t partition, int64_t ts,
                                  int64_t end);

/* ---- reading a time range (cep backtest --kafka) ------------------------------ */

typedef struct cep_kafka_range {
    const char *bootstrap;
    const char *const *topics;
    size_t ntopics;
    const char *const *props; /* librdkafka "key=value" settings */
    size_t nprops;
    int64_t from, to;         /* record times [from, to); INT64_MIN / INT64_MAX: open */
} cep_kafka_range_t;

/* One record of the range (m is a const rd_kafka_message_t *); false stops. */
typedef bool (*cep_kafka_range_fn)(void *ctx, const struct rd_kafka_message_s *m);
/* Of every partition of the topics, the records from the first whose time
 * is at or after `from` up to, not including, the first at or after `to`
 * or the end the partition had when the read began: a contiguous run of
 * offsets, as the live consumer saw them (a late record inside the run is
 * read; one outside it is not). Partitions are read side by side, each in
 * offset order. *total (may be NULL) is set, before the first record, to
 * the number of records the range holds. No consumer group is joined and
 * nothing is committed. */
cep_status_t cep_kafka_read_range(const cep_kafka_range_t *r, cep_kafka_range_fn fn, void *ctx, uint64_t *total,
                                  cep_error_t *err);

#endif

