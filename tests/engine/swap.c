/*
 * A new rule set swapped into a running runtime (the core of hot reload):
 * a rule whose state still fits (unchanged, or only its HAVING changed)
 * goes on from its state as if it had run the new version all along; a
 * removed rule stops and its state is freed; a new rule starts empty.
 */
#include "engine/output.h"
#include "engine/runtime.h"
#include "../support/compile_support.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define STREAM                                                                                                \
    "CREATE STREAM ev (acct VARCHAR, kind VARCHAR, v BIGINT, t BIGINT)\n"                                      \
    "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t', KEY='acct');\n"
#define SEQ(with)                                                                                             \
    "CREATE STREAM seq " with " AS SELECT * FROM ev MATCH_RECOGNIZE (PARTITION BY acct ORDER BY t\n"           \
    "  MEASURES FIRST(A.t) AS t0, LAST(B.t) AS t1 ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW\n"            \
    "  PATTERN (A B+ C) DEFINE A AS kind = 'a', B AS kind = 'b', C AS kind = 'c');\n"

static const char *v1 = STREAM
    "CREATE TABLE busy AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 1 MINUTE)\n"
    "  GROUP BY acct HAVING COUNT(*) >= 4;\n" SEQ("")
    "CREATE TABLE spend AS SELECT acct, SUM(v) AS s FROM ev WHERE kind = 'b' GROUP BY acct;\n";
/* busy: a lower threshold (its state fits); seq: a new severity (its runs go
 * on); spend: gone; big: new */
static const char *v2 = STREAM
    "CREATE TABLE busy AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 1 MINUTE)\n"
    "  GROUP BY acct HAVING COUNT(*) >= 2;\n" SEQ("WITH (SEVERITY='high')")
    "CREATE TABLE big AS SELECT acct, MAX(v) AS m FROM ev WHERE kind = 'c' GROUP BY acct;\n";

#define NRULES 7
typedef struct lines {
    cep_buf_t per[NRULES]; /* alert lines after `from`, per rule_slot */
    int n, from;      /* records pushed; lines are kept once n >= from */
} lines_t;

static int rule_slot(const char *name)
{
    static const char *names[NRULES] = {"BUSY", "SEQ", "SPEND", "BIG", "LOW", "HIGH", "NEWLOW"};
    for (int i = 0; i < NRULES; i++)
        if (!strcmp(names[i], name)) return i;
    return -1;
}

static void on_out(void *ctx, const cep_output_t *o)
{
    lines_t *l = ctx;
    int r = rule_slot(o->query->name);
    cr_assert_geq(r, 0);
    if (l->n < l->from) return;
    cep_buf_t line;
    cep_buf_init(&line);
    cep_output_key_json(o, &line);
    cep_buf_putc(&line, '=');
    cep_output_value_json(o, &line);
    cep_buf_printf(&line, "@%lld\n", (long long)o->timestamp);
    cep_buf_put(&l->per[r], line.data, line.len);
    cep_buf_free(&line);
}

static void push(cep_runtime_t *rt, lines_t *l, int i)
{
    static const char *kinds[] = {"a", "b", "b", "c", "x"};
    char json[160];
    /* per (account, partition), kinds run a b b c x a b b c x ... */
    int n = snprintf(json, sizeof json, "{\"acct\":\"u%d\",\"kind\":\"%s\",\"v\":%d,\"t\":%d}", (i / 2) % 3,
                     kinds[(i / 6) % 5], (i * 37) % 100, 1000 + i * 7000);
    cep_record_t r = {.topic = "ev", .value = json, .vlen = (size_t)n, .partition = i % 2};
    cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
    l->n++;
}

/* Compile a pack as the next version of prev (NULL: a first start). */
static cep_ruleset_t *compile_after(const char *sql, const cep_ruleset_t *prev)
{
    return cep_test_compile("p.sql", sql, prev);
}

static cep_ruleset_t *compile(const char *sql)
{
    return compile_after(sql, NULL);
}

