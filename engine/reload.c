/*
 * reload.c — hot reload (reload.h): the watcher thread that debounces and
 * compiles, and the hand-over to the event thread.
 *
 * Versions are handed over through one pending slot under a mutex, with an
 * atomic flag the event thread reads per record. A version compiled while
 * another still waits in the slot replaces it (it was compiled against it,
 * so its lineage is right whichever runs: origins are version numbers, and
 * a table of a version that never ran is simply not there, so rules new in
 * it start fresh). Old versions are freed on the watcher thread.
 */
#include "engine/reload.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct cep_reloader {
    char *path;      /* the pack */
    char *dir;       /* the folder watched */
    char *file;      /* a one-file pack: its name in dir; NULL for a folder */
    cep_reload_opts_t o;
    int ino, wd;     /* inotify, or -1 */
    int wake[2];     /* self-pipe: 'h' reload, 'f' free retired, 'q' quit */
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;
    cep_ruleset_t *running, *pending, *prev; /* prev: the version apply replaced last */
    cep_ruleset_t **retired;                 /* for the thread to free */
    uint32_t nretired, capretired;
    atomic_bool ready;
    cep_reload_stats_t st;

    /* cep_reloader_set_prepare; hook_mu is held while prepare runs */
    pthread_mutex_t hook_mu;
    cep_reload_prepare_fn prepare;
    cep_reload_release_fn release;
    void *hook_ctx;
    void *pending_prep, *taken_prep; /* under mu: the pending version's, the applied version's */
    void **retired_prep;
    uint32_t nretired_prep, capretired_prep;
};

static void say(cep_reloader_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(cep_reloader_t *r, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(r->o.log, "cep: reload: %s\n", line); /* one call: whole lines even with two threads */
    fflush(r->o.log);
}

/* ---- the watcher ------------------------------------------------------------- */

static void watch(cep_reloader_t *r)
{
    if (r->ino < 0 || r->wd >= 0) return;
    r->wd = inotify_add_watch(r->ino, r->dir,
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
                                  IN_MOVE_SELF);
}

/* Does this event change the pack? A one-file pack: that name (editors
 * that save by rename included). A folder: its .sql files, and the
 * "..data" link Kubernetes swaps when a ConfigMap changes. */
static bool relevant(const cep_reloader_t *r, const struct inotify_event *ev)
{
    if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) return true;
    if (!ev->len) return false;
    if (r->file) return !strcmp(ev->name, r->file);
    size_t n = strlen(ev->name);
    return (n > 4 && !strcmp(ev->name + n - 4, ".sql")) || !strcmp(ev->name, "..data");
}

static void log_change(void *ctx, const char *rule, cep_rule_change_t c, const char *version)
{
    cep_buf_t *b = ctx;
    if (c == CEP_RULE_SAME) return;
    if (c == CEP_RULE_REMOVED) cep_buf_printf(b, "cep: reload:   %s: %s\n", rule, cep_rule_change_name(c));
    else cep_buf_printf(b, "cep: reload:   %s: %s (rule_version %s)\n", rule, cep_rule_change_name(c), version);
}

