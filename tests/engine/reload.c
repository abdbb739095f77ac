/*
 * Hot reload end to end: `cep run` reads a continuous stream on stdin while
 * its pack (a folder, one file per rule) is edited 50 times: thresholds,
 * severities, windows and filters change, rules come and go, two files
 * change at once, the syntax breaks and is fixed. The test keeps its own
 * model of what each edit means (a threshold or a severity keeps a rule's
 * state; a window, a filter or a pattern starts it afresh) and checks, for
 * every rule, that its alerts are exactly those of a reference that runs
 * each version of the rule alone over the records it was live for,
 * starting from the record where its state began. So no record is skipped
 * or seen twice by a rule, and a broken edit changes nothing.
 */
#include "engine/output.h"
#include "engine/runtime.h"
#include "../support/compile_support.h"
#include "../support/kafka_support.h"
#include "../support/redis_server.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CEP_BINARY
#define CEP_BINARY "cep"
#endif

#define STREAM_SQL                                                                                            \
    "CREATE STREAM ev (acct VARCHAR, ip VARCHAR, kind VARCHAR, amt BIGINT, t BIGINT)\n"                        \
    "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t', KEY='acct');\n"

enum { T_COUNT, T_SUM, T_DISTINCT, T_SESSION, T_MATCH, T_OVER, T_FILTER };
enum { BATCH = 40, EDITS = 50, NBATCH = EDITS + 1, NEV = BATCH * NBATCH, NRULES = 12, MAXSEG = 64 };

static const char *kinds[] = {"bet", "win", "login", "deposit"};
static const char *sevs[] = {"low", "medium", "high"};

typedef struct segment {
    char *text;      /* the rule's statement in this version */
    int origin;      /* first record (0-based) of the state this version goes on from */
    int start, end;  /* the records it was live for: [start, end) */
} segment_t;

typedef struct rule {
    const char *name;
    int type, thr, win, sev, kind;
    bool present;
    int origin;
    segment_t seg[MAXSEG];
    int nseg;
} rule_t;

static rule_t R(const char *name, int type, int thr, int win, int sev, int kind, bool present)
{
    return (rule_t){.name = name, .type = type, .thr = thr, .win = win, .sev = sev, .kind = kind, .present = present};
}

static void rule_text(const rule_t *r, char *out, size_t n)
{
    const char *k = kinds[r->kind], *s = sevs[r->sev];
    switch (r->type) {
    case T_COUNT:
        snprintf(out, n,
                 "CREATE TABLE %s WITH (SEVERITY='%s') AS SELECT acct, COUNT(*) AS n FROM ev\n"
                 "  WINDOW TUMBLING (SIZE %d SECONDS) WHERE kind = '%s' GROUP BY acct HAVING COUNT(*) >= %d;\n",
                 r->name, s, r->win, k, r->thr);
        break;
    case T_SUM:
        snprintf(out, n,
                 "CREATE TABLE %s WITH (SEVERITY='%s') AS SELECT acct, COUNT(*) AS n, SUM(amt) AS s FROM ev\n"
                 "  WINDOW TUMBLING (SIZE %d SECONDS) WHERE kind = '%s' GROUP BY acct HAVING SUM(amt) >= %d;\n",
                 r->name, s, r->win, k, r->thr * 100);
        break;
    case T_DISTINCT:
        snprintf(out, n,
                 "CREATE TABLE %s WITH (SEVERITY='%s') AS SELECT ip, COUNT_DISTINCT(acct) AS accts FROM ev\n"
                 "  WINDOW HOPPING (SIZE %d SECONDS, ADVANCE BY 15 SECONDS) WHERE kind = '%s' GROUP BY ip\n"
                 "  HAVING COUNT_DISTINCT(acct) >= %d EMIT FINAL;\n",
                 r->name, s, r->win, k, 1 + r->thr % 3);
        break;
    case T_SESSION:
        snprintf(out, n,
                 "CREATE TABLE %s WITH (SEVERITY='%s') AS SELECT acct, COUNT(*) AS n FROM ev\n"
                 "  WINDOW SESSION (%d SECONDS) WHERE kind = '%s' GROUP BY acct HAVING COUNT(*) >= %d;\n",
                 r->name, s, r->win, k, r->thr);
        break;
    case T_MATCH: {
        static const char *bs[] = {"B+", "B B+", "B B B+"};
        snprintf(out, n,
                 "CREATE STREAM %s WITH (SEVERITY='%s') AS SELECT * FROM ev MATCH_RECOGNIZE (PARTITION BY acct\n"
                 "  ORDER BY t MEASURES FIRST(A.t) AS t0, LAST(C.t) AS t1 ONE ROW PER MATCH\n"
                 "  AFTER MATCH SKIP PAST LAST ROW PATTERN (A %s C)\n"
                 "  DEFINE A AS kind = '%s', B AS kind = 'bet', C AS kind = 'win');\n",
                 r->name, s, bs[r->thr % 3], k);
        break;
    }
    case T_OVER:
        snprintf(out, n,
                 "CREATE STREAM %s WITH (SEVERITY='%s') AS SELECT acct, n FROM (\n"
                 "  SELECT acct, COUNT(*) OVER (PARTITION BY acct ORDER BY t\n"
                 "    RANGE BETWEEN INTERVAL '%d' SECONDS PRECEDING AND CURRENT ROW) AS n\n"
                 "  FROM ev WHERE kind = '%s') v WHERE n >= %d PARTITION BY acct;\n",
                 r->name, s, r->win, k, r->thr);
        break;
    default:
        snprintf(out, n, "CREATE STREAM %s WITH (SEVERITY='%s') AS SELECT acct, amt FROM ev\n"
                         "  WHERE kind = '%s' AND amt >= %d;\n",
                 r->name, s, k, r->thr * 40);
    }
}

