/*
 * store_mem.c — the in-memory state store: one open-addressing hash table
 * (linear probing, backward-shift deletion) per rule, entries allocated
 * individually so pointers to them stay valid while the table grows, and
 * event-time expiry by buckets: the entries that expire at the same time
 * are one list, and a min-heap orders the buckets. Windows of a query share
 * their end, so a table of hundreds of thousands of windows has a handful
 * of buckets: setting an expiry is O(1) when its bucket exists (a small
 * cache finds it), and expiring an entry is O(1) plus O(log buckets) when
 * its bucket empties. Entries with their own expiry each (OVER) cost what a
 * heap of entries would.
 */
#include "state/state.h"
#include "state/codec.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint64_t hash; /* = e->hash: probes compare without touching entries */
    cep_entry_t *e;
} slot_t;

typedef struct bucket {
    int64_t expires;
    cep_entry_t *head, *tail;
    uint32_t pos; /* in the heap; NO_TIMER when free */
    uint32_t next_free;
} bucket_t;

typedef struct heap_node {
    int64_t expires;
    uint32_t b;
} heap_node_t;

#define RECENT 8

/* The expiry structure of a table: moved as a whole with its entries. */
typedef struct timers {
    bucket_t *pool;
    uint32_t npool, cappool, free_head;
    heap_node_t *heap; /* of live buckets, by expiry */
    uint32_t nheap, capheap;
    uint32_t recent[RECENT]; /* bucket ids by expiry hash: candidates, checked before use */
} timers_t;

struct cep_table {
    uint64_t fingerprint, family;
    char *name;
    slot_t *slots;
    size_t cap, size;
    cep_entry_free_fn free_fn;
    void *free_ctx;
    cep_table_t *next;
    timers_t tm;
    /* checkpoints */
    cep_table_codec_t codec;
    bool has_codec, track;
    cep_entry_t **dirty; /* entries changed since the last checkpoint */
    uint32_t ndirty, capdirty;
    cep_buf_t deleted; /* keys of checkpointed entries removed since: u32 length, bytes */
};

#define NO_TIMER UINT32_MAX

static void heap_set(timers_t *tm, uint32_t i, heap_node_t n)
{
    tm->heap[i] = n;
    tm->pool[n.b].pos = i;
}

static void heap_up(timers_t *tm, uint32_t i)
{
    heap_node_t n = tm->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (tm->heap[p].expires <= n.expires) break;
        heap_set(tm, i, tm->heap[p]);
        i = p;
    }
    heap_set(tm, i, n);
}

static void heap_down(timers_t *tm, uint32_t i)
{
    heap_node_t n = tm->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= tm->nheap) break;
        if (c + 1 < tm->nheap && tm->heap[c + 1].expires < tm->heap[c].expires) c++;
        if (tm->heap[c].expires >= n.expires) break;
        heap_set(tm, i, tm->heap[c]);
        i = c;
    }
    heap_set(tm, i, n);
}

static void timers_free(timers_t *tm)
{
    free(tm->pool);
    free(tm->heap);
}

static uint32_t recent_slot(int64_t expires)
{
    return (uint32_t)(((uint64_t)expires * 0x9E3779B97F4A7C15ull) >> 61);
}

/* The bucket of an expiry, made (and put on the heap) when there is none;
 * NO_TIMER when out of memory. */
static uint32_t bucket_for(timers_t *tm, int64_t expires)
{
    uint32_t r = recent_slot(expires), b = tm->recent[r];
    if (b < tm->npool && tm->pool[b].pos != NO_TIMER && tm->pool[b].expires == expires) return b;
    if (tm->nheap == tm->capheap) {
        uint32_t cap = tm->capheap ? tm->capheap * 2 : 16;
        heap_node_t *h = realloc(tm->heap, cap * sizeof *h);
        if (!h) return NO_TIMER;
        tm->heap = h;
        tm->capheap = cap;
    }
    if (tm->free_head != NO_TIMER) {
        b = tm->free_head;
        tm->free_head = tm->pool[b].next_free;
    } else {
        if (tm->npool == tm->cappool) {
            uint32_t cap = tm->cappool ? tm->cappool * 2 : 16;
            bucket_t *p = realloc(tm->pool, cap * sizeof *p);
            if (!p) return NO_TIMER;
            tm->pool = p;
            tm->cappool = cap;
        }
        b = tm->npool++;
    }
    tm->pool[b] = (bucket_t){.expires = expires, .pos = tm->nheap, .next_free = NO_TIMER};
    tm->heap[tm->nheap++] = (heap_node_t){expires, b};
    heap_up(tm, tm->nheap - 1);
    tm->recent[r] = b;
    return b;
}

