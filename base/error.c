/*
 * error.c — the one error type: a status, a message and a source position.
 * The first error recorded wins, so a cascade of follow-up failures never
 * hides the root cause.
 */
#include "base.h"

#include <stdio.h>
#include <string.h>

static const char *const status_names[CEP_STATUS_COUNT] = {
    [CEP_OK] = "ok",
    [CEP_ERR_SYNTAX] = "syntax error",
    [CEP_ERR_SEMANTIC] = "semantic error",
    [CEP_ERR_UNSUPPORTED] = "unsupported",
    [CEP_ERR_DECODE] = "decode error",
    [CEP_ERR_RUNTIME] = "runtime error",
    [CEP_ERR_IO] = "i/o error",
    [CEP_ERR_NOMEM] = "out of memory",
    [CEP_ERR_ARG] = "usage error",
};
_Static_assert(CEP_ARRAY_LEN(status_names) == CEP_STATUS_COUNT, "status_names");

const char *cep_status_name(cep_status_t code)
{
    return (unsigned)code < CEP_STATUS_COUNT ? status_names[code] : "unknown";
}

cep_status_t cep_error_vset(cep_error_t *err, cep_status_t code, const cep_pos_t *pos,
                            const char *fmt, va_list ap)
{
    if (!err || err->code != CEP_OK) return code;
    err->code = code;
    memset(&err->pos, 0, sizeof err->pos);
    err->file[0] = 0;
    if (pos) {
        err->pos = *pos;
        if (pos->file) snprintf(err->file, sizeof err->file, "%s", pos->file);
        err->pos.file = err->file[0] ? err->file : NULL;
    }
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

cep_status_t cep_error_set(cep_error_t *err, cep_status_t code, const cep_pos_t *pos,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cep_error_vset(err, code, pos, fmt, ap);
    va_end(ap);
    return code;
}

void cep_error_clear(cep_error_t *err)
{
    /* not a memset of the whole struct: the decoder clears one per event */
    if (!err) return;
    err->code = CEP_OK;
    memset(&err->pos, 0, sizeof err->pos);
    err->file[0] = 0;
    err->msg[0] = 0;
}

const char *cep_error_format(const cep_error_t *err, char *buf, size_t cap)
{
    if (err->pos.line)
        snprintf(buf, cap, "%s:%u:%u: %s", err->file[0] ? err->file : "<input>", err->pos.line,
                 err->pos.col, err->msg);
    else if (err->file[0])
        snprintf(buf, cap, "%s: %s", err->file, err->msg);
    else
        snprintf(buf, cap, "%s", err->msg);
    return buf;
}
