/*
 * cli.c — `cep check` and `cep run` (file and stdin sources, file and
 * stdout sinks, a dead-letter file for events that cannot be decoded).
 */
#include "engine/cli.h"
#include "engine/checkpoint.h"
#include "engine/kafka.h"
#include "engine/output.h"
#include "engine/reload.h"
#include "engine/runtime.h"
#include "patterns/plan.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

int cep_cli_check(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: cep check PACK...\n");
        return 2;
    }
    int bad = 0;
    for (int i = 1; i < argc; i++) {
        cep_ruleset_t *rs = NULL;
        cep_error_t err;
        cep_error_clear(&err);
        if (cep_rules_compile_path(argv[i], NULL, &rs, &err)) {
            char buf[1024];
            fprintf(stderr, "%s\n", cep_error_format(&err, buf, sizeof buf));
            bad = 1;
            continue;
        }
        printf("%s: ok (%u streams, %u rules)\n", argv[i], cep_ruleset_stream_count(rs),
               cep_ruleset_query_count(rs));
        cep_ruleset_free(rs);
    }
    return bad;
}

typedef struct rule_count {
    char *name;
    const cep_query_t *q; /* NULL once a reload removed the rule */
    uint64_t alerts, tombstones;
} rule_count_t;

typedef struct run_sink {
    FILE *out;
    cep_buf_t line;
    uint64_t alerts;
    rule_count_t *per_rule; /* --summary: one slot per rule, in pack order, then removed rules */
    uint32_t nrules;
} run_sink_t;

/* The summary's rows for a new version: counts go on by rule name. */
static void summary_follow(run_sink_t *s, const cep_ruleset_t *rs)
{
    uint32_t cap = s->nrules + rs->nqueries + 1;
    rule_count_t *n = calloc(cap, sizeof *n);
    if (!n) return; /* the old rows stay: counts of changed rules go to nobody */
    uint32_t k = 0;
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        const cep_query_t *q = rs->queries[i];
        if (q->internal) continue;
        n[k].q = q;
        for (uint32_t j = 0; j < s->nrules; j++)
            if (s->per_rule[j].name && !strcmp(s->per_rule[j].name, q->name)) {
                n[k] = s->per_rule[j];
                n[k].q = q;
                s->per_rule[j].name = NULL;
            }
        if (!n[k].name && !(n[k].name = strdup(q->name))) continue;
        k++;
    }
    for (uint32_t j = 0; j < s->nrules; j++)
        if (s->per_rule[j].name) {
            n[k] = s->per_rule[j];
            n[k++].q = NULL;
        }
    free(s->per_rule);
    s->per_rule = n;
    s->nrules = k;
}

static void summary_free(run_sink_t *s)
{
    for (uint32_t i = 0; i < s->nrules; i++) free(s->per_rule[i].name);
    free(s->per_rule);
}

static void write_alert(void *ctx, const cep_output_t *o)
{
    run_sink_t *s = ctx;
    /* derived streams that feed other rules are not alerts themselves
     * unless something reads them off a topic; write every rule's rows */
    cep_buf_reset(&s->line);
    cep_output_alert_line(o, &s->line);
    cep_buf_putc(&s->line, '\n');
    fwrite(s->line.data, 1, s->line.len, s->out);
    s->alerts++;
    for (uint32_t i = 0; i < s->nrules; i++)
        if (s->per_rule[i].q == o->query) {
            if (o->tombstone) s->per_rule[i].tombstones++;
            else s->per_rule[i].alerts++;
        }
}

static void print_summary(const run_sink_t *s)
{
    fprintf(stderr, "%-36s %-9s %10s %10s\n", "rule", "severity", "alerts", "retracted");
    for (uint32_t i = 0; i < s->nrules; i++) {
        const cep_query_t *q = s->per_rule[i].q;
        fprintf(stderr, "%-36s %-9s %10llu %10llu%s\n", s->per_rule[i].name,
                !q ? "(removed)" : q->meta.severity ? q->meta.severity : "-",
                (unsigned long long)s->per_rule[i].alerts, (unsigned long long)s->per_rule[i].tombstones,
                q && q->meta.shadow ? "  shadow" : "");
    }
}

static void dead_letter(FILE *f, const char *source, uint64_t line, const cep_error_t *err, const char *raw,
                        size_t n)
{
    if (!f) return;
    cep_buf_t b;
    cep_buf_init(&b);
    cep_output_dead_letter_line(source, line, err, raw, n, &b);
    cep_buf_putc(&b, '\n');
    fwrite(b.data, 1, b.len, f);
    cep_buf_free(&b);
}

