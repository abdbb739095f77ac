/*
 * binder.c — from syntax tree to compiled rule set: resolves names to
 * slots, checks types, compiles expressions to programs, extracts
 * aggregates, derives each sink's schema, splits WHERE clauses into shared
 * atoms and builds the per-stream prefilter.
 *
 * Name resolution has two contexts. In a row context (WHERE, GROUP BY,
 * aggregate arguments, stream projections) a column is a slot of the source
 * row. In an aggregate context (the projection and HAVING of a GROUP BY) an
 * expression must be a GROUP BY expression, an aggregate call, a window
 * bound, or built from those; it compiles against the aggregate row.
 */
#include "patterns/plan.h"
#include "patterns/match.h"
#include "patterns/rules.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

bool cep_value_cast(const cep_value_t *v, const cep_type_t *t, cep_arena_t *a, cep_value_t *out);

typedef struct binder {
    cep_ruleset_t *rs;
    cep_arena_t *a; /* the rule set's arena */
    const cep_compile_opts_t *opts;
    cep_error_t *err;
    bool failed;
    /* stream list being built */
    cep_stream_t **streams;
    uint32_t nstreams, cap_streams;
    cep_query_t **queries;
    uint32_t nqueries, cap_queries;
} binder_t;

typedef enum ctx_kind { CTX_ROW, CTX_AGG } ctx_kind_t;

typedef struct qctx {
    ctx_kind_t kind;
    cep_stream_t *from;
    const char *alias;
    bool windowed; /* WINDOWSTART/WINDOWEND allowed */
    /* aggregate context */
    cep_ast_t **group;
    uint32_t ngroup;
    cep_ast_t **aggs; /* distinct aggregate calls found so far */
    uint32_t naggs, cap_aggs;
    const char *clause; /* "SELECT", "HAVING", ... for messages */
} qctx_t;

static bool failf(binder_t *b, const cep_pos_t *pos, cep_status_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool failf(binder_t *b, const cep_pos_t *pos, cep_status_t code, const char *fmt, ...)
{
    if (b->failed) return false;
    b->failed = true;
    va_list ap;
    va_start(ap, fmt);
    cep_error_vset(b->err, code, pos, fmt, ap);
    va_end(ap);
    return false;
}

static void *balloc(binder_t *b, size_t n)
{
    void *p = cep_arena_zalloc(b->a, n);
    if (!p) failf(b, NULL, CEP_ERR_NOMEM, "out of memory");
    return p;
}

static const char *type_name(binder_t *b, const cep_type_t *t)
{
    cep_buf_t buf;
    cep_buf_init(&buf);
    cep_type_format(t, &buf);
    const char *s = cep_arena_strndup(b->a, buf.data ? buf.data : "", buf.len);
    cep_buf_free(&buf);
    return s ? s : "?";
}

static const char *expr_text(binder_t *b, const cep_ast_t *e)
{
    cep_buf_t buf;
    cep_buf_init(&buf);
    cep_ast_format(e, &buf);
    const char *s = cep_arena_strndup(b->a, buf.data ? buf.data : "", buf.len);
    cep_buf_free(&buf);
    return s ? s : "?";
}

/* ---- streams ------------------------------------------------------------ */

static cep_stream_t *find_stream(binder_t *b, const char *name)
{
    for (uint32_t i = 0; i < b->nstreams; i++)
        if (!strcmp(b->streams[i]->name, name)) return b->streams[i];
    return NULL;
}

static bool add_stream(binder_t *b, cep_stream_t *s)
{
    if (b->nstreams == b->cap_streams) {
        uint32_t cap = b->cap_streams ? b->cap_streams * 2 : 8;
        cep_stream_t **n = balloc(b, cap * sizeof *n);
        if (!n) return false;
        if (b->nstreams) memcpy(n, b->streams, b->nstreams * sizeof *n);
        b->streams = n;
        b->cap_streams = cap;
    }
    s->id = b->nstreams;
    b->streams[b->nstreams++] = s;
    return true;
}

static bool add_query(binder_t *b, cep_query_t *q)
{
    if (b->nqueries == b->cap_queries) {
        uint32_t cap = b->cap_queries ? b->cap_queries * 2 : 8;
        cep_query_t **n = balloc(b, cap * sizeof *n);
        if (!n) return false;
        if (b->nqueries) memcpy(n, b->queries, b->nqueries * sizeof *n);
        b->queries = n;
        b->cap_queries = cap;
    }
    q->id = b->nqueries;
    b->queries[b->nqueries++] = q;
    return true;
}

static int find_col(const cep_stream_t *s, const char *name)
{
    for (uint32_t i = 0; i < s->ncols; i++)
        if (!strcmp(s->cols[i].name, name)) return (int)i;
    return -1;
}

/* Edit distance for "did you mean" suggestions. */
static int edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return 99;
    int d[65][65];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int c = toupper((unsigned char)a[i - 1]) != toupper((unsigned char)b[j - 1]);
            int x = d[i - 1][j] + 1, y = d[i][j - 1] + 1, z = d[i - 1][j - 1] + c;
            d[i][j] = x < y ? (x < z ? x : z) : (y < z ? y : z);
        }
    return d[la][lb];
}

static const char *suggest_col(const cep_stream_t *s, const char *name)
{
    const char *best = NULL;
    int bd = 3;
    for (uint32_t i = 0; i < s->ncols; i++) {
        int d = edit_distance(name, s->cols[i].name);
        if (d < bd) bd = d, best = s->cols[i].name;
    }
    return best;
}

static const char *prop_str(const cep_ast_prop_t *p)
{
    if (p->value->kind == AST_LITERAL && p->value->lit.kind == CEP_K_STRING) return p->value->lit.u.s.p;
    return NULL;
}

static bool parse_format(binder_t *b, const cep_ast_prop_t *p, cep_format_t *out)
{
    const char *v = prop_str(p);
    if (!v) return failf(b, &p->pos, CEP_ERR_SEMANTIC, "%s must be a string", p->name);
    if (!strcasecmp(v, "JSON")) *out = CEP_FMT_JSON;
    else if (!strcasecmp(v, "DELIMITED")) *out = CEP_FMT_DELIMITED;
    else if (!strcasecmp(v, "KAFKA")) *out = CEP_FMT_KAFKA;
    else if (!strcasecmp(v, "NONE")) *out = CEP_FMT_NONE;
    else
        return failf(b, &p->value->pos, CEP_ERR_UNSUPPORTED,
                     "unsupported format '%s' (cep reads JSON, DELIMITED, KAFKA and NONE)", v);
    return true;
}

typedef struct props {
    const char *topic;
    bool has_key_format, has_value_format;
    cep_format_t key_format, value_format;
    bool has_wrap, wrap;
    const char *timestamp, *timestamp_format;
    cep_window_kind_t window_type;
    int64_t window_size;
    cep_rule_meta_t meta;
    const cep_ast_prop_t *timestamp_prop;
    const char *msg_key; /* KEY='col': the value column the message key carries */
    const cep_ast_prop_t *msg_key_prop;
    int64_t max_runs; /* MATCH_RECOGNIZE: live runs per partition (0 = default) */
} props_t;

static bool read_props(binder_t *b, const cep_ast_stmt_t *st, props_t *pr)
{
    memset(pr, 0, sizeof *pr);
    for (uint32_t i = 0; i < st->nprops; i++) {
        const cep_ast_prop_t *p = &st->props[i];
        const char *n = p->name;
        const char *sv = prop_str(p);
        if (!strcmp(n, "KAFKA_TOPIC")) {
            if (!sv) return failf(b, &p->pos, CEP_ERR_SEMANTIC, "KAFKA_TOPIC must be a string");
            pr->topic = sv;
        } else if (!strcmp(n, "VALUE_FORMAT")) {
            if (!parse_format(b, p, &pr->value_format)) return false;
            pr->has_value_format = true;
        } else if (!strcmp(n, "KEY_FORMAT")) {
            if (!parse_format(b, p, &pr->key_format)) return false;
            pr->has_key_format = true;
        } else if (!strcmp(n, "FORMAT")) {
            if (!parse_format(b, p, &pr->value_format)) return false;
            pr->key_format = pr->value_format;
            pr->has_value_format = pr->has_key_format = true;
        } else if (!strcmp(n, "WRAP_SINGLE_VALUE")) {
            if (p->value->lit.kind != CEP_K_BOOLEAN)
                return failf(b, &p->pos, CEP_ERR_SEMANTIC, "WRAP_SINGLE_VALUE must be true or false");
            pr->has_wrap = true;
            pr->wrap = p->value->lit.u.b;
        } else if (!strcmp(n, "TIMESTAMP")) {
            if (!sv) return failf(b, &p->pos, CEP_ERR_SEMANTIC, "TIMESTAMP must be a column name string");
            pr->timestamp = sv;
            pr->timestamp_prop = p;
        } else if (!strcmp(n, "KEY")) {
            if (!sv) return failf(b, &p->pos, CEP_ERR_SEMANTIC, "KEY must be a column name string");
            pr->msg_key = sv;
            pr->msg_key_prop = p;
        } else if (!strcmp(n, "TIMESTAMP_FORMAT")) {
            pr->timestamp_format = sv;
        } else if (!strcmp(n, "WINDOW_TYPE")) {
            if (!sv) return failf(b, &p->pos, CEP_ERR_SEMANTIC, "WINDOW_TYPE must be a string");
            if (!strcasecmp(sv, "SESSION")) pr->window_type = CEP_WIN_SESSION;
            else if (!strcasecmp(sv, "TUMBLING")) pr->window_type = CEP_WIN_TUMBLING;
            else if (!strcasecmp(sv, "HOPPING")) pr->window_type = CEP_WIN_HOPPING;
            else return failf(b, &p->pos, CEP_ERR_SEMANTIC, "unknown WINDOW_TYPE '%s'", sv);
        } else if (!strcmp(n, "WINDOW_SIZE")) {
            pr->window_size = 0;
        } else if (!strcmp(n, "SEVERITY")) {
            pr->meta.severity = sv;
        } else if (!strcmp(n, "OWNER")) {
            pr->meta.owner = sv;
        } else if (!strcmp(n, "DESCRIPTION")) {
            pr->meta.description = sv;
        } else if (!strcmp(n, "BOOTSTRAP")) {
            if (sv && !strcasecmp(sv, "window")) pr->meta.bootstrap_ms = CEP_BOOTSTRAP_WINDOW;
            else if (sv && (!strcasecmp(sv, "off") || !strcasecmp(sv, "none"))) pr->meta.bootstrap_ms = CEP_BOOTSTRAP_OFF;
            else if (!sv || !cep_parse_duration(sv, &pr->meta.bootstrap_ms) || pr->meta.bootstrap_ms <= 0)
                return failf(b, &p->pos, CEP_ERR_SEMANTIC,
                             "BOOTSTRAP must be 'window', 'off' or a duration such as '2 HOURS'");
        } else if (!strcmp(n, "MAX_RUNS")) {
            const cep_ast_t *v = p->value;
            if (v->kind != AST_LITERAL || (v->lit.kind != CEP_K_INT && v->lit.kind != CEP_K_BIGINT) ||
                v->lit.u.i < 1 || v->lit.u.i > 10000000)
                return failf(b, &p->pos, CEP_ERR_SEMANTIC, "MAX_RUNS must be an integer from 1 to 10000000");
            pr->max_runs = v->lit.u.i;
        } else if (!strcmp(n, "MODE")) {
            if (!sv || (strcasecmp(sv, "live") && strcasecmp(sv, "shadow")))
                return failf(b, &p->pos, CEP_ERR_SEMANTIC, "MODE must be 'live' or 'shadow'");
            pr->meta.mode = sv;
            pr->meta.shadow = !strcasecmp(sv, "shadow");
        } else if (!strcmp(n, "TAGS")) {
            const cep_ast_t *v = p->value;
            if (v->kind == AST_ARRAY) {
                pr->meta.tags = balloc(b, (v->nargs + 1) * sizeof(char *));
                if (!pr->meta.tags) return false;
                for (uint32_t k = 0; k < v->nargs; k++) {
                    if (v->args[k]->kind != AST_LITERAL || v->args[k]->lit.kind != CEP_K_STRING)
                        return failf(b, &v->args[k]->pos, CEP_ERR_SEMANTIC, "TAGS must be strings");
                    pr->meta.tags[k] = v->args[k]->lit.u.s.p;
                }
                pr->meta.ntags = v->nargs;
            } else if (sv) {
                /* 'a,b,c' */
                uint32_t cnt = 1;
                for (const char *c = sv; *c; c++) cnt += *c == ',';
                pr->meta.tags = balloc(b, (cnt + 1) * sizeof(char *));
                if (!pr->meta.tags) return false;
                const char *s = sv;
                for (uint32_t k = 0; k < cnt; k++) {
                    const char *e = strchr(s, ',');
                    if (!e) e = s + strlen(s);
                    while (*s == ' ') s++;
                    size_t len = (size_t)(e - s);
                    while (len && s[len - 1] == ' ') len--;
                    pr->meta.tags[pr->meta.ntags++] = cep_arena_strndup(b->a, s, len);
                    s = *e ? e + 1 : e;
                }
            } else
                return failf(b, &p->pos, CEP_ERR_SEMANTIC, "TAGS must be a string or a list");
        } else if (!strcmp(n, "PARTITIONS") || !strcmp(n, "REPLICAS") || !strcmp(n, "KEY_SCHEMA_ID") ||
                   !strcmp(n, "VALUE_SCHEMA_ID") || !strcmp(n, "RETENTION_MS") ||
                   !strcmp(n, "VALUE_DELIMITER") || !strcmp(n, "KEY_DELIMITER")) {
            /* accepted for compatibility; no effect on evaluation */
        } else {
            return failf(b, &p->pos, CEP_ERR_SEMANTIC, "unknown property '%s'", n);
        }
    }
    return true;
}

static bool default_format(binder_t *b, const char *name, cep_format_t *out, bool *has)
{
    if (!name) return true;
    cep_ast_prop_t fake = {0};
    cep_ast_t lit = {0};
    lit.kind = AST_LITERAL;
    lit.lit = cep_v_str(name, strlen(name));
    fake.name = "format";
    fake.value = &lit;
    *has = true;
    return parse_format(b, &fake, out);
}

/* The decoder's field index: folded name -> column, per part. */
static bool index_fields(binder_t *b, cep_stream_t *s)
{
    for (int part = 0; part < 2; part++) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < s->ncols; i++) n += s->cols[i].is_key == (part == 1);
        uint32_t cap = 8;
        while (cap < n * 2) cap *= 2;
        struct cep_field_slot *t = balloc(b, cap * sizeof *t);
        if (!t) return false;
        for (uint32_t i = 0; i < cap; i++) t[i].col = -1;
        for (uint32_t i = 0; i < s->ncols; i++) {
            if (s->cols[i].is_key != (part == 1)) continue;
            const char *name = s->cols[i].name;
            uint64_t h = cep_hash_fold(name, strlen(name));
            uint32_t at = (uint32_t)h & (cap - 1);
            bool dup = false;
            while (t[at].col >= 0) {
                if (t[at].hash == h && cep_str_ieq(name, strlen(name), s->cols[t[at].col].name)) dup = true;
                at = (at + 1) & (cap - 1);
            }
            if (dup) {
                s->fields_ambiguous[part] = true;
                continue;
            }
            t[at].hash = h;
            t[at].col = (int32_t)i;
        }
        s->fields[part] = t;
        s->fields_mask[part] = cap - 1;
    }
    return true;
}

static bool init_slots(binder_t *b, cep_stream_t *s)
{
    s->nslots = s->ncols + CEP_PSEUDO_COUNT;
    s->delimiter = ',';
    s->needed = balloc(b, (s->ncols + 1) * sizeof(bool));
    s->key_cols = balloc(b, (s->ncols + 1) * sizeof(uint32_t));
    if (!s->needed || !s->key_cols) return false;
    s->nkey = 0;
    for (uint32_t i = 0; i < s->ncols; i++)
        if (s->cols[i].is_key) s->key_cols[s->nkey++] = i;
    if (s->nslots > b->rs->max_slots) b->rs->max_slots = s->nslots;
    return index_fields(b, s);
}

static bool bind_create_source(binder_t *b, const cep_ast_stmt_t *st)
{
    if (find_stream(b, st->name))
        return failf(b, &st->pos, CEP_ERR_SEMANTIC, "%s %s already exists",
                     st->is_table ? "table" : "stream", st->name);
    props_t pr;
    if (!read_props(b, st, &pr)) return false;
    if (!pr.topic)
        return failf(b, &st->pos, CEP_ERR_SEMANTIC, "%s needs KAFKA_TOPIC in its WITH clause", st->name);
    cep_stream_t *s = balloc(b, sizeof *s);
    if (!s) return false;
    s->name = st->name;
    s->is_table = st->is_table;
    s->is_source = true;
    s->topic = pr.topic;
    s->key_format = CEP_FMT_KAFKA;
    bool dummy = false;
    if (!default_format(b, b->opts->default_key_format, &s->key_format, &dummy)) return false;
    if (pr.has_key_format) s->key_format = pr.key_format;
    bool has_vf = pr.has_value_format;
    s->value_format = pr.value_format;
    if (!has_vf && !default_format(b, b->opts->default_value_format, &s->value_format, &has_vf))
        return false;
    if (!has_vf)
        return failf(b, &st->pos, CEP_ERR_SEMANTIC, "%s needs VALUE_FORMAT (or FORMAT) in its WITH clause",
                     st->name);
    s->wrap_single = pr.has_wrap ? pr.wrap : b->opts->wrap_single_values;
    s->window_type = pr.window_type;
    s->cols = balloc(b, (st->ncols + 1) * sizeof *s->cols);
    if (!s->cols) return false;
    for (uint32_t i = 0; i < st->ncols; i++) {
        const cep_ast_coldef_t *c = &st->cols[i];
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(st->cols[j].name, c->name))
                return failf(b, &c->pos, CEP_ERR_SEMANTIC, "duplicate column '%s'", c->name);
        if (!strcmp(c->name, "ROWTIME") || !strcmp(c->name, "WINDOWSTART") ||
            !strcmp(c->name, "WINDOWEND") || !strcmp(c->name, "ROWPARTITION") ||
            !strcmp(c->name, "ROWOFFSET"))
            return failf(b, &c->pos, CEP_ERR_SEMANTIC, "'%s' is a reserved column name", c->name);
        if (st->is_table && c->is_key && !c->is_primary)
            return failf(b, &c->pos, CEP_ERR_SEMANTIC, "tables declare PRIMARY KEY, not KEY");
        if (!st->is_table && c->is_primary)
            return failf(b, &c->pos, CEP_ERR_SEMANTIC, "streams declare KEY, not PRIMARY KEY");
        s->cols[i].name = c->name;
        s->cols[i].type = c->type;
        s->cols[i].is_key = c->is_key;
    }
    s->ncols = st->ncols;
    s->ts_col = -1;
    if (pr.timestamp) {
        char up[256];
        snprintf(up, sizeof up, "%s", pr.timestamp);
        for (char *c = up; *c; c++) *c = (char)toupper((unsigned char)*c);
        int ci = find_col(s, up);
        if (ci < 0) ci = find_col(s, pr.timestamp);
        if (ci < 0)
            return failf(b, &pr.timestamp_prop->value->pos, CEP_ERR_SEMANTIC,
                         "TIMESTAMP column '%s' is not a column of %s", pr.timestamp, s->name);
        cep_kind_t k = s->cols[ci].type->kind;
        if (k != CEP_K_BIGINT && k != CEP_K_TIMESTAMP && k != CEP_K_INT &&
            !(k == CEP_K_STRING && pr.timestamp_format))
            return failf(b, &pr.timestamp_prop->value->pos, CEP_ERR_SEMANTIC,
                         "TIMESTAMP column '%s' must be BIGINT or TIMESTAMP (or STRING with TIMESTAMP_FORMAT)",
                         pr.timestamp);
        s->ts_col = ci;
        s->ts_format = pr.timestamp_format;
    }
    if (pr.msg_key) {
        char up[256];
        snprintf(up, sizeof up, "%s", pr.msg_key);
        for (char *c = up; *c; c++) *c = (char)toupper((unsigned char)*c);
        int ci = find_col(s, up);
        if (ci < 0) ci = find_col(s, pr.msg_key);
        if (ci < 0)
            return failf(b, &pr.msg_key_prop->value->pos, CEP_ERR_SEMANTIC, "KEY column '%s' is not a column of %s",
                         pr.msg_key, s->name);
        s->msg_key = (uint32_t)ci + 1;
    }
    if (!init_slots(b, s)) return false;
    if (s->ts_col >= 0) s->needed[s->ts_col] = true; /* event time is read even when no query names it */
    if (s->nkey > 1 && s->key_format == CEP_FMT_KAFKA)
        return failf(b, &st->pos, CEP_ERR_SEMANTIC,
                     "the KAFKA key format supports one key column; use KEY_FORMAT='JSON'");
    if (s->ncols == 0)
        return failf(b, &st->pos, CEP_ERR_SEMANTIC, "%s declares no columns", st->name);
    return add_stream(b, s);
}

