/*
 * reload.h — hot reload of a running pack. A thread watches the pack
 * (inotify on its file or folder) and waits for SIGHUP; after a quiet
 * spell (the debounce, so a multi-file edit is one reload) it compiles the
 * new version with the running version's lineage, off the event thread.
 * A version that does not compile is logged with its file:line:col and
 * counted, and the running one goes on untouched. A version that compiles
 * is logged rule by rule (kept, reset, added, removed) and handed to the
 * event thread, which swaps it in between two records (cep_runtime_swap)
 * and gives the old one back to be freed.
 */
#ifndef CEP_RELOAD_H
#define CEP_RELOAD_H

#include "engine/runtime.h"
#include "patterns/rules.h"

#include <stdio.h>

typedef struct cep_reloader cep_reloader_t;

typedef struct cep_reload_opts {
    int debounce_ms; /* quiet time after the last change before compiling (default 200) */
    bool watch;      /* inotify on the pack; SIGHUP works either way */
    FILE *log;       /* reload log (default stderr) */
} cep_reload_opts_t;

typedef struct cep_reload_stats {
    uint64_t requests;  /* changes seen and SIGHUPs, after debouncing */
    uint64_t compiled;  /* versions that compiled */
    uint64_t failed;    /* versions that did not: the running one went on */
    uint64_t applied;   /* versions swapped in */
    uint64_t last_compile_ns, last_swap_ns, max_swap_ns;
} cep_reload_stats_t;

/* Watch path (the pack `running` was compiled from); running becomes the
 * reloader's: it frees every version once the event thread is done. */
cep_status_t cep_reloader_new(const char *path, cep_ruleset_t *running, const cep_reload_opts_t *o,
                              cep_reloader_t **out, cep_error_t *err);
/* Stop the thread, free every version. */
void cep_reloader_free(cep_reloader_t *r);
/* The version the event thread runs. */
const cep_ruleset_t *cep_reloader_running(const cep_reloader_t *r);
/* Ask for a reload now (async-signal-safe: SIGHUP's handler calls it). */
void cep_reloader_request(cep_reloader_t *r);
/* Route SIGHUP to r (NULL: back to the default). */
void cep_reloader_trap_sighup(cep_reloader_t *r);

/* Event thread, between two records: is a new version ready? One relaxed
 * atomic load when none is. */
bool cep_reloader_ready(const cep_reloader_t *r);
/* Event thread: swap the ready version into rt, log it with `position`
 * (where the input is: "line 1234", "ev[3]@5678") and free the old one.
 * Returns the version now running; *old_out (may be NULL) is the replaced
 * version, valid until the next call (to move per-rule counters over).
 * On failure (out of memory) the old version keeps running. */
const cep_ruleset_t *cep_reloader_apply(cep_reloader_t *r, cep_runtime_t *rt, const char *position,
                                        const cep_ruleset_t **old_out);
void cep_reloader_stats(const cep_reloader_t *r, cep_reload_stats_t *out);

/* ---- preparing a version before it goes live ---------------------------------
 *
 * The source may prepare each compiled version on the watcher thread
 * before it is handed over (engine/bootstrap.h: new and reset rules warm
 * their state from history). prepare gets the version and the one the
 * event thread runs; what it returns rides with the version, and the event
 * thread takes it right after apply (cep_reloader_take) and gives it back
 * when done (cep_reloader_retire); release frees it on the watcher thread.
 * Setting NULL waits for a prepare in flight and releases what is held:
 * afterwards ctx is no longer used. */
typedef void *(*cep_reload_prepare_fn)(void *ctx, const cep_ruleset_t *next, const cep_ruleset_t *running);
typedef void (*cep_reload_release_fn)(void *ctx, void *prepared);
void cep_reloader_set_prepare(cep_reloader_t *r, cep_reload_prepare_fn prepare, cep_reload_release_fn release,
                              void *ctx);
/* Event thread, right after cep_reloader_apply: what prepare made for the
 * version now running (NULL: nothing). */
void *cep_reloader_take(cep_reloader_t *r);
void cep_reloader_retire(cep_reloader_t *r, void *prepared);

#endif
