/*
 * value.c — SQL types and values: comparison, hashing, copying, and the
 * JSON/DELIMITED text forms ksqlDB writes.
 */
#include "patterns/value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const cep_type_t cep_type_null = {.kind = CEP_K_NULL};
const cep_type_t cep_type_boolean = {.kind = CEP_K_BOOLEAN};
const cep_type_t cep_type_int = {.kind = CEP_K_INT};
const cep_type_t cep_type_bigint = {.kind = CEP_K_BIGINT};
const cep_type_t cep_type_double = {.kind = CEP_K_DOUBLE};
const cep_type_t cep_type_string = {.kind = CEP_K_STRING};
const cep_type_t cep_type_bytes = {.kind = CEP_K_BYTES};
const cep_type_t cep_type_timestamp = {.kind = CEP_K_TIMESTAMP};
const cep_type_t cep_type_date = {.kind = CEP_K_DATE};
const cep_type_t cep_type_time = {.kind = CEP_K_TIME};

static const cep_type_t *const kind_types[CEP_K_COUNT] = {
    [CEP_K_NULL] = &cep_type_null,
    [CEP_K_BOOLEAN] = &cep_type_boolean,
    [CEP_K_INT] = &cep_type_int,
    [CEP_K_BIGINT] = &cep_type_bigint,
    [CEP_K_DOUBLE] = &cep_type_double,
    [CEP_K_DECIMAL] = NULL,
    [CEP_K_STRING] = &cep_type_string,
    [CEP_K_BYTES] = &cep_type_bytes,
    [CEP_K_TIMESTAMP] = &cep_type_timestamp,
    [CEP_K_DATE] = &cep_type_date,
    [CEP_K_TIME] = &cep_type_time,
    [CEP_K_ARRAY] = NULL,
    [CEP_K_MAP] = NULL,
    [CEP_K_STRUCT] = NULL,
};
_Static_assert(CEP_ARRAY_LEN(kind_types) == CEP_K_COUNT, "kind_types");

const cep_type_t *cep_type_of_kind(cep_kind_t k)
{
    return (unsigned)k < CEP_K_COUNT ? kind_types[k] : NULL;
}

bool cep_type_is_numeric(const cep_type_t *t)
{
    return t->kind == CEP_K_INT || t->kind == CEP_K_BIGINT || t->kind == CEP_K_DOUBLE ||
           t->kind == CEP_K_DECIMAL;
}

bool cep_type_is_integral(const cep_type_t *t)
{
    return t->kind == CEP_K_INT || t->kind == CEP_K_BIGINT;
}

bool cep_type_equal(const cep_type_t *a, const cep_type_t *b)
{
    if (a == b) return true;
    if (a->kind != b->kind) return false;
    switch (a->kind) {
    case CEP_K_DECIMAL: return a->precision == b->precision && a->scale == b->scale;
    case CEP_K_ARRAY: return cep_type_equal(a->elem, b->elem);
    case CEP_K_MAP: return cep_type_equal(a->key, b->key) && cep_type_equal(a->elem, b->elem);
    case CEP_K_STRUCT:
        if (a->nfields != b->nfields) return false;
        for (uint32_t i = 0; i < a->nfields; i++)
            if (strcmp(a->fields[i].name, b->fields[i].name) ||
                !cep_type_equal(a->fields[i].type, b->fields[i].type))
                return false;
        return true;
    default: return true;
    }
}

void cep_type_format(const cep_type_t *t, cep_buf_t *out)
{
    static const char *const names[CEP_K_COUNT] = {
        [CEP_K_NULL] = "NULL",          [CEP_K_BOOLEAN] = "BOOLEAN", [CEP_K_INT] = "INTEGER",
        [CEP_K_BIGINT] = "BIGINT",      [CEP_K_DOUBLE] = "DOUBLE",   [CEP_K_DECIMAL] = "DECIMAL",
        [CEP_K_STRING] = "STRING",      [CEP_K_BYTES] = "BYTES",     [CEP_K_TIMESTAMP] = "TIMESTAMP",
        [CEP_K_DATE] = "DATE",          [CEP_K_TIME] = "TIME",       [CEP_K_ARRAY] = "ARRAY",
        [CEP_K_MAP] = "MAP",            [CEP_K_STRUCT] = "STRUCT",
    };
    _Static_assert(CEP_ARRAY_LEN(names) == CEP_K_COUNT, "type names");
    cep_buf_puts(out, names[t->kind]);
    switch (t->kind) {
    case CEP_K_DECIMAL: cep_buf_printf(out, "(%d, %d)", t->precision, t->scale); break;
    case CEP_K_ARRAY:
        cep_buf_putc(out, '<');
        cep_type_format(t->elem, out);
        cep_buf_putc(out, '>');
        break;
    case CEP_K_MAP:
        cep_buf_putc(out, '<');
        cep_type_format(t->key, out);
        cep_buf_puts(out, ", ");
        cep_type_format(t->elem, out);
        cep_buf_putc(out, '>');
        break;
    case CEP_K_STRUCT:
        cep_buf_putc(out, '<');
        for (uint32_t i = 0; i < t->nfields; i++) {
            if (i) cep_buf_puts(out, ", ");
            cep_buf_printf(out, "`%s` ", t->fields[i].name);
            cep_type_format(t->fields[i].type, out);
        }
        cep_buf_putc(out, '>');
        break;
    default: break;
    }
}