/* ---- the pack on disk ------------------------------------------------------------ */

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char tmp[128], path[128];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(tmp, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0); /* as editors save: whole, by rename */
}

static void file_name(const rule_t *r, int i, char *out, size_t n)
{
    snprintf(out, n, "%02d_%s.sql", 10 + i, r->name);
}

static void save_rule(rule_t *rules, int i, const char *extra)
{
    char text[1200], name[64];
    rule_text(&rules[i], text, sizeof text);
    if (extra) strcat(text, extra);
    file_name(&rules[i], i, name, sizeof name);
    write_file(name, text);
}

static void remove_rule(rule_t *rules, int i)
{
    char name[64], path[160];
    file_name(&rules[i], i, name, sizeof name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(unlink(path), 0);
}

/* ---- the model -------------------------------------------------------------------- */

/* Record i (0-based) is line i + 1 of cep's input. */
static void close_segment(rule_t *r, int end)
{
    if (r->nseg && r->seg[r->nseg - 1].end < 0) r->seg[r->nseg - 1].end = end;
}

static void open_segment(rule_t *r, int start)
{
    cr_assert_lt(r->nseg, MAXSEG);
    char text[1200];
    rule_text(r, text, sizeof text);
    r->seg[r->nseg++] = (segment_t){strdup(text), r->origin, start, -1};
}

/* ---- the events ------------------------------------------------------------------------ */

static char *events[NEV];

static void make_events(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int64_t t = 1700000000000LL;
    for (int i = 0; i < NEV; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        t += 500 + (int64_t)(x % 2000); /* strictly increasing: the test is about reloads, not disorder */
        char line[200];
        snprintf(line, sizeof line, "{\"acct\":\"u%d\",\"ip\":\"10.0.0.%d\",\"kind\":\"%s\",\"amt\":%d,\"t\":%lld}",
                 (int)(x >> 8 & 3), (int)(x >> 12 & 3), kinds[x >> 16 & 3], (int)(x >> 20 & 255),
                 (long long)t);
        events[i] = strdup(line);
    }
}

/* ---- the reference: the rule alone -------------------------------------------------- *
 *
 * One rule, its versions run in turn over the records each was live for.
 * Where the model says a version starts afresh, a new runtime starts at its
 * first record; where it says the state carries over, the version is
 * swapped into the same runtime, and every entry must move (what was
 * emitted under the old version is state too: a row that passed the old
 * HAVING and fails the new one is retracted, as a table's changelog must). */

typedef struct collect {
    cep_buf_t *out;
} collect_t;

static void on_ref(void *ctx, const cep_output_t *o)
{
    collect_t *c = ctx;
    cep_output_alert_line(o, c->out);
    cep_buf_putc(c->out, '\n');
}

static cep_ruleset_t *compile_one(const char *text, const cep_ruleset_t *prev)
{
    char sql[2000];
    snprintf(sql, sizeof sql, "%s%s", STREAM_SQL, text);
    return cep_test_compile("ref.sql", sql, prev);
}

static void reference(const rule_t *r, cep_buf_t *out)
{
    collect_t c = {out};
    cep_runtime_t *rt = NULL;
    cep_ruleset_t *rs = NULL, *old = NULL;
    for (int k = 0; k < r->nseg; k++) {
        const segment_t *s = &r->seg[k];
        bool carried = rt && s->origin < s->start && r->seg[k - 1].end == s->start;
        if (carried) {
            cep_ruleset_free(old);
            old = rs;
            rs = compile_one(s->text, old);
            cep_rule_change_t ch = CEP_RULE_RESET;
            for (uint32_t q = 0; q < rs->nqueries; q++)
                if (!rs->queries[q]->internal) ch = rs->queries[q]->origin == old->queries[q]->origin ? CEP_RULE_KEPT : ch;
            cr_assert_eq(ch, CEP_RULE_KEPT, "%s: the state of this change is kept:\n%s", r->name, s->text);
            cep_swap_stats_t st;
            cep_error_t err;
            cep_error_clear(&err);
            cr_assert_eq(cep_runtime_swap(rt, rs, &st, &err), CEP_OK, "%s", err.msg);
            cr_assert_eq(st.dropped, 0, "%s: every entry moves", r->name);
        } else {
            cr_assert_eq(s->origin, s->start, "%s: a segment that carries state follows its predecessor", r->name);
            cep_runtime_free(rt);
            cep_ruleset_free(old);
            cep_ruleset_free(rs);
            old = NULL;
            rs = compile_one(s->text, NULL);
            rt = cep_runtime_new(rs, on_ref, &c);
        }
        for (int i = s->start; i < s->end; i++) {
            cep_record_t rec = {.topic = "ev", .value = events[i], .vlen = strlen(events[i]), .offset = i + 1,
                                .source = "-", .line = (uint64_t)i + 1};
            cr_assert_eq(cep_runtime_push(rt, &rec, NULL), CEP_OK);
        }
        if (s->end == NEV) cep_runtime_finish(rt); /* the end of stdin is the end of input */
    }
    cep_runtime_free(rt);
    cep_ruleset_free(old);
    cep_ruleset_free(rs);
}

/* ---- cep run, fed through a pipe --------------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int in, err; /* its stdin, its stderr */
    char buf[1 << 16];
    size_t len;
    cep_buf_t log;
} child_t;

