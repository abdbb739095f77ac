/*
 * expr.c — the expression virtual machine and its program builder.
 *
 * Programs are typed at compile time, so every opcode knows its operand
 * kinds: the binder inserts OP_CAST where a value must be widened. NULL
 * follows SQL three-valued logic throughout.
 *
 * Opcodes (stack effect in brackets):
 *   OP_COL a            [-> v]       push row[a]
 *   OP_CONST a          [-> v]       push consts[a]
 *   OP_NEG              [v -> v]     negate a number
 *   OP_ARITH a b c      [x y -> v]   x a y, a in + - * / %, result kind b,
 *                                    scale c for DECIMAL; NULL if either is
 *                                    NULL; integer / or % by 0 is an error
 *   OP_CONCAT           [x y -> s]   string concatenation (NULL if either)
 *   OP_CMP a            [x y -> b]   comparison a (TK_EQ..TK_GE); NULL if either
 *   OP_NOT              [b -> b]
 *   OP_AND, OP_OR       [x y -> b]   three-valued
 *   OP_ISNULL a         [v -> b]     IS NULL (a = 0) / IS NOT NULL (a = 1)
 *   OP_DISTINCT a       [x y -> b]   IS DISTINCT FROM (a = 0) / NOT DISTINCT (a = 1)
 *   OP_IN b             [x l1..lb -> b]  SQL IN: TRUE on a match, else NULL if
 *                                    x or any item is NULL, else FALSE
 *   OP_LIKE b aux       [s p [e] -> b]  LIKE with a precompiled pattern (aux)
 *                                    or one compiled from p at run time
 *   OP_JMP a                         pc = a
 *   OP_JMPNT a          [b ->]       pc = a unless b is TRUE
 *   OP_POP              [v ->]
 *   OP_CALL a b aux     [args -> v]  scalar function a with b arguments
 *   OP_CAST aux         [v -> v]     convert to type aux; NULL if impossible
 *   OP_INDEX            [c i -> v]   array (1-based; negative from the end) or map lookup
 *   OP_FIELD a          [s -> v]     struct field a (NULL struct gives NULL)
 *   OP_MKARRAY b aux    [v1..vb -> a]
 *   OP_MKMAP b aux      [k1 v1.. -> m]
 *   OP_MKSTRUCT b aux   [v1..vb -> s]
 */
#include "patterns/expr.h"
#include "patterns/ast.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- builder ----------------------------------------------------------- */

void cep_progbuf_init(cep_progbuf_t *pb, cep_arena_t *arena)
{
    memset(pb, 0, sizeof *pb);
    pb->arena = arena;
}

uint32_t cep_progbuf_emit(cep_progbuf_t *pb, cep_op_t op, uint32_t a, uint16_t b, uint8_t c,
                          const void *aux, int stack_delta)
{
    if (pb->ncode == pb->cap) {
        uint32_t cap = pb->cap ? pb->cap * 2 : 16;
        cep_insn_t *n = cep_arena_alloc(pb->arena, cap * sizeof *n);
        if (!n) {
            pb->oom = true;
            return pb->ncode;
        }
        if (pb->ncode) memcpy(n, pb->code, pb->ncode * sizeof *n);
        pb->code = n;
        pb->cap = cap;
    }
    cep_insn_t *i = &pb->code[pb->ncode];
    i->op = (uint8_t)op;
    i->a = a;
    i->b = b;
    i->c = c;
    i->aux = aux;
    pb->depth += stack_delta;
    if (pb->depth > pb->max_depth) pb->max_depth = pb->depth;
    return pb->ncode++;
}

uint32_t cep_progbuf_const(cep_progbuf_t *pb, cep_value_t v)
{
    if (pb->nconsts == pb->ccap) {
        uint32_t cap = pb->ccap ? pb->ccap * 2 : 8;
        cep_value_t *n = cep_arena_alloc(pb->arena, cap * sizeof *n);
        if (!n) {
            pb->oom = true;
            return 0;
        }
        if (pb->nconsts) memcpy(n, pb->consts, pb->nconsts * sizeof *n);
        pb->consts = n;
        pb->ccap = cap;
    }
    pb->consts[pb->nconsts] = v;
    return pb->nconsts++;
}

