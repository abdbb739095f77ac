/*
 * values.c — value ordering, equality, hashing, numeric casts (with Java's
 * narrowing and BigDecimal rounding), and the JSON/DELIMITED text forms.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "patterns/value.h"

static cep_value_t dec(int64_t unscaled, int scale)
{
    cep_value_t v = cep_v_int(CEP_K_DECIMAL, unscaled);
    v.scale = (uint8_t)scale;
    return v;
}

static cep_value_t str(const char *s)
{
    return cep_v_str(s, strlen(s));
}

static const char *json(cep_buf_t *b, cep_value_t v)
{
    cep_buf_reset(b);
    cep_value_to_json(&v, b);
    return cep_buf_cstr(b);
}

static const char *text(cep_buf_t *b, cep_value_t v)
{
    cep_buf_reset(b);
    cep_value_to_text(&v, b);
    return cep_buf_cstr(b);
}

#define CMP(a, b) ({ cep_value_t x_ = (a), y_ = (b); cep_value_cmp(&x_, &y_); })

Test(values, numbers_compare_across_kinds)
{
    cr_assert_eq(CMP(cep_v_int(CEP_K_INT, 2), cep_v_int(CEP_K_BIGINT, 2)), 0);
    cr_assert_eq(CMP(cep_v_int(CEP_K_INT, 2), cep_v_double(2.5)), -1);
    cr_assert_eq(CMP(cep_v_double(2.5), cep_v_int(CEP_K_BIGINT, 2)), 1);
    cr_assert_eq(CMP(dec(150, 2), dec(15, 1)), 0, "1.50 = 1.5");
    cr_assert_eq(CMP(dec(151, 2), dec(15, 1)), 1);
    cr_assert_eq(CMP(dec(-5, 1), cep_v_int(CEP_K_INT, 0)), -1);
    cr_assert_eq(CMP(dec(25, 1), cep_v_double(2.5)), 0);
    /* no overflow when rescaling a large decimal */
    cr_assert_eq(CMP(dec(INT64_MAX, 0), dec(1, 18)), 1);
}

Test(values, null_sorts_first)
{
    cep_value_t n = cep_null();
    cr_assert_eq(CMP(n, cep_v_int(CEP_K_INT, INT32_MIN)), -1);
    cr_assert_eq(CMP(str(""), n), 1);
    cr_assert_eq(CMP(n, cep_null()), 0);
}

Test(values, strings_compare_bytewise_then_by_length)
{
    cr_assert_eq(CMP(str("abc"), str("abd")), -1);
    cr_assert_eq(CMP(str("ab"), str("abc")), -1);
    cr_assert_eq(CMP(str("b"), str("abc")), 1);
    cr_assert_eq(CMP(str(""), str("")), 0);
    cr_assert_eq(CMP(str("Z"), str("a")), -1, "case-sensitive: 'Z' < 'a'");
}

Test(values, booleans_and_nan)
{
    cr_assert_lt(CMP(cep_v_bool(false), cep_v_bool(true)), 0);
    cr_assert_eq(CMP(cep_v_bool(true), cep_v_bool(true)), 0);
    /* NaN sorts after every number and equals itself (a total order, as Java's Double.compare) */
    cr_assert_eq(CMP(cep_v_double(NAN), cep_v_double(INFINITY)), 1);
    cr_assert_eq(CMP(cep_v_double(NAN), cep_v_double(NAN)), 0);
}

Test(values, equal_values_hash_alike)
{
    cep_value_t pairs[][2] = {
        {cep_v_int(CEP_K_INT, 7), cep_v_int(CEP_K_BIGINT, 7)},
        {cep_v_int(CEP_K_INT, 7), cep_v_double(7.0)},
        {dec(700, 2), cep_v_int(CEP_K_BIGINT, 7)},
        {cep_v_double(0.0), cep_v_double(-0.0)},
        {str("key"), cep_v_str("key!", 3)},
    };
    for (size_t i = 0; i < CEP_ARRAY_LEN(pairs); i++) {
        cr_assert(cep_value_eq(&pairs[i][0], &pairs[i][1]), "pair %zu equal", i);
        cr_assert_eq(cep_value_hash(&pairs[i][0], 11), cep_value_hash(&pairs[i][1], 11),
                     "pair %zu hashes alike", i);
    }
    cep_value_t a = str("key"), b = str("kez");
    cr_assert_not(cep_value_eq(&a, &b));
    cr_assert_neq(cep_value_hash(&a, 11), cep_value_hash(&b, 11));
    cr_assert_neq(cep_value_hash(&a, 11), cep_value_hash(&a, 12), "the seed matters");
}