static void compile_version(cep_reloader_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->st.requests++;
    const cep_ruleset_t *base = r->pending ? r->pending : r->running;
    pthread_mutex_unlock(&r->mu);
    /* base stays alive: only apply frees versions, and it never frees
     * the pending one or the one it makes running */
    cep_lineage_t l;
    cep_compile_opts_t co;
    cep_compile_opts_init(&co);
    if (cep_ruleset_lineage(base, &l) == CEP_OK) co.lineage = &l;
    uint64_t t0 = cep_now_ns();
    cep_ruleset_t *next = NULL;
    cep_error_t err;
    cep_error_clear(&err);
    cep_status_t st = cep_rules_compile_path(r->path, &co, &next, &err);
    uint64_t ns = cep_now_ns() - t0;
    if (co.lineage) cep_lineage_free(&l);
    pthread_mutex_lock(&r->mu);
    r->st.last_compile_ns = ns;
    if (st) r->st.failed++;
    else r->st.compiled++;
    pthread_mutex_unlock(&r->mu);
    if (st) {
        char buf[1100];
        say(r, "%s", cep_error_format(&err, buf, sizeof buf));
        say(r, "the new version does not compile; version %u goes on unchanged", base->version);
        return;
    }
    cep_buf_t log;
    cep_buf_init(&log);
    cep_buf_printf(&log, "cep: reload: version %u compiled in %.1f ms: %u rules, %u changed\n", next->version,
                   (double)ns / 1e6, cep_ruleset_query_count(next), cep_ruleset_diff(base, next, NULL, NULL));
    cep_ruleset_diff(base, next, log_change, &log);
    void *prep = NULL;
    pthread_mutex_lock(&r->hook_mu);
    if (r->prepare) {
        /* the version is prepared before it goes live: say so first */
        fputs(cep_buf_cstr(&log), r->o.log);
        fflush(r->o.log);
        cep_buf_reset(&log);
        pthread_mutex_lock(&r->mu);
        const cep_ruleset_t *running = r->running;
        pthread_mutex_unlock(&r->mu);
        /* running stays alive meanwhile: apply retires versions to this thread */
        prep = r->prepare(r->hook_ctx, next, running);
    }
    pthread_mutex_unlock(&r->hook_mu);
    pthread_mutex_lock(&r->mu);
    cep_ruleset_t *replaced = r->pending;
    void *replaced_prep = r->pending_prep;
    r->pending = next;
    r->pending_prep = prep;
    atomic_store_explicit(&r->ready, true, memory_order_release);
    /* logged before the event thread can take it (apply takes the lock):
     * "compiled" always comes before "live", and once "compiled" is out
     * the next record runs the new version */
    fputs(cep_buf_cstr(&log), r->o.log);
    fflush(r->o.log);
    pthread_mutex_unlock(&r->mu);
    cep_buf_free(&log);
    if (replaced_prep) { /* before its version: it runs on it */
        pthread_mutex_lock(&r->hook_mu);
        if (r->release) r->release(r->hook_ctx, replaced_prep);
        pthread_mutex_unlock(&r->hook_mu);
    }
    if (replaced) {
        say(r, "version %u replaces version %u, which had not started yet", next->version, replaced->version);
        cep_ruleset_free(replaced);
    }
}

/* Release what prepare made for versions that went live and are done with
 * it. Called with hook_mu held. */
static void release_retired_prep(cep_reloader_t *r)
{
    pthread_mutex_lock(&r->mu);
    void **list = r->retired_prep;
    uint32_t n = r->nretired_prep;
    r->retired_prep = NULL;
    r->nretired_prep = r->capretired_prep = 0;
    pthread_mutex_unlock(&r->mu);
    for (uint32_t i = 0; i < n; i++)
        if (r->release) r->release(r->hook_ctx, list[i]);
    free(list);
}

static void free_retired(cep_reloader_t *r)
{
    pthread_mutex_lock(&r->mu);
    cep_ruleset_t **list = r->retired;
    uint32_t n = r->nretired;
    r->retired = NULL;
    r->nretired = r->capretired = 0;
    pthread_mutex_unlock(&r->mu);
    /* what was prepared for a version runs on it: released first */
    pthread_mutex_lock(&r->hook_mu);
    release_retired_prep(r);
    pthread_mutex_unlock(&r->hook_mu);
    for (uint32_t i = 0; i < n; i++) cep_ruleset_free(list[i]);
    free(list);
}

static void *watcher(void *arg)
{
    cep_reloader_t *r = arg;
    bool dirty = false;
    uint64_t quiet_at = 0; /* when the last change happened */
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        watch(r); /* again, if the folder was replaced */
        struct pollfd fds[2] = {{.fd = r->wake[0], .events = POLLIN}, {.fd = r->ino, .events = POLLIN}};
        int timeout = -1;
        if (dirty) {
            uint64_t due = quiet_at + (uint64_t)r->o.debounce_ms * 1000000ULL, now = cep_now_ns();
            timeout = now >= due ? 0 : (int)((due - now) / 1000000ULL) + 1;
        }
        if (r->ino >= 0 && r->wd < 0 && (timeout < 0 || timeout > 500)) timeout = 500;
        int n = poll(fds, r->ino >= 0 ? 2 : 1, timeout);
        if (n < 0 && errno != EINTR) break;
        if (n > 0 && (fds[0].revents & POLLIN)) {
            char cmds[64];
            ssize_t k = read(r->wake[0], cmds, sizeof cmds);
            for (ssize_t i = 0; i < k; i++) {
                if (cmds[i] == 'q') return NULL;
                if (cmds[i] == 'f') free_retired(r);
                if (cmds[i] == 'h') {
                    dirty = true;
                    quiet_at = 0; /* asked for: no need to wait for quiet */
                }
            }
        }
        if (n > 0 && r->ino >= 0 && (fds[1].revents & POLLIN)) {
            ssize_t k = read(r->ino, buf, sizeof buf);
            for (char *p = buf; k > 0 && p < buf + k;) {
                const struct inotify_event *ev = (const struct inotify_event *)p;
                if (relevant(r, ev)) {
                    dirty = true;
                    quiet_at = cep_now_ns();
                }
                if (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
                    if (r->wd >= 0) inotify_rm_watch(r->ino, r->wd);
                    r->wd = -1;
                }
                p += sizeof *ev + ev->len;
            }
        }
        if (dirty && cep_now_ns() >= quiet_at + (uint64_t)r->o.debounce_ms * 1000000ULL) {
            dirty = false;
            struct stat sb;
            if (stat(r->path, &sb)) { /* mid-replace: the next event brings it back */
                say(r, "%s: %s; waiting for it to come back", r->path, strerror(errno));
                continue;
            }
            compile_version(r);
        }
    }
    return NULL;
}

