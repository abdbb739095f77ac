/*
 * codec.h — the byte format of checkpointed state.
 *
 * Operators write their entries with these helpers and read them back on
 * restore. Integers are LEB128 varints (signed ones zigzag-coded), doubles
 * their 8 IEEE bytes, byte strings length-prefixed, values a kind byte and
 * their payload. Composite values (ARRAY, MAP, STRUCT) carry no type: the
 * reader passes the type it expects, which the compiled rule knows. The
 * format is private to one engine version: a checkpoint is read by the pack
 * that wrote it (rules are matched by fingerprint), never exchanged.
 */
#ifndef CEP_CODEC_H
#define CEP_CODEC_H

#include "base/base.h"
#include "patterns/value.h"

void cep_codec_put_u64(cep_buf_t *b, uint64_t v);
void cep_codec_put_i64(cep_buf_t *b, int64_t v);
void cep_codec_put_f64(cep_buf_t *b, double v);
void cep_codec_put_bytes(cep_buf_t *b, const void *p, size_t n);
void cep_codec_put_value(cep_buf_t *b, const cep_value_t *v);

/* A reader over borrowed bytes. Reading past the end or a malformed field
 * sets bad; later reads return zeros, so a decoder checks once at the end. */
typedef struct cep_dec {
    const unsigned char *p, *end;
    bool bad;
} cep_dec_t;

static inline cep_dec_t cep_codec_reader(const void *p, size_t n)
{
    cep_dec_t d = {(const unsigned char *)p, (const unsigned char *)p + n, false};
    return d;
}
uint64_t cep_codec_get_u64(cep_dec_t *d);
int64_t cep_codec_get_i64(cep_dec_t *d);
double cep_codec_get_f64(cep_dec_t *d);
bool cep_codec_get_bool(cep_dec_t *d);
/* Borrowed: points into the reader's bytes. */
const char *cep_codec_get_bytes(cep_dec_t *d, size_t *n);
/* An owned value (free with cep_value_free_owned). type: what the writer
 * stored, needed only for composites (their lists point at it); a
 * composite without a type sets bad. */
cep_value_t cep_codec_get_value(cep_dec_t *d, const cep_type_t *type);
/* Everything read, nothing bad. */
static inline bool cep_codec_done(const cep_dec_t *d)
{
    return !d->bad && d->p == d->end;
}

#endif
