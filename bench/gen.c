/*
 * gen.c — the synthetic labeled event generator (`cep gen`).
 *
 * A small discrete-event simulation: "actors" (benign sessions and fraud
 * scenario instances) sit in a heap ordered by the event time of their next
 * event; the generator pops the earliest, lets it write one event and
 * reschedules it. An arrival actor starts new sessions with exponential gaps
 * whose mean follows the time of day. So event times never decrease in the
 * file (unless --disorder-ms makes some late on purpose), sessions of many
 * accounts interleave as they do on a real topic, and memory is bounded by
 * the number of live sessions, not by the number of events.
 *
 * Benign traffic carries the look-alikes that make fraud rules hard:
 * households sharing one IP, travellers changing country at flight speed,
 * players who mistype a password, high spenders, new accounts with a promo
 * code. Scenarios are the fraud patterns of the shipped packs; every event
 * of a scenario instance is labeled.
 *
 * Randomness is splitmix64 seeded from --seed: same options, same bytes.
 */
#include "bench/gen.h"
#include "engine/kafka.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- randomness ---------------------------------------------------------- */

typedef struct prng {
    uint64_t s;
} prng_t;

static uint64_t rnd_u64(prng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* uniform in [0, 1) */
static double rnd_unit(prng_t *r) { return (double)(rnd_u64(r) >> 11) * (1.0 / 9007199254740992.0); }
/* uniform integer in [lo, hi] */
static int64_t rnd_range(prng_t *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd_u64(r) % (uint64_t)(hi - lo + 1));
}
static bool rnd_chance(prng_t *r, double p) { return rnd_unit(r) < p; }
static double rnd_exp(prng_t *r, double mean) { return -mean * log(1.0 - rnd_unit(r)); }
/* log-normal around median m with spread s (sigma of the log) */
static double rnd_lognormal(prng_t *r, double m, double s)
{
    double u1 = rnd_unit(r), u2 = rnd_unit(r);
    double z = sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
    return m * exp(s * z);
}

/* ---- the world ------------------------------------------------------------ */

typedef struct city {
    const char *country, *currency;
    double lat, lon;
} city_t;

/* The first HOME_CITIES are where benign players live; the rest is where
 * attackers and far-away travel come from. */
static const city_t cities[] = {
    {"DE", "EUR", 52.52, 13.40},   {"DE", "EUR", 48.14, 11.58},  {"GB", "GBP", 51.51, -0.13},
    {"FR", "EUR", 48.86, 2.35},    {"ES", "EUR", 40.42, -3.70},  {"IT", "EUR", 41.90, 12.50},
    {"NL", "EUR", 52.37, 4.90},    {"SE", "SEK", 59.33, 18.07},  {"PL", "PLN", 52.23, 21.01},
    {"US", "USD", 40.71, -74.01},  {"US", "USD", 41.88, -87.63}, {"US", "USD", 34.05, -118.24},
    {"CA", "CAD", 43.65, -79.38},  {"BR", "BRL", -23.55, -46.63}, {"JP", "JPY", 35.68, 139.69},
    {"SG", "SGD", 1.35, 103.82},   {"AU", "AUD", -33.87, 151.21}, {"IN", "INR", 19.08, 72.88},
    {"NG", "NGN", 6.52, 3.38},     {"VN", "VND", 21.03, 105.85}, {"ID", "IDR", -6.21, 106.85},
};
enum { HOME_CITIES = 13, NCITIES = (int)CEP_ARRAY_LEN(cities) };

static const char *const gaming_tenants[] = {"casino-eu", "sportsbook-uk", "poker-global"};
static const char *const payment_tenants[] = {"psp-1", "psp-2", "marketplace-3"};
static const char *const bins[] = {"411111", "424242", "510510", "545454", "601100", "371449", "453201", "492910"};
static const char *const mccs[] = {"5411", "5812", "5999", "4121", "5732", "5816", "7995", "5311", "4511", "5691"};

typedef struct account {
    uint32_t num;       /* printed id */
    uint16_t home, city; /* home city, city now (travellers move) */
    uint8_t tenant;
    bool traveller, high_spender, household;
    uint32_t ip;        /* home IP (shared by a household) */
    uint32_t device;    /* usual device */
    uint32_t cards[2];  /* payment cards / gaming instruments */
    int64_t last_seen;  /* event time of its last session, for plausible travel */
} account_t;

/* Actor kinds: 0 arrival, 1 benign session, then the scenarios. */
enum { ACT_ARRIVAL, ACT_SESSION, ACT_SCENARIO };

typedef struct actor {
    int64_t t;   /* event time of the next event */
    uint64_t seq; /* tie-break, so equal times pop in a fixed order */
    uint8_t kind;
    uint8_t scenario; /* index into the domain's scenario table */
    uint16_t step, n; /* progress and planned length */
    uint32_t acct, acct2; /* main account and counterpart */
    uint32_t dev, ip; /* where the events come from */
    uint16_t city;
    bool new_device;
    uint8_t phase;    /* benign sessions: 1 sign-up, 2 first deposit, 3 welcome bonus */
    int64_t amount;   /* scenario-specific money */
    uint32_t aux, aux2; /* scenario-specific: merchant, card, bet id… */
    uint64_t sid;     /* session id */
    uint64_t instance; /* scenario instance number (labels) */
} actor_t;

typedef struct gen gen_t;
/* Write the actor's next event; return false when it has no more. */
typedef bool (*step_fn)(gen_t *g, actor_t *a);

typedef struct scenario {
    const char *name;
    const char *label; /* "fraud" or "abuse" */
    step_fn step;
    void (*start)(gen_t *g, actor_t *a);
} scenario_t;

struct gen {
    const cep_gen_opts_t *o;
    const cep_gen_sink_t *sink;
    cep_gen_stats_t *st;
    prng_t r;
    account_t *accts;
    uint32_t naccts, cap_accts, benign_accts;
    actor_t **heap;
    size_t nheap, cap_heap;
    actor_t *free_list; /* recycled actors, chained through acct */
    uint64_t seq, next_sid, next_instance, next_bet, next_txn;
    const scenario_t *scen;
    unsigned nscen;
    bool enabled[32];
    unsigned nenabled;
    cep_buf_t ev, lab;
    const char *label; /* label of the event being written, NULL = benign */
    bool oom;
};

/* ---- heap of actors ------------------------------------------------------ */

static bool before(const actor_t *a, const actor_t *b) { return a->t < b->t || (a->t == b->t && a->seq < b->seq); }

static void heap_push(gen_t *g, actor_t *a)
{
    if (g->nheap == g->cap_heap) {
        size_t cap = g->cap_heap ? g->cap_heap * 2 : 1024;
        actor_t **h = realloc(g->heap, cap * sizeof *h);
        if (!h) {
            g->oom = true;
            free(a);
            return;
        }
        g->heap = h, g->cap_heap = cap;
    }
    a->seq = g->seq++;
    size_t i = g->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(a, g->heap[p])) break;
        g->heap[i] = g->heap[p];
        i = p;
    }
    g->heap[i] = a;
}

static actor_t *heap_pop(gen_t *g)
{
    actor_t *top = g->heap[0], *last = g->heap[--g->nheap];
    size_t i = 0, n = g->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(g->heap[c + 1], g->heap[c])) c++;
        if (!before(g->heap[c], last)) break;
        g->heap[i] = g->heap[c];
        i = c;
    }
    if (n) g->heap[i] = last;
    return top;
}

