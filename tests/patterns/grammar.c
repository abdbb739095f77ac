/*
 * grammar.c — keeps docs/GRAMMAR.md (the one description of the language)
 * and the compiler in agreement (CONVENTIONS.md item 15):
 *
 *   - every ```sql block of the document compiles, together with the ```sql
 *     blocks before it; every ```sql-error block fails with exactly the
 *     position and message on its "-- error: LINE:COL: MESSAGE" line;
 *   - the keyword table lists exactly the words the parser knows (the
 *     upper-case string literals of patterns/parser.c: the parser keeps no
 *     keyword table of its own, keywords are contextual), and the words it
 *     calls reserved are exactly those the parser refuses as an alias;
 *   - the scalar function and aggregate tables list exactly the functions of
 *     the code, with the code's arities;
 *   - every documented WITH property is accepted with its example value.
 *
 * ctest runs this binary from the repository root.
 */
#include "patterns/agg.h"
#include "patterns/expr.h"
#include "patterns/rules.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DOC_PATH    "docs/GRAMMAR.md"
#define PARSER_PATH "patterns/parser.c"

/* ---- the document, as lines ------------------------------------------- */

typedef struct line {
    const char *p;
    size_t n;
} line_t;

typedef struct doc {
    char *text;
    line_t *lines;
    size_t nlines;
} doc_t;

static char *read_whole(const char *path)
{
    char *text = NULL;
    size_t len = 0;
    cep_error_t err;
    cep_error_clear(&err);
    cep_status_t st = cep_file_read(path, &text, &len, &err);
    cr_assert_eq(st, CEP_OK, "cannot read %s (the test runs from the repository root): %s", path,
                 err.msg);
    return text;
}

static void doc_load(doc_t *d)
{
    d->text = read_whole(DOC_PATH);
    size_t cap = 1;
    for (const char *c = d->text; *c; c++) cap += *c == '\n';
    d->lines = calloc(cap, sizeof *d->lines);
    cr_assert_not_null(d->lines);
    d->nlines = 0;
    const char *s = d->text;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        d->lines[d->nlines].p = s;
        d->lines[d->nlines].n = n;
        d->nlines++;
        s += n + (e ? 1 : 0);
    }
}

static void doc_free(doc_t *d)
{
    free(d->lines);
    free(d->text);
}

static bool line_is(const line_t *l, const char *s)
{
    return l->n == strlen(s) && !memcmp(l->p, s, l->n);
}

static bool line_starts(const line_t *l, const char *s)
{
    size_t n = strlen(s);
    return l->n >= n && !memcmp(l->p, s, n);
}

/* ---- tables: rows "| `NAME` | second cell | ..." of one "## " section -- */

typedef struct row {
    char name[64];
    char cell[256]; /* the second cell, trimmed */
    uint32_t line;  /* 1-based, for messages */
} row_t;

typedef struct rows {
    row_t *v;
    size_t n;
} rows_t;

static void copy_trimmed(char *dst, size_t cap, const char *s, size_t n)
{
    while (n && (*s == ' ' || *s == '\t')) s++, n--;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, s, n);
    dst[n] = 0;
}

static rows_t section_rows(const doc_t *d, const char *heading)
{
    rows_t r = {calloc(d->nlines + 1, sizeof(row_t)), 0};
    cr_assert_not_null(r.v);
    size_t i = 0;
    while (i < d->nlines && !line_is(&d->lines[i], heading)) i++;
    cr_assert_lt(i, d->nlines, "%s has no section '%s'", DOC_PATH, heading);
    for (i++; i < d->nlines && !line_starts(&d->lines[i], "## "); i++) {
        const line_t *l = &d->lines[i];
        if (!line_starts(l, "| `")) continue;
        const char *name = l->p + 3;
        const char *end = l->p + l->n;
        const char *tick = memchr(name, '`', (size_t)(end - name));
        cr_assert_not_null(tick, "%s:%zu: unclosed ` in a table row", DOC_PATH, i + 1);
        const char *bar = memchr(tick, '|', (size_t)(end - tick));
        cr_assert_not_null(bar, "%s:%zu: a table row needs a second cell", DOC_PATH, i + 1);
        const char *bar2 = memchr(bar + 1, '|', (size_t)(end - bar - 1));
        cr_assert_not_null(bar2, "%s:%zu: a table row needs a second cell", DOC_PATH, i + 1);
        row_t *row = &r.v[r.n++];
        copy_trimmed(row->name, sizeof row->name, name, (size_t)(tick - name));
        copy_trimmed(row->cell, sizeof row->cell, bar + 1, (size_t)(bar2 - bar - 1));
        row->line = (uint32_t)(i + 1);
    }
    cr_assert_gt(r.n, 0, "section '%s' of %s has no table rows", heading, DOC_PATH);
    for (size_t a = 0; a < r.n; a++)
        for (size_t b = a + 1; b < r.n; b++)
            cr_expect_neq(strcmp(r.v[a].name, r.v[b].name), 0, "%s:%u: %s is listed twice in '%s'",
                          DOC_PATH, r.v[b].line, r.v[b].name, heading);
    return r;
}

