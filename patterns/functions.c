/*
 * functions.c — the scalar function library: type rules and
 * implementations, one table indexed by function id. Regular expressions
 * live in regex.c; this file holds strings, math, JSON, collections, time
 * and geography.
 */
#include "patterns/expr.h"
#include "patterns/regex.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool cep_value_cast(const cep_value_t *v, const cep_type_t *t, cep_arena_t *a, cep_value_t *out);

/* ---- type rules ---------------------------------------------------------- */

static const cep_type_t *bad_arg(const cep_type_t **args, int i, const char *want,
                                 const cep_pos_t *pos, cep_error_t *err)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cep_type_format(args[i], &b);
    cep_error_set(err, CEP_ERR_SEMANTIC, pos, "argument %d must be %s, not %s", i + 1, want,
                  cep_buf_cstr(&b));
    cep_buf_free(&b);
    return NULL;
}

static bool is_str(const cep_type_t *t)
{
    return t->kind == CEP_K_STRING || t->kind == CEP_K_NULL;
}
static bool is_num(const cep_type_t *t)
{
    return cep_type_is_numeric(t) || t->kind == CEP_K_NULL;
}
static bool is_int(const cep_type_t *t)
{
    return cep_type_is_integral(t) || t->kind == CEP_K_NULL;
}

#define CHECK(name)                                                                               \
    static const cep_type_t *name(cep_arena_t *a, const cep_type_t **args, int n,                 \
                                  const cep_type_t **coerce, const cep_pos_t *pos,                \
                                  cep_error_t *err)
#define UNUSED_CHECK_ARGS (void)a, (void)n, (void)coerce, (void)pos, (void)err, (void)args

/* string functions: all arguments strings; result string */
CHECK(chk_str_str)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < n; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    return &cep_type_string;
}

/* (STRING|BYTES) -> INT */
CHECK(chk_len)
{
    UNUSED_CHECK_ARGS;
    if (!is_str(args[0]) && args[0]->kind != CEP_K_BYTES)
        return bad_arg(args, 0, "STRING or BYTES", pos, err);
    return &cep_type_int;
}

/* SUBSTRING(STRING|BYTES, INT[, INT]) */
CHECK(chk_substring)
{
    UNUSED_CHECK_ARGS;
    if (!is_str(args[0]) && args[0]->kind != CEP_K_BYTES)
        return bad_arg(args, 0, "STRING or BYTES", pos, err);
    for (int i = 1; i < n; i++)
        if (!is_int(args[i])) return bad_arg(args, i, "INT", pos, err);
    return args[0]->kind == CEP_K_BYTES ? &cep_type_bytes : &cep_type_string;
}

/* CONCAT(all STRING or all BYTES) */
CHECK(chk_concat)
{
    UNUSED_CHECK_ARGS;
    const cep_type_t *t = NULL;
    for (int i = 0; i < n; i++) {
        if (args[i]->kind == CEP_K_NULL) continue;
        if (args[i]->kind != CEP_K_STRING && args[i]->kind != CEP_K_BYTES)
            return bad_arg(args, i, "STRING or BYTES", pos, err);
        if (t && t->kind != args[i]->kind) return bad_arg(args, i, "the same type as the others", pos, err);
        t = args[i];
    }
    return t ? t : &cep_type_string;
}

CHECK(chk_num_same)
{
    UNUSED_CHECK_ARGS;
    if (!is_num(args[0])) return bad_arg(args, 0, "numeric", pos, err);
    return args[0]->kind == CEP_K_NULL ? &cep_type_double : args[0];
}

CHECK(chk_num_double)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < n; i++)
        if (!is_num(args[i])) return bad_arg(args, i, "numeric", pos, err);
    for (int i = 0; i < n; i++) coerce[i] = &cep_type_double;
    return &cep_type_double;
}

CHECK(chk_round)
{
    UNUSED_CHECK_ARGS;
    if (!is_num(args[0])) return bad_arg(args, 0, "numeric", pos, err);
    if (n > 1 && !is_int(args[1])) return bad_arg(args, 1, "INT", pos, err);
    if (args[0]->kind == CEP_K_DOUBLE) {
        coerce[0] = &cep_type_double;
        return n > 1 ? &cep_type_double : &cep_type_bigint;
    }
    if (args[0]->kind == CEP_K_DECIMAL) return args[0];
    return args[0];
}

CHECK(chk_regex_like)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < 2; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    return &cep_type_boolean;
}

/* REGEXP_EXTRACT(pattern, string[, group]) */
CHECK(chk_regex_extract)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < 2; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    if (n > 2 && !is_int(args[2])) return bad_arg(args, 2, "INT", pos, err);
    return &cep_type_string;
}

static const cep_type_t *array_of(cep_arena_t *a, const cep_type_t *e)
{
    cep_type_t *t = cep_arena_zalloc(a, sizeof *t);
    if (!t) return NULL;
    t->kind = CEP_K_ARRAY;
    t->elem = e;
    return t;
}

CHECK(chk_regex_extract_all)
{
    UNUSED_CHECK_ARGS;
    if (!chk_regex_extract(a, args, n, coerce, pos, err)) return NULL;
    return array_of(a, &cep_type_string);
}

