/*
 * The demo pack (rules/demo) on hand-made events: each rule fires on its
 * pattern and stays quiet on a benign look-alike. Exact alerts: rule, key,
 * value and window.
 */
#include "engine/output.h"
#include "engine/runtime.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#define T0 1793577600000LL /* 2026-11-02T00:00:00Z, aligned to every demo window */
#define MIN 60000LL

typedef struct alert {
    char rule[64];
    char key[128];
    char value[256];
    int64_t wstart, wend;
} alert_t;

typedef struct run {
    cep_ruleset_t *rs;
    cep_runtime_t *rt;
    alert_t alerts[64];
    int n;
    uint64_t seq;
} run_t;

static void on_alert(void *ctx, const cep_output_t *o)
{
    run_t *r = ctx;
    cr_assert_lt(r->n, 64);
    alert_t *a = &r->alerts[r->n++];
    cep_buf_t b;
    cep_buf_init(&b);
    snprintf(a->rule, sizeof a->rule, "%s", o->query->name);
    cep_output_key_json(o, &b);
    snprintf(a->key, sizeof a->key, "%s", cep_buf_cstr(&b));
    cep_buf_reset(&b);
    cep_output_value_json(o, &b);
    snprintf(a->value, sizeof a->value, "%s", cep_buf_cstr(&b));
    cep_buf_free(&b);
    a->wstart = o->windowed ? o->wstart : -1;
    a->wend = o->windowed ? o->wend : -1;
}

static void start(run_t *r)
{
    memset(r, 0, sizeof *r);
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_rules_compile_path("rules/demo", NULL, &r->rs, &err), CEP_OK, "%s", err.msg);
    r->rt = cep_runtime_new(r->rs, on_alert, r);
    cr_assert_not_null(r->rt);
}

static void stop(run_t *r)
{
    cep_runtime_free(r->rt);
    cep_ruleset_free(r->rs);
}

/* Push one gaming event: type, time, account, then extra JSON fields. */
static void ev(run_t *r, const char *type, int64_t t, const char *acct, const char *extra)
{
    char json[1024];
    int n = snprintf(json, sizeof json,
                     "{\"event_id\":\"e-%llu\",\"event_type\":\"%s\",\"event_time\":%lld,\"tenant\":\"casino-eu\","
                     "\"account_id\":\"%s\"%s%s}",
                     (unsigned long long)r->seq, type, (long long)t, acct, extra && *extra ? "," : "",
                     extra ? extra : "");
    cep_record_t rec = {.topic = "gaming.events", .value = json, .vlen = (size_t)n, .offset = (int64_t)r->seq++};
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_runtime_push(r->rt, &rec, &err), CEP_OK, "%s: %s", json, err.msg);
}

static int count_rule(const run_t *r, const char *rule)
{
    int n = 0;
    for (int i = 0; i < r->n; i++) n += !strcmp(r->alerts[i].rule, rule);
    return n;
}

static const alert_t *nth(const run_t *r, const char *rule, int k)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->alerts[i].rule, rule) && k-- == 0) return &r->alerts[i];
    cr_assert_fail("no alert %d of %s", k, rule);
    return NULL;
}

Test(demo_pack, failed_login_burst_fires_at_five_not_four)
{
    run_t r;
    start(&r);
    for (int i = 0; i < 5; i++)
        ev(&r, "login", T0 + i * 20000, "p-1", "\"ip\":\"198.51.100.7\",\"status\":\"bad_password\"");
    /* a player who mistypes four times and then gets in */
    for (int i = 0; i < 4; i++)
        ev(&r, "login", T0 + 1000 + i * 20000, "p-2", "\"ip\":\"198.51.100.8\",\"status\":\"bad_password\"");
    ev(&r, "login", T0 + 100000, "p-2", "\"ip\":\"198.51.100.8\",\"status\":\"ok\"");
    cr_assert_eq(count_rule(&r, "FAILED_LOGIN_BURST"), 0, "EMIT FINAL: nothing while the window is open");
    /* a failed login elsewhere moves stream time past end + grace */
    ev(&r, "login", T0 + 11 * MIN, "p-3", "\"ip\":\"198.51.100.9\",\"status\":\"bad_password\"");
    cr_assert_eq(count_rule(&r, "FAILED_LOGIN_BURST"), 1);
    const alert_t *a = nth(&r, "FAILED_LOGIN_BURST", 0);
    cr_assert_str_eq(a->key, "\"p-1\"");
    cr_assert_str_eq(a->value, "{\"FAILURES\":5,\"IPS\":1,\"WINDOW_START\":1793577600000}");
    cr_assert_eq(a->wstart, T0);
    cr_assert_eq(a->wend, T0 + 10 * MIN);
    stop(&r);
}

