/*
 * state.c — the state benchmark (`cep-bench-state`): what durable state
 * costs, against a real redis-server.
 *
 *   cep-bench-state --rules PACK --events FILE --redis URL [--tasks 8] [--every 100000] [--keys 1000000]
 *
 * 1. The pack over the events, spread over --tasks tasks by account_id (as
 *    a topic keyed by account would be), first without checkpoints, then
 *    with an incremental checkpoint every --every events: throughput of
 *    both, Redis commands per event, checkpoint time against dirty entries.
 * 2. Restore of every task from Redis into a fresh runtime: time, entries/s,
 *    resident memory per restored entry.
 * 3. --keys distinct keys of one GROUP BY in one task: memory per key,
 *    the time to checkpoint them all and to restore them.
 */
#include "engine/checkpoint.h"
#include "engine/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct events {
    char *data;
    size_t len;
    uint32_t *off, *n;
    int32_t *task;
    size_t count;
} events_t;

static bool load(const char *path, unsigned tasks, events_t *ev)
{
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_file_read(path, &ev->data, &ev->len, &err)) {
        fprintf(stderr, "cep-bench-state: %s\n", err.msg);
        return false;
    }
    size_t cap = 1 << 16;
    ev->off = malloc(cap * sizeof *ev->off);
    ev->n = malloc(cap * sizeof *ev->n);
    ev->task = malloc(cap * sizeof *ev->task);
    for (size_t p = 0; p < ev->len;) {
        char *nl = memchr(ev->data + p, '\n', ev->len - p);
        size_t e = nl ? (size_t)(nl - ev->data) : ev->len;
        if (e > p) {
            if (ev->count == cap) {
                cap *= 2;
                ev->off = realloc(ev->off, cap * sizeof *ev->off);
                ev->n = realloc(ev->n, cap * sizeof *ev->n);
                ev->task = realloc(ev->task, cap * sizeof *ev->task);
            }
            /* the task of the account, as a topic keyed by account_id would place it */
            const char *a = memmem(ev->data + p, e - p, "\"account_id\":\"", 14);
            uint64_t h = 0;
            if (a) {
                a += 14;
                const char *q = memchr(a, '"', (size_t)(ev->data + e - a));
                h = cep_hash_bytes(a, q ? (size_t)(q - a) : 0, 0);
            }
            ev->off[ev->count] = (uint32_t)p;
            ev->n[ev->count] = (uint32_t)(e - p);
            ev->task[ev->count++] = (int32_t)(h % tasks);
        }
        p = e + 1;
    }
    return true;
}

static void on_out(void *ctx, const cep_output_t *o)
{
    (*(uint64_t *)ctx)++;
    (void)o;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static cep_ckpt_t *ckpt_connect(const char *url, const char *ns, cep_runtime_t *rt)
{
    cep_ckpt_t *c = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_ckpt_new(url, ns, rt, &c, &err)) {
        fprintf(stderr, "cep-bench-state: %s\n", err.msg);
        exit(1);
    }
    return c;
}

static void save_all(cep_ckpt_t *c, const int32_t *ids, unsigned n)
{
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_ckpt_save_tasks(c, ids, n, &err)) {
        fprintf(stderr, "cep-bench-state: checkpoint: %s\n", err.msg);
        exit(1);
    }
}

static void restore_all(cep_ckpt_t *c, unsigned n)
{
    for (unsigned t = 0; t < n; t++) {
        cep_error_t err;
        cep_error_clear(&err);
        if (cep_ckpt_restore_task(c, (int32_t)t, &err)) {
            fprintf(stderr, "cep-bench-state: restore: %s\n", err.msg);
            exit(1);
        }
    }
}

