/*
 * decode.h — one source record (key bytes, value bytes, timestamp) into the
 * typed row of the stream it belongs to.
 */
#ifndef CEP_DECODE_H
#define CEP_DECODE_H

#include "patterns/plan.h"

typedef struct cep_record {
    const char *topic;
    const char *key; /* NULL: no key */
    size_t klen;
    const char *value; /* NULL: a tombstone (null value) */
    size_t vlen;
    int64_t timestamp; /* record time, ms */
    int32_t partition;
    int64_t offset;
    bool window; /* a windowed source record carries its window */
    int64_t window_start, window_end;
    /* where it came from, for dead letters */
    const char *source;
    uint64_t line;
    /* a re-keyed record (runtime.h): the source partition and offset it was made from */
    int32_t src_partition; /* read only for records of internal topics; -1 = unknown */
    int64_t src_offset;
} cep_record_t;

/* Fill row[0..s->nslots) from r. Unneeded columns stay NULL. On failure
 * returns CEP_ERR_DECODE with err saying which column and byte offset. */
cep_status_t cep_decode_record(const cep_stream_t *s, const cep_record_t *r, cep_value_t *row,
                               cep_arena_t *scratch, cep_error_t *err);

#endif
