/*
 * over.c — sliding per-event aggregates (RANGE BETWEEN n PRECEDING AND
 * CURRENT ROW). Per aggregate and partition, a ring of the rows still in
 * range (their time and argument). A new row first evicts the rows older
 * than its time minus the range, then joins. COUNT, SUM and AVG keep
 * running totals (O(1) per row); COUNT_DISTINCT keeps a count per distinct
 * value; MIN and MAX keep a monotonic ring (O(1) amortised). State per
 * partition is bounded by the rows inside the range, and a partition whose
 * newest row has left the range is released. Rows are taken in arrival
 * order: a row older than the newest of its partition joins with its own
 * time (it is not re-sorted), which is exact for in-order streams.
 */
#include "patterns/over.h"
#include "state/codec.h"

#include <stdlib.h>
#include <string.h>

typedef struct item {
    int64_t t;
    cep_value_t v; /* owned */
} item_t;

typedef struct ring {
    item_t *a;
    uint32_t head, n, cap;
} ring_t;

typedef struct distinct {
    cep_value_t v; /* owned */
    uint32_t count;
    uint64_t h;
} distinct_t;

typedef struct ostate {
    ring_t rows;    /* every row in range */
    ring_t mono;    /* MIN/MAX: candidates, monotonic */
    int64_t count;  /* non-null arguments (or rows for COUNT(*)) */
    int64_t isum;
    double dsum;
    distinct_t *d;  /* COUNT_DISTINCT: open addressing, cap a power of two */
    uint32_t dcap, dn;
    int64_t newest;
} ostate_t;

typedef struct table_ctx {
    struct cep_overop *op;
    uint32_t i; /* the aggregate */
} table_ctx_t;

struct cep_overop {
    const cep_query_t *q;
    cep_table_t **tables; /* per aggregate, in the task's store */
    table_ctx_t *tctx;
    cep_value_t *scope;
    cep_value_t *out;
    cep_buf_t keybuf;
};

static item_t *ring_at(ring_t *r, uint32_t i)
{
    return &r->a[(r->head + i) & (r->cap - 1)];
}

static bool ring_push(ring_t *r, int64_t t, cep_value_t v)
{
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 8;
        item_t *a = malloc(cap * sizeof *a);
        if (!a) return false;
        for (uint32_t i = 0; i < r->n; i++) a[i] = *ring_at(r, i);
        free(r->a);
        r->a = a;
        r->cap = cap;
        r->head = 0;
    }
    *ring_at(r, r->n++) = (item_t){t, v};
    return true;
}

static void ring_free(ring_t *r)
{
    for (uint32_t i = 0; i < r->n; i++) cep_value_free_owned(&ring_at(r, i)->v);
    free(r->a);
}

static void state_free(void *ctx, cep_entry_t *e)
{
    ostate_t *s = e->data;
    if (!s) return;
    ring_free(&s->rows);
    ring_free(&s->mono);
    for (uint32_t i = 0; i < s->dcap; i++)
        if (s->d[i].count) cep_value_free_owned(&s->d[i].v);
    free(s->d);
    free(s);
    e->data = NULL;
}

/* COUNT_DISTINCT: add (+1) or remove (-1) one occurrence of v. */
static void distinct_update(ostate_t *s, const cep_value_t *v, int delta)
{
    if (delta > 0 && (s->dn + 1) * 2 > s->dcap) {
        uint32_t cap = s->dcap ? s->dcap * 2 : 16;
        distinct_t *d = calloc(cap, sizeof *d);
        if (!d) return;
        for (uint32_t i = 0; i < s->dcap; i++) {
            if (!s->d[i].count) continue;
            uint32_t j = (uint32_t)s->d[i].h & (cap - 1);
            while (d[j].count) j = (j + 1) & (cap - 1);
            d[j] = s->d[i];
        }
        free(s->d);
        s->d = d;
        s->dcap = cap;
    }
    if (!s->dcap) return;
    uint64_t h = cep_value_hash(v, 0);
    uint32_t m = s->dcap - 1;
    for (uint32_t j = (uint32_t)h & m;; j = (j + 1) & m) {
        distinct_t *x = &s->d[j];
        if (!x->count) {
            if (delta < 0) return;
            *x = (distinct_t){cep_value_clone(v), 1, h};
            s->dn++;
            return;
        }
        if (x->h == h && cep_value_eq(&x->v, v)) {
            if (delta > 0) {
                x->count++;
                return;
            }
            if (--x->count) return;
            cep_value_free_owned(&x->v);
            s->dn--;
            /* backward-shift deletion keeps probe chains whole */
            uint32_t i = j;
            for (uint32_t k = (i + 1) & m; s->d[k].count; k = (k + 1) & m) {
                uint32_t home = (uint32_t)s->d[k].h & m;
                bool move = i <= k ? (home <= i || home > k) : (home <= i && home > k);
                if (move) {
                    s->d[i] = s->d[k];
                    s->d[k].count = 0;
                    i = k;
                }
            }
            s->d[i].count = 0;
            return;
        }
    }
}