static void lines_init(lines_t *l, int from)
{
    for (int i = 0; i < NRULES; i++) cep_buf_init(&l->per[i]);
    l->n = 0;
    l->from = from;
}

static void lines_free(lines_t *l)
{
    for (int i = 0; i < NRULES; i++) cep_buf_free(&l->per[i]);
}

static const char *text(lines_t *l, int r)
{
    return cep_buf_cstr(&l->per[r]);
}

Test(swap, state_that_fits_moves_over_the_rest_starts_or_stops)
{
    enum { N = 300, CUT = 160 }; /* at the cut every account is inside a b b c: seq is mid-match */
    cep_ruleset_t *rs1 = compile(v1), *rs2 = compile(v2);
    /* the run under test: v1 for [0, CUT), then v2 */
    lines_t got;
    lines_init(&got, CUT);
    cep_runtime_t *rt = cep_runtime_new(rs1, on_out, &got);
    for (int i = 0; i < CUT; i++) push(rt, &got, i);
    cep_swap_stats_t st;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_swap(rt, rs2, &st, &err), CEP_OK, "%s", err.msg);
    cep_ruleset_free(rs1); /* nothing of v1 is used any more */
    cr_assert_eq(st.tasks, 2, "two partitions");
    cr_assert_gt(st.kept, 0);
    cr_assert_eq(st.dropped, 6, "spend's three accounts in each of the two tasks (%llu)", (unsigned long long)st.dropped);
    for (int i = CUT; i < N; i++) push(rt, &got, i);
    cep_runtime_finish(rt);
    cep_runtime_free(rt);

    /* busy and seq as if v2 had run from the start; big as if it started at the cut */
    lines_t all, late;
    lines_init(&all, CUT);
    lines_init(&late, 0);
    cep_runtime_t *a = cep_runtime_new(rs2, on_out, &all), *b = cep_runtime_new(rs2, on_out, &late);
    for (int i = 0; i < N; i++) push(a, &all, i);
    for (int i = CUT; i < N; i++) push(b, &late, i);
    cep_runtime_finish(a);
    cep_runtime_finish(b);
    cr_assert_gt(strlen(text(&all, 0)), 0, "busy fires after the cut");
    cr_assert_gt(strlen(text(&all, 1)), 0, "seq fires after the cut");
    cr_assert_gt(strlen(text(&late, 3)), 0, "big fires");
    cr_assert_str_eq(text(&got, 0), text(&all, 0), "busy goes on from its state with the new threshold");
    cr_assert_str_eq(text(&got, 1), text(&all, 1), "seq goes on mid-match under its new severity");
    cr_assert_str_eq(text(&got, 2), "", "spend is gone");
    cr_assert_str_eq(text(&got, 3), text(&late, 3), "big starts empty at the cut");
    cep_runtime_free(a);
    cep_runtime_free(b);
    lines_free(&got);
    lines_free(&all);
    lines_free(&late);
    cep_ruleset_free(rs2);
}

/* ---- rules that share one aggregation ------------------------------------------ */

#define TIERS(low, extra)                                                                                     \
    STREAM "CREATE TABLE low AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 5 MINUTES)\n"         \
           "  GROUP BY acct HAVING COUNT(*) >= " low ";\n" extra
static const char *t1 = TIERS("3", "CREATE TABLE high AS SELECT acct, COUNT(*) AS n, SUM(v) AS s FROM ev\n"
                                   "  WINDOW TUMBLING (SIZE 5 MINUTES) GROUP BY acct HAVING SUM(v) >= 150;\n");
/* high leaves (the share's SUM goes with it); low gets a new threshold;
 * newlow joins with an aggregate low already has */
static const char *t2 = TIERS("2", "CREATE TABLE newlow AS SELECT acct, COUNT(*) AS n FROM ev\n"
                                   "  WINDOW TUMBLING (SIZE 5 MINUTES) GROUP BY acct HAVING COUNT(*) >= 5;\n");

typedef struct change_log {
    char text[512];
} change_log_t;

