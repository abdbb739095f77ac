/*
 * backtest.c — the report of a replay (backtest.h): per-rule figures as
 * alerts come, labeled events as they pass, and the join of the two at
 * the end.
 */
#include "engine/backtest.h"
#include "engine/cli.h"
#include "engine/kafka.h"
#include "engine/output.h"
#include "engine/runtime.h"
#include "patterns/expr.h"
#include "patterns/plan.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SAMPLES 3
#define TOP_KEYS 10
#define HOUR_MS 3600000LL
#define DAY_MS 86400000LL

/* An event the labels name, as it passed. */
typedef struct labeled {
    json_t *fields;     /* its top-level fields */
    const char *label;  /* borrowed from the labels */
    const char *scenario;
    int64_t time, amount;
    bool positive;      /* fraud or abuse */
    uint32_t instance;  /* (scenario, account) of a positive */
} labeled_t;

/* An alert, kept for the join: its key columns and the event time its
 * state spans, and the labeled event that produced it (or -1). */
typedef struct alert {
    uint32_t rule;
    int64_t time, lo, hi;
    int64_t trigger;
    char *keys; /* "NAME\0value-json\0" pairs, then "\0" */
} alert_t;

typedef struct instance {
    const char *scenario;
    char *account;
    int64_t first; /* the first labeled event's time */
    int64_t value;
    uint32_t events;
} instance_t;

/* Alerts per key, exactly: an open-addressing table of counts over the key
 * texts kept once each (a report over millions of alerts on hundreds of
 * thousands of keys per rule stays small and quick). */
typedef struct key_count {
    uint64_t hash;
    uint64_t count; /* 0: an empty slot */
    size_t text;    /* offset in texts */
    uint32_t len;
} key_count_t;

typedef struct key_counts {
    key_count_t *slots;
    size_t cap, n;
    cep_buf_t texts;
} key_counts_t;

static bool key_counts_grow(key_counts_t *kc)
{
    size_t cap = kc->cap ? 2 * kc->cap : 64;
    key_count_t *s = calloc(cap, sizeof *s);
    if (!s) return false;
    for (size_t i = 0; i < kc->cap; i++) {
        if (!kc->slots[i].count) continue;
        size_t at = kc->slots[i].hash & (cap - 1);
        while (s[at].count) at = (at + 1) & (cap - 1);
        s[at] = kc->slots[i];
    }
    free(kc->slots);
    kc->slots = s;
    kc->cap = cap;
    return true;
}

static void key_counts_add(key_counts_t *kc, const char *key, size_t len)
{
    if ((kc->n + 1) * 10 > kc->cap * 7 && !key_counts_grow(kc)) return;
    uint64_t h = cep_hash_bytes(key, len, 0x4b455953ULL);
    size_t at = h & (kc->cap - 1);
    for (; kc->slots[at].count; at = (at + 1) & (kc->cap - 1)) {
        key_count_t *e = &kc->slots[at];
        if (e->hash == h && e->len == len && !memcmp(kc->texts.data + e->text, key, len)) {
            e->count++;
            return;
        }
    }
    kc->slots[at] = (key_count_t){.hash = h, .count = 1, .text = kc->texts.len, .len = (uint32_t)len};
    cep_buf_put(&kc->texts, key, len);
    kc->n++;
}

static void key_counts_free(key_counts_t *kc)
{
    free(kc->slots);
    cep_buf_free(&kc->texts);
}

typedef struct rule_stats {
    const cep_query_t *q;
    uint64_t alerts, retractions, true_alerts;
    key_counts_t keys;
    json_t *samples;
    int64_t span;
    int64_t *times; /* every alert's time, for the timeline */
    size_t ntimes, captimes;
} rule_stats_t;

/* An alert of either pack, for the diff: same rule name, alert id and
 * value is the same alert. */
typedef struct diff_alert {
    uint32_t rule;  /* its slot in diff_names */
    uint64_t hash;  /* of alert id and value */
    int64_t time;
    size_t line;    /* its alert line in diff_lines */
    uint8_t fate;   /* DIFF_* once joined */
} diff_alert_t;

enum { DIFF_UNCHANGED, DIFF_ADDED, DIFF_REMOVED };

typedef struct diff_side {
    diff_alert_t *a;
    size_t n, cap;
} diff_side_t;

struct cep_backtest {
    const cep_ruleset_t *rs;
    const char *pack, *source;
    const cep_ruleset_t *base; /* --baseline */
    const char *base_name;
    json_t *diff_names;        /* rule name -> slot */
    diff_side_t side[2];       /* [0]: the replayed pack, [1]: the baseline */
    cep_buf_t diff_lines;
    json_t *labels;    /* event_id -> [label, scenario] */
    labeled_t *seen;
    uint32_t nseen, capseen;
    json_t *by_value;  /* field value json -> [labeled index...] */
    json_t *instances_by_name;
    instance_t *inst;
    uint32_t ninst, capinst;
    alert_t *alerts;
    size_t nalerts, capalerts;
    rule_stats_t *rules; /* by query id */
    const cep_record_t *cur;
    int64_t cur_labeled; /* the current record's labeled index, or -1 */
    uint64_t events, dead_letters;
    int64_t tmin, tmax; /* event times seen (the event_time field) */
    cep_buf_t tmp;
};

cep_backtest_t *cep_backtest_new(const cep_ruleset_t *rs)
{
    cep_backtest_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->rs = rs;
    b->labels = json_object();
    b->by_value = json_object();
    b->instances_by_name = json_object();
    b->rules = calloc(rs->nqueries + 1, sizeof *b->rules);
    b->tmin = INT64_MAX;
    b->tmax = INT64_MIN;
    b->cur_labeled = -1;
    cep_buf_init(&b->tmp);
    if (!b->labels || !b->by_value || !b->rules || !b->instances_by_name) {
        cep_backtest_free(b);
        return NULL;
    }
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        rule_stats_t *r = &b->rules[i];
        r->q = rs->queries[i];
        cep_buf_init(&r->keys.texts);
        r->samples = json_array();
        r->span = cep_query_span(rs->queries[i]);
        /* a rule reading another query's rows (OVER, MATCH_RECOGNIZE) spans what that one does */
        for (uint32_t k = 0; k < rs->nqueries; k++)
            if (rs->queries[k]->sink == rs->queries[i]->from)
                r->span = CEP_MAX(r->span, cep_query_span(rs->queries[k]));
    }
    return b;
}

void cep_backtest_free(cep_backtest_t *b)
{
    if (!b) return;
    for (uint32_t i = 0; i < b->nseen; i++) json_decref(b->seen[i].fields);
    free(b->seen);
    for (uint32_t i = 0; i < b->ninst; i++) free(b->inst[i].account);
    free(b->inst);
    for (size_t i = 0; i < b->nalerts; i++) free(b->alerts[i].keys);
    free(b->alerts);
    for (uint32_t i = 0; b->rules && i < b->rs->nqueries; i++) {
        key_counts_free(&b->rules[i].keys);
        json_decref(b->rules[i].samples);
        free(b->rules[i].times);
    }
    free(b->rules);
    json_decref(b->labels);
    json_decref(b->by_value);
    json_decref(b->instances_by_name);
    json_decref(b->diff_names);
    free(b->side[0].a);
    free(b->side[1].a);
    cep_buf_free(&b->diff_lines);
    cep_buf_free(&b->tmp);
    free(b);
}

/* ---- the pack diff ------------------------------------------------------------------- */

void cep_backtest_describe(cep_backtest_t *b, const char *pack, const char *source)
{
    b->pack = pack;
    b->source = source;
}

void cep_backtest_set_baseline(cep_backtest_t *b, const cep_ruleset_t *base, const char *name)
{
    b->base = base;
    b->base_name = name;
    if (!b->diff_names) b->diff_names = json_object();
    cep_buf_init(&b->diff_lines);
}

/* An alert of one side: ident is its alert id and value (what makes two
 * alerts the same), line its alert line. */
static void diff_add(cep_backtest_t *b, int which, const char *rule, int64_t time, const char *ident, size_t ident_len,
                     const char *line, size_t line_len)
{
    diff_side_t *sd = &b->side[which];
    if (sd->n == sd->cap) {
        size_t c = sd->cap ? 2 * sd->cap : 1024;
        diff_alert_t *g = realloc(sd->a, c * sizeof *g);
        if (!g) return;
        sd->a = g, sd->cap = c;
    }
    json_t *slot = json_object_get(b->diff_names, rule);
    if (!slot) json_object_set_new(b->diff_names, rule, slot = json_integer(json_object_size(b->diff_names)));
    diff_alert_t *a = &sd->a[sd->n++];
    *a = (diff_alert_t){.rule = (uint32_t)json_integer_value(slot),
                        .hash = cep_hash_bytes(ident, ident_len, 0x444946ULL),
                        .time = time,
                        .line = b->diff_lines.len};
    cep_buf_put(&b->diff_lines, line, line_len);
    cep_buf_putc(&b->diff_lines, 0);
}

/* alert id, a NUL, the value: what makes two alerts the same */
static void put_ident(const cep_output_t *o, cep_buf_t *out)
{
    cep_output_alert_id(o, out);
    cep_buf_putc(out, 0);
    cep_output_value_json(o, out);
}