CHECK(chk_regex_replace)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < 3; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    return &cep_type_string;
}

CHECK(chk_split)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < 2; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    return array_of(a, &cep_type_string);
}

CHECK(chk_str_int)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < n; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    return &cep_type_int;
}

CHECK(chk_geo)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < 4; i++)
        if (!is_num(args[i])) return bad_arg(args, i, "numeric", pos, err);
    if (n > 4 && !is_str(args[4])) return bad_arg(args, 4, "STRING", pos, err);
    for (int i = 0; i < 4; i++) coerce[i] = &cep_type_double;
    return &cep_type_double;
}

CHECK(chk_array_contains)
{
    UNUSED_CHECK_ARGS;
    if (args[0]->kind != CEP_K_ARRAY && args[0]->kind != CEP_K_NULL)
        return bad_arg(args, 0, "ARRAY", pos, err);
    return &cep_type_boolean;
}

CHECK(chk_array_length)
{
    UNUSED_CHECK_ARGS;
    if (args[0]->kind != CEP_K_ARRAY && args[0]->kind != CEP_K_NULL)
        return bad_arg(args, 0, "ARRAY", pos, err);
    return &cep_type_int;
}

CHECK(chk_json_records)
{
    UNUSED_CHECK_ARGS;
    if (!is_str(args[0])) return bad_arg(args, 0, "STRING", pos, err);
    cep_type_t *t = cep_arena_zalloc(a, sizeof *t);
    if (!t) return NULL;
    t->kind = CEP_K_MAP;
    t->key = &cep_type_string;
    t->elem = &cep_type_string;
    return t;
}

CHECK(chk_coalesce)
{
    UNUSED_CHECK_ARGS;
    const cep_type_t *t = &cep_type_null;
    for (int i = 0; i < n; i++) {
        const cep_type_t *c = cep_type_common(a, t, args[i]);
        if (!c) return bad_arg(args, i, "the same type as the first argument", pos, err);
        t = c;
    }
    for (int i = 0; i < n; i++) coerce[i] = t;
    return t;
}

CHECK(chk_identity)
{
    UNUSED_CHECK_ARGS;
    return args[0];
}

