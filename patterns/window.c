/*
 * window.c — the aggregation operator, with ksqlDB's window semantics
 * (../shared/conformance/KSQL_SEMANTICS.md):
 *
 *  - stream time is the largest timestamp that reached the operator;
 *  - tumbling/hopping windows are epoch-aligned [k*A, k*A+S), start >= 0;
 *    an event joins window W iff W.end + grace > stream time;
 *  - sessions are [first, last], merged when within the gap (inclusive);
 *    merging emits a tombstone per replaced session;
 *  - EMIT CHANGES emits every update, in window-start order; EMIT FINAL
 *    emits a window once when stream time reaches end + grace, except
 *    windows already past the store's retention;
 *  - HAVING turns a row that stops passing into a tombstone.
 *
 * State lives in the store, one entry per (group key, window) for time
 * windows and one per group key for sessions.
 */
#include "patterns/window.h"
#include "patterns/agg.h"

#include <stdlib.h>
#include <string.h>

typedef struct wstate {
    int64_t wstart, wend, max_ts;
    uint64_t passed; /* per share member (bit): the last row emitted for it passed HAVING */
    bool emitted; /* EMIT FINAL: already emitted */
    /* in_entry: this state, its key values (and their bytes) live in the
     * entry's own block (one allocation per window); acc_in_entry: so do
     * the accumulators (a reload that widens them moves them out) */
    bool in_entry, acc_in_entry;
    cep_value_t *keyvals;
    cep_acc_t *acc;
} wstate_t;

typedef struct session {
    int64_t start, end, max_ts;
    uint64_t passed; /* per share member, as in wstate */
    cep_acc_t *acc;
} session_t;

typedef struct sstate {
    cep_value_t *keyvals;
    session_t *s;
    uint32_t n, cap;
    int64_t heap_due; /* EMIT FINAL: deadline of this key's live heap entry (INT64_MAX = none) */
} sstate_t;

/* EMIT FINAL bookkeeping: a window (or a key's sessions) waiting to close */
typedef struct pending {
    int64_t order; /* heap order: window start, or the sessions' deadline */
    int64_t wstart, wend;
    uint32_t klen;
    char *key; /* the entry key */
} pending_t;

struct cep_aggop {
    const cep_query_t *q;      /* the share's first member: key, window, emit mode */
    const cep_aggshare_t *sh;  /* all members and the union of their aggregates */
    cep_value_t *args, *args2, *results; /* per union aggregate */
    cep_table_t *table;
    int64_t stream_time;
    bool seen;
    int64_t newest_start;
    pending_t *pend;
    uint32_t npend, cappend;
    cep_arena_t scratch;
    cep_value_t *aggrow;
    cep_value_t *outcols;
    cep_buf_t keybuf;
    /* converting entries of another layout of this share (a reload):
     * for that operator, our spec i was its conv_spec[i] (UINT32_MAX:
     * new), our member j its conv_member[j] */
    const cep_aggop_t *conv_from;
    uint32_t *conv_spec, *conv_member;
    cep_acc_t *conv_tmp;
    /* cep_aggop_prefetch of the row about to be processed (pre_row,
     * pre_seq): its group key (pre_ok false: it has none), the key's bytes
     * (pre_klen of keybuf) and the hash of the key with its first window
     * (pre_ws), which process takes instead of working them out again */
    const cep_value_t *pre_row;
    uint64_t pre_seq, pre_hash;
    int64_t pre_ws;
    size_t pre_klen;
    bool pre_ok;
    bool hash_ready; /* window_entry: keybuf's hash is pre_hash */
    cep_value_t *pre_keys;
};

/* ---- state entries ------------------------------------------------------ */

static void free_keyvals(const cep_aggshare_t *sh, cep_value_t *kv)
{
    if (!kv) return;
    for (uint32_t i = 0; i < sh->members[0]->ngroup; i++) cep_value_free_owned(&kv[i]);
    free(kv);
}

static void free_accs(const cep_aggshare_t *sh, cep_acc_t *acc)
{
    if (!acc) return;
    for (uint32_t i = 0; i < sh->nspecs; i++) cep_acc_free(&acc[i]);
    free(acc);
}

static void entry_free(void *ctx, cep_entry_t *e)
{
    const cep_aggshare_t *sh = ctx;
    const cep_query_t *q = sh->members[0];
    if (!e->data) return;
    if (q->win.kind == CEP_WIN_SESSION) {
        sstate_t *s = e->data;
        for (uint32_t i = 0; i < s->n; i++) free_accs(sh, s->s[i].acc);
        free(s->s);
        free_keyvals(sh, s->keyvals);
        free(s);
    } else {
        wstate_t *w = e->data;
        if (w->acc_in_entry) {
            for (uint32_t i = 0; i < sh->nspecs; i++) cep_acc_free(&w->acc[i]);
        } else
            free_accs(sh, w->acc);
        if (!w->in_entry) {
            free_keyvals(sh, w->keyvals);
            free(w);
        }
    }
    e->data = NULL;
}

static bool entry_save(void *ctx, const cep_entry_t *e, cep_buf_t *out);
static bool entry_load(void *ctx, cep_entry_t *e, const char *p, size_t n);
static void meta_save(void *ctx, cep_buf_t *out);
static bool meta_load(void *ctx, const char *p, size_t n);
static bool entry_convert(void *ctx, void *from_ctx, cep_entry_t *e);