static actor_t *actor_new(gen_t *g, uint8_t kind, int64_t t)
{
    actor_t *a = malloc(sizeof *a);
    if (!a) {
        g->oom = true;
        return NULL;
    }
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->t = t;
    return a;
}

/* ---- accounts -------------------------------------------------------------- */

static uint32_t ip_for(gen_t *g, uint16_t city)
{
    /* a plausible public IPv4: the first octet depends on the city */
    uint32_t first = 24 + (uint32_t)city * 9 + (uint32_t)rnd_range(&g->r, 0, 8);
    return first << 24 | (uint32_t)(rnd_u64(&g->r) & 0xffffff);
}

static uint32_t account_add(gen_t *g, uint16_t city)
{
    if (g->naccts == g->cap_accts) {
        uint32_t cap = g->cap_accts ? g->cap_accts * 2 : 1024;
        account_t *n = realloc(g->accts, cap * sizeof *n);
        if (!n) {
            g->oom = true;
            return 0;
        }
        g->accts = n, g->cap_accts = cap;
    }
    account_t *a = &g->accts[g->naccts];
    memset(a, 0, sizeof *a);
    a->num = 100000 + g->naccts * 7 + (uint32_t)rnd_range(&g->r, 0, 6);
    a->home = a->city = city;
    a->tenant = (uint8_t)rnd_range(&g->r, 0, 2);
    a->traveller = rnd_chance(&g->r, 0.08);
    a->high_spender = rnd_chance(&g->r, 0.04);
    a->ip = ip_for(g, city);
    a->device = (uint32_t)rnd_u64(&g->r);
    a->cards[0] = (uint32_t)rnd_u64(&g->r);
    a->cards[1] = (uint32_t)rnd_u64(&g->r);
    a->last_seen = INT64_MIN / 2;
    return g->naccts++;
}

static void world_build(gen_t *g, uint32_t n)
{
    for (uint32_t i = 0; i < n && !g->oom; i++) {
        uint32_t k = account_add(g, (uint16_t)rnd_range(&g->r, 0, HOME_CITIES - 1));
        /* about one account in six lives with one to three others on one IP */
        if (i > 0 && rnd_chance(&g->r, 0.15)) {
            account_t *a = &g->accts[k], *prev = &g->accts[k - 1];
            a->ip = prev->ip;
            a->home = a->city = prev->home;
            a->household = prev->household = true;
        }
    }
    g->benign_accts = g->naccts;
}

static double distance_km(const city_t *a, const city_t *b)
{
    double r = M_PI / 180.0;
    double dlat = (b->lat - a->lat) * r, dlon = (b->lon - a->lon) * r;
    double h = sin(dlat / 2) * sin(dlat / 2) + cos(a->lat * r) * cos(b->lat * r) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * 6371.0 * asin(sqrt(h));
}

/* ---- writing events ---------------------------------------------------------- */

static const char *domain_prefix(const gen_t *g) { return g->o->domain == CEP_GEN_GAMING ? "g" : "p"; }

static void put_acct_id(gen_t *g, cep_buf_t *b, uint32_t k)
{
    char id[24];
    int n = snprintf(id, sizeof id, g->o->domain == CEP_GEN_GAMING ? "p-%06u" : "cus_%06u", g->accts[k].num);
    cep_buf_put_json_str(b, id, (size_t)n);
}

static void put_hex(cep_buf_t *b, const char *prefix, uint32_t v)
{
    char s[32];
    int n = snprintf(s, sizeof s, "%s%08x", prefix, v);
    cep_buf_put_json_str(b, s, (size_t)n);
}

