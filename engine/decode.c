/*
 * decode.c — record bytes to a typed row. Only the columns some loaded rule
 * reads are converted; the rest of the JSON is skipped without building
 * anything. Strings without escapes point into the record buffer; anything
 * built goes to the per-event scratch arena. Coercions follow ksqlDB's JSON
 * reader ("2" into an INT column is 2; a number into a STRING column is its
 * text). A value that cannot be read as its column's type is a decode error
 * naming the column and the byte offset.
 */
#include "engine/decode.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool cep_value_cast(const cep_value_t *v, const cep_type_t *t, cep_arena_t *a, cep_value_t *out);

typedef struct jr {
    const char *p, *start, *end;
    cep_arena_t *a;
    cep_error_t *err;
    const char *what; /* column being read, for messages */
    int depth;
} jr_t;

static bool jfail(jr_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool jfail(jr_t *j, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cep_pos_t pos = {.offset = (uint32_t)(j->p - j->start), .length = 1};
    cep_error_set(j->err, CEP_ERR_DECODE, &pos, "%s%s%s (at byte %u)", j->what ? "column " : "",
                  j->what ? j->what : "", msg, pos.offset);
    return false;
}

static void ws(jr_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static bool skip_value(jr_t *j);

static bool read_string_raw(jr_t *j, const char **s, size_t *n)
{
    /* at '"' */
    const char *q = ++j->p;
    bool esc = false;
    /* fast path: no backslash before the closing quote (memchr is vectorised) */
    const char *quote = memchr(q, '"', (size_t)(j->end - q));
    if (quote && !memchr(q, '\\', (size_t)(quote - q))) {
        q = quote;
    } else {
        while (q < j->end && *q != '"') {
            if (*q == '\\') {
                esc = true;
                q++;
            }
            q++;
        }
    }
    if (q >= j->end) return jfail(j, ": unterminated string");
    if (!esc) {
        *s = j->p;
        *n = (size_t)(q - j->p);
        j->p = q + 1;
        return true;
    }
    char *buf = cep_arena_alloc(j->a, (size_t)(q - j->p) + 1);
    if (!buf) return jfail(j, ": out of memory");
    size_t k = 0;
    const char *r = j->p;
    while (r < q) {
        if (*r != '\\') {
            buf[k++] = *r++;
            continue;
        }
        r++;
        char c = *r++;
        switch (c) {
        case 'n': buf[k++] = '\n'; break;
        case 't': buf[k++] = '\t'; break;
        case 'r': buf[k++] = '\r'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                if (r >= q || !isxdigit((unsigned char)*r)) return jfail(j, ": bad \\u escape");
                char h = *r++;
                cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            }
            if (cp >= 0xD800 && cp < 0xDC00 && r + 6 <= q && r[0] == '\\' && r[1] == 'u') {
                unsigned lo = 0;
                for (int i = 2; i < 6; i++) {
                    char h = r[i];
                    lo = lo * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
                }
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    r += 6;
                }
            }
            if (cp < 0x80) buf[k++] = (char)cp;
            else if (cp < 0x800) {
                buf[k++] = (char)(0xC0 | cp >> 6);
                buf[k++] = (char)(0x80 | (cp & 63));
            } else if (cp < 0x10000) {
                buf[k++] = (char)(0xE0 | cp >> 12);
                buf[k++] = (char)(0x80 | ((cp >> 6) & 63));
                buf[k++] = (char)(0x80 | (cp & 63));
            } else {
                buf[k++] = (char)(0xF0 | cp >> 18);
                buf[k++] = (char)(0x80 | ((cp >> 12) & 63));
                buf[k++] = (char)(0x80 | ((cp >> 6) & 63));
                buf[k++] = (char)(0x80 | (cp & 63));
            }
            break;
        }
        case '"':
        case '\\':
        case '/': buf[k++] = c; break;
        default: return jfail(j, ": bad escape '\\%c'", c);
        }
    }
    buf[k] = 0;
    *s = buf;
    *n = k;
    j->p = q + 1;
    return true;
}

