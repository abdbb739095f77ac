/*
 * runtime.c — the per-event path. For each record: find the source streams
 * of its topic, decode once into a row, pick candidate queries with the
 * prefilter, evaluate each distinct WHERE atom at most once (memoised per
 * event), and run the queries: projections emit a row, aggregations update
 * state through their operator. The scratch arena is reset per record, so
 * the steady state allocates nothing.
 */
#include "engine/runtime.h"
#include "patterns/match.h"
#include "patterns/over.h"
#include "state/codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct prev_row {
    uint32_t n;
    cep_value_t v[];
} prev_row_t;

/* The fingerprint of a task's own table (its scalars), and of a stream's
 * previous-row table. */
#define TASK_FP 0x7461736b00000000ULL
#define PREV_FP(i) (0x7461626c65ULL ^ (uint64_t)(i) * 0x9e3779b97f4a7c15ULL)

/* Queries on one source stream that keep state per key, with one key that
 * is not the stream's KEY column: their records are re-keyed through one
 * internal topic, so each key's records meet in one partition. */
typedef struct rekey_group {
    const cep_stream_t *stream;
    cep_program_t *const *keys; /* the key programs (of the first member) */
    uint32_t nkeys;
    uint64_t sig; /* hash of the stream and the key programs' text */
    char *topic;  /* the internal topic, once named */
    uint32_t *queries;
    uint32_t nq;
} rekey_group_t;

/* The highest source offset seen per (group, source partition) in a task:
 * a re-keyed record produced again after a crash is recognised and skipped. */
typedef struct rekey_seen {
    uint64_t sig;
    int32_t partition;
    int64_t offset;
} rekey_seen_t;

/* A task: the pack's operators and state for one source partition number
 * (every source topic's partition p), as in Kafka Streams. Partitions move
 * between instances whole, so everything a partition's records touch lives
 * here: state, stream time, arrival sequence. */
typedef struct task {
    int32_t partition;
    cep_runtime_t *rt;
    cep_store_t *store;
    cep_aggop_t **ops;    /* per aggregation share (plan.h) */
    cep_matchop_t **mops; /* per query, MATCH_RECOGNIZE only */
    cep_overop_t **oops;  /* per query, sliding OVER aggregates only */
    cep_table_t **prev;   /* per table stream: the last row per primary key, to retract on update */
    uint32_t *share_gen;  /* the feed that last ran each share, so members run it once */
    uint64_t seq;         /* arrival order */
    rekey_seen_t *seen;   /* re-keyed records: the last source offset per (group, source partition) */
    uint32_t nseen, capseen;
} task_t;

struct cep_runtime {
    const cep_ruleset_t *rs;
    cep_emit_fn emit;
    void *ctx;
    task_t **tasks; /* by partition number; NULL until a record or a restore needs it */
    uint32_t ntasks;
    task_t *cur;    /* the task of the record being processed */
    bool track;
    int64_t delay;  /* MATCH_RECOGNIZE watermark delay for new tasks */
    cep_arena_t scratch;
    cep_eval_t ev;
    cep_error_t everr;
    /* per-event memo of WHERE atoms: generation-stamped */
    uint32_t *atom_gen;
    uint8_t *atom_val;
    uint32_t gen;
    uint32_t *cand;
    int depth;
    uint32_t running; /* the query run for the current record (or time), nested outputs included */
    cep_runtime_stats_t stats;
    cep_buf_t keybuf;
    uint32_t *sources; /* the source streams: the only ones a record can feed */
    uint32_t nsources;
    /* re-keying (cep_runtime_set_rekey) */
    uint32_t *rk; /* per query: 0 = runs on the source record, g = the query of re-key group g */
    rekey_group_t *groups; /* groups[g - 1] */
    uint32_t ngroups;
    cep_rekey_fn rekey;
    void *rekey_ctx;
    char *rekey_prefix;
    uint32_t cur_group; /* 0: the record is a source record; g: a record of group g's topic */
    cep_buf_t rkbuf;
    bool *only; /* cep_runtime_only: per query, does it run (NULL: all do) */
    uint64_t *passes; /* per query: rows that passed its WHERE */
};

static void prev_free(void *ctx, cep_entry_t *e)
{
    (void)ctx;
    prev_row_t *p = e->data;
    if (!p) return;
    for (uint32_t i = 0; i < p->n; i++) cep_value_free_owned(&p->v[i]);
    free(p);
    e->data = NULL;
}

static bool prev_save(void *ctx, const cep_entry_t *e, cep_buf_t *out)
{
    const prev_row_t *p = e->data;
    cep_codec_put_u64(out, p->n);
    for (uint32_t i = 0; i < p->n; i++) cep_codec_put_value(out, &p->v[i]);
    (void)ctx;
    return true;
}

static bool prev_load(void *ctx, cep_entry_t *e, const char *bytes, size_t n)
{
    const cep_stream_t *s = ctx;
    cep_dec_t d = cep_codec_reader(bytes, n);
    uint64_t nv = cep_codec_get_u64(&d);
    if (d.bad || nv != s->nslots) return false;
    prev_row_t *p = calloc(1, sizeof *p + nv * sizeof(cep_value_t));
    if (!p) return false;
    e->data = p;
    for (uint32_t i = 0; i < nv; i++, p->n++) p->v[i] = cep_codec_get_value(&d, i < s->ncols ? s->cols[i].type : NULL);
    return cep_codec_done(&d);
}

