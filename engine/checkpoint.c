/*
 * checkpoint.c — the runtime's tasks to Redis and back (see checkpoint.h).
 */
#include "engine/checkpoint.h"
#include "state/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cep_ckpt {
    cep_redis_t *redis;
    char *ns;
    cep_runtime_t *rt;
    cep_ckpt_info_t info;
    uint64_t reconnects; /* the connection's count when the last checkpoint succeeded */
    /* per task: ids of restored records no rule of this pack reads (u32 length, bytes),
     * deleted from Redis by the task's next checkpoint */
    cep_buf_t *stale;
    uint32_t nstale;
    cep_buf_t lineage; /* to write before the next checkpoint; empty = written */
};

static cep_buf_t *stale_of(cep_ckpt_t *c, int32_t task)
{
    uint32_t t = task < 0 ? 0 : (uint32_t)task;
    if (t >= c->nstale) {
        cep_buf_t *g = realloc(c->stale, (t + 1) * sizeof *g);
        if (!g) return NULL;
        for (uint32_t i = c->nstale; i <= t; i++) cep_buf_init(&g[i]);
        c->stale = g;
        c->nstale = t + 1;
    }
    return &c->stale[t];
}

cep_status_t cep_ckpt_new(const char *url, const char *ns, cep_runtime_t *rt, cep_ckpt_t **out, cep_error_t *err)
{
    *out = NULL;
    cep_ckpt_t *c = calloc(1, sizeof *c);
    if (!c || !(c->ns = strdup(ns))) {
        free(c);
        return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    }
    c->rt = rt;
    cep_buf_init(&c->lineage);
    cep_status_t st = cep_redis_connect(url, 2000, &c->redis, err);
    if (st) {
        cep_ckpt_free(c);
        return st;
    }
    cep_runtime_track(rt, true);
    *out = c;
    return CEP_OK;
}

void cep_ckpt_free(cep_ckpt_t *c)
{
    if (!c) return;
    cep_redis_free(c->redis);
    cep_buf_free(&c->lineage);
    for (uint32_t i = 0; i < c->nstale; i++) cep_buf_free(&c->stale[i]);
    free(c->stale);
    free(c->ns);
    free(c);
}

const char *cep_ckpt_where(const cep_ckpt_t *c)
{
    return cep_redis_where(c->redis);
}

const cep_ckpt_info_t *cep_ckpt_info(const cep_ckpt_t *c)
{
    return &c->info;
}

uint64_t cep_ckpt_commands(const cep_ckpt_t *c)
{
    return cep_redis_stats(c->redis)->commands;
}

/* ---- save ------------------------------------------------------------------ */

/* The distinct partition numbers of a list, ascending. */
static size_t task_ids(const rd_kafka_topic_partition_list_t *l, int32_t *ids)
{
    size_t n = 0;
    for (int i = 0; i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        size_t k = 0;
        while (k < n && ids[k] < p) k++;
        if (k < n && ids[k] == p) continue;
        memmove(ids + k + 1, ids + k, (n - k) * sizeof *ids);
        ids[k] = p;
        n++;
    }
    return n;
}