static void put_ip(cep_buf_t *b, uint32_t ip)
{
    char s[20];
    int n = snprintf(s, sizeof s, "%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255, (ip & 255) | 1);
    cep_buf_put_json_str(b, s, (size_t)n);
}

static void put_fixed2(cep_buf_t *b, double v);

/* Start an event: the envelope of EVENTS.md, from the actor's origin. */
static void ev_begin(gen_t *g, actor_t *a, const char *type, uint32_t acct)
{
    cep_buf_t *b = &g->ev;
    cep_buf_reset(b);
    const city_t *c = &cities[a->city];
    const char *tenants_g = gaming_tenants[g->accts[acct].tenant];
    const char *tenants_p = payment_tenants[g->accts[acct].tenant];
    cep_buf_printf(b, "{\"event_id\":\"%s-%09llu\",\"event_type\":\"%s\",\"event_time\":", domain_prefix(g),
                   (unsigned long long)g->st->events, type);
    int64_t t = a->t;
    if (g->o->disorder_ms > 0 && rnd_chance(&g->r, 0.03)) t -= rnd_range(&g->r, 1, g->o->disorder_ms);
    cep_buf_put_i64(b, t);
    cep_buf_printf(b, ",\"tenant\":\"%s\",\"account_id\":", g->o->domain == CEP_GEN_GAMING ? tenants_g : tenants_p);
    put_acct_id(g, b, acct);
    cep_buf_printf(b, ",\"session_id\":\"s-%llx\",\"device_id\":", (unsigned long long)a->sid);
    put_hex(b, "fp-", a->dev);
    cep_buf_puts(b, ",\"ip\":");
    put_ip(b, a->ip);
    cep_buf_printf(b, ",\"country\":\"%s\",\"lat\":", c->country);
    put_fixed2(b, c->lat);
    cep_buf_puts(b, ",\"lon\":");
    put_fixed2(b, c->lon);
}

static void ev_key(gen_t *g, const char *k)
{
    cep_buf_puts(&g->ev, ",\"");
    cep_buf_puts(&g->ev, k);
    cep_buf_puts(&g->ev, "\":");
}
static void ev_str(gen_t *g, const char *k, const char *v)
{
    ev_key(g, k);
    cep_buf_put_json_str(&g->ev, v, strlen(v));
}
static void ev_hex(gen_t *g, const char *k, const char *prefix, uint32_t v)
{
    ev_key(g, k);
    put_hex(&g->ev, prefix, v);
}
static void ev_acct(gen_t *g, const char *k, uint32_t acct)
{
    ev_key(g, k);
    put_acct_id(g, &g->ev, acct);
}
static void ev_int(gen_t *g, const char *k, int64_t v)
{
    ev_key(g, k);
    cep_buf_put_i64(&g->ev, v);
}
static void ev_bool(gen_t *g, const char *k, bool v)
{
    ev_key(g, k);
    cep_buf_puts(&g->ev, v ? "true" : "false");
}
/* A number with at most two decimals, as Java prints it ("13.4", "1.05"):
 * the generator's doubles are all of that kind, and the general shortest
 * round-trip printer costs more than the rest of an event together. */
static void put_fixed2(cep_buf_t *b, double v)
{
    int64_t c = (int64_t)llround(v * 100.0);
    if (c < 0) cep_buf_putc(b, '-'), c = -c;
    cep_buf_put_i64(b, c / 100);
    cep_buf_putc(b, '.');
    int64_t f = c % 100;
    cep_buf_putc(b, (char)('0' + f / 10));
    if (f % 10) cep_buf_putc(b, (char)('0' + f % 10));
}
static void ev_dbl(gen_t *g, const char *k, double v)
{
    ev_key(g, k);
    put_fixed2(&g->ev, v);
}
static void ev_money(gen_t *g, actor_t *a, int64_t minor)
{
    ev_int(g, "amount_minor", minor < 1 ? 1 : minor);
    ev_str(g, "currency", cities[g->accts[a->acct].home].currency);
}

/* Finish the event: hand it to the sink, label it if a scenario wrote it. */
static void ev_end(gen_t *g, actor_t *a, uint32_t acct)
{
    cep_buf_putc(&g->ev, '}');
    if (g->ev.failed) {
        g->oom = true;
        return;
    }
    char key[24];
    int kn = snprintf(key, sizeof key, g->o->domain == CEP_GEN_GAMING ? "p-%06u" : "cus_%06u", g->accts[acct].num);
    g->sink->event(g->sink->ctx, key, (size_t)kn, g->ev.data, g->ev.len);
    if (a->kind == ACT_SCENARIO) {
        g->st->labeled++;
        if (g->sink->label) {
            cep_buf_t *l = &g->lab;
            cep_buf_reset(l);
            cep_buf_printf(l, "{\"event_id\":\"%s-%09llu\",\"label\":\"%s\",\"scenario\":\"%s\",\"instance\":%llu,"
                              "\"label_time\":",
                           domain_prefix(g), (unsigned long long)g->st->events, g->scen[a->scenario].label,
                           g->scen[a->scenario].name, (unsigned long long)a->instance);
            cep_buf_put_i64(l, a->t + 7 * 86400000LL);
            cep_buf_putc(l, '}');
            if (!l->failed) g->sink->label(g->sink->ctx, l->data, l->len);
        }
    }
    g->st->events++;
}

/* Origin helpers: the account's own device and IP, or an attacker's. */
static void origin_home(gen_t *g, actor_t *a)
{
    account_t *ac = &g->accts[a->acct];
    a->dev = ac->device, a->ip = ac->ip, a->city = ac->city;
}
static void origin_foreign(gen_t *g, actor_t *a, uint16_t far_from)
{
    uint16_t c;
    do c = (uint16_t)rnd_range(&g->r, HOME_CITIES, NCITIES - 1);
    while (distance_km(&cities[c], &cities[far_from]) < 3000);
    a->city = c;
    a->dev = (uint32_t)rnd_u64(&g->r);
    a->ip = ip_for(g, c);
}

static uint32_t pick_account(gen_t *g) { return (uint32_t)rnd_range(&g->r, 0, g->benign_accts - 1); }
static int64_t gap(gen_t *g, double mean_s) { return 1 + (int64_t)(rnd_exp(&g->r, mean_s) * 1000.0); }

static void login(gen_t *g, actor_t *a, const char *status, bool new_device)
{
    ev_begin(g, a, "login", a->acct);
    ev_str(g, "status", status);
    ev_bool(g, "new_device", new_device);
    ev_end(g, a, a->acct);
}

/* ---- benign sessions --------------------------------------------------------- */

/* A session: optional sign-up, a login (sometimes after a mistyped
 * password), then a handful of actions seconds to minutes apart. */
static void session_start(gen_t *g, actor_t *a)
{
    if (rnd_chance(&g->r, 0.03)) {
        a->acct = account_add(g, (uint16_t)rnd_range(&g->r, 0, HOME_CITIES - 1));
        a->phase = 1; /* sign-up first */
    } else {
        a->acct = pick_account(g);
    }
    account_t *ac = &g->accts[a->acct];
    /* travellers move at flight speed: only to a city they could have reached */
    if (ac->traveller && rnd_chance(&g->r, 0.3)) {
        uint16_t c = (uint16_t)rnd_range(&g->r, 0, NCITIES - 1);
        double hours = distance_km(&cities[ac->city], &cities[c]) / 800.0 + 3.0;
        if (a->t - ac->last_seen > (int64_t)(hours * 3600000.0)) ac->city = c;
    } else if (ac->city != ac->home && rnd_chance(&g->r, 0.5)) {
        double hours = distance_km(&cities[ac->city], &cities[ac->home]) / 800.0 + 3.0;
        if (a->t - ac->last_seen > (int64_t)(hours * 3600000.0)) ac->city = ac->home;
    }
    ac->last_seen = a->t;
    origin_home(g, a);
    if (ac->city != ac->home) a->ip = ip_for(g, ac->city); /* hotel wifi */
    a->new_device = rnd_chance(&g->r, 0.02);
    if (a->new_device) a->dev = ac->device = (uint32_t)rnd_u64(&g->r);
    a->sid = g->next_sid++;
    a->aux = rnd_chance(&g->r, 0.05) ? (uint32_t)rnd_range(&g->r, 1, 2) : 0; /* mistyped passwords */
    a->n = (uint16_t)rnd_range(&g->r, 2, 14);
}

static int64_t spend(gen_t *g, actor_t *a, double median)
{
    double m = g->accts[a->acct].high_spender ? median * 15 : median;
    return (int64_t)rnd_lognormal(&g->r, m, 0.8);
}

static void gaming_action(gen_t *g, actor_t *a)
{
    double p = rnd_unit(&g->r);
    uint32_t k = a->acct;
    if (a->amount) { /* settle the bet placed just before */
        ev_begin(g, a, "bet_settle", k);
        ev_hex(g, "bet_id", "b-", a->aux2);
        ev_int(g, "payout_minor", rnd_chance(&g->r, 0.45) ? a->amount * rnd_range(&g->r, 15, 30) / 10 : 0);
        a->amount = 0;
    } else if (p < 0.14) {
        ev_begin(g, a, "deposit", k);
        ev_money(g, a, spend(g, a, 3000));
        ev_hex(g, "instrument_id", "ins-", g->accts[k].cards[0]);
        ev_str(g, "method", rnd_chance(&g->r, 0.7) ? "card" : "wallet");
    } else if (p < 0.62) {
        a->aux2 = (uint32_t)g->next_bet++;
        a->amount = spend(g, a, 500);
        ev_begin(g, a, "bet", k);
        ev_hex(g, "bet_id", "b-", a->aux2);
        ev_hex(g, "game_id", "gm-", (uint32_t)rnd_range(&g->r, 1, 40));
        ev_hex(g, "market_id", "mk-", (uint32_t)rnd_range(&g->r, 1, 400));
        ev_str(g, "outcome", rnd_chance(&g->r, 0.5) ? "home" : "away");
        ev_int(g, "stake_minor", a->amount);
        ev_dbl(g, "odds", (double)rnd_range(&g->r, 110, 600) / 100.0);
    } else if (p < 0.74) {
        uint32_t other = pick_account(g);
        bool won = rnd_chance(&g->r, 0.5);
        ev_begin(g, a, "hand_result", k);
        ev_hex(g, "table_id", "tb-", (uint32_t)rnd_range(&g->r, 1, 300));
        ev_int(g, "pot_minor", spend(g, a, 800));
        ev_acct(g, "winner_id", won ? k : other);
        ev_acct(g, "loser_id", won ? other : k);
        ev_bool(g, "showdown", rnd_chance(&g->r, 0.7));
    } else if (p < 0.80) {
        ev_begin(g, a, "purchase", k);
        ev_hex(g, "sku", "sku-", (uint32_t)rnd_range(&g->r, 1, 60));
        ev_money(g, a, spend(g, a, 999));
        ev_hex(g, "instrument_id", "ins-", g->accts[k].cards[0]);
    } else if (p < 0.85) {
        ev_begin(g, a, "withdrawal_request", k);
        ev_money(g, a, spend(g, a, 5000));
        ev_hex(g, "instrument_id", "ins-", g->accts[k].cards[0]);
        ev_str(g, "method", "bank_transfer");
    } else if (p < 0.88) {
        ev_begin(g, a, "bonus_claim", k);
        bool reload = rnd_chance(&g->r, 0.7);
        ev_str(g, "bonus_id", reload ? "RELOAD25" : "FREEBET5");
        ev_str(g, "bonus_type", reload ? "reload" : "freebet");
        ev_money(g, a, reload ? 2500 : 500);
        ev_int(g, "wager_req_minor", reload ? 75000 : 0);
    } else if (p < 0.92) {
        ev_begin(g, a, rnd_chance(&g->r, 0.5) ? "trade" : "gift", k);
        ev_acct(g, "counterparty_id", pick_account(g));
        ev_hex(g, "item_id", "it-", (uint32_t)rnd_range(&g->r, 1, 500));
        ev_int(g, "qty", rnd_range(&g->r, 1, 3));
        ev_int(g, "value_minor_est", spend(g, a, 700));
        ev_str(g, "currency", cities[g->accts[k].home].currency);
    } else if (p < 0.95) {
        ev_begin(g, a, "promo_redeem", k);
        ev_str(g, "promo_code", rnd_chance(&g->r, 0.5) ? "WEEKEND10" : "SPIN50");
    } else if (p < 0.985) {
        ev_begin(g, a, "bet", k); /* a second look at the sportsbook: more bets */
        a->aux2 = (uint32_t)g->next_bet++;
        a->amount = spend(g, a, 300);
        ev_hex(g, "bet_id", "b-", a->aux2);
        ev_hex(g, "game_id", "gm-", (uint32_t)rnd_range(&g->r, 1, 40));
        ev_hex(g, "market_id", "mk-", (uint32_t)rnd_range(&g->r, 1, 400));
        ev_str(g, "outcome", "draw");
        ev_int(g, "stake_minor", a->amount);
        ev_dbl(g, "odds", (double)rnd_range(&g->r, 250, 400) / 100.0);
    } else if (p < 0.993) {
        static const char *const what[] = {"password", "email", "phone", "2fa"};
        ev_begin(g, a, "credential_change", k);
        ev_str(g, "what", what[rnd_range(&g->r, 0, 3)]);
    } else if (p < 0.997) {
        ev_begin(g, a, "refund", k);
        ev_hex(g, "ref_event_id", "g-", (uint32_t)rnd_range(&g->r, 0, (int64_t)g->st->events));
        ev_money(g, a, spend(g, a, 999));
        ev_str(g, "reason_code", "duplicate");
    } else {
        ev_begin(g, a, "self_exclusion", k);
        ev_int(g, "until", a->t + 180 * 86400000LL);
    }
    ev_end(g, a, k);
}

static void payments_action(gen_t *g, actor_t *a)
{
    double p = rnd_unit(&g->r);
    uint32_t k = a->acct;
    account_t *ac = &g->accts[k];
    if (a->amount) { /* capture the approved auth just before */
        ev_begin(g, a, "capture", k);
        ev_hex(g, "txn_id", "t-", a->aux2);
        ev_money(g, a, a->amount);
        ev_str(g, "reason", "settled");
        a->amount = 0;
    } else if (p < 0.62) {
        uint32_t card = ac->cards[rnd_chance(&g->r, 0.8) ? 0 : 1];
        bool approved = rnd_chance(&g->r, 0.94);
        int64_t amt = spend(g, a, 2500);
        bool cnp = rnd_chance(&g->r, 0.6);
        a->aux2 = (uint32_t)g->next_txn++;
        ev_begin(g, a, "auth", k);
        ev_hex(g, "txn_id", "t-", a->aux2);
        ev_hex(g, "card_fp", "cfp-", card);
        ev_str(g, "bin", bins[card % CEP_ARRAY_LEN(bins)]);
        ev_str(g, "card_country", cities[ac->home].country);
        ev_str(g, "funding", card % 5 == 0 ? "prepaid" : card % 2 ? "credit" : "debit");
        ev_hex(g, "merchant_id", "m-", (uint32_t)rnd_range(&g->r, 1, 2000));
        ev_str(g, "mcc", mccs[rnd_range(&g->r, 0, (int64_t)CEP_ARRAY_LEN(mccs) - 1)]);
        ev_hex(g, "terminal_id", "term-", (uint32_t)rnd_range(&g->r, 1, 20000));
        ev_str(g, "channel", cnp ? "cnp" : "cp");
        ev_money(g, a, amt);
        ev_str(g, "result", approved ? "approved" : "declined");
        if (!approved) ev_str(g, "decline_reason", rnd_chance(&g->r, 0.7) ? "insufficient_funds" : "do_not_honor");
        ev_str(g, "cvc_check", "pass");
        ev_str(g, "avs_check", cnp ? "pass" : "unavailable");
        if (approved) a->amount = amt;
    } else if (p < 0.75) {
        ev_begin(g, a, "transfer", k);
        ev_hex(g, "txn_id", "t-", (uint32_t)g->next_txn++);
        ev_acct(g, "debtor_acct", k);
        ev_acct(g, "creditor_acct", pick_account(g));
        int64_t amt = spend(g, a, 4000);
        ev_money(g, a, amt);
        ev_int(g, "balance_after_minor", rnd_range(&g->r, 0, 500000));
        ev_str(g, "status", "completed");
    } else if (p < 0.84) {
        ev_begin(g, a, rnd_chance(&g->r, 0.6) ? "cash_in" : "cash_out", k);
        ev_hex(g, "txn_id", "t-", (uint32_t)g->next_txn++);
        ev_money(g, a, spend(g, a, 5000));
        ev_hex(g, "agent_id", "ag-", (uint32_t)rnd_range(&g->r, 1, 300));
    } else if (p < 0.88) {
        ev_begin(g, a, "refund", k);
        ev_hex(g, "txn_id", "t-", (uint32_t)rnd_range(&g->r, 0, (int64_t)g->next_txn));
        ev_money(g, a, spend(g, a, 2000));
        ev_str(g, "reason", "returned_item");
    } else if (p < 0.885) {
        ev_begin(g, a, "dispute", k);
        ev_hex(g, "txn_id", "t-", (uint32_t)rnd_range(&g->r, 0, (int64_t)g->next_txn));
        ev_money(g, a, spend(g, a, 3000));
        ev_str(g, "reason", "product_not_received");
    } else if (p < 0.89) {
        static const char *const what[] = {"password", "email", "phone", "2fa"};
        ev_begin(g, a, "credential_change", k);
        ev_str(g, "what", what[rnd_range(&g->r, 0, 3)]);
    } else {
        /* a browse-and-buy: another auth at a familiar merchant */
        a->aux2 = (uint32_t)g->next_txn++;
        int64_t amt = spend(g, a, 1500);
        ev_begin(g, a, "auth", k);
        ev_hex(g, "txn_id", "t-", a->aux2);
        ev_hex(g, "card_fp", "cfp-", ac->cards[0]);
        ev_str(g, "bin", bins[ac->cards[0] % CEP_ARRAY_LEN(bins)]);
        ev_str(g, "card_country", cities[ac->home].country);
        ev_str(g, "funding", "debit");
        ev_hex(g, "merchant_id", "m-", (uint32_t)(k % 2000 + 1));
        ev_str(g, "mcc", "5411");
        ev_hex(g, "terminal_id", "term-", k % 20000 + 1);
        ev_str(g, "channel", "cp");
        ev_money(g, a, amt);
        ev_str(g, "result", "approved");
        ev_str(g, "cvc_check", "pass");
        ev_str(g, "avs_check", "unavailable");
        a->amount = amt;
    }
    ev_end(g, a, k);
}

static bool session_step(gen_t *g, actor_t *a)
{
    uint32_t k = a->acct;
    if (a->phase == 1) { /* sign-up */
        ev_begin(g, a, g->o->domain == CEP_GEN_GAMING ? "account_create" : "account_open", k);
        if (g->o->domain == CEP_GEN_GAMING) {
            if (rnd_chance(&g->r, 0.2)) ev_acct(g, "referrer_id", pick_account(g));
            if (rnd_chance(&g->r, 0.5)) ev_str(g, "promo_code", "WELCOME100");
            ev_hex(g, "kyc_hash", "kyc-", (uint32_t)rnd_u64(&g->r));
        } else {
            ev_int(g, "holder_dob", -rnd_range(&g->r, 0, 40) * 31557600000LL + 946684800000LL);
        }
        ev_end(g, a, k);
        a->phase = g->o->domain == CEP_GEN_GAMING ? 2 : 0;
        a->t += gap(g, 20);
        return true;
    }
    if (a->step == 0 && a->aux > 0) { /* the mistyped password */
        login(g, a, "bad_password", a->new_device);
        a->aux--;
        a->t += gap(g, 6);
        return true;
    }
    if (a->step == 0) {
        login(g, a, "ok", a->new_device);
        a->step++;
        a->t += gap(g, 15);
        return true;
    }
    if (a->phase == 2) { /* a new player takes the welcome offer */
        ev_begin(g, a, "deposit", k);
        ev_money(g, a, spend(g, a, 2000));
        ev_hex(g, "instrument_id", "ins-", g->accts[k].cards[0]);
        ev_str(g, "method", "card");
        ev_end(g, a, k);
        a->phase = 3;
        a->t += gap(g, 30);
        return true;
    }
    if (a->phase == 3) {
        ev_begin(g, a, "bonus_claim", k);
        ev_str(g, "bonus_id", "WELCOME100");
        ev_str(g, "bonus_type", "welcome");
        ev_money(g, a, 10000);
        ev_int(g, "wager_req_minor", 300000);
        ev_end(g, a, k);
        a->phase = 0;
        a->t += gap(g, 40);
        return true;
    }
    if (g->o->domain == CEP_GEN_GAMING) gaming_action(g, a);
    else payments_action(g, a);
    a->t += gap(g, a->amount ? 20 : 50);
    return ++a->step <= a->n || a->amount;
}

/* ---- gaming scenarios -------------------------------------------------------- */

/* Multi-accounting for bonus abuse: one device and IP open several
 * accounts within an hour; each takes the welcome bonus, barely plays and
 * asks for a withdrawal. Per account: create, deposit, bonus, 2 bets, withdraw. */
static void multi_accounting_start(gen_t *g, actor_t *a)
{
    a->city = (uint16_t)rnd_range(&g->r, 0, HOME_CITIES - 1);
    a->dev = (uint32_t)rnd_u64(&g->r);
    a->ip = ip_for(g, a->city);
    a->n = (uint16_t)rnd_range(&g->r, 4, 7) * 6;
}
static bool multi_accounting_step(gen_t *g, actor_t *a)
{
    int sub = a->step % 6;
    if (sub == 0) {
        a->acct = account_add(g, a->city);
        g->accts[a->acct].device = a->dev, g->accts[a->acct].ip = a->ip;
        a->sid = g->next_sid++;
        ev_begin(g, a, "account_create", a->acct);
        ev_str(g, "promo_code", "WELCOME100");
        ev_hex(g, "affiliate_id", "aff-", a->aux ? a->aux : (a->aux = (uint32_t)rnd_range(&g->r, 1, 50)));
        ev_hex(g, "kyc_hash", "kyc-", (uint32_t)rnd_u64(&g->r));
    } else if (sub == 1) {
        ev_begin(g, a, "deposit", a->acct);
        ev_money(g, a, 2000);
        ev_hex(g, "instrument_id", "ins-", (uint32_t)rnd_u64(&g->r));
        ev_str(g, "method", "card");
    } else if (sub == 2) {
        ev_begin(g, a, "bonus_claim", a->acct);
        ev_str(g, "bonus_id", "WELCOME100");
        ev_str(g, "bonus_type", "welcome");
        ev_money(g, a, 10000);
        ev_int(g, "wager_req_minor", 300000);
    } else if (sub < 5) {
        ev_begin(g, a, "bet", a->acct);
        ev_hex(g, "bet_id", "b-", (uint32_t)g->next_bet++);
        ev_hex(g, "game_id", "gm-", 7);
        ev_hex(g, "market_id", "mk-", 11);
        ev_str(g, "outcome", "home");
        ev_int(g, "stake_minor", rnd_range(&g->r, 100, 300));
        ev_dbl(g, "odds", 1.1);
    } else {
        ev_begin(g, a, "withdrawal_request", a->acct);
        ev_money(g, a, rnd_range(&g->r, 9000, 12000));
        ev_hex(g, "instrument_id", "ins-", (uint32_t)rnd_u64(&g->r));
        ev_str(g, "method", "ewallet");
    }
    ev_end(g, a, a->acct);
    a->t += sub == 5 ? gap(g, 240) : gap(g, 25);
    return ++a->step < a->n;
}

/* Account takeover: password guessing from a far-away new device, then a
 * successful login, the e-mail and password changed, and the balance out. */
static void ato_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    origin_foreign(g, a, g->accts[a->acct].home);
    a->sid = g->next_sid++;
    a->n = (uint16_t)rnd_range(&g->r, 4, 9); /* failed guesses */
}
static bool ato_step(gen_t *g, actor_t *a)
{
    uint32_t k = a->acct;
    int s = a->step;
    if (s < a->n) {
        login(g, a, "bad_password", true);
        a->t += gap(g, 8);
    } else if (s == a->n) {
        login(g, a, "ok", true);
        a->t += gap(g, 40);
    } else if (s == a->n + 1 || s == a->n + 2) {
        ev_begin(g, a, "credential_change", k);
        ev_str(g, "what", s == a->n + 1 ? "email" : "password");
        ev_end(g, a, k);
        a->t += gap(g, 30);
    } else {
        ev_begin(g, a, "withdrawal_request", k);
        ev_money(g, a, rnd_range(&g->r, 20000, 150000));
        ev_hex(g, "instrument_id", "ins-", (uint32_t)rnd_u64(&g->r));
        ev_str(g, "method", "crypto");
        ev_end(g, a, k);
        return false;
    }
    a->step++;
    return true;
}

