/*
 * agg.c — accumulators through their own interface: COUNT_DISTINCT's set
 * of fingerprints (exact for integers, -0.0 and NaN counted as one value,
 * retraction, session merge) and its checkpoint bytes, including the
 * older form that held the values themselves.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "patterns/agg.h"

static cep_aggspec_t distinct_of(const cep_type_t *t)
{
    return (cep_aggspec_t){.kind = AGG_COUNT_DISTINCT, .type = &cep_type_bigint, .arg_type = t, .ignore_nulls = true};
}

static int64_t count(const cep_aggspec_t *s, const cep_acc_t *a)
{
    cep_value_t v = cep_acc_result(s, a, NULL);
    cr_assert_eq(v.kind, CEP_K_BIGINT);
    return v.u.i;
}

Test(agg, count_distinct_integers_are_exact_where_doubles_are_not)
{
    cep_aggspec_t s = distinct_of(&cep_type_bigint);
    cep_acc_t a = {0};
    /* 2^60 + k are one double each: a set of doubles or of their hashes
     * would count 1; BIGINTs are 64 different values */
    for (int k = 0; k < 64; k++) {
        cep_value_t v = cep_v_int(CEP_K_BIGINT, (INT64_C(1) << 60) + k);
        cep_acc_add(&s, &a, &v, NULL, (uint64_t)k);
        cep_acc_add(&s, &a, &v, NULL, (uint64_t)k); /* again: no change */
    }
    cep_value_t null = cep_null();
    cep_acc_add(&s, &a, &null, NULL, 99);
    cr_assert_eq(count(&s, &a), 64);
    cep_value_t v = cep_v_int(CEP_K_BIGINT, (INT64_C(1) << 60) + 5);
    cep_acc_retract(&s, &a, &v, NULL);
    cr_assert_eq(count(&s, &a), 63);
    cep_acc_retract(&s, &a, &v, NULL); /* not there any more */
    cr_assert_eq(count(&s, &a), 63);
    cep_acc_free(&a);
}

Test(agg, count_distinct_doubles_and_strings)
{
    cep_aggspec_t s = distinct_of(&cep_type_double);
    cep_acc_t a = {0};
    double ds[] = {0.0, -0.0, NAN, -NAN, 1.5, 1.5, 2.5};
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++) {
        cep_value_t v = cep_v_double(ds[i]);
        cep_acc_add(&s, &a, &v, NULL, i);
    }
    cr_assert_eq(count(&s, &a), 4); /* 0, NaN, 1.5, 2.5: as = says */
    cep_acc_free(&a);

    cep_aggspec_t t = distinct_of(&cep_type_string);
    const char *ips[] = {"10.0.0.1", "10.0.0.10", "10.0.0.1", "", "10.0.0.2", ""};
    for (size_t i = 0; i < sizeof ips / sizeof *ips; i++) {
        cep_value_t v = cep_v_str(ips[i], strlen(ips[i]));
        cep_acc_add(&t, &a, &v, NULL, i);
    }
    cr_assert_eq(count(&t, &a), 4);
    cep_acc_free(&a);
}

Test(agg, count_distinct_sessions_merge_as_a_union)
{
    cep_aggspec_t s = distinct_of(&cep_type_string);
    cep_acc_t x = {0}, y = {0};
    const char *left[] = {"a", "b", "c"}, *right[] = {"c", "d"};
    for (int i = 0; i < 3; i++) {
        cep_value_t v = cep_v_str(left[i], 1);
        cep_acc_add(&s, &x, &v, NULL, 0);
    }
    for (int i = 0; i < 2; i++) {
        cep_value_t v = cep_v_str(right[i], 1);
        cep_acc_add(&s, &y, &v, NULL, 0);
    }
    cep_acc_merge(&s, &x, &y);
    cr_assert_eq(count(&s, &x), 4);
    cr_assert_eq(y.nitems, 0); /* from is left empty */
    cep_acc_free(&x);
}

Test(agg, count_distinct_checkpoint_round_trip_and_older_form)
{
    cep_aggspec_t s = distinct_of(&cep_type_string);
    cep_acc_t a = {0}, b;
    const char *ids[] = {"p-1", "p-22", "p-333"};
    for (int i = 0; i < 3; i++) {
        cep_value_t v = cep_v_str(ids[i], strlen(ids[i]));
        cep_acc_add(&s, &a, &v, NULL, 0);
    }
    cep_buf_t out;
    cep_buf_init(&out);
    cep_acc_save(&s, &a, &out);
    cep_dec_t d = cep_codec_reader(out.data, out.len);
    cr_assert(cep_acc_load(&s, &b, &d));
    cr_assert(cep_codec_done(&d));
    cr_assert_eq(count(&s, &b), 3);
    cep_value_t again = cep_v_str("p-22", 4), new = cep_v_str("p-4444", 6);
    cep_acc_add(&s, &b, &again, NULL, 0);
    cr_assert_eq(count(&s, &b), 3); /* the loaded set knows p-22 */
    cep_acc_add(&s, &b, &new, NULL, 0);
    cr_assert_eq(count(&s, &b), 4);
    cep_acc_free(&b);

    /* the form of earlier versions: n, sum, no v, then the values */
    cep_buf_reset(&out);
    cep_codec_put_i64(&out, 0);
    cep_codec_put_i64(&out, 0);
    cep_codec_put_u64(&out, 0);
    cep_codec_put_u64(&out, 3);
    cep_codec_put_u64(&out, 0);
    for (int i = 0; i < 3; i++) {
        cep_value_t v = cep_v_str(ids[i], strlen(ids[i]));
        cep_codec_put_value(&out, &v);
    }
    d = cep_codec_reader(out.data, out.len);
    cr_assert(cep_acc_load(&s, &b, &d));
    cr_assert(cep_codec_done(&d));
    cr_assert_eq(count(&s, &b), 3);
    cr_assert_null(b.items);
    cep_acc_add(&s, &b, &again, NULL, 0);
    cr_assert_eq(count(&s, &b), 3);
    cep_acc_free(&b);

    /* fingerprints where a list's values belong: refused */
    cep_aggspec_t list = {.kind = AGG_COLLECT_LIST, .type = &cep_type_string, .arg_type = &cep_type_string};
    cep_buf_reset(&out);
    cep_acc_save(&s, &a, &out);
    d = cep_codec_reader(out.data, out.len);
    cr_assert_not(cep_acc_load(&list, &b, &d));
    cep_acc_free(&b);
    cep_acc_free(&a);
    cep_buf_free(&out);
}
