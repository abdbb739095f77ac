/*
 * Re-keying in the runtime, without Kafka: the re-key callback plays the
 * internal topic (it hands each record back to the runtime on the
 * partition its key hashes to). Rules keyed by the stream's KEY run on the
 * source partitions; rules keyed otherwise run only on the re-keyed
 * records, and over four source partitions they give exactly what one
 * partition gives; a copy produced again (same source offset) is skipped.
 */
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *sql =
    "CREATE STREAM ev (acct VARCHAR, dev VARCHAR, t BIGINT)\n"
    "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', TIMESTAMP='t', KEY='acct');\n"
    "CREATE TABLE per_acct AS SELECT acct, COUNT(*) AS n FROM ev GROUP BY acct;\n"
    "CREATE TABLE per_dev AS SELECT dev, COUNT_DISTINCT(acct) AS accounts FROM ev GROUP BY dev;\n";

typedef struct held {
    char topic[128], key[64], value[128];
    int64_t offset;
    int32_t partition;
} held_t;

typedef struct world {
    cep_runtime_t *rt;
    held_t held[256]; /* records "produced" to the internal topic */
    int nheld;
    char last[2][16][64]; /* per rule (0 acct, 1 dev): last value per key index */
    int outputs[2];
} world_t;

static void on_out(void *ctx, const cep_output_t *o)
{
    world_t *w = ctx;
    int r = !strcmp(o->query->name, "PER_DEV");
    w->outputs[r]++;
    cep_buf_t k, v;
    cep_buf_init(&k);
    cep_buf_init(&v);
    cep_output_key_json(o, &k);
    cep_output_value_json(o, &v);
    /* keys are "a0".."a9" or "d0".."d3": the digit indexes the slot */
    const char *kc = cep_buf_cstr(&k);
    int idx = kc[2] - '0';
    snprintf(w->last[r][idx], sizeof w->last[r][idx], "%s", cep_buf_cstr(&v));
    cep_buf_free(&k);
    cep_buf_free(&v);
}

static void on_rekey(void *ctx, const char *topic, const void *key, size_t klen, const cep_record_t *rec,
                     int64_t event_time)
{
    world_t *w = ctx;
    cr_assert_lt(w->nheld, 256);
    held_t *h = &w->held[w->nheld++];
    snprintf(h->topic, sizeof h->topic, "%s", topic);
    snprintf(h->key, sizeof h->key, "%.*s", (int)klen, (const char *)key);
    snprintf(h->value, sizeof h->value, "%.*s", (int)rec->vlen, rec->value);
    h->offset = rec->offset;
    h->partition = rec->partition;
    (void)event_time;
}

/* Deliver the held records as the internal topic would, on the partition of their key. */
static void deliver(world_t *w, int from, int to)
{
    for (int i = from; i < to; i++) {
        held_t *h = &w->held[i];
        cep_record_t r = {.topic = h->topic,
                          .value = h->value,
                          .vlen = strlen(h->value),
                          .partition = (int32_t)(cep_hash_bytes(h->key, strlen(h->key), 0) % 4),
                          .src_partition = h->partition,
                          .src_offset = h->offset};
        cr_assert_eq(cep_runtime_push(w->rt, &r, NULL), CEP_OK);
    }
}

static void push(world_t *w, int partition, int64_t offset, int acct, int dev, int64_t t)
{
    char json[128];
    int n = snprintf(json, sizeof json, "{\"acct\":\"a%d\",\"dev\":\"d%d\",\"t\":%lld}", acct, dev, (long long)t);
    cep_record_t r = {.topic = "ev", .value = json, .vlen = (size_t)n, .partition = partition, .offset = offset};
    cr_assert_eq(cep_runtime_push(w->rt, &r, NULL), CEP_OK);
}

Test(rekey, rules_keyed_otherwise_meet_their_keys_in_one_task)
{
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("rekey.sql", sql, strlen(sql), NULL, &rs, &err), CEP_OK, "%s", err.msg);

    /* one partition, no re-keying: the reference */
    world_t *one = calloc(1, sizeof *one);
    one->rt = cep_runtime_new(rs, on_out, one);
    for (int i = 0; i < 60; i++) push(one, -1, i, i % 10, (i * 7) % 4, 1000 + i);
    cr_assert_eq(one->outputs[0], 60);
    cr_assert_eq(one->outputs[1], 60);

    /* four source partitions (by account, as KEY says), re-keyed by device */
    world_t *four = calloc(1, sizeof *four);
    four->rt = cep_runtime_new(rs, on_out, four);
    cep_runtime_set_rekey(four->rt, "app", on_rekey, four);
    const char *src = NULL;
    const char *topic = cep_runtime_rekey_topic(four->rt, 0, &src);
    cr_assert_not_null(topic, "PER_DEV is re-keyed");
    cr_assert_null(cep_runtime_rekey_topic(four->rt, 1, NULL), "PER_ACCT is not: it is keyed by the KEY column");
    cr_assert_str_eq(src, "ev");
    cr_assert(!strncmp(topic, "app.EV.rekey.", 13), "%s", topic);
    int64_t offsets[4] = {0};
    for (int i = 0; i < 60; i++) {
        int acct = i % 10, p = acct % 4;
        push(four, p, offsets[p]++, acct, (i * 7) % 4, 1000 + i);
    }
    cr_assert_eq(four->nheld, 60, "every record goes to the internal topic once");
    cr_assert_eq(four->outputs[1], 0, "the re-keyed rule does not run on source records");
    cr_assert_eq(four->outputs[0], 60);
    deliver(four, 0, 60);
    cr_assert_eq(four->outputs[1], 60);
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < (r ? 4 : 10); k++)
            cr_assert_str_eq(four->last[r][k], one->last[r][k], "rule %d key %d", r, k);
    cr_assert_str_eq(four->last[1][0], "{\"ACCOUNTS\":5}");

    /* the upstream restarts from an older offset and produces copies: skipped */
    deliver(four, 20, 60);
    cr_assert_eq(four->outputs[1], 60, "copies change nothing");
    cr_assert_eq(cep_runtime_stats(four->rt)->rekey_duplicates, 40);

    cep_runtime_free(one->rt);
    cep_runtime_free(four->rt);
    free(one);
    free(four);
    cep_ruleset_free(rs);
}

Test(rekey, key_must_name_a_column)
{
    const char *bad = "CREATE STREAM ev (acct VARCHAR, t BIGINT)\n"
                      "  WITH (KAFKA_TOPIC='ev', VALUE_FORMAT='JSON', KEY='account');\n";
    cep_ruleset_t *rs = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile("bad.sql", bad, strlen(bad), NULL, &rs, &err), CEP_ERR_SEMANTIC);
    cr_assert_str_eq(err.msg, "KEY column 'account' is not a column of EV");
    cr_assert_eq(err.pos.line, 2);
    cr_assert_eq(err.pos.col, 52); /* the value 'account' */
}