Test(demo_pack, credential_stuffing_counts_distinct_accounts_per_ip)
{
    run_t r;
    start(&r);
    char extra[128], acct[16];
    for (int i = 0; i < 10; i++) {
        snprintf(acct, sizeof acct, "p-%d", 100 + i);
        ev(&r, "login", T0 + i * 5000, acct, "\"ip\":\"203.0.113.9\",\"status\":\"bad_password\"");
    }
    /* a household: three accounts on one IP, each mistyping twice */
    for (int i = 0; i < 6; i++) {
        snprintf(acct, sizeof acct, "p-%d", 200 + i % 3);
        snprintf(extra, sizeof extra, "\"ip\":\"192.0.2.50\",\"status\":\"%s\"", i < 3 ? "bad_password" : "2fa_fail");
        ev(&r, "login", T0 + 60000 + i * 5000, acct, extra);
    }
    ev(&r, "login", T0 + 11 * MIN, "p-300", "\"ip\":\"192.0.2.99\",\"status\":\"locked\"");
    cr_assert_eq(count_rule(&r, "CREDENTIAL_STUFFING_IP"), 1);
    const alert_t *a = nth(&r, "CREDENTIAL_STUFFING_IP", 0);
    cr_assert_str_eq(a->key, "\"203.0.113.9\"");
    cr_assert_str_eq(a->value, "{\"ACCOUNTS\":10,\"FAILURES\":10,\"WINDOW_START\":1793577600000}");
    stop(&r);
}

Test(demo_pack, multi_accounting_hopping_windows)
{
    run_t r;
    start(&r);
    const char *dev = "\"device_id\":\"fp-farm\",\"promo_code\":\"WELCOME100\"";
    ev(&r, "account_create", T0, "p-a", dev);
    ev(&r, "account_create", T0 + 10 * MIN, "p-b", dev);
    ev(&r, "account_create", T0 + 20 * MIN, "p-c", dev);
    /* two accounts on a family tablet: below the threshold */
    ev(&r, "account_create", T0 + 5 * MIN, "p-d", "\"device_id\":\"fp-family\"");
    ev(&r, "account_create", T0 + 15 * MIN, "p-e", "\"device_id\":\"fp-family\"");
    /* sign-ups elsewhere move stream time on, closing one window every 30 minutes */
    for (int i = 1; i <= 4; i++) {
        char extra[64], acct[16];
        snprintf(extra, sizeof extra, "\"device_id\":\"fp-%d\"", i);
        snprintf(acct, sizeof acct, "p-x%d", i);
        ev(&r, "account_create", T0 + (30 * i + 1) * MIN, acct, extra);
    }
    /* the three sign-ups share the hopping windows starting -90, -60, -30 and 0 minutes */
    cr_assert_eq(count_rule(&r, "MULTI_ACCOUNTING_DEVICE"), 4);
    for (int k = 0; k < 4; k++) {
        const alert_t *a = nth(&r, "MULTI_ACCOUNTING_DEVICE", k);
        cr_assert_str_eq(a->key, "\"fp-farm\"");
        cr_assert_eq(a->wstart, T0 + (k - 3) * 30 * MIN);
        cr_assert_eq(a->wend, a->wstart + 120 * MIN);
        char want[128];
        snprintf(want, sizeof want, "{\"ACCOUNTS\":3,\"PROMO_CODES\":[\"WELCOME100\"],\"WINDOW_START\":%lld}",
                 (long long)a->wstart);
        cr_assert_str_eq(a->value, want);
    }
    stop(&r);
}

