/*
 * conform.c — `cep conform`: runs peer test cases (ksqlDB QTT restated in
 * ../shared/conformance) through a fresh engine each and compares outputs
 * per topic, in order, with exact counts. Keys and values are fed through
 * the real decoder in their declared wire formats, and outputs are compared
 * as JSON (doubles within 1e-6). An expected-failure list keeps CI green
 * while the engine catches up; a listed case that passes is an error, so
 * the list only shrinks.
 */
#include "engine/cli.h"
#include "engine/output.h"
#include "engine/runtime.h"
#include "patterns/plan.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct collected {
    json_t *by_topic; /* topic -> array of records */
} collected_t;

static void collect(void *ctx, const cep_output_t *o)
{
    collected_t *c = ctx;
    cep_buf_t b;
    cep_buf_init(&b);
    cep_output_key_json(o, &b);
    json_t *key = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    cep_buf_reset(&b);
    cep_output_value_json(o, &b);
    json_t *value = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    cep_buf_free(&b);
    json_t *rec = json_object();
    json_object_set_new(rec, "key", key ? key : json_null());
    json_object_set_new(rec, "value", value ? value : json_null());
    json_object_set_new(rec, "timestamp", json_integer(o->timestamp));
    if (o->windowed)
        json_object_set_new(rec, "window",
                            json_pack("{s:I,s:I,s:s}", "start", (json_int_t)o->wstart, "end",
                                      (json_int_t)o->wend, "type",
                                      o->wtype == CEP_WIN_SESSION ? "session" : "time"));
    json_t *arr = json_object_get(c->by_topic, o->sink->topic);
    if (!arr) {
        arr = json_array();
        json_object_set_new(c->by_topic, o->sink->topic, arr);
    }
    json_array_append_new(arr, rec);
}

static bool json_same(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b)) return json_integer_value(a) == json_integer_value(b);
        double x = json_number_value(a), y = json_number_value(b);
        return fabs(x - y) <= 1e-6 * CEP_MAX(1.0, fabs(y));
    }
    if (json_typeof(a) != json_typeof(b)) return false;
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b)) return false;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            json_t *w = json_object_get(b, k);
            if (!w || !json_same(v, w)) return false;
        }
        return true;
    }
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b)) return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_same(json_array_get(a, i), json_array_get(b, i))) return false;
        return true;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

static const cep_stream_t *source_for(const cep_ruleset_t *rs, const char *topic)
{
    for (uint32_t i = 0; i < rs->nstreams; i++)
        if (rs->streams[i]->is_source && !strcmp(rs->streams[i]->topic, topic)) return rs->streams[i];
    return NULL;
}

/* Encode a QTT JSON key/value in the wire format the stream declares. */
static bool encode(const json_t *v, cep_format_t fmt, const cep_stream_t *s, bool keys, cep_buf_t *out)
{
    if (!v || json_is_null(v)) return false;
    if (fmt == CEP_FMT_KAFKA) {
        const cep_type_t *t = NULL;
        for (uint32_t i = 0; i < s->ncols; i++)
            if (s->cols[i].is_key == keys) t = s->cols[i].type;
        if (!t) return false;
        unsigned char b[8];
        if (t->kind == CEP_K_INT) {
            uint32_t u = (uint32_t)(int32_t)json_integer_value(v);
            if (json_is_string(v)) u = (uint32_t)atoi(json_string_value(v));
            for (int i = 0; i < 4; i++) b[i] = (unsigned char)(u >> (24 - 8 * i));
            cep_buf_put(out, b, 4);
        } else if (t->kind == CEP_K_BIGINT || t->kind == CEP_K_TIMESTAMP) {
            uint64_t u = (uint64_t)json_integer_value(v);
            if (json_is_string(v)) u = (uint64_t)atoll(json_string_value(v));
            for (int i = 0; i < 8; i++) b[i] = (unsigned char)(u >> (56 - 8 * i));
            cep_buf_put(out, b, 8);
        } else if (t->kind == CEP_K_DOUBLE) {
            double d = json_number_value(v);
            if (json_is_string(v)) d = atof(json_string_value(v));
            uint64_t u;
            memcpy(&u, &d, 8);
            for (int i = 0; i < 8; i++) b[i] = (unsigned char)(u >> (56 - 8 * i));
            cep_buf_put(out, b, 8);
        } else if (t->kind == CEP_K_BOOLEAN) {
            cep_buf_putc(out, json_is_true(v) ? 1 : 0);
        } else if (json_is_string(v)) {
            cep_buf_puts(out, json_string_value(v));
        } else {
            char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            if (txt) cep_buf_puts(out, txt);
            free(txt);
        }
        return true;
    }
    if (fmt == CEP_FMT_DELIMITED && json_is_string(v)) {
        cep_buf_puts(out, json_string_value(v));
        return true;
    }
    char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!txt) return false;
    cep_buf_puts(out, txt);
    free(txt);
    return true;
}

