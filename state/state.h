/*
 * state.h — per-(rule fingerprint, key) state.
 *
 * A store holds one table per rule, addressed by the rule's fingerprint so
 * an unchanged rule finds its state again after a reload. A table maps key
 * bytes to an entry; an entry carries the operator's data, a dirty bit for
 * checkpoints and an event-time expiry. The in-memory store is the working
 * copy on the per-event path; a durable store (Redis) will checkpoint dirty
 * entries through the same interface.
 */
#ifndef CEP_STATE_H
#define CEP_STATE_H

#include "base/base.h"

typedef struct cep_store cep_store_t;
typedef struct cep_table cep_table_t;

typedef struct cep_entry {
    uint64_t hash;
    int64_t expires; /* event time after which the entry is useless; INT64_MAX = never.
                        Read-only: set it with cep_table_set_expiry */
    bool dirty;      /* changed since the last checkpoint */
    uint32_t timer;  /* the store's: position in the table's expiry heap */
    uint32_t klen;
    void *data;      /* owned by the table's operator; freed through its callback */
    char key[];      /* klen bytes */
} cep_entry_t;

/* How a table frees its entries' data. */
typedef void (*cep_entry_free_fn)(void *ctx, cep_entry_t *e);

cep_store_t *cep_store_mem_new(void);
void cep_store_free(cep_store_t *s);

/* The table of a rule; created on first use. name is for diagnostics. */
cep_table_t *cep_store_table(cep_store_t *s, uint64_t fingerprint, const char *name,
                             cep_entry_free_fn free_fn, void *free_ctx);

/* Look up key; NULL when absent. */
cep_entry_t *cep_table_get(cep_table_t *t, const void *key, size_t klen, uint64_t hash);
/* Look up key, creating a zeroed entry if absent (*created says which).
 * Returns NULL only when out of memory. */
cep_entry_t *cep_table_upsert(cep_table_t *t, const void *key, size_t klen, uint64_t hash,
                              bool *created);
void cep_table_remove(cep_table_t *t, cep_entry_t *e);
size_t cep_table_size(const cep_table_t *t);
/* Visit every entry; fn may not insert or remove. */
void cep_table_foreach(cep_table_t *t, void (*fn)(void *ctx, cep_entry_t *e), void *ctx);
/* Set when the entry becomes useless (event time; INT64_MAX = never). The
 * table keeps entries in a min-heap by expiry: O(log n) here. */
void cep_table_set_expiry(cep_table_t *t, cep_entry_t *e, int64_t expires);
/* Remove up to max entries with expires < now, earliest first; returns how
 * many. O(max log n): eviction never stalls the per-event path, and a
 * table where nothing has expired costs one comparison. */
size_t cep_table_expire(cep_table_t *t, int64_t now, size_t max);

#endif
