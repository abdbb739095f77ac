/*
 * lexer.h — tokenizer of the rule language (internal to patterns/).
 */
#ifndef CEP_LEXER_H
#define CEP_LEXER_H

#include "patterns/ast.h"

/* Tokenize sql[0..len) into an arena array ending with TK_EOF. */
cep_status_t cep_lex(cep_arena_t *arena, const char *file, const char *sql, size_t len,
                     cep_token_t **out, uint32_t *nout, cep_error_t *err);

#endif