/* ---- expression compilation ------------------------------------------- */

typedef struct cc {
    binder_t *b;
    qctx_t *q;
    cep_progbuf_t *pb;
} cc_t;

static const cep_type_t *compile(cc_t *c, cep_ast_t *e);

static void emit_cast(cc_t *c, const cep_type_t *from, const cep_type_t *to)
{
    if (!to || from == to || from->kind == CEP_K_NULL) return;
    if (cep_type_equal(from, to)) return;
    cep_progbuf_emit(c->pb, OP_CAST, 0, 0, 0, to, 0);
}

static bool is_window_bound(const char *name)
{
    return !strcmp(name, "WINDOWSTART") || !strcmp(name, "WINDOWEND");
}

static int agg_slot(qctx_t *q, int agg_index)
{
    return (int)q->ngroup + agg_index;
}

static bool is_aggregate_name(const char *n)
{
    static const char *const names[] = {"COUNT",       "COUNT_DISTINCT", "SUM",
                                        "MIN",         "MAX",            "AVG",
                                        "LATEST_BY_OFFSET", "EARLIEST_BY_OFFSET",
                                        "COLLECT_LIST", "COLLECT_SET",   "TOPK",
                                        "TOPKDISTINCT"};
    for (size_t i = 0; i < CEP_ARRAY_LEN(names); i++)
        if (!strcmp(n, names[i])) return true;
    return false;
}

static bool contains_aggregate(const cep_ast_t *e)
{
    if (!e) return false;
    if (e->kind == AST_CALL && is_aggregate_name(e->name)) return true;
    for (uint32_t i = 0; i < e->nargs; i++)
        if (contains_aggregate(e->args[i])) return true;
    return contains_aggregate(e->operand) || contains_aggregate(e->else_);
}

static bool mentions_window_bound(const cep_ast_t *e)
{
    if (!e) return false;
    if (e->kind == AST_COLUMN && is_window_bound(e->name)) return true;
    for (uint32_t i = 0; i < e->nargs; i++)
        if (mentions_window_bound(e->args[i])) return true;
    return mentions_window_bound(e->operand) || mentions_window_bound(e->else_);
}

static const cep_type_t *compile_column(cc_t *c, cep_ast_t *e)
{
    binder_t *b = c->b;
    qctx_t *q = c->q;
    cep_stream_t *s = q->from;
    if (e->qualifier && strcmp(e->qualifier, s->name) && !(q->alias && !strcmp(e->qualifier, q->alias))) {
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "unknown source '%s' (the query reads %s)", e->qualifier,
              s->name);
        return NULL;
    }
    if (q->kind == CTX_AGG) {
        if (is_window_bound(e->name) && q->windowed) {
            cep_progbuf_emit(c->pb, OP_COL, q->ngroup + q->naggs + (e->name[6] == 'E' ? 1 : 0), 0, 0, NULL, 1);
            /* slots of window bounds are fixed after all aggregates are known:
             * patched in finish_agg_program */
            c->pb->code[c->pb->ncode - 1].c = e->name[6] == 'E' ? 2 : 1;
            return &cep_type_bigint;
        }
        if (!strcmp(e->name, "ROWTIME")) {
            cep_progbuf_emit(c->pb, OP_COL, 0, 0, 3, NULL, 1);
            return &cep_type_bigint;
        }
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "Non-aggregate %s expression(s) not part of GROUP BY: %s",
              q->clause, e->name);
        return NULL;
    }
    int ci = find_col(s, e->name);
    if (ci >= 0) {
        s->needed[ci] = true;
        cep_progbuf_emit(c->pb, OP_COL, (uint32_t)ci, 0, 0, NULL, 1);
        return s->cols[ci].type;
    }
    static const char *const pseudo[CEP_PSEUDO_COUNT] = {"ROWTIME", "ROWPARTITION", "ROWOFFSET",
                                                         "WINDOWSTART", "WINDOWEND"};
    for (int p = 0; p < CEP_PSEUDO_COUNT; p++)
        if (!strcmp(e->name, pseudo[p])) {
            if (p >= CEP_PSEUDO_WINDOWSTART) {
                if (q->windowed) {
                    failf(b, &e->pos, CEP_ERR_SEMANTIC,
                          "%s can only be used in the SELECT of a windowed aggregation, not in %s",
                          e->name, q->clause);
                    return NULL;
                }
                if (s->window_type == CEP_WIN_NONE) {
                    failf(b, &e->pos, CEP_ERR_SEMANTIC, "%s is only available on windowed sources",
                          e->name);
                    return NULL;
                }
            }
            cep_progbuf_emit(c->pb, OP_COL, s->ncols + (uint32_t)p, 0, 0, NULL, 1);
            return p == CEP_PSEUDO_ROWPARTITION ? &cep_type_int : &cep_type_bigint;
        }
    const char *hint = suggest_col(s, e->name);
    if (hint)
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "unknown column '%s' in %s (did you mean %s?)", e->name,
              s->name, hint);
    else
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "unknown column '%s' in %s", e->name, s->name);
    return NULL;
}

/* Magic timestamp conversion: a string literal compared with ROWTIME,
 * WINDOWSTART/END or a TIMESTAMP column becomes milliseconds. */
static bool is_time_ref(const cep_ast_t *e, const cep_type_t *t)
{
    if (t && t->kind == CEP_K_TIMESTAMP) return true;
    return e->kind == AST_COLUMN &&
           (!strcmp(e->name, "ROWTIME") || is_window_bound(e->name));
}

static bool comparable(const cep_type_t *x, const cep_type_t *y)
{
    if (x->kind == CEP_K_NULL || y->kind == CEP_K_NULL) return true;
    if (cep_type_is_numeric(x) && cep_type_is_numeric(y)) return true;
    if (x->kind != y->kind) return false;
    return true;
}

static const char *op_name(int op)
{
    switch (op) {
    case TK_EQ: return "EQUAL";
    case TK_NE: return "NOT_EQUAL";
    case TK_LT: return "LESS_THAN";
    case TK_LE: return "LESS_THAN_OR_EQUAL";
    case TK_GT: return "GREATER_THAN";
    case TK_GE: return "GREATER_THAN_OR_EQUAL";
    default: return "?";
    }
}

/* Compile a and b for comparison, converting string literals to timestamps
 * where the other side is a time. */
static bool compile_cmp_pair(cc_t *c, cep_ast_t *a, cep_ast_t *bb, const cep_type_t **ta,
                             const cep_type_t **tb)
{
    binder_t *b = c->b;
    cep_ast_t *sides[2] = {a, bb};
    const cep_type_t *types[2] = {NULL, NULL};
    /* first pass: types without emitting, by compiling into a throwaway buffer */
    for (int i = 0; i < 2; i++) {
        cep_progbuf_t tmp;
        cep_progbuf_init(&tmp, b->a);
        cc_t c2 = {b, c->q, &tmp};
        bool was = b->failed;
        types[i] = compile(&c2, sides[i]);
        if (!types[i]) return false;
        (void)was;
    }
    for (int i = 0; i < 2; i++) {
        cep_ast_t *s = sides[i], *o = sides[1 - i];
        if (s->kind == AST_LITERAL && types[i]->kind == CEP_K_STRING && is_time_ref(o, types[1 - i]) &&
            types[1 - i]->kind != CEP_K_STRING) {
            int64_t ms;
            if (!cep_parse_timestamp_text(s->lit.u.s.p, s->lit.u.s.n, &ms)) {
                failf(b, &s->pos, CEP_ERR_SEMANTIC, "'%s' is not a timestamp", s->lit.u.s.p);
                return false;
            }
            cep_progbuf_emit(c->pb, OP_CONST,
                             cep_progbuf_const(c->pb, cep_v_int(types[1 - i]->kind, ms)), 0, 0, NULL, 1);
            types[i] = types[1 - i];
        } else {
            types[i] = compile(c, s);
            if (!types[i]) return false;
        }
    }
    *ta = types[0];
    *tb = types[1];
    return true;
}

static const cep_type_t *compile_call(cc_t *c, cep_ast_t *e);

static const cep_type_t *compile_agg_ref(cc_t *c, cep_ast_t *e)
{
    qctx_t *q = c->q;
    binder_t *b = c->b;
    if (q->kind != CTX_AGG) {
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "aggregate function %s is not allowed in %s", e->name,
              q->clause);
        return NULL;
    }
    for (uint32_t i = 0; i < e->nargs; i++)
        if (contains_aggregate(e->args[i])) {
            failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC, "aggregate calls cannot be nested");
            return NULL;
        }
    for (uint32_t i = 0; i < e->nargs; i++)
        if (mentions_window_bound(e->args[i])) {
            failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC,
                  "window bounds cannot be used inside an aggregate function");
            return NULL;
        }
    int idx = -1;
    for (uint32_t i = 0; i < q->naggs; i++)
        if (cep_ast_equal(q->aggs[i], e)) {
            idx = (int)i;
            break;
        }
    if (idx < 0) {
        if (q->naggs == q->cap_aggs) {
            uint32_t cap = q->cap_aggs ? q->cap_aggs * 2 : 8;
            cep_ast_t **n = balloc(b, cap * sizeof *n);
            if (!n) return NULL;
            if (q->naggs) memcpy(n, q->aggs, q->naggs * sizeof *n);
            q->aggs = n;
            q->cap_aggs = cap;
        }
        idx = (int)q->naggs;
        q->aggs[q->naggs++] = e;
        e->agg = idx;
    }
    /* the aggregate's type is set by the planner (plan_aggregate); here we
     * need it now: compute it through the same function */
    extern const cep_type_t *cep_agg_result_type(binder_t * b, qctx_t * q, cep_ast_t * call);
    const cep_type_t *t = cep_agg_result_type(b, q, q->aggs[idx]);
    if (!t) return NULL;
    cep_progbuf_emit(c->pb, OP_COL, (uint32_t)agg_slot(q, idx), 0, 0, NULL, 1);
    return t;
}

static const cep_type_t *arith_type(binder_t *b, int op, const cep_type_t *x, const cep_type_t *y)
{
    if (x->kind == CEP_K_NULL) return y;
    if (y->kind == CEP_K_NULL) return x;
    if (x->kind == CEP_K_DOUBLE || y->kind == CEP_K_DOUBLE) return &cep_type_double;
    if (x->kind == CEP_K_DECIMAL || y->kind == CEP_K_DECIMAL) {
        int sx = x->kind == CEP_K_DECIMAL ? x->scale : 0, sy = y->kind == CEP_K_DECIMAL ? y->scale : 0;
        int px = x->kind == CEP_K_DECIMAL ? x->precision : (x->kind == CEP_K_INT ? 10 : 19);
        int py = y->kind == CEP_K_DECIMAL ? y->precision : (y->kind == CEP_K_INT ? 10 : 19);
        int s, p;
        if (op == TK_STAR) s = sx + sy, p = px + py + 1;
        else if (op == TK_SLASH) s = CEP_MAX(6, sx + py + 1), p = px - sx + sy + s;
        else s = CEP_MAX(sx, sy), p = CEP_MAX(px - sx, py - sy) + s + 1;
        if (s > 18) s = 18;
        if (p > 18) p = 18;
        if (p < s) p = s;
        return cep_type_new_decimal(b->a, p, s);
    }
    if (x->kind == CEP_K_BIGINT || y->kind == CEP_K_BIGINT) return &cep_type_bigint;
    return &cep_type_int;
}