Test(values, timestamps_do_not_hash_like_numbers_of_other_kinds)
{
    cep_value_t ts = cep_v_int(CEP_K_TIMESTAMP, 1000), date = cep_v_int(CEP_K_DATE, 1000);
    cr_assert_neq(cep_value_hash(&ts, 0), cep_value_hash(&date, 0));
    cr_assert_neq(CMP(ts, date), 0);
}

Test(values, cast_narrowing_follows_java)
{
    const cep_type_t *I = &cep_type_int, *B = &cep_type_bigint;
    cep_value_t v;
#define CAST(x, t) (v = (x), cep_value_cast_num(&v, (t)))
    cr_assert_eq(CAST(cep_v_double(2.9), I).u.i, 2);
    cr_assert_eq(CAST(cep_v_double(-2.9), I).u.i, -2);
    cr_assert_eq(CAST(cep_v_double(2.9), I).kind, CEP_K_INT);
    /* (int)3e9 and (long)1e20 saturate in Java; NaN becomes 0 */
    cr_assert_eq(CAST(cep_v_double(3e9), I).u.i, INT32_MAX);
    cr_assert_eq(CAST(cep_v_double(-3e9), I).u.i, INT32_MIN);
    cr_assert_eq(CAST(cep_v_double(3e9), B).u.i, 3000000000LL);
    cr_assert_eq(CAST(cep_v_double(1e20), B).u.i, INT64_MAX);
    cr_assert_eq(CAST(cep_v_double(-1e20), B).u.i, INT64_MIN);
    cr_assert_eq(CAST(cep_v_double(NAN), I).u.i, 0);
    cr_assert_eq(CAST(cep_v_double(INFINITY), B).u.i, INT64_MAX);
    /* long to int wraps, as Java's (int) does */
    cr_assert_eq(CAST(cep_v_int(CEP_K_BIGINT, 4294967297LL), I).u.i, 1);
    /* BigDecimal.intValue truncates toward zero */
    cr_assert_eq(CAST(dec(-1999, 3), I).u.i, -1);
    cr_assert_eq(CAST(cep_null(), I).kind, CEP_K_NULL);
#undef CAST
}

Test(values, cast_to_decimal_rounds_half_up_from_the_shortest_decimal)
{
    cep_arena_t a;
    cep_arena_init(&a, 0);
    const cep_type_t *d2 = cep_type_new_decimal(&a, 6, 2);
    cep_value_t v, r;
#define TO_D2(x) (v = (x), r = cep_value_cast_num(&v, d2), r)
    /* BigDecimal.valueOf(1.005) is 1.005, which HALF_UP makes 1.01 */
    cr_assert_eq(TO_D2(cep_v_double(1.005)).u.i, 101);
    cr_assert_eq(r.kind, CEP_K_DECIMAL);
    cr_assert_eq(r.scale, 2);
    cr_assert_eq(TO_D2(cep_v_double(-1.005)).u.i, -101);
    cr_assert_eq(TO_D2(cep_v_double(2.675)).u.i, 268);
    cr_assert_eq(TO_D2(cep_v_double(0.004)).u.i, 0);
    cr_assert_eq(TO_D2(cep_v_double(12.5)).u.i, 1250);
    cr_assert_eq(TO_D2(cep_v_double(1e-30)).u.i, 0);
    cr_assert_eq(TO_D2(cep_v_int(CEP_K_INT, -7)).u.i, -700);
    cr_assert_eq(TO_D2(dec(12345, 3)).u.i, 1235, "12.345 -> 12.35");
    cr_assert_eq(TO_D2(dec(-12345, 3)).u.i, -1235, "-12.345 -> -12.35");
    cr_assert_eq(TO_D2(dec(5, 0)).u.i, 500);
    /* not representable: NULL rather than a wrapped number */
    cr_assert_eq(TO_D2(cep_v_double(1e20)).kind, CEP_K_NULL);
    cr_assert_eq(TO_D2(cep_v_double(NAN)).kind, CEP_K_NULL);
#undef TO_D2
    cep_arena_free(&a);
}

Test(values, as_double)
{
    cep_value_t v = dec(-125, 2);
    cr_assert_eq(cep_value_as_double(&v), -1.25);
    v = cep_v_int(CEP_K_BIGINT, 1LL << 40);
    cr_assert_eq(cep_value_as_double(&v), 1099511627776.0);
    v = cep_v_bool(true);
    cr_assert_eq(cep_value_as_double(&v), 1.0);
}

