/*
 * replay.c — the throughput benchmark (`cep-bench`).
 *
 * Loads a JSON-lines file of gaming events (cep gen) into memory, builds
 * packs of N filter and windowed-aggregation rules over gaming.events from
 * eight templates with varied constants (so no two rules are the same),
 * and replays the events through each pack: decode, prefilter, shared WHERE
 * atoms, projections, windows, and the alert line of every output. Each
 * pack runs in a forked child so its peak RSS is its own. File reading is
 * outside the timed loop; everything the engine does per event is inside.
 *
 *   cep-bench --events FILE [--rules 10,100,300,1000] [--repeat R] [--pack-out DIR]
 *   cep-bench --events FILE --parse-only      (decoder alone, every column)
 *   cep-bench --events FILE --rules 300 --reload-every-ms 300 [--reloads 20]
 *                                             (hot reload under full load)
 */
#include "engine/decode.h"
#include "engine/output.h"
#include "engine/reload.h"
#include "engine/runtime.h"
#include "patterns/match.h"
#include "patterns/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct events {
    char *data;
    size_t len;
    uint32_t *off, *n; /* line starts and lengths */
    size_t count;
} events_t;

static bool load_events(const char *path, events_t *ev)
{
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_file_read(path, &ev->data, &ev->len, &err)) {
        fprintf(stderr, "cep-bench: %s\n", err.msg);
        return false;
    }
    size_t cap = 1024;
    ev->off = malloc(cap * sizeof *ev->off);
    ev->n = malloc(cap * sizeof *ev->n);
    ev->count = 0;
    for (size_t p = 0; p < ev->len;) {
        char *nl = memchr(ev->data + p, '\n', ev->len - p);
        size_t e = nl ? (size_t)(nl - ev->data) : ev->len;
        if (e > p) {
            if (ev->count == cap) {
                cap *= 2;
                ev->off = realloc(ev->off, cap * sizeof *ev->off);
                ev->n = realloc(ev->n, cap * sizeof *ev->n);
            }
            ev->off[ev->count] = (uint32_t)p;
            ev->n[ev->count++] = (uint32_t)(e - p);
        }
        p = e + 1;
    }
    return true;
}

static const char stream_sql[] =
    "CREATE STREAM gaming_events (account_id VARCHAR, event_id VARCHAR, event_type VARCHAR, event_time BIGINT,\n"
    "  tenant VARCHAR, device_id VARCHAR, ip VARCHAR, country VARCHAR, status VARCHAR, new_device BOOLEAN,\n"
    "  amount_minor BIGINT, currency VARCHAR, instrument_id VARCHAR, stake_minor BIGINT, odds DOUBLE,\n"
    "  pot_minor BIGINT, winner_id VARCHAR, loser_id VARCHAR, showdown BOOLEAN, bonus_type VARCHAR,\n"
    "  promo_code VARCHAR)\n"
    "  WITH (KAFKA_TOPIC='gaming.events', VALUE_FORMAT='JSON', TIMESTAMP='event_time');\n";

static const char *const countries[] = {"DE", "GB", "FR", "ES", "IT", "NL", "SE", "PL", "US", "CA", "BR", "JP", "SG"};

/* Rule i of a generated pack: template i % 8, constants from i / 8. */
/* --reload: a version's edit raises the bet-count thresholds (state kept) */
static unsigned threshold_bump;