static const cep_type_t *compile(cc_t *c, cep_ast_t *e)
{
    binder_t *b = c->b;
    qctx_t *q = c->q;
    if (b->failed) return NULL;
    /* in an aggregate context, a GROUP BY expression is a slot */
    if (q->kind == CTX_AGG && e->kind != AST_LITERAL) {
        for (uint32_t i = 0; i < q->ngroup; i++)
            if (cep_ast_equal(q->group[i], e)) {
                cep_progbuf_emit(c->pb, OP_COL, i, 0, 0, NULL, 1);
                return q->group[i]->type;
            }
    }
    switch (e->kind) {
    case AST_LITERAL:
    case AST_INTERVAL: {
        if (e->lit_type->kind == CEP_K_NULL) {
            cep_progbuf_emit(c->pb, OP_CONST, cep_progbuf_const(c->pb, cep_null()), 0, 0, NULL, 1);
            return e->type = &cep_type_null;
        }
        cep_progbuf_emit(c->pb, OP_CONST, cep_progbuf_const(c->pb, e->lit), 0, 0, NULL, 1);
        return e->type = e->lit_type;
    }
    case AST_COLUMN: return e->type = compile_column(c, e);
    case AST_STAR:
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "'*' is only allowed in a select list or COUNT(*)");
        return NULL;
    case AST_UNARY: {
        const cep_type_t *t = compile(c, e->args[0]);
        if (!t) return NULL;
        if (e->op == 'N') {
            if (t->kind != CEP_K_BOOLEAN && t->kind != CEP_K_NULL) {
                failf(b, &e->pos, CEP_ERR_SEMANTIC, "NOT needs a BOOLEAN, not %s", type_name(b, t));
                return NULL;
            }
            cep_progbuf_emit(c->pb, OP_NOT, 0, 0, 0, NULL, 0);
            return e->type = &cep_type_boolean;
        }
        if (!cep_type_is_numeric(t) && t->kind != CEP_K_NULL) {
            failf(b, &e->pos, CEP_ERR_SEMANTIC, "unary minus needs a number, not %s", type_name(b, t));
            return NULL;
        }
        cep_progbuf_emit(c->pb, OP_NEG, 0, 0, 0, NULL, 0);
        return e->type = t;
    }
    case AST_BINARY: {
        int op = e->op;
        if (op == 'A' || op == 'O') {
            for (int i = 0; i < 2; i++) {
                const cep_type_t *t = compile(c, e->args[i]);
                if (!t) return NULL;
                if (t->kind != CEP_K_BOOLEAN && t->kind != CEP_K_NULL) {
                    failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC, "%s needs BOOLEAN operands, not %s",
                          op == 'A' ? "AND" : "OR", type_name(b, t));
                    return NULL;
                }
            }
            cep_progbuf_emit(c->pb, op == 'A' ? OP_AND : OP_OR, 0, 0, 0, NULL, -1);
            return e->type = &cep_type_boolean;
        }
        if (op == TK_EQ || op == TK_NE || op == TK_LT || op == TK_LE || op == TK_GT || op == TK_GE) {
            const cep_type_t *x, *y;
            if (!compile_cmp_pair(c, e->args[0], e->args[1], &x, &y)) return NULL;
            if (!comparable(x, y) ||
                ((x->kind == CEP_K_MAP || x->kind == CEP_K_STRUCT || x->kind == CEP_K_ARRAY) &&
                 op != TK_EQ && op != TK_NE)) {
                failf(b, &e->pos, CEP_ERR_SEMANTIC, "Cannot compare %s (%s) to %s (%s) with %s.",
                      expr_text(b, e->args[0]), type_name(b, x), expr_text(b, e->args[1]),
                      type_name(b, y), op_name(op));
                return NULL;
            }
            cep_progbuf_emit(c->pb, OP_CMP, (uint32_t)op, 0, 0, NULL, -1);
            return e->type = &cep_type_boolean;
        }
        const cep_type_t *x = compile(c, e->args[0]);
        if (!x) return NULL;
        uint32_t mark = c->pb->ncode;
        (void)mark;
        const cep_type_t *y = compile(c, e->args[1]);
        if (!y) return NULL;
        if (op == TK_CONCAT || (op == TK_PLUS && (x->kind == CEP_K_STRING || y->kind == CEP_K_STRING))) {
            if ((x->kind != CEP_K_STRING && x->kind != CEP_K_NULL) ||
                (y->kind != CEP_K_STRING && y->kind != CEP_K_NULL)) {
                failf(b, &e->pos, CEP_ERR_SEMANTIC, "cannot concatenate %s and %s", type_name(b, x),
                      type_name(b, y));
                return NULL;
            }
            cep_progbuf_emit(c->pb, OP_CONCAT, 0, 0, 0, NULL, -1);
            return e->type = &cep_type_string;
        }
        if ((!cep_type_is_numeric(x) && x->kind != CEP_K_NULL) ||
            (!cep_type_is_numeric(y) && y->kind != CEP_K_NULL)) {
            failf(b, &e->pos, CEP_ERR_SEMANTIC, "arithmetic needs numbers, not %s and %s",
                  type_name(b, x), type_name(b, y));
            return NULL;
        }
        const cep_type_t *rt = arith_type(b, op, x, y);
        if (!rt) return NULL;
        int aop = op == TK_PLUS ? '+' : op == TK_MINUS ? '-' : op == TK_STAR ? '*' : op == TK_SLASH ? '/' : '%';
        cep_progbuf_emit(c->pb, OP_ARITH, (uint32_t)aop, (uint16_t)rt->kind, rt->scale, NULL, -1);
        return e->type = rt;
    }
    case AST_ISNULL: {
        if (!compile(c, e->args[0])) return NULL;
        cep_progbuf_emit(c->pb, OP_ISNULL, e->negated, 0, 0, NULL, 0);
        return e->type = &cep_type_boolean;
    }
    case AST_DISTINCT: {
        const cep_type_t *x, *y;
        if (!compile_cmp_pair(c, e->args[0], e->args[1], &x, &y)) return NULL;
        if (!comparable(x, y)) {
            failf(b, &e->pos, CEP_ERR_SEMANTIC, "Cannot compare %s to %s", type_name(b, x), type_name(b, y));
            return NULL;
        }
        cep_progbuf_emit(c->pb, OP_DISTINCT, e->negated, 0, 0, NULL, -1);
        return e->type = &cep_type_boolean;
    }
    case AST_BETWEEN: {
        /* x BETWEEN lo AND hi == x >= lo AND x <= hi (x evaluated twice: pure) */
        const cep_type_t *x, *lo, *hi;
        if (!compile_cmp_pair(c, e->args[0], e->args[1], &x, &lo)) return NULL;
        if (!comparable(x, lo)) goto between_err;
        cep_progbuf_emit(c->pb, OP_CMP, TK_GE, 0, 0, NULL, -1);
        if (!compile_cmp_pair(c, e->args[0], e->args[2], &x, &hi)) return NULL;
        if (!comparable(x, hi)) goto between_err;
        cep_progbuf_emit(c->pb, OP_CMP, TK_LE, 0, 0, NULL, -1);
        cep_progbuf_emit(c->pb, OP_AND, 0, 0, 0, NULL, -1);
        if (e->negated) cep_progbuf_emit(c->pb, OP_NOT, 0, 0, 0, NULL, 0);
        return e->type = &cep_type_boolean;
    between_err:
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "BETWEEN bounds must have the type of %s (%s)",
              expr_text(b, e->args[0]), type_name(b, x));
        return NULL;
    }
    case AST_IN: {
        const cep_type_t *x = compile(c, e->args[0]);
        if (!x) return NULL;
        for (uint32_t i = 1; i < e->nargs; i++) {
            cep_ast_t *it = e->args[i];
            /* a string literal in a numeric IN list is read as a number */
            if (it->kind == AST_LITERAL && it->lit_type->kind == CEP_K_STRING &&
                (cep_type_is_numeric(x) || x->kind == CEP_K_BOOLEAN || x->kind == CEP_K_TIMESTAMP)) {
                cep_value_t v;
                const cep_type_t *target = x->kind == CEP_K_BOOLEAN ? &cep_type_boolean
                                           : x->kind == CEP_K_TIMESTAMP ? &cep_type_timestamp
                                                                        : &cep_type_double;
                bool ok = false;
                if (x->kind == CEP_K_BOOLEAN) {
                    ok = cep_str_ieq(it->lit.u.s.p, it->lit.u.s.n, "true") ||
                         cep_str_ieq(it->lit.u.s.p, it->lit.u.s.n, "false");
                    v = cep_v_bool(cep_str_ieq(it->lit.u.s.p, it->lit.u.s.n, "true"));
                } else
                    ok = cep_value_cast(&it->lit, target, b->a, &v) && v.kind != CEP_K_NULL;
                if (!ok) {
                    failf(b, &it->pos, CEP_ERR_SEMANTIC, "invalid %s literal in IN list: '%s'",
                          type_name(b, x), it->lit.u.s.p);
                    return NULL;
                }
                cep_progbuf_emit(c->pb, OP_CONST, cep_progbuf_const(c->pb, v), 0, 0, NULL, 1);
                continue;
            }
            const cep_type_t *t = compile(c, it);
            if (!t) return NULL;
            if (!cep_type_common(b->a, x, t) || !comparable(x, t)) {
                failf(b, &it->pos, CEP_ERR_SEMANTIC, "IN list item %s (%s) does not match %s (%s)",
                      expr_text(b, it), type_name(b, t), expr_text(b, e->args[0]), type_name(b, x));
                return NULL;
            }
        }
        cep_progbuf_emit(c->pb, OP_IN, 0, (uint16_t)(e->nargs - 1), 0, NULL, -(int)(e->nargs - 1));
        if (e->negated) cep_progbuf_emit(c->pb, OP_NOT, 0, 0, 0, NULL, 0);
        return e->type = &cep_type_boolean;
    }
    case AST_LIKE: {
        for (uint32_t i = 0; i < e->nargs; i++) {
            const cep_type_t *t = compile(c, e->args[i]);
            if (!t) return NULL;
            if (t->kind != CEP_K_STRING && t->kind != CEP_K_NULL) {
                failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC, "LIKE needs STRING operands, not %s",
                      type_name(b, t));
                return NULL;
            }
        }
        const cep_like_t *pre = NULL;
        cep_ast_t *pat = e->args[1];
        cep_ast_t *esc = e->nargs > 2 ? e->args[2] : NULL;
        if (pat->kind == AST_LITERAL && pat->lit.kind == CEP_K_STRING &&
            (!esc || (esc->kind == AST_LITERAL && esc->lit.kind == CEP_K_STRING))) {
            int ec = esc && esc->lit.u.s.n ? (unsigned char)esc->lit.u.s.p[0] : -1;
            pre = cep_like_compile(b->a, pat->lit.u.s.p, pat->lit.u.s.n, ec);
        }
        cep_progbuf_emit(c->pb, OP_LIKE, 0, (uint16_t)e->nargs, 0, pre, 1 - (int)e->nargs);
        if (e->negated) cep_progbuf_emit(c->pb, OP_NOT, 0, 0, 0, NULL, 0);
        return e->type = &cep_type_boolean;
    }
    case AST_CASE: {
        /* result type: common type of the branches */
        const cep_type_t *rt = &cep_type_null;
        for (uint32_t i = 1; i < e->nargs; i += 2) {
            cep_progbuf_t tmp;
            cep_progbuf_init(&tmp, b->a);
            cc_t c2 = {b, q, &tmp};
            const cep_type_t *t = compile(&c2, e->args[i]);
            if (!t) return NULL;
            const cep_type_t *ct = cep_type_common(b->a, rt, t);
            if (!ct) {
                failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC,
                      "invalid Case expression. Type for all 'THEN' clauses should be the same");
                return NULL;
            }
            rt = ct;
        }
        if (e->else_) {
            cep_progbuf_t tmp;
            cep_progbuf_init(&tmp, b->a);
            cc_t c2 = {b, q, &tmp};
            const cep_type_t *t = compile(&c2, e->else_);
            if (!t) return NULL;
            const cep_type_t *ct = cep_type_common(b->a, rt, t);
            if (!ct) {
                failf(b, &e->else_->pos, CEP_ERR_SEMANTIC,
                      "invalid Case expression. Type for the ELSE clause should be the same as THEN");
                return NULL;
            }
            rt = ct;
        }
        if (rt->kind == CEP_K_NULL) {
            failf(b, &e->pos, CEP_ERR_SEMANTIC,
                  "Invalid Case expression. All case branches have a type of null.");
            return NULL;
        }
        uint32_t ends[256];
        uint32_t nends = 0;
        for (uint32_t i = 0; i + 1 < e->nargs; i += 2) {
            if (e->operand) {
                const cep_type_t *x, *y;
                if (!compile_cmp_pair(c, e->operand, e->args[i], &x, &y)) return NULL;
                cep_progbuf_emit(c->pb, OP_CMP, TK_EQ, 0, 0, NULL, -1);
            } else {
                const cep_type_t *t = compile(c, e->args[i]);
                if (!t) return NULL;
                if (t->kind != CEP_K_BOOLEAN && t->kind != CEP_K_NULL) {
                    failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC, "WHEN needs a BOOLEAN, not %s",
                          type_name(b, t));
                    return NULL;
                }
            }
            uint32_t jnt = cep_progbuf_emit(c->pb, OP_JMPNT, 0, 0, 0, NULL, -1);
            const cep_type_t *t = compile(c, e->args[i + 1]);
            if (!t) return NULL;
            emit_cast(c, t, rt);
            if (nends < CEP_ARRAY_LEN(ends)) ends[nends++] = cep_progbuf_emit(c->pb, OP_JMP, 0, 0, 0, NULL, -1);
            c->pb->code[jnt].a = c->pb->ncode;
        }
        if (e->else_) {
            const cep_type_t *t = compile(c, e->else_);
            if (!t) return NULL;
            emit_cast(c, t, rt);
        } else
            cep_progbuf_emit(c->pb, OP_CONST, cep_progbuf_const(c->pb, cep_null()), 0, 0, NULL, 1);
        for (uint32_t i = 0; i < nends; i++) c->pb->code[ends[i]].a = c->pb->ncode;
        return e->type = rt;
    }
    case AST_CALL:
        if (is_aggregate_name(e->name)) return e->type = compile_agg_ref(c, e);
        return e->type = compile_call(c, e);
    case AST_CAST: {
        const cep_type_t *t = compile(c, e->args[0]);
        if (!t) return NULL;
        emit_cast(c, t, e->cast_type);
        return e->type = e->cast_type;
    }
    case AST_SUBSCRIPT: {
        const cep_type_t *t = compile(c, e->args[0]);
        if (!t) return NULL;
        const cep_type_t *it = compile(c, e->args[1]);
        if (!it) return NULL;
        if (t->kind == CEP_K_ARRAY) {
            if (!cep_type_is_integral(it)) {
                failf(b, &e->args[1]->pos, CEP_ERR_SEMANTIC, "array index must be an integer");
                return NULL;
            }
            cep_progbuf_emit(c->pb, OP_INDEX, 0, 0, 0, NULL, -1);
            return e->type = t->elem;
        }
        if (t->kind == CEP_K_MAP) {
            emit_cast(c, it, t->key);
            cep_progbuf_emit(c->pb, OP_INDEX, 0, 0, 0, NULL, -1);
            return e->type = t->elem;
        }
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "'[...]' needs an ARRAY or MAP, not %s", type_name(b, t));
        return NULL;
    }
    case AST_DEREF: {
        const cep_type_t *t = compile(c, e->args[0]);
        if (!t) return NULL;
        if (t->kind != CEP_K_STRUCT) {
            failf(b, &e->pos, CEP_ERR_SEMANTIC, "'->' needs a STRUCT, not %s", type_name(b, t));
            return NULL;
        }
        for (uint32_t i = 0; i < t->nfields; i++)
            if (!strcmp(t->fields[i].name, e->name) ||
                (!e->quoted && !strcasecmp(t->fields[i].name, e->name))) {
                cep_progbuf_emit(c->pb, OP_FIELD, i, 0, 0, NULL, 0);
                return e->type = t->fields[i].type;
            }
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "struct has no field '%s'", e->name);
        return NULL;
    }
    case AST_ARRAY: {
        if (!e->nargs) {
            failf(b, &e->pos, CEP_ERR_SEMANTIC, "ARRAY[] needs at least one element");
            return NULL;
        }
        const cep_type_t *et = &cep_type_null;
        const cep_type_t **ts = balloc(b, e->nargs * sizeof *ts);
        if (!ts) return NULL;
        for (uint32_t i = 0; i < e->nargs; i++) {
            cep_progbuf_t tmp;
            cep_progbuf_init(&tmp, b->a);
            cc_t c2 = {b, q, &tmp};
            ts[i] = compile(&c2, e->args[i]);
            if (!ts[i]) return NULL;
            const cep_type_t *ct = cep_type_common(b->a, et, ts[i]);
            if (!ct) {
                failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC, "array elements must share one type");
                return NULL;
            }
            et = ct;
        }
        if (et->kind == CEP_K_NULL) et = &cep_type_string;
        for (uint32_t i = 0; i < e->nargs; i++) {
            const cep_type_t *t = compile(c, e->args[i]);
            if (!t) return NULL;
            emit_cast(c, t, et);
        }
        cep_type_t *at = balloc(b, sizeof *at);
        if (!at) return NULL;
        at->kind = CEP_K_ARRAY;
        at->elem = et;
        cep_progbuf_emit(c->pb, OP_MKARRAY, 0, (uint16_t)e->nargs, 0, at, 1 - (int)e->nargs);
        return e->type = at;
    }
    case AST_MAP: {
        const cep_type_t *kt = &cep_type_null, *vt = &cep_type_null;
        for (uint32_t i = 0; i < e->nargs; i++) {
            cep_progbuf_t tmp;
            cep_progbuf_init(&tmp, b->a);
            cc_t c2 = {b, q, &tmp};
            const cep_type_t *t = compile(&c2, e->args[i]);
            if (!t) return NULL;
            const cep_type_t **slot = i % 2 ? &vt : &kt;
            const cep_type_t *ct = cep_type_common(b->a, *slot, t);
            if (!ct) {
                failf(b, &e->args[i]->pos, CEP_ERR_SEMANTIC, "map %s must share one type",
                      i % 2 ? "values" : "keys");
                return NULL;
            }
            *slot = ct;
        }
        for (uint32_t i = 0; i < e->nargs; i++) {
            const cep_type_t *t = compile(c, e->args[i]);
            if (!t) return NULL;
            emit_cast(c, t, i % 2 ? vt : kt);
        }
        cep_type_t *mt = balloc(b, sizeof *mt);
        if (!mt) return NULL;
        mt->kind = CEP_K_MAP;
        mt->key = kt->kind == CEP_K_NULL ? &cep_type_string : kt;
        mt->elem = vt->kind == CEP_K_NULL ? &cep_type_string : vt;
        cep_progbuf_emit(c->pb, OP_MKMAP, 0, (uint16_t)e->nargs, 0, mt, 1 - (int)e->nargs);
        return e->type = mt;
    }
    case AST_STRUCT: {
        cep_type_t *st = balloc(b, sizeof *st);
        cep_field_t *f = balloc(b, (e->nargs + 1) * sizeof *f);
        if (!st || !f) return NULL;
        for (uint32_t i = 0; i < e->nargs; i++) {
            const cep_type_t *t = compile(c, e->args[i]);
            if (!t) return NULL;
            f[i].name = e->names[i];
            f[i].type = t->kind == CEP_K_NULL ? &cep_type_string : t;
        }
        st->kind = CEP_K_STRUCT;
        st->nfields = e->nargs;
        st->fields = f;
        cep_progbuf_emit(c->pb, OP_MKSTRUCT, 0, (uint16_t)e->nargs, 0, st, 1 - (int)e->nargs);
        return e->type = st;
    }
    default: break;
    }
    failf(b, &e->pos, CEP_ERR_UNSUPPORTED, "unsupported expression");
    return NULL;
}

static const cep_type_t *compile_call(cc_t *c, cep_ast_t *e)
{
    binder_t *b = c->b;
    int id;
    const cep_func_t *f = cep_func_lookup(e->name, &id);
    if (!f) {
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "unknown function %s", e->name);
        return NULL;
    }
    if ((int)e->nargs < f->min_args || (f->max_args >= 0 && (int)e->nargs > f->max_args)) {
        char most[16] = "";
        if (f->max_args != f->min_args) {
            if (f->max_args < 0) snprintf(most, sizeof most, " or more");
            else snprintf(most, sizeof most, " to %d", f->max_args);
        }
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "%s takes %d%s argument%s, not %u", f->name, f->min_args, most,
              f->min_args == 1 && f->max_args == 1 ? "" : "s", e->nargs);
        return NULL;
    }
    const cep_type_t *types[64];
    const cep_type_t *coerce[64] = {0};
    const cep_value_t *consts[64] = {0};
    if (e->nargs > 64) {
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "too many arguments");
        return NULL;
    }
    for (uint32_t i = 0; i < e->nargs; i++) {
        cep_progbuf_t tmp;
        cep_progbuf_init(&tmp, b->a);
        cc_t c2 = {b, c->q, &tmp};
        types[i] = compile(&c2, e->args[i]);
        if (!types[i]) return NULL;
        if (e->args[i]->kind == AST_LITERAL) consts[i] = &e->args[i]->lit;
    }
    const cep_type_t *rt = f->check(b->a, types, (int)e->nargs, coerce, &e->pos, b->err);
    if (!rt) {
        b->failed = true;
        return NULL;
    }
    for (uint32_t i = 0; i < e->nargs; i++) {
        const cep_type_t *t = compile(c, e->args[i]);
        if (!t) return NULL;
        if (coerce[i]) emit_cast(c, t, coerce[i]);
    }
    void *state = NULL;
    if (f->prepare) {
        state = f->prepare(b->a, consts, (int)e->nargs, &e->pos, b->err);
        if (!state) {
            b->failed = true;
            if (b->err && !b->err->code)
                cep_error_set(b->err, CEP_ERR_NOMEM, &e->pos, "out of memory");
            return NULL;
        }
    }
    e->func = id;
    cep_progbuf_emit(c->pb, OP_CALL, (uint32_t)id, (uint16_t)e->nargs, 0, state, 1 - (int)e->nargs);
    return rt;
}

/* Compile one expression into its own program. */
static cep_program_t *program(binder_t *b, qctx_t *q, cep_ast_t *e, const cep_type_t **type)
{
    cep_progbuf_t pb;
    cep_progbuf_init(&pb, b->a);
    cc_t c = {b, q, &pb};
    const cep_type_t *t = compile(&c, e);
    if (!t) return NULL;
    if (type) *type = t;
    cep_program_t *p = cep_progbuf_finish(&pb, t, expr_text(b, e));
    if (!p) failf(b, NULL, CEP_ERR_NOMEM, "out of memory");
    return p;
}

/* Aggregate-row programs reference window bounds and ROWTIME through
 * markers (c = 1 WINDOWSTART, 2 WINDOWEND, 3 ROWTIME) because their slots
 * come after the aggregates, whose number is known only at the end. */
static void fix_agg_slots(cep_program_t *p, uint32_t nbase)
{
    for (uint32_t i = 0; i < p->ncode; i++)
        if (p->code[i].op == OP_COL && p->code[i].c) {
            p->code[i].a = nbase + p->code[i].c - 1;
            p->code[i].c = 0;
        }
    cep_program_shape(p);
}

/* ---- aggregates --------------------------------------------------------- */

typedef struct agginfo {
    const char *name;
    cep_agg_kind_t kind;
    int min_args, max_args;
} agginfo_t;

static const agginfo_t agg_table[] = {
    {"COUNT", AGG_COUNT, 0, 1},
    {"COUNT_DISTINCT", AGG_COUNT_DISTINCT, 1, 1},
    {"SUM", AGG_SUM, 1, 1},
    {"MIN", AGG_MIN, 1, 1},
    {"MAX", AGG_MAX, 1, 1},
    {"AVG", AGG_AVG, 1, 1},
    {"LATEST_BY_OFFSET", AGG_LATEST, 1, 3},
    {"EARLIEST_BY_OFFSET", AGG_EARLIEST, 1, 3},
    {"COLLECT_LIST", AGG_COLLECT_LIST, 1, 1},
    {"COLLECT_SET", AGG_COLLECT_SET, 1, 1},
    {"TOPK", AGG_TOPK, 2, 3},
    {"TOPKDISTINCT", AGG_TOPKDISTINCT, 2, 2},
};