static void on_change(void *ctx, const char *rule, cep_rule_change_t c, const char *version)
{
    change_log_t *l = ctx;
    (void)version;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s: %s\n", rule, cep_rule_change_name(c));
}

/* An in-memory copy of what a checkpoint store holds: id -> value. */
typedef struct kv {
    cep_buf_t ids[4096], vals[4096];
    bool meta[4096];
    int n;
    int puts, dels, meta_dels;
} kv_t;

static int kv_find(kv_t *k, const void *id, size_t n, bool meta)
{
    for (int i = 0; i < k->n; i++)
        if (k->meta[i] == meta && k->ids[i].len == n && !memcmp(k->ids[i].data, id, n)) return i;
    return -1;
}

static void kv_set(kv_t *k, const void *id, size_t idlen, const void *val, size_t vlen, bool meta)
{
    int i = kv_find(k, id, idlen, meta);
    if (i < 0) {
        cr_assert_lt(k->n, 4096);
        i = k->n++;
        cep_buf_init(&k->ids[i]);
        cep_buf_init(&k->vals[i]);
        cep_buf_put(&k->ids[i], id, idlen);
        k->meta[i] = meta;
    }
    cep_buf_reset(&k->vals[i]);
    cep_buf_put(&k->vals[i], val, vlen);
}

static void kv_remove(kv_t *k, const void *id, size_t idlen, bool meta)
{
    int i = kv_find(k, id, idlen, meta);
    if (i < 0) return;
    cep_buf_free(&k->ids[i]);
    cep_buf_free(&k->vals[i]);
    k->n--;
    k->ids[i] = k->ids[k->n], k->vals[i] = k->vals[k->n], k->meta[i] = k->meta[k->n];
}

static void kv_put(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    ((kv_t *)ctx)->puts++;
    kv_set(ctx, id, idlen, val, vlen, false);
}
static void kv_meta(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    kv_set(ctx, id, idlen, val, vlen, true);
}
static void kv_del(void *ctx, const void *id, size_t idlen)
{
    ((kv_t *)ctx)->dels++;
    kv_remove(ctx, id, idlen, false);
}
static void kv_meta_del(void *ctx, const void *id, size_t idlen)
{
    ((kv_t *)ctx)->meta_dels++;
    kv_remove(ctx, id, idlen, true);
}

/* one store per task (Redis keeps one hash per task) */
static void kv_save(kv_t *k, cep_runtime_t *rt)
{
    cep_error_t err;
    cep_error_clear(&err);
    for (int32_t p = 0; p < 2; p++) {
        cep_ckpt_sink_t sink = {.put = kv_put, .del = kv_del, .meta = kv_meta, .meta_del = kv_meta_del, .ctx = &k[p]};
        cr_assert_eq(cep_runtime_checkpoint(rt, p, false, &sink, NULL, &err), CEP_OK, "%s", err.msg);
        cep_runtime_checkpoint_done(rt, p);
    }
}