cep_aggop_t *cep_aggop_new(const cep_aggshare_t *sh, cep_store_t *store)
{
    cep_aggop_t *op = calloc(1, sizeof *op);
    if (!op) return NULL;
    const cep_query_t *q = sh->members[0];
    op->q = q;
    op->sh = sh;
    /* The entries hold the union of the members' aggregates: the state's
     * identity is the share's and that union, so a pack that changes the
     * union (a member with a new aggregate) never reads old entries wrongly. */
    uint64_t fp = sh->fingerprint;
    for (uint32_t i = 0; i < sh->nspecs; i++) {
        const cep_aggspec_t *a = sh->specs[i];
        uint64_t k[4] = {(uint64_t)a->kind, (uint64_t)a->n, (uint64_t)a->ignore_nulls, (uint64_t)a->count_star};
        fp = cep_hash_bytes(k, sizeof k, fp);
        if (a->arg && a->arg->text) fp = cep_hash_bytes(a->arg->text, strlen(a->arg->text), fp);
        if (a->arg2 && a->arg2->text) fp = cep_hash_bytes(a->arg2->text, strlen(a->arg2->text), fp ^ 2);
    }
    op->table = cep_store_table(store, fp, q->name, entry_free, (void *)sh);
    if (op->table) cep_table_set_family(op->table, sh->fingerprint);
    op->aggrow = calloc(sh->max_agg_nslots + 1, sizeof *op->aggrow);
    op->outcols = calloc(sh->max_sink_cols + 1, sizeof *op->outcols);
    op->args = calloc(sh->nspecs + 1, sizeof *op->args);
    op->args2 = calloc(sh->nspecs + 1, sizeof *op->args2);
    op->results = calloc(sh->nspecs + 1, sizeof *op->results);
    if (q->ngroup <= 64) op->pre_keys = calloc(q->ngroup + 1, sizeof *op->pre_keys);
    cep_arena_init(&op->scratch, 16 * 1024);
    cep_buf_init(&op->keybuf);
    op->newest_start = INT64_MIN;
    if (op->table) {
        cep_table_codec_t c = {.save = entry_save,
                               .load = entry_load,
                               .save_meta = meta_save,
                               .load_meta = meta_load,
                               .convert = entry_convert,
                               .ctx = op};
        cep_table_set_codec(op->table, &c);
    }
    if (!op->table || !op->aggrow || !op->outcols || !op->args || !op->args2 || !op->results) {
        cep_aggop_free(op);
        return NULL;
    }
    return op;
}

cep_table_t *cep_aggop_table(const cep_aggop_t *op)
{
    return op->table;
}

void cep_aggop_free(cep_aggop_t *op)
{
    if (!op) return;
    free(op->conv_spec);
    free(op->conv_member);
    free(op->conv_tmp);
    for (uint32_t i = 0; i < op->npend; i++) free(op->pend[i].key);
    free(op->pend);
    free(op->aggrow);
    free(op->outcols);
    free(op->args);
    free(op->args2);
    free(op->results);
    free(op->pre_keys);
    cep_arena_free(&op->scratch);
    cep_buf_free(&op->keybuf);
    free(op);
}

/* Canonical bytes of the group key: kind byte + payload per value. */
static void encode_key(cep_buf_t *b, const cep_value_t *v)
{
    cep_buf_putc(b, (char)v->kind);
    switch (v->kind) {
    case CEP_K_NULL: break;
    case CEP_K_BOOLEAN: cep_buf_putc(b, v->u.b); break;
    case CEP_K_DOUBLE: cep_buf_put(b, &v->u.d, sizeof v->u.d); break;
    case CEP_K_STRING:
    case CEP_K_BYTES:
        cep_buf_put(b, &v->u.s.n, sizeof v->u.s.n);
        cep_buf_put(b, v->u.s.p, v->u.s.n);
        break;
    case CEP_K_ARRAY:
    case CEP_K_MAP:
    case CEP_K_STRUCT: {
        uint32_t n = v->kind == CEP_K_MAP ? 2 * v->u.l->n : v->u.l->n;
        cep_buf_put(b, &n, sizeof n);
        for (uint32_t i = 0; i < n; i++) encode_key(b, &v->u.l->v[i]);
        break;
    }
    case CEP_K_DECIMAL: cep_buf_putc(b, (char)v->scale); /* fall through */
    default: cep_buf_put(b, &v->u.i, sizeof v->u.i); break;
    }
}

/* ---- emission ----------------------------------------------------------- */

/* One member's row for an update: its aggregates out of the union, its
 * HAVING (a row that stops passing becomes a tombstone), its projection. */
static void emit_member(cep_aggop_t *op, const cep_query_t *q, const cep_value_t *keyvals, int64_t wstart,
                        int64_t wend, int64_t ts, uint64_t *passed, bool force_tombstone, cep_eval_t *ev,
                        cep_emit_fn emit, void *ctx)
{
    uint64_t bit = 1ULL << q->share_member;
    cep_value_t *row = op->aggrow;
    for (uint32_t i = 0; i < q->ngroup; i++) row[i] = keyvals[i];
    for (uint32_t i = 0; i < q->naggs; i++) row[q->ngroup + i] = op->results[q->aggmap[i]];
    uint32_t w = q->ngroup + q->naggs;
    row[w] = cep_v_int(CEP_K_BIGINT, wstart);
    row[w + 1] = cep_v_int(CEP_K_BIGINT, wend);
    row[w + 2] = cep_v_int(CEP_K_BIGINT, ts);
    bool pass = true;
    if (force_tombstone) pass = false;
    else if (q->having) {
        cep_value_t hv;
        pass = cep_program_run(q->having, row, ev, &hv) && hv.kind == CEP_K_BOOLEAN && hv.u.b;
    }
    bool tomb = false;
    if (!pass) {
        if (!(*passed & bit)) return;
        tomb = true;
    }
    *passed = pass ? *passed | bit : *passed & ~bit;
    for (uint32_t i = 0; i < q->sink->ncols; i++) {
        if (tomb && !q->sink->cols[i].is_key) {
            op->outcols[i] = cep_null();
            continue;
        }
        if (!cep_program_run(q->out[i], row, ev, &op->outcols[i])) op->outcols[i] = cep_null();
    }
    cep_output_t o = {.query = q,
                      .sink = q->sink,
                      .cols = op->outcols,
                      .tombstone = tomb,
                      .timestamp = ts,
                      .windowed = q->win.kind != CEP_WIN_NONE,
                      .wstart = wstart,
                      .wend = wend,
                      .wtype = q->win.kind};
    emit(ctx, &o);
}