typedef enum { R_PASS, R_FAIL, R_ERROR, R_NA } result_t;


/* ---- MATCH_RECOGNIZE cases (conformance/README.md, "a file has sql") ------- */

typedef struct mr_collected {
    json_t *rows;      /* the MR_OUT value objects, in emission order */
    size_t *after;     /* rows emitted after each input element */
} mr_collected_t;

static void mr_collect(void *ctx, const cep_output_t *o)
{
    mr_collected_t *c = ctx;
    cep_buf_t b;
    cep_buf_init(&b);
    cep_output_value_json(o, &b);
    json_t *value = json_loadb(b.data ? b.data : "null", b.len ? b.len : 4, JSON_DECODE_ANY, NULL);
    cep_buf_free(&b);
    json_array_append_new(c->rows, value ? value : json_null());
}

/* a row's value for a column, matching names case-insensitively */
static json_t *mr_get(json_t *row, const char *col)
{
    const char *k;
    json_t *v;
    json_object_foreach(row, k, v)
    {
        if (cep_str_ieq(k, strlen(k), col)) return v;
    }
    return NULL;
}

static bool mr_same(json_t *e, json_t *a)
{
    if (!e) e = json_null();
    if (!a) a = json_null();
    if (json_is_number(e) && json_is_number(a))
        return fabs(json_number_value(e) - json_number_value(a)) <= 1e-9 * CEP_MAX(1.0, fabs(json_number_value(e)));
    return json_equal(e, a);
}

static char *mr_part_key(json_t *row, json_t *pcols)
{
    json_t *k = json_array();
    size_t i;
    json_t *c;
    json_array_foreach(pcols, i, c)
    {
        json_t *v = mr_get(row, json_string_value(c));
        json_array_append(k, v ? v : json_null());
    }
    char *s = json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(k);
    return s;
}