static bool read_number_text(jr_t *j, const char **s, size_t *n)
{
    const char *q = j->p;
    if (q < j->end && (*q == '-' || *q == '+')) q++;
    while (q < j->end && (isdigit((unsigned char)*q) || *q == '.' || *q == 'e' || *q == 'E' ||
                          *q == '-' || *q == '+'))
        q++;
    if (q == j->p) return jfail(j, ": expected a value");
    *s = j->p;
    *n = (size_t)(q - j->p);
    j->p = q;
    return true;
}

static bool expect_lit(jr_t *j, const char *lit)
{
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n)) return jfail(j, ": invalid JSON");
    j->p += n;
    return true;
}

static bool skip_value(jr_t *j)
{
    ws(j);
    if (j->p >= j->end) return jfail(j, ": unexpected end of JSON");
    if (++j->depth > 64) return jfail(j, ": JSON nested too deeply");
    bool ok = true;
    char c = *j->p;
    if (c == '"') {
        const char *s;
        size_t n;
        cep_arena_t *saved = j->a;
        /* skipping never needs the unescaped text: scan only */
        const char *q = j->p + 1;
        while (q < j->end && *q != '"') q += *q == '\\' ? 2 : 1;
        if (q >= j->end) ok = jfail(j, ": unterminated string");
        else j->p = q + 1;
        (void)s;
        (void)n;
        (void)saved;
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        ws(j);
        if (j->p < j->end && *j->p == close) j->p++;
        else
            for (;;) {
                if (close == '}') {
                    ws(j);
                    if (j->p >= j->end || *j->p != '"') {
                        ok = jfail(j, ": expected a field name");
                        break;
                    }
                    const char *q = j->p + 1;
                    while (q < j->end && *q != '"') q += *q == '\\' ? 2 : 1;
                    if (q >= j->end) {
                        ok = jfail(j, ": unterminated string");
                        break;
                    }
                    j->p = q + 1;
                    ws(j);
                    if (j->p >= j->end || *j->p != ':') {
                        ok = jfail(j, ": expected ':'");
                        break;
                    }
                    j->p++;
                }
                if (!skip_value(j)) {
                    ok = false;
                    break;
                }
                ws(j);
                if (j->p < j->end && *j->p == ',') {
                    j->p++;
                    continue;
                }
                if (j->p < j->end && *j->p == close) {
                    j->p++;
                    break;
                }
                ok = jfail(j, ": expected ',' or '%c'", close);
                break;
            }
    } else if (c == 't') ok = expect_lit(j, "true");
    else if (c == 'f') ok = expect_lit(j, "false");
    else if (c == 'n') ok = expect_lit(j, "null");
    else {
        const char *s;
        size_t n;
        ok = read_number_text(j, &s, &n);
    }
    j->depth--;
    return ok;
}

static const char *type_str(const cep_type_t *t, char *buf, size_t cap)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cep_type_format(t, &b);
    snprintf(buf, cap, "%s", cep_buf_cstr(&b));
    cep_buf_free(&b);
    return buf;
}

