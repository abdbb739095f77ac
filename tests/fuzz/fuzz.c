/*
 * fuzz.c — fuzz targets for the SQL compiler and the event decoder, and a
 * small self-contained mutation driver (`cep-fuzz`).
 *
 * The targets take arbitrary bytes and must never crash, leak or trip the
 * sanitizers: a broken rule is a compile error, a broken event a decode
 * error. Built with clang and -DCEP_LIBFUZZER, this file exports
 * LLVMFuzzerTestOneInput for libFuzzer instead of main. The driver mutates
 * seed inputs (byte flips, inserts, deletions, duplicated ranges, splices
 * of two seeds, interesting bytes) with a seeded PRNG; the test suite runs
 * a short, deterministic smoke of each target under ASan+UBSan, and long
 * runs are `cep-fuzz sql|decode --iterations N`.
 */
#include "bench/gen.h"
#include "engine/runtime.h"
#include "patterns/plan.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char fuzz_stream[] =
    "CREATE STREAM ev (account_id VARCHAR KEY, event_id VARCHAR, event_type VARCHAR, event_time BIGINT,\n"
    "  amount_minor BIGINT, odds DOUBLE, new_device BOOLEAN, tags ARRAY<VARCHAR>, attrs MAP<VARCHAR, INT>,\n"
    "  geo STRUCT<lat DOUBLE, lon DOUBLE>, price DECIMAL(10, 2), seen TIMESTAMP)\n"
    "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', KEY_FORMAT='JSON', TIMESTAMP='event_time');\n"
    "CREATE TABLE per_account AS SELECT account_id, COUNT(*) AS n, SUM(amount_minor) AS total,\n"
    "  COLLECT_SET(event_type) AS types FROM ev WINDOW HOPPING (SIZE 10 SECONDS, ADVANCE BY 5 SECONDS)\n"
    "  GROUP BY account_id HAVING COUNT(*) > 1;\n"
    "CREATE STREAM big AS SELECT account_id, amount_minor * 2 AS twice, geo->lat AS lat, tags[1] AS t0\n"
    "  FROM ev WHERE amount_minor > 100 AND event_type LIKE 'dep%';\n";

int cep_fuzz_sql(const uint8_t *data, size_t size)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile("fuzz.sql", (const char *)data, size, NULL, &rs, &err) == CEP_OK) {
        if (!rs) abort(); /* success must give a rule set */
        cep_ruleset_free(rs);
    } else if (rs || !err.code || !err.msg[0]) {
        abort(); /* failure must leave nothing behind and say why */
    }
    return 0;
}

static void drop(void *ctx, const cep_output_t *o)
{
    (void)ctx, (void)o;
}

static cep_ruleset_t *decode_rs;
static cep_runtime_t *decode_rt;

/* value bytes, then after the first NUL (if any) key bytes */
int cep_fuzz_decode(const uint8_t *data, size_t size)
{
    if (!decode_rs) {
        cep_error_t err;
        cep_error_clear(&err);
        if (cep_rules_compile("fuzz.sql", fuzz_stream, strlen(fuzz_stream), NULL, &decode_rs, &err)) abort();
        for (uint32_t i = 0; i < decode_rs->nstreams; i++)
            for (uint32_t c = 0; c < decode_rs->streams[i]->ncols; c++) decode_rs->streams[i]->needed[c] = true;
        decode_rt = cep_runtime_new(decode_rs, drop, NULL);
        if (!decode_rt) abort();
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t vlen = nul ? (size_t)(nul - data) : size;
    cep_record_t rec = {.topic = "ev", .value = (const char *)data, .vlen = vlen};
    if (nul) {
        rec.key = (const char *)nul + 1;
        rec.klen = size - vlen - 1;
    }
    cep_error_t err;
    cep_error_clear(&err);
    cep_status_t st = cep_runtime_push(decode_rt, &rec, &err);
    if (st != CEP_OK && (st != CEP_ERR_DECODE || !err.msg[0])) abort();
    return 0;
}

static void fuzz_teardown(void)
{
    cep_runtime_free(decode_rt);
    cep_ruleset_free(decode_rs);
    decode_rt = NULL;
    decode_rs = NULL;
}

#ifdef CEP_LIBFUZZER
#ifdef CEP_FUZZ_DECODE
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return cep_fuzz_decode(data, size); }
#else
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return cep_fuzz_sql(data, size); }
#endif
#else

/* ---- the standalone driver ------------------------------------------------ */

typedef struct seeds {
    cep_buf_t *items;
    size_t n, cap;
} seeds_t;

static void seed_add(seeds_t *s, const char *p, size_t n)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->items = realloc(s->items, s->cap * sizeof *s->items);
        if (!s->items) abort();
    }
    cep_buf_init(&s->items[s->n]);
    cep_buf_put(&s->items[s->n], p, n);
    s->n++;
}

static void seed_file(seeds_t *s, const char *path)
{
    char *data;
    size_t len;
    if (cep_file_read(path, &data, &len, NULL) == CEP_OK) {
        seed_add(s, data, len);
        free(data);
    }
}

static void seed_dir(seeds_t *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        seed_file(s, dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        seed_file(s, path);
    }
    closedir(d);
}

