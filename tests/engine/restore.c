/*
 * Checkpoint and restore of every operator kind: a run that is stopped,
 * checkpointed and restored into a fresh runtime at any point gives exactly
 * the output of a run that never stopped — the same alert lines in the same
 * order. Windows of each type (EMIT CHANGES and FINAL), sessions, plain
 * GROUP BY, table sources with retractions, MATCH_RECOGNIZE runs mid-match,
 * absence timers and sliding OVER windows; full snapshots and incremental
 * checkpoints (dirty entries and deletions) both.
 */
#include "bench/gen.h"
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a checkpoint held in memory: id -> bytes, as Redis would hold it ---- */

typedef struct blob {
    size_t n;
    char b[];
} blob_t;

static void blob_free(void *ctx, cep_entry_t *e)
{
    (void)ctx;
    free(e->data);
    e->data = NULL;
}

typedef struct saved {
    cep_store_t *store; /* used as a byte map */
    cep_table_t *entries, *meta;
} saved_t;

static void saved_init(saved_t *s)
{
    s->store = cep_store_mem_new();
    s->entries = cep_store_table(s->store, 1, "entries", blob_free, NULL);
    s->meta = cep_store_table(s->store, 2, "meta", blob_free, NULL);
}

static void saved_clear(saved_t *s)
{
    cep_store_free(s->store);
    saved_init(s);
}

static void map_put(cep_table_t *t, const void *id, size_t idlen, const void *val, size_t vlen)
{
    cep_entry_t *e = cep_table_upsert(t, id, idlen, cep_hash_bytes(id, idlen, 0), NULL);
    cr_assert_not_null(e);
    free(e->data);
    blob_t *b = malloc(sizeof *b + vlen + 1);
    b->n = vlen;
    memcpy(b->b, val, vlen);
    e->data = b;
}

static void on_put(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    map_put(((saved_t *)ctx)->entries, id, idlen, val, vlen);
}

static void on_meta(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    map_put(((saved_t *)ctx)->meta, id, idlen, val, vlen);
}

static void on_del(void *ctx, const void *id, size_t idlen)
{
    saved_t *s = ctx;
    cep_entry_t *e = cep_table_get(s->entries, id, idlen, cep_hash_bytes(id, idlen, 0));
    cr_assert_not_null(e, "a deletion of a key no checkpoint holds");
    cep_table_remove(s->entries, e);
}

typedef struct restore_ctx {
    cep_runtime_t *rt;
    bool meta;
    size_t n;
} restore_ctx_t;

static void restore_one(void *ctx, cep_entry_t *e)
{
    restore_ctx_t *r = ctx;
    blob_t *b = e->data;
    size_t unknown = 0;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_restore(r->rt, 0, r->meta, e->key, e->klen, b->b, b->n, &unknown, &err), CEP_OK, "%s",
                 err.msg);
    cr_assert_eq(unknown, 0);
    r->n++;
}

/* ---- runs ------------------------------------------------------------------ */

typedef struct run {
    cep_ruleset_t *rs;
    cep_runtime_t *rt;
    cep_buf_t out; /* alert lines */
    size_t lines;
} run_t;

static void on_alert(void *ctx, const cep_output_t *o)
{
    run_t *r = ctx;
    cep_output_alert_line(o, &r->out);
    cep_buf_putc(&r->out, '\n');
    r->lines++;
}

static void push_line(run_t *r, const char *line, size_t n)
{
    cep_record_t rec = {.topic = NULL, .value = line, .vlen = n, .partition = -1};
    for (uint32_t i = 0; i < r->rs->nstreams; i++)
        if (r->rs->streams[i]->is_source) {
            rec.topic = r->rs->streams[i]->topic;
            /* table rows (they start with their id) go to the table's topic only */
            if (!strncmp(line, "{\"id\"", 5) != !strcmp(rec.topic, "tab")) continue;
            cep_runtime_push(r->rt, &rec, NULL);
        }
}

/* Events: one JSON object per line. Returns the line starts. */
static size_t split(char *text, char ***lines)
{
    size_t n = 0, cap = 1024;
    *lines = malloc(cap * sizeof **lines);
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (n == cap) *lines = realloc(*lines, (cap *= 2) * sizeof **lines);
        (*lines)[n++] = p;
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    return n;
}