static result_t mr_compare(json_t *expected, json_t *actual, json_t *cols, json_t *pcols, char *why, size_t whylen)
{
    /* per partition, in order; across partitions any order */
    json_t *ge = json_object(), *ga = json_object();
    json_t *sets[2] = {expected, actual}, *groups[2] = {ge, ga};
    for (int w = 0; w < 2; w++) {
        size_t i;
        json_t *r;
        json_array_foreach(sets[w], i, r)
        {
            char *k = mr_part_key(r, pcols);
            json_t *arr = json_object_get(groups[w], k);
            if (!arr) json_object_set_new(groups[w], k, arr = json_array());
            json_array_append(arr, r);
            free(k);
        }
    }
    result_t res = R_PASS;
    const char *k;
    json_t *earr;
    json_object_foreach(ge, k, earr)
    {
        json_t *aarr = json_object_get(ga, k);
        size_t ne = json_array_size(earr), na = aarr ? json_array_size(aarr) : 0;
        for (size_t j = 0; j < CEP_MAX(ne, na) && res == R_PASS; j++) {
            json_t *e = json_array_get(earr, j), *a = aarr ? json_array_get(aarr, j) : NULL;
            bool same = e && a;
            size_t ci;
            json_t *c;
            json_array_foreach(cols, ci, c)
            {
                if (!same) break;
                same = mr_same(json_object_get(e, json_string_value(c)), mr_get(a, json_string_value(c)));
            }
            if (!same) {
                char *es = e ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                char *as = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
                snprintf(why, whylen, "partition %s row %zu: expected %s, got %s", k, j, es ? es : "nothing",
                         as ? as : "nothing");
                free(es);
                free(as);
                res = R_FAIL;
            }
        }
    }
    json_object_foreach(ga, k, earr)
    {
        if (res != R_PASS) break;
        if (!json_object_get(ge, k)) {
            char *as = json_dumps(json_array_get(earr, 0), JSON_COMPACT | JSON_SORT_KEYS);
            snprintf(why, whylen, "partition %s: expected nothing, got %s", k, as ? as : "?");
            free(as);
            res = R_FAIL;
        }
    }
    json_decref(ge);
    json_decref(ga);
    return res;
}