cep_program_t *cep_progbuf_finish(cep_progbuf_t *pb, const cep_type_t *type, const char *text)
{
    if (pb->oom) return NULL;
    cep_program_t *p = cep_arena_zalloc(pb->arena, sizeof *p);
    if (!p) return NULL;
    p->code = pb->code;
    p->ncode = pb->ncode;
    p->consts = pb->consts;
    p->nconsts = pb->nconsts;
    p->max_stack = (uint32_t)pb->max_depth + 1;
    p->type = type;
    p->text = text;
    cep_program_shape(p);
    return p;
}

void cep_program_shape(cep_program_t *p)
{
    const cep_insn_t *c = p->code;
    p->shape = CEP_SHAPE_ANY;
    if (p->ncode == 1 && c[0].op == OP_COL) {
        p->shape = CEP_SHAPE_COL;
        p->col = c[0].a;
    } else if (p->ncode == 3 && c[0].op == OP_COL && c[1].op == OP_CONST && c[2].op == OP_CMP) {
        p->shape = CEP_SHAPE_COL_CMP;
        p->col = c[0].a;
        p->k = p->consts[c[1].a];
        p->cmp = (uint8_t)c[2].a;
    }
}

/* COL_CMP without the interpreter, for the kinds where that is the same
 * comparison: integers with integers, strings with strings, NULL. false:
 * run the program. */
static bool run_col_cmp(const cep_program_t *p, const cep_value_t *v, cep_value_t *out)
{
    int c;
    if (v->kind == CEP_K_NULL || p->k.kind == CEP_K_NULL) {
        *out = cep_null();
        return true;
    }
    bool ints = (v->kind == CEP_K_INT || v->kind == CEP_K_BIGINT) &&
                (p->k.kind == CEP_K_INT || p->k.kind == CEP_K_BIGINT);
    if (ints) c = v->u.i < p->k.u.i ? -1 : v->u.i > p->k.u.i;
    else if (v->kind == CEP_K_STRING && p->k.kind == CEP_K_STRING) {
        if (p->cmp == TK_EQ || p->cmp == TK_NE) {
            bool eq = v->u.s.n == p->k.u.s.n && (!v->u.s.n || !memcmp(v->u.s.p, p->k.u.s.p, v->u.s.n));
            *out = cep_v_bool(p->cmp == TK_EQ ? eq : !eq);
            return true;
        }
        c = cep_value_cmp(v, &p->k);
    } else
        return false;
    bool r;
    switch (p->cmp) {
    case TK_EQ: r = c == 0; break;
    case TK_NE: r = c != 0; break;
    case TK_LT: r = c < 0; break;
    case TK_LE: r = c <= 0; break;
    case TK_GT: r = c > 0; break;
    case TK_GE: r = c >= 0; break;
    default: return false;
    }
    *out = cep_v_bool(r);
    return true;
}

/* ---- LIKE -------------------------------------------------------------- */

/* A LIKE pattern is a sequence of literal bytes, '_' (one char) and '%'
 * (any run); matching is iterative with one backtrack point, linear in
 * practice. */
struct cep_like {
    size_t n;
    unsigned char *kind; /* 0 literal, 1 any-one, 2 any-run */
    char *ch;
};

cep_like_t *cep_like_compile(cep_arena_t *a, const char *pat, size_t n, int escape)
{
    cep_like_t *l = cep_arena_zalloc(a, sizeof *l);
    if (!l) return NULL;
    l->kind = cep_arena_alloc(a, n + 1);
    l->ch = cep_arena_alloc(a, n + 1);
    if (!l->kind || !l->ch) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (escape >= 0 && c == (char)escape && i + 1 < n) {
            l->kind[k] = 0;
            l->ch[k++] = pat[++i];
        } else if (c == '%') {
            l->kind[k] = 2;
            l->ch[k++] = 0;
        } else if (c == '_') {
            l->kind[k] = 1;
            l->ch[k++] = 0;
        } else {
            l->kind[k] = 0;
            l->ch[k++] = c;
        }
    }
    l->n = k;
    return l;
}