Test(demo_pack, deposit_velocity_closes_the_session_on_stream_time)
{
    run_t r;
    start(&r);
    char extra[128];
    for (int i = 0; i < 4; i++) {
        snprintf(extra, sizeof extra, "\"amount_minor\":%d,\"currency\":\"EUR\",\"instrument_id\":\"ins-%d\"", 1000 + i,
                 i);
        ev(&r, "deposit", T0 + i * 2 * MIN, "p-card", extra);
    }
    /* a high spender depositing five times with one card */
    for (int i = 0; i < 5; i++)
        ev(&r, "deposit", T0 + i * MIN, "p-whale", "\"amount_minor\":500000,\"currency\":\"EUR\",\"instrument_id\":\"ins-w\"");
    /* the session [0, 6 min] closes once stream time passes 6 + 30 + 1 minutes, by another key's deposit */
    ev(&r, "deposit", T0 + 37 * MIN, "p-other", "\"amount_minor\":100,\"currency\":\"EUR\",\"instrument_id\":\"ins-o\"");
    cr_assert_eq(count_rule(&r, "DEPOSIT_INSTRUMENT_VELOCITY"), 0, "end + gap + grace is not yet passed");
    ev(&r, "deposit", T0 + 37 * MIN + 1, "p-other", "\"amount_minor\":100,\"currency\":\"EUR\",\"instrument_id\":\"ins-o\"");
    cr_assert_eq(count_rule(&r, "DEPOSIT_INSTRUMENT_VELOCITY"), 1);
    const alert_t *a = nth(&r, "DEPOSIT_INSTRUMENT_VELOCITY", 0);
    cr_assert_str_eq(a->key, "\"p-card\"");
    cr_assert_str_eq(a->value,
                     "{\"DEPOSITS\":4,\"INSTRUMENTS\":4,\"TOTAL_MINOR\":4006,\"WINDOW_START\":1793577600000}");
    cr_assert_eq(a->wstart, T0);
    cr_assert_eq(a->wend, T0 + 6 * MIN);
    stop(&r);
}

Test(demo_pack, chip_dumping_needs_no_showdown_and_big_pots)
{
    run_t r;
    start(&r);
    for (int i = 0; i < 4; i++)
        ev(&r, "hand_result", T0 + i * MIN, "p-loser",
           "\"winner_id\":\"p-friend\",\"loser_id\":\"p-loser\",\"pot_minor\":25000,\"showdown\":false");
    /* a bad night at the table: the same opponent, but hands shown down */
    for (int i = 0; i < 4; i++)
        ev(&r, "hand_result", T0 + i * MIN, "p-unlucky",
           "\"winner_id\":\"p-shark\",\"loser_id\":\"p-unlucky\",\"pot_minor\":25000,\"showdown\":true");
    /* stream time is that of the rows that pass WHERE: a qualifying hand elsewhere closes the hour */
    ev(&r, "hand_result", T0 + 61 * MIN, "p-z", "\"winner_id\":\"p-y\",\"loser_id\":\"p-z\",\"pot_minor\":20000,\"showdown\":false");
    cr_assert_eq(count_rule(&r, "CHIP_DUMPING_PAIR"), 1);
    const alert_t *a = nth(&r, "CHIP_DUMPING_PAIR", 0);
    cr_assert_str_eq(a->key, "{\"LOSER_ID\":\"p-loser\",\"WINNER_ID\":\"p-friend\"}");
    cr_assert_str_eq(a->value, "{\"HANDS\":4,\"POT_TOTAL_MINOR\":100000,\"WINDOW_START\":1793577600000}");
    stop(&r);
}

Test(demo_pack, large_withdrawal_is_a_filter_keyed_by_account)
{
    run_t r;
    start(&r);
    ev(&r, "withdrawal_request", T0, "p-big",
       "\"amount_minor\":100000,\"currency\":\"EUR\",\"method\":\"crypto\",\"ip\":\"198.51.100.1\",\"country\":\"DE\"");
    ev(&r, "withdrawal_request", T0 + 1, "p-small",
       "\"amount_minor\":99999,\"currency\":\"EUR\",\"method\":\"crypto\",\"ip\":\"198.51.100.2\",\"country\":\"DE\"");
    ev(&r, "deposit", T0 + 2, "p-dep", "\"amount_minor\":500000,\"currency\":\"EUR\"");
    cr_assert_eq(count_rule(&r, "LARGE_WITHDRAWAL"), 1);
    const alert_t *a = nth(&r, "LARGE_WITHDRAWAL", 0);
    cr_assert_str_eq(a->key, "\"p-big\"");
    cr_assert_str_eq(a->value, "{\"EVENT_ID\":\"e-0\",\"AMOUNT_MINOR\":100000,\"CURRENCY\":\"EUR\",\"METHOD\":\"crypto\","
                               "\"IP\":\"198.51.100.1\",\"COUNTRY\":\"DE\"}");
    cr_assert_eq(a->wstart, -1);
    stop(&r);
}