/* Run the events, restarting from a checkpoint before each index in
 * restarts (ascending). incremental: checkpoint changes every `every`
 * events (and at each restart) into one accumulated map; else a full
 * snapshot at each restart. */
static void run_with_restarts(const cep_ruleset_t *rs, char **lines, size_t n, const size_t *restarts,
                              size_t nrestarts, bool incremental, size_t every, run_t *r)
{
    r->rs = (cep_ruleset_t *)rs;
    r->rt = cep_runtime_new(rs, on_alert, r);
    cr_assert_not_null(r->rt);
    cep_runtime_track(r->rt, incremental);
    saved_t s;
    saved_init(&s);
    cep_ckpt_sink_t sink = {.put = on_put, .del = on_del, .meta = on_meta, .ctx = &s};
    size_t next = 0;
    for (size_t i = 0; i <= n; i++) {
        bool restart = next < nrestarts && restarts[next] == i;
        if (incremental && (restart || (every && i % every == 0))) {
            cep_error_t err;
            cep_error_clear(&err);
            cr_assert_eq(cep_runtime_checkpoint(r->rt, 0, false, &sink, NULL, &err), CEP_OK);
            cep_runtime_checkpoint_done(r->rt, 0);
        }
        if (restart) {
            if (!incremental) {
                saved_clear(&s);
                cr_assert_eq(cep_runtime_checkpoint(r->rt, 0, true, &sink, NULL, NULL), CEP_OK);
            }
            size_t before = cep_runtime_task_entries(r->rt, 0);
            cep_runtime_free(r->rt);
            r->rt = cep_runtime_new(rs, on_alert, r);
            cep_runtime_track(r->rt, incremental);
            restore_ctx_t rc = {r->rt, false, 0};
            cep_table_foreach(s.entries, restore_one, &rc);
            rc.meta = true;
            cep_table_foreach(s.meta, restore_one, &rc);
            cr_assert_eq(cep_runtime_task_entries(r->rt, 0), before, "at %zu: every entry restored", i);
            next++;
        }
        if (i < n) push_line(r, lines[i], strlen(lines[i]));
    }
    cep_runtime_finish(r->rt);
    cep_runtime_free(r->rt);
    cep_store_free(s.store);
}

static void expect_same(const char *what, run_t *a, run_t *b)
{
    cr_assert_eq(b->lines, a->lines, "%s: %zu alert lines, %zu uninterrupted", what, b->lines, a->lines);
    if (getenv("CEP_RESTORE_DUMP")) {
        FILE *f = fopen("/tmp/restore_a.txt", "w");
        fwrite(a->out.data, 1, a->out.len, f);
        fclose(f);
        f = fopen("/tmp/restore_b.txt", "w");
        fwrite(b->out.data, 1, b->out.len, f);
        fclose(f);
    }
    cr_assert_eq(b->out.len, a->out.len, "%s: same lines", what);
    cr_assert_eq(memcmp(a->out.data, b->out.data, a->out.len), 0, "%s: same lines in the same order", what);
}

/* ---- the demo pack on generated traffic ---------------------------------- */

static void keep_event(void *ctx, const char *key, size_t klen, const char *json, size_t n)
{
    cep_buf_t *b = ctx;
    cep_buf_put(b, json, n);
    cep_buf_putc(b, '\n');
}