cep_type_t *cep_type_new_decimal(cep_arena_t *a, int precision, int scale)
{
    cep_type_t *t = cep_arena_zalloc(a, sizeof *t);
    if (!t) return NULL;
    t->kind = CEP_K_DECIMAL;
    t->precision = (uint8_t)precision;
    t->scale = (uint8_t)scale;
    return t;
}

const cep_type_t *cep_type_common(cep_arena_t *a, const cep_type_t *x, const cep_type_t *y)
{
    if (x->kind == CEP_K_NULL) return y;
    if (y->kind == CEP_K_NULL) return x;
    if (cep_type_is_numeric(x) && cep_type_is_numeric(y)) {
        if (x->kind == CEP_K_DOUBLE || y->kind == CEP_K_DOUBLE) return &cep_type_double;
        if (x->kind == CEP_K_DECIMAL || y->kind == CEP_K_DECIMAL) {
            int sx = x->kind == CEP_K_DECIMAL ? x->scale : 0;
            int sy = y->kind == CEP_K_DECIMAL ? y->scale : 0;
            int ix = x->kind == CEP_K_DECIMAL ? x->precision - x->scale
                                              : (x->kind == CEP_K_INT ? 10 : 19);
            int iy = y->kind == CEP_K_DECIMAL ? y->precision - y->scale
                                              : (y->kind == CEP_K_INT ? 10 : 19);
            int s = CEP_MAX(sx, sy), i = CEP_MAX(ix, iy);
            return cep_type_new_decimal(a, CEP_MIN(i + s, 38), s);
        }
        if (x->kind == CEP_K_BIGINT || y->kind == CEP_K_BIGINT) return &cep_type_bigint;
        return &cep_type_int;
    }
    if (x->kind != y->kind) return NULL;
    if (x->kind == CEP_K_ARRAY) {
        const cep_type_t *e = cep_type_common(a, x->elem, y->elem);
        if (!e) return NULL;
        if (e == x->elem) return x;
        if (e == y->elem) return y;
        cep_type_t *t = cep_arena_zalloc(a, sizeof *t);
        if (!t) return NULL;
        t->kind = CEP_K_ARRAY;
        t->elem = e;
        return t;
    }
    if (x->kind == CEP_K_MAP) {
        const cep_type_t *k = cep_type_common(a, x->key, y->key);
        const cep_type_t *e = cep_type_common(a, x->elem, y->elem);
        if (!k || !e) return NULL;
        cep_type_t *t = cep_arena_zalloc(a, sizeof *t);
        if (!t) return NULL;
        t->kind = CEP_K_MAP;
        t->key = k;
        t->elem = e;
        return t;
    }
    if (x->kind == CEP_K_STRUCT) {
        if (x->nfields != y->nfields) return NULL;
        for (uint32_t i = 0; i < x->nfields; i++)
            if (strcmp(x->fields[i].name, y->fields[i].name) ||
                !cep_type_common(a, x->fields[i].type, y->fields[i].type))
                return NULL;
        return x;
    }
    return x;
}

/* ---- numeric helpers --------------------------------------------------- */

static const int64_t pow10_tab[19] = {1LL,
                                      10LL,
                                      100LL,
                                      1000LL,
                                      10000LL,
                                      100000LL,
                                      1000000LL,
                                      10000000LL,
                                      100000000LL,
                                      1000000000LL,
                                      10000000000LL,
                                      100000000000LL,
                                      1000000000000LL,
                                      10000000000000LL,
                                      100000000000000LL,
                                      1000000000000000LL,
                                      10000000000000000LL,
                                      100000000000000000LL,
                                      1000000000000000000LL};