/* ---- the reloader ------------------------------------------------------------- */

cep_status_t cep_reloader_new(const char *path, cep_ruleset_t *running, const cep_reload_opts_t *o,
                              cep_reloader_t **out, cep_error_t *err)
{
    cep_reloader_t *r = calloc(1, sizeof *r);
    if (!r) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    r->o = o ? *o : (cep_reload_opts_t){.watch = true};
    if (r->o.debounce_ms <= 0) r->o.debounce_ms = 200;
    if (!r->o.log) r->o.log = stderr;
    r->ino = r->wd = -1;
    r->wake[0] = r->wake[1] = -1;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->hook_mu, NULL);
    atomic_init(&r->ready, false);
    r->running = running;
    struct stat sb;
    r->path = strdup(path);
    if (!r->path || stat(path, &sb)) {
        cep_error_set(err, CEP_ERR_IO, NULL, "%s: %s", path, r->path ? strerror(errno) : "out of memory");
        r->running = NULL; /* still the caller's */
        cep_reloader_free(r);
        return CEP_ERR_IO;
    }
    if (S_ISDIR(sb.st_mode)) r->dir = strdup(path);
    else {
        const char *slash = strrchr(path, '/');
        r->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
        r->file = strdup(slash ? slash + 1 : path);
    }
    if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK)) {
        cep_error_set(err, CEP_ERR_IO, NULL, "reload: pipe: %s", strerror(errno));
        r->running = NULL;
        cep_reloader_free(r);
        return CEP_ERR_IO;
    }
    if (r->o.watch) {
        r->ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (r->ino < 0) say(r, "inotify: %s; reload on SIGHUP only", strerror(errno));
        watch(r);
        if (r->ino >= 0 && r->wd < 0) say(r, "cannot watch %s: %s; reload on SIGHUP only", r->dir, strerror(errno));
    }
    if (r->wd >= 0) say(r, "watching %s for changes (SIGHUP reloads too)", path);
    if (pthread_create(&r->thread, NULL, watcher, r)) {
        cep_error_set(err, CEP_ERR_IO, NULL, "reload: cannot start its thread");
        r->running = NULL;
        cep_reloader_free(r);
        return CEP_ERR_IO;
    }
    r->started = true;
    *out = r;
    return CEP_OK;
}

static void poke(const cep_reloader_t *r, char c)
{
    if (r->wake[1] >= 0) {
        ssize_t k = write(r->wake[1], &c, 1); /* a full pipe already holds a wake-up */
        (void)k;
    }
}

void cep_reloader_free(cep_reloader_t *r)
{
    if (!r) return;
    if (r->started) {
        poke(r, 'q');
        pthread_join(r->thread, NULL);
    }
    cep_reloader_set_prepare(r, NULL, NULL, NULL);
    free_retired(r);
    cep_ruleset_free(r->pending);
    cep_ruleset_free(r->prev);
    cep_ruleset_free(r->running);
    if (r->ino >= 0) close(r->ino);
    for (int i = 0; i < 2; i++)
        if (r->wake[i] >= 0) close(r->wake[i]);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->hook_mu);
    free(r->path);
    free(r->dir);
    free(r->file);
    free(r);
}

const cep_ruleset_t *cep_reloader_running(const cep_reloader_t *r)
{
    return r->running;
}

void cep_reloader_request(cep_reloader_t *r)
{
    poke(r, 'h');
}

/* SIGHUP has one process-wide handler; it reaches the reloader through
 * this pointer, set once before the handler is installed. */
static cep_reloader_t *volatile hup_target;

static void on_hup(int sig)
{
    (void)sig;
    if (hup_target) cep_reloader_request(hup_target);
}

void cep_reloader_trap_sighup(cep_reloader_t *r)
{
    hup_target = r;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = r ? on_hup : SIG_DFL;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
}

bool cep_reloader_ready(const cep_reloader_t *r)
{
    return atomic_load_explicit(&r->ready, memory_order_relaxed);
}

