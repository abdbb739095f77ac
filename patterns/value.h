/*
 * value.h — SQL types and runtime values.
 *
 * A type is an immutable descriptor (primitives are static singletons,
 * composites live in the rule set's arena). A value is a 24-byte tagged
 * union; strings and composites point at memory owned by someone else (the
 * event buffer, the per-event scratch arena, or a state entry), which is
 * what keeps the per-event path free of malloc.
 */
#ifndef CEP_VALUE_H
#define CEP_VALUE_H

#include "base/base.h"

typedef enum cep_kind {
    CEP_K_NULL = 0, /* the type of a bare NULL literal; the tag of a null value */
    CEP_K_BOOLEAN,
    CEP_K_INT,     /* 32-bit, stored widened in .i */
    CEP_K_BIGINT,  /* 64-bit */
    CEP_K_DOUBLE,
    CEP_K_DECIMAL, /* unscaled 64-bit integer in .i, scale in .scale */
    CEP_K_STRING,
    CEP_K_BYTES,
    CEP_K_TIMESTAMP, /* ms since the epoch */
    CEP_K_DATE,      /* days since the epoch */
    CEP_K_TIME,      /* ms since midnight */
    CEP_K_ARRAY,
    CEP_K_MAP,
    CEP_K_STRUCT,
    CEP_K_COUNT
} cep_kind_t;

typedef struct cep_type cep_type_t;

typedef struct cep_field {
    const char *name; /* as declared (upper-cased unless quoted) */
    const cep_type_t *type;
} cep_field_t;

struct cep_type {
    cep_kind_t kind;
    uint8_t precision, scale;  /* DECIMAL */
    const cep_type_t *elem;    /* ARRAY element, MAP value */
    const cep_type_t *key;     /* MAP key */
    uint32_t nfields;          /* STRUCT */
    const cep_field_t *fields; /* STRUCT */
};

extern const cep_type_t cep_type_null, cep_type_boolean, cep_type_int, cep_type_bigint,
    cep_type_double, cep_type_string, cep_type_bytes, cep_type_timestamp, cep_type_date,
    cep_type_time;

typedef struct cep_list cep_list_t;

typedef struct cep_value {
    uint8_t kind;  /* cep_kind_t; CEP_K_NULL means SQL NULL */
    uint8_t scale; /* DECIMAL only */
    union {
        bool b;
        int64_t i; /* INT, BIGINT, DECIMAL (unscaled), TIMESTAMP, DATE, TIME */
        double d;
        struct {
            const char *p;
            uint32_t n;
        } s;                 /* STRING, BYTES (raw bytes, not base64) */
        const cep_list_t *l; /* ARRAY, MAP, STRUCT */
    } u;
} cep_value_t;

/* ARRAY: n elements. MAP: n entries stored key, value, key, value... (2n
 * values). STRUCT: n = type->nfields values in field order. */
struct cep_list {
    const cep_type_t *type;
    uint32_t n;
    cep_value_t v[];
};

/* The constructors set each field (no zeroed temporary): built in place
 * they are a few plain stores, where a zeroed struct then a byte store
 * then a copy stalls on store forwarding in the per-row paths. */
static inline cep_value_t cep_null(void)
{
    cep_value_t v = {0};
    return v;
}
static inline cep_value_t cep_v_bool(bool b)
{
    cep_value_t v;
    v.kind = CEP_K_BOOLEAN;
    v.scale = 0;
    v.u.i = 0;
    v.u.s.n = 0;
    v.u.b = b;
    return v;
}
static inline cep_value_t cep_v_int(cep_kind_t k, int64_t i)
{
    cep_value_t v;
    v.kind = (uint8_t)k;
    v.scale = 0;
    v.u.s.n = 0;
    v.u.i = i;
    return v;
}
static inline cep_value_t cep_v_double(double d)
{
    cep_value_t v;
    v.kind = CEP_K_DOUBLE;
    v.scale = 0;
    v.u.s.n = 0;
    v.u.d = d;
    return v;
}
static inline cep_value_t cep_v_str(const char *p, size_t n)
{
    cep_value_t v;
    v.kind = CEP_K_STRING;
    v.scale = 0;
    v.u.s.p = p;
    v.u.s.n = (uint32_t)n;
    return v;
}
static inline bool cep_is_null(const cep_value_t *v)
{
    return v->kind == CEP_K_NULL;
}

/* ---- types -------------------------------------------------------------- */

bool cep_type_is_numeric(const cep_type_t *t);
bool cep_type_is_integral(const cep_type_t *t);
bool cep_type_equal(const cep_type_t *a, const cep_type_t *b);
/* ksqlDB's name of a type, e.g. "BIGINT", "ARRAY<STRING>", "DECIMAL(4, 2)". */
void cep_type_format(const cep_type_t *t, cep_buf_t *out);
const cep_type_t *cep_type_of_kind(cep_kind_t k);
cep_type_t *cep_type_new_decimal(cep_arena_t *a, int precision, int scale);
/* The common supertype for comparisons and IN lists (numeric widening);
 * NULL when the two cannot be compared. */
const cep_type_t *cep_type_common(cep_arena_t *a, const cep_type_t *x, const cep_type_t *y);

/* ---- values ------------------------------------------------------------- */

/* Total order used for MIN/MAX/TOPK and comparisons: numbers compare by
 * value across kinds; NULL sorts first. Returns <0, 0, >0. */
int cep_value_cmp(const cep_value_t *a, const cep_value_t *b);
bool cep_value_eq(const cep_value_t *a, const cep_value_t *b);
uint64_t cep_value_hash(const cep_value_t *v, uint64_t seed);
double cep_value_as_double(const cep_value_t *v);
/* Convert a numeric value to the given numeric kind (DECIMAL uses scale). */
cep_value_t cep_value_cast_num(const cep_value_t *v, const cep_type_t *to);

/* Deep copy into malloc'ed memory owned by the caller (free with
 * cep_value_free_owned). Used by state entries that outlive the event. */
cep_value_t cep_value_clone(const cep_value_t *v);
void cep_value_free_owned(cep_value_t *v);
/* Deep copy into an arena. */
cep_value_t cep_value_clone_arena(const cep_value_t *v, cep_arena_t *a);

/* JSON text of a value, as ksqlDB's JSON serializer writes it (BYTES as
 * base64, DECIMAL as a number with its scale, TIMESTAMP as ms). */
void cep_value_to_json(const cep_value_t *v, cep_buf_t *out);
/* ksqlDB DELIMITED text of one column (no quoting unless needed). */
void cep_value_to_text(const cep_value_t *v, cep_buf_t *out);

/* base64 helpers for BYTES. */
void cep_base64_encode(const unsigned char *p, size_t n, cep_buf_t *out);
/* Decodes into out (capacity >= n*3/4+3); returns the length or -1. */
long cep_base64_decode(const char *s, size_t n, unsigned char *out);

#endif
