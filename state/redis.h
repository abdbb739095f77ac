/*
 * redis.h — checkpoints of per-task state in Redis.
 *
 * A task is one source partition. Its checkpoint is three hashes under one
 * hash tag, so all of a task's keys live in one Redis Cluster slot and one
 * MULTI/EXEC covers them:
 *
 *   <ns>:{<task>}:state    field = entry id bytes, value = entry blob
 *   <ns>:{<task>}:meta     field = meta id bytes,  value = blob
 *   <ns>:{<task>}:offsets  field = topic name,     value = decimal next offset
 *
 * A batch collects one task's dirty entries, deletions, meta blobs and
 * source offsets; a commit writes many batches in one round trip, one
 * transaction per task. Everything is binary-safe (lengths, never strlen),
 * except topic names, which are C strings.
 *
 * This client talks to one server: cluster redirections (MOVED) are not
 * followed.
 *
 * A cep_redis_t is one connection, used by one thread at a time. Every
 * socket read and write waits at most timeout_ms; a broken connection is
 * re-established (with AUTH and SELECT) once per call, and writes never
 * raise SIGPIPE in the host process.
 */
#ifndef CEP_STATE_REDIS_H
#define CEP_STATE_REDIS_H

#include "base/base.h"
#include "state/state.h"

/* ---- the connection ------------------------------------------------------ */

typedef struct cep_redis cep_redis_t;

/* url (borrowed): redis://[[user]:password@]host:port[/db] or host:port.
 * user and password may be percent-encoded; an IPv6 host goes in brackets.
 * Connects, AUTHs, SELECTs the db and PINGs; timeout_ms (> 0) bounds the
 * connect and every socket read and write after it.
 * Errors: CEP_ERR_ARG for a malformed URL ("redis URL '<url with the
 * password hidden>': expected ..."), CEP_ERR_IO for everything the network
 * or the server refuses ("redis 127.0.0.1:6399: cannot connect: Connection
 * refused", "... authentication failed: WRONGPASS ...").
 * On success *out is owned by the caller: free with cep_redis_free (which
 * takes NULL too). */
cep_status_t cep_redis_connect(const char *url, int timeout_ms, cep_redis_t **out,
                               cep_error_t *err);
void cep_redis_free(cep_redis_t *r);
/* "host:port/db", for logs (borrowed, valid until cep_redis_free; never
 * contains the password). */
const char *cep_redis_where(const cep_redis_t *r);
/* Reconnect now if the connection is known to be broken; cheap (no round
 * trip) when it is not. A connection that died silently is found by the
 * next command, which then reconnects by itself. */
cep_status_t cep_redis_ensure(cep_redis_t *r, cep_error_t *err);

/* Counters since connect, for benchmarks and metrics. A commit is one round
 * trip however many tasks it carries; a load is one per HSCAN page. */
typedef struct cep_redis_stats {
    uint64_t commands;   /* commands sent, MULTI and EXEC included */
    uint64_t round_trips;
    uint64_t bytes_out;  /* protocol bytes written */
    uint64_t reconnects; /* successful re-connections after the first connect */
} cep_redis_stats_t;
/* Borrowed, valid until cep_redis_free; updated by every call. */
const cep_redis_stats_t *cep_redis_stats(const cep_redis_t *r);

/* ---- one task's checkpoint ------------------------------------------------ */

typedef struct cep_redis_batch cep_redis_batch_t;

/* Owned by the caller: free with cep_redis_batch_free (which takes NULL
 * too). NULL when out of memory. */
cep_redis_batch_t *cep_redis_batch_new(int32_t task);
void cep_redis_batch_free(cep_redis_batch_t *b);
/* Forget the contents (and the replace_all mark), keep the memory. */
void cep_redis_batch_reset(cep_redis_batch_t *b);
int32_t cep_redis_batch_task(const cep_redis_batch_t *b);

/* The adders copy their bytes (borrowed for the call). State puts and
 * deletions apply in call order, so put(f), del(f) leaves f absent and
 * del(f), put(f) leaves it present. If an allocation fails the batch
 * remembers it and cep_redis_commit reports CEP_ERR_NOMEM. */
void cep_redis_batch_put(cep_redis_batch_t *b, const void *field, size_t flen, const void *val,
                         size_t vlen);
void cep_redis_batch_del(cep_redis_batch_t *b, const void *field, size_t flen);
void cep_redis_batch_meta(cep_redis_batch_t *b, const void *field, size_t flen, const void *val,
                          size_t vlen);
