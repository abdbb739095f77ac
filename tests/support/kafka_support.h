/*
 * kafka_support.h — test helpers around the embedded broker: generated
 * events kept in memory and produced (at once or trickled over time), alert
 * topics read back as {alert_id: value}, cep run as a child process.
 */
#ifndef CEP_TEST_KAFKA_SUPPORT_H
#define CEP_TEST_KAFKA_SUPPORT_H

#include "bench/gen.h"
#include "engine/kafka.h"

#include <jansson.h>
#include <sys/types.h>

/* Generated events: keys and JSON lines, in order. */
typedef struct cep_test_events {
    cep_buf_t lines; /* JSON, one per line */
    cep_buf_t keys;  /* keys, one per line */
    uint64_t n;
} cep_test_events_t;

/* Run the generator into ev (initialised here; free with cep_test_events_free). */
void cep_test_events_gen(cep_test_events_t *ev, const cep_gen_opts_t *o);
void cep_test_events_free(cep_test_events_t *ev);
/* Produce every event to topic, keyed as generated; waits for the acks. */
void cep_test_events_produce(const cep_test_events_t *ev, const char *bootstrap, const char *topic);

/* A thread producing the events a batch at a time, pausing between batches. */
typedef struct cep_test_trickle cep_test_trickle_t;
cep_test_trickle_t *cep_test_trickle_start(const cep_test_events_t *ev, const char *bootstrap, const char *topic,
                                           unsigned batch, unsigned pause_ms);
/* Events produced (acknowledged or queued) so far. */
uint64_t cep_test_trickle_done(cep_test_trickle_t *t);
void cep_test_trickle_join(cep_test_trickle_t *t);

/* Every record of topic: {alert_id header: value} (the last value of each
 * id); records with a "reason" header (dead letters) are appended to
 * reasons when given. Reads until every partition is at its end and
 * nothing arrived for 1.5 s. *records: how many records were read. */
json_t *cep_test_read_topic(const char *bootstrap, const char *topic, json_t *reasons, size_t *records);
/* Every alert of topic: {alert_id: its header's value, null without it}. */
json_t *cep_test_read_topic_header(const char *bootstrap, const char *topic, const char *header, size_t *records);

/* cep (binary) with argv, stderr to errfile; returns the pid. */
pid_t cep_test_spawn(const char *binary, char *const argv[], const char *errfile);
/* Wait for a child; its exit status (or 128 + signal). */
int cep_test_wait(pid_t pid);
/* "cep run: R records, A alerts" from a run's stderr. */
void cep_test_run_counts(const char *errfile, unsigned long long *records, unsigned long long *alerts);
/* The partition count of the last "N partition(s) assigned" line in errfile (0: none). */
int cep_test_last_assignment(const char *errfile);
/* Does errfile contain needle? */
bool cep_test_file_has(const char *errfile, const char *needle);

#endif
