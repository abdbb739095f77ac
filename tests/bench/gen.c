/*
 * Tests of the event generator (bench/gen.c): the contract of
 * ../shared/schemas/EVENTS.md, determinism, labels, options.
 */
#include "bench/gen.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct capture {
    cep_buf_t events, labels;
    uint64_t nevents, nlabels;
    bool key_matches; /* every record key equals the event's account_id */
} capture_t;

static void cap_event(void *ctx, const char *key, size_t klen, const char *json, size_t n)
{
    capture_t *c = ctx;
    cep_buf_put(&c->events, json, n);
    cep_buf_putc(&c->events, '\n');
    c->nevents++;
    json_t *j = json_loadb(json, n, 0, NULL);
    const char *acct = j ? json_string_value(json_object_get(j, "account_id")) : NULL;
    if (!acct || strlen(acct) != klen || memcmp(acct, key, klen)) c->key_matches = false;
    json_decref(j);
}

static void cap_label(void *ctx, const char *json, size_t n)
{
    capture_t *c = ctx;
    cep_buf_put(&c->labels, json, n);
    cep_buf_putc(&c->labels, '\n');
    c->nlabels++;
}

static void run_gen(const cep_gen_opts_t *o, capture_t *c, cep_gen_stats_t *st)
{
    memset(c, 0, sizeof *c);
    cep_buf_init(&c->events);
    cep_buf_init(&c->labels);
    c->key_matches = true;
    cep_gen_sink_t sink = {cap_event, cap_label, c};
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_gen_run(o, &sink, st, &err), CEP_OK, "%s", err.msg);
}

static void cap_free(capture_t *c)
{
    cep_buf_free(&c->events);
    cep_buf_free(&c->labels);
}

/* Iterate the lines of a buffer as JSON objects. */
static json_t *next_json(const cep_buf_t *b, size_t *off)
{
    if (*off >= b->len) return NULL;
    const char *s = b->data + *off, *nl = memchr(s, '\n', b->len - *off);
    size_t n = (size_t)(nl - s);
    *off += n + 1;
    json_error_t e;
    json_t *j = json_loadb(s, n, 0, &e);
    cr_assert_not_null(j, "line is not JSON: %s (%.*s)", e.text, (int)n, s);
    return j;
}

static void check_envelope(json_t *e)
{
    static const char *const strs[] = {"event_id", "event_type", "tenant", "account_id"};
    for (size_t i = 0; i < CEP_ARRAY_LEN(strs); i++)
        cr_assert(json_is_string(json_object_get(e, strs[i])), "%s must be a string", strs[i]);
    cr_assert(json_is_integer(json_object_get(e, "event_time")));
    json_t *amt = json_object_get(e, "amount_minor");
    if (amt) {
        cr_assert(json_is_integer(amt));
        cr_assert_gt(json_integer_value(amt), 0);
        cr_assert(json_is_string(json_object_get(e, "currency")), "amount_minor comes with a currency");
    }
    json_t *lat = json_object_get(e, "lat");
    if (lat) cr_assert(json_is_real(lat) || json_is_integer(lat));
}

Test(gen, gaming_events_follow_the_contract_and_are_ordered)
{
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 20000;
    o.seed = 11;
    capture_t c;
    cep_gen_stats_t st;
    run_gen(&o, &c, &st);
    cr_assert_eq(c.nevents, 20000);
    cr_assert_eq(st.events, 20000);
    cr_assert(c.key_matches, "the record key is the account_id");
    static const char *const types[] = {
        "account_create", "login", "credential_change", "self_exclusion", "deposit", "withdrawal_request",
        "withdrawal_paid", "purchase", "bonus_claim", "promo_redeem", "referral_qualified", "bet",
        "bet_settle", "trade", "gift", "hand_result", "chargeback", "refund"};
    size_t off = 0;
    json_t *e;
    int64_t prev = INT64_MIN;
    uint64_t n = 0;
    while ((e = next_json(&c.events, &off))) {
        check_envelope(e);
        const char *t = json_string_value(json_object_get(e, "event_type"));
        bool known = false;
        for (size_t i = 0; i < CEP_ARRAY_LEN(types); i++) known |= !strcmp(t, types[i]);
        cr_assert(known, "unknown gaming event_type %s", t);
        int64_t ts = json_integer_value(json_object_get(e, "event_time"));
        cr_assert_geq(ts, prev, "event times never decrease without --disorder-ms");
        prev = ts;
        char id[32];
        snprintf(id, sizeof id, "g-%09llu", (unsigned long long)n++);
        cr_assert_str_eq(json_string_value(json_object_get(e, "event_id")), id);
        if (!strcmp(t, "login")) {
            const char *s = json_string_value(json_object_get(e, "status"));
            cr_assert(!strcmp(s, "ok") || !strcmp(s, "bad_password") || !strcmp(s, "locked") || !strcmp(s, "2fa_fail"));
            cr_assert(json_is_boolean(json_object_get(e, "new_device")));
        }
        json_decref(e);
    }
    cr_assert_eq(n, 20000);
    cap_free(&c);
}