/* Phase 1 and 2. */
static void pack_run(const cep_ruleset_t *rs, const events_t *ev, const char *url, unsigned tasks, size_t every)
{
    int32_t ids[256];
    for (unsigned t = 0; t < tasks; t++) ids[t] = (int32_t)t;
    double secs[2];
    uint64_t outs[2] = {0, 0};
    uint64_t *ck_ns = calloc(ev->count / every + 2, sizeof *ck_ns), *ck_n = calloc(ev->count / every + 2, sizeof *ck_n);
    size_t nck = 0;
    cep_ckpt_t *c = NULL;
    for (int with = 0; with < 2; with++) {
        cep_runtime_t *rt = cep_runtime_new(rs, on_out, &outs[with]);
        if (with) c = ckpt_connect(url, "bench:pack", rt);
        uint64_t t0 = cep_now_ns();
        for (size_t i = 0; i < ev->count; i++) {
            cep_record_t r = {.topic = "gaming.events", .value = ev->data + ev->off[i], .vlen = ev->n[i],
                              .partition = ev->task[i]};
            cep_runtime_push(rt, &r, NULL);
            if (with && (i + 1) % every == 0) {
                save_all(c, ids, tasks);
                ck_ns[nck] = cep_ckpt_info(c)->last_ns;
                ck_n[nck++] = cep_ckpt_info(c)->last_entries;
            }
        }
        if (with) save_all(c, ids, tasks);
        secs[with] = (double)(cep_now_ns() - t0) / 1e9;
        if (!with) {
            cep_runtime_free(rt);
            continue;
        }
        size_t entries = 0;
        for (unsigned t = 0; t < tasks; t++) entries += cep_runtime_task_entries(rt, (int32_t)t);
        uint64_t commands = cep_ckpt_commands(c);
        printf("pack: %u rules, %zu events over %u tasks, %zu state entries at the end\n", rs->nqueries, ev->count,
               tasks, entries);
        printf("  without checkpoints: %.0f events/s\n", (double)ev->count / secs[0]);
        printf("  checkpoint every %zu events: %.0f events/s (%.2fx), %zu checkpoints\n", every,
               (double)ev->count / secs[1], secs[0] / secs[1], nck + 1);
        printf("  Redis commands: %llu, %.5f per event\n", (unsigned long long)commands,
               (double)commands / (double)ev->count);
        for (size_t i = 0; i < nck; i++) ck_n[i] = ck_n[i] << 32 | (ck_ns[i] / 1000 & 0xffffffffULL);
        qsort(ck_n, nck, sizeof *ck_n, cmp_u64);
        printf("  checkpoint time against dirty entries (entries: ms):");
        for (size_t i = 0; i < nck; i += nck > 8 ? nck / 8 : 1)
            printf(" %llu: %.1f", (unsigned long long)(ck_n[i] >> 32), (double)(ck_n[i] & 0xffffffffULL) / 1000.0);
        if (nck) printf(" %llu: %.1f", (unsigned long long)(ck_n[nck - 1] >> 32), (double)(ck_n[nck - 1] & 0xffffffffULL) / 1000.0);
        printf("\n");
        /* phase 2: restore every task into a fresh runtime */
        cep_ckpt_free(c);
        cep_runtime_free(rt);
        uint64_t none = 0;
        cep_runtime_t *fresh = cep_runtime_new(rs, on_out, &none);
        cep_ckpt_t *r = ckpt_connect(url, "bench:pack", fresh);
        uint64_t t1 = cep_now_ns();
        restore_all(r, tasks);
        double rs_secs = (double)(cep_now_ns() - t1) / 1e9;
        size_t back = 0;
        for (unsigned t = 0; t < tasks; t++) back += cep_runtime_task_entries(fresh, (int32_t)t);
        printf("  restore: %zu entries in %.3f s (%.0f entries/s)\n", back, rs_secs, (double)back / rs_secs);
        if (back != entries) printf("  RESTORE MISMATCH: %zu entries held, %zu restored\n", entries, back);
        cep_ckpt_free(r);
        cep_runtime_free(fresh);
    }
    free(ck_ns);
    free(ck_n);
}

