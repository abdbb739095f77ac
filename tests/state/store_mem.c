/*
 * store_mem.c — the in-memory state store through its public interface:
 * upsert/get/remove/foreach, size, dirty bits, bounded expiry, and the
 * free callback called exactly once per entry.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "state/state.h"

typedef struct frees {
    int count;
    int per_value[512]; /* frees seen for data == &values[i] */
} frees_t;

static int values[512];

static void on_free(void *ctx, cep_entry_t *e)
{
    frees_t *f = ctx;
    f->count++;
    if (e->data) f->per_value[(int *)e->data - values]++;
}

static uint64_t h(const char *k)
{
    return cep_hash_bytes(k, strlen(k), 0);
}

static cep_entry_t *put(cep_table_t *t, const char *k, bool *created)
{
    return cep_table_upsert(t, k, strlen(k), h(k), created);
}

static cep_entry_t *get(cep_table_t *t, const char *k)
{
    return cep_table_get(t, k, strlen(k), h(k));
}

Test(store_mem, upsert_creates_zeroed_entry_then_finds_it)
{
    cep_store_t *s = cep_store_mem_new();
    cep_table_t *t = cep_store_table(s, 1, "rule", NULL, NULL);
    bool created = false;
    cep_entry_t *e = put(t, "alice", &created);
    cr_assert_not_null(e);
    cr_assert(created);
    cr_assert_null(e->data);
    cr_assert_not(e->dirty);
    cr_assert_eq(e->expires, INT64_MAX);
    cr_assert_eq(e->klen, 5);
    cr_assert_eq(memcmp(e->key, "alice", 5), 0);
    cr_assert_eq(e->hash, h("alice"));
    e->data = &values[0];
    cep_entry_t *again = put(t, "alice", &created);
    cr_assert_not(created);
    cr_assert_eq(again, e);
    cr_assert_eq(get(t, "alice"), e);
    cr_assert_null(get(t, "bob"));
    cr_assert_eq(cep_table_size(t), 1);
    cep_store_free(s);
}

Test(store_mem, keys_are_bytes_not_strings)
{
    cep_store_t *s = cep_store_mem_new();
    cep_table_t *t = cep_store_table(s, 1, "rule", NULL, NULL);
    cep_entry_t *a = cep_table_upsert(t, "a\0b", 3, 7, NULL);
    cep_entry_t *b = cep_table_upsert(t, "a\0c", 3, 7, NULL); /* same hash, other bytes */
    cep_entry_t *c = cep_table_upsert(t, "a", 1, 7, NULL);
    cr_assert_neq(a, b);
    cr_assert_neq(a, c);
    cr_assert_eq(cep_table_size(t), 3);
    cr_assert_eq(cep_table_get(t, "a\0c", 3, 7), b);
    cr_assert_eq(cep_table_get(t, "a", 1, 7), c);
    cr_assert_null(cep_table_get(t, "a\0b", 3, 8), "a different hash is a different key");
    cep_store_free(s);
}

Test(store_mem, tables_are_found_by_fingerprint)
{
    cep_store_t *s = cep_store_mem_new();
    frees_t f = {0};
    cep_table_t *t1 = cep_store_table(s, 0xabc, "r1", NULL, NULL);
    cep_table_t *t2 = cep_store_table(s, 0xdef, "r2", NULL, NULL);
    cr_assert_neq(t1, t2);
    put(t1, "k", NULL)->data = &values[1];
    /* a reload finds the same table (and its state) and may change the callback */
    cr_assert_eq(cep_store_table(s, 0xabc, "r1 again", on_free, &f), t1);
    cr_assert_not_null(get(t1, "k"));
    cr_assert_null(get(t2, "k"));
    cep_store_free(s);
    cr_assert_eq(f.count, 1);
    cr_assert_eq(f.per_value[1], 1);
}

Test(store_mem, grows_and_keeps_entry_pointers)
{
    cep_store_t *s = cep_store_mem_new();
    frees_t f = {0};
    cep_table_t *t = cep_store_table(s, 1, "rule", on_free, &f);
    cep_entry_t *ents[500];
    for (int i = 0; i < 500; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%d", i);
        bool created = false;
        ents[i] = put(t, k, &created);
        cr_assert(created);
        ents[i]->data = &values[i];
    }
    cr_assert_eq(cep_table_size(t), 500);
    for (int i = 0; i < 500; i++) {
        char k[16];
        snprintf(k, sizeof k, "key%d", i);
        cr_assert_eq(get(t, k), ents[i], "key%d moved", i);
        cr_assert_eq(ents[i]->data, &values[i]);
    }
    cep_store_free(s);
    cr_assert_eq(f.count, 500);
    for (int i = 0; i < 500; i++) cr_assert_eq(f.per_value[i], 1, "value %d", i);
}