/* An update of one (key, window): every member of the share, in statement
 * order, over aggregate results computed once. */
static void emit_row(cep_aggop_t *op, const cep_value_t *keyvals, cep_acc_t *acc, int64_t wstart,
                     int64_t wend, int64_t ts, uint64_t *passed, bool force_tombstone, cep_eval_t *ev,
                     cep_emit_fn emit, void *ctx)
{
    const cep_aggshare_t *sh = op->sh;
    for (uint32_t u = 0; u < sh->nspecs; u++) op->results[u] = cep_acc_result(sh->specs[u], &acc[u], ev->scratch);
    for (uint32_t m = 0; m < sh->nmembers; m++)
        emit_member(op, sh->members[m], keyvals, wstart, wend, ts, passed, force_tombstone, ev, emit, ctx);
}

static cep_value_t *clone_keys(const cep_query_t *q, const cep_value_t *vals)
{
    cep_value_t *kv = calloc(CEP_MAX(q->ngroup, 1), sizeof *kv);
    if (!kv) return NULL;
    for (uint32_t i = 0; i < q->ngroup; i++) kv[i] = cep_value_clone(&vals[i]);
    return kv;
}

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

/* Bytes of a window's state in its entry's block: the state, the
 * accumulators, the key values and their strings; 0 when a key is a
 * composite (those states are allocated apart). */
static size_t state_bytes(const cep_aggop_t *op, const cep_value_t *keyvals)
{
    size_t n = ALIGN16(sizeof(wstate_t)) + ALIGN16(CEP_MAX(op->sh->nspecs, 1) * sizeof(cep_acc_t)) +
               ALIGN16(CEP_MAX(op->q->ngroup, 1) * sizeof(cep_value_t));
    for (uint32_t i = 0; i < op->q->ngroup; i++) {
        uint8_t k = keyvals[i].kind;
        if (k == CEP_K_STRING || k == CEP_K_BYTES) n += keyvals[i].u.s.n + 1;
        else if (k == CEP_K_ARRAY || k == CEP_K_MAP || k == CEP_K_STRUCT) return 0;
    }
    return n;
}

/* A new window's state: in the entry's block when it was made with
 * state_bytes of room, else allocated apart. NULL when out of memory. */
static wstate_t *state_new(const cep_aggop_t *op, cep_entry_t *e, bool in_entry, const cep_value_t *keyvals)
{
    const cep_query_t *q = op->q;
    if (!in_entry) {
        wstate_t *w = calloc(1, sizeof *w);
        if (w) {
            w->keyvals = clone_keys(q, keyvals);
            w->acc = calloc(CEP_MAX(op->sh->nspecs, 1), sizeof *w->acc);
        }
        if (!w || !w->keyvals || !w->acc) {
            if (w) {
                free_keyvals(op->sh, w->keyvals);
                free(w->acc);
                free(w);
            }
            return NULL;
        }
        return w;
    }
    char *p = cep_entry_inline(e);
    wstate_t *w = (wstate_t *)p;
    p += ALIGN16(sizeof *w);
    w->acc = (cep_acc_t *)p;
    p += ALIGN16(CEP_MAX(op->sh->nspecs, 1) * sizeof(cep_acc_t));
    w->keyvals = (cep_value_t *)p;
    p += ALIGN16(CEP_MAX(q->ngroup, 1) * sizeof(cep_value_t));
    for (uint32_t i = 0; i < q->ngroup; i++) {
        w->keyvals[i] = keyvals[i];
        if (keyvals[i].kind == CEP_K_STRING || keyvals[i].kind == CEP_K_BYTES) {
            if (keyvals[i].u.s.n) memcpy(p, keyvals[i].u.s.p, keyvals[i].u.s.n);
            p[keyvals[i].u.s.n] = 0;
            w->keyvals[i].u.s.p = p;
            p += keyvals[i].u.s.n + 1;
        }
    }
    w->in_entry = w->acc_in_entry = true;
    return w;
}

/* The entry of (key bytes in keybuf, window) with its state; NULL when out
 * of memory. */
static cep_entry_t *window_entry(cep_aggop_t *op, const cep_value_t *keyvals, int64_t ts, bool *created)
{
    uint64_t h = op->hash_ready ? op->pre_hash : cep_hash_bytes(op->keybuf.data, op->keybuf.len, 0);
    op->hash_ready = false;
    size_t extra = state_bytes(op, keyvals);
    cep_entry_t *e = cep_table_upsert_sized(op->table, op->keybuf.data, op->keybuf.len, h, extra, created);
    if (!e || !*created) return e;
    wstate_t *w = state_new(op, e, extra != 0, keyvals);
    if (!w) {
        cep_table_remove(op->table, e);
        return NULL;
    }
    w->max_ts = ts;
    e->data = w;
    return e;
}

static void add_row(const cep_aggshare_t *sh, cep_acc_t *acc, const cep_value_t *args,
                    const cep_value_t *args2, bool retract, uint64_t seq)
{
    for (uint32_t i = 0; i < sh->nspecs; i++) {
        const cep_aggspec_t *s = sh->specs[i];
        const cep_value_t *v = s->arg ? &args[i] : NULL;
        const cep_value_t *v2 = s->arg2 ? &args2[i] : NULL;
        if (retract) cep_acc_retract(s, &acc[i], v, v2);
        else cep_acc_add(s, &acc[i], v, v2, seq);
    }
}

