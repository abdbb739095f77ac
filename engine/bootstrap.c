/*
 * bootstrap.c — warming new and reset rules from recent history
 * (bootstrap.h): which rules and how far back, the history read on the
 * reload thread, and the hand-over on the event thread.
 */
#include "engine/bootstrap.h"
#include "engine/kafka.h"
#include "patterns/match.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Records still to read when the reload thread stops chasing the live
 * consumer: the event thread reads them at the swap. */
#define CATCH_UP_RECORDS 2000
#define CATCH_UP_ROUNDS 8

typedef struct part {
    char *topic; /* the Kafka topic (a source or an internal re-key topic) */
    int32_t partition;
    int64_t next; /* every record before it is in the private runtime */
    rd_kafka_topic_t *rkt;
    bool started, failed;
} part_t;

struct cep_bootstrap {
    cep_bootstrap_opts_t o;
    const cep_ruleset_t *rs;
    cep_runtime_t *rt; /* private: runs only the warming rules and what feeds them */
    bool *run, *warm;  /* per query: runs here; its state moves to the live runtime */
    uint32_t nrules;
    int64_t span;
    rd_kafka_t *rk;
    part_t *parts;
    uint32_t nparts;
    unsigned generation;
    uint64_t records, read_ns;
};

static void say(const cep_bootstrap_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const cep_bootstrap_t *b, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    FILE *f = b->o.log ? b->o.log : stderr;
    fprintf(f, "cep: bootstrap: %s\n", line);
    fflush(f);
}

/* ---- which rules, how far back -------------------------------------------------- */

/* A query with what it needs to run alone: the members of its shared
 * aggregation, and the queries whose output it reads. */
static void close_over(const cep_ruleset_t *rs, uint32_t qi, bool *in)
{
    if (in[qi]) return;
    in[qi] = true;
    const cep_query_t *q = rs->queries[qi];
    if (q->kind == CEP_Q_AGGREGATE)
        for (uint32_t i = 0; i < q->share->nmembers; i++) close_over(rs, q->share->members[i]->id, in);
    if (q->from && !q->from->is_source)
        for (uint32_t i = 0; i < rs->nqueries; i++)
            if (rs->queries[i]->sink == q->from) close_over(rs, i, in);
}

static void describe_span(int64_t ms, char *out, size_t cap)
{
    if (ms % 86400000 == 0) snprintf(out, cap, "%lld d", (long long)(ms / 86400000));
    else if (ms % 3600000 == 0) snprintf(out, cap, "%lld h", (long long)(ms / 3600000));
    else if (ms % 60000 == 0) snprintf(out, cap, "%lld min", (long long)(ms / 60000));
    else if (ms % 1000 == 0) snprintf(out, cap, "%lld s", (long long)(ms / 1000));
    else snprintf(out, cap, "%lld ms", (long long)ms);
}

/* Marks the rules that warm up (and what they need); returns how many. */
static uint32_t choose(cep_bootstrap_t *b, const cep_ruleset_t *running, cep_buf_t *names)
{
    const cep_ruleset_t *rs = b->rs;
    uint32_t since = running ? running->version : 0, n = 0;
    bool *in = calloc(rs->nqueries + 1, 1);
    if (!in) return 0;
    for (uint32_t i = 0; i < rs->nqueries; i++) {
        const cep_query_t *q = rs->queries[i];
        if (q->internal || q->origin <= since) continue; /* not a rule, or its state goes on */
        int64_t want = q->meta.bootstrap_ms != CEP_BOOTSTRAP_UNSET ? q->meta.bootstrap_ms : b->o.default_ms;
        if (want == 0 || want == CEP_BOOTSTRAP_OFF) continue;
        memset(in, 0, rs->nqueries);
        close_over(rs, i, in);
        int64_t span = 0;
        bool unbounded = false;
        for (uint32_t k = 0; k < rs->nqueries; k++) {
            if (!in[k]) continue;
            int64_t s = cep_query_span(rs->queries[k]);
            if (s < 0) unbounded = true;
            else span = CEP_MAX(span, s);
        }
        if (want == CEP_BOOTSTRAP_WINDOW && unbounded) {
            say(b, "%s: its state has no time bound (an aggregation without WINDOW, a pattern without WITHIN): "
                   "give BOOTSTRAP a duration such as '1 HOUR'; it starts fresh",
                q->name);
            continue;
        }
        if (want > 0) span = want;
        else if (!span && !unbounded) continue; /* keeps no state: nothing to warm */
        for (uint32_t k = 0; k < rs->nqueries; k++)
            if (in[k]) {
                b->run[k] = true;
                if (rs->queries[k]->origin > since) b->warm[k] = true;
            }
        b->span = CEP_MAX(b->span, span);
        cep_buf_printf(names, "%s%s", n ? ", " : "", q->name);
        n++;
    }
    free(in);
    return n;
}