Test(store_mem, remove_frees_once_and_keeps_the_rest_findable)
{
    cep_store_t *s = cep_store_mem_new();
    frees_t f = {0};
    cep_table_t *t = cep_store_table(s, 1, "rule", on_free, &f);
    /* one hash for all keys: a single probe cluster, so removal must shift */
    for (int i = 0; i < 10; i++) {
        char k[8];
        snprintf(k, sizeof k, "c%d", i);
        cep_table_upsert(t, k, strlen(k), 5, NULL)->data = &values[i];
    }
    for (int i = 0; i < 10; i += 2) {
        char k[8];
        snprintf(k, sizeof k, "c%d", i);
        cep_entry_t *e = cep_table_get(t, k, strlen(k), 5);
        cr_assert_not_null(e);
        cep_table_remove(t, e);
        cr_assert_eq(f.per_value[i], 1);
    }
    cr_assert_eq(f.count, 5);
    cr_assert_eq(cep_table_size(t), 5);
    for (int i = 0; i < 10; i++) {
        char k[8];
        snprintf(k, sizeof k, "c%d", i);
        cep_entry_t *e = cep_table_get(t, k, strlen(k), 5);
        if (i % 2) {
            cr_assert_not_null(e, "c%d lost after removals", i);
            cr_assert_eq(e->data, &values[i]);
        } else
            cr_assert_null(e, "c%d still present", i);
    }
    cep_store_free(s);
    cr_assert_eq(f.count, 10);
    for (int i = 0; i < 10; i++) cr_assert_eq(f.per_value[i], 1, "value %d", i);
}

typedef struct visit {
    int n;
    int dirty;
    int sum;
} visit_t;

static void visit_fn(void *ctx, cep_entry_t *e)
{
    visit_t *v = ctx;
    v->n++;
    v->dirty += e->dirty != 0;
    v->sum += *(int *)e->data;
}

Test(store_mem, foreach_visits_each_entry_once)
{
    cep_store_t *s = cep_store_mem_new();
    cep_table_t *t = cep_store_table(s, 1, "rule", NULL, NULL);
    for (int i = 1; i <= 40; i++) {
        char k[8];
        snprintf(k, sizeof k, "%d", i);
        values[i] = i;
        cep_entry_t *e = put(t, k, NULL);
        e->data = &values[i];
    }
    visit_t v = {0};
    cep_table_foreach(t, visit_fn, &v);
    cr_assert_eq(v.n, 40);
    cr_assert_eq(v.dirty, 0, "an untracked store keeps no dirty list");
    cr_assert_eq(v.sum, 40 * 41 / 2);
    cep_store_free(s);
}

Test(store_mem, expire_is_bounded_and_only_takes_expired)
{
    cep_store_t *s = cep_store_mem_new();
    frees_t f = {0};
    cep_table_t *t = cep_store_table(s, 1, "rule", on_free, &f);
    for (int i = 0; i < 100; i++) {
        char k[8];
        snprintf(k, sizeof k, "e%d", i);
        cep_entry_t *e = put(t, k, NULL);
        e->data = &values[i];
        cep_table_set_expiry(t, e, i < 30 ? 1000 : i < 60 ? 2000 : INT64_MAX);
    }
    /* nothing is strictly before now = 1000 */
    cr_assert_eq(cep_table_expire(t, 1000, 100), 0);
    cr_assert_eq(cep_table_size(t), 100);
    /* capped at max per call */
    cr_assert_eq(cep_table_expire(t, 1001, 7), 7);
    cr_assert_eq(cep_table_size(t), 93);
    size_t total = 7, n;
    while ((n = cep_table_expire(t, 1001, 7)) > 0) {
        cr_assert_leq(n, 7);
        total += n;
    }
    cr_assert_eq(total, 30);
    cr_assert_eq(cep_table_size(t), 70);
    cr_assert_eq(f.count, 30);
    for (int i = 0; i < 30; i++) cr_assert_eq(f.per_value[i], 1, "value %d", i);
    for (int i = 30; i < 100; i++) {
        char k[8];
        snprintf(k, sizeof k, "e%d", i);
        cr_assert_not_null(get(t, k), "e%d expired too early", i);
    }
    /* a later time takes the next group; INT64_MAX never expires */
    total = 0;
    while ((n = cep_table_expire(t, INT64_MAX, 1000)) > 0) total += n;
    cr_assert_eq(total, 30);
    cr_assert_eq(cep_table_size(t), 40);
    cep_store_free(s);
    cr_assert_eq(f.count, 100);
    for (int i = 0; i < 100; i++) cr_assert_eq(f.per_value[i], 1, "value %d", i);
}

