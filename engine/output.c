/*
 * output.c — output rows as text: ksqlDB's key and value forms, and the
 * alert line with rule metadata and a deterministic alert id.
 */
#include "engine/output.h"

#include <stdlib.h>
#include <string.h>

static uint32_t count_cols(const cep_stream_t *s, bool keys)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->ncols; i++) n += s->cols[i].is_key == keys;
    return n;
}

static void put_cols(const cep_output_t *o, bool keys, cep_format_t fmt, bool wrap, cep_buf_t *out)
{
    const cep_stream_t *s = o->sink;
    uint32_t n = count_cols(s, keys);
    if (n == 0) {
        cep_buf_puts(out, "null");
        return;
    }
    if (fmt == CEP_FMT_DELIMITED) {
        cep_buf_t t;
        cep_buf_init(&t);
        bool first = true;
        for (uint32_t i = 0; i < s->ncols; i++) {
            if (s->cols[i].is_key != keys) continue;
            if (!first) cep_buf_putc(&t, ',');
            first = false;
            cep_value_to_text(&o->cols[i], &t);
        }
        cep_buf_put_json_str(out, t.data ? t.data : "", t.len);
        cep_buf_free(&t);
        return;
    }
    bool bare = n == 1 && (keys || fmt == CEP_FMT_KAFKA || !wrap);
    if (bare) {
        for (uint32_t i = 0; i < s->ncols; i++)
            if (s->cols[i].is_key == keys) cep_value_to_json(&o->cols[i], out);
        return;
    }
    cep_buf_putc(out, '{');
    bool first = true;
    for (uint32_t i = 0; i < s->ncols; i++) {
        if (s->cols[i].is_key != keys) continue;
        if (!first) cep_buf_putc(out, ',');
        first = false;
        cep_buf_put_json_str(out, s->cols[i].name, strlen(s->cols[i].name));
        cep_buf_putc(out, ':');
        cep_value_to_json(&o->cols[i], out);
    }
    cep_buf_putc(out, '}');
}

void cep_output_key_json(const cep_output_t *o, cep_buf_t *out)
{
    put_cols(o, true, o->sink->key_format, true, out);
}

void cep_output_value_json(const cep_output_t *o, cep_buf_t *out)
{
    if (o->tombstone) {
        cep_buf_puts(out, "null");
        return;
    }
    put_cols(o, false, o->sink->value_format, o->sink->wrap_single, out);
}

/* The deterministic id: rule / key / window start or event time, so an
 * alert replayed after a crash carries the id it had. */
static void alert_id(const cep_output_t *o, const char *k, size_t kn, cep_buf_t *id)
{
    cep_buf_puts(id, o->query->name);
    cep_buf_putc(id, '/');
    if (kn >= 2 && k[0] == '"' && k[kn - 1] == '"') cep_buf_put(id, k + 1, kn - 2);
    else cep_buf_put(id, k, kn);
    cep_buf_putc(id, '/');
    cep_buf_put_i64(id, o->windowed ? o->wstart : o->timestamp);
}

void cep_output_alert_id(const cep_output_t *o, cep_buf_t *out)
{
    cep_buf_t key;
    cep_buf_init(&key);
    cep_output_key_json(o, &key);
    alert_id(o, key.data ? key.data : "", key.len, out);
    cep_buf_free(&key);
}

void cep_output_alert_line(const cep_output_t *o, cep_buf_t *out)
{
    const cep_query_t *q = o->query;
    size_t key_at;
    cep_buf_puts(out, "{\"topic\":");
    cep_buf_put_json_str(out, o->sink->topic, strlen(o->sink->topic));
    cep_buf_puts(out, ",\"key\":");
    key_at = out->len;
    cep_output_key_json(o, out);
    size_t key_end = out->len;
    cep_buf_puts(out, ",\"value\":");
    cep_output_value_json(o, out);
    cep_buf_puts(out, ",\"timestamp\":");
    cep_buf_put_i64(out, o->timestamp);
    if (o->windowed) { /* no printf on this path: a backtest writes millions of these */
        cep_buf_puts(out, ",\"window\":{\"start\":");
        cep_buf_put_i64(out, o->wstart);
        cep_buf_puts(out, ",\"end\":");
        cep_buf_put_i64(out, o->wend);
        cep_buf_puts(out, o->wtype == CEP_WIN_SESSION ? ",\"type\":\"session\"}" : ",\"type\":\"time\"}");
    }
    cep_buf_puts(out, ",\"rule\":");
    cep_buf_put_json_str(out, q->name, strlen(q->name));
    char version[8];
    for (int i = 0; i < 8; i++) version[i] = "0123456789abcdef"[(q->fingerprint >> (28 - 4 * i)) & 15];
    cep_buf_puts(out, ",\"rule_version\":\"");
    cep_buf_put(out, version, 8);
    cep_buf_putc(out, '"');
    if (q->meta.severity) {
        cep_buf_puts(out, ",\"severity\":");
        cep_buf_put_json_str(out, q->meta.severity, strlen(q->meta.severity));
    }
    if (q->meta.shadow) cep_buf_puts(out, ",\"mode\":\"shadow\"");
    cep_buf_puts(out, ",\"alert_id\":");
    /* the id is made at the end of out, then written back quoted (through the
     * stack when it is short: no allocation per alert) */
    size_t raw_at = out->len;
    /* alert_id reads the key from out while appending to it: room first, so nothing moves */
    if (!cep_buf_reserve(out, strlen(q->name) + (key_end - key_at) + 24)) return;
    alert_id(o, out->data + key_at, key_end - key_at, out);
    size_t n = out->len - raw_at;
    char stack[1024], *id = n <= sizeof stack ? stack : malloc(n);
    if (id && !out->failed) {
        memcpy(id, out->data + raw_at, n);
        out->len = raw_at;
        cep_buf_put_json_str(out, id, n);
    }
    if (id != stack) free(id);
    cep_buf_putc(out, '}');
}

void cep_output_dead_letter_line(const char *source, uint64_t line, const cep_error_t *err, const char *raw, size_t n,
                                 cep_buf_t *out)
{
    cep_buf_puts(out, "{\"reason\":");
    cep_buf_put_json_str(out, err->msg, strlen(err->msg));
    cep_buf_puts(out, ",\"source\":");
    cep_buf_put_json_str(out, source, strlen(source));
    cep_buf_printf(out, ",\"line\":%llu,\"offset\":%u,\"raw\":", (unsigned long long)line, err->pos.offset);
    cep_buf_put_json_str(out, raw, n);
    cep_buf_putc(out, '}');
}