void cep_backtest_baseline_output(cep_backtest_t *b, const cep_output_t *o)
{
    if (!b->base || o->tombstone || o->query->internal) return;
    cep_buf_reset(&b->tmp);
    put_ident(o, &b->tmp);
    size_t line_at = b->tmp.len;
    cep_output_alert_line(o, &b->tmp);
    diff_add(b, 1, o->query->name, o->timestamp, b->tmp.data, line_at, b->tmp.data + line_at, b->tmp.len - line_at);
}

static const diff_alert_t *diff_sorting;
static int cmp_diff(const void *x, const void *y)
{
    const diff_alert_t *a = &diff_sorting[*(const size_t *)x], *c = &diff_sorting[*(const size_t *)y];
    if (a->rule != c->rule) return a->rule < c->rule ? -1 : 1;
    if (a->hash != c->hash) return a->hash < c->hash ? -1 : 1;
    return *(const size_t *)x < *(const size_t *)y ? -1 : 1;
}

static size_t *diff_order(diff_side_t *sd)
{
    size_t *ix = malloc((sd->n + 1) * sizeof *ix);
    if (!ix) return NULL;
    for (size_t i = 0; i < sd->n; i++) ix[i] = i;
    diff_sorting = sd->a;
    qsort(ix, sd->n, sizeof *ix, cmp_diff);
    return ix;
}

/* Each alert's fate: an alert of one side with an equal one (rule, id,
 * value) on the other is unchanged, pair by pair; the rest are added (the
 * replayed pack's) or removed (the baseline's). */
static void diff_join(cep_backtest_t *b)
{
    diff_side_t *c = &b->side[0], *o = &b->side[1];
    size_t *ci = diff_order(c), *oi = diff_order(o);
    if (!ci || !oi) {
        free(ci);
        free(oi);
        return;
    }
    size_t i = 0, k = 0;
    while (i < c->n || k < o->n) {
        diff_alert_t *x = i < c->n ? &c->a[ci[i]] : NULL, *y = k < o->n ? &o->a[oi[k]] : NULL;
        int order = !x ? 1 : !y ? -1 : x->rule != y->rule ? (x->rule < y->rule ? -1 : 1)
                                       : x->hash != y->hash ? (x->hash < y->hash ? -1 : 1) : 0;
        if (order == 0) x->fate = y->fate = DIFF_UNCHANGED, i++, k++;
        else if (order < 0) x->fate = DIFF_ADDED, i++;
        else y->fate = DIFF_REMOVED, k++;
    }
    free(ci);
    free(oi);
}

typedef struct diff_row {
    const char *name;
    const char *change;
    uint64_t alerts, base_alerts, count[3];
    json_t *samples[3]; /* by fate */
} diff_row_t;

static json_t *diff_report(cep_backtest_t *b)
{
    diff_join(b);
    size_t nslots = json_object_size(b->diff_names);
    /* rows: the replayed pack's rules in order, then the baseline's that are gone */
    size_t cap = b->rs->nqueries + b->base->nqueries + 1;
    diff_row_t *rows = calloc(cap, sizeof *rows);
    int64_t *row_of = malloc((nslots + 1) * sizeof *row_of);
    if (!rows || !row_of) {
        free(rows);
        free(row_of);
        return json_null();
    }
    for (size_t i = 0; i < nslots; i++) row_of[i] = -1;
    size_t nrows = 0;
    for (int side = 0; side < 2; side++) {
        const cep_ruleset_t *rs = side ? b->base : b->rs, *other = side ? b->rs : b->base;
        for (uint32_t i = 0; i < rs->nqueries; i++) {
            const cep_query_t *q = rs->queries[i], *twin = NULL;
            if (q->internal) continue;
            for (uint32_t k = 0; k < other->nqueries && !twin; k++)
                if (!other->queries[k]->internal && !strcmp(other->queries[k]->name, q->name)) twin = other->queries[k];
            if (side && twin) continue; /* already a row */
            diff_row_t *r = &rows[nrows];
            r->name = q->name;
            r->change = !twin ? (side ? "removed" : "added") : twin->fingerprint == q->fingerprint ? "same" : "changed";
            for (int f = 0; f < 3; f++) r->samples[f] = json_array();
            json_t *slot = json_object_get(b->diff_names, q->name);
            if (slot) row_of[json_integer_value(slot)] = (int64_t)nrows;
            nrows++;
        }
    }
    uint64_t totals[3] = {0}, all[2] = {0};
    for (int side = 0; side < 2; side++) {
        diff_side_t *sd = &b->side[side];
        for (size_t i = 0; i < sd->n; i++) { /* in the order they were made: samples are the first */
            const diff_alert_t *a = &sd->a[i];
            if (row_of[a->rule] < 0) continue;
            diff_row_t *r = &rows[row_of[a->rule]];
            all[side]++;
            if (side) r->base_alerts++;
            else r->alerts++;
            if (side && a->fate == DIFF_UNCHANGED) continue; /* counted once, on the replayed side */
            r->count[a->fate]++;
            totals[a->fate]++;
            if (a->fate != DIFF_UNCHANGED && json_array_size(r->samples[a->fate]) < SAMPLES)
                json_array_append_new(r->samples[a->fate], json_loads(b->diff_lines.data + a->line, 0, NULL));
        }
    }
    json_t *list = json_array();
    for (size_t i = 0; i < nrows; i++) {
        diff_row_t *r = &rows[i];
        json_array_append_new(list, json_pack("{sssssIsIsIsIsIsoso}", "rule", r->name, "change", r->change, "alerts",
                                              (json_int_t)r->alerts, "baseline_alerts", (json_int_t)r->base_alerts,
                                              "added", (json_int_t)r->count[DIFF_ADDED], "removed",
                                              (json_int_t)r->count[DIFF_REMOVED], "unchanged",
                                              (json_int_t)r->count[DIFF_UNCHANGED], "added_samples",
                                              r->samples[DIFF_ADDED], "removed_samples", r->samples[DIFF_REMOVED]));
        json_decref(r->samples[DIFF_UNCHANGED]);
    }
    free(rows);
    free(row_of);
    return json_pack("{sssIsIsIsIsIso}", "pack", b->base_name ? b->base_name : "", "alerts", (json_int_t)all[0],
                     "baseline_alerts", (json_int_t)all[1], "added", (json_int_t)totals[DIFF_ADDED], "removed",
                     (json_int_t)totals[DIFF_REMOVED], "unchanged", (json_int_t)totals[DIFF_UNCHANGED], "rules", list);
}