Test(restore, demo_pack_restarted_anywhere_equals_one_run, .timeout = 120)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile_path("rules/demo", NULL, &rs, &err), CEP_OK, "%s", err.msg);
    cep_buf_t ev;
    cep_buf_init(&ev);
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 20000;
    o.seed = 11;
    o.fraud_rate = 0.2;
    o.disorder_ms = 30000; /* late and out-of-order rows: buffered, dropped, grace */
    cep_gen_sink_t sink = {keep_event, NULL, &ev};
    cr_assert_eq(cep_gen_run(&o, &sink, NULL, NULL), CEP_OK);
    char **lines;
    size_t n = split((char *)cep_buf_cstr(&ev), &lines);
    cr_assert_eq(n, 20000);

    run_t once = {0};
    cep_buf_init(&once.out);
    run_with_restarts(rs, lines, n, NULL, 0, false, 0, &once);
    cr_assert_gt(once.lines, 100, "the pack fires on this traffic (%zu lines)", once.lines);

    /* ten restarts at seeded random points */
    size_t cuts[10];
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 10; i++) {
        x = cep_hash_mix(x + (uint64_t)i);
        cuts[i] = 1 + (size_t)(x % (n - 1));
    }
    for (int i = 1; i < 10; i++)
        for (int j = i; j > 0 && cuts[j] < cuts[j - 1]; j--) {
            size_t t = cuts[j];
            cuts[j] = cuts[j - 1];
            cuts[j - 1] = t;
        }
    run_t full = {0}, incr = {0};
    cep_buf_init(&full.out);
    cep_buf_init(&incr.out);
    run_with_restarts(rs, lines, n, cuts, 10, false, 0, &full);
    expect_same("full snapshots", &once, &full);
    run_with_restarts(rs, lines, n, cuts, 10, true, 700, &incr);
    expect_same("incremental checkpoints", &once, &incr);
    cep_buf_free(&once.out);
    cep_buf_free(&full.out);
    cep_buf_free(&incr.out);
    free(lines);
    cep_buf_free(&ev);
    cep_ruleset_free(rs);
}

/* ---- every operator kind, restarted after every event --------------------- */

static const char *kinds_sql =
    "CREATE STREAM ev (k VARCHAR, g VARCHAR, v BIGINT, d DOUBLE, t BIGINT)\n"
    "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
    "CREATE TABLE tab (id VARCHAR PRIMARY KEY, k VARCHAR, v BIGINT, t BIGINT)\n"
    "  WITH (KAFKA_TOPIC='tab', VALUE_FORMAT='JSON', TIMESTAMP='t');\n"
    "CREATE TABLE tumbling_changes AS SELECT k, COUNT(*) AS n, SUM(v) AS s, AVG(d) AS a FROM ev\n"
    "  WINDOW TUMBLING (SIZE 10 SECONDS) GROUP BY k HAVING COUNT(*) >= 2 EMIT CHANGES;\n"
    "CREATE TABLE tumbling_final AS SELECT k, MIN(v) AS lo, MAX(v) AS hi, COUNT_DISTINCT(g) AS gs FROM ev\n"
    "  WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 2 SECONDS) GROUP BY k EMIT FINAL;\n"
    "CREATE TABLE hopping AS SELECT g, LATEST_BY_OFFSET(v) AS last_v, EARLIEST_BY_OFFSET(k) AS first_k,\n"
    "  COLLECT_SET(k) AS ks, COLLECT_LIST(v) AS vs FROM ev\n"
    "  WINDOW HOPPING (SIZE 20 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY g EMIT CHANGES;\n"
    "CREATE TABLE sessions AS SELECT k, COUNT(*) AS n, TOPK(v, 2) AS top FROM ev\n"
    "  WINDOW SESSION (4 SECONDS) GROUP BY k EMIT CHANGES;\n"
    "CREATE TABLE sessions_final AS SELECT g, COUNT(*) AS n FROM ev\n"
    "  WINDOW SESSION (3 SECONDS, GRACE PERIOD 1 SECOND) GROUP BY g EMIT FINAL;\n"
    "CREATE TABLE totals AS SELECT g, COUNT(*) AS n, SUM(d) AS s FROM ev GROUP BY g;\n"
    "CREATE TABLE tab_totals AS SELECT k, COUNT(*) AS n, SUM(v) AS s FROM tab GROUP BY k;\n"
    "CREATE STREAM rises AS SELECT * FROM ev MATCH_RECOGNIZE (\n"
    "  PARTITION BY k ORDER BY t\n"
    "  MEASURES FIRST(A.v) AS v0, LAST(B.v) AS v1, COUNT(B.v) AS nb, MATCH_NUMBER() AS m\n"
    "  ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW\n"
    "  PATTERN (A B{2,} C) WITHIN INTERVAL '30' SECOND\n"
    "  DEFINE B AS B.v > PREV(B.v), C AS C.v < PREV(C.v));\n"
    "CREATE STREAM silent AS SELECT * FROM ev MATCH_RECOGNIZE (\n"
    "  PARTITION BY k ORDER BY t\n"
    "  MEASURES A.v AS v, A.t AS at\n"
    "  PATTERN (A) NOT FOLLOWED BY Z WITHIN INTERVAL '5' SECOND\n"
    "  DEFINE A AS A.g = 'open', Z AS Z.g = 'close');\n"
    "CREATE STREAM velocity AS SELECT k, n, dv FROM (\n"
    "  SELECT k, COUNT(*) OVER (PARTITION BY k ORDER BY t RANGE BETWEEN INTERVAL '6' SECOND PRECEDING AND CURRENT ROW) AS n,\n"
    "         COUNT_DISTINCT(g) OVER (PARTITION BY k ORDER BY t RANGE BETWEEN INTERVAL '6' SECOND PRECEDING AND CURRENT ROW) AS dv,\n"
    "         MAX(v) OVER (PARTITION BY k ORDER BY t RANGE BETWEEN INTERVAL '6' SECOND PRECEDING AND CURRENT ROW) AS hi\n"
    "  FROM ev) WHERE n >= 3;\n";

