/*
 * redis.c — checkpoints of per-task state in Redis: the connection (URL,
 * handshake, one reconnect per call), batches kept already encoded in the
 * Redis protocol, the pipelined MULTI/EXEC commit and the HSCAN load.
 *
 * hiredis connects and parses replies; requests are encoded here and
 * written with sendmsg(MSG_NOSIGNAL). Two reasons: a batch encodes each
 * field once, when it is added, and a commit sends those bytes straight
 * from the batch (no per-field work and no second copy at commit time); and
 * a write to a server that went away fails with EPIPE instead of killing
 * the host process with SIGPIPE, which hiredis 0.14's write(2) would do.
 */
#include "state/redis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* ---- protocol encoding ---------------------------------------------------- */

/* "<sigil><n>\r\n" into out (at least 24 bytes); returns its length. */
static size_t fmt_head(char *out, char sigil, uint64_t n)
{
    char digits[20];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t len = 0;
    out[len++] = sigil;
    while (k) out[len++] = digits[--k];
    out[len++] = '\r';
    out[len++] = '\n';
    return len;
}

static void put_head(cep_buf_t *b, char sigil, uint64_t n)
{
    char head[24];
    cep_buf_put(b, head, fmt_head(head, sigil, n));
}

/* One bulk string: "$<n>\r\n<bytes>\r\n". */
static void put_bulk(cep_buf_t *b, const void *p, size_t n)
{
    char head[24];
    size_t h = fmt_head(head, '$', n);
    if (!cep_buf_reserve(b, h + n + 2)) return;
    memcpy(b->data + b->len, head, h);
    if (n) memcpy(b->data + b->len + h, p, n);
    memcpy(b->data + b->len + h + n, "\r\n", 2);
    b->len += h + n + 2;
}

/* The keys of a task: "<ns>:{<task>}:<suffix>". */
enum { LANE_STATE, LANE_META, LANE_OFFSETS, LANE_COUNT };
static const char *const lane_suffix[LANE_COUNT] = {
    [LANE_STATE] = "state",
    [LANE_META] = "meta",
    [LANE_OFFSETS] = "offsets",
};
_Static_assert(CEP_ARRAY_LEN(lane_suffix) == LANE_COUNT, "lane_suffix");

static void put_key_bulk(cep_buf_t *b, const char *ns, int32_t task, int lane)
{
    char key_tail[40];
    int tail = snprintf(key_tail, sizeof key_tail, ":{%d}:%s", (int)task, lane_suffix[lane]);
    size_t nslen = strlen(ns);
    put_head(b, '$', nslen + (size_t)tail);
    cep_buf_put(b, ns, nslen);
    cep_buf_put(b, key_tail, (size_t)tail);
    cep_buf_put(b, "\r\n", 2);
}

static void key_text(char *out, size_t cap, const char *ns, int32_t task, int lane)
{
    snprintf(out, cap, "%s:{%d}:%s", ns, (int)task, lane_suffix[lane]);
}

/* ---- batches ---------------------------------------------------------------- */

/* A batch keeps, per hash ("lane"), the arguments of its commands already
 * encoded: a segment is one HSET or HDEL whose field (and value) bulks are
 * data[off, off + len). Consecutive adds of the same kind extend the open
 * segment up to SEG_MAX_FIELDS fields or SEG_MAX_BYTES, so no command is
 * huge and a commit is a handful of headers around the stored bytes. */
#define SEG_MAX_FIELDS 1000
#define SEG_MAX_BYTES  ((size_t)4 << 20)

typedef enum seg_op { OP_HSET, OP_HDEL } seg_op_t;

typedef struct seg {
    seg_op_t op;
    uint32_t fields;
    size_t off, len;
} seg_t;

typedef struct lane {
    cep_buf_t data;
    seg_t *segs;
    size_t nsegs, cap;
} lane_t;

struct cep_redis_batch {
    int32_t task;
    bool replace_all;
    bool failed; /* an allocation failed: the batch is incomplete */
    lane_t lanes[LANE_COUNT];
};

cep_redis_batch_t *cep_redis_batch_new(int32_t task)
{
    cep_redis_batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->task = task;
    for (int i = 0; i < LANE_COUNT; i++) cep_buf_init(&b->lanes[i].data);
    return b;
}

void cep_redis_batch_free(cep_redis_batch_t *b)
{
    if (!b) return;
    for (int i = 0; i < LANE_COUNT; i++) {
        cep_buf_free(&b->lanes[i].data);
        free(b->lanes[i].segs);
    }
    free(b);
}

void cep_redis_batch_reset(cep_redis_batch_t *b)
{
    for (int i = 0; i < LANE_COUNT; i++) {
        cep_buf_reset(&b->lanes[i].data);
        b->lanes[i].nsegs = 0;
    }
    b->replace_all = false;
    b->failed = false;
}

int32_t cep_redis_batch_task(const cep_redis_batch_t *b)
{
    return b->task;
}

