/*
 * harness.c — see harness.h. No Test() here: only the helpers the other
 * patterns tests share.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/output.h"

static void collect(void *ctx, const cep_output_t *o)
{
    ut_run_t *r = ctx;
    cep_buf_t b;
    cep_buf_init(&b);
    cep_buf_puts(&b, o->sink->name);
    cep_buf_putc(&b, ' ');
    cep_output_key_json(o, &b);
    cep_buf_putc(&b, ' ');
    cep_output_value_json(o, &b);
    cep_buf_printf(&b, " ts=%lld", (long long)o->timestamp);
    if (o->windowed) cep_buf_printf(&b, " w=%lld,%lld", (long long)o->wstart, (long long)o->wend);
    if (r->nout == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->out = realloc(r->out, r->cap * sizeof *r->out);
        cr_assert_not_null(r->out);
    }
    r->out[r->nout++] = strdup(cep_buf_cstr(&b));
    cep_buf_free(&b);
}

void ut_run_open(ut_run_t *r, const char *sql)
{
    memset(r, 0, sizeof *r);
    cep_error_t err;
    cep_error_clear(&err);
    if (cep_rules_compile("test.sql", sql, strlen(sql), NULL, &r->rs, &err) != CEP_OK) {
        char buf[1024];
        cr_assert_fail("compile failed: %s", cep_error_format(&err, buf, sizeof buf));
    }
    r->rt = cep_runtime_new(r->rs, collect, r);
    cr_assert_not_null(r->rt);
}

static void forget(ut_run_t *r)
{
    for (size_t i = 0; i < r->nout; i++) free(r->out[i]);
    r->nout = 0;
}

void ut_run_close(ut_run_t *r)
{
    forget(r);
    free(r->out);
    cep_runtime_free(r->rt);
    cep_ruleset_free(r->rs);
    memset(r, 0, sizeof *r);
}

cep_status_t ut_push(ut_run_t *r, const char *topic, int64_t ts, const char *key, const char *value)
{
    cep_record_t rec = {.topic = topic, .timestamp = ts, .value = value,
                        .vlen = value ? strlen(value) : 0};
    if (key) {
        rec.key = key;
        rec.klen = strlen(key);
    }
    cep_error_t err;
    cep_error_clear(&err);
    return cep_runtime_push(r->rt, &rec, &err);
}

void ut_expect(ut_run_t *r, const char *const *want, size_t n)
{
    for (size_t i = 0; i < n && i < r->nout; i++)
        cr_expect_str_eq(r->out[i], want[i], "output %zu:\n  got  %s\n  want %s", i, r->out[i], want[i]);
    for (size_t i = n; i < r->nout; i++) cr_expect_fail("unexpected output %zu: %s", i, r->out[i]);
    for (size_t i = r->nout; i < n; i++) cr_expect_fail("missing output %zu: %s", i, want[i]);
    forget(r);
}

cep_status_t ut_compile_fail(const char *sql, cep_error_t *err)
{
    cep_error_clear(err);
    cep_ruleset_t *rs = NULL;
    cep_status_t st = cep_rules_compile("test.sql", sql, strlen(sql), NULL, &rs, err);
    cr_assert_neq(st, CEP_OK, "expected a compile error");
    cr_assert_null(rs);
    return st;
}