Test(demo_pack, bad_events_are_rejected_with_a_reason_and_do_not_disturb_state)
{
    run_t r;
    start(&r);
    static const struct {
        const char *json, *reason;
    } bad[] = {
        {"{\"event_id\":\"x\",\"event_type\":\"login\"", "expected ',' or '}' (at byte 36)"},
        {"{\"event_id\":\"x\",\"event_type\":\"login\",\"account_id\":\"p-1\"}", "missing event time column EVENT_TIME"},
        {"{\"event_type\":\"deposit\",\"event_time\":\"soon\",\"account_id\":\"p-1\"}",
         "column EVENT_TIME: cannot read string 'soon' as BIGINT (at byte 43)"},
        {"{\"event_type\":\"deposit\",\"event_time\":1793577600000,\"amount_minor\":{\"a\":1}}",
         "column AMOUNT_MINOR: expected BIGINT, found an object (at byte 66)"},
        {"{\"event_type\":\"deposit\",\"event_time\":-9000000000000000000,\"account_id\":\"p-1\"}",
         "event time -9000000000000000000 is out of range"},
    };
    for (size_t i = 0; i < CEP_ARRAY_LEN(bad); i++) {
        cep_record_t rec = {.topic = "gaming.events", .value = bad[i].json, .vlen = strlen(bad[i].json)};
        cep_error_t err;
        cep_error_clear(&err);
        cr_assert_eq(cep_runtime_push(r.rt, &rec, &err), CEP_ERR_DECODE, "%s", bad[i].json);
        cr_assert_str_eq(err.msg, bad[i].reason);
    }
    cr_assert_eq(cep_runtime_stats(r.rt)->dead_letters, CEP_ARRAY_LEN(bad));
    /* the engine goes on: a good event still alerts */
    ev(&r, "withdrawal_request", T0, "p-big", "\"amount_minor\":200000,\"currency\":\"EUR\"");
    cr_assert_eq(count_rule(&r, "LARGE_WITHDRAWAL"), 1);
    stop(&r);
}

Test(demo_pack, account_takeover_chain_is_a_sequence_within_an_hour)
{
    run_t r;
    start(&r);
    /* the attacker: four guesses, a login from a new device, the e-mail changed, money out */
    for (int i = 0; i < 4; i++)
        ev(&r, "login", T0 + i * 10000, "p-victim", "\"ip\":\"203.0.113.66\",\"status\":\"bad_password\",\"new_device\":true");
    ev(&r, "login", T0 + 50000, "p-victim",
       "\"ip\":\"203.0.113.66\",\"country\":\"NG\",\"status\":\"ok\",\"new_device\":true");
    ev(&r, "bet", T0 + 60000, "p-victim", "\"ip\":\"203.0.113.66\"");
    ev(&r, "credential_change", T0 + 70000, "p-victim", "\"what\":\"email\"");
    ev(&r, "withdrawal_request", T0 + 90000, "p-victim", "\"amount_minor\":50000,\"currency\":\"EUR\"");
    /* a player who mistypes three times and logs in from the usual phone, then changes the password */
    for (int i = 0; i < 3; i++)
        ev(&r, "login", T0 + i * 10000, "p-forgetful", "\"status\":\"bad_password\",\"new_device\":false");
    ev(&r, "login", T0 + 40000, "p-forgetful", "\"status\":\"ok\",\"new_device\":false");
    ev(&r, "credential_change", T0 + 50000, "p-forgetful", "\"what\":\"password\"");
    ev(&r, "withdrawal_request", T0 + 60000, "p-forgetful", "\"amount_minor\":50000,\"currency\":\"EUR\"");
    /* the same chain spread over more than an hour */
    for (int i = 0; i < 3; i++)
        ev(&r, "login", T0 + i * 10000, "p-slow", "\"status\":\"bad_password\",\"new_device\":true");
    ev(&r, "login", T0 + 40000, "p-slow", "\"status\":\"ok\",\"new_device\":true");
    ev(&r, "credential_change", T0 + 50000, "p-slow", "\"what\":\"email\"");
    ev(&r, "withdrawal_request", T0 + 61 * MIN, "p-slow", "\"amount_minor\":50000,\"currency\":\"EUR\"");
    cep_runtime_finish(r.rt);
    cr_assert_eq(count_rule(&r, "ACCOUNT_TAKEOVER_CHAIN"), 1);
    const alert_t *a = nth(&r, "ACCOUNT_TAKEOVER_CHAIN", 0);
    cr_assert_str_eq(a->key, "\"p-victim\"");
    cr_assert_str_eq(a->value, "{\"FIRST_FAILURE\":1793577600000,\"FAILURES\":4,\"LOGIN_IP\":\"203.0.113.66\","
                               "\"LOGIN_COUNTRY\":\"NG\",\"CHANGED\":\"email\",\"WITHDRAWAL_MINOR\":50000,"
                               "\"WITHDRAWAL_TIME\":1793577690000}");
    stop(&r);
}