double cep_value_as_double(const cep_value_t *v)
{
    switch (v->kind) {
    case CEP_K_DOUBLE: return v->u.d;
    case CEP_K_DECIMAL: return (double)v->u.i / (double)pow10_tab[v->scale < 19 ? v->scale : 18];
    case CEP_K_BOOLEAN: return v->u.b;
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_TIMESTAMP:
    case CEP_K_DATE:
    case CEP_K_TIME: return (double)v->u.i;
    default: return 0;
    }
}

static bool is_num_kind(int k)
{
    return k == CEP_K_INT || k == CEP_K_BIGINT || k == CEP_K_DOUBLE || k == CEP_K_DECIMAL;
}

/* A double as a DECIMAL of the given scale the way ksqlDB does it:
 * BigDecimal.valueOf(d) (the shortest decimal that reads back as d, so 1.005
 * is 1.005 and not 1.00499999999999989...) then setScale(scale, HALF_UP).
 * False for NaN, infinities and values whose unscaled form exceeds 64 bits. */
static bool double_to_unscaled(double d, int scale, int64_t *out)
{
    if (!isfinite(d)) return false;
    if (d == 0) {
        *out = 0;
        return true;
    }
    char digits[40];
    int prec;
    for (prec = 1; prec < 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, d);
        if (strtod(digits, NULL) == d) break;
    }
    snprintf(digits, sizeof digits, "%.*e", prec - 1, d);
    /* digits is [-]D[.DDD]e[+-]XX: |d| = m * 10^(exp10 - (nm - 1)) */
    const char *p = digits;
    bool neg = *p == '-';
    if (neg) p++;
    int64_t m = 0;
    int nm = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') m = m * 10 + (*p - '0'), nm++;
    int k = atoi(p + 1) - (nm - 1) + scale; /* unscaled = m * 10^k */
    if (k >= 0) {
        if (k > 18 || m > INT64_MAX / pow10_tab[k]) return false;
        m *= pow10_tab[k];
    } else if (-k > 18) {
        m = 0; /* m < 10^17: below half of one unit */
    } else {
        int64_t div = pow10_tab[-k], q = m / div;
        if ((m % div) * 2 >= div) q++; /* HALF_UP rounds the magnitude */
        m = q;
    }
    *out = neg ? -m : m;
    return true;
}

cep_value_t cep_value_cast_num(const cep_value_t *v, const cep_type_t *to)
{
    if (v->kind == CEP_K_NULL) return *v;
    cep_value_t r = {.kind = (uint8_t)to->kind};
    switch (to->kind) {
    case CEP_K_DOUBLE: r.u.d = cep_value_as_double(v); break;
    case CEP_K_INT:
    case CEP_K_BIGINT:
        if (v->kind == CEP_K_DOUBLE) {
            /* Java's (int)/(long) narrowing: NaN is 0, out of range
             * saturates (a plain C cast is undefined there) */
            double d = v->u.d;
            double lim = to->kind == CEP_K_INT ? 2147483648.0 : 9223372036854775808.0;
            int64_t max = to->kind == CEP_K_INT ? INT32_MAX : INT64_MAX;
            int64_t min = to->kind == CEP_K_INT ? INT32_MIN : INT64_MIN;
            r.u.i = isnan(d) ? 0 : d >= lim ? max : d <= -lim ? min : (int64_t)d;
        } else if (v->kind == CEP_K_DECIMAL)
            r.u.i = v->u.i / pow10_tab[v->scale];
        else
            r.u.i = v->u.i;
        if (to->kind == CEP_K_INT) r.u.i = (int32_t)r.u.i;
        break;
    case CEP_K_DECIMAL:
        r.scale = to->scale;
        if (v->kind == CEP_K_DOUBLE) {
            if (!double_to_unscaled(v->u.d, to->scale, &r.u.i)) return cep_null();
        } else if (v->kind == CEP_K_DECIMAL) {
            if (v->scale <= to->scale)
                r.u.i = v->u.i * pow10_tab[to->scale - v->scale];
            else {
                int64_t div = pow10_tab[v->scale - to->scale];
                int64_t q = v->u.i / div, rem = v->u.i % div;
                /* HALF_UP, as Java's BigDecimal.setScale in ksqlDB */
                if (rem * 2 >= div) q++;
                else if (rem * 2 <= -div) q--;
                r.u.i = q;
            }
        } else
            r.u.i = v->u.i * pow10_tab[to->scale];
        break;
    default: return *v;
    }
    return r;
}