cep_status_t cep_backtest_labels(cep_backtest_t *b, const char *path, cep_error_t *err)
{
    FILE *f = fopen(path, "r");
    if (!f) return cep_error_set(err, CEP_ERR_IO, NULL, "%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    cep_status_t st = CEP_OK;
    while (!st && (n = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)n, 0, &je);
        const char *id = o ? json_string_value(json_object_get(o, "event_id")) : NULL;
        const char *label = o ? json_string_value(json_object_get(o, "label")) : NULL;
        const char *scenario = o ? json_string_value(json_object_get(o, "scenario")) : NULL;
        if (!o && strspn(line, " \t\r\n") == (size_t)n) continue; /* a blank line */
        if (!id || !label)
            st = cep_error_set(err, CEP_ERR_DECODE, NULL, "%s:%u: %s", path, lineno,
                               !o ? je.text : "a label needs \"event_id\" and \"label\" strings");
        else {
            /* the instance a label names (generators know it), else one per (scenario, account) */
            json_t *inst = json_object_get(o, "instance");
            json_object_set_new(b->labels, id,
                                json_pack("[ssO]", label, scenario ? scenario : "unknown", inst ? inst : json_null()));
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return st;
}

/* The string value of a top-level field, by a quick scan of generated
 * JSON; NULL when it is not simply there (the caller parses properly). */
static const char *quick_field(const char *p, size_t n, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (const char *at = p; (at = memmem(at, n - (size_t)(at - p), name, nl));) {
        bool quoted = at > p && at[-1] == '"';
        at += nl;
        if (!quoted || at >= p + n || *at != '"') continue;
        const char *v = at + 1;
        while (v < p + n && (*v == ' ' || *v == ':')) v++;
        if (v >= p + n) return NULL;
        if (*v != '"') { /* a number */
            const char *e = v;
            while (e < p + n && (*e == '-' || (*e >= '0' && *e <= '9'))) e++;
            *len = (size_t)(e - v);
            return e > v ? v : NULL;
        }
        const char *e = memchr(v + 1, '"', (size_t)(p + n - v - 1));
        if (!e || memchr(v + 1, '\\', (size_t)(e - v - 1))) return NULL;
        *len = (size_t)(e - v - 1);
        return v + 1;
    }
    return NULL;
}

static void index_value(cep_backtest_t *b, json_t *v, uint32_t idx)
{
    if (!json_is_string(v) && !json_is_integer(v)) return;
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!text) return;
    json_t *list = json_object_get(b->by_value, text);
    if (!list) json_object_set_new(b->by_value, text, list = json_array());
    json_array_append_new(list, json_integer(idx));
    free(text);
}

static uint32_t instance_of(cep_backtest_t *b, const char *scenario, const char *account, int64_t time)
{
    cep_buf_reset(&b->tmp);
    cep_buf_printf(&b->tmp, "%s\x1f%s", scenario, account);
    json_t *at = json_object_get(b->instances_by_name, cep_buf_cstr(&b->tmp));
    if (at) {
        instance_t *in = &b->inst[json_integer_value(at)];
        if (time < in->first) in->first = time;
        return (uint32_t)json_integer_value(at);
    }
    if (b->ninst == b->capinst) {
        uint32_t c = b->capinst ? 2 * b->capinst : 64;
        instance_t *g = realloc(b->inst, c * sizeof *g);
        if (!g) return 0;
        b->inst = g, b->capinst = c;
    }
    b->inst[b->ninst] = (instance_t){.scenario = scenario, .account = strdup(account), .first = time};
    json_object_set_new(b->instances_by_name, cep_buf_cstr(&b->tmp), json_integer(b->ninst));
    return b->ninst++;
}

void cep_backtest_record(cep_backtest_t *b, const cep_record_t *r)
{
    b->cur = r;
    b->cur_labeled = -1;
    if (!r) return; /* the end of input: what fires now fires on time alone */
    b->events++;
    if (!r->value) return;
    size_t n = 0;
    const char *t = quick_field(r->value, r->vlen, "event_time", &n);
    if (t && n && n < 20) {
        int64_t v = strtoll(t, NULL, 10);
        if (v < b->tmin) b->tmin = v;
        if (v > b->tmax) b->tmax = v;
    }
    if (!json_object_size(b->labels)) return;
    const char *id = quick_field(r->value, r->vlen, "event_id", &n);
    json_t *ev = NULL;
    char idbuf[256];
    if (id && n < sizeof idbuf) {
        memcpy(idbuf, id, n);
        idbuf[n] = 0;
        if (!json_object_get(b->labels, idbuf)) return; /* not labeled: the common case, no parse */
    }
    ev = json_loadb(r->value, r->vlen, 0, NULL);
    const char *eid = json_string_value(json_object_get(ev, "event_id"));
    json_t *lab = eid ? json_object_get(b->labels, eid) : NULL;
    if (!lab) {
        json_decref(ev);
        return;
    }
    if (b->nseen == b->capseen) {
        uint32_t c = b->capseen ? 2 * b->capseen : 256;
        labeled_t *g = realloc(b->seen, c * sizeof *g);
        if (!g) {
            json_decref(ev);
            return;
        }
        b->seen = g, b->capseen = c;
    }
    labeled_t *l = &b->seen[b->nseen];
    const char *label = json_string_value(json_array_get(lab, 0));
    *l = (labeled_t){.fields = ev,
                     .label = label,
                     .scenario = json_string_value(json_array_get(lab, 1)),
                     .time = json_integer_value(json_object_get(ev, "event_time")),
                     .amount = json_integer_value(json_object_get(ev, "amount_minor")),
                     .positive = !strcmp(label, "fraud") || !strcmp(label, "abuse")};
    const char *acct = json_string_value(json_object_get(ev, "account_id"));
    json_t *named = json_array_get(lab, 2);
    char who[64];
    if (json_is_null(named) || !named) snprintf(who, sizeof who, "account %s", acct ? acct : "?");
    else if (json_is_string(named)) snprintf(who, sizeof who, "%s", json_string_value(named));
    else snprintf(who, sizeof who, "#%lld", (long long)json_integer_value(named));
    if (l->positive) {
        l->instance = instance_of(b, l->scenario, who, l->time);
        b->inst[l->instance].value += l->amount;
        b->inst[l->instance].events++;
    }
    const char *k;
    json_t *v;
    json_object_foreach(ev, k, v) index_value(b, v, b->nseen);
    b->cur_labeled = b->nseen++;
}

void cep_backtest_dead_letter(cep_backtest_t *b)
{
    b->dead_letters++;
}

/* An output row as the report needs it, in text: made where the row is
 * (an operator's callback, on any thread), consumed in order by the one
 * thread that keeps the report. Offsets into one buffer. */
typedef struct bt_alert {
    uint32_t query;
    bool tombstone, windowed;
    int64_t ts, wstart, wend;
    size_t at, key_len, line_len, cols_len, ident_len; /* key JSON, alert line, key columns, ident: in turn from at */
} bt_alert_t;

/* Describe o into out: its key JSON, alert line, key columns
 * ("NAME\0json\0...\0", only with labels) and ident (only with a
 * baseline). Reads nothing of b that changes during a replay. */
static void bt_describe(const cep_backtest_t *b, const cep_output_t *o, bt_alert_t *a, cep_buf_t *out)
{
    *a = (bt_alert_t){.query = o->query->id,
                      .tombstone = o->tombstone,
                      .windowed = o->windowed,
                      .ts = o->timestamp,
                      .wstart = o->wstart,
                      .wend = o->wend,
                      .at = out->len};
    size_t mark = out->len;
    cep_output_key_json(o, out);
    a->key_len = out->len - mark;
    mark = out->len;
    cep_output_alert_line(o, out);
    a->line_len = out->len - mark;
    mark = out->len;
    if (json_object_size(b->labels)) {
        for (uint32_t i = 0; i < o->sink->ncols; i++) {
            if (!o->sink->cols[i].is_key) continue;
            cep_buf_put(out, o->sink->cols[i].name, strlen(o->sink->cols[i].name) + 1);
            size_t v = out->len;
            cep_value_to_json(&o->cols[i], out);
            if (out->len == v) cep_buf_puts(out, "null");
            cep_buf_putc(out, 0);
        }
        cep_buf_putc(out, 0);
    }
    a->cols_len = out->len - mark;
    mark = out->len;
    if (b->base && !o->tombstone) put_ident(o, out);
    a->ident_len = out->len - mark;
}

/* One output row into the report (text is the buffer a was described in). */
static void bt_consume(cep_backtest_t *b, const bt_alert_t *a, const char *text)
{
    const cep_query_t *q = b->rs->queries[a->query];
    if (q->internal) return;
    const char *key = text + a->at, *line = key + a->key_len, *cols = line + a->line_len,
               *ident = cols + a->cols_len;
    if (b->base && !a->tombstone) diff_add(b, 0, q->name, a->ts, ident, a->ident_len, line, a->line_len);
    rule_stats_t *rs = &b->rules[q->id];
    if (a->tombstone) {
        rs->retractions++;
        return;
    }
    rs->alerts++;
    if (rs->ntimes == rs->captimes) {
        size_t c = rs->captimes ? 2 * rs->captimes : 64;
        int64_t *g = realloc(rs->times, c * sizeof *g);
        if (g) rs->times = g, rs->captimes = c;
    }
    if (rs->ntimes < rs->captimes) rs->times[rs->ntimes++] = a->ts;
    key_counts_add(&rs->keys, key, a->key_len);
    if (json_array_size(rs->samples) < SAMPLES) {
        json_t *smp = json_object();
        json_object_set_new(smp, "alert", json_loadb(line, a->line_len, 0, NULL));
        if (b->cur && b->cur->value) {
            json_t *ev = json_loadb(b->cur->value, b->cur->vlen, 0, NULL);
            json_object_set_new(smp, "event", ev ? ev : json_stringn(b->cur->value, b->cur->vlen));
        }
        json_array_append_new(rs->samples, smp);
    }
    if (!a->cols_len) return; /* no labels: nothing to join */
    /* kept for the join: key columns and the event time the alert covers */
    if (b->nalerts == b->capalerts) {
        size_t cp = b->capalerts ? 2 * b->capalerts : 1024;
        alert_t *g = realloc(b->alerts, cp * sizeof *g);
        if (!g) return;
        b->alerts = g, b->capalerts = cp;
    }
    char *keys = malloc(a->cols_len);
    if (!keys) return;
    memcpy(keys, cols, a->cols_len);
    int64_t lo = a->windowed ? a->wstart : rs->span < 0 ? INT64_MIN : a->ts - rs->span;
    int64_t hi = a->windowed ? a->wend - 1 : a->ts;
    b->alerts[b->nalerts++] =
        (alert_t){.rule = q->id, .time = a->ts, .lo = lo, .hi = hi, .trigger = b->cur_labeled, .keys = keys};
}

void cep_backtest_output(cep_backtest_t *b, const cep_output_t *o)
{
    if (o->query->internal) return;
    bt_alert_t a;
    cep_buf_reset(&b->tmp);
    bt_describe(b, o, &a, &b->tmp);
    bt_consume(b, &a, b->tmp.data);
}

/* ---- the join ----------------------------------------------------------------------- */

/* Does the labeled event carry every key column's value (by field name,
 * case-insensitively), inside the alert's span? */
static bool covers(const alert_t *a, const labeled_t *l)
{
    if (l->time < a->lo || l->time > a->hi) return false;
    bool any = false;
    for (const char *k = a->keys; k && *k;) {
        const char *v = k + strlen(k) + 1;
        const char *f;
        json_t *fv, *match = NULL;
        json_object_foreach(l->fields, f, fv) if (!strcasecmp(f, k)) match = fv;
        char *text = match ? json_dumps(match, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
        bool same = text && !strcmp(text, v);
        free(text);
        if (!same) return false;
        any = true;
        k = v + strlen(v) + 1;
    }
    return any;
}

typedef struct catch_ {
    int64_t *first_alert; /* per instance: the first covering alert's time, INT64_MAX: not caught */
} catch_t;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static json_t *delays(int64_t *d, size_t n)
{
    if (!n) return json_null();
    qsort(d, n, sizeof *d, cmp_i64);
    return json_pack("{sIsIsI}", "min", (json_int_t)d[0], "median", (json_int_t)d[n / 2], "max", (json_int_t)d[n - 1]);
}

static json_t *ratio(uint64_t a, uint64_t b)
{
    return b ? json_real((double)a / (double)b) : json_null();
}

/* Does key count x rank above y: more alerts, then the smaller key text. */
static bool ranks_above(const key_counts_t *kc, const key_count_t *x, const key_count_t *y)
{
    if (x->count != y->count) return x->count > y->count;
    int c = memcmp(kc->texts.data + x->text, kc->texts.data + y->text, CEP_MIN(x->len, y->len));
    return c ? c < 0 : x->len < y->len;
}

/* [[key, count]...] by count, highest first (then by key text), at most max. */
static json_t *ranked(const key_counts_t *kc, size_t max)
{
    const key_count_t *top[TOP_KEYS];
    size_t n = 0;
    if (max > TOP_KEYS) max = TOP_KEYS;
    for (size_t i = 0; i < kc->cap; i++) {
        const key_count_t *e = &kc->slots[i];
        if (!e->count || (n == max && !ranks_above(kc, e, top[n - 1]))) continue;
        size_t at = n < max ? n++ : n - 1; /* insert, dropping the last when full */
        while (at > 0 && ranks_above(kc, e, top[at - 1])) top[at] = top[at - 1], at--;
        top[at] = e;
    }
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *key = json_loadb(kc->texts.data + top[i]->text, top[i]->len, JSON_DECODE_ANY, NULL);
        json_array_append_new(out, json_pack("[oI]", key ? key : json_null(), (json_int_t)top[i]->count));
    }
    return out;
}

/* [[hour start, n]...] of the alert times, ascending (UTC hours) */
static json_t *hours(const int64_t *times, size_t n)
{
    int64_t *h = malloc((n + 1) * sizeof *h);
    json_t *out = json_array();
    if (!h) return out;
    for (size_t i = 0; i < n; i++) h[i] = times[i] - ((times[i] % HOUR_MS) + HOUR_MS) % HOUR_MS;
    qsort(h, n, sizeof *h, cmp_i64);
    for (size_t i = 0, k; i < n; i = k) {
        for (k = i; k < n && h[k] == h[i]; k++) continue;
        json_array_append_new(out, json_pack("[II]", (json_int_t)h[i], (json_int_t)(k - i)));
    }
    free(h);
    return out;
}

/* The timeline's buckets: the finest step of a readable few (a minute to
 * a week) that covers [lo, hi] in at most TIMELINE_BUCKETS buckets. */
#define TIMELINE_BUCKETS 180
static void timeline_step(int64_t lo, int64_t hi, int64_t *from, int64_t *step, int64_t *buckets)
{
    static const int64_t steps[] = {60000LL,    300000LL,   900000LL,   1800000LL, HOUR_MS,
                                    3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, DAY_MS,   7 * DAY_MS};
    for (size_t i = 0; i < CEP_ARRAY_LEN(steps); i++) {
        *step = steps[i];
        *from = lo - ((lo % *step) + *step) % *step;
        *buckets = (hi - *from) / *step + 1;
        if (*buckets <= TIMELINE_BUCKETS) return;
    }
    *step = (hi - *from) / TIMELINE_BUCKETS + 1;
    *buckets = (hi - *from) / *step + 1;
}

/* [[day start, n]...] from the hours (UTC days) */
static json_t *days(json_t *hours)
{
    json_t *out = json_array();
    size_t i;
    json_t *h;
    json_array_foreach(hours, i, h) {
        int64_t t = json_integer_value(json_array_get(h, 0)), n = json_integer_value(json_array_get(h, 1));
        int64_t day = t - ((t % DAY_MS) + DAY_MS) % DAY_MS;
        json_t *last = json_array_get(out, json_array_size(out) - 1);
        if (last && json_integer_value(json_array_get(last, 0)) == day)
            json_array_set_new(last, 1, json_integer(json_integer_value(json_array_get(last, 1)) + n));
        else
            json_array_append_new(out, json_pack("[II]", (json_int_t)day, (json_int_t)n));
    }
    return out;
}

void cep_backtest_report(cep_backtest_t *b, double wall_s, cep_buf_t *out)
{
    const cep_ruleset_t *rs = b->rs;
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("cep.backtest/1"));
    json_object_set_new(root, "pack", b->pack ? json_string(b->pack) : json_null());
    json_object_set_new(root, "source", b->source ? json_string(b->source) : json_null());
    json_object_set_new(root, "events", json_integer((json_int_t)b->events));
    json_object_set_new(root, "dead_letters", json_integer((json_int_t)b->dead_letters));
    json_object_set_new(root, "event_time", b->tmin <= b->tmax ? json_pack("{sIsI}", "from", (json_int_t)b->tmin, "to",
                                                                          (json_int_t)b->tmax)
                                                              : json_null());
    json_object_set_new(root, "wall_s", json_real(wall_s));
    json_object_set_new(root, "events_per_s", json_real(wall_s > 0 ? (double)b->events / wall_s : 0));
    bool labeled = json_object_size(b->labels) > 0;
    /* per rule and instance: when it was first caught */
    int64_t **first = calloc(rs->nqueries + 1, sizeof *first);
    for (uint32_t i = 0; first && i < rs->nqueries; i++) {
        if (!(first[i] = malloc((b->ninst + 1) * sizeof **first))) continue;
        for (uint32_t k = 0; k < b->ninst; k++) first[i][k] = INT64_MAX;
    }
    for (size_t i = 0; labeled && first && i < b->nalerts; i++) {
        alert_t *a = &b->alerts[i];
        bool hit = false;
        if (a->trigger >= 0) { /* the event that made it */
            const labeled_t *l = &b->seen[a->trigger];
            if (l->positive) {
                hit = true;
                if (first[a->rule] && a->time < first[a->rule][l->instance]) first[a->rule][l->instance] = a->time;
            }
        }
        const char *v = a->keys + strlen(a->keys) + 1; /* the first key column's value */
        json_t *cands = *a->keys ? json_object_get(b->by_value, v) : NULL;
        size_t ci;
        json_t *c;
        json_array_foreach(cands, ci, c) {
            const labeled_t *l = &b->seen[json_integer_value(c)];
            if (!l->positive || !covers(a, l)) continue;
            hit = true;
            if (first[a->rule] && a->time < first[a->rule][l->instance]) first[a->rule][l->instance] = a->time;
        }
        if (hit) b->rules[a->rule].true_alerts++;
    }
    /* scenarios: instances, value, caught by any rule */
    json_t *scen = json_object();
    for (uint32_t k = 0; k < b->ninst; k++) {
        const instance_t *in = &b->inst[k];
        json_t *s = json_object_get(scen, in->scenario);
        if (!s) {
            s = json_pack("{sIsIsIsI}", "instances", (json_int_t)0, "caught", (json_int_t)0, "value_minor", (json_int_t)0,
                          "caught_value_minor", (json_int_t)0);
            json_object_set_new(scen, in->scenario, s);
        }
        int64_t when = INT64_MAX;
        for (uint32_t i = 0; first && i < rs->nqueries; i++)
            if (first[i] && first[i][k] < when) when = first[i][k];
        json_object_set_new(s, "instances", json_integer(json_integer_value(json_object_get(s, "instances")) + 1));
        json_object_set_new(s, "value_minor", json_integer(json_integer_value(json_object_get(s, "value_minor")) + in->value));
        if (when != INT64_MAX) {
            json_object_set_new(s, "caught", json_integer(json_integer_value(json_object_get(s, "caught")) + 1));
            json_object_set_new(s, "caught_value_minor",
                                json_integer(json_integer_value(json_object_get(s, "caught_value_minor")) + in->value));
        }
    }
    const char *sk;
    json_t *sv;
    json_object_foreach(scen, sk, sv) json_object_set_new(sv, "recall", ratio((uint64_t)json_integer_value(json_object_get(sv, "caught")),
                                                                         (uint64_t)json_integer_value(json_object_get(sv, "instances"))));
    /* the timeline: over the events' and the alerts' times */
    int64_t lo = b->tmin, hi = b->tmax;
    for (uint32_t i = 0; i < rs->nqueries; i++)
        for (size_t k = 0; k < b->rules[i].ntimes; k++) {
            lo = CEP_MIN(lo, b->rules[i].times[k]);
            hi = CEP_MAX(hi, b->rules[i].times[k]);
        }
    int64_t tl_from = 0, tl_step = HOUR_MS, tl_n = 0;
    if (lo <= hi) {
        timeline_step(lo, hi, &tl_from, &tl_step, &tl_n);
        json_object_set_new(root, "timeline", json_pack("{sIsIsI}", "from", (json_int_t)tl_from, "step_ms",
                                                        (json_int_t)tl_step, "buckets", (json_int_t)tl_n));
    } else {
        json_object_set_new(root, "timeline", json_null());
    }
    json_t *rules = json_array();
    int64_t *d = calloc(b->ninst + 1, sizeof *d);
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        const cep_query_t *q = rs->queries[i];
        rule_stats_t *st = &b->rules[i];
        if (q->internal) continue;
        json_t *r = json_object();
        json_object_set_new(r, "rule", json_string(q->name));
        json_object_set_new(r, "severity", q->meta.severity ? json_string(q->meta.severity) : json_null());
        json_object_set_new(r, "mode", json_string(q->meta.mode ? q->meta.mode : "live"));
        json_t *tags = json_array();
        for (uint32_t t = 0; t < q->meta.ntags; t++) json_array_append_new(tags, json_string(q->meta.tags[t]));
        json_object_set_new(r, "tags", tags);
        json_object_set_new(r, "alerts", json_integer((json_int_t)st->alerts));
        json_object_set_new(r, "retractions", json_integer((json_int_t)st->retractions));
        json_t *ph = hours(st->times, st->ntimes);
        json_object_set_new(r, "per_day", days(ph));
        json_object_set_new(r, "per_hour", ph);
        json_t *tl = json_array();
        if (tl_n > 0) {
            int64_t *c = calloc((size_t)tl_n, sizeof *c);
            for (size_t k = 0; c && k < st->ntimes; k++) c[(st->times[k] - tl_from) / tl_step]++;
            for (int64_t k = 0; c && k < tl_n; k++) json_array_append_new(tl, json_integer(c[k]));
            free(c);
        }
        json_object_set_new(r, "timeline", tl);
        json_object_set_new(r, "top_keys", ranked(&st->keys, TOP_KEYS));
        json_object_set_new(r, "samples", json_incref(st->samples));
        if (labeled) {
            json_object_set_new(r, "true_alerts", json_integer((json_int_t)st->true_alerts));
            json_object_set_new(r, "precision", ratio(st->true_alerts, st->alerts));
            json_t *per = json_object();
            uint64_t tagged = 0, tagged_caught = 0;
            json_object_foreach(scen, sk, sv) {
                uint64_t inst = 0, caught = 0;
                int64_t value = 0;
                size_t nd = 0;
                for (uint32_t k = 0; k < b->ninst; k++) {
                    if (strcmp(b->inst[k].scenario, sk)) continue;
                    inst++;
                    if (!first || !first[i] || first[i][k] == INT64_MAX) continue;
                    caught++;
                    value += b->inst[k].value;
                    d[nd++] = CEP_MAX(first[i][k] - b->inst[k].first, 0);
                }
                bool target = false;
                for (uint32_t t = 0; t < q->meta.ntags; t++) target |= !strcasecmp(q->meta.tags[t], sk);
                if (target) tagged += inst, tagged_caught += caught;
                if (!caught && !target) continue;
                json_object_set_new(per, sk, json_pack("{sIsIsosIso}", "instances", (json_int_t)inst, "caught",
                                                       (json_int_t)caught, "recall", ratio(caught, inst),
                                                       "caught_value_minor", (json_int_t)value, "detection_delay_ms",
                                                       delays(d, nd)));
            }
            json_object_set_new(r, "recall", tagged ? ratio(tagged_caught, tagged) : json_null());
            json_object_set_new(r, "scenarios", per);
        }
        json_array_append_new(rules, r);
    }
    free(d);
    for (uint32_t i = 0; first && i < rs->nqueries; i++) free(first[i]);
    free(first);
    json_object_set_new(root, "rules", rules);
    if (labeled) {
        json_object_set_new(root, "scenarios", scen);
        json_object_set_new(root, "labeled_events_seen", json_integer(b->nseen));
    } else
        json_decref(scen);
    if (b->base) json_object_set_new(root, "baseline", diff_report(b));
    char *text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (text) cep_buf_puts(out, text);
    free(text);
    json_decref(root);
}

