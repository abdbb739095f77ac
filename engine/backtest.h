/*
 * backtest.h — what a pack would have caught: the report of a replay.
 * The replay itself is the live engine's (engine/runtime.h) over history;
 * this module watches it — every alert with the event that produced it,
 * every labeled event as it passes — and at the end joins alerts to
 * labels (../shared/schemas/EVENTS.md, by event_id) into per-rule and
 * per-scenario figures: alerts over event time, top keys, samples,
 * precision, recall, caught value and detection delay. docs/BACKTEST.md
 * defines each figure and the JSON report's schema.
 */
#ifndef CEP_BACKTEST_H
#define CEP_BACKTEST_H

#include "engine/decode.h"
#include "patterns/rules.h"
#include "patterns/window.h"

typedef struct cep_backtest cep_backtest_t;

/* rs is borrowed and outlives the backtest. */
cep_backtest_t *cep_backtest_new(const cep_ruleset_t *rs);
void cep_backtest_free(cep_backtest_t *b);
/* Labels, one JSON object per line ({"event_id", "label", "scenario",
 * ...}); a bad line is an error with its line number. */
cep_status_t cep_backtest_labels(cep_backtest_t *b, const char *path, cep_error_t *err);
/* The replay: each record before it is pushed (outputs that follow are
 * the record's), each output row, and the record's fate. */
void cep_backtest_record(cep_backtest_t *b, const cep_record_t *r);
void cep_backtest_output(cep_backtest_t *b, const cep_output_t *o);
void cep_backtest_dead_letter(cep_backtest_t *b);
/* --baseline: the pack the replayed one is compared with (borrowed,
 * outliving the backtest; `name` says where it came from). Its runtime
 * replays the same records and hands its outputs here. The report then
 * says per rule which alerts the replayed pack adds, removes and keeps. */
void cep_backtest_set_baseline(cep_backtest_t *b, const cep_ruleset_t *base, const char *name);
void cep_backtest_baseline_output(cep_backtest_t *b, const cep_output_t *o);
/* What the report names: the pack's path and where history came from
 * (both borrowed, outliving the backtest). */
void cep_backtest_describe(cep_backtest_t *b, const char *pack, const char *source);
/* After the last record (and cep_runtime_finish): the report as JSON. */
void cep_backtest_report(cep_backtest_t *b, double wall_s, cep_buf_t *out);
/* The same report as a self-contained HTML page (no network fetches;
 * inline SVG charts), made from the JSON report's text. */
cep_status_t cep_backtest_html(const char *report_json, cep_buf_t *out, cep_error_t *err);

#endif