/* ---- EMIT FINAL ---------------------------------------------------------
 *
 * Windows waiting to be emitted sit in a binary heap ordered by (order, key
 * bytes): for time windows order = window start (all windows of a query
 * have one size, so start order is also end order and the due windows are
 * always a prefix); for sessions order = the earliest end + gap + grace of
 * the key's sessions. Closing is driven by stream time, so a key's window
 * closes when any key's record moves time on, as in ksqlDB. */

static int pend_cmp(const pending_t *a, const pending_t *b)
{
    if (a->order != b->order) return a->order < b->order ? -1 : 1;
    uint32_t m = CEP_MIN(a->klen, b->klen);
    int c = memcmp(a->key, b->key, m);
    if (c) return c;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

static void pend_add(cep_aggop_t *op, const char *key, uint32_t klen, int64_t order, int64_t ws, int64_t we)
{
    if (op->npend == op->cappend) {
        uint32_t cap = op->cappend ? op->cappend * 2 : 16;
        pending_t *n = realloc(op->pend, cap * sizeof *n);
        if (!n) return;
        op->pend = n;
        op->cappend = cap;
    }
    char *k = malloc(klen ? klen : 1);
    if (!k) return;
    memcpy(k, key, klen);
    pending_t x = {order, ws, we, klen, k};
    uint32_t i = op->npend++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (pend_cmp(&op->pend[parent], &x) <= 0) break;
        op->pend[i] = op->pend[parent];
        i = parent;
    }
    op->pend[i] = x;
}

static pending_t pend_pop(cep_aggop_t *op)
{
    pending_t top = op->pend[0], last = op->pend[--op->npend];
    uint32_t i = 0, n = op->npend;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && pend_cmp(&op->pend[c + 1], &op->pend[c]) < 0) c++;
        if (pend_cmp(&op->pend[c], &last) >= 0) break;
        op->pend[i] = op->pend[c];
        i = c;
    }
    if (n) op->pend[i] = last;
    return top;
}

static void emit_final_closed(cep_aggop_t *op, cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    const cep_query_t *q = op->q;
    int64_t grace = q->win.grace;
    int64_t retention_floor = op->newest_start == INT64_MIN ? INT64_MIN : op->newest_start - (q->win.size + grace);
    while (op->npend && op->pend[0].wend + grace <= op->stream_time) {
        pending_t p = pend_pop(op);
        uint64_t h = cep_hash_bytes(p.key, p.klen, 0);
        cep_entry_t *e = cep_table_get(op->table, p.key, p.klen, h);
        if (e && p.wstart >= retention_floor) {
            wstate_t *w = e->data;
            uint64_t passed = 0;
            emit_row(op, w->keyvals, w->acc, w->wstart, w->wend, w->max_ts, &passed, false, ev, emit, ctx);
        }
        if (e) cep_table_remove(op->table, e);
        free(p.key);
    }
}

/* A session that closed, waiting in a batch to be emitted in start order. */
typedef struct closed_session {
    session_t s;
    const cep_value_t *keyvals; /* borrowed from the key's state */
    const char *key;
    uint32_t klen;
} closed_session_t;

static int closed_cmp(const void *pa, const void *pb)
{
    const closed_session_t *a = pa, *b = pb;
    if (a->s.start != b->s.start) return a->s.start < b->s.start ? -1 : 1;
    uint32_t m = CEP_MIN(a->klen, b->klen);
    int c = memcmp(a->key, b->key, m);
    if (c) return c;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

static int64_t session_due_min(const cep_query_t *q, const sstate_t *s)
{
    int64_t due = INT64_MAX;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->s[i].end + q->win.gap + q->win.grace < due) due = s->s[i].end + q->win.gap + q->win.grace;
    return due;
}

/* Make sure the key's earliest deadline has a heap entry. */
static void session_schedule(cep_aggop_t *op, const char *key, uint32_t klen, sstate_t *s)
{
    int64_t due = session_due_min(op->q, s);
    if (due == INT64_MAX || due >= s->heap_due) return;
    s->heap_due = due;
    pend_add(op, key, klen, due, 0, 0);
}

/* EMIT FINAL for sessions: every session with end + gap + grace < stream
 * time is emitted once, the batch in (start, key) order. Keys are
 * rescheduled or released only after the batch is out, because the batch
 * borrows their key values. */
static void sessions_close(cep_aggop_t *op, cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    const cep_query_t *q = op->q;
    closed_session_t *batch = NULL;
    pending_t *done = NULL;
    uint32_t nb = 0, capb = 0, nd = 0, capd = 0;
    while (op->npend && op->pend[0].order < op->stream_time) {
        pending_t p = pend_pop(op);
        uint64_t h = cep_hash_bytes(p.key, p.klen, 0);
        cep_entry_t *e = cep_table_get(op->table, p.key, p.klen, h);
        sstate_t *s = e ? e->data : NULL;
        if (!s || s->heap_due != p.order) { /* stale: the key was rescheduled or is gone */
            free(p.key);
            continue;
        }
        if (nd == capd) {
            uint32_t cap = capd ? capd * 2 : 16;
            pending_t *n = realloc(done, cap * sizeof *n);
            if (!n) { /* out of memory: try again on the next record */
                pend_add(op, p.key, p.klen, p.order, 0, 0);
                free(p.key);
                break;
            }
            done = n, capd = cap;
        }
        done[nd++] = p;
        s->heap_due = INT64_MAX;
        uint32_t keep = 0;
        for (uint32_t i = 0; i < s->n; i++) {
            if (s->s[i].end + q->win.gap + q->win.grace < op->stream_time) {
                if (nb == capb) {
                    uint32_t cap = capb ? capb * 2 : 16;
                    closed_session_t *n = realloc(batch, cap * sizeof *n);
                    if (n) batch = n, capb = cap;
                }
                if (nb < capb) {
                    batch[nb++] = (closed_session_t){s->s[i], s->keyvals, p.key, p.klen};
                    continue;
                }
            }
            s->s[keep++] = s->s[i];
        }
        s->n = keep;
    }
    if (nb > 1) qsort(batch, nb, sizeof *batch, closed_cmp);
    for (uint32_t i = 0; i < nb; i++) {
        uint64_t passed = 0;
        emit_row(op, batch[i].keyvals, batch[i].s.acc, batch[i].s.start, batch[i].s.end, batch[i].s.max_ts,
                 &passed, false, ev, emit, ctx);
        free_accs(op->sh, batch[i].s.acc);
    }
    free(batch);
    for (uint32_t i = 0; i < nd; i++) {
        uint64_t h = cep_hash_bytes(done[i].key, done[i].klen, 0);
        cep_entry_t *e = cep_table_get(op->table, done[i].key, done[i].klen, h);
        if (e) {
            sstate_t *s = e->data;
            if (!s->n) cep_table_remove(op->table, e);
            else session_schedule(op, done[i].key, done[i].klen, s);
        }
        free(done[i].key);
    }
    free(done);
}

