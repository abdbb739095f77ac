/*
 * kafka_support.c — see kafka_support.h.
 */
#include "kafka_support.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void keep(void *ctx, const char *key, size_t klen, const char *json, size_t n)
{
    cep_test_events_t *ev = ctx;
    cep_buf_put(&ev->lines, json, n);
    cep_buf_putc(&ev->lines, '\n');
    cep_buf_put(&ev->keys, key, klen);
    cep_buf_putc(&ev->keys, '\n');
    ev->n++;
}

void cep_test_events_gen(cep_test_events_t *ev, const cep_gen_opts_t *o)
{
    memset(ev, 0, sizeof *ev);
    cep_buf_init(&ev->lines);
    cep_buf_init(&ev->keys);
    cep_gen_sink_t sink = {keep, NULL, ev};
    cr_assert_eq(cep_gen_run(o, &sink, NULL, NULL), CEP_OK);
}

void cep_test_events_free(cep_test_events_t *ev)
{
    cep_buf_free(&ev->lines);
    cep_buf_free(&ev->keys);
}

/* Produce events [from, to) of ev; returns the index after the last. */
static void produce_range(cep_kafka_producer_t *p, const cep_test_events_t *ev, const char *topic, const char **line,
                          const char **key, uint64_t count)
{
    const char *lend = ev->lines.data + ev->lines.len;
    for (uint64_t i = 0; i < count && *line < lend; i++) {
        const char *nl = memchr(*line, '\n', (size_t)(lend - *line));
        const char *knl = memchr(*key, '\n', (size_t)(ev->keys.data + ev->keys.len - *key));
        cr_assert_eq(cep_kafka_produce(p, topic, *key, (size_t)(knl - *key), *line, (size_t)(nl - *line), 0, NULL,
                                       NULL, 0, NULL),
                     CEP_OK);
        *line = nl + 1;
        *key = knl + 1;
    }
}

void cep_test_events_produce(const cep_test_events_t *ev, const char *bootstrap, const char *topic)
{
    cep_kafka_producer_t *p = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_producer_new(bootstrap, NULL, 0, &p, &err), CEP_OK, "%s", err.msg);
    const char *line = ev->lines.data, *key = ev->keys.data;
    produce_range(p, ev, topic, &line, &key, ev->n);
    cr_assert_eq(cep_kafka_producer_flush(p, 30000), 0);
    cep_kafka_producer_free(p);
}

struct cep_test_trickle {
    const cep_test_events_t *ev;
    cep_kafka_producer_t *p;
    const char *topic;
    unsigned batch, pause_ms;
    volatile uint64_t done;
    pthread_t th;
};

static void *trickle_main(void *arg)
{
    cep_test_trickle_t *t = arg;
    const char *line = t->ev->lines.data, *key = t->ev->keys.data;
    while (t->done < t->ev->n) {
        uint64_t k = t->ev->n - t->done < t->batch ? t->ev->n - t->done : t->batch;
        produce_range(t->p, t->ev, t->topic, &line, &key, k);
        cep_kafka_producer_flush(t->p, 30000);
        t->done += k;
        usleep(t->pause_ms * 1000u);
    }
    return NULL;
}

cep_test_trickle_t *cep_test_trickle_start(const cep_test_events_t *ev, const char *bootstrap, const char *topic,
                                           unsigned batch, unsigned pause_ms)
{
    cep_test_trickle_t *t = calloc(1, sizeof *t);
    cr_assert_not_null(t);
    cep_error_t err;
    cep_error_clear(&err);
    cr_assert_eq(cep_kafka_producer_new(bootstrap, NULL, 0, &t->p, &err), CEP_OK, "%s", err.msg);
    t->ev = ev;
    t->topic = topic;
    t->batch = batch;
    t->pause_ms = pause_ms;
    cr_assert_eq(pthread_create(&t->th, NULL, trickle_main, t), 0);
    return t;
}

uint64_t cep_test_trickle_done(cep_test_trickle_t *t)
{
    return t->done;
}

void cep_test_trickle_join(cep_test_trickle_t *t)
{
    pthread_join(t->th, NULL);
    cr_assert_eq(cep_kafka_producer_flush(t->p, 30000), 0);
    cep_kafka_producer_free(t->p);
    free(t);
}

/* The reader behind both: marks, when given, gets {alert_id: the value of
 * header (null when absent)}. */
