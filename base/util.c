/*
 * util.c — hashing, case-insensitive compare, clocks and whole-file reads.
 */
#include "base.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A 64-bit multiply-mix hash over 8-byte words; good spread for keys of a
 * few dozen bytes, which is what grouping keys are. */
uint64_t cep_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ cep_hash_mix(w)) * 0x9e3779b97f4a7c15ULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (size_t i = 0; i < n; i++) w |= (uint64_t)s[i] << (8 * i);
    h = (h ^ cep_hash_mix(w ^ n)) * 0x9e3779b97f4a7c15ULL;
    return cep_hash_mix(h);
}

bool cep_str_ieq(const char *a, size_t an, const char *b)
{
    /* ASCII folding: identifiers and JSON field names, independent of the locale */
    for (size_t i = 0; i < an; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (!y) return false;
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return false;
    }
    return b[an] == 0;
}

uint64_t cep_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

cep_status_t cep_file_read(const char *path, char **out, size_t *len, cep_error_t *err)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return cep_error_set(err, CEP_ERR_IO, NULL, "%s: %s", path, strerror(errno));
    cep_buf_t b;
    cep_buf_init(&b);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0) cep_buf_put(&b, tmp, n);
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (bad || b.failed) {
        cep_buf_free(&b);
        return cep_error_set(err, CEP_ERR_IO, NULL, "%s: read failed", path);
    }
    cep_buf_cstr(&b);
    if (!b.data) {
        b.data = calloc(1, 1);
        if (!b.data) return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
    }
    *out = b.data;
    *len = b.len;
    return CEP_OK;
}

long cep_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

bool cep_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *name;
        int64_t mult;
    } units[] = {{"ms", 1},        {"millisecond", 1}, {"milliseconds", 1}, {"s", 1000},       {"second", 1000},
                 {"seconds", 1000}, {"m", 60000},       {"minute", 60000},   {"minutes", 60000}, {"h", 3600000},
                 {"hour", 3600000}, {"hours", 3600000}, {"d", 86400000},     {"day", 86400000},  {"days", 86400000},
                 {"w", 604800000},  {"week", 604800000}, {"weeks", 604800000}};
    while (*s == ' ') s++;
    if (*s < '0' || *s > '9') return false;
    int64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > CEP_TIME_LIMIT_MS / 10) return false;
        v = v * 10 + (*s - '0');
    }
    while (*s == ' ') s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ') n--;
    for (size_t i = 0; i < CEP_ARRAY_LEN(units); i++)
        if (cep_str_ieq(s, n, units[i].name)) {
            if (v > CEP_TIME_LIMIT_MS / units[i].mult) return false;
            *ms = v * units[i].mult;
            return true;
        }
    return false;
}