/* ---- reading history --------------------------------------------------------------- */

static void discard(void *ctx, const cep_output_t *o)
{
    (void)ctx, (void)o; /* alerts of history are older than the reload */
}

static void no_rekey(void *ctx, const char *topic, const void *key, size_t klen, const cep_record_t *rec,
                     int64_t event_time)
{
    /* the re-keyed copies were made by the live engine: they are read from their topics */
    (void)ctx, (void)topic, (void)key, (void)klen, (void)rec, (void)event_time;
}

static bool moved(const cep_bootstrap_t *b)
{
    return atomic_load(b->o.generation) != b->generation;
}

/* The live consumer's position in each part: the next record it will
 * process (before its first record: the committed offset, else the
 * earliest). */
static bool live_positions(cep_bootstrap_t *b, int64_t *out)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)b->nparts);
    for (uint32_t i = 0; i < b->nparts; i++) rd_kafka_topic_partition_list_add(l, b->parts[i].topic, b->parts[i].partition);
    bool ok = !rd_kafka_position(b->o.live, l);
    bool unknown = false;
    for (int i = 0; ok && i < l->cnt; i++) unknown |= l->elems[i].offset < 0;
    if (ok && unknown) {
        rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
        if (!rd_kafka_committed(b->o.live, c, 5000))
            for (int i = 0; i < l->cnt; i++)
                if (l->elems[i].offset < 0) l->elems[i].offset = c->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(c);
        for (int i = 0; ok && i < l->cnt; i++) {
            int64_t lo, hi;
            if (l->elems[i].offset >= 0) continue;
            ok = !rd_kafka_query_watermark_offsets(b->rk, l->elems[i].topic, l->elems[i].partition, &lo, &hi, 5000);
            l->elems[i].offset = lo;
        }
    }
    for (int i = 0; ok && i < l->cnt; i++) out[i] = l->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(l);
    return ok;
}

/* Read a part up to (not including) offset `to` into the private runtime. */
static bool read_to(cep_bootstrap_t *b, part_t *pt, int64_t to)
{
    uint64_t t0 = cep_now_ns(), quiet_since = t0;
    while (pt->next < to && !pt->failed) {
        if ((b->o.stop && *b->o.stop) || cep_now_ns() - quiet_since > 30000000000ULL) {
            say(b, "%s[%d]: no record at offset %lld after 30 s", pt->topic, (int)pt->partition, (long long)pt->next);
            pt->failed = true;
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consume(pt->rkt, pt->partition, 200);
        if (!m) continue;
        quiet_since = cep_now_ns();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* the end: whatever the offsets below it hold (transaction markers) is read */
            if (m->offset >= to) pt->next = to;
        } else if (m->err) {
            say(b, "%s[%d]: %s", pt->topic, (int)pt->partition, rd_kafka_message_errstr(m));
            pt->failed = m->err != RD_KAFKA_RESP_ERR__TRANSPORT;
        } else if (m->offset >= pt->next && m->offset < to) {
            cep_record_t r;
            cep_kafka_record(m, b->rs, &r);
            cep_error_t err;
            cep_error_clear(&err);
            (void)cep_runtime_push(b->rt, &r, &err); /* a bad record went to the dead letters already */
            b->records++;
            pt->next = m->offset + 1;
        } else if (m->offset >= to) {
            pt->next = to; /* offsets below it that never came are gaps (compaction, markers) */
        }
        rd_kafka_message_destroy(m);
    }
    b->read_ns += cep_now_ns() - t0;
    return !pt->failed;
}

/* Where each part's history starts: the window span before the last
 * record the live consumer processed there, by record time. */