static int run_kafka(const char *rules, const char *bootstrap, cep_kafka_run_opts_t *o, bool reload,
                     const cep_reload_opts_t *ro);

/* Read key=value lines (blank lines and # comments skipped) into props. */
static bool read_properties(const char *path, const char **props, size_t *n, size_t cap, char **buf)
{
    size_t len;
    cep_error_t err;
    cep_error_clear(&err);
    if (*buf) {
        fprintf(stderr, "cep run: one --kafka-config file\n");
        return false;
    }
    if (cep_file_read(path, buf, &len, &err)) {
        fprintf(stderr, "cep run: %s\n", err.msg);
        return false;
    }
    unsigned lineno = 0;
    for (char *line = *buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        lineno++;
        while (*line == ' ' || *line == '\t') line++;
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
        if (*line && *line != '#') {
            if (!strchr(line, '=')) {
                fprintf(stderr, "%s:%u: expected key=value\n", path, lineno);
                return false;
            }
            if (*n == cap) {
                fprintf(stderr, "%s:%u: too many settings\n", path, lineno);
                return false;
            }
            props[(*n)++] = line;
        }
        line = nl ? nl + 1 : NULL;
    }
    return true;
}

/* The pack, or NULL after printing its first error with file:line:col. */
static cep_ruleset_t *compile_or_say(const char *rules, const cep_lineage_t *lineage)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cep_compile_opts_t co;
    cep_compile_opts_init(&co);
    co.lineage = lineage;
    if (cep_rules_compile_path(rules, &co, &rs, &err)) {
        char buf[1024];
        fprintf(stderr, "%s\n", cep_error_format(&err, buf, sizeof buf));
        return NULL;
    }
    return rs;
}