CHECK(chk_ts_to_string)
{
    UNUSED_CHECK_ARGS;
    if (!is_num(args[0]) && args[0]->kind != CEP_K_TIMESTAMP)
        return bad_arg(args, 0, "BIGINT or TIMESTAMP", pos, err);
    for (int i = 1; i < n; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    return &cep_type_string;
}

CHECK(chk_string_to_ts)
{
    UNUSED_CHECK_ARGS;
    for (int i = 0; i < n; i++)
        if (!is_str(args[i])) return bad_arg(args, i, "STRING", pos, err);
    return &cep_type_bigint;
}

CHECK(chk_now)
{
    UNUSED_CHECK_ARGS;
    return &cep_type_bigint;
}

CHECK(chk_from_unixtime)
{
    UNUSED_CHECK_ARGS;
    if (!is_num(args[0])) return bad_arg(args, 0, "BIGINT", pos, err);
    return &cep_type_timestamp;
}

/* ---- implementations --------------------------------------------------- */

#define EVAL(name)                                                                                \
    static bool name(cep_eval_t *ctx, const void *state, cep_value_t *args, int n,                \
                     cep_value_t *out)
#define UNUSED_EVAL_ARGS (void)ctx, (void)state, (void)args, (void)n, (void)out

static char *scratch(cep_eval_t *ctx, size_t n)
{
    return cep_arena_alloc(ctx->scratch, n + 1);
}

EVAL(f_ucase)
{
    UNUSED_EVAL_ARGS;
    char *p = scratch(ctx, args[0].u.s.n);
    if (!p) return false;
    for (uint32_t i = 0; i < args[0].u.s.n; i++) p[i] = (char)toupper((unsigned char)args[0].u.s.p[i]);
    *out = cep_v_str(p, args[0].u.s.n);
    return true;
}

EVAL(f_lcase)
{
    UNUSED_EVAL_ARGS;
    char *p = scratch(ctx, args[0].u.s.n);
    if (!p) return false;
    for (uint32_t i = 0; i < args[0].u.s.n; i++) p[i] = (char)tolower((unsigned char)args[0].u.s.p[i]);
    *out = cep_v_str(p, args[0].u.s.n);
    return true;
}

EVAL(f_initcap)
{
    UNUSED_EVAL_ARGS;
    char *p = scratch(ctx, args[0].u.s.n);
    if (!p) return false;
    bool start = true;
    for (uint32_t i = 0; i < args[0].u.s.n; i++) {
        unsigned char c = (unsigned char)args[0].u.s.p[i];
        p[i] = (char)(start ? toupper(c) : tolower(c));
        start = isspace(c);
    }
    *out = cep_v_str(p, args[0].u.s.n);
    return true;
}

/* UTF-8 aware length in code points, as Java counts (BMP) characters */
static uint32_t utf8_len(const char *s, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

EVAL(f_len)
{
    UNUSED_EVAL_ARGS;
    *out = cep_v_int(CEP_K_INT, args[0].kind == CEP_K_BYTES ? args[0].u.s.n
                                                             : utf8_len(args[0].u.s.p, args[0].u.s.n));
    return true;
}

EVAL(f_trim)
{
    UNUSED_EVAL_ARGS;
    const char *s = args[0].u.s.p;
    uint32_t b = 0, e = args[0].u.s.n;
    while (b < e && isspace((unsigned char)s[b])) b++;
    while (e > b && isspace((unsigned char)s[e - 1])) e--;
    *out = cep_v_str(s + b, e - b);
    return true;
}

EVAL(f_ltrim)
{
    UNUSED_EVAL_ARGS;
    const char *s = args[0].u.s.p;
    uint32_t b = 0, e = args[0].u.s.n;
    while (b < e && isspace((unsigned char)s[b])) b++;
    *out = cep_v_str(s + b, e - b);
    return true;
}

EVAL(f_rtrim)
{
    UNUSED_EVAL_ARGS;
    const char *s = args[0].u.s.p;
    uint32_t e = args[0].u.s.n;
    while (e > 0 && isspace((unsigned char)s[e - 1])) e--;
    *out = cep_v_str(s, e);
    return true;
}

/* SUBSTRING is 1-based; position 0 behaves as 1, negative counts from
 * the end (ksqlDB's current mode). */
EVAL(f_substring)
{
    UNUSED_EVAL_ARGS;
    int64_t len = args[0].u.s.n;
    int64_t pos = args[1].u.i;
    int64_t start = pos > 0 ? pos - 1 : pos < 0 ? len + pos : 0;
    if (start < 0) start = 0;
    if (start > len) start = len;
    int64_t end = len;
    if (n > 2) {
        int64_t l = args[2].u.i;
        end = l < 0 ? start : CEP_MIN(len, start + l);
    }
    if (end < start) end = start;
    *out = args[0];
    out->u.s.p = args[0].u.s.p + start;
    out->u.s.n = (uint32_t)(end - start);
    return true;
}

/* CONCAT skips NULL arguments */
EVAL(f_concat)
{
    UNUSED_EVAL_ARGS;
    size_t total = 0;
    int kind = CEP_K_STRING;
    for (int i = 0; i < n; i++)
        if (args[i].kind != CEP_K_NULL) {
            total += args[i].u.s.n;
            kind = args[i].kind;
        }
    char *p = scratch(ctx, total);
    if (!p) return false;
    size_t k = 0;
    for (int i = 0; i < n; i++)
        if (args[i].kind != CEP_K_NULL) {
            memcpy(p + k, args[i].u.s.p, args[i].u.s.n);
            k += args[i].u.s.n;
        }
    *out = cep_v_str(p, total);
    out->kind = (uint8_t)kind;
    return true;
}

/* CONCAT_WS(sep, ...): NULL separator gives NULL; NULL items are skipped */
EVAL(f_concat_ws)
{
    UNUSED_EVAL_ARGS;
    if (args[0].kind == CEP_K_NULL) {
        *out = cep_null();
        return true;
    }
    size_t total = 0;
    int items = 0;
    for (int i = 1; i < n; i++)
        if (args[i].kind != CEP_K_NULL) total += args[i].u.s.n, items++;
    if (items > 1) total += (size_t)(items - 1) * args[0].u.s.n;
    char *p = scratch(ctx, total);
    if (!p) return false;
    size_t k = 0;
    bool first = true;
    for (int i = 1; i < n; i++) {
        if (args[i].kind == CEP_K_NULL) continue;
        if (!first) {
            memcpy(p + k, args[0].u.s.p, args[0].u.s.n);
            k += args[0].u.s.n;
        }
        first = false;
        memcpy(p + k, args[i].u.s.p, args[i].u.s.n);
        k += args[i].u.s.n;
    }
    *out = cep_v_str(p, total);
    out->kind = args[0].kind;
    return true;
}

EVAL(f_replace)
{
    UNUSED_EVAL_ARGS;
    const cep_value_t *s = &args[0], *f = &args[1], *r = &args[2];
    cep_buf_t b;
    cep_buf_init(&b);
    for (uint32_t i = 0; i < s->u.s.n;) {
        if (f->u.s.n && i + f->u.s.n <= s->u.s.n && !memcmp(s->u.s.p + i, f->u.s.p, f->u.s.n)) {
            cep_buf_put(&b, r->u.s.p, r->u.s.n);
            i += f->u.s.n;
        } else
            cep_buf_putc(&b, s->u.s.p[i++]);
    }
    char *p = cep_arena_strndup(ctx->scratch, b.data ? b.data : "", b.len);
    size_t len = b.len;
    cep_buf_free(&b);
    if (!p) return false;
    *out = cep_v_str(p, len);
    return true;
}

EVAL(f_instr)
{
    UNUSED_EVAL_ARGS;
    const cep_value_t *s = &args[0], *f = &args[1];
    int64_t r = 0;
    for (uint32_t i = 0; f->u.s.n <= s->u.s.n && i + f->u.s.n <= s->u.s.n; i++)
        if (!memcmp(s->u.s.p + i, f->u.s.p, f->u.s.n)) {
            r = i + 1;
            break;
        }
    *out = cep_v_int(CEP_K_INT, r);
    return true;
}

static const cep_type_t string_array_type = {.kind = CEP_K_ARRAY, .elem = &cep_type_string};

EVAL(f_split)
{
    UNUSED_EVAL_ARGS;
    const cep_value_t *s = &args[0], *d = &args[1];
    uint32_t parts = 1;
    if (d->u.s.n == 0) parts = s->u.s.n ? s->u.s.n : 1;
    else
        for (uint32_t i = 0; i + d->u.s.n <= s->u.s.n; i++)
            if (!memcmp(s->u.s.p + i, d->u.s.p, d->u.s.n)) parts++, i += d->u.s.n - 1;
    cep_list_t *l = cep_arena_alloc(ctx->scratch, sizeof *l + parts * sizeof(cep_value_t));
    if (!l) return false;
    l->type = &string_array_type;
    l->n = 0;
    if (d->u.s.n == 0) {
        for (uint32_t i = 0; i < s->u.s.n; i++) l->v[l->n++] = cep_v_str(s->u.s.p + i, 1);
        if (!s->u.s.n) l->v[l->n++] = cep_v_str(s->u.s.p, 0);
    } else {
        uint32_t start = 0;
        for (uint32_t i = 0; i + d->u.s.n <= s->u.s.n; i++)
            if (!memcmp(s->u.s.p + i, d->u.s.p, d->u.s.n)) {
                l->v[l->n++] = cep_v_str(s->u.s.p + start, i - start);
                i += d->u.s.n - 1;
                start = i + 1;
            }
        l->v[l->n++] = cep_v_str(s->u.s.p + start, s->u.s.n - start);
    }
    out->kind = CEP_K_ARRAY;
    out->u.l = l;
    return true;
}

EVAL(f_abs)
{
    UNUSED_EVAL_ARGS;
    *out = args[0];
    if (out->kind == CEP_K_DOUBLE) out->u.d = fabs(out->u.d);
    else if (out->u.i < 0) out->u.i = -out->u.i;
    return true;
}

EVAL(f_ceil)
{
    UNUSED_EVAL_ARGS;
    *out = args[0];
    if (out->kind == CEP_K_DOUBLE) out->u.d = ceil(out->u.d);
    return true;
}

EVAL(f_floor)
{
    UNUSED_EVAL_ARGS;
    *out = args[0];
    if (out->kind == CEP_K_DOUBLE) out->u.d = floor(out->u.d);
    return true;
}

static double java_round(double x)
{
    return floor(x + 0.5);
}

EVAL(f_round)
{
    UNUSED_EVAL_ARGS;
    if (args[0].kind == CEP_K_DOUBLE) {
        if (n > 1) {
            if (args[1].kind == CEP_K_NULL) {
                *out = cep_null();
                return true;
            }
            double p = pow(10, (double)args[1].u.i);
            *out = cep_v_double(java_round(args[0].u.d * p) / p);
        } else
            *out = cep_v_int(CEP_K_BIGINT, (int64_t)java_round(args[0].u.d));
        return true;
    }
    *out = args[0];
    return true;
}

EVAL(f_exp)
{
    UNUSED_EVAL_ARGS;
    *out = cep_v_double(exp(args[0].u.d));
    return true;
}
EVAL(f_ln)
{
    UNUSED_EVAL_ARGS;
    *out = cep_v_double(log(args[0].u.d));
    return true;
}
EVAL(f_sqrt)
{
    UNUSED_EVAL_ARGS;
    *out = cep_v_double(sqrt(args[0].u.d));
    return true;
}
EVAL(f_sign)
{
    UNUSED_EVAL_ARGS;
    double d = args[0].u.d;
    *out = cep_v_double(d > 0 ? 1 : d < 0 ? -1 : 0);
    return true;
}
EVAL(f_power)
{
    UNUSED_EVAL_ARGS;
    *out = cep_v_double(pow(args[0].u.d, args[1].u.d));
    return true;
}

/* GEO_DISTANCE(lat1, lon1, lat2, lon2[, 'KM'|'MILES']): great-circle
 * distance with the haversine formula and ksqlDB's earth radius. */
EVAL(f_geo_distance)
{
    UNUSED_EVAL_ARGS;
    for (int i = 0; i < 4; i++)
        if (args[i].kind == CEP_K_NULL) {
            *out = cep_null();
            return true;
        }
    double r = 6371.0;
    if (n > 4 && args[4].kind == CEP_K_STRING) {
        const char *u = args[4].u.s.p;
        uint32_t un = args[4].u.s.n;
        if (cep_str_ieq(u, un, "mi") || cep_str_ieq(u, un, "miles") || cep_str_ieq(u, un, "mile"))
            r = 3959.0;
        else if (!cep_str_ieq(u, un, "km") && !cep_str_ieq(u, un, "kilometers") &&
                 !cep_str_ieq(u, un, "kilometer")) {
            ctx->failed = true;
            if (ctx->err) cep_error_set(ctx->err, CEP_ERR_RUNTIME, NULL, "GEO_DISTANCE: unknown unit");
            return false;
        }
    }
    double la1 = args[0].u.d * M_PI / 180, lo1 = args[1].u.d * M_PI / 180;
    double la2 = args[2].u.d * M_PI / 180, lo2 = args[3].u.d * M_PI / 180;
    double dla = la2 - la1, dlo = lo2 - lo1;
    double h = sin(dla / 2) * sin(dla / 2) + cos(la1) * cos(la2) * sin(dlo / 2) * sin(dlo / 2);
    *out = cep_v_double(2 * r * asin(sqrt(h)));
    return true;
}

EVAL(f_array_contains)
{
    UNUSED_EVAL_ARGS;
    if (args[0].kind == CEP_K_NULL) {
        *out = cep_v_bool(false);
        return true;
    }
    bool found = false;
    for (uint32_t i = 0; i < args[0].u.l->n && !found; i++) {
        const cep_value_t *e = &args[0].u.l->v[i];
        if (e->kind == CEP_K_NULL || args[1].kind == CEP_K_NULL)
            found = e->kind == args[1].kind;
        else
            found = cep_value_eq(e, &args[1]);
    }
    *out = cep_v_bool(found);
    return true;
}

EVAL(f_array_length)
{
    UNUSED_EVAL_ARGS;
    *out = cep_v_int(CEP_K_INT, args[0].u.l->n);
    return true;
}

EVAL(f_coalesce)
{
    UNUSED_EVAL_ARGS;
    *out = cep_null();
    for (int i = 0; i < n; i++)
        if (args[i].kind != CEP_K_NULL) {
            *out = args[i];
            break;
        }
    return true;
}

EVAL(f_nullif)
{
    UNUSED_EVAL_ARGS;
    *out = args[0];
    if (args[0].kind != CEP_K_NULL && args[1].kind != CEP_K_NULL && cep_value_eq(&args[0], &args[1]))
        *out = cep_null();
    return true;
}

EVAL(f_identity)
{
    UNUSED_EVAL_ARGS;
    *out = args[0];
    return true;
}

/* ---- JSON helpers ------------------------------------------------------ */

/* A tiny JSON walker over text, for EXTRACTJSONFIELD and friends. */
static const char *json_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *json_skip(const char *p, const char *e);

static const char *json_skip_str(const char *p, const char *e)
{
    p++;
    while (p < e && *p != '"') p += *p == '\\' ? 2 : 1;
    return p < e ? p + 1 : NULL;
}

static const char *json_skip(const char *p, const char *e)
{
    p = json_ws(p, e);
    if (p >= e) return NULL;
    if (*p == '"') return json_skip_str(p, e);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = json_ws(p + 1, e);
        if (p < e && *p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                p = json_ws(p, e);
                if (p >= e || *p != '"') return NULL;
                p = json_skip_str(p, e);
                if (!p) return NULL;
                p = json_ws(p, e);
                if (p >= e || *p != ':') return NULL;
                p++;
            }
            p = json_skip(p, e);
            if (!p) return NULL;
            p = json_ws(p, e);
            if (p < e && *p == ',') {
                p++;
                continue;
            }
            if (p < e && *p == close) return p + 1;
            return NULL;
        }
    }
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\t' &&
           *p != '\r')
        p++;
    return p;
}