Test(demo_pack, bonus_without_play_fires_when_the_window_closes)
{
    run_t r;
    start(&r);
    const char *bonus = "\"bonus_type\":\"welcome\",\"amount_minor\":10000,\"currency\":\"EUR\"";
    ev(&r, "bonus_claim", T0, "p-abuser", bonus);
    ev(&r, "bonus_claim", T0 + 1000, "p-player", bonus);
    /* a bet exactly at claim + 30 min is outside [claim, claim + 30 min) */
    ev(&r, "bonus_claim", T0 + 2000, "p-late-bettor", bonus);
    ev(&r, "bet", T0 + 20 * MIN, "p-player", "\"stake_minor\":500");
    cr_assert_eq(count_rule(&r, "BONUS_WITHOUT_PLAY"), 0, "the window of p-abuser is still open");
    ev(&r, "bet", T0 + 2000 + 30 * MIN, "p-late-bettor", "\"stake_minor\":500");
    /* event time is now one ms short of the bet: every row before the late bettor's
     * window end has been seen, so both windows close here, before the end of input */
    cr_assert_eq(count_rule(&r, "BONUS_WITHOUT_PLAY"), 2, "event time passed both windows");
    cep_runtime_finish(r.rt);
    cr_assert_eq(count_rule(&r, "BONUS_WITHOUT_PLAY"), 2);
    cr_assert_str_eq(nth(&r, "BONUS_WITHOUT_PLAY", 0)->key, "\"p-abuser\"");
    cr_assert_str_eq(nth(&r, "BONUS_WITHOUT_PLAY", 0)->value, "{\"CLAIMED_AT\":1793577600000,\"BONUS_MINOR\":10000}");
    cr_assert_str_eq(nth(&r, "BONUS_WITHOUT_PLAY", 1)->key, "\"p-late-bettor\"");
    stop(&r);
}

Test(demo_pack, deposit_velocity_sliding_alerts_at_the_fifth_deposit)
{
    run_t r;
    start(&r);
    char extra[128];
    for (int i = 0; i < 6; i++) {
        snprintf(extra, sizeof extra, "\"amount_minor\":%d,\"currency\":\"EUR\",\"instrument_id\":\"ins-%d\"", 1000,
                 i % 3);
        ev(&r, "deposit", T0 + i * 2 * MIN, "p-fast", extra);
    }
    /* a regular with one card: five deposits in ten minutes, but one instrument */
    for (int i = 0; i < 5; i++)
        ev(&r, "deposit", T0 + i * MIN, "p-regular", "\"amount_minor\":1000,\"currency\":\"EUR\",\"instrument_id\":\"ins-r\"");
    /* four deposits in ten minutes, then one twelve minutes later: never five in range */
    for (int i = 0; i < 4; i++)
        ev(&r, "deposit", T0 + i * MIN, "p-steady", "\"amount_minor\":1000,\"currency\":\"EUR\",\"instrument_id\":\"ins-s\"");
    ev(&r, "deposit", T0 + 15 * MIN, "p-steady", "\"amount_minor\":1000,\"currency\":\"EUR\",\"instrument_id\":\"ins-s\"");
    cr_assert_eq(count_rule(&r, "DEPOSIT_VELOCITY_SLIDING"), 2);
    const alert_t *a = nth(&r, "DEPOSIT_VELOCITY_SLIDING", 0);
    cr_assert_str_eq(a->key, "\"p-fast\"");
    cr_assert_str_eq(a->value, "{\"DEPOSITS\":5,\"INSTRUMENTS\":3,\"TOTAL_MINOR\":5000}");
    /* the sixth deposit at 10 min: the first (at 0) is exactly 10 minutes back, still in range */
    cr_assert_str_eq(nth(&r, "DEPOSIT_VELOCITY_SLIDING", 1)->value, "{\"DEPOSITS\":6,\"INSTRUMENTS\":3,\"TOTAL_MINOR\":6000}");
    stop(&r);
}