/* text (a JSON number's text or a string) to a scalar type */
static bool text_to(jr_t *j, const char *s, size_t n, const cep_type_t *t, cep_value_t *out,
                    bool from_string)
{
    char tb[64];
    if (t->kind == CEP_K_STRING) {
        *out = cep_v_str(s, n);
        return true;
    }
    if (t->kind == CEP_K_BYTES) {
        if (!from_string) return jfail(j, ": expected a base64 string for %s", type_str(t, tb, sizeof tb));
        unsigned char *buf = cep_arena_alloc(j->a, n * 3 / 4 + 4);
        if (!buf) return jfail(j, ": out of memory");
        long len = cep_base64_decode(s, n, buf);
        if (len < 0) return jfail(j, ": invalid base64");
        *out = cep_v_str((const char *)buf, (size_t)len);
        out->kind = CEP_K_BYTES;
        return true;
    }
    cep_value_t sv = cep_v_str(s, n);
    if (t->kind == CEP_K_DECIMAL) {
        /* exact: parse digits */
        const char *q = s, *e = s + n;
        while (q < e && isspace((unsigned char)*q)) q++;
        bool neg = q < e && *q == '-';
        if (q < e && (*q == '-' || *q == '+')) q++;
        __int128 v = 0;
        int scale = -1, digits = 0;
        bool any = false, exp = false;
        for (; q < e; q++) {
            if (isdigit((unsigned char)*q)) {
                if (scale >= 0) {
                    if (scale >= t->scale) {
                        /* round HALF_UP on the first dropped digit */
                        if (scale == t->scale && *q >= '5') v += 1;
                        scale++;
                        continue;
                    }
                    scale++;
                }
                v = v * 10 + (*q - '0');
                digits++;
                any = true;
            } else if (*q == '.' && scale < 0)
                scale = 0;
            else if (*q == 'e' || *q == 'E') {
                exp = true;
                break;
            } else
                break;
        }
        if (!any || (q < e && !exp)) goto bad;
        if (exp) {
            cep_value_t dv;
            if (!cep_value_cast(&sv, &cep_type_double, j->a, &dv) || dv.kind == CEP_K_NULL) goto bad;
            *out = cep_value_cast_num(&dv, t);
            return true;
        }
        if (scale < 0) scale = 0;
        for (int k = CEP_MIN(scale, (int)t->scale); k < t->scale; k++) v *= 10;
        if (v > (__int128)INT64_MAX) return jfail(j, ": %.*s is out of range for %s", (int)n, s, type_str(t, tb, sizeof tb));
        *out = cep_v_int(CEP_K_DECIMAL, (int64_t)(neg ? -v : v));
        out->scale = t->scale;
        (void)digits;
        return true;
    }
    if (t->kind == CEP_K_INT || t->kind == CEP_K_BIGINT || t->kind == CEP_K_TIMESTAMP ||
        t->kind == CEP_K_DATE || t->kind == CEP_K_TIME) {
        if (t->kind == CEP_K_TIMESTAMP && from_string) {
            int64_t ms;
            if (cep_parse_timestamp_text(s, n, &ms)) {
                *out = cep_v_int(CEP_K_TIMESTAMP, ms);
                return true;
            }
        }
        /* fast path: up to 18 plain digits cannot overflow */
        if (n > 0 && n <= 18 && !from_string) {
            size_t i = s[0] == '-';
            int64_t v = 0;
            if (i < n) {
                for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + (s[i] - '0');
                if (i == n) {
                    if (s[0] == '-') v = -v;
                    if (t->kind == CEP_K_INT && (v < INT32_MIN || v > INT32_MAX))
                        return jfail(j, ": %.*s is out of range for INT", (int)n, s);
                    *out = cep_v_int(t->kind, v);
                    return true;
                }
            }
        }
        char buf[64];
        if (n == 0 || n >= sizeof buf) goto bad;
        memcpy(buf, s, n);
        buf[n] = 0;
        char *end;
        errno = 0;
        long long v = strtoll(buf, &end, 10);
        if (*end == '.' || *end == 'e' || *end == 'E') {
            if (from_string) goto bad;
            double d = strtod(buf, &end);
            if (*end || d != floor(d)) goto bad;
            v = (long long)d;
        } else if (*end || errno)
            goto bad;
        if (t->kind == CEP_K_INT && (v < INT32_MIN || v > INT32_MAX))
            return jfail(j, ": %s is out of range for INT", buf);
        *out = cep_v_int(t->kind, v);
        return true;
    }
    if (t->kind == CEP_K_DOUBLE) {
        char buf[64];
        if (n == 0 || n >= sizeof buf) goto bad;
        memcpy(buf, s, n);
        buf[n] = 0;
        char *end;
        double d = strtod(buf, &end);
        if (*end) goto bad;
        *out = cep_v_double(d);
        return true;
    }
    if (t->kind == CEP_K_BOOLEAN && from_string) {
        if (cep_str_ieq(s, n, "true")) *out = cep_v_bool(true);
        else if (cep_str_ieq(s, n, "false")) *out = cep_v_bool(false);
        else goto bad;
        return true;
    }
bad:
    return jfail(j, ": cannot read %s'%.*s' as %s", from_string ? "string " : "", (int)CEP_MIN(n, 40), s,
                 type_str(t, tb, sizeof tb));
}

static bool read_value(jr_t *j, const cep_type_t *t, cep_value_t *out);