/* Unescape a JSON string token [p, e) (with quotes) into the arena. */
static bool json_unescape(cep_arena_t *a, const char *p, const char *e, cep_value_t *out)
{
    p++;
    e--;
    char *buf = cep_arena_alloc(a, (size_t)(e - p) + 1);
    if (!buf) return false;
    size_t k = 0;
    while (p < e) {
        if (*p != '\\') {
            buf[k++] = *p++;
            continue;
        }
        p++;
        if (p >= e) break;
        char c = *p++;
        switch (c) {
        case 'n': buf[k++] = '\n'; break;
        case 't': buf[k++] = '\t'; break;
        case 'r': buf[k++] = '\r'; break;
        case 'b': buf[k++] = '\b'; break;
        case 'f': buf[k++] = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            for (int i = 0; i < 4 && p < e; i++, p++) {
                char h = *p;
                cp = cp * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            }
            if (cp < 0x80) buf[k++] = (char)cp;
            else if (cp < 0x800) {
                buf[k++] = (char)(0xC0 | cp >> 6);
                buf[k++] = (char)(0x80 | (cp & 63));
            } else {
                buf[k++] = (char)(0xE0 | cp >> 12);
                buf[k++] = (char)(0x80 | ((cp >> 6) & 63));
                buf[k++] = (char)(0x80 | (cp & 63));
            }
            break;
        }
        default: buf[k++] = c;
        }
    }
    buf[k] = 0;
    *out = cep_v_str(buf, k);
    return true;
}