/* Compare two decimals (or a decimal and an integer) exactly when possible. */
static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int cmp_num(const cep_value_t *a, const cep_value_t *b)
{
    if (a->kind == CEP_K_DOUBLE || b->kind == CEP_K_DOUBLE) {
        double x = cep_value_as_double(a), y = cep_value_as_double(b);
        if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
        return x < y ? -1 : x > y;
    }
    int sa = a->kind == CEP_K_DECIMAL ? a->scale : 0;
    int sb = b->kind == CEP_K_DECIMAL ? b->scale : 0;
    if (sa == sb) return cmp_i64(a->u.i, b->u.i);
    /* bring both to the larger scale; fall back to doubles on overflow */
    int s = CEP_MAX(sa, sb);
    __int128 x = (__int128)a->u.i * pow10_tab[s - sa];
    __int128 y = (__int128)b->u.i * pow10_tab[s - sb];
    return x < y ? -1 : x > y;
}

int cep_value_cmp(const cep_value_t *a, const cep_value_t *b)
{
    if (a->kind == CEP_K_NULL || b->kind == CEP_K_NULL)
        return (a->kind != CEP_K_NULL) - (b->kind != CEP_K_NULL);
    if (is_num_kind(a->kind) && is_num_kind(b->kind)) return cmp_num(a, b);
    if (a->kind != b->kind) return a->kind < b->kind ? -1 : 1;
    switch (a->kind) {
    case CEP_K_BOOLEAN: return (int)a->u.b - (int)b->u.b;
    case CEP_K_STRING:
    case CEP_K_BYTES: {
        uint32_t n = CEP_MIN(a->u.s.n, b->u.s.n);
        int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return cmp_i64(a->u.s.n, b->u.s.n);
    }
    case CEP_K_TIMESTAMP:
    case CEP_K_DATE:
    case CEP_K_TIME: return cmp_i64(a->u.i, b->u.i);
    case CEP_K_ARRAY:
    case CEP_K_MAP:
    case CEP_K_STRUCT: {
        uint32_t na = a->u.l->n, nb = b->u.l->n;
        uint32_t ka = a->kind == CEP_K_MAP ? 2 * na : na, kb = b->kind == CEP_K_MAP ? 2 * nb : nb;
        for (uint32_t i = 0; i < ka && i < kb; i++) {
            int c = cep_value_cmp(&a->u.l->v[i], &b->u.l->v[i]);
            if (c) return c;
        }
        return cmp_i64(ka, kb);
    }
    default: return 0;
    }
}

bool cep_value_eq(const cep_value_t *a, const cep_value_t *b)
{
    if (a->kind == CEP_K_MAP && b->kind == CEP_K_MAP) {
        /* maps are equal regardless of entry order */
        if (a->u.l->n != b->u.l->n) return false;
        for (uint32_t i = 0; i < a->u.l->n; i++) {
            bool found = false;
            for (uint32_t j = 0; j < b->u.l->n && !found; j++)
                if (cep_value_eq(&a->u.l->v[2 * i], &b->u.l->v[2 * j]))
                    found = cep_value_eq(&a->u.l->v[2 * i + 1], &b->u.l->v[2 * j + 1]);
            if (!found) return false;
        }
        return true;
    }
    return cep_value_cmp(a, b) == 0;
}

uint64_t cep_value_hash(const cep_value_t *v, uint64_t seed)
{
    switch (v->kind) {
    case CEP_K_NULL: return cep_hash_mix(seed ^ 0x51);
    case CEP_K_BOOLEAN: return cep_hash_mix(seed ^ (v->u.b ? 0x77 : 0x78));
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_DOUBLE:
    case CEP_K_DECIMAL: {
        /* equal numbers of different kinds must hash alike */
        double d = cep_value_as_double(v);
        if (d == 0) d = 0; /* -0.0 */
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return cep_hash_mix(seed ^ bits);
    }
    case CEP_K_STRING:
    case CEP_K_BYTES: return cep_hash_bytes(v->u.s.p, v->u.s.n, seed);
    case CEP_K_TIMESTAMP:
    case CEP_K_DATE:
    case CEP_K_TIME: return cep_hash_mix(seed ^ (uint64_t)v->u.i ^ ((uint64_t)v->kind << 56));
    case CEP_K_ARRAY:
    case CEP_K_STRUCT: {
        uint64_t h = seed ^ v->kind;
        for (uint32_t i = 0; i < v->u.l->n; i++) h = cep_value_hash(&v->u.l->v[i], h * 31 + 7);
        return h;
    }
    case CEP_K_MAP: {
        uint64_t h = 0; /* order-independent */
        for (uint32_t i = 0; i < v->u.l->n; i++)
            h += cep_value_hash(&v->u.l->v[2 * i + 1], cep_value_hash(&v->u.l->v[2 * i], seed));
        return cep_hash_mix(h ^ seed);
    }
    default: return seed;
    }
}