static void start(child_t *c, const char *outfile)
{
    int in[2], er[2];
    cr_assert_eq(pipe(in), 0);
    cr_assert_eq(pipe(er), 0);
    c->pid = fork();
    cr_assert_geq(c->pid, 0);
    if (!c->pid) {
        dup2(in[0], 0);
        dup2(er[1], 2);
        close(in[1]);
        close(er[0]);
        execl(CEP_BINARY, "cep", "run", "--rules", dir, "--output", outfile, "--reload-debounce-ms", "150",
              "--summary", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(er[1]);
    c->in = in[1];
    c->err = er[0];
    c->len = 0;
    cep_buf_init(&c->log);
}

static void feed(child_t *c, int from, int to)
{
    for (int i = from; i < to; i++) {
        size_t n = strlen(events[i]);
        cr_assert_eq(write(c->in, events[i], n), (ssize_t)n);
        cr_assert_eq(write(c->in, "\n", 1), 1);
    }
}

/* The next stderr line containing one of the needles (which one in *which),
 * waiting at most 20 s. */
static void wait_line(child_t *c, const char *a, const char *b, int *which, char *line, size_t n)
{
    for (int waited = 0; waited < 20000;) {
        char *nl;
        while ((nl = memchr(c->buf, '\n', c->len))) {
            size_t l = (size_t)(nl - c->buf);
            snprintf(line, n, "%.*s", (int)l, c->buf);
            cep_buf_put(&c->log, c->buf, l + 1);
            memmove(c->buf, nl + 1, c->len - l - 1);
            c->len -= l + 1;
            if (strstr(line, a)) {
                *which = 0;
                return;
            }
            if (b && strstr(line, b)) {
                *which = 1;
                return;
            }
        }
        struct pollfd p = {.fd = c->err, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) {
            waited += 100;
            continue;
        }
        ssize_t k = read(c->err, c->buf + c->len, sizeof c->buf - c->len - 1);
        cr_assert_gt(k, 0, "cep run ended early:\n%s", cep_buf_cstr(&c->log));
        c->len += (size_t)k;
    }
    cr_assert_fail("no \"%s\" from cep run in 20 s; its log:\n%s", a, cep_buf_cstr(&c->log));
}

/* ---- the test ---------------------------------------------------------------------------- */

Test(reload, fifty_edits_on_a_live_stream, .timeout = 240)
{
    make_events();
    snprintf(dir, sizeof dir, "/tmp/cep-reload-XXXXXX");
    cr_assert(mkdtemp(dir));
    rule_t rules[NRULES] = {
        R("busy", T_COUNT, 4, 60, 0, 0, true),       R("big_spend", T_SUM, 5, 60, 1, 0, true),
        R("busy_tier2", T_COUNT, 6, 60, 2, 0, true),  R("shared_ip", T_DISTINCT, 2, 60, 1, 2, true),
        R("session_run", T_SESSION, 5, 20, 0, 1, true), R("chain", T_MATCH, 1, 0, 2, 3, true),
        R("velocity", T_OVER, 4, 30, 1, 0, true),     R("whale", T_FILTER, 5, 0, 0, 3, true),
        R("late_tier", T_SUM, 3, 60, 0, 0, false),    R("win_streak", T_COUNT, 3, 45, 1, 1, false),
        R("chain2", T_MATCH, 0, 0, 0, 2, false),      R("velocity2", T_OVER, 3, 20, 2, 3, false),
    };
    write_file("00_stream.sql", STREAM_SQL);
    for (int i = 0; i < NRULES; i++)
        if (rules[i].present) {
            save_rule(rules, i, NULL);
            open_segment(&rules[i], 0);
        }

    char outfile[128];
    snprintf(outfile, sizeof outfile, "%s.alerts", dir);
    child_t c;
    start(&c, outfile);
    int which;
    char line[1024];
    wait_line(&c, "watching", NULL, &which, line, sizeof line); /* edits from now on are seen */
    feed(&c, 0, BATCH);

    /* the edit schedule: every kind of edit, on rules picked by a seeded generator */
    static const char *const ops[] = {"thr", "add", "sev", "win", "remove", "break", "fix", "two",
                                      "kind", "thr", "add", "sev", "remove", "win", "thr", "break",
                                      "fix", "two", "kind", "add", "thr", "remove", "sev", "win", "thr"};
    uint64_t x = 12345;
    int versions = 0, failures = 0, broken = -1, breaks = 0;
    for (int e = 0; e < EDITS; e++) {
        const char *op = ops[e % CEP_ARRAY_LEN(ops)];
        int cut = (e + 1) * BATCH; /* the first record the new version sees */
        int changed[2] = {-1, -1};
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int pick = (int)(x >> 33);
        /* a rule present (or absent, for add), starting the search at pick */
        int r = -1;
        for (int k = 0; k < NRULES && r < 0; k++) {
            int i = (pick + k) % NRULES;
            if (rules[i].present == !!strcmp(op, "add")) r = i;
        }
        if (r < 0) { /* nothing left to add: change a threshold instead */
            op = "thr";
            for (int k = 0; k < NRULES && r < 0; k++)
                if (rules[(pick + k) % NRULES].present) r = (pick + k) % NRULES;
        }
        if (!strcmp(op, "fix")) {
            save_rule(rules, broken, NULL);
        } else if (!strcmp(op, "break")) {
            broken = r;
            breaks++;
            save_rule(rules, r, "CREATE TABLE oops AS SELECT FROM;\n");
        } else if (!strcmp(op, "add")) {
            rules[r].present = true;
            rules[r].origin = cut;
            save_rule(rules, r, NULL);
            changed[0] = r;
        } else if (!strcmp(op, "remove")) {
            rules[r].present = false;
            remove_rule(rules, r);
            close_segment(&rules[r], cut);
        }
        if (!strcmp(op, "thr") || !strcmp(op, "sev") || !strcmp(op, "win") || !strcmp(op, "kind") ||
            !strcmp(op, "two")) {
            int n = !strcmp(op, "two") ? 2 : 1;
            for (int k = 0; k < n; k++) {
                int i = r;
                if (k) /* a second present rule */
                    for (int j = 1; j < NRULES; j++)
                        if (rules[(r + j) % NRULES].present) {
                            i = (r + j) % NRULES;
                            break;
                        }
                rule_t *q = &rules[i];
                bool keeps = true;
                if (!strcmp(op, "sev")) q->sev = (q->sev + 1) % 3;
                else if (!strcmp(op, "kind")) q->kind = (q->kind + 1) % 4, keeps = false;
                else if (!strcmp(op, "win") && q->type != T_MATCH && q->type != T_FILTER)
                    q->win = q->win == 60 ? 40 : q->win + 20, keeps = false;
                else if (!strcmp(op, "win")) q->sev = (q->sev + 2) % 3;
                else /* thr, two: a pattern's quantifier is its meaning, a threshold is not */
                    q->thr = q->thr % 6 + 2, keeps = q->type != T_MATCH;
                if (!keeps) q->origin = cut;
                save_rule(rules, i, NULL);
                changed[k] = i;
            }
        }
        wait_line(&c, "compiled in", "does not compile", &which, line, sizeof line);
        if (which == 1) {
            failures++;
            cr_assert_str_eq(op, "break", "edit %d (%s) did not compile:\n%s", e, op, cep_buf_cstr(&c.log));
        } else {
            versions++;
            cr_assert_str_neq(op, "break", "edit %d: a broken pack compiled", e);
        }
        /* the model's new segments start at the cut */
        for (int k = 0; k < 2; k++)
            if (changed[k] >= 0) {
                close_segment(&rules[changed[k]], cut);
                open_segment(&rules[changed[k]], cut);
            }
        feed(&c, cut, cut + BATCH);
        if (which == 0) {
            char want[64];
            snprintf(want, sizeof want, "live from line %d:", cut + 1);
            wait_line(&c, "live from line", NULL, &which, line, sizeof line);
            cr_assert(strstr(line, want), "edit %d: %s, not %s", e, line, want);
        }
    }
    close(c.in);
    int status;
    cr_assert_eq(waitpid(c.pid, &status, 0), c.pid);
    char rest[1 << 14];
    ssize_t k;
    while ((k = read(c.err, rest, sizeof rest)) > 0) cep_buf_put(&c.log, rest, (size_t)k);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s", cep_buf_cstr(&c.log));
    char total[64];
    snprintf(total, sizeof total, "cep run: %d events,", NEV);
    cr_assert(strstr(cep_buf_cstr(&c.log), total), "every record read once:\n%s", cep_buf_cstr(&c.log));
    cr_assert_eq(breaks, 4);
    cr_assert_eq(failures, breaks, "every broken edit, and only those, refused");
    cr_assert_eq(versions, EDITS - breaks, "one version per edit, two-file edits included");

    /* per rule: the alerts of the run equal the reference's, segment by segment */
    FILE *f = fopen(outfile, "r");
    cr_assert(f);
    cep_buf_t got[NRULES];
    for (int i = 0; i < NRULES; i++) cep_buf_init(&got[i]);
    char *l = NULL;
    size_t cap = 0;
    ssize_t n;
    int alerts = 0;
    while ((n = getline(&l, &cap, f)) > 0) {
        alerts++;
        int i = 0;
        char tag[80];
        for (; i < NRULES; i++) {
            snprintf(tag, sizeof tag, "\"rule\":\"%s\"", rules[i].name);
            for (char *p = tag; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            memcpy(tag, "\"rule\"", 6);
            if (strstr(l, tag)) break;
        }
        cr_assert_lt(i, NRULES, "an alert of no rule: %s", l);
        cep_buf_put(&got[i], l, (size_t)n);
    }
    free(l);
    fclose(f);
    cr_assert_gt(alerts, 100);
    int checked = 0;
    for (int i = 0; i < NRULES; i++) {
        close_segment(&rules[i], NEV);
        cep_buf_t want;
        cep_buf_init(&want);
        reference(&rules[i], &want);
        if (strcmp(cep_buf_cstr(&got[i]), cep_buf_cstr(&want)) && getenv("CEP_TEST_DUMP")) {
            char p[200];
            snprintf(p, sizeof p, "%s.got", getenv("CEP_TEST_DUMP"));
            FILE *d = fopen(p, "w");
            fputs(cep_buf_cstr(&got[i]), d);
            fclose(d);
            snprintf(p, sizeof p, "%s.want", getenv("CEP_TEST_DUMP"));
            d = fopen(p, "w");
            fputs(cep_buf_cstr(&want), d);
            for (int s2 = 0; s2 < rules[i].nseg; s2++)
                fprintf(d, "# seg %d: origin %d start %d end %d\n%s", s2, rules[i].seg[s2].origin,
                        rules[i].seg[s2].start, rules[i].seg[s2].end, rules[i].seg[s2].text);
            fclose(d);
            snprintf(p, sizeof p, "%s.log", getenv("CEP_TEST_DUMP"));
            d = fopen(p, "w");
            fputs(cep_buf_cstr(&c.log), d);
            fclose(d);
        }
        cr_assert_str_eq(cep_buf_cstr(&got[i]), cep_buf_cstr(&want), "rule %s (%d versions)", rules[i].name,
                         rules[i].nseg);
        checked += rules[i].nseg > 1;
        for (int s = 0; s < rules[i].nseg; s++) free(rules[i].seg[s].text);
        cep_buf_free(&want);
        cep_buf_free(&got[i]);
    }
    cr_assert_geq(checked, 8, "most rules lived through several versions");
    cep_buf_free(&c.log);
    close(c.err);
    for (int i = 0; i < NEV; i++) free(events[i]);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, outfile);
    cr_assert_eq(system(cmd), 0);
}

/* ---- on Kafka, with state in Redis ------------------------------------------------------ */


#define KSTREAM                                                                                               \
    "CREATE STREAM ev (acct VARCHAR, kind VARCHAR, amt BIGINT, t BIGINT)\n"                                    \
    "  WITH (KAFKA_TOPIC='rl.events', VALUE_FORMAT='JSON', TIMESTAMP='t', KEY='acct');\n"
#define BUSY(thr)                                                                                             \
    "CREATE TABLE busy AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 2 MINUTES)\n"                \
    "  WHERE kind = 'bet' GROUP BY acct HAVING COUNT(*) >= " thr ";\n"
#define TIER "CREATE TABLE tier AS SELECT acct, COUNT(*) AS n FROM ev WINDOW TUMBLING (SIZE 2 MINUTES)\n"       \
             "  WHERE kind = 'bet' GROUP BY acct HAVING COUNT(*) >= 5;\n"

enum { KEV = 3000 };

static long long ktime(int i)
{
    return 1700000000000LL + i * 2000LL;
}

static void kline(int i, char *line, size_t n, char *key, size_t kn)
{
    static const char *k[] = {"bet", "bet", "win", "login"};
    snprintf(key, kn, "u%d", (i * 7) % 13);
    snprintf(line, n, "{\"acct\":\"%s\",\"kind\":\"%s\",\"amt\":%d,\"t\":%lld}", key, k[(i * 5) % 4], i % 97,
             ktime(i));
}

static void kproduce(const char *bs, int from, int to)
{
    cep_kafka_producer_t *p = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_producer_new(bs, NULL, 0, &p, &err), CEP_OK, "%s", err.msg);
    for (int i = from; i < to; i++) {
        char line[160], key[16];
        kline(i, line, sizeof line, key, sizeof key);
        /* the record time is the event time, as producers that know it set it */
        cr_assert_eq(cep_kafka_produce(p, "rl.events", key, strlen(key), line, strlen(line), ktime(i), NULL, NULL, 0,
                                       &err),
                     CEP_OK, "%s", err.msg);
    }
    cr_assert_eq(cep_kafka_producer_flush(p, 30000), 0);
    cep_kafka_producer_free(p);
}

/* The sum of the checkpointed next offsets of all tasks: records whose
 * processing (and alerts) are saved. */
static long long saved_offsets(const cep_test_redis_t *r)
{
    redisContext *c = cep_test_redis_raw(r);
    cr_assert(c);
    long long sum = 0;
    for (int p = 0; p < 8; p++) { /* however many partitions the broker made */
        redisReply *rep = redisCommand(c, "HGET cep:rl:{%d}:offsets rl.events", p);
        if (rep && rep->type == REDIS_REPLY_STRING) sum += atoll(rep->str);
        if (rep) freeReplyObject(rep);
    }
    redisFree(c);
    return sum;
}

static void wait_saved(const cep_test_redis_t *r, long long n)
{
    for (int i = 0; i < 300 && saved_offsets(r) < n; i++) usleep(100000);
    cr_assert_eq(saved_offsets(r), n, "every record processed and checkpointed");
}

static void on_kalert(void *ctx, const cep_output_t *o)
{
    cep_buf_t id, v;
    cep_buf_init(&id);
    cep_buf_init(&v);
    cep_output_alert_id(o, &id);
    cep_output_value_json(o, &v); /* as the topic holds it: the value's text, "null" for a tombstone */
    json_object_set_new(ctx, cep_buf_cstr(&id), json_string(cep_buf_cstr(&v)));
    cep_buf_free(&id);
    cep_buf_free(&v);
}

static void kpush(cep_runtime_t *rt, int from, int to)
{
    for (int i = from; i < to; i++) {
        char line[160], key[16];
        kline(i, line, sizeof line, key, sizeof key);
        cep_record_t r = {.topic = "rl.events", .value = line, .vlen = strlen(line), .key = key, .klen = strlen(key)};
        cr_assert_eq(cep_runtime_push(rt, &r, NULL), CEP_OK);
    }
}

static void wait_file(const char *path, const char *needle)
{
    for (int i = 0; i < 300 && !cep_test_file_has(path, needle); i++) usleep(100000);
    cr_assert(cep_test_file_has(path, needle), "no \"%s\" in %s", needle, path);
}

Test(reload, on_kafka_a_version_goes_live_between_records_and_a_restart_plans_it_the_same, .timeout = 180)
{
    cep_test_redis_t *redis = cep_test_redis_start(NULL);
    cr_assert(redis);
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(2, &b, &err), CEP_OK, "%s", err.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    char pack[] = "/tmp/cep-rlk-XXXXXX", path[128], errs[2][64];
    cr_assert(mkdtemp(pack));
    snprintf(path, sizeof path, "%s/rules.sql", pack);
    snprintf(dir, sizeof dir, "%s", pack);
    write_file("rules.sql", KSTREAM BUSY("4"));
    for (int k = 0; k < 2; k++) {
        snprintf(errs[k], sizeof errs[k], "/tmp/cep-rlk-err%d-XXXXXX", k);
        close(mkstemp(errs[k]));
    }
    char *argv[] = {"cep", "run", "--rules", pack, "--kafka", (char *)bs, "--group", "rl", "--state",
                    (char *)cep_test_redis_url(redis), "--checkpoint-ms", "200", "--reload-debounce-ms", "100", NULL};
    pid_t p = cep_test_spawn(CEP_BINARY, argv, errs[0]);
    wait_file(errs[0], "partition(s) assigned");
    kproduce(bs, 0, KEV / 2);
    wait_saved(redis, KEV / 2);
    /* a lower threshold (state kept) and a new rule of the same aggregation (fresh) */
    write_file("rules.sql", KSTREAM BUSY("3") TIER);
    wait_file(errs[0], "compiled in");
    kproduce(bs, KEV / 2, KEV);
    wait_saved(redis, KEV);
    wait_file(errs[0], "live from rl.events[");
    kill(p, SIGTERM);
    cr_assert_eq(cep_test_wait(p), 0);

    /* the reference: the first version over the first half, the second over the rest */
    cep_ruleset_t *v1 = cep_test_compile("k.sql", KSTREAM BUSY("4"), NULL);
    cep_ruleset_t *v2 = cep_test_compile("k.sql", KSTREAM BUSY("3") TIER, v1);
    json_t *want = json_object();
    cep_runtime_t *rt = cep_runtime_new(v1, on_kalert, want);
    kpush(rt, 0, KEV / 2);
    cep_swap_stats_t st;
    cr_assert_eq(cep_runtime_swap(rt, v2, &st, &err), CEP_OK, "%s", err.msg);
    kpush(rt, KEV / 2, KEV);
    json_t *got = cep_test_read_topic(bs, "cep.alerts", NULL, NULL);
    cr_assert_gt(json_object_size(want), 20);
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT), *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    if (strcmp(g, w) && getenv("CEP_TEST_DUMP")) {
        char f[200];
        snprintf(f, sizeof f, "%s.kgot", getenv("CEP_TEST_DUMP"));
        FILE *d = fopen(f, "w");
        fputs(g, d);
        fclose(d);
        snprintf(f, sizeof f, "%s.kwant", getenv("CEP_TEST_DUMP"));
        d = fopen(f, "w");
        fputs(w, d);
        fclose(d);
    }
    cr_assert_str_eq(g, w, "the alerts on Kafka are the two versions' over their halves");
    free(g);
    free(w);
    json_decref(got);

    /* a restart with the same pack reads the lineage: every saved record
     * belongs to a table it plans (tier's state is named by its origin) */
    char *argv2[] = {"cep", "run", "--rules", pack, "--kafka", (char *)bs, "--group", "rl", "--state",
                     (char *)cep_test_redis_url(redis), "--idle-exit-ms", "2000", NULL};
    p = cep_test_spawn(CEP_BINARY, argv2, errs[1]);
    cr_assert_eq(cep_test_wait(p), 0);
    cr_assert(cep_test_file_has(errs[1], "(0 records of changed or removed rules skipped)"),
              "the restart planned the pack as the first instance did");
    cep_runtime_free(rt);
    cep_ruleset_free(v1);
    cep_ruleset_free(v2);
    json_decref(want);
    cep_kafka_broker_free(b);
    cep_test_redis_free(redis);
    for (int k = 0; k < 2; k++) unlink(errs[k]);
    unlink(path);
    rmdir(pack);
}