static void task_meta_save(void *ctx, cep_buf_t *out)
{
    const task_t *t = ctx;
    cep_codec_put_u64(out, t->seq);
    cep_codec_put_u64(out, t->nseen);
    for (uint32_t i = 0; i < t->nseen; i++) {
        cep_codec_put_u64(out, t->seen[i].sig);
        cep_codec_put_i64(out, t->seen[i].partition);
        cep_codec_put_i64(out, t->seen[i].offset);
    }
}

static rekey_seen_t *seen_slot(task_t *t, uint64_t sig, int32_t partition)
{
    for (uint32_t i = 0; i < t->nseen; i++)
        if (t->seen[i].sig == sig && t->seen[i].partition == partition) return &t->seen[i];
    if (t->nseen == t->capseen) {
        uint32_t cap = t->capseen ? t->capseen * 2 : 8;
        rekey_seen_t *g = realloc(t->seen, cap * sizeof *g);
        if (!g) return NULL;
        t->seen = g;
        t->capseen = cap;
    }
    t->seen[t->nseen] = (rekey_seen_t){sig, partition, -1};
    return &t->seen[t->nseen++];
}

static bool task_meta_load(void *ctx, const char *bytes, size_t n)
{
    task_t *t = ctx;
    cep_dec_t d = cep_codec_reader(bytes, n);
    t->seq = cep_codec_get_u64(&d);
    uint64_t ns = cep_codec_get_u64(&d);
    if (d.bad || ns > (uint64_t)(d.end - d.p)) return false;
    for (uint64_t i = 0; i < ns && !d.bad; i++) {
        uint64_t sig = cep_codec_get_u64(&d);
        int64_t partition = cep_codec_get_i64(&d), offset = cep_codec_get_i64(&d);
        rekey_seen_t *x = d.bad ? NULL : seen_slot(t, sig, (int32_t)partition);
        if (x) x->offset = offset;
    }
    return cep_codec_done(&d);
}

static void task_free(task_t *t)
{
    if (!t) return;
    const cep_ruleset_t *rs = t->rt->rs;
    /* the store first: match partitions are freed through their operator */
    cep_store_free(t->store);
    if (t->ops)
        for (uint32_t i = 0; i < rs->nshares; i++) cep_aggop_free(t->ops[i]);
    if (t->mops)
        for (uint32_t i = 0; i < rs->nqueries; i++) cep_matchop_free(t->mops[i]);
    if (t->oops)
        for (uint32_t i = 0; i < rs->nqueries; i++) cep_overop_free(t->oops[i]);
    free(t->ops);
    free(t->mops);
    free(t->oops);
    free(t->prev);
    free(t->share_gen);
    free(t->seen);
    free(t);
}

static task_t *task_new(cep_runtime_t *rt, int32_t partition)
{
    const cep_ruleset_t *rs = rt->rs;
    task_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->partition = partition;
    t->rt = rt;
    t->store = cep_store_mem_new();
    t->ops = calloc(rs->nshares + 1, sizeof *t->ops);
    t->share_gen = calloc(rs->nshares + 1, sizeof *t->share_gen);
    t->mops = calloc(rs->nqueries + 1, sizeof *t->mops);
    t->oops = calloc(rs->nqueries + 1, sizeof *t->oops);
    t->prev = calloc(rs->nstreams + 1, sizeof *t->prev);
    if (!t->store || !t->ops || !t->share_gen || !t->mops || !t->oops || !t->prev) goto fail;
    cep_store_track(t->store, rt->track);
    cep_table_t *self = cep_store_table(t->store, TASK_FP, "task", NULL, NULL);
    if (!self) goto fail;
    cep_table_codec_t tc = {.save_meta = task_meta_save, .load_meta = task_meta_load, .ctx = t};
    cep_table_set_codec(self, &tc);
    for (uint32_t i = 0; i < rs->nshares; i++)
        if (!(t->ops[i] = cep_aggop_new(rs->shares[i], t->store))) goto fail;
    for (uint32_t i = 0; i < rs->nqueries; i++)
        if (rs->queries[i]->kind == CEP_Q_OVER && !(t->oops[i] = cep_overop_new(rs->queries[i], t->store))) goto fail;
    for (uint32_t i = 0; i < rs->nqueries; i++)
        if (rs->queries[i]->kind == CEP_Q_MATCH) {
            if (!(t->mops[i] = cep_matchop_new(rs->queries[i], t->store))) goto fail;
            cep_matchop_set_delay(t->mops[i], rt->delay);
        }
    for (uint32_t i = 0; i < rs->nstreams; i++)
        if (rs->streams[i]->is_table) {
            t->prev[i] = cep_store_table(t->store, PREV_FP(i), rs->streams[i]->name, prev_free, NULL);
            if (!t->prev[i]) goto fail;
            cep_table_codec_t pc = {.save = prev_save, .load = prev_load, .ctx = (void *)rs->streams[i]};
            cep_table_set_codec(t->prev[i], &pc);
        }
    return t;
fail:
    task_free(t);
    return NULL;
}

/* The task of a partition number, created on first use (records without a
 * partition, from files, belong to task 0). NULL only when out of memory. */