static void bucket_release(timers_t *tm, uint32_t b)
{
    uint32_t i = tm->pool[b].pos;
    tm->pool[b].pos = NO_TIMER;
    tm->pool[b].next_free = tm->free_head;
    tm->free_head = b;
    heap_node_t last = tm->heap[--tm->nheap];
    if (i == tm->nheap) return;
    heap_set(tm, i, last);
    heap_up(tm, i);
    heap_down(tm, tm->pool[last.b].pos);
}

/* Take e out of its bucket (if any); an emptied bucket leaves the heap. */
static void timer_unlink(timers_t *tm, cep_entry_t *e)
{
    uint32_t b = e->timer;
    if (b == NO_TIMER) return;
    bucket_t *k = &tm->pool[b];
    if (e->tprev) e->tprev->tnext = e->tnext;
    else k->head = e->tnext;
    if (e->tnext) e->tnext->tprev = e->tprev;
    else k->tail = e->tprev;
    e->tprev = e->tnext = NULL;
    e->timer = NO_TIMER;
    if (!k->head) bucket_release(tm, b);
}

void cep_table_set_expiry(cep_table_t *t, cep_entry_t *e, int64_t expires)
{
    if (e->expires == expires && (e->timer != NO_TIMER || expires == INT64_MAX)) return;
    timers_t *tm = &t->tm;
    timer_unlink(tm, e);
    e->expires = expires;
    if (expires == INT64_MAX) return;
    uint32_t b = bucket_for(tm, expires);
    if (b == NO_TIMER) return; /* out of memory: the entry lives on until removed by its operator */
    bucket_t *k = &tm->pool[b];
    e->timer = b;
    e->tprev = k->tail;
    e->tnext = NULL;
    if (k->tail) k->tail->tnext = e;
    else k->head = e;
    k->tail = e;
}

struct cep_store {
    cep_table_t *tables;
    bool track;
    /* ids that checkpoints may hold of tables this store no longer has
     * (adopt): u32 length (top bit: a meta id), bytes; deleted by the next
     * incremental checkpoint */
    cep_buf_t retired;
};

/* The entry is about to change: remember it for the next checkpoint. */
static void mark_dirty(cep_table_t *t, cep_entry_t *e)
{
    if (!t->track || e->dirty) return;
    if (t->ndirty == t->capdirty) {
        uint32_t cap = t->capdirty ? t->capdirty * 2 : 64;
        cep_entry_t **d = realloc(t->dirty, cap * sizeof *d);
        if (!d) return; /* out of memory: the entry is written by the next full checkpoint */
        t->dirty = d;
        t->capdirty = cap;
    }
    t->dirty[t->ndirty++] = e;
    e->dirty = t->ndirty;
}

static void unmark_dirty(cep_table_t *t, cep_entry_t *e)
{
    if (!e->dirty) return;
    uint32_t i = e->dirty - 1;
    cep_entry_t *last = t->dirty[--t->ndirty];
    t->dirty[i] = last;
    last->dirty = i + 1;
    e->dirty = 0;
}

cep_store_t *cep_store_mem_new(void)
{
    return calloc(1, sizeof(cep_store_t));
}

static void table_free(cep_table_t *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].e) {
            if (t->free_fn) t->free_fn(t->free_ctx, t->slots[i].e);
            free(t->slots[i].e);
        }
    free(t->slots);
    timers_free(&t->tm);
    free(t->dirty);
    cep_buf_free(&t->deleted);
    free(t->name);
    free(t);
}