int cep_cli_run(int argc, char **argv)
{
    const char *kafka = NULL, *group = NULL, *state = NULL;
    int checkpoint_ms = 0;
    long max_unsaved = 0;
    const char *props[64];
    size_t nprops = 0;
    int idle_ms = 0;
    char *propbuf = NULL; /* the properties file's text; props point into it */
    const char *rules = NULL, *input = "-", *output = "-", *dlq = NULL, *topic = NULL;
    bool summary = false;
    cep_reload_opts_t ro = {.watch = true};
    bool reload = true;
    int64_t warm_ms = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--rules") && v) rules = v, i++;
        else if (!strcmp(a, "--input") && v) input = v, i++;
        else if (!strcmp(a, "--output") && v) output = v, i++;
        else if (!strcmp(a, "--dead-letters") && v) dlq = v, i++;
        else if (!strcmp(a, "--topic") && v) topic = v, i++;
        else if (!strcmp(a, "--summary")) summary = true;
        else if (!strcmp(a, "--kafka") && v) kafka = v, i++;
        else if (!strcmp(a, "--group") && v) group = v, i++;
        else if (!strcmp(a, "-X") && v && nprops < 64) props[nprops++] = v, i++;
        else if (!strcmp(a, "--kafka-config") && v) {
            /* a librdkafka properties file (SASL/TLS): key=value lines, # comments */
            if (!read_properties(v, props, &nprops, 64, &propbuf)) return 2;
            i++;
        }
        else if (!strcmp(a, "--idle-exit-ms") && v) idle_ms = atoi(v), i++;
        else if (!strcmp(a, "--state") && v) state = v, i++;
        else if (!strcmp(a, "--checkpoint-ms") && v) checkpoint_ms = atoi(v), i++;
        else if (!strcmp(a, "--checkpoint-max-lag") && v) max_unsaved = atol(v), i++;
        else if (!strcmp(a, "--no-reload")) reload = false;
        else if (!strcmp(a, "--no-watch")) ro.watch = false;
        else if (!strcmp(a, "--reload-debounce-ms") && v) ro.debounce_ms = atoi(v), i++;
        else if (!strcmp(a, "--reload-bootstrap") && v) {
            /* new and reset rules of every reload warm up from history (engine/bootstrap.h) */
            if (!strcmp(v, "window")) warm_ms = CEP_BOOTSTRAP_WINDOW;
            else if (!strcmp(v, "off")) warm_ms = 0;
            else if (!cep_parse_duration(v, &warm_ms) || warm_ms <= 0) {
                fprintf(stderr, "cep run: --reload-bootstrap takes 'window', 'off' or a duration such as 2h: '%s'\n", v);
                return 2;
            }
            i++;
        } else {
            fprintf(stderr, "usage: cep run --rules PACK [--input FILE|-] [--output FILE|-] "
                            "[--dead-letters FILE] [--topic T] [--summary]\n"
                            "       cep run --rules PACK --kafka BOOTSTRAP|embedded [--group G] [-X key=value]... "
                            "[--kafka-config FILE]\n"
                            "               [--state memory|redis://[:password@]host:port[/db]] [--checkpoint-ms MS] "
                            "[--idle-exit-ms MS] [--summary]\n"
                            "       hot reload (on by default): [--no-reload] [--no-watch] [--reload-debounce-ms MS]\n"
                            "               [--reload-bootstrap window|DURATION|off]\n");
            return 2;
        }
    }
    if (!rules) {
        fprintf(stderr, "cep run: --rules PACK is required\n");
        return 2;
    }
    if (kafka) {
        cep_kafka_run_opts_t ko = {.group = group,
                                   .props = props,
                                   .nprops = nprops,
                                   .idle_exit_ms = idle_ms,
                                   .summary = summary,
                                   .state_url = state,
                                   .checkpoint_ms = checkpoint_ms,
                                   .max_unsaved = max_unsaved > 0 ? (uint64_t)max_unsaved : 0,
                                   .reload_bootstrap_ms = warm_ms};
        int rc = run_kafka(rules, kafka, &ko, reload, &ro);
        free(propbuf);
        return rc;
    }
    free(propbuf);
    cep_error_t err;
    cep_error_clear(&err);
    cep_ruleset_t *rs = compile_or_say(rules, NULL);
    if (!rs) return 1;
    /* a file holds the events of one topic: --topic, else the first source stream's */
    if (!topic)
        for (uint32_t i = 0; i < rs->nstreams && !topic; i++)
            if (rs->streams[i]->is_source) topic = rs->streams[i]->topic;
    if (!topic) {
        fprintf(stderr, "cep run: the pack declares no source stream\n");
        cep_ruleset_free(rs);
        return 1;
    }
    /* the topic outlives this version of the pack (hot reload frees it) */
    char *topic_copy = strdup(topic);
    topic = topic_copy;
    if (!topic) {
        fprintf(stderr, "cep run: out of memory\n");
        cep_ruleset_free(rs);
        return 1;
    }
    FILE *in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    FILE *out = strcmp(output, "-") ? fopen(output, "w") : stdout;
    FILE *dl = dlq ? fopen(dlq, "w") : NULL;
    if (!in || !out || (dlq && !dl)) {
        fprintf(stderr, "cep run: cannot open %s\n", !in ? input : !out ? output : dlq);
        cep_ruleset_free(rs);
        free(topic_copy);
        return 1;
    }
    run_sink_t sink = {.out = out};
    cep_buf_init(&sink.line);
    if (summary) summary_follow(&sink, rs);
    cep_runtime_t *rt = cep_runtime_new(rs, write_alert, &sink);
    if (!rt) {
        fprintf(stderr, "cep run: out of memory\n");
        return 1;
    }
    /* hot reload: the reloader owns the versions from here on */
    cep_reloader_t *rl = NULL;
    if (reload && cep_reloader_new(rules, rs, &ro, &rl, &err)) {
        fprintf(stderr, "cep run: hot reload off: %s\n", err.msg);
        rl = NULL;
    }
    if (rl) cep_reloader_trap_sighup(rl);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, bad = 0;
    while ((n = getline(&line, &cap, in)) > 0) {
        lineno++;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (!n) continue;
        if (rl && cep_reloader_ready(rl)) {
            char pos[64];
            snprintf(pos, sizeof pos, "line %llu", (unsigned long long)lineno);
            rs = (cep_ruleset_t *)cep_reloader_apply(rl, rt, pos, NULL);
            if (summary) summary_follow(&sink, rs);
        }
        cep_record_t r = {.topic = topic, .value = line, .vlen = (size_t)n, .offset = (int64_t)lineno,
                          .source = input, .line = lineno};
        cep_error_t de;
        cep_error_clear(&de);
        if (cep_runtime_push(rt, &r, &de)) {
            bad++;
            /* without a dead-letter file the first few reasons go to stderr; the rest are counted */
            if (!dl && bad <= 10) fprintf(stderr, "%s:%llu: %s\n", input, (unsigned long long)lineno, de.msg);
            if (!dl && bad == 10) fprintf(stderr, "cep run: more bad events are counted, not shown (see --dead-letters)\n");
            dead_letter(dl, input, lineno, &de, line, (size_t)n);
        }
    }
    free(line);
    cep_runtime_finish(rt); /* the end of the file is the end of input: pattern time-outs fire */
    const char *rterr = cep_runtime_error(rt);
    if (rterr) fprintf(stderr, "cep run: a rule stopped: %s\n", rterr);
    fflush(out);
    fprintf(stderr, "cep run: %llu events, %llu alerts, %llu dead letters\n", (unsigned long long)lineno,
            (unsigned long long)sink.alerts, (unsigned long long)bad);
    if (summary) print_summary(&sink);
    if (rl) {
        cep_reload_stats_t rst;
        cep_reloader_stats(rl, &rst);
        if (rst.requests)
            fprintf(stderr, "cep run: %llu reloads applied, %llu versions did not compile\n",
                    (unsigned long long)rst.applied, (unsigned long long)rst.failed);
        cep_reloader_trap_sighup(NULL);
    }
    summary_free(&sink);
    cep_runtime_free(rt);
    cep_buf_free(&sink.line);
    if (rl) cep_reloader_free(rl); /* and every version */
    else cep_ruleset_free(rs);
    free(topic_copy);
    if (in != stdin) fclose(in);
    if (out != stdout) fclose(out);
    if (dl) fclose(dl);
    return 0;
}

