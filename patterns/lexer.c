/*
 * lexer.c — SQL text to tokens, each carrying its file, line, column and
 * byte range so every diagnostic can point at the source. Unquoted
 * identifiers are upper-cased here (ksqlDB's rule); keywords are not
 * reserved by the lexer, the parser decides from context.
 */
#include "patterns/lexer.h"

#include <ctype.h>
#include <string.h>

static bool is_ident_start(unsigned char c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static bool is_ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '@' || c >= 0x80;
}

typedef struct lexer {
    cep_arena_t *arena;
    const char *file, *src, *end, *p;
    uint32_t line;
    const char *line_start;
    cep_token_t *toks;
    uint32_t n, cap;
    cep_error_t *err;
} lexer_t;

static cep_pos_t pos_at(const lexer_t *lx, const char *at, size_t len)
{
    cep_pos_t pos = {.file = lx->file,
                     .line = lx->line,
                     .col = (uint32_t)(at - lx->line_start) + 1,
                     .offset = (uint32_t)(at - lx->src),
                     .length = (uint32_t)len};
    return pos;
}

static bool push(lexer_t *lx, cep_tok_t kind, const char *start, const char *text, size_t len,
                 cep_pos_t pos)
{
    if (lx->n == lx->cap) {
        uint32_t cap = lx->cap ? lx->cap * 2 : 256;
        cep_token_t *t = cep_arena_alloc(lx->arena, cap * sizeof *t);
        if (!t) return false;
        if (lx->n) memcpy(t, lx->toks, lx->n * sizeof *t);
        lx->toks = t;
        lx->cap = cap;
    }
    (void)start;
    cep_token_t *t = &lx->toks[lx->n++];
    t->kind = kind;
    t->text = text ? text : "";
    (void)len;
    t->pos = pos;
    return true;
}

/* Advance over a newline-aware span, keeping line/column bookkeeping. */
static void advance_to(lexer_t *lx, const char *to)
{
    for (const char *q = lx->p; q < to; q++)
        if (*q == '\n') {
            lx->line++;
            lx->line_start = q + 1;
        }
    lx->p = to;
}

