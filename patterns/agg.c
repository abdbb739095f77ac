/*
 * agg.c — aggregate accumulators with ksqlDB's semantics: NULL inputs are
 * skipped (except COUNT(*) and the *_BY_OFFSET functions told not to
 * ignore them), MIN/MAX over only NULLs give NULL, AVG is a DOUBLE,
 * LATEST/EARLIEST follow arrival order, COLLECT_SET keeps first-seen order,
 * TOPK sorts descending.
 */
#include "patterns/agg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool push_item(cep_acc_t *a, const cep_value_t *v, uint64_t seq, bool with_seq)
{
    if (a->nitems == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 4;
        cep_value_t *n = realloc(a->items, cap * sizeof *n);
        if (!n) return false;
        a->items = n;
        if (with_seq) {
            uint64_t *s = realloc(a->seqs, cap * sizeof *s);
            if (!s) return false;
            a->seqs = s;
        }
        a->cap = cap;
    }
    a->items[a->nitems] = cep_value_clone(v);
    if (with_seq) a->seqs[a->nitems] = seq;
    a->nitems++;
    return true;
}

static void remove_item(cep_acc_t *a, uint32_t i)
{
    cep_value_free_owned(&a->items[i]);
    memmove(&a->items[i], &a->items[i + 1], (a->nitems - i - 1) * sizeof *a->items);
    if (a->seqs) memmove(&a->seqs[i], &a->seqs[i + 1], (a->nitems - i - 1) * sizeof *a->seqs);
    a->nitems--;
}

/* ---- COUNT_DISTINCT: a set of 64-bit fingerprints ----------------------
 *
 * The count needs no values, only which are the same: the set holds one
 * fingerprint per distinct value (in seqs, nitems of them; items unused).
 * Integers, dates and times map one to one (a bijective mix), so their
 * counts are exact; strings, doubles and composites hash to 64 bits, so a
 * wrong count needs two different values of one group and window with
 * the same 64-bit hash. No allocation per value, and a set is one block:
 * what made COUNT_DISTINCT the costliest aggregate. */

static uint64_t fingerprint(const cep_value_t *v)
{
    switch (v->kind) {
    case CEP_K_STRING:
    case CEP_K_BYTES: return cep_hash_bytes(v->u.s.p, v->u.s.n, 0x5d);
    case CEP_K_BOOLEAN: return v->u.b;
    case CEP_K_DOUBLE: {
        double d = v->u.d;
        if (d == 0) d = 0; /* -0.0 counts as 0.0 */
        if (isnan(d)) d = NAN; /* and every NaN as one */
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        return cep_hash_mix(bits);
    }
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_DECIMAL: /* one column, one scale */
    case CEP_K_DATE:
    case CEP_K_TIME:
    case CEP_K_TIMESTAMP: return cep_hash_mix((uint64_t)v->u.i);
    default: return cep_value_hash(v, 0x5e);
    }
}

static int64_t fp_find(const cep_acc_t *a, uint64_t fp)
{
    for (uint32_t i = 0; i < a->nitems; i++)
        if (a->seqs[i] == fp) return i;
    return -1;
}

static void fp_insert(cep_acc_t *a, uint64_t fp)
{
    if (fp_find(a, fp) >= 0) return;
    if (a->nitems == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 4;
        uint64_t *n = realloc(a->seqs, cap * sizeof *n);
        if (!n) return;
        a->seqs = n;
        a->cap = cap;
    }
    a->seqs[a->nitems++] = fp;
}

static void fp_remove(cep_acc_t *a, uint64_t fp)
{
    int64_t i = fp_find(a, fp);
    if (i >= 0) a->seqs[i] = a->seqs[--a->nitems];
}

static bool contains(const cep_acc_t *a, const cep_value_t *v)
{
    if (v->kind == CEP_K_STRING || v->kind == CEP_K_BYTES) { /* lengths first: the bytes are apart */
        for (uint32_t i = 0; i < a->nitems; i++) {
            const cep_value_t *x = &a->items[i];
            if (x->kind == v->kind && x->u.s.n == v->u.s.n && (!v->u.s.n || !memcmp(x->u.s.p, v->u.s.p, v->u.s.n)))
                return true;
        }
        return false;
    }
    for (uint32_t i = 0; i < a->nitems; i++)
        if (a->items[i].kind == v->kind && cep_value_eq(&a->items[i], v)) return true;
        else if (a->items[i].kind == CEP_K_NULL && v->kind == CEP_K_NULL) return true;
    return false;
}

