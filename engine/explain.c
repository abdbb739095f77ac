/*
 * explain.c — `cep explain RULE --rules PACK [--dot]`: how a rule runs. The
 * plan as text (source, prefilter, WHERE atoms, grouping, window, sharing,
 * the row pattern with its variables and measures) and, for a row-pattern
 * rule, its NFA as a program listing or as Graphviz DOT.
 */
#include "engine/cli.h"
#include "patterns/match.h"
#include "patterns/plan.h"
#include "patterns/rules.h"

#include <stdio.h>
#include <string.h>

static const char *win_name(cep_window_kind_t k)
{
    switch (k) {
    case CEP_WIN_TUMBLING: return "TUMBLING";
    case CEP_WIN_HOPPING: return "HOPPING";
    case CEP_WIN_SESSION: return "SESSION";
    default: return "none";
    }
}

static const char *skip_name(cep_skip_kind_t k)
{
    switch (k) {
    case CEP_SKIP_NEXT_ROW: return "TO NEXT ROW";
    case CEP_SKIP_TO_FIRST: return "TO FIRST";
    case CEP_SKIP_TO_LAST: return "TO LAST";
    default: return "PAST LAST ROW";
    }
}

static void nfa_listing(FILE *o, const cep_match_plan_t *m)
{
    fprintf(o, "  NFA (%u instructions; SPLIT tries its first target first):\n", m->ncode);
    for (uint32_t i = 0; i < m->ncode; i++) {
        const cep_nfa_insn_t *in = &m->code[i];
        switch (in->op) {
        case NFA_VAR: fprintf(o, "    %3u  VAR   %s\n", i, m->vars[in->x]); break;
        case NFA_SPLIT: fprintf(o, "    %3u  SPLIT %u, %u\n", i, in->x, in->y); break;
        case NFA_JMP: fprintf(o, "    %3u  JMP   %u\n", i, in->x); break;
        case NFA_START: fprintf(o, "    %3u  START (^)\n", i); break;
        case NFA_END: fprintf(o, "    %3u  END ($)\n", i); break;
        case NFA_MATCH: fprintf(o, "    %3u  MATCH\n", i); break;
        }
    }
}

static void dot_escape(FILE *o, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', o);
        fputc(*s, o);
    }
}

static void nfa_dot(FILE *o, const char *rule, const cep_match_plan_t *m)
{
    fprintf(o, "digraph \"");
    dot_escape(o, rule);
    fprintf(o, "\" {\n  rankdir=LR;\n  node [shape=circle, fontname=\"Helvetica\"];\n");
    fprintf(o, "  label=\"");
    dot_escape(o, rule);
    fprintf(o, ": PATTERN (");
    dot_escape(o, m->pattern_text);
    fprintf(o, ")");
    if (m->within_ms) fprintf(o, " WITHIN %lld ms", (long long)m->within_ms);
    if (m->absent_var >= 0) {
        fprintf(o, " NOT FOLLOWED BY ");
        dot_escape(o, m->vars[m->absent_var]);
        fprintf(o, " WITHIN %lld ms", (long long)m->absent_ms);
    }
    fprintf(o, "\";\n  start [shape=point];\n  start -> s0;\n");
    for (uint32_t i = 0; i < m->ncode; i++) {
        const cep_nfa_insn_t *in = &m->code[i];
        switch (in->op) {
        case NFA_VAR:
            fprintf(o, "  s%u [label=\"%u\"];\n  s%u -> s%u [label=\"", i, i, i, i + 1);
            dot_escape(o, m->vars[in->x]);
            if (m->define_text[in->x]) {
                fprintf(o, ": ");
                dot_escape(o, m->define_text[in->x]);
            }
            fprintf(o, "\"];\n");
            break;
        case NFA_SPLIT:
            fprintf(o, "  s%u [label=\"%u\", shape=diamond];\n", i, i);
            fprintf(o, "  s%u -> s%u [style=dashed, label=\"1st\"];\n", i, in->x);
            fprintf(o, "  s%u -> s%u [style=dashed, label=\"2nd\"];\n", i, in->y);
            break;
        case NFA_JMP:
            fprintf(o, "  s%u [label=\"%u\", shape=point];\n  s%u -> s%u [style=dashed];\n", i, i, i, in->x);
            break;
        case NFA_START: fprintf(o, "  s%u [label=\"^\"];\n  s%u -> s%u [style=dashed];\n", i, i, i + 1); break;
        case NFA_END: fprintf(o, "  s%u [label=\"$\"];\n", i); break;
        case NFA_MATCH: fprintf(o, "  s%u [label=\"match\", shape=doublecircle];\n", i); break;
        }
    }
    fprintf(o, "}\n");
}

