/*
 * kafka.c — the Kafka boundary (librdkafka): the embedded broker, the
 * idempotent producer, and the consumer loop of `cep run --kafka`.
 *
 * Delivery: a record's offset is committed only after the alerts it caused
 * were acknowledged by the broker (the producer is flushed before each
 * commit), so a crash replays records and never loses an alert; alert ids
 * are deterministic, so a replayed alert carries the id it had
 * (at-least-once with stable ids).
 */
#include "engine/kafka.h"
#include "engine/bootstrap.h"
#include "engine/reload.h"
#include "engine/checkpoint.h"
#include "engine/output.h"
#include "engine/runtime.h"
#include "patterns/plan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- configuration ---------------------------------------------------------- */

static cep_status_t conf_set(rd_kafka_conf_t *c, const char *k, const char *v, cep_error_t *err)
{
    char errstr[512];
    if (rd_kafka_conf_set(c, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return cep_error_set(err, CEP_ERR_ARG, NULL, "kafka setting %s=%s: %s", k, v, errstr);
    return CEP_OK;
}

/* "key=value" pairs from -X or a properties file */
static cep_status_t conf_props(rd_kafka_conf_t *c, const char *const *props, size_t n, cep_error_t *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(props[i], '=');
        if (!eq) return cep_error_set(err, CEP_ERR_ARG, NULL, "kafka setting '%s' is not key=value", props[i]);
        /* spaces around '=' are allowed (properties files) */
        const char *k = props[i], *ke = eq, *v = eq + 1;
        while (*k == ' ' || *k == '\t') k++;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t')) ke--;
        while (*v == ' ' || *v == '\t') v++;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(ke - k), k);
        cep_status_t rc = conf_set(c, key, v, err);
        if (rc) return rc;
    }
    return CEP_OK;
}

/* ---- the embedded broker ------------------------------------------------------ */

struct cep_kafka_broker {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char bootstrap[256];
    char cluster[256]; /* the mock cluster's own address */
    int partitions;
    int listen_fd;     /* --port: the relay's listening socket, or -1 */
    pthread_t relay;
    volatile int stopping;
};

/* ---- the fixed-port relay: accept on the chosen port, splice to the cluster */

typedef struct relay_conn {
    int a, b;
} relay_conn_t;

static void *relay_pipe(void *arg)
{
    relay_conn_t *c = arg;
    struct pollfd p[2] = {{c->a, POLLIN, 0}, {c->b, POLLIN, 0}};
    char buf[65536];
    for (;;) {
        if (poll(p, 2, 1000) < 0 && errno != EINTR) break;
        bool done = false;
        for (int i = 0; i < 2 && !done; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(p[i].fd, buf, sizeof buf);
            if (n <= 0) {
                done = true;
                break;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(p[1 - i].fd, buf + off, (size_t)(n - off));
                if (w <= 0) {
                    done = true;
                    break;
                }
                off += w;
            }
        }
        if (done) break;
    }
    close(c->a);
    close(c->b);
    free(c);
    return NULL;
}

static void *relay_accept(void *arg)
{
    cep_kafka_broker_t *b = arg;
    const char *colon = strrchr(b->cluster, ':');
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon ? colon + 1 : "0"))};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    while (!b->stopping) {
        struct pollfd p = {b->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 200) <= 0) continue;
        int a = accept(b->listen_fd, NULL, NULL);
        if (a < 0) continue;
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&to, sizeof to) != 0) {
            close(a);
            if (c >= 0) close(c);
            continue;
        }
        relay_conn_t *rc = malloc(sizeof *rc);
        pthread_t t;
        if (!rc) {
            close(a);
            close(c);
            continue;
        }
        *rc = (relay_conn_t){a, c};
        if (pthread_create(&t, NULL, relay_pipe, rc) != 0) {
            close(a);
            close(c);
            free(rc);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

cep_status_t cep_kafka_broker_listen(cep_kafka_broker_t *b, int port, cep_error_t *err)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return cep_error_set(err, CEP_ERR_IO, NULL, "embedded broker: socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr); /* loopback only */
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        int e = errno;
        close(fd);
        return cep_error_set(err, CEP_ERR_IO, NULL, "embedded broker: port %d: %s", port, strerror(e));
    }
    b->listen_fd = fd;
    if (pthread_create(&b->relay, NULL, relay_accept, b) != 0) {
        close(fd);
        b->listen_fd = -1;
        return cep_error_set(err, CEP_ERR_IO, NULL, "embedded broker: cannot start the relay");
    }
    snprintf(b->bootstrap, sizeof b->bootstrap, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    return CEP_OK;
}

cep_status_t cep_kafka_broker_new(int partitions, cep_kafka_broker_t **out, cep_error_t *err)
{
    cep_kafka_broker_t *b = calloc(1, sizeof *b);
    if (!b) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    char errstr[512];
    /* the mock cluster lives inside a client instance; it is never used to send */
    conf_set(c, "log_level", "3", NULL);
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof errstr);
    if (!b->rk) {
        free(b);
        return cep_error_set(err, CEP_ERR_IO, NULL, "embedded broker: %s", errstr);
    }
    b->mc = rd_kafka_mock_cluster_new(b->rk, 1);
    if (!b->mc) {
        rd_kafka_destroy(b->rk);
        free(b);
        return cep_error_set(err, CEP_ERR_IO, NULL, "embedded broker: cannot start the mock cluster");
    }
    snprintf(b->bootstrap, sizeof b->bootstrap, "%s", rd_kafka_mock_cluster_bootstraps(b->mc));
    snprintf(b->cluster, sizeof b->cluster, "%s", b->bootstrap);
    b->listen_fd = -1;
    b->partitions = partitions > 0 ? partitions : 1;
    static const char *const topics[] = {"gaming.events", "payments.events", "cep.alerts", "cep.alerts.shadow",
                                         "cep.dlq"};
    for (size_t i = 0; i < CEP_ARRAY_LEN(topics); i++) {
        cep_status_t rc = cep_kafka_broker_topic(b, topics[i], b->partitions, err);
        if (rc) {
            cep_kafka_broker_free(b);
            return rc;
        }
    }
    *out = b;
    return CEP_OK;
}

