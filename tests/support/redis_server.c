/*
 * redis_server.c — a redis-server child process per test: picking a free
 * loopback port, starting the server with its files in a temporary
 * directory, waiting until it (and not some other test's server) answers,
 * stopping, pausing and restarting it.
 */
#include "tests/support/redis_server.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct cep_test_redis {
    pid_t pid; /* 0 while stopped */
    int port;
    bool persistent;
    char *password; /* NULL = none */
    char dir[256];
    char url[512];
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port nobody listens on right now: bind port 0 and read back what the
 * kernel chose. Someone may take it before the server binds it; start
 * notices (the server exits, or another process answers) and tries again. */
int cep_test_redis_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void print_log(const cep_test_redis_t *s)
{
    char path[300];
    snprintf(path, sizeof path, "%s/redis.log", s->dir);
    FILE *f = fopen(path, "r");
    if (!f) return;
    char line[512];
    fprintf(stderr, "--- %s ---\n", path);
    while (fgets(line, sizeof line, f)) fputs(line, stderr);
    fclose(f);
}

/* fork + exec redis-server; the child dies with the test process. */
static pid_t spawn(const cep_test_redis_t *s)
{
    char port[16], log[300];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(log, sizeof log, "%s/redis.log", s->dir);
    const char *argv[32];
    int n = 0;
    argv[n++] = "redis-server";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--dir";
    argv[n++] = s->dir;
    argv[n++] = "--logfile";
    argv[n++] = log;
    argv[n++] = "--daemonize";
    argv[n++] = "no";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = s->persistent ? "yes" : "no";
    if (s->persistent) {
        argv[n++] = "--appendfsync";
        argv[n++] = "always";
    }
    if (s->password) {
        argv[n++] = "--requirepass";
        argv[n++] = s->password;
    }
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) return pid; /* -1 on failure */
    /* the child: only async-signal-safe calls until exec */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(out >= 0 ? out : null, 2); /* config errors come before the log file opens */
    }
    execvp(argv[0], (char *const *)argv);
    execv("/usr/bin/redis-server", (char *const *)argv);
    _exit(127);
}

/* "process_id:N" from INFO server equals pid. */
static bool answers_as(const cep_test_redis_t *s, pid_t pid)
{
    redisContext *c = cep_test_redis_raw(s);
    if (!c) return false;
    bool ok = false;
    redisReply *r = redisCommand(c, "PING");
    if (r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) {
        freeReplyObject(r);
        r = redisCommand(c, "INFO server");
        const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "process_id:") : NULL;
        ok = p && atol(p + 11) == (long)pid;
    }
    if (r) freeReplyObject(r);
    redisFree(c);
    return ok;
}

typedef enum ready { READY, EXITED, TIMEOUT } ready_t;

static ready_t wait_ready(cep_test_redis_t *s)
{
    long long deadline = now_ms() + 5000;
    while (now_ms() < deadline) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            return EXITED;
        }
        if (answers_as(s, s->pid)) return READY;
        sleep_ms(10);
    }
    return TIMEOUT;
}

static void set_url(cep_test_redis_t *s)
{
    if (s->password)
        snprintf(s->url, sizeof s->url, "redis://:%s@127.0.0.1:%d", s->password, s->port);
    else
        snprintf(s->url, sizeof s->url, "redis://127.0.0.1:%d", s->port);
}

/* Start on s->port, or on fresh ports if that is 0 or gets taken. */
static bool launch(cep_test_redis_t *s, bool fixed_port)
{
    for (int attempt = 0; attempt < 20; attempt++) {
        if (!fixed_port) {
            s->port = cep_test_redis_free_port();
            if (s->port < 0) break;
        }
        set_url(s);
        s->pid = spawn(s);
        if (s->pid < 0) {
            s->pid = 0;
            fprintf(stderr, "redis-server: fork failed: %s\n", strerror(errno));
            return false;
        }
        ready_t r = wait_ready(s);
        if (r == READY) return true;
        if (r == TIMEOUT) {
            fprintf(stderr, "redis-server on port %d: no answer within 5 s\n", s->port);
            print_log(s);
            cep_test_redis_stop(s);
            return false;
        }
        /* it exited: most likely the port was taken; try another (or the
         * same one a little later) */
        cep_test_redis_stop(s);
        if (fixed_port) sleep_ms(100);
    }
    fprintf(stderr, "redis-server: could not start on %s port\n", fixed_port ? "its" : "any");
    print_log(s);
    return false;
}

static cep_test_redis_t *start(const char *password, bool persistent)
{
    cep_test_redis_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->persistent = persistent;
    if (password && !(s->password = strdup(password))) {
        free(s);
        return NULL;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/cep-redis-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "redis-server: mkdtemp %s: %s\n", s->dir, strerror(errno));
        free(s->password);
        free(s);
        return NULL;
    }
    if (!launch(s, false)) {
        cep_test_redis_free(s);
        return NULL;
    }
    return s;
}

cep_test_redis_t *cep_test_redis_start(const char *password)
{
    return start(password, false);
}

cep_test_redis_t *cep_test_redis_start_persistent(const char *password)
{
    return start(password, true);
}

const char *cep_test_redis_url(const cep_test_redis_t *s)
{
    return s->url;
}

int cep_test_redis_port(const cep_test_redis_t *s)
{
    return s->port;
}

const char *cep_test_redis_dir(const cep_test_redis_t *s)
{
    return s->dir;
}

void cep_test_redis_stop(cep_test_redis_t *s)
{
    if (!s->pid) return;
    kill(s->pid, SIGCONT); /* a paused server cannot act on SIGTERM */
    kill(s->pid, SIGTERM);
    long long deadline = now_ms() + 10000;
    int status;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        sleep_ms(5);
    }
    s->pid = 0;
}

bool cep_test_redis_restart(cep_test_redis_t *s)
{
    cep_test_redis_stop(s);
    return launch(s, true);
}

bool cep_test_redis_pause(cep_test_redis_t *s)
{
    return s->pid && kill(s->pid, SIGSTOP) == 0;
}

bool cep_test_redis_resume(cep_test_redis_t *s)
{
    return s->pid && kill(s->pid, SIGCONT) == 0;
}

redisContext *cep_test_redis_raw(const cep_test_redis_t *s)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", s->port, tv);
    if (!c || c->err) {
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (s->password) {
        redisReply *r = redisCommand(c, "AUTH %s", s->password);
        bool ok = r && r->type == REDIS_REPLY_STATUS;
        if (r) freeReplyObject(r);
        if (!ok) {
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

void cep_test_redis_free(cep_test_redis_t *s)
{
    if (!s) return;
    cep_test_redis_stop(s);
    if (s->dir[0]) nftw(s->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(s->password);
    free(s);
}