Test(gen, same_seed_same_bytes_other_seed_other_bytes)
{
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 5000;
    o.domain = CEP_GEN_PAYMENTS;
    o.seed = 3;
    capture_t a, b, c;
    cep_gen_stats_t st;
    run_gen(&o, &a, &st);
    run_gen(&o, &b, &st);
    o.seed = 4;
    run_gen(&o, &c, &st);
    cr_assert_eq(a.events.len, b.events.len);
    cr_assert(!memcmp(a.events.data, b.events.data, a.events.len), "same options, same bytes");
    cr_assert_eq(a.labels.len, b.labels.len);
    cr_assert(!memcmp(a.labels.data, b.labels.data, a.labels.len));
    cr_assert(a.events.len != c.events.len || memcmp(a.events.data, c.events.data, a.events.len),
              "another seed gives other events");
    cap_free(&a);
    cap_free(&b);
    cap_free(&c);
}

Test(gen, labels_name_existing_events_and_count_the_instances)
{
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 30000;
    o.seed = 5;
    o.fraud_rate = 0.05;
    capture_t c;
    cep_gen_stats_t st;
    run_gen(&o, &c, &st);
    cr_assert_eq(c.nlabels, st.labeled);
    cr_assert_gt(st.instances, 0);
    uint64_t sum = 0;
    for (unsigned i = 0; cep_gen_scenario_name(CEP_GEN_GAMING, i); i++) {
        cr_assert_gt(st.per_scenario[i], 0, "scenario %s was injected", cep_gen_scenario_name(CEP_GEN_GAMING, i));
        sum += st.per_scenario[i];
    }
    cr_assert_eq(sum, st.instances);
    /* collect event ids and times */
    json_t *ids = json_object();
    size_t off = 0;
    json_t *e;
    while ((e = next_json(&c.events, &off))) {
        json_object_set(ids, json_string_value(json_object_get(e, "event_id")), json_object_get(e, "event_time"));
        json_decref(e);
    }
    off = 0;
    uint64_t n = 0;
    json_t *instances = json_object();
    while ((e = next_json(&c.labels, &off))) {
        const char *id = json_string_value(json_object_get(e, "event_id"));
        json_t *ts = json_object_get(ids, id);
        cr_assert_not_null(ts, "label for unknown event %s", id);
        const char *label = json_string_value(json_object_get(e, "label"));
        cr_assert(!strcmp(label, "fraud") || !strcmp(label, "abuse"));
        const char *scen = json_string_value(json_object_get(e, "scenario"));
        bool known = false;
        for (unsigned i = 0; cep_gen_scenario_name(CEP_GEN_GAMING, i); i++)
            known |= !strcmp(scen, cep_gen_scenario_name(CEP_GEN_GAMING, i));
        cr_assert(known, "unknown scenario %s", scen);
        cr_assert_gt(json_integer_value(json_object_get(e, "label_time")), json_integer_value(ts),
                     "labels arrive after the event");
        char inst[32];
        snprintf(inst, sizeof inst, "%lld", (long long)json_integer_value(json_object_get(e, "instance")));
        json_object_set_new(instances, inst, json_true());
        n++;
        json_decref(e);
    }
    cr_assert_eq(n, st.labeled);
    /* instances still running when the event budget ends have no labels yet */
    cr_assert_leq(json_object_size(instances), st.instances);
    cr_assert_geq(json_object_size(instances) + 10, st.instances);
    json_decref(ids);
    json_decref(instances);
    cap_free(&c);
}

Test(gen, scenario_filter_and_errors)
{
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 20000;
    o.domain = CEP_GEN_PAYMENTS;
    o.fraud_rate = 0.05;
    o.scenarios = "card_testing";
    capture_t c;
    cep_gen_stats_t st;
    run_gen(&o, &c, &st);
    cr_assert_gt(st.per_scenario[0], 0);
    cr_assert_str_eq(cep_gen_scenario_name(CEP_GEN_PAYMENTS, 0), "card_testing");
    for (unsigned i = 1; cep_gen_scenario_name(CEP_GEN_PAYMENTS, i); i++) cr_assert_eq(st.per_scenario[i], 0);
    /* a card-testing label is on a declined or approved auth with a tiny amount */
    size_t off = 0;
    json_t *l = next_json(&c.labels, &off);
    cr_assert_not_null(l);
    cr_assert_str_eq(json_string_value(json_object_get(l, "scenario")), "card_testing");
    json_decref(l);
    cap_free(&c);

    o.scenarios = "card_testing,bogus";
    cep_gen_sink_t sink = {cap_event, NULL, &c};
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_gen_run(&o, &sink, &st, &err), CEP_ERR_ARG);
    cr_assert_str_eq(err.msg, "unknown scenario 'bogus' for this domain");
}

Test(gen, disorder_makes_some_events_late_but_bounded)
{
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    o.events = 20000;
    o.disorder_ms = 5000;
    capture_t c;
    cep_gen_stats_t st;
    run_gen(&o, &c, &st);
    size_t off = 0;
    json_t *e;
    int64_t max = INT64_MIN;
    uint64_t late = 0;
    while ((e = next_json(&c.events, &off))) {
        int64_t ts = json_integer_value(json_object_get(e, "event_time"));
        if (ts < max) {
            late++;
            cr_assert_leq(max - ts, 5000, "late by at most --disorder-ms");
        }
        if (ts > max) max = ts;
        json_decref(e);
    }
    cr_assert_gt(late, 100);
    cr_assert_lt(late, 2000);
    cap_free(&c);
}