static task_t *task_of(cep_runtime_t *rt, int32_t partition)
{
    uint32_t p = partition < 0 ? 0 : (uint32_t)partition;
    if (p >= rt->ntasks) {
        uint32_t n = p + 1 > rt->ntasks * 2 ? p + 1 : rt->ntasks * 2;
        task_t **g = realloc(rt->tasks, n * sizeof *g);
        if (!g) return NULL;
        memset(g + rt->ntasks, 0, (n - rt->ntasks) * sizeof *g);
        rt->tasks = g;
        rt->ntasks = n;
    }
    if (!rt->tasks[p]) rt->tasks[p] = task_new(rt, (int32_t)p);
    return rt->tasks[p];
}

/* The key a query keeps its state by: GROUP BY, PARTITION BY. */
static uint32_t state_key(const cep_query_t *q, cep_program_t *const **keys)
{
    switch (q->kind) {
    case CEP_Q_AGGREGATE: *keys = q->group; return q->ngroup;
    case CEP_Q_MATCH: *keys = q->match->partition; return q->match->npartition;
    case CEP_Q_OVER:
        if (!q->novers) return 0;
        *keys = q->overs[0].partition;
        return q->overs[0].npartition;
    default: return 0;
    }
}

static bool find_groups(cep_runtime_t *rt)
{
    const cep_ruleset_t *rs = rt->rs;
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        const cep_query_t *q = rs->queries[i];
        const cep_stream_t *s = q->from;
        cep_program_t *const *keys = NULL;
        uint32_t nkeys = state_key(q, &keys);
        if (!s || !s->is_source || s->is_table || !nkeys) continue;
        /* keyed by the message key: the topic's partitions already group it */
        if (nkeys == 1 && s->msg_key && keys[0]->ncode == 1 && keys[0]->code[0].op == OP_COL &&
            keys[0]->code[0].a == s->msg_key - 1)
            continue;
        uint64_t sig = cep_hash_bytes(s->name, strlen(s->name), 0x72656b6579ULL);
        for (uint32_t k = 0; k < nkeys; k++)
            sig = cep_hash_bytes(keys[k]->text ? keys[k]->text : "", keys[k]->text ? strlen(keys[k]->text) : 0, sig);
        uint32_t g = 0;
        while (g < rt->ngroups && rt->groups[g].sig != sig) g++;
        if (g == rt->ngroups) {
            rekey_group_t *n = realloc(rt->groups, (rt->ngroups + 1) * sizeof *n);
            if (!n) return false;
            rt->groups = n;
            n[g] = (rekey_group_t){s, keys, nkeys, sig, NULL, calloc(rs->nqueries + 1, sizeof(uint32_t)), 0};
            if (!n[g].queries) return false;
            rt->ngroups++;
        }
        rt->groups[g].queries[rt->groups[g].nq++] = i;
        rt->rk[i] = g + 1;
    }
    return true;
}

cep_runtime_t *cep_runtime_new(const cep_ruleset_t *rs, cep_emit_fn emit, void *ctx)
{
    cep_runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt) return NULL;
    rt->rs = rs;
    rt->emit = emit;
    rt->ctx = ctx;
    rt->delay = 0; /* live default: a row is matched once a later one arrives */
    rt->atom_gen = calloc(rs->max_atoms + 1, sizeof *rt->atom_gen);
    rt->atom_val = calloc(rs->max_atoms + 1, 1);
    rt->cand = calloc(rs->nqueries + 1, sizeof *rt->cand);
    rt->sources = calloc(rs->nstreams + 1, sizeof *rt->sources);
    for (uint32_t i = 0; rt->sources && i < rs->nstreams; i++)
        if (rs->streams[i]->is_source) rt->sources[rt->nsources++] = i;
    cep_arena_init(&rt->scratch, 64 * 1024);
    cep_buf_init(&rt->keybuf);
    cep_buf_init(&rt->rkbuf);
    rt->ev.scratch = &rt->scratch;
    rt->ev.err = &rt->everr;
    rt->rk = calloc(rs->nqueries + 1, sizeof *rt->rk);
    rt->passes = calloc(rs->nqueries + 1, sizeof *rt->passes);
    /* task 0 exists from the start: a pack that cannot build its operators fails here */
    if (!rt->sources || !rt->atom_gen || !rt->atom_val || !rt->cand || !rt->rk || !rt->passes || !find_groups(rt) ||
        !task_of(rt, 0)) {
        cep_runtime_free(rt);
        return NULL;
    }
    return rt;
}

void cep_runtime_free(cep_runtime_t *rt)
{
    if (!rt) return;
    for (uint32_t i = 0; i < rt->ntasks; i++) task_free(rt->tasks[i]);
    free(rt->tasks);
    free(rt->atom_gen);
    free(rt->atom_val);
    free(rt->cand);
    free(rt->sources);
    for (uint32_t g = 0; g < rt->ngroups; g++) {
        free(rt->groups[g].topic);
        free(rt->groups[g].queries);
    }
    free(rt->groups);
    free(rt->rk);
    free(rt->rekey_prefix);
    free(rt->only);
    free(rt->passes);
    free(rt->ev.stack);
    cep_arena_free(&rt->scratch);
    cep_buf_free(&rt->keybuf);
    cep_buf_free(&rt->rkbuf);
    free(rt);
}

uint32_t cep_runtime_running(const cep_runtime_t *rt)
{
    return rt->running;
}