const char *cep_kafka_broker_bootstrap(const cep_kafka_broker_t *b)
{
    return b->bootstrap;
}

cep_status_t cep_kafka_broker_topic(cep_kafka_broker_t *b, const char *topic, int partitions, cep_error_t *err)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mc, topic, partitions > 0 ? partitions : b->partitions, 1);
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return cep_error_set(err, CEP_ERR_IO, NULL, "embedded broker: topic %s: %s", topic, rd_kafka_err2str(e));
    return CEP_OK;
}

void cep_kafka_broker_free(cep_kafka_broker_t *b)
{
    if (!b) return;
    if (b->listen_fd >= 0) {
        b->stopping = 1;
        pthread_join(b->relay, NULL);
        close(b->listen_fd);
    }
    if (b->mc) rd_kafka_mock_cluster_destroy(b->mc);
    if (b->rk) rd_kafka_destroy(b->rk);
    free(b);
}

/* ---- the producer -------------------------------------------------------------- */

struct cep_kafka_producer {
    rd_kafka_t *rk;
    uint64_t failed; /* records the broker refused after retries */
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    cep_kafka_producer_t *p = opaque;
    if (m->err) {
        p->failed++;
        fprintf(stderr, "cep: delivery to %s failed: %s\n", rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
    }
}

cep_status_t cep_kafka_producer_new(const char *bootstrap, const char *const *props, size_t nprops,
                                    cep_kafka_producer_t **out, cep_error_t *err)
{
    cep_kafka_producer_t *p = calloc(1, sizeof *p);
    if (!p) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cep_status_t rc = conf_set(c, "bootstrap.servers", bootstrap, err);
    if (!rc) rc = conf_set(c, "enable.idempotence", "true", err);
    if (!rc) rc = conf_set(c, "linger.ms", "5", err);
    if (!rc) rc = conf_props(c, props, nprops, err);
    if (rc) {
        rd_kafka_conf_destroy(c);
        free(p);
        return rc;
    }
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
    rd_kafka_conf_set_opaque(c, p);
    char errstr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof errstr);
    if (!p->rk) {
        free(p);
        return cep_error_set(err, CEP_ERR_IO, NULL, "kafka producer: %s", errstr);
    }
    *out = p;
    return CEP_OK;
}