static void rule_sql(cep_buf_t *b, unsigned i)
{
    unsigned v = i / 8;
    const char *c = countries[v % CEP_ARRAY_LEN(countries)];
    cep_buf_printf(b, "CREATE %s r%04u WITH (KAFKA_TOPIC='cep.alerts', KEY_FORMAT='JSON', SEVERITY='%s') AS\n", i % 8 == 0 || i % 8 == 1 || i % 8 == 5 ? "STREAM" : "TABLE", i,
                   v % 3 == 0 ? "high" : v % 3 == 1 ? "medium" : "low");
    switch (i % 8) {
    case 0:
        cep_buf_printf(b, "SELECT account_id, amount_minor, currency FROM gaming_events\n"
                          "WHERE event_type = 'deposit' AND amount_minor > %u;\n",
                       100000 + v * 1000);
        break;
    case 1:
        cep_buf_printf(b, "SELECT account_id, ip, device_id FROM gaming_events\n"
                          "WHERE event_type = 'login' AND status = 'bad_password' AND country = '%s' AND new_device = %s;\n",
                       c, v % 2 ? "true" : "false");
        break;
    case 2:
        cep_buf_printf(b, "SELECT account_id, COUNT(*) AS bets FROM gaming_events\n"
                          "WINDOW TUMBLING (SIZE %u MINUTES, GRACE PERIOD 1 MINUTE)\n"
                          "WHERE event_type = 'bet' GROUP BY account_id HAVING COUNT(*) > %u;\n",
                       5 + v % 10, 20 + v + threshold_bump);
        break;
    case 3:
        cep_buf_printf(b, "SELECT account_id, SUM(amount_minor) AS total FROM gaming_events\n"
                          "WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY %u MINUTES, GRACE PERIOD 1 MINUTE)\n"
                          "WHERE event_type = 'deposit' GROUP BY account_id HAVING SUM(amount_minor) > %u;\n",
                       v % 2 ? 30 : 15, 500000 + v * 1000);
        break;
    case 4:
        cep_buf_printf(b, "SELECT ip, COUNT_DISTINCT(account_id) AS accounts FROM gaming_events\n"
                          "WINDOW TUMBLING (SIZE 10 MINUTES, GRACE PERIOD 1 MINUTE)\n"
                          "WHERE event_type = 'login' AND status <> 'ok' GROUP BY ip\n"
                          "HAVING COUNT_DISTINCT(account_id) >= %u;\n",
                       5 + v);
        break;
    case 5:
        cep_buf_printf(b, "SELECT account_id, amount_minor, country FROM gaming_events\n"
                          "WHERE event_type = 'withdrawal_request' AND amount_minor > %u AND country <> '%s';\n",
                       50000 + v * 500, c);
        break;
    case 6:
        cep_buf_printf(b, "SELECT account_id, COUNT_DISTINCT(instrument_id) AS instruments, SUM(amount_minor) AS total\n"
                          "FROM gaming_events WINDOW SESSION (30 MINUTES, GRACE PERIOD 1 MINUTE)\n"
                          "WHERE event_type = 'deposit' GROUP BY account_id\n"
                          "HAVING COUNT_DISTINCT(instrument_id) >= %u;\n",
                       3 + v);
        break;
    default:
        cep_buf_printf(b, "SELECT winner_id, loser_id, SUM(pot_minor) AS pots, COUNT(*) AS hands FROM gaming_events\n"
                          "WINDOW TUMBLING (SIZE 1 HOUR, GRACE PERIOD 1 MINUTE)\n"
                          "WHERE event_type = 'hand_result' AND showdown = false GROUP BY winner_id, loser_id\n"
                          "HAVING COUNT(*) >= %u;\n",
                       3 + v);
        break;
    }
}

/* Pattern rule i: template i % 4 (takeover chain, deposits then cash-out,
 * impossible travel, bonus cycle), constants from i / 4, all WITHIN w minutes. */