static const agginfo_t *agg_info(const char *name)
{
    for (size_t i = 0; i < CEP_ARRAY_LEN(agg_table); i++)
        if (!strcmp(agg_table[i].name, name)) return &agg_table[i];
    return NULL;
}

/* Type-check an aggregate call in a row context (its arguments) and return
 * the result type. */
const cep_type_t *cep_agg_result_type(binder_t *b, qctx_t *q, cep_ast_t *call);
const cep_type_t *cep_agg_result_type(binder_t *b, qctx_t *q, cep_ast_t *call)
{
    const agginfo_t *ai = agg_info(call->name);
    if ((int)call->nargs < ai->min_args || (int)call->nargs > ai->max_args) {
        failf(b, &call->pos, CEP_ERR_SEMANTIC, "%s takes %d to %d arguments, not %u", ai->name,
              ai->min_args, ai->max_args, call->nargs);
        return NULL;
    }
    qctx_t rq = {.kind = CTX_ROW, .from = q->from, .alias = q->alias, .windowed = q->windowed,
                 .clause = "an aggregate argument"};
    const cep_type_t *at = NULL;
    if (call->nargs > 0 && call->args[0]->kind != AST_STAR) {
        cep_progbuf_t tmp;
        cep_progbuf_init(&tmp, b->a);
        cc_t c = {b, &rq, &tmp};
        at = compile(&c, call->args[0]);
        if (!at) return NULL;
    }
    switch (ai->kind) {
    case AGG_COUNT:
    case AGG_COUNT_DISTINCT: return &cep_type_bigint;
    case AGG_SUM:
        if (!at || (!cep_type_is_numeric(at) && at->kind != CEP_K_NULL)) {
            failf(b, &call->pos, CEP_ERR_SEMANTIC, "SUM needs a numeric argument");
            return NULL;
        }
        return at->kind == CEP_K_NULL ? &cep_type_int : at;
    case AGG_AVG:
        if (!at || !cep_type_is_numeric(at)) {
            failf(b, &call->pos, CEP_ERR_SEMANTIC, "AVG needs a numeric argument");
            return NULL;
        }
        return &cep_type_double;
    case AGG_MIN:
    case AGG_MAX:
        if (!at || at->kind == CEP_K_ARRAY || at->kind == CEP_K_MAP || at->kind == CEP_K_STRUCT ||
            at->kind == CEP_K_BOOLEAN) {
            failf(b, &call->pos, CEP_ERR_SEMANTIC, "%s needs a comparable argument", ai->name);
            return NULL;
        }
        return at;
    case AGG_LATEST:
    case AGG_EARLIEST: {
        if (!at) {
            failf(b, &call->pos, CEP_ERR_SEMANTIC, "%s needs a column", ai->name);
            return NULL;
        }
        bool has_n = call->nargs >= 2 && call->args[1]->kind == AST_LITERAL &&
                     cep_type_is_integral(call->args[1]->lit_type);
        for (uint32_t i = 1; i < call->nargs; i++) {
            cep_ast_t *a = call->args[i];
            bool ok = a->kind == AST_LITERAL &&
                      ((i == 1 && (a->lit_type->kind == CEP_K_BOOLEAN || cep_type_is_integral(a->lit_type))) ||
                       (i == 2 && a->lit_type->kind == CEP_K_BOOLEAN && has_n));
            if (!ok) {
                failf(b, &a->pos, CEP_ERR_SEMANTIC, "%s takes (column[, n][, ignoreNulls])", ai->name);
                return NULL;
            }
        }
        if (!has_n) return at;
        cep_type_t *t = balloc(b, sizeof *t);
        if (!t) return NULL;
        t->kind = CEP_K_ARRAY;
        t->elem = at;
        return t;
    }
    case AGG_COLLECT_LIST:
    case AGG_COLLECT_SET:
    case AGG_TOPKDISTINCT:
    case AGG_TOPK: {
        if (!at) {
            failf(b, &call->pos, CEP_ERR_SEMANTIC, "%s needs a column", ai->name);
            return NULL;
        }
        cep_type_t *t = balloc(b, sizeof *t);
        if (!t) return NULL;
        t->kind = CEP_K_ARRAY;
        t->elem = at;
        if (ai->kind == AGG_TOPK || ai->kind == AGG_TOPKDISTINCT) {
            cep_ast_t *k = call->args[call->nargs - 1];
            if (k->kind != AST_LITERAL || !cep_type_is_integral(k->lit_type) || k->lit.u.i < 1) {
                failf(b, &k->pos, CEP_ERR_SEMANTIC, "%s needs a positive integer literal k", ai->name);
                return NULL;
            }
            if (at->kind != CEP_K_INT && at->kind != CEP_K_BIGINT && at->kind != CEP_K_DOUBLE &&
                at->kind != CEP_K_STRING && at->kind != CEP_K_DECIMAL) {
                failf(b, &call->pos, CEP_ERR_SEMANTIC, "%s needs a number or a string", ai->name);
                return NULL;
            }
            if (ai->kind == AGG_TOPK && call->nargs == 3) {
                /* TOPK(sort_col, other_col, k): ARRAY<STRUCT<sort_col, col0>> */
                cep_progbuf_t tmp;
                cep_progbuf_init(&tmp, b->a);
                cc_t c = {b, &rq, &tmp};
                const cep_type_t *ot = compile(&c, call->args[1]);
                if (!ot) return NULL;
                cep_type_t *st = balloc(b, sizeof *st);
                cep_field_t *f = balloc(b, 2 * sizeof *f);
                if (!st || !f) return NULL;
                f[0].name = "sort_col";
                f[0].type = at;
                f[1].name = "col0";
                f[1].type = ot;
                st->kind = CEP_K_STRUCT;
                st->nfields = 2;
                st->fields = f;
                t->elem = st;
            }
        }
        return t;
    }
    default: break;
    }
    failf(b, &call->pos, CEP_ERR_UNSUPPORTED, "unsupported aggregate %s", call->name);
    return NULL;
}

static bool plan_aggregates(binder_t *b, qctx_t *q, cep_query_t *qu)
{
    qu->naggs = q->naggs;
    qu->aggs = balloc(b, (q->naggs + 1) * sizeof *qu->aggs);
    if (!qu->aggs) return false;
    qctx_t rq = {.kind = CTX_ROW, .from = q->from, .alias = q->alias, .windowed = q->windowed,
                 .clause = "an aggregate argument"};
    for (uint32_t i = 0; i < q->naggs; i++) {
        cep_ast_t *call = q->aggs[i];
        cep_aggspec_t *s = &qu->aggs[i];
        const agginfo_t *ai = agg_info(call->name);
        s->kind = ai->kind;
        if (s->kind == AGG_COUNT && call->distinct) s->kind = AGG_COUNT_DISTINCT;
        s->type = cep_agg_result_type(b, q, call);
        if (!s->type) return false;
        if (call->nargs == 0 || call->args[0]->kind == AST_STAR) {
            s->count_star = true;
        } else if (s->kind == AGG_COUNT && call->args[0]->kind == AST_LITERAL &&
                   call->args[0]->lit.kind != CEP_K_NULL) {
            s->count_star = true; /* COUNT(1) counts rows */
        } else {
            s->arg = program(b, &rq, call->args[0], &s->arg_type);
            if (!s->arg) return false;
        }
        s->ignore_nulls = true;
        s->n = 1;
        if (s->kind == AGG_LATEST || s->kind == AGG_EARLIEST) {
            for (uint32_t k = 1; k < call->nargs; k++) {
                cep_ast_t *a = call->args[k];
                if (a->lit_type->kind == CEP_K_BOOLEAN) s->ignore_nulls = a->lit.u.b;
                else {
                    s->n = a->lit.u.i;
                    s->n_given = true;
                }
            }
        }
        if (s->kind == AGG_TOPK || s->kind == AGG_TOPKDISTINCT) {
            s->n = call->args[call->nargs - 1]->lit.u.i;
            if (s->kind == AGG_TOPK && call->nargs == 3) {
                s->arg2 = program(b, &rq, call->args[1], NULL);
                if (!s->arg2) return false;
            }
        }
        if (s->kind == AGG_COLLECT_LIST) s->n = b->opts->collect_list_limit;
        if (s->kind == AGG_COLLECT_SET) s->n = b->opts->collect_set_limit;
    }
    return true;
}

/* ---- WHERE atoms and the prefilter ---------------------------------------- */

static void split_conjuncts(cep_ast_t *e, cep_ast_t **out, uint32_t *n, uint32_t cap)
{
    if (e->kind == AST_BINARY && e->op == 'A') {
        split_conjuncts(e->args[0], out, n, cap);
        split_conjuncts(e->args[1], out, n, cap);
    } else if (*n < cap)
        out[(*n)++] = e;
}

static int atom_for(binder_t *b, cep_stream_t *s, qctx_t *q, cep_ast_t *e)
{
    const cep_type_t *t;
    cep_program_t *p = program(b, q, e, &t);
    if (!p) return -1;
    if (t->kind != CEP_K_BOOLEAN) {
        failf(b, &e->pos, CEP_ERR_SEMANTIC, "WHERE expression must be BOOLEAN, not %s: %s",
              type_name(b, t), expr_text(b, e));
        return -1;
    }
    for (uint32_t i = 0; i < s->natoms; i++)
        if (!strcmp(s->atoms[i]->text, p->text)) return (int)i;
    cep_program_t **n = balloc(b, (s->natoms + 1) * sizeof *n);
    if (!n) return -1;
    if (s->natoms) memcpy(n, s->atoms, s->natoms * sizeof *n);
    n[s->natoms] = p;
    s->atoms = n;
    if (s->natoms + 1 > b->rs->max_atoms) b->rs->max_atoms = s->natoms + 1;
    return (int)s->natoms++;
}

/* slot = constant conjunct usable by the prefilter? */
static bool pf_candidate(const cep_stream_t *s, const cep_ast_t *e, uint32_t *slot, cep_value_t *v)
{
    if (e->kind != AST_BINARY || e->op != TK_EQ) return false;
    for (int i = 0; i < 2; i++) {
        const cep_ast_t *c = e->args[i], *l = e->args[1 - i];
        if (c->kind != AST_COLUMN || l->kind != AST_LITERAL) continue;
        int ci = find_col(s, c->name);
        if (ci < 0) continue;
        cep_kind_t ck = s->cols[ci].type->kind, lk = l->lit.kind;
        bool ok = (ck == CEP_K_STRING && lk == CEP_K_STRING) ||
                  ((ck == CEP_K_INT || ck == CEP_K_BIGINT) && (lk == CEP_K_INT || lk == CEP_K_BIGINT));
        if (!ok) continue;
        *slot = (uint32_t)ci;
        *v = l->lit;
        return true;
    }
    return false;
}

typedef struct pf_entry {
    uint32_t slot;
    cep_value_t v;
    uint32_t query;
} pf_entry_t;

static bool build_prefilter(binder_t *b, cep_stream_t *s, pf_entry_t *ents, uint32_t nents)
{
    /* group entries by slot */
    for (uint32_t i = 0; i < nents; i++) {
        cep_pf_index_t *ix = NULL;
        for (uint32_t k = 0; k < s->npf; k++)
            if (s->pf[k].slot == ents[i].slot) ix = &s->pf[k];
        if (!ix) {
            cep_pf_index_t *n = balloc(b, (s->npf + 1) * sizeof *n);
            if (!n) return false;
            if (s->npf) memcpy(n, s->pf, s->npf * sizeof *n);
            s->pf = n;
            ix = &s->pf[s->npf++];
            ix->slot = ents[i].slot;
            uint32_t cnt = 0;
            for (uint32_t j = 0; j < nents; j++) cnt += ents[j].slot == ix->slot;
            uint32_t nb = 8;
            while (nb < cnt * 2) nb *= 2;
            ix->nbuckets = nb;
            ix->buckets = balloc(b, nb * sizeof *ix->buckets);
            if (!ix->buckets) return false;
        }
        uint64_t h = cep_value_hash(&ents[i].v, 0);
        uint32_t m = ix->nbuckets - 1;
        for (uint32_t k = (uint32_t)h & m;; k = (k + 1) & m) {
            cep_pf_bucket_t *bk = &ix->buckets[k];
            if (!bk->nqueries || cep_value_eq(&bk->value, &ents[i].v)) {
                uint32_t *nq = balloc(b, (bk->nqueries + 1) * sizeof *nq);
                if (!nq) return false;
                if (bk->nqueries) memcpy(nq, bk->queries, bk->nqueries * sizeof *nq);
                nq[bk->nqueries++] = ents[i].query;
                bk->queries = nq;
                bk->value = ents[i].v;
                break;
            }
        }
    }
    return true;
}

/* ---- queries ------------------------------------------------------------- */

static const char *item_name(binder_t *b, const cep_ast_item_t *it, uint32_t *synthetic)
{
    if (it->alias) return it->alias;
    const cep_ast_t *e = it->expr;
    if (e->kind == AST_COLUMN) return e->name;
    if (e->kind == AST_DEREF) return e->name;
    return cep_arena_printf(b->a, "KSQL_COL_%u", (*synthetic)++);
}

static bool add_sink_col(binder_t *b, cep_stream_t *sink, const char *name, const cep_type_t *t,
                         bool is_key, const cep_pos_t *pos)
{
    for (uint32_t i = 0; i < sink->ncols; i++)
        if (!strcmp(sink->cols[i].name, name))
            return failf(b, pos, CEP_ERR_SEMANTIC, "duplicate column name '%s' in the projection", name);
    sink->cols[sink->ncols].name = name;
    sink->cols[sink->ncols].type = t->kind == CEP_K_NULL ? &cep_type_string : t;
    sink->cols[sink->ncols].is_key = is_key;
    sink->ncols++;
    return true;
}

static uint64_t fingerprint(const char *text, size_t n)
{
    /* whitespace-insensitive hash of the statement */
    cep_buf_t buf;
    cep_buf_init(&buf);
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (isspace(ch)) {
            space = true;
            continue;
        }
        if (space && buf.len) cep_buf_putc(&buf, ' ');
        space = false;
        cep_buf_putc(&buf, (char)ch);
    }
    uint64_t h = cep_hash_bytes(buf.data ? buf.data : "", buf.len, 0x6365707275);
    cep_buf_free(&buf);
    return h;
}


/* ---- MATCH_RECOGNIZE ----------------------------------------------------------- */

typedef struct mctx {
    binder_t *b;
    const cep_ast_match_t *am;
    cep_stream_t *from;
    const char **vars;
    uint32_t nvars;
    cep_nav_t *navs;
    const char **navtext; /* for dedup */
    uint32_t nnavs, capnavs;
    uint32_t max_prev;
    bool in_define;
} mctx_t;

static int var_index(const mctx_t *m, const char *name)
{
    for (uint32_t i = 0; i < m->nvars; i++)
        if (!strcmp(m->vars[i], name)) return (int)i;
    return -1;
}

/* A variable or a subset: its mask; 0 with *ok false when neither. */
static uint64_t var_mask(const mctx_t *m, const char *name, bool *ok)
{
    int v = var_index(m, name);
    *ok = true;
    if (v >= 0) return 1ULL << v;
    for (uint32_t i = 0; i < m->am->nsubsets; i++)
        if (!strcmp(m->am->subsets[i].name, name)) {
            uint64_t mask = 0;
            for (uint32_t k = 0; k < m->am->subsets[i].nvars; k++) {
                int x = var_index(m, m->am->subsets[i].vars[k]);
                if (x >= 0) mask |= 1ULL << x;
            }
            return mask;
        }
    *ok = false;
    return 0;
}

static bool collect_vars(binder_t *b, mctx_t *m, const cep_pat_t *p)
{
    switch (p->kind) {
    case PAT_VAR:
        if (var_index(m, p->var) < 0) {
            if (m->nvars == 64) return failf(b, &p->pos, CEP_ERR_UNSUPPORTED, "a pattern has at most 64 variables");
            m->vars[m->nvars++] = p->var;
        }
        return true;
    case PAT_SEQ:
    case PAT_ALT:
        for (uint32_t i = 0; i < p->nitems; i++)
            if (!collect_vars(b, m, p->items[i])) return false;
        return true;
    case PAT_QUANT: return collect_vars(b, m, p->sub);
    default: return true;
    }
}

static void pat_format(const cep_pat_t *p, cep_buf_t *o)
{
    switch (p->kind) {
    case PAT_VAR: cep_buf_puts(o, p->var); break;
    case PAT_START: cep_buf_putc(o, '^'); break;
    case PAT_END: cep_buf_putc(o, '$'); break;
    case PAT_SEQ:
    case PAT_ALT:
        if (p->kind == PAT_ALT || !p->nitems) cep_buf_putc(o, '(');
        for (uint32_t i = 0; i < p->nitems; i++) {
            if (i) cep_buf_puts(o, p->kind == PAT_ALT ? " | " : " ");
            bool group = p->kind == PAT_SEQ && p->items[i]->kind == PAT_ALT;
            if (group) cep_buf_putc(o, '(');
            pat_format(p->items[i], o);
            if (group) cep_buf_putc(o, ')');
        }
        if (p->kind == PAT_ALT || !p->nitems) cep_buf_putc(o, ')');
        break;
    case PAT_QUANT: {
        bool group = p->sub->kind == PAT_SEQ || p->sub->kind == PAT_QUANT;
        if (group) cep_buf_putc(o, '(');
        pat_format(p->sub, o);
        if (group) cep_buf_putc(o, ')');
        if (p->min == 0 && p->max == UINT32_MAX) cep_buf_putc(o, '*');
        else if (p->min == 1 && p->max == UINT32_MAX) cep_buf_putc(o, '+');
        else if (p->min == 0 && p->max == 1) cep_buf_putc(o, '?');
        else if (p->max == UINT32_MAX) cep_buf_printf(o, "{%u,}", p->min);
        else if (p->min == p->max) cep_buf_printf(o, "{%u}", p->min);
        else cep_buf_printf(o, "{%u,%u}", p->min, p->max);
        if (p->reluctant) cep_buf_putc(o, '?');
        break;
    }
    }
}

/* ---- NFA code generation: Thompson construction, preference in SPLIT order */

typedef struct nfabuf {
    cep_nfa_insn_t *code;
    uint32_t n, cap;
} nfabuf_t;

static uint32_t nfa_emit(binder_t *b, nfabuf_t *nb, uint8_t op, uint32_t x, uint32_t y)
{
    if (nb->n == nb->cap) {
        uint32_t cap = nb->cap ? nb->cap * 2 : 32;
        cep_nfa_insn_t *c = balloc(b, cap * sizeof *c);
        if (!c) return UINT32_MAX;
        if (nb->n) memcpy(c, nb->code, nb->n * sizeof *c);
        nb->code = c;
        nb->cap = cap;
    }
    nb->code[nb->n] = (cep_nfa_insn_t){op, x, y};
    return nb->n++;
}