cep_status_t cep_kafka_produce(cep_kafka_producer_t *p, const char *topic, const void *key, size_t klen,
                               const void *value, size_t vlen, int64_t timestamp, const char *const *hnames,
                               const char *const *hvals, size_t nheaders, cep_error_t *err)
{
    for (;;) {
        rd_kafka_headers_t *h = NULL;
        if (nheaders) {
            h = rd_kafka_headers_new(nheaders);
            for (size_t i = 0; i < nheaders; i++) rd_kafka_header_add(h, hnames[i], -1, hvals[i], -1);
        }
        rd_kafka_resp_err_t e =
            rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                              RD_KAFKA_V_VALUE((void *)value, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_TIMESTAMP(timestamp > 0 ? timestamp : 0),
                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (!e) {
            rd_kafka_poll(p->rk, 0);
            return CEP_OK;
        }
        if (h) rd_kafka_headers_destroy(h); /* not taken over on failure */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return cep_error_set(err, CEP_ERR_IO, NULL, "produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(p->rk, 100); /* backpressure: wait for acknowledgements, never drop */
    }
}

uint64_t cep_kafka_producer_flush(cep_kafka_producer_t *p, int timeout_ms)
{
    rd_kafka_flush(p->rk, timeout_ms);
    return p->failed + (uint64_t)rd_kafka_outq_len(p->rk);
}

void cep_kafka_producer_free(cep_kafka_producer_t *p)
{
    if (!p) return;
    rd_kafka_flush(p->rk, 10000);
    rd_kafka_destroy(p->rk);
    free(p);
}

/* ---- the consumer loop ------------------------------------------------------------ */

typedef struct sink {
    cep_kafka_producer_t *prod;
    cep_buf_t key, value, id, ts;
    uint64_t alerts;
    uint64_t *per_rule; /* by query id */
    cep_error_t err;
    /* durable state */
    cep_runtime_t *rt;
    cep_ckpt_t *ckpt;
    volatile int *stop;
    bool paused, failing;
    atomic_uint generation; /* moved on by every rebalance (engine/bootstrap.h) */
} sink_t;

static void on_alert(void *ctx, const cep_output_t *o)
{
    sink_t *s = ctx;
    const cep_query_t *q = o->query;
    cep_buf_reset(&s->key);
    cep_buf_reset(&s->value);
    cep_buf_reset(&s->id);
    cep_buf_reset(&s->ts);
    cep_output_key_json(o, &s->key);
    if (!o->tombstone) cep_output_value_json(o, &s->value);
    cep_output_alert_id(o, &s->id);
    char version[16];
    snprintf(version, sizeof version, "%08llx", (unsigned long long)(q->fingerprint & 0xffffffffULL));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    cep_buf_put_i64(&s->ts, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000);
    const char *names[] = {"rule", "rule_version", "severity", "alert_id", "detected_at", "mode"};
    const char *vals[] = {q->name, version, q->meta.severity ? q->meta.severity : "",
                          cep_buf_cstr(&s->id), cep_buf_cstr(&s->ts), "shadow"};
    /* a rule without KAFKA_TOPIC alerts on cep.alerts (not on a topic named
     * after it); a shadow rule always on cep.alerts.shadow, marked */
    const char *topic = q->meta.shadow                           ? CEP_SHADOW_TOPIC
                        : o->sink->topic_given && o->sink->topic ? o->sink->topic
                                                                 : "cep.alerts";
    size_t nheaders = CEP_ARRAY_LEN(names) - !q->meta.shadow;
    cep_kafka_produce(s->prod, topic, s->key.data, s->key.len, o->tombstone ? NULL : s->value.data,
                      o->tombstone ? 0 : s->value.len, o->timestamp, names, vals, nheaders, &s->err);
    s->alerts++;
    if (s->per_rule) s->per_rule[q->id]++;
}

/* Save the state of these partitions at the consumer's positions, then
 * commit exactly those offsets. Alerts are flushed first: a checkpoint
 * never covers a record whose alerts could still be lost. */
static cep_status_t save_and_commit(rd_kafka_t *rk, sink_t *s, rd_kafka_topic_partition_list_t *parts,
                                    cep_error_t *err)
{
    cep_kafka_producer_flush(s->prod, 30000);
    rd_kafka_topic_partition_list_t *pos = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_position(rk, pos);
    cep_status_t st = cep_ckpt_save(s->ckpt, pos, err);
    if (!st) {
        /* the committed offsets never run ahead of the saved state */
        bool any = false;
        for (int i = 0; i < pos->cnt; i++) any |= pos->elems[i].offset >= 0;
        if (any) rd_kafka_commit(rk, pos, 0);
    }
    rd_kafka_topic_partition_list_destroy(pos);
    return st;
}

/* Partitions arriving: load their state and start each where its state
 * ends. Partitions leaving: save their state (or, without durable state,
 * commit what was processed) so the next owner starts exactly after it. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sink_t *s = opaque;
    atomic_fetch_add(&s->generation, 1);
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fprintf(stderr, "cep: %d partition(s) assigned\n", parts->cnt);
        if (s->ckpt) {
            /* without its state a partition cannot be processed correctly: wait for Redis */
            int backoff = 100;
            for (;;) {
                cep_error_t err;
                cep_error_clear(&err);
                if (!cep_ckpt_restore(s->ckpt, parts, &err)) break;
                fprintf(stderr, "cep: state: cannot load the assigned partitions from %s: %s; retrying in %d ms\n",
                        cep_ckpt_where(s->ckpt), err.msg, backoff);
                if (s->stop && *s->stop) break;
                struct timespec ts = {backoff / 1000, (long)(backoff % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                backoff = backoff < 5000 ? backoff * 2 : 5000;
            }
            const cep_ckpt_info_t *ci = cep_ckpt_info(s->ckpt);
            fprintf(stderr, "cep: state: %llu task(s) and %llu entries restored so far (%llu records of changed or "
                            "removed rules skipped)\n",
                    (unsigned long long)ci->restored_tasks, (unsigned long long)ci->restored_entries,
                    (unsigned long long)ci->unknown_entries);
        }
        rd_kafka_assign(rk, parts);
        s->paused = false;
        return;
    }
    if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        if (s->ckpt && rd_kafka_assignment_lost(rk)) {
            /* the group already gave them away (this member was too slow or
             * cut off): another owner may have loaded them, so writing now
             * would overwrite newer state with older */
            fprintf(stderr, "cep: %d partition(s) lost to the group; state not saved, their next owner resumes "
                            "from the last checkpoint\n",
                    parts->cnt);
            for (int i = 0; i < parts->cnt; i++) cep_runtime_task_drop(s->rt, parts->elems[i].partition);
        } else if (s->ckpt) {
            cep_error_t err;
            cep_error_clear(&err);
            if (save_and_commit(rk, s, parts, &err))
                fprintf(stderr, "cep: state: revoked partitions not saved (%s); their next owner resumes from the "
                                "last checkpoint\n",
                        err.msg);
            else
                fprintf(stderr, "cep: %d partition(s) revoked; state saved and offsets committed\n", parts->cnt);
            for (int i = 0; i < parts->cnt; i++) cep_runtime_task_drop(s->rt, parts->elems[i].partition);
        } else {
            cep_kafka_producer_flush(s->prod, 30000);
            rd_kafka_commit(rk, NULL, 0);
            fprintf(stderr, "cep: %d partition(s) revoked; processed offsets committed\n", parts->cnt);
        }
    }
    rd_kafka_assign(rk, NULL);
}

/* A periodic checkpoint of every assigned partition. Failures are logged
 * once per outage, and recovery once. Returns non-zero on failure. */
static int checkpoint(rd_kafka_t *rk, sink_t *s, cep_kafka_run_stats_t *st)
{
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(rk, &a) || !a) return 1;
    cep_error_t err;
    cep_error_clear(&err);
    cep_status_t rc = a->cnt ? save_and_commit(rk, s, a, &err) : CEP_OK;
    rd_kafka_topic_partition_list_destroy(a);
    const cep_ckpt_info_t *ci = cep_ckpt_info(s->ckpt);
    if (rc) {
        if (!s->failing) fprintf(stderr, "cep: state: checkpoint to %s failed: %s\n", cep_ckpt_where(s->ckpt), err.msg);
        s->failing = true;
    } else if (s->failing) {
        fprintf(stderr, "cep: state: %s is back; checkpoint written after %llu failed attempt(s)\n",
                cep_ckpt_where(s->ckpt), (unsigned long long)ci->failures);
        s->failing = false;
    }
    (void)st;
    return rc != CEP_OK;
}

/* A source record re-keyed for an internal topic (engine/runtime.h): its
 * bytes under the new key, with where it came from for de-duplication. */
static void on_rekey(void *ctx, const char *topic, const void *key, size_t klen, const cep_record_t *rec,
                     int64_t event_time)
{
    sink_t *s = ctx;
    char src[48];
    snprintf(src, sizeof src, "%d:%lld", (int)rec->partition, (long long)rec->offset);
    const char *names[] = {"cep.src"};
    const char *vals[] = {src};
    cep_kafka_produce(s->prod, topic, key, klen, rec->value, rec->vlen, event_time, names, vals, 1, &s->err);
}