void cep_store_free(cep_store_t *s)
{
    if (!s) return;
    cep_table_t *t = s->tables;
    while (t) {
        cep_table_t *n = t->next;
        table_free(t);
        t = n;
    }
    cep_buf_free(&s->retired);
    free(s);
}

cep_table_t *cep_store_table(cep_store_t *s, uint64_t fingerprint, const char *name,
                             cep_entry_free_fn free_fn, void *free_ctx)
{
    for (cep_table_t *t = s->tables; t; t = t->next)
        if (t->fingerprint == fingerprint) {
            t->free_fn = free_fn;
            t->free_ctx = free_ctx;
            return t;
        }
    cep_table_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fingerprint = fingerprint;
    t->name = strdup(name ? name : "");
    t->cap = 16;
    t->slots = calloc(t->cap, sizeof *t->slots);
    t->tm.free_head = NO_TIMER;
    if (!t->slots || !t->name) {
        free(t->slots);
        free(t->name);
        free(t);
        return NULL;
    }
    t->free_fn = free_fn;
    t->free_ctx = free_ctx;
    t->track = s->track;
    cep_buf_init(&t->deleted);
    t->next = s->tables;
    s->tables = t;
    return t;
}

static cep_entry_t *lookup(const cep_table_t *t, const void *key, size_t klen, uint64_t hash)
{
    size_t m = t->cap - 1;
    for (size_t i = hash & m;; i = (i + 1) & m) {
        const slot_t *sl = &t->slots[i];
        if (!sl->e) return NULL;
        if (sl->hash == hash && sl->e->klen == klen && !memcmp(sl->e->key, key, klen)) return sl->e;
    }
}

cep_entry_t *cep_table_get(cep_table_t *t, const void *key, size_t klen, uint64_t hash)
{
    cep_entry_t *e = lookup(t, key, klen, hash);
    if (e) mark_dirty(t, e);
    return e;
}

static bool grow(cep_table_t *t)
{
    size_t ncap = t->cap * 2;
    slot_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i].e) continue;
        size_t j = t->slots[i].hash & (ncap - 1);
        while (ns[j].e) j = (j + 1) & (ncap - 1);
        ns[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = ns;
    t->cap = ncap;
    return true;
}

void cep_table_prefetch(const cep_table_t *t, uint64_t hash, bool entry)
{
    size_t m = t->cap - 1, i = hash & m;
    if (!entry) {
        __builtin_prefetch(&t->slots[i]);
        return;
    }
    for (int k = 0; k < 4 && t->slots[i].e; k++, i = (i + 1) & m)
        if (t->slots[i].hash == hash) {
            __builtin_prefetch(t->slots[i].e);
            __builtin_prefetch((const char *)t->slots[i].e + 64);
            return;
        }
}

static size_t inline_offset(size_t klen)
{
    return (sizeof(cep_entry_t) + klen + 15) & ~(size_t)15;
}

void *cep_entry_inline(cep_entry_t *e)
{
    return (char *)e + inline_offset(e->klen);
}

cep_entry_t *cep_table_upsert_sized(cep_table_t *t, const void *key, size_t klen, uint64_t hash,
                                    size_t extra, bool *created)
{
    cep_entry_t *e = cep_table_get(t, key, klen, hash);
    if (e) {
        if (created) *created = false;
        return e;
    }
    if ((t->size + 1) * 4 > t->cap * 3 && !grow(t)) return NULL;
    e = calloc(1, extra ? inline_offset(klen) + extra : sizeof *e + klen);
    if (!e) return NULL;
    e->hash = hash;
    e->klen = (uint32_t)klen;
    e->expires = INT64_MAX;
    e->timer = NO_TIMER;
    memcpy(e->key, key, klen);
    size_t m = t->cap - 1, i = hash & m;
    while (t->slots[i].e) i = (i + 1) & m;
    t->slots[i] = (slot_t){hash, e};
    t->size++;
    mark_dirty(t, e);
    if (created) *created = true;
    return e;
}

cep_entry_t *cep_table_upsert(cep_table_t *t, const void *key, size_t klen, uint64_t hash,
                              bool *created)
{
    return cep_table_upsert_sized(t, key, klen, hash, 0, created);
}