/* ---- time windows ----------------------------------------------------- */

static void process_time(cep_aggop_t *op, const cep_value_t *keyvals, const cep_value_t *args,
                         const cep_value_t *args2, int64_t ts, bool retract, uint64_t seq, bool reuse,
                         cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    const cep_query_t *q = op->q;
    int64_t size = q->win.size, adv = q->win.advance, grace = q->win.grace;
    int64_t now = ev->has_watermark ? ev->watermark : ts;
    if (!op->seen || now > op->stream_time) op->stream_time = now;
    op->seen = true;
    int64_t first = ts - size + adv;
    if (first < 0) first = 0;
    first = first / adv * adv;
    size_t base = op->keybuf.len;
    for (int64_t ws = first; ws <= ts; ws += adv) {
        int64_t we = ws + size;
        if (we + grace <= op->stream_time) continue; /* too late for this window */
        op->keybuf.len = base;
        cep_buf_put(&op->keybuf, &ws, sizeof ws);
        op->hash_ready = reuse && ws == op->pre_ws;
        bool created = false;
        cep_entry_t *e = window_entry(op, keyvals, ts, &created);
        if (!e) continue;
        if (created) {
            wstate_t *w = e->data;
            w->wstart = ws;
            w->wend = we;
            /* EMIT CHANGES: a window is useless once no late event can reach it;
             * EMIT FINAL keeps it for the store's retention (its pending emission removes it) */
            cep_table_set_expiry(op->table, e, we + grace + (q->emit_final ? q->win.retention : 0));
            if (q->emit_final) pend_add(op, op->keybuf.data, (uint32_t)op->keybuf.len, ws, ws, we);
            if (ws > op->newest_start) op->newest_start = ws;
        }
        wstate_t *w = e->data;
        if (ts > w->max_ts) w->max_ts = ts;
        add_row(op->sh, w->acc, args, args2, retract, seq);
        cep_table_touch(op->table, e);
        if (!q->emit_final)
            emit_row(op, w->keyvals, w->acc, w->wstart, w->wend, w->max_ts, &w->passed, false, ev, emit, ctx);
    }
    op->keybuf.len = base;
    if (q->emit_final) emit_final_closed(op, ev, emit, ctx);
    else cep_table_expire(op->table, op->stream_time, 8);
}

/* ---- sessions ------------------------------------------------------------ */