static result_t run_mr_case(json_t *tc, const char *ext_dir, char *why, size_t whylen)
{
    const char *sqlq = json_string_value(json_object_get(tc, "sql"));
    const char *ddl = json_string_value(json_object_get(tc, "ddl"));
    char *ext_sql = NULL;
    if (json_is_true(json_object_get(tc, "needs_extension")) && ext_dir) {
        /* the case in cep's own extension syntax, kept in tests/ */
        char path[1024];
        size_t n;
        snprintf(path, sizeof path, "%s/%s.sql", ext_dir, json_string_value(json_object_get(tc, "name")));
        if (cep_file_read(path, &ext_sql, &n, NULL) == CEP_OK) sqlq = ext_sql;
    }
    if (!sqlq) {
        snprintf(why, whylen, "needs a pattern extension (%s)",
                 json_string_value(json_object_get(tc, "extension_pattern")) ? "absence / time-out" : "no SQL");
        return R_ERROR;
    }
    /* which answer applies to a streaming, standard-semantics engine */
    json_t *expected = json_object_get(tc, "expected");
    const char *eoi = json_string_value(json_object_get(tc, "expected_eoi"));
    if (eoi && !strcmp(eoi, "batch")) {
        json_t *es = json_object_get(tc, "expected_stream");
        if (!es || json_is_null(es)) {
            snprintf(why, whylen, "the answer needs the end of the partition: undefined in a stream");
            return R_NA;
        }
        expected = es;
    }
    const char *sem = json_string_value(json_object_get(tc, "expected_semantics"));
    if (sem && !strcmp(sem, "flink") && json_object_get(tc, "expected_standard"))
        expected = json_object_get(tc, "expected_standard");
    cep_buf_t sql;
    cep_buf_init(&sql);
    cep_buf_puts(&sql, ddl ? ddl : "");
    cep_buf_puts(&sql, "\n;\nCREATE STREAM MR_OUT AS ");
    cep_buf_puts(&sql, sqlq);
    cep_buf_puts(&sql, "\n;\n");
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cep_status_t st = cep_rules_compile("case.sql", sql.data, sql.len, NULL, &rs, &err);
    cep_buf_free(&sql);
    free(ext_sql);
    if (st) {
        char eb[700];
        snprintf(why, whylen, "compile error: %s", cep_error_format(&err, eb, sizeof eb));
        return R_ERROR;
    }
    json_t *input = json_object_get(tc, "input");
    mr_collected_t col = {.rows = json_array(), .after = calloc(json_array_size(input) + 1, sizeof(size_t))};
    cep_runtime_t *rt = cep_runtime_new(rs, mr_collect, &col);
    const cep_stream_t *src = NULL;
    for (uint32_t i = 0; i < rs->nstreams && !src; i++)
        if (rs->streams[i]->is_source) src = rs->streams[i];
    if (!rt || !src || !col.after) {
        snprintf(why, whylen, "cannot start the engine");
        json_decref(col.rows);
        free(col.after);
        cep_runtime_free(rt);
        cep_ruleset_free(rs);
        return R_ERROR;
    }
    json_t *wmj = json_object_get(tc, "watermark");
    const char *wtype = json_string_value(json_object_get(wmj, "type"));
    int64_t delay = -1; /* end_of_input_only, explicit_markers */
    if (wtype && !strcmp(wtype, "ascending")) delay = 0;
    else if (wtype && !strcmp(wtype, "bounded_out_of_orderness"))
        delay = json_integer_value(json_object_get(wmj, "delay_ms"));
    cep_runtime_set_watermark_delay(rt, delay);
    size_t i;
    json_t *in;
    json_array_foreach(input, i, in)
    {
        json_t *wm = json_object_get(in, "_watermark");
        if (wm) {
            cep_runtime_watermark(rt, json_integer_value(wm));
        } else {
            char *v = json_dumps(in, JSON_COMPACT);
            cep_record_t r = {.topic = src->topic, .value = v, .vlen = v ? strlen(v) : 0, .offset = (int64_t)i};
            cep_error_t de;
            cep_error_clear(&de);
            if (v) cep_runtime_push(rt, &r, &de);
            free(v);
        }
        col.after[i] = json_array_size(col.rows);
        /* the case says output must not change across a checkpoint here:
         * snapshot, stop, start a fresh engine from the snapshot */
        json_t *ra = json_object_get(tc, "restore_after_input_index");
        if (ra && (size_t)json_integer_value(ra) == i) {
            cep_buf_t snap;
            cep_buf_init(&snap);
            cep_error_t se;
            cep_error_clear(&se);
            cep_runtime_t *fresh = NULL;
            if (!cep_runtime_snapshot(rt, 0, &snap, &se) && (fresh = cep_runtime_new(rs, mr_collect, &col))) {
                cep_runtime_set_watermark_delay(fresh, delay);
                cep_runtime_restore_snapshot(fresh, 0, snap.data ? snap.data : "", snap.len, &se);
            }
            cep_buf_free(&snap);
            if (!fresh || se.code) {
                snprintf(why, whylen, "checkpoint and restore after input %zu failed: %s", i,
                         se.code ? se.msg : "out of memory");
                json_decref(col.rows);
                free(col.after);
                cep_runtime_free(fresh);
                cep_runtime_free(rt);
                cep_ruleset_free(rs);
                return R_ERROR;
            }
            cep_runtime_free(rt);
            rt = fresh;
        }
    }
    cep_runtime_finish(rt);
    const char *rterr = cep_runtime_error(rt);
    bool want_error = json_object_get(tc, "expected_error") != NULL;
    result_t res = R_PASS;
    if (want_error && !rterr) {
        snprintf(why, whylen, "expected a runtime error, none was raised");
        res = R_FAIL;
    } else if (!want_error && rterr) {
        snprintf(why, whylen, "runtime error: %s", rterr);
        res = R_ERROR;
    }
    if (res == R_PASS)
        res = mr_compare(expected, col.rows, json_object_get(tc, "expected_columns"),
                         json_object_get(tc, "partition_columns"), why, whylen);
    /* when each row may appear */
    json_t *em = json_object_get(tc, "expected_emission"), *x;
    json_array_foreach(em, i, x)
    {
        if (res != R_PASS) break;
        json_t *after = json_object_get(x, "after_input_index");
        if (!json_is_integer(after)) continue;
        size_t k = (size_t)json_integer_value(after);
        size_t row = json_is_integer(json_object_get(x, "row")) ? (size_t)json_integer_value(json_object_get(x, "row")) : i;
        if (k >= json_array_size(input)) continue;
        if (col.after[k] <= row || (k > 0 && col.after[k - 1] > row)) {
            snprintf(why, whylen, "row %zu should appear while input element %zu is processed (%zu rows after it)",
                     row, k, col.after[k]);
            res = R_FAIL;
        }
    }
    json_decref(col.rows);
    free(col.after);
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
    return res;
}