/* ---- checkpoints ---------------------------------------------------------- */

static void save_ring(ring_t *r, cep_buf_t *out)
{
    cep_codec_put_u64(out, r->n);
    for (uint32_t k = 0; k < r->n; k++) {
        cep_codec_put_i64(out, ring_at(r, k)->t);
        cep_codec_put_value(out, &ring_at(r, k)->v);
    }
}

static bool load_ring(ring_t *r, cep_dec_t *d, const cep_type_t *type)
{
    uint64_t n = cep_codec_get_u64(d);
    if (d->bad || n > (uint64_t)(d->end - d->p)) return false;
    for (uint64_t k = 0; k < n && !d->bad; k++) {
        int64_t t = cep_codec_get_i64(d);
        cep_value_t v = cep_codec_get_value(d, type);
        if (!ring_push(r, t, v)) {
            cep_value_free_owned(&v);
            return false;
        }
    }
    return !d->bad;
}

static bool state_save(void *ctx, const cep_entry_t *e, cep_buf_t *out)
{
    ostate_t *s = e->data;
    save_ring(&s->rows, out);
    save_ring(&s->mono, out);
    cep_codec_put_i64(out, s->count);
    cep_codec_put_i64(out, s->isum);
    cep_codec_put_f64(out, s->dsum);
    cep_codec_put_i64(out, s->newest);
    cep_codec_put_u64(out, s->dn);
    for (uint32_t i = 0; i < s->dcap; i++)
        if (s->d[i].count) {
            cep_codec_put_value(out, &s->d[i].v);
            cep_codec_put_u64(out, s->d[i].count);
        }
    (void)ctx;
    return true;
}

static bool state_load(void *ctx, cep_entry_t *e, const char *p, size_t n)
{
    table_ctx_t *tc = ctx;
    const cep_overspec_t *sp = &tc->op->q->overs[tc->i];
    const cep_type_t *type = sp->arg ? sp->arg->type : NULL;
    ostate_t *s = calloc(1, sizeof *s);
    if (!s) return false;
    e->data = s;
    cep_dec_t d = cep_codec_reader(p, n);
    if (!load_ring(&s->rows, &d, type) || !load_ring(&s->mono, &d, type)) return false;
    s->count = cep_codec_get_i64(&d);
    s->isum = cep_codec_get_i64(&d);
    s->dsum = cep_codec_get_f64(&d);
    s->newest = cep_codec_get_i64(&d);
    uint64_t dn = cep_codec_get_u64(&d);
    if (d.bad || dn > (uint64_t)(d.end - d.p)) return false;
    for (uint64_t i = 0; i < dn && !d.bad; i++) {
        cep_value_t v = cep_codec_get_value(&d, type);
        uint64_t count = cep_codec_get_u64(&d);
        if (d.bad || !count || count > UINT32_MAX) {
            cep_value_free_owned(&v);
            return false;
        }
        uint32_t before = s->dn;
        distinct_update(s, &v, +1);
        if (s->dn == before) { /* a value twice, or out of memory */
            cep_value_free_owned(&v);
            return false;
        }
        /* the value just added: find it and set its count */
        uint64_t h = cep_value_hash(&v, 0);
        for (uint32_t j = (uint32_t)h & (s->dcap - 1);; j = (j + 1) & (s->dcap - 1))
            if (s->d[j].count && s->d[j].h == h && cep_value_eq(&s->d[j].v, &v)) {
                s->d[j].count = (uint32_t)count;
                break;
            }
        cep_value_free_owned(&v);
    }
    return cep_codec_done(&d);
}