static void pattern_sql(cep_buf_t *b, unsigned i, unsigned within_min)
{
    unsigned v = i / 4;
    const char *c = countries[v % CEP_ARRAY_LEN(countries)];
    cep_buf_printf(b, "CREATE STREAM p%04u WITH (KAFKA_TOPIC='cep.alerts', SEVERITY='high') AS\n"
                      "SELECT * FROM gaming_events MATCH_RECOGNIZE (PARTITION BY account_id ORDER BY event_time\n",
                   i);
    switch (i % 4) {
    case 0:
        cep_buf_printf(b, "  MEASURES FIRST(F.event_time) AS t0, COUNT(F.event_id) AS fails, W.amount_minor AS amount\n"
                          "  PATTERN (F{%u,} L X*? W) WITHIN INTERVAL '%u' MINUTES\n"
                          "  DEFINE F AS event_type = 'login' AND status = 'bad_password',\n"
                          "         L AS event_type = 'login' AND status = 'ok',\n"
                          "         X AS event_type <> 'withdrawal_request',\n"
                          "         W AS event_type = 'withdrawal_request' AND amount_minor > %u);\n",
                       3 + v % 5, within_min, 1000 * (v % 7));
        break;
    case 1:
        cep_buf_printf(b, "  MEASURES FIRST(D.event_time) AS t0, SUM(D.amount_minor) AS deposited, W.amount_minor AS out\n"
                          "  PATTERN (D{%u} X*? W) WITHIN INTERVAL '%u' MINUTES\n"
                          "  DEFINE D AS event_type = 'deposit',\n"
                          "         X AS event_type <> 'withdrawal_request',\n"
                          "         W AS event_type = 'withdrawal_request' AND amount_minor >= %u);\n",
                       2 + v % 4, within_min, 5000 + 1000 * (v % 9));
        break;
    case 2:
        cep_buf_printf(b, "  MEASURES A.country AS from_country, B.country AS to_country, B.event_time AS t1\n"
                          "  PATTERN (A X*? B) WITHIN INTERVAL '%u' MINUTES\n"
                          "  DEFINE A AS event_type = 'login' AND status = 'ok',\n"
                          "         X AS event_type <> 'login',\n"
                          "         B AS event_type = 'login' AND status = 'ok' AND country <> A.country AND country <> '%s');\n",
                       within_min, c);
        break;
    default:
        cep_buf_printf(b, "  MEASURES P.amount_minor AS deposit, C.amount_minor AS bonus, W.amount_minor AS out\n"
                          "  PATTERN (P X*? C Y*? W) WITHIN INTERVAL '%u' MINUTES\n"
                          "  DEFINE P AS event_type = 'deposit' AND amount_minor >= %u,\n"
                          "         X AS event_type <> 'bonus_claim',\n"
                          "         C AS event_type = 'bonus_claim',\n"
                          "         Y AS event_type <> 'withdrawal_request',\n"
                          "         W AS event_type = 'withdrawal_request');\n",
                       within_min, 1000 + 500 * (v % 11));
        break;
    }
}

static char *pattern_pack_sql(unsigned n, unsigned within_min, size_t *len)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cep_buf_puts(&b, stream_sql);
    for (unsigned i = 0; i < n; i++) {
        cep_buf_putc(&b, '\n');
        pattern_sql(&b, i, within_min);
    }
    *len = b.len;
    cep_buf_putc(&b, 0);
    return b.data;
}

static char *pack_sql(unsigned n, size_t *len)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cep_buf_puts(&b, stream_sql);
    for (unsigned i = 0; i < n; i++) {
        cep_buf_putc(&b, '\n');
        rule_sql(&b, i);
    }
    *len = b.len;
    cep_buf_putc(&b, 0);
    return b.data;
}

typedef struct sink {
    cep_buf_t line;
    uint64_t alerts;
} sink_t;

static void on_output(void *ctx, const cep_output_t *o)
{
    sink_t *s = ctx;
    cep_buf_reset(&s->line);
    cep_output_alert_line(o, &s->line);
    s->alerts++;
}

typedef struct result {
    double compile_ms, seconds;
    uint64_t alerts, dead;
    long rss_kb, base_kb;
    uint64_t peak_runs, p99_runs, matches;
} result_t;

static unsigned within_minutes; /* pattern packs: set from the command line before forking */