void cep_table_remove(cep_table_t *t, cep_entry_t *e)
{
    size_t m = t->cap - 1, i = e->hash & m;
    while (t->slots[i].e != e) {
        if (!t->slots[i].e) return;
        i = (i + 1) & m;
    }
    timer_unlink(&t->tm, e);
    unmark_dirty(t, e);
    if (e->persisted && t->track) {
        uint32_t n = e->klen;
        cep_buf_put(&t->deleted, &n, sizeof n);
        cep_buf_put(&t->deleted, e->key, n);
    }
    if (t->free_fn) t->free_fn(t->free_ctx, e);
    free(e);
    t->slots[i].e = NULL;
    t->size--;
    /* backward-shift the cluster that follows */
    for (size_t j = (i + 1) & m; t->slots[j].e; j = (j + 1) & m) {
        size_t home = t->slots[j].hash & m;
        /* can the entry at j move into the hole at i? */
        bool move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            t->slots[i] = t->slots[j];
            t->slots[j].e = NULL;
            i = j;
        }
    }
}

size_t cep_table_size(const cep_table_t *t)
{
    return t->size;
}

void cep_table_foreach(cep_table_t *t, void (*fn)(void *ctx, cep_entry_t *e), void *ctx)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].e) fn(ctx, t->slots[i].e);
}

size_t cep_table_expire(cep_table_t *t, int64_t now, size_t max)
{
    timers_t *tm = &t->tm;
    size_t removed = 0;
    while (removed < max && tm->nheap && tm->heap[0].expires < now) {
        cep_entry_t *e = tm->pool[tm->heap[0].b].head, *n = e->tnext;
        /* old entries are cold: load the next one's slot, and the one
         * after it, while this one goes */
        if (n) {
            __builtin_prefetch(&t->slots[n->hash & (t->cap - 1)]);
            if (n->tnext) {
                __builtin_prefetch(n->tnext);
                __builtin_prefetch((const char *)n->tnext + 64);
            }
        }
        cep_table_remove(t, e);
        removed++;
    }
    return removed;
}

void cep_table_touch(cep_table_t *t, cep_entry_t *e)
{
    mark_dirty(t, e);
}

/* ---- checkpoints ----------------------------------------------------------- */

void cep_table_set_codec(cep_table_t *t, const cep_table_codec_t *c)
{
    t->codec = *c;
    t->has_codec = true;
}

void cep_table_set_family(cep_table_t *t, uint64_t family)
{
    t->family = family;
}

void cep_store_track(cep_store_t *s, bool on)
{
    s->track = on;
    for (cep_table_t *t = s->tables; t; t = t->next) t->track = on;
}

size_t cep_store_size(const cep_store_t *s)
{
    size_t n = 0;
    for (const cep_table_t *t = s->tables; t; t = t->next) n += t->size;
    return n;
}

static void put_fp(cep_buf_t *b, uint64_t fp)
{
    unsigned char be[8];
    for (int i = 0; i < 8; i++) be[i] = (unsigned char)(fp >> (56 - 8 * i));
    cep_buf_put(b, be, 8);
}

typedef struct ckpt {
    const cep_ckpt_sink_t *sink;
    cep_ckpt_stats_t *st;
    cep_table_t *t;
    cep_buf_t id, val;
} ckpt_t;

static void write_id(ckpt_t *c, const void *key, size_t klen)
{
    cep_buf_reset(&c->id);
    put_fp(&c->id, c->t->fingerprint);
    cep_buf_put(&c->id, key, klen);
}

static void write_entry(ckpt_t *c, cep_entry_t *e)
{
    cep_table_t *t = c->t;
    write_id(c, e->key, e->klen);
    cep_buf_reset(&c->val);
    cep_codec_put_i64(&c->val, e->expires);
    if (e->data && t->codec.save(t->codec.ctx, e, &c->val)) {
        c->sink->put(c->sink->ctx, c->id.data, c->id.len, c->val.data, c->val.len);
        c->st->puts++;
        c->st->bytes += c->id.len + c->val.len;
        e->persisted = true;
    } else if (e->persisted) {
        c->sink->del(c->sink->ctx, c->id.data, c->id.len);
        c->st->dels++;
        e->persisted = false;
    }
}

