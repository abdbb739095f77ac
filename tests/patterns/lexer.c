/*
 * lexer.c — tokens carry kind, text and exact line/column/offset/length;
 * comments vanish; unterminated constructs fail at their opening position.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "patterns/lexer.h"

typedef struct lexed {
    cep_arena_t arena;
    cep_token_t *t;
    uint32_t n;
    cep_error_t err;
    cep_status_t st;
} lexed_t;

static void lex(lexed_t *l, const char *sql)
{
    cep_arena_init(&l->arena, 0);
    cep_error_clear(&l->err);
    l->t = NULL;
    l->n = 0;
    l->st = cep_lex(&l->arena, "q.sql", sql, strlen(sql), &l->t, &l->n, &l->err);
}

#define TOK(l, i, k, txt, ln, cl, off, len)                                                        \
    do {                                                                                           \
        const cep_token_t *t_ = &(l)->t[i];                                                        \
        cr_assert_eq(t_->kind, (k), "token %d kind %d", (i), t_->kind);                            \
        cr_assert_str_eq(t_->text, (txt), "token %d", (i));                                        \
        cr_assert_eq(t_->pos.line, (ln), "token %d line %u", (i), t_->pos.line);                   \
        cr_assert_eq(t_->pos.col, (cl), "token %d col %u", (i), t_->pos.col);                      \
        cr_assert_eq(t_->pos.offset, (off), "token %d offset %u", (i), t_->pos.offset);            \
        cr_assert_eq(t_->pos.length, (len), "token %d length %u", (i), t_->pos.length);            \
    } while (0)

Test(lexer, select_statement_positions)
{
    lexed_t l;
    lex(&l, "select a,\n  b2 from T;");
    cr_assert_eq(l.st, CEP_OK);
    cr_assert_eq(l.n, 8);
    TOK(&l, 0, TK_IDENT, "SELECT", 1, 1, 0, 6);
    TOK(&l, 1, TK_IDENT, "A", 1, 8, 7, 1);
    TOK(&l, 2, TK_COMMA, ",", 1, 9, 8, 1);
    TOK(&l, 3, TK_IDENT, "B2", 2, 3, 12, 2);
    TOK(&l, 4, TK_IDENT, "FROM", 2, 6, 15, 4);
    TOK(&l, 5, TK_IDENT, "T", 2, 11, 20, 1);
    TOK(&l, 6, TK_SEMI, ";", 2, 12, 21, 1);
    TOK(&l, 7, TK_EOF, "end of input", 2, 13, 22, 0);
    cr_assert_str_eq(l.t[0].pos.file, "q.sql");
    cep_arena_free(&l.arena);
}

Test(lexer, quoted_identifiers_keep_case_and_strings_unescape)
{
    lexed_t l;
    lex(&l, "`MixedCase` \"dq\"\"x\" 'it''s'");
    cr_assert_eq(l.st, CEP_OK);
    cr_assert_eq(l.n, 4);
    TOK(&l, 0, TK_QIDENT, "MixedCase", 1, 1, 0, 11);
    TOK(&l, 1, TK_QIDENT, "dq\"x", 1, 13, 12, 7);
    TOK(&l, 2, TK_STRING, "it's", 1, 21, 20, 7);
    cep_arena_free(&l.arena);
}

Test(lexer, numbers)
{
    lexed_t l;
    lex(&l, "42 1.5 .25 1e3 2.5E-2 7e");
    cr_assert_eq(l.st, CEP_OK);
    cr_assert_eq(l.n, 8);
    TOK(&l, 0, TK_INTEGER, "42", 1, 1, 0, 2);
    TOK(&l, 1, TK_DECIMAL, "1.5", 1, 4, 3, 3);
    TOK(&l, 2, TK_DECIMAL, ".25", 1, 8, 7, 3);
    TOK(&l, 3, TK_FLOAT, "1e3", 1, 12, 11, 3);
    TOK(&l, 4, TK_FLOAT, "2.5E-2", 1, 16, 15, 6);
    /* an exponent marker without digits is not part of the number */
    TOK(&l, 5, TK_INTEGER, "7", 1, 23, 22, 1);
    TOK(&l, 6, TK_IDENT, "E", 1, 24, 23, 1);
    cep_arena_free(&l.arena);
}

Test(lexer, two_character_operators)
{
    lexed_t l;
    lex(&l, "<> != <= >= -> := || < > = - | :");
    cr_assert_eq(l.st, CEP_OK);
    cep_tok_t want[] = {TK_NE,  TK_NE, TK_LE, TK_GE,    TK_ARROW, TK_ASSIGN, TK_CONCAT,
                        TK_LT,  TK_GT, TK_EQ, TK_MINUS, TK_PIPE,  TK_COLON,  TK_EOF};
    cr_assert_eq(l.n, CEP_ARRAY_LEN(want));
    for (uint32_t i = 0; i < l.n; i++) cr_assert_eq(l.t[i].kind, want[i], "token %u", i);
    TOK(&l, 1, TK_NE, "!=", 1, 4, 3, 2);
    TOK(&l, 6, TK_CONCAT, "||", 1, 19, 18, 2);
    cep_arena_free(&l.arena);
}

