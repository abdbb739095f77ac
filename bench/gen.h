/*
 * gen.h — the synthetic labeled event generator behind `cep gen`.
 *
 * Events follow ../shared/schemas/EVENTS.md (gaming.events or
 * payments.events): realistic benign traffic (diurnal session arrivals,
 * households sharing an IP, travellers, mistyped passwords, high spenders)
 * with fraud scenarios injected at a given rate. Every event of a scenario
 * instance gets a label line {"event_id","label","scenario","label_time"}.
 * The output is a pure function of the options: same seed, same bytes.
 */
#ifndef CEP_GEN_H
#define CEP_GEN_H

#include "base/base.h"

typedef enum cep_gen_domain { CEP_GEN_GAMING, CEP_GEN_PAYMENTS } cep_gen_domain_t;

typedef struct cep_gen_opts {
    cep_gen_domain_t domain;
    uint64_t events;     /* events to produce (exactly) */
    uint64_t seed;
    int64_t start_ms;    /* event time of the first session (default 2026-11-02T00:00Z) */
    double rate;         /* mean benign events per second of event time (default 50) */
    uint32_t accounts;   /* benign population; 0 = derived from events */
    double fraud_rate;   /* probability that a new session is a scenario (default 0.01) */
    int64_t disorder_ms; /* 0 = event times never decrease; else some events are late by up to this */
    const char *scenarios; /* comma-separated scenario names to inject; NULL = all of the domain */
} cep_gen_opts_t;

void cep_gen_opts_init(cep_gen_opts_t *o);

/* Where the generator writes. Both callbacks get borrowed bytes (no NUL
 * guaranteed, no newline); label may be NULL when labels are not wanted. */
typedef struct cep_gen_sink {
    void (*event)(void *ctx, const char *key, size_t klen, const char *json, size_t n);
    void (*label)(void *ctx, const char *json, size_t n);
    void *ctx;
} cep_gen_sink_t;

typedef struct cep_gen_stats {
    uint64_t events, labeled, instances;
    uint64_t per_scenario[32]; /* instances, indexed like cep_gen_scenario_name */
} cep_gen_stats_t;

/* Run the generator. Fails only on bad options (CEP_ERR_ARG, e.g. an
 * unknown scenario name) or out of memory. */
cep_status_t cep_gen_run(const cep_gen_opts_t *o, const cep_gen_sink_t *sink, cep_gen_stats_t *st,
                         cep_error_t *err);

/* The scenario names of a domain, NULL past the end. */
const char *cep_gen_scenario_name(cep_gen_domain_t d, unsigned i);

/* `cep gen` (argv[0] = "gen"); returns the exit code. */
int cep_gen_main(int argc, char **argv);

#endif
