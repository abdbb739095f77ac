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
    cep_runtime_stats_t stats;
    cep_buf_t keybuf;
    uint32_t *sources; /* the source streams: the only ones a record can feed */
    uint32_t nsources;
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
}

static bool task_meta_load(void *ctx, const char *bytes, size_t n)
{
    task_t *t = ctx;
    cep_dec_t d = cep_codec_reader(bytes, n);
    t->seq = cep_codec_get_u64(&d);
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
    cep_table_codec_t tc = {NULL, NULL, task_meta_save, task_meta_load, t};
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
            cep_table_codec_t pc = {prev_save, prev_load, NULL, NULL, (void *)rs->streams[i]};
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
    rt->ev.scratch = &rt->scratch;
    rt->ev.err = &rt->everr;
    /* task 0 exists from the start: a pack that cannot build its operators fails here */
    if (!rt->sources || !rt->atom_gen || !rt->atom_val || !rt->cand || !task_of(rt, 0)) {
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
    free(rt->ev.stack);
    cep_arena_free(&rt->scratch);
    cep_buf_free(&rt->keybuf);
    free(rt);
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

static bool where_passes(cep_runtime_t *rt, const cep_stream_t *s, const cep_query_t *q,
                         const cep_value_t *row)
{
    for (uint32_t i = 0; i < q->nwhere; i++) {
        uint32_t a = q->where_atoms[i];
        if (rt->atom_gen[a] != rt->gen) {
            cep_value_t v;
            bool ok = cep_program_run(s->atoms[a], row, &rt->ev, &v);
            rt->atom_val[a] = ok && v.kind == CEP_K_BOOLEAN && v.u.b;
            rt->atom_gen[a] = rt->gen;
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
    for (uint32_t i = 0; i < n; i++) {
        const cep_query_t *q = rt->rs->queries[list[i]];
        rt->stats.query_runs++;
        if (value_null) {
            if (q->kind == CEP_Q_PROJECT && !q->nwhere) run_project(rt, q, row, true);
            continue;
        }
        if (!where_passes(rt, s, q, row)) continue;
        if (q->kind == CEP_Q_PROJECT) {
            if (!retract) run_project(rt, q, row, false);
        } else if (q->kind == CEP_Q_MATCH) {
            if (!retract) cep_matchop_push(rt->cur->mops[q->id], row, &rt->ev, on_output, rt);
        } else if (q->kind == CEP_Q_OVER) {
            if (!retract) cep_overop_process(rt->cur->oops[q->id], row, &rt->ev, on_output, rt);
        } else if (rt->cur->share_gen[q->share->id] != feed) {
            /* the members of a share have one WHERE: the first to pass runs it for all */
            rt->cur->share_gen[q->share->id] = feed;
            cep_aggop_process(rt->cur->ops[q->share->id], row, retract, rt->cur->seq, &rt->ev, on_output, rt);
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
                if (q->kind != CEP_Q_AGGREGATE || task->share_gen[q->share->id] == feed || !where_passes(rt, s, q, old))
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

cep_status_t cep_runtime_push(cep_runtime_t *rt, const cep_record_t *rec, cep_error_t *err)
{
    cep_arena_reset(&rt->scratch);
    rt->stats.records++;
    const cep_ruleset_t *rs = rt->rs;
    cep_value_t rowbuf[256];
    for (uint32_t k = 0; k < rt->nsources; k++) {
        const cep_stream_t *s = rs->streams[rt->sources[k]];
        if (strcmp(s->topic, rec->topic)) continue;
        cep_value_t *row = s->nslots <= 256 ? rowbuf : cep_arena_alloc(&rt->scratch, s->nslots * sizeof *row);
        if (!row) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
        cep_status_t st = cep_decode_record(s, rec, row, &rt->scratch, err);
        if (st) {
            rt->stats.dead_letters++;
            return st;
        }
        rt->stats.decoded++;
        if (!(rt->cur = task_of(rt, rec->partition))) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
        feed_stream(rt, s, row, rec->value == NULL);
    }
    return CEP_OK;
}

void cep_runtime_watermark(cep_runtime_t *rt, int64_t wm)
{
    cep_arena_reset(&rt->scratch);
    for (uint32_t p = 0; p < rt->ntasks; p++) {
        task_t *t = rt->tasks[p];
        if (!t) continue;
        rt->cur = t;
        for (uint32_t i = 0; i < rt->rs->nqueries; i++)
            if (t->mops[i]) cep_matchop_watermark(t->mops[i], wm, &rt->ev, on_output, rt);
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
