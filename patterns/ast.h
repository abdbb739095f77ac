/*
 * ast.h — the syntax tree of a rule pack, as the parser builds it in the
 * compile arena. The binder annotates expression nodes in place (type, slot)
 * and the planner turns them into programs; the tree is then thrown away.
 */
#ifndef CEP_AST_H
#define CEP_AST_H

#include "patterns/value.h"

/* ---- tokens ------------------------------------------------------------ */

typedef enum cep_tok {
    TK_EOF = 0,
    TK_IDENT,   /* unquoted identifier or keyword; text upper-cased in .text */
    TK_QIDENT,  /* `quoted` or "quoted" identifier; case kept */
    TK_STRING,  /* 'text' with '' unescaped */
    TK_INTEGER, /* 123 */
    TK_DECIMAL, /* 1.5 */
    TK_FLOAT,   /* 1E3, 1.5e-2 */
    TK_LPAREN,
    TK_RPAREN,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_LBRACE,
    TK_RBRACE,
    TK_COMMA,
    TK_SEMI,
    TK_DOT,
    TK_STAR,
    TK_PLUS,
    TK_MINUS,
    TK_SLASH,
    TK_PERCENT,
    TK_EQ,
    TK_NE, /* <> or != */
    TK_LT,
    TK_LE,
    TK_GT,
    TK_GE,
    TK_ARROW,  /* -> */
    TK_ASSIGN, /* := */
    TK_CONCAT, /* || */
    TK_PIPE,   /* | */
    TK_QMARK,  /* ? */
    TK_CARET,  /* ^ */
    TK_DOLLAR, /* $ */
    TK_COLON,
    TK_ERROR,
    TK_COUNT
} cep_tok_t;

typedef struct cep_token {
    cep_tok_t kind;
    const char *text; /* NUL-terminated, in the compile arena */
    cep_pos_t pos;
} cep_token_t;

/* ---- expressions --------------------------------------------------------- */

typedef enum cep_ast_kind {
    AST_LITERAL,
    AST_COLUMN,  /* [qualifier.]name */
    AST_STAR,    /* * or q.* in a select list, or COUNT(*) argument */
    AST_UNARY,   /* op: TK_MINUS, TK_PLUS or 'N' (NOT) */
    AST_BINARY,  /* op: token kind, or 'A' AND, 'O' OR */
    AST_ISNULL,  /* negated: IS NOT NULL */
    AST_DISTINCT, /* a IS [NOT] DISTINCT FROM b; negated: IS NOT DISTINCT */
    AST_BETWEEN, /* a BETWEEN b AND c */
    AST_IN,      /* a IN (list) */
    AST_LIKE,    /* a LIKE b [ESCAPE c] */
    AST_CASE,    /* CASE [operand] WHEN.. THEN.. [ELSE] END */
    AST_CALL,    /* name(args) */
    AST_CAST,    /* CAST(a AS type) */
    AST_SUBSCRIPT, /* a[b] */
    AST_DEREF,     /* a->field */
    AST_ARRAY,     /* ARRAY[...] */
    AST_MAP,       /* MAP(k := v, ...) */
    AST_STRUCT,    /* STRUCT(name := v, ...) */
    AST_INTERVAL,  /* INTERVAL '5' MINUTE: value in ms */
    AST_KIND_COUNT
} cep_ast_kind_t;

typedef struct cep_ast cep_ast_t;

/* agg(...) OVER (PARTITION BY .. ORDER BY t RANGE BETWEEN INTERVAL .. PRECEDING AND CURRENT ROW) */
typedef struct cep_ast_over {
    cep_ast_t **partition;
    uint32_t npartition;
    cep_ast_t *order;
    int64_t range_ms; /* the window: rows with order value in [t - range_ms, t] */
    cep_pos_t pos;
} cep_ast_over_t;

struct cep_ast {
    cep_ast_kind_t kind;
    cep_pos_t pos;
    int op;
    bool negated;
    bool distinct; /* COUNT(DISTINCT x) */
    const char *name;      /* COLUMN name, CALL name, DEREF field */
    const char *qualifier; /* COLUMN qualifier */
    bool quoted;           /* COLUMN name was quoted */
    cep_value_t lit;       /* LITERAL */
    const cep_type_t *lit_type;
    const cep_type_t *cast_type; /* CAST */
    cep_ast_t **args; /* operands / arguments / list items / CASE when,then pairs */
    uint32_t nargs;
    const char **names; /* STRUCT field names */
    cep_ast_t *operand, *else_; /* CASE */
    cep_ast_over_t *over;       /* CALL ... OVER (...) */

    /* filled by the binder */
    const cep_type_t *type;
    int slot;    /* COLUMN: row slot; aggregated context: output slot */
    int agg;     /* CALL of an aggregate: index in the query's aggregate list */
    int func;    /* CALL of a scalar: function id */
    bool is_agg; /* CALL names an aggregate function */
};

/* ---- statements ------------------------------------------------------- */

typedef struct cep_ast_prop {
    const char *name; /* upper-cased */
    cep_ast_t *value; /* literal */
    cep_pos_t pos;
} cep_ast_prop_t;

typedef struct cep_ast_coldef {
    const char *name;
    const cep_type_t *type;
    bool is_key;     /* KEY or PRIMARY KEY */
    bool is_primary; /* PRIMARY KEY (tables) */
    cep_pos_t pos;
} cep_ast_coldef_t;