/* ---- Kafka: `cep broker`, `cep consume`, `cep run --kafka` ------------------- */

static volatile int stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void trap_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cep_cli_broker(int argc, char **argv)
{
    int partitions = 1, port = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--partitions") && i + 1 < argc) partitions = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--port") && i + 1 < argc) port = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: cep broker [--port P] [--partitions N]\n");
            return 2;
        }
    }
    cep_kafka_broker_t *b = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_kafka_broker_new(partitions, &b, &err)) {
        fprintf(stderr, "cep broker: %s\n", err.msg);
        return 1;
    }
    if (port >= 0 && cep_kafka_broker_listen(b, port, &err)) {
        fprintf(stderr, "cep broker: %s\n", err.msg);
        cep_kafka_broker_free(b);
        return 1;
    }
    trap_signals();
    printf("%s\n", cep_kafka_broker_bootstrap(b));
    fflush(stdout);
    fprintf(stderr, "cep broker: Kafka protocol endpoint on %s (%d partitions per topic); Ctrl-C stops it\n",
            cep_kafka_broker_bootstrap(b), partitions);
    while (!stop_requested) {
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, NULL);
    }
    cep_kafka_broker_free(b);
    return 0;
}

/* Print the records of a topic (value, with the alert headers) until idle. */
int cep_cli_consume(int argc, char **argv)
{
    const char *bootstrap = NULL, *topic = NULL;
    long max = -1;
    int idle_ms = 3000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--kafka") && v) bootstrap = v, i++;
        else if (!strcmp(a, "--topic") && v) topic = v, i++;
        else if (!strcmp(a, "--max") && v) max = atol(v), i++;
        else if (!strcmp(a, "--idle-exit-ms") && v) idle_ms = atoi(v), i++;
        else bootstrap = NULL, topic = NULL, i = argc;
    }
    if (!bootstrap || !topic) {
        fprintf(stderr, "usage: cep consume --kafka BOOTSTRAP --topic T [--max N] [--idle-exit-ms MS]\n");
        return 2;
    }
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char group[64];
    snprintf(group, sizeof group, "cep-consume-%ld", (long)getpid());
    if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, errstr, sizeof errstr) ||
        rd_kafka_conf_set(c, "group.id", group, errstr, sizeof errstr) ||
        rd_kafka_conf_set(c, "auto.offset.reset", "earliest", errstr, sizeof errstr) ||
        rd_kafka_conf_set(c, "enable.partition.eof", "true", errstr, sizeof errstr)) {
        fprintf(stderr, "cep consume: %s\n", errstr);
        rd_kafka_conf_destroy(c);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "cep consume: %s\n", errstr);
        return 1;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    trap_signals();
    long n = 0;
    uint64_t last = cep_now_ns();
    bool eof = false;
    while (!stop_requested && (max < 0 || n < max)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            if (eof && cep_now_ns() - last > (uint64_t)idle_ms * 1000000ULL) break;
            continue;
        }
        if (m->err) {
            eof |= m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
            rd_kafka_message_destroy(m);
            continue;
        }
        last = cep_now_ns();
        rd_kafka_headers_t *h = NULL;
        const void *rule = NULL, *sev = NULL;
        size_t rn = 0, sn = 0;
        if (!rd_kafka_message_headers(m, &h)) {
            rd_kafka_header_get_last(h, "rule", &rule, &rn);
            rd_kafka_header_get_last(h, "severity", &sev, &sn);
        }
        printf("[%.*s %.*s] key=%.*s value=%.*s\n", (int)rn, rule ? (const char *)rule : "", (int)sn,
               sev ? (const char *)sev : "", (int)m->key_len, m->key ? (const char *)m->key : "", (int)m->len,
               m->payload ? (const char *)m->payload : "null");
        n++;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    fprintf(stderr, "cep consume: %ld records from %s\n", n, topic);
    return 0;
}