/* Runs in the child: compile, replay, report through the pipe. */
static int run_pack(const events_t *ev, unsigned nrules, int fd)
{
    result_t r = {0};
    r.base_kb = cep_rss_kb();
    size_t len;
    char *sql = within_minutes ? pattern_pack_sql(nrules, within_minutes, &len) : pack_sql(nrules, &len);
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    uint64_t t0 = cep_now_ns();
    if (cep_rules_compile("bench.sql", sql, len, NULL, &rs, &err)) {
        char buf[800];
        fprintf(stderr, "cep-bench: %s\n", cep_error_format(&err, buf, sizeof buf));
        return 1;
    }
    r.compile_ms = (double)(cep_now_ns() - t0) / 1e6;
    sink_t sink;
    cep_buf_init(&sink.line);
    sink.alerts = 0;
    cep_runtime_t *rt = cep_runtime_new(rs, on_output, &sink);
    uint64_t t1 = cep_now_ns();
    for (size_t i = 0; i < ev->count; i++) {
        cep_record_t rec = {.topic = "gaming.events", .value = ev->data + ev->off[i], .vlen = ev->n[i],
                            .offset = (int64_t)i};
        if (cep_runtime_push(rt, &rec, NULL)) r.dead++;
    }
    cep_runtime_finish(rt);
    r.seconds = (double)(cep_now_ns() - t1) / 1e9;
    r.alerts = sink.alerts;
    cep_match_stats_t ms;
    cep_runtime_match_stats(rt, &ms);
    r.peak_runs = ms.peak_runs;
    r.matches = ms.matches;
    uint64_t total = 0, seen = 0;
    for (int k = 0; k < 16; k++) total += ms.runs_hist[k];
    for (int k = 0; k < 16 && total; k++) {
        seen += ms.runs_hist[k];
        if (seen * 100 >= total * 99) {
            r.p99_runs = k == 0 ? 0 : (1ULL << k) - 1; /* the bucket's upper bound */
            break;
        }
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r.rss_kb = ru.ru_maxrss;
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r) return 1;
    /* the child exits now: no teardown, so profiles show the replay alone */
    (void)rt, (void)rs, (void)sql;
    return 0;
}

static bool measure(const events_t *ev, unsigned nrules, result_t *out)
{
    int p[2];
    if (pipe(p)) return false;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(run_pack(ev, nrules, p[1]));
    }
    close(p[1]);
    ssize_t got = read(p[0], out, sizeof *out);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return got == (ssize_t)sizeof *out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* The decoder alone: every column of the stream decoded from every event. */
static int parse_only(const events_t *ev, int repeat)
{
    size_t len;
    char *sql = pack_sql(0, &len);
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile("bench.sql", sql, len, NULL, &rs, &err)) {
        fprintf(stderr, "cep-bench: %s\n", err.msg);
        return 1;
    }
    cep_stream_t *s = rs->streams[0];
    for (uint32_t i = 0; i < s->ncols; i++) s->needed[i] = true;
    cep_value_t *row = calloc(s->nslots + 1, sizeof *row);
    cep_arena_t scratch;
    cep_arena_init(&scratch, 64 * 1024);
    double best = 1e30;
    uint64_t bad = 0;
    for (int r = 0; r < repeat; r++) {
        bad = 0;
        uint64_t t0 = cep_now_ns();
        for (size_t i = 0; i < ev->count; i++) {
            cep_record_t rec = {.topic = "gaming.events", .value = ev->data + ev->off[i], .vlen = ev->n[i]};
            if (cep_decode_record(s, &rec, row, &scratch, NULL)) bad++;
            cep_arena_reset(&scratch);
        }
        double sec = (double)(cep_now_ns() - t0) / 1e9;
        if (sec < best) best = sec;
    }
    printf("decoder parse-only (%u columns, all decoded): %zu events, %.1f MB, best of %d: %.3f s, "
           "%.0f events/s, %.0f ns/event, %.0f MB/s, %llu errors\n",
           s->ncols, ev->count, (double)ev->len / 1e6, repeat, best, (double)ev->count / best,
           best * 1e9 / (double)ev->count, (double)ev->len / 1e6 / best, (unsigned long long)bad);
    free(row);
    cep_arena_free(&scratch);
    cep_ruleset_free(rs);
    free(sql);
    return 0;
}

/* ---- --reload-every-ms: hot reload under full load ------------------------------
 *
 * The pack is a file the reloader watches. The replay loop runs the events
 * as fast as it can; every `every_ms` the file is rewritten with the next
 * version (alternately: every bet-count threshold raised, which keeps their
 * state, and one rule added or removed). The watcher compiles it on the
 * other core; the loop swaps it in between two records. Throughput is
 * counted per 50 ms bucket. */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void write_version(const char *path, unsigned nrules, unsigned k)
{
    threshold_bump = k / 2;
    size_t len;
    char *sql = pack_sql(nrules + k % 2, &len);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fwrite(sql, 1, len, f) != len) exit(1);
    fclose(f);
    if (rename(tmp, path)) exit(1);
    free(sql);
}