/* Partitions of a topic (0 when it does not exist). All topics are listed:
 * asking for one by name would have the broker create it. */
static int topic_partitions(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md = NULL;
    int n = 0;
    if (!rd_kafka_metadata(rk, 1, NULL, &md, 10000) && md) {
        for (int i = 0; i < md->topic_cnt; i++)
            if (!strcmp(md->topics[i].topic, topic) && !md->topics[i].err) n = md->topics[i].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    return n;
}

/* Create the internal topics with as many partitions as the topics they
 * re-key (an existing one is kept as it is): one CreateTopics request for
 * all; a broker that does not answer it (librdkafka's mock cluster) gets
 * them by auto-creation, asking for each by name. */
static cep_status_t create_rekey_topics(rd_kafka_t *rk, const cep_runtime_t *rt, volatile int *stop,
                                       cep_error_t *err)
{
    const char *src;
    rd_kafka_NewTopic_t *nt[64];
    const char *names[64];
    size_t n = 0;
    for (uint32_t i = 0; cep_runtime_rekey_topic(rt, i, &src) && n < 64; i++) {
        const char *name = cep_runtime_rekey_topic(rt, i, &src);
        if (topic_partitions(rk, name) > 0) continue;
        /* a re-key topic has as many partitions as its source: wait for the source to exist */
        int parts = topic_partitions(rk, src);
        for (bool told = false; parts <= 0; parts = topic_partitions(rk, src)) {
            if (stop && *stop) break;
            if (!told) fprintf(stderr, "cep: waiting for topic %s (its re-key topics get its partition count)\n", src);
            told = true;
            struct timespec ts = {0, 300000000L};
            nanosleep(&ts, NULL);
        }
        char errstr[256];
        names[n] = name;
        if (!(nt[n] = rd_kafka_NewTopic_new(name, parts > 0 ? parts : 1, -1, errstr, sizeof errstr))) {
            for (size_t k = 0; k < n; k++) rd_kafka_NewTopic_destroy(nt[k]);
            return cep_error_set(err, CEP_ERR_IO, NULL, "topic %s: %s", name, errstr);
        }
        n++;
    }
    if (!n) return CEP_OK;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, nt, n, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 3000);
    if (ev) rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    cep_status_t st = CEP_OK;
    for (size_t k = 0; k < n; k++) {
        const char *name = names[k];
        int parts = topic_partitions(rk, name);
        if (parts <= 0) {
            rd_kafka_topic_t *t = rd_kafka_topic_new(rk, name, NULL);
            const struct rd_kafka_metadata *md = NULL;
            if (t && !rd_kafka_metadata(rk, 0, t, &md, 5000) && md) rd_kafka_metadata_destroy(md);
            if (t) rd_kafka_topic_destroy(t);
            parts = topic_partitions(rk, name);
        }
        if (parts <= 0 && !st)
            st = cep_error_set(err, CEP_ERR_IO, NULL,
                               "cannot create the internal topic %s (CreateTopics refused or unanswered, and no "
                               "auto-creation)",
                               name);
        else if (parts > 0)
            fprintf(stderr, "cep: internal topic %s (%d partitions)\n", name, parts);
    }
    for (size_t k = 0; k < n; k++) rd_kafka_NewTopic_destroy(nt[k]);
    return st;
}

static const char *source_topic_of(const cep_ruleset_t *rs, const char *topic)
{
    for (uint32_t i = 0; i < rs->nstreams; i++)
        if (rs->streams[i]->is_source && rs->streams[i]->topic && !strcmp(rs->streams[i]->topic, topic))
            return rs->streams[i]->topic;
    return NULL;
}

bool cep_kafka_record(const struct rd_kafka_message_s *m, const cep_ruleset_t *rs, cep_record_t *r)
{
    const char *topic = source_topic_of(rs, rd_kafka_topic_name(m->rkt));
    rd_kafka_timestamp_type_t tstype;
    *r = (cep_record_t){.topic = topic ? topic : rd_kafka_topic_name(m->rkt),
                        .key = m->key,
                        .klen = m->key_len,
                        .value = m->payload,
                        .vlen = m->len,
                        .timestamp = rd_kafka_message_timestamp(m, &tstype),
                        .partition = m->partition,
                        .offset = m->offset,
                        .source = rd_kafka_topic_name(m->rkt),
                        .src_partition = -1};
    rd_kafka_headers_t *hdrs = NULL;
    const void *hv = NULL;
    size_t hn = 0;
    /* a record of an internal re-key topic: where it was made from */
    if (!topic && !rd_kafka_message_headers(m, &hdrs) &&
        !rd_kafka_header_get_last(hdrs, "cep.src", &hv, &hn) && hn < 47) {
        char src[48];
        memcpy(src, hv, hn);
        src[hn] = 0;
        int sp;
        long long so;
        if (sscanf(src, "%d:%lld", &sp, &so) == 2) r->src_partition = sp, r->src_offset = so;
    }
    return topic != NULL;
}

/* The timestamp of the first record at or after offset `at` (below `end`),
 * read with the simple consumer API; -1 if none came. */
static int64_t time_at(rd_kafka_topic_t *rkt, int32_t partition, int64_t at, int64_t end, int64_t *found)
{
    int64_t ts = -1;
    if (rd_kafka_consume_start(rkt, partition, at)) return -1;
    for (int tries = 0; tries < 50; tries++) {
        rd_kafka_message_t *m = rd_kafka_consume(rkt, partition, 200);
        if (!m) continue;
        bool done = true;
        if (!m->err && m->offset < end) ts = rd_kafka_message_timestamp(m, NULL), *found = m->offset;
        else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) done = false;
        rd_kafka_message_destroy(m);
        if (done) break;
    }
    rd_kafka_consume_stop(rkt, partition);
    return ts;
}