cep_status_t cep_lex(cep_arena_t *arena, const char *file, const char *sql, size_t len,
                     cep_token_t **out, uint32_t *nout, cep_error_t *err)
{
    lexer_t lx = {.arena = arena,
                  .file = file,
                  .src = sql,
                  .end = sql + len,
                  .p = sql,
                  .line = 1,
                  .line_start = sql,
                  .err = err};
    while (lx.p < lx.end) {
        const char *s = lx.p;
        unsigned char c = (unsigned char)*s;
        if (isspace(c)) {
            advance_to(&lx, s + 1);
            continue;
        }
        if (c == '-' && s + 1 < lx.end && s[1] == '-') {
            const char *e = memchr(s, '\n', (size_t)(lx.end - s));
            advance_to(&lx, e ? e : lx.end);
            continue;
        }
        if (c == '/' && s + 1 < lx.end && s[1] == '*') {
            const char *e = s + 2;
            while (e + 1 < lx.end && !(e[0] == '*' && e[1] == '/')) e++;
            if (e + 1 >= lx.end) {
                cep_pos_t pos = pos_at(&lx, s, 2);
                return cep_error_set(err, CEP_ERR_SYNTAX, &pos, "unterminated /* comment");
            }
            advance_to(&lx, e + 2);
            continue;
        }
        cep_pos_t pos = pos_at(&lx, s, 1);
        if (is_ident_start(c)) {
            const char *e = s + 1;
            while (e < lx.end && is_ident_char((unsigned char)*e)) e++;
            char *text = cep_arena_strndup(arena, s, (size_t)(e - s));
            if (!text) return cep_error_set(err, CEP_ERR_NOMEM, &pos, "out of memory");
            for (char *q = text; *q; q++) *q = (char)toupper((unsigned char)*q);
            pos.length = (uint32_t)(e - s);
            if (!push(&lx, TK_IDENT, s, text, (size_t)(e - s), pos)) goto nomem;
            advance_to(&lx, e);
            continue;
        }
        if (isdigit(c) || (c == '.' && s + 1 < lx.end && isdigit((unsigned char)s[1]))) {
            const char *e = s;
            cep_tok_t kind = TK_INTEGER;
            while (e < lx.end && isdigit((unsigned char)*e)) e++;
            if (e < lx.end && *e == '.') {
                kind = TK_DECIMAL;
                e++;
                while (e < lx.end && isdigit((unsigned char)*e)) e++;
            }
            if (e < lx.end && (*e == 'e' || *e == 'E')) {
                const char *x = e + 1;
                if (x < lx.end && (*x == '+' || *x == '-')) x++;
                if (x < lx.end && isdigit((unsigned char)*x)) {
                    kind = TK_FLOAT;
                    e = x;
                    while (e < lx.end && isdigit((unsigned char)*e)) e++;
                }
            }
            pos.length = (uint32_t)(e - s);
            char *text = cep_arena_strndup(arena, s, (size_t)(e - s));
            if (!text || !push(&lx, kind, s, text, (size_t)(e - s), pos)) goto nomem;
            advance_to(&lx, e);
            continue;
        }
        if (c == '\'' || c == '`' || c == '"') {
            /* strings ('..'), quoted identifiers (`..` ksqlDB, ".." SQL) */
            char q = (char)c;
            cep_buf_t b;
            cep_buf_init(&b);
            const char *e = s + 1;
            bool closed = false;
            while (e < lx.end) {
                if (*e == q) {
                    if (e + 1 < lx.end && e[1] == q) {
                        cep_buf_putc(&b, q);
                        e += 2;
                        continue;
                    }
                    closed = true;
                    e++;
                    break;
                }
                cep_buf_putc(&b, *e++);
            }
            if (!closed) {
                cep_buf_free(&b);
                return cep_error_set(err, CEP_ERR_SYNTAX, &pos, "unterminated %s",
                                     q == '\'' ? "string literal" : "quoted identifier");
            }
            char *text = cep_arena_strndup(arena, b.data ? b.data : "", b.len);
            cep_buf_free(&b);
            pos.length = (uint32_t)(e - s);
            if (!text || !push(&lx, q == '\'' ? TK_STRING : TK_QIDENT, s, text, 0, pos))
                goto nomem;
            advance_to(&lx, e);
            continue;
        }
        cep_tok_t kind = TK_ERROR;
        size_t n = 1;
        char c2 = s + 1 < lx.end ? s[1] : 0;
        switch (c) {
        case '(': kind = TK_LPAREN; break;
        case ')': kind = TK_RPAREN; break;
        case '[': kind = TK_LBRACKET; break;
        case ']': kind = TK_RBRACKET; break;
        case '{': kind = TK_LBRACE; break;
        case '}': kind = TK_RBRACE; break;
        case ',': kind = TK_COMMA; break;
        case ';': kind = TK_SEMI; break;
        case '.': kind = TK_DOT; break;
        case '*': kind = TK_STAR; break;
        case '+': kind = TK_PLUS; break;
        case '/': kind = TK_SLASH; break;
        case '%': kind = TK_PERCENT; break;
        case '?': kind = TK_QMARK; break;
        case '^': kind = TK_CARET; break;
        case '$': kind = TK_DOLLAR; break;
        case '=': kind = TK_EQ; break;
        case '-':
            if (c2 == '>') kind = TK_ARROW, n = 2;
            else kind = TK_MINUS;
            break;
        case ':':
            if (c2 == '=') kind = TK_ASSIGN, n = 2;
            else kind = TK_COLON;
            break;
        case '|':
            if (c2 == '|') kind = TK_CONCAT, n = 2;
            else kind = TK_PIPE;
            break;
        case '!':
            if (c2 == '=') kind = TK_NE, n = 2;
            break;
        case '<':
            if (c2 == '=') kind = TK_LE, n = 2;
            else if (c2 == '>') kind = TK_NE, n = 2;
            else kind = TK_LT;
            break;
        case '>':
            if (c2 == '=') kind = TK_GE, n = 2;
            else kind = TK_GT;
            break;
        default: break;
        }
        if (kind == TK_ERROR)
            return cep_error_set(err, CEP_ERR_SYNTAX, &pos, "unexpected character '%c'", c);
        pos.length = (uint32_t)n;
        char *text = cep_arena_strndup(arena, s, n);
        if (!text || !push(&lx, kind, s, text, n, pos)) goto nomem;
        advance_to(&lx, s + n);
    }
    cep_pos_t pos = pos_at(&lx, lx.end, 0);
    if (!push(&lx, TK_EOF, lx.end, "end of input", 0, pos)) goto nomem;
    *out = lx.toks;
    *nout = lx.n;
    return CEP_OK;
nomem:
    return cep_error_set(err, CEP_ERR_NOMEM, NULL, "out of memory");
}