static result_t run_case(json_t *tc, const char *ext_dir, char *why, size_t whylen)
{
    if (json_object_get(tc, "sql") || json_object_get(tc, "extension_pattern"))
        return run_mr_case(tc, ext_dir, why, whylen);
    json_t *stmts = json_object_get(tc, "statements");
    cep_buf_t sql;
    cep_buf_init(&sql);
    size_t i;
    json_t *s;
    json_array_foreach(stmts, i, s)
    {
        cep_buf_puts(&sql, json_string_value(s));
        cep_buf_puts(&sql, "\n;\n");
    }
    cep_compile_opts_t opts;
    cep_compile_opts_init(&opts);
    json_t *props = json_object_get(tc, "properties");
    const char *k;
    json_t *v;
    json_object_foreach(props, k, v)
    {
        if (!strcmp(k, "ksql.persistence.default.format.key") && json_is_string(v))
            opts.default_key_format = json_string_value(v);
        else if (!strcmp(k, "ksql.persistence.default.format.value") && json_is_string(v))
            opts.default_value_format = json_string_value(v);
        else if (!strcmp(k, "ksql.persistence.wrap.single.values"))
            opts.wrap_single_values = !json_is_false(v) && !(json_is_string(v) && !strcmp(json_string_value(v), "false"));
        else if (!strcmp(k, "ksql.functions.collect_list.limit"))
            opts.collect_list_limit = json_integer_value(v);
        else if (!strcmp(k, "ksql.functions.collect_set.limit"))
            opts.collect_set_limit = json_integer_value(v);
    }
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cep_status_t st = cep_rules_compile("case.sql", sql.data ? sql.data : "", sql.len, &opts, &rs, &err);
    cep_buf_free(&sql);
    bool expect_exc = json_object_get(tc, "expected_exception") != NULL;
    if (st) {
        char eb[700];
        if (expect_exc) return R_PASS;
        snprintf(why, whylen, "compile error: %s", cep_error_format(&err, eb, sizeof eb));
        return R_ERROR;
    }
    collected_t col = {.by_topic = json_object()};
    cep_runtime_t *rt = cep_runtime_new(rs, collect, &col);
    if (!rt) {
        snprintf(why, whylen, "out of memory");
        json_decref(col.by_topic);
        cep_ruleset_free(rs);
        return R_ERROR;
    }
    json_t *inputs = json_object_get(tc, "inputs");
    json_t *in;
    cep_buf_t kb, vb;
    cep_buf_init(&kb);
    cep_buf_init(&vb);
    json_array_foreach(inputs, i, in)
    {
        const char *topic = json_string_value(json_object_get(in, "topic"));
        if (!topic) continue;
        const cep_stream_t *src = source_for(rs, topic);
        if (!src) continue;
        cep_buf_reset(&kb);
        cep_buf_reset(&vb);
        cep_record_t r = {.topic = topic, .offset = (int64_t)i};
        json_t *ts = json_object_get(in, "timestamp");
        r.timestamp = json_is_integer(ts) ? json_integer_value(ts) : 0;
        if (encode(json_object_get(in, "key"), src->key_format, src, true, &kb)) {
            r.key = kb.data ? kb.data : "";
            r.klen = kb.len;
        }
        if (encode(json_object_get(in, "value"), src->value_format, src, false, &vb)) {
            r.value = vb.data ? vb.data : "";
            r.vlen = vb.len;
        }
        json_t *w = json_object_get(in, "window");
        if (w) {
            r.window = true;
            r.window_start = json_integer_value(json_object_get(w, "start"));
            r.window_end = json_integer_value(json_object_get(w, "end"));
        }
        cep_error_t de;
        cep_error_clear(&de);
        cep_runtime_push(rt, &r, &de); /* a bad record is skipped, as ksqlDB does */
    }
    cep_buf_free(&kb);
    cep_buf_free(&vb);
    cep_runtime_free(rt);
    cep_ruleset_free(rs);
    if (expect_exc) {
        json_decref(col.by_topic);
        snprintf(why, whylen, "expected an error (%s), but the statements were accepted",
                 json_string_value(json_object_get(json_object_get(tc, "expected_exception"), "message"))
                     ? json_string_value(json_object_get(json_object_get(tc, "expected_exception"), "message"))
                     : "?");
        return R_FAIL;
    }
    /* expected, per topic */
    json_t *expected = json_object();
    json_t *outs = json_object_get(tc, "outputs"), *o;
    json_array_foreach(outs, i, o)
    {
        const char *topic = json_string_value(json_object_get(o, "topic"));
        json_t *arr = json_object_get(expected, topic);
        if (!arr) {
            arr = json_array();
            json_object_set_new(expected, topic, arr);
        }
        json_array_append(arr, o);
    }
    result_t res = R_PASS;
    const char *topic;
    json_t *earr;
    json_object_foreach(expected, topic, earr)
    {
        json_t *aarr = json_object_get(col.by_topic, topic);
        size_t na = aarr ? json_array_size(aarr) : 0, ne = json_array_size(earr);
        for (size_t j = 0; j < CEP_MAX(na, ne) && res == R_PASS; j++) {
            json_t *e = json_array_get(earr, j), *a = aarr ? json_array_get(aarr, j) : NULL;
            char *es = e ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            char *as = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
            bool same = e && a;
            if (same) {
                json_t *ek = json_object_get(e, "key"), *ak = json_object_get(a, "key");
                same = json_same(ek ? ek : json_null(), ak);
                same = same && json_same(json_object_get(e, "value"), json_object_get(a, "value"));
                json_t *ets = json_object_get(e, "timestamp");
                if (ets && !json_is_null(ets)) same = same && json_same(ets, json_object_get(a, "timestamp"));
                json_t *ew = json_object_get(e, "window"), *aw = json_object_get(a, "window");
                if (ew && !json_is_null(ew)) same = same && aw && json_same(ew, aw);
                else if (aw) same = false;
            }
            if (!same) {
                snprintf(why, whylen, "%s[%zu]: expected %s, got %s", topic, j, es ? es : "nothing",
                         as ? as : "nothing");
                res = R_FAIL;
            }
            free(es);
            free(as);
        }
    }
    json_object_foreach(col.by_topic, topic, earr)
    {
        if (res != R_PASS) break;
        if (!json_object_get(expected, topic)) {
            char *as = json_dumps(json_array_get(earr, 0), JSON_COMPACT | JSON_SORT_KEYS);
            snprintf(why, whylen, "%s[0]: expected nothing, got %s", topic, as ? as : "?");
            free(as);
            res = R_FAIL;
        }
    }
    json_decref(expected);
    json_decref(col.by_topic);
    return res;
}