static bool start(cep_bootstrap_t *b, const int64_t *live)
{
    for (uint32_t i = 0; i < b->nparts; i++) {
        part_t *pt = &b->parts[i];
        pt->next = live[i];
        int64_t ts = -1;
        if (live[i] > 0 && rd_kafka_consume_start(pt->rkt, pt->partition, live[i] - 1) == 0) {
            for (int tries = 0; tries < 50 && ts < 0; tries++) {
                rd_kafka_message_t *m = rd_kafka_consume(pt->rkt, pt->partition, 200);
                if (!m) continue;
                if (!m->err && m->offset == live[i] - 1) ts = rd_kafka_message_timestamp(m, NULL);
                else if (!m->err || m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) tries = 50; /* a gap: no history */
                rd_kafka_message_destroy(m);
            }
            rd_kafka_consume_stop(pt->rkt, pt->partition);
        }
        if (ts >= 0) {
            int64_t from = cep_kafka_offset_for_time(b->rk, pt->topic, pt->partition, CEP_MAX(ts - b->span, 0), live[i]);
            if (from < 0) {
                say(b, "%s[%d]: cannot find where its history starts", pt->topic, (int)pt->partition);
                return false;
            }
            pt->next = CEP_MIN(from, live[i]);
        }
        if (rd_kafka_consume_start(pt->rkt, pt->partition, pt->next)) {
            say(b, "%s[%d]: cannot read: %s", pt->topic, (int)pt->partition, rd_kafka_err2str(rd_kafka_last_error()));
            return false;
        }
        pt->started = true;
    }
    return true;
}

static bool reads(const cep_bootstrap_t *b, const char *topic)
{
    const cep_ruleset_t *rs = b->rs;
    for (uint32_t i = 0; i < rs->nqueries; i++)
        if (b->run[i] && rs->queries[i]->from && rs->queries[i]->from->is_source &&
            !strcmp(rs->queries[i]->from->topic, topic))
            return true;
    const char *src, *t;
    for (uint32_t i = 0; (t = cep_runtime_rekey_topic(b->rt, i, &src)); i++)
        if (!strcmp(t, topic)) return reads(b, src);
    return false;
}

static bool open_parts(cep_bootstrap_t *b)
{
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    bool ok = rd_kafka_conf_set(c, "bootstrap.servers", b->o.brokers, errstr, sizeof errstr) == RD_KAFKA_CONF_OK &&
              rd_kafka_conf_set(c, "enable.partition.eof", "true", errstr, sizeof errstr) == RD_KAFKA_CONF_OK;
    for (size_t i = 0; ok && i < b->o.nprops; i++) {
        const char *eq = strchr(b->o.props[i], '=');
        if (!eq) continue;
        char k[256];
        snprintf(k, sizeof k, "%.*s", (int)(eq - b->o.props[i]), b->o.props[i]);
        ok = rd_kafka_conf_set(c, k, eq + 1, errstr, sizeof errstr) == RD_KAFKA_CONF_OK;
    }
    if (!ok || !(b->rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr))) {
        if (!ok) rd_kafka_conf_destroy(c);
        say(b, "consumer: %s", errstr);
        return false;
    }
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(b->o.live, &a) || !a) return false;
    b->parts = calloc((size_t)a->cnt + 1, sizeof *b->parts);
    for (int i = 0; b->parts && i < a->cnt; i++) {
        if (!reads(b, a->elems[i].topic)) continue;
        part_t *pt = &b->parts[b->nparts];
        pt->topic = strdup(a->elems[i].topic);
        pt->partition = a->elems[i].partition;
        pt->rkt = rd_kafka_topic_new(b->rk, a->elems[i].topic, NULL);
        b->nparts++;
        if (!pt->topic || !pt->rkt) ok = false;
    }
    rd_kafka_topic_partition_list_destroy(a);
    return ok && b->parts;
}