static const row_t *find_row(const rows_t *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].name, name)) return &r->v[i];
    return NULL;
}

/* "1", "2..3" or "1+" (max -1: any number) */
static void parse_arity(const row_t *row, int *min, int *max)
{
    char *end;
    long lo = strtol(row->cell, &end, 10);
    cr_assert_neq(end, row->cell, "%s:%u: arity '%s' of %s is not a number", DOC_PATH, row->line,
                  row->cell, row->name);
    long hi = lo;
    if (!strcmp(end, "+")) hi = -1;
    else if (!strncmp(end, "..", 2)) {
        char *end2;
        hi = strtol(end + 2, &end2, 10);
        cr_assert(end2 != end + 2 && !*end2, "%s:%u: bad arity '%s'", DOC_PATH, row->line, row->cell);
    } else
        cr_assert_eq(*end, 0, "%s:%u: bad arity '%s'", DOC_PATH, row->line, row->cell);
    *min = (int)lo;
    *max = (int)hi;
}

/* ---- compiling ---------------------------------------------------------- */

static cep_status_t compile(const char *sql, cep_error_t *err)
{
    cep_ruleset_t *rs = NULL;
    cep_error_clear(err);
    cep_status_t st = cep_rules_compile("grammar-test", sql, strlen(sql), NULL, &rs, err);
    cep_ruleset_free(rs);
    return st;
}

/* ---- (a) the examples compile --------------------------------------------- */

Test(grammar, examples_compile)
{
    doc_t d;
    doc_load(&d);
    /* included[i]: line i belongs to a ```sql block already compiled. The
     * text given to the compiler keeps every other line blank, so positions
     * in errors are positions in the document. */
    bool *included = calloc(d.nlines + 1, sizeof *included);
    cr_assert_not_null(included);
    int nsql = 0, nerr = 0;
    for (size_t i = 0; i < d.nlines; i++) {
        bool is_sql = line_is(&d.lines[i], "```sql");
        bool is_err = line_is(&d.lines[i], "```sql-error");
        if (!is_sql && !is_err) continue;
        size_t first = i + 1, end = first;
        while (end < d.nlines && !line_is(&d.lines[end], "```")) end++;
        cr_assert_lt(end, d.nlines, "%s:%zu: unclosed ``` block", DOC_PATH, i + 1);

        cep_buf_t text;
        cep_buf_init(&text);
        for (size_t k = 0; k < d.nlines; k++) {
            if (included[k] || (k >= first && k < end)) cep_buf_put(&text, d.lines[k].p, d.lines[k].n);
            cep_buf_putc(&text, '\n');
        }
        cep_error_t err;
        cep_status_t st = compile(cep_buf_cstr(&text), &err);
        cep_buf_free(&text);

        if (is_sql) {
            nsql++;
            cr_expect_eq(st, CEP_OK, "%s:%u:%u: the ```sql block at line %zu does not compile: %s",
                         DOC_PATH, err.pos.line, err.pos.col, i + 1, err.msg);
            if (st == CEP_OK)
                for (size_t k = first; k < end; k++) included[k] = true;
        } else {
            nerr++;
            const line_t *h = &d.lines[first];
            cr_assert(first < end && line_starts(h, "-- error: "),
                      "%s:%zu: a ```sql-error block starts with '-- error: LINE:COL: MESSAGE'",
                      DOC_PATH, first + 1);
            char want[512];
            copy_trimmed(want, sizeof want, h->p + 10, h->n - 10);
            char got[600];
            uint32_t rel = err.pos.line >= first + 1 ? err.pos.line - (uint32_t)first : 0;
            snprintf(got, sizeof got, "%u:%u: %s", rel, err.pos.col, err.msg);
            cr_expect_neq(st, CEP_OK, "%s:%zu: the ```sql-error block compiles", DOC_PATH, i + 1);
            cr_expect_str_eq(got, want, "%s:%zu: the ```sql-error block fails with '%s', not '%s'",
                             DOC_PATH, i + 1, got, want);
        }
        i = end;
    }
    /* the document is the language's worked example: it must have some */
    cr_expect_geq(nsql, 5, "only %d ```sql blocks in %s", nsql, DOC_PATH);
    cr_expect_geq(nerr, 3, "only %d ```sql-error blocks in %s", nerr, DOC_PATH);
    free(included);
    doc_free(&d);
}