static void visit_all(void *ctx, cep_entry_t *e)
{
    write_entry(ctx, e);
}

void cep_store_checkpoint(cep_store_t *s, bool all, const cep_ckpt_sink_t *sink, cep_ckpt_stats_t *stats)
{
    cep_ckpt_stats_t local = {0};
    ckpt_t c = {.sink = sink, .st = stats ? stats : &local};
    cep_buf_init(&c.id);
    cep_buf_init(&c.val);
    for (size_t at = 0; !all && at + 4 <= s->retired.len;) {
        uint32_t n;
        memcpy(&n, s->retired.data + at, sizeof n);
        const char *id = s->retired.data + at + 4;
        at += 4 + (n & 0x7fffffffu);
        if (n >> 31) {
            if (sink->meta_del) sink->meta_del(sink->ctx, id, n & 0x7fffffffu);
        } else
            sink->del(sink->ctx, id, n);
        c.st->dels++;
    }
    for (cep_table_t *t = s->tables; t; t = t->next) {
        if (!t->has_codec) continue;
        c.t = t;
        if (all) {
            for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i].e) visit_all(&c, t->slots[i].e);
        } else {
            for (uint32_t i = 0; i < t->ndirty; i++) write_entry(&c, t->dirty[i]);
            for (size_t at = 0; at + 4 <= t->deleted.len;) {
                uint32_t n;
                memcpy(&n, t->deleted.data + at, sizeof n);
                const char *key = t->deleted.data + at + 4;
                at += 4 + n;
                /* removed, then made again: the put above wins */
                if (lookup(t, key, n, cep_hash_bytes(key, n, 0))) continue;
                write_id(&c, key, n);
                sink->del(sink->ctx, c.id.data, c.id.len);
                c.st->dels++;
            }
        }
        if (t->codec.save_meta) {
            cep_buf_reset(&c.val);
            t->codec.save_meta(t->codec.ctx, &c.val);
            cep_buf_reset(&c.id);
            put_fp(&c.id, t->fingerprint);
            sink->meta(sink->ctx, c.id.data, c.id.len, c.val.data ? c.val.data : "", c.val.len);
            c.st->metas++;
            c.st->bytes += c.id.len + c.val.len;
        }
    }
    cep_buf_free(&c.id);
    cep_buf_free(&c.val);
}

void cep_store_checkpoint_done(cep_store_t *s)
{
    cep_buf_reset(&s->retired);
    for (cep_table_t *t = s->tables; t; t = t->next) {
        for (uint32_t i = 0; i < t->ndirty; i++) t->dirty[i]->dirty = 0;
        t->ndirty = 0;
        cep_buf_reset(&t->deleted);
    }
}

static cep_table_t *table_of(cep_store_t *s, const void *id, size_t idlen)
{
    if (idlen < 8) return NULL;
    const unsigned char *p = id;
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++) fp = fp << 8 | p[i];
    for (cep_table_t *t = s->tables; t; t = t->next)
        if (t->fingerprint == fp && t->has_codec) return t;
    return NULL;
}

cep_status_t cep_store_restore_entry(cep_store_t *s, const void *id, size_t idlen, const void *val,
                                     size_t vlen, size_t *unknown, cep_error_t *err)
{
    cep_table_t *t = table_of(s, id, idlen);
    if (!t) {
        if (unknown) (*unknown)++;
        return CEP_OK;
    }
    const char *key = (const char *)id + 8;
    size_t klen = idlen - 8;
    cep_dec_t d = cep_codec_reader(val, vlen);
    int64_t exp = cep_codec_get_i64(&d);
    if (d.bad) return cep_error_set(err, CEP_ERR_DECODE, NULL, "state of %s: a record without its expiry", t->name);
    bool created;
    cep_entry_t *e = cep_table_upsert(t, key, klen, cep_hash_bytes(key, klen, 0), &created);
    if (!e) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory restoring %s", t->name);
    if (!created) {
        if (t->free_fn) t->free_fn(t->free_ctx, e);
        e->data = NULL;
    }
    e->persisted = true;
    if (!t->codec.load(t->codec.ctx, e, (const char *)d.p, (size_t)(d.end - d.p))) {
        e->persisted = false;
        cep_table_remove(t, e);
        return cep_error_set(err, CEP_ERR_DECODE, NULL, "state of %s: a record does not decode", t->name);
    }
    cep_table_set_expiry(t, e, exp);
    unmark_dirty(t, e);
    return CEP_OK;
}