/* ---- expected failures ---------------------------------------------------- */

typedef struct xfail {
    char **names;
    bool *seen;
    size_t n;
} xfail_t;

/* Each line: "<case name> :: <reason>"; '#' starts a comment. */
static bool load_xfail(const char *path, xfail_t *x)
{
    memset(x, 0, sizeof *x);
    if (!path) return true;
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cep conform: cannot read %s\n", path);
        return false;
    }
    char line[4096];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *sep = strstr(line, " :: ");
        if (!sep) {
            fprintf(stderr, "cep conform: %s: line without ' :: reason': %s", path, line);
            fclose(f);
            return false;
        }
        *sep = 0;
        if (x->n == cap) {
            cap = cap ? cap * 2 : 64;
            x->names = realloc(x->names, cap * sizeof *x->names);
            x->seen = realloc(x->seen, cap * sizeof *x->seen);
        }
        x->names[x->n] = strdup(line);
        x->seen[x->n] = false;
        x->n++;
    }
    fclose(f);
    return true;
}

static int xfail_find(xfail_t *x, const char *name)
{
    for (size_t i = 0; i < x->n; i++)
        if (!strcmp(x->names[i], name)) return (int)i;
    return -1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_files(const char *path, char ***out, size_t *n, size_t *cap)
{
    struct stat sb;
    if (stat(path, &sb)) return;
    if (!S_ISDIR(sb.st_mode)) {
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *out = realloc(*out, *cap * sizeof **out);
        }
        (*out)[(*n)++] = strdup(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *de;
    char **local = NULL;
    size_t ln = 0, lcap = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") || !strcmp(de->d_name, "index.json")) continue;
        if (ln == lcap) {
            lcap = lcap ? lcap * 2 : 256;
            local = realloc(local, lcap * sizeof *local);
        }
        size_t pl = strlen(path) + l + 2;
        local[ln] = malloc(pl);
        snprintf(local[ln], pl, "%s/%s", path, de->d_name);
        ln++;
    }
    closedir(d);
    qsort(local, ln, sizeof *local, cmp_str);
    for (size_t i = 0; i < ln; i++) {
        list_files(local[i], out, n, cap);
        free(local[i]);
    }
    free(local);
}

int cep_cli_conform(int argc, char **argv)
{
    const char *xpath = NULL, *ext_dir = NULL;
    char **files = NULL;
    size_t nfiles = 0, cap = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--expected-failures") && i + 1 < argc) xpath = argv[++i];
        else if (!strcmp(argv[i], "--extensions") && i + 1 < argc) ext_dir = argv[++i];
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: cep conform [--expected-failures FILE] [--extensions DIR] PATH...\n");
            return 2;
        } else
            list_files(argv[i], &files, &nfiles, &cap);
    }
    if (!nfiles) {
        fprintf(stderr, "cep conform: no case files found\n");
        return 2;
    }
    xfail_t xf;
    if (!load_xfail(xpath, &xf)) return 2;
    unsigned passed = 0, failed = 0, unexpected = 0, na = 0;
    for (size_t fi = 0; fi < nfiles; fi++) {
        json_error_t je;
        json_t *tc = json_load_file(files[fi], 0, &je);
        if (!tc) {
            printf("ERROR %s: %s:%d: %s\n", files[fi], je.source, je.line, je.text);
            failed++;
            unexpected++;
            continue;
        }
        const char *name = json_string_value(json_object_get(tc, "name"));
        if (!name) name = files[fi];
        char why[2048] = "";
        result_t r = run_case(tc, ext_dir, why, sizeof why);
        int xi = xfail_find(&xf, name);
        if (xi >= 0) xf.seen[xi] = true;
        if (r == R_NA) {
            na++;
            printf("N/A %s: %s\n", name, why);
            if (xi >= 0) {
                printf("  ^ listed as an expected failure, but it is not applicable: remove it from the list\n");
                unexpected++;
            }
        } else if (r == R_PASS) {
            printf("PASS %s\n", name);
            passed++;
            if (xi >= 0) {
                printf("  ^ listed as an expected failure: remove it from the list\n");
                unexpected++;
            }
        } else {
            printf("%s %s: %s%s\n", r == R_FAIL ? "FAIL" : "ERROR", name, why,
                   xi >= 0 ? " (expected failure)" : "");
            failed++;
            if (xi < 0) unexpected++;
        }
        json_decref(tc);
        free(files[fi]);
    }
    free(files);
    for (size_t i = 0; i < xf.n; i++) {
        free(xf.names[i]);
    }
    free(xf.names);
    free(xf.seen);
    printf("%u passed, %u failed", passed, failed);
    if (na) printf(", %u not applicable", na);
    printf("\n");
    if (xpath) printf("(%u unexpected results against %s)\n", unexpected, xpath);
    return unexpected ? 1 : 0;
}