static bool read_list(jr_t *j, const cep_type_t *t, cep_value_t *out)
{
    char close = t->kind == CEP_K_ARRAY ? ']' : '}';
    j->p++;
    cep_value_t tmp[256];
    cep_value_t *items = tmp;
    uint32_t n = 0, cap = CEP_ARRAY_LEN(tmp);
    ws(j);
    if (j->p < j->end && *j->p == close) j->p++;
    else
        for (;;) {
            if (n + 2 > cap) {
                uint32_t ncap = cap * 2;
                cep_value_t *ni = cep_arena_alloc(j->a, ncap * sizeof *ni);
                if (!ni) return jfail(j, ": out of memory");
                memcpy(ni, items, n * sizeof *ni);
                items = ni;
                cap = ncap;
            }
            if (t->kind == CEP_K_MAP) {
                ws(j);
                if (j->p >= j->end || *j->p != '"') return jfail(j, ": expected a map key");
                const char *ks;
                size_t kn;
                if (!read_string_raw(j, &ks, &kn)) return false;
                if (!text_to(j, ks, kn, t->key, &items[n], true)) return false;
                ws(j);
                if (j->p >= j->end || *j->p != ':') return jfail(j, ": expected ':'");
                j->p++;
                if (!read_value(j, t->elem, &items[n + 1])) return false;
                n += 2;
            } else {
                if (!read_value(j, t->elem, &items[n])) return false;
                n++;
            }
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                break;
            }
            return jfail(j, ": expected ',' or '%c'", close);
        }
    cep_list_t *l = cep_arena_alloc(j->a, sizeof *l + n * sizeof(cep_value_t));
    if (!l) return jfail(j, ": out of memory");
    l->type = t;
    l->n = t->kind == CEP_K_MAP ? n / 2 : n;
    memcpy(l->v, items, n * sizeof(cep_value_t));
    out->kind = (uint8_t)t->kind;
    out->u.l = l;
    return true;
}

static bool read_struct(jr_t *j, const cep_type_t *t, cep_value_t *out)
{
    cep_list_t *l = cep_arena_zalloc(j->a, sizeof *l + t->nfields * sizeof(cep_value_t));
    if (!l) return jfail(j, ": out of memory");
    l->type = t;
    l->n = t->nfields;
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
    } else
        for (;;) {
            ws(j);
            if (j->p >= j->end || *j->p != '"') return jfail(j, ": expected a field name");
            const char *ks;
            size_t kn;
            if (!read_string_raw(j, &ks, &kn)) return false;
            ws(j);
            if (j->p >= j->end || *j->p != ':') return jfail(j, ": expected ':'");
            j->p++;
            int fi = -1;
            for (uint32_t i = 0; i < t->nfields && fi < 0; i++)
                if (kn == strlen(t->fields[i].name) && !memcmp(ks, t->fields[i].name, kn)) fi = (int)i;
            for (uint32_t i = 0; i < t->nfields && fi < 0; i++)
                if (cep_str_ieq(ks, kn, t->fields[i].name)) fi = (int)i;
            if (fi >= 0) {
                if (!read_value(j, t->fields[fi].type, &l->v[fi])) return false;
            } else if (!skip_value(j))
                return false;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == '}') {
                j->p++;
                break;
            }
            return jfail(j, ": expected ',' or '}'");
        }
    out->kind = CEP_K_STRUCT;
    out->u.l = l;
    return true;
}