static int run_reload(const events_t *ev, unsigned nrules, unsigned every_ms, unsigned reloads)
{
    char dir[] = "/tmp/cep-bench-reload-XXXXXX", path[300];
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/pack.sql", dir);
    write_version(path, nrules, 0);
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile_path(path, NULL, &rs, &err)) {
        fprintf(stderr, "cep-bench: %s\n", err.msg);
        return 1;
    }
    sink_t sink = {0};
    cep_buf_init(&sink.line);
    cep_runtime_t *rt = cep_runtime_new(rs, on_output, &sink);
    FILE *log = fopen("/dev/null", "w");
    cep_reload_opts_t ro = {.debounce_ms = 20, .watch = true, .log = log};
    cep_reloader_t *rl = NULL;
    if (!rt || cep_reloader_new(path, rs, &ro, &rl, &err)) {
        fprintf(stderr, "cep-bench: %s\n", err.msg);
        return 1;
    }
    enum { BUCKET_NS = 50000000 };
    size_t nb = 0, capb = 1024;
    uint64_t *bucket = calloc(capb, sizeof *bucket);
    /* per bucket: 1 = the watcher compiled during it, 2 = a swap happened in it */
    unsigned char *busy = calloc(capb, sizeof *busy);
    uint64_t *swap_ns = calloc(reloads + 2, sizeof *swap_ns), *compile_ns = calloc(reloads + 2, sizeof *compile_ns);
    unsigned written = 0, applied = 0;
    bool compiling = false;
    uint64_t t0 = cep_now_ns(), next_edit = t0 + (uint64_t)every_ms * 1000000ULL, pushed = 0;
    for (size_t i = 0; i < ev->count; i++) {
        if ((i & 255) == 0) {
            uint64_t now = cep_now_ns();
            size_t b = (size_t)((now - t0) / BUCKET_NS);
            if (b >= capb) {
                capb = 2 * b + 1;
                bucket = realloc(bucket, capb * sizeof *bucket);
                busy = realloc(busy, capb * sizeof *busy);
                memset(bucket + nb, 0, (capb - nb) * sizeof *bucket);
                memset(busy + nb, 0, (capb - nb) * sizeof *busy);
            }
            nb = b + 1;
            if (compiling) busy[b] |= 1;
            if (written < reloads && now >= next_edit && !compiling) {
                write_version(path, nrules, ++written);
                compiling = true;
                next_edit = now + (uint64_t)every_ms * 1000000ULL;
            }
            if (written == reloads && !compiling && now > next_edit) break; /* a quiet spell after the last */
        }
        if (cep_reloader_ready(rl)) {
            uint64_t s0 = cep_now_ns();
            rs = (cep_ruleset_t *)cep_reloader_apply(rl, rt, "bench", NULL);
            uint64_t s1 = cep_now_ns();
            cep_reload_stats_t st;
            cep_reloader_stats(rl, &st);
            swap_ns[applied] = s1 - s0;
            compile_ns[applied] = st.last_compile_ns;
            applied++;
            compiling = false;
            busy[(s1 - t0) / BUCKET_NS < capb ? (s1 - t0) / BUCKET_NS : capb - 1] |= 2;
        }
        cep_record_t r = {.topic = "gaming.events", .value = ev->data + ev->off[i], .vlen = ev->n[i],
                          .offset = (int64_t)i};
        cep_runtime_push(rt, &r, NULL);
        pushed++;
        bucket[nb ? nb - 1 : 0]++;
    }
    uint64_t seconds_ns = cep_now_ns() - t0;
    const cep_runtime_stats_t *rst = cep_runtime_stats(rt);
    /* the buckets without a reload, and the worst bucket with one (the last bucket is partial) */
    uint64_t *quiet = calloc(nb + 1, sizeof *quiet), worst_compile = UINT64_MAX, worst_swap = UINT64_MAX;
    size_t nq = 0;
    for (size_t b = 0; b + 1 < nb; b++) {
        if (!busy[b]) quiet[nq++] = bucket[b];
        else if ((busy[b] & 2) && bucket[b] < worst_swap) worst_swap = bucket[b];
        else if (busy[b] == 1 && bucket[b] < worst_compile) worst_compile = bucket[b];
    }
    qsort(quiet, nq, sizeof *quiet, cmp_u64);
    qsort(swap_ns, applied, sizeof *swap_ns, cmp_u64);
    qsort(compile_ns, applied, sizeof *compile_ns, cmp_u64);
    double med = nq ? (double)quiet[nq / 2] * 20 : 0; /* events/s: 20 buckets a second */
    printf("reload under load: %u rules, %u reloads applied of %u, %llu events in %.2f s, "
           "%llu processed (none lost: %s)\n",
           nrules, applied, written, (unsigned long long)pushed, (double)seconds_ns / 1e9,
           (unsigned long long)rst->records, rst->records == pushed ? "yes" : "NO");
    if (applied) {
        printf("%-34s %10s %10s\n", "", "median", "max");
        printf("%-34s %10.2f %10.2f\n", "compile (watcher thread), ms", (double)compile_ns[applied / 2] / 1e6,
               (double)compile_ns[applied - 1] / 1e6);
        printf("%-34s %10.3f %10.3f\n", "swap (event thread), ms", (double)swap_ns[applied / 2] / 1e6,
               (double)swap_ns[applied - 1] / 1e6);
        double wc = worst_compile == UINT64_MAX ? 0.0 : (double)worst_compile * 20,
               ws = worst_swap == UINT64_MAX ? 0.0 : (double)worst_swap * 20;
        printf("events/s per 50 ms bucket: quiet median %.0f", med);
        if (wc > 0) printf("; worst while compiling %.0f (%.0f %%)", wc, med ? 100 * wc / med : 0.0);
        if (ws > 0) printf("; worst with a swap %.0f (%.0f %%)", ws, med ? 100 * ws / med : 0.0);
        printf("\n");
    }
    cep_runtime_free(rt);
    cep_reloader_free(rl);
    fclose(log);
    unlink(path);
    rmdir(dir);
    free(bucket);
    free(busy);
    free(quiet);
    free(swap_ns);
    free(compile_ns);
    cep_buf_free(&sink.line);
    return applied == reloads && rst->records == pushed ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *path = NULL, *list = "10,100,300,1000", *pack_out = NULL;
    int repeat = 1;
    bool parse = false;
    unsigned patterns = 0, reload_ms = 0, reloads = 20;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--events") && v) path = v, i++;
        else if (!strcmp(a, "--rules") && v) list = v, i++;
        else if (!strcmp(a, "--repeat") && v) repeat = atoi(v), i++;
        else if (!strcmp(a, "--pack-out") && v) pack_out = v, i++;
        else if (!strcmp(a, "--parse-only")) parse = true;
        else if (!strcmp(a, "--patterns") && v) patterns = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--reload-every-ms") && v) reload_ms = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--reloads") && v) reloads = (unsigned)atoi(v), i++;
        else {
            fprintf(stderr, "usage: cep-bench --events FILE [--rules 10,100,300,1000] [--repeat R] "
                            "[--pack-out FILE] [--parse-only]\n"
                            "       cep-bench --events FILE --rules N --reload-every-ms MS [--reloads 20]\n");
            return 2;
        }
    }
    if (repeat < 1) repeat = 1;
    if (pack_out) { /* write the largest pack, for cep check / cep run / profiling */
        unsigned n = 0;
        for (const char *p = list; *p; p++) n = *p == ',' ? 0 : n * 10 + (unsigned)(*p - '0');
        size_t len;
        char *sql = pack_sql(n, &len);
        FILE *f = fopen(pack_out, "w");
        if (!f || fwrite(sql, 1, len, f) != len) return 1;
        fclose(f);
        free(sql);
        if (!path) return 0;
    }
    if (!path) {
        fprintf(stderr, "cep-bench: --events FILE is required (make one with: cep gen --domain gaming "
                        "--events 1000000 --seed 1 --output FILE)\n");
        return 2;
    }
    events_t ev = {0};
    if (!load_events(path, &ev)) return 1;
    if (parse) {
        int rc = parse_only(&ev, repeat);
        free(ev.off);
        free(ev.n);
        free(ev.data);
        return rc;
    }
    if (reload_ms) {
        unsigned n = (unsigned)atoi(list);
        int rc = run_reload(&ev, n ? n : 300, reload_ms, reloads);
        free(ev.off);
        free(ev.n);
        free(ev.data);
        return rc;
    }
    if (patterns) { /* the same pattern pack WITHIN 1 minute and WITHIN 1 hour */
        printf("%zu events (%.1f MB) from %s, %u pattern rules\n", ev.count, (double)ev.len / 1e6, path, patterns);
        printf("%8s %10s %10s %12s %10s %10s %10s %10s %12s\n", "within", "compile_ms", "seconds", "events/s",
               "ns/event", "matches", "peak_runs", "p99_runs", "peak_rss_MB");
        double rate[2] = {0, 0};
        unsigned mins[2] = {1, 60};
        for (int k = 0; k < 2; k++) {
            within_minutes = mins[k];
            result_t best = {0};
            for (int r = 0; r < repeat; r++) {
                result_t res;
                if (!measure(&ev, patterns, &res)) {
                    fprintf(stderr, "cep-bench: the pattern run failed\n");
                    return 1;
                }
                if (r == 0 || res.seconds < best.seconds) best = res;
            }
            rate[k] = (double)ev.count / best.seconds;
            printf("%6umin %10.1f %10.3f %12.0f %10.0f %10llu %10llu %10llu %12.1f\n", mins[k], best.compile_ms,
                   best.seconds, rate[k], best.seconds * 1e9 / (double)ev.count, (unsigned long long)best.matches,
                   (unsigned long long)best.peak_runs, (unsigned long long)best.p99_runs, (double)best.rss_kb / 1024.0);
            fflush(stdout);
        }
        printf("T(WITHIN 1 HOUR)/T(WITHIN 1 MINUTE) = %.3f (throughput ratio)\n", rate[1] / rate[0]);
        free(ev.off);
        free(ev.n);
        free(ev.data);
        return 0;
    }
    printf("%zu events (%.1f MB) from %s\n", ev.count, (double)ev.len / 1e6, path);
    printf("%6s %10s %10s %12s %10s %10s %12s %10s\n", "rules", "compile_ms", "seconds", "events/s", "ns/event",
           "alerts", "peak_rss_MB", "engine_MB");
    double first_rate = 0, last_rate = 0;
    unsigned first_n = 0, last_n = 0;
    for (const char *p = list; *p;) {
        unsigned n = (unsigned)strtoul(p, NULL, 10);
        result_t best = {0};
        for (int r = 0; r < repeat; r++) {
            result_t res;
            if (!measure(&ev, n, &res)) {
                fprintf(stderr, "cep-bench: the %u-rule run failed\n", n);
                return 1;
            }
            if (r == 0 || res.seconds < best.seconds) best = res;
        }
        double rate = (double)ev.count / best.seconds;
        printf("%6u %10.1f %10.3f %12.0f %10.0f %10llu %12.1f %10.1f\n", n, best.compile_ms, best.seconds, rate,
               best.seconds * 1e9 / (double)ev.count, (unsigned long long)best.alerts, (double)best.rss_kb / 1024.0,
               (double)(best.rss_kb - best.base_kb) / 1024.0);
        fflush(stdout);
        if (!first_n) first_n = n, first_rate = rate;
        last_n = n, last_rate = rate;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    if (first_n && last_n != first_n)
        printf("T(%u)/T(%u) = %.3f (throughput ratio)\n", last_n, first_n, last_rate / first_rate);
    free(ev.off);
    free(ev.n);
    free(ev.data);
    return 0;
}