const cep_ruleset_t *cep_reloader_apply(cep_reloader_t *r, cep_runtime_t *rt, const char *position,
                                        const cep_ruleset_t **old_out)
{
    if (old_out) *old_out = NULL;
    pthread_mutex_lock(&r->mu);
    cep_ruleset_t *next = r->pending;
    void *prep = r->pending_prep;
    r->pending = NULL;
    r->pending_prep = NULL;
    atomic_store_explicit(&r->ready, false, memory_order_relaxed);
    pthread_mutex_unlock(&r->mu);
    if (!next) return r->running;
    cep_swap_stats_t ss;
    cep_error_t err;
    cep_error_clear(&err);
    uint32_t version = next->version; /* next may be freed by the watcher once retired */
    uint64_t t0 = cep_now_ns();
    cep_status_t st = cep_runtime_swap(rt, next, &ss, &err);
    uint64_t ns = cep_now_ns() - t0;
    cep_ruleset_t *gone = NULL;
    if (st && prep) { /* the version did not start: what was made for it goes before it */
        pthread_mutex_lock(&r->hook_mu);
        if (r->release) r->release(r->hook_ctx, prep);
        pthread_mutex_unlock(&r->hook_mu);
        prep = NULL;
    }
    pthread_mutex_lock(&r->mu);
    if (st) {
        gone = next;
    } else {
        r->taken_prep = prep, prep = NULL;
        gone = r->prev;
        r->prev = r->running;
        r->running = next;
        r->st.applied++;
        r->st.last_swap_ns = ns;
        if (ns > r->st.max_swap_ns) r->st.max_swap_ns = ns;
    }
    if (gone && r->nretired == r->capretired) {
        uint32_t cap = r->capretired ? 2 * r->capretired : 4;
        cep_ruleset_t **g = realloc(r->retired, cap * sizeof *g);
        if (g) r->retired = g, r->capretired = cap;
    }
    if (gone && r->nretired < r->capretired) r->retired[r->nretired++] = gone, gone = NULL;
    pthread_mutex_unlock(&r->mu);
    if (gone) cep_ruleset_free(gone); /* no room on the list: free it here */
    poke(r, 'f');
    if (st) {
        say(r, "version %u not started: %s; version %u goes on", version, err.msg, r->running->version);
        return r->running;
    }
    say(r, "version %u live from %s: swap %.3f ms, %llu state entries kept, %llu released", next->version,
        position ? position : "?", (double)ns / 1e6, (unsigned long long)ss.kept, (unsigned long long)ss.dropped);
    if (old_out) *old_out = r->prev;
    return next;
}

void cep_reloader_stats(const cep_reloader_t *r, cep_reload_stats_t *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&r->mu);
    *out = r->st;
    pthread_mutex_unlock((pthread_mutex_t *)&r->mu);
}

/* ---- preparing a version -------------------------------------------------------- */

void cep_reloader_set_prepare(cep_reloader_t *r, cep_reload_prepare_fn prepare, cep_reload_release_fn release,
                              void *ctx)
{
    pthread_mutex_lock(&r->hook_mu); /* waits for a prepare in flight */
    pthread_mutex_lock(&r->mu);
    void *held[2] = {r->pending_prep, r->taken_prep};
    r->pending_prep = r->taken_prep = NULL;
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < 2; i++)
        if (held[i] && r->release) r->release(r->hook_ctx, held[i]);
    release_retired_prep(r);
    r->prepare = prepare;
    r->release = release;
    r->hook_ctx = ctx;
    pthread_mutex_unlock(&r->hook_mu);
}

void *cep_reloader_take(cep_reloader_t *r)
{
    pthread_mutex_lock(&r->mu);
    void *p = r->taken_prep;
    r->taken_prep = NULL;
    pthread_mutex_unlock(&r->mu);
    return p;
}

void cep_reloader_retire(cep_reloader_t *r, void *prepared)
{
    if (!prepared) return;
    pthread_mutex_lock(&r->mu);
    if (r->nretired_prep == r->capretired_prep) {
        uint32_t cap = r->capretired_prep ? 2 * r->capretired_prep : 4;
        void **g = realloc(r->retired_prep, cap * sizeof *g);
        if (g) r->retired_prep = g, r->capretired_prep = cap;
    }
    bool queued = r->nretired_prep < r->capretired_prep;
    if (queued) r->retired_prep[r->nretired_prep++] = prepared;
    pthread_mutex_unlock(&r->mu);
    if (queued) poke(r, 'f');
    else { /* no room on the list: release it here */
        pthread_mutex_lock(&r->hook_mu);
        if (r->release) r->release(r->hook_ctx, prepared);
        pthread_mutex_unlock(&r->hook_mu);
    }
}