Test(lexer, line_comments_are_skipped)
{
    lexed_t l;
    lex(&l, "a -- b c\n-- whole line\n  d --trailing");
    cr_assert_eq(l.st, CEP_OK);
    cr_assert_eq(l.n, 3);
    TOK(&l, 0, TK_IDENT, "A", 1, 1, 0, 1);
    TOK(&l, 1, TK_IDENT, "D", 3, 3, 25, 1);
    cr_assert_eq(l.t[2].kind, TK_EOF);
    cep_arena_free(&l.arena);
}

Test(lexer, block_comments_track_lines)
{
    lexed_t l;
    lex(&l, "x /* one\n two\n */ y /**/z");
    cr_assert_eq(l.st, CEP_OK);
    cr_assert_eq(l.n, 4);
    TOK(&l, 0, TK_IDENT, "X", 1, 1, 0, 1);
    TOK(&l, 1, TK_IDENT, "Y", 3, 5, 18, 1);
    TOK(&l, 2, TK_IDENT, "Z", 3, 11, 24, 1);
    cep_arena_free(&l.arena);
}

Test(lexer, minus_minus_inside_string_is_not_a_comment)
{
    lexed_t l;
    lex(&l, "'a--b' '/*'");
    cr_assert_eq(l.st, CEP_OK);
    cr_assert_eq(l.n, 3);
    TOK(&l, 0, TK_STRING, "a--b", 1, 1, 0, 6);
    TOK(&l, 1, TK_STRING, "/*", 1, 8, 7, 4);
    cep_arena_free(&l.arena);
}

Test(lexer, unterminated_string_points_at_the_quote)
{
    lexed_t l;
    lex(&l, "SELECT\n  'abc");
    cr_assert_eq(l.st, CEP_ERR_SYNTAX);
    cr_assert_eq(l.err.code, CEP_ERR_SYNTAX);
    cr_assert_str_eq(l.err.msg, "unterminated string literal");
    cr_assert_eq(l.err.pos.line, 2);
    cr_assert_eq(l.err.pos.col, 3);
    cr_assert_eq(l.err.pos.offset, 9);
    char buf[128];
    cr_assert_str_eq(cep_error_format(&l.err, buf, sizeof buf),
                     "q.sql:2:3: unterminated string literal");
    cep_arena_free(&l.arena);
}

Test(lexer, unterminated_quoted_identifier)
{
    lexed_t l;
    lex(&l, "a `b");
    cr_assert_eq(l.st, CEP_ERR_SYNTAX);
    cr_assert_str_eq(l.err.msg, "unterminated quoted identifier");
    cr_assert_eq(l.err.pos.line, 1);
    cr_assert_eq(l.err.pos.col, 3);
    cep_arena_free(&l.arena);
}

Test(lexer, unterminated_block_comment)
{
    lexed_t l;
    lex(&l, "a\n b /* c */ d /* e");
    cr_assert_eq(l.st, CEP_ERR_SYNTAX);
    cr_assert_str_eq(l.err.msg, "unterminated /* comment");
    cr_assert_eq(l.err.pos.line, 2);
    cr_assert_eq(l.err.pos.col, 14);
    cr_assert_eq(l.err.pos.offset, 15);
    cr_assert_eq(l.err.pos.length, 2);
    cep_arena_free(&l.arena);

    lex(&l, "/*/");
    cr_assert_eq(l.st, CEP_ERR_SYNTAX, "'/*/' does not close itself");
    cep_arena_free(&l.arena);
}

Test(lexer, unexpected_character)
{
    lexed_t l;
    lex(&l, "a\n\tb # c");
    cr_assert_eq(l.st, CEP_ERR_SYNTAX);
    cr_assert_str_eq(l.err.msg, "unexpected character '#'");
    cr_assert_eq(l.err.pos.line, 2);
    cr_assert_eq(l.err.pos.col, 4);
    cep_arena_free(&l.arena);

    lex(&l, "a ! b");
    cr_assert_eq(l.st, CEP_ERR_SYNTAX);
    cr_assert_str_eq(l.err.msg, "unexpected character '!'");
    cr_assert_eq(l.err.pos.col, 3);
    cep_arena_free(&l.arena);
}

Test(lexer, empty_input_is_just_eof)
{
    lexed_t l;
    lex(&l, "  \n -- nothing\n");
    cr_assert_eq(l.st, CEP_OK);
    cr_assert_eq(l.n, 1);
    TOK(&l, 0, TK_EOF, "end of input", 3, 1, 15, 0);
    cep_arena_free(&l.arena);
}