int64_t cep_kafka_offset_for_time(struct rd_kafka_s *rk, const char *topic, int32_t partition, int64_t ts,
                                  int64_t end)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = ts;
    int64_t at = -1;
    if (!rd_kafka_offsets_for_times(rk, l, 10000) && !l->elems[0].err) at = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    int64_t lo, hi;
    if (rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 10000)) return at >= 0 ? at : -1;
    if (end < 0 || end > hi) end = hi;
    if (at >= 0) return CEP_MIN(at, end);
    /* No answer by time (brokers without a time index, the embedded one):
     * a binary search over the records, whose times rise with their
     * offsets as producers stamp them. */
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) return -1;
    int64_t a = lo, b = end; /* the answer is in [a, b]; b = end: no record that late */
    while (a < b) {
        int64_t mid = a + (b - a) / 2, found = -1;
        int64_t t = time_at(rkt, partition, mid, end, &found);
        if (t < 0 || found < 0) { /* nothing readable from mid on */
            b = mid;
            continue;
        }
        if (t >= ts) b = mid; /* from mid on, the first record read is found: the same place */
        else a = found + 1;
    }
    rd_kafka_topic_destroy(rkt);
    return a;
}

/* ---- reading a time range -------------------------------------------------------- */

typedef struct range_part {
    const char *topic;
    int32_t partition;
    int64_t start, end;
    bool done;
} range_part_t;

static rd_kafka_t *range_consumer(const cep_kafka_range_t *r, cep_error_t *err)
{
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    cep_status_t rc = conf_set(c, "bootstrap.servers", r->bootstrap, err);
    if (!rc) rc = conf_set(c, "group.id", "cep-backtest", err); /* never joined: partitions are assigned */
    if (!rc) rc = conf_set(c, "enable.auto.commit", "false", err);
    if (!rc) rc = conf_set(c, "enable.auto.offset.store", "false", err);
    if (!rc) rc = conf_set(c, "enable.partition.eof", "true", err);
    if (!rc) rc = conf_props(c, r->props, r->nprops, err);
    char errstr[512];
    rd_kafka_t *rk = NULL;
    if (!rc && !(rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr)))
        cep_error_set(err, CEP_ERR_IO, NULL, "kafka consumer: %s", errstr);
    if (!rk) rd_kafka_conf_destroy(c);
    return rk;
}

/* The partitions of the range and where each starts and ends. */
static cep_status_t range_plan(const cep_kafka_range_t *r, range_part_t **out, int *nout, cep_error_t *err)
{
    rd_kafka_t *rk = range_consumer(r, err);
    if (!rk) return err->code;
    range_part_t *parts = NULL;
    int n = 0;
    cep_status_t rc = CEP_OK;
    for (size_t t = 0; !rc && t < r->ntopics; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, r->topics[t], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rkt ? rd_kafka_metadata(rk, 0, rkt, &md, 10000) : RD_KAFKA_RESP_ERR__INVALID_ARG;
        if (rkt) rd_kafka_topic_destroy(rkt);
        if (!e && (!md || md->topic_cnt != 1)) e = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (!e && md->topics[0].err) e = md->topics[0].err;
        if (!e && !md->topics[0].partition_cnt) e = RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (e) {
            rc = cep_error_set(err, CEP_ERR_IO, NULL, "topic %s: %s", r->topics[t], rd_kafka_err2str(e));
        } else {
            int np = md->topics[0].partition_cnt;
            range_part_t *g = realloc(parts, (size_t)(n + np) * sizeof *g);
            if (!g) rc = cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
            else parts = g;
            for (int i = 0; !rc && i < np; i++) {
                int32_t p = md->topics[0].partitions[i].id;
                int64_t lo, hi;
                if (rd_kafka_query_watermark_offsets(rk, r->topics[t], p, &lo, &hi, 10000)) {
                    rc = cep_error_set(err, CEP_ERR_IO, NULL, "%s [%d]: cannot read its offsets", r->topics[t], (int)p);
                    break;
                }
                int64_t start = r->from == INT64_MIN ? lo : cep_kafka_offset_for_time(rk, r->topics[t], p, r->from, hi);
                int64_t end = r->to == INT64_MAX ? hi : cep_kafka_offset_for_time(rk, r->topics[t], p, r->to, hi);
                if (start < 0 || end < 0) {
                    rc = cep_error_set(err, CEP_ERR_IO, NULL, "%s [%d]: cannot find the range's offsets", r->topics[t],
                                       (int)p);
                    break;
                }
                parts[n++] = (range_part_t){.topic = r->topics[t], .partition = p, .start = start, .end = end,
                                            .done = start >= end};
            }
        }
        if (md) rd_kafka_metadata_destroy(md);
    }
    rd_kafka_destroy(rk);
    if (rc) {
        free(parts);
        return rc;
    }
    *out = parts;
    *nout = n;
    return CEP_OK;
}