/* Checkpoint tasks ids[0..n); positions (may be NULL) give their offsets. */
static cep_status_t save_tasks(cep_ckpt_t *c, const int32_t *ids, size_t n,
                               const rd_kafka_topic_partition_list_t *positions, cep_error_t *err)
{
    uint64_t t0 = cep_now_ns();
    cep_redis_batch_t **batches = calloc(n + 1, sizeof *batches);
    if (!batches) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    /* After a reconnect Redis may have restarted without its data: write
     * every task whole, so what it holds never depends on what it lost. */
    bool full = cep_redis_stats(c->redis)->reconnects != c->reconnects;
    cep_ckpt_stats_t cs = {0};
    cep_status_t st = CEP_OK;
    for (size_t i = 0; i < n && !st; i++) {
        if (!(batches[i] = cep_redis_batch_new(ids[i]))) {
            st = cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
            break;
        }
        cep_ckpt_sink_t sink = cep_redis_batch_sink(batches[i]);
        if (full) cep_redis_batch_replace_all(batches[i]);
        st = cep_runtime_checkpoint(c->rt, ids[i], full, &sink, &cs, err);
        cep_buf_t *stale = stale_of(c, ids[i]);
        for (size_t at = 0; !full && stale && at + 4 <= stale->len;) {
            uint32_t len;
            memcpy(&len, stale->data + at, sizeof len);
            uint32_t n = len & 0x7fffffffu; /* the top bit marks a meta record */
            if (len >> 31) cep_redis_batch_meta_del(batches[i], stale->data + at + 4, n);
            else cep_redis_batch_del(batches[i], stale->data + at + 4, n);
            at += 4 + n;
        }
        for (int k = 0; positions && k < positions->cnt; k++)
            if (positions->elems[k].partition == ids[i] && positions->elems[k].offset >= 0)
                cep_redis_batch_offset(batches[i], positions->elems[k].topic, positions->elems[k].offset);
    }
    if (!st) st = cep_redis_commit(c->redis, c->ns, batches, n, err);
    if (!st) {
        for (size_t i = 0; i < n; i++) {
            cep_runtime_checkpoint_done(c->rt, ids[i]);
            cep_buf_t *stale = stale_of(c, ids[i]);
            if (stale) cep_buf_reset(stale);
        }
        c->reconnects = cep_redis_stats(c->redis)->reconnects;
        c->info.checkpoints++;
        c->info.tasks_written += n;
        c->info.entries += cs.puts;
        c->info.deletions += cs.dels;
        c->info.bytes += cs.bytes;
        c->info.last_entries = cs.puts + cs.dels;
        c->info.last_ns = cep_now_ns() - t0;
    } else
        c->info.failures++;
    for (size_t i = 0; i < n; i++) cep_redis_batch_free(batches[i]);
    free(batches);
    return st;
}

static cep_status_t lineage_key(const char *ns, char *key, size_t n, cep_error_t *err)
{
    if ((size_t)snprintf(key, n, "%s:lineage", ns) >= n)
        return cep_error_set(err, CEP_ERR_ARG, NULL, "state namespace too long");
    return CEP_OK;
}

void cep_ckpt_set_lineage(cep_ckpt_t *c, const cep_ruleset_t *rs)
{
    cep_lineage_t l;
    if (cep_ruleset_lineage(rs, &l)) return;
    cep_buf_reset(&c->lineage);
    cep_lineage_encode(&l, &c->lineage);
    cep_lineage_free(&l);
}

cep_status_t cep_ckpt_load_lineage(const char *url, const char *ns, cep_lineage_t *out, bool *found,
                                   cep_error_t *err)
{
    *found = false;
    char key[512];
    if (lineage_key(ns, key, sizeof key, err)) return CEP_ERR_ARG;
    cep_redis_t *r = NULL;
    cep_status_t st = cep_redis_connect(url, 2000, &r, err);
    if (st) return st;
    cep_buf_t v;
    cep_buf_init(&v);
    st = cep_redis_get(r, key, &v, found, err);
    if (!st && *found && !cep_lineage_decode(v.data, v.len, out)) {
        /* not fatal: the pack is planned afresh, and records it does not
         * read are skipped and counted on restore */
        fprintf(stderr, "cep: state: %s in %s is not a lineage; ignored\n", key, cep_redis_where(r));
        *found = false;
    }
    cep_buf_free(&v);
    cep_redis_free(r);
    return st;
}

/* The lineage goes first: state whose tables it names is never saved without it. */
static cep_status_t save_lineage(cep_ckpt_t *c, cep_error_t *err)
{
    if (!c->lineage.len) return CEP_OK;
    char key[512];
    cep_status_t st = lineage_key(c->ns, key, sizeof key, err);
    if (!st) st = cep_redis_set(c->redis, key, c->lineage.data, c->lineage.len, err);
    if (!st) cep_buf_reset(&c->lineage);
    return st;
}

cep_status_t cep_ckpt_save(cep_ckpt_t *c, const rd_kafka_topic_partition_list_t *positions, cep_error_t *err)
{
    if (save_lineage(c, err)) return CEP_ERR_IO;
    int32_t *ids = calloc((size_t)positions->cnt + 1, sizeof *ids);
    if (!ids) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    cep_status_t st = save_tasks(c, ids, task_ids(positions, ids), positions, err);
    free(ids);
    return st;
}