static bool nfa_gen(binder_t *b, mctx_t *m, nfabuf_t *nb, const cep_pat_t *p)
{
    if (nb->n > 20000) return failf(b, &p->pos, CEP_ERR_UNSUPPORTED, "the pattern is too large once its quantifiers are expanded");
    switch (p->kind) {
    case PAT_VAR: return nfa_emit(b, nb, NFA_VAR, (uint32_t)var_index(m, p->var), 0) != UINT32_MAX;
    case PAT_START: return nfa_emit(b, nb, NFA_START, 0, 0) != UINT32_MAX;
    case PAT_END: return nfa_emit(b, nb, NFA_END, 0, 0) != UINT32_MAX;
    case PAT_SEQ:
        for (uint32_t i = 0; i < p->nitems; i++)
            if (!nfa_gen(b, m, nb, p->items[i])) return false;
        return true;
    case PAT_ALT: {
        /* SPLIT a, next; a; JMP end; next: SPLIT b, ...; last */
        uint32_t jumps[256], nj = 0;
        if (p->nitems > 256) return failf(b, &p->pos, CEP_ERR_UNSUPPORTED, "too many alternatives");
        for (uint32_t i = 0; i < p->nitems; i++) {
            uint32_t split = UINT32_MAX;
            if (i + 1 < p->nitems) split = nfa_emit(b, nb, NFA_SPLIT, 0, 0);
            if (i + 1 < p->nitems && split == UINT32_MAX) return false;
            if (split != UINT32_MAX) nb->code[split].x = nb->n;
            if (!nfa_gen(b, m, nb, p->items[i])) return false;
            if (i + 1 < p->nitems) {
                jumps[nj++] = nfa_emit(b, nb, NFA_JMP, 0, 0);
                nb->code[split].y = nb->n;
            }
        }
        for (uint32_t i = 0; i < nj; i++) nb->code[jumps[i]].x = nb->n;
        return true;
    }
    case PAT_QUANT: {
        for (uint32_t i = 0; i < p->min; i++)
            if (!nfa_gen(b, m, nb, p->sub)) return false;
        if (p->max == UINT32_MAX) {
            /* L: SPLIT body, exit (greedy) | SPLIT exit, body (reluctant); body; JMP L */
            uint32_t l = nfa_emit(b, nb, NFA_SPLIT, 0, 0);
            if (l == UINT32_MAX) return false;
            uint32_t body = nb->n;
            if (!nfa_gen(b, m, nb, p->sub) || nfa_emit(b, nb, NFA_JMP, l, 0) == UINT32_MAX) return false;
            uint32_t exit = nb->n;
            nb->code[l].x = p->reluctant ? exit : body;
            nb->code[l].y = p->reluctant ? body : exit;
            return true;
        }
        /* up to max - min optional copies, nested: (x (x (x)?)?)? */
        uint32_t splits[10001], ns = 0;
        for (uint32_t i = p->min; i < p->max; i++) {
            uint32_t sp = nfa_emit(b, nb, NFA_SPLIT, 0, 0);
            if (sp == UINT32_MAX) return false;
            splits[ns++] = sp;
            uint32_t body = nb->n;
            nb->code[sp].x = body; /* patched below for reluctant */
            if (!nfa_gen(b, m, nb, p->sub)) return false;
        }
        uint32_t exit = nb->n;
        for (uint32_t i = 0; i < ns; i++) {
            uint32_t body = splits[i] + 1;
            nb->code[splits[i]].x = p->reluctant ? exit : body;
            nb->code[splits[i]].y = p->reluctant ? body : exit;
        }
        return true;
    }
    }
    return false;
}

/* ---- navigation rewriting: FIRST/LAST/PREV/aggregates/v.col -> scope columns */

static bool strip_qualifiers(mctx_t *m, cep_ast_t *e, const char **var, const cep_pos_t **where)
{
    if (!e) return true;
    if (e->kind == AST_COLUMN && e->qualifier) {
        bool ok;
        var_mask(m, e->qualifier, &ok);
        if (ok) {
            if (*var && strcmp(*var, e->qualifier))
                return failf(m->b, &e->pos, CEP_ERR_SEMANTIC,
                             "a navigation or aggregate may reference one pattern variable, found %s and %s", *var,
                             e->qualifier);
            *var = e->qualifier;
            *where = &e->pos;
        }
        e->qualifier = NULL;
    }
    for (uint32_t i = 0; i < e->nargs; i++)
        if (!strip_qualifiers(m, e->args[i], var, where)) return false;
    if (!strip_qualifiers(m, e->operand, var, where)) return false;
    return strip_qualifiers(m, e->else_, var, where);
}

static bool is_call(const cep_ast_t *e, const char *name)
{
    return e->kind == AST_CALL && !strcmp(e->name, name);
}

static int add_nav(mctx_t *m, cep_nav_t *nv, const char *text)
{
    for (uint32_t i = 0; i < m->nnavs; i++) {
        const cep_nav_t *o = &m->navs[i];
        if (o->kind == nv->kind && o->vars == nv->vars && o->offset == nv->offset &&
            o->prev_from_last == nv->prev_from_last && o->agg == nv->agg && o->count_star == nv->count_star &&
            o->classifier == nv->classifier && !strcmp(m->navtext[i], text))
            return (int)i;
    }
    if (m->nnavs == m->capnavs) {
        uint32_t cap = m->capnavs ? m->capnavs * 2 : 16;
        cep_nav_t *n = balloc(m->b, cap * sizeof *n);
        const char **t = balloc(m->b, cap * sizeof *t);
        if (!n || !t) return -1;
        if (m->nnavs) memcpy(n, m->navs, m->nnavs * sizeof *n), memcpy(t, m->navtext, m->nnavs * sizeof *t);
        m->navs = n;
        m->navtext = t;
        m->capnavs = cap;
    }
    m->navs[m->nnavs] = *nv;
    m->navtext[m->nnavs] = text;
    return (int)m->nnavs++;
}

static cep_ast_t *nav_ref(mctx_t *m, cep_ast_t *at, int k)
{
    if (k < 0) return NULL;
    cep_ast_t *c = balloc(m->b, sizeof *c);
    if (!c) return NULL;
    c->kind = AST_COLUMN;
    c->pos = at->pos;
    c->name = cep_arena_printf(m->b->a, "$NAV%d", k);
    c->slot = c->agg = c->func = -1;
    return c->name ? c : NULL;
}

/* Bind an inner expression against the input row; its type. */
static bool nav_inner(mctx_t *m, cep_nav_t *nv, cep_ast_t *inner)
{
    qctx_t q = {.kind = CTX_ROW, .from = m->from, .clause = "MATCH_RECOGNIZE"};
    const cep_type_t *t = NULL;
    nv->inner = program(m->b, &q, inner, &t);
    if (!nv->inner) return false;
    nv->type = t;
    return true;
}

static cep_ast_t *rewrite_nav(mctx_t *m, cep_ast_t *e)
{
    binder_t *b = m->b;
    if (!e) return e;
    if (e->kind == AST_COLUMN && e->qualifier) {
        bool ok;
        uint64_t mask = var_mask(m, e->qualifier, &ok);
        if (!ok) {
            if ((m->am->alias && !strcmp(e->qualifier, m->am->alias)) || !strcmp(e->qualifier, m->from->name)) {
                e->qualifier = NULL;
                return e;
            }
            failf(b, &e->pos, CEP_ERR_SEMANTIC, "unknown pattern variable '%s'", e->qualifier);
            return NULL;
        }
        cep_nav_t nv = {.kind = NAV_LAST, .vars = mask};
        cep_ast_t *inner = e;
        e->qualifier = NULL;
        if (!nav_inner(m, &nv, inner)) return NULL;
        cep_buf_t t;
        cep_buf_init(&t);
        cep_ast_format(inner, &t);
        cep_buf_printf(&t, "|%llx", (unsigned long long)nv.vars);
        const char *text = cep_arena_strdup(b->a, cep_buf_cstr(&t));
        cep_buf_free(&t);
        return nav_ref(m, e, add_nav(m, &nv, text));
    }
    if (e->kind == AST_CALL) {
        bool first = is_call(e, "FIRST"), last = is_call(e, "LAST"), prev = is_call(e, "PREV"),
             nextc = is_call(e, "NEXT");
        bool classifier = is_call(e, "CLASSIFIER"), mnum = is_call(e, "MATCH_NUMBER");
        int aggk = is_call(e, "COUNT") ? AGG_COUNT : is_call(e, "SUM") ? AGG_SUM : is_call(e, "AVG") ? AGG_AVG
                 : is_call(e, "MIN") ? AGG_MIN : is_call(e, "MAX") ? AGG_MAX : -1;
        if (nextc) {
            failf(b, &e->pos, CEP_ERR_UNSUPPORTED, "NEXT reads rows after the current one; cep does not support it");
            return NULL;
        }
        if (classifier || mnum) {
            if (e->nargs) {
                failf(b, &e->pos, CEP_ERR_SEMANTIC, "%s takes no arguments", e->name);
                return NULL;
            }
            cep_nav_t nv = {.kind = classifier ? NAV_CLASSIFIER : NAV_MATCH_NUMBER,
                            .type = classifier ? &cep_type_string : &cep_type_bigint};
            return nav_ref(m, e, add_nav(m, &nv, e->name));
        }
        if (first || last || prev || aggk >= 0) {
            if (e->nargs < 1 || e->nargs > ((first || last || prev) ? 2 : 1)) {
                failf(b, &e->pos, CEP_ERR_SEMANTIC, "%s takes %s", e->name,
                      aggk >= 0 ? "one argument here" : "(expression[, offset])");
                return NULL;
            }
            cep_nav_t nv = {.kind = first ? NAV_FIRST : last ? NAV_LAST : prev ? NAV_PREV : NAV_AGG, .agg = aggk};
            if (e->nargs == 2) {
                cep_ast_t *o = e->args[1];
                if (o->kind != AST_LITERAL || (o->lit.kind != CEP_K_INT && o->lit.kind != CEP_K_BIGINT) || o->lit.u.i < 0) {
                    failf(b, &o->pos, CEP_ERR_SEMANTIC, "the offset of %s must be a non-negative integer literal",
                          e->name);
                    return NULL;
                }
                nv.offset = o->lit.u.i;
            } else if (prev)
                nv.offset = 1;
            cep_ast_t *inner = e->args[0];
            const char *var = NULL;
            const cep_pos_t *vpos = NULL;
            if (inner->kind == AST_STAR) {
                if (aggk != AGG_COUNT) {
                    failf(b, &inner->pos, CEP_ERR_SEMANTIC, "only COUNT takes *");
                    return NULL;
                }
                nv.count_star = true;
                nv.type = &cep_type_bigint;
            } else if (inner->kind == AST_CALL && is_call(inner, "CLASSIFIER") && (first || last)) {
                nv.classifier = true;
                nv.type = &cep_type_string;
            } else {
                if (!strip_qualifiers(m, inner, &var, &vpos)) return NULL;
                if (var) {
                    bool ok;
                    nv.vars = var_mask(m, var, &ok);
                    if (prev) nv.prev_from_last = true;
                }
                if (!nav_inner(m, &nv, inner)) return NULL;
                if (prev && nv.offset > m->max_prev) m->max_prev = (uint32_t)nv.offset;
            }
            if (aggk >= 0) {
                const cep_type_t *it = nv.type;
                if (aggk == AGG_COUNT) nv.type = &cep_type_bigint;
                else if (aggk == AGG_AVG) nv.type = &cep_type_double;
                else if (aggk == AGG_SUM) {
                    if (!it || (it->kind != CEP_K_INT && it->kind != CEP_K_BIGINT && it->kind != CEP_K_DOUBLE &&
                                it->kind != CEP_K_DECIMAL)) {
                        failf(b, &e->pos, CEP_ERR_SEMANTIC, "SUM needs a numeric argument");
                        return NULL;
                    }
                    if (it->kind == CEP_K_INT) nv.type = &cep_type_bigint;
                }
            }
            cep_buf_t t;
            cep_buf_init(&t);
            cep_ast_format(e, &t);
            cep_buf_printf(&t, "|%llx", (unsigned long long)nv.vars);
            const char *text = cep_arena_strdup(b->a, cep_buf_cstr(&t));
            cep_buf_free(&t);
            return nav_ref(m, e, add_nav(m, &nv, text));
        }
    }
    for (uint32_t i = 0; i < e->nargs; i++)
        if (!(e->args[i] = rewrite_nav(m, e->args[i]))) return NULL;
    if (e->operand && !(e->operand = rewrite_nav(m, e->operand))) return NULL;
    if (e->else_ && !(e->else_ = rewrite_nav(m, e->else_))) return NULL;
    return e;
}

static void collect_navs(const cep_ast_t *e, uint32_t *out, uint32_t *n, uint32_t cap)
{
    if (!e) return;
    if (e->kind == AST_COLUMN && e->name && !strncmp(e->name, "$NAV", 4)) {
        uint32_t k = (uint32_t)strtoul(e->name + 4, NULL, 10);
        for (uint32_t i = 0; i < *n; i++)
            if (out[i] == k) return;
        if (*n < cap) out[(*n)++] = k;
    }
    for (uint32_t i = 0; i < e->nargs; i++) collect_navs(e->args[i], out, n, cap);
    collect_navs(e->operand, out, n, cap);
    collect_navs(e->else_, out, n, cap);
}

static bool mexpr(mctx_t *m, cep_stream_t *scope, cep_ast_t *e, cep_mexpr_t *out, const cep_type_t **type,
                  const char *clause)
{
    uint32_t navs[256], n = 0;
    collect_navs(e, navs, &n, 256);
    qctx_t q = {.kind = CTX_ROW, .from = scope, .alias = m->am->alias, .clause = clause};
    out->prog = program(m->b, &q, e, type);
    if (!out->prog) return false;
    out->navs = balloc(m->b, (n + 1) * sizeof *out->navs);
    if (!out->navs) return false;
    memcpy(out->navs, navs, n * sizeof *navs);
    out->nnavs = n;
    return true;
}

/* Compile a MATCH_RECOGNIZE into an internal query whose output stream (the
 * partition columns, then the measures) the statement's SELECT reads. */