/* Credential stuffing: one IP tries a list of accounts, almost all fail. */
static void stuffing_start(gen_t *g, actor_t *a)
{
    origin_foreign(g, a, 0);
    a->n = (uint16_t)rnd_range(&g->r, 20, 60);
}
static bool stuffing_step(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    a->sid = g->next_sid++;
    a->dev = (uint32_t)rnd_u64(&g->r); /* headless browsers rotate fingerprints */
    login(g, a, rnd_chance(&g->r, 0.04) ? "ok" : "bad_password", true);
    a->t += gap(g, 6);
    return ++a->step < a->n;
}

/* Chip dumping: a colluder keeps losing big pots to the same partner
 * without showdown, moving money across accounts. */
static void chip_dumping_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    do a->acct2 = pick_account(g);
    while (a->acct2 == a->acct);
    origin_home(g, a);
    a->sid = g->next_sid++;
    a->aux = (uint32_t)rnd_range(&g->r, 1, 300);
    a->n = (uint16_t)rnd_range(&g->r, 5, 10);
}
static bool chip_dumping_step(gen_t *g, actor_t *a)
{
    ev_begin(g, a, "hand_result", a->acct);
    ev_hex(g, "table_id", "tb-", a->aux);
    ev_int(g, "pot_minor", rnd_range(&g->r, 20000, 80000));
    ev_acct(g, "winner_id", a->acct2);
    ev_acct(g, "loser_id", a->acct);
    ev_bool(g, "showdown", false);
    ev_end(g, a, a->acct);
    a->t += gap(g, 90);
    return ++a->step < a->n;
}

