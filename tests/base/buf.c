/*
 * buf.c — growable buffers and the text forms cep writes: JSON strings,
 * integers, and doubles exactly as Java's Double.toString prints them
 * (the expected strings below are what JDK 25 prints for the same values).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "base/base.h"

static const char *dbl(cep_buf_t *b, double d)
{
    cep_buf_reset(b);
    cep_buf_put_double(b, d);
    return cep_buf_cstr(b);
}

static const char *jstr(cep_buf_t *b, const char *s, size_t n)
{
    cep_buf_reset(b);
    cep_buf_put_json_str(b, s, n);
    return cep_buf_cstr(b);
}

Test(buf, put_and_cstr)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(cep_buf_cstr(&b), "");
    cep_buf_puts(&b, "ab");
    cep_buf_putc(&b, 'c');
    cep_buf_put(&b, "d\0e", 3);
    cr_assert_eq(b.len, 6);
    cr_assert_eq(memcmp(b.data, "abcd\0e", 6), 0);
    cep_buf_printf(&b, "[%d:%s]", 7, "x");
    cr_assert_eq(b.len, 11);
    cr_assert_str_eq(cep_buf_cstr(&b) + 6, "[7:x]");
    cr_assert_eq(b.len, 11, "cstr does not count the NUL");
    cr_assert_not(b.failed);
    cep_buf_free(&b);
}

Test(buf, grows_past_initial_capacity)
{
    cep_buf_t b;
    cep_buf_init(&b);
    for (int i = 0; i < 10000; i++) cep_buf_putc(&b, (char)('a' + i % 26));
    cr_assert_eq(b.len, 10000);
    cr_assert_geq(b.cap, 10001);
    cr_assert_eq(b.data[9999], 'a' + 9999 % 26);
    cep_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_str_eq(cep_buf_cstr(&b), "");
    cep_buf_free(&b);
}

Test(buf, put_i64_extremes)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cep_buf_put_i64(&b, 0);
    cep_buf_putc(&b, ' ');
    cep_buf_put_i64(&b, -42);
    cep_buf_putc(&b, ' ');
    cep_buf_put_i64(&b, INT64_MAX);
    cep_buf_putc(&b, ' ');
    cep_buf_put_i64(&b, INT64_MIN);
    cr_assert_str_eq(cep_buf_cstr(&b), "0 -42 9223372036854775807 -9223372036854775808");
    cep_buf_free(&b);
}

Test(buf, json_string_plain_and_quotes)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(jstr(&b, "", 0), "\"\"");
    cr_assert_str_eq(jstr(&b, "abc", 3), "\"abc\"");
    cr_assert_str_eq(jstr(&b, "say \"hi\"", 8), "\"say \\\"hi\\\"\"");
    cr_assert_str_eq(jstr(&b, "a\\b", 3), "\"a\\\\b\"");
    cep_buf_free(&b);
}

Test(buf, json_string_control_characters)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(jstr(&b, "\n\r\t\b\f", 5), "\"\\n\\r\\t\\b\\f\"");
    cr_assert_str_eq(jstr(&b, "\x01x\x1f", 3), "\"\\u0001x\\u001f\"");
    /* NUL inside a counted string is escaped, not a terminator */
    cr_assert_str_eq(jstr(&b, "a\0b", 3), "\"a\\u0000b\"");
    /* DEL and UTF-8 pass through unchanged */
    cr_assert_str_eq(jstr(&b, "\x7f\xc3\xa9", 3), "\"\x7f\xc3\xa9\"");
    cep_buf_free(&b);
}

Test(buf, json_string_appends)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cep_buf_puts(&b, "{\"k\":");
    cep_buf_put_json_str(&b, "v\n", 2);
    cep_buf_putc(&b, '}');
    cr_assert_str_eq(cep_buf_cstr(&b), "{\"k\":\"v\\n\"}");
    cep_buf_free(&b);
}

Test(buf, double_plain_range)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(dbl(&b, 1.0), "1.0");
    cr_assert_str_eq(dbl(&b, 0.1), "0.1");
    cr_assert_str_eq(dbl(&b, 0.3), "0.3");
    cr_assert_str_eq(dbl(&b, 1.1), "1.1");
    cr_assert_str_eq(dbl(&b, -2.5), "-2.5");
    cr_assert_str_eq(dbl(&b, 100.0), "100.0");
    cr_assert_str_eq(dbl(&b, 100.5), "100.5");
    cr_assert_str_eq(dbl(&b, 12345.678), "12345.678");
    cr_assert_str_eq(dbl(&b, 1234567.0), "1234567.0");
    cr_assert_str_eq(dbl(&b, 9999999.0), "9999999.0");
    cr_assert_str_eq(dbl(&b, 0.001), "0.001");
    cr_assert_str_eq(dbl(&b, 0.002), "0.002");
    cr_assert_str_eq(dbl(&b, 1.0 / 3), "0.3333333333333333");
    cr_assert_str_eq(dbl(&b, 2.0 / 3), "0.6666666666666666");
    cep_buf_free(&b);
}

Test(buf, double_scientific_range)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(dbl(&b, 1.0E10), "1.0E10");
    cr_assert_str_eq(dbl(&b, 1.0E7), "1.0E7");
    cr_assert_str_eq(dbl(&b, 1.0E-5), "1.0E-5");
    cr_assert_str_eq(dbl(&b, 1.0E-4), "1.0E-4");
    cr_assert_str_eq(dbl(&b, 123456789.0), "1.23456789E8");
    cr_assert_str_eq(dbl(&b, -1.5E-7), "-1.5E-7");
    cr_assert_str_eq(dbl(&b, 1.0E21), "1.0E21");
    cr_assert_str_eq(dbl(&b, 2.0E22), "2.0E22");
    cr_assert_str_eq(dbl(&b, 6.02214076E23), "6.02214076E23");
    cr_assert_str_eq(dbl(&b, 1.0E-300), "1.0E-300");
    cr_assert_str_eq(dbl(&b, 1.7976931348623157E308), "1.7976931348623157E308");
    cep_buf_free(&b);
}

Test(buf, double_subnormals_take_two_closest_digits)
{
    cep_buf_t b;
    cep_buf_init(&b);
    /* Double.MIN_VALUE: one digit ("5") would round-trip, Java prints the
     * two-digit decimal nearest the exact value 4.94e-324 */
    cr_assert_str_eq(dbl(&b, 4.9E-324), "4.9E-324");
    cr_assert_str_eq(dbl(&b, 4.9E-324 * 3), "1.5E-323");
    cep_buf_free(&b);
}

Test(buf, double_specials)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(dbl(&b, 0.0), "0.0");
    cr_assert_str_eq(dbl(&b, -0.0), "-0.0");
    cr_assert_str_eq(dbl(&b, NAN), "NaN");
    cr_assert_str_eq(dbl(&b, INFINITY), "Infinity");
    cr_assert_str_eq(dbl(&b, -INFINITY), "-Infinity");
    cep_buf_free(&b);
}

Test(buf, double_round_trips)
{
    cep_buf_t b;
    cep_buf_init(&b);
    double v[] = {0.1 + 0.2, 1e-3 - 1e-19, 1e7 - 1e-9, 3.141592653589793, 5e-324 * 7, 123e45};
    for (size_t i = 0; i < CEP_ARRAY_LEN(v); i++) {
        const char *s = dbl(&b, v[i]);
        cr_assert_eq(strtod(s, NULL), v[i], "%s does not read back", s);
    }
    cr_assert_str_eq(dbl(&b, 0.1 + 0.2), "0.30000000000000004");
    cep_buf_free(&b);
}