Test(swap, rules_sharing_an_aggregation_keep_their_own_state)
{
    enum { N = 300, CUT = 150 };
    cep_ruleset_t *rs1 = compile(t1), *rs2 = compile_after(t2, rs1);
    change_log_t log = {{0}};
    cr_assert_eq(cep_ruleset_diff(rs1, rs2, on_change, &log), 3);
    cr_assert_str_eq(log.text, "LOW: changed, state kept\nNEWLOW: added\nHIGH: removed, state released\n");

    /* the run under test, checkpointed incrementally as it goes */
    kv_t *k = calloc(2, sizeof *k);
    lines_t got;
    lines_init(&got, CUT);
    cep_runtime_t *rt = cep_runtime_new(rs1, on_out, &got);
    cep_runtime_track(rt, true);
    for (int i = 0; i < CUT; i++) push(rt, &got, i);
    kv_save(k, rt);
    cep_swap_stats_t st;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_swap(rt, rs2, &st, &err), CEP_OK, "%s", err.msg);
    cr_assert_eq(st.dropped, 0, "low's state is converted, not dropped");
    cr_assert_gt(st.kept, 0);
    for (int i = CUT; i < N; i++) push(rt, &got, i);
    kv_save(k, rt);
    /* what the old layout left in the store is gone: one table per task
     * (plus task meta) — not the old entries beside the new */
    /* what the old layout left in the store is deleted, not kept beside
     * the new: low's converted table replaces the shared one */
    cr_assert_gt(k[0].dels + k[1].dels, 0, "the old layout's entries are deleted");
    cr_assert_eq(k[0].meta_dels + k[1].meta_dels, 2, "the old layout's scalars, in each task");
    /* and nothing else is left of it: below, every record restores into a
     * table of the restarted pack */

    /* a restart: the same pack planned with the saved lineage reads it all */
    cep_lineage_t l;
    cr_assert_eq(cep_ruleset_lineage(rs2, &l), CEP_OK);
    cep_buf_t lb;
    cep_buf_init(&lb);
    cep_lineage_encode(&l, &lb);
    cep_lineage_free(&l);
    cr_assert(cep_lineage_decode(lb.data, lb.len, &l));
    cep_compile_opts_t o;
    cep_compile_opts_init(&o);
    o.lineage = &l;
    cep_ruleset_t *rs3 = NULL;
    cr_assert_eq(cep_rules_compile("p.sql", t2, strlen(t2), &o, &rs3, &err), CEP_OK, "%s", err.msg);
    cep_lineage_free(&l);
    cep_buf_free(&lb);
    change_log_t same = {{0}};
    cr_assert_eq(cep_ruleset_diff(rs2, rs3, on_change, &same), 0, "%s", same.text);

    cep_runtime_t *r3 = NULL;
    lines_t restarted;
    lines_init(&restarted, 0);
    r3 = cep_runtime_new(rs3, on_out, &restarted);
    size_t unknown = 0;
    for (int32_t p = 0; p < 2; p++)
        for (int i = 0; i < k[p].n; i++)
            cr_assert_eq(cep_runtime_restore(r3, p, k[p].meta[i], k[p].ids[i].data, k[p].ids[i].len, k[p].vals[i].data,
                                             k[p].vals[i].len, &unknown, &err),
                         CEP_OK, "%s", err.msg);
    cr_assert_eq(unknown, 0, "every record belongs to a table of the restarted pack: none is stale");
    size_t low_at = strlen(text(&got, 4)), new_at = strlen(text(&got, 6));
    for (int i = N; i < N + 150; i++) {
        push(rt, &got, i);
        push(r3, &restarted, i);
    }
    cr_assert_gt(strlen(text(&restarted, 4)), 0);
    cr_assert_gt(strlen(text(&restarted, 6)), 0);
    cr_assert_str_eq(text(&restarted, 4), text(&got, 4) + low_at, "low after the restart");
    cr_assert_str_eq(text(&restarted, 6), text(&got, 6) + new_at, "newlow after the restart");
    cep_runtime_free(r3);
    lines_free(&restarted);
    cep_ruleset_free(rs3);
    cep_buf_t *gl = &got.per[4], *gn = &got.per[6];
    gl->len = low_at, gn->len = new_at; /* the reference below stops at N */

    cep_runtime_finish(rt);
    cep_runtime_free(rt);
    cep_ruleset_free(rs1);

    /* low as if v2 had run from the start, newlow as if it started at the cut */
    lines_t all, late;
    lines_init(&all, CUT);
    lines_init(&late, 0);
    cep_runtime_t *a = cep_runtime_new(rs2, on_out, &all);
    cep_ruleset_t *fresh = compile(t2);
    cep_runtime_t *b = cep_runtime_new(fresh, on_out, &late);
    for (int i = 0; i < N; i++) push(a, &all, i);
    for (int i = CUT; i < N; i++) push(b, &late, i);
    cep_runtime_finish(a);
    cep_runtime_finish(b);
    cr_assert_gt(strlen(text(&all, 4)), 0, "low fires after the cut");
    cr_assert_gt(strlen(text(&late, 6)), 0, "newlow fires");
    cr_assert_str_eq(text(&got, 4), text(&all, 4), "low goes on from its state, past high's leaving");
    cr_assert_str_eq(text(&got, 5), "", "high is gone");
    cr_assert_str_eq(text(&got, 6), text(&late, 6), "newlow starts empty at the cut, not with low's counts");
    cep_runtime_free(a);
    cep_runtime_free(b);
    cep_ruleset_free(fresh);
    cep_ruleset_free(rs2);
    lines_free(&got);
    lines_free(&all);
    lines_free(&late);
    for (int32_t p = 0; p < 2; p++)
        for (int i = 0; i < k[p].n; i++) cep_buf_free(&k[p].ids[i]), cep_buf_free(&k[p].vals[i]);
    free(k);
}