typedef struct cep_ast_item {
    cep_ast_t *expr;
    const char *alias; /* NULL when none given */
    bool alias_quoted;
    cep_pos_t pos;
} cep_ast_item_t;

typedef enum cep_window_kind { CEP_WIN_NONE, CEP_WIN_TUMBLING, CEP_WIN_HOPPING, CEP_WIN_SESSION } cep_window_kind_t;

typedef struct cep_ast_window {
    cep_window_kind_t kind;
    int64_t size_ms, advance_ms, gap_ms, grace_ms;
    bool has_grace;
    int64_t retention_ms;
    bool has_retention;
    cep_pos_t pos;
} cep_ast_window_t;

/* ---- MATCH_RECOGNIZE ---------------------------------------------------- */

typedef enum cep_pat_kind { PAT_VAR, PAT_SEQ, PAT_ALT, PAT_QUANT, PAT_START, PAT_END } cep_pat_kind_t;

/* A row pattern: variables, concatenation, alternation (left preferred),
 * quantifiers (greedy or reluctant), anchors. */
typedef struct cep_pat {
    cep_pat_kind_t kind;
    cep_pos_t pos;
    const char *var;          /* PAT_VAR (upper-cased) */
    struct cep_pat **items;   /* PAT_SEQ, PAT_ALT */
    uint32_t nitems;
    struct cep_pat *sub;      /* PAT_QUANT */
    uint32_t min, max;        /* max UINT32_MAX: unbounded */
    bool reluctant;
} cep_pat_t;

typedef enum cep_skip_kind { CEP_SKIP_PAST_LAST, CEP_SKIP_NEXT_ROW, CEP_SKIP_TO_FIRST, CEP_SKIP_TO_LAST } cep_skip_kind_t;

typedef struct cep_ast_subset {
    const char *name;
    const char **vars;
    uint32_t nvars;
    cep_pos_t pos;
} cep_ast_subset_t;

typedef struct cep_ast_define {
    const char *var;
    cep_ast_t *cond;
    cep_pos_t pos;
} cep_ast_define_t;

typedef struct cep_ast_match {
    cep_ast_t **partition;
    uint32_t npartition;
    cep_ast_t **order;
    uint32_t norder;
    cep_ast_item_t *measures;
    uint32_t nmeasures;
    cep_skip_kind_t skip;
    const char *skip_var;
    cep_pos_t skip_pos;
    cep_pat_t *pattern;
    bool has_within;
    int64_t within_ms;
    /* the absence extension: NOT FOLLOWED BY v WITHIN interval */
    const char *absent_var;
    int64_t absent_ms;
    cep_pos_t absent_pos;
    cep_ast_subset_t *subsets;
    uint32_t nsubsets;
    cep_ast_define_t *defines;
    uint32_t ndefines;
    const char *alias;
    cep_pos_t pos;
} cep_ast_match_t;

typedef struct cep_ast_select {
    cep_ast_item_t *items;
    uint32_t nitems;
    const char *from;
    const char *from_alias;
    struct cep_ast_select *from_select; /* FROM (SELECT ...) alias: a derived table */
    cep_pos_t from_pos;
    cep_ast_match_t *match; /* FROM s MATCH_RECOGNIZE (...) */
    cep_ast_window_t window;
    cep_ast_t *where;
    cep_ast_t **group_by;
    uint32_t ngroup;
    cep_ast_t **partition_by;
    uint32_t npartition;
    cep_ast_t *having;
    bool emit_final, emit_changes;
    cep_pos_t emit_pos;
    cep_pos_t pos;
} cep_ast_select_t;

typedef enum cep_stmt_kind {
    STMT_CREATE_SOURCE, /* CREATE STREAM|TABLE name (cols) WITH (...) */
    STMT_CREATE_AS,     /* CREATE STREAM|TABLE name [WITH] AS SELECT */
    STMT_INSERT,        /* INSERT INTO name SELECT */
    STMT_SELECT,        /* bare SELECT */
} cep_stmt_kind_t;

typedef struct cep_ast_stmt {
    cep_stmt_kind_t kind;
    bool is_table;
    bool or_replace;
    const char *name;
    bool name_quoted;
    cep_ast_coldef_t *cols;
    uint32_t ncols;
    cep_ast_prop_t *props;
    uint32_t nprops;
    cep_ast_select_t *select;
    cep_pos_t pos;
    const char *text; /* the statement's source text, for fingerprints */
    uint32_t text_len;
    struct cep_ast_stmt *next;
} cep_ast_stmt_t;

/* Parse a whole SQL text (one or more ';'-separated statements). file is
 * borrowed and used in positions. On error returns the status and fills err
 * with the position of the first problem. */
cep_status_t cep_parse(cep_arena_t *arena, const char *file, const char *sql, size_t len,
                       cep_ast_stmt_t **out, cep_error_t *err);

/* Structural equality of two (unbound) expressions, for matching GROUP BY
 * expressions in the projection. */
bool cep_ast_equal(const cep_ast_t *a, const cep_ast_t *b);
/* SQL text of an expression, normalised (upper-case keywords, one space). */
void cep_ast_format(const cep_ast_t *e, cep_buf_t *out);

#endif