static bool read_value(jr_t *j, const cep_type_t *t, cep_value_t *out)
{
    ws(j);
    *out = cep_null();
    if (j->p >= j->end) return jfail(j, ": unexpected end of JSON");
    char c = *j->p;
    char tb[64];
    if (c == 'n') return expect_lit(j, "null");
    if (++j->depth > 64) return jfail(j, ": JSON nested too deeply");
    bool ok;
    if (c == '"') {
        const char *s;
        size_t n;
        ok = read_string_raw(j, &s, &n);
        if (ok) {
            if (t->kind == CEP_K_ARRAY || t->kind == CEP_K_MAP || t->kind == CEP_K_STRUCT)
                ok = jfail(j, ": expected %s, found a string", type_str(t, tb, sizeof tb));
            else
                ok = text_to(j, s, n, t, out, true);
        }
    } else if (c == '{' || c == '[') {
        const char *start = j->p;
        if (t->kind == CEP_K_STRING) {
            ok = skip_value(j);
            if (ok) *out = cep_v_str(start, (size_t)(j->p - start));
        } else if (c == '[' && t->kind == CEP_K_ARRAY)
            ok = read_list(j, t, out);
        else if (c == '{' && t->kind == CEP_K_MAP)
            ok = read_list(j, t, out);
        else if (c == '{' && t->kind == CEP_K_STRUCT)
            ok = read_struct(j, t, out);
        else
            ok = jfail(j, ": expected %s, found %s", type_str(t, tb, sizeof tb),
                       c == '{' ? "an object" : "an array");
    } else if (c == 't' || c == 'f') {
        bool v = c == 't';
        ok = expect_lit(j, v ? "true" : "false");
        if (ok) {
            if (t->kind == CEP_K_BOOLEAN) *out = cep_v_bool(v);
            else if (t->kind == CEP_K_STRING) *out = cep_v_str(v ? "true" : "false", v ? 4 : 5);
            else ok = jfail(j, ": expected %s, found a boolean", type_str(t, tb, sizeof tb));
        }
    } else {
        const char *s;
        size_t n;
        ok = read_number_text(j, &s, &n);
        if (ok) {
            if (t->kind == CEP_K_BOOLEAN || t->kind == CEP_K_ARRAY || t->kind == CEP_K_MAP ||
                t->kind == CEP_K_STRUCT || t->kind == CEP_K_BYTES)
                ok = jfail(j, ": expected %s, found a number", type_str(t, tb, sizeof tb));
            else
                ok = text_to(j, s, n, t, out, false);
        }
    }
    j->depth--;
    return ok;
}

/* ---- formats ----------------------------------------------------------- */

/* The column a JSON field name feeds, or -1. Names match case-insensitively
 * (ksqlDB's JSON serde); when two columns differ only in case, an exact
 * match wins. The compiled field index answers in one probe. */
static int find_field(const cep_stream_t *s, bool keys, const char *ks, size_t kn)
{
    int part = keys ? 1 : 0;
    if (s->fields[part] && !s->fields_ambiguous[part]) {
        uint64_t h = cep_hash_fold(ks, kn);
        uint32_t mask = s->fields_mask[part];
        for (uint32_t at = (uint32_t)h & mask;; at = (at + 1) & mask) {
            const struct cep_field_slot *f = &s->fields[part][at];
            if (f->col < 0) return -1;
            if (f->hash == h && cep_str_ieq(ks, kn, s->cols[f->col].name)) return f->col;
        }
    }
    int ci = -1;
    for (uint32_t i = 0; i < s->ncols; i++) {
        if (s->cols[i].is_key != keys) continue;
        if (cep_str_ieq(ks, kn, s->cols[i].name)) {
            /* an exact (quoted) match wins over a case-insensitive one */
            if (kn == strlen(s->cols[i].name) && !memcmp(ks, s->cols[i].name, kn)) return (int)i;
            if (ci < 0) ci = (int)i;
        }
    }
    return ci;
}

static bool decode_json_object(const cep_stream_t *s, bool keys, jr_t *j, cep_value_t *row)
{
    ws(j);
    if (j->p >= j->end || *j->p != '{') return jfail(j, "expected a JSON object");
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        ws(j);
        if (j->p >= j->end || *j->p != '"') return jfail(j, "expected a field name");
        const char *ks;
        size_t kn;
        j->what = NULL;
        if (!read_string_raw(j, &ks, &kn)) return false;
        ws(j);
        if (j->p >= j->end || *j->p != ':') return jfail(j, "expected ':' after a field name");
        j->p++;
        int ci = find_field(s, keys, ks, kn);
        if (ci >= 0 && s->needed[ci]) {
            j->what = s->cols[ci].name;
            if (!read_value(j, s->cols[ci].type, &row[ci])) return false;
            j->what = NULL;
        } else if (!skip_value(j))
            return false;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }
        return jfail(j, "expected ',' or '}'");
    }
    ws(j);
    if (j->p != j->end) return jfail(j, "unexpected text after the JSON value");
    return true;
}