/* Phase 3: n distinct keys in one task. */
static void keys_run(const char *url, size_t n)
{
    const char *sql = "CREATE STREAM s (k VARCHAR, v BIGINT, t BIGINT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON', "
                      "TIMESTAMP='t');\n"
                      "CREATE TABLE per_key AS SELECT k, COUNT(*) AS n, SUM(v) AS total FROM s "
                      "WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY k;\n";
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile("keys.sql", sql, strlen(sql), NULL, &rs, &err)) {
        fprintf(stderr, "cep-bench-state: %s\n", err.msg);
        exit(1);
    }
    uint64_t outs = 0;
    long before = cep_rss_kb();
    cep_runtime_t *rt = cep_runtime_new(rs, on_out, &outs);
    cep_ckpt_t *c = ckpt_connect(url, "bench:keys", rt); /* tracking on before the first key */
    char line[128];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(line, sizeof line, "{\"k\":\"user-%08zu\",\"v\":%zu,\"t\":%zu}", i, i % 1000, 1000 + i % 1000);
        cep_record_t r = {.topic = "s", .value = line, .vlen = (size_t)len, .partition = 0};
        cep_runtime_push(rt, &r, NULL);
    }
    long held = cep_rss_kb() - before;
    size_t entries = cep_runtime_task_entries(rt, 0);
    int32_t zero = 0;
    uint64_t t0 = cep_now_ns();
    save_all(c, &zero, 1);
    double save_s = (double)(cep_now_ns() - t0) / 1e9;
    cep_ckpt_free(c);
    cep_runtime_free(rt);
    cep_runtime_t *fresh = cep_runtime_new(rs, on_out, &outs);
    c = ckpt_connect(url, "bench:keys", fresh);
    t0 = cep_now_ns();
    cep_ckpt_restore_task(c, 0, &err);
    double load_s = (double)(cep_now_ns() - t0) / 1e9;
    size_t back = cep_runtime_task_entries(fresh, 0);
    printf("keys: %zu window entries (GROUP BY k, COUNT and SUM), %.0f bytes resident per key\n", entries,
           (double)held * 1024.0 / (double)entries);
    printf("  full checkpoint: %.3f s (%.0f entries/s); restore: %.3f s (%.0f entries/s), %zu restored\n", save_s,
           (double)entries / save_s, load_s, (double)back / load_s, back);
    cep_ckpt_free(c);
    cep_runtime_free(fresh);
    cep_ruleset_free(rs);
}

int main(int argc, char **argv)
{
    const char *rules = NULL, *events = NULL, *url = NULL;
    unsigned tasks = 8;
    size_t every = 100000, keys = 1000000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--rules") && v) rules = v, i++;
        else if (!strcmp(a, "--events") && v) events = v, i++;
        else if (!strcmp(a, "--redis") && v) url = v, i++;
        else if (!strcmp(a, "--tasks") && v) tasks = (unsigned)atoi(v), i++;
        else if (!strcmp(a, "--every") && v) every = (size_t)atol(v), i++;
        else if (!strcmp(a, "--keys") && v) keys = (size_t)atol(v), i++;
        else {
            fprintf(stderr, "usage: cep-bench-state --rules PACK --events FILE --redis URL [--tasks 8] "
                            "[--every 100000] [--keys 1000000]\n");
            return 2;
        }
    }
    if (!url || tasks < 1 || tasks > 256 || !every) {
        fprintf(stderr, "cep-bench-state: --redis URL is required (tasks 1..256, every > 0)\n");
        return 2;
    }
    if (rules && events) {
        cep_ruleset_t *rs = NULL;
        cep_error_t err;
        cep_error_clear(&err);
        if (cep_rules_compile_path(rules, NULL, &rs, &err)) {
            fprintf(stderr, "cep-bench-state: %s\n", err.msg);
            return 1;
        }
        events_t ev = {0};
        if (!load(events, tasks, &ev)) return 1;
        pack_run(rs, &ev, url, tasks, every);
        cep_ruleset_free(rs);
        free(ev.data);
        free(ev.off);
        free(ev.n);
        free(ev.task);
    }
    if (keys) keys_run(url, keys);
    return 0;
}