static void process_session(cep_aggop_t *op, const cep_value_t *keyvals, const cep_value_t *args,
                            const cep_value_t *args2, int64_t ts, bool retract, uint64_t seq,
                            cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    const cep_query_t *q = op->q;
    int64_t gap = q->win.gap, grace = q->win.grace;
    int64_t adv = ev->has_watermark ? ev->watermark : ts;
    if (!op->seen || adv > op->stream_time) op->stream_time = adv;
    op->seen = true;
    if (q->emit_final) sessions_close(op, ev, emit, ctx);
    uint64_t h = op->hash_ready ? op->pre_hash : cep_hash_bytes(op->keybuf.data, op->keybuf.len, 0);
    op->hash_ready = false;
    bool created = false;
    cep_entry_t *e = cep_table_upsert(op->table, op->keybuf.data, op->keybuf.len, h, &created);
    if (!e) return;
    if (created) {
        sstate_t *s = calloc(1, sizeof *s);
        if (s) s->keyvals = clone_keys(q, keyvals), s->heap_due = INT64_MAX;
        if (!s || !s->keyvals) {
            free(s);
            cep_table_remove(op->table, e);
            return;
        }
        e->data = s;
    }
    sstate_t *s = e->data;
    /* drop expired sessions: they can no longer be merged into */
    uint32_t keep = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->s[i].end + gap + grace < op->stream_time) {
            if (q->emit_final) {
                uint64_t passed = 0;
                emit_row(op, s->keyvals, s->s[i].acc, s->s[i].start, s->s[i].end, s->s[i].max_ts, &passed,
                         false, ev, emit, ctx);
            }
            free_accs(op->sh, s->s[i].acc);
            continue;
        }
        s->s[keep++] = s->s[i];
    }
    s->n = keep;
    /* sessions overlapping [ts - gap, ts + gap] merge with the new event */
    int64_t ms = ts, me = ts, mts = ts;
    uint32_t first = UINT32_MAX, nmerge = 0;
    for (uint32_t i = 0; i < s->n; i++)
        if (s->s[i].end >= ts - gap && s->s[i].start <= ts + gap) {
            if (first == UINT32_MAX) first = i;
            nmerge++;
            if (s->s[i].start < ms) ms = s->s[i].start;
            if (s->s[i].end > me) me = s->s[i].end;
            if (s->s[i].max_ts > mts) mts = s->s[i].max_ts;
        }
    if (me + gap + grace < op->stream_time) return; /* late */
    cep_acc_t *acc = calloc(CEP_MAX(op->sh->nspecs, 1), sizeof *acc);
    if (!acc) return;
    uint64_t merged_passed = 0;
    if (nmerge) {
        /* tombstones for the replaced sessions (unless it is the same window) */
        bool same = nmerge == 1 && s->s[first].start == ms && s->s[first].end == me;
        for (uint32_t i = 0; i < s->n; i++) {
            session_t *x = &s->s[i];
            if (!(x->end >= ts - gap && x->start <= ts + gap)) continue;
            if (!same && !q->emit_final) {
                uint64_t p = x->passed;
                emit_row(op, s->keyvals, x->acc, x->start, x->end, x->end, &p, true, ev, emit, ctx);
            }
            if (same) merged_passed = x->passed;
            for (uint32_t a = 0; a < op->sh->nspecs; a++) cep_acc_merge(op->sh->specs[a], &acc[a], &x->acc[a]);
            free_accs(op->sh, x->acc);
            x->acc = NULL;
        }
        keep = 0;
        for (uint32_t i = 0; i < s->n; i++)
            if (s->s[i].acc) s->s[keep++] = s->s[i];
        s->n = keep;
    }
    add_row(op->sh, acc, args, args2, retract, seq);
    if (s->n == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        session_t *n = realloc(s->s, cap * sizeof *n);
        if (!n) {
            free_accs(op->sh, acc);
            return;
        }
        s->s = n;
        s->cap = cap;
    }
    /* keep sessions sorted by start */
    uint32_t at = s->n;
    while (at > 0 && s->s[at - 1].start > ms) at--;
    memmove(&s->s[at + 1], &s->s[at], (s->n - at) * sizeof *s->s);
    s->s[at] = (session_t){ms, me, mts, merged_passed, acc};
    s->n++;
    cep_table_touch(op->table, e);
    cep_table_set_expiry(op->table, e, me + gap + grace);
    if (!q->emit_final)
        emit_row(op, s->keyvals, acc, ms, me, me, &s->s[at].passed, false, ev, emit, ctx);
    else
        session_schedule(op, op->keybuf.data, (uint32_t)op->keybuf.len, s);
}

/* ---- checkpoints ---------------------------------------------------------- */

static void save_keyvals(const cep_query_t *q, const cep_value_t *kv, cep_buf_t *out)
{
    for (uint32_t i = 0; i < q->ngroup; i++) cep_codec_put_value(out, &kv[i]);
}

static cep_value_t *load_keyvals(const cep_query_t *q, cep_dec_t *d)
{
    cep_value_t *kv = calloc(CEP_MAX(q->ngroup, 1), sizeof *kv);
    if (!kv) return NULL;
    for (uint32_t i = 0; i < q->ngroup; i++) kv[i] = cep_codec_get_value(d, q->group[i]->type);
    return kv;
}

static void save_accs(const cep_aggshare_t *sh, const cep_acc_t *acc, cep_buf_t *out)
{
    for (uint32_t i = 0; i < sh->nspecs; i++) cep_acc_save(sh->specs[i], &acc[i], out);
}

static cep_acc_t *load_accs(const cep_aggshare_t *sh, cep_dec_t *d)
{
    cep_acc_t *acc = calloc(CEP_MAX(sh->nspecs, 1), sizeof *acc);
    if (!acc) return NULL;
    for (uint32_t i = 0; i < sh->nspecs && !d->bad; i++) cep_acc_load(sh->specs[i], &acc[i], d);
    return acc;
}

static bool entry_save(void *ctx, const cep_entry_t *e, cep_buf_t *out)
{
    const cep_aggop_t *op = ctx;
    const cep_query_t *q = op->q;
    if (q->win.kind == CEP_WIN_SESSION) {
        const sstate_t *s = e->data;
        save_keyvals(q, s->keyvals, out);
        cep_codec_put_i64(out, s->heap_due);
        cep_codec_put_u64(out, s->n);
        for (uint32_t i = 0; i < s->n; i++) {
            const session_t *x = &s->s[i];
            cep_codec_put_i64(out, x->start);
            cep_codec_put_i64(out, x->end);
            cep_codec_put_i64(out, x->max_ts);
            cep_codec_put_u64(out, x->passed);
            save_accs(op->sh, x->acc, out);
        }
    } else {
        const wstate_t *w = e->data;
        save_keyvals(q, w->keyvals, out);
        cep_codec_put_i64(out, w->wstart);
        cep_codec_put_i64(out, w->wend);
        cep_codec_put_i64(out, w->max_ts);
        cep_codec_put_u64(out, w->passed);
        cep_codec_put_u64(out, w->emitted);
        save_accs(op->sh, w->acc, out);
    }
    return true;
}