static json_t *read_topic(const char *bootstrap, const char *topic, json_t *reasons, size_t *records,
                          const char *header, json_t *marks)
{
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, errstr, sizeof errstr);
    char group[128];
    static atomic_uint readers; /* each read from the start, under a group of its own */
    snprintf(group, sizeof group, "test-reader-%s-%d-%u", topic, (int)getpid(), atomic_fetch_add(&readers, 1));
    rd_kafka_conf_set(c, "group.id", group, errstr, sizeof errstr);
    rd_kafka_conf_set(c, "auto.offset.reset", "earliest", errstr, sizeof errstr);
    rd_kafka_conf_set(c, "enable.partition.eof", "true", errstr, sizeof errstr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    cr_assert_not_null(rk, "%s", errstr);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk, t);
    rd_kafka_topic_partition_list_destroy(t);
    json_t *set = json_object();
    size_t n = 0;
    uint64_t start = cep_now_ns(), last = 0;
    int eofs = 0;
    while (cep_now_ns() - start < 90000000000ULL) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (!m) {
            if (eofs && cep_now_ns() - last > 1500000000ULL) break;
            continue;
        }
        last = cep_now_ns();
        if (m->err) {
            eofs += m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
            rd_kafka_message_destroy(m);
            continue;
        }
        n++;
        rd_kafka_headers_t *h = NULL;
        const void *id = NULL, *reason = NULL;
        size_t idn = 0, rn = 0;
        if (!rd_kafka_message_headers(m, &h)) {
            rd_kafka_header_get_last(h, "alert_id", &id, &idn);
            rd_kafka_header_get_last(h, "reason", &reason, &rn);
        }
        char key[512];
        if (id) {
            snprintf(key, sizeof key, "%.*s", (int)idn, (const char *)id);
            char *v = strndup(m->payload ? (const char *)m->payload : "null", m->payload ? m->len : 4);
            json_object_set_new(set, key, json_string(v));
            free(v);
            const void *hv = NULL;
            size_t hn = 0;
            if (marks) {
                if (h && !rd_kafka_header_get_last(h, header, &hv, &hn)) {
                    char *mv = strndup(hv ? hv : "", hv ? hn : 0);
                    json_object_set_new(marks, key, json_string(mv));
                    free(mv);
                } else {
                    json_object_set_new(marks, key, json_null());
                }
            }
        } else if (reason && reasons) {
            char *r = strndup(reason, rn);
            json_array_append_new(reasons, json_string(r));
            free(r);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (records) *records = n;
    return set;
}

json_t *cep_test_read_topic(const char *bootstrap, const char *topic, json_t *reasons, size_t *records)
{
    return read_topic(bootstrap, topic, reasons, records, NULL, NULL);
}

json_t *cep_test_read_topic_header(const char *bootstrap, const char *topic, const char *header, size_t *records)
{
    json_t *marks = json_object();
    json_decref(read_topic(bootstrap, topic, NULL, records, header, marks));
    return marks;
}

pid_t cep_test_spawn(const char *binary, char *const argv[], const char *errfile)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, binary, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

int cep_test_wait(pid_t pid)
{
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void cep_test_run_counts(const char *errfile, unsigned long long *records, unsigned long long *alerts)
{
    char *text;
    size_t n;
    cr_assert_eq(cep_file_read(errfile, &text, &n, NULL), CEP_OK);
    const char *line = NULL;
    for (const char *p = text; (p = strstr(p, "cep run: ")); p++)
        if (sscanf(p, "cep run: %llu records, %llu alerts", records, alerts) == 2) line = p;
    cr_assert_not_null(line, "no summary in: %s", text);
    free(text);
}

int cep_test_last_assignment(const char *errfile)
{
    char *text = NULL;
    size_t n;
    if (cep_file_read(errfile, &text, &n, NULL) != CEP_OK) return 0;
    int count = 0;
    for (const char *p = text; (p = strstr(p, "partition(s) assigned"));) {
        const char *q = p;
        while (q > text && q[-1] == ' ') q--;
        while (q > text && q[-1] >= '0' && q[-1] <= '9') q--;
        count = atoi(q);
        p += 21;
    }
    free(text);
    return count;
}

bool cep_test_file_has(const char *errfile, const char *needle)
{
    char *text = NULL;
    size_t n;
    if (cep_file_read(errfile, &text, &n, NULL) != CEP_OK) return false;
    bool yes = strstr(text, needle) != NULL;
    free(text);
    return yes;
}