uint64_t cep_runtime_passes(const cep_runtime_t *rt, uint32_t query)
{
    return rt->passes && query < rt->rs->nqueries ? rt->passes[query] : 0;
}

const cep_runtime_stats_t *cep_runtime_stats(const cep_runtime_t *rt)
{
    return &rt->stats;
}

bool cep_runtime_reads_topic(const cep_runtime_t *rt, const char *topic)
{
    for (uint32_t i = 0; i < rt->rs->nstreams; i++)
        if (rt->rs->streams[i]->is_source && !strcmp(rt->rs->streams[i]->topic, topic)) return true;
    return false;
}

static void feed_stream(cep_runtime_t *rt, const cep_stream_t *s, cep_value_t *row, bool value_null);

/* an output row: to the caller, and to queries reading the sink */
static void on_output(void *ctx, const cep_output_t *o)
{
    cep_runtime_t *rt = ctx;
    if (!o->query->internal) {
        rt->stats.outputs++;
        rt->emit(rt->ctx, o);
    }
    const cep_stream_t *sink = o->sink;
    if (!sink->nqueries || rt->depth > 16) return;
    cep_value_t *row = cep_arena_alloc(&rt->scratch, sink->nslots * sizeof *row);
    if (!row) return;
    for (uint32_t i = 0; i < sink->ncols; i++) row[i] = o->cols[i];
    for (uint32_t i = sink->ncols; i < sink->nslots; i++) row[i] = cep_null();
    row[sink->ncols + CEP_PSEUDO_ROWTIME] = cep_v_int(CEP_K_BIGINT, o->timestamp);
    if (o->windowed) {
        row[sink->ncols + CEP_PSEUDO_WINDOWSTART] = cep_v_int(CEP_K_BIGINT, o->wstart);
        row[sink->ncols + CEP_PSEUDO_WINDOWEND] = cep_v_int(CEP_K_BIGINT, o->wend);
    }
    rt->depth++;
    feed_stream(rt, sink, row, o->tombstone);
    rt->depth--;
}

/* feed: the generation of the row being fed. Atom values are memoised per
 * feed; the memo is shared by all streams, and a query's outputs feed other
 * streams in between (their rows get later generations), so the row's own
 * generation, not rt->gen, says whether a memoised value is this row's. */
static bool where_passes(cep_runtime_t *rt, const cep_stream_t *s, const cep_query_t *q,
                         const cep_value_t *row, uint32_t feed)
{
    for (uint32_t i = 0; i < q->nwhere; i++) {
        uint32_t a = q->where_atoms[i];
        if (rt->atom_gen[a] != feed) {
            cep_value_t v;
            bool ok = cep_program_run(s->atoms[a], row, &rt->ev, &v);
            rt->atom_val[a] = ok && v.kind == CEP_K_BOOLEAN && v.u.b;
            rt->atom_gen[a] = feed;
        }
        if (!rt->atom_val[a]) return false;
    }
    return true;
}