cep_overop_t *cep_overop_new(const cep_query_t *q, cep_store_t *store)
{
    cep_overop_t *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    op->q = q;
    op->tables = calloc(q->novers + 1, sizeof *op->tables);
    op->tctx = calloc(q->novers + 1, sizeof *op->tctx);
    op->scope = calloc(q->over_scope_ncols + CEP_PSEUDO_COUNT + 1, sizeof *op->scope);
    op->out = calloc(q->sink->ncols + 1, sizeof *op->out);
    cep_buf_init(&op->keybuf);
    if (!op->tables || !op->tctx || !op->scope || !op->out) {
        cep_overop_free(op);
        return NULL;
    }
    for (uint32_t i = 0; i < q->novers; i++)
    {
        /* the state's identity: the rule and this aggregate's definition, not metadata */
        const cep_overspec_t *sp = &q->overs[i];
        uint64_t fp = cep_hash_bytes(q->name, strlen(q->name), 0x4f564552ULL + i);
        for (uint32_t k = 0; k < sp->npartition; k++)
            if (sp->partition[k]->text) fp = cep_hash_bytes(sp->partition[k]->text, strlen(sp->partition[k]->text), fp);
        if (sp->order && sp->order->text) fp = cep_hash_bytes(sp->order->text, strlen(sp->order->text), fp ^ 1);
        if (sp->arg && sp->arg->text) fp = cep_hash_bytes(sp->arg->text, strlen(sp->arg->text), fp ^ 2);
        int64_t k2[2] = {(int64_t)sp->kind, sp->range_ms};
        fp = cep_hash_bytes(k2, sizeof k2, fp);
        if (!(op->tables[i] = cep_store_table(store, cep_origin_fp(fp, q->origin), q->name, state_free, NULL))) {
            cep_overop_free(op);
            return NULL;
        }
        op->tctx[i] = (table_ctx_t){op, i};
        cep_table_codec_t c = {.save = state_save, .load = state_load, .ctx = &op->tctx[i]};
        cep_table_set_codec(op->tables[i], &c);
    }
    return op;
}

cep_table_t *cep_overop_table(const cep_overop_t *op, uint32_t i)
{
    return i < op->q->novers ? op->tables[i] : NULL;
}

void cep_overop_free(cep_overop_t *op)
{
    if (!op) return;
    free(op->tables);
    free(op->tctx);
    free(op->scope);
    free(op->out);
    cep_buf_free(&op->keybuf);
    free(op);
}

uint64_t cep_overop_entries(const cep_overop_t *op)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < op->q->novers; i++) n += cep_table_size(op->tables[i]);
    return n;
}

static bool better(cep_agg_kind_t k, const cep_value_t *a, const cep_value_t *b)
{
    int c = cep_value_cmp(a, b);
    return k == AGG_MIN ? c < 0 : c > 0;
}