/* Deposit and withdraw without play: money in, one token bet, money out. */
static void no_play_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    origin_home(g, a);
    a->sid = g->next_sid++;
    a->amount = rnd_range(&g->r, 50000, 500000);
}
static bool no_play_step(gen_t *g, actor_t *a)
{
    uint32_t k = a->acct;
    switch (a->step++) {
    case 0:
        login(g, a, "ok", false);
        a->t += gap(g, 20);
        return true;
    case 1:
        ev_begin(g, a, "deposit", k);
        ev_money(g, a, a->amount);
        ev_hex(g, "instrument_id", "ins-", g->accts[k].cards[1]);
        ev_str(g, "method", "card");
        ev_end(g, a, k);
        a->t += gap(g, 300);
        return true;
    case 2:
        ev_begin(g, a, "bet", k);
        ev_hex(g, "bet_id", "b-", (uint32_t)g->next_bet++);
        ev_hex(g, "game_id", "gm-", 3);
        ev_hex(g, "market_id", "mk-", 5);
        ev_str(g, "outcome", "home");
        ev_int(g, "stake_minor", a->amount / 100);
        ev_dbl(g, "odds", 1.05);
        ev_end(g, a, k);
        a->t += gap(g, 600);
        return true;
    default:
        ev_begin(g, a, "withdrawal_request", k);
        ev_money(g, a, a->amount * 98 / 100);
        ev_hex(g, "instrument_id", "ins-", (uint32_t)rnd_u64(&g->r));
        ev_str(g, "method", "bank_transfer");
        ev_end(g, a, k);
        return false;
    }
}

