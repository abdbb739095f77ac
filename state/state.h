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
    uint32_t dirty;  /* the store's: 1 + position in the table's dirty list, 0 = clean */
    bool persisted;  /* the store's: some checkpoint holds this key */
    uint32_t timer;  /* the store's: the entry's expiry bucket */
    uint32_t klen;
    struct cep_entry *tprev, *tnext; /* the store's: the other entries of the bucket */
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

/* Look up key; NULL when absent. get and upsert mark the entry dirty (the
 * caller is about to change it) when the store tracks changes. */
cep_entry_t *cep_table_get(cep_table_t *t, const void *key, size_t klen, uint64_t hash);
/* Look up key, creating a zeroed entry if absent (*created says which).
 * Returns NULL only when out of memory. */
cep_entry_t *cep_table_upsert(cep_table_t *t, const void *key, size_t klen, uint64_t hash,
                              bool *created);
/* upsert, with extra zeroed bytes (16-byte aligned) allocated with a new
 * entry, at cep_entry_inline(e): an operator's data in the entry's own
 * block. The table frees them with the entry. */
cep_entry_t *cep_table_upsert_sized(cep_table_t *t, const void *key, size_t klen, uint64_t hash,
                                    size_t extra, bool *created);
void *cep_entry_inline(cep_entry_t *e);
/* A hint: start loading the slot of hash (entry false) or the entry of
 * hash found near its slot (entry true). */
void cep_table_prefetch(const cep_table_t *t, uint64_t hash, bool entry);
void cep_table_remove(cep_table_t *t, cep_entry_t *e);
/* Mark an entry changed (get and upsert already do). */
void cep_table_touch(cep_table_t *t, cep_entry_t *e);
size_t cep_table_size(const cep_table_t *t);
/* Visit every entry; fn may not insert or remove. */
void cep_table_foreach(cep_table_t *t, void (*fn)(void *ctx, cep_entry_t *e), void *ctx);
/* Set when the entry becomes useless (event time; INT64_MAX = never). The
 * entries of one expiry are a bucket, and a min-heap orders the buckets:
 * O(1) when the bucket exists, O(log buckets) otherwise. */
void cep_table_set_expiry(cep_table_t *t, cep_entry_t *e, int64_t expires);
/* Remove up to max entries with expires < now, earliest first; returns how
 * many. O(max + log buckets): eviction never stalls the per-event path, and a
 * table where nothing has expired costs one comparison. */
size_t cep_table_expire(cep_table_t *t, int64_t now, size_t max);

/* ---- checkpoints ---------------------------------------------------------
 *
 * A table's operator says how its entries and its own scalars (stream time,
 * timers, buffered rows) become bytes (state/codec.h). A checkpoint writes
 * every dirty entry as (id, bytes) with id = the table's fingerprint (8
 * bytes, big-endian) then the key, every entry removed since the last
 * checkpoint as a deletion, and every table's scalars as meta under the
 * fingerprint alone. Restore reads the same records back into a store whose
 * operators have created their tables. */

typedef struct cep_table_codec {
    /* Entry data to bytes. false: nothing worth keeping (written as a deletion). */
    bool (*save)(void *ctx, const cep_entry_t *e, cep_buf_t *out);
    /* Bytes to e->data (e is new and empty). false: corrupt. */
    bool (*load)(void *ctx, cep_entry_t *e, const char *p, size_t n);
    /* The operator's scalars; either may be NULL. */
    void (*save_meta)(void *ctx, cep_buf_t *out);
    bool (*load_meta)(void *ctx, const char *p, size_t n);
    /* Optional: e->data is in the layout of from_ctx's operator, a table of
     * the same family (cep_table_set_family); make it this one's. Called
     * first with e = NULL to prepare: false = out of memory, nothing moves
     * (the old state is dropped); per entry it cannot fail. */
    bool (*convert)(void *ctx, void *from_ctx, cep_entry_t *e);
    void *ctx; /* borrowed: the operator */
} cep_table_codec_t;

/* Copies *c. A table without a codec is not checkpointed. */
void cep_table_set_codec(cep_table_t *t, const cep_table_codec_t *c);
/* Tables of one family hold the same state in different layouts (an
 * aggregation shared by a different set of rules): adopt converts entries
 * between them. 0 = none. */
void cep_table_set_family(cep_table_t *t, uint64_t family);

/* Keep the dirty list and removed keys that incremental checkpoints need.
 * Off by default: full snapshots need no tracking and the per-event path
 * then pays nothing. Turning it on marks nothing dirty. */
void cep_store_track(cep_store_t *s, bool on);

typedef struct cep_ckpt_sink {
    void (*put)(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen);
    void (*del)(void *ctx, const void *id, size_t idlen);
    void (*meta)(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen);
    void (*meta_del)(void *ctx, const void *id, size_t idlen);
    void *ctx;
} cep_ckpt_sink_t;

typedef struct cep_ckpt_stats {
    uint64_t puts, dels, metas, bytes;
} cep_ckpt_stats_t;

/* Write the store through sink: all = every entry (a full snapshot; the
 * reader must drop what it had), else the changes since the last
 * cep_store_checkpoint_done. Changes nothing: if the write fails, the next
 * checkpoint writes the same changes again. */
void cep_store_checkpoint(cep_store_t *s, bool all, const cep_ckpt_sink_t *sink, cep_ckpt_stats_t *stats);
/* The last checkpoint is durable: forget its changes. */
void cep_store_checkpoint_done(cep_store_t *s);

/* Restore one record of a checkpoint. A record of a table this store does
 * not have (a rule that changed or left the pack) is skipped and counted in
 * *unknown (may be NULL). A record that does not decode is CEP_ERR_DECODE. */
cep_status_t cep_store_restore_entry(cep_store_t *s, const void *id, size_t idlen, const void *val,
                                     size_t vlen, size_t *unknown, cep_error_t *err);
cep_status_t cep_store_restore_meta(cep_store_t *s, const void *id, size_t idlen, const void *val,
                                    size_t vlen, size_t *unknown, cep_error_t *err);
/* A full checkpoint as one byte string (appended to out), and back: for
 * tools and tests that hold state in memory. */
cep_status_t cep_store_snapshot(cep_store_t *s, cep_buf_t *out, cep_error_t *err);
cep_status_t cep_store_restore_snapshot(cep_store_t *s, const void *p, size_t n, size_t *unknown, cep_error_t *err);
/* Move the state of every table of `from` into the table of `to` with the
 * same fingerprint (empty, created by the new pack's operator), with the
 * operator's scalars: the entries move as they are, O(tables). A table
 * whose fingerprint `to` lacks moves into an empty table of its family, its
 * entries converted one by one, O(entries). Tables of `from` without a
 * counterpart stay (freed with `from`); their entries are counted in
 * *dropped. What checkpoints hold of tables that moved under another
 * fingerprint or were dropped is deleted by `to`'s next incremental
 * checkpoint. Returns the entries moved. */
size_t cep_store_adopt(cep_store_t *to, cep_store_t *from, size_t *dropped);
/* Move the entries and scalars of `from` into the empty table `to` of
 * another store, the same state (the same fingerprint): a rule's state
 * gathered apart (engine/bootstrap.h) joins the live store, and its next
 * checkpoint writes every moved entry. false (nothing moves): `to` is not
 * empty or not the same state. */
bool cep_table_graft(cep_table_t *to, cep_table_t *from, size_t *moved);
/* Entries over all tables. */
size_t cep_store_size(const cep_store_t *s);

#endif