bool cep_like_match(const cep_like_t *l, const char *s, size_t n)
{
    size_t pi = 0, si = 0, star_p = (size_t)-1, star_s = 0;
    while (si < n) {
        if (pi < l->n && l->kind[pi] == 2) {
            star_p = pi++;
            star_s = si;
        } else if (pi < l->n && (l->kind[pi] == 1 || l->ch[pi] == s[si])) {
            pi++;
            si++;
        } else if (star_p != (size_t)-1) {
            pi = star_p + 1;
            si = ++star_s;
        } else
            return false;
    }
    while (pi < l->n && l->kind[pi] == 2) pi++;
    return pi == l->n;
}

/* ---- timestamps -------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t n, size_t *i, int count)
{
    int v = 0;
    for (int k = 0; k < count; k++) {
        if (*i >= n || !isdigit((unsigned char)s[*i])) return -1;
        v = v * 10 + (s[(*i)++] - '0');
    }
    return v;
}

bool cep_parse_timestamp_text(const char *s, size_t n, int64_t *ms)
{
    size_t i = 0;
    int y = digits(s, n, &i, 4);
    if (y < 0) return false;
    int mo = 1, d = 1, h = 0, mi = 0, se = 0, frac = 0;
    if (i < n && s[i] == '-') {
        i++;
        if ((mo = digits(s, n, &i, 2)) < 0) return false;
        if (i < n && s[i] == '-') {
            i++;
            if ((d = digits(s, n, &i, 2)) < 0) return false;
        }
    }
    if (i < n && (s[i] == 'T' || s[i] == ' ')) {
        i++;
        if ((h = digits(s, n, &i, 2)) < 0) return false;
        if (i < n && s[i] == ':') {
            i++;
            if ((mi = digits(s, n, &i, 2)) < 0) return false;
            if (i < n && s[i] == ':') {
                i++;
                if ((se = digits(s, n, &i, 2)) < 0) return false;
                if (i < n && s[i] == '.') {
                    i++;
                    int nd = 0;
                    while (i < n && isdigit((unsigned char)s[i])) {
                        if (nd < 3) frac = frac * 10 + (s[i] - '0');
                        nd++;
                        i++;
                    }
                    for (; nd < 3; nd++) frac *= 10;
                }
            }
        }
    }
    int64_t off_min = 0;
    if (i < n && (s[i] == 'Z' || s[i] == 'z')) i++;
    else if (i < n && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        int oh = digits(s, n, &i, 2);
        if (oh < 0) return false;
        if (i < n && s[i] == ':') i++;
        int om = i < n ? digits(s, n, &i, 2) : 0;
        if (om < 0) return false;
        off_min = sign * (oh * 60 + om);
    }
    if (i != n || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000LL + se * 1000LL + frac - off_min * 60000LL;
    return true;
}

/* ---- casts ------------------------------------------------------------- */