/* Deposit velocity with many instruments: stolen cards tried one after another. */
static void deposit_velocity_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    origin_home(g, a);
    a->sid = g->next_sid++;
    a->n = (uint16_t)rnd_range(&g->r, 6, 15);
}
static bool deposit_velocity_step(gen_t *g, actor_t *a)
{
    ev_begin(g, a, "deposit", a->acct);
    ev_money(g, a, rnd_range(&g->r, 1000, 5000));
    ev_hex(g, "instrument_id", "ins-", (uint32_t)rnd_u64(&g->r));
    ev_str(g, "method", "card");
    ev_end(g, a, a->acct);
    a->t += gap(g, 35);
    return ++a->step < a->n;
}

/* ---- payments scenarios -------------------------------------------------------- */

static void auth_event(gen_t *g, actor_t *a, uint32_t card, const char *bin, uint32_t merchant, int64_t amount,
                       bool approved, const char *reason, const char *funding)
{
    ev_begin(g, a, "auth", a->acct);
    ev_hex(g, "txn_id", "t-", (uint32_t)g->next_txn++);
    ev_hex(g, "card_fp", "cfp-", card);
    ev_str(g, "bin", bin);
    ev_str(g, "card_country", cities[g->accts[a->acct].home].country);
    ev_str(g, "funding", funding);
    ev_hex(g, "merchant_id", "m-", merchant);
    ev_str(g, "mcc", "5816");
    ev_hex(g, "terminal_id", "term-", merchant);
    ev_str(g, "channel", "cnp");
    ev_money(g, a, amount);
    ev_str(g, "result", approved ? "approved" : "declined");
    if (!approved) ev_str(g, "decline_reason", reason);
    ev_str(g, "cvc_check", approved ? "pass" : "fail");
    ev_str(g, "avs_check", "unavailable");
    ev_end(g, a, a->acct);
}

/* Card testing: one device tries many stolen cards with tiny amounts at one merchant. */
static void card_testing_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    origin_foreign(g, a, g->accts[a->acct].home);
    a->sid = g->next_sid++;
    a->aux = (uint32_t)rnd_range(&g->r, 1, 2000);
    a->n = (uint16_t)rnd_range(&g->r, 15, 40);
}
static bool card_testing_step(gen_t *g, actor_t *a)
{
    bool ok = rnd_chance(&g->r, 0.15);
    auth_event(g, a, (uint32_t)rnd_u64(&g->r), bins[rnd_range(&g->r, 0, 7)], a->aux, rnd_range(&g->r, 50, 300), ok,
               rnd_chance(&g->r, 0.6) ? "incorrect_cvc" : "do_not_honor", "prepaid");
    a->t += gap(g, 12);
    return ++a->step < a->n;
}

/* Card velocity: one card used at many merchants in minutes, amounts rising. */
static void card_velocity_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    origin_home(g, a);
    a->dev = (uint32_t)rnd_u64(&g->r);
    a->sid = g->next_sid++;
    a->aux = g->accts[a->acct].cards[0];
    a->n = (uint16_t)rnd_range(&g->r, 6, 12);
    a->amount = rnd_range(&g->r, 3000, 8000);
}
static bool card_velocity_step(gen_t *g, actor_t *a)
{
    auth_event(g, a, a->aux, bins[a->aux % CEP_ARRAY_LEN(bins)], (uint32_t)rnd_range(&g->r, 1, 2000),
               a->amount, true, NULL, "credit");
    a->amount = a->amount * 13 / 10;
    a->t += gap(g, 60);
    return ++a->step < a->n;
}

/* Impossible travel: a login at home, then activity from another continent minutes later. */
static void travel_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    origin_home(g, a);
    a->sid = g->next_sid++;
}
static bool travel_step(gen_t *g, actor_t *a)
{
    switch (a->step++) {
    case 0:
        login(g, a, "ok", false);
        a->t += rnd_range(&g->r, 5, 40) * 60000;
        origin_foreign(g, a, g->accts[a->acct].city);
        a->sid = g->next_sid++;
        return true;
    case 1:
        login(g, a, "ok", true);
        a->t += gap(g, 30);
        return true;
    default:
        auth_event(g, a, g->accts[a->acct].cards[0], bins[g->accts[a->acct].cards[0] % CEP_ARRAY_LEN(bins)],
                   (uint32_t)rnd_range(&g->r, 1, 2000), rnd_range(&g->r, 20000, 90000), true, NULL, "credit");
        return false;
    }
}