/* Text of a JSON value as EXTRACTJSONFIELD returns it: strings unquoted,
 * anything else as its JSON text. */
static bool json_value_text(cep_arena_t *a, const char *p, const char *e, cep_value_t *out)
{
    p = json_ws(p, e);
    const char *end = json_skip(p, e);
    if (!end) return false;
    if (*p == '"') return json_unescape(a, p, end, out);
    if ((size_t)(end - p) == 4 && !memcmp(p, "null", 4)) {
        *out = cep_null();
        return true;
    }
    *out = cep_v_str(p, (size_t)(end - p));
    return true;
}

/* EXTRACTJSONFIELD(json, '$.a.b[0]') */
EVAL(f_extractjsonfield)
{
    UNUSED_EVAL_ARGS;
    const char *p = args[0].u.s.p, *e = p + args[0].u.s.n;
    const char *path = args[1].u.s.p, *pe = path + args[1].u.s.n;
    *out = cep_null();
    if (path < pe && *path == '$') path++;
    while (path < pe) {
        p = json_ws(p, e);
        if (p >= e) return true;
        if (*path == '.') {
            path++;
            const char *ks = path;
            while (path < pe && *path != '.' && *path != '[') path++;
            size_t kn = (size_t)(path - ks);
            if (*p != '{') return true;
            p = json_ws(p + 1, e);
            bool found = false;
            while (p < e && *p == '"') {
                const char *kend = json_skip_str(p, e);
                if (!kend) return true;
                bool match = (size_t)(kend - p - 2) == kn && !memcmp(p + 1, ks, kn);
                p = json_ws(kend, e);
                if (p >= e || *p != ':') return true;
                p = json_ws(p + 1, e);
                if (match) {
                    found = true;
                    break;
                }
                p = json_skip(p, e);
                if (!p) return true;
                p = json_ws(p, e);
                if (p < e && *p == ',') p = json_ws(p + 1, e);
            }
            if (!found) return true;
        } else if (*path == '[') {
            path++;
            long idx = strtol(path, NULL, 10);
            while (path < pe && *path != ']') path++;
            if (path < pe) path++;
            if (*p != '[') return true;
            p = json_ws(p + 1, e);
            for (long i = 0; i < idx; i++) {
                p = json_skip(p, e);
                if (!p) return true;
                p = json_ws(p, e);
                if (p >= e || *p != ',') return true;
                p = json_ws(p + 1, e);
            }
        } else
            return true;
    }
    if (!json_value_text(ctx->scratch, p, e, out)) *out = cep_null();
    return true;
}