/* ---- (b) keywords ------------------------------------------------------- */

typedef struct words {
    char v[256][64];
    size_t n;
} words_t;

static bool words_has(const words_t *w, const char *s)
{
    for (size_t i = 0; i < w->n; i++)
        if (!strcmp(w->v[i], s)) return true;
    return false;
}

/* Every string literal of parser.c made only of A-Z and '_' (two or more):
 * the words the parser compares tokens with. Comments and character
 * literals are skipped. */
static void parser_words(words_t *out)
{
    char *src = read_whole(PARSER_PATH);
    out->n = 0;
    const char *p = src;
    while (*p) {
        if (p[0] == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            p = e ? e + 2 : p + strlen(p);
        } else if (p[0] == '/' && p[1] == '/') {
            const char *e = strchr(p, '\n');
            p = e ? e : p + strlen(p);
        } else if (*p == '\'') {
            p++;
            while (*p && *p != '\'') p += (*p == '\\' && p[1]) ? 2 : 1;
            if (*p) p++;
        } else if (*p == '"') {
            const char *s = ++p;
            bool word = true;
            while (*p && *p != '"') {
                if (!((*p >= 'A' && *p <= 'Z') || *p == '_')) word = false;
                p += (*p == '\\' && p[1]) ? 2 : 1;
            }
            size_t n = (size_t)(p - s);
            if (*p) p++;
            if (word && n >= 2 && n < sizeof out->v[0]) {
                char w[64];
                memcpy(w, s, n);
                w[n] = 0;
                if (!words_has(out, w)) {
                    cr_assert_lt(out->n, CEP_ARRAY_LEN(out->v));
                    memcpy(out->v[out->n++], w, n + 1);
                }
            }
        } else
            p++;
    }
    free(src);
}

static const char *const keyword_classes[] = {"reserved", "contextual", "type", "unit"};

Test(grammar, keywords_match_parser)
{
    doc_t d;
    doc_load(&d);
    rows_t kw = section_rows(&d, "## Keywords");
    words_t pw;
    parser_words(&pw);
    cr_assert_gt(pw.n, 40, "found only %zu keywords in %s", pw.n, PARSER_PATH);
    for (size_t i = 0; i < pw.n; i++)
        cr_expect_not_null(find_row(&kw, pw.v[i]), "%s knows the keyword %s; %s does not list it",
                           PARSER_PATH, pw.v[i], DOC_PATH);
    for (size_t i = 0; i < kw.n; i++) {
        cr_expect(words_has(&pw, kw.v[i].name), "%s:%u lists %s, which %s does not know", DOC_PATH,
                  kw.v[i].line, kw.v[i].name, PARSER_PATH);
        bool known = false;
        for (size_t c = 0; c < CEP_ARRAY_LEN(keyword_classes); c++)
            known |= !strcmp(kw.v[i].cell, keyword_classes[c]);
        cr_expect(known, "%s:%u: %s has class '%s' (reserved, contextual, type or unit)", DOC_PATH,
                  kw.v[i].line, kw.v[i].name, kw.v[i].cell);
    }
    cr_expect_eq(kw.n, pw.n, "%s lists %zu keywords, %s knows %zu", DOC_PATH, kw.n, PARSER_PATH, pw.n);
    free(kw.v);
    doc_free(&d);
}