static void explain_match(FILE *o, const cep_query_t *mq)
{
    const cep_match_plan_t *m = mq->match;
    fprintf(o, "  MATCH_RECOGNIZE over %s, standard (Trino) semantics: greedy loops give rows back "
               "(Flink's do not), `?` prefers taking the row\n",
            m->from->name);
    fprintf(o, "  partition by:");
    for (uint32_t i = 0; i < m->npartition; i++) fprintf(o, " %s", m->partition[i]->text);
    if (!m->npartition) fprintf(o, " (one partition)");
    fprintf(o, "\n  order by: event time");
    for (uint32_t i = 0; i < m->norder; i++) fprintf(o, ", %s", m->order[i]->text);
    fprintf(o, "\n  pattern: (%s)", m->pattern_text);
    if (m->within_ms) fprintf(o, " WITHIN %lld ms", (long long)m->within_ms);
    if (m->absent_var >= 0)
        fprintf(o, " NOT FOLLOWED BY %s WITHIN %lld ms", m->vars[m->absent_var], (long long)m->absent_ms);
    fprintf(o, "\n  after match skip: %s", skip_name(m->skip));
    if (m->skip == CEP_SKIP_TO_FIRST || m->skip == CEP_SKIP_TO_LAST)
        for (uint32_t v = 0; v < m->nvars; v++)
            if (m->skip_vars >> v & 1) fprintf(o, " %s", m->vars[v]);
    fprintf(o, "\n  variables:\n");
    for (uint32_t v = 0; v < m->nvars; v++)
        fprintf(o, "    %-12s %s\n", m->vars[v], m->define_text[v] ? m->define_text[v] : "TRUE (no DEFINE)");
    fprintf(o, "  measures:\n");
    for (uint32_t i = 0; i < m->nmeasures; i++) fprintf(o, "    %-20s %s\n", m->measure_names[i], m->measure_text[i]);
    fprintf(o, "  navigations and aggregates read from the match: %u; PREV history: %u rows; runs per partition capped at %u\n",
            m->nnavs, m->max_prev, m->max_runs);
    nfa_listing(o, m);
}

int cep_cli_explain(int argc, char **argv)
{
    const char *rule = NULL, *pack = NULL;
    bool dot = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rules") && i + 1 < argc) pack = argv[++i];
        else if (!strcmp(argv[i], "--dot")) dot = true;
        else if (argv[i][0] != '-' && !rule) rule = argv[i];
        else {
            rule = NULL;
            break;
        }
    }
    if (!rule || !pack) {
        fprintf(stderr, "usage: cep explain RULE --rules PACK [--dot]\n");
        return 2;
    }
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile_path(pack, NULL, &rs, &err)) {
        char buf[1024];
        fprintf(stderr, "%s\n", cep_error_format(&err, buf, sizeof buf));
        return 1;
    }
    const cep_query_t *q = NULL, *mq = NULL;
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        const cep_query_t *x = rs->queries[i];
        if (!x->internal && cep_str_ieq(rule, strlen(rule), x->name)) q = x;
    }
    if (!q) {
        fprintf(stderr, "cep explain: no rule named %s in %s\n", rule, pack);
        cep_ruleset_free(rs);
        return 1;
    }
    if (q->from && !q->from->is_source)
        for (uint32_t i = 0; i < rs->nqueries; i++)
            if (rs->queries[i]->kind == CEP_Q_MATCH && rs->queries[i]->sink == q->from) mq = rs->queries[i];
    if (dot) {
        if (!mq) {
            fprintf(stderr, "cep explain: %s has no row pattern to draw\n", q->name);
            cep_ruleset_free(rs);
            return 1;
        }
        nfa_dot(stdout, q->name, mq->match);
        cep_ruleset_free(rs);
        return 0;
    }
    FILE *o = stdout;
    fprintf(o, "rule %s (version %08llx)\n", q->name, (unsigned long long)(q->fingerprint & 0xffffffffULL));
    if (q->meta.severity) fprintf(o, "  severity: %s\n", q->meta.severity);
    if (q->meta.owner) fprintf(o, "  owner: %s\n", q->meta.owner);
    if (q->meta.description) fprintf(o, "  description: %s\n", q->meta.description);
    const cep_stream_t *src = mq ? mq->from : q->from;
    fprintf(o, "  reads: %s (topic %s)\n", src->name, src->topic ? src->topic : "-");
    fprintf(o, "  writes: %s (topic %s)\n", q->sink->name, q->sink->topic ? q->sink->topic : "-");
    if (mq) explain_match(o, mq);
    fprintf(o, "  %s", q->kind == CEP_Q_AGGREGATE ? "aggregation" : mq ? "projection of each match" : "projection");
    fprintf(o, "%s\n", q->nwhere ? ", WHERE:" : "");
    for (uint32_t i = 0; i < q->nwhere; i++) {
        uint32_t a = q->where_atoms[i];
        fprintf(o, "    atom %u: %s\n", a, q->from->atoms[a]->text ? q->from->atoms[a]->text : "?");
    }
    if (q->kind == CEP_Q_AGGREGATE) {
        fprintf(o, "  group by:");
        for (uint32_t i = 0; i < q->ngroup; i++) fprintf(o, " %s", q->group[i]->text);
        fprintf(o, "\n  window: %s", win_name(q->win.kind));
        if (q->win.kind == CEP_WIN_SESSION) fprintf(o, " gap %lld ms", (long long)q->win.gap);
        else if (q->win.kind != CEP_WIN_NONE)
            fprintf(o, " size %lld ms advance %lld ms", (long long)q->win.size, (long long)q->win.advance);
        if (q->win.kind != CEP_WIN_NONE) fprintf(o, ", grace %lld ms", (long long)q->win.grace);
        fprintf(o, ", EMIT %s\n", q->emit_final ? "FINAL" : "CHANGES");
        if (q->having) fprintf(o, "  having: %s\n", q->having->text);
        if (q->share)
            fprintf(o, "  shares its state with %u rule(s) of the same source, WHERE, grouping and window (%u aggregates)\n",
                    q->share->nmembers - 1, q->share->nspecs);
    }
    cep_ruleset_free(rs);
    return 0;
}
