/*
 * store_mem.c — the in-memory state store: one open-addressing hash table
 * (linear probing, backward-shift deletion) per rule, entries allocated
 * individually so pointers to them stay valid while the table grows, and a
 * min-heap of the entries that can expire, ordered by event-time expiry
 * (each entry knows its heap position, so updates and removals are
 * O(log n) and expiry pops exactly the expired entries).
 */
#include "state/state.h"

#include <stdlib.h>
#include <string.h>

struct cep_table {
    uint64_t fingerprint;
    char *name;
    cep_entry_t **slots;
    uint64_t *hashes; /* hashes[i] = slots[i]->hash: probes compare without touching entries */
    size_t cap, size;
    cep_entry_free_fn free_fn;
    void *free_ctx;
    cep_table_t *next;
    cep_entry_t **heap; /* entries with expires < INT64_MAX */
    uint32_t nheap, capheap;
};

#define NO_TIMER UINT32_MAX

static void heap_set(cep_table_t *t, uint32_t i, cep_entry_t *e)
{
    t->heap[i] = e;
    e->timer = i;
}

static void heap_up(cep_table_t *t, uint32_t i)
{
    cep_entry_t *e = t->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (t->heap[p]->expires <= e->expires) break;
        heap_set(t, i, t->heap[p]);
        i = p;
    }
    heap_set(t, i, e);
}

static void heap_down(cep_table_t *t, uint32_t i)
{
    cep_entry_t *e = t->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= t->nheap) break;
        if (c + 1 < t->nheap && t->heap[c + 1]->expires < t->heap[c]->expires) c++;
        if (t->heap[c]->expires >= e->expires) break;
        heap_set(t, i, t->heap[c]);
        i = c;
    }
    heap_set(t, i, e);
}

static void heap_remove(cep_table_t *t, cep_entry_t *e)
{
    uint32_t i = e->timer;
    if (i == NO_TIMER) return;
    e->timer = NO_TIMER;
    cep_entry_t *last = t->heap[--t->nheap];
    if (i == t->nheap) return;
    heap_set(t, i, last);
    heap_up(t, i);
    heap_down(t, last->timer);
}

void cep_table_set_expiry(cep_table_t *t, cep_entry_t *e, int64_t expires)
{
    if (e->expires == expires && (e->timer != NO_TIMER || expires == INT64_MAX)) return;
    e->expires = expires;
    if (expires == INT64_MAX) {
        heap_remove(t, e);
        return;
    }
    if (e->timer == NO_TIMER) {
        if (t->nheap == t->capheap) {
            uint32_t cap = t->capheap ? t->capheap * 2 : 64;
            cep_entry_t **h = realloc(t->heap, cap * sizeof *h);
            if (!h) return; /* out of memory: the entry lives on until removed by its operator */
            t->heap = h;
            t->capheap = cap;
        }
        heap_set(t, t->nheap++, e);
        heap_up(t, e->timer);
        return;
    }
    heap_up(t, e->timer);
    heap_down(t, e->timer);
}

struct cep_store {
    cep_table_t *tables;
};

cep_store_t *cep_store_mem_new(void)
{
    return calloc(1, sizeof(cep_store_t));
}

static void table_free(cep_table_t *t)
{
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i]) {
            if (t->free_fn) t->free_fn(t->free_ctx, t->slots[i]);
            free(t->slots[i]);
        }
    free(t->slots);
    free(t->hashes);
    free(t->heap);
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
    t->hashes = calloc(t->cap, sizeof *t->hashes);
    if (!t->slots || !t->hashes || !t->name) {
        free(t->slots);
        free(t->hashes);
        free(t->name);
        free(t);
        return NULL;
    }
    t->free_fn = free_fn;
    t->free_ctx = free_ctx;
    t->next = s->tables;
    s->tables = t;
    return t;
}

cep_entry_t *cep_table_get(cep_table_t *t, const void *key, size_t klen, uint64_t hash)
{
    size_t m = t->cap - 1;
    for (size_t i = hash & m;; i = (i + 1) & m) {
        cep_entry_t *e = t->slots[i];
        if (!e) return NULL;
        if (t->hashes[i] == hash && e->klen == klen && !memcmp(e->key, key, klen)) return e;
    }
}

static bool grow(cep_table_t *t)
{
    size_t ncap = t->cap * 2;
    cep_entry_t **ns = calloc(ncap, sizeof *ns);
    uint64_t *nh = calloc(ncap, sizeof *nh);
    if (!ns || !nh) {
        free(ns);
        free(nh);
        return false;
    }
    for (size_t i = 0; i < t->cap; i++) {
        cep_entry_t *e = t->slots[i];
        if (!e) continue;
        size_t j = e->hash & (ncap - 1);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = e;
        nh[j] = e->hash;
    }
    free(t->slots);
    free(t->hashes);
    t->slots = ns;
    t->hashes = nh;
    t->cap = ncap;
    return true;
}

cep_entry_t *cep_table_upsert(cep_table_t *t, const void *key, size_t klen, uint64_t hash,
                              bool *created)
{
    cep_entry_t *e = cep_table_get(t, key, klen, hash);
    if (e) {
        if (created) *created = false;
        return e;
    }
    if ((t->size + 1) * 4 > t->cap * 3 && !grow(t)) return NULL;
    e = calloc(1, sizeof *e + klen);
    if (!e) return NULL;
    e->hash = hash;
    e->klen = (uint32_t)klen;
    e->expires = INT64_MAX;
    e->timer = NO_TIMER;
    memcpy(e->key, key, klen);
    size_t m = t->cap - 1, i = hash & m;
    while (t->slots[i]) i = (i + 1) & m;
    t->slots[i] = e;
    t->hashes[i] = hash;
    t->size++;
    if (created) *created = true;
    return e;
}

void cep_table_remove(cep_table_t *t, cep_entry_t *e)
{
    size_t m = t->cap - 1, i = e->hash & m;
    while (t->slots[i] != e) {
        if (!t->slots[i]) return;
        i = (i + 1) & m;
    }
    heap_remove(t, e);
    if (t->free_fn) t->free_fn(t->free_ctx, e);
    free(e);
    t->slots[i] = NULL;
    t->size--;
    /* backward-shift the cluster that follows */
    for (size_t j = (i + 1) & m; t->slots[j]; j = (j + 1) & m) {
        cep_entry_t *x = t->slots[j];
        size_t home = t->hashes[j] & m;
        /* can x move into the hole at i? */
        bool move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            t->slots[i] = x;
            t->hashes[i] = t->hashes[j];
            t->slots[j] = NULL;
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
        if (t->slots[i]) fn(ctx, t->slots[i]);
}

size_t cep_table_expire(cep_table_t *t, int64_t now, size_t max)
{
    size_t removed = 0;
    while (removed < max && t->nheap && t->heap[0]->expires < now) {
        cep_table_remove(t, t->heap[0]);
        removed++;
    }
    return removed;
}