/* A reserved word after "FROM s" is not an alias, so the statement does not
 * parse; any other keyword is taken as the alias, and also works unquoted
 * as a column name and a select-list alias. Quoted, a reserved word is an
 * ordinary name. */
Test(grammar, reserved_words_are_the_ones_refused_as_aliases)
{
    doc_t d;
    doc_load(&d);
    rows_t kw = section_rows(&d, "## Keywords");
    int nreserved = 0;
    for (size_t i = 0; i < kw.n; i++) {
        const char *w = kw.v[i].name;
        bool reserved = !strcmp(kw.v[i].cell, "reserved");
        nreserved += reserved;
        char sql[512];
        cep_error_t err;
        snprintf(sql, sizeof sql,
                 "CREATE STREAM s (a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');\n"
                 "CREATE STREAM o AS SELECT a FROM s %s;",
                 w);
        cep_status_t st = compile(sql, &err);
        if (reserved) {
            cr_expect_eq(st, CEP_ERR_SYNTAX, "%s:%u: %s is documented reserved, but 'FROM s %s' gives %s (%s)",
                         DOC_PATH, kw.v[i].line, w, w, cep_status_name(st), err.msg);
            snprintf(sql, sizeof sql,
                     "CREATE STREAM s (\"%s\" INT, a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');\n"
                     "CREATE STREAM o AS SELECT \"%s\" AS x, a \"%s\" FROM s AS \"%s\";",
                     w, w, w, w);
            st = compile(sql, &err);
            cr_expect_eq(st, CEP_OK, "quoted reserved word %s is not usable as a name: %s", w, err.msg);
        } else {
            cr_expect_eq(st, CEP_OK, "%s:%u: %s is documented %s, but 'FROM s %s' fails: %s", DOC_PATH,
                         kw.v[i].line, w, kw.v[i].cell, w, err.msg);
            snprintf(sql, sizeof sql,
                     "CREATE STREAM s (%s INT, a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');\n"
                     "CREATE STREAM o AS SELECT %s AS x, a %s FROM s;",
                     w, w, w);
            st = compile(sql, &err);
            cr_expect_eq(st, CEP_OK, "%s:%u: %s is not usable unquoted as a name: %s", DOC_PATH,
                         kw.v[i].line, w, err.msg);
        }
    }
    cr_expect_gt(nreserved, 0, "no reserved words in %s", DOC_PATH);
    free(kw.v);
    doc_free(&d);
}

/* ---- (c) functions ------------------------------------------------------ */

Test(grammar, scalar_functions_match_table)
{
    doc_t d;
    doc_load(&d);
    rows_t fr = section_rows(&d, "## Scalar functions");
    int n = cep_func_count();
    cr_assert_gt(n, 0);
    for (int id = 0; id < n; id++) {
        const cep_func_t *f = cep_func_by_id(id);
        const row_t *row = find_row(&fr, f->name);
        cr_expect_not_null(row, "scalar function %s is missing from %s", f->name, DOC_PATH);
        if (!row) continue;
        int min, max;
        parse_arity(row, &min, &max);
        cr_expect(min == f->min_args && max == f->max_args,
                  "%s:%u: %s takes %d..%d arguments (max -1: any), the document says '%s'", DOC_PATH,
                  row->line, f->name, f->min_args, f->max_args, row->cell);
    }
    for (size_t i = 0; i < fr.n; i++)
        cr_expect_not_null(cep_func_lookup(fr.v[i].name, NULL),
                           "%s:%u lists %s, which is not a scalar function", DOC_PATH, fr.v[i].line,
                           fr.v[i].name);
    cr_expect_eq(fr.n, (size_t)n, "%s lists %zu scalar functions, the code has %d", DOC_PATH, fr.n, n);
    free(fr.v);
    doc_free(&d);
}

/* The aggregate kinds name the aggregates; the binder's arity check gives
 * the documented arity back in its message. */