cep_status_t cep_kafka_read_range(const cep_kafka_range_t *r, cep_kafka_range_fn fn, void *ctx, uint64_t *total,
                                  cep_error_t *err)
{
    range_part_t *parts = NULL;
    int n = 0;
    /* offsets are found on a handle of their own: the search reads with
     * the simple consumer API, which does not mix with an assignment */
    cep_status_t rc = range_plan(r, &parts, &n, err);
    if (rc) return rc;
    uint64_t records = 0;
    int left = 0;
    rd_kafka_topic_partition_list_t *assign = rd_kafka_topic_partition_list_new(n ? n : 1);
    for (int i = 0; i < n; i++) {
        if (parts[i].done) continue;
        records += (uint64_t)(parts[i].end - parts[i].start);
        rd_kafka_topic_partition_list_add(assign, parts[i].topic, parts[i].partition)->offset = parts[i].start;
        left++;
    }
    if (total) *total = records;
    rd_kafka_t *rk = left ? range_consumer(r, err) : NULL;
    if (left && !rk) rc = err->code;
    if (rk) {
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign);
        if (e) rc = cep_error_set(err, CEP_ERR_IO, NULL, "assign: %s", rd_kafka_err2str(e));
    }
    uint64_t quiet_since = cep_now_ns();
    while (!rc && left > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m) {
            /* every record of the range existed when it began: a long silence is a broker gone */
            if (cep_now_ns() - quiet_since > 60000000000ULL)
                rc = cep_error_set(err, CEP_ERR_IO, NULL, "no records for 60 s with %d partition(s) unfinished", left);
            continue;
        }
        quiet_since = cep_now_ns();
        range_part_t *pt = NULL;
        const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
        for (int i = 0; i < n && !pt; i++)
            if (parts[i].partition == m->partition && !strcmp(parts[i].topic, topic)) pt = &parts[i];
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && rd_kafka_fatal_error(rk, NULL, 0))
                rc = cep_error_set(err, CEP_ERR_IO, NULL, "kafka: %s", rd_kafka_message_errstr(m));
            else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && pt && !pt->done && m->offset >= pt->end)
                pt->done = true, left--;
            rd_kafka_message_destroy(m);
            continue;
        }
        if (pt && !pt->done && m->offset < pt->end) {
            if (!fn(ctx, m)) left = 0;
            if (m->offset + 1 >= pt->end) pt->done = true, left--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(assign);
    if (rk) {
        rd_kafka_assign(rk, NULL);
        rd_kafka_destroy(rk);
    }
    free(parts);
    return rc;
}

/* The topics a version reads: its source topics, once each, and (rt set)
 * the internal re-key topics its rules need. */
static rd_kafka_topic_partition_list_t *topics_of(const cep_ruleset_t *rs, const cep_runtime_t *rt)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(4);
    for (uint32_t i = 0; i < rs->nstreams; i++) {
        const cep_stream_t *s = rs->streams[i];
        if (!s->is_source || !s->topic || rd_kafka_topic_partition_list_find(topics, s->topic, RD_KAFKA_PARTITION_UA))
            continue;
        rd_kafka_topic_partition_list_add(topics, s->topic, RD_KAFKA_PARTITION_UA);
    }
    const char *src;
    for (uint32_t i = 0; rt && cep_runtime_rekey_topic(rt, i, &src); i++)
        rd_kafka_topic_partition_list_add(topics, cep_runtime_rekey_topic(rt, i, &src), RD_KAFKA_PARTITION_UA);
    return topics;
}

static bool same_topics(const rd_kafka_topic_partition_list_t *a, const rd_kafka_topic_partition_list_t *b)
{
    if (a->cnt != b->cnt) return false;
    for (int i = 0; i < a->cnt; i++)
        if (!rd_kafka_topic_partition_list_find(b, a->elems[i].topic, RD_KAFKA_PARTITION_UA)) return false;
    return true;
}

static void *prepare_warm(void *ctx, const cep_ruleset_t *next, const cep_ruleset_t *running)
{
    return cep_bootstrap_prepare(ctx, next, running);
}

static void release_warm(void *ctx, void *prepared)
{
    (void)ctx;
    cep_bootstrap_free(prepared);
}

/* A new version went live: counters follow rules by name, the lineage is
 * saved with the next checkpoint, the subscription follows the topics. */
static cep_status_t follow_version(rd_kafka_t *rk, sink_t *sink, const cep_ruleset_t *old, const cep_ruleset_t *rs,
                                   cep_runtime_t *rt, rd_kafka_topic_partition_list_t **topics, volatile int *stop,
                                   cep_error_t *err)
{
    uint64_t *counts = calloc(rs->nqueries + 1, sizeof *counts);
    if (counts && sink->per_rule && old) {
        for (uint32_t i = 0; i < rs->nqueries; i++)
            for (uint32_t k = 0; k < old->nqueries; k++)
                if (!strcmp(rs->queries[i]->name, old->queries[k]->name)) counts[i] = sink->per_rule[k];
    }
    if (counts) {
        free(sink->per_rule);
        sink->per_rule = counts;
    }
    if (sink->ckpt) cep_ckpt_set_lineage(sink->ckpt, rs);
    rd_kafka_topic_partition_list_t *want = topics_of(rs, rt);
    if (same_topics(want, *topics)) {
        rd_kafka_topic_partition_list_destroy(want);
        return CEP_OK;
    }
    cep_status_t rc = create_rekey_topics(sink->prod->rk, rt, stop, err);
    if (!rc) {
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, want);
        if (e) rc = cep_error_set(err, CEP_ERR_IO, NULL, "subscribe: %s", rd_kafka_err2str(e));
        else fprintf(stderr, "cep: reload: now reading %d topics\n", want->cnt);
    }
    if (rc) {
        rd_kafka_topic_partition_list_destroy(want);
        return rc;
    }
    rd_kafka_topic_partition_list_destroy(*topics);
    *topics = want;
    return CEP_OK;
}

