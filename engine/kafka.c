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
    const char *names[] = {"rule", "rule_version", "severity", "alert_id", "detected_at"};
    const char *vals[] = {q->name, version, q->meta.severity ? q->meta.severity : "",
                          cep_buf_cstr(&s->id), cep_buf_cstr(&s->ts)};
    /* a rule without KAFKA_TOPIC alerts on cep.alerts (not on a topic named after it) */
    const char *topic = o->sink->topic_given && o->sink->topic ? o->sink->topic : "cep.alerts";
    cep_kafka_produce(s->prod, topic, s->key.data, s->key.len, o->tombstone ? NULL : s->value.data,
                      o->tombstone ? 0 : s->value.len, o->timestamp, names, vals, CEP_ARRAY_LEN(names), &s->err);
    s->alerts++;
    if (s->per_rule) s->per_rule[q->id]++;
}

/* Partitions leaving this instance: flush the alerts of what was processed
 * and commit it first, so the next owner starts exactly after it. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    sink_t *s = opaque;
    if (e == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        fprintf(stderr, "cep: %d partition(s) assigned\n", parts->cnt);
        rd_kafka_assign(rk, parts);
        return;
    }
    if (e == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        cep_kafka_producer_flush(s->prod, 30000);
        rd_kafka_commit(rk, NULL, 0);
        fprintf(stderr, "cep: %d partition(s) revoked; processed offsets committed\n", parts->cnt);
    }
    rd_kafka_assign(rk, NULL);
}

static const char *source_topic_of(const cep_ruleset_t *rs, const char *topic)
{
    for (uint32_t i = 0; i < rs->nstreams; i++)
        if (rs->streams[i]->is_source && rs->streams[i]->topic && !strcmp(rs->streams[i]->topic, topic))
            return rs->streams[i]->topic;
    return NULL;
}

cep_status_t cep_kafka_run(const cep_ruleset_t *rs, const cep_kafka_run_opts_t *o, cep_kafka_run_stats_t *st,
                           cep_error_t *err)
{
    cep_kafka_run_stats_t local = {0};
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    /* the source topics, once each */
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(4);
    for (uint32_t i = 0; i < rs->nstreams; i++) {
        const cep_stream_t *s = rs->streams[i];
        if (!s->is_source || !s->topic || rd_kafka_topic_partition_list_find(topics, s->topic, RD_KAFKA_PARTITION_UA))
            continue;
        rd_kafka_topic_partition_list_add(topics, s->topic, RD_KAFKA_PARTITION_UA);
    }
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
    if (!rc) {
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
        if (e) rc = cep_error_set(err, CEP_ERR_IO, NULL, "subscribe: %s", rd_kafka_err2str(e));
    }
    if (!rc && !(rt = cep_runtime_new(rs, on_alert, &sink))) rc = cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    const char *dlq = o->dlq_topic ? o->dlq_topic : "cep.dlq";
    uint64_t last_data = cep_now_ns(), last_commit = cep_now_ns(), uncommitted = 0;
    /* partitions at their end: idle exit needs every assigned one there */
    rd_kafka_topic_partition_list_t *at_end = rd_kafka_topic_partition_list_new(8);
    while (!rc && !(o->stop && *o->stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        uint64_t now = cep_now_ns();
        if (!m) {
            if (o->idle_exit_ms > 0 && now - last_data > (uint64_t)o->idle_exit_ms * 1000000ULL) {
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
        const char *topic = source_topic_of(rs, rd_kafka_topic_name(m->rkt));
        rd_kafka_timestamp_type_t tstype;
        cep_record_t r = {.topic = topic ? topic : rd_kafka_topic_name(m->rkt),
                          .key = m->key,
                          .klen = m->key_len,
                          .value = m->payload,
                          .vlen = m->len,
                          .timestamp = rd_kafka_message_timestamp(m, &tstype),
                          .partition = m->partition,
                          .offset = m->offset,
                          .source = rd_kafka_topic_name(m->rkt)};
        cep_error_t de;
        cep_error_clear(&de);
        st->records++;
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
        /* commit what is fully processed: flush the alerts it caused first */
        if (uncommitted && now - last_commit > 1000000000ULL) {
            cep_kafka_producer_flush(sink.prod, 10000);
            rd_kafka_commit(rk, NULL, 0);
            uncommitted = 0;
            last_commit = now;
        }
    }
    if (rt) {
        cep_runtime_finish(rt);
        st->delivery_failures = cep_kafka_producer_flush(sink.prod, 30000);
        if (uncommitted) rd_kafka_commit(rk, NULL, 0);
    }
    st->alerts = sink.alerts;
    if (o->summary && rt) {
        fprintf(stderr, "%-36s %-9s %10s\n", "rule", "severity", "alerts");
        for (uint32_t i = 0; i < rs->nqueries; i++)
            if (!rs->queries[i]->internal)
                fprintf(stderr, "%-36s %-9s %10llu\n", rs->queries[i]->name,
                        rs->queries[i]->meta.severity ? rs->queries[i]->meta.severity : "-",
                        (unsigned long long)sink.per_rule[rs->queries[i]->id]);
    }
    cep_runtime_free(rt);
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
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