/* The segment the next field of kind op goes to; NULL when out of memory. */
static seg_t *lane_seg(lane_t *l, seg_op_t op)
{
    if (l->nsegs) {
        seg_t *s = &l->segs[l->nsegs - 1];
        if (s->op == op && s->fields < SEG_MAX_FIELDS && s->len < SEG_MAX_BYTES) return s;
    }
    if (l->nsegs == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        seg_t *p = realloc(l->segs, cap * sizeof *p);
        if (!p) return NULL;
        l->segs = p;
        l->cap = cap;
    }
    seg_t *s = &l->segs[l->nsegs++];
    *s = (seg_t){.op = op, .fields = 0, .off = l->data.len, .len = 0};
    return s;
}

static void lane_add(cep_redis_batch_t *b, int lane, seg_op_t op, const void *field, size_t flen,
                     const void *val, size_t vlen)
{
    if (b->failed) return;
    lane_t *l = &b->lanes[lane];
    seg_t *s = lane_seg(l, op);
    if (!s) {
        b->failed = true;
        return;
    }
    put_bulk(&l->data, field, flen);
    if (op == OP_HSET) put_bulk(&l->data, val, vlen);
    if (l->data.failed) {
        b->failed = true;
        return;
    }
    s->fields++;
    s->len = l->data.len - s->off;
}

void cep_redis_batch_put(cep_redis_batch_t *b, const void *field, size_t flen, const void *val,
                         size_t vlen)
{
    lane_add(b, LANE_STATE, OP_HSET, field, flen, val, vlen);
}

void cep_redis_batch_del(cep_redis_batch_t *b, const void *field, size_t flen)
{
    lane_add(b, LANE_STATE, OP_HDEL, field, flen, NULL, 0);
}

void cep_redis_batch_meta(cep_redis_batch_t *b, const void *field, size_t flen, const void *val,
                          size_t vlen)
{
    lane_add(b, LANE_META, OP_HSET, field, flen, val, vlen);
}

void cep_redis_batch_meta_del(cep_redis_batch_t *b, const void *field, size_t flen)
{
    lane_add(b, LANE_META, OP_HDEL, field, flen, NULL, 0);
}

void cep_redis_batch_offset(cep_redis_batch_t *b, const char *topic, int64_t next_offset)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", (long long)next_offset);
    lane_add(b, LANE_OFFSETS, OP_HSET, topic, strlen(topic), num, (size_t)n);
}

void cep_redis_batch_replace_all(cep_redis_batch_t *b)
{
    b->replace_all = true;
}

size_t cep_redis_batch_size(const cep_redis_batch_t *b)
{
    size_t n = 0;
    for (int i = 0; i < LANE_COUNT; i++) n += b->lanes[i].data.len;
    return n;
}

/* Commands of the batch's transaction, MULTI and EXEC included. */
static size_t batch_commands(const cep_redis_batch_t *b)
{
    size_t n = 2 + (b->replace_all ? 1 : 0);
    for (int i = 0; i < LANE_COUNT; i++) n += b->lanes[i].nsegs;
    return n;
}

/* Name and key of command j (0 = MULTI) of the batch's transaction. */
static void batch_describe(const cep_redis_batch_t *b, const char *ns, size_t j, char *out,
                           size_t cap)
{
    size_t k = 1;
    if (b->replace_all) {
        if (j == k) {
            snprintf(out, cap, "DEL");
            return;
        }
        k++;
    }
    for (int i = 0; i < LANE_COUNT; i++) {
        const lane_t *l = &b->lanes[i];
        if (j < k + l->nsegs) {
            char key[300];
            key_text(key, sizeof key, ns, b->task, i);
            snprintf(out, cap, "%s of '%s'", l->segs[j - k].op == OP_HSET ? "HSET" : "HDEL", key);
            return;
        }
        k += l->nsegs;
    }
    snprintf(out, cap, "command %zu", j);
}

/* ---- the connection ------------------------------------------------------- */

/* A piece of a request: len bytes at base + off, or at the connection's
 * plan buffer + off when base is NULL (that buffer may move while the
 * request is built). */
typedef struct piece {
    const char *base;
    size_t off, len;
} piece_t;

struct cep_redis {
    char *host; /* without IPv6 brackets */
    int port, db;
    char *user, *password; /* NULL when absent */
    int timeout_ms;
    char hostport[300]; /* for errors: "host:port" */
    char where[320];    /* for logs: "host:port/db" */
    redisContext *c;    /* NULL while disconnected */
    cep_buf_t cmd;      /* one encoded command (handshake, HSCAN, DEL) */
    cep_buf_t plan;     /* headers of a commit */
    piece_t *pieces;
    size_t npieces, cappieces;
    cep_redis_stats_t stats;
};

/* What a step that talks to the server ended with. */
typedef enum io_result {
    IO_OK,   /* the reply is there (it may be an error reply) */
    IO_LOST, /* the connection is gone (closed, reset, timed out): why says how */
} io_result_t;