/* ---- bootstrap: new rules warm up from history --------------------------------------- */

/* Warmed: a 10-minute window (its span) and a 3-minute OVER range; cold:
 * no BOOTSTRAP, so it starts at the reload as before. */
#define WARM                                                                                                 \
    "CREATE TABLE warm WITH (BOOTSTRAP='window') AS SELECT acct, COUNT(*) AS n FROM ev\n"                    \
    "  WINDOW TUMBLING (SIZE 10 MINUTES) WHERE kind = 'bet' GROUP BY acct HAVING COUNT(*) >= 12;\n"          \
    "CREATE STREAM velo WITH (BOOTSTRAP='window') AS SELECT acct, n FROM (\n"                                \
    "  SELECT acct, COUNT(*) OVER (PARTITION BY acct ORDER BY t\n"                                          \
    "    RANGE BETWEEN INTERVAL '3' MINUTES PRECEDING AND CURRENT ROW) AS n\n"                                \
    "  FROM ev WHERE kind = 'bet') v WHERE n >= 4 PARTITION BY acct;\n"
#define COLD                                                                                                 \
    "CREATE TABLE cold AS SELECT acct, COUNT(*) AS n FROM ev\n"                                              \
    "  WINDOW TUMBLING (SIZE 10 MINUTES) WHERE kind = 'win' GROUP BY acct HAVING COUNT(*) >= 5;\n"