/* ---- `cep backtest` --------------------------------------------------------------- */

typedef struct replay replay_t;

/* --threads N: each worker runs its share of the rules over every record
 * of a batch; the main thread takes their outputs record by record. Two
 * batches take turns: while the workers run one, the main thread reads
 * the next and takes the outputs of the one before. */

/* A worker's outputs of one batch, described. */
typedef struct outbuf {
    cep_buf_t text;
    bt_alert_t *out;
    uint64_t *seq;  /* per output: its record in the batch (UINT64_MAX: the end of input) */
    uint32_t *root; /* per output: the query whose run made it (cep_runtime_running) */
    size_t nout, capout, taken;
    cep_buf_t errors; /* worker 0: the batch's dead letters, "seq\0byte offset\0reason\0" */
} outbuf_t;

typedef struct worker {
    replay_t *rp;
    int id;
    cep_runtime_t *rt;
    pthread_t th;
    outbuf_t buf[2]; /* one per batch */
    outbuf_t *to;    /* the one being written */
    uint64_t cur;
} worker_t;

/* A record of a batch, its bytes copied (Kafka messages do not outlive
 * their callback). */
typedef struct batch_rec {
    const char *topic;
    size_t value, vlen, key, klen, where, wlen; /* offsets in bytes */
    bool has_value, has_key;
    int32_t partition;
    int64_t offset, timestamp;
    uint64_t at;
} batch_rec_t;