cep_bootstrap_t *cep_bootstrap_prepare(const cep_bootstrap_opts_t *o, const cep_ruleset_t *next,
                                       const cep_ruleset_t *running)
{
    cep_bootstrap_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->o = *o;
    b->rs = next;
    b->generation = atomic_load(o->generation);
    b->run = calloc(next->nqueries + 1, 1);
    b->warm = calloc(next->nqueries + 1, 1);
    cep_buf_t names;
    cep_buf_init(&names);
    if (!b->run || !b->warm || !(b->nrules = choose(b, running, &names))) {
        cep_buf_free(&names);
        cep_bootstrap_free(b);
        return NULL;
    }
    char span[32];
    describe_span(b->span, span, sizeof span);
    say(b, "version %u: %u rule(s) warm up from the last %s of history: %s", next->version, b->nrules, span,
        cep_buf_cstr(&names));
    cep_buf_free(&names);
    b->rt = cep_runtime_new(next, discard, NULL);
    if (!b->rt || !cep_runtime_only(b->rt, b->run)) goto fail;
    cep_runtime_set_rekey(b->rt, o->rekey_prefix, no_rekey, NULL);
    if (!open_parts(b)) goto fail;
    int64_t *live = calloc(b->nparts + 1, sizeof *live);
    bool ok = live && live_positions(b, live) && start(b, live);
    /* chase the live consumer until little is left for the swap */
    for (int round = 0; ok && round < CATCH_UP_ROUNDS && !moved(b); round++) {
        uint64_t left = 0;
        if (round && !(ok = live_positions(b, live))) break;
        for (uint32_t i = 0; i < b->nparts; i++) left += live[i] > b->parts[i].next ? (uint64_t)(live[i] - b->parts[i].next) : 0;
        if (round && left <= CATCH_UP_RECORDS) break;
        for (uint32_t i = 0; ok && i < b->nparts; i++) ok = read_to(b, &b->parts[i], live[i]);
    }
    free(live);
    if (ok && !moved(b)) {
        say(b, "version %u: %llu records of history read in %.1f ms from %u partition(s)", next->version,
            (unsigned long long)b->records, (double)b->read_ns / 1e6, b->nparts);
        return b;
    }
    if (ok) say(b, "version %u: partitions moved while history was read; the rules start fresh", next->version);
fail:
    say(b, "version %u: not warmed; the rules start fresh", next->version);
    cep_bootstrap_free(b);
    return NULL;
}

/* ---- the hand-over ---------------------------------------------------------------- */

void cep_bootstrap_finish(cep_bootstrap_t *b, cep_runtime_t *rt, const char *topic, int32_t partition, int64_t offset)
{
    if (!b) return;
    if (moved(b)) {
        say(b, "version %u: partitions moved since history was read; the rules start fresh", b->rs->version);
        return;
    }
    uint64_t t0 = cep_now_ns(), before = b->records;
    int64_t *live = calloc(b->nparts + 1, sizeof *live);
    if (!live || !live_positions(b, live)) {
        free(live);
        say(b, "version %u: the live positions are unknown; the rules start fresh", b->rs->version);
        return;
    }
    for (uint32_t i = 0; i < b->nparts; i++) {
        part_t *pt = &b->parts[i];
        /* the record the new version starts with is not processed yet */
        if (pt->partition == partition && !strcmp(pt->topic, topic)) live[i] = offset;
        if (live[i] < pt->next) pt->failed = true; /* the consumer went back (a seek): that history is not its past */
        else read_to(b, pt, live[i]);
    }
    size_t entries = 0, refused = 0, tasks = 0, skipped = 0;
    for (uint32_t i = 0; i < b->nparts; i++) {
        int32_t p = b->parts[i].partition;
        bool first = true, failed = false;
        for (uint32_t k = 0; k < b->nparts; k++) {
            if (b->parts[k].partition != p) continue;
            first &= k >= i;
            failed |= b->parts[k].failed;
        }
        if (!first) continue; /* a task is grafted once, after all of its topics are read */
        if (failed) {
            skipped++;
            continue;
        }
        size_t r = 0;
        entries += cep_runtime_graft(rt, b->rt, p, b->warm, &r);
        refused += r;
        tasks++;
    }
    free(live);
    say(b, "version %u: %u rule(s) warm: %llu more records read at the swap in %.2f ms; %zu state entries moved into "
           "%zu task(s)%s",
        b->rs->version, b->nrules, (unsigned long long)(b->records - before), (double)(cep_now_ns() - t0) / 1e6, entries,
        tasks, skipped ? "; some partitions could not be read to the end: their rules start fresh" : "");
    if (refused) say(b, "%zu state table(s) were not empty and kept their own state", refused);
}

void cep_bootstrap_free(cep_bootstrap_t *b)
{
    if (!b) return;
    for (uint32_t i = 0; i < b->nparts; i++) {
        if (b->parts[i].started) rd_kafka_consume_stop(b->parts[i].rkt, b->parts[i].partition);
        if (b->parts[i].rkt) rd_kafka_topic_destroy(b->parts[i].rkt);
        free(b->parts[i].topic);
    }
    free(b->parts);
    if (b->rk) rd_kafka_destroy(b->rk);
    cep_runtime_free(b->rt);
    free(b->run);
    free(b->warm);
    free(b);
}