cep_status_t cep_store_restore_meta(cep_store_t *s, const void *id, size_t idlen, const void *val,
                                    size_t vlen, size_t *unknown, cep_error_t *err)
{
    cep_table_t *t = table_of(s, id, idlen);
    if (!t || idlen != 8) {
        if (unknown) (*unknown)++;
        return CEP_OK;
    }
    if (t->codec.load_meta && !t->codec.load_meta(t->codec.ctx, val, vlen))
        return cep_error_set(err, CEP_ERR_DECODE, NULL, "state of %s: its operator record does not decode", t->name);
    return CEP_OK;
}

/* ---- snapshots: a full checkpoint as one byte string ------------------------ */

static void snap_put(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    cep_buf_putc(ctx, 'e');
    cep_codec_put_bytes(ctx, id, idlen);
    cep_codec_put_bytes(ctx, val, vlen);
}

static void snap_meta(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    cep_buf_putc(ctx, 'm');
    cep_codec_put_bytes(ctx, id, idlen);
    cep_codec_put_bytes(ctx, val, vlen);
}

static void snap_del(void *ctx, const void *id, size_t idlen)
{
    (void)ctx, (void)id, (void)idlen; /* a full snapshot deletes nothing */
}

cep_status_t cep_store_snapshot(cep_store_t *s, cep_buf_t *out, cep_error_t *err)
{
    cep_ckpt_sink_t sink = {.put = snap_put, .del = snap_del, .meta = snap_meta, .ctx = out};
    cep_store_checkpoint(s, true, &sink, NULL);
    if (out->failed) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory writing a snapshot");
    return CEP_OK;
}

cep_status_t cep_store_restore_snapshot(cep_store_t *s, const void *p, size_t n, size_t *unknown, cep_error_t *err)
{
    cep_dec_t d = cep_codec_reader(p, n);
    while (d.p < d.end && !d.bad) {
        unsigned char kind = *d.p++;
        size_t idlen, vlen;
        const char *id = cep_codec_get_bytes(&d, &idlen);
        const char *val = cep_codec_get_bytes(&d, &vlen);
        if (d.bad || (kind != 'e' && kind != 'm')) break;
        cep_status_t st = kind == 'm' ? cep_store_restore_meta(s, id, idlen, val, vlen, unknown, err)
                                      : cep_store_restore_entry(s, id, idlen, val, vlen, unknown, err);
        if (st) return st;
    }
    if (d.bad || d.p != d.end) return cep_error_set(err, CEP_ERR_DECODE, NULL, "a snapshot that does not decode");
    return CEP_OK;
}

/* ---- moving state to a new rule set ------------------------------------------ */

static void retire(cep_store_t *s, uint64_t fp, const void *key, size_t klen, bool meta)
{
    uint32_t n = (uint32_t)(8 + klen) | (meta ? 0x80000000u : 0);
    cep_buf_put(&s->retired, &n, sizeof n);
    unsigned char b[8];
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(fp >> (56 - 8 * i));
    cep_buf_put(&s->retired, b, 8);
    if (klen) cep_buf_put(&s->retired, key, klen);
}

/* What checkpoints may hold of a table that leaves under its fingerprint. */
static void retire_table(cep_store_t *s, cep_table_t *f)
{
    if (!f->has_codec || !s->track) return;
    for (size_t i = 0; i < f->cap; i++)
        if (f->slots[i].e && f->slots[i].e->persisted)
            retire(s, f->fingerprint, f->slots[i].e->key, f->slots[i].e->klen, false);
    for (size_t at = 0; at + 4 <= f->deleted.len;) { /* removed since the last checkpoint, still held there */
        uint32_t n;
        memcpy(&n, f->deleted.data + at, sizeof n);
        retire(s, f->fingerprint, f->deleted.data + at + 4, n, false);
        at += 4 + n;
    }
    if (f->codec.save_meta) retire(s, f->fingerprint, NULL, 0, true);
}