#define BATCH 8192

typedef struct batch {
    batch_rec_t *recs; /* BATCH each */
    cep_record_t *live;
    size_t nrecs;
    cep_buf_t bytes;
} batch_t;

struct replay {
    cep_backtest_t *bt;
    const cep_ruleset_t *rs;
    cep_runtime_t *rt, *base_rt;
    FILE *alerts, *dl;
    cep_buf_t line;
    uint64_t nalerts, events, bad;
    /* the progress line */
    bool bar;
    uint64_t t0, next_bar, done, total;
    /* --threads */
    int threads;          /* asked for */
    int nworkers, nalloc; /* threads running; workers made */
    worker_t *workers;
    pthread_barrier_t start, finish;
    bool quit, ending;
    batch_t batches[2];
    int filling;  /* the batch being read */
    int inflight; /* the batch the workers run, -1: none */
    int work;     /* what the workers run next (set before the start barrier) */
};

static void on_output(void *ctx, const cep_output_t *o)
{
    replay_t *r = ctx;
    if (o->query->internal) return;
    cep_backtest_output(r->bt, o);
    r->nalerts++;
    if (!r->alerts) return;
    cep_buf_reset(&r->line);
    cep_output_alert_line(o, &r->line); /* the line `cep run --output` writes */
    cep_buf_putc(&r->line, '\n');
    fwrite(r->line.data, 1, r->line.len, r->alerts);
}

static void on_base_output(void *ctx, const cep_output_t *o)
{
    cep_backtest_baseline_output(ctx, o);
}