/* ---- a shadow rule promoted to live ------------------------------------------- */

#define BUSY(with)                                                                                            \
    STREAM "CREATE TABLE busy " with " AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 1 MINUTE)\n" \
           "  GROUP BY acct HAVING COUNT(*) >= 2;\n"

/* counts alert lines marked shadow and not */
static void on_marks(void *ctx, const cep_output_t *o)
{
    int *marks = ctx;
    cep_buf_t line;
    cep_buf_init(&line);
    cep_output_alert_line(o, &line);
    marks[strstr(cep_buf_cstr(&line), ",\"mode\":\"shadow\"") != NULL]++;
    cep_buf_free(&line);
}

Test(swap, a_shadow_rule_promoted_to_live_keeps_its_state)
{
    enum { N = 300, CUT = 150 };
    cep_ruleset_t *shadow = compile(BUSY("WITH (MODE='shadow')"));
    cep_ruleset_t *live = compile_after(BUSY("WITH (MODE='live')"), shadow);
    change_log_t log = {{0}};
    cr_assert_eq(cep_ruleset_diff(shadow, live, on_change, &log), 1);
    cr_assert_str_eq(log.text, "BUSY: changed, state kept\n", "only the mode changed: the state means the same (%s)", log.text);

    /* the promoted run's alerts after the cut equal the live rule's all along */
    lines_t got, all;
    lines_init(&got, CUT);
    lines_init(&all, CUT);
    cep_runtime_t *rt = cep_runtime_new(shadow, on_out, &got);
    for (int i = 0; i < CUT; i++) push(rt, &got, i);
    cep_swap_stats_t st;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_swap(rt, live, &st, &err), CEP_OK, "%s", err.msg);
    cr_assert_gt(st.kept, 0);
    cr_assert_eq(st.dropped, 0);
    for (int i = CUT; i < N; i++) push(rt, &got, i);
    cep_runtime_finish(rt);
    cep_runtime_free(rt);
    cep_runtime_t *a = cep_runtime_new(live, on_out, &all);
    for (int i = 0; i < N; i++) push(a, &all, i);
    cep_runtime_finish(a);
    cep_runtime_free(a);
    cr_assert_gt(strlen(text(&all, 0)), 0, "busy fires after the cut");
    cr_assert_str_eq(text(&got, 0), text(&all, 0));

    /* every alert line of the shadow version is marked, none of the live one's */
    int marks[2][2] = {{0}};
    for (int v = 0; v < 2; v++) {
        lines_t l;
        lines_init(&l, 0);
        cep_runtime_t *m = cep_runtime_new(v ? live : shadow, on_marks, marks[v]);
        for (int i = 0; i < N; i++) push(m, &l, i);
        cep_runtime_finish(m);
        cep_runtime_free(m);
        lines_free(&l);
    }
    cr_assert_gt(marks[0][1], 0);
    cr_assert_eq(marks[0][0], 0, "unmarked shadow alerts");
    cr_assert_eq(marks[1][1], 0, "marked live alerts");
    cr_assert_eq(marks[1][0], marks[0][1], "the same alerts either way");
    lines_free(&got);
    lines_free(&all);
    cep_ruleset_free(shadow);
    cep_ruleset_free(live);
}