static cep_stream_t *bind_match(binder_t *b, const cep_ast_stmt_t *st, cep_ast_select_t *sel, cep_stream_t *from,
                                int64_t max_runs)
{
    cep_ast_match_t *am = sel->match;
    mctx_t m = {.b = b, .am = am, .from = from};
    m.vars = balloc(b, 64 * sizeof *m.vars);
    cep_match_plan_t *plan = balloc(b, sizeof *plan);
    if (!m.vars || !plan) return NULL;
    if (from->is_table) {
        failf(b, &am->pos, CEP_ERR_SEMANTIC, "MATCH_RECOGNIZE reads a stream, and %s is a table", from->name);
        return NULL;
    }
    for (uint32_t i = 0; i < from->ncols; i++) from->needed[i] = true;
    if (!collect_vars(b, &m, am->pattern)) return NULL;
    plan->absent_var = -1;
    if (am->absent_var) {
        if (var_index(&m, am->absent_var) >= 0) {
            failf(b, &am->absent_pos, CEP_ERR_SEMANTIC, "NOT FOLLOWED BY %s: the variable is also in PATTERN",
                  am->absent_var);
            return NULL;
        }
        bool defined = false;
        for (uint32_t i = 0; i < am->ndefines; i++) defined |= !strcmp(am->defines[i].var, am->absent_var);
        if (!defined) {
            failf(b, &am->absent_pos, CEP_ERR_SEMANTIC, "NOT FOLLOWED BY %s needs a DEFINE for %s", am->absent_var,
                  am->absent_var);
            return NULL;
        }
        if (m.nvars == 64) {
            failf(b, &am->absent_pos, CEP_ERR_UNSUPPORTED, "a pattern has at most 64 variables");
            return NULL;
        }
        plan->absent_var = (int)m.nvars;
        plan->absent_ms = am->absent_ms;
        m.vars[m.nvars++] = am->absent_var;
    }
    for (uint32_t i = 0; i < am->ndefines; i++)
        if (var_index(&m, am->defines[i].var) < 0) {
            failf(b, &am->defines[i].pos, CEP_ERR_SEMANTIC, "DEFINE names %s, which is not in PATTERN",
                  am->defines[i].var);
            return NULL;
        }
    for (uint32_t i = 0; i < am->nsubsets; i++)
        for (uint32_t k = 0; k < am->subsets[i].nvars; k++)
            if (var_index(&m, am->subsets[i].vars[k]) < 0) {
                failf(b, &am->subsets[i].pos, CEP_ERR_SEMANTIC, "SUBSET %s names %s, which is not in PATTERN",
                      am->subsets[i].name, am->subsets[i].vars[k]);
                return NULL;
            }
    plan->from = from;
    plan->vars = m.vars;
    plan->nvars = m.nvars;
    plan->skip = am->skip;
    if (am->skip_var) {
        bool ok;
        plan->skip_vars = var_mask(&m, am->skip_var, &ok);
        if (!ok) {
            failf(b, &am->skip_pos, CEP_ERR_SEMANTIC, "AFTER MATCH SKIP TO names %s, which is not a pattern variable",
                  am->skip_var);
            return NULL;
        }
    }
    plan->within_ms = am->has_within ? am->within_ms : 0;
    cep_buf_t pt;
    cep_buf_init(&pt);
    pat_format(am->pattern, &pt);
    plan->pattern_text = cep_arena_strdup(b->a, cep_buf_cstr(&pt));
    cep_buf_free(&pt);
    plan->max_runs = max_runs ? (uint32_t)max_runs : 10000;
    /* the NFA */
    nfabuf_t nb = {0};
    if (!nfa_gen(b, &m, &nb, am->pattern) || nfa_emit(b, &nb, NFA_MATCH, 0, 0) == UINT32_MAX) return NULL;
    plan->code = nb.code;
    plan->ncode = nb.n;
    /* ORDER BY: event time first */
    if (!am->norder) {
        failf(b, &am->pos, CEP_ERR_SEMANTIC, "MATCH_RECOGNIZE needs ORDER BY the event-time column");
        return NULL;
    }
    const char *tsname = from->ts_col >= 0 ? from->cols[from->ts_col].name : "ROWTIME";
    if (am->order[0]->kind != AST_COLUMN || strcmp(am->order[0]->name, tsname)) {
        failf(b, &am->order[0]->pos, CEP_ERR_SEMANTIC, "MATCH_RECOGNIZE must ORDER BY the event-time column %s first",
              tsname);
        return NULL;
    }
    qctx_t rq = {.kind = CTX_ROW, .from = from, .alias = am->alias, .clause = "MATCH_RECOGNIZE"};
    plan->order = balloc(b, (am->norder + 1) * sizeof *plan->order);
    plan->partition = balloc(b, (am->npartition + 1) * sizeof *plan->partition);
    if (!plan->order || !plan->partition) return NULL;
    for (uint32_t i = 1; i < am->norder; i++)
        if (!(plan->order[plan->norder++] = program(b, &rq, am->order[i], NULL))) return NULL;
    /* the output stream: partition columns, then measures */
    cep_stream_t *out = balloc(b, sizeof *out);
    if (!out) return NULL;
    out->name = cep_arena_printf(b->a, "%s$MATCH", st->name);
    out->value_format = CEP_FMT_JSON;
    out->key_format = CEP_FMT_NONE;
    out->ts_col = -1;
    out->cols = balloc(b, (am->npartition + am->nmeasures + 1) * sizeof *out->cols);
    if (!out->name || !out->cols) return NULL;
    for (uint32_t i = 0; i < am->npartition; i++) {
        cep_ast_t *pe = am->partition[i];
        const cep_type_t *t = NULL;
        if (pe->kind != AST_COLUMN) {
            failf(b, &pe->pos, CEP_ERR_UNSUPPORTED, "PARTITION BY in MATCH_RECOGNIZE takes columns");
            return NULL;
        }
        if (!(plan->partition[plan->npartition++] = program(b, &rq, pe, &t))) return NULL;
        if (!add_sink_col(b, out, pe->name, t, false, &pe->pos)) return NULL;
    }
    /* DEFINE and MEASURES: rewrite navigations, then compile over the scope */
    plan->define = balloc(b, (m.nvars + 1) * sizeof *plan->define);
    plan->measures = balloc(b, (am->nmeasures + 1) * sizeof *plan->measures);
    if (!plan->define || !plan->measures) return NULL;
    cep_ast_t **defs = balloc(b, (m.nvars + 1) * sizeof *defs);
    cep_ast_t **meas = balloc(b, (am->nmeasures + 1) * sizeof *meas);
    if (!defs || !meas) return NULL;
    plan->define_text = balloc(b, (m.nvars + 1) * sizeof *plan->define_text);
    plan->measure_text = balloc(b, (am->nmeasures + 1) * sizeof *plan->measure_text);
    plan->measure_names = balloc(b, (am->nmeasures + 1) * sizeof *plan->measure_names);
    if (!plan->define_text || !plan->measure_text || !plan->measure_names) return NULL;
    for (uint32_t i = 0; i < am->ndefines; i++)
        plan->define_text[var_index(&m, am->defines[i].var)] = expr_text(b, am->defines[i].cond);
    for (uint32_t i = 0; i < am->nmeasures; i++) {
        plan->measure_text[i] = expr_text(b, am->measures[i].expr);
        plan->measure_names[i] = am->measures[i].alias;
    }
    for (uint32_t i = 0; i < am->ndefines; i++) {
        int v = var_index(&m, am->defines[i].var);
        if (defs[v]) {
            failf(b, &am->defines[i].pos, CEP_ERR_SEMANTIC, "%s is defined twice", am->defines[i].var);
            return NULL;
        }
        if (!(defs[v] = rewrite_nav(&m, am->defines[i].cond))) return NULL;
    }
    for (uint32_t i = 0; i < am->nmeasures; i++)
        if (!(meas[i] = rewrite_nav(&m, am->measures[i].expr))) return NULL;
    cep_stream_t *scope = balloc(b, sizeof *scope);
    if (!scope) return NULL;
    scope->name = from->name;
    scope->ts_col = -1;
    scope->cols = balloc(b, (from->ncols + m.nnavs + 1) * sizeof *scope->cols);
    if (!scope->cols) return NULL;
    for (uint32_t i = 0; i < from->ncols; i++) {
        scope->cols[i] = from->cols[i];
        scope->cols[i].is_key = false;
    }
    for (uint32_t k = 0; k < m.nnavs; k++) {
        scope->cols[from->ncols + k].name = cep_arena_printf(b->a, "$NAV%u", k);
        scope->cols[from->ncols + k].type = m.navs[k].type ? m.navs[k].type : &cep_type_string;
    }
    scope->ncols = from->ncols + m.nnavs;
    if (!init_slots(b, scope)) return NULL;
    plan->scope_ncols = scope->ncols;
    for (uint32_t v = 0; v < m.nvars; v++) {
        if (!defs[v]) continue;
        const cep_type_t *t = NULL;
        if (!mexpr(&m, scope, defs[v], &plan->define[v], &t, "DEFINE")) return NULL;
        if (t->kind != CEP_K_BOOLEAN && t->kind != CEP_K_NULL) {
            failf(b, &defs[v]->pos, CEP_ERR_SEMANTIC, "DEFINE %s must be a boolean condition, not %s", m.vars[v],
                  type_name(b, t));
            return NULL;
        }
    }
    for (uint32_t i = 0; i < am->nmeasures; i++) {
        const cep_type_t *t = NULL;
        if (!mexpr(&m, scope, meas[i], &plan->measures[i], &t, "MEASURES")) return NULL;
        if (!add_sink_col(b, out, am->measures[i].alias, t, false, &am->measures[i].pos)) return NULL;
    }
    plan->nmeasures = am->nmeasures;
    plan->navs = m.navs;
    plan->nnavs = m.nnavs;
    plan->max_prev = m.max_prev;
    if (!init_slots(b, out) || !add_stream(b, out)) return NULL;
    cep_query_t *q = balloc(b, sizeof *q);
    if (!q) return NULL;
    q->kind = CEP_Q_MATCH;
    q->name = out->name;
    q->from = from;
    q->sink = out;
    q->pos = am->pos;
    q->text = cep_arena_strndup(b->a, st->text, st->text_len);
    q->fingerprint = fingerprint(st->text, st->text_len) ^ 0x4d415443480000ULL;
    q->match = plan;
    q->internal = true;
    if (!add_query(b, q)) return NULL;
    return out;
}

/* ---- derived tables with sliding OVER aggregates ---------------------------- */

typedef struct octx {
    binder_t *b;
    cep_stream_t *from;
    cep_overspec_t *overs;
    uint32_t novers, cap;
} octx_t;

static cep_ast_t *rewrite_over(octx_t *o, cep_ast_t *e)
{
    binder_t *b = o->b;
    if (!e) return e;
    if (e->kind == AST_CALL && e->over) {
        cep_ast_over_t *ov = e->over;
        const char *n = e->name;
        cep_overspec_t sp = {.range_ms = ov->range_ms};
        if (!strcmp(n, "COUNT")) sp.kind = e->distinct ? AGG_COUNT_DISTINCT : AGG_COUNT;
        else if (!strcmp(n, "COUNT_DISTINCT")) sp.kind = AGG_COUNT_DISTINCT;
        else if (!strcmp(n, "SUM")) sp.kind = AGG_SUM;
        else if (!strcmp(n, "AVG")) sp.kind = AGG_AVG;
        else if (!strcmp(n, "MIN")) sp.kind = AGG_MIN;
        else if (!strcmp(n, "MAX")) sp.kind = AGG_MAX;
        else {
            failf(b, &e->pos, CEP_ERR_UNSUPPORTED,
                  "%s OVER (...) is not supported; use COUNT, COUNT_DISTINCT, SUM, AVG, MIN or MAX", n);
            return NULL;
        }
        qctx_t q = {.kind = CTX_ROW, .from = o->from, .clause = "OVER"};
        if (e->nargs != 1) {
            failf(b, &e->pos, CEP_ERR_SEMANTIC, "%s OVER takes one argument", n);
            return NULL;
        }
        const cep_type_t *at = NULL;
        if (e->args[0]->kind == AST_STAR) {
            if (sp.kind != AGG_COUNT) {
                failf(b, &e->args[0]->pos, CEP_ERR_SEMANTIC, "only COUNT takes *");
                return NULL;
            }
        } else if (!(sp.arg = program(b, &q, e->args[0], &at)))
            return NULL;
        switch (sp.kind) {
        case AGG_COUNT:
        case AGG_COUNT_DISTINCT: sp.type = &cep_type_bigint; break;
        case AGG_AVG: sp.type = &cep_type_double; break;
        case AGG_SUM:
            if (at->kind != CEP_K_INT && at->kind != CEP_K_BIGINT && at->kind != CEP_K_DOUBLE) {
                failf(b, &e->pos, CEP_ERR_SEMANTIC, "SUM OVER needs an INT, BIGINT or DOUBLE argument");
                return NULL;
            }
            sp.type = at->kind == CEP_K_DOUBLE ? &cep_type_double : &cep_type_bigint;
            break;
        default: sp.type = at; break;
        }
        sp.partition = balloc(b, (ov->npartition + 1) * sizeof *sp.partition);
        if (!sp.partition) return NULL;
        for (uint32_t i = 0; i < ov->npartition; i++)
            if (!(sp.partition[sp.npartition++] = program(b, &q, ov->partition[i], NULL))) return NULL;
        const cep_type_t *ot = NULL;
        if (!(sp.order = program(b, &q, ov->order, &ot))) return NULL;
        if (ot->kind != CEP_K_BIGINT && ot->kind != CEP_K_INT && ot->kind != CEP_K_TIMESTAMP) {
            failf(b, &ov->order->pos, CEP_ERR_SEMANTIC, "OVER orders by a time (BIGINT or TIMESTAMP), not %s",
                  type_name(b, ot));
            return NULL;
        }
        if (o->novers == o->cap) {
            uint32_t cap = o->cap ? o->cap * 2 : 8;
            cep_overspec_t *nn = balloc(b, cap * sizeof *nn);
            if (!nn) return NULL;
            if (o->novers) memcpy(nn, o->overs, o->novers * sizeof *nn);
            o->overs = nn;
            o->cap = cap;
        }
        o->overs[o->novers] = sp;
        cep_ast_t *c = balloc(b, sizeof *c);
        if (!c) return NULL;
        c->kind = AST_COLUMN;
        c->pos = e->pos;
        c->name = cep_arena_printf(b->a, "$OVER%u", o->novers++);
        c->slot = c->agg = c->func = -1;
        return c;
    }
    for (uint32_t i = 0; i < e->nargs; i++)
        if (!(e->args[i] = rewrite_over(o, e->args[i]))) return NULL;
    if (e->operand && !(e->operand = rewrite_over(o, e->operand))) return NULL;
    if (e->else_ && !(e->else_ = rewrite_over(o, e->else_))) return NULL;
    return e;
}

/* FROM (SELECT ..., agg(..) OVER (..) AS n FROM s WHERE ..) alias: an internal
 * query computing the sliding aggregates per row; the outer SELECT reads its
 * rows (and filters them: WHERE n >= 5). */
static cep_stream_t *bind_derived(binder_t *b, const cep_ast_stmt_t *st, cep_ast_select_t *sel)
{
    cep_ast_select_t *in = sel->from_select;
    if (in->from_select || in->match || in->ngroup || in->window.kind != CEP_WIN_NONE || in->having ||
        in->npartition) {
        failf(b, &in->pos, CEP_ERR_UNSUPPORTED,
              "a derived table may only project, filter and compute OVER aggregates");
        return NULL;
    }
    cep_stream_t *from = find_stream(b, in->from);
    if (!from) {
        failf(b, &in->from_pos, CEP_ERR_SEMANTIC, "unknown stream or table '%s'", in->from);
        return NULL;
    }
    if (from->is_table) {
        failf(b, &in->from_pos, CEP_ERR_SEMANTIC, "OVER windows read a stream, and %s is a table", from->name);
        return NULL;
    }
    cep_query_t *q = balloc(b, sizeof *q);
    if (!q) return NULL;
    q->kind = CEP_Q_OVER;
    q->from = from;
    q->pos = in->pos;
    q->internal = true;
    q->text = cep_arena_strndup(b->a, st->text, st->text_len);
    q->fingerprint = fingerprint(st->text, st->text_len) ^ 0x4f564552ULL;
    qctx_t rq = {.kind = CTX_ROW, .from = from, .alias = in->from_alias, .clause = "WHERE"};
    if (in->where) {
        if (contains_aggregate(in->where)) {
            failf(b, &in->where->pos, CEP_ERR_SEMANTIC, "aggregate functions are not allowed in WHERE");
            return NULL;
        }
        cep_ast_t *conj[64];
        uint32_t nconj = 0;
        split_conjuncts(in->where, conj, &nconj, CEP_ARRAY_LEN(conj));
        q->where_atoms = balloc(b, (nconj + 1) * sizeof *q->where_atoms);
        if (!q->where_atoms) return NULL;
        for (uint32_t i = 0; i < nconj; i++) {
            int a = atom_for(b, from, &rq, conj[i]);
            if (a < 0) return NULL;
            q->where_atoms[q->nwhere++] = (uint32_t)a;
        }
    }
    /* the select list: expand *, rewrite OVER calls into scope columns */
    octx_t o = {.b = b, .from = from};
    cep_ast_t **exprs = balloc(b, (in->nitems + from->ncols + 1) * sizeof *exprs);
    const char **names = balloc(b, (in->nitems + from->ncols + 1) * sizeof *names);
    if (!exprs || !names) return NULL;
    uint32_t n = 0, synthetic = 0;
    for (uint32_t i = 0; i < in->nitems; i++) {
        cep_ast_item_t *it = &in->items[i];
        if (it->expr->kind == AST_STAR) {
            for (uint32_t c = 0; c < from->ncols; c++) {
                cep_ast_t *col = balloc(b, sizeof *col);
                if (!col) return NULL;
                col->kind = AST_COLUMN;
                col->pos = it->pos;
                col->name = from->cols[c].name;
                col->slot = col->agg = col->func = -1;
                exprs[n] = col;
                names[n++] = from->cols[c].name;
            }
            continue;
        }
        names[n] = item_name(b, it, &synthetic);
        if (!(exprs[n] = rewrite_over(&o, it->expr))) return NULL;
        n++;
    }
    if (!o.novers) {
        failf(b, &in->pos, CEP_ERR_UNSUPPORTED, "a derived table needs an OVER aggregate (or select from the stream)");
        return NULL;
    }
    cep_stream_t *scope = balloc(b, sizeof *scope);
    if (!scope) return NULL;
    scope->name = from->name;
    scope->ts_col = -1;
    scope->cols = balloc(b, (from->ncols + o.novers + 1) * sizeof *scope->cols);
    if (!scope->cols) return NULL;
    for (uint32_t i = 0; i < from->ncols; i++) scope->cols[i] = from->cols[i], scope->cols[i].is_key = false;
    for (uint32_t k = 0; k < o.novers; k++) {
        scope->cols[from->ncols + k].name = cep_arena_printf(b->a, "$OVER%u", k);
        scope->cols[from->ncols + k].type = o.overs[k].type;
    }
    scope->ncols = from->ncols + o.novers;
    if (!init_slots(b, scope)) return NULL;
    cep_stream_t *out = balloc(b, sizeof *out);
    if (!out) return NULL;
    out->name = cep_arena_printf(b->a, "%s$OVER", st->name);
    out->value_format = CEP_FMT_JSON;
    out->key_format = CEP_FMT_NONE;
    out->ts_col = -1;
    out->cols = balloc(b, (n + 1) * sizeof *out->cols);
    q->proj = balloc(b, (n + 1) * sizeof *q->proj);
    if (!out->name || !out->cols || !q->proj) return NULL;
    qctx_t sq = {.kind = CTX_ROW, .from = scope, .alias = in->from_alias, .clause = "SELECT"};
    for (uint32_t i = 0; i < n; i++) {
        const cep_type_t *t = NULL;
        if (!(q->proj[i] = program(b, &sq, exprs[i], &t))) return NULL;
        if (!add_sink_col(b, out, names[i], t, false, &exprs[i]->pos)) return NULL;
    }
    for (uint32_t i = 0; i < from->ncols; i++) from->needed[i] |= scope->needed[i];
    q->overs = o.overs;
    q->novers = o.novers;
    q->over_scope_ncols = scope->ncols;
    if (!init_slots(b, out) || !add_stream(b, out)) return NULL;
    q->name = out->name;
    q->sink = out;
    if (!add_query(b, q)) return NULL;
    return out;
}