static void drop_conn(cep_redis_t *r)
{
    if (r->c) redisFree(r->c);
    r->c = NULL;
}

static void transport_reason(const cep_redis_t *r, int errnum, char *why, size_t cap)
{
    if (errnum == EAGAIN || errnum == EWOULDBLOCK)
        snprintf(why, cap, "timed out after %d ms", r->timeout_ms);
    else
        snprintf(why, cap, "%s", strerror(errnum));
}

/* hiredis says why a read failed in errstr; a socket timeout shows as
 * EAGAIN's text, which is worth saying plainly. */
static void read_reason(const cep_redis_t *r, char *why, size_t cap)
{
    const char *s = r->c ? r->c->errstr : "not connected";
    if (r->c && r->c->err == REDIS_ERR_IO && strcmp(s, strerror(EAGAIN)) == 0)
        transport_reason(r, EAGAIN, why, cap);
    else
        snprintf(why, cap, "%s", s[0] ? s : "connection lost");
}

/* Write pieces[0..n) whole. */
static io_result_t send_pieces(cep_redis_t *r, const piece_t *p, size_t n, char *why, size_t cap)
{
    size_t i = 0, done = 0; /* piece i, bytes of it already sent */
    while (i < n) {
        if (done == p[i].len) {
            i++;
            done = 0;
            continue;
        }
        struct iovec iov[64];
        int k = 0;
        for (size_t j = i; j < n && k < (int)CEP_ARRAY_LEN(iov); j++) {
            const char *base = p[j].base ? p[j].base : r->plan.data;
            size_t skip = j == i ? done : 0;
            if (p[j].len == skip) continue;
            iov[k].iov_base = (void *)(base + p[j].off + skip);
            iov[k].iov_len = p[j].len - skip;
            k++;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(r->c->fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            transport_reason(r, errno, why, cap);
            return IO_LOST;
        }
        r->stats.bytes_out += (uint64_t)w;
        size_t left = (size_t)w;
        while (left && i < n) {
            size_t rest = p[i].len - done;
            if (left >= rest) {
                left -= rest;
                i++;
                done = 0;
            } else {
                done += left;
                left = 0;
            }
        }
    }
    return IO_OK;
}

static io_result_t read_reply(cep_redis_t *r, redisReply **out, char *why, size_t cap)
{
    void *reply = NULL;
    if (redisGetReply(r->c, &reply) != REDIS_OK || !reply) {
        read_reason(r, why, cap);
        return IO_LOST;
    }
    *out = reply;
    return IO_OK;
}

/* Send one command and read its reply (owned by the caller:
 * freeReplyObject). On IO_LOST the connection is dropped. */
static io_result_t roundtrip(cep_redis_t *r, int argc, const char *const *argv, const size_t *lens,
                             redisReply **out, char *why, size_t cap)
{
    *out = NULL;
    if (!r->c) {
        snprintf(why, cap, "not connected");
        return IO_LOST;
    }
    cep_buf_reset(&r->cmd);
    put_head(&r->cmd, '*', (uint64_t)argc);
    for (int i = 0; i < argc; i++) put_bulk(&r->cmd, argv[i], lens[i]);
    if (r->cmd.failed) {
        snprintf(why, cap, "out of memory");
        drop_conn(r);
        return IO_LOST;
    }
    piece_t p = {r->cmd.data, 0, r->cmd.len};
    r->stats.commands++;
    r->stats.round_trips++;
    if (send_pieces(r, &p, 1, why, cap) != IO_OK || read_reply(r, out, why, cap) != IO_OK) {
        drop_conn(r);
        return IO_LOST;
    }
    return IO_OK;
}

static bool reply_is_status(const redisReply *rep, const char *s)
{
    return rep->type == REDIS_REPLY_STATUS && strcmp(rep->str, s) == 0;
}

/* Connect, AUTH, SELECT, PING. On failure why says which step failed and
 * how ("cannot connect: Connection refused"), and there is no connection. */
static cep_status_t open_conn(cep_redis_t *r, char *why, size_t cap)
{
    drop_conn(r);
    struct timeval tv = {.tv_sec = r->timeout_ms / 1000, .tv_usec = (r->timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
    if (!c) {
        snprintf(why, cap, "cannot connect: out of memory");
        return CEP_ERR_NOMEM;
    }
    if (c->err || redisSetTimeout(c, tv) != REDIS_OK || redisEnableKeepAlive(c) != REDIS_OK) {
        snprintf(why, cap, "cannot connect: %s", c->errstr[0] ? c->errstr : "unknown error");
        redisFree(c);
        return CEP_ERR_IO;
    }
    r->c = c;

    char lost[256];
    redisReply *rep = NULL;
    if (r->password) {
        const char *argv[3] = {"AUTH"};
        size_t lens[3] = {4};
        int argc = 1;
        if (r->user) {
            argv[argc] = r->user;
            lens[argc++] = strlen(r->user);
        }
        argv[argc] = r->password;
        lens[argc++] = strlen(r->password);
        if (roundtrip(r, argc, argv, lens, &rep, lost, sizeof lost) != IO_OK) {
            snprintf(why, cap, "AUTH: %s", lost);
            return CEP_ERR_IO;
        }
        if (!reply_is_status(rep, "OK")) {
            snprintf(why, cap, "authentication failed: %s",
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            goto fail;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    if (r->db) {
        char db[16];
        int n = snprintf(db, sizeof db, "%d", r->db);
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, (size_t)n};
        if (roundtrip(r, 2, argv, lens, &rep, lost, sizeof lost) != IO_OK) {
            snprintf(why, cap, "SELECT: %s", lost);
            return CEP_ERR_IO;
        }
        if (!reply_is_status(rep, "OK")) {
            if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOAUTH", 6) == 0)
                snprintf(why, cap, "the server wants a password and the URL has none: %s",
                         rep->str);
            else
                snprintf(why, cap, "cannot select db %d: %s", r->db,
                         rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            goto fail;
        }
        freeReplyObject(rep);
        rep = NULL;
    }
    const char *ping[1] = {"PING"};
    size_t ping_len[1] = {4};
    if (roundtrip(r, 1, ping, ping_len, &rep, lost, sizeof lost) != IO_OK) {
        snprintf(why, cap, "PING: %s", lost);
        return CEP_ERR_IO;
    }
    if (!reply_is_status(rep, "PONG")) {
        if (rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "NOAUTH", 6) == 0)
            snprintf(why, cap, "the server wants a password and the URL has none: %s", rep->str);
        else
            snprintf(why, cap, "PING failed: %s",
                     rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
        goto fail;
    }
    freeReplyObject(rep);
    return CEP_OK;
fail:
    freeReplyObject(rep);
    drop_conn(r);
    return CEP_ERR_IO;
}

/* Reconnect after a connection was found broken (or before a call that
 * finds none): counts in stats.reconnects when it works. */
static cep_status_t reconnect(cep_redis_t *r, char *why, size_t cap)
{
    cep_status_t st = open_conn(r, why, cap);
    if (st == CEP_OK) r->stats.reconnects++;
    return st;
}

/* ---- URLs ----------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decoded copy of s[0..n) (malloc'ed), or NULL when malformed or out of memory. */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[k++] = s[i];
            continue;
        }
        if (i + 2 >= n) {
            free(out);
            return NULL;
        }
        int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
        if (a < 0 || b < 0 || (a == 0 && b == 0)) {
            free(out);
            return NULL;
        }
        out[k++] = (char)(a * 16 + b);
        i += 2;
    }
    out[k] = 0;
    return out;
}

/* Parse digits s[0..n) into [lo, hi]. */
static bool parse_int(const char *s, size_t n, long lo, long hi, long *out)
{
    if (n == 0 || n > 9) return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Fill r's host, port, db, user and password from url; false when it is
 * malformed (or memory ran out: *nomem). */
static bool parse_url(cep_redis_t *r, const char *url, bool *nomem)
{
    const char *s = url;
    if (strncasecmp(s, "redis://", 8) == 0) s += 8;
    else if (strstr(s, "://")) return false;

    const char *at = strrchr(s, '@');
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon) return false; /* "x@host": user or password? refuse to guess */
        /* NULL from url_decode: a bad %-escape (or, rarely, no memory) */
        if (colon > s && !(r->user = url_decode(s, (size_t)(colon - s)))) return false;
        if (at > colon + 1 && !(r->password = url_decode(colon + 1, (size_t)(at - colon - 1))))
            return false;
        s = at + 1;
    }

    const char *host = s, *host_end;
    if (*s == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (!host_end) return false;
        s = host_end + 1;
    } else {
        host_end = s + strcspn(s, ":/");
        s = host_end;
    }
    if (host_end == host || *s != ':') return false;
    s++;
    size_t port_len = strcspn(s, "/");
    long port, db = 0;
    if (!parse_int(s, port_len, 1, 65535, &port)) return false;
    s += port_len;
    if (*s == '/') {
        s++;
        if (*s && !parse_int(s, strlen(s), 0, 999999999, &db)) return false;
    } else if (*s) {
        return false;
    }
    r->host = strndup(host, (size_t)(host_end - host));
    if (!r->host) {
        *nomem = true;
        return false;
    }
    r->port = (int)port;
    r->db = (int)db;
    bool v6 = memchr(host, ':', (size_t)(host_end - host)) != NULL;
    snprintf(r->hostport, sizeof r->hostport, v6 ? "[%s]:%d" : "%s:%d", r->host, r->port);
    snprintf(r->where, sizeof r->where, "%s/%d", r->hostport, r->db);
    return true;
}

/* The URL for an error message: whatever precedes the last '@' (the
 * password) is shown as "***". */
static void url_redacted(const char *url, char *out, size_t cap)
{
    const char *at = strrchr(url, '@');
    if (!at) {
        snprintf(out, cap, "%s", url);
        return;
    }
    const char *scheme = strstr(url, "://");
    int keep = scheme && scheme < at ? (int)(scheme + 3 - url) : 0;
    snprintf(out, cap, "%.*s***%s", keep, url, at);
}

/* ---- public: the connection ------------------------------------------------- */

void cep_redis_free(cep_redis_t *r)
{
    if (!r) return;
    drop_conn(r);
    if (r->password) {
        /* the password should not outlive the connection in freed memory */
        explicit_bzero(r->password, strlen(r->password));
        free(r->password);
    }
    free(r->user);
    free(r->host);
    cep_buf_free(&r->cmd);
    cep_buf_free(&r->plan);
    free(r->pieces);
    free(r);
}

cep_status_t cep_redis_connect(const char *url, int timeout_ms, cep_redis_t **out,
                               cep_error_t *err)
{
    *out = NULL;
    if (timeout_ms <= 0)
        return cep_error_set(err, CEP_ERR_ARG, NULL, "redis timeout must be > 0 ms, got %d",
                             timeout_ms);
    cep_redis_t *r = calloc(1, sizeof *r);
    if (!r) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    r->timeout_ms = timeout_ms;
    cep_buf_init(&r->cmd);
    cep_buf_init(&r->plan);
    bool nomem = false;
    if (!parse_url(r, url, &nomem)) {
        cep_redis_free(r);
        if (nomem) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
        if (strncasecmp(url, "rediss://", 9) == 0)
            return cep_error_set(err, CEP_ERR_UNSUPPORTED, NULL,
                                 "redis URL: TLS (rediss://) is not supported");
        char shown[400];
        url_redacted(url, shown, sizeof shown);
        return cep_error_set(err, CEP_ERR_ARG, NULL,
                             "redis URL '%s': expected redis://[[user]:password@]host:port[/db]",
                             shown);
    }
    char why[400];
    cep_status_t st = open_conn(r, why, sizeof why);
    if (st != CEP_OK) {
        cep_error_set(err, st, NULL, "redis %s: %s", r->hostport, why);
        cep_redis_free(r);
        return st;
    }
    *out = r;
    return CEP_OK;
}

const char *cep_redis_where(const cep_redis_t *r)
{
    return r->where;
}

const cep_redis_stats_t *cep_redis_stats(const cep_redis_t *r)
{
    return &r->stats;
}

static bool conn_broken(const cep_redis_t *r)
{
    return !r->c || r->c->err;
}

cep_status_t cep_redis_ensure(cep_redis_t *r, cep_error_t *err)
{
    if (!conn_broken(r)) return CEP_OK;
    char why[400];
    cep_status_t st = reconnect(r, why, sizeof why);
    if (st != CEP_OK) return cep_error_set(err, st, NULL, "redis %s: %s", r->hostport, why);
    return CEP_OK;
}

/* One command with the reconnect policy of the calls that are safe to
 * repeat: a broken connection is re-established once, before the command
 * or after it was lost. what names the call in errors. */
static cep_status_t command(cep_redis_t *r, int argc, const char *const *argv, const size_t *lens,
                            bool may_retry, const char *what, redisReply **out, cep_error_t *err)
{
    char why[400], lost[256];
    bool retried = false;
    if (conn_broken(r)) {
        cep_status_t st = reconnect(r, why, sizeof why);
        if (st != CEP_OK) return cep_error_set(err, st, NULL, "redis %s: %s", r->hostport, why);
        retried = true;
    }
    for (;;) {
        if (roundtrip(r, argc, argv, lens, out, lost, sizeof lost) == IO_OK) return CEP_OK;
        if (retried || !may_retry)
            return cep_error_set(err, CEP_ERR_IO, NULL, "redis %s: %s: %s", r->hostport, what,
                                 lost);
        retried = true;
        cep_status_t st = reconnect(r, why, sizeof why);
        if (st != CEP_OK)
            return cep_error_set(err, st, NULL, "redis %s: %s (reconnecting after: %s)",
                                 r->hostport, why, lost);
    }
}

/* The task must be the only {...} in a key: Redis Cluster hashes the first
 * one, so braces in the namespace would put every task in one slot. */
static cep_status_t check_ns(const char *ns, cep_error_t *err)
{
    if (!strpbrk(ns, "{}")) return CEP_OK;
    return cep_error_set(err, CEP_ERR_ARG, NULL,
                         "redis namespace '%s': must not contain '{' or '}' (the task is the "
                         "keys' hash tag)",
                         ns);
}

/* ---- commit ------------------------------------------------------------------ */

static bool plan_add(cep_redis_t *r, const char *base, size_t off, size_t len)
{
    if (r->npieces == r->cappieces) {
        size_t cap = r->cappieces ? r->cappieces * 2 : 64;
        piece_t *p = realloc(r->pieces, cap * sizeof *p);
        if (!p) return false;
        r->pieces = p;
        r->cappieces = cap;
    }
    r->pieces[r->npieces++] = (piece_t){base, off, len};
    return true;
}

/* Everything from plan.data + from to its end, as one piece. */
static bool plan_flush_headers(cep_redis_t *r, size_t *from)
{
    if (r->plan.len == *from) return true;
    bool ok = plan_add(r, NULL, *from, r->plan.len - *from);
    *from = r->plan.len;
    return ok;
}

/* The whole pipeline as pieces: headers in r->plan, field bytes in the
 * batches. False when out of memory. */
static bool plan_build(cep_redis_t *r, const char *ns, cep_redis_batch_t *const *batches, size_t n)
{
    cep_buf_reset(&r->plan);
    r->npieces = 0;
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const cep_redis_batch_t *b = batches[i];
        cep_buf_puts(&r->plan, "*1\r\n$5\r\nMULTI\r\n");
        if (b->replace_all) {
            cep_buf_puts(&r->plan, "*4\r\n$3\r\nDEL\r\n");
            for (int k = 0; k < LANE_COUNT; k++) put_key_bulk(&r->plan, ns, b->task, k);
        }
        for (int k = 0; k < LANE_COUNT; k++) {
            const lane_t *l = &b->lanes[k];
            for (size_t s = 0; s < l->nsegs; s++) {
                const seg_t *g = &l->segs[s];
                uint64_t args = 2 + (uint64_t)g->fields * (g->op == OP_HSET ? 2 : 1);
                put_head(&r->plan, '*', args);
                cep_buf_puts(&r->plan, g->op == OP_HSET ? "$4\r\nHSET\r\n" : "$4\r\nHDEL\r\n");
                put_key_bulk(&r->plan, ns, b->task, k);
                if (!plan_flush_headers(r, &from) || !plan_add(r, l->data.data, g->off, g->len))
                    return false;
            }
        }
        cep_buf_puts(&r->plan, "*1\r\n$4\r\nEXEC\r\n");
    }
    return plan_flush_headers(r, &from) && !r->plan.failed;
}

/* Read the replies of batch b's transaction. Server errors go to err (the
 * first one wins) and *bad is set; the replies are read to the end either
 * way so the connection stays in step. */
static io_result_t read_transaction(cep_redis_t *r, const char *ns, const cep_redis_batch_t *b,
                                    bool *bad, char *why, size_t cap, cep_error_t *err)
{
    size_t ncmd = batch_commands(b);
    char first_refusal[1024] = "";
    char desc[400];
    for (size_t j = 0; j < ncmd; j++) {
        redisReply *rep;
        if (read_reply(r, &rep, why, cap) != IO_OK) return IO_LOST;
        if (j == 0) {
            if (!reply_is_status(rep, "OK")) {
                *bad = true;
                cep_error_set(err, CEP_ERR_IO, NULL, "redis %s: task %d: MULTI failed: %s",
                              r->hostport, (int)b->task,
                              rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            }
        } else if (j + 1 < ncmd) {
            if (rep->type == REDIS_REPLY_ERROR && !first_refusal[0]) {
                batch_describe(b, ns, j, desc, sizeof desc);
                snprintf(first_refusal, sizeof first_refusal, "%s refused: %s", desc, rep->str);
            }
        } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == ncmd - 2) {
            for (size_t e = 0; e < rep->elements; e++) {
                if (rep->element[e]->type != REDIS_REPLY_ERROR) continue;
                *bad = true;
                batch_describe(b, ns, e + 1, desc, sizeof desc);
                cep_error_set(err, CEP_ERR_IO, NULL,
                              "redis %s: task %d: %s failed inside the transaction, the rest of "
                              "it was applied: %s",
                              r->hostport, (int)b->task, desc, rep->element[e]->str);
                break;
            }
        } else {
            *bad = true;
            cep_error_set(err, CEP_ERR_IO, NULL,
                          "redis %s: task %d: transaction discarded, nothing written: %s",
                          r->hostport, (int)b->task,
                          first_refusal[0]                   ? first_refusal
                          : rep->type == REDIS_REPLY_ERROR ? rep->str
                                                             : "unexpected reply to EXEC");
        }
        freeReplyObject(rep);
    }
    return IO_OK;
}

cep_status_t cep_redis_commit(cep_redis_t *r, const char *ns, cep_redis_batch_t *const *batches,
                              size_t n, cep_error_t *err)
{
    if (check_ns(ns, err) != CEP_OK) return CEP_ERR_ARG;
    size_t commands = 0;
    for (size_t i = 0; i < n; i++) {
        if (batches[i]->failed)
            return cep_error_set(err, CEP_ERR_NOMEM, NULL,
                                 "redis %s: task %d: out of memory while building the checkpoint",
                                 r->hostport, (int)batches[i]->task);
        commands += batch_commands(batches[i]);
    }
    if (n == 0) return CEP_OK;
    if (!plan_build(r, ns, batches, n))
        return cep_error_set(err, CEP_ERR_NOMEM, NULL, "redis %s: commit: out of memory",
                             r->hostport);

    char why[400], lost[256] = "";
    bool retried = false;
    for (;;) {
        if (conn_broken(r)) {
            cep_status_t st = reconnect(r, why, sizeof why);
            if (st != CEP_OK) {
                if (lost[0])
                    return cep_error_set(err, st, NULL, "redis %s: %s (reconnecting after: %s)",
                                         r->hostport, why, lost);
                return cep_error_set(err, st, NULL, "redis %s: %s", r->hostport, why);
            }
            retried = true;
        }
        r->stats.commands += commands;
        r->stats.round_trips++;
        /* server errors of this attempt only: a retry that works must not
         * report what the lost attempt saw */
        cep_error_t refused;
        cep_error_clear(&refused);
        bool bad = false;
        io_result_t io = send_pieces(r, r->pieces, r->npieces, lost, sizeof lost);
        for (size_t i = 0; i < n && io == IO_OK; i++)
            io = read_transaction(r, ns, batches[i], &bad, lost, sizeof lost, &refused);
        if (io == IO_OK) {
            if (!bad) return CEP_OK;
            return cep_error_set(err, refused.code, NULL, "%s", refused.msg);
        }
        drop_conn(r);
        if (retried)
            return cep_error_set(err, CEP_ERR_IO, NULL, "redis %s: commit: %s", r->hostport,
                                 lost);
        /* A checkpoint is idempotent (HSET/HDEL of final values, DEL before
         * a full replace), so writing all of it again is safe even if some
         * transactions had already run. */
    }
}

/* ---- load and drop ---------------------------------------------------------- */

static bool parse_offset(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = n > 0 && s[0] == '-';
    if (neg) i++;
    if (i == n || n - i > 19) return false;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (limit - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

/* Stream one hash through HSCAN; *delivered turns true at the first
 * callback (after which a lost connection is no longer retried: the
 * caller has seen part of the data and must start over). */
static cep_status_t scan_hash(cep_redis_t *r, const char *ns, int32_t task, int lane,
                              const cep_redis_loader_t *l, bool *delivered, cep_error_t *err)
{
    cep_buf_t key;
    cep_buf_init(&key);
    char tail[40];
    snprintf(tail, sizeof tail, ":{%d}:%s", (int)task, lane_suffix[lane]);
    cep_buf_puts(&key, ns);
    cep_buf_puts(&key, tail);
    cep_buf_cstr(&key); /* for error messages */
    if (key.failed) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");

    char cursor[32] = "0";
    cep_status_t st = CEP_OK;
    do {
        const char *argv[5] = {"HSCAN", key.data, cursor, "COUNT", "10000"};
        size_t lens[5] = {5, key.len, strlen(cursor), 5, 5};
        redisReply *rep = NULL;
        st = command(r, 5, argv, lens, !*delivered, "HSCAN", &rep, err);
        if (st != CEP_OK) break;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
            rep->element[0]->type != REDIS_REPLY_STRING || rep->element[0]->len >= sizeof cursor ||
            rep->element[1]->type != REDIS_REPLY_ARRAY || rep->element[1]->elements % 2) {
            st = cep_error_set(err, CEP_ERR_IO, NULL, "redis %s: HSCAN of '%s' failed: %s",
                               r->hostport, key.data,
                               rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
            freeReplyObject(rep);
            break;
        }
        memcpy(cursor, rep->element[0]->str, rep->element[0]->len);
        cursor[rep->element[0]->len] = 0;
        const redisReply *items = rep->element[1];
        for (size_t i = 0; i < items->elements && st == CEP_OK; i += 2) {
            const redisReply *f = items->element[i], *v = items->element[i + 1];
            bool ok;
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
                st = cep_error_set(err, CEP_ERR_IO, NULL,
                                   "redis %s: HSCAN of '%s': unexpected reply", r->hostport,
                                   key.data);
                break;
            }
            *delivered = true;
            if (lane == LANE_STATE) {
                ok = l->on_state(l->ctx, f->str, f->len, v->str, v->len);
            } else if (lane == LANE_META) {
                ok = l->on_meta(l->ctx, f->str, f->len, v->str, v->len);
            } else {
                int64_t off;
                if (!parse_offset(v->str, v->len, &off)) {
                    st = cep_error_set(err, CEP_ERR_DECODE, NULL,
                                       "redis %s: '%s' field '%s': '%.*s' is not an offset",
                                       r->hostport, key.data, f->str,
                                       (int)CEP_MIN(v->len, 40), v->str);
                    break;
                }
                ok = l->on_offset(l->ctx, f->str, off);
            }
            if (!ok) {
                cep_error_set(err, CEP_ERR_RUNTIME, NULL,
                              "redis %s: loading task %d: stopped by the caller at '%s'",
                              r->hostport, (int)task, key.data);
                st = err ? err->code : CEP_ERR_RUNTIME;
            }
        }
        freeReplyObject(rep);
    } while (st == CEP_OK && strcmp(cursor, "0") != 0);
    cep_buf_free(&key);
    return st;
}

cep_status_t cep_redis_load(cep_redis_t *r, const char *ns, int32_t task,
                            const cep_redis_loader_t *l, cep_error_t *err)
{
    if (check_ns(ns, err) != CEP_OK) return CEP_ERR_ARG;
    bool delivered = false;
    bool want[LANE_COUNT] = {
        [LANE_STATE] = l->on_state != NULL,
        [LANE_META] = l->on_meta != NULL,
        [LANE_OFFSETS] = l->on_offset != NULL,
    };
    for (int lane = 0; lane < LANE_COUNT; lane++) {
        if (!want[lane]) continue;
        cep_status_t st = scan_hash(r, ns, task, lane, l, &delivered, err);
        if (st != CEP_OK) return st;
    }
    return CEP_OK;
}

cep_status_t cep_redis_drop(cep_redis_t *r, const char *ns, int32_t task, cep_error_t *err)
{
    if (check_ns(ns, err) != CEP_OK) return CEP_ERR_ARG;
    cep_buf_t keys;
    cep_buf_init(&keys);
    size_t at[LANE_COUNT];
    for (int k = 0; k < LANE_COUNT; k++) {
        char tail[40];
        snprintf(tail, sizeof tail, ":{%d}:%s", (int)task, lane_suffix[k]);
        at[k] = keys.len;
        cep_buf_puts(&keys, ns);
        cep_buf_puts(&keys, tail);
    }
    if (keys.failed) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    const char *argv[1 + LANE_COUNT] = {"DEL"};
    size_t lens[1 + LANE_COUNT] = {3};
    for (int k = 0; k < LANE_COUNT; k++) {
        argv[1 + k] = keys.data + at[k];
        lens[1 + k] = (k + 1 < LANE_COUNT ? at[k + 1] : keys.len) - at[k];
    }
    redisReply *rep = NULL;
    cep_status_t st = command(r, 1 + LANE_COUNT, argv, lens, true, "DEL", &rep, err);
    if (st == CEP_OK && rep->type != REDIS_REPLY_INTEGER)
        st = cep_error_set(err, CEP_ERR_IO, NULL, "redis %s: dropping task %d: %s", r->hostport,
                           (int)task,
                           rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    if (rep) freeReplyObject(rep);
    cep_buf_free(&keys);
    return st;
}

cep_status_t cep_redis_get(cep_redis_t *r, const char *key, cep_buf_t *out, bool *found, cep_error_t *err)
{
    const char *argv[2] = {"GET", key};
    size_t lens[2] = {3, strlen(key)};
    redisReply *rep = NULL;
    *found = false;
    cep_status_t st = command(r, 2, argv, lens, true, "GET", &rep, err);
    if (st == CEP_OK && rep->type == REDIS_REPLY_STRING) {
        *found = true;
        cep_buf_put(out, rep->str, rep->len);
    } else if (st == CEP_OK && rep->type != REDIS_REPLY_NIL)
        st = cep_error_set(err, CEP_ERR_IO, NULL, "redis %s: GET %s: %s", r->hostport, key,
                           rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    if (rep) freeReplyObject(rep);
    return st;
}

cep_status_t cep_redis_set(cep_redis_t *r, const char *key, const void *val, size_t vlen, cep_error_t *err)
{
    const char *argv[3] = {"SET", key, val};
    size_t lens[3] = {3, strlen(key), vlen};
    redisReply *rep = NULL;
    cep_status_t st = command(r, 3, argv, lens, true, "SET", &rep, err);
    if (st == CEP_OK && rep->type == REDIS_REPLY_ERROR)
        st = cep_error_set(err, CEP_ERR_IO, NULL, "redis %s: SET %s: %s", r->hostport, key, rep->str);
    if (rep) freeReplyObject(rep);
    return st;
}

/* ---- the batch as a checkpoint sink ----------------------------------------------- */

static void sink_put(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    cep_redis_batch_put(ctx, id, idlen, val, vlen);
}

static void sink_del(void *ctx, const void *id, size_t idlen)
{
    cep_redis_batch_del(ctx, id, idlen);
}

static void sink_meta(void *ctx, const void *id, size_t idlen, const void *val, size_t vlen)
{
    cep_redis_batch_meta(ctx, id, idlen, val, vlen);
}

static void sink_meta_del(void *ctx, const void *id, size_t idlen)
{
    cep_redis_batch_meta_del(ctx, id, idlen);
}

cep_ckpt_sink_t cep_redis_batch_sink(cep_redis_batch_t *b)
{
    return (cep_ckpt_sink_t){.put = sink_put, .del = sink_del, .meta = sink_meta, .meta_del = sink_meta_del, .ctx = b};
}