static bool parse_i64(const char *s, size_t n, int64_t *out)
{
    char tmp[64];
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (!n || n >= sizeof tmp) return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

static bool parse_f64(const char *s, size_t n, double *out)
{
    char tmp[64];
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (!n || n >= sizeof tmp) return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end;
    double v = strtod(tmp, &end);
    if (*end) return false;
    *out = v;
    return true;
}

static cep_value_t to_string(const cep_value_t *v, cep_arena_t *a)
{
    if (v->kind == CEP_K_STRING) return *v;
    cep_buf_t b;
    cep_buf_init(&b);
    if (v->kind == CEP_K_BYTES || v->kind == CEP_K_STRUCT || v->kind == CEP_K_ARRAY ||
        v->kind == CEP_K_MAP)
        cep_value_to_json(v, &b);
    else
        cep_value_to_text(v, &b);
    const char *p = cep_arena_strndup(a, b.data ? b.data : "", b.len);
    size_t n = b.len;
    cep_buf_free(&b);
    return p ? cep_v_str(p, n) : cep_null();
}

/* Convert v to type t; returns false when the value cannot be converted
 * (the result is then NULL, as ksqlDB's CAST of bad text). */
static bool cast_value(const cep_value_t *v, const cep_type_t *t, cep_arena_t *a, cep_value_t *out)
{
    *out = cep_null();
    if (v->kind == CEP_K_NULL) return true;
    switch (t->kind) {
    case CEP_K_STRING: *out = to_string(v, a); return true;
    case CEP_K_INT:
    case CEP_K_BIGINT:
    case CEP_K_DOUBLE:
    case CEP_K_DECIMAL:
        if (v->kind == CEP_K_STRING) {
            if (t->kind == CEP_K_DOUBLE) {
                double d;
                if (!parse_f64(v->u.s.p, v->u.s.n, &d)) return false;
                *out = cep_v_double(d);
                return true;
            }
            int64_t i;
            if (t->kind != CEP_K_DECIMAL && parse_i64(v->u.s.p, v->u.s.n, &i)) {
                if (t->kind == CEP_K_INT && (i < INT32_MIN || i > INT32_MAX)) return false;
                *out = cep_v_int(t->kind, i);
                return true;
            }
            double d;
            if (!parse_f64(v->u.s.p, v->u.s.n, &d)) return false;
            cep_value_t dv = cep_v_double(d);
            *out = cep_value_cast_num(&dv, t);
            return true;
        }
        if (v->kind == CEP_K_BOOLEAN) return false;
        if (v->kind == CEP_K_TIMESTAMP || v->kind == CEP_K_DATE || v->kind == CEP_K_TIME) {
            cep_value_t iv = cep_v_int(CEP_K_BIGINT, v->u.i);
            *out = cep_value_cast_num(&iv, t);
            return true;
        }
        *out = cep_value_cast_num(v, t);
        return true;
    case CEP_K_BOOLEAN:
        if (v->kind == CEP_K_BOOLEAN) {
            *out = *v;
            return true;
        }
        if (v->kind == CEP_K_STRING) {
            if (cep_str_ieq(v->u.s.p, v->u.s.n, "true") || cep_str_ieq(v->u.s.p, v->u.s.n, "t") ||
                cep_str_ieq(v->u.s.p, v->u.s.n, "yes") || cep_str_ieq(v->u.s.p, v->u.s.n, "y"))
                *out = cep_v_bool(true);
            else
                *out = cep_v_bool(false);
            return true;
        }
        return false;
    case CEP_K_TIMESTAMP:
        if (v->kind == CEP_K_STRING) {
            int64_t ms;
            if (!cep_parse_timestamp_text(v->u.s.p, v->u.s.n, &ms)) return false;
            *out = cep_v_int(CEP_K_TIMESTAMP, ms);
            return true;
        }
        if (v->kind == CEP_K_DATE) {
            *out = cep_v_int(CEP_K_TIMESTAMP, v->u.i * 86400000LL);
            return true;
        }
        if (v->kind == CEP_K_TIMESTAMP || v->kind == CEP_K_BIGINT || v->kind == CEP_K_INT) {
            *out = cep_v_int(CEP_K_TIMESTAMP, v->u.i);
            return true;
        }
        return false;
    case CEP_K_DATE:
        if (v->kind == CEP_K_TIMESTAMP) {
            int64_t d = v->u.i / 86400000LL;
            if (v->u.i < 0 && v->u.i % 86400000LL) d--;
            *out = cep_v_int(CEP_K_DATE, d);
            return true;
        }
        if (v->kind == CEP_K_DATE) {
            *out = *v;
            return true;
        }
        return false;
    case CEP_K_TIME:
        if (v->kind == CEP_K_TIME) {
            *out = *v;
            return true;
        }
        return false;
    case CEP_K_BYTES:
        if (v->kind == CEP_K_BYTES) {
            *out = *v;
            return true;
        }
        return false;
    case CEP_K_ARRAY:
    case CEP_K_MAP:
    case CEP_K_STRUCT:
        if (v->kind != t->kind) return false;
        if (t->kind == CEP_K_STRUCT || t->kind == CEP_K_MAP || t->kind == CEP_K_ARRAY) {
            size_t slots = v->kind == CEP_K_MAP ? 2u * v->u.l->n : v->u.l->n;
            cep_list_t *l = cep_arena_alloc(a, sizeof *l + slots * sizeof(cep_value_t));
            if (!l) return false;
            l->type = t;
            l->n = v->u.l->n;
            for (size_t i = 0; i < slots; i++) {
                const cep_type_t *et = t->kind == CEP_K_ARRAY  ? t->elem
                                       : t->kind == CEP_K_MAP ? (i % 2 ? t->elem : t->key)
                                       : (i < t->nfields ? t->fields[i].type : &cep_type_null);
                if (!cast_value(&v->u.l->v[i], et, a, &l->v[i])) l->v[i] = cep_null();
            }
            out->kind = (uint8_t)t->kind;
            out->u.l = l;
        }
        return true;
    default: *out = *v; return true;
    }
}

bool cep_value_cast(const cep_value_t *v, const cep_type_t *t, cep_arena_t *a, cep_value_t *out);
bool cep_value_cast(const cep_value_t *v, const cep_type_t *t, cep_arena_t *a, cep_value_t *out)
{
    return cast_value(v, t, a, out);
}

/* ---- the machine ------------------------------------------------------- */

static int64_t pow10i(int n)
{
    int64_t p = 1;
    while (n-- > 0) p *= 10;
    return p;
}

static bool runtime_error(cep_eval_t *ctx, const char *msg)
{
    ctx->failed = true;
    if (ctx->err) cep_error_set(ctx->err, CEP_ERR_RUNTIME, NULL, "%s", msg);
    return false;
}

static bool arith(cep_eval_t *ctx, int op, int kind, int scale, const cep_value_t *x,
                  const cep_value_t *y, cep_value_t *r)
{
    if (x->kind == CEP_K_NULL || y->kind == CEP_K_NULL) {
        *r = cep_null();
        return true;
    }
    if (kind == CEP_K_DOUBLE) {
        double a = cep_value_as_double(x), b = cep_value_as_double(y), v = 0;
        switch (op) {
        case '+': v = a + b; break;
        case '-': v = a - b; break;
        case '*': v = a * b; break;
        case '/': v = a / b; break;
        case '%': v = fmod(a, b); break;
        }
        *r = cep_v_double(v);
        return true;
    }
    if (kind == CEP_K_DECIMAL) {
        /* operands were cast to DECIMAL; compute in doubles for * and /,
         * exactly for + and - */
        const cep_type_t rt = {.kind = CEP_K_DECIMAL, .precision = 18, .scale = (uint8_t)scale};
        if (op == '+' || op == '-') {
            cep_value_t a = cep_value_cast_num(x, &rt), b = cep_value_cast_num(y, &rt);
            *r = cep_v_int(CEP_K_DECIMAL, op == '+' ? a.u.i + b.u.i : a.u.i - b.u.i);
            r->scale = (uint8_t)scale;
            return true;
        }
        double a = cep_value_as_double(x), b = cep_value_as_double(y), v;
        if ((op == '/' || op == '%') && b == 0) return runtime_error(ctx, "division by zero");
        v = op == '*' ? a * b : op == '/' ? a / b : fmod(a, b);
        *r = cep_v_int(CEP_K_DECIMAL, (int64_t)llround(v * (double)pow10i(scale)));
        r->scale = (uint8_t)scale;
        return true;
    }
    int64_t a = x->u.i, b = y->u.i, v = 0;
    switch (op) {
    case '+': v = (int64_t)((uint64_t)a + (uint64_t)b); break;
    case '-': v = (int64_t)((uint64_t)a - (uint64_t)b); break;
    case '*': v = (int64_t)((uint64_t)a * (uint64_t)b); break;
    case '/':
    case '%':
        if (b == 0) return runtime_error(ctx, "division by zero");
        if (b == -1) v = op == '/' ? (int64_t)(0 - (uint64_t)a) : 0;
        else v = op == '/' ? a / b : a % b;
        break;
    }
    if (kind == CEP_K_INT) v = (int32_t)v;
    *r = cep_v_int((cep_kind_t)kind, v);
    return true;
}

static cep_value_t tri(int t) /* -1 null, 0 false, 1 true */
{
    return t < 0 ? cep_null() : cep_v_bool(t != 0);
}

static int truth(const cep_value_t *v)
{
    return v->kind == CEP_K_NULL ? -1 : v->u.b;
}

bool cep_program_run(const cep_program_t *p, const cep_value_t *row, cep_eval_t *ctx,
                     cep_value_t *out)
{
    if (p->shape == CEP_SHAPE_COL) {
        ctx->failed = false;
        *out = row[p->col];
        return true;
    }
    if (p->shape == CEP_SHAPE_COL_CMP && run_col_cmp(p, &row[p->col], out)) {
        ctx->failed = false;
        return true;
    }
    if (ctx->stack_cap < p->max_stack + 8) {
        uint32_t cap = p->max_stack + 64;
        cep_value_t *s = realloc(ctx->stack, cap * sizeof *s);
        if (!s) return runtime_error(ctx, "out of memory");
        ctx->stack = s;
        ctx->stack_cap = cap;
    }
    ctx->failed = false;
    cep_value_t *sp = ctx->stack; /* next free slot */
    const cep_insn_t *code = p->code;
    uint32_t pc = 0, n = p->ncode;
    while (pc < n) {
        const cep_insn_t *in = &code[pc++];
        switch ((cep_op_t)in->op) {
        case OP_COL: *sp++ = row[in->a]; break;
        case OP_CONST: *sp++ = p->consts[in->a]; break;
        case OP_NEG: {
            cep_value_t *v = sp - 1;
            if (v->kind == CEP_K_DOUBLE) v->u.d = -v->u.d;
            else if (v->kind != CEP_K_NULL) {
                v->u.i = (int64_t)(0 - (uint64_t)v->u.i);
                if (v->kind == CEP_K_INT) v->u.i = (int32_t)v->u.i;
            }
            break;
        }
        case OP_ARITH: {
            sp -= 2;
            if (!arith(ctx, (int)in->a, in->b, in->c, &sp[0], &sp[1], &sp[0])) goto fail;
            sp++;
            break;
        }
        case OP_CONCAT: {
            sp -= 2;
            if (sp[0].kind == CEP_K_NULL || sp[1].kind == CEP_K_NULL) {
                sp[0] = cep_null();
            } else {
                size_t len = (size_t)sp[0].u.s.n + sp[1].u.s.n;
                char *m = cep_arena_alloc(ctx->scratch, len + 1);
                if (!m) goto oom;
                memcpy(m, sp[0].u.s.p, sp[0].u.s.n);
                memcpy(m + sp[0].u.s.n, sp[1].u.s.p, sp[1].u.s.n);
                m[len] = 0;
                sp[0] = cep_v_str(m, len);
            }
            sp++;
            break;
        }
        case OP_CMP: {
            sp -= 2;
            if (sp[0].kind == CEP_K_NULL || sp[1].kind == CEP_K_NULL) {
                sp[0] = cep_null();
            } else {
                bool r;
                if (in->a == TK_EQ || in->a == TK_NE) {
                    bool eq = cep_value_eq(&sp[0], &sp[1]);
                    r = in->a == TK_EQ ? eq : !eq;
                } else {
                    int c = cep_value_cmp(&sp[0], &sp[1]);
                    r = in->a == TK_LT ? c < 0 : in->a == TK_LE ? c <= 0 : in->a == TK_GT ? c > 0 : c >= 0;
                }
                sp[0] = cep_v_bool(r);
            }
            sp++;
            break;
        }
        case OP_NOT: {
            cep_value_t *v = sp - 1;
            if (v->kind != CEP_K_NULL) v->u.b = !v->u.b;
            break;
        }
        case OP_AND: {
            sp -= 2;
            int a = truth(&sp[0]), b = truth(&sp[1]);
            sp[0] = tri(a == 0 || b == 0 ? 0 : (a < 0 || b < 0 ? -1 : 1));
            sp++;
            break;
        }
        case OP_OR: {
            sp -= 2;
            int a = truth(&sp[0]), b = truth(&sp[1]);
            sp[0] = tri(a == 1 || b == 1 ? 1 : (a < 0 || b < 0 ? -1 : 0));
            sp++;
            break;
        }
        case OP_ISNULL: {
            cep_value_t *v = sp - 1;
            bool isnull = v->kind == CEP_K_NULL;
            *v = cep_v_bool(in->a ? !isnull : isnull);
            break;
        }
        case OP_DISTINCT: {
            sp -= 2;
            bool distinct;
            if (sp[0].kind == CEP_K_NULL || sp[1].kind == CEP_K_NULL)
                distinct = sp[0].kind != sp[1].kind;
            else
                distinct = !cep_value_eq(&sp[0], &sp[1]);
            sp[0] = cep_v_bool(in->a ? !distinct : distinct);
            sp++;
            break;
        }
        case OP_IN: {
            uint32_t k = in->b;
            sp -= k + 1;
            int r = 0;
            if (sp[0].kind == CEP_K_NULL) r = -1;
            else
                for (uint32_t i = 1; i <= k; i++) {
                    if (sp[i].kind == CEP_K_NULL) {
                        if (r == 0) r = -1;
                    } else if (cep_value_eq(&sp[0], &sp[i])) {
                        r = 1;
                        break;
                    }
                }
            sp[0] = tri(r);
            sp++;
            break;
        }
        case OP_LIKE: {
            uint32_t k = in->b;
            sp -= k;
            cep_value_t *s = &sp[0], *pat = &sp[1];
            if (s->kind == CEP_K_NULL || pat->kind == CEP_K_NULL) {
                sp[0] = cep_null();
            } else {
                const cep_like_t *l = in->aux;
                if (!l) {
                    int esc = -1;
                    if (k > 2 && sp[2].kind == CEP_K_STRING && sp[2].u.s.n)
                        esc = (unsigned char)sp[2].u.s.p[0];
                    l = cep_like_compile(ctx->scratch, pat->u.s.p, pat->u.s.n, esc);
                    if (!l) goto oom;
                }
                sp[0] = cep_v_bool(cep_like_match(l, s->u.s.p, s->u.s.n));
            }
            sp++;
            break;
        }
        case OP_JMP: pc = in->a; break;
        case OP_JMPNT: {
            sp--;
            if (!(sp->kind == CEP_K_BOOLEAN && sp->u.b)) pc = in->a;
            break;
        }
        case OP_POP: sp--; break;
        case OP_CALL: {
            const cep_func_t *f = cep_func_by_id((int)in->a);
            int k = in->b;
            sp -= k;
            cep_value_t r = cep_null();
            bool skip = false;
            if (f->null_propagates)
                for (int i = 0; i < k; i++)
                    if (sp[i].kind == CEP_K_NULL) skip = true;
            if (!skip && !f->eval(ctx, in->aux, sp, k, &r)) {
                if (!ctx->failed) runtime_error(ctx, f->name);
                goto fail;
            }
            sp[0] = r;
            sp++;
            break;
        }
        case OP_CAST: {
            cep_value_t r;
            if (!cast_value(sp - 1, in->aux, ctx->scratch, &r)) r = cep_null();
            sp[-1] = r;
            break;
        }
        case OP_INDEX: {
            sp -= 2;
            cep_value_t c = sp[0], i = sp[1];
            cep_value_t r = cep_null();
            if (c.kind == CEP_K_ARRAY && i.kind != CEP_K_NULL) {
                int64_t idx = i.u.i, len = c.u.l->n;
                if (idx < 0) idx = len + idx + 1;
                if (idx >= 1 && idx <= len) r = c.u.l->v[idx - 1];
            } else if (c.kind == CEP_K_MAP && i.kind != CEP_K_NULL) {
                for (uint32_t j = 0; j < c.u.l->n; j++)
                    if (cep_value_eq(&c.u.l->v[2 * j], &i)) {
                        r = c.u.l->v[2 * j + 1];
                        break;
                    }
            }
            sp[0] = r;
            sp++;
            break;
        }
        case OP_FIELD: {
            cep_value_t *v = sp - 1;
            if (v->kind == CEP_K_STRUCT && in->a < v->u.l->n)
                *v = v->u.l->v[in->a];
            else
                *v = cep_null();
            break;
        }
        case OP_MKARRAY:
        case OP_MKMAP:
        case OP_MKSTRUCT: {
            uint32_t k = in->b;
            sp -= k;
            cep_list_t *l = cep_arena_alloc(ctx->scratch, sizeof *l + k * sizeof(cep_value_t));
            if (!l) goto oom;
            l->type = in->aux;
            l->n = in->op == OP_MKMAP ? k / 2 : k;
            memcpy(l->v, sp, k * sizeof(cep_value_t));
            sp[0].kind = in->op == OP_MKARRAY ? CEP_K_ARRAY
                         : in->op == OP_MKMAP ? CEP_K_MAP
                                               : CEP_K_STRUCT;
            sp[0].u.l = l;
            sp++;
            break;
        }
        default: return runtime_error(ctx, "bad opcode");
        }
    }
    *out = sp[-1];
    return true;
oom:
    runtime_error(ctx, "out of memory");
fail:
    *out = cep_null();
    return false;
}