/* One line on a terminal, redrawn: events, speed, event time, ETA. */
static void progress(uint64_t events, double secs, int64_t etime, uint64_t done, uint64_t total)
{
    char when[32] = "-";
    if (etime != INT64_MIN) {
        time_t t = (time_t)(etime / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    }
    double rate = secs > 0 ? (double)events / secs : 0;
    double eta = done && total > done ? secs * (double)(total - done) / (double)done : 0;
    fprintf(stderr, "\rcep backtest: %llu events  %.0f events/s  event time %s  %3.0f%%  ETA %.0f s   ",
            (unsigned long long)events, rate, when, total ? 100.0 * (double)done / (double)total : 0.0, eta);
}

/* One record of history through the pack (and the baseline); a record
 * neither decodes goes to the dead letters, as in `cep run`. `where` and
 * `at` name it there (file and line, or topic:partition and offset). */
static void submit_batch(replay_t *rp);
static void spawn_workers(replay_t *rp, const batch_t *bt);

static size_t keep_bytes(cep_buf_t *bytes, const void *p, size_t n)
{
    size_t at = bytes->len;
    if (n) cep_buf_put(bytes, p, n);
    return at;
}

static void replay_record(replay_t *rp, const cep_record_t *r, const char *where, uint64_t at)
{
    if (rp->threads > 1) {
        batch_t *bt = &rp->batches[rp->filling];
        batch_rec_t *br = &bt->recs[bt->nrecs++];
        *br = (batch_rec_t){.topic = r->topic, .has_value = r->value != NULL, .vlen = r->vlen,
                            .has_key = r->key != NULL, .klen = r->klen, .wlen = strlen(where),
                            .partition = r->partition, .offset = r->offset, .timestamp = r->timestamp, .at = at};
        br->value = keep_bytes(&bt->bytes, r->value, r->value ? r->vlen : 0);
        br->key = keep_bytes(&bt->bytes, r->key, r->key ? r->klen : 0);
        br->where = keep_bytes(&bt->bytes, where, br->wlen + 1);
        if (bt->nrecs == BATCH) submit_batch(rp);
        return;
    }
    rp->events++;
    cep_backtest_record(rp->bt, r);
    cep_error_t de;
    cep_error_clear(&de);
    if (cep_runtime_push(rp->rt, r, &de)) {
        rp->bad++;
        cep_backtest_dead_letter(rp->bt);
        if (rp->dl) {
            cep_buf_reset(&rp->line);
            cep_output_dead_letter_line(where, at, &de, r->value ? r->value : "", r->value ? r->vlen : 0, &rp->line);
            cep_buf_putc(&rp->line, '\n');
            fwrite(rp->line.data, 1, rp->line.len, rp->dl);
        }
    }
    if (rp->base_rt) cep_runtime_push(rp->base_rt, r, NULL);
    if (rp->bar && (rp->events & 4095) == 0 && cep_now_ns() >= rp->next_bar) {
        progress(rp->events, (double)(cep_now_ns() - rp->t0) / 1e9, rp->bt->tmax, rp->done, rp->total);
        rp->next_bar = cep_now_ns() + 200000000ULL;
    }
}

/* ---- --threads: the rules split over workers ------------------------------------- */

static void on_worker_output(void *ctx, const cep_output_t *o)
{
    worker_t *w = ctx;
    outbuf_t *ob = w->to;
    if (o->query->internal) return;
    if (ob->nout == ob->capout) {
        size_t c = ob->capout ? 2 * ob->capout : 4096;
        bt_alert_t *g = realloc(ob->out, c * sizeof *g);
        if (g) ob->out = g;
        uint64_t *gs = g ? realloc(ob->seq, c * sizeof *gs) : NULL;
        if (gs) ob->seq = gs;
        uint32_t *gr = gs ? realloc(ob->root, c * sizeof *gr) : NULL;
        if (!gr) return;
        ob->root = gr, ob->capout = c;
    }
    bt_describe(w->rp->bt, o, &ob->out[ob->nout], &ob->text);
    ob->root[ob->nout] = cep_runtime_running(w->rt);
    ob->seq[ob->nout++] = w->cur;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    replay_t *rp = w->rp;
    for (;;) {
        pthread_barrier_wait(&rp->start);
        if (rp->quit) break;
        const batch_t *bt = &rp->batches[rp->work];
        w->to = &w->buf[rp->work];
        for (size_t i = 0; i < bt->nrecs; i++) {
            w->cur = i;
            cep_error_t de;
            cep_error_clear(&de);
            if (cep_runtime_push(w->rt, &bt->live[i], &de) && w->id == 0) {
                cep_buf_printf(&w->to->errors, "%zu", i);
                cep_buf_putc(&w->to->errors, 0);
                cep_buf_printf(&w->to->errors, "%u", de.pos.offset);
                cep_buf_putc(&w->to->errors, 0);
                cep_buf_puts(&w->to->errors, de.msg);
                cep_buf_putc(&w->to->errors, 0);
            }
        }
        if (rp->ending) {
            w->cur = UINT64_MAX;
            cep_runtime_finish(w->rt); /* the end of history: pattern time-outs fire */
        }
        pthread_barrier_wait(&rp->finish);
    }
    return NULL;
}

/* The outputs made for record seq of batch k, in the order one runtime
 * would make them: each worker's are in that order already, and the
 * workers' are merged by the query they come from (queries run in id
 * order). */
static void take_outputs(replay_t *rp, int k, uint64_t seq)
{
    for (;;) {
        outbuf_t *next = NULL;
        for (int i = 0; i < rp->nworkers; i++) {
            outbuf_t *ob = &rp->workers[i].buf[k];
            if (ob->taken < ob->nout && ob->seq[ob->taken] == seq &&
                (!next || ob->root[ob->taken] < next->root[next->taken]))
                next = ob;
        }
        if (!next) return;
        const bt_alert_t *a = &next->out[next->taken++];
        bt_consume(rp->bt, a, next->text.data);
        rp->nalerts++;
        if (rp->alerts) {
            fwrite(next->text.data + a->at + a->key_len, 1, a->line_len, rp->alerts);
            fputc('\n', rp->alerts);
        }
    }
}

/* Batch k, run: its records into the report in order, each followed by
 * the outputs it made; the baseline takes them too. */
static void take_batch(replay_t *rp, int k)
{
    batch_t *bt = &rp->batches[k];
    const outbuf_t *ob0 = &rp->workers[0].buf[k];
    const char *err = ob0->errors.data, *err_end = err + ob0->errors.len;
    for (size_t i = 0; i < bt->nrecs; i++) {
        const cep_record_t *r = &bt->live[i];
        rp->events++;
        cep_backtest_record(rp->bt, r);
        if (err < err_end && (size_t)strtoull(err, NULL, 10) == i) { /* a dead letter, as with one thread */
            const char *where = err + strlen(err) + 1, *msg = where + strlen(where) + 1;
            err = msg + strlen(msg) + 1;
            rp->bad++;
            cep_backtest_dead_letter(rp->bt);
            if (rp->dl) {
                cep_error_t de;
                cep_error_clear(&de);
                snprintf(de.msg, sizeof de.msg, "%s", msg);
                de.pos.offset = (uint32_t)strtoul(where, NULL, 10);
                cep_buf_reset(&rp->line);
                cep_output_dead_letter_line(r->source, bt->recs[i].at, &de, r->value ? r->value : "",
                                            r->value ? r->vlen : 0, &rp->line);
                cep_buf_putc(&rp->line, '\n');
                fwrite(rp->line.data, 1, rp->line.len, rp->dl);
            }
        }
        take_outputs(rp, k, i);
        if (rp->base_rt) cep_runtime_push(rp->base_rt, r, NULL);
    }
    if (rp->ending) {
        cep_backtest_record(rp->bt, NULL);
        take_outputs(rp, k, UINT64_MAX);
    }
    bt->nrecs = 0;
    cep_buf_reset(&bt->bytes);
    if (rp->bar && cep_now_ns() >= rp->next_bar) {
        progress(rp->events, (double)(cep_now_ns() - rp->t0) / 1e9, rp->bt->tmax, rp->done, rp->total);
        rp->next_bar = cep_now_ns() + 200000000ULL;
    }
}

/* Wait for the workers' batch, if any, and take it. */
static void take_inflight(replay_t *rp)
{
    if (rp->inflight < 0) return;
    pthread_barrier_wait(&rp->finish);
    take_batch(rp, rp->inflight);
    rp->inflight = -1;
}

/* The batch being read goes to the workers; while they run it, the one
 * they ran before is taken here. */
static void submit_batch(replay_t *rp)
{
    int k = rp->filling;
    batch_t *bt = &rp->batches[k];
    for (size_t i = 0; i < bt->nrecs; i++) {
        const batch_rec_t *br = &bt->recs[i];
        bt->live[i] = (cep_record_t){.topic = br->topic,
                                     .value = br->has_value ? bt->bytes.data + br->value : NULL,
                                     .vlen = br->vlen,
                                     .key = br->has_key ? bt->bytes.data + br->key : NULL,
                                     .klen = br->klen,
                                     .partition = br->partition,
                                     .offset = br->offset,
                                     .timestamp = br->timestamp,
                                     .source = bt->bytes.data + br->where,
                                     .line = br->at,
                                     .src_partition = -1};
    }
    if (!rp->nworkers) spawn_workers(rp, bt);
    int prev = rp->inflight;
    if (prev >= 0) pthread_barrier_wait(&rp->finish); /* the workers are done with it */
    for (int i = 0; i < rp->nworkers; i++) {
        outbuf_t *ob = &rp->workers[i].buf[k];
        cep_buf_reset(&ob->text);
        cep_buf_reset(&ob->errors);
        ob->nout = ob->taken = 0;
    }
    rp->work = k;
    pthread_barrier_wait(&rp->start);
    rp->inflight = k;
    rp->filling = 1 - k;
    if (prev >= 0) take_batch(rp, prev); /* while the workers run k */
}

static uint32_t find_root(uint32_t *parent, uint32_t i)
{
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
}

/* The rules in groups that must run together (the members of a shared
 * aggregation; a query and the queries reading its rows), dealt to the
 * workers costliest group first, each to the least loaded. cost: per
 * query, what it is expected to cost. */
static bool split_rules(const cep_ruleset_t *rs, int n, const uint64_t *cost, bool **masks)
{
    uint32_t nq = rs->nqueries, *parent = malloc((nq + 1) * sizeof *parent);
    uint64_t *size = calloc(nq + 1, sizeof *size), *load = calloc((size_t)n, sizeof *load);
    if (!parent || !size || !load) {
        free(parent), free(size), free(load);
        return false;
    }
    for (uint32_t i = 0; i < nq; i++) parent[i] = i;
    for (uint32_t i = 0; i < nq; i++) {
        const cep_query_t *q = rs->queries[i];
        if (q->kind == CEP_Q_AGGREGATE)
            for (uint32_t m = 0; m < q->share->nmembers; m++)
                parent[find_root(parent, q->share->members[m]->id)] = find_root(parent, i);
        if (q->from && !q->from->is_source)
            for (uint32_t k = 0; k < nq; k++)
                if (rs->queries[k]->sink == q->from) parent[find_root(parent, k)] = find_root(parent, i);
    }
    for (uint32_t i = 0; i < nq; i++) size[find_root(parent, i)] += cost[i];
    for (;;) { /* the largest group left */
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < nq; i++)
            if (size[i] && (best == UINT32_MAX || size[i] > size[best])) best = i;
        if (best == UINT32_MAX) break;
        int to = 0;
        for (int k = 1; k < n; k++)
            if (load[k] < load[to]) to = k;
        for (uint32_t i = 0; i < nq; i++)
            if (find_root(parent, i) == best) masks[to][i] = true;
        load[to] += size[best];
        size[best] = 0;
    }
    free(parent), free(size), free(load);
    return true;
}