static void set_v(cep_acc_t *a, const cep_value_t *v, uint64_t seq)
{
    if (a->has_v) cep_value_free_owned(&a->v);
    a->v = cep_value_clone(v);
    a->seq = seq;
    a->has_v = true;
}

/* TOPK keeps the k largest, descending. */
static void topk_insert(const cep_aggspec_t *s, cep_acc_t *a, const cep_value_t *v,
                        const cep_value_t *v2, bool distinct)
{
    if (v->kind == CEP_K_NULL) return;
    if (distinct && contains(a, v)) return;
    cep_value_t item = *v;
    cep_value_t pair[2];
    cep_list_t *tmp = NULL;
    if (s->arg2) {
        tmp = malloc(sizeof *tmp + 2 * sizeof(cep_value_t));
        if (!tmp) return;
        tmp->type = s->type->elem;
        tmp->n = 2;
        pair[0] = *v;
        pair[1] = v2 ? *v2 : cep_null();
        memcpy(tmp->v, pair, sizeof pair);
        item.kind = CEP_K_STRUCT;
        item.u.l = tmp;
    }
    if (!push_item(a, &item, 0, false)) {
        free(tmp);
        return;
    }
    free(tmp);
    /* insertion sort, descending by the sort value */
    for (uint32_t i = a->nitems - 1; i > 0; i--) {
        const cep_value_t *x = &a->items[i], *y = &a->items[i - 1];
        const cep_value_t *kx = x->kind == CEP_K_STRUCT ? &x->u.l->v[0] : x;
        const cep_value_t *ky = y->kind == CEP_K_STRUCT ? &y->u.l->v[0] : y;
        if (cep_value_cmp(kx, ky) <= 0) break;
        cep_value_t t = a->items[i];
        a->items[i] = a->items[i - 1];
        a->items[i - 1] = t;
    }
    while (a->nitems > (uint32_t)s->n) remove_item(a, a->nitems - 1);
}

void cep_acc_add(const cep_aggspec_t *s, cep_acc_t *a, const cep_value_t *value,
                 const cep_value_t *value2, uint64_t seq)
{
    static const cep_value_t nullv = {0};
    if (!value) value = &nullv;
    bool isnull = value->kind == CEP_K_NULL;
    switch (s->kind) {
    case AGG_COUNT:
        if (s->count_star || !isnull) a->n++;
        break;
    case AGG_COUNT_DISTINCT:
        if (!isnull) fp_insert(a, fingerprint(value));
        break;
    case AGG_SUM:
    case AGG_AVG:
        if (isnull) break;
        a->n++;
        if (s->type->kind == CEP_K_DOUBLE || s->kind == AGG_AVG)
            a->sum.d += cep_value_as_double(value);
        else if (s->type->kind == CEP_K_DECIMAL) {
            cep_value_t c = cep_value_cast_num(value, s->type);
            a->sum.i += c.u.i;
        } else
            a->sum.i += value->u.i;
        break;
    case AGG_MIN:
    case AGG_MAX:
        if (isnull) break;
        if (!a->has_v) set_v(a, value, seq);
        else {
            int c = cep_value_cmp(value, &a->v);
            if ((s->kind == AGG_MIN && c < 0) || (s->kind == AGG_MAX && c > 0)) set_v(a, value, seq);
        }
        break;
    case AGG_LATEST:
    case AGG_EARLIEST:
        if (isnull && s->ignore_nulls) break;
        if (!s->n_given) {
            if (s->kind == AGG_LATEST || !a->has_v) set_v(a, value, seq);
        } else {
            if (s->kind == AGG_EARLIEST && a->nitems >= (uint32_t)s->n) break;
            push_item(a, value, seq, true);
            if (s->kind == AGG_LATEST && a->nitems > (uint32_t)s->n) remove_item(a, 0);
        }
        break;
    case AGG_COLLECT_LIST:
        if (s->n > 0 && a->nitems >= (uint32_t)s->n) break;
        push_item(a, value, seq, false);
        break;
    case AGG_COLLECT_SET:
        if (s->n > 0 && a->nitems >= (uint32_t)s->n) break;
        if (!contains(a, value)) push_item(a, value, seq, false);
        break;
    case AGG_TOPK: topk_insert(s, a, value, value2, false); break;
    case AGG_TOPKDISTINCT: topk_insert(s, a, value, value2, true); break;
    default: break;
    }
}

