/*
 * arena.c — bump allocation in chunks. Compile-time structures and per-event
 * scratch live in arenas so they are freed in one call and the per-event
 * path never calls malloc once the scratch arena has warmed up.
 */
#include "base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cep_arena_cleanup {
    cep_arena_cleanup_t *next;
    void (*fn)(void *);
    void *p;
};

struct cep_arena_chunk {
    cep_arena_chunk_t *next;
    size_t size, used;
    _Alignas(16) unsigned char mem[];
};

void cep_arena_init(cep_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->cleanups = NULL;
    a->chunk_size = chunk_size ? chunk_size : 64 * 1024;
    a->total = 0;
}

void *cep_arena_alloc(cep_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    cep_arena_chunk_t *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > a->chunk_size ? n : a->chunk_size;
        c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->mem + c->used;
    c->used += n;
    a->total += n;
    return p;
}

void *cep_arena_zalloc(cep_arena_t *a, size_t n)
{
    void *p = cep_arena_alloc(a, n);
    if (p) memset(p, 0, n);
    return p;
}

char *cep_arena_strndup(cep_arena_t *a, const char *s, size_t n)
{
    char *p = cep_arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *cep_arena_strdup(cep_arena_t *a, const char *s)
{
    return cep_arena_strndup(a, s, strlen(s));
}

char *cep_arena_printf(cep_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = cep_arena_alloc(a, (size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void cep_arena_reset(cep_arena_t *a)
{
    cep_arena_chunk_t *c = a->head;
    if (!c) return;
    /* keep the most recent chunk, free the rest */
    cep_arena_chunk_t *rest = c->next;
    while (rest) {
        cep_arena_chunk_t *n = rest->next;
        free(rest);
        rest = n;
    }
    c->next = NULL;
    c->used = 0;
    a->total = 0;
}

bool cep_arena_on_free(cep_arena_t *a, void (*fn)(void *), void *p)
{
    cep_arena_cleanup_t *c = cep_arena_alloc(a, sizeof *c);
    if (!c) return false;
    c->fn = fn;
    c->p = p;
    c->next = a->cleanups;
    a->cleanups = c;
    return true;
}

void cep_arena_free(cep_arena_t *a)
{
    for (cep_arena_cleanup_t *c = a->cleanups; c; c = c->next) c->fn(c->p);
    a->cleanups = NULL;
    cep_arena_chunk_t *c = a->head;
    while (c) {
        cep_arena_chunk_t *n = c->next;
        free(c);
        c = n;
    }
    a->head = NULL;
    a->total = 0;
}