Test(store_mem, expire_on_empty_table)
{
    cep_store_t *s = cep_store_mem_new();
    cep_table_t *t = cep_store_table(s, 1, "rule", NULL, NULL);
    cr_assert_eq(cep_table_expire(t, INT64_MAX, 10), 0);
    cr_assert_eq(cep_table_size(t), 0);
    cep_store_free(s);
    cep_store_free(NULL); /* harmless */
}

/* Expiry against a model: 400 keys get expiries from a few shared values
 * (windows) and from many distinct ones (OVER), are moved between them,
 * taken out of expiry, removed, and expired step by step; every step takes
 * exactly the entries the model says, earliest first. */
typedef struct order_check {
    int64_t last;
    int count;
    bool expiring;
} order_check_t;

static void on_free_order(void *ctx, cep_entry_t *e)
{
    order_check_t *c = ctx;
    if (!c->expiring) return;
    cr_assert_geq(e->expires, c->last, "expired out of order: %lld after %lld", (long long)e->expires,
                  (long long)c->last);
    c->last = e->expires;
    c->count++;
}

Test(store_mem, expiry_buckets_match_a_model)
{
    enum { N = 400 };
    cep_store_t *s = cep_store_mem_new();
    order_check_t oc = {INT64_MIN, 0, false};
    cep_table_t *t = cep_store_table(s, 1, "rule", on_free_order, &oc);
    int64_t model[N]; /* INT64_MAX: no expiry; INT64_MIN: not in the table */
    uint64_t rng = 12345;
    for (int i = 0; i < N; i++) model[i] = INT64_MIN;
    for (int round = 0; round < 40; round++) {
        int64_t now = 1000 + round * 100;
        for (int step = 0; step < 200; step++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            int i = (int)((rng >> 33) % N);
            char k[8];
            snprintf(k, sizeof k, "k%d", i);
            unsigned what = (unsigned)(rng >> 20) % 10;
            if (what == 0 && model[i] != INT64_MIN) { /* removed by its operator */
                cep_table_remove(t, get(t, k));
                model[i] = INT64_MIN;
                continue;
            }
            cep_entry_t *e = put(t, k, NULL);
            int64_t x = what < 6   ? now + 100 * (int64_t)((rng >> 40) % 4)  /* shared */
                        : what < 9 ? now + (int64_t)((rng >> 40) % 1000) /* its own */
                                   : INT64_MAX;
            cep_table_set_expiry(t, e, x);
            cr_assert_eq(e->expires, x);
            model[i] = x;
        }
        int want = 0;
        for (int i = 0; i < N; i++)
            if (model[i] != INT64_MIN && model[i] < now + 50) want++;
        oc = (order_check_t){INT64_MIN, 0, true};
        size_t got = 0, n;
        while ((n = cep_table_expire(t, now + 50, 13)) > 0) got += n;
        oc.expiring = false;
        cr_assert_eq(got, (size_t)want, "round %d", round);
        cr_assert_eq(oc.count, want);
        for (int i = 0; i < N; i++) {
            char k[8];
            snprintf(k, sizeof k, "k%d", i);
            if (model[i] != INT64_MIN && model[i] < now + 50) model[i] = INT64_MIN;
            cr_assert_eq(get(t, k) != NULL, model[i] != INT64_MIN, "k%d", i);
        }
    }
    cep_store_free(s);
}

Test(store_mem, sized_upsert_gives_zeroed_aligned_room_in_the_entry)
{
    cep_store_t *s = cep_store_mem_new();
    cep_table_t *t = cep_store_table(s, 1, "rule", NULL, NULL);
    bool created = false;
    cep_entry_t *e = cep_table_upsert_sized(t, "abc", 3, h("abc"), 100, &created);
    cr_assert(created);
    unsigned char *p = cep_entry_inline(e);
    cr_assert_eq((uintptr_t)p % 16, 0);
    cr_assert_geq(p, (unsigned char *)e->key + 3);
    for (int i = 0; i < 100; i++) cr_assert_eq(p[i], 0);
    memset(p, 0xab, 100); /* all of it is the entry's */
    cr_assert_eq(cep_table_upsert_sized(t, "abc", 3, h("abc"), 100, &created), e);
    cr_assert_not(created);
    cr_assert_eq(memcmp(e->key, "abc", 3), 0);
    cep_store_free(s);
}