void cep_acc_retract(const cep_aggspec_t *s, cep_acc_t *a, const cep_value_t *value,
                     const cep_value_t *value2)
{
    static const cep_value_t nullv = {0};
    (void)value2;
    if (!value) value = &nullv;
    bool isnull = value->kind == CEP_K_NULL;
    switch (s->kind) {
    case AGG_COUNT:
        if (s->count_star || !isnull) a->n--;
        break;
    case AGG_SUM:
    case AGG_AVG:
        if (isnull) break;
        a->n--;
        if (s->type->kind == CEP_K_DOUBLE || s->kind == AGG_AVG)
            a->sum.d -= cep_value_as_double(value);
        else if (s->type->kind == CEP_K_DECIMAL)
            a->sum.i -= cep_value_cast_num(value, s->type).u.i;
        else
            a->sum.i -= value->u.i;
        break;
    case AGG_COUNT_DISTINCT:
        if (!isnull) fp_remove(a, fingerprint(value));
        break;
    case AGG_COLLECT_LIST:
    case AGG_COLLECT_SET:
        for (uint32_t i = 0; i < a->nitems; i++)
            if ((a->items[i].kind == CEP_K_NULL && isnull) ||
                (!isnull && a->items[i].kind != CEP_K_NULL && cep_value_eq(&a->items[i], value))) {
                remove_item(a, i);
                break;
            }
        break;
    default: break; /* MIN/MAX/LATEST cannot be undone exactly; ksqlDB keeps them */
    }
}

void cep_acc_merge(const cep_aggspec_t *s, cep_acc_t *into, cep_acc_t *from)
{
    switch (s->kind) {
    case AGG_COUNT: into->n += from->n; break;
    case AGG_SUM:
    case AGG_AVG:
        into->n += from->n;
        if (s->type->kind == CEP_K_DOUBLE || s->kind == AGG_AVG) into->sum.d += from->sum.d;
        else into->sum.i += from->sum.i;
        break;
    case AGG_MIN:
    case AGG_MAX:
        if (from->has_v) cep_acc_add(s, into, &from->v, NULL, from->seq);
        break;
    case AGG_LATEST:
    case AGG_EARLIEST:
        if (!s->n_given) {
            if (from->has_v &&
                (!into->has_v || (s->kind == AGG_LATEST ? from->seq > into->seq : from->seq < into->seq)))
                set_v(into, &from->v, from->seq);
        } else {
            /* merge by arrival sequence, keep n */
            for (uint32_t i = 0; i < from->nitems; i++) push_item(into, &from->items[i], from->seqs[i], true);
            for (uint32_t i = 1; i < into->nitems; i++)
                for (uint32_t k = i; k > 0 && into->seqs[k] < into->seqs[k - 1]; k--) {
                    cep_value_t t = into->items[k];
                    into->items[k] = into->items[k - 1];
                    into->items[k - 1] = t;
                    uint64_t ts = into->seqs[k];
                    into->seqs[k] = into->seqs[k - 1];
                    into->seqs[k - 1] = ts;
                }
            if (s->kind == AGG_LATEST)
                while (into->nitems > (uint32_t)s->n) remove_item(into, 0);
            else
                while (into->nitems > (uint32_t)s->n) remove_item(into, into->nitems - 1);
        }
        break;
    case AGG_COLLECT_LIST:
        for (uint32_t i = 0; i < from->nitems; i++)
            if (s->n <= 0 || into->nitems < (uint32_t)s->n) push_item(into, &from->items[i], 0, false);
        break;
    case AGG_COUNT_DISTINCT:
        for (uint32_t i = 0; i < from->nitems; i++) fp_insert(into, from->seqs[i]);
        break;
    case AGG_COLLECT_SET:
        for (uint32_t i = 0; i < from->nitems; i++)
            if (!contains(into, &from->items[i]) && (s->n <= 0 || into->nitems < (uint32_t)s->n))
                push_item(into, &from->items[i], 0, false);
        break;
    case AGG_TOPK:
    case AGG_TOPKDISTINCT:
        for (uint32_t i = 0; i < from->nitems; i++) {
            const cep_value_t *x = &from->items[i];
            if (x->kind == CEP_K_STRUCT)
                topk_insert(s, into, &x->u.l->v[0], &x->u.l->v[1], s->kind == AGG_TOPKDISTINCT);
            else
                topk_insert(s, into, x, NULL, s->kind == AGG_TOPKDISTINCT);
        }
        break;
    default: break;
    }
    cep_acc_free(from);
}