/* Takeover of a payment account: guesses, a login, new credentials, money out. */
static bool payments_ato_step(gen_t *g, actor_t *a)
{
    uint32_t k = a->acct;
    int s = a->step;
    if (s <= a->n + 2) return ato_step(g, a);
    ev_begin(g, a, "transfer", k);
    ev_hex(g, "txn_id", "t-", (uint32_t)g->next_txn++);
    ev_acct(g, "debtor_acct", k);
    ev_hex(g, "creditor_acct", "mule-", (uint32_t)rnd_u64(&g->r));
    ev_money(g, a, rnd_range(&g->r, 50000, 400000));
    ev_int(g, "balance_after_minor", rnd_range(&g->r, 0, 500));
    ev_str(g, "status", "completed");
    ev_end(g, a, k);
    return false;
}

/* Money mule: many small cash-ins from agents, then one large cash-out. */
static void mule_start(gen_t *g, actor_t *a)
{
    a->acct = pick_account(g);
    origin_home(g, a);
    a->sid = g->next_sid++;
    a->n = (uint16_t)rnd_range(&g->r, 5, 12);
}
static bool mule_step(gen_t *g, actor_t *a)
{
    bool last = a->step == a->n;
    ev_begin(g, a, last ? "cash_out" : "cash_in", a->acct);
    ev_hex(g, "txn_id", "t-", (uint32_t)g->next_txn++);
    int64_t amt = last ? a->amount * 95 / 100 : rnd_range(&g->r, 20000, 90000);
    a->amount += amt;
    ev_money(g, a, amt);
    ev_hex(g, "agent_id", "ag-", (uint32_t)rnd_range(&g->r, 1, 300));
    ev_end(g, a, a->acct);
    a->t += gap(g, 120);
    return ++a->step <= a->n;
}

/* ---- tables ---------------------------------------------------------------------- */

static const scenario_t gaming_scenarios[] = {
    {"multi_accounting", "abuse", multi_accounting_step, multi_accounting_start},
    {"account_takeover", "fraud", ato_step, ato_start},
    {"credential_stuffing", "fraud", stuffing_step, stuffing_start},
    {"chip_dumping", "abuse", chip_dumping_step, chip_dumping_start},
    {"deposit_withdraw_no_play", "fraud", no_play_step, no_play_start},
    {"deposit_velocity", "fraud", deposit_velocity_step, deposit_velocity_start},
};
static const scenario_t payment_scenarios[] = {
    {"card_testing", "fraud", card_testing_step, card_testing_start},
    {"card_velocity", "fraud", card_velocity_step, card_velocity_start},
    {"impossible_travel", "fraud", travel_step, travel_start},
    {"account_takeover", "fraud", payments_ato_step, ato_start},
    {"money_mule", "fraud", mule_step, mule_start},
};

const char *cep_gen_scenario_name(cep_gen_domain_t d, unsigned i)
{
    if (d == CEP_GEN_GAMING) return i < CEP_ARRAY_LEN(gaming_scenarios) ? gaming_scenarios[i].name : NULL;
    return i < CEP_ARRAY_LEN(payment_scenarios) ? payment_scenarios[i].name : NULL;
}

void cep_gen_opts_init(cep_gen_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->domain = CEP_GEN_GAMING;
    o->events = 10000;
    o->seed = 1;
    o->start_ms = 1793577600000LL; /* 2026-11-02T00:00:00Z */
    o->rate = 50;
    o->fraud_rate = 0.01;
}

/* ---- the simulation loop ---------------------------------------------------------- */

/* Sessions start more often in the evening than at night (UTC hours). */
static double diurnal(int64_t t)
{
    double hour = (double)(t % 86400000LL) / 3600000.0;
    return 0.35 + 0.65 * (0.5 - 0.5 * cos(2.0 * M_PI * (hour - 5.0) / 24.0));
}

static cep_status_t enable_scenarios(gen_t *g, const char *list, cep_error_t *err)
{
    if (!list || !*list) {
        for (unsigned i = 0; i < g->nscen; i++) g->enabled[i] = true;
        g->nenabled = g->nscen;
        return CEP_OK;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        unsigned i = 0;
        while (i < g->nscen && !(strlen(g->scen[i].name) == n && !strncmp(g->scen[i].name, p, n))) i++;
        if (i == g->nscen)
            return cep_error_set(err, CEP_ERR_ARG, NULL, "unknown scenario '%.*s' for this domain", (int)n, p);
        if (!g->enabled[i]) g->nenabled++;
        g->enabled[i] = true;
        p += n + (e ? 1 : 0);
    }
    return CEP_OK;
}

cep_status_t cep_gen_run(const cep_gen_opts_t *o, const cep_gen_sink_t *sink, cep_gen_stats_t *st,
                         cep_error_t *err)
{
    cep_gen_stats_t local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    if (o->rate <= 0 || o->fraud_rate < 0 || o->fraud_rate > 1 || o->disorder_ms < 0)
        return cep_error_set(err, CEP_ERR_ARG, NULL, "--rate must be > 0, --fraud-rate within [0, 1]");
    gen_t g = {.o = o, .sink = sink, .st = st, .r = {o->seed * 0x2545f4914f6cdd1dULL + 0x1234567ULL}};
    g.scen = o->domain == CEP_GEN_GAMING ? gaming_scenarios : payment_scenarios;
    g.nscen = o->domain == CEP_GEN_GAMING ? CEP_ARRAY_LEN(gaming_scenarios) : CEP_ARRAY_LEN(payment_scenarios);
    cep_status_t rc = enable_scenarios(&g, o->scenarios, err);
    if (rc) return rc;
    cep_buf_init(&g.ev);
    cep_buf_init(&g.lab);
    uint32_t naccts = o->accounts ? o->accounts : (uint32_t)CEP_MAX(200, CEP_MIN(o->events / 40, 1000000));
    world_build(&g, naccts);
    /* mean events per session is ~9: sessions start at rate/9 per second */
    double session_gap_s = 9.0 / o->rate;
    actor_t *arrivals = actor_new(&g, ACT_ARRIVAL, o->start_ms);
    if (arrivals) heap_push(&g, arrivals);
    while (st->events < o->events && g.nheap && !g.oom) {
        actor_t *a = heap_pop(&g);
        if (a->kind == ACT_ARRIVAL) {
            bool scen = g.nenabled && rnd_chance(&g.r, o->fraud_rate);
            actor_t *s = actor_new(&g, scen ? ACT_SCENARIO : ACT_SESSION, a->t);
            if (s && scen) {
                unsigned pick = (unsigned)rnd_range(&g.r, 0, g.nenabled - 1), i = 0;
                for (;; i++)
                    if (g.enabled[i] && pick-- == 0) break;
                s->scenario = (uint8_t)i;
                s->instance = g.next_instance++;
                st->instances++;
                st->per_scenario[i]++;
                g.scen[i].start(&g, s);
            } else if (s) {
                session_start(&g, s);
            }
            if (s) heap_push(&g, s);
            a->t += 1 + (int64_t)(rnd_exp(&g.r, session_gap_s / diurnal(a->t)) * 1000.0);
            heap_push(&g, a);
            continue;
        }
        bool more = a->kind == ACT_SESSION ? session_step(&g, a) : g.scen[a->scenario].step(&g, a);
        if (more) heap_push(&g, a);
        else free(a);
    }
    while (g.nheap) free(heap_pop(&g));
    free(g.heap);
    free(g.accts);
    cep_buf_free(&g.ev);
    cep_buf_free(&g.lab);
    if (g.oom) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory generating events");
    return CEP_OK;
}

