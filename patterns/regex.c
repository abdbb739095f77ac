/*
 * regex.c — REGEXP_LIKE, REGEXP_EXTRACT(_ALL), REGEXP_REPLACE and
 * REGEXP_SPLIT_TO_ARRAY on pcre2.
 *
 * A constant pattern is compiled (and JIT-compiled) once when the rule set
 * is built; a pattern taken from a column is compiled per row into a
 * one-entry cache. Every match runs with a match limit and a depth limit:
 * hitting one is a runtime error for that row, never a stall.
 *
 * Compiled patterns hold pcre2 memory outside the rule-set arena; an arena
 * cleanup releases them with the rule set, so nothing leaks across reloads.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "patterns/regex.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

enum { MATCH_LIMIT = 100000, DEPTH_LIMIT = 1000 };

typedef struct cep_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
} cep_regex_t;

static cep_regex_t *regex_compile(cep_arena_t *a, const char *pat, size_t n, const cep_pos_t *pos,
                                  cep_error_t *err)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pat, n, PCRE2_UTF, &ec, &eo, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof msg);
        cep_error_set(err, CEP_ERR_SEMANTIC, pos, "invalid regular expression at offset %zu: %s",
                      (size_t)eo, (const char *)msg);
        return NULL;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* best effort: falls back to the interpreter */
    cep_regex_t *r = a ? cep_arena_zalloc(a, sizeof *r) : calloc(1, sizeof *r);
    if (!r) {
        pcre2_code_free(code);
        return NULL;
    }
    r->code = code;
    r->md = pcre2_match_data_create_from_pattern(code, NULL);
    r->mctx = pcre2_match_context_create(NULL);
    if (r->mctx) {
        pcre2_set_match_limit(r->mctx, MATCH_LIMIT);
        pcre2_set_depth_limit(r->mctx, DEPTH_LIMIT);
    }
    return r;
}

static void regex_release(cep_regex_t *r)
{
    if (!r) return;
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mctx);
    pcre2_code_free(r->code);
}

static void release_cb(void *p)
{
    regex_release(p);
}

/* Per-call-site state. */
typedef struct site {
    cep_regex_t *fixed; /* compiled at build time, or NULL */
} site_t;

static void *prepare(cep_arena_t *a, const cep_value_t *pat, const cep_pos_t *pos, cep_error_t *err)
{
    site_t *s = cep_arena_zalloc(a, sizeof *s);
    if (!s) return NULL;
    if (pat && pat->kind == CEP_K_STRING) {
        s->fixed = regex_compile(a, pat->u.s.p, pat->u.s.n, pos, err);
        if (!s->fixed) return NULL;
        if (!cep_arena_on_free(a, release_cb, s->fixed)) {
            regex_release(s->fixed);
            return NULL;
        }
    }
    return s;
}

/* REGEXP_LIKE(string, pattern) */
void *cep_regex_prepare_like(cep_arena_t *a, const cep_value_t *const *consts, int n,
                             const cep_pos_t *pos, cep_error_t *err)
{
    (void)n;
    return prepare(a, consts[1], pos, err);
}

/* REGEXP_EXTRACT(pattern, string[, group]) */
void *cep_regex_prepare_extract(cep_arena_t *a, const cep_value_t *const *consts, int n,
                                const cep_pos_t *pos, cep_error_t *err)
{
    (void)n;
    return prepare(a, consts[0], pos, err);
}

/* REGEXP_REPLACE(string, pattern, replacement), REGEXP_SPLIT_TO_ARRAY(string, pattern) */
void *cep_regex_prepare_replace(cep_arena_t *a, const cep_value_t *const *consts, int n,
                                const cep_pos_t *pos, cep_error_t *err)
{
    (void)n;
    return prepare(a, consts[1], pos, err);
}

static bool fail(cep_eval_t *ctx, const char *msg)
{
    ctx->failed = true;
    if (ctx->err) cep_error_set(ctx->err, CEP_ERR_RUNTIME, NULL, "%s", msg);
    return false;
}

/* Run a match; returns rc (>0 match, PCRE2_ERROR_NOMATCH, or error). */
static int run(cep_regex_t *r, const cep_value_t *s, size_t start)
{
    return pcre2_match(r->code, (PCRE2_SPTR)s->u.s.p, s->u.s.n, start, 0, r->md, r->mctx);
}

/* Get the pattern for this row: the fixed one, or one compiled now. */
static cep_regex_t *pattern(cep_eval_t *ctx, const site_t *s, const cep_value_t *pat, bool *temp)
{
    *temp = false;
    if (s && s->fixed) return s->fixed;
    cep_regex_t *r = regex_compile(NULL, pat->u.s.p, pat->u.s.n, NULL, ctx->err);
    if (!r) {
        ctx->failed = true;
        return NULL;
    }
    *temp = true;
    return r;
}

static void done(cep_regex_t *r, bool temp)
{
    if (temp) {
        regex_release(r);
        free(r);
    }
}

