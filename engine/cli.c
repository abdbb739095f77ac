/*
 * cli.c — `cep check` and `cep run` (file and stdin sources, file and
 * stdout sinks, a dead-letter file for events that cannot be decoded).
 */
#include "engine/cli.h"
#include "engine/output.h"
#include "engine/runtime.h"
#include "patterns/plan.h"

#include <stdio.h>
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
    const cep_query_t *q;
    uint64_t alerts, tombstones;
} rule_count_t;

typedef struct run_sink {
    FILE *out;
    cep_buf_t line;
    uint64_t alerts;
    rule_count_t *per_rule; /* --summary: one slot per query, in pack order */
    uint32_t nrules;
} run_sink_t;

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
        fprintf(stderr, "%-36s %-9s %10llu %10llu\n", q->name, q->meta.severity ? q->meta.severity : "-",
                (unsigned long long)s->per_rule[i].alerts, (unsigned long long)s->per_rule[i].tombstones);
    }
}

static void dead_letter(FILE *f, const char *source, uint64_t line, const cep_error_t *err, const char *raw,
                        size_t n)
{
    if (!f) return;
    cep_buf_t b;
    cep_buf_init(&b);
    cep_buf_puts(&b, "{\"reason\":");
    cep_buf_put_json_str(&b, err->msg, strlen(err->msg));
    cep_buf_puts(&b, ",\"source\":");
    cep_buf_put_json_str(&b, source, strlen(source));
    cep_buf_printf(&b, ",\"line\":%llu,\"offset\":%u,\"raw\":", (unsigned long long)line, err->pos.offset);
    cep_buf_put_json_str(&b, raw, n);
    cep_buf_puts(&b, "}\n");
    fwrite(b.data, 1, b.len, f);
    cep_buf_free(&b);
}

int cep_cli_run(int argc, char **argv)
{
    const char *rules = NULL, *input = "-", *output = "-", *dlq = NULL, *topic = NULL;
    bool summary = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--rules") && v) rules = v, i++;
        else if (!strcmp(a, "--input") && v) input = v, i++;
        else if (!strcmp(a, "--output") && v) output = v, i++;
        else if (!strcmp(a, "--dead-letters") && v) dlq = v, i++;
        else if (!strcmp(a, "--topic") && v) topic = v, i++;
        else if (!strcmp(a, "--summary")) summary = true;
        else {
            fprintf(stderr, "usage: cep run --rules PACK [--input FILE|-] [--output FILE|-] "
                            "[--dead-letters FILE] [--topic T] [--summary]\n");
            return 2;
        }
    }
    if (!rules) {
        fprintf(stderr, "cep run: --rules PACK is required\n");
        return 2;
    }
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile_path(rules, NULL, &rs, &err)) {
        char buf[1024];
        fprintf(stderr, "%s\n", cep_error_format(&err, buf, sizeof buf));
        return 1;
    }
    /* a file holds the events of one topic: --topic, else the first source stream's */
    if (!topic)
        for (uint32_t i = 0; i < rs->nstreams && !topic; i++)
            if (rs->streams[i]->is_source) topic = rs->streams[i]->topic;
    if (!topic) {
        fprintf(stderr, "cep run: the pack declares no source stream\n");
        cep_ruleset_free(rs);
        return 1;
    }
    FILE *in = strcmp(input, "-") ? fopen(input, "r") : stdin;
    FILE *out = strcmp(output, "-") ? fopen(output, "w") : stdout;
    FILE *dl = dlq ? fopen(dlq, "w") : NULL;
    if (!in || !out || (dlq && !dl)) {
        fprintf(stderr, "cep run: cannot open %s\n", !in ? input : !out ? output : dlq);
        cep_ruleset_free(rs);
        return 1;
    }
    run_sink_t sink = {.out = out};
    cep_buf_init(&sink.line);
    if (summary && (sink.per_rule = calloc(rs->nqueries + 1, sizeof *sink.per_rule)))
        for (uint32_t i = 0; i < rs->nqueries; i++)
            if (!rs->queries[i]->internal) sink.per_rule[sink.nrules++].q = rs->queries[i];
    cep_runtime_t *rt = cep_runtime_new(rs, write_alert, &sink);
    if (!rt) {
        fprintf(stderr, "cep run: out of memory\n");
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0, bad = 0;
    while ((n = getline(&line, &cap, in)) > 0) {
        lineno++;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
        if (!n) continue;
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
    free(sink.per_rule);
    cep_runtime_free(rt);
    cep_buf_free(&sink.line);
    cep_ruleset_free(rs);
    if (in != stdin) fclose(in);
    if (out != stdout) fclose(out);
    if (dl) fclose(dl);
    return 0;
}