typedef struct kcollect {
    json_t *alerts;
    bool on;
    const char *only; /* rule name, or NULL */
} kcollect_t;

static void on_kcollect(void *ctx, const cep_output_t *o)
{
    kcollect_t *c = ctx;
    if (c->on && (!c->only || !strcmp(o->query->name, c->only))) on_kalert(c->alerts, o);
}

/* The alerts of rule `only` in pack `sql` over every event, counting those
 * caused by records from `from` on. */
static json_t *kreference(const char *sql, const char *only, int from)
{
    cep_ruleset_t *rs = cep_test_compile("w.sql", sql, NULL);
    kcollect_t c = {json_object(), false, only};
    cep_runtime_t *rt = cep_runtime_new(rs, on_kcollect, &c);
    kpush(rt, 0, from);
    c.on = true;
    kpush(rt, from, KEV);
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
    return c.alerts;
}

static json_t *of_rule(json_t *alerts, const char *rule)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    size_t n = strlen(rule);
    json_object_foreach(alerts, k, v) {
        if (!strncmp(k, rule, n) && k[n] == '/') json_object_set(out, k, v); /* alert ids: rule/key/time */
    }
    return out;
}

static void assert_same(json_t *got, json_t *want, const char *what)
{
    char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT), *w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    cr_assert_str_eq(g, w, "%s", what);
    free(g);
    free(w);
}