/* Update aggregate i for this row; its value for the row. */
static cep_value_t slide(cep_overop_t *op, uint32_t i, const cep_value_t *row, cep_eval_t *ev)
{
    const cep_overspec_t *sp = &op->q->overs[i];
    cep_value_t kv, t, arg = cep_null();
    cep_buf_reset(&op->keybuf);
    for (uint32_t k = 0; k < sp->npartition; k++) {
        if (!cep_program_run(sp->partition[k], row, ev, &kv)) kv = cep_null();
        cep_buf_putc(&op->keybuf, (char)kv.kind);
        cep_value_to_json(&kv, &op->keybuf);
        cep_buf_putc(&op->keybuf, 0);
    }
    if (!cep_program_run(sp->order, row, ev, &t) || t.kind == CEP_K_NULL) return cep_null();
    if (sp->arg && !cep_program_run(sp->arg, row, ev, &arg)) arg = cep_null();
    int64_t now = t.u.i;
    const char *key = op->keybuf.data ? op->keybuf.data : "";
    uint64_t h = cep_hash_bytes(key, op->keybuf.len, 0);
    bool created = false;
    cep_entry_t *e = cep_table_upsert(op->tables[i], key, op->keybuf.len, h, &created);
    if (!e) return cep_null();
    if (created && !(e->data = calloc(1, sizeof(ostate_t)))) {
        cep_table_remove(op->tables[i], e);
        return cep_null();
    }
    ostate_t *s = e->data;
    /* evict what left [now - range, now] */
    while (s->rows.n && ring_at(&s->rows, 0)->t < now - sp->range_ms) {
        item_t *x = ring_at(&s->rows, 0);
        if (x->v.kind != CEP_K_NULL || !sp->arg) {
            s->count--;
            if (x->v.kind == CEP_K_DOUBLE) s->dsum -= x->v.u.d;
            else if (x->v.kind != CEP_K_NULL) s->isum -= x->v.u.i;
            if (sp->kind == AGG_COUNT_DISTINCT && x->v.kind != CEP_K_NULL) distinct_update(s, &x->v, -1);
        }
        cep_value_free_owned(&x->v);
        s->rows.head = (s->rows.head + 1) & (s->rows.cap - 1);
        s->rows.n--;
    }
    while (s->mono.n && ring_at(&s->mono, 0)->t < now - sp->range_ms) {
        cep_value_free_owned(&ring_at(&s->mono, 0)->v);
        s->mono.head = (s->mono.head + 1) & (s->mono.cap - 1);
        s->mono.n--;
    }
    /* join */
    bool counted = arg.kind != CEP_K_NULL || !sp->arg;
    ring_push(&s->rows, now, sp->arg && sp->kind != AGG_COUNT ? cep_value_clone(&arg)
                             : counted ? cep_v_int(CEP_K_BIGINT, 0) : cep_null());
    if (counted) {
        s->count++;
        if (sp->kind == AGG_SUM || sp->kind == AGG_AVG) {
            if (arg.kind == CEP_K_DOUBLE) s->dsum += arg.u.d;
            else s->isum += arg.u.i;
        }
        if (sp->kind == AGG_COUNT_DISTINCT) distinct_update(s, &arg, +1);
        if (sp->kind == AGG_MIN || sp->kind == AGG_MAX) {
            while (s->mono.n && !better(sp->kind, &ring_at(&s->mono, s->mono.n - 1)->v, &arg)) {
                cep_value_free_owned(&ring_at(&s->mono, s->mono.n - 1)->v);
                s->mono.n--;
            }
            ring_push(&s->mono, now, cep_value_clone(&arg));
        }
    }
    if (now > s->newest || created) s->newest = now;
    cep_table_touch(op->tables[i], e);
    cep_table_set_expiry(op->tables[i], e, s->newest + sp->range_ms);
    switch (sp->kind) {
    case AGG_COUNT: return cep_v_int(CEP_K_BIGINT, s->count);
    case AGG_COUNT_DISTINCT: return cep_v_int(CEP_K_BIGINT, s->dn);
    case AGG_SUM:
        if (!s->count) return cep_null();
        return sp->type->kind == CEP_K_DOUBLE ? cep_v_double(s->dsum + (double)s->isum) : cep_v_int(CEP_K_BIGINT, s->isum);
    case AGG_AVG: return s->count ? cep_v_double((s->dsum + (double)s->isum) / (double)s->count) : cep_null();
    case AGG_MIN:
    case AGG_MAX: return s->mono.n ? ring_at(&s->mono, 0)->v : cep_null();
    default: return cep_null();
    }
}

void cep_overop_process(cep_overop_t *op, const cep_value_t *row, cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    const cep_query_t *q = op->q;
    uint32_t nin = q->from->ncols;
    for (uint32_t c = 0; c < nin; c++) op->scope[c] = row[c];
    for (uint32_t i = 0; i < q->novers; i++) {
        cep_value_t v = slide(op, i, row, ev);
        /* MIN/MAX hand out a value the state owns: copy it into the scratch arena */
        if ((v.kind == CEP_K_STRING || v.kind == CEP_K_BYTES) && ev->scratch) {
            char *p = cep_arena_strndup(ev->scratch, v.u.s.p, v.u.s.n);
            if (p) v.u.s.p = p;
        }
        op->scope[nin + i] = v;
    }
    for (uint32_t c = 0; c < CEP_PSEUDO_COUNT; c++) op->scope[q->over_scope_ncols + c] = row[nin + c];
    for (uint32_t c = 0; c < q->sink->ncols; c++)
        if (!cep_program_run(q->proj[c], op->scope, ev, &op->out[c])) op->out[c] = cep_null();
    cep_output_t o = {.query = q,
                      .sink = q->sink,
                      .cols = op->out,
                      .timestamp = row[nin + CEP_PSEUDO_ROWTIME].u.i};
    emit(ctx, &o);
    int64_t now = row[nin + CEP_PSEUDO_ROWTIME].u.i;
    for (uint32_t i = 0; i < q->novers; i++) cep_table_expire(op->tables[i], now, 4);
}