/* ---- copying ----------------------------------------------------------- */

static size_t list_slots(const cep_value_t *v)
{
    return v->kind == CEP_K_MAP ? 2u * v->u.l->n : v->u.l->n;
}

cep_value_t cep_value_clone(const cep_value_t *v)
{
    cep_value_t r = *v;
    if (v->kind == CEP_K_STRING || v->kind == CEP_K_BYTES) {
        char *p = malloc(v->u.s.n + 1);
        if (!p) return cep_null();
        if (v->u.s.n) memcpy(p, v->u.s.p, v->u.s.n);
        p[v->u.s.n] = 0;
        r.u.s.p = p;
    } else if (v->kind == CEP_K_ARRAY || v->kind == CEP_K_MAP || v->kind == CEP_K_STRUCT) {
        size_t n = list_slots(v);
        cep_list_t *l = malloc(sizeof *l + n * sizeof(cep_value_t));
        if (!l) return cep_null();
        l->type = v->u.l->type;
        l->n = v->u.l->n;
        for (size_t i = 0; i < n; i++) l->v[i] = cep_value_clone(&v->u.l->v[i]);
        r.u.l = l;
    }
    return r;
}

void cep_value_free_owned(cep_value_t *v)
{
    if (v->kind == CEP_K_STRING || v->kind == CEP_K_BYTES)
        free((void *)v->u.s.p);
    else if (v->kind == CEP_K_ARRAY || v->kind == CEP_K_MAP || v->kind == CEP_K_STRUCT) {
        cep_list_t *l = (cep_list_t *)v->u.l;
        size_t n = list_slots(v);
        for (size_t i = 0; i < n; i++) cep_value_free_owned(&l->v[i]);
        free(l);
    }
    *v = cep_null();
}

cep_value_t cep_value_clone_arena(const cep_value_t *v, cep_arena_t *a)
{
    cep_value_t r = *v;
    if (v->kind == CEP_K_STRING || v->kind == CEP_K_BYTES) {
        char *p = cep_arena_strndup(a, v->u.s.p ? v->u.s.p : "", v->u.s.n);
        if (!p) return cep_null();
        r.u.s.p = p;
    } else if (v->kind == CEP_K_ARRAY || v->kind == CEP_K_MAP || v->kind == CEP_K_STRUCT) {
        size_t n = list_slots(v);
        cep_list_t *l = cep_arena_alloc(a, sizeof *l + n * sizeof(cep_value_t));
        if (!l) return cep_null();
        l->type = v->u.l->type;
        l->n = v->u.l->n;
        for (size_t i = 0; i < n; i++) l->v[i] = cep_value_clone_arena(&v->u.l->v[i], a);
        r.u.l = l;
    }
    return r;
}