static void expect_agg_arity_error(const char *name, int min, int max, int nargs)
{
    cep_buf_t sql;
    cep_buf_init(&sql);
    cep_buf_puts(&sql, "CREATE STREAM s (k INT, a INT) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');\n"
                       "CREATE TABLE t AS SELECT k, ");
    cep_buf_printf(&sql, "%s(", name);
    for (int i = 0; i < nargs; i++) cep_buf_puts(&sql, i ? ", a" : "a");
    cep_buf_puts(&sql, ") AS x FROM s GROUP BY k;");
    cep_error_t err;
    cep_status_t st = compile(cep_buf_cstr(&sql), &err);
    cep_buf_free(&sql);
    char want[160];
    snprintf(want, sizeof want, "%s takes %d to %d arguments, not %d", name, min, max, nargs);
    cr_expect_eq(st, CEP_ERR_SEMANTIC, "%s with %d arguments: %s", name, nargs, err.msg);
    cr_expect_str_eq(err.msg, want);
    cr_expect_eq(err.pos.line, 2);
    cr_expect_eq(err.pos.col, 29);
}

Test(grammar, aggregates_match_table)
{
    doc_t d;
    doc_load(&d);
    rows_t ar = section_rows(&d, "## Aggregate functions");
    for (int k = 0; k < AGG_KIND_COUNT; k++) {
        const char *name = cep_agg_kind_name((cep_agg_kind_t)k);
        cr_assert_not_null(name, "aggregate kind %d has no name", k);
        cr_expect_not_null(find_row(&ar, name), "aggregate %s is missing from %s", name, DOC_PATH);
    }
    cr_expect_null(cep_agg_kind_name(AGG_KIND_COUNT));
    for (size_t i = 0; i < ar.n; i++) {
        bool known = false;
        for (int k = 0; k < AGG_KIND_COUNT; k++)
            known |= !strcmp(cep_agg_kind_name((cep_agg_kind_t)k), ar.v[i].name);
        cr_expect(known, "%s:%u lists %s, which is not an aggregate", DOC_PATH, ar.v[i].line,
                  ar.v[i].name);
        int min, max;
        parse_arity(&ar.v[i], &min, &max);
        cr_expect_geq(max, min, "%s:%u: aggregates have a bounded arity", DOC_PATH, ar.v[i].line);
        if (min > 0) expect_agg_arity_error(ar.v[i].name, min, max, min - 1);
        expect_agg_arity_error(ar.v[i].name, min, max, max + 1);
    }
    cr_expect_eq(ar.n, (size_t)AGG_KIND_COUNT, "%s lists %zu aggregates, the code has %d", DOC_PATH,
                 ar.n, AGG_KIND_COUNT);
    free(ar.v);
    doc_free(&d);
}

/* ---- WITH properties --------------------------------------------------- */

Test(grammar, documented_properties_are_accepted)
{
    doc_t d;
    doc_load(&d);
    rows_t pr = section_rows(&d, "## WITH properties");
    for (size_t i = 0; i < pr.n; i++) {
        const char *cell = pr.v[i].cell;
        size_t len = strlen(cell);
        cr_assert(len >= 2 && cell[0] == '`' && cell[len - 1] == '`',
                  "%s:%u: the example value of %s is not in backquotes", DOC_PATH, pr.v[i].line,
                  pr.v[i].name);
        char sql[512];
        snprintf(sql, sizeof sql,
                 "CREATE STREAM p (ts BIGINT, a INT) WITH (KAFKA_TOPIC='p', VALUE_FORMAT='JSON', %s = %.*s);",
                 pr.v[i].name, (int)(len - 2), cell + 1);
        cep_error_t err;
        cr_expect_eq(compile(sql, &err), CEP_OK, "%s:%u: property %s is refused: %s", DOC_PATH,
                     pr.v[i].line, pr.v[i].name, err.msg);
    }
    cep_error_t err;
    cr_expect_eq(compile("CREATE STREAM p (a INT) WITH (KAFKA_TOPIC='p', VALUE_FORMAT='JSON', "
                         "NOT_A_PROPERTY = 1);",
                         &err),
                 CEP_ERR_SEMANTIC);
    cr_expect_str_eq(err.msg, "unknown property 'NOT_A_PROPERTY'");
    free(pr.v);
    doc_free(&d);
}
