/*
 * buf.c — growable byte buffers and the text forms cep writes: JSON strings,
 * integers and doubles in the shape ksqlDB (Java) prints them.
 */
#include "base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cep_buf_init(cep_buf_t *b)
{
    memset(b, 0, sizeof *b);
}

void cep_buf_free(cep_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void cep_buf_reset(cep_buf_t *b)
{
    b->len = 0;
    b->failed = false;
}

bool cep_buf_reserve(cep_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void cep_buf_put(cep_buf_t *b, const void *p, size_t n)
{
    if (!cep_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void cep_buf_putc(cep_buf_t *b, char c)
{
    if (!cep_buf_reserve(b, 1)) return;
    b->data[b->len++] = c;
}

void cep_buf_puts(cep_buf_t *b, const char *s)
{
    cep_buf_put(b, s, strlen(s));
}

void cep_buf_printf(cep_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !cep_buf_reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void cep_buf_put_json_str(cep_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!cep_buf_reserve(b, n + 2)) return;
    cep_buf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        cep_buf_put(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': cep_buf_put(b, "\\\"", 2); break;
        case '\\': cep_buf_put(b, "\\\\", 2); break;
        case '\n': cep_buf_put(b, "\\n", 2); break;
        case '\r': cep_buf_put(b, "\\r", 2); break;
        case '\t': cep_buf_put(b, "\\t", 2); break;
        case '\b': cep_buf_put(b, "\\b", 2); break;
        case '\f': cep_buf_put(b, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            cep_buf_put(b, u, 6);
        }
        }
    }
    cep_buf_put(b, s + run, n - run);
    cep_buf_putc(b, '"');
}

void cep_buf_put_i64(cep_buf_t *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    cep_buf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* Java's Double.toString (JDK 19+): plain notation for 1e-3 <= |d| < 1e7
 * with at least one digit after the point, otherwise d.dddE[-]n; digits are
 * the shortest (but at least two) that read back as the same double. */
void cep_buf_put_double(cep_buf_t *b, double d)
{
    if (isnan(d)) {
        cep_buf_puts(b, "NaN");
        return;
    }
    if (isinf(d)) {
        cep_buf_puts(b, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (d == 0) {
        cep_buf_puts(b, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    char digits[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, d);
        if (strtod(digits, NULL) == d) break;
    }
    /* Java prints at least two significant digits and, among those, the
     * ones closest to the exact value: Double.MIN_VALUE is 4.9E-324, not
     * 5.0E-324. When one digit was enough, the correctly rounded two-digit
     * form is still a round trip (it is nearer to d), so take it. */
    if (prec == 1) snprintf(digits, sizeof digits, "%.1e", d);
    /* digits is [-]D[.DDD]e[+-]XX */
    const char *p = digits;
    bool neg = *p == '-';
    if (neg) p++;
    char mant[24];
    int nm = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') mant[nm++] = *p;
    while (nm > 1 && mant[nm - 1] == '0') nm--;
    int exp10 = atoi(p + 1);
    if (neg) cep_buf_putc(b, '-');
    double ad = fabs(d);
    if (ad >= 1e-3 && ad < 1e7) {
        if (exp10 >= 0) {
            for (int i = 0; i <= exp10; i++) cep_buf_putc(b, i < nm ? mant[i] : '0');
            cep_buf_putc(b, '.');
            if (nm > exp10 + 1)
                cep_buf_put(b, mant + exp10 + 1, (size_t)(nm - exp10 - 1));
            else
                cep_buf_putc(b, '0');
        } else {
            cep_buf_puts(b, "0.");
            for (int i = 0; i < -exp10 - 1; i++) cep_buf_putc(b, '0');
            cep_buf_put(b, mant, (size_t)nm);
        }
    } else {
        cep_buf_putc(b, mant[0]);
        cep_buf_putc(b, '.');
        if (nm > 1)
            cep_buf_put(b, mant + 1, (size_t)(nm - 1));
        else
            cep_buf_putc(b, '0');
        cep_buf_printf(b, "E%d", exp10);
    }
}

const char *cep_buf_cstr(cep_buf_t *b)
{
    if (!cep_buf_reserve(b, 0)) return "";
    b->data[b->len] = 0;
    return b->data;
}