/* 400 events over 4 keys and 4 groups, with some disorder; a table row per
 * 10 events updates one of 5 ids (retracting its old row). */
static size_t kinds_events(cep_buf_t *b, char ***lines)
{
    static const char *gs[] = {"open", "close", "x", "y"};
    uint64_t r = 42;
    int64_t t = 1000;
    for (int i = 0; i < 400; i++) {
        r = cep_hash_mix(r + 1);
        t += (int64_t)(r % 1500);
        int64_t ts = t - ((r >> 20) % 4 == 0 ? (int64_t)((r >> 24) % 3000) : 0);
        if (i % 10 == 9)
            cep_buf_printf(b, "{\"id\":\"id%d\",\"k\":\"k%d\",\"v\":%d,\"t\":%lld}\n", (int)(r >> 8) % 5,
                           (int)(r >> 12) % 4, (int)(r >> 16) % 100, (long long)ts);
        else
            cep_buf_printf(b, "{\"k\":\"k%d\",\"g\":\"%s\",\"v\":%d,\"d\":%d.5,\"t\":%lld}\n", (int)(r >> 8) % 4,
                           gs[(r >> 12) % 4], (int)(r >> 16) % 100, (int)(r >> 28) % 10, (long long)ts);
    }
    return split((char *)cep_buf_cstr(b), lines);
}

Test(restore, every_operator_kind_restarted_after_every_event, .timeout = 120)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("kinds.sql", kinds_sql, strlen(kinds_sql), NULL, &rs, &err), CEP_OK, "%s",
                 err.msg);
    cep_buf_t ev;
    cep_buf_init(&ev);
    char **lines;
    size_t n = kinds_events(&ev, &lines);
    cr_assert_eq(n, 400);
    run_t once = {0};
    cep_buf_init(&once.out);
    run_with_restarts(rs, lines, n, NULL, 0, false, 0, &once);
    /* every rule fires, so every operator's restored state is exercised */
    static const char *rules[] = {"TUMBLING_CHANGES", "TUMBLING_FINAL", "HOPPING", "SESSIONS", "SESSIONS_FINAL",
                                  "TOTALS", "TAB_TOTALS", "RISES", "SILENT", "VELOCITY"};
    for (size_t i = 0; i < CEP_ARRAY_LEN(rules); i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"rule\":\"%s\"", rules[i]);
        cr_assert_not_null(strstr(cep_buf_cstr(&once.out), needle), "rule %s fires", rules[i]);
    }
    size_t *all = malloc(n * sizeof *all);
    for (size_t i = 0; i < n; i++) all[i] = i + 1;
    run_t full = {0}, incr = {0};
    cep_buf_init(&full.out);
    cep_buf_init(&incr.out);
    run_with_restarts(rs, lines, n, all, n, false, 0, &full);
    expect_same("full snapshot after every event", &once, &full);
    run_with_restarts(rs, lines, n, all, n, true, 0, &incr);
    expect_same("incremental checkpoint after every event", &once, &incr);
    free(all);
    cep_buf_free(&once.out);
    cep_buf_free(&full.out);
    cep_buf_free(&incr.out);
    free(lines);
    cep_buf_free(&ev);
    cep_ruleset_free(rs);
}