cep_status_t cep_kafka_run(const cep_ruleset_t *rs, const cep_kafka_run_opts_t *o, cep_kafka_run_stats_t *st,
                           cep_error_t *err)
{
    cep_kafka_run_stats_t local = {0};
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    rd_kafka_topic_partition_list_t *topics = topics_of(rs, NULL);
    if (!topics->cnt) {
        rd_kafka_topic_partition_list_destroy(topics);
        return cep_error_set(err, CEP_ERR_ARG, NULL, "the pack declares no source topic");
    }
    sink_t sink = {0};
    cep_buf_init(&sink.key);
    cep_buf_init(&sink.value);
    cep_buf_init(&sink.id);
    cep_buf_init(&sink.ts);
    sink.per_rule = calloc(rs->nqueries + 1, sizeof *sink.per_rule);
    cep_status_t rc = cep_kafka_producer_new(o->bootstrap, o->props, o->nprops, &sink.prod, err);
    if (rc) {
        rd_kafka_topic_partition_list_destroy(topics);
        free(sink.per_rule);
        return rc;
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rc = conf_set(c, "bootstrap.servers", o->bootstrap, err);
    if (!rc) rc = conf_set(c, "group.id", o->group ? o->group : "cep", err);
    if (!rc) rc = conf_set(c, "auto.offset.reset", "earliest", err);
    if (!rc) rc = conf_set(c, "enable.auto.commit", "false", err);
    if (!rc) rc = conf_set(c, "enable.partition.eof", "true", err);
    /* a member that dies is noticed in seconds, not the default 45 s, so its
     * partitions move quickly (override with -X session.timeout.ms=...) */
    if (!rc) rc = conf_set(c, "session.timeout.ms", "6000", err);
    if (!rc) rc = conf_set(c, "heartbeat.interval.ms", "1500", err);
    if (!rc) rc = conf_props(c, o->props, o->nprops, err);
    if (!rc) {
        rd_kafka_conf_set_rebalance_cb(c, on_rebalance);
        rd_kafka_conf_set_opaque(c, &sink);
    }
    char errstr[512];
    rd_kafka_t *rk = NULL;
    if (!rc && !(rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr)))
        rc = cep_error_set(err, CEP_ERR_IO, NULL, "kafka consumer: %s", errstr);
    else if (rc)
        rd_kafka_conf_destroy(c);
    cep_runtime_t *rt = NULL;
    if (!rc && !(rt = cep_runtime_new(rs, on_alert, &sink))) rc = cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    sink.rt = rt;
    sink.stop = o->stop;
    if (!rc && o->state_url && strcmp(o->state_url, "memory")) {
        char ns[256];
        snprintf(ns, sizeof ns, "%s", o->state_ns ? o->state_ns : "");
        if (!o->state_ns) snprintf(ns, sizeof ns, "cep:%s", o->group ? o->group : "cep");
        rc = cep_ckpt_new(o->state_url, ns, rt, &sink.ckpt, err);
        if (!rc) fprintf(stderr, "cep: state in %s under %s:{partition}\n", cep_ckpt_where(sink.ckpt), ns);
    }
    if (!rc) {
        /* rules keyed otherwise than their topic read it re-keyed, through internal topics */
        cep_runtime_set_rekey(rt, o->group ? o->group : "cep", on_rekey, &sink);
        rc = create_rekey_topics(sink.prod->rk, rt, o->stop, err);
        if (!rc) {
            rd_kafka_topic_partition_list_destroy(topics);
            topics = topics_of(rs, rt);
        }
        if (sink.ckpt) cep_ckpt_set_lineage(sink.ckpt, rs);
    }
    if (!rc) {
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
        if (e) rc = cep_error_set(err, CEP_ERR_IO, NULL, "subscribe: %s", rd_kafka_err2str(e));
    }
    /* new and reset rules of a reload may warm up from history first */
    cep_bootstrap_opts_t warm_opts = {.brokers = o->bootstrap,
                                      .props = o->props,
                                      .nprops = o->nprops,
                                      .live = rk,
                                      .rekey_prefix = o->group ? o->group : "cep",
                                      .default_ms = o->reload_bootstrap_ms,
                                      .generation = &sink.generation,
                                      .stop = o->stop};
    if (!rc && o->reloader) cep_reloader_set_prepare(o->reloader, prepare_warm, release_warm, &warm_opts);
    const char *dlq = o->dlq_topic ? o->dlq_topic : "cep.dlq";
    uint64_t last_data = cep_now_ns(), last_commit = cep_now_ns(), uncommitted = 0;
    /* partitions at their end: idle exit needs every assigned one there */
    rd_kafka_topic_partition_list_t *at_end = rd_kafka_topic_partition_list_new(8);
    uint64_t ckpt_every = (uint64_t)(o->checkpoint_ms > 0 ? o->checkpoint_ms : 1000) * 1000000ULL;
    uint64_t max_unsaved = o->max_unsaved ? o->max_unsaved : 200000;
    uint64_t next_ckpt = cep_now_ns() + ckpt_every, backoff_ns = 0;
    while (!rc && !(o->stop && *o->stop)) {
        if (sink.ckpt && uncommitted && cep_now_ns() >= next_ckpt) {
            if (!checkpoint(rk, &sink, st)) {
                uncommitted = 0;
                backoff_ns = 0;
                next_ckpt = cep_now_ns() + ckpt_every;
            } else {
                /* Redis is down or slow: retry with backoff, and stop reading
                 * once too much waits to be saved (nothing is lost: the state
                 * stays in memory and the offsets stay uncommitted) */
                backoff_ns = backoff_ns ? CEP_MIN(backoff_ns * 2, 5000000000ULL) : 200000000ULL;
                next_ckpt = cep_now_ns() + backoff_ns;
                if (uncommitted >= max_unsaved && !sink.paused) {
                    rd_kafka_topic_partition_list_t *a = NULL;
                    if (!rd_kafka_assignment(rk, &a) && a) {
                        rd_kafka_pause_partitions(rk, a);
                        rd_kafka_topic_partition_list_destroy(a);
                    }
                    sink.paused = true;
                    st->pauses++;
                    fprintf(stderr, "cep: state: %llu records wait for a checkpoint; consumption paused until %s "
                                    "is back\n",
                            (unsigned long long)uncommitted, cep_ckpt_where(sink.ckpt));
                }
            }
            if (!uncommitted && sink.paused) {
                rd_kafka_topic_partition_list_t *a = NULL;
                if (!rd_kafka_assignment(rk, &a) && a) {
                    rd_kafka_resume_partitions(rk, a);
                    rd_kafka_topic_partition_list_destroy(a);
                }
                sink.paused = false;
                fprintf(stderr, "cep: state: checkpoint written; consumption resumed\n");
            }
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        uint64_t now = cep_now_ns();
        if (!m) {
            /* paused partitions are not idle: they wait for Redis */
            if (o->idle_exit_ms > 0 && !sink.paused && now - last_data > (uint64_t)o->idle_exit_ms * 1000000ULL) {
                rd_kafka_topic_partition_list_t *assigned = NULL;
                bool all = false;
                if (!rd_kafka_assignment(rk, &assigned) && assigned) {
                    all = assigned->cnt > 0;
                    for (int i = 0; i < assigned->cnt && all; i++)
                        all = rd_kafka_topic_partition_list_find(at_end, assigned->elems[i].topic,
                                                                 assigned->elems[i].partition) != NULL;
                    rd_kafka_topic_partition_list_destroy(assigned);
                }
                if (all) break;
            }
            continue;
        }
        if (m->err) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (!rd_kafka_topic_partition_list_find(at_end, rd_kafka_topic_name(m->rkt), m->partition))
                    rd_kafka_topic_partition_list_add(at_end, rd_kafka_topic_name(m->rkt), m->partition);
            } else
                fprintf(stderr, "cep: consumer: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        last_data = now;
        if (!st->first_ns) st->first_ns = now;
        st->last_ns = now;
        rd_kafka_topic_partition_list_del(at_end, rd_kafka_topic_name(m->rkt), m->partition);
        if (o->reloader && cep_reloader_ready(o->reloader)) {
            /* a new version, between two records */
            char pos[320];
            snprintf(pos, sizeof pos, "%s[%d]@%lld", rd_kafka_topic_name(m->rkt), (int)m->partition,
                     (long long)m->offset);
            const cep_ruleset_t *old = NULL, *next = cep_reloader_apply(o->reloader, rt, pos, &old);
            cep_bootstrap_t *warm = cep_reloader_take(o->reloader);
            if (warm) {
                cep_bootstrap_finish(warm, rt, rd_kafka_topic_name(m->rkt), m->partition, m->offset);
                cep_reloader_retire(o->reloader, warm);
            }
            if (next != rs) {
                cep_error_t fe;
                cep_error_clear(&fe);
                if (follow_version(rk, &sink, old, next, rt, &topics, o->stop, &fe))
                    fprintf(stderr, "cep: reload: %s (topics new to this version are not read yet)\n", fe.msg);
                rs = next;
            }
        }
        cep_record_t r;
        const char *topic = cep_kafka_record(m, rs, &r) ? r.topic : NULL;
        cep_error_t de;
        cep_error_clear(&de);
        if (topic) st->records++;
        else st->rekeyed++;
        if (cep_runtime_push(rt, &r, &de)) {
            /* a dead letter: the original bytes, and why */
            char part[16], off[24];
            snprintf(part, sizeof part, "%d", (int)m->partition);
            snprintf(off, sizeof off, "%lld", (long long)m->offset);
            const char *names[] = {"reason", "source_topic", "partition", "offset"};
            const char *vals[] = {de.msg, rd_kafka_topic_name(m->rkt), part, off};
            cep_kafka_produce(sink.prod, dlq, m->key, m->key_len, m->payload, m->len, r.timestamp, names, vals, 4,
                              &sink.err);
            st->dead_letters++;
        }
        uncommitted++;
        rd_kafka_message_destroy(m);
        if (!sink.ckpt && uncommitted && now - last_commit > 1000000000ULL) {
            /* commit what is fully processed: flush the alerts it caused first */
            cep_kafka_producer_flush(sink.prod, 10000);
            rd_kafka_commit(rk, NULL, 0);
            uncommitted = 0;
            last_commit = now;
        }
    }
    if (rt && !sink.ckpt) {
        cep_runtime_finish(rt);
        st->delivery_failures = cep_kafka_producer_flush(sink.prod, 30000);
        if (uncommitted) rd_kafka_commit(rk, NULL, 0);
    }
    if (rt && sink.ckpt) {
        /* a live stream has no end: no end-of-input flush, the state is saved instead */
        st->delivery_failures = cep_kafka_producer_flush(sink.prod, 30000);
        if (checkpoint(rk, &sink, st) && uncommitted)
            fprintf(stderr, "cep: state: not saved at exit; a restart resumes from the last checkpoint\n");
        const cep_ckpt_info_t *ci = cep_ckpt_info(sink.ckpt);
        st->checkpoints = ci->checkpoints;
        st->checkpoint_failures = ci->failures;
        st->restored_tasks = ci->restored_tasks;
        st->restored_entries = ci->restored_entries;
        st->redis_commands = cep_ckpt_commands(sink.ckpt);
    }
    st->alerts = sink.alerts;
    if (o->summary && rt) {
        fprintf(stderr, "%-36s %-9s %10s\n", "rule", "severity", "alerts");
        for (uint32_t i = 0; i < rs->nqueries; i++)
            if (!rs->queries[i]->internal)
                fprintf(stderr, "%-36s %-9s %10llu%s\n", rs->queries[i]->name,
                        rs->queries[i]->meta.severity ? rs->queries[i]->meta.severity : "-",
                        (unsigned long long)sink.per_rule[rs->queries[i]->id],
                        rs->queries[i]->meta.shadow ? "  shadow" : "");
    }
    if (o->reloader) cep_reloader_set_prepare(o->reloader, NULL, NULL, NULL); /* before the consumer goes */
    if (rk) {
        rd_kafka_consumer_close(rk); /* the revocation saves state: the runtime must still exist */
        rd_kafka_destroy(rk);
    }
    cep_ckpt_free(sink.ckpt);
    cep_runtime_free(rt);
    cep_kafka_producer_free(sink.prod);
    rd_kafka_topic_partition_list_destroy(topics);
    rd_kafka_topic_partition_list_destroy(at_end);
    cep_buf_free(&sink.key);
    cep_buf_free(&sink.value);
    cep_buf_free(&sink.id);
    cep_buf_free(&sink.ts);
    free(sink.per_rule);
    if (!rc && st->delivery_failures)
        rc = cep_error_set(err, CEP_ERR_IO, NULL, "%llu alerts were not acknowledged by the broker",
                           (unsigned long long)st->delivery_failures);
    return rc;
}
