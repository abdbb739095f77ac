/*
 * regex.h — REGEXP_* functions on pcre2, JIT-compiled once per call site
 * when the pattern is a constant, with match and depth limits so a hostile
 * pattern or input cannot stall the engine. Internal to patterns/.
 */
#ifndef CEP_REGEX_H
#define CEP_REGEX_H

#include "patterns/expr.h"

void *cep_regex_prepare_like(cep_arena_t *a, const cep_value_t *const *consts, int n,
                             const cep_pos_t *pos, cep_error_t *err);
void *cep_regex_prepare_extract(cep_arena_t *a, const cep_value_t *const *consts, int n,
                                const cep_pos_t *pos, cep_error_t *err);
void *cep_regex_prepare_replace(cep_arena_t *a, const cep_value_t *const *consts, int n,
                                const cep_pos_t *pos, cep_error_t *err);
bool cep_regex_like_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out);
bool cep_regex_extract_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out);
bool cep_regex_extract_all_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n,
                                cep_value_t *out);
bool cep_regex_replace_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out);
bool cep_regex_split_eval(cep_eval_t *ctx, const void *st, cep_value_t *args, int n, cep_value_t *out);

#endif
