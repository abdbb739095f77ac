/*
 * store_mem.c — the in-memory state store: one open-addressing hash table
 * (linear probing, backward-shift deletion) per rule, entries allocated
 * individually so pointers to them stay valid while the table grows.
 */
#include "state/state.h"

#include <stdlib.h>
#include <string.h>

struct cep_table {
    uint64_t fingerprint;
    char *name;
    cep_entry_t **slots;
    size_t cap, size;
    size_t expire_cursor;
    cep_entry_free_fn free_fn;
    void *free_ctx;
    cep_table_t *next;
};

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
    if (!t->slots || !t->name) {
        free(t->slots);
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
        if (e->hash == hash && e->klen == klen && !memcmp(e->key, key, klen)) return e;
    }
}

static bool grow(cep_table_t *t)
{
    size_t ncap = t->cap * 2;
    cep_entry_t **ns = calloc(ncap, sizeof *ns);
    if (!ns) return false;
    for (size_t i = 0; i < t->cap; i++) {
        cep_entry_t *e = t->slots[i];
        if (!e) continue;
        size_t j = e->hash & (ncap - 1);
        while (ns[j]) j = (j + 1) & (ncap - 1);
        ns[j] = e;
    }
    free(t->slots);
    t->slots = ns;
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
    memcpy(e->key, key, klen);
    size_t m = t->cap - 1, i = hash & m;
    while (t->slots[i]) i = (i + 1) & m;
    t->slots[i] = e;
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
    if (t->free_fn) t->free_fn(t->free_ctx, e);
    free(e);
    t->slots[i] = NULL;
    t->size--;
    /* backward-shift the cluster that follows */
    for (size_t j = (i + 1) & m; t->slots[j]; j = (j + 1) & m) {
        cep_entry_t *x = t->slots[j];
        size_t home = x->hash & m;
        /* can x move into the hole at i? */
        bool move = (i <= j) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            t->slots[i] = x;
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
    size_t removed = 0, visited = 0;
    while (visited < t->cap && removed < max && t->size) {
        size_t i = t->expire_cursor++ & (t->cap - 1);
        visited++;
        cep_entry_t *e = t->slots[i];
        if (e && e->expires < now) {
            cep_table_remove(t, e);
            removed++;
            t->expire_cursor--; /* the slot may now hold a shifted entry */
        }
    }
    return removed;
}