/* Move f's entries (with their expiry buckets and change lists) and its
 * operator's scalars into the empty table t; from now on t's operator
 * frees them. rewrite: every entry is written again by the next
 * checkpoint (new bytes under a new fingerprint, or new to t's store). */
static void move_table(cep_table_t *t, cep_table_t *f, bool convert, bool rewrite, cep_buf_t *meta)
{
#define SWAP(field)                        \
    do {                                   \
        __typeof__(t->field) x = t->field; \
        t->field = f->field;               \
        f->field = x;                      \
    } while (0)
    SWAP(slots);
    SWAP(cap);
    SWAP(size);
    SWAP(tm);
    SWAP(dirty);
    SWAP(ndirty);
    SWAP(capdirty);
    SWAP(deleted);
#undef SWAP
    if (rewrite) {
        /* what was removed is gone with the old ids (or never was t's) */
        cep_buf_reset(&t->deleted);
        for (size_t i = 0; i < t->cap; i++) {
            cep_entry_t *e = t->slots[i].e;
            if (!e) continue;
            if (convert) t->codec.convert(t->codec.ctx, f->codec.ctx, e);
            e->persisted = false;
            mark_dirty(t, e);
        }
    }
    if (f->codec.save_meta && t->codec.load_meta) {
        cep_buf_reset(meta);
        f->codec.save_meta(f->codec.ctx, meta);
        t->codec.load_meta(t->codec.ctx, meta->data ? meta->data : "", meta->len);
    }
}

size_t cep_store_adopt(cep_store_t *to, cep_store_t *from, size_t *dropped)
{
    size_t moved = 0;
    if (dropped) *dropped = 0;
    cep_buf_t meta;
    cep_buf_init(&meta);
    for (cep_table_t *f = from->tables; f; f = f->next) {
        cep_table_t *t = to->tables;
        while (t && t->fingerprint != f->fingerprint) t = t->next;
        bool convert = false;
        if (!t && f->family) { /* the same state, another layout */
            t = to->tables;
            while (t && (t->family != f->family || t->size || !t->codec.convert)) t = t->next;
            convert = t != NULL;
            if (t && !t->codec.convert(t->codec.ctx, f->codec.ctx, NULL)) t = NULL;
        }
        if (!t || t->size || !f->has_codec || !t->has_codec) {
            if (dropped) *dropped += f->size;
            retire_table(to, f);
            continue;
        }
        if (convert) retire_table(to, f);
        move_table(t, f, convert, convert, &meta);
        moved += t->size;
    }
    cep_buf_free(&meta);
    return moved;
}

bool cep_table_graft(cep_table_t *to, cep_table_t *from, size_t *moved)
{
    *moved = 0;
    if (to == from || to->fingerprint != from->fingerprint || to->size || to->has_codec != from->has_codec)
        return false;
    cep_buf_t meta;
    cep_buf_init(&meta);
    /* the change lists are each store's own: they go back */
    cep_entry_t **dirty = to->dirty;
    uint32_t ndirty = to->ndirty, capdirty = to->capdirty;
    cep_buf_t deleted = to->deleted;
    move_table(to, from, false, false, &meta);
    from->dirty = to->dirty, from->ndirty = to->ndirty, from->capdirty = to->capdirty;
    from->deleted = to->deleted;
    to->dirty = dirty, to->ndirty = ndirty, to->capdirty = capdirty;
    to->deleted = deleted;
    for (size_t i = 0; i < to->cap; i++) {
        cep_entry_t *e = to->slots[i].e;
        if (!e) continue;
        e->dirty = 0;
        e->persisted = false;
        mark_dirty(to, e);
    }
    cep_buf_free(&meta);
    *moved = to->size;
    return true;
}