/* DELIMITED: comma-separated fields in column order, "..." quoting. */
static bool decode_delimited(const cep_stream_t *s, bool keys, jr_t *j, cep_value_t *row)
{
    uint32_t want = 0;
    for (uint32_t i = 0; i < s->ncols; i++) want += s->cols[i].is_key == keys;
    uint32_t field = 0;
    const char *p = j->p;
    uint32_t ci = 0;
    for (;;) {
        /* next column of the wanted kind */
        while (ci < s->ncols && s->cols[ci].is_key != keys) ci++;
        const char *fs = p;
        size_t fn;
        char *buf = NULL;
        if (p < j->end && *p == '"') {
            buf = cep_arena_alloc(j->a, (size_t)(j->end - p) + 1);
            if (!buf) return jfail(j, "out of memory");
            size_t k = 0;
            p++;
            while (p < j->end) {
                if (*p == '"') {
                    if (p + 1 < j->end && p[1] == '"') {
                        buf[k++] = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                buf[k++] = *p++;
            }
            fs = buf;
            fn = k;
        } else {
            while (p < j->end && *p != s->delimiter) p++;
            fn = (size_t)(p - fs);
        }
        if (field >= want) {
            j->p = fs;
            return jfail(j, "unexpected extra field %u (expected %u)", field + 1, want);
        }
        if (ci < s->ncols && s->needed[ci] && (fn > 0 || buf)) {
            j->what = s->cols[ci].name;
            j->p = fs;
            if (!text_to(j, fs, fn, s->cols[ci].type, &row[ci], true)) return false;
            j->what = NULL;
        }
        field++;
        ci++;
        if (p < j->end && *p == s->delimiter) {
            p++;
            continue;
        }
        break;
    }
    if (field != want) {
        j->p = p;
        return jfail(j, "expected %u fields, found %u", want, field);
    }
    return true;
}

/* KAFKA: one primitive in Kafka's serializer encoding. */
static bool decode_kafka(const cep_stream_t *s, bool keys, jr_t *j, cep_value_t *row)
{
    int ci = -1;
    for (uint32_t i = 0; i < s->ncols; i++)
        if (s->cols[i].is_key == keys) {
            if (ci >= 0) return jfail(j, "the KAFKA format holds one column");
            ci = (int)i;
        }
    if (ci < 0) return true;
    const unsigned char *b = (const unsigned char *)j->p;
    size_t n = (size_t)(j->end - j->p);
    const cep_type_t *t = s->cols[ci].type;
    uint64_t u = 0;
    switch (t->kind) {
    case CEP_K_INT:
        if (n != 4) return jfail(j, "KAFKA INT needs 4 bytes, found %zu", n);
        u = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        row[ci] = cep_v_int(CEP_K_INT, (int32_t)u);
        return true;
    case CEP_K_BIGINT:
    case CEP_K_DOUBLE:
    case CEP_K_TIMESTAMP:
        if (n != 8) return jfail(j, "KAFKA %s needs 8 bytes, found %zu", t->kind == CEP_K_DOUBLE ? "DOUBLE" : "BIGINT", n);
        for (int i = 0; i < 8; i++) u = u << 8 | b[i];
        if (t->kind == CEP_K_DOUBLE) {
            double d;
            memcpy(&d, &u, 8);
            row[ci] = cep_v_double(d);
        } else
            row[ci] = cep_v_int(t->kind, (int64_t)u);
        return true;
    case CEP_K_STRING:
        row[ci] = cep_v_str(j->p, n);
        return true;
    case CEP_K_BOOLEAN:
        if (n != 1) return jfail(j, "KAFKA BOOLEAN needs 1 byte");
        row[ci] = cep_v_bool(b[0] != 0);
        return true;
    default: return jfail(j, "the KAFKA format cannot hold %s", "this type");
    }
}

static bool decode_part(const cep_stream_t *s, bool keys, cep_format_t fmt, bool wrap, jr_t *j,
                        cep_value_t *row)
{
    uint32_t cols = 0;
    int only = -1;
    for (uint32_t i = 0; i < s->ncols; i++)
        if (s->cols[i].is_key == keys) cols++, only = (int)i;
    if (!cols) return true;
    switch (fmt) {
    case CEP_FMT_JSON:
        /* a single key column, or an unwrapped single value, is a bare JSON value */
        if (cols == 1 && (keys || !wrap)) {
            if (keys) {
                ws(j);
                if (j->p < j->end && *j->p == '{' && s->cols[only].type->kind != CEP_K_STRUCT &&
                    s->cols[only].type->kind != CEP_K_MAP) {
                    /* a key written as an object holding the column */
                    return decode_json_object(s, keys, j, row);
                }
            }
            j->what = s->cols[only].name;
            if (!s->needed[only]) return skip_value(j);
            return read_value(j, s->cols[only].type, &row[only]);
        }
        return decode_json_object(s, keys, j, row);
    case CEP_FMT_DELIMITED: return decode_delimited(s, keys, j, row);
    case CEP_FMT_KAFKA: return decode_kafka(s, keys, j, row);
    case CEP_FMT_NONE: return true;
    default: return jfail(j, "unknown format");
    }
}

cep_status_t cep_decode_record(const cep_stream_t *s, const cep_record_t *r, cep_value_t *row,
                               cep_arena_t *scratch, cep_error_t *err)
{
    for (uint32_t i = 0; i < s->nslots; i++) row[i] = cep_null();
    cep_error_t local;
    cep_error_clear(&local);
    if (!err) err = &local;
    if (r->key && r->klen && s->nkey) {
        jr_t j = {.p = r->key, .start = r->key, .end = r->key + r->klen, .a = scratch, .err = err};
        if (!decode_part(s, true, s->key_format, true, &j, row)) {
            /* say which part failed */
            size_t len = strnlen(err->msg, sizeof err->msg - 6);
            memmove(err->msg + 5, err->msg, len);
            memcpy(err->msg, "key: ", 5);
            err->msg[len + 5] = 0;
            return CEP_ERR_DECODE;
        }
    }
    if (r->value) {
        jr_t j = {.p = r->value, .start = r->value, .end = r->value + r->vlen, .a = scratch, .err = err};
        if (!decode_part(s, false, s->value_format, s->wrap_single, &j, row)) return CEP_ERR_DECODE;
    }
    int64_t ts = r->timestamp;
    if (s->ts_col >= 0) {
        const cep_value_t *v = &row[s->ts_col];
        if (v->kind == CEP_K_NULL)
            return cep_error_set(err, CEP_ERR_DECODE, NULL, "missing event time column %s",
                                 s->cols[s->ts_col].name);
        if (v->kind == CEP_K_STRING) {
            if (!cep_parse_timestamp_text(v->u.s.p, v->u.s.n, &ts))
                return cep_error_set(err, CEP_ERR_DECODE, NULL, "cannot parse event time '%.*s'",
                                     (int)CEP_MIN(v->u.s.n, 40), v->u.s.p);
        } else
            ts = v->u.i;
    }
    /* ECMAScript's time range (±273,790 years): window arithmetic on it
     * cannot overflow, and nothing real lies outside it */
    if (ts < -CEP_TIME_LIMIT_MS || ts > CEP_TIME_LIMIT_MS)
        return cep_error_set(err, CEP_ERR_DECODE, NULL, "event time %lld is out of range", (long long)ts);
    row[s->ncols + CEP_PSEUDO_ROWTIME] = cep_v_int(CEP_K_BIGINT, ts);
    row[s->ncols + CEP_PSEUDO_ROWPARTITION] = cep_v_int(CEP_K_INT, r->partition);
    row[s->ncols + CEP_PSEUDO_ROWOFFSET] = cep_v_int(CEP_K_BIGINT, r->offset);
    if (r->window) {
        row[s->ncols + CEP_PSEUDO_WINDOWSTART] = cep_v_int(CEP_K_BIGINT, r->window_start);
        row[s->ncols + CEP_PSEUDO_WINDOWEND] = cep_v_int(CEP_K_BIGINT, r->window_end);
    }
    return CEP_OK;
}