static void gen_event(void *ctx, const char *key, size_t klen, const char *json, size_t n)
{
    seeds_t *s = ctx;
    /* value, NUL, key: the decode target's input layout */
    cep_buf_t b;
    cep_buf_init(&b);
    cep_buf_put(&b, json, n);
    cep_buf_putc(&b, 0);
    cep_buf_putc(&b, '"');
    cep_buf_put(&b, key, klen);
    cep_buf_putc(&b, '"');
    seed_add(s, b.data, b.len);
    cep_buf_free(&b);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static const char *const interesting[] = {"'", "\"", "\\", "(", ")", ",", ";", "{", "}", "[", "]", ":",
                                          "\\u0000", "\\ud800", "-", "9223372036854775808", "1e309", "NULL",
                                          "/*", "--", "WINDOW", "SELECT", "GROUP BY", "->", "[1]", "\xff",
                                          "null", "true", "1.5", "\"\"", "{}", "[]", "0x", "INTERVAL '1' DAY"};

static void mutate(cep_buf_t *out, const seeds_t *s, uint64_t *r)
{
    const cep_buf_t *a = &s->items[rnd(r) % s->n];
    cep_buf_reset(out);
    cep_buf_put(out, a->data, a->len);
    int rounds = 1 + (int)(rnd(r) % 4);
    for (int k = 0; k < rounds; k++) {
        size_t len = out->len;
        size_t at = len ? rnd(r) % (len + 1) : 0;
        switch (rnd(r) % 6) {
        case 0: /* flip a byte */
            if (len) out->data[at % len] ^= (char)(1 << (rnd(r) % 8));
            break;
        case 1: { /* insert an interesting token */
            const char *t = interesting[rnd(r) % CEP_ARRAY_LEN(interesting)];
            size_t tn = strlen(t);
            cep_buf_reserve(out, tn);
            memmove(out->data + at + tn, out->data + at, len - at);
            memcpy(out->data + at, t, tn);
            out->len += tn;
            break;
        }
        case 2: { /* delete a range */
            size_t n = len - at ? rnd(r) % (len - at) % 64 : 0;
            memmove(out->data + at, out->data + at + n, len - at - n);
            out->len -= n;
            break;
        }
        case 3: { /* duplicate a range */
            size_t n = len - at ? 1 + rnd(r) % (len - at) % 32 : 0;
            if (!n) break;
            cep_buf_reserve(out, n);
            memmove(out->data + at + n, out->data + at, len - at);
            memcpy(out->data + at + n, out->data + at, CEP_MIN(n, len - at));
            out->len += n;
            break;
        }
        case 4: { /* splice the tail of another seed */
            const cep_buf_t *b = &s->items[rnd(r) % s->n];
            size_t from = b->len ? rnd(r) % b->len : 0;
            out->len = at;
            cep_buf_put(out, b->data + from, b->len - from);
            break;
        }
        default: /* truncate */
            out->len = at;
            break;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "sql") && strcmp(argv[1], "decode"))) {
        fprintf(stderr, "usage: cep-fuzz sql|decode [--iterations N] [--seed S] [SEED_FILE_OR_DIR...]\n");
        return 2;
    }
    bool sql = !strcmp(argv[1], "sql");
    uint64_t iterations = 10000, seed = 1;
    seeds_t seeds = {0};
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--iterations") && i + 1 < argc) iterations = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else seed_dir(&seeds, argv[i]);
    }
    if (sql) {
        seed_add(&seeds, fuzz_stream, strlen(fuzz_stream));
    } else {
        cep_gen_opts_t o;
        cep_gen_opts_init(&o);
        o.events = 200;
        o.seed = seed;
        o.fraud_rate = 0.2;
        cep_gen_sink_t sink = {gen_event, NULL, &seeds};
        cep_gen_run(&o, &sink, NULL, NULL);
        static const char *const extra[] = {
            "{\"account_id\":\"a\",\"event_time\":1,\"tags\":[\"x\",null],\"attrs\":{\"k\":1},\"geo\":{\"lat\":1.5,"
            "\"lon\":-2},\"price\":\"12.345\",\"seen\":\"2026-11-25T10:00:00.000\",\"odds\":1e3,\"new_device\":true}",
            "{\"EVENT_TIME\":\"5\",\"AMOUNT_MINOR\":\"7\",\"price\":3.999}"};
        for (size_t i = 0; i < CEP_ARRAY_LEN(extra); i++) seed_add(&seeds, extra[i], strlen(extra[i]));
    }
    uint64_t r = seed;
    cep_buf_t input;
    cep_buf_init(&input);
    for (size_t i = 0; i < seeds.n; i++) /* every seed as it is first */
        sql ? cep_fuzz_sql((const uint8_t *)seeds.items[i].data, seeds.items[i].len)
            : cep_fuzz_decode((const uint8_t *)seeds.items[i].data, seeds.items[i].len);
    for (uint64_t it = 0; it < iterations; it++) {
        mutate(&input, &seeds, &r);
        if (input.failed) abort();
        if (sql) cep_fuzz_sql((const uint8_t *)input.data, input.len);
        else cep_fuzz_decode((const uint8_t *)input.data, input.len);
    }
    printf("cep-fuzz %s: %zu seeds, %llu mutated inputs, no crash\n", argv[1], seeds.n,
           (unsigned long long)iterations);
    cep_buf_free(&input);
    for (size_t i = 0; i < seeds.n; i++) cep_buf_free(&seeds.items[i]);
    free(seeds.items);
    fuzz_teardown();
    return 0;
}
#endif