EVAL(f_json_array_length)
{
    UNUSED_EVAL_ARGS;
    const char *p = json_ws(args[0].u.s.p, args[0].u.s.p + args[0].u.s.n);
    const char *e = args[0].u.s.p + args[0].u.s.n;
    *out = cep_null();
    if (p >= e || *p != '[') return true;
    if (!json_skip(p, e)) return true;
    p = json_ws(p + 1, e);
    int64_t count = 0;
    if (p < e && *p == ']') {
        *out = cep_v_int(CEP_K_INT, 0);
        return true;
    }
    while (p && p < e) {
        p = json_skip(p, e);
        if (!p) return true;
        count++;
        p = json_ws(p, e);
        if (p < e && *p == ',') p++;
        else break;
    }
    *out = cep_v_int(CEP_K_INT, count);
    return true;
}

static const cep_type_t string_map_type = {.kind = CEP_K_MAP, .key = &cep_type_string, .elem = &cep_type_string};

EVAL(f_json_records)
{
    UNUSED_EVAL_ARGS;
    const char *e = args[0].u.s.p + args[0].u.s.n;
    const char *p = json_ws(args[0].u.s.p, e);
    *out = cep_null();
    if (p >= e || *p != '{' || !json_skip(p, e)) return true;
    cep_value_t items[256];
    uint32_t k = 0;
    p = json_ws(p + 1, e);
    while (p < e && *p == '"' && k + 2 <= CEP_ARRAY_LEN(items)) {
        const char *kend = json_skip_str(p, e);
        if (!kend || !json_unescape(ctx->scratch, p, kend, &items[k])) return true;
        p = json_ws(kend, e);
        if (p >= e || *p != ':') return true;
        p = json_ws(p + 1, e);
        const char *vend = json_skip(p, e);
        if (!vend) return true;
        items[k + 1] = cep_v_str(p, (size_t)(vend - p));
        k += 2;
        p = json_ws(vend, e);
        if (p < e && *p == ',') p = json_ws(p + 1, e);
    }
    cep_list_t *l = cep_arena_alloc(ctx->scratch, sizeof *l + k * sizeof(cep_value_t));
    if (!l) return false;
    l->type = &string_map_type;
    l->n = k / 2;
    memcpy(l->v, items, k * sizeof(cep_value_t));
    out->kind = CEP_K_MAP;
    out->u.l = l;
    return true;
}

/* ---- time --------------------------------------------------------------- */

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

/* Format ms with a Java DateTimeFormatter-like pattern (yyyy MM dd HH mm
 * ss SSS and literals in quotes), in UTC. */