static bool entry_load(void *ctx, cep_entry_t *e, const char *p, size_t n)
{
    cep_aggop_t *op = ctx;
    const cep_query_t *q = op->q;
    cep_dec_t d = cep_codec_reader(p, n);
    if (q->win.kind == CEP_WIN_SESSION) {
        sstate_t *s = calloc(1, sizeof *s);
        if (!s) return false;
        e->data = s;
        s->keyvals = load_keyvals(q, &d);
        s->heap_due = cep_codec_get_i64(&d);
        uint64_t ns = cep_codec_get_u64(&d);
        if (!s->keyvals || d.bad || ns > (uint64_t)(d.end - d.p)) return false;
        s->s = calloc(ns + 1, sizeof *s->s);
        if (!s->s) return false;
        s->cap = (uint32_t)ns + 1;
        for (uint64_t i = 0; i < ns && !d.bad; i++) {
            session_t *x = &s->s[s->n++];
            x->start = cep_codec_get_i64(&d);
            x->end = cep_codec_get_i64(&d);
            x->max_ts = cep_codec_get_i64(&d);
            x->passed = cep_codec_get_u64(&d);
            if (!(x->acc = load_accs(op->sh, &d))) return false;
        }
    } else {
        wstate_t *w = calloc(1, sizeof *w);
        if (!w) return false;
        e->data = w;
        w->keyvals = load_keyvals(q, &d);
        w->wstart = cep_codec_get_i64(&d);
        w->wend = cep_codec_get_i64(&d);
        w->max_ts = cep_codec_get_i64(&d);
        w->passed = cep_codec_get_u64(&d);
        w->emitted = cep_codec_get_bool(&d);
        if (!w->keyvals || d.bad || !(w->acc = load_accs(op->sh, &d))) return false;
    }
    return cep_codec_done(&d);
}

/* The operator's own state: stream time and the EMIT FINAL heap (saved in
 * heap order, which is a heap again when read back). */
/* ---- another layout of the same share ------------------------------------ */

static bool same_spec(const cep_aggspec_t *x, const cep_aggspec_t *y)
{
    if (x->kind != y->kind || x->n != y->n || x->ignore_nulls != y->ignore_nulls || x->count_star != y->count_star)
        return false;
    const cep_program_t *p[2][2] = {{x->arg, x->arg2}, {y->arg, y->arg2}};
    for (int k = 0; k < 2; k++) {
        if (!p[0][k] != !p[1][k]) return false;
        if (p[0][k] && strcmp(p[0][k]->text ? p[0][k]->text : "", p[1][k]->text ? p[1][k]->text : "")) return false;
    }
    return true;
}

static bool conv_prepare(cep_aggop_t *op, const cep_aggop_t *from)
{
    op->conv_from = from;
    free(op->conv_spec);
    free(op->conv_member);
    free(op->conv_tmp);
    op->conv_spec = calloc(op->sh->nspecs + 1, sizeof *op->conv_spec);
    op->conv_member = calloc(op->sh->nmembers + 1, sizeof *op->conv_member);
    op->conv_tmp = calloc(op->sh->nspecs + 1, sizeof *op->conv_tmp);
    if (!op->conv_spec || !op->conv_member || !op->conv_tmp) return false;
    for (uint32_t i = 0; i < op->sh->nspecs; i++) {
        op->conv_spec[i] = UINT32_MAX;
        for (uint32_t k = 0; k < from->sh->nspecs && op->conv_spec[i] == UINT32_MAX; k++)
            if (same_spec(op->sh->specs[i], from->sh->specs[k])) op->conv_spec[i] = k;
    }
    for (uint32_t j = 0; j < op->sh->nmembers; j++) {
        op->conv_member[j] = UINT32_MAX;
        for (uint32_t k = 0; k < from->sh->nmembers && op->conv_member[j] == UINT32_MAX; k++)
            if (!strcmp(op->sh->members[j]->name, from->sh->members[k]->name)) op->conv_member[j] = k;
    }
    return true;
}

/* The union's accumulators in our order; the ones no member reads any
 * more are freed. Lineage puts only rules whose state carries over in one
 * share, so ours are a subset of the old union and the old array is big
 * enough to be reused when no new one can be had. */
static cep_acc_t *conv_accs(cep_aggop_t *op, cep_acc_t *old, bool *in_entry)
{
    const cep_aggshare_t *fsh = op->conv_from->sh;
    cep_acc_t *tmp = op->conv_tmp;
    for (uint32_t i = 0; i < op->sh->nspecs; i++) {
        memset(&tmp[i], 0, sizeof *tmp);
        if (op->conv_spec[i] != UINT32_MAX) {
            tmp[i] = old[op->conv_spec[i]];
            memset(&old[op->conv_spec[i]], 0, sizeof *old);
        }
    }
    for (uint32_t k = 0; k < fsh->nspecs; k++) cep_acc_free(&old[k]);
    cep_acc_t *acc = fsh->nspecs >= op->sh->nspecs ? old : calloc(CEP_MAX(op->sh->nspecs, 1), sizeof *acc);
    if (!acc) acc = old; /* cannot happen with a subset; keeps memory safe if it does */
    memcpy(acc, tmp, op->sh->nspecs * sizeof *acc);
    if (acc != old) {
        if (!*in_entry) free(old);
        *in_entry = false;
    }
    return acc;
}

static uint64_t conv_passed(const cep_aggop_t *op, uint64_t old)
{
    uint64_t p = 0;
    for (uint32_t j = 0; j < op->sh->nmembers; j++)
        if (op->conv_member[j] != UINT32_MAX && (old >> op->conv_member[j] & 1)) p |= 1ULL << j;
    return p;
}

static bool entry_convert(void *ctx, void *from_ctx, cep_entry_t *e)
{
    cep_aggop_t *op = ctx;
    if (!e) return conv_prepare(op, from_ctx);
    if (!e->data) return true;
    if (op->q->win.kind == CEP_WIN_SESSION) {
        sstate_t *s = e->data;
        for (uint32_t i = 0; i < s->n; i++) {
            bool apart = false;
            s->s[i].acc = conv_accs(op, s->s[i].acc, &apart);
            s->s[i].passed = conv_passed(op, s->s[i].passed);
        }
    } else {
        wstate_t *w = e->data;
        w->acc = conv_accs(op, w->acc, &w->acc_in_entry);
        w->passed = conv_passed(op, w->passed);
    }
    return true;
}