static bool bind_query(binder_t *b, const cep_ast_stmt_t *st)
{
    cep_ast_select_t *sel = st->select;
    cep_stream_t *from = sel->from_select ? bind_derived(b, st, sel) : find_stream(b, sel->from);
    if (!from && sel->from_select) return false;
    if (!from)
        return failf(b, &sel->from_pos, CEP_ERR_SEMANTIC, "unknown stream or table '%s'", sel->from);
    props_t pr;
    if (!read_props(b, st, &pr)) return false;
    if (sel->match && !(from = bind_match(b, st, sel, from, pr.max_runs))) return false;
    bool aggregate = sel->ngroup > 0;
    bool windowed = sel->window.kind != CEP_WIN_NONE;
    if (!aggregate) {
        for (uint32_t i = 0; i < sel->nitems; i++)
            if (contains_aggregate(sel->items[i].expr)) {
                return failf(b, &sel->items[i].pos, CEP_ERR_SEMANTIC,
                             "aggregate functions need a GROUP BY clause");
            }
    }
    if (windowed && !aggregate)
        return failf(b, &sel->window.pos, CEP_ERR_SEMANTIC,
                     "WINDOW clause requires a GROUP BY clause");
    if (sel->having && !aggregate)
        return failf(b, &sel->having->pos, CEP_ERR_SEMANTIC, "HAVING requires a GROUP BY clause");
    if (sel->emit_final && !windowed)
        return failf(b, &sel->emit_pos, CEP_ERR_SEMANTIC,
                     "EMIT FINAL is only supported for windowed aggregations.");
    if (st->kind == STMT_CREATE_AS && st->is_table && !aggregate && !from->is_table)
        return failf(b, &st->pos, CEP_ERR_SEMANTIC,
                     "Invalid result type. Your SELECT query produces a STREAM. Please use CREATE STREAM AS SELECT statement instead.");
    if (st->kind == STMT_CREATE_AS && !st->is_table && aggregate)
        return failf(b, &st->pos, CEP_ERR_SEMANTIC,
                     "Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead.");
    if (aggregate && sel->npartition)
        return failf(b, &sel->partition_by[0]->pos, CEP_ERR_SEMANTIC,
                     "PARTITION BY cannot be combined with GROUP BY");

    cep_query_t *q = balloc(b, sizeof *q);
    if (!q) return false;
    q->name = st->name;
    q->from = from;
    q->pos = st->pos;
    q->text = cep_arena_strndup(b->a, st->text, st->text_len);
    q->fingerprint = fingerprint(st->text, st->text_len);
    q->meta = pr.meta;
    q->from_table = from->is_table;

    /* the sink */
    cep_stream_t *sink = NULL;
    if (st->kind == STMT_INSERT) {
        sink = find_stream(b, st->name);
        if (!sink)
            return failf(b, &st->pos, CEP_ERR_SEMANTIC, "INSERT INTO unknown stream '%s'", st->name);
        if (sink->is_table) return failf(b, &st->pos, CEP_ERR_SEMANTIC, "INSERT INTO needs a stream");
    } else {
        if (find_stream(b, st->name))
            return failf(b, &st->pos, CEP_ERR_SEMANTIC, "%s %s already exists",
                         st->is_table ? "table" : "stream", st->name);
        sink = balloc(b, sizeof *sink);
        if (!sink) return false;
        sink->name = st->name;
        sink->is_table = aggregate || from->is_table;
        sink->topic = pr.topic ? pr.topic : st->name;
        sink->topic_given = pr.topic != NULL;
        sink->key_format = from->key_format;
        if (from->key_format == CEP_FMT_NONE) {
            bool has = false;
            if (!default_format(b, b->opts->default_key_format, &sink->key_format, &has)) return false;
            if (!has) sink->key_format = CEP_FMT_KAFKA;
        }
        if (pr.has_key_format) sink->key_format = pr.key_format;
        sink->value_format = pr.has_value_format ? pr.value_format : from->value_format;
        sink->wrap_single = pr.has_wrap ? pr.wrap : b->opts->wrap_single_values;
        sink->ts_col = -1;
        if (windowed) {
            sink->window_type = sel->window.kind;
            sink->window_size = sel->window.size_ms;
        }
        sink->cols = balloc(b, (sel->nitems + from->ncols + 4) * sizeof *sink->cols);
        if (!sink->cols) return false;
    }
    q->sink = sink;

    qctx_t rq = {.kind = CTX_ROW, .from = from, .alias = sel->from_alias, .clause = "WHERE"};
    /* WHERE */
    if (sel->where) {
        if (contains_aggregate(sel->where))
            return failf(b, &sel->where->pos, CEP_ERR_SEMANTIC,
                         "aggregate functions are not allowed in WHERE (use HAVING)");
        cep_ast_t *conj[64];
        uint32_t nconj = 0;
        split_conjuncts(sel->where, conj, &nconj, CEP_ARRAY_LEN(conj));
        q->where_atoms = balloc(b, (nconj + 1) * sizeof *q->where_atoms);
        if (!q->where_atoms) return false;
        if (windowed) rq.windowed = true;
        for (uint32_t i = 0; i < nconj; i++) {
            int a = atom_for(b, from, &rq, conj[i]);
            if (a < 0) return false;
            q->where_atoms[q->nwhere++] = (uint32_t)a;
        }
        rq.windowed = false;
    }

    uint32_t synthetic = 0;
    if (!aggregate) {
        q->kind = CEP_Q_PROJECT;
        /* expand the select list */
        cep_ast_item_t *items = balloc(b, (sel->nitems + from->ncols + 1) * sizeof *items);
        cep_ast_t **exprs = balloc(b, (sel->nitems + from->ncols + 1) * sizeof *exprs);
        const char **names = balloc(b, (sel->nitems + from->ncols + 1) * sizeof *names);
        if (!items || !exprs || !names) return false;
        uint32_t n = 0;
        rq.clause = "SELECT";
        for (uint32_t i = 0; i < sel->nitems; i++) {
            cep_ast_item_t *it = &sel->items[i];
            if (it->expr->kind == AST_STAR) {
                for (uint32_t k = 0; k < from->ncols; k++) {
                    cep_ast_t *col = balloc(b, sizeof *col);
                    if (!col) return false;
                    col->kind = AST_COLUMN;
                    col->name = from->cols[k].name;
                    col->pos = it->pos;
                    col->slot = col->agg = col->func = -1;
                    exprs[n] = col;
                    names[n] = col->name;
                    items[n].pos = it->pos;
                    n++;
                }
                continue;
            }
            if (it->expr->kind == AST_COLUMN && is_window_bound(it->expr->name) && !from->window_type)
                return failf(b, &it->expr->pos, CEP_ERR_SEMANTIC,
                             "%s is only available on windowed sources", it->expr->name);
            exprs[n] = it->expr;
            names[n] = item_name(b, it, &synthetic);
            if (it->alias && (!strcmp(it->alias, "WINDOWSTART") || !strcmp(it->alias, "WINDOWEND") ||
                              !strcmp(it->alias, "ROWTIME")))
                return failf(b, &it->pos, CEP_ERR_SEMANTIC, "'%s' is a reserved column name", it->alias);
            items[n].pos = it->pos;
            n++;
        }
        /* key columns: PARTITION BY expressions, else the source key columns */
        bool *is_key = balloc(b, (n + 1) * sizeof(bool));
        if (!is_key) return false;
        if (sel->npartition) {
            for (uint32_t k = 0; k < sel->npartition; k++) {
                int found = -1;
                for (uint32_t i = 0; i < n; i++)
                    if (cep_ast_equal(exprs[i], sel->partition_by[k])) {
                        found = (int)i;
                        break;
                    }
                if (found < 0 && !(sel->partition_by[k]->kind == AST_LITERAL &&
                                   sel->partition_by[k]->lit.kind == CEP_K_NULL))
                    return failf(b, &sel->partition_by[k]->pos, CEP_ERR_SEMANTIC,
                                 "the projection must include the PARTITION BY expression %s",
                                 expr_text(b, sel->partition_by[k]));
                if (found >= 0) is_key[found] = true;
            }
        } else {
            for (uint32_t i = 0; i < n; i++)
                if (exprs[i]->kind == AST_COLUMN) {
                    int ci = find_col(from, exprs[i]->name);
                    if (ci >= 0 && from->cols[ci].is_key) is_key[i] = true;
                }
            for (uint32_t k = 0; k < from->nkey; k++) {
                bool present = false;
                for (uint32_t i = 0; i < n; i++)
                    if (is_key[i] && !strcmp(exprs[i]->name, from->cols[from->key_cols[k]].name))
                        present = true;
                if (!present && st->kind != STMT_INSERT)
                    return failf(b, &sel->pos, CEP_ERR_SEMANTIC,
                                 "Key missing from projection. The query used to build `%s` must include the key column %s in its projection.",
                                 st->name, from->cols[from->key_cols[k]].name);
            }
        }
        q->proj = balloc(b, (n + 1) * sizeof *q->proj);
        if (!q->proj) return false;
        /* sink column order: keys first, then values, each in select order */
        uint32_t k = 0;
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t i = 0; i < n; i++) {
                if (is_key[i] != (pass == 0)) continue;
                const cep_type_t *t;
                cep_program_t *p = program(b, &rq, exprs[i], &t);
                if (!p) return false;
                if (st->kind == STMT_INSERT) {
                    if (k >= sink->ncols)
                        return failf(b, &items[i].pos, CEP_ERR_SEMANTIC,
                                     "INSERT INTO %s: more columns than the stream has", sink->name);
                } else if (!add_sink_col(b, sink, names[i], t, pass == 0, &items[i].pos))
                    return false;
                q->proj[k++] = p;
            }
        if (st->kind == STMT_INSERT && k != sink->ncols)
            return failf(b, &sel->pos, CEP_ERR_SEMANTIC, "INSERT INTO %s: the projection has %u columns, the stream %u",
                         sink->name, k, sink->ncols);
    } else {
        q->kind = CEP_Q_AGGREGATE;
        /* GROUP BY in a row context */
        q->ngroup = sel->ngroup;
        q->group = balloc(b, (sel->ngroup + 1) * sizeof *q->group);
        if (!q->group) return false;
        rq.clause = "GROUP BY";
        for (uint32_t i = 0; i < sel->ngroup; i++) {
            cep_ast_t *g = sel->group_by[i];
            if (contains_aggregate(g))
                return failf(b, &g->pos, CEP_ERR_SEMANTIC, "GROUP BY does not support aggregate functions: %s",
                             expr_text(b, g));
            if (mentions_window_bound(g))
                return failf(b, &g->pos, CEP_ERR_SEMANTIC,
                             "GROUP BY does not support the window bounds WINDOWSTART and WINDOWEND");
            for (uint32_t j = 0; j < i; j++)
                if (cep_ast_equal(sel->group_by[j], g))
                    return failf(b, &g->pos, CEP_ERR_SEMANTIC, "duplicate GROUP BY expression %s",
                                 expr_text(b, g));
            const cep_type_t *t;
            q->group[i] = program(b, &rq, g, &t);
            if (!q->group[i]) return false;
            if (t->kind == CEP_K_BOOLEAN && g->kind == AST_BINARY && (g->op == 'A' || g->op == 'O'))
                return failf(b, &g->pos, CEP_ERR_SEMANTIC, "GROUP BY expression cannot be a logical expression");
            if (t->kind == CEP_K_MAP && sink->key_format == CEP_FMT_KAFKA)
                return failf(b, &g->pos, CEP_ERR_SEMANTIC, "Map keys are not supported by the KAFKA key format");
            if (t->kind == CEP_K_DECIMAL && sink->key_format == CEP_FMT_KAFKA)
                return failf(b, &g->pos, CEP_ERR_SEMANTIC,
                             "The 'KAFKA' format does not support type 'DECIMAL'");
            g->type = t;
        }
        if (sel->ngroup > 1 && sink->key_format == CEP_FMT_KAFKA)
            return failf(b, &sel->group_by[1]->pos, CEP_ERR_SEMANTIC,
                         "The KAFKA key format only supports a single key column; use KEY_FORMAT='JSON' to group by several expressions");
        /* window */
        if (windowed) {
            cep_ast_window_t *w = &sel->window;
            q->win.kind = w->kind;
            q->win.size = w->size_ms;
            q->win.advance = w->kind == CEP_WIN_HOPPING ? w->advance_ms : w->size_ms;
            q->win.gap = w->gap_ms;
            int64_t base = w->kind == CEP_WIN_SESSION ? w->gap_ms : w->size_ms;
            if (w->has_grace) q->win.grace = w->grace_ms;
            else if (sel->emit_final) q->win.grace = 0;
            else q->win.grace = CEP_MAX(86400000LL - base, 0);
            q->win.retention = w->has_retention ? w->retention_ms : base + q->win.grace;
            q->emit_final = sel->emit_final;
        }
        /* the projection and HAVING in the aggregate context */
        qctx_t aq = {.kind = CTX_AGG, .from = from, .alias = sel->from_alias, .windowed = windowed,
                     .group = sel->group_by, .ngroup = sel->ngroup, .clause = "SELECT"};
        uint32_t n = 0;
        cep_ast_t **exprs = balloc(b, (sel->nitems + from->ncols + 1) * sizeof *exprs);
        const char **names = balloc(b, (sel->nitems + from->ncols + 1) * sizeof *names);
        cep_pos_t *poss = balloc(b, (sel->nitems + from->ncols + 1) * sizeof *poss);
        if (!exprs || !names || !poss) return false;
        for (uint32_t i = 0; i < sel->nitems; i++) {
            cep_ast_item_t *it = &sel->items[i];
            if (it->expr->kind == AST_STAR) {
                /* SELECT *: the GROUP BY columns that are plain columns */
                for (uint32_t k = 0; k < from->ncols; k++) {
                    cep_ast_t *col = balloc(b, sizeof *col);
                    if (!col) return false;
                    col->kind = AST_COLUMN;
                    col->name = from->cols[k].name;
                    col->pos = it->pos;
                    col->slot = col->agg = col->func = -1;
                    exprs[n] = col;
                    names[n] = col->name;
                    poss[n++] = it->pos;
                }
                continue;
            }
            exprs[n] = it->expr;
            names[n] = item_name(b, it, &synthetic);
            poss[n++] = it->pos;
        }
        /* which projected expressions are the key */
        int *key_of = balloc(b, (n + 1) * sizeof(int));
        if (!key_of) return false;
        for (uint32_t i = 0; i < n; i++) key_of[i] = -1;
        for (uint32_t g = 0; g < sel->ngroup; g++) {
            int found = -1;
            for (uint32_t i = 0; i < n; i++) {
                cep_ast_t *e = exprs[i];
                if (e->kind == AST_CALL && !strcmp(e->name, "AS_VALUE")) continue;
                if (cep_ast_equal(e, sel->group_by[g])) {
                    if (found >= 0)
                        return failf(b, &poss[i], CEP_ERR_SEMANTIC,
                                     "The projection contains a key column (%s) more than once",
                                     expr_text(b, sel->group_by[g]));
                    found = (int)i;
                }
            }
            if (found < 0) {
                if (sel->group_by[g]->kind == AST_LITERAL) continue;
                return failf(b, &sel->group_by[g]->pos, CEP_ERR_SEMANTIC,
                             "Key missing from projection. The query used to build `%s` must include the grouping expression %s in its projection.",
                             st->name, expr_text(b, sel->group_by[g]));
            }
            key_of[found] = (int)g;
        }
        for (uint32_t i = 0; i < n; i++)
            if (!strcmp(names[i], "WINDOWSTART") || !strcmp(names[i], "WINDOWEND"))
                if (exprs[i]->kind != AST_COLUMN || strcmp(exprs[i]->name, names[i]))
                    return failf(b, &poss[i], CEP_ERR_SEMANTIC, "'%s' is a reserved column name", names[i]);
        /* constant GROUP BY (GROUP BY 1): the key is the constant */
        q->out = balloc(b, (n + 1) * sizeof *q->out);
        if (!q->out) return false;
        cep_program_t **progs = balloc(b, (n + 1) * sizeof *progs);
        const cep_type_t **types = balloc(b, (n + 1) * sizeof *types);
        if (!progs || !types) return false;
        for (uint32_t i = 0; i < n; i++) {
            progs[i] = program(b, &aq, exprs[i], &types[i]);
            if (!progs[i]) return false;
        }
        bool has_agg = aq.naggs > 0;
        if (sel->having) {
            aq.clause = "HAVING";
            const cep_type_t *t;
            q->having = program(b, &aq, sel->having, &t);
            if (!q->having) return false;
            if (t->kind != CEP_K_BOOLEAN)
                return failf(b, &sel->having->pos, CEP_ERR_SEMANTIC, "HAVING must be BOOLEAN");
            has_agg = true;
        }
        if (!has_agg && aq.naggs == 0)
            return failf(b, &sel->pos, CEP_ERR_SEMANTIC,
                         "GROUP BY requires aggregate functions in either the SELECT or HAVING clause.");
        uint32_t k = 0;
        for (int pass = 0; pass < 2; pass++)
            for (uint32_t i = 0; i < n; i++) {
                if ((key_of[i] >= 0) != (pass == 0)) continue;
                if (!add_sink_col(b, sink, names[i], types[i], pass == 0, &poss[i])) return false;
                q->out[k++] = progs[i];
            }
        /* a constant GROUP BY without a projected key: key it by the constant */
        if (!plan_aggregates(b, &aq, q)) return false;
        q->agg_nslots = q->ngroup + q->naggs + 3;
        for (uint32_t i = 0; i < k; i++) fix_agg_slots(q->out[i], q->ngroup + q->naggs);
        if (q->having) fix_agg_slots(q->having, q->ngroup + q->naggs);
        if (q->agg_nslots > b->rs->max_slots) b->rs->max_slots = q->agg_nslots;
    }
    if (st->kind != STMT_INSERT) {
        if (!init_slots(b, sink)) return false;
        if (sink->nkey > 1 && sink->key_format == CEP_FMT_KAFKA)
            return failf(b, &st->pos, CEP_ERR_SEMANTIC,
                         "The KAFKA key format only supports a single key column; use KEY_FORMAT='JSON'");
        for (uint32_t i = 0; i < sink->ncols; i++)
            if (sink->cols[i].is_key && sink->cols[i].type->kind == CEP_K_MAP)
                return failf(b, &st->pos, CEP_ERR_SEMANTIC, "Map keys are not supported");
        if (sink->value_format == CEP_FMT_DELIMITED)
            for (uint32_t i = 0; i < sink->ncols; i++)
                if (!sink->cols[i].is_key &&
                    (sink->cols[i].type->kind == CEP_K_ARRAY || sink->cols[i].type->kind == CEP_K_MAP ||
                     sink->cols[i].type->kind == CEP_K_STRUCT))
                    return failf(b, &st->pos, CEP_ERR_SEMANTIC,
                                 "The 'DELIMITED' format does not support type '%s'",
                                 sink->cols[i].type->kind == CEP_K_ARRAY ? "ARRAY"
                                 : sink->cols[i].type->kind == CEP_K_MAP ? "MAP"
                                                                          : "STRUCT");
        if (!add_stream(b, sink)) return false;
    }
    return add_query(b, q);
}

/* ---- the whole pack --------------------------------------------------- */

/* ---- sharing aggregations ----------------------------------------------- */

static void sig_prog(cep_buf_t *sig, const cep_program_t *p)
{
    cep_buf_puts(sig, p && p->text ? p->text : "-");
    cep_buf_putc(sig, '\x1f');
}

/* What two aggregations must agree on to share state. Names and texts,
 * not positions in this pack: the signature must not change when other
 * rules come or go. */
static void share_signature(cep_buf_t *sig, const cep_query_t *q)
{
    cep_buf_reset(sig);
    cep_buf_printf(sig, "%s|%d|%d|%lld|%lld|%lld|%lld|%lld|%d|%u|", q->from->name, (int)q->win.kind, q->emit_final,
                   (long long)q->win.size, (long long)q->win.advance, (long long)q->win.gap,
                   (long long)q->win.grace, (long long)q->win.retention, q->from_table, q->ngroup);
    for (uint32_t i = 0; i < q->ngroup; i++) sig_prog(sig, q->group[i]);
    for (uint32_t i = 0; i < q->nwhere; i++) sig_prog(sig, q->from->atoms[q->where_atoms[i]]);
}

static bool same_aggspec(const cep_aggspec_t *x, const cep_aggspec_t *y)
{
    if (x->kind != y->kind || x->n != y->n || x->n_given != y->n_given || x->ignore_nulls != y->ignore_nulls ||
        x->count_star != y->count_star || !cep_type_equal(x->type, y->type))
        return false;
    const cep_program_t *p[2][2] = {{x->arg, x->arg2}, {y->arg, y->arg2}};
    for (int k = 0; k < 2; k++) {
        if (!p[0][k] != !p[1][k]) return false;
        if (p[0][k] && strcmp(p[0][k]->text ? p[0][k]->text : "", p[1][k]->text ? p[1][k]->text : "")) return false;
    }
    return true;
}