static bool format_ts(cep_eval_t *ctx, int64_t ms, const char *fmt, size_t fn, cep_value_t *out)
{
    int64_t days = ms / 86400000LL, rem = ms % 86400000LL;
    if (rem < 0) rem += 86400000LL, days--;
    int y, mo, d;
    civil_from_days(days, &y, &mo, &d);
    int h = (int)(rem / 3600000), mi = (int)(rem / 60000 % 60), s = (int)(rem / 1000 % 60),
        msec = (int)(rem % 1000);
    cep_buf_t b;
    cep_buf_init(&b);
    for (size_t i = 0; i < fn;) {
        char c = fmt[i];
        size_t run = 1;
        while (i + run < fn && fmt[i + run] == c) run++;
        switch (c) {
        case 'y': cep_buf_printf(&b, run == 2 ? "%02d" : "%04d", run == 2 ? y % 100 : y); break;
        case 'M': cep_buf_printf(&b, "%0*d", (int)run, mo); break;
        case 'd': cep_buf_printf(&b, "%0*d", (int)run, d); break;
        case 'H': cep_buf_printf(&b, "%0*d", (int)run, h); break;
        case 'm': cep_buf_printf(&b, "%0*d", (int)run, mi); break;
        case 's': cep_buf_printf(&b, "%0*d", (int)run, s); break;
        case 'S': cep_buf_printf(&b, "%03d", msec); break;
        case '\'': {
            size_t j = i + 1;
            while (j < fn && fmt[j] != '\'') cep_buf_putc(&b, fmt[j++]);
            run = j - i + 1;
            break;
        }
        default:
            for (size_t k = 0; k < run; k++) cep_buf_putc(&b, c);
        }
        i += run;
    }
    char *p = cep_arena_strndup(ctx->scratch, b.data ? b.data : "", b.len);
    size_t len = b.len;
    cep_buf_free(&b);
    if (!p) return false;
    *out = cep_v_str(p, len);
    return true;
}

EVAL(f_timestamptostring)
{
    UNUSED_EVAL_ARGS;
    return format_ts(ctx, args[0].u.i, args[1].u.s.p, args[1].u.s.n, out);
}

EVAL(f_stringtotimestamp)
{
    UNUSED_EVAL_ARGS;
    int64_t ms;
    if (!cep_parse_timestamp_text(args[0].u.s.p, args[0].u.s.n, &ms)) {
        ctx->failed = true;
        if (ctx->err) cep_error_set(ctx->err, CEP_ERR_RUNTIME, NULL, "cannot parse timestamp");
        return false;
    }
    *out = cep_v_int(CEP_K_BIGINT, ms);
    return true;
}

EVAL(f_from_unixtime)
{
    UNUSED_EVAL_ARGS;
    *out = cep_v_int(CEP_K_TIMESTAMP, args[0].u.i);
    return true;
}