/* topic: a C string (borrowed). The last offset given for a topic wins. */
/* Remove a meta field (a rule that left the pack). */
void cep_redis_batch_meta_del(cep_redis_batch_t *b, const void *field, size_t flen);
void cep_redis_batch_offset(cep_redis_batch_t *b, const char *topic, int64_t next_offset);
/* The batch holds the task's whole state: the commit first deletes the
 * task's three keys, inside the same transaction, whatever the order of
 * calls. For the first checkpoint after a rule reset, and for tests. */
void cep_redis_batch_replace_all(cep_redis_batch_t *b);
/* A checkpoint sink (state/state.h) that writes into b. */
cep_ckpt_sink_t cep_redis_batch_sink(cep_redis_batch_t *b);
/* Protocol bytes buffered (about what a commit writes), for bounding. */
size_t cep_redis_batch_size(const cep_redis_batch_t *b);

/* ---- writing, reading, forgetting ------------------------------------------ */

/* Write n batches (borrowed, not modified: a failed commit can be retried
 * with the same batches) under namespace ns (a C string, borrowed; keys
 * are "<ns>:{<task>}:state" ..., so ns must not contain '{' or '}':
 * CEP_ERR_ARG). Each batch is one MULTI ... EXEC:
 * [DEL of the three keys,] HSET/HDEL of the state in chunks of at most
 * 1000 fields or about 4 MB, HSET of the meta, HSET of the offsets; all
 * transactions are written in one pipeline and then every reply is read.
 * CEP_OK only if every transaction ran without error. Redis applies a
 * transaction wholly or not at all when a command is refused before EXEC
 * (ACL, out of memory, bad arguments); a command that fails while EXEC
 * runs (WRONGTYPE: someone else wrote the key) does not roll back the
 * others, and is reported as an error too.
 * If the connection breaks, it reconnects once and writes everything
 * again, which is safe because a checkpoint is idempotent. */
cep_status_t cep_redis_commit(cep_redis_t *r, const char *ns, cep_redis_batch_t *const *batches,
                              size_t n, cep_error_t *err);

/* Callbacks for cep_redis_load. Pointers passed to them are borrowed, valid
 * only during the call; field and value bytes are counted, not
 * NUL-terminated (topic is a C string). Callbacks must not use the
 * cep_redis_t that is loading. Return false to stop the load, after
 * putting the reason in the cep_error_t given to cep_redis_load (the first
 * error wins), or the load reports "stopped by the caller". A NULL
 * callback skips its hash without reading it. */
typedef struct cep_redis_loader {
    bool (*on_state)(void *ctx, const char *field, size_t flen, const char *val, size_t vlen);
    bool (*on_meta)(void *ctx, const char *field, size_t flen, const char *val, size_t vlen);
    bool (*on_offset)(void *ctx, const char *topic, int64_t next_offset);
    void *ctx;
} cep_redis_loader_t;

/* Read task's checkpoint under ns (borrowed): on_state for every state
 * field, then on_meta for every meta field, then on_offset for every topic.
 * Hashes are read with HSCAN, 10000 fields a page, so a million fields
 * stream without one giant reply. SCAN semantics: a field may be delivered
 * twice if the hash changes during the load, so treat on_state as an upsert
 * — and do not commit a task while it loads. A task without checkpoint
 * calls nothing and returns CEP_OK. If the connection is broken before the
 * first field is delivered it reconnects once; after that an I/O error
 * fails the load (CEP_ERR_IO) and the caller starts it again.
 * CEP_ERR_DECODE when an offset is not a decimal number. */
cep_status_t cep_redis_load(cep_redis_t *r, const char *ns, int32_t task,
                            const cep_redis_loader_t *l, cep_error_t *err);

/* One plain value: GET (found = false when the key does not exist; the
 * bytes are appended to out) and SET. */
cep_status_t cep_redis_get(cep_redis_t *r, const char *key, cep_buf_t *out, bool *found, cep_error_t *err);
cep_status_t cep_redis_set(cep_redis_t *r, const char *key, const void *val, size_t vlen, cep_error_t *err);

/* Forget task's checkpoint under ns (borrowed): DEL of its three keys. */
cep_status_t cep_redis_drop(cep_redis_t *r, const char *ns, int32_t task, cep_error_t *err);

#endif
