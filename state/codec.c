/*
 * codec.c — varints, doubles, byte strings and values for checkpoints
 * (format in codec.h).
 */
#include "state/codec.h"

#include <stdlib.h>
#include <string.h>

void cep_codec_put_u64(cep_buf_t *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    cep_buf_put(b, tmp, n);
}

void cep_codec_put_i64(cep_buf_t *b, int64_t v)
{
    cep_codec_put_u64(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void cep_codec_put_f64(cep_buf_t *b, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    unsigned char tmp[8];
    for (int i = 0; i < 8; i++) tmp[i] = (unsigned char)(bits >> (8 * i));
    cep_buf_put(b, tmp, 8);
}

void cep_codec_put_bytes(cep_buf_t *b, const void *p, size_t n)
{
    cep_codec_put_u64(b, n);
    if (n) cep_buf_put(b, p, n);
}

static size_t list_slots(const cep_value_t *v)
{
    return v->kind == CEP_K_MAP ? 2u * v->u.l->n : v->u.l->n;
}

void cep_codec_put_value(cep_buf_t *b, const cep_value_t *v)
{
    cep_buf_putc(b, (char)v->kind);
    switch ((cep_kind_t)v->kind) {
    case CEP_K_NULL: break;
    case CEP_K_BOOLEAN: cep_buf_putc(b, v->u.b ? 1 : 0); break;
    case CEP_K_DECIMAL:
        cep_buf_putc(b, (char)v->scale);
        cep_codec_put_i64(b, v->u.i);
        break;
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_TIMESTAMP:
    case CEP_K_DATE:
    case CEP_K_TIME: cep_codec_put_i64(b, v->u.i); break;
    case CEP_K_DOUBLE: cep_codec_put_f64(b, v->u.d); break;
    case CEP_K_STRING:
    case CEP_K_BYTES: cep_codec_put_bytes(b, v->u.s.p, v->u.s.n); break;
    case CEP_K_ARRAY:
    case CEP_K_MAP:
    case CEP_K_STRUCT: {
        cep_codec_put_u64(b, v->u.l->n);
        size_t n = list_slots(v);
        for (size_t i = 0; i < n; i++) cep_codec_put_value(b, &v->u.l->v[i]);
        break;
    }
    case CEP_K_COUNT: break;
    }
}

uint64_t cep_codec_get_u64(cep_dec_t *d)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (d->bad || d->p >= d->end) break;
        unsigned char c = *d->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return v;
    }
    d->bad = true;
    return 0;
}

int64_t cep_codec_get_i64(cep_dec_t *d)
{
    uint64_t u = cep_codec_get_u64(d);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

double cep_codec_get_f64(cep_dec_t *d)
{
    if (d->bad || d->end - d->p < 8) {
        d->bad = true;
        return 0;
    }
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits |= (uint64_t)d->p[i] << (8 * i);
    d->p += 8;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

bool cep_codec_get_bool(cep_dec_t *d)
{
    return cep_codec_get_u64(d) != 0;
}

const char *cep_codec_get_bytes(cep_dec_t *d, size_t *n)
{
    uint64_t len = cep_codec_get_u64(d);
    if (d->bad || len > (uint64_t)(d->end - d->p)) {
        d->bad = true;
        *n = 0;
        return "";
    }
    const char *p = (const char *)d->p;
    d->p += len;
    *n = (size_t)len;
    return p;
}

static const cep_type_t *slot_type(const cep_type_t *t, size_t i)
{
    switch (t->kind) {
    case CEP_K_ARRAY: return t->elem;
    case CEP_K_MAP: return i % 2 ? t->elem : t->key;
    case CEP_K_STRUCT: return i < t->nfields ? t->fields[i].type : NULL;
    default: return NULL;
    }
}

cep_value_t cep_codec_get_value(cep_dec_t *d, const cep_type_t *type)
{
    cep_value_t v = cep_null();
    if (d->bad || d->p >= d->end) {
        d->bad = true;
        return v;
    }
    cep_kind_t kind = (cep_kind_t)*d->p++;
    v.kind = (uint8_t)kind;
    switch (kind) {
    case CEP_K_NULL: break;
    case CEP_K_BOOLEAN: v.u.b = cep_codec_get_u64(d) != 0; break;
    case CEP_K_DECIMAL:
        v.scale = (uint8_t)cep_codec_get_u64(d);
        v.u.i = cep_codec_get_i64(d);
        break;
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_TIMESTAMP:
    case CEP_K_DATE:
    case CEP_K_TIME: v.u.i = cep_codec_get_i64(d); break;
    case CEP_K_DOUBLE: v.u.d = cep_codec_get_f64(d); break;
    case CEP_K_STRING:
    case CEP_K_BYTES: {
        size_t n;
        const char *p = cep_codec_get_bytes(d, &n);
        char *s = malloc(n + 1);
        if (!s) {
            d->bad = true;
            return cep_null();
        }
        memcpy(s, p, n);
        s[n] = 0;
        v.u.s.p = s;
        v.u.s.n = (uint32_t)n;
        break;
    }
    case CEP_K_ARRAY:
    case CEP_K_MAP:
    case CEP_K_STRUCT: {
        uint64_t n = cep_codec_get_u64(d);
        uint64_t slots = kind == CEP_K_MAP ? 2 * n : n;
        /* every slot takes at least one byte: a count beyond the input is corrupt */
        if (d->bad || !type || type->kind != kind || slots > (uint64_t)(d->end - d->p) ||
            (kind == CEP_K_STRUCT && n != type->nfields)) {
            d->bad = true;
            return cep_null();
        }
        cep_list_t *l = malloc(sizeof *l + slots * sizeof(cep_value_t));
        if (!l) {
            d->bad = true;
            return cep_null();
        }
        l->type = type;
        l->n = (uint32_t)n;
        for (uint64_t i = 0; i < slots; i++) l->v[i] = cep_codec_get_value(d, slot_type(type, i));
        v.u.l = l;
        break;
    }
    default: d->bad = true; return cep_null();
    }
    if (d->bad) cep_value_free_owned(&v);
    return v;
}