static void run_project(cep_runtime_t *rt, const cep_query_t *q, const cep_value_t *row, bool value_null)
{
    const cep_stream_t *sink = q->sink;
    cep_value_t *cols = cep_arena_alloc(&rt->scratch, (sink->ncols + 1) * sizeof *cols);
    if (!cols) return;
    for (uint32_t i = 0; i < sink->ncols; i++) {
        if (value_null && !sink->cols[i].is_key) {
            cols[i] = cep_null();
            continue;
        }
        if (!cep_program_run(q->proj[i], row, &rt->ev, &cols[i])) cols[i] = cep_null();
    }
    const cep_stream_t *from = q->from;
    cep_output_t o = {.query = q,
                      .sink = sink,
                      .cols = cols,
                      .tombstone = value_null,
                      .timestamp = row[from->ncols + CEP_PSEUDO_ROWTIME].u.i};
    if (from->window_type != CEP_WIN_NONE) {
        o.windowed = true;
        o.wstart = row[from->ncols + CEP_PSEUDO_WINDOWSTART].u.i;
        o.wend = row[from->ncols + CEP_PSEUDO_WINDOWEND].u.i;
        o.wtype = from->window_type;
    }
    on_output(rt, &o);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* candidate queries of stream s for this row, in statement order */
static uint32_t candidates(cep_runtime_t *rt, const cep_stream_t *s, const cep_value_t *row)
{
    uint32_t n = 0, lists = 0;
    for (uint32_t i = 0; i < s->npf_always; i++) rt->cand[n++] = s->pf_always[i];
    lists += s->npf_always > 0;
    for (uint32_t k = 0; k < s->npf; k++) {
        const cep_pf_index_t *ix = &s->pf[k];
        const cep_value_t *v = &row[ix->slot];
        if (v->kind == CEP_K_NULL) continue;
        uint32_t m = ix->nbuckets - 1;
        for (uint32_t b = (uint32_t)cep_value_hash(v, 0) & m;; b = (b + 1) & m) {
            const cep_pf_bucket_t *bk = &ix->buckets[b];
            if (!bk->nqueries) break;
            if (cep_value_eq(&bk->value, v)) {
                for (uint32_t j = 0; j < bk->nqueries; j++) rt->cand[n++] = bk->queries[j];
                lists++;
                break;
            }
        }
    }
    /* each list is in statement order: only a union of lists needs sorting */
    if (lists > 1) qsort(rt->cand, n, sizeof *rt->cand, cmp_u32);
    return n;
}

/* The aggregations this row will update (in the order they run, into ops)
 * start loading their table slots, so the cache misses of their lookups
 * overlap; each entry is then loaded two operators ahead of its update
 * (stage 1, in run_queries). WHERE atoms are memoised for the feed:
 * evaluating them here costs the run below nothing. */
#define PREFETCH_MAX 64
static uint32_t prefetch_state(cep_runtime_t *rt, const cep_stream_t *s, const uint32_t *list, uint32_t n,
                               const cep_value_t *row, uint32_t feed, cep_aggop_t **ops)
{
    uint32_t nops = 0;
    for (uint32_t i = 0; i < n && nops < PREFETCH_MAX; i++) {
        const cep_query_t *q = rt->rs->queries[list[i]];
        if (q->kind != CEP_Q_AGGREGATE || (rt->only && !rt->only[q->id])) continue;
        if (rt->rekey && s->is_source && rt->rk[q->id] != rt->cur_group) continue;
        cep_aggop_t *op = rt->cur->ops[q->share->id];
        if ((nops && ops[nops - 1] == op) || rt->cur->share_gen[q->share->id] == feed) continue;
        if (!where_passes(rt, s, q, row, feed)) continue;
        ops[nops++] = op;
    }
    if (nops < 4) return 0; /* too few to overlap */
    for (uint32_t i = 0; i < nops; i++) cep_aggop_prefetch(ops[i], row, rt->cur->seq, &rt->ev, 0);
    for (uint32_t i = 0; i < 2; i++) cep_aggop_prefetch(ops[i], row, rt->cur->seq, &rt->ev, 1);
    return nops;
}

static void run_queries(cep_runtime_t *rt, const cep_stream_t *s, const cep_value_t *row,
                        bool value_null, bool retract)
{
    uint32_t *cand = rt->cand;
    uint32_t n;
    if (value_null) {
        /* a null value passes only through plain projections */
        n = 0;
        for (uint32_t i = 0; i < s->nqueries; i++) cand[n++] = s->queries[i];
    } else
        n = candidates(rt, s, row);
    /* copy: nested outputs reuse rt->cand */
    uint32_t local[256];
    uint32_t *list = n <= 256 ? local : malloc(n * sizeof *list);
    if (!list) return;
    memcpy(list, cand, n * sizeof *list);
    uint32_t feed = rt->gen; /* nested outputs move rt->gen on; this feed's mark stays */
    cep_aggop_t *pre[PREFETCH_MAX];
    uint32_t npre = value_null ? 0 : prefetch_state(rt, s, list, n, row, feed, pre), next = 0;
    for (uint32_t i = 0; i < n; i++) {
        const cep_query_t *q = rt->rs->queries[list[i]];
        if (rt->only && !rt->only[q->id]) continue;
        /* re-keyed queries run on their group's records only, the others on source records only */
        if (rt->rekey && s->is_source && rt->rk[q->id] != rt->cur_group) continue;
        if (!rt->depth) rt->running = q->id;
        rt->stats.query_runs++;
        if (value_null) {
            if (q->kind == CEP_Q_PROJECT && !q->nwhere) run_project(rt, q, row, true);
            continue;
        }
        if (!where_passes(rt, s, q, row, feed)) continue;
        if (rt->passes) rt->passes[q->id]++;
        if (q->kind == CEP_Q_PROJECT) {
            if (!retract) run_project(rt, q, row, false);
        } else if (q->kind == CEP_Q_MATCH) {
            if (!retract) cep_matchop_push(rt->cur->mops[q->id], row, &rt->ev, on_output, rt);
        } else if (q->kind == CEP_Q_OVER) {
            if (!retract) cep_overop_process(rt->cur->oops[q->id], row, &rt->ev, on_output, rt);
        } else if (rt->cur->share_gen[q->share->id] != feed) {
            /* the members of a share have one WHERE: the first to pass runs it for all */
            rt->cur->share_gen[q->share->id] = feed;
            cep_aggop_t *op = rt->cur->ops[q->share->id];
            if (next < npre && pre[next] == op && ++next + 1 < npre)
                cep_aggop_prefetch(pre[next + 1], row, rt->cur->seq, &rt->ev, 1);
            cep_aggop_process(op, row, retract, rt->cur->seq, &rt->ev, on_output, rt);
        }
    }
    if (list != local) free(list);
}

static void encode_pk(cep_buf_t *b, const cep_stream_t *s, const cep_value_t *row)
{
    cep_buf_reset(b);
    for (uint32_t k = 0; k < s->nkey; k++) {
        cep_buf_t tmp;
        cep_buf_init(&tmp);
        cep_value_to_json(&row[s->key_cols[k]], &tmp);
        cep_buf_put(b, tmp.data ? tmp.data : "", tmp.len);
        cep_buf_putc(b, 0);
        cep_buf_free(&tmp);
    }
}

static void feed_stream(cep_runtime_t *rt, const cep_stream_t *s, cep_value_t *row, bool value_null)
{
    task_t *task = rt->cur;
    task->seq++;
    rt->gen++;
    if (!s->is_table) {
        run_queries(rt, s, row, value_null, false);
        return;
    }
    /* a table is a changelog: withdraw the previous row of this key first */
    cep_table_t *prev = task->prev[s->id];
    encode_pk(&rt->keybuf, s, row);
    uint64_t h = cep_hash_bytes(rt->keybuf.data, rt->keybuf.len, 0);
    cep_entry_t *e = cep_table_get(prev, rt->keybuf.data, rt->keybuf.len, h);
    bool has_agg = false;
    for (uint32_t i = 0; i < s->nqueries; i++) has_agg |= rt->rs->queries[s->queries[i]]->kind == CEP_Q_AGGREGATE;
    if (e && e->data && has_agg) {
        prev_row_t *p = e->data;
        cep_value_t *old = cep_arena_alloc(&rt->scratch, p->n * sizeof *old);
        if (old) {
            memcpy(old, p->v, p->n * sizeof *old);
            /* the retraction happens at the new record's time */
            old[s->ncols + CEP_PSEUDO_ROWTIME] = row[s->ncols + CEP_PSEUDO_ROWTIME];
            uint32_t feed = ++rt->gen;
            for (uint32_t i = 0; i < s->nqueries; i++) {
                const cep_query_t *q = rt->rs->queries[s->queries[i]];
                if (q->kind != CEP_Q_AGGREGATE || (rt->only && !rt->only[q->id]) ||
                    task->share_gen[q->share->id] == feed || !where_passes(rt, s, q, old, feed))
                    continue;
                task->share_gen[q->share->id] = feed;
                cep_aggop_process(task->ops[q->share->id], old, true, task->seq, &rt->ev, on_output, rt);
            }
            rt->gen++;
        }
    }
    if (value_null) {
        if (e) cep_table_remove(prev, e);
        for (uint32_t i = 0; i < s->nqueries; i++) {
            const cep_query_t *q = rt->rs->queries[s->queries[i]];
            if (q->kind == CEP_Q_PROJECT && !q->nwhere) run_project(rt, q, row, true);
        }
        return;
    }
    if (has_agg) {
        bool created;
        e = cep_table_upsert(prev, rt->keybuf.data, rt->keybuf.len, h, &created);
        if (e) {
            if (e->data) prev_free(NULL, e);
            prev_row_t *p = malloc(sizeof *p + s->nslots * sizeof(cep_value_t));
            if (p) {
                p->n = s->nslots;
                for (uint32_t i = 0; i < s->nslots; i++) p->v[i] = cep_value_clone(&row[i]);
            }
            e->data = p;
        }
    }
    run_queries(rt, s, row, false, false);
}

/* Send a source record to the topics of the groups some member of which
 * may take it (its WHERE passes), keyed by the group's key. */
static void forward(cep_runtime_t *rt, const cep_stream_t *s, const cep_value_t *row, const cep_record_t *rec)
{
    for (uint32_t g = 0; g < rt->ngroups; g++) {
        rekey_group_t *gr = &rt->groups[g];
        if (gr->stream != s) continue;
        rt->gen++;
        bool any = false;
        for (uint32_t k = 0; k < gr->nq && !any; k++) any = where_passes(rt, s, rt->rs->queries[gr->queries[k]], row, rt->gen);
        if (!any) continue;
        cep_buf_reset(&rt->rkbuf);
        for (uint32_t k = 0; k < gr->nkeys; k++) {
            cep_value_t v;
            if (!cep_program_run(gr->keys[k], row, &rt->ev, &v)) v = cep_null();
            if (k) cep_buf_putc(&rt->rkbuf, 0x1f);
            cep_value_to_json(&v, &rt->rkbuf);
        }
        rt->rekey(rt->rekey_ctx, gr->topic, rt->rkbuf.data ? rt->rkbuf.data : "", rt->rkbuf.len, rec,
                  row[s->ncols + CEP_PSEUDO_ROWTIME].u.i);
        rt->stats.rekeyed++;
    }
}

static rekey_group_t *group_of_topic(cep_runtime_t *rt, const char *topic, uint32_t *g)
{
    for (uint32_t i = 0; i < rt->ngroups; i++)
        if (rt->groups[i].topic && !strcmp(rt->groups[i].topic, topic)) {
            *g = i + 1;
            return &rt->groups[i];
        }
    return NULL;
}

cep_status_t cep_runtime_push(cep_runtime_t *rt, const cep_record_t *rec, cep_error_t *err)
{
    cep_arena_reset(&rt->scratch);
    rt->stats.records++;
    const cep_ruleset_t *rs = rt->rs;
    cep_value_t rowbuf[256];
    uint32_t g = 0;
    rekey_group_t *gr = rt->rekey ? group_of_topic(rt, rec->topic, &g) : NULL;
    for (uint32_t k = 0; k < rt->nsources; k++) {
        const cep_stream_t *s = rs->streams[rt->sources[k]];
        if (gr ? s != gr->stream : strcmp(s->topic, rec->topic) != 0) continue;
        cep_value_t *row = s->nslots <= 256 ? rowbuf : cep_arena_alloc(&rt->scratch, s->nslots * sizeof *row);
        if (!row) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
        cep_status_t st = cep_decode_record(s, rec, row, &rt->scratch, err);
        if (st) {
            rt->stats.dead_letters++;
            return st;
        }
        rt->stats.decoded++;
        if (!(rt->cur = task_of(rt, rec->partition))) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
        if (gr && rec->src_partition >= 0) {
            /* produced again after a crash upstream: this task has it already */
            rekey_seen_t *seen = seen_slot(rt->cur, gr->sig, rec->src_partition);
            if (seen && rec->src_offset <= seen->offset) {
                rt->stats.rekey_duplicates++;
                return CEP_OK;
            }
            if (seen) seen->offset = rec->src_offset;
        }
        rt->cur_group = g;
        if (rt->rekey && !gr && rec->value) forward(rt, s, row, rec);
        feed_stream(rt, s, row, rec->value == NULL);
        rt->cur_group = 0;
    }
    return CEP_OK;
}

void cep_runtime_set_rekey(cep_runtime_t *rt, const char *prefix, cep_rekey_fn fn, void *ctx)
{
    rt->rekey = fn;
    rt->rekey_ctx = ctx;
    if (prefix != rt->rekey_prefix) {
        free(rt->rekey_prefix);
        rt->rekey_prefix = strdup(prefix);
    }
    for (uint32_t g = 0; g < rt->ngroups; g++) {
        char name[512];
        snprintf(name, sizeof name, "%s.%s.rekey.%08llx", prefix, rt->groups[g].stream->name,
                 (unsigned long long)(rt->groups[g].sig & 0xffffffffULL));
        free(rt->groups[g].topic);
        rt->groups[g].topic = strdup(name);
    }
}

const char *cep_runtime_rekey_topic(const cep_runtime_t *rt, uint32_t i, const char **source_topic)
{
    if (i >= rt->ngroups) return NULL;
    if (source_topic) *source_topic = rt->groups[i].stream->topic;
    return rt->groups[i].topic;
}

void cep_runtime_watermark(cep_runtime_t *rt, int64_t wm)
{
    cep_arena_reset(&rt->scratch);
    for (uint32_t p = 0; p < rt->ntasks; p++) {
        task_t *t = rt->tasks[p];
        if (!t) continue;
        rt->cur = t;
        for (uint32_t i = 0; i < rt->rs->nqueries; i++)
            if (t->mops[i]) {
                rt->running = i;
                cep_matchop_watermark(t->mops[i], wm, &rt->ev, on_output, rt);
            }
    }
}

void cep_runtime_finish(cep_runtime_t *rt)
{
    cep_runtime_watermark(rt, INT64_MAX);
}

void cep_runtime_set_watermark_delay(cep_runtime_t *rt, int64_t delay)
{
    rt->delay = delay;
    for (uint32_t p = 0; p < rt->ntasks; p++)
        for (uint32_t i = 0; rt->tasks[p] && i < rt->rs->nqueries; i++)
            if (rt->tasks[p]->mops[i]) cep_matchop_set_delay(rt->tasks[p]->mops[i], delay);
}

void cep_runtime_match_stats(const cep_runtime_t *rt, cep_match_stats_t *sum)
{
    memset(sum, 0, sizeof *sum);
    for (uint32_t p = 0; p < rt->ntasks; p++)
        for (uint32_t i = 0; rt->tasks[p] && i < rt->rs->nqueries; i++) {
            if (!rt->tasks[p]->mops[i]) continue;
            const cep_match_stats_t *s = cep_matchop_stats(rt->tasks[p]->mops[i]);
            sum->rows += s->rows, sum->late += s->late, sum->matches += s->matches;
            sum->capped_runs += s->capped_runs;
            if (s->peak_runs > sum->peak_runs) sum->peak_runs = s->peak_runs;
            for (int k = 0; k < 16; k++) sum->runs_hist[k] += s->runs_hist[k];
        }
}

const char *cep_runtime_error(const cep_runtime_t *rt)
{
    for (uint32_t p = 0; p < rt->ntasks; p++)
        for (uint32_t i = 0; rt->tasks[p] && i < rt->rs->nqueries; i++) {
            const char *e = rt->tasks[p]->mops[i] ? cep_matchop_error(rt->tasks[p]->mops[i]) : NULL;
            if (e) return e;
        }
    return NULL;
}

/* ---- tasks and checkpoints ---------------------------------------------- */

void cep_runtime_track(cep_runtime_t *rt, bool on)
{
    rt->track = on;
    for (uint32_t p = 0; p < rt->ntasks; p++)
        if (rt->tasks[p]) cep_store_track(rt->tasks[p]->store, on);
}

bool cep_runtime_has_task(const cep_runtime_t *rt, int32_t partition)
{
    uint32_t p = partition < 0 ? 0 : (uint32_t)partition;
    return p < rt->ntasks && rt->tasks[p];
}

void cep_runtime_task_drop(cep_runtime_t *rt, int32_t partition)
{
    uint32_t p = partition < 0 ? 0 : (uint32_t)partition;
    if (p >= rt->ntasks || !rt->tasks[p]) return;
    task_free(rt->tasks[p]);
    rt->tasks[p] = NULL;
}

size_t cep_runtime_task_entries(const cep_runtime_t *rt, int32_t partition)
{
    uint32_t p = partition < 0 ? 0 : (uint32_t)partition;
    return p < rt->ntasks && rt->tasks[p] ? cep_store_size(rt->tasks[p]->store) : 0;
}

cep_status_t cep_runtime_checkpoint(cep_runtime_t *rt, int32_t partition, bool all, const cep_ckpt_sink_t *sink,
                                    cep_ckpt_stats_t *stats, cep_error_t *err)
{
    task_t *t = task_of(rt, partition);
    if (!t) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    cep_store_checkpoint(t->store, all, sink, stats);
    return CEP_OK;
}

void cep_runtime_checkpoint_done(cep_runtime_t *rt, int32_t partition)
{
    if (cep_runtime_has_task(rt, partition)) cep_store_checkpoint_done(rt->tasks[partition < 0 ? 0 : partition]->store);
}

cep_status_t cep_runtime_restore(cep_runtime_t *rt, int32_t partition, bool meta, const void *id, size_t idlen,
                                 const void *val, size_t vlen, size_t *unknown, cep_error_t *err)
{
    task_t *t = task_of(rt, partition);
    if (!t) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    return meta ? cep_store_restore_meta(t->store, id, idlen, val, vlen, unknown, err)
                : cep_store_restore_entry(t->store, id, idlen, val, vlen, unknown, err);
}

/* ---- snapshots: a task's checkpoint as one byte string ---------------------- */

cep_status_t cep_runtime_snapshot(cep_runtime_t *rt, int32_t partition, cep_buf_t *out, cep_error_t *err)
{
    task_t *t = task_of(rt, partition);
    if (!t) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    return cep_store_snapshot(t->store, out, err);
}

cep_status_t cep_runtime_restore_snapshot(cep_runtime_t *rt, int32_t partition, const void *p, size_t n,
                                          cep_error_t *err)
{
    task_t *t = task_of(rt, partition);
    if (!t) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    return cep_store_restore_snapshot(t->store, p, n, NULL, err);
}

/* ---- a new rule set, with the state that still fits ---------------------------- */

cep_status_t cep_runtime_swap(cep_runtime_t *rt, const cep_ruleset_t *next, cep_swap_stats_t *st, cep_error_t *err)
{
    cep_swap_stats_t local = {0};
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    cep_runtime_t *n = cep_runtime_new(next, rt->emit, rt->ctx);
    if (!n) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory building the new rule set's runtime");
    cep_runtime_set_watermark_delay(n, rt->delay);
    cep_runtime_track(n, rt->track);
    if (rt->rekey) cep_runtime_set_rekey(n, rt->rekey_prefix ? rt->rekey_prefix : "cep", rt->rekey, rt->rekey_ctx);
    for (uint32_t p = 0; p < rt->ntasks; p++) {
        task_t *old = rt->tasks[p];
        if (!old) continue;
        task_t *t = task_of(n, (int32_t)p);
        if (!t) {
            cep_runtime_free(n);
            return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory building the new rule set's runtime");
        }
        size_t dropped = 0;
        st->kept += cep_store_adopt(t->store, old->store, &dropped);
        st->dropped += dropped;
        st->tasks++;
    }
    n->stats = rt->stats;
    /* the caller's pointer stays valid: swap the contents, free the old */
    cep_runtime_t tmp = *rt;
    *rt = *n;
    *n = tmp;
    for (uint32_t p = 0; p < rt->ntasks; p++)
        if (rt->tasks[p]) rt->tasks[p]->rt = rt;
    for (uint32_t p = 0; p < n->ntasks; p++) /* the old tasks free their old operators */
        if (n->tasks[p]) n->tasks[p]->rt = n;
    cep_runtime_free(n);
    return CEP_OK;
}

/* ---- warming rules apart ------------------------------------------------------ */

bool cep_runtime_only(cep_runtime_t *rt, const bool *only)
{
    free(rt->only);
    rt->only = NULL;
    if (!only) return true;
    if (!(rt->only = malloc(rt->rs->nqueries + 1))) return false;
    memcpy(rt->only, only, rt->rs->nqueries);
    return true;
}

static void graft(cep_table_t *to, cep_table_t *from, size_t *moved, size_t *refused)
{
    size_t n = 0;
    if (!to || !from) return;
    if (cep_table_graft(to, from, &n)) *moved += n;
    else if (cep_table_size(from)) (*refused)++;
}

size_t cep_runtime_graft(cep_runtime_t *rt, cep_runtime_t *from, int32_t partition, const bool *queries,
                         size_t *refused)
{
    size_t moved = 0, local = 0;
    if (!refused) refused = &local;
    *refused = 0;
    const cep_ruleset_t *rs = rt->rs;
    uint32_t p = partition < 0 ? 0 : (uint32_t)partition;
    if (from->rs != rs || p >= from->ntasks || !from->tasks[p]) return 0;
    task_t *f = from->tasks[p], *t = task_of(rt, partition);
    if (!t) return 0;
    bool *done = calloc(rs->nshares + 1, 1); /* shares are grafted once, whichever member asks */
    if (!done) return 0;
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        const cep_query_t *q = rs->queries[i];
        if (!queries[i]) continue;
        if (q->kind == CEP_Q_AGGREGATE && !done[q->share->id]) {
            done[q->share->id] = true;
            graft(cep_aggop_table(t->ops[q->share->id]), cep_aggop_table(f->ops[q->share->id]), &moved, refused);
        } else if (q->kind == CEP_Q_MATCH) {
            graft(cep_matchop_table(t->mops[i]), cep_matchop_table(f->mops[i]), &moved, refused);
        } else if (q->kind == CEP_Q_OVER) {
            for (uint32_t k = 0; k < q->novers; k++)
                graft(cep_overop_table(t->oops[i], k), cep_overop_table(f->oops[i], k), &moved, refused);
        }
    }
    free(done);
    return moved;
}
