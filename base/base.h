/*
 * base — the few things every module of cep stands on: the one error type
 * for everything a user can cause, bump arenas, growable byte buffers and
 * hashing. Nothing here knows about SQL, events or state.
 */
#ifndef CEP_BASE_H
#define CEP_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------ */

typedef enum cep_status {
    CEP_OK = 0,
    CEP_ERR_SYNTAX,      /* the SQL text does not parse */
    CEP_ERR_SEMANTIC,    /* it parses but means nothing: unknown column, bad type */
    CEP_ERR_UNSUPPORTED, /* valid ksqlDB/SQL that cep does not implement */
    CEP_ERR_DECODE,      /* an event that does not match its declared schema */
    CEP_ERR_RUNTIME,     /* an expression failed while evaluating a row */
    CEP_ERR_IO,          /* a file or socket failed */
    CEP_ERR_NOMEM,       /* an allocation failed */
    CEP_ERR_ARG,         /* the command line is wrong */
    CEP_STATUS_COUNT
} cep_status_t;

/* Where a diagnostic points: a file (borrowed, may be NULL), a 1-based line
 * and column, and the byte offset and length of the offending text. */
typedef struct cep_pos {
    const char *file;
    uint32_t line, col;
    uint32_t offset, length;
} cep_pos_t;

/* The one error type. The first error wins: once code != CEP_OK, further
 * cep_error_set calls are ignored, so the root cause is what users see. */
typedef struct cep_error {
    cep_status_t code;
    cep_pos_t pos;
    char file[256]; /* copy of pos.file, so the error outlives its source */
    char msg[512];
} cep_error_t;

/* Record an error (err may be NULL: then nothing is recorded). Returns code. */
cep_status_t cep_error_set(cep_error_t *err, cep_status_t code, const cep_pos_t *pos,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
cep_status_t cep_error_vset(cep_error_t *err, cep_status_t code, const cep_pos_t *pos,
                            const char *fmt, va_list ap);
void cep_error_clear(cep_error_t *err);
/* "file:line:col: message" (or just the message without a position) into buf. */
const char *cep_error_format(const cep_error_t *err, char *buf, size_t cap);
const char *cep_status_name(cep_status_t code);

/* ---- arenas ------------------------------------------------------------ */

/* A bump allocator: many small allocations, freed all at once. Used for the
 * AST (thrown away after compile), the compiled rule set (freed in one call)
 * and per-event scratch (reset after each event). */
typedef struct cep_arena_chunk cep_arena_chunk_t;
typedef struct cep_arena_cleanup cep_arena_cleanup_t;
typedef struct cep_arena {
    cep_arena_chunk_t *head;
    cep_arena_cleanup_t *cleanups; /* run by cep_arena_free, newest first */
    size_t chunk_size;
    size_t total; /* bytes handed out, for metrics */
} cep_arena_t;

void cep_arena_init(cep_arena_t *a, size_t chunk_size);
/* Returns NULL only when malloc fails. Memory is 16-byte aligned. */
void *cep_arena_alloc(cep_arena_t *a, size_t n);
void *cep_arena_zalloc(cep_arena_t *a, size_t n);
char *cep_arena_strndup(cep_arena_t *a, const char *s, size_t n);
char *cep_arena_strdup(cep_arena_t *a, const char *s);
char *cep_arena_printf(cep_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run fn(p) when the arena is freed: for memory owned by libraries
 * (pcre2 patterns) that the arena's owner must release with it. */
bool cep_arena_on_free(cep_arena_t *a, void (*fn)(void *), void *p);
/* Forget everything but keep the first chunk for reuse. */
void cep_arena_reset(cep_arena_t *a);
void cep_arena_free(cep_arena_t *a);

/* ---- byte buffers ------------------------------------------------------ */

typedef struct cep_buf {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed; contents are truncated */
} cep_buf_t;

void cep_buf_init(cep_buf_t *b);
void cep_buf_free(cep_buf_t *b);
void cep_buf_reset(cep_buf_t *b);
bool cep_buf_reserve(cep_buf_t *b, size_t extra);
void cep_buf_put(cep_buf_t *b, const void *p, size_t n);
void cep_buf_putc(cep_buf_t *b, char c);
void cep_buf_puts(cep_buf_t *b, const char *s);
void cep_buf_printf(cep_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* JSON string literal with quotes and escapes. */
void cep_buf_put_json_str(cep_buf_t *b, const char *s, size_t n);
void cep_buf_put_i64(cep_buf_t *b, int64_t v);
/* Shortest text that reads back as the same double, ksqlDB/Java style
 * (always with a '.', or in E notation). */
void cep_buf_put_double(cep_buf_t *b, double d);
/* NUL-terminates without counting the NUL in len. */
const char *cep_buf_cstr(cep_buf_t *b);

/* ---- hashing ----------------------------------------------------------- */

uint64_t cep_hash_bytes(const void *p, size_t n, uint64_t seed);
/* Hash of ASCII-case-folded bytes: equal for names that cep_str_ieq equates. */
static inline uint64_t cep_hash_fold(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 'a' && c <= 'z') c -= 32;
        h = (h ^ c) * 0x100000001b3ULL;
    }
    return h;
}
static inline uint64_t cep_hash_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* ---- small helpers ----------------------------------------------------- */

/* Event times and durations stay within ±8.64e15 ms (ECMAScript's Date
 * range), so sums of a time and a duration never overflow int64. */
#define CEP_TIME_LIMIT_MS 8640000000000000LL

#define CEP_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CEP_MIN(a, b)    ((a) < (b) ? (a) : (b))
#define CEP_MAX(a, b)    ((a) > (b) ? (a) : (b))

/* Case-insensitive ASCII compare of a counted string with a C string. */
bool cep_str_ieq(const char *a, size_t an, const char *b);
/* Monotonic clock in nanoseconds, for metrics and benchmarks only. */
uint64_t cep_now_ns(void);
/* Resident memory of this process in KiB (0 when unknown), for benchmarks. */
long cep_rss_kb(void);
/* A duration as people write it: "30 MINUTES", "1 hour", "90s", "500ms",
 * "2h", "1d" (units MILLISECOND(S)/ms, SECOND(S)/s, MINUTE(S)/m, HOUR(S)/h,
 * DAY(S)/d, WEEK(S)/w). false: not one, or beyond CEP_TIME_LIMIT_MS. */
bool cep_parse_duration(const char *s, int64_t *ms);
/* Read a whole file; caller frees *out with free(). */
cep_status_t cep_file_read(const char *path, char **out, size_t *len, cep_error_t *err);

#endif