static int run_kafka(const char *rules, const char *bootstrap, cep_kafka_run_opts_t *o, bool reload,
                     const cep_reload_opts_t *ro)
{
    cep_error_t err;
    cep_error_clear(&err);
    /* with durable state, plan the pack as the instance that saved it did */
    cep_lineage_t lineage = {0};
    bool has_lineage = false;
    char ns[256];
    snprintf(ns, sizeof ns, "%s", o->state_ns ? o->state_ns : "");
    if (!o->state_ns) snprintf(ns, sizeof ns, "cep:%s", o->group ? o->group : "cep");
    if (o->state_url && strcmp(o->state_url, "memory") &&
        cep_ckpt_load_lineage(o->state_url, ns, &lineage, &has_lineage, &err)) {
        fprintf(stderr, "cep run: %s\n", err.msg);
        return 1;
    }
    cep_ruleset_t *rs = compile_or_say(rules, has_lineage ? &lineage : NULL);
    cep_lineage_free(&lineage);
    if (!rs) return 1;
    cep_reloader_t *rl = NULL;
    if (reload && cep_reloader_new(rules, rs, ro, &rl, &err)) {
        fprintf(stderr, "cep run: hot reload off: %s\n", err.msg);
        cep_error_clear(&err);
        rl = NULL;
    }
    if (rl) cep_reloader_trap_sighup(rl);
    o->reloader = rl;
    cep_kafka_broker_t *b = NULL;
    if (!strcmp(bootstrap, "embedded")) {
        if (cep_kafka_broker_new(1, &b, &err)) {
            fprintf(stderr, "cep run: %s\n", err.msg);
            cep_ruleset_free(rs);
            return 1;
        }
        bootstrap = cep_kafka_broker_bootstrap(b);
        fprintf(stderr, "cep run: embedded broker on %s\n", bootstrap);
    }
    trap_signals();
    o->bootstrap = bootstrap;
    o->stop = &stop_requested;
    cep_kafka_run_stats_t st;
    cep_status_t rc = cep_kafka_run(rs, o, &st, &err);
    fprintf(stderr, "cep run: %llu records, %llu alerts, %llu dead letters", (unsigned long long)st.records,
            (unsigned long long)st.alerts, (unsigned long long)st.dead_letters);
    if (st.rekeyed) fprintf(stderr, ", %llu re-keyed records", (unsigned long long)st.rekeyed);
    fputc('\n', stderr);
    if (o->state_url && strcmp(o->state_url, "memory"))
        fprintf(stderr, "cep run: state: %llu checkpoints (%llu failed), %llu tasks restored with %llu entries, "
                        "%llu Redis commands\n",
                (unsigned long long)st.checkpoints, (unsigned long long)st.checkpoint_failures,
                (unsigned long long)st.restored_tasks, (unsigned long long)st.restored_entries,
                (unsigned long long)st.redis_commands);
    if (st.records > 1) {
        double sec = (double)(st.last_ns - st.first_ns) / 1e9;
        fprintf(stderr, "cep run: first to last record %.3f s, %.0f records/s\n", sec,
                sec > 0 ? (double)(st.records - 1) / sec : 0.0);
    }
    if (rc) fprintf(stderr, "cep run: %s\n", err.msg);
    cep_kafka_broker_free(b);
    if (rl) {
        cep_reloader_trap_sighup(NULL);
        cep_reloader_free(rl); /* and every version */
    } else
        cep_ruleset_free(rs);
    return rc ? 1 : 0;
}
