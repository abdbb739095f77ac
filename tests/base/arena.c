/*
 * arena.c — bump allocation: alignment, copies, cleanups newest first,
 * reset keeping one chunk.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "base/base.h"

Test(arena, allocations_are_16_byte_aligned)
{
    cep_arena_t a;
    cep_arena_init(&a, 256);
    size_t sizes[] = {1, 3, 16, 17, 5, 100, 1000, 7};
    for (size_t i = 0; i < CEP_ARRAY_LEN(sizes); i++) {
        void *p = cep_arena_alloc(&a, sizes[i]);
        cr_assert_not_null(p);
        cr_assert_eq((uintptr_t)p % 16, 0, "allocation %zu of %zu bytes at %p", i, sizes[i], p);
    }
    cep_arena_free(&a);
}

Test(arena, total_counts_rounded_bytes)
{
    cep_arena_t a;
    cep_arena_init(&a, 0);
    cr_assert_eq(a.chunk_size, 64 * 1024);
    cep_arena_alloc(&a, 1);
    cep_arena_alloc(&a, 17);
    cr_assert_eq(a.total, 16 + 32);
    cep_arena_free(&a);
    cr_assert_eq(a.total, 0);
    cr_assert_null(a.head);
}

Test(arena, allocations_do_not_overlap_across_chunks)
{
    cep_arena_t a;
    cep_arena_init(&a, 64);
    unsigned char *p[20];
    for (int i = 0; i < 20; i++) {
        p[i] = cep_arena_alloc(&a, 40); /* 48 after rounding: one per chunk */
        memset(p[i], i, 40);
    }
    unsigned char *big = cep_arena_alloc(&a, 1000); /* larger than a chunk */
    memset(big, 0xee, 1000);
    for (int i = 0; i < 20; i++)
        for (int j = 0; j < 40; j++) cr_assert_eq(p[i][j], i);
    cep_arena_free(&a);
}

Test(arena, zalloc_zeroes)
{
    cep_arena_t a;
    cep_arena_init(&a, 128);
    unsigned char *p = cep_arena_alloc(&a, 64);
    memset(p, 0xff, 64);
    cep_arena_reset(&a); /* the same memory comes back dirty */
    unsigned char *z = cep_arena_zalloc(&a, 64);
    cr_assert_eq(z, p);
    for (int i = 0; i < 64; i++) cr_assert_eq(z[i], 0);
    cep_arena_free(&a);
}

Test(arena, strdup_and_strndup_copy)
{
    cep_arena_t a;
    cep_arena_init(&a, 0);
    char src[] = "hello world";
    char *d = cep_arena_strdup(&a, src);
    char *n = cep_arena_strndup(&a, src, 5);
    char *e = cep_arena_strdup(&a, "");
    src[0] = 'J';
    cr_assert_str_eq(d, "hello world");
    cr_assert_str_eq(n, "hello");
    cr_assert_str_eq(e, "");
    cr_assert_neq(d, src);
    cep_arena_free(&a);
}

Test(arena, printf_formats)
{
    cep_arena_t a;
    cep_arena_init(&a, 16); /* smaller than the result: needs its own chunk */
    char *s = cep_arena_printf(&a, "%s-%d-%05.1f", "rule", 42, 3.14159);
    cr_assert_str_eq(s, "rule-42-003.1");
    char *t = cep_arena_printf(&a, "%0200d", 7);
    cr_assert_eq(strlen(t), 200);
    cr_assert_eq(t[199], '7');
    cr_assert_eq(t[0], '0');
    cep_arena_free(&a);
}

typedef struct trace {
    char order[16];
    int n;
} trace_t;

typedef struct tag {
    trace_t *t;
    char name;
} tag_t;

static void record(void *p)
{
    tag_t *g = p;
    g->t->order[g->t->n++] = g->name;
}

Test(arena, on_free_cleanups_run_newest_first_once)
{
    trace_t t = {{0}, 0};
    tag_t tags[3] = {{&t, 'a'}, {&t, 'b'}, {&t, 'c'}};
    cep_arena_t a;
    cep_arena_init(&a, 64);
    for (int i = 0; i < 3; i++) {
        cr_assert(cep_arena_on_free(&a, record, &tags[i]));
        cep_arena_alloc(&a, 48); /* spread cleanups over chunks */
    }
    cr_assert_eq(t.n, 0, "cleanups must not run before free");
    cep_arena_free(&a);
    cr_assert_eq(t.n, 3);
    cr_assert_str_eq(t.order, "cba");
    cep_arena_free(&a); /* a second free is harmless and runs nothing */
    cr_assert_eq(t.n, 3);
}

Test(arena, reset_keeps_newest_chunk_and_zeroes_total)
{
    cep_arena_t a;
    cep_arena_init(&a, 64);
    cep_arena_alloc(&a, 48);
    cep_arena_alloc(&a, 48);
    void *last = cep_arena_alloc(&a, 48);
    cr_assert_eq(a.total, 144);
    cep_arena_reset(&a);
    cr_assert_eq(a.total, 0);
    cr_assert_not_null(a.head);
    /* the kept chunk is reused from its start */
    cr_assert_eq(cep_arena_alloc(&a, 8), last);
    cep_arena_free(&a);
}

Test(arena, reset_of_empty_arena_is_noop)
{
    cep_arena_t a;
    cep_arena_init(&a, 64);
    cep_arena_reset(&a);
    cr_assert_null(a.head);
    cr_assert_not_null(cep_arena_alloc(&a, 1));
    cep_arena_free(&a);
}