bool cep_regex_like_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out)
{
    (void)n;
    bool temp;
    cep_regex_t *r = pattern(ctx, st, &args[1], &temp);
    if (!r) return false;
    int rc = run(r, &args[0], 0);
    done(r, temp);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) return fail(ctx, "REGEXP_LIKE: match limit exceeded");
    *out = cep_v_bool(rc >= 0);
    return true;
}

static cep_value_t group_value(cep_regex_t *r, const cep_value_t *s, int group)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    uint32_t count = pcre2_get_ovector_count(r->md);
    if (group < 0 || (uint32_t)group >= count || ov[2 * group] == PCRE2_UNSET) return cep_null();
    return cep_v_str(s->u.s.p + ov[2 * group], ov[2 * group + 1] - ov[2 * group]);
}

bool cep_regex_extract_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out)
{
    bool temp;
    cep_regex_t *r = pattern(ctx, st, &args[0], &temp);
    if (!r) return false;
    int group = n > 2 ? (int)args[2].u.i : 0;
    int rc = run(r, &args[1], 0);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        done(r, temp);
        return fail(ctx, "REGEXP_EXTRACT: match limit exceeded");
    }
    *out = rc >= 0 ? group_value(r, &args[1], group) : cep_null();
    done(r, temp);
    return true;
}

bool cep_regex_extract_all_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n,
                                cep_value_t *out)
{
    static const cep_type_t arr = {.kind = CEP_K_ARRAY, .elem = &cep_type_string};
    bool temp;
    cep_regex_t *r = pattern(ctx, st, &args[0], &temp);
    if (!r) return false;
    int group = n > 2 ? (int)args[2].u.i : 0;
    cep_value_t items[512];
    uint32_t k = 0;
    size_t start = 0;
    while (start <= args[1].u.s.n && k < CEP_ARRAY_LEN(items)) {
        int rc = run(r, &args[1], start);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            done(r, temp);
            return fail(ctx, "REGEXP_EXTRACT_ALL: match limit exceeded");
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        items[k++] = group_value(r, &args[1], group);
        start = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
    }
    done(r, temp);
    cep_list_t *l = cep_arena_alloc(ctx->scratch, sizeof *l + k * sizeof(cep_value_t));
    if (!l) return fail(ctx, "out of memory");
    l->type = &arr;
    l->n = k;
    memcpy(l->v, items, k * sizeof(cep_value_t));
    out->kind = CEP_K_ARRAY;
    out->u.l = l;
    return true;
}

bool cep_regex_replace_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out)
{
    (void)n;
    bool temp;
    cep_regex_t *r = pattern(ctx, st, &args[1], &temp);
    if (!r) return false;
    PCRE2_SIZE outlen = (PCRE2_SIZE)args[0].u.s.n * 2 + args[2].u.s.n * 4 + 64;
    for (int attempt = 0; attempt < 4; attempt++) {
        PCRE2_UCHAR *buf = cep_arena_alloc(ctx->scratch, outlen + 1);
        if (!buf) break;
        PCRE2_SIZE len = outlen;
        int rc = pcre2_substitute(r->code, (PCRE2_SPTR)args[0].u.s.p, args[0].u.s.n, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH,
                                  r->md, r->mctx, (PCRE2_SPTR)args[2].u.s.p, args[2].u.s.n, buf,
                                  &len);
        if (rc >= 0) {
            done(r, temp);
            *out = cep_v_str((const char *)buf, len);
            return true;
        }
        if (rc != PCRE2_ERROR_NOMEMORY) break;
        outlen = len + 1;
    }
    done(r, temp);
    return fail(ctx, "REGEXP_REPLACE failed");
}

bool cep_regex_split_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out)
{
    (void)n;
    static const cep_type_t arr = {.kind = CEP_K_ARRAY, .elem = &cep_type_string};
    bool temp;
    cep_regex_t *r = pattern(ctx, st, &args[1], &temp);
    if (!r) return false;
    cep_value_t items[512];
    uint32_t k = 0;
    size_t start = 0, piece = 0;
    while (start <= args[0].u.s.n && k + 1 < CEP_ARRAY_LEN(items)) {
        int rc = run(r, &args[0], start);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            done(r, temp);
            return fail(ctx, "REGEXP_SPLIT_TO_ARRAY: match limit exceeded");
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        if (ov[1] == ov[0]) {
            start = ov[1] + 1;
            continue;
        }
        items[k++] = cep_v_str(args[0].u.s.p + piece, ov[0] - piece);
        piece = ov[1];
        start = ov[1];
    }
    items[k++] = cep_v_str(args[0].u.s.p + piece, args[0].u.s.n - piece);
    done(r, temp);
    cep_list_t *l = cep_arena_alloc(ctx->scratch, sizeof *l + k * sizeof(cep_value_t));
    if (!l) return fail(ctx, "out of memory");
    l->type = &arr;
    l->n = k;
    memcpy(l->v, items, k * sizeof(cep_value_t));
    out->kind = CEP_K_ARRAY;
    out->u.l = l;
    return true;
}