Test(reload, bootstrap_warms_new_rules_from_the_window_span_of_history, .timeout = 180)
{
    cep_test_redis_t *redis = cep_test_redis_start(NULL);
    cr_assert(redis);
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_broker_new(2, &b, &err), CEP_OK, "%s", err.msg);
    const char *bs = cep_kafka_broker_bootstrap(b);
    char pack[] = "/tmp/cep-rlb-XXXXXX", path[128], errs[] = "/tmp/cep-rlb-err-XXXXXX";
    cr_assert(mkdtemp(pack));
    close(mkstemp(errs));
    snprintf(path, sizeof path, "%s/rules.sql", pack);
    snprintf(dir, sizeof dir, "%s", pack);
    write_file("rules.sql", KSTREAM BUSY("3"));
    char *argv[] = {"cep", "run", "--rules", pack, "--kafka", (char *)bs, "--group", "rl", "--state",
                    (char *)cep_test_redis_url(redis), "--checkpoint-ms", "200", "--reload-debounce-ms", "100", NULL};
    pid_t p = cep_test_spawn(CEP_BINARY, argv, errs);
    wait_file(errs, "partition(s) assigned");
    kproduce(bs, 0, KEV / 2);
    wait_saved(redis, KEV / 2);
    write_file("rules.sql", KSTREAM BUSY("3") WARM COLD);
    wait_file(errs, "records of history read in");
    kproduce(bs, KEV / 2, KEV);
    wait_saved(redis, KEV);
    wait_file(errs, "state entries moved into");
    kill(p, SIGTERM);
    cr_assert_eq(cep_test_wait(p), 0);
    cr_assert(cep_test_file_has(errs, "2 rule(s) warm up from the last 10 min of history: WARM, VELO"),
              "the rules that asked for it, and the longest span they need");
    cr_assert(cep_test_file_has(errs, "0 more records read at the swap"),
              "nothing came between the history read and the swap");

    json_t *got = cep_test_read_topic(bs, "cep.alerts", NULL, NULL);
    /* warmed rules: as if they had run over all history, alerting from the reload on */
    const char *warmed[] = {"WARM", "VELO"};
    for (int i = 0; i < 2; i++) {
        json_t *want = kreference(KSTREAM WARM, warmed[i], KEV / 2);
        json_t *fresh_after = json_object();
        /* a fresh start at the reload: what the rule would alert without its history */
        cep_ruleset_t *rs = cep_test_compile("w.sql", KSTREAM WARM, NULL);
        kcollect_t c = {fresh_after, true, warmed[i]};
        cep_runtime_t *rt = cep_runtime_new(rs, on_kcollect, &c);
        kpush(rt, KEV / 2, KEV);
        cep_runtime_free(rt);
        cep_ruleset_free(rs);
        json_t *g = of_rule(got, warmed[i]);
        cr_assert_gt(json_object_size(want), 5, "%s alerts after the reload", warmed[i]);
        cr_assert_gt(json_object_size(want), json_object_size(fresh_after),
                     "%s: history makes a difference in the test itself", warmed[i]);
        assert_same(g, want, warmed[i]);
        json_decref(g);
        json_decref(want);
        json_decref(fresh_after);
    }
    /* busy went on, cold started fresh at the reload */
    cep_ruleset_t *v1 = cep_test_compile("k.sql", KSTREAM BUSY("3"), NULL);
    cep_ruleset_t *v2 = cep_test_compile("k.sql", KSTREAM BUSY("3") WARM COLD, v1);
    json_t *want = json_object();
    cep_runtime_t *rt = cep_runtime_new(v1, on_kalert, want);
    kpush(rt, 0, KEV / 2);
    cep_swap_stats_t st;
    cr_assert_eq(cep_runtime_swap(rt, v2, &st, &err), CEP_OK, "%s", err.msg);
    kpush(rt, KEV / 2, KEV);
    const char *unwarmed[] = {"BUSY", "COLD"};
    for (int i = 0; i < 2; i++) {
        json_t *g = of_rule(got, unwarmed[i]), *w = of_rule(want, unwarmed[i]);
        cr_assert_gt(json_object_size(w), 5, "%s alerts: %zu", unwarmed[i], json_object_size(w));
        assert_same(g, w, unwarmed[i]);
        json_decref(g);
        json_decref(w);
    }
    cep_runtime_free(rt);
    cep_ruleset_free(v1);
    cep_ruleset_free(v2);
    json_decref(want);
    json_decref(got);
    cep_kafka_broker_free(b);
    cep_test_redis_free(redis);
    unlink(errs);
    unlink(path);
    rmdir(pack);
}