/* The batches and the workers' buffers; the workers themselves start
 * with the first batch (spawn_workers). */
static bool start_workers(replay_t *rp, int n)
{
    rp->workers = calloc((size_t)n, sizeof *rp->workers);
    bool ok = rp->workers != NULL;
    rp->inflight = -1;
    rp->nalloc = rp->workers ? n : 0;
    rp->threads = n;
    for (int k = 0; k < 2; k++) {
        batch_t *bt = &rp->batches[k];
        cep_buf_init(&bt->bytes);
        bt->recs = malloc(BATCH * sizeof *bt->recs);
        bt->live = malloc(BATCH * sizeof *bt->live);
        ok = ok && bt->recs && bt->live;
    }
    for (int k = 0; ok && k < n; k++) {
        worker_t *w = &rp->workers[k];
        w->rp = rp;
        w->id = k;
        for (int i = 0; i < 2; i++) {
            cep_buf_init(&w->buf[i].text);
            cep_buf_init(&w->buf[i].errors);
        }
        w->to = &w->buf[0];
    }
    if (!ok) fprintf(stderr, "cep backtest: cannot start %d workers: out of memory\n", n);
    return ok;
}

static void discard_output(void *ctx, const cep_output_t *o)
{
    (void)ctx, (void)o;
}

/* What each query costs on this history, measured on the first batch by
 * a runtime of its own: rows through its WHERE, three times over for the
 * query that updates a shared aggregation's state (a lookup and an update)
 * besides emitting its own rows. Rules that never run still weigh 1. */
static bool measure_costs(replay_t *rp, const batch_t *bt, uint64_t *cost)
{
    const cep_ruleset_t *rs = rp->rs;
    cep_runtime_t *probe = cep_runtime_new(rs, discard_output, NULL);
    if (!probe) return false;
    for (size_t i = 0; i < bt->nrecs; i++) cep_runtime_push(probe, &bt->live[i], NULL);
    for (uint32_t q = 0; q < rs->nqueries; q++) {
        const cep_query_t *x = rs->queries[q];
        bool first = x->kind == CEP_Q_AGGREGATE && x->share->members[0] == x;
        cost[q] = 1 + cep_runtime_passes(probe, q) * (first ? 3 : 1);
    }
    cep_runtime_free(probe);
    return true;
}

/* The rules split by their cost on batch bt, a runtime and a thread each. */
static void spawn_workers(replay_t *rp, const batch_t *bt)
{
    int n = rp->threads;
    uint32_t nq = rp->rs->nqueries;
    bool **masks = calloc((size_t)n, sizeof *masks);
    uint64_t *cost = calloc(nq + 1, sizeof *cost);
    bool ok = masks && cost && measure_costs(rp, bt, cost);
    for (int k = 0; ok && k < n; k++) ok = (masks[k] = calloc(nq + 1, 1)) != NULL;
    ok = ok && split_rules(rp->rs, n, cost, masks);
    for (int k = 0; ok && k < n; k++) {
        worker_t *w = &rp->workers[k];
        ok = (w->rt = cep_runtime_new(rp->rs, on_worker_output, w)) && cep_runtime_only(w->rt, masks[k]);
    }
    for (int k = 0; masks && k < n; k++) free(masks[k]);
    free(masks);
    free(cost);
    if (!ok) {
        fprintf(stderr, "cep backtest: cannot start %d workers: out of memory\n", n);
        exit(1);
    }
    pthread_barrier_init(&rp->start, NULL, (unsigned)n + 1);
    pthread_barrier_init(&rp->finish, NULL, (unsigned)n + 1);
    for (int k = 0; k < n; k++) {
        if (pthread_create(&rp->workers[k].th, NULL, worker_main, &rp->workers[k])) {
            /* the workers started wait for all n at the barrier: no way back */
            fprintf(stderr, "cep backtest: cannot start worker thread %d of %d\n", k + 1, n);
            exit(1);
        }
        rp->nworkers = k + 1;
    }
}

/* The last batches, the end of input (finish), then the workers go. */
static void stop_workers(replay_t *rp, bool finish)
{
    if (rp->threads <= 1 || (!finish && !rp->nworkers)) return;
    if (finish) {
        if (rp->batches[rp->filling].nrecs) submit_batch(rp);
        take_inflight(rp);
        rp->ending = true;
        submit_batch(rp); /* no records: the end of input */
        take_inflight(rp);
    } else if (rp->inflight >= 0) {
        pthread_barrier_wait(&rp->finish);
    }
    rp->quit = true;
    pthread_barrier_wait(&rp->start);
    for (int k = 0; k < rp->nworkers; k++) pthread_join(rp->workers[k].th, NULL);
}

static void free_workers(replay_t *rp)
{
    for (int k = 0; rp->workers && k < rp->nalloc; k++) {
        worker_t *w = &rp->workers[k];
        cep_runtime_free(w->rt);
        for (int i = 0; i < 2; i++) {
            cep_buf_free(&w->buf[i].text);
            cep_buf_free(&w->buf[i].errors);
            free(w->buf[i].out);
            free(w->buf[i].seq);
            free(w->buf[i].root);
        }
    }
    free(rp->workers);
    for (int k = 0; k < 2; k++) {
        free(rp->batches[k].recs);
        free(rp->batches[k].live);
        cep_buf_free(&rp->batches[k].bytes);
    }
}

static int replay_files(replay_t *rp, const char *const *inputs, const char *const *topics, int ninputs,
                        const char *first)
{
    for (int i = 0; i < ninputs; i++) {
        struct stat sb;
        if (!stat(inputs[i], &sb)) rp->total += (uint64_t)sb.st_size;
    }
    for (int f = 0; f < ninputs; f++) {
        FILE *in = fopen(inputs[f], "r");
        if (!in) {
            fprintf(stderr, "cep backtest: cannot open %s\n", inputs[f]);
            return 1;
        }
        const char *t = topics[f] ? topics[f] : first;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        uint64_t lineno = 0;
        while ((n = getline(&line, &cap, in)) > 0) {
            lineno++;
            rp->done += (uint64_t)n;
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
            if (!n) continue;
            cep_record_t r = {.topic = t, .value = line, .vlen = (size_t)n, .offset = (int64_t)lineno,
                              .source = inputs[f], .line = lineno};
            replay_record(rp, &r, inputs[f], lineno);
        }
        free(line);
        fclose(in);
    }
    return 0;
}

static bool on_kafka_record(void *ctx, const struct rd_kafka_message_s *m)
{
    replay_t *rp = ctx;
    cep_record_t r;
    cep_kafka_record(m, rp->rs, &r);
    char where[300];
    snprintf(where, sizeof where, "%s:%d", r.source, (int)r.partition);
    rp->done++;
    replay_record(rp, &r, where, (uint64_t)r.offset);
    return true;
}

/* TIME: epoch milliseconds, or ISO 8601 (a date, a date and time, with or
 * without a zone; without one it is UTC). */
static bool parse_time(const char *s, int64_t *ms)
{
    if (*s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19) {
        *ms = strtoll(s, NULL, 10);
        return true;
    }
    return cep_parse_timestamp_text(s, strlen(s), ms);
}

static int usage(void)
{
    fprintf(stderr,
            "usage: cep backtest --rules PACK (--input FILE... | --kafka BOOTSTRAP [--topic T]... [--from TIME] [--to TIME])\n"
            "                    [--labels FILE] [--baseline PACK] [--report FILE.html] [--json FILE.json]\n"
            "                    [--alerts FILE] [--dead-letters FILE] [-X key=value]... [--threads N] [--quiet]\n"
            "  --topic T before --input files: the topic they are read as (default: the pack's first source)\n"
            "  TIME: epoch milliseconds or ISO 8601 (2026-11-01, 2026-11-01T12:00:00Z); the range is [from, to)\n");
    return 2;
}

static cep_ruleset_t *compile_pack(const char *path)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile_path(path, NULL, &rs, &err)) {
        char buf[1024];
        fprintf(stderr, "%s\n", cep_error_format(&err, buf, sizeof buf));
        return NULL;
    }
    return rs;
}

/* The process ends right after a backtest: its state goes with it.
 * Freeing millions of windows one by one would only cost seconds; kept
 * reachable here, so leak checkers see it as in use. */
static struct {
    cep_runtime_t *rt, *base_rt;
    cep_backtest_t *bt;
    cep_ruleset_t *rs, *base;
    worker_t *workers;
    batch_t batches[2];
} left_to_exit;