Test(values, json_forms)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(json(&b, cep_null()), "null");
    cr_assert_str_eq(json(&b, cep_v_bool(false)), "false");
    cr_assert_str_eq(json(&b, cep_v_int(CEP_K_BIGINT, -9000000000LL)), "-9000000000");
    cr_assert_str_eq(json(&b, cep_v_double(100.0)), "100.0");
    cr_assert_str_eq(json(&b, cep_v_double(1e-5)), "1.0E-5");
    cr_assert_str_eq(json(&b, cep_v_double(INFINITY)), "null");
    cr_assert_str_eq(json(&b, dec(-5, 2)), "-0.05");
    cr_assert_str_eq(json(&b, dec(12300, 2)), "123.00");
    cr_assert_str_eq(json(&b, dec(42, 0)), "42");
    cr_assert_str_eq(json(&b, str("a\"b")), "\"a\\\"b\"");
    cep_value_t bytes = {.kind = CEP_K_BYTES};
    bytes.u.s.p = "hi!?";
    bytes.u.s.n = 4;
    cr_assert_str_eq(json(&b, bytes), "\"aGkhPw==\"");
    cep_buf_free(&b);
}

Test(values, delimited_text_quotes_only_when_needed)
{
    cep_buf_t b;
    cep_buf_init(&b);
    cr_assert_str_eq(text(&b, cep_null()), "");
    cr_assert_str_eq(text(&b, str("plain text")), "plain text");
    cr_assert_str_eq(text(&b, str("a,b")), "\"a,b\"");
    cr_assert_str_eq(text(&b, str("say \"x\"")), "\"say \"\"x\"\"\"");
    cr_assert_str_eq(text(&b, cep_v_double(2.5)), "2.5");
    cr_assert_str_eq(text(&b, cep_v_int(CEP_K_INT, -3)), "-3");
    cep_buf_free(&b);
}

Test(values, base64_round_trip)
{
    const char *samples[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *encoded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    cep_buf_t b;
    cep_buf_init(&b);
    for (size_t i = 0; i < CEP_ARRAY_LEN(samples); i++) {
        cep_buf_reset(&b);
        cep_base64_encode((const unsigned char *)samples[i], strlen(samples[i]), &b);
        cr_assert_str_eq(cep_buf_cstr(&b), encoded[i]);
        unsigned char out[16];
        long n = cep_base64_decode(encoded[i], strlen(encoded[i]), out);
        cr_assert_eq(n, (long)strlen(samples[i]));
        cr_assert_eq(memcmp(out, samples[i], (size_t)n), 0);
    }
    unsigned char out[8];
    cr_assert_eq(cep_base64_decode("Zm9v!", 5, out), -1);
    cep_buf_free(&b);
}

Test(values, clone_is_deep_and_owned)
{
    char src[] = "transient";
    cep_value_t v = str(src);
    cep_value_t c = cep_value_clone(&v);
    memset(src, 'x', sizeof src - 1);
    cr_assert_eq(c.u.s.n, 9);
    cr_assert_eq(memcmp(c.u.s.p, "transient", 9), 0);
    cep_value_free_owned(&c);
    cr_assert_eq(c.kind, CEP_K_NULL);
}

Test(values, type_names_and_common_types)
{
    cep_arena_t a;
    cep_arena_init(&a, 0);
    cep_buf_t b;
    cep_buf_init(&b);
    const cep_type_t *d = cep_type_new_decimal(&a, 4, 2);
    cep_type_format(d, &b);
    cr_assert_str_eq(cep_buf_cstr(&b), "DECIMAL(4, 2)");
    cr_assert_eq(cep_type_common(&a, &cep_type_int, &cep_type_bigint), &cep_type_bigint);
    cr_assert_eq(cep_type_common(&a, &cep_type_int, &cep_type_double), &cep_type_double);
    cr_assert_eq(cep_type_common(&a, &cep_type_null, &cep_type_string), &cep_type_string);
    cr_assert_null(cep_type_common(&a, &cep_type_string, &cep_type_int));
    /* DECIMAL(4,2) with INT: 10 integer digits, scale 2 */
    const cep_type_t *c = cep_type_common(&a, d, &cep_type_int);
    cep_buf_reset(&b);
    cep_type_format(c, &b);
    cr_assert_str_eq(cep_buf_cstr(&b), "DECIMAL(12, 2)");
    cr_assert(cep_type_is_numeric(d));
    cr_assert_not(cep_type_is_integral(d));
    cr_assert(cep_type_is_integral(&cep_type_bigint));
    cr_assert_not(cep_type_is_numeric(&cep_type_timestamp));
    cep_buf_free(&b);
    cep_arena_free(&a);
}