static cep_value_t list_of(const cep_aggspec_t *s, const cep_value_t *items, uint32_t n, cep_arena_t *arena)
{
    cep_list_t *l = cep_arena_alloc(arena, sizeof *l + n * sizeof(cep_value_t));
    if (!l) return cep_null();
    l->type = s->type;
    l->n = n;
    if (n) memcpy(l->v, items, n * sizeof(cep_value_t));
    cep_value_t v = {.kind = CEP_K_ARRAY};
    v.u.l = l;
    return v;
}

cep_value_t cep_acc_result(const cep_aggspec_t *s, const cep_acc_t *a, cep_arena_t *arena)
{
    switch (s->kind) {
    case AGG_COUNT: return cep_v_int(CEP_K_BIGINT, a->n);
    case AGG_COUNT_DISTINCT: return cep_v_int(CEP_K_BIGINT, a->nitems);
    case AGG_SUM:
        if (s->type->kind == CEP_K_DOUBLE) return cep_v_double(a->sum.d);
        if (s->type->kind == CEP_K_DECIMAL) {
            cep_value_t v = cep_v_int(CEP_K_DECIMAL, a->sum.i);
            v.scale = s->type->scale;
            return v;
        }
        return cep_v_int(s->type->kind, s->type->kind == CEP_K_INT ? (int32_t)a->sum.i : a->sum.i);
    case AGG_AVG: return a->n ? cep_v_double(a->sum.d / (double)a->n) : cep_null();
    case AGG_MIN:
    case AGG_MAX: return a->has_v ? a->v : cep_null();
    case AGG_LATEST:
    case AGG_EARLIEST:
        if (!s->n_given) return a->has_v ? a->v : cep_null();
        return list_of(s, a->items, a->nitems, arena);
    case AGG_COLLECT_LIST:
    case AGG_COLLECT_SET:
    case AGG_TOPK:
    case AGG_TOPKDISTINCT: return list_of(s, a->items, a->nitems, arena);
    default: return cep_null();
    }
}

void cep_acc_free(cep_acc_t *a)
{
    if (a->has_v) cep_value_free_owned(&a->v);
    for (uint32_t i = 0; a->items && i < a->nitems; i++) cep_value_free_owned(&a->items[i]);
    free(a->items);
    free(a->seqs);
    memset(a, 0, sizeof *a);
}

/* Indexed by kind, so a new aggregate cannot go unnamed (and undocumented:
 * tests/patterns/grammar.c checks every name against docs/GRAMMAR.md). */
static const char *const agg_names[] = {
    [AGG_COUNT] = "COUNT",
    [AGG_COUNT_DISTINCT] = "COUNT_DISTINCT",
    [AGG_SUM] = "SUM",
    [AGG_MIN] = "MIN",
    [AGG_MAX] = "MAX",
    [AGG_AVG] = "AVG",
    [AGG_LATEST] = "LATEST_BY_OFFSET",
    [AGG_EARLIEST] = "EARLIEST_BY_OFFSET",
    [AGG_COLLECT_LIST] = "COLLECT_LIST",
    [AGG_COLLECT_SET] = "COLLECT_SET",
    [AGG_TOPK] = "TOPK",
    [AGG_TOPKDISTINCT] = "TOPKDISTINCT",
};
_Static_assert(CEP_ARRAY_LEN(agg_names) == AGG_KIND_COUNT, "aggregate names");