/* ---- `cep gen` ---------------------------------------------------------------------- */

typedef struct file_sink {
    FILE *events, *labels;
    cep_kafka_producer_t *kafka; /* --kafka: events go to the topic, keyed by account_id */
    const char *topic;
    uint64_t kafka_errors;
} file_sink_t;

static void file_event(void *ctx, const char *key, size_t klen, const char *json, size_t n)
{
    file_sink_t *f = ctx;
    if (f->kafka) {
        /* the event time of the record is the event's own */
        const char *et = memmem(json, n, "\"event_time\":", 13);
        int64_t ts = et ? strtoll(et + 13, NULL, 10) : 0;
        if (cep_kafka_produce(f->kafka, f->topic, key, klen, json, n, ts, NULL, NULL, 0, NULL)) f->kafka_errors++;
        return;
    }
    fwrite(json, 1, n, f->events);
    fputc('\n', f->events);
}
static void file_label(void *ctx, const char *json, size_t n)
{
    file_sink_t *f = ctx;
    fwrite(json, 1, n, f->labels);
    fputc('\n', f->labels);
}

static const char gen_usage[] =
    "usage: cep gen --domain gaming|payments --events N [--seed S] [--output FILE|-] [--labels FILE]\n"
    "               [--start-ms T] [--rate EVENTS_PER_S] [--accounts N] [--fraud-rate P]\n"
    "               [--disorder-ms D] [--scenarios a,b,...] [--list-scenarios]\n"
    "               [--kafka BOOTSTRAP [--topic T]]   (events to Kafka, keyed by account_id)\n";

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-') return false;
    *out = v;
    return true;
}

int cep_gen_main(int argc, char **argv)
{
    cep_gen_opts_t o;
    cep_gen_opts_init(&o);
    const char *output = "-", *labels = NULL, *kafka = NULL, *topic = NULL;
    bool list = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t u = 0;
        bool ok = true;
        if (!strcmp(a, "--list-scenarios")) {
            list = true;
            continue;
        }
        if (!v) ok = false;
        else if (!strcmp(a, "--domain")) {
            if (!strcmp(v, "gaming")) o.domain = CEP_GEN_GAMING;
            else if (!strcmp(v, "payments")) o.domain = CEP_GEN_PAYMENTS;
            else ok = false;
        } else if (!strcmp(a, "--events")) ok = parse_u64(v, &o.events);
        else if (!strcmp(a, "--seed")) ok = parse_u64(v, &o.seed);
        else if (!strcmp(a, "--start-ms")) ok = parse_u64(v, &u), o.start_ms = (int64_t)u;
        else if (!strcmp(a, "--accounts")) ok = parse_u64(v, &u) && u > 0 && u <= 50000000, o.accounts = (uint32_t)u;
        else if (!strcmp(a, "--disorder-ms")) ok = parse_u64(v, &u), o.disorder_ms = (int64_t)u;
        else if (!strcmp(a, "--rate")) o.rate = strtod(v, NULL), ok = o.rate > 0;
        else if (!strcmp(a, "--fraud-rate")) o.fraud_rate = strtod(v, NULL), ok = o.fraud_rate >= 0 && o.fraud_rate <= 1;
        else if (!strcmp(a, "--scenarios")) o.scenarios = v;
        else if (!strcmp(a, "--output")) output = v;
        else if (!strcmp(a, "--labels")) labels = v;
        else if (!strcmp(a, "--kafka")) kafka = v;
        else if (!strcmp(a, "--topic")) topic = v;
        else ok = false;
        if (!ok) {
            fprintf(stderr, "cep gen: bad option %s%s%s\n%s", a, v ? " " : "", v ? v : "", gen_usage);
            return 2;
        }
        i++;
    }
    if (list) {
        for (unsigned i = 0; cep_gen_scenario_name(o.domain, i); i++) puts(cep_gen_scenario_name(o.domain, i));
        return 0;
    }
    file_sink_t fs = {.events = strcmp(output, "-") ? fopen(output, "w") : stdout};
    if (kafka) {
        cep_error_t kerr;
        cep_error_clear(&kerr);
        fs.topic = topic ? topic : o.domain == CEP_GEN_GAMING ? "gaming.events" : "payments.events";
        if (cep_kafka_producer_new(kafka, NULL, 0, &fs.kafka, &kerr)) {
            fprintf(stderr, "cep gen: %s\n", kerr.msg);
            return 1;
        }
    }
    if (!fs.events) {
        fprintf(stderr, "cep gen: cannot write %s\n", output);
        return 1;
    }
    if (labels && !(fs.labels = fopen(labels, "w"))) {
        fprintf(stderr, "cep gen: cannot write %s\n", labels);
        return 1;
    }
    static char obuf[1 << 20];
    setvbuf(fs.events, obuf, _IOFBF, sizeof obuf);
    cep_gen_sink_t sink = {.event = file_event, .label = labels ? file_label : NULL, .ctx = &fs};
    cep_gen_stats_t st;
    cep_error_t err;
    cep_error_clear(&err);
    cep_status_t rc = cep_gen_run(&o, &sink, &st, &err);
    if (fs.kafka) {
        fs.kafka_errors += cep_kafka_producer_flush(fs.kafka, 60000);
        cep_kafka_producer_free(fs.kafka);
        if (fs.kafka_errors) {
            fprintf(stderr, "cep gen: %llu events were not acknowledged by %s\n", (unsigned long long)fs.kafka_errors,
                    kafka);
            return 1;
        }
    }
    bool wfail = ferror(fs.events) || (fs.events != stdout && fclose(fs.events)) || (fs.events == stdout && fflush(stdout));
    if (fs.labels) wfail |= ferror(fs.labels) || fclose(fs.labels);
    if (rc) {
        char buf[600];
        fprintf(stderr, "cep gen: %s\n", cep_error_format(&err, buf, sizeof buf));
        return rc == CEP_ERR_ARG ? 2 : 1;
    }
    if (wfail) {
        fprintf(stderr, "cep gen: write failed\n");
        return 1;
    }
    fprintf(stderr, "cep gen: %llu events, %llu labeled in %llu scenario instances", (unsigned long long)st.events,
            (unsigned long long)st.labeled, (unsigned long long)st.instances);
    for (unsigned i = 0; cep_gen_scenario_name(o.domain, i); i++)
        if (st.per_scenario[i])
            fprintf(stderr, "%s %s=%llu", i ? "," : ":", cep_gen_scenario_name(o.domain, i),
                    (unsigned long long)st.per_scenario[i]);
    fputc('\n', stderr);
    return 0;
}