static bool plan_shares(binder_t *b)
{
    cep_ruleset_t *rs = b->rs;
    rs->shares = balloc(b, (rs->nqueries + 1) * sizeof *rs->shares);
    if (!rs->shares) return false;
    char **sigs = calloc(rs->nqueries + 1, sizeof *sigs);
    if (!sigs) return false;
    cep_buf_t sig;
    cep_buf_init(&sig);
    bool ok = true;
    for (uint32_t qi = 0; qi < rs->nqueries && ok; qi++) {
        cep_query_t *q = rs->queries[qi];
        if (q->kind != CEP_Q_AGGREGATE) continue;
        share_signature(&sig, q);
        cep_buf_printf(&sig, "|o%u", q->origin); /* a fresh rule never reads older state */
        sigs[qi] = cep_arena_strndup(b->a, sig.data ? sig.data : "", sig.len);
        if (!sigs[qi]) {
            ok = false;
            break;
        }
        cep_aggshare_t *sh = NULL;
        for (uint32_t k = 0; k < rs->nshares && !sh; k++) {
            cep_aggshare_t *c = rs->shares[k];
            if (c->nmembers < CEP_SHARE_MAX && !strcmp(sigs[c->members[0]->id], sigs[qi])) sh = c;
        }
        if (!sh) {
            sh = balloc(b, sizeof *sh);
            if (!sh || !(sh->members = balloc(b, CEP_SHARE_MAX * sizeof *sh->members))) {
                ok = false;
                break;
            }
            /* a signature with more than CEP_SHARE_MAX members spans several
             * shares: each needs its own state, so its ordinal is in the identity */
            uint64_t ordinal = 0;
            for (uint32_t k = 0; k < rs->nshares; k++) ordinal += !strcmp(sigs[rs->shares[k]->members[0]->id], sigs[qi]);
            sh->id = rs->nshares;
            rs->shares[rs->nshares++] = sh;
            sh->fingerprint = cep_hash_bytes(sigs[qi], strlen(sigs[qi]), 0x5348415245ULL + ordinal);
        }
        const cep_aggspec_t **specs = balloc(b, (sh->nspecs + q->naggs + 1) * sizeof *specs);
        q->aggmap = balloc(b, (q->naggs + 1) * sizeof *q->aggmap);
        if (!specs || !q->aggmap) {
            ok = false;
            break;
        }
        if (sh->nspecs) memcpy(specs, sh->specs, sh->nspecs * sizeof *specs);
        for (uint32_t i = 0; i < q->naggs; i++) {
            uint32_t u = 0;
            while (u < sh->nspecs && !same_aggspec(specs[u], &q->aggs[i])) u++;
            if (u == sh->nspecs) specs[sh->nspecs++] = &q->aggs[i];
            q->aggmap[i] = u;
        }
        sh->specs = specs;
        q->share = sh;
        q->share_member = sh->nmembers;
        sh->members[sh->nmembers++] = q;
        if (q->agg_nslots > sh->max_agg_nslots) sh->max_agg_nslots = q->agg_nslots;
        if (q->sink->ncols > sh->max_sink_cols) sh->max_sink_cols = q->sink->ncols;
    }
    cep_buf_free(&sig);
    free(sigs);
    return ok;
}

/* ---- lineage ----------------------------------------------------------------- */

static uint64_t hash_text(uint64_t h, const char *t)
{
    return cep_hash_bytes(t ? t : "", t ? strlen(t) + 1 : 1, h);
}

static uint64_t hash_aggspec(const cep_aggspec_t *a)
{
    uint64_t k[5] = {(uint64_t)a->kind, (uint64_t)a->n, (uint64_t)a->n_given, (uint64_t)a->ignore_nulls,
                     (uint64_t)a->count_star};
    uint64_t h = cep_hash_bytes(k, sizeof k, 0x41474753ULL);
    h = hash_text(h, a->arg ? a->arg->text : NULL);
    return hash_text(h, a->arg2 ? a->arg2->text : NULL);
}

/* What a query's state means: its input, WHERE and operator definition;
 * not HAVING, the projection, the sink or the metadata. */
static uint64_t state_fingerprint(const cep_ruleset_t *rs, const cep_query_t *q, cep_buf_t *sig)
{
    uint64_t h = hash_text(0x53544154ULL + (uint64_t)q->kind, q->from->name);
    for (uint32_t i = 0; i < q->nwhere; i++) h = hash_text(h, q->from->atoms[q->where_atoms[i]]->text);
    switch (q->kind) {
    case CEP_Q_AGGREGATE: {
        share_signature(sig, q);
        h = cep_hash_bytes(sig->data ? sig->data : "", sig->len, h);
        uint64_t specs = 0; /* the set of its aggregates: their order in SELECT does not matter */
        for (uint32_t i = 0; i < q->naggs; i++) specs += hash_aggspec(&q->aggs[i]);
        return cep_hash_bytes(&specs, sizeof specs, h);
    }
    case CEP_Q_MATCH: {
        uint64_t m = cep_matchop_state_fingerprint(q);
        return cep_hash_bytes(&m, sizeof m, h);
    }
    case CEP_Q_OVER:
        for (uint32_t i = 0; i < q->novers; i++) {
            const cep_overspec_t *sp = &q->overs[i];
            for (uint32_t k = 0; k < sp->npartition; k++) h = hash_text(h, sp->partition[k]->text);
            h = hash_text(h ^ 1, sp->order ? sp->order->text : NULL);
            h = hash_text(h ^ 2, sp->arg ? sp->arg->text : NULL);
            int64_t k2[2] = {(int64_t)sp->kind, sp->range_ms};
            h = cep_hash_bytes(k2, sizeof k2, h);
        }
        return h;
    default:
        /* stateless, unless it reads the rows of its own MATCH_RECOGNIZE
         * or OVER part: then that part's state is its state */
        for (uint32_t i = 0; i < rs->nqueries; i++)
            if (rs->queries[i]->internal && rs->queries[i]->sink == q->from) return rs->queries[i]->state_fp;
        return 0;
    }
}

/* State fingerprints, and origins from the running pack's lineage. */
static void assign_lineage(binder_t *b)
{
    cep_ruleset_t *rs = b->rs;
    const cep_lineage_t *l = b->opts->lineage;
    rs->version = l ? l->version + 1 : 0;
    cep_buf_t sig;
    cep_buf_init(&sig);
    for (uint32_t qi = 0; qi < rs->nqueries; qi++) { /* internal parts come before their rule */
        cep_query_t *q = rs->queries[qi];
        q->state_fp = state_fingerprint(rs, q, &sig);
        q->origin = rs->version;
        for (uint32_t i = 0; l && i < l->n; i++)
            if (!strcmp(l->rules[i].name, q->name)) {
                if (l->rules[i].state_fp == q->state_fp) q->origin = l->rules[i].origin;
                break;
            }
    }
    cep_buf_free(&sig);
}

static bool finish(binder_t *b)
{
    cep_ruleset_t *rs = b->rs;
    rs->streams = b->streams;
    rs->nstreams = b->nstreams;
    rs->queries = b->queries;
    rs->nqueries = b->nqueries;
    /* queries per stream, and the prefilter */
    for (uint32_t si = 0; si < rs->nstreams; si++) {
        cep_stream_t *s = rs->streams[si];
        uint32_t cnt = 0;
        for (uint32_t qi = 0; qi < rs->nqueries; qi++) cnt += rs->queries[qi]->from == s;
        s->queries = balloc(b, (cnt + 1) * sizeof *s->queries);
        s->pf_always = balloc(b, (cnt + 1) * sizeof *s->pf_always);
        pf_entry_t *ents = balloc(b, (cnt + 1) * sizeof *ents);
        if (!s->queries || !s->pf_always || !ents) return false;
        uint32_t nents = 0;
        for (uint32_t qi = 0; qi < rs->nqueries; qi++) {
            cep_query_t *q = rs->queries[qi];
            if (q->from != s) continue;
            s->queries[s->nqueries++] = qi;
            /* find an indexable atom: slot = constant */
            bool indexed = false;
            for (uint32_t a = 0; a < q->nwhere && !indexed; a++) {
                /* re-derive from the atom's program: OP_COL x, OP_CONST c, OP_CMP EQ */
                const cep_program_t *p = s->atoms[q->where_atoms[a]];
                if (p->ncode == 3 && p->code[2].op == OP_CMP && p->code[2].a == TK_EQ) {
                    const cep_insn_t *x = &p->code[0], *y = &p->code[1];
                    if (x->op == OP_CONST) {
                        const cep_insn_t *t = x;
                        x = y;
                        y = t;
                    }
                    if (x->op == OP_COL && y->op == OP_CONST && x->a < s->ncols) {
                        cep_value_t v = p->consts[y->a];
                        cep_kind_t ck = s->cols[x->a].type->kind;
                        bool ok = (ck == CEP_K_STRING && v.kind == CEP_K_STRING) ||
                                  ((ck == CEP_K_INT || ck == CEP_K_BIGINT) &&
                                   (v.kind == CEP_K_INT || v.kind == CEP_K_BIGINT));
                        if (ok) {
                            ents[nents].slot = x->a;
                            ents[nents].v = v;
                            ents[nents].query = qi;
                            nents++;
                            indexed = true;
                        }
                    }
                }
            }
            if (!indexed) s->pf_always[s->npf_always++] = qi;
        }
        if (!build_prefilter(b, s, ents, nents)) return false;
    }
    (void)pf_candidate;
    assign_lineage(b);
    return plan_shares(b);
}

void cep_compile_opts_init(cep_compile_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->wrap_single_values = true;
}

cep_status_t cep_rules_compile(const char *file, const char *sql, size_t len,
                               const cep_compile_opts_t *opts, cep_ruleset_t **out,
                               cep_error_t *err)
{
    cep_compile_opts_t defaults;
    if (!opts) {
        cep_compile_opts_init(&defaults);
        opts = &defaults;
    }
    cep_ruleset_t *rs = calloc(1, sizeof *rs);
    if (!rs) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    cep_arena_init(&rs->arena, 64 * 1024);
    /* The AST lives in a throw-away arena; the rule set in its own. */
    cep_arena_t ast_arena;
    cep_arena_init(&ast_arena, 64 * 1024);
    cep_error_t local;
    cep_error_clear(&local);
    cep_error_t *e = err ? err : &local;
    cep_ast_stmt_t *stmts = NULL;
    /* the rule set keeps pointers into identifiers and literals: parse into
     * the rule-set arena, and keep only the binder's scratch apart */
    cep_status_t st = cep_parse(&rs->arena, file, sql, len, &stmts, e);
    binder_t b = {.rs = rs, .a = &rs->arena, .opts = opts, .err = e};
    if (!st) {
        for (cep_ast_stmt_t *s = stmts; s && !b.failed; s = s->next) {
            switch (s->kind) {
            case STMT_CREATE_SOURCE: bind_create_source(&b, s); break;
            case STMT_CREATE_AS:
            case STMT_INSERT: bind_query(&b, s); break;
            case STMT_SELECT:
                failf(&b, &s->pos, CEP_ERR_UNSUPPORTED,
                      "a bare SELECT is not a rule: use CREATE STREAM ... AS SELECT");
                break;
            }
        }
        if (!b.failed) finish(&b);
        st = b.failed ? (e->code ? e->code : CEP_ERR_SEMANTIC) : CEP_OK;
    }
    cep_arena_free(&ast_arena);
    if (st) {
        cep_arena_free(&rs->arena);
        free(rs);
        return st;
    }
    *out = rs;
    return CEP_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cep_status_t cep_rules_compile_path(const char *path, const cep_compile_opts_t *opts,
                                    cep_ruleset_t **out, cep_error_t *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return cep_error_set(err, CEP_ERR_IO, NULL, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode)) {
        char *text;
        size_t len;
        cep_status_t st = cep_file_read(path, &text, &len, err);
        if (st) return st;
        st = cep_rules_compile(path, text, len, opts, out, err);
        free(text);
        return st;
    }
    /* a folder: every .sql file below it, sorted, as one text. Positions
     * must still name the right file: compile each file's text on its own
     * first for diagnostics, then all together. */
    DIR *d = opendir(path);
    if (!d) return cep_error_set(err, CEP_ERR_IO, NULL, "%s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".sql")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        size_t pl = strlen(path) + l + 2;
        names[n] = malloc(pl);
        if (!names[n]) break;
        snprintf(names[n], pl, "%s/%s", path, de->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    cep_buf_t all;
    cep_buf_init(&all);
    cep_status_t st = CEP_OK;
    /* line offsets per file, to map an error back to its file */
    size_t *starts = calloc(n + 1, sizeof *starts);
    uint32_t *lines = calloc(n + 1, sizeof *lines);
    uint32_t line = 1;
    for (size_t i = 0; i < n && !st; i++) {
        char *text;
        size_t len;
        st = cep_file_read(names[i], &text, &len, err);
        if (st) break;
        if (starts) starts[i] = all.len;
        if (lines) lines[i] = line;
        cep_buf_put(&all, text, len);
        cep_buf_puts(&all, "\n;\n");
        for (size_t k = 0; k < len; k++) line += text[k] == '\n';
        line += 2;
        free(text);
    }
    if (!st) {
        cep_error_t e2;
        cep_error_clear(&e2);
        st = cep_rules_compile(path, all.data ? all.data : "", all.len, opts, out, &e2);
        if (st && err) {
            /* rewrite the position to the file that holds it */
            size_t fi = 0;
            for (size_t i = 0; i < n; i++)
                if (lines && e2.pos.line >= lines[i]) fi = i;
            if (e2.pos.line && n && lines) {
                cep_pos_t pos = e2.pos;
                pos.line = e2.pos.line - lines[fi] + 1;
                pos.offset -= starts ? (uint32_t)starts[fi] : 0;
                pos.file = names[fi];
                cep_error_set(err, e2.code, &pos, "%s", e2.msg);
            } else
                cep_error_set(err, e2.code, NULL, "%s", e2.msg);
        }
    }
    cep_buf_free(&all);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(starts);
    free(lines);
    return st;
}

void cep_ruleset_free(cep_ruleset_t *rs)
{
    if (!rs) return;
    cep_arena_free(&rs->arena);
    free(rs);
}

uint32_t cep_ruleset_query_count(const cep_ruleset_t *rs)
{
    return rs->nqueries;
}

uint32_t cep_ruleset_stream_count(const cep_ruleset_t *rs)
{
    return rs->nstreams;
}

/* ---- lineage and the reload log ------------------------------------------------ */

cep_status_t cep_ruleset_lineage(const cep_ruleset_t *rs, cep_lineage_t *out)
{
    memset(out, 0, sizeof *out);
    out->version = rs->version;
    out->rules = calloc(rs->nqueries + 1, sizeof *out->rules);
    if (!out->rules) return CEP_ERR_NOMEM;
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        const cep_query_t *q = rs->queries[i];
        cep_lineage_rule_t *r = &out->rules[out->n];
        if (!(r->name = strdup(q->name))) {
            cep_lineage_free(out);
            return CEP_ERR_NOMEM;
        }
        r->state_fp = q->state_fp;
        r->origin = q->origin;
        out->n++;
    }
    return CEP_OK;
}

void cep_lineage_free(cep_lineage_t *l)
{
    if (!l) return;
    for (uint32_t i = 0; i < l->n; i++) free(l->rules[i].name);
    free(l->rules);
    memset(l, 0, sizeof *l);
}

#define LINEAGE_MAGIC "cepL1"

void cep_lineage_encode(const cep_lineage_t *l, cep_buf_t *out)
{
    cep_buf_put(out, LINEAGE_MAGIC, 5);
    cep_buf_put(out, &l->version, sizeof l->version);
    cep_buf_put(out, &l->n, sizeof l->n);
    for (uint32_t i = 0; i < l->n; i++) {
        uint32_t len = (uint32_t)strlen(l->rules[i].name);
        cep_buf_put(out, &len, sizeof len);
        cep_buf_put(out, l->rules[i].name, len);
        cep_buf_put(out, &l->rules[i].state_fp, sizeof l->rules[i].state_fp);
        cep_buf_put(out, &l->rules[i].origin, sizeof l->rules[i].origin);
    }
}

static bool take(const char **p, const char *end, void *dst, size_t n)
{
    if ((size_t)(end - *p) < n) return false;
    memcpy(dst, *p, n);
    *p += n;
    return true;
}

bool cep_lineage_decode(const void *data, size_t n, cep_lineage_t *out)
{
    memset(out, 0, sizeof *out);
    const char *p = data, *end = p + n;
    char magic[5];
    uint32_t count;
    if (!take(&p, end, magic, 5) || memcmp(magic, LINEAGE_MAGIC, 5) || !take(&p, end, &out->version, 4) ||
        !take(&p, end, &count, 4) || count > n)
        return false;
    out->rules = calloc(count + 1, sizeof *out->rules);
    if (!out->rules) return false;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len;
        cep_lineage_rule_t *r = &out->rules[i];
        if (!take(&p, end, &len, 4) || len > (size_t)(end - p) || !(r->name = strndup(p, len))) break;
        out->n++;
        p += len;
        if (!take(&p, end, &r->state_fp, 8) || !take(&p, end, &r->origin, 4)) break;
    }
    if (out->n != count || p != end) {
        cep_lineage_free(out);
        return false;
    }
    return true;
}

const char *cep_rule_change_name(cep_rule_change_t c)
{
    switch (c) {
    case CEP_RULE_SAME: return "unchanged";
    case CEP_RULE_KEPT: return "changed, state kept";
    case CEP_RULE_RESET: return "changed, state reset";
    case CEP_RULE_STATELESS: return "changed (no state)";
    case CEP_RULE_ADDED: return "added";
    case CEP_RULE_REMOVED: return "removed, state released";
    }
    return "?";
}

static const cep_query_t *rule_named(const cep_ruleset_t *rs, const char *name)
{
    for (uint32_t i = 0; rs && i < rs->nqueries; i++)
        if (!rs->queries[i]->internal && !strcmp(rs->queries[i]->name, name)) return rs->queries[i];
    return NULL;
}

uint32_t cep_ruleset_diff(const cep_ruleset_t *old, const cep_ruleset_t *next, cep_rule_change_fn fn, void *ctx)
{
    uint32_t changed = 0;
    char version[20];
    for (uint32_t i = 0; i < next->nqueries; i++) {
        const cep_query_t *q = next->queries[i];
        if (q->internal) continue;
        const cep_query_t *o = rule_named(old, q->name);
        cep_rule_change_t c = !o                                  ? CEP_RULE_ADDED
                              : o->fingerprint == q->fingerprint ? CEP_RULE_SAME
                              : !q->state_fp && !o->state_fp     ? CEP_RULE_STATELESS
                              : o->state_fp == q->state_fp && o->origin == q->origin ? CEP_RULE_KEPT
                                                                                      : CEP_RULE_RESET;
        changed += c != CEP_RULE_SAME;
        snprintf(version, sizeof version, "%08llx", (unsigned long long)(q->fingerprint & 0xffffffffULL));
        if (fn) fn(ctx, q->name, c, version);
    }
    for (uint32_t i = 0; old && i < old->nqueries; i++) {
        const cep_query_t *o = old->queries[i];
        if (o->internal || rule_named(next, o->name)) continue;
        changed++;
        if (fn) fn(ctx, o->name, CEP_RULE_REMOVED, "");
    }
    return changed;
}

/* How far back a query's state reaches: 0 = it keeps none, -1 = no bound.
 * A window that still takes records (its size, or for EMIT FINAL up to
 * its grace), a session's gap, an OVER range, a pattern's WITHIN. */
int64_t cep_query_span(const cep_query_t *q)
{
    switch (q->kind) {
    case CEP_Q_AGGREGATE: {
        int64_t grace = q->emit_final ? CEP_MAX(q->win.grace, 0) : 0;
        if (q->win.kind == CEP_WIN_TUMBLING || q->win.kind == CEP_WIN_HOPPING) return q->win.size + grace;
        if (q->win.kind == CEP_WIN_SESSION) return q->win.gap + grace;
        return -1; /* a running total since the start */
    }
    case CEP_Q_OVER: {
        int64_t s = 0;
        for (uint32_t i = 0; i < q->novers; i++) s = CEP_MAX(s, q->overs[i].range_ms);
        return s;
    }
    case CEP_Q_MATCH: return q->match->within_ms > 0 ? q->match->within_ms : -1;
    default: return 0;
    }
}
