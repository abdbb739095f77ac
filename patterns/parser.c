/*
 * parser.c — recursive-descent parser for the ksqlDB dialect (CREATE
 * STREAM/TABLE, CSAS/CTAS, INSERT INTO, windowed SELECT). Keywords are
 * contextual: a word is a keyword only where the grammar expects one, so
 * columns named COUNT, VALUE or WINDOW still work. The grammar is written
 * out in docs/GRAMMAR.md; tests keep the two in agreement.
 *
 * Errors stop at the first problem and name what was expected.
 */
#include "patterns/lexer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
    cep_arena_t *a;
    cep_token_t *t;
    uint32_t n, i;
    const char *src;
    cep_error_t *err;
    bool failed;
} parser_t;

/* Words that end an expression or select item: never read as an alias. */
static const char *const reserved[] = {
    "SELECT", "FROM",    "WHERE", "GROUP",  "BY",     "HAVING",  "WINDOW", "EMIT",
    "PARTITION", "AS",   "AND",   "OR",     "NOT",    "IN",      "IS",     "NULL",
    "LIKE",   "BETWEEN", "CASE",  "WHEN",   "THEN",   "ELSE",    "END",    "ON",
    "JOIN",   "LIMIT",   "ORDER", "WITH",   "ESCAPE", "MATCH_RECOGNIZE", "MEASURES",
    "PATTERN", "DEFINE", "WITHIN", "OVER",  "INTO",   "TRUE",    "FALSE",  "DISTINCT",
    "LEFT",   "INNER",   "FULL",  "RIGHT",  "CREATE", "INSERT",  "SUBSET", "AFTER",
};

static bool is_reserved(const char *w)
{
    for (size_t i = 0; i < CEP_ARRAY_LEN(reserved); i++)
        if (!strcmp(w, reserved[i])) return true;
    return false;
}

static cep_token_t *peek(parser_t *p)
{
    return &p->t[p->i];
}

static cep_token_t *peek_at(parser_t *p, uint32_t k)
{
    return &p->t[p->i + k < p->n ? p->i + k : p->n - 1];
}

static cep_token_t *next(parser_t *p)
{
    cep_token_t *t = &p->t[p->i];
    if (t->kind != TK_EOF) p->i++;
    return t;
}