cep_status_t cep_ckpt_save_tasks(cep_ckpt_t *c, const int32_t *tasks, size_t n, cep_error_t *err)
{
    if (save_lineage(c, err)) return CEP_ERR_IO;
    return save_tasks(c, tasks, n, NULL, err);
}

/* ---- restore ---------------------------------------------------------------- */

typedef struct loading {
    cep_ckpt_t *c;
    int32_t task;
    rd_kafka_topic_partition_list_t *assigned;
    size_t entries, unknown;
    bool any;
    cep_error_t *err;
} loading_t;

/* A record that does not decode is logged and skipped (its key starts
 * afresh): one bad entry must not keep a partition from being served. */
static bool restored(loading_t *l, cep_status_t st)
{
    if (st != CEP_ERR_DECODE) return st == CEP_OK;
    if (!l->c->info.corrupt_entries++)
        fprintf(stderr, "cep: state: task %d: %s; skipped (counted)\n", (int)l->task, l->err->msg);
    cep_error_clear(l->err);
    return true;
}

static bool l_state(void *ctx, const char *field, size_t flen, const char *val, size_t vlen)
{
    loading_t *l = ctx;
    l->entries++;
    l->any = true;
    size_t before = l->unknown;
    uint64_t corrupt = l->c->info.corrupt_entries;
    bool ok = restored(l, cep_runtime_restore(l->c->rt, l->task, false, field, flen, val, vlen, &l->unknown, l->err));
    bool gone = l->unknown != before || l->c->info.corrupt_entries != corrupt;
    cep_buf_t *stale = gone ? stale_of(l->c, l->task) : NULL;
    if (stale) { /* a rule that changed or left the pack, or a spoiled record: forget it in Redis too */
        uint32_t len = (uint32_t)flen;
        cep_buf_put(stale, &len, sizeof len);
        cep_buf_put(stale, field, flen);
    }
    return ok;
}

static bool l_meta(void *ctx, const char *field, size_t flen, const char *val, size_t vlen)
{
    loading_t *l = ctx;
    l->any = true;
    size_t before = l->unknown;
    bool ok = restored(l, cep_runtime_restore(l->c->rt, l->task, true, field, flen, val, vlen, &l->unknown, l->err));
    cep_buf_t *stale = l->unknown != before ? stale_of(l->c, l->task) : NULL;
    if (stale) {
        uint32_t len = (uint32_t)flen | 0x80000000u;
        cep_buf_put(stale, &len, sizeof len);
        cep_buf_put(stale, field, flen);
    }
    return ok;
}

static bool l_offset(void *ctx, const char *topic, int64_t next)
{
    loading_t *l = ctx;
    rd_kafka_topic_partition_t *tp = l->assigned ? rd_kafka_topic_partition_list_find(l->assigned, topic, l->task) : NULL;
    if (tp) tp->offset = next;
    l->any = true;
    return true;
}

static cep_status_t load_task(cep_ckpt_t *c, int32_t task, rd_kafka_topic_partition_list_t *assigned,
                              cep_error_t *err)
{
    /* whatever this instance held for the partition is older than the checkpoint */
    cep_runtime_task_drop(c->rt, task);
    cep_buf_t *stale = stale_of(c, task);
    if (stale) cep_buf_reset(stale);
    loading_t l = {c, task, assigned, 0, 0, false, err};
    cep_redis_loader_t ld = {l_state, l_meta, l_offset, &l};
    cep_status_t st = cep_redis_load(c->redis, c->ns, task, &ld, err);
    if (st) {
        cep_runtime_task_drop(c->rt, task);
        return st;
    }
    if (l.any) c->info.restored_tasks++;
    c->info.restored_entries += l.entries;
    c->info.unknown_entries += l.unknown;
    return CEP_OK;
}

cep_status_t cep_ckpt_restore(cep_ckpt_t *c, rd_kafka_topic_partition_list_t *assigned, cep_error_t *err)
{
    int32_t *ids = calloc((size_t)assigned->cnt + 1, sizeof *ids);
    if (!ids) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    size_t n = task_ids(assigned, ids);
    cep_status_t st = CEP_OK;
    for (size_t i = 0; i < n && !st; i++) st = load_task(c, ids[i], assigned, err);
    free(ids);
    return st;
}

cep_status_t cep_ckpt_restore_task(cep_ckpt_t *c, int32_t task, cep_error_t *err)
{
    return load_task(c, task, NULL, err);
}