const char *cep_agg_kind_name(cep_agg_kind_t kind)
{
    return (unsigned)kind < AGG_KIND_COUNT ? agg_names[kind] : NULL;
}

/* ---- checkpoints ----------------------------------------------------------- */

/* The type of what an accumulator keeps: TOPK with a second column keeps
 * (value, other) structs, everything else values of the argument. */
static const cep_type_t *item_type(const cep_aggspec_t *s)
{
    return s->arg2 && s->type ? s->type->elem : s->arg_type;
}

void cep_acc_save(const cep_aggspec_t *s, const cep_acc_t *a, cep_buf_t *out)
{
    cep_codec_put_i64(out, a->n);
    cep_codec_put_i64(out, a->sum.i); /* the union's bits: an int64 or a double */
    cep_codec_put_u64(out, a->has_v);
    if (a->has_v) {
        cep_codec_put_value(out, &a->v);
        cep_codec_put_u64(out, a->seq);
    }
    cep_codec_put_u64(out, a->nitems);
    if (s->kind == AGG_COUNT_DISTINCT) { /* 2: fingerprints only */
        cep_codec_put_u64(out, 2);
        for (uint32_t i = 0; i < a->nitems; i++) cep_codec_put_u64(out, a->seqs[i]);
        return;
    }
    cep_codec_put_u64(out, a->seqs != NULL);
    for (uint32_t i = 0; i < a->nitems; i++) {
        cep_codec_put_value(out, &a->items[i]);
        if (a->seqs) cep_codec_put_u64(out, a->seqs[i]);
    }
}

bool cep_acc_load(const cep_aggspec_t *s, cep_acc_t *a, cep_dec_t *d)
{
    memset(a, 0, sizeof *a);
    a->n = cep_codec_get_i64(d);
    a->sum.i = cep_codec_get_i64(d);
    if (cep_codec_get_bool(d)) {
        a->v = cep_codec_get_value(d, item_type(s));
        a->seq = cep_codec_get_u64(d);
        a->has_v = true;
    }
    /* form: 0 values, 1 values with sequences, 2 fingerprints (COUNT_DISTINCT;
     * its older checkpoints hold values, turned into fingerprints below) */
    uint64_t n = cep_codec_get_u64(d), form = cep_codec_get_u64(d);
    bool distinct = s->kind == AGG_COUNT_DISTINCT, with_seq = form == 1;
    if (d->bad || n > (uint64_t)(d->end - d->p) || form > 2 || (form == 2 && !distinct) || (form == 1 && distinct)) {
        d->bad = true;
        return false;
    }
    if (form == 2) {
        for (uint64_t i = 0; i < n && !d->bad; i++) fp_insert(a, cep_codec_get_u64(d));
        return !d->bad && a->nitems == n;
    }
    if (n) {
        a->items = calloc(n, sizeof *a->items);
        a->seqs = with_seq ? calloc(n, sizeof *a->seqs) : NULL;
        if (!a->items || (with_seq && !a->seqs)) {
            d->bad = true;
            return false;
        }
        a->cap = (uint32_t)n;
        for (uint32_t i = 0; i < n; i++) {
            a->items[i] = cep_codec_get_value(d, item_type(s));
            if (with_seq) a->seqs[i] = cep_codec_get_u64(d);
            a->nitems++;
        }
    }
    if (distinct && a->items) { /* values of an older checkpoint: to fingerprints */
        cep_acc_t set = {0};
        for (uint32_t i = 0; i < a->nitems; i++) fp_insert(&set, fingerprint(&a->items[i]));
        bool ok = set.nitems == a->nitems;
        for (uint32_t i = 0; i < a->nitems; i++) cep_value_free_owned(&a->items[i]);
        free(a->items);
        a->items = NULL;
        a->seqs = set.seqs, a->nitems = set.nitems, a->cap = set.cap;
        return ok && !d->bad;
    }
    return !d->bad;
}