static bool fail(parser_t *p, const cep_token_t *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(parser_t *p, const cep_token_t *t, const char *fmt, ...)
{
    if (p->failed) return false;
    p->failed = true;
    va_list ap;
    va_start(ap, fmt);
    cep_error_vset(p->err, CEP_ERR_SYNTAX, &t->pos, fmt, ap);
    va_end(ap);
    return false;
}

static const char *tok_desc(const cep_token_t *t, char *buf, size_t cap)
{
    if (t->kind == TK_EOF) return "end of input";
    snprintf(buf, cap, "'%s'", t->text);
    return buf;
}

static bool expected(parser_t *p, const char *what)
{
    char b[80];
    return fail(p, peek(p), "expected %s but found %s", what, tok_desc(peek(p), b, sizeof b));
}

static bool is_kw(const cep_token_t *t, const char *kw)
{
    return t->kind == TK_IDENT && !strcmp(t->text, kw);
}

static bool accept_kw(parser_t *p, const char *kw)
{
    if (is_kw(peek(p), kw)) {
        next(p);
        return true;
    }
    return false;
}

static bool expect_kw(parser_t *p, const char *kw)
{
    if (accept_kw(p, kw)) return true;
    char what[64];
    snprintf(what, sizeof what, "%s", kw);
    return expected(p, what);
}

static bool accept(parser_t *p, cep_tok_t k)
{
    if (peek(p)->kind == k) {
        next(p);
        return true;
    }
    return false;
}

static bool expect(parser_t *p, cep_tok_t k, const char *what)
{
    if (accept(p, k)) return true;
    return expected(p, what);
}

static void *alloc(parser_t *p, size_t n)
{
    void *m = cep_arena_zalloc(p->a, n);
    if (!m && !p->failed) {
        p->failed = true;
        cep_error_set(p->err, CEP_ERR_NOMEM, NULL, "out of memory");
    }
    return m;
}

/* Growable arrays of pointers in the arena. */
typedef struct vec {
    void **v;
    uint32_t n, cap;
} vec_t;

static bool vec_push(parser_t *p, vec_t *v, void *x)
{
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        void **nv = alloc(p, cap * sizeof *nv);
        if (!nv) return false;
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return true;
}

static cep_ast_t *node(parser_t *p, cep_ast_kind_t kind, const cep_token_t *at)
{
    cep_ast_t *e = alloc(p, sizeof *e);
    if (!e) return NULL;
    e->kind = kind;
    e->pos = at->pos;
    e->slot = -1;
    e->agg = -1;
    e->func = -1;
    return e;
}

static bool ident(parser_t *p, const char **name, bool *quoted, const char *what)
{
    cep_token_t *t = peek(p);
    if (t->kind == TK_IDENT || t->kind == TK_QIDENT) {
        *name = t->text;
        if (quoted) *quoted = t->kind == TK_QIDENT;
        next(p);
        return true;
    }
    return expected(p, what);
}

/* ---- types ---------------------------------------------------------- */

static const cep_type_t *parse_type(parser_t *p);

static bool parse_small_int(parser_t *p, int *out)
{
    cep_token_t *t = peek(p);
    if (t->kind != TK_INTEGER) return expected(p, "an integer");
    long v = strtol(t->text, NULL, 10);
    if (v < 0 || v > 1000) return fail(p, t, "number out of range: %s", t->text);
    *out = (int)v;
    next(p);
    return true;
}

static const cep_type_t *parse_type(parser_t *p)
{
    cep_token_t *t = peek(p);
    if (t->kind != TK_IDENT) {
        expected(p, "a type");
        return NULL;
    }
    const char *w = t->text;
    next(p);
    if (!strcmp(w, "BOOLEAN") || !strcmp(w, "BOOL")) return &cep_type_boolean;
    if (!strcmp(w, "INT") || !strcmp(w, "INTEGER")) return &cep_type_int;
    if (!strcmp(w, "BIGINT") || !strcmp(w, "LONG")) return &cep_type_bigint;
    if (!strcmp(w, "DOUBLE") || !strcmp(w, "FLOAT") || !strcmp(w, "REAL")) return &cep_type_double;
    if (!strcmp(w, "VARCHAR") || !strcmp(w, "STRING")) return &cep_type_string;
    if (!strcmp(w, "BYTES")) return &cep_type_bytes;
    if (!strcmp(w, "TIMESTAMP")) return &cep_type_timestamp;
    if (!strcmp(w, "DATE")) return &cep_type_date;
    if (!strcmp(w, "TIME")) return &cep_type_time;
    if (!strcmp(w, "DECIMAL")) {
        int prec = 38, scale = 0;
        if (!expect(p, TK_LPAREN, "'(' after DECIMAL") || !parse_small_int(p, &prec)) return NULL;
        if (accept(p, TK_COMMA) && !parse_small_int(p, &scale)) return NULL;
        if (!expect(p, TK_RPAREN, "')'")) return NULL;
        if (prec < 1 || scale > prec) {
            fail(p, t, "DECIMAL precision must be >= 1 and scale <= precision");
            return NULL;
        }
        if (prec > 18) {
            fail(p, t, "DECIMAL precision above 18 is not supported");
            return NULL;
        }
        cep_type_t *d = cep_type_new_decimal(p->a, prec, scale);
        if (!d) alloc(p, (size_t)-1);
        return d;
    }
    if (!strcmp(w, "ARRAY")) {
        if (!expect(p, TK_LT, "'<' after ARRAY")) return NULL;
        const cep_type_t *e = parse_type(p);
        if (!e || !expect(p, TK_GT, "'>'")) return NULL;
        cep_type_t *a = alloc(p, sizeof *a);
        if (!a) return NULL;
        a->kind = CEP_K_ARRAY;
        a->elem = e;
        return a;
    }
    if (!strcmp(w, "MAP")) {
        if (!expect(p, TK_LT, "'<' after MAP")) return NULL;
        const cep_type_t *k = parse_type(p);
        if (!k || !expect(p, TK_COMMA, "','")) return NULL;
        const cep_type_t *v = parse_type(p);
        if (!v || !expect(p, TK_GT, "'>'")) return NULL;
        cep_type_t *m = alloc(p, sizeof *m);
        if (!m) return NULL;
        m->kind = CEP_K_MAP;
        m->key = k;
        m->elem = v;
        return m;
    }
    if (!strcmp(w, "STRUCT")) {
        if (!expect(p, TK_LT, "'<' after STRUCT")) return NULL;
        vec_t names = {0}, types = {0};
        if (peek(p)->kind != TK_GT) {
            do {
                const char *fname = NULL;
                if (!ident(p, &fname, NULL, "a field name")) return NULL;
                const cep_type_t *ft = parse_type(p);
                if (!ft || !vec_push(p, &names, (void *)fname) || !vec_push(p, &types, (void *)ft))
                    return NULL;
            } while (accept(p, TK_COMMA));
        }
        if (!expect(p, TK_GT, "'>'")) return NULL;
        cep_type_t *s = alloc(p, sizeof *s);
        cep_field_t *f = alloc(p, (names.n + 1) * sizeof *f);
        if (!s || !f) return NULL;
        for (uint32_t i = 0; i < names.n; i++) {
            f[i].name = names.v[i];
            f[i].type = types.v[i];
        }
        s->kind = CEP_K_STRUCT;
        s->nfields = names.n;
        s->fields = f;
        return s;
    }
    fail(p, t, "unknown type '%s'", w);
    return NULL;
}

/* ---- expressions ---------------------------------------------------- */

static cep_ast_t *parse_expr(parser_t *p);
static bool parse_expr_list(parser_t *p, cep_ast_t ***out, uint32_t *n);

static bool parse_unit_ms(parser_t *p, int64_t *mult)
{
    cep_token_t *t = peek(p);
    if (t->kind != TK_IDENT) return expected(p, "a time unit (MILLISECONDS, SECONDS, ...)");
    const char *u = t->text;
    size_t n = strlen(u);
    char base[32];
    snprintf(base, sizeof base, "%s", u);
    if (n > 1 && base[n - 1] == 'S') base[n - 1] = 0;
    if (!strcmp(base, "MILLISECOND")) *mult = 1;
    else if (!strcmp(base, "SECOND")) *mult = 1000;
    else if (!strcmp(base, "MINUTE")) *mult = 60000;
    else if (!strcmp(base, "HOUR")) *mult = 3600000;
    else if (!strcmp(base, "DAY")) *mult = 86400000;
    else if (!strcmp(base, "WEEK")) *mult = 7 * 86400000LL;
    else return fail(p, t, "unknown time unit '%s'", u);
    next(p);
    return true;
}

/* <number> <unit>, e.g. 30 SECONDS */
static bool parse_duration(parser_t *p, int64_t *ms)
{
    cep_token_t *t = peek(p);
    if (t->kind != TK_INTEGER) return expected(p, "a duration such as '30 SECONDS'");
    errno = 0;
    long long v = strtoll(t->text, NULL, 10);
    if (errno) return fail(p, t, "duration out of range");
    next(p);
    int64_t mult;
    if (!parse_unit_ms(p, &mult)) return false;
    if (v > CEP_TIME_LIMIT_MS / mult) return fail(p, t, "duration out of range");
    *ms = v * mult;
    return true;
}

static cep_ast_t *literal_from(parser_t *p, cep_token_t *t)
{
    cep_ast_t *e = node(p, AST_LITERAL, t);
    if (!e) return NULL;
    switch (t->kind) {
    case TK_INTEGER: {
        errno = 0;
        long long v = strtoll(t->text, NULL, 10);
        if (errno) {
            fail(p, t, "integer literal out of range: %s", t->text);
            return NULL;
        }
        bool small = v >= INT32_MIN && v <= INT32_MAX;
        e->lit = cep_v_int(small ? CEP_K_INT : CEP_K_BIGINT, v);
        e->lit_type = small ? &cep_type_int : &cep_type_bigint;
        break;
    }
    case TK_DECIMAL: {
        /* ksqlDB types 1.5 as DECIMAL(2,1) */
        const char *dot = strchr(t->text, '.');
        int scale = (int)strlen(dot + 1);
        int intdigits = (int)(dot - t->text);
        const char *q = t->text;
        while (*q == '0' && q < dot) q++, intdigits--;
        int prec = CEP_MAX(intdigits + scale, 1);
        if (prec > 18) {
            e->lit = cep_v_double(strtod(t->text, NULL));
            e->lit_type = &cep_type_double;
            break;
        }
        int64_t unscaled = 0;
        for (const char *c = t->text; *c; c++)
            if (*c != '.') unscaled = unscaled * 10 + (*c - '0');
        e->lit = cep_v_int(CEP_K_DECIMAL, unscaled);
        e->lit.scale = (uint8_t)scale;
        e->lit_type = cep_type_new_decimal(p->a, CEP_MAX(prec, scale), scale);
        break;
    }
    case TK_FLOAT:
        e->lit = cep_v_double(strtod(t->text, NULL));
        e->lit_type = &cep_type_double;
        break;
    case TK_STRING:
        e->lit = cep_v_str(t->text, strlen(t->text));
        e->lit_type = &cep_type_string;
        break;
    default: break;
    }
    return e;
}

static bool parse_list(parser_t *p, vec_t *out, cep_tok_t close, const char *close_desc)
{
    if (peek(p)->kind != close) {
        do {
            cep_ast_t *e = parse_expr(p);
            if (!e || !vec_push(p, out, e)) return false;
        } while (accept(p, TK_COMMA));
    }
    return expect(p, close, close_desc);
}

static cep_ast_t *parse_primary(parser_t *p)
{
    cep_token_t *t = peek(p);
    switch (t->kind) {
    case TK_INTEGER:
    case TK_DECIMAL:
    case TK_FLOAT:
    case TK_STRING: next(p); return literal_from(p, t);
    case TK_LPAREN: {
        next(p);
        cep_ast_t *e = parse_expr(p);
        if (!e || !expect(p, TK_RPAREN, "')'")) return NULL;
        return e;
    }
    case TK_STAR: {
        next(p);
        return node(p, AST_STAR, t);
    }
    case TK_QIDENT:
    case TK_IDENT: break;
    default: expected(p, "an expression"); return NULL;
    }
    const char *w = t->text;
    bool quoted = t->kind == TK_QIDENT;
    cep_token_t *t1 = peek_at(p, 1);
    if (!quoted) {
        if (!strcmp(w, "NULL")) {
            next(p);
            cep_ast_t *e = node(p, AST_LITERAL, t);
            if (e) e->lit_type = &cep_type_null;
            return e;
        }
        if (!strcmp(w, "TRUE") || !strcmp(w, "FALSE")) {
            next(p);
            cep_ast_t *e = node(p, AST_LITERAL, t);
            if (!e) return NULL;
            e->lit = cep_v_bool(w[0] == 'T');
            e->lit_type = &cep_type_boolean;
            return e;
        }
        if (!strcmp(w, "CASE")) {
            next(p);
            cep_ast_t *e = node(p, AST_CASE, t);
            if (!e) return NULL;
            if (!is_kw(peek(p), "WHEN")) {
                e->operand = parse_expr(p);
                if (!e->operand) return NULL;
            }
            vec_t arms = {0};
            while (accept_kw(p, "WHEN")) {
                cep_ast_t *w1 = parse_expr(p);
                if (!w1 || !expect_kw(p, "THEN")) return NULL;
                cep_ast_t *t1e = parse_expr(p);
                if (!t1e || !vec_push(p, &arms, w1) || !vec_push(p, &arms, t1e)) return NULL;
            }
            if (!arms.n) {
                expected(p, "WHEN");
                return NULL;
            }
            if (accept_kw(p, "ELSE")) {
                e->else_ = parse_expr(p);
                if (!e->else_) return NULL;
            }
            if (!expect_kw(p, "END")) return NULL;
            e->args = (cep_ast_t **)arms.v;
            e->nargs = arms.n;
            return e;
        }
        if (!strcmp(w, "CAST") && t1->kind == TK_LPAREN) {
            next(p);
            next(p);
            cep_ast_t *e = node(p, AST_CAST, t);
            if (!e) return NULL;
            cep_ast_t *a = parse_expr(p);
            if (!a || !expect_kw(p, "AS")) return NULL;
            e->cast_type = parse_type(p);
            if (!e->cast_type || !expect(p, TK_RPAREN, "')'")) return NULL;
            e->args = alloc(p, sizeof(cep_ast_t *));
            if (!e->args) return NULL;
            e->args[0] = a;
            e->nargs = 1;
            return e;
        }
        if (!strcmp(w, "ARRAY") && t1->kind == TK_LBRACKET) {
            next(p);
            next(p);
            cep_ast_t *e = node(p, AST_ARRAY, t);
            vec_t items = {0};
            if (!e || !parse_list(p, &items, TK_RBRACKET, "']'")) return NULL;
            e->args = (cep_ast_t **)items.v;
            e->nargs = items.n;
            return e;
        }
        if ((!strcmp(w, "MAP") || !strcmp(w, "STRUCT")) && t1->kind == TK_LPAREN) {
            bool is_map = w[0] == 'M';
            next(p);
            next(p);
            cep_ast_t *e = node(p, is_map ? AST_MAP : AST_STRUCT, t);
            if (!e) return NULL;
            vec_t items = {0}, names = {0};
            if (peek(p)->kind != TK_RPAREN) {
                do {
                    if (is_map) {
                        cep_ast_t *k = parse_expr(p);
                        if (!k || !expect(p, TK_ASSIGN, "':='")) return NULL;
                        cep_ast_t *v = parse_expr(p);
                        if (!v || !vec_push(p, &items, k) || !vec_push(p, &items, v)) return NULL;
                    } else {
                        const char *fname = NULL;
                        bool fq = false;
                        if (!ident(p, &fname, &fq, "a field name")) return NULL;
                        if (!expect(p, TK_ASSIGN, "':='")) return NULL;
                        cep_ast_t *v = parse_expr(p);
                        if (!v || !vec_push(p, &items, v) || !vec_push(p, &names, (void *)fname))
                            return NULL;
                    }
                } while (accept(p, TK_COMMA));
            }
            if (!expect(p, TK_RPAREN, "')'")) return NULL;
            e->args = (cep_ast_t **)items.v;
            e->nargs = items.n;
            e->names = (const char **)names.v;
            return e;
        }
        if (!strcmp(w, "INTERVAL") && (t1->kind == TK_STRING || t1->kind == TK_INTEGER)) {
            next(p);
            cep_token_t *vt = next(p);
            errno = 0;
            char *end;
            long long v = strtoll(vt->text, &end, 10);
            if (errno || *end) {
                fail(p, vt, "INTERVAL needs a whole number, found '%s'", vt->text);
                return NULL;
            }
            int64_t mult;
            if (!parse_unit_ms(p, &mult)) return NULL;
            if (v > INT64_MAX / mult || v < -(INT64_MAX / mult)) {
                fail(p, vt, "INTERVAL out of range: %s", vt->text);
                return NULL;
            }
            cep_ast_t *e = node(p, AST_INTERVAL, t);
            if (!e) return NULL;
            e->lit = cep_v_int(CEP_K_BIGINT, v * mult);
            e->lit_type = &cep_type_bigint;
            return e;
        }
    }
    next(p);
    if (t1->kind == TK_LPAREN && !quoted) {
        /* function call */
        next(p);
        cep_ast_t *e = node(p, AST_CALL, t);
        if (!e) return NULL;
        e->name = w;
        vec_t args = {0};
        if (accept_kw(p, "DISTINCT")) e->distinct = true;
        if (peek(p)->kind == TK_STAR && peek_at(p, 1)->kind == TK_RPAREN) {
            cep_ast_t *s = node(p, AST_STAR, peek(p));
            next(p);
            if (!s || !vec_push(p, &args, s)) return NULL;
            if (!expect(p, TK_RPAREN, "')'")) return NULL;
        } else if (!parse_list(p, &args, TK_RPAREN, "')'"))
            return NULL;
        e->args = (cep_ast_t **)args.v;
        e->nargs = args.n;
        if (is_kw(peek(p), "OVER")) {
            cep_token_t *ot = next(p);
            cep_ast_over_t *ov = alloc(p, sizeof *ov);
            if (!ov) return NULL;
            ov->pos = ot->pos;
            if (!expect(p, TK_LPAREN, "'(' after OVER")) return NULL;
            if (accept_kw(p, "PARTITION")) {
                if (!expect_kw(p, "BY") || !parse_expr_list(p, &ov->partition, &ov->npartition)) return NULL;
            }
            if (!expect_kw(p, "ORDER") || !expect_kw(p, "BY")) return NULL;
            if (!(ov->order = parse_expr(p))) return NULL;
            accept_kw(p, "ASC");
            if (!expect_kw(p, "RANGE") || !expect_kw(p, "BETWEEN")) return NULL;
            cep_token_t *rt = peek(p);
            cep_ast_t *iv = parse_primary(p);
            if (!iv) return NULL;
            if (iv->kind != AST_INTERVAL || iv->lit.u.i < 0) {
                fail(p, rt, "OVER needs RANGE BETWEEN INTERVAL 'n' unit PRECEDING AND CURRENT ROW");
                return NULL;
            }
            ov->range_ms = iv->lit.u.i;
            if (!expect_kw(p, "PRECEDING") || !expect_kw(p, "AND") || !expect_kw(p, "CURRENT") ||
                !expect_kw(p, "ROW") || !expect(p, TK_RPAREN, "')' closing OVER"))
                return NULL;
            e->over = ov;
        }
        return e;
    }
    cep_ast_t *e = node(p, AST_COLUMN, t);
    if (!e) return NULL;
    e->name = w;
    e->quoted = quoted;
    if (peek(p)->kind == TK_DOT) {
        cep_token_t *t2 = peek_at(p, 1);
        if (t2->kind == TK_IDENT || t2->kind == TK_QIDENT) {
            next(p);
            next(p);
            e->qualifier = w;
            e->name = t2->text;
            e->quoted = t2->kind == TK_QIDENT;
        } else if (t2->kind == TK_STAR) {
            next(p);
            next(p);
            e->kind = AST_STAR;
            e->qualifier = w;
        }
    }
    return e;
}

static cep_ast_t *parse_postfix(parser_t *p)
{
    cep_ast_t *e = parse_primary(p);
    while (e) {
        cep_token_t *t = peek(p);
        if (t->kind == TK_LBRACKET) {
            next(p);
            cep_ast_t *s = node(p, AST_SUBSCRIPT, t);
            cep_ast_t *idx = parse_expr(p);
            if (!s || !idx || !expect(p, TK_RBRACKET, "']'")) return NULL;
            s->args = alloc(p, 2 * sizeof(cep_ast_t *));
            if (!s->args) return NULL;
            s->args[0] = e;
            s->args[1] = idx;
            s->nargs = 2;
            e = s;
        } else if (t->kind == TK_ARROW) {
            next(p);
            cep_ast_t *d = node(p, AST_DEREF, t);
            if (!d || !ident(p, &d->name, &d->quoted, "a field name after '->'")) return NULL;
            d->args = alloc(p, sizeof(cep_ast_t *));
            if (!d->args) return NULL;
            d->args[0] = e;
            d->nargs = 1;
            e = d;
        } else
            break;
    }
    return e;
}

static cep_ast_t *mk_unary(parser_t *p, const cep_token_t *at, int op, cep_ast_t *a)
{
    cep_ast_t *e = node(p, AST_UNARY, at);
    if (!e || !a) return NULL;
    e->op = op;
    e->args = alloc(p, sizeof(cep_ast_t *));
    if (!e->args) return NULL;
    e->args[0] = a;
    e->nargs = 1;
    return e;
}

static cep_ast_t *mk_binary(parser_t *p, const cep_token_t *at, cep_ast_kind_t kind, int op,
                            cep_ast_t *a, cep_ast_t *b)
{
    if (!a || !b) return NULL;
    cep_ast_t *e = node(p, kind, at);
    if (!e) return NULL;
    e->op = op;
    e->args = alloc(p, 2 * sizeof(cep_ast_t *));
    if (!e->args) return NULL;
    e->args[0] = a;
    e->args[1] = b;
    e->nargs = 2;
    return e;
}

static cep_ast_t *parse_unary(parser_t *p)
{
    cep_token_t *t = peek(p);
    if (t->kind == TK_MINUS || t->kind == TK_PLUS) {
        next(p);
        cep_ast_t *a = parse_unary(p);
        if (!a) return NULL;
        /* fold -literal so that -100 is one INT literal */
        if (t->kind == TK_MINUS && a->kind == AST_LITERAL &&
            (a->lit.kind == CEP_K_INT || a->lit.kind == CEP_K_BIGINT ||
             a->lit.kind == CEP_K_DECIMAL)) {
            a->lit.u.i = -a->lit.u.i;
            a->pos = t->pos;
            return a;
        }
        if (t->kind == TK_MINUS && a->kind == AST_LITERAL && a->lit.kind == CEP_K_DOUBLE) {
            a->lit.u.d = -a->lit.u.d;
            a->pos = t->pos;
            return a;
        }
        return t->kind == TK_PLUS ? a : mk_unary(p, t, TK_MINUS, a);
    }
    return parse_postfix(p);
}

static cep_ast_t *parse_mul(parser_t *p)
{
    cep_ast_t *e = parse_unary(p);
    for (;;) {
        cep_token_t *t = peek(p);
        if (t->kind != TK_STAR && t->kind != TK_SLASH && t->kind != TK_PERCENT) return e;
        next(p);
        e = mk_binary(p, t, AST_BINARY, t->kind, e, parse_unary(p));
    }
}

static cep_ast_t *parse_add(parser_t *p)
{
    cep_ast_t *e = parse_mul(p);
    for (;;) {
        cep_token_t *t = peek(p);
        if (t->kind != TK_PLUS && t->kind != TK_MINUS && t->kind != TK_CONCAT) return e;
        next(p);
        e = mk_binary(p, t, AST_BINARY, t->kind, e, parse_mul(p));
    }
}

static cep_ast_t *parse_cmp(parser_t *p)
{
    cep_ast_t *e = parse_add(p);
    for (;;) {
        if (!e) return NULL;
        cep_token_t *t = peek(p);
        switch (t->kind) {
        case TK_EQ:
        case TK_NE:
        case TK_LT:
        case TK_LE:
        case TK_GT:
        case TK_GE:
            next(p);
            e = mk_binary(p, t, AST_BINARY, t->kind, e, parse_add(p));
            continue;
        default: break;
        }
        if (is_kw(t, "IS")) {
            next(p);
            bool neg = accept_kw(p, "NOT");
            if (accept_kw(p, "NULL")) {
                cep_ast_t *n = mk_unary(p, t, 0, e);
                if (!n) return NULL;
                n->kind = AST_ISNULL;
                n->negated = neg;
                e = n;
                continue;
            }
            if (accept_kw(p, "DISTINCT")) {
                if (!expect_kw(p, "FROM")) return NULL;
                e = mk_binary(p, t, AST_DISTINCT, 0, e, parse_add(p));
                if (e) e->negated = neg;
                continue;
            }
            expected(p, "NULL or DISTINCT FROM after IS");
            return NULL;
        }
        bool neg = false;
        cep_token_t *kw = t;
        if (is_kw(t, "NOT") && (is_kw(peek_at(p, 1), "BETWEEN") || is_kw(peek_at(p, 1), "IN") ||
                                is_kw(peek_at(p, 1), "LIKE"))) {
            next(p);
            neg = true;
            kw = peek(p);
        }
        if (is_kw(kw, "BETWEEN")) {
            next(p);
            cep_ast_t *lo = parse_add(p);
            if (!lo || !expect_kw(p, "AND")) return NULL;
            cep_ast_t *hi = parse_add(p);
            if (!hi) return NULL;
            cep_ast_t *b = node(p, AST_BETWEEN, kw);
            if (!b) return NULL;
            b->args = alloc(p, 3 * sizeof(cep_ast_t *));
            if (!b->args) return NULL;
            b->args[0] = e;
            b->args[1] = lo;
            b->args[2] = hi;
            b->nargs = 3;
            b->negated = neg;
            e = b;
            continue;
        }
        if (is_kw(kw, "IN")) {
            next(p);
            if (!expect(p, TK_LPAREN, "'(' after IN")) return NULL;
            vec_t items = {0};
            if (!vec_push(p, &items, e)) return NULL;
            if (peek(p)->kind == TK_RPAREN) {
                fail(p, peek(p), "IN list must not be empty");
                return NULL;
            }
            if (!parse_list(p, &items, TK_RPAREN, "')'")) return NULL;
            cep_ast_t *in = node(p, AST_IN, kw);
            if (!in) return NULL;
            in->args = (cep_ast_t **)items.v;
            in->nargs = items.n;
            in->negated = neg;
            e = in;
            continue;
        }
        if (is_kw(kw, "LIKE")) {
            next(p);
            cep_ast_t *pat = parse_add(p);
            if (!pat) return NULL;
            cep_ast_t *esc = NULL;
            if (accept_kw(p, "ESCAPE")) {
                esc = parse_add(p);
                if (!esc) return NULL;
            }
            cep_ast_t *l = node(p, AST_LIKE, kw);
            if (!l) return NULL;
            l->args = alloc(p, 3 * sizeof(cep_ast_t *));
            if (!l->args) return NULL;
            l->args[0] = e;
            l->args[1] = pat;
            l->args[2] = esc;
            l->nargs = esc ? 3 : 2;
            l->negated = neg;
            e = l;
            continue;
        }
        return e;
    }
}

static cep_ast_t *parse_not(parser_t *p)
{
    cep_token_t *t = peek(p);
    if (is_kw(t, "NOT")) {
        next(p);
        return mk_unary(p, t, 'N', parse_not(p));
    }
    return parse_cmp(p);
}

static cep_ast_t *parse_and(parser_t *p)
{
    cep_ast_t *e = parse_not(p);
    while (is_kw(peek(p), "AND")) {
        cep_token_t *t = next(p);
        e = mk_binary(p, t, AST_BINARY, 'A', e, parse_not(p));
    }
    return e;
}

static cep_ast_t *parse_expr(parser_t *p)
{
    cep_ast_t *e = parse_and(p);
    while (is_kw(peek(p), "OR")) {
        cep_token_t *t = next(p);
        e = mk_binary(p, t, AST_BINARY, 'O', e, parse_and(p));
    }
    return e;
}

/* ---- statements ----------------------------------------------------- */

static bool parse_props(parser_t *p, cep_ast_prop_t **out, uint32_t *n)
{
    if (!expect(p, TK_LPAREN, "'(' after WITH")) return false;
    vec_t v = {0};
    do {
        cep_token_t *t = peek(p);
        const char *name = NULL;
        if (!ident(p, &name, NULL, "a property name")) return false;
        if (!expect(p, TK_EQ, "'='")) return false;
        cep_token_t *vt = peek(p);
        cep_ast_t *val = NULL;
        if (vt->kind == TK_STRING || vt->kind == TK_INTEGER || vt->kind == TK_DECIMAL ||
            vt->kind == TK_FLOAT) {
            next(p);
            val = literal_from(p, vt);
        } else if (vt->kind == TK_IDENT &&
                   (!strcmp(vt->text, "TRUE") || !strcmp(vt->text, "FALSE"))) {
            next(p);
            val = node(p, AST_LITERAL, vt);
            if (val) {
                val->lit = cep_v_bool(vt->text[0] == 'T');
                val->lit_type = &cep_type_boolean;
            }
        } else if (vt->kind == TK_LPAREN || vt->kind == TK_LBRACKET) {
            /* TAGS=('a','b') or TAGS=['a','b']: a list of strings */
            cep_tok_t close = vt->kind == TK_LPAREN ? TK_RPAREN : TK_RBRACKET;
            next(p);
            vec_t items = {0};
            if (!parse_list(p, &items, close, close == TK_RPAREN ? "')'" : "']'")) return false;
            val = node(p, AST_ARRAY, vt);
            if (val) {
                val->args = (cep_ast_t **)items.v;
                val->nargs = items.n;
            }
        } else
            return expected(p, "a property value");
        if (!val) return false;
        cep_ast_prop_t *pr = alloc(p, sizeof *pr);
        if (!pr) return false;
        pr->name = name;
        pr->value = val;
        pr->pos = t->pos;
        if (!vec_push(p, &v, pr)) return false;
    } while (accept(p, TK_COMMA));
    if (!expect(p, TK_RPAREN, "')'")) return false;
    cep_ast_prop_t *arr = alloc(p, (v.n + 1) * sizeof *arr);
    if (!arr) return false;
    for (uint32_t i = 0; i < v.n; i++) arr[i] = *(cep_ast_prop_t *)v.v[i];
    *out = arr;
    *n = v.n;
    return true;
}

static bool parse_window(parser_t *p, cep_ast_window_t *w)
{
    cep_token_t *t = peek(p);
    w->pos = t->pos;
    if (accept_kw(p, "TUMBLING")) w->kind = CEP_WIN_TUMBLING;
    else if (accept_kw(p, "HOPPING")) w->kind = CEP_WIN_HOPPING;
    else if (accept_kw(p, "SESSION")) w->kind = CEP_WIN_SESSION;
    else return expected(p, "TUMBLING, HOPPING or SESSION");
    if (!expect(p, TK_LPAREN, "'('")) return false;
    if (w->kind == CEP_WIN_SESSION) {
        if (!parse_duration(p, &w->gap_ms)) return false;
    } else {
        if (!expect_kw(p, "SIZE") || !parse_duration(p, &w->size_ms)) return false;
        if (w->size_ms <= 0) return fail(p, t, "window SIZE must be positive");
    }
    w->advance_ms = w->size_ms;
    while (accept(p, TK_COMMA)) {
        cep_token_t *kw = peek(p);
        if (accept_kw(p, "ADVANCE")) {
            if (w->kind != CEP_WIN_HOPPING) return fail(p, kw, "ADVANCE BY is only valid in a HOPPING window");
            if (!expect_kw(p, "BY") || !parse_duration(p, &w->advance_ms)) return false;
        } else if (accept_kw(p, "GRACE")) {
            if (!expect_kw(p, "PERIOD") || !parse_duration(p, &w->grace_ms)) return false;
            w->has_grace = true;
        } else if (accept_kw(p, "RETENTION")) {
            if (!parse_duration(p, &w->retention_ms)) return false;
            w->has_retention = true;
        } else
            return expected(p, "ADVANCE BY, GRACE PERIOD or RETENTION");
    }
    if (w->kind == CEP_WIN_HOPPING && w->advance_ms == w->size_ms &&
        w->advance_ms == 0)
        return expected(p, "ADVANCE BY");
    if (w->kind == CEP_WIN_HOPPING && (w->advance_ms <= 0 || w->advance_ms > w->size_ms))
        return fail(p, t, "ADVANCE BY must be positive and not larger than SIZE");
    return expect(p, TK_RPAREN, "')'");
}

static bool parse_expr_list(parser_t *p, cep_ast_t ***out, uint32_t *n)
{
    vec_t v = {0};
    do {
        cep_ast_t *e = parse_expr(p);
        if (!e || !vec_push(p, &v, e)) return false;
    } while (accept(p, TK_COMMA));
    *out = (cep_ast_t **)v.v;
    *n = v.n;
    return true;
}


/* ---- MATCH_RECOGNIZE -------------------------------------------------------- */

static cep_pat_t *parse_pat_alt(parser_t *p);

static cep_pat_t *pat_node(parser_t *p, cep_pat_kind_t kind, const cep_token_t *at)
{
    cep_pat_t *n = alloc(p, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->pos = at->pos;
    return n;
}

static bool pat_uint(parser_t *p, uint32_t *out)
{
    cep_token_t *t = peek(p);
    if (t->kind != TK_INTEGER) return expected(p, "a repetition count");
    errno = 0;
    long long v = strtoll(t->text, NULL, 10);
    if (errno || v < 0 || v > 10000) return fail(p, t, "repetition count out of range (0 to 10000): %s", t->text);
    *out = (uint32_t)v;
    next(p);
    return true;
}

/* primary [quantifier] */
static cep_pat_t *parse_pat_term(parser_t *p)
{
    cep_token_t *t = peek(p);
    cep_pat_t *prim;
    if (accept(p, TK_LPAREN)) {
        if (peek(p)->kind == TK_RPAREN) {
            next(p);
            prim = pat_node(p, PAT_SEQ, t); /* () matches the empty sequence */
        } else {
            prim = parse_pat_alt(p);
            if (!prim || !expect(p, TK_RPAREN, "')' closing the pattern group")) return NULL;
        }
    } else if (accept(p, TK_CARET)) {
        prim = pat_node(p, PAT_START, t);
    } else if (accept(p, TK_DOLLAR)) {
        prim = pat_node(p, PAT_END, t);
    } else if (t->kind == TK_IDENT || t->kind == TK_QIDENT) {
        prim = pat_node(p, PAT_VAR, t);
        if (!prim) return NULL;
        prim->var = t->text;
        next(p);
    } else {
        expected(p, "a pattern variable, '(' or an anchor");
        return NULL;
    }
    if (!prim) return NULL;
    for (;;) {
        cep_token_t *q = peek(p);
        uint32_t min, max;
        if (accept(p, TK_STAR)) min = 0, max = UINT32_MAX;
        else if (accept(p, TK_PLUS)) min = 1, max = UINT32_MAX;
        else if (accept(p, TK_QMARK)) min = 0, max = 1;
        else if (accept(p, TK_LBRACE)) {
            min = 0, max = UINT32_MAX;
            if (peek(p)->kind == TK_INTEGER && !pat_uint(p, &min)) return NULL;
            if (accept(p, TK_COMMA)) {
                if (peek(p)->kind == TK_INTEGER && !pat_uint(p, &max)) return NULL;
            } else
                max = min;
            if (!expect(p, TK_RBRACE, "'}' closing the quantifier")) return NULL;
            if (max < min) {
                fail(p, q, "quantifier {%u,%u}: the maximum is below the minimum", min, max);
                return NULL;
            }
        } else
            break;
        cep_pat_t *qn = pat_node(p, PAT_QUANT, q);
        if (!qn) return NULL;
        qn->sub = prim;
        qn->min = min;
        qn->max = max;
        qn->reluctant = accept(p, TK_QMARK);
        prim = qn;
    }
    return prim;
}

static bool pat_starts_term(const cep_token_t *t)
{
    return t->kind == TK_LPAREN || t->kind == TK_CARET || t->kind == TK_DOLLAR || t->kind == TK_IDENT ||
           t->kind == TK_QIDENT;
}

static cep_pat_t *parse_pat_seq(parser_t *p)
{
    cep_token_t *t = peek(p);
    vec_t v = {0};
    do {
        cep_pat_t *x = parse_pat_term(p);
        if (!x || !vec_push(p, &v, x)) return NULL;
    } while (pat_starts_term(peek(p)));
    if (v.n == 1) return v.v[0];
    cep_pat_t *n = pat_node(p, PAT_SEQ, t);
    if (!n) return NULL;
    n->items = (cep_pat_t **)v.v;
    n->nitems = v.n;
    return n;
}

static cep_pat_t *parse_pat_alt(parser_t *p)
{
    cep_token_t *t = peek(p);
    vec_t v = {0};
    do {
        cep_pat_t *x = parse_pat_seq(p);
        if (!x || !vec_push(p, &v, x)) return NULL;
    } while (accept(p, TK_PIPE));
    if (v.n == 1) return v.v[0];
    cep_pat_t *n = pat_node(p, PAT_ALT, t);
    if (!n) return NULL;
    n->items = (cep_pat_t **)v.v;
    n->nitems = v.n;
    return n;
}

/* MATCH_RECOGNIZE ( [PARTITION BY ..] [ORDER BY ..] [MEASURES ..] [ONE ROW PER MATCH]
 *   [AFTER MATCH SKIP ..] PATTERN (..) [WITHIN INTERVAL ..] [SUBSET ..] DEFINE .. ) [[AS] alias] */
static cep_ast_match_t *parse_match_recognize(parser_t *p, const cep_token_t *at)
{
    cep_ast_match_t *m = alloc(p, sizeof *m);
    if (!m) return NULL;
    m->pos = at->pos;
    if (!expect(p, TK_LPAREN, "'(' after MATCH_RECOGNIZE")) return NULL;
    if (accept_kw(p, "PARTITION")) {
        if (!expect_kw(p, "BY") || !parse_expr_list(p, &m->partition, &m->npartition)) return NULL;
    }
    if (accept_kw(p, "ORDER")) {
        if (!expect_kw(p, "BY")) return NULL;
        vec_t v = {0};
        do {
            cep_ast_t *e = parse_expr(p);
            if (!e || !vec_push(p, &v, e)) return NULL;
            if (is_kw(peek(p), "DESC")) {
                fail(p, peek(p), "MATCH_RECOGNIZE orders by event time ascending; DESC is not supported");
                return NULL;
            }
            accept_kw(p, "ASC");
        } while (accept(p, TK_COMMA));
        m->order = (cep_ast_t **)v.v;
        m->norder = v.n;
    }
    if (accept_kw(p, "MEASURES")) {
        vec_t v = {0};
        do {
            cep_ast_item_t *it = alloc(p, sizeof *it);
            if (!it) return NULL;
            it->pos = peek(p)->pos;
            it->expr = parse_expr(p);
            if (!it->expr || !expect_kw(p, "AS") || !ident(p, &it->alias, &it->alias_quoted, "a measure name"))
                return NULL;
            if (!vec_push(p, &v, it)) return NULL;
        } while (accept(p, TK_COMMA));
        m->measures = alloc(p, (v.n + 1) * sizeof *m->measures);
        if (!m->measures) return NULL;
        for (uint32_t i = 0; i < v.n; i++) m->measures[i] = *(cep_ast_item_t *)v.v[i];
        m->nmeasures = v.n;
    }
    if (is_kw(peek(p), "ALL")) {
        fail(p, peek(p), "ALL ROWS PER MATCH is not supported; use ONE ROW PER MATCH");
        return NULL;
    }
    if (accept_kw(p, "ONE")) {
        if (!expect_kw(p, "ROW") || !expect_kw(p, "PER") || !expect_kw(p, "MATCH")) return NULL;
    }
    m->skip = CEP_SKIP_PAST_LAST;
    if (accept_kw(p, "AFTER")) {
        if (!expect_kw(p, "MATCH") || !expect_kw(p, "SKIP")) return NULL;
        m->skip_pos = peek(p)->pos;
        if (accept_kw(p, "PAST")) {
            if (!expect_kw(p, "LAST") || !expect_kw(p, "ROW")) return NULL;
        } else if (accept_kw(p, "TO")) {
            if (accept_kw(p, "NEXT")) {
                if (!expect_kw(p, "ROW")) return NULL;
                m->skip = CEP_SKIP_NEXT_ROW;
            } else {
                m->skip = CEP_SKIP_TO_LAST;
                if (accept_kw(p, "FIRST")) m->skip = CEP_SKIP_TO_FIRST;
                else accept_kw(p, "LAST");
                m->skip_pos = peek(p)->pos;
                if (!ident(p, &m->skip_var, NULL, "a pattern variable after SKIP TO")) return NULL;
            }
        } else {
            expected(p, "PAST LAST ROW or TO after AFTER MATCH SKIP");
            return NULL;
        }
    }
    if (!expect_kw(p, "PATTERN") || !expect(p, TK_LPAREN, "'(' after PATTERN")) return NULL;
    m->pattern = parse_pat_alt(p);
    if (!m->pattern || !expect(p, TK_RPAREN, "')' closing PATTERN")) return NULL;
    if (accept_kw(p, "WITHIN")) {
        cep_token_t *wt = peek(p);
        cep_ast_t *iv = parse_expr(p);
        if (!iv) return NULL;
        if (iv->kind != AST_INTERVAL || iv->lit.u.i <= 0) {
            fail(p, wt, "WITHIN needs a positive INTERVAL, e.g. WITHIN INTERVAL '10' MINUTE");
            return NULL;
        }
        m->has_within = true;
        m->within_ms = iv->lit.u.i;
    }
    if (accept_kw(p, "NOT")) { /* cep's absence extension */
        if (!expect_kw(p, "FOLLOWED") || !expect_kw(p, "BY")) return NULL;
        m->absent_pos = peek(p)->pos;
        if (!ident(p, &m->absent_var, NULL, "a pattern variable after NOT FOLLOWED BY") || !expect_kw(p, "WITHIN"))
            return NULL;
        cep_token_t *wt = peek(p);
        cep_ast_t *iv = parse_expr(p);
        if (!iv) return NULL;
        if (iv->kind != AST_INTERVAL || iv->lit.u.i <= 0) {
            fail(p, wt, "NOT FOLLOWED BY needs WITHIN a positive INTERVAL");
            return NULL;
        }
        m->absent_ms = iv->lit.u.i;
    }
    if (accept_kw(p, "SUBSET")) {
        vec_t v = {0};
        do {
            cep_ast_subset_t *sb = alloc(p, sizeof *sb);
            if (!sb) return NULL;
            sb->pos = peek(p)->pos;
            if (!ident(p, &sb->name, NULL, "a subset name") || !expect(p, TK_EQ, "'=' after the subset name") ||
                !expect(p, TK_LPAREN, "'(' listing the subset's variables"))
                return NULL;
            vec_t vars = {0};
            do {
                const char *name = NULL;
                if (!ident(p, &name, NULL, "a pattern variable") || !vec_push(p, &vars, (void *)name)) return NULL;
            } while (accept(p, TK_COMMA));
            if (!expect(p, TK_RPAREN, "')' closing the subset")) return NULL;
            sb->vars = (const char **)vars.v;
            sb->nvars = vars.n;
            if (!vec_push(p, &v, sb)) return NULL;
        } while (accept(p, TK_COMMA));
        m->subsets = alloc(p, (v.n + 1) * sizeof *m->subsets);
        if (!m->subsets) return NULL;
        for (uint32_t i = 0; i < v.n; i++) m->subsets[i] = *(cep_ast_subset_t *)v.v[i];
        m->nsubsets = v.n;
    }
    if (accept_kw(p, "DEFINE")) {
        vec_t v = {0};
        do {
            cep_ast_define_t *d = alloc(p, sizeof *d);
            if (!d) return NULL;
            d->pos = peek(p)->pos;
            if (!ident(p, &d->var, NULL, "a pattern variable") || !expect_kw(p, "AS")) return NULL;
            d->cond = parse_expr(p);
            if (!d->cond || !vec_push(p, &v, d)) return NULL;
        } while (accept(p, TK_COMMA));
        m->defines = alloc(p, (v.n + 1) * sizeof *m->defines);
        if (!m->defines) return NULL;
        for (uint32_t i = 0; i < v.n; i++) m->defines[i] = *(cep_ast_define_t *)v.v[i];
        m->ndefines = v.n;
    }
    if (!expect(p, TK_RPAREN, "')' closing MATCH_RECOGNIZE")) return NULL;
    if (accept_kw(p, "AS")) {
        if (!ident(p, &m->alias, NULL, "an alias")) return NULL;
    } else if (peek(p)->kind == TK_IDENT && !is_reserved(peek(p)->text)) {
        m->alias = next(p)->text;
    }
    return m;
}

static cep_ast_select_t *parse_select(parser_t *p)
{
    cep_token_t *t = peek(p);
    if (!expect_kw(p, "SELECT")) return NULL;
    cep_ast_select_t *s = alloc(p, sizeof *s);
    if (!s) return NULL;
    s->pos = t->pos;
    vec_t items = {0};
    do {
        cep_ast_item_t *it = alloc(p, sizeof *it);
        if (!it) return NULL;
        it->pos = peek(p)->pos;
        it->expr = parse_expr(p);
        if (!it->expr) return NULL;
        if (accept_kw(p, "AS")) {
            if (!ident(p, &it->alias, &it->alias_quoted, "an alias after AS")) return NULL;
        } else if ((peek(p)->kind == TK_IDENT && !is_reserved(peek(p)->text)) ||
                   peek(p)->kind == TK_QIDENT) {
            it->alias = peek(p)->text;
            it->alias_quoted = peek(p)->kind == TK_QIDENT;
            next(p);
        }
        if (!vec_push(p, &items, it)) return NULL;
    } while (accept(p, TK_COMMA));
    s->items = alloc(p, (items.n + 1) * sizeof *s->items);
    if (!s->items) return NULL;
    for (uint32_t i = 0; i < items.n; i++) s->items[i] = *(cep_ast_item_t *)items.v[i];
    s->nitems = items.n;

    if (!expect_kw(p, "FROM")) return NULL;
    s->from_pos = peek(p)->pos;
    if (accept(p, TK_LPAREN)) { /* a derived table */
        if (!(s->from_select = parse_select(p)) || !expect(p, TK_RPAREN, "')' closing the derived table"))
            return NULL;
        s->from = "";
    } else if (!ident(p, &s->from, NULL, "a stream or table name")) {
        return NULL;
    } else if (is_kw(peek(p), "MATCH_RECOGNIZE")) {
        cep_token_t *mt = next(p);
        if (!(s->match = parse_match_recognize(p, mt))) return NULL;
        s->from_alias = s->match->alias;
    }
    if (!s->match) {
        if (accept_kw(p, "AS")) {
            if (!ident(p, &s->from_alias, NULL, "an alias")) return NULL;
        } else if (peek(p)->kind == TK_IDENT && !is_reserved(peek(p)->text)) {
            s->from_alias = next(p)->text;
        }
    }
    if (accept_kw(p, "WINDOW") && !parse_window(p, &s->window)) return NULL;
    if (accept_kw(p, "WHERE")) {
        s->where = parse_expr(p);
        if (!s->where) return NULL;
    }
    if (accept_kw(p, "GROUP")) {
        if (!expect_kw(p, "BY") || !parse_expr_list(p, &s->group_by, &s->ngroup)) return NULL;
    }
    if (accept_kw(p, "PARTITION")) {
        if (!expect_kw(p, "BY") || !parse_expr_list(p, &s->partition_by, &s->npartition))
            return NULL;
    }
    if (accept_kw(p, "HAVING")) {
        s->having = parse_expr(p);
        if (!s->having) return NULL;
    }
    if (is_kw(peek(p), "EMIT")) {
        s->emit_pos = peek(p)->pos;
        next(p);
        if (accept_kw(p, "CHANGES")) s->emit_changes = true;
        else if (accept_kw(p, "FINAL")) s->emit_final = true;
        else {
            expected(p, "CHANGES or FINAL after EMIT");
            return NULL;
        }
    }
    return s;
}

static cep_ast_stmt_t *parse_stmt(parser_t *p)
{
    cep_token_t *t = peek(p);
    cep_ast_stmt_t *st = alloc(p, sizeof *st);
    if (!st) return NULL;
    st->pos = t->pos;
    if (accept_kw(p, "CREATE")) {
        if (accept_kw(p, "OR")) {
            if (!expect_kw(p, "REPLACE")) return NULL;
            st->or_replace = true;
        }
        accept_kw(p, "SOURCE");
        if (accept_kw(p, "TABLE")) st->is_table = true;
        else if (!expect_kw(p, "STREAM")) return NULL;
        if (accept_kw(p, "IF")) {
            if (!expect_kw(p, "NOT") || !expect_kw(p, "EXISTS")) return NULL;
        }
        if (!ident(p, &st->name, &st->name_quoted, "a name")) return NULL;
        if (accept(p, TK_LPAREN)) {
            vec_t cols = {0};
            do {
                cep_ast_coldef_t *c = alloc(p, sizeof *c);
                if (!c) return NULL;
                c->pos = peek(p)->pos;
                if (!ident(p, &c->name, NULL, "a column name")) return NULL;
                c->type = parse_type(p);
                if (!c->type) return NULL;
                if (accept_kw(p, "PRIMARY")) {
                    if (!expect_kw(p, "KEY")) return NULL;
                    c->is_key = c->is_primary = true;
                } else if (accept_kw(p, "KEY"))
                    c->is_key = true;
                if (!vec_push(p, &cols, c)) return NULL;
            } while (accept(p, TK_COMMA));
            if (!expect(p, TK_RPAREN, "')' or ','")) return NULL;
            st->cols = alloc(p, (cols.n + 1) * sizeof *st->cols);
            if (!st->cols) return NULL;
            for (uint32_t i = 0; i < cols.n; i++) st->cols[i] = *(cep_ast_coldef_t *)cols.v[i];
            st->ncols = cols.n;
        }
        if (accept_kw(p, "WITH") && !parse_props(p, &st->props, &st->nprops)) return NULL;
        if (accept_kw(p, "AS")) {
            if (st->ncols) {
                fail(p, t, "CREATE ... AS SELECT cannot also declare columns");
                return NULL;
            }
            st->kind = STMT_CREATE_AS;
            st->select = parse_select(p);
            if (!st->select) return NULL;
        } else {
            st->kind = STMT_CREATE_SOURCE;
        }
        return st;
    }
    if (accept_kw(p, "INSERT")) {
        if (!expect_kw(p, "INTO") || !ident(p, &st->name, &st->name_quoted, "a stream name"))
            return NULL;
        if (accept_kw(p, "WITH") && !parse_props(p, &st->props, &st->nprops)) return NULL;
        st->kind = STMT_INSERT;
        st->select = parse_select(p);
        return st->select ? st : NULL;
    }
    if (is_kw(t, "SELECT")) {
        st->kind = STMT_SELECT;
        st->select = parse_select(p);
        return st->select ? st : NULL;
    }
    expected(p, "CREATE, INSERT or SELECT");
    return NULL;
}

cep_status_t cep_parse(cep_arena_t *arena, const char *file, const char *sql, size_t len,
                       cep_ast_stmt_t **out, cep_error_t *err)
{
    parser_t p = {.a = arena, .src = sql, .err = err};
    cep_status_t st = cep_lex(arena, file, sql, len, &p.t, &p.n, err);
    if (st) return st;
    cep_ast_stmt_t *head = NULL, **tail = &head;
    while (peek(&p)->kind != TK_EOF) {
        if (accept(&p, TK_SEMI)) continue;
        uint32_t start = peek(&p)->pos.offset;
        cep_ast_stmt_t *s = parse_stmt(&p);
        if (!s) break;
        if (peek(&p)->kind != TK_SEMI && peek(&p)->kind != TK_EOF) {
            expected(&p, "';' or end of statement");
            break;
        }
        uint32_t end = peek(&p)->pos.offset;
        s->text = sql + start;
        s->text_len = end - start;
        *tail = s;
        tail = &s->next;
    }
    if (p.failed) return err ? err->code : CEP_ERR_SYNTAX;
    *out = head;
    return CEP_OK;
}

/* ---- structural equality and formatting ------------------------------- */

bool cep_ast_equal(const cep_ast_t *a, const cep_ast_t *b)
{
    if (a == b) return true;
    if (!a || !b) return false;
    if (a->kind != b->kind || a->op != b->op || a->negated != b->negated ||
        a->distinct != b->distinct || a->nargs != b->nargs)
        return false;
    switch (a->kind) {
    case AST_LITERAL:
    case AST_INTERVAL:
        if (a->lit_type->kind != b->lit_type->kind) return false;
        if (a->lit.kind == CEP_K_NULL || b->lit.kind == CEP_K_NULL)
            return a->lit.kind == b->lit.kind;
        return cep_value_cmp(&a->lit, &b->lit) == 0;
    case AST_COLUMN:
        /* qualifiers were checked by the binder; compare names */
        return !strcmp(a->name, b->name);
    case AST_CALL:
    case AST_DEREF:
        if (strcmp(a->name, b->name)) return false;
        break;
    case AST_CAST:
        if (!cep_type_equal(a->cast_type, b->cast_type)) return false;
        break;
    case AST_STRUCT:
        for (uint32_t i = 0; i < a->nargs; i++)
            if (strcmp(a->names[i], b->names[i])) return false;
        break;
    case AST_CASE:
        if (!cep_ast_equal(a->operand, b->operand) || !cep_ast_equal(a->else_, b->else_))
            return false;
        break;
    default: break;
    }
    for (uint32_t i = 0; i < a->nargs; i++)
        if (!cep_ast_equal(a->args[i], b->args[i])) return false;
    return true;
}

static const char *binop_text(int op)
{
    switch (op) {
    case TK_PLUS: return "+";
    case TK_MINUS: return "-";
    case TK_STAR: return "*";
    case TK_SLASH: return "/";
    case TK_PERCENT: return "%";
    case TK_EQ: return "=";
    case TK_NE: return "<>";
    case TK_LT: return "<";
    case TK_LE: return "<=";
    case TK_GT: return ">";
    case TK_GE: return ">=";
    case TK_CONCAT: return "||";
    case 'A': return "AND";
    case 'O': return "OR";
    default: return "?";
    }
}

void cep_ast_format(const cep_ast_t *e, cep_buf_t *out)
{
    if (!e) return;
    switch (e->kind) {
    case AST_LITERAL:
        if (e->lit_type->kind == CEP_K_STRING) {
            cep_buf_putc(out, '\'');
            cep_buf_put(out, e->lit.u.s.p, e->lit.u.s.n);
            cep_buf_putc(out, '\'');
        } else if (e->lit_type->kind == CEP_K_NULL)
            cep_buf_puts(out, "null");
        else
            cep_value_to_json(&e->lit, out);
        break;
    case AST_INTERVAL: cep_buf_printf(out, "INTERVAL %lld MILLISECONDS", (long long)e->lit.u.i); break;
    case AST_COLUMN:
        if (e->qualifier) cep_buf_printf(out, "%s.", e->qualifier);
        cep_buf_puts(out, e->name);
        break;
    case AST_STAR: cep_buf_puts(out, e->qualifier ? "q.*" : "*"); break;
    case AST_UNARY:
        cep_buf_puts(out, e->op == 'N' ? "(NOT " : "(-");
        cep_ast_format(e->args[0], out);
        cep_buf_putc(out, ')');
        break;
    case AST_BINARY:
        cep_buf_putc(out, '(');
        cep_ast_format(e->args[0], out);
        cep_buf_printf(out, " %s ", binop_text(e->op));
        cep_ast_format(e->args[1], out);
        cep_buf_putc(out, ')');
        break;
    case AST_ISNULL:
        cep_buf_putc(out, '(');
        cep_ast_format(e->args[0], out);
        cep_buf_puts(out, e->negated ? " IS NOT NULL)" : " IS NULL)");
        break;
    case AST_DISTINCT:
        cep_buf_putc(out, '(');
        cep_ast_format(e->args[0], out);
        cep_buf_puts(out, e->negated ? " IS NOT DISTINCT FROM " : " IS DISTINCT FROM ");
        cep_ast_format(e->args[1], out);
        cep_buf_putc(out, ')');
        break;
    case AST_BETWEEN:
        cep_buf_putc(out, '(');
        cep_ast_format(e->args[0], out);
        cep_buf_puts(out, e->negated ? " NOT BETWEEN " : " BETWEEN ");
        cep_ast_format(e->args[1], out);
        cep_buf_puts(out, " AND ");
        cep_ast_format(e->args[2], out);
        cep_buf_putc(out, ')');
        break;
    case AST_IN:
        cep_buf_putc(out, '(');
        cep_ast_format(e->args[0], out);
        cep_buf_puts(out, e->negated ? " NOT IN (" : " IN (");
        for (uint32_t i = 1; i < e->nargs; i++) {
            if (i > 1) cep_buf_puts(out, ", ");
            cep_ast_format(e->args[i], out);
        }
        cep_buf_puts(out, "))");
        break;
    case AST_LIKE:
        cep_buf_putc(out, '(');
        cep_ast_format(e->args[0], out);
        cep_buf_puts(out, e->negated ? " NOT LIKE " : " LIKE ");
        cep_ast_format(e->args[1], out);
        if (e->nargs > 2) {
            cep_buf_puts(out, " ESCAPE ");
            cep_ast_format(e->args[2], out);
        }
        cep_buf_putc(out, ')');
        break;
    case AST_CASE:
        cep_buf_puts(out, "(CASE");
        if (e->operand) {
            cep_buf_putc(out, ' ');
            cep_ast_format(e->operand, out);
        }
        for (uint32_t i = 0; i + 1 < e->nargs; i += 2) {
            cep_buf_puts(out, " WHEN ");
            cep_ast_format(e->args[i], out);
            cep_buf_puts(out, " THEN ");
            cep_ast_format(e->args[i + 1], out);
        }
        if (e->else_) {
            cep_buf_puts(out, " ELSE ");
            cep_ast_format(e->else_, out);
        }
        cep_buf_puts(out, " END)");
        break;
    case AST_CALL:
        cep_buf_printf(out, "%s(%s", e->name, e->distinct ? "DISTINCT " : "");
        for (uint32_t i = 0; i < e->nargs; i++) {
            if (i) cep_buf_puts(out, ", ");
            cep_ast_format(e->args[i], out);
        }
        cep_buf_putc(out, ')');
        break;
    case AST_CAST:
        cep_buf_puts(out, "CAST(");
        cep_ast_format(e->args[0], out);
        cep_buf_puts(out, " AS ");
        cep_type_format(e->cast_type, out);
        cep_buf_putc(out, ')');
        break;
    case AST_SUBSCRIPT:
        cep_ast_format(e->args[0], out);
        cep_buf_putc(out, '[');
        cep_ast_format(e->args[1], out);
        cep_buf_putc(out, ']');
        break;
    case AST_DEREF:
        cep_ast_format(e->args[0], out);
        cep_buf_printf(out, "->%s", e->name);
        break;
    case AST_ARRAY:
    case AST_MAP:
    case AST_STRUCT:
        cep_buf_puts(out, e->kind == AST_ARRAY ? "ARRAY[" : e->kind == AST_MAP ? "MAP(" : "STRUCT(");
        for (uint32_t i = 0; i < e->nargs; i++) {
            if (i) cep_buf_puts(out, ", ");
            if (e->kind == AST_STRUCT) cep_buf_printf(out, "%s:=", e->names[i]);
            cep_ast_format(e->args[i], out);
        }
        cep_buf_putc(out, e->kind == AST_ARRAY ? ']' : ')');
        break;
    default: break;
    }
}