/* ---- text forms -------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cep_base64_encode(const unsigned char *p, size_t n, cep_buf_t *out)
{
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {b64[w >> 18], b64[(w >> 12) & 63], b64[(w >> 6) & 63], b64[w & 63]};
        cep_buf_put(out, q, 4);
    }
    if (n - i == 1) {
        uint32_t w = (uint32_t)p[i] << 16;
        char q[4] = {b64[w >> 18], b64[(w >> 12) & 63], '=', '='};
        cep_buf_put(out, q, 4);
    } else if (n - i == 2) {
        uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[4] = {b64[w >> 18], b64[(w >> 12) & 63], b64[(w >> 6) & 63], '='};
        cep_buf_put(out, q, 4);
    }
}

long cep_base64_decode(const char *s, size_t n, unsigned char *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long len = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v;
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+' || c == '-') v = 62;
        else if (c == '/' || c == '_') v = 63;
        else if (c == '=') break;
        else return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[len++] = (unsigned char)(acc >> bits);
        }
    }
    return len;
}

static void put_decimal(const cep_value_t *v, cep_buf_t *out)
{
    int64_t x = v->u.i;
    if (v->scale == 0) {
        cep_buf_put_i64(out, x);
        return;
    }
    uint64_t u = x < 0 ? (uint64_t)0 - (uint64_t)x : (uint64_t)x;
    uint64_t p = (uint64_t)pow10_tab[v->scale];
    if (x < 0) cep_buf_putc(out, '-');
    cep_buf_printf(out, "%llu.%0*llu", (unsigned long long)(u / p), v->scale,
                   (unsigned long long)(u % p));
}

void cep_value_to_json(const cep_value_t *v, cep_buf_t *out)
{
    switch (v->kind) {
    case CEP_K_NULL: cep_buf_puts(out, "null"); break;
    case CEP_K_BOOLEAN: cep_buf_puts(out, v->u.b ? "true" : "false"); break;
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_TIMESTAMP:
    case CEP_K_DATE:
    case CEP_K_TIME: cep_buf_put_i64(out, v->u.i); break;
    case CEP_K_DOUBLE:
        if (isfinite(v->u.d))
            cep_buf_put_double(out, v->u.d);
        else
            cep_buf_puts(out, "null");
        break;
    case CEP_K_DECIMAL: put_decimal(v, out); break;
    case CEP_K_STRING: cep_buf_put_json_str(out, v->u.s.p, v->u.s.n); break;
    case CEP_K_BYTES:
        cep_buf_putc(out, '"');
        cep_base64_encode((const unsigned char *)v->u.s.p, v->u.s.n, out);
        cep_buf_putc(out, '"');
        break;
    case CEP_K_ARRAY:
        cep_buf_putc(out, '[');
        for (uint32_t i = 0; i < v->u.l->n; i++) {
            if (i) cep_buf_putc(out, ',');
            cep_value_to_json(&v->u.l->v[i], out);
        }
        cep_buf_putc(out, ']');
        break;
    case CEP_K_MAP:
        cep_buf_putc(out, '{');
        for (uint32_t i = 0; i < v->u.l->n; i++) {
            if (i) cep_buf_putc(out, ',');
            const cep_value_t *k = &v->u.l->v[2 * i];
            if (k->kind == CEP_K_STRING)
                cep_value_to_json(k, out);
            else {
                cep_buf_t tmp;
                cep_buf_init(&tmp);
                cep_value_to_text(k, &tmp);
                cep_buf_put_json_str(out, tmp.data ? tmp.data : "", tmp.len);
                cep_buf_free(&tmp);
            }
            cep_buf_putc(out, ':');
            cep_value_to_json(&v->u.l->v[2 * i + 1], out);
        }
        cep_buf_putc(out, '}');
        break;
    case CEP_K_STRUCT: {
        const cep_type_t *t = v->u.l->type;
        cep_buf_putc(out, '{');
        for (uint32_t i = 0; i < v->u.l->n; i++) {
            if (i) cep_buf_putc(out, ',');
            const char *name = t && i < t->nfields ? t->fields[i].name : "?";
            cep_buf_put_json_str(out, name, strlen(name));
            cep_buf_putc(out, ':');
            cep_value_to_json(&v->u.l->v[i], out);
        }
        cep_buf_putc(out, '}');
        break;
    }
    default: cep_buf_puts(out, "null");
    }
}

void cep_value_to_text(const cep_value_t *v, cep_buf_t *out)
{
    switch (v->kind) {
    case CEP_K_NULL: break; /* DELIMITED writes null as an empty field */
    case CEP_K_STRING: {
        /* quote only when the text holds the delimiter or a quote */
        bool quote = memchr(v->u.s.p, ',', v->u.s.n) || memchr(v->u.s.p, '"', v->u.s.n) ||
                     memchr(v->u.s.p, '\n', v->u.s.n);
        if (!quote) {
            cep_buf_put(out, v->u.s.p, v->u.s.n);
            break;
        }
        cep_buf_putc(out, '"');
        for (uint32_t i = 0; i < v->u.s.n; i++) {
            if (v->u.s.p[i] == '"') cep_buf_putc(out, '"');
            cep_buf_putc(out, v->u.s.p[i]);
        }
        cep_buf_putc(out, '"');
        break;
    }
    case CEP_K_BYTES: cep_base64_encode((const unsigned char *)v->u.s.p, v->u.s.n, out); break;
    default: cep_value_to_json(v, out);
    }
}