static void meta_save(void *ctx, cep_buf_t *out)
{
    const cep_aggop_t *op = ctx;
    cep_codec_put_i64(out, op->stream_time);
    cep_codec_put_u64(out, op->seen);
    cep_codec_put_i64(out, op->newest_start);
    cep_codec_put_u64(out, op->npend);
    for (uint32_t i = 0; i < op->npend; i++) {
        const pending_t *p = &op->pend[i];
        cep_codec_put_i64(out, p->order);
        cep_codec_put_i64(out, p->wstart);
        cep_codec_put_i64(out, p->wend);
        cep_codec_put_bytes(out, p->key, p->klen);
    }
}

static bool meta_load(void *ctx, const char *p, size_t n)
{
    cep_aggop_t *op = ctx;
    cep_dec_t d = cep_codec_reader(p, n);
    op->stream_time = cep_codec_get_i64(&d);
    op->seen = cep_codec_get_bool(&d);
    op->newest_start = cep_codec_get_i64(&d);
    uint64_t np = cep_codec_get_u64(&d);
    if (d.bad || np > (uint64_t)(d.end - d.p)) return false;
    for (uint32_t i = 0; i < op->npend; i++) free(op->pend[i].key);
    op->npend = 0;
    for (uint64_t i = 0; i < np && !d.bad; i++) {
        int64_t order = cep_codec_get_i64(&d), ws = cep_codec_get_i64(&d), we = cep_codec_get_i64(&d);
        size_t klen;
        const char *key = cep_codec_get_bytes(&d, &klen);
        if (!d.bad) pend_add(op, key, (uint32_t)klen, order, ws, we);
    }
    return cep_codec_done(&d);
}

/* ---- entry point ------------------------------------------------------- */

/* The group key's values of a row and its bytes in keybuf; false when the
 * row has no key (a throwing or null key drops the row). */
static bool group_key(cep_aggop_t *op, const cep_value_t *row, cep_eval_t *ev, cep_value_t *keyvals)
{
    const cep_query_t *q = op->q;
    if (q->ngroup > 64) return false;
    for (uint32_t i = 0; i < q->ngroup; i++) {
        if (!cep_program_run(q->group[i], row, ev, &keyvals[i])) return false;
        if (keyvals[i].kind == CEP_K_NULL) return false;
    }
    cep_buf_reset(&op->keybuf);
    for (uint32_t i = 0; i < q->ngroup; i++) encode_key(&op->keybuf, &keyvals[i]);
    return true;
}

void cep_aggop_prefetch(cep_aggop_t *op, const cep_value_t *row, uint64_t seq, cep_eval_t *ev, int stage)
{
    const cep_query_t *q = op->q;
    if (stage) {
        if (op->pre_ok) cep_table_prefetch(op->table, op->pre_hash, true);
        return;
    }
    op->pre_row = row;
    op->pre_seq = seq;
    op->pre_ok = op->pre_keys && group_key(op, row, ev, op->pre_keys);
    if (!op->pre_ok) return;
    op->pre_klen = op->keybuf.len;
    op->pre_ws = 0;
    if (q->win.kind == CEP_WIN_TUMBLING || q->win.kind == CEP_WIN_HOPPING) {
        int64_t ts = row[q->from->ncols + CEP_PSEUDO_ROWTIME].u.i;
        int64_t first = ts - q->win.size + q->win.advance;
        if (first < 0) first = 0;
        first = first / q->win.advance * q->win.advance;
        cep_buf_put(&op->keybuf, &first, sizeof first);
        op->pre_ws = first;
    }
    op->pre_hash = cep_hash_bytes(op->keybuf.data, op->keybuf.len, 0);
    cep_table_prefetch(op->table, op->pre_hash, false);
}

void cep_aggop_process(cep_aggop_t *op, const cep_value_t *row, bool retract, uint64_t seq,
                       cep_eval_t *ev, cep_emit_fn emit, void *ctx)
{
    const cep_query_t *q = op->q;
    const cep_aggshare_t *sh = op->sh;
    cep_value_t keyvals_own[64], *keyvals = keyvals_own, *args = op->args, *args2 = op->args2;
    bool reuse = op->pre_row == row && op->pre_seq == seq;
    op->pre_row = NULL;
    if (reuse) {
        if (!op->pre_ok) return;
        keyvals = op->pre_keys;
        op->keybuf.len = op->pre_klen;
    } else if (!group_key(op, row, ev, keyvals))
        return;
    for (uint32_t i = 0; i < sh->nspecs; i++) {
        const cep_aggspec_t *sp = sh->specs[i];
        args[i] = cep_null();
        args2[i] = cep_null();
        if (sp->arg && !cep_program_run(sp->arg, row, ev, &args[i])) args[i] = cep_null();
        if (sp->arg2 && !cep_program_run(sp->arg2, row, ev, &args2[i])) args2[i] = cep_null();
    }
    const cep_stream_t *from = q->from;
    int64_t ts = row[from->ncols + CEP_PSEUDO_ROWTIME].u.i;
    if (q->win.kind == CEP_WIN_NONE) {
        bool created = false;
        op->hash_ready = reuse;
        cep_entry_t *e = window_entry(op, keyvals, ts, &created);
        if (!e) return;
        wstate_t *w = e->data;
        if (ts > w->max_ts) w->max_ts = ts;
        add_row(op->sh, w->acc, args, args2, retract, seq);
        cep_table_touch(op->table, e);
        emit_row(op, w->keyvals, w->acc, 0, 0, w->max_ts, &w->passed, false, ev, emit, ctx);
        return;
    }
    if (q->win.kind == CEP_WIN_SESSION) {
        op->hash_ready = reuse;
        process_session(op, keyvals, args, args2, ts, retract, seq, ev, emit, ctx);
    } else
        process_time(op, keyvals, args, args2, ts, retract, seq, reuse, ev, emit, ctx);
}