int cep_cli_backtest(int argc, char **argv)
{
    const char *rules = NULL, *labels = NULL, *alerts = NULL, *json = NULL, *dlq = NULL, *topic = NULL;
    const char *kafka = NULL, *baseline = NULL, *html = NULL;
    const char *inputs[64], *topics[64], *props[64];
    int ninputs = 0, ntopics = 0;
    size_t nprops = 0;
    int64_t from = INT64_MIN, to = INT64_MAX;
    bool quiet = false;
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--rules") && v) rules = v, i++;
        else if (!strcmp(a, "--input") && v && ninputs < 64) topics[ninputs] = topic, inputs[ninputs++] = v, i++;
        else if (!strcmp(a, "--topic") && v && ntopics < 64) topic = v, ntopics++, i++;
        else if (!strcmp(a, "--kafka") && v) kafka = v, i++;
        else if ((!strcmp(a, "--from") || !strcmp(a, "--to")) && v) {
            if (!parse_time(v, a[2] == 'f' ? &from : &to)) {
                fprintf(stderr, "cep backtest: %s %s: not epoch milliseconds or an ISO 8601 time\n", a, v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--labels") && v) labels = v, i++;
        else if (!strcmp(a, "--baseline") && v) baseline = v, i++;
        else if (!strcmp(a, "--report") && v) html = v, i++;
        else if (!strcmp(a, "--alerts") && v) alerts = v, i++;
        else if (!strcmp(a, "--json") && v) json = v, i++;
        else if (!strcmp(a, "--dead-letters") && v) dlq = v, i++;
        else if (!strcmp(a, "-X") && v && nprops < 64) props[nprops++] = v, i++;
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--threads") && v) {
            char *end;
            long t = strtol(v, &end, 10);
            if (*end || t < 1 || t > 64) {
                fprintf(stderr, "cep backtest: --threads %s: a number from 1 to 64\n", v);
                return 2;
            }
            threads = (int)t;
            i++;
        } else
            return usage();
    }
    if (!rules || (!ninputs == !kafka)) {
        fprintf(stderr, "cep backtest: --rules PACK and either --input FILE... or --kafka BOOTSTRAP are required\n");
        return 2;
    }
    if (!kafka && (from != INT64_MIN || to != INT64_MAX)) {
        fprintf(stderr, "cep backtest: --from and --to select a range of Kafka records (--kafka)\n");
        return 2;
    }
    if (from >= to) {
        fprintf(stderr, "cep backtest: --from must be before --to\n");
        return 2;
    }
    cep_ruleset_t *rs = compile_pack(rules), *base = NULL;
    if (!rs) return 1;
    if (baseline && !(base = compile_pack(baseline))) {
        cep_ruleset_free(rs);
        return 1;
    }
    /* --kafka: the topics named, else the pack's source topics */
    const char *first = NULL, *ktopics[64];
    size_t nk = 0;
    for (int i = 1; kafka && i < argc; i++)
        if (!strcmp(argv[i], "--topic") && i + 1 < argc && nk < 64) ktopics[nk++] = argv[++i];
    for (uint32_t i = 0; i < rs->nstreams; i++) {
        const cep_stream_t *st = rs->streams[i];
        if (!st->is_source || !st->topic) continue;
        if (!first) first = st->topic;
        bool have = false;
        for (size_t k = 0; k < nk; k++) have |= !strcmp(ktopics[k], st->topic);
        if (kafka && !ntopics && !have && nk < 64) ktopics[nk++] = st->topic;
    }
    replay_t rp = {.bt = cep_backtest_new(rs), .rs = rs, .bar = !quiet && isatty(2)};
    cep_buf_init(&rp.line);
    int rc = 0;
    cep_error_t err;
    cep_error_clear(&err);
    if (!rp.bt || !first) {
        fprintf(stderr, "cep backtest: %s\n", !first ? "the pack declares no source stream" : "out of memory");
        rc = 1;
    }
    if (!rc && labels && cep_backtest_labels(rp.bt, labels, &err)) {
        fprintf(stderr, "cep backtest: %s\n", err.msg);
        rc = 1;
    }
    if (!rc && alerts && !(rp.alerts = fopen(alerts, "w"))) {
        fprintf(stderr, "cep backtest: cannot write %s\n", alerts);
        rc = 1;
    }
    if (!rc && dlq && !(rp.dl = fopen(dlq, "w"))) {
        fprintf(stderr, "cep backtest: cannot write %s\n", dlq);
        rc = 1;
    }
    if (!rc && threads > 1) {
        if (!start_workers(&rp, threads)) rc = 1;
    } else if (!rc && !(rp.rt = cep_runtime_new(rs, on_output, &rp)))
        rc = 1;
    if (!rc && base) {
        cep_backtest_set_baseline(rp.bt, base, baseline);
        if (!(rp.base_rt = cep_runtime_new(base, on_base_output, rp.bt))) rc = 1;
    }
    /* what the report names as the history */
    cep_buf_t source;
    cep_buf_init(&source);
    if (kafka) {
        cep_buf_printf(&source, "kafka %s:", kafka);
        for (size_t k = 0; k < nk; k++) cep_buf_printf(&source, "%s%s", k ? "," : " ", ktopics[k]);
        if (from != INT64_MIN || to != INT64_MAX) {
            cep_buf_puts(&source, " [");
            if (from != INT64_MIN) cep_buf_put_i64(&source, from);
            cep_buf_puts(&source, ", ");
            if (to != INT64_MAX) cep_buf_put_i64(&source, to);
            cep_buf_puts(&source, ")");
        }
    } else {
        for (int k = 0; k < ninputs; k++) cep_buf_printf(&source, "%s%s", k ? ", " : "", inputs[k]);
    }
    if (rp.bt) cep_backtest_describe(rp.bt, rules, cep_buf_cstr(&source));
    rp.t0 = rp.next_bar = cep_now_ns();
    if (!rc && !kafka) rc = replay_files(&rp, inputs, topics, ninputs, first);
    if (!rc && kafka) {
        cep_kafka_range_t range = {.bootstrap = kafka, .topics = ktopics, .ntopics = nk, .props = props,
                                   .nprops = nprops, .from = from, .to = to};
        if (cep_kafka_read_range(&range, on_kafka_record, &rp, &rp.total, &err)) {
            if (rp.bar) fprintf(stderr, "\n");
            fprintf(stderr, "cep backtest: %s\n", err.msg);
            rc = 1;
        }
    }
    if (rp.workers) {
        stop_workers(&rp, !rc); /* the last batches, with the end of history */
    } else if (rp.rt) {
        cep_backtest_record(rp.bt, NULL);
        cep_runtime_finish(rp.rt); /* the end of history: pattern time-outs fire */
    }
    if (rp.base_rt) cep_runtime_finish(rp.base_rt);
    double secs = (double)(cep_now_ns() - rp.t0) / 1e9;
    if (rp.bar) fprintf(stderr, "\r%*s\r", 110, "");
    if (!rc) {
        fprintf(stderr, "cep backtest: %llu events, %llu alerts, %llu dead letters in %.2f s (%.0f events/s)\n",
                (unsigned long long)rp.events, (unsigned long long)rp.nalerts, (unsigned long long)rp.bad, secs,
                secs > 0 ? (double)rp.events / secs : 0.0);
        cep_buf_t rep;
        cep_buf_init(&rep);
        cep_backtest_report(rp.bt, secs, &rep);
        FILE *jf = json ? fopen(json, "w") : NULL;
        if (json && !jf) {
            fprintf(stderr, "cep backtest: cannot write %s\n", json);
            rc = 1;
        } else if (jf) {
            fputs(cep_buf_cstr(&rep), jf);
            fputc('\n', jf);
            fclose(jf);
        }
        if (html) {
            cep_buf_t page;
            cep_buf_init(&page);
            FILE *hf = NULL;
            if (cep_backtest_html(cep_buf_cstr(&rep), &page, &err) || !(hf = fopen(html, "w"))) {
                fprintf(stderr, "cep backtest: cannot write %s%s%s\n", html, hf ? ": " : "", hf ? err.msg : "");
                rc = 1;
            } else {
                fwrite(page.data, 1, page.len, hf);
                fclose(hf);
            }
            cep_buf_free(&page);
        }
        cep_buf_free(&rep);
    }
    if (rp.alerts) fclose(rp.alerts);
    if (rp.dl) fclose(rp.dl);
    cep_buf_free(&rp.line);
    cep_buf_free(&source);
    if (!rc) {
        left_to_exit.rt = rp.rt, left_to_exit.base_rt = rp.base_rt, left_to_exit.bt = rp.bt;
        left_to_exit.rs = rs, left_to_exit.base = base, left_to_exit.workers = rp.workers;
        left_to_exit.batches[0] = rp.batches[0], left_to_exit.batches[1] = rp.batches[1];
        return rc;
    }
    free_workers(&rp);
    cep_runtime_free(rp.rt);
    cep_runtime_free(rp.base_rt);
    cep_backtest_free(rp.bt);
    cep_ruleset_free(rs);
    cep_ruleset_free(base);
    return rc;
}