EVAL(f_unix_timestamp)
{
    UNUSED_EVAL_ARGS;
    if (n > 0 && args[0].kind != CEP_K_NULL) {
        *out = cep_v_int(CEP_K_BIGINT, args[0].u.i);
        return true;
    }
    /* wall clock: only meaningful in processing-time rules */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    *out = cep_v_int(CEP_K_BIGINT, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return true;
}

/* ---- the table ----------------------------------------------------------- */

enum {
    F_UCASE, F_LCASE, F_INITCAP, F_LEN, F_TRIM, F_LTRIM, F_RTRIM, F_SUBSTRING, F_CONCAT,
    F_CONCAT_WS, F_REPLACE, F_INSTR, F_SPLIT, F_ABS, F_CEIL, F_FLOOR, F_ROUND, F_EXP, F_LN,
    F_SQRT, F_SIGN, F_POWER, F_GEO_DISTANCE, F_REGEXP_LIKE, F_REGEXP_EXTRACT,
    F_REGEXP_EXTRACT_ALL, F_REGEXP_REPLACE, F_REGEXP_SPLIT, F_ARRAY_CONTAINS, F_ARRAY_LENGTH,
    F_COALESCE, F_IFNULL, F_NULLIF, F_AS_VALUE, F_EXTRACTJSONFIELD, F_JSON_ARRAY_LENGTH,
    F_JSON_RECORDS, F_TIMESTAMPTOSTRING, F_STRINGTOTIMESTAMP, F_FROM_UNIXTIME,
    F_UNIX_TIMESTAMP, F_LENGTH, F_UPPER, F_LOWER, F_COUNT_
};

static const cep_func_t funcs[F_COUNT_] = {
    [F_UCASE] = {"UCASE", 1, 1, chk_str_str, f_ucase, true, NULL},
    [F_UPPER] = {"UPPER", 1, 1, chk_str_str, f_ucase, true, NULL},
    [F_LCASE] = {"LCASE", 1, 1, chk_str_str, f_lcase, true, NULL},
    [F_LOWER] = {"LOWER", 1, 1, chk_str_str, f_lcase, true, NULL},
    [F_INITCAP] = {"INITCAP", 1, 1, chk_str_str, f_initcap, true, NULL},
    [F_LEN] = {"LEN", 1, 1, chk_len, f_len, true, NULL},
    [F_LENGTH] = {"LENGTH", 1, 1, chk_len, f_len, true, NULL},
    [F_TRIM] = {"TRIM", 1, 1, chk_str_str, f_trim, true, NULL},
    [F_LTRIM] = {"LTRIM", 1, 1, chk_str_str, f_ltrim, true, NULL},
    [F_RTRIM] = {"RTRIM", 1, 1, chk_str_str, f_rtrim, true, NULL},
    [F_SUBSTRING] = {"SUBSTRING", 2, 3, chk_substring, f_substring, true, NULL},
    [F_CONCAT] = {"CONCAT", 1, -1, chk_concat, f_concat, false, NULL},
    [F_CONCAT_WS] = {"CONCAT_WS", 2, -1, chk_concat, f_concat_ws, false, NULL},
    [F_REPLACE] = {"REPLACE", 3, 3, chk_str_str, f_replace, true, NULL},
    [F_INSTR] = {"INSTR", 2, 2, chk_str_int, f_instr, true, NULL},
    [F_SPLIT] = {"SPLIT", 2, 2, chk_split, f_split, true, NULL},
    [F_ABS] = {"ABS", 1, 1, chk_num_same, f_abs, true, NULL},
    [F_CEIL] = {"CEIL", 1, 1, chk_num_same, f_ceil, true, NULL},
    [F_FLOOR] = {"FLOOR", 1, 1, chk_num_same, f_floor, true, NULL},
    [F_ROUND] = {"ROUND", 1, 2, chk_round, f_round, true, NULL},
    [F_EXP] = {"EXP", 1, 1, chk_num_double, f_exp, true, NULL},
    [F_LN] = {"LN", 1, 1, chk_num_double, f_ln, true, NULL},
    [F_SQRT] = {"SQRT", 1, 1, chk_num_double, f_sqrt, true, NULL},
    [F_SIGN] = {"SIGN", 1, 1, chk_num_double, f_sign, true, NULL},
    [F_POWER] = {"POWER", 2, 2, chk_num_double, f_power, true, NULL},
    [F_GEO_DISTANCE] = {"GEO_DISTANCE", 4, 5, chk_geo, f_geo_distance, false, NULL},
    [F_REGEXP_LIKE] = {"REGEXP_LIKE", 2, 2, chk_regex_like, cep_regex_like_eval, true, cep_regex_prepare_like},
    [F_REGEXP_EXTRACT] = {"REGEXP_EXTRACT", 2, 3, chk_regex_extract, cep_regex_extract_eval, true, cep_regex_prepare_extract},
    [F_REGEXP_EXTRACT_ALL] = {"REGEXP_EXTRACT_ALL", 2, 3, chk_regex_extract_all, cep_regex_extract_all_eval, true, cep_regex_prepare_extract},
    [F_REGEXP_REPLACE] = {"REGEXP_REPLACE", 3, 3, chk_regex_replace, cep_regex_replace_eval, true, cep_regex_prepare_replace},
    [F_REGEXP_SPLIT] = {"REGEXP_SPLIT_TO_ARRAY", 2, 2, chk_split, cep_regex_split_eval, true, cep_regex_prepare_replace},
    [F_ARRAY_CONTAINS] = {"ARRAY_CONTAINS", 2, 2, chk_array_contains, f_array_contains, false, NULL},
    [F_ARRAY_LENGTH] = {"ARRAY_LENGTH", 1, 1, chk_array_length, f_array_length, true, NULL},
    [F_COALESCE] = {"COALESCE", 1, -1, chk_coalesce, f_coalesce, false, NULL},
    [F_IFNULL] = {"IFNULL", 2, 2, chk_coalesce, f_coalesce, false, NULL},
    [F_NULLIF] = {"NULLIF", 2, 2, chk_coalesce, f_nullif, false, NULL},
    [F_AS_VALUE] = {"AS_VALUE", 1, 1, chk_identity, f_identity, false, NULL},
    [F_EXTRACTJSONFIELD] = {"EXTRACTJSONFIELD", 2, 2, chk_str_str, f_extractjsonfield, true, NULL},
    [F_JSON_ARRAY_LENGTH] = {"JSON_ARRAY_LENGTH", 1, 1, chk_str_int, f_json_array_length, true, NULL},
    [F_JSON_RECORDS] = {"JSON_RECORDS", 1, 1, chk_json_records, f_json_records, true, NULL},
    [F_TIMESTAMPTOSTRING] = {"TIMESTAMPTOSTRING", 2, 3, chk_ts_to_string, f_timestamptostring, true, NULL},
    [F_STRINGTOTIMESTAMP] = {"STRINGTOTIMESTAMP", 2, 3, chk_string_to_ts, f_stringtotimestamp, true, NULL},
    [F_FROM_UNIXTIME] = {"FROM_UNIXTIME", 1, 1, chk_from_unixtime, f_from_unixtime, true, NULL},
    [F_UNIX_TIMESTAMP] = {"UNIX_TIMESTAMP", 0, 1, chk_now, f_unix_timestamp, false, NULL},
};
_Static_assert(CEP_ARRAY_LEN(funcs) == F_COUNT_, "function table");

const cep_func_t *cep_func_lookup(const char *name, int *id)
{
    for (int i = 0; i < F_COUNT_; i++)
        if (!strcmp(funcs[i].name, name)) {
            if (id) *id = i;
            return &funcs[i];
        }
    return NULL;
}

const cep_func_t *cep_func_by_id(int id)
{
    return &funcs[id];
}

int cep_func_count(void)
{
    return F_COUNT_;
}
